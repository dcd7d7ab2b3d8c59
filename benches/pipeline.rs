//! The end-to-end benchmark: scriptscrape against a loopback server, next
//! to its ceilings and next to the usual Python program.
//!
//! ```text
//! cargo bench --bench pipeline -- [latency|cpu|scale|crawl|extract|diff|scripts|formats|render|serve|all]
//!     [--runs N] [--python-runs N] [--no-python] [--frontier-memory N]
//! cargo bench --bench pipeline -- against --binary PATH [--runs N]
//! ```
//!
//! `against` runs the CPU-bound and latency-bound lists with this build
//! and with another scriptscrape binary (an earlier commit's release
//! build), alternated run by run: CPU per page and its ratio, in one run.
//!
//! The server runs in this process on its own threads and serves generated
//! pages (`/p/{n}`: 20–200 KB, median near 60 KB, a realistic mix of script
//! elements; 2,000 distinct bodies made before the run, page n being body
//! n % 2,000). For `crawl` it also serves a site of 5,000 linked pages
//! (`/c/{n}`: body n % 2,000 plus links to other pages of the site) that
//! the binary crawls from `/c/0`; `--frontier-memory` is passed to that
//! crawl. The release binary runs as a
//! separate process, writing its CSV to a pipe this process drains, and is
//! measured with wait4 (wall time, CPU seconds, peak RSS) and by when its
//! first row arrives. Every figure is a median of `--runs` runs. `diff`
//! compares two generated runs' outputs (no server) of 1M and 4M script
//! rows each. `scripts` runs the latency-bound and CPU-bound lists with and
//! without `--fetch-scripts`, the two alternated run by run, on pages whose
//! external scripts are all served by this process too (see
//! [`Server::start_with_scripts`]). `formats` runs the CPU-bound list
//! writing both outputs to files in each output format, alternated run by
//! run: bytes per million script rows, and CPU per page. `render` runs 32
//! of the pages, scripts served as for `scripts`, with `--render` at three
//! render concurrencies and in static mode (and static mode on 1,600 pages
//! for its per-page figures), alternated run by run, measuring the whole
//! process tree (scriptscrape and every Chromium process): pages/s, CPU
//! per page, peak PSS. `all` leaves `render` out: it needs Chromium, and
//! a run takes minutes.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

mod harness;
mod inventories;
mod pages;
mod tree;

use harness::{
    cores, flag_value, sample_peak_kb, self_cpu, status_ok, tempdir, tv, wait_when_exited,
    write_urls,
};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runs = flag_value(&args, "--runs").unwrap_or(3);
    let python = !args.iter().any(|a| a == "--no-python");
    let which = args
        .iter()
        .find(|a| !a.starts_with("--") && a.parse::<usize>().is_err())
        .map_or("all", |s| s.as_str());
    let dir = tempdir();
    // Each Python run of the latency and CPU scenarios takes minutes.
    let python_runs = flag_value(&args, "--python-runs").unwrap_or(1);
    let baseline = if python && !matches!(which, "extract" | "diff" | "scripts" | "render") {
        Baseline::prepare(python_runs)
    } else {
        None
    };
    println!("machine: {} cores; runs per figure: {runs}", cores());
    if matches!(which, "latency" | "all") {
        latency(&dir, runs, baseline.as_ref());
    }
    if matches!(which, "cpu" | "all") {
        cpu(&dir, runs, baseline.as_ref());
    }
    if matches!(which, "scale" | "all") {
        scale(&dir, runs, baseline.as_ref());
    }
    if matches!(which, "crawl" | "all") {
        let frontier_memory = flag_value(&args, "--frontier-memory");
        crawl(&dir, runs, frontier_memory, baseline.as_ref());
    }
    if matches!(which, "extract" | "all") {
        extract(runs);
    }
    if matches!(which, "diff" | "all") {
        diff(&dir, runs);
    }
    if matches!(which, "scripts" | "all") {
        scripts(&dir, runs);
    }
    if matches!(which, "formats" | "all") {
        formats(&dir, runs);
    }
    if matches!(which, "serve" | "all") {
        serve(runs);
    }
    // Not in `all`: it needs Chromium, and takes minutes.
    if which == "render" {
        render(&dir, runs);
    }
    if which == "against" {
        let Some(other) = args
            .iter()
            .position(|a| a == "--binary")
            .and_then(|i| args.get(i + 1))
        else {
            eprintln!("against: give the other binary with --binary PATH");
            std::process::exit(2);
        };
        against(&dir, runs, Path::new(other));
    }
}

