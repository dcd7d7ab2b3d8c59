//! `scriptscrape inventory`: the authorisation report an assessor asks for
//! (PCI DSS 6.4.3): per page, every script, whether the allow list
//! authorises it and why, and the evidence of its integrity (content hash,
//! SRI result, CSP result).
//!
//! A run's outputs are read as `diff` reads them ([`crate::diff::read`]),
//! each script is given the allow list's [`Verdict`], and the rows are
//! written as CSV or JSON Lines for machines, or as one self-contained HTML
//! page for people ([`html`]).

use std::io::{self, Write};
use std::path::PathBuf;

use crate::diff::{AllowList, Outcome, Strings, read};
use crate::error::ErrorKind;

pub mod html;

/// The formats of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One row per script (and per page not inventoried), with a header.
    Csv,
    /// One JSON object per row.
    Jsonl,
    /// One self-contained HTML page: tables per page, for people.
    Html,
}

/// What `scriptscrape inventory` was asked to do, checked.
#[derive(Debug)]
pub struct InventoryConfig {
    /// The scripts output of a run (`-` for standard input).
    pub scripts: String,
    /// The same run's page report.
    pub pages: Option<String>,
    /// The allow list, and the file it was read from.
    pub allow: (AllowList, String),
    /// Where the report goes; `None` for standard output.
    pub output: Option<PathBuf>,
    /// The report's format.
    pub format: ReportFormat,
    /// CSV: escape cells a spreadsheet would run as formulas.
    pub spreadsheet_safe: bool,
}

/// The columns of the CSV and JSON Lines report.
pub const COLUMNS: [&str; 20] = [
    "page_url",
    "index",
    "script",
    "inline",
    "host",
    "third_party",
    "authorised",
    "authorisation",
    "reason",
    "justification",
    "owner",
    "allow_entry",
    "pins",
    "integrity",
    "integrity_ok",
    "content_status",
    "content_error",
    "content_sha384",
    "csp_allowed",
    "page_csp",
];

/// One row of the report: a script of a page, or a page that has no
/// inventory (it failed or was passed over).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub page_url: String,
    /// Position among the page's scripts; `None` for a page row.
    pub index: Option<u64>,
    /// The `src` of an external script, or `sha256-…` of an inline one.
    pub script: Option<String>,
    pub inline: Option<bool>,
    pub host: Option<String>,
    pub third_party: Option<bool>,
    /// `None` for a page row.
    pub authorised: Option<bool>,
    /// `authorised`, `unlisted`, `pin_mismatch`, `pin_unknown`, or for a
    /// page row `not_inventoried`.
    pub authorisation: &'static str,
    /// One line for people: which entry allowed it, or why not.
    pub reason: String,
    pub justification: Option<String>,
    pub owner: Option<String>,
    /// `FILE:LINE` of the entry that decided.
    pub allow_entry: Option<String>,
    /// The entry's pinned hashes, space-separated.
    pub pins: Option<String>,
    pub integrity: Option<String>,
    pub integrity_ok: Option<bool>,
    pub content_status: Option<u16>,
    pub content_error: Option<String>,
    pub content_sha384: Option<String>,
    pub csp_allowed: Option<bool>,
    /// The page's enforced policy (from the page report).
    pub page_csp: Option<String>,
}

/// The report: its rows in page order, and what it was made from.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// The files read, for the HTML page's heading.
    pub sources: Vec<String>,
    /// Whether the run fetched scripts (`--fetch-scripts`): without it,
    /// there is no content evidence.
    pub fetched_content: bool,
    /// What the reader should be warned of.
    pub warnings: Vec<String>,
}

