//! The shared work queue on Redis, measured: what `enqueue`, `work` and
//! `collect` cost against a local run of the same list, how much Redis
//! memory a job's URLs take, and how fast the collector writes.
//!
//! ```text
//! cargo bench --bench queue -- [cpu|latency|late|memory|collect|all]
//!     [--runs N] [--urls N] [--collect-pages N]
//! ```
//!
//! The benchmark starts its own redis-server (`/usr/bin/redis-server`, on a
//! free 127.0.0.1 port, in a temporary directory, no persistence), serves
//! the pipeline benchmark's generated pages from 127.0.0.1 on its own
//! threads, and runs the release binary as separate processes, measured by
//! wait4 (CPU seconds), their VmHWM (peak RSS) and the wall clock, and
//! redis-server by its /proc CPU times and `INFO`.
//!
//! - `cpu`, `latency`: a list of pages, the local run (`scriptscrape LIST
//!   -o … --pages …`) against `enqueue --close`, 1, 2 and 4 `work`ers and
//!   one `collect`, alternated, `--runs` rounds. The workers split the
//!   local run's `-c` between them, so that as many requests are in flight
//!   as in the local run.
//! - `late`: how the work divides between two workers when the second
//!   starts a second after the first.
//! - `memory`: `enqueue` of `--urls` URLs (no fetching), Redis's memory
//!   before and after, the seen-set and the work stream apart.
//! - `collect`: workers finish a job whose results all wait
//!   (`--max-results` above its size), then `collect` alone writes them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

mod harness;
mod pages;

use harness::{
    cores, flag_value, sample_peak_kb, self_cpu, status_ok, tempdir, tv, wait_when_exited,
    write_urls,
};

/// The longest any one process of the benchmark may run before it is
/// killed and the figure reported as such (the million-URL enqueue takes
/// under a minute on this machine).
const PROCESS_LIMIT: Duration = Duration::from_secs(600);

/// Worker counts compared with the local run.
const WORKERS: [usize; 3] = [1, 2, 4];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runs = flag_value(&args, "--runs").unwrap_or(3).max(1);
    let which = args
        .iter()
        .find(|a| !a.starts_with("--") && a.parse::<usize>().is_err())
        .map_or("all", |s| s.as_str());
    let urls = flag_value(&args, "--urls").unwrap_or(1_000_000) as u64;
    let collect_pages = flag_value(&args, "--collect-pages").unwrap_or(10_000) as u64;
    let dir = tempdir().join("queue");
    std::fs::create_dir_all(&dir).expect("bench work dir");
    let redis = Redis::start();
    println!(
        "machine: {} cores; runs per figure: {runs}; {}",
        cores(),
        redis.version()
    );
    if matches!(which, "cpu" | "all") {
        let cpu = Setting {
            name: "cpu",
            pages: 5_000,
            latency: Duration::ZERO,
            size: pages::Size::Realistic,
            concurrency: 64,
        };
        scrape(&dir, &redis, runs, &cpu);
    }
    if matches!(which, "latency" | "all") {
        let latency = Setting {
            name: "latency",
            pages: 20_000,
            latency: Duration::from_millis(20),
            size: pages::Size::Small,
            concurrency: 64,
        };
        scrape(&dir, &redis, runs, &latency);
    }
    if matches!(which, "late" | "all") {
        late(&dir, &redis, runs);
    }
    if matches!(which, "memory" | "all") {
        memory(&dir, &redis, runs, urls);
    }
    if matches!(which, "collect" | "all") {
        collector(&dir, &redis, runs, collect_pages);
    }
    // `redis` is dropped here: the server is killed and its directory
    // removed.
}

// ---------------------------------------------------------------------
// Scenario 1: the local run against enqueue + K workers + collect.
// ---------------------------------------------------------------------

/// A list to scrape.
struct Setting {
    name: &'static str,
    pages: u64,
    latency: Duration,
    size: pages::Size,
    /// The local run's `-c` (and `--per-host`: every page is on one host);
    /// split evenly between the workers.
    concurrency: usize,
}

/// One local run.
#[derive(Clone, Copy, Default)]
struct LocalRun {
    wall: f64,
    cpu: f64,
    peak_rss_mb: f64,
    server_cpu: f64,
    /// Rows in its page report and scripts output.
    pages: u64,
    scripts: u64,
}

/// One run through the queue.
#[derive(Clone, Default)]
struct QueueRun {
    /// From the start of enqueue to the collector's exit.
    wall: f64,
    /// From the start of enqueue to its exit.
    enqueue_wall: f64,
    /// From the start of enqueue to when the last page's result was
    /// published (the job's done + failed counts reached the list).
    published: f64,
    /// From the start of enqueue to when the last result was collected
    /// (acknowledged and removed from the results stream).
    collected: f64,
    /// From the start of enqueue to the last worker's exit.
    workers_exit: f64,
    /// Pages published a second between 10 % and 90 % of the list: the
    /// rate without the start and the end.
    steady: f64,
    /// The most work taken by workers and not yet published, at once.
    in_flight: u64,
    /// Pages each worker published, most first.
    shares: Vec<u64>,
    cpu_enqueue: f64,
    cpu_workers: f64,
    cpu_collector: f64,
    cpu_redis: f64,
    worker_peak_mb: f64,
    collector_peak_mb: f64,
    /// Redis's largest used_memory during the run, over its empty state.
    redis_peak_mb: f64,
    server_cpu: f64,
    pages: u64,
    scripts: u64,
    /// INFO commandstats after the run: (command, calls, usec).
    commands: Vec<(String, u64, u64)>,
    /// Whether every process exited as a finished run does.
    ok: bool,
}

