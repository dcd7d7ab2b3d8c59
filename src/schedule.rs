//! The fetch stage's scheduler: which URL to request next, and when.
//!
//! URLs wait in per-host queues. A request starts whenever a global slot
//! (`-c`) is free and some host has a queued URL, a free per-host slot
//! (`--per-host`) and its `--delay` behind it. Ready hosts take turns, so a
//! long run of URLs for one slow host never holds back the others: while
//! any other host has work, no global slot sits idle waiting on a full host.
//!
//! With `--robots`, a host's first job is its robots.txt; its URLs wait
//! until the rules are known, then each is fetched or refused, and a
//! Crawl-delay raises the host's delay.
//!
//! A host is a URL's authority, host and port (as for robots.txt): two
//! servers on one machine are two hosts, and so are 127.0.0.1 and
//! 127.0.0.2. The queues hold at most `max_queued` URLs read from the input;
//! past that the scheduler stops reading input until requests drain them,
//! which keeps memory bounded whatever the length of the list.
//!
//! In crawl mode (`--depth`) the scheduler also owns the frontier: the
//! links each parsed page leads to come back here, are checked against the
//! set of URLs already seen (8 bytes per URL), and queue at their depth.
//! Each host keeps one queue per depth, and the lowest depth with a ready
//! host goes first: breadth-first within the per-host limits. With
//! `--max-pages` the order is strict: no page is fetched while a page
//! nearer a seed is queued or could still be found.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use url::Url;

use crate::crawl::netguard::Guard;
use crate::crawl::robots::{self, Rules};
use crate::crawl::sitemap::{self, Sitemap};
use crate::crawl::spill::Spill;
use crate::crawl::{Crawl, Discovered, Origin};
use crate::error::ErrorKind;
use crate::fetch::{FetchFailure, Fetched, Fetcher, HopRule};
use crate::input::InputLine;
use crate::run::report::Crawled;
use crate::run::stop::{Level, Stop};
use crate::run::terminal::Progress;
use crate::seen::HashSet64;

/// The bounds the scheduler keeps.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests in flight in all (`-c`).
    pub concurrency: usize,
    /// Requests in flight to one host (`--per-host`).
    pub per_host: usize,
    /// Least time between the starts of two requests to one host.
    pub delay: Duration,
    /// URLs read from the input waiting in the queues.
    pub max_queued: usize,
    /// With `--robots`: the product token robots.txt groups are matched
    /// against.
    pub robots_agent: Option<String>,
    /// Discovered URLs held in memory; past this they wait on disk.
    pub max_frontier: usize,
}

