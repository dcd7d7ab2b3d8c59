//! Running from cron and for exports: outputs that readers can trust.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{
    Run, Table, TestServer, generated_scripts, lines, signal, wait_for_lines, wait_within,
};

#[test]
fn outputs_are_replaced_whole_when_the_run_ends() {
    let server = TestServer::start();
    let run = Run::new();
    std::fs::write(run.path("scripts.csv"), "last run's scripts\n").unwrap();
    std::fs::write(run.path("pages.csv"), "last run's pages\n").unwrap();
    let urls: Vec<String> = (0..24)
        .map(|n| server.url(&format!("/slow-gen/150/{n}")))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let mut child = run.spawn_quiet(&[
        &list,
        "-c",
        "2",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ]);

    // Mid-run: rows go to the .part files, page by page, and the files of
    // the last run are untouched.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&run.path("pages.csv.part")) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let written = lines(&run.path("pages.csv.part"));
    assert!((4..25).contains(&written), "{written} lines mid-run");
    assert_eq!(
        std::fs::read_to_string(run.path("scripts.csv")).unwrap(),
        "last run's scripts\n"
    );
    assert_eq!(
        std::fs::read_to_string(run.path("pages.csv")).unwrap(),
        "last run's pages\n"
    );

    let status = wait_within(&mut child, Duration::from_secs(60)).expect("run ends");
    assert_eq!(status.code(), Some(0));
    assert!(!run.path("scripts.csv.part").exists());
    assert!(!run.path("pages.csv.part").exists());
    let pages = Table::read(&run.path("pages.csv"));
    let scripts = Table::read(&run.path("scripts.csv"));
    assert_eq!(pages.rows.len(), 24);
    let expected: usize = (0..24).map(|n| generated_scripts(n).len()).sum();
    assert_eq!(scripts.rows.len(), expected);
}

