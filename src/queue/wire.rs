//! A page's result as it travels from a worker to the collector: the
//! [`PageResult`] the local writer would have been given, as JSON.
//!
//! JSON because it is already in the tree, readable with `redis-cli` when
//! a job needs looking into, and a field added later is ignored by an
//! older reader rather than breaking it. The version field lets a
//! collector refuse results from a worker that writes something else.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::content::scripts::Content;
use crate::content::sri::Digests;
use crate::error::{ErrorKind, PageError};
use crate::extract::{Inline, Position, Script, Src};
use crate::output::PageResult;

/// The format's version; a collector refuses results of another.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Page {
    v: u32,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<(String, String)>,
    #[serde(default)]
    scripts: Vec<Element>,
    bytes: u64,
    micros: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    charset: Option<String>,
    attempts: u32,
    depth: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csp: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Element {
    index: usize,
    /// The resolved `src`, or the raw value in `raw_src`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_src: Option<String>,
    svg: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    type_attr: Option<String>,
    is_async: bool,
    defer: bool,
    nomodule: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    integrity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crossorigin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline: Option<(usize, String, Option<String>)>,
    head: bool,
    nonce: bool,
    third_party: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csp_allowed: Option<bool>,
    /// What `--fetch-scripts` found behind `src`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<WireContent>,
}

#[derive(Serialize, Deserialize)]
struct WireContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    /// The digests ([`Digests::to_bytes`]) in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digests: Option<String>,
}

impl WireContent {
    fn of(c: &Content) -> WireContent {
        WireContent {
            status: c.status,
            error: c.error.map(|k| k.as_str().to_owned()),
            bytes: c.bytes,
            digests: c.digests.as_ref().map(|d| STANDARD.encode(d.to_bytes())),
        }
    }

    fn content(self) -> Result<Content, String> {
        let error = match self.error {
            Some(kind) => Some(
                ErrorKind::from_name(&kind)
                    .ok_or_else(|| format!("a script with an unknown error kind {kind:?}"))?,
            ),
            None => None,
        };
        let digests = match self.digests {
            Some(text) => Some(
                STANDARD
                    .decode(&text)
                    .ok()
                    .and_then(|bytes| Digests::from_bytes(&bytes))
                    .ok_or("a script's digests are not what a worker writes")?,
            ),
            None => None,
        };
        Ok(Content {
            status: self.status,
            error,
            bytes: self.bytes,
            digests,
            // Workers do not render.
            integrity_seen: None,
        })
    }
}

/// Encodes a page's result for the results stream.
pub fn encode(page: &PageResult) -> Vec<u8> {
    let (scripts, error) = match &page.outcome {
        Ok(scripts) => (scripts.iter().map(element).collect(), None),
        Err(e) => (
            Vec::new(),
            Some((e.kind.as_str().to_owned(), e.detail.clone())),
        ),
    };
    let wire = Page {
        v: VERSION,
        url: page.page_url.clone(),
        final_url: page.final_url.clone(),
        status: page.status,
        error,
        scripts,
        bytes: page.bytes,
        micros: u64::try_from(page.elapsed.as_micros()).unwrap_or(u64::MAX),
        charset: page.charset.map(str::to_owned),
        attempts: page.attempts,
        depth: page.depth,
        referrer: page.referrer.as_deref().map(str::to_owned),
        csp: page.csp.clone(),
    };
    // Serialising plain structs of strings and numbers to a Vec cannot
    // fail: there is no I/O, no map with non-string keys, no float.
    serde_json::to_vec(&wire).expect("a page result serialises")
}

fn element(s: &Script) -> Element {
    let (src, raw_src) = match &s.src {
        Some(Src::Resolved(url)) => (Some(url.as_str().to_owned()), None),
        Some(Src::Unresolved(raw)) => (None, Some(raw.clone())),
        None => (None, None),
    };
    Element {
        index: s.index,
        src,
        raw_src,
        svg: s.svg,
        type_attr: s.type_attr.clone(),
        is_async: s.is_async,
        defer: s.defer,
        nomodule: s.nomodule,
        integrity: s.integrity.clone(),
        crossorigin: s.crossorigin.clone(),
        inline: s
            .inline
            .as_ref()
            .map(|i| (i.bytes, i.sha256.clone(), i.text.clone())),
        head: s.position == Position::Head,
        nonce: s.nonce,
        third_party: s.third_party,
        csp_allowed: s.csp_allowed,
        content: s.content.as_deref().map(WireContent::of),
    }
}

