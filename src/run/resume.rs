//! `--resume`: continuing a run that was stopped or killed.
//!
//! An unfinished run leaves `.part` files of whole pages (see `output`).
//! The page report is the record of what was finished: a page's script
//! rows are written before its report row, so a page with a whole report
//! row has all its script rows on disk. Resuming:
//! 1. reads the report's `.part`; pages that succeeded or failed for good
//!    are finished; transient failures (timeouts, refused or broken
//!    connections, DNS, 429 and 5xx) are to be tried again;
//! 2. checks the two files against each other (each report row's
//!    `scripts` count against the script rows there, every field against
//!    what the writer puts in it) and rewrites both with the rows of
//!    finished pages only, which also drops a torn last row, the script
//!    rows of a page whose report row never made it, and the report rows
//!    of pages whose script rows a torn scripts file lost (fetched again);
//!    damage anywhere else is refused, the files left as they were;
//! 3. hands the input stage the set of finished lines to skip, and the
//!    counts they carry, so the summary covers the whole job.
//!
//! The result is as if the run had never stopped: each URL once.

use std::borrow::Cow;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::config::Config;
use crate::error::ErrorKind;
use crate::input::Source;
use crate::output::Destination;
use crate::output::{Compression, Format, staged_part};
use crate::run::report::Summary;
use crate::seen::HashSet64;

/// What an earlier, unfinished run had done.
#[derive(Debug)]
pub struct Earlier {
    /// Input lines finished earlier, keyed as the input stage keys lines.
    pub done: Done,
    /// Counts of the finished pages, to carry into this run's summary.
    pub summary: Summary,
}

/// Lines finished by an earlier run: skipped when read again.
#[derive(Debug, Default)]
pub struct Done {
    hasher: RandomState,
    keys: HashSet64,
}

impl Done {
    /// The key of an input line: its URL when it has one, else its text
    /// (invalid lines are reported under their text).
    pub fn key(&self, url: Option<&str>, raw: &str) -> u64 {
        match url {
            Some(url) => self.hasher.hash_one((0u8, url)),
            None => self.hasher.hash_one((1u8, raw)),
        }
    }

    /// The hasher keys are made with, so that the duplicate check can
    /// share it.
    pub fn hasher(&self) -> &RandomState {
        &self.hasher
    }

    /// Whether the line with this key was finished.
    pub fn contains(&self, key: u64) -> bool {
        self.keys.contains(key)
    }

    /// How many lines were finished.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing was finished.
    pub fn is_empty(&self) -> bool {
        self.keys.len() == 0
    }
}

/// Whether a page that failed this way may succeed if tried again.
fn transient(kind: ErrorKind, status: Option<u16>) -> bool {
    match kind {
        ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Dns | ErrorKind::Io => true,
        // The statuses --retries retries.
        ErrorKind::HttpStatus => status.is_some_and(|s| matches!(s, 408 | 425 | 429) || s >= 500),
        _ => false,
    }
}

/// The `.part` files of the run's outputs: (scripts, pages). The scripts
/// have none when they go to a device (written in place).
fn part_files(config: &Config) -> anyhow::Result<(Option<PathBuf>, PathBuf)> {
    let file = |dest: Option<&Destination>, what: &str| -> anyhow::Result<Option<PathBuf>> {
        match dest {
            Some(Destination::File(path)) => staged_part(path),
            _ => bail!("--resume needs {what} written to a file"),
        }
    };
    let scripts = file(Some(&config.output), "the scripts (-o FILE)")?;
    let what = "the page report (--pages FILE): it records which pages were finished,";
    let Some(pages) = file(config.pages.as_ref(), what)? else {
        bail!("--resume needs {what} not a device");
    };
    Ok((scripts, pages))
}

/// What identifies a run, so that `--resume` continues only the same job:
/// its inputs and the options that change what its rows are. Kept beside
/// the page report's `.part` file while the run is unfinished
/// ([`RunId::path`]), written before the first row, removed when the
/// outputs are final.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunId {
    /// The inputs, as canonical paths (`-` for standard input).
    inputs: Vec<String>,
    /// Where the scripts went: a canonical path, or `-`.
    scripts: String,
    /// `csv` or `jsonl`.
    format: String,
    inline_text: bool,
    spreadsheet_safe: bool,
    /// `--detect-utf8` changes how undeclared pages are decoded, and so
    /// their inline hashes.
    #[serde(default)]
    detect_utf8: bool,
    /// `--shard K/N` as given (`2/3`): a shard's files hold only its part
    /// of the inputs. Absent (older runs too) for a run of the whole job.
    #[serde(default)]
    shard: Option<String>,
    /// `--render`: its rows hold what a browser ran (absent in older
    /// runs' identities: they did not render).
    #[serde(default)]
    render: bool,
    /// When the run began (RFC 3339, UTC): not compared, for messages.
    #[serde(default)]
    started_at: String,
}

impl RunId {
    /// The identity of the run `config` describes.
    pub fn of(config: &Config) -> RunId {
        let path = |p: &Path| crate::output::real_path(p).display().to_string();
        let inputs = match &config.job {
            // A collector's input is its job.
            Some(job) => vec![job.clone()],
            None => config
                .sources
                .iter()
                .map(|s| match s {
                    Source::Stdin => "-".to_owned(),
                    Source::File(p) => path(p),
                })
                .collect(),
        };
        RunId {
            inputs,
            scripts: match &config.output {
                Destination::Stdout => "-".to_owned(),
                Destination::File(p) => path(p),
            },
            format: config.encoding.format.as_str().to_owned(),
            inline_text: config.inline_text,
            spreadsheet_safe: config.encoding.spreadsheet_safe,
            detect_utf8: config.detect_utf8,
            shard: config.shard.map(|s| s.to_string()),
            render: config.render.is_some(),
            started_at: crate::run::stats::rfc3339(std::time::SystemTime::now()),
        }
    }

