//! Script inventory: the columns that describe where a script comes from
//! and sits, and `scriptscrape diff` between two runs.

use crate::support::{Run, TestServer};

const CHECKOUT: &str = r#"<!doctype html><html><head>
<script src="/js/app.js" nonce="n0nc3"></script>
<script src="https://cdn.payments.example/pay.js" integrity="sha384-abc" crossorigin="anonymous"></script>
</head><body>
<script>window.cart = 1;</script>
<script src="https://www.127.0.0.1.nip.invalid/x.js" async></script>
</body></html>"#;

#[test]
fn script_rows_say_host_third_party_position_and_nonce() {
    let server = TestServer::start();
    server.set_page("checkout", CHECKOUT);
    let run = Run::new();
    let page = server.url("/page/checkout");
    let input = run.urls("urls.txt", &[&page]);
    for (format, file) in [("csv", "s.csv"), ("jsonl", "s.jsonl")] {
        let out = run.run(&[&input, "--format", format, "-o", file], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let table = crate::support::Table::read(&run.path("s.csv"));
    let rows: Vec<[&str; 5]> = (0..table.rows.len())
        .map(|i| {
            [
                table.get(i, "src"),
                table.get(i, "host"),
                table.get(i, "third_party"),
                table.get(i, "position"),
                table.get(i, "nonce_present"),
            ]
        })
        .collect();
    let app = server.url("/js/app.js");
    assert_eq!(
        rows,
        [
            [app.as_str(), "127.0.0.1", "false", "head", "true"],
            [
                "https://cdn.payments.example/pay.js",
                "cdn.payments.example",
                "true",
                "head",
                "false"
            ],
            ["", "", "false", "body", "false"],
            [
                "https://www.127.0.0.1.nip.invalid/x.js",
                "www.127.0.0.1.nip.invalid",
                "true",
                "body",
                "false"
            ],
        ]
    );
    assert!(
        !std::fs::read_to_string(run.path("s.csv"))
            .unwrap()
            .contains("n0nc3")
    );

    // JSON Lines carries the same, typed.
    let text = std::fs::read_to_string(run.path("s.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["host"], "127.0.0.1");
    assert_eq!(first["third_party"], false);
    assert_eq!(first["position"], "head");
    assert_eq!(first["nonce_present"], true);
    let third: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    assert_eq!(third["host"], serde_json::Value::Null);
}

const HEADER: &str = "page_url,final_url,index,src,inline,type,async,defer,nomodule,integrity,crossorigin,inline_bytes,inline_sha256,src_resolved,svg";

/// A scripts output row: page, index, src (empty: inline), then the
/// attributes that matter to the comparison.
fn row(page: &str, index: u32, src: &str, attrs: &str, hash: &str) -> String {
    let page = format!("https://shop.example{page}");
    let inline = src.is_empty();
    let (is_async, integrity, type_attr) = match attrs {
        "async" => ("true", "", ""),
        "sri" => ("false", "sha384-one", ""),
        "sri2" => ("false", "sha384-two", ""),
        "module" => ("false", "", "module"),
        _ => ("false", "", ""),
    };
    let bytes = if inline { "10" } else { "" };
    format!(
        "{page},{page},{index},{src},{inline},{type_attr},{is_async},false,false,{integrity},,{bytes},{hash},{},false",
        if inline { "" } else { "true" }
    )
}

fn write_csv(run: &Run, name: &str, rows: &[String]) {
    let text = std::iter::once(HEADER.to_owned())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(run.path(name), text + "\n").unwrap();
}

/// (page path, change, src or hash) of each row of a changes CSV.
fn changes(run: &Run, name: &str) -> Vec<(String, String, String)> {
    let table = crate::support::Table::read(&run.path(name));
    (0..table.rows.len())
        .map(|i| {
            let page = table.get(i, "page_url").replace("https://shop.example", "");
            let what = match table.get(i, "src") {
                "" => table.get(i, "inline_sha256"),
                src => src,
            };
            (page, table.get(i, "change").to_owned(), what.to_owned())
        })
        .collect()
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn diff_names_each_kind_of_change() {
    let run = Run::new();
    let cdn = "https://cdn.pay.example/pay.js";
    write_csv(
        &run,
        "old.csv",
        &[
            row("/a", 0, "", "", "sha256-same"),
            row("/a", 1, "", "", "sha256-before"),
            row("/a", 2, cdn, "sri", ""),
            row("/a", 3, "https://shop.example/app.js?v=1", "", ""),
            row("/a", 4, "https://shop.example/old.js", "", ""),
            row("/a", 5, "https://cdn.example/x.js", "sri", ""),
            row("/a", 6, "https://cdn.example/y.js", "", ""),
            row("/gone", 0, "https://shop.example/g.js", "", ""),
            row("/failed", 0, "https://shop.example/f.js", "", ""),
            row("/emptied", 0, "https://shop.example/e.js", "", ""),
        ],
    );
    write_csv(
        &run,
        "new.csv",
        &[
            row("/a", 0, "", "", "sha256-same"),
            row("/a", 1, "", "", "sha256-after"),
            row("/a", 2, cdn, "", ""),
            row("/a", 3, "https://shop.example/app.js?v=2", "", ""),
            row("/a", 4, "https://cdn.example/x.js", "sri2", ""),
            row("/a", 5, "https://cdn.example/y.js", "async", ""),
            row("/a", 6, "", "", "sha256-new"),
            row("/a", 7, "https://skimmer.example/s.js", "", ""),
            row("/added", 0, "https://shop.example/n.js", "module", ""),
        ],
    );
    let pages = |name: &str, failed: &str| {
        let mut text = "page_url,error,error_detail\n".to_owned();
        for p in ["/a", "/gone", "/failed", "/emptied", "/added"] {
            if (name == "old-pages.csv" && p == "/added")
                || (name == "new-pages.csv" && p == "/gone")
            {
                continue;
            }
            let error = if p == failed {
                "timeout,no response in 30 s"
            } else {
                ","
            };
            text.push_str(&format!("https://shop.example{p},{error}\n"));
        }
        std::fs::write(run.path(name), text).unwrap();
    };
    pages("old-pages.csv", "");
    pages("new-pages.csv", "/failed");
    let reports = [
        "--old-pages",
        "old-pages.csv",
        "--new-pages",
        "new-pages.csv",
    ];

    let out = run.run(
        &[&["diff", "old.csv", "new.csv", "-o", "c.csv"], &reports[..]].concat(),
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        changes(&run, "c.csv"),
        owned(&[
            ("/a", "inline_changed", "sha256-after"),
            ("/a", "integrity_removed", cdn),
            ("/a", "removed", "https://shop.example/app.js?v=1"),
            ("/a", "added", "https://shop.example/app.js?v=2"),
            ("/a", "removed", "https://shop.example/old.js"),
            ("/a", "integrity_changed", "https://cdn.example/x.js"),
            ("/a", "attribute_changed", "https://cdn.example/y.js"),
            ("/a", "added", "sha256-new"),
            ("/a", "added", "https://skimmer.example/s.js"),
            ("/added", "page_added", ""),
            // Fetched with no scripts: each one is gone, the page is not.
            ("/emptied", "removed", "https://shop.example/e.js"),
            // Failed in the new run: not compared, never all removed.
            ("/failed", "unknown", ""),
            ("/gone", "page_gone", ""),
        ])
    );
    let table = crate::support::Table::read(&run.path("c.csv"));
    assert_eq!(table.get(0, "detail"), "was sha256-before (10 → 10 bytes)");
    assert_eq!(table.get(6, "detail"), "async: false → true");
    assert!(
        table.get(11, "detail").contains("timeout"),
        "{}",
        table.get(11, "detail")
    );
    assert!(
        out.stderr.contains("13 changes on 5 of 5 pages"),
        "{}",
        out.stderr
    );

    // Filters: third-party only, one page, rotating query ignored, and an
    // allow list that flags the skimmer.
    std::fs::write(
        run.path("allow.txt"),
        "shop.example\ncdn.example\nsha256-new\n",
    )
    .unwrap();
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "new.csv",
            "-o",
            "f.csv",
            "--page",
            "/a$",
            "--ignore-query",
            "--allow",
            "allow.txt",
            "--only-third-party",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        changes(&run, "f.csv"),
        owned(&[
            ("/a", "integrity_removed", cdn),
            ("/a", "integrity_changed", "https://cdn.example/x.js"),
            ("/a", "attribute_changed", "https://cdn.example/y.js"),
            ("/a", "unapproved", "https://skimmer.example/s.js"),
        ])
    );
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "new.csv",
            "-o",
            "g.csv",
            "--page",
            "/a$",
            "--ignore-src",
            r"\?v=\d+",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        !changes(&run, "g.csv")
            .iter()
            .any(|c| c.2.contains("app.js"))
    );

    // The same run twice: nothing to report.
    let out = run.run(&["diff", "new.csv", "new.csv", "-o", "n.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(changes(&run, "n.csv"), vec![]);
}

#[test]
fn diff_reads_json_lines_and_says_why_it_cannot_compare() {
    let run = Run::new();
    write_csv(
        &run,
        "old.csv",
        &[row("/a", 0, "https://shop.example/a.js", "", "")],
    );
    let jsonl = r#"{"page_url":"https://shop.example/a","final_url":"https://shop.example/a","index":0,"src":"https://shop.example/a.js","inline":false,"type":null,"async":false,"defer":true,"nomodule":false,"integrity":null,"crossorigin":null,"inline_bytes":null,"inline_sha256":null}"#;
    std::fs::write(run.path("new.jsonl"), format!("{jsonl}\n")).unwrap();
    let out = run.run(&["diff", "old.csv", "new.jsonl", "--format", "jsonl"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let change: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(change["change"], "attribute_changed");
    assert_eq!(change["detail"], "defer: false → true");
    assert_eq!(change["inline_sha256"], serde_json::Value::Null);

    let out = run.run(&["diff", "old.csv", "new.jsonl", "--format", "text"], None);
    assert_eq!(out.code, 1);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("1 change on 1 of 1 page ("), "{stdout}");
    assert!(stdout.contains("attribute_changed  1"), "{stdout}");

    // Could not compare: exit 2 and one line.
    std::fs::write(
        run.path("pages.csv"),
        "page_url,error\nhttps://shop.example/a,\n",
    )
    .unwrap();
    for (args, says) in [
        (
            vec!["diff", "old.csv", "missing.csv"],
            "cannot read missing.csv",
        ),
        (vec!["diff", "old.csv", "pages.csv"], "not a scripts output"),
        (
            vec!["diff", "old.csv", "new.jsonl", "--page", "("],
            "invalid --page",
        ),
        (
            vec!["diff", "old.csv", "new.jsonl", "--allow", "nope.txt"],
            "cannot read --allow",
        ),
        (
            vec!["diff", "-", "old.csv", "--new-pages", "-"],
            "can be read only once",
        ),
        (
            vec!["diff", "old.csv", "new.jsonl", "-o", "new.jsonl"],
            "is one of the inputs",
        ),
        // clap's own errors, on one line but whole.
        (vec!["diff", "old.csv"], "not provided: <NEW>"),
        (
            vec!["diff", "old.csv", "new.jsonl", "--format"],
            "[possible values: csv, jsonl, text]",
        ),
        // Another spelling of the same file.
        (
            vec!["diff", "old.csv", "new.jsonl", "-o", "./new.jsonl"],
            "is one of the inputs",
        ),
        (
            vec![
                "diff",
                "old.csv",
                "new.jsonl",
                "--allow",
                "pages.csv",
                "-o",
                "./pages.csv",
            ],
            "is one of the inputs",
        ),
        (
            vec!["-q", "diff", "old.csv", "new.jsonl"],
            "give its options after it",
        ),
    ] {
        let out = run.run(&args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn scrape_change_the_page_scrape_again_and_diff() {
    let server = TestServer::start();
    server.set_page("checkout", CHECKOUT);
    server.set_page("home", "<script src=/js/app.js></script>");
    let run = Run::new();
    let input = run.urls(
        "urls.txt",
        &[server.url("/page/checkout"), server.url("/page/home")],
    );
    let scrape = |day: &str| {
        let out = run.run(
            &[
                &input,
                "-o",
                &format!("{day}.csv"),
                "--pages",
                &format!("{day}-pages.csv"),
            ],
            None,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    scrape("monday");
    // A skimmer is injected, and the payment script loses its integrity.
    let changed = CHECKOUT.replace(r#" integrity="sha384-abc""#, "").replace(
        "</body>",
        r#"<script src="https://skim.example/s.js"></script></body>"#,
    );
    server.set_page("checkout", &changed);
    scrape("tuesday");
    let out = run.run(
        &[
            "diff",
            "monday.csv",
            "tuesday.csv",
            "--old-pages",
            "monday-pages.csv",
            "--new-pages",
            "tuesday-pages.csv",
            "-o",
            "changes.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let checkout = server.url("/page/checkout");
    let table = crate::support::Table::read(&run.path("changes.csv"));
    let rows: Vec<[&str; 3]> = (0..table.rows.len())
        .map(|i| {
            [
                table.get(i, "page_url"),
                table.get(i, "change"),
                table.get(i, "src"),
            ]
        })
        .collect();
    assert_eq!(
        rows,
        [
            [
                checkout.as_str(),
                "integrity_removed",
                "https://cdn.payments.example/pay.js"
            ],
            [checkout.as_str(), "added", "https://skim.example/s.js"],
        ]
    );
    assert_eq!(
        table.get(1, "detail"),
        "third-party (skim.example), no integrity"
    );
}

#[cfg(unix)]
#[test]
fn diff_writes_through_a_symlink_and_reads_spreadsheet_safe_cells() {
    let run = Run::new();
    write_csv(&run, "old.csv", &[row("/a", 0, "", "module", "sha256-x")]);
    // The same script, written by a --spreadsheet-safe run.
    let safe = std::fs::read_to_string(run.path("old.csv"))
        .unwrap()
        .replace(",module,", ",'-module,");
    let plain = safe.replace(",'-module,", ",-module,");
    std::fs::write(run.path("safe.csv"), safe).unwrap();
    std::fs::write(run.path("plain.csv"), plain).unwrap();
    std::fs::create_dir(run.path("real")).unwrap();
    std::os::unix::fs::symlink(run.path("real/changes.csv"), run.path("link.csv")).unwrap();
    let out = run.run(&["diff", "plain.csv", "safe.csv", "-o", "link.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        std::fs::symlink_metadata(run.path("link.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(run.path("real/changes.csv")).unwrap(),
        "page_url,change,src,inline_sha256,detail\n"
    );
}

/// A page report with the `scripts` column: (page path, error or "", scripts).
fn write_report(run: &Run, name: &str, pages: &[(&str, &str, u32)]) {
    let mut text = "page_url,error,scripts,error_detail\n".to_owned();
    for (page, error, scripts) in pages {
        text.push_str(&format!(
            "https://shop.example{page},{error},{scripts},{}\n",
            if error.is_empty() { "" } else { "it failed" }
        ));
    }
    std::fs::write(run.path(name), text).unwrap();
}

#[test]
fn diff_checks_each_scripts_output_against_its_page_report() {
    let run = Run::new();
    write_csv(
        &run,
        "old.csv",
        &[
            row("/a", 0, "https://shop.example/a.js", "", ""),
            row("/a", 1, "https://shop.example/b.js", "", ""),
        ],
    );
    write_report(&run, "right.csv", &[("/a", "", 2), ("/b", "", 0)]);
    // Cut short: the report counts a row the scripts file lacks.
    write_report(&run, "short.csv", &[("/a", "", 3)]);
    // Of another run: the report says the page failed.
    write_report(&run, "failed.csv", &[("/a", "timeout", 0)]);
    std::fs::write(run.path("empty.jsonl"), "").unwrap();

    let out = run.run(
        &[
            "diff",
            "old.csv",
            "old.csv",
            "--old-pages",
            "right.csv",
            "--new-pages",
            "right.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);

    for (report, says) in [
        (
            "short.csv",
            "https://shop.example/a has 2 script rows, the report counts 3",
        ),
        ("failed.csv", "the report says failed"),
    ] {
        let out = run.run(&["diff", "old.csv", "old.csv", "--new-pages", report], None);
        assert_eq!(out.code, 2, "{report}: {}", out.stderr);
        assert!(out.stderr.contains("disagree"), "{}", out.stderr);
        assert!(out.stderr.contains(says), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }

    // An empty file is a run with no scripts only when its report agrees.
    write_report(&run, "none.csv", &[("/a", "", 0), ("/b", "", 0)]);
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "empty.jsonl",
            "--old-pages",
            "right.csv",
            "--new-pages",
            "none.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "empty.jsonl",
            "--old-pages",
            "right.csv",
            "--new-pages",
            "right.csv",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("has 0 script rows"), "{}", out.stderr);
    // Without the report: compared, with a warning.
    let out = run.run(&["diff", "old.csv", "empty.jsonl", "-o", "c.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: empty.jsonl is empty: read as a run that found no scripts"),
        "{}",
        out.stderr
    );
    assert_eq!(changes(&run, "c.csv"), owned(&[("/a", "page_gone", "")]));
}

#[test]
fn diff_warns_of_half_given_reports_and_empty_page_filters() {
    let run = Run::new();
    write_csv(
        &run,
        "old.csv",
        &[row("/a", 0, "https://shop.example/a.js", "", "")],
    );
    write_report(&run, "pages.csv", &[("/a", "", 1)]);
    let out = run.run(
        &["diff", "old.csv", "old.csv", "--old-pages", "pages.csv"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: only one run's page report given"),
        "{}",
        out.stderr
    );
    let out = run.run(&["diff", "old.csv", "old.csv", "--page", "/checkout"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: --page /checkout matches none of the 1 pages"),
        "{}",
        out.stderr
    );
    // The text format carries its warnings into the mail body.
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "old.csv",
            "--page",
            "/checkout",
            "--format",
            "text",
        ],
        None,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("warning: --page /checkout"), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = run.run(&["diff", "-q", "old.csv", "old.csv", "--page", "/x"], None);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[cfg(unix)]
#[test]
fn diff_fails_on_chosen_kinds_and_writes_spreadsheet_safe_cells() {
    use std::os::unix::fs::PermissionsExt as _;
    let run = Run::new();
    write_csv(
        &run,
        "old.csv",
        &[row("/a", 0, "https://shop.example/a.js", "", "")],
    );
    write_csv(
        &run,
        "new.csv",
        &[
            row("/a", 0, "https://shop.example/a.js", "", ""),
            row("/a", 1, "=HYPERLINK(\"http://x.example\")", "", ""),
        ],
    );
    std::fs::write(run.path("c.csv"), "").unwrap();
    std::fs::set_permissions(run.path("c.csv"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "new.csv",
            "-o",
            "c.csv",
            "--fail-on",
            "removed,unapproved",
            "--spreadsheet-safe",
        ],
        None,
    );
    // Written, but not a kind that fails the run.
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = crate::support::Table::read(&run.path("c.csv"));
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.get(0, "change"), "added");
    assert_eq!(table.get(0, "src"), "'=HYPERLINK(\"http://x.example\")");
    // The file replaced keeps its mode.
    let mode = std::fs::metadata(run.path("c.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);

    // An allow list saved with a byte-order mark still allows its first
    // entry; standard input in, standard output out.
    std::fs::write(run.path("allow.txt"), "\u{feff}shop.example\n").unwrap();
    let out = run.run(
        &["diff", "-", "new.csv", "--allow", "allow.txt", "-o", "-"],
        Some(&format!(
            "{HEADER}\n{}\n",
            row("/a", 0, "https://shop.example/old.js", "", "")
        )),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(",added,https://shop.example/a.js,"),
        "{stdout}"
    );
    assert!(stdout.contains(",unapproved,\"=HYPERLINK"), "{stdout}");

    let out = run.run(&["diff", "old.csv", "new.csv", "--fail-on", "added"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = run.run(&["diff", "old.csv", "new.csv", "--fail-on", "nope"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("not a kind of change"),
        "{}",
        out.stderr
    );
}

#[test]
fn diff_leaves_out_pages_a_crawl_passed_over_in_both_runs() {
    let run = Run::new();
    let rows = [row("/a", 0, "https://shop.example/a.js", "", "")];
    write_csv(&run, "old.csv", &rows);
    write_csv(&run, "new.csv", &rows);
    // (page, error, referrer): a PDF the crawl finds each night, a page past
    // --max-pages in one run and absent from the other, and one that was
    // inventoried before and passed over now.
    let report = |name: &str, pages: &[(&str, &str, &str)]| {
        let mut text = "page_url,error,scripts,error_detail,referrer\n".to_owned();
        for (page, error, referrer) in pages {
            let scripts = u32::from(*page == "/a");
            let referrer = if referrer.is_empty() {
                String::new()
            } else {
                format!("https://shop.example{referrer}")
            };
            text.push_str(&format!(
                "https://shop.example{page},{error},{scripts},,{referrer}\n"
            ));
        }
        std::fs::write(run.path(name), text).unwrap();
    };
    report(
        "old-pages.csv",
        &[
            ("/a", "", ""),
            ("/doc.pdf", "not_html", "/a"),
            ("/late", "max_pages", "/a"),
            ("/b", "", "/a"),
        ],
    );
    report(
        "new-pages.csv",
        &[
            ("/a", "", ""),
            ("/doc.pdf", "not_html", "/a"),
            ("/b", "max_pages", "/a"),
            // Listed, not found: a failure, not passed over.
            ("/listed.pdf", "not_html", ""),
        ],
    );
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "new.csv",
            "--old-pages",
            "old-pages.csv",
            "--new-pages",
            "new-pages.csv",
            "-o",
            "c.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        changes(&run, "c.csv"),
        owned(&[("/b", "unknown", ""), ("/listed.pdf", "unknown", "")])
    );
    let table = crate::support::Table::read(&run.path("c.csv"));
    assert_eq!(
        table.get(0, "detail"),
        "passed over in the new run: max_pages"
    );
}

#[test]
fn diff_text_escapes_control_and_bidi_characters_from_pages() {
    let server = TestServer::start();
    server.set_page("p", r#"<script type="module" src="/a.js"></script>"#);
    let run = Run::new();
    let input = run.urls("urls.txt", &[server.url("/page/p")]);
    let scrape = |day: &str| {
        let out = run.run(&[&input, "-o", &format!("{day}.csv")], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    scrape("monday");
    // A type that forges a summary line, talks to the terminal and turns
    // text around with a bidi override (a C1 control cannot be a character
    // reference: &#x9b; is read as windows-1252's `›`).
    let hostile = "&#10;&#10;0 changes on 2 pages&#27;[2J&#27;]0;pwn&#7;\u{9b}&#13;&#x202e;txt.exe";
    server.set_page(
        "p",
        &format!(r#"<script type="{hostile}" src="/a.js"></script>"#),
    );
    scrape("tuesday");
    let diff = |format: &str| {
        let out = run.run(
            &["diff", "monday.csv", "tuesday.csv", "--format", format],
            None,
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        String::from_utf8(out.stdout).unwrap()
    };

    let text = diff("text");
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202e}'] {
        assert!(!text.contains(bad), "{bad:?} in {text:?}");
    }
    let lines: Vec<&str> = text.lines().collect();
    // The summary, a count, a blank line, the change.
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("1 change on 1 of 1 page"), "{text}");
    assert!(
        lines[3].ends_with(
            r"type: module → \n\n0 changes on 2 pages\x1b[2J\x1b]0;pwn\x07\u{9b}\r\u{202e}txt.exe"
        ),
        "{text}"
    );

    // Machine formats keep the values as they were: CSV quotes them, JSON
    // escapes them.
    let raw_type = "\n\n0 changes on 2 pages\u{1b}[2J\u{1b}]0;pwn\u{7}\u{9b}\r\u{202e}txt.exe";
    let jsonl = diff("jsonl");
    assert_eq!(jsonl.lines().count(), 1, "{jsonl}");
    assert!(!jsonl.contains('\u{1b}'), "{jsonl}");
    let details: Vec<String> = jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["detail"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(details.iter().any(|d| d.contains(raw_type)), "{details:?}");
    std::fs::write(run.path("changes.csv"), diff("csv")).unwrap();
    let table = crate::support::Table::read(&run.path("changes.csv"));
    assert_eq!(table.rows.len(), 1);
    assert!(
        table.get(0, "detail").ends_with(raw_type),
        "{:?}",
        table.rows
    );
}

/// The columns a `--fetch-scripts` run adds to a scripts output (issue 16).
const CONTENT_COLUMNS: &str =
    "integrity_ok,csp_allowed,content_status,content_error,content_bytes,content_sha384";

/// A well-formed `sha384-…` whose base64 is `c` repeated.
fn sha(c: char) -> String {
    format!("sha384-{}", c.to_string().repeat(64))
}

/// A scripts output with the content columns: each row as [`row`] makes
/// it, then `integrity_ok,csp_allowed,content_status,content_error,
/// content_bytes,content_sha384`.
fn write_csv_with_content(run: &Run, name: &str, rows: &[(String, String)]) {
    let text: String = std::iter::once(format!("{HEADER},{CONTENT_COLUMNS}\n"))
        .chain(
            rows.iter()
                .map(|(row, content)| format!("{row},{content}\n")),
        )
        .collect();
    std::fs::write(run.path(name), text).unwrap();
}

/// The content cells of a script fetched whole: (integrity_ok, bytes,
/// hash).
fn content(integrity_ok: &str, bytes: u32, hash: &str) -> String {
    format!("{integrity_ok},,200,,{bytes},{hash}")
}

/// A page report with the csp column: (page path, policy).
fn write_csp_report(run: &Run, name: &str, pages: &[(&str, &str, u32)]) {
    let mut csv = csv::Writer::from_path(run.path(name)).unwrap();
    csv.write_record(["page_url", "error", "scripts", "error_detail", "csp"])
        .unwrap();
    for (page, policy, scripts) in pages {
        csv.write_record([
            &format!("https://shop.example{page}"),
            "",
            &scripts.to_string(),
            "",
            policy,
        ])
        .unwrap();
    }
    csv.flush().unwrap();
}

#[test]
fn diff_sees_content_integrity_and_policy_changes_behind_the_same_src() {
    let run = Run::new();
    let polyfill = "https://cdn.polyfill.example/v3/polyfill.min.js";
    let lib = "https://cdn.example/lib.js";
    let flaky = "https://cdn.example/flaky.js";
    let same = "https://shop.example/same.js";
    write_csv_with_content(
        &run,
        "old.csv",
        &[
            (row("/a", 0, polyfill, "", ""), content("", 100, &sha('A'))),
            (row("/a", 1, lib, "sri", ""), content("true", 50, &sha('C'))),
            (row("/a", 2, flaky, "", ""), content("", 10, &sha('E'))),
            (row("/a", 3, "", "", "sha256-same"), ",,,,,".to_owned()),
            (row("/a", 4, same, "", ""), content("", 5, &sha('F'))),
            (row("/b", 0, same, "", ""), content("", 5, &sha('F'))),
        ],
    );
    write_csv_with_content(
        &run,
        "new.csv",
        &[
            // The code behind the src changed: the polyfill.io case.
            (row("/a", 0, polyfill, "", ""), content("", 120, &sha('B'))),
            // Changed under its integrity attribute: browsers refuse it.
            (
                row("/a", 1, lib, "sri", ""),
                content("false", 60, &sha('D')),
            ),
            // Not fetched this time.
            (row("/a", 2, flaky, "", ""), ",,,timeout,,".to_owned()),
            (row("/a", 3, "", "", "sha256-same"), ",,,,,".to_owned()),
            (row("/a", 4, same, "", ""), content("", 5, &sha('F'))),
            (row("/b", 0, same, "", ""), content("", 5, &sha('F'))),
        ],
    );
    let policy = "default-src 'self'; script-src 'self' https://cdn.example";
    write_csp_report(
        &run,
        "old-pages.csv",
        &[
            ("/a", policy, 5),
            ("/b", &format!("{policy}, object-src 'none'"), 1),
        ],
    );
    write_csp_report(
        &run,
        "new-pages.csv",
        &[
            (
                "/a",
                "default-src 'self'; script-src 'self' https://cdn.example https://evil.example",
                5,
            ),
            // The same policies, spelt and ordered otherwise.
            (
                "/b",
                "OBJECT-SRC 'none', script-src https://CDN.example 'self' ;default-src 'self'",
                1,
            ),
        ],
    );
    let args = [
        "diff",
        "old.csv",
        "new.csv",
        "--old-pages",
        "old-pages.csv",
        "--new-pages",
        "new-pages.csv",
    ];
    let out = run.run(&[&args[..], &["-o", "c.csv"]].concat(), None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(
        changes(&run, "c.csv"),
        owned(&[
            ("/a", "csp_changed", ""),
            ("/a", "content_changed", polyfill),
            ("/a", "integrity_broken", lib),
            ("/a", "unknown", flaky),
        ])
    );
    let table = crate::support::Table::read(&run.path("c.csv"));
    assert_eq!(
        table.column("detail"),
        [
            "script-src: 'self' https://cdn.example → 'self' https://cdn.example https://evil.example",
            &format!("{} (100 bytes) → {} (120 bytes)", sha('A'), sha('B')),
            &format!(
                "sha384-one no longer matches the content; content {} (50 bytes) → {} (60 bytes)",
                sha('C'),
                sha('D')
            ),
            "no content in the new run: timeout",
        ]
    );

    // The text summary counts the new kinds, and --fail-on takes them.
    let out = run.run(&[&args[..], &["--format", "text"]].concat(), None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "  content_changed    1",
        "  integrity_broken   1",
        "  csp_changed        1",
        "  unknown            1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    assert!(
        text.contains(&format!(
            "integrity_broken   https://shop.example/a  {lib}  sha384-one"
        )),
        "{text}"
    );
    for (kinds, code) in [
        ("content_changed", 1),
        ("integrity_broken", 1),
        ("csp_changed", 1),
        ("removed,added,integrity_changed", 0),
    ] {
        let out = run.run(
            &[&args[..], &["--fail-on", kinds, "-o", "f.csv"]].concat(),
            None,
        );
        assert_eq!(out.code, code, "{kinds}: {}", out.stderr);
    }

    // JSON Lines, typed: numbers and booleans read as their CSV text.
    let json = |index: u32, src: &str, ok: serde_json::Value, bytes: u32, hash: &str| {
        serde_json::json!({
            "page_url": "https://shop.example/a", "index": index, "src": src,
            "inline": false, "inline_sha256": null, "integrity": if ok.is_null() { serde_json::Value::Null } else { "sha384-one".into() },
            "integrity_ok": ok, "csp_allowed": true, "content_status": 200,
            "content_error": null, "content_bytes": bytes, "content_sha384": hash,
        })
        .to_string()
    };
    std::fs::write(
        run.path("new.jsonl"),
        [
            json(0, polyfill, serde_json::Value::Null, 120, &sha('B')),
            json(1, lib, false.into(), 50, &sha('C')),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "new.jsonl",
            "--page",
            "/a$",
            "--format",
            "jsonl",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r["change"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "content_changed",
            "integrity_broken",
            "removed",
            "removed",
            "removed"
        ]
    );
    assert_eq!(
        rows[1]["detail"],
        "sha384-one no longer matches the content"
    );
}

#[test]
fn diff_of_outputs_without_the_new_columns_is_as_before() {
    let run = Run::new();
    let old = [
        row("/a", 0, "", "", "sha256-before"),
        row("/a", 1, "https://cdn.example/pay.js", "sri", ""),
        row("/a", 2, "https://cdn.example/x.js", "sri", ""),
        row("/a", 3, "https://cdn.example/y.js", "", ""),
        row("/a", 4, "https://shop.example/gone.js", "", ""),
    ];
    let new = [
        row("/a", 0, "", "", "sha256-after"),
        row("/a", 1, "https://cdn.example/pay.js", "", ""),
        row("/a", 2, "https://cdn.example/x.js", "sri2", ""),
        row("/a", 3, "https://cdn.example/y.js", "module", ""),
        row("/a", 4, "https://skimmer.example/s.js", "", ""),
        row("/a", 5, "https://cdn.example/ok.js", "", ""),
    ];
    write_csv(&run, "old.csv", &old);
    write_csv(&run, "new.csv", &new);
    std::fs::write(run.path("allow.txt"), "cdn.example\n").unwrap();
    let diff = |old: &str, new: &str| {
        let out = run.run(&["diff", old, new, "--allow", "allow.txt"], None);
        assert_eq!(out.code, 1, "{}", out.stderr);
        (String::from_utf8(out.stdout).unwrap(), out.stderr)
    };
    // As the version before the content columns wrote it, byte for byte.
    let (before, stderr) = diff("old.csv", "new.csv");
    assert_eq!(
        before,
        "page_url,change,src,inline_sha256,detail\n\
         https://shop.example/a,inline_changed,,sha256-after,was sha256-before (10 → 10 bytes)\n\
         https://shop.example/a,integrity_removed,https://cdn.example/pay.js,,was sha384-one\n\
         https://shop.example/a,integrity_changed,https://cdn.example/x.js,,sha384-one → sha384-two\n\
         https://shop.example/a,attribute_changed,https://cdn.example/y.js,,type: (none) → module\n\
         https://shop.example/a,removed,https://shop.example/gone.js,,\n\
         https://shop.example/a,unapproved,https://skimmer.example/s.js,,\"third-party (skimmer.example), no integrity\"\n\
         https://shop.example/a,added,https://cdn.example/ok.js,,\"third-party (cdn.example), no integrity\"\n"
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    // A newer scrape without --fetch-scripts and without a policy: the
    // columns are there, empty, and change nothing.
    let empty = |rows: &[String]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.clone(), ",,,,,".to_owned()))
            .collect()
    };
    write_csv_with_content(&run, "old2.csv", &empty(&old));
    write_csv_with_content(&run, "new2.csv", &empty(&new));
    assert_eq!(diff("old2.csv", "new2.csv"), (before.clone(), stderr));
    assert_eq!(diff("old.csv", "new2.csv").0, before);

    // Against a run that fetched content, the old one's is unknown: said
    // per script and once on standard error.
    let fetched: Vec<(String, String)> = new
        .iter()
        .map(|r| {
            let external = !r.contains(",true,,,,"); // inline rows have inline=true
            let cells = if external {
                content("", 7, &sha('Q'))
            } else {
                ",,,,,".to_owned()
            };
            (r.clone(), cells)
        })
        .collect();
    write_csv_with_content(&run, "new3.csv", &fetched);
    let out = run.run(&["diff", "old.csv", "new3.csv", "-o", "c.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("warning: the old run has no script content (not run with --fetch-scripts)"),
        "{}",
        out.stderr
    );
    let table = crate::support::Table::read(&run.path("c.csv"));
    let unknown = table.rows_where("change", "unknown");
    assert_eq!(
        unknown
            .iter()
            .map(|&i| table.get(i, "src"))
            .collect::<Vec<_>>(),
        [
            "https://cdn.example/pay.js",
            "https://cdn.example/x.js",
            "https://cdn.example/y.js"
        ]
    );
    assert_eq!(
        table.get(unknown[0], "detail"),
        "no content in the old run: not fetched (the run did not use --fetch-scripts)"
    );
}

#[test]
fn diff_checks_pinned_content_and_refuses_a_bad_allow_line() {
    let run = Run::new();
    let pay = "https://cdn.example/pay.js";
    let tag = "https://cdn.example/tag.js";
    std::fs::write(
        run.path("allow.txt"),
        format!(
            "# payment page scripts\n\
             shop.example  owner=web-team\n\
             {pay}  justification=\"Card form, contract #2024-17\"  owner=\"Payments team\"  pin={}\n\
             {tag}  pin='{}'  # quoted as CSP writes it\n\
             cdn.example\n",
            sha('A'),
            sha('C')
        ),
    )
    .unwrap();
    write_csv_with_content(
        &run,
        "old.csv",
        &[
            (row("/a", 0, pay, "", ""), content("", 100, &sha('A'))),
            (row("/a", 1, tag, "", ""), content("", 30, &sha('C'))),
        ],
    );
    write_csv_with_content(
        &run,
        "new.csv",
        &[
            (row("/a", 0, pay, "", ""), content("", 120, &sha('B'))),
            (row("/a", 1, tag, "", ""), ",,404,http_status,,".to_owned()),
            (
                row("/a", 2, "https://shop.example/new.js", "", ""),
                content("", 9, &sha('N')),
            ),
            (
                row("/a", 3, "https://skim.example/s.js", "", ""),
                content("", 9, &sha('S')),
            ),
        ],
    );
    let out = run.run(
        &[
            "diff",
            "old.csv",
            "new.csv",
            "--allow",
            "allow.txt",
            "-o",
            "c.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        changes(&run, "c.csv"),
        owned(&[
            // Off its pin: unapproved, not content_changed as well.
            ("/a", "unapproved", pay),
            ("/a", "unknown", tag),
            ("/a", "added", "https://shop.example/new.js"),
            ("/a", "unapproved", "https://skim.example/s.js"),
        ])
    );
    let table = crate::support::Table::read(&run.path("c.csv"));
    assert_eq!(
        table.column("detail"),
        [
            &format!(
                "pinned {} (line 3), seen {} (120 bytes)",
                sha('A'),
                sha('B')
            ),
            &format!(
                "pinned {} (line 4), content unknown: http_status 404",
                sha('C')
            ),
            &format!("first-party, no integrity, content {} (9 bytes)", sha('N')),
            &format!(
                "third-party (skim.example), no integrity, content {} (9 bytes)",
                sha('S')
            ),
        ]
    );
    // Back on its pin: nothing about it.
    let out = run.run(
        &["diff", "old.csv", "old.csv", "--allow", "allow.txt"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    // A bad line: exit 2, one line naming the file and the line.
    for (text, says) in [
        (
            "cdn.example\nshop.example onwer=me\n",
            "bad.txt:2: unknown key \"onwer\" (one of: justification, owner, pin)",
        ),
        (
            &format!("\u{feff}cdn.example pin={}\n", sha('A')),
            "bad.txt:1: pin= on a host (cdn.example): pin an external script by its src (https://…)",
        ),
        (
            "a.example justification=\"open\n",
            "bad.txt:1: a quote is not closed",
        ),
        (
            "x y\nz w\n",
            "bad.txt:1: \"y\" is not key=value (keys: justification, owner, pin; quote values with spaces) (and 1 more bad line)",
        ),
    ] {
        std::fs::write(run.path("bad.txt"), text).unwrap();
        let out = run.run(&["diff", "old.csv", "new.csv", "--allow", "bad.txt"], None);
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert_eq!(out.stderr, format!("scriptscrape diff: {says}\n"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn diff_help_names_every_kind_of_change() {
    let run = Run::new();
    let out = run.run(&["diff", "--help"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let help = String::from_utf8(out.stdout).unwrap();
    for kind in scriptscrape::diff::ChangeKind::ALL {
        assert!(help.contains(kind.as_str()), "{kind} not in {help}");
    }
    assert!(help.contains("pin=sha384-"), "{help}");
}

#[test]
fn scrape_with_fetch_scripts_change_the_code_behind_a_src_and_diff() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let sha384 = |body: &str| {
        format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(body))
        )
    };
    let (poly, lib, emptied) = ("polyfill();\n", "lib();\n", "emptied();\n");
    let server = TestServer::start();
    server.set_script("poly.js", poly, std::time::Duration::ZERO);
    server.set_script("lib.js", lib, std::time::Duration::ZERO);
    server.set_script("emptied.js", emptied, std::time::Duration::ZERO);
    server.set_page(
        "checkout",
        &format!(
            "<script src=/js/poly.js></script>\
             <script src=/js/lib.js integrity='{}' crossorigin></script>\
             <script src=/js/emptied.js></script>",
            sha384(lib)
        ),
    );
    let run = Run::new();
    let input = run.urls("urls.txt", &[server.url("/page/checkout")]);
    let scrape = |day: &str, extra: &[&str]| {
        let out = run.run(
            &[
                &[
                    &input,
                    "--fetch-scripts",
                    "-o",
                    &format!("{day}.csv"),
                    "--pages",
                    &format!("{day}-pages.csv"),
                ][..],
                extra,
            ]
            .concat(),
            None,
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    };
    scrape("monday", &[]);
    // The same page; the code behind each of its srcs changes (the third
    // to an empty body).
    let evil = "polyfill(); steal();\n";
    server.set_script("poly.js", evil, std::time::Duration::ZERO);
    server.set_script("lib.js", "lib(); steal();\n", std::time::Duration::ZERO);
    server.set_script("emptied.js", "", std::time::Duration::ZERO);
    scrape("tuesday", &[]);
    // Pinned to Monday's content, as content_sha384 gave it.
    let monday = crate::support::Table::read(&run.path("monday.csv"));
    let poly_src = server.url("/js/poly.js");
    let pinned = monday.get(monday.rows_where("src", &poly_src)[0], "content_sha384");
    assert_eq!(pinned, sha384(poly));
    std::fs::write(
        run.path("allow.txt"),
        format!("127.0.0.1\n{poly_src} justification=\"polyfills\" pin={pinned}\n"),
    )
    .unwrap();
    let diff_days = |old: &str, new: &str, extra: &[&str], name: &str| {
        let out = run.run(
            &[
                &[
                    "diff",
                    &format!("{old}.csv"),
                    &format!("{new}.csv"),
                    "--old-pages",
                    &format!("{old}-pages.csv"),
                    "--new-pages",
                    &format!("{new}-pages.csv"),
                    "-o",
                    name,
                ][..],
                extra,
            ]
            .concat(),
            None,
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        crate::support::Table::read(&run.path(name))
    };
    let diff = |extra: &[&str], name: &str| diff_days("monday", "tuesday", extra, name);
    let table = diff(&[], "c.csv");
    let rows: Vec<(&str, &str)> = (0..table.rows.len())
        .map(|i| (table.get(i, "change"), table.get(i, "detail")))
        .collect();
    let moved = format!(
        "{} ({} bytes) → {} ({} bytes)",
        sha384(poly),
        poly.len(),
        sha384(evil),
        evil.len()
    );
    assert_eq!(rows[0], ("content_changed", moved.as_str()));
    assert_eq!(rows[1].0, "integrity_broken");
    assert!(
        rows[1].1.ends_with("no longer matches the content")
            || rows[1]
                .1
                .contains("no longer matches the content; content "),
        "{rows:?}"
    );
    // An empty body is still a content: gone.js changed, not unknown.
    assert_eq!(rows[2].0, "content_changed");
    assert_eq!(rows.len(), 3, "{rows:?}");

    // With the allow list: the pinned script is unapproved instead.
    let table = diff(&["--allow", "allow.txt"], "a.csv");
    assert_eq!(table.get(0, "change"), "unapproved");
    assert_eq!(table.get(0, "src"), poly_src);
    assert_eq!(
        table.get(0, "detail"),
        format!(
            "pinned {} (line 2), seen {} ({} bytes)",
            sha384(poly),
            sha384(evil),
            evil.len()
        )
    );

    // A night whose fetches fail: unknown, never content_changed.
    scrape("wednesday", &["--max-script-body", "8"]);
    let table = diff_days("tuesday", "wednesday", &[], "w.csv");
    let rows: Vec<(&str, &str, &str)> = (0..table.rows.len())
        .map(|i| {
            (
                table.get(i, "change"),
                table.get(i, "src").rsplit('/').next().unwrap(),
                table.get(i, "detail"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "unknown",
                "poly.js",
                "no content in the new run: body_too_large (status 200)"
            ),
            (
                "unknown",
                "lib.js",
                "no content in the new run: body_too_large (status 200)"
            ),
        ]
    );
}
