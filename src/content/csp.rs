//! The page's Content-Security-Policy: what it says (the page report's
//! `csp`) and whether it lets each script element run (the scripts'
//! `csp_allowed`), as a browser loading the page would decide.
//!
//! The algorithms are Servo's `content-security-policy` crate's (CSP
//! Level 3: parsing, `script-src-elem` → `script-src` → `default-src`
//! fallback, host, scheme and `'self'` sources, nonces, hashes,
//! `'strict-dynamic'`, `'unsafe-inline'`). This module decides what to
//! hand it: which policies a browser enforces for which element, and the
//! element as the browser sees it. It also works around the places where
//! the crate differs from browsers or panics on hostile input, each
//! rewritten in the policy before the crate sees it (`normalise`):
//!
//! - keywords match ASCII case-insensitively (`'STRICT-DYNAMIC'`,
//!   `'Nonce-…'`): they are lowercased; nonce values, hash values and
//!   host sources' paths are not;
//! - hash sources are compared after base64 normalisation, so that
//!   URL-safe characters and missing `=` padding do not make a listed
//!   hash fail (the crate compares the text as written);
//! - `'report-sample'` is dropped: it only shapes reports, and the crate
//!   panics when it cuts a sample of an inline script inside a multibyte
//!   character;
//! - a host source with a port past 65535 is dropped: it matches nothing
//!   (the crate would panic in a debug build and match the default port
//!   in a release one);
//! - a host with an all-digit label (an IPv4 address, or `10.0.0.1.nip.io`)
//!   matches a host source naming it exactly, as Chromium compares hosts
//!   as strings; the crate refuses IPv4 patterns other than `127.0.0.1`
//!   (an older CSP draft), so such labels are masked, the same way in the
//!   policy, the script's URL and the page's origin. IPv6 literals match
//!   no host source: the CSP grammar has no form for them;
//! - `'self'` on an `http:` page on the default port also allows
//!   `https:` on the same host and default port (CSP Level 3, and
//!   browsers); the crate compares the ports as written in the URL, where
//!   a default port is absent, so the `https:` host source is added next
//!   to `'self'`.
//!
//! A `<meta>` policy applies to the elements after it; `report-uri`,
//! `frame-ancestors` and `sandbox` are removed from it, as the CSP
//! specification says for policies delivered in `<meta>`.
//! `Content-Security-Policy-Report-Only` never blocks anything, in a
//! header or a `<meta>`, and is not read.
//!
//! What a static look at the page cannot see is not guessed: a script's
//! URL is checked before any redirect (a browser checks again after one),
//! and scripts inserted at run time are not in the document.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use content_security_policy::{
    CheckResult, CspList, Destination, Element, Initiator, InlineCheckType, ParserMetadata, Policy,
    PolicyDisposition, PolicySource, Request,
};
use url::{Host, Origin, Url};

use crate::extract::{MetaPolicy, Script, Src};

/// What separates the policies in the [`PagePolicy::csp_column`] value:
/// a comma, the separator of a serialized CSP list, which a browser also
/// splits one header value on (and what several `Content-Security-Policy`
/// header lines combine with). Splitting the column on commas gives the
/// policies back; a policy's directives are separated by `;`. (A `<meta>`
/// policy is one policy even if it holds a comma, which no valid policy
/// does; such a column splits into one piece more.)
pub const POLICY_SEPARATOR: &str = ", ";

/// How the `csp` column shows a nonce source: its value is a secret of the
/// page (and changes with every response), so it is never written.
pub const MASKED_NONCE: &str = "'nonce-***'";

