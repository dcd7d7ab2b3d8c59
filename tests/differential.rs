//! The extractor against scraper's full DOM.
//!
//! `extract` builds its own minimal tree from html5ever's tree builder
//! (what scraper's DOM kept but extraction never read was most of the
//! parse stage's cost besides tokenising), and tries a fast scan without
//! a tree first. These tests parse the same pages with scraper and walk
//! its DOM in tree order, and check that the extractor, through its tree
//! alone and as it runs, lists the same scripts (attributes, text, nonce,
//! in the head or not), links and CSP `<meta>`s;
//! benches/differential_check.rs is the comparison.
//!
//! The pages are the conformance pages, the sample pages, the benchmark's
//! generated pages, and 2,500 of the hard pages of benches/hard_pages.rs
//! (the first seeds whose page is at most 6 KB). `cargo run --release
//! --example differential -- --pages 100000` runs the same comparison on
//! every seed, as many as asked.

use std::path::Path;

#[path = "../benches/differential_check.rs"]
mod check;
#[path = "../benches/hard_pages.rs"]
mod hard_pages;
#[path = "../benches/pages.rs"]
pub mod pages;

/// Hard pages checked here: the first this many seeds whose page is at
/// most [`HARD_PAGE_BYTES`] long.
const HARD_PAGES: usize = 2_500;

/// Pages up to 6 KB are three in five of all, average 2.2 KB, and hold
/// every construct the generator makes: a debug build parses them a few
/// times faster than the whole mix, which the example runs.
const HARD_PAGE_BYTES: usize = 6_000;

/// The failing pages a failure message shows in full.
const SHOWN: usize = 3;

#[test]
fn sample_pages_agree_with_scrapers_dom() {
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
        match check::compare(html) {
            Ok(page) => scripts += page.scripts.len(),
            Err(differences) => differ.push(format!("{name}:\n{differences}")),
        }
    }
    assert!(scripts > 1_500, "only {scripts} scripts compared");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

#[test]
fn hard_pages_agree_with_scrapers_dom() {
    let seeds: Vec<u64> = (0..)
        .filter(|&seed| hard_pages::page(seed).len() <= HARD_PAGE_BYTES)
        .take(HARD_PAGES)
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut failed, scripts) = std::thread::scope(|scope| {
        let workers: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(threads))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    let mut scripts = 0;
                    for &seed in chunk {
                        match check::compare(&hard_pages::page(seed)) {
                            Ok(page) => scripts += page.scripts.len(),
                            Err(differences) => failed.push((seed, differences)),
                        }
                    }
                    (failed, scripts)
                })
            })
            .collect();
        workers.into_iter().fold((Vec::new(), 0), |(mut f, s), w| {
            let (failed, scripts) = w.join().expect("a worker panicked");
            f.extend(failed);
            (f, s + scripts)
        })
    });
    failed.sort();
    let shown: Vec<String> = failed
        .iter()
        .take(SHOWN)
        .map(|(seed, differences)| {
            let html = hard_pages::page(*seed);
            let small = check::minimize(&html, &|p| check::compare(p).is_err(), 2_000);
            format!(
                "seed {seed}:\n{differences}  reduced page:\n{small}\n  page:\n{html}\n  (end of seed {seed})"
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {HARD_PAGES} hard pages differ (seeds {:?}); the first:\n{}",
        failed.len(),
        failed.iter().map(|(seed, _)| seed).collect::<Vec<_>>(),
        shown.join("\n")
    );
    assert!(scripts > 5 * HARD_PAGES, "only {scripts} scripts compared");
}
