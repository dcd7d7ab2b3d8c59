//! The end-to-end benchmark: scriptscrape against a loopback server, next
//! to its ceilings and next to the usual Python program.
//!
//! ```text
//! cargo bench --bench pipeline -- [latency|cpu|scale|extract|all] [--runs N]
//!     [--python-runs N] [--no-python]
//! ```
//!
//! The server runs in this process on its own threads and serves generated
//! pages (`/p/{n}`: 20–200 KB, median near 60 KB, a realistic mix of script
//! elements; 2,000 distinct bodies made before the run, page n being body
//! n % 2,000). The release binary runs as a
//! separate process, writing its CSV to a pipe this process drains, and is
//! measured with wait4 (wall time, CPU seconds, peak RSS) and by when its
//! first row arrives. Every figure is a median of `--runs` runs.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

mod pages;

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
    let baseline = if python && which != "extract" {
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
    if matches!(which, "extract" | "all") {
        extract(runs);
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
    let extractor = scriptscrape::extract::Extractor::new();
    let mut per_cpu_s = Vec::new();
    let mut per_wall_s = Vec::new();
    for _ in 0..runs.max(1) {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        let scripts: usize = bodies
            .iter()
            .map(|b| extractor.extract(&url, b).len())
            .sum();
        std::hint::black_box(scripts);
        per_wall_s.push(mb / wall.elapsed().as_secs_f64());
        per_cpu_s.push(mb / (thread_cpu() - cpu));
    }
    let show = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let runs: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
        format!("{:.1} MB/s (runs: {})", v[v.len() / 2], runs.join(", "))
    };
    println!(
        "extractor, {mb:.0} MB: per CPU second {}; per wall second {}",
        show(&mut per_cpu_s),
        show(&mut per_wall_s)
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
        })
    }

    /// Times the Python program on the same URLs and prints it next to
    /// scriptscrape's figures from the same run.
    fn beside(&self, server: &Server, urls: &Path, concurrency: usize, n: u64, ours: &Measured) {
        let theirs = median_of(self.runs, || {
            server.measure(&self.command(urls, concurrency))
        });
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
}

#[derive(Clone)]
struct ServerState {
    latency: Duration,
    bodies: Arc<Vec<Bytes>>,
    served: Arc<AtomicU64>,
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
        let served = Arc::new(AtomicU64::new(0));
        let bodies = (0..DISTINCT).map(|n| Bytes::from(body(n, size))).collect();
        let state = ServerState {
            latency,
            bodies: Arc::new(bodies),
            served: Arc::clone(&served),
        };
        let (tx, rx) = std::sync::mpsc::channel();
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
                let app = Router::new().route("/p/{n}", get(page)).with_state(state);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        Server { addr, served }
    }

    fn url(&self, n: u64) -> String {
        format!("http://{}/p/{n}", self.addr)
    }

    /// Runs `cmd` to the end, its standard output drained here, and
    /// measures it.
    fn measure(&self, cmd: &Command) -> Measured {
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
        let served_before = self.served.load(Ordering::Relaxed);
        let server_cpu_before = self_cpu();
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
        // ru_maxrss is no good here: a child started with posix_spawn
        // inherits this process's high-water mark through exec. The
        // kernel's VmHWM for the child's own address space is sampled
        // instead; it only grows, so the last sample before exit is within
        // a sampling interval of the peak.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut peak_kb = 0u64;
                while !done.load(Ordering::Relaxed) {
                    if let Some(kb) = vm_hwm_kb(pid) {
                        peak_kb = peak_kb.max(kb);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                peak_kb
            })
        };
        let (status, usage) = wait_when_exited(pid);
        done.store(true, Ordering::Relaxed);
        let peak_kb = sampler.join().expect("sampler");
        let wall = started.elapsed().as_secs_f64();
        let first_row = reader
            .join()
            .expect("reader")
            .map_or(f64::NAN, |d| d.as_secs_f64());
        if !status_ok(status) {
            println!("  (the program exited with status {status:#x})");
        }
        let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
        Measured {
            wall,
            cpu,
            peak_rss_mb: peak_kb as f64 / 1024.0,
            first_row,
            mb_served: (self.served.load(Ordering::Relaxed) - served_before) as f64 / 1e6,
            // This process does nothing but serve (and drain a pipe) while
            // the program runs.
            server_cpu: self_cpu() - server_cpu_before,
        }
    }
}

async fn page(State(state): State<ServerState>, UrlPath(n): UrlPath<u64>) -> impl IntoResponse {
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    let body = state.bodies[(n % DISTINCT) as usize].clone();
    state.served.fetch_add(body.len() as u64, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

fn rebuild(cmd: &Command) -> Command {
    let mut fresh = Command::new(cmd.get_program());
    fresh.args(cmd.get_args());
    fresh
}

/// Waits for the child to exit without reaping it first (so that VmHWM
/// stays readable until the end), then reaps it with wait4 for its CPU
/// time.
fn wait_when_exited(pid: u32) -> (i32, libc::rusage) {
    // SAFETY: siginfo is plain data that waitid fills; WNOWAIT leaves the
    // child waitable.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status for our
    // own child, which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid as libc::pid_t, "wait4 failed");
    (status, usage)
}

/// The peak resident set of a live process, from /proc.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn status_ok(status: i32) -> bool {
    libc::WIFEXITED(status) && matches!(libc::WEXITSTATUS(status), 0 | 1)
}

fn self_cpu() -> f64 {
    // SAFETY: as in wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn write_urls(dir: &Path, name: &str, urls: impl Iterator<Item = String>) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("url list"));
    for url in urls {
        writeln!(out, "{url}").expect("write url list");
    }
    out.flush().expect("flush url list");
    path
}

fn tempdir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-work");
    std::fs::create_dir_all(&dir).expect("bench work dir");
    dir
}

fn flag_value(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}
