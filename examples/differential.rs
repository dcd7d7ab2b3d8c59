//! The differential test's long run: generated hard pages through the
//! comparison of tests/differential.rs, on every core.
//!
//! ```text
//! cargo run --release --example differential -- --pages 100000 [--seed S] [--threads N] [--keep DIR]
//! ```
//!
//! Pages are benches/hard_pages.rs's seeds S to S + pages - 1 (S is 0
//! unless given), so a failing seed is page 1 of `--seed SEED --pages 1`.
//! Progress goes to standard error every 10,000 pages; the count of pages
//! that differ, and what differs on the first few, to standard output.
//! With `--keep DIR`, each of those first few is written there (the page,
//! and a smaller page that still differs), never over an existing file.
//! `--file PAGE.html` runs the comparison on one page and prints what
//! the sides agree it holds, or what differs. `--dir DIR` runs it on
//! every `.html` and `.htm` file under DIR (saved real pages: the share
//! the fast scan hands to html5ever there is the one users see), failing
//! files named by their path.
//! It also counts the pages the fast scan was sure of, and why it handed
//! the others to html5ever: the pages that test the scan itself. Exits 1
//! if any page differs (or made the extractor panic), 2 on a usage error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use scriptscrape::extract::{Extractor, Unsure};
use url::Url;

#[path = "../benches/differential_check.rs"]
mod check;
#[path = "../benches/hard_pages.rs"]
mod hard_pages;

/// Failing pages reported in full (and kept with `--keep`).
const REPORTED: usize = 5;

/// Failing seeds listed.
const LISTED: usize = 100;

/// Pages between two progress lines.
const PROGRESS_EVERY: u64 = 10_000;

/// Seeds a worker takes at a time: enough that the shared counter costs
/// nothing, few enough that the workers finish together.
const BATCH: u64 = 64;

/// Calls of the comparison the reduction of one page may make.
const REDUCTION_ATTEMPTS: usize = 20_000;

struct Args {
    pages: u64,
    seed: u64,
    threads: usize,
    keep: Option<PathBuf>,
    /// Compare this page instead of generated ones.
    file: Option<PathBuf>,
    /// Compare the pages saved under this directory instead.
    files: Vec<PathBuf>,
}

