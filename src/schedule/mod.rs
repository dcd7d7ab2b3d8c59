//! The fetch stage: which URL to request next, and when.
//!
//! - [`hosts`]: per-host queues within `-c`, `--per-host`, `--delay` and
//!   robots.txt; how many URLs wait is bounded.
//! - [`work`]: the seam to where work comes from and where what pages lead
//!   to goes; [`local`] is this process's input and crawl frontier.
//! - [`tasks`]: each request a task that dies with the run.
//!
//! The loop here ties them: it starts requests while the limits allow,
//! hands each result on as it completes, takes in new work while the
//! queues have room, and stops when the work is exhausted, the output has
//! gone, or it is asked to. The queues hold at most `max_queued` URLs read
//! from the input; past that the loop stops taking input until requests
//! drain them, which keeps memory bounded whatever the length of the list.

pub mod hosts;
pub mod local;
pub mod served;
pub mod shared;
pub mod tasks;
pub mod work;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::sync::mpsc;
use url::Url;

use crate::content::scripts::{Content, News};
use crate::crawl::{Crawl, Origin};
use crate::error::ErrorKind;
use crate::fetch::{FetchFailure, Fetched, Fetcher, HopRule};
use crate::run::report::Crawled;
use crate::run::stop::{Level, Stop};
use crate::run::terminal::Progress;
use hosts::{Job, Queues};
use tasks::{Finished, Tasks};
use work::{Ctx, Work};

pub use local::{Frontier, Local};
pub use shared::Shared;

/// The bounds the scheduler keeps.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests in flight in all (`-c`).
    pub concurrency: usize,
    /// Requests in flight to one host (`--per-host`).
    pub per_host: usize,
    /// Least time between the starts of two requests to one host.
    pub delay: Duration,
    /// Least time between the starts of any two requests (`--rate`).
    pub rate: Option<Duration>,
    /// Each wait is drawn between 0.5 and 1.5 times its length
    /// (`--random-delay`).
    pub random_delay: bool,
    /// URLs read from the input waiting in the queues.
    pub max_queued: usize,
    /// With `--robots`: the product token robots.txt groups are matched
    /// against.
    pub robots_agent: Option<String>,
    /// Discovered URLs held in memory; past this they wait on disk.
    pub max_frontier: usize,
}

/// The fetch stage's link to the `--fetch-scripts` stage.
pub struct ScriptLink {
    /// Pages that reached the stage, the scripts they need, and held
    /// pages that went on.
    pub news: mpsc::UnboundedReceiver<News>,
    /// Where fetched scripts go; false once the stage has gone.
    pub results: Box<dyn Fn(Url, Content) -> bool + Send + Sync>,
    /// `--max-script-body`.
    pub max_body: u64,
    /// Held pages past which no page request starts.
    pub max_held: usize,
}

/// Everything the fetch stage runs with.
pub struct Setup {
    /// The HTTP client.
    pub fetcher: Fetcher,
    /// The bounds.
    pub limits: Limits,
    /// Asks the stage to stop early.
    pub stop: Stop,
    /// How long requests in flight may finish after a stop.
    pub grace: Duration,
    /// Crawl mode's settings (`--depth`), or `None` to fetch the listed
    /// URLs only.
    pub crawl: Option<Arc<Crawl>>,
    /// Told how many URLs wait in the queues.
    pub progress: Option<Arc<dyn Progress>>,
    /// With `--fetch-scripts`: the stage that asks for scripts.
    pub scripts: Option<ScriptLink>,
}

/// What the fetch stage hands on for one input line or discovered URL.
#[derive(Debug)]
pub struct Completed {
    /// The input line's position among the lines passed on (see
    /// [`InputLine::seq`]); discovered URLs are numbered after them.
    pub seq: u64,
    /// The normalised URL, or the raw line when it is not a URL.
    pub page_url: String,
    /// The response, or why there is none.
    pub fetch: Result<Fetched, FetchFailure>,
    /// From the start of the first request to the end of the body.
    pub elapsed: Duration,
    /// In crawl mode, where the URL came from.
    pub origin: Option<Origin>,
}

