//! [`Queue`]: a job's operations over a reconnecting Redis connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ScriptInvocation, ServerErrorKind, Value};

use super::keys::JOBS_KEY;
use super::scripts;
use super::{
    Completion, Delivery, Job, JobOptions, JobStatus, QueueError, QueueOptions, Result,
    ResultEntry, WorkItem,
};

/// Longest a blocking read waits in Redis: longer waits are cut to this
/// (callers loop anyway), so the blocking connection's reply timeout can
/// still tell a hung server from a quiet queue.
pub const MAX_BLOCK: Duration = Duration::from_secs(10);

/// Work items per enqueue script: each script call holds Redis for its
/// length, so a large batch goes in slices of a few milliseconds each.
const ENQUEUE_SLICE: usize = 1000;

/// Keys per UNLINK when a job is deleted.
const DELETE_SLICE: u64 = 1000;

/// Reconnection attempts the client makes by itself before an operation
/// fails with [`QueueError::Unavailable`]: few, so callers hear of an
/// outage within a second and retry (and say so) on their own schedule.
const RECONNECT_TRIES: usize = 2;

/// A handle on the job queues of one Redis. Cheap to clone; clones share
/// the connections.
///
/// Blocking reads (`take` and `read_results` with a wait) go through a
/// second connection, since Redis answers nothing else on a connection
/// while a read blocks on it: a worker's `complete` and `touch` calls must
/// not wait behind its own `take`. Blocking reads through one handle wait
/// for one another.
#[derive(Clone)]
pub struct Queue {
    conn: ConnectionManager,
    blocking: ConnectionManager,
    /// The URL as shown in errors: without its password.
    shown_url: Arc<str>,
    /// Text never to show: the password, as written and decoded.
    secrets: Arc<[String]>,
    claim_idle: Duration,
    state: Arc<Mutex<State>>,
}

/// What a handle remembers between calls; all of it can be rebuilt from
/// Redis, so a poisoned lock's content is still good.
#[derive(Default)]
struct State {
    /// Each job's bucket count, fixed at creation.
    buckets: HashMap<String, u32>,
    /// Where each (job, consumer)'s next XAUTOCLAIM scan starts, so that a
    /// long pending list is scanned round, not just its head.
    claim_cursor: HashMap<(String, String), String>,
    /// Each (job, collector)'s progress through its own pending results.
    history: HashMap<(String, String), History>,
}

