//! The seam between the scheduler and where its work comes from.
//!
//! The scheduler's loop owns the host queues and the requests in flight;
//! a [`Work`] owns everything about the work itself: where URLs arrive
//! from (an input list, a crawl's frontier, a shared queue), what is kept
//! outside the queues, what a finished page leads to, and when nothing
//! more can come. [`super::local::Local`] reads the input and keeps a
//! crawl's frontier in this process.

use std::future::Future;
use std::time::Instant;

use super::Completed;
use super::hosts::Queues;
use super::tasks::{SitemapRead, Tasks};
use crate::fetch::Fetcher;
use crate::run::report::Crawled;

/// What the loop lends a [`Work`] while it takes something in.
pub(crate) struct Ctx<'a> {
    /// The host queues, where URLs to fetch go.
    pub queues: &'a mut Queues,
    /// Requests in flight, for the work's own requests (sitemaps).
    pub tasks: &'a mut Tasks,
    /// The HTTP client.
    pub fetcher: &'a Fetcher,
    /// Rows for URLs that get no request, handed on by the loop.
    pub rows: &'a mut Vec<Completed>,
    /// Stopping: nothing new is queued.
    pub draining: bool,
    pub now: Instant,
}

/// Limits of one page's fetch below the run's; `None`: the run's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchLimits {
    /// Its `--timeout`.
    pub timeout: Option<std::time::Duration>,
    /// Its `--retries`.
    pub retries: Option<u32>,
}

/// The receiver of the results went away: the run cannot go on.
pub(crate) struct Closed;

/// Where the fetch stage's work comes from, and where what its pages lead
/// to goes.
pub(crate) trait Work: Send {
    /// Something that arrived, to be taken in with [`Work::take_in`].
    type Arrival: Send;

    /// Starts what the work needs before the first arrival.
    fn start(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Waits for the next arrival. `room`: whether the queues can take
    /// more URLs from outside; when they cannot, or nothing can come,
    /// this stays pending and the loop's other branches decide.
    fn next(&mut self, room: bool) -> impl Future<Output = Self::Arrival> + Send;

    /// Takes an arrival in: queues its URLs, or rows for those that get
    /// no request.
    fn take_in(&mut self, arrival: Self::Arrival, ctx: &mut Ctx<'_>) -> Result<(), Closed>;

    /// Brings work kept outside the queues (on disk) back into them when
    /// they have room or need it.
    fn refill(&mut self, _queues: &mut Queues, _now: Instant) {}

    /// The deepest queue pages may be taken from now; `None` when no page
    /// may start.
    fn depth_cap(&self, _queues: &Queues) -> Option<u16> {
        Some(u16::MAX)
    }

    /// How the page of `seq`, at the front of its queue, is to be fetched:
    /// within a shorter timeout or fewer retries than the run's (a served
    /// scan's options), or not at all (`None`: its scan's client has gone
    /// away).
    fn fetch_limits(&self, _seq: u64) -> Option<FetchLimits> {
        Some(FetchLimits::default())
    }

    /// The crawl settings of the page of `seq` when they are its own, not
    /// the run's (a served scan's): what its redirects are held to.
    fn crawl_of(&self, _seq: u64) -> Option<std::sync::Arc<crate::crawl::Crawl>> {
        None
    }

    /// The page request of `seq` started, at `depth` in a crawl.
    fn dispatched(&mut self, _seq: u64, _depth: Option<u16>) {}

    /// After requests were started: what is queued but may not be fetched
    /// any more becomes rows.
    fn after_dispatch(&mut self, _queues: &mut Queues, _rows: &mut Vec<Completed>) {}

    /// A host's robots.txt rules became known (they are in the queues).
    fn robots_known(&mut self, _host: String, _ctx: &mut Ctx<'_>) {}

    /// A sitemap this work asked for was read.
    fn sitemap_read(&mut self, _read: SitemapRead, _ctx: &mut Ctx<'_>) {}

    /// A page's result is about to be handed on.
    fn completed(&mut self, _done: &Completed, _depth: Option<u16>) {}

    /// URLs waiting outside the queues (shown as queued).
    fn elsewhere(&self) -> u64 {
        0
    }

    /// Nothing more can arrive, and nothing is kept outside the queues.
    fn exhausted(&self) -> bool;

    /// Stopping: gives up what is kept outside the queues and stops taking
    /// more; returns how many URLs that leaves without a result.
    fn give_up(&mut self) -> u64;

    /// The crawl's counts.
    fn tally(&self) -> Crawled {
        Crawled::default()
    }
}