impl Completed {
    /// A line that produced no request.
    pub(crate) fn without_request(
        seq: u64,
        page_url: String,
        kind: ErrorKind,
        detail: String,
    ) -> Self {
        Completed {
            seq,
            page_url,
            fetch: Err(FetchFailure::new(kind, detail)),
            elapsed: Duration::ZERO,
            origin: None,
        }
    }

    /// Whether the parse stage sends this page's links back: a fetched
    /// page, in crawl mode, short of the depth limit. The scheduler counts
    /// on exactly one [`Discovered`] for each such page.
    pub fn yields_links(&self, crawl: &Crawl) -> bool {
        self.fetch.is_ok()
            && self
                .origin
                .as_ref()
                .is_some_and(|o| crawl.follows_from(o.depth))
    }
}

/// The position of the first URL a crawl finds: after any input line's, so
/// that a page's `seq` tells a listed URL from a found one.
pub const FIRST_FOUND_SEQ: u64 = 1 << 62;

/// How the fetch stage ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The input was exhausted and every URL has its result.
    Complete,
    /// The receiver of results went away.
    OutputClosed,
    /// Asked to stop: `unfinished` URLs were read or found but will have
    /// no result (queued, in flight past the grace period, or waiting in
    /// the line channel); the rest of the input was not read.
    Stopped { unfinished: u64 },
}

/// The loop's own state: the queues, the requests in flight, and how far
/// a stop has gone.
struct Fetching {
    fetcher: Fetcher,
    limits: Limits,
    crawl: Option<Arc<Crawl>>,
    queues: Queues,
    tasks: Tasks,
    /// Page requests among `tasks` (the rest are robots.txt and sitemaps).
    pages_running: u64,
    /// Rows for URLs that get no request, waiting to be handed on.
    rows: Vec<Completed>,
    /// When a stop's grace period ends.
    grace_ends: Option<Instant>,
    /// URLs that will have no result because of a stop.
    unfinished: u64,
    /// With `--fetch-scripts`: the link to its stage, and how the pages
    /// handed on stand there.
    scripts: Option<ScriptLink>,
    /// Pages handed on that the scripts stage has not reported yet: each
    /// may still ask for scripts.
    unreported: u64,
    /// Pages the scripts stage holds for their scripts.
    held: usize,
}

