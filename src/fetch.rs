//! The network stage: one HTTP client for the whole run, one GET per page.
//!
//! A fetch either yields the raw body of an HTML document ([`Fetched`]) or a
//! [`FetchFailure`] that says, in the error kinds users see, why not. Nothing
//! here parses HTML or decodes text: that is CPU work, and it belongs to the
//! parse stage, off the async worker threads.

use std::cell::RefCell;
use std::sync::{Arc, Once};
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap, LOCATION, REFERER};
use reqwest::redirect;
use url::Url;

use crate::content::sri::{Digests, Hasher};
use crate::crawl::netguard::{Blocked, Guard};
use crate::error::{ErrorKind, PageError};

pub mod jar;
mod words;
use words::Target;

use crate::proxy::Proxies;

/// What the fetch stage needs to know, validated.
#[derive(Clone, Debug)]
pub struct FetchSettings {
    /// Whole-request limit: connecting, waiting, and reading the body.
    pub timeout: Duration,
    /// Limit on establishing the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Largest body accepted, counted after decompression.
    pub max_body: u64,
    /// Redirect hops followed before the page fails with `redirect`.
    pub max_redirects: usize,
    /// The User-Agent header.
    pub user_agent: String,
    /// Extra request headers (`-H`).
    pub headers: HeaderMap,
    /// Retries after a transient failure (`--retries`).
    pub retries: u32,
    /// Longest Retry-After honoured; a longer one fails the page at once.
    pub max_retry_wait: Duration,
    /// `--proxy`, or the proxies the environment names (checked).
    pub proxies: Proxies,
    /// Accept any certificate (`--insecure`).
    pub insecure: bool,
    /// Idle connections kept per host; sized to the concurrency so that a
    /// run against one host reuses its connections.
    pub pool_per_host: usize,
    /// `-u`: basic auth for the listed URLs' origins.
    pub user: Option<Credentials>,
    /// `-b`: `NAME=VALUE` cookies for the listed URLs' origins.
    pub cookies: Vec<String>,
    /// `--cookie-jar` and `-b FILE`: the run's cookie jar, which then also
    /// sends `cookies`.
    pub jar: Option<Arc<jar::Jar>>,
}

/// A user name and password (`-u`); shown nowhere, its `Debug` included.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

/// A successful response carrying an HTML document, not yet decoded.
#[derive(Debug)]
pub struct Fetched {
    /// The URL after redirects; the document's URL for resolving `src`.
    pub final_url: Url,
    /// The HTTP status (2xx).
    pub status: u16,
    /// The body, decompressed.
    pub body: Vec<u8>,
    /// The `charset` parameter of Content-Type, if any.
    pub charset: Option<String>,
    /// Requests made for this page, retries included.
    pub attempts: u32,
    /// The Content-Security-Policy header fields, as received.
    pub csp: Vec<String>,
}

/// A script's body as fetched (`--fetch-scripts`): its size and digests;
/// the bytes themselves are not kept.
#[derive(Clone, Debug)]
pub struct ScriptBody {
    /// The URL after redirects.
    pub final_url: Url,
    /// The HTTP status (2xx).
    pub status: u16,
    /// Body bytes (decompressed).
    pub bytes: u64,
    /// The body's digests in every Subresource Integrity algorithm.
    pub digests: Digests,
    /// Requests made, retries included.
    pub attempts: u32,
}

/// A page that could not be fetched as an HTML document.
#[derive(Debug)]
pub struct FetchFailure {
    /// Why.
    pub error: PageError,
    /// The last URL reached, when a response came back; after a redirect,
    /// the URL redirected to, also when it gave no response.
    pub final_url: Option<Url>,
    /// The HTTP status, when a response came back: after a redirect to a
    /// URL that gave none, the redirect's.
    pub status: Option<u16>,
    /// Body bytes read before the failure.
    pub bytes: u64,
    /// Requests made for this page, retries included (0 when none could
    /// be made).
    pub attempts: u32,
    /// What a Retry-After header asked for, on a status failure.
    pub retry_after: Option<Duration>,
}

