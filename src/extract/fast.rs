//! The fast way to find a document's scripts: one pass over the markup,
//! no tree.
//!
//! html5ever builds the whole tree a browser would, character by
//! character, for a job that needs a few facts: which start tags make
//! script elements, where they are (inside `<head>`, inside a
//! `<template>`, in SVG), the first `<base href>`, the CSP `<meta>`s of the
//! head, and the links. This scanner tokenizes as the HTML standard says
//! (tags and attributes, character references in attribute values,
//! comments, the raw-text, RCDATA and script-data states, CDATA in foreign
//! content), and follows only the tree-construction facts that decide
//! those: the head/body phase, template contents, foreign content and its
//! integration points, and tables, where foster parenting moves elements
//! ahead of the table.
//!
//! It never guesses. Whenever the document does something whose effect on
//! those facts this scanner does not follow (foster parenting, markup
//! inside an integration point, an end tag that leaves foreign content by
//! way of the HTML elements around it, a frameset, a character reference
//! in text where whitespace matters, a `<meta>` that would change a
//! guessed encoding), it answers [`Unsure`], and the caller parses the page
//! with html5ever instead. The differential tests hold the two to the same
//! records on every page the scanner answers.

use std::borrow::Cow;

use encoding_rs::Encoding;
use memchr::{memchr, memchr2, memmem};

use super::found::{Attr, AttrNs, Found, FoundLink, FoundScript};

/// How a document is scanned.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// List the links too.
    pub links: bool,
    /// The document was decoded in this encoding on a guess: a `<meta>`
    /// naming another makes the scan unsure (html5ever's path decodes the
    /// page again, as a browser does).
    pub tentative: Option<&'static Encoding>,
}

/// The scanner cannot be sure of the records: the page goes to html5ever.
/// Says what it met, for measuring why pages fall back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsure(pub &'static str);

/// Scans `html` (decoded text) for what extraction reads of it.
pub fn scan(html: &str, options: Options) -> Result<Found<'_>, Unsure> {
    let mut scan = Scan {
        s: html,
        b: html.as_bytes(),
        pos: 0,
        options,
        found: Found::default(),
        phase: Phase::BeforeHead,
        templates: 0,
        template_anchors: 0,
        anchor_behind_marker: false,
        outer_tables: Vec::new(),
        tables: Vec::new(),
        foreign: Vec::new(),
        done: false,
    };
    scan.run()?;
    Ok(scan.found)
}

/// Where the tree builder is, as far as a script's place goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The initial, "before html" and "before head" modes.
    BeforeHead,
    InHead,
    AfterHead,
    /// The body and everything after it.
    Body,
}

/// An open table-structure element, outside templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TableElement {
    Table,
    /// `tbody`, `thead` or `tfoot`, by name.
    Section(Section),
    Row,
    /// `td` (false) or `th` (true).
    Cell(bool),
    Caption,
    ColGroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Body,
    Head,
    Foot,
}

impl Section {
    fn of(name: &str) -> Option<Section> {
        match name {
            "tbody" => Some(Section::Body),
            "thead" => Some(Section::Head),
            "tfoot" => Some(Section::Foot),
            _ => None,
        }
    }
}

/// An open foreign (SVG or MathML) element.
#[derive(Clone, Debug)]
struct Foreign {
    /// The tag name as the tokenizer gave it (lower case).
    name: String,
    svg: bool,
    /// An HTML or MathML text integration point (or `annotation-xml`),
    /// where start tags would be parsed as HTML.
    integration: bool,
}

/// What the tokenizer does after a start tag.
enum After {
    Data,
    /// Raw text (RAWTEXT or RCDATA) up to `</name`.
    RawText,
    /// An HTML script's data, recorded as script number `Some(n)`.
    Script(Option<usize>),
    /// An SVG script's text (recorded as `Some(n)`): markup in it makes
    /// the scan unsure.
    SvgScript(Option<usize>),
    /// The rest of the document is text.
    Plaintext,
}

/// One attribute of a tag, as byte ranges of the input.
#[derive(Clone, Copy, Debug)]
struct RawAttr {
    name: (usize, usize),
    value: Option<(usize, usize)>,
}

/// Attributes by name, decoded.
type Attrs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A start or end tag.
struct Tag<'a> {
    name: Cow<'a, str>,
    self_closing: bool,
    attrs: Vec<RawAttr>,
}

struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    options: Options,
    found: Found<'a>,
    phase: Phase,
    /// Open `<template>`s: their contents are not the document's.
    templates: u32,
    /// `<a>` start tags in open templates not matched by an `</a>`: one
    /// left open when its template closes is brought back into the
    /// document (the active formatting elements), a link the scan would
    /// not see.
    template_anchors: u32,
    /// An element that puts a marker in the list of active formatting
    /// elements (`object`, a cell, ...) opened in a template after an
    /// `<a>`: an `</a>` then closes nothing, and the `<a>` may outlive the
    /// template.
    anchor_behind_marker: bool,
    /// The table stack outside the outermost open template.
    outer_tables: Vec<TableElement>,
    tables: Vec<TableElement>,
    foreign: Vec<Foreign>,
    /// `<plaintext>`: nothing more is markup.
    done: bool,
}

/// Whitespace as the tokenizer and tree builder see it (CR stands for the
/// LF it becomes).
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

