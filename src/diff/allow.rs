//! The allow list (`--allow FILE`): which scripts are authorised, why, by
//! whom, and, for an external script, with which content.
//!
//! `diff` uses it to tell an `added` script from an `unapproved` one and to
//! check pinned content; an inventory report asks it, script by script,
//! for a [`Verdict`]. It is not a policy engine: an entry names scripts,
//! and the first fitting entry (a pinned one before an unpinned one) says
//! why they are there.
//!
//! # Format
//!
//! One entry per line; blank lines and `#` comments are skipped (a `#`
//! starts a comment at the start of a word, so a pattern may hold a
//! fragment). A line is the entry, then optional `key=value` words:
//!
//! ```text
//! cdn.example.com                                # a host; *.example.com for its subdomains
//! https://static.example.com/lib/*               # a src pattern, * matches anything
//! 'sha256-Bq2x…'                                 # an inline script's hash (inline_sha256)
//! https://js.pay.example/v3/pay.js  justification="Card form, contract 2024-17"  owner=payments@shop.example  pin=sha384-oqVuAf…
//! ```
//!
//! - `justification=TEXT`: why the script is there (PCI DSS 6.4.3 asks for
//!   one in writing).
//! - `owner=TEXT`: who answers for it.
//! - `pin=HASH`: the content the script must have, `sha384-<base64>` as
//!   the `content_sha384` column of a `--fetch-scripts` run writes it
//!   (`sha256-…` and `sha512-…` are accepted too; quoted CSP-style
//!   `'sha384-…'` as well). Repeat `pin=` to allow several versions. Only
//!   on a `src` pattern: a host names many scripts, and an inline script's
//!   hash is already its content.
//!
//! A value with spaces is written in double quotes (`"…"`, with `\"` and
//! `\\` inside); a key may be given once, `pin` as often as needed.
//!
//! Why `key=value` words rather than columns (`ENTRY | why | owner |
//! hash`): every line of a file written for an earlier version is one
//! word, so it reads the same; a line says which field is which, so one
//! with only an owner or only a pin needs no empty columns; and a `|`
//! may appear in a `src` pattern, a quoted word cannot be split.
//!
//! A line that does not fit (an unknown key, a key given twice, a quote
//! left open, a hash that is not one, a pin on a host) is an error naming
//! the line: a typo in a pin must not quietly authorise nothing, or
//! everything. Before this format, such a line was read as a host that no
//! script has.
//!
//! # How entries decide
//!
//! An inline script is authorised by an entry with its hash. An external
//! script is authorised by a host entry for its host or a `src` pattern
//! for its `src`; when one of the entries that fit it is pinned, the pins
//! decide, whatever unpinned entries say (a pin narrows a broader entry:
//! `*.shop.example` and `https://cdn.shop.example/pay.js pin=…` together
//! pin `pay.js`). The content checked is the `content_sha384` of the run
//! read; a `sha256`/`sha512` pin is checked against a script whose
//! `integrity` attribute names exactly that digest (as its only one of
//! that algorithm) and whose `integrity_ok` is true, since the browser's
//! check then proves the content's hash. Content not fetched, or known
//! only in another algorithm, leaves a pin unchecked: [`Outcome::PinUnknown`].

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Script, Strings};
use crate::content::sri::{self, Algorithm};
use crate::crawl::normalize::Glob;

/// Scripts known to be allowed (`--allow FILE`): hosts, `src` patterns and
/// inline hashes, each with what the file says of it.
#[derive(Debug, Default)]
pub struct AllowList {
    entries: Vec<Entry>,
    /// Host entries, with their index in `entries`.
    hosts: Vec<(Glob, usize)>,
    /// `src` pattern entries, with their index in `entries`.
    srcs: Vec<(SrcPattern, usize)>,
    /// Inline hashes, with the index of the first entry of each.
    hashes: HashMap<String, usize>,
    /// Some entry has a pin: scripts already there must be checked too.
    pinned: bool,
}

/// One line of the allow list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The line of the file it is on (1-based).
    pub line: usize,
    /// The host, `src` pattern or inline hash, as written (CSP quotes
    /// taken off).
    pub pattern: String,
    /// `justification=`: why the script is there.
    pub justification: Option<String>,
    /// `owner=`: who answers for it.
    pub owner: Option<String>,
    /// `pin=`: the contents allowed (any of them); empty when unpinned.
    pub pins: Vec<Pin>,
}

