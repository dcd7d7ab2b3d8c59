//! The extractor's reduced parse tree against scraper's full DOM.
//!
//! `extract` builds its own minimal tree from html5ever's tree builder
//! (what scraper's DOM kept but extraction never read was most of the
//! parse stage's cost besides tokenising). This test parses the same pages
//! with scraper and walks its DOM the way the extractor used to, and checks
//! that both list the same scripts with the same attributes and text: the
//! conformance pages, the sample pages, and a few hundred of the
//! benchmark's generated pages.

use std::path::Path;

use scraper::{Html, Node};
use scriptscrape::extract::{Extractor, Script};
use url::Url;

#[path = "../benches/pages.rs"]
pub mod pages;

const HTML_NS: &str = "http://www.w3.org/1999/xhtml";
const SVG_NS: &str = "http://www.w3.org/2000/svg";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";

/// What both sides must agree on for one script element.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    svg: bool,
    src: Option<String>,
    type_attr: Option<String>,
    flags: [bool; 3],
    integrity: Option<String>,
    crossorigin: Option<String>,
    text: Option<String>,
}

fn ours(url: &Url, html: &str) -> Vec<Seen> {
    Extractor::new()
        .keep_inline_text(true)
        .extract(url, html)
        .into_iter()
        .map(|s: Script| Seen {
            svg: s.svg,
            src: s.src.map(|src| src.as_str().to_owned()),
            type_attr: s.type_attr,
            flags: [s.is_async, s.defer, s.nomodule],
            integrity: s.integrity,
            crossorigin: s.crossorigin,
            text: s.inline.and_then(|i| i.text),
        })
        .collect()
}

/// scraper's DOM, walked in tree order with template contents skipped.
fn scrapers(url: &Url, html: &str) -> Vec<Seen> {
    let doc = Html::parse_document(html);
    let mut base: Option<String> = None;
    let mut scripts = Vec::new();
    let mut in_template = 0usize;
    for edge in doc.tree.root().traverse() {
        use ego_tree::iter::Edge;
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Fragment => in_template += 1,
                Node::Element(el) if in_template == 0 => {
                    let (ns, local) = (&*el.name.ns, &*el.name.local);
                    if local == "script" && (ns == HTML_NS || ns == SVG_NS) {
                        scripts.push((el, node));
                    } else if local == "base" && ns == HTML_NS && base.is_none() {
                        base = el.attr("href").map(str::to_owned);
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Fragment = node.value() {
                    in_template -= 1;
                }
            }
        }
    }
    let base = base
        .and_then(|href| url.join(&href).ok())
        .filter(|u| !matches!(u.scheme(), "data" | "javascript"))
        .unwrap_or_else(|| url.clone());
    scripts
        .into_iter()
        .map(|(el, node)| {
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
            }
        })
        .collect()
}

#[test]
fn reduced_tree_lists_the_same_scripts_as_scrapers_dom() {
    let url = Url::parse("https://www.example.com/dir/page.html").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut pages: Vec<(String, String)> = Vec::new();
    for dir in ["conformance/pages", "html"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            pages.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    for n in 0..120 {
        let size = if n % 3 == 0 {
            pages::Size::Small
        } else {
            pages::Size::Realistic
        };
        pages.push((format!("generated page {n}"), pages::page(n, size)));
    }

    let mut differ = Vec::new();
    let mut scripts = 0;
    for (name, html) in &pages {
        // scraper's own tree sink never marks MathML annotation-xml
        // integration points, so it parses their HTML content as MathML;
        // the extractor is right there (see the conformance test).
        if html.contains("annotation-xml") {
            continue;
        }
        let (a, b) = (ours(&url, html), scrapers(&url, html));
        scripts += a.len();
        if a != b {
            differ.push(format!("{name}:\n  ours:    {a:?}\n  scraper: {b:?}"));
        }
    }
    assert!(scripts > 1_500, "only {scripts} scripts compared");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
