//! Test support: a real HTTP server on 127.0.0.1 with fault handlers, and
//! helpers to run the built binary and read its CSV back.

#![allow(dead_code)] // Each test module uses a different part of this.

pub mod browser;
pub mod redis;
pub mod render;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Longest any handler sleeps, so that a server thread always ends.
const MAX_SLEEP: Duration = Duration::from_secs(20);

/// What the server saw, for assertions.
#[derive(Default)]
pub struct Seen {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    hits: Mutex<HashMap<String, usize>>,
    starts: Mutex<Vec<(String, std::time::Instant)>>,
    robots: Mutex<Option<(u16, String)>>,
    pages: Mutex<HashMap<String, String>>,
    last_headers: Mutex<Option<HeaderMap>>,
    targets: Mutex<Vec<String>>,
    down: std::sync::atomic::AtomicBool,
    /// `/js/{name}`: body and how long to wait before answering.
    scripts: Mutex<HashMap<String, (String, Duration)>>,
    /// `/csp/{name}`: a page and the Content-Security-Policy header fields
    /// (and Report-Only ones, marked by a leading `ro:`) it is sent with.
    csp_pages: Mutex<HashMap<String, (String, Vec<String>)>>,
    /// The Referer of every request, by path, in order of arrival.
    referers: Mutex<HashMap<String, Vec<Option<String>>>>,
}

/// A loopback HTTP server that lives as long as this value.
pub struct TestServer {
    pub addr: SocketAddr,
    seen: Arc<Seen>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_on("127.0.0.1")
    }

    /// A server on another loopback address (127.0.0.2, …): another host
    /// for per-host limits, with no DNS involved.
    pub fn start_on(ip: &'static str) -> TestServer {
        let seen = Arc::new(Seen::default());
        let app = Router::new()
            .route("/fixtures/{name}", get(fixture))
            .route("/slow/{ms}/{name}", get(slow_fixture))
            .route("/gen/{n}", get(generated))
            .route("/slow-gen/{ms}/{n}", get(slow_generated))
            .route("/status/{code}", get(status))
            .route("/redirect/{n}", get(redirect_chain))
            .route("/loop", get(|| async { redirect_to("/loop") }))
            .route(
                "/to-ftp",
                get(|| async { redirect_to("ftp://127.0.0.1/x") }),
            )
            .route(
                "/json",
                get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{\"a\": 1}") }),
            )
            .route(
                "/no-type-html",
                get(|| async { untyped(&b"<!DOCTYPE html><script src=/x.js></script>"[..]) }),
            )
            .route(
                "/no-type-binary",
                get(|| async { untyped(&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..]) }),
            )
            .route(
                "/stall-headers",
                get(|| async {
                    tokio::time::sleep(MAX_SLEEP).await;
                    "too late"
                }),
            )
            .route("/stall-body", get(stall_body))
            .route("/big/{bytes}", get(big))
            .route("/headers", get(echo_headers))
            .route("/private/headers", get(echo_headers))
            .route("/cookie/set/{name}", get(set_cookie))
            .route("/cookie/need/{name}", get(need_cookie))
            .route("/encoded/{case}", get(encoded))
            .route("/flaky/{failures}/{key}", get(flaky))
            .route("/deep/{kind}", get(deep))
            .route("/robots.txt", get(robots_txt))
            .route("/page/{name}", get(settable_page))
            .route("/js/{name}", get(settable_script))
            .route("/csp/{name}", get(csp_page))
            .route("/site/{key}", get(site_page))
            .route("/links", get(links_page))
            .route("/sitemaps/{name}", get(sitemaps))
            .route("/goto", get(goto))
            .route("/retry-after/{value}/{key}", get(retry_after))
            .route("/compressed/{encoding}", get(compressed))
            .route("/bomb/{encoding}", get(bomb))
            .layer(middleware::from_fn_with_state(seen.clone(), track))
            .with_state(seen.clone());

        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind((ip, 0))
                    .await
                    .expect("bind loopback");
                addr_tx
                    .send(listener.local_addr().expect("local addr"))
                    .expect("send addr");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await
                    .expect("serve");
            });
            // Handlers still sleeping are dropped with the runtime.
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        TestServer {
            addr,
            seen,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The most requests the server had in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.seen.max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests the server has in flight now.
    pub fn in_flight(&self) -> usize {
        self.seen.in_flight.load(Ordering::SeqCst)
    }

    /// Serve this robots.txt from now on (404 until set).
    pub fn set_robots(&self, status: u16, body: &str) {
        *self.seen.robots.lock().unwrap() = Some((status, body.to_owned()));
    }

    /// Serve `html` at `/page/{name}` from now on (404 until set).
    pub fn set_page(&self, name: &str, html: &str) {
        let mut pages = self.seen.pages.lock().unwrap();
        pages.insert(name.to_owned(), html.to_owned());
    }

    /// Serve `body` as JavaScript at `/js/{name}` from now on (404 until
    /// set), after `delay`.
    pub fn set_script(&self, name: &str, body: &str, delay: Duration) {
        let mut scripts = self.seen.scripts.lock().unwrap();
        scripts.insert(name.to_owned(), (body.to_owned(), delay.min(MAX_SLEEP)));
    }

    /// Serve `html` at `/csp/{name}` with one `Content-Security-Policy`
    /// header field per policy (`ro:` first: a Report-Only field instead).
    pub fn set_csp_page(&self, name: &str, html: &str, policies: &[&str]) {
        let policies = policies.iter().map(|p| p.to_string()).collect();
        let mut pages = self.seen.csp_pages.lock().unwrap();
        pages.insert(name.to_owned(), (html.to_owned(), policies));
    }

    /// The Referer header of each request for `path`, in order.
    pub fn referers(&self, path: &str) -> Vec<Option<String>> {
        let referers = self.seen.referers.lock().unwrap();
        referers.get(path).cloned().unwrap_or_default()
    }

    /// While `down`, every request is answered 503 Service Unavailable,
    /// as by a load balancer whose backend is down.
    pub fn set_down(&self, down: bool) {
        self.seen.down.store(down, Ordering::SeqCst);
    }

    /// When each request whose path starts with `prefix` arrived, in order.
    pub fn arrivals(&self, prefix: &str) -> Vec<std::time::Instant> {
        let starts = self.seen.starts.lock().unwrap();
        starts
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, t)| *t)
            .collect()
    }

    /// How many times `path` was requested.
    pub fn hits(&self, path: &str) -> usize {
        self.seen
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The path and query of every request, in order of arrival, as sent.
    pub fn targets(&self) -> Vec<String> {
        self.seen.targets.lock().unwrap().clone()
    }

    /// Every path requested, with how many times.
    pub fn all_hits(&self) -> HashMap<String, usize> {
        self.seen.hits.lock().unwrap().clone()
    }

    /// Headers of the last request to /headers.
    pub fn last_headers(&self) -> HeaderMap {
        self.seen
            .last_headers
            .lock()
            .unwrap()
            .clone()
            .expect("/headers was requested")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Graceful shutdown waits for open connections; a stalled one would
        // hold the test, so the thread is left to end with its runtime.
        drop(self.thread.take());
    }
}

