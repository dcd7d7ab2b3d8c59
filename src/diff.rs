//! `scriptscrape diff`: what changed between two runs' script inventories.
//!
//! Two scripts outputs (and, when given, their page reports) are read
//! whole ([`read`]), compared page by page, and each change becomes one row
//! ([`write`]). The comparison is a pure function ([`compare`]): external
//! scripts are matched by `src`, inline scripts by hash and then by place,
//! so that one edited inline script reads as `inline_changed`, not as a
//! removal and an addition. The allow list ([`allow`]) and the policies of
//! the page reports ([`csp`]) have modules of their own.
//!
//! # One event, one row
//!
//! A script in both runs can change in three ways at once; each way gives
//! at most one row, in this order:
//!
//! - integrity: `integrity_broken` (its `integrity_ok` went from true to
//!   false: browsers now refuse it) takes the place of `integrity_changed`
//!   when the attribute changed too, and carries the content change in its
//!   detail instead of a `content_changed` row; `integrity_removed` (no
//!   attribute left, so nothing to break) and `integrity_changed` (a new
//!   value that still matches, or unchecked) are as before.
//! - content (outputs of `--fetch-scripts` runs): for a script pinned on
//!   the allow list, the pin decides: `unapproved` when the content is not
//!   the pinned one, `unknown` when it cannot be checked, nothing when it
//!   matches (bar a `content_changed` between two pinned versions). Pins
//!   are checked in every run, not only on a change: a script off its pin
//!   is reported each time until its content or the pin is fixed. For an
//!   unpinned script: `content_changed` when both runs have its hash and
//!   they differ, `unknown` when either run lacks it (failed, or not
//!   fetched), nothing when neither run fetched script content at all.
//! - the other attributes: `attribute_changed`.
//!
//! A page's policy (`csp_changed`) is a row of its own, first among the
//! page's rows.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use regex::Regex;

pub mod allow;
pub mod csp;
mod parquet;
pub mod read;
pub mod write;

pub use allow::{AllowError, AllowList, Entry, Outcome, Pin, Verdict};

/// A text stored in [`Strings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(std::num::NonZeroU32);

/// The texts of both runs' rows, each stored once: the same tag manager,
/// library and inline snippet are on page after page, so a run of
/// millions of rows holds a few thousand distinct values. Rows hold 4-byte
/// [`Sym`]s, and a `Sym` is the same text in either run. The same goes for
/// what a run fetched of a script's content ([`Content`], one per
/// distinct script and outcome), which rows hold as a [`ContentId`].
#[derive(Debug, Default)]
pub struct Strings {
    ids: HashMap<std::sync::Arc<str>, Sym>,
    texts: Vec<std::sync::Arc<str>>,
    content_ids: HashMap<Content, ContentId>,
    contents: Vec<Content>,
}

/// A [`Content`] stored in [`Strings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(std::num::NonZeroU32);

/// What a `--fetch-scripts` run wrote of an external script's own fetch
/// (the `content_*` columns); texts are in [`Strings`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Content {
    /// `content_status`: the HTTP status of the fetch.
    pub status: Option<u16>,
    /// `content_error`: why the content is not known (`http_status`,
    /// `timeout`, `body_too_large`, …).
    pub error: Option<Sym>,
    /// `content_bytes`: the body's length.
    pub bytes: Option<u64>,
    /// `content_sha384`: `sha384-<base64>` of the body.
    pub sha384: Option<Sym>,
}

impl Content {
    /// The content's hash, when it is known: fetched without an error.
    pub fn hash(&self) -> Option<Sym> {
        self.sha384.filter(|_| self.error.is_none())
    }
}

impl Strings {
    /// The symbol of `text`, stored if new; `None` past 4 billion distinct
    /// texts.
    pub fn intern(&mut self, text: &str) -> Option<Sym> {
        if let Some(&sym) = self.ids.get(text) {
            return Some(sym);
        }
        let sym = Sym(u32::try_from(self.texts.len() + 1)
            .ok()
            .and_then(std::num::NonZeroU32::new)?);
        let text: std::sync::Arc<str> = text.into();
        self.texts.push(std::sync::Arc::clone(&text));
        self.ids.insert(text, sym);
        Some(sym)
    }

    /// The text of `sym`, which must come from this table (a symbol of
    /// another table names another text, or panics).
    pub fn get(&self, sym: Sym) -> &str {
        // Symbols come from intern, which pushed their text: in range.
        &self.texts[sym.0.get() as usize - 1]
    }

    fn text(&self, sym: Option<Sym>) -> Option<&str> {
        sym.map(|s| self.get(s))
    }

    /// The id of `content`, stored if new; `None` past 4 billion distinct
    /// contents.
    pub fn intern_content(&mut self, content: Content) -> Option<ContentId> {
        if let Some(&id) = self.content_ids.get(&content) {
            return Some(id);
        }
        let id = ContentId(
            u32::try_from(self.contents.len() + 1)
                .ok()
                .and_then(std::num::NonZeroU32::new)?,
        );
        self.contents.push(content.clone());
        self.content_ids.insert(content, id);
        Some(id)
    }

    /// The content `id` names (`None` for none), which must come from this
    /// table.
    pub fn content(&self, id: Option<ContentId>) -> Option<&Content> {
        // Ids come from intern_content, which pushed their content.
        id.map(|id| &self.contents[id.0.get() as usize - 1])
    }
}

/// One row of a scripts output, as far as comparing runs needs it; its
/// texts are in the [`Strings`] the runs were read with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// Position among the page's script elements.
    pub index: u64,
    /// The `src` of an external script; `None` for an inline one.
    pub src: Option<Sym>,
    /// The host of `src`.
    pub host: Option<Sym>,
    /// `sha256-…` of an inline script's text.
    pub inline_sha256: Option<Sym>,
    /// Length of an inline script's text.
    pub inline_bytes: Option<u64>,
    /// The `type` attribute.
    pub type_attr: Option<Sym>,
    /// The `async` attribute is present.
    pub is_async: bool,
    /// The `defer` attribute is present.
    pub defer: bool,
    /// The `nomodule` attribute is present.
    pub nomodule: bool,
    /// The `crossorigin` attribute.
    pub crossorigin: Option<Sym>,
    /// The `integrity` attribute.
    pub integrity: Option<Sym>,
    /// From another site than the page's.
    pub third_party: bool,
    /// `integrity_ok`: whether the content matches `integrity` as a
    /// browser checks it (`None`: no attribute, or not checked).
    pub integrity_ok: Option<bool>,
    /// `csp_allowed`: whether the page's policy allows the element
    /// (`None`: no policy, or an output from before the column).
    pub csp_allowed: Option<bool>,
    /// The `content_*` columns (`None` when all are empty: not fetched,
    /// inline, or an output from before them).
    pub content: Option<ContentId>,
}

/// What one run knew of its pages.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Each page's scripts, in document order (pages with none are absent).
    pub pages: BTreeMap<String, Vec<Script>>,
    /// The run's page report, when given.
    pub report: Option<Report>,
    /// Some script row has a `content_sha384` or a `content_error`: the run
    /// fetched script content (`--fetch-scripts`).
    pub fetched_content: bool,
    /// The columns of `index` and the compared attributes that the
    /// scripts output does not have (written with `--fields` leaving them
    /// out).
    pub lacks: Vec<&'static str>,
}

/// The attribute columns a diff compares, which an output written with
/// `--fields` may lack. Every version has written them (they are among the
/// first thirteen columns); newer columns an older output lacks are read
/// as unknown already.
pub const COMPARED_ATTRIBUTES: [&str; 6] = [
    "type",
    "async",
    "defer",
    "nomodule",
    "integrity",
    "crossorigin",
];

