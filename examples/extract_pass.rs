//! Extraction alone, for instruction counts (BENCHMARKS.md, "The fast
//! scan"): `extract_pass WAY PAGES PASSES` extracts the first PAGES
//! benchmark pages PASSES times, with html5ever's tree (`tree`) or the fast
//! scan (`fast`). Run it under `valgrind --tool=callgrind` with 1 and 2
//! passes: the difference is one pass, without the pages' generation.

// Shared with the benches, which use all of it.
#[allow(dead_code)]
#[path = "../benches/pages.rs"]
mod pages;

use scriptscrape::extract::Extractor;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: extract_pass tree|fast PAGES PASSES";
    let (Some(way), Some(pages), Some(passes)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
        args.get(2).and_then(|n| n.parse::<u32>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let extractor = match way.as_str() {
        "tree" => Extractor::new().tree_only(true),
        "fast" => Extractor::new(),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let bodies: Vec<String> = (0..pages)
        .map(|n| pages::page(n, pages::Size::Realistic))
        .collect();
    let url = url::Url::parse("http://127.0.0.1/p/0").expect("a URL");
    let mut scripts = 0;
    for _ in 0..passes {
        for body in &bodies {
            scripts += extractor.extract(&url, body).len();
        }
    }
    let bytes: usize = bodies.iter().map(String::len).sum();
    println!("{way}: {pages} pages, {bytes} bytes, {passes} passes, {scripts} scripts");
}
