//! The HTTP side: routes, authentication, what a scan request may hold,
//! and the stream of JSON Lines a scan answers with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::engine::{Engine, Refused, Scan, ScanOptions};
use super::metrics::Metrics;
use super::{MAX_BODY, MAX_URL, Settings};
use crate::output::PageResult;
use crate::run::stop::{Level, Stop};

/// How long a scan's request body may take to arrive whole (4 MiB at a
/// slow client's pace): one that trickles it holds a connection no longer.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request handler shares.
pub struct State {
    engine: Engine,
    token: Option<String>,
    max_urls: usize,
    metrics: Metrics,
    /// What a scan may ask for, at most.
    allowed: Allowed,
    /// `--client-header`.
    client_header: Option<axum::http::HeaderName>,
    stop: Stop,
    grace: Duration,
    /// When the server was asked to stop: scans still running then are
    /// cut `grace` later.
    draining_since: std::sync::OnceLock<tokio::time::Instant>,
}

impl State {
    /// The count of connections refused for their address's share.
    pub(super) fn connections_refused(&self) -> prometheus_client::metrics::counter::Counter {
        self.metrics.connections_refused.clone()
    }

    /// The handlers' state for `settings`' server.
    pub fn new(engine: Engine, settings: &Settings, stop: Stop, grace: Duration) -> State {
        let depth = engine.max_depth();
        let scripts = engine.fetches_scripts();
        State {
            engine,
            token: settings.token.clone(),
            client_header: settings.client_header.clone(),
            max_urls: settings.max_urls,
            metrics: Metrics::new(),
            allowed: Allowed {
                timeout: settings.config.fetch.timeout,
                retries: settings.config.fetch.retries,
                depth,
                pages: settings.max_urls as u64,
                scripts,
            },
            stop,
            grace,
            draining_since: std::sync::OnceLock::new(),
        }
    }

    /// Notes that the server stops accepting scans now.
    pub fn draining(&self) {
        let _ = self.draining_since.set(tokio::time::Instant::now());
    }
}

/// The server's routes: scans and metrics need the token, checked on the
/// headers before any body is read; the health check does not.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/scan", post(scan))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .route("/healthz", get(|| async { "ok\n" }))
        // The scan handler reads its body itself, within MAX_BODY.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Refuses a request without the server's token (401, with the scheme to
/// use), counting refused scans.
async fn guard(Shared(state): Shared<Arc<State>>, request: Request, next: Next) -> Response {
    if authorised(&state, request.headers()) {
        return next.run(request).await;
    }
    if request.uri().path() == "/v1/scan" {
        state
            .metrics
            .scan_answered(StatusCode::UNAUTHORIZED.as_u16());
    }
    let mut refused = refuse(
        StatusCode::UNAUTHORIZED,
        "this needs 'Authorization: Bearer TOKEN' with the server's token",
    );
    refused.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"scriptscrape\""),
    );
    refused
}

/// An error answer: its status and a one-line JSON body saying why.
fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    let body = json!({ "error": why.into() }).to_string() + "\n";
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether `headers` carry the server's token. Compared in constant time:
/// how long a wrong token takes to refuse says nothing of the right one.
fn authorised(state: &State, headers: &HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    constant_time_eq(given.as_bytes(), token.as_bytes())
}

/// Equal bytes, in a time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a scan request asks for: its URLs, and its options.
#[derive(Debug, Default, PartialEq)]
struct Asked {
    urls: Vec<String>,
    options: ScanOptions,
}

/// What a scan may ask for, at most: the server's own.
#[derive(Clone, Copy, Debug)]
struct Allowed {
    /// `--timeout`.
    timeout: Duration,
    /// `--retries`.
    retries: u32,
    /// `--max-depth`.
    depth: u16,
    /// `--max-urls`.
    pages: u64,
    /// Scripts may be fetched.
    scripts: bool,
}

