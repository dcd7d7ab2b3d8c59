//! Script extraction: a pure function from (document URL, HTML) to records,
//! or from (document URL, body, Content-Type charset) when the encoding is
//! to be found as a browser finds it.
//!
//! The document is parsed the way a browser with scripting enabled would
//! build its tree (html5ever, into the reduced tree of `sink`), and the
//! script elements of that tree are listed in document order. Nothing here
//! does I/O or keeps state between pages, which makes this the easiest
//! stage to test and to benchmark.
//!
//! What counts as "a script of the document" follows the HTML standard:
//! - HTML `<script>` and SVG `<script>` elements anywhere in the tree (html5ever
//!   already moves content after `</html>` into the body).
//! - Not the contents of `<template>`: they belong to a separate document
//!   fragment, which `sink` keeps apart from the document tree.
//! - Not markup inside `<noscript>`: with scripting enabled it is raw text,
//!   so the parser never makes elements of it.
//! - Not MathML elements that happen to be called `script`: they are not
//!   script elements and never run. (But `<math><annotation-xml
//!   encoding="text/html">` holds HTML, scripts included; see `sink`.)
//!
//! The same walk finds the page's `<meta http-equiv=Content-Security-Policy>`
//! policies and, for the scripts a policy may apply to, what checking them
//! against it needs ([`Script::csp`]); the check itself is
//! [`crate::content::csp`]'s.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::time::Duration;

use encoding_rs::Encoding;
use url::Url;

use crate::charset;

mod fast;
mod found;
mod sink;

pub use fast::Unsure;

use found::{Attr, AttrNs, Found, FoundLink, FoundScript};
use sink::Tree;

/// One script element of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// 0-based position among the page's script elements, in document order.
    pub index: usize,
    /// Where an external script comes from; `None` for an inline script.
    pub src: Option<Src>,
    /// True for an SVG `<script>` (its source is `href` or `xlink:href`).
    pub svg: bool,
    /// The `type` attribute as written.
    pub type_attr: Option<String>,
    /// The `async` attribute is present.
    pub is_async: bool,
    /// The `defer` attribute is present.
    pub defer: bool,
    /// The `nomodule` attribute is present.
    pub nomodule: bool,
    /// The `integrity` attribute as written.
    pub integrity: Option<String>,
    /// The `crossorigin` attribute as written.
    pub crossorigin: Option<String>,
    /// The text of an inline script; `None` for an external one.
    pub inline: Option<Inline>,
    /// Whether the element is in the document's `<head>` or elsewhere.
    pub position: Position,
    /// A non-empty `nonce` attribute is present (its value is a secret of
    /// the page's Content-Security-Policy, and is never kept).
    pub nonce: bool,
    /// The `src` resolves to another site than the page's: another
    /// registrable domain (public suffix list), or another host when it
    /// is an IP address. Never true for an inline script.
    pub third_party: bool,
    /// Whether the page's Content-Security-Policy lets the element run (a
    /// later stage fills it in); `None` when no policy applies.
    pub csp_allowed: Option<bool>,
    /// What `--fetch-scripts` found behind `src` (a later stage fills it
    /// in); `None` when it was not fetched.
    pub content: Option<std::sync::Arc<crate::content::scripts::Content>>,
    /// What checking the element against the page's Content-Security-Policy
    /// needs beyond the fields above: kept only until the policy is checked
    /// ([`crate::content::csp::PagePolicy::check`] takes it) and never
    /// written. Present only when a policy may apply to the element: the
    /// response had one ([`Extractor::csp_header`]) or a CSP `<meta>`
    /// comes before the element ([`Extracted::csp_metas`]); so a page
    /// without a policy costs nothing here.
    pub csp: Option<CspInputs>,
    /// What `--render` saw of it (a later stage fills it in); `None`
    /// without `--render`.
    pub render: Option<crate::render::Rendered>,
}

impl Script {
    /// A script with nothing known but its position among the page's:
    /// inline, with no attribute, in the body, no third party.
    pub fn bare(index: usize) -> Script {
        Script {
            index,
            src: None,
            svg: false,
            type_attr: None,
            is_async: false,
            defer: false,
            nomodule: false,
            integrity: None,
            crossorigin: None,
            inline: None,
            position: Position::Body,
            nonce: false,
            third_party: false,
            csp_allowed: None,
            content: None,
            csp: None,
            render: None,
        }
    }
}

/// The parts of a script element that only a Content-Security-Policy check
/// reads (see [`Script::csp`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CspInputs {
    /// The value of a non-empty `nonce` attribute: a secret of the page's
    /// policy, kept only until the policy is checked; never written.
    pub nonce_value: Option<String>,
    /// The element is "nonceable" (CSP Level 3): no attribute name or
    /// value contains `<script` or `<style` (ASCII case-insensitively) and
    /// the start tag repeated no attribute, so that markup injected into
    /// an attribute cannot borrow the page's nonce. A nonce counts only
    /// on a nonceable element.
    pub nonceable: bool,
    /// An inline script's text (as [`Inline::text`], which holds it
    /// instead when the extractor keeps inline text), for the policy's
    /// hash sources; `None` for an external script.
    pub text: Option<String>,
}

/// A `<meta http-equiv="Content-Security-Policy">` policy that a browser
/// enforces: an HTML `meta` that is a child of the `head` element, with a
/// non-empty `content`. (Browsers ignore one elsewhere, and the
/// `Content-Security-Policy-Report-Only` form in a `meta`.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaPolicy {
    /// The `content` attribute as written: the policy.
    pub content: String,
    /// The index of the first script element after the `meta` in document
    /// order (the number of scripts before it): the policy applies from
    /// that script on, as a browser enforces it when the parser inserts
    /// the `meta`, after the scripts before it have run.
    pub first_script: usize,
}

