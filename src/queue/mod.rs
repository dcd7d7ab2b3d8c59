//! A job's shared work queue on Redis Streams: what lets many machines
//! scrape one list with nothing lost when a worker dies and every page
//! published exactly once.
//!
//! Redis is the one piece every worker and the collector already share, so
//! it holds all of a job's state; a process keeps nothing that another
//! could not pick up. Each step that must not be seen half done (a URL
//! marked seen without being queued, a result published without its work
//! acknowledged) is one Lua script: Redis runs a script as a transaction,
//! with no other command between its calls, so a script is our MULTI/EXEC
//! with reads and decisions inside it. Every check that can refuse a step
//! runs before its first write, so a script either writes all or nothing.
//!
//! # Data model
//!
//! Every key of job NAME carries the hash tag `{NAME}`, so a Redis Cluster
//! keeps a job in one slot and its scripts stay legal there:
//!
//! - `scriptscrape:{NAME}:meta`, a hash: `buckets` (fixed at creation),
//!   `seq` (the last sequence number given), `enqueued` (work items ever
//!   queued), `direct` (results added without work, such as invalid input
//!   lines), `done`, `failed`, `closed` (`1` once no more input will come).
//! - `scriptscrape:{NAME}:work`, a stream of work items (fields `url`,
//!   `seq`, `depth`, `seed` unless it is the URL itself, and `referrer`
//!   when there is one), read by the consumer group `workers`. An entry stays in the stream until its
//!   result is published, then it is acknowledged and deleted at once.
//! - `scriptscrape:{NAME}:results`, a stream of results (fields `seq`,
//!   `data`), read by the consumer group `collect`, deleted once written.
//! - `scriptscrape:{NAME}:seen:<h % B>`, sets of integers `h / B`: the
//!   job-wide seen-set, where `h` is [`url_hash`] of the URL and `B` the
//!   job's bucket count (see [`JobOptions`]).
//! - `scriptscrape:jobs`, a set of job names, for `jobs` listings.
//!
//! # The seen-set's size
//!
//! A set whose members are all integers is stored by Redis as an *intset*,
//! a sorted array of 8-byte integers, while it has at most
//! `set-max-intset-entries` members (512 by default); past that it becomes
//! a hash table at about 60 bytes a member. Splitting the 64-bit hash into
//! a bucket (`h % B`, the key) and the rest (`h / B`, the member) keeps
//! every set small, so a URL costs its 8 bytes plus a share of its bucket's
//! overhead. Measured on Redis 7.0 with the default 65,536 buckets: 16.5
//! bytes a URL at one million URLs, 10.8 at four million. Buckets stay
//! intsets up to about 400 URLs each on average (about 26 million URLs for
//! the default); [`JobOptions::sized_for`] picks more buckets for larger
//! jobs. A queued URL costs about its length plus 25 bytes in the work
//! stream (77 bytes for URLs of 51 characters), freed as it is completed.
//!
//! # Delivery
//!
//! A worker [`Queue::take`]s entries through the group, which records them
//! as pending for it; [`Queue::complete`] publishes the result only while
//! the entry is still pending for that worker. A worker that dies leaves
//! its entries pending; after `claim_idle` without a [`Queue::touch`] the
//! next `take` by any worker claims them (XAUTOCLAIM). The old owner, if it
//! was only slow, finds on `complete` that it no longer owns the entry and
//! drops its result, so each page is published at most once, and exactly
//! once when some worker finishes it.
//!
//! A page's result travels from worker to collector as [`wire`] JSON.
//!
//! Redis going away surfaces as [`QueueError::Unavailable`], which callers
//! retry; the connection is re-established by itself when Redis is back.
//! A step whose reply was lost with the connection may or may not have
//! happened: a retried `enqueue` finds its URLs seen, and a retried
//! `complete` finds the entry gone and reports it not applied (its result
//! was published by the first try, or by another worker). A `take` or
//! `read_results` whose reply was lost leaves entries pending for a
//! consumer that does not know it has them: a worker gives back those it
//! does not hold when it finds no new work (and all it has when it ends),
//! and `read_results` reads the collector's own pending entries again
//! after a call that found nothing new.

pub mod collect;
pub mod enqueue;
pub mod jobs;
mod keys;
pub mod retry;
mod scripts;
mod store;
/// The Redis URL as messages show it (passwords masked, Unix sockets' too).
pub(crate) use store::shown as shown_redis_url;
pub mod wire;
pub mod worker;

use std::time::Duration;

pub use keys::{Job, MAX_JOB_NAME_BYTES, url_hash};
pub use store::{MAX_BLOCK, Queue, shown};

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis could not be reached, or the connection broke: retry later.
    #[error("Redis at {url} is unreachable: {detail}")]
    Unavailable {
        /// The Redis URL without its password.
        url: String,
        /// What the client saw, without the password.
        detail: String,
    },
    /// A job name that cannot be used.
    #[error("invalid job name {name:?}: {reason}")]
    BadJobName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Job options out of range.
    #[error("invalid job options: {0}")]
    BadOptions(&'static str),
    /// The job does not exist (never created, or deleted).
    #[error("no job named {0:?} in Redis")]
    NoSuchJob(String),
    /// The job was closed, so it takes no more input.
    #[error("job {0:?} is closed: it takes no more URLs")]
    Closed(String),
    /// `delete` of a job that still has work or results, without force.
    #[error("job {job:?} is not finished ({status}); delete it anyway with --force")]
    NotFinished {
        /// The job's name.
        job: String,
        /// Its counts, as [`JobStatus`] shows them.
        status: String,
    },
    /// Any other failure: a refused password, a bad URL, a Redis error.
    #[error("Redis at {url}: {detail}")]
    Redis {
        /// The Redis URL without its password.
        url: String,
        /// What went wrong, without the password.
        detail: String,
    },
}