/// `scriptscrape serve` under 1, 10 and 100 clients at once, each scanning
/// 20 pages of 50 ms latency (distinct pages throughout), or crawling 20
/// pages from a seed of the linked site (depth 2, `max_pages` 20), with
/// curl as the client: time to the first row and to the summary, as each
/// client sees them (read from curl's output as it streams), and the
/// server's memory.
fn serve(runs: usize) {
    let latency = Duration::from_millis(50);
    let site = Server::start(latency, pages::Size::Realistic);
    println!(
        "\n## serve: clients at once, 20 pages each, {} ms latency, -c 256 (curl; {runs} rounds)",
        latency.as_millis()
    );
    let mut server = Command::new(env!("CARGO_BIN_EXE_scriptscrape"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--allow-private",
        ])
        .args(["-c", "256", "--per-host", "256", "--max-pending", "100000"])
        .args(["--max-depth", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scriptscrape serve");
    let mut stderr = std::io::BufReader::new(server.stderr.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("the server's first line");
    let base = line
        .trim()
        .strip_prefix("scriptscrape: listening on ")
        .unwrap_or_else(|| panic!("the server did not start: {line}"))
        .to_owned();
    let mut next_page = 0u64;
    let mut next_seed = 0u64;
    for crawling in [false, true] {
        for clients in [1usize, 10, 100] {
            let (mut first, mut whole) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let scans: Vec<String> = (0..clients)
                    .map(|_| {
                        if crawling {
                            next_seed = (next_seed + 1) % SITE_PAGES;
                            let seed = site.site_url(next_seed);
                            let options = r#""options": {"depth": 2, "max_pages": 20}"#;
                            return format!(r#"{{"urls": ["{seed}"], {options}}}"#);
                        }
                        let urls: Vec<String> = (0..20)
                            .map(|_| {
                                next_page += 1;
                                site.url(next_page)
                            })
                            .collect();
                        urls.join("\n")
                    })
                    .collect();
                for (to_first, to_end) in curl_scans(&base, &scans, crawling) {
                    first.push(to_first);
                    whole.push(to_end);
                }
            }
            let ms = |v: &mut Vec<f64>, p: f64| {
                v.sort_by(f64::total_cmp);
                let at = ((v.len() as f64 - 1.0) * p).round() as usize;
                v[at] * 1000.0
            };
            println!(
                "  {:>8} {clients:>3} clients: first row p50 {:.0} ms, p99 {:.0} ms; summary p50 {:.0} ms, p99 {:.0} ms ({} scans)",
                if crawling { "crawling" } else { "listed" },
                ms(&mut first, 0.5),
                ms(&mut first, 0.99),
                ms(&mut whole, 0.5),
                ms(&mut whole, 0.99),
                first.len()
            );
        }
    }
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("?".to_owned(), |v| v.trim().to_owned())
    };
    println!(
        "  server memory: peak RSS {}, RSS now {}",
        field("VmHWM:"),
        field("VmRSS:")
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// Runs one curl per scan (a JSON body when `json`), all at once, and
/// returns for each the seconds from its start (the spawn of its curl) to
/// its first row and to the end of its answer.
fn curl_scans(base: &str, scans: &[String], json: bool) -> Vec<(f64, f64)> {
    let children: Vec<(Instant, std::process::Child)> = scans
        .iter()
        .map(|body| {
            let started = Instant::now();
            let mut curl = Command::new("curl");
            if json {
                curl.args(["-H", "content-type: application/json"]);
            }
            let child = curl
                .args(["-sN", "--data-binary", body, &format!("{base}/v1/scan")])
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl (apt-get install curl)");
            (started, child)
        })
        .collect();
    let readers: Vec<_> = children
        .into_iter()
        .map(|(started, mut child)| {
            std::thread::spawn(move || {
                let out = child.stdout.take().expect("piped");
                let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
                let mut first = None;
                let mut summary = false;
                for line in lines.by_ref().map_while(Result::ok) {
                    first.get_or_insert_with(|| started.elapsed().as_secs_f64());
                    summary |= line.contains("\"object\":\"summary\"")
                        && line.contains("\"cut_short\":false")
                        && line.contains("\"failed\":0");
                }
                let end = started.elapsed().as_secs_f64();
                let _ = child.wait();
                assert!(summary, "a scan ended without a whole summary");
                (first.unwrap_or(end), end)
            })
        })
        .collect();
    readers
        .into_iter()
        .map(|r| r.join().expect("reader"))
        .collect()
}

/// This build against `other`, an earlier scriptscrape binary, on the
/// CPU-bound (5,000 pages, no latency, -c 64) and latency-bound (10,000
/// pages, 50 ms, -c 256) lists, the two binaries alternated run by run.
fn against(dir: &Path, runs: usize, other: &Path) {
    let scenarios = [
        (
            "CPU-bound: 5000 pages, no latency, -c 64",
            5_000u64,
            0u64,
            64usize,
        ),
        (
            "latency-bound: 10000 pages, 50 ms latency, -c 256",
            10_000,
            50,
            256,
        ),
    ];
    for (title, n, latency_ms, concurrency) in scenarios {
        let server = Server::start(Duration::from_millis(latency_ms), pages::Size::Realistic);
        let urls = write_urls(dir, "against.txt", (0..n).map(|i| server.url(i)));
        println!("\n## {title}: this build against {}", other.display());
        let mut this_runs = Vec::new();
        let mut other_runs = Vec::new();
        for _ in 0..runs.max(1) {
            this_runs.push(server.measure(&scriptscrape(&urls, concurrency)));
            let mut cmd = scriptscrape(&urls, concurrency);
            let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
            cmd = Command::new(other);
            cmd.args(args);
            other_runs.push(server.measure(&cmd));
        }
        let this = medians(&this_runs);
        let before = medians(&other_runs);
        before.print("other binary", n);
        this.print("this build", n);
        let per_page = |m: &Measured| m.cpu / n as f64 * 1e3;
        println!(
            "  CPU per page: {:.3} ms before, {:.3} ms now: {:.2}x less; wall {:.2}x; peak RSS {:.0} -> {:.0} MB",
            per_page(&before),
            per_page(&this),
            before.cpu / this.cpu,
            before.wall / this.wall,
            before.peak_rss_mb,
            this.peak_rss_mb
        );
    }
}

/// The output formats on the CPU-bound list (5,000 realistic pages, no
/// latency, -c 64), both outputs written to files: each format's bytes
/// per million script rows and CPU per page, the formats run in turn
/// within each round (the order rotated round by round) so that the
/// machine's drift hits all alike.
fn formats(dir: &Path, runs: usize) {
    let n = 5_000u64;
    let server = Server::start(Duration::ZERO, pages::Size::Realistic);
    let urls = write_urls(dir, "formats.txt", (0..n).map(|i| server.url(i)));
    println!("\n## Output formats: {n} pages, no latency, -c 64, -o and --pages to files");
    let formats: [(&str, &str); 7] = [
        ("CSV", "csv"),
        ("CSV + gzip", "csv.gz"),
        ("CSV + zstd", "csv.zst"),
        ("JSON Lines", "jsonl"),
        ("JSON Lines + gzip", "jsonl.gz"),
        ("JSON Lines + zstd", "jsonl.zst"),
        ("Parquet", "parquet"),
    ];
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); formats.len()];
    let mut sizes = vec![(0u64, 0u64); formats.len()];
    let mut rows = vec![0u64; formats.len()];
    for round in 0..runs.max(1) {
        for k in 0..formats.len() {
            let i = (k + round) % formats.len();
            let (_, ext) = formats[i];
            let (scripts, report) = (dir.join(format!("f.{ext}")), dir.join(format!("fp.{ext}")));
            let stats = dir.join("formats-stats.json");
            let mut cmd = scriptscrape(&urls, 64);
            cmd.arg("-o")
                .arg(&scripts)
                .arg("--pages")
                .arg(&report)
                .arg("--stats")
                .arg(&stats);
            measured[i].push(server.measure(&cmd));
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            sizes[i] = (size(&scripts), size(&report));
            rows[i] = std::fs::read_to_string(&stats)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["scripts"].as_u64())
                .unwrap_or(0);
        }
    }
    let csv_cpu = medians(&measured[0]).cpu;
    println!(
        "| format | scripts output | per million script rows | page report | CPU per page | CPU vs CSV | wall |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (label, _)) in formats.iter().enumerate() {
        let m = medians(&measured[i]);
        let (scripts, report) = sizes[i];
        if rows[i] != rows[0] {
            println!(
                "  WARNING: {label} wrote {} script rows, CSV {}",
                rows[i], rows[0]
            );
        }
        println!(
            "| {label} | {:.1} MB | {:.0} MB | {:.2} MB | {:.0} µs | {:.2}x | {:.2} s |",
            scripts as f64 / 1e6,
            scripts as f64 / rows[i].max(1) as f64,
            report as f64 / 1e6,
            1e6 * m.cpu / n as f64,
            m.cpu / csv_cpu,
            m.wall,
        );
    }
    println!("  script rows per run: {}", rows[0]);
    encoding_alone(dir, runs, &formats);
}

/// Each format's own cost, without fetching or parsing: the rows of 5,000
/// realistic pages (extracted once, before timing) written through the
/// library's `Sink` to files on one thread, scripts output and page
/// report, rounds alternated as above. What the end-to-end figures cannot
/// show within their noise.
fn encoding_alone(dir: &Path, runs: usize, formats: &[(&str, &str)]) {
    use scriptscrape::output::{Destination, Encoding, Format, Layout, PageResult, Sink, Target};
    let n = 5_000u64;
    let url = url::Url::parse("http://127.0.0.1/p/0").expect("static URL");
    let extractor = scriptscrape::extract::Extractor::new();
    let results: Vec<PageResult> = (0..n)
        .map(|i| {
            let body = pages::page(i % 2_000, pages::Size::Realistic);
            let page_url = format!("http://127.0.0.1:8080/p/{i}");
            PageResult {
                seq: i,
                final_url: Some(page_url.clone()),
                page_url,
                status: Some(200),
                outcome: Ok(extractor.extract(&url, &body)),
                csp: None,
                bytes: body.len() as u64,
                elapsed: Duration::from_millis(3 + i % 50),
                charset: Some("UTF-8"),
                attempts: 1,
                depth: 0,
                referrer: None,
                incomplete: None,
            }
        })
        .collect();
    let rows: usize = results
        .iter()
        .map(|r| r.outcome.as_ref().map_or(0, Vec::len))
        .sum();
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); formats.len()];
    for round in 0..runs.max(1) {
        for k in 0..formats.len() {
            let i = (k + round) % formats.len();
            let ext = formats[i].1;
            let format = match ext {
                e if e.starts_with("jsonl") => Format::Jsonl,
                "parquet" => Format::Parquet,
                _ => Format::Csv,
            };
            let compression = match ext.rsplit('.').next() {
                Some("gz") => scriptscrape::output::Compression::Gzip,
                Some("zst") => scriptscrape::output::Compression::Zstd,
                _ => scriptscrape::output::Compression::None,
            };
            let open = |name: String| {
                Target::open(&Destination::File(dir.join(name)), false).expect("open output")
            };
            let layout = Layout {
                compression: [compression; 2],
                ..Layout::full(false)
            };
            let started = thread_cpu();
            let mut sink = Sink::new(
                open(format!("e.{ext}")),
                Some(open(format!("ep.{ext}"))),
                [String::new(), String::new()],
                &layout,
                Encoding {
                    format,
                    spreadsheet_safe: false,
                },
                true,
            )
            .expect("sink");
            for result in &results {
                sink.write_page(result).expect("write");
            }
            sink.finish().expect("finish");
            cpu[i].push(thread_cpu() - started);
        }
    }
    println!(
        "\n### Encoding alone: the rows of {n} realistic pages ({rows} script rows) written by the library's Sink on one thread, both outputs, to files (fsync and rename included)"
    );
    println!("| format | CPU per page | per million script rows | vs CSV |");
    println!("|---|---|---|---|");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let csv = median(&mut cpu[0].clone());
    for (i, (label, _)) in formats.iter().enumerate() {
        let m = median(&mut cpu[i]);
        println!(
            "| {label} | {:.0} µs | {:.2} s | {:.2}x |",
            1e6 * m / n as f64,
            m * 1e6 / rows as f64,
            m / csv
        );
    }
}

/// `--fetch-scripts`: the latency-bound list (50 ms on pages and on
/// scripts, -c 256) and the CPU-bound one (no latency, -c 64), each run
/// with and without the option, alternated run by run (and which goes
/// first alternated too) so that the machine's drift hits both alike. A
/// run with `-o` first checks what the option does: every external
/// script row filled in with a 200, and each distinct script requested
/// once.
fn scripts(dir: &Path, runs: usize) {
    println!(
        "\n## --fetch-scripts: the same lists with and without it; scripts served on loopback (5–80 KB, {SCRIPT_BODIES} bodies, gzip from the 3 third-party hosts)"
    );
    for (n, latency, concurrency) in [
        (10_000u64, Duration::from_millis(50), 256),
        (5_000, Duration::ZERO, 64),
    ] {
        let server = Server::start_with_scripts(latency, pages::Size::Realistic);
        let urls = write_urls(dir, "scripts.txt", (0..n).map(|i| server.url(i)));
        println!(
            "\n### {n} pages, {} ms latency on pages and scripts, -c {concurrency}",
            latency.as_millis()
        );
        let checked = check_fetched_scripts(dir, &server, &urls, concurrency, n);
        let without = scriptscrape(&urls, concurrency);
        let mut with = scriptscrape(&urls, concurrency);
        with.arg("--fetch-scripts");
        let (mut plain, mut fetching, mut traffic) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs.max(1) {
            let mut timed_with = || {
                server.scripts.take();
                let m = server.measure(&with);
                let t = server.scripts.take();
                if t.requests != checked.distinct || t.repeated != 0 || t.unexpected != 0 {
                    println!(
                        "  WARNING: run {run} with --fetch-scripts: {} script requests for {} URLs ({} repeated, {} unexpected requests); the check run found {} distinct scripts",
                        t.requests, t.urls, t.repeated, t.unexpected, checked.distinct
                    );
                }
                fetching.push(m);
                traffic.push(t);
            };
            if run % 2 == 0 {
                plain.push(server.measure(&without));
                timed_with();
            } else {
                timed_with();
                plain.push(server.measure(&without));
            }
        }
        let pairs: Vec<String> = plain
            .iter()
            .zip(&fetching)
            .map(|(a, b)| format!("{:.2}", b.wall / a.wall))
            .collect();
        let (a, b) = (medians(&plain), medians(&fetching));
        a.print("without --fetch-scripts", n);
        b.print("with --fetch-scripts", n);
        let mut sent: Vec<f64> = traffic.iter().map(|t| t.mb_sent).collect();
        sent.sort_by(f64::total_cmp);
        let t = traffic[0];
        println!(
            "  script requests: {} ({:.2} per page), {:.0} MB of scripts ({:.0} MB sent), {:.0} % of all bytes fetched",
            t.requests,
            t.requests as f64 / n as f64,
            t.mb,
            sent[sent.len() / 2],
            100.0 * t.mb / (t.mb + a.mb_served),
        );
        println!(
            "  with / without: wall {:.2}x (per pair of runs: {}), CPU {:.2}x (+{:.1} s, {:.0} µs per script), peak RSS {:.2}x (+{:.0} MB)",
            b.wall / a.wall,
            pairs.join(", "),
            b.cpu / a.cpu,
            b.cpu - a.cpu,
            1e6 * (b.cpu - a.cpu) / t.requests.max(1) as f64,
            b.peak_rss_mb / a.peak_rss_mb,
            b.peak_rss_mb - a.peak_rss_mb,
        );
        let (hash, gunzip) = per_byte_work(&server.scripts);
        let (hashing, gunzipping) = (hash * t.mb, gunzip * t.mb_gunzipped);
        let rest = b.cpu - a.cpu - hashing - gunzipping;
        println!(
            "  of the added CPU, by the same work alone on one thread here: the three digests ({:.0} MB/s) {hashing:.1} s, gunzip of the {:.0} MB that came compressed ({:.0} MB/s) {gunzipping:.1} s; the rest, {rest:.1} s ({:.0} µs a script), is the requests and holding pages",
            1.0 / hash,
            t.mb_gunzipped,
            1.0 / gunzip,
            1e6 * rest / t.requests.max(1) as f64,
        );
    }
}

