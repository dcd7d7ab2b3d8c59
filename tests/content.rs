//! `--fetch-scripts`: the content behind each external script, fetched once
//! per run, and `integrity_ok`.

use std::time::Duration;

use crate::support::{Run, Table, TestServer, sha256_sri as sha256, sha384_sri as sha384};

/// The rows of `table` whose `src` ends with `tail`.
fn rows_for(table: &Table, tail: &str) -> Vec<usize> {
    (0..table.rows.len())
        .filter(|&i| table.get(i, "src").ends_with(tail))
        .collect()
}

const A: &str = "window.a = 1;\n";
const B: &str = "console.log('b');\n";

#[test]
fn each_script_is_fetched_once_per_run_and_its_content_described() {
    let server = TestServer::start();
    server.set_script("a.js", A, Duration::ZERO);
    server.set_script("b.js", B, Duration::from_millis(50));
    let good = sha384(A);
    let wrong = sha384("something else");
    let mut urls = Vec::new();
    for i in 0..30 {
        // The same two scripts on every page (b.js twice on some, once
        // with a fragment), SRI right on some pages and wrong on others.
        let integrity = if i % 2 == 0 { &good } else { &wrong };
        let extra = if i % 5 == 0 {
            "<script src=/js/b.js#again></script>"
        } else {
            ""
        };
        server.set_page(
            &format!("p{i}"),
            &format!(
                "<script src=/js/a.js integrity='{integrity}' crossorigin></script>\
                 <script>inline({i})</script><script src=/js/b.js></script>{extra}"
            ),
        );
        urls.push(server.url(&format!("/page/p{i}")));
    }
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[&list, "-o", "scripts.csv", "--fetch-scripts", "-c", "8"],
        None,
    );
    assert!(out.code == 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("96 scripts (2 distinct scripts fetched, 0 without content)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        server.hits("/js/a.js"),
        1,
        "a script on 30 pages is one request"
    );
    assert_eq!(server.hits("/js/b.js"), 1);

    let table = Table::read(&run.path("scripts.csv"));
    let a_rows = rows_for(&table, "/js/a.js");
    assert_eq!(a_rows.len(), 30);
    for &i in &a_rows {
        assert_eq!(table.get(i, "content_status"), "200");
        assert_eq!(table.get(i, "content_error"), "");
        assert_eq!(table.get(i, "content_bytes"), A.len().to_string());
        assert_eq!(table.get(i, "content_sha384"), good);
        let expected = if table.get(i, "integrity") == good {
            "true"
        } else {
            "false"
        };
        assert_eq!(table.get(i, "integrity_ok"), expected);
    }
    let b_rows = rows_for(&table, "/js/b.js");
    assert_eq!(b_rows.len(), 30);
    for &i in b_rows.iter().chain(&rows_for(&table, "#again")) {
        assert_eq!(table.get(i, "content_sha384"), sha384(B));
        // No integrity attribute: nothing to check.
        assert_eq!(table.get(i, "integrity_ok"), "");
    }
    for i in table.rows_where("inline", "true") {
        for column in [
            "content_status",
            "content_error",
            "content_bytes",
            "content_sha384",
            "integrity_ok",
        ] {
            assert_eq!(table.get(i, column), "", "{column} of an inline script");
        }
    }
}

