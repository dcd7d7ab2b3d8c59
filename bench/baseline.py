"""Baseline for the scriptscrape benchmark: "the usual way" in Python.

Fetches a list of URLs concurrently with asyncio + aiohttp, parses each HTML
page with BeautifulSoup (lxml) and writes one CSV row per <script> element,
with the same columns as scriptscrape's scripts CSV. It is written the way a
competent Python engineer would write it for a job, neither deliberately slow
nor specially optimised: parsing runs inline in the event loop, as it usually
does, so the benchmark measures that common design.

Usage: python baseline.py URLS_FILE -c N -o OUT_CSV   (OUT_CSV "-" = stdout)
Needs: pip install aiohttp beautifulsoup4 lxml
"""

import argparse
import asyncio
import base64
import csv
import hashlib
import sys
import time
from urllib.parse import urljoin

import aiohttp
from bs4 import BeautifulSoup, NavigableString

HEADER = ["page_url", "final_url", "index", "src", "inline", "type", "async", "defer",
          "nomodule", "integrity", "crossorigin", "inline_bytes", "inline_sha256",
          "src_resolved", "svg"]
HTML_TYPES = {"text/html", "application/xhtml+xml"}


class SkipPage(Exception):
    """A response that is not a 2xx HTML page."""


def read_urls(path):
    urls, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            url = line.strip()
            if url and not url.startswith("#") and url not in seen:
                seen.add(url)
                urls.append(url)
    return urls


async def fetch(session, sem, url):
    async with sem:
        async with session.get(url) as resp:
            if not 200 <= resp.status < 300:
                raise SkipPage(f"HTTP {resp.status}")
            if resp.content_type not in HTML_TYPES:
                raise SkipPage(f"content type {resp.content_type}")
            html = await resp.text(errors="replace")
            return url, str(resp.url), html


def flag(value):
    return "true" if value else "false"


def resolve(base, ref):
    """urljoin, or None when the reference is not a usable URL (e.g. "http://[")."""
    try:
        return urljoin(base, ref)
    except ValueError:
        return None


def script_rows(page_url, final_url, html):
    soup = BeautifulSoup(html, "lxml")
    return soup_rows(page_url, final_url, soup, document_base(soup, final_url))


def document_base(soup, final_url):
    """The URL relative references resolve against: <base href>, else the page."""
    base_tag = soup.find("base", href=True)
    return (base_tag and resolve(final_url, base_tag["href"].strip())) or final_url


def soup_rows(page_url, final_url, soup, base):
    """One CSV row per <script> element of a parsed page."""
    index = 0
    for script in soup.find_all("script"):
        parents = {p.name for p in script.parents}
        if "template" in parents:
            continue
        row = {
            "page_url": page_url, "final_url": final_url, "index": index,
            "type": script.get("type", ""), "integrity": script.get("integrity", ""),
            "crossorigin": script.get("crossorigin", ""),
            "async": flag(script.has_attr("async")), "defer": flag(script.has_attr("defer")),
            "nomodule": flag(script.has_attr("nomodule")), "svg": flag("svg" in parents),
        }
        if script.has_attr("src"):
            src = script["src"].strip()
            resolved = resolve(base, src) if src else None
            row.update(src=resolved or src, inline="false", inline_bytes="",
                       inline_sha256="", src_resolved=flag(resolved))
        else:
            text = script.string
            if text is None:
                text = "".join(c for c in script.children if isinstance(c, NavigableString))
            data = str(text).encode("utf-8")
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
            row.update(src="", inline="true", inline_bytes=len(data),
                       inline_sha256="sha256-" + digest, src_resolved="")
        index += 1
        yield row


async def run(urls, concurrency, out):
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    ok = failed = scripts = 0
    sem = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(fetch(session, sem, url)) for url in urls]
        for next_done in asyncio.as_completed(tasks):
            try:
                page_url, final_url, html = await next_done
                rows = list(script_rows(page_url, final_url, html))
            except (SkipPage, aiohttp.ClientError, asyncio.TimeoutError, ValueError, LookupError):
                failed += 1
                continue
            writer.writerows(rows)
            out.flush()
            ok += 1
            scripts += len(rows)
    return ok, failed, scripts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls_file")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("-o", "--output", default="-")
    args = parser.parse_args()

    urls = read_urls(args.urls_file)
    out = sys.stdout if args.output == "-" else open(args.output, "w", newline="", encoding="utf-8")
    start = time.perf_counter()
    try:
        ok, failed, scripts = asyncio.run(run(urls, args.concurrency, out))
    finally:
        if out is not sys.stdout:
            out.close()
    elapsed = time.perf_counter() - start
    print(f"baseline: {ok} pages ok, {failed} failed, {scripts} scripts, {elapsed:.2f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