impl Report {
    /// Scripts the list does not authorise (pins unchecked included).
    pub fn unauthorised(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.authorised == Some(false))
            .count()
    }

    /// Pages with no inventory (failed, or passed over).
    pub fn not_inventoried(&self) -> usize {
        self.rows.iter().filter(|r| r.index.is_none()).count()
    }

    /// Script rows.
    pub fn scripts(&self) -> usize {
        self.rows.iter().filter(|r| r.index.is_some()).count()
    }

    /// Pages the report covers.
    pub fn pages(&self) -> usize {
        let mut pages: Vec<&str> = self.rows.iter().map(|r| r.page_url.as_str()).collect();
        pages.dedup();
        pages.len()
    }

    /// One line for people: the counts.
    pub fn summary(&self) -> String {
        let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
        format!(
            "{}, {}: {} authorised, {} not authorised; {} not inventoried",
            count(self.pages(), "page"),
            count(self.scripts(), "script"),
            self.scripts() - self.unauthorised(),
            self.unauthorised(),
            count(self.not_inventoried(), "page")
        )
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Authorised => "authorised",
        Outcome::Unlisted => "unlisted",
        Outcome::PinMismatch => "pin_mismatch",
        Outcome::PinUnknown => "pin_unknown",
    }
}

/// Reads the run and gives each script the allow list's verdict.
pub fn build(config: &InventoryConfig) -> anyhow::Result<Report> {
    let mut strings = Strings::default();
    let (inventory, mut warnings) =
        read::inventory(&config.scripts, config.pages.as_deref(), &mut strings)?;
    if !inventory.lacks.is_empty() {
        let n = inventory.lacks.len();
        warnings.push(format!(
            "{} lacks the {} column{} (written with --fields): the report shows no value for \
             {}{}",
            config.scripts,
            inventory.lacks.join(", "),
            if n > 1 { "s" } else { "" },
            if n > 1 { "them" } else { "it" },
            if inventory.lacks.contains(&"index") {
                " (index as 0, scripts in the file's order)"
            } else {
                ""
            },
        ));
    }
    let (allow, allow_name) = &config.allow;
    let csp = |page: &str| {
        let report = inventory.report.as_ref()?;
        let policy = report.csp.as_ref()?.get(page)?;
        // A report written before nonces were masked still has them.
        Some(crate::content::csp::mask_nonces(policy))
    };
    let mut rows = Vec::new();
    for (page, scripts) in &inventory.pages {
        let page_csp = csp(page);
        for s in scripts {
            let verdict = allow.verdict(s, &strings);
            let text = |sym| strings.get(sym).to_owned();
            let content = strings.content(s.content);
            rows.push(Row {
                page_url: page.clone(),
                index: Some(s.index),
                script: s.src.or(s.inline_sha256).map(text),
                inline: Some(s.src.is_none()),
                host: s.host.map(text),
                third_party: Some(s.third_party),
                authorised: Some(verdict.authorised()),
                authorisation: outcome_name(verdict.outcome),
                reason: verdict.reason.clone(),
                justification: verdict.entry.and_then(|e| e.justification.clone()),
                owner: verdict.entry.and_then(|e| e.owner.clone()),
                allow_entry: verdict.entry.map(|e| format!("{allow_name}:{}", e.line)),
                pins: verdict.entry.filter(|e| !e.pins.is_empty()).map(|e| {
                    e.pins
                        .iter()
                        .map(|p| p.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                }),
                integrity: s.integrity.map(text),
                integrity_ok: s.integrity_ok,
                content_status: content.and_then(|c| c.status),
                content_error: content.and_then(|c| c.error).map(text),
                content_sha384: content.and_then(|c| c.sha384).map(text),
                csp_allowed: s.csp_allowed,
                page_csp: page_csp.clone(),
            });
        }
    }
    if let Some(report) = &inventory.report {
        // Pages that failed: an assessor must see that they were not
        // inventoried. Pages a crawl passed over (not HTML, off scope) are
        // not part of the run's inventory, as for diff.
        // And listed pages --max-pages left unfetched: in the list, not in
        // the inventory.
        let unfetched = report
            .passed_over
            .iter()
            .filter(|(_, why)| why.starts_with(ErrorKind::MaxPages.as_str()));
        let mut missing: Vec<(&String, &String)> = report
            .failed
            .iter()
            .chain(unfetched)
            .filter(|(page, _)| !inventory.pages.contains_key(*page))
            .collect();
        missing.sort();
        for (page, why) in missing {
            rows.push(Row {
                page_url: page.clone(),
                authorisation: "not_inventoried",
                reason: why.clone(),
                ..Row::default()
            });
        }
        rows.sort_by(|a, b| a.page_url.cmp(&b.page_url).then(a.index.cmp(&b.index)));
    }
    let mut sources = vec![config.scripts.clone()];
    sources.extend(config.pages.clone());
    sources.push(allow_name.clone());
    Ok(Report {
        rows,
        sources,
        fetched_content: inventory.fetched_content,
        warnings,
    })
}

/// Builds the report and writes it where the configuration says.
pub fn run(config: &InventoryConfig) -> anyhow::Result<Report> {
    let report = build(config)?;
    crate::output::write_report(config.output.as_deref(), |out| {
        write(out, config.format, &report, config.spreadsheet_safe)
    })?;
    Ok(report)
}

/// Writes the report in `format`; with `spreadsheet_safe`, CSV cells a
/// spreadsheet would run as formulas get a leading `'` (a policy or a
/// `src` is whatever a page said).
pub fn write(
    out: &mut dyn Write,
    format: ReportFormat,
    report: &Report,
    spreadsheet_safe: bool,
) -> io::Result<()> {
    match format {
        ReportFormat::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(COLUMNS).map_err(io::Error::other)?;
            for row in &report.rows {
                let cells = cells(row);
                if spreadsheet_safe {
                    let safe = cells.iter().map(|c| crate::output::spreadsheet_safe(c));
                    csv.write_record(safe.map(|c| c.into_owned()))
                } else {
                    csv.write_record(cells)
                }
                .map_err(io::Error::other)?;
            }
            csv.flush()
        }
        ReportFormat::Jsonl => {
            for row in &report.rows {
                serde_json::to_writer(&mut *out, &json(row))?;
                out.write_all(b"\n")?;
            }
            out.flush()
        }
        ReportFormat::Html => {
            out.write_all(
                html::page(
                    report,
                    &crate::run::stats::rfc3339(std::time::SystemTime::now()),
                )
                .as_bytes(),
            )?;
            out.flush()
        }
    }
}