impl Fetching {
    fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        Ctx {
            queues: &mut self.queues,
            tasks: &mut self.tasks,
            fetcher: &self.fetcher,
            rows: &mut self.rows,
            draining: self.grace_ends.is_some(),
            now,
        }
    }

    /// Starts every request the limits allow now: scripts first, pages
    /// while the scripts stage is not holding too many.
    fn dispatch(&mut self, work: &mut impl Work, now: Instant) {
        work.refill(&mut self.queues, now);
        loop {
            let holding = self
                .scripts
                .as_ref()
                .is_some_and(|s| self.held >= s.max_held);
            let cap = if holding {
                None
            } else {
                work.depth_cap(&self.queues)
            };
            let Some(job) = self.queues.next_job(now, cap) else {
                break;
            };
            match job {
                Job::Fetch {
                    host,
                    url,
                    seq,
                    origin,
                } => {
                    let Some(limits) = work.fetch_limits(seq) else {
                        // Nobody waits for it: the slot goes back.
                        self.queues.finished(&host, now);
                        continue;
                    };
                    work.dispatched(seq, origin.as_ref().map(|o| o.depth));
                    let rule = self.hop_rule(work, seq, origin.as_ref());
                    self.pages_running += 1;
                    let fetcher = if limits == work::FetchLimits::default() {
                        self.fetcher.clone()
                    } else {
                        self.fetcher.limited(limits.timeout, limits.retries)
                    };
                    let task = tasks::page(&fetcher, host, url, seq, origin, rule);
                    self.tasks.push(task);
                }
                Job::Robots(host, page) => {
                    let agent = self.limits.robots_agent.clone().unwrap_or_default();
                    let task = tasks::robots(&self.fetcher, host, page, agent);
                    self.tasks.push(task);
                }
                Job::Refuse(url, why, seq, origin) => {
                    let kind = ErrorKind::RobotsDisallowed;
                    let mut row = Completed::without_request(seq, url.into(), kind, why);
                    row.origin = origin;
                    self.rows.push(row);
                }
                Job::Script { host, url, referer } => {
                    let limit = self.scripts.as_ref().map_or(0, |s| s.max_body);
                    let task = tasks::script(&self.fetcher, host, url, referer, limit);
                    self.tasks.push(task);
                }
                Job::RefuseScript(url, why) => {
                    let refused = FetchFailure::new(ErrorKind::RobotsDisallowed, why);
                    self.script_done(url, Content::from_fetch(Err(refused)));
                }
            }
        }
        work.after_dispatch(&mut self.queues, &mut self.rows);
    }

    /// A link's redirects stay in scope of its crawl (the run's, or its
    /// served scan's); seeds and sitemap entries (depth 0) are the user's
    /// and the site's word.
    fn hop_rule(&self, work: &impl Work, seq: u64, origin: Option<&Origin>) -> Option<HopRule> {
        let o = origin.filter(|o| o.depth > 0)?;
        let crawl = self.crawl.clone().or_else(|| work.crawl_of(seq))?;
        let seed = o.seed.clone();
        Some(Arc::new(move |hop| crawl.in_scope(&seed, hop)))
    }

    /// A stop was asked for: what is queued will not be fetched.
    fn begin_stop(&mut self, work: &mut impl Work, now: Instant, grace: Duration) {
        self.grace_ends = Some(now + grace);
        self.unfinished += self.queues.take_all().len() as u64;
        // Their pages stay held, and are counted where they are held.
        self.queues.drop_scripts();
        self.unfinished += work.give_up();
    }

    /// A script's fetch ended: its content goes to the scripts stage (if
    /// that is gone, so is the writer, which the loop finds out).
    fn script_done(&mut self, url: Url, content: Content) {
        if let Some(link) = &self.scripts {
            let _ = (link.results)(url, content);
        }
    }

    /// Hands a page on; false when the receiver has gone.
    async fn hand_on(&mut self, done: Completed, out: &mpsc::Sender<Completed>) -> bool {
        if out.send(done).await.is_err() {
            return false;
        }
        if self.scripts.is_some() {
            self.unreported += 1;
        }
        true
    }

    /// What the scripts stage said; false when it has gone (and with it
    /// the writer).
    fn told(&mut self, news: Option<News>, now: Instant) -> bool {
        match news {
            None => false,
            Some(News::Page { fetch, held }) => {
                self.unreported = self.unreported.saturating_sub(1);
                self.held += usize::from(held);
                // Stopping: nothing new starts; the page stays held.
                if self.grace_ends.is_none() {
                    for (url, referer) in fetch {
                        self.queues.push_script(url, referer, now);
                    }
                }
                true
            }
            Some(News::Released) => {
                self.held = self.held.saturating_sub(1);
                true
            }
        }
    }
}

/// The scripts stage's next news; pending forever without one.
async fn next_news(link: &mut Option<ScriptLink>) -> Option<News> {
    match link {
        Some(link) => link.news.recv().await,
        None => std::future::pending().await,
    }
}