/// A content hash an entry pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// As written, without CSP quotes: `sha384-<base64>`.
    pub text: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The digest, decoded.
    digest: Vec<u8>,
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the allow list says of one script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// Authorised, or why not.
    pub outcome: Outcome,
    /// The entry that decided: the one that authorised the script, or the
    /// pinned one whose pin it fails (or that could not be checked);
    /// `None` when no entry fits.
    pub entry: Option<&'a Entry>,
    /// For people, one line: which line allowed it, or the pinned and the
    /// seen hash, or why the content is unknown.
    pub reason: String,
}

impl Verdict<'_> {
    /// Whether the script is authorised.
    pub fn authorised(&self) -> bool {
        self.outcome == Outcome::Authorised
    }
}

/// The outcomes of [`AllowList::verdict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An entry fits, and its pin (if any) matches the content.
    Authorised,
    /// No entry fits the script.
    Unlisted,
    /// Every pin of the fitting pinned entries was checked, and the
    /// content matches none.
    PinMismatch,
    /// The script is pinned, but its content is not known well enough to
    /// check (not fetched, failed, or hashed in another algorithm only).
    PinUnknown,
}

/// A line of the allow list that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowError {
    /// The first bad line (1-based).
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
    /// How many more lines are bad.
    pub more: usize,
}

impl fmt::Display for AllowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}{}",
            self.line,
            self.message,
            more_text(self.more)
        )
    }
}

fn more_text(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more bad line)".to_owned(),
        n => format!(" (and {n} more bad lines)"),
    }
}

impl std::error::Error for AllowError {}

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

    fn matches(&self, url: &url::Url) -> bool {
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return false,
        };
        let rest = &url[url::Position::BeforePath..url::Position::AfterQuery];
        url.scheme() == self.scheme && self.host.matches(&host) && self.rest.matches(rest)
    }
}

/// The keys a line may carry after its entry.
const KEYS: [&str; 3] = ["justification", "owner", "pin"];

impl AllowList {
    /// Reads the list at `path`, as `--allow` names it: a byte-order mark
    /// is skipped, and a bad line is an error naming `path:line`.
    pub fn read(path: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read --allow {path}"))?;
        // Editors on Windows start a file with a byte-order mark.
        AllowList::parse(text.strip_prefix('\u{feff}').unwrap_or(&text))
            .map_err(|e| anyhow::anyhow!("{path}:{}: {}{}", e.line, e.message, more_text(e.more)))
    }