/// Where in the document a script element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Inside `<head>`: runs before the page is shown.
    Head,
    /// Anywhere else (the body, or after it).
    Body,
}

impl Position {
    /// `head` or `body`, as written to the `position` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Position::Head => "head",
            Position::Body => "body",
        }
    }
}

/// The `src` of an external script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Src {
    /// Resolved against the document's base URL, as a browser would fetch it.
    Resolved(Url),
    /// A value no browser could fetch (empty, or not a valid URL), kept as
    /// written so that it is reported rather than dropped.
    Unresolved(String),
}

impl Src {
    /// The absolute URL, or the raw value when it could not be resolved.
    pub fn as_str(&self) -> &str {
        match self {
            Src::Resolved(url) => url.as_str(),
            Src::Unresolved(raw) => raw,
        }
    }

    /// Whether the value was resolved to an absolute URL.
    pub fn is_resolved(&self) -> bool {
        matches!(self, Src::Resolved(_))
    }
}

/// What is known about an inline script's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inline {
    /// Length of the text in bytes, UTF-8 encoded.
    pub bytes: usize,
    /// `sha256-<base64>` of the UTF-8 text: the form used by CSP script
    /// hashes and SRI `integrity`, so the two compare directly.
    pub sha256: String,
    /// The text itself, when the extractor was asked to keep it.
    pub text: Option<String>,
}

/// Extracts script elements from documents; configure once, use for every page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extractor {
    keep_inline_text: bool,
    links: bool,
    detect_utf8: bool,
    csp_header: bool,
    /// Parse every page with html5ever, never trying the fast scan.
    tree_only: bool,
}

/// A link a crawl may follow, found in the same parse as the scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Resolved against the document's base URL; http(s) only.
    pub url: Url,
    /// `rel` lists `nofollow` (`<a>` and `<area>` only).
    pub nofollow: bool,
}

/// A fetched body, decoded and extracted: [`Extractor::extract_body_within`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The encoding the body was decoded with.
    pub encoding: &'static Encoding,
    /// What was extracted, unless parsing went over its budget.
    pub extracted: Result<Extracted, OverBudget>,
}

/// Everything extracted from one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The script elements, in document order.
    pub scripts: Vec<Script>,
    /// With [`Extractor::links`]: the links, in document order.
    pub links: Vec<Link>,
    /// The Content-Security-Policy `<meta>` elements a browser enforces, in
    /// document order; empty (and unallocated) on most pages.
    pub csp_metas: Vec<MetaPolicy>,
}

impl Extractor {
    /// An extractor that records lengths and hashes of inline scripts but not
    /// their text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also keep the text of each inline script (`--inline-text`).
    pub fn keep_inline_text(mut self, yes: bool) -> Self {
        self.keep_inline_text = yes;
        self
    }

    /// Also list the links of each document (`<a href>`, `<area href>`,
    /// `<iframe src>`, `<frame src>`), for crawling.
    pub fn links(mut self, yes: bool) -> Self {
        self.links = yes;
        self
    }

    /// The page's response carried an enforced Content-Security-Policy
    /// header: keep what checking every script against it needs
    /// ([`Script::csp`]). Set per page (an `Extractor` is `Copy`); without
    /// it, only the scripts after a CSP `<meta>` get [`Script::csp`].
    pub fn csp_header(mut self, yes: bool) -> Self {
        self.csp_header = yes;
        self
    }

    /// Parse every page with html5ever's tree builder, without trying the
    /// fast scan first: the reference the fast scan is tested against.
    pub fn tree_only(mut self, yes: bool) -> Self {
        self.tree_only = yes;
        self
    }

    /// The fast scan alone: the records of `html`, or why the scan is not
    /// sure of them (where [`Extractor::extract_page`] would parse the page
    /// with html5ever instead). For tests and measurements.
    pub fn extract_page_fast(&self, document_url: &Url, html: &str) -> Result<Extracted, Unsure> {
        self.scan(document_url, html, encoding_rs::UTF_8, false)
    }

    /// The fast scan's records of `html`, decoded in `encoding` (on a
    /// guess when `tentative`).
    fn scan(
        &self,
        document_url: &Url,
        html: &str,
        encoding: &'static Encoding,
        tentative: bool,
    ) -> Result<Extracted, Unsure> {
        let options = fast::Options {
            links: self.links,
            tentative: tentative.then_some(encoding),
        };
        let found = fast::scan(html, options)?;
        Ok(self.records(document_url, &found, encoding))
    }

    /// The fast scan's records, unless it is unsure or not wanted.
    fn try_fast(
        &self,
        document_url: &Url,
        html: &str,
        encoding: &'static Encoding,
        tentative: bool,
    ) -> Option<Extracted> {
        if self.tree_only {
            return None;
        }
        self.scan(document_url, html, encoding, tentative).ok()
    }

    /// Let the encoding guess pick UTF-8 for an undeclared page whose bytes
    /// are valid UTF-8 (`--detect-utf8`); browsers do not.
    pub fn detect_utf8(mut self, yes: bool) -> Self {
        self.detect_utf8 = yes;
        self
    }

