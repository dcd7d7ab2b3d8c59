//! `scriptscrape collect`: a job's results from Redis into the same files
//! a local run writes.
//!
//! Results are read through the `collect` group, written whole, made
//! durable, and only then acknowledged, so a kill between the write and
//! the acknowledgement leaves them pending: a restarted collector
//! (`--resume`) reads them again and skips those its `.part` files already
//! hold. Each page is thus written exactly once, whatever is killed when.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use super::retry::{retry, until_job_exists};
use super::{Job, Queue, QueueOptions, wire};
use crate::config::Config;
use crate::error::ErrorKind;
use crate::output::PageResult;
use crate::pipeline::{Prepared, finish_output, log_page, write_stats};
use crate::run::report::Summary;
use crate::run::resume::Done;
use crate::run::stop::{Level, Stop};
use crate::run::terminal::Progress;
use crate::seen::HashSet64;

/// The collector's name in the job's `collect` group: one fixed name, so
/// that a restarted collector finds the results it read but did not
/// acknowledge.
const CONSUMER: &str = "collector";

/// Results read in one step.
const BATCH: usize = 500;

/// How long one read waits for results before the job's state is checked.
const WAIT: Duration = Duration::from_secs(2);

/// Writes the job's results to the configured outputs until the job is
/// finished (closed, drained, every result written) or `stop` says so.
/// The summary and exit status are a local run's.
pub fn collect(
    config: &Config,
    redis: &str,
    job: &Job,
    stop: &Stop,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let queue = runtime.block_on(retry("connecting", stop, Level::Draining, || {
        Queue::connect(redis, QueueOptions::default())
    }))?;
    let stopped = || Summary {
        stopped: stop.cause(),
        elapsed: started.elapsed(),
        ..Summary::default()
    };
    if !runtime.block_on(until_job_exists(&queue, job, stop))? {
        return Ok(stopped());
    }
    let status = runtime.block_on(retry("reading the job", stop, Level::Draining, || {
        queue.status(job)
    }))?;
    let config = &Config {
        job: Some(format!(
            "job {} (created {}) at {}",
            job.name(),
            status.created,
            queue.shown_url()
        )),
        ..config.clone()
    };
    check_start(config, job, &status)?;
    let token = lease_token(config);
    let lease = || async {
        match retry(
            "taking the collector's lease",
            stop,
            Level::Draining,
            || queue.lease(job, &token, LEASE),
        )
        .await?
        {
            None => Ok(()),
            Some(holder) => Err(anyhow::anyhow!(
                "job {:?} is being collected by another collector ({holder}): one collector a \
                 job; wait for it, or stop it",
                job.name()
            )),
        }
    };
    runtime.block_on(lease())?;
    let Some((prepared, ())) = Prepared::outputs(config, stop, || Ok(()))? else {
        return Ok(stopped());
    };
    let Prepared {
        _locks,
        mut sink,
        run_id_file,
        done,
        carried,
    } = prepared;
    let mut written = Written::new(done);
    let mut summary = Summary::default();
    let mut said_no_text = false;
    // As a local run: with --pages the report holds every failure (and -v
    // logs them); without it, the log is the only place to see one.
    let failures_at = if config.pages.is_none() {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let complete = runtime.block_on(async {
        loop {
            if stop.level() >= Level::Draining {
                return Ok::<_, anyhow::Error>(false);
            }
            lease().await?;
            let entries = tokio::select! {
                read = retry("reading results", stop, Level::Draining, || {
                    queue.read_results(job, CONSUMER, BATCH, WAIT)
                }) => read?,
                () = stop.reached(Level::Draining) => return Ok(false),
            };
            if entries.is_empty() {
                let status = retry("reading the job", stop, Level::Draining, || {
                    queue.status(job)
                })
                .await?;
                if status.finished() {
                    return Ok(true);
                }
                continue;
            }
            let mut ids = Vec::with_capacity(entries.len());
            for entry in entries {
                let page = wire::decode(entry.seq, &entry.payload).map_err(|why| {
                    anyhow::anyhow!("a result of job {:?} cannot be read: {why}", job.name())
                })?;
                if written.first_time(&page) {
                    let page = numbered(page);
                    log_page(&page, failures_at);
                    if config.inline_text && !said_no_text && lacks_text(&page) {
                        tracing::warn!(
                            "warning: --inline-text: the workers did not keep the text of \
                             inline scripts (give them --inline-text too); the column is empty"
                        );
                        said_no_text = true;
                    }
                    match sink.write_page(&page) {
                        // The reader went away (| head): as a local run,
                        // not an error; what was not written stays in
                        // Redis, unacknowledged.
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            summary.output_closed = true;
                            return Ok(false);
                        }
                        other => other?,
                    }
                    summary.record(&page);
                    if let Some(progress) = progress {
                        progress.page_written(page.outcome.is_err());
                    }
                } else {
                    summary.duplicates += 1;
                }
                ids.push(entry.id);
            }
            // Durable before acknowledged: a result is either in the files
            // or still pending in Redis, whatever is killed when.
            sink.sync()?;
            retry("acknowledging results", stop, Level::Now, || {
                queue.ack_results(job, &ids)
            })
            .await?;
        }
    })?;
    // Best effort: an expired lease is as good as a given-up one.
    let _ = runtime.block_on(queue.end_lease(job, &token));
    if summary.output_closed {
        finish_output(sink.keep_partial(), &mut summary)?;
    } else if complete {
        finish_output(sink.finish(), &mut summary)?;
        if !summary.output_closed
            && let Some(file) = &run_id_file
        {
            // The outputs are final: nothing is left to resume.
            let _ = std::fs::remove_file(file);
        }
    } else {
        summary.stopped = stop.cause();
        finish_output(sink.keep_partial(), &mut summary)?;
    }
    summary.carry(&carried);
    summary.elapsed = started.elapsed();
    write_stats(config, &summary, started_at)?;
    Ok(summary)
}

