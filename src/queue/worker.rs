//! `scriptscrape work`'s side of the queue: taking work, keeping it held
//! while it is worked on, publishing each page's result, and giving back
//! what a stop leaves unfinished.
//!
//! Three tasks run beside the fetch stage: the taker hands deliveries to
//! the scheduler ([`crate::schedule::Shared`]) while it has room, the
//! heartbeat touches every entry held so that no live worker's page is
//! claimed by another, and the publisher completes each parsed page,
//! found links with it, in one atomic step. Every entry taken is in
//! [`Held`] until it is completed or given back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::retry::retry;
use super::{Completion, Delivery, Job, Queue, WorkItem, wire};
use crate::crawl::Discovered;
use crate::output::PageResult;
use crate::run::stop::{Level, Stop};

/// What a worker is asked to do besides fetching.
#[derive(Clone, Debug)]
pub struct WorkSettings {
    /// The Redis URL (its password is never shown).
    pub redis: String,
    /// The job.
    pub job: Job,
    /// Work held this long by a silent worker is claimed by others.
    pub claim_idle: Duration,
    /// Deliveries after which an entry is a failed page.
    pub max_deliveries: u64,
    /// Results waiting for the collector past which this worker waits.
    pub max_results: u64,
}

/// The work entries this worker holds, by seq.
#[derive(Debug, Default)]
pub struct Held {
    entries: Mutex<HashMap<u64, String>>,
    /// Told when entries leave, for a taker waiting for room.
    freed: Notify,
}

impl Held {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, String>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, seq: u64, id: String) {
        self.map().insert(seq, id);
    }

    fn get(&self, seq: u64) -> Option<String> {
        self.map().get(&seq).cloned()
    }

    fn take(&self, seq: u64) -> Option<String> {
        let id = self.map().remove(&seq);
        if id.is_some() {
            self.freed.notify_one();
        }
        id
    }

    fn ids(&self) -> Vec<String> {
        self.map().values().cloned().collect()
    }

    fn take_all(&self, seqs: Option<&[u64]>) -> Vec<String> {
        let ids: Vec<String> = {
            let mut map = self.map();
            match seqs {
                Some(seqs) => seqs.iter().filter_map(|s| map.remove(s)).collect(),
                None => map.drain().map(|(_, id)| id).collect(),
            }
        };
        if !ids.is_empty() {
            self.freed.notify_one();
        }
        ids
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What this worker's publisher did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Pages published whose scripts were read.
    pub ok: u64,
    /// Pages published as failures.
    pub failed: u64,
    /// Pages whose work another worker had claimed meanwhile: dropped.
    pub taken_over: u64,
    /// Found links new to the job, queued.
    pub links_queued: u64,
}

/// A name for this worker in the job's consumer group: host, process and
/// a random part, so that a restarted worker is a new consumer and its
/// predecessor's entries are claimed like any dead worker's.
pub fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// The connection and names every task of a worker shares.
#[derive(Clone)]
pub struct Worker {
    /// The queue.
    pub queue: Queue,
    /// The job.
    pub job: Job,
    /// This worker's consumer name.
    pub consumer: Arc<str>,
    /// The entries it holds.
    pub held: Arc<Held>,
    /// Asks the worker to stop.
    pub stop: Stop,
    /// The most entries it holds at once (taken and not yet completed or
    /// given back): a few per request slot, so that the rest of the job
    /// stays in the queue for other workers.
    pub max_held: usize,
}

