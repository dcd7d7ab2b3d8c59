//! The comparison of the differential test (tests/differential.rs) and of
//! its long run (examples/differential.rs): what the extractor makes of a
//! page, through html5ever's tree alone ([`tree`]) and as it runs (the
//! fast scan, or the tree where the scan is not sure: [`ours`]), against
//! what a full DOM of the same page says, walked in tree order
//! ([`reference`]).
//!
//! The reference is scraper's DOM, built by html5ever's tree builder like
//! the extractor's reduced tree, but through scraper's own tree sink: a
//! general DOM that keeps every node and attribute. Its sink never marks
//! MathML `annotation-xml` HTML integration points (so it would parse
//! `<math><annotation-xml encoding="text/html"><script>` as MathML), and
//! keeps no word of a start tag that repeated an attribute (which makes a
//! nonce not count); [`Reference`] wraps it to note both from the flags
//! the tree builder gives. Everything else is scraper's.
//!
//! What is compared ([`Page`]), where the DOM can say it: each script
//! element (HTML or SVG, outside templates) with its attributes, text,
//! nonce and place (in `<head>` or not); the links (`<a href>`, `<area
//! href>`, `<iframe src>`, `<frame src>`, HTML only, outside templates,
//! each URL once); and the Content-Security-Policy `<meta>`s a browser
//! enforces. The document's base URL (the first `<base href>` in tree
//! order outside templates) is compared through what it changes, the only
//! view of it the extractor gives: every `src` and link is resolved
//! against it on every side.
//!
//! Each reading of a page is a side of [`SIDES`]; another way of finding
//! scripts joins the comparison as one more line there.

use std::cell::{Ref, RefCell};
use std::collections::HashSet;

use ego_tree::NodeId;
use html5ever::tendril::{StrTendril, TendrilSink as _};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink, Node};
use scriptscrape::extract::{Extractor, Position};
use url::Url;

const HTML_NS: &str = "http://www.w3.org/1999/xhtml";
const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";

/// The URL pages are extracted as coming from.
pub const PAGE_URL: &str = "https://www.example.com/dir/page.html";

/// What every side must agree on for one page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub scripts: Vec<Seen>,
    pub links: Vec<SeenLink>,
    /// Each enforced CSP `<meta>`'s policy and the index of the first
    /// script after it.
    pub csp_metas: Vec<(String, usize)>,
}

/// One script element.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub svg: bool,
    /// Resolved against the document's base URL, or as written when it
    /// does not resolve.
    pub src: Option<String>,
    pub type_attr: Option<String>,
    /// `async`, `defer`, `nomodule`.
    pub flags: [bool; 3],
    pub integrity: Option<String>,
    pub crossorigin: Option<String>,
    /// An inline script's text.
    pub text: Option<String>,
    /// Inside the document's `<head>`.
    pub head: bool,
    /// A non-empty `nonce`.
    pub nonce: Option<String>,
    /// The nonce counts (CSP's "is element nonceable").
    pub nonceable: bool,
}

/// One link.
#[derive(Debug, PartialEq, Eq)]
pub struct SeenLink {
    pub url: String,
    pub nofollow: bool,
}

/// The extractor's view: [`Extractor::extract_page`] (the fast scan, or
/// html5ever's tree where the scan is not sure) with inline text, links
/// and what a CSP check needs (as under a header policy, so that every
/// script has it).
pub fn ours(url: &Url, html: &str) -> Page {
    extracted(Extractor::new(), url, html)
}

/// The extractor's view through html5ever's tree alone, never the fast
/// scan.
pub fn tree(url: &Url, html: &str) -> Page {
    extracted(Extractor::new().tree_only(true), url, html)
}

fn extracted(extractor: Extractor, url: &Url, html: &str) -> Page {
    let page = extractor
        .keep_inline_text(true)
        .links(true)
        .csp_header(true)
        .extract_page(url, html);
    let scripts = page
        .scripts
        .into_iter()
        .map(|s| {
            let csp = s.csp.expect("a header policy applies to every script");
            Seen {
                svg: s.svg,
                src: s.src.as_ref().map(|src| src.as_str().to_owned()),
                type_attr: s.type_attr,
                flags: [s.is_async, s.defer, s.nomodule],
                integrity: s.integrity,
                crossorigin: s.crossorigin,
                text: s.inline.and_then(|i| i.text),
                head: s.position == Position::Head,
                nonce: csp.nonce_value,
                nonceable: csp.nonceable,
            }
        })
        .collect();
    let links = page
        .links
        .into_iter()
        .map(|l| SeenLink {
            url: l.url.into(),
            nofollow: l.nofollow,
        })
        .collect();
    let csp_metas = page
        .csp_metas
        .into_iter()
        .map(|m| (m.content, m.first_script))
        .collect();
    Page {
        scripts,
        links,
        csp_metas,
    }
}