#[test]
fn a_symlinked_output_keeps_its_link_and_mode() {
    let server = TestServer::start();
    let run = Run::new();
    let real = run.path("real.csv");
    std::fs::write(&real, "old\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, run.path("link.csv")).unwrap();
    let list = run.urls("urls.txt", &[server.url("/gen/3")]);

    let out = run.run(&[&list, "-o", "link.csv", "--pages", "/dev/null"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let link = std::fs::symlink_metadata(run.path("link.csv")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let table = Table::read(&real);
    assert_eq!(table.rows.len(), generated_scripts(3).len());
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // /dev/null is written in place: no .part beside it, and no error.
    assert!(!std::path::Path::new("/dev/null.part").exists());
}

#[test]
fn a_run_that_cannot_start_leaves_the_last_outputs_alone() {
    let run = Run::new();
    std::fs::write(run.path("scripts.csv"), "last run\n").unwrap();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--pages",
            "no-such-dir/pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-dir"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(run.path("scripts.csv")).unwrap(),
        "last run\n"
    );
    assert!(!run.path("scripts.csv.part").exists());
}

/// Every page in the report has all its rows in the scripts file, every
/// row is whole, and no page has rows without a report line.
fn check_whole_and_agreeing(pages: &Table, scripts: &Table) {
    assert!(
        scripts
            .rows
            .iter()
            .all(|r| r.len() == scripts.headers.len())
            && pages.rows.iter().all(|r| r.len() == pages.headers.len()),
        "a torn row"
    );
    let mut reported = std::collections::HashSet::new();
    for p in 0..pages.rows.len() {
        let url = pages.get(p, "page_url");
        reported.insert(url.to_owned());
        let n: u64 = url.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(
            scripts.rows_where("page_url", url).len(),
            generated_scripts(n).len(),
            "{url}"
        );
    }
    for url in scripts.column("page_url") {
        assert!(
            reported.contains(url),
            "{url} has scripts but no report row"
        );
    }
}

#[test]
fn sigterm_drains_in_flight_pages_and_keeps_whole_rows() {
    let server = TestServer::start();
    let run = Run::new();
    // A few thousand slow pages: at -c 32 the run would take about a minute.
    let urls: Vec<String> = (0..3000)
        .map(|n| server.url(&format!("/slow-gen/{}/{n}", 300 + (n * 37) % 500)))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let mut child = run
        .command(&[
            &list,
            "-c",
            "32",
            "--grace",
            "20",
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&run.path("pages.csv.part"), 50);
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("ends after SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");

    // Not renamed: the run did not complete.
    assert!(!run.path("pages.csv").exists() && !run.path("scripts.csv").exists());
    let pages = Table::read(&run.path("pages.csv.part"));
    let scripts = Table::read(&run.path("scripts.csv.part"));
    assert!(
        pages.rows.len() > 50 && pages.rows.len() < 3000,
        "{} pages",
        pages.rows.len()
    );
    // Drained, not cut: every page was fetched whole, none failed.
    assert!(pages.column("error").iter().all(|e| e.is_empty()));
    check_whole_and_agreeing(&pages, &scripts);
}

#[test]
fn requests_past_the_grace_period_are_abandoned() {
    let server = TestServer::start();
    let run = Run::new();
    // Four quick pages, then pages that take 20 s.
    let mut urls: Vec<String> = (0..4).map(|n| server.url(&format!("/gen/{n}"))).collect();
    urls.extend((4..12).map(|n| server.url(&format!("/slow-gen/20000/{n}"))));
    // A duplicate, which the summary of a stopped run still counts.
    urls.insert(2, urls[0].clone());
    let list = run.urls("urls.txt", &urls);
    let mut child = run
        .command(&[
            &list,
            "--grace",
            "0.5",
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&run.path("pages.csv.part"), 4);
    signal(&child, libc::SIGINT);
    // Well before the slow pages could finish.
    let status = wait_within(&mut child, Duration::from_secs(10)).expect("ends after its grace");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGINT: 8 URLs not done"),
        "{stderr}"
    );
    assert!(stderr.contains("1 duplicate line skipped"), "{stderr}");
    let pages = Table::read(&run.path("pages.csv.part"));
    assert_eq!(pages.rows.len(), 4);
    check_whole_and_agreeing(&pages, &Table::read(&run.path("scripts.csv.part")));
}

#[test]
fn a_second_signal_stops_at_once() {
    let server = TestServer::start();
    let run = Run::new();
    let mut urls: Vec<String> = (0..4).map(|n| server.url(&format!("/gen/{n}"))).collect();
    urls.extend((4..40).map(|n| server.url(&format!("/slow-gen/20000/{n}"))));
    let list = run.urls("urls.txt", &urls);
    let mut child = run.spawn_quiet(&[
        &list,
        "--grace",
        "60",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ]);
    wait_for_lines(&run.path("pages.csv.part"), 4);
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, libc::SIGTERM);
    // Far less than the 60 s grace or the 20 s pages.
    let status = wait_within(&mut child, Duration::from_secs(10)).expect("stops at once");
    // The first signal decides the code.
    assert_eq!(status.code(), Some(130));
    let pages = Table::read(&run.path("pages.csv.part"));
    assert_eq!(pages.rows.len(), 4);
    check_whole_and_agreeing(&pages, &Table::read(&run.path("scripts.csv.part")));
}

#[test]
fn an_overlapping_run_leaves_at_once_with_its_own_status() {
    let server = TestServer::start();
    let run = Run::new();
    let slow: Vec<String> = (0..6)
        .map(|n| server.url(&format!("/slow-gen/1500/{n}")))
        .collect();
    let list = run.urls("urls.txt", &slow);
    let mut first = run.spawn_quiet(&[&list, "-o", "scripts.csv", "--pages", "pages.csv"]);
    // The first run has its lock once its .part files exist.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run.path("pages.csv.part").exists() {
        assert!(Instant::now() < deadline, "first run never started");
        std::thread::sleep(Duration::from_millis(5));
    }

    let second = run.run(&[&list, "-o", "scripts.csv"], None);
    assert_eq!(second.code, 75, "{}", second.stderr);
    let pid = first.id().to_string();
    assert!(
        second.stderr.contains("scripts.csv.lock") && second.stderr.contains(&pid),
        "{}",
        second.stderr
    );
    assert_eq!(second.stderr.lines().count(), 1, "{}", second.stderr);

    // The first run was not disturbed, and its lock died with it.
    let status = wait_within(&mut first, Duration::from_secs(60)).expect("first run ends");
    assert_eq!(status.code(), Some(0));
    assert_eq!(Table::read(&run.path("pages.csv")).rows.len(), 6);
    let third = run.run(&[&list, "-o", "scripts.csv", "--pages", "pages.csv"], None);
    assert_eq!(
        third.code, 0,
        "a stale lock file blocked a run: {}",
        third.stderr
    );
}

#[test]
fn wait_lock_waits_for_the_holder() {
    let server = TestServer::start();
    let run = Run::new();
    // This test holds the lock, as another run would.
    let held = std::fs::File::create(run.path("scripts.csv.lock")).unwrap();
    held.lock().unwrap();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    let mut waiting = run
        .command(&[&list, "-o", "scripts.csv", "--wait-lock"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiting.try_wait().unwrap().is_none(), "did not wait");
    assert!(
        !run.path("scripts.csv.part").exists(),
        "wrote while waiting"
    );
    drop(held);
    let status = wait_within(&mut waiting, Duration::from_secs(30)).expect("ends");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut waiting.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("waiting for"), "{stderr}");
    assert_eq!(
        Table::read(&run.path("scripts.csv")).rows.len(),
        generated_scripts(1).len()
    );
}

/// A report or scripts file as a sorted list of rows, without the columns
/// that differ between two runs of the same job (timings).
fn rows_of(path: &std::path::Path) -> Vec<Vec<String>> {
    let table = Table::read(path);
    let skip = table.headers.iter().position(|h| h == "elapsed_ms");
    let mut rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != skip)
                .map(|(_, v)| v.to_owned())
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn resume_after_repeated_sigkill_matches_an_uninterrupted_run() {
    let server = TestServer::start();
    let mut urls: Vec<String> = (0..300)
        .map(|n| server.url(&format!("/slow-gen/{}/{n}", 20 + (n * 53) % 180)))
        .collect();
    // Permanent failures and a bad line are finished too, never retried.
    urls.insert(40, server.url("/status/404"));
    urls.insert(120, "mailto:someone@example.com".to_owned());
    urls.insert(200, server.url("/json"));
    let args = |list: &str| -> Vec<String> {
        [
            list,
            "-c",
            "8",
            "--inline-text",
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
        ]
        .map(str::to_owned)
        .to_vec()
    };

    // Relative input paths, so that messages naming them match between
    // the two directories.
    let reference = Run::new();
    reference.urls("urls.txt", &urls);
    let args_ref = args("urls.txt");
    let out = reference.run(
        &args_ref.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);

    let run = Run::new();
    run.urls("urls.txt", &urls);
    let mut args_run = args("urls.txt");
    // Killed at four points of the job, resumed each time.
    for (round, at) in [30usize, 60, 100, 170].into_iter().enumerate() {
        if round > 0 {
            args_run.push("--resume".to_owned());
        }
        let mut child = run
            .command(&args_run.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_lines(&run.path("pages.csv.part"), at);
        child.kill().unwrap();
        child.wait().unwrap();
        args_run.retain(|a| a != "--resume");
    }
    args_run.push("--resume".to_owned());
    let out = run.run(
        &args_run.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("from the interrupted run"),
        "{}",
        out.stderr
    );
    // The summary covers the whole job: 300 pages, 3 failures.
    assert!(
        out.stderr.contains("300 pages ok, 3 failed"),
        "{}",
        out.stderr
    );
    assert!(!run.path("pages.csv.part").exists());

    let pages = Table::read(&run.path("pages.csv"));
    let mut urls_seen: Vec<&str> = pages.column("page_url");
    urls_seen.sort();
    urls_seen.dedup();
    assert_eq!(urls_seen.len(), pages.rows.len(), "a URL reported twice");
    assert_eq!(pages.rows.len(), urls.len());
    for file in ["pages.csv", "scripts.csv"] {
        let (ours, theirs) = (rows_of(&run.path(file)), rows_of(&reference.path(file)));
        let only_ours: Vec<_> = ours
            .iter()
            .filter(|r| !theirs.contains(r))
            .take(3)
            .collect();
        let only_theirs: Vec<_> = theirs
            .iter()
            .filter(|r| !ours.contains(r))
            .take(3)
            .collect();
        assert!(
            ours.len() == theirs.len() && only_ours.is_empty() && only_theirs.is_empty(),
            "{file}: {} rows resumed vs {} uninterrupted; only resumed: {only_ours:?}; \
             only uninterrupted: {only_theirs:?}",
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn resume_retries_transient_failures_and_nothing_else() {
    let server = TestServer::start();
    let run = Run::new();
    let mut urls = vec![
        server.url("/gen/1"),
        server.url("/flaky/1/a"),
        server.url("/status/404"),
    ];
    urls.extend((2..6).map(|n| server.url(&format!("/slow-gen/20000/{n}"))));
    let list = run.urls("urls.txt", &urls);
    let base = [
        list.as_str(),
        "--retries",
        "0",
        "--grace",
        "0",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ];
    let mut child = run.spawn_quiet(&base);
    wait_for_lines(&run.path("pages.csv.part"), 3);
    signal(&child, libc::SIGTERM);
    assert_eq!(
        wait_within(&mut child, Duration::from_secs(20)).and_then(|s| s.code()),
        Some(143)
    );
    let first = Table::read(&run.path("pages.csv.part"));
    assert_eq!(
        first.for_page(&server.url("/flaky/1/a"), "error"),
        "http_status"
    );

    // The slow pages answer at once now that their test has what it needs.
    let fast: Vec<String> = urls
        .iter()
        .map(|u| u.replace("/slow-gen/20000/", "/gen/"))
        .collect();
    std::fs::write(run.path("urls.txt"), fast.join("\n") + "\n").unwrap();
    let mut args = base.to_vec();
    args.push("--resume");
    let out = run.run(&args, None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("3 pages from the interrupted run")
            || out.stderr.contains("2 pages from the interrupted run"),
        "{}",
        out.stderr
    );
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.rows.len(), 7);
    // Tried again: the 503 was transient.
    assert_eq!(pages.for_page(&server.url("/flaky/1/a"), "error"), "");
    assert_eq!(server.hits("/flaky/1/a"), 2);
    // Finished for good: not requested again.
    assert_eq!(
        pages.for_page(&server.url("/status/404"), "error"),
        "http_status"
    );
    assert_eq!(server.hits("/status/404"), 1);
    assert_eq!(server.hits("/gen/1"), 1);
}

#[test]
fn stats_file_has_the_runs_figures() {
    let server = TestServer::start();
    let run = Run::new();
    let urls = [
        server.url("/gen/1"),
        server.url("/gen/2"),
        server.url("/slow-gen/300/3"),
        server.url("/status/404"),
        server.url("/status/503"),
        "ftp://example.com/".to_owned(),
        server.url("/gen/1"),
    ];
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[
            &list,
            "--retries",
            "0",
            "-o",
            "s.csv",
            "--stats",
            "stats.json",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!run.path("stats.json.part").exists());
    let text = std::fs::read_to_string(run.path("stats.json")).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stats["schema"], 1);
    assert_eq!(stats["outcome"], "complete");
    assert_eq!(stats["exit_status"], 1);
    assert_eq!(stats["pages"]["total"], 6);
    assert_eq!(stats["pages"]["ok"], 3);
    assert_eq!(stats["pages"]["failed"], 3);
    assert_eq!(stats["pages"]["duplicates_skipped"], 1);
    assert_eq!(stats["errors"]["http_status"], 2);
    assert_eq!(stats["errors"]["invalid_url"], 1);
    assert_eq!(stats["errors"]["timeout"], 0);
    assert_eq!(stats["status_classes"]["2xx"], 3);
    assert_eq!(stats["status_classes"]["4xx"], 1);
    assert_eq!(stats["status_classes"]["5xx"], 1);
    assert_eq!(stats["status_classes"]["none"], 1);
    let scripts: u64 = [1, 2, 3]
        .map(|n| generated_scripts(n).len() as u64)
        .iter()
        .sum();
    assert_eq!(stats["scripts"], scripts);
    assert!(stats["bytes"].as_u64().unwrap() > 0);
    // Five requests, one of them 300 ms: the slowest decides p99 and max.
    let latency = &stats["latency_ms"];
    assert_eq!(latency["count"], 5);
    assert!(latency["max"].as_u64().unwrap() >= 300, "{latency}");
    assert!(latency["p99"].as_u64().unwrap() >= 300, "{latency}");
    assert!(latency["p50"].as_u64().unwrap() < 300, "{latency}");
    let started = stats["started_at"].as_str().unwrap();
    let ended = stats["ended_at"].as_str().unwrap();
    assert!(started.ends_with('Z') && started.len() == 24, "{started}");
    assert!(started <= ended);
    assert!(stats["pages_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn resume_works_for_json_lines_too() {
    let server = TestServer::start();
    let run = Run::new();
    let urls: Vec<String> = (0..60)
        .map(|n| server.url(&format!("/slow-gen/{}/{n}", 20 + (n * 53) % 180)))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let args = [
        list.as_str(),
        "-c",
        "4",
        "--format",
        "jsonl",
        "-o",
        "s.jsonl",
        "--pages",
        "p.jsonl",
    ];
    let mut child = run.spawn_quiet(&args);
    wait_for_lines(&run.path("p.jsonl.part"), 15);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let out = run.run(&resumed, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("from the interrupted run"),
        "{}",
        out.stderr
    );
    let pages = std::fs::read_to_string(run.path("p.jsonl")).unwrap();
    let mut seen: Vec<String> = pages
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["page_url"].as_str().unwrap().to_owned()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 60);
    assert_eq!(pages.lines().count(), 60);
    let scripts = std::fs::read_to_string(run.path("s.jsonl")).unwrap();
    let expected: usize = (0..60).map(|n| generated_scripts(n).len()).sum();
    assert_eq!(scripts.lines().count(), expected);
}

#[test]
fn verbose_logs_one_line_per_failed_page() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/status/404"),
            server.url("/gen/1"),
            server.url("/status/410"),
        ],
    );
    let quiet_by_default = run.run(&[&list, "-o", "s.csv", "--pages", "p.csv"], None);
    assert_eq!(quiet_by_default.code, 1);
    // With a page report, failures are in it: stderr has the summary only.
    assert_eq!(
        quiet_by_default.stderr.lines().count(),
        1,
        "{}",
        quiet_by_default.stderr
    );
    let verbose = run.run(&[&list, "-v", "-o", "s.csv", "--pages", "p.csv"], None);
    let failed: Vec<&str> = verbose
        .stderr
        .lines()
        .filter(|l| l.contains(": http_status: "))
        .collect();
    assert_eq!(failed.len(), 2, "{}", verbose.stderr);
    assert!(
        failed[0].starts_with("scriptscrape: http://"),
        "{}",
        failed[0]
    );
    // -vv adds a line per page and per retry.
    let very = run.run(&[&list, "-vv", "-o", "s.csv", "--pages", "p.csv"], None);
    assert!(
        very.stderr.contains("debug: ") && very.stderr.contains("/gen/1: "),
        "{}",
        very.stderr
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[server.url("/status/404"), server.url("/gen/1")],
    );
    let out = run.run(
        &[
            &list,
            "-v",
            "--log-format",
            "json",
            "-o",
            "s.csv",
            "--pages",
            "p.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["timestamp"].is_string() && e["level"].is_string())
    );
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("http_status"))),
        "{}",
        out.stderr
    );
    assert!(
        events.iter().any(|e| e["target"] == "scriptscrape::summary"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("1 page ok, 1 failed")),
        "{}",
        out.stderr
    );
}

