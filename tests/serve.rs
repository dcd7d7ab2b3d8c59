//! `scriptscrape serve`: the binary as a server on a loopback port, real
//! HTTP clients (reqwest) against it, and a loopback site it scans.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Run, TestServer, signal, wait_within};

/// A running server; killed when dropped.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Its standard error after the "listening" line, read to the end
    /// once it exits.
    stderr: Option<BufReader<std::process::ChildStderr>>,
}

impl Server {
    /// Starts `scriptscrape serve --listen 127.0.0.1:0` with `args`, and
    /// waits (bounded) for the address it says it listens on.
    fn start(run: &Run, args: &[&str]) -> Server {
        let mut cmd = run.command(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.args(args);
        Server::spawn(cmd)
    }

    /// As [`Server::start`], the server seeing `hosts` as its /etc/hosts
    /// (a mount namespace of its own, in a user namespace: no privilege
    /// needed, and the machine's file untouched).
    fn start_with_hosts(run: &Run, hosts: &str, args: &[&str]) -> Server {
        let file = run.path("hosts");
        std::fs::write(&file, hosts).expect("hosts file");
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-U", "-r", "-m", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
            .arg(&file)
            .arg(env!("CARGO_BIN_EXE_scriptscrape"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args);
        run.isolate(&mut cmd);
        Server::spawn(cmd)
    }

    /// As [`Server::start`], with `token` (written to a file) as the
    /// server's token.
    fn start_with_token(run: &Run, token: &str, args: &[&str]) -> Server {
        let file = run.path("token");
        // As an editor or `echo` writes it: the newline is not the token.
        std::fs::write(&file, format!("{token}\n")).expect("token file");
        let mut all = vec!["--token-file", file.to_str().expect("a UTF-8 path")];
        all.extend_from_slice(args);
        Server::start(run, &all)
    }

    fn spawn(mut cmd: std::process::Command) -> Server {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start scriptscrape serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        // The server's first line, written once it listens; a failed
        // start writes its error and exits (end of file).
        stderr.read_line(&mut line).expect("read stderr");
        let Some(base) = line.trim().strip_prefix("scriptscrape: listening on ") else {
            let _ = child.kill();
            panic!("the server did not start: {line}");
        };
        Server {
            base: base.to_owned(),
            child,
            stderr: Some(stderr),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits (bounded) for the server to exit; its status and what else it
    /// wrote on standard error.
    fn wait(&mut self) -> (Option<i32>, String) {
        let status = wait_within(&mut self.child, Duration::from_secs(30));
        let mut rest = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        }
        (status.and_then(|s| s.code()), rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // reqwest is built without a default TLS provider (as the binary).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An HTTP client that never goes through a proxy.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs `body` (a text list of URLs) to `/v1/scan` and returns the
/// status and the JSON Lines of the answer.
async fn scan(
    client: &reqwest::Client,
    server: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, Vec<Value>) {
    let mut request = client
        .post(format!("{server}/v1/scan"))
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request).await
}

/// Sends a scan request; its status, and the JSON Lines of its answer.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Vec<Value>) {
    let response = request.send().await.expect("the scan request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the answer");
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (status, lines)
}

/// The objects of `kind` in `lines`, without their `object` key, keyed by what
/// identifies them (page URL and script index), without the timings.
fn keyed(lines: &[Value], kind: &str) -> BTreeMap<String, Value> {
    lines
        .iter()
        .filter(|l| l["object"] == kind)
        .map(|l| {
            let mut object = l.as_object().expect("an object").clone();
            object.remove("object");
            object.remove("elapsed_ms");
            let key = format!(
                "{} {}",
                object["page_url"],
                object.get("index").unwrap_or(&Value::Null)
            );
            (key, Value::Object(object))
        })
        .collect()
}

/// The same objects read from a file of JSON Lines the CLI wrote.
fn keyed_file(path: &std::path::Path, kind: &str) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).expect("the CLI's output");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("JSON");
            v["object"] = Value::from(kind);
            v
        })
        .collect();
    keyed(&lines, kind)
}

/// A scan's pages and scripts are the CLI's rows for the same URLs (an
/// invalid line and a refused connection included), each page's scripts
/// right after it, and a summary closes the stream.
#[test]
fn a_scans_objects_are_the_clis_rows() {
    let site = TestServer::start();
    let urls = [
        site.url("/fixtures/kitchen-sink.html"),
        site.url("/fixtures/base-href.html"),
        site.url("/gen/3"),
        "not a url at all".to_owned(),
        "http://127.0.0.1:9/".to_owned(),
    ];
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let cli = run.run(
        &[
            &list,
            "-o",
            "scripts.jsonl",
            "--pages",
            "pages.jsonl",
            "--retries",
            "0",
        ],
        None,
    );
    assert_eq!(cli.code, 1, "{}", cli.stderr);

    let server = Server::start(&run, &["--no-auth", "--allow-private", "--retries", "0"]);
    let (status, lines) = runtime().block_on(async {
        let client = client();
        scan(&client, &server.base, &urls.join("\n"), None).await
    });
    assert_eq!(status, 200);
    let mut pages = keyed(&lines, "page");
    assert_eq!(pages.len(), urls.len(), "{lines:#?}");
    // An invalid line is named by its place: in the scan, not a file.
    let invalid = "\"not a url at all\" null";
    let mut cli_pages = keyed_file(&run.path("pages.jsonl"), "page");
    let served = pages.get_mut(invalid).expect("the invalid line's page");
    assert_eq!(
        served["error_detail"],
        "URL 4 of the scan: not a URL (invalid international domain name)"
    );
    served["error_detail"] = Value::Null;
    cli_pages.get_mut(invalid).expect("the CLI's")["error_detail"] = Value::Null;
    assert_eq!(pages, cli_pages);
    assert_eq!(
        keyed(&lines, "script"),
        keyed_file(&run.path("scripts.jsonl"), "script")
    );
    // Each page's scripts follow it, before the next page.
    let mut current = None;
    for line in &lines {
        match line["object"].as_str() {
            Some("page") => current = Some(line["page_url"].clone()),
            Some("script") => assert_eq!(Some(&line["page_url"]), current.as_ref()),
            _ => {}
        }
    }
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["object"], "summary");
    assert_eq!(summary["pages"], urls.len());
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["errors"]["invalid_url"], 1);
    assert_eq!(summary["cut_short"], false);
}