impl QueueRun {
    fn cpu(&self) -> f64 {
        self.cpu_enqueue + self.cpu_workers + self.cpu_collector + self.cpu_redis
    }
}

fn scrape(dir: &Path, redis: &Redis, runs: usize, s: &Setting) {
    let server = Server::start(s.latency, s.size);
    let urls = write_urls(
        dir,
        &format!("{}.txt", s.name),
        (0..s.pages).map(|i| server.url(i)),
    );
    println!(
        "\n## {}: {} {} pages, {} ms latency, -c {} in all (local: -c {c} --per-host {c}; K workers: -c {c}/K --per-host {c}/K each)",
        s.name,
        s.pages,
        match s.size {
            pages::Size::Realistic => "realistic",
            pages::Size::Small => "small",
        },
        s.latency.as_millis(),
        s.concurrency,
        c = s.concurrency,
    );
    let mut local: Vec<LocalRun> = Vec::new();
    let mut queued: Vec<Vec<QueueRun>> = vec![Vec::new(); WORKERS.len()];
    for round in 0..runs {
        let l = local_run(dir, &urls, s);
        println!(
            "  round {}: local {:.2} s ({:.1} CPU-s)",
            round + 1,
            l.wall,
            l.cpu
        );
        local.push(l);
        for (i, &k) in WORKERS.iter().enumerate() {
            let q = queue_run(dir, redis, &urls, s, k, round, Duration::ZERO);
            println!(
                "  round {}: {k} worker(s) {:.2} s to the collector's exit, {:.2} s to the last result collected ({:.1} CPU-s){}",
                round + 1,
                q.wall,
                q.collected,
                q.cpu(),
                if q.ok { "" } else { "  [NOT OK]" }
            );
            queued[i].push(q);
        }
    }
    let n = s.pages as f64;
    let l = LocalRun {
        wall: median(local.iter().map(|r| r.wall)),
        cpu: median(local.iter().map(|r| r.cpu)),
        peak_rss_mb: median(local.iter().map(|r| r.peak_rss_mb)),
        server_cpu: median(local.iter().map(|r| r.server_cpu)),
        pages: local[0].pages,
        scripts: local[0].scripts,
    };
    println!(
        "local: wall {:.2} s (runs {}), CPU {:.2} s, peak RSS {:.0} MB, {:.0} pages/s, {:.0} CPU-µs a page; server CPU {:.0} % of wall; {} pages, {} script rows",
        l.wall,
        spread(local.iter().map(|r| r.wall)),
        l.cpu,
        l.peak_rss_mb,
        n / l.wall,
        1e6 * l.cpu / n,
        100.0 * l.server_cpu / l.wall,
        l.pages,
        l.scripts,
    );
    for (i, &k) in WORKERS.iter().enumerate() {
        let q = &queued[i];
        let m = |f: fn(&QueueRun) -> f64| median(q.iter().map(f));
        let wall = m(|r| r.wall);
        let collected = m(|r| r.collected);
        let cpu = m(QueueRun::cpu);
        println!(
            "{k} worker(s), -c {} each: wall {wall:.2} s (runs {}), {:.0} pages/s; last result collected at {collected:.2} s (runs {}), {:.0} pages/s",
            s.concurrency / k,
            spread(q.iter().map(|r| r.wall)),
            n / wall,
            spread(q.iter().map(|r| r.collected)),
            n / collected,
        );
        println!(
            "  enqueue done at {:.2} s, last result published at {:.2} s, last worker exit at {:.2} s; collector exit {:.2} s after the last result",
            m(|r| r.enqueue_wall),
            m(|r| r.published),
            m(|r| r.workers_exit),
            m(|r| r.wall - r.collected),
        );
        println!(
            "  steady rate (10 % to 90 % published): {:.0} pages/s (runs {}), local run's mean {:.0}; most work in flight at once {:.0} (taken, not yet published; -c {} in all)",
            m(|r| r.steady),
            spread(q.iter().map(|r| r.steady)),
            n / l.wall,
            m(|r| r.in_flight as f64),
            s.concurrency,
        );
        if k > 1 {
            println!(
                "  pages published by each worker, most first: {}",
                q.iter()
                    .map(|r| r
                        .shares
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join("/"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!(
            "  CPU {cpu:.2} s (runs {}) = enqueue {:.2} + workers {:.2} + collector {:.2} + redis-server {:.2}; {:.0} CPU-µs a page",
            spread(q.iter().map(QueueRun::cpu)),
            m(|r| r.cpu_enqueue),
            m(|r| r.cpu_workers),
            m(|r| r.cpu_collector),
            m(|r| r.cpu_redis),
            1e6 * cpu / n,
        );
        println!(
            "  peak RSS: each worker {:.0} MB (largest), collector {:.0} MB; Redis used_memory peak +{:.1} MB; server CPU {:.0} % of wall",
            m(|r| r.worker_peak_mb),
            m(|r| r.collector_peak_mb),
            m(|r| r.redis_peak_mb),
            100.0 * m(|r| r.server_cpu) / wall,
        );
        // Ratios between runs of the same round, then their median: the
        // machine's speed drifts between rounds, less within one.
        let per_round = |f: &dyn Fn(&LocalRun, &QueueRun) -> f64| -> (f64, String) {
            let v: Vec<f64> = local.iter().zip(q).map(|(l, r)| f(l, r)).collect();
            (median(v.iter().copied()), spread(v.iter().copied()))
        };
        let (wall_ratio, wall_runs) = per_round(&|l, r| r.wall / l.wall);
        let (coll_ratio, coll_runs) = per_round(&|l, r| r.collected / l.wall);
        let (extra, extra_runs) = per_round(&|l, r| 1e6 * (r.cpu() - l.cpu) / n);
        let (cpu_ratio, _) = per_round(&|l, r| r.cpu() / l.cpu);
        println!(
            "  against the local run of the same round: wall x{wall_ratio:.2} (rounds {wall_runs}), to the last result x{coll_ratio:.2} (rounds {coll_runs}); CPU x{cpu_ratio:.2}, the queue's cost {extra:+.0} CPU-µs a page (rounds {extra_runs})"
        );
        let stats = command_medians(q, s.pages);
        println!("  Redis commands a page (calls, µs inside Redis): {stats}");
        if q.iter()
            .any(|r| !r.ok || r.pages != l.pages || r.scripts != l.scripts)
        {
            println!(
                "  WARNING: a run through the queue failed or its outputs differ in size from the local run's ({} pages, {} script rows): {}",
                l.pages,
                l.scripts,
                q.iter()
                    .map(|r| format!(
                        "{}/{}{}",
                        r.pages,
                        r.scripts,
                        if r.ok { "" } else { " failed" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

fn local_run(dir: &Path, urls: &Path, s: &Setting) -> LocalRun {
    let (scripts, pages) = outputs(dir, "local");
    let c = s.concurrency.to_string();
    let mut cmd = binary();
    cmd.arg(urls)
        .arg("-o")
        .arg(&scripts)
        .arg("--pages")
        .arg(&pages)
        .args(["-c", &c, "--per-host", &c, "-q"]);
    let server_cpu = self_cpu();
    let exit = Proc::spawn(cmd, "local run").wait();
    LocalRun {
        wall: exit.wall,
        cpu: exit.cpu,
        peak_rss_mb: exit.peak_rss_mb,
        server_cpu: self_cpu() - server_cpu,
        pages: rows(&pages),
        scripts: rows(&scripts),
    }
}

fn queue_run(
    dir: &Path,
    redis: &Redis,
    urls: &Path,
    s: &Setting,
    workers: usize,
    round: usize,
    stagger: Duration,
) -> QueueRun {
    redis.reset();
    let job = format!("bench-{}-{workers}-{round}", s.name);
    let (scripts, pages) = outputs(dir, "collected");
    let base_memory = redis.used_memory();
    let redis_cpu = redis.cpu();
    let server_cpu = self_cpu();
    let started = Instant::now();
    let mut enqueue = redis.command("enqueue", &job);
    enqueue.arg(urls).args(["--close", "-q"]);
    let enqueued = Proc::spawn(enqueue, "enqueue").wait();
    let watch = Watch::start(redis, &job, s.pages);
    let mut collect = redis.command("collect", &job);
    collect
        .arg("-o")
        .arg(&scripts)
        .arg("--pages")
        .arg(&pages)
        .arg("-q");
    let collector = Proc::spawn(collect, "collect");
    let c = (s.concurrency / workers).max(1).to_string();
    // Not -q: each worker's summary line (its pages published) goes to
    // a log of its own.
    let logs: Vec<PathBuf> = (0..workers)
        .map(|i| dir.join(format!("worker-{i}.log")))
        .collect();
    let working: Vec<Proc> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            if i > 0 {
                std::thread::sleep(stagger);
            }
            let mut work = redis.command("work", &job);
            work.args(["-c", &c, "--per-host", &c]);
            let log = std::fs::File::create(log).expect("worker log");
            work.stderr(log);
            Proc::spawn(work, "work")
        })
        .collect();
    let collected = collector.wait();
    let worked: Vec<Exit> = working.into_iter().map(Proc::wait).collect();
    let mut shares: Vec<u64> = logs.iter().map(|log| published_by(log)).collect();
    shares.sort_unstable_by(|a, b| b.cmp(a));
    let watched = watch.stop();
    let since = |t: Instant| t.duration_since(started).as_secs_f64();
    let nan = f64::NAN;
    QueueRun {
        wall: since(collected.at),
        enqueue_wall: since(enqueued.at),
        published: watched.published.map_or(nan, since),
        collected: watched.collected.map_or(nan, since),
        workers_exit: worked.iter().map(|w| since(w.at)).fold(0.0, f64::max),
        steady: match (watched.tenth, watched.ninetieth) {
            (Some(a), Some(b)) if b > a => 0.8 * s.pages as f64 / b.duration_since(a).as_secs_f64(),
            _ => nan,
        },
        in_flight: watched.in_flight,
        shares,
        cpu_enqueue: enqueued.cpu,
        cpu_workers: worked.iter().map(|w| w.cpu).sum(),
        cpu_collector: collected.cpu,
        cpu_redis: redis.cpu() - redis_cpu,
        worker_peak_mb: worked.iter().map(|w| w.peak_rss_mb).fold(0.0, f64::max),
        collector_peak_mb: collected.peak_rss_mb,
        redis_peak_mb: watched.peak_memory.saturating_sub(base_memory) as f64 / 1e6,
        server_cpu: self_cpu() - server_cpu,
        pages: rows(&pages),
        scripts: rows(&scripts),
        commands: without_polls(redis.command_stats(), watched.polls),
        ok: enqueued.ok && collected.ok && worked.iter().all(|w| w.ok),
    }
}

/// Medians over runs of each command's calls and time inside Redis, a
/// page, for the commands called at least once every 100 pages.
fn command_medians(runs: &[QueueRun], pages: u64) -> String {
    let mut names: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.commands.iter().map(|(n, _, _)| n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut rows: Vec<(f64, String)> = Vec::new();
    let mut total_usec = Vec::new();
    for r in runs {
        // EVALSHA's time includes the commands its script calls, which
        // are listed on their own too: the total counts it alone.
        let inside: u64 = r.commands.iter().map(|(_, _, us)| us).sum();
        total_usec.push(inside as f64 / pages as f64);
    }
    for name in names {
        let get = |r: &QueueRun| {
            r.commands
                .iter()
                .find(|(n, _, _)| n == name)
                .map_or((0, 0), |&(_, calls, us)| (calls, us))
        };
        let calls = median(runs.iter().map(|r| get(r).0 as f64)) / pages as f64;
        let usec = median(runs.iter().map(|r| get(r).1 as f64)) / pages as f64;
        if calls >= 0.01 {
            rows.push((calls, format!("{name} {calls:.2} ({usec:.1} µs)")));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let listed: Vec<String> = rows.into_iter().map(|(_, s)| s).collect();
    format!(
        "{}; all commands' time summed (scripts' inner commands counted twice) {:.0} µs",
        listed.join(", "),
        median(total_usec.into_iter())
    )
}

/// The pages a worker's summary line says it published (0 if none).
fn published_by(log: &Path) -> u64 {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("worker ")?;
            let (_, rest) = rest.split_once(": ")?;
            rest.split_once(" pages published")?.0.parse().ok()
        })
        .unwrap_or(0)
}

/// Command statistics without the watcher's own commands (INFO is left
/// out of them anyway): its HGETs and XLENs, with their share of the time.
fn without_polls(stats: Vec<(String, u64, u64)>, polls: u64) -> Vec<(String, u64, u64)> {
    stats
        .into_iter()
        .map(|(name, calls, usec)| {
            let ours = match name.as_str() {
                "hget" => 2 * polls,
                "xlen" | "xpending" => polls,
                _ => 0,
            }
            .min(calls);
            let usec = usec - (usec * ours).checked_div(calls).unwrap_or(0);
            (name, calls - ours, usec)
        })
        .collect()
}

/// What a job's state showed while it ran, polled from the benchmark.
struct Watched {
    /// When done + failed first reached the list's size.
    published: Option<Instant>,
    /// When, besides, no result was left waiting.
    collected: Option<Instant>,
    /// When done + failed first reached 10 % and 90 % of the list.
    tenth: Option<Instant>,
    ninetieth: Option<Instant>,
    /// The most work entries seen pending in the workers' group at once:
    /// taken and not yet published.
    in_flight: u64,
    /// Redis's largest used_memory seen.
    peak_memory: u64,
    /// Polls made: each is two HGETs, an XLEN, an XPENDING and an INFO.
    polls: u64,
}

/// A thread polling a job's counts and Redis's memory every 10 ms.
struct Watch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Watched>,
}

impl Watch {
    fn start(redis: &Redis, job: &str, pages: u64) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let mut conn = redis.connect();
        let (meta, work, results) = (
            format!("scriptscrape:{{{job}}}:meta"),
            format!("scriptscrape:{{{job}}}:work"),
            format!("scriptscrape:{{{job}}}:results"),
        );
        let handle = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut w = Watched {
                    published: None,
                    collected: None,
                    tenth: None,
                    ninetieth: None,
                    in_flight: 0,
                    peak_memory: 0,
                    polls: 0,
                };
                let deadline = Instant::now() + PROCESS_LIMIT;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let (done, failed, waiting, pending, memory): (
                        Option<u64>,
                        Option<u64>,
                        u64,
                        redis::Value,
                        String,
                    ) = redis::pipe()
                        .cmd("HGET")
                        .arg(&meta)
                        .arg("done")
                        .cmd("HGET")
                        .arg(&meta)
                        .arg("failed")
                        .cmd("XLEN")
                        .arg(&results)
                        .cmd("XPENDING")
                        .arg(&work)
                        .arg("workers")
                        .cmd("INFO")
                        .arg("memory")
                        .query(&mut conn)
                        .expect("poll the job");
                    let now = Instant::now();
                    w.polls += 1;
                    w.peak_memory = w.peak_memory.max(info_field(&memory, "used_memory"));
                    // The summary form's first element is the count.
                    if let redis::Value::Array(summary) = pending
                        && let Some(redis::Value::Int(n)) = summary.first()
                    {
                        w.in_flight = w.in_flight.max(*n as u64);
                    }
                    // Failed counts invalid lines too, but the lists here
                    // have none.
                    let published = done.unwrap_or(0) + failed.unwrap_or(0);
                    if published * 10 >= pages {
                        w.tenth.get_or_insert(now);
                    }
                    if published * 10 >= pages * 9 {
                        w.ninetieth.get_or_insert(now);
                    }
                    if published >= pages {
                        w.published.get_or_insert(now);
                        if waiting == 0 {
                            w.collected.get_or_insert(now);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                w
            }
        });
        Watch { stop, handle }
    }

    fn stop(self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("watcher")
    }
}

/// How much work one worker holds: two workers on the latency setting's
/// list, the second started a second after the first.
fn late(dir: &Path, redis: &Redis, runs: usize) {
    let s = Setting {
        name: "late",
        pages: 20_000,
        latency: Duration::from_millis(20),
        size: pages::Size::Small,
        concurrency: 64,
    };
    let server = Server::start(s.latency, s.size);
    let urls = write_urls(dir, "late.txt", (0..s.pages).map(|i| server.url(i)));
    println!(
        "\n## late: {} small pages, 20 ms latency, 2 workers of -c 32, the second started 1 s after the first",
        s.pages
    );
    for round in 0..runs {
        let q = queue_run(dir, redis, &urls, &s, 2, round, Duration::from_secs(1));
        println!(
            "  round {}: last result collected at {:.2} s; pages published by each worker, most first: {}; most work in flight at once {}{}",
            round + 1,
            q.collected,
            q.shares
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join("/"),
            q.in_flight,
            if q.ok { "" } else { "  [NOT OK]" }
        );
    }
}

// ---------------------------------------------------------------------
// Scenario 2: Redis memory per million URLs.
// ---------------------------------------------------------------------

/// A URL of a realistic length (66–72 characters here), distinct for
/// each n, on one of 5,000 hosts; never fetched.
fn listed_url(n: u64) -> String {
    format!(
        "https://www.site{}.example.com/products/category-{}/item-{n}.html",
        n % 5_000,
        n % 97
    )
}

fn memory(dir: &Path, redis: &Redis, runs: usize, n: u64) {
    let urls = write_urls(dir, "memory.txt", (0..n).map(listed_url));
    let bytes = std::fs::metadata(&urls).map_or(0, |m| m.len());
    let mean_len = bytes as f64 / n as f64 - 1.0;
    println!(
        "\n## memory: enqueue {n} URLs (mean {mean_len:.1} characters, 5,000 hosts), no fetching"
    );
    struct Run {
        wall: f64,
        cpu: f64,
        redis_cpu: f64,
        total: f64,
        seen_usage: f64,
        seen_after_delete: f64,
        work_usage: f64,
        rss: f64,
        intsets: String,
        ok: bool,
    }
    let mut all = Vec::new();
    for round in 0..runs {
        redis.reset();
        let job = format!("bench-memory-{round}");
        let before = redis.used_memory();
        let redis_cpu = redis.cpu();
        let mut enqueue = redis.command("enqueue", &job);
        enqueue.arg(&urls).args(["--close", "-q"]);
        let exit = Proc::spawn(enqueue, "enqueue").wait();
        let redis_cpu = redis.cpu() - redis_cpu;
        let after = redis.used_memory();
        let rss = redis.info_field("memory", "used_memory_rss");
        let mut conn = redis.connect();
        let prefix = format!("scriptscrape:{{{job}}}");
        let buckets: u64 = redis::cmd("HGET")
            .arg(format!("{prefix}:meta"))
            .arg("buckets")
            .query(&mut conn)
            .expect("the job's bucket count");
        let queued: u64 = redis::cmd("XLEN")
            .arg(format!("{prefix}:work"))
            .query(&mut conn)
            .expect("XLEN");
        // Every bucket's MEMORY USAGE, pipelined a few thousand at a time
        // (65,536 commands take well under a second).
        let mut seen = 0u64;
        let mut encodings = std::collections::BTreeMap::<String, u64>::new();
        for chunk in (0..buckets).collect::<Vec<_>>().chunks(4096) {
            let mut pipe = redis::pipe();
            for b in chunk {
                let key = format!("{prefix}:seen:{b}");
                pipe.cmd("MEMORY")
                    .arg("USAGE")
                    .arg(&key)
                    .arg("SAMPLES")
                    .arg(0)
                    .cmd("OBJECT")
                    .arg("ENCODING")
                    .arg(&key);
            }
            let replies: Vec<redis::Value> = pipe.query(&mut conn).expect("MEMORY USAGE");
            for pair in replies.chunks(2) {
                if let redis::Value::Int(n) = pair[0] {
                    seen += n as u64;
                }
                let encoding = match &pair[1] {
                    redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    redis::Value::SimpleString(s) => s.clone(),
                    _ => "none".to_owned(),
                };
                *encodings.entry(encoding).or_default() += 1;
            }
        }
        let work: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(format!("{prefix}:work"))
            .arg("SAMPLES")
            .arg(0)
            .query(&mut conn)
            .expect("MEMORY USAGE of the work stream");
        let _: () = redis::cmd("DEL")
            .arg(format!("{prefix}:work"))
            .query(&mut conn)
            .expect("DEL");
        let without_work = redis.used_memory();
        let per = |b: u64| b as f64 / n as f64;
        let r = Run {
            wall: exit.wall,
            cpu: exit.cpu,
            redis_cpu,
            total: per(after.saturating_sub(before)),
            seen_usage: per(seen),
            seen_after_delete: per(without_work.saturating_sub(before)),
            work_usage: per(work),
            rss: rss as f64 / 1e6,
            intsets: encodings
                .iter()
                .map(|(e, c)| format!("{c} {e}"))
                .collect::<Vec<_>>()
                .join(", "),
            ok: exit.ok && queued == n,
        };
        println!(
            "  round {}: {:.2} s, {:.0} URLs/s; +{:.1} bytes a URL in all ({} queued; buckets: {})",
            round + 1,
            r.wall,
            n as f64 / r.wall,
            r.total,
            queued,
            r.intsets
        );
        all.push(r);
    }
    let m = |f: fn(&Run) -> f64| median(all.iter().map(f));
    println!(
        "enqueue: {:.2} s (runs {}), {:.0} URLs/s; CPU: enqueue {:.2} s, redis-server {:.2} s ({:.1} + {:.1} CPU-µs a URL)",
        m(|r| r.wall),
        spread(all.iter().map(|r| r.wall)),
        n as f64 / m(|r| r.wall),
        m(|r| r.cpu),
        m(|r| r.redis_cpu),
        1e6 * m(|r| r.cpu) / n as f64,
        1e6 * m(|r| r.redis_cpu) / n as f64,
    );
    println!(
        "Redis used_memory: +{:.1} bytes a URL queued and seen ({:.0} MB a million; used_memory_rss {:.0} MB after); the seen-set {:.1} bytes a URL (MEMORY USAGE of its buckets; {:.1} by used_memory once the work stream is deleted), the work stream {:.1} bytes a URL (MEMORY USAGE; {:.1} more than the URL's own length)",
        m(|r| r.total),
        m(|r| r.total),
        m(|r| r.rss),
        m(|r| r.seen_usage),
        m(|r| r.seen_after_delete),
        m(|r| r.work_usage),
        m(|r| r.work_usage) - mean_len,
    );
    if all.iter().any(|r| !r.ok) {
        println!("  WARNING: an enqueue failed or queued fewer URLs than listed");
    }
    let _ = std::fs::remove_file(&urls);
}

// ---------------------------------------------------------------------
// Scenario 3: the collector alone.
// ---------------------------------------------------------------------

fn collector(dir: &Path, redis: &Redis, runs: usize, n: u64) {
    let server = Server::start(Duration::ZERO, pages::Size::Realistic);
    let urls = write_urls(dir, "collect.txt", (0..n).map(|i| server.url(i)));
    println!(
        "\n## collect: {n} realistic pages' results all waiting in Redis (2 workers, -c 32 each, --max-results {}), then collect alone",
        n + 1
    );
    struct Run {
        wall: f64,
        collected: f64,
        cpu: f64,
        redis_cpu: f64,
        peak_rss_mb: f64,
        mb: f64,
        rows: u64,
        waiting_bytes: f64,
        stream_bytes: f64,
        ok: bool,
    }
    let mut all = Vec::new();
    for round in 0..runs {
        redis.reset();
        let job = format!("bench-collect-{round}");
        let (scripts, pages) = outputs(dir, "collected");
        let before = redis.used_memory();
        let mut enqueue = redis.command("enqueue", &job);
        enqueue.arg(&urls).args(["--close", "-q"]);
        let enqueued = Proc::spawn(enqueue, "enqueue").wait();
        let max_results = (n + 1).to_string();
        let workers: Vec<Proc> = (0..2)
            .map(|_| {
                let mut work = redis.command("work", &job);
                work.args([
                    "-c",
                    "32",
                    "--per-host",
                    "32",
                    "--max-results",
                    &max_results,
                ])
                .arg("-q");
                Proc::spawn(work, "work")
            })
            .collect();
        let worked: Vec<Exit> = workers.into_iter().map(Proc::wait).collect();
        let waiting = redis.used_memory().saturating_sub(before);
        let mut conn = redis.connect();
        let results_key = format!("scriptscrape:{{{job}}}:results");
        let stream: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&results_key)
            .arg("SAMPLES")
            .arg(0)
            .query(&mut conn)
            .expect("MEMORY USAGE of the results stream");
        let waiting_count: u64 = redis::cmd("XLEN")
            .arg(&results_key)
            .query(&mut conn)
            .expect("XLEN");
        let redis_cpu = redis.cpu();
        let watch = Watch::start(redis, &job, n);
        let started = Instant::now();
        let mut collect = redis.command("collect", &job);
        collect
            .arg("-o")
            .arg(&scripts)
            .arg("--pages")
            .arg(&pages)
            .arg("-q");
        let exit = Proc::spawn(collect, "collect").wait();
        let watched = watch.stop();
        let mb = [&scripts, &pages]
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>() as f64
            / 1e6;
        let r = Run {
            wall: exit.wall,
            collected: watched
                .collected
                .map_or(f64::NAN, |t| t.duration_since(started).as_secs_f64()),
            cpu: exit.cpu,
            redis_cpu: redis.cpu() - redis_cpu,
            peak_rss_mb: exit.peak_rss_mb,
            mb,
            rows: rows(&scripts),
            waiting_bytes: waiting as f64 / waiting_count.max(1) as f64,
            stream_bytes: stream as f64 / waiting_count.max(1) as f64,
            ok: enqueued.ok
                && exit.ok
                && worked.iter().all(|w| w.ok)
                && waiting_count == n
                && rows(&pages) == n,
        };
        println!(
            "  round {}: {} results waited ({:.0} bytes each); collect {:.2} s, the last result at {:.2} s",
            round + 1,
            waiting_count,
            r.stream_bytes,
            r.wall,
            r.collected
        );
        all.push(r);
    }
    let m = |f: fn(&Run) -> f64| median(all.iter().map(f));
    let (wall, collected, mb) = (m(|r| r.wall), m(|r| r.collected), m(|r| r.mb));
    let rows = all[0].rows;
    println!(
        "collect: wall {wall:.2} s (runs {}), {:.0} pages/s, {:.1} MB/s; the last result written and acknowledged at {collected:.2} s (runs {}): {:.0} pages/s, {:.0} script rows/s, {:.1} MB/s",
        spread(all.iter().map(|r| r.wall)),
        n as f64 / wall,
        mb / wall,
        spread(all.iter().map(|r| r.collected)),
        n as f64 / collected,
        rows as f64 / collected,
        mb / collected,
    );
    println!(
        "  CPU: collect {:.2} s, redis-server {:.2} s; peak RSS {:.0} MB; output {mb:.1} MB ({rows} script rows, {n} pages)",
        m(|r| r.cpu),
        m(|r| r.redis_cpu),
        m(|r| r.peak_rss_mb),
    );
    println!(
        "  while waiting: {:.0} bytes of used_memory a result ({:.0} by MEMORY USAGE of the results stream), so {:.0} MB at the default --max-results 10000",
        m(|r| r.waiting_bytes),
        m(|r| r.stream_bytes),
        m(|r| r.waiting_bytes) * 10_000.0 / 1e6,
    );
    if all.iter().any(|r| !r.ok) {
        println!("  WARNING: a run failed or wrote fewer pages than listed");
    }
}

// ---------------------------------------------------------------------
// The pieces: processes, redis-server, the page server.
// ---------------------------------------------------------------------

/// The release binary, with no proxy and none of its own settings from
/// this environment.
fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scriptscrape"));
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("SCRIPTSCRAPE_") || name.to_ascii_lowercase().ends_with("_proxy") {
            cmd.env_remove(&var);
        }
    }
    cmd
}

/// Output paths for a run, with any earlier run's files removed.
fn outputs(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let scripts = dir.join(format!("{name}-scripts.csv"));
    let pages = dir.join(format!("{name}-pages.csv"));
    for p in [&scripts, &pages] {
        let _ = std::fs::remove_file(p);
    }
    (scripts, pages)
}

/// Data rows of a CSV output (lines after the header).
fn rows(path: &Path) -> u64 {
    use std::io::BufRead as _;
    std::fs::File::open(path).map_or(0, |f| {
        (std::io::BufReader::new(f).lines().count() as u64).saturating_sub(1)
    })
}

/// A child that ended (or was killed at the time limit).
struct Exit {
    at: Instant,
    wall: f64,
    cpu: f64,
    peak_rss_mb: f64,
    ok: bool,
}

/// A running child: a thread waits for it (and records when it exited)
/// while another samples its peak RSS.
struct Proc {
    pid: u32,
    what: &'static str,
    /// Set once the child is reaped; held while signalling it, so that a
    /// reaped (and perhaps reused) pid is never signalled.
    reaped: Arc<Mutex<bool>>,
    rx: mpsc::Receiver<Exit>,
    waited: bool,
}

impl Proc {
    /// Starts `cmd` with no input, its output discarded and its standard
    /// error as set (the benchmark's own unless `cmd` says otherwise).
    fn spawn(mut cmd: Command, what: &'static str) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let started = Instant::now();
        // Reaped by wait4 in the waiting thread.
        #[allow(clippy::zombie_processes)]
        let child: Child = cmd.spawn().expect("start the program under test");
        let pid = child.id();
        let reaped = Arc::new(Mutex::new(false));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn({
            let reaped = Arc::clone(&reaped);
            move || {
                let done = Arc::new(AtomicBool::new(false));
                // As in the pipeline benchmark: VmHWM sampled, since
                // ru_maxrss is inherited through posix_spawn.
                let sampler = sample_peak_kb(pid, Arc::clone(&done));
                // SAFETY: as in harness::wait_when_exited; the child stays
                // a zombie (its pid taken) until wait_when_exited reaps it
                // under the lock.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                unsafe {
                    libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOWAIT,
                    )
                };
                let at = Instant::now();
                done.store(true, Ordering::Relaxed);
                let peak_kb = sampler.join().expect("sampler");
                let (status, usage) = {
                    let mut reaped = reaped.lock().unwrap_or_else(|e| e.into_inner());
                    let waited = wait_when_exited(pid);
                    *reaped = true;
                    waited
                };
                let _ = tx.send(Exit {
                    at,
                    wall: at.duration_since(started).as_secs_f64(),
                    cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
                    peak_rss_mb: peak_kb as f64 / 1024.0,
                    ok: status_ok(status),
                });
                drop(child);
            }
        });
        Proc {
            pid,
            what,
            reaped,
            rx,
            waited: false,
        }
    }

    /// Waits for the child's exit, killing it at [`PROCESS_LIMIT`] after
    /// its start.
    fn wait(mut self) -> Exit {
        self.waited = true;
        match self.rx.recv_timeout(PROCESS_LIMIT) {
            Ok(exit) => {
                if !exit.ok {
                    println!("  ({} exited with a failure status)", self.what);
                }
                exit
            }
            Err(_) => {
                println!(
                    "  ({} still ran after {PROCESS_LIMIT:?}: killed)",
                    self.what
                );
                self.kill();
                let mut exit = self.rx.recv().expect("the waiting thread reports");
                exit.ok = false;
                exit
            }
        }
    }

    fn kill(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            // SAFETY: our own child, not yet reaped (so the pid is its).
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A child never outlives the benchmark, even when it panics.
        if !self.waited {
            self.kill();
            let _ = self.rx.recv_timeout(Duration::from_secs(10));
        }
    }
}

/// The benchmark's own redis-server: Debian's binary on a free loopback
/// port, in a temporary directory, with no persistence; killed when
/// dropped.
struct Redis {
    child: Child,
    port: u16,
    url: String,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        // Another process may take the probed port before the server binds
        // it: a few tries.
        for _ in 0..5 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
                l.local_addr().expect("local addr").port()
            };
            let log = std::fs::File::create(dir.path().join("redis.log")).expect("redis log");
            let mut child = Command::new("/usr/bin/redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .arg("--dir")
                .arg(dir.path())
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("start /usr/bin/redis-server (Debian's redis-server package)");
            let url = format!("redis://127.0.0.1:{port}/");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let ready = redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
                if ready.is_ok() {
                    return Redis {
                        child,
                        port,
                        url,
                        _dir: dir,
                    };
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
        panic!("redis-server did not start in 5 tries; its log:\n{log}");
    }

    fn connect(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("connect to the benchmark's redis-server")
    }

    fn version(&self) -> String {
        format!(
            "redis-server {} on 127.0.0.1:{}",
            self.info_text("server")
                .lines()
                .find_map(|l| l.strip_prefix("redis_version:"))
                .unwrap_or("?")
                .trim(),
            self.port
        )
    }

    /// A subcommand of the binary for `job` on this server.
    fn command(&self, subcommand: &str, job: &str) -> Command {
        let mut cmd = binary();
        cmd.arg(subcommand)
            .args(["--redis", &self.url, "--job", job]);
        cmd
    }

    /// Empties the server and its command statistics between runs.
    fn reset(&self) {
        let mut conn = self.connect();
        let _: () = redis::cmd("FLUSHALL")
            .arg("SYNC")
            .query(&mut conn)
            .expect("FLUSHALL");
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut conn)
            .expect("CONFIG RESETSTAT");
    }

    fn info_text(&self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query(&mut self.connect())
            .expect("INFO")
    }

    fn info_field(&self, section: &str, field: &str) -> u64 {
        info_field(&self.info_text(section), field)
    }

    fn used_memory(&self) -> u64 {
        self.info_field("memory", "used_memory")
    }

    /// `INFO commandstats` as (command, calls, usec).
    fn command_stats(&self) -> Vec<(String, u64, u64)> {
        self.info_text("commandstats")
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |key: &str| {
                    rest.split(',')
                        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                        .and_then(|v| v.parse().ok())
                };
                Some((name.to_owned(), field("calls")?, field("usec")?))
            })
            .filter(|(name, _, _)| !matches!(name.as_str(), "info" | "ping" | "config"))
            .collect()
    }

    /// The server's CPU seconds so far (all its threads), from /proc.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("redis-server's /proc stat");
        // The fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 of the line, so 12 and 13
        // after the name and the state.
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
        ticks as f64 / hz as f64
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A numeric field of an INFO reply.
fn info_field(info: &str, field: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The loopback page server: `/p/{n}` is the pipeline benchmark's body
/// n % 2,000, after `latency`.
struct Server {
    addr: SocketAddr,
}

#[derive(Clone)]
struct ServerState {
    latency: Duration,
    bodies: Arc<Vec<Bytes>>,
}

/// Distinct bodies, made before the run (as in the pipeline benchmark).
const DISTINCT: u64 = 2_000;

impl Server {
    fn start(latency: Duration, size: pages::Size) -> Server {
        let bodies = Arc::new(
            (0..DISTINCT)
                .map(|n| Bytes::from(pages::page(n, size)))
                .collect(),
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let state = ServerState { latency, bodies };
                let app = Router::new().route("/p/{n}", get(page)).with_state(state);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        Server { addr }
    }

    fn url(&self, n: u64) -> String {
        format!("http://{}/p/{n}", self.addr)
    }
}

async fn page(State(state): State<ServerState>, UrlPath(n): UrlPath<u64>) -> impl IntoResponse {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let body = state.bodies[(n % DISTINCT) as usize].clone();
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

/// The median of some figures.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Figures as the runs gave them, for their spread.
fn spread(values: impl Iterator<Item = f64>) -> String {
    values
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}
