//! `--resume`: continuing a run that was stopped or killed.
//!
//! An unfinished run leaves `.part` files of whole pages (see `output`).
//! The page report is the record of what was finished: a page's script
//! rows are written before its report row, so a page with a whole report
//! row has all its script rows on disk. Resuming:
//! 1. reads the report's `.part`; pages that succeeded or failed for good
//!    are finished; transient failures (timeouts, refused or broken
//!    connections, DNS, 429 and 5xx) are to be tried again;
//! 2. rewrites both `.part` files with the rows of finished pages only,
//!    which also drops a torn last row and the script rows of a page whose
//!    report row never made it;
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

use crate::config::{Config, Destination};
use crate::error::ErrorKind;
use crate::input::HashSet64;
use crate::input::Source;
use crate::output::{Format, PAGE_COLUMNS, staged_part};
use crate::report::Summary;

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
    /// When the run began (RFC 3339, UTC): not compared, for messages.
    #[serde(default)]
    started_at: String,
}

impl RunId {
    /// The identity of the run `config` describes.
    pub fn of(config: &Config) -> RunId {
        let path = |p: &Path| crate::output::real_path(p).display().to_string();
        RunId {
            inputs: config
                .sources
                .iter()
                .map(|s| match s {
                    Source::Stdin => "-".to_owned(),
                    Source::File(p) => path(p),
                })
                .collect(),
            scripts: match &config.output {
                Destination::Stdout => "-".to_owned(),
                Destination::File(p) => path(p),
            },
            format: match config.encoding.format {
                Format::Csv => "csv",
                Format::Jsonl => "jsonl",
            }
            .to_owned(),
            inline_text: config.inline_text,
            spreadsheet_safe: config.encoding.spreadsheet_safe,
            detect_utf8: config.detect_utf8,
            started_at: crate::stats::rfc3339(std::time::SystemTime::now()),
        }
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
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_vec_pretty(self).with_context(context)?;
        std::fs::write(&tmp, text).with_context(context)?;
        std::fs::rename(&tmp, &path).with_context(context)
    }