/// How long the collector's lease lasts without renewal: a collector
/// killed leaves the job to another after this; the same collector (the
/// same outputs on the same machine) takes it back at once.
const LEASE: Duration = Duration::from_secs(15);

/// A collector's token: its machine and its outputs, so that a restarted
/// collector is the same one and another is not.
fn lease_token(config: &Config) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let output = |d: &crate::output::Destination| match d {
        crate::output::Destination::File(p) => crate::output::real_path(p).display().to_string(),
        crate::output::Destination::Stdout => "-".to_owned(),
    };
    let pages = config.pages.as_ref().map(output).unwrap_or_default();
    format!("{host}:{} {pages}", output(&config.output))
}

/// Refuses a start that would lose or replace written pages: a job with
/// nothing left to collect (its outputs were written already), or an
/// unfinished collect of this job's `.part` files left without `--resume`
/// (their pages are no longer in Redis).
fn check_start(config: &Config, job: &Job, status: &super::JobStatus) -> anyhow::Result<()> {
    let pages_part = match &config.pages {
        Some(crate::output::Destination::File(p)) => crate::output::staged_part(p)?,
        _ => None,
    };
    let left = pages_part.filter(|part| {
        crate::run::resume::RunId::of(config).same_inputs_as_left_in(part) && part.exists()
    });
    match left {
        Some(part) if !config.resume => anyhow::bail!(
            "{} holds pages of an unfinished collect of job {:?}, which are no longer in \
             Redis: add --resume to keep them (or remove it to drop them)",
            part.display(),
            job.name()
        ),
        None if status.finished() => anyhow::bail!(
            "job {:?} has nothing left to collect: its results were all written by an earlier \
             collect (scriptscrape jobs --delete {} when done with it)",
            job.name(),
            job.name()
        ),
        _ => Ok(()),
    }
}

/// Whether a page has an inline script whose text was not kept.
fn lacks_text(page: &PageResult) -> bool {
    page.outcome.as_ref().is_ok_and(|scripts| {
        scripts
            .iter()
            .any(|s| s.inline.as_ref().is_some_and(|i| i.text.is_none()))
    })
}

/// A found page's result counts as found, not listed, as in a local
/// crawl: its seq goes past [`crate::schedule::FIRST_FOUND_SEQ`].
fn numbered(mut page: PageResult) -> PageResult {
    if page.depth > 0 {
        page.seq = page.seq.saturating_add(crate::schedule::FIRST_FOUND_SEQ);
    }
    page
}

/// The pages in the outputs: those an interrupted collector wrote
/// (`--resume`) and those written since, keyed as `--resume` keys them.
struct Written {
    earlier: Done,
    now: HashSet64,
}

impl Written {
    fn new(earlier: Option<Done>) -> Self {
        Written {
            earlier: earlier.unwrap_or_default(),
            now: HashSet64::default(),
        }
    }

    /// Whether `page` is not in the outputs yet; marks it written.
    fn first_time(&mut self, page: &PageResult) -> bool {
        let invalid = matches!(&page.outcome, Err(e) if e.kind == ErrorKind::InvalidUrl);
        let key = if invalid {
            self.earlier.key(None, &page.page_url)
        } else {
            self.earlier.key(Some(&page.page_url), &page.page_url)
        };
        !self.earlier.contains(key) && self.now.insert(key)
    }
}