/// CPU seconds per MB (decompressed), on one thread of this process, of
/// the work `--fetch-scripts` does on each byte of a script: the program's
/// own hasher (SHA-256, -384 and -512, fed in 16 KB pieces as a body
/// streams), and gunzip (flate2, which reqwest's decoder uses too).
fn per_byte_work(site: &ScriptSite) -> (f64, f64) {
    const ROUNDS: usize = 3;
    let mb = site.plain.iter().map(|b| b.len()).sum::<usize>() as f64 / 1e6;
    let started = thread_cpu();
    for _ in 0..ROUNDS {
        for body in &site.plain {
            let mut hasher = scriptscrape::content::sri::Hasher::new();
            for piece in body.chunks(16 * 1024) {
                hasher.update(piece);
            }
            std::hint::black_box(hasher.finish());
        }
    }
    let hash = (thread_cpu() - started) / (ROUNDS as f64 * mb);
    let started = thread_cpu();
    for _ in 0..ROUNDS {
        for body in &site.gzip {
            let mut decoder = flate2::read::GzDecoder::new(&body[..]);
            std::io::copy(&mut decoder, &mut std::io::sink()).expect("gunzip");
        }
    }
    let gunzip = (thread_cpu() - started) / (ROUNDS as f64 * mb);
    (hash, gunzip)
}

/// What a checked `--fetch-scripts` run wrote.
struct FetchedScripts {
    /// Distinct external script URLs in its rows.
    distinct: u64,
}

/// Runs `--fetch-scripts` once with `-o` (not timed), reads its CSV back
/// and says whether every external script row has its content with a
/// 200, every script is on a loopback address, and the server was asked
/// for each distinct script once.
fn check_fetched_scripts(
    dir: &Path,
    server: &Server,
    urls: &Path,
    concurrency: usize,
    n: u64,
) -> FetchedScripts {
    let out = dir.join("scripts-check.csv");
    let stats = dir.join("scripts-check-stats.json");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&stats);
    let mut cmd = scriptscrape(urls, concurrency);
    cmd.arg("--fetch-scripts")
        .arg("-o")
        .arg(&out)
        .arg("--stats")
        .arg(&stats);
    server.scripts.take();
    let m = server.measure(&cmd);
    let traffic = server.scripts.take();
    let mut reader = csv::Reader::from_path(&out).expect("the check run's CSV");
    let columns = reader.headers().expect("CSV header").clone();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no {name} column"))
    };
    let [page_url, src, resolved, status, sha384, bytes] = [
        "page_url",
        "src",
        "src_resolved",
        "content_status",
        "content_sha384",
        "content_bytes",
    ]
    .map(column);
    let mut pages = std::collections::HashSet::new();
    let mut distinct = std::collections::HashSet::new();
    let (mut rows, mut external, mut ok, mut off_loopback) = (0u64, 0u64, 0u64, 0u64);
    // Rows whose content_bytes or content_sha384 is not what was sent.
    let mut wrong = 0u64;
    let mut content_bytes = 0u64;
    for record in reader.records() {
        let record = record.expect("CSV row");
        rows += 1;
        if !pages.contains(&record[page_url]) {
            pages.insert(record[page_url].to_string());
        }
        if record[src].is_empty() {
            continue;
        }
        external += 1;
        // `src` is the absolute URL when `src_resolved` is true; none of
        // the benchmark's is relative to nothing, so anything else counts
        // as off loopback.
        let url = url::Url::parse(&record[src]).ok();
        let loopback = &record[resolved] == "true"
            && matches!(
                url.as_ref().and_then(|u| u.host()),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            );
        off_loopback += u64::from(!loopback);
        if &record[status] == "200" && record[sha384].starts_with("sha384-") {
            ok += 1;
            content_bytes += record[bytes].parse::<u64>().unwrap_or(0);
        }
        // What the server sent for that URL.
        let sent = url.as_ref().and_then(|u| {
            let at: SocketAddr = format!("{}:{}", u.host_str()?, u.port()?).parse().ok()?;
            let host = if at == server.addr {
                ""
            } else {
                SCRIPT_HOSTS[server.script_hosts.iter().position(|&a| a == at)?]
            };
            let query = u.query().map_or(String::new(), |q| format!("?{q}"));
            Some(script_body(&format!("{host}{}{query}", u.path())))
        });
        let right = sent.is_some_and(|n| {
            record[sha384] == server.scripts.sri[n]
                && record[bytes] == server.scripts.plain[n].len().to_string()
        });
        wrong += u64::from(!right);
        distinct.insert(record[src].to_string());
    }
    let distinct = distinct.len() as u64;
    println!(
        "check run (--fetch-scripts -o FILE, wall {:.2} s): {} pages with rows; its --stats: {}",
        m.wall,
        pages.len(),
        run_stats(&stats)
    );
    println!(
        "  {rows} script rows, {external} external ({:.1} per page), {distinct} distinct; {ok} of {external} with content_status 200 and a sha384 ({:.0} MB of content over the rows), {wrong} whose content_bytes or content_sha384 is not the body sent; {off_loopback} off 127.0.0.0/8",
        external as f64 / n as f64,
        content_bytes as f64 / 1e6,
    );
    println!(
        "  server: {} script requests for {} URLs, {} repeated, {} requests for anything else",
        traffic.requests, traffic.urls, traffic.repeated, traffic.unexpected
    );
    if ok != external
        || wrong != 0
        || off_loopback != 0
        || pages.len() as u64 != n
        || traffic.requests != distinct
        || traffic.urls != distinct
        || traffic.unexpected != 0
    {
        println!(
            "  WARNING: --fetch-scripts did not fetch each of the {distinct} distinct scripts exactly once, all with a 200 and the right digest, for all {n} pages"
        );
    }
    let _ = std::fs::remove_file(&out);
    FetchedScripts { distinct }
}

/// The pages a run's `--stats` counts.
fn run_stats(path: &Path) -> String {
    let Some(stats) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
    else {
        return "missing or unreadable".to_string();
    };
    let pages = &stats["pages"];
    format!(
        "{} pages ({} ok, {} failed), {} scripts, outcome {}",
        pages["total"], pages["ok"], pages["failed"], stats["scripts"], stats["outcome"]
    )
}

/// Pages of the `render` scenario: enough that a run at
/// `--render-concurrency 1` takes about half a minute (a rendered page
/// took about a second here, `--render-idle`'s quiet time alone being
/// 500 ms), and a multiple of 4, the highest concurrency run.
const RENDER_PAGES: u64 = 32;

/// Pages of the static run that gives static mode's per-page figures: a
/// run of [`RENDER_PAGES`] takes 0.05–0.2 s, mostly the process starting,
/// so its per-page figures say little; this one takes a second or two.
const RENDER_STATIC_PAGES: u64 = 50 * RENDER_PAGES;

/// One way of running the `render` scenario's list.
struct RenderVariant {
    label: String,
    urls: PathBuf,
    pages: u64,
    /// `--render-concurrency`, or static mode.
    render: Option<usize>,
}

