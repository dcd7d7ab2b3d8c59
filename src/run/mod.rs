//! The run as an operation: how it is stopped, guarded, resumed, reported
//! and shown.
//!
//! - [`stop`]: asking a run to stop early (what SIGINT and SIGTERM do).
//! - [`lock`]: one run at a time per output (a lock file beside it).
//! - [`resume`]: continuing an interrupted run from its `.part` files.
//! - [`report`]: the counts, the summary line and the exit status.
//! - [`stats`]: the same figures as JSON for monitoring (`--stats`).
//! - [`terminal`]: logs and the progress bar on standard error.

pub mod lock;
pub mod report;
pub mod resume;
pub mod stats;
pub mod stop;
pub mod terminal;