    /// Whether the unfinished run that left `pages_part` read the same
    /// inputs (for a collector: the same job) as this one.
    pub fn same_inputs_as_left_in(&self, pages_part: &Path) -> bool {
        std::fs::read(Self::path(pages_part))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<RunId>(&bytes).ok())
            .is_some_and(|earlier| earlier.inputs == self.inputs)
    }

    /// The file that holds the identity of the run whose page report is
    /// being written as `pages_part`.
    pub fn path(pages_part: &Path) -> PathBuf {
        let mut name = pages_part.as_os_str().to_owned();
        name.push(".run");
        PathBuf::from(name)
    }

    /// Records this identity for `pages_part`, through a temporary file
    /// renamed into place, so that a kill leaves it whole or absent.
    pub fn write(&self, pages_part: &Path) -> anyhow::Result<()> {
        let path = Self::path(pages_part);
        let context = || format!("cannot write {}", path.display());
        let text = serde_json::to_vec_pretty(self).with_context(context)?;
        crate::output::write_whole(&path, |file| std::io::Write::write_all(file, &text))
            .with_context(context)
    }

    /// Refuses to continue `pages_part` unless the run that left it is
    /// this one: one line naming what differs.
    fn check(&self, pages_part: &Path) -> anyhow::Result<()> {
        let path = Self::path(pages_part);
        let part = pages_part.display();
        let earlier: RunId = match std::fs::read(&path) {
            // Not serde's wording: the reader wants to know what to do.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
                anyhow::anyhow!(
                    "cannot resume: {} is damaged (not the JSON scriptscrape writes); start \
                     again without --resume",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "cannot resume: {part} does not say which run wrote it (no {}; an older \
                 scriptscrape?); start again without --resume",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let since = match earlier.started_at.as_str() {
            "" => String::new(),
            at => format!(", started {at}"),
        };
        let differs = if earlier.inputs != self.inputs {
            Some(format!(
                "it is an unfinished run of {}{since}, not of {}",
                earlier.inputs.join(", "),
                self.inputs.join(", ")
            ))
        } else if earlier.shard != self.shard {
            let held = match &earlier.shard {
                Some(shard) => format!("shard {shard} of a job"),
                None => "a whole job (no --shard)".to_owned(),
            };
            let asked = match &self.shard {
                Some(shard) => format!("is --shard {shard}"),
                None => "has no --shard".to_owned(),
            };
            Some(format!("it holds {held}, and this run {asked}"))
        } else if earlier.format != self.format {
            Some(format!(
                "it was written as --format {}, this run asks for --format {}",
                earlier.format, self.format
            ))
        } else if earlier.scripts != self.scripts {
            Some(format!(
                "its run wrote the scripts to {}, this one to {}",
                earlier.scripts, self.scripts
            ))
        } else if earlier.inline_text != self.inline_text {
            Some(format!(
                "its run {} --inline-text",
                given(earlier.inline_text)
            ))
        } else if earlier.spreadsheet_safe != self.spreadsheet_safe {
            Some(format!(
                "its run {} --spreadsheet-safe",
                given(earlier.spreadsheet_safe)
            ))
        } else if earlier.detect_utf8 != self.detect_utf8 {
            Some(format!(
                "its run {} --detect-utf8",
                given(earlier.detect_utf8)
            ))
        } else if earlier.render != self.render {
            Some(format!("its run {} --render", given(earlier.render)))
        } else {
            None
        };
        match differs {
            Some(why) => bail!(
                "cannot resume from {part}: {why}; resume with the same inputs and options, or \
                 start again without --resume"
            ),
            None => Ok(()),
        }
    }
}

fn given(yes: bool) -> &'static str {
    if yes { "had" } else { "did not have" }
}

/// Reads and trims what an earlier run left, or returns `None` when there
/// is nothing to resume (no `.part` report: the earlier run completed, or
/// never started). `script_columns` is this run's scripts header, which
/// the earlier file must match.
///
/// A page that failed in a way that may pass if tried again is dropped, to
/// be fetched again, unless the run cannot fetch (a collector:
/// `config.job`), which keeps every finished page.
pub fn prepare(
    config: &Config,
    script_columns: &[&str],
    format: Format,
) -> anyhow::Result<Option<Earlier>> {
    let (scripts_part, pages_part) = part_files(config)?;
    // No report, or an empty one (killed as it was created): nothing was
    // finished, so a new run is the same thing.
    if std::fs::metadata(&pages_part).map_or(true, |m| m.len() == 0) {
        return Ok(None);
    }
    RunId::of(config).check(&pages_part)?;
    if let Some(scripts_part) = &scripts_part
        && !scripts_part.exists()
    {
        bail!(
            "cannot resume: {} is missing but {} is there; start again without --resume",
            scripts_part.display(),
            pages_part.display()
        );
    }
    let columns = [script_columns, config.layout.page_fields.names()];
    let [script_compression, page_compression] = config.layout.compression;
    let carry = |pages: &Path, scripts: Option<&Path>| {
        carry_over(
            pages,
            scripts,
            columns,
            format,
            config.encoding.spreadsheet_safe,
            config.job.is_none(),
        )
    };
    if let Some(part) = &scripts_part {
        check_compression(part, script_compression)?;
    }
    check_compression(&pages_part, page_compression)?;
    let compressed = scripts_part.is_some() && script_compression != Compression::None
        || page_compression != Compression::None;
    if !compressed {
        return carry(&pages_part, scripts_part.as_deref()).map(Some);
    }
    // Both are decompressed to plain files, trimmed there as uncompressed
    // outputs are, then compressed again in place of the .part files.
    let pages = Plain::of(&pages_part, page_compression)?;
    let scripts = scripts_part
        .as_deref()
        .map(|part| Plain::of(part, script_compression))
        .transpose()?;
    let earlier =
        carry(pages.path(), scripts.as_ref().map(Plain::path)).map_err(|e| match &scripts {
            Some(scripts) => pages.shown(scripts.shown(e)),
            None => pages.shown(e),
        })?;
    let scripts = scripts.map(Plain::compress).transpose()?;
    let pages = pages.compress()?;
    // As carry_over does: the scripts first.
    if let Some(scripts) = scripts {
        scripts.rename()?;
    }
    pages.rename()?;
    Ok(Some(earlier))
}

