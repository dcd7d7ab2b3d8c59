//! The tree-construction facts the scan follows: the head phase,
//! template contents, foreign content and tables, and what is recorded
//! where (see the module above).

use std::borrow::Cow;

use encoding_rs::Encoding;

use super::{After, Foreign, Phase, Scan, Section, TableElement, Tag, Unsure};
use crate::extract::found::{Attr, AttrNs, FoundLink, FoundScript};

impl<'a> Scan<'a> {
    /// A start tag, as the tree builder takes it in the current phase:
    /// what it records, and what the tokenizer does next.
    pub(super) fn start(&mut self, tag: &Tag<'a>) -> Result<After, Unsure> {
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
                // The other elements an `</a>` cannot reach past ("has an
                // element in scope"): while one is open, that `</a>`
                // closes nothing.
                "table" | "template" if self.template_anchors > 0 => {
                    self.anchor_out_of_scope = true;
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
    pub(super) fn end(&mut self, name: &str) -> Result<(), Unsure> {
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
                    self.anchor_out_of_scope = false;
                }
            }
            return Ok(());
        }
        if self.templates > 0 {
            if name == "a" && !self.anchor_out_of_scope {
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
                if name == "br" && self.outside_cells() {
                    // Taken for <br>, foster-parented, which first
                    // reconstructs the active formatting elements: their
                    // clones go before the table, and later scripts into
                    // them.
                    return Err(Unsure("a </br> in a table, outside its cells"));
                }
                self.end_in_tables(name);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether the current node is a table element outside its cells
    /// (where text and most markup are foster-parented).
    pub(super) fn outside_cells(&self) -> bool {
        matches!(
            self.tables.last(),
            Some(
                TableElement::Table
                    | TableElement::Section(_)
                    | TableElement::Row
                    | TableElement::ColGroup
            )
        )
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
        // A charset naming no encoding is passed over for the http-equiv
        // (the prescan's "otherwise"), as the tree path does (sink.rs).
        self.attr(tag, "charset")
            .and_then(|label| Encoding::for_label(label.as_bytes()))
            .or_else(|| {
                self.attr(tag, "http-equiv")
                    .filter(|v| v.eq_ignore_ascii_case("content-type"))
                    .and(self.attr(tag, "content"))
                    .and_then(|content| crate::charset::from_meta_content(&content))
            })
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