/// Fifty clients at once: every scan completes, and the site never has
/// more requests in flight than the server's one `-c`.
#[test]
fn concurrent_scans_share_one_concurrency_limit() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private", "-c", "4"]);
    let results = runtime().block_on(async {
        let client = client();
        let scans = (0..50).map(|i| {
            let body: Vec<String> = (0..4)
                .map(|j| site.url(&format!("/slow-gen/20/{}", i * 4 + j)))
                .collect();
            let client = client.clone();
            let base = server.base.clone();
            async move { scan(&client, &base, &body.join("\n"), None).await }
        });
        futures::future::join_all(scans).await
    });
    for (status, lines) in &results {
        assert_eq!(*status, 200);
        let summary = lines.last().expect("a summary");
        assert_eq!(summary["object"], "summary", "{lines:?}");
        assert_eq!(summary["ok"], 4, "{summary}");
    }
    assert!(
        site.max_in_flight() <= 4,
        "{} in flight",
        site.max_in_flight()
    );
    assert!(site.max_in_flight() >= 2, "the scans ran one at a time");
}

/// Without a token a scan is refused (401) and nothing is fetched; with
/// it, the scan runs. A wrong token is refused the same way.
#[test]
fn a_scan_needs_the_token() {
    let site = TestServer::start();
    let run = Run::new();
    let token = "s3cret-token-0123456789";
    let server = Server::start_with_token(&run, token, &["--allow-private"]);
    let page = site.url("/gen/1");
    let answers = runtime().block_on(async {
        let client = client();
        let mut answers = Vec::new();
        for given in [None, Some("wrong-token-0123456789"), Some(token)] {
            answers.push(scan(&client, &server.base, &page, given).await);
        }
        answers
    });
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[1].0, 401);
    assert!(!format!("{:?}", answers[1]).contains(token));
    assert_eq!(
        site.hits("/gen/1"),
        1,
        "fetched for the authorised scan only"
    );
    assert_eq!(answers[2].0, 200);
    assert_eq!(answers[2].1.last().expect("summary")["ok"], 1);
    // And the health check needs none.
    let health = runtime().block_on(async {
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status()
            .as_u16()
    });
    assert_eq!(health, 200);
}

/// Without --allow-private, a URL on a loopback address is refused
/// (`private_address`) and never fetched, as is a redirect into one.
#[test]
fn private_addresses_are_refused_unless_allowed() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth"]);
    let (status, lines) = runtime().block_on(async {
        let client = client();
        let body = format!(
            "{}\nhttp://localhost:{}/gen/2",
            site.url("/gen/1"),
            site.addr.port()
        );
        scan(&client, &server.base, &body, None).await
    });
    assert_eq!(status, 200);
    let pages = keyed(&lines, "page");
    assert_eq!(pages.len(), 2, "{lines:#?}");
    for page in pages.values() {
        assert_eq!(page["error"], "private_address", "{page}");
    }
    assert_eq!(site.hits("/gen/1") + site.hits("/gen/2"), 0);
}

/// Bad requests are refused in the client's words: too many URLs (413),
/// a JSON body with a field the server does not take (400, naming it),
/// no URL at all (400); a server on a public address without a token does
/// not start.
#[test]
fn bad_scan_requests_are_refused() {
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--max-urls", "2"]);
    let answers = runtime().block_on(async {
        let client = client();
        let too_many = scan(&client, &server.base, "a.test\nb.test\nc.test", None).await;
        let unknown = client
            .post(server.url("/v1/scan"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"urls": ["a.test"], "depth": 2}).to_string())
            .send()
            .await
            .expect("request");
        let unknown = (
            unknown.status().as_u16(),
            unknown.text().await.expect("body"),
        );
        let empty = scan(&client, &server.base, "\n# nothing\n", None).await;
        let huge = scan(&client, &server.base, &"x".repeat(5 << 20), None).await;
        assert_eq!(huge.0, 413);
        assert!(
            huge.1[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("4 MiB")),
            "{:?}",
            huge.1
        );
        (too_many, unknown, empty)
    });
    assert_eq!(answers.0.0, 413);
    assert!(
        answers.0.1[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("--max-urls"))
    );
    assert_eq!(answers.1.0, 400);
    assert!(answers.1.1.contains("\\\"depth\\\""), "{}", answers.1.1);
    assert_eq!(answers.2.0, 400);

    let out = run.run(&["serve", "--listen", "0.0.0.0:0", "--no-auth"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--token-file"), "{}", out.stderr);
}

/// SIGTERM mid-scan: the server stops taking scans, the running one gets
/// `--grace` to finish, then ends with a summary saying it was cut short;
/// the server exits as a terminated run does (143).
#[test]
fn sigterm_cuts_a_running_scan_short_after_the_grace_period() {
    cut_by_sigterm(&["--grace", "1"], 1);
}

/// A second SIGTERM does not wait for the grace period: the scan ends at
/// once, with its summary (a grace longer than the test waits for the
/// server to exit).
#[test]
fn a_second_sigterm_cuts_scans_at_once() {
    cut_by_sigterm(&["--grace", "300"], 2);
}

/// Sends `signals` SIGTERMs to a server started with `args` while a scan's
/// quick page is done and its slow one in flight.
fn cut_by_sigterm(args: &[&str], signals: usize) {
    let site = TestServer::start();
    let run = Run::new();
    let mut all = vec!["--no-auth", "--allow-private"];
    all.extend_from_slice(args);
    let mut server = Server::start(&run, &all);
    let rt = runtime();
    let body = format!("{}\n{}", site.url("/gen/1"), site.url("/slow-gen/20000/2"));
    let base = server.base.clone();
    let answer = rt.spawn(async move {
        let client = client();
        scan(&client, &base, &body, None).await
    });
    // The quick page is done, the slow one in flight.
    let started = std::time::Instant::now();
    while site.hits("/slow-gen/20000/2") == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        site.hits("/slow-gen/20000/2"),
        1,
        "the slow page was requested"
    );
    signal(&server.child, libc::SIGTERM);
    if signals == 2 {
        // The server says it took the first before the second is sent.
        let mut said = String::new();
        let stderr = server.stderr.as_mut().expect("the server's stderr");
        stderr.read_line(&mut said).expect("read stderr");
        assert!(said.contains("SIGTERM"), "{said}");
        signal(&server.child, libc::SIGTERM);
    }
    let (status, lines) = rt.block_on(answer).expect("the scan's task");
    assert_eq!(status, 200);
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["object"], "summary", "{lines:#?}");
    assert_eq!(summary["cut_short"], true, "{summary}");
    assert_eq!(summary["pages"], 1, "{summary}");
    assert_eq!(summary["not_fetched"], 1, "{summary}");
    let (code, stderr) = server.wait();
    assert_eq!(code, Some(143), "{stderr}");
}

