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

use super::found::Found;

mod tokenize;
mod tree;

use tokenize::{Escape, attr_value, comment_end, end_tag_named, escaped, normalize_name};

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
        anchor_out_of_scope: false,
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
    /// A `<table>` or `<template>` opened in a template after an `<a>`:
    /// an `</a>` may then close nothing (not in scope), so `</a>`s no
    /// longer count as closing the template's `<a>`s.
    anchor_out_of_scope: bool,
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
        // Past a few attributes, names seen are looked up in a set: a
        // tag with 100,000 attributes would otherwise take minutes.
        let mut seen: Option<std::collections::HashSet<Cow<'a, str>>> = None;
        for raw in &tag.attrs {
            let name = normalize_name(&self.s[raw.name.0..raw.name.1]);
            if seen.is_none() && out.len() >= 16 {
                seen = Some(out.iter().map(|(n, _)| n.clone()).collect());
            }
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(name.clone()),
                None => out.iter().any(|(n, _)| *n == name),
            };
            if repeated {
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
        let watched = self.phase != Phase::Body || self.outside_cells();
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
                match escaped(b, lt + 4) {
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