impl QueueError {
    /// Whether trying again later may succeed (Redis down or restarting).
    pub fn is_retryable(&self) -> bool {
        matches!(self, QueueError::Unavailable { .. })
    }
}

/// Results of queue operations.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// How a [`Queue`] talks to Redis.
#[derive(Clone, Debug)]
pub struct QueueOptions {
    /// Entries pending this long without a touch are taken from their
    /// worker by the next `take` (at least 1 ms).
    pub claim_idle: Duration,
    /// Longest wait for a reply before the connection counts as lost.
    pub response_timeout: Duration,
    /// Longest wait for a connection to be set up.
    pub connect_timeout: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            claim_idle: Duration::from_secs(60),
            response_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Settings fixed when a job is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobOptions {
    /// How many sets the seen-set is split into (1 to 2^24).
    pub buckets: u32,
}

impl JobOptions {
    /// The default bucket count, good for up to about 26 million URLs.
    pub const DEFAULT_BUCKETS: u32 = 65_536;

    /// Enough buckets for `urls` URLs to keep every bucket an intset, with
    /// an average of at most 256 a bucket (never fewer than the default).
    pub fn sized_for(urls: u64) -> JobOptions {
        let wanted = urls.div_ceil(256).next_power_of_two();
        let buckets = wanted.clamp(u64::from(Self::DEFAULT_BUCKETS), 1 << 24);
        // Clamped to at most 2^24 just above, so it fits.
        JobOptions {
            buckets: u32::try_from(buckets).expect("at most 2^24"),
        }
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            buckets: Self::DEFAULT_BUCKETS,
        }
    }
}

/// A URL to fetch, as queued in a job's work stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// The URL to fetch, as it is to be reported.
    pub url: String,
    /// Its identity in the seen-set, when that is not `url` itself: a
    /// listed URL is fetched as spelt, but known by its crawl form, so
    /// that a link spelling it another way is not fetched again. The
    /// seen-set holds [`url_hash`] of exactly this string (or of `url`).
    pub identity: Option<String>,
    /// Links followed from the seed to reach it (0 for input URLs).
    pub depth: u16,
    /// The input URL whose crawl found it (itself for input URLs).
    pub seed: String,
    /// The page it was found on, if it was found on one.
    pub referrer: Option<String>,
}

/// A work item handed to a worker by [`Queue::take`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The stream entry's ID, for `touch` and `complete`.
    pub id: String,
    /// The job-wide sequence number given when it was queued.
    pub seq: u64,
    /// What to fetch.
    pub item: WorkItem,
    /// How many times it has been handed out, this time included.
    pub deliveries: u64,
}

/// What [`Queue::complete`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The result was published and the work acknowledged; `added` of the
    /// found links were new to the job and queued.
    Applied {
        /// Found links queued.
        added: usize,
    },
    /// The entry is no longer this worker's (another claimed it, or it was
    /// completed already): nothing was published, drop the result.
    NotOwner,
}

impl Completion {
    /// Whether the result was published.
    pub fn is_applied(self) -> bool {
        matches!(self, Completion::Applied { .. })
    }
}

/// A published result, as [`Queue::read_results`] hands it to the collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultEntry {
    /// The stream entry's ID, for `ack_results`.
    pub id: String,
    /// The sequence number of the work item (or input line) it is for.
    pub seq: u64,
    /// What the worker published, as it gave it.
    pub payload: Vec<u8>,
}

/// A job's counts at one instant (read in one script, so consistent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStatus {
    /// Work items queued and not yet handed to any worker.
    pub queued: u64,
    /// Work items handed out and not yet completed.
    pub in_flight: u64,
    /// Pages completed successfully.
    pub done: u64,
    /// Pages completed as failures, with the results added directly.
    pub failed: u64,
    /// Results added directly, without work (such as invalid input lines).
    pub direct: u64,
    /// Results published and not yet acknowledged by the collector.
    pub results_waiting: u64,
    /// Whether the job takes no more input.
    pub closed: bool,
    /// Work items ever queued (input URLs and found links).
    pub enqueued: u64,
    /// The seen-set's bucket count.
    pub buckets: u32,
    /// Tells this creation of the job from an earlier one of the same
    /// name.
    pub created: String,
}

impl JobStatus {
    /// Closed, with nothing queued or in flight: workers may leave.
    pub fn drained(&self) -> bool {
        self.closed && self.queued == 0 && self.in_flight == 0
    }

    /// Drained, and every result collected: the job is over.
    pub fn finished(&self) -> bool {
        self.drained() && self.results_waiting == 0
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} queued, {} in flight, {} done, {} failed, {} results waiting, {}",
            self.queued,
            self.in_flight,
            self.done,
            self.failed,
            self.results_waiting,
            if self.closed { "closed" } else { "open" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sized_for_a_job() {
        assert_eq!(JobOptions::sized_for(0), JobOptions::default());
        assert_eq!(JobOptions::sized_for(10_000_000).buckets, 65_536);
        assert_eq!(JobOptions::sized_for(100_000_000).buckets, 524_288);
        assert_eq!(JobOptions::sized_for(u64::MAX).buckets, 1 << 24);
    }
}