/// Refuses a `.part` file compressed otherwise than this run asks: its
/// rows would read as damage.
fn check_compression(part: &Path, compression: Compression) -> anyhow::Result<()> {
    use std::io::Read as _;
    let context = || format!("cannot resume from {}", part.display());
    let mut head = [0u8; 4];
    let mut file = File::open(part).with_context(context)?;
    let read = file.read(&mut head).with_context(context)?;
    let found = Compression::sniff(&head[..read]);
    // Fewer than 4 bytes: killed as it began, nothing to tell.
    if read >= 4 && found != compression {
        let was = match found {
            Compression::None => "uncompressed".to_owned(),
            other => format!("with {}", other.as_str()),
        };
        bail!(
            "cannot resume from {}: it was written {was}, this run asks for {} (was --compress \
             used differently?); start again without --resume",
            part.display(),
            compression.as_str(),
        );
    }
    Ok(())
}

/// A compressed `.part` file's whole members, decompressed into a
/// temporary file beside it, to be trimmed and compressed again.
struct Plain {
    part: PathBuf,
    compression: Compression,
    plain: tempfile::TempPath,
}

impl Plain {
    fn of(part: &Path, compression: Compression) -> anyhow::Result<Plain> {
        let context = || format!("cannot resume from {}", part.display());
        let dir = part.parent().unwrap_or(Path::new("."));
        let mut plain = tempfile::Builder::new()
            .prefix(".scriptscrape-resume-")
            .tempfile_in(dir)
            .with_context(context)?;
        let mut out = std::io::BufWriter::new(plain.as_file_mut());
        crate::output::compress::whole_members(part, compression, &mut out).map_err(|e| {
            anyhow::anyhow!(
                "cannot resume: {} is damaged ({e}); start again without --resume",
                part.display()
            )
        })?;
        std::io::Write::flush(&mut out).with_context(context)?;
        drop(out);
        Ok(Plain {
            part: part.to_owned(),
            compression,
            plain: plain.into_temp_path(),
        })
    }

    fn path(&self) -> &Path {
        &self.plain
    }

    /// `err` with the temporary file's name replaced by what it holds
    /// (messages give paths whole, or a file's name alone).
    fn shown(&self, err: anyhow::Error) -> anyhow::Error {
        let mut text = format!("{err:#}");
        let whole = self.plain.display().to_string();
        text = text.replace(&whole, &format!("{} (decompressed)", self.part.display()));
        if let (Some(plain), Some(part)) = (self.plain.file_name(), self.part.file_name()) {
            let (plain, part) = (plain.to_string_lossy(), part.to_string_lossy());
            text = text.replace(&*plain, &format!("{part} (decompressed)"));
        }
        anyhow::anyhow!(text)
    }

    /// Compresses the trimmed rows into a file beside the `.part`, ready to
    /// replace it: in members of about a MiB, each whole, so that reading
    /// it back never holds more than one in memory.
    fn compress(self) -> anyhow::Result<Rewritten> {
        use std::io::Write as _;
        let context = || format!("cannot resume from {}", self.part.display());
        let mut tmp = self.part.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut to = std::io::BufWriter::new(File::create(&tmp).with_context(context)?);
        let mut from = File::open(&self.plain).with_context(context)?;
        let mut compressor =
            crate::output::compress::Compressor::new(self.compression).with_context(context)?;
        let (mut chunk, mut scratch) = (vec![0u8; 1 << 20], Vec::new());
        loop {
            let n = read_full(&mut from, &mut chunk).with_context(context)?;
            if n == 0 {
                break;
            }
            let member = compressor
                .member(&chunk[..n], &mut scratch)
                .with_context(context)?;
            to.write_all(member).with_context(context)?;
        }
        to.flush().with_context(context)?;
        to.get_ref().sync_all().with_context(context)?;
        Ok(Rewritten {
            tmp,
            part: self.part,
        })
    }
}