/// What `--render` costs: the benchmark's pages (no latency, `-c 4`) in
/// static mode and with `--render` at `--render-concurrency` 1, 2 and 4,
/// all run in turn within each round (the order rotated round by round)
/// so that the machine's drift hits all alike. Static mode runs twice:
/// on the same pages, and on 50 times as many for its per-page figures,
/// which the ratios take. The pages' external scripts, which the browser
/// requests, are served by this process on loopback (see
/// [`Server::start_with_scripts`]), and so is their stylesheet: nothing
/// leaves 127.0.0.0/8. Each run is measured as a process tree,
/// scriptscrape and every Chromium process under it (see the `tree`
/// module), and must leave none of them behind.
fn render(dir: &Path, runs: usize) {
    let browser = match scriptscrape::render::browser::find(None) {
        Ok(path) => path,
        Err(e) => {
            println!("\n## --render: skipped: {e:#}");
            return;
        }
    };
    let version = Command::new(&browser)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_or_else(
            |e| format!("version unknown ({e})"),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        );
    let server = Server::start_with_scripts(Duration::ZERO, pages::Size::Realistic);
    let list = |name: &str, n: u64| write_urls(dir, name, (0..n).map(|i| server.url(i)));
    let (urls, long) = (
        list("render.txt", RENDER_PAGES),
        list("render-static.txt", RENDER_STATIC_PAGES),
    );
    println!(
        "\n## --render: {RENDER_PAGES} pages, no latency, -c 4, scripts served on loopback; {version} ({}); the default --render-idle (500 ms)",
        browser.display()
    );
    let mut variants = vec![
        RenderVariant {
            label: format!("static, {RENDER_PAGES} pages"),
            urls: urls.clone(),
            pages: RENDER_PAGES,
            render: None,
        },
        RenderVariant {
            label: format!("static, {RENDER_STATIC_PAGES} pages"),
            urls: long,
            pages: RENDER_STATIC_PAGES,
            render: None,
        },
    ];
    variants.extend([1, 2, 4].map(|c| RenderVariant {
        label: format!("--render-concurrency {c}"),
        urls: urls.clone(),
        pages: RENDER_PAGES,
        render: Some(c),
    }));
    // The per-page figures the ratios are taken against.
    let baseline = 1;
    let stats = dir.join("render-stats.json");
    // The tree's orphans come here rather than to init, to be reaped with
    // their CPU time (see the `tree` module).
    tree::set_subreaper(true);
    let mut measured: Vec<Vec<TreeRun>> = vec![Vec::new(); variants.len()];
    for round in 0..runs.max(1) {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let variant = &variants[i];
            let (label, n) = (&variant.label, variant.pages);
            let mut cmd = scriptscrape(&variant.urls, 4);
            cmd.arg("--stats").arg(&stats);
            if let Some(c) = variant.render {
                cmd.arg("--render")
                    .arg("--browser")
                    .arg(&browser)
                    .args(["--render-concurrency", &c.to_string()]);
            }
            // A stale file from an earlier run must not pass for this one's.
            let _ = std::fs::remove_file(&stats);
            server.scripts.take();
            let run = TreeRun::measure(&cmd);
            let traffic = server.scripts.take();
            let ok = std::fs::read_to_string(&stats)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .is_some_and(|v| v["pages"]["ok"] == n && v["pages"]["failed"] == 0);
            if !ok {
                println!(
                    "  WARNING: {label}: not every page ok; its --stats: {}",
                    run_stats(&stats)
                );
            } else if round == 0 {
                println!("  {label}: its --stats: {}", run_stats(&stats));
            }
            if traffic.unexpected != 0 {
                println!(
                    "  WARNING: {label}: {} requests for something the server does not serve",
                    traffic.unexpected
                );
            }
            run.print(&format!("round {}, {label}", round + 1), n);
            if variant.render.is_some() {
                println!(
                    "    {} script requests ({:.1} a page), {:.1} MB of scripts sent",
                    traffic.requests,
                    traffic.requests as f64 / n as f64,
                    traffic.mb_sent
                );
            }
            measured[i].push(run);
        }
    }
    tree::set_subreaper(false);
    let median = |runs: &[TreeRun], f: &dyn Fn(&TreeRun) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let wall = |r: &TreeRun| r.measured.wall;
    let cpu = |r: &TreeRun| r.measured.cpu;
    let pss = |r: &TreeRun| r.peak_pss_mb;
    let base_pages = variants[baseline].pages as f64;
    let (base_wall, base_cpu, base_pss) = (
        median(&measured[baseline], &wall) / base_pages,
        median(&measured[baseline], &cpu) / base_pages,
        median(&measured[baseline], &pss),
    );
    println!(
        "\n| variant | wall (runs) | pages/s | CPU per page | peak PSS of the tree | wall per page vs static | CPU per page vs static | peak PSS vs static |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (variant, m) in variants.iter().zip(&measured) {
        let runs: Vec<String> = m
            .iter()
            .map(|r| format!("{:.2}", r.measured.wall))
            .collect();
        let n = variant.pages as f64;
        let (w, c, p) = (median(m, &wall), median(m, &cpu), median(m, &pss));
        println!(
            "| {} | {w:.2} s ({}) | {:.1} | {:.4} s | {p:.0} MB | {:.0}x | {:.0}x | {:.1}x |",
            variant.label,
            runs.join(", "),
            n / w,
            c / n,
            w / n / base_wall,
            c / n / base_cpu,
            p / base_pss,
        );
    }
    println!("  (ratios against \"{}\")", variants[baseline].label);
    println!(
        "\n| variant | CPU: wait4 (scriptscrape + orphans) / /proc samples | processes / at once | peak summed RSS | bench process CPU (sampler) |"
    );
    println!("|---|---|---|---|---|");
    for (variant, m) in variants.iter().zip(&measured) {
        println!(
            "| {} | {:.2} s ({:.2} + {:.2}) / {:.2} s | {:.0} / {:.0} | {:.0} MB | {:.2} s ({:.2} s) |",
            variant.label,
            median(m, &cpu),
            median(m, &|r| r.cpu_program),
            median(m, &|r| r.cpu_orphans),
            median(m, &|r| r.cpu_sampled),
            median(m, &|r| r.processes_seen as f64),
            median(m, &|r| r.most_processes as f64),
            median(m, &|r| r.peak_rss_sum_mb),
            median(m, &|r| r.measured.server_cpu),
            median(m, &|r| r.sampler_cpu),
        );
    }
    // The CPU of each kind of process, medians over the runs (a kind
    // missing from a run counts 0 there), for the rendered variants.
    for (variant, m) in variants.iter().zip(&measured) {
        if variant.render.is_none() {
            continue;
        }
        let mut kinds: Vec<&str> = m
            .iter()
            .flat_map(|r| r.cpu_by_kind.iter().map(|(k, _, _)| k.as_str()))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut shares: Vec<(f64, String)> = kinds
            .iter()
            .map(|&kind| {
                let of = |r: &TreeRun, i: usize| {
                    r.cpu_by_kind
                        .iter()
                        .find(|(k, _, _)| k == kind)
                        .map_or(0.0, |e| if i == 0 { e.1 } else { e.2 as f64 })
                };
                let (s, count) = (median(m, &|r| of(r, 0)), median(m, &|r| of(r, 1)));
                (
                    s,
                    format!(
                        "{kind} {:.3} s ({count:.0} processes)",
                        s / variant.pages as f64
                    ),
                )
            })
            .filter(|(s, _)| *s >= 0.005)
            .collect();
        shares.sort_by(|a, b| b.0.total_cmp(&a.0));
        let shares: Vec<String> = shares.into_iter().map(|(_, s)| s).collect();
        println!(
            "  {}: CPU per page by process (medians, sampled): {}",
            variant.label,
            shares.join(", ")
        );
    }
    if let Some(i) = variants.iter().position(|v| v.render == Some(1)) {
        let one = median(&measured[i], &wall) / RENDER_PAGES as f64;
        println!(
            "  at --render-concurrency 1, a page took {one:.2} s of wall time, {:.2} s beyond --render-idle's 0.5 s",
            one - 0.5
        );
    }
}

/// One run measured as a process tree.
#[derive(Clone, Debug)]
struct TreeRun {
    /// Wall time; CPU seconds of the whole tree (`cpu_program` +
    /// `cpu_orphans`); the benchmark process's own CPU as `server_cpu`.
    measured: Measured,
    /// wait4's CPU seconds of scriptscrape, with every descendant reaped
    /// under it.
    cpu_program: f64,
    /// wait4's CPU seconds of the tree's orphans, reaped here.
    cpu_orphans: f64,
    orphans: usize,
    /// The tree's CPU seconds summed from /proc samples, a check from
    /// below.
    cpu_sampled: f64,
    /// The same by kind of process, the most first: kind, seconds,
    /// processes.
    cpu_by_kind: Vec<(String, f64, usize)>,
    processes_seen: usize,
    most_processes: usize,
    /// The peak over samples of the tree's summed PSS, and of its summed
    /// RSS (which counts shared pages once per process), in MB.
    peak_pss_mb: f64,
    peak_rss_sum_mb: f64,
    /// Readings of the tree's PSS.
    pss_readings: u32,
    /// The sampler's own CPU seconds (part of `server_cpu`).
    sampler_cpu: f64,
}

