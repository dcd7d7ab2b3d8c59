//! The parser's tree, reduced to what script extraction reads.
//!
//! html5ever's tree builder needs a tree it can query and rearrange: the
//! names of open elements, foster parenting, the adoption agency moving
//! children between elements. A general DOM (scraper's) also keeps every
//! attribute and text node of the page and indexes ids and classes, which
//! costs more than the extraction itself. This sink builds the same tree
//! shape, so that scripts come out in the same order, but keeps only:
//! - element names, for the tree builder's questions and the final walk;
//! - attributes of `<script>` (HTML and SVG) and HTML `<base>`, and of
//!   an HTML `<meta>` that declares a Content-Security-Policy;
//! - whether a script's start tag repeated an attribute (which makes its
//!   nonce not count: CSP's "is element nonceable");
//! - text whose parent is a `<script>`: its source;
//! - template contents as separate fragments, never linked into the
//!   document, as the HTML standard has it;
//! - which `annotation-xml` elements are HTML integration points (so that
//!   `<math><annotation-xml encoding="text/html">` holds HTML, scripts
//!   included, as in a browser).
//!
//! Comments, processing instructions and other text become placeholder
//! nodes or nothing: they can never hold or reorder a script.
//!
//! When asked, the sink also notes the encoding named by the first HTML
//! `<meta>` element the tree builder inserts in the head section that
//! names one: the HTML standard changes a guessed encoding to it ("changing
//! the encoding while parsing"), and so does Chromium for a declaration in
//! the head, which `extract` does by parsing again.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::time::Duration;

use encoding_rs::Encoding;
use html5ever::tendril::StrTendril;
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName, local_name, ns};

/// Index of a node in [`Tree::nodes`].
pub type Id = usize;

/// The document node's index.
pub const DOCUMENT: Id = 0;

/// A parsed document, in the reduced form described in the module docs.
#[derive(Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    meta_charset: Option<&'static Encoding>,
}

/// One node of the reduced tree, linked to its relatives by index.
#[derive(Debug)]
pub struct Node {
    /// The element's name; empty for every other kind of node.
    pub name: QualName,
    /// What the node is.
    pub kind: Kind,
    parent: Option<Id>,
    prev_sibling: Option<Id>,
    next_sibling: Option<Id>,
    first_child: Option<Id>,
    last_child: Option<Id>,
}

/// The kinds of node extraction tells apart.
#[derive(Debug)]
pub enum Kind {
    /// The document, or a template's contents (never linked into it).
    Root,
    /// An element; `attrs` is empty unless it is a script or base element
    /// or a CSP meta element ([`is_csp_meta`]).
    Element {
        attrs: Vec<Attribute>,
        /// A template element's contents.
        template_contents: Option<Id>,
        mathml_integration_point: bool,
        /// The start tag had an attribute more than once (the tokenizer
        /// kept the first); noted for script elements only.
        duplicate_attrs: bool,
    },
    /// Text inside a script element.
    Text(StrTendril),
    /// A comment or processing instruction: kept as a node only because
    /// the tree builder holds a handle to it.
    Other,
}

impl Tree {
    /// The encoding the first `<meta>` naming one declares (its label as
    /// written, before the standard's UTF-16 and x-user-defined fix-ups),
    /// when the parse was asked to watch for it.
    pub fn meta_charset(&self) -> Option<&'static Encoding> {
        self.meta_charset
    }

    /// The node at `id`.
    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    /// The children of `id`, first to last.
    pub fn children(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        std::iter::successors(self.nodes[id].first_child, |&c| self.nodes[c].next_sibling)
    }

    /// The ancestors of `id`, nearest first.
    pub fn ancestors(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        std::iter::successors(self.nodes[id].parent, |&p| self.nodes[p].parent)
    }

    /// The elements of the document in tree order (depth first, parents
    /// before children), template contents excluded.
    pub fn elements(&self) -> impl Iterator<Item = (Id, &Node)> + '_ {
        let mut next = self.nodes[DOCUMENT].first_child;
        std::iter::from_fn(move || {
            loop {
                let id = next?;
                let node = &self.nodes[id];
                next = node.first_child.or_else(|| self.following(id));
                if matches!(node.kind, Kind::Element { .. }) {
                    return Some((id, node));
                }
            }
        })
    }

    /// The next node in tree order after `id`'s subtree.
    fn following(&self, mut id: Id) -> Option<Id> {
        loop {
            let node = &self.nodes[id];
            if let Some(next) = node.next_sibling {
                return Some(next);
            }
            id = node.parent?;
        }
    }
}