    /// Decodes `body`, fetched from `document_url` with Content-Type
    /// charset `header_charset`, as a browser does (see [`crate::charset`]),
    /// and extracts its scripts and, if asked, links, giving up once
    /// parsing has taken `budget` of CPU time on this thread.
    pub fn extract_body_within(
        &self,
        document_url: &Url,
        body: Vec<u8>,
        header_charset: Option<&str>,
        budget: Duration,
    ) -> Decoded {
        let hints = charset::Hints {
            header_charset,
            tld: charset::tld_of(document_url),
            detect_utf8: self.detect_utf8,
        };
        let (encoding, confidence) = charset::sniff(&body, &hints);
        // A guessed encoding may be overruled by a <meta> the parser meets
        // (the HTML standard's "changing the encoding while parsing"): the
        // body is then decoded again, so it is kept.
        let (text, kept) = match confidence {
            charset::Confidence::Certain => (charset::decode_owned_in(body, encoding), None),
            charset::Confidence::Tentative => (charset::decode_in(&body, encoding), Some(body)),
        };
        if let Some(extracted) = self.try_fast(document_url, &text, encoding, kept.is_some()) {
            return Decoded {
                encoding,
                extracted: Ok(extracted),
            };
        }
        let started = sink::thread_cpu_time();
        let Some(tree) = sink::parse_document(&text, Some(budget), self.links, kept.is_some())
        else {
            return Decoded {
                encoding,
                extracted: Err(OverBudget(budget)),
            };
        };
        let declared = tree.meta_charset().map(charset::declared);
        match (declared, kept) {
            (Some(declared), Some(body)) if declared != encoding => {
                // A browser starts over in the declared encoding, now
                // certain; the two parses share the budget.
                drop(tree);
                let text = charset::decode_in(&body, declared);
                let spent = sink::thread_cpu_time().saturating_sub(started);
                let tree = sink::parse_document(
                    &text,
                    Some(budget.saturating_sub(spent)),
                    self.links,
                    false,
                );
                Decoded {
                    encoding: declared,
                    extracted: tree
                        .map(|tree| self.page(document_url, &tree, declared))
                        .ok_or(OverBudget(budget)),
                }
            }
            _ => Decoded {
                encoding,
                extracted: Ok(self.page(document_url, &tree, encoding)),
            },
        }
    }

    /// Lists the script elements of `html`, a document fetched from
    /// `document_url` (the final URL, after redirects).
    pub fn extract(&self, document_url: &Url, html: &str) -> Vec<Script> {
        self.extract_page(document_url, html).scripts
    }

    /// Lists the scripts of `html` and, if asked, its links. The text is
    /// taken as decoded for good: a `<meta>` in it changes nothing (bytes
    /// go through [`Extractor::extract_body_within`]).
    pub fn extract_page(&self, document_url: &Url, html: &str) -> Extracted {
        if let Some(extracted) = self.try_fast(document_url, html, encoding_rs::UTF_8, false) {
            return extracted;
        }
        let doc = sink::parse_document(html, None, self.links, false);
        // Without a budget the parser always finishes.
        doc.map(|doc| self.page(document_url, &doc, encoding_rs::UTF_8))
            .unwrap_or_default()
    }

    /// Like [`Extractor::extract`], but gives up once parsing has taken
    /// `budget` of CPU time on this thread: a guard against documents
    /// crafted to make the parser slow (deep nesting).
    pub fn extract_within(
        &self,
        document_url: &Url,
        html: &str,
        budget: Duration,
    ) -> Result<Vec<Script>, OverBudget> {
        self.extract_page_within(document_url, html, budget)
            .map(|page| page.scripts)
    }

    /// Like [`Extractor::extract_page`], within a CPU budget as
    /// [`Extractor::extract_within`].
    pub fn extract_page_within(
        &self,
        document_url: &Url,
        html: &str,
        budget: Duration,
    ) -> Result<Extracted, OverBudget> {
        if let Some(extracted) = self.try_fast(document_url, html, encoding_rs::UTF_8, false) {
            return Ok(extracted);
        }
        let doc = sink::parse_document(html, Some(budget), self.links, false)
            .ok_or(OverBudget(budget))?;
        Ok(self.page(document_url, &doc, encoding_rs::UTF_8))
    }

    /// The records of a parsed document in `encoding`, which URLs'
    /// queries are written in.
    fn page(&self, document_url: &Url, tree: &Tree, encoding: &'static Encoding) -> Extracted {
        self.records(document_url, &Found::from_tree(tree, self.links), encoding)
    }

    /// The records of what was found in a document in `encoding`.
    fn records(&self, document_url: &Url, found: &Found, encoding: &'static Encoding) -> Extracted {
        let csp_metas: Vec<MetaPolicy> = found
            .csp_metas
            .iter()
            .map(|(content, first_script)| MetaPolicy {
                content: content.to_string(),
                first_script: *first_script,
            })
            .collect();
        // A policy applies to the scripts from this index on.
        let policy_from = if self.csp_header {
            Some(0)
        } else {
            csp_metas.first().map(|m| m.first_script)
        };

        let base = Base {
            url: document_base(document_url, found.base_href.as_deref(), encoding),
            encoding,
        };
        let page_host = document_url.host();
        let scripts = found
            .scripts
            .iter()
            .enumerate()
            .map(|(index, found)| {
                let csp = policy_from.is_some_and(|from| index >= from);
                let mut script = self.script(index, &base, found, csp);
                if found.in_head {
                    script.position = Position::Head;
                }
                if let (Some(Src::Resolved(src)), Some(page)) = (&script.src, &page_host) {
                    script.third_party = src
                        .host()
                        .is_none_or(|host| !crate::crawl::scope::same_site(&host, page));
                }
                script
            })
            .collect();
        // A link once: the tree builder clones an unclosed <a> where it
        // reopens it (the adoption agency), which adds no link a crawl
        // would follow (and the fast scan does not see).
        let mut seen = std::collections::HashSet::new();
        let links = found
            .links
            .iter()
            .filter_map(|found| link(&base, found))
            .filter(|link| seen.insert((link.url.clone(), link.nofollow)))
            .collect();
        Extracted {
            scripts,
            links,
            csp_metas,
        }
    }

