//! `--render`: each page also run in headless Chromium, and every script
//! that ran a row: inserted ones, modules, frames, each with the script
//! that brought it in; what a page that never settles, crashes or eats
//! memory reports; the crawl's private-network rule applied to the
//! browser; and no browser process outliving the run. Chromium is
//! required: without it these tests fail, saying what to install.

use std::time::Duration;

use crate::support::render::{Spawned, render_into, render_with_env, wait_gone};
use crate::support::{
    Run, Table, TestServer, scrape_into, sha256_sri as sha256, sha384_sri as sha384, signal,
    wait_within,
};

/// Inline code that inserts the external script `src` the way tag
/// managers do.
fn insert(src: &str) -> String {
    format!(
        "var s = document.createElement('script'); s.src = '{src}'; document.head.appendChild(s);"
    )
}

/// A page with `head` in its head and `body` in its body.
fn page(head: &str, body: &str) -> String {
    format!("<!doctype html><html><head>{head}</head><body>{body}</body></html>")
}

/// `http://localhost:PORT{path}`: the test server under a second host
/// name, another site than 127.0.0.1 for the browser.
fn localhost(server: &TestServer, path: &str) -> String {
    format!("http://localhost:{}{path}", server.addr.port())
}

/// The one row of `table` whose `column` is `value`.
fn one(table: &Table, column: &str, value: &str) -> usize {
    let rows = table.rows_where(column, value);
    assert_eq!(
        rows.len(),
        1,
        "one row with {column} = {value:?} expected, in {table:#?}"
    );
    rows[0]
}

/// Checks each `(column, value)` of row `row`, naming every mismatch.
fn check(table: &Table, row: usize, expected: &[(&str, &str)]) {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(column, value)| table.get(row, column) != *value)
        .map(|(column, value)| format!("{column}: {:?}, not {value:?}", table.get(row, column)))
        .collect();
    assert!(
        wrong.is_empty(),
        "row {row}: {}\nrow: {:?}\nheaders: {:?}",
        wrong.join("; "),
        table.rows[row],
        table.headers
    );
}

/// The rows of `page` have the indexes 0 to n-1, the static ones first.
fn check_indexes(table: &Table, page: &str) {
    let rows = table.rows_where("page_url", page);
    let mut indexes: Vec<(bool, usize)> = rows
        .iter()
        .map(|&r| {
            let index = table.get(r, "index").parse().expect("an index");
            (table.get(r, "origin") != "static", index)
        })
        .collect();
    indexes.sort_by_key(|&(_, index)| index);
    let numbers: Vec<usize> = indexes.iter().map(|&(_, i)| i).collect();
    assert_eq!(numbers, (0..rows.len()).collect::<Vec<_>>(), "{page}");
    assert!(
        indexes.windows(2).all(|w| w[0].0 <= w[1].0),
        "static rows come first: {indexes:?}"
    );
}

/// Settles quickly: these pages are done once loaded.
const QUICK: [&str; 4] = ["--render-concurrency", "1", "--render-idle", "300"];

const INSERTED: &str = "document.title += ' inserted';\n";

/// A script an inline script inserts (createElement, appendChild) is a row
/// of its own: `inserted`, its URL, the inline script named by its hash as
/// initiator, the hash of the code run and the response's status; and the
/// browser is given the fetched page rather than sent for it again.
#[test]
fn a_script_inserted_by_an_inline_script_names_it_as_initiator() {
    let server = TestServer::start();
    server.set_script("inserted.js", INSERTED, Duration::ZERO);
    let loader = insert("/js/inserted.js");
    server.set_page("one", &page(&format!("<script>{loader}</script>"), ""));
    let url = server.url("/page/one");
    let run = Run::new();

    let out = render_into(&run, &[&url], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/page/one"), 1, "the page is requested once");
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 2, "{table:#?}");
    let loader_row = one(&table, "origin", "static");
    let loader_hash = sha256(&loader);
    check(
        &table,
        loader_row,
        &[
            ("index", "0"),
            ("inline", "true"),
            ("initiator", "parser"),
            ("inline_sha256", &loader_hash),
            ("content_sha384", &sha384(&loader)),
            ("frame_url", ""),
        ],
    );
    let inserted = one(&table, "origin", "inserted");
    let initiator = format!("inline:{}", table.get(loader_row, "inline_sha256"));
    check(
        &table,
        inserted,
        &[
            ("page_url", &url),
            ("final_url", &url),
            ("index", "1"),
            ("src", &server.url("/js/inserted.js")),
            ("inline", "false"),
            ("initiator", &initiator),
            ("content_status", "200"),
            ("content_bytes", &INSERTED.len().to_string()),
            ("content_sha384", &sha384(INSERTED)),
            ("host", "127.0.0.1"),
            ("third_party", "false"),
            ("frame_url", ""),
            // Not known from the protocol.
            ("type", ""),
            ("async", ""),
            ("position", ""),
        ],
    );
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&url, "error"), "");
}

const WRITTEN: &str = "document.title += ' written';\n";
const WRITTEN_INLINE: &str = "document.title += \" written-inline\";";

/// Scripts written with document.write, external and inline, are both
/// `inserted` rows: the external one by its URL and content, the inline
/// one by the hash of its text.
#[test]
fn scripts_written_with_document_write_are_inserted() {
    let server = TestServer::start();
    server.set_script("written.js", WRITTEN, Duration::ZERO);
    let writer = format!(
        "document.write('<script src=\"/js/written.js\"><\\/script>'); \
         document.write('<script>{WRITTEN_INLINE}<\\/script>');"
    );
    server.set_page("writes", &page(&format!("<script>{writer}</script>"), ""));
    let url = server.url("/page/writes");
    let run = Run::new();

    let out = render_into(&run, &[&url], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 3, "{table:#?}");
    let static_row = one(&table, "origin", "static");
    check(&table, static_row, &[("inline_sha256", &sha256(&writer))]);
    let external = one(&table, "src", &server.url("/js/written.js"));
    check(
        &table,
        external,
        &[
            ("origin", "inserted"),
            ("inline", "false"),
            ("content_status", "200"),
            ("content_sha384", &sha384(WRITTEN)),
        ],
    );
    let inline = one(&table, "inline_sha256", &sha256(WRITTEN_INLINE));
    check(
        &table,
        inline,
        &[
            ("origin", "inserted"),
            ("inline", "true"),
            ("src", ""),
            ("inline_bytes", &WRITTEN_INLINE.len().to_string()),
            ("content_sha384", &sha384(WRITTEN_INLINE)),
        ],
    );
    check_indexes(&table, &url);
}

/// A tag manager's chain, three deep and across two hosts: the inline
/// snippet loads gtm.js, which loads vendor.js from another host, which
/// loads vendor2.js; each row names the script whose code inserted it.
#[test]
fn a_loader_chain_names_each_link_by_the_script_before_it() {
    let server = TestServer::start();
    let vendor_url = localhost(&server, "/js/vendor.js");
    let gtm = format!("document.title += ' gtm'; {}\n", insert(&vendor_url));
    // Relative, so resolved against the page: the initiator is vendor.js
    // for its code, not for its host.
    let vendor = format!(
        "document.title += ' vendor'; {}\n",
        insert("/js/vendor2.js")
    );
    let vendor2 = "document.title += ' vendor2';\n";
    server.set_script("gtm.js", &gtm, Duration::ZERO);
    server.set_script("vendor.js", &vendor, Duration::ZERO);
    server.set_script("vendor2.js", vendor2, Duration::ZERO);
    let snippet = format!("(function () {{ {} }})();", insert("/js/gtm.js"));
    server.set_page(
        "chain",
        &page(&format!("<script>{snippet}</script>"), "<p>shop</p>"),
    );
    let url = server.url("/page/chain");
    let run = Run::new();

    let out = render_into(&run, &[&url], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 4, "{table:#?}");
    let snippet_row = one(&table, "origin", "static");
    let by_snippet = format!("inline:{}", table.get(snippet_row, "inline_sha256"));
    assert_eq!(by_snippet, format!("inline:{}", sha256(&snippet)));

    let gtm_url = server.url("/js/gtm.js");
    let gtm_row = one(&table, "src", &gtm_url);
    check(
        &table,
        gtm_row,
        &[
            ("origin", "inserted"),
            ("index", "1"),
            ("initiator", &by_snippet),
            ("content_sha384", &sha384(&gtm)),
            ("third_party", "false"),
        ],
    );
    let vendor_row = one(&table, "src", &vendor_url);
    check(
        &table,
        vendor_row,
        &[
            ("origin", "inserted"),
            ("index", "2"),
            ("initiator", &gtm_url),
            ("content_status", "200"),
            ("content_sha384", &sha384(&vendor)),
            ("host", "localhost"),
            ("third_party", "true"),
        ],
    );
    let vendor2_row = one(&table, "src", &server.url("/js/vendor2.js"));
    check(
        &table,
        vendor2_row,
        &[
            ("origin", "inserted"),
            ("index", "3"),
            ("initiator", &vendor_url),
            ("content_sha384", &sha384(vendor2)),
            ("third_party", "false"),
        ],
    );
}

