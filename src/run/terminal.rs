//! What a run shows on standard error: logs and the progress bar.
//!
//! Logs go through `tracing`. By default only warnings and the summary
//! line are shown, as `scriptscrape: …` lines; `-v` adds one line per
//! failed page, `-vv` one per page and retry; `RUST_LOG` overrides the
//! levels (with the usual `tracing` directives), and `--log-format json`
//! writes one JSON object per event for log collectors. The progress bar
//! (indicatif) is drawn only when standard error is a terminal and
//! `--quiet` is not given; log lines are printed above it.

use std::fmt;
use std::io::{self, IsTerminal as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::input::Source;
use crate::shard::Shard;

/// The target of the end-of-run summary event: shown by default.
pub const SUMMARY_TARGET: &str = "scriptscrape::summary";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `scriptscrape: message` lines.
    #[default]
    Text,
    /// One JSON object per event (timestamp, level, message, fields).
    Json,
}

/// Told of each page as it is written, for progress displays.
pub trait Progress: Send + Sync {
    /// A page's rows were written; `failed` when it has an error.
    fn page_written(&self, failed: bool);

    /// `n` URLs wait in the queues (in a crawl, discovered but not yet
    /// fetched).
    fn queued(&self, _n: u64) {}
}

/// The levels shown: `RUST_LOG` when set, else from `-q` and `-v`.
fn filter(quiet: bool, verbose: u8) -> EnvFilter {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        return filter;
    }
    EnvFilter::new(default_directives(quiet, verbose))
}

/// Without `RUST_LOG`, only this crate's events: the libraries' own log
/// lines (rustls says "failed to verify TLS certificate" once per page,
/// without naming it) repeat what the page report and `-v` already say,
/// in their words. `-vvv`, for debugging, shows everything but the HTML
/// parser's token-by-token trace, which would copy each page into the log,
/// nonce values (a page's secret) included.
fn default_directives(quiet: bool, verbose: u8) -> String {
    match (quiet, verbose) {
        (true, _) => "off,scriptscrape=error".to_owned(),
        (false, 0) => format!("off,scriptscrape=warn,{SUMMARY_TARGET}=info"),
        (false, 1) => "off,scriptscrape=info".to_owned(),
        (false, 2) => "off,scriptscrape=debug".to_owned(),
        (false, _) => "trace,html5ever=info,markup5ever=info".to_owned(),
    }
}

/// Installs the log subscriber and, when stderr is a terminal and not
/// quiet, a progress bar over `sources` (the lines of `shard`, with one).
/// Returns the bar's handle, to pass to the run and to finish at the end.
pub fn init(
    quiet: bool,
    verbose: u8,
    format: LogFormat,
    sources: &[Source],
    crawl: bool,
    shard: Option<Shard>,
) -> Option<Arc<Bar>> {
    let bar =
        (!quiet && io::stderr().is_terminal()).then(|| Arc::new(Bar::new(sources, crawl, shard)));
    install(
        quiet,
        verbose,
        format,
        BarWriter(bar.as_ref().map(|b| b.bar.clone())),
    );
    bar
}

/// Logs on standard error, without a progress bar: for commands whose
/// progress is not a count of input lines (the queue's).
pub fn init_logs(quiet: bool, verbose: u8, format: LogFormat) {
    install(quiet, verbose, format, BarWriter(None));
}

fn install(quiet: bool, verbose: u8, format: LogFormat, writer: BarWriter) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(quiet, verbose))
        .with_writer(writer);
    // A second subscriber (a library user's) wins: ours is only a default.
    let _ = match format {
        LogFormat::Text => builder.event_format(CliFormat).try_init(),
        LogFormat::Json => builder.event_format(JsonFormat).try_init(),
    };
}

/// The text format: `scriptscrape: message key=value…`, with the level
/// named for errors and for debug and trace lines, and control characters
/// in the message escaped (`\t`, `\r`, `\x1b`).
struct CliFormat;