impl<'a> Scan<'a> {
    fn run(&mut self) -> Result<(), Unsure> {
        while !self.done {
            let Some(lt) = memchr(b'<', &self.b[self.pos..]) else {
                self.text(self.pos, self.b.len())?;
                return Ok(());
            };
            let lt = self.pos + lt;
            self.text(self.pos, lt)?;
            self.pos = lt;
            match self.b.get(lt + 1) {
                None => {
                    // A lone "<" at the end: text.
                    self.text_char()?;
                    return Ok(());
                }
                Some(b'!') => self.markup_declaration(),
                Some(b'/') => self.end_tag_open()?,
                Some(b'?') => self.skip_past(b'>', lt + 2),
                Some(c) if c.is_ascii_alphabetic() => self.start_tag()?,
                Some(_) => {
                    self.text_char()?;
                    self.pos = lt + 1;
                }
            }
        }
        Ok(())
    }

    /// Moves past the next `needle` at or after `from` (to the end when
    /// there is none).
    fn skip_past(&mut self, needle: u8, from: usize) {
        self.pos = match memchr(needle, &self.b[from.min(self.b.len())..]) {
            Some(i) => from + i + 1,
            None => self.b.len(),
        };
    }

    /// `<!`: a comment, a DOCTYPE, CDATA in foreign content, or a bogus
    /// comment.
    fn markup_declaration(&mut self) {
        let at = self.pos;
        let rest = &self.b[at + 2..];
        if rest.starts_with(b"--") {
            self.pos = comment_end(self.b, at + 4);
        } else if rest.starts_with(b"[CDATA[") && !self.foreign.is_empty() {
            self.pos = match memmem::find(&self.b[at + 9..], b"]]>") {
                Some(i) => at + 9 + i + 3,
                None => self.b.len(),
            };
        } else {
            // DOCTYPE and bogus comments alike end at the first '>'.
            self.skip_past(b'>', at + 2);
        }
    }

    /// `</`: an end tag, `</>` (nothing), or a bogus comment.
    fn end_tag_open(&mut self) -> Result<(), Unsure> {
        let at = self.pos;
        match self.b.get(at + 2) {
            None => {
                self.text_char()?;
                self.pos = self.b.len();
            }
            Some(b'>') => self.pos = at + 3,
            Some(c) if c.is_ascii_alphabetic() => {
                let Some((tag, next)) = self.tag(at + 2) else {
                    self.pos = self.b.len();
                    return Ok(());
                };
                self.pos = next;
                self.end(&tag.name)?;
            }
            Some(_) => self.skip_past(b'>', at + 2),
        }
        Ok(())
    }

    fn start_tag(&mut self) -> Result<(), Unsure> {
        let Some((tag, next)) = self.tag(self.pos + 1) else {
            // EOF in a tag: the tag is dropped, and the document ends.
            self.pos = self.b.len();
            return Ok(());
        };
        self.pos = next;
        let name = tag.name.clone();
        match self.start(&tag)? {
            After::Data => {}
            After::RawText => self.raw_text(&name),
            After::Script(record) => {
                let (start, end) = self.script_data();
                if let Some(n) = record {
                    self.found.scripts[n].text = self.text_of(start, end);
                }
            }
            After::SvgScript(record) => {
                let (start, end) = self.svg_script_text()?;
                if let Some(n) = record {
                    self.found.scripts[n].text = self.text_of(start, end);
                }
            }
            After::Plaintext => self.done = true,
        }
        Ok(())
    }

    /// Tokenizes the tag whose name starts at `at` (just past `<` or
    /// `</`); `None` when the input ends inside it. Returns the tag and
    /// where the input goes on.
    fn tag(&self, at: usize) -> Option<(Tag<'a>, usize)> {
        let b = self.b;
        let mut pos = at;
        while pos < b.len() && !is_space(b[pos]) && b[pos] != b'/' && b[pos] != b'>' {
            pos += 1;
        }
        let mut tag = Tag {
            name: normalize_name(&self.s[at..pos]),
            self_closing: false,
            attrs: Vec::new(),
        };
        let next = self.attributes(pos, &mut tag)?;
        Some((tag, next))
    }

    /// The attributes of a tag from `pos` (the "before attribute name"
    /// state) to its end; returns where the input goes on, `None` at EOF.
    fn attributes(&self, mut pos: usize, tag: &mut Tag) -> Option<usize> {
        let b = self.b;
        loop {
            while pos < b.len() && is_space(b[pos]) {
                pos += 1;
            }
            match b.get(pos)? {
                b'>' => return Some(pos + 1),
                b'/' => {
                    pos += 1;
                    if *b.get(pos)? == b'>' {
                        tag.self_closing = true;
                        return Some(pos + 1);
                    }
                    continue;
                }
                _ => {}
            }
            // An attribute's name: its first character may be '='.
            let name_start = pos;
            pos += 1;
            while pos < b.len() && !is_space(b[pos]) && !matches!(b[pos], b'/' | b'>' | b'=') {
                pos += 1;
            }
            let name = (name_start, pos);
            while pos < b.len() && is_space(b[pos]) {
                pos += 1;
            }
            if *b.get(pos)? != b'=' {
                tag.attrs.push(RawAttr { name, value: None });
                continue;
            }
            pos += 1;
            while pos < b.len() && is_space(b[pos]) {
                pos += 1;
            }
            let value = match *b.get(pos)? {
                quote @ (b'"' | b'\'') => {
                    let close = pos + 1 + memchr(quote, &b[pos + 1..])?;
                    let value = (pos + 1, close);
                    pos = close + 1;
                    value
                }
                // A missing value: the attribute is empty, the tag ends.
                b'>' => (pos, pos),
                _ => {
                    let start = pos;
                    while pos < b.len() && !is_space(b[pos]) && b[pos] != b'>' {
                        pos += 1;
                    }
                    b.get(pos)?;
                    (start, pos)
                }
            };
            tag.attrs.push(RawAttr {
                name,
                value: Some(value),
            });
        }
    }

