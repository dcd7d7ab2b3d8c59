//! Reading a run's outputs back: scripts outputs and page reports, as CSV,
//! JSON Lines or Parquet (told apart by their first bytes), from a file or
//! `-`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use anyhow::{Context as _, bail};
use url::Url;

use super::{Content, Inventory, Report, Script, Strings, Sym};
use crate::error::ErrorKind;

/// Reads a scripts output (`-o`) and, if given, the same run's page report
/// (`--pages`), and checks that the two agree; texts go to `strings`,
/// which the other run must share. Also returns what the reader should be
/// warned of.
pub fn inventory(
    scripts: &str,
    pages: Option<&str>,
    strings: &mut Strings,
) -> anyhow::Result<(Inventory, Vec<String>)> {
    let ScriptRows {
        pages: scripts_by_page,
        empty,
        fetched_content,
        lacks,
    } = read_scripts(scripts, strings)?;
    let mut inventory = Inventory {
        pages: scripts_by_page,
        report: None,
        fetched_content,
        lacks,
    };
    let mut warnings = Vec::new();
    match pages {
        Some(pages) => {
            let report = read_report(pages)?;
            agree(&inventory.pages, &report)
                .map_err(|why| anyhow::anyhow!("{scripts} and {pages} disagree: {why}"))?;
            inventory.report = Some(report);
        }
        // A scrape writes a CSV header even with no rows, but JSON Lines
        // with no scripts is empty: without the page report, an empty file
        // may be either that or a run that wrote nothing.
        None if empty => warnings.push(format!(
            "{scripts} is empty: read as a run that found no scripts (its page report would tell)"
        )),
        None => {}
    }
    Ok((inventory, warnings))
}

/// Whether a scripts output and a page report are of the same, whole run:
/// every page's script rows as many as its report row counts. Files of
/// different runs, or one cut short, would otherwise read as scripts
/// removed or added.
fn agree(pages: &BTreeMap<String, Vec<Script>>, report: &Report) -> Result<(), String> {
    let mut wrong = 0usize;
    // The first page in URL order, so that the message does not depend on
    // the hash map's order.
    let mut first: Option<(String, String)> = None;
    let mut note = |page: &str, why: String| {
        wrong += 1;
        if first.as_ref().is_none_or(|(p, _)| page < p.as_str()) {
            first = Some((page.to_owned(), why));
        }
    };
    for (page, counted) in &report.ok {
        let rows = pages.get(page).map_or(0, Vec::len) as u64;
        if let Some(n) = counted
            && *n != rows
        {
            note(
                page,
                format!("has {rows} script rows, the report counts {n}"),
            );
        }
    }
    for (page, scripts) in pages {
        if !report.ok.contains_key(page) {
            let what = if report.failed.contains_key(page) {
                "failed"
            } else if report.passed_over.contains_key(page) {
                "passed over"
            } else {
                "absent"
            };
            note(
                page,
                format!("has {} script rows, the report says {what}", scripts.len()),
            );
        }
    }
    match first {
        None => Ok(()),
        Some((page, why)) => Err(format!(
            "{page} {why}{} (not the same run's files, or one was cut short)",
            if wrong > 1 {
                format!(", and {} more pages", wrong - 1)
            } else {
                String::new()
            }
        )),
    }
}

/// What a scripts output holds.
struct ScriptRows {
    /// Each page's scripts.
    pages: BTreeMap<String, Vec<Script>>,
    /// The file held nothing.
    empty: bool,
    /// The run fetched script content (some row has a content hash or
    /// error).
    fetched_content: bool,
    /// The compared attributes it has no column for.
    lacks: Vec<&'static str>,
}