/// Reads until `buf` is full or the file ends: the bytes read.
fn read_full(from: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read as _;
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A compressed `.part` file written again, to be renamed over it.
struct Rewritten {
    tmp: PathBuf,
    part: PathBuf,
}

impl Rewritten {
    fn rename(self) -> anyhow::Result<()> {
        std::fs::rename(&self.tmp, &self.part)
            .with_context(|| format!("cannot resume from {}", self.part.display()))?;
        // Renamed: nothing left for Drop to remove.
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Rewritten {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Checks the two `.part` files against each other and rewrites them with
/// the rows of finished pages only; on any damage, refuses and leaves both
/// as they were.
///
/// The writer puts a page's script rows (contiguous) before its report
/// row, one page after another, so the pages with scripts come in the
/// same order in both files: one pass over both at once checks each
/// report row's `scripts` count against the rows there, in constant
/// memory. Where the scripts file ends before a page's rows do (its tail
/// torn: a kill, or a power loss, as only final files are synced), the
/// pages from there on are not finished and are fetched again; rows that
/// disagree anywhere else are damage.
fn carry_over(
    pages_part: &Path,
    scripts_part: Option<&Path>,
    [script_columns, page_columns]: [&[&str]; 2],
    format: Format,
    spreadsheet_safe: bool,
    retry_transient: bool,
) -> anyhow::Result<Earlier> {
    let mut pages = Rows::open(pages_part, page_columns, format)?;
    let mut scripts = scripts_part
        .map(|path| Rows::open(path, script_columns, format))
        .transpose()?;
    let mut pages_out = Rewrite::start(&pages)?;
    let mut scripts_out = scripts.as_ref().map(Rewrite::start).transpose()?;
    // --spreadsheet-safe wrote formula-like values with a leading quote;
    // keys are made from the values as read.
    let unescape = |v: &str| -> String {
        match v.strip_prefix('\'') {
            Some(rest) if spreadsheet_safe => rest.to_owned(),
            _ => v.to_owned(),
        }
    };
    let mut done = Done::default();
    let mut summary = Summary::default();
    // The last page whose script rows were matched, and its count.
    let mut last: Option<(String, u64, u64)> = None;
    while !pages.at_end() {
        let report = pages.record();
        let page_url = report.get("page_url").into_owned();
        // Checked by Rows: numbers where numbers belong, a known error.
        let count = report.get("scripts").parse::<u64>().unwrap_or(0);
        let status = report.get("status").parse::<u16>().ok();
        let error = report.get("error").into_owned();
        if !error.is_empty() && count > 0 {
            return Err(pages.damaged(format!(
                "scripts is {count} for a page that failed ({error})"
            )));
        }
        let mut finished = true;
        if let (Some(rows), Some(out)) = (&mut scripts, &mut scripts_out)
            && count > 0
        {
            let start = rows.start;
            let mut found = 0;
            while found < count {
                if rows.at_end() {
                    // The scripts file ends within (or before) this page's
                    // rows: its tail was torn, and this page is not done.
                    finished = false;
                    break;
                }
                let url = rows.record().get("page_url");
                if url != page_url {
                    return Err(disagree(rows, &pages, &page_url, count, found, &last));
                }
                found += 1;
                rows.advance()?;
            }
            if finished {
                out.copy(start, rows.start)?;
                last = Some((page_url.clone(), count, pages.line));
            }
        }
        let keep = finished
            && if error.is_empty() {
                summary.pages_ok += 1;
                summary.scripts += count;
                true
            } else {
                let kind = ErrorKind::from_name(&error).expect("checked by Rows");
                let again = retry_transient && transient(kind, status);
                if !again {
                    *summary.failures.entry(kind).or_default() += 1;
                }
                !again
            };
        if keep {
            let page_url = &*unescape(&page_url);
            let url = (error != ErrorKind::InvalidUrl.as_str()).then_some(page_url);
            done.keys.insert(done.key(url, page_url));
            pages_out.copy(pages.start, pages.end)?;
        }
        pages.advance()?;
    }
    // What is left are the rows of pages whose report row never made it:
    // dropped, but read to the end so that damage there is found too.
    if let Some(rows) = &mut scripts {
        if let Some((url, count, line)) = &last
            && !rows.at_end()
            && rows.record().get("page_url") == url.as_str()
        {
            return Err(rows.damaged(format!(
                "a row of {url} past the {count} its report row (line {line} of {}) gives it",
                file_name(&pages.path)
            )));
        }
        while !rows.at_end() {
            rows.advance()?;
        }
    }
    // Only now, with both files read whole, is anything replaced: the
    // scripts first, so that a kill between the two renames leaves a
    // report that the next --resume trims again to the same pages.
    let scripts_out = scripts_out.map(Rewrite::finish).transpose()?;
    let pages_out = pages_out.finish()?;
    if let Some(out) = scripts_out {
        out.rename()?;
    }
    pages_out.rename()?;
    summary.resumed = done.len() as u64;
    Ok(Earlier { done, summary })
}

/// The message for script rows that disagree with the report row of the
/// page they should belong to.
fn disagree(
    rows: &Rows,
    pages: &Rows,
    page_url: &str,
    count: u64,
    found: u64,
    last: &Option<(String, u64, u64)>,
) -> anyhow::Error {
    let report = file_name(&pages.path);
    if found == 0
        && let Some((url, count, line)) = last
        && rows.record().get("page_url") == url.as_str()
    {
        return rows.damaged(format!(
            "a row of {url} past the {count} its report row (line {line} of {report}) gives it"
        ));
    }
    let line = pages.line;
    if found == 0 {
        return rows.damaged(format!(
            "a row of {} where the {count} of {page_url} should start (its report row: line \
             {line} of {report})",
            rows.record().get("page_url")
        ));
    }
    rows.damaged(format!(
        "{found} script rows of {page_url} end here, where its report row (line {line} of \
         {report}) says {count}"
    ))
}

fn file_name(path: &Path) -> Cow<'_, str> {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
}

/// One row read back from an output, whichever its format.
enum Record<'a> {
    Csv(&'a csv::StringRecord, &'a [&'a str]),
    Json(&'a serde_json::Map<String, serde_json::Value>),
}

impl<'a> Record<'a> {
    /// The value of column `name` as text, empty when absent or null.
    fn get(&self, name: &str) -> Cow<'a, str> {
        match *self {
            Record::Csv(record, columns) => columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| record.get(i))
                .map_or(Cow::Borrowed(""), Cow::Borrowed),
            Record::Json(object) => match object.get(name) {
                Some(serde_json::Value::String(s)) => Cow::Borrowed(s),
                Some(serde_json::Value::Null) | None => Cow::Borrowed(""),
                Some(other) => Cow::Owned(other.to_string()),
            },
        }
    }

    /// Checks each value against what the writer puts in its column: the
    /// reason for the first that does not fit.
    fn check(&self, columns: &[&str]) -> Result<(), String> {
        for column in columns {
            let kind = Kind::of(column);
            let fits = match self {
                Record::Csv(..) => kind.fits_text(&self.get(column)),
                Record::Json(object) => {
                    kind.fits_json(object.get(*column).unwrap_or(&serde_json::Value::Null))
                }
            };
            if !fits {
                let shown = match self {
                    Record::Csv(..) => format!("{:?}", self.get(column)),
                    Record::Json(object) => object
                        .get(*column)
                        .map_or_else(|| "absent".to_owned(), |v| v.to_string()),
                };
                return Err(format!(
                    "{column} is {}, not {}",
                    shorten(&shown),
                    kind.wanted()
                ));
            }
        }
        Ok(())
    }
}

/// At most 40 characters of a value, for a one-line message.
fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(40) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

/// What a column of the outputs holds (see `output::Sink`).
#[derive(Clone, Copy)]
enum Kind {
    Text,
    OptText,
    Count,
    OptCount,
    Flag,
    OptFlag,
    /// An HTTP status, or none.
    Status,
    /// An error kind's name, or none.
    Error,
}

impl Kind {
    fn of(column: &str) -> Kind {
        match column {
            "page_url" => Kind::Text,
            "index" | "scripts" | "bytes" | "elapsed_ms" | "attempts" | "depth" => Kind::Count,
            "inline_bytes" | "content_bytes" => Kind::OptCount,
            "inline" | "third_party" => Kind::Flag,
            // An element's flags and position: null on the rows of
            // scripts a browser ran that are no element (--render).
            "async" | "defer" | "nomodule" | "svg" | "nonce_present" => Kind::OptFlag,
            "src_resolved" | "csp_allowed" | "integrity_ok" => Kind::OptFlag,
            "status" | "content_status" => Kind::Status,
            "error" | "content_error" => Kind::Error,
            _ => Kind::OptText,
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Kind::Text | Kind::OptText => "text",
            Kind::Count | Kind::OptCount => "a number",
            Kind::Flag | Kind::OptFlag => "true or false",
            Kind::Status => "an HTTP status",
            Kind::Error => "a kind of error scriptscrape reports",
        }
    }

    /// A CSV cell: text, so absent is empty.
    fn fits_text(self, text: &str) -> bool {
        let count = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let flag = |t: &str| t == "true" || t == "false";
        match self {
            Kind::Text | Kind::OptText => true,
            Kind::Count => count(text) && text.parse::<u64>().is_ok(),
            Kind::OptCount => text.is_empty() || Kind::Count.fits_text(text),
            Kind::Flag => flag(text),
            Kind::OptFlag => text.is_empty() || flag(text),
            Kind::Status => {
                text.is_empty()
                    || count(text) && text.parse().is_ok_and(|s: u16| (100..1000).contains(&s))
            }
            Kind::Error => text.is_empty() || ErrorKind::from_name(text).is_some(),
        }
    }

    /// A JSON value: typed, absent is null.
    fn fits_json(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (self, value) {
            (
                Kind::OptText | Kind::OptCount | Kind::OptFlag | Kind::Status | Kind::Error,
                Value::Null,
            ) => true,
            (Kind::Text | Kind::OptText, Value::String(_)) => true,
            (Kind::Count | Kind::OptCount, Value::Number(n)) => n.is_u64(),
            (Kind::Flag | Kind::OptFlag, Value::Bool(_)) => true,
            (Kind::Status, Value::Number(n)) => {
                n.as_u64().is_some_and(|s| (100..1000).contains(&s))
            }
            (Kind::Error, Value::String(s)) => ErrorKind::from_name(s).is_some(),
            _ => false,
        }
    }
}

/// The rows of a `.part` file, read one at a time: each checked, a torn
/// last row taken for the end of the file, a bad row anywhere else refused
/// as damage.
struct Rows<'a> {
    path: PathBuf,
    columns: &'a [&'a str],
    format: Format,
    parser: Parser,
    len: u64,
    /// Bytes before the first row: the CSV header.
    head: u64,
    /// The current row: the line it starts on, where it starts and ends.
    line: u64,
    start: u64,
    end: u64,
    at_end: bool,
}

enum Parser {
    Csv(Box<csv::Reader<File>>, csv::StringRecord),
    Jsonl(
        BufReader<File>,
        Vec<u8>,
        serde_json::Map<String, serde_json::Value>,
    ),
}

impl<'a> Rows<'a> {
    /// Opens `path`, checks its header, and reads its first row.
    fn open(path: &Path, columns: &'a [&'a str], format: Format) -> anyhow::Result<Rows<'a>> {
        let context = || format!("cannot resume from {}", path.display());
        let file = File::open(path).with_context(context)?;
        let len = file.metadata().with_context(context)?.len();
        let (parser, head) = match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(file);
                let mut header = csv::StringRecord::new();
                // An empty file was killed before its header was written.
                if len > 0
                    && !(reader.read_record(&mut header).unwrap_or(false)
                        && header.iter().eq(columns.iter().copied()))
                {
                    bail!(
                        "cannot resume from {}: its columns differ from this run's (was \
                         --fields, --page-fields, --inline-text or --format used \
                         differently?); start again without --resume",
                        path.display()
                    );
                }
                let head = reader.position().byte();
                (
                    Parser::Csv(Box::new(reader), csv::StringRecord::new()),
                    head,
                )
            }
            // Refused when the run starts (config.rs): a footerless file
            // cannot be read.
            Format::Parquet => bail!(
                "cannot resume from {}: --resume cannot continue Parquet outputs",
                path.display()
            ),
            Format::Jsonl => (
                Parser::Jsonl(BufReader::new(file), Vec::new(), serde_json::Map::new()),
                0,
            ),
        };
        let mut rows = Rows {
            path: path.to_owned(),
            columns,
            format,
            parser,
            len,
            head,
            line: 1,
            start: head,
            end: head,
            at_end: false,
        };
        rows.advance()?;
        Ok(rows)
    }

    fn at_end(&self) -> bool {
        self.at_end
    }

    /// The current row (not at the end).
    fn record(&self) -> Record<'_> {
        match &self.parser {
            Parser::Csv(_, record) => Record::Csv(record, self.columns),
            Parser::Jsonl(_, _, object) => Record::Json(object),
        }
    }

    /// The refusal for damage in the current row.
    fn damaged(&self, why: impl std::fmt::Display) -> anyhow::Error {
        damaged(&self.path, self.line, why)
    }

    /// Moves to the next row, or to the end.
    fn advance(&mut self) -> anyhow::Result<()> {
        if self.at_end {
            return Ok(());
        }
        let context = || format!("cannot resume from {}", self.path.display());
        let columns = self.columns.len();
        let problem = match &mut self.parser {
            Parser::Csv(reader, record) => {
                let pos = reader.position();
                (self.start, self.line) = (pos.byte(), pos.line());
                let read = reader.read_record(record);
                self.end = reader.position().byte();
                match read {
                    Ok(false) => {
                        self.at_end = true;
                        return Ok(());
                    }
                    Ok(true) if record.len() != columns => {
                        Some(format!("{} fields, not {columns}", record.len()))
                    }
                    // A whole row ends with the line break the writer puts
                    // after every row, outside quotes.
                    Ok(true) if self.end >= self.len && !whole_tail(&self.path, self.start)? => {
                        Some("a row cut short".to_owned())
                    }
                    Ok(true) => None,
                    Err(e) => Some(e.to_string()),
                }
            }
            Parser::Jsonl(reader, line, object) => {
                use std::io::BufRead as _;
                self.start = self.end;
                line.clear();
                let n = reader.read_until(b'\n', line).with_context(context)?;
                if n == 0 {
                    self.at_end = true;
                    return Ok(());
                }
                self.end = self.start + n as u64;
                self.line = if self.start == 0 { 1 } else { self.line + 1 };
                match serde_json::from_slice(line) {
                    Ok(serde_json::Value::Object(o)) if line.last() == Some(&b'\n') => {
                        *object = o;
                        None
                    }
                    _ => Some("not a JSON object".to_owned()),
                }
            }
        };
        if let Some(why) = problem {
            // A killed run can leave its last row torn; a bad row with
            // rows after it is damage, and guessing would lose or
            // duplicate rows.
            if self.end < self.len && self.more()? {
                return Err(self.damaged(why));
            }
            if self.format == Format::Csv && self.row_follows()? {
                return Err(
                    self.damaged("an unbalanced quote runs this row on over the rows after it")
                );
            }
            self.at_end = true;
            return Ok(());
        }
        if let Record::Json(object) = self.record()
            && !(object.len() == columns && self.columns.iter().all(|c| object.contains_key(*c)))
        {
            // The first row says how the file was written; a later one
            // that differs from it is damage.
            if self.start > 0 {
                return Err(self.damaged("other fields than the rows before it"));
            }
            bail!(
                "cannot resume from {}: its fields differ from this run's (was --fields, \
                 --page-fields or --inline-text used differently?); start again without --resume",
                self.path.display()
            );
        }
        self.record()
            .check(self.columns)
            .map_err(|why| self.damaged(why))
    }

    /// Whether anything but blank lines follows the bad current row.
    fn more(&mut self) -> anyhow::Result<bool> {
        match &mut self.parser {
            Parser::Csv(reader, _) => {
                let mut rest = csv::StringRecord::new();
                Ok(!matches!(reader.read_record(&mut rest), Ok(false)))
            }
            Parser::Jsonl(reader, ..) => {
                use std::io::Read as _;
                let mut rest = Vec::new();
                reader
                    .read_to_end(&mut rest)
                    .with_context(|| format!("cannot resume from {}", self.path.display()))?;
                Ok(rest.iter().any(|b| !b.is_ascii_whitespace()))
            }
        }
    }

    /// Whether a whole, valid row starts on a line after the first of the
    /// bad current row, which runs to the end of the file: then it is no
    /// torn tail, but a stray quote that swallowed the rows after it.
    fn row_follows(&self) -> anyhow::Result<bool> {
        use std::io::{BufRead as _, Seek as _, SeekFrom};
        let context = || format!("cannot resume from {}", self.path.display());
        let mut file = BufReader::new(File::open(&self.path).with_context(context)?);
        file.seek(SeekFrom::Start(self.start))
            .with_context(context)?;
        let mut first = Vec::new();
        file.read_until(b'\n', &mut first).with_context(context)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(file);
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => return Ok(false),
                Ok(true)
                    if record.len() == self.columns.len()
                        && Record::Csv(&record, self.columns)
                            .check(self.columns)
                            .is_ok() =>
                {
                    return Ok(true);
                }
                _ => {}
            }
        }
    }
}

