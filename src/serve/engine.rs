//! The one fetch-and-parse engine every scan of the server shares.
//!
//! ```text
//!  scans ─► schedule::run (Served work) ─► router ─► parse (blocking pool) ─┬─► the scan's channel
//!           one -c, one --per-host            ≤ parsers pages at once       └─► scripts.rs (fetch_scripts)
//!           for every client together    ◄── links of crawling scans ──┘
//! ```
//!
//! Pages are parsed as the command line parses them (`pipeline::parse_one`),
//! so a scan's rows are the CLI's rows for the same URLs. A scan ends when
//! every URL it listed or its crawl queued has its page, and no page's
//! links are still on their way back: the table below counts both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, mpsc};

use super::scripts::{self, Hub};
use crate::config::Config;
use crate::crawl::netguard::Guard;
use crate::crawl::{Crawl, Discovered};
use crate::extract::Extractor;
use crate::fetch::Fetcher;
use crate::output::PageResult;
use crate::run::stop::Stop;
use crate::schedule::served::{
    Line, LinksTaken, NewScan, ScanCrawl, Scans, Served, scan_id, scan_of,
};
use crate::schedule::work::FetchLimits;
use crate::schedule::{self, Completed};

/// URLs of all scans together waiting in the host queues, per request
/// slot (`-c`): few, so that a new scan's first URL enters them soon
/// whatever is queued before it (the turns decide who is next, not the
/// queues), enough that a host at its `--per-host` limit seldom leaves a
/// slot idle.
const QUEUED_PER_SLOT: usize = 1;

/// Pages of a scan parsed and not yet taken by its client, beyond those
/// that may arrive at once (its pages held for their scripts, released
/// together when a script they share comes, and those being fetched):
/// past this the client is not reading (or far too slowly), and the scan
/// is cut, so that a stalled client holds neither memory nor the server's
/// `--max-pending`.
const SCAN_BUFFER: usize = 64;

/// What a scan asks for beyond its URLs (each within the server's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Its pages' fetch limits.
    pub limits: FetchLimits,
    /// Links followed from its URLs (0: none).
    pub depth: u16,
    /// Crawling: pages fetched in all; `None`: the server's `--max-urls`.
    pub max_pages: Option<u64>,
    /// What is behind each external script is fetched too.
    pub fetch_scripts: bool,
}

/// What a client's scan learns as it runs, beyond its pages.
#[derive(Debug, Default)]
pub struct Tally {
    /// Every URL it listed or queued reached the router.
    complete: AtomicBool,
    /// A page could not be handed to the client (it was not reading).
    cut: AtomicBool,
    /// URLs its crawl queued.
    queued: AtomicU64,
    /// Its crawl's counts.
    discovered: AtomicU64,
    off_scope: AtomicU64,
    left: AtomicU64,
}

/// A scan's crawl counts, for its summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crawled {
    /// URLs found that it had not seen.
    pub discovered: u64,
    /// Links out of scope or filtered out.
    pub off_scope: u64,
    /// Found but not fetched: past its `max_pages`, or the server stopped.
    pub left: u64,
    /// Found and queued.
    pub queued: u64,
}

/// Where a scan's pages go: its client's channel, and its tally (a page
/// that cannot be handed on marks the scan cut).
#[derive(Clone, Debug)]
pub(super) struct Dest {
    pages: mpsc::Sender<PageResult>,
    tally: Arc<Tally>,
    /// The client whose scan it is (see [`crate::schedule::served::Hold`]).
    pub(super) client: Arc<str>,
}

/// One running scan.
struct Route {
    /// Where its pages go.
    dest: Dest,
    limits: FetchLimits,
    crawl: Option<Arc<Crawl>>,
    fetch_scripts: bool,
    /// Of the server's `--max-pending`, what it still holds.
    reserved: usize,
    /// Results it will have: its URLs, and those its crawl queued.
    expected: u64,
    /// Results that reached the router.
    received: u64,
    /// Pages whose links are on their way back to its frontier.
    links_pending: u64,
}

