//! The fast scan against html5ever's tree: on every page the scan is sure
//! of, the same records (scripts with every field, CSP metas, links); on
//! the others, the page goes to html5ever. Over the fixture pages, the
//! conformance pages and the benchmark's generated pages.

use std::collections::BTreeMap;
use std::path::Path;

use scriptscrape::extract::Extractor;
use url::Url;

use crate::differential::pages;

/// What the two ways made of one page.
enum Compared {
    Same,
    /// The scan was unsure, for this reason.
    FellBack(&'static str),
    Differs(String),
}

fn compare(url: &Url, html: &str) -> Compared {
    let extractor = Extractor::new().keep_inline_text(true).links(true);
    let tree = extractor.tree_only(true).extract_page(url, html);
    match extractor.extract_page_fast(url, html) {
        Err(unsure) => Compared::FellBack(unsure.0),
        Ok(fast) if fast == tree => Compared::Same,
        Ok(fast) => Compared::Differs(format!("fast scan: {fast:#?}\nhtml5ever: {tree:#?}")),
    }
}

/// Compares every page; returns the fallbacks by reason. Fails naming
/// each page whose records differ.
fn check_all(pages: &[(String, String)]) -> BTreeMap<&'static str, usize> {
    let url = Url::parse("https://www.example.com/dir/page.html").expect("a URL");
    let mut fell_back = BTreeMap::new();
    let mut differ = Vec::new();
    for (name, html) in pages {
        match compare(&url, html) {
            Compared::Same => {}
            Compared::FellBack(why) => *fell_back.entry(why).or_default() += 1,
            Compared::Differs(how) => differ.push(format!("{name}:\n{html}\n{how}")),
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} pages differ:\n{}",
        differ.len(),
        pages.len(),
        differ.join("\n\n")
    );
    fell_back
}

fn fixture_pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut pages = Vec::new();
    for dir in ["html", "conformance/pages"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("fixtures")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "html"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).expect("a fixture");
            let html = String::from_utf8_lossy(&bytes).into_owned();
            pages.push((path.display().to_string(), html));
        }
    }
    pages
}

#[test]
fn the_fast_scan_agrees_with_html5ever_on_the_fixture_and_conformance_pages() {
    let pages = fixture_pages();
    assert!(pages.len() > 150, "{} pages", pages.len());
    let fell_back = check_all(&pages);
    let total: usize = fell_back.values().sum();
    eprintln!("{total} of {} pages fell back: {fell_back:?}", pages.len());
}

#[test]
fn the_fast_scan_agrees_with_html5ever_on_the_benchmark_pages_and_is_sure_of_them() {
    let pages: Vec<(String, String)> = (0..400)
        .map(|n| {
            let size = if n % 2 == 0 {
                pages::Size::Realistic
            } else {
                pages::Size::Small
            };
            (format!("generated page {n}"), pages::page(n, size))
        })
        .collect();
    let fell_back = check_all(&pages);
    assert!(fell_back.is_empty(), "{fell_back:?}");
}

