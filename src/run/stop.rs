//! Stopping a run early: what SIGINT and SIGTERM ask for.
//!
//! The first request drains: no new fetches start, those in flight get a
//! grace period to finish and be written, and the outputs are left as
//! `.part` files of whole rows (the run did not complete, so nothing is
//! renamed into place). A second request stops at once, after the page
//! being written. The caller decides where requests come from: the
//! `scriptscrape` binary wires them to signals, a library user to whatever
//! it likes.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

/// Why a run was asked to stop; decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (kill, systemd, a container runtime).
    Terminate,
}

impl Cause {
    /// The signal's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Interrupt => "SIGINT",
            Cause::Terminate => "SIGTERM",
        }
    }
}

/// How far stopping has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Not asked to stop.
    Running,
    /// Finish what is in flight (within the grace period), start nothing.
    Draining,
    /// Stop now.
    Now,
}

/// A handle to ask a run to stop, cheap to clone and share with a signal
/// handler thread.
#[derive(Clone, Debug)]
pub struct Stop {
    level: Arc<watch::Sender<Level>>,
    cause: Arc<OnceLock<Cause>>,
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

impl Stop {
    /// A handle for a run that has not been asked to stop.
    pub fn new() -> Self {
        Stop {
            level: Arc::new(watch::Sender::new(Level::Running)),
            cause: Arc::new(OnceLock::new()),
        }
    }

    /// Asks the run to stop: the first call drains, any later one stops at
    /// once. Returns the level reached.
    pub fn request(&self, cause: Cause) -> Level {
        let _ = self.cause.set(cause);
        let mut reached = Level::Running;
        self.level.send_modify(|level| {
            *level = match *level {
                Level::Running => Level::Draining,
                _ => Level::Now,
            };
            reached = *level;
        });
        reached
    }

    /// How far stopping has gone.
    pub fn level(&self) -> Level {
        *self.level.borrow()
    }

    /// Why the run was first asked to stop, if it was.
    pub fn cause(&self) -> Option<Cause> {
        self.cause.get().copied()
    }

    /// Resolves once stopping has reached `level`.
    pub async fn reached(&self, level: Level) {
        let mut rx = self.level.subscribe();
        // The sender lives in `self`, so the channel cannot close while
        // this waits; an error would only mean "never".
        if rx.wait_for(|l| *l >= level).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_drains_and_the_second_stops_now() {
        let stop = Stop::new();
        assert_eq!(stop.level(), Level::Running);
        assert_eq!(stop.cause(), None);
        assert_eq!(stop.request(Cause::Terminate), Level::Draining);
        assert_eq!(stop.request(Cause::Interrupt), Level::Now);
        assert_eq!(stop.level(), Level::Now);
        // The first cause decides the exit status.
        assert_eq!(stop.cause(), Some(Cause::Terminate));
    }
}