/// Where a collector is in the results it was handed before.
#[derive(Clone)]
enum History {
    /// Still reading its pending entries, after this ID.
    After(String),
    /// All read: new entries only.
    Done,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("url", &self.shown_url)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Connects to the Redis at `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`
    /// or `rediss://` for TLS), checking it answers.
    pub async fn connect(url: &str, options: QueueOptions) -> Result<Queue> {
        let shown_url: Arc<str> = shown(url).into();
        let secrets: Arc<[String]> = secrets(url).into();
        let fail = |err: RedisError| classify(&shown_url, &secrets, &err);
        if url.starts_with("rediss:") {
            // The client builds its TLS config from the process's default
            // provider; ring is the one this crate builds (fetch does the
            // same). An error only means one is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(url).map_err(fail)?;
        let config = |reply_within: Duration| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.connect_timeout))
                .set_response_timeout(Some(reply_within))
                .set_number_of_retries(RECONNECT_TRIES)
                .set_min_delay(Duration::from_millis(100))
                .set_max_delay(Duration::from_secs(1))
        };
        let conn =
            ConnectionManager::new_with_config(client.clone(), config(options.response_timeout))
                .await
                .map_err(fail)?;
        let blocking = ConnectionManager::new_lazy_with_config(
            client,
            config(options.response_timeout + MAX_BLOCK),
        )
        .map_err(fail)?;
        Ok(Queue {
            conn,
            blocking,
            shown_url,
            secrets,
            claim_idle: options.claim_idle.max(Duration::from_millis(1)),
            state: Arc::default(),
        })
    }

    /// The Redis URL without its password, for messages.
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// Creates `job` with its streams and groups, unless it exists; returns
    /// whether it was created. An existing job keeps its own options.
    pub async fn create_job(&self, job: &Job, options: JobOptions) -> Result<bool> {
        if !(1..=1 << 24).contains(&options.buckets) {
            return Err(QueueError::BadOptions(
                "a job's buckets must be 1 to 16777216",
            ));
        }
        // Listed first: a listed name without a job is skipped by `jobs`,
        // while a job missing from the list would be invisible.
        let mut conn = self.conn.clone();
        redis::cmd("SADD")
            .arg(JOBS_KEY)
            .arg(job.name())
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(job, e))?;
        let created: i64 = scripts::CREATE
            .key(job.meta())
            .key(job.work())
            .key(job.results())
            .arg(options.buckets)
            .arg(creation_id())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error(job, e))?;
        Ok(created == 1)
    }

    /// Adds the items not yet seen in the job to its work stream, each with
    /// the next seq; returns, for each item, its seq if it was added. An
    /// item repeated in `items` is added once. Large batches go in slices,
    /// each atomic. Fails with [`QueueError::Closed`] after [`Queue::close`].
    pub async fn enqueue(&self, job: &Job, items: &[WorkItem]) -> Result<Vec<Option<u64>>> {
        let mut seqs = Vec::with_capacity(items.len());
        for slice in items.chunks(ENQUEUE_SLICE) {
            let reply = self
                .invoke_sized(job, |buckets| {
                    let mut call = scripts::ENQUEUE.key(job.meta());
                    call.key(job.work()).arg(buckets);
                    add_items(&mut call, job, buckets, slice);
                    call
                })
                .await?;
            seqs.extend(self.seqs(reply, slice.len())?);
        }
        Ok(seqs)
    }

    /// Publishes results that have no work item (input lines that are not
    /// URLs: their results are known at once), each with the next seq, and
    /// counts them as failed pages; returns their seqs.
    pub async fn add_results(&self, job: &Job, payloads: &[&[u8]]) -> Result<Vec<u64>> {
        let mut seqs = Vec::with_capacity(payloads.len());
        for slice in payloads.chunks(ENQUEUE_SLICE) {
            let mut call = scripts::ADD_RESULTS.key(job.meta());
            call.key(job.results());
            for payload in slice {
                call.arg(*payload);
            }
            let reply: Value = call
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(|e| self.error(job, e))?;
            for seq in self.seqs(reply, slice.len())? {
                seqs.push(seq.ok_or_else(|| self.unexpected("ADD_RESULTS"))?);
            }
        }
        Ok(seqs)
    }

    /// Marks the job closed: no more input will come, so once its work is
    /// done it is drained. Found links still join it.
    pub async fn close(&self, job: &Job) -> Result<()> {
        scripts::CLOSE
            .key(job.meta())
            .invoke_async::<()>(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))
    }

    /// Hands `consumer` up to `max` work items: first entries left idle
    /// longer than `claim_idle` (their delivery count grown), then new
    /// ones, waiting up to `block` (at most [`MAX_BLOCK`]) for one when
    /// there is none. Empty when nothing came in time. Idle entries are
    /// claimed whoever held them, this consumer included: [`Queue::touch`]
    /// what is still being worked on.
    pub async fn take(
        &self,
        job: &Job,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut taken = self.reclaim(job, consumer, max).await?;
        if taken.len() < max {
            let block = if taken.is_empty() {
                block
            } else {
                Duration::ZERO
            };
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP")
                .arg("workers")
                .arg(consumer)
                .arg("COUNT")
                .arg(max - taken.len());
            let reply = self.read_group(job, read, block, job.work(), ">").await?;
            for (id, fields) in reply {
                // New entries always have fields: only pending ones can
                // have been deleted.
                let Some(fields) = fields else { continue };
                let (seq, item) = self.work_item(&id, &fields)?;
                taken.push(Delivery {
                    id,
                    seq,
                    item,
                    deliveries: 1,
                });
            }
        }
        Ok(taken)
    }

    /// XAUTOCLAIM through the CLAIM script, from this consumer's cursor.
    async fn reclaim(&self, job: &Job, consumer: &str, max: usize) -> Result<Vec<Delivery>> {
        let key = (job.name().to_owned(), consumer.to_owned());
        let cursor = self
            .state()
            .claim_cursor
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "0-0".to_owned());
        let reply: Value = scripts::CLAIM
            .key(job.work())
            .arg(consumer)
            .arg(u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(&cursor)
            .arg(max)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))?;
        let mut parts = array(reply)
            .ok_or_else(|| self.unexpected("XAUTOCLAIM"))?
            .into_iter();
        let next = parts
            .next()
            .and_then(|v| text(&v))
            .ok_or_else(|| self.unexpected("XAUTOCLAIM"))?;
        self.state().claim_cursor.insert(key, next);
        let mut claimed = Vec::new();
        for entry in parts {
            let mut entry = array(entry)
                .ok_or_else(|| self.unexpected("XAUTOCLAIM"))?
                .into_iter();
            let (Some(id), Some(fields), Some(count)) = (entry.next(), entry.next(), entry.next())
            else {
                return Err(self.unexpected("XAUTOCLAIM"));
            };
            let id = text(&id).ok_or_else(|| self.unexpected("XAUTOCLAIM"))?;
            let fields = pairs(fields).ok_or_else(|| self.unexpected("XAUTOCLAIM"))?;
            let (seq, item) = self.work_item(&id, &fields)?;
            let deliveries = uint(&count).ok_or_else(|| self.unexpected("XPENDING"))?;
            claimed.push(Delivery {
                id,
                seq,
                item,
                deliveries,
            });
        }
        Ok(claimed)
    }

    /// Tells the job `consumer` is still working on `ids`, so they are not
    /// claimed by others; returns those of `ids` it still holds (one
    /// missing was claimed by another worker: its result will be refused).
    pub async fn touch(&self, job: &Job, consumer: &str, ids: &[String]) -> Result<Vec<String>> {
        self.held_ids(&scripts::TOUCH, "TOUCH", job, consumer, ids)
            .await
    }

    /// Gives the entries `ids` still held by `consumer` back to the job at
    /// once (a worker stopping with work it will not finish): the next
    /// `take` of any worker claims them, with the delivery count they had
    /// before `consumer` was handed them (a release is not a delivery that
    /// failed). Returns the ids given back (those given back already are
    /// left as they are, and not returned).
    pub async fn release(&self, job: &Job, consumer: &str, ids: &[String]) -> Result<Vec<String>> {
        self.held_ids(&scripts::RELEASE, "RELEASE", job, consumer, ids)
            .await
    }

    /// Runs `script` (TOUCH or RELEASE) on the entries of `ids` that
    /// `consumer` holds, and returns them.
    async fn held_ids(
        &self,
        script: &redis::Script,
        name: &str,
        job: &Job,
        consumer: &str,
        ids: &[String],
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = script.key(job.work());
        call.arg(consumer).arg(ids);
        let reply: Value = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))?;
        array(reply)
            .ok_or_else(|| self.unexpected(name))?
            .iter()
            .map(|v| text(v).ok_or_else(|| self.unexpected(name)))
            .collect()
    }

    /// The IDs of up to `max` work entries pending for `consumer`: handed
    /// to it and neither completed nor claimed by another since. A worker
    /// holds them all, unless a reply that handed it some was lost with
    /// the connection.
    pub async fn pending(&self, job: &Job, consumer: &str, max: usize) -> Result<Vec<String>> {
        let reply: Value = redis::cmd("XPENDING")
            .arg(job.work())
            .arg("workers")
            .arg("-")
            .arg("+")
            .arg(max)
            .arg(consumer)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))?;
        array(reply)
            .ok_or_else(|| self.unexpected("XPENDING"))?
            .into_iter()
            .map(|entry| {
                array(entry)
                    .and_then(|fields| fields.first().and_then(text))
                    .ok_or_else(|| self.unexpected("XPENDING"))
            })
            .collect()
    }

    /// Publishes the result of the entry `id` (seq `seq`), acknowledges and
    /// removes the entry, counts the page done or failed, and queues the
    /// `found` links not yet seen, all at once, if and only if the entry is
    /// still pending for `consumer`. So a result exists iff its work was
    /// acknowledged, and each page is published at most once.
    #[allow(clippy::too_many_arguments)] // Each is one field of the step.
    pub async fn complete(
        &self,
        job: &Job,
        consumer: &str,
        id: &str,
        seq: u64,
        payload: &[u8],
        failed: bool,
        found: &[WorkItem],
    ) -> Result<Completion> {
        let reply = self
            .invoke_sized(job, |buckets| {
                let mut call = scripts::COMPLETE.key(job.meta());
                call.key(job.work())
                    .key(job.results())
                    .arg(buckets)
                    .arg(id)
                    .arg(consumer)
                    .arg(seq)
                    .arg(payload)
                    .arg(if failed { "1" } else { "0" });
                add_items(&mut call, job, buckets, found);
                call
            })
            .await?;
        let mut parts = array(reply)
            .ok_or_else(|| self.unexpected("COMPLETE"))?
            .into_iter();
        match parts.next().as_ref().and_then(uint) {
            Some(0) => Ok(Completion::NotOwner),
            Some(1) => {
                let seqs = parts.next().ok_or_else(|| self.unexpected("COMPLETE"))?;
                let seqs = self.seqs(seqs, found.len())?;
                Ok(Completion::Applied {
                    added: seqs.iter().flatten().count(),
                })
            }
            _ => Err(self.unexpected("COMPLETE")),
        }
    }

    /// How many results wait in the results stream (published, not yet
    /// acknowledged by the collector).
    pub async fn results_len(&self, job: &Job) -> Result<u64> {
        redis::cmd("XLEN")
            .arg(job.results())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))
    }

    /// Waits while more than `bound` results wait, polling with a growing
    /// pause, for at most `max_wait`; returns whether there is room. Keeps
    /// Redis's memory bounded when the collector falls behind.
    pub async fn wait_for_room(&self, job: &Job, bound: u64, max_wait: Duration) -> Result<bool> {
        let deadline = Instant::now() + max_wait;
        let mut pause = Duration::from_millis(10);
        loop {
            if self.results_len(job).await? <= bound {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Hands the collector `consumer` up to `max` results: first those it
    /// was handed before and never acknowledged (a restarted collector
    /// sees what it read but did not write), then new ones, waiting up to
    /// `block` (at most [`MAX_BLOCK`]) for one. After a call that found
    /// nothing new, or failed, the next starts again with those never
    /// acknowledged, so that none is left behind by a reply lost with the
    /// connection: acknowledge what was handed before reading on. Use one
    /// fixed consumer name per collector, so a restarted one finds its
    /// own.
    pub async fn read_results(
        &self,
        job: &Job,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<ResultEntry>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let key = (job.name().to_owned(), consumer.to_owned());
        let history = self
            .state()
            .history
            .get(&key)
            .cloned()
            .unwrap_or_else(|| History::After("0".to_owned()));
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg("collect")
            .arg(consumer)
            .arg("COUNT")
            .arg(max);
        if let History::After(after) = history {
            let reply = self
                .read_group(job, read.clone(), Duration::ZERO, job.results(), &after)
                .await?;
            match reply.last() {
                Some((last, _)) => {
                    let next = History::After(last.clone());
                    self.state().history.insert(key, next);
                    return self.result_entries(job, reply).await;
                }
                None => {
                    self.state().history.insert(key.clone(), History::Done);
                }
            }
        }
        let reply = self.read_group(job, read, block, job.results(), ">").await;
        if !matches!(&reply, Ok(entries) if !entries.is_empty()) {
            // A read whose reply was lost with the connection (or whose
            // caller gave up on it) left its entries pending for this
            // consumer, and only a read of its own pending entries hands
            // them over: the next call starts there again.
            self.state()
                .history
                .insert(key, History::After("0".to_owned()));
        }
        self.result_entries(job, reply?).await
    }

    /// Acknowledges and removes results the collector has written durably.
    pub async fn ack_results(&self, job: &Job, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(job.results())
            .arg("collect")
            .arg(ids)
            .cmd("XDEL")
            .arg(job.results())
            .arg(ids)
            .exec_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))
    }

    /// The job's counts, read at one instant.
    pub async fn status(&self, job: &Job) -> Result<JobStatus> {
        let reply: Value = scripts::STATUS
            .key(job.meta())
            .key(job.work())
            .key(job.results())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))?;
        let bad = || self.unexpected("STATUS");
        let mut parts = array(reply).ok_or_else(bad)?.into_iter();
        let (Some(meta), Some(work_len), Some(pending), Some(results_len)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let meta = pairs(meta).ok_or_else(bad)?;
        let field = |name: &str| -> Result<u64> {
            let value = lookup(&meta, name).ok_or_else(bad)?;
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)
        };
        let work_len = uint(&work_len).ok_or_else(bad)?;
        let in_flight = uint(&pending).ok_or_else(bad)?;
        Ok(JobStatus {
            // Entries leave the stream when completed, so the pending ones
            // are part of its length.
            queued: work_len.saturating_sub(in_flight),
            in_flight,
            done: field("done")?,
            failed: field("failed")?,
            direct: field("direct")?,
            results_waiting: uint(&results_len).ok_or_else(bad)?,
            closed: field("closed")? == 1,
            enqueued: field("enqueued")?,
            buckets: u32::try_from(field("buckets")?).map_err(|_| bad())?,
            // Jobs made before it was recorded have none.
            created: lookup(&meta, "created")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default(),
        })
    }

    /// Takes or renews the collector's lease on `job` for `ttl`, for the
    /// collector `token`; `Some(holder)` when another collector holds it.
    pub async fn lease(&self, job: &Job, token: &str, ttl: Duration) -> Result<Option<String>> {
        let holder: String = scripts::LEASE
            .key(job.collector())
            .arg(token)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))?;
        Ok((!holder.is_empty()).then_some(holder))
    }

    /// Gives up the collector's lease, if `token` holds it.
    pub async fn end_lease(&self, job: &Job, token: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let holder: Option<String> = redis::cmd("GET")
            .arg(job.collector())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(job, e))?;
        if holder.as_deref() == Some(token) {
            redis::cmd("DEL")
                .arg(job.collector())
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| self.error(job, e))?;
        }
        Ok(())
    }

    /// Every job in this Redis with its status, by name.
    pub async fn jobs(&self) -> Result<Vec<(Job, JobStatus)>> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(JOBS_KEY)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.redis_error(&e))?;
        names.sort();
        let mut jobs = Vec::with_capacity(names.len());
        for name in names {
            // Only names this module wrote are listed; skip any other.
            let Ok(job) = Job::new(&name) else { continue };
            match self.status(&job).await {
                Ok(status) => jobs.push((job, status)),
                // Listed but not (or no longer) created: nothing to show.
                Err(QueueError::NoSuchJob(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(jobs)
    }

    /// Removes every key of the job. Refused unless the job is finished
    /// (closed, no work, no results waiting), or `force` is given.
    pub async fn delete(&self, job: &Job, force: bool) -> Result<()> {
        let mut conn = self.conn.clone();
        let status = self.status(job).await?;
        if !force && !status.finished() {
            return Err(QueueError::NotFinished {
                job: job.name().to_owned(),
                status: status.to_string(),
            });
        }
        // The meta hash goes last: a delete cut short can be run again,
        // since it still finds the bucket count.
        let buckets = u64::from(status.buckets);
        let mut start = 0;
        while start < buckets {
            let end = (start + DELETE_SLICE).min(buckets);
            let keys: Vec<String> = (start..end).map(|b| job.seen(b)).collect();
            redis::cmd("UNLINK")
                .arg(keys)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| self.error(job, e))?;
            start = end;
        }
        redis::cmd("UNLINK")
            .arg(job.work())
            .arg(job.results())
            .arg(job.collector())
            .arg(job.meta())
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(job, e))?;
        redis::cmd("SREM")
            .arg(JOBS_KEY)
            .arg(job.name())
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error(job, e))?;
        let mut state = self.state();
        state.buckets.remove(job.name());
        state.claim_cursor.retain(|(name, _), _| name != job.name());
        state.history.retain(|(name, _), _| name != job.name());
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The job's bucket count, read once and remembered.
    async fn buckets(&self, job: &Job) -> Result<u32> {
        if let Some(&buckets) = self.state().buckets.get(job.name()) {
            return Ok(buckets);
        }
        let buckets: Option<u32> = redis::cmd("HGET")
            .arg(job.meta())
            .arg("buckets")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| self.error(job, e))?;
        let buckets = buckets.ok_or_else(|| QueueError::NoSuchJob(job.name().to_owned()))?;
        self.state().buckets.insert(job.name().to_owned(), buckets);
        Ok(buckets)
    }

    /// Runs a script that places URLs in the seen-set, built for the job's
    /// bucket count; once more if the job was created anew with another
    /// count since it was remembered (the script refuses before writing).
    async fn invoke_sized(
        &self,
        job: &Job,
        build: impl Fn(u32) -> ScriptInvocation<'static>,
    ) -> Result<Value> {
        let buckets = self.buckets(job).await?;
        match build(buckets).invoke_async(&mut self.conn.clone()).await {
            Err(e) if e.code() == Some("BUCKETS") => {
                self.state().buckets.remove(job.name());
                let buckets = self.buckets(job).await?;
                build(buckets)
                    .invoke_async(&mut self.conn.clone())
                    .await
                    .map_err(|e| self.error(job, e))
            }
            reply => reply.map_err(|e| self.error(job, e)),
        }
    }

    /// XREADGROUP `read` … STREAMS `key` `from`, blocking up to `block`
    /// (on the blocking connection) when it is not zero.
    async fn read_group(
        &self,
        job: &Job,
        mut read: redis::Cmd,
        block: Duration,
        key: String,
        from: &str,
    ) -> Result<Vec<Entry>> {
        let block = block.min(MAX_BLOCK);
        let mut conn = if block.is_zero() {
            self.conn.clone()
        } else {
            // BLOCK 0 would wait for ever: a wait under 1 ms is 1 ms.
            let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
            read.arg("BLOCK").arg(ms);
            self.blocking.clone()
        };
        read.arg("STREAMS").arg(key).arg(from);
        let reply: Value = read
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(job, e))?;
        stream_entries(reply).ok_or_else(|| self.unexpected("XREADGROUP"))
    }

    /// Results from read entries; entries deleted while pending (which this
    /// module never leaves) are acknowledged and passed over.
    async fn result_entries(&self, job: &Job, entries: Vec<Entry>) -> Result<Vec<ResultEntry>> {
        let mut results = Vec::with_capacity(entries.len());
        let mut gone = Vec::new();
        for (id, fields) in entries {
            let Some(fields) = fields else {
                gone.push(id);
                continue;
            };
            let bad = || self.unexpected_entry("result", &id);
            let seq = lookup(&fields, "seq")
                .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                .ok_or_else(bad)?;
            let payload = lookup(&fields, "data").ok_or_else(bad)?.to_vec();
            results.push(ResultEntry { id, seq, payload });
        }
        self.ack_results(job, &gone).await?;
        Ok(results)
    }

    /// A work item from its stream entry's fields.
    fn work_item(&self, id: &str, fields: &[(Vec<u8>, Vec<u8>)]) -> Result<(u64, WorkItem)> {
        let bad = || self.unexpected_entry("work", id);
        let string = |name| {
            lookup(fields, name)
                .and_then(|v| String::from_utf8(v.to_vec()).ok())
                .ok_or_else(bad)
        };
        let seq = string("seq")?.parse().map_err(|_| bad())?;
        let url = string("url")?;
        let item = WorkItem {
            // Needed only to enqueue; the work stream keeps the URL.
            identity: None,
            depth: string("depth")?.parse().map_err(|_| bad())?,
            seed: match lookup(fields, "seed") {
                Some(_) => string("seed")?,
                None => url.clone(),
            },
            url,
            referrer: match lookup(fields, "referrer") {
                Some(_) => Some(string("referrer")?),
                None => None,
            },
        };
        Ok((seq, item))
    }

    /// A script's list of seqs, 0 meaning none, as `len` options.
    fn seqs(&self, reply: Value, len: usize) -> Result<Vec<Option<u64>>> {
        let seqs: Option<Vec<Option<u64>>> = array(reply).and_then(|items| {
            items
                .iter()
                .map(|v| uint(v).map(|seq| (seq != 0).then_some(seq)))
                .collect()
        });
        seqs.filter(|s| s.len() == len)
            .ok_or_else(|| self.unexpected("a script"))
    }

    /// A Redis error in the job's context: its own codes become their
    /// variants.
    fn error(&self, job: &Job, err: RedisError) -> QueueError {
        let code = err.code().unwrap_or_default();
        // NOGROUP: the job's streams (and so its groups) are gone.
        if code == "NOJOB" || code == "NOGROUP" {
            return QueueError::NoSuchJob(job.name().to_owned());
        }
        if code == "CLOSED" {
            return QueueError::Closed(job.name().to_owned());
        }
        self.redis_error(&err)
    }

    fn redis_error(&self, err: &RedisError) -> QueueError {
        classify(&self.shown_url, &self.secrets, err)
    }

    fn unexpected(&self, what: &str) -> QueueError {
        QueueError::Redis {
            url: self.shown_url.to_string(),
            detail: format!("unexpected reply to {what}"),
        }
    }

    fn unexpected_entry(&self, stream: &str, id: &str) -> QueueError {
        QueueError::Redis {
            url: self.shown_url.to_string(),
            detail: format!("{stream} entry {id} lacks a field or has a bad value"),
        }
    }
}

