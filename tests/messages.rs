//! What a user reads: log lines on standard error, `error_detail` in the
//! page report, and the messages that refuse a command line.

use crate::support::{RawServer, Run, Table, TestServer, redirect_via, refused_url};

fn tls_reply(_path: &str) -> Vec<u8> {
    let page = "<html><script src=/a.js></script></html>";
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    )
    .into_bytes()
}

/// Runs the binary on `urls` with extra `args`, writing the page report
/// to pages.csv; returns the run's output and the report.
fn scrape(urls: &[impl AsRef<str>], args: &[&str]) -> (crate::support::Output, Table) {
    let run = Run::new();
    let out = crate::support::scrape_into(&run, urls, args);
    let pages = Table::read(&run.path("pages.csv"));
    (out, pages)
}

#[test]
fn tls_failures_show_only_our_lines_and_name_the_page() {
    let server = RawServer::start_tls(tls_reply);
    let url = format!("https://{}/page", server.addr);

    let (out, pages) = scrape(&[&url], &[]);
    assert_eq!(out.code, 1);
    // Default level: the summary line only, no library's log line.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("scriptscrape: 0 pages ok, 1 failed (1 tls)"),
        "{}",
        lines[0]
    );
    let detail = pages.get(0, "error_detail");
    assert!(
        detail.starts_with("TLS certificate not trusted for 127.0.0.1 ("),
        "{detail}"
    );
    for internal in ["Other(", "OtherError", "CaUsedAsEndEntity", "UnknownIssuer"] {
        assert!(!detail.contains(internal), "{detail}");
    }

    // -v: one line for the failed page, naming it.
    let (out, _) = scrape(&[&url], &["-v"]);
    let failures: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(url.as_str()))
        .collect();
    assert_eq!(
        failures,
        [format!("scriptscrape: {url}: tls: {detail}").as_str()],
        "{}",
        out.stderr
    );
}

#[test]
fn json_logs_carry_no_build_machine_paths() {
    let server = RawServer::start_tls(tls_reply);
    let url = format!("https://{}/page", server.addr);
    // -vvv shows the libraries' events too, rustls's among them.
    let (out, _) = scrape(&[&url], &["--log-format", "json", "-vvv"]);
    let mut from_log_crate = 0;
    for line in out.stderr.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let object = event.as_object().expect("an object per line");
        assert!(object.keys().all(|k| !k.starts_with("log.")), "{line}");
        assert!(!line.contains(".rs\""), "{line}");
        assert!(!line.contains("/src/"), "{line}");
        if object["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("rustls"))
        {
            from_log_crate += 1;
        }
    }
    assert!(
        from_log_crate > 0,
        "no rustls event to check:\n{}",
        out.stderr
    );
}