    /// The record of script element `found`; with `csp`, also what
    /// checking it against a Content-Security-Policy needs.
    fn script(&self, index: usize, base: &Base, found: &FoundScript, csp: bool) -> Script {
        let svg = found.svg;
        let mut script = Script {
            svg,
            ..Script::bare(index)
        };
        let mut nonce_value: Option<&str> = None;
        let mut raw_src: Option<&str> = None;
        let mut xlink_href: Option<&str> = None;
        for attr in &found.attrs {
            let value: &str = &attr.value;
            match attr.ns {
                AttrNs::XLink => {
                    if attr.name == "href" {
                        xlink_href = Some(value);
                    }
                    continue;
                }
                AttrNs::Other => continue,
                AttrNs::None => {}
            }
            match &*attr.name {
                "src" if !svg => raw_src = Some(value),
                // SVG 2 uses href; older SVG only xlink:href, which loses to it.
                "href" if svg => raw_src = Some(value),
                "type" => script.type_attr = Some(value.to_owned()),
                "async" => script.is_async = true,
                "defer" => script.defer = true,
                "nomodule" => script.nomodule = true,
                "integrity" => script.integrity = Some(value.to_owned()),
                "crossorigin" => script.crossorigin = Some(value.to_owned()),
                "nonce" => {
                    script.nonce = !value.is_empty();
                    nonce_value = Some(value).filter(|v| !v.is_empty());
                }
                _ => {}
            }
        }
        if svg && raw_src.is_none() {
            raw_src = xlink_href;
        }

        let mut csp_text = None;
        match raw_src {
            Some(raw) => script.src = Some(resolve_src(base, raw)),
            None => {
                let text: &str = &found.text;
                script.inline = Some(Inline {
                    bytes: text.len(),
                    sha256: sha256_source(text.as_bytes()),
                    text: self.keep_inline_text.then(|| text.to_owned()),
                });
                csp_text = (csp && !self.keep_inline_text).then(|| text.to_owned());
            }
        }
        if csp {
            script.csp = Some(CspInputs {
                nonce_value: nonce_value.map(str::to_owned),
                nonceable: nonce_value.is_some()
                    && !found.duplicate_attrs
                    && nonceable(&found.attrs),
                text: csp_text,
            });
        }
        script
    }
}

/// CSP Level 3 "is element nonceable", for a script element with a nonce,
/// but for the duplicate-attribute rule: no attribute's name or value
/// contains `<script` or `<style`, ASCII case-insensitively. (Markup
/// injected before a nonced script would otherwise swallow its start tag
/// and borrow its nonce.)
fn nonceable(attrs: &[Attr]) -> bool {
    let suspicious = |s: &str| {
        let s = s.as_bytes();
        [&b"<script"[..], b"<style"].iter().any(|needle| {
            s.windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
        })
    };
    !attrs
        .iter()
        .any(|a| suspicious(&a.name) || suspicious(&a.value))
}

/// The link an `<a>`/`<area>` (`href`, `rel`) or `<iframe>`/`<frame>`
/// (`src`) element points at, if it is an http(s) URL.
fn link(base: &Base, found: &FoundLink) -> Option<Link> {
    let target = found.href.as_deref().or(found.src.as_deref())?;
    if target.trim().is_empty() {
        return None;
    }
    let url = base.parse(target).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let nofollow = found.rel.as_deref().is_some_and(|rel| {
        rel.split_ascii_whitespace()
            .any(|t| t.eq_ignore_ascii_case("nofollow"))
    });
    Some(Link { url, nofollow })
}

/// Parsing a document took more CPU time than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parsing took more than {0:?} of CPU time")]
pub struct OverBudget(pub Duration);

/// `sha256-<base64 of the digest>`, the CSP / SRI hash-source form.
pub fn sha256_source(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 44);
    out.push_str("sha256-");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out
}

/// The document base URL: the first `<base href>`, resolved against the
/// document URL, unless it fails to parse or is a `data:`/`javascript:` URL,
/// in which case the document URL itself (HTML standard, "frozen base URL").
fn document_base(document_url: &Url, base_href: Option<&str>, encoding: &'static Encoding) -> Url {
    base_href
        .and_then(|href| parse_url(document_url, href, encoding).ok())
        .filter(|url| !matches!(url.scheme(), "data" | "javascript"))
        .unwrap_or_else(|| document_url.clone())
}

/// Parses `input` against `base` as a document in `encoding` does: the
/// URL standard writes the query of a URL parsed in a document in the
/// document's encoding (UTF-8 for UTF-16 and replacement, its output
/// encoding), so that an EUC-KR page's `?q=한글` is `?q=%C7%D1%B1%DB`.
fn parse_url(base: &Url, input: &str, encoding: &'static Encoding) -> Result<Url, url::ParseError> {
    let encoding = encoding.output_encoding();
    if encoding == encoding_rs::UTF_8 {
        return base.join(input);
    }
    let encode: &dyn Fn(&str) -> std::borrow::Cow<'_, [u8]> =
        &|query| charset::encode_query(query, encoding);
    Url::options()
        .base_url(Some(base))
        .encoding_override(Some(encode))
        .parse(input)
}

/// What URLs in a document are parsed against: its base URL, and its
/// encoding, which their queries are written in.
struct Base {
    url: Url,
    encoding: &'static Encoding,
}

impl Base {
    fn parse(&self, input: &str) -> Result<Url, url::ParseError> {
        parse_url(&self.url, input, self.encoding)
    }
}