fn is_script(name: &QualName) -> bool {
    name.local == local_name!("script") && (name.ns == ns!(html) || name.ns == ns!(svg))
}

fn keeps_attrs(name: &QualName, links: bool) -> bool {
    if is_script(name) || (name.local == local_name!("base") && name.ns == ns!(html)) {
        return true;
    }
    links && name.ns == ns!(html) && is_link(name)
}

/// Whether an element is an HTML `<meta>` whose `http-equiv` is
/// `Content-Security-Policy` (ASCII case-insensitively, as the HTML
/// standard matches its keywords; the Report-Only form is not one).
pub fn is_csp_meta(name: &QualName, attrs: &[Attribute]) -> bool {
    name.local == local_name!("meta")
        && name.ns == ns!(html)
        && attrs.iter().any(|a| {
            a.name.ns == ns!()
                && a.name.local == local_name!("http-equiv")
                && a.value.eq_ignore_ascii_case("content-security-policy")
        })
}

/// Elements whose URL a crawl follows: `<a href>`, `<area href>`,
/// `<iframe src>`, `<frame src>`.
pub fn is_link(name: &QualName) -> bool {
    matches!(
        name.local,
        local_name!("a") | local_name!("area") | local_name!("iframe") | local_name!("frame")
    )
}

/// Parses `html` as a whole document, scripting enabled, like a browser.
/// With a `budget`, gives up (returns `None`) once parsing has used that
/// much CPU time on this thread. With `watch_meta`, notes the encoding the
/// first `<meta>` declares ([`Tree::meta_charset`]).
///
/// The budget exists because html5ever's tree builder is quadratic in
/// nesting depth (servo/html5ever#788): 200 KB of nested `<div>` take
/// seconds to minutes, where a browser would cap the depth. The input is
/// fed in slices and the clock read between them, so an over-budget page
/// costs at most the budget plus one slice.
pub fn parse_document(
    html: &str,
    budget: Option<Duration>,
    links: bool,
    watch_meta: bool,
) -> Option<Tree> {
    use html5ever::tendril::TendrilSink as _;
    /// Input between clock readings: small enough that one slice of a
    /// hostile page stays far under any sensible budget, large enough that
    /// reading the clock costs nothing on ordinary pages.
    const SLICE: usize = 16 * 1024;

    let sink = Sink::new(html.len(), links, watch_meta);
    // html5ever drops a U+FEFF at the start of every piece of input it is
    // fed, which includes each slice below and each time the tree builder
    // hands the input back (after </script>, <meta charset>): a character
    // a browser keeps as text. The byte order mark itself is gone before
    // the text gets here (the decoder takes it).
    let opts = html5ever::ParseOpts {
        tokenizer: html5ever::tokenizer::TokenizerOpts {
            discard_bom: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut parser = html5ever::driver::parse_document(sink, opts);
    let Some(budget) = budget else {
        return Some(parser.one(html));
    };
    let started = thread_cpu_time();
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(SLICE);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (slice, tail) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(slice));
        rest = tail;
        if thread_cpu_time().saturating_sub(started) > budget {
            return None;
        }
    }
    Some(parser.finish())
}

/// CPU time used by the calling thread: unlike wall time, it does not grow
/// when other processes load the machine.
#[cfg(unix)]
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, and
    // CLOCK_THREAD_CPUTIME_ID is always available on the unix targets
    // Rust supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
pub fn thread_cpu_time() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// The tree builder's view of a [`Tree`] under construction. The tree
/// builder asks through `&self`, hence the RefCell; no borrow outlives a
/// method call except the `Ref` that `elem_name` hands out, which the tree
/// builder drops before it changes the tree.
struct Sink {
    tree: RefCell<Tree>,
    /// Also keep the attributes of link elements (crawl mode).
    links: bool,
    /// Note the encoding the first `<meta>` declares.
    watch_meta: bool,
    meta_charset: Cell<Option<&'static Encoding>>,
    /// No element has been made yet that ends the head section as
    /// Chromium's late-meta scan sees it ([`ends_head_section`]).
    in_head_section: Cell<bool>,
}

impl Sink {
    fn new(html_len: usize, links: bool, watch_meta: bool) -> Self {
        // Roughly one element per 40 bytes of markup on real pages: a first
        // guess that saves most of the arena's regrowth.
        let mut nodes = Vec::with_capacity(html_len / 40 + 16);
        nodes.push(Node::new(
            QualName::new(None, ns!(), local_name!("")),
            Kind::Root,
        ));
        Self {
            tree: RefCell::new(Tree {
                nodes,
                meta_charset: None,
            }),
            links,
            watch_meta,
            meta_charset: Cell::new(None),
            in_head_section: Cell::new(true),
        }
    }
}