#[test]
fn refused_connections_name_the_host_or_the_proxy() {
    let refused = refused_url();
    let (_, pages) = scrape(&[&refused], &["--retries", "0"]);
    let at = refused.trim_start_matches("http://").trim_end_matches('/');
    assert_eq!(pages.get(0, "error"), "connect");
    assert_eq!(
        pages.get(0, "error_detail"),
        format!("connection refused by {at}")
    );

    let server = TestServer::start();
    let proxy = refused.replace("http://", "http://user:s3cret@");
    let (out, pages) = scrape(
        &[server.url("/gen/1")],
        &["--retries", "0", "--proxy", &proxy, "-v"],
    );
    assert_eq!(pages.get(0, "error"), "connect");
    assert_eq!(
        pages.get(0, "error_detail"),
        format!("proxy http://{at} refused the connection")
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[test]
fn responses_keep_their_status_and_final_url_when_the_page_fails() {
    let server = TestServer::start();
    let stalled = server.url("/stall-body");
    let (_, pages) = scrape(&[&stalled], &["--timeout", "0.5", "--retries", "0"]);
    assert_eq!(pages.get(0, "error"), "timeout");
    assert_eq!(pages.get(0, "status"), "200");
    assert_eq!(pages.get(0, "final_url"), stalled);
    let detail = pages.get(0, "error_detail");
    assert!(
        detail.starts_with("timed out after 500 ms (--timeout) reading the body"),
        "{detail}"
    );

    let urls = [server.url("/loop"), server.url("/redirect/5")];
    let (_, pages) = scrape(&urls, &["--max-redirects", "3"]);
    assert_eq!(pages.for_page(&urls[0], "error"), "redirect");
    assert_eq!(pages.for_page(&urls[0], "status"), "302");
    assert_eq!(pages.for_page(&urls[0], "final_url"), urls[0]);
    assert_eq!(
        pages.for_page(&urls[0], "error_detail"),
        format!("redirect loop: {} was already visited", urls[0])
    );
    // The fourth redirect is refused: the page that asked for it is the last
    // one reached.
    assert_eq!(pages.for_page(&urls[1], "status"), "302");
    assert_eq!(
        pages.for_page(&urls[1], "final_url"),
        server.url("/redirect/2")
    );
    assert_eq!(
        pages.for_page(&urls[1], "error_detail"),
        "more than 3 redirects (--max-redirects)"
    );
}

#[test]
fn body_too_large_reports_no_more_bytes_than_the_cap() {
    let server = TestServer::start();
    let url = server.url("/big/1000000");
    let (_, pages) = scrape(&[&url], &["--max-body", "500K"]);
    assert_eq!(pages.get(0, "error"), "body_too_large");
    assert_eq!(pages.get(0, "bytes"), (500 * 1024).to_string());
}

/// Runs the binary with `args` (a URL list first) and returns its exit
/// code and standard error, which must be one line.
fn refused(args: &[&str]) -> String {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let mut all = vec![list.as_str(), "-o", "s.csv"];
    all.extend_from_slice(args);
    let out = run.run(&all, None);
    assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
    assert!(!run.path("s.csv").exists(), "{args:?} ran");
    lines[0].to_owned()
}

#[test]
fn bad_option_values_are_refused_in_the_users_words() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["-c", "0"],
            "invalid value '0' for '--concurrency <N>': expected a whole number of at least 1",
        ),
        (
            &["-c", "-4"],
            "invalid value '-4' for '--concurrency <N>': negative values are not allowed",
        ),
        (
            &["--delay", "1.5"],
            "invalid value '1.5' for '--delay <MS>': --delay takes whole milliseconds or a unit: \
             for 1.5 seconds write 1.5s or 1500",
        ),
        (
            &["--timeout", "-1"],
            "invalid value '-1' for '--timeout <SECS>': negative values are not allowed",
        ),
        (
            &["--timeout", "0"],
            "invalid value '0' for '--timeout <SECS>': expected at least 0.001 seconds",
        ),
        (
            &["--retries", "two"],
            "invalid value 'two' for '--retries <N>': expected a whole number (0 or more)",
        ),
        (
            &["--max-body", "-5"],
            "invalid value '-5' for '--max-body <BYTES>': negative values are not allowed",
        ),
        (
            &["--depth", "70000"],
            "invalid value '70000' for '--depth <N>': 70000 is too large",
        ),
        (
            &["--max-failures", "150"],
            "invalid value '150' for '--max-failures <PCT>': expected a percentage from 0 to 100",
        ),
    ];
    for (args, expected) in cases {
        let line = refused(args);
        assert!(
            line.starts_with(&format!("scriptscrape: {expected}")),
            "{args:?}: {line}"
        );
        for internal in [
            "invalid digit",
            "non-zero type",
            "unexpected argument",
            "ParseIntError",
        ] {
            assert!(!line.contains(internal), "{args:?}: {line}");
        }
    }
}

