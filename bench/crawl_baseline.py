"""Crawl baseline for the scriptscrape benchmark: "the usual way" in Python.

Crawls breadth first from the seed URLs with asyncio + aiohttp: a pool of -c
worker tasks takes URLs from one FIFO queue, parses each HTML page once with
BeautifulSoup (lxml) for its <script> elements and its <a href> links, and
queues the links on a seed's host not seen before (fragments dropped), up to
--depth hops from the seed and --max-pages fetches in all. Writes one CSV row
per <script> element with the same columns as baseline.py. Like baseline.py
it is written the way a competent Python engineer would write it for a job:
parsing runs inline in the event loop, and robots.txt is not read.

Usage: python crawl_baseline.py SEEDS_FILE -c N --depth D --max-pages M -o OUT_CSV
       (OUT_CSV "-" = stdout)
Needs: pip install aiohttp beautifulsoup4 lxml
"""

import argparse
import asyncio
import csv
import sys
import time
from urllib.parse import urldefrag, urlsplit

import aiohttp
from bs4 import BeautifulSoup

# Importing baseline.py would otherwise leave a __pycache__ in bench/.
sys.dont_write_bytecode = True
from baseline import (HEADER, HTML_TYPES, SkipPage, document_base, read_urls, resolve,
                      soup_rows)


async def fetch(session, url):
    async with session.get(url) as resp:
        if not 200 <= resp.status < 300:
            raise SkipPage(f"HTTP {resp.status}")
        if resp.content_type not in HTML_TYPES:
            raise SkipPage(f"content type {resp.content_type}")
        html = await resp.text(errors="replace")
        return str(resp.url), html


def parse_page(page_url, final_url, html):
    """The page's script rows and the absolute URLs of its links, fragments dropped."""
    soup = BeautifulSoup(html, "lxml")
    base = document_base(soup, final_url)
    rows = list(soup_rows(page_url, final_url, soup, base))
    links = []
    for a in soup.find_all("a", href=True):
        url = resolve(base, a["href"].strip())
        if url and url.startswith(("http://", "https://")):
            links.append(urldefrag(url).url)
    return rows, links


class Crawl:
    def __init__(self, seeds, max_depth, max_pages, writer, out):
        self.hosts = {urlsplit(url).netloc.lower() for url in seeds}
        self.max_depth = max_depth
        self.max_pages = max_pages
        self.writer = writer
        self.out = out
        self.queue = asyncio.Queue()
        self.seen = set()
        self.ok = self.failed = self.scripts = 0
        for url in seeds:
            self.add(url, 0)

    def add(self, url, depth):
        # Everything queued is fetched, so the seen-set's size is the number
        # of fetches promised: stop queueing at --max-pages.
        if url in self.seen or len(self.seen) >= self.max_pages:
            return
        self.seen.add(url)
        self.queue.put_nowait((url, depth))

    async def worker(self, session):
        while True:
            url, depth = await self.queue.get()
            try:
                await self.visit(session, url, depth)
            finally:
                self.queue.task_done()

    async def visit(self, session, url, depth):
        try:
            final_url, html = await fetch(session, url)
            rows, links = parse_page(url, final_url, html)
        except (SkipPage, aiohttp.ClientError, asyncio.TimeoutError, ValueError, LookupError):
            self.failed += 1
            return
        self.writer.writerows(rows)
        self.out.flush()
        self.ok += 1
        self.scripts += len(rows)
        if depth < self.max_depth:
            for link in links:
                if urlsplit(link).netloc.lower() in self.hosts:
                    self.add(link, depth + 1)


async def run(seeds, concurrency, max_depth, max_pages, out):
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    crawl = Crawl(seeds, max_depth, max_pages, writer, out)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        workers = [asyncio.create_task(crawl.worker(session)) for _ in range(concurrency)]
        # Every queued URL is marked done after its visit, links queued
        # first, so the queue is joined only when nothing is left to find.
        await crawl.queue.join()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return crawl


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds_file")
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--max-pages", type=int, default=1000)
    parser.add_argument("-o", "--output", default="-")
    args = parser.parse_args()

    seeds = read_urls(args.seeds_file)
    out = sys.stdout if args.output == "-" else open(args.output, "w", newline="", encoding="utf-8")
    start = time.perf_counter()
    try:
        crawl = asyncio.run(run(seeds, args.concurrency, args.depth, args.max_pages, out))
    finally:
        if out is not sys.stdout:
            out.close()
    elapsed = time.perf_counter() - start
    print(f"crawl baseline: {crawl.ok} pages ok, {crawl.failed} failed, {crawl.scripts} scripts, "
          f"{len(crawl.seen)} URLs queued, {elapsed:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