/// Crawl mode, as the scheduler needs it.
pub struct Frontier {
    /// The crawl's settings.
    pub crawl: Arc<Crawl>,
    /// The links of each parsed page whose links are awaited (see
    /// [`Completed::yields_links`]), one message per page.
    pub links: mpsc::UnboundedReceiver<Discovered>,
    /// Where seeds already seen are counted, with the input's duplicates.
    pub duplicates: Arc<AtomicU64>,
    /// Keeps discovered URLs out of private networks; told each seed's
    /// host, which it trusts.
    pub guard: Option<Arc<Guard>>,
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
    /// Crawl mode (`--depth`), or `None` to fetch the listed URLs only.
    pub frontier: Option<Frontier>,
    /// Told how many URLs wait in the queues.
    pub progress: Option<Arc<dyn Progress>>,
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
    fn without_request(seq: u64, page_url: String, kind: ErrorKind, detail: String) -> Self {
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

/// A request that finished, as the scheduler needs to hear of it.
// Nearly every value is a page; boxing it would add an allocation per page
// to save space only on the rare robots.txt result.
#[allow(clippy::large_enum_variant)]
enum Finished {
    Page {
        host: String,
        /// For the row of a task that panicked.
        page_url: String,
        seq: u64,
        depth: Option<u16>,
        joined: Result<Completed, tokio::task::JoinError>,
    },
    Robots(String, Rules),
    /// A sitemap was read (or the `Sitemap:` lines of a robots.txt, when
    /// `from_robots`); its page URLs must be on `host`.
    Sitemap {
        url: Url,
        host: String,
        from_robots: bool,
        outcome: Result<Sitemap, String>,
    },
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

/// The crawl's bookkeeping in the scheduler.
struct CrawlState {
    crawl: Arc<Crawl>,
    duplicates: Arc<AtomicU64>,
    guard: Option<Arc<Guard>>,
    hasher: RandomState,
    /// Every normalised URL queued or fetched in this run.
    seen: HashSet64,
    /// Pages fetched or being fetched whose links may still come back, by
    /// depth: what strict breadth-first order waits for.
    in_system: Vec<u64>,
    /// Pages handed to the parse stage whose links have not come back.
    awaiting: u64,
    /// Fetches started, for `--max-pages`.
    fetched: u64,
    /// Sitemaps asked for, so that each is read once.
    sitemaps_seen: std::collections::HashSet<String>,
    /// Sitemap jobs running.
    sitemaps_pending: usize,
    /// Hosts whose robots.txt was asked for its sitemaps.
    sitemap_hosts: std::collections::HashSet<String>,
    /// Hosts whose robots.txt is being read for its rules, and whose
    /// `Sitemap:` lines are wanted too (`--sitemap auto` with robots.txt
    /// obeyed): each is one of `sitemaps_pending`. Value: the robots.txt.
    sitemaps_with_rules: HashMap<String, Url>,
    /// Discovered URLs past `max_frontier`, on disk.
    spill: Spill,
    max_frontier: usize,
    /// The disk failed once: the frontier stays in memory from then on.
    spill_failed: bool,
    next_seq: u64,
    tally: Crawled,
}

impl CrawlState {
    /// Marks `url` seen; false when it already was.
    fn first_sight(&mut self, url: &Url) -> bool {
        self.seen.insert(self.hasher.hash_one(url.as_str()))
    }

    fn limit_reached(&self) -> bool {
        self.crawl.max_pages.is_some_and(|max| self.fetched >= max)
    }

    /// The deepest queue pages may be taken from now. With `--max-pages`,
    /// only the lowest depth queued, and only once no page two or more
    /// levels up is still being fetched or parsed (it could add URLs
    /// nearer the seeds than that depth); `None` when nothing may start.
    fn depth_cap(&self, queues: &Queues, input_open: bool) -> Option<u16> {
        if self.crawl.max_pages.is_none() {
            return Some(u16::MAX);
        }
        // Seeds may still come (from the input, or sitemaps being read):
        // nothing deeper than them yet.
        if input_open || self.sitemaps_pending > 0 {
            return queues.lowest_depth().filter(|d| *d == 0);
        }
        let lowest = match (queues.lowest_depth(), self.spill.lowest_depth()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let upstream = usize::from(lowest)
            .saturating_sub(1)
            .min(self.in_system.len());
        self.in_system[..upstream]
            .iter()
            .all(|&n| n == 0)
            .then_some(lowest)
    }

    fn dispatched(&mut self, depth: u16) {
        self.fetched += 1;
        let d = usize::from(depth);
        if self.in_system.len() <= d {
            self.in_system.resize(d + 1, 0);
        }
        self.in_system[d] += 1;
    }

    /// A page's result goes to the parse stage; its links will follow or
    /// not.
    fn handed_on(&mut self, depth: u16, yields_links: bool) {
        if yields_links {
            self.awaiting += 1;
        } else {
            self.in_system[usize::from(depth)] -= 1;
        }
    }

    /// A page's links came back: queue those not seen yet (or count them
    /// as left, once nothing more is fetched).
    fn links_back(&mut self, found: Discovered, queues: &mut Queues, closed: bool, now: Instant) {
        self.awaiting -= 1;
        self.in_system[usize::from(found.page_depth)] -= 1;
        self.tally.off_scope += found.off_scope;
        let depth = found.page_depth + 1;
        let closed = closed || self.limit_reached();
        for url in found.urls {
            if !self.first_sight(&url) {
                continue;
            }
            self.tally.discovered += 1;
            if closed {
                self.tally.left += 1;
                continue;
            }
            let origin = Origin {
                depth,
                seed: Arc::clone(&found.seed),
                referrer: Some(Arc::clone(&found.referrer)),
            };
            self.enqueue_found(queues, url, origin, now);
        }
    }

    /// `--max-pages` was reached: what is queued will not be fetched.
    /// Listed URLs get a row saying so; the others are counted.
    fn close(&mut self, queues: &mut Queues, rows: &mut Vec<Completed>) {
        self.tally.left += self.spill.clear();
        for q in queues.take_all() {
            if q.from_input {
                rows.push(self.over_limit(q.seq, q.url.into()));
            } else {
                self.tally.left += 1;
            }
        }
    }

    /// Queues a URL found by the crawl (a link, a sitemap entry): in
    /// memory while there is room and none of its depth waits on disk,
    /// else on disk, behind those.
    fn enqueue_found(&mut self, queues: &mut Queues, url: Url, origin: Origin, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let in_memory = queues.queued - queues.from_input;
        if !self.spill_failed && (in_memory >= self.max_frontier || self.spill.holds(origin.depth))
        {
            match self.spill.push(url.as_str(), seq, &origin) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        "cannot keep the crawl's queue on disk ({e}); keeping it in memory"
                    );
                    self.spill_failed = true;
                }
            }
        }
        queues.enqueue(url, seq, Some(origin), false, now);
    }

    /// Brings URLs back from disk, oldest of the lowest depth first: a
    /// chunk when memory has room for it, or whenever that depth is lower
    /// than any in memory (breadth-first order needs them next).
    fn refill(&mut self, queues: &mut Queues, now: Instant) {
        let Some(depth) = self.spill.lowest_depth() else {
            return;
        };
        let chunk = (self.max_frontier / 10).max(1);
        let room = self
            .max_frontier
            .saturating_sub(queues.queued - queues.from_input);
        let needed = queues.lowest_depth().is_none_or(|lowest| depth < lowest);
        if room < chunk && !needed {
            return;
        }
        match self.spill.take(depth, chunk) {
            Ok(entries) => {
                for e in entries {
                    queues.enqueue(e.url, e.seq, Some(e.origin), false, now);
                }
            }
            Err(e) => {
                let lost = self.spill.clear();
                tracing::error!(
                    "cannot read the crawl's queue back from disk ({e}): {lost} discovered URLs are lost"
                );
                self.tally.left += lost;
                self.spill_failed = true;
            }
        }
    }

    /// Reads the sitemaps named by a host's robots.txt (one of
    /// `sitemaps_pending` until they are known). A robots.txt read for its
    /// rules is not read again: its `Sitemap:` lines come with them.
    fn robots_sitemaps(
        &mut self,
        queues: &Queues,
        host: String,
        robots_url: Url,
        fetcher: &Fetcher,
        running: &mut FuturesUnordered<BoxFuture<'static, Finished>>,
    ) {
        match queues.rules_ahead(&host) {
            RulesAhead::Coming => {
                self.sitemaps_with_rules.insert(host, robots_url);
            }
            // Unchecked: refused by the guard when a link led there; the
            // host is listed, so trusted, now.
            RulesAhead::NotAsked | RulesAhead::Known(Rules::Unchecked) => {
                running.push(sitemap_job(fetcher, robots_url, true));
            }
            RulesAhead::Known(rules) => {
                self.sitemaps_pending -= 1;
                self.sitemaps_in_robots(rules, &robots_url, &host, fetcher, running);
            }
        }
    }

    /// Reads the sitemaps a robots.txt names.
    fn sitemaps_in_robots(
        &mut self,
        rules: &Rules,
        robots_url: &Url,
        host: &str,
        fetcher: &Fetcher,
        running: &mut FuturesUnordered<BoxFuture<'static, Finished>>,
    ) {
        for url in sitemap::named_in_robots(robots_url, rules.sitemaps()) {
            if self.wants_sitemap(&url) {
                self.sitemaps_pending += 1;
                running.push(sitemap_job_for(fetcher, url, host.to_owned(), false));
            }
        }
    }

    /// Whether to read the sitemap at `url`: once each, and no more than
    /// [`sitemap::MAX_SITEMAPS`] in all.
    fn wants_sitemap(&mut self, url: &Url) -> bool {
        if self.sitemaps_seen.len() >= sitemap::MAX_SITEMAPS {
            tracing::warn!(
                "sitemap {}: not read: {} sitemaps already read in this run",
                crate::output::without_password(url.as_str()),
                sitemap::MAX_SITEMAPS
            );
            return false;
        }
        self.sitemaps_seen
            .insert(self.crawl.normalize(url).as_str().to_owned())
    }

    /// Queues the page URLs of a sitemap as seeds: those on `host` (the
    /// protocol's rule: a sitemap lists its own host's pages) not seen
    /// yet.
    fn sitemap_pages(
        &mut self,
        urls: Vec<Url>,
        sitemap: &Url,
        host: &str,
        queues: &mut Queues,
        now: Instant,
    ) {
        let closed = self.limit_reached();
        let listed_in: Arc<str> = Arc::from(sitemap.as_str());
        for url in urls {
            let url = self.crawl.normalize(&url);
            if host_key(&url) != host {
                self.tally.off_scope += 1;
                continue;
            }
            if !self.first_sight(&url) {
                continue;
            }
            self.tally.sitemap_urls += 1;
            if closed {
                self.tally.left += 1;
                continue;
            }
            // A seed, whose referrer is the sitemap that listed it.
            let origin = Origin {
                referrer: Some(Arc::clone(&listed_in)),
                ..Origin::seed(&url)
            };
            self.enqueue_found(queues, url, origin, now);
        }
    }

    fn over_limit(&self, seq: u64, page_url: String) -> Completed {
        let max = self.crawl.max_pages.unwrap_or_default();
        let why = format!("not fetched: --max-pages {max} was reached");
        Completed::without_request(seq, page_url, ErrorKind::MaxPages, why)
    }
}

/// Fetches every URL from `lines` (and, crawling, every URL they lead to),
/// within the limits, and sends each result to `out` as it completes.
/// Invalid lines are passed on at once. Returns when the input is
/// exhausted and every request has finished, when `out` is closed, or when
/// the stop handle says so: on draining, nothing new starts and requests
/// in flight have the grace period to finish.
pub async fn run(
    setup: Setup,
    mut lines: mpsc::Receiver<InputLine>,
    out: mpsc::Sender<Completed>,
) -> (Ended, Crawled) {
    let Setup {
        fetcher,
        limits,
        stop,
        grace,
        frontier,
        progress,
    } = setup;
    let mut queues = Queues::new(limits.clone());
    let mut running: FuturesUnordered<BoxFuture<'static, Finished>> = FuturesUnordered::new();
    // Page requests among `running` (the rest are robots.txt fetches).
    let mut pages_running: u64 = 0;
    let mut input_open = true;
    // Rows for pages that get no request, waiting to be handed on.
    let mut refused = Vec::new();
    let mut grace_ends: Option<Instant> = None;
    let mut unfinished: u64 = 0;
    let (mut links, mut crawl) = match frontier {
        Some(f) => (
            Some(f.links),
            Some(CrawlState {
                crawl: f.crawl,
                duplicates: f.duplicates,
                guard: f.guard,
                hasher: RandomState::new(),
                seen: HashSet64::default(),
                in_system: Vec::new(),
                awaiting: 0,
                fetched: 0,
                sitemaps_seen: Default::default(),
                sitemaps_pending: 0,
                sitemap_hosts: Default::default(),
                sitemaps_with_rules: HashMap::new(),
                spill: Spill::default(),
                max_frontier: limits.max_frontier,
                spill_failed: false,
                next_seq: FIRST_FOUND_SEQ,
                tally: Crawled::default(),
            }),
        ),
        None => (None, None),
    };
    if let Some(c) = crawl.as_mut() {
        for url in c.crawl.sitemaps.clone() {
            if let (Some(guard), Some(host)) = (&c.guard, url.host_str()) {
                // Named by the user, like a listed URL.
                guard.trust(host);
            }
            if c.wants_sitemap(&url) {
                c.sitemaps_pending += 1;
                running.push(sitemap_job(&fetcher, url, false));
            }
        }
    }
    let mut shown_queued = u64::MAX;
    let tally = |crawl: &Option<CrawlState>| {
        crawl.as_ref().map_or_else(Crawled::default, |c| Crawled {
            spilled: c.spill.total(),
            ..c.tally
        })
    };
    loop {
        let now = Instant::now();
        if grace_ends.is_none() && stop.level() >= Level::Draining {
            grace_ends = Some(now + grace);
            unfinished += queues.take_all().len() as u64;
            if let Some(c) = crawl.as_mut() {
                unfinished += c.spill.clear();
            }
            if input_open {
                // Lines already read count as unfinished; the reader sees
                // the channel closed at its next line and stops reading.
                lines.close();
                while lines.try_recv().is_ok() {
                    unfinished += 1;
                }
                input_open = false;
            }
        }
        if stop.level() == Level::Now || grace_ends.is_some_and(|end| now >= end) {
            // Dropping `running` aborts the requests still in flight.
            let ended = Ended::Stopped {
                unfinished: unfinished + pages_running,
            };
            return (ended, tally(&crawl));
        }
        queues.wake(now);
        if let Some(c) = crawl.as_mut()
            && !c.limit_reached()
        {
            c.refill(&mut queues, now);
        }
        loop {
            let cap = match &crawl {
                Some(c) if c.limit_reached() => break,
                Some(c) => match c.depth_cap(&queues, input_open) {
                    Some(cap) => cap,
                    None => break,
                },
                None => u16::MAX,
            };
            let Some(job) = queues.next_job(now, cap) else {
                break;
            };
            let fetcher = fetcher.clone();
            match job {
                Job::Fetch {
                    host,
                    url,
                    seq,
                    origin,
                } => {
                    let depth = origin.as_ref().map(|o| o.depth);
                    if let (Some(c), Some(depth)) = (crawl.as_mut(), depth) {
                        c.dispatched(depth);
                    }
                    // A link's redirects stay in scope; seeds and sitemap
                    // entries (depth 0) are the user's and the site's word.
                    let rule = match (&crawl, &origin) {
                        (Some(c), Some(o)) if o.depth > 0 => {
                            let (crawl, seed) = (c.crawl.clone(), o.seed.clone());
                            let rule: HopRule = Arc::new(move |hop| crawl.in_scope(&seed, hop));
                            Some(rule)
                        }
                        _ => None,
                    };
                    let listed = url.as_str().to_owned();
                    // Spawned, so that a request keeps making progress
                    // while this loop waits to hand a result on.
                    let task = AbortOnDrop(tokio::spawn(async move {
                        let started = Instant::now();
                        let fetch = match rule {
                            Some(rule) => fetcher.fetch_within(&url, rule).await,
                            None => fetcher.fetch(&url).await,
                        };
                        Completed {
                            seq,
                            page_url: url.into(),
                            fetch,
                            elapsed: started.elapsed(),
                            origin,
                        }
                    }));
                    pages_running += 1;
                    running.push(Box::pin(async move {
                        let joined = task.await;
                        Finished::Page {
                            host,
                            page_url: listed,
                            seq,
                            depth,
                            joined,
                        }
                    }));
                }
                Job::Robots(host, page) => {
                    let agent = limits.robots_agent.clone().unwrap_or_default();
                    let task = AbortOnDrop(tokio::spawn(async move {
                        robots::fetch_rules(&fetcher, &page, &agent).await
                    }));
                    running.push(Box::pin(async move {
                        let rules = task.await.unwrap_or_else(|e| {
                            Rules::DisallowAll(format!("robots.txt: internal error: {e}"))
                        });
                        Finished::Robots(host, rules)
                    }));
                }
                Job::Refuse(url, why, seq, origin) => {
                    let mut row = Completed::without_request(
                        seq,
                        url.into(),
                        ErrorKind::RobotsDisallowed,
                        why,
                    );
                    row.origin = origin;
                    refused.push(row);
                }
            }
        }
        if let Some(c) = crawl.as_mut()
            && c.limit_reached()
            && !(queues.is_empty() && c.spill.is_empty())
        {
            c.close(&mut queues, &mut refused);
        }
        let on_disk = crawl.as_ref().map_or(0, |c| c.spill.len());
        if let Some(progress) = &progress
            && queues.queued as u64 + on_disk != shown_queued
        {
            shown_queued = queues.queued as u64 + on_disk;
            progress.queued(shown_queued);
        }
        for done in refused.drain(..) {
            if out.send(done).await.is_err() {
                return (Ended::OutputClosed, tally(&crawl));
            }
        }
        let awaiting = crawl.as_ref().map_or(0, |c| c.awaiting);
        if !input_open && queues.is_empty() && on_disk == 0 && running.is_empty() && awaiting == 0 {
            let ended = match grace_ends {
                None => Ended::Complete,
                Some(_) => Ended::Stopped { unfinished },
            };
            return (ended, tally(&crawl));
        }
        let accepting = input_open && queues.from_input < limits.max_queued;
        // A far-off deadline stands in for "no host is waiting on a delay".
        let wake_at = grace_ends
            .or_else(|| queues.next_wake())
            .unwrap_or_else(|| now + Duration::from_secs(3600));
        let next_level = match grace_ends {
            None => Level::Draining,
            Some(_) => Level::Now,
        };
        let next_links = async {
            match links.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(finished) = running.next(), if !running.is_empty() => match finished {
                Finished::Robots(host, rules) => {
                    queues.robots_known(&host, rules, Instant::now());
                    if let Some(c) = crawl.as_mut()
                        && let Some(robots_url) = c.sitemaps_with_rules.remove(&host)
                    {
                        c.robots_sitemaps(&queues, host, robots_url, &fetcher, &mut running);
                    }
                }
                Finished::Sitemap { url, host, from_robots, outcome } => {
                    let Some(c) = crawl.as_mut() else { continue };
                    c.sitemaps_pending -= 1;
                    match outcome {
                        Err(why) => {
                            tracing::warn!(
                                "sitemap {}: {why}",
                                crate::output::without_password(url.as_str())
                            );
                            c.tally.sitemaps_failed += 1;
                        }
                        Ok(Sitemap::Index(listed)) => {
                            c.tally.sitemaps += u64::from(!from_robots);
                            for next in listed {
                                if c.wants_sitemap(&next) {
                                    c.sitemaps_pending += 1;
                                    running.push(sitemap_job_for(&fetcher, next, host.clone(), false));
                                }
                            }
                        }
                        Ok(Sitemap::Pages(urls)) => {
                            c.tally.sitemaps += 1;
                            if grace_ends.is_none() {
                                c.sitemap_pages(urls, &url, &host, &mut queues, Instant::now());
                            }
                        }
                    }
                }
                Finished::Page { host, page_url, seq, depth, joined } => {
                    pages_running -= 1;
                    queues.finished(&host, Instant::now());
                    let done = joined.unwrap_or_else(|e| {
                        Completed::without_request(seq, page_url, ErrorKind::Io, format!("internal error: {e}"))
                    });
                    if let (Some(c), Some(depth)) = (crawl.as_mut(), depth) {
                        // Where a redirect landed is fetched: a URL found
                        // later that leads there is a duplicate.
                        if let Ok(fetched) = &done.fetch
                            && c.crawl.discovers()
                            && fetched.final_url.as_str() != done.page_url
                        {
                            let landed = c.crawl.normalize(&fetched.final_url);
                            c.first_sight(&landed);
                        }
                        let yields = done.yields_links(&c.crawl);
                        c.handed_on(depth, yields);
                    }
                    if out.send(done).await.is_err() {
                        return (Ended::OutputClosed, tally(&crawl));
                    }
                }
            },
            found = next_links => match (found, crawl.as_mut()) {
                (Some(found), Some(c)) => c.links_back(found, &mut queues, grace_ends.is_some(), Instant::now()),
                // The parse stage is gone: the output closed under it.
                _ => return (Ended::OutputClosed, tally(&crawl)),
            },
            line = lines.recv(), if accepting => match line {
                None => input_open = false,
                Some(InputLine { url: Ok(url), seq, raw }) => match crawl.as_mut() {
                    None => queues.push(url, seq, None, Instant::now()),
                    Some(c) if c.limit_reached() => {
                        let url = c.crawl.normalize(&url);
                        if c.first_sight(&url) {
                            refused.push(c.over_limit(seq, url.into()));
                        } else {
                            // Fetched already (from a sitemap, a link, an
                            // earlier line): its row is written; a second,
                            // max_pages row would contradict it.
                            tracing::debug!(
                                "{}: already seen; skipped",
                                crate::output::without_password(&raw)
                            );
                            c.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(c) => {
                        let url = c.crawl.normalize(&url);
                        let host = host_key(&url);
                        // Listed by the user: its host may be private.
                        if let (Some(guard), Some(name)) = (&c.guard, url.host_str()) {
                            guard.trust(name);
                            queues.recheck_robots(&host);
                        }
                        if c.first_sight(&url) {
                            queues.push(url.clone(), seq, Some(Origin::seed(&url)), Instant::now());
                        } else {
                            // Found on a page already, or another spelling
                            // of an earlier line.
                            tracing::debug!(
                                "{}: already seen; skipped",
                                crate::output::without_password(&raw)
                            );
                            c.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        if c.crawl.sitemap_auto && c.sitemap_hosts.insert(host.clone()) {
                            c.sitemaps_pending += 1;
                            let robots_url = robots::robots_url(&url);
                            c.robots_sitemaps(&queues, host, robots_url, &fetcher, &mut running);
                        }
                    }
                },
                Some(InputLine { raw, url: Err(why), seq }) => {
                    let done = Completed::without_request(seq, raw, ErrorKind::InvalidUrl, why);
                    if out.send(done).await.is_err() {
                        return (Ended::OutputClosed, tally(&crawl));
                    }
                }
            },
            () = tokio::time::sleep_until(wake_at.into()) => {}
            () = stop.reached(next_level) => {}
        }
    }
}

/// Reads the sitemap at `url` (with `from_robots`, the sitemaps the
/// robots.txt of `url`'s host names), whose pages must be on its host.
fn sitemap_job(fetcher: &Fetcher, url: Url, from_robots: bool) -> BoxFuture<'static, Finished> {
    let host = host_key(&url);
    sitemap_job_for(fetcher, url, host, from_robots)
}

/// Like [`sitemap_job`], for pages on `host`: a sitemap named by an index
/// or a robots.txt lists the pages of the host that named it.
fn sitemap_job_for(
    fetcher: &Fetcher,
    url: Url,
    host: String,
    from_robots: bool,
) -> BoxFuture<'static, Finished> {
    let fetcher = fetcher.clone();
    let target = url.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        if from_robots {
            // Sitemap lines belong to no user-agent group.
            sitemap::from_robots(&fetcher, &target, "*").await
        } else {
            sitemap::fetch(&fetcher, &target).await
        }
    }));
    Box::pin(async move {
        let outcome = task
            .await
            .unwrap_or_else(|e| Err(format!("internal error: {e}")));
        Finished::Sitemap {
            url,
            host,
            from_robots,
            outcome,
        }
    })
}

