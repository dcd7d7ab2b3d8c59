//! Crawl mode: the binary follows links on a loopback site of generated
//! pages (`/site/{n}`: cycles, many spellings of each link, off-scope and
//! non-HTML links).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::support::{Run, Table, TestServer, links_to, redirect_via, site_links};

/// Hops from `/site/0` to each page of the site, up to `max_depth`, as
/// paths; `/json` is linked from page 0.
fn site_depths(max_depth: u16) -> HashMap<String, u16> {
    let mut depths = HashMap::new();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(0u64, 0u16)]);
    seen.insert(0);
    while let Some((n, d)) = queue.pop_front() {
        depths.insert(format!("/site/{n}"), d);
        if d == max_depth {
            continue;
        }
        if n == 0 {
            depths.insert("/json".to_owned(), 1);
        }
        for k in site_links(n) {
            if seen.insert(k) {
                queue.push_back((k, d + 1));
            }
        }
    }
    depths
}

/// The path of one of the server's URLs.
fn path_of(server: &TestServer, url: &str) -> String {
    url.strip_prefix(&server.url(""))
        .unwrap_or_else(|| panic!("{url} is not on the test server"))
        .to_owned()
}

/// Requests the server saw for crawl pages (robots.txt aside).
fn page_hits(server: &TestServer) -> HashMap<String, usize> {
    server
        .all_hits()
        .into_iter()
        .filter(|(p, _)| p != "/robots.txt")
        .collect()
}

struct Crawled {
    /// page path → (depth, referrer path, error)
    pages: HashMap<String, (u16, Option<String>, String)>,
    rows: usize,
}

fn read_pages(run: &Run, server: &TestServer) -> Crawled {
    let table = crate::support::Table::read(&run.path("pages.csv"));
    let mut pages = HashMap::new();
    for i in 0..table.rows.len() {
        let url = table.get(i, "page_url");
        let depth: u16 = table.get(i, "depth").parse().expect("depth is a number");
        let referrer = match table.get(i, "referrer") {
            "" => None,
            r => Some(path_of(server, r)),
        };
        let error = table.get(i, "error").to_owned();
        let previous = pages.insert(path_of(server, url), (depth, referrer, error));
        assert!(previous.is_none(), "{url} has two rows");
    }
    Crawled {
        pages,
        rows: table.rows.len(),
    }
}

/// Each referrer is a fetched page one level up that links to the page.
fn check_referrers(crawled: &Crawled) {
    for (path, (depth, referrer, _)) in &crawled.pages {
        let Some(referrer) = referrer else {
            assert_eq!(*depth, 0, "{path} has no referrer");
            continue;
        };
        let (ref_depth, _, _) = crawled.pages[referrer];
        assert_eq!(ref_depth + 1, *depth, "{path} from {referrer}");
        let n: u64 = referrer.trim_start_matches("/site/").parse().unwrap();
        let linked = path == "/json" || {
            let k: u64 = path.trim_start_matches("/site/").parse().unwrap();
            site_links(n).contains(&k)
        };
        assert!(linked, "{referrer} does not link to {path}");
    }
}

