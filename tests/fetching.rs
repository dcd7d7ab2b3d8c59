//! How each kind of network outcome lands in the page report.

use std::time::Duration;

use crate::support::{
    BOMB_BYTES, COMPRESSED_PAGE, ENCODED_TEXT, H2Server, RawServer, Run, Table, TestServer,
    refused_url,
};

/// Runs the binary on `urls` with extra `args`; returns (exit code, pages, scripts).
fn scrape(urls: &[impl AsRef<str>], args: &[&str]) -> (i32, Table, Table) {
    let run = Run::new();
    let out = crate::support::scrape_into(&run, urls, args);
    (
        out.code,
        Table::read(&run.path("pages.csv")),
        Table::read(&run.path("scripts.csv")),
    )
}

#[test]
fn redirects_set_final_url_and_the_base_for_src() {
    let server = TestServer::start();
    let start = server.url("/redirect/3");
    let (code, pages, scripts) = scrape(&[&start], &[]);
    assert_eq!(code, 0);
    assert_eq!(pages.get(0, "page_url"), start);
    assert_eq!(pages.get(0, "final_url"), server.url("/redirect/0"));
    assert_eq!(pages.get(0, "status"), "200");
    assert_eq!(
        scripts.column("src"),
        [
            server.url("/redirect/rel.js"),
            server.url("/rel.js").replace("/rel.js", "/up.js")
        ]
    );
    assert_eq!(scripts.column("page_url"), [start.as_str(), start.as_str()]);
    assert_eq!(
        scripts.column("final_url"),
        [server.url("/redirect/0"), server.url("/redirect/0")]
    );
}

#[test]
fn redirect_loops_limits_and_other_schemes_fail_as_redirect() {
    let server = TestServer::start();
    let urls = [
        server.url("/loop"),
        server.url("/redirect/5"),
        server.url("/to-ftp"),
        server.url("/redirect/2"),
    ];
    let (code, pages, scripts) = scrape(&urls, &["--max-redirects", "3"]);
    assert_eq!(code, 1);
    for (url, error) in urls.iter().zip(["redirect", "redirect", "redirect", ""]) {
        assert_eq!(pages.for_page(url, "error"), error, "{url}");
    }
    let detail = pages.for_page(&urls[0], "error_detail");
    assert!(detail.contains("loop"), "{detail}");
    assert_eq!(scripts.rows.len(), 2);
}

#[test]
fn error_statuses_are_reported_and_not_parsed() {
    let server = TestServer::start();
    let urls = [
        server.url("/status/404"),
        server.url("/status/500"),
        server.url("/status/204"),
    ];
    let (code, pages, scripts) = scrape(&urls, &[]);
    assert_eq!(code, 1);
    let status_of = |u: &str| (pages.for_page(u, "status"), pages.for_page(u, "error"));
    assert_eq!(status_of(&urls[0]), ("404", "http_status"));
    assert_eq!(status_of(&urls[1]), ("500", "http_status"));
    // 204 is a success without a body: parsed, no scripts, no error.
    assert_eq!(status_of(&urls[2]), ("204", ""));
    assert!(
        scripts.rows.is_empty(),
        "error pages must not be parsed: {:?}",
        scripts.rows
    );
}

#[test]
fn non_html_is_not_parsed_and_missing_types_are_sniffed() {
    let server = TestServer::start();
    let urls = [
        server.url("/json"),
        server.url("/no-type-html"),
        server.url("/no-type-binary"),
    ];
    let (code, pages, scripts) = scrape(&urls, &[]);
    assert_eq!(code, 1);
    assert_eq!(pages.for_page(&urls[0], "error"), "not_html");
    assert_eq!(pages.for_page(&urls[1], "error"), "");
    assert_eq!(pages.for_page(&urls[2], "error"), "not_html");
    assert_eq!(scripts.column("src"), [server.url("/x.js")]);
}

#[test]
fn connection_refused_is_connect() {
    let url = refused_url();
    let (code, pages, _) = scrape(&[&url], &[]);
    assert_eq!(code, 1);
    assert_eq!(pages.get(0, "page_url"), url);
    assert_eq!(pages.get(0, "error"), "connect");
    assert!(
        pages
            .get(0, "error_detail")
            .to_lowercase()
            .contains("refused"),
        "{:?}",
        pages.rows[0]
    );
    assert_eq!(pages.get(0, "status"), "");
}