impl Route {
    fn finished(&self) -> bool {
        self.received >= self.expected && self.links_pending == 0
    }
}

/// The running scans, and what they hold of `--max-pending`, all together.
#[derive(Default)]
pub(super) struct Table {
    scans: HashMap<u64, Route>,
    pending: usize,
    /// Told of each scan whose client went away or stopped reading: the
    /// scheduler gives up its queued URLs, the scripts stage lets go of
    /// its held pages.
    pub(super) cut: Vec<mpsc::UnboundedSender<u64>>,
}

impl Table {
    /// Removes scan `id` (if it runs), giving back what it held of
    /// `--max-pending`. Its channel closes once the pages on their way are
    /// delivered.
    fn remove(&mut self, id: u64) -> Option<Route> {
        let route = self.scans.remove(&id)?;
        self.pending = self.pending.saturating_sub(route.reserved);
        Some(route)
    }

    /// Cuts scan `id` short: its URLs not yet done are given up, and its
    /// pages waiting for scripts let go (also when every page came, and
    /// some wait for scripts).
    fn end(&mut self, id: u64) {
        self.remove(id);
        for cut in &self.cut {
            let _ = cut.send(id);
        }
    }

    /// Ends scan `id` as complete: every page reached the router (those
    /// waiting for scripts are delivered as they come).
    fn finish(&mut self, id: u64) {
        if let Some(route) = self.remove(id) {
            route.dest.tally.complete.store(true, Ordering::Relaxed);
        }
    }

    /// Whether scan `id` still runs.
    pub(super) fn runs(&self, id: u64) -> bool {
        self.scans.contains_key(&id)
    }
}

pub(super) type Routes = Arc<Mutex<Table>>;

pub(super) fn lock(routes: &Routes) -> std::sync::MutexGuard<'_, Table> {
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The table, as the scheduler asks it about scans.
struct Known(Routes);

impl Scans for Known {
    fn limits(&self, id: u64) -> Option<FetchLimits> {
        lock(&self.0).scans.get(&id).map(|r| r.limits)
    }

    fn links_taken(&self, id: u64, taken: LinksTaken) {
        let mut table = lock(&self.0);
        let Some(route) = table.scans.get_mut(&id) else {
            return;
        };
        route.expected += taken.queued;
        route.links_pending = route.links_pending.saturating_sub(1);
        let tally = &route.dest.tally;
        tally.queued.fetch_add(taken.queued, Ordering::Relaxed);
        tally
            .discovered
            .fetch_add(taken.discovered, Ordering::Relaxed);
        tally
            .off_scope
            .fetch_add(taken.off_scope, Ordering::Relaxed);
        tally.left.fetch_add(taken.left, Ordering::Relaxed);
        if route.finished() {
            table.finish(id);
        }
    }
}

/// The shared engine: hand it scans, read their pages as they complete.
pub struct Engine {
    scans: mpsc::Sender<NewScan>,
    routes: Routes,
    started: AtomicU64,
    max_pending: usize,
    /// Pages of a scan its client may leave unread.
    buffer: usize,
    /// Crawl settings of a scan, but its depth (`None`: scans do not
    /// crawl).
    crawl: Option<Crawl>,
    /// Scans may fetch their scripts (the config's `fetch_scripts`, as
    /// `Config::for_serve` sets it).
    fetch_scripts: bool,
}

/// Why a scan was not started.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Running scans have this many URLs to do, and one more scan this
    /// size would pass `--max-pending`.
    #[error("the server has {0} URLs of other scans to do first (--max-pending {1})")]
    Busy(usize, usize),
    /// The server is stopping.
    #[error("the server is stopping")]
    Stopping,
    /// The scan's options do not fit its URLs.
    #[error("{0}")]
    Unfit(String),
}

/// One scan's pages, as they complete. Dropping it (the client went
/// away) gives up its URLs not yet started.
pub struct Scan {
    /// Each page's result, once; closed when the scan ends, complete or
    /// cut.
    pub pages: mpsc::Receiver<PageResult>,
    /// Its lines that repeat an earlier one's URL, not fetched again.
    pub duplicates: u64,
    id: u64,
    routes: Routes,
    tally: Arc<Tally>,
}