impl TreeRun {
    /// Runs `cmd` to the end and measures its whole process tree (see the
    /// `tree` module for how, and why wait4 of the program alone is not
    /// its CPU time); fails loudly if any process of the tree outlives
    /// the program by more than a few seconds, after killing it. This
    /// process must be a subreaper meanwhile ([`tree::set_subreaper`]).
    fn measure(cmd: &Command) -> TreeRun {
        let bench_cpu_before = self_cpu();
        let (measured, seen) = measure_with(cmd, tree::sample);
        let orphans = tree::reap_orphans(Duration::from_secs(5));
        let bench_cpu = self_cpu() - bench_cpu_before;
        assert!(
            orphans.left.is_empty(),
            "processes of the run were still running 5 s after scriptscrape exited (now killed): {}",
            orphans.left.join(", ")
        );
        let cpu = measured.cpu + orphans.cpu;
        let cpu_sampled = seen.cpu_sampled();
        // The samples count each process's time only up to its last
        // sample, so they can fall short of wait4, never exceed it by
        // more than rounding (clock ticks of 10 ms, per process).
        if cpu_sampled > cpu * 1.02 + 0.1 {
            println!(
                "  WARNING: the processes sampled used {cpu_sampled:.2} s of CPU, more than wait4's {cpu:.2} s: some of the tree's time escaped wait4"
            );
        }
        TreeRun {
            measured: Measured {
                cpu,
                server_cpu: bench_cpu,
                ..measured
            },
            cpu_program: measured.cpu,
            cpu_orphans: orphans.cpu,
            orphans: orphans.reaped,
            cpu_sampled,
            cpu_by_kind: seen.cpu_by_kind(),
            processes_seen: seen.processes_seen(),
            most_processes: seen.most_processes,
            peak_pss_mb: seen.peak_pss_kb as f64 / 1024.0,
            peak_rss_sum_mb: seen.peak_rss_kb as f64 / 1024.0,
            pss_readings: seen.pss_readings,
            sampler_cpu: seen.sampler_cpu,
        }
    }

    fn print(&self, label: &str, pages: u64) {
        println!(
            "  {label}: wall {:.2} s, {:.1} pages/s; CPU {:.2} s (wait4: scriptscrape {:.2} s + {} orphans reaped here {:.2} s; summed from /proc samples {:.2} s); {} processes, {} at once at most; peak PSS {:.0} MB ({} readings), summed RSS {:.0} MB; sampler CPU {:.2} s",
            self.measured.wall,
            pages as f64 / self.measured.wall,
            self.measured.cpu,
            self.cpu_program,
            self.orphans,
            self.cpu_orphans,
            self.cpu_sampled,
            self.processes_seen,
            self.most_processes,
            self.peak_pss_mb,
            self.pss_readings,
            self.peak_rss_sum_mb,
            self.sampler_cpu,
        );
        let kinds: Vec<String> = self
            .cpu_by_kind
            .iter()
            .map(|(kind, cpu, n)| format!("{kind} {cpu:.2} s ({n})"))
            .collect();
        println!("    CPU by process (sampled): {}", kinds.join(", "));
    }
}

/// `scriptscrape diff` of two runs' outputs (scripts and page reports),
/// about 20 scripts a page: time, and peak memory against the rows held.
fn diff(dir: &Path, runs: usize) {
    println!("\n## diff: two runs of ~20 scripts a page, 1 page in 100 changed");
    for pages in [50_000u64, 200_000] {
        let old = inventories::write(dir, pages, false);
        let new = inventories::write(dir, pages, true);
        let input_mb = [&old.scripts, &new.scripts, &old.pages, &new.pages]
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>() as f64
            / 1e6;
        let changes = dir.join("diff-changes.csv");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scriptscrape"));
        cmd.arg("diff")
            .args([&old.scripts, &new.scripts])
            .arg("--old-pages")
            .arg(&old.pages)
            .arg("--new-pages")
            .arg(&new.pages)
            .arg("-o")
            .arg(&changes)
            .arg("-q");
        let m = median_of(runs, || measure(&cmd));
        let rows = old.rows + new.rows;
        let found =
            std::fs::read_to_string(&changes).map_or(0, |t| t.lines().count().saturating_sub(1));
        println!(
            "{pages} pages, {rows} script rows in both runs, {input_mb:.0} MB of input: wall {:.2} s, CPU {:.2} s, peak RSS {:.0} MB ({:.0} bytes per row; {:.2} x the input), {:.1} M rows/s; {found} changes",
            m.wall,
            m.cpu,
            m.peak_rss_mb,
            m.peak_rss_mb * 1024.0 * 1024.0 / rows as f64,
            m.peak_rss_mb / input_mb,
            rows as f64 / m.wall / 1e6,
        );
        for p in [&old.scripts, &new.scripts, &old.pages, &new.pages, &changes] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The extractor alone on one thread: MB/s per core, the figure issue 4
/// asks for before and after optimising it. Timed by the thread's own CPU
/// time as well as the wall clock: on a shared machine the first moves
/// less when the thread is preempted.
fn extract(runs: usize) {
    let n = 2_000u64;
    println!("\n## extractor alone: {n} realistic pages, 1 thread");
    let bodies: Vec<String> = (0..n)
        .map(|i| pages::page(i, pages::Size::Realistic))
        .collect();
    let mb = bodies.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    let url = url::Url::parse("http://127.0.0.1/p/0").expect("static URL");
    let ways = [
        (
            "html5ever's tree",
            scriptscrape::extract::Extractor::new().tree_only(true),
        ),
        (
            "fast scan (html5ever when unsure)",
            scriptscrape::extract::Extractor::new(),
        ),
    ];
    let sure = bodies
        .iter()
        .filter(|b| ways[1].1.extract_page_fast(&url, b).is_ok())
        .count();
    println!("the fast scan is sure of {sure} of the {n} pages");
    let mut per_cpu_s = vec![Vec::new(); ways.len()];
    let mut per_wall_s = vec![Vec::new(); ways.len()];
    // The two alternate run by run, so that the machine's drift falls on
    // both alike.
    for _ in 0..runs.max(1) {
        for (way, (_, extractor)) in ways.iter().enumerate() {
            let (cpu, wall) = (thread_cpu(), Instant::now());
            let scripts: usize = bodies
                .iter()
                .map(|b| extractor.extract(&url, b).len())
                .sum();
            std::hint::black_box(scripts);
            per_wall_s[way].push(mb / wall.elapsed().as_secs_f64());
            per_cpu_s[way].push(mb / (thread_cpu() - cpu));
        }
    }
    let show = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let runs: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
        format!("{:.1} MB/s (runs: {})", v[v.len() / 2], runs.join(", "))
    };
    let median = |v: &[f64]| v[v.len() / 2];
    for (way, (name, _)) in ways.iter().enumerate() {
        println!(
            "{name}, {mb:.0} MB: per CPU second {}; per wall second {}",
            show(&mut per_cpu_s[way]),
            show(&mut per_wall_s[way])
        );
    }
    println!(
        "fast scan / html5ever, per CPU second: {:.2}x",
        median(&per_cpu_s[1]) / median(&per_cpu_s[0])
    );
}

/// CPU seconds used by the calling thread.
fn thread_cpu() -> f64 {
    // SAFETY: as in wait4; RUSAGE_THREAD is Linux's, as is the rest of the
    // harness (/proc).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Latency-bound: 10,000 pages, 50 ms each, -c 256.
fn latency(dir: &Path, runs: usize, baseline: Option<&Baseline>) {
    let n = 10_000u64;
    let latency = Duration::from_millis(50);
    let server = Server::start(latency, pages::Size::Realistic);
    let urls = write_urls(dir, "latency.txt", (0..n).map(|i| server.url(i)));
    let ceiling = latency.as_secs_f64() * n as f64 / 256.0;
    println!(
        "\n## latency-bound: {n} pages, {} ms latency, -c 256",
        latency.as_millis()
    );
    println!("ceiling (N x latency / c): {ceiling:.2} s");
    let ours = median_of(runs, || server.measure(&scriptscrape(&urls, 256)));
    ours.print("scriptscrape", n);
    println!("  wall / ceiling: {:.2}", ours.wall / ceiling);
    if let Some(b) = baseline {
        b.beside(&server, &urls, 256, n, &ours);
    }
}

/// CPU-bound: 5,000 pages, no latency; the ceiling is the extractor alone.
fn cpu(dir: &Path, runs: usize, baseline: Option<&Baseline>) {
    let n = 5_000u64;
    let server = Server::start(Duration::ZERO, pages::Size::Realistic);
    let urls = write_urls(dir, "cpu.txt", (0..n).map(|i| server.url(i)));
    println!("\n## CPU-bound: {n} pages, no latency, -c 64");
    let mut ceilings: Vec<(f64, f64)> = (0..runs.max(1))
        .map(|_| extraction_ceiling(n, cores()))
        .collect();
    ceilings.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ceiling = ceilings[ceilings.len() / 2];
    let spread: Vec<String> = ceilings.iter().map(|c| format!("{:.0}", c.0)).collect();
    println!(
        "ceiling (extraction alone, {} threads): {:.0} pages/s, {:.1} MB/s ({:.1} MB/s per core) (runs: {} pages/s)",
        cores(),
        ceiling.0,
        ceiling.1,
        ceiling.1 / cores() as f64,
        spread.join(", ")
    );
    let ours = median_of(runs, || server.measure(&scriptscrape(&urls, 64)));
    ours.print("scriptscrape", n);
    println!(
        "  pages/s vs ceiling: {:.0} %",
        100.0 * (n as f64 / ours.wall) / ceiling.0
    );
    if let Some(b) = baseline {
        b.beside(&server, &urls, 64, n, &ours);
    }
}

/// Scale: the same small pages behind 10k, 100k and 1M distinct URLs.
fn scale(dir: &Path, runs: usize, baseline: Option<&Baseline>) {
    let server = Server::start(Duration::from_millis(2), pages::Size::Small);
    println!("\n## scale: 2 ms latency, small pages (URL n serves body n % {DISTINCT}), -c 256");
    let mut base_rss = None;
    for n in [10_000u64, 100_000, 1_000_000] {
        let urls = write_urls(
            dir,
            &format!("scale-{n}.txt"),
            (0..n).map(|i| server.url(i)),
        );
        // The million-URL run takes minutes; once is enough for its memory.
        let runs = if n >= 1_000_000 { 1 } else { runs };
        let m = median_of(runs, || server.measure(&scriptscrape(&urls, 256)));
        m.print(&format!("{n} URLs"), n);
        let base = *base_rss.get_or_insert(m.peak_rss_mb);
        println!(
            "  peak RSS vs 10k run: {:+.0} %",
            100.0 * (m.peak_rss_mb / base - 1.0)
        );
        match baseline {
            // At its rate on these pages the Python program would need most
            // of an hour for a million.
            Some(_) if n >= 1_000_000 => {
                println!("python asyncio+aiohttp+bs4: not run at a million URLs (too slow)")
            }
            Some(b) => b.beside(&server, &urls, 256, n, &m),
            None => {}
        }
    }
}

/// Crawl: the linked site from `/c/0`, no latency, -c 64 like the CPU-bound
/// scenario on the same bodies, so that what differs from it is the crawl's
/// own work (links, seen-set, frontier, breadth-first order).
fn crawl(dir: &Path, runs: usize, frontier_memory: Option<usize>, baseline: Option<&Baseline>) {
    let server = Server::start(Duration::ZERO, pages::Size::Realistic);
    let seed = write_urls(dir, "crawl-seed.txt", std::iter::once(server.site_url(0)));
    let stats = dir.join("crawl-stats.json");
    let pages = SITE_PAGES + NAV_PAGES.len() as u64;
    let memory = frontier_memory.map_or(String::new(), |n| format!(" --frontier-memory {n}"));
    println!(
        "\n## crawl: {SITE_PAGES} linked pages and {} nav targets from /c/0, no latency, -c 64, --depth {CRAWL_DEPTH} --max-pages {pages}{memory}",
        NAV_PAGES.len()
    );
    let mut cmd = scriptscrape(&seed, 64);
    cmd.args([
        "--depth",
        &CRAWL_DEPTH.to_string(),
        "--max-pages",
        &pages.to_string(),
    ])
    .arg("--stats")
    .arg(&stats);
    if let Some(n) = frontier_memory {
        cmd.args(["--frontier-memory", &n.to_string()]);
    }
    let ours = median_of(runs, || {
        // A stale file from an earlier run must not pass for this one's.
        let _ = std::fs::remove_file(&stats);
        server.site.reset();
        let m = server.measure(&cmd);
        server.site.check("scriptscrape");
        println!("  its --stats: {}", crawl_stats(&stats));
        m
    });
    ours.print("scriptscrape", pages);
    if let Some(b) = baseline {
        let cmd = b.crawl_command(&seed, 64, pages);
        b.compare(pages, &ours, || {
            server.site.reset();
            let m = server.measure(&cmd);
            server.site.check("python");
            m
        });
    }
}

/// What the binary's `--stats` says of its crawl: a second count of the
/// pages besides the server's, and how many URLs the frontier spilled.
fn crawl_stats(path: &Path) -> String {
    let Some(stats) = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
    else {
        return "missing or unreadable".to_string();
    };
    let (pages, crawl) = (&stats["pages"], &stats["crawl"]);
    format!(
        "{} pages ({} ok, {} failed), {} scripts, {} discovered, {} off-scope links, {} left, {} spilled",
        pages["total"],
        pages["ok"],
        pages["failed"],
        stats["scripts"],
        crawl["discovered"],
        crawl["off_scope"],
        crawl["left"],
        crawl["spilled"]
    )
}

/// Pages per second and MB per second of `Extractor::extract` over the
/// benchmark pages, on `threads` threads, in this process.
fn extraction_ceiling(n: u64, threads: usize) -> (f64, f64) {
    let bodies: Vec<String> = (0..n).map(|i| body(i, pages::Size::Realistic)).collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let url = url::Url::parse("http://127.0.0.1/p/0").expect("static URL");
    // Threads take the next page from a shared counter, so that uneven
    // page sizes cannot leave a core idle at the end.
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (bodies, url, next) = (&bodies, &url, &next);
            s.spawn(move || {
                let extractor = scriptscrape::extract::Extractor::new();
                let mut scripts = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = bodies.get(i) else { break };
                    scripts += extractor.extract(url, body).len();
                }
                std::hint::black_box(scripts);
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    (n as f64 / secs, bytes as f64 / secs / 1e6)
}

fn scriptscrape(urls: &Path, concurrency: usize) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scriptscrape"));
    cmd.arg(urls).args([
        "-c",
        &concurrency.to_string(),
        "--per-host",
        &concurrency.to_string(),
        "-q",
    ]);
    cmd
}

/// The Python program of bench/baseline.py in a virtual environment of its
/// own under target/.
struct Baseline {
    /// Runs per figure (`--python-runs`).
    runs: usize,
    python: PathBuf,
    script: PathBuf,
    /// bench/crawl_baseline.py: the same program's crawling counterpart.
    crawl_script: PathBuf,
}

impl Baseline {
    fn prepare(runs: usize) -> Option<Baseline> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join("target/bench-venv");
        let python = venv.join("bin/python");
        if !python.exists() {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status();
            if !made.is_ok_and(|s| s.success()) {
                println!("python3 with venv not available: skipping the Python comparison");
                return None;
            }
            let pip = Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "aiohttp",
                    "beautifulsoup4",
                    "lxml",
                ])
                .status();
            if !pip.is_ok_and(|s| s.success()) {
                println!(
                    "could not install aiohttp, beautifulsoup4, lxml: skipping the Python comparison"
                );
                let _ = std::fs::remove_dir_all(&venv);
                return None;
            }
        }
        Some(Baseline {
            runs,
            python,
            script: root.join("bench/baseline.py"),
            crawl_script: root.join("bench/crawl_baseline.py"),
        })
    }

    /// Times the Python program on the same URLs and prints it next to
    /// scriptscrape's figures from the same run.
    fn beside(&self, server: &Server, urls: &Path, concurrency: usize, n: u64, ours: &Measured) {
        let cmd = self.command(urls, concurrency);
        self.compare(n, ours, || server.measure(&cmd));
    }

    /// Times the Python program with `measure` (one run each call) and
    /// prints it next to scriptscrape's figures from the same run.
    fn compare(&self, n: u64, ours: &Measured, measure: impl FnMut() -> Measured) {
        let theirs = median_of(self.runs, measure);
        theirs.print("python asyncio+aiohttp+bs4", n);
        println!(
            "  python wall / scriptscrape wall: {:.1}x, peak RSS {:.1}x",
            theirs.wall / ours.wall,
            theirs.peak_rss_mb / ours.peak_rss_mb
        );
    }

    fn command(&self, urls: &Path, concurrency: usize) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .arg(urls)
            .args(["-c", &concurrency.to_string(), "-o", "-"]);
        cmd
    }

    fn crawl_command(&self, seeds: &Path, concurrency: usize, max_pages: u64) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.crawl_script).arg(seeds).args([
            "-c",
            &concurrency.to_string(),
            "--depth",
            &CRAWL_DEPTH.to_string(),
            "--max-pages",
            &max_pages.to_string(),
            "-o",
            "-",
        ]);
        cmd
    }
}

