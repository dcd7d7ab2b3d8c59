//! The CSV outputs: the scripts file and the page report.
//!
//! One [`Sink`] owns both outputs and is driven by a single thread, so rows
//! of different pages never interleave. Each page's rows are formatted into
//! memory first and handed to the destination in one `write_all`, then
//! flushed: a run killed at any moment leaves whole rows of finished pages,
//! not half a record (a page's rows are one write(2) to a file).
//!
//! A file output is written under a temporary sibling name (`out.csv.part`)
//! and renamed over `out.csv` only when the run completes, so whoever reads
//! `out.csv` sees the previous complete file or the new one, never a file
//! being written or one a killed run left half done.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::error::PageError;
use crate::extract::{Script, Src};
use crate::render::Origin;

pub mod compress;
pub mod fields;
pub(crate) mod parquet;

pub use compress::Compression;
pub use fields::Fields;
use parquet::{Output, ParquetTable};

/// Columns of the scripts output, in order. The first thirteen are a stable
/// interface; new ones are only ever appended (before `inline_text`, which
/// comes last when asked for).
pub const SCRIPT_COLUMNS: [&str; 28] = [
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
    "host",
    "third_party",
    "position",
    "nonce_present",
    "csp_allowed",
    "integrity_ok",
    "content_status",
    "content_error",
    "content_bytes",
    "content_sha384",
    "origin",
    "initiator",
    "frame_url",
];

/// Appended to [`SCRIPT_COLUMNS`] with `--inline-text`.
pub const INLINE_TEXT_COLUMN: &str = "inline_text";

/// [`SCRIPT_COLUMNS`] and then [`INLINE_TEXT_COLUMN`].
const SCRIPT_COLUMNS_WITH_TEXT: [&str; SCRIPT_COLUMNS.len() + 1] = {
    let mut all = [INLINE_TEXT_COLUMN; SCRIPT_COLUMNS.len() + 1];
    let mut i = 0;
    while i < SCRIPT_COLUMNS.len() {
        all[i] = SCRIPT_COLUMNS[i];
        i += 1;
    }
    all
};

/// The scripts output's columns for a run.
pub fn script_columns(inline_text: bool) -> &'static [&'static str] {
    if inline_text {
        &SCRIPT_COLUMNS_WITH_TEXT
    } else {
        &SCRIPT_COLUMNS
    }
}

/// Columns of the page report, in order.
pub const PAGE_COLUMNS: [&str; 13] = [
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
    "depth",
    "referrer",
    "csp",
];

/// Where an output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, created (or truncated) when the run starts.
    File(PathBuf),
}

impl Destination {
    pub(crate) fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Destination::Stdout
        } else {
            Destination::File(PathBuf::from(arg))
        }
    }
}

/// Everything known about one input line once it has been through the
/// pipeline.
#[derive(Debug)]
pub struct PageResult {
    /// The input line's position among the lines passed on.
    pub seq: u64,
    /// The normalised URL, or the raw line when it is not a valid URL.
    pub page_url: String,
    /// The URL after redirects, when a response came back.
    pub final_url: Option<String>,
    /// The HTTP status, when a response came back.
    pub status: Option<u16>,
    /// The page's scripts, or why there are none.
    pub outcome: Result<Vec<Script>, PageError>,
    /// The Content-Security-Policy the page enforces, as received (see
    /// [`crate::content::csp::PagePolicy::csp_column`]).
    pub csp: Option<String>,
    /// Body bytes read (decompressed).
    pub bytes: u64,
    /// Time from the start of the first request to the end of the body,
    /// retries and their waits included.
    pub elapsed: Duration,
    /// The character encoding the body was decoded with.
    pub charset: Option<&'static str>,
    /// Requests made, retries included; 0 for an invalid line.
    pub attempts: u32,
    /// Hops from the seed the page was reached from: 0 for listed URLs.
    pub depth: u16,
    /// The page the URL was first found on; `None` for listed URLs.
    pub referrer: Option<std::sync::Arc<str>>,
    /// Why the page's rows, though written, are not all there is: its
    /// rendering (`--render`) timed out or crashed. The report's `error`
    /// says so, and the page counts as failed.
    pub incomplete: Option<PageError>,
}

/// Writes the scripts CSV and, optionally, the page report.
pub struct Sink {
    scripts: Table,
    pages: Option<Table>,
    /// How errors name the outputs: `-o scripts.csv`, `--pages report.csv`.
    names: [String; 2],
}