/// Forgets, in both runs, the attributes either run's output lacks, so
/// that a column left out is not read as an attribute removed; returns
/// their names.
fn forget_unshared(old: &mut Inventory, new: &mut Inventory) -> Vec<&'static str> {
    let lacking: Vec<&'static str> = COMPARED_ATTRIBUTES
        .into_iter()
        .filter(|c| old.lacks.contains(c) || new.lacks.contains(c))
        .collect();
    if lacking.is_empty() {
        return lacking;
    }
    let forget = |s: &mut Script| {
        for column in &lacking {
            match *column {
                "type" => s.type_attr = None,
                "async" => s.is_async = false,
                "defer" => s.defer = false,
                "nomodule" => s.nomodule = false,
                "integrity" => s.integrity = None,
                "crossorigin" => s.crossorigin = None,
                _ => {}
            }
        }
    };
    for run in [old, new] {
        run.pages.values_mut().flatten().for_each(forget);
    }
    lacking
}

/// What a page report says of each page.
#[derive(Debug, Default)]
pub struct Report {
    /// Pages fetched and parsed (with or without scripts), with the number
    /// of scripts the report counts (`None` for a report without the
    /// `scripts` column).
    pub ok: HashMap<String, Option<u64>>,
    /// Pages that failed, with `kind: detail`.
    pub failed: HashMap<String, String>,
    /// Pages passed over (not fetched for `--max-pages`; found by a crawl
    /// but not HTML, refused by robots.txt, private or off scope), with
    /// `kind: detail`: not part of the run's inventory, and not failures.
    pub passed_over: HashMap<String, String>,
    /// The `csp` of each page fetched that has a policy; `None` for a
    /// report without the column (written before it).
    pub csp: Option<HashMap<String, String>>,
}

/// The kinds of change, as written to the `change` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A script that was not there before.
    Added,
    /// An added script that the `--allow` list does not allow, or a
    /// script pinned on it whose content is not the pinned one.
    Unapproved,
    /// A script that is gone.
    Removed,
    /// An inline script whose text changed, in the same place.
    InlineChanged,
    /// An external script whose content changed while its `src` stayed
    /// (both runs fetched it: `--fetch-scripts`).
    ContentChanged,
    /// An external script whose content matched its `integrity` and no
    /// longer does (`integrity_ok` true, then false): browsers refuse it.
    IntegrityBroken,
    /// An external script that lost its `integrity` attribute.
    IntegrityRemoved,
    /// An external script whose `integrity` value changed.
    IntegrityChanged,
    /// `async`, `defer`, `nomodule`, `type` or `crossorigin` changed, or
    /// `integrity` was added.
    AttributeChanged,
    /// The page's Content-Security-Policy changed (from the page
    /// reports' `csp`).
    CspChanged,
    /// A page only the new run has.
    PageAdded,
    /// A page only the old run has.
    PageGone,
    /// A page that failed in either run: not compared; or, with a `src`,
    /// a script whose content one run lacks, or whose pin cannot be
    /// checked.
    Unknown,
}

impl ChangeKind {
    /// Every kind, in the order summaries list them.
    pub const ALL: [ChangeKind; 13] = [
        ChangeKind::Added,
        ChangeKind::Unapproved,
        ChangeKind::Removed,
        ChangeKind::InlineChanged,
        ChangeKind::ContentChanged,
        ChangeKind::IntegrityBroken,
        ChangeKind::IntegrityRemoved,
        ChangeKind::IntegrityChanged,
        ChangeKind::AttributeChanged,
        ChangeKind::CspChanged,
        ChangeKind::PageAdded,
        ChangeKind::PageGone,
        ChangeKind::Unknown,
    ];

    /// The stable name written to the `change` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Unapproved => "unapproved",
            ChangeKind::Removed => "removed",
            ChangeKind::InlineChanged => "inline_changed",
            ChangeKind::ContentChanged => "content_changed",
            ChangeKind::IntegrityBroken => "integrity_broken",
            ChangeKind::IntegrityRemoved => "integrity_removed",
            ChangeKind::IntegrityChanged => "integrity_changed",
            ChangeKind::AttributeChanged => "attribute_changed",
            ChangeKind::CspChanged => "csp_changed",
            ChangeKind::PageAdded => "page_added",
            ChangeKind::PageGone => "page_gone",
            ChangeKind::Unknown => "unknown",
        }
    }

    /// Whether the change is about a page rather than one script
    /// (`unknown` may be either: a script's has a `src`).
    pub fn is_page_level(self) -> bool {
        matches!(
            self,
            ChangeKind::CspChanged
                | ChangeKind::PageAdded
                | ChangeKind::PageGone
                | ChangeKind::Unknown
        )
    }
}

impl std::str::FromStr for ChangeKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("not a kind of change (one of: {})", names.join(", "))
            })
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between the runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The page, as listed.
    pub page_url: String,
    /// What changed.
    pub kind: ChangeKind,
    /// The script's `src` (the new one when both runs have it).
    pub src: Option<String>,
    /// The inline script's hash (the new one when it changed).
    pub inline_sha256: Option<String>,
    /// For people: what it was and what it is.
    pub detail: String,
    /// The script is third-party (false for page-level changes).
    pub third_party: bool,
}

/// How runs are compared, and which changes are reported.
#[derive(Debug, Default)]
pub struct Options {
    /// Only script changes of third-party scripts (`--only-third-party`).
    pub only_third_party: bool,
    /// Only pages whose URL matches (`--page`).
    pub page: Option<Regex>,
    /// Text removed from `src` before comparing (`--ignore-src`).
    pub ignore_src: Vec<Regex>,
    /// Compare `src` without its query (`--ignore-query`).
    pub ignore_query: bool,
    /// Added scripts not on this list, and scripts off the content it
    /// pins, are `unapproved` (`--allow`).
    pub allow: Option<AllowList>,
}

impl Options {
    /// What two `src` values must share to be the same script.
    fn key<'a>(&self, src: &'a str) -> Cow<'a, str> {
        let mut key = Cow::Borrowed(src);
        if self.ignore_query
            && let Some(cut) = src.find(['?', '#'])
        {
            key = Cow::Borrowed(&src[..cut]);
        }
        for re in &self.ignore_src {
            if re.is_match(&key) {
                key = Cow::Owned(re.replace_all(&key, "").into_owned());
            }
        }
        key
    }
}

/// A page as one run saw it.
enum Seen<'a> {
    Scripts(&'a [Script]),
    Failed(&'a str),
    PassedOver(&'a str),
    Absent,
}

fn seen<'a>(run: &'a Inventory, page: &str) -> Seen<'a> {
    if let Some(why) = run.report.as_ref().and_then(|r| r.failed.get(page)) {
        return Seen::Failed(why);
    }
    if let Some(why) = run.report.as_ref().and_then(|r| r.passed_over.get(page)) {
        return Seen::PassedOver(why);
    }
    if let Some(scripts) = run.pages.get(page) {
        return Seen::Scripts(scripts);
    }
    if run.report.as_ref().is_some_and(|r| r.ok.contains_key(page)) {
        return Seen::Scripts(&[]);
    }
    Seen::Absent
}

/// What a comparison found.
#[derive(Debug, Default)]
pub struct Diff {
    /// The changes, page by page in URL order, and within a page in
    /// document order.
    pub changes: Vec<Change>,
    /// Pages compared (after `--page`).
    pub pages: usize,
    /// What the reader should know about the result: one line each.
    pub warnings: Vec<String>,
}

impl Diff {
    /// Whether a change of one of `kinds` was found (of any kind when
    /// `kinds` is empty): what exit status 1 means.
    pub fn found(&self, kinds: &[ChangeKind]) -> bool {
        self.changes
            .iter()
            .any(|c| kinds.is_empty() || kinds.contains(&c.kind))
    }
}

