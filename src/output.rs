//! The CSV outputs: the scripts file and the page report.
//!
//! One [`Sink`] owns both outputs and is driven by a single thread, so rows
//! of different pages never interleave. Each page's rows are formatted into
//! memory first and handed to the destination in one `write_all`, then
//! flushed: a run killed at any moment leaves whole rows of finished pages,
//! not half a record (a page's rows are one write(2) to a file).

use std::io::{self, Write};
use std::time::Duration;

use crate::error::PageError;
use crate::extract::Script;

/// Columns of the scripts output, in order. The first thirteen are a stable
/// interface; new ones are only ever appended.
pub const SCRIPT_COLUMNS: [&str; 15] = [
    "page_url",
    "final_url",
    "index",
    "src",
    "inline",
    "type",
    "async",
    "defer",
    "nomodule",
    "integrity",
    "crossorigin",
    "inline_bytes",
    "inline_sha256",
    "src_resolved",
    "svg",
];

/// Appended to [`SCRIPT_COLUMNS`] with `--inline-text`.
pub const INLINE_TEXT_COLUMN: &str = "inline_text";

/// Columns of the page report, in order.
pub const PAGE_COLUMNS: [&str; 10] = [
    "page_url",
    "final_url",
    "status",
    "error",
    "scripts",
    "bytes",
    "elapsed_ms",
    "error_detail",
    "charset",
    "attempts",
];

/// Everything known about one input line once it has been through the
/// pipeline.
#[derive(Debug)]
pub struct PageResult {
    /// The normalised URL, or the raw line when it is not a valid URL.
    pub page_url: String,
    /// The URL after redirects, when a response came back.
    pub final_url: Option<String>,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// The page's scripts, or why there are none.
    pub outcome: Result<Vec<Script>, PageError>,
    /// Body bytes read (decompressed).
    pub bytes: u64,
    /// Time from the start of the first request to the end of the body,
    /// retries and their waits included.
    pub elapsed: Duration,
    /// The character encoding the body was decoded with.
    pub charset: Option<&'static str>,
    /// Requests made, retries included; 0 for an invalid line.
    pub attempts: u32,
}

/// Writes the scripts CSV and, optionally, the page report.
pub struct Sink {
    scripts: Table,
    pages: Option<Table>,
    inline_text: bool,
}

/// One CSV output. Rows are formatted into a buffer reused for every page;
/// [`Table::commit`] hands the buffer to the destination in one write.
struct Table {
    rows: csv::Writer<Staged>,
}

impl Table {
    fn new(dest: Box<dyn Write + Send>, header: &[&str]) -> io::Result<Self> {
        let staged = Staged {
            buf: Vec::with_capacity(64 * 1024),
            dest,
        };
        let mut table = Table {
            rows: csv::Writer::from_writer(staged),
        };
        table.rows.write_record(header)?;
        table.commit()?;
        Ok(table)
    }

    /// Writes the rows formatted so far to the destination and flushes it.
    fn commit(&mut self) -> io::Result<()> {
        // csv moves its own buffer into `Staged`, then flushes it: that
        // flush is the one place where bytes reach the destination.
        self.rows.flush()
    }
}

/// A writer that keeps everything in memory until flushed, so that what
/// reaches the destination is always whole pages of whole rows.
struct Staged {
    buf: Vec<u8>,
    dest: Box<dyn Write + Send>,
}

impl Write for Staged {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self
            .dest
            .write_all(&self.buf)
            .and_then(|()| self.dest.flush());
        self.buf.clear();
        // One page with a huge inline script should not pin its memory.
        self.buf.shrink_to(1 << 20);
        result
    }
}

impl Sink {
    /// Wraps the destinations and writes both headers.
    pub fn new(
        scripts: Box<dyn Write + Send>,
        pages: Option<Box<dyn Write + Send>>,
        inline_text: bool,
    ) -> io::Result<Self> {
        let mut header: Vec<&str> = SCRIPT_COLUMNS.to_vec();
        if inline_text {
            header.push(INLINE_TEXT_COLUMN);
        }
        let scripts = Table::new(scripts, &header)?;
        let pages = pages.map(|w| Table::new(w, &PAGE_COLUMNS)).transpose()?;
        Ok(Sink {
            scripts,
            pages,
            inline_text,
        })
    }

    /// Writes one page's rows to both outputs and flushes them.
    pub fn write_page(&mut self, page: &PageResult) -> io::Result<()> {
        let final_url = page.final_url.as_deref().unwrap_or("");
        if let Ok(scripts) = &page.outcome {
            let mut num = itoa::Buffer::new();
            for s in scripts {
                let w = &mut self.scripts.rows;
                w.write_field(&page.page_url)?;
                w.write_field(final_url)?;
                w.write_field(num.format(s.index))?;
                w.write_field(s.src.as_ref().map_or("", |src| src.as_str()))?;
                w.write_field(bool_str(s.inline.is_some()))?;
                w.write_field(s.type_attr.as_deref().unwrap_or(""))?;
                w.write_field(bool_str(s.is_async))?;
                w.write_field(bool_str(s.defer))?;
                w.write_field(bool_str(s.nomodule))?;
                w.write_field(s.integrity.as_deref().unwrap_or(""))?;
                w.write_field(s.crossorigin.as_deref().unwrap_or(""))?;
                match &s.inline {
                    Some(inline) => {
                        w.write_field(num.format(inline.bytes))?;
                        w.write_field(&inline.sha256)?;
                    }
                    None => {
                        w.write_field("")?;
                        w.write_field("")?;
                    }
                }
                w.write_field(s.src.as_ref().map_or("", |src| bool_str(src.is_resolved())))?;
                w.write_field(bool_str(s.svg))?;
                if self.inline_text {
                    let text = s
                        .inline
                        .as_ref()
                        .and_then(|i| i.text.as_deref())
                        .unwrap_or("");
                    w.write_field(text)?;
                }
                w.write_record(None::<&[u8]>)?;
            }
            self.scripts.commit()?;
        }
        if let Some(table) = &mut self.pages {
            let w = &mut table.rows;
            let mut num = itoa::Buffer::new();
            w.write_field(&page.page_url)?;
            w.write_field(final_url)?;
            w.write_field(page.status.map_or("", |s| num.format(s)))?;
            let (kind, detail, count) = match &page.outcome {
                Ok(scripts) => ("", "", scripts.len()),
                Err(e) => (e.kind.as_str(), e.detail.as_str(), 0),
            };
            w.write_field(kind)?;
            w.write_field(itoa::Buffer::new().format(count))?;
            w.write_field(itoa::Buffer::new().format(page.bytes))?;
            w.write_field(itoa::Buffer::new().format(page.elapsed.as_millis()))?;
            w.write_field(detail)?;
            w.write_field(page.charset.unwrap_or(""))?;
            w.write_field(itoa::Buffer::new().format(page.attempts))?;
            w.write_record(None::<&[u8]>)?;
            table.commit()?;
        }
        Ok(())
    }

    /// Flushes both outputs; call once at the end, so that a write error is
    /// reported rather than lost in `Drop`.
    pub fn finish(mut self) -> io::Result<()> {
        self.scripts.commit()?;
        if let Some(table) = &mut self.pages {
            table.commit()?;
        }
        Ok(())
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}
