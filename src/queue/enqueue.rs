//! `scriptscrape enqueue`: a job's URLs into its shared queue.
//!
//! Lines are read as a local run reads them (same validation, same
//! duplicate check within the input), then each URL goes through the
//! job-wide seen-set, in its crawl identity ([`normalize`]), so that a
//! URL listed twice, in two `enqueue` runs or found later as a link, is
//! fetched once. A line that is not a URL becomes its `invalid_url` result
//! at once: every input line is accounted for in the job's page report.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::retry::retry;
use super::{Job, JobOptions, Queue, QueueOptions, WorkItem, wire};
use crate::crawl::normalize::{Glob, normalize};
use crate::error::{ErrorKind, PageError};
use crate::input::{self, InputLine, Source};
use crate::output::{PageResult, without_password};
use crate::run::stop::{Level, Stop};

/// Lines sent to Redis in one step.
const BATCH: usize = 1000;

/// What `enqueue` is asked to do, checked.
#[derive(Clone, Debug)]
pub struct EnqueueConfig {
    /// The Redis URL (its password is never shown).
    pub redis: String,
    /// The job.
    pub job: Job,
    /// URL lists, read in order; none with `close` alone.
    pub sources: Vec<Source>,
    /// `--strip-query`, applied before the job-wide seen-check.
    pub strip_query: Vec<Glob>,
    /// Close the job once the inputs are in.
    pub close: bool,
    /// URLs the job is expected to hold, to size its seen-set.
    pub expect: Option<u64>,
}

/// What `enqueue` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// URLs new to the job, now queued.
    pub added: u64,
    /// URLs the job had already (from an earlier enqueue or a crawl).
    pub known: u64,
    /// Lines repeated within these inputs.
    pub duplicates: u64,
    /// Lines that are not URLs, published as invalid_url results.
    pub invalid: u64,
    /// Whether the job was created by this run.
    pub created: bool,
    /// Whether the job is now closed.
    pub closed: bool,
    /// Stopped by a signal before the inputs were all read.
    pub stopped: bool,
}

impl std::fmt::Display for Enqueued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} URLs queued, {} already in the job, {} duplicate lines skipped, \
             {} invalid lines (as invalid_url results)",
            self.added, self.known, self.duplicates, self.invalid
        )?;
        if self.created {
            f.write_str("; job created")?;
        }
        if self.closed {
            f.write_str("; job closed")?;
        }
        if self.stopped {
            f.write_str("; stopped before the end of the input")?;
        }
        Ok(())
    }
}

/// Adds the inputs' URLs to the job, then closes it if asked.
pub fn enqueue(config: &EnqueueConfig, stop: &Stop) -> anyhow::Result<Enqueued> {
    let sources = input::open_sources(&config.sources)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (tx, rx) = mpsc::channel::<InputLine>(BATCH * 2);
    let duplicates = Arc::new(AtomicU64::new(0));
    let reader = std::thread::Builder::new()
        .name("scriptscrape-input".into())
        .spawn({
            let duplicates = Arc::clone(&duplicates);
            move || {
                let other = AtomicU64::new(0);
                input::read_lines(sources, None, None, &duplicates, &other, |line| {
                    tx.blocking_send(line).is_ok()
                })
            }
        })
        .context("cannot start the input thread")?;
    let mut done = runtime.block_on(send_all(config, rx, stop))?;
    if !done.stopped {
        // The channel closed, so the reader has finished: joined for its
        // error, if reading failed.
        match reader.join() {
            Ok(result) => {
                result?;
            }
            Err(_) => anyhow::bail!("internal error: the input thread panicked"),
        }
    }
    done.duplicates = duplicates.load(std::sync::atomic::Ordering::Relaxed);
    Ok(done)
}

async fn send_all(
    config: &EnqueueConfig,
    mut lines: mpsc::Receiver<InputLine>,
    stop: &Stop,
) -> anyhow::Result<Enqueued> {
    let job = &config.job;
    let options = QueueOptions::default();
    let queue = retry("connecting", stop, Level::Draining, || {
        Queue::connect(&config.redis, options.clone())
    })
    .await?;
    let job_options = config
        .expect
        .map_or_else(JobOptions::default, JobOptions::sized_for);
    let mut done = Enqueued {
        created: retry("creating the job", stop, Level::Draining, || {
            queue.create_job(job, job_options)
        })
        .await?,
        ..Enqueued::default()
    };
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let read = tokio::select! {
            n = lines.recv_many(&mut batch, BATCH) => n,
            () = stop.reached(Level::Draining) => 0,
        };
        if read == 0 {
            done.stopped = stop.level() >= Level::Draining;
            break;
        }
        send_batch(
            &queue,
            job,
            &config.strip_query,
            &mut batch,
            &mut done,
            stop,
        )
        .await?;
    }
    if config.close && !done.stopped {
        retry("closing the job", stop, Level::Draining, || {
            queue.close(job)
        })
        .await?;
        done.closed = true;
    } else {
        done.closed = retry("reading the job", stop, Level::Draining, || {
            queue.status(job)
        })
        .await?
        .closed;
    }
    Ok(done)
}

/// Sends one batch of lines: URLs to the work stream, the others as
/// results.
async fn send_batch(
    queue: &Queue,
    job: &Job,
    strip_query: &[Glob],
    batch: &mut Vec<InputLine>,
    done: &mut Enqueued,
    stop: &Stop,
) -> anyhow::Result<()> {
    let mut items = Vec::with_capacity(batch.len());
    let mut invalid = Vec::new();
    for line in batch.drain(..) {
        match line.url {
            Ok(url) => {
                // Fetched and reported as listed, as a local list run
                // does (a crawling worker normalises it, as a local crawl
                // does); known in the seen-set by its crawl form.
                let identity = normalize(&url, strip_query).to_string();
                let url = url.to_string();
                items.push(WorkItem {
                    identity: (identity != url).then_some(identity),
                    seed: url.clone(),
                    url,
                    depth: 0,
                    referrer: None,
                });
            }
            Err(why) => invalid.push(wire::encode(&invalid_line(&line.raw, why))),
        }
    }
    if !items.is_empty() {
        let added = retry("queueing URLs", stop, Level::Now, || {
            queue.enqueue(job, &items)
        })
        .await?;
        let new = added.iter().flatten().count() as u64;
        done.added += new;
        done.known += items.len() as u64 - new;
    }
    if !invalid.is_empty() {
        let payloads: Vec<&[u8]> = invalid.iter().map(Vec::as_slice).collect();
        retry("adding results", stop, Level::Now, || {
            queue.add_results(job, &payloads)
        })
        .await?;
        done.invalid += invalid.len() as u64;
    }
    Ok(())
}

/// The result of a line that is not a URL, as a local run reports it.
fn invalid_line(raw: &str, why: String) -> PageResult {
    PageResult {
        seq: 0,
        page_url: without_password(raw).into_owned(),
        final_url: None,
        status: None,
        outcome: Err(PageError::new(ErrorKind::InvalidUrl, why)),
        csp: None,
        bytes: 0,
        elapsed: Duration::ZERO,
        charset: None,
        attempts: 0,
        depth: 0,
        referrer: None,
        incomplete: None,
    }
}
