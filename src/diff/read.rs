//! Reading a run's outputs back: scripts outputs and page reports, as CSV
//! or JSON Lines (told apart by their first byte), from a file or `-`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use anyhow::{Context as _, bail};
use url::Url;

use super::{Inventory, Report, Script};

/// Reads a scripts output (`-o`) and, if given, the same run's page report
/// (`--pages`).
pub fn inventory(scripts: &str, pages: Option<&str>) -> anyhow::Result<Inventory> {
    let mut inventory = Inventory {
        pages: read_scripts(scripts)?,
        report: None,
    };
    if let Some(pages) = pages {
        inventory.report = Some(read_report(pages)?);
    }
    Ok(inventory)
}

fn read_scripts(path: &str) -> anyhow::Result<BTreeMap<String, Vec<Script>>> {
    let mut pages: BTreeMap<String, Vec<Script>> = BTreeMap::new();
    each_row(path, &["page_url", "src", "inline_sha256"], |row| {
        let Some(page) = row.text("page_url") else {
            bail!("no page_url");
        };
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
                    (Some(a), Some(b)) => !crate::scope::same_site(&a, &b),
                    _ => false,
                },
                _ => false,
            },
        };
        let script = Script {
            index: row.number("index")?.unwrap_or(0),
            src,
            host,
            inline_sha256: row.text("inline_sha256").map(Cow::into_owned),
            inline_bytes: row.number("inline_bytes")?,
            type_attr: row.text("type").map(Cow::into_owned),
            is_async: row.flag("async")?.unwrap_or(false),
            defer: row.flag("defer")?.unwrap_or(false),
            nomodule: row.flag("nomodule")?.unwrap_or(false),
            crossorigin: row.text("crossorigin").map(Cow::into_owned),
            integrity: row.text("integrity").map(Cow::into_owned),
            third_party,
        };
        pages.entry(page.into_owned()).or_default().push(script);
        Ok(())
    })?;
    for scripts in pages.values_mut() {
        scripts.sort_by_key(|s| s.index);
    }
    Ok(pages)
}

fn read_report(path: &str) -> anyhow::Result<Report> {
    let mut report = Report::default();
    each_row(path, &["page_url", "error"], |row| {
        let Some(page) = row.text("page_url") else {
            bail!("no page_url");
        };
        match row.text("error") {
            None => {
                report.ok.insert(page.into_owned());
            }
            Some(kind) => {
                let detail = row.text("error_detail").unwrap_or_default();
                report
                    .failed
                    .insert(page.into_owned(), format!("{kind}: {detail}"));
            }
        }
        Ok(())
    })?;
    Ok(report)
}

/// One row, from either format.
enum Row<'a> {
    Csv(&'a csv::StringRecord, &'a HashMap<String, usize>),
    Json(&'a serde_json::Map<String, serde_json::Value>),
}

impl Row<'_> {
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

/// Calls `each` on every row of the CSV or JSON Lines file at `path`
/// (`-`: standard input), after checking it has the `required` columns.
fn each_row(
    path: &str,
    required: &[&str],
    mut each: impl FnMut(&Row) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let source: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot read {path}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, source);
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
                && let Some(missing) = required.iter().find(|c| !map.contains_key(**c))
            {
                bail!("{path}: {}", not_this_output(required, missing));
            }
            each(&Row::Json(map)).with_context(|| format!("{path} line {}", n + 1))?;
        }
        return Ok(());
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
        && let Some(missing) = required.iter().find(|c| !columns.contains_key(**c))
    {
        bail!("{path}: {}", not_this_output(required, missing));
    }
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
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
        Some(rest) if crate::output::formula_like(rest) => rest,
        _ => cell,
    }
}

fn not_this_output(required: &[&str], missing: &str) -> String {
    let what = if required.contains(&"src") {
        "a scripts output (-o)"
    } else {
        "a page report (--pages)"
    };
    format!("not {what}: no {missing} column (written with a header?)")
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