#[test]
fn the_page_is_the_referer_and_failures_are_kinds() {
    let server = TestServer::start();
    server.set_script("ok.js", A, Duration::ZERO);
    let page = |scripts: &str| format!("<html><head>{scripts}</head></html>");
    server.set_page(
        "one",
        &page(
            "<script src=/js/ok.js integrity='sha256-AAAA'></script>\
             <script src=/js/missing.js integrity='sha384-AAAA'></script>\
             <script src=/big/4000></script>\
             <script src=/flaky/1/s></script>",
        ),
    );
    let run = Run::new();
    let page_url = server.url("/page/one");
    let list = run.urls("urls.txt", &[&page_url]);
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--fetch-scripts",
            "--max-script-body",
            "1K",
            "--retries",
            "1",
            "--stats",
            "stats.json",
        ],
        None,
    );
    assert!(out.code == 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "(4 distinct scripts fetched, 2 without content: 1 http_status, 1 body_too_large)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(server.referers("/js/ok.js"), [Some(server.url("/"))]);
    let table = Table::read(&run.path("scripts.csv"));
    let row = |tail: &str| rows_for(&table, tail)[0];
    let ok = row("/js/ok.js");
    assert_eq!(table.get(ok, "integrity_ok"), "false");
    let missing = row("/js/missing.js");
    assert_eq!(table.get(missing, "content_status"), "404");
    assert_eq!(table.get(missing, "content_error"), "http_status");
    assert_eq!(table.get(missing, "content_sha384"), "");
    assert_eq!(table.get(missing, "integrity_ok"), "", "unknown, not false");
    let big = row("/big/4000");
    assert_eq!(table.get(big, "content_error"), "body_too_large");
    assert_eq!(table.get(big, "content_bytes"), "1024");
    assert_eq!(table.get(big, "content_sha384"), "");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("stats.json")).unwrap()).unwrap();
    assert_eq!(
        stats["script_content"],
        serde_json::json!({"fetched": 4, "failed": 2, "over_limit": 0,
            "bytes": A.len() + 1024 + "<script>recovered()</script>".len(),
            "errors": {"http_status": 1, "body_too_large": 1}})
    );
    // A 503 then the script: retried as a page would be.
    let flaky = row("/flaky/1/s");
    assert_eq!(table.get(flaky, "content_status"), "200");
    assert_eq!(table.get(flaky, "content_error"), "");
    assert_eq!(server.hits("/flaky/1/s"), 2);
}

#[test]
fn scripts_obey_robots_txt_and_the_request_limits() {
    let server = TestServer::start();
    server.set_robots(200, "User-agent: *\nDisallow: /js/private\n");
    let mut urls = Vec::new();
    for i in 0..12 {
        server.set_script(&format!("s{i}.js"), A, Duration::from_millis(30));
        server.set_page(
            &format!("p{i}"),
            &format!(
                "<script src=/js/s{i}.js></script><script src=/js/s{}.js></script>\
                 <script src=/js/private.js></script>",
                (i + 1) % 12
            ),
        );
        urls.push(server.url(&format!("/page/p{i}")));
    }
    server.set_script("private.js", B, Duration::ZERO);
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--fetch-scripts",
            "--robots",
            "-c",
            "4",
            "--per-host",
            "2",
        ],
        None,
    );
    assert!(out.code == 0, "{}", out.stderr);
    assert_eq!(server.hits("/js/private.js"), 0);
    assert!(
        server.max_in_flight() <= 2,
        "--per-host 2 holds for scripts and pages together: {}",
        server.max_in_flight()
    );
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 36);
    for i in rows_for(&table, "/js/private.js") {
        assert_eq!(table.get(i, "content_error"), "robots_disallowed");
        assert_eq!(table.get(i, "content_status"), "");
    }
    for i in 0..12 {
        assert_eq!(server.hits(&format!("/js/s{i}.js")), 1);
    }
}

