//! `scriptscrape inventory`: the authorisation report of a real run
//! against an allow list, as CSV, JSON Lines and HTML (read back by
//! headless Chromium).

use std::time::Duration;

use crate::support::{Run, Table, TestServer, browser, sha256_sri as sha256, sha384_sri as sha384};

const PAY: &str = "payments.render('#card');\n";
const TAGS: &str = "tags.push('pageview');\n";
const INLINE: &str = "window.cfg = {shop: 1};";

/// A shop's checkout (a policy, a pinned payment script, an allowed tag
/// script, an allowed inline script, a skimmer) and a page that is gone;
/// scraped with --fetch-scripts into `scripts.csv` and `pages.csv`.
fn scraped(server: &TestServer, run: &Run) -> String {
    server.set_script("pay.js", PAY, Duration::ZERO);
    server.set_script("tags.js", TAGS, Duration::ZERO);
    server.set_script("skim.js", "steal()", Duration::ZERO);
    let html = format!(
        "<html><head><script>{INLINE}</script>\
         <script src=/js/pay.js integrity='{}' crossorigin></script>\
         <script src=/js/tags.js></script></head>\
         <body><form></form><script src=/js/skim.js></script></body></html>",
        sha384(PAY)
    );
    let policy = format!("script-src 'self' '{}'", sha256(INLINE));
    server.set_csp_page("checkout", &html, &[&policy]);
    let list = run.urls(
        "checkout.txt",
        &[server.url("/csp/checkout"), server.url("/status/404")],
    );
    let out = run.run(
        &[
            &list,
            "--fetch-scripts",
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 1, "one page failed: {}", out.stderr);
    policy
}

fn allow_list(server: &TestServer, pay_pin: &str) -> String {
    format!(
        "# checkout scripts\n\
         {}  justification=\"Card form (PSP contract 17)\"  owner=payments@shop.example  pin={pay_pin}\n\
         {}  justification=\"Tag manager\" owner=marketing@shop.example\n\
         '{}'  justification=\"Shop configuration\"  owner=web@shop.example\n",
        server.url("/js/pay.js"),
        server.url("/js/tags.js"),
        sha256(INLINE)
    )
}

#[test]
fn the_report_says_for_each_script_whether_it_is_authorised_and_why() {
    let server = TestServer::start();
    let run = Run::new();
    let policy = scraped(&server, &run);
    std::fs::write(run.path("allowed.txt"), allow_list(&server, &sha384(PAY))).unwrap();
    let args = [
        "inventory",
        "scripts.csv",
        "--pages",
        "pages.csv",
        "--allow",
        "allowed.txt",
    ];
    let mut csv_args = args.to_vec();
    csv_args.extend(["-o", "report.csv"]);
    let out = run.run(&csv_args, None);
    assert_eq!(out.code, 1, "a skimmer and a failed page: {}", out.stderr);
    assert!(
        out.stderr
            .contains("2 pages, 4 scripts: 3 authorised, 1 not authorised; 1 page not inventoried"),
        "{}",
        out.stderr
    );
    let report = Table::read(&run.path("report.csv"));
    assert_eq!(report.rows.len(), 5);
    let checkout = server.url("/csp/checkout");
    let row = |index: &str| {
        (0..report.rows.len())
            .find(|&i| report.get(i, "page_url") == checkout && report.get(i, "index") == index)
            .unwrap_or_else(|| panic!("no row {index}"))
    };
    // The inline script: allowed by its hash, and by the page's policy.
    let inline = row("0");
    assert_eq!(report.get(inline, "script"), sha256(INLINE));
    assert_eq!(report.get(inline, "authorised"), "true");
    assert_eq!(report.get(inline, "justification"), "Shop configuration");
    assert_eq!(report.get(inline, "allow_entry"), "allowed.txt:4");
    assert_eq!(report.get(inline, "csp_allowed"), "true");
    assert_eq!(report.get(inline, "page_csp"), policy);
    // The payment script: pinned, its content the pin, SRI checked.
    let pay = row("1");
    assert_eq!(report.get(pay, "authorisation"), "authorised");
    assert_eq!(report.get(pay, "owner"), "payments@shop.example");
    assert_eq!(report.get(pay, "pins"), sha384(PAY));
    assert_eq!(report.get(pay, "content_sha384"), sha384(PAY));
    assert_eq!(report.get(pay, "integrity_ok"), "true");
    assert_eq!(report.get(pay, "content_status"), "200");
    let tags = row("2");
    assert_eq!(report.get(tags, "authorised"), "true");
    assert_eq!(report.get(tags, "justification"), "Tag manager");
    assert_eq!(report.get(tags, "integrity_ok"), "");
    // The skimmer: on no list, and yet the policy lets it run ('self').
    let skim = row("3");
    assert_eq!(report.get(skim, "authorised"), "false");
    assert_eq!(report.get(skim, "authorisation"), "unlisted");
    assert_eq!(report.get(skim, "justification"), "");
    assert_eq!(report.get(skim, "csp_allowed"), "true");
    assert_eq!(report.get(skim, "content_sha384"), sha384("steal()"));
    // The page that failed is listed, not silently left out.
    let gone = (0..5)
        .find(|&i| report.get(i, "page_url") == server.url("/status/404"))
        .expect("the failed page has a row");
    assert_eq!(report.get(gone, "authorisation"), "not_inventoried");
    assert!(report.get(gone, "reason").starts_with("http_status"));

    // JSON Lines, from the extension: the same rows, typed.
    let mut jsonl_args = args.to_vec();
    jsonl_args.extend(["-o", "report.jsonl", "-q"]);
    let out = run.run(&jsonl_args, None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let text = std::fs::read_to_string(run.path("report.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    let pay_json = rows
        .iter()
        .find(|r| r["index"] == 1 && r["page_url"] == checkout.as_str())
        .unwrap();
    assert_eq!(pay_json["authorised"], true);
    assert_eq!(pay_json["integrity_ok"], true);
    assert_eq!(pay_json["content_status"], 200);

    // The payment script's code changed behind its src: off its pin.
    std::fs::write(
        run.path("allowed.txt"),
        allow_list(&server, &sha384("the old version")),
    )
    .unwrap();
    let out = run.run(&csv_args, None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = Table::read(&run.path("report.csv"));
    let pay = (0..report.rows.len())
        .find(|&i| report.get(i, "index") == "1")
        .unwrap();
    assert_eq!(report.get(pay, "authorised"), "false");
    assert_eq!(report.get(pay, "authorisation"), "pin_mismatch");
}

#[test]
fn every_script_authorised_exits_0_and_a_bad_allow_line_exits_2() {
    let server = TestServer::start();
    let run = Run::new();
    scraped(&server, &run);
    let mut list = allow_list(&server, &sha384(PAY));
    list.push_str(&format!("{}\n", server.url("/js/skim.js")));
    std::fs::write(run.path("allowed.txt"), &list).unwrap();
    // Without the page report there is no failed page to list.
    let out = run.run(
        &["inventory", "scripts.csv", "--allow", "allowed.txt"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = Table::parse(&out.stdout);
    assert_eq!(report.rows_where("authorised", "true").len(), 4);

    list.push_str("cdn.example onwer=bob\n");
    std::fs::write(run.path("allowed.txt"), &list).unwrap();
    let out = run.run(
        &["inventory", "scripts.csv", "--allow", "allowed.txt"],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("allowed.txt:6"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    // The report may not replace an input.
    let out = run.run(
        &[
            "inventory",
            "scripts.csv",
            "--allow",
            "allowed.txt",
            "-o",
            "scripts.csv",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(Table::read(&run.path("scripts.csv")).rows.len() == 4);
}

#[test]
fn the_html_report_is_one_page_a_browser_renders_as_tables() {
    let server = TestServer::start();
    let run = Run::new();
    scraped(&server, &run);
    std::fs::write(run.path("allowed.txt"), allow_list(&server, &sha384(PAY))).unwrap();
    let out = run.run(
        &[
            "inventory",
            "scripts.csv",
            "--pages",
            "pages.csv",
            "--allow",
            "allowed.txt",
            "-o",
            "report.html",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let page = run.path("report.html");
    let written = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing loaded, nothing run.
    assert!(!written.contains("<script") && !written.contains("src="));
    assert!(!written.contains("http-equiv=refresh"));

    let dom = browser::dom(&page);
    // The summary, and one table of four script rows (plus a header row)
    // for the checkout; the failed page as not inventoried.
    assert!(
        dom.contains("<title>Script authorisation report</title>"),
        "{dom}"
    );
    assert_eq!(dom.matches("<table").count(), 2, "{dom}");
    assert_eq!(dom.matches("<td class=\"no\">no</td>").count(), 1, "{dom}");
    assert_eq!(
        dom.matches("<td class=\"yes\">yes</td>").count(),
        3,
        "{dom}"
    );
    assert!(dom.contains("Card form (PSP contract 17)"));
    assert!(dom.contains("Not inventoried"));
    assert!(dom.contains(&sha384(PAY)));

    let png = run.path("report.png");
    browser::screenshot(&page, &png, 1280, 900);
    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        image.len() > 10_000,
        "more than a blank page: {}",
        image.len()
    );
    if let Ok(dir) = std::env::var("SCRIPTSCRAPE_KEEP_SCREENSHOT") {
        // For a person to look at: SCRIPTSCRAPE_KEEP_SCREENSHOT=/tmp cargo test …
        std::fs::copy(
            &png,
            std::path::Path::new(&dir).join("inventory-report.png"),
        )
        .unwrap();
        std::fs::copy(
            &page,
            std::path::Path::new(&dir).join("inventory-report.html"),
        )
        .unwrap();
    }
}

#[test]
fn pages_a_crawl_passed_over_are_not_missing_and_formulas_are_escaped() {
    let server = TestServer::start();
    server.set_script("a.js", "a()", Duration::ZERO);
    let html = "<script src=/js/a.js></script><a href=/js/a.js>source</a>";
    server.set_csp_page("home", html, &["=HYPERLINK(\"http://evil.example\")"]);
    let run = Run::new();
    let list = run.urls("seeds.txt", &[server.url("/csp/home")]);
    let out = run.run(
        &[
            &list,
            "--depth",
            "1",
            "--fetch-scripts",
            "-o",
            "s.csv",
            "--pages",
            "p.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::write(
        run.path("allowed.txt"),
        format!("{}\n", server.url("/js/a.js")),
    )
    .unwrap();
    let args = [
        "inventory",
        "s.csv",
        "--pages",
        "p.csv",
        "--allow",
        "allowed.txt",
    ];
    let out = run.run(&args, None);
    // The linked script is a page the crawl passed over (not HTML): not
    // part of the inventory, as for diff.
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = Table::parse(&out.stdout);
    assert_eq!(report.rows.len(), 1);
    assert_eq!(
        report.get(0, "page_csp"),
        "=HYPERLINK(\"http://evil.example\")"
    );
    let mut safe = args.to_vec();
    safe.push("--spreadsheet-safe");
    let out = run.run(&safe, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = Table::parse(&out.stdout);
    assert_eq!(
        report.get(0, "page_csp"),
        "'=HYPERLINK(\"http://evil.example\")"
    );
}

#[test]
fn an_output_that_cannot_be_written_is_named_as_given() {
    let run = Run::new();
    let header = scriptscrape::output::SCRIPT_COLUMNS.join(",");
    std::fs::write(run.path("s.csv"), format!("{header}\n")).unwrap();
    std::fs::write(run.path("allowed.txt"), "").unwrap();
    let out = run.run(
        &[
            "inventory",
            "s.csv",
            "--allow",
            "allowed.txt",
            "-o",
            "no/such/dir/r.csv",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "scriptscrape inventory: cannot write no/such/dir/r.csv: No such file or directory"
    );
}

#[test]
fn a_listed_page_left_unfetched_by_max_pages_is_not_inventoried() {
    let server = TestServer::start();
    server.set_page("a", "<script>a()</script>");
    server.set_page("b", "<script>b()</script>");
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/page/a"), server.url("/page/b")]);
    let out = run.run(
        &[
            &list,
            "--max-pages",
            "1",
            "-c",
            "1",
            "-o",
            "s.csv",
            "--pages",
            "p.csv",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    std::fs::write(
        run.path("allowed.txt"),
        format!("'{}'\n'{}'\n", sha256("a()"), sha256("b()")),
    )
    .unwrap();
    let out = run.run(
        &[
            "inventory",
            "s.csv",
            "--pages",
            "p.csv",
            "--allow",
            "allowed.txt",
        ],
        None,
    );
    assert_eq!(
        out.code, 1,
        "a listed page has no inventory: {}",
        out.stderr
    );
    let report = Table::parse(&out.stdout);
    let missing = report.rows_where("authorisation", "not_inventoried");
    assert_eq!(missing.len(), 1);
    assert!(report.get(missing[0], "reason").starts_with("max_pages"));
}