    /// The attributes of `tag` as the tree builder keeps them: names
    /// normalized, values decoded, only the first of a repeated name. Also
    /// whether a name was repeated.
    fn attrs(&self, tag: &Tag) -> (Attrs<'a>, bool) {
        let mut out: Attrs<'a> = Vec::with_capacity(tag.attrs.len());
        let mut duplicate = false;
        for raw in &tag.attrs {
            let name = normalize_name(&self.s[raw.name.0..raw.name.1]);
            if out.iter().any(|(n, _)| *n == name) {
                duplicate = true;
                continue;
            }
            let value = match raw.value {
                Some((start, end)) => attr_value(&self.s[start..end]),
                None => Cow::Borrowed(""),
            };
            out.push((name, value));
        }
        (out, duplicate)
    }

    /// The decoded value of attribute `name` of `tag` (the first one).
    fn attr(&self, tag: &Tag, name: &str) -> Option<Cow<'a, str>> {
        let raw = tag
            .attrs
            .iter()
            .find(|a| normalize_name(&self.s[a.name.0..a.name.1]) == name)?;
        Some(match raw.value {
            Some((start, end)) => attr_value(&self.s[start..end]),
            None => Cow::Borrowed(""),
        })
    }

    /// Text between tags, from `start` to `end`: only where whitespace
    /// decides something (the head, tables) is it looked at.
    fn text(&mut self, start: usize, end: usize) -> Result<(), Unsure> {
        if start == end || self.templates > 0 || !self.foreign.is_empty() {
            return Ok(());
        }
        let watched = self.phase != Phase::Body
            || matches!(
                self.tables.last(),
                Some(
                    TableElement::Table
                        | TableElement::Section(_)
                        | TableElement::Row
                        | TableElement::ColGroup
                )
            );
        if !watched {
            return Ok(());
        }
        let text = &self.b[start..end];
        if text.contains(&b'&') {
            return Err(Unsure(
                "a character reference in text where whitespace matters",
            ));
        }
        if text.iter().all(|&c| is_space(c)) {
            return Ok(());
        }
        self.non_space_text()
    }

    /// A character that is text and not whitespace (a '<' that starts no
    /// tag).
    fn text_char(&mut self) -> Result<(), Unsure> {
        if self.templates > 0 || !self.foreign.is_empty() {
            return Ok(());
        }
        self.non_space_text()
    }

    fn non_space_text(&mut self) -> Result<(), Unsure> {
        if self.phase != Phase::Body {
            // It ends the head (implied or not) and starts the body.
            self.phase = Phase::Body;
        }
        match self.tables.last() {
            Some(TableElement::ColGroup) => {
                self.tables.pop();
                self.non_space_text()
            }
            Some(TableElement::Table | TableElement::Section(_) | TableElement::Row) => {
                Err(Unsure("text in a table, outside its cells"))
            }
            _ => Ok(()),
        }
    }

    /// Skips raw text (RAWTEXT, RCDATA) to the end tag of `name`, and that
    /// tag.
    fn raw_text(&mut self, name: &str) {
        let b = self.b;
        let mut pos = self.pos;
        while let Some(i) = memchr(b'<', &b[pos..]) {
            let lt = pos + i;
            if let Some(after) = end_tag_named(b, lt, name) {
                self.finish_end_tag(after);
                return;
            }
            pos = lt + 1;
        }
        self.pos = b.len();
    }

    /// Moves past the rest of an end tag whose name ends at `at` (its
    /// attributes, which the tree builder ignores).
    fn finish_end_tag(&mut self, at: usize) {
        let mut ignored = Tag {
            name: Cow::Borrowed(""),
            self_closing: false,
            attrs: Vec::new(),
        };
        self.pos = self.attributes(at, &mut ignored).unwrap_or(self.b.len());
    }

    /// An HTML script's data, from the current position: returns the text's
    /// range and moves past `</script ...>` (the script data states of the
    /// HTML standard, escapes included).
    fn script_data(&mut self) -> (usize, usize) {
        let b = self.b;
        let start = self.pos;
        let mut pos = start;
        // Outside any escape, only '<' matters.
        loop {
            let Some(i) = memchr(b'<', &b[pos..]) else {
                self.pos = b.len();
                return (start, b.len());
            };
            let lt = pos + i;
            if let Some(after) = end_tag_named(b, lt, "script") {
                self.finish_end_tag(after);
                return (start, lt);
            }
            if b[lt + 1..].starts_with(b"!--") {
                // "<!--" starts the escaped states; the two dashes may
                // also end them at once ("<!-->").
                match escaped(b, lt + 4, true) {
                    Escape::EndTag(end_lt, after) => {
                        self.finish_end_tag(after);
                        return (start, end_lt);
                    }
                    Escape::Back(next) => pos = next,
                    Escape::Eof => {
                        self.pos = b.len();
                        return (start, b.len());
                    }
                }
            } else {
                pos = lt + 1;
            }
        }
    }

    /// An SVG script's content, parsed as foreign content: only plain
    /// text up to `</script>` is followed; markup, comments or character
    /// references in it make the scan unsure.
    fn svg_script_text(&mut self) -> Result<(usize, usize), Unsure> {
        let b = self.b;
        let start = self.pos;
        match memchr2(b'<', b'&', &b[start..]) {
            None => {
                self.pos = b.len();
                Ok((start, b.len()))
            }
            Some(i) if b[start + i] == b'<' => match end_tag_named(b, start + i, "script") {
                Some(after) => {
                    self.finish_end_tag(after);
                    Ok((start, start + i))
                }
                None => Err(Unsure("markup inside an SVG script")),
            },
            Some(_) => Err(Unsure("a character reference inside an SVG script")),
        }
    }

    /// A script's text from `start` to `end`, newlines and NULs as the
    /// tokenizer makes them.
    fn text_of(&self, start: usize, end: usize) -> Cow<'a, str> {
        let text = &self.s[start..end];
        if memchr2(b'\r', b'\0', text.as_bytes()).is_none() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    chars.next_if_eq(&'\n');
                    out.push('\n');
                }
                '\0' => out.push('\u{FFFD}'),
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    }
}