/// What the scheduler wants done next.
#[derive(Debug)]
enum Job {
    /// Fetch this page of this host.
    Fetch {
        host: String,
        url: Url,
        seq: u64,
        origin: Option<Origin>,
    },
    /// Fetch this host's robots.txt (the URL is any page of the host).
    Robots(String, Url),
    /// Report this page as refused by robots.txt, without a request.
    Refuse(Url, String, u64, Option<Origin>),
}

/// The per-host queues and the bookkeeping that decides the next request.
struct Queues {
    limits: Limits,
    hosts: HashMap<String, Host>,
    /// By depth: hosts with URLs of that depth that may start a request
    /// now, in turn order.
    ready: BTreeMap<u16, VecDeque<String>>,
    /// Hosts with work that wait for their delay to pass, soonest first.
    waiting: BinaryHeap<Reverse<(Instant, String)>>,
    /// URLs in all queues.
    queued: usize,
    /// Of those, URLs read from the input (what `max_queued` bounds).
    from_input: usize,
    /// URLs queued at each depth.
    queued_at: BTreeMap<u16, usize>,
    /// Requests in flight in all.
    in_flight: usize,
}

struct Host {
    /// Queued URLs by depth.
    levels: BTreeMap<u16, DepthQueue>,
    in_flight: usize,
    /// Least time between request starts: --delay, or a larger Crawl-delay.
    delay: Duration,
    /// The earliest start of this host's next request.
    not_before: Option<Instant>,
    /// Listed in `waiting`, so that it is listed once.
    delayed: bool,
    robots: RobotsState,
}

