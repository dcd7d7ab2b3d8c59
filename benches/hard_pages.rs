//! Hard pages: deterministic from a seed, made of the constructs that
//! decide what is a script element of a document and where it is, for the
//! differential test (tests/differential.rs, examples/differential.rs).
//!
//! Where benches/pages.rs makes pages shaped like real sites, these mix
//! random nested fragments of what the HTML parsing algorithm treats
//! specially: foreign content (SVG scripts, MathML's `script` that is not
//! one, text and HTML integration points, breakout tags), templates,
//! `<noscript>`, raw-text and RCDATA elements holding markup, script data
//! escapes, odd comments and bogus markup, tables and foster parenting,
//! `<select>`, framesets, misnested formatting elements, `<base>` and CSP
//! `<meta>`s in and out of the head, links, attribute and whitespace edge
//! cases, and documents cut off in the middle of any of them. Each
//! construct has scripts around and inside it.
//!
//! Pages come in three kinds: most are ordinary (a usual skeleton and
//! filler with a few hard spots), some are mixed (a hard spot every few
//! hundred bytes), and some are torture (nothing but hard constructs,
//! nested deeper, with markup that swallows the rest of the document
//! allowed anywhere). Sizes run from 0.5 to 30 KB, log-uniform. Scripts,
//! links and bases are numbered in each page (`s7.js`, `s7()`, `/b3/`),
//! so that a difference names the element.

/// splitmix64, as in benches/pages.rs: the same seed gives the same page
/// everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Page `seed`.
pub fn page(seed: u64) -> String {
    let mut rng = Rng(seed ^ 0x4A2D_0E5C_19F3_7B61);
    let kind = match rng.below(100) {
        0..68 => Kind::Ordinary,
        68..90 => Kind::Mixed,
        _ => Kind::Torture,
    };
    // Log-uniform between 0.5 and 30 KB: median near 4 KB.
    let target = (500.0 * 60f64.powf(rng.unit())) as usize;
    let mut g = Gen {
        rng,
        out: String::with_capacity(target + 2048),
        n: 0,
        target,
        kind,
        spots: match kind {
            Kind::Ordinary => 1 + (target / 6000) as u32,
            _ => u32::MAX,
        },
        max_depth: if kind == Kind::Torture { 6 } else { 3 },
    };
    match kind {
        Kind::Torture if g.chance(60) => g.torture(),
        _ if g.chance(3) => g.frameset_page(),
        _ => g.document(),
    }
    g.out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A usual skeleton and filler, with a few hard spots.
    Ordinary,
    /// A usual skeleton, a hard spot every few hundred bytes.
    Mixed,
    /// Hard constructs only, nested deeper, anything anywhere.
    Torture,
}

/// The generator's state for one page.
struct Gen {
    rng: Rng,
    out: String,
    /// The last number given to a script, link or base of the page.
    n: u32,
    /// Bytes to write, roughly (a construct under way is finished).
    target: usize,
    kind: Kind,
    /// Hard spots an ordinary page may still have in its body.
    spots: u32,
    /// How deep constructs nest inside each other.
    max_depth: u32,
}

/// Where relative URLs point: a script's `src`, a link's `href`. `{}` is
/// the element's number.
const URLS: [&str; 16] = [
    "s{}.js",
    "s{}.js",
    "/abs/s{}.js",
    "../up/s{}.js",
    "https://cdn.test/s{}.js",
    "//cdn2.test/lib/s{}.js",
    "  s{}.js\t",
    "s{}.js?a=1&amp;b=2&ampc=3&#x26;d&notit;=&#128;",
    "s\n{}.js#frag",
    "?q={}",
    "http://[bad{}",
    "",
    "javascript:void({})",
    "data:text/javascript,s{}()",
    "HTTPS://CDN.TEST:443/S{}.JS",
    "s{}.js\u{0}x",
];

/// `<base href>` values: relative, absolute, and the kinds a browser
/// ignores (invalid, javascript:, data:).
const BASES: [&str; 11] = [
    "/b{}/",
    "sub{}/",
    "https://base{}.test/x/",
    "//cdn{}.test/",
    "javascript:b{}()",
    "data:,b{}",
    "http://[bad{}",
    "",
    "  /sp{}/  ",
    "?b={}",
    "/b{}/&amp;x&lt;/",
];

const LOREM: [&str; 6] = [
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "Sed do eiusmod tempor incididunt ut labore &amp; dolore magna aliqua.",
    "a < b && c > d",
    "Ut enim ad minim veniam, quis nostrud exercitation.",
    "&lt;script&gt;not a script&lt;/script&gt;",
    "Duis aute irure dolor in reprehenderit &copy 2024 &notin; &nbsp;",
];

impl Gen {
    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    /// An index drawn with the given weights.
    fn pick(&mut self, weights: &[u64]) -> usize {
        let mut r = self.rng.below(weights.iter().sum());
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        unreachable!("r is below the sum of the weights")
    }