/// Crawls the site from page 0 with `--depth 3 --max-pages 500` (and
/// `extra`) and checks what matters most: it ends by itself with exactly
/// 500 pages, each fetched once, none off scope, breadth first.
fn crawl_500(extra: &[&str]) -> (Run, crate::support::Output) {
    let server = TestServer::start();
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/0")]);
    let args = [
        &input,
        "--depth",
        "3",
        "--max-pages",
        "500",
        "--strip-query",
        "utm_*",
        "-c",
        "16",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ];
    let out = run.run(&[&args[..], extra].concat(), None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The site reaches far more than 500 pages in three hops.
    assert!(site_depths(3).len() > 1000);
    let crawled = read_pages(&run, &server);
    assert_eq!(crawled.rows, 500);

    // Each page requested once, 500 in all, none elsewhere.
    let hits = page_hits(&server);
    assert!(hits.values().all(|&n| n == 1), "{hits:?}");
    assert_eq!(hits.len(), 500);
    let expected = site_depths(3);
    for (path, (depth, _, error)) in &crawled.pages {
        assert_eq!(Some(depth), expected.get(path), "{path}");
        assert!(hits.contains_key(path), "{path}");
        let want = if path == "/json" { "not_html" } else { "" };
        assert_eq!(error, want, "{path}");
    }
    // Breadth first: every page within two hops made it (112 with
    // /json), and the rest are at depth 3.
    let near: Vec<&String> = expected
        .iter()
        .filter(|(_, d)| **d <= 2)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(near.len(), 112);
    for path in near {
        assert!(crawled.pages.contains_key(path), "{path} was not fetched");
    }
    check_referrers(&crawled);

    // Scripts of every HTML page, and the summary says what was left.
    let scripts = crate::support::Table::read(&run.path("scripts.csv"));
    assert_eq!(scripts.rows.len(), 499 * 2);
    assert!(
        out.stderr.contains("URLs discovered") && out.stderr.contains("left unfetched"),
        "{}",
        out.stderr
    );
    (run, out)
}

#[test]
fn a_cyclic_site_crawl_ends_at_max_pages_with_each_page_once() {
    crawl_500(&[]);
}

#[test]
fn past_its_memory_bound_the_frontier_waits_on_disk_and_the_crawl_is_the_same() {
    let (run, _) = crawl_500(&["--frontier-memory", "20", "--stats", "stats.json"]);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("stats.json")).unwrap()).unwrap();
    let spilled = stats["crawl"]["spilled"].as_u64().unwrap();
    assert!(spilled > 500, "{stats}");
    assert!(stats["crawl"]["left"].as_u64().unwrap() > 0, "{stats}");
}