/// One host's URLs at one depth.
#[derive(Default)]
struct DepthQueue {
    queue: VecDeque<Queued>,
    /// Listed in `ready` at this depth, so that it is listed once.
    listed: bool,
}

/// What is known of a host's robots.txt rules, or will be.
enum RulesAhead<'a> {
    Known(&'a Rules),
    /// Being fetched, or will be before the host's next page.
    Coming,
    /// Not wanted (robots.txt not obeyed), or nothing of the host queued.
    NotAsked,
}

enum RobotsState {
    /// Not asked yet: the host's first job is its robots.txt.
    Unknown,
    /// Being fetched; the host's URLs wait. `recheck`: the host became
    /// trusted meanwhile, so a refusal by the guard is to be asked again.
    Fetching { recheck: bool },
    /// Known (or not wanted: `AllowAll`).
    Known(Rules),
}

/// A queued URL, kept as its serialization: half a parsed `Url`'s
/// footprint, which matters when `max_queued` URLs wait behind one host.
struct Queued {
    url: Box<str>,
    seq: u64,
    origin: Option<Origin>,
    from_input: bool,
}

impl Queued {
    fn url(&self) -> Url {
        // The text is the serialization of a parsed http(s) URL, and the
        // URL standard guarantees that parsing such a serialization gives
        // back the same URL.
        Url::parse(&self.url).expect("a serialized URL parses")
    }
}