#[test]
fn stalled_servers_time_out_before_or_after_headers() {
    let server = TestServer::start();
    let urls = [
        server.url("/stall-headers"),
        server.url("/stall-body"),
        server.url("/gen/1"),
    ];
    let (code, pages, scripts) = scrape(&urls, &["--timeout", "0.5"]);
    assert_eq!(code, 1);
    for u in &urls[..2] {
        assert_eq!(pages.for_page(u, "error"), "timeout", "{u}");
        let detail = pages.for_page(u, "error_detail");
        assert!(detail.contains("500 ms"), "{detail}");
    }
    // A partial body never yields rows.
    assert!(scripts.column("page_url").iter().all(|p| *p == urls[2]));
    assert_eq!(scripts.rows.len(), 2);
}

#[test]
fn max_body_fails_large_pages_and_keeps_small_ones() {
    let server = TestServer::start();
    let urls = [server.url("/big/300000"), server.url("/big/50000")];
    let (code, pages, scripts) = scrape(&urls, &["--max-body", "100K"]);
    assert_eq!(code, 1);
    assert_eq!(pages.for_page(&urls[0], "error"), "body_too_large");
    assert_eq!(pages.for_page(&urls[0], "status"), "200");
    // What was taken, up to the limit: never more than --max-body.
    assert_eq!(pages.for_page(&urls[0], "bytes"), (100 * 1024).to_string());
    assert_eq!(pages.for_page(&urls[1], "error"), "");
    assert_eq!(pages.for_page(&urls[1], "bytes"), "50000");
    assert_eq!(scripts.column("page_url"), [urls[1].as_str()]);
}

fn raw_replies(path: &str) -> Vec<u8> {
    let page = "<html><script src=/a.js></script></html>";
    match path {
        // Promises 1000 bytes, sends a few, closes.
        "/truncated" => b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n<html><script>".to_vec(),
        "/no-location" => b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/empty-type" => format!("HTTP/1.1 200 OK\r\nContent-Type: \r\nContent-Length: {}\r\n\r\n{page}", page.len()).into_bytes(),
        "/two-types" => format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}", page.len()).into_bytes(),
        // A keep-alive response (no Connection: close) on a connection the
        // server then closes: the next request on it dies unanswered.
        _ => format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}", page.len()).into_bytes(),
    }
}

#[test]
fn body_cut_short_is_io_and_odd_headers_are_handled() {
    let server = RawServer::start(raw_replies);
    let urls = [
        server.url("/truncated"),
        server.url("/no-location"),
        server.url("/empty-type"),
        server.url("/two-types"),
    ];
    let (code, pages, scripts) = scrape(&urls, &[]);
    assert_eq!(code, 1);
    assert_eq!(pages.for_page(&urls[0], "error"), "io", "{:?}", pages.rows);
    assert_eq!(pages.for_page(&urls[1], "error"), "redirect");
    assert_eq!(pages.for_page(&urls[1], "status"), "302");
    assert!(
        pages
            .for_page(&urls[1], "error_detail")
            .contains("without a Location")
    );
    // An empty Content-Type is sniffed; of two, the last one counts.
    assert_eq!(pages.for_page(&urls[2], "error"), "");
    assert_eq!(pages.for_page(&urls[3], "error"), "");
    assert_eq!(scripts.rows.len(), 2);
}