async fn track(State(seen): State<Arc<Seen>>, req: Request, next: Next) -> Response {
    *seen
        .hits
        .lock()
        .unwrap()
        .entry(req.uri().path().to_owned())
        .or_default() += 1;
    let referer = req
        .headers()
        .get(header::REFERER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    seen.referers
        .lock()
        .unwrap()
        .entry(req.uri().path().to_owned())
        .or_default()
        .push(referer);
    if let Some(target) = req.uri().path_and_query() {
        seen.targets
            .lock()
            .unwrap()
            .push(target.as_str().to_owned());
    }
    let arrival = (req.uri().path().to_owned(), std::time::Instant::now());
    seen.starts.lock().unwrap().push(arrival);
    if seen.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = next.run(req).await;
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/html")
}

fn html(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn fixture(UrlPath(name): UrlPath<String>) -> Response {
    serve_fixture(&name)
}

fn serve_fixture(name: &str) -> Response {
    if name.contains('/') || name.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match std::fs::read(fixtures_dir().join(name)) {
        // No charset: the fixture's own <meta> decides.
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/html")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn slow_fixture(UrlPath((ms, name)): UrlPath<(u64, String)>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms).min(MAX_SLEEP)).await;
    serve_fixture(&name)
}

/// The scripts of generated page `n`: a deterministic mix of external and
/// inline scripts, so a test can know every row without reading the page.
pub fn generated_scripts(n: u64) -> Vec<GenScript> {
    let mut out = Vec::new();
    for k in 0..(n % 4) {
        out.push(GenScript::External(format!("/js/{n}/{k}.js")));
        if (n + k).is_multiple_of(3) {
            out.push(GenScript::Inline(format!(
                "console.log({n}, {k}, \"<\\/tag>\");"
            )));
        }
    }
    out.push(GenScript::Inline(format!("var page = {n};")));
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenScript {
    External(String),
    Inline(String),
}

async fn generated(UrlPath(n): UrlPath<u64>) -> Response {
    let mut page = format!("<!doctype html><html><head><title>page {n}</title>");
    for (i, s) in generated_scripts(n).iter().enumerate() {
        if i == 1 {
            page.push_str("</head><body><p>filler</p>");
        }
        match s {
            GenScript::External(src) => {
                page.push_str(&format!("<script src=\"{src}\" defer></script>"))
            }
            GenScript::Inline(text) => page.push_str(&format!("<script>{text}</script>")),
        }
    }
    page.push_str("</body></html>");
    html(page)
}

/// Pages of the generated crawl site, `/site/0` to `/site/{SITE_PAGES-1}`.
pub const SITE_PAGES: u64 = 3000;

/// The pages `/site/{n}` links to: ten children (`10n+1`…`10n+10`, wrapping
/// around, so the site is full of cycles), its parent and the home page.
/// Page 0 also links to `/json` (not HTML).
pub fn site_links(n: u64) -> Vec<u64> {
    let mut links: Vec<u64> = (1..=10).map(|i| (n * 10 + i) % SITE_PAGES).collect();
    links.push(n.saturating_sub(1) / 10);
    links.push(0);
    links
}

/// One page of the crawl site: its links in many spellings of the same
/// URL (fragments, relative, percent-escapes, tracking parameters, area,
/// iframe), plus links a crawl must not follow (rel=nofollow, another
/// host, mailto:, javascript:).
async fn site_page(UrlPath(key): UrlPath<String>) -> Response {
    let Ok(n) = key.parse::<u64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if n >= SITE_PAGES {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut page = format!(
        "<!doctype html><html><head><title>site {n}</title>\
         <script src=\"/js/site-{n}.js\"></script></head><body><map name=m>"
    );
    for (i, k) in site_links(n).into_iter().enumerate() {
        let digits = k.to_string();
        let link = match i % 6 {
            0 => format!("<a href=\"/site/{k}\">{k}</a>"),
            1 => format!("<a href=\"{k}#section-{i}\">{k}</a>"),
            2 => format!("<a href=\"/site/{k}?utm_source=feed&utm_medium=x\">{k}</a>"),
            3 => format!(
                "<a href=\"/site/%3{}{}\">{k}</a>",
                &digits[..1],
                &digits[1..]
            ),
            4 => format!("<area href=\"./{k}\">"),
            _ => format!("<iframe src=\"/site/{k}#f\"></iframe>"),
        };
        page.push_str(&link);
    }
    page.push_str(&format!(
        "</map><a rel=\"nofollow noopener\" href=\"/site/nofollow-{n}\">nf</a>\
         <a href=\"http://127.0.0.2:9/off-{n}\">off</a>\
         <a href=\"https://example.invalid/{n}\">off</a>\
         <a href=\"mailto:someone@example.invalid\">mail</a>\
         <a href=\"javascript:void(0)\">js</a>"
    ));
    if n == 0 {
        page.push_str("<a href=\"/json\">data</a>");
    }
    page.push_str(&format!("<script>page({n})</script></body></html>"));
    html(page)
}

/// Sitemaps of the crawl site, with absolute URLs on the host asked:
/// `index.xml` lists `a.xml.gz` (gzipped: pages 100 and 101, a duplicate,
/// an entry on another host and /json) and `b.txt` (text: pages 102 and
/// 0; `slow-b.txt` is the same after half a second); `broken.xml` is
/// HTML.
async fn sitemaps(UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let url = |path: &str| format!("http://{host}{path}");
    match name.as_str() {
        "index.xml" => (
            [(header::CONTENT_TYPE, "application/xml")],
            format!(
                "<?xml version=\"1.0\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <sitemap><loc>{}</loc></sitemap><sitemap><loc>{}</loc></sitemap></sitemapindex>",
                url("/sitemaps/a.xml.gz"),
                url("/sitemaps/b.txt")
            ),
        )
            .into_response(),
        "a.xml.gz" => {
            let xml = format!(
                "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <url><loc>{}</loc></url><url><loc>{}</loc></url>\
                 <url><loc>{}</loc></url><url><loc>http://elsewhere.invalid/x</loc></url>\
                 <url><loc>{}</loc></url></urlset>",
                url("/site/100"),
                url("/site/101?utm_source=map"),
                url("/site/100#again"),
                url("/json")
            );
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, xml.as_bytes()).expect("gzip in memory");
            let body = gz.finish().expect("gzip in memory");
            ([(header::CONTENT_TYPE, "application/gzip")], body).into_response()
        }
        "slow-b.txt" | "b.txt" => {
            if name.starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (
                [(header::CONTENT_TYPE, "text/plain")],
                format!("{}\n{}\n", url("/site/102"), url("/site/0")),
            )
                .into_response()
        }
        "broken.xml" => html("<html><body>not a sitemap</body></html>"),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The `u` parameters of a query, decoded.
fn query_urls(query: Option<String>) -> Vec<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "u")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// `/links?u=URL&u=URL…`: a page with a link to each URL.
async fn links_page(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    let links: String = query_urls(query)
        .iter()
        .map(|u| format!("<a href=\"{u}\">link</a>"))
        .collect();
    html(format!("<!doctype html><script>links()</script>{links}"))
}

/// `/goto?u=URL`: a redirect to URL.
async fn goto(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    match query_urls(query).first() {
        Some(to) => redirect_to(to),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The URL of a page of `server` linking to each of `urls`.
pub fn links_to(server: &TestServer, urls: &[String]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for u in urls {
        query.append_pair("u", u);
    }
    server.url(&format!("/links?{}", query.finish()))
}

/// The URL on `server` that redirects to `to`.
pub fn redirect_via(server: &TestServer, to: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("u", to)
        .finish();
    server.url(&format!("/goto?{query}"))
}

async fn slow_generated(UrlPath((ms, n)): UrlPath<(u64, u64)>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms).min(MAX_SLEEP)).await;
    generated(UrlPath(n)).await
}

async fn status(UrlPath(code): UrlPath<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (
        code,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><script>errorPage()</script></html>",
    )
        .into_response()
}

fn redirect_to(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn redirect_chain(UrlPath(n): UrlPath<u32>) -> Response {
    if n == 0 {
        // Relative srcs here must resolve against this, the final URL.
        html("<script src=\"rel.js\"></script><script src=\"../up.js\"></script>")
    } else {
        // Relative Location, as servers often send.
        redirect_to(&format!("../redirect/{}", n - 1))
    }
}

fn untyped(body: &'static [u8]) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().remove(header::CONTENT_TYPE);
    response
}

async fn stall_body() -> Response {
    let head = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(b"<html><script>partial()</script>"))
    });
    let stall = futures::stream::once(async {
        tokio::time::sleep(MAX_SLEEP).await;
        Ok::<_, std::io::Error>(Bytes::from_static(b"</html>"))
    });
    html(Body::from_stream(futures::StreamExt::chain(head, stall)))
}

async fn big(UrlPath(bytes): UrlPath<usize>) -> Response {
    let bytes = bytes.min(64 << 20);
    let mut page = String::from("<html><script>big()</script><p>");
    while page.len() < bytes {
        page.push_str("lorem ipsum dolor sit amet ");
    }
    page.truncate(bytes);
    html(page)
}

/// 503 for the first `failures` requests of each key, then a page.
async fn flaky(State(seen): State<Arc<Seen>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let failures: usize = path
        .split('/')
        .nth(2)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    let hits = seen.hits.lock().unwrap().get(&path).copied().unwrap_or(0);
    if hits <= failures {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    html("<script>recovered()</script>")
}

/// 429 with `Retry-After: value` (seconds, or `date+N` for an HTTP date N
/// seconds ahead) on the first request of each key, then a page.
async fn retry_after(State(seen): State<Arc<Seen>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if seen.hits.lock().unwrap().get(&path).copied().unwrap_or(0) > 1 {
        return html("<script>afterWait()</script>");
    }
    let value = path.split('/').nth(2).unwrap_or("1");
    let value = match value.strip_prefix("date+") {
        Some(secs) => {
            let secs: u64 = secs.parse().unwrap_or(1);
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs))
        }
        None => value.to_owned(),
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, value)],
        "slow down",
    )
        .into_response()
}