/// A URL's host for politeness: its authority.
fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

impl Queues {
    fn new(limits: Limits) -> Self {
        Queues {
            limits,
            hosts: HashMap::new(),
            ready: BTreeMap::new(),
            waiting: BinaryHeap::new(),
            queued: 0,
            from_input: 0,
            queued_at: BTreeMap::new(),
            in_flight: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// The lowest depth with a queued URL.
    fn lowest_depth(&self) -> Option<u16> {
        self.queued_at.keys().next().copied()
    }

    /// Empties every queue (hosts and their in-flight counts stay) and
    /// returns what was queued.
    fn take_all(&mut self) -> Vec<Queued> {
        let mut all = Vec::with_capacity(self.queued);
        for host in self.hosts.values_mut() {
            for (_, level) in std::mem::take(&mut host.levels) {
                all.extend(level.queue);
            }
            host.delayed = false;
        }
        self.ready.clear();
        self.waiting.clear();
        self.queued_at.clear();
        self.queued = 0;
        self.from_input = 0;
        all
    }

    /// Queues a URL: from the input when it has no origin or is a seed.
    fn push(&mut self, url: Url, seq: u64, origin: Option<Origin>, now: Instant) {
        let from_input = origin.as_ref().is_none_or(|o| o.referrer.is_none());
        if from_input {
            self.from_input += 1;
        }
        self.enqueue(url, seq, origin, from_input, now);
    }

    fn enqueue(
        &mut self,
        url: Url,
        seq: u64,
        origin: Option<Origin>,
        from_input: bool,
        now: Instant,
    ) {
        let key = host_key(&url);
        let depth = origin.as_ref().map_or(0, |o| o.depth);
        let limits = &self.limits;
        let host = self.hosts.entry(key.clone()).or_insert_with(|| Host {
            levels: BTreeMap::new(),
            in_flight: 0,
            delay: limits.delay,
            not_before: None,
            delayed: false,
            robots: match limits.robots_agent {
                Some(_) => RobotsState::Unknown,
                None => RobotsState::Known(Rules::AllowAll),
            },
        });
        host.levels
            .entry(depth)
            .or_default()
            .queue
            .push_back(Queued {
                url: String::from(url).into_boxed_str(),
                seq,
                origin,
                from_input,
            });
        self.queued += 1;
        *self.queued_at.entry(depth).or_default() += 1;
        self.list(key, now);
    }

    /// Lists a host as ready at each depth it has work at, or as waiting,
    /// if it may start a request at all.
    fn list(&mut self, key: String, now: Instant) {
        let Some(host) = self.hosts.get_mut(&key) else {
            return;
        };
        if host.levels.is_empty()
            || host.in_flight >= self.limits.per_host
            || matches!(host.robots, RobotsState::Fetching { .. })
        {
            return;
        }
        if let Some(t) = host.not_before
            && t > now
        {
            if !host.delayed {
                host.delayed = true;
                self.waiting.push(Reverse((t, key)));
            }
            return;
        }
        for (depth, level) in &mut host.levels {
            if !level.listed {
                level.listed = true;
                self.ready.entry(*depth).or_default().push_back(key.clone());
            }
        }
    }

    /// Moves hosts whose delay has passed to the ready lists.
    fn wake(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.waiting.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, key))) = self.waiting.pop() else {
                break;
            };
            if let Some(host) = self.hosts.get_mut(&key) {
                host.delayed = false;
            }
            self.list(key, now);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse((t, _))| *t)
    }

    /// The next job, from the lowest depth (up to `max_depth`) with a
    /// ready host, taking hosts in turn; `None` when all slots are taken
    /// or no host may start one now.
    fn next_job(&mut self, now: Instant, max_depth: u16) -> Option<Job> {
        if self.in_flight >= self.limits.concurrency {
            return None;
        }
        loop {
            let mut lowest = self.ready.first_entry()?;
            let depth = *lowest.key();
            if depth > max_depth {
                return None;
            }
            let Some(key) = lowest.get_mut().pop_front() else {
                lowest.remove();
                continue;
            };
            if lowest.get().is_empty() {
                lowest.remove();
            }
            let Some(host) = self.hosts.get_mut(&key) else {
                continue;
            };
            let Some(level) = host.levels.get_mut(&depth) else {
                continue;
            };
            level.listed = false;
            if host.in_flight >= self.limits.per_host {
                continue;
            }
            if host.not_before.is_some_and(|t| t > now) {
                self.list(key, now);
                continue;
            }
            let rules = match &host.robots {
                RobotsState::Unknown => {
                    let Some(page) = level.queue.front().map(Queued::url) else {
                        continue;
                    };
                    host.robots = RobotsState::Fetching { recheck: false };
                    host.in_flight += 1;
                    self.in_flight += 1;
                    return Some(Job::Robots(key, page));
                }
                RobotsState::Fetching { .. } => continue,
                RobotsState::Known(rules) => rules,
            };
            let Some(q) = level.queue.pop_front() else {
                continue;
            };
            if level.queue.is_empty() {
                host.levels.remove(&depth);
            }
            self.queued -= 1;
            if q.from_input {
                self.from_input -= 1;
            }
            if let Some(n) = self.queued_at.get_mut(&depth) {
                *n -= 1;
                if *n == 0 {
                    self.queued_at.remove(&depth);
                }
            }
            let url = q.url();
            if let Some(why) = rules.refusal(&url) {
                self.list(key, now);
                return Some(Job::Refuse(url, why, q.seq, q.origin));
            }
            host.in_flight += 1;
            if !host.delay.is_zero() {
                host.not_before = Some(now + host.delay);
            }
            self.in_flight += 1;
            // To the back of the turn order, if it has more to do.
            self.list(key.clone(), now);
            return Some(Job::Fetch {
                host: key,
                url,
                seq: q.seq,
                origin: q.origin,
            });
        }
    }

    fn robots_known(&mut self, key: &str, rules: Rules, now: Instant) {
        self.in_flight -= 1;
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        if let Some(crawl_delay) = rules.crawl_delay() {
            host.delay = host.delay.max(crawl_delay);
        }
        host.robots = match (rules, &host.robots) {
            (Rules::Unchecked, RobotsState::Fetching { recheck: true }) => RobotsState::Unknown,
            (rules, _) => RobotsState::Known(rules),
        };
        self.list(key.to_owned(), now);
    }

    /// The robots.txt rules of a host, known or coming.
    fn rules_ahead(&self, key: &str) -> RulesAhead<'_> {
        if self.limits.robots_agent.is_none() {
            return RulesAhead::NotAsked;
        }
        match self
            .hosts
            .get(key)
            .map(|h| (&h.robots, h.levels.is_empty()))
        {
            Some((RobotsState::Known(rules), _)) => RulesAhead::Known(rules),
            Some((RobotsState::Fetching { .. }, _)) | Some((RobotsState::Unknown, false)) => {
                RulesAhead::Coming
            }
            _ => RulesAhead::NotAsked,
        }
    }

    /// A host became trusted: robots.txt it was not allowed to ask for is
    /// asked for before its next page.
    fn recheck_robots(&mut self, key: &str) {
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        match &mut host.robots {
            RobotsState::Known(Rules::Unchecked) => host.robots = RobotsState::Unknown,
            RobotsState::Fetching { recheck } => *recheck = true,
            _ => {}
        }
    }

    fn finished(&mut self, key: &str, now: Instant) {
        self.in_flight -= 1;
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        let idle = host.in_flight == 0 && host.levels.is_empty();
        // Forget idle hosts, so that memory follows the hosts in play, not
        // every host the list ever named; but keep robots.txt rules, which
        // are fetched once per host for the run.
        let forgettable =
            self.limits.robots_agent.is_none() && host.not_before.is_none_or(|t| t <= now);
        if idle && forgettable {
            self.hosts.remove(key);
        } else {
            self.list(key.to_owned(), now);
        }
    }
}