/// Pages come back as they complete: a slow page listed first does not
/// hold back a quick one listed after it.
#[test]
fn a_slow_page_does_not_hold_back_a_quick_one() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private"]);
    let (slow, quick) = (site.url("/slow-gen/1500/1"), site.url("/gen/2"));
    let (_, lines) = runtime()
        .block_on(async { scan(&client(), &server.base, &format!("{slow}\n{quick}"), None).await });
    let pages: Vec<&Value> = lines.iter().filter(|l| l["object"] == "page").collect();
    assert_eq!(pages.len(), 2, "{lines:#?}");
    assert_eq!(pages[0]["page_url"], quick.as_str());
    assert_eq!(pages[1]["page_url"], slow.as_str());
}

/// A client that goes away mid-scan gives up the rest of its scan: the
/// URLs not yet started are never fetched.
#[test]
fn a_client_that_goes_away_stops_its_scan() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private", "-c", "1"]);
    let urls: Vec<String> = (0..20)
        .map(|i| site.url(&format!("/slow-gen/200/{i}")))
        .collect();
    runtime().block_on(async {
        let response = client()
            .post(format!("{}/v1/scan", server.base))
            .body(urls.join("\n"))
            .send()
            .await
            .expect("the scan request");
        let mut response = response;
        // The first page, then the client hangs up.
        let first = response.chunk().await.expect("a chunk");
        assert!(first.is_some());
        drop(response);
        // Time for all 20 (4 s at -c 1) had the scan gone on.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let fetched: usize = (0..20)
        .map(|i| site.hits(&format!("/slow-gen/200/{i}")))
        .sum();
    assert!(
        fetched < 10,
        "{fetched} of 20 pages fetched after the client left"
    );
}

/// GET /metrics: the Prometheus text format, counting scan requests by
/// status, pages by result, and each page's time; with the token only.
#[test]
fn metrics_count_scans_and_pages() {
    let site = TestServer::start();
    let run = Run::new();
    let token = "metrics-token-0123456789";
    let server = Server::start_with_token(&run, token, &["--allow-private"]);
    let body = format!("{}\n{}", site.url("/gen/1"), site.url("/status/404"));
    let (text, unauthorised) = runtime().block_on(async {
        let (status, _) = scan(&client(), &server.base, &body, Some(token)).await;
        assert_eq!(status, 200);
        let (status, _) = scan(&client(), &server.base, &body, None).await;
        assert_eq!(status, 401);
        let metrics = client()
            .get(server.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .expect("metrics");
        assert_eq!(metrics.status().as_u16(), 200);
        let text = metrics.text().await.expect("text");
        let unauthorised = client()
            .get(server.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .status()
            .as_u16();
        (text, unauthorised)
    });
    assert_eq!(unauthorised, 401);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_owned()
    };
    assert_eq!(
        value("scriptscrape_scan_requests_total{status=\"200\"}"),
        "1"
    );
    assert_eq!(
        value("scriptscrape_scan_requests_total{status=\"401\"}"),
        "1"
    );
    assert_eq!(value("scriptscrape_pages_total{result=\"ok\"}"), "1");
    assert_eq!(
        value("scriptscrape_pages_total{result=\"http_status\"}"),
        "1"
    );
    assert_eq!(value("scriptscrape_fetch_seconds_count"), "2");
    assert_eq!(value("scriptscrape_scans_in_flight"), "0");
    assert_eq!(value("scriptscrape_urls_pending"), "0");
    assert!(!text.contains(token));
}

/// Past --max-pending URLs of running scans, a new scan is answered 503
/// with Retry-After; once they are answered, scans are taken again.
#[test]
fn a_full_server_answers_503_with_retry_after() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(
        &run,
        &[
            "--no-auth",
            "--allow-private",
            "--max-pending",
            "3",
            "--max-urls",
            "3",
        ],
    );
    let slow: Vec<String> = (0..3)
        .map(|i| site.url(&format!("/slow-gen/1500/{i}")))
        .collect();
    let rt = runtime();
    let base = server.base.clone();
    let first = rt.spawn(async move { scan(&client(), &base, &slow.join("\n"), None).await });
    let started = std::time::Instant::now();
    while site.hits("/slow-gen/1500/0") == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = rt.block_on(async {
        client()
            .post(server.url("/v1/scan"))
            .body(site.url("/gen/1"))
            .send()
            .await
            .expect("request")
    });
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(
        busy.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or("")),
        Some("5")
    );
    let (status, lines) = rt.block_on(first).expect("the first scan");
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("summary")["ok"], 3);
    let (status, _) =
        rt.block_on(async { scan(&client(), &server.base, &site.url("/gen/1"), None).await });
    assert_eq!(status, 200, "taken again once the first scan was answered");
    assert_eq!(site.hits("/gen/1"), 1);
}