impl Worker {
    /// Hands deliveries to `tx` while it has room, until the job is
    /// drained or a stop; returns an error only for a failure no retry
    /// mends (the job deleted under the worker).
    pub async fn take(&self, tx: mpsc::Sender<Delivery>) -> anyhow::Result<()> {
        let max_held = self.max_held.max(1);
        loop {
            // The scheduler takes deliveries out of the channel into its
            // host queues at once, so the channel alone does not bound
            // what this worker holds.
            while self.held.len() >= max_held {
                tokio::select! {
                    () = self.held.freed.notified() => {}
                    () = self.stop.reached(Level::Draining) => return Ok(()),
                }
            }
            let permit = tokio::select! {
                permit = tx.reserve() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return Ok(()),
                },
                () = self.stop.reached(Level::Draining) => return Ok(()),
            };
            let room = (tx.capacity() + 1).min(max_held.saturating_sub(self.held.len()).max(1));
            let taken = tokio::select! {
                taken = retry("taking work", &self.stop, Level::Draining, || {
                    self.queue.take(&self.job, &self.consumer, room, Duration::from_secs(2))
                }) => taken?,
                () = self.stop.reached(Level::Draining) => return Ok(()),
            };
            if taken.is_empty() {
                drop(permit);
                if self.give_back_lost().await > 0 {
                    // Claimable now: the next take hands them out.
                    continue;
                }
                let status = retry("reading the job", &self.stop, Level::Draining, || {
                    self.queue.status(&self.job)
                })
                .await?;
                if status.drained() {
                    return Ok(());
                }
                continue;
            }
            let mut taken = taken.into_iter();
            if let Some(first) = taken.next() {
                self.held.insert(first.seq, first.id.clone());
                permit.send(first);
            }
            for d in taken {
                self.held.insert(d.seq, d.id.clone());
                if tx.send(d).await.is_err() {
                    return Ok(());
                }
            }
        }
    }

    /// Gives back the entries pending for this worker that it does not
    /// hold: handed to it by a reply lost with the connection (Redis
    /// restarted after a take, before its reply went out), they would
    /// otherwise wait for --claim-idle, untouched, while the job looks
    /// unfinished. Returns how many were given back.
    async fn give_back_lost(&self) -> usize {
        let pending = match self
            .queue
            .pending(&self.job, &self.consumer, PENDING_SCAN)
            .await
        {
            Ok(pending) => pending,
            // Claimed after --claim-idle anyway.
            Err(e) => {
                tracing::debug!("{e}: entries pending for this worker not read");
                return 0;
            }
        };
        let held: std::collections::HashSet<String> = self.held.ids().into_iter().collect();
        let lost: Vec<String> = pending
            .into_iter()
            .filter(|id| !held.contains(id))
            .collect();
        if lost.is_empty() {
            return 0;
        }
        // Completed meanwhile (published, so no longer held) or claimed by
        // another worker: the script gives back only what is still ours.
        match self.queue.release(&self.job, &self.consumer, &lost).await {
            Ok(released) => {
                if !released.is_empty() {
                    tracing::info!(
                        "{} URLs handed to this worker in a reply lost with the connection \
                         given back to the job",
                        released.len()
                    );
                }
                released.len()
            }
            Err(e) => {
                tracing::debug!("{e}: lost entries not given back");
                0
            }
        }
    }

    /// Touches every entry held, every `every`, so that none is claimed
    /// from this live worker; runs until dropped.
    pub async fn heartbeat(&self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let ids = self.held.ids();
            if let Err(e) = self.queue.touch(&self.job, &self.consumer, &ids).await {
                // Said by the taker and publisher, which retry; a missed
                // touch only risks a page being fetched twice, published
                // once.
                tracing::debug!("{e}: entries not touched");
            }
        }
    }

    /// Publishes each parsed page with its links, waiting while more than
    /// `max_results` results wait for the collector; returns when the
    /// parse stage is done.
    pub async fn publish(
        &self,
        mut pages: mpsc::Receiver<(PageResult, Option<Discovered>)>,
        max_results: u64,
    ) -> anyhow::Result<Published> {
        let mut done = Published::default();
        while let Some((page, links)) = pages.recv().await {
            if self.stop.level() == Level::Now {
                break;
            }
            // Held (so touched by the heartbeat, and given back on a
            // stop) until completed: waiting for the collector or for
            // Redis is no reason for another worker to take it over.
            let Some(id) = self.held.get(page.seq) else {
                tracing::warn!(
                    "{}: no work entry held for it; not published",
                    page.page_url
                );
                continue;
            };
            self.wait_for_room(max_results).await?;
            let found = links.map(found_items).unwrap_or_default();
            let payload = wire::encode(&page);
            let failed = page.outcome.is_err();
            let completion = retry("publishing a result", &self.stop, Level::Now, || {
                self.queue.complete(
                    &self.job,
                    &self.consumer,
                    &id,
                    page.seq,
                    &payload,
                    failed,
                    &found,
                )
            })
            .await?;
            self.held.take(page.seq);
            match completion {
                Completion::Applied { added } => {
                    // The collector reports failures; here they are for -v.
                    crate::pipeline::log_page(&page, tracing::Level::INFO);
                    done.links_queued += added as u64;
                    if failed {
                        done.failed += 1;
                    } else {
                        done.ok += 1;
                    }
                }
                Completion::NotOwner => {
                    tracing::info!(
                        "{}: another worker took this page over (this one was silent past \
                         --claim-idle); its result is theirs",
                        page.page_url
                    );
                    done.taken_over += 1;
                }
            }
        }
        Ok(done)
    }

    async fn wait_for_room(&self, max_results: u64) -> anyhow::Result<()> {
        let mut said = false;
        loop {
            // Stopping, the last pages are published over the bound (a
            // few, at most -c) rather than held until the grace ends.
            if self.stop.level() >= Level::Draining {
                return Ok(());
            }
            let room = tokio::select! {
                room = retry("waiting for the collector", &self.stop, Level::Draining, || {
                    self.queue
                        .wait_for_room(&self.job, max_results, Duration::from_secs(5))
                }) => room?,
                () = self.stop.reached(Level::Draining) => return Ok(()),
            };
            if room {
                return Ok(());
            }
            if !said {
                tracing::warn!(
                    "more than {max_results} results wait for the collector (--max-results): \
                     waiting for it to catch up"
                );
                said = true;
            }
        }
    }

    /// Gives back the entries of `seqs` at once; with `None`, when the
    /// worker ends, every entry still pending for it: those held, and any
    /// a take cut short by the stop (or a reply lost with the connection)
    /// handed it unseen.
    pub async fn give_back(&self, seqs: Option<&[u64]>) {
        let mut ids = self.held.take_all(seqs);
        if seqs.is_none()
            && let Ok(pending) = self
                .queue
                .pending(&self.job, &self.consumer, PENDING_SCAN)
                .await
        {
            let held: std::collections::HashSet<String> = ids.iter().cloned().collect();
            ids.extend(pending.into_iter().filter(|id| !held.contains(id)));
        }
        if ids.is_empty() {
            return;
        }
        // Tried while Redis answers; what cannot be given back is claimed
        // by other workers after --claim-idle, as a dead worker's is.
        match self.queue.release(&self.job, &self.consumer, &ids).await {
            Ok(released) => {
                tracing::info!("{} unfinished URLs given back to the job", released.len())
            }
            Err(e) => tracing::warn!(
                "{e}: {} unfinished URLs will be taken by other workers after --claim-idle",
                ids.len()
            ),
        }
    }
}

/// Most entries pending for this worker read at once to find those it
/// does not hold: far more than any worker holds.
const PENDING_SCAN: usize = 100_000;

/// A page's links as work items: one hop deeper, from the same seed.
fn found_items(found: Discovered) -> Vec<WorkItem> {
    let seed = match found.seed.landed() {
        // A serialised URL never holds a space (see schedule::shared).
        Some(landed) => format!("{} {}", found.seed.listed(), landed),
        None => found.seed.listed().to_string(),
    };
    found
        .urls
        .into_iter()
        .map(|url| WorkItem {
            // Normalised by the crawl already: its own identity.
            identity: None,
            url: url.into(),
            depth: found.page_depth + 1,
            seed: seed.clone(),
            referrer: Some(found.referrer.to_string()),
        })
        .collect()
}
