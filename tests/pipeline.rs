//! The pipeline as a whole: order, concurrency, and every row checked
//! against what the pages contain.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{
    GenScript, Run, Table, TestServer, generated_scripts, redirect_via, signal, wait_for_lines,
    wait_within, wait_within_peak,
};

#[test]
fn rows_follow_completion_order_not_input_order() {
    let server = TestServer::start();
    let run = Run::new();
    let slow = server.url("/slow/1500/kitchen-sink.html");
    let fast = server.url("/gen/2");
    let list = run.urls("urls.txt", &[slow.clone(), fast.clone()]);
    let out = run.run(&[&list, "-c", "4", "--pages", "pages.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scripts = Table::parse(&out.stdout);
    let pages_in_order: Vec<&str> = scripts.column("page_url");
    let first_slow = pages_in_order.iter().position(|p| *p == slow).unwrap();
    let last_fast = pages_in_order.iter().rposition(|p| *p == fast).unwrap();
    assert!(
        last_fast < first_slow,
        "fast page's rows must come first: {pages_in_order:?}"
    );
    assert_eq!(
        Table::read(&run.path("pages.csv")).column("page_url"),
        [fast.as_str(), slow.as_str()]
    );
}

#[test]
fn requests_in_flight_never_exceed_concurrency() {
    let server = TestServer::start();
    let run = Run::new();
    let urls: Vec<String> = (0..24)
        .map(|i| server.url(&format!("/slow/100/no-scripts.html?{i}")))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[&list, "-c", "3", "--pages", "pages.csv", "-o", "s.csv"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(Table::read(&run.path("pages.csv")).rows.len(), 24);
    let max = server.max_in_flight();
    assert!(max <= 3, "{max} requests in flight with -c 3");
    assert!(max >= 2, "requests should overlap, max in flight was {max}");
}

#[test]
fn every_row_of_many_generated_pages_matches_the_page() {
    let server = TestServer::start();
    let run = Run::new();
    let n_pages = 400u64;
    let urls: Vec<String> = (0..n_pages)
        .map(|n| server.url(&format!("/gen/{n}")))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[
            &list,
            "-c",
            "32",
            "--pages",
            "pages.csv",
            "-o",
            "scripts.csv",
            "--inline-text",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    let scripts = Table::read(&run.path("scripts.csv"));
    let mut by_page: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, page) in scripts.column("page_url").into_iter().enumerate() {
        by_page.entry(page.to_owned()).or_default().push(i);
    }
    assert_eq!(by_page.len() as u64, n_pages);
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.rows.len() as u64, n_pages);

    for n in 0..n_pages {
        let url = server.url(&format!("/gen/{n}"));
        let rows = &by_page[&url];
        // A page's rows are contiguous, in document order.
        assert_eq!(
            rows.last().unwrap() - rows[0] + 1,
            rows.len(),
            "page {n} rows interleaved"
        );
        let expected = generated_scripts(n);
        assert_eq!(rows.len(), expected.len(), "page {n}");
        for (k, (&row, want)) in rows.iter().zip(&expected).enumerate() {
            assert_eq!(scripts.get(row, "final_url"), url);
            assert_eq!(scripts.get(row, "index"), k.to_string());
            match want {
                GenScript::External(src) => {
                    assert_eq!(scripts.get(row, "src"), server.url(src));
                    assert_eq!(scripts.get(row, "inline"), "false");
                    assert_eq!(scripts.get(row, "defer"), "true");
                    assert_eq!(scripts.get(row, "src_resolved"), "true");
                    assert_eq!(scripts.get(row, "inline_sha256"), "");
                }
                GenScript::Inline(text) => {
                    assert_eq!(scripts.get(row, "src"), "");
                    assert_eq!(scripts.get(row, "inline"), "true");
                    assert_eq!(scripts.get(row, "defer"), "false");
                    assert_eq!(scripts.get(row, "inline_text"), text);
                    assert_eq!(scripts.get(row, "inline_bytes"), text.len().to_string());
                    assert_eq!(
                        scripts.get(row, "inline_sha256"),
                        scriptscrape::extract::sha256_source(text.as_bytes())
                    );
                }
            }
        }
        let p = pages.rows_where("page_url", &url)[0];
        assert_eq!(pages.get(p, "scripts"), expected.len().to_string());
        assert_eq!(pages.get(p, "status"), "200");
    }
}

#[test]
fn kitchen_sink_fields_end_to_end() {
    let server = TestServer::start();
    let run = Run::new();
    let page = server.url("/fixtures/kitchen-sink.html");
    let list = run.urls("urls.txt", &[&page]);
    let out = run.run(&[&list, "-o", "scripts.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let t = Table::read(&run.path("scripts.csv"));
    assert_eq!(
        &t.headers[..13],
        [
            "page_url",
            "final_url",
            "index",
            "src",
            "inline",
            "type",
            "async",
            "defer",
            "nomodule",
            "integrity",
            "crossorigin",
            "inline_bytes",
            "inline_sha256"
        ]
    );
    assert_eq!(t.rows.len(), 11);
    assert_eq!(
        t.rows[1][..13],
        [
            page.as_str(),
            page.as_str(),
            "1",
            "https://cdn.example.net/lib.js",
            "false",
            "",
            "true",
            "false",
            "false",
            "sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC",
            "anonymous",
            "",
            ""
        ]
    );
    assert_eq!(
        t.get(0, "inline_bytes"),
        "window.dataLayer = [];".len().to_string()
    );
    assert_eq!(
        t.get(0, "inline_sha256"),
        scriptscrape::extract::sha256_source(b"window.dataLayer = [];")
    );
    assert_eq!(t.get(2, "src"), server.url("/static/Upper.js"));
    assert_eq!(t.get(4, "src"), server.url("/fixtures/app.mjs"));
    assert_eq!(t.get(4, "type"), "module");
    assert_eq!(t.get(5, "nomodule"), "true");
    assert_eq!(
        t.column("svg"),
        [
            "false", "false", "false", "false", "false", "false", "true", "true", "true", "false",
            "false"
        ]
    );
    assert_eq!(t.get(9, "src"), "http://other.example.org/x.js?v=1");
    assert!(
        !t.column("src")
            .iter()
            .any(|s| s.contains("template") || s.contains("noscript"))
    );
}

#[test]
fn closed_stdout_stops_quietly() {
    let server = TestServer::start();
    let run = Run::new();
    let urls: Vec<String> = (0..300)
        .map(|n| server.url(&format!("/gen/{}", n * 4 + 3)))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let mut child = run
        .command(&[
            list.as_str(),
            "-c",
            "4",
            "--pages",
            "p.csv",
            "--stats",
            "s.json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    // Bounded wait: a run that ignores the closed pipe would never end.
    let status = wait_within(&mut child, Duration::from_secs(60));
    let stderr = stderr_reader.join().unwrap();
    let status =
        status.unwrap_or_else(|| panic!("still running 60 s after stdout closed: {stderr}"));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{stderr}"
    );
    // Success, as for ripgrep and xsv, but the figures are the truth: the
    // run did not complete, and every listed URL is a row or unfinished.
    assert!(stderr.contains("standard output closed"), "{stderr}");
    assert!(stderr.contains("p.csv.part"), "{stderr}");
    // Not resumable: the scripts went to standard output.
    assert!(!stderr.contains("--resume"), "{stderr}");
    assert!(!run.path("p.csv").exists());
    let written = Table::read(&run.path("p.csv.part")).rows.len() as u64;
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("s.json")).unwrap()).unwrap();
    assert_eq!(stats["outcome"], "output_closed");
    assert_eq!(stats["exit_status"], 0);
    let unfinished = stats["pages"]["unfinished"].as_u64().unwrap();
    assert!(unfinished > 0, "{stats}");
    // Lines the reader had not reached when the run ended are not
    // counted ("later input not read"), as after a signal.
    assert!(written + unfinished <= 300, "{stats}");
    assert_eq!(stats["pages"]["total"].as_u64(), Some(written), "{stats}");
    assert!(
        stderr.contains(&format!("{unfinished} URLs not done")),
        "{stderr}"
    );
}

#[test]
fn a_killed_run_leaves_only_whole_rows() {
    let server = TestServer::start();
    let run = Run::new();
    // Staggered delays, so pages finish one after another while the run is
    // killed; --inline-text makes rows long and multi-line.
    let urls: Vec<String> = (0..400)
        .map(|n| server.url(&format!("/slow-gen/{}/{n}", 20 + (n * 37) % 400)))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let mut child = run.spawn_quiet(&[
        list.as_str(),
        "-c",
        "16",
        "--inline-text",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ]);
    // A killed run never renames its outputs into place: what it wrote is
    // in the .part files.
    let pages_path = run.path("pages.csv.part");
    // Kill once a few dozen pages are written, in the middle of the run.
    wait_for_lines(&pages_path, 40);
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(!run.path("pages.csv").exists() && !run.path("scripts.csv").exists());
    let pages = Table::read(&pages_path);
    let scripts = Table::read(&run.path("scripts.csv.part"));
    assert!(
        pages.rows.len() >= 40 && pages.rows.len() < 400,
        "killed mid-run: {} pages",
        pages.rows.len()
    );
    assert!(
        pages.rows.iter().chain(&scripts.rows).all(|r| r.len() >= 8),
        "a torn row"
    );
    assert!(
        scripts
            .rows
            .iter()
            .all(|r| r.len() == scripts.headers.len()),
        "a torn row"
    );
    // Every page in the report has all its rows in the scripts file.
    for p in 0..pages.rows.len() {
        let url = pages.get(p, "page_url");
        let n: u64 = url.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(
            scripts.rows_where("page_url", url).len(),
            generated_scripts(n).len(),
            "{url}"
        );
    }
}

#[test]
fn a_slow_host_does_not_hold_back_the_others() {
    let slow = TestServer::start();
    let others: Vec<TestServer> = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        .into_iter()
        .map(TestServer::start_on)
        .collect();
    let run = Run::new();
    // 5,000 slow pages first: at 4 in flight and 300 ms each they would take
    // over six minutes; then 20 pages on four other hosts.
    let mut urls: Vec<String> = (0..5000)
        .map(|i| slow.url(&format!("/slow/300/no-scripts.html?{i}")))
        .collect();
    let fast: Vec<String> = (0..20)
        .map(|i| others[i % 4].url(&format!("/gen/{i}")))
        .collect();
    urls.extend(fast.iter().cloned());
    let list = run.urls("urls.txt", &urls);
    let mut child = run.spawn_quiet(&[
        &list,
        "-c",
        "16",
        "--per-host",
        "4",
        "--pages",
        "pages.csv",
        "-o",
        "scripts.csv",
    ]);
    // Bounded wait for the fast pages to be reported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done_fast = 0;
    while Instant::now() < deadline {
        // Mid-run, rows are in the .part file.
        let text = std::fs::read_to_string(run.path("pages.csv.part")).unwrap_or_default();
        done_fast = fast
            .iter()
            .filter(|u| text.contains(&format!("{u},")))
            .count();
        if done_fast == fast.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        done_fast,
        fast.len(),
        "the other hosts' pages waited behind the slow host"
    );
    let pages = Table::read(&run.path("pages.csv.part"));
    let slow_done = pages
        .column("page_url")
        .iter()
        .filter(|p| p.contains("/slow/"))
        .count();
    assert!(
        slow_done < 5000,
        "the slow host was still being worked through ({slow_done} done)"
    );
    assert!(
        slow.max_in_flight() <= 4,
        "--per-host 4, yet {} in flight",
        slow.max_in_flight()
    );
    for other in &others {
        assert_eq!(other.max_in_flight().min(4), other.max_in_flight());
    }
}

#[test]
fn delay_spaces_requests_to_one_host() {
    // Timed at the server: no browser may starve it meanwhile.
    let _quiet = crate::support::quiet_machine();
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    let run = Run::new();
    let mut urls: Vec<String> = (0..5).map(|i| server.url(&format!("/gen/{i}"))).collect();
    urls.extend((0..5).map(|i| other.url(&format!("/gen/{i}"))));
    let list = run.urls("urls.txt", &urls);
    let out = run.run(&[&list, "--delay", "200", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for s in [&server, &other] {
        let arrivals = s.arrivals("/gen/");
        assert_eq!(arrivals.len(), 5);
        for pair in arrivals.windows(2) {
            let gap = pair[1] - pair[0];
            // Requests start 200 ms apart; they arrive a little less apart
            // when the first waited for a new connection and the next
            // reused it, or when a starved server thread recorded the first
            // late: on a loaded machine, by up to about 100 ms. Without the
            // delay they would be about nothing apart.
            assert!(
                gap >= Duration::from_millis(100),
                "requests {gap:?} apart with --delay 200"
            );
        }
    }
}

#[test]
fn rate_spaces_all_requests_whatever_the_host() {
    // Timed at the server: no browser may starve it meanwhile.
    let _quiet = crate::support::quiet_machine();
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    let run = Run::new();
    let mut urls: Vec<String> = (0..4).map(|i| server.url(&format!("/gen/{i}"))).collect();
    urls.extend((0..4).map(|i| other.url(&format!("/gen/{i}"))));
    let list = run.urls("urls.txt", &urls);
    let out = run.run(&[&list, "--rate", "5/s", "-c", "8", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut arrivals = server.arrivals("/gen/");
    arrivals.extend(other.arrivals("/gen/"));
    arrivals.sort();
    assert_eq!(arrivals.len(), 8);
    // Eight starts at most five a second: seven intervals of 200 ms, less
    // what a reused connection saves on arrival (see the --delay test).
    let span = arrivals[7] - arrivals[0];
    assert!(
        span >= Duration::from_millis(7 * 150),
        "8 requests in {span:?} at 5/s"
    );
    // Each gap: at least half the spacing. A starved server thread
    // records an arrival late, which shortens the next gap by as much (seen:
    // 102 ms on a machine running two builds); without the limit the gaps
    // would be about nothing.
    for pair in arrivals.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(100),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn random_delay_varies_the_wait_between_half_and_one_and_a_half_times() {
    // Timed at the server: no browser may starve it meanwhile.
    let _quiet = crate::support::quiet_machine();
    let server = TestServer::start();
    let run = Run::new();
    let urls: Vec<String> = (0..8).map(|i| server.url(&format!("/gen/{i}"))).collect();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[&list, "--delay", "200", "--random-delay", "-o", "s.csv"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let arrivals = server.arrivals("/gen/");
    let gaps: Vec<Duration> = arrivals.windows(2).map(|p| p[1] - p[0]).collect();
    assert_eq!(gaps.len(), 7);
    for gap in &gaps {
        // At least half of --delay (less the connection's saving).
        assert!(*gap >= Duration::from_millis(70), "{gaps:?}");
    }
    // Seven waits drawn from 100..300 ms: not all the same length (all
    // within 20 ms of each other has a chance under 1e-5).
    let (min, max) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
    assert!(*max - *min > Duration::from_millis(20), "{gaps:?}");

    let out = run.run(&[&list, "--random-delay", "-o", "s.csv"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--random-delay varies --delay or --rate"),
        "{}",
        out.stderr
    );
    for (rate, says) in [
        ("5", "write 5/s or 5/m"),
        ("5/h", "unknown unit /h"),
        ("0/s", "more than 0"),
        ("x/s", "is not a number"),
    ] {
        let out = run.run(&[&list, "--rate", rate, "-o", "s.csv"], None);
        assert_eq!(out.code, 2, "{rate}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{rate}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn every_fault_at_once_and_nothing_is_lost() {
    let server = TestServer::start();
    let refused = crate::support::refused_url();
    // (URL, expected error kind), a few thousand of them, faults spread
    // through the list.
    let mut cases: Vec<(String, &str)> = Vec::new();
    for n in 0..2600u64 {
        cases.push((server.url(&format!("/gen/{n}")), ""));
        let i = n / 26;
        let fault: Option<(String, &str)> = match n % 26 {
            1 => Some((server.url(&format!("/status/404?{i}")), "http_status")),
            3 => Some((server.url(&format!("/status/503?{i}")), "http_status")),
            5 => Some((server.url(&format!("/flaky/1/{i}")), "")),
            7 if i < 20 => Some((server.url(&format!("/stall-headers?{i}")), "timeout")),
            9 if i < 4 => Some((server.url(&format!("/deep/table-div?{i}")), "parse_limit")),
            11 if i < 6 => Some((server.url(&format!("/bomb/gzip?{i}")), "body_too_large")),
            13 => Some((server.url(&format!("/json?{i}")), "not_html")),
            15 => Some((server.url(&format!("/loop?{i}")), "redirect")),
            17 => Some((format!("not a url {i}"), "invalid_url")),
            19 if i < 20 => Some((format!("{refused}{i}"), "connect")),
            21 => Some((server.url(&format!("/encoded/euc-kr-meta?{i}")), "")),
            23 => Some((server.url(&format!("/compressed/br?{i}")), "")),
            _ => None,
        };
        cases.extend(fault);
    }
    // Duplicates in other spellings add lines, not pages.
    let mut lines: Vec<String> = cases.iter().map(|(u, _)| u.clone()).collect();
    lines.extend((0..50).map(|n| format!("  {}  ", server.url(&format!("/gen/{n}")))));
    let run = Run::new();
    let list = run.urls("urls.txt", &lines);
    let mut child = run.spawn_quiet(&[
        &list,
        "-c",
        "64",
        "--timeout",
        "1",
        "--max-body",
        "2MiB",
        "--pages",
        "pages.csv",
        "-o",
        "scripts.csv",
    ]);
    let (code, peak_kib) = wait_within_peak(&mut child, Duration::from_secs(240))
        .unwrap_or_else(|| panic!("the run did not end by itself within 240 s"));
    assert_eq!(code, 1);

    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.rows.len(), cases.len(), "one row per distinct input");
    let mut by_url: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (row, url) in pages.column("page_url").into_iter().enumerate() {
        assert!(by_url.insert(url, row).is_none(), "{url} reported twice");
    }
    for (url, kind) in &cases {
        let row = *by_url
            .get(url.as_str())
            .unwrap_or_else(|| panic!("{url} missing"));
        assert_eq!(
            pages.get(row, "error"),
            *kind,
            "{url}: {:?}",
            pages.rows[row]
        );
    }
    // The scripts file reads back whole, and holds only successful pages.
    let scripts = Table::read(&run.path("scripts.csv"));
    let ok: std::collections::HashSet<&str> = cases
        .iter()
        .filter(|(_, k)| k.is_empty())
        .map(|(u, _)| u.as_str())
        .collect();
    assert!(scripts.column("page_url").iter().all(|p| ok.contains(p)));
    // No body larger than --max-body was held: the bombs are 1 GiB each.
    assert!(peak_kib > 0, "no reading of the run's memory");
    assert!(peak_kib < 256 * 1024, "the run peaked at {peak_kib} KiB");
}

#[test]
fn ordered_writes_pages_in_input_order_without_serialising_fetches() {
    let server = TestServer::start();
    let run = Run::new();
    // The first pages are the slowest: in completion order they would come
    // last. A bad line and a duplicate are in the mix.
    let mut urls: Vec<String> = (0..40)
        .map(|n| server.url(&format!("/slow-gen/{}/{n}", 400 - n * 10)))
        .collect();
    urls.insert(7, "not a url at all".to_owned());
    urls.insert(20, urls[3].clone());
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[
            &list,
            "-c",
            "8",
            "--ordered",
            "-o",
            "s.csv",
            "--pages",
            "p.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let pages = Table::read(&run.path("p.csv"));
    let mut expected: Vec<String> = urls.clone();
    expected.remove(20); // the duplicate
    assert_eq!(pages.column("page_url"), expected);
    // Script rows follow the same order, each page's rows together.
    let scripts = Table::read(&run.path("s.csv"));
    let mut order: Vec<&str> = scripts.column("page_url");
    order.dedup();
    let with_scripts: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|u| u.starts_with("http"))
        .collect();
    assert_eq!(order, with_scripts);
    // Fetching stayed concurrent while the first page held the output.
    assert!(server.max_in_flight() >= 4, "{}", server.max_in_flight());
    // Without --ordered the same run writes in completion order.
    let out = run.run(
        &[&list, "-c", "8", "-o", "s2.csv", "--pages", "p2.csv"],
        None,
    );
    assert_eq!(out.code, 1);
    assert_ne!(
        Table::read(&run.path("p2.csv")).column("page_url"),
        expected
    );
}

#[test]
fn ordered_holds_back_at_most_its_window() {
    let server = TestServer::start();
    let run = Run::new();
    // One page that takes 20 s, then 200 quick ones: the quick ones may be
    // fetched only as far as the reorder window (4 pages per -c slot).
    let mut urls = vec![server.url("/slow-gen/20000/0")];
    urls.extend((1..=200).map(|n| server.url(&format!("/gen/{n}"))));
    let list = run.urls("urls.txt", &urls);
    let mut child =
        run.spawn_quiet(&[&list, "-c", "2", "--ordered", "--grace", "0", "-o", "s.csv"]);
    std::thread::sleep(Duration::from_millis(1500));
    let fetched = (1..=200)
        .filter(|n| server.hits(&format!("/gen/{n}")) > 0)
        .count();
    signal(&child, libc::SIGTERM);
    wait_within(&mut child, Duration::from_secs(20)).expect("stops");
    assert!(
        (1..=8).contains(&fetched),
        "{fetched} quick pages fetched behind the slow one with a window of 8"
    );
}

#[test]
fn user_credentials_go_to_the_listed_origin_only() {
    use base64::Engine as _;
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:p4ss:word")
    );
    let run = Run::new();
    let auth = |s: &TestServer| {
        s.last_headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The listed URL's own origin: sent.
    let list = run.urls("a.txt", &[server.url("/headers")]);
    let out = run.run(&[&list, "-u", "ann:p4ss:word", "-o", "s.csv", "-vv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(auth(&server), Some(expected.clone()));
    assert!(!out.stderr.contains("p4ss"), "{}", out.stderr);
    // A redirect to another origin: not sent there.
    let list = run.urls("b.txt", &[redirect_via(&server, &other.url("/headers"))]);
    let out = run.run(&[&list, "-u", "ann:p4ss:word", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(auth(&other), None);
    // Listed on the other origin: sent to it.
    let list = run.urls("c.txt", &[other.url("/headers")]);
    let out = run.run(&[&list, "--user", "ann:p4ss:word", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(auth(&other), Some(expected));
    // Without a colon there is no password to send: refused in words.
    let out = run.run(&[&list, "-u", "ann", "-o", "s.csv"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("write USER:PASSWORD"), "{}", out.stderr);
}

#[test]
fn cookies_go_to_the_listed_origin_only() {
    let server = TestServer::start();
    let other = TestServer::start_on("127.0.0.2");
    let run = Run::new();
    let cookie = |s: &TestServer| {
        s.last_headers()
            .get("cookie")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let list = run.urls("a.txt", &[server.url("/headers")]);
    let args = [
        "-b",
        "session=s3cr3t",
        "--cookie",
        "lang=en",
        "-o",
        "s.csv",
        "-vv",
    ];
    let mut with = vec![list.as_str()];
    with.extend(args);
    let out = run.run(&with, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(cookie(&server).as_deref(), Some("session=s3cr3t; lang=en"));
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
    let list = run.urls("b.txt", &[redirect_via(&server, &other.url("/headers"))]);
    let mut with = vec![list.as_str()];
    with.extend(args);
    let out = run.run(&with, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(cookie(&other), None, "not sent on to another origin");
    for bad in ["novalue", "a b=c", "x=va;lue"] {
        let out = run.run(&[&list, "-b", bad, "-o", "s.csv"], None);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}