impl FetchFailure {
    /// A failure before any response came back.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        FetchFailure {
            error: PageError::new(kind, detail),
            final_url: None,
            status: None,
            bytes: 0,
            attempts: 0,
            retry_after: None,
        }
    }

    /// This failure, of a request that got as far as a redirect to `hop`
    /// (if any): unless it already names a response, the page's final URL
    /// is the hop's and its status the redirect's, and a timeout says
    /// where it was waiting.
    fn after(mut self, hop: Option<Hop>) -> Self {
        let Some(hop) = hop else { return self };
        if self.final_url.is_some() {
            return self;
        }
        if self.error.kind == ErrorKind::Timeout && self.error.detail.starts_with("timed out") {
            self.error.detail = format!(
                "{} after a redirect to {}",
                self.error.detail,
                shown(&hop.url)
            );
        }
        self.final_url = Some(hop.url);
        self.status = Some(hop.status);
        self
    }

    /// Whether trying again may help: network trouble and the statuses
    /// that mean "not now" (RFC 9110), never a definite answer such as 404,
    /// a TLS failure or an oversized body.
    pub fn is_transient(&self) -> bool {
        match self.error.kind {
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Io => true,
            ErrorKind::HttpStatus => {
                matches!(self.status, Some(408 | 425 | 429 | 500 | 502 | 503 | 504))
            }
            _ => false,
        }
    }
}

/// A test every redirect hop of one request must pass, besides the
/// client's own rules: a crawl keeps a discovered page's redirects in its
/// scope with one. `false` refuses the hop.
pub type HopRule = Arc<dyn Fn(&Url) -> bool + Send + Sync>;

tokio::task_local! {
    // reqwest's redirect policy is set once per client, and sees nothing of
    // the request but its URLs; the rule of the request being followed
    // reaches it through the task that polls the request, which is the one
    // that set it (redirects are followed inside the response future).
    static HOP_RULE: HopRule;
    // The last redirect the client followed for the request being sent,
    // kept by the redirect policy the same way: a request that fails at a
    // hop fails with an error whose url() is the first URL (reqwest 0.13
    // follows redirects in a tower layer, which does not say which hop
    // failed), so the hop is known from here.
    static LAST_HOP: RefCell<Option<Hop>>;
    // The origin `-u`'s credentials may go to, for the page being fetched.
    static AUTH_ORIGIN: Option<url::Origin>;
}

/// A redirect the client followed.
#[derive(Clone, Debug)]
struct Hop {
    /// Where to.
    url: Url,
    /// The redirect's status (3xx).
    status: u16,
}

/// Runs `exchange` (one request, with its redirects) keeping track of the
/// redirects it follows; returns the last one with its output.
async fn following<T>(exchange: impl Future<Output = T>) -> (T, Option<Hop>) {
    LAST_HOP
        .scope(RefCell::new(None), async {
            let out = exchange.await;
            (out, LAST_HOP.with(|hop| hop.take()))
        })
        .await
}

/// The last redirect followed in [`following`]'s exchange so far.
fn last_hop() -> Option<Hop> {
    LAST_HOP.try_with(|hop| hop.borrow().clone()).ok().flatten()
}

/// A redirect hop the client refused, with the response that asked for
/// it: the page report keeps that response's status and URL.
#[derive(Debug, thiserror::Error)]
#[error("{why}")]
struct HopRefused {
    /// The URL that answered with the redirect.
    from: Url,
    /// That answer's status (3xx).
    status: u16,
    why: HopWhy,
}

#[derive(Debug, thiserror::Error)]
enum HopWhy {
    /// The target is in a private network (a crawl's guard).
    #[error("{0}")]
    Blocked(Blocked),
    /// The request's [`HopRule`] refused the target.
    // A Location may carry a user name and password: shown masked.
    #[error("redirected to {}, outside the crawl's scope", shown(.0))]
    OffScope(Url),
    #[error("redirected to {}, which is not an http(s) URL", shown(.0))]
    Scheme(Url),
    #[error("redirect loop: {} was already visited", shown(.0))]
    Loop(Url),
    #[error("more than {0} redirects (--max-redirects)")]
    TooMany(usize),
}

/// A URL as messages show it, its user info masked.
fn shown(url: &Url) -> std::borrow::Cow<'_, str> {
    crate::output::without_password(url.as_str())
}

impl From<&Blocked> for FetchFailure {
    fn from(blocked: &Blocked) -> Self {
        FetchFailure::new(ErrorKind::PrivateAddress, blocked.to_string())
    }
}

impl From<Blocked> for FetchFailure {
    fn from(blocked: Blocked) -> Self {
        FetchFailure::from(&blocked)
    }
}