    fn one_of<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.rng.below(options.len() as u64) as usize]
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn full(&self) -> bool {
        self.out.len() >= self.target
    }

    fn number(&mut self) -> u32 {
        self.n += 1;
        self.n
    }

    /// One of `templates` with `{}` replaced by a new number.
    fn numbered(&mut self, templates: &[&str]) -> String {
        let n = self.number().to_string();
        self.one_of(templates).replace("{}", &n)
    }

    /// A separator between a tag name and an attribute, or between two.
    fn space(&mut self) -> &'static str {
        match self.rng.below(40) {
            0 => "\n",
            1 => "\t",
            2 => "\r\n",
            3 => "\x0c",
            4 => "  ",
            5 => "/",
            6 => "\r",
            _ => " ",
        }
    }

    /// `name=value` in one of the ways HTML allows (and some it does not).
    fn attr(&mut self, name: &str, value: &str) -> String {
        let plain = !value.is_empty() && !value.bytes().any(|b| b" \t\n\r\x0c\"'<>=`".contains(&b));
        match self.rng.below(12) {
            0..5 => format!("{name}=\"{}\"", value.replace('"', "&quot;")),
            5..7 => format!("{name}='{}'", value.replace('\'', "&#39;")),
            7..9 if plain => format!("{name}={value}"),
            // An unquoted value ending in `/` just before `>` keeps it.
            9 if plain => format!("{name}={value}/"),
            10 => format!("{name} = \"{value}\""),
            11 => format!("{}=\"{value}\"", name.to_ascii_uppercase()),
            _ => format!("{name}=\"{value}\""),
        }
    }

    // The page's outline.

    /// A whole document: prelude, head, what comes between head and body,
    /// the body, and what comes after it.
    fn document(&mut self) {
        self.doctype();
        if self.chance(if self.kind == Kind::Ordinary { 5 } else { 25 }) {
            // Before <html>: implies html and head.
            self.prelude();
        }
        if self.chance(85) {
            let html = self.one_of(&["<html>", "<html lang=\"en\">", "<HTML>", "<html\n>"]);
            self.push(html);
            self.push("\n");
        }
        self.head();
        self.between_head_and_body();
        self.body();
        self.after_body();
        self.ending();
    }

    fn doctype(&mut self) {
        let doctype = match self.pick(&[60, 30]) {
            0 => "<!DOCTYPE html>\n",
            _ => self.one_of(&[
                "",
                "<!doctype html>",
                "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\">\n",
                "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">",
                "<!DOCTYPE>",
                "<!DOCTYPEhtml>",
                "<!DOCTYPE html SYSTEM \"about:legacy-compat\">",
                "<!DOCTYPE html [<!ENTITY x \"<script>doctype()</script>\">]>",
                "<!doctype html><!doctype html>",
                "\n\n  <!DOCTYPE html>",
                "<!DOCTYPE html PUBLIC \"-//W3O//DTD W3 HTML Strict 3.0//EN//\">",
                "<!DOCTYPE html \"quoted <script>\">",
            ]),
        };
        self.push(doctype);
    }

    /// Content before `<html>`: scripts, comments, whitespace, text.
    fn prelude(&mut self) {
        for _ in 0..1 + self.rng.below(3) {
            match self.rng.below(5) {
                0 | 1 => self.html_script(),
                2 => self.comment(),
                3 => self.push("\n \t"),
                _ => self.base(),
            }
        }
    }

    fn head(&mut self) {
        let open = self.chance(85);
        if open {
            let head = self.one_of(&["<head>", "<HEAD>", "<head id=h>"]);
            self.push(head);
        }
        let charset = self.one_of(&[
            "<meta charset=\"utf-8\">",
            "<meta charset=utf-8>",
            "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">",
            "<META CHARSET='ISO-8859-1'>",
            "",
        ]);
        self.push(charset);
        if self.chance(70) {
            self.push("<title>Page &amp; <b>title</b> <script>t()</script></title>\n");
        }
        let items = 2 + self.rng.below(8);
        for _ in 0..items {
            match self.pick(&[30, 10, 8, 6, 6, 4, 3, 3, 5]) {
                0 => self.html_script(),
                1 => self.base(),
                2 => self.csp_meta(),
                3 => self.noscript(1),
                4 => self.push("<link rel=\"stylesheet\" href=\"/css/site.css\">\n"),
                5 => self.raw_text(),
                6 => self.template(1),
                7 => self.comment(),
                _ if self.kind != Kind::Ordinary || self.chance(20) => self.hard(1),
                _ => self.html_script(),
            }
        }
        if open || self.chance(30) {
            let close = self.one_of(&["</head>\n", "</HEAD>", "</head >", "</head>"]);
            self.push(close);
        }
    }

    /// After `</head>` and before `<body>`: the parser puts head elements
    /// back in the head ("after head" insertion mode), and anything else
    /// starts the body.
    fn between_head_and_body(&mut self) {
        let kind = self.kind;
        let n = match kind {
            Kind::Ordinary if self.chance(80) => 0,
            _ => 1 + self.rng.below(3),
        };
        for _ in 0..n {
            match self.rng.below(7) {
                0 | 1 => self.html_script(),
                2 => self.csp_meta(),
                3 => self.base(),
                4 => self.push("\n  "),
                5 => self.comment(),
                _ => self.push("<meta name=viewport content=\"width=device-width\">"),
            }
        }
    }

    fn body(&mut self) {
        if self.chance(85) {
            let body = self.one_of(&["<body>", "<body class=\"page\">", "<BODY onload=\"x()\">"]);
            self.push(body);
            self.push("\n");
        }
        while !self.full() {
            let hard = match self.kind {
                Kind::Ordinary => {
                    // Spread the page's few hard spots over its length.
                    let left = self.target - self.out.len();
                    let percent = (u64::from(self.spots.min(100)) * 40_000 / left as u64).min(100);
                    self.spots > 0 && self.chance(percent)
                }
                Kind::Mixed => self.chance(45),
                Kind::Torture => true,
            };
            if hard {
                self.spots = self.spots.saturating_sub(1);
                self.hard(0);
            } else {
                self.filler();
            }
            self.push("\n");
        }
    }

    /// `</body>`, `</html>` and what comes after them (the parser moves it
    /// back into the body).
    fn after_body(&mut self) {
        if self.chance(80) {
            self.push("</body>");
            if self.chance(20) {
                self.after_end();
            }
        }
        if self.chance(75) {
            self.push("</html>");
            if self.chance(20) {
                self.after_end();
            }
        }
        if self.chance(5) {
            self.push("</body></html></body>");
            self.after_end();
        }
        self.push("\n");
    }

    fn after_end(&mut self) {
        match self.rng.below(7) {
            0..3 => self.html_script(),
            3 => self.comment(),
            4 => self.push("\ntext after the end "),
            5 => self.base(),
            _ => self.links(),
        }
    }

    /// Torture without a skeleton: hard fragments from the first byte.
    fn torture(&mut self) {
        if self.chance(30) {
            self.doctype();
        }
        while !self.full() {
            self.hard(0);
        }
        self.ending();
    }

    /// A frameset document: frames are its links, and what a frameset
    /// leaves out (scripts after it) is not in the tree.
    fn frameset_page(&mut self) {
        self.doctype();
        self.push("<html><head>");
        self.html_script();
        if self.chance(30) {
            self.base();
        }
        self.push("</head>");
        if self.chance(30) {
            // Scripts in a body that held nothing else are dropped with it
            // when a frameset replaces it.
            self.push("<body>");
            self.html_script();
        }
        self.push("<frameset rows=\"50%,50%\">");
        for _ in 0..1 + self.rng.below(4) {
            match self.rng.below(6) {
                0..3 => {
                    let src = self.numbered(&URLS);
                    let frame = self.attr("src", &src);
                    self.push(&format!("<frame {frame}>"));
                }
                3 => {
                    self.push("<frameset cols=\"*,*\"><frame src=\"inner.html\">");
                    self.html_script();
                    self.push("</frameset>");
                }
                4 => {
                    self.push("<noframes>");
                    self.html_script();
                    self.push("<a href=\"/noframes\">x</a></noframes>");
                }
                _ => self.html_script(),
            }
        }
        self.push("</frameset>");
        while !self.full() {
            match self.rng.below(4) {
                0 => self.html_script(),
                1 => self.push("<noframes><script>nf()</script></noframes>"),
                2 => self.links(),
                _ => self.filler(),
            }
        }
        self.after_body();
        self.ending();
    }

    /// How the page ends: usually as written, sometimes cut off inside
    /// whatever was being written, or inside a construct begun for it.
    fn ending(&mut self) {
        let percent = match self.kind {
            Kind::Ordinary => 6,
            Kind::Mixed => 15,
            Kind::Torture => 40,
        };
        if !self.chance(percent) {
            return;
        }
        if self.chance(40) {
            // Anywhere in the last part of the page, on a char boundary.
            let len = self.out.len();
            let mut cut = len - self.rng.below(len.min(2000) as u64 + 1) as usize;
            while !self.out.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.truncate(cut);
            return;
        }
        let n = self.number();
        let open = self.one_of(&[
            "<script src=\"trunc{}.js",
            "<script src=trunc{}.js",
            "<script>trunc{}()",
            "<script><!--<script>trunc{}()</script>",
            "<script",
            "<scr",
            "<",
            "</script",
            "<!-- <script>trunc{}()</script>",
            "<!--",
            "<!-",
            "<a href=\"trunc{}",
            "<a href=trunc{}",
            "<svg><script href=\"trunc{}",
            "<svg><script>trunc{}",
            "<svg><script><![CDATA[trunc{}",
            "<title><script>trunc{}()</script>",
            "<textarea>",
            "<style><script>trunc{}()</script>",
            "<plaintext><script>trunc{}()</script>",
            "<xmp><script>trunc{}()</script>",
            "<!DOCTYPE html",
            "<![CDATA[<script>trunc{}()</script>",
            "<script nonce=\"trunc{}\" src=s{}.js ",
            "<noscript><script>trunc{}()</script>",
            "<template><script>trunc{}()</script>",
            "<iframe src=trunc{}>",
            "<base href=/trunc{}/",
            "<script src=x.js type=",
            "<?php trunc{}",
            "&#x",
        ]);
        let open = open.replace("{}", &n.to_string());
        self.push(&open);
    }

    // Fragments.

    /// One hard construct, with scripts around and inside it; `depth` is
    /// how deep it is nested in others.
    fn hard(&mut self, depth: u32) {
        if depth >= self.max_depth {
            return match self.rng.below(4) {
                0 | 1 => self.html_script(),
                2 => self.links(),
                _ => self.svg_script(),
            };
        }
        match self.pick(&[
            14, // 0 HTML scripts with hard attributes or text
            10, // 1 svg
            6,  // 2 math
            6,  // 3 template
            4,  // 4 noscript
            6,  // 5 raw text and RCDATA
            6,  // 6 comments and bogus markup
            8,  // 7 tables
            4,  // 8 select
            7,  // 9 misnested formatting
            6,  // 10 links
            4,  // 11 base
            3,  // 12 CSP meta
            3,  // 13 head elements in the body
            3,  // 14 whitespace and NUL
            2,  // 15 CDATA and doctype where they do not belong
            2,  // 16 frameset in the body
            2,  // 17 end tags out of place
            2,  // 18 swallowing constructs (torture only)
        ]) {
            0 => self.html_script(),
            1 => self.svg(depth),
            2 => self.math(depth),
            3 => self.template(depth),
            4 => self.noscript(depth),
            5 => self.raw_text(),
            6 => self.comment(),
            7 => self.table(depth),
            8 => self.select(depth),
            9 => self.formatting(depth),
            10 => self.links(),
            11 => self.base(),
            12 => self.csp_meta(),
            13 => self.head_in_body(),
            14 => self.odd_whitespace(),
            15 => self.out_of_place_markup(),
            16 => self.frameset_in_body(),
            17 => self.stray_end_tags(),
            _ if self.kind == Kind::Torture => self.swallowing(),
            _ => self.html_script(),
        }
    }

    /// `k` fragments, hard or filler, nested at `depth`.
    fn inside(&mut self, depth: u32, k: u64) {
        for _ in 0..k {
            match self.rng.below(10) {
                0..6 => self.hard(depth + 1),
                6..8 => self.html_script(),
                _ => self.filler(),
            }
        }
    }

    /// Markup of ordinary pages.
    fn filler(&mut self) {
        match self.rng.below(10) {
            0 => self.html_script(),
            1 => self.push(
                "<ul class=\"nav\"><li><a href=\"/a\">Home</a></li><li><a href=\"b\">Products</a></li></ul>",
            ),
            2 => self.push(
                "<svg width=\"24\" height=\"24\" viewBox=\"0 0 24 24\"><path d=\"M12 2L2 7l10 5z\"/></svg>",
            ),
            3 => {
                let n = self.number();
                self.push(&format!(
                    "<script type=\"application/ld+json\">{{\"@type\":\"WebPage\",\"n\":{n}}}</script>"
                ));
            }
            4 => self.push("<img src=\"/i.png\" alt=\"\"><input name=q><br>"),
            _ => {
                let text = self.one_of(&LOREM);
                let n = self.number();
                self.push(&format!(
                    "<div class=\"card\"><h2>Heading</h2><p>{text} <a href=\"/more{n}\">Read more</a></p></div>"
                ));
            }
        }
    }

    // Scripts.

    /// An HTML `<script>`, inline or external, with attributes and text
    /// that test the tokenizer.
    fn html_script(&mut self) {
        let n = self.number();
        let external = self.chance(45);
        let name = match self.rng.below(20) {
            0 => "SCRIPT",
            1 => "ScRiPt",
            _ => "script",
        };
        let mut attrs = Vec::new();
        if external {
            let src = self.one_of(&URLS).replace("{}", &n.to_string());
            attrs.push(self.attr("src", &src));
        }
        self.script_attrs(&mut attrs, external);
        let mut tag = format!("<{name}");
        for attr in attrs {
            tag.push_str(self.space());
            tag.push_str(&attr);
        }
        if self.chance(5) {
            // Self-closing means nothing on an HTML script: its text runs
            // on to the next `</script>`.
            tag.push_str(" /");
        }
        tag.push('>');
        self.push(&tag);
        if !external || self.chance(10) {
            self.script_text(n);
        }
        let close = self.script_end_tag();
        self.push(close);
    }

    /// An HTML script, every other time: before the other contents of an
    /// integration point.
    fn maybe_html_script(&mut self) {
        if self.chance(50) {
            self.html_script();
        }
    }

    /// The attributes besides `src`: types, flags, SRI, nonces and the
    /// tokenizer's edge cases.
    fn script_attrs(&mut self, attrs: &mut Vec<String>, external: bool) {
        let odds = if self.kind == Kind::Ordinary { 25 } else { 50 };
        if self.chance(odds) {
            let t = self.one_of(&[
                "module",
                "text/javascript",
                "application/ld+json",
                "MODULE",
                "",
                "text/x-template",
                "importmap",
                " module ",
            ]);
            attrs.push(self.attr("type", t));
        }
        for flag in ["async", "defer", "nomodule"] {
            if self.chance(odds / 2) {
                let form = match self.rng.below(5) {
                    0 => format!("{flag}=\"\""),
                    1 => flag.to_ascii_uppercase(),
                    2 => format!("{flag}={flag}"),
                    _ => flag.to_owned(),
                };
                attrs.push(form);
            }
        }
        if external && self.chance(odds / 2) {
            attrs.push(self.attr(
                "integrity",
                "sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC",
            ));
            let c = self.one_of(&["anonymous", "use-credentials", "", "ANONYMOUS"]);
            attrs.push(self.attr("crossorigin", c));
        }
        if self.chance(odds / 2) {
            let nonce = self.one_of(&["r4nd0m", "", "a b", "n&amp;1"]);
            attrs.push(self.attr("nonce", nonce));
            if self.chance(30) {
                // Markup in another attribute makes the nonce not count.
                let v = self.one_of(&["<script>", "x<STYLE", "<scrip", "</script>"]);
                attrs.push(self.attr("data-x", v));
            }
            if self.chance(10) {
                attrs.push("a<script=1".to_owned());
            }
        }
        if self.chance(odds / 3) {
            let odd = match self.rng.below(12) {
                // Repeated attributes: the first wins, and the element is
                // not nonceable.
                0 => "src=dup1.js src=dup2.js".to_owned(),
                1 => "nonce=one nonce=two".to_owned(),
                2 => "type=module TYPE=text/javascript".to_owned(),
                3 => "=src=eq.js".to_owned(),
                4 => "src==eq2.js".to_owned(),
                5 => "src= spaced.js".to_owned(),
                6 => "sr\0c=nul.js".to_owned(),
                7 => "src=\"nul\0.js\"".to_owned(),
                8 => "data-a=\"line\r\nbreak\" data-b='cr\rx'".to_owned(),
                9 => "x\"y=1 'z=2".to_owned(),
                10 => "src=\"&#x73;&#X2e;js\"".to_owned(),
                _ => "SRC=Upper.JS".to_owned(),
            };
            attrs.push(odd);
        }
        // Shuffle, so that src is not always first.
        for i in (1..attrs.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            attrs.swap(i, j);
        }
    }

    /// An HTML script's text: code, and now and then what the script data
    /// states of the tokenizer treat specially.
    fn script_text(&mut self, n: u32) {
        self.push(&format!("s{n}();"));
        let extras = match self.kind {
            Kind::Ordinary => self.rng.below(2),
            _ => self.rng.below(4),
        };
        for _ in 0..extras {
            let piece = self.one_of(&[
                " if (a < b && c > d) {}",
                " document.write('<script src=w.js><\\/script>');",
                " var s = '</scr' + 'ipt>';",
                " <!-- hidden -->",
                " <!--<script>nested()</script>after-->",
                " <!--<script>double()</script>escaped",
                " <!--<SCRIPT>x</SCRIPT>-->",
                " <!--<script/>x</script>y-->",
                " <!--",
                " -->",
                " --!>",
                " <!-->",
                " </scripts>",
                " </script-x>",
                " </scriptx",
                " <SCRIPT>",
                " x\0y",
                "\r\nline();\r",
                " <![CDATA[ x ]]>",
                " &amp; &lt;",
                " <\\/script>",
                " <!--<script>",
                " <!--<script>-->",
                " </style></textarea></title>",
                " <\u{0}script>",
                "\n",
            ]);
            self.push(piece);
        }
    }

    fn script_end_tag(&mut self) -> &'static str {
        match self.rng.below(30) {
            0 => "</SCRIPT>",
            1 => "</script >",
            2 => "</script\n>",
            3 => "</script foo=\"bar\">",
            4 => "</script/>",
            5 => "</sCrIpT\t>",
            _ => "</script>",
        }
    }

    /// An SVG `<script>`: `href` or `xlink:href`, text with character
    /// references, CDATA and markup.
    fn svg_script(&mut self) {
        let n = self.number();
        let src = self.one_of(&URLS).replace("{}", &n.to_string());
        let name = self.one_of(&["script", "script", "script", "SCRIPT"]);
        let mut tag = format!("<{name}");
        match self.rng.below(8) {
            0 | 1 => tag = format!("{tag} {}", self.attr("href", &src)),
            2 | 3 => tag = format!("{tag} {}", self.attr("xlink:href", &src)),
            4 => tag = format!("{tag} xlink:href=\"x{n}.js\" href=\"{src}\""),
            5 => tag = format!("{tag} XLINK:HREF=\"{src}\""),
            _ => {}
        }
        if self.chance(20) {
            tag.push_str(" type=\"text/ecmascript\"");
        }
        if self.chance(10) {
            let nonce = self.attr("nonce", "svgnonce");
            tag.push(' ');
            tag.push_str(&nonce);
        }
        if self.chance(15) {
            // Self-closing is acknowledged in foreign content.
            tag.push_str(" />");
            self.push(&tag);
            return;
        }
        tag.push('>');
        self.push(&tag);
        self.push(&format!("v{n}();"));
        for _ in 0..self.rng.below(3) {
            let piece = self.one_of(&[
                " if (a &amp;&amp; b &lt; c) {}",
                "<![CDATA[ if (a < b && c) x(); ]]>",
                "<![CDATA[</script><script>cdata()</script>]]>",
                "<a href=\"in-svg-script\">child</a>",
                "<!-- c -->",
                " &#60;&#x3c;&lt &ampx",
                " x\0y",
                "<g><script>inner()</script></g>",
                "<p>",
                "<font color=red>",
                "<b>",
                " </scripts>",
                "\r\n",
            ]);
            self.push(piece);
        }
        let close = self.script_end_tag();
        self.push(close);
    }

    // Foreign content.

    fn svg(&mut self, depth: u32) {
        let open = self.one_of(&[
            "<svg>",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">",
            "<SVG viewBox=\"0 0 1 1\">",
            "<svg><g>",
        ]);
        self.push(open);
        if self.chance(60) {
            self.svg_script();
        }
        for _ in 0..1 + self.rng.below(4) {
            self.svg_child(depth);
        }
        match self.rng.below(10) {
            0 => {}
            1 => self.push("</SVG>"),
            _ => self.push("</svg>"),
        }
    }

    fn svg_child(&mut self, depth: u32) {
        match self.pick(&[30, 6, 8, 6, 8, 3, 3, 3, 3, 3, 3, 2, 2, 2]) {
            0 => self.svg_script(),
            1 => {
                self.push("<g>");
                self.svg_script();
                if depth + 1 < self.max_depth {
                    self.svg_child(depth + 1);
                }
                self.push("</g>");
            }
            2 => {
                // An HTML integration point.
                let fo = self.one_of(&["<foreignObject>", "<foreignobject>", "<FOREIGNOBJECT>"]);
                self.push(fo);
                self.maybe_html_script();
                let k = 1 + self.rng.below(2);
                self.inside(depth, k);
                self.push("</foreignObject>");
            }
            3 => {
                let el = self.one_of(&["desc", "title"]);
                self.push(&format!("<{el}>"));
                self.maybe_html_script();
                self.inside(depth, 1);
                self.push(&format!("</{el}>"));
            }
            4 => {
                // Breakout: the tag closes the foreign elements and is an
                // HTML element; what follows is HTML.
                let tag = self.one_of(&[
                    "<p>",
                    "<div>",
                    "<font color=x>",
                    "<font size=2>",
                    "<FONT FACE=a>",
                    "<b>",
                    "<br>",
                    "<ul><li>",
                    "<table>",
                    "<pre>",
                    "<h1>",
                    "</p>",
                    "</br>",
                    "<span>",
                    "<body>",
                ]);
                self.push(tag);
                self.html_script();
            }
            5 => {
                // Not a breakout: font without color, face or size.
                self.push("<font class=f>");
                self.svg_script();
                self.push("</font>");
            }
            6 => {
                // In foreign content style is an ordinary element, so what
                // looks like text in it is markup.
                self.push("<style>");
                self.svg_script();
                self.push("</style>");
            }
            7 => {
                self.push("<![CDATA[<script>cdata()</script>]]>");
            }
            8 => {
                // SVG elements named like HTML ones: not links, not bases.
                let el = self.one_of(&[
                    "<a href=\"svg-link\">a</a>",
                    "<base href=\"/svg-base/\">",
                    "<iframe src=\"svg-iframe\"></iframe>",
                    "<image href=\"i.png\"/>",
                    "<meta http-equiv=Content-Security-Policy content=\"script-src 'none'\">",
                    "<template><script>t()</script></template>",
                    "<noscript><script>ns()</script></noscript>",
                ]);
                self.push(el);
            }
            9 => {
                self.push("<math>");
                self.math_child(depth);
                self.push("</math>");
            }
            10 => {
                self.push("text &amp; more &lt;script&gt;");
            }
            11 => self.comment(),
            12 => self.push("<svg>"),
            _ => self.push("<script/>"),
        }
    }

    fn math(&mut self, depth: u32) {
        let open = self.one_of(&[
            "<math>",
            "<MATH display=block>",
            "<math xmlns=\"http://www.w3.org/1998/Math/MathML\">",
        ]);
        self.push(open);
        for _ in 0..1 + self.rng.below(3) {
            self.math_child(depth);
        }
        if self.chance(85) {
            self.push("</math>");
        }
    }

    fn math_child(&mut self, depth: u32) {
        match self.pick(&[10, 10, 10, 4, 3, 3, 3, 2]) {
            0 => {
                // A MathML script element is not a script element.
                let n = self.number();
                let s = self.one_of(&[
                    "<script>m{}()</script>",
                    "<script src=\"m{}.js\"></script>",
                    "<script href=\"m{}.js\"/>",
                ]);
                self.push(&s.replace("{}", &n.to_string()));
            }
            1 => {
                // Text integration points hold HTML.
                let el = self.one_of(&["mi", "mo", "mn", "ms", "mtext"]);
                self.push(&format!("<{el}>"));
                self.maybe_html_script();
                if self.chance(15) {
                    self.push("<mglyph>");
                }
                self.inside(depth, 1);
                self.push(&format!("</{el}>"));
            }
            2 => {
                let encoding = self.one_of(&[
                    " encoding=\"text/html\"",
                    " encoding=\"TEXT/HTML\"",
                    " encoding=application/xhtml+xml",
                    " encoding=\" text/html\"",
                    " encoding=\"text/html;\"",
                    "",
                    " encoding=\"image/svg+xml\"",
                ]);
                let semantics = self.chance(50);
                if semantics {
                    self.push("<semantics><mi>x</mi>");
                }
                self.push(&format!("<annotation-xml{encoding}>"));
                self.maybe_html_script();
                match self.rng.below(3) {
                    0 => self.svg(depth + 1),
                    _ => {
                        let k = 1 + self.rng.below(2);
                        self.inside(depth, k);
                    }
                }
                self.push("</annotation-xml>");
                if semantics {
                    self.push("</semantics>");
                }
            }
            3 => {
                self.push("<mtable><mtr><mtd>");
                self.inside(depth, 1);
                self.push("</mtd></mtr></mtable>");
            }
            4 => {
                let tag = self.one_of(&["<p>", "<div>", "<b>", "<font color=red>"]);
                self.push(tag);
                self.html_script();
            }
            5 => self.push("<annotation><script>ann()</script></annotation>"),
            6 => {
                self.push("<mi><svg>");
                self.svg_script();
                self.push("</svg></mi>");
            }
            _ => self.push("<math><mi>nested</mi></math>"),
        }
    }

    // Elements whose contents are not (or not only) the document's.

    fn template(&mut self, depth: u32) {
        let open = self.one_of(&[
            "<template>",
            "<template id=t>",
            "<TEMPLATE>",
            "<template shadowrootmode=\"open\">",
        ]);
        self.push(open);
        let k = 1 + self.rng.below(2);
        self.inside(depth, k);
        if self.chance(20) {
            self.push("<template>");
            self.html_script();
            self.base();
            self.push("</template>");
        }
        if self.chance(10) {
            // An </a> that closes nothing (out of scope, or behind a
            // nested template), then a marker: the <a> outlives the
            // template.
            let a = self.one_of(&[
                "<a href=\"tpl\"><template></a></template><object>",
                "<a href=\"tpl\"><table></a></table><td>",
                "<a href=\"tpl\"></a><object>",
            ]);
            self.push(a);
        }
        match self.rng.below(10) {
            0 if self.kind == Kind::Torture => {}
            1 => self.push("</template></template>"),
            _ => self.push("</template>"),
        }
    }

    /// With scripting enabled, `<noscript>` holds raw text (in the head
    /// and in the body).
    fn noscript(&mut self, depth: u32) {
        let open = self.one_of(&["<noscript>", "<NOSCRIPT>", "<noscript class=n>"]);
        self.push(open);
        match self.rng.below(4) {
            0 => self.push("<link rel=stylesheet href=ns.css><style>x{}</style>"),
            1 => self.push("<img src=\"/pixel?noscript=1\">"),
            _ => self.inside(depth, 1),
        }
        self.push("</noscript>");
    }

    /// Raw-text and RCDATA elements, holding what would be a script
    /// anywhere else.
    fn raw_text(&mut self) {
        let el = self.one_of(&[
            "style", "xmp", "iframe", "noembed", "noframes", "title", "textarea",
        ]);
        let n = self.number();
        let open = if el == "iframe" {
            let src = self.one_of(&URLS).replace("{}", &n.to_string());
            format!("<iframe {}>", self.attr("src", &src))
        } else if self.chance(10) {
            format!("<{}>", el.to_ascii_uppercase())
        } else {
            format!("<{el}>")
        };
        self.push(&open);
        let inner = self.one_of(&[
            "<script>raw{}()</script>",
            "<script src=\"raw{}.js\"></script>",
            "</{el}x><script>raw{}()</script>",
            "&lt;script&gt;raw{}()&lt;/script&gt;",
            "<!-- </{el}> --><script>raw{}()</script>",
            "<svg><script>raw{}()</script></svg>",
            "<a href=\"raw{}\">raw</a>",
        ]);
        self.push(&inner.replace("{}", &n.to_string()).replace("{el}", el));
        let close = match self.rng.below(8) {
            0 => el.to_ascii_uppercase(),
            1 => format!("{el} x=y"),
            2 => format!("{el}\n"),
            _ => el.to_owned(),
        };
        self.push(&format!("</{close}>"));
    }

    /// Constructs that make the rest of the document text or a comment:
    /// on torture pages anywhere, elsewhere only at the end.
    fn swallowing(&mut self) {
        let s = self.one_of(&[
            "<plaintext><script>p()</script>",
            "<!-- never closed <script>c()</script>",
            "<xmp><script>x()</script>",
            "<script>never_closed()",
            "<script><!--<script>double()</script>",
            "<textarea><script>t()</script>",
            "<!-- -- > <script>c()</script>",
            "<iframe><script>i()</script>",
            "<noscript><script>n()</script>",
            "<title><script>t()</script>",
        ]);
        self.push(s);
    }

    // Comments and bogus markup.

    fn comment(&mut self) {
        let c = self.one_of(&[
            "<!-->",
            "<!--->",
            "<!---->",
            "<!-- -- > <script>in_comment()</script> -->",
            "<!-- a --!><script>after_bang()</script>",
            "<!-- <script>commented()</script> -->",
            "<? xml version=\"1.0\" ?>",
            "<?php echo '<script>pi()</script>'; ?>",
            "</ x>",
            "</ x><script>after_bogus()</script>",
            "<!x>",
            "<!ELEMENT script>",
            "<!--<!-->",
            "<!-- --!-->",
            "<!--a-->b-->",
            "</>",
            "<!----!>",
            "<!-- x --\0-->",
            "<!--\r\n-->",
            "</3>",
            "<!-- <!-- nested --> -->",
        ]);
        self.push(c);
        if self.chance(40) {
            self.html_script();
        }
    }

    /// Markup where it does not belong: CDATA in HTML content (a bogus
    /// comment up to the first `>`), a DOCTYPE in the body.
    fn out_of_place_markup(&mut self) {
        let s = self.one_of(&[
            "<![CDATA[<script>cdata()</script>]]>",
            "<![CDATA[ x ]]><script>after_cdata()</script>",
            "<!DOCTYPE html><script>after_doctype()</script>",
            "<![if !IE]><script>conditional()</script><![endif]>",
            "<!--[if IE]><script>ie()</script><![endif]-->",
        ]);
        self.push(s);
    }

    // Tables and select.

    fn table(&mut self, depth: u32) {
        let open = self.one_of(&["<table>", "<TABLE border=1>", "<table><tbody>"]);
        self.push(open);
        for _ in 0..1 + self.rng.below(4) {
            match self.pick(&[8, 8, 10, 8, 5, 4, 4, 3, 3, 3, 2, 2, 2]) {
                // Foster parenting: moved before the table.
                0 => {
                    let el = self.one_of(&["<div>", "<p>", "<span>", "<b>", "<a href=\"foster\">"]);
                    self.push(el);
                    self.html_script();
                }
                // In a table a script stays where it is.
                1 => self.html_script(),
                2 => {
                    let row = self.one_of(&["<tr><td>", "<tbody><tr><td>", "<td>", "<tr><th>"]);
                    self.push(row);
                    self.inside(depth, 1);
                    if self.chance(50) {
                        // Implied close of the cell.
                        self.push("<td>");
                        self.html_script();
                    }
                    if self.chance(50) {
                        self.push("</td></tr>");
                    }
                }
                3 => {
                    let text = self.one_of(&["text in a table", "  ", "x&amp;y", "\0"]);
                    self.push(text);
                }
                4 => {
                    self.push("<caption>");
                    self.inside(depth, 1);
                    self.push("</caption>");
                }
                5 => {
                    self.push("<colgroup><col>");
                    if self.chance(50) {
                        self.push("<template><script>cg()</script></template>");
                    }
                    self.html_script();
                    self.push("</colgroup>");
                }
                6 => {
                    if depth + 1 < self.max_depth {
                        self.push("<tr><td>");
                        self.table(depth + 1);
                        self.push("</td></tr>");
                    }
                }
                7 => self.push("<input type=hidden name=h><form><input type=text>"),
                8 => {
                    self.push("<svg>");
                    self.svg_script();
                    self.push("</svg>");
                }
                9 => self.select(depth + 1),
                10 => self.push("<style>td{}</style><template><script>tt()</script></template>"),
                11 => {
                    // </br> is a <br>, foster-parented, which reconstructs
                    // the formatting elements before the table.
                    let end = self.one_of(&["</td></tr></tbody>", "</br>", "</p>", "</b>"]);
                    self.push(end);
                }
                _ => self.push("<tfoot><tr><td>"),
            }
        }
        if self.chance(85) {
            self.push("</table>");
        }
    }

    fn select(&mut self, depth: u32) {
        self.push("<select>");
        for _ in 0..1 + self.rng.below(4) {
            match self.rng.below(12) {
                0..3 => self.html_script(),
                3 => self.push("<option>one<option selected>two"),
                4 => self.push("<optgroup label=g><option>three</optgroup>"),
                5 => self.template(depth + 1),
                6 => {
                    self.push("<div>");
                    self.html_script();
                    self.push("</div>");
                }
                7 => {
                    // Ends the select.
                    let tag =
                        self.one_of(&["<input>", "<textarea>t</textarea>", "<select>", "<keygen>"]);
                    self.push(tag);
                }
                8 => {
                    self.push("<svg>");
                    self.svg_script();
                    self.push("</svg>");
                }
                9 => self.push("<b>bold<hr>"),
                10 => self.push("<button><selectedcontent></selectedcontent></button>"),
                _ => self.push("text <a href=\"in-select\">a</a>"),
            }
        }
        if self.chance(85) {
            self.push("</select>");
        }
    }

    // Misnesting.

    /// Formatting elements closed out of order: the adoption agency moves
    /// elements, scripts and links included.
    fn formatting(&mut self, depth: u32) {
        match self.rng.below(10) {
            0 => {
                self.push("<b><p>");
                self.inside(depth, 1);
                self.push("</b>");
                self.html_script();
                self.push("</p>");
            }
            1 => {
                let n = self.number();
                self.push(&format!("<a href=\"x{n}\"><div><a href=\"y{n}\">"));
                self.html_script();
                self.push("</a></div></a>");
            }
            2 => {
                let n = self.number();
                self.push(&format!("<p><a href=\"z{n}\"></p>text"));
                self.html_script();
                self.push("</a>");
            }
            3 => {
                self.push("<i><b><u><s>");
                self.html_script();
                self.push("</i>");
                self.links();
                self.push("</s></u></b>");
            }
            4 => {
                // More than three of the same: the "Noah's Ark" clause.
                self.push("<b><b><b><b>");
                self.html_script();
                self.push("<p>");
                self.inside(depth, 1);
                self.push("</b></p></b></b></b>");
            }
            5 => {
                self.push("<nobr><nobr>");
                self.html_script();
                self.push("</nobr>");
            }
            6 => {
                self.push("<table><a href=\"t\"><tr><td>");
                self.html_script();
                self.push("</td></tr></a></table>");
            }
            7 => {
                self.push("<li>one<li>");
                self.html_script();
                self.push("<dd><dt><h1><h2>");
                self.html_script();
                self.push("</h1>");
            }
            8 => {
                self.push("<form><form><button><button>");
                self.html_script();
                self.push("</form>");
            }
            _ => {
                self.push("<em><div><strong>");
                self.inside(depth, 1);
                self.push("</em>");
                self.html_script();
                self.push("</strong></div>");
            }
        }
    }

    fn stray_end_tags(&mut self) {
        let s = self.one_of(&[
            "</head><script>after_stray_head()</script>",
            "</body><script>after_stray_body()</script>",
            "</html><script>after_stray_html()</script>",
            "</p></div></span>",
            "</svg></math></template></table></select>",
            "</script>",
            "</noscript><script>after_stray_noscript()</script>",
        ]);
        self.push(s);
    }

    /// A frameset start tag in the body: ignored once the body has had
    /// content, otherwise it replaces the body.
    fn frameset_in_body(&mut self) {
        self.push("<frameset><frame src=\"fb.html\">");
        self.html_script();
        self.push("</frameset>");
    }

    // Links, bases and metas.

    fn links(&mut self) {
        let n = self.number();
        let url = self.one_of(&URLS).replace("{}", &n.to_string());
        let rel = self.one_of(&[
            "",
            "",
            "",
            " rel=nofollow",
            " rel=\"external NoFollow\"",
            " rel=nofollowx",
            " REL=\"\tnofollow\n\"",
            " rel=noopener",
        ]);
        let html = match self.rng.below(15) {
            0..5 => format!("<a {}{rel}>link {n}</a>", self.attr("href", &url)),
            5 => format!("<A HREF=\"{url}\"{rel}>upper</A>"),
            6 => format!(
                "<map name=m{n}><area {}{rel}></map>",
                self.attr("href", &url)
            ),
            7 => format!("<area {}{rel}>", self.attr("href", &url)),
            8 => format!("<iframe {}></iframe>", self.attr("src", &url)),
            9 => format!("<frame src=\"{url}\">"),
            10 => format!("<a>no href</a><a href=\"\">empty</a><a href=\" \">{n}</a>"),
            11 => format!(
                "<link href=\"{url}\"><img src=\"{url}\"><embed src=\"{url}\"><object data=\"{url}\"></object>"
            ),
            12 => format!("<a href=\"{url}\" href=\"dup{n}\">dup</a>"),
            // The other element's attribute (`<a src>`, `<iframe href>`),
            // a `rel` where it means nothing (an iframe's).
            14 => format!(
                "<a src=\"{url}\">src</a><iframe href=\"h{n}\" src=\"{url}\" rel=nofollow></iframe>"
            ),
            _ => format!("<a href=\"{url}\"><a href=\"nested{n}\">nested</a></a>"),
        };
        self.push(&html);
    }

    fn base(&mut self) {
        let href = self.numbered(&BASES);
        let base = match self.rng.below(10) {
            0 => "<base target=_top>".to_owned(),
            1 => format!("<BASE HREF=\"{href}\">"),
            _ => format!("<base {}>", self.attr("href", &href)),
        };
        self.push(&base);
    }

    fn csp_meta(&mut self) {
        let http_equiv = self.one_of(&[
            "Content-Security-Policy",
            "content-security-policy",
            "CONTENT-SECURITY-POLICY",
            "Content-Security-Policy-Report-Only",
            " Content-Security-Policy",
        ]);
        let content = self.one_of(&[
            "script-src 'self'",
            "script-src 'nonce-r4nd0m' 'strict-dynamic'",
            "",
            "default-src 'none'; script-src https://cdn.test",
            "script-src 'sha256-abc=' &amp; 'unsafe-inline'",
        ]);
        let meta = match self.rng.below(8) {
            0 => format!("<meta http-equiv=\"{http_equiv}\">"),
            1 => format!("<meta content=\"{content}\" HTTP-EQUIV={http_equiv}>"),
            2 => format!("<meta name=\"{http_equiv}\" content=\"{content}\">"),
            _ => format!(
                "<meta {} {}>",
                self.attr("http-equiv", http_equiv),
                self.attr("content", content)
            ),
        };
        self.push(&meta);
        if self.chance(50) {
            self.html_script();
        }
    }

    /// Elements of the head met in the body.
    fn head_in_body(&mut self) {
        match self.rng.below(7) {
            0 => self.csp_meta(),
            1 => self.base(),
            2 => self.push("<head><script>in_second_head()</script></head>"),
            3 => self.push("<html lang=fr><body class=again>"),
            4 => self.push("<meta charset=\"windows-1252\"><link rel=preload href=p.js>"),
            5 => self.push("<title>late <script>t()</script></title><style>s{}</style>"),
            _ => self.noscript(self.max_depth),
        }
        self.html_script();
    }

    /// Whitespace and NUL where the tokenizer must decide what they mean.
    fn odd_whitespace(&mut self) {
        let n = self.number();
        let s = self.one_of(&[
            "< script>not_a_tag{}()</script>",
            "<\0script>nul{}()</script>",
            "<scr\0ipt src=nul{}.js></script>",
            "<script\x0csrc=ff{}.js></script>",
            "<script\r\nsrc=crlf{}.js\r\n></script\r\n>",
            "<script\rsrc=cr{}.js></script>",
            "\0\0text\0",
            "<script>\r\ncrlf{}();\r\n</script>",
            "<script src=\"tab\t{}.js\" ></script>",
            "<script\nsrc\n=\nnl{}.js\n>\n</script\n>",
            "<script/src=slash{}.js/></script>",
            "<script src=a{}.js/ async/></script>",
            "\u{feff}<script>bom{}()</script>",
            "<script>\u{2028}ls{}()</script>",
            "&#0;&#x0;&#xD800;&#x110000;",
        ]);
        self.push(&s.replace("{}", &n.to_string()));
    }
}
