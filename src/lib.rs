//! scriptscrape: fetch web pages concurrently and list every `<script>`
//! element as CSV.
//!
//! # Layout
//!
//! One module per stage of the pipeline, and one place that wires them:
//!
//! - [`input`]: reads URL lists lazily, validates lines, drops duplicates.
//! - [`schedule`]: per-host queues; which URL to fetch next, within the
//!   global and per-host limits.
//! - [`fetch`]: the HTTP client; one GET per page, bounded in time and size,
//!   with retries.
//! - [`robots`]: robots.txt rules per host (`--robots`).
//! - [`charset`]: picks the document's encoding and decodes the body.
//! - [`extract`]: a pure function from (URL, HTML) to script records.
//! - [`output`]: the scripts CSV and the page report.
//! - [`report`]: the counts, the summary line and the exit status.
//! - [`stats`]: the same figures as JSON for monitoring (`--stats`).
//! - [`pipeline`]: connects the stages with bounded channels; every bound
//!   is there.
//! - [`stop`]: asking a run to stop early (what SIGINT and SIGTERM do).
//! - [`lock`]: one run at a time per output (a lock file beside it).
//! - [`crawl`]: crawl mode (`--depth`): which links of a page are followed.
//! - [`scope`]: which discovered URLs a crawl follows.
//! - [`sitemap`]: sitemap.xml, index and text sitemaps, as crawl seeds.
//! - [`spill`]: the part of a crawl's frontier kept on disk.
//! - [`netguard`]: the addresses a crawl must not step into from a public
//!   page.
//! - [`proxy`]: which proxy each request goes through, checked at start.
//! - [`normalize`]: URL identity for crawling (one fetch per page however
//!   its links spell it).
//! - [`resume`]: continuing an interrupted run from its `.part` files.
//! - [`terminal`]: logs and the progress bar on standard error.
//! - [`diff`]: `scriptscrape diff`, what changed between two runs' outputs.
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
pub mod crawl;
pub mod diff;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod input;
pub mod lock;
pub mod netguard;
pub mod normalize;
pub mod output;
pub mod pipeline;
pub mod proxy;
pub mod queue;
pub mod report;
pub mod resume;
pub mod robots;
pub mod schedule;
pub mod scope;
pub mod sitemap;
pub mod spill;
pub mod stats;
pub mod stop;
pub mod terminal;

pub use config::Config;
pub use report::{ExitStatus, Summary};

/// Runs a whole scrape as configured and returns its summary. Page-level
/// failures are in the summary, not in the error: an `Err` means the run
/// itself could not go on (unreadable input, unwritable output).
pub fn run(config: &Config) -> anyhow::Result<Summary> {
    pipeline::run(config, &stop::Stop::new(), None)
}

/// Like [`run`], but stops early when asked through `stop` (see
/// [`stop::Stop`]), the summary then saying why and what was left undone;
/// and tells `progress` of each page written.
pub fn run_until(
    config: &Config,
    stop: &stop::Stop,
    progress: Option<std::sync::Arc<dyn terminal::Progress>>,
) -> anyhow::Result<Summary> {
    pipeline::run(config, stop, progress)
}