/// Decodes a result written by [`encode`]; `seq` is the work entry's.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<PageResult, String> {
    let wire: Page =
        serde_json::from_slice(bytes).map_err(|e| format!("not a page result: {e}"))?;
    if wire.v != VERSION {
        return Err(format!(
            "a page result of format {} (this version reads {VERSION}): \
             workers and collector must run the same scriptscrape",
            wire.v
        ));
    }
    let outcome = match wire.error {
        Some((kind, detail)) => {
            let kind = ErrorKind::from_name(&kind)
                .ok_or_else(|| format!("a page result with an unknown error kind {kind:?}"))?;
            Err(PageError::new(kind, detail))
        }
        None => Ok(wire
            .scripts
            .into_iter()
            .map(script)
            .collect::<Result<_, _>>()?),
    };
    Ok(PageResult {
        seq,
        page_url: wire.url,
        final_url: wire.final_url,
        status: wire.status,
        outcome,
        bytes: wire.bytes,
        elapsed: Duration::from_micros(wire.micros),
        charset: wire
            .charset
            .as_deref()
            .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
            .map(|e| e.name()),
        attempts: wire.attempts,
        depth: wire.depth,
        referrer: wire.referrer.map(Arc::from),
        csp: wire.csp,
        incomplete: None,
    })
}

fn script(e: Element) -> Result<Script, String> {
    let src = match (e.src, e.raw_src) {
        (Some(url), _) => Some(Src::Resolved(
            Url::parse(&url).map_err(|err| format!("a script src {url:?}: {err}"))?,
        )),
        (None, Some(raw)) => Some(Src::Unresolved(raw)),
        (None, None) => None,
    };
    Ok(Script {
        index: e.index,
        src,
        svg: e.svg,
        type_attr: e.type_attr,
        is_async: e.is_async,
        defer: e.defer,
        nomodule: e.nomodule,
        integrity: e.integrity,
        crossorigin: e.crossorigin,
        inline: e.inline.map(|(bytes, sha256, text)| Inline {
            bytes,
            sha256,
            text,
        }),
        position: if e.head {
            Position::Head
        } else {
            Position::Body
        },
        nonce: e.nonce,
        third_party: e.third_party,
        csp_allowed: e.csp_allowed,
        content: e
            .content
            .map(WireContent::content)
            .transpose()?
            .map(Arc::new),
        // Checked against the page's policy by the worker; never sent.
        csp: None,
        // Workers do not render (`work` has no --render).
        render: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Extractor;

    fn page(outcome: Result<Vec<Script>, PageError>) -> PageResult {
        PageResult {
            seq: 7,
            page_url: "https://example.com/".into(),
            final_url: Some("https://www.example.com/".into()),
            status: Some(200),
            outcome,
            csp: Some("script-src 'self' 'nonce-x', default-src 'none'".into()),
            bytes: 1234,
            elapsed: Duration::from_micros(56_789),
            charset: Some("windows-1252"),
            attempts: 2,
            depth: 1,
            referrer: Some(Arc::from("https://example.com/seed")),
            incomplete: None,
        }
    }

    #[test]
    fn a_page_comes_back_as_it_went() {
        let url = Url::parse("https://example.com/").unwrap();
        let html = "<head><script src=/a.js async integrity='sha384-x' crossorigin></script>\
            <script src='http://['></script></head><body><script nonce=n>let a = 1;</script>\
            <svg><script href=//cdn.test/s.js></script></svg>";
        let mut scripts = Extractor::new().keep_inline_text(true).extract(&url, html);
        assert_eq!(scripts.len(), 4);
        scripts[1].csp_allowed = Some(false);
        scripts[2].csp_allowed = Some(true);
        // What --fetch-scripts found: read, and not.
        scripts[0].content = Some(Arc::new(Content {
            status: Some(200),
            error: None,
            bytes: Some(3),
            digests: Some(Digests::of(b"a()")),
            integrity_seen: None,
        }));
        scripts[3].content = Some(Arc::new(Content {
            status: Some(404),
            error: Some(ErrorKind::HttpStatus),
            bytes: Some(0),
            digests: None,
            integrity_seen: None,
        }));
        let sent = page(Ok(scripts));
        let back = decode(7, &encode(&sent)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{sent:?}"));
    }

    #[test]
    fn a_failed_page_keeps_its_kind_and_detail() {
        let sent = page(Err(PageError::new(ErrorKind::Timeout, "no answer in 30 s")));
        let back = decode(7, &encode(&sent)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{sent:?}"));
    }

    #[test]
    fn another_version_or_garbage_is_refused() {
        let text = String::from_utf8(encode(&page(Ok(vec![])))).unwrap();
        let other = text.replace("\"v\":1", "\"v\":2");
        assert!(
            decode(1, other.as_bytes())
                .unwrap_err()
                .contains("same scriptscrape")
        );
        assert!(decode(1, b"{").is_err());
    }
}