/// A scan's options: a shorter timeout and fewer retries than the
/// server's, for its pages only; an option the server does not offer is
/// a 400 naming it.
#[test]
fn a_scans_options_limit_its_own_fetches() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private", "--retries", "2"]);
    let slow = site.url("/slow-gen/3000/1");
    let (limited, plain, refused) = runtime().block_on(async {
        let post = |body: Value| {
            client()
                .post(server.url("/v1/scan"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
        };
        let limited = post(serde_json::json!({
            "urls": [slow],
            "options": {"timeout": 0.5, "retries": 0}
        }))
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
        let plain = scan(&client(), &server.base, &site.url("/gen/2"), None).await;
        let refused = post(serde_json::json!({"urls": [slow], "options": {"depth": 2}}))
            .await
            .expect("request");
        let refused = (
            refused.status().as_u16(),
            refused.text().await.expect("body"),
        );
        (limited, plain, refused)
    });
    let page: Value = serde_json::from_str(limited.lines().next().expect("a page")).expect("JSON");
    assert_eq!(page["error"], "timeout", "{limited}");
    assert_eq!(page["attempts"], 1, "{limited}");
    assert_eq!(plain.0, 200);
    assert_eq!(plain.1.last().expect("summary")["ok"], 1);
    assert_eq!(refused.0, 400);
    assert!(refused.1.contains("options.depth"), "{}", refused.1);
}

/// A public-looking name that resolves to a loopback address (here by a
/// hosts file of the test's, never real DNS) is refused like the address
/// itself: the rule checks the resolved address. With --allow-private
/// the same name is fetched, so it did resolve to the site.
#[test]
fn a_name_that_resolves_to_loopback_is_refused() {
    let site = TestServer::start();
    let run = Run::new();
    let hosts = "127.0.0.1 shop.example.com\n";
    let url = format!("http://shop.example.com:{}/gen/5", site.addr.port());
    for (allow, expected) in [(false, "private_address"), (true, "")] {
        let args: &[&str] = if allow {
            &["--no-auth", "--allow-private"]
        } else {
            &["--no-auth"]
        };
        let server = Server::start_with_hosts(&run, hosts, args);
        let (status, lines) =
            runtime().block_on(async { scan(&client(), &server.base, &url, None).await });
        assert_eq!(status, 200);
        let page = &lines[0];
        let error = page["error"].as_str().unwrap_or("");
        assert_eq!(error, expected, "allow-private {allow}: {page}");
    }
    assert_eq!(site.hits("/gen/5"), 1, "fetched only when allowed");
}

/// Turns go client by client: while one client's big scan runs at -c 2,
/// another client's one-page scan is answered long before the big one is
/// half done (with all its URLs queued ahead, it would wait for all).
#[test]
fn a_small_scan_of_another_client_is_not_starved() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private", "-c", "2"]);
    let big: Vec<String> = (0..40)
        .map(|i| site.url(&format!("/slow-gen/300/{i}")))
        .collect();
    let big_done = || {
        (0..40)
            .map(|i| site.hits(&format!("/slow-gen/300/{i}")))
            .sum::<usize>()
    };
    let rt = runtime();
    let base = server.base.clone();
    let first = rt.spawn(async move { scan(&client(), &base, &big.join("\n"), None).await });
    let started = std::time::Instant::now();
    while big_done() < 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, lines) = rt.block_on(async {
        scan(
            &other_client(),
            &server.base,
            &site.url("/slow-gen/300/99"),
            None,
        )
        .await
    });
    let when = big_done();
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("summary")["ok"], 1);
    assert!(
        when < 20,
        "the small scan waited for {when} of the big scan's 40 pages"
    );
    let (status, lines) = rt.block_on(first).expect("the big scan");
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("summary")["ok"], 40);
}

/// Behind a reverse proxy every scan comes from its address: with
/// `--client-header`, the header it sets names the client instead, so a
/// client with thirty scans running does not hold back another's one-page scan
/// (both through the same address).
#[test]
fn a_reverse_proxys_header_names_the_client() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(
        &run,
        &[
            "--no-auth",
            "--allow-private",
            "-c",
            "2",
            "--client-header",
            "X-Forwarded-For",
        ],
    );
    let paths: Vec<String> = (0..120).map(|i| format!("/slow-gen/300/{i}")).collect();
    let busy_done = || paths.iter().map(|p| site.hits(p)).sum::<usize>();
    let rt = runtime();
    let scans: Vec<_> = paths
        .chunks(4)
        .map(|pair| {
            let request = client()
                .post(server.url("/v1/scan"))
                .header("x-forwarded-for", "203.0.113.9, 192.0.2.1")
                .body(
                    pair.iter()
                        .map(|p| site.url(p))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            // Read to the end: a client that hangs up gives up its scan.
            rt.spawn(async move { request.send().await?.text().await })
        })
        .collect();
    // Most of the thirty running (the first may be done before the last
    // arrives).
    let in_flight = || {
        let metrics = rt.block_on(async {
            let answer = client().get(server.url("/metrics")).send().await;
            answer.expect("metrics").text().await.expect("metrics text")
        });
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("scriptscrape_scans_in_flight "))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 25)
    };
    let started = std::time::Instant::now();
    while !in_flight() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let small = rt.block_on(async {
        let answer = client()
            .post(server.url("/v1/scan"))
            .header("x-forwarded-for", "192.0.2.2")
            .body(site.url("/slow-gen/300/99"))
            .send()
            .await
            .expect("the small scan");
        answer.text().await.expect("its answer")
    });
    let when = busy_done();
    assert!(small.contains("\"ok\":1"), "{small}");
    assert!(
        when < 20,
        "the small scan waited for {when} of the other client's 120 pages"
    );
    drop(scans);
}

/// Requests for the crawl site's pages (`/site/N`) the test site had.
fn site_pages_fetched(site: &TestServer) -> usize {
    (0..crate::support::SITE_PAGES)
        .map(|n| site.hits(&format!("/site/{n}")))
        .sum()
}

/// Another client: another source address (127.0.0.2).
fn other_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(Some("127.0.0.2".parse().expect("an address")))
        .build()
        .expect("client")
}