/// Every change from `old` to `new`, both read with `strings`.
pub fn compare(old: &Inventory, new: &Inventory, strings: &Strings, options: &Options) -> Diff {
    let mut pages: BTreeSet<&str> = BTreeSet::new();
    for run in [old, new] {
        pages.extend(run.pages.keys().map(String::as_str));
        if let Some(report) = &run.report {
            pages.extend(report.ok.keys().map(String::as_str));
            pages.extend(report.failed.keys().map(String::as_str));
            pages.extend(report.passed_over.keys().map(String::as_str));
        }
    }
    let pages_seen = pages.len();
    let mut changes = Vec::new();
    let mut compared = 0;
    for page in pages {
        if options.page.as_ref().is_some_and(|re| !re.is_match(page)) {
            continue;
        }
        compared += 1;
        let page_change = |kind, detail: String| Change {
            page_url: page.to_owned(),
            kind,
            src: None,
            inline_sha256: None,
            detail,
            third_party: false,
        };
        match (seen(old, page), seen(new, page)) {
            (Seen::Failed(a), Seen::Failed(b)) => changes.push(page_change(
                ChangeKind::Unknown,
                format!("failed in both runs: old {a}; new {b}"),
            )),
            (Seen::Failed(why), _) => changes.push(page_change(
                ChangeKind::Unknown,
                format!("failed in the old run: {why}"),
            )),
            (_, Seen::Failed(why)) => changes.push(page_change(
                ChangeKind::Unknown,
                format!("failed in the new run: {why}"),
            )),
            // Outside both runs' inventories (a PDF a crawl finds each
            // night, pages past --max-pages): nothing to compare.
            (Seen::PassedOver(_) | Seen::Absent, Seen::PassedOver(_) | Seen::Absent) => {}
            (Seen::PassedOver(why), Seen::Scripts(_)) => changes.push(page_change(
                ChangeKind::Unknown,
                format!("passed over in the old run: {why}"),
            )),
            (Seen::Scripts(_), Seen::PassedOver(why)) => changes.push(page_change(
                ChangeKind::Unknown,
                format!("passed over in the new run: {why}"),
            )),
            (Seen::Absent, Seen::Scripts(s)) => {
                changes.push(page_change(ChangeKind::PageAdded, scripts(s.len())))
            }
            (Seen::Scripts(s), Seen::Absent) => changes.push(page_change(
                ChangeKind::PageGone,
                format!("had {}", scripts(s.len())),
            )),
            (Seen::Scripts(a), Seen::Scripts(b)) => {
                if let (Some(was), Some(is)) = (
                    old.report.as_ref().and_then(|r| r.csp.as_ref()),
                    new.report.as_ref().and_then(|r| r.csp.as_ref()),
                ) {
                    // A page without a policy has none in the map.
                    let (was, is) = (was.get(page), is.get(page));
                    let (was, is) = (
                        was.map_or("", String::as_str),
                        is.map_or("", String::as_str),
                    );
                    if let Some(detail) = csp::changes(was, is) {
                        changes.push(page_change(ChangeKind::CspChanged, detail));
                    }
                }
                let runs = Runs {
                    strings,
                    options,
                    fetched: [old.fetched_content, new.fetched_content],
                };
                compare_page(page, a, b, &runs, &mut changes)
            }
        }
    }
    let mut warnings = Vec::new();
    let csp_column = |run: &Inventory| run.report.as_ref().map(|r| r.csp.is_some());
    match (csp_column(old), csp_column(new)) {
        (Some(false), Some(true)) | (Some(true), Some(false)) => warnings.push(format!(
            "the {} run's page report has no csp column (written before it, or with --page-fields leaving it out): Content-Security-Policy not compared",
            if csp_column(old) == Some(false) { "old" } else { "new" }
        )),
        _ => {}
    }
    if old.fetched_content != new.fetched_content {
        warnings.push(format!(
            "the {} run has no script content (not run with --fetch-scripts): its external \
             scripts' content is unknown",
            if old.fetched_content { "new" } else { "old" }
        ));
    }
    if let Some(re) = &options.page
        && compared == 0
    {
        warnings.push(format!(
            "--page {} matches none of the {} pages",
            re.as_str(),
            pages_seen
        ));
    }
    Diff {
        changes,
        pages: compared,
        warnings,
    }
}

/// A comparison as the command line asks for it.
#[derive(Debug)]
pub struct DiffConfig {
    /// The earlier run's scripts output and page report.
    pub old: (String, Option<String>),
    /// The later run's.
    pub new: (String, Option<String>),
    /// Where the changes go; `None` for standard output.
    pub output: Option<std::path::PathBuf>,
    /// How they are written.
    pub format: write::DiffFormat,
    /// What is compared and reported.
    pub options: Options,
    /// The kinds of change that make the exit status 1 (`--fail-on`);
    /// empty for all.
    pub fail_on: Vec<ChangeKind>,
    /// CSV: neutralise cells a spreadsheet would run as formulas.
    pub spreadsheet_safe: bool,
}

/// Reads both runs, compares them and writes the changes. An `Err` means
/// the runs could not be compared.
pub fn run(config: &DiffConfig) -> anyhow::Result<Diff> {
    let mut strings = Strings::default();
    let (old, mut warnings) =
        read::inventory(&config.old.0, config.old.1.as_deref(), &mut strings)?;
    let (new, more) = read::inventory(&config.new.0, config.new.1.as_deref(), &mut strings)?;
    warnings.extend(more);
    let (mut old, mut new) = (old, new);
    let unshared = forget_unshared(&mut old, &mut new);
    if !unshared.is_empty() {
        // Which run lacks which: the two may lack different columns.
        let lacking = |run: &Inventory, which: &str| -> Option<String> {
            let own: Vec<&str> = unshared
                .iter()
                .copied()
                .filter(|c| run.lacks.contains(c))
                .collect();
            (!own.is_empty())
                .then(|| format!("the {which} run's scripts output lacks {}", own.join(", ")))
        };
        let why: Vec<String> = [lacking(&old, "old"), lacking(&new, "new")]
            .into_iter()
            .flatten()
            .collect();
        warnings.push(format!(
            "compared without {}: {} (written with --fields)",
            unshared.join(", "),
            why.join("; ")
        ));
    }
    match (&config.old.1, &config.new.1) {
        (Some(_), None) | (None, Some(_)) => warnings.push(
            "only one run's page report given: the other run's failed pages and pages without \
             scripts read as page_added or page_gone"
                .to_owned(),
        ),
        _ => {}
    }
    let mut diff = compare(&old, &new, &strings, &config.options);
    warnings.append(&mut diff.warnings);
    diff.warnings = warnings;
    // A reader never sees half a list of changes.
    crate::output::write_report(config.output.as_deref(), |out| {
        write::changes(out, config.format, &diff, config.spreadsheet_safe)
    })?;
    Ok(diff)
}

fn scripts(n: usize) -> String {
    format!("{n} script{}", if n == 1 { "" } else { "s" })
}

/// A change found on a page, with where it sorts.
struct Found {
    at: (u64, u8),
    change: Change,
}

/// What a page's scripts are compared with.
struct Runs<'a> {
    strings: &'a Strings,
    options: &'a Options,
    /// Whether the old and the new run fetched script content.
    fetched: [bool; 2],
}