/// Fetches every URL `work` brings (and, crawling, every URL they lead
/// to), within the limits, and sends each result to `out` as it completes.
/// Returns when the work is exhausted and every request has finished, when
/// `out` is closed, or when the stop handle says so: on draining, nothing
/// new starts and requests in flight have the grace period to finish.
pub(crate) async fn run<W: Work>(
    setup: Setup,
    mut work: W,
    out: mpsc::Sender<Completed>,
) -> (Ended, Crawled) {
    let Setup {
        fetcher,
        limits,
        stop,
        grace,
        crawl,
        progress,
        scripts,
    } = setup;
    let mut f = Fetching {
        fetcher,
        queues: Queues::new(limits.clone()),
        limits,
        crawl,
        tasks: Tasks::new(),
        pages_running: 0,
        rows: Vec::new(),
        grace_ends: None,
        unfinished: 0,
        scripts,
        unreported: 0,
        held: 0,
    };
    work.start(&mut f.ctx(Instant::now()));
    let mut shown_queued = u64::MAX;
    loop {
        let now = Instant::now();
        if f.grace_ends.is_none() && stop.level() >= Level::Draining {
            f.begin_stop(&mut work, now, grace);
        }
        if stop.level() == Level::Now || f.grace_ends.is_some_and(|end| now >= end) {
            // Dropping the tasks aborts the requests still in flight.
            let unfinished = f.unfinished + f.pages_running;
            return (Ended::Stopped { unfinished }, work.tally());
        }
        f.queues.wake(now);
        f.dispatch(&mut work, now);
        if let Some(progress) = &progress {
            // Only when shown: a served work counts its scans for it.
            let queued = f.queues.queued as u64 + work.elsewhere();
            if queued != shown_queued {
                shown_queued = queued;
                progress.queued(queued);
            }
        }
        for done in std::mem::take(&mut f.rows) {
            if !f.hand_on(done, &out).await {
                return (Ended::OutputClosed, work.tally());
            }
        }
        // A page not yet reported by the scripts stage may still need
        // scripts; once stopping, those would not be fetched anyway.
        let reported = f.unreported == 0 || f.grace_ends.is_some();
        if work.exhausted() && f.queues.is_empty() && f.tasks.is_empty() && reported {
            let ended = match f.grace_ends {
                None => Ended::Complete,
                Some(_) => Ended::Stopped {
                    unfinished: f.unfinished,
                },
            };
            return (ended, work.tally());
        }
        let room = f.grace_ends.is_none() && f.queues.from_input < f.limits.max_queued;
        // A far-off deadline stands in for "no host is waiting on a delay".
        let wake_at = f
            .grace_ends
            .or_else(|| f.queues.next_wake())
            .unwrap_or_else(|| now + Duration::from_secs(3600));
        let next_level = match f.grace_ends {
            None => Level::Draining,
            Some(_) => Level::Now,
        };
        tokio::select! {
            Some(finished) = f.tasks.next(), if !f.tasks.is_empty() => {
                let now = Instant::now();
                match finished {
                    Finished::Robots(host, rules) => {
                        f.queues.robots_known(&host, rules, now);
                        work.robots_known(host, &mut f.ctx(now));
                    }
                    Finished::Sitemap(read) => work.sitemap_read(read, &mut f.ctx(now)),
                    Finished::Page { host, depth, done } => {
                        f.pages_running -= 1;
                        f.queues.finished(&host, now);
                        work.completed(&done, depth);
                        if !f.hand_on(done, &out).await {
                            return (Ended::OutputClosed, work.tally());
                        }
                    }
                    Finished::Script { host, url, content } => {
                        f.queues.finished(&host, now);
                        f.script_done(url, content);
                    }
                }
            }
            news = next_news(&mut f.scripts) => {
                if !f.told(news, Instant::now()) {
                    return (Ended::OutputClosed, work.tally());
                }
            }
            arrival = work.next(room) => {
                if work.take_in(arrival, &mut f.ctx(Instant::now())).is_err() {
                    return (Ended::OutputClosed, work.tally());
                }
            }
            () = tokio::time::sleep_until(wake_at.into()) => {}
            () = stop.reached(next_level) => {}
        }
    }
}