    /// Refuses to continue `pages_part` unless the run that left it is
    /// this one: one line naming what differs.
    fn check(&self, pages_part: &Path) -> anyhow::Result<()> {
        let path = Self::path(pages_part);
        let part = pages_part.display();
        let earlier: RunId = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "cannot resume: {} is damaged; start again without --resume",
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
    // --spreadsheet-safe wrote formula-like values with a leading quote;
    // keys are made from the values as read.
    let unescape = |v: &str| -> String {
        match v.strip_prefix('\'') {
            Some(rest) if config.encoding.spreadsheet_safe => rest.to_owned(),
            _ => v.to_owned(),
        }
    };
    let mut done = Done::default();
    let mut summary = Summary::default();
    // page_url values whose script rows stay.
    let mut kept_pages = HashSet64::default();
    rewrite(&pages_part, &PAGE_COLUMNS, format, |record| {
        let page_url = &*unescape(&record.get("page_url"));
        let status = record.get("status").parse::<u16>().ok();
        let error = &*record.get("error");
        if error.is_empty() {
            summary.pages_ok += 1;
            summary.scripts += record.get("scripts").parse::<u64>().unwrap_or(0);
        } else {
            let Some(kind) = ErrorKind::from_name(error) else {
                // Not a report this version wrote: try the page again.
                return false;
            };
            if transient(kind, status) {
                return false;
            }
            *summary.failures.entry(kind).or_default() += 1;
        }
        let url = (error != ErrorKind::InvalidUrl.as_str()).then_some(page_url);
        done.keys.insert(done.key(url, page_url));
        kept_pages.insert(done.hasher.hash_one(page_url));
        true
    })?;
    if let Some(scripts_part) = &scripts_part {
        rewrite(scripts_part, script_columns, format, |record| {
            let page_url = unescape(&record.get("page_url"));
            kept_pages.contains(done.hasher.hash_one(&*page_url))
        })?;
    }
    summary.resumed = done.len() as u64;
    Ok(Some(Earlier { done, summary }))
}

/// One row read back from an output, whichever its format.
enum Record<'a> {
    Csv(&'a csv::StringRecord, &'a [&'a str]),
    Json(&'a serde_json::Map<String, serde_json::Value>),
}

impl Record<'_> {
    /// The value of column `name` as text, empty when absent or null.
    fn get(&self, name: &str) -> Cow<'_, str> {
        match self {
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
}

/// Rewrites the output file `path` with the whole rows `keep` accepts (and
/// the CSV header), through a temporary file renamed over it, so that a
/// crash while resuming leaves the earlier file as it was. A row is whole
/// when it has every column and ends with a line break; reading stops at
/// the first one that is not (the tail a killed run can leave).
fn rewrite(
    path: &Path,
    columns: &[&str],
    format: Format,
    keep: impl FnMut(&Record<'_>) -> bool,
) -> anyhow::Result<()> {
    let context = || format!("cannot resume from {}", path.display());
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let out = File::create(&tmp).with_context(context)?;
    let out = match format {
        Format::Csv => rewrite_csv(path, columns, out, keep),
        Format::Jsonl => rewrite_jsonl(path, columns, out, keep),
    };
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    out.sync_all().with_context(context)?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(context)?;
    Ok(())
}

fn rewrite_csv(
    path: &Path,
    columns: &[&str],
    out: File,
    mut keep: impl FnMut(&Record<'_>) -> bool,
) -> anyhow::Result<File> {
    let context = || format!("cannot resume from {}", path.display());
    let len = std::fs::metadata(path).with_context(context)?.len();
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(columns).with_context(context)?;
    if len == 0 {
        // Killed before its header was written.
        return writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(context);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::new(File::open(path).with_context(context)?));
    let header = reader.headers().with_context(context)?.clone();
    if !header.iter().eq(columns.iter().copied()) {
        bail!(
            "cannot resume from {}: its columns differ from this run's (was --inline-text or \
             --format used differently?); start again without --resume",
            path.display()
        );
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        let whole = match reader.read_record(&mut record) {
            Ok(false) => break,
            // The record ends where the reader stands; a whole one ends
            // with the line break the writer puts after every record.
            Ok(true) => {
                let end = reader.position().byte();
                record.len() == columns.len() && (end < len || ends_with_newline(path, len)?)
            }
            Err(_) => false,
        };
        if !whole {
            // A killed run can leave its last row torn; anything after a
            // bad row means the file was damaged, and guessing would lose
            // or duplicate rows.
            let mut rest = csv::StringRecord::new();
            if matches!(reader.read_record(&mut rest), Ok(true)) {
                return Err(damaged(path, line));
            }
            break;
        }
        if keep(&Record::Csv(&record, columns)) {
            writer.write_record(&record).with_context(context)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(context)
}

fn rewrite_jsonl(
    path: &Path,
    columns: &[&str],
    out: File,
    mut keep: impl FnMut(&Record<'_>) -> bool,
) -> anyhow::Result<File> {
    use std::io::{BufRead as _, Write as _};
    let context = || format!("cannot resume from {}", path.display());
    let mut reader = BufReader::new(File::open(path).with_context(context)?);
    let mut out = std::io::BufWriter::new(out);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).with_context(context)? == 0 {
            break;
        }
        number += 1;
        let object = match serde_json::from_slice(&line) {
            Ok(serde_json::Value::Object(object)) if line.last() == Some(&b'\n') => object,
            _ => {
                // Torn last line, or damage: see rewrite_csv.
                let mut rest = Vec::new();
                if reader.read_until(b'\n', &mut rest).with_context(context)? > 0 {
                    return Err(damaged(path, number));
                }
                break;
            }
        };
        let same_columns =
            object.len() == columns.len() && columns.iter().all(|c| object.contains_key(*c));
        if !same_columns {
            bail!(
                "cannot resume from {}: its fields differ from this run's (was --inline-text \
                 used differently?); start again without --resume",
                path.display()
            );
        }
        if keep(&Record::Json(&object)) {
            out.write_all(&line).with_context(context)?;
        }
    }
    out.into_inner()
        .map_err(|e| e.into_error())
        .with_context(context)
}

/// A `.part` file with a bad row before its end: a killed run only ever
/// tears the last one, so this is damage, and guessing would lose or
/// duplicate rows.
fn damaged(path: &Path, line: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot resume from {}: damaged at line {line}, not only at its end; start again \
         without --resume",
        path.display()
    )
}

fn ends_with_newline(path: &Path, len: u64) -> anyhow::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    if len == 0 {
        return Ok(false);
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
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

    #[test]
    fn rewrite_keeps_whole_records_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "a,b\n1,x\n2,\"multi\nline\"\n3,y\n4,\"torn\nhalf").unwrap();
        rewrite(&path, &["a", "b"], Format::Csv, |r| r.get("a") != "3").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a,b\n1,x\n2,\"multi\nline\"\n"
        );
        // A last record without its line break is torn too.
        std::fs::write(&path, "a,b\n1,x\n2,y").unwrap();
        rewrite(&path, &["a", "b"], Format::Csv, |_| true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,x\n");
        assert!(rewrite(&path, &["a", "c"], Format::Csv, |_| true).is_err());
        // A bad row with rows after it is damage, not a torn tail.
        std::fs::write(&path, "a,b\n1,x\n2\n3,y\n").unwrap();
        let err = rewrite(&path, &["a", "b"], Format::Csv, |_| true).unwrap_err();
        assert!(err.to_string().contains("damaged at line 3"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a,b\n1,x\n2\n3,y\n"
        );
        // JSON Lines: a line without its break, or not an object, is torn.
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4").unwrap();
        rewrite(&path, &["a"], Format::Jsonl, |r| r.get("a") != "2").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":3}\n"
        );
    }
}