impl Scan {
    /// Whether every page came: false when the scan was cut.
    pub fn complete(&self) -> bool {
        self.tally.complete.load(Ordering::Relaxed) && !self.tally.cut.load(Ordering::Relaxed)
    }

    /// Its crawl's counts so far.
    pub fn crawled(&self) -> Crawled {
        Crawled {
            discovered: self.tally.discovered.load(Ordering::Relaxed),
            off_scope: self.tally.off_scope.load(Ordering::Relaxed),
            left: self.tally.left.load(Ordering::Relaxed),
            queued: self.tally.queued.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        lock(&self.routes).end(self.id);
    }
}

impl Engine {
    /// Starts the engine on the current runtime with `config`'s limits;
    /// unless `allow_private`, every URL and redirect is held to the
    /// private-network rule (none is trusted: they are the clients').
    pub fn start(
        config: &Config,
        allow_private: bool,
        max_pending: usize,
        stop: Stop,
    ) -> anyhow::Result<Engine> {
        let guard = (!allow_private).then(|| {
            let guard = Guard::new();
            guard.trust_proxies(&config.fetch.proxies);
            guard
        });
        let fetcher = Fetcher::new(&config.fetch, guard)?;
        let limits = schedule::Limits {
            concurrency: config.concurrency.get(),
            per_host: config.per_host.get(),
            delay: config.delay,
            rate: config.rate,
            random_delay: config.random_delay,
            max_queued: (QUEUED_PER_SLOT * config.concurrency.get()).max(8),
            robots_agent: config
                .robots
                .then(|| crate::crawl::robots::agent_token(&config.fetch.user_agent).to_owned()),
            max_frontier: 0,
        };
        let routes = Routes::default();
        let scripts::Started { hub, link, holds } = scripts::start(
            Arc::clone(&routes),
            config.max_scripts_per_page,
            config.fetch_scripts.unwrap_or(0),
            config.concurrency.get(),
        );
        let setup = schedule::Setup {
            fetcher,
            limits,
            stop,
            grace: config.grace,
            crawl: None,
            progress: None,
            scripts: Some(link),
        };
        let (scans, arriving) = mpsc::channel(64);
        let (completed, done) = mpsc::channel(64);
        let (found, links) = mpsc::unbounded_channel();
        let (cut, cuts) = mpsc::unbounded_channel();
        lock(&routes).cut.push(cut);
        let known = Arc::new(Known(Arc::clone(&routes)));
        tokio::spawn(async move {
            let work = Served::new(arriving, links, holds, cuts, known);
            schedule::run(setup, work, completed).await;
        });
        let extractor = Extractor::new()
            .keep_inline_text(false)
            .detect_utf8(config.detect_utf8);
        let router = Router {
            routes: Arc::clone(&routes),
            plain: extractor,
            with_links: extractor.links(true),
            found,
            hub,
        };
        let parsers = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::spawn(router.run(done, parsers));
        Ok(Engine {
            scans,
            routes,
            started: AtomicU64::new(0),
            max_pending,
            // What may come at once: the pages it holds for scripts, and
            // those being fetched or parsed.
            buffer: SCAN_BUFFER + scripts::HELD_PER_CLIENT + config.concurrency.get() + parsers,
            crawl: config.crawl.clone(),
            fetch_scripts: config.fetch_scripts.is_some(),
        })
    }

    /// URLs of running scans not yet done.
    pub fn pending(&self) -> usize {
        lock(&self.routes).pending
    }

    /// Whether a scan may ask for its scripts' content.
    pub fn fetches_scripts(&self) -> bool {
        self.fetch_scripts
    }

    /// The deepest a scan may crawl (`--max-depth`).
    pub fn max_depth(&self) -> u16 {
        self.crawl.as_ref().map_or(0, |c| c.max_depth)
    }

