//! Redis going away is a fault, not a crash: a step that finds it
//! unreachable is tried again with backoff, said once in one line, and
//! said again when Redis is back.

use std::future::Future;
use std::time::Duration;

use super::{Job, Queue, QueueError, Result};
use crate::run::stop::{Level, Stop};

/// The first wait before trying again; doubled each time up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// The longest wait between two tries, so that a Redis that comes back is
/// noticed within this.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Runs `step` until it succeeds or fails for a reason retrying cannot
/// mend; while Redis is unreachable, waits and tries again, for as long as
/// it takes, unless `stop` reaches `give_up_at` (then the last error).
pub async fn retry<T, F, Fut>(what: &str, stop: &Stop, give_up_at: Level, mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = FIRST_WAIT;
    let mut said = false;
    loop {
        match step().await {
            Err(e) if e.is_retryable() => {
                if !said {
                    tracing::warn!("{e}; {what}: trying again until it is back");
                    said = true;
                }
                if stop.level() >= give_up_at {
                    return Err(e);
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.reached(give_up_at) => return Err(e),
                }
                wait = (wait * 2).min(MAX_WAIT);
            }
            other => {
                if said && other.is_ok() {
                    tracing::warn!("Redis is back; {what}: going on");
                }
                return other;
            }
        }
    }
}

/// Waits until `job` exists (a worker or collector started before
/// `enqueue` created it, as schedulers start them), saying so once;
/// false when stopped first.
pub async fn until_job_exists(queue: &Queue, job: &Job, stop: &Stop) -> Result<bool> {
    let mut said = false;
    loop {
        match retry("reading the job", stop, Level::Draining, || {
            queue.status(job)
        })
        .await
        {
            Ok(_) => return Ok(true),
            Err(QueueError::NoSuchJob(name)) => {
                if !said {
                    tracing::warn!(
                        "no job named {name:?} on {} yet: waiting for scriptscrape enqueue to \
                         create it",
                        queue.shown_url()
                    );
                    said = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stop.reached(Level::Draining) => return Ok(false),
                }
            }
            Err(e) if stop.level() >= Level::Draining && e.is_retryable() => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}
