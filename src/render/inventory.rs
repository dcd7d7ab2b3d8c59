//! A rendered page's rows: the static extractor's script elements, each
//! with the code it ran, and a row for every other script that ran, with
//! where it came from and what caused it. A pure function of what was
//! recorded, so that it can be tested without a browser.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use url::Url;

use super::page::{Initiator, Ran, Recording, Requested, Target};
use crate::content::scripts::Content;
use crate::content::sri::Algorithm;
use crate::error::ErrorKind;
use crate::extract::{Inline, Script, Src};

/// Where a rendered row's script came from (the `origin` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A `<script>` element of the fetched HTML of the page.
    Static,
    /// Added while the page ran: inserted by a script (`createElement`,
    /// `document.write`), or code a script made (`eval`, `new Function`).
    Inserted,
    /// A module loaded by another's `import`.
    Import,
    /// Run in one of the page's frames.
    Frame,
    /// Run by a worker the page started.
    Worker,
    /// Fetched by a `<link rel=preload as=script>` or `modulepreload`
    /// only, and refused by the private-network rule: asked for by the
    /// page, run by nothing (yet).
    Preload,
}

impl Origin {
    /// The name written to the `origin` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Static => "static",
            Origin::Inserted => "inserted",
            Origin::Import => "import",
            Origin::Frame => "frame",
            Origin::Worker => "worker",
            Origin::Preload => "preload",
        }
    }
}

/// What rendering says about one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Where it came from.
    pub origin: Origin,
    /// `parser`, the URL of the script that caused it, or `inline:` and
    /// the inline one's hash; `None` when the protocol did not say.
    pub initiator: Option<String>,
    /// The frame's document, for a script that ran in a frame.
    pub frame_url: Option<String>,
}

/// How a recorded script's code reached the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Fetched from its URL.
    External,
    /// Text inside a document (also what `document.write` wrote).
    Embedded,
    /// Made by running code: an inline script inserted by a script, eval.
    Made,
}

/// The rows of a rendered page whose static extraction gave `statics`.
pub fn rows(page: &Url, mut statics: Vec<Script>, rec: &Recording) -> Vec<Script> {
    let doc = without_fragment(page.as_str());
    let by_id: HashMap<(&str, &str), &Ran> = rec
        .scripts
        .iter()
        .map(|r| ((r.session.as_str(), r.id.as_str()), r))
        .collect();
    let earlier = redirect_origins(rec);
    let look = Look {
        rec,
        by_id: &by_id,
        doc: &doc,
        earlier: &earlier,
    };

    // The static elements a script may be, by key, in document order:
    // only those a browser runs (not a `nomodule` one, nor a data block),
    // so that a script is not taken for one of those with the same src.
    let mut elements: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (at, script) in statics.iter().enumerate() {
        if let Some(key) = static_key(script).filter(|_| runs(script)) {
            elements.entry(key).or_default().push_back(at);
        }
    }
    for script in &mut statics {
        script.render = Some(Rendered {
            origin: Origin::Static,
            initiator: Some("parser".into()),
            frame_url: None,
        });
        // A script that never ran still has whatever its request got.
        if let Some(Src::Resolved(url)) = &script.src {
            script.content = look.requested(url.as_str()).map(|mut content| {
                // Read whole, yet not run, though nothing else kept it
                // from running: the browser refused the body under its
                // integrity (a match below, if it ran, replaces this).
                let read = content.status.is_some_and(|s| (200..300).contains(&s));
                if read && script.integrity.is_some() && runs(script) {
                    content.integrity_seen = Some(false);
                }
                Arc::new(content)
            });
        }
    }

    let mut extra = Vec::new();
    for ran in rec.scripts.iter().filter(|r| !look.browser_own(r)) {
        let kind = look.kind(ran);
        let target = rec
            .sessions
            .get(&ran.session)
            .copied()
            .unwrap_or(Target::Page);
        let in_page =
            target == Target::Page && ran.frame.as_deref().is_none_or(|f| f == rec.main_frame);
        if in_page
            && let Some(key) = ran_key(ran, kind, &look)
            && let Some(at) = elements.get_mut(&key).and_then(VecDeque::pop_front)
        {
            statics[at].content = Some(Arc::new(look.content(ran, kind)));
            continue;
        }
        extra.push(look.row(ran, kind, target, in_page, page));
    }
    // Scripts the private-network rule refused never ran: a row each, by
    // the URL first asked for (a redirect may have led to the refused
    // one), unless a static element names them.
    let mut refused_rows = HashSet::new();
    for (url, _) in &rec.refused {
        let first = look.first_url(url);
        let named = statics.iter().any(|s| match &s.src {
            Some(Src::Resolved(src)) => without_fragment(src.as_str()) == first,
            _ => false,
        });
        let is_script = rec.requests.get(url).is_some_and(|r| r.script);
        if is_script && !named && refused_rows.insert(first.clone()) {
            extra.push(look.refused_row(&first, page));
        }
    }
    // An element that would have run but had not when the page was cut
    // short says why it has no content.
    if let Some(kind) = rec.end.kind() {
        for script in statics
            .iter_mut()
            .filter(|s| s.content.is_none() && runs(s))
        {
            script.content = Some(Arc::new(Content {
                status: None,
                error: Some(kind),
                bytes: None,
                digests: None,
                integrity_seen: None,
            }));
        }
    }
    let first = statics.len();
    for (n, script) in extra.iter_mut().enumerate() {
        script.index = first + n;
    }
    statics.extend(extra);
    statics
}