/// An output as a message names it: the option and what the user gave it
/// (`-o scripts.csv`, `--pages report.csv`, standard output).
pub fn output_name(option: &str, dest: &Destination) -> String {
    match dest {
        Destination::Stdout if option == "-o" => "standard output".to_owned(),
        Destination::Stdout => format!("standard output ({option} -)"),
        Destination::File(path) => format!("{option} {}", path.display()),
    }
}

/// An error writing the output `name`, saying which; of the same kind, so
/// that a closed pipe is still told from a full disk.
fn write_error(name: &str) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| {
        let text = crate::error::without_os_error_numbers(&e.to_string());
        io::Error::new(e.kind(), format!("cannot write {name}: {text}"))
    }
}

/// How rows are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CSV with a header row; absent values are empty cells.
    #[default]
    Csv,
    /// JSON Lines: one object per row, keys as the CSV columns, typed
    /// values (numbers, booleans, null for absent).
    Jsonl,
    /// Apache Parquet: typed columns as JSON Lines' values, zstd
    /// compressed; a file, or a pipe (not a terminal).
    Parquet,
}

impl Format {
    /// The option value that names it (`csv`, `jsonl`, `parquet`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// What each output holds and how its bytes are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The scripts output's columns (`--fields`).
    pub script_fields: Fields,
    /// The page report's columns (`--page-fields`).
    pub page_fields: Fields,
    /// How the scripts output and the page report are compressed.
    pub compression: [Compression; 2],
    /// The rows are a `--render` run's, some of scripts that are no
    /// element of the fetched HTML (so without the element's flags).
    pub rendered: bool,
}

impl Layout {
    /// Every column (with inline_text when `inline_text`), uncompressed.
    pub fn full(inline_text: bool) -> Layout {
        Layout {
            script_fields: Fields::of(script_columns(inline_text)),
            page_fields: Fields::of(&PAGE_COLUMNS),
            compression: [Compression::None; 2],
            rendered: false,
        }
    }
}

/// How a table encodes its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Encoding {
    /// CSV or JSON Lines.
    pub format: Format,
    /// CSV only: neutralise cells a spreadsheet would run as formulas.
    pub spreadsheet_safe: bool,
}

/// One value of a row, typed so that JSON Lines can keep the type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cell<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
    /// No value: an empty CSV cell, a JSON null.
    Null,
}

fn opt(s: Option<&str>) -> Cell<'_> {
    s.map_or(Cell::Null, Cell::Str)
}

/// Where one output's bytes go.
pub enum Target {
    /// Standard output: streamed, nothing to rename.
    Stdout(io::Stdout),
    /// A device or pipe (`/dev/null`, a FIFO): written in place, as it
    /// cannot be replaced by a rename.
    Direct(File),
    /// A regular file, written as `part` and renamed to `path` at the end.
    Staged {
        file: File,
        part: PathBuf,
        path: PathBuf,
    },
}