/// One run's figures (or the median of several).
#[derive(Clone, Copy, Debug, Default)]
struct Measured {
    wall: f64,
    cpu: f64,
    peak_rss_mb: f64,
    first_row: f64,
    mb_served: f64,
    server_cpu: f64,
}

impl Measured {
    fn fields(&self) -> [f64; 6] {
        [
            self.wall,
            self.cpu,
            self.peak_rss_mb,
            self.first_row,
            self.mb_served,
            self.server_cpu,
        ]
    }

    fn print(&self, label: &str, pages: u64) {
        println!(
            "{label}: wall {:.2} s, CPU {:.2} s, peak RSS {:.0} MB, first row {:.3} s, {:.0} pages/s, {:.1} MB/s; server CPU {:.0} % of wall",
            self.wall,
            self.cpu,
            self.peak_rss_mb,
            self.first_row,
            pages as f64 / self.wall,
            self.mb_served / self.wall,
            100.0 * self.server_cpu / self.wall,
        );
    }
}

/// Runs `f` `runs` times and takes the median of each figure separately,
/// printing the spread of wall times so noise is visible.
fn median_of(runs: usize, mut f: impl FnMut() -> Measured) -> Measured {
    let all: Vec<Measured> = (0..runs.max(1)).map(|_| f()).collect();
    medians(&all)
}

