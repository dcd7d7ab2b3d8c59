//! Decoding and URLs as browsers do (issue 14, points 10–12): each case is
//! a fixture page served without a charset, checked on the decoded inline
//! text, its hash and the resolved URLs.

use crate::support::{Run, Table, TestServer};
use scriptscrape::extract::sha256_source;

/// Runs the binary on `urls` with `--inline-text` and extra `args`, the
/// environment variables `env` set; returns the pages and scripts tables.
fn scrape(urls: &[String], args: &[&str], env: &[(&str, &str)]) -> (Table, Table) {
    let run = Run::new();
    let list = run.urls("urls.txt", urls);
    let mut all = vec![
        list.as_str(),
        "--pages",
        "pages.csv",
        "-o",
        "scripts.csv",
        "--inline-text",
    ];
    all.extend_from_slice(args);
    let out = run
        .command(&all)
        .envs(env.iter().copied())
        .output()
        .expect("run scriptscrape");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (
        Table::read(&run.path("pages.csv")),
        Table::read(&run.path("scripts.csv")),
    )
}

/// The inline text, its length and hash, and the src of each script of
/// `page`, in document order.
fn scripts_of(scripts: &Table, page: &str) -> Vec<(String, String, String, String)> {
    scripts
        .rows_where("page_url", page)
        .into_iter()
        .map(|row| {
            let cell = |name: &str| scripts.get(row, name).to_owned();
            (
                cell("inline_text"),
                cell("inline_bytes"),
                cell("inline_sha256"),
                cell("src"),
            )
        })
        .collect()
}

fn inline(text: &str) -> (String, String, String, String) {
    (
        text.to_owned(),
        text.len().to_string(),
        sha256_source(text.as_bytes()),
        String::new(),
    )
}

fn external(src: String) -> (String, String, String, String) {
    (String::new(), String::new(), String::new(), src)
}

#[test]
fn undeclared_utf8_falls_back_as_browsers_do_unless_asked() {
    let server = TestServer::start();
    let page = server.url("/fixtures/undeclared-utf8.html");
    // Chromium and Firefox: no UTF-8 guess for http(s); an IP address
    // falls back to windows-1252, like .com.
    let (pages, scripts) = scrape(std::slice::from_ref(&page), &[], &[]);
    assert_eq!(pages.for_page(&page, "charset"), "windows-1252");
    assert_eq!(
        scripts_of(&scripts, &page),
        [
            inline("var s = \"cafÃ© â˜ƒ\";"),
            external(server.url("/static/caf%C3%83%C2%A9.js")),
        ]
    );
    // The option, by flag and by environment variable.
    let asked = [
        inline("var s = \"café ☃\";"),
        external(server.url("/static/caf%C3%A9.js")),
    ];
    let (pages, scripts) = scrape(std::slice::from_ref(&page), &["--detect-utf8"], &[]);
    assert_eq!(pages.for_page(&page, "charset"), "UTF-8");
    assert_eq!(scripts_of(&scripts, &page), asked);
    let env = [("SCRIPTSCRAPE_DETECT_UTF8", "true")];
    let (pages, scripts) = scrape(std::slice::from_ref(&page), &[], &env);
    assert_eq!(pages.for_page(&page, "charset"), "UTF-8");
    assert_eq!(scripts_of(&scripts, &page), asked);
}

#[test]
fn detect_utf8_is_documented_in_help() {
    let out = Run::new().run(&["--help"], None);
    assert_eq!(out.code, 0);
    let help = String::from_utf8_lossy(&out.stdout);
    let at = help.find("--detect-utf8").expect("--detect-utf8 in --help");
    assert!(help[at..].contains("SCRIPTSCRAPE_DETECT_UTF8"), "{help}");
}

#[test]
fn a_late_meta_charset_overrules_the_guess() {
    let server = TestServer::start();
    let page = server.url("/fixtures/late-meta.html");
    // Past the 1024 bytes the prescan reads, the parser meets the <meta>
    // while the encoding is only guessed, and the page is read again in
    // UTF-8, as in a browser.
    let (pages, scripts) = scrape(std::slice::from_ref(&page), &[], &[]);
    assert_eq!(pages.for_page(&page, "charset"), "UTF-8");
    assert_eq!(
        scripts_of(&scripts, &page),
        [
            inline("var s = \"naïve — ☃\";"),
            external(server.url("/static/na%C3%AFve.js")),
        ]
    );
}

#[test]
fn queries_are_written_in_the_document_encoding() {
    let server = TestServer::start();
    let page = server.url("/fixtures/euc-kr-query.html");
    let (pages, scripts) = scrape(std::slice::from_ref(&page), &[], &[]);
    assert_eq!(pages.for_page(&page, "charset"), "EUC-KR");
    assert_eq!(
        scripts_of(&scripts, &page),
        [
            inline("var s = \"안녕하세요\";"),
            // Not ?q=%ED%95%9C%EA%B8%80, the UTF-8 bytes.
            external(server.url("/a.js?q=%C7%D1%B1%DB")),
            // Paths are UTF-8 whatever the page; a character EUC-KR lacks
            // becomes &#128512; in the query, percent-encoded.
            external(server.url("/%EC%8A%A4%ED%81%AC%EB%A6%BD%ED%8A%B8.js?q=%26%23128512%3B")),
            external(server.url("/b.js#%ED%95%9C")),
        ]
    );
}

#[test]
fn crawled_links_are_written_in_the_document_encoding() {
    let server = TestServer::start();
    let page = server.url("/fixtures/euc-kr-query.html");
    let (pages, _) = scrape(std::slice::from_ref(&page), &["--depth", "1"], &[]);
    let linked = server.url("/fixtures/no-scripts.html?q=%C7%D1%B1%DB");
    assert_eq!(pages.for_page(&linked, "status"), "200");
    assert_eq!(pages.for_page(&linked, "referrer"), page);
    assert!(
        server
            .targets()
            .contains(&"/fixtures/no-scripts.html?q=%C7%D1%B1%DB".to_owned()),
        "{:?}",
        server.targets()
    );
}