/// A crawl's links take turns as listed URLs do: another client's
/// one-page scan is answered long before a crawl of 40 pages is half done
/// (were the links queued as they are found, it would wait behind them).
#[test]
fn a_crawl_does_not_crowd_out_another_clients_scan() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(
        &run,
        &[
            "--no-auth",
            "--allow-private",
            "-c",
            "2",
            "--delay",
            "100ms",
            "--max-depth",
            "2",
        ],
    );
    let crawled = || site_pages_fetched(&site);
    let rt = runtime();
    let base = server.base.clone();
    let seed = [site.url("/site/0")];
    let options = serde_json::json!({"depth": 2, "max_pages": 40});
    let first = rt.spawn(async move { scan_json(&base, &seed, options).await });
    let started = std::time::Instant::now();
    while crawled() < 3 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, lines) = rt
        .block_on(async { scan(&other_client(), &server.base, &site.url("/gen/99"), None).await });
    let when = crawled();
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("summary")["ok"], 1);
    assert!(
        when < 20,
        "the small scan waited for {when} of the crawl's 40 pages"
    );
    let (status, lines) = rt.block_on(first).expect("the crawl");
    assert_eq!(status, 200);
    assert_eq!(keyed(&lines, "page").len(), 40);
}

/// What the server cannot hold to its rules it refuses at start: the
/// operator's credentials and headers (they would go to whatever site a
/// client names), a proxy without --allow-private (it resolves names
/// itself), options of a plain run serve does not offer, and a token no
/// client could send.
#[test]
fn serve_refuses_at_start_what_it_cannot_hold() {
    let run = Run::new();
    std::fs::write(run.path("accented"), "é".repeat(9)).expect("token file");
    let cases: [(&[&str], &str); 9] = [
        (&["-u", "admin:s3cret"], "-u (--user)"),
        (&["-H", "X-Team: blue"], "-H (--header)"),
        (&["-b", "session=1"], "-b (--cookie)"),
        (&["--proxy", "http://127.0.0.1:9"], "a proxy is set"),
        (
            &["--fetch-scripts"],
            "not a server option: a scan asks for it with options.fetch_scripts",
        ),
        (&["--depth", "2"], "up to --max-depth"),
        (&["--scope", "domain"], "give --max-depth N"),
        (&["--inline-text"], "--inline-text is not offered by serve"),
        (&["--token-file", "accented"], "visible ASCII"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        if !args.contains(&"--token-file") {
            all.push("--no-auth");
        }
        all.extend_from_slice(args);
        let out = run.run(&all, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    }
}

/// The scheme of the Authorization header is case-insensitive, a 401 says
/// which scheme to use, and a JSON body is known by its media type
/// whatever its case and parameters.
#[test]
fn http_details_clients_rely_on() {
    let site = TestServer::start();
    let run = Run::new();
    let token = "another-token-0123456789";
    let server = Server::start_with_token(&run, token, &["--allow-private"]);
    let (refused, lower) = runtime().block_on(async {
        let refused = client()
            .post(server.url("/v1/scan"))
            .body(site.url("/gen/1"))
            .send()
            .await
            .expect("request");
        let lower = client()
            .post(server.url("/v1/scan"))
            .header("authorization", format!("bearer {token}"))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(serde_json::json!({"urls": [site.url("/gen/1")]}).to_string())
            .send()
            .await
            .expect("request");
        let refused = (
            refused.status().as_u16(),
            refused
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap_or("").to_owned()),
        );
        (
            refused,
            (lower.status().as_u16(), lower.text().await.expect("body")),
        )
    });
    assert_eq!(refused.0, 401);
    assert!(refused.1.is_some_and(|v| v.starts_with("Bearer")));
    assert_eq!(lower.0, 200);
    let first: Value = serde_json::from_str(lower.1.lines().next().expect("a page")).expect("JSON");
    assert_eq!(
        first["page_url"],
        site.url("/gen/1").as_str(),
        "{}",
        lower.1
    );
}

/// A client that stops reading its stream is cut once its unread pages
/// pass the scan's buffer: its remaining URLs are given up, and the
/// server's pending count (--max-pending) is free again for others.
#[test]
fn a_client_that_stops_reading_is_cut() {
    use std::io::Write as _;
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(
        &run,
        &["--no-auth", "--allow-private", "--max-pending", "1000"],
    );
    let urls: Vec<String> = (0..1000)
        .map(|i| site.url(&format!("/fixtures/kitchen-sink.html?{i}")))
        .collect();
    let body = urls.join("\n");
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stalled = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stalled,
        "POST /v1/scan HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send the scan");
    // It never reads. Another client's scan is taken once the stalled one
    // is cut (before that, --max-pending is taken by its 1000 URLs).
    let started = std::time::Instant::now();
    let mut answered = None;
    while started.elapsed() < Duration::from_secs(30) {
        let (status, lines) = runtime()
            .block_on(async { scan(&client(), &server.base, &site.url("/gen/1"), None).await });
        if status == 200 {
            answered = Some(lines);
            break;
        }
        assert_eq!(status, 503);
        std::thread::sleep(Duration::from_millis(200));
    }
    let lines = answered.expect("the other client's scan was never taken");
    assert_eq!(lines.last().expect("summary")["ok"], 1);
    // Hits are counted by path: every page of the scan is this one.
    let fetched = site.hits("/fixtures/kitchen-sink.html");
    assert!(
        fetched < 1000,
        "all {fetched} pages were fetched for a client not reading"
    );
    drop(stalled);
}