/// Appends the seen-set key and the six values (see `add_new` in the
/// scripts) of each item.
fn add_items(call: &mut ScriptInvocation<'_>, job: &Job, buckets: u32, items: &[WorkItem]) {
    for item in items {
        let (key, member) = job.seen_slot(item.identity.as_deref().unwrap_or(&item.url), buckets);
        call.key(key)
            .arg(member)
            .arg(&item.url)
            .arg(item.depth)
            // An input URL is its own seed: not stored twice.
            .arg(if item.seed == item.url {
                ""
            } else {
                &item.seed
            })
            .arg(if item.referrer.is_some() { "1" } else { "0" })
            .arg(item.referrer.as_deref().unwrap_or(""));
    }
}

/// A queue error from a Redis error: [`QueueError::Unavailable`] for what
/// passes when Redis is back (I/O, timeouts, a server still loading its
/// data or failing over), [`QueueError::Redis`] for the rest. The message
/// is one line with the secrets masked.
fn classify(shown_url: &str, secrets: &[String], err: &RedisError) -> QueueError {
    let mut detail = crate::output::one_line(&err.to_string()).into_owned();
    for secret in secrets {
        detail = detail.replace(secret.as_str(), "***");
    }
    let url = shown_url.to_owned();
    let passing = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if passing {
        QueueError::Unavailable { url, detail }
    } else {
        let detail = in_plain_words(err).map_or(detail, str::to_owned);
        QueueError::Redis { url, detail }
    }
}