/// Whether the last row of the file at `path`, from byte `start`, is
/// whole: it ends with a line break outside quotes (the csv reader takes
/// a quoted field cut short for one that ends with the file).
fn whole_tail(path: &Path, start: u64) -> anyhow::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let context = || format!("cannot resume from {}", path.display());
    let mut file = File::open(path).with_context(context)?;
    file.seek(SeekFrom::Start(start)).with_context(context)?;
    let mut buf = [0u8; 8192];
    let (mut quotes, mut last) = (0u64, 0u8);
    loop {
        let n = file.read(&mut buf).with_context(context)?;
        if n == 0 {
            break;
        }
        quotes += buf[..n].iter().filter(|b| **b == b'"').count() as u64;
        last = buf[n - 1];
    }
    Ok(last == b'\n' && quotes % 2 == 0)
}

/// A `.part` file being rewritten: byte ranges of it copied, in order, to
/// a temporary file that replaces it once all is read.
struct Rewrite {
    path: PathBuf,
    tmp: PathBuf,
    from: BufReader<File>,
    at: u64,
    to: std::io::BufWriter<File>,
}

impl Rewrite {
    /// Starts the rewrite of what `rows` reads, with its header.
    fn start(rows: &Rows) -> anyhow::Result<Rewrite> {
        let path = rows.path.clone();
        let context = || format!("cannot resume from {}", path.display());
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let from = BufReader::new(File::open(&path).with_context(context)?);
        let to = std::io::BufWriter::new(File::create(&tmp).with_context(context)?);
        let mut rewrite = Rewrite {
            path,
            tmp,
            from,
            at: 0,
            to,
        };
        if rows.head > 0 {
            rewrite.copy(0, rows.head)?;
        } else if rows.format == Format::Csv {
            // Killed before its header was written.
            let mut header = csv::Writer::from_writer(Vec::new());
            header.write_record(rows.columns)?;
            let header = header.into_inner().map_err(|e| e.into_error())?;
            std::io::Write::write_all(&mut rewrite.to, &header)
                .with_context(|| format!("cannot write {}", rewrite.tmp.display()))?;
        }
        Ok(rewrite)
    }