impl<'a> Scan<'a> {
    /// A start tag, as the tree builder takes it in the current phase:
    /// what it records, and what the tokenizer does next.
    fn start(&mut self, tag: &Tag<'a>) -> Result<After, Unsure> {
        if !self.foreign.is_empty() {
            return self.start_foreign(tag);
        }
        if self.templates > 0 {
            // Template contents: only the tokenizer's states matter.
            return self.start_html(tag);
        }
        let name: &str = &tag.name;
        match self.phase {
            Phase::BeforeHead => {
                if name == "html" {
                    return Ok(After::Data);
                }
                // <head>, or anything else with a head implied.
                self.phase = Phase::InHead;
                if name == "head" {
                    return Ok(After::Data);
                }
                self.start(tag)
            }
            Phase::InHead => match name {
                "html" | "head" => Ok(After::Data),
                _ if in_head(name) => self.start_html(tag),
                _ => {
                    self.phase = Phase::AfterHead;
                    self.start(tag)
                }
            },
            Phase::AfterHead => match name {
                "body" => {
                    self.phase = Phase::Body;
                    Ok(After::Data)
                }
                "frameset" => Err(Unsure("a frameset")),
                "html" | "head" => Ok(After::Data),
                // Put in the head after all.
                _ if in_head(name) && name != "noscript" => self.start_html(tag),
                _ => {
                    self.phase = Phase::Body;
                    self.start(tag)
                }
            },
            Phase::Body => self.start_in_tables(tag),
        }
    }

    /// A start tag in HTML content where it is inserted where it stands
    /// (the body, a cell, the head, a template).
    fn start_html(&mut self, tag: &Tag<'a>) -> Result<After, Unsure> {
        let name: &str = &tag.name;
        let document = self.templates == 0;
        if !document {
            match name {
                // Directly in a template, <col> starts the column group
                // mode, which then ignores nearly every start tag (no raw
                // text, no foreign content): not followed here.
                "col" => return Err(Unsure("a <col> in a template")),
                "applet" | "marquee" | "object" | "td" | "th" | "caption"
                    if self.template_anchors > 0 =>
                {
                    self.anchor_behind_marker = true;
                }
                _ => {}
            }
        }
        Ok(match name {
            "script" => After::Script(document.then(|| self.record_script(tag, false))),
            "iframe" => {
                if document {
                    self.record_link(tag);
                }
                After::RawText
            }
            "style" | "noframes" | "xmp" | "noembed" | "noscript" | "title" | "textarea" => {
                After::RawText
            }
            "plaintext" => After::Plaintext,
            "template" => {
                if self.templates == 0 {
                    self.outer_tables = std::mem::take(&mut self.tables);
                }
                self.templates += 1;
                After::Data
            }
            "svg" | "math" => {
                if !tag.self_closing {
                    self.foreign.push(Foreign {
                        name: name.to_owned(),
                        svg: name == "svg",
                        integration: false,
                    });
                }
                After::Data
            }
            "base" => {
                if document && self.found.base_href.is_none() {
                    self.found.base_href = self.attr(tag, "href");
                }
                After::Data
            }
            "meta" => {
                self.meta(tag, document)?;
                After::Data
            }
            "a" | "area" => {
                if document {
                    self.record_link(tag);
                } else if name == "a" {
                    self.template_anchors += 1;
                }
                After::Data
            }
            "frameset" => return Err(Unsure("a frameset")),
            // A customizable <select> copies the chosen <option>'s
            // content, scripts included, into it.
            "selectedcontent" => return Err(Unsure("a <selectedcontent>")),
            "table" if document => {
                self.tables.push(TableElement::Table);
                After::Data
            }
            _ => After::Data,
        })
    }