/// A client that trickles its request headers (slowloris), sends nothing,
/// speaks HTTP/2 without asking, or keeps its connection idle after a
/// request, does not hold the connection: the server closes it (within
/// 10 s; the test waits at most 30).
#[test]
fn a_client_trickling_its_headers_is_closed() {
    use std::io::{Read as _, Write as _};
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth"]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let openings: [&[u8]; 4] = [
        b"POST /v1/scan HTTP/1.1\r\nHost: x\r\n",
        b"",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let clients: Vec<_> = openings
        .into_iter()
        .map(|opening| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
                slow.write_all(opening).expect("the opening");
                slow.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("read timeout");
                let mut rest = Vec::new();
                // The server answers (408) and closes, or just closes:
                // either way the read ends; a read timeout would be an
                // error of kind WouldBlock.
                if let Err(e) = slow.read_to_end(&mut rest) {
                    assert_ne!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock,
                        "{:?}: the connection was still open after 30 s",
                        String::from_utf8_lossy(opening)
                    );
                }
                rest
            })
        })
        .collect();
    let answers: Vec<Vec<u8>> = clients
        .into_iter()
        .map(|c| c.join().expect("a client thread"))
        .collect();
    // The complete request was answered before its idle connection closed.
    assert!(
        answers[3].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answers[3])
    );
    // And the server still serves others.
    let health = runtime().block_on(async {
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status()
            .as_u16()
    });
    assert_eq!(health, 200);
}

/// POSTs a JSON scan of `urls` with `options` (no token) and returns the
/// status and the JSON Lines of the answer.
async fn scan_json(server: &str, urls: &[String], options: Value) -> (u16, Vec<Value>) {
    let request = client()
        .post(format!("{server}/v1/scan"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"urls": urls, "options": options}).to_string());
    answer(request).await
}

/// A scan with `depth` crawls as the CLI's `--depth` does: the same pages
/// (normal forms, depths, referrers) and the same scripts; a duplicate
/// line is counted, not fetched twice.
#[test]
fn a_crawling_scans_objects_are_the_clis_crawl() {
    let site = TestServer::start();
    let seeds = [site.url("/site/0"), site.url("/site/7")];
    let run = Run::new();
    let list = run.urls("seeds.txt", &seeds);
    let cli = run.run(
        &[
            &list,
            "--depth",
            "2",
            "--allow-private",
            "-o",
            "scripts.jsonl",
            "--pages",
            "pages.jsonl",
        ],
        None,
    );
    assert!(cli.code == 0 || cli.code == 1, "{}", cli.stderr);
    let cli_pages = keyed_file(&run.path("pages.jsonl"), "page");
    assert!(cli_pages.len() > 100, "{}", cli_pages.len());

    let server = Server::start(&run, &["--no-auth", "--allow-private", "--max-depth", "3"]);
    let mut urls = seeds.to_vec();
    urls.push(format!("{}#again", seeds[0]));
    let (status, lines) = runtime().block_on(scan_json(
        &server.base,
        &urls,
        serde_json::json!({"depth": 2}),
    ));
    assert_eq!(status, 200);
    let pages = keyed(&lines, "page");
    assert_eq!(pages, cli_pages);
    assert_eq!(
        keyed(&lines, "script"),
        keyed_file(&run.path("scripts.jsonl"), "script")
    );
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["object"], "summary");
    assert_eq!(summary["urls"], 3);
    assert_eq!(summary["duplicates"], 1);
    assert_eq!(summary["pages"], pages.len());
    assert_eq!(summary["discovered"], pages.len() - 2);
    assert_eq!(summary["not_fetched"], 0);
    assert!(summary["off_scope"].as_u64().expect("a count") > 0);
    assert_eq!(summary["cut_short"], false);
    // Each page fetched once.
    assert_eq!(site.hits("/site/7"), 2, "once by the CLI, once by the scan");
}

/// A crawl fetches at most its `max_pages`, listed URLs included, and
/// says how many it found but left; a depth past the server's is refused.
#[test]
fn a_crawling_scan_keeps_to_its_budget_and_the_servers_depth() {
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private", "--max-depth", "2"]);
    let (status, lines, refused) = runtime().block_on(async {
        let seed = [site.url("/site/0")];
        let (status, lines) = scan_json(
            &server.base,
            &seed,
            serde_json::json!({"depth": 2, "max_pages": 15}),
        )
        .await;
        let (refused, answer) =
            scan_json(&server.base, &seed, serde_json::json!({"depth": 3})).await;
        // A budget below the distinct URLs is refused; repeats do not count.
        let one = serde_json::json!({"depth": 1, "max_pages": 1});
        let twice = [site.url("/site/5"), site.url("/site/5#again")];
        let (repeats, _) = scan_json(&server.base, &twice, one.clone()).await;
        let two = [site.url("/site/5"), site.url("/site/6")];
        let (over, why) = scan_json(&server.base, &two, one).await;
        assert_eq!((repeats, over), (200, 400));
        let why = why[0]["error"].as_str().expect("an error");
        assert!(
            why.contains("less than the scan's 2 distinct URLs"),
            "{why}"
        );
        (status, lines, (refused, answer))
    });
    assert_eq!(status, 200);
    let pages = keyed(&lines, "page");
    assert_eq!(pages.len(), 15);
    // And the scan of /site/5 with a budget of 1: one page.
    let fetched = site_pages_fetched(&site) + site.hits("/json");
    assert_eq!(
        fetched,
        16,
        "the site saw the budget and no more: {:?}",
        pages.keys()
    );
    let summary = lines.last().expect("a summary");
    let discovered = summary["discovered"].as_u64().expect("a count");
    assert!(discovered > 14, "{summary}");
    assert_eq!(summary["not_fetched"], discovered - 14);
    assert_eq!(summary["cut_short"], false);
    assert_eq!(refused.0, 400);
    let why = refused.1[0]["error"].as_str().expect("an error");
    assert!(
        why.contains("from 0 to the server's 2 (--max-depth)"),
        "{why}"
    );
}