    /// Copies bytes `start..end`, which come after what was copied before.
    fn copy(&mut self, start: u64, end: u64) -> anyhow::Result<()> {
        use std::io::Read as _;
        let context = || format!("cannot resume from {}", self.path.display());
        debug_assert!(self.at <= start && start <= end);
        self.from
            .seek_relative((start - self.at) as i64)
            .with_context(context)?;
        let n = std::io::copy(&mut (&mut self.from).take(end - start), &mut self.to)
            .with_context(context)?;
        if n != end - start {
            bail!(
                "cannot resume from {}: it changed while read",
                self.path.display()
            );
        }
        self.at = end;
        Ok(())
    }

    /// Writes out what is left and syncs it, ready to be renamed.
    fn finish(mut self) -> anyhow::Result<Rewrite> {
        use std::io::Write as _;
        let context = || format!("cannot write {}", self.tmp.display());
        self.to.flush().with_context(context)?;
        self.to.get_ref().sync_all().with_context(context)?;
        Ok(self)
    }

    /// Puts the rewritten file in place of the earlier one.
    fn rename(self) -> anyhow::Result<()> {
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot resume from {}", self.path.display()))
    }
}

impl Drop for Rewrite {
    /// An abandoned rewrite leaves no temporary file (after the rename
    /// there is none to remove).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A `.part` file with a bad row before its end: a killed run only ever
/// tears the last one, so this is damage, and guessing would lose or
/// duplicate rows.
fn damaged(path: &Path, line: u64, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot resume: {} is damaged at line {line} ({why}); start again without --resume",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_tried_again() {
        assert!(transient(ErrorKind::Timeout, None));
        assert!(transient(ErrorKind::HttpStatus, Some(503)));
        assert!(transient(ErrorKind::HttpStatus, Some(429)));
        assert!(!transient(ErrorKind::HttpStatus, Some(404)));
        assert!(!transient(ErrorKind::NotHtml, Some(200)));
        assert!(!transient(ErrorKind::InvalidUrl, None));
    }