impl Target {
    /// Opens `dest` for a run. For a file, creates (or empties) its `.part`
    /// sibling and leaves the file itself as it is; with `append`, continues
    /// the `.part` an interrupted run left.
    pub fn open(dest: &Destination, append: bool) -> anyhow::Result<Target> {
        let Destination::File(path) = dest else {
            return Ok(Target::Stdout(io::stdout()));
        };
        let existing = std::fs::metadata(path).ok();
        if is_device(path) {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot open output {}", path.display()))?;
            return Ok(Target::Direct(file));
        }
        // A symlink stays a symlink: the file it points to is replaced.
        let path = real_path(path);
        let part = part_path(&path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(!append)
            .append(append)
            .open(&part)
            .with_context(|| format!("cannot create output {}", part.display()))?;
        if let Some(meta) = existing {
            // The new file replaces the old one, so it gets its mode (a
            // 0600 report stays private); best effort, as on filesystems
            // without modes.
            let _ = file.set_permissions(replacement_mode(meta.permissions()));
        }
        Ok(Target::Staged { file, part, path })
    }

    /// Makes the output final: flushed to disk and, for a file, renamed
    /// into place.
    pub fn commit(self) -> io::Result<()> {
        match self {
            Target::Stdout(mut out) => out.flush(),
            Target::Direct(_) => Ok(()),
            Target::Staged { file, part, path } => {
                // Data first, then the name: after a crash the new name
                // never points at missing data.
                file.sync_all()?;
                drop(file);
                std::fs::rename(&part, &path)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Persists the rename; not every system can sync a
                    // directory, and the rename is done either way.
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(())
            }
        }
    }

    /// Makes what was written so far durable (a file's data on disk), so
    /// that it can be acknowledged to whoever sent it.
    fn sync(&self) -> io::Result<()> {
        match self {
            Target::Stdout(_) | Target::Direct(_) => Ok(()),
            Target::Staged { file, .. } => file.sync_data(),
        }
    }

    /// Flushes the output to disk without renaming it.
    pub fn keep_partial(self) -> io::Result<()> {
        match self {
            Target::Stdout(mut out) => out.flush(),
            Target::Direct(_) => Ok(()),
            Target::Staged { file, .. } => file.sync_all(),
        }
    }

    /// Removes a `.part` file that will never be completed (the run could
    /// not start).
    pub fn discard(self) {
        if let Target::Staged { file, part, .. } = self {
            drop(file);
            let _ = std::fs::remove_file(part);
        }
    }
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Stdout(out) => out.write(buf),
            Target::Direct(file) | Target::Staged { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Target::Stdout(out) => out.write_all(buf),
            Target::Direct(file) | Target::Staged { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Stdout(out) => out.flush(),
            // Files are unbuffered here: each page is one write(2).
            Target::Direct(_) | Target::Staged { .. } => Ok(()),
        }
    }
}

/// `url` with its user info masked (`https://***@host/`): what the outputs
/// and logs show of a URL, since a list or a proxy may carry basic-auth
/// credentials, and a user name alone is often a token
/// (`https://TOKEN@host/`), while reports travel further than lists. Works
/// on any text (an invalid line is reported as written), and borrows when
/// there is nothing to mask.
pub fn without_password(url: &str) -> Cow<'_, str> {
    let (authority_start, has_scheme) = match url.find("://") {
        Some(end) => (end + 3, true),
        None => (0, false),
    };
    let rest = &url[authority_start..];
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_len].rfind('@') {
        // A URL with user info, read as a browser reads it.
        Some(at) if has_scheme => Some(at),
        // An '@' further on: in a path (`/@user`) when the text is a URL;
        // when it is not (`http://u:pa/ss@host`, a list's broken line), the
        // part before the last '@' may be a password with a '/' in it.
        _ if has_scheme && rest[..before_query].contains('@') && url::Url::parse(url).is_err() => {
            rest[..before_query].rfind('@')
        }
        // Without a scheme, `user:password@host` is the form to mask,
        // unless it is a URL of another scheme (`mailto:ann@host`).
        Some(at)
            if rest[..at]
                .split_once(':')
                .is_some_and(|(head, _)| !crate::input::is_known_scheme(head)) =>
        {
            Some(at)
        }
        _ => None,
    };
    match at {
        Some(at) if at > 0 && (has_scheme || !rest[..at].contains(char::is_whitespace)) => {
            Cow::Owned(format!(
                "{}***{}",
                &url[..authority_start],
                &url[authority_start + at..]
            ))
        }
        _ => Cow::Borrowed(url),
    }
}

/// Writes a small output whole: into a new file of a random name beside
/// `path`, synced, then renamed over it, so that a reader sees the old
/// file or the new one, and no other run's `.part` name is ever touched.
/// The file replaced keeps its mode; a new one gets the umask's.
pub fn write_whole(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    // As any new file (the umask decides), not tempfile's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut file = builder
        .prefix(".scriptscrape-")
        .tempfile_in(dir)
        .map_err(without_temporary_path)?;
    if let Ok(meta) = std::fs::metadata(path) {
        // Best effort, as on filesystems without modes.
        let _ = file
            .as_file()
            .set_permissions(replacement_mode(meta.permissions()));
    }
    write(file.as_file_mut())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes a small output (`--stats`, `--cookie-jar`): a device or FIFO in
/// place, never created or truncated; a file whole ([`write_whole`]),
/// through a symlink to the file it names, with `mode` when given (a file
/// that holds secrets).
pub fn write_small(path: &Path, mode: Option<u32>, bytes: &[u8]) -> io::Result<()> {
    if is_device(path) {
        let mut device = std::fs::OpenOptions::new().write(true).open(path)?;
        return device.write_all(bytes);
    }
    write_whole(&real_path(path), |file| {
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        file.write_all(bytes)
    })
}

/// The OS error under one that names the temporary file (tempfile adds
/// its path): the user named the output, not the file staged beside it.
fn without_temporary_path(err: io::Error) -> io::Error {
    // tempfile's error reads "{os error} at path {path}".
    let text = err.to_string();
    match text.split_once(" at path ") {
        Some((why, _)) => io::Error::new(err.kind(), why.to_owned()),
        None => err,
    }
}

/// Writes a report (diff's changes, inventory's report) to `path`, whole
/// (staged beside it, then renamed) unless it is a device or a pipe, which
/// is written through; or to standard output, where a reader that went
/// away is not an error.
pub fn write_report(
    path: Option<&Path>,
    write: impl Fn(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    match path {
        Some(path) if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            write(&mut file).with_context(|| format!("cannot write {}", path.display()))
        }
        Some(path) => write_whole(path, |file| write(file))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display())),
        None => match write(&mut io::stdout().lock()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("cannot write to standard output"),
        },
    }
}