/// With `fetch_scripts`, a scan's script objects carry what is behind each
/// script, as the CLI's `--fetch-scripts` rows do; each scan fetches its
/// scripts afresh (a script changed between two scans is seen changed),
/// and once for all its pages.
#[test]
fn a_scan_may_fetch_its_scripts_and_each_scan_sees_them_afresh() {
    let site = TestServer::start();
    site.set_script("shared.js", "var v = 1;", Duration::ZERO);
    site.set_script("slow.js", "var s = 1;", Duration::from_millis(300));
    for name in ["a", "b"] {
        site.set_page(
            name,
            "<script src=/js/shared.js integrity=sha256-nope></script>\
             <script src=/js/slow.js></script><script src=/js/missing.js></script>\
             <script>inline()</script>",
        );
    }
    let urls = [site.url("/page/a"), site.url("/page/b")];
    let run = Run::new();
    let list = run.urls("urls.txt", &urls);
    let cli = run.run(&[&list, "--fetch-scripts", "-o", "scripts.jsonl"], None);
    assert!(cli.code == 0 || cli.code == 1, "{}", cli.stderr);
    let server = Server::start(&run, &["--no-auth", "--allow-private"]);
    let options = serde_json::json!({"fetch_scripts": true});
    let (first, second, plain) = runtime().block_on(async {
        let first = scan_json(&server.base, &urls, options.clone()).await;
        site.set_script("shared.js", "var v = 2;", Duration::ZERO);
        let second = scan_json(&server.base, &urls, options).await;
        let plain = scan_json(&server.base, &urls, serde_json::json!({})).await;
        (first, second, plain)
    });
    assert_eq!(first.0, 200);
    let scripts = keyed(&first.1, "script");
    assert_eq!(scripts, keyed_file(&run.path("scripts.jsonl"), "script"));
    let shared = |lines: &[Value]| {
        lines
            .iter()
            .find(|l| {
                l["object"] == "script"
                    && l["src"].as_str().is_some_and(|s| s.ends_with("shared.js"))
            })
            .map(|l| l["content_sha384"].clone())
            .expect("the shared script's row")
    };
    assert!(shared(&first.1).is_string());
    assert_ne!(
        shared(&first.1),
        shared(&second.1),
        "the second scan saw the change"
    );
    assert!(
        shared(&plain.1).is_null(),
        "a scan that did not ask fetched nothing"
    );
    // The CLI once, each asking scan once, for both pages together.
    assert_eq!(site.hits("/js/shared.js"), 3);
    assert_eq!(site.hits("/js/slow.js"), 3);
}

/// A hundred pages waiting for one slow script are all handed on when it
/// comes, to a client that reads: none is lost to the scan's buffer.
#[test]
fn pages_released_together_by_their_script_all_reach_the_client() {
    let site = TestServer::start();
    site.set_script("shared.js", "var shared;", Duration::from_millis(1500));
    let urls: Vec<String> = (0..100)
        .map(|i| {
            site.set_page(&format!("p{i}"), "<script src=/js/shared.js></script>");
            site.url(&format!("/page/p{i}"))
        })
        .collect();
    let run = Run::new();
    let server = Server::start(&run, &["--no-auth", "--allow-private", "-c", "32"]);
    let options = serde_json::json!({"fetch_scripts": true});
    let (status, lines) = runtime().block_on(scan_json(&server.base, &urls, options));
    assert_eq!(status, 200);
    let summary = lines.last().expect("a summary");
    assert_eq!(summary["pages"], 100, "{summary}");
    assert_eq!(summary["cut_short"], false, "{summary}");
    assert_eq!(keyed(&lines, "page").len(), 100);
}

