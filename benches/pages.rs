//! The benchmark's pages: deterministic from the page number, sized and
//! shaped like real pages.
//!
//! Sizes follow a log-normal spread clamped to 20–200 KB with a median near
//! 60 KB (real HTML documents, per HTTP Archive, sit around there). Each
//! page has what sites carry: analytics and tag-manager snippets, JSON-LD,
//! external libraries (some async/defer/module/nomodule, some with SRI),
//! inline configuration, and markup filler between them.

/// How big the pages are.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    /// 20–200 KB, median near 60 KB.
    Realistic,
    /// About 3 KB: for runs whose point is the number of URLs.
    Small,
}

/// splitmix64: a tiny, good-enough generator, so the same n gives the same
/// page everywhere.
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

/// Page `n`.
pub fn page(n: u64, size: Size) -> String {
    let mut rng = Rng(n ^ 0x5EED);
    let target = match size {
        Size::Small => 3_000,
        Size::Realistic => {
            // Log-normal: median 60 KB, sigma 0.6, clamped.
            let normal = (-2.0 * rng.unit().max(1e-12).ln()).sqrt()
                * (std::f64::consts::TAU * rng.unit()).cos();
            (60_000.0 * (0.6 * normal).exp()).clamp(20_000.0, 200_000.0) as usize
        }
    };
    let mut html = String::with_capacity(target + 4096);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str(&format!("<title>Page {n}</title>\n"));
    html.push_str("<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}gtag('js',new Date());</script>\n");
    let externals = 3 + rng.below(12);
    for k in 0..externals {
        let attrs = match rng.below(6) {
            0 => " async",
            1 => " defer",
            2 => " type=\"module\"",
            3 => " nomodule",
            4 => {
                " crossorigin=\"anonymous\" integrity=\"sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC\""
            }
            _ => "",
        };
        let host = [
            "cdn.example.net",
            "www.googletagmanager.com",
            "static.example.com",
            "",
            "",
        ][rng.below(5) as usize];
        let src = if host.is_empty() {
            format!("/assets/{n}/bundle-{k}.js")
        } else {
            format!("https://{host}/lib/{k}.js?v={}", rng.below(1000))
        };
        html.push_str(&format!("<script src=\"{src}\"{attrs}></script>\n"));
    }
    html.push_str(&format!(
        "<script type=\"application/ld+json\">{{\"@context\":\"https://schema.org\",\"@type\":\"WebPage\",\"name\":\"Page {n}\"}}</script>\n"
    ));
    html.push_str(
        "<link rel=\"stylesheet\" href=\"/css/site.css\"></head>\n<body class=\"page\">\n",
    );
    let mut inline = 0;
    while html.len() < target {
        match rng.below(12) {
            0 if inline < 8 => {
                inline += 1;
                html.push_str(&format!(
                    "<script>(function(){{var cfg={{id:{n},slot:{inline},seed:{}}};window.__cfg=window.__cfg||[];window.__cfg.push(cfg);}})();</script>\n",
                    rng.below(1 << 20)
                ));
            }
            1 => html.push_str("<svg width=\"24\" height=\"24\" viewBox=\"0 0 24 24\"><path d=\"M12 2L2 7l10 5 10-5-10-5z\"/></svg>\n"),
            2 => html.push_str("<ul class=\"nav\"><li><a href=\"/a\">Home</a></li><li><a href=\"/b\">Products</a></li><li><a href=\"/c\">About us</a></li></ul>\n"),
            _ => {
                html.push_str("<div class=\"card\"><h2>Section heading</h2><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. <a href=\"/more\">Read more</a></p></div>\n");
            }
        }
    }
    html.push_str("<script src=\"/assets/app.js\" defer></script>\n</body></html>\n");
    html
}

/// Script body `n`: JavaScript-like text, deterministic from n, 5–80 KB
/// (log-normal, median near 20 KB: the range of the libraries, tag
/// managers and bundles that pages load).
#[allow(
    dead_code,
    reason = "benches/queue.rs and tests/differential.rs share this module; only pipeline.rs serves scripts"
)]
pub fn script(n: u64) -> String {
    use std::fmt::Write as _;
    // Identifiers the scripts are made of, so that they compress about as
    // well as real minified JavaScript does.
    const WORDS: [&str; 24] = [
        "config",
        "element",
        "value",
        "options",
        "handler",
        "state",
        "result",
        "index",
        "callback",
        "module",
        "event",
        "target",
        "data",
        "request",
        "response",
        "node",
        "length",
        "queue",
        "prototype",
        "listener",
        "timeout",
        "promise",
        "render",
        "observer",
    ];
    let mut rng = Rng(n ^ 0x5C21_97B0);
    let normal =
        (-2.0 * rng.unit().max(1e-12).ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos();
    let target = (20_000.0 * (0.7 * normal).exp()).clamp(5_000.0, 80_000.0) as usize;
    let mut js = String::with_capacity(target + 512);
    writeln!(js, "/*! bundle {n} */\n\"use strict\";").expect("writing to a String");
    let mut f = 0u32;
    while js.len() < target {
        f += 1;
        let [a, b, c, d, e] = [0; 5].map(|_| WORDS[rng.below(WORDS.len() as u64) as usize]);
        let [x, y, z] = [100, 10_000, 16].map(|m| rng.below(m));
        writeln!(
            js,
            "function {a}{f}({b},{c}){{var {d}={b}.{e}||{{}};if({d}.length>{x}){{return {c}({d},\"{a}-{y}\")}}for(var i=0;i<{b}.length;i++){{{d}[i]={b}[i]*{z}}}return {d}}}",
        )
        .expect("writing to a String");
    }
    js
}
