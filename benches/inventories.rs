//! Two runs' outputs for the `diff` scenario: scripts files and page
//! reports as a scrape writes them, generated rather than scraped so that a
//! run of millions of rows takes seconds to make.
//!
//! Their shape is that of real inventories: 500 sites, each page 10–30
//! scripts, most of them shared (the same tag manager, CDN libraries and
//! inline snippets on page after page), some per page. The later run
//! differs on about 1 page in 100 (a script added, an integrity dropped,
//! an inline script edited), and about 1 page in 200 fails in each run.

use std::path::{Path, PathBuf};

use scriptscrape::output::{PAGE_COLUMNS, SCRIPT_COLUMNS};

/// splitmix64's finaliser: the same inputs give the same runs everywhere.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A base64-looking digest of `n`, `len` characters long.
fn digest(n: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = mix(n);
    (0..len)
        .map(|i| {
            if i % 10 == 0 {
                x = mix(x);
            }
            let c = ALPHABET[(x & 63) as usize] as char;
            x >>= 6;
            c
        })
        .collect()
}

/// What one run wrote: its scripts file and page report, and the number of
/// script rows.
pub struct Run {
    pub scripts: PathBuf,
    pub pages: PathBuf,
    pub rows: u64,
}

/// Writes run `later` (false: the earlier one) of `pages` pages into `dir`.
pub fn write(dir: &Path, pages: u64, later: bool) -> Run {
    let name = if later { "new" } else { "old" };
    let scripts_path = dir.join(format!("diff-{pages}-{name}.csv"));
    let pages_path = dir.join(format!("diff-{pages}-{name}-pages.csv"));
    let file = |p: &Path| std::io::BufWriter::new(std::fs::File::create(p).expect("bench file"));
    let mut scripts = csv::Writer::from_writer(file(&scripts_path));
    let mut report = csv::Writer::from_writer(file(&pages_path));
    scripts.write_record(SCRIPT_COLUMNS).expect("write");
    report.write_record(PAGE_COLUMNS).expect("write");
    let mut rows = 0;
    for n in 0..pages {
        let site = n % 500;
        let page_url = format!("https://shop{site}.example/p/{n}");
        let r = mix(n);
        // Each run fails its own pages.
        if mix(n ^ if later { 0xF00D } else { 0xBEEF }).is_multiple_of(200) {
            report
                .write_record([
                    &page_url,
                    "",
                    "",
                    "timeout",
                    "0",
                    "0",
                    "30000",
                    "no response in 30 s",
                    "",
                    "3",
                    "0",
                    "",
                    // csp: none.
                    "",
                ])
                .expect("write");
            continue;
        }
        let changed = later && r % 100 == 7;
        let mut count = 10 + r % 21;
        if changed {
            count += 1;
        }
        for i in 0..count {
            let x = mix(r ^ i);
            let skimmer = changed && i == count - 1;
            let inline = !skimmer && x.is_multiple_of(3);
            let mut row: Vec<String> = Vec::with_capacity(SCRIPT_COLUMNS.len());
            let (src, host, third_party) = if inline {
                (String::new(), String::new(), false)
            } else if skimmer {
                let src = format!("https://cdn-metrics{n}.example/m.js");
                let host = format!("cdn-metrics{n}.example");
                (src, host, true)
            } else if x.is_multiple_of(5) {
                // A first-party bundle, per site and build.
                let src = format!(
                    "https://shop{site}.example/static/app.{}.js",
                    digest(site * 7 + x % 4, 8)
                );
                (src, format!("shop{site}.example"), false)
            } else {
                // One of 300 third-party scripts.
                let k = x % 300;
                let host = format!("cdn{k}.vendor{}.example", k % 40);
                let src = format!("https://{host}/lib/v{}/script{k}.js?id=ABC{k}", k % 7);
                (src, host, true)
            };
            // One in four external scripts carries SRI; one changed page
            // drops it from its first script.
            let mut integrity = if !inline && x % 4 == 1 {
                format!("sha384-{}", digest(x % 300, 64))
            } else {
                String::new()
            };
            if changed && i == 0 {
                integrity.clear();
            }
            // Inline snippets repeat across pages: 2,000 distinct texts,
            // one of which a changed page edits.
            let mut text = x % 2_000;
            if changed && inline && i < 3 {
                text += 10_000;
            }
            let (bytes, sha) = if inline {
                (
                    (200 + text % 3_000).to_string(),
                    format!("sha256-{}", digest(text, 43)),
                )
            } else {
                (String::new(), String::new())
            };
            row.extend([
                page_url.clone(),
                page_url.clone(),
                i.to_string(),
                src,
                inline.to_string(),
                if x.is_multiple_of(11) { "module" } else { "" }.to_owned(),
                (x.is_multiple_of(7)).to_string(),
                (x.is_multiple_of(13)).to_string(),
                "false".to_owned(),
                integrity,
                if x % 4 == 1 { "anonymous" } else { "" }.to_owned(),
                bytes,
                sha,
                if inline { "" } else { "true" }.to_owned(),
                "false".to_owned(),
                host,
                third_party.to_string(),
                if i < count / 2 { "head" } else { "body" }.to_owned(),
                (x.is_multiple_of(17)).to_string(),
            ]);
            // Columns a run without --fetch-scripts leaves empty.
            row.resize(SCRIPT_COLUMNS.len(), String::new());
            scripts.write_record(&row).expect("write");
        }
        rows += count;
        report
            .write_record([
                page_url.as_str(),
                page_url.as_str(),
                "200",
                "",
                &count.to_string(),
                "60000",
                "120",
                "",
                "utf-8",
                "1",
                "0",
                "",
                // csp: none.
                "",
            ])
            .expect("write");
    }
    scripts.flush().expect("flush");
    report.flush().expect("flush");
    Run {
        scripts: scripts_path,
        pages: pages_path,
        rows,
    }
}
