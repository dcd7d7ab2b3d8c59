//! scraper's tree sink, completed so that the tree is the one a browser
//! builds.
//!
//! scraper's `HtmlTreeSink` never answers yes to "is this element a MathML
//! annotation-xml integration point", so html5ever parses the contents of
//! `<math><annotation-xml encoding="text/html">` as MathML: a `<script>` or
//! `<base>` in there would be lost or changed. html5ever tells the sink the
//! answer when it creates the element; this wrapper remembers it and
//! passes everything else through unchanged.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use ego_tree::NodeId;
use html5ever::tendril::StrTendril;
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink};

/// Parses `html` as a whole document, scripting enabled, like a browser.
/// With a `budget`, gives up (returns `None`) once parsing has used that
/// much CPU time on this thread.
///
/// The budget exists because html5ever's tree builder is quadratic in
/// nesting depth (servo/html5ever#788): 200 KB of nested `<div>` take
/// seconds to minutes, where a browser would cap the depth. The input is
/// fed in slices and the clock read between them, so an over-budget page
/// costs at most the budget plus one slice.
pub fn parse_document(html: &str, budget: Option<Duration>) -> Option<Html> {
    use html5ever::tendril::TendrilSink as _;
    /// Input between clock readings: small enough that one slice of a
    /// hostile page stays far under any sensible budget, large enough that
    /// reading the clock costs nothing on ordinary pages.
    const SLICE: usize = 16 * 1024;

    let sink = DocumentSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        integration_points: RefCell::default(),
    };
    let mut parser = html5ever::driver::parse_document(sink, Default::default());
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
fn thread_cpu_time() -> Duration {
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
fn thread_cpu_time() -> Duration {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

struct DocumentSink {
    inner: HtmlTreeSink,
    /// annotation-xml elements whose encoding makes them HTML integration
    /// points; rare, so a set is cheaper than a flag on every node.
    integration_points: RefCell<HashSet<NodeId>>,
}

impl TreeSink for DocumentSink {
    type Handle = NodeId;
    type Output = Html;
    type ElemName<'a> = <HtmlTreeSink as TreeSink>::ElemName<'a>;

    fn finish(self) -> Html {
        self.inner.finish()
    }

    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg);
    }

    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }

    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Self::ElemName<'a> {
        self.inner.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        let integration_point = flags.mathml_annotation_xml_integration_point;
        let id = self.inner.create_element(name, attrs, flags);
        if integration_point {
            self.integration_points.borrow_mut().insert(id);
        }
        id
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.integration_points.borrow().contains(handle)
    }

    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.inner.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.inner.create_pi(target, data)
    }

    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        self.inner.append(parent, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        self.inner
            .append_based_on_parent_node(element, prev_element, child);
    }

    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        self.inner
            .append_doctype_to_document(name, public_id, system_id);
    }

    fn mark_script_already_started(&self, node: &NodeId) {
        self.inner.mark_script_already_started(node);
    }

    fn pop(&self, node: &NodeId) {
        self.inner.pop(node);
    }

    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.inner.get_template_contents(target)
    }

    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.inner.same_node(x, y)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode);
    }

    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        self.inner.append_before_sibling(sibling, new_node);
    }

    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs);
    }

    fn associate_with_form(
        &self,
        target: &NodeId,
        form: &NodeId,
        nodes: (&NodeId, Option<&NodeId>),
    ) {
        self.inner.associate_with_form(target, form, nodes);
    }

    fn remove_from_parent(&self, target: &NodeId) {
        self.inner.remove_from_parent(target);
    }

    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.inner.reparent_children(node, new_parent);
    }

    fn set_current_line(&self, line_number: u64) {
        self.inner.set_current_line(line_number);
    }

    fn allow_declarative_shadow_roots(&self, intended_parent: &NodeId) -> bool {
        self.inner.allow_declarative_shadow_roots(intended_parent)
    }

    fn attach_declarative_shadow(
        &self,
        location: &NodeId,
        template: &NodeId,
        attrs: &[Attribute],
    ) -> bool {
        self.inner
            .attach_declarative_shadow(location, template, attrs)
    }

    fn maybe_clone_an_option_into_selectedcontent(&self, option: &NodeId) {
        self.inner
            .maybe_clone_an_option_into_selectedcontent(option);
    }
}