fn resolve_src(base: &Base, raw: &str) -> Src {
    // An empty src is an error for a browser (it fires `error` and loads
    // nothing); anything else goes through the URL parser, which trims
    // surrounding whitespace and drops tabs and newlines as browsers do.
    if raw.is_empty() {
        return Src::Unresolved(String::new());
    }
    match base.parse(raw) {
        Ok(url) => Src::Resolved(url),
        Err(_) => Src::Unresolved(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn srcs(scripts: &[Script]) -> Vec<String> {
        scripts
            .iter()
            .map(|s| match &s.src {
                Some(src) => src.as_str().to_owned(),
                None => "<inline>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn kitchen_sink_in_document_order() {
        let html = include_str!("../fixtures/html/kitchen-sink.html");
        let scripts =
            Extractor::new().extract(&url("https://www.example.com/shop/page.html"), html);
        assert_eq!(
            srcs(&scripts),
            [
                "<inline>",
                "https://cdn.example.net/lib.js",
                "https://www.example.com/static/Upper.js",
                "<inline>",
                "https://www.example.com/shop/app.mjs",
                "https://www.example.com/shop/legacy.js",
                "https://www.example.com/svg-href.js",
                "https://www.example.com/svg-xlink.js",
                "<inline>",
                "https://other.example.org/x.js?v=1",
                "<inline>",
            ]
        );
        let indexes: Vec<usize> = scripts.iter().map(|s| s.index).collect();
        assert_eq!(indexes, (0..11).collect::<Vec<_>>());

        let lib = &scripts[1];
        assert!(lib.is_async && !lib.defer && !lib.nomodule && !lib.svg);
        assert_eq!(lib.crossorigin.as_deref(), Some("anonymous"));
        assert_eq!(
            lib.integrity.as_deref(),
            Some("sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC")
        );
        assert!(lib.inline.is_none());

        // Upper-case tag and attribute names are the same element to HTML.
        let upper = &scripts[2];
        assert!(upper.defer && !upper.is_async);
        assert_eq!(upper.type_attr.as_deref(), Some("text/javascript"));

        assert_eq!(scripts[3].type_attr.as_deref(), Some("application/ld+json"));
        assert_eq!(scripts[4].type_attr.as_deref(), Some("module"));
        assert!(scripts[5].nomodule);
        assert!(scripts[6].svg && scripts[7].svg && scripts[8].svg);
        assert!(!scripts[9].svg);
        // A bare crossorigin attribute is present with an empty value.
        assert_eq!(scripts[9].crossorigin.as_deref(), Some(""));
        assert_eq!(scripts[0].crossorigin, None);
    }

    #[test]
    fn position_nonce_and_third_party() {
        let html = r#"<!doctype html><html><head>
            <script src="/first.js" nonce="r4nd0m"></script>
            <script src="https://cdn.shop.example/lib.js"></script>
            <script src="https://tracker.example/t.js" nonce></script>
            </head><body>
            <script nonce="abc">inline()</script>
            <svg><script href="https://evil.example/x.js"></script></svg>
            <script src="http://[::1]/x.js"></script>
            <script src="//:"></script>
            </body></html>
            <script src="https://www.shop.example:8443/late.js"></script>"#;
        let scripts = Extractor::new().extract(&url("https://www.shop.example/checkout"), html);
        let got: Vec<_> = scripts
            .iter()
            .map(|s| (s.position.as_str(), s.nonce, s.third_party))
            .collect();
        assert_eq!(
            got,
            [
                ("head", true, false),
                ("head", false, false),
                // An empty nonce is no nonce.
                ("head", false, true),
                ("body", true, false),
                ("body", false, true),
                ("body", false, true),
                // Unresolvable: not known to be anyone's.
                ("body", false, false),
                // After </html> is the body; another port is the same site.
                ("body", false, false),
            ]
        );
        // Scripts before <head> and between </head> and <body> are the head's.
        let html = "<script>a()</script><title>x</title></head> <script>b()</script><p>";
        let scripts = Extractor::new().extract(&url("https://a.test/"), html);
        assert_eq!(scripts[0].position, Position::Head);
        assert_eq!(scripts[1].position, Position::Head);
    }

    #[test]
    fn inline_length_and_csp_hash() {
        let html = "<script>alert('Hello, world.');</script><script></script>";
        let scripts = Extractor::new().extract(&url("https://a.test/"), html);
        let inline = scripts[0].inline.as_ref().unwrap();
        assert_eq!(inline.bytes, "alert('Hello, world.');".len());
        // The example hash from the CSP Level 3 specification.
        assert_eq!(
            inline.sha256,
            "sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng="
        );
        assert!(inline.text.is_none());
        let empty = scripts[1].inline.as_ref().unwrap();
        assert_eq!(empty.bytes, 0);
        assert_eq!(
            empty.sha256,
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn inline_text_is_kept_on_request_and_newlines_normalised() {
        let html = "<script>\r\nlet s = \"é\";\r\n</script>";
        let scripts = Extractor::new()
            .keep_inline_text(true)
            .extract(&url("https://a.test/"), html);
        let inline = scripts[0].inline.as_ref().unwrap();
        // The parser turns CRLF into LF before a browser hashes the text.
        assert_eq!(inline.text.as_deref(), Some("\nlet s = \"é\";\n"));
        assert_eq!(inline.bytes, "\nlet s = \"é\";\n".len());
        assert_eq!(
            inline.sha256,
            sha256_source("\nlet s = \"é\";\n".as_bytes())
        );
    }

    #[test]
    fn base_href_and_browser_style_resolution() {
        let html = include_str!("../fixtures/html/base-href.html");
        let scripts =
            Extractor::new().extract(&url("https://site.example/pages/one.html?x=1"), html);
        assert_eq!(
            srcs(&scripts),
            [
                "https://site.example/assets/v2/a.js",
                "https://site.example/assets/b.js",
                "https://site.example/root.js",
                "https://cdn.example.net/p.js",
                "https://site.example/assets/v2/?q=1",
                "https://site.example/assets/v2/padded.js",
                "http://exa mple.com/bad.js",
                "",
                "https://abs.example.com/c.js#frag",
            ]
        );
        let resolved: Vec<bool> = scripts
            .iter()
            .map(|s| s.src.as_ref().unwrap().is_resolved())
            .collect();
        assert_eq!(
            resolved,
            [true, true, true, true, true, true, false, false, true]
        );
    }

    #[test]
    fn without_base_the_document_url_is_the_base() {
        let html = "<script src='x.js'></script><script src='?v=2'></script>";
        let scripts = Extractor::new().extract(&url("http://a.test:8080/dir/page?old=1#f"), html);
        assert_eq!(
            srcs(&scripts),
            [
                "http://a.test:8080/dir/x.js",
                "http://a.test:8080/dir/page?v=2"
            ]
        );
    }

    #[test]
    fn base_that_is_invalid_or_javascript_falls_back_to_document_url() {
        for base in ["http://[oops", "javascript:void(0)", "data:text/html,x"] {
            let html = format!("<base href='{base}'><script src='x.js'></script>");
            let scripts = Extractor::new().extract(&url("https://a.test/d/p"), &html);
            assert_eq!(srcs(&scripts), ["https://a.test/d/x.js"], "base {base}");
        }
        // A base inside a template is not in the document.
        let html =
            "<template><base href='https://evil.test/'></template><script src='x.js'></script>";
        let scripts = Extractor::new().extract(&url("https://a.test/d/p"), html);
        assert_eq!(srcs(&scripts), ["https://a.test/d/x.js"]);
        // A base without href does not count; the next one with href does.
        let html = "<base target=_top><base href='/b/'><script src='x.js'></script>";
        let scripts = Extractor::new().extract(&url("https://a.test/d/p"), html);
        assert_eq!(srcs(&scripts), ["https://a.test/b/x.js"]);
    }

    #[test]
    fn template_and_noscript_contents_are_not_scripts() {
        let html = "<template><script>a()</script><template><script>b()</script></template></template>\
                    <noscript><script>c()</script></noscript><script>d()</script>";
        let scripts = Extractor::new()
            .keep_inline_text(true)
            .extract(&url("https://a.test/"), html);
        assert_eq!(scripts.len(), 1);
        assert_eq!(
            scripts[0].inline.as_ref().unwrap().text.as_deref(),
            Some("d()")
        );
    }

    #[test]
    fn malformed_markup_still_yields_scripts() {
        let html = "<div><p><script src=a.js><table><script>x<y</script></td><script src='b.js'";
        let scripts = Extractor::new().extract(&url("https://a.test/"), html);
        // The first script's text runs to the first `</script>`, and the
        // tag cut off by the end of input is dropped, as in a browser.
        assert_eq!(srcs(&scripts), ["https://a.test/a.js"]);
        assert!(
            Extractor::new()
                .extract(&url("https://a.test/"), "")
                .is_empty()
        );
        assert!(
            Extractor::new()
                .extract(&url("https://a.test/"), "\0\u{fffd}<<>>")
                .is_empty()
        );
    }

    #[test]
    fn mathml_annotation_xml_can_hold_html_scripts_and_base() {
        let html = "<math><annotation-xml encoding=\"Text/HTML\"><base href='/ax/'>\
                    <script src=ax.js></script><script>\"<p><script>inner()</script>\"</script>\
                    </annotation-xml><annotation-xml encoding=' text/html'><script>mathml()</script>\
                    </annotation-xml></math>";
        let scripts = Extractor::new()
            .keep_inline_text(true)
            .extract(&url("https://a.test/"), html);
        assert_eq!(srcs(&scripts), ["https://a.test/ax/ax.js", "<inline>"]);
        let text = scripts[1].inline.as_ref().unwrap().text.as_deref();
        assert_eq!(text, Some("\"<p><script>inner()"));
    }

    #[test]
    fn a_cpu_budget_stops_hostile_nesting_and_spares_ordinary_pages() {
        let page = url("https://a.test/");
        let deep = format!("<body>{}<script>x()</script>", "<div>".repeat(50_000));
        // html5ever's tree builder is quadratic in the depth.
        let tree = Extractor::new().tree_only(true);
        let over = tree.extract_within(&page, &deep, Duration::from_millis(1));
        assert_eq!(over, Err(OverBudget(Duration::from_millis(1))));
        // The fast scan is linear: the page gets its row.
        let fast = Extractor::new().extract_within(&page, &deep, Duration::from_millis(1));
        assert_eq!(fast.map(|s| srcs(&s)), Ok(vec!["<inline>".to_owned()]));
        let html = include_str!("../fixtures/html/kitchen-sink.html");
        let within = Extractor::new().extract_within(&page, html, Duration::from_secs(30));
        assert_eq!(within, Ok(Extractor::new().extract(&page, html)));
    }

    #[test]
    fn links_take_each_element_own_attribute() {
        let html = "<a src=s.html>x</a><iframe href=h.html src=f.html rel=nofollow></iframe>\
                    <area href=ar.html rel=nofollow><a href=a.html></a><a href=a.html></a>";
        for extractor in [Extractor::new(), Extractor::new().tree_only(true)] {
            let links = extractor
                .links(true)
                .extract_page(&url("https://a.test/"), html)
                .links;
            let found: Vec<(&str, bool)> =
                links.iter().map(|l| (l.url.as_str(), l.nofollow)).collect();
            assert_eq!(
                found,
                [
                    ("https://a.test/f.html", false),
                    ("https://a.test/ar.html", true),
                    ("https://a.test/a.html", false)
                ]
            );
        }
    }

    #[test]
    fn links_in_the_same_parse_resolved_against_the_base() {
        let html = r#"<base href="/docs/">
            <a href="a.html">a</a> <a href="https://other.test/x#frag" rel="external NoFollow">x</a>
            <area href="../area"> <iframe src="frame.html"></iframe> <frame src="ignored">
            <a href="mailto:me@example.com">m</a> <a href="">empty</a> <a>none</a>
            <template><a href="hidden.html">t</a></template>
            <svg><a href="svg-link">s</a></svg>
            <script src="app.js"></script>"#;
        let page = Extractor::new()
            .links(true)
            .extract_page(&url("https://site.test/index.html"), html);
        let links: Vec<(&str, bool)> = page
            .links
            .iter()
            .map(|l| (l.url.as_str(), l.nofollow))
            .collect();
        assert_eq!(
            links,
            [
                ("https://site.test/docs/a.html", false),
                ("https://other.test/x#frag", true),
                ("https://site.test/area", false),
                ("https://site.test/docs/frame.html", false),
            ]
        );
        assert_eq!(page.scripts.len(), 1);
        // A <frame> counts only in a frameset, where the parser keeps it
        // (in a body it is dropped, as above).
        let frames = Extractor::new().links(true).extract_page(
            &url("https://site.test/"),
            r#"<frameset><frame src="//cdn.test/f"></frameset>"#,
        );
        assert_eq!(frames.links[0].url.as_str(), "https://cdn.test/f");
        // Without asking, no links are kept, and the scripts are the same.
        let plain = Extractor::new().extract_page(&url("https://site.test/index.html"), html);
        assert!(plain.links.is_empty());
        assert_eq!(plain.scripts, page.scripts);
    }

    fn body_page(
        body: &[u8],
        header: Option<&str>,
        page: &str,
    ) -> (&'static str, Vec<String>, Vec<String>) {
        let decoded = Extractor::new().keep_inline_text(true).extract_body_within(
            &url(page),
            body.to_vec(),
            header,
            Duration::from_secs(30),
        );
        let scripts = decoded.extracted.unwrap().scripts;
        let texts = scripts
            .iter()
            .filter_map(|s| s.inline.as_ref()?.text.clone())
            .collect();
        (decoded.encoding.name(), texts, srcs(&scripts))
    }

    /// More than the 1024 bytes the prescan reads.
    fn padding() -> String {
        format!("<!doctype html><head><!-- {} -->", "x".repeat(1100))
    }

    #[test]
    fn a_meta_past_the_prescan_changes_a_guessed_encoding() {
        let late = |meta: &str| {
            let html = format!("{}{meta}<script>s = \"é\"</script>", padding());
            body_page(html.as_bytes(), None, "https://a.test/")
        };
        let utf8 = (
            "UTF-8",
            vec!["s = \"é\"".to_owned()],
            vec!["<inline>".to_owned()],
        );
        assert_eq!(late("<meta charset=utf-8>"), utf8);
        assert_eq!(
            late("<meta http-equiv=Content-Type content='text/html; charset=UTF-8'>"),
            utf8
        );
        // After a meta that names nothing it counts too; a UTF-16 label
        // means UTF-8.
        assert_eq!(
            late("<meta charset=' klingon '><meta charset=' utf-8 '>"),
            utf8
        );
        assert_eq!(late("<meta charset=utf-16le>"), utf8);
        // The first declaration settles it, even when it names the guess.
        let guessed = (
            "windows-1252",
            vec!["s = \"Ã©\"".to_owned()],
            vec!["<inline>".to_owned()],
        );
        assert_eq!(late("<meta charset=latin1><meta charset=utf-8>"), guessed);
        // A UTF-8 guess asked for with --detect-utf8 is tentative too.
        let html = format!(
            "{}<meta charset=koi8-r><script>s = \"é\"</script>",
            padding()
        );
        let decoded = Extractor::new().detect_utf8(true).extract_body_within(
            &url("https://a.test/"),
            html.into_bytes(),
            None,
            Duration::from_secs(30),
        );
        assert_eq!(decoded.encoding.name(), "KOI8-R");
        // In the body it is too late, as in Chromium (which looks on only
        // while the elements are those of a head).
        assert_eq!(late("<body><p><meta charset=utf-8>"), guessed);
        assert_eq!(late("<div></div><meta charset=utf-8>"), guessed);
        assert_eq!(
            late("<title>t</title><style></style><meta charset=utf-8>"),
            utf8
        );
        // Markup that is not a meta element declares nothing.
        assert_eq!(late("<noscript><meta charset=utf-8></noscript>"), guessed);
        assert_eq!(late("<meta name=charset content=utf-8>"), guessed);
    }

    #[test]
    fn a_late_meta_does_not_overrule_a_declared_encoding() {
        let html = format!(
            "{}<meta charset=utf-8><script>s = \"é\"</script>",
            padding()
        );
        let latin1 = (
            "windows-1252",
            vec!["s = \"Ã©\"".to_owned()],
            vec!["<inline>".to_owned()],
        );
        let header = body_page(html.as_bytes(), Some("iso-8859-1"), "https://a.test/");
        assert_eq!(header, latin1);
        let early = html.replacen("<!doctype html>", "<!doctype html><meta charset=latin1>", 1);
        assert_eq!(body_page(early.as_bytes(), None, "https://a.test/"), latin1);
        let bom = [
            &b"\xef\xbb\xbf"[..],
            html.replace("utf-8", "latin1").as_bytes(),
        ]
        .concat();
        assert_eq!(body_page(&bom, None, "https://a.test/").0, "UTF-8");
    }

    #[test]
    fn urls_get_their_query_in_the_document_encoding() {
        let html = "<base href='/d/?b=&eacute;'><script src='s.js?q=&eacute;&amp;r=&#x2603;#&eacute;'></script>\
                    <a href='/p?q=&eacute;'>p</a><iframe src='f?&eacute;'></iframe>";
        let page = |body: Vec<u8>, header: &str| {
            let decoded = Extractor::new().links(true).extract_body_within(
                &url("https://a.test/x"),
                body,
                Some(header),
                Duration::from_secs(30),
            );
            let page = decoded.extracted.unwrap();
            let mut urls = srcs(&page.scripts);
            urls.extend(page.links.iter().map(|l| l.url.to_string()));
            urls
        };
        assert_eq!(
            page(html.into(), "windows-1252"),
            [
                "https://a.test/d/s.js?q=%E9&r=%26%239731%3B#%C3%A9",
                "https://a.test/p?q=%E9",
                "https://a.test/d/f?%E9",
            ]
        );
        let utf8 = [
            "https://a.test/d/s.js?q=%C3%A9&r=%E2%98%83#%C3%A9",
            "https://a.test/p?q=%C3%A9",
            "https://a.test/d/f?%C3%A9",
        ];
        assert_eq!(page(html.into(), "utf-8"), utf8);
        // A UTF-16 document's URLs are written in UTF-8.
        let utf16: Vec<u8> = html.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(page(utf16, "utf-16le"), utf8);
    }

    #[test]
    fn csp_metas_enforced_where_a_browser_enforces_them() {
        let html = r#"<!doctype html><html><head>
            <script>a()</script>
            <meta http-equiv="Content-Security-Policy" content="script-src 'self'">
            <meta http-equiv="content-security-policy-report-only" content="script-src 'none'">
            <meta http-equiv="CONTENT-SECURITY-POLICY" content="">
            <meta http-equiv="content-security-policy">
            <meta name="content-security-policy" content="script-src 'none'">
            <meta charset="utf-8">
            <meta http-equiv="content-security-policy" content="img-src *">
            <script src="/b.js"></script>
            </head><body>
            <meta http-equiv="content-security-policy" content="script-src 'none'">
            <script>c()</script>
            <meta http-equiv="content-security-policy" content="font-src 'none'">
            </body></html>"#;
        let page = Extractor::new().extract_page(&url("https://a.test/"), html);
        let metas: Vec<(&str, usize)> = page
            .csp_metas
            .iter()
            .map(|m| (m.content.as_str(), m.first_script))
            .collect();
        assert_eq!(metas, [("script-src 'self'", 1), ("img-src *", 1)]);
        // A meta after the last script applies to none, but is a policy.
        let html = "<head><script>a()</script><meta http-equiv=content-security-policy content=x>";
        let page = Extractor::new().extract_page(&url("https://a.test/"), html);
        assert_eq!(page.csp_metas[0].first_script, 1);
        assert!(page.scripts[0].csp.is_none());
    }

    #[test]
    fn csp_inputs_are_kept_only_where_a_policy_may_apply() {
        let html = "<head><script nonce=n1>a()</script>\
                    <meta http-equiv=content-security-policy content=\"script-src 'none'\">\
                    <script nonce=n2 src=/b.js></script><script nonce>c()</script>\
                    <script nonce=n4 data-x='<STYLE>'>d()</script>";
        let page = url("https://a.test/");
        let inputs = |extractor: Extractor| -> Vec<Option<CspInputs>> {
            extractor
                .extract(&page, html)
                .into_iter()
                .map(|s| s.csp)
                .collect()
        };
        let input = |nonce: Option<&str>, nonceable, text: Option<&str>| {
            Some(CspInputs {
                nonce_value: nonce.map(str::to_owned),
                nonceable,
                text: text.map(str::to_owned),
            })
        };
        let after_meta = [
            input(Some("n2"), true, None),
            input(None, false, Some("c()")),
            input(Some("n4"), false, Some("d()")),
        ];
        let got = inputs(Extractor::new());
        assert_eq!(got[0], None);
        assert_eq!(got[1..], after_meta);
        // A header policy applies to every script.
        let got = inputs(Extractor::new().csp_header(true));
        assert_eq!(got[0], input(Some("n1"), true, Some("a()")));
        assert_eq!(got[1..], after_meta);
        // With the inline text kept, the record's copy is the one.
        let got = inputs(Extractor::new().csp_header(true).keep_inline_text(true));
        assert_eq!(got[0], input(Some("n1"), true, None));
        // No policy, nothing kept.
        let plain = Extractor::new().extract(&page, "<script nonce=n>a()</script>");
        assert_eq!(plain[0].csp, None);
        assert!(plain[0].nonce);
    }

    #[test]
    fn svg_href_beats_xlink_href() {
        let html = "<svg><script xlink:href='old.js' href='new.js'></script></svg>";
        let scripts = Extractor::new().extract(&url("https://a.test/"), html);
        assert_eq!(srcs(&scripts), ["https://a.test/new.js"]);
        // MathML has no script element.
        let html = "<math><script>x</script></math>";
        assert!(
            Extractor::new()
                .extract(&url("https://a.test/"), html)
                .is_empty()
        );
    }
}