#[test]
fn rust_log_decides_when_set() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    let out = run
        .command(&[&list, "-o", "s.csv"])
        .env("RUST_LOG", "scriptscrape=debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scriptscrape: debug: "), "{stderr}");
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let server = TestServer::start();
    let run = Run::new();
    let urls: Vec<String> = (0..30)
        .map(|n| server.url(&format!("/slow-gen/60/{n}")))
        .collect();
    let list = run.urls("urls.txt", &urls);
    // Not a terminal: no bar, no control characters.
    let piped = run.run(&[&list, "-c", "2", "-o", "s.csv"], None);
    assert_eq!(piped.code, 0);
    assert!(!piped.stderr.contains('\r') && !piped.stderr.contains('\x1b'));
    assert!(!piped.stderr.contains("ETA"));

    // On a terminal (script(1) gives the run a pseudo-terminal): the bar,
    // with the total counted from the file, then the summary.
    let command = format!(
        "{} {list} -c 2 -o s.csv",
        env!("CARGO_BIN_EXE_scriptscrape")
    );
    let (status, screen) = crate::support::on_terminal(run.dir.path(), &command);
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains("/30 pages"), "{screen}");
    assert!(
        screen.contains("ETA") && screen.contains("0 failed"),
        "{screen}"
    );
    assert!(screen.contains("30 pages ok, 0 failed"), "{screen}");
    // Every field filled from the first frame, rates without a tail of
    // decimals ("10.7853/s").
    assert!(!screen.contains(", ,"), "{screen}");
    let long_rate = screen.split("/s").any(|before| {
        let digits: String = before.chars().rev().take_while(|c| *c != '.').collect();
        before.contains('.') && digits.len() > 1 && digits.chars().all(|c| c.is_ascii_digit())
    });
    assert!(!long_rate, "{screen}");
    // --quiet: nothing at all, terminal or not.
    let command = format!("{command} -q");
    let quiet = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(run.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(quiet.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&quiet.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stdout)
    );
}