fn compare_page(page: &str, old: &[Script], new: &[Script], runs: &Runs, out: &mut Vec<Change>) {
    let (strings, options) = (runs.strings, runs.options);
    let mut found: Vec<Found> = Vec::new();
    let mut push = |kind: ChangeKind, script: &Script, detail: String, at: (u64, u8)| {
        found.push(Found {
            at,
            change: Change {
                page_url: page.to_owned(),
                kind,
                src: strings.text(script.src).map(str::to_owned),
                inline_sha256: strings.text(script.inline_sha256).map(str::to_owned),
                detail,
                third_party: script.third_party,
            },
        });
    };

    // External scripts: the same src is the same script; each occurrence
    // pairs with the next one of the other run. Scripts left over then pair
    // by src as keyed (--ignore-query, --ignore-src), so that of
    // `gtag.js?id=A` and `?id=B`, both still there, neither reads as
    // replaced by the other.
    let mut exact: HashMap<Sym, VecDeque<&Script>> = HashMap::new();
    for s in old {
        if let Some(src) = s.src {
            exact.entry(src).or_default().push_back(s);
        }
    }
    let mut unmatched: Vec<&Script> = Vec::new();
    for s in new {
        let Some(src) = s.src else { continue };
        match exact.get_mut(&src).and_then(VecDeque::pop_front) {
            Some(before) => {
                for (kind, detail) in differences(before, s, runs) {
                    push(kind, s, detail, (s.index, 1));
                }
            }
            None => unmatched.push(s),
        }
    }
    let mut left: Vec<&Script> = exact.into_values().flatten().collect();
    left.sort_by_key(|s| s.index);
    let mut waiting: HashMap<Cow<str>, VecDeque<&Script>> = HashMap::new();
    for s in left {
        if let Some(src) = strings.text(s.src) {
            waiting.entry(options.key(src)).or_default().push_back(s);
        }
    }
    for s in unmatched {
        let Some(src) = strings.text(s.src) else {
            continue;
        };
        match waiting
            .get_mut(&options.key(src))
            .and_then(VecDeque::pop_front)
        {
            Some(before) => {
                for (kind, detail) in differences(before, s, runs) {
                    push(kind, s, detail, (s.index, 1));
                }
            }
            None => {
                let (kind, detail) = added(s, strings, options);
                push(kind, s, detail, (s.index, 1))
            }
        }
    }
    let mut gone: Vec<&Script> = waiting.into_values().flatten().collect();
    gone.sort_by_key(|s| s.index);
    for s in gone {
        push(ChangeKind::Removed, s, removed_detail(s), (s.index, 0));
    }

    // Inline scripts: identical texts anchor the two sequences (longest
    // common subsequence); between two anchors, scripts pair up in order as
    // edits, and the rest were added or removed.
    let old_inline: Vec<&Script> = old.iter().filter(|s| s.src.is_none()).collect();
    let new_inline: Vec<&Script> = new.iter().filter(|s| s.src.is_none()).collect();
    let anchors = common_subsequence(&old_inline, &new_inline);
    let (mut i, mut j) = (0, 0);
    for (a, b) in anchors
        .into_iter()
        .chain(std::iter::once((old_inline.len(), new_inline.len())))
    {
        let (olds, news) = (&old_inline[i..a], &new_inline[j..b]);
        for k in 0..olds.len().max(news.len()) {
            match (olds.get(k), news.get(k)) {
                (Some(before), Some(after)) => {
                    let detail = format!(
                        "was {}{}",
                        strings.text(before.inline_sha256).unwrap_or("?"),
                        match (before.inline_bytes, after.inline_bytes) {
                            (Some(x), Some(y)) => format!(" ({x} → {y} bytes)"),
                            _ => String::new(),
                        }
                    );
                    push(ChangeKind::InlineChanged, after, detail, (after.index, 1));
                }
                (None, Some(after)) => {
                    let (kind, detail) = added(after, strings, options);
                    push(kind, after, detail, (after.index, 1))
                }
                (Some(before), None) => push(
                    ChangeKind::Removed,
                    before,
                    removed_detail(before),
                    (before.index, 0),
                ),
                (None, None) => {}
            }
        }
        if let (Some(before), Some(after)) = (old_inline.get(a), new_inline.get(b)) {
            for (kind, detail) in differences(before, after, runs) {
                push(kind, after, detail, (after.index, 1));
            }
        }
        (i, j) = (a + 1, b + 1);
    }

    found.sort_by_key(|f| f.at);
    out.extend(
        found
            .into_iter()
            .map(|f| f.change)
            .filter(|c| !options.only_third_party || c.third_party),
    );
}

/// The row of a script only the new run has: `added`, or with `--allow`
/// what the list says (`unapproved` when unlisted or off its pin,
/// `unknown` when its pin cannot be checked).
fn added(script: &Script, strings: &Strings, options: &Options) -> (ChangeKind, String) {
    let detail = added_detail(script, strings);
    let Some(list) = &options.allow else {
        return (ChangeKind::Added, detail);
    };
    let verdict = list.verdict(script, strings);
    match verdict.outcome {
        Outcome::Authorised => (ChangeKind::Added, detail),
        Outcome::Unlisted => (ChangeKind::Unapproved, detail),
        Outcome::PinMismatch => (
            ChangeKind::Unapproved,
            format!("{detail}; {}", verdict.reason),
        ),
        Outcome::PinUnknown => (ChangeKind::Unknown, format!("{detail}; {}", verdict.reason)),
    }
}

fn added_detail(s: &Script, strings: &Strings) -> String {
    let mut detail = match (&s.src, s.inline_bytes) {
        (None, Some(bytes)) => format!("inline, {bytes} bytes"),
        (None, None) => "inline".to_owned(),
        (Some(_), _) if s.third_party => format!(
            "third-party ({})",
            strings.text(s.host).unwrap_or("unknown host")
        ),
        (Some(_), _) => "first-party".to_owned(),
    };
    if s.src.is_some() && s.integrity.is_none() {
        detail.push_str(", no integrity");
    }
    // What to pin it to, or why that is not known.
    if let Some(content) = strings.content(s.content) {
        match content.hash() {
            Some(_) => detail.push_str(&format!(", content {}", content_text(content, strings))),
            None => detail.push_str(&format!(
                ", no content: {}",
                why_no_content(Some(content), strings)
            )),
        }
    }
    detail
}

fn removed_detail(s: &Script) -> String {
    match (&s.src, s.inline_bytes) {
        (None, Some(bytes)) => format!("inline, {bytes} bytes"),
        (None, None) => "inline".to_owned(),
        (Some(_), _) => String::new(),
    }
}

/// A known content for people: `sha384-… (N bytes)`.
fn content_text(content: &Content, strings: &Strings) -> String {
    let hash = strings.text(content.hash()).unwrap_or("?");
    match content.bytes {
        Some(bytes) => format!("{hash} ({bytes} bytes)"),
        None => hash.to_owned(),
    }
}

/// Why a script's content is not known, from its `content_*` columns.
fn why_no_content(content: Option<&Content>, strings: &Strings) -> String {
    match content.map(|c| (c.error.map(|e| strings.get(e)), c.status)) {
        Some((Some("http_status"), Some(status))) => format!("http_status {status}"),
        Some((Some(error), Some(status))) => format!("{error} (status {status})"),
        Some((Some(error), None)) => error.to_owned(),
        // An output written with --fields leaving content_error out.
        Some((None, Some(status))) => format!("status {status}"),
        _ => "not fetched".to_owned(),
    }
}

/// How a script that is in both runs changed (see "One event, one row"
/// in the module documentation): integrity, content (external scripts),
/// then the other attributes together.
fn differences(before: &Script, after: &Script, runs: &Runs) -> Vec<(ChangeKind, String)> {
    let integrity = integrity_change(before, after, runs.strings);
    let broken = matches!(integrity, Some((ChangeKind::IntegrityBroken, _)));
    let content = match after.src {
        Some(_) => content_change(before, after, runs, broken),
        None => None,
    };
    let attributes = attribute_change(before, after, runs.strings);
    [integrity, content, attributes]
        .into_iter()
        .flatten()
        .collect()
}