/// `text` as one line that does nothing to a terminal: control characters
/// (C0, DEL, C1), the Unicode line and paragraph separators and the bidi
/// overrides and isolates (which reorder what is shown, disguising text)
/// written as escapes: `\n`, `\r`, `\t`, `\x1b`, `\u{202e}`. For what
/// people read (`diff --format text`, log lines), where a value from a page
/// must not start a line of its own or reach a terminal as a command.
/// Borrows when there is nothing to escape.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether [`one_line`] escapes `c`.
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `path` is there and not a regular file (`/dev/null`, a FIFO):
/// written in place, with no `.part` and no lock.
pub fn is_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// The `.part` file a file output is written as, beside its real path;
/// `None` for a device.
pub fn staged_part(path: &Path) -> anyhow::Result<Option<PathBuf>> {
    if is_device(path) {
        return Ok(None);
    }
    part_path(&real_path(path)).map(Some)
}

/// Where an output file really is: symlinks followed (a dangling one to
/// the file it names, which the run then creates), the directory made
/// absolute. Outputs, their `.part` files and their locks all go by it.
pub fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let mut path = path.to_path_buf();
    // A dangling symlink (or a chain of them, within reason).
    for _ in 0..8 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return path;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match std::fs::canonicalize(dir) {
        Ok(dir) => dir.join(name),
        Err(_) => path.clone(),
    }
}

/// `dir/name.part` for `dir/name`.
pub fn part_path(path: &Path) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("output {} is not a file name", path.display()))?;
    let mut part = name.to_os_string();
    part.push(".part");
    Ok(path.with_file_name(part))
}

/// One output. Rows are formatted into a buffer reused for every page;
/// [`Table::commit`] hands the buffer to the destination in one write.
struct Table {
    encoder: Encoder,
    /// The columns written (`--fields`), in order.
    columns: Vec<&'static str>,
    /// For each column written, its place in the full rows handed to
    /// [`Table::row`].
    pick: Vec<usize>,
    spreadsheet_safe: bool,
}

enum Encoder {
    // Boxed: there are two tables per run, and the size difference would
    // otherwise be carried by the JSON variant too.
    Csv(Box<csv::Writer<Staged>>),
    Jsonl(Staged),
    Parquet(Box<ParquetTable>),
}

/// The most columns an output has: the scripts output with inline_text.
const MAX_COLUMNS: usize = SCRIPT_COLUMNS_WITH_TEXT.len();