    /// Reads the list from its text (see the module documentation for the
    /// format); the first bad line is the error.
    pub fn parse(text: &str) -> Result<Self, AllowError> {
        let mut list = AllowList::default();
        let mut error: Option<AllowError> = None;
        for (n, line) in text.lines().enumerate() {
            let entry = match parse_line(n + 1, line) {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(message) => {
                    match &mut error {
                        Some(e) => e.more += 1,
                        None => {
                            error = Some(AllowError {
                                line: n + 1,
                                message,
                                more: 0,
                            })
                        }
                    }
                    continue;
                }
            };
            let at = list.entries.len();
            if is_inline_hash(&entry.pattern) {
                list.hashes.entry(entry.pattern.clone()).or_insert(at);
            } else if entry.pattern.contains("://") {
                // parse_line checked that it parses.
                if let Some(pattern) = SrcPattern::parse(&entry.pattern) {
                    list.srcs.push((pattern, at));
                }
            } else {
                list.hosts
                    .push((Glob::new(&entry.pattern.to_ascii_lowercase()), at));
            }
            list.pinned |= !entry.pins.is_empty();
            list.entries.push(entry);
        }
        match error {
            Some(e) => Err(e),
            None => Ok(list),
        }
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether some entry pins content: then scripts that were already
    /// there are checked too, not only added ones.
    pub fn has_pins(&self) -> bool {
        self.pinned
    }

    /// Whether the list allows `script` (its pins, if any, matched).
    pub fn allows(&self, script: &Script, strings: &Strings) -> bool {
        self.verdict(script, strings).authorised()
    }

    /// What the list says of `script`, read with `strings`: whether it is
    /// authorised, by which entry (with its justification, owner and
    /// pins), and why, in words.
    pub fn verdict(&self, script: &Script, strings: &Strings) -> Verdict<'_> {
        let unlisted = Verdict {
            outcome: Outcome::Unlisted,
            entry: None,
            reason: "not on the allow list".to_owned(),
        };
        if script.src.is_none() {
            let Some(&at) = strings
                .text(script.inline_sha256)
                .and_then(|h| self.hashes.get(h))
            else {
                return unlisted;
            };
            return self.authorised_by(at);
        }
        // The entries that fit, src patterns before hosts (the narrower
        // first), each kind in file order.
        let mut fitting: Vec<usize> = Vec::new();
        if let Some(url) = strings
            .text(script.src)
            .and_then(|s| url::Url::parse(s).ok())
        {
            fitting.extend(
                self.srcs
                    .iter()
                    .filter(|(p, _)| p.matches(&url))
                    .map(|&(_, at)| at),
            );
        }
        if let Some(host) = strings.text(script.host) {
            let host = host.to_ascii_lowercase();
            fitting.extend(
                self.hosts
                    .iter()
                    .filter(|(g, _)| g.matches(&host))
                    .map(|&(_, at)| at),
            );
        }
        let Some(&first) = fitting.first() else {
            return unlisted;
        };
        let pinned: Vec<&Entry> = fitting
            .iter()
            .map(|&at| &self.entries[at])
            .filter(|e| !e.pins.is_empty())
            .collect();
        if pinned.is_empty() {
            return self.authorised_by(first);
        }
        let known = known_digests(script, strings);
        let mut unknown: Option<&Entry> = None;
        for &entry in &pinned {
            match check(&entry.pins, &known) {
                Check::Match(pin) => {
                    return Verdict {
                        outcome: Outcome::Authorised,
                        entry: Some(entry),
                        reason: format!("content matches pin {pin} (line {})", entry.line),
                    };
                }
                Check::Unknown => unknown = unknown.or(Some(entry)),
                Check::Mismatch => {}
            }
        }
        match unknown {
            Some(entry) => Verdict {
                outcome: Outcome::PinUnknown,
                entry: Some(entry),
                reason: format!(
                    "pinned {} (line {}), content unknown: {}",
                    pins_text(&entry.pins),
                    entry.line,
                    unknown_why(script, strings, &known)
                ),
            },
            None => {
                let entry = pinned[0];
                Verdict {
                    outcome: Outcome::PinMismatch,
                    entry: Some(entry),
                    reason: format!(
                        "pinned {} (line {}), seen {}",
                        pins_text(&entry.pins),
                        entry.line,
                        seen_text(script, strings, &known)
                    ),
                }
            }
        }
    }

    fn authorised_by(&self, at: usize) -> Verdict<'_> {
        let entry = &self.entries[at];
        Verdict {
            outcome: Outcome::Authorised,
            entry: Some(entry),
            reason: format!("allowed by line {} ({})", entry.line, entry.pattern),
        }
    }
}

/// An `inline_sha256` value, the one kind of hash a line may start with.
fn is_inline_hash(pattern: &str) -> bool {
    pattern.starts_with("sha256-")
}