/// Whether a browser runs the element `script` (as far as its markup
/// says: its page's policy may still block it): JavaScript or a module by
/// its `type`, and not `nomodule`, which browsers that know modules skip.
fn runs(script: &Script) -> bool {
    let kind = script
        .type_attr
        .as_deref()
        .map(|t| t.trim().to_ascii_lowercase());
    let javascript = match kind.as_deref() {
        None | Some("") | Some("module") => true,
        // The whole string: with parameters it is no JavaScript type.
        Some(t) => {
            matches!(
                t,
                "text/javascript"
                    | "application/javascript"
                    | "application/ecmascript"
                    | "application/x-ecmascript"
                    | "application/x-javascript"
                    | "text/ecmascript"
                    | "text/javascript1.0"
                    | "text/javascript1.1"
                    | "text/javascript1.2"
                    | "text/javascript1.3"
                    | "text/javascript1.4"
                    | "text/javascript1.5"
                    | "text/jscript"
                    | "text/livescript"
                    | "text/x-ecmascript"
                    | "text/x-javascript"
            )
        }
    };
    javascript && !script.nomodule && script.csp_allowed != Some(false)
}

/// A URL without its fragment, which requests never carry.
fn without_fragment(url: &str) -> String {
    url.split_once('#').map_or(url, |(u, _)| u).to_owned()
}

/// Each redirect's target, to the URL that was asked for.
fn redirect_origins(rec: &Recording) -> HashMap<String, String> {
    rec.redirects
        .iter()
        .map(|(from, to)| (to.clone(), from.clone()))
        .collect()
}

fn static_key(script: &Script) -> Option<String> {
    match (&script.src, &script.inline) {
        (Some(Src::Resolved(url)), _) => Some(format!("src {}", without_fragment(url.as_str()))),
        (None, Some(inline)) => Some(format!("inline {}", inline.sha256)),
        _ => None,
    }
}

fn ran_key(ran: &Ran, kind: Kind, look: &Look<'_>) -> Option<String> {
    match kind {
        // The element named the URL first asked for.
        Kind::External => Some(format!("src {}", look.first_url(&ran.url))),
        Kind::Embedded => {
            let code = ran.code.as_ref()?;
            Some(format!("inline {}", code.digests.sri(Algorithm::Sha256)))
        }
        Kind::Made => None,
    }
}

struct Look<'a> {
    rec: &'a Recording,
    by_id: &'a HashMap<(&'a str, &'a str), &'a Ran>,
    doc: &'a str,
    earlier: &'a HashMap<String, String>,
}