/// scraper's DOM of `html`, with what [`Reference`] notes beside it.
struct Dom {
    html: Html,
    duplicate_attrs: HashSet<NodeId>,
}

/// scraper's tree sink, noting the two things it drops (see the module
/// docs); every other call goes to it unchanged.
struct Reference {
    dom: HtmlTreeSink,
    integration_points: RefCell<HashSet<NodeId>>,
    duplicate_attrs: RefCell<HashSet<NodeId>>,
}

impl TreeSink for Reference {
    type Handle = NodeId;
    type Output = Dom;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Dom {
        Dom {
            html: self.dom.finish(),
            duplicate_attrs: self.duplicate_attrs.into_inner(),
        }
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        let point = flags.mathml_annotation_xml_integration_point;
        let duplicates = flags.had_duplicate_attributes;
        let id = self.dom.create_element(name, attrs, flags);
        if point {
            self.integration_points.borrow_mut().insert(id);
        }
        if duplicates {
            self.duplicate_attrs.borrow_mut().insert(id);
        }
        id
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.integration_points.borrow().contains(handle)
    }

    fn parse_error(&self, msg: std::borrow::Cow<'static, str>) {
        self.dom.parse_error(msg)
    }
    fn get_document(&self) -> NodeId {
        self.dom.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Ref<'a, QualName> {
        self.dom.elem_name(target)
    }
    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.dom.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.dom.create_pi(target, data)
    }
    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        self.dom.append(parent, child)
    }
    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        self.dom
            .append_based_on_parent_node(element, prev_element, child)
    }
    fn append_doctype_to_document(&self, name: StrTendril, public: StrTendril, system: StrTendril) {
        self.dom.append_doctype_to_document(name, public, system)
    }
    fn mark_script_already_started(&self, node: &NodeId) {
        self.dom.mark_script_already_started(node)
    }
    fn pop(&self, node: &NodeId) {
        self.dom.pop(node)
    }
    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.dom.get_template_contents(target)
    }
    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.dom.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.dom.set_quirks_mode(mode)
    }
    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        self.dom.append_before_sibling(sibling, new_node)
    }
    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.dom.add_attrs_if_missing(target, attrs)
    }
    fn associate_with_form(
        &self,
        target: &NodeId,
        form: &NodeId,
        nodes: (&NodeId, Option<&NodeId>),
    ) {
        self.dom.associate_with_form(target, form, nodes)
    }
    fn remove_from_parent(&self, target: &NodeId) {
        self.dom.remove_from_parent(target)
    }
    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.dom.reparent_children(node, new_parent)
    }
    fn set_current_line(&self, line_number: u64) {
        self.dom.set_current_line(line_number)
    }
    fn allow_declarative_shadow_roots(&self, intended_parent: &NodeId) -> bool {
        self.dom.allow_declarative_shadow_roots(intended_parent)
    }
    fn attach_declarative_shadow(
        &self,
        location: &NodeId,
        template: &NodeId,
        attrs: &[Attribute],
    ) -> bool {
        self.dom
            .attach_declarative_shadow(location, template, attrs)
    }
    fn maybe_clone_an_option_into_selectedcontent(&self, option: &NodeId) {
        self.dom.maybe_clone_an_option_into_selectedcontent(option)
    }
}