/// Fetches pages; cheap to clone (the client is shared).
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    retries: u32,
    max_retry_wait: Duration,
    /// The same client without a connection pool: every request it sends
    /// opens a new connection.
    unpooled: reqwest::Client,
    timeout: Duration,
    connect_timeout: Duration,
    max_body: u64,
    guard: Option<Arc<Guard>>,
    /// Which proxy a request goes through, to name it in errors.
    proxies: Arc<Proxies>,
    /// `-u`, sent only to the origin [`Fetcher::fetch_for`] names.
    user: Option<Arc<Credentials>>,
    /// `-b`'s cookies as one Cookie header, sent like `user`.
    cookie: Option<Arc<str>>,
    /// Whether the client has a cookie jar, which sends `cookie` itself
    /// (the client asks the jar only for a request without a Cookie
    /// header).
    jar: bool,
}

impl Fetcher {
    /// Builds the run's HTTP client; with a guard, requests stay out of
    /// private networks but for the hosts it trusts.
    pub fn new(settings: &FetchSettings, guard: Option<Arc<Guard>>) -> anyhow::Result<Self> {
        install_crypto_provider();
        let client = build_client(settings, settings.pool_per_host, guard.as_ref())?;
        let unpooled = build_client(settings, 0, guard.as_ref())?;
        Ok(Fetcher {
            guard,
            client,
            unpooled,
            retries: settings.retries,
            max_retry_wait: settings.max_retry_wait,
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
            max_body: settings.max_body,
            proxies: Arc::new(settings.proxies.clone()),
            user: settings.user.clone().map(Arc::new),
            cookie: (!settings.cookies.is_empty()).then(|| settings.cookies.join("; ").into()),
            jar: settings.jar.is_some(),
        })
    }

    /// The same client with a shorter `--timeout` or fewer `--retries`
    /// (a served scan's options): never more than its own.
    pub fn limited(&self, timeout: Option<Duration>, retries: Option<u32>) -> Fetcher {
        let mut fetcher = self.clone();
        fetcher.timeout = timeout.map_or(self.timeout, |t| t.min(self.timeout));
        fetcher.retries = retries.map_or(self.retries, |r| r.min(self.retries));
        fetcher
    }

    /// The longest time a page may take (`--timeout`) and the retries it
    /// may get (`--retries`).
    pub fn limits(&self) -> (Duration, u32) {
        (self.timeout, self.retries)
    }

