//! `scriptscrape diff`: what changed between two runs' script inventories.
//!
//! Two scripts outputs (and, when given, their page reports) are read
//! whole ([`read`]), compared page by page, and each change becomes one row
//! ([`write`]). The comparison is a pure function ([`compare`]): external
//! scripts are matched by `src`, inline scripts by hash and then by place,
//! so that one edited inline script reads as `inline_changed`, not as a
//! removal and an addition.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use regex::Regex;

use crate::crawl::normalize::Glob;

pub mod read;
pub mod write;

/// A text stored in [`Strings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(std::num::NonZeroU32);

/// The texts of both runs' rows, each stored once: the same tag manager,
/// library and inline snippet are on page after page, so a run of
/// millions of rows holds a few thousand distinct values. Rows hold 4-byte
/// [`Sym`]s, and a `Sym` is the same text in either run.
#[derive(Debug, Default)]
pub struct Strings {
    ids: HashMap<std::sync::Arc<str>, Sym>,
    texts: Vec<std::sync::Arc<str>>,
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
}

/// What one run knew of its pages.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Each page's scripts, in document order (pages with none are absent).
    pub pages: BTreeMap<String, Vec<Script>>,
    /// The run's page report, when given.
    pub report: Option<Report>,
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
}

/// The kinds of change, as written to the `change` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A script that was not there before.
    Added,
    /// An added script that the `--allow` list does not allow.
    Unapproved,
    /// A script that is gone.
    Removed,
    /// An inline script whose text changed, in the same place.
    InlineChanged,
    /// An external script that lost its `integrity` attribute.
    IntegrityRemoved,
    /// An external script whose `integrity` value changed.
    IntegrityChanged,
    /// `async`, `defer`, `nomodule`, `type` or `crossorigin` changed, or
    /// `integrity` was added.
    AttributeChanged,
    /// A page only the new run has.
    PageAdded,
    /// A page only the old run has.
    PageGone,
    /// A page that failed in either run: not compared.
    Unknown,
}

impl ChangeKind {
    /// Every kind, in the order summaries list them.
    pub const ALL: [ChangeKind; 10] = [
        ChangeKind::Added,
        ChangeKind::Unapproved,
        ChangeKind::Removed,
        ChangeKind::InlineChanged,
        ChangeKind::IntegrityRemoved,
        ChangeKind::IntegrityChanged,
        ChangeKind::AttributeChanged,
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
            ChangeKind::IntegrityRemoved => "integrity_removed",
            ChangeKind::IntegrityChanged => "integrity_changed",
            ChangeKind::AttributeChanged => "attribute_changed",
            ChangeKind::PageAdded => "page_added",
            ChangeKind::PageGone => "page_gone",
            ChangeKind::Unknown => "unknown",
        }
    }

    /// Whether the change is about a page rather than one script.
    pub fn is_page_level(self) -> bool {
        matches!(
            self,
            ChangeKind::PageAdded | ChangeKind::PageGone | ChangeKind::Unknown
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
    /// Added scripts not on this list are `unapproved` (`--allow`).
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

/// Scripts known to be allowed (`--allow FILE`): hosts, `src` patterns and
/// inline hashes.
#[derive(Debug, Default)]
pub struct AllowList {
    hosts: Vec<Glob>,
    srcs: Vec<SrcPattern>,
    hashes: HashSet<String>,
}

/// `scheme://host/rest` with `*` wildcards, matched part by part on the
/// parsed URL, so that a wildcard in the host cannot reach into the path
/// (`https://*.cdn.example/*` does not allow
/// `https://evil.example/.cdn.example/x.js`).
#[derive(Debug)]
struct SrcPattern {
    scheme: String,
    host: Glob,
    rest: Glob,
}

impl SrcPattern {
    fn parse(entry: &str) -> Option<Self> {
        let (scheme, after) = entry.split_once("://")?;
        let (host, rest) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => (after, "/"),
        };
        Some(SrcPattern {
            scheme: scheme.to_ascii_lowercase(),
            host: Glob::new(&host.to_ascii_lowercase()),
            rest: Glob::new(rest),
        })
    }

    fn matches(&self, src: &str) -> bool {
        let Ok(url) = url::Url::parse(src) else {
            return false;
        };
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return false,
        };
        let rest = &url[url::Position::BeforePath..url::Position::AfterQuery];
        url.scheme() == self.scheme && self.host.matches(&host) && self.rest.matches(rest)
    }
}