/// The reference view: scraper's DOM walked in tree order, template
/// contents skipped.
pub fn reference(url: &Url, html: &str) -> Page {
    use ego_tree::iter::Edge;

    let sink = Reference {
        dom: HtmlTreeSink::new(Html::new_document()),
        integration_points: RefCell::default(),
        duplicate_attrs: RefCell::default(),
    };
    // As the extractor: html5ever would drop a U+FEFF at the start of
    // each piece of input it is handed again (after </script>, <meta
    // charset>), which a browser keeps as text.
    let opts = html5ever::ParseOpts {
        tokenizer: html5ever::tokenizer::TokenizerOpts {
            discard_bom: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let dom = html5ever::driver::parse_document(sink, opts).one(html);
    let mut base: Option<String> = None;
    let mut scripts = Vec::new();
    let mut links = Vec::new();
    let mut csp_metas = Vec::new();
    let mut in_template = 0usize;
    for edge in dom.html.tree.root().traverse() {
        let node = match edge {
            Edge::Open(node) => node,
            Edge::Close(node) => {
                if let Node::Fragment = node.value() {
                    in_template -= 1;
                }
                continue;
            }
        };
        let el = match node.value() {
            Node::Fragment => {
                in_template += 1;
                continue;
            }
            Node::Element(el) if in_template == 0 => el,
            _ => continue,
        };
        let (ns, local) = (&*el.name.ns, &*el.name.local);
        if local == "script" && (ns == HTML_NS || ns == SVG_NS) {
            scripts.push(node);
        } else if ns != HTML_NS {
            continue;
        } else if local == "base" && base.is_none() {
            base = el.attr("href").map(str::to_owned);
        } else if matches!(local, "a" | "area") {
            links.push((el.attr("href"), el.attr("rel")));
        } else if matches!(local, "iframe" | "frame") {
            links.push((el.attr("src"), None));
        } else if local == "meta"
            && el
                .attr("http-equiv")
                .is_some_and(|v| v.eq_ignore_ascii_case("content-security-policy"))
            && node.parent().is_some_and(|p| {
                p.value()
                    .as_element()
                    .is_some_and(|p| &*p.name.local == "head" && &*p.name.ns == HTML_NS)
            })
            && let Some(content) = el.attr("content").filter(|c| !c.is_empty())
        {
            csp_metas.push((content.to_owned(), scripts.len()));
        }
    }

    // The frozen base URL: the first base's href, unless it fails to parse
    // or is a data: or javascript: URL.
    let base = base
        .and_then(|href| url.join(&href).ok())
        .filter(|u| !matches!(u.scheme(), "data" | "javascript"))
        .unwrap_or_else(|| url.clone());
    let scripts = scripts
        .into_iter()
        .map(|node| {
            let el = node.value().as_element().expect("a script element");
            let svg = &*el.name.ns == SVG_NS;
            let plain = |name: &str| {
                el.attrs
                    .iter()
                    .find(|(n, _)| n.ns.is_empty() && &*n.local == name)
                    .map(|(_, v)| v.to_string())
            };
            let xlink = el
                .attrs
                .iter()
                .find(|(n, _)| &*n.ns == XLINK_NS && &*n.local == "href")
                .map(|(_, v)| v.to_string());
            let raw = if svg {
                plain("href").or(xlink)
            } else {
                plain("src")
            };
            let text = raw.is_none().then(|| {
                node.children()
                    .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
                    .collect::<String>()
            });
            let nonce = plain("nonce").filter(|n| !n.is_empty());
            let nonceable = nonce.is_some()
                && !dom.duplicate_attrs.contains(&node.id())
                && !el
                    .attrs
                    .iter()
                    .any(|(n, v)| injected_markup(&n.local) || injected_markup(v));
            let head = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|a| &*a.name.local == "head" && &*a.name.ns == HTML_NS)
            });
            Seen {
                svg,
                src: raw.map(|raw| match base.join(&raw) {
                    Ok(u) if !raw.is_empty() => u.to_string(),
                    _ => raw,
                }),
                type_attr: plain("type"),
                flags: [
                    plain("async").is_some(),
                    plain("defer").is_some(),
                    plain("nomodule").is_some(),
                ],
                integrity: plain("integrity"),
                crossorigin: plain("crossorigin"),
                text,
                head,
                nonce,
                nonceable,
            }
        })
        .collect();
    // A link once (the extractor's rule: the adoption agency clones an
    // unclosed <a>, which adds nothing a crawl would follow).
    let mut seen = HashSet::new();
    let links = links
        .into_iter()
        .filter_map(|(target, rel)| {
            // An empty (or all-blank) target is not followed; the
            // extractor trims as str::trim does.
            let target = target.filter(|t| !t.trim().is_empty())?;
            let url = base.join(target).ok()?;
            matches!(url.scheme(), "http" | "https").then(|| SeenLink {
                url: url.into(),
                nofollow: rel.is_some_and(|rel| {
                    rel.split_ascii_whitespace()
                        .any(|t| t.eq_ignore_ascii_case("nofollow"))
                }),
            })
        })
        .filter(|link| seen.insert((link.url.clone(), link.nofollow)))
        .collect();
    Page {
        scripts,
        links,
        csp_metas,
    }
}

