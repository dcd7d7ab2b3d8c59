//! The one fetch-and-parse engine every scan of the server shares.
//!
//! ```text
//!  scans ─► schedule::run (Served work) ─► router ─► parse (blocking pool) ─► the scan's channel
//!           one -c, one --per-host            ≤ parsers pages at once
//!           for every client together
//! ```
//!
//! Pages are parsed as the command line parses them (`pipeline::parse_one`),
//! so a scan's rows are the CLI's rows for the same URLs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, mpsc};

use crate::config::Config;
use crate::crawl::netguard::Guard;
use crate::extract::Extractor;
use crate::fetch::Fetcher;
use crate::output::PageResult;
use crate::run::stop::Stop;
use crate::schedule::served::{Alive, NewScan, Served, scan_id, scan_of};
use crate::schedule::work::FetchLimits;
use crate::schedule::{self, Completed};

/// URLs of all scans together waiting in the host queues, per request
/// slot (`-c`): few, so that a new scan's first URL enters them soon
/// whatever is queued before it (the turns decide who is next, not the
/// queues), enough that a host at its `--per-host` limit seldom leaves a
/// slot idle.
const QUEUED_PER_SLOT: usize = 1;

/// Pages of a scan parsed and not yet taken by its client: past this the
/// client is not reading (or far too slowly), and the scan is cut, so
/// that a stalled client holds neither memory nor the server's
/// `--max-pending`.
const SCAN_BUFFER: usize = 64;

/// One running scan.
struct Route {
    /// Where its pages go.
    pages: mpsc::Sender<PageResult>,
    limits: FetchLimits,
    /// Its URLs not yet done.
    remaining: usize,
}

/// The running scans, and their URLs not yet done, all together.
#[derive(Default)]
struct Table {
    scans: HashMap<u64, Route>,
    pending: usize,
}

impl Table {
    /// Ends scan `id` (if it runs): its URLs not yet done are given up.
    fn end(&mut self, id: u64) {
        if let Some(route) = self.scans.remove(&id) {
            self.pending = self.pending.saturating_sub(route.remaining);
        }
    }
}

type Routes = Arc<Mutex<Table>>;

fn lock(routes: &Routes) -> std::sync::MutexGuard<'_, Table> {
    routes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared engine: hand it scans, read their pages as they complete.
pub struct Engine {
    scans: mpsc::Sender<NewScan>,
    routes: Routes,
    started: AtomicU64,
    max_pending: usize,
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
}

/// One scan's pages, as they complete. Dropping it (the client went
/// away) gives up its URLs not yet started.
pub struct Scan {
    /// Each page's result, once; closed early when the scan was cut.
    pub pages: mpsc::Receiver<PageResult>,
    id: u64,
    routes: Routes,
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
        let setup = schedule::Setup {
            fetcher,
            limits,
            stop,
            grace: config.grace,
            crawl: None,
            progress: None,
            scripts: None,
        };
        let (scans, arriving) = mpsc::channel(64);
        let (completed, done) = mpsc::channel(64);
        let routes = Routes::default();
        let known = Arc::clone(&routes);
        let alive: Alive = Arc::new(move |id| lock(&known).scans.get(&id).map(|r| r.limits));
        tokio::spawn(async move {
            schedule::run(setup, Served::new(arriving, alive), completed).await;
        });
        let extractor = Extractor::new()
            .keep_inline_text(false)
            .detect_utf8(config.detect_utf8);
        let parsers = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::spawn(route(done, Arc::clone(&routes), extractor, parsers));
        Ok(Engine {
            scans,
            routes,
            started: AtomicU64::new(0),
            max_pending,
        })
    }

    /// URLs of running scans not yet done.
    pub fn pending(&self) -> usize {
        lock(&self.routes).pending
    }

    /// Starts a scan of `lines` (URLs as the client wrote them), each
    /// page's fetch within `limits`, for `client` (scans take turns client
    /// by client).
    pub async fn scan(
        &self,
        lines: Vec<String>,
        limits: FetchLimits,
        client: String,
    ) -> Result<Scan, Refused> {
        let id = scan_id(self.started.fetch_add(1, Ordering::Relaxed));
        let (tx, pages) = mpsc::channel(SCAN_BUFFER);
        {
            let mut table = lock(&self.routes);
            if table.pending + lines.len() > self.max_pending {
                return Err(Refused::Busy(table.pending, self.max_pending));
            }
            table.pending += lines.len();
            let route = Route {
                pages: tx,
                limits,
                remaining: lines.len(),
            };
            table.scans.insert(id, route);
        }
        let scan = Scan {
            pages,
            id,
            routes: Arc::clone(&self.routes),
        };
        self.scans
            .send(NewScan { id, lines, client })
            .await
            .map_err(|_| Refused::Stopping)?;
        Ok(scan)
    }
}

/// Hands each completed page to be parsed, then to its scan; pages of a
/// scan that is gone are dropped unparsed.
async fn route(
    mut done: mpsc::Receiver<Completed>,
    routes: Routes,
    extractor: Extractor,
    parsers: usize,
) {
    let parsing = Arc::new(Semaphore::new(parsers));
    while let Some(page) = done.recv().await {
        let (id, _) = scan_of(page.seq);
        let to = {
            let mut table = lock(&routes);
            let Some(route) = table.scans.get_mut(&id) else {
                continue;
            };
            // One result per URL; saturating all the same, as a count
            // off by one must not take the server down.
            route.remaining = route.remaining.saturating_sub(1);
            let to = route.pages.clone();
            table.pending = table.pending.saturating_sub(1);
            to
        };
        let routes = Arc::clone(&routes);
        // The semaphore is never closed, so acquiring only waits.
        let Ok(permit) = Arc::clone(&parsing).acquire_owned().await else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            let (result, _, _) = crate::pipeline::parse_one(page, &extractor, None, false);
            drop(permit);
            if let Err(mpsc::error::TrySendError::Full(_)) = to.try_send(result) {
                tracing::warn!(
                    "a client has not read {SCAN_BUFFER} pages of its scan: the scan is cut"
                );
                lock(&routes).end(id);
            }
        });
    }
}