    /// A start tag in the body, where open tables decide what it does.
    fn start_in_tables(&mut self, tag: &Tag<'a>) -> Result<After, Unsure> {
        let name: &str = &tag.name;
        let closes_cell = matches!(
            name,
            "caption" | "col" | "colgroup" | "tbody" | "td" | "tfoot" | "th" | "thead" | "tr"
        );
        match self.tables.last().copied() {
            None => self.start_html(tag),
            Some(TableElement::Cell(_) | TableElement::Caption) if closes_cell => {
                self.tables.pop();
                self.start_in_tables(tag)
            }
            Some(TableElement::Cell(_) | TableElement::Caption) => self.start_html(tag),
            Some(TableElement::ColGroup) => match name {
                "col" | "html" => Ok(After::Data),
                "template" => self.start_html(tag),
                _ => {
                    self.tables.pop();
                    self.start_in_tables(tag)
                }
            },
            Some(TableElement::Row) => match name {
                "td" | "th" => {
                    self.tables.push(TableElement::Cell(name == "th"));
                    Ok(After::Data)
                }
                "caption" | "col" | "colgroup" | "tbody" | "tfoot" | "thead" | "tr" | "table" => {
                    self.tables.pop();
                    self.start_in_tables(tag)
                }
                _ => self.start_in_table(tag),
            },
            Some(TableElement::Section(_)) => match name {
                "tr" => {
                    self.tables.push(TableElement::Row);
                    Ok(After::Data)
                }
                "td" | "th" => {
                    self.tables.push(TableElement::Row);
                    self.start_in_tables(tag)
                }
                "caption" | "col" | "colgroup" | "tbody" | "tfoot" | "thead" | "table" => {
                    self.tables.pop();
                    self.start_in_tables(tag)
                }
                _ => self.start_in_table(tag),
            },
            Some(TableElement::Table) => self.start_in_table(tag),
        }
    }