const MAIN: &str = "import { dep } from './dep.mjs';\n\
                    dep();\n\
                    import('./lazy.mjs').then(function (m) { m.lazy(); });\n";
const DEP: &str = "import { leaf } from './leaf.mjs';\n\
                   export function dep() { leaf(); document.title += ' dep'; }\n";
const LEAF: &str = "export function leaf() { document.title += ' leaf'; }\n";
const LAZY: &str = "export function lazy() { document.title += ' lazy'; }\n";

/// A module graph: the module element is `static`; what it imports,
/// statically (two deep) or with import(), is `import`, each naming the
/// module that imported it. The test server's `text/javascript` is the
/// MIME type modules require.
#[test]
fn imported_modules_name_the_module_that_imported_them() {
    let server = TestServer::start();
    for (name, body) in [
        ("main.mjs", MAIN),
        ("dep.mjs", DEP),
        ("leaf.mjs", LEAF),
        ("lazy.mjs", LAZY),
    ] {
        server.set_script(name, body, Duration::ZERO);
    }
    server.set_page(
        "modules",
        &page("<script type=\"module\" src=\"/js/main.mjs\"></script>", ""),
    );
    let url = server.url("/page/modules");
    let run = Run::new();

    let out = render_into(&run, &[&url], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 4, "{table:#?}");
    let main_url = server.url("/js/main.mjs");
    let dep_url = server.url("/js/dep.mjs");
    let main = one(&table, "src", &main_url);
    check(
        &table,
        main,
        &[
            ("origin", "static"),
            ("index", "0"),
            ("type", "module"),
            ("initiator", "parser"),
            ("content_sha384", &sha384(MAIN)),
        ],
    );
    for (name, body, importer) in [
        ("dep.mjs", DEP, &main_url),
        ("leaf.mjs", LEAF, &dep_url),
        ("lazy.mjs", LAZY, &main_url),
    ] {
        let row = one(&table, "src", &server.url(&format!("/js/{name}")));
        check(
            &table,
            row,
            &[
                ("origin", "import"),
                ("inline", "false"),
                ("initiator", importer),
                ("content_status", "200"),
                ("content_sha384", &sha384(body)),
                ("frame_url", ""),
            ],
        );
    }
    check_indexes(&table, &url);
}

/// Every script that runs in an iframe, same-origin or cross-origin
/// (another site, so another renderer process), is a `frame` row naming
/// the frame's document; the frame's own HTML scripts have the parser as
/// initiator, the one its inline script inserts names that script.
#[test]
fn scripts_in_frames_name_the_frame() {
    let server = TestServer::start();
    let frames = [
        ("same", server.url("/page/same")),
        ("cross", localhost(&server, "/page/cross")),
    ];
    let mut inline = Vec::new();
    for (name, _) in &frames {
        let loader = format!(
            "document.title = '{name}'; {}",
            insert(&format!("/js/{name}-inserted.js"))
        );
        server.set_page(
            name,
            &page(
                &format!("<script src=\"/js/{name}-static.js\"></script><script>{loader}</script>"),
                "",
            ),
        );
        server.set_script(
            &format!("{name}-static.js"),
            &format!("window.{name}Static = 1;\n"),
            Duration::ZERO,
        );
        server.set_script(
            &format!("{name}-inserted.js"),
            &format!("window.{name}Inserted = 1;\n"),
            Duration::ZERO,
        );
        inline.push(loader);
    }
    server.set_page(
        "framed",
        &page(
            "",
            &format!(
                "<iframe src=\"/page/same\"></iframe><iframe src=\"{}\"></iframe>",
                frames[1].1
            ),
        ),
    );
    let url = server.url("/page/framed");
    let run = Run::new();

    let out = render_into(&run, &[&url], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 6, "{table:#?}");
    for ((name, frame_url), loader) in frames.iter().zip(&inline) {
        // Relative srcs resolve against the frame's document.
        let base = frame_url.trim_end_matches(&format!("/page/{name}"));
        let third_party = if *name == "cross" { "true" } else { "false" };
        let rows = table.rows_where("frame_url", frame_url);
        assert_eq!(rows.len(), 3, "{name}: {table:#?}");
        let static_row = one(&table, "src", &format!("{base}/js/{name}-static.js"));
        check(
            &table,
            static_row,
            &[
                ("origin", "frame"),
                ("frame_url", frame_url),
                ("initiator", "parser"),
                ("content_status", "200"),
                (
                    "content_sha384",
                    &sha384(&format!("window.{name}Static = 1;\n")),
                ),
                ("third_party", third_party),
            ],
        );
        let inline_row = one(&table, "inline_sha256", &sha256(loader));
        check(
            &table,
            inline_row,
            &[
                ("origin", "frame"),
                ("frame_url", frame_url),
                ("inline", "true"),
                ("initiator", "parser"),
                ("content_sha384", &sha384(loader)),
            ],
        );
        let inserted = one(&table, "src", &format!("{base}/js/{name}-inserted.js"));
        check(
            &table,
            inserted,
            &[
                ("origin", "frame"),
                ("frame_url", frame_url),
                ("initiator", &format!("inline:{}", sha256(loader))),
                (
                    "content_sha384",
                    &sha384(&format!("window.{name}Inserted = 1;\n")),
                ),
            ],
        );
    }
    assert!(
        table.column("origin").iter().all(|o| *o == "frame"),
        "{table:#?}"
    );
}