impl Table {
    /// A table of `fields`, chosen from `all`, the columns of the full
    /// rows it will be given.
    fn new(
        dest: Target,
        output: Output,
        all: &'static [&'static str],
        fields: &Fields,
        encoding: Encoding,
        compression: Compression,
        header: bool,
    ) -> io::Result<Self> {
        let pick = fields
            .names()
            .iter()
            .map(|name| {
                all.iter().position(|c| c == name).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("no column {name} in this output"),
                    )
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let compressor = compress::Compressor::new(compression)?;
        let staged = |dest| Staged {
            buf: Vec::with_capacity(64 * 1024),
            dest,
            compressor,
            scratch: Vec::new(),
            wrote: false,
        };
        let encoder = match encoding.format {
            Format::Csv => Encoder::Csv(Box::new(csv::Writer::from_writer(staged(dest)))),
            Format::Jsonl => Encoder::Jsonl(staged(dest)),
            Format::Parquet => {
                Encoder::Parquet(Box::new(ParquetTable::new(dest, output, fields.names())?))
            }
        };
        let mut table = Table {
            encoder,
            columns: fields.names().to_vec(),
            pick,
            spreadsheet_safe: encoding.spreadsheet_safe,
        };
        if let (true, Encoder::Csv(w)) = (header, &mut table.encoder) {
            w.write_record(&table.columns)?;
            table.commit()?;
        }
        Ok(table)
    }

    /// Adds one row to the page being formatted: `all` holds every column
    /// in order, of which the table writes its own.
    fn row(&mut self, all: &[Cell<'_>]) -> io::Result<()> {
        let mut picked = [Cell::Null; MAX_COLUMNS];
        for (cell, &at) in picked.iter_mut().zip(&self.pick) {
            *cell = all[at];
        }
        let cells = &picked[..self.pick.len()];
        match &mut self.encoder {
            Encoder::Csv(w) => {
                let mut num = itoa::Buffer::new();
                for cell in cells {
                    match *cell {
                        Cell::Str(s) if self.spreadsheet_safe => {
                            w.write_field(spreadsheet_safe(s).as_ref())?
                        }
                        Cell::Str(s) => w.write_field(s)?,
                        Cell::Int(n) => w.write_field(num.format(n))?,
                        Cell::Bool(b) => w.write_field(bool_str(b))?,
                        Cell::Null => w.write_field("")?,
                    }
                }
                w.write_record(None::<&[u8]>)?;
            }
            Encoder::Jsonl(staged) => {
                let row = JsonRow {
                    kind: None,
                    columns: &self.columns,
                    cells,
                };
                serde_json::to_writer(&mut *staged, &row).map_err(io::Error::other)?;
                staged.buf.push(b'\n');
            }
            Encoder::Parquet(table) => table.row(cells)?,
        }
        Ok(())
    }

    /// Writes the rows formatted so far to the destination and flushes it.
    fn commit(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            // csv moves its own buffer into `Staged`, then flushes it: that
            // flush is the one place where bytes reach the destination.
            Encoder::Csv(w) => w.flush(),
            Encoder::Jsonl(staged) => staged.flush(),
            // A row group once enough pages have gathered.
            Encoder::Parquet(table) => table.commit(),
        }
    }
}

