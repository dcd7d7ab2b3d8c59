//! Input handling, outputs and exit codes, through the command line.

use crate::support::{Run, Table, TestServer};

#[test]
fn help_documents_exit_codes_and_ends_with_an_example() {
    let out = Run::new().run(&["--help"], None);
    assert_eq!(out.code, 0);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("  2    the run could not run"), "{help}");
    assert!(help.contains("  75   another run holds"), "{help}");
    let last = help.trim_end().lines().last().unwrap();
    assert!(
        last.contains("scriptscrape"),
        "help should end with an example, got {last:?}"
    );
}

#[test]
fn invalid_lines_duplicates_comments_are_all_accounted() {
    let server = TestServer::start();
    let run = Run::new();
    let page = server.url("/fixtures/no-scripts.html");
    let bare = page.trim_start_matches("http://").to_owned();
    let list = run.urls(
        "urls.txt",
        &[
            "# a comment".into(),
            String::new(),
            format!("   {page}   "),
            page.clone(),
            "mailto:someone@example.com".into(),
            "http://".into(),
            "not a url at all".into(),
            "not a url at all".into(),
            server.url("/gen/1"),
            "ftp://127.0.0.1/file".into(),
            // A bare host means https; the plain-HTTP server refuses TLS.
            bare,
        ],
    );
    let out = run.run(&[&list, "--pages", "pages.csv", "-o", "scripts.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);

    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(
        pages.headers,
        [
            "page_url",
            "final_url",
            "status",
            "error",
            "scripts",
            "bytes",
            "elapsed_ms",
            "error_detail",
            "charset",
            "attempts",
            "depth",
            "referrer",
            "csp"
        ]
    );
    // One row per distinct line: 8 distinct URLs and invalid lines.
    assert_eq!(pages.rows.len(), 7, "{:?}", pages.rows);
    assert_eq!(server.hits("/fixtures/no-scripts.html"), 1);
    let invalid = pages.rows_where("error", "invalid_url");
    let mut raw: Vec<&str> = invalid.iter().map(|&i| pages.get(i, "page_url")).collect();
    raw.sort();
    assert_eq!(
        raw,
        [
            "ftp://127.0.0.1/file",
            "http://",
            "mailto:someone@example.com",
            "not a url at all"
        ]
    );
    for &i in &invalid {
        assert!(
            pages.get(i, "error_detail").contains("urls.txt line"),
            "{:?}",
            pages.rows[i]
        );
        assert_eq!(pages.get(i, "status"), "");
    }
    let ok = pages.rows_where("page_url", &page)[0];
    assert_eq!(pages.get(ok, "error"), "");
    assert_eq!(pages.get(ok, "status"), "200");
    assert_eq!(pages.get(ok, "scripts"), "0");
    let tls = pages.rows_where("error", "tls");
    assert_eq!(tls.len(), 1, "{:?}", pages.rows);
    assert!(
        pages
            .get(tls[0], "page_url")
            .starts_with("https://127.0.0.1:")
    );

    assert!(
        out.stderr.contains("2 pages ok, 5 failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 duplicate lines skipped"),
        "{}",
        out.stderr
    );
}

#[test]
fn urls_from_standard_input() {
    let server = TestServer::start();
    let run = Run::new();
    let stdin = format!("{}\n{}\n", server.url("/gen/2"), server.url("/gen/3"));
    let out = run.run(&["--pages", "pages.csv"], Some(&stdin));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scripts = Table::parse(&out.stdout);
    let mut pages: Vec<&str> = scripts.column("page_url");
    pages.dedup();
    pages.sort();
    assert_eq!(pages, [server.url("/gen/2"), server.url("/gen/3")]);
    assert_eq!(Table::read(&run.path("pages.csv")).rows.len(), 2);

    // '-' among files reads standard input in its place.
    let list = run.urls("a.txt", &[server.url("/gen/5")]);
    let out = run.run(&[&list, "-", "-o", "s.csv"], Some(&server.url("/gen/6")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut pages: Vec<String> = Table::read(&run.path("s.csv"))
        .column("page_url")
        .iter()
        .map(|s| s.to_string())
        .collect();
    pages.dedup();
    pages.sort();
    assert_eq!(pages, [server.url("/gen/5"), server.url("/gen/6")]);
}

#[test]
fn exit_code_zero_when_every_page_succeeds() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/gen/1"),
            server.url("/fixtures/kitchen-sink.html"),
        ],
    );
    let out = run.run(&[&list, "-o", "scripts.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("scriptscrape: 2 pages ok, 0 failed, 13 scripts"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one summary line: {}",
        out.stderr
    );
    let quiet = run.run(&[&list, "-o", "scripts.csv", "-q"], None);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn max_failures_tolerates_a_share_of_failed_pages() {
    let server = TestServer::start();
    let run = Run::new();
    // 1 failure in 4 pages: 25 %.
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/gen/1"),
            server.url("/gen/2"),
            server.url("/gen/3"),
            server.url("/status/404"),
        ],
    );
    for (pct, code) in [("0", 1), ("24.9", 1), ("25", 0), ("30%", 0)] {
        let out = run.run(&[&list, "-o", "scripts.csv", "--max-failures", pct], None);
        assert_eq!(out.code, code, "--max-failures {pct}: {}", out.stderr);
        // The summary counts the failure either way.
        assert!(
            out.stderr.contains("3 pages ok, 1 failed"),
            "{}",
            out.stderr
        );
    }
    let out = run.run(&[&list, "--max-failures", "101"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn exit_code_two_for_runs_that_cannot_run() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let cases: [(&[&str], &str); 8] = [
        (&["missing-file.txt"], "cannot read input missing-file.txt"),
        (
            &[&list, "-o", "no/such/dir/out.csv"],
            "cannot write -o no/such/dir/out.csv: the directory no/such/dir does not exist",
        ),
        (&[&list, "-c", "0"], "--concurrency"),
        (&[&list, "--timeout", "soon"], "--timeout"),
        (&[&list, "-H", "NoColon"], "invalid header"),
        (&[&list, "--max-body", "12 parsecs"], "--max-body"),
        (
            &[&list, "--depth", "1", "--include", "("],
            "invalid --include \"(\": unclosed group",
        ),
        (&[&list, "--stats", "."], "--stats .: it is a directory"),
    ];
    for (args, message) in cases {
        let out = run.run(args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        // Rust's wording stays inside: no "(os error 2)", one "error:".
        assert!(!out.stderr.contains("os error"), "{}", out.stderr);
        assert!(out.stderr.matches("error:").count() <= 1, "{}", out.stderr);
    }
    // A directory as input is refused up front, before any request.
    let out = run.run(&[".", "-o", "x.csv"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is a directory"), "{}", out.stderr);
}

#[test]
fn failures_go_to_stderr_when_there_is_no_page_report() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[server.url("/status/404"), server.url("/gen/1")],
    );
    let out = run.run(&[&list, "-o", "scripts.csv"], None);
    assert_eq!(out.code, 1);
    let expected = format!(
        "scriptscrape: {}: http_status: HTTP 404 Not Found",
        server.url("/status/404")
    );
    assert!(out.stderr.lines().any(|l| l == expected), "{}", out.stderr);
}

#[test]
fn user_agent_and_headers_reach_the_server() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let out = run.run(
        &[
            &list,
            "-o",
            "s.csv",
            "--user-agent",
            "inventory-bot/2.0",
            "-H",
            "X-Team: security",
            "-H",
            "Accept-Language: fr",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let headers = server.last_headers();
    assert_eq!(headers["user-agent"], "inventory-bot/2.0");
    assert_eq!(headers["x-team"], "security");
    assert_eq!(headers["accept-language"], "fr");

    let out = run.run(&[&list, "-o", "s.csv"], None);
    assert_eq!(out.code, 0);
    let ua = server.last_headers()["user-agent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ua.starts_with("scriptscrape/"), "{ua}");
}

#[test]
fn inline_text_column_on_request() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/fixtures/latin1-meta.html")]);
    let out = run.run(&[&list, "-o", "s.csv", "--inline-text"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let t = Table::read(&run.path("s.csv"));
    assert_eq!(t.headers.last().unwrap(), "inline_text");
    // Declared windows-1252 by <meta> only; decoded before hashing.
    assert_eq!(t.get(0, "inline_text"), "var s = \"café\";");
    assert_eq!(
        t.get(0, "inline_bytes"),
        "var s = \"café\";".len().to_string()
    );
}

#[test]
fn outputs_that_are_inputs_in_another_spelling_are_refused() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let out = run.run(&["urls.txt", "-o", "./urls.txt"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is also an input"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "http://127.0.0.1:9/\n"
    );
    let out = run.run(&["urls.txt", "-o", "a.csv", "--pages", "./a.csv"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("same file"), "{}", out.stderr);

    // An output that cannot be created leaves the others as they were.
    std::fs::write(run.path("keep.csv"), "previous run\n").unwrap();
    let out = run.run(
        &["urls.txt", "-o", "keep.csv", "--pages", "no/such/dir/p.csv"],
        None,
    );
    assert_eq!(out.code, 2);
    assert_eq!(
        std::fs::read_to_string(run.path("keep.csv")).unwrap(),
        "previous run\n"
    );
}

#[test]
fn argument_errors_are_one_line() {
    let out = Run::new().run(&["--no-such-flag"], None);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("scriptscrape: unexpected argument '--no-such-flag'"),
        "{}",
        out.stderr
    );
}

#[test]
fn options_come_from_the_environment_too() {
    let server = TestServer::start();
    let run = Run::new();
    let urls: Vec<String> = (0..6)
        .map(|n| server.url(&format!("/slow-gen/100/{n}")))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let out = run
        .command(&[&list])
        .env("SCRIPTSCRAPE_OUTPUT", "from-env.csv")
        .env("SCRIPTSCRAPE_PER_HOST", "1")
        .env("SCRIPTSCRAPE_QUIET", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "--quiet from the environment");
    assert_eq!(server.max_in_flight(), 1, "--per-host from the environment");
    let table = Table::read(&run.path("from-env.csv"));
    assert_eq!(table.column("page_url").len(), {
        (0..6)
            .map(|n| crate::support::generated_scripts(n).len())
            .sum::<usize>()
    });
    // The command line wins over the environment.
    let out = run
        .command(&[&list, "-o", "from-cli.csv"])
        .env("SCRIPTSCRAPE_OUTPUT", "not-this.csv")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(run.path("from-cli.csv").exists() && !run.path("not-this.csv").exists());
    // And --help names the variables.
    let help = run.run(&["--help"], None);
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("[env: SCRIPTSCRAPE_PER_HOST="), "{help}");
}

#[test]
fn man_page_and_completions_come_from_the_binary() {
    let run = Run::new();
    let man = run.run(&["--generate", "man"], None);
    assert_eq!(man.code, 0, "{}", man.stderr);
    let man = String::from_utf8(man.stdout).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH scriptscrape"),
        "{man}"
    );
    assert!(
        man.contains("max\\-failures"),
        "every option is in the man page"
    );
    for (shell, marker) in [
        ("complete-bash", "_scriptscrape()"),
        ("complete-zsh", "#compdef scriptscrape"),
        ("complete-fish", "complete -c scriptscrape"),
    ] {
        let out = run.run(&["--generate", shell], None);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(text.contains("wait-lock"), "{shell}");
    }
    let version = run.run(&["--version"], None);
    assert_eq!(version.code, 0);
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        concat!("scriptscrape ", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn json_lines_keep_types_and_absence() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/fixtures/formula.html"),
            "ftp://example.com/".to_owned(),
        ],
    );
    let out = run.run(
        &[
            &list, "--format", "jsonl", "-o", "s.jsonl", "--pages", "p.jsonl",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.path(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let scripts = read("s.jsonl");
    assert_eq!(scripts.len(), 4);
    let first = &scripts[0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["inline"], false);
    assert_eq!(first["src_resolved"], true);
    assert_eq!(first["inline_bytes"], serde_json::Value::Null);
    assert_eq!(first["crossorigin"], serde_json::Value::Null);
    let inline = &scripts[1];
    assert_eq!(inline["inline"], true);
    assert_eq!(inline["inline_bytes"], "var a = 1;".len());
    assert_eq!(inline["src"], serde_json::Value::Null);
    assert_eq!(inline["src_resolved"], serde_json::Value::Null);
    // A bare attribute is present with an empty value: "" rather than null.
    assert_eq!(scripts[3]["crossorigin"], "");
    assert_eq!(scripts[3]["type"], "module");
    let pages = read("p.jsonl");
    assert_eq!(pages.len(), 2);
    let ok = pages.iter().find(|p| p["error"].is_null()).unwrap();
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["scripts"], 4);
    assert_eq!(ok["attempts"], 1);
    let bad = pages.iter().find(|p| p["error"] == "invalid_url").unwrap();
    assert_eq!(bad["status"], serde_json::Value::Null);
    assert_eq!(bad["final_url"], serde_json::Value::Null);
    assert_eq!(bad["attempts"], 0);
}

#[test]
fn spreadsheet_safe_neutralises_formula_cells_only_when_asked() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/fixtures/formula.html")]);
    let plain = run.run(&[&list, "-o", "plain.csv"], None);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let safe = run.run(&[&list, "-o", "safe.csv", "--spreadsheet-safe"], None);
    assert_eq!(safe.code, 0, "{}", safe.stderr);
    let (plain, safe) = (
        Table::read(&run.path("plain.csv")),
        Table::read(&run.path("safe.csv")),
    );
    assert_eq!(
        plain.column("type"),
        [
            "=HYPERLINK(\"http://evil.example/\",\"x\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "module"
        ]
    );
    assert_eq!(
        safe.column("type"),
        [
            "'=HYPERLINK(\"http://evil.example/\",\"x\")",
            "'+cmd|' /C calc'!A0",
            "'-2+3",
            "module"
        ]
    );
    assert_eq!(safe.get(1, "integrity"), "'@SUM(1+1)");
    assert_eq!(safe.get(2, "crossorigin"), "'\ttabbed");
    // Everything else is unchanged.
    assert_eq!(safe.column("src"), plain.column("src"));
    assert_eq!(safe.column("inline_sha256"), plain.column("inline_sha256"));
}

#[test]
fn a_bad_verbosity_in_the_environment_is_said_in_words() {
    let run = Run::new();
    let out = run
        .command(&["/dev/null", "-o", "/dev/null"])
        .env("SCRIPTSCRAPE_VERBOSE", "abc")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SCRIPTSCRAPE_VERBOSE=2 is -vv"), "{stderr}");
    assert!(!stderr.contains("invalid digit"), "{stderr}");
}

/// No file the run reads (a list, a cookie file, the configuration file)
/// and no other output is ever the file an output, its `.part`, `--stats`
/// or `--cookie-jar` would replace; each case is refused before anything
/// is fetched, and every file is left as it was.
#[test]
fn no_output_replaces_a_file_the_run_reads_or_another_output() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    let keep = |name: &str, text: &str| std::fs::write(run.path(name), text).unwrap();
    keep("c.toml", "concurrency = 2\n");
    keep(
        "ck.txt",
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tx\n",
    );
    keep("out.csv", "old scripts\n");
    std::os::unix::fs::symlink(run.path("target.csv"), run.path("link.csv")).unwrap();
    for (args, words) in [
        (
            vec!["-o", "a.csv", "--cookie-jar", "urls.txt"],
            "--cookie-jar urls.txt is also an input",
        ),
        (
            vec!["-o", "out.csv", "--cookie-jar", "out.csv"],
            "-o out.csv and --cookie-jar out.csv are the same file",
        ),
        (
            vec![
                "-o",
                "a.csv",
                "--stats",
                "st.json",
                "--cookie-jar",
                "st.json",
            ],
            "--stats st.json and --cookie-jar st.json are the same file",
        ),
        (
            vec!["--config", "c.toml", "-o", "c.toml"],
            "-o c.toml is also the configuration file",
        ),
        (
            vec!["-b", "ck.txt", "-o", "ck.txt"],
            "-o ck.txt is also the cookie file of -b ck.txt",
        ),
        (
            vec!["-o", "s3.csv", "--pages", "s3.csv.part"],
            "-o s3.csv (its s3.csv.part) and --pages s3.csv.part are the same file",
        ),
        (
            vec!["-o", "target.csv", "--pages", "link.csv"],
            "-o target.csv and --pages link.csv are the same file",
        ),
    ] {
        let mut all = vec![list.as_str()];
        all.extend(args);
        let out = run.run(&all, None);
        assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
        assert!(out.stderr.contains(words), "{all:?}: {}", out.stderr);
    }
    assert_eq!(server.hits("/gen/1"), 0);
    assert_eq!(
        std::fs::read_to_string(run.path("c.toml")).unwrap(),
        "concurrency = 2\n"
    );
    assert!(
        std::fs::read_to_string(run.path("ck.txt"))
            .unwrap()
            .contains("\tsid\tx")
    );
    assert_eq!(
        std::fs::read_to_string(run.path("out.csv")).unwrap(),
        "old scripts\n"
    );
    assert!(
        std::fs::read_to_string(run.path("urls.txt"))
            .unwrap()
            .contains("/gen/1")
    );
    assert!(!run.path("target.csv").exists());
    // curl's idiom stays allowed: read a jar and write it back.
    let out = run.run(
        &[
            &list,
            "-q",
            "-o",
            "a.csv",
            "-b",
            "ck.txt",
            "--cookie-jar",
            "ck.txt",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Standard output reached by a name is standard output: refused beside
/// another output there, where rows would interleave or a file be renamed
/// from under the other.
#[test]
fn standard_output_by_name_is_not_shared_with_another_output() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    for args in [
        vec!["-o", "/dev/stdout", "--pages", "-"],
        vec!["-o", "/dev/stdout", "--stats", "-"],
        vec!["--pages", "/dev/stdout"],
    ] {
        let mut all = vec![list.as_str()];
        all.extend(&args);
        // Standard output a file, as a shell's redirect makes it.
        let out = run
            .command(&all)
            .stdout(std::fs::File::create(run.path("both.txt")).unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is standard output, where"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(server.hits("/gen/1"), 0);
}
