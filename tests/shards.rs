//! `--shard K/N`: a job split by site over N runs of the binary.
//!
//! Twelve servers on 127.0.0.1 … 127.0.0.12 are twelve sites (an IP
//! address is its own site). The shards' outputs are read back and held
//! against the run of the whole job: disjoint, their union the whole
//! run's rows, each site in one shard, each server asked the same.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Output, Run, Table, TestServer, rows_without, signal, wait_for_lines, wait_within,
};

/// The loopback addresses the sites live on.
const IPS: [&str; 12] = [
    "127.0.0.1",
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
    "127.0.0.5",
    "127.0.0.6",
    "127.0.0.7",
    "127.0.0.8",
    "127.0.0.9",
    "127.0.0.10",
    "127.0.0.11",
    "127.0.0.12",
];

/// Shards of every job here.
const N: u32 = 3;

fn servers() -> Vec<TestServer> {
    IPS.iter().map(|ip| TestServer::start_on(ip)).collect()
}

/// The shard (of [`N`]) of a server's site, as the library computes it.
fn shard_of(server: &TestServer) -> u32 {
    scriptscrape::shard::of_site(&server.addr.ip().to_string(), N)
}

/// The site (IP address) of a `page_url`, or `None` for a line that is
/// not a URL.
fn site(page_url: &str) -> Option<String> {
    url::Url::parse(page_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

/// Every server's requests so far, path by path.
fn hits(servers: &[TestServer]) -> Vec<HashMap<String, usize>> {
    servers.iter().map(TestServer::all_hits).collect()
}

/// The requests made between two [`hits`] snapshots.
fn since(
    before: &[HashMap<String, usize>],
    after: &[HashMap<String, usize>],
) -> Vec<HashMap<String, usize>> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            a.iter()
                .map(|(path, n)| (path.clone(), n - b.get(path).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .collect()
}

/// Sums request counts, server by server.
fn add(into: &mut [HashMap<String, usize>], more: &[HashMap<String, usize>]) {
    for (into, more) in into.iter_mut().zip(more) {
        for (path, n) in more {
            *into.entry(path.clone()).or_default() += n;
        }
    }
}

/// The page report's rows as a multiset (`elapsed_ms` is the only column
/// that changes between two runs of the same pages).
fn page_rows(table: &Table) -> Vec<Vec<String>> {
    rows_without(table, &["elapsed_ms"])
}

fn stats(run: &Run, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(run.path(name)).expect("stats file")).expect("JSON")
}

/// What one run left: its page report, scripts and stats.
struct Outputs {
    pages: Table,
    scripts: Table,
    stats: Value,
    out: Output,
}

/// Runs the binary on `list` with `args`, its outputs named after `tag`.
fn scrape(run: &Run, list: &str, tag: &str, args: &[&str]) -> Outputs {
    let (scripts, pages, stats_file) = (
        format!("scripts-{tag}.csv"),
        format!("pages-{tag}.csv"),
        format!("stats-{tag}.json"),
    );
    let mut all = vec![
        list,
        "-o",
        &scripts,
        "--pages",
        &pages,
        "--stats",
        &stats_file,
    ];
    all.extend_from_slice(args);
    let out = run.run(&all, None);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    Outputs {
        pages: Table::read(&run.path(&pages)),
        scripts: Table::read(&run.path(&scripts)),
        stats: stats(run, &stats_file),
        out,
    }
}

/// Runs the binary with `args` and `env` set, bounded to 60 s.
fn run_with_env(run: &Run, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (out_path, err_path) = (run.path("env.stdout"), run.path("env.stderr"));
    let mut child = run
        .command(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start scriptscrape");
    let status = wait_within(&mut child, Duration::from_secs(60)).expect("ends within 60 s");
    Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read(&out_path).expect("stdout"),
        stderr: std::fs::read_to_string(&err_path).expect("stderr"),
    }
}

/// The list of the list tests: two pages per site, a 404 on every third
/// site, duplicates (a fragment, an upper-case scheme), invalid lines (one
/// twice), comments and blank lines, the sites interleaved.
fn list(servers: &[TestServer]) -> Vec<String> {
    let mut lines = vec![
        "# the nightly list".to_owned(),
        "not a url".to_owned(),
        String::new(),
    ];
    for (i, s) in servers.iter().enumerate() {
        lines.push(s.url(&format!("/gen/{i}")));
    }
    lines.push("mailto:someone@example.com".to_owned());
    for (i, s) in servers.iter().enumerate() {
        lines.push(s.url(&format!("/gen/{}", i + 20)));
        if i % 3 == 0 {
            lines.push(s.url("/status/404"));
        }
        if i % 2 == 0 {
            lines.push(s.url(&format!("/gen/{i}#top")));
        }
        if i % 4 == 1 {
            lines.push(
                s.url(&format!("/gen/{}", i + 20))
                    .replace("http://", "HTTP://"),
            );
        }
    }
    lines.push("not a url".to_owned());
    lines.push("ftp://127.0.0.5/file".to_owned());
    lines
}

/// Lines of a list that are neither blank nor comments: what each shard
/// accounts for, its own or left to the others.
fn counted(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
        .count() as u64
}

#[test]
fn shards_of_a_list_are_disjoint_and_join_into_the_whole_run() {
    let servers = servers();
    let run = Run::new();
    let lines = list(&servers);
    let list = run.urls("list.txt", &lines);

    // The three shards, one after another, each server's requests noted.
    let mut shards = Vec::new();
    let mut sharded_hits = vec![HashMap::new(); servers.len()];
    for k in 1..=N {
        let before = hits(&servers);
        let shard = format!("{k}/{N}");
        let done = scrape(&run, &list, &k.to_string(), &["--shard", &shard]);
        let asked = since(&before, &hits(&servers));
        // Nothing was asked of another shard's site.
        for (server, asked) in servers.iter().zip(&asked) {
            if shard_of(server) != k {
                assert!(
                    asked.is_empty(),
                    "shard {k} asked {}: {asked:?}",
                    server.addr
                );
            }
        }
        add(&mut sharded_hits, &asked);
        shards.push(done);
    }
    let before = hits(&servers);
    let whole = scrape(&run, &list, "whole", &[]);
    let whole_hits = since(&before, &hits(&servers));

    // Each server was asked the same, sharded or not.
    assert_eq!(sharded_hits, whole_hits);

    // Every page row is in exactly one shard, and the rows of all the
    // shards are the whole run's rows; the same for the scripts.
    let mut joined_pages = Vec::new();
    let mut joined_scripts = Vec::new();
    for s in &shards {
        joined_pages.extend(page_rows(&s.pages));
        joined_scripts.extend(rows_without(&s.scripts, &[]));
        assert_eq!(s.pages.headers, whole.pages.headers);
        assert_eq!(s.scripts.headers, whole.scripts.headers);
    }
    joined_pages.sort();
    joined_scripts.sort();
    assert_eq!(joined_pages, page_rows(&whole.pages));
    assert_eq!(joined_scripts, rows_without(&whole.scripts, &[]));
    assert!(!joined_scripts.is_empty());
    let mut urls: Vec<&str> = shards
        .iter()
        .flat_map(|s| s.pages.column("page_url"))
        .collect();
    let listed = urls.len();
    urls.sort_unstable();
    urls.dedup();
    assert_eq!(urls.len(), listed, "a page in two shards");

    // Invalid lines are the first shard's; every site is in one shard, the
    // one its hash names.
    let mut site_shards: BTreeMap<String, u32> = BTreeMap::new();
    for (s, k) in shards.iter().zip(1..) {
        for row in 0..s.pages.rows.len() {
            let page_url = s.pages.get(row, "page_url");
            match site(page_url).filter(|_| s.pages.get(row, "error") != "invalid_url") {
                None => {
                    assert_eq!(k, 1, "invalid line {page_url:?} in shard {k}");
                    assert_eq!(s.pages.get(row, "error"), "invalid_url");
                }
                Some(site) => {
                    let first = *site_shards.entry(site.clone()).or_insert(k);
                    assert_eq!(first, k, "{site} in shards {first} and {k}");
                    assert_eq!(scriptscrape::shard::of_site(&site, N), k, "{site}");
                }
            }
        }
    }
    assert_eq!(site_shards.len(), servers.len());
    let invalid = shards[0].pages.rows_where("error", "invalid_url").len();
    assert_eq!(invalid, 3, "not a url, mailto:, ftp://");
    // Each shard has work in this list (pinned by the shard vectors).
    for k in 1..=N {
        assert!(
            site_shards.values().any(|&s| s == k),
            "shard {k} has no site"
        );
    }

    // Every line is accounted for in each shard: its own pages and
    // duplicates, and the lines left to the others; the shards' counts add
    // up to the whole run's.
    let total = counted(&lines);
    let mut pages_sum = 0;
    let mut duplicates_sum = 0;
    for (s, k) in shards.iter().zip(1..=N) {
        let pages = &s.stats["pages"];
        let own = pages["total"].as_u64().unwrap();
        let duplicates = pages["duplicates_skipped"].as_u64().unwrap();
        let others = pages["other_shards"].as_u64().unwrap();
        assert_eq!(own as usize, s.pages.rows.len());
        assert_eq!(own + duplicates + others, total, "shard {k}: {pages}");
        assert_eq!(s.stats["shard"], json!({ "index": k, "count": N }));
        let failed = pages["failed"].as_u64().unwrap();
        assert_eq!(s.out.code, i32::from(failed > 0), "{}", s.out.stderr);
        assert_eq!(s.stats["exit_status"], s.out.code);
        // The summary line says which shard this is, and what it left.
        let said = format!(
            "{} left to other shards (--shard {k}/{N})",
            if others == 1 {
                "1 line".to_owned()
            } else {
                format!("{others} lines")
            }
        );
        assert!(s.out.stderr.contains(&said), "{}", s.out.stderr);
        pages_sum += own;
        duplicates_sum += duplicates;
    }
    let pages = &whole.stats["pages"];
    assert_eq!(pages_sum, pages["total"].as_u64().unwrap());
    assert_eq!(
        duplicates_sum,
        pages["duplicates_skipped"].as_u64().unwrap()
    );
    // Six fragments, three upper-case schemes, one invalid line twice.
    assert_eq!(duplicates_sum, 10, "{pages}");
    assert_eq!(pages["other_shards"], 0);
    assert_eq!(whole.stats["shard"], Value::Null);
    assert!(!whole.out.stderr.contains("shard"), "{}", whole.out.stderr);
}

#[test]
fn the_shard_may_come_from_the_environment() {
    let servers = servers();
    let run = Run::new();
    let list = run.urls("list.txt", &list(&servers));
    let flag = scrape(&run, &list, "flag", &["--shard", "2/3"]);

    let args = [
        list.as_str(),
        "--pages",
        "pages-env.csv",
        "-o",
        "scripts-env.csv",
    ];
    let out = run_with_env(&run, &args, &[("SCRIPTSCRAPE_SHARD", "2/3")]);
    assert!(out.stderr.contains("(--shard 2/3)"), "{}", out.stderr);
    let env = Table::read(&run.path("pages-env.csv"));
    assert_eq!(page_rows(&env), page_rows(&flag.pages));
    assert_eq!(
        rows_without(&Table::read(&run.path("scripts-env.csv")), &[]),
        rows_without(&flag.scripts, &[])
    );

    // The command line wins over the environment, as for every option.
    let args = [
        list.as_str(),
        "--shard",
        "1/3",
        "--pages",
        "pages-1.csv",
        "-o",
        "scripts-1.csv",
    ];
    let out = run_with_env(&run, &args, &[("SCRIPTSCRAPE_SHARD", "2/3")]);
    assert!(out.stderr.contains("(--shard 1/3)"), "{}", out.stderr);
    let first = Table::read(&run.path("pages-1.csv"));
    assert!(!first.rows_where("error", "invalid_url").is_empty());

    // A bad value there is refused as on the command line.
    let args = [list.as_str(), "--pages", "p.csv", "-o", "s.csv"];
    let out = run_with_env(&run, &args, &[("SCRIPTSCRAPE_SHARD", "0/3")]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("K counts from 1 to N, as in 1/3"),
        "{}",
        out.stderr
    );
    assert!(!run.path("p.csv").exists());
}

#[test]
fn a_bad_shard_is_one_line_and_nothing_is_fetched() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("list.txt", &[server.url("/gen/1")]);
    for (value, says) in [
        ("0/3", "K counts from 1 to N, as in 1/3"),
        ("-1/3", "K counts from 1 to N, as in 1/3"),
        ("4/3", "there is no shard 4 of 3 (the last is 3/3)"),
        ("3", "expected K/N"),
        ("/3", "expected K/N"),
        ("1/0", "must be at least 1"),
        ("1/100001", "at most 100000"),
        ("two/three", "expected K/N"),
    ] {
        let out = run.run(
            &[&list, "--shard", value, "-o", "s.csv", "--pages", "p.csv"],
            None,
        );
        assert_eq!(out.code, 2, "{value}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{value}: {}", out.stderr);
        assert!(out.stderr.contains("--shard"), "{value}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{value}: {}", out.stderr);
        assert!(!run.path("s.csv").exists() && !run.path("p.csv").exists());
    }
    assert!(server.all_hits().is_empty());
}

#[test]
fn a_shard_with_nothing_to_do_says_so_and_succeeds() {
    let server = TestServer::start();
    let k = shard_of(&server);
    let run = Run::new();
    let list = run.urls("list.txt", &[server.url("/gen/1"), server.url("/gen/2")]);
    for other in (1..=N).filter(|&o| o != k) {
        let shard = format!("{other}/{N}");
        let done = scrape(&run, &list, &shard.replace('/', "-"), &["--shard", &shard]);
        assert_eq!(done.out.code, 0, "{}", done.out.stderr);
        assert!(done.pages.rows.is_empty() && done.scripts.rows.is_empty());
        assert_eq!(done.stats["pages"]["other_shards"], 2);
        assert!(
            done.out.stderr.contains(&format!(
                "warning: the input held no URLs of this shard's sites (--shard {shard})"
            )),
            "{}",
            done.out.stderr
        );
    }
    assert!(server.all_hits().is_empty());
}

/// Each server's `/page/home` links to `/page/a` and `/page/b` of its own
/// site and to `/gen/{1000+i}` of the next server's: a link to another
/// site, found on that page only.
fn crawl_site(servers: &[TestServer]) {
    for (i, server) in servers.iter().enumerate() {
        let next = &servers[(i + 1) % servers.len()];
        let home = format!(
            "<script src=/home.js></script><a href=/page/a>a</a><a href=/page/b>b</a>\
             <a href=\"{}\">next site</a>",
            next.url(&format!("/gen/{}", 1000 + i))
        );
        server.set_page("home", &home);
        server.set_page("a", "<script src=/a.js></script><a href=/page/b>b</a>");
        server.set_page("b", "<script>b()</script>");
    }
}

#[test]
fn a_crawl_of_many_sites_splits_by_site() {
    let servers = servers();
    crawl_site(&servers);
    let run = Run::new();
    let seeds: Vec<String> = servers.iter().map(|s| s.url("/page/home")).collect();
    let list = run.urls("seeds.txt", &seeds);
    // Each crawl stays on its site (--scope host): the shards' crawls are
    // the whole crawl, robots.txt included, each asked by one shard.
    let crawl = ["--depth", "2"];
    let mut joined_pages = Vec::new();
    let mut joined_scripts = Vec::new();
    let mut sharded_hits = vec![HashMap::new(); servers.len()];
    let mut off_scope = 0;
    for k in 1..=N {
        let before = hits(&servers);
        let shard = format!("{k}/{N}");
        let mut args = crawl.to_vec();
        args.extend(["--shard", &shard]);
        let done = scrape(&run, &list, &format!("host-{k}"), &args);
        assert_eq!(done.out.code, 0, "{}", done.out.stderr);
        let asked = since(&before, &hits(&servers));
        for (server, asked) in servers.iter().zip(&asked) {
            if shard_of(server) != k {
                assert!(
                    asked.is_empty(),
                    "shard {k} asked {}: {asked:?}",
                    server.addr
                );
            }
        }
        add(&mut sharded_hits, &asked);
        joined_pages.extend(page_rows(&done.pages));
        joined_scripts.extend(rows_without(&done.scripts, &[]));
        off_scope += done.stats["crawl"]["off_scope"].as_u64().unwrap();
    }
    let before = hits(&servers);
    let whole = scrape(&run, &list, "host-whole", &crawl);
    assert_eq!(whole.out.code, 0, "{}", whole.out.stderr);
    assert_eq!(sharded_hits, since(&before, &hits(&servers)));
    for asked in &sharded_hits {
        assert_eq!(asked.get("/robots.txt"), Some(&1), "{asked:?}");
    }
    joined_pages.sort();
    joined_scripts.sort();
    assert_eq!(joined_pages, page_rows(&whole.pages));
    assert_eq!(joined_scripts, rows_without(&whole.scripts, &[]));
    assert_eq!(whole.pages.rows.len(), 3 * servers.len());
    // The link to the next site: off scope in both.
    assert_eq!(
        off_scope,
        whole.stats["crawl"]["off_scope"].as_u64().unwrap()
    );
    assert_eq!(off_scope, servers.len() as u64);
}

#[test]
fn a_crawl_passes_over_links_to_other_shards_sites_as_off_scope() {
    let servers = servers();
    crawl_site(&servers);
    let run = Run::new();
    let seeds: Vec<String> = servers.iter().map(|s| s.url("/page/home")).collect();
    let list = run.urls("seeds.txt", &seeds);
    // --scope any: the link to the next site is followed, but only when
    // that site is this shard's.
    let crawl = ["--depth", "1", "--scope", "any", "--allow-private"];
    let next = |i: usize| &servers[(i + 1) % servers.len()];
    for k in 1..=N {
        let before = hits(&servers);
        let shard = format!("{k}/{N}");
        let mut args = crawl.to_vec();
        args.extend(["--shard", &shard]);
        let done = scrape(&run, &list, &format!("any-{k}"), &args);
        assert_eq!(done.out.code, 0, "{}", done.out.stderr);
        let asked = since(&before, &hits(&servers));
        let ours: Vec<usize> = (0..servers.len())
            .filter(|&i| shard_of(&servers[i]) == k)
            .collect();
        let mut passed_over = 0;
        for &i in &ours {
            let link = format!("/gen/{}", 1000 + i);
            let j = (i + 1) % servers.len();
            if shard_of(next(i)) == k {
                assert_eq!(asked[j].get(&link), Some(&1), "shard {k}: {link} on {j}");
                let url = next(i).url(&link);
                assert_eq!(done.pages.for_page(&url, "depth"), "1");
            } else {
                passed_over += 1;
                assert_eq!(asked[j].get(&link), None, "shard {k} fetched {link}");
            }
        }
        // Nothing asked of other shards' sites, not even robots.txt.
        for (i, asked) in asked.iter().enumerate() {
            if shard_of(&servers[i]) != k {
                assert!(
                    asked.is_empty(),
                    "shard {k} asked {}: {asked:?}",
                    servers[i].addr
                );
            }
        }
        assert_eq!(done.stats["crawl"]["off_scope"], passed_over, "shard {k}");
        // Pages of the shard's own sites only: homes, a, b, and the links
        // that stayed in the shard.
        for url in done.pages.column("page_url") {
            let site = site(url).expect("a URL");
            assert_eq!(scriptscrape::shard::of_site(&site, N), k, "{url}");
        }
        assert_eq!(
            done.pages.rows.len(),
            3 * ours.len() + ours.len() - passed_over as usize
        );
    }
    // Without shards, every link to the next site is followed.
    let whole = scrape(&run, &list, "any-whole", &crawl);
    assert_eq!(whole.stats["crawl"]["off_scope"], 0);
    assert_eq!(whole.pages.rows.len(), 4 * servers.len());
}

#[test]
fn resume_continues_only_the_same_shard() {
    let server = TestServer::start();
    let k = shard_of(&server);
    let other = k % N + 1;
    let run = Run::new();
    let urls = [
        server.url("/gen/1"),
        server.url("/gen/2"),
        server.url("/slow-gen/20000/3"),
    ];
    let list = run.urls("list.txt", &urls);
    let shard = format!("{k}/{N}");
    let outputs = [
        list.as_str(),
        "--grace",
        "0",
        "-o",
        "s.csv",
        "--pages",
        "p.csv",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        outputs.iter().chain(extra).map(|s| s.to_string()).collect()
    };

    // Shard k, stopped once two pages are written.
    let args = with(&["--shard", &shard]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = run
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scriptscrape");
    wait_for_lines(&run.path("p.csv.part"), 2);
    signal(&child, libc::SIGTERM);
    wait_within(&mut child, Duration::from_secs(20)).expect("stops");
    let part = std::fs::read(run.path("p.csv.part")).expect("p.csv.part");

    // Another shard, or none, is refused in one line; nothing is fetched
    // and the .part files stay as they were.
    let hits_before = server.all_hits();
    let another = format!("{other}/{N}");
    for (extra, says) in [
        (
            vec!["--shard", another.as_str(), "--resume"],
            format!("it holds shard {shard} of a job, and this run is --shard {another}"),
        ),
        (
            vec!["--resume"],
            format!("it holds shard {shard} of a job, and this run has no --shard"),
        ),
    ] {
        let args = with(&extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run.run(&args, None);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(&says), "{}", out.stderr);
        assert!(out.stderr.contains("cannot resume from"), "{}", out.stderr);
        assert_eq!(std::fs::read(run.path("p.csv.part")).unwrap(), part);
    }
    assert_eq!(server.all_hits(), hits_before);

    // The same shard, here from the environment, resumes: each page once.
    let fast = urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n";
    std::fs::write(run.path("list.txt"), fast).unwrap();
    let args = with(&["--resume"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_with_env(&run, &args, &[("SCRIPTSCRAPE_SHARD", &shard)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("from the interrupted run"),
        "{}",
        out.stderr
    );
    let pages = Table::read(&run.path("p.csv"));
    let mut got = pages.column("page_url");
    got.sort_unstable();
    assert_eq!(
        got,
        [
            server.url("/gen/1"),
            server.url("/gen/2"),
            server.url("/gen/3")
        ]
    );
    assert!(!run.path("p.csv.part.run").exists());

    // A whole run's files are not continued as a shard's either.
    let whole = with(&[]);
    let whole: Vec<&str> = whole.iter().map(String::as_str).collect();
    std::fs::write(run.path("list.txt"), urls.join("\n") + "\n").unwrap();
    let mut child = run
        .command(&whole)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scriptscrape");
    wait_for_lines(&run.path("p.csv.part"), 2);
    signal(&child, libc::SIGTERM);
    wait_within(&mut child, Duration::from_secs(20)).expect("stops");
    let args = with(&["--shard", &shard, "--resume"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run.run(&args, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "it holds a whole job (no --shard), and this run is --shard {shard}"
        )),
        "{}",
        out.stderr
    );
}