    /// The "in table" insertion mode's start tags.
    fn start_in_table(&mut self, tag: &Tag<'a>) -> Result<After, Unsure> {
        let name: &str = &tag.name;
        match name {
            "caption" => self.tables.push(TableElement::Caption),
            // A <col> implies its <colgroup>, where it is void.
            "colgroup" | "col" => self.tables.push(TableElement::ColGroup),
            "tbody" | "thead" | "tfoot" => {
                let section = Section::of(name).unwrap_or(Section::Body);
                self.tables.push(TableElement::Section(section));
            }
            "tr" | "td" | "th" => {
                self.tables.push(TableElement::Section(Section::Body));
                return self.start_in_tables(tag);
            }
            "table" => {
                // Closes the open table, and opens another after it.
                if let Some(at) = self.tables.iter().rposition(|t| *t == TableElement::Table) {
                    self.tables.truncate(at);
                }
                return self.start_in_tables(tag);
            }
            "style" | "script" | "template" => return self.start_html(tag),
            "form" => {}
            "input"
                if self
                    .attr(tag, "type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("hidden")) => {}
            _ => return Err(Unsure("an element foster-parented out of a table")),
        }
        Ok(After::Data)
    }

    /// A start tag in foreign content.
    fn start_foreign(&mut self, tag: &Tag<'a>) -> Result<After, Unsure> {
        let Some(current) = self.foreign.last() else {
            return self.start_html(tag);
        };
        if current.integration {
            return Err(Unsure("markup inside an SVG or MathML integration point"));
        }
        if self.breaks_out(tag) {
            self.leave_foreign()?;
            return self.start(tag);
        }
        let svg = current.svg;
        let name: &str = &tag.name;
        if svg && name == "script" {
            let record = (self.templates == 0).then(|| self.record_script(tag, true));
            return Ok(if tag.self_closing {
                After::Data
            } else {
                After::SvgScript(record)
            });
        }
        if !tag.self_closing {
            let integration = if svg {
                matches!(name, "foreignobject" | "desc" | "title")
            } else {
                matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml")
            };
            self.foreign.push(Foreign {
                name: name.to_owned(),
                svg,
                integration,
            });
        }
        Ok(After::Data)
    }

    /// Whether a start tag in foreign content is an HTML one that ends it.
    fn breaks_out(&self, tag: &Tag) -> bool {
        match &*tag.name {
            "b" | "big" | "blockquote" | "body" | "br" | "center" | "code" | "dd" | "div"
            | "dl" | "dt" | "em" | "embed" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "head"
            | "hr" | "i" | "img" | "li" | "listing" | "menu" | "meta" | "nobr" | "ol" | "p"
            | "pre" | "ruby" | "s" | "small" | "span" | "strong" | "strike" | "sub" | "sup"
            | "table" | "tt" | "u" | "ul" | "var" => true,
            "font" => ["color", "face", "size"]
                .iter()
                .any(|a| self.attr(tag, a).is_some()),
            _ => false,
        }
    }

    /// Pops foreign elements as an HTML tag breaking out does; unsure when
    /// an integration point is left open (the tag then goes inside it).
    fn leave_foreign(&mut self) -> Result<(), Unsure> {
        while self.foreign.last().is_some_and(|f| !f.integration) {
            self.foreign.pop();
        }
        if self.foreign.is_empty() {
            Ok(())
        } else {
            Err(Unsure(
                "HTML markup inside an SVG or MathML integration point",
            ))
        }
    }

    /// An end tag, as the tree builder takes it.
    fn end(&mut self, name: &str) -> Result<(), Unsure> {
        if !self.foreign.is_empty() {
            if name == "br" || name == "p" {
                self.leave_foreign()?;
                return self.end(name);
            }
            return match self.foreign.iter().rposition(|f| f.name == name) {
                Some(at) => {
                    self.foreign.truncate(at);
                    Ok(())
                }
                None => Err(Unsure(
                    "an end tag that leaves SVG or MathML by the HTML around it",
                )),
            };
        }
        if name == "template" {
            if self.templates > 0 {
                let open = self.template_anchors > 0 || self.anchor_behind_marker;
                if open && self.options.links {
                    return Err(Unsure("an <a> left open in a template"));
                }
                self.templates -= 1;
                if self.templates == 0 {
                    self.tables = std::mem::take(&mut self.outer_tables);
                    self.anchor_behind_marker = false;
                }
            }
            return Ok(());
        }
        if self.templates > 0 {
            if name == "a" {
                self.template_anchors = self.template_anchors.saturating_sub(1);
            }
            return Ok(());
        }
        let ends_head = matches!(name, "body" | "html" | "br");
        match self.phase {
            Phase::BeforeHead if ends_head || name == "head" => {
                self.phase = Phase::InHead;
                self.end(name)
            }
            Phase::InHead if name == "head" => {
                self.phase = Phase::AfterHead;
                Ok(())
            }
            Phase::InHead if ends_head => {
                self.phase = Phase::AfterHead;
                self.end(name)
            }
            Phase::AfterHead if ends_head => {
                self.phase = Phase::Body;
                self.end(name)
            }
            Phase::Body => {
                self.end_in_tables(name);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An end tag in the body, where open tables decide what it does.
    fn end_in_tables(&mut self, name: &str) {
        let Some(top) = self.tables.last().copied() else {
            return;
        };
        let reprocess = match (top, name) {
            (TableElement::Cell(th), "td" | "th") => {
                if (name == "th") == th {
                    self.tables.pop();
                }
                false
            }
            (TableElement::Cell(_) | TableElement::Row, "tbody" | "thead" | "tfoot") => {
                let open = self.section_open(Section::of(name));
                if open {
                    self.tables.pop();
                }
                open
            }
            (TableElement::Cell(_), "tr") => {
                self.tables.pop();
                true
            }
            (TableElement::Caption, "caption")
            | (TableElement::ColGroup, "colgroup")
            | (TableElement::Row, "tr") => {
                self.tables.pop();
                false
            }
            (TableElement::Section(section), "tbody" | "thead" | "tfoot") => {
                if Section::of(name) == Some(section) {
                    self.tables.pop();
                }
                false
            }
            (TableElement::Table, "table") => {
                self.tables.pop();
                false
            }
            (TableElement::ColGroup, "col") => false,
            (TableElement::ColGroup, _) => {
                self.tables.pop();
                true
            }
            (_, "table") => {
                self.tables.pop();
                true
            }
            _ => false,
        };
        if reprocess {
            self.end_in_tables(name);
        }
    }

    /// Whether the table section around the current row is `section`.
    fn section_open(&self, section: Option<Section>) -> bool {
        for t in self.tables.iter().rev() {
            match t {
                TableElement::Section(s) => return Some(*s) == section,
                TableElement::Table => return false,
                _ => {}
            }
        }
        false
    }

    /// Records script element `tag`; returns its number.
    fn record_script(&mut self, tag: &Tag<'a>, svg: bool) -> usize {
        let (attrs, duplicate_attrs) = self.attrs(tag);
        let attrs = attrs
            .into_iter()
            .map(|(name, value)| {
                let (ns, name) = if svg {
                    foreign_attr(name)
                } else {
                    (AttrNs::None, name)
                };
                Attr { ns, name, value }
            })
            .collect();
        let in_head = !svg && matches!(self.phase, Phase::InHead | Phase::AfterHead);
        self.found.scripts.push(FoundScript {
            svg,
            attrs,
            duplicate_attrs,
            text: Cow::Borrowed(""),
            in_head,
        });
        self.found.scripts.len() - 1
    }

    fn record_link(&mut self, tag: &Tag<'a>) {
        if self.options.links {
            // <a> and <area> link by href (with a rel); <iframe> loads its
            // src.
            let anchor = tag.name != "iframe";
            let link = FoundLink {
                href: if anchor { self.attr(tag, "href") } else { None },
                src: if anchor { None } else { self.attr(tag, "src") },
                rel: if anchor { self.attr(tag, "rel") } else { None },
            };
            self.found.links.push(link);
        }
    }

    /// A `<meta>`: a CSP policy when the head holds it; unsure when it
    /// names another encoding than the one guessed.
    fn meta(&mut self, tag: &Tag<'a>, document: bool) -> Result<(), Unsure> {
        if let Some(guessed) = self.options.tentative
            && let Some(named) = self.meta_encoding(tag)
            && crate::charset::declared(named) != guessed
        {
            return Err(Unsure(
                "a <meta> naming another encoding than the one guessed",
            ));
        }
        let in_head = matches!(self.phase, Phase::InHead | Phase::AfterHead);
        if document
            && in_head
            && self
                .attr(tag, "http-equiv")
                .is_some_and(|v| v.eq_ignore_ascii_case("content-security-policy"))
            && let Some(content) = self.attr(tag, "content").filter(|c| !c.is_empty())
        {
            let before = self.found.scripts.len();
            self.found.csp_metas.push((content, before));
        }
        Ok(())
    }

    /// The encoding a `<meta>` names, as the tree builder reads it.
    fn meta_encoding(&self, tag: &Tag) -> Option<&'static Encoding> {
        match self.attr(tag, "charset") {
            Some(label) => Encoding::for_label(label.as_bytes()),
            None => self
                .attr(tag, "http-equiv")
                .filter(|v| v.eq_ignore_ascii_case("content-type"))
                .and(self.attr(tag, "content"))
                .and_then(|content| crate::charset::from_meta_content(&content)),
        }
    }
}

/// The start tags the "in head" mode keeps in the head.
fn in_head(name: &str) -> bool {
    matches!(
        name,
        "base"
            | "basefont"
            | "bgsound"
            | "link"
            | "meta"
            | "title"
            | "noscript"
            | "noframes"
            | "style"
            | "script"
            | "template"
    )
}

/// The namespace and local name of an attribute of a foreign element
/// ("adjust foreign attributes").
fn foreign_attr(name: Cow<'_, str>) -> (AttrNs, Cow<'_, str>) {
    if let Some(local) = name.strip_prefix("xlink:")
        && matches!(
            local,
            "actuate" | "arcrole" | "href" | "role" | "show" | "title" | "type"
        )
    {
        return (AttrNs::XLink, Cow::Owned(local.to_owned()));
    }
    if matches!(&*name, "xml:lang" | "xml:space" | "xmlns" | "xmlns:xlink") {
        return (AttrNs::Other, name);
    }
    (AttrNs::None, name)
}

/// What follows "<!--" inside a script's data.
enum Escape {
    /// The script's end tag at this '<', the tag's name ending at the
    /// second offset.
    EndTag(usize, usize),
    /// Back to the plain script data state at this offset.
    Back(usize),
    Eof,
}

/// The script data escaped states, from `pos` (just past "<!--"; `dashes`:
/// the two dashes count toward "-->"), to where they end.
fn escaped(b: &[u8], mut pos: usize, dashes: bool) -> Escape {
    // In "escaped dash dash" after "<!--": a '>' right away ends it.
    let mut run = if dashes { 2 } else { 0 };
    loop {
        let Some(&c) = b.get(pos) else {
            return Escape::Eof;
        };
        match c {
            b'-' => {
                run += 1;
                pos += 1;
            }
            b'>' if run >= 2 => return Escape::Back(pos + 1),
            b'<' => {
                run = 0;
                if let Some(after) = end_tag_named(b, pos, "script") {
                    return Escape::EndTag(pos, after);
                }
                if let Some(after) = start_tag_named(b, pos, "script") {
                    // Double escaped: "</script>" ends only that, not the
                    // script; "-->" still returns to script data.
                    match double_escaped(b, after) {
                        Some(next) => {
                            pos = next;
                            continue;
                        }
                        None => return Escape::Eof,
                    }
                }
                pos += 1;
            }
            _ => {
                run = 0;
                pos += 1;
            }
        }
    }
}

/// The script data double escaped states, from just past `<script`'s
/// name: returns where the escaped state resumes, `None` at EOF. "-->"
/// there goes straight back to script data, which the caller's escaped
/// loop also sees ('>' after two dashes).
fn double_escaped(b: &[u8], mut pos: usize) -> Option<usize> {
    let mut run = 0;
    loop {
        let c = *b.get(pos)?;
        match c {
            b'-' => {
                run += 1;
                pos += 1;
            }
            // "-->": back to script data; the caller's escaped loop sees
            // the dashes and this '>' and returns there too.
            b'>' if run >= 2 => return Some(pos - 2),
            b'<' => {
                run = 0;
                if b.get(pos + 1) == Some(&b'/')
                    && let Some(after) = name_then_delimiter(b, pos + 2, "script")
                {
                    // "</script" + delimiter: back to escaped, at the
                    // delimiter.
                    return Some(after);
                }
                pos += 1;
            }
            _ => {
                run = 0;
                pos += 1;
            }
        }
    }
}

/// If `name` (ASCII case-insensitively) starts at `at` and is followed by
/// whitespace, '/' or '>', the offset just past the name.
fn name_then_delimiter(b: &[u8], at: usize, name: &str) -> Option<usize> {
    let end = at + name.len();
    let candidate = b.get(at..end)?;
    if !candidate.eq_ignore_ascii_case(name.as_bytes()) {
        return None;
    }
    match b.get(end) {
        Some(&c) if is_space(c) || c == b'/' || c == b'>' => Some(end),
        _ => None,
    }
}

/// An end tag `</name` + delimiter at `lt`: the offset past the name.
fn end_tag_named(b: &[u8], lt: usize, name: &str) -> Option<usize> {
    if b.get(lt + 1) != Some(&b'/') {
        return None;
    }
    name_then_delimiter(b, lt + 2, name)
}

/// A start tag `<name` + delimiter at `lt`: the offset past the name.
fn start_tag_named(b: &[u8], lt: usize, name: &str) -> Option<usize> {
    name_then_delimiter(b, lt + 1, name)
}

/// Where a comment whose text starts at `from` (past "<!--") ends: past
/// "-->" or "--!>", or at once for "<!-->" and "<!--->"; the end of the
/// input when it does not.
fn comment_end(b: &[u8], from: usize) -> usize {
    match b.get(from..) {
        Some([b'>', ..]) => return from + 1,
        Some([b'-', b'>', ..]) => return from + 2,
        _ => {}
    }
    let mut pos = from;
    while let Some(i) = memmem::find(&b[pos..], b"--") {
        let mut at = pos + i + 2;
        while b.get(at) == Some(&b'-') {
            at += 1;
        }
        match b.get(at) {
            Some(b'>') => return at + 1,
            Some(b'!') if b.get(at + 1) == Some(&b'>') => return at + 2,
            None => return b.len(),
            _ => pos = at,
        }
    }
    b.len()
}

/// A tag or attribute name as the tokenizer makes it: ASCII lower case,
/// NUL replaced.
fn normalize_name(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|c| c.is_ascii_uppercase() || c == 0) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        raw.chars()
            .map(|c| match c {
                '\0' => '\u{FFFD}',
                c => c.to_ascii_lowercase(),
            })
            .collect(),
    )
}

/// An attribute value as the tokenizer makes it: character references
/// decoded (with the attribute rules for a missing semicolon), newlines
/// normalized, NULs replaced.
fn attr_value(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|&c| matches!(c, b'&' | b'\r' | b'\0')) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut pos = 0;
    while pos < raw.len() {
        let c = bytes[pos];
        match c {
            b'\r' => {
                out.push('\n');
                pos += if bytes.get(pos + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\0' => {
                out.push('\u{FFFD}');
                pos += 1;
            }
            b'&' => pos = char_ref(raw, pos + 1, &mut out),
            _ => {
                // Copies up to the next special byte at once.
                let next = bytes[pos..]
                    .iter()
                    .position(|&c| matches!(c, b'&' | b'\r' | b'\0'))
                    .map_or(raw.len(), |i| pos + i);
                out.push_str(&raw[pos..next]);
                pos = next;
            }
        }
    }
    Cow::Owned(out)
}

/// Decodes the character reference after an '&' at `at - 1` of an
/// attribute value into `out`; returns where the value goes on.
fn char_ref(raw: &str, at: usize, out: &mut String) -> usize {
    let bytes = raw.as_bytes();
    match bytes.get(at) {
        Some(b'#') => numeric_ref(raw, at + 1, out),
        Some(c) if c.is_ascii_alphanumeric() => named_ref(raw, at, out),
        _ => {
            out.push('&');
            at
        }
    }
}

fn numeric_ref(raw: &str, at: usize, out: &mut String) -> usize {
    let bytes = raw.as_bytes();
    let hex = matches!(bytes.get(at), Some(b'x' | b'X'));
    let digits_at = if hex { at + 1 } else { at };
    let radix = if hex { 16 } else { 10 };
    let mut pos = digits_at;
    let mut value: u32 = 0;
    let mut too_big = false;
    while let Some(d) = bytes.get(pos).and_then(|&c| (c as char).to_digit(radix)) {
        match value.checked_mul(radix).and_then(|v| v.checked_add(d)) {
            Some(v) => value = v,
            None => too_big = true,
        }
        pos += 1;
    }
    if pos == digits_at {
        // No digits: "&#" (and the x) stay as written; the value goes on
        // at the '#'.
        out.push('&');
        return at - 1;
    }
    if bytes.get(pos) == Some(&b';') {
        pos += 1;
    }
    out.push(numeric_char(value, too_big));
    pos
}

/// The character a numeric reference stands for, as html5ever decides.
fn numeric_char(value: u32, too_big: bool) -> char {
    match value {
        _ if too_big || value > 0x10FFFF => '\u{FFFD}',
        0 | 0xD800..=0xDFFF => '\u{FFFD}',
        0x80..=0x9F => html5ever::data::C1_REPLACEMENTS[(value - 0x80) as usize]
            .or_else(|| char::from_u32(value))
            .unwrap_or('\u{FFFD}'),
        v => char::from_u32(v).unwrap_or('\u{FFFD}'),
    }
}

fn named_ref(raw: &str, at: usize, out: &mut String) -> usize {
    let entities = &html5ever::data::NAMED_ENTITIES;
    let bytes = raw.as_bytes();
    let mut matched: Option<(usize, (u32, u32))> = None;
    let mut end = at;
    // The longest name in the table is 32 characters.
    while end < bytes.len() && end - at < 40 {
        let next = end + 1;
        let Some(&value) = raw.get(at..next).and_then(|name| entities.get(name)) else {
            break;
        };
        if value.0 != 0 {
            matched = Some((next, value));
        }
        end = next;
    }
    let Some((name_end, (c1, c2))) = matched else {
        out.push('&');
        return at;
    };
    let last = bytes[name_end - 1];
    let after = bytes.get(name_end).copied();
    let historical = last != b';' && after.is_some_and(|c| c == b'=' || c.is_ascii_alphanumeric());
    if historical {
        out.push('&');
        return at;
    }
    for code in [c1, c2] {
        if code != 0
            && let Some(c) = char::from_u32(code)
        {
            out.push(c);
        }
    }
    name_end
}