/// A script a timer inserts is seen when it comes within --render-idle of
/// the load, and not waited for past it: the page is then done, without
/// error and without the late row.
#[test]
fn timers_count_while_the_page_is_not_idle() {
    let server = TestServer::start();
    server.set_script("timed.js", "window.timed = 1;\n", Duration::ZERO);
    let timer = |ms: u32| {
        page(
            &format!(
                "<script>setTimeout(function () {{ {} }}, {ms});</script>",
                insert("/js/timed.js")
            ),
            "",
        )
    };
    server.set_page("soon", &timer(200));
    server.set_page("late", &timer(4000));
    let timed = server.url("/js/timed.js");

    let soon = server.url("/page/soon");
    let run = Run::new();
    let out = render_into(
        &run,
        &[&soon],
        &["--render-concurrency", "1", "--render-idle", "1500"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    let row = one(&table, "src", &timed);
    check(&table, row, &[("origin", "inserted"), ("index", "1")]);

    let late = server.url("/page/late");
    let run = Run::new();
    let out = render_into(
        &run,
        &[&late],
        &["--render-concurrency", "1", "--render-idle", "300"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert!(table.rows_where("src", &timed).is_empty(), "{table:#?}");
    assert_eq!(table.rows.len(), 1, "only the script that set the timer");
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&late, "error"), "");
}

const BUSY: &str = "setInterval(function () { fetch('/js/tick'); }, 100);";
const BEFORE: &str = "document.title = 'stuck';";

/// A page that never settles, busy with a request every 100 ms or held
/// by a script that never finishes loading, is reported `render_timeout`
/// after --render-timeout, with the rows of what ran so far, and counts
/// as a failed page.
#[test]
fn a_page_that_never_settles_times_out_with_what_ran() {
    let server = TestServer::start();
    server.set_script("tick", "", Duration::ZERO);
    server.set_script("never.js", "window.never = 1;\n", Duration::from_secs(20));
    server.set_page("busy", &page(&format!("<script>{BUSY}</script>"), ""));
    server.set_page(
        "stuck",
        &page(
            &format!("<script>{BEFORE}</script><script src=\"/js/never.js\"></script>"),
            "",
        ),
    );
    let busy = server.url("/page/busy");
    let stuck = server.url("/page/stuck");
    let run = Run::new();

    let out = render_into(
        &run,
        &[&busy, &stuck],
        &[
            "--render-concurrency",
            "2",
            "--render-idle",
            "500",
            "--render-timeout",
            "3",
        ],
    );
    assert_eq!(out.code, 1, "failed pages: {}", out.stderr);
    assert!(server.hits("/js/tick") > 0, "the interval ran");
    let pages = Table::read(&run.path("pages.csv"));
    for page in [&busy, &stuck] {
        assert_eq!(pages.for_page(page, "error"), "render_timeout", "{page}");
    }
    let table = Table::read(&run.path("scripts.csv"));
    let busy_row = one(&table, "inline_sha256", &sha256(BUSY));
    check(
        &table,
        busy_row,
        &[("page_url", &busy), ("content_sha384", &sha384(BUSY))],
    );
    let before = one(&table, "inline_sha256", &sha256(BEFORE));
    check(
        &table,
        before,
        &[("page_url", &stuck), ("content_sha384", &sha384(BEFORE))],
    );
    // Every static element is a row; this one never ran, and says why.
    let never = one(&table, "src", &server.url("/js/never.js"));
    check(
        &table,
        never,
        &[
            ("origin", "static"),
            ("index", "1"),
            ("content_sha384", ""),
            ("content_error", "render_timeout"),
            ("content_bytes", ""),
        ],
    );
}

/// Starts a run on `list` that renders one page at a time and gives a
/// page `timeout` seconds.
fn spawn_render(run: &Run, name: &str, list: &str, timeout: &str) -> Spawned {
    let args = [
        list,
        "--render",
        "--render-concurrency",
        "1",
        "--render-idle",
        "300",
        "--render-timeout",
        timeout,
        "--pages",
        "pages.csv",
        "-o",
        "scripts.csv",
    ];
    Spawned::start(run, name, &args)
}

/// A tab whose renderer process is killed is reported `render_crashed`,
/// with the rows seen before, and the run goes on to render the next page
/// in a new tab.
#[test]
fn a_crashed_tab_is_reported_and_the_next_page_rendered() {
    let server = TestServer::start();
    // The first script runs, inserts one that runs and inserts the marker,
    // which never finishes loading: once the marker is asked for, both
    // have run, and the page is still loading.
    let first = insert("/js/before-crash.js");
    server.set_script(
        "before-crash.js",
        &insert("/js/crash-marker.js"),
        Duration::ZERO,
    );
    server.set_script("crash-marker.js", "", Duration::from_secs(20));
    server.set_page("crashes", &page(&format!("<script>{first}</script>"), ""));
    server.set_page("fine", &page("<script>window.fine = 1;</script>", ""));
    let crashes = server.url("/page/crashes");
    let fine = server.url("/page/fine");
    let run = Run::new();
    let list = run.urls("urls.txt", &[&crashes, &fine]);

    // Far past the crash: the page must end by it, not by its time.
    let mut running = spawn_render(&run, "crash", &list, "20");
    running.wait_for(
        Duration::from_secs(30),
        "the marker script requested",
        || server.hits("/js/crash-marker.js") > 0,
    );
    let renderers: Vec<_> = running
        .descendants()
        .into_iter()
        .filter(|p| p.cmdline().contains("--type=renderer"))
        .collect();
    assert!(
        !renderers.is_empty(),
        "no renderer process under scriptscrape: {:?}",
        running
            .descendants()
            .iter()
            .map(|p| p.cmdline())
            .collect::<Vec<_>>()
    );
    for renderer in &renderers {
        renderer.kill();
    }
    let status = wait_within(running.child(), Duration::from_secs(30)).expect("the run ends");
    assert_eq!(
        status.code(),
        Some(1),
        "a failed page: {}",
        running.stderr()
    );

    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&crashes, "error"), "render_crashed");
    assert_eq!(pages.for_page(&fine, "error"), "");
    let table = Table::read(&run.path("scripts.csv"));
    let first_row = one(&table, "inline_sha256", &sha256(&first));
    check(
        &table,
        first_row,
        &[("page_url", &crashes), ("origin", "static")],
    );
    let ran = one(&table, "src", &server.url("/js/before-crash.js"));
    check(
        &table,
        ran,
        &[("page_url", &crashes), ("origin", "inserted")],
    );
    let fine_row = one(&table, "page_url", &fine);
    check(
        &table,
        fine_row,
        &[
            ("origin", "static"),
            ("content_sha384", &sha384("window.fine = 1;")),
        ],
    );
}

/// A browser that dies (its main process killed) or hangs (stopped) is
/// started again: the page it was loading is `render_crashed`, with the
/// rows seen before, and the next page is rendered by the new browser.
#[test]
fn a_dead_browser_is_started_again() {
    // Far past the crash: the page must end by it, not by its time.
    browser_fails_then_recovers(libc::SIGKILL, "dead", "20");
}

/// See [`a_dead_browser_is_started_again`]: a stopped browser answers
/// nothing, and is taken for hung once the page's time is up.
#[test]
fn a_hung_browser_is_killed_and_started_again() {
    // The page's time ends, and closing its tab gets no answer.
    browser_fails_then_recovers(libc::SIGSTOP, "hung", "6");
}

fn browser_fails_then_recovers(sig: libc::c_int, name: &str, timeout: &str) {
    let server = TestServer::start();
    let first = insert("/js/browser-marker.js");
    server.set_script("browser-marker.js", "", Duration::from_secs(20));
    server.set_page("dies", &page(&format!("<script>{first}</script>"), ""));
    server.set_page("after", &page("<script>window.after = 1;</script>", ""));
    let dies = server.url("/page/dies");
    let after = server.url("/page/after");
    let run = Run::new();
    let list = run.urls("urls.txt", &[&dies, &after]);
    let mut running = spawn_render(&run, name, &list, timeout);
    running.wait_for(
        Duration::from_secs(30),
        "the marker script requested",
        || server.hits("/js/browser-marker.js") > 0,
    );
    // The browser itself: the one that speaks the DevTools protocol.
    let browsers: Vec<_> = running
        .descendants()
        .into_iter()
        .filter(|p| p.cmdline().contains("--remote-debugging-pipe"))
        .filter(|p| !p.cmdline().contains("--type="))
        .collect();
    assert_eq!(browsers.len(), 1, "one browser process under scriptscrape");
    browsers[0].signal(sig);
    let status = wait_within(running.child(), Duration::from_secs(60)).expect("the run ends");
    assert_eq!(
        status.code(),
        Some(1),
        "a failed page: {}",
        running.stderr()
    );
    assert!(!browsers[0].alive(), "the {name} browser is gone");

    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&dies, "error"), "render_crashed");
    assert!(
        pages.for_page(&dies, "error_detail").contains("restarted"),
        "{}",
        pages.for_page(&dies, "error_detail")
    );
    assert_eq!(pages.for_page(&after, "error"), "");
    let table = Table::read(&run.path("scripts.csv"));
    let first_row = one(&table, "inline_sha256", &sha256(&first));
    check(
        &table,
        first_row,
        &[("page_url", &dies), ("origin", "static")],
    );
    let after_row = one(&table, "page_url", &after);
    check(
        &table,
        after_row,
        &[
            ("origin", "static"),
            ("content_sha384", &sha384("window.after = 1;")),
        ],
    );
}

/// Grows the heap by about 1.5 MB every 10 ms (over 64 MB within a second
/// here). It stops at four million entries (the renderer then holds some
/// 600 MB), so that a binary that does not enforce --render-memory fails
/// this test by a timeout rather than by taking the machine's memory.
const HOG: &str = "var hoard = []; function grow() { \
                   for (var i = 0; i < 20000; i++) { hoard.push({ n: i, s: 'x' + i + Math.random() }); } \
                   if (hoard.length < 4000000) { setTimeout(grow, 10); } } grow();";