impl Look<'_> {
    /// Whether `ran` is the browser's own code, not the page's: the error
    /// page a frame that failed to load shows, say.
    fn browser_own(&self, ran: &Ran) -> bool {
        let internal = |url: &str| {
            ["chrome-error:", "chrome:", "chrome-untrusted:", "devtools:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        };
        internal(&ran.url)
            || ran
                .frame
                .as_ref()
                .and_then(|f| self.rec.frames.get(f))
                .is_some_and(|url| internal(url))
    }

    fn kind(&self, ran: &Ran) -> Kind {
        // A `//# sourceURL` names code made at run time (which starts at
        // 0:0), or an inline script (which starts inside its document); a
        // blob: URL is made at run time too, and differs every run.
        let named_made = ran.has_source_url && ran.start == (0, 0);
        if ran.url.is_empty() || named_made || ran.url.starts_with("blob:") {
            Kind::Made
        } else if ran.start == (0, 0) && !self.is_document(ran) {
            Kind::External
        } else {
            Kind::Embedded
        }
    }

    /// Whether `ran`'s URL is the document's it ran in (so it is text in
    /// that document).
    fn is_document(&self, ran: &Ran) -> bool {
        let url = without_fragment(&ran.url);
        url == self.doc
            || ran
                .frame
                .as_ref()
                .and_then(|f| self.rec.frames.get(f))
                .is_some_and(|frame| without_fragment(frame) == url)
    }

    /// The URL first asked for, before redirects, of a script fetched
    /// from `url`.
    fn first_url(&self, url: &str) -> String {
        let mut url = without_fragment(url);
        // Bounded: a redirect chain is short, and a loop must not spin.
        for _ in 0..32 {
            match self.earlier.get(&url) {
                Some(from) if *from != url => url = from.clone(),
                _ => break,
            }
        }
        url
    }

    /// The status of the last response for `url`, redirects followed (a
    /// redirected script may carry the URL first asked for).
    fn final_status(&self, url: &str) -> Option<u16> {
        let mut url = without_fragment(url);
        // Bounded: a redirect chain is short, and a loop must not spin.
        for _ in 0..32 {
            if let Some(status) = self.rec.requests.get(&url).and_then(|r| r.status) {
                return Some(status);
            }
            url = self
                .rec
                .redirects
                .iter()
                .find(|(from, _)| *from == url)?
                .1
                .clone();
        }
        None
    }

    /// What the request for `url` got, for a script that did not run: a
    /// redirect to a URL the rule refused is refused too.
    fn requested(&self, url: &str) -> Option<Content> {
        let mut hop = without_fragment(url);
        let req = self.rec.requests.get(&hop)?;
        let mut refused = req.refused;
        // Bounded: a redirect chain is short, and a loop must not spin.
        for _ in 0..32 {
            match self.rec.redirects.iter().find(|(from, _)| *from == hop) {
                Some((_, to)) if !refused => {
                    hop.clone_from(to);
                    refused = self.rec.requests.get(&hop).is_some_and(|r| r.refused);
                }
                _ => break,
            }
        }
        if refused {
            return Some(Content {
                status: None,
                error: Some(ErrorKind::PrivateAddress),
                bytes: None,
                digests: None,
                integrity_seen: None,
            });
        }
        self.final_status(url).map(|status| Content {
            status: Some(status),
            error: None,
            bytes: None,
            digests: None,
            integrity_seen: None,
        })
    }

    /// The code `ran` ran, and its response's status.
    fn content(&self, ran: &Ran, kind: Kind) -> Content {
        let status = match kind {
            Kind::External => self.final_status(&ran.url),
            _ => None,
        };
        Content {
            status,
            // A page that ended early may not have given every source: it
            // says why.
            error: ran.code.is_none().then(|| self.rec.end.kind()).flatten(),
            bytes: ran.code.as_ref().map(|c| c.bytes),
            digests: ran.code.as_ref().map(|c| c.digests.clone()),
            // It ran: the browser checked an `integrity` first (its own
            // check is on the bytes; the digests above are of the text).
            integrity_seen: Some(true),
        }
    }

    /// How the `initiator` column names script `ran`.
    fn name(&self, ran: &Ran) -> Option<String> {
        match self.kind(ran) {
            Kind::External => Some(ran.url.clone()),
            _ => ran
                .code
                .as_ref()
                .map(|c| format!("inline:{}", c.digests.sri(Algorithm::Sha256))),
        }
    }

    fn script_named(&self, session: &str, id: &str) -> Option<String> {
        self.by_id.get(&(session, id)).and_then(|r| self.name(r))
    }

    /// How the `initiator` column names what made request `req`.
    fn requested_by(&self, req: &Requested) -> Option<String> {
        match req.initiator.as_ref()? {
            Initiator::Parser => Some("parser".into()),
            Initiator::Import(url) => {
                // Imported by a module inline in a document, which the
                // protocol names by the document's URL: the one inline
                // module there, when there is one.
                let mut inline_modules = self.rec.scripts.iter().filter(|r| {
                    r.session == req.session
                        && r.module
                        && self.kind(r) == Kind::Embedded
                        && without_fragment(&r.url) == without_fragment(url)
                });
                match (inline_modules.next(), inline_modules.next()) {
                    (Some(module), None) => self.name(module),
                    _ => Some(url.clone()),
                }
            }
            Initiator::Script { id, url, .. } => self
                .script_named(&req.session, id)
                .or_else(|| (!url.is_empty()).then(|| url.clone())),
            Initiator::Other => None,
        }
    }

    /// What caused `ran`.
    fn initiator(&self, ran: &Ran, kind: Kind) -> Option<String> {
        match kind {
            Kind::External => self.requested_by(self.rec.requests.get(&self.first_url(&ran.url))?),
            Kind::Made => {
                let top = ran.stack_top.as_deref()?;
                self.script_named(&ran.session, top)
            }
            Kind::Embedded => {
                // What document.write wrote is parsed at the writing
                // script's position: the embedded script around it wrote it.
                let around = self.rec.scripts.iter().find(|o| {
                    o.session == ran.session
                        && o.frame == ran.frame
                        && o.id != ran.id
                        && o.url == ran.url
                        && o.start <= ran.start
                        && ran.end <= o.end
                });
                match around {
                    Some(writer) => self.name(writer),
                    None => Some("parser".into()),
                }
            }
        }
    }

    /// The row of a script that is not one of the page's elements.
    fn row(&self, ran: &Ran, kind: Kind, target: Target, in_page: bool, page: &Url) -> Script {
        let origin = match target {
            Target::Worker => Origin::Worker,
            _ if !in_page => Origin::Frame,
            _ => {
                let req = self.rec.requests.get(&self.first_url(&ran.url));
                let imported = req.is_some_and(|r| match &r.initiator {
                    // Parser: preloaded by the markup (`modulepreload`);
                    // no element names it, so only an import ran it.
                    Some(Initiator::Import(_) | Initiator::Parser) => true,
                    // import() is a call, like appendChild: what the code
                    // says at the call site tells them apart.
                    Some(Initiator::Script { id, at, .. }) => self
                        .by_id
                        .get(&(r.session.as_str(), id.as_str()))
                        .is_some_and(|caller| calls_import(caller, *at)),
                    _ => false,
                });
                if kind == Kind::External && ran.module && imported {
                    Origin::Import
                } else {
                    Origin::Inserted
                }
            }
        };
        let frame_url = (origin == Origin::Frame)
            .then(|| {
                ran.frame
                    .as_ref()
                    .and_then(|f| self.rec.frames.get(f))
                    .cloned()
            })
            .flatten();
        let mut script = blank(page, (kind == Kind::External).then_some(ran.url.as_str()));
        if kind != Kind::External {
            script.inline = ran.code.as_ref().map(|c| Inline {
                bytes: c.bytes as usize,
                sha256: c.digests.sri(Algorithm::Sha256),
                text: c
                    .text
                    .as_deref()
                    .filter(|_| self.rec.keep_text)
                    .map(str::to_owned),
            });
        }
        script.content = Some(Arc::new(self.content(ran, kind)));
        script.render = Some(Rendered {
            origin,
            initiator: self.initiator(ran, kind),
            frame_url,
        });
        script
    }

    /// The row of a script request the private-network rule refused.
    fn refused_row(&self, url: &str, page: &Url) -> Script {
        let mut script = blank(page, Some(url));
        script.content = self.requested(url).map(Arc::new);
        let req = self.rec.requests.get(url);
        let initiator = req.and_then(|r| self.requested_by(r));
        let target = req
            .and_then(|r| self.rec.sessions.get(&r.session))
            .copied()
            .unwrap_or(Target::Page);
        // A frame of another site has a session of its own; one of the
        // page's site shares the page's, and only its frame id tells.
        let frame = req.and_then(|r| r.frame.as_deref());
        let in_frame = req.is_some_and(|r| r.session != self.rec.root)
            || frame.is_some_and(|f| f != self.rec.main_frame);
        // An element that takes up a preload (in flight, or failed) makes
        // no request of its own: it is seen only when it made one.
        let preload_only = req.is_some_and(|r| !r.not_preload);
        let imported = req.is_some_and(|r| matches!(r.initiator, Some(Initiator::Import(_))));
        let origin = match target {
            Target::Worker => Origin::Worker,
            _ if in_frame => Origin::Frame,
            _ if preload_only => Origin::Preload,
            _ if imported => Origin::Import,
            _ => Origin::Inserted,
        };
        script.render = Some(Rendered {
            origin,
            initiator,
            frame_url: frame
                .filter(|_| origin == Origin::Frame)
                .and_then(|f| self.rec.frames.get(f))
                .cloned(),
        });
        script
    }
}

/// Whether the code of `caller` at `at` (a position in its resource, as a
/// call frame gives it) is an `import(` call.
fn calls_import(caller: &Ran, at: (u64, u64)) -> bool {
    let Some(text) = caller.code.as_ref().and_then(|c| c.text.as_deref()) else {
        return false;
    };
    // Positions are in the resource: an inline script starts inside its
    // document.
    let Some(line) = at.0.checked_sub(caller.start.0) else {
        return false;
    };
    let column = if line == 0 {
        at.1.saturating_sub(caller.start.1)
    } else {
        at.1
    };
    let Some(line_text) = text.split('\n').nth(line as usize) else {
        return false;
    };
    // Columns count UTF-16 units.
    let mut units = 0u64;
    let rest = line_text.char_indices().find_map(|(i, c)| {
        if units >= column {
            return Some(&line_text[i..]);
        }
        units += c.len_utf16() as u64;
        None
    });
    rest.is_some_and(|rest| rest.starts_with("import"))
}

/// A row with nothing known but its source.
fn blank(page: &Url, src: Option<&str>) -> Script {
    let src = src.map(|s| match Url::parse(s) {
        Ok(url) => Src::Resolved(url),
        Err(_) => Src::Unresolved(s.to_owned()),
    });
    let third_party = match (&src, page.host()) {
        (Some(Src::Resolved(url)), Some(host)) => url
            .host()
            .is_none_or(|h| !crate::crawl::scope::same_site(&h, &host)),
        _ => false,
    };
    Script {
        src,
        third_party,
        ..Script::bare(0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::content::sri::Digests;
    use crate::extract::Extractor;
    use crate::render::page::{Code, End, Requested};

    const PAGE: &str = "http://shop.test/";

    fn statics(html: &str) -> Vec<Script> {
        let url = Url::parse(PAGE).unwrap();
        Extractor::new().extract(&url, html)
    }

    fn code(text: &str) -> Option<Code> {
        Some(Code {
            bytes: text.len() as u64,
            digests: Digests::of(text.as_bytes()),
            text: Some(Arc::from(text)),
        })
    }

    /// A script parsed in the page's main frame.
    fn ran(id: &str, url: &str, start: (u64, u64), text: &str) -> Ran {
        Ran {
            session: "root".into(),
            id: id.into(),
            url: url.into(),
            frame: Some("main".into()),
            module: false,
            has_source_url: false,
            start,
            end: (start.0 + 1, 0),
            stack_top: None,
            code: code(text),
        }
    }

    fn recording(scripts: Vec<Ran>, requests: Vec<(&str, Requested)>) -> Recording {
        Recording {
            scripts,
            requests: requests
                .into_iter()
                .map(|(u, r)| (u.to_owned(), r))
                .collect(),
            frames: HashMap::from([("main".into(), PAGE.into())]),
            main_frame: "main".into(),
            root: "root".into(),
            sessions: HashMap::from([("root".into(), Target::Page)]),
            refused: Vec::new(),
            redirects: Vec::new(),
            keep_text: false,
            end: End::Settled,
        }
    }

    fn req(initiator: Initiator, status: u16) -> Requested {
        Requested {
            initiator: Some(initiator),
            session: "root".into(),
            status: Some(status),
            script: true,
            not_preload: true,
            ..Requested::default()
        }
    }

    fn sha256(text: &str) -> String {
        Digests::of(text.as_bytes()).sri(Algorithm::Sha256)
    }

    fn summary(rows: &[Script]) -> Vec<(usize, String, &'static str, String)> {
        rows.iter()
            .map(|s| {
                let r = s.render.as_ref().unwrap();
                let what = match (&s.src, &s.inline) {
                    (Some(src), _) => src.as_str().to_owned(),
                    (None, Some(i)) => i.sha256.clone(),
                    _ => String::new(),
                };
                (
                    s.index,
                    what,
                    r.origin.as_str(),
                    r.initiator.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn code_a_page_closed_early_did_not_give_says_why() {
        let mut unread = ran("2", "", (0, 0), "");
        unread.code = None;
        unread.stack_top = Some("1".into());
        let mut rec = recording(vec![ran("1", PAGE, (0, 8), "eval(x)"), unread], vec![]);
        rec.end = End::TooManyScripts;
        let rows = rows(
            &Url::parse(PAGE).unwrap(),
            statics("<script>eval(x)</script>"),
            &rec,
        );
        assert_eq!(rows.len(), 2);
        let content = rows[1].content.as_deref().unwrap();
        assert_eq!(content.error, Some(ErrorKind::RenderLimit));
        assert_eq!((content.bytes, content.sha384()), (None, None));
        // The one read is whole.
        assert_eq!(rows[0].content.as_deref().unwrap().error, None);
    }

    #[test]
    fn elements_of_the_html_are_static_with_the_code_they_ran() {
        let inline = "window.a = 1;";
        let html = format!(
            "<script>{inline}</script><script src=/a.js></script>\
             <script type=application/json>{{}}</script><script src=/gone.js></script>"
        );
        let rec = recording(
            vec![
                ran("1", PAGE, (0, 8), inline),
                ran("2", "http://shop.test/a.js", (0, 0), "A"),
            ],
            vec![
                ("http://shop.test/a.js", req(Initiator::Parser, 200)),
                ("http://shop.test/gone.js", req(Initiator::Parser, 404)),
            ],
        );
        let rows = rows(&Url::parse(PAGE).unwrap(), statics(&html), &rec);
        assert_eq!(rows.len(), 4, "no row beyond the elements");
        assert!(
            rows.iter()
                .all(|s| s.render.as_ref().unwrap().origin == Origin::Static)
        );
        let content = |i: usize| rows[i].content.as_deref();
        assert_eq!(content(0).unwrap().bytes, Some(inline.len() as u64));
        assert_eq!(
            content(0).unwrap().sha384(),
            Some(Digests::of(inline.as_bytes()).sri(Algorithm::Sha384))
        );
        assert_eq!(content(1).unwrap().status, Some(200));
        assert!(content(2).is_none(), "the JSON block never ran");
        assert_eq!(content(3).unwrap().status, Some(404));
        assert!(content(3).unwrap().digests.is_none());
    }

    #[test]
    fn inserted_scripts_name_the_script_that_inserted_them() {
        let loader = "var s = document.createElement('script'); s.src = '/gtm.js';";
        let html = format!("<script>{loader}</script>");
        let mut made = ran("9", "", (0, 0), "window.x = 2;");
        made.stack_top = Some("4".into());
        let rec = recording(
            vec![
                ran("1", PAGE, (0, 8), loader),
                ran("2", "http://shop.test/gtm.js", (0, 0), "G"),
                ran("3", "http://vendor.test/v.js", (0, 0), "V"),
                ran("4", "http://cdn.vendor2.test/w.js", (0, 0), "W"),
                made,
            ],
            vec![
                (
                    "http://shop.test/gtm.js",
                    req(
                        Initiator::Script {
                            id: "1".into(),
                            url: PAGE.into(),
                            at: (0, 0),
                        },
                        200,
                    ),
                ),
                (
                    "http://vendor.test/v.js",
                    req(
                        Initiator::Script {
                            id: "2".into(),
                            url: "http://shop.test/gtm.js".into(),
                            at: (0, 0),
                        },
                        200,
                    ),
                ),
                (
                    "http://cdn.vendor2.test/w.js",
                    req(
                        Initiator::Script {
                            id: "3".into(),
                            url: "http://vendor.test/v.js".into(),
                            at: (0, 0),
                        },
                        200,
                    ),
                ),
            ],
        );
        let rows = rows(&Url::parse(PAGE).unwrap(), statics(&html), &rec);
        let inline = format!("inline:{}", sha256(loader));
        assert_eq!(
            summary(&rows),
            [
                (0, sha256(loader), "static", "parser".into()),
                (1, "http://shop.test/gtm.js".into(), "inserted", inline),
                (
                    2,
                    "http://vendor.test/v.js".into(),
                    "inserted",
                    "http://shop.test/gtm.js".into()
                ),
                (
                    3,
                    "http://cdn.vendor2.test/w.js".into(),
                    "inserted",
                    "http://vendor.test/v.js".into()
                ),
                (
                    4,
                    sha256("window.x = 2;"),
                    "inserted",
                    "http://cdn.vendor2.test/w.js".into()
                ),
            ]
        );
        assert!(!rows[1].third_party && rows[2].third_party);
        // What the protocol does not say about an element is not made up.
        assert!(rows[1].type_attr.is_none() && rows[1].integrity.is_none());
    }

    #[test]
    fn imports_frames_and_document_write() {
        let writer = "document.write('<script>w()<\\/script>')";
        let html = format!("<script type=module src=/m.js></script><script>{writer}</script>");
        let mut module = ran("1", "http://shop.test/m.js", (0, 0), "import './d.js'");
        module.module = true;
        let mut dep = ran("2", "http://shop.test/d.js", (0, 0), "D");
        dep.module = true;
        let mut outer = ran("3", PAGE, (0, 40), writer);
        outer.end = (0, 80);
        let mut written = ran("4", PAGE, (0, 60), "w()");
        written.end = (0, 63);
        let mut framed = ran("5", "http://ads.test/f.js", (0, 0), "F");
        framed.session = "child".into();
        framed.frame = Some("frame1".into());
        let mut error_page = ran("6", "", (0, 0), "chrome internals");
        error_page.frame = Some("frame2".into());
        let mut rec = recording(
            vec![module, dep, outer, written, framed, error_page],
            vec![
                ("http://shop.test/m.js", req(Initiator::Parser, 200)),
                (
                    "http://shop.test/d.js",
                    req(Initiator::Import("http://shop.test/m.js".into()), 200),
                ),
                ("http://ads.test/f.js", req(Initiator::Parser, 200)),
            ],
        );
        rec.sessions.insert("child".into(), Target::Frame);
        rec.frames
            .insert("frame1".into(), "http://ads.test/frame.html".into());
        rec.frames
            .insert("frame2".into(), "chrome-error://chromewebdata/".into());
        let rows = rows(&Url::parse(PAGE).unwrap(), statics(&html), &rec);
        assert_eq!(
            summary(&rows),
            [
                (0, "http://shop.test/m.js".into(), "static", "parser".into()),
                (1, sha256(writer), "static", "parser".into()),
                (
                    2,
                    "http://shop.test/d.js".into(),
                    "import",
                    "http://shop.test/m.js".into()
                ),
                (
                    3,
                    sha256("w()"),
                    "inserted",
                    format!("inline:{}", sha256(writer))
                ),
                (4, "http://ads.test/f.js".into(), "frame", "parser".into()),
            ]
        );
        let frame = rows[4].render.as_ref().unwrap().frame_url.as_deref();
        assert_eq!(frame, Some("http://ads.test/frame.html"));
    }

    #[test]
    fn an_import_call_is_told_from_an_insertion_by_its_call_site() {
        // An inline script starting at line 3, column 8 of its document.
        let text = "let s = document.createElement('script');\n  \
                    document.head.appendChild(s); import('./l.mjs');";
        let caller = ran("1", PAGE, (3, 8), text);
        let appended = text.lines().nth(1).unwrap().find("appendChild").unwrap() as u64;
        let imported = text.lines().nth(1).unwrap().find("import(").unwrap() as u64;
        assert!(calls_import(&caller, (4, imported)));
        assert!(!calls_import(&caller, (4, appended)));
        assert!(!calls_import(&caller, (3, 8)));
        assert!(!calls_import(&caller, (2, 0)), "before the script");
        assert!(!calls_import(&caller, (9, 0)), "after it");
        // Columns count UTF-16 units: an astral character is two.
        let wide = ran(
            "2",
            "http://shop.test/w.js",
            (0, 0),
            "'😀'; import('./x.mjs')",
        );
        assert!(calls_import(&wide, (0, 6)));
    }

    #[test]
    fn an_import_from_an_inline_module_names_that_module() {
        let code = "import './d.js';";
        let html = format!("<script type=module>{code}</script>");
        let mut inline = ran("1", PAGE, (0, 21), code);
        inline.module = true;
        let mut dep = ran("2", "http://shop.test/d.js", (0, 0), "D");
        dep.module = true;
        let rec = recording(
            vec![inline, dep],
            vec![(
                "http://shop.test/d.js",
                req(Initiator::Import(PAGE.into()), 200),
            )],
        );
        let rows = rows(&Url::parse(PAGE).unwrap(), statics(&html), &rec);
        assert_eq!(
            summary(&rows)[1],
            (
                1,
                "http://shop.test/d.js".into(),
                "import",
                format!("inline:{}", sha256(code))
            )
        );
    }

    #[test]
    fn redirected_and_refused_scripts() {
        let html = "<script src=/old.js></script>";
        let mut rec = recording(
            vec![ran("1", "http://shop.test/new.js", (0, 0), "N")],
            vec![
                ("http://shop.test/old.js", req(Initiator::Parser, 301)),
                ("http://shop.test/new.js", req(Initiator::Other, 200)),
                (
                    "http://10.0.0.1/probe.js",
                    Requested {
                        refused: true,
                        ..req(
                            Initiator::Script {
                                id: "1".into(),
                                url: String::new(),
                                at: (0, 0),
                            },
                            0,
                        )
                    },
                ),
            ],
        );
        rec.redirects.push((
            "http://shop.test/old.js".into(),
            "http://shop.test/new.js".into(),
        ));
        rec.refused
            .push(("http://10.0.0.1/probe.js".into(), "private".into()));
        let found = rows(&Url::parse(PAGE).unwrap(), statics(html), &rec);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].content.as_deref().unwrap().bytes, Some(1));
        let refused = found[1].content.as_deref().unwrap();
        assert_eq!(refused.error, Some(ErrorKind::PrivateAddress));
        assert_eq!(
            found[1].render.as_ref().unwrap().initiator.as_deref(),
            Some("http://shop.test/new.js")
        );
        assert_eq!(found[1].render.as_ref().unwrap().origin, Origin::Inserted);
        // Had only a preload asked for it, it would be a preload's row.
        rec.requests
            .get_mut("http://10.0.0.1/probe.js")
            .unwrap()
            .not_preload = false;
        let again = rows(&Url::parse(PAGE).unwrap(), statics(html), &rec);
        assert_eq!(again[1].render.as_ref().unwrap().origin, Origin::Preload);
    }
}