/// Calls `row` with every column of each script row of `page` (all of
/// [`SCRIPT_COLUMNS_WITH_TEXT`], in order), as the outputs write them.
fn script_rows<'a>(
    page: &'a PageResult,
    mut row: impl FnMut(&[Cell<'_>]) -> io::Result<()>,
) -> io::Result<()> {
    let final_url = opt(page.final_url.as_deref());
    if let Ok(scripts) = &page.outcome {
        for s in scripts {
            let inline = s.inline.as_ref();
            let content = s.content.as_deref();
            let sha384 = content.and_then(|c| c.sha384());
            // Credentials in a src are sent (as basic auth) but never
            // written, as for page URLs.
            let src = s.src.as_ref().map(|src| without_password(src.as_str()));
            let integrity_ok = content
                .zip(s.integrity.as_deref())
                .and_then(|(c, integrity)| c.integrity_ok(integrity));
            let rendered = s.render.as_ref();
            // A script a browser ran that is no element of the fetched
            // HTML: its attributes are not known (the DOM is not read).
            let element = rendered.is_none_or(|r| r.origin == Origin::Static);
            let attr = |cell: Cell<'a>| if element { cell } else { Cell::Null };
            row(&[
                Cell::Str(&page.page_url),
                final_url,
                Cell::Int(s.index as u64),
                opt(src.as_deref()),
                Cell::Bool(inline.is_some()),
                opt(s.type_attr.as_deref()),
                attr(Cell::Bool(s.is_async)),
                attr(Cell::Bool(s.defer)),
                attr(Cell::Bool(s.nomodule)),
                opt(s.integrity.as_deref()),
                opt(s.crossorigin.as_deref()),
                inline.map_or(Cell::Null, |i| Cell::Int(i.bytes as u64)),
                inline.map_or(Cell::Null, |i| Cell::Str(&i.sha256)),
                s.src
                    .as_ref()
                    .map_or(Cell::Null, |src| Cell::Bool(src.is_resolved())),
                attr(Cell::Bool(s.svg)),
                opt(match &s.src {
                    Some(Src::Resolved(url)) => url.host_str(),
                    _ => None,
                }),
                Cell::Bool(s.third_party),
                attr(Cell::Str(s.position.as_str())),
                attr(Cell::Bool(s.nonce)),
                s.csp_allowed.map_or(Cell::Null, Cell::Bool),
                integrity_ok.map_or(Cell::Null, Cell::Bool),
                content
                    .and_then(|c| c.status)
                    .map_or(Cell::Null, |s| Cell::Int(s.into())),
                opt(content.and_then(|c| c.error).map(|e| e.as_str())),
                content.and_then(|c| c.bytes).map_or(Cell::Null, Cell::Int),
                opt(sha384.as_deref()),
                opt(rendered.map(|r| r.origin.as_str())),
                opt(rendered.and_then(|r| r.initiator.as_deref())),
                opt(rendered.and_then(|r| r.frame_url.as_deref())),
                // Kept by the extractor only when asked for.
                opt(inline.and_then(|i| i.text.as_deref())),
            ])?;
        }
    }
    Ok(())
}

/// Calls `row` with every column of `page`'s report row
/// ([`PAGE_COLUMNS`], in order).
fn report_row(
    page: &PageResult,
    row: impl FnOnce(&[Cell<'_>]) -> io::Result<()>,
) -> io::Result<()> {
    let final_url = opt(page.final_url.as_deref());
    let (kind, detail, count) = match (&page.outcome, &page.incomplete) {
        (Ok(scripts), Some(e)) => (
            Cell::Str(e.kind.as_str()),
            Cell::Str(&e.detail),
            scripts.len(),
        ),
        (Ok(scripts), None) => (Cell::Null, Cell::Null, scripts.len()),
        (Err(e), _) => (Cell::Str(e.kind.as_str()), Cell::Str(&e.detail), 0),
    };
    row(&[
        Cell::Str(&page.page_url),
        final_url,
        page.status.map_or(Cell::Null, |s| Cell::Int(s.into())),
        kind,
        Cell::Int(count as u64),
        Cell::Int(page.bytes),
        Cell::Int(u64::try_from(page.elapsed.as_millis()).unwrap_or(u64::MAX)),
        detail,
        opt(page.charset),
        Cell::Int(page.attempts.into()),
        Cell::Int(page.depth.into()),
        opt(page.referrer.as_deref()),
        opt(page.csp.as_deref()),
    ])
}

/// `page` as JSON Lines objects for a stream that mixes them (`serve`):
/// `{"object":"page",…}` with the page report's fields, then one
/// `{"object":"script",…}` per script with the scripts' fields (without
/// the inline text), each as `--format jsonl` writes them.
pub fn jsonl_objects(page: &PageResult, out: &mut Vec<u8>) -> io::Result<()> {
    let mut object = |kind, columns: &[&'static str], cells: &[Cell<'_>]| {
        let row = JsonRow {
            kind: Some(kind),
            columns,
            cells,
        };
        serde_json::to_writer(&mut *out, &row).map_err(io::Error::other)?;
        out.push(b'\n');
        Ok(())
    };
    report_row(page, |cells| object("page", &PAGE_COLUMNS, cells))?;
    script_rows(page, |cells| {
        object("script", &SCRIPT_COLUMNS, &cells[..SCRIPT_COLUMNS.len()])
    })
}

/// One row as a JSON object, keys in column order, serialised straight
/// into the page's buffer: no map of owned keys and values per row.
struct JsonRow<'a> {
    /// An `"object"` key first, for streams that mix objects (serve):
    /// not `"type"`, which is a column of the scripts.
    kind: Option<&'static str>,
    columns: &'a [&'static str],
    cells: &'a [Cell<'a>],
}

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let len = self.cells.len() + usize::from(self.kind.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        if let Some(kind) = self.kind {
            map.serialize_entry("object", kind)?;
        }
        for (name, cell) in self.columns.iter().zip(self.cells) {
            match *cell {
                Cell::Str(s) => map.serialize_entry(name, s)?,
                Cell::Int(n) => map.serialize_entry(name, &n)?,
                Cell::Bool(b) => map.serialize_entry(name, &b)?,
                Cell::Null => map.serialize_entry(name, &())?,
            }
        }
        map.end()
    }
}

/// OWASP's CSV-injection rule: a cell a spreadsheet would evaluate starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return.
pub(crate) fn formula_like(s: &str) -> bool {
    matches!(
        s.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// The mode for a file that replaces one with `old`: the same, but never
/// setuid, setgid or sticky (the data is new; a privilege is not its to
/// inherit).
pub(crate) fn replacement_mode(old: std::fs::Permissions) -> std::fs::Permissions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::Permissions::from_mode(old.mode() & 0o777)
    }
    #[cfg(not(unix))]
    old
}