    /// Starts a scan of `lines` (URLs as the client wrote them, each
    /// fetched once) with `options` (checked against the server's
    /// already), for `client` (scans take turns client by client). A
    /// crawling scan holds its `max_pages` of `--max-pending`; `max_urls`
    /// stands for its `max_pages` when it gives none.
    pub async fn scan(
        &self,
        lines: Vec<String>,
        options: ScanOptions,
        max_urls: u64,
        client: String,
    ) -> Result<Scan, Refused> {
        let crawl = match &self.crawl {
            Some(crawl) if options.depth > 0 => Some(ScanCrawl {
                crawl: Arc::new(Crawl {
                    max_depth: options.depth,
                    ..crawl.clone()
                }),
                max_pages: options.max_pages.unwrap_or(max_urls),
            }),
            _ => None,
        };
        let (lines, duplicates) = distinct(lines, crawl.as_ref().map(|c| &*c.crawl));
        let expected = lines.len();
        if let Some(c) = crawl.as_ref().filter(|c| c.max_pages < expected as u64) {
            return Err(Refused::Unfit(format!(
                "options.max_pages {} is less than the scan's {expected} distinct URLs: it \
                 bounds the pages of the whole crawl, listed ones included",
                c.max_pages
            )));
        }
        let reserved = match &crawl {
            // Within the usize range: it is at most --max-urls.
            Some(c) => usize::try_from(c.max_pages)
                .unwrap_or(usize::MAX)
                .max(expected),
            None => expected,
        };
        let id = scan_id(self.started.fetch_add(1, Ordering::Relaxed));
        let (tx, pages) = mpsc::channel(self.buffer);
        let tally = Arc::new(Tally::default());
        {
            let mut table = lock(&self.routes);
            if table.pending.saturating_add(reserved) > self.max_pending {
                return Err(Refused::Busy(table.pending, self.max_pending));
            }
            table.pending += reserved;
            let route = Route {
                dest: Dest {
                    pages: tx,
                    tally: Arc::clone(&tally),
                    client: Arc::from(client.as_str()),
                },
                limits: options.limits,
                crawl: crawl.as_ref().map(|c| Arc::clone(&c.crawl)),
                fetch_scripts: options.fetch_scripts,
                reserved,
                expected: expected as u64,
                received: 0,
                links_pending: 0,
            };
            table.scans.insert(id, route);
        }
        let scan = Scan {
            pages,
            duplicates,
            id,
            routes: Arc::clone(&self.routes),
            tally,
        };
        let new = NewScan {
            id,
            lines,
            client,
            crawl,
        };
        self.scans.send(new).await.map_err(|_| Refused::Stopping)?;
        Ok(scan)
    }
}

/// The scan's lines, each URL once (as the command line reads a list:
/// the same URL, or the same text that is none, is a duplicate; crawling,
/// URLs in their normal form), and how many repeated one before.
fn distinct(lines: Vec<String>, crawl: Option<&Crawl>) -> (Vec<Line>, u64) {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::with_capacity(lines.len());
    let mut duplicates = 0;
    for (at, raw) in (1..).zip(lines) {
        let url = crate::input::parse_url(raw.trim()).map(|url| match crawl {
            Some(crawl) => crawl.normalize(&url),
            None => url,
        });
        let key = match &url {
            Ok(url) => (true, url.as_str().to_owned()),
            Err(_) => (false, raw.clone()),
        };
        if seen.insert(key) {
            kept.push(Line { at, raw, url });
        } else {
            duplicates += 1;
        }
    }
    (kept, duplicates)
}

/// Hands each completed page to be parsed, then on to its scan (through
/// the scripts stage when the scan fetches scripts), and a crawling
/// scan's links back to its frontier.
struct Router {
    routes: Routes,
    plain: Extractor,
    /// For pages whose links are followed.
    with_links: Extractor,
    found: mpsc::UnboundedSender<(u64, Discovered)>,
    hub: Hub,
}

impl Router {
    async fn run(self, mut done: mpsc::Receiver<Completed>, parsers: usize) {
        let router = Arc::new(self);
        let parsing = Arc::new(Semaphore::new(parsers));
        while let Some(page) = done.recv().await {
            let (id, _) = scan_of(page.seq);
            let Some((to, crawl, fetch_scripts)) = router.received(id, &page) else {
                // Its scan is gone: dropped unparsed, but the scripts
                // stage's count of pages must hear of it.
                router.hub.passed();
                continue;
            };
            // The semaphore is never closed, so acquiring only waits.
            let Ok(permit) = Arc::clone(&parsing).acquire_owned().await else {
                return;
            };
            let router = Arc::clone(&router);
            tokio::task::spawn_blocking(move || {
                let extractor = match crawl {
                    Some(_) => &router.with_links,
                    None => &router.plain,
                };
                let (result, links, _) =
                    crate::pipeline::parse_one(page, extractor, crawl.as_deref(), false);
                drop(permit);
                if let Some(links) = links {
                    // Gone only with the scheduler, when the server stops.
                    let _ = router.found.send((id, links));
                }
                if fetch_scripts {
                    router.hub.page(id, result, to);
                } else {
                    router.hub.passed();
                    deliver(&router.routes, id, &to, result);
                }
            });
        }
    }

