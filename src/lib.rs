//! scriptscrape: fetch web pages concurrently and list every `<script>`
//! element as CSV.
//!
//! # Layout
//!
//! The pipeline's stages, each in a module of its name, and one place
//! that wires them:
//!
//! - [`input`]: reads URL lists lazily, validates lines, drops duplicates.
//! - [`schedule`]: the fetch stage: per-host queues, which URL to fetch
//!   next within the global and per-host limits, and where work comes
//!   from and found links go.
//! - [`fetch`]: the HTTP client; one GET per page, bounded in time and size,
//!   with retries.
//! - [`charset`]: picks the document's encoding and decodes the body.
//! - [`extract`]: a pure function from (URL, HTML) to script records.
//! - [`output`]: where outputs go, the scripts CSV and the page report.
//! - [`pipeline`]: connects the stages with bounded channels; every bound
//!   is there.
//!
//! Around them:
//!
//! - [`crawl`]: what a crawl (`--depth`) follows and refuses: links,
//!   scope, URL identity, robots.txt, sitemaps, private networks, and the
//!   frontier's disk spill.
//! - [`mod@run`]: the run as an operation: stopping, locking, resuming, the
//!   summary and exit status, `--stats`, and the terminal.
//! - [`seen`]: the compact set of 64-bit keys that input, crawl and
//!   resume use to remember what they have seen.
//! - [`shard`]: `--shard K/N`, which sites are this machine's part of a
//!   job split over several; input and crawl apply it.
//! - [`queue`]: a job's shared work queue on Redis (`enqueue`, `work`,
//!   `collect`, `jobs`): many workers, nothing lost when one dies.
//! - [`content`]: what the scripts are: `--fetch-scripts`, the stage that
//!   fetches each external script once and holds pages until theirs are
//!   known (between parse and write), and Subresource Integrity and the
//!   page's Content-Security-Policy as a browser checks them.
//! - [`proxy`]: which proxy each request goes through, checked at start.
//! - [`diff`]: `scriptscrape diff`, what changed between two runs' outputs.
//! - [`inventory`]: `scriptscrape inventory`, the authorisation report of a
//!   run's scripts against an allow list (CSV, JSON Lines, HTML).
//!
//! [`cli`] and [`config`] turn the command line into a checked [`Config`];
//! [`error`] holds the page-level error kinds users see in the report.
//!
//! ```no_run
//! use scriptscrape::extract::Extractor;
//! let url = url::Url::parse("https://example.com/").unwrap();
//! let scripts = Extractor::new().extract(&url, "<script src=/app.js></script>");
//! assert_eq!(scripts[0].src.as_ref().unwrap().as_str(), "https://example.com/app.js");
//! ```

pub mod charset;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod content;
pub mod crawl;
pub mod diff;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod input;
pub mod inventory;
pub mod output;
pub mod pipeline;
pub mod proxy;
pub mod queue;
pub mod render;
pub mod run;
pub mod schedule;
pub mod seen;
pub mod serve;
pub mod shard;

pub use config::Config;
pub use run::report::{ExitStatus, Summary};

/// Runs a whole scrape as configured and returns its summary. Page-level
/// failures are in the summary, not in the error: an `Err` means the run
/// itself could not go on (unreadable input, unwritable output).
pub fn run(config: &Config) -> anyhow::Result<Summary> {
    pipeline::run(config, &run::stop::Stop::new(), None)
}

/// Like [`run()`], but stops early when asked through `stop` (see
/// [`run::stop::Stop`]), the summary then saying why and what was left undone;
/// and tells `progress` of each page written.
pub fn run_until(
    config: &Config,
    stop: &run::stop::Stop,
    progress: Option<std::sync::Arc<dyn run::terminal::Progress>>,
) -> anyhow::Result<Summary> {
    pipeline::run(config, stop, progress)
}