impl<S, N> FormatEvent<S, N> for CliFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "scriptscrape: ")?;
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "error: ")?,
            Level::DEBUG => write!(writer, "debug: ")?,
            Level::TRACE => write!(writer, "trace: ")?,
            Level::WARN | Level::INFO => {}
        }
        // One event, one line: a tab or carriage return from an input line
        // (or anything else a message quotes) is written as an escape, so
        // that it cannot overwrite the line on a terminal or start a line
        // of its own. Formatted without ANSI styles, which would be
        // escaped too.
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        writeln!(writer, "{}", crate::output::one_line(&message))
    }
}

/// The JSON format: `timestamp`, `level`, `target`, `message` and the
/// event's fields, one object per line. tracing-subscriber's own JSON
/// format also writes the `log.file`, `log.line` and `log.module_path`
/// fields of events that come through the `log` crate (`-vvv`,
/// `RUST_LOG`): source paths of the machine the binary was built on, which
/// mean nothing to a collector and leak that machine's layout.
struct JsonFormat;

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        // An event from the `log` crate carries its real target in a field.
        let target = fields
            .0
            .remove("log.target")
            .and_then(|t| t.as_str().map(str::to_owned))
            .unwrap_or_else(|| event.metadata().target().to_owned());
        fields.0.retain(|name, _| !name.starts_with("log."));
        let mut object = serde_json::Map::new();
        object.insert("timestamp".into(), timestamp.into());
        object.insert(
            "level".into(),
            event.metadata().level().as_str().to_owned().into(),
        );
        object.insert("target".into(), target.into());
        object.append(&mut fields.0);
        let line = serde_json::to_string(&object).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// An event's fields as JSON values.
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

/// Writes log lines to stderr, above the progress bar when there is one.
#[derive(Clone)]
struct BarWriter(Option<ProgressBar>);

impl<'a> MakeWriter<'a> for BarWriter {
    type Writer = BarWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl io::Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing hands over each formatted event in one write_all. The
        // product's own lines mask the URLs they show; this also covers
        // what other libraries log at -vvv (a connection pool's key).
        let line = mask_credentials(buf);
        match &self.0 {
            Some(bar) => bar.suspend(|| io::stderr().write_all(&line))?,
            None => io::stderr().write_all(&line)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `text` with the password of every `user:password@host` in it masked
/// (`user:***@host`): a log line may quote a URL that carries basic-auth
/// credentials. An address without a password (`ann@host`) is left as is.
fn mask_credentials(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_boundary = |b: u8| b.is_ascii_whitespace() || b"/\"'<>(),;=[]{}`".contains(&b);
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    for (at, _) in text.iter().enumerate().filter(|(_, b)| **b == b'@') {
        let start = text[..at]
            .iter()
            .rposition(|&b| is_boundary(b))
            .map_or(0, |i| i + 1);
        // The user ends at the first ':' of the token; a token that is
        // only a scheme and a port (`http:80@`) cannot be told apart and
        // is masked too, which costs nothing.
        let Some(colon) = text[start..at].iter().position(|&b| b == b':') else {
            continue;
        };
        let password = start + colon + 1..at;
        if password.is_empty() || password.start < copied {
            continue;
        }
        let out = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
        out.extend_from_slice(&text[copied..password.start]);
        out.extend_from_slice(b"***");
        copied = password.end;
    }
    match out {
        None => std::borrow::Cow::Borrowed(text),
        Some(mut out) => {
            out.extend_from_slice(&text[copied..]);
            std::borrow::Cow::Owned(out)
        }
    }
}

/// The progress bar: pages written out of the total (once the input files
/// are counted), rate, failures, elapsed time and ETA. A crawl has no
/// total: it shows the URLs discovered but not yet fetched instead.
pub struct Bar {
    bar: ProgressBar,
    failed: AtomicU64,
    /// `Some` in a crawl: URLs waiting in the queues.
    queued: Option<AtomicU64>,
}

impl Bar {
    fn new(sources: &[Source], crawl: bool, shard: Option<Shard>) -> Self {
        // Hidden until the run starts, so that an argument error is not
        // preceded by a flash of bar.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(Self::style(false));
        let files: Option<Vec<PathBuf>> = sources
            .iter()
            .map(|s| match s {
                // Only a regular file can be read twice: a pipe, FIFO,
                // /dev/stdin or <(…) gives each line to one reader, and the
                // run must be that reader.
                Source::File(path) if is_regular_file(path) => Some(path.clone()),
                Source::File(_) | Source::Stdin => None,
            })
            .collect();
        if let Some(files) = files.filter(|_| !crawl) {
            // Counted on the side, so the run starts at once; duplicates
            // are counted too, so the total is an upper bound.
            let bar = bar.clone();
            std::thread::spawn(move || {
                if let Some(total) = count_lines(&files, shard) {
                    bar.set_length(total);
                    bar.set_style(Self::style(true));
                }
            });
        }
        let bar = Bar {
            bar,
            failed: AtomicU64::new(0),
            queued: crawl.then(|| AtomicU64::new(0)),
        };
        bar.show();
        bar
    }

    /// Draws the bar once the run has gone on for a moment: a run that
    /// ends at once (an argument error, an empty input) leaves the screen
    /// to its message instead of flashing a bar first.
    pub fn start(&self) {
        let bar = self.bar.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            if !bar.is_finished() {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(200));
            }
        });
    }

    fn show(&self) {
        let failed = self.failed.load(Ordering::Relaxed);
        match &self.queued {
            Some(queued) => {
                let queued = queued.load(Ordering::Relaxed);
                self.bar
                    .set_message(format!("{failed} failed, {queued} queued"));
            }
            None => self.bar.set_message(format!("{failed} failed")),
        }
    }

    fn style(total_known: bool) -> ProgressStyle {
        let template = if total_known {
            "{elapsed_precise} [{wide_bar}] {pos}/{len} pages, {rate}, {msg}, ETA {eta}"
        } else {
            "{elapsed_precise} {spinner} {pos} pages, {rate}, {msg}"
        };
        // The templates are constants; a typo would show at the first run.
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
                // indicatif's {per_sec} shows four decimals ("10.7853/s").
                let _ = write!(w, "{}/s", rate(state.per_sec()));
            })
            .progress_chars("=> ")
    }

    /// Removes the bar, leaving the screen to the summary line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn page_written(&self, failed: bool) {
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.show();
        self.bar.inc(1);
    }

    fn queued(&self, n: u64) {
        if let Some(queued) = &self.queued {
            queued.store(n, Ordering::Relaxed);
            self.show();
        }
    }
}