/// The median of each figure of `all` separately, printing the spread of
/// wall times so noise is visible.
fn medians(all: &[Measured]) -> Measured {
    let median = |i: usize| {
        let mut v: Vec<f64> = all.iter().map(|m| m.fields()[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    if all.len() > 1 {
        let walls: Vec<String> = all.iter().map(|m| format!("{:.2}", m.wall)).collect();
        println!("  (runs: {})", walls.join(", "));
    }
    Measured {
        wall: median(0),
        cpu: median(1),
        peak_rss_mb: median(2),
        first_row: median(3),
        mb_served: median(4),
        server_cpu: median(5),
    }
}

/// The loopback page server.
struct Server {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    site: Arc<Site>,
    scripts: Arc<ScriptSite>,
    /// Where each of [`SCRIPT_HOSTS`] is served (with scripts only).
    script_hosts: Vec<SocketAddr>,
}

#[derive(Clone)]
struct ServerState {
    latency: Duration,
    bodies: Arc<Vec<Bytes>>,
    served: Arc<AtomicU64>,
    site: Arc<Site>,
    /// `http://127.0.0.1:PORT`, for the site's absolute links.
    origin: Arc<str>,
    scripts: Arc<ScriptSite>,
    /// The host this listener stands for: "" for the site itself (the
    /// pages and their own scripts), else one of [`SCRIPT_HOSTS`].
    host: &'static str,
}

/// The third-party hosts the pages' external scripts name (benches/pages.rs).
/// With scripts served, host i is a listener on 127.0.0.{i + 2} of its
/// own: so each has its own connections and per-host limit, as it would
/// on the internet, and every request stays on the loopback interface.
const SCRIPT_HOSTS: [&str; 3] = [
    "cdn.example.net",
    "www.googletagmanager.com",
    "static.example.com",
];

/// Distinct script bodies made before the run; the script at a URL is
/// body hash(URL) % SCRIPT_BODIES, the same URL the same body on every run.
const SCRIPT_BODIES: u64 = 512;

/// The scripts the server sends (in the `scripts` scenario; empty and
/// answering 404 elsewhere), and what was asked of them.
struct ScriptSite {
    /// Script bodies as they are.
    plain: Vec<Bytes>,
    /// The same gzip-compressed, as the third-party hosts send them (CDNs
    /// compress JavaScript); the site's own scripts go uncompressed, as
    /// its pages do.
    gzip: Vec<Bytes>,
    /// `sha384-…` of each body, worked out here with sha2 itself, for the
    /// check of what the program reports.
    sri: Vec<String>,
    /// Requests for each script URL (host name and path, without the
    /// loopback address, which changes from run to run).
    hits: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Bytes sent (compressed where they were), their decompressed size,
    /// and the decompressed size of those sent compressed.
    sent: AtomicU64,
    decompressed: AtomicU64,
    gunzipped: AtomicU64,
    /// Requests for anything the server does not serve.
    unexpected: AtomicU64,
}

/// What the script hosts saw since the last [`ScriptSite::take`].
#[derive(Clone, Copy, Debug, Default)]
struct ScriptTraffic {
    requests: u64,
    urls: u64,
    /// Requests beyond the first for the same URL.
    repeated: u64,
    mb_sent: f64,
    mb: f64,
    /// Of `mb`, what came gzip-compressed.
    mb_gunzipped: f64,
    unexpected: u64,
}

impl ScriptSite {
    fn new(with_scripts: bool) -> ScriptSite {
        use std::io::Write as _;
        let n = if with_scripts { SCRIPT_BODIES } else { 0 };
        let plain: Vec<Bytes> = (0..n).map(|i| Bytes::from(pages::script(i))).collect();
        let gzip = plain
            .iter()
            .map(|body| {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(body).expect("gzip to memory");
                Bytes::from(gz.finish().expect("gzip to memory"))
            })
            .collect();
        let sri = plain
            .iter()
            .map(|body| {
                use base64::Engine as _;
                use sha2::Digest as _;
                let digest = sha2::Sha384::digest(body);
                format!(
                    "sha384-{}",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            })
            .collect();
        ScriptSite {
            plain,
            gzip,
            sri,
            hits: Default::default(),
            sent: AtomicU64::new(0),
            decompressed: AtomicU64::new(0),
            gunzipped: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
        }
    }

    /// The traffic since the last call, which starts counting afresh.
    fn take(&self) -> ScriptTraffic {
        let hits = std::mem::take(&mut *self.hits.lock().expect("hits lock"));
        let requests: u64 = hits.values().map(|&n| u64::from(n)).sum();
        ScriptTraffic {
            requests,
            urls: hits.len() as u64,
            repeated: requests - hits.len() as u64,
            mb_sent: self.sent.swap(0, Ordering::Relaxed) as f64 / 1e6,
            mb: self.decompressed.swap(0, Ordering::Relaxed) as f64 / 1e6,
            mb_gunzipped: self.gunzipped.swap(0, Ordering::Relaxed) as f64 / 1e6,
            unexpected: self.unexpected.swap(0, Ordering::Relaxed),
        }
    }
}

/// Pages of the crawled site, `/c/0` to `/c/{SITE_PAGES - 1}`.
const SITE_PAGES: u64 = 5_000;

/// The targets of the links every page body already has (its navigation
/// and "read more" links). A crawler finds them too, so the site serves
/// them as small pages, and they count among the pages a crawl fetches.
const NAV_PAGES: [&str; 4] = ["/a", "/b", "/c", "/more"];

/// Deep enough for the whole site: breadth first, the farthest page is 7
/// hops from `/c/0` (a binary tree alone would need 13).
const CRAWL_DEPTH: u64 = 20;

const NAV_BODY: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Section</title></head>\n<body><p>A section of the site.</p></body></html>\n";

/// What a crawl asked of the site, so the harness can tell whether it
/// fetched every page exactly once.
struct Site {
    /// Requests for each `/c/{n}`.
    pages: Vec<AtomicU32>,
    nav: AtomicU64,
    robots: AtomicU64,
}

impl Site {
    fn new() -> Site {
        Site {
            pages: (0..SITE_PAGES).map(|_| AtomicU32::new(0)).collect(),
            nav: AtomicU64::new(0),
            robots: AtomicU64::new(0),
        }
    }

    fn reset(&self) {
        for count in &self.pages {
            count.store(0, Ordering::Relaxed);
        }
        self.nav.store(0, Ordering::Relaxed);
        self.robots.store(0, Ordering::Relaxed);
    }

    /// Prints what `who` fetched, with a warning unless it was every page
    /// of the site and every nav target, each once.
    fn check(&self, who: &str) {
        let (mut fetched, mut repeats) = (0u64, 0u64);
        for count in &self.pages {
            let n = u64::from(count.load(Ordering::Relaxed));
            fetched += u64::from(n > 0);
            repeats += n.saturating_sub(1);
        }
        let nav = self.nav.load(Ordering::Relaxed);
        let robots = self.robots.load(Ordering::Relaxed);
        println!(
            "  {who}: {fetched} of {SITE_PAGES} site pages, {repeats} repeated requests, {nav} nav-target requests, robots.txt requested {robots} times"
        );
        if fetched != SITE_PAGES || repeats != 0 || nav != NAV_PAGES.len() as u64 {
            println!(
                "  WARNING: {who} did not fetch each of the {SITE_PAGES} site pages and {} nav targets exactly once",
                NAV_PAGES.len()
            );
        }
    }
}

/// Distinct page bodies a server holds; page n is body n % DISTINCT. Made
/// before the run, so that the server's share of the CPU is sending, not
/// generating, and the same bodies feed the extraction ceiling.
const DISTINCT: u64 = 2_000;

/// The body of page `n`, as the server sends it.
fn body(n: u64, size: pages::Size) -> String {
    pages::page(n % DISTINCT, size)
}

impl Server {
    fn start(latency: Duration, size: pages::Size) -> Server {
        Server::launch(latency, size, false)
    }

    /// A server that also serves the pages' external scripts: the site's
    /// own (`/assets/…`) from 127.0.0.1, and each of [`SCRIPT_HOSTS`] from
    /// a loopback address of its own, the pages' `https://{host}/` being
    /// rewritten to `http://127.0.0.{i + 2}:{port}/`. Scripts wait the
    /// same latency as pages.
    fn start_with_scripts(latency: Duration, size: pages::Size) -> Server {
        Server::launch(latency, size, true)
    }

    fn launch(latency: Duration, size: pages::Size, with_scripts: bool) -> Server {
        let served = Arc::new(AtomicU64::new(0));
        let site = Arc::new(Site::new());
        let scripts = Arc::new(ScriptSite::new(with_scripts));
        let bind = |ip: &str| {
            let listener = std::net::TcpListener::bind((ip, 0)).expect("bind");
            listener
                .set_nonblocking(true)
                .expect("nonblocking listener");
            listener
        };
        let listener = bind("127.0.0.1");
        let addr = listener.local_addr().expect("addr");
        let hosts: Vec<std::net::TcpListener> = if with_scripts {
            (0..SCRIPT_HOSTS.len())
                .map(|i| bind(&format!("127.0.0.{}", i + 2)))
                .collect()
        } else {
            Vec::new()
        };
        let host_addrs: Vec<SocketAddr> = hosts
            .iter()
            .map(|l| l.local_addr().expect("addr"))
            .collect();
        let bodies = Arc::new(
            (0..DISTINCT)
                .map(|n| {
                    let mut body = body(n, size);
                    for (host, at) in SCRIPT_HOSTS.iter().zip(&host_addrs) {
                        body = body.replace(&format!("https://{host}/"), &format!("http://{at}/"));
                    }
                    Bytes::from(body)
                })
                .collect(),
        );
        let state = ServerState {
            latency,
            bodies,
            served: Arc::clone(&served),
            site: Arc::clone(&site),
            origin: format!("http://{addr}").into(),
            scripts: Arc::clone(&scripts),
            host: "",
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let mut app = Router::new()
                    .route("/p/{n}", get(page))
                    .route("/c/{n}", get(site_page))
                    .route("/robots.txt", get(robots))
                    .route("/assets/{*rest}", get(script))
                    .route("/lib/{*rest}", get(script))
                    .route("/css/{*rest}", get(stylesheet))
                    // What a browser asks every site for; none here.
                    .route("/favicon.ico", get(|| async { StatusCode::NOT_FOUND }));
                for path in NAV_PAGES {
                    app = app.route(path, get(nav_page));
                }
                let app = app.fallback(unexpected);
                for (listener, host) in hosts.into_iter().zip(SCRIPT_HOSTS) {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let app = app.clone().with_state(ServerState {
                        host,
                        ..state.clone()
                    });
                    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
                }
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app.with_state(state))
                    .await
                    .expect("serve");
            });
        });
        Server {
            addr,
            served,
            site,
            scripts,
            script_hosts: host_addrs,
        }
    }

    fn url(&self, n: u64) -> String {
        format!("http://{}/p/{n}", self.addr)
    }

    fn site_url(&self, n: u64) -> String {
        format!("http://{}/c/{n}", self.addr)
    }

    /// Runs `cmd` to the end, its standard output drained here, and
    /// measures it, with what this server sent meanwhile.
    fn measure(&self, cmd: &Command) -> Measured {
        let served_before = self.served.load(Ordering::Relaxed);
        let server_cpu_before = self_cpu();
        let measured = measure(cmd);
        Measured {
            mb_served: (self.served.load(Ordering::Relaxed) - served_before) as f64 / 1e6,
            // This process does nothing but serve (and drain a pipe) while
            // the program runs.
            server_cpu: self_cpu() - server_cpu_before,
            ..measured
        }
    }
}