/// One line: `Ok(None)` for a blank or comment line.
fn parse_line(line_no: usize, line: &str) -> Result<Option<Entry>, String> {
    let words = words(line)?;
    let Some((first, rest)) = words.split_first() else {
        return Ok(None);
    };
    // CSP writes hashes quoted: 'sha256-…'.
    let pattern = first.trim_matches('\'');
    if pattern.is_empty() {
        return Err("an empty entry".to_owned());
    }
    if let Some(key) = KEYS.iter().find(|k| {
        pattern
            .strip_prefix(**k)
            .is_some_and(|r| r.starts_with('='))
    }) {
        return Err(format!(
            "{key}= before any entry: a line starts with the host, src pattern or hash"
        ));
    }
    if pattern.starts_with("sha384-") || pattern.starts_with("sha512-") {
        return Err(format!(
            "{pattern:.14}… is not an entry: inline scripts are listed by their sha256 \
             (the inline_sha256 column); to pin an external script's content, write its src \
             then pin=sha384-…"
        ));
    }
    if pattern.contains("://") && SrcPattern::parse(pattern).is_none() {
        return Err(format!("{pattern:?} is not a src pattern"));
    }
    // A host entry is matched against the host column alone: one with a
    // path, a port, user info, a query or a fragment would match no
    // script, and so authorise nothing without a word.
    if !pattern.contains("://") && !is_inline_hash(pattern) {
        check_host_entry(pattern)?;
    }
    let mut entry = Entry {
        line: line_no,
        pattern: pattern.to_owned(),
        justification: None,
        owner: None,
        pins: Vec::new(),
    };
    for word in rest {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "{word:?} is not key=value (keys: {}; quote values with spaces)",
                KEYS.join(", ")
            ));
        };
        if value.is_empty() {
            return Err(format!("{key}= has no value"));
        }
        match key {
            "justification" | "owner" => {
                let slot = if key == "owner" {
                    &mut entry.owner
                } else {
                    &mut entry.justification
                };
                if slot.is_some() {
                    return Err(format!("{key}= given twice"));
                }
                *slot = Some(value.to_owned());
            }
            "pin" => entry.pins.push(parse_pin(value)?),
            _ => {
                return Err(format!("unknown key {key:?} (one of: {})", KEYS.join(", ")));
            }
        }
    }
    if !entry.pins.is_empty() {
        if is_inline_hash(&entry.pattern) {
            return Err(
                "pin= on an inline script's hash: the hash is already its content".to_owned(),
            );
        }
        if !entry.pattern.contains("://") {
            return Err(format!(
                "pin= on a host ({}): pin an external script by its src (https://…)",
                entry.pattern
            ));
        }
    }
    Ok(Some(entry))
}

/// Refuses a host entry that no host column could equal, saying what to
/// write instead.
fn check_host_entry(pattern: &str) -> Result<(), String> {
    if let Some((user, host)) = pattern.split_once('@')
        && !user.contains('/')
    {
        return Err(format!(
            "{pattern:?}: a host entry has no user name; write the host alone ({host})"
        ));
    }
    let (host, rest) = match pattern.strip_prefix('[') {
        // An IPv6 address, as the host column writes it: [::1].
        Some(inner) => match inner.find(']') {
            Some(end) => (&pattern[..end + 2], &inner[end + 1..]),
            None => return Err(format!("{pattern:?}: an IPv6 address closes with ]")),
        },
        None => match pattern.find(['/', ':', '@', '?', '#']) {
            Some(at) => (&pattern[..at], &pattern[at..]),
            None => return Ok(()),
        },
    };
    if rest.is_empty() {
        return Ok(());
    }
    if host.is_empty() || (rest.starts_with(':') && rest[1..].contains(':')) {
        return Err(format!(
            "{pattern:?} is not a host: write an IPv6 address in brackets ([::1]), or a src \
             pattern (https://host/path)"
        ));
    }
    Err(format!(
        "{pattern:?}: a host entry is the host alone ({host}), matched without port, path or \
         user; for one port or path, write a src pattern (http://{host}{}/*)",
        rest.split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches(':')
    ))
}

/// A `pin=` value: one SRI-form hash of a known algorithm, of that
/// algorithm's length.
fn parse_pin(value: &str) -> Result<Pin, String> {
    let text = value.trim_matches('\'');
    let bad = || {
        format!("pin={text:?} is not a content hash (sha384-<base64>, as content_sha384 has it)")
    };
    if text.contains(['?', ' ', '\t']) {
        return Err(bad());
    }
    let [expected] = &sri::parse(text)[..] else {
        return Err(bad());
    };
    if expected.digest.len() != digest_len(expected.algorithm) {
        return Err(bad());
    }
    Ok(Pin {
        text: text.to_owned(),
        algorithm: expected.algorithm,
        digest: expected.digest.clone(),
    })
}

fn digest_len(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Sha256 => 32,
        Algorithm::Sha384 => 48,
        Algorithm::Sha512 => 64,
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha384 => "sha384",
        Algorithm::Sha512 => "sha512",
    }
}

/// The words of a line: white space separates them, double quotes
/// group (with `\"` and `\\` inside), and an unquoted `#` at the start of
/// a word starts a comment.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars();
    let mut word: Option<String> = None;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            let w = word.get_or_insert_with(String::new);
            match c {
                '"' => quoted = false,
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => w.push(e),
                    Some(other) => {
                        w.push('\\');
                        w.push(other);
                    }
                    None => w.push('\\'),
                },
                _ => w.push(c),
            }
            continue;
        }
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '#' if word.is_none() => break,
            '"' => {
                quoted = true;
                word.get_or_insert_with(String::new);
            }
            _ => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".to_owned());
    }
    words.extend(word);
    Ok(words)
}