/// The options a scan may set (`"options"` of a JSON body), each within
/// the server's own.
fn options_of(value: &serde_json::Value, server: Allowed) -> Result<ScanOptions, String> {
    let Some(options) = value.as_object() else {
        return Err("\"options\" must be an object".into());
    };
    let mut asked = ScanOptions::default();
    for (name, value) in options {
        match name.as_str() {
            "timeout" => {
                let most = server.timeout.as_secs_f64();
                let secs = value
                    .as_f64()
                    .filter(|s| *s >= 0.001 && *s <= most)
                    .ok_or_else(|| {
                        format!(
                            "options.timeout must be seconds, from 0.001 to the server's \
                             {most} (--timeout)"
                        )
                    })?;
                asked.limits.timeout = Some(Duration::from_secs_f64(secs));
            }
            "retries" => {
                let n = whole(value, 0, u64::from(server.retries)).ok_or_else(|| {
                    format!(
                        "options.retries must be a whole number from 0 to the server's {} \
                         (--retries)",
                        server.retries
                    )
                })?;
                // At most the server's, which is a u32.
                asked.limits.retries = Some(u32::try_from(n).unwrap_or(server.retries));
            }
            "depth" if server.depth == 0 => {
                return Err("options.depth: this server's scans do not crawl (it runs \
                            without --max-depth)"
                    .into());
            }
            "depth" => {
                let n = whole(value, 0, u64::from(server.depth)).ok_or_else(|| {
                    format!(
                        "options.depth must be a whole number from 0 to the server's {} \
                         (--max-depth)",
                        server.depth
                    )
                })?;
                // At most the server's, which is a u16.
                asked.depth = u16::try_from(n).unwrap_or(server.depth);
            }
            "max_pages" => {
                let n = whole(value, 1, server.pages).ok_or_else(|| {
                    format!(
                        "options.max_pages must be a whole number from 1 to the server's {} \
                         (--max-urls)",
                        server.pages
                    )
                })?;
                asked.max_pages = Some(n);
            }
            "fetch_scripts" if !server.scripts => {
                return Err("options.fetch_scripts: this server does not fetch scripts".into());
            }
            "fetch_scripts" => {
                asked.fetch_scripts = value
                    .as_bool()
                    .ok_or("options.fetch_scripts must be true or false")?;
            }
            other => {
                return Err(format!(
                    "options.{other}: not an option of a scan (it may set timeout, retries, \
                     depth, max_pages and fetch_scripts)"
                ));
            }
        }
    }
    if asked.max_pages.is_some() && asked.depth == 0 {
        return Err("options.max_pages bounds a crawl: give options.depth (1 or more) too".into());
    }
    Ok(asked)
}

/// A JSON number that is a whole number from `low` to `high`.
fn whole(value: &serde_json::Value, low: u64, high: u64) -> Option<u64> {
    value.as_u64().filter(|n| (low..=high).contains(n))
}

/// The URLs a scan request names: a JSON body `{"urls": [...],
/// "options": {...}}` or text, one URL per line (blank lines and `#`
/// comments skipped).
fn asked(headers: &HeaderMap, body: &[u8], server: Allowed) -> Result<Asked, String> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            t.eq_ignore_ascii_case("application/json") || t.eq_ignore_ascii_case("text/json")
        });
    if json {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let Some(object) = value.as_object() else {
            return Err("the body must be a JSON object with \"urls\"".into());
        };
        if let Some(field) = object.keys().find(|k| *k != "urls" && *k != "options") {
            return Err(format!(
                "unknown field {field:?}: a scan takes \"urls\" and \"options\""
            ));
        }
        let urls = object
            .get("urls")
            .and_then(|u| u.as_array())
            .ok_or("\"urls\" must be an array of strings")?;
        let urls = urls
            .iter()
            .map(|u| u.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("\"urls\" must be an array of strings")?;
        let options = match object.get("options") {
            Some(options) => options_of(options, server)?,
            None => ScanOptions::default(),
        };
        Ok(Asked { urls, options })
    } else {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text")?;
        let urls = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Ok(Asked {
            urls,
            options: ScanOptions::default(),
        })
    }
}

/// The metrics, for Prometheus (with the server's token, when it has one:
/// a scrape config's `authorization`).
async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    let pending = i64::try_from(state.engine.pending()).unwrap_or(i64::MAX);
    state.metrics.urls_pending.set(pending);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.text(),
    )
        .into_response()
}

async fn scan(
    Shared(state): Shared<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Read here, not by an extractor, so that a body over the cap gets
    // this server's one-line JSON answer (and is counted).
    let read = tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY));
    let response = match read.await {
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body took over {} s to arrive",
                BODY_READ_TIMEOUT.as_secs()
            ),
        ),
        Ok(Ok(body)) => {
            let client = client_of(state.client_header.as_ref(), &headers, peer.ip());
            answer(&state, &headers, &body, client).await
        }
        Ok(Err(_)) => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is over {} MiB, or broken off",
                MAX_BODY >> 20
            ),
        ),
    };
    state.metrics.scan_answered(response.status().as_u16());
    response
}