/// A cell as `--spreadsheet-safe` writes it: a formula-like value gets a
/// leading `'`, and so does a value that starts with one, so that the
/// escape can be undone (--resume and diff do).
pub(crate) fn spreadsheet_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if formula_like(s) || s.starts_with('\'') {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A writer that keeps everything in memory until flushed, so that what
/// reaches the destination is always whole pages of whole rows.
struct Staged {
    buf: Vec<u8>,
    dest: Target,
    /// Each flush is one member (frame) of the output's compression.
    compressor: compress::Compressor,
    /// The compressed member, reused from page to page.
    scratch: Vec<u8>,
    /// Something was written: a compressed output that never was gets
    /// one empty member at the end, as a 0-byte file is no valid gzip or
    /// zstd file (a JSON Lines output with no rows).
    wrote: bool,
}

impl Staged {
    /// Ends the output: an empty member if nothing was written.
    fn close(mut self) -> io::Result<Target> {
        if !self.wrote {
            let empty = self.compressor.member(b"", &mut self.scratch)?;
            self.dest.write_all(empty)?;
            self.dest.flush()?;
        }
        Ok(self.dest)
    }
}

impl Write for Staged {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = if self.buf.is_empty() {
            // Nothing to write: no empty member either.
            Ok(())
        } else {
            self.wrote = true;
            self.compressor
                .member(&self.buf, &mut self.scratch)
                .and_then(|bytes| self.dest.write_all(bytes))
                .and_then(|()| self.dest.flush())
        };
        self.buf.clear();
        // One page with a huge inline script should not pin its memory.
        self.buf.shrink_to(1 << 20);
        self.scratch.shrink_to(1 << 20);
        result
    }
}

impl Sink {
    /// Wraps the destinations and writes both headers.
    pub fn new(
        scripts: Target,
        pages: Option<Target>,
        names: [String; 2],
        layout: &Layout,
        encoding: Encoding,
        headers: bool,
    ) -> io::Result<Self> {
        let [script_compression, page_compression] = layout.compression;
        let scripts = Table::new(
            scripts,
            if layout.rendered {
                Output::RenderedScripts
            } else {
                Output::Scripts
            },
            &SCRIPT_COLUMNS_WITH_TEXT,
            &layout.script_fields,
            encoding,
            script_compression,
            headers,
        )
        .map_err(write_error(&names[0]))?;
        let pages = pages
            .map(|w| {
                let fields = &layout.page_fields;
                Table::new(
                    w,
                    Output::Pages,
                    &PAGE_COLUMNS,
                    fields,
                    encoding,
                    page_compression,
                    headers,
                )
            })
            .transpose()
            .map_err(write_error(&names[1]))?;
        Ok(Sink {
            scripts,
            pages,
            names,
        })
    }

    /// Writes one page's rows to both outputs and flushes them.
    pub fn write_page(&mut self, page: &PageResult) -> io::Result<()> {
        self.write_scripts(page)
            .map_err(write_error(&self.names[0]))?;
        self.write_report(page).map_err(write_error(&self.names[1]))
    }

    fn write_scripts(&mut self, page: &PageResult) -> io::Result<()> {
        if page.outcome.is_ok() {
            script_rows(page, |cells| self.scripts.row(cells))?;
            self.scripts.commit()?;
        }
        Ok(())
    }

    fn write_report(&mut self, page: &PageResult) -> io::Result<()> {
        if let Some(table) = &mut self.pages {
            report_row(page, |cells| table.row(cells))?;
            table.commit()?;
        }
        Ok(())
    }

    /// Writes what is left and makes both outputs final (files renamed into
    /// place); call once, when the run is complete, so that a write error
    /// is reported rather than lost in `Drop`.
    pub fn finish(self) -> io::Result<()> {
        let (scripts, pages, [scripts_name, pages_name]) = self.into_targets()?;
        // The report first: whoever watches the scripts file finds the
        // report of the same run in place when it appears.
        if let Some(pages) = pages {
            pages.commit().map_err(write_error(&pages_name))?;
        }
        scripts.commit().map_err(write_error(&scripts_name))
    }