    /// GETs `url` and returns its HTML body, or why there is none,
    /// retrying transient failures.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, FetchFailure> {
        let (mut fetched, attempts) = self.retrying(url, || self.fetch_once(url)).await?;
        fetched.attempts = attempts;
        Ok(fetched)
    }

    /// GETs the script at `url` with `referer` (empty: none) and
    /// returns its size and digests, hashing the body as it arrives: at
    /// most `limit` bytes are read, and none are kept. Any 2xx response
    /// counts, whatever its Content-Type; transient failures are retried
    /// as for pages.
    pub async fn fetch_script(
        &self,
        url: &Url,
        referer: &str,
        limit: u64,
    ) -> Result<ScriptBody, FetchFailure> {
        let once = || async {
            let deadline = tokio::time::Instant::now() + self.timeout;
            let referer = Some(referer).filter(|r| !r.is_empty());
            let (mut response, meta) = self.respond(url, referer, deadline).await?;
            let mut hasher = Hasher::new();
            let bytes = self
                .read_body(
                    &mut response,
                    &meta,
                    deadline,
                    limit,
                    "--max-script-body",
                    |c| hasher.update(c),
                )
                .await?;
            Ok(ScriptBody {
                final_url: meta.final_url,
                status: meta.status,
                bytes,
                digests: hasher.finish(),
                attempts: 0,
            })
        };
        let (mut body, attempts) = self.retrying(url, once).await?;
        body.attempts = attempts;
        Ok(body)
    }

    /// Runs `once` (one request for `url`) until it succeeds, fails for
    /// good, or has been retried `--retries` times; returns its output and
    /// the attempts made.
    async fn retrying<T, F, Fut>(&self, url: &Url, mut once: F) -> Result<(T, u32), FetchFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, FetchFailure>>,
    {
        // Refused before any request: attempts stays 0.
        self.check(url)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut failure = match once().await {
                Ok(out) => return Ok((out, attempt)),
                Err(failure) => failure,
            };
            failure.attempts = attempt;
            if attempt > self.retries || !failure.is_transient() {
                return Err(failure);
            }
            let wait = match failure.retry_after {
                Some(wait) if wait > self.max_retry_wait => {
                    // Waiting that long would stall the run; the page fails
                    // with the status it has.
                    failure.error.detail = format!(
                        "{}; Retry-After {} exceeds --max-retry-wait {}",
                        failure.error.detail,
                        human_duration(wait),
                        human_duration(self.max_retry_wait)
                    );
                    return Err(failure);
                }
                Some(wait) => wait,
                None => backoff(attempt),
            };
            tracing::debug!(
                "{}: retry {attempt} in {} ms after {}",
                shown(url),
                wait.as_millis(),
                failure.error
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Like [`Fetcher::fetch`] (or [`Fetcher::fetch_within`] with `rule`),
    /// sending `-u`'s credentials when `url` is on `listed`'s origin: the
    /// origin of the URL the user listed that the page comes from. The
    /// client drops them on a redirect to another origin.
    pub async fn fetch_for(
        &self,
        url: &Url,
        listed: &Url,
        rule: Option<HopRule>,
    ) -> Result<Fetched, FetchFailure> {
        let secrets = self.user.is_some() || self.cookie.is_some();
        let origin = Some(listed.origin()).filter(|_| secrets);
        let fetch = async {
            match rule {
                Some(rule) => self.fetch_within(url, rule).await,
                None => self.fetch(url).await,
            }
        };
        AUTH_ORIGIN.scope(origin, fetch).await
    }

    /// Like [`Fetcher::fetch`], but a redirect hop that `rule` refuses ends
    /// the page with `off_scope` before the hop is requested.
    pub async fn fetch_within(&self, url: &Url, rule: HopRule) -> Result<Fetched, FetchFailure> {
        HOP_RULE.scope(rule, self.fetch(url)).await
    }

    async fn fetch_once(&self, url: &Url) -> Result<Fetched, FetchFailure> {
        // One deadline for the whole exchange, body included, so a server
        // that trickles bytes cannot hold a slot for longer than --timeout.
        let deadline = tokio::time::Instant::now() + self.timeout;
        self.fetch_inner(url, deadline).await
    }

    /// The failure of a request that ran out of time, `when` saying at
    /// which step.
    fn timed_out(&self, when: &str) -> FetchFailure {
        FetchFailure::new(
            ErrorKind::Timeout,
            format!(
                "timed out after {} (--timeout) {when}",
                human_duration(self.timeout)
            ),
        )
    }

    /// GETs a small text resource (robots.txt): its status and at most
    /// `limit` bytes of body, whatever the status and Content-Type, with
    /// the page fetch's timeout and retries for network failures and 5xx.
    pub async fn fetch_text(&self, url: &Url, limit: u64) -> Result<(u16, Vec<u8>), FetchFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let exchange = async {
                let mut response = self.send(url, None).await?;
                let status = response.status().as_u16();
                let mut body = Vec::new();
                let final_url = response.url().clone();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| self.request_failure(&e, &final_url))?
                {
                    let room = limit.saturating_sub(body.len() as u64) as usize;
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if room <= chunk.len() {
                        break;
                    }
                }
                Ok((status, body))
            };
            let result = match following(tokio::time::timeout(self.timeout, exchange)).await {
                (Ok(result), _) => result,
                (Err(_), hop) => Err(self.timed_out("before the whole response came").after(hop)),
            };
            let transient = match &result {
                Ok((status, _)) => *status >= 500,
                Err(failure) => failure.is_transient(),
            };
            if !transient || attempt > self.retries {
                return result;
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// Sends the request. A request that dies before any response because
    /// the server closed a pooled keep-alive connection as it was reused is
    /// sent once more on a fresh connection, as browsers and curl do: the
    /// server never saw it, and a GET is safe to repeat.
    /// Inside [`following`], a request that fails at a redirect hop is
    /// reported as that hop's failure.
    async fn send(
        &self,
        url: &Url,
        referer: Option<&str>,
    ) -> Result<reqwest::Response, FetchFailure> {
        self.check(url)?;
        let authorised = AUTH_ORIGIN
            .try_with(|origin| origin.as_ref() == Some(&url.origin()))
            .unwrap_or(false);
        let get = |client: &reqwest::Client| {
            let mut request = client.get(url.clone());
            if let Some(referer) = referer {
                request = request.header(REFERER, referer);
            }
            if !authorised {
                return request;
            }
            if let Some(cookie) = self.cookie.as_ref().filter(|_| !self.jar) {
                request = request.header(reqwest::header::COOKIE, &**cookie);
            }
            match &self.user {
                Some(user) => request.basic_auth(&user.user, Some(&user.password)),
                None => request,
            }
        };
        match get(&self.client).send().await {
            Err(e) if is_stale_connection(&e) => {
                // Sent again from the start: its redirects are followed
                // again.
                let _ = LAST_HOP.try_with(|hop| hop.take());
                get(&self.unpooled)
                    .send()
                    .await
                    .map_err(|e| self.send_failure(&e, url))
            }
            other => other.map_err(|e| self.send_failure(&e, url)),
        }
    }

    /// The failure of a request to `url` that got no response: after a
    /// redirect, the failure of the hop it led to, whose URL becomes the
    /// page's final URL and whose redirect status its status.
    fn send_failure(&self, err: &reqwest::Error, url: &Url) -> FetchFailure {
        match last_hop() {
            Some(hop) => self.request_failure(err, &hop.url).after(Some(hop)),
            None => self.request_failure(err, url),
        }
    }

    /// The guard's verdict on a URL whose host is an IP address.
    fn check(&self, url: &Url) -> Result<(), Blocked> {
        match &self.guard {
            Some(guard) => guard.check_url(url),
            None => Ok(()),
        }
    }

    async fn fetch_inner(
        &self,
        url: &Url,
        deadline: tokio::time::Instant,
    ) -> Result<Fetched, FetchFailure> {
        let (mut response, meta) = self.respond(url, None, deadline).await?;
        // The last Content-Type wins, and an empty one counts as none (then
        // the body is sniffed), as in browsers.
        let content_type = response
            .headers()
            .get_all(CONTENT_TYPE)
            .iter()
            .next_back()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .filter(|v| !v.is_empty());
        if let Some(ct) = &content_type
            && !is_html_type(ct)
        {
            return Err(meta.fail(ErrorKind::NotHtml, format!("Content-Type is {ct}"), 0));
        }
        // Each header field is one policy list, kept as received; a
        // browser enforces every one of them.
        let csp = response
            .headers()
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        let hint = response
            .content_length()
            .unwrap_or(0)
            .min(self.max_body)
            .min(1 << 20);
        let mut body = Vec::with_capacity(hint as usize);
        self.read_body(
            &mut response,
            &meta,
            deadline,
            self.max_body,
            "--max-body",
            |c| body.extend_from_slice(c),
        )
        .await?;
        if content_type.is_none() && !sniffs_as_html(&body) {
            let bytes = body.len() as u64;
            return Err(meta.fail(
                ErrorKind::NotHtml,
                "no Content-Type and body does not look like HTML".into(),
                bytes,
            ));
        }
        let charset = content_type
            .as_deref()
            .and_then(crate::charset::charset_param)
            .map(str::to_owned);
        Ok(Fetched {
            final_url: meta.final_url,
            status: meta.status,
            body,
            charset,
            attempts: 0,
            csp,
        })
    }

    /// Sends the request (with `referer`, if any) and waits for a 2xx
    /// response within `deadline`; any other answer is a failure.
    async fn respond(
        &self,
        url: &Url,
        referer: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<(reqwest::Response, Answer), FetchFailure> {
        let sent = tokio::time::timeout_at(deadline, self.send(url, referer));
        let response = match following(sent).await {
            (Ok(response), _) => response?,
            (Err(_), hop) => return Err(self.timed_out("waiting for the response").after(hop)),
        };
        let status = response.status();
        let meta = Answer {
            final_url: response.url().clone(),
            status: status.as_u16(),
            retry_after: retry_after(response.headers()),
        };
        if status.is_redirection() {
            // A redirect the client did not follow: it had no Location, or
            // one that is not a URL.
            let location = response.headers().get(LOCATION).map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                crate::output::without_password(&text).into_owned()
            });
            let detail = match location {
                Some(l) => format!("HTTP {status} with an unusable Location {l:?}"),
                None => format!("HTTP {status} without a Location header"),
            };
            return Err(meta.fail(ErrorKind::Redirect, detail, 0));
        }
        if status == reqwest::StatusCode::PROXY_AUTHENTICATION_REQUIRED
            && let Some(proxy) = self.proxies.for_url(&meta.final_url)
            && words::forwarded(Some(proxy), &meta.final_url)
        {
            let has_credentials = !proxy.username().is_empty() || proxy.password().is_some();
            let detail = words::proxy_auth_required(&words::proxy_name(proxy), has_credentials);
            return Err(meta.fail(ErrorKind::HttpStatus, detail, 0));
        }
        if !status.is_success() {
            return Err(meta.fail(ErrorKind::HttpStatus, format!("HTTP {status}"), 0));
        }
        Ok((response, meta))
    }

    /// Reads the body within `deadline`, handing each chunk to `take`;
    /// past `limit` bytes (named `option` in the message) it stops with
    /// `body_too_large`. Returns the bytes read.
    ///
    /// Compressed responses have no usable Content-Length, so the cap is
    /// enforced on the decompressed stream, chunk by chunk: a gzip bomb
    /// stops at the limit, not at the end of memory.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        meta: &Answer,
        deadline: tokio::time::Instant,
        limit: u64,
        option: &str,
        mut take: impl FnMut(&[u8]),
    ) -> Result<u64, FetchFailure> {
        let mut read: u64 = 0;
        loop {
            let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
                Ok(chunk) => chunk,
                Err(_) => {
                    let mut failure =
                        self.timed_out(&format!("reading the body ({read} bytes read)"));
                    failure.final_url = Some(meta.final_url.clone());
                    failure.status = Some(meta.status);
                    failure.bytes = read;
                    failure.retry_after = meta.retry_after;
                    return Err(failure);
                }
            };
            match chunk {
                Ok(Some(chunk)) => {
                    if read + chunk.len() as u64 > limit {
                        // What was read up to the limit: the bytes past it
                        // in the last chunk were received but not taken.
                        let detail = format!(
                            "the body is larger than {option} ({limit} bytes); \
                             the rest was not read"
                        );
                        return Err(meta.fail(ErrorKind::BodyTooLarge, detail, limit));
                    }
                    read += chunk.len() as u64;
                    take(&chunk);
                }
                Ok(None) => return Ok(read),
                Err(e) => {
                    let mut failure = self.request_failure(&e, &meta.final_url);
                    failure.final_url = Some(meta.final_url.clone());
                    failure.status = Some(meta.status);
                    failure.bytes = read;
                    return Err(failure);
                }
            }
        }
    }
}

