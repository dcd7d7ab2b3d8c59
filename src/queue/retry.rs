//! Redis going away is a fault, not a crash: a step that finds it
//! unreachable is tried again with backoff, said once in one line, and
//! said again when Redis is back.

use std::future::Future;
use std::time::Duration;

use super::{QueueError, Result};
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

/// Whether an error means the job is gone (deleted under a running
/// worker or collector), which no retry mends.
pub fn job_gone(e: &QueueError) -> bool {
    matches!(e, QueueError::NoSuchJob(_))
}