/// Runs `cmd` to the end, its standard output drained here, and measures
/// it: wall and CPU time, peak RSS, when the first row came.
fn measure(cmd: &Command) -> Measured {
    // ru_maxrss is no good here: a child started with posix_spawn
    // inherits this process's high-water mark through exec. The
    // kernel's VmHWM for the child's own address space is sampled
    // instead; it only grows, so the last sample before exit is within
    // a sampling interval of the peak.
    let (measured, peak_kb) = measure_with(cmd, sample_peak_kb);
    Measured {
        peak_rss_mb: peak_kb as f64 / 1024.0,
        ..measured
    }
}

/// Runs `cmd` as [`measure`] does, but with `sampler` (given the child's
/// pid and a flag set once it has exited and been reaped) watching it
/// instead of its VmHWM; the figures without peak RSS, and what the
/// sampler returned.
fn measure_with<S>(
    cmd: &Command,
    sampler: impl FnOnce(u32, Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<S>,
) -> (Measured, S) {
    let mut cmd = rebuild(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also reports its resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("start the program under test");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut first_row = None;
        let mut newlines = 0usize;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if first_row.is_none() {
                newlines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                // The header is the first line; the first row ends the second.
                if newlines >= 2 {
                    first_row = Some(started.elapsed());
                }
            }
        }
        first_row
    });
    let pid = child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sampler(pid, Arc::clone(&done));
    let (status, usage) = wait_when_exited(pid);
    done.store(true, Ordering::Relaxed);
    let sampled = sampler.join().expect("sampler");
    let wall = started.elapsed().as_secs_f64();
    let first_row = reader
        .join()
        .expect("reader")
        .map_or(f64::NAN, |d| d.as_secs_f64());
    if !status_ok(status) {
        println!("  (the program exited with status {status:#x})");
    }
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let measured = Measured {
        wall,
        cpu,
        first_row,
        ..Measured::default()
    };
    (measured, sampled)
}

async fn page(State(state): State<ServerState>, UrlPath(n): UrlPath<u64>) -> impl IntoResponse {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let body = state.bodies[(n % DISTINCT) as usize].clone();
    state.served.fetch_add(body.len() as u64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

/// A script: the body its URL hashes to, gzip-compressed from the
/// third-party hosts when the client accepts gzip.
async fn script(
    State(state): State<ServerState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let scripts = &state.scripts;
    if scripts.plain.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let url = format!(
        "{}{}",
        state.host,
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    );
    let n = script_body(&url);
    *scripts
        .hits
        .lock()
        .expect("hits lock")
        .entry(url)
        .or_insert(0) += 1;
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let gzip = !state.host.is_empty()
        && headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let plain = &scripts.plain[n];
    scripts
        .decompressed
        .fetch_add(plain.len() as u64, Ordering::Relaxed);
    let content_type = (header::CONTENT_TYPE, "text/javascript; charset=utf-8");
    // As CDNs send it: a browser runs a cross-origin module script, or one
    // with `crossorigin`, only with it.
    let cors = (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    if gzip {
        scripts
            .gunzipped
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        let body = scripts.gzip[n].clone();
        scripts.sent.fetch_add(body.len() as u64, Ordering::Relaxed);
        (
            [content_type, cors, (header::CONTENT_ENCODING, "gzip")],
            body,
        )
            .into_response()
    } else {
        scripts
            .sent
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        ([content_type, cors], plain.clone()).into_response()
    }
}

/// The pages' stylesheet (`/css/site.css`), which a browser asks for.
async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

/// A small stylesheet for the pages' classes, so that `--render`'s
/// browser lays them out as a site's would be.
const STYLESHEET: &str = "\
body.page{margin:0 auto;max-width:72rem;padding:1rem 2rem;font:16px/1.5 system-ui,sans-serif;color:#222;background:#fafafa}
ul.nav{display:flex;gap:1.5rem;list-style:none;margin:0 0 2rem;padding:.75rem 0;border-bottom:1px solid #ddd}
ul.nav li a{color:#0645ad;text-decoration:none;font-weight:600}
ul.nav li a:hover{text-decoration:underline}
div.card{display:grid;grid-template-columns:1fr;gap:.5rem;margin:1rem 0;padding:1rem 1.25rem;border:1px solid #e3e3e3;border-radius:8px;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.06)}
div.card h2{margin:0;font-size:1.25rem;line-height:1.3}
div.card p{margin:0;color:#444}
div.card a{color:#0645ad}
svg{display:inline-block;vertical-align:middle;fill:currentColor;color:#888}
@media (max-width:40rem){body.page{padding:.5rem 1rem}ul.nav{flex-wrap:wrap;gap:.75rem}}
";

/// The body of the script at `url` (host name, or "" for the site's own,
/// then path and query): FNV-1a, then splitmix's finaliser.
fn script_body(url: &str) -> usize {
    let hash = url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (mix(hash) % SCRIPT_BODIES) as usize
}

/// Anything else: counted, so that a request nobody expected shows.
async fn unexpected(State(state): State<ServerState>) -> StatusCode {
    state.scripts.unexpected.fetch_add(1, Ordering::Relaxed);
    StatusCode::NOT_FOUND
}

/// Page `n` of the crawled site: body n % DISTINCT, as `/p/{n}` serves it,
/// with the page's links inserted before `</body>`.
async fn site_page(State(state): State<ServerState>, UrlPath(n): UrlPath<u64>) -> Response {
    let Some(count) = state.site.pages.get(n as usize) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    count.fetch_add(1, Ordering::Relaxed);
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let body = &state.bodies[(n % DISTINCT) as usize];
    let links = site_links(n, &state.origin);
    // The bodies end with "</body></html>\n", so the search from the end
    // stops at once.
    let cut = body
        .windows(7)
        .rposition(|w| w == b"</body>")
        .unwrap_or(body.len());
    let mut html = Vec::with_capacity(body.len() + links.len());
    html.extend_from_slice(&body[..cut]);
    html.extend_from_slice(links.as_bytes());
    html.extend_from_slice(&body[cut..]);
    state.served.fetch_add(html.len() as u64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The links of page `n` of the crawled site. n → 2n+1, 2n+2 makes every
/// page reachable from page 0; the parent, home and pseudo-random links
/// make cycles and links back to pages already seen; the same page is
/// spelled root-relative, relative, absolute and with a fragment, so that
/// normalisation is needed to fetch each page once; the off-host links
/// must not be followed at all.
fn site_links(n: u64, origin: &str) -> String {
    use std::fmt::Write as _;
    let left = (2 * n + 1) % SITE_PAGES;
    let right = (2 * n + 2) % SITE_PAGES;
    let next = (n + 1) % SITE_PAGES;
    let [r0, r1, r2] = [0, 1, 2].map(|i| mix(n * 4 + i) % SITE_PAGES);
    let parent = n / 2;
    let mut html = String::with_capacity(1024);
    write!(
        html,
        "<nav class=\"related\"><ul>\n\
         <li><a href=\"/c/{left}\">Page {left}</a></li>\n\
         <li><a href=\"{right}\">Page {right}</a></li>\n\
         <li><a href=\"/c/{left}#reviews\">Reviews of page {left}</a></li>\n\
         <li><a href=\"{origin}/c/{parent}\">Up to page {parent}</a></li>\n\
         <li><a href=\"/c/0\">Home</a></li>\n\
         <li><a href=\"./{next}\">Next: page {next}</a></li>\n\
         <li><a href=\"/c/{r0}\">See also page {r0}</a></li>\n\
         <li><a href=\"/c/{r1}\">See also page {r1}</a></li>\n\
         <li><a href=\"/c/{r2}\">See also page {r2}</a></li>\n\
         <li><a href=\"http://other.invalid/x\">Partner</a></li>\n\
         <li><a href=\"https://other.invalid/c/{n}\">Mirror</a></li>\n\
         </ul></nav>\n"
    )
    .expect("writing to a String cannot fail");
    html
}

/// splitmix64's finaliser: the site's pseudo-random links, the same on
/// every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn nav_page(State(state): State<ServerState>) -> impl IntoResponse {
    state.site.nav.fetch_add(1, Ordering::Relaxed);
    state
        .served
        .fetch_add(NAV_BODY.len() as u64, Ordering::Relaxed);
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        NAV_BODY,
    )
}

/// No robots.txt: a 404 means no rules (RFC 9309), so the crawl, which
/// obeys robots.txt by default, asks once and may fetch everything.
async fn robots(State(state): State<ServerState>) -> StatusCode {
    state.site.robots.fetch_add(1, Ordering::Relaxed);
    StatusCode::NOT_FOUND
}

fn rebuild(cmd: &Command) -> Command {
    let mut fresh = Command::new(cmd.get_program());
    fresh.args(cmd.get_args());
    fresh
}