/// Whether an attribute's name or value holds `<script` or `<style`
/// (ASCII case-insensitively): markup injected into a start tag.
fn injected_markup(s: &str) -> bool {
    let s = s.as_bytes();
    [&b"<script"[..], b"<style"].iter().any(|needle| {
        s.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// A way of reading a page: [`reference`], [`tree`], [`ours`].
pub type Read = fn(&Url, &str) -> Page;

/// The ways of reading a page that must agree: a name for messages, and
/// the reading. The first is what the others are held to.
pub const SIDES: &[(&str, Read)] = &[
    ("reference", reference),
    ("html5ever tree", tree),
    ("extractor", ours),
];

/// What every side agrees `html` holds; or, if they do not, what differs,
/// for a person to read.
pub fn compare(html: &str) -> Result<Page, String> {
    let url = Url::parse(PAGE_URL).expect("a valid URL");
    let mut sides = SIDES.iter().map(|(name, read)| (*name, read(&url, html)));
    let (first_name, first) = sides.next().expect("at least one side");
    let mut out = String::new();
    for (name, page) in sides {
        if page != first {
            describe(&mut out, (name, &page), (first_name, &first));
        }
    }
    if out.is_empty() { Ok(first) } else { Err(out) }
}

/// The first difference in each list of two pages, named by their sides.
fn describe(out: &mut String, (a_name, a): (&str, &Page), (b_name, b): (&str, &Page)) {
    fn first<T: std::fmt::Debug + PartialEq>(
        out: &mut String,
        what: &str,
        (a_name, a): (&str, &[T]),
        (b_name, b): (&str, &[T]),
    ) {
        use std::fmt::Write as _;
        if a == b {
            return;
        }
        let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let w = a_name.len().max(b_name.len());
        writeln!(
            out,
            "  {what}: {} by the {a_name}, {} by the {b_name}; first difference at {i}:\n    \
             {a_name:>w$}: {:?}\n    {b_name:>w$}: {:?}",
            a.len(),
            b.len(),
            a.get(i),
            b.get(i),
        )
        .expect("writing to a String");
    }
    first(out, "scripts", (a_name, &a.scripts), (b_name, &b.scripts));
    first(out, "links", (a_name, &a.links), (b_name, &b.links));
    first(
        out,
        "CSP metas",
        (a_name, &a.csp_metas),
        (b_name, &b.csp_metas),
    );
}

/// A smaller page on which `fails` still holds: chunks of markup (then
/// single characters) are taken out for as long as the failure stays,
/// within `attempts` calls of `fails`.
pub fn minimize(html: &str, fails: &dyn Fn(&str) -> bool, mut attempts: usize) -> String {
    // Pieces: markup split before each `<`, then characters.
    let mut pieces: Vec<String> = Vec::new();
    for (i, part) in html.split('<').enumerate() {
        let piece = if i == 0 {
            part.to_owned()
        } else {
            format!("<{part}")
        };
        if !piece.is_empty() {
            pieces.push(piece);
        }
    }
    for by_char in [false, true] {
        if by_char {
            pieces = pieces.concat().chars().map(String::from).collect();
        }
        let mut size = pieces.len().div_ceil(2).max(1);
        loop {
            let mut removed_any = false;
            let mut start = 0;
            while start < pieces.len() && attempts > 0 {
                let end = (start + size).min(pieces.len());
                let candidate = [&pieces[..start], &pieces[end..]].concat().concat();
                attempts -= 1;
                if fails(&candidate) {
                    pieces.drain(start..end);
                    removed_any = true;
                } else {
                    start = end;
                }
            }
            if attempts == 0 {
                return pieces.concat();
            }
            if size == 1 && !removed_any {
                break;
            }
            if !removed_any {
                size = size.div_ceil(2);
            }
        }
    }
    pieces.concat()
}