fn read_scripts(path: &str, strings: &mut Strings) -> anyhow::Result<ScriptRows> {
    let mut pages: BTreeMap<String, Vec<Script>> = BTreeMap::new();
    let mut fetched_content = false;
    let mut lacks: Option<Vec<&'static str>> = None;
    let too_many = || anyhow::anyhow!("more than 4 billion distinct values");
    let empty = !each_row(path, &["page_url", "src", "inline_sha256"], |row| {
        let mut intern = |text: Option<&str>| -> anyhow::Result<Option<Sym>> {
            text.map(|t| strings.intern(t).ok_or_else(too_many))
                .transpose()
        };
        let Some(page) = row.text("page_url") else {
            bail!("no page_url");
        };
        lacks.get_or_insert_with(|| {
            ["index"]
                .into_iter()
                .chain(super::COMPARED_ATTRIBUTES)
                .filter(|c| !row.has(c))
                .collect()
        });
        let inline = match row.flag("inline")? {
            Some(inline) => inline,
            None => row.text("src").is_none(),
        };
        let src = if inline {
            None
        } else {
            Some(row.text("src").unwrap_or_default().into_owned())
        };
        let document = row.text("final_url").unwrap_or_else(|| page.clone());
        let src_url = src.as_deref().and_then(|s| Url::parse(s).ok());
        let host = match row.text("host") {
            Some(host) => Some(host.into_owned()),
            None => src_url
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned)),
        };
        // Outputs from before the third_party column: worked out the same
        // way the extractor does.
        let third_party = match row.flag("third_party")? {
            Some(flag) => flag,
            None => match (&src_url, Url::parse(&document)) {
                (Some(s), Ok(d)) => match (s.host(), d.host()) {
                    (Some(a), Some(b)) => !crate::crawl::scope::same_site(&a, &b),
                    _ => false,
                },
                _ => false,
            },
        };
        let script = Script {
            index: row.number("index")?.unwrap_or(0),
            src: intern(src.as_deref())?,
            host: intern(host.as_deref())?,
            inline_sha256: intern(row.text("inline_sha256").as_deref())?,
            inline_bytes: row.number("inline_bytes")?,
            type_attr: intern(row.text("type").as_deref())?,
            is_async: row.flag("async")?.unwrap_or(false),
            defer: row.flag("defer")?.unwrap_or(false),
            nomodule: row.flag("nomodule")?.unwrap_or(false),
            crossorigin: intern(row.text("crossorigin").as_deref())?,
            integrity: intern(row.text("integrity").as_deref())?,
            third_party,
            integrity_ok: row.flag("integrity_ok")?,
            csp_allowed: row.flag("csp_allowed")?,
            content: None,
        };
        // The content_* columns of a --fetch-scripts run; absent or empty
        // otherwise.
        let content = Content {
            status: row
                .number("content_status")?
                .map(|n| {
                    u16::try_from(n)
                        .map_err(|_| anyhow::anyhow!("content_status is {n}, not an HTTP status"))
                })
                .transpose()?,
            error: intern(row.text("content_error").as_deref())?,
            bytes: row.number("content_bytes")?,
            sha384: intern(row.text("content_sha384").as_deref())?,
        };
        fetched_content |= content.sha384.is_some() || content.error.is_some();
        let script = Script {
            content: if content == Content::default() {
                None
            } else {
                Some(strings.intern_content(content).ok_or_else(too_many)?)
            },
            ..script
        };
        // Looked up before inserting: the rows of a page come together, and
        // most lookups then find the page without copying its URL.
        match pages.get_mut(page.as_ref()) {
            Some(scripts) => scripts.push(script),
            None => {
                pages.insert(page.into_owned(), vec![script]);
            }
        }
        Ok(())
    })?;
    for scripts in pages.values_mut() {
        scripts.sort_by_key(|s| s.index);
        // Growth by doubling leaves up to half of each list unused.
        scripts.shrink_to_fit();
    }
    Ok(ScriptRows {
        pages,
        empty,
        fetched_content,
        lacks: lacks.unwrap_or_default(),
    })
}

fn read_report(path: &str) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut csp: HashMap<String, String> = HashMap::new();
    let mut csp_column = false;
    each_row(path, &["page_url", "error"], |row| {
        let Some(page) = row.text("page_url") else {
            bail!("no page_url");
        };
        csp_column |= row.has("csp");
        // A page listed twice: the last row's policy holds.
        match row.text("csp") {
            Some(policy) => csp.insert(page.to_string(), policy.into_owned()),
            None => csp.remove(page.as_ref()),
        };
        // A page listed twice (reports joined by hand): the last row holds.
        match row.text("error") {
            None => {
                let scripts = row.number("scripts")?;
                report.failed.remove(page.as_ref());
                report.passed_over.remove(page.as_ref());
                report.ok.insert(page.into_owned(), scripts);
            }
            Some(kind) => {
                let detail = row.text("error_detail").unwrap_or_default();
                let why = if detail.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}: {detail}")
                };
                report.ok.remove(page.as_ref());
                // As the scrape's summary counts them.
                let discovered = row.text("referrer").is_some();
                let passed_over =
                    ErrorKind::from_name(&kind).is_some_and(|k| k.passed_over(discovered));
                let (into, other) = if passed_over {
                    (&mut report.passed_over, &mut report.failed)
                } else {
                    (&mut report.failed, &mut report.passed_over)
                };
                other.remove(page.as_ref());
                into.insert(page.into_owned(), why);
            }
        }
        Ok(())
    })?;
    report.csp = csp_column.then_some(csp);
    Ok(report)
}

/// One row, from either format.
enum Row<'a> {
    Csv(&'a csv::StringRecord, &'a HashMap<String, usize>),
    Json(&'a serde_json::Map<String, serde_json::Value>),
}

