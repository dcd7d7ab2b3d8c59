//! Work from a job's shared queue on Redis: URLs taken by a task of their
//! own ([`crate::queue::worker`]) and handed here, to be fetched within
//! this worker's limits like any others.
//!
//! Nothing about the crawl's frontier lives here: a found link goes back
//! to the queue with its page's result, where the job-wide seen-set
//! decides whether any worker fetches it.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use url::Url;

use super::Completed;
use super::hosts::host_key;
use super::work::{Closed, Ctx, Work};
use crate::crawl::netguard::Guard;
use crate::crawl::{Crawl, Origin, Seed};
use crate::error::ErrorKind;
use crate::queue::Delivery;

/// What the taking task sends.
pub enum Arrival {
    /// A work item to fetch.
    Item(Delivery),
    /// The job is drained (or taking failed for good): nothing more.
    End,
}

/// The shared queue's work, as the scheduler sees it.
pub struct Shared {
    deliveries: mpsc::Receiver<Delivery>,
    open: bool,
    /// An entry handed out more than this many times becomes a failed
    /// page instead of being fetched again.
    max_deliveries: u64,
    /// Crawling: each URL carries its origin, and a listed one is fetched
    /// in its crawl form, as a local crawl fetches its seeds.
    crawl: Option<Arc<Crawl>>,
    /// Taken in and not started: what a stop gives back at once.
    waiting: HashSet<u64>,
    /// Told, on a stop, the seqs of the work that will not be started.
    give_back: Option<Box<dyn FnOnce(Vec<u64>) + Send>>,
    /// Keeps a crawl out of private networks; told each seed's host,
    /// which the user listed and so trusts.
    guard: Option<Arc<Guard>>,
}

impl Shared {
    /// Work from `deliveries`, which the taking task closes when the job
    /// is drained. On a stop, `give_back` is told the seqs of the work
    /// taken but not started (or still in the channel), to return it to
    /// the job at once.
    pub fn new(
        deliveries: mpsc::Receiver<Delivery>,
        max_deliveries: u64,
        crawl: Option<Arc<Crawl>>,
        give_back: Box<dyn FnOnce(Vec<u64>) + Send>,
        guard: Option<Arc<Guard>>,
    ) -> Self {
        Shared {
            deliveries,
            open: true,
            max_deliveries,
            crawl,
            waiting: HashSet::new(),
            give_back: Some(give_back),
            guard,
        }
    }
}

/// A work item's origin: its seed is sent as the listed URL, then, when
/// the seed redirected, where it landed, after a space (a serialised URL
/// never holds one).
fn origin(d: &Delivery, url: &Url) -> Origin {
    let mut parts = d.item.seed.splitn(2, ' ');
    let listed = parts.next().and_then(|s| Url::parse(s).ok());
    let landed = parts.next().and_then(|s| Url::parse(s).ok());
    let seed = match listed {
        Some(listed) => Seed::landed_at(listed, landed),
        None => Seed::new(url.clone()),
    };
    Origin {
        depth: d.item.depth,
        seed: Arc::new(seed),
        referrer: d.item.referrer.as_deref().map(Arc::from),
    }
}

impl Work for Shared {
    type Arrival = Arrival;

    async fn next(&mut self, room: bool) -> Arrival {
        if !room || !self.open {
            return std::future::pending().await;
        }
        match self.deliveries.recv().await {
            Some(d) => Arrival::Item(d),
            None => Arrival::End,
        }
    }

    fn take_in(&mut self, arrival: Arrival, ctx: &mut Ctx<'_>) -> Result<(), Closed> {
        let d = match arrival {
            Arrival::End => {
                self.open = false;
                return Ok(());
            }
            Arrival::Item(d) => d,
        };
        if d.deliveries > self.max_deliveries {
            let why = format!(
                "handed to workers {} times without a result (--max-deliveries {}): \
                 each worker that took it died or was stopped first",
                d.deliveries, self.max_deliveries
            );
            let mut row = Completed::without_request(
                d.seq,
                d.item.url.clone(),
                ErrorKind::DeliveryLimit,
                why,
            );
            if let Ok(url) = Url::parse(&d.item.url) {
                row.origin = Some(origin(&d, &url));
            }
            ctx.rows.push(row);
            return Ok(());
        }
        match Url::parse(&d.item.url) {
            Ok(url) => {
                let url = match &self.crawl {
                    Some(crawl) if d.item.depth == 0 => crawl.normalize(&url),
                    _ => url,
                };
                let origin = self.crawl.is_some().then(|| match d.item.depth {
                    0 => Origin::seed(&url),
                    _ => origin(&d, &url),
                });
                // The seed was listed by the user, so its host is trusted
                // (it may be private), by every worker that meets one of
                // its pages: the one that took the seed may be another.
                if let (Some(guard), Some(o)) = (&self.guard, &origin)
                    && let Some(name) = o.seed.listed().host_str()
                    && !guard.trusts(name)
                {
                    guard.trust(name);
                    ctx.queues.recheck_robots(&host_key(o.seed.listed()));
                }
                self.waiting.insert(d.seq);
                ctx.queues.push(url, d.seq, origin, ctx.now);
            }
            Err(e) => {
                // Enqueue checks every URL, so only a foreign writer to the
                // job's stream gets here; its entry still gets a result.
                let why = format!("not a URL in the job's queue: {e}");
                let row = Completed::without_request(d.seq, d.item.url, ErrorKind::InvalidUrl, why);
                ctx.rows.push(row);
            }
        }
        Ok(())
    }

    fn dispatched(&mut self, seq: u64, _depth: Option<u16>) {
        self.waiting.remove(&seq);
    }

    fn exhausted(&self) -> bool {
        !self.open
    }

    fn give_up(&mut self) -> u64 {
        self.open = false;
        self.deliveries.close();
        // The queues count what waits in them; this counts the channel's.
        let mut unstarted: Vec<u64> = self.waiting.drain().collect();
        let mut unfinished = 0;
        while let Ok(d) = self.deliveries.try_recv() {
            unstarted.push(d.seq);
            unfinished += 1;
        }
        if let Some(give_back) = self.give_back.take() {
            give_back(unstarted);
        }
        unfinished
    }
}