/// A rate for people: whole numbers from 10 up, one decimal below.
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0".to_owned()
    } else if per_sec >= 10.0 {
        format!("{per_sec:.0}")
    } else {
        format!("{per_sec:.1}")
    }
}

/// Whether `path` is (or links to) a regular file: one that a second
/// reader can read without taking lines from the first.
fn is_regular_file(path: &std::path::Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Non-blank, non-comment lines in `files`, those of `shard` with one;
/// `None` if a file cannot be read.
fn count_lines(files: &[PathBuf], shard: Option<Shard>) -> Option<u64> {
    use std::io::BufRead as _;
    let mut total = 0;
    for path in files {
        let reader = io::BufReader::new(std::fs::File::open(path).ok()?);
        for line in reader.split(b'\n') {
            let line = line.ok()?;
            let text = line.trim_ascii();
            if !text.is_empty()
                && !text.starts_with(b"#")
                && shard.is_none_or(|shard| crate::input::in_shard(text, shard))
            {
                total += 1;
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_log_lines_are_masked() {
        for (line, shown) in [
            ("no url here", "no url here"),
            ("GET http://ann:pw@a.test/x", "GET http://ann:***@a.test/x"),
            (
                "pool key zed:S3CR@127.0.0.1:80",
                "pool key zed:***@127.0.0.1:80",
            ),
            ("mail ann@a.test", "mail ann@a.test"),
            (
                "{\"url\":\"https://u:p@h/\"} and u2:p2@h2",
                "{\"url\":\"https://u:***@h/\"} and u2:***@h2",
            ),
        ] {
            assert_eq!(
                &*mask_credentials(line.as_bytes()),
                shown.as_bytes(),
                "{line}"
            );
        }
    }
}