/// What the commonest refusals mean, in the user's words rather than the
/// client library's.
fn in_plain_words(err: &RedisError) -> Option<&'static str> {
    let code = err.code().unwrap_or_default();
    Some(match err.kind() {
        ErrorKind::AuthenticationFailed => "the password was refused",
        ErrorKind::InvalidClientConfig => {
            "not a Redis URL this can use (see --redis in --help; a password with # or other \
             reserved characters must be percent-encoded)"
        }
        ErrorKind::Parse => "the server there does not speak the Redis protocol",
        _ if code == "NOAUTH" => {
            "the server needs a password: give it in the URL, before the host (see --redis in \
             --help)"
        }
        _ if code == "WRONGPASS" => "the password was refused",
        _ if code == "UNBLOCKED" => "the job was deleted while this waited on it",
        _ if code == "OOM" => {
            "Redis is out of memory (its maxmemory): collect results, or delete finished jobs"
        }
        _ => return None,
    })
}

/// What tells this creation of a job from an earlier one of the same
/// name (deleted, or lost with a Redis that kept no data): when, and a
/// random part.
fn creation_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}-{:016x}", fastrand::u64(..))
}

/// The Redis URL as messages and files show it: user info masked
/// (`redis://***@host/`), and a Unix socket URL's `pass=` and `password=`
/// too.
pub fn shown(url: &str) -> String {
    let masked = crate::output::without_password(url);
    match url::Url::parse(&masked) {
        Ok(mut parsed)
            if parsed
                .query_pairs()
                .any(|(k, _)| k == "pass" || k == "password") =>
        {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "pass" || k == "password" {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
            parsed.to_string()
        }
        _ => masked.into_owned(),
    }
}

/// The URL's password, as written and percent-decoded: text never to show.
fn secrets(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let written = parsed.password().map(str::to_owned).into_iter().chain(
        parsed
            .query_pairs()
            .filter(|(k, _)| k == "pass" || k == "password")
            .map(|(_, v)| v.into_owned()),
    );
    let mut secrets = Vec::new();
    for secret in written.filter(|s| !s.is_empty()) {
        let decoded = percent_encoding::percent_decode_str(&secret)
            .decode_utf8_lossy()
            .into_owned();
        if decoded != secret {
            secrets.push(decoded);
        }
        secrets.push(secret);
    }
    // Longest first, so a password containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// A stream entry: its ID and fields (none when the entry was deleted
/// while pending).
type Entry = (String, Option<Vec<(Vec<u8>, Vec<u8>)>>);

/// The entries of a one-stream XREADGROUP reply (none on a timeout), in
/// RESP2's array form or RESP3's map form.
fn stream_entries(reply: Value) -> Option<Vec<Entry>> {
    let streams: Vec<Value> = match reply {
        Value::Nil => return Some(Vec::new()),
        Value::Map(map) => map.into_iter().map(|(_, entries)| entries).collect(),
        other => array(other)?
            .into_iter()
            .map(|stream| array(stream)?.into_iter().nth(1))
            .collect::<Option<_>>()?,
    };
    let mut entries = Vec::new();
    for stream in streams {
        for entry in array(stream)? {
            let mut entry = array(entry)?.into_iter();
            let id = text(&entry.next()?)?;
            let fields = match entry.next() {
                None | Some(Value::Nil) => None,
                Some(fields) => Some(pairs(fields)?),
            };
            entries.push((id, fields));
        }
    }
    Some(entries)
}

/// A flat field-value list (or a map) as byte pairs.
fn pairs(value: Value) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    match value {
        Value::Map(map) => map
            .into_iter()
            .map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
            .collect(),
        other => {
            let items = array(other)?;
            if items.len() % 2 != 0 {
                return None;
            }
            let mut out = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                out.push((bytes(k)?, bytes(v)?));
            }
            Some(out)
        }
    }
}

fn lookup<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

fn array(value: Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A non-negative integer, sent as an integer or as its digits.
fn uint(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_shown_without_secrets() {
        assert_eq!(
            shown("redis://:s3cret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(shown("redis://host/"), "redis://host/");
        assert_eq!(
            shown("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(secrets("redis://:p%40ss@host/"), ["p%40ss", "p@ss"]);
        assert!(secrets("redis://host/").is_empty());
    }

    #[test]
    fn stream_replies() {
        let entry =
            |id: &str, fields: Value| Value::Array(vec![Value::BulkString(id.into()), fields]);
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"k".to_vec()),
            Value::Array(vec![
                entry(
                    "1-0",
                    Value::Array(vec![
                        Value::BulkString(b"seq".to_vec()),
                        Value::BulkString(b"7".to_vec()),
                    ]),
                ),
                entry("2-0", Value::Nil),
            ]),
        ])]);
        let entries = stream_entries(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            lookup(entries[0].1.as_ref().unwrap(), "seq"),
            Some(&b"7"[..])
        );
        assert!(entries[1].1.is_none());
        assert!(stream_entries(Value::Nil).unwrap().is_empty());
    }
}