/// Whether an element ends the part of the document where Chromium still
/// looks for a `<meta>` declaration past the first 1024 bytes
/// (HTMLMetaCharsetParser): anything but the elements a head holds. A
/// declaration in the body does not change the encoding there (checked
/// against Chromium 156), although the standard's wording would allow it.
fn ends_head_section(name: &QualName) -> bool {
    name.ns != ns!(html)
        || !matches!(
            name.local,
            local_name!("html")
                | local_name!("head")
                | local_name!("script")
                | local_name!("noscript")
                | local_name!("style")
                | local_name!("link")
                | local_name!("meta")
                | local_name!("object")
                | local_name!("title")
                | local_name!("base")
        )
}

/// The encoding a `<meta>` element with these attributes declares, as the
/// tree builder's "in head" rules read it: `charset`, else
/// `http-equiv=content-type` with a `content` that names one.
fn meta_encoding(attrs: &[Attribute]) -> Option<&'static Encoding> {
    let plain = |name: &str| {
        attrs
            .iter()
            .find(|a| a.name.ns == ns!() && &*a.name.local == name)
            .map(|a| &*a.value)
    };
    plain("charset")
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| {
            plain("http-equiv")
                .filter(|v| v.eq_ignore_ascii_case("content-type"))
                .and(plain("content"))
                .and_then(crate::charset::from_meta_content)
        })
}

impl Node {
    fn new(name: QualName, kind: Kind) -> Self {
        Self {
            name,
            kind,
            parent: None,
            prev_sibling: None,
            next_sibling: None,
            first_child: None,
            last_child: None,
        }
    }

    fn placeholder(kind: Kind) -> Self {
        Self::new(QualName::new(None, ns!(), local_name!("")), kind)
    }
}