#[test]
fn many_pages_waiting_on_slow_scripts_all_arrive_in_order() {
    // More pages than the scripts stage holds before pages stop starting
    // (64 at -c 2), each with a script of its own: nothing may deadlock.
    let server = TestServer::start();
    let mut urls = Vec::new();
    for i in 0..150 {
        server.set_script(
            &format!("s{i}.js"),
            &format!("s({i})"),
            Duration::from_millis(5),
        );
        server.set_page(
            &format!("p{i}"),
            &format!("<script src=/js/s{i}.js></script><script src=/js/shared.js></script>"),
        );
        urls.push(server.url(&format!("/page/p{i}")));
    }
    server.set_script("shared.js", A, Duration::from_millis(200));
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
            "--fetch-scripts",
            "-c",
            "2",
            "--ordered",
        ],
        None,
    );
    assert!(out.code == 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 300);
    let pages: Vec<&str> = table.column("page_url").into_iter().step_by(2).collect();
    assert_eq!(pages, urls, "--ordered keeps the input's order");
    for i in 0..150 {
        let own = rows_for(&table, &format!("/js/s{i}.js"))[0];
        assert_eq!(table.get(own, "content_sha384"), sha384(&format!("s({i})")));
    }
    assert_eq!(server.hits("/js/shared.js"), 1);
    let report = Table::read(&run.path("pages.csv"));
    assert_eq!(report.rows_where("status", "200").len(), 150);
}

#[test]
fn without_the_option_no_script_is_requested_and_the_columns_are_empty() {
    let server = TestServer::start();
    server.set_script("a.js", A, Duration::ZERO);
    server.set_page(
        "p",
        &format!("<script src=/js/a.js integrity='{}'></script>", sha256(A)),
    );
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/page/p")]);
    let out = run.run(&[&list, "-o", "scripts.csv"], None);
    assert!(out.code == 0, "{}", out.stderr);
    assert_eq!(server.hits("/js/a.js"), 0);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 1);
    for column in ["content_status", "content_sha384", "integrity_ok"] {
        assert_eq!(table.get(0, column), "", "{column}");
    }
}

#[test]
fn a_stop_leaves_pages_waiting_on_scripts_unwritten_and_resume_finishes_them() {
    use crate::support::{signal, wait_for_lines, wait_within};
    use std::process::Stdio;

    let server = TestServer::start();
    server.set_script("quick.js", A, Duration::ZERO);
    server.set_script("slow.js", B, Duration::from_secs(20));
    let mut urls = Vec::new();
    for i in 0..10 {
        let script = if i < 4 { "quick" } else { "slow" };
        server.set_page(
            &format!("p{i}"),
            &format!("<script src=/js/{script}.js></script>"),
        );
        urls.push(server.url(&format!("/page/p{i}")));
    }
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let args = [
        list.as_str(),
        "--fetch-scripts",
        "--grace",
        "0.5",
        "-o",
        "scripts.csv",
        "--pages",
        "pages.csv",
    ];
    let mut child = run
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&run.path("pages.csv.part"), 4);
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(10)).expect("ends after its grace");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM: 6 URLs not done"),
        "{stderr}"
    );
    let pages = Table::read(&run.path("pages.csv.part"));
    assert_eq!(
        pages.rows.len(),
        4,
        "only the pages whose scripts are known"
    );

    server.set_script("slow.js", B, Duration::ZERO);
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let out = run.run(&resumed, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 10);
    for i in rows_for(&table, "/js/slow.js") {
        assert_eq!(table.get(i, "content_sha384"), sha384(B));
    }
    assert_eq!(server.hits("/js/quick.js"), 1, "not fetched again");
}