#[test]
fn delay_takes_milliseconds_or_a_unit() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1"), server.url("/gen/2")]);
    for delay in ["300", "0.3s", "300ms"] {
        let started = std::time::Instant::now();
        let out = run.run(&[&list, "--delay", delay, "-o", "s.csv", "-q"], None);
        assert_eq!(out.code, 0, "{delay}: {}", out.stderr);
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(300),
            "--delay {delay}"
        );
    }
}

/// A command's unknown option points at that command's help; the
/// browser's options given to a worker say where they belong.
#[test]
fn a_commands_unknown_option_names_its_help() {
    let refused_by_work = |arg: &str| {
        let out = Run::new().run(&["work", arg], None);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        out.stderr.trim_end().to_owned()
    };
    assert_eq!(
        refused_by_work("--bogus"),
        "scriptscrape: unexpected argument '--bogus' found (see scriptscrape work --help)"
    );
    let line = refused_by_work("--render");
    assert!(
        line.starts_with(
            "scriptscrape: unexpected argument '--render' found; workers fetch and parse only"
        ) && line.ends_with("(see scriptscrape work --help)"),
        "{line}"
    );
    assert_eq!(
        refused_by_work("--rendering"),
        "scriptscrape: unexpected argument '--rendering' found (see scriptscrape work --help)"
    );
    assert!(refused_by_work("--render-idle=300").contains("workers fetch and parse only"));
    let out = Run::new().run(&["--quiet", "work", "--bogus"], None);
    assert!(
        out.stderr.ends_with("(see scriptscrape work --help)\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        refused(&["--bogus"]),
        "scriptscrape: unexpected argument '--bogus' found (see --help)"
    );
}

#[test]
fn conflicting_flags_are_refused() {
    let line = refused(&["-q", "-v"]);
    assert_eq!(
        line,
        "scriptscrape: -q (--quiet) and -v (--verbose) contradict each other: \
         give one of them (see --help)"
    );
    // One from the environment: the command line's wins.
    let run = Run::new();
    let list = run.urls("urls.txt", &[refused_url()]);
    let out = run
        .command(&[&list, "-v", "--retries", "0", "-o", "/dev/null"])
        .env("SCRIPTSCRAPE_QUIET", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(": connect: connection refused by"),
        "{stderr}"
    );
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let out = run.run(&[&list, "-o", "s.jsonl", "--spreadsheet-safe"], None);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim_end(),
        "scriptscrape: error: --spreadsheet-safe applies to CSV only: drop it, or use --format csv"
    );
    // A name that says CSV and --format jsonl: which one is meant?
    let line = refused(&["--format", "jsonl"]);
    assert_eq!(
        line,
        "scriptscrape: error: -o s.csv names csv, and --format asks for jsonl: rename it, or give \
         --format csv"
    );
    let run = Run::new();
    std::fs::write(run.path("old.csv"), "page_url\n").unwrap();
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "old.csv",
            "--format",
            "text",
            "--spreadsheet-safe",
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "scriptscrape diff: --spreadsheet-safe applies to CSV only: drop it, or use --format csv\n"
    );
}

#[test]
fn man_pages_cover_diff_and_name_the_exit_status_section() {
    let run = Run::new();
    let man = run.run(&["--generate", "man"], None);
    assert_eq!(man.code, 0, "{}", man.stderr);
    let man = String::from_utf8(man.stdout).unwrap();
    let sections: Vec<&str> = man.lines().filter(|l| l.starts_with(".SH")).collect();
    assert!(
        !sections.iter().any(|s| s.contains("EXTRA")),
        "{sections:?}"
    );
    for heading in ["EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
        assert!(
            sections.iter().any(|s| s.contains(heading)),
            "no {heading} in {sections:?}"
        );
    }
    assert!(man.contains("scriptscrape\\-diff(1)"), "{man}");
    assert!(man.contains(".B 75") || man.contains("\\fB75\\fR"), "{man}");

    // The page it points to is generated too.
    let diff = run.run(&["--generate", "man-diff"], None);
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    let diff = String::from_utf8(diff.stdout).unwrap();
    assert!(diff.contains(".TH scriptscrape-diff 1"), "{diff}");
    assert!(diff.contains("fail\\-on"), "every diff option is in it");
    assert!(diff.contains(".SH \"EXIT STATUS\""), "{diff}");
    assert!(!diff.contains("EXTRA"), "{diff}");
}