/// `policies` with the value of every `'nonce-…'` source masked (also for
/// policies read back from an output written before nonces were masked).
pub fn mask_nonces(policies: &str) -> String {
    let mut out = String::with_capacity(policies.len());
    let mut rest = policies;
    while let Some(at) = find_ascii_ci(rest, "'nonce-") {
        out.push_str(&rest[..at]);
        out.push_str(MASKED_NONCE);
        let value = &rest[at + "'nonce-".len()..];
        // The source ends at its closing quote; one never closed ends at
        // the next separator.
        let end =
            match value.find(|c: char| matches!(c, '\'' | ';' | ',') || c.is_ascii_whitespace()) {
                Some(at) if value[at..].starts_with('\'') => at + 1,
                Some(at) => at,
                None => value.len(),
            };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The Content-Security-Policy a browser enforces on one page, built once
/// per page and asked about each of its script elements.
#[derive(Clone, Debug)]
pub struct PagePolicy {
    /// The page's origin, for `'self'` (its host masked as in
    /// [`mask_url`]).
    origin: Origin,
    /// The enforced policies in force from a script index on: the header
    /// policies from 0, then one more list for each `<meta>` policy, from
    /// the first script after it. Ascending by index; empty when the page
    /// has no policy.
    lists: Vec<(usize, CspList)>,
    /// The `csp` column: the enforced policies as received.
    received: Option<String>,
}

/// One script element, as the policy check needs it.
#[derive(Clone, Copy, Debug)]
pub struct ScriptCheck<'a> {
    /// Its position among the page's script elements, which decides the
    /// `<meta>` policies that apply to it.
    pub index: usize,
    /// What the element would run.
    pub source: Source<'a>,
    /// The `type` attribute as written.
    pub type_attr: Option<&'a str>,
    /// The `nonce` attribute's value, if the element is nonceable
    /// ([`crate::extract::CspInputs::nonceable`]); for an external script
    /// too, as Chromium has it (the specification's algorithm names only
    /// inline ones).
    pub nonce: Option<&'a str>,
    /// The `integrity` attribute as written.
    pub integrity: Option<&'a str>,
    /// The parser inserted the element (true of every script in a
    /// document as served); `'strict-dynamic'` blocks such externals
    /// unless a nonce or hash allows them.
    pub parser_inserted: bool,
}

/// What a script element runs.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// An external script, fetched from this URL.
    External(&'a Url),
    /// A `src` no browser can fetch: nothing is requested, nothing runs.
    Unfetchable,
    /// An inline script with this text.
    Inline(&'a str),
}

impl<'a> ScriptCheck<'a> {
    /// The check of an extracted script, or `None` when the extractor kept
    /// no [`Script::csp`] for it (no policy was expected to apply).
    pub fn of(script: &'a Script) -> Option<Self> {
        let inputs = script.csp.as_ref()?;
        let source = match (&script.src, &script.inline) {
            (Some(Src::Resolved(url)), _) => Source::External(url),
            (Some(Src::Unresolved(_)), _) => Source::Unfetchable,
            (None, inline) => {
                let kept = inline.as_ref().and_then(|i| i.text.as_deref());
                Source::Inline(inputs.text.as_deref().or(kept)?)
            }
        };
        Some(ScriptCheck {
            index: script.index,
            source,
            type_attr: script.type_attr.as_deref(),
            nonce: inputs.nonce_value.as_deref().filter(|_| inputs.nonceable),
            integrity: script.integrity.as_deref(),
            parser_inserted: true,
        })
    }
}

/// How a browser treats a script element, by its `type` (the HTML
/// standard's "prepare the script element"; the obsolete `language`
/// attribute is not read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScriptType {
    /// A classic script or a module: runs, subject to the policy.
    Code,
    /// An import map: an inline one is checked like inline code (the
    /// standard's CSP check comes after the type is known); an external
    /// one is an error and never fetched.
    ImportMap,
    /// Speculation rules: hints, not code, which Chromium checks against
    /// the `'inline-speculation-rules'` keyword that the crate does not
    /// know; not judged here.
    SpeculationRules,
    /// Any other type: a data block (`application/ld+json`,
    /// `text/template`, …), which no browser runs or checks.
    DataBlock,
}

impl ScriptType {
    fn of(type_attr: Option<&str>) -> ScriptType {
        /// The JavaScript MIME type essences (MIME Sniffing standard),
        /// which must match the whole stripped value: parameters make a
        /// data block.
        const JAVASCRIPT: [&str; 16] = [
            "application/ecmascript",
            "application/javascript",
            "application/x-ecmascript",
            "application/x-javascript",
            "text/ecmascript",
            "text/javascript",
            "text/javascript1.0",
            "text/javascript1.1",
            "text/javascript1.2",
            "text/javascript1.3",
            "text/javascript1.4",
            "text/javascript1.5",
            "text/jscript",
            "text/livescript",
            "text/x-ecmascript",
            "text/x-javascript",
        ];
        let Some(value) = type_attr.filter(|t| !t.is_empty()) else {
            return ScriptType::Code;
        };
        let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
        if JAVASCRIPT.iter().any(|js| value.eq_ignore_ascii_case(js))
            || value.eq_ignore_ascii_case("module")
        {
            ScriptType::Code
        } else if value.eq_ignore_ascii_case("importmap") {
            ScriptType::ImportMap
        } else if value.eq_ignore_ascii_case("speculationrules") {
            ScriptType::SpeculationRules
        } else {
            ScriptType::DataBlock
        }
    }
}

impl PagePolicy {
    /// The policy of the page whose final URL is `page_url`, from the
    /// values of its `Content-Security-Policy` response headers (each as
    /// received; see [`header_values`]) and the `<meta>` policies the
    /// extractor found ([`crate::extract::Extracted::csp_metas`]).
    pub fn new<S: AsRef<str>>(page_url: &Url, headers: &[S], metas: &[MetaPolicy]) -> Self {
        if headers.is_empty() && metas.is_empty() {
            // Most pages: nothing to parse, and no 'self' to match.
            return PagePolicy {
                origin: Origin::new_opaque(),
                lists: Vec::new(),
                received: None,
            };
        }
        let page = mask_url(page_url);
        // What 'self' also allows on an http page on the default port.
        let upgrade = match (page.scheme(), page.port(), page.host_str()) {
            ("http", None, Some(host)) => Some(format!("https://{host}")),
            _ => None,
        };
        let upgrade = upgrade.as_deref();
        let mut header = CspList(Vec::new());
        for value in headers {
            let list = CspList::parse(
                value.as_ref(),
                PolicySource::Header,
                PolicyDisposition::Enforce,
            );
            header.0.extend(
                list.0
                    .into_iter()
                    .filter_map(|p| normalise(p, PolicySource::Header, upgrade)),
            );
        }
        let mut lists = Vec::new();
        if !header.0.is_empty() {
            lists.push((0, header.clone()));
        }
        let mut current = header;
        for meta in metas {
            let policy = Policy::parse(
                &meta.content,
                PolicySource::Meta,
                PolicyDisposition::Enforce,
            );
            let Some(policy) = normalise(policy, PolicySource::Meta, upgrade) else {
                continue;
            };
            current.push(policy);
            match lists.last_mut() {
                // Two metas before the same script: one list from there on.
                Some((from, list)) if *from == meta.first_script => *list = current.clone(),
                _ => lists.push((meta.first_script, current.clone())),
            }
        }

        let received: Vec<&str> = headers
            .iter()
            .map(|h| trim_ascii_whitespace(h.as_ref()))
            .chain(metas.iter().map(|m| trim_ascii_whitespace(&m.content)))
            .filter(|p| !p.is_empty())
            .collect();
        PagePolicy {
            origin: page.origin(),
            lists,
            received: (!received.is_empty()).then(|| received.join(POLICY_SEPARATOR)),
        }
    }

    /// The page report's `csp` column: the enforced policies as received,
    /// the headers' first (in the order received), then the `<meta>`
    /// ones (in document order), each trimmed of surrounding whitespace
    /// and joined with [`POLICY_SEPARATOR`]. `None` when the page has no
    /// enforced policy.
    pub fn csp_column(&self) -> Option<String> {
        self.received.as_deref().map(mask_nonces)
    }

    /// Whether any enforced policy applies to any element of the page.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// The enforced policies that apply to the script at `index`.
    fn list_for(&self, index: usize) -> Option<&CspList> {
        self.lists
            .iter()
            .rev()
            .find(|(from, _)| *from <= index)
            .map(|(_, list)| list)
    }

    /// Whether the page's policy lets the element run: `None` when no
    /// enforced policy applies to it, or when a browser would not run or
    /// check it whatever the policy (a data block, speculation rules, an
    /// external import map, an empty inline script, a `src` that cannot
    /// be fetched); else `Some(true)` when every policy that applies
    /// allows it. A `nomodule` script is checked as the browsers that run
    /// it would check it.
    pub fn allowed(&self, script: &ScriptCheck) -> Option<bool> {
        let list = self.list_for(script.index)?;
        let kind = ScriptType::of(script.type_attr);
        let result = match (kind, script.source) {
            (ScriptType::DataBlock | ScriptType::SpeculationRules, _)
            | (_, Source::Unfetchable)
            | (ScriptType::ImportMap, Source::External(_)) => return None,
            // The standard returns before its CSP check: nothing runs.
            (_, Source::Inline("")) => return None,
            (_, Source::Inline(text)) => {
                let element = Element {
                    nonce: script.nonce.map(Cow::Borrowed),
                };
                guarded(|| {
                    list.should_elements_inline_type_behavior_be_blocked(
                        &element,
                        InlineCheckType::Script,
                        text,
                    )
                    .0
                })
            }
            (_, Source::External(url)) => {
                let url = mask_url(url).into_owned();
                let request = Request {
                    current_url: url.clone(),
                    url,
                    origin: self.origin.clone(),
                    redirect_count: 0,
                    destination: Destination::Script,
                    initiator: Initiator::None,
                    nonce: script.nonce.unwrap_or_default().to_owned(),
                    integrity_metadata: script
                        .integrity
                        .map(normalise_integrity)
                        .unwrap_or_default(),
                    parser_metadata: if script.parser_inserted {
                        ParserMetadata::ParserInserted
                    } else {
                        ParserMetadata::NotParserInserted
                    },
                };
                guarded(|| list.should_request_be_blocked(&request).0)
            }
        };
        result.map(|r| r == CheckResult::Allowed)
    }

    /// Checks an extracted script with [`PagePolicy::allowed`] and drops
    /// what was kept for the check ([`Script::csp`]: the nonce's value,
    /// the copy of the inline text), so that it goes no further. `None`
    /// also when the extractor kept nothing for the script: it must be
    /// told of a header policy ([`crate::extract::Extractor::csp_header`]).
    pub fn check(&self, script: &mut Script) -> Option<bool> {
        let allowed = match ScriptCheck::of(script) {
            Some(check) => self.allowed(&check),
            None => {
                debug_assert!(
                    self.list_for(script.index).is_none(),
                    "script {} has no CSP inputs but a policy applies: \
                     was the extractor told of the header policy?",
                    script.index
                );
                None
            }
        };
        script.csp = None;
        allowed
    }
}

/// The values of the enforced `Content-Security-Policy` response headers,
/// in the order received (`Content-Security-Policy-Report-Only` is not
/// one). A value that is not UTF-8 keeps its ASCII: the CSP parser skips
/// directives with anything else.
pub fn header_values(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::CONTENT_SECURITY_POLICY)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Runs a check of the crate, turning a panic (a bug of the crate on some
/// input not yet seen) into "cannot tell" rather than a lost page.
fn guarded(check: impl FnOnce() -> CheckResult) -> Option<CheckResult> {
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(result) => Some(result),
        Err(_) => {
            tracing::debug!("the CSP check panicked; csp_allowed left empty");
            None
        }
    }
}

/// The directives a policy delivered in `<meta>` may not hold (CSP Level
/// 3, "Delivery via meta element").
const NOT_IN_META: [&str; 3] = ["report-uri", "frame-ancestors", "sandbox"];

/// `policy` as the crate should see it (see the module docs), or `None`
/// when nothing of it is left; `self_upgrade` is the host source that
/// `'self'` also stands for on the page, if any.
fn normalise(
    mut policy: Policy,
    source: PolicySource,
    self_upgrade: Option<&str>,
) -> Option<Policy> {
    if source == PolicySource::Meta {
        policy
            .directive_set
            .retain(|d| !NOT_IN_META.contains(&d.name.as_str()));
    }
    for directive in &mut policy.directive_set {
        let value = std::mem::take(&mut directive.value);
        directive.value = value.into_iter().filter_map(source_expression).collect();
        if let Some(upgrade) = self_upgrade
            && directive.value.iter().any(|v| v == "'self'")
        {
            directive.value.push(upgrade.to_owned());
        }
    }
    (!policy.directive_set.is_empty()).then_some(policy)
}

/// One source expression as the crate should see it, or `None` to drop it.
fn source_expression(token: String) -> Option<String> {
    if token.starts_with('\'') {
        let lower = token.to_ascii_lowercase();
        if lower.starts_with("'nonce-") {
            // The keyword is case-insensitive; the nonce is not.
            return Some(format!("'nonce-{}", &token["'nonce-".len()..]));
        }
        if let Some(hash) = hash_source(&token) {
            return Some(hash);
        }
        if lower == "'report-sample'" {
            return None;
        }
        return Some(lower);
    }
    host_source(token)
}

/// A hash source (`'sha256-…'`, any case) with its algorithm lowercased
/// and its value in padded standard base64; `None` if `token` is not one.
fn hash_source(token: &str) -> Option<String> {
    let inner = token.strip_prefix('\'')?.strip_suffix('\'')?;
    let (algorithm, value) = inner.split_once('-')?;
    let algorithm = algorithm.to_ascii_lowercase();
    if !matches!(algorithm.as_str(), "sha256" | "sha384" | "sha512") {
        return None;
    }
    Some(format!("'{algorithm}-{}'", standard_base64(value)))
}

/// A base64 value in the standard alphabet, padded: `-_` become `+/` and
/// `=` is added to a multiple of four characters.
fn standard_base64(value: &str) -> String {
    let mut out: String = value
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// An `integrity` attribute for the crate's hash-source comparison (which
/// compares base64 text): each token's value normalised as the policy's
/// hash sources are, options kept.
fn normalise_integrity(integrity: &str) -> String {
    integrity
        .split_ascii_whitespace()
        .map(|token| {
            let (hash, options) = match token.split_once('?') {
                Some((hash, options)) => (hash, Some(options)),
                None => (token, None),
            };
            let normalised = match hash.split_once('-') {
                Some((algorithm, value)) => {
                    format!("{algorithm}-{}", standard_base64(value))
                }
                None => hash.to_owned(),
            };
            match options {
                Some(options) => format!("{normalised}?{options}"),
                None => normalised,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A host source as the crate should see it, or `None` to drop it:
/// dropped when its port is past 65535, rewritten when its host has a
/// label to mask ([`mask_host`]). Scheme sources and `*` come through
/// unchanged (their "host" has no digit label and no port).
fn host_source(token: String) -> Option<String> {
    let (scheme, rest) = match token.find("://") {
        Some(at) => token.split_at(at + 3),
        None => ("", token.as_str()),
    };
    let host_end = rest.find([':', '/']).unwrap_or(rest.len());
    let (host, after) = rest.split_at(host_end);
    if let Some(port) = after.strip_prefix(':') {
        let port = port.split('/').next().unwrap_or("");
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if digits && port.parse::<u16>().is_err() {
            return None;
        }
    }
    match mask_host(host) {
        Some(masked) => Some(format!("{scheme}{masked}{after}")),
        None => Some(token),
    }
}

/// The suffix [`mask_host`] gives an all-digit label: letters make it a
/// label no IPv4 pattern matches, and no real host is likely to have it.
const DIGIT_LABEL_SUFFIX: &str = "--ip";

/// `host` with each all-digit label suffixed, when it has one: then no
/// IPv4 pattern is found in it (the crate looks for one anywhere in the
/// host), and two hosts are equal, or one a `*.` suffix of the other,
/// exactly when they were before.
fn mask_host(host: &str) -> Option<String> {
    let digits = |label: &str| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit());
    if !host.split('.').any(digits) {
        return None;
    }
    let labels: Vec<Cow<str>> = host
        .split('.')
        .map(|label| match digits(label) {
            true => Cow::Owned(format!("{label}{DIGIT_LABEL_SUFFIX}")),
            false => Cow::Borrowed(label),
        })
        .collect();
    Some(labels.join("."))
}

/// `url` with its host masked as [`mask_host`] masks a policy's: an IPv4
/// address or a domain with an all-digit label.
fn mask_url(url: &Url) -> Cow<'_, Url> {
    let host = match url.host() {
        Some(Host::Ipv4(addr)) => mask_host(&addr.to_string()),
        Some(Host::Domain(domain)) => mask_host(domain),
        _ => None,
    };
    let Some(host) = host else {
        return Cow::Borrowed(url);
    };
    let mut masked = url.clone();
    match masked.set_host(Some(&host)) {
        Ok(()) => Cow::Owned(masked),
        Err(_) => Cow::Borrowed(url),
    }
}

fn trim_ascii_whitespace(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_values_never_reach_the_column() {
        assert_eq!(
            mask_nonces(
                "script-src 'self' 'NONCE-abc+/=' 'nonce-x; object-src 'none', default-src 'nonce-é'"
            ),
            "script-src 'self' 'nonce-***' 'nonce-***'; object-src 'none', default-src 'nonce-***'"
        );
        assert_eq!(mask_nonces("script-src 'self'"), "script-src 'self'");
    }
    use crate::extract::Extractor;
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use sha2::{Digest as _, Sha256, Sha384, Sha512};

    const PAGE: &str = "https://shop.test/checkout";

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// `csp_allowed` of each script of `html`, served from [`PAGE`] with
    /// these header policies, as the pipeline computes it.
    fn allowed(headers: &[&str], html: &str) -> Vec<Option<bool>> {
        allowed_at(PAGE, headers, html)
    }

    fn allowed_at(page: &str, headers: &[&str], html: &str) -> Vec<Option<bool>> {
        let page = url(page);
        let mut extracted = Extractor::new()
            .csp_header(!headers.is_empty())
            .extract_page(&page, html);
        let policy = PagePolicy::new(&page, headers, &extracted.csp_metas);
        extracted
            .scripts
            .iter_mut()
            .map(|s| policy.check(s))
            .collect()
    }

    /// One external script at `src` under one header policy.
    fn external(policy: &str, src: &str) -> Option<bool> {
        allowed(&[policy], &format!("<script src='{src}'></script>"))[0]
    }

    /// One inline script under one header policy.
    fn inline(policy: &str, attrs: &str, text: &str) -> Option<bool> {
        allowed(&[policy], &format!("<script {attrs}>{text}</script>"))[0]
    }

    fn hash(algorithm: &str, text: &str) -> Vec<u8> {
        match algorithm {
            "sha256" => Sha256::digest(text).to_vec(),
            "sha384" => Sha384::digest(text).to_vec(),
            _ => Sha512::digest(text).to_vec(),
        }
    }

    #[test]
    fn host_sources_allow_and_block_external_scripts() {
        let policy = "script-src cdn.test *.static.test https://pinned.test/lib/app.js";
        assert_eq!(external(policy, "https://cdn.test/a.js"), Some(true));
        assert_eq!(external(policy, "https://CDN.test/a.js"), Some(true));
        assert_eq!(external(policy, "https://a.b.static.test/x.js"), Some(true));
        assert_eq!(external(policy, "https://static.test/x.js"), Some(false));
        assert_eq!(external(policy, "https://evil.test/a.js"), Some(false));
        // A path in a source is matched exactly; another port is refused.
        assert_eq!(
            external(policy, "https://pinned.test/lib/app.js"),
            Some(true)
        );
        assert_eq!(
            external(policy, "https://pinned.test/lib/other.js"),
            Some(false)
        );
        assert_eq!(external(policy, "https://cdn.test:8443/a.js"), Some(false));
        // A source without a scheme takes the page's (https, not http).
        assert_eq!(external(policy, "http://cdn.test/a.js"), Some(false));
    }

    #[test]
    fn self_is_the_pages_origin() {
        let policy = "script-src 'self'";
        assert_eq!(external(policy, "/app.js"), Some(true));
        assert_eq!(external(policy, "https://shop.test/x/y.js"), Some(true));
        assert_eq!(
            external(policy, "https://cdn.shop.test/app.js"),
            Some(false)
        );
        assert_eq!(external(policy, "http://shop.test/app.js"), Some(false));
        assert_eq!(
            external(policy, "https://shop.test:444/app.js"),
            Some(false)
        );
        assert_eq!(inline(policy, "", "run()"), Some(false));
        // An http page's 'self' also allows its https twin (default
        // ports, or the same one), never the reverse.
        let html = "<script src='https://shop.test/a.js'></script>\
                    <script src='https://shop.test:8080/a.js'></script>\
                    <script src='https://shop.test.evil/a.js'></script>";
        assert_eq!(
            allowed_at("http://shop.test/", &[policy], html),
            [Some(true), Some(false), Some(false)]
        );
        assert_eq!(
            allowed_at("http://shop.test:8080/", &[policy], html),
            [Some(false), Some(true), Some(false)]
        );
        let html = "<script src='https://10.0.0.1/a.js'></script>";
        assert_eq!(
            allowed_at("http://10.0.0.1/", &[policy], html),
            [Some(true)]
        );
        let html = "<script src='http://shop.test/a.js'></script>";
        assert_eq!(
            allowed_at("https://shop.test/", &[policy], html),
            [Some(false)]
        );
    }

    #[test]
    fn scheme_sources() {
        assert_eq!(
            external("script-src https:", "https://any.test/a.js"),
            Some(true)
        );
        assert_eq!(
            external("script-src https:", "http://any.test/a.js"),
            Some(false)
        );
        assert_eq!(
            external("script-src data:", "data:text/javascript,1"),
            Some(true)
        );
        assert_eq!(
            external("script-src https:", "data:text/javascript,1"),
            Some(false)
        );
        // * covers network schemes, not data:.
        assert_eq!(
            external("script-src *", "https://any.test/a.js"),
            Some(true)
        );
        assert_eq!(
            external("script-src *", "data:text/javascript,1"),
            Some(false)
        );
    }

    #[test]
    fn nonces_match_exactly_or_not_at_all() {
        let policy = "script-src 'nonce-r4nd0m'";
        assert_eq!(inline(policy, "nonce=r4nd0m", "a()"), Some(true));
        assert_eq!(inline(policy, "nonce=R4ND0M", "a()"), Some(false));
        assert_eq!(inline(policy, "nonce=other", "a()"), Some(false));
        assert_eq!(inline(policy, "", "a()"), Some(false));
        assert_eq!(inline(policy, "nonce", "a()"), Some(false));
        let html = "<script src=https://x.test/a.js nonce=r4nd0m></script>\
                    <script src=https://x.test/b.js nonce=wrong></script>\
                    <script src=https://x.test/c.js></script>";
        assert_eq!(
            allowed(&[policy], html),
            [Some(true), Some(false), Some(false)]
        );
    }

    #[test]
    fn hashes_of_the_inline_text() {
        let text = "\nalert('héllo');\n";
        for algorithm in ["sha256", "sha384", "sha512"] {
            let digest = hash(algorithm, text);
            for value in [
                STANDARD.encode(&digest),
                STANDARD_NO_PAD.encode(&digest),
                URL_SAFE_NO_PAD.encode(&digest),
            ] {
                let policy = format!("script-src '{algorithm}-{value}'");
                assert_eq!(inline(&policy, "", text), Some(true), "{policy}");
                assert_eq!(inline(&policy, "", "other()"), Some(false), "{policy}");
            }
        }
        // The algorithm's name is case-insensitive.
        let value = STANDARD.encode(hash("sha256", text));
        assert_eq!(
            inline(&format!("script-src 'SHA256-{value}'"), "", text),
            Some(true)
        );
        // CRLF in the markup is LF by the time a browser hashes the text.
        let html = format!("<script>{}</script>", text.replace('\n', "\r\n"));
        let policy = format!("script-src 'sha256-{value}'");
        assert_eq!(allowed(&[&policy], &html), [Some(true)]);
        // With --inline-text the record's own copy is used.
        let page = url(PAGE);
        let mut extracted = Extractor::new()
            .keep_inline_text(true)
            .csp_header(true)
            .extract_page(&page, &html);
        assert!(extracted.scripts[0].csp.as_ref().unwrap().text.is_none());
        let policy = PagePolicy::new(&page, &[policy], &[]);
        assert_eq!(policy.check(&mut extracted.scripts[0]), Some(true));
    }

    #[test]
    fn unsafe_inline_unless_a_nonce_or_hash_is_in_the_same_directive() {
        assert_eq!(inline("script-src 'unsafe-inline'", "", "a()"), Some(true));
        assert_eq!(
            inline("script-src 'unsafe-inline' 'nonce-abc'", "", "a()"),
            Some(false)
        );
        let value = STANDARD.encode(hash("sha256", "other()"));
        let policy = format!("script-src 'unsafe-inline' 'sha256-{value}'");
        assert_eq!(inline(&policy, "", "a()"), Some(false));
        // In another directive, it does not cancel it.
        let policy = "default-src 'nonce-abc'; script-src 'unsafe-inline'";
        assert_eq!(inline(policy, "", "a()"), Some(true));
        // 'unsafe-inline' is about inline scripts only.
        assert_eq!(
            external("script-src 'unsafe-inline'", "https://x.test/a.js"),
            Some(false)
        );
    }

    #[test]
    fn strict_dynamic_trusts_nonces_and_hashes_only() {
        let body = "console.log(1)";
        let value = STANDARD.encode(hash("sha384", body));
        let policy = format!(
            "script-src 'strict-dynamic' 'nonce-abc' 'sha384-{value}' https: cdn.test 'unsafe-inline' 'self'"
        );
        let html = format!(
            "<script src='https://cdn.test/a.js'></script>\
             <script src='https://cdn.test/b.js' nonce=abc></script>\
             <script src='https://cdn.test/c.js' integrity='sha384-{value}'></script>\
             <script src='/d.js'></script>\
             <script>{body}</script>\
             <script nonce=abc>x()</script>\
             <script>y()</script>"
        );
        assert_eq!(
            allowed(&[&policy], &html),
            [
                // Host, scheme and 'self' sources are ignored…
                Some(false),
                // …but a nonce, or an integrity whose hash the policy
                // lists, allows an external script.
                Some(true),
                Some(true),
                Some(false),
                // Inline: hash and nonce allow, 'unsafe-inline' does not.
                Some(true),
                Some(true),
                Some(false),
            ]
        );
    }

    #[test]
    fn script_src_elem_over_script_src_over_default_src() {
        let src = "https://a.test/x.js";
        assert_eq!(external("default-src a.test", src), Some(true));
        assert_eq!(external("default-src b.test", src), Some(false));
        assert_eq!(
            external("default-src a.test; script-src b.test", src),
            Some(false)
        );
        assert_eq!(
            external("default-src b.test; script-src a.test", src),
            Some(true)
        );
        assert_eq!(
            external("script-src b.test; script-src-elem a.test", src),
            Some(true)
        );
        assert_eq!(
            external("script-src a.test; script-src-elem b.test", src),
            Some(false)
        );
        // Directives that do not govern scripts leave them alone.
        assert_eq!(
            external("img-src 'none'; style-src 'none'", src),
            Some(true)
        );
        assert_eq!(inline("script-src-attr 'none'", "", "a()"), Some(true));
        // Directive names are case-insensitive; the first of a name wins.
        assert_eq!(
            external("SCRIPT-SRC b.test; script-src a.test", src),
            Some(false)
        );
    }

    #[test]
    fn every_policy_must_allow_header_and_meta_alike() {
        let meta = |policy: &str| {
            format!("<meta http-equiv=content-security-policy content=\"{policy}\">")
        };
        let html = format!(
            "<head>{}</head><script src=https://a.test/x.js></script>\
             <script src=https://b.test/x.js></script>",
            meta("script-src a.test b.test")
        );
        assert_eq!(
            allowed(&["script-src a.test c.test"], &html),
            [Some(true), Some(false)]
        );
        // Two policies in one header value, or two header lines.
        let html =
            "<script src=https://a.test/x.js></script><script src=https://b.test/x.js></script>";
        assert_eq!(
            allowed(&["script-src a.test b.test, script-src b.test"], html),
            [Some(false), Some(true)]
        );
        assert_eq!(
            allowed(&["script-src a.test b.test", "script-src a.test"], html),
            [Some(true), Some(false)]
        );
        // A comma in a meta does not split it: one policy, which lists
        // b.test (and the hosts "'none'," and "script-src"); in a header
        // it is two policies, the first of which allows nothing.
        let policies = "script-src 'none', script-src b.test";
        let script = "<script src=https://b.test/x.js></script>";
        let html = format!("<head>{}{script}</head>", meta(policies));
        assert_eq!(allowed(&[], &html), [Some(true)]);
        assert_eq!(allowed(&[policies], script), [Some(false)]);
    }

    #[test]
    fn a_meta_applies_only_to_the_scripts_after_it() {
        let html = "<head><script>early()</script>\
                    <meta http-equiv=Content-Security-Policy content=\"script-src 'none'\">\
                    <script>late()</script></head><body><script src=/x.js></script>";
        assert_eq!(allowed(&[], html), [None, Some(false), Some(false)]);
        let early = &Extractor::new().extract_page(&url(PAGE), html).scripts[0];
        assert!(early.csp.is_none(), "nothing kept where no policy applies");
        // With a header policy too, the early script answers to it alone.
        assert_eq!(
            allowed(&["script-src 'unsafe-inline' 'self'"], html),
            [Some(true), Some(false), Some(false)]
        );
        // Two metas: the second adds its policy from its place on.
        let html = "<head><meta http-equiv=content-security-policy content=\"script-src 'self' a.test\">\
                    <script src=https://a.test/1.js></script>\
                    <meta http-equiv=content-security-policy content=\"script-src 'self'\">\
                    <script src=https://a.test/2.js></script><script src=/3.js></script></head>";
        assert_eq!(allowed(&[], html), [Some(true), Some(false), Some(true)]);
    }

    #[test]
    fn report_only_is_never_enforced() {
        let html = "<head><meta http-equiv=Content-Security-Policy-Report-Only content=\"script-src 'none'\">\
                    </head><script>a()</script>";
        assert_eq!(allowed(&[], html), [None]);
        let mut headers = http::HeaderMap::new();
        headers.append(
            "content-security-policy-report-only",
            "script-src 'none'".parse().unwrap(),
        );
        assert!(header_values(&headers).is_empty());
        headers.append(
            "Content-Security-Policy",
            "script-src a.test".parse().unwrap(),
        );
        headers.append("content-security-policy", "img-src 'none'".parse().unwrap());
        assert_eq!(
            header_values(&headers),
            ["script-src a.test", "img-src 'none'"]
        );
    }

    #[test]
    fn what_a_browser_does_not_run_gets_no_answer() {
        let policy = ["script-src 'none'"];
        let html = "<script type=application/ld+json>{}</script>\
                    <script type=text/template><p></script>\
                    <script type=' '>a()</script>\
                    <script type='text/javascript; charset=utf-8'>a()</script>\
                    <script type=speculationrules>{}</script>\
                    <script type=importmap src=/map.json></script>\
                    <script></script>\
                    <script src=''></script>\
                    <script type=importmap>{}</script>\
                    <script type=MODULE>a()</script>\
                    <script type=' Text/JavaScript '>a()</script>\
                    <script type=''>a()</script>\
                    <svg><script>a()</script></svg>";
        let got = allowed(&policy, html);
        assert_eq!(got[..8], [None; 8]);
        assert_eq!(got[8..], [Some(false); 5]);
    }

    #[test]
    fn no_policy_no_answer_and_nothing_kept() {
        let html = "<script nonce=abc>a()</script><script src=/x.js></script>";
        assert_eq!(allowed(&[], html), [None, None]);
        let scripts = Extractor::new().extract(&url(PAGE), html);
        assert!(scripts.iter().all(|s| s.csp.is_none()));
        let policy = PagePolicy::new(&url(PAGE), &[" "], &[]);
        assert!(policy.is_empty());
        assert_eq!(policy.csp_column(), None);
        // A policy that says nothing about scripts still is one.
        assert_eq!(allowed(&["img-src 'none'"], html), [Some(true), Some(true)]);
    }

    #[test]
    fn check_drops_the_nonce_and_text_it_was_given() {
        let page = url(PAGE);
        let mut scripts = Extractor::new()
            .csp_header(true)
            .extract(&page, "<script nonce=s3cret>a()</script>");
        let inputs = scripts[0].csp.as_ref().unwrap();
        assert_eq!(inputs.nonce_value.as_deref(), Some("s3cret"));
        assert_eq!(inputs.text.as_deref(), Some("a()"));
        let policy = PagePolicy::new(&page, &["script-src 'nonce-s3cret'"], &[]);
        assert_eq!(policy.check(&mut scripts[0]), Some(true));
        assert!(scripts[0].csp.is_none());
        assert!(scripts[0].nonce);
    }

    #[test]
    fn the_csp_column_lists_the_enforced_policies_as_received() {
        let page = url(PAGE);
        let metas = [MetaPolicy {
            content: " script-src 'self' ".to_owned(),
            first_script: 2,
        }];
        let policy = PagePolicy::new(
            &page,
            &[
                "default-src 'none'; script-src a.test, img-src *",
                "",
                "style-src 'SELF'",
            ],
            &metas,
        );
        assert_eq!(
            policy.csp_column().as_deref(),
            Some(
                "default-src 'none'; script-src a.test, img-src *, style-src 'SELF', script-src 'self'"
            )
        );
        let metas_only = PagePolicy::new(&page, &[] as &[&str], &metas);
        assert_eq!(
            metas_only.csp_column().as_deref(),
            Some("script-src 'self'")
        );
    }

    // The pitfalls of the crate, each worked around in `normalise`.

    #[test]
    fn report_sample_with_a_multibyte_character_at_its_cut_does_not_panic() {
        // The crate cuts a 40-byte sample of a blocked inline script when
        // the directive has 'report-sample'; byte 40 here is inside "é".
        let text = format!("{}é rest", "x".repeat(39));
        assert!(!text.is_char_boundary(40));
        for keyword in ["'report-sample'", "'Report-Sample'"] {
            let policy = format!("script-src {keyword} 'self'");
            assert_eq!(inline(&policy, "", &text), Some(false), "{keyword}");
        }
    }

    #[test]
    fn a_port_past_65535_matches_nothing() {
        let src = "https://cdn.test/a.js";
        assert_eq!(external("script-src cdn.test:99999", src), Some(false));
        assert_eq!(
            external("script-src https://cdn.test:65536/", src),
            Some(false)
        );
        assert_eq!(
            external("script-src cdn.test:443 cdn.test:99999", src),
            Some(true)
        );
        assert_eq!(external("script-src cdn.test:*", src), Some(true));
    }

    #[test]
    fn keywords_are_case_insensitive_values_are_not() {
        assert_eq!(inline("script-src 'UNSAFE-INLINE'", "", "a()"), Some(true));
        assert_eq!(external("script-src 'SELF'", "/a.js"), Some(true));
        assert_eq!(
            inline("script-src 'NONCE-abc'", "nonce=abc", "a()"),
            Some(true)
        );
        assert_eq!(
            inline("script-src 'Nonce-ABC'", "nonce=abc", "a()"),
            Some(false)
        );
        // 'STRICT-DYNAMIC' makes host sources ignored as its lowercase does…
        assert_eq!(
            external(
                "script-src 'STRICT-DYNAMIC' cdn.test",
                "https://cdn.test/a.js"
            ),
            Some(false)
        );
        // …and cancels 'unsafe-inline' for inline scripts.
        assert_eq!(
            inline("script-src 'STRICT-DYNAMIC' 'unsafe-inline'", "", "a()"),
            Some(false)
        );
        assert_eq!(external("script-src 'NONE'", "/a.js"), Some(false));
        // A path in a host source stays case-sensitive.
        let policy = "script-src https://cdn.test/Lib/";
        assert_eq!(external(policy, "https://cdn.test/Lib/a.js"), Some(true));
        assert_eq!(external(policy, "https://cdn.test/lib/a.js"), Some(false));
    }

    #[test]
    fn ip_address_hosts_match_a_source_naming_them() {
        let page = "http://10.0.0.5/shop";
        let html = "<script src=http://10.0.0.1/a.js></script>\
                    <script src=http://10.0.0.2/a.js></script>\
                    <script src=/own.js></script>\
                    <script src=http://127.0.0.1/a.js></script>\
                    <script src=http://10.0.0.1.nip.io/a.js></script>\
                    <script src=http://x.1.2.3.4.test/a.js></script>\
                    <script src=http://[::1]/a.js></script>";
        let policy = "script-src 10.0.0.1 'self' 127.0.0.1 10.0.0.1.nip.io *.1.2.3.4.test [::1]";
        assert_eq!(
            allowed_at(page, &[policy], html),
            [
                Some(true),
                Some(false),
                Some(true),
                Some(true),
                Some(true),
                Some(true),
                Some(false)
            ]
        );
        // A wildcard does not make a shorter host match.
        let html = "<script src=http://1.2.3.4.test/a.js></script>";
        assert_eq!(allowed_at(page, &[policy], html), [Some(false)]);
    }

    #[test]
    fn meta_policies_drop_what_meta_cannot_carry() {
        for directive in ["frame-ancestors 'none'", "sandbox", "report-uri /r"] {
            let html = format!(
                "<head><meta http-equiv=content-security-policy content=\"{directive}\">\
                 <script>a()</script></head>"
            );
            // Nothing left: no policy at all…
            assert_eq!(allowed(&[], &html), [None], "{directive}");
            // …whereas in a header it is a policy, which allows the script.
            let html = "<script>a()</script>";
            assert_eq!(allowed(&[directive], html), [Some(true)], "{directive}");
        }
        let html = "<head><meta http-equiv=content-security-policy \
                    content=\"frame-ancestors 'none'; script-src 'none'\"><script>a()</script>";
        assert_eq!(allowed(&[], html), [Some(false)]);
    }

    #[test]
    fn a_meta_outside_head_or_without_content_is_ignored() {
        let none = "content=\"script-src 'none'\"";
        for html in [
            format!("<body><meta http-equiv=content-security-policy {none}><script>a()</script>"),
            format!(
                "<head><noscript><meta http-equiv=content-security-policy {none}></noscript></head><script>a()</script>"
            ),
            format!(
                "<head><template><meta http-equiv=content-security-policy {none}></template></head><script>a()</script>"
            ),
            "<head><meta http-equiv=content-security-policy content=''><script>a()</script>"
                .to_owned(),
            "<head><meta http-equiv=content-security-policy><script>a()</script>".to_owned(),
            format!("<head><meta name=content-security-policy {none}><script>a()</script>"),
            format!(
                "<head><meta http-equiv=' content-security-policy' {none}><script>a()</script>"
            ),
            format!(
                "<svg><meta http-equiv=content-security-policy {none}></svg><script>a()</script>"
            ),
        ] {
            assert_eq!(allowed(&[], &html), [None], "{html}");
        }
        // In the head, however it is spelt.
        let html =
            format!("<head><meta HTTP-EQUIV=CONTENT-Security-Policy {none}><script>a()</script>");
        assert_eq!(allowed(&[], &html), [Some(false)]);
        // A meta the parser puts in the head (before <head>, after </head>).
        let html = format!("<meta http-equiv=content-security-policy {none}><script>a()</script>");
        assert_eq!(allowed(&[], &html), [Some(false)]);
    }

    #[test]
    fn a_nonce_counts_only_on_a_nonceable_element() {
        let policy = ["script-src 'nonce-abc'"];
        let html = "<script nonce=abc>ok()</script>\
                    <script nonce=abc data-x='<script>'>a()</script>\
                    <script nonce=abc title='x<STYLE'>a()</script>\
                    <script <script nonce=abc>a()</script>\
                    <script nonce=abc src=https://x.test/a.js data-x='<Script '></script>\
                    <script nonce=abc id=a id=b>a()</script>\
                    <script nonce=abc data-x='<scrip t'>ok()</script>";
        assert_eq!(
            allowed(&policy, html),
            [
                Some(true),
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                Some(true)
            ]
        );
        // The nonce column does not change: the attribute is there.
        let scripts = Extractor::new().extract(&url(PAGE), html);
        assert!(scripts.iter().all(|s| s.nonce));
    }

    #[test]
    fn scripts_checked_directly() {
        let page = url(PAGE);
        let policy = PagePolicy::new(&page, &["script-src 'strict-dynamic' 'nonce-n'"], &[]);
        let src = url("https://cdn.test/a.js");
        let check = |nonce, parser_inserted| ScriptCheck {
            index: 0,
            source: Source::External(&src),
            type_attr: None,
            nonce,
            integrity: None,
            parser_inserted,
        };
        assert_eq!(policy.allowed(&check(Some("n"), true)), Some(true));
        assert_eq!(policy.allowed(&check(None, true)), Some(false));
        // What a trusted script inserts is allowed under 'strict-dynamic'.
        assert_eq!(policy.allowed(&check(None, false)), Some(true));
    }
}