/// What a response said before its body: where it came from, its status,
/// and a Retry-After.
struct Answer {
    final_url: Url,
    status: u16,
    retry_after: Option<Duration>,
}

impl Answer {
    /// A failure of the request that got this answer.
    fn fail(&self, kind: ErrorKind, detail: String, bytes: u64) -> FetchFailure {
        FetchFailure {
            error: PageError::new(kind, detail),
            final_url: Some(self.final_url.clone()),
            status: Some(self.status),
            bytes,
            attempts: 0,
            retry_after: self.retry_after,
        }
    }
}

fn build_client(
    settings: &FetchSettings,
    pool_per_host: usize,
    guard: Option<&Arc<Guard>>,
) -> anyhow::Result<reqwest::Client> {
    let max_redirects = settings.max_redirects;
    let hop_guard = guard.cloned();
    let policy = redirect::Policy::custom(move |attempt| {
        // Every hop: a redirect must not lead a crawl into a private
        // network either (names are checked as they resolve).
        let blocked = hop_guard
            .as_ref()
            .and_then(|g| g.check_url(attempt.url()).err());
        let to = attempt.url();
        let why = if let Some(blocked) = blocked {
            Some(HopWhy::Blocked(blocked))
        } else if !matches!(to.scheme(), "http" | "https") {
            Some(HopWhy::Scheme(to.clone()))
        } else if HOP_RULE.try_with(|rule| !rule(to)).unwrap_or(false) {
            Some(HopWhy::OffScope(to.clone()))
        } else if attempt.previous().contains(to) {
            Some(HopWhy::Loop(to.clone()))
        } else if attempt.previous().len() > max_redirects {
            Some(HopWhy::TooMany(max_redirects))
        } else {
            None
        };
        match why {
            // previous() ends with the URL that answered with this redirect.
            Some(why) => match attempt.previous().last().cloned() {
                Some(from) => {
                    let status = attempt.status().as_u16();
                    attempt.error(HopRefused { from, status, why })
                }
                None => attempt.error(why),
            },
            None => {
                let hop = Hop {
                    url: to.clone(),
                    status: attempt.status().as_u16(),
                };
                // Outside `following` (no exchange keeps track), nothing.
                let _ = LAST_HOP.try_with(|last| last.replace(Some(hop)));
                attempt.follow()
            }
        }
    });
    let mut builder = reqwest::Client::builder()
        .user_agent(&settings.user_agent)
        .default_headers(settings.headers.clone())
        .connect_timeout(settings.connect_timeout)
        .redirect(policy)
        // reqwest would send the whole previous URL, query included, to
        // the next hop's host; browsers send at most the origin across
        // sites. A scraper has no need to say where it came from.
        .referer(false)
        .pool_max_idle_per_host(pool_per_host)
        .tls_danger_accept_invalid_certs(settings.insecure);
    if let Some(guard) = guard {
        builder = builder.dns_resolver(guard.resolver());
    }
    if let Some(jar) = &settings.jar {
        // Asked for each hop of a redirect: the rules apply per hop.
        builder = builder.cookie_provider(Arc::clone(jar));
    }
    builder = settings.proxies.configure(builder)?;
    builder.build().context("cannot set up the HTTP client")
}