/// Constructs that move, copy, hide or reveal script elements, each on a
/// page of its own: the scan agrees or falls back.
#[test]
fn the_fast_scan_agrees_or_falls_back_on_hand_made_hard_cases() {
    let cases = [
        "<select><button><selectedcontent></selectedcontent></button>\
         <option selected><script>copied()</script></option></select>",
        "<table><script>a()</script><div><script>b()</script></div></table>",
        "<table><tr><td><script>a()</script></td></tr>x<script>b()</script></table>",
        "<p><b></p><table>x<script>a()</script></table>",
        "<b><div><script>a()</script></b><script>b()</script>",
        "<a href=1><div><a href=2>x</a></div></a><script src=s.js></script>",
        "<p><a href=z></p>text<script>t()</script><a href=z2>",
        "<head></head><script>after_head()</script><body>",
        "<head><meta http-equiv=content-security-policy content=\"script-src 'none'\">\
         </head><meta http-equiv=Content-Security-Policy content=\"default-src 'self'\">\
         <script>x()</script><body><meta http-equiv=content-security-policy content=x>",
        "&#32;<script>in_head()</script>",
        "<script>a()</script>&#32;<script>b()</script>",
        "<html><head><template><script>t()</script></head><script>h()</script>",
        "<svg><script>a &amp; b</script><script><![CDATA[c]]></script></svg>",
        "<svg><title><script>html()</script></title><script href=x.js /></svg>",
        "<math><mi><script>html()</script></mi><script>mathml()</script></math>",
        "<div><svg><g></div><script>after()</script>",
        "<script><!--<script></script>still()</script>--></script><script>next()</script>",
        "<script><!--<script>x</script>--></script>end",
        "<script>a<!--b--!>c</script><script>d()</script>",
        "<frameset><script>f()</script></frameset>",
        "<base href=/one/><base href=/two/><script src=a.js></script>",
        "<script src=\"a.js?x=1&amp;y=2&notit;&not&copy=3\" nonce=\"n<script\"></script>",
        "<SCRIPT SRC=UP.JS TYPE=MODULE ASYNC DEFER NOMODULE></SCRIPT>",
        "<script src=a.js src=b.js type=module type=text/javascript></script>",
        "<table><caption><script>c()</script></caption><colgroup><col></colgroup>\
         <tbody><tr><th><script>th()</script></th></tr></tbody></table>",
        "<table><td><table><td><script>nested()</script></table></table><script>out()</script>",
        "<plaintext><script>not()</script>",
        "<noscript><script>not()</script></noscript><script>yes()</script>",
        "<textarea><script>not()</script></textarea><title><script>no()</script></title>",
        "<iframe src=f.html><script>not()</script></iframe><area href=ar.html>",
        "<!--><script>a()</script><!---><script>b()</script><!-- -- --><script>c()</script>",
        "<svg><foreignObject><div><script>x()</script></div></foreignObject></svg>",
        "<svg><p><script>out()</script>",
        "<svg><font color=red><script>out()</script>",
        "<template><svg><style><script>x()</script></style></svg></template><script>y()</script>",
        "\r\n<script>\r\na()\r\n</script>\0<script src='\r\nb.js'></script>",
        "<script",
        "<script src=a.js",
        "<script>unterminated()",
        // Found by an adversarial review.
        "<script type=\"&#\" src=\"a&#z.js?&#x;&#x\"></script>",
        "<template><col><script></template><script>a</script>",
        "<template><col><svg><![CDATA[</svg></template><script>b</script>]]></svg></template>",
        "<template><a href=/x><object></a></template>x",
        "<template><td><a href=/x><marquee></a></template><b>",
        // Found by a second adversarial review.
        "<p><b></p><table><script>1</script></br><script>2</script></table>",
        "<p><b></p><table><tr><script>1</script></br><script>2</script></table>",
        "<p><b></p><table><tbody><script>1</script></br><script>2</script></table>",
        "<p><b></p><table><colgroup></br><script>2</script></table>",
        "<template><b><object></template><table><script>1</script></br><script>2</script></table>",
        "<template><a href=/1><template></a></template><object></template><p>x",
        "<template><a href=/1><table></a></table><object></template><p>x",
    ];
    let pages: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, html)| (format!("case {i}"), (*html).to_owned()))
        .collect();
    let fell_back = check_all(&pages);
    eprintln!("{fell_back:?}");
}

/// A meta whose charset names no encoding, with an http-equiv that names
/// one, after the first 1,024 bytes of a page served without a charset:
/// the http-equiv decides, in the scan as in html5ever's path.
#[test]
fn a_meta_charset_naming_nothing_gives_way_to_its_http_equiv() {
    let url = Url::parse("https://www.example.com/").expect("a URL");
    for charset in ["bogus", ""] {
        let html = format!(
            "<html><head><!--{}--><meta charset=\"{charset}\" http-equiv=\"Content-Type\" \
             content=\"text/html; charset=utf-8\"><script>var s=\"é中\";</script>",
            "x".repeat(1100)
        );
        let extractor = Extractor::new().keep_inline_text(true);
        let within = std::time::Duration::from_secs(30);
        let fast = extractor.extract_body_within(&url, html.clone().into_bytes(), None, within);
        let tree =
            extractor
                .tree_only(true)
                .extract_body_within(&url, html.into_bytes(), None, within);
        assert_eq!(fast.encoding, encoding_rs::UTF_8, "{charset:?}");
        assert_eq!(tree.encoding, encoding_rs::UTF_8, "{charset:?}");
        let text = |e: &scriptscrape::extract::Decoded| {
            e.extracted.as_ref().expect("extracted").scripts[0]
                .inline
                .as_ref()
                .and_then(|i| i.text.clone())
        };
        assert_eq!(
            text(&fast).as_deref(),
            Some("var s=\"é中\";"),
            "{charset:?}"
        );
        assert_eq!(text(&fast), text(&tree), "{charset:?}");
    }
}

/// A tag with tens of thousands of attributes, one repeated at the end:
/// past a few attributes the scan looks names up in a set (a linear scan
/// of those before made 250,000 take minutes); a duplicate found there is
/// a duplicate as html5ever has it, and the rows are the same.
#[test]
fn a_tag_with_many_attributes_is_read() {
    let mut html = String::from("<script src=a.js");
    for i in 0..50_000 {
        html.push_str(&format!(" a{i}=1"));
    }
    html.push_str(" a7=dup></script>");
    let pages = [("many attributes".to_owned(), html)];
    assert!(check_all(&pages).is_empty(), "the scan was sure of it");
}
