//! Writing the changes: CSV or JSON Lines for machines, a text summary for
//! people.

use std::io::{self, Write};

use super::{Change, ChangeKind, Diff, counts};

/// The output formats of `scriptscrape diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// One row per change, with a header.
    #[default]
    Csv,
    /// One JSON object per change.
    Jsonl,
    /// Counts per kind of change and the first rows, for people.
    Text,
}

/// The columns of the changes output.
pub const COLUMNS: [&str; 5] = ["page_url", "change", "src", "inline_sha256", "detail"];

/// Rows the text summary shows.
const TEXT_ROWS: usize = 20;

/// Writes the changes `diff` found in `format`; with `spreadsheet_safe`,
/// CSV cells a spreadsheet would run as formulas get a leading `'` (a
/// `src` is whatever the page said).
pub fn changes(
    out: &mut dyn Write,
    format: DiffFormat,
    diff: &Diff,
    spreadsheet_safe: bool,
) -> io::Result<()> {
    let (changes, pages) = (&diff.changes[..], diff.pages);
    match format {
        DiffFormat::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(COLUMNS).map_err(io_error)?;
            for c in changes {
                for value in [
                    c.page_url.as_str(),
                    c.kind.as_str(),
                    c.src.as_deref().unwrap_or(""),
                    c.inline_sha256.as_deref().unwrap_or(""),
                    c.detail.as_str(),
                ] {
                    csv.write_field(cell(value, spreadsheet_safe).as_bytes())
                        .map_err(io_error)?;
                }
                csv.write_record(None::<&[u8]>).map_err(io_error)?;
            }
            csv.flush()
        }
        DiffFormat::Jsonl => {
            for c in changes {
                let row = serde_json::json!({
                    "page_url": c.page_url,
                    "change": c.kind.as_str(),
                    "src": c.src,
                    "inline_sha256": c.inline_sha256,
                    "detail": c.detail,
                });
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
            }
            out.flush()
        }
        DiffFormat::Text => {
            // Every value from a page (URLs, attributes, failure details) is
            // written through one_line: one change is one line, however a
            // page words its attributes, and nothing reaches a terminal as
            // an escape sequence.
            use crate::output::one_line;
            writeln!(out, "{}", summary(changes, pages))?;
            // In a mail body, what makes the counts doubtful belongs with
            // them.
            for warning in &diff.warnings {
                writeln!(out, "warning: {}", one_line(warning))?;
            }
            let counts = counts(changes);
            for kind in ChangeKind::ALL {
                if let Some(n) = counts.get(&kind) {
                    writeln!(out, "  {:<18} {n}", kind.as_str())?;
                }
            }
            if !changes.is_empty() {
                writeln!(out)?;
            }
            for c in changes.iter().take(TEXT_ROWS) {
                let what = c
                    .src
                    .as_deref()
                    .or(c.inline_sha256.as_deref())
                    .unwrap_or("");
                writeln!(
                    out,
                    "{:<18} {}  {}{}{}",
                    c.kind.as_str(),
                    one_line(&c.page_url),
                    one_line(what),
                    if c.detail.is_empty() { "" } else { "  " },
                    one_line(&c.detail)
                )?;
            }
            if changes.len() > TEXT_ROWS {
                writeln!(
                    out,
                    "… and {} more (--format csv lists them all)",
                    changes.len() - TEXT_ROWS
                )?;
            }
            out.flush()
        }
    }
}

fn cell(s: &str, spreadsheet_safe: bool) -> std::borrow::Cow<'_, str> {
    if spreadsheet_safe {
        crate::output::spreadsheet_safe(s)
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The I/O error under a CSV error, so that a closed pipe is known as one.
fn io_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// One line: how many changes on how many pages, by kind.
pub fn summary(changes: &[Change], pages: usize) -> String {
    if changes.is_empty() {
        return format!(
            "no changes on {pages} page{}",
            if pages == 1 { "" } else { "s" }
        );
    }
    let mut on: Vec<&str> = changes.iter().map(|c| c.page_url.as_str()).collect();
    on.dedup();
    let kinds: Vec<String> = counts(changes)
        .into_iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    format!(
        "{} change{} on {} of {pages} page{} ({})",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        on.len(),
        if pages == 1 { "" } else { "s" },
        kinds.join(", ")
    )
}