/// First wait before a retry; each later one doubles it, up to
/// [`BACKOFF_CAP`]. Half a second clears most momentary overloads without
/// keeping a page long.
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Longest wait between retries without a Retry-After.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Exponential backoff with full jitter: a random wait between zero and
/// `BACKOFF_BASE × 2^(attempt-1)`, so clients that failed together do not
/// come back together.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(fastrand::f64())
}

/// The wait a Retry-After header asks for: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// rustls needs one process-wide crypto provider; ring is the one compiled in.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed (a library user
        // chose one), which is fine to keep.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Whether a Content-Type names an HTML document.
pub fn is_html_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// The WHATWG MIME sniffing rule for HTML, for responses without a
/// Content-Type: after optional BOM and whitespace, one of a few tags that
/// only HTML starts with, followed by a space or `>`.
pub fn sniffs_as_html(body: &[u8]) -> bool {
    const TAGS: [&[u8]; 17] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<script",
        b"<iframe",
        b"<h1",
        b"<div",
        b"<font",
        b"<table",
        b"<a",
        b"<style",
        b"<title",
        b"<b",
        b"<body",
        b"<br",
        b"<p",
        b"<!--",
    ];
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'));
    let Some(start) = start else { return false };
    let rest = &body[start..];
    TAGS.iter().any(|tag| {
        rest.len() > tag.len()
            && rest[..tag.len()].eq_ignore_ascii_case(tag)
            && (tag == b"<!--" || matches!(rest[tag.len()], b' ' | b'>'))
    })
}