/// A page whose heap passes --render-memory is stopped and reported
/// `render_memory`, with its rows; the run goes on with the next page.
#[test]
fn a_page_over_the_memory_cap_is_stopped_and_the_run_goes_on() {
    let server = TestServer::start();
    // A request in flight the whole time: the page never settles, so it
    // ends by the cap or by the timeout.
    server.set_script("hold.js", "", Duration::from_secs(20));
    server.set_page(
        "hog",
        &page(
            &format!("<script src=\"/js/hold.js\" async></script><script>{HOG}</script>"),
            "",
        ),
    );
    server.set_page("next", &page("<script>window.next = 1;</script>", ""));
    let hog = server.url("/page/hog");
    let next = server.url("/page/next");
    let run = Run::new();

    let out = render_into(
        &run,
        &[&hog, &next],
        &[
            "--render-concurrency",
            "1",
            "--render-idle",
            "300",
            "--render-memory",
            "64",
            "--render-timeout",
            "15",
        ],
    );
    assert_eq!(out.code, 1, "a failed page: {}", out.stderr);
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&hog, "error"), "render_memory");
    assert_eq!(pages.for_page(&next, "error"), "");
    let table = Table::read(&run.path("scripts.csv"));
    let hog_row = one(&table, "inline_sha256", &sha256(HOG));
    check(&table, hog_row, &[("page_url", &hog), ("origin", "static")]);
    let next_row = one(&table, "page_url", &next);
    check(
        &table,
        next_row,
        &[("content_sha384", &sha384("window.next = 1;"))],
    );
}

/// A page that runs code made by `eval` in a loop, each a script of its
/// own, is closed at 10,000 scripts (`render_limit`) with those rows,
/// rather than fill the output until its time is up.
#[test]
fn a_page_running_endless_scripts_is_closed_at_the_limit() {
    let server = TestServer::start();
    // 50 at a time, so that the renderer answers between them: a page
    // that never lets it answer is the memory cap's and the hung-browser
    // check's (500 at a time made a loaded machine take it for hung).
    let looping = "var n = 0; (function more() { for (var k = 0; k < 50; k++) { \
                   eval('window.x' + (n++) + ' = 1;'); } setTimeout(more, 0); })();";
    server.set_page("loop", &page(&format!("<script>{looping}</script>"), ""));
    let looped = server.url("/page/loop");
    let run = Run::new();
    let out = render_into(&run, &[&looped], &QUICK);
    assert_eq!(out.code, 1, "a failed page: {}", out.stderr);
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&looped, "error"), "render_limit");
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows_where("page_url", &looped).len(), 10_000);
    let first = one(&table, "inline_sha256", &sha256("window.x0 = 1;"));
    check(&table, first, &[("origin", "inserted")]);
}

/// In a crawl, the browser is held to the crawl's private-network rule: a
/// page on the listed host may not make the browser reach another
/// loopback host (`localhost` here), by a script element, an inserted
/// script or fetch(); the scripts are rows with `private_address`.
#[test]
fn a_crawl_keeps_the_browser_out_of_private_hosts() {
    let server = TestServer::start();
    for name in ["evil.js", "evil-inserted.js", "evil-fetch"] {
        server.set_script(name, "window.evil = 1;\n", Duration::ZERO);
    }
    let evil = localhost(&server, "/js/evil.js");
    let evil_inserted = localhost(&server, "/js/evil-inserted.js");
    let code = format!(
        "fetch('{}').catch(function () {{}}); {}",
        localhost(&server, "/js/evil-fetch"),
        insert(&evil_inserted)
    );
    server.set_page(
        "second",
        &page(
            &format!("<script src=\"{evil}\"></script><script>{code}</script>"),
            "",
        ),
    );
    server.set_page(
        "seed",
        &page(
            "<script>window.seed = 1;</script>",
            "<a href=\"/page/second\">next</a>",
        ),
    );
    let seed = server.url("/page/seed");
    let second = server.url("/page/second");
    let run = Run::new();

    let out = render_into(
        &run,
        &[&seed],
        &[&QUICK[..], &["--depth", "1", "--stats", "stats.json"]].concat(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("stats.json")).expect("stats"))
            .expect("stats JSON");
    assert_eq!(stats["render"]["pages"], 2, "{stats}");
    assert_eq!(stats["render"]["browsers_started"], 1, "{stats}");
    // The static script, the inserted one and the fetch.
    assert_eq!(stats["render"]["requests_refused"], 3, "{stats}");
    assert_eq!(stats["render"]["network"], "namespace", "{stats}");
    for path in ["/js/evil.js", "/js/evil-inserted.js", "/js/evil-fetch"] {
        assert_eq!(server.hits(path), 0, "{path} reached the server");
    }
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&seed, "error"), "");
    assert_eq!(pages.for_page(&second, "error"), "", "the page was crawled");
    let table = Table::read(&run.path("scripts.csv"));
    let evil_row = one(&table, "src", &evil);
    check(
        &table,
        evil_row,
        &[
            ("page_url", &second),
            ("origin", "static"),
            ("content_error", "private_address"),
            ("content_sha384", ""),
            ("content_bytes", ""),
        ],
    );
    let inserted_row = one(&table, "src", &evil_inserted);
    check(
        &table,
        inserted_row,
        &[
            ("page_url", &second),
            ("origin", "inserted"),
            ("content_error", "private_address"),
        ],
    );
    // The page's own code still ran.
    let code_row = one(&table, "inline_sha256", &sha256(&code));
    check(&table, code_row, &[("content_sha384", &sha384(&code))]);
}

/// Connections the request interception of a page does not see are held
/// to the rule too: a WebSocket and a service worker's own requests, to
/// `localhost`, never reach it (the listeners count the connections made
/// to them, accepted or not). The service worker runs, and is a row.
#[test]
fn a_crawl_keeps_websockets_and_service_workers_out_of_private_hosts() {
    let server = TestServer::start();
    let listener = |_| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        l
    };
    let (socket_end, worker_end) = (listener(0), listener(1));
    let port = |l: &std::net::TcpListener| l.local_addr().expect("addr").port();
    let worker_code = format!(
        "self.addEventListener('install', function (e) {{ \
         e.waitUntil(fetch('http://localhost:{}/from-worker').catch(function () {{}})); }});\n",
        port(&worker_end)
    );
    server.set_script("sw.js", &worker_code, Duration::ZERO);
    let code = format!(
        "new WebSocket('ws://localhost:{}/socket'); \
         navigator.serviceWorker.register('/js/sw.js').then(function (r) {{ \
         document.title = 'registered'; }}, function (e) {{ document.title = String(e); }});",
        port(&socket_end)
    );
    server.set_page("second", &page(&format!("<script>{code}</script>"), ""));
    server.set_page("seed", &page("", "<a href=\"/page/second\">next</a>"));
    let seed = server.url("/page/seed");
    let run = Run::new();

    let out = render_into(
        &run,
        &[&seed],
        &[
            "--render-idle",
            "1500",
            "--depth",
            "1",
            "--stats",
            "stats.json",
            "-v",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The worker's script itself was fetched (from the listed host).
    assert!(
        server.hits("/js/sw.js") > 0,
        "the service worker was not registered"
    );
    // It ran, and its script is a row of the page.
    let table = Table::read(&run.path("scripts.csv"));
    let worker = one(&table, "src", &server.url("/js/sw.js"));
    check(
        &table,
        worker,
        &[
            ("page_url", &server.url("/page/second")),
            ("origin", "worker"),
            ("content_sha384", &sha384(&worker_code)),
        ],
    );
    let connections = |l: &std::net::TcpListener| (0..100).map_while(|_| l.accept().ok()).count();
    assert_eq!(
        connections(&worker_end),
        0,
        "the service worker reached localhost"
    );
    assert_eq!(
        connections(&socket_end),
        0,
        "the WebSocket reached localhost"
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("stats.json")).expect("stats"))
            .expect("stats JSON");
    // The WebSocket never goes through request interception: the gate
    // refused it; the worker's fetch is refused as a request.
    let render = &stats["render"];
    assert!(
        render["connections_refused"].as_u64() >= Some(1)
            && render["requests_refused"].as_u64() >= Some(1),
        "{stats}\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("localhost resolves to the non-public address"),
        "{}",
        out.stderr
    );
}