    /// Writes what is buffered and hands back the destinations, with the
    /// outputs' names for messages.
    fn into_targets(self) -> io::Result<(Target, Option<Target>, [String; 2])> {
        let [scripts_name, pages_name] = self.names;
        let scripts = self
            .scripts
            .into_target()
            .map_err(write_error(&scripts_name))?;
        let pages = self
            .pages
            .map(Table::into_target)
            .transpose()
            .map_err(write_error(&pages_name))?;
        Ok((scripts, pages, [scripts_name, pages_name]))
    }
}

impl Sink {
    /// Makes every page written so far durable in both outputs: on disk
    /// for files (still under their `.part` names); a no-op for standard
    /// output and devices.
    pub fn sync(&self) -> io::Result<()> {
        self.scripts.sync().map_err(write_error(&self.names[0]))?;
        if let Some(pages) = &self.pages {
            pages.sync().map_err(write_error(&self.names[1]))?;
        }
        Ok(())
    }

    /// Writes what is left and flushes it to disk, but leaves file outputs
    /// under their `.part` names: for a run that did not complete.
    pub fn keep_partial(self) -> io::Result<()> {
        let (scripts, pages, [scripts_name, pages_name]) = self.into_targets()?;
        scripts.keep_partial().map_err(write_error(&scripts_name))?;
        if let Some(pages) = pages {
            pages.keep_partial().map_err(write_error(&pages_name))?;
        }
        Ok(())
    }
}

impl Table {
    /// Makes the rows written so far durable.
    fn sync(&self) -> io::Result<()> {
        let staged = match &self.encoder {
            Encoder::Csv(w) => w.get_ref(),
            Encoder::Jsonl(staged) => staged,
            // The row groups written so far (without a footer, no reader
            // can use them yet: collect and --resume refuse Parquet).
            Encoder::Parquet(table) => return table.target().sync(),
        };
        staged.dest.sync()
    }

    fn into_target(mut self) -> io::Result<Target> {
        self.commit()?;
        let staged = match self.encoder {
            Encoder::Csv(w) => w.into_inner().map_err(|e| e.into_error())?,
            Encoder::Jsonl(staged) => staged,
            // The last row group and the footer.
            Encoder::Parquet(table) => return table.into_target(),
        };
        staged.close()
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_controls_and_bidi_overrides() {
        assert!(matches!(one_line("plain → ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            one_line("a\nb\r\tc\u{1b}[2J\u{7}\u{7f}\0"),
            r"a\nb\r\tc\x1b[2J\x07\x7f\x00"
        );
        assert_eq!(
            one_line("\u{85}\u{9b}\u{9f}\u{a0}"),
            "\\u{85}\\u{9b}\\u{9f}\u{a0}"
        );
        assert_eq!(
            one_line("x\u{202a}\u{202e}\u{2066}\u{2069}\u{2028}\u{2029}\u{2065}\u{202f}"),
            r"x\u{202a}\u{202e}\u{2066}\u{2069}\u{2028}\u{2029}".to_owned() + "\u{2065}\u{202f}"
        );
    }

    #[test]
    fn passwords_are_masked_wherever_a_url_is_shown() {
        for (url, shown) in [
            ("https://a.test/", "https://a.test/"),
            ("https://ann:pw@a.test/x@y", "https://***@a.test/x@y"),
            // A user name alone is often a token.
            ("https://TOKEN@a.test/", "https://***@a.test/"),
            ("https://@a.test/", "https://@a.test/"),
            (
                "http://ann:p:w@a.test:8080?q=@",
                "http://***@a.test:8080?q=@",
            ),
            ("http://a@b@a.test/", "http://***@a.test/"),
            ("socks5://u:p@127.0.0.1:1080", "socks5://***@127.0.0.1:1080"),
            ("not a url @ all", "not a url @ all"),
            (
                "https://a.test/?next=http://u:p@b",
                "https://a.test/?next=http://u:p@b",
            ),
            // A path with an '@' in a valid URL is left alone.
            (
                "https://medium.test/@ann/post",
                "https://medium.test/@ann/post",
            ),
            // Not a URL: a password with a '/' in it, a line without a
            // scheme.
            ("http://u:PX/SECRET@127.0.0.1:1", "http://***@127.0.0.1:1"),
            (
                "u:PWSECRET@127.0.0.1:18001/page/1",
                "***@127.0.0.1:18001/page/1",
            ),
            ("ann@example.com", "ann@example.com"),
            ("mailto:ann@example.com", "mailto:ann@example.com"),
        ] {
            assert_eq!(without_password(url), shown, "{url}");
        }
    }
}