/// `integrity_broken`, `integrity_removed` or `integrity_changed`.
fn integrity_change(
    before: &Script,
    after: &Script,
    strings: &Strings,
) -> Option<(ChangeKind, String)> {
    let broken = before.integrity_ok == Some(true) && after.integrity_ok == Some(false);
    match (
        strings.text(before.integrity),
        strings.text(after.integrity),
    ) {
        (Some(was), None) => Some((ChangeKind::IntegrityRemoved, format!("was {was}"))),
        (Some(was), Some(is)) if broken => {
            let mut detail = if was == is {
                format!("{is} no longer matches the content")
            } else {
                format!("{was} → {is}, which does not match the content")
            };
            if let Some(moved) = content_move(before, after, strings) {
                detail.push_str(&format!("; content {moved}"));
            }
            Some((ChangeKind::IntegrityBroken, detail))
        }
        (Some(was), Some(is)) if was != is => {
            Some((ChangeKind::IntegrityChanged, format!("{was} → {is}")))
        }
        _ => None,
    }
}

/// `old → new` of two known, different contents.
fn content_move(before: &Script, after: &Script, strings: &Strings) -> Option<String> {
    let (a, b) = (
        strings.content(before.content)?,
        strings.content(after.content)?,
    );
    match (a.hash(), b.hash()) {
        (Some(x), Some(y)) if x != y => Some(format!(
            "{} → {}",
            content_text(a, strings),
            content_text(b, strings)
        )),
        _ => None,
    }
}

/// The content row of an external script in both runs: the pin's verdict
/// when the allow list pins it, else `content_changed` or `unknown`.
/// `broken`: an `integrity_broken` row already tells the content change.
fn content_change(
    before: &Script,
    after: &Script,
    runs: &Runs,
    broken: bool,
) -> Option<(ChangeKind, String)> {
    let strings = runs.strings;
    let pin = runs
        .options
        .allow
        .as_ref()
        .filter(|list| list.has_pins())
        .map(|list| list.verdict(after, strings))
        .filter(|v| v.entry.is_some_and(|e| !e.pins.is_empty()));
    match &pin {
        Some(v) if v.outcome == Outcome::PinMismatch => {
            return Some((ChangeKind::Unapproved, v.reason.clone()));
        }
        Some(v) if v.outcome == Outcome::PinUnknown => {
            return Some((ChangeKind::Unknown, v.reason.clone()));
        }
        _ => {}
    }
    if runs.fetched == [false, false] {
        return None;
    }
    let hash = |s: &Script| strings.content(s.content).and_then(Content::hash);
    match (hash(before), hash(after)) {
        (Some(a), Some(b)) if a == b => None,
        (Some(_), Some(_)) if broken => None,
        (Some(_), Some(_)) => {
            content_move(before, after, strings).map(|moved| (ChangeKind::ContentChanged, moved))
        }
        // The pin vouches for the new content; the old one is past.
        _ if pin.is_some() => None,
        _ => {
            let lacks = |s: &Script, fetched: bool| -> Option<String> {
                let content = strings.content(s.content);
                if content.and_then(Content::hash).is_some() {
                    None
                } else if fetched {
                    Some(why_no_content(content, strings))
                } else {
                    Some("not fetched (the run did not use --fetch-scripts)".to_owned())
                }
            };
            let detail = match (
                lacks(before, runs.fetched[0]),
                lacks(after, runs.fetched[1]),
            ) {
                (Some(a), Some(b)) => format!("no content in either run: old {a}; new {b}"),
                (Some(a), None) => format!("no content in the old run: {a}"),
                (None, Some(b)) => format!("no content in the new run: {b}"),
                (None, None) => return None,
            };
            Some((ChangeKind::Unknown, detail))
        }
    }
}

/// `attribute_changed`: `async`, `defer`, `nomodule`, `type`,
/// `crossorigin`, and `integrity` added.
fn attribute_change(
    before: &Script,
    after: &Script,
    strings: &Strings,
) -> Option<(ChangeKind, String)> {
    let text = |sym| strings.text(sym);
    let mut attrs: Vec<String> = Vec::new();
    if before.integrity.is_none()
        && let Some(is) = text(after.integrity)
    {
        attrs.push(format!("integrity: (none) → {is}"));
    }
    for (name, was, is) in [
        ("type", before.type_attr, after.type_attr),
        ("crossorigin", before.crossorigin, after.crossorigin),
    ] {
        if was != is {
            attrs.push(format!(
                "{name}: {} → {}",
                text(was).unwrap_or("(none)"),
                text(is).unwrap_or("(none)")
            ));
        }
    }
    for (name, was, is) in [
        ("async", before.is_async, after.is_async),
        ("defer", before.defer, after.defer),
        ("nomodule", before.nomodule, after.nomodule),
    ] {
        if was != is {
            attrs.push(format!("{name}: {was} → {is}"));
        }
    }
    if attrs.is_empty() {
        None
    } else {
        Some((ChangeKind::AttributeChanged, attrs.join("; ")))
    }
}