/// Aborts the task when dropped, so that no request outlives the run.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: usize, per_host: usize, delay_ms: u64) -> Limits {
        Limits {
            concurrency,
            per_host,
            delay: Duration::from_millis(delay_ms),
            max_queued: 1000,
            robots_agent: None,
            max_frontier: 1000,
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// The next job, which must be a page fetch.
    fn fetch(q: &mut Queues, now: Instant) -> Option<(String, Url)> {
        q.next_job(now, u16::MAX).map(|job| match job {
            Job::Fetch { host, url, .. } => (host, url),
            other => panic!("expected a fetch, got {other:?}"),
        })
    }

    #[test]
    fn hosts_take_turns_and_a_full_host_does_not_block_others() {
        let now = Instant::now();
        let mut q = Queues::new(limits(4, 2, 0));
        for i in 0..10 {
            q.push(url(&format!("http://slow.test/{i}")), 0, None, now);
        }
        q.push(url("http://a.test/1"), 0, None, now);
        q.push(url("http://b.test:8080/1"), 0, None, now);
        let mut started = Vec::new();
        while let Some((host, _)) = fetch(&mut q, now) {
            started.push(host);
        }
        // Two for the slow host (its limit), then the others; -c caps at 4.
        assert_eq!(
            started,
            ["slow.test:80", "a.test:80", "b.test:8080", "slow.test:80"]
        );
        assert_eq!(fetch(&mut q, now), None);
        q.finished("a.test:80", now);
        assert_eq!(
            fetch(&mut q, now),
            None,
            "slow.test is at its per-host limit"
        );
        q.finished("slow.test:80", now);
        assert_eq!(
            fetch(&mut q, now).map(|(h, u)| (h, u.path().to_owned())),
            Some(("slow.test:80".into(), "/2".into()))
        );
    }

    #[test]
    fn robots_first_then_pages_or_refusals() {
        let now = Instant::now();
        let mut q = Queues::new(Limits {
            robots_agent: Some("bot".into()),
            ..limits(8, 8, 0)
        });
        q.push(url("http://a.test/private/1"), 0, None, now);
        q.push(url("http://a.test/ok"), 0, None, now);
        assert!(matches!(
            q.next_job(now, u16::MAX),
            Some(Job::Robots(host, page)) if host == "a.test:80" && page.path() == "/private/1"
        ));
        assert!(
            q.next_job(now, u16::MAX).is_none(),
            "pages wait for robots.txt"
        );
        let robot =
            texting_robots::Robot::new("bot", b"User-agent: *\nDisallow: /private\nCrawl-delay: 1")
                .unwrap();
        q.robots_known("a.test:80", Rules::Parsed(Box::new(robot)), now);
        assert!(
            matches!(q.next_job(now, u16::MAX), Some(Job::Refuse(u, ..)) if u.path() == "/private/1")
        );
        assert_eq!(
            fetch(&mut q, now).map(|(_, u)| u.path().to_owned()),
            Some("/ok".into())
        );
        q.push(url("http://a.test/later"), 0, None, now);
        assert!(
            q.next_job(now, u16::MAX).is_none(),
            "Crawl-delay holds the next request"
        );
        assert_eq!(q.next_wake(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn a_host_trusted_while_its_robots_txt_was_refused_is_asked_again() {
        let now = Instant::now();
        let mut q = Queues::new(Limits {
            robots_agent: Some("bot".into()),
            ..limits(8, 8, 0)
        });
        q.push(url("http://a.test/found"), 0, None, now);
        assert!(matches!(q.next_job(now, u16::MAX), Some(Job::Robots(..))));
        assert!(matches!(q.rules_ahead("a.test:80"), RulesAhead::Coming));
        // Listed while the guard was refusing the robots.txt request.
        q.push(url("http://a.test/listed"), 1, None, now);
        q.recheck_robots("a.test:80");
        q.robots_known("a.test:80", Rules::Unchecked, now);
        assert!(matches!(q.rules_ahead("a.test:80"), RulesAhead::Coming));
        assert!(matches!(q.next_job(now, u16::MAX), Some(Job::Robots(..))));
        q.robots_known("a.test:80", Rules::AllowAll, now);
        assert!(matches!(
            q.rules_ahead("a.test:80"),
            RulesAhead::Known(Rules::AllowAll)
        ));
    }

    #[test]
    fn delay_spaces_the_starts_of_one_host() {
        let now = Instant::now();
        let mut q = Queues::new(limits(8, 8, 500));
        q.push(url("http://a.test/1"), 0, None, now);
        q.push(url("http://a.test/2"), 0, None, now);
        q.push(url("http://b.test/1"), 0, None, now);
        assert_eq!(fetch(&mut q, now).unwrap().0, "a.test:80");
        assert_eq!(fetch(&mut q, now).unwrap().0, "b.test:80");
        assert_eq!(fetch(&mut q, now), None);
        assert_eq!(q.next_wake(), Some(now + Duration::from_millis(500)));
        let later = now + Duration::from_millis(500);
        q.wake(later);
        assert_eq!(
            fetch(&mut q, later).map(|(_, u)| u.path().to_owned()),
            Some("/2".into())
        );
    }

    fn at_depth(depth: u16) -> Option<Origin> {
        let seed = Origin::seed(&url("http://seed.test/"));
        Some(Origin {
            depth,
            referrer: (depth > 0).then(|| Arc::from("http://seed.test/")),
            ..seed
        })
    }

    #[test]
    fn lower_depths_first_and_hosts_take_turns_within_one() {
        let now = Instant::now();
        let mut q = Queues::new(limits(1, 1, 0));
        q.push(url("http://a.test/deep"), 0, at_depth(2), now);
        q.push(url("http://b.test/one"), 0, at_depth(1), now);
        q.push(url("http://a.test/one"), 0, at_depth(1), now);
        q.push(url("http://a.test/two"), 0, at_depth(1), now);
        assert_eq!(q.lowest_depth(), Some(1));
        let mut order = Vec::new();
        while let Some((host, u)) = fetch(&mut q, now) {
            order.push(u.path().to_owned());
            q.finished(&host, now);
        }
        assert_eq!(order, ["/one", "/one", "/two", "/deep"]);
        assert!(q.is_empty() && q.lowest_depth().is_none());

        // A cap keeps deeper queues waiting; a host busy at one depth is
        // not taken at another.
        let mut q = Queues::new(limits(4, 1, 0));
        q.push(url("http://a.test/x"), 0, at_depth(1), now);
        q.push(url("http://a.test/y"), 0, at_depth(2), now);
        q.push(url("http://b.test/z"), 0, at_depth(2), now);
        assert_eq!(q.next_job(now, 0).map(|_| ()), None);
        assert_eq!(fetch(&mut q, now).unwrap().1.path(), "/x");
        assert_eq!(fetch(&mut q, now).unwrap().1.path(), "/z");
        assert!(fetch(&mut q, now).is_none(), "a.test is at its limit");
        // Seeds count against the input bound; discovered URLs do not.
        q.push(url("http://c.test/"), 0, at_depth(0), now);
        assert_eq!((q.queued, q.from_input), (2, 1));
        assert_eq!(q.take_all().len(), 2);
        assert_eq!((q.queued, q.from_input), (0, 0));
    }
}