impl Row<'_> {
    /// Whether the output has the column (a JSON object: the key), empty
    /// or not.
    fn has(&self, name: &str) -> bool {
        match self {
            Row::Csv(_, columns) => columns.contains_key(name),
            Row::Json(map) => map.contains_key(name),
        }
    }

    /// A non-empty text value.
    fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        match self {
            Row::Csv(record, columns) => columns
                .get(name)
                .and_then(|&i| record.get(i))
                .filter(|v| !v.is_empty())
                .map(|v| Cow::Borrowed(unescape(v))),
            Row::Json(map) => match map.get(name)? {
                serde_json::Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
                serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
                serde_json::Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                _ => None,
            },
        }
    }

    fn flag(&self, name: &str) -> anyhow::Result<Option<bool>> {
        match self.text(name).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => bail!("{name} is {other:?}, not true or false"),
        }
    }

    fn number(&self, name: &str) -> anyhow::Result<Option<u64>> {
        self.text(name)
            .map(|v| {
                v.parse()
                    .with_context(|| format!("{name} is {v:?}, not a number"))
            })
            .transpose()
    }
}

/// Calls `each` on every row of the CSV, JSON Lines or Parquet file at
/// `path` (`-`: standard input), after checking it has the `required`
/// columns. Returns whether the file held anything but white space.
fn each_row(
    path: &str,
    required: &[&str],
    mut each: impl FnMut(&Row) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let source: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot read {path}"))?)
    };
    // A compressed output (-o x.csv.gz, .zst) is read as what it holds.
    let source = crate::output::compress::decompressed(BufReader::with_capacity(1 << 16, source))
        .with_context(|| format!("cannot read {path}"))?;
    let mut reader = BufReader::with_capacity(1 << 16, source);
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read {path}"))?;
    if head.starts_with(super::parquet::MAGIC) {
        let refusal = |columns: &[String]| lacking(required, |c| columns.iter().any(|n| n == c));
        return super::parquet::each_row(path, reader, refusal, |map| each(&Row::Json(map)));
    }
    let first = first_byte(&mut reader).with_context(|| format!("cannot read {path}"))?;
    if first == Some(b'{') {
        for (n, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {path}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("{path} line {}: not JSON", n + 1))?;
            let Some(map) = value.as_object() else {
                bail!("{path} line {}: not a JSON object", n + 1);
            };
            if n == 0
                && let Some(why) = lacking(required, |c| map.contains_key(c))
            {
                bail!("{path}: {why}");
            }
            each(&Row::Json(map)).with_context(|| format!("{path} line {}", n + 1))?;
        }
        return Ok(true);
    }
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let headers = csv
        .headers()
        .with_context(|| format!("{path}: not CSV"))?
        .clone();
    let columns: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_owned(), i))
        .collect();
    if first.is_some()
        && let Some(why) = lacking(required, |c| columns.contains_key(c))
    {
        bail!("{path}: {why}");
    }
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(first.is_some()),
            Err(e) => bail!("{path}: {e}"),
        }
        let line = record.position().map_or(0, csv::Position::line);
        each(&Row::Csv(&record, &columns)).with_context(|| format!("{path} line {line}"))?;
    }
}

/// A cell as written before `--spreadsheet-safe` quoted it, so that runs
/// with and without the option compare.
fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if crate::output::formula_like(rest) || rest.starts_with('\'') => rest,
        _ => cell,
    }
}

/// Why a file whose columns are those `has` says yes to cannot be read,
/// when it lacks some of the `required` ones.
fn lacking(required: &[&str], has: impl Fn(&str) -> bool) -> Option<String> {
    let missing: Vec<&str> = required.iter().copied().filter(|c| !has(c)).collect();
    (!missing.is_empty()).then(|| not_this_output(required, &missing, has))
}

/// Why a file lacking the `missing` columns cannot be read: either it is
/// not such an output at all (it has none of them, or it has columns only
/// the other output has), or it was written with `--fields` (or
/// `--page-fields`) leaving out columns this needs.
fn not_this_output(required: &[&str], missing: &[&str], has: impl Fn(&str) -> bool) -> String {
    let (what, option, others) = if required.contains(&"src") {
        (
            "a scripts output (-o)",
            "--fields",
            ["status", "error", "elapsed_ms"],
        )
    } else {
        (
            "a page report (--pages)",
            "--page-fields",
            ["src", "index", "inline"],
        )
    };
    if missing.len() == required.len() || others.iter().any(|c| has(c)) {
        return format!(
            "not {what}: no {} column (written with a header?)",
            missing.join(", ")
        );
    }
    format!(
        "lacks the {} column{} this needs (written with {option} leaving {} out?); needed: {}",
        missing.join(", "),
        if missing.len() > 1 { "s" } else { "" },
        if missing.len() > 1 { "them" } else { "it" },
        required.join(", ")
    )
}

/// The first byte that is not white space, without consuming it.
fn first_byte(reader: &mut impl BufRead) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if buf.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
            continue;
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                return Ok(Some(b));
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}