fn cells(row: &Row) -> [String; COLUMNS.len()] {
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let flag = |b: Option<bool>| b.map(|b| b.to_string()).unwrap_or_default();
    let num = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    [
        row.page_url.clone(),
        num(row.index),
        opt(&row.script),
        flag(row.inline),
        opt(&row.host),
        flag(row.third_party),
        flag(row.authorised),
        row.authorisation.to_owned(),
        row.reason.clone(),
        opt(&row.justification),
        opt(&row.owner),
        opt(&row.allow_entry),
        opt(&row.pins),
        opt(&row.integrity),
        flag(row.integrity_ok),
        num(row.content_status.map(u64::from)),
        opt(&row.content_error),
        opt(&row.content_sha384),
        flag(row.csp_allowed),
        opt(&row.page_csp),
    ]
}

fn json(row: &Row) -> serde_json::Value {
    serde_json::json!({
        "page_url": row.page_url,
        "index": row.index,
        "script": row.script,
        "inline": row.inline,
        "host": row.host,
        "third_party": row.third_party,
        "authorised": row.authorised,
        "authorisation": row.authorisation,
        "reason": row.reason,
        "justification": row.justification,
        "owner": row.owner,
        "allow_entry": row.allow_entry,
        "pins": row.pins,
        "integrity": row.integrity,
        "integrity_ok": row.integrity_ok,
        "content_status": row.content_status,
        "content_error": row.content_error,
        "content_sha384": row.content_sha384,
        "csp_allowed": row.csp_allowed,
        "page_csp": row.page_csp,
    })
}