/// Runs `args` until `pages.part` has more than `lines` lines, then stops
/// it with SIGTERM (and --grace 0 in `args`), bounded in time.
fn run_then_stop(run: &Run, args: &[&str], pages_part: &str, lines: usize) {
    let mut child = run
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lines(&run.path(pages_part), lines);
    signal(&child, libc::SIGTERM);
    wait_within(&mut child, Duration::from_secs(20)).expect("stops");
}

#[test]
fn resume_with_spreadsheet_safe_keeps_each_line_once() {
    let server = TestServer::start();
    let run = Run::new();
    let urls = [
        "=HYPERLINK(\"http://x\")".to_owned(),
        "@foo bar".to_owned(),
        "'quoted".to_owned(),
        server.url("/gen/1"),
        server.url("/slow-gen/20000/2"),
    ];
    let list = run.urls("urls.txt", &urls);
    let base = [
        list.as_str(),
        "--spreadsheet-safe",
        "--grace",
        "0",
        "-o",
        "s.csv",
        "--pages",
        "p.csv",
    ];
    run_then_stop(&run, &base, "p.csv.part", 4);
    std::fs::write(
        run.path("urls.txt"),
        urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
    )
    .unwrap();
    let mut args = base.to_vec();
    args.push("--resume");
    let out = run.run(&args, None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let pages = Table::read(&run.path("p.csv"));
    let mut seen = pages.column("page_url");
    assert_eq!(seen.len(), 5, "{seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "a line twice");
    assert!(
        out.stderr.contains("2 pages ok, 3 failed (3 invalid_url)"),
        "{}",
        out.stderr
    );
}

#[test]
fn resume_refuses_damaged_or_mismatched_files_and_restarts_empty_ones() {
    let server = TestServer::start();
    let run = Run::new();
    let mut urls: Vec<String> = (0..6).map(|n| server.url(&format!("/gen/{n}"))).collect();
    urls.push(server.url("/slow-gen/20000/9"));
    let list = run.urls("urls.txt", &urls);
    let jsonl = [
        list.as_str(),
        "--grace",
        "0",
        "--format",
        "jsonl",
        "-o",
        "s.jsonl",
        "--pages",
        "p.jsonl",
    ];
    // JSON Lines have no header: 6 lines are the 6 quick pages.
    run_then_stop(&run, &jsonl, "p.jsonl.part", 5);
    // Other fields than the interrupted run's.
    let mut mismatched = jsonl.to_vec();
    mismatched.extend(["--inline-text", "--resume"]);
    let out = run.run(&mismatched, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("did not have --inline-text"),
        "{}",
        out.stderr
    );
    assert!(!run.path("s.jsonl.part.tmp").exists());

    // A damaged row in the middle (not a torn tail) is refused, not skipped.
    let part = run.path("s.jsonl.part");
    let text = std::fs::read_to_string(&part).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 3);
    lines[1] = "{,not json";
    std::fs::write(&part, lines.join("\n") + "\n").unwrap();
    let mut resume = jsonl.to_vec();
    resume.push("--resume");
    let out = run.run(&resume, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("damaged at line 2"), "{}", out.stderr);

    // Empty .part files (killed as they were created): a new run.
    std::fs::write(run.path("s.jsonl.part"), "").unwrap();
    std::fs::write(run.path("p.jsonl.part"), "").unwrap();
    std::fs::write(
        run.path("urls.txt"),
        urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
    )
    .unwrap();
    let out = run.run(&resume, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(run.path("p.jsonl"))
            .unwrap()
            .lines()
            .count(),
        7
    );
}

#[test]
fn resume_never_merges_another_job() {
    let server = TestServer::start();
    let run = Run::new();
    let mut first: Vec<String> = (0..3).map(|n| server.url(&format!("/gen/{n}"))).collect();
    first.push(server.url("/slow-gen/20000/9"));
    let list = run.urls("list.txt", &first);
    let other = run.urls("other.txt", &[server.url("/gen/50")]);
    let outputs = ["--grace", "0", "-o", "s.csv", "--pages", "p.csv"];
    let with = |input: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec![input.to_owned()];
        args.extend(outputs.iter().chain(extra).map(|s| s.to_string()));
        args
    };
    let args = with(&list, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_then_stop(&run, &args, "p.csv.part", 2);
    assert!(run.path("p.csv.part.run").exists());

    // Another list: refused, nothing fetched, the .part files untouched.
    let before = std::fs::read(run.path("p.csv.part")).unwrap();
    let refused = with(&other, &["--resume"]);
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    let out = run.run(&refused, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("unfinished run of"), "{}", out.stderr);
    assert!(out.stderr.contains("list.txt"), "{}", out.stderr);
    assert_eq!(server.hits("/gen/50"), 0);
    assert_eq!(std::fs::read(run.path("p.csv.part")).unwrap(), before);

    // Another format: said as such, not as a damaged file.
    let jsonl = with(&list, &["--format", "jsonl", "--resume"]);
    let jsonl: Vec<&str> = jsonl.iter().map(String::as_str).collect();
    let out = run.run(&jsonl, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--format csv"), "{}", out.stderr);
    assert!(!out.stderr.contains("damaged"), "{}", out.stderr);

    // --detect-utf8 decodes pages otherwise: their rows would not match.
    let utf8 = with(&list, &["--detect-utf8", "--resume"]);
    let utf8: Vec<&str> = utf8.iter().map(String::as_str).collect();
    let out = run.run(&utf8, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--detect-utf8"), "{}", out.stderr);

    // The same job resumes, and once complete leaves nothing to resume.
    std::fs::write(
        run.path("list.txt"),
        first.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
    )
    .unwrap();
    let same = with(&list, &["--resume"]);
    let same: Vec<&str> = same.iter().map(String::as_str).collect();
    let out = run.run(&same, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pages = Table::read(&run.path("p.csv"));
    assert_eq!(pages.rows.len(), 4);
    assert!(!run.path("p.csv.part.run").exists());
    assert!(!run.path("p.csv.part").exists());

    // A .part without its identity (an older version's) is refused too.
    std::fs::write(run.path("list.txt"), first.join("\n") + "\n").unwrap();
    run_then_stop(&run, &args, "p.csv.part", 2);
    std::fs::remove_file(run.path("p.csv.part.run")).unwrap();
    let out = run.run(&same, None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not say which run"),
        "{}",
        out.stderr
    );
}

#[test]
fn resume_with_scripts_to_a_device() {
    let server = TestServer::start();
    let run = Run::new();
    let urls = [server.url("/gen/1"), server.url("/slow-gen/20000/2")];
    let list = run.urls("urls.txt", &urls);
    let base = [
        list.as_str(),
        "--grace",
        "0",
        "-o",
        "/dev/null",
        "--pages",
        "p.csv",
    ];
    run_then_stop(&run, &base, "p.csv.part", 1);
    std::fs::write(
        run.path("urls.txt"),
        urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
    )
    .unwrap();
    let mut args = base.to_vec();
    args.push("--resume");
    let out = run.run(&args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(Table::read(&run.path("p.csv")).rows.len(), 2);
    assert_eq!(server.hits("/gen/1"), 1);
}

/// A job of 40 quick pages and a slow one, killed (SIGKILL) once the
/// quick ones are written: .part files to damage. Returns the arguments
/// and the list; the slow page is quick once the list is rewritten.
fn killed_run(run: &Run, server: &TestServer, format: &str) -> (Vec<String>, Vec<String>) {
    let mut urls: Vec<String> = (0..40).map(|n| server.url(&format!("/gen/{n}"))).collect();
    urls.push(server.url("/slow-gen/20000/99"));
    let list = run.urls("urls.txt", &urls);
    let (scripts, pages) = match format {
        "csv" => ("ks.csv", "kp.csv"),
        _ => ("ks.jsonl", "kp.jsonl"),
    };
    let args: Vec<String> = [
        &list, "-c", "4", "--format", format, "-o", scripts, "--pages", pages,
    ]
    .map(str::to_owned)
    .to_vec();
    let mut child = run.spawn_quiet(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // JSON Lines have no header line.
    wait_for_lines(
        &run.path(&format!("{pages}.part")),
        if format == "csv" { 40 } else { 39 },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    (args, urls)
}

/// Each page's script rows in `scripts`, by page, as (page_url, rows).
fn rows_per_page(scripts: &std::path::Path, csv: bool) -> Vec<(String, usize)> {
    let urls: Vec<String> = if csv {
        Table::read(scripts)
            .column("page_url")
            .into_iter()
            .map(str::to_owned)
            .collect()
    } else {
        std::fs::read_to_string(scripts)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["page_url"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let mut counts: Vec<(String, usize)> = Vec::new();
    for url in urls {
        match counts.last_mut() {
            Some((last, n)) if *last == url => *n += 1,
            _ => counts.push((url, 1)),
        }
    }
    counts
}

#[test]
fn resume_fetches_again_the_pages_a_torn_scripts_file_lost() {
    // What a power loss leaves (only the final files are synced): the
    // scripts file cut within its last page's rows, the report whole.
    for format in ["csv", "jsonl"] {
        let server = TestServer::start();
        let run = Run::new();
        let (mut args, urls) = killed_run(&run, &server, format);
        let csv = format == "csv";
        let (scripts, pages) = (args[6].clone(), args[8].clone());
        let part = run.path(&format!("{scripts}.part"));
        let torn = rows_per_page(&part, csv).last().unwrap().0.clone();
        let file = std::fs::OpenOptions::new().write(true).open(&part).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len - 7).unwrap();
        drop(file);

        std::fs::write(
            run.path("urls.txt"),
            urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
        )
        .unwrap();
        args.push("--resume".to_owned());
        let out = run.run(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);

        // Every page once, each with as many rows as its report says, in
        // one run of rows; the summary counts the rows there are.
        let report: Vec<(String, usize)> = if csv {
            let table = Table::read(&run.path(&pages));
            (0..table.rows.len())
                .map(|r| {
                    let n = table.get(r, "scripts").parse().unwrap();
                    (table.get(r, "page_url").to_owned(), n)
                })
                .collect()
        } else {
            std::fs::read_to_string(run.path(&pages))
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let n = v["scripts"].as_u64().unwrap() as usize;
                    (v["page_url"].as_str().unwrap().to_owned(), n)
                })
                .collect()
        };
        assert_eq!(report.len(), urls.len(), "{format}");
        let rows = rows_per_page(&run.path(&scripts), csv);
        let mut sorted = report.clone();
        sorted.sort();
        let mut found = rows.clone();
        found.sort();
        assert_eq!(
            found, sorted,
            "{format}: script rows per page vs the report"
        );
        let total: usize = rows.iter().map(|(_, n)| n).sum();
        let expected: usize = (0..40)
            .chain([99])
            .map(|n| generated_scripts(n).len())
            .sum();
        assert_eq!(total, expected, "{format}");
        assert!(
            out.stderr.contains(&format!("{total} scripts")),
            "{format}: {}",
            out.stderr
        );
        // The page whose rows were cut short was fetched again, no other.
        let path = torn.strip_prefix(&server.url("")).unwrap();
        assert_eq!(server.hits(path), 2, "{format}: {torn}");
        assert_eq!(server.hits("/gen/99"), 1, "{format}");
    }
}

#[test]
fn resume_refuses_damaged_part_files_and_leaves_them_as_they_were() {
    let server = TestServer::start();
    let run = Run::new();
    let (mut args, urls) = killed_run(&run, &server, "csv");
    args.push("--resume".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let files = ["ks.csv.part", "kp.csv.part", "kp.csv.part.run"];
    let read = || files.map(|f| std::fs::read(run.path(f)).unwrap());
    let whole = read();
    // Writes `text` over file `file`, checks the refusal, puts it back.
    let refused = |file: usize, text: Vec<u8>, says: &[&str]| -> String {
        std::fs::write(run.path(files[file]), &text).unwrap();
        let before = read();
        let out = run.run(&args, None);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        for said in says {
            assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
        }
        assert!(out.stderr.contains(files[file]), "{}", out.stderr);
        assert_eq!(read(), before, "{}", out.stderr);
        assert!(!run.path("ks.csv.part.tmp").exists());
        assert!(!run.path("kp.csv.part.tmp").exists());
        std::fs::write(run.path(files[file]), &whole[file]).unwrap();
        out.stderr
    };

    // An unbalanced quote at the start of line 5 of the scripts: it runs
    // on to the end of the file, which is no torn last row.
    let text = String::from_utf8(whole[0].clone()).unwrap();
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    lines[4].insert(0, '"');
    refused(
        0,
        lines.concat().into_bytes(),
        &["is damaged at line 5 (", "start again without --resume"],
    );

    // A report row with a status no server sends.
    let text = String::from_utf8(whole[1].clone()).unwrap();
    let bad = text.replacen(",200,", ",2x0,", 1);
    assert_ne!(bad, text);
    refused(
        1,
        bad.into_bytes(),
        &["is damaged at line 2 (status is \"2x0\", not an HTTP status)"],
    );

    // A damaged record of the run's identity: said in plain words.
    let out_of_json = b"{\"inputs\": [".to_vec();
    let said = refused(
        2,
        out_of_json,
        &["is damaged (not the JSON scriptscrape writes); start again without --resume"],
    );
    assert!(!said.contains("EOF"), "{said}");

    // Untouched, the files still resume.
    std::fs::write(
        run.path("urls.txt"),
        urls.join("\n").replace("/slow-gen/20000/", "/gen/") + "\n",
    )
    .unwrap();
    let out = run.run(&args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(Table::read(&run.path("kp.csv")).rows.len(), urls.len());
}

#[test]
fn runs_sharing_any_output_exclude_each_other() {
    let server = TestServer::start();
    let run = Run::new();
    std::fs::create_dir(run.path("data")).unwrap();
    std::fs::write(run.path("data/s.csv"), "").unwrap();
    std::os::unix::fs::symlink(run.path("data/s.csv"), run.path("link.csv")).unwrap();
    let list = run.urls("urls.txt", &[server.url("/slow-gen/20000/1")]);
    let mut first = run.spawn_quiet(&[
        &list,
        "--grace",
        "0",
        "-o",
        "link.csv",
        "--pages",
        "report.csv",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run.path("report.csv.part").exists() {
        assert!(Instant::now() < deadline, "first run never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The same scripts file under its real name, and the same report with
    // another scripts file: both must wait for the first run.
    for args in [
        vec![list.as_str(), "-o", "data/s.csv"],
        vec![list.as_str(), "-o", "other.csv", "--pages", "./report.csv"],
        vec![list.as_str(), "-o", "/dev/null", "--pages", "report.csv"],
        // --stats is an output too, and must not touch the first run's
        // .part file on the way.
        vec![list.as_str(), "-o", "/dev/null", "--stats", "report.csv"],
    ] {
        let out = run.run(&args, None);
        assert_eq!(out.code, 75, "{args:?}: {}", out.stderr);
    }
    assert!(run.path("report.csv.part").exists());
    signal(&first, libc::SIGTERM);
    wait_within(&mut first, Duration::from_secs(20)).expect("stops");
}

#[test]
fn stats_path_problems_are_found_before_the_run() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    let out = run.run(&[&list, "-o", "s.csv", "--stats", &list], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing to overwrite"),
        "{}",
        out.stderr
    );
    let out = run.run(&[&list, "-o", "s.csv", "--stats", "s.csv"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run.run(
        &[&list, "-o", "s.csv", "--stats", "no/such/dir/x.json"],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot write --stats"),
        "{}",
        out.stderr
    );
    // Standard output already carries the scripts.
    let out = run.run(&[&list, "--stats", "-"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--stats -"), "{}", out.stderr);
    let out = run.run(
        &[&list, "-o", "s.csv", "--pages", "-", "--stats", "-"],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // Nor may it replace a file an output keeps beside itself.
    for kept in ["p.csv.part", "p.csv.part.run", "s.csv.lock"] {
        let out = run.run(
            &[&list, "-o", "s.csv", "--pages", "p.csv", "--stats", kept],
            None,
        );
        assert_eq!(out.code, 2, "{kept}: {}", out.stderr);
        assert!(out.stderr.contains("refusing"), "{kept}: {}", out.stderr);
    }
    assert_eq!(server.hits("/gen/1"), 0, "the run went ahead");
    assert!(!run.path("-").exists());
}

#[test]
fn a_list_on_standard_input_is_never_an_output() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    let before = std::fs::read(&list).unwrap();
    for args in [
        &["-o", "urls.txt"][..],
        &["-", "-o", "s.csv", "--pages", "urls.txt"],
        &["-o", "s.csv", "--stats", "./urls.txt"],
        &["-", "-o", "/dev/stdin"],
    ] {
        let out = run
            .command(args)
            .stdin(std::fs::File::open(&list).unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("standard input"), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read(&list).unwrap(),
            before,
            "{args:?} replaced the list"
        );
    }
    assert_eq!(server.hits("/gen/1"), 0);
}

#[test]
fn stats_follow_the_rules_of_the_other_outputs() {
    use std::os::unix::fs::FileTypeExt as _;
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1"), server.url("/gen/2")]);
    let pages_ok = |stats: &serde_json::Value| stats["pages"]["ok"].as_u64();

    // A device node of the test's own (the null device's numbers): written
    // in place, still a device afterwards.
    let null = run.path("null");
    let made = std::process::Command::new("mknod")
        .args([null.to_str().unwrap(), "c", "1", "3"])
        .status()
        .expect("mknod from coreutils");
    assert!(made.success(), "mknod needs root");
    let out = run.run(&[&list, "-o", "s.csv", "--stats", "null"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let meta = std::fs::symlink_metadata(&null).unwrap();
    assert!(meta.file_type().is_char_device(), "the device was replaced");

    // A device that cannot take them (the full device's numbers): exit 2,
    // after the summary of the run, whose outputs are in place.
    let full = run.path("full");
    let made = std::process::Command::new("mknod")
        .args([full.to_str().unwrap(), "c", "1", "7"])
        .status()
        .expect("mknod from coreutils");
    assert!(made.success(), "mknod needs root");
    let out = run.run(&[&list, "-o", "s.csv", "--stats", "full"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("2 pages ok"), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot write --stats full"),
        "{}",
        out.stderr
    );
    assert!(run.path("s.csv").exists());

    // A symlink stays a symlink; the file it names gets the stats.
    std::fs::write(run.path("real.json"), "{}").unwrap();
    std::fs::set_permissions(
        run.path("real.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("real.json", run.path("link.json")).unwrap();
    let out = run.run(&[&list, "-o", "s.csv", "--stats", "link.json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        std::fs::symlink_metadata(run.path("link.json"))
            .unwrap()
            .is_symlink()
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("real.json")).unwrap()).unwrap();
    assert_eq!(pages_ok(&stats), Some(2));
    let mode = std::fs::metadata(run.path("real.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "the mode of the file replaced is kept");

    // The stats are staged under a name of their own: an output named
    // like their would-be .part is not touched.
    let out = run.run(&[&list, "-o", "x.json.part", "--stats", "x.json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scripts = Table::read(&run.path("x.json.part"));
    let mut pages = scripts.column("page_url");
    pages.dedup();
    assert_eq!(pages.len(), 2, "the scripts output the user named is whole");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("x.json")).unwrap()).unwrap();
    assert_eq!(pages_ok(&stats), Some(2));

    // `-`: standard output, when the scripts go to a file.
    let out = run.run(&[&list, "-o", "s.csv", "--stats", "-"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pages_ok(&stats), Some(2));
    assert!(!run.path("-").exists());
}

#[test]
fn false_flags_in_the_environment_are_not_set() {
    let run = Run::new();
    let out = run
        .command(&["--generate", "man"])
        .env("SCRIPTSCRAPE_OUTPUT", "x.csv")
        .env("SCRIPTSCRAPE_RESUME", "false")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let out = run
        .command(&[&list, "-v", "--retries", "0", "-o", "/dev/null"])
        .env("SCRIPTSCRAPE_QUIET", "false")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("connect"), "{stderr}");
}

#[test]
fn a_dangling_symlink_output_is_created_through_the_link() {
    let server = TestServer::start();
    let run = Run::new();
    std::fs::create_dir(run.path("data")).unwrap();
    // The link names a file that does not exist yet, relative to the link.
    std::os::unix::fs::symlink("data/new.csv", run.path("link.csv")).unwrap();
    let list = run.urls("urls.txt", &[server.url("/gen/2")]);
    let out = run.run(&[&list, "-o", "link.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let link = std::fs::symlink_metadata(run.path("link.csv")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    assert_eq!(
        Table::read(&run.path("data/new.csv")).rows.len(),
        generated_scripts(2).len()
    );
    assert!(run.path("data/new.csv.lock").exists());
}

#[test]
fn one_signal_ends_a_run_blocked_on_a_fifo_without_a_reader() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let fifo = run.path("nobody-reads");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo from coreutils");
    assert!(made.success());
    let mut child = run
        .command(&[&list, "--grace", "0", "-o", "nobody-reads"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the FIFO blocks until a reader comes, which never happens.
    // Signal once the run catches SIGTERM (its bit in /proc's SigCgt mask).
    let deadline = Instant::now() + Duration::from_secs(10);
    let catches_term = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        status
            .ok()
            .and_then(|s| {
                let mask = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
    };
    while !catches_term() {
        assert!(Instant::now() < deadline, "the run never caught SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(143));
}