impl Tree {
    fn push(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn detach(&mut self, id: Id) {
        let (parent, prev, next) = {
            let n = &mut self.nodes[id];
            (
                n.parent.take(),
                n.prev_sibling.take(),
                n.next_sibling.take(),
            )
        };
        let Some(parent) = parent else { return };
        match prev {
            Some(p) => self.nodes[p].next_sibling = next,
            None => self.nodes[parent].first_child = next,
        }
        match next {
            Some(n) => self.nodes[n].prev_sibling = prev,
            None => self.nodes[parent].last_child = prev,
        }
    }

    fn append_child(&mut self, parent: Id, child: Id) {
        self.detach(child);
        let last = self.nodes[parent].last_child;
        {
            let c = &mut self.nodes[child];
            c.parent = Some(parent);
            c.prev_sibling = last;
        }
        match last {
            Some(l) => self.nodes[l].next_sibling = Some(child),
            None => self.nodes[parent].first_child = Some(child),
        }
        self.nodes[parent].last_child = Some(child);
    }

    /// Inserts `child` before `sibling`, which has a parent.
    fn insert_before(&mut self, sibling: Id, child: Id) {
        self.detach(child);
        let (parent, prev) = (self.nodes[sibling].parent, self.nodes[sibling].prev_sibling);
        {
            let c = &mut self.nodes[child];
            c.parent = parent;
            c.prev_sibling = prev;
            c.next_sibling = Some(sibling);
        }
        self.nodes[sibling].prev_sibling = Some(child);
        match (prev, parent) {
            (Some(p), _) => self.nodes[p].next_sibling = Some(child),
            (None, Some(parent)) => self.nodes[parent].first_child = Some(child),
            (None, None) => {}
        }
    }

    /// Text for `parent`, placed after `prev` (its new previous sibling):
    /// kept only under a script, merged into a text node it follows.
    /// Returns the new node when one must be linked in.
    fn text_node(&mut self, parent: Option<Id>, prev: Option<Id>, text: StrTendril) -> Option<Id> {
        if !parent.is_some_and(|p| is_script(&self.nodes[p].name)) {
            return None;
        }
        if let Some(Kind::Text(existing)) = prev.map(|p| &mut self.nodes[p].kind) {
            existing.push_tendril(&text);
            return None;
        }
        Some(self.push(Node::placeholder(Kind::Text(text))))
    }
}

impl TreeSink for Sink {
    type Handle = Id;
    type Output = Tree;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Tree {
        let mut tree = self.tree.into_inner();
        tree.meta_charset = self.meta_charset.get();
        tree
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Id {
        DOCUMENT
    }

    fn elem_name<'a>(&'a self, target: &'a Id) -> Ref<'a, QualName> {
        Ref::map(self.tree.borrow(), |t| &t.nodes[*target].name)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Id {
        // The tree builder creates an HTML meta element exactly where the
        // standard's "in head" rules for it run. Only the first one that
        // names an encoding counts (after it the encoding is certain,
        // changed or not), and only in the head section, as in Chromium.
        if self.watch_meta && ends_head_section(&name) {
            self.in_head_section.set(false);
        }
        if self.watch_meta
            && self.in_head_section.get()
            && self.meta_charset.get().is_none()
            && name.local == local_name!("meta")
            && name.ns == ns!(html)
        {
            self.meta_charset.set(meta_encoding(&attrs));
        }
        let mut tree = self.tree.borrow_mut();
        let template_contents = flags
            .template
            .then(|| tree.push(Node::placeholder(Kind::Root)));
        let script = is_script(&name);
        let attrs = if keeps_attrs(&name, self.links) || is_csp_meta(&name, &attrs) {
            attrs
        } else {
            Vec::new()
        };
        let kind = Kind::Element {
            attrs,
            template_contents,
            mathml_integration_point: flags.mathml_annotation_xml_integration_point,
            duplicate_attrs: script && flags.had_duplicate_attributes,
        };
        tree.push(Node::new(name, kind))
    }

    fn create_comment(&self, _text: StrTendril) -> Id {
        self.tree.borrow_mut().push(Node::placeholder(Kind::Other))
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Id {
        self.tree.borrow_mut().push(Node::placeholder(Kind::Other))
    }

    fn append(&self, parent: &Id, child: NodeOrText<Id>) {
        let mut tree = self.tree.borrow_mut();
        let child = match child {
            NodeOrText::AppendNode(id) => id,
            NodeOrText::AppendText(text) => {
                let last = tree.nodes[*parent].last_child;
                match tree.text_node(Some(*parent), last, text) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        tree.append_child(*parent, child);
    }

    fn append_based_on_parent_node(&self, element: &Id, prev_element: &Id, child: NodeOrText<Id>) {
        let has_parent = self.tree.borrow().nodes[*element].parent.is_some();
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &Id) -> Id {
        let mut tree = self.tree.borrow_mut();
        match tree.nodes[*target].kind {
            Kind::Element {
                template_contents: Some(contents),
                ..
            } => contents,
            // The tree builder only asks about template elements, which
            // always have contents; anything else gets a detached root so
            // that what is put there stays out of the document.
            _ => tree.push(Node::placeholder(Kind::Root)),
        }
    }

    fn same_node(&self, x: &Id, y: &Id) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Id, new_node: NodeOrText<Id>) {
        let mut tree = self.tree.borrow_mut();
        let parent = tree.nodes[*sibling].parent;
        let child = match new_node {
            NodeOrText::AppendNode(id) => {
                // Detached even when there is nowhere to put it, as the
                // tree builder expects.
                tree.detach(id);
                id
            }
            NodeOrText::AppendText(text) => {
                let prev = tree.nodes[*sibling].prev_sibling;
                match tree.text_node(parent, prev, text) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        if parent.is_some() {
            tree.insert_before(*sibling, child);
        }
    }

    fn add_attrs_if_missing(&self, target: &Id, attrs: Vec<Attribute>) {
        // Only <html> and <body> receive attributes this way; neither is a
        // script, base or meta element, whose attributes are all that is
        // kept.
        let mut tree = self.tree.borrow_mut();
        let node = &mut tree.nodes[*target];
        if !keeps_attrs(&node.name, self.links) {
            return;
        }
        if let Kind::Element {
            attrs: existing, ..
        } = &mut node.kind
        {
            for attr in attrs {
                if !existing.iter().any(|a| a.name == attr.name) {
                    existing.push(attr);
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &Id) {
        self.tree.borrow_mut().detach(*target);
    }

    fn reparent_children(&self, node: &Id, new_parent: &Id) {
        let mut tree = self.tree.borrow_mut();
        while let Some(child) = tree.nodes[*node].first_child {
            tree.append_child(*new_parent, child);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Id) -> bool {
        matches!(
            self.tree.borrow().nodes[*handle].kind,
            Kind::Element {
                mathml_integration_point: true,
                ..
            }
        )
    }
}