    const SCRIPTS: [&str; 3] = ["page_url", "index", "inline_text"];

    /// A report row as the writer makes it.
    fn page(url: &str, status: &str, error: &str, scripts: u64) -> String {
        format!("{url},{url},{status},{error},{scripts},100,5,,utf-8,1,0,,\n")
    }

    fn script(url: &str, index: u64, text: &str) -> String {
        format!("{url},{index},{text}\n")
    }

    /// Pages a (2 scripts), b (404), c (1 script, multi-line text), d (503:
    /// tried again), e (3 scripts).
    fn files() -> (String, String) {
        let pages = crate::output::PAGE_COLUMNS.join(",")
            + "\n"
            + &page("a", "200", "", 2)
            + &page("b", "404", "http_status", 0)
            + &page("c", "200", "", 1)
            + &page("d", "503", "http_status", 0)
            + &page("e", "200", "", 3);
        let scripts = SCRIPTS.join(",")
            + "\n"
            + &script("a", 0, "")
            + &script("a", 1, "x")
            + &script("c", 0, "\"one,\ntwo \"\"q\"\"\"")
            + &script("e", 0, "")
            + &script("e", 1, "")
            + &script("e", 2, "");
        (pages, scripts)
    }

    struct Parts {
        _dir: tempfile::TempDir,
        pages: PathBuf,
        scripts: PathBuf,
    }

    impl Parts {
        fn new(pages: &str, scripts: &str) -> Parts {
            let dir = tempfile::tempdir().unwrap();
            let parts = Parts {
                pages: dir.path().join("p.part"),
                scripts: dir.path().join("s.part"),
                _dir: dir,
            };
            std::fs::write(&parts.pages, pages).unwrap();
            std::fs::write(&parts.scripts, scripts).unwrap();
            parts
        }

        fn carry_over(&self, format: Format) -> anyhow::Result<Earlier> {
            carry_over(
                &self.pages,
                Some(&self.scripts),
                [&SCRIPTS, &crate::output::PAGE_COLUMNS],
                format,
                false,
                true,
            )
        }

        fn read(&self) -> (String, String) {
            (
                std::fs::read_to_string(&self.pages).unwrap(),
                std::fs::read_to_string(&self.scripts).unwrap(),
            )
        }

        /// Refused, naming `line` and `why`, with both files as they were.
        fn refused(&self, format: Format, line: u64, why: &str) {
            let before = self.read();
            let err = self.carry_over(format).unwrap_err().to_string();
            assert!(err.contains(&format!("damaged at line {line} (")), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(!err.contains('\n'), "{err}");
            assert_eq!(self.read(), before);
            assert!(!self.pages.with_extension("part.tmp").exists());
            assert!(!self.scripts.with_extension("part.tmp").exists());
        }
    }

    fn lines_from(text: &str, first: usize) -> String {
        text.split_inclusive('\n').skip(first).collect()
    }

    #[test]
    fn whole_files_keep_finished_pages_and_drop_transient_failures() {
        let (pages, scripts) = files();
        let parts = Parts::new(&pages, &scripts);
        let earlier = parts.carry_over(Format::Csv).unwrap();
        assert_eq!(earlier.summary.pages_ok, 3);
        assert_eq!(earlier.summary.scripts, 6);
        assert_eq!(earlier.summary.resumed, 4);
        let (p, s) = parts.read();
        assert_eq!(p, pages.replace(&page("d", "503", "http_status", 0), ""));
        assert_eq!(s, scripts);
    }

    #[test]
    fn a_torn_scripts_tail_leaves_its_pages_to_fetch_again() {
        let (pages, scripts) = files();
        // Cut within e's rows, within c's (a quoted field cut after a line
        // break), and before the header's end.
        for (cut, ok, kept) in [(4, 2, 3), (14, 2, 3), (5, 2, 3), (26, 1, 2)] {
            let torn = &scripts[..scripts.len() - cut];
            let parts = Parts::new(&pages, torn);
            let earlier = parts.carry_over(Format::Csv).unwrap();
            let (p, s) = parts.read();
            assert_eq!(earlier.summary.pages_ok, ok, "cut {cut}: {p}");
            let report = Parts::new(&p, &s);
            // What is left agrees with itself.
            report.carry_over(Format::Csv).unwrap();
            let rows = csv::Reader::from_reader(s.as_bytes()).records().count();
            assert_eq!(rows, kept, "cut {cut}: {s}");
            assert!(!p.contains("\ne,"), "cut {cut}: {p}");
        }
        // Torn within c's quoted text: c and e go.
        let at = scripts.find("two").unwrap();
        let parts = Parts::new(&pages, &scripts[..at]);
        let earlier = parts.carry_over(Format::Csv).unwrap();
        assert_eq!(earlier.summary.pages_ok, 1);
        assert_eq!(earlier.summary.scripts, 2);
        let (p, s) = parts.read();
        assert_eq!(s, lines_from(&scripts, 0)[..scripts.find("c,").unwrap()]);
        assert!(p.contains("\nb,") && !p.contains("\nc,"), "{p}");
    }