#[test]
fn depth_bounds_the_crawl_and_each_spelling_is_one_page() {
    // Once with the frontier in memory, once mostly on disk.
    for frontier in ["100000", "7"] {
        let server = TestServer::start();
        let run = Run::new();
        let input = run.urls("seeds.txt", &[server.url("/site/0")]);
        let out = run.run(
            &[
                &input,
                "--depth",
                "2",
                "--strip-query",
                "utm_*",
                "--frontier-memory",
                frontier,
                "-o",
                "scripts.csv",
                "--pages",
                "pages.csv",
            ],
            None,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let crawled = read_pages(&run, &server);
        let expected = site_depths(2);
        assert_eq!(crawled.rows, expected.len());
        for (path, depth) in &expected {
            assert_eq!(crawled.pages.get(path).map(|p| p.0), Some(*depth), "{path}");
        }
        check_referrers(&crawled);
        let hits = page_hits(&server);
        assert_eq!(hits.len(), expected.len(), "{hits:?}");
        assert!(hits.values().all(|&n| n == 1), "{hits:?}");
        // robots.txt was asked for: crawls obey it by default.
        assert_eq!(server.hits("/robots.txt"), 1);
    }
}

#[test]
fn without_strip_query_tracking_parameters_make_other_urls() {
    let server = TestServer::start();
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/0")]);
    let out = run.run(&[&input, "--depth", "1", "--pages", "pages.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let crawled = read_pages(&run, &server);
    // Page 0 links to 1…10, itself and /json; its links to 3 and 9 carry
    // utm_ parameters, which are kept.
    let with_query: Vec<&String> = crawled.pages.keys().filter(|p| p.contains('?')).collect();
    assert_eq!(with_query.len(), 2, "{with_query:?}");
    assert_eq!(crawled.rows, 1 + 10 + 1);
}

#[test]
fn nofollow_off_scope_and_filters() {
    let server = TestServer::start();
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/1")]);
    let base = [&input, "--depth", "1", "--strip-query", "utm_*"];

    let out = run.run(&[&base[..], &["--pages", "a.csv"]].concat(), None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/site/nofollow-1"), 0);
    let table = crate::support::Table::read(&run.path("a.csv"));
    for url in table.column("page_url") {
        assert!(url.starts_with(&server.url("/site/")), "{url} is off scope");
    }

    let out = run.run(
        &[&base[..], &["--follow-nofollow", "--pages", "b.csv"]].concat(),
        None,
    );
    assert_eq!(out.code, 1, "the nofollow target is a 404: {}", out.stderr);
    assert_eq!(server.hits("/site/nofollow-1"), 1);

    // Page 1 links to 11…20 and 0: --include keeps 11…19, --exclude
    // drops 15.
    let out = run.run(
        &[
            &base[..],
            &[
                "--include",
                r"/site/1\d$",
                "--exclude",
                "/15$",
                "--pages",
                "c.csv",
            ],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = crate::support::Table::read(&run.path("c.csv"));
    let mut paths: Vec<String> = table
        .column("page_url")
        .iter()
        .map(|u| path_of(&server, u))
        .collect();
    paths.sort();
    let mut want: Vec<String> = (11..20)
        .filter(|k| *k != 15)
        .map(|k| format!("/site/{k}"))
        .chain(["/site/1".to_owned()])
        .collect();
    want.sort();
    assert_eq!(paths, want);
}

#[test]
fn robots_is_obeyed_by_default_in_a_crawl() {
    let server = TestServer::start();
    server.set_robots(200, "User-agent: *\nDisallow: /site/3\n");
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/0")]);
    let args = [&input, "--depth", "1", "--strip-query", "utm_*"];
    let out = run.run(&[&args[..], &["--pages", "a.csv"]].concat(), None);
    // A discovered URL robots.txt refuses is reported, not a failure.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/site/3"), 0);
    let table = crate::support::Table::read(&run.path("a.csv"));
    assert_eq!(
        table.for_page(&server.url("/site/3"), "error"),
        "robots_disallowed"
    );
    assert_eq!(
        table.for_page(&server.url("/site/3"), "referrer"),
        server.url("/site/0")
    );

    let out = run.run(
        &[&args[..], &["--no-robots", "--pages", "b.csv"]].concat(),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/site/3"), 1);
}

#[test]
fn listed_urls_past_max_pages_get_a_row_each() {
    let server = TestServer::start();
    let run = Run::new();
    let lines: Vec<String> = (100..110)
        .map(|n| server.url(&format!("/site/{n}")))
        .collect();
    let input = run.urls("seeds.txt", &lines);
    let out = run.run(
        &[
            &input,
            "--max-pages",
            "4",
            "-c",
            "1",
            "--pages",
            "pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = crate::support::Table::read(&run.path("pages.csv"));
    assert_eq!(table.rows.len(), 10);
    let errors = table.column("error");
    assert_eq!(errors.iter().filter(|e| e.is_empty()).count(), 4);
    assert_eq!(errors.iter().filter(|e| **e == "max_pages").count(), 6);
    // Without --depth no links are followed.
    assert_eq!(page_hits(&server).len(), 4);
    assert!(
        out.stderr.contains("6 listed URLs not fetched"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_seed_found_by_the_crawl_is_not_fetched_twice() {
    let server = TestServer::start();
    let run = Run::new();
    // Page 1 is listed (spelled another way) and linked from page 0;
    // page 0 is listed twice, spelled two ways.
    let input = run.urls(
        "seeds.txt",
        &[
            server.url("/site/0"),
            server.url("/site/%31"),
            server.url("/site/0#top"),
        ],
    );
    let out = run.run(
        &[
            &input,
            "--depth",
            "1",
            "--strip-query",
            "utm_*",
            "-c",
            "1",
            "--pages",
            "pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/site/1"), 1);
    let crawled = read_pages(&run, &server);
    // 0 and 1 with their links: 2…10 and /json, 11…20.
    assert_eq!(crawled.rows, 2 + 10 + 10);
    // Listed, so a seed: depth 0, no referrer.
    assert_eq!(crawled.pages["/site/1"].0, 0);
    assert_eq!(crawled.pages["/site/1"].1, None);
    assert!(
        out.stderr.contains("1 duplicate line skipped"),
        "{}",
        out.stderr
    );
}

#[test]
fn crawl_options_are_checked() {
    let run = Run::new();
    let input = run.urls("seeds.txt", &["http://127.0.0.1:9/"]);
    for (args, says) in [
        (
            &["--scope", "domain"][..],
            "--scope applies to the links a crawl follows",
        ),
        (&["--include", "x"][..], "--include applies"),
        (
            &["--depth", "1", "--include", "("][..],
            "invalid --include \"(\"",
        ),
        (
            &["--depth", "1", "--ordered"][..],
            "--ordered cannot be used with --depth",
        ),
        (&["--max-pages", "0"][..], "--max-pages"),
        (&["--robots", "--no-robots"][..], "cannot be used with"),
    ] {
        let out = run.run(&[&[input.as_str()][..], args].concat(), None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn a_crawl_does_not_step_into_other_private_hosts() {
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    let run = Run::new();
    let by_name = format!("http://localhost:{}/gen/2", server.addr.port());
    let seed = links_to(
        &server,
        &[
            other.url("/gen/1"),
            by_name.clone(),
            redirect_via(&server, &other.url("/gen/3")),
            server.url("/gen/4"),
        ],
    );
    let input = run.urls("seeds.txt", &[&seed]);
    let args = [&input, "--depth", "1", "--scope", "any"];

    let out = run.run(&[&args[..], &["--pages", "a.csv"]].concat(), None);
    // Refused links are passed over, not failures.
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(other.all_hits().len(), 0, "{:?}", other.all_hits());
    let table = crate::support::Table::read(&run.path("a.csv"));
    assert_eq!(table.rows.len(), 5);
    for blocked in [
        other.url("/gen/1"),
        by_name.clone(),
        redirect_via(&server, &other.url("/gen/3")),
    ] {
        assert_eq!(
            table.for_page(&blocked, "error"),
            "private_address",
            "{blocked}"
        );
        assert!(
            table
                .for_page(&blocked, "error_detail")
                .contains("--allow-private"),
            "{blocked}"
        );
    }
    // The listed URL's own host is trusted.
    assert_eq!(table.for_page(&server.url("/gen/4"), "error"), "");
    assert_eq!(server.hits("/gen/2"), 0);
    assert!(out.stderr.contains("3 private_address"), "{}", out.stderr);

    let out = run.run(
        &[&args[..], &["--allow-private", "--pages", "b.csv"]].concat(),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(other.hits("/gen/1"), 1);
    assert_eq!(other.hits("/gen/3"), 1);
    assert_eq!(server.hits("/gen/2"), 1);
}

#[test]
fn sitemaps_index_gzip_and_text_add_their_pages_as_seeds() {
    let server = TestServer::start();
    let run = Run::new();
    // No INPUT: the sitemap is the list.
    let out = run.run(
        &[
            "--sitemap",
            &server.url("/sitemaps/index.xml"),
            "--strip-query",
            "utm_*",
            "--pages",
            "pages.csv",
            "-o",
            "scripts.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let crawled = read_pages(&run, &server);
    let mut paths: Vec<&String> = crawled.pages.keys().collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/json", "/site/0", "/site/100", "/site/101", "/site/102"]
    );
    // Seeds (depth 0) whose referrer is the sitemap that listed them; a
    // listed PDF or JSON file is passed over, not a failure.
    let by_a = Some("/sitemaps/a.xml.gz".to_owned());
    let by_b = Some("/sitemaps/b.txt".to_owned());
    assert_eq!(crawled.pages["/site/100"], (0, by_a.clone(), String::new()));
    assert_eq!(crawled.pages["/site/102"], (0, by_b, String::new()));
    assert_eq!(crawled.pages["/json"], (0, by_a, "not_html".to_owned()));
    assert!(
        out.stderr.contains("3 sitemaps read (5 URLs listed)"),
        "{}",
        out.stderr
    );
}

#[test]
fn sitemap_auto_reads_robots_and_a_bad_sitemap_fails_the_run() {
    let server = TestServer::start();
    server.set_robots(
        200,
        &format!(
            "User-agent: *\nAllow: /\nSitemap: {}\n",
            server.url("/sitemaps/b.txt")
        ),
    );
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/5")]);
    let out = run.run(
        &[
            &input,
            "--sitemap",
            "auto",
            "--depth",
            "1",
            "--pages",
            "pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let crawled = read_pages(&run, &server);
    // Sitemap pages are seeds: their links are followed too.
    assert_eq!(crawled.pages["/site/102"].0, 0);
    assert_eq!(crawled.pages["/site/1021"].0, 1);
    assert_eq!(crawled.pages["/site/51"].0, 1);
    assert_eq!(server.hits("/sitemaps/b.txt"), 1);
    // Read once, for its rules and its Sitemap lines.
    assert_eq!(server.hits("/robots.txt"), 1);

    // Not obeyed, robots.txt is still read for its Sitemap lines.
    let out = run.run(
        &[
            &input,
            "--sitemap",
            "auto",
            "--no-robots",
            "--pages",
            "n.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/robots.txt"), 2);
    let table = crate::support::Table::read(&run.path("n.csv"));
    assert_eq!(table.for_page(&server.url("/site/102"), "error"), "");

    let out = run.run(
        &[
            &input,
            "--sitemap",
            &server.url("/sitemaps/broken.xml"),
            "--pages",
            "b.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("/sitemaps/broken.xml: not a sitemap"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 sitemap failed"), "{}", out.stderr);
}

#[test]
fn on_a_terminal_the_bar_shows_the_urls_waiting() {
    let server = TestServer::start();
    let run = Run::new();
    let slow: Vec<String> = (0..6)
        .map(|n| server.url(&format!("/slow-gen/300/{n}")))
        .collect();
    let input = run.urls("seeds.txt", &[links_to(&server, &slow)]);
    // script(1) gives the run a pseudo-terminal.
    let command = format!(
        "{} {input} --depth 1 -c 1 -o s.csv",
        env!("CARGO_BIN_EXE_scriptscrape")
    );
    let (status, screen) = crate::support::on_terminal(run.dir.path(), &command);
    assert_eq!(status.code(), Some(0), "{screen}");
    // No total to count down to in a crawl: the queue instead.
    assert!(screen.contains(" queued"), "{screen}");
    assert!(!screen.contains("ETA"), "{screen}");
    assert!(screen.contains("7 pages ok"), "{screen}");
}

#[test]
fn a_big_site_does_not_starve_a_small_one() {
    let big = TestServer::start();
    let small = TestServer::start_on("127.0.0.2");
    let run = Run::new();
    let few: Vec<String> = (0..5).map(|n| small.url(&format!("/gen/{n}"))).collect();
    // The big site first in the list, and far bigger.
    let input = run.urls("seeds.txt", &[big.url("/site/0"), links_to(&small, &few)]);
    let out = run.run(
        &[
            &input,
            "--depth",
            "2",
            "--strip-query",
            "utm_*",
            "-c",
            "2",
            "--per-host",
            "1",
            "-o",
            "scripts.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let big_times = big.arrivals("/site/");
    let small_times = small.arrivals("/gen/");
    assert_eq!((big_times.len(), small_times.len()), (111, 5));
    // The hosts take turns: the small site is done while the big one has
    // most of its pages to go.
    let small_done = *small_times.iter().max().unwrap();
    let big_before = big_times.iter().filter(|t| **t < small_done).count();
    assert!(big_before < 30, "{big_before} big pages came first");
}

#[test]
fn sitemaps_do_not_lead_into_private_networks_either() {
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    // robots.txt names a sitemap on another private host; the index names
    // one too.
    server.set_robots(200, &format!("Sitemap: {}\n", other.url("/sitemaps/b.txt")));
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/5")]);
    let out = run.run(&[&input, "--sitemap", "auto", "--pages", "pages.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("private_address"), "{}", out.stderr);
    assert_eq!(other.all_hits().len(), 0, "{:?}", other.all_hits());
}

#[test]
fn under_max_pages_late_seeds_still_come_first() {
    let server = TestServer::start();
    let run = Run::new();
    let input = run.urls("seeds.txt", &[server.url("/site/0")]);
    // The sitemap answers after half a second, long after page 0's links
    // are known; its pages are seeds, nearer than any link.
    let out = run.run(
        &[
            &input,
            "--depth",
            "1",
            "--max-pages",
            "5",
            "--strip-query",
            "utm_*",
            "--sitemap",
            &server.url("/sitemaps/slow-b.txt"),
            "--pages",
            "pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let crawled = read_pages(&run, &server);
    assert_eq!(crawled.rows, 5);
    assert_eq!(crawled.pages["/site/102"].0, 0);
    let deeper = crawled.pages.values().filter(|p| p.0 == 1).count();
    assert_eq!(deeper, 3);
}

#[test]
fn a_host_found_private_first_and_listed_later_gets_its_robots_txt_read() {
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    other.set_robots(200, "User-agent: *\nDisallow: /gen/\n");
    let run = Run::new();
    let seed = links_to(&server, &[other.url("/gen/1")]);
    let (mut child, mut stdin) = run.spawn_fed(&[
        "-",
        "--depth",
        "1",
        "--scope",
        "any",
        "--pages",
        "pages.csv",
    ]);
    std::io::Write::write_all(&mut stdin, format!("{seed}\n").as_bytes()).unwrap();
    // The link to the other host is refused before its line is read.
    // Header, the seed and the refused link.
    crate::support::wait_for_lines(&run.path("pages.csv.part"), 2);
    std::io::Write::write_all(&mut stdin, format!("{}\n", other.url("/gen/2")).as_bytes()).unwrap();
    drop(stdin);
    let status =
        crate::support::wait_within(&mut child, std::time::Duration::from_secs(30)).expect("ends");
    assert_eq!(status.code(), Some(1));
    let table = crate::support::Table::read(&run.path("pages.csv"));
    assert_eq!(
        table.for_page(&other.url("/gen/1"), "error"),
        "private_address"
    );
    // Listed, so trusted: and then its robots.txt is obeyed.
    assert_eq!(
        table.for_page(&other.url("/gen/2"), "error"),
        "robots_disallowed"
    );
    assert_eq!(other.hits("/robots.txt"), 1);
    assert_eq!(other.hits("/gen/2"), 0);
}

#[test]
fn a_link_that_redirects_out_of_scope_is_not_followed_there() {
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    let run = Run::new();
    let away = redirect_via(&server, &other.url("/gen/1"));
    let within = redirect_via(&server, &server.url("/gen/5"));
    // A listed URL may redirect anywhere: it is the user's.
    let listed_away = redirect_via(&server, &other.url("/gen/2"));
    let seed = links_to(&server, &[away.clone(), within.clone()]);
    let input = run.urls("seeds.txt", &[&seed, &listed_away]);
    // --allow-private: the other host is refused for its scope, not as a
    // private address.
    let out = run.run(
        &[
            &input,
            "--depth",
            "1",
            "--allow-private",
            "--pages",
            "pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(other.hits("/gen/1"), 0);
    assert_eq!(other.hits("/gen/2"), 1);
    let table = crate::support::Table::read(&run.path("pages.csv"));
    assert_eq!(table.rows.len(), 4);
    assert_eq!(table.for_page(&away, "error"), "off_scope");
    let detail = table.for_page(&away, "error_detail");
    assert!(detail.contains(&other.url("/gen/1")), "{detail}");
    assert_eq!(table.for_page(&within, "error"), "");
    assert_eq!(table.for_page(&within, "final_url"), server.url("/gen/5"));
    assert_eq!(table.for_page(&listed_away, "error"), "");
    // Passed over, not a failure.
    assert!(out.stderr.contains("1 off_scope"), "{}", out.stderr);
}

#[test]
fn a_line_seen_before_the_limit_is_a_duplicate_after_it_not_a_max_pages_row() {
    let server = TestServer::start();
    let run = Run::new();
    let page = server.url("/gen/1");
    let (mut child, mut stdin) = run.spawn_fed(&["-", "--max-pages", "1", "--pages", "pages.csv"]);
    std::io::Write::write_all(&mut stdin, format!("{page}\n").as_bytes()).unwrap();
    // Past the header: the page is done, and the limit reached before the
    // next line.
    crate::support::wait_for_lines(&run.path("pages.csv.part"), 1);
    std::io::Write::write_all(&mut stdin, format!("{page}#again\n").as_bytes()).unwrap();
    drop(stdin);
    let status =
        crate::support::wait_within(&mut child, std::time::Duration::from_secs(30)).expect("ends");
    assert_eq!(status.code(), Some(0));
    let table = crate::support::Table::read(&run.path("pages.csv"));
    // One row per URL: the report agrees with itself, and diff can trust it.
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.get(0, "error"), "");
    assert_eq!(server.hits("/gen/1"), 1);
}

#[test]
fn resume_in_a_crawl_starts_a_new_run_so_cron_lines_can_carry_it() {
    let server = TestServer::start();
    let run = Run::new();
    let input = run.urls("seeds.txt", &[links_to(&server, &[server.url("/gen/1")])]);
    let args = [
        input.as_str(),
        "--depth",
        "1",
        "--resume",
        "-o",
        "o.csv",
        "--pages",
        "p.csv",
    ];
    // Nothing to resume: silent.
    let out = run.run(&args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("--resume"), "{}", out.stderr);
    // An interrupted crawl's .part: said, and replaced by a new run.
    std::fs::write(run.path("p.csv.part"), "page_url\nhttp://stale.test/\n").unwrap();
    let out = run.run(&args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("starting a new run"), "{}", out.stderr);
    let pages = Table::read(&run.path("p.csv"));
    assert_eq!(pages.rows.len(), 2);
    assert!(!pages.column("page_url").contains(&"http://stale.test/"));
}

#[test]
fn a_list_piped_beside_sitemap_urls_is_not_lost_without_a_word() {
    let server = TestServer::start();
    let run = Run::new();
    let out = run.run(
        &["--sitemap", &server.url("/sitemap.xml"), "-o", "/dev/null"],
        Some(&format!("{}\n", server.url("/gen/1"))),
    );
    assert!(
        out.stderr.contains("standard input is not read"),
        "{}",
        out.stderr
    );
}
