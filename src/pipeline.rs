//! The wiring: input → fetch → parse → write, and every bound between them.
//!
//! ```text
//!  reader thread        fetch stage (async)          parse threads         writer thread
//!  input::read_lines ─► schedule::run ─────────────► extract::Extractor ─► output::Sink
//!           LINE_QUEUE lines     BODIES_PER_PARSER×parsers     PAGE_QUEUE pages
//!                       (≤ MAX_QUEUED_URLS waiting in per-host queues,
//!                        ≤ -c requests in flight, ≤ --per-host per host)
//!  with --ordered: lines read ≤ ORDER_WINDOW_PER_SLOT × -c past the next
//!  page to write, which bounds the writer's reorder buffer too
//!  crawling: links go back parse → fetch, one message per page (at most
//!  the pages between the two stages); ≤ --frontier-memory discovered URLs
//!  wait in memory, the rest on disk
//!  with --fetch-scripts: parse → content::scripts → write; script URLs go
//!  back to the fetch stage (one message per page, plus one per held page
//!  released), which fetches them ahead of pages; ≤ 4 × -c (≥ 64) pages
//!  held for their scripts before pages stop starting
//!  with --render: parse → render::Renderer → write; ≤ --render-concurrency
//!  pages in the browser, RENDER_QUEUE more waiting for it, and as many
//!  rendered on their way to the writer
//! ```
//!
//! Each arrow is a bounded channel, so a slow stage holds the ones before it
//! back instead of piling up memory: at most `-c` requests in flight, plus
//! the URLs, bodies and pages waiting in the queues, whatever the length of
//! the URL list. Pages leave the fetch stage in the order they complete.
//!
//! Shutdown needs no flag: when the input ends, each stage finishes its
//! queue and drops its sender, which ends the next. When the output fails
//! (or its reader goes away), the writer drops its receiver and the stages
//! before it stop at their next send.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc as std_mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::content;
use crate::content::csp::PagePolicy;
use crate::crawl::netguard::Guard;
use crate::crawl::{Crawl, Discovered};
use crate::error::{ErrorKind, PageError};
use crate::extract::Extractor;
use crate::fetch::Fetcher;
use crate::input::{self, InputLine};
use crate::output::Destination;
use crate::output::{self, PageResult, Sink, Target};
use crate::render;
use crate::run::lock::{self, Acquired};
use crate::run::report::Summary;
use crate::run::resume::{self, Earlier, RunId};
use crate::run::stats;
use crate::run::stop::{Level, Stop};
use crate::run::terminal::Progress;
use crate::schedule::{self, Completed, Ended, Frontier, Local};

/// Pages `--ordered` may hold back per request slot (`-c`): a page that is
/// slow to finish holds the output back, and fetching goes on until this
/// many pages wait behind it; then the input reader waits too.
const ORDER_WINDOW_PER_SLOT: u64 = 4;

/// Bounds how far the input reader may run ahead of the next page
/// `--ordered` must write.
struct OrderGate {
    written: Mutex<u64>,
    moved: Condvar,
    window: u64,
}

impl OrderGate {
    fn new(window: u64) -> Self {
        OrderGate {
            written: Mutex::new(0),
            moved: Condvar::new(),
            window,
        }
    }

    /// The writer has written every page before `next`.
    fn advance(&self, next: u64) {
        *self.written.lock().unwrap_or_else(PoisonError::into_inner) = next;
        self.moved.notify_all();
    }