/// A scan whose pages wait for a script that does not answer is paused
/// once it holds its share of pages; another client's scan is answered
/// meanwhile (it waited for the script before: the server's bound on
/// waiting pages was reached by the one scan).
#[test]
fn a_scan_waiting_on_its_scripts_does_not_hold_back_another() {
    let site = TestServer::start();
    let urls: Vec<String> = (0..100)
        .map(|i| {
            site.set_page(&format!("h{i}"), "<script src=/stall-headers></script>");
            site.url(&format!("/page/h{i}"))
        })
        .collect();
    let run = Run::new();
    let server = Server::start(
        &run,
        &[
            "--no-auth",
            "--allow-private",
            "-c",
            "4",
            "--timeout",
            "60",
            "--retries",
            "0",
        ],
    );
    let rt = runtime();
    let streamed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held_scan = {
        let (base, streamed) = (server.base.clone(), std::sync::Arc::clone(&streamed));
        let body = serde_json::json!({"urls": urls, "options": {"fetch_scripts": true}});
        rt.spawn(async move {
            let mut answer = client()
                .post(format!("{base}/v1/scan"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("the held scan");
            while let Ok(Some(chunk)) = answer.chunk().await {
                let pages = chunk
                    .windows(17)
                    .filter(|w| w == b"\"object\":\"page\"")
                    .count();
                streamed.fetch_add(pages, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let fetched = || {
        (0..100)
            .map(|i| site.hits(&format!("/page/h{i}")))
            .sum::<usize>()
    };
    let started = std::time::Instant::now();
    while fetched() < 66 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(fetched() >= 66, "the held scan's pages were fetched");
    let (status, lines) =
        rt.block_on(async { scan(&other_client(), &server.base, &site.url("/gen/1"), None).await });
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("a summary")["ok"], 1);
    assert_eq!(
        streamed.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the other scan was answered while the script still stalled"
    );
    assert_eq!(
        site.hits("/stall-headers"),
        1,
        "the script was asked for once"
    );
    held_scan.abort();
}

/// A client that does not read its answer does not hold the server past
/// its grace period on SIGTERM: its connection is dropped a second after
/// (the process's own last resort, five seconds after, is not needed).
#[test]
fn a_client_not_reading_does_not_hold_a_stopping_server() {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let site = TestServer::start();
    let run = Run::new();
    let mut server = Server::start(&run, &["--no-auth", "--allow-private", "--grace", "1"]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut quiet = std::net::TcpStream::connect(&addr).expect("connect");
    let small: libc::c_int = 4096;
    // SAFETY: sets an int option on a socket this test owns.
    let set = unsafe {
        libc::setsockopt(
            quiet.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const small).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "a small receive buffer");
    // Answers of some 40 MB: more than any socket buffers hold.
    site.set_page("many", &"<script>x()</script>".repeat(3000));
    let body: String = (0..20)
        .map(|n| site.url(&format!("/page/many?{n}")) + "\n")
        .collect();
    let request = format!(
        "POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    quiet.write_all(request.as_bytes()).expect("the request");
    let started = std::time::Instant::now();
    while site.hits("/page/many") < 20 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&server.child, libc::SIGTERM);
    let (code, stderr) = server.wait();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(!stderr.contains("blocked"), "{stderr}");
    drop(quiet);
}

/// Pages of a host that hangs fill at most that host's share of the
/// queues: another client's URL on another host is fetched while they
/// hang (were the queues filled with them, it would wait the 20 s the
/// host takes to answer).
#[test]
fn a_host_that_hangs_does_not_hold_back_other_hosts() {
    let hanging = TestServer::start();
    let site = TestServer::start();
    let run = Run::new();
    let server = Server::start(
        &run,
        &[
            "--no-auth",
            "--allow-private",
            "-c",
            "16",
            "--per-host",
            "4",
            "--timeout",
            "60",
            "--retries",
            "0",
        ],
    );
    let stalls: Vec<String> = (0..40)
        .map(|i| hanging.url(&format!("/stall-headers?{i}")))
        .collect();
    let rt = runtime();
    let base = server.base.clone();
    let stalled = rt.spawn(async move { scan(&client(), &base, &stalls.join("\n"), None).await });
    let started = std::time::Instant::now();
    while hanging.hits("/stall-headers") < 4 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        hanging.hits("/stall-headers"),
        4,
        "the hanging host's requests"
    );
    let (status, lines) =
        rt.block_on(async { scan(&other_client(), &server.base, &site.url("/gen/1"), None).await });
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("a summary")["ok"], 1);
    assert_eq!(
        hanging.hits("/stall-headers"),
        4,
        "the other host's page waited for the hanging host's first pages"
    );
    stalled.abort();
}

/// Pages held for their scripts count against their client, not each
/// scan: a client with twenty scans whose script never answers is paused
/// at its share, and does not hold the server's bound on held pages for
/// everyone (twenty scans of 60 held pages each did).
#[test]
fn many_scans_of_one_client_waiting_on_scripts_do_not_hold_back_another() {
    let site = TestServer::start();
    let stalling = TestServer::start();
    let script = stalling.url("/stall-headers");
    site.set_page("hold", &format!("<script src={script}></script>"));
    let run = Run::new();
    let server = Server::start(
        &run,
        &[
            "--no-auth",
            "--allow-private",
            "-c",
            "4",
            "--timeout",
            "60",
            "--retries",
            "0",
            "--max-pending",
            "5000",
        ],
    );
    let rt = runtime();
    let streamed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let scans: Vec<_> = (0..20)
        .map(|s| {
            let urls: Vec<String> = (0..60)
                .map(|i| site.url(&format!("/page/hold?{s}-{i}")))
                .collect();
            let body = serde_json::json!({"urls": urls, "options": {"fetch_scripts": true}});
            let (base, streamed) = (server.base.clone(), std::sync::Arc::clone(&streamed));
            rt.spawn(async move {
                let mut answer = client()
                    .post(format!("{base}/v1/scan"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("a held scan");
                while let Ok(Some(chunk)) = answer.chunk().await {
                    let pages = chunk
                        .windows(17)
                        .filter(|w| w == b"\"object\":\"page\"")
                        .count();
                    streamed.fetch_add(pages, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Until the held scans' pages stop coming: their client is paused.
    let started = std::time::Instant::now();
    let mut last = (0, 0);
    while last.1 < 5 && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        let now = site.hits("/page/hold");
        last = if now == last.0 && now > 0 {
            (now, last.1 + 1)
        } else {
            (now, 0)
        };
    }
    assert!(last.0 < 1200, "{} held pages fetched: not paused", last.0);
    let (status, lines) =
        rt.block_on(async { scan(&other_client(), &server.base, &site.url("/gen/1"), None).await });
    assert_eq!(status, 200);
    assert_eq!(lines.last().expect("a summary")["ok"], 1);
    assert_eq!(
        (stalling.in_flight(), stalling.hits("/stall-headers")),
        (1, 1),
        "the other scan was answered while the script still stalled"
    );
    assert_eq!(streamed.load(std::sync::atomic::Ordering::SeqCst), 0);
    for scan in scans {
        scan.abort();
    }
}

/// One address holds at most a quarter of the server's connections (here
/// 8 of 32, with 64 descriptors): past that its connections are answered
/// 503 at once, and another address is still served.
#[test]
fn one_address_cannot_hold_every_connection() {
    use std::io::{Read as _, Write as _};
    use std::os::unix::process::CommandExt as _;
    let run = Run::new();
    let mut cmd = run.command(&["serve", "--listen", "127.0.0.1:0", "--no-auth"]);
    // SAFETY: setrlimit is async-signal-safe; the child sets its own limit.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let server = Server::spawn(cmd);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let idle: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    // Accepted in order: the next connection is the ninth.
    let get = |stream: &mut std::net::TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: scriptscrape\r\nconnection: close\r\n\r\n")
            .expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = get(&mut std::net::TcpStream::connect(&addr).expect("connect"));
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    assert!(head.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    let error: Value = serde_json::from_str(body).expect("a JSON error");
    assert!(
        error["error"]
            .as_str()
            .expect("its text")
            .contains("8 connections"),
        "{body}"
    );
    let rt = runtime();
    let other = rt.block_on(async {
        let answer = other_client().get(server.url("/healthz")).send().await;
        answer.expect("healthz").text().await.expect("its text")
    });
    assert_eq!(other.trim(), "ok");
    let metrics = rt.block_on(async {
        let answer = other_client().get(server.url("/metrics")).send().await;
        answer.expect("metrics").text().await.expect("its text")
    });
    assert!(
        metrics
            .lines()
            .any(|l| l == "scriptscrape_connections_refused_total 1"),
        "{metrics}"
    );
    drop(idle);
    let started = std::time::Instant::now();
    let mut answer = String::new();
    while !answer.starts_with("HTTP/1.1 200") && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        answer = get(&mut std::net::TcpStream::connect(&addr).expect("connect"));
    }
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the share came back: {answer}"
    );
}