/// Who a scan request is from, for the turns scans take: the last entry
/// of `header` when the operator named one (what the reverse proxy in
/// front appended: entries before it are the client's own word), else the
/// address it came from.
fn client_of(
    header: Option<&axum::http::HeaderName>,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
) -> String {
    header
        .and_then(|name| headers.get_all(name).iter().next_back())
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map_or_else(|| peer.to_string(), str::to_owned)
}

/// A scan request's answer (its token was checked): the stream, or why
/// not. `client`: who asks (its address), whose scans take turns with
/// other clients'.
async fn answer(state: &Arc<State>, headers: &HeaderMap, body: &[u8], client: String) -> Response {
    let Asked { urls, options } = match asked(headers, body, state.allowed) {
        Ok(asked) => asked,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    if urls.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "no URL to scan");
    }
    if urls.len() > state.max_urls {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} URLs: a scan takes at most {} (--max-urls)",
                urls.len(),
                state.max_urls
            ),
        );
    }
    if let Some(long) = urls.iter().position(|u| u.len() > MAX_URL) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("URL {} is longer than {MAX_URL} bytes", long + 1),
        );
    }
    let given = urls.len();
    let max_urls = state.allowed.pages;
    let scan = match state.engine.scan(urls, options, max_urls, client).await {
        Ok(scan) => scan,
        Err(refused @ Refused::Unfit(_)) => {
            return refuse(StatusCode::BAD_REQUEST, refused.to_string());
        }
        Err(refused) => {
            let busy = matches!(refused, Refused::Busy(..));
            let mut answer = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{refused}: try again later"),
            );
            if busy {
                answer
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            }
            return answer;
        }
    };
    state.metrics.scans_in_flight.inc();
    let stream = futures::stream::unfold(
        Streaming::new(scan, given, Arc::clone(state)),
        |mut s| async move {
            s.next()
                .await
                .map(|chunk| (Ok::<_, std::io::Error>(chunk), s))
        },
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// One scan's answer as it is written: pages as they come, then the
/// summary.
struct Streaming {
    scan: Scan,
    /// URLs the client named.
    given: usize,
    received: usize,
    scripts: u64,
    failed: BTreeMap<&'static str, u64>,
    started: Instant,
    state: Arc<State>,
    done: bool,
}

impl Streaming {
    fn new(scan: Scan, given: usize, state: Arc<State>) -> Self {
        Streaming {
            scan,
            given,
            received: 0,
            scripts: 0,
            failed: BTreeMap::new(),
            started: Instant::now(),
            state,
            done: false,
        }
    }

    /// The next chunk of the answer, `None` once the summary is sent.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let state = Arc::clone(&self.state);
        let cut = async move {
            state.stop.reached(Level::Draining).await;
            let since = *state.draining_since.get_or_init(tokio::time::Instant::now);
            // A second signal does not wait for the grace period.
            tokio::select! {
                () = tokio::time::sleep_until(since + state.grace) => {}
                () = state.stop.reached(Level::Now) => {}
            }
        };
        tokio::select! {
            page = self.scan.pages.recv() => match page {
                Some(page) => Some(self.page(&page)),
                // Closed: every page came, or the scan was cut.
                None => Some(self.summary(!self.scan.complete())),
            },
            () = cut => Some(self.summary(true)),
        }
    }

    fn page(&mut self, page: &PageResult) -> Bytes {
        self.received += 1;
        self.state.metrics.page(page);
        // -v: each failed page; -vv: each page.
        crate::pipeline::log_page(page, tracing::Level::INFO);
        match &page.outcome {
            Ok(scripts) => self.scripts += scripts.len() as u64,
            Err(e) => *self.failed.entry(e.kind.as_str()).or_default() += 1,
        }
        let mut out = Vec::new();
        if let Err(e) = crate::output::jsonl_objects(page, &mut out) {
            tracing::warn!("cannot write a page of a scan: {e}");
        }
        Bytes::from(out)
    }

    fn summary(&mut self, cut_short: bool) -> Bytes {
        self.done = true;
        let failed: u64 = self.failed.values().sum();
        let crawled = self.scan.crawled();
        // Listed or queued without a page: a scan cut short left them.
        let promised = self.given as u64 - self.scan.duplicates + crawled.queued;
        let not_fetched = crawled.left + promised.saturating_sub(self.received as u64);
        let summary = json!({
            "object": "summary",
            "urls": self.given,
            "duplicates": self.scan.duplicates,
            "pages": self.received,
            "ok": self.received as u64 - failed,
            "failed": failed,
            "errors": self.failed,
            "scripts": self.scripts,
            "discovered": crawled.discovered,
            "off_scope": crawled.off_scope,
            "not_fetched": not_fetched,
            "elapsed_s": (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            "cut_short": cut_short,
        });
        Bytes::from(summary.to_string() + "\n")
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.state.metrics.scans_in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_last_entry_of_the_named_header_or_the_peer() {
        let peer: std::net::IpAddr = "192.0.2.9".parse().unwrap();
        let name = axum::http::HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        assert_eq!(client_of(Some(&name), &headers, peer), "192.0.2.9");
        headers.append(&name, "10.9.9.9, 198.51.100.7".parse().unwrap());
        assert_eq!(client_of(None, &headers, peer), "192.0.2.9");
        assert_eq!(client_of(Some(&name), &headers, peer), "198.51.100.7");
        // A second header line: the proxy's is the last.
        headers.append(&name, "203.0.113.4".parse().unwrap());
        assert_eq!(client_of(Some(&name), &headers, peer), "203.0.113.4");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn a_scan_names_urls_and_options_as_json_or_urls_as_lines() {
        let server = Allowed {
            timeout: Duration::from_secs(30),
            retries: 2,
            depth: 2,
            pages: 100,
            scripts: true,
        };
        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let body = br#"{"urls": ["https://a.test/", "b.test"], "options": {"timeout": 2.5, "retries": 0}}"#;
        let got = asked(&json, body, server).unwrap();
        assert_eq!(got.urls, ["https://a.test/", "b.test"]);
        assert_eq!(
            got.options.limits.timeout,
            Some(Duration::from_millis(2500))
        );
        assert_eq!(got.options.limits.retries, Some(0));
        let err = asked(&json, br#"{"urls": [], "depth": 3}"#, server).unwrap_err();
        assert!(err.contains("\"depth\""), "{err}");
        let err = asked(&json, br#"{"urls": [], "options": {"depth": 3}}"#, server).unwrap_err();
        assert!(err.contains("--max-depth"), "{err}");
        let crawl = br#"{"urls": ["a.test"], "options": {"depth": 2, "max_pages": 50, "fetch_scripts": true}}"#;
        let got = asked(&json, crawl, server).unwrap().options;
        assert_eq!(
            (got.depth, got.max_pages, got.fetch_scripts),
            (2, Some(50), true)
        );
        for (body, names) in [
            (
                &br#"{"urls": [], "options": {"max_pages": 101, "depth": 1}}"#[..],
                "--max-urls",
            ),
            (
                br#"{"urls": [], "options": {"max_pages": 5}}"#,
                "options.depth",
            ),
            (
                br#"{"urls": [], "options": {"fetch_scripts": 1}}"#,
                "true or false",
            ),
            (
                br#"{"urls": [], "options": {"user_agent": "x"}}"#,
                "options.user_agent",
            ),
            (
                br#"{"urls": [], "options": {"timeout": 1e-300}}"#,
                "from 0.001",
            ),
        ] {
            let err = asked(&json, body, server).unwrap_err();
            assert!(err.contains(names), "{err}");
        }
        let plain = Allowed {
            depth: 0,
            scripts: false,
            ..server
        };
        let err = asked(&json, br#"{"urls": [], "options": {"depth": 1}}"#, plain).unwrap_err();
        assert!(err.contains("do not crawl"), "{err}");
        let err = asked(
            &json,
            br#"{"urls": [], "options": {"fetch_scripts": true}}"#,
            plain,
        );
        assert!(err.unwrap_err().contains("does not fetch scripts"));
        let err = asked(
            &json,
            br#"{"urls": [], "options": {"timeout": 60}}"#,
            server,
        )
        .unwrap_err();
        assert!(err.contains("--timeout"), "{err}");
        let err = asked(&json, br#"{"urls": [], "options": {"retries": 3}}"#, server).unwrap_err();
        assert!(err.contains("--retries"), "{err}");
        assert!(asked(&json, br#"{"urls": [1]}"#, server).is_err());
        let text = asked(
            &HeaderMap::new(),
            b"https://a.test/\n\n# no\n b.test \n",
            server,
        );
        assert_eq!(text.unwrap().urls, ["https://a.test/", "b.test"]);
    }
}