    /// Counts a page of scan `id` in: where it goes, the scan's crawl
    /// settings, and whether it waits for its scripts; `None` when the
    /// scan is gone.
    fn received(&self, id: u64, page: &Completed) -> Option<(Dest, Option<Arc<Crawl>>, bool)> {
        let mut table = lock(&self.routes);
        let route = table.scans.get_mut(&id)?;
        // One result per URL; saturating all the same, as a count off by
        // one must not take the server down.
        route.received += 1;
        let held = route.reserved > 0;
        route.reserved = route.reserved.saturating_sub(1);
        if route.crawl.as_ref().is_some_and(|c| page.yields_links(c)) {
            route.links_pending += 1;
        }
        let found = (route.dest.clone(), route.crawl.clone(), route.fetch_scripts);
        let finished = route.finished();
        if held {
            table.pending = table.pending.saturating_sub(1);
        }
        if finished {
            table.finish(id);
        }
        Some(found)
    }
}

impl Dest {
    /// Whether its client went away (nobody reads its pages).
    pub(super) fn gone(&self) -> bool {
        self.pages.is_closed()
    }
}

/// Hands a parsed page to its scan's client; a client whose channel is
/// full has not read [`SCAN_BUFFER`] pages and more, and its scan is cut.
pub(super) fn deliver(routes: &Routes, id: u64, to: &Dest, page: PageResult) {
    if let Err(mpsc::error::TrySendError::Full(_)) = to.pages.try_send(page) {
        if !to.tally.cut.swap(true, Ordering::Relaxed) {
            tracing::warn!("a client is not reading the pages of its scan: the scan is cut");
        }
        lock(routes).end(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_names_each_url_once_and_its_lines_keep_their_places() {
        let lines = [
            "https://a.test/~x",
            "a.test/~x#top",
            "nope nope",
            "https://a.test/%7Ex",
            "nope nope",
        ]
        .map(str::to_owned)
        .to_vec();
        let (kept, duplicates) = distinct(lines.clone(), None);
        let seen: Vec<_> = kept.iter().map(|l| (l.at, l.url.is_ok())).collect();
        // "a.test/~x#top" is https://a.test/~x (the fragment is never
        // sent); an escaped "~" is another URL, unless crawling (normal
        // forms).
        assert_eq!(seen, [(1, true), (3, false), (4, true)]);
        assert_eq!(duplicates, 2);
        let crawl = Crawl {
            max_depth: 1,
            scope: Default::default(),
            include: Vec::new(),
            exclude: Vec::new(),
            strip_query: Vec::new(),
            follow_nofollow: false,
            allow_private: false,
            max_pages: None,
            sitemaps: Vec::new(),
            sitemap_auto: false,
            frontier_memory: 1,
            shard: None,
        };
        let (kept, duplicates) = distinct(lines, Some(&crawl));
        assert_eq!(kept.len(), 2);
        assert_eq!(duplicates, 3);
    }
}