impl AllowList {
    /// Reads the list: one entry per line, `#` comments. A line with `://`
    /// is a `src` pattern (`*` matches anything), `sha256-…` an inline
    /// script's hash, anything else a host (`*.example.com` for its
    /// subdomains).
    pub fn parse(text: &str) -> Self {
        let mut list = AllowList::default();
        for line in text.lines() {
            // A comment starts at '#' after white space (or at the start),
            // so a pattern may hold a fragment.
            let entry = match line.find(" #").or_else(|| line.find("\t#")) {
                Some(i) => &line[..i],
                None if line.trim_start().starts_with('#') => "",
                None => line,
            };
            // CSP writes hashes quoted: 'sha256-…'.
            let entry = entry.trim().trim_matches('\'');
            if entry.is_empty() {
                continue;
            }
            if entry.starts_with("sha256-") {
                list.hashes.insert(entry.to_owned());
            } else if entry.contains("://") {
                if let Some(pattern) = SrcPattern::parse(entry) {
                    list.srcs.push(pattern);
                }
            } else {
                list.hosts.push(Glob::new(&entry.to_ascii_lowercase()));
            }
        }
        list
    }

    /// Whether the list allows `script`.
    pub fn allows(&self, script: &Script, strings: &Strings) -> bool {
        if let Some(hash) = strings.text(script.inline_sha256)
            && script.src.is_none()
        {
            return self.hashes.contains(hash);
        }
        let host_ok = strings.text(script.host).is_some_and(|host| {
            let host = host.to_ascii_lowercase();
            self.hosts.iter().any(|g| g.matches(&host))
        });
        host_ok
            || strings
                .text(script.src)
                .is_some_and(|src| self.srcs.iter().any(|g| g.matches(src)))
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
                compare_page(page, a, b, strings, options, &mut changes)
            }
        }
    }
    let mut warnings = Vec::new();
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
    use anyhow::Context as _;
    let mut strings = Strings::default();
    let (old, mut warnings) =
        read::inventory(&config.old.0, config.old.1.as_deref(), &mut strings)?;
    let (new, more) = read::inventory(&config.new.0, config.new.1.as_deref(), &mut strings)?;
    warnings.extend(more);
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
    let in_place = config.output.as_deref().is_some_and(|path| {
        // A symlink, device or pipe is written through, not replaced.
        std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file())
    });
    match &config.output {
        Some(path) if in_place => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            write::changes(&mut file, config.format, &diff, config.spreadsheet_safe)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Some(path) => {
            // Written whole beside the target, then renamed: a reader never
            // sees half a list of changes.
            crate::output::write_whole(path, |file| {
                write::changes(file, config.format, &diff, config.spreadsheet_safe)
            })
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            match write::changes(&mut out, config.format, &diff, config.spreadsheet_safe) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("cannot write to standard output")?,
            }
        }
    }
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

fn compare_page(
    page: &str,
    old: &[Script],
    new: &[Script],
    strings: &Strings,
    options: &Options,
    out: &mut Vec<Change>,
) {
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
                for (kind, detail) in differences(before, s, strings) {
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
                for (kind, detail) in differences(before, s, strings) {
                    push(kind, s, detail, (s.index, 1));
                }
            }
            None => push(
                added_kind(s, strings, options),
                s,
                added_detail(s, strings),
                (s.index, 1),
            ),
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
                (None, Some(after)) => push(
                    added_kind(after, strings, options),
                    after,
                    added_detail(after, strings),
                    (after.index, 1),
                ),
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
            for (kind, detail) in differences(before, after, strings) {
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

fn added_kind(script: &Script, strings: &Strings, options: &Options) -> ChangeKind {
    match &options.allow {
        Some(list) if !list.allows(script, strings) => ChangeKind::Unapproved,
        _ => ChangeKind::Added,
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
    detail
}

fn removed_detail(s: &Script) -> String {
    match (&s.src, s.inline_bytes) {
        (None, Some(bytes)) => format!("inline, {bytes} bytes"),
        (None, None) => "inline".to_owned(),
        (Some(_), _) => String::new(),
    }
}

/// How a script that is in both runs changed: integrity, then the other
/// attributes together.
fn differences(before: &Script, after: &Script, strings: &Strings) -> Vec<(ChangeKind, String)> {
    let mut out = Vec::new();
    let text = |sym| strings.text(sym);
    match (text(before.integrity), text(after.integrity)) {
        (Some(was), None) => out.push((ChangeKind::IntegrityRemoved, format!("was {was}"))),
        (Some(was), Some(is)) if was != is => {
            out.push((ChangeKind::IntegrityChanged, format!("{was} → {is}")))
        }
        _ => {}
    }
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
    if !attrs.is_empty() {
        out.push((ChangeKind::AttributeChanged, attrs.join("; ")));
    }
    out
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
            report: None,
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
            report: None,
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
        );
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
        let wild = AllowList::parse("*.cdn.example");
        assert!(allows(&wild, &ext("https://a.cdn.example/x.js")));
    }
}