#[test]
fn keep_alive_connections_closed_by_the_server_are_retried_fresh() {
    let server = RawServer::start(raw_replies);
    let urls: Vec<String> = (0..60)
        .map(|i| server.url(&format!("/kill-next/{i}")))
        .collect();
    let (code, pages, scripts) = scrape(&urls, &["-c", "4"]);
    let failed: Vec<_> = pages.rows.iter().filter(|r| !r[3].is_empty()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(code, 0);
    assert_eq!(scripts.rows.len(), 60);
}

#[test]
fn pages_are_decoded_as_the_html_standard_says() {
    let server = TestServer::start();
    let urls: Vec<String> = ENCODED_TEXT
        .iter()
        .map(|(case, _)| server.url(&format!("/encoded/{case}")))
        .collect();
    let (code, pages, scripts) = scrape(&urls, &["--inline-text"]);
    assert_eq!(code, 0);
    let charsets = [
        "EUC-KR",
        "Shift_JIS",
        "windows-1251",
        "UTF-16LE",
        "Shift_JIS",
        "UTF-8",
    ];
    for ((url, (_, text)), charset) in urls.iter().zip(ENCODED_TEXT).zip(charsets) {
        assert_eq!(pages.for_page(url, "charset"), charset, "{url}");
        let row = scripts.rows_where("page_url", url)[0];
        assert_eq!(scripts.get(row, "inline_text"), text, "{url}");
        assert_eq!(scripts.get(row, "inline_bytes"), text.len().to_string());
        let hash = scriptscrape::extract::sha256_source(text.as_bytes());
        assert_eq!(scripts.get(row, "inline_sha256"), hash, "{url}");
    }
}

#[test]
fn compressed_responses_are_decoded() {
    let server = TestServer::start();
    let urls: Vec<String> = ["gzip", "deflate", "br", "zstd"]
        .iter()
        .map(|e| server.url(&format!("/compressed/{e}")))
        .collect();
    let (code, pages, scripts) = scrape(&urls, &["--inline-text"]);
    assert_eq!(code, 0);
    for url in &urls {
        assert_eq!(
            pages.for_page(url, "bytes"),
            COMPRESSED_PAGE.len().to_string(),
            "{url}"
        );
        let rows = scripts.rows_where("page_url", url);
        assert_eq!(rows.len(), 2, "{url}");
        assert_eq!(scripts.get(rows[0], "src"), server.url("/packed.js"));
        assert_eq!(scripts.get(rows[1], "inline_text"), "unpacked()");
    }
}

#[test]
fn compression_bombs_stop_at_max_body_with_bounded_memory() {
    let server = TestServer::start();
    let urls = [server.url("/bomb/gzip"), server.url("/bomb/zstd")];
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let mut child = run.spawn_quiet(&[
        &list,
        "--max-body",
        "4MiB",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ]);
    let (code, peak_kib) =
        crate::support::wait_within_peak(&mut child, std::time::Duration::from_secs(60))
            .expect("the run ends");
    let (pages, scripts) = (
        Table::read(&run.path("pages.csv")),
        Table::read(&run.path("scripts.csv")),
    );
    assert_eq!(code, 1);
    for url in &urls {
        assert_eq!(pages.for_page(url, "error"), "body_too_large", "{url}");
        // Read up to the limit; the memory check below shows it stopped.
        assert_eq!(pages.for_page(url, "bytes"), (4u64 << 20).to_string());
    }
    assert!(scripts.rows.is_empty());
    // The run never held a bomb: its peak memory is far below one
    // decompressed body.
    assert!(peak_kib > 0, "no reading of the run's memory");
    let peak_bytes = peak_kib * 1024;
    assert!(
        peak_bytes < BOMB_BYTES / 4,
        "the run peaked at {peak_bytes} bytes"
    );
}

#[test]
fn transient_failures_are_retried_and_counted() {
    let server = TestServer::start();
    let refused = refused_url();
    let urls = [
        server.url("/flaky/2/a"),  // 503, 503, then a page: 3 attempts
        server.url("/flaky/5/b"),  // still 503 after the last retry
        server.url("/status/404"), // a definite answer: never retried
        server.url("/retry-after/1/c"),
        server.url("/retry-after/date+1/d"),
        server.url("/retry-after/120/e"), // longer than --max-retry-wait
        refused.clone(),
    ];
    let (code, pages, scripts) = scrape(&urls, &["--max-retry-wait", "5"]);
    assert_eq!(code, 1);
    let outcome = |u: &str| {
        (
            pages.for_page(u, "error"),
            pages.for_page(u, "status"),
            pages.for_page(u, "attempts"),
        )
    };
    assert_eq!(outcome(&urls[0]), ("", "200", "3"));
    assert_eq!(outcome(&urls[1]), ("http_status", "503", "3"));
    assert_eq!(outcome(&urls[2]), ("http_status", "404", "1"));
    assert_eq!(outcome(&urls[3]), ("", "200", "2"));
    assert_eq!(outcome(&urls[4]), ("", "200", "2"));
    assert_eq!(outcome(&urls[5]), ("http_status", "429", "1"));
    assert!(
        pages
            .for_page(&urls[5], "error_detail")
            .contains("exceeds --max-retry-wait")
    );
    assert_eq!(outcome(&refused), ("connect", "", "3"));
    assert_eq!(server.hits("/status/404"), 1);
    assert_eq!(server.hits("/flaky/5/b"), 3);
    // Retry-After was waited out, not raced: the page took at least 1 s.
    let waited: u64 = pages.for_page(&urls[3], "elapsed_ms").parse().unwrap();
    assert!(waited >= 1000, "waited {waited} ms");
    assert_eq!(scripts.rows.len(), 3);

    // --retries 0 turns retrying off.
    let (_, pages, _) = scrape(&[server.url("/flaky/1/f")], &["--retries", "0"]);
    assert_eq!(pages.get(0, "attempts"), "1");
    assert_eq!(pages.get(0, "error"), "http_status");
}

#[test]
fn hostile_nesting_fails_as_parse_limit_without_stalling_the_run() {
    let server = TestServer::start();
    // Nesting html5ever has to parse (the fast scan is unsure of what a
    // table does to it), and nesting the fast scan reads in one pass.
    let mut urls = vec![server.url("/deep/table-div"), server.url("/deep/table-ul")];
    let scanned = [server.url("/deep/div"), server.url("/deep/ul")];
    urls.extend(scanned.iter().cloned());
    urls.extend((0..40).map(|n| server.url(&format!("/gen/{n}"))));
    let (code, pages, scripts) = scrape(&urls, &["-c", "8"]);
    assert_eq!(code, 1);
    for url in &urls[..2] {
        assert_eq!(pages.for_page(url, "error"), "parse_limit", "{url}");
        assert_eq!(pages.for_page(url, "status"), "200");
    }
    assert_eq!(pages.rows_where("error", "").len(), 42);
    // The nesting the scan reads gets its exact rows.
    for url in &scanned {
        let rows = scripts.rows_where("page_url", url);
        let texts: Vec<&str> = rows
            .iter()
            .map(|&r| scripts.get(r, "inline_sha256"))
            .collect();
        assert_eq!(
            texts,
            [
                crate::support::sha256_sri("before()"),
                crate::support::sha256_sri("deep()")
            ],
            "{url}"
        );
    }
    assert!(
        scripts
            .column("page_url")
            .iter()
            .all(|p| p.contains("/gen/") || scanned.contains(&p.to_string()))
    );
}

fn proxy_replies(target: &str) -> Vec<u8> {
    // A proxy is sent the absolute URL; anything else is a direct request.
    let page = format!("<script src=\"/proxied.js\"></script><!-- {target} -->");
    let status = if target.starts_with("http://") {
        "200 OK"
    } else {
        "400 Bad Request"
    };
    format!("HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len()).into_bytes()
}

#[test]
fn proxies_from_the_flag_and_the_environment() {
    let proxy = RawServer::start(proxy_replies);
    let proxy_url = format!("http://{}", proxy.addr);
    // Never resolved: only the proxy sees this host name.
    let behind = "http://behind-the-proxy.test/page";
    let (code, pages, scripts) = scrape(&[behind], &["--proxy", &proxy_url, "--retries", "0"]);
    assert_eq!(code, 0, "{:?}", pages.rows);
    assert_eq!(
        scripts.get(0, "src"),
        "http://behind-the-proxy.test/proxied.js"
    );

    let run = Run::new();
    let list = run.urls("urls.txt", &[behind]);
    let out = run
        .command(&[&list, "-o", "s.csv", "-q"])
        .env("HTTP_PROXY", &proxy_url)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // NO_PROXY sends a host direct, with the flag too.
    let direct = refused_url();
    let list = run.urls("direct.txt", &[&direct]);
    let out = run
        .command(&[
            &list,
            "--pages",
            "p.csv",
            "-o",
            "s.csv",
            "-q",
            "--retries",
            "0",
            "--proxy",
            &proxy_url,
        ])
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(Table::read(&run.path("p.csv")).get(0, "error"), "connect");
}

#[test]
fn self_signed_certificates_fail_unless_insecure() {
    let server = RawServer::start_tls(raw_replies);
    let url = format!("https://{}/page", server.addr);
    let (code, pages, _) = scrape(&[&url], &[]);
    assert_eq!(code, 1);
    assert_eq!(pages.get(0, "error"), "tls");
    assert_eq!(
        pages.get(0, "attempts"),
        "1",
        "TLS failures are not retried"
    );

    let run = Run::new();
    let list = run.urls("urls.txt", &[&url]);
    let out = run.run(&[&list, "-k", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("warning: --insecure"), "{}", out.stderr);
    assert_eq!(
        Table::read(&run.path("s.csv")).get(0, "src"),
        format!("https://{}/a.js", server.addr)
    );
}

#[test]
fn robots_txt_is_obeyed_per_rfc_9309() {
    let rules = TestServer::start();
    rules.set_robots(200, "User-agent: *\nDisallow: /fixtures/\n\nUser-agent: scriptscrape\nDisallow: /fixtures/\nDisallow: /status/\n");
    let broken = TestServer::start_on("127.0.0.2");
    broken.set_robots(503, "down");
    let missing = TestServer::start_on("127.0.0.3"); // 404: all allowed
    let urls = [
        rules.url("/gen/1"),
        rules.url("/fixtures/kitchen-sink.html"),
        rules.url("/status/200"),
        broken.url("/gen/2"),
        broken.url("/gen/3"),
        missing.url("/gen/4"),
    ];
    let (code, pages, _) = scrape(&urls, &["--robots"]);
    assert_eq!(code, 1);
    let errors: Vec<&str> = urls.iter().map(|u| pages.for_page(u, "error")).collect();
    assert_eq!(
        errors,
        [
            "",
            "robots_disallowed",
            "robots_disallowed",
            "robots_disallowed",
            "robots_disallowed",
            ""
        ]
    );
    assert_eq!(pages.for_page(&urls[1], "attempts"), "0");
    assert!(
        pages
            .for_page(&urls[3], "error_detail")
            .contains("HTTP 503")
    );
    // Refused pages were never requested; robots.txt was fetched once per
    // host (the broken one with retries).
    assert_eq!(
        rules.hits("/fixtures/kitchen-sink.html") + rules.hits("/status/200"),
        0
    );
    assert_eq!(broken.hits("/gen/2") + broken.hits("/gen/3"), 0);
    assert_eq!(rules.hits("/robots.txt"), 1);
    assert_eq!(missing.hits("/robots.txt"), 1);

    // The group for our product token applies; another agent gets '*'.
    let (_, pages, _) = scrape(
        &[rules.url("/status/204")],
        &["--robots", "--user-agent", "other-bot/1.0"],
    );
    assert_eq!(pages.get(0, "error"), "");
    // Without --robots, robots.txt is not asked for.
    let quiet = TestServer::start();
    let (code, _, _) = scrape(&[quiet.url("/gen/1")], &[]);
    assert_eq!(code, 0);
    assert_eq!(quiet.hits("/robots.txt"), 0);
}

#[test]
fn crawl_delay_spaces_requests() {
    // Timed at the server: no browser may starve it meanwhile.
    let _quiet = crate::support::quiet_machine();
    let server = TestServer::start();
    server.set_robots(200, "User-agent: *\nCrawl-delay: 0.3\n");
    let urls: Vec<String> = (0..4).map(|n| server.url(&format!("/gen/{n}"))).collect();
    let (code, _, _) = scrape(&urls, &["--robots"]);
    assert_eq!(code, 0);
    let arrivals = server.arrivals("/gen/");
    assert_eq!(arrivals.len(), 4);
    for pair in arrivals.windows(2) {
        // A lower bound only: a slow machine makes gaps longer, never shorter.
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(290),
            "{:?} apart",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn http2_is_used_when_the_server_offers_it() {
    let server = H2Server::start();
    let urls: Vec<String> = (0..3)
        .map(|i| format!("https://{}/page/{i}", server.addr))
        .collect();
    let (code, pages, scripts) = scrape(&urls, &["-k"]);
    assert_eq!(code, 0, "{:?}", pages.rows);
    let srcs = scripts.column("src");
    assert_eq!(srcs.len(), 3);
    assert!(srcs.iter().all(|s| s.ends_with("/HTTP/2.0.js")), "{srcs:?}");
}

#[test]
fn a_redirect_tells_the_next_host_nothing_of_where_it_came_from() {
    let first = TestServer::start();
    let second = TestServer::start_on("127.0.0.2");
    let via = crate::support::redirect_via(&first, &second.url("/headers"));
    let (code, _, _) = scrape(&[format!("{via}&secret=1")], &[]);
    assert_eq!(code, 0);
    assert!(second.last_headers().get("referer").is_none());

    // Framing headers are the client's to set.
    let run = Run::new();
    let out =
        crate::support::scrape_into(&run, &[first.url("/gen/1")], &["-H", "Content-Length: 5"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("content-length"), "{}", out.stderr);
    assert_eq!(first.hits("/gen/1"), 0);
}