/// WebRTC's UDP goes around the proxy and request interception: in a
/// crawl, STUN and TURN servers and remote candidates a page names on
/// loopback, IPv4 and IPv6, get no datagram (the test's sockets count
/// what reaches them). The page's WebRTC code itself runs to its end.
#[test]
fn a_crawl_keeps_webrtc_out_of_private_hosts() {
    let server = TestServer::start();
    let v4 = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    // Machines without IPv6 loopback cannot be reached there either.
    let v6 = std::net::UdpSocket::bind("[::1]:0").ok();
    let port = |s: &std::net::UdpSocket| s.local_addr().expect("addr").port();
    let (p4, p6) = (port(&v4), v6.as_ref().map_or(9, port));
    let code = format!(
        "var pc = new RTCPeerConnection({{iceServers: [\
         {{urls: ['stun:127.0.0.1:{p4}', 'stun:[::1]:{p6}']}}, \
         {{urls: ['turn:127.0.0.1:{p4}?transport=udp', 'turn:[::1]:{p6}?transport=udp'], \
         username: 'u', credential: 'c'}}]}}); \
         pc.createDataChannel('x'); var other = new RTCPeerConnection(); \
         function add(c) {{ return pc.addIceCandidate({{candidate: c, sdpMid: '0', \
         sdpMLineIndex: 0}}); }} \
         pc.createOffer().then(function (o) {{ return pc.setLocalDescription(o); }}) \
         .then(function () {{ return other.setRemoteDescription(pc.localDescription); }}) \
         .then(function () {{ return other.createAnswer(); }}) \
         .then(function (a) {{ return other.setLocalDescription(a).then(function () {{ \
         return pc.setRemoteDescription(a); }}); }}) \
         .then(function () {{ return Promise.all([\
         add('candidate:1 1 udp 2122260223 127.0.0.1 {p4} typ host'), \
         add('candidate:2 1 udp 2122260223 ::1 {p6} typ host')]); }}) \
         .then(function () {{ {} }});",
        insert("/js/offered.js")
    );
    server.set_script("offered.js", "window.offered = 1;\n", Duration::ZERO);
    server.set_page("second", &page(&format!("<script>{code}</script>"), ""));
    server.set_page("seed", &page("", "<a href=\"/page/second\">next</a>"));
    let seed = server.url("/page/seed");
    let run = Run::new();
    let out = render_into(&run, &[&seed], &["--render-idle", "1500", "--depth", "1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        server.hits("/js/offered.js") > 0,
        "the page's WebRTC code did not run to its end\n{}",
        out.stderr
    );
    let datagrams = |s: &std::net::UdpSocket| {
        s.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 2048];
        (0..100).map_while(|_| s.recv_from(&mut buf).ok()).count()
    };
    assert_eq!(datagrams(&v4), 0, "WebRTC reached 127.0.0.1");
    if let Some(v6) = &v6 {
        assert_eq!(datagrams(v6), 0, "WebRTC reached [::1]");
    }
}

/// Where no network namespace can be made (user namespaces off: here a
/// user namespace whose limits allow no more), the browser runs in
/// scriptscrape's network, the run says what that leaves open, and every
/// TCP connection still goes through the gate: a script on `localhost`
/// is refused and never fetched.
#[test]
fn without_namespaces_the_gate_still_holds_the_browsers_connections() {
    crate::support::render::require_chromium();
    let server = TestServer::start();
    server.set_script("evil.js", "window.evil = 1;\n", Duration::ZERO);
    let evil = localhost(&server, "/js/evil.js");
    server.set_page(
        "second",
        &page(&format!("<script>{}</script>", insert(&evil)), ""),
    );
    server.set_page("seed", &page("", "<a href=\"/page/second\">next</a>"));
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/page/seed")]);
    let mark = crate::support::render::marker("no-namespaces");
    // unshare(1) makes a user namespace and execs sh, which lowers its
    // limits to none and execs scriptscrape: the same process throughout.
    let mut wrapped = std::process::Command::new("unshare");
    wrapped
        .args(["-U", "-r", "sh", "-c"])
        .arg(
            "echo 0 > /proc/sys/user/max_user_namespaces && \
             echo 0 > /proc/sys/user/max_net_namespaces && exec \"$0\" \"$@\"",
        )
        .arg(env!("CARGO_BIN_EXE_scriptscrape"))
        .args([&list, "--render", "-o", "scripts.csv", "--depth", "1"])
        .args(["--stats", "stats.json"])
        .args(QUICK)
        .current_dir(run.dir.path())
        .env(crate::support::render::MARK_VAR, &mark)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = wrapped
        .spawn()
        .expect("unshare(1) (util-linux) is needed by this test");
    let status = wait_within(&mut child, Duration::from_secs(60)).expect("the run ended");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr");
    let left = wait_gone(&[], &mark, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left:{left}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let warning: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cannot have a network namespace of its own"))
        .collect();
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(
        warning[0].contains("unshare: ") && warning[0].contains("WebRTC"),
        "{stderr}"
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.path("stats.json")).expect("stats"))
            .expect("stats JSON");
    assert_eq!(stats["render"]["network"], "gate", "{stats}");
    assert_eq!(
        server.hits("/js/evil.js"),
        0,
        "the script on localhost was fetched"
    );
    let table = Table::read(&run.path("scripts.csv"));
    let row = one(&table, "src", &evil);
    check(
        &table,
        row,
        &[("origin", "inserted"), ("content_error", "private_address")],
    );
}