impl Fetcher {
    /// Maps a reqwest error for a request to `url` to the kinds users see,
    /// with what failed in plain words as detail.
    fn request_failure(&self, err: &reqwest::Error, url: &Url) -> FetchFailure {
        if let Some(hop) = words::cause::<HopRefused>(err) {
            let kind = match hop.why {
                HopWhy::Blocked(_) => ErrorKind::PrivateAddress,
                HopWhy::OffScope(_) => ErrorKind::OffScope,
                _ => ErrorKind::Redirect,
            };
            let mut failure = FetchFailure::new(kind, hop.why.to_string());
            failure.final_url = Some(hop.from.clone());
            failure.status = Some(hop.status);
            return failure;
        }
        if let Some(blocked) = words::cause::<Blocked>(err) {
            return FetchFailure::from(blocked);
        }
        if let Some(why) = words::cause::<HopWhy>(err) {
            return FetchFailure::new(ErrorKind::Redirect, why.to_string());
        }
        // Not err.url(): after redirects, that is still the first URL,
        // while `url` is the hop that failed (send_failure).
        let target = Target {
            url,
            proxy: self.proxies.for_url(url),
            connect_timeout: self.connect_timeout,
        };
        let (kind, detail) = if err.is_timeout() && !err.is_connect() {
            // reqwest's own timeouts are not set (the deadline is ours), but
            // a proxy or a future version may still time out underneath.
            let at = words::host_port(url);
            (ErrorKind::Timeout, format!("{at} did not answer in time"))
        } else if err.is_dns() {
            (ErrorKind::Dns, words::connect(err, &target))
        } else if words::is_tls(err) {
            (ErrorKind::Tls, words::connect(err, &target))
        } else if err.is_connect() {
            let kind = if err.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Connect
            };
            (kind, words::connect(err, &target))
        } else if words::cause::<hyper::Error>(err).is_some() {
            // The connection failed under the body (reset, closed early, bad
            // chunking); reqwest reports those as decode errors too.
            (ErrorKind::Io, words::transfer(err, &target, false))
        } else if err.is_decode() {
            (ErrorKind::Decode, words::transfer(err, &target, true))
        } else {
            (ErrorKind::Io, words::transfer(err, &target, false))
        };
        FetchFailure::new(kind, detail)
    }
}