    #[test]
    fn rows_of_a_page_with_no_report_row_and_a_torn_report_row_are_dropped() {
        let (pages, scripts) = files();
        // e's report row torn: its rows stay behind.
        let parts = Parts::new(&pages[..pages.len() - 10], &scripts);
        let earlier = parts.carry_over(Format::Csv).unwrap();
        assert_eq!(earlier.summary.pages_ok, 2);
        let (p, s) = parts.read();
        assert!(!s.contains("\ne,") && s.contains("\nc,"), "{s}");
        assert!(!p.contains("\ne,") && !p.contains("\nd,"), "{p}");
    }

    #[test]
    fn rows_that_disagree_with_the_report_are_refused() {
        let (pages, scripts) = files();
        // A row of a missing in the middle.
        Parts::new(&pages, &scripts.replacen(&script("a", 1, "x"), "", 1)).refused(
            Format::Csv,
            3,
            "1 script rows of a end here, where its report row (line 2 of p.part) says 2",
        );
        // One too many.
        let extra = scripts.replacen("c,0,", "a,2,\nc,0,", 1);
        Parts::new(&pages, &extra).refused(Format::Csv, 4, "a row of a past the 2");
        let extra = scripts.clone() + &script("e", 3, "");
        Parts::new(&pages, &extra).refused(Format::Csv, 9, "a row of e past the 3");
        // Fewer scripts than rows, in the report.
        let fewer = pages.replace(&page("c", "200", "", 1), &page("c", "200", "", 0));
        Parts::new(&fewer, &scripts).refused(
            Format::Csv,
            4,
            "a row of c where the 3 of e should start",
        );
        // A failed page with scripts.
        let failed = pages.replace(
            &page("b", "404", "http_status", 0),
            &page("b", "404", "http_status", 1),
        );
        Parts::new(&failed, &scripts).refused(Format::Csv, 3, "for a page that failed");
    }

    #[test]
    fn report_fields_the_writer_never_makes_are_refused() {
        let (pages, scripts) = files();
        for (from, to, why) in [
            (",404,", ",2x0,", "status is \"2x0\", not an HTTP status"),
            (",404,", ",99,", "status is \"99\""),
            (",404,", ",1000,", "status is \"1000\""),
            ("http_status,0", "httpstatus,0", "not a kind of error"),
            (
                "http_status,0,100",
                "http_status,0,-1",
                "bytes is \"-1\", not a number",
            ),
        ] {
            let bad = pages.replacen(from, to, 1);
            assert_ne!(bad, pages);
            Parts::new(&bad, &scripts).refused(Format::Csv, 3, why);
        }
        // The last row too, when it is whole.
        let bad = pages.replacen("e,e,200", "e,e,2x0", 1);
        Parts::new(&bad, &scripts).refused(Format::Csv, 6, "status");
        let bad = scripts.replacen("a,1,", "a,one,", 1);
        Parts::new(&pages, &bad).refused(Format::Csv, 3, "index is \"one\"");
    }

    #[test]
    fn a_stray_quote_that_swallows_rows_is_damage_not_a_torn_tail() {
        let (pages, scripts) = files();
        let mut lines: Vec<&str> = scripts.split_inclusive('\n').collect();
        let quoted = format!("\"{}", lines[6]);
        lines[6] = &quoted;
        // Swallows the rest of the file, e's last row included.
        Parts::new(&pages, &lines.concat()).refused(Format::Csv, 7, "unbalanced quote");
        // One that meets another quote makes a row of too many fields.
        let bad = scripts.replacen("a,1,x", "a,1,\"x", 1);
        Parts::new(&pages, &bad).refused(Format::Csv, 3, "4 fields, not 3");
        // A bad row with rows after it.
        let bad = scripts.replacen("a,1,x", "a,1", 1);
        Parts::new(&pages, &bad).refused(Format::Csv, 3, "2 fields, not 3");
    }

    fn to_jsonl(csv: &str) -> String {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header = reader.headers().unwrap().clone();
        let mut out = String::new();
        for record in reader.records() {
            let record = record.unwrap();
            let mut object = serde_json::Map::new();
            for (name, value) in header.iter().zip(record.iter()) {
                let value = match Kind::of(name) {
                    _ if value.is_empty() => serde_json::Value::Null,
                    Kind::Count | Kind::OptCount | Kind::Status => {
                        serde_json::Value::Number(value.parse::<u64>().unwrap().into())
                    }
                    _ => serde_json::Value::String(value.to_owned()),
                };
                object.insert(name.to_owned(), value);
            }
            out += &serde_json::to_string(&object).unwrap();
            out.push('\n');
        }
        out
    }

    #[test]
    fn json_lines_are_checked_the_same_way() {
        let (pages, scripts) = files();
        let (pages, scripts) = (to_jsonl(&pages), to_jsonl(&scripts));
        let parts = Parts::new(&pages, &scripts);
        assert_eq!(parts.carry_over(Format::Jsonl).unwrap().summary.pages_ok, 3);
        // Torn within e's rows: e goes.
        let parts = Parts::new(&pages, &scripts[..scripts.len() - 4]);
        assert_eq!(parts.carry_over(Format::Jsonl).unwrap().summary.pages_ok, 2);
        let (p, s) = parts.read();
        assert_eq!(s.lines().count(), 3);
        assert_eq!(p.lines().count(), 3);
        // A row missing in the middle, a bad line, a bad status.
        let lines: Vec<&str> = scripts.split_inclusive('\n').collect();
        let missing = [&lines[..1], &lines[2..]].concat().concat();
        Parts::new(&pages, &missing).refused(Format::Jsonl, 2, "1 script rows of a end here");
        let bad = [&lines[..1], &["{,not json\n"], &lines[2..]]
            .concat()
            .concat();
        Parts::new(&pages, &bad).refused(Format::Jsonl, 2, "not a JSON object");
        let bad = pages.replacen("\"status\":404", "\"status\":\"404\"", 1);
        Parts::new(&bad, &scripts).refused(Format::Jsonl, 2, "status is \"404\"");
        let bad = scripts.replacen(",\"index\":1", "", 1);
        Parts::new(&pages, &bad).refused(Format::Jsonl, 2, "other fields than the rows before");
        let bad = scripts.replacen("\"index\":1", "\"index\":-1", 1);
        Parts::new(&pages, &bad).refused(Format::Jsonl, 2, "index is -1, not a number");
    }
}