const USAGE: &str = "usage: differential --pages N [--seed S] [--threads N] [--keep DIR]\n       differential --dir DIR [--threads N]\n       differential --file PAGE.html";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        pages: 0,
        seed: 0,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        keep: None,
        file: None,
        files: Vec::new(),
    };
    let mut pages = None;
    let mut dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.replace([',', '_'], "")
                .parse::<u64>()
                .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--pages" => pages = Some(number(value()?)?),
            "--seed" => args.seed = number(value()?)?,
            "--threads" => {
                args.threads = number(value()?)?
                    .try_into()
                    .ok()
                    .filter(|&t| t > 0)
                    .ok_or("--threads must be at least 1")?
            }
            "--keep" => args.keep = Some(PathBuf::from(value()?)),
            "--file" => args.file = Some(PathBuf::from(value()?)),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.file.is_some() {
        return Ok(args);
    }
    if let Some(dir) = dir {
        html_files(&dir, &mut args.files).map_err(|e| format!("{}: {e}", dir.display()))?;
        args.files.sort();
        if args.files.is_empty() {
            return Err(format!("no .html or .htm file under {}", dir.display()));
        }
        args.pages = args.files.len() as u64;
        return Ok(args);
    }
    args.pages = pages.ok_or("--pages is required")?;
    args.seed
        .checked_add(args.pages)
        .ok_or("--seed plus --pages is past the last seed")?;
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("differential: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(file) = &args.file {
        return one_page(file);
    }
    if let Some(dir) = &args.keep
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("differential: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }

    let url = Url::parse(check::PAGE_URL).expect("a valid URL");
    let fast_scan = Extractor::new().links(true);
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let failed: Mutex<Vec<(u64, String)>> = Mutex::default();
    let bytes = AtomicU64::new(0);
    // Why the fast scan handed pages to html5ever, and how many.
    let fell_back: Vec<BTreeMap<&str, u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut fell_back = BTreeMap::new();
                    loop {
                        let first = next.fetch_add(BATCH, Ordering::Relaxed);
                        if first >= args.pages {
                            break;
                        }
                        for i in first..(first + BATCH).min(args.pages) {
                            let seed = args.seed + i;
                            let html = match args.files.get(i as usize) {
                                Some(path) => match std::fs::read(path) {
                                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                                    Err(e) => {
                                        let why = format!("  cannot read it: {e}\n");
                                        failed.lock().expect("no worker panics").push((i, why));
                                        continue;
                                    }
                                },
                                None => hard_pages::page(seed),
                            };
                            bytes.fetch_add(html.len() as u64, Ordering::Relaxed);
                            if let Some(d) = compare(&html) {
                                let id = if args.files.is_empty() { seed } else { i };
                                failed.lock().expect("no worker panics").push((id, d));
                            }
                            if let Err(Unsure(why)) = fast_scan.extract_page_fast(&url, &html) {
                                *fell_back.entry(why).or_default() += 1;
                            }
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n.is_multiple_of(PROGRESS_EVERY) {
                                let mismatches = failed.lock().expect("no worker panics").len();
                                eprintln!(
                                    "{n} pages, {mismatches} mismatches, {:.1} s",
                                    started.elapsed().as_secs_f64()
                                );
                            }
                        }
                    }
                    fell_back
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("workers catch panics"))
            .collect()
    });
    let mut unsure: BTreeMap<&str, u64> = BTreeMap::new();
    for (why, n) in fell_back.into_iter().flatten() {
        *unsure.entry(why).or_default() += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut failed = failed.into_inner().expect("no worker panics");
    failed.sort();
    if !args.files.is_empty() {
        return report_files(&args, bytes.into_inner(), elapsed, &failed, &unsure);
    }
    println!(
        "{} pages (seeds {}..{}, {:.0} MB), {} threads, {elapsed:.1} s: {} mismatches",
        args.pages,
        args.seed,
        args.seed + args.pages,
        bytes.into_inner() as f64 / 1e6,
        args.threads,
        failed.len()
    );
    let sure = args.pages - unsure.values().sum::<u64>();
    println!(
        "the fast scan was sure of {sure} pages ({:.1}%); it handed the others to html5ever for {unsure:?}",
        100.0 * sure as f64 / args.pages.max(1) as f64
    );
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    let seeds: Vec<u64> = failed.iter().map(|(seed, _)| *seed).take(LISTED).collect();
    let more = failed.len().saturating_sub(LISTED);
    println!(
        "failing seeds: {seeds:?}{}",
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    for (seed, differences) in failed.iter().take(REPORTED) {
        println!("\nseed {seed}:\n{differences}");
        let Some(dir) = &args.keep else { continue };
        let html = hard_pages::page(*seed);
        let small = check::minimize(&html, &|p| compare(p).is_some(), REDUCTION_ATTEMPTS);
        for (suffix, page) in [("", &html), (".reduced", &small)] {
            match keep(dir, &format!("seed-{seed}{suffix}"), page) {
                Ok(path) => println!("  written to {}", path.display()),
                Err(e) => eprintln!("differential: cannot write seed {seed}'s page: {e}"),
            }
        }
    }
    if args.keep.is_none() {
        println!("\n(--keep DIR writes these pages, and smaller ones that still differ)");
    }
    ExitCode::FAILURE
}

/// `--dir`'s report: what the files held, which differ (by path), and
/// the share the fast scan was sure of.
fn report_files(
    args: &Args,
    bytes: u64,
    elapsed: f64,
    failed: &[(u64, String)],
    unsure: &BTreeMap<&str, u64>,
) -> ExitCode {
    let pages = args.files.len() as u64;
    println!(
        "{pages} files ({:.1} MB), {} threads, {elapsed:.1} s: {} mismatches",
        bytes as f64 / 1e6,
        args.threads,
        failed.len()
    );
    let handed: u64 = unsure.values().sum();
    println!(
        "the fast scan was sure of {} files; it handed {handed} ({:.2}%) to html5ever for {unsure:?}",
        pages - handed,
        100.0 * handed as f64 / pages.max(1) as f64
    );
    for (i, differences) in failed.iter().take(REPORTED) {
        println!("\n{}:\n{differences}", args.files[*i as usize].display());
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every `.html` and `.htm` file under `dir`, in no particular order.
fn html_files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            html_files(&path, found)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// `--file`: the comparison on one page (a kept one, or one edited by
/// hand), read as UTF-8 (lossily).
fn one_page(file: &Path) -> ExitCode {
    let html = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("differential: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let url = Url::parse(check::PAGE_URL).expect("a valid URL");
    match Extractor::new().links(true).extract_page_fast(&url, &html) {
        Ok(_) => println!("the fast scan is sure of the page"),
        Err(Unsure(why)) => println!("the fast scan hands the page to html5ever: {why}"),
    }
    match compare(&html) {
        None => {
            let page = check::compare(&html).expect("the sides agree");
            println!("{:#?}", page);
            println!("every side agrees");
            ExitCode::SUCCESS
        }
        Some(differences) => {
            println!("{differences}");
            ExitCode::FAILURE
        }
    }
}

/// What differs on `html`, if anything; a panic of either side counts.
fn compare(html: &str) -> Option<String> {
    std::panic::catch_unwind(|| check::compare(html).err())
        .unwrap_or_else(|_| Some("  panicked (see standard error)\n".to_owned()))
}

/// Writes `page` to `DIR/NAME.html`, or to `DIR/NAME-2.html` and so on if
/// that exists: a file already there is never replaced.
fn keep(dir: &Path, name: &str, page: &str) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    for n in 1.. {
        let path = if n == 1 {
            dir.join(format!("{name}.html"))
        } else {
            dir.join(format!("{name}-{n}.html"))
        };
        match std::fs::File::create_new(&path) {
            Ok(mut file) => {
                file.write_all(page.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("some name is free")
}