/// What is known of a script's content: (algorithm, digest) pairs.
fn known_digests(script: &Script, strings: &Strings) -> Vec<(Algorithm, Vec<u8>)> {
    let mut known = Vec::new();
    if let Some(sha) = strings.content(script.content).and_then(|c| c.hash()) {
        known.extend(
            sri::parse(strings.get(sha))
                .into_iter()
                .map(|e| (e.algorithm, e.digest)),
        );
    }
    // The browser's check proves the hash when the strongest algorithm of
    // the attribute names one digest only.
    if script.integrity_ok == Some(true)
        && let Some(attr) = strings.text(script.integrity)
    {
        let tokens = sri::parse(attr);
        if let Some(strongest) = tokens.iter().map(|e| e.algorithm).max() {
            let mut digests = tokens.iter().filter(|e| e.algorithm == strongest);
            if let Some(first) = digests.next()
                && digests.all(|e| e.digest == first.digest)
                && !known.iter().any(|(a, _)| *a == strongest)
            {
                known.push((strongest, first.digest.clone()));
            }
        }
    }
    known
}

enum Check<'a> {
    Match(&'a Pin),
    Mismatch,
    Unknown,
}

/// A pinned entry against what is known of the content: a match of any
/// pin authorises; a mismatch needs every pin checked.
fn check<'a>(pins: &'a [Pin], known: &[(Algorithm, Vec<u8>)]) -> Check<'a> {
    let mut all_checked = true;
    for pin in pins {
        match known.iter().find(|(a, _)| *a == pin.algorithm) {
            Some((_, digest)) if *digest == pin.digest => return Check::Match(pin),
            Some(_) => {}
            None => all_checked = false,
        }
    }
    if all_checked {
        Check::Mismatch
    } else {
        Check::Unknown
    }
}

fn pins_text(pins: &[Pin]) -> String {
    pins.iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The content hashes seen, for a mismatch.
fn seen_text(script: &Script, strings: &Strings, known: &[(Algorithm, Vec<u8>)]) -> String {
    let content = strings.content(script.content);
    match content.and_then(|c| c.hash()) {
        Some(sha) => match content.and_then(|c| c.bytes) {
            Some(bytes) => format!("{} ({bytes} bytes)", strings.get(sha)),
            None => strings.get(sha).to_owned(),
        },
        None => known
            .iter()
            .map(|(a, d)| {
                format!(
                    "{}-{} (by its integrity)",
                    algorithm_name(*a),
                    STANDARD.encode(d)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Why the pins could not be checked.
fn unknown_why(script: &Script, strings: &Strings, known: &[(Algorithm, Vec<u8>)]) -> String {
    if known.is_empty() {
        return super::why_no_content(strings.content(script.content), strings);
    }
    let names: Vec<&str> = known.iter().map(|(a, _)| algorithm_name(*a)).collect();
    format!(
        "only its {} is known (pin that form: the content_sha384 column)",
        names.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_that_could_match_nothing_are_refused() {
        for (line, says) in [
            ("cdn.example.com/lib.js", "(http://cdn.example.com/*)"),
            ("127.0.0.1:8765", "(http://127.0.0.1:8765/*)"),
            ("*.example.com:443", "(http://*.example.com:443/*)"),
            ("[::1]:8080", "(http://[::1]:8080/*)"),
            ("[::1]/a.js", "(http://[::1]/*)"),
            ("user@cdn.example.com", "(cdn.example.com)"),
            ("cdn.example.com?x", "a host entry is the host alone"),
            ("cdn.example.com:", "(http://cdn.example.com/*)"),
            ("::1", "in brackets"),
            ("[::1", "closes with ]"),
        ] {
            let err = AllowList::parse(line).unwrap_err();
            assert!(err.message.contains(says), "{line}: {}", err.message);
        }
        assert!(
            AllowList::parse("*.cdn.example.com\n127.0.0.1\n[::1]\nhttp://127.0.0.1:8765/*")
                .is_ok()
        );
    }
}