/// Pairs of positions of equal inline hashes, increasing in both: a
/// longest common subsequence. Pages hold few inline scripts; past a
/// bound the table would be large, and identical scripts are paired
/// greedily instead.
fn common_subsequence(a: &[&Script], b: &[&Script]) -> Vec<(usize, usize)> {
    const MAX_CELLS: usize = 4_000_000;
    let same = |x: &Script, y: &Script| x.inline_sha256 == y.inline_sha256;
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        // Each script of `a` takes the next unclaimed equal one of `b`
        // after the last pair: linear with an index of `b` by hash.
        let mut at: HashMap<Option<Sym>, VecDeque<usize>> = HashMap::new();
        for (j, y) in b.iter().enumerate() {
            at.entry(y.inline_sha256).or_default().push_back(j);
        }
        let mut pairs = Vec::new();
        let mut next = 0;
        for (i, x) in a.iter().enumerate() {
            let Some(queue) = at.get_mut(&x.inline_sha256) else {
                continue;
            };
            while queue.front().is_some_and(|&j| j < next) {
                queue.pop_front();
            }
            if let Some(j) = queue.pop_front() {
                pairs.push((i, j));
                next = j + 1;
            }
        }
        return pairs;
    }
    // lengths[i][j]: LCS of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lengths = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i * w + j] = if same(a[i], b[j]) {
                lengths[(i + 1) * w + j + 1] + 1
            } else {
                lengths[(i + 1) * w + j].max(lengths[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut pairs = Vec::new();
    while i < a.len() && j < b.len() {
        if same(a[i], b[j]) {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if lengths[(i + 1) * w + j] >= lengths[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

/// Counts of each kind of change.
pub fn counts(changes: &[Change]) -> BTreeMap<ChangeKind, usize> {
    let mut counts = BTreeMap::new();
    for c in changes {
        *counts.entry(c.kind).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Ref, RefCell};

    thread_local! {
        // Each test runs on its own thread, with its own texts.
        static STRINGS: &'static RefCell<Strings> = Box::leak(Box::default());
    }

    fn sym(text: &str) -> Sym {
        // Tests intern a handful of texts, far from the 4 billion bound.
        STRINGS.with(|s| s.borrow_mut().intern(text).unwrap())
    }

    fn strings() -> Ref<'static, Strings> {
        STRINGS.with(|s| s.borrow())
    }

    fn allows(list: &AllowList, script: &Script) -> bool {
        list.allows(script, &strings())
    }

    fn inline(index: u64, hash: &str) -> Script {
        Script {
            index,
            inline_sha256: Some(sym(hash)),
            ..Script::default()
        }
    }

    fn kinds(old: &[Script], new: &[Script]) -> Vec<(ChangeKind, String)> {
        let run = |scripts: &[Script]| Inventory {
            pages: BTreeMap::from([("p".to_owned(), scripts.to_vec())]),
            ..Inventory::default()
        };
        compare(&run(old), &run(new), &strings(), &Options::default())
            .changes
            .into_iter()
            .map(|c| (c.kind, c.inline_sha256.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn inline_scripts_pair_up_between_identical_ones() {
        use ChangeKind::*;
        let s = |v: &[&str]| -> Vec<Script> {
            v.iter()
                .enumerate()
                .map(|(i, h)| inline(i as u64, h))
                .collect()
        };
        // One edit between two unchanged scripts.
        assert_eq!(
            kinds(&s(&["a", "b", "c"]), &s(&["a", "B", "c"])),
            [(InlineChanged, "B".to_owned())]
        );
        // A removal and an addition elsewhere are not an edit.
        assert_eq!(
            kinds(&s(&["a", "b", "c"]), &s(&["a", "c", "d"])),
            [(Removed, "b".to_owned()), (Added, "d".to_owned())]
        );
        // Moved scripts match by hash; only the new one is reported.
        assert_eq!(
            kinds(&s(&["a", "b"]), &s(&["x", "a", "b"])),
            [(Added, "x".to_owned())]
        );
        assert_eq!(
            kinds(&s(&["a", "a"]), &s(&["a"])),
            [(Removed, "a".to_owned())]
        );
    }

    #[test]
    fn keyed_src_pairs_only_what_exact_src_leaves() {
        let ext = |index, src: &str| Script {
            index,
            src: Some(sym(src)),
            ..Script::default()
        };
        let run = |scripts: Vec<Script>| Inventory {
            pages: BTreeMap::from([("p".to_owned(), scripts)]),
            ..Inventory::default()
        };
        let options = Options {
            ignore_query: true,
            ..Options::default()
        };
        let changes = |old, new| -> Vec<(ChangeKind, Option<String>)> {
            compare(&run(old), &run(new), &strings(), &options)
                .changes
                .into_iter()
                .map(|c| (c.kind, c.src))
                .collect()
        };
        // id=A went; id=B stayed, though it shares A's key and comes after.
        assert_eq!(
            changes(
                vec![
                    ext(0, "https://g.example/gtag.js?id=A"),
                    ext(1, "https://g.example/gtag.js?id=B")
                ],
                vec![ext(0, "https://g.example/gtag.js?id=B")],
            ),
            [(
                ChangeKind::Removed,
                Some("https://g.example/gtag.js?id=A".to_owned())
            )]
        );
        // A rotated token alone is no change.
        assert_eq!(
            changes(
                vec![ext(0, "https://a.example/x.js?v=1")],
                vec![ext(0, "https://a.example/x.js?v=2")],
            ),
            []
        );
    }

    #[test]
    fn allow_list_entries() {
        let list = AllowList::parse(
            "# comment\ncdn.example\nhttps://static.example/lib/*\n'sha256-ok'  # inline\nhttps://*.gapis.example/*\n",
        )
        .unwrap();
        let ext = |src: &str| Script {
            src: Some(sym(src)),
            host: url::Url::parse(src)
                .ok()
                .and_then(|u| u.host_str().map(sym)),
            ..Script::default()
        };
        assert!(allows(&list, &ext("https://cdn.example/x.js")));
        assert!(!allows(&list, &ext("https://sub.cdn.example/x.js")));
        assert!(allows(&list, &ext("https://static.example/lib/a/b.js")));
        assert!(!allows(&list, &ext("https://static.example/other.js")));
        assert!(allows(&list, &inline(0, "sha256-ok")));
        assert!(!allows(&list, &inline(0, "sha256-other")));
        assert!(allows(&list, &ext("https://fonts.gapis.example/a.js")));
        assert!(!allows(
            &list,
            &ext("https://evil.example/.gapis.example/a.js")
        ));
        assert!(!allows(
            &list,
            &ext("https://x@evil.example/.gapis.example/a.js")
        ));
        let wild = AllowList::parse("*.cdn.example").unwrap();
        assert!(allows(&wild, &ext("https://a.cdn.example/x.js")));
    }
}

#[cfg(test)]
mod content_tests {
    //! Content, integrity, pins and policies: the kinds of issue 16.
    use super::*;
    use std::cell::{Ref, RefCell};

    thread_local! {
        // Each test runs on its own thread, with its own texts.
        static STRINGS: &'static RefCell<Strings> = Box::leak(Box::default());
    }

    fn sym(text: &str) -> Sym {
        STRINGS.with(|s| s.borrow_mut().intern(text).unwrap())
    }

    fn strings() -> Ref<'static, Strings> {
        STRINGS.with(|s| s.borrow())
    }

    /// A well-formed SRI hash whose digest is `byte` repeated.
    fn hash(algorithm: &str, byte: u8) -> String {
        use base64::Engine as _;
        let len = match algorithm {
            "sha256" => 32,
            "sha384" => 48,
            _ => 64,
        };
        let digest = vec![byte; len];
        format!(
            "{algorithm}-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    fn sha(byte: u8) -> String {
        hash("sha384", byte)
    }

    const PAY: &str = "https://cdn.example/pay.js";

    fn ext(index: u64, src: &str) -> Script {
        Script {
            index,
            src: Some(sym(src)),
            host: url::Url::parse(src)
                .ok()
                .and_then(|u| u.host_str().map(sym)),
            third_party: true,
            ..Script::default()
        }
    }

    /// `script` as a --fetch-scripts run wrote it: a hash of `bytes`, or
    /// an error (with a status).
    fn with_content(script: Script, sha384: Option<&str>, error: Option<(&str, u16)>) -> Script {
        let content = Content {
            status: error.map(|(_, s)| s).or(sha384.map(|_| 200)),
            error: error.map(|(e, _)| sym(e)),
            bytes: sha384.map(|h| h.len() as u64),
            sha384: sha384.map(sym),
        };
        let id = STRINGS.with(|s| s.borrow_mut().intern_content(content).unwrap());
        Script {
            content: Some(id),
            ..script
        }
    }

    #[test]
    fn a_status_without_its_error_column_is_not_read_as_not_fetched() {
        // An output written with --fields leaving content_error out.
        let content = Content {
            status: Some(404),
            ..Content::default()
        };
        assert_eq!(why_no_content(Some(&content), &strings()), "status 404");
        assert_eq!(why_no_content(None, &strings()), "not fetched");
    }

    fn fetched(byte: u8) -> Script {
        with_content(ext(0, PAY), Some(&sha(byte)), None)
    }

    fn run(scripts: &[Script]) -> Inventory {
        Inventory {
            pages: BTreeMap::from([("p".to_owned(), scripts.to_vec())]),
            report: None,
            fetched_content: scripts.iter().any(|s| s.content.is_some()),
            lacks: Vec::new(),
        }
    }

    fn diff_with(old: &[Script], new: &[Script], options: &Options) -> Vec<(ChangeKind, String)> {
        compare(&run(old), &run(new), &strings(), options)
            .changes
            .into_iter()
            .map(|c| (c.kind, c.detail))
            .collect()
    }

    fn diff(old: &[Script], new: &[Script]) -> Vec<(ChangeKind, String)> {
        diff_with(old, new, &Options::default())
    }

    fn allow(text: &str) -> Options {
        Options {
            allow: Some(AllowList::parse(text).unwrap()),
            ..Options::default()
        }
    }

    #[test]
    fn content_changed_needs_both_hashes_and_unknown_says_which_run_lacks_one() {
        use ChangeKind::*;
        let (a, b) = (sha(1), sha(2));
        // The polyfill.io case: same src, other code.
        assert_eq!(
            diff(&[fetched(1)], &[fetched(2)]),
            [(ContentChanged, format!("{a} (71 bytes) → {b} (71 bytes)"))]
        );
        assert_eq!(diff(&[fetched(1)], &[fetched(1)]), []);
        let failed = |error, status| with_content(ext(0, PAY), None, Some((error, status)));
        assert_eq!(
            diff(&[fetched(1)], &[failed("timeout", 0)]),
            [(
                Unknown,
                "no content in the new run: timeout (status 0)".to_owned()
            )]
        );
        assert_eq!(
            diff(&[failed("http_status", 404)], &[fetched(2)]),
            [(
                Unknown,
                "no content in the old run: http_status 404".to_owned()
            )]
        );
        assert_eq!(
            diff(
                &[failed("http_status", 404)],
                &[failed("body_too_large", 200)]
            ),
            [(
                Unknown,
                "no content in either run: old http_status 404; new body_too_large (status 200)"
                    .to_owned()
            )]
        );
        // One run without --fetch-scripts: its scripts' content is unknown.
        assert_eq!(
            diff(&[ext(0, PAY)], &[fetched(2)]),
            [(
                Unknown,
                "no content in the old run: not fetched (the run did not use --fetch-scripts)"
                    .to_owned()
            )]
        );
        // Neither run fetched content: no content rows at all.
        assert_eq!(diff(&[ext(0, PAY)], &[ext(0, PAY)]), []);
        // A hash alongside an error is not a known content.
        let odd = with_content(ext(0, PAY), Some(&b), Some(("timeout", 0)));
        assert_eq!(diff(&[fetched(2)], &[odd])[0].0, Unknown);

        // The unknown row of a script names it; the page's does not.
        let changes = compare(
            &run(&[fetched(1)]),
            &run(&[failed("timeout", 0)]),
            &strings(),
            &Options::default(),
        )
        .changes;
        assert_eq!(changes[0].src.as_deref(), Some(PAY));
        assert!(changes[0].third_party);
        // A warning when only one run fetched content.
        let d = compare(
            &run(&[ext(0, PAY)]),
            &run(&[fetched(2)]),
            &strings(),
            &Options::default(),
        );
        assert_eq!(
            d.warnings,
            [
                "the old run has no script content (not run with --fetch-scripts): its external \
              scripts' content is unknown"
            ]
        );
    }

    #[test]
    fn integrity_broken_is_one_row_for_one_event() {
        use ChangeKind::*;
        let (i, j) = (hash("sha384", 9), hash("sha384", 8));
        let sri = |byte, integrity: Option<&str>, ok| Script {
            integrity: integrity.map(sym),
            integrity_ok: ok,
            ..fetched(byte)
        };
        let moved = format!("{} (71 bytes) → {} (71 bytes)", sha(1), sha(2));
        // The code behind the src changed and the attribute stayed:
        // browsers refuse it. One row, not content_changed as well.
        assert_eq!(
            diff(
                &[sri(1, Some(&i), Some(true))],
                &[sri(2, Some(&i), Some(false))]
            ),
            [(
                IntegrityBroken,
                format!("{i} no longer matches the content; content {moved}")
            )]
        );
        // The attribute changed too, to a value that does not match: one
        // integrity_broken, not integrity_changed as well.
        assert_eq!(
            diff(
                &[sri(1, Some(&i), Some(true))],
                &[sri(2, Some(&j), Some(false))]
            ),
            [(
                IntegrityBroken,
                format!("{i} → {j}, which does not match the content; content {moved}")
            )]
        );
        // The same content, no longer matching (the attribute changed).
        assert_eq!(
            diff(
                &[sri(1, Some(&i), Some(true))],
                &[sri(1, Some(&j), Some(false))]
            ),
            [(
                IntegrityBroken,
                format!("{i} → {j}, which does not match the content")
            )]
        );
        // A new attribute that matches a new content: two facts, two rows.
        assert_eq!(
            diff(
                &[sri(1, Some(&i), Some(true))],
                &[sri(2, Some(&j), Some(true))]
            ),
            [
                (IntegrityChanged, format!("{i} → {j}")),
                (ContentChanged, moved.clone())
            ]
        );
        // Removed: nothing left to break.
        assert_eq!(
            diff(&[sri(1, Some(&i), Some(true))], &[sri(2, None, None)]),
            [
                (IntegrityRemoved, format!("was {i}")),
                (ContentChanged, moved.clone())
            ]
        );
        // It never matched, or was not checked: not broken now.
        for was in [Some(false), None] {
            assert_eq!(
                diff(&[sri(1, Some(&i), was)], &[sri(2, Some(&i), Some(false))]),
                [(ContentChanged, moved.clone())],
                "{was:?}"
            );
        }
    }

    #[test]
    fn verdicts_name_the_entry_and_pins_decide_over_broader_entries() {
        let (a, b) = (sha(1), sha(2));
        let list = AllowList::parse(&format!(
            "# payment page\n\
             *.cdn.example  owner=web\n\
             cdn.example\n\
             {PAY}  justification=\"Card form, contract #17\"  owner=payments@shop.example  pin={a}\n\
             'sha256-inl'  justification=\"consent banner\"\n"
        ))
        .unwrap();
        let on_pin = fetched(1);
        let s = strings();
        let v = list.verdict(&on_pin, &s);
        assert!(v.authorised());
        let entry = v.entry.unwrap();
        assert_eq!(entry.line, 4);
        assert_eq!(
            entry.justification.as_deref(),
            Some("Card form, contract #17")
        );
        assert_eq!(entry.owner.as_deref(), Some("payments@shop.example"));
        assert_eq!(entry.pins[0].text, a);
        assert_eq!(v.reason, format!("content matches pin {a} (line 4)"));
        drop(s);

        // The host entry does not let other content through.
        let off = fetched(2);
        let timeout = with_content(ext(0, PAY), None, Some(("timeout", 0)));
        let s = strings();
        let v = list.verdict(&off, &s);
        assert_eq!(v.outcome, Outcome::PinMismatch);
        assert_eq!(v.entry.map(|e| e.line), Some(4));
        assert_eq!(
            v.reason,
            format!("pinned {a} (line 4), seen {b} (71 bytes)")
        );
        let v = list.verdict(&timeout, &s);
        assert_eq!(v.outcome, Outcome::PinUnknown);
        assert_eq!(
            v.reason,
            format!("pinned {a} (line 4), content unknown: timeout (status 0)")
        );
        drop(s);
        let unfetched = ext(0, PAY);
        let other = ext(0, "https://cdn.example/other.js");
        let inl = Script {
            inline_sha256: Some(sym("sha256-inl")),
            ..Script::default()
        };
        let stranger = ext(0, "https://evil.example/x.js");
        let s = strings();
        assert_eq!(
            list.verdict(&unfetched, &s).reason,
            format!("pinned {a} (line 4), content unknown: not fetched")
        );
        // Unpinned scripts of the host: the first fitting entry.
        let v = list.verdict(&other, &s);
        assert!(v.authorised());
        assert_eq!(v.reason, "allowed by line 3 (cdn.example)");
        let v = list.verdict(&inl, &s);
        assert_eq!(
            v.entry.unwrap().justification.as_deref(),
            Some("consent banner")
        );
        let v = list.verdict(&stranger, &s);
        assert_eq!((v.outcome, v.entry), (Outcome::Unlisted, None));
    }

    #[test]
    fn sha512_pins_are_checked_through_a_matching_integrity() {
        let (x, y) = (hash("sha512", 5), hash("sha512", 6));
        let list = AllowList::parse(&format!("{PAY} pin={x}")).unwrap();
        let sri = |integrity: &str, ok| Script {
            integrity: Some(sym(integrity)),
            integrity_ok: ok,
            ..fetched(1)
        };
        let proven = sri(&x, Some(true));
        let other = sri(&y, Some(true));
        let unchecked = sri(&x, None);
        // Two sha512 tokens: which one matched is not known.
        let two = sri(&format!("{x} {y}"), Some(true));
        let s = strings();
        assert!(list.verdict(&proven, &s).authorised());
        assert_eq!(list.verdict(&other, &s).outcome, Outcome::PinMismatch);
        let v = list.verdict(&unchecked, &s);
        assert_eq!(v.outcome, Outcome::PinUnknown);
        assert!(v.reason.ends_with("content unknown: only its sha384 is known (pin that form: the content_sha384 column)"), "{}", v.reason);
        assert_eq!(list.verdict(&two, &s).outcome, Outcome::PinUnknown);
    }

    #[test]
    fn a_pinned_script_is_checked_in_every_run() {
        use ChangeKind::*;
        let (a, b) = (sha(1), sha(2));
        let options = allow(&format!("{PAY} pin={a}"));
        // Off its pin and unchanged: still unapproved, night after night.
        assert_eq!(
            diff_with(&[fetched(2)], &[fetched(2)], &options),
            [(
                Unapproved,
                format!("pinned {a} (line 1), seen {b} (71 bytes)")
            )]
        );
        // Changed away from the pin: unapproved, not content_changed too.
        assert_eq!(
            diff_with(&[fetched(1)], &[fetched(2)], &options)[..1].len(),
            1
        );
        assert_eq!(
            diff_with(&[fetched(1)], &[fetched(2)], &options)[0].0,
            Unapproved
        );
        // Back on its pin after an unknown night: nothing to say.
        let timeout = with_content(ext(0, PAY), None, Some(("timeout", 0)));
        assert_eq!(
            diff_with(std::slice::from_ref(&timeout), &[fetched(1)], &options),
            []
        );
        // Its content unknown now: unknown, with the pin.
        assert_eq!(
            diff_with(&[fetched(1)], std::slice::from_ref(&timeout), &options),
            [(
                Unknown,
                format!("pinned {a} (line 1), content unknown: timeout (status 0)")
            )]
        );
        // Between two pinned versions: a change, authorised.
        let two = allow(&format!("{PAY} pin={a} pin={b}"));
        assert_eq!(
            diff_with(&[fetched(1)], &[fetched(2)], &two)[0].0,
            ContentChanged
        );
        // Added scripts: the pin decides between added, unapproved and
        // unknown.
        assert_eq!(diff_with(&[], &[fetched(1)], &options)[0].0, Added);
        assert_eq!(
            diff_with(&[], &[fetched(2)], &options),
            [(
                Unapproved,
                format!(
                    "third-party (cdn.example), no integrity, content {b} (71 bytes); \
                     pinned {a} (line 1), seen {b} (71 bytes)"
                )
            )]
        );
        assert_eq!(
            diff_with(&[], &[ext(0, PAY)], &options),
            [(
                Unknown,
                format!(
                    "third-party (cdn.example), no integrity; pinned {a} (line 1), content \
                     unknown: not fetched"
                )
            )]
        );
        // An unpinned list leaves scripts already there alone.
        assert_eq!(
            diff_with(&[fetched(2)], &[fetched(2)], &allow("cdn.example")),
            []
        );
    }

    #[test]
    fn allow_lines_take_quoted_values_and_bad_lines_name_their_number() {
        let a = sha(1);
        let list = AllowList::parse(&format!(
            "cdn.example   # a comment\n\
             https://x.example/a.js#frag  owner=\"Jane \\\"JD\\\" Doe\" justification=\"see #42; really\"  # and a comment\n\
             https://x.example/b.js pin='{a}'\n"
        ))
        .unwrap();
        let e = list.entries();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].pattern, "cdn.example");
        assert_eq!(e[1].pattern, "https://x.example/a.js#frag");
        assert_eq!(e[1].owner.as_deref(), Some("Jane \"JD\" Doe"));
        assert_eq!(e[1].justification.as_deref(), Some("see #42; really"));
        assert_eq!(e[2].pins[0].text, a);
        assert!(list.has_pins());

        for (text, says) in [
            ("cdn.example onwer=x", "unknown key \"onwer\""),
            (
                "cdn.example approved by Bob",
                "\"approved\" is not key=value",
            ),
            ("cdn.example owner=a owner=b", "owner= given twice"),
            ("cdn.example owner=\"Jane", "a quote is not closed"),
            ("cdn.example owner=", "owner= has no value"),
            (
                &format!("cdn.example pin={a}"),
                "pin= on a host (cdn.example)",
            ),
            (
                &format!("sha256-x pin={a}"),
                "pin= on an inline script's hash",
            ),
            (
                "https://x.example/a.js pin=sha384-short",
                "is not a content hash",
            ),
            (
                "https://x.example/a.js pin=md5-AAAA",
                "is not a content hash",
            ),
            (
                &format!("https://x.example/a.js pin=\"{a} {a}\""),
                "is not a content hash",
            ),
            ("owner=x cdn.example", "owner= before any entry"),
            (&a, "inline scripts are listed by their sha256"),
        ] {
            let err = AllowList::parse(&format!("# list\nok.example\n{text}\n")).unwrap_err();
            assert_eq!(err.line, 3, "{text}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
        let err = AllowList::parse("a b\nok\nc d\ne f\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: \"b\" is not key=value (keys: justification, owner, pin; quote values with spaces) (and 2 more bad lines)"
        );
        // sha256 and sha512 pins are accepted.
        assert!(
            AllowList::parse(&format!("https://x.example/a.js pin={}", hash("sha512", 3))).is_ok()
        );
        assert!(
            AllowList::parse(&format!("https://x.example/a.js pin={}", hash("sha256", 3))).is_ok()
        );
    }

    #[test]
    fn csp_changed_compares_the_reports_policies() {
        let page = |csp: Option<&str>, with_column: bool| Inventory {
            pages: BTreeMap::new(),
            report: Some(Report {
                ok: HashMap::from([("p".to_owned(), Some(0))]),
                csp: with_column.then(|| {
                    csp.map(|c| HashMap::from([("p".to_owned(), c.to_owned())]))
                        .unwrap_or_default()
                }),
                ..Report::default()
            }),
            fetched_content: false,
            lacks: Vec::new(),
        };
        let changes =
            |old: &Inventory, new: &Inventory| compare(old, new, &strings(), &Options::default());
        let d = changes(
            &page(Some("script-src 'self'"), true),
            &page(Some("script-src 'self' https://evil.example"), true),
        );
        assert_eq!(d.changes.len(), 1);
        let c = &d.changes[0];
        assert_eq!(c.kind, ChangeKind::CspChanged);
        assert_eq!(c.src, None);
        assert_eq!(c.detail, "script-src: 'self' → 'self' https://evil.example");
        // Reformatted: no change.
        let d = changes(
            &page(Some("script-src 'self'"), true),
            &page(Some("SCRIPT-SRC   'SELF';"), true),
        );
        assert!(d.changes.is_empty());
        assert_eq!(
            changes(&page(None, true), &page(Some("object-src 'none'"), true)).changes[0].detail,
            "policy added: \"object-src 'none'\""
        );
        // A report from before the column: not compared, with a warning.
        let d = changes(&page(None, false), &page(Some("object-src 'none'"), true));
        assert!(d.changes.is_empty());
        assert_eq!(
            d.warnings,
            [
                "the old run's page report has no csp column (written before it, or with \
                 --page-fields leaving it out): Content-Security-Policy not compared"
            ]
        );
        let d = changes(&page(None, false), &page(None, false));
        assert!(d.warnings.is_empty() && d.changes.is_empty());
    }

    #[test]
    fn a_script_row_stays_small() {
        // About 85 bytes a row was measured with 56-byte scripts; the
        // content is one interned id, not four more fields.
        assert!(std::mem::size_of::<Script>() <= 64);
    }
}
