//! What extraction reads of a document, whichever way it was found: the
//! seam between the two parsers (the fast scan of `fast`, html5ever's tree
//! builder into `sink`) and the records made of it (`extract`).
//!
//! Both give the same thing for a document: its script elements in tree
//! order with their attributes, text and place, the first `<base href>`,
//! the enforced CSP `<meta>`s and, when asked, the links.

use std::borrow::Cow;

use html5ever::{Attribute, local_name, ns};

use super::sink::{self, Kind, Tree};

/// The namespace of an attribute, as far as extraction tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrNs {
    /// No namespace: every attribute of an HTML element, most of SVG's.
    None,
    /// `xlink:` on a foreign element (`xlink:href` on an SVG script).
    XLink,
    /// Any other (`xml:`, `xmlns:`).
    Other,
}

/// One attribute of an element, as the tree has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    pub ns: AttrNs,
    /// Its local name (lower case, as the tokenizer makes it).
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// A script element of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundScript<'a> {
    /// An SVG `<script>` rather than an HTML one.
    pub svg: bool,
    /// Its attributes, in the order of the start tag (the first of a
    /// repeated name only).
    pub attrs: Vec<Attr<'a>>,
    /// The start tag repeated an attribute.
    pub duplicate_attrs: bool,
    /// Its child text content: the script's source when it has no `src`.
    pub text: Cow<'a, str>,
    /// Inside the document's `<head>`.
    pub in_head: bool,
}

/// A link element (`<a>`, `<area>`, `<iframe>`, `<frame>`) of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundLink<'a> {
    pub href: Option<Cow<'a, str>>,
    pub src: Option<Cow<'a, str>>,
    pub rel: Option<Cow<'a, str>>,
}

/// Everything extraction reads of one document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found<'a> {
    /// The script elements, in tree order.
    pub scripts: Vec<FoundScript<'a>>,
    /// The `href` of the first HTML `<base>` element that has one.
    pub base_href: Option<Cow<'a, str>>,
    /// The links, in tree order (when asked for).
    pub links: Vec<FoundLink<'a>>,
    /// The `content` of each CSP `<meta>` a browser enforces (a child of
    /// the head element, not empty), with the number of script elements
    /// before it.
    pub csp_metas: Vec<(Cow<'a, str>, usize)>,
}

impl<'a> Found<'a> {
    /// What `tree`, html5ever's parse, holds (borrowed from it).
    pub fn from_tree(tree: &'a Tree, links: bool) -> Found<'a> {
        let mut found = Found::default();
        let mut base_seen = false;
        for (id, node) in tree.elements() {
            let Kind::Element {
                attrs,
                duplicate_attrs,
                ..
            } = &node.kind
            else {
                continue;
            };
            let name = &node.name;
            if name.local == local_name!("script") && (name.ns == ns!(html) || name.ns == ns!(svg))
            {
                found.scripts.push(FoundScript {
                    svg: name.ns == ns!(svg),
                    attrs: attrs.iter().map(attr).collect(),
                    duplicate_attrs: *duplicate_attrs,
                    text: child_text(tree, id),
                    in_head: tree.ancestors(id).any(|a| {
                        let name = &tree.node(a).name;
                        name.local == local_name!("head") && name.ns == ns!(html)
                    }),
                });
            } else if name.local == local_name!("base") && name.ns == ns!(html) && !base_seen {
                found.base_href = plain(attrs, "href").map(Cow::Borrowed);
                base_seen = found.base_href.is_some();
            } else if links && name.ns == ns!(html) && sink::is_link(name) {
                // <a> and <area> link by href (with a rel); <iframe> and
                // <frame> load their src.
                let anchor = matches!(name.local, local_name!("a") | local_name!("area"));
                let own = |attr| plain(attrs, attr).map(Cow::Borrowed);
                found.links.push(FoundLink {
                    href: if anchor { own("href") } else { None },
                    src: if anchor { None } else { own("src") },
                    rel: if anchor { own("rel") } else { None },
                });
            } else if !attrs.is_empty()
                && sink::is_csp_meta(name, attrs)
                && let Some(content) = meta_policy(tree, id, attrs)
            {
                found
                    .csp_metas
                    .push((Cow::Borrowed(content), found.scripts.len()));
            }
        }
        found
    }
}

fn attr(a: &Attribute) -> Attr<'_> {
    let ns = if a.name.ns == ns!() {
        AttrNs::None
    } else if a.name.ns == ns!(xlink) {
        AttrNs::XLink
    } else {
        AttrNs::Other
    };
    Attr {
        ns,
        name: Cow::Borrowed(&a.name.local),
        value: Cow::Borrowed(&a.value),
    }
}

/// The value of the no-namespace attribute `name`.
fn plain<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.name.ns == ns!() && &*a.name.local == name)
        .map(|a| &*a.value)
}

/// A script's source is its "child text content": the direct text
/// children only. The parser keeps HTML script text as one node, so the
/// common case borrows instead of copying.
fn child_text(tree: &Tree, id: sink::Id) -> Cow<'_, str> {
    let mut texts = tree.children(id).filter_map(|c| match &tree.node(c).kind {
        Kind::Text(text) => Some(&**text),
        _ => None,
    });
    let first = texts.next().unwrap_or("");
    match texts.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut joined = String::from(first);
            joined.push_str(second);
            texts.for_each(|t| joined.push_str(t));
            Cow::Owned(joined)
        }
    }
}

/// The policy of a CSP `<meta>` a browser enforces: its `content`, when
/// the element is a child of the `head` element (the HTML standard's
/// "Content security policy state" ignores it anywhere else) and the
/// `content` is not empty.
fn meta_policy<'a>(tree: &Tree, id: sink::Id, attrs: &'a [Attribute]) -> Option<&'a str> {
    let parent = tree.ancestors(id).next()?;
    let parent = &tree.node(parent).name;
    if parent.local != local_name!("head") || parent.ns != ns!(html) {
        return None;
    }
    plain(attrs, "content").filter(|content| !content.is_empty())
}