#[test]
fn the_pages_policy_is_reported_and_each_script_checked_against_it() {
    let server = TestServer::start();
    let origin = server.url("");
    let inline = "ok()";
    // Header policy: own scripts and one CDN, nonce n1, one inline hash;
    // a meta adds a second policy (both must allow) for later scripts.
    let header = format!(
        "script-src 'self' https://cdn.example 'nonce-n1' '{}'; object-src 'none'",
        sha256(inline)
    );
    let html = format!(
        "<html><head>\
         <script src=/app.js></script>\
         <script src=https://cdn.example/lib.js></script>\
         <script src=https://evil.example/x.js></script>\
         <script nonce=n1>anything()</script>\
         <script nonce=wrong>anything()</script>\
         <script>{inline}</script>\
         <script type=application/ld+json>{{}}</script>\
         <meta http-equiv=Content-Security-Policy content=\"script-src 'self' https://cdn.example\">\
         <script src=/late.js></script>\
         <script src=https://cdn.example/late.js></script>\
         <script nonce=n1>late()</script>\
         </head><body></body></html>"
    );
    server.set_csp_page("strict", &html, &[&header, "ro:script-src 'none'"]);
    server.set_csp_page("none", "<script>x()</script>", &[]);
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[server.url("/csp/strict"), server.url("/csp/none")],
    );
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
            "--ordered",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = Table::read(&run.path("pages.csv"));
    assert_eq!(
        report.get(0, "csp"),
        format!(
            "{}, script-src 'self' https://cdn.example",
            header.replace("'nonce-n1'", "'nonce-***'")
        ),
        "headers then metas, Report-Only left out, the nonce masked"
    );
    assert_eq!(report.get(1, "csp"), "");
    let table = Table::read(&run.path("scripts.csv"));
    let allowed: Vec<&str> = table.column("csp_allowed");
    assert_eq!(
        allowed,
        [
            "true", "true", "false", "true", "false", "true", "", // before the meta
            "true", "true", "false", // the meta's policy has no nonce
            "",      // the page without a policy
        ],
        "{origin}"
    );
    // The nonce's value is never written, only its presence.
    for output in ["scripts.csv", "pages.csv"] {
        let written = std::fs::read_to_string(run.path(output)).unwrap();
        assert!(
            !written.contains("n1") && !written.contains("wrong"),
            "{output}"
        );
    }
    assert_eq!(table.get(3, "nonce_present"), "true");
}

#[test]
fn another_origin_gets_only_the_pages_origin_and_credentials_are_never_written() {
    let page_server = TestServer::start();
    let cdn = TestServer::start_on("127.0.0.2");
    cdn.set_script("lib.js", A, Duration::ZERO);
    page_server.set_script("own.js", B, Duration::ZERO);
    let cdn_src = cdn
        .url("/js/lib.js")
        .replace("http://", "http://user:s3cret@");
    page_server.set_page(
        "pay",
        &format!("<script src='{cdn_src}'></script><script src=/js/own.js></script>"),
    );
    let run = Run::new();
    let page = format!("{}?order=42&session=abc", page_server.url("/page/pay"));
    let list = run.urls("urls.txt", &[&page]);
    let out = run.run(
        &[&list, "-o", "scripts.csv", "--fetch-scripts", "-vv"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The query (an order, a session) never leaves: only the origin, also
    // to the page's own origin, whose scripts may redirect anywhere.
    assert_eq!(cdn.referers("/js/lib.js"), [Some(page_server.url("/"))]);
    assert_eq!(
        page_server.referers("/js/own.js"),
        [Some(page_server.url("/"))]
    );
    let written = std::fs::read_to_string(run.path("scripts.csv")).unwrap();
    assert!(!written.contains("s3cret") && !out.stderr.contains("s3cret"));
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(
        table.get(0, "src"),
        cdn.url("/js/lib.js").replace("http://", "http://***@")
    );
    assert_eq!(table.get(0, "content_sha384"), sha384(A));
}

#[test]
fn a_page_naming_too_many_scripts_has_only_its_share_fetched() {
    let server = TestServer::start();
    let mut html = String::new();
    for i in 0..5 {
        server.set_script(&format!("s{i}.js"), A, Duration::ZERO);
        html.push_str(&format!("<script src=/js/s{i}.js></script>"));
    }
    server.set_page("many", &html);
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/page/many")]);
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--fetch-scripts",
            "--max-scripts-per-page",
            "2",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let fetched: usize = (0..5).map(|i| server.hits(&format!("/js/s{i}.js"))).sum();
    assert_eq!(fetched, 2);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows_where("content_status", "200").len(), 2);
    assert_eq!(table.rows_where("content_error", "script_limit").len(), 3);
    assert!(
        out.stderr
            .contains("; 3 scripts not fetched (--max-scripts-per-page))"),
        "{}",
        out.stderr
    );
}