/// A script that redirects to a host the rule refuses is reported under
/// the URL the page named, with `private_address`: the static element
/// itself, and one row for an inserted one, not a row for the refused
/// target.
#[test]
fn a_redirect_into_a_private_host_is_refused_under_the_named_url() {
    let server = TestServer::start();
    server.set_script("evil.js", "window.evil = 1;\n", Duration::ZERO);
    server.set_script("evil2.js", "window.evil2 = 1;\n", Duration::ZERO);
    let named = crate::support::redirect_via(&server, &localhost(&server, "/js/evil.js"));
    let inserted = crate::support::redirect_via(&server, &localhost(&server, "/js/evil2.js"));
    let head = format!(
        "<script src=\"{named}\"></script><script>{}</script>",
        insert(&inserted)
    );
    server.set_page("second", &page(&head, ""));
    server.set_page("seed", &page("", "<a href=\"/page/second\">next</a>"));
    let seed = server.url("/page/seed");
    let second = server.url("/page/second");
    let run = Run::new();
    let out = render_into(&run, &[&seed], &[&QUICK[..], &["--depth", "1"]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    for path in ["/js/evil.js", "/js/evil2.js"] {
        assert_eq!(server.hits(path), 0, "{path} reached the server");
    }
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows_where("page_url", &second).len(), 3, "{table:#?}");
    let element = one(&table, "src", &named);
    check(
        &table,
        element,
        &[("origin", "static"), ("content_error", "private_address")],
    );
    let added = one(&table, "src", &inserted);
    check(
        &table,
        added,
        &[
            ("origin", "inserted"),
            ("content_error", "private_address"),
            ("content_sha384", ""),
        ],
    );
}

/// A module the markup preloads (`<link rel=modulepreload>`) is fetched
/// by the document, then run by an import: `import`, initiated by the
/// parser.
#[test]
fn a_preloaded_module_is_initiated_by_the_parser() {
    let server = TestServer::start();
    server.set_script("pre.mjs", "window.pre = 1;\n", Duration::ZERO);
    let importer = "import '/js/pre.mjs';";
    let head = format!(
        "<link rel=\"modulepreload\" href=\"/js/pre.mjs\">\
         <script type=\"module\">{importer}</script>"
    );
    server.set_page("preload", &page(&head, ""));
    let run = Run::new();
    let out = render_into(&run, &[server.url("/page/preload")], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    let module = one(&table, "src", &server.url("/js/pre.mjs"));
    check(
        &table,
        module,
        &[
            ("origin", "import"),
            ("initiator", "parser"),
            ("content_sha384", &sha384("window.pre = 1;\n")),
        ],
    );
}

/// A preload is a fetch, not a script that runs: one the rule refuses is
/// a row of origin `preload` (initiated by the parser), not `inserted`,
/// while a script an inline script inserts, refused too, is `inserted`,
/// and a module a module imports is `import`.
#[test]
fn a_refused_preload_is_a_preload_row() {
    let server = TestServer::start();
    let (pre, module, inserted, imported) = (
        localhost(&server, "/js/pre.js"),
        localhost(&server, "/js/pre.mjs"),
        localhost(&server, "/js/inserted.js"),
        localhost(&server, "/js/imported.mjs"),
    );
    let head = format!(
        "<link rel=\"preload\" as=\"script\" href=\"{pre}\">\
         <link rel=\"modulepreload\" href=\"{module}\">\
         <script>{}</script>\
         <script type=\"module\">import '{imported}';</script>",
        insert(&inserted)
    );
    server.set_page("second", &page(&head, ""));
    server.set_page("seed", &page("", "<a href=\"/page/second\">next</a>"));
    let run = Run::new();
    let out = render_into(
        &run,
        &[server.url("/page/seed")],
        &[&QUICK[..], &["--depth", "1"]].concat(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(
        table
            .rows_where("page_url", &server.url("/page/second"))
            .len(),
        6,
        "{table:#?}"
    );
    let row = one(&table, "src", &imported);
    check(
        &table,
        row,
        &[("origin", "import"), ("content_error", "private_address")],
    );
    for url in [&pre, &module] {
        let row = one(&table, "src", url);
        check(
            &table,
            row,
            &[
                ("origin", "preload"),
                ("initiator", "parser"),
                ("content_error", "private_address"),
                ("content_sha384", ""),
            ],
        );
    }
    let row = one(&table, "src", &inserted);
    check(
        &table,
        row,
        &[("origin", "inserted"), ("content_error", "private_address")],
    );
    for path in [
        "/js/pre.js",
        "/js/pre.mjs",
        "/js/inserted.js",
        "/js/imported.mjs",
    ] {
        assert_eq!(server.hits(path), 0, "{path} reached the server");
    }
}

/// A script refused in a frame of the page's own site is the frame's row:
/// `frame`, with the frame's URL.
#[test]
fn a_script_refused_in_a_frame_is_the_frames_row() {
    let server = TestServer::start();
    let evil = localhost(&server, "/js/evil.js");
    server.set_page(
        "inner",
        &page(&format!("<script src=\"{evil}\"></script>"), ""),
    );
    server.set_page("second", &page("", "<iframe src=\"/page/inner\"></iframe>"));
    server.set_page("seed", &page("", "<a href=\"/page/second\">next</a>"));
    let run = Run::new();
    let out = render_into(
        &run,
        &[server.url("/page/seed")],
        &[&QUICK[..], &["--depth", "1"]].concat(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    let second = server.url("/page/second");
    let rows: Vec<usize> = table
        .rows_where("page_url", &second)
        .into_iter()
        .filter(|&r| table.get(r, "src") == evil)
        .collect();
    assert_eq!(rows.len(), 1, "{table:#?}");
    check(
        &table,
        rows[0],
        &[
            ("origin", "frame"),
            ("frame_url", &server.url("/page/inner")),
            ("content_error", "private_address"),
        ],
    );
    assert_eq!(server.hits("/js/evil.js"), 0);
}

/// The columns that describe a static script element: the same with and
/// without --render.
const STATIC_COLUMNS: [&str; 20] = [
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
    "inline_sha256",
    "src_resolved",
    "svg",
    "host",
    "third_party",
    "position",
    "nonce_present",
    "csp_allowed",
];

const PLAIN: &str = "window.plain = 1;\n";
const PINNED: &str = "window.pinned = 1;\n";
const LAST: &str = "document.title += ' body';";

/// The rows of `table` by index, each cut to `columns`.
fn by_index(table: &Table, columns: &[&str]) -> Vec<Vec<String>> {
    let mut rows: Vec<(usize, Vec<String>)> = (0..table.rows.len())
        .map(|r| {
            let index = table.get(r, "index").parse().expect("an index");
            let cells = columns.iter().map(|c| table.get(r, c).to_owned()).collect();
            (index, cells)
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, cells)| cells).collect()
}

/// On a page whose scripts insert nothing, --render gives the rows a run
/// without it gives, equal on every static column, each `static` with
/// the parser as initiator; what ran has its content hash, what did not
/// (a data block, nomodule, a 404) has none.
#[test]
fn without_insertions_render_rows_equal_the_static_rows() {
    let server = TestServer::start();
    for (name, body) in [
        ("plain.js", PLAIN),
        ("async.js", "window.asynchronous = 1;\n"),
        ("defer.js", "window.deferred = 1;\n"),
        ("pinned.js", PINNED),
        ("legacy.js", "window.legacy = 1;\n"),
    ] {
        server.set_script(name, body, Duration::ZERO);
    }
    let head = format!(
        "<script>window.first = 1;</script>\
         <script src=\"/js/plain.js\"></script>\
         <script src=\"/js/async.js\" async></script>\
         <script src=\"/js/defer.js\" defer></script>\
         <script type=\"application/json\">{{\"not\": \"code\"}}</script>\
         <script src=\"/js/pinned.js\" integrity=\"{}\" crossorigin=\"anonymous\"></script>\
         <script nomodule src=\"/js/legacy.js\"></script>",
        sha384(PINNED)
    );
    let body = format!("<script src=\"/js/missing.js\"></script><script>{LAST}</script>");
    server.set_page("static", &page(&head, &body));
    let url = server.url("/page/static");

    let plain_run = Run::new();
    let out = scrape_into(&plain_run, &[&url], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plain = Table::read(&plain_run.path("scripts.csv"));
    assert_eq!(plain.rows.len(), 9, "{plain:#?}");
    for column in ["origin", "initiator", "frame_url"] {
        assert!(
            plain.column(column).iter().all(|v| v.is_empty()),
            "{column} without --render: {:?}",
            plain.column(column)
        );
    }

    let render_run = Run::new();
    let out = render_into(&render_run, &[&url], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rendered = Table::read(&render_run.path("scripts.csv"));
    assert_eq!(
        by_index(&rendered, &STATIC_COLUMNS),
        by_index(&plain, &STATIC_COLUMNS)
    );
    for row in 0..rendered.rows.len() {
        check(
            &rendered,
            row,
            &[
                ("origin", "static"),
                ("initiator", "parser"),
                ("frame_url", ""),
            ],
        );
    }
    let hash_of = |find: (&str, &str)| {
        let row = one(&rendered, find.0, find.1);
        rendered.get(row, "content_sha384").to_owned()
    };
    assert_eq!(hash_of(("src", &server.url("/js/plain.js"))), sha384(PLAIN));
    assert_eq!(
        hash_of(("src", &server.url("/js/pinned.js"))),
        sha384(PINNED)
    );
    assert_eq!(hash_of(("inline_sha256", &sha256(LAST))), sha384(LAST));
    assert_eq!(hash_of(("type", "application/json")), "", "a data block");
    assert_eq!(hash_of(("nomodule", "true")), "", "not run by Chromium");
    let missing = one(&rendered, "src", &server.url("/js/missing.js"));
    check(
        &rendered,
        missing,
        &[("content_status", "404"), ("content_sha384", "")],
    );
}

/// However scriptscrape ends, even by SIGKILL in the middle of a page, no
/// browser process outlives it by more than a few seconds.
#[test]
fn no_browser_outlives_a_killed_run() {
    let server = TestServer::start();
    server.set_script("hang.js", "", Duration::from_secs(20));
    server.set_page("hangs", &page("<script src=\"/js/hang.js\"></script>", ""));
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/page/hangs")]);
    let mut running = Spawned::start(
        &run,
        "killed",
        &[
            &list,
            "--render",
            "--render-concurrency",
            "1",
            "--render-timeout",
            "30",
            "-o",
            "scripts.csv",
        ],
    );
    running.wait_for(
        Duration::from_secs(30),
        "the page's script requested",
        || server.hits("/js/hang.js") > 0,
    );
    let under = running.descendants();
    assert!(
        under
            .iter()
            .any(|p| p.cmdline().to_lowercase().contains("chrom")),
        "no browser under scriptscrape: {:?}",
        under.iter().map(|p| p.cmdline()).collect::<Vec<_>>()
    );
    signal(running.child(), libc::SIGKILL);
    wait_within(running.child(), Duration::from_secs(10)).expect("SIGKILL ends it");
    let left = wait_gone(&running.known(), &running.mark, Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "browser processes outlived scriptscrape by 10 s (now killed):{left}"
    );
}

/// A browser that is not there is a usage error before anything is
/// rendered: exit 2 and one line naming the path, --browser and how to
/// install one. --browser without --render, and --fetch-scripts with it,
/// are refused too.
#[test]
fn a_missing_browser_and_misused_options_are_refused() {
    let server = TestServer::start();
    server.set_page("any", &page("<script>window.any = 1;</script>", ""));
    server.set_page("other", &page("<script>window.other = 1;</script>", ""));
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/page/any")]);

    let out = run.run(
        &[&list, "--render", "--browser", "/nonexistent/chrome"],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    for needed in [
        "/nonexistent/chrome",
        "--browser",
        "apt-get install chromium",
    ] {
        assert!(out.stderr.contains(needed), "{needed}: {}", out.stderr);
    }

    // The options that tune --render are no error without it (a
    // configuration file may set them for the runs that render).
    let other = run.urls("other.txt", &[server.url("/page/other")]);
    let out = run.run(&[&other, "--browser", "/nonexistent/chrome", "-q"], None);
    assert_eq!(out.code, 0, "--browser without --render: {}", out.stderr);
    let out = run.run(
        &[
            &list,
            "--render",
            "--render-idle",
            "5s",
            "--render-timeout",
            "5",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--render-idle"), "{}", out.stderr);
    let out = run.run(&[&list, "--render", "--render-idle", "1.5"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--render-idle") && !out.stderr.contains("--delay"),
        "{}",
        out.stderr
    );
    let out = run.run(&[&list, "--render", "--fetch-scripts"], None);
    assert_eq!(out.code, 2, "--fetch-scripts with --render: {}", out.stderr);
    for named in ["--render", "--fetch-scripts"] {
        assert!(out.stderr.contains(named), "{named}: {}", out.stderr);
    }
    // A browser that exits at once: the run ends before writing anything.
    let out = run.run(
        &[
            &list,
            "--render",
            "--browser",
            "/bin/true",
            "-o",
            "s.csv",
            "--pages",
            "p.csv",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("exited at start"), "{}", out.stderr);
    // The same in a crawl, where the browser gets a network namespace:
    // its failing is not taken for the namespace's (no second start
    // without one).
    let crawl = run.run(
        &[&list, "--render", "--browser", "/bin/true", "--depth", "1"],
        None,
    );
    assert_eq!(crawl.code, 2, "{}", crawl.stderr);
    assert!(crawl.stderr.contains("exited at start"), "{}", crawl.stderr);
    assert_eq!(crawl.stderr.lines().count(), 1, "{}", crawl.stderr);
    let left: Vec<_> = std::fs::read_dir(run.path("."))
        .expect("run dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("s.csv") || name.starts_with("p.csv"))
        .collect();
    assert!(left.is_empty(), "written: {left:?}");
    assert_eq!(server.hits("/page/any"), 0, "nothing was fetched");
}

/// What a page tries beyond running scripts is refused: a pop-up
/// (`window.open` gives null), permissions (notifications denied, the
/// position refused), a download. The probe page reports what it saw in
/// the URL of a script it inserts; the download is another page's. And
/// the browser writes nothing under the user's home (no download, no
/// settings, no crash report): all it writes is in its temporary profile.
#[test]
fn pop_ups_permissions_and_downloads_are_refused() {
    let server = TestServer::start();
    server.set_script("payload.bin", "not a script", Duration::ZERO);
    server.set_script("seen.js", "window.seen = 1;", Duration::ZERO);
    // Refusing the position takes the browser about a second: the idle
    // time below waits for it.
    let probe = "var w = window.open('/js/payload.bin');\n\
        Notification.requestPermission().then(function (n) {\n\
          navigator.geolocation.getCurrentPosition(function () { report(n, 'given'); },\n\
            function (e) { report(n, e.code); });\n\
        });\n\
        function report(n, geo) {\n\
          var s = document.createElement('script');\n\
          s.src = '/js/seen.js?popup=' + (w === null) + '&notify=' + n + '&geo=' + geo;\n\
          document.head.appendChild(s);\n\
        }";
    server.set_page("probe", &page(&format!("<script>{probe}</script>"), ""));
    let download = "var a = document.createElement('a'); a.href = '/js/payload.bin';\n\
        a.download = 'scriptscrape-download.bin';\n\
        document.documentElement.appendChild(a); a.click();";
    server.set_page(
        "download",
        &page(&format!("<script>{download}</script>"), ""),
    );
    let run = Run::new();
    let home = run.path("home");
    std::fs::create_dir_all(&home).expect("home");
    let home_var = home.to_string_lossy().into_owned();
    let out = render_with_env(
        &run,
        &[server.url("/page/probe"), server.url("/page/download")],
        &["--render-concurrency", "1", "--render-idle", "2500"],
        &[("HOME", &home_var)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    let seen = one(&table, "origin", "inserted");
    // Error code 1: PERMISSION_DENIED.
    assert_eq!(
        table.get(seen, "src"),
        server.url("/js/seen.js?popup=true&notify=denied&geo=1")
    );
    let written: Vec<_> = std::fs::read_dir(&home)
        .expect("home")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(written.is_empty(), "written under HOME: {written:?}");
}

/// A forwarding HTTP proxy that wants a user name and password (Basic):
/// without them it answers 407; with them it serves, whatever host is
/// asked for (names that resolve nowhere), a page that inserts a script
/// from another such host, and that script. It records what it was asked
/// for, and whether the credentials came.
struct LoginProxy {
    addr: std::net::SocketAddr,
    asked: std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>>,
}

const PROXY_LOGIN: &str = "Basic cHh1c2VyOnB4c2VjcmV0"; // pxuser:pxsecret
const BEHIND_PROXY: &str = "window.behindProxy = 1;";

impl LoginProxy {
    fn start() -> LoginProxy {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            // Bounded: a test makes a handful of connections.
            for conn in listener.incoming().take(200) {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let log = log.clone();
                std::thread::spawn(move || {
                    let Ok(clone) = conn.try_clone() else { return };
                    let mut reader = BufReader::new(clone);
                    // One request per connection (Connection: close).
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    let mut login = false;
                    for _ in 0..100 {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                        let lower = header.to_ascii_lowercase();
                        if lower.starts_with("proxy-authorization:") {
                            login = header.trim_end().ends_with(PROXY_LOGIN);
                        }
                    }
                    log.lock().unwrap().push((target.clone(), login));
                    let (status, kind, body) = if !login {
                        (
                            "407 Proxy Authentication Required",
                            "text/plain",
                            String::new(),
                        )
                    } else if target.ends_with(".js") {
                        ("200 OK", "text/javascript", BEHIND_PROXY.to_owned())
                    } else {
                        let insert = insert("http://cdn.scriptscrape-test.invalid/tag.js");
                        // Loopback goes through the proxy too.
                        let socket = "new WebSocket('ws://127.0.0.1:47999/loop');";
                        (
                            "200 OK",
                            "text/html",
                            page(&format!("<script>{insert}{socket}</script>"), ""),
                        )
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\
                         Content-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes());
                });
            }
        });
        LoginProxy { addr, asked }
    }
}

/// With `--proxy`, the browser's own requests go through the proxy too,
/// and a proxy that asks for credentials gets those of `--proxy`'s URL
/// (never on the browser's command line); the proxy's password is
/// written nowhere.
#[test]
fn the_browser_goes_through_the_runs_proxy_with_its_login() {
    let proxy = LoginProxy::start();
    let page_url = "http://shop.scriptscrape-test.invalid/checkout";
    let run = Run::new();
    let proxy_arg = format!("http://pxuser:pxsecret@{}", proxy.addr);
    let out = render_into(
        &run,
        &[page_url],
        &[
            "--proxy",
            &proxy_arg,
            "--render-concurrency",
            "1",
            "--render-idle",
            "300",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    let tag = one(&table, "origin", "inserted");
    check(
        &table,
        tag,
        &[
            ("src", "http://cdn.scriptscrape-test.invalid/tag.js"),
            ("content_status", "200"),
            ("content_sha384", &sha384(BEHIND_PROXY)),
        ],
    );
    let asked = proxy.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&(
            "http://cdn.scriptscrape-test.invalid/tag.js".to_owned(),
            true
        )),
        "{asked:?}"
    );
    // A WebSocket to loopback went to the proxy (CONNECT), not around it.
    assert!(
        asked.iter().any(|(target, _)| target == "127.0.0.1:47999"),
        "{asked:?}"
    );
    for file in ["scripts.csv", "pages.csv"] {
        let text = std::fs::read_to_string(run.path(file)).expect("output");
        assert!(!text.contains("pxsecret"), "{file}");
    }
    assert!(!out.stderr.contains("pxsecret"), "{}", out.stderr);
}

/// A stop (SIGINT) while a page is in the browser gives it the grace
/// period, as requests in flight get; a page still loading then is not
/// written (counted as unfinished), and `--resume` renders it again,
/// reading back the rows of the page done, an inserted script's (whose
/// element columns are empty) among them.
#[test]
fn a_stop_leaves_an_unrendered_page_to_resume() {
    stop_then_resume(&[]);
}

/// See [`a_stop_leaves_an_unrendered_page_to_resume`]: the same with
/// JSON Lines, whose typed values `--resume` checks too.
#[test]
fn a_stopped_json_lines_render_is_resumed() {
    stop_then_resume(&["--format", "jsonl"]);
}

fn stop_then_resume(format: &[&str]) {
    let server = TestServer::start();
    let tag = insert("/js/quick-tag.js");
    server.set_page("quick", &page(&format!("<script>{tag}</script>"), ""));
    server.set_script("quick-tag.js", "window.quick = 1;", Duration::ZERO);
    let waits = insert("/js/held.js");
    server.set_page("held", &page(&format!("<script>{waits}</script>"), ""));
    server.set_script("held.js", "window.held = 1;", Duration::from_secs(30));
    let (quick, held) = (server.url("/page/quick"), server.url("/page/held"));
    let run = Run::new();
    let list = run.urls("urls.txt", &[&quick, &held]);
    // One page after the other, in the list's order.
    let mut options = vec![
        "-c",
        "1",
        "--render-concurrency",
        "1",
        "--render-idle",
        "300",
        "--render-timeout",
        "60",
        "--grace",
        "1",
    ];
    options.extend_from_slice(format);
    let outputs = ["--pages", "pages.out", "-o", "scripts.out"];
    let mut args = vec![list.as_str(), "--render"];
    args.extend_from_slice(&options);
    args.extend_from_slice(&outputs);
    let mut running = Spawned::start(&run, "stop", &args);
    running.wait_for(Duration::from_secs(30), "the held script requested", || {
        server.hits("/js/held.js") > 0
    });
    signal(running.child(), libc::SIGINT);
    let status = wait_within(running.child(), Duration::from_secs(30)).expect("the run ends");
    assert_eq!(status.code(), Some(130), "{}", running.stderr());
    let stderr = running.stderr();
    assert!(stderr.contains("1 URL not done"), "{stderr}");
    // The page the stop cut short is not counted as rendered.
    assert!(stderr.contains("(1 page rendered"), "{stderr}");
    let report = std::fs::read_to_string(run.path("pages.out.part")).expect("report");
    assert!(
        report.contains(&quick) && !report.contains(&held),
        "{report}"
    );

    server.set_script("held.js", "window.held = 1;", Duration::ZERO);
    let mut again = args.clone();
    again.push("--resume");
    let out = run.run(&again, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let scripts = std::fs::read_to_string(run.path("scripts.out")).expect("scripts");
    let inserted: Vec<&str> = scripts.lines().filter(|l| l.contains("inserted")).collect();
    assert_eq!(inserted.len(), 2, "one inserted script per page: {scripts}");
    assert!(
        inserted.iter().any(|l| l.contains(&quick)) && inserted.iter().any(|l| l.contains(&held))
    );
    let report = std::fs::read_to_string(run.path("pages.out")).expect("report");
    assert!(
        report.contains(&quick) && report.contains(&held),
        "{report}"
    );
    assert!(!report.contains("render_"), "{report}");
}

/// What a browser refused or skipped is told apart from what it ran: an
/// `integrity` the body matches ran (`integrity_ok` true), one it does not
/// match was refused (false, no code); a `nomodule` element naming the
/// same script as one that ran does not get its code; an inline script
/// naming itself with `//# sourceURL` is still its element, not a second,
/// inserted row.
#[test]
fn refused_and_skipped_elements_are_not_taken_for_ones_that_ran() {
    let server = TestServer::start();
    server.set_script("good.js", "window.good = 1;", Duration::ZERO);
    server.set_script("bad.js", "window.bad = 1;", Duration::ZERO);
    let named = "window.named = 1;\n//# sourceURL=named.js";
    let head = format!(
        "<script src=\"/js/good.js\" integrity=\"{}\"></script>\
         <script src=\"/js/bad.js\" integrity=\"{}\"></script>\
         <script nomodule src=\"/js/good.js\"></script>\
         <script>{named}</script>",
        sha384("window.good = 1;"),
        sha384("something else"),
    );
    server.set_page("sri", &page(&head, ""));
    let run = Run::new();
    let out = render_into(&run, &[server.url("/page/sri")], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.column("origin"), ["static"; 4], "{table:#?}");
    check(
        &table,
        0,
        &[
            ("integrity_ok", "true"),
            ("content_sha384", &sha384("window.good = 1;")),
        ],
    );
    check(
        &table,
        1,
        &[
            ("integrity_ok", "false"),
            ("content_status", "200"),
            ("content_sha384", ""),
            // It did not run: its size is not known.
            ("content_bytes", ""),
        ],
    );
    check(
        &table,
        2,
        &[
            ("nomodule", "true"),
            ("content_sha384", ""),
            ("content_bytes", ""),
        ],
    );
    check(&table, 3, &[("content_sha384", &sha384(named))]);
}

/// A page that cuts its own load short, by `window.stop()` or by setting
/// `location` while it is parsed, is still done once quiet: the load
/// event never comes, but the browser says the page stopped loading (and
/// the navigation away is refused: the inventory is of the page fetched).
#[test]
fn a_load_cut_short_still_settles() {
    let server = TestServer::start();
    server.set_script("after.js", "window.after = 1;", Duration::ZERO);
    server.set_page(
        "stops",
        &page(
            "<script>window.stop();</script><script src=\"/js/after.js\"></script>",
            "",
        ),
    );
    server.set_page(
        "leaves",
        &page(
            "<script>location.href = '/page/elsewhere';</script><script src=\"/js/after.js\"></script>",
            "",
        ),
    );
    let (stops, leaves) = (server.url("/page/stops"), server.url("/page/leaves"));
    let run = Run::new();
    let out = render_into(
        &run,
        &[&stops, &leaves],
        &[&QUICK[..], &["--render-timeout", "20"]].concat(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(pages.for_page(&stops, "error"), "");
    assert_eq!(pages.for_page(&leaves, "error"), "");
    assert_eq!(
        server.hits("/page/elsewhere"),
        0,
        "the navigation away is refused"
    );
}

/// A script whose URL redirects is matched to its element by the URL the
/// element names, and its status is the last response's (the code came
/// from there), for an element and for an inserted script alike.
#[test]
fn redirected_scripts_keep_their_element_and_status() {
    let server = TestServer::start();
    server.set_script("real.js", "window.real = 1;", Duration::ZERO);
    server.set_script("real2.js", "window.real2 = 1;", Duration::ZERO);
    let first = crate::support::redirect_via(&server, &server.url("/js/real.js"));
    let second = crate::support::redirect_via(&server, &server.url("/js/real2.js"));
    let head = format!(
        "<script src=\"{first}\"></script><script>{}</script>",
        insert(&second)
    );
    server.set_page("redirects", &page(&head, ""));
    let run = Run::new();
    let out = render_into(&run, &[server.url("/page/redirects")], &QUICK);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let table = Table::read(&run.path("scripts.csv"));
    assert_eq!(table.rows.len(), 3, "{table:#?}");
    check(
        &table,
        0,
        &[
            ("origin", "static"),
            ("src", &first),
            ("content_status", "200"),
            ("content_sha384", &sha384("window.real = 1;")),
        ],
    );
    let inserted = one(&table, "origin", "inserted");
    check(
        &table,
        inserted,
        &[
            ("content_status", "200"),
            ("content_sha384", &sha384("window.real2 = 1;")),
        ],
    );
}