#[test]
fn output_errors_name_the_output() {
    let line = refused(&["--pages", "gone/report.csv"]);
    assert_eq!(
        line,
        "scriptscrape: error: cannot write --pages gone/report.csv: \
         the directory gone does not exist"
    );

    // /dev/full takes no byte: the first write fails.
    for (args, name) in [
        (["-o", "/dev/full"], "-o /dev/full"),
        (["--pages", "/dev/full"], "--pages /dev/full"),
    ] {
        let run = Run::new();
        let list = run.urls("urls.txt", &[refused_url()]);
        let mut all = vec![list.as_str(), "--retries", "0", "-q"];
        all.extend_from_slice(&args);
        if args[0] == "--pages" {
            all.extend_from_slice(&["-o", "s.csv"]);
        }
        let out = run.run(&all, None);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_eq!(
            out.stderr,
            format!("scriptscrape: error: cannot write {name}: No space left on device\n")
        );
    }
}

#[test]
fn credentials_in_a_listed_url_reach_no_output_and_no_log() {
    let server = TestServer::start();
    let run = Run::new();
    let with_auth = |path: &str| {
        server
            .url(path)
            .replacen("http://", "http://ann:s3cret@", 1)
    };
    // A failing page too, so that its error line is logged at -v.
    let list = run.urls("urls.txt", &[with_auth("/gen/1"), with_auth("/status/404")]);
    let out = run.run(
        &[
            &list, "-vv", "-o", "s.csv", "--pages", "p.csv", "--stats", "st.json",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    for file in ["s.csv", "p.csv", "st.json"] {
        let text = std::fs::read_to_string(run.path(file)).unwrap();
        assert!(!text.contains("s3cret"), "{file}: {text}");
    }
    let pages = Table::read(&run.path("p.csv"));
    let masked = server.url("/gen/1").replacen("http://", "http://***@", 1);
    assert_eq!(pages.for_page(&masked, "error"), "", "{:?}", pages.rows);
    // reqwest sends the user info as an Authorization header.
    assert_eq!(pages.for_page(&masked, "final_url"), server.url("/gen/1"));
    assert!(out.stderr.contains("http://***@"), "{}", out.stderr);
    assert!(!out.stderr.contains("ann:"), "{}", out.stderr);
}

#[test]
fn credentials_in_malformed_urls_and_header_values_are_not_echoed() {
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[
            "u:PWSECRET@127.0.0.1:9/page/1",
            "http://u:PW/SECRET@127.0.0.1:9/x",
        ],
    );
    let out = run.run(&[&list, "-v", "-o", "s.csv", "--pages", "p.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("SECRET"), "{}", out.stderr);
    let report = std::fs::read_to_string(run.path("p.csv")).unwrap();
    assert!(!report.contains("SECRET"), "{report}");
    assert_eq!(
        Table::read(&run.path("p.csv")).column("error"),
        ["invalid_url", "invalid_url"]
    );

    let out = run.run(&[&list, "-H", "Authorization: Bearer TOKSECRET\x01"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("SECRET"), "{}", out.stderr);
    assert!(out.stderr.contains("authorization"), "{}", out.stderr);
}

fn corrupt_gzip_reply(path: &str) -> Vec<u8> {
    let body: Vec<u8> = if path.contains("cut") {
        // A real gzip stream cut in half, with a Content-Length that
        // matches what is sent: the connection is fine, the data is not.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, "<script>x()</script>".repeat(200).as_bytes()).unwrap();
        let whole = gz.finish().unwrap();
        whole[..whole.len() / 2].to_vec()
    } else {
        b"\x1f\x8b\x08\x00garbage that is not deflate data".to_vec()
    };
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend(body);
    reply
}

#[test]
fn a_corrupt_compressed_body_is_said_in_words() {
    let server = RawServer::start(corrupt_gzip_reply);
    let (out, pages) = scrape(
        &[server.url("/bad"), server.url("/cut")],
        &["--retries", "0"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(pages.column("error"), ["decode", "decode"]);
    let detail = |p: &str| pages.for_page(&server.url(p), "error_detail").to_owned();
    assert!(
        detail("/bad").contains("corrupt compressed data"),
        "{}",
        detail("/bad")
    );
    assert!(detail("/cut").contains("cut short"), "{}", detail("/cut"));
    assert!(!detail("/bad").contains("deflate decompression"));
}

/// Closes each connection without answering.
fn hang_up(_path: &str) -> Vec<u8> {
    Vec::new()
}

#[test]
fn failures_after_a_redirect_name_the_hop_that_failed() {
    let server = TestServer::start();
    // The hop's URL carries a password: shown masked.
    let refused = refused_url().replace("http://", "http://ann:s3cret@") + "x";
    let at = refused
        .trim_start_matches("http://ann:s3cret@")
        .trim_end_matches("/x");
    let closing = RawServer::start(hang_up);
    let urls = [
        redirect_via(&server, &refused),
        redirect_via(&server, &closing.url("/gone")),
    ];
    let (_, pages) = scrape(&urls, &["--retries", "0"]);

    assert_eq!(pages.for_page(&urls[0], "error"), "connect");
    assert_eq!(
        pages.for_page(&urls[0], "error_detail"),
        format!("connection refused by {at}")
    );
    assert_eq!(
        pages.for_page(&urls[0], "final_url"),
        format!("http://***@{at}/x")
    );
    assert_eq!(pages.for_page(&urls[0], "status"), "302");

    assert_eq!(pages.for_page(&urls[1], "error"), "io");
    assert_eq!(
        pages.for_page(&urls[1], "error_detail"),
        format!(
            "{} closed the connection before the response was complete",
            closing.addr
        )
    );
    assert_eq!(pages.for_page(&urls[1], "final_url"), closing.url("/gone"));
    assert_eq!(pages.for_page(&urls[1], "status"), "302");

    let slow = server.url("/slow/3000/plain.html");
    let url = redirect_via(&server, &slow);
    let (_, pages) = scrape(&[&url], &["--retries", "0", "--timeout", "0.5"]);
    assert_eq!(pages.get(0, "error"), "timeout");
    assert_eq!(
        pages.get(0, "error_detail"),
        format!(
            "timed out after 500 ms (--timeout) waiting for the response after a redirect to {slow}"
        )
    );
    assert_eq!(pages.get(0, "final_url"), slow);
    assert_eq!(pages.get(0, "status"), "302");
}

#[test]
fn control_characters_in_log_lines_are_escaped() {
    let run = Run::new();
    let line = "http://bad host\tx\ry\u{1b}[2Jz";
    let list = run.urls("urls.txt", &[line]);
    let out = run.run(&[&list, "-v", "-o", "s.csv", "--pages", "p.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(r"scriptscrape: http://bad host\tx\ry\x1b[2Jz: invalid_url: "),
        "{}",
        out.stderr
    );
    for raw in ['\t', '\r', '\u{1b}'] {
        assert!(!out.stderr.contains(raw), "{raw:?} in {:?}", out.stderr);
    }
    // One line per event, each ended by its newline.
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    assert!(out.stderr.ends_with('\n'));
    // The report keeps the line as written.
    let pages = Table::read(&run.path("p.csv"));
    assert_eq!(pages.get(0, "page_url"), line);
}