    /// Waits until line `seq` may be passed on; gives up (false) when
    /// `closed` says the pipeline no longer wants lines.
    fn wait_for(&self, seq: u64, closed: impl Fn() -> bool) -> bool {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        while seq >= *written + self.window {
            if closed() {
                return false;
            }
            // Bounded waits, so that a stop is noticed.
            written = self
                .moved
                .wait_timeout(written, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// Lines read ahead of the fetch stage. Reading is cheap, so this only needs
/// to keep the fetch stage from waiting on the disk.
const LINE_QUEUE: usize = 1024;

/// URLs read ahead into the per-host queues. This is how far the fetch
/// stage looks past a host that is at its limit to find work for another
/// host (a few MB of URLs); a list with more than this many URLs in a row
/// for one host makes the hosts after them wait.
const MAX_QUEUED_URLS: usize = 100_000;

/// Fetched bodies waiting for each parse thread: enough that a parser never
/// waits for the network while another body is ready, few enough that memory
/// stays at a handful of bodies (each up to --max-body).
const BODIES_PER_PARSER: usize = 2;

/// Parsed pages waiting for the writer. Writing a page's rows is much
/// cheaper than parsing it, so this queue is short-lived; it only absorbs
/// bursts.
const PAGE_QUEUE: usize = 64;

/// CPU time one page may take to parse. An ordinary page takes about a
/// millisecond per 100 KB; only markup built to defeat the parser (deep
/// nesting, where html5ever is quadratic) comes near this, and it must not
/// hold a parse thread for minutes.
const PARSE_CPU_BUDGET: Duration = Duration::from_secs(2);

/// Parse threads: one per core, as parsing is CPU-bound, but never more than
/// the requests in flight could keep busy.
fn parse_threads(concurrency: usize) -> usize {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(concurrency).max(1)
}

/// Where a parse thread sends a parsed page.
#[derive(Clone)]
enum Deliver {
    /// Straight to the writer.
    Writer(std_mpsc::SyncSender<PageResult>),
    /// To the `--fetch-scripts` stage, which passes it on.
    Scripts(std_mpsc::Sender<content::scripts::Arrival<()>>),
    /// To the `--render` stage, with what the browser is to load.
    Render(mpsc::Sender<(PageResult, Option<render::Job>)>),
}

impl Deliver {
    /// Sends the page; false when no one receives pages any more.
    fn send(&self, page: PageResult, job: Option<render::Job>) -> bool {
        match self {
            Deliver::Writer(tx) => tx.send(page).is_ok(),
            Deliver::Scripts(tx) => tx.send(content::scripts::Arrival::Page(page, ())).is_ok(),
            Deliver::Render(tx) => tx.blocking_send((page, job)).is_ok(),
        }
    }
}

/// Pages waiting for the render stage beyond those it is loading: the
/// browser is far slower than the parser, so only enough to start the
/// next page at once.
const RENDER_QUEUE: usize = 2;

/// The `--render` stage, started: its task, the thread that hands its
/// pages to the writer, and the count of pages a stop left unrendered.
struct RenderStage {
    task: tokio::task::JoinHandle<()>,
    forward: thread::JoinHandle<()>,
    unrendered: Arc<AtomicU64>,
}

/// Starts the `--render` stage on `runtime`: at most `renderer`'s
/// concurrency pages in the browser at once, each going on to `out` once
/// loaded (pages without a job go on as they are). Ends when `pages`
/// closes and the last page is out. After a stop, pages still loading get
/// the grace period, as requests in flight do; those it leaves unrendered
/// are not written (a `--resume` does them again).
fn start_render(
    runtime: &tokio::runtime::Runtime,
    renderer: Arc<render::Renderer>,
    mut pages: mpsc::Receiver<(PageResult, Option<render::Job>)>,
    out: std_mpsc::SyncSender<PageResult>,
    stop: &Stop,
    grace: Duration,
) -> anyhow::Result<RenderStage> {
    // The writer's queue is a blocking one: a thread of its own feeds it,
    // so that no async worker waits on the writer.
    let concurrency = renderer.concurrency();
    let (done_tx, mut done_rx) = mpsc::channel::<PageResult>(concurrency);
    let forward = thread::Builder::new()
        .name("scriptscrape-render-out".into())
        .spawn(move || {
            while let Some(page) = done_rx.blocking_recv() {
                if out.send(page).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the render output thread")?;
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let unrendered = Arc::new(AtomicU64::new(0));
    let draining_since = Arc::new(std::sync::OnceLock::<Instant>::new());
    let stopping = {
        let stop = stop.clone();
        move || match stop.level() {
            Level::Running => false,
            Level::Draining => draining_since.get_or_init(Instant::now).elapsed() >= grace,
            Level::Now => true,
        }
    };
    let counted = Arc::clone(&unrendered);
    // The writer gone (standard output closed): pages in the browser are
    // for no one.
    let stopping = {
        let done_tx = done_tx.clone();
        move || done_tx.is_closed() || stopping()
    };
    let stage = runtime.spawn(async move {
        let mut loading = tokio::task::JoinSet::new();
        while let Some((page, job)) = pages.recv().await {
            let Some(job) = job else {
                if done_tx.send(page).await.is_err() {
                    break;
                }
                continue;
            };
            // Held until the page is handed on, which bounds the pages
            // between here and the writer too.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (renderer, done_tx) = (Arc::clone(&renderer), done_tx.clone());
            let (stopping, counted) = (stopping.clone(), Arc::clone(&counted));
            loading.spawn(async move {
                match renderer.render(page, job, stopping).await {
                    Some(page) => {
                        let _ = done_tx.send(page).await;
                    }
                    None => {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(slot);
            });
            // Reaps the finished ones, so the set stays small.
            while loading.try_join_next().is_some() {}
        }
        while loading.join_next().await.is_some() {}
    });
    Ok(RenderStage {
        task: stage,
        forward,
        unrendered,
    })
}

/// The `--fetch-scripts` stage, started: where parsed pages go, its
/// thread, and the fetch stage's link to it.
struct ScriptsStage<T> {
    pages: std_mpsc::Sender<content::scripts::Arrival<T>>,
    thread: thread::JoinHandle<content::scripts::Ended>,
    link: schedule::ScriptLink,
}

/// Starts the `--fetch-scripts` stage: each page sent to it (with its `T`)
/// goes on through `deliver` once its scripts are known.
fn start_scripts<T: Send + 'static>(
    max_body: u64,
    config: &Config,
    deliver: impl FnMut(PageResult, T) -> bool + Send + 'static,
) -> anyhow::Result<ScriptsStage<T>> {
    let (concurrency, per_page) = (config.concurrency.get(), config.max_scripts_per_page);
    use content::scripts::{self, Arrival};
    let (pages, arrivals) = std_mpsc::channel();
    let (news_tx, news) = mpsc::unbounded_channel();
    let thread = thread::Builder::new()
        .name("scriptscrape-scripts".into())
        .spawn(move || scripts::run(arrivals, deliver, news_tx, per_page))
        .context("cannot start the scripts thread")?;
    let results = pages.clone();
    let link = schedule::ScriptLink {
        news,
        results: Box::new(move |url, content| results.send(Arrival::Script(url, content)).is_ok()),
        max_body,
        max_held: scripts::max_held(concurrency),
    };
    Ok(ScriptsStage {
        pages,
        thread,
        link,
    })
}

/// Waits for the scripts stage to end (it ends once the parse threads and
/// the fetch stage have let go of it).
fn join_scripts(
    thread: Option<thread::JoinHandle<content::scripts::Ended>>,
) -> anyhow::Result<Option<content::scripts::Ended>> {
    match thread.map(thread::JoinHandle::join) {
        None => Ok(None),
        Some(Ok(ended)) => Ok(Some(ended)),
        Some(Err(_)) => anyhow::bail!("internal error: the scripts thread panicked"),
    }
}

/// Runs the whole pipeline and returns what happened.
pub fn run(
    config: &Config,
    stop: &Stop,
    progress: Option<Arc<dyn Progress>>,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let FetchParse {
        guard,
        fetcher,
        crawl,
        extractor,
        parsers,
        limits,
        runtime,
    } = FetchParse::new(config)?;
    // Started before the outputs are opened: a browser that cannot start
    // ends the run before anything is written.
    let renderer = match &config.render {
        Some(settings) => Some(Arc::new(
            runtime
                .block_on(render::Renderer::start(settings.clone(), guard.clone()))
                .context("--render: cannot start the browser")?,
        )),
        None => None,
    };
    let Some((
        Prepared {
            _locks,
            sink,
            run_id_file,
            done,
            carried,
        },
        sources,
    )) = Prepared::outputs(config, stop, || input::open_sources(&config.sources))?
    else {
        return Ok(Summary {
            stopped: stop.cause(),
            elapsed: started.elapsed(),
            ..Summary::default()
        });
    };
    let concurrency = config.concurrency.get();
    // With --pages the report holds every failure (and -v logs them);
    // without it, the log is the only place a failed page can be seen.
    let failures_at = if config.pages.is_none() {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };

    let gate = config
        .ordered
        .then(|| Arc::new(OrderGate::new(ORDER_WINDOW_PER_SLOT * concurrency as u64)));
    let (line_tx, line_rx) = mpsc::channel::<InputLine>(LINE_QUEUE);
    let duplicates = Arc::new(AtomicU64::new(0));
    let other_shards = Arc::new(AtomicU64::new(0));
    // Lines handed to the fetch stage, to count those left undone when the
    // run ends early.
    let lines_read = Arc::new(AtomicU64::new(0));
    let (body_tx, body_rx) = mpsc::channel::<Completed>(parsers * BODIES_PER_PARSER);
    let (page_tx, page_rx) = std_mpsc::sync_channel::<PageResult>(PAGE_QUEUE);
    // Unbounded, yet bounded by the pages between the scheduler and the
    // parsers: one message per fetched page whose links are awaited, and
    // the scheduler takes them as they come.
    let (links_tx, links_rx) = mpsc::unbounded_channel::<Discovered>();

    let reader = thread::Builder::new()
        .name("scriptscrape-input".into())
        .spawn({
            let gate = gate.clone();
            let duplicates = Arc::clone(&duplicates);
            let other_shards = Arc::clone(&other_shards);
            let lines_read = Arc::clone(&lines_read);
            let shard = config.shard;
            move || {
                input::read_lines(sources, done, shard, &duplicates, &other_shards, |line| {
                    if let Some(gate) = &gate
                        && !gate.wait_for(line.seq, || line_tx.is_closed())
                    {
                        return false;
                    }
                    let sent = line_tx.blocking_send(line).is_ok();
                    if sent {
                        lines_read.fetch_add(1, Ordering::Relaxed);
                    }
                    sent
                })
            }
        })
        .context("cannot start the input thread")?;

    // With --fetch-scripts, parsed pages go to the scripts stage, which
    // hands them to the writer once their scripts are known.
    let mut render_stage = None;
    let (deliver, scripts_thread, script_link) = match config.fetch_scripts {
        None if renderer.is_some() => {
            let (render_tx, render_rx) = mpsc::channel(RENDER_QUEUE);
            let renderer = renderer.clone().context("internal error: no renderer")?;
            let stage = start_render(&runtime, renderer, render_rx, page_tx, stop, config.grace)?;
            render_stage = Some(stage);
            (Deliver::Render(render_tx), None, None)
        }
        None => (Deliver::Writer(page_tx), None, None),
        Some(max_body) => {
            let stage =
                start_scripts(max_body, config, move |page, ()| page_tx.send(page).is_ok())?;
            let deliver = Deliver::Scripts(stage.pages);
            (deliver, Some(stage.thread), Some(stage.link))
        }
    };
    let rendering = renderer.is_some();
    let parse_handles = spawn_parsers(
        parsers,
        body_rx,
        extractor,
        crawl.as_ref(),
        rendering,
        || {
            let deliver = deliver.clone();
            let links_tx = links_tx.clone();
            // Links go back to the scheduler before the page goes on, so that
            // the scheduler hears of them first.
            move |page, links, job| {
                if let Some(links) = links {
                    // Fails only once the scheduler is gone, when links no
                    // longer matter.
                    let _ = links_tx.send(links);
                }
                deliver.send(page, job)
            }
        },
    )?;
    // Only the parse threads may hold the ends of these channels, so that
    // the stages before them see a closed channel when they stop.
    drop(deliver);
    drop(links_tx);

    let writer = thread::Builder::new()
        .name("scriptscrape-output".into())
        .spawn({
            let stop = stop.clone();
            let gate = gate.clone();
            let progress = progress.clone();
            move || {
                write_stage(
                    sink,
                    page_rx,
                    failures_at,
                    &stop,
                    progress.as_deref(),
                    gate.as_deref(),
                )
            }
        })
        .context("cannot start the output thread")?;

    let max_frontier = limits.max_frontier;
    let setup = schedule::Setup {
        fetcher,
        limits,
        stop: stop.clone(),
        grace: config.grace,
        crawl: crawl.clone(),
        progress: progress.filter(|_| crawl.is_some()),
        scripts: script_link,
    };
    let frontier = crawl.clone().map(|crawl| Frontier {
        crawl,
        links: links_rx,
        duplicates: Arc::clone(&duplicates),
        guard,
    });
    let work = Local::new(line_rx, frontier, max_frontier);
    let (mut ended, crawled) = runtime.block_on(schedule::run(setup, work, body_tx));
    for handle in parse_handles {
        // A parse thread cannot panic: extraction runs under catch_unwind.
        let _ = handle.join();
    }
    // The parse threads are gone, so the render stage's input is closed:
    // it ends once the pages in the browser are out.
    let mut unrendered = 0;
    if let Some(stage) = render_stage {
        let _ = runtime.block_on(stage.task);
        let _ = stage.forward.join();
        unrendered = stage.unrendered.load(Ordering::Relaxed);
    }
    if unrendered > 0 && matches!(ended, Ended::Complete) {
        // Every page was fetched, but a stop came while some were in the
        // browser: the run did not complete.
        ended = Ended::Stopped { unfinished: 0 };
    }
    // The browser goes before anything else can end the process.
    let render_tally = renderer.map(|renderer| {
        runtime.block_on(renderer.close());
        renderer.tally()
    });
    // Requests still running here were abandoned because the output went
    // away or the run was stopped; dropping the runtime cancels them.
    runtime.shutdown_background();
    // Pages held for scripts that were never fetched (a stop): read and
    // parsed, but not written.
    let scripts_ended = join_scripts(scripts_thread)?;
    let held = scripts_ended.as_ref().map_or(0, |e| e.held);
    let (mut summary, sink) = match writer.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("internal error: the output thread panicked"),
    };
    summary.script_content = scripts_ended.map(|e| e.tally);
    summary.render = render_tally;
    match ended {
        Ended::Complete if !summary.output_closed => {
            // The input ended (else the fetch stage would still be
            // running), so this join does not wait on a read.
            // Joined for its error, if reading failed.
            match reader.join() {
                Ok(result) => {
                    result?;
                }
                Err(_) => anyhow::bail!("internal error: the input thread panicked"),
            }
            if let Some(sink) = sink {
                finish_output(sink.finish(), &mut summary)?;
            }
            if !summary.output_closed
                && let Some(file) = &run_id_file
            {
                // The outputs are final: nothing is left to resume.
                let _ = std::fs::remove_file(file);
            }
        }
        // Not complete: the outputs stay .part files. The input thread may
        // be blocked on a read (a pipe that never ends); it is left to end
        // with the process.
        Ended::Stopped { unfinished } => {
            summary.stopped = stop.cause();
            summary.unfinished = unfinished + held + unrendered;
            if let Some(sink) = sink {
                finish_output(sink.keep_partial(), &mut summary)?;
            }
        }
        Ended::Complete | Ended::OutputClosed => {
            if let Some(sink) = sink {
                finish_output(sink.keep_partial(), &mut summary)?;
            }
        }
    }
    if summary.output_closed && summary.stopped.is_none() {
        // Read but never written: queued, in flight, or parsed when the
        // reader of standard output went away.
        summary.unfinished = lines_read
            .load(Ordering::Relaxed)
            .saturating_sub(summary.listed);
        // One output went to standard output, so the run cannot be
        // resumed (--resume needs both in files); say where the rest is.
        let parts: Vec<String> = std::iter::once(&config.output)
            .chain(&config.pages)
            .filter_map(|d| match d {
                Destination::File(path) => output::staged_part(path).ok().flatten(),
                Destination::Stdout => None,
            })
            .filter(|part| part.exists())
            .map(|part| part.display().to_string())
            .collect();
        if !parts.is_empty() {
            tracing::warn!(
                "standard output closed before the run completed: what was done stays in {} \
                 (the previous files are unchanged)",
                parts.join(" and ")
            );
        }
    }
    summary.duplicates = duplicates.load(Ordering::Relaxed);
    summary.shard = config.shard;
    summary.other_shards = other_shards.load(Ordering::Relaxed);
    summary.crawl = config
        .crawl
        .as_ref()
        .filter(|c| c.discovers())
        .map(|_| crawled);
    summary.carry(&carried);
    summary.elapsed = started.elapsed();
    save_cookie_jar(config).inspect_err(|_| {
        tracing::info!(target: crate::run::terminal::SUMMARY_TARGET, "{summary}");
    })?;
    write_stats(config, &summary, started_at)?;
    Ok(summary)
}

/// Writes `--cookie-jar`, when asked for, once the run is over (stopped
/// early too: the cookies it got are as good).
pub(crate) fn save_cookie_jar(config: &Config) -> anyhow::Result<()> {
    let Some(jar) = &config.fetch.jar else {
        return Ok(());
    };
    let Some(path) = jar.save_to() else {
        return Ok(());
    };
    jar.save()
        .with_context(|| format!("cannot write --cookie-jar {}", path.display()))
}

/// Writes `--stats`, when asked for, once the run is over.
pub(crate) fn write_stats(
    config: &Config,
    summary: &Summary,
    started_at: SystemTime,
) -> anyhow::Result<()> {
    let Some(path) = &config.stats else {
        return Ok(());
    };
    let exit = summary.exit_status(config.max_failures);
    let doc = stats::document(summary, exit, started_at, SystemTime::now());
    stats::write(path, &doc).inspect_err(|_| {
        // The run itself is over and its outputs are in place: say how it
        // went before the error that makes the exit status 2.
        tracing::info!(target: crate::run::terminal::SUMMARY_TARGET, "{summary}");
    })
}

/// What a worker did, for its summary line and exit status.
#[derive(Clone, Debug)]
pub struct Worked {
    /// The worker's name in the job's consumer group.
    pub consumer: String,
    /// What it published.
    pub published: crate::queue::worker::Published,
    /// Why it ended: the job drained, or a stop.
    pub stopped: Option<crate::run::stop::Cause>,
    /// Time from start to end.
    pub elapsed: Duration,
}

impl std::fmt::Display for Worked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.published;
        write!(
            f,
            "worker {}: {} pages published ({} failed), {} found links queued",
            self.consumer,
            p.ok + p.failed,
            p.failed,
            p.links_queued
        )?;
        if p.taken_over > 0 {
            write!(f, ", {} taken over by other workers", p.taken_over)?;
        }
        match self.stopped {
            Some(cause) => write!(f, "; stopped by {}", cause.name())?,
            None => f.write_str("; the job is drained")?,
        }
        write!(f, ", {:.1} s", self.elapsed.as_secs_f64())
    }
}

/// Work entries a worker holds per request slot (`-c`): one being fetched
/// and one waiting to start, or being parsed and published.
const MAX_HELD_PER_SLOT: usize = 2;

/// Pages parsed and waiting to be published: a worker's writer is Redis,
/// slower per page than a file, so a few more may wait than for a file.
const PUBLISH_QUEUE: usize = 256;

/// Runs a worker of a shared queue: takes the job's URLs, fetches and
/// parses them as a local run does, and publishes each page's result,
/// until the job is closed and drained or `stop` says so.
pub fn work(
    config: &Config,
    settings: &crate::queue::worker::WorkSettings,
    stop: &Stop,
) -> anyhow::Result<Worked> {
    use crate::queue::retry::retry;
    use crate::queue::worker::{Held, Worker, consumer_name};
    use crate::queue::{Queue, QueueOptions};

    let started = Instant::now();
    let FetchParse {
        guard,
        fetcher,
        crawl,
        extractor,
        parsers,
        limits,
        runtime,
    } = FetchParse::new(config)?;
    let options = QueueOptions {
        claim_idle: settings.claim_idle,
        ..QueueOptions::default()
    };
    let queue = runtime.block_on(retry("connecting", stop, Level::Draining, || {
        Queue::connect(&settings.redis, options.clone())
    }))?;
    if !runtime.block_on(crate::queue::retry::until_job_exists(
        &queue,
        &settings.job,
        stop,
    ))? {
        return Ok(Worked {
            consumer: String::new(),
            published: Default::default(),
            stopped: stop.cause(),
            elapsed: started.elapsed(),
        });
    }
    let worker = Worker {
        queue,
        job: settings.job.clone(),
        consumer: consumer_name().into(),
        held: Arc::new(Held::default()),
        stop: stop.clone(),
        max_held: MAX_HELD_PER_SLOT * limits.concurrency,
    };
    tracing::info!(
        "worker {} takes work of job {:?}",
        worker.consumer,
        settings.job.name()
    );

    let concurrency = limits.concurrency;
    let (body_tx, body_rx) = mpsc::channel::<Completed>(parsers * BODIES_PER_PARSER);
    let (page_tx, page_rx) = mpsc::channel(PUBLISH_QUEUE);
    // With --fetch-scripts, a page and its links wait in the scripts stage
    // (still held, so touched and given back like any other) until its
    // scripts are known.
    let (parse_handles, scripts_thread, script_link) = match config.fetch_scripts {
        None => {
            let parse_handles =
                spawn_parsers(parsers, body_rx, extractor, crawl.as_ref(), false, || {
                    let page_tx = page_tx.clone();
                    move |page, links, _| page_tx.blocking_send((page, links)).is_ok()
                })?;
            drop(page_tx);
            (parse_handles, None, None)
        }
        Some(max_body) => {
            let stage = start_scripts(max_body, config, move |page, links| {
                page_tx.blocking_send((page, links)).is_ok()
            })?;
            let pages = stage.pages;
            let parse_handles =
                spawn_parsers(parsers, body_rx, extractor, crawl.as_ref(), false, || {
                    let pages = pages.clone();
                    move |page, links, _| {
                        let arrival = content::scripts::Arrival::Page(page, links);
                        pages.send(arrival).is_ok()
                    }
                })?;
            (parse_handles, Some(stage.thread), Some(stage.link))
        }
    };

    // Deliveries wait here until the scheduler takes them; the taker
    // holds at most `max_held` in all, so that this worker holds little
    // another could do.
    let (delivery_tx, delivery_rx) = mpsc::channel(concurrency);
    let taker = runtime.spawn({
        let worker = worker.clone();
        async move { worker.take(delivery_tx).await }
    });
    let heartbeat = runtime.spawn({
        let worker = worker.clone();
        // At most 5 s apart, so that a worker with a longer --claim-idle
        // is not taken for dead by one with a shorter (down to 15 s).
        let every =
            (settings.claim_idle / 3).clamp(Duration::from_millis(50), Duration::from_secs(5));
        async move { worker.heartbeat(every).await }
    });
    let publisher = runtime.spawn({
        let worker = worker.clone();
        let max_results = settings.max_results;
        async move { worker.publish(page_rx, max_results).await }
    });
    let give_back: Box<dyn FnOnce(Vec<u64>) + Send> = Box::new({
        let worker = worker.clone();
        move |seqs| {
            // Called by the scheduler, on the runtime.
            tokio::spawn(async move { worker.give_back(Some(&seqs)).await });
        }
    });
    let work = schedule::Shared::new(
        delivery_rx,
        settings.max_deliveries,
        crawl.clone(),
        give_back,
        guard,
    );
    let setup = schedule::Setup {
        fetcher,
        limits,
        stop: stop.clone(),
        grace: config.grace,
        crawl,
        progress: None,
        scripts: script_link,
    };
    let (ended, _) = runtime.block_on(schedule::run(setup, work, body_tx));
    for handle in parse_handles {
        // A parse thread cannot panic: extraction runs under catch_unwind.
        let _ = handle.join();
    }
    // Pages it still holds were never published: given back below with
    // the rest of what this worker holds.
    join_scripts(scripts_thread)?;
    let published = runtime
        .block_on(publisher)
        .map_err(|e| anyhow::anyhow!("internal error: the publisher failed: {e}"))??;
    let taken = runtime.block_on(taker);
    heartbeat.abort();
    // Whatever is still held was not published: back to the job at once.
    runtime.block_on(worker.give_back(None));
    taken.map_err(|e| anyhow::anyhow!("internal error: the taker failed: {e}"))??;
    runtime.shutdown_background();
    let stopped = match ended {
        Ended::Complete => None,
        Ended::Stopped { .. } | Ended::OutputClosed => stop.cause(),
    };
    save_cookie_jar(config)?;
    Ok(Worked {
        consumer: worker.consumer.to_string(),
        published,
        stopped,
        elapsed: started.elapsed(),
    })
}

/// What the fetch and parse stages are built from, the same way for a
/// local run and a worker.
struct FetchParse {
    /// Keeps a crawl out of private networks (see crate::crawl::netguard).
    guard: Option<Arc<Guard>>,
    fetcher: Fetcher,
    crawl: Option<Arc<Crawl>>,
    extractor: Extractor,
    parsers: usize,
    limits: schedule::Limits,
    runtime: tokio::runtime::Runtime,
}

impl FetchParse {
    fn new(config: &Config) -> anyhow::Result<Self> {
        // Only a crawl that follows links or reads sitemaps meets URLs the
        // user did not list.
        let guard = config
            .crawl
            .as_ref()
            .filter(|c| c.discovers() && !c.allow_private)
            .map(|_| {
                let guard = Guard::new();
                guard.trust_proxies(&config.fetch.proxies);
                guard
            });
        let fetcher = Fetcher::new(&config.fetch, guard.clone())?;
        let concurrency = config.concurrency.get();
        let crawl = config.crawl.clone().map(Arc::new);
        let extractor = Extractor::new()
            .keep_inline_text(config.inline_text)
            .detect_utf8(config.detect_utf8)
            .links(crawl.as_ref().is_some_and(|c| c.follows_from(0)));
        let limits = schedule::Limits {
            concurrency,
            per_host: config.per_host.get(),
            delay: config.delay,
            rate: config.rate,
            random_delay: config.random_delay,
            max_queued: MAX_QUEUED_URLS,
            // A crawl's discovered URLs past --frontier-memory wait on disk
            // (see crate::crawl::spill), so memory does not grow with the
            // site.
            max_frontier: config.crawl.as_ref().map_or(0, |c| c.frontier_memory),
            robots_agent: config
                .robots
                .then(|| crate::crawl::robots::agent_token(&config.fetch.user_agent).to_owned()),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("scriptscrape-fetch")
            .build()
            .context("cannot start the async runtime")?;
        Ok(FetchParse {
            guard,
            fetcher,
            crawl,
            extractor,
            parsers: parse_threads(concurrency),
            limits,
            runtime,
        })
    }
}

/// Starts `parsers` parse threads on `bodies`, each handing its pages to
/// the `emit` that `emitter` makes for it.
fn spawn_parsers<E>(
    parsers: usize,
    bodies: mpsc::Receiver<Completed>,
    extractor: Extractor,
    crawl: Option<&Arc<Crawl>>,
    render: bool,
    mut emitter: impl FnMut() -> E,
) -> anyhow::Result<Vec<thread::JoinHandle<()>>>
where
    E: FnMut(PageResult, Option<Discovered>, Option<render::Job>) -> bool + Send + 'static,
{
    let bodies = Arc::new(Mutex::new(bodies));
    let mut handles = Vec::with_capacity(parsers);
    for i in 0..parsers {
        let bodies = Arc::clone(&bodies);
        let crawl = crawl.cloned();
        let emit = emitter();
        let handle = thread::Builder::new()
            .name(format!("scriptscrape-parse-{i}"))
            .spawn(move || parse_stage(&bodies, extractor, crawl.as_deref(), render, emit))
            .context("cannot start a parse thread")?;
        handles.push(handle);
    }
    Ok(handles)
}

/// A run's outputs, ready for its first page: locked, checked, and when
/// resuming, continued from what the interrupted run left.
pub(crate) struct Prepared {
    /// Held until the outputs are final: a second run waits or leaves.
    pub _locks: Vec<lock::Lock>,
    pub sink: Sink,
    /// The run identity beside the report's `.part`, removed once final.
    pub run_id_file: Option<std::path::PathBuf>,
    /// Pages the interrupted run finished (with `--resume`).
    pub done: Option<resume::Done>,
    /// Its counts, carried into this run's summary.
    pub carried: Summary,
}

impl Prepared {
    /// Takes the outputs' locks, checks `--stats` can be written, runs
    /// `open_inputs` (so that an unreadable input is reported before
    /// anything is written), continues an interrupted run with
    /// `--resume`, and opens the outputs. `None`: stopped while waiting
    /// for a lock.
    pub(crate) fn outputs<T>(
        config: &Config,
        stop: &Stop,
        open_inputs: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<(Prepared, T)>> {
        let mut locks = Vec::new();
        for path in lock::lock_paths(config)? {
            let say = |msg: &str| tracing::warn!("{msg}");
            match lock::acquire(&path, config.wait_lock, stop, say)? {
                Acquired::Held(lock) => locks.push(lock),
                Acquired::Stopped => return Ok(None),
            }
        }
        if let Some(path) = &config.stats {
            stats::check_writable(path)?;
        }
        let inputs = open_inputs()?;
        let earlier = if config.resume {
            let columns = config.layout.script_fields.names();
            let earlier = resume::prepare(config, columns, config.encoding.format)?;
            if earlier.is_none() {
                tracing::warn!("--resume: no unfinished run to resume; starting a new one");
            }
            earlier
        } else {
            None
        };
        let sink = open_sink(config, earlier.is_some())?;
        // Which job the .part files belong to, for a later --resume; only
        // a page report written to a file can be resumed.
        let report_part = match &config.pages {
            Some(Destination::File(pages)) => output::staged_part(pages)?,
            _ => None,
        };
        if earlier.is_none()
            && let Some(part) = &report_part
        {
            RunId::of(config).write(part)?;
        }
        let (done, carried) = match earlier {
            Some(Earlier { done, summary }) => (Some(done), summary),
            None => (None, Summary::default()),
        };
        let prepared = Prepared {
            _locks: locks,
            sink,
            run_id_file: report_part.map(|part| RunId::path(&part)),
            done,
            carried,
        };
        Ok(Some((prepared, inputs)))
    }
}

fn open_sink(config: &Config, resuming: bool) -> anyhow::Result<Sink> {
    // Files are written as .part siblings and renamed at the end, so a
    // failure here leaves the outputs of the last run as they were. When
    // resuming, the .part files of the interrupted run are continued.
    let open = |dest: &Destination| Target::open(dest, resuming);
    let scripts = open(&config.output)?;
    let pages = match config.pages.as_ref().map(open).transpose() {
        Ok(pages) => pages,
        Err(e) => {
            scripts.discard();
            return Err(e);
        }
    };
    let names = [
        crate::output::output_name("-o", &config.output),
        config
            .pages
            .as_ref()
            .map_or_else(String::new, |p| crate::output::output_name("--pages", p)),
    ];
    // The errors name the output they are about.
    Ok(Sink::new(
        scripts,
        pages,
        names,
        &config.layout,
        config.encoding,
        !resuming,
    )?)
}

/// Decodes and extracts pages until the fetch stage is done, handing each
/// page, with the links it leads to when they are awaited, to `emit`;
/// stops when `emit` says the next stage is gone.
fn parse_stage(
    bodies: &Mutex<mpsc::Receiver<Completed>>,
    extractor: Extractor,
    crawl: Option<&Crawl>,
    render: bool,
    mut emit: impl FnMut(PageResult, Option<Discovered>, Option<render::Job>) -> bool,
) {
    loop {
        // The lock is held only while waiting for the next body; parsing
        // happens after it is released, in parallel with other threads.
        let next = bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(done) = next else { return };
        let (page, links, job) = parse_one(done, &extractor, crawl, render);
        if !emit(page, links, job) {
            return;
        }
    }
}

/// One page's result for the outputs and, when the scheduler awaits them
/// (see [`Completed::yields_links`]), the links it leads to: sent even
/// when the page fails to parse, as the scheduler counts on one message.
/// With `render`, a page read whole also yields what the browser is to
/// load.
pub(crate) fn parse_one(
    done: Completed,
    extractor: &Extractor,
    crawl: Option<&Crawl>,
    render: bool,
) -> (PageResult, Option<Discovered>, Option<render::Job>) {
    let awaited = crawl.is_some_and(|c| done.yields_links(c));
    let depth = done.origin.as_ref().map_or(0, |o| o.depth);
    // Credentials in a URL never reach an output or a log line.
    let referrer =
        done.origin.as_ref().and_then(|o| o.referrer.clone()).map(
            |r| match output::without_password(&r) {
                Cow::Borrowed(_) => r,
                Cow::Owned(masked) => masked.into(),
            },
        );
    let page_url = match output::without_password(&done.page_url) {
        Cow::Borrowed(_) => done.page_url,
        Cow::Owned(masked) => masked,
    };
    match done.fetch {
        Ok(fetched) => {
            let final_url = output::without_password(fetched.final_url.as_str()).into_owned();
            let bytes = fetched.body.len() as u64;
            // A page with a policy in its headers keeps what checking
            // every script against it needs; others only after a <meta>.
            let extractor = extractor.csp_header(!fetched.csp.is_empty());
            // The browser is given the same bytes (the parser takes them).
            let body = render.then(|| fetched.body.clone());
            let decoded = catch_unwind(AssertUnwindSafe(|| {
                extractor.extract_body_within(
                    &fetched.final_url,
                    fetched.body,
                    fetched.charset.as_deref(),
                    PARSE_CPU_BUDGET,
                )
            }));
            let encoding = decoded.as_ref().ok().map(|d| d.encoding.name());
            let parsed = decoded
                .map(|d| d.extracted)
                .map_err(|panic| {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    PageError::new(ErrorKind::Parse, format!("HTML parser failed: {msg}"))
                })
                .and_then(|parsed| {
                    parsed.map_err(|over| {
                        let detail = format!(
                            "{over}; the markup is nested too deeply or is otherwise hostile"
                        );
                        PageError::new(ErrorKind::ParseLimit, detail)
                    })
                });
            let links = match (crawl, &done.origin) {
                (Some(crawl), Some(origin)) if awaited => {
                    let links = parsed.as_ref().map_or(&[][..], |p| &p.links[..]);
                    Some(crawl.follow(origin, &fetched.final_url, links))
                }
                _ => None,
            };
            // 204 and 205 have no content for a browser to show (it would
            // not even navigate).
            let content = !matches!(fetched.status, 204 | 205);
            let job = match (body, encoding) {
                (Some(body), Some(charset)) if parsed.is_ok() && content => Some(render::Job {
                    url: fetched.final_url.clone(),
                    status: fetched.status,
                    body,
                    charset,
                    csp: fetched.csp.clone(),
                }),
                _ => None,
            };
            let metas = parsed.as_ref().map_or(&[][..], |p| &p.csp_metas[..]);
            let policy = PagePolicy::new(&fetched.final_url, &fetched.csp, metas);
            let outcome = parsed.map(|p| {
                let mut scripts = p.scripts;
                for script in &mut scripts {
                    // Also drops the nonce value, which is never kept.
                    script.csp_allowed = policy.check(script);
                }
                scripts
            });
            let page = PageResult {
                seq: done.seq,
                page_url,
                final_url: Some(final_url),
                status: Some(fetched.status),
                outcome,
                csp: policy.csp_column(),
                bytes,
                elapsed: done.elapsed,
                charset: encoding,
                attempts: fetched.attempts,
                depth,
                referrer,
                incomplete: None,
            };
            (page, links, job)
        }
        Err(failure) => {
            let page = PageResult {
                seq: done.seq,
                page_url,
                final_url: failure
                    .final_url
                    .map(|u| output::without_password(u.as_str()).into_owned()),
                status: failure.status,
                outcome: Err(failure.error),
                csp: None,
                bytes: failure.bytes,
                elapsed: done.elapsed,
                charset: None,
                attempts: failure.attempts,
                depth,
                referrer,
                incomplete: None,
            };
            (page, None, None)
        }
    }
}

/// The single owner of the outputs: writes each page whole, in the order
/// pages arrive (or, with `order`, in input order), and keeps the counts. Returns the sink unless the
/// output is gone (its reader closed it) or the run was told to stop at
/// once; the caller decides whether the outputs are complete.
fn write_stage(
    mut sink: Sink,
    pages: std_mpsc::Receiver<PageResult>,
    failures_at: tracing::Level,
    stop: &Stop,
    progress: Option<&dyn Progress>,
    order: Option<&OrderGate>,
) -> anyhow::Result<(Summary, Option<Sink>)> {
    let mut summary = Summary::default();
    // With --ordered: pages that arrived before an earlier one, by input
    // position. The gate keeps it under ORDER_WINDOW pages.
    let mut waiting: BTreeMap<u64, PageResult> = BTreeMap::new();
    let mut next_seq = 0u64;
    let mut arrived = pages.into_iter();
    let mut input_done = false;
    loop {
        let page = match order {
            None => match arrived.next() {
                Some(page) => page,
                None => break,
            },
            Some(gate) => {
                if let Some(page) = waiting.remove(&next_seq) {
                    next_seq += 1;
                    gate.advance(next_seq);
                    page
                } else if input_done {
                    // Only after a stop can a position be missing for good:
                    // the rest is written in input order, past the gaps.
                    match waiting.pop_first() {
                        Some((_, page)) => page,
                        None => break,
                    }
                } else {
                    match arrived.next() {
                        Some(page) => {
                            waiting.insert(page.seq, page);
                            continue;
                        }
                        None => {
                            input_done = true;
                            continue;
                        }
                    }
                }
            }
        };
        if stop.level() == Level::Now {
            // Whole pages only: the page before this one was written in
            // one piece, and this one is dropped.
            return Ok((summary, Some(sink)));
        }
        log_page(&page, failures_at);
        if let Err(e) = sink.write_page(&page) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                summary.output_closed = true;
                return Ok((summary, None));
            }
            return Err(e.into());
        }
        summary.record(&page);
        if let Some(progress) = progress {
            progress.page_written(page.outcome.is_err());
        }
    }
    Ok((summary, Some(sink)))
}

/// Says what became of a page: a failure at `failures_at` (WARN when the
/// log is the only place it is reported), a success at debug level.
pub(crate) fn log_page(page: &PageResult, failures_at: tracing::Level) {
    match &page.outcome {
        Err(e) if failures_at == tracing::Level::WARN => {
            tracing::warn!("{}: {}: {}", page.page_url, e.kind, e.detail)
        }
        Err(e) => tracing::info!("{}: {}: {}", page.page_url, e.kind, e.detail),
        Ok(scripts) => tracing::debug!(
            "{}: {} scripts, {} bytes in {} ms",
            page.page_url,
            scripts.len(),
            page.bytes,
            page.elapsed.as_millis()
        ),
    }
}

/// A broken pipe at the end is the reader going away, as during the run.
pub(crate) fn finish_output(
    result: std::io::Result<()>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            summary.output_closed = true;
            Ok(())
        }
        other => Ok(other?),
    }
}