/// 200 KB of nesting that makes html5ever's tree builder quadratic:
/// `div`, `ul`, or `table-div`, `table-ul` after a `<table>`, which the
/// fast scan hands to html5ever (the nesting is foster-parented).
async fn deep(UrlPath(kind): UrlPath<String>) -> Response {
    let (table, kind) = match kind.strip_prefix("table-") {
        Some(kind) => ("<table>", kind),
        None => ("", kind.as_str()),
    };
    let unit = match kind {
        "div" => "<div>",
        "ul" => "<ul><li>",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut page = format!("<html><body><script>before()</script>{table}");
    page.push_str(&unit.repeat(200 * 1024 / unit.len()));
    page.push_str("<script>deep()</script></body></html>");
    html(page)
}

async fn robots_txt(State(seen): State<Arc<Seen>>) -> Response {
    match seen.robots.lock().unwrap().clone() {
        Some((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn settable_page(State(seen): State<Arc<Seen>>, UrlPath(name): UrlPath<String>) -> Response {
    match seen.pages.lock().unwrap().get(&name) {
        Some(body) => html(body.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn settable_script(
    State(seen): State<Arc<Seen>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let script = seen.scripts.lock().unwrap().get(&name).cloned();
    match script {
        Some((body, delay)) => {
            tokio::time::sleep(delay).await;
            ([(header::CONTENT_TYPE, "text/javascript")], body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn csp_page(State(seen): State<Arc<Seen>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some((body, policies)) = seen.csp_pages.lock().unwrap().get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = html(body);
    for policy in policies {
        let (name, value) = match policy.strip_prefix("ro:") {
            Some(value) => ("content-security-policy-report-only", value.to_owned()),
            None => ("content-security-policy", policy),
        };
        let value = header::HeaderValue::from_str(&value).expect("a header value");
        response.headers_mut().append(name, value);
    }
    response
}

async fn echo_headers(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
    *seen.last_headers.lock().unwrap() = Some(headers);
    html("<script>ok()</script>")
}

/// The value `/cookie/set/{name}` gives cookie `name`: not in the URL,
/// which logs show.
pub fn cookie_value(name: &str) -> String {
    format!("v4lue-of-{name}")
}

/// A page that sets cookie `name` to [`cookie_value`] for the whole host,
/// for an hour, HttpOnly.
async fn set_cookie(UrlPath(name): UrlPath<String>) -> Response {
    let mut response = html("<script>login()</script>");
    let value = cookie_value(&name);
    let cookie = format!("{name}={value}; Path=/; Max-Age=3600; HttpOnly");
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A page only a request carrying cookie `name` may see (403 without).
async fn need_cookie(UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
    let has = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim().starts_with(&format!("{name}=")));
    if has {
        html("<script>members()</script>")
    } else {
        (StatusCode::FORBIDDEN, "no cookie").into_response()
    }
}

/// The inline script text of every `/encoded/{case}` page.
pub const ENCODED_TEXT: [(&str, &str); 6] = [
    ("euc-kr-meta", "var s = \"안녕하세요\";"),
    ("shift-jis-http-equiv", "var s = \"こんにちは\";"),
    ("windows-1251-header", "var s = \"Привет\";"),
    ("utf-16le-bom", "var s = \"é ✓ 𝄞\";"),
    ("bogus-label-then-meta", "var s = \"こんにちは\";"),
    ("wrong-label", "var s = \"caf\u{fffd}\";"),
];

/// Pages in legacy encodings, declared in the ways the HTML standard knows.
async fn encoded(UrlPath(case): UrlPath<String>) -> Response {
    use encoding_rs::{EUC_KR, SHIFT_JIS, WINDOWS_1251, WINDOWS_1252};
    let text = |case: &str| {
        ENCODED_TEXT
            .iter()
            .find(|(c, _)| *c == case)
            .map(|(_, t)| *t)
            .unwrap_or("")
    };
    let page = |head: &str, script: &str| {
        format!(
            "<!doctype html><html><head>{head}<script>{script}</script></head><body></body></html>"
        )
    };
    let (content_type, body): (&str, Vec<u8>) = match case.as_str() {
        "euc-kr-meta" => (
            "text/html",
            EUC_KR
                .encode(&page("<meta charset=\"euc-kr\">", text(&case)))
                .0
                .into_owned(),
        ),
        "shift-jis-http-equiv" => (
            "text/html",
            SHIFT_JIS
                .encode(&page(
                    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">",
                    text(&case),
                ))
                .0
                .into_owned(),
        ),
        "windows-1251-header" => (
            "text/html; charset=windows-1251",
            WINDOWS_1251.encode(&page("", text(&case))).0.into_owned(),
        ),
        "utf-16le-bom" => {
            let mut bytes = vec![0xff, 0xfe];
            for unit in page("", text(&case)).encode_utf16() {
                bytes.extend_from_slice(&unit.to_le_bytes());
            }
            ("text/html", bytes)
        }
        // A label that names no encoding is ignored; the meta decides.
        "bogus-label-then-meta" => (
            "text/html; charset=klingon",
            SHIFT_JIS
                .encode(&page("<meta charset=shift_jis>", text(&case)))
                .0
                .into_owned(),
        ),
        // windows-1252 bytes labelled UTF-8: the label is obeyed, as in a
        // browser, and the é becomes U+FFFD.
        "wrong-label" => (
            "text/html; charset=utf-8",
            WINDOWS_1252
                .encode(&page("", "var s = \"café\";"))
                .0
                .into_owned(),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The page every `/compressed/{encoding}` serves, before compression.
pub const COMPRESSED_PAGE: &str = "<!doctype html><html><head><script src=\"/packed.js\"></script></head><body><script>unpacked()</script></body></html>";

async fn compressed(UrlPath(encoding): UrlPath<String>) -> Response {
    use std::io::Write as _;
    let page = COMPRESSED_PAGE.as_bytes();
    let body = match encoding.as_str() {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(page).unwrap();
            e.finish().unwrap()
        }
        // HTTP's "deflate" is the zlib format.
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(page).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            brotli::BrotliCompress(&mut &page[..], &mut out, &Default::default()).unwrap();
            out
        }
        "zstd" => zstd::encode_all(page, 3).unwrap(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/html"),
            (header::CONTENT_ENCODING, encoding.as_str()),
        ],
        body,
    )
        .into_response()
}

/// Decompressed size of each `/bomb/{encoding}`: far more than any test's
/// --max-body, and more than the machine could hold as one body.
pub const BOMB_BYTES: u64 = 1 << 30;

async fn bomb(UrlPath(encoding): UrlPath<String>) -> Response {
    static GZIP: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    static ZSTD: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = match encoding.as_str() {
        "gzip" => GZIP.get_or_init(|| gzip_bomb(BOMB_BYTES)).clone(),
        "zstd" => ZSTD.get_or_init(|| zstd_bomb(BOMB_BYTES)).clone(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/html"),
            (header::CONTENT_ENCODING, encoding.as_str()),
        ],
        body,
    )
        .into_response()
}

/// A valid gzip file of `total` zero bytes (a multiple of 1 MiB), about a
/// thousand times smaller. Compressing a gigabyte would take the test a
/// while; instead, once the window is all zeros, each sync-flushed MiB
/// compresses to the same bytes, so that unit is repeated.
fn gzip_bomb(total: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    const MIB: usize = 1 << 20;
    let zeros = vec![0u8; MIB];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut next_unit = || {
        let mut out = Vec::with_capacity(64 * 1024);
        let before = deflate.total_in();
        deflate
            .compress_vec(&zeros, &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!(
            deflate.total_in() - before,
            MIB as u64,
            "one call compresses the whole MiB"
        );
        out
    };
    let first = next_unit();
    let unit = next_unit();
    assert_eq!(unit, next_unit(), "the deflate output for zeros repeats");
    let mibs = total / MIB as u64;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&first);
    for _ in 1..mibs {
        out.extend_from_slice(&unit);
    }
    out.extend_from_slice(&[3, 0]); // An empty final block.
    let mut crc = flate2::Crc::new();
    crc.update(&zeros);
    let mut mib_crc = flate2::Crc::new();
    mib_crc.update(&zeros);
    for _ in 1..mibs {
        crc.combine(&mib_crc);
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes()); // ISIZE is mod 2^32.
    out
}

/// A valid zstd frame of `total` zero bytes made of RLE blocks: four bytes
/// per 128 KiB.
fn zstd_bomb(total: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 * 1024;
    // Magic; frame header: no content size, no checksum, window 128 KiB.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3];
    let blocks = total / BLOCK;
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | ((BLOCK as u32) << 3); // RLE block
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

/// A free port with nothing listening (bound, then released).
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/")
}

/// Runs the binary in `run` on `urls` with extra `args`, writing the page
/// report to pages.csv and the scripts to scripts.csv; a panic fails the
/// test whatever the exit status.
pub fn scrape_into(run: &Run, urls: &[impl AsRef<str>], args: &[&str]) -> Output {
    let list = run.urls("urls.txt", urls);
    let mut all = vec![list.as_str(), "--pages", "pages.csv", "-o", "scripts.csv"];
    all.extend_from_slice(args);
    let out = run.run(&all, None);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

/// A CSV file read back: header names and rows.
#[derive(Debug)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(bytes: &[u8]) -> Table {
        let mut rdr = csv::Reader::from_reader(bytes);
        let headers = rdr
            .headers()
            .expect("CSV header")
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = rdr
            .records()
            .map(|r| {
                r.expect("whole CSV record")
                    .iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    pub fn read(path: &Path) -> Table {
        Table::parse(
            &std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
        )
    }

    fn col(&self, name: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    /// The value of column `name` in row `row`.
    pub fn get(&self, row: usize, name: &str) -> &str {
        &self.rows[row][self.col(name)]
    }

    /// Column `name` of every row.
    pub fn column(&self, name: &str) -> Vec<&str> {
        let c = self.col(name);
        self.rows.iter().map(|r| r[c].as_str()).collect()
    }

    /// Column `name` of the first row whose `page_url` is `page`.
    pub fn for_page(&self, page: &str, name: &str) -> &str {
        let row = self.rows_where("page_url", page);
        let first = *row.first().unwrap_or_else(|| panic!("no row for {page}"));
        self.get(first, name)
    }

    /// The rows whose column `name` equals `value`.
    pub fn rows_where(&self, name: &str, value: &str) -> Vec<usize> {
        let c = self.col(name);
        (0..self.rows.len())
            .filter(|&i| self.rows[i][c] == value)
            .collect()
    }
}

/// Waits for `child` to exit, for at most `limit`; past it, kills it and
/// returns `None`.
pub fn wait_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// As [`wait_within`], and the child's own peak resident memory in KiB:
/// its VmHWM, read from /proc while it runs (the high-water mark only
/// grows, so the last reading is within a poll of the peak). Not
/// ru_maxrss: a spawned child inherits its parent's high-water mark
/// through exec, and RUSAGE_CHILDREN also counts every other child the
/// test process has reaped (other tests' browsers and Pythons).
pub fn wait_within_peak(child: &mut std::process::Child, limit: Duration) -> Option<(i32, u64)> {
    let status_file = format!("/proc/{}/status", child.id());
    let deadline = std::time::Instant::now() + limit;
    let mut peak_kib = 0u64;
    loop {
        // Read before checking for exit: once reaped, the file is gone.
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some((status.code().unwrap_or(-1), peak_kib));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines in the file at `path` (0 when it is not there yet).
pub fn lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Runs `command` (a shell command line) on a pseudo-terminal, through
/// script(1), in `dir`, bounded to 30 s; returns its exit status and what
/// it drew on the terminal.
pub fn on_terminal(dir: &Path, command: &str) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut screen = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut screen)
        .expect("read the terminal");
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("ends");
    (status, screen)
}

/// Waits (bounded: 30 s) until `path` holds more than `n` lines.
pub fn wait_for_lines(path: &Path, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lines(path) <= n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never passed {n} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` to a child the test started.
pub fn signal(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill failed");
}

/// Tests never go through a proxy, whatever the machine says.
const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
];

/// SCRIPTSCRAPE_* and RUST_LOG variables of the machine, which would
/// change the binary's options and logs under the tests.
fn own_vars() -> Vec<String> {
    std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("SCRIPTSCRAPE_") || k == "RUST_LOG")
        .collect()
}

/// A temporary directory with helpers to run the binary in it.
pub struct Run {
    pub dir: tempfile::TempDir,
}

/// What a finished run left behind.
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn new() -> Run {
        Run {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a URL list and returns its path as a string argument.
    pub fn urls(&self, name: &str, lines: &[impl AsRef<str>]) -> String {
        let path = self.path(name);
        let text: String = lines.iter().map(|l| format!("{}\n", l.as_ref())).collect();
        std::fs::write(&path, text).expect("write url list");
        path.to_string_lossy().into_owned()
    }

    /// The binary as a process to manage by hand (signals, pipes), in this
    /// directory. The caller bounds how long it waits.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scriptscrape"));
        cmd.args(args);
        self.isolate(&mut cmd);
        cmd
    }

    /// Runs `cmd` (the binary, or a wrapper that execs it) in this
    /// directory, without the machine's proxies, scriptscrape variables
    /// or configuration file.
    pub fn isolate(&self, cmd: &mut std::process::Command) {
        cmd.current_dir(self.dir.path());
        for var in PROXY_VARS.iter().map(|v| v.to_string()).chain(own_vars()) {
            cmd.env_remove(var);
        }
        cmd.env("XDG_CONFIG_HOME", self.no_config_home());
    }

    /// A configuration home with no configuration file in it, so that the
    /// user's own (~/.config/scriptscrape/config.toml) changes no test.
    fn no_config_home(&self) -> PathBuf {
        self.dir.path().join("no-config-home")
    }

    /// The binary started in the background with `args`, its standard
    /// output and error discarded. The caller bounds how long it waits.
    pub fn spawn_quiet(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start scriptscrape")
    }

    /// As [`Run::spawn_quiet`], with a pipe to its standard input, which
    /// the caller feeds (and closes) line by line.
    pub fn spawn_fed(&self, args: &[&str]) -> (std::process::Child, std::process::ChildStdin) {
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start scriptscrape");
        // Asked for just above: piped.
        let stdin = child.stdin.take().expect("piped stdin");
        (child, stdin)
    }

    /// Runs the binary with `args` and optional standard input, bounded to
    /// 60 s.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with_env(args, stdin, &[])
    }

    /// As [`Run::run`], with these environment variables set for the
    /// child only (`XDG_CONFIG_HOME` among them replaces the empty one).
    pub fn run_with_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = assert_cmd::Command::cargo_bin("scriptscrape").expect("binary built");
        cmd.current_dir(self.dir.path())
            .args(args)
            .timeout(Duration::from_secs(60));
        for var in PROXY_VARS.iter().map(|v| v.to_string()).chain(own_vars()) {
            cmd.env_remove(var);
        }
        cmd.env("XDG_CONFIG_HOME", self.no_config_home());
        for (name, value) in env {
            cmd.env(name, value);
        }
        match stdin {
            Some(s) => {
                cmd.write_stdin(s.to_owned());
            }
            None => {
                cmd.write_stdin(String::new());
            }
        }
        let out = cmd.output().expect("run scriptscrape");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A bare TCP server for faults axum will not produce: each connection gets
/// the bytes `reply(path)` returns for its first request, and is then
/// closed, whatever its headers promised. Under `/kill-next/` the close
/// waits for the client's next request on the connection, which dies
/// unanswered: the keep-alive race, made certain.
pub struct RawServer {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RawServer {
    pub fn start(reply: fn(&str) -> Vec<u8>) -> RawServer {
        Self::serve(reply, None)
    }

    /// The same over TLS, with a self-signed certificate for 127.0.0.1.
    pub fn start_tls(reply: fn(&str) -> Vec<u8>) -> RawServer {
        Self::serve(reply, Some(Arc::new(self_signed_tls())))
    }

    fn serve(reply: fn(&str) -> Vec<u8>, tls: Option<Arc<rustls::ServerConfig>>) -> RawServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => answer(conn, reply),
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        answer(rustls::StreamOwned::new(session, conn), reply);
                    }
                });
            }
        });
        RawServer { addr, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// A TLS server configuration with a fresh self-signed certificate for
/// 127.0.0.1 (clients need --insecure).
fn self_signed_tls() -> rustls::ServerConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("TLS config")
}

/// An HTTPS server (self-signed, so clients need --insecure) that speaks
/// HTTP/1.1 and HTTP/2, offered by ALPN. Each page names the protocol
/// version the request arrived in: `<script src="/HTTP/2.0.js">`.
pub struct H2Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl H2Server {
    pub fn start() -> H2Server {
        let mut config = self_signed_tls();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send addr");
                loop {
                    let (tcp, _) = tokio::select! {
                        accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                        _ = &mut shutdown_rx => return,
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                            let page = format!("<script src=\"/{:?}.js\"></script>", req.version());
                            let body = http_body_util::Full::new(Bytes::from(page));
                            let mut response = hyper::Response::new(body);
                            response.headers_mut().insert(header::CONTENT_TYPE, "text/html".parse().expect("header"));
                            Ok::<_, std::convert::Infallible>(response)
                        });
                        let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                        let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                    });
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        H2Server {
            addr,
            shutdown: Some(shutdown_tx),
        }
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads one request from `stream` and writes the reply for its target
/// (the path, or the absolute URL a proxy is sent).
fn answer(stream: impl std::io::Read + std::io::Write, reply: fn(&str) -> Vec<u8>) {
    use std::io::{BufRead as _, BufReader};
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers, bounded.
    for _ in 0..100 {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let _ = reader.get_mut().write_all(&reply(&target));
    let _ = reader.get_mut().flush();
    if target.starts_with("/kill-next/") {
        // Keep the connection until the client reuses it, then close it
        // under that request, unanswered.
        let mut next = String::new();
        let _ = reader.read_line(&mut next);
    }
    // Dropping the stream closes the connection.
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// A table's rows without the `volatile` columns (those that differ from
/// run to run, such as `elapsed_ms`), sorted: a multiset to compare.
pub fn rows_without(table: &Table, volatile: &[&str]) -> Vec<Vec<String>> {
    let keep: Vec<usize> = (0..table.headers.len())
        .filter(|&c| !volatile.contains(&table.headers[c].as_str()))
        .collect();
    let mut rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|r| keep.iter().map(|&c| r[c].clone()).collect())
        .collect();
    rows.sort();
    rows
}

/// `sha384-<base64>` of `body`: an SRI value, as content_sha384 writes it.
pub fn sha384_sri(body: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha384::digest(body.as_bytes());
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `sha256-<base64>` of `body`: an SRI value or a CSP hash source, as
/// inline_sha256 writes it.
pub fn sha256_sri(body: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(body.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Where a Python with pyarrow and duckdb is: `SCRIPTSCRAPE_TEST_PYTHON`,
/// else the virtual environment `.ci/run` makes. `None` (the check
/// skipped, with a message) when there is none, except in CI, where it
/// must run.
pub fn python_with_duckdb(who: &str) -> Option<PathBuf> {
    let candidate = match std::env::var_os("SCRIPTSCRAPE_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"),
    };
    let usable = std::process::Command::new(&candidate)
        .args(["-c", "import pyarrow.parquet, duckdb"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(candidate);
    }
    let how = "python3 -m venv target/test-venv && target/test-venv/bin/pip install pyarrow \
               duckdb (or set SCRIPTSCRAPE_TEST_PYTHON to a Python that has them)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no Python with pyarrow and duckdb at {}: .ci/run makes one; {how}",
            candidate.display()
        );
    }
    eprintln!(
        "{who}: the pyarrow/DuckDB check is skipped: no Python with pyarrow and duckdb at {}; \
         to run it: {how}",
        candidate.display()
    );
    None
}

/// Tests that run a browser hold this shared; tests that measure the
/// spacing of requests at the server hold it alone, so that no Chromium
/// takes the CPU from under their timestamps (a starved server thread
/// records an arrival late, and the next gap looks too short).
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held while a test runs a browser (see [`MACHINE`]).
pub fn browser_running() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held while a test times requests (see [`MACHINE`]).
pub fn quiet_machine() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