/// Whether a request failed because its connection was closed before any
/// response came back (the race of reusing a keep-alive connection the
/// server is closing).
fn is_stale_connection(err: &reqwest::Error) -> bool {
    if err.is_connect() || err.is_timeout() || err.is_redirect() {
        return false;
    }
    let closed = words::cause::<hyper::Error>(err).is_some_and(hyper::Error::is_incomplete_message);
    let reset = words::cause::<std::io::Error>(err).is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
    });
    closed || reset
}

/// `2.5 s`, `30 s`, `500 ms`: a duration as a person reads it.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hop's failure is worded by request_failure from the hop's URL
    /// (send_failure passes it, not err.url(), which is the first URL):
    /// "DNS lookup failed for", "connection refused by", "closed the
    /// connection" all name that URL's host. DNS cannot be made to fail
    /// for a test without real DNS; the refused and closed cases are
    /// tested end to end (tests/messages.rs). Here: what the page report
    /// gets besides the words.
    #[test]
    fn failures_after_a_redirect_keep_the_hop() {
        let hop = || Hop {
            url: Url::parse("http://ann:pw@nosuchhost.invalid/x").unwrap(),
            status: 301,
        };
        let dns = FetchFailure::new(ErrorKind::Dns, "DNS lookup failed for nosuchhost.invalid")
            .after(Some(hop()));
        assert_eq!(dns.final_url, Some(hop().url));
        assert_eq!(dns.status, Some(301));
        assert_eq!(dns.error.detail, "DNS lookup failed for nosuchhost.invalid");

        let timeout = FetchFailure::new(ErrorKind::Timeout, "timed out after 1 s (--timeout)")
            .after(Some(hop()));
        assert_eq!(
            timeout.error.detail,
            "timed out after 1 s (--timeout) after a redirect to http://***@nosuchhost.invalid/x"
        );

        // A refused redirect already names the response that asked for it.
        let mut refused = FetchFailure::new(ErrorKind::OffScope, "redirected to …");
        refused.final_url = Some(Url::parse("http://a.test/").unwrap());
        refused.status = Some(302);
        let refused = refused.after(Some(hop()));
        assert_eq!(refused.final_url.unwrap().as_str(), "http://a.test/");
        assert_eq!(refused.status, Some(302));

        let direct = FetchFailure::new(ErrorKind::Connect, "connection refused").after(None);
        assert_eq!((direct.final_url, direct.status), (None, None));
    }

    #[test]
    fn html_types() {
        assert!(is_html_type("text/html"));
        assert!(is_html_type("Text/HTML; charset=utf-8"));
        assert!(is_html_type("application/xhtml+xml"));
        assert!(!is_html_type("application/json"));
        assert!(!is_html_type("text/plain; charset=utf-8"));
        assert!(!is_html_type(""));
    }

    #[test]
    fn sniffing() {
        assert!(sniffs_as_html(b"\n  <!DOCTYPE html><p>x"));
        assert!(sniffs_as_html(b"\xef\xbb\xbf<html>"));
        assert!(sniffs_as_html(b"<!-- c --><html>"));
        assert!(!sniffs_as_html(b"{\"a\": 1}"));
        assert!(!sniffs_as_html(b"<htmlx>"));
        assert!(!sniffs_as_html(b"\x89PNG\r\n"));
        assert!(!sniffs_as_html(b""));
    }
}
