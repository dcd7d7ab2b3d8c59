//! `scriptscrape jobs`: what jobs a Redis holds, and removing one.
//!
//! Interactive, so Redis being unreachable is an error at once rather
//! than a wait.

use std::io::Write;

use anyhow::Context as _;

use super::{Job, JobStatus, Queue, QueueOptions};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Writes one line per job: its name, counts and state, under a header,
/// in columns separated by tabs (for `column -t` or a script).
pub fn list(redis: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let jobs = runtime.block_on(async {
        let queue = Queue::connect(redis, QueueOptions::default()).await?;
        queue.jobs().await
    })?;
    let mut write = || -> std::io::Result<()> {
        writeln!(
            out,
            "job\tqueued\tin_flight\tdone\tfailed\tresults_waiting\tstate"
        )?;
        for (job, status) in &jobs {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                job.name(),
                status.queued,
                status.in_flight,
                status.done,
                status.failed,
                status.results_waiting,
                state(status)
            )?;
        }
        out.flush()
    };
    match write() {
        // The reader had enough (| head): not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// A job's state in a word: `open` (more URLs may come), `closed`
/// (working), `drained` (results left to collect), `finished`.
pub fn state(status: &JobStatus) -> &'static str {
    if status.finished() {
        "finished"
    } else if status.drained() {
        "drained"
    } else if status.closed {
        "closed"
    } else {
        "open"
    }
}

/// Removes every key of job `name`; refused while it has work or results
/// left, unless `force`.
pub fn delete(redis: &str, name: &str, force: bool) -> anyhow::Result<()> {
    let job = Job::new(name)?;
    runtime()?.block_on(async {
        let queue = Queue::connect(redis, QueueOptions::default()).await?;
        queue.delete(&job, force).await
    })?;
    Ok(())
}
