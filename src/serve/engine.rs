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

/// Each running scan: where its pages go, and its fetch limits.
type Routes = Arc<Mutex<HashMap<u64, (mpsc::UnboundedSender<PageResult>, FetchLimits)>>>;

/// The shared engine: hand it scans, read their pages as they complete.
pub struct Engine {
    scans: mpsc::Sender<NewScan>,
    routes: Routes,
    started: AtomicU64,
}

/// One scan's pages, as they complete. Dropping it (the client went
/// away) gives up its URLs not yet started.
pub struct Scan {
    /// Each page's result, once.
    pub pages: mpsc::UnboundedReceiver<PageResult>,
    id: u64,
    routes: Routes,
}

impl Drop for Scan {
    fn drop(&mut self) {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Engine {
    /// Starts the engine on the current runtime with `config`'s limits;
    /// unless `allow_private`, every URL and redirect is held to the
    /// private-network rule (none is trusted: they are the clients').
    pub fn start(config: &Config, allow_private: bool, stop: Stop) -> anyhow::Result<Engine> {
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
        let alive: Alive = Arc::new(move |id| {
            known
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&id)
                .map(|(_, limits)| *limits)
        });
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
        })
    }

    /// Starts a scan of `lines` (URLs as the client wrote them), each
    /// page's fetch within `limits`, for `client` (scans take turns client
    /// by client).
    pub async fn scan(
        &self,
        lines: Vec<String>,
        limits: FetchLimits,
        client: String,
    ) -> anyhow::Result<Scan> {
        let id = scan_id(self.started.fetch_add(1, Ordering::Relaxed));
        let (tx, pages) = mpsc::unbounded_channel();
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (tx, limits));
        let scan = Scan {
            pages,
            id,
            routes: Arc::clone(&self.routes),
        };
        self.scans
            .send(NewScan { id, lines, client })
            .await
            .map_err(|_| anyhow::anyhow!("the server is stopping"))?;
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
        let to = routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .map(|(to, _)| to.clone());
        let Some(to) = to else { continue };
        // The semaphore is never closed, so acquiring only waits.
        let Ok(permit) = Arc::clone(&parsing).acquire_owned().await else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            let (result, _, _) = crate::pipeline::parse_one(page, &extractor, None, false);
            drop(permit);
            let _ = to.send(result);
        });
    }
}
