//! One page in the browser: loaded from the body the fetch stage already
//! has, watched through the protocol until it settles, and recorded.
//!
//! Each page gets a browser context of its own (no cookies, storage,
//! cache or service worker shared with another page), disposed when it
//! is done, which ends its renderer processes. Every request the page's
//! frames and workers make is paused by the `Fetch` domain and let go only
//! once the crawl's private-network rule allows it; the page's own
//! document is answered from the fetched body, so that the browser runs
//! exactly the HTML the static columns were read from and the server sees
//! one request for it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use url::Url;

use super::cdp::{Cdp, CdpError, Event};
use super::gate;
use crate::content::sri::Digests;
use crate::crawl::netguard::Guard;
use crate::error::ErrorKind;

/// A fetched page to load.
#[derive(Debug)]
pub struct Job {
    /// The document's URL (after the fetch's redirects).
    pub url: Url,
    /// The status it was fetched with.
    pub status: u16,
    /// Its body, as fetched (decompressed).
    pub body: Vec<u8>,
    /// The encoding the static extractor decoded it with, given to the
    /// browser as the Content-Type charset so that both read the same
    /// text.
    pub charset: &'static str,
    /// Its Content-Security-Policy header fields, which the browser
    /// enforces as it would have.
    pub csp: Vec<String>,
}

/// How a page is watched.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Quiet time that ends a page.
    pub idle: Duration,
    /// Time a page may take in all.
    pub timeout: Duration,
    /// JavaScript heap a page may use, in bytes.
    pub memory: u64,
    /// Keep the text of scripts without a URL (`--inline-text`).
    pub keep_text: bool,
}

/// Scripts recorded for one page, at most. Real pages run hundreds; a
/// page calling `eval` in a loop runs thousands a second, each a row, and
/// is closed here rather than fill the output until its time is up.
pub const MAX_SCRIPTS: usize = 10_000;

/// How loading a page ended.
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    /// Loaded, and quiet for the idle time.
    Settled,
    /// Not settled within the time allowed.
    Timeout,
    /// The page's renderer crashed.
    Crashed,
    /// The page's heap passed the limit (bytes used at the last reading).
    Memory(u64),
    /// The page ran [`MAX_SCRIPTS`] scripts.
    TooManyScripts,
    /// The browser went away or stopped answering: it is unusable.
    BrowserGone(String),
    /// The browser would not load the page (its navigation failed).
    NotLoaded(String),
    /// Stopped from outside (the run is ending).
    Stopped,
}

impl End {
    /// The error kind a page that ended so gets; `None` when it settled.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            End::Settled | End::Stopped => None,
            End::Timeout => Some(ErrorKind::RenderTimeout),
            End::Memory(_) => Some(ErrorKind::RenderMemory),
            End::TooManyScripts => Some(ErrorKind::RenderLimit),
            End::Crashed | End::BrowserGone(_) | End::NotLoaded(_) => {
                Some(ErrorKind::RenderCrashed)
            }
        }
    }
}

/// What kind of target a session is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The page itself (its main frame and same-process frames).
    Page,
    /// An out-of-process (cross-site) frame.
    Frame,
    /// A dedicated, shared or service worker.
    Worker,
}

/// What made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// The HTML parser of the frame that made it.
    Parser,
    /// A running script: the one at the top of the stack.
    Script {
        /// Its id in the session.
        id: String,
        /// Its URL as the protocol gives it (the document's for an
        /// inline script).
        url: String,
        /// Where in that URL's resource the call is (line, column).
        at: (u64, u64),
    },
    /// A module's import of it.
    Import(String),
    /// Something else (a preload, a redirect, the browser).
    Other,
}

/// A script the browser ran (compiled: `Debugger.scriptParsed`).
#[derive(Clone, Debug)]
pub struct Ran {
    /// The session it ran in.
    pub session: String,
    /// Its id there.
    pub id: String,
    /// Its URL: the script's, the document's for an inline script, empty
    /// for code made at run time (an inserted inline script, eval).
    pub url: String,
    /// The frame it ran in, when it ran in one.
    pub frame: Option<String>,
    /// A module script.
    pub module: bool,
    /// Its URL comes from a `//# sourceURL` comment (code made at run
    /// time that named itself).
    pub has_source_url: bool,
    /// Where it starts in its resource (line, column).
    pub start: (u64, u64),
    /// Where it ends.
    pub end: (u64, u64),
    /// The script whose code was running when it was made (the top of the
    /// stack), for code made at run time.
    pub stack_top: Option<String>,
    /// The code's digests and length, once its source was read.
    pub code: Option<Code>,
}

/// The code a script ran.
#[derive(Clone, Debug)]
pub struct Code {
    /// UTF-8 length in bytes.
    pub bytes: u64,
    /// Its digests (of the UTF-8 text).
    pub digests: Digests,
    /// The text, while the page's texts kept stay under
    /// [`TEXT_KEPT`]: what an initiator's call site says (an `import(`
    /// or not), and `--inline-text`, read it.
    pub text: Option<Arc<str>>,
}

/// What became of the requests for one URL.
#[derive(Clone, Debug, Default)]
pub struct Requested {
    /// What made the first request for it.
    pub initiator: Option<Initiator>,
    /// The session the first request was made in.
    pub session: String,
    /// The frame the first request was made for, when it says.
    pub frame: Option<String>,
    /// Its response's status.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub failed: Option<String>,
    /// Refused by the private-network rule.
    pub refused: bool,
    /// A request for a script.
    pub script: bool,
    /// A request for it was made by something other than a
    /// `<link rel=preload>` or `modulepreload` (which fetch a script that
    /// may never run).
    pub not_preload: bool,
}

/// Everything recorded about one page.
#[derive(Debug)]
pub struct Recording {
    /// Scripts in the order they were parsed.
    pub scripts: Vec<Ran>,
    /// Requests by URL.
    pub requests: HashMap<String, Requested>,
    /// Frame ids to their document's URL.
    pub frames: HashMap<String, String>,
    /// The page's own frame (the target's id).
    pub main_frame: String,
    /// The root session.
    pub root: String,
    /// The kind of each session.
    pub sessions: HashMap<String, Target>,
    /// Requests refused by the private-network rule, with why.
    pub refused: Vec<(String, String)>,
    /// Redirects followed: (from, to).
    pub redirects: Vec<(String, String)>,
    /// Write the text of scripts without a URL (`--inline-text`).
    pub keep_text: bool,
    /// How it ended.
    pub end: End,
}

type Pending = Pin<Box<dyn Future<Output = Done> + Send>>;

/// A command's outcome, back in the page's loop.
enum Done {
    Source {
        at: usize,
        /// Counted in `sources_pending` (not a worker's: a busy worker
        /// would answer only when it is idle, if ever).
        counted: bool,
        reply: Result<Value, CdpError>,
    },
    Heap(Result<Value, CdpError>),
    Navigated(Result<Value, CdpError>),
    /// Something whose result only matters when it failed with the
    /// connection.
    Other(Result<Value, CdpError>),
    Refused {
        url: String,
        why: String,
    },
}

/// Script text kept per page (beyond it, only digests are): enough for
/// the scripts of any ordinary page.
pub const TEXT_KEPT: usize = 64 << 20;

/// How often the loop looks at the clock and the heap.
const TICK: Duration = Duration::from_millis(50);
const HEAP_EVERY: Duration = Duration::from_millis(200);
/// Time a command to the browser itself may take before the browser is
/// taken for hung.
const BROWSER_CALL: Duration = Duration::from_secs(5);

/// What a page's requests may reach, and with what.
#[derive(Clone, Default)]
pub struct Access {
    /// The crawl's private-network rule, when it applies.
    pub guard: Option<Arc<Guard>>,
    /// The user name and password a proxy that asks for them gets.
    pub proxy_login: Option<(String, String)>,
}

/// Loads `job` in a new browser context of `cdp` and records what runs.
pub async fn render(
    cdp: &Cdp,
    job: Job,
    limits: &Limits,
    access: Access,
    stopping: impl Fn() -> bool,
) -> Recording {
    let deadline = Instant::now() + limits.timeout;
    let opened = match tokio::time::timeout(BROWSER_CALL, open(cdp)).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return failed(format!("cannot open a tab: {e}")),
        Err(_) => return failed("the browser did not open a tab in time".into()),
    };
    let (events_tx, events) = mpsc::unbounded_channel();
    cdp.route(&opened.session, events_tx);
    let mut watch = Watch {
        cdp: cdp.clone(),
        job,
        limits: limits.clone(),
        access,
        served: false,
        pending: FuturesUnordered::new(),
        sources_pending: 0,
        in_flight: HashSet::new(),
        documents: HashSet::new(),
        loaded: false,
        last_activity: Instant::now(),
        heap_asked: None,
        text_kept: 0,
        rec: Recording {
            scripts: Vec::new(),
            requests: HashMap::new(),
            frames: HashMap::new(),
            main_frame: opened.target.clone(),
            root: opened.session.clone(),
            sessions: HashMap::from([(opened.session.clone(), Target::Page)]),
            refused: Vec::new(),
            redirects: Vec::new(),
            keep_text: limits.keep_text,
            end: End::Settled,
        },
    };
    let set = tokio::time::timeout(BROWSER_CALL, set_up(cdp, &opened.session, false)).await;
    let end = match set {
        Ok(Ok(())) => {
            let url = watch.job.url.to_string();
            let nav = cdp.clone();
            let session = opened.session.clone();
            watch.pending.push(Box::pin(async move {
                Done::Navigated(
                    nav.call(Some(&session), "Page.navigate", json!({ "url": url }))
                        .await,
                )
            }));
            watch.run(events, deadline, stopping).await
        }
        Ok(Err(e)) => End::BrowserGone(format!("cannot watch the tab: {e}")),
        Err(_) => End::BrowserGone("the browser did not answer in time".into()),
    };
    cdp.unroute(&opened.session);
    let mut rec = watch.rec;
    rec.end = end;
    close(cdp, &opened.context, &mut rec).await;
    rec
}

/// A recording of a page that could not be loaded at all.
fn failed(why: String) -> Recording {
    Recording {
        scripts: Vec::new(),
        requests: HashMap::new(),
        frames: HashMap::new(),
        main_frame: String::new(),
        root: String::new(),
        sessions: HashMap::new(),
        refused: Vec::new(),
        redirects: Vec::new(),
        keep_text: false,
        end: End::BrowserGone(why),
    }
}

struct Opened {
    context: String,
    target: String,
    session: String,
}

/// A new browser context (downloads refused) with one blank tab, attached.
async fn open(cdp: &Cdp) -> Result<Opened, CdpError> {
    let context = cdp
        .call(
            None,
            "Target.createBrowserContext",
            json!({ "disposeOnDetach": true }),
        )
        .await?;
    let context = str_of(&context, "browserContextId").to_owned();
    cdp.call(
        None,
        "Browser.setDownloadBehavior",
        json!({ "behavior": "deny", "browserContextId": context }),
    )
    .await?;
    let target = cdp
        .call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "browserContextId": context }),
        )
        .await?;
    let target = str_of(&target, "targetId").to_owned();
    let attached = cdp
        .call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )
        .await?;
    let session = str_of(&attached, "sessionId").to_owned();
    Ok(Opened {
        context,
        target,
        session,
    })
}

/// Disposes of the page's context (closing its tab and ending its
/// renderers); a browser that does not answer is marked gone.
async fn close(cdp: &Cdp, context: &str, rec: &mut Recording) {
    // A run that is stopping kills the browser soon anyway.
    let within = match rec.end {
        End::Stopped => Duration::from_secs(1),
        _ => BROWSER_CALL,
    };
    let disposed = tokio::time::timeout(
        within,
        cdp.call(
            None,
            "Target.disposeBrowserContext",
            json!({ "browserContextId": context }),
        ),
    )
    .await;
    let gone = match disposed {
        Ok(Ok(_)) => None,
        Ok(Err(CdpError::Closed)) => Some("the browser connection closed".to_owned()),
        // The context is already gone (its tab crashed and was closed).
        Ok(Err(CdpError::Protocol { .. })) => None,
        Err(_) => Some("the browser did not close a tab in time".to_owned()),
    };
    if let (
        Some(why),
        End::Settled | End::Timeout | End::Memory(_) | End::TooManyScripts | End::NotLoaded(_),
    ) = (gone, &rec.end)
    {
        rec.end = End::BrowserGone(why);
    }
}

/// The URL of the request an event is about.
fn request_url(params: &Value) -> String {
    params
        .pointer("/request/url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

struct Watch {
    cdp: Cdp,
    job: Job,
    limits: Limits,
    access: Access,
    /// The page's document was answered.
    served: bool,
    pending: FuturesUnordered<Pending>,
    sources_pending: usize,
    in_flight: HashSet<String>,
    /// The requests of the page's own document (see frameStoppedLoading).
    documents: HashSet<String>,
    loaded: bool,
    last_activity: Instant,
    heap_asked: Option<Instant>,
    /// Bytes of script text kept so far.
    text_kept: usize,
    rec: Recording,
}

impl Watch {
    async fn run(
        &mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        deadline: Instant,
        stopping: impl Fn() -> bool,
    ) -> End {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => {
                        if let Some(end) = self.on_event(event) {
                            return end;
                        }
                    }
                    None => return End::BrowserGone("the browser connection closed".into()),
                },
                Some(done) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(end) = self.on_done(done) {
                        return end;
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if stopping() {
                        return End::Stopped;
                    }
                    if now >= deadline {
                        return End::Timeout;
                    }
                    if self.loaded
                        && self.in_flight.is_empty()
                        && self.sources_pending == 0
                        && now.duration_since(self.last_activity) >= self.limits.idle
                    {
                        return End::Settled;
                    }
                    self.ask_heap(now);
                }
            }
        }
    }

    fn call(&self, session: &str, method: &'static str, params: Value) -> Pending {
        let cdp = self.cdp.clone();
        let session = session.to_owned();
        Box::pin(async move { Done::Other(cdp.call(Some(&session), method, params).await) })
    }

    fn ask_heap(&mut self, now: Instant) {
        if self
            .heap_asked
            .is_some_and(|at| now.duration_since(at) < HEAP_EVERY)
        {
            return;
        }
        self.heap_asked = Some(now);
        let cdp = self.cdp.clone();
        let root = self.rec.root.clone();
        self.pending.push(Box::pin(async move {
            Done::Heap(
                cdp.call(Some(&root), "Runtime.getHeapUsage", json!({}))
                    .await,
            )
        }));
    }

    fn on_done(&mut self, done: Done) -> Option<End> {
        match done {
            Done::Source { at, counted, reply } => {
                if counted {
                    self.sources_pending -= 1;
                }
                if let Ok(value) = reply {
                    let text = str_of(&value, "scriptSource");
                    let keep = self.text_kept + text.len() <= TEXT_KEPT;
                    if keep {
                        self.text_kept += text.len();
                    }
                    self.rec.scripts[at].code = Some(Code {
                        bytes: text.len() as u64,
                        digests: Digests::of(text.as_bytes()),
                        text: keep.then(|| Arc::from(text)),
                    });
                }
            }
            Done::Heap(Ok(value)) => {
                // The heap, and what lives beside it: array buffers (typed
                // arrays) and the DOM's own objects.
                let used = ["usedSize", "backingStorageSize", "embedderHeapUsedSize"]
                    .iter()
                    .filter_map(|k| value.get(k).and_then(Value::as_f64))
                    .sum::<f64>() as u64;
                if used > self.limits.memory {
                    return Some(End::Memory(used));
                }
            }
            Done::Navigated(Ok(value)) => {
                if let Some(error) = value.get("errorText").and_then(Value::as_str) {
                    return Some(End::NotLoaded(error.to_owned()));
                }
            }
            Done::Heap(Err(CdpError::Closed))
            | Done::Navigated(Err(CdpError::Closed))
            | Done::Other(Err(CdpError::Closed)) => {
                return Some(End::BrowserGone("the browser connection closed".into()));
            }
            Done::Heap(Err(_)) | Done::Navigated(Err(_)) | Done::Other(_) => {}
            Done::Refused { url, why } => {
                self.rec.requests.entry(url.clone()).or_default().refused = true;
                self.rec.refused.push((url, why));
            }
        }
        None
    }

    fn on_event(&mut self, event: Event) -> Option<End> {
        let session = event.session?;
        let p = &event.params;
        match event.method.as_str() {
            "Fetch.requestPaused" => self.on_paused(&session, p),
            "Fetch.authRequired" => self.on_auth(&session, p),
            "Target.attachedToTarget" => self.on_attached(p),
            "Debugger.scriptParsed" if self.rec.scripts.len() >= MAX_SCRIPTS => {
                return Some(End::TooManyScripts);
            }
            "Debugger.scriptParsed" => self.on_script(&session, p),
            "Network.requestWillBeSent" => {
                self.last_activity = Instant::now();
                let id = str_of(p, "requestId").to_owned();
                let url = request_url(p);
                let document = str_of(p, "type") == "Document"
                    && session == self.rec.root
                    && str_of(p, "frameId") == self.rec.main_frame;
                if document {
                    self.documents.insert(id.clone());
                }
                if !url.starts_with("data:") {
                    self.in_flight.insert(id);
                }
                if let Some(from) = p.pointer("/redirectResponse/url").and_then(Value::as_str) {
                    self.rec.redirects.push((from.to_owned(), url.clone()));
                }
                let script = str_of(p, "type") == "Script";
                let preload = p.pointer("/request/isLinkPreload") == Some(&Value::Bool(true));
                let frame = p.get("frameId").and_then(Value::as_str);
                let entry = self.requested(&url, &session);
                entry.script |= script;
                entry.not_preload |= !preload;
                if entry.frame.is_none() {
                    entry.frame = frame.map(str::to_owned);
                }
                if entry.initiator.is_none() {
                    entry.initiator = Some(initiator(p.get("initiator")));
                }
            }
            "Network.responseReceived" => {
                let url = p.pointer("/response/url").and_then(Value::as_str);
                let status = p.pointer("/response/status").and_then(Value::as_u64);
                if let (Some(url), Some(status)) = (url, status) {
                    let entry = self.rec.requests.entry(url.to_owned()).or_default();
                    entry.status.get_or_insert(status as u16);
                }
            }
            "Network.loadingFinished" => {
                self.last_activity = Instant::now();
                self.in_flight.remove(str_of(p, "requestId"));
            }
            "Network.loadingFailed" => {
                self.last_activity = Instant::now();
                self.in_flight.remove(str_of(p, "requestId"));
                tracing::debug!(
                    "{}: a request of the page failed in the browser: {} {}",
                    self.job.url,
                    str_of(p, "errorText"),
                    str_of(p, "blockedReason"),
                );
            }
            "Page.loadEventFired" if session == self.rec.root => self.loaded = true,
            // A load cut short (window.stop(), a navigation aborted while
            // the document loaded) fires no load event.
            // (Not the blank page the tab opens with: only once the
            // document was served.)
            "Page.frameStoppedLoading"
                if self.served
                    && session == self.rec.root
                    && str_of(p, "frameId") == self.rec.main_frame =>
            {
                self.loaded = true;
                // Its document's own request is over too, though a load
                // cut short reports no end for it.
                for id in self.documents.drain() {
                    self.in_flight.remove(&id);
                }
            }
            "Page.frameNavigated" => {
                if let Some(frame) = p.get("frame") {
                    let id = str_of(frame, "id").to_owned();
                    let url = str_of(frame, "url").to_owned();
                    self.rec.frames.insert(id, url);
                }
            }
            "Inspector.targetCrashed" if session == self.rec.root => return Some(End::Crashed),
            "Target.detachedFromTarget" if session == self.rec.root => {}
            _ => {}
        }
        None
    }

    /// A server or proxy asks for a user name and password: a proxy of
    /// the run's gets its own (as the run's requests do); a site gets
    /// none, as `-u` is for the listed URLs' own requests.
    fn on_auth(&mut self, session: &str, p: &Value) {
        let id = str_of(p, "requestId").to_owned();
        let from_proxy =
            p.pointer("/authChallenge/source").and_then(Value::as_str) == Some("Proxy");
        let response = match (&self.access.proxy_login, from_proxy) {
            (Some((user, password)), true) => json!({
                "response": "ProvideCredentials",
                "username": user,
                "password": password,
            }),
            _ => json!({ "response": "CancelAuth" }),
        };
        let answer = self.call(
            session,
            "Fetch.continueWithAuth",
            json!({ "requestId": id, "authChallengeResponse": response }),
        );
        self.pending.push(answer);
    }

    /// The record of the requests for `url`, the first made in `session`.
    fn requested(&mut self, url: &str, session: &str) -> &mut Requested {
        let entry = self.rec.requests.entry(url.to_owned()).or_default();
        if entry.session.is_empty() {
            entry.session = session.to_owned();
        }
        entry
    }

    /// A request waits for a decision: the page's own document is
    /// answered from the fetched body; anything else goes on if the
    /// private-network rule allows it.
    fn on_paused(&mut self, session: &str, p: &Value) {
        let id = str_of(p, "requestId").to_owned();
        let url = request_url(p);
        let main_document = session == self.rec.root
            && str_of(p, "resourceType") == "Document"
            && str_of(p, "frameId") == self.rec.main_frame;
        if main_document && !self.served {
            self.served = true;
            let fulfil = self.fulfil(session, id);
            self.pending.push(fulfil);
            return;
        }
        if main_document {
            // The page navigating itself away (a script setting location):
            // the inventory is of the document fetched, so it stays.
            let fail = self.call(
                session,
                "Fetch.failRequest",
                json!({ "requestId": id, "errorReason": "Aborted" }),
            );
            self.pending.push(fail);
            return;
        }
        if str_of(p, "resourceType") == "Script" {
            self.requested(&url, session).script = true;
        }
        let cdp = self.cdp.clone();
        let guard = self.access.guard.clone();
        let session = session.to_owned();
        self.pending.push(Box::pin(async move {
            match allowed(guard.as_deref(), &url).await {
                Ok(()) => Done::Other(
                    cdp.call(
                        Some(&session),
                        "Fetch.continueRequest",
                        json!({ "requestId": id }),
                    )
                    .await,
                ),
                Err(why) => {
                    let _ = cdp
                        .call(
                            Some(&session),
                            "Fetch.failRequest",
                            json!({ "requestId": id, "errorReason": "BlockedByClient" }),
                        )
                        .await;
                    Done::Refused { url, why }
                }
            }
        }));
    }

    fn fulfil(&self, session: &str, id: String) -> Pending {
        let mut headers = vec![json!({
            "name": "Content-Type",
            "value": format!("text/html; charset={}", self.job.charset),
        })];
        for policy in &self.job.csp {
            headers.push(json!({ "name": "Content-Security-Policy", "value": policy }));
        }
        let body = base64::engine::general_purpose::STANDARD.encode(&self.job.body);
        self.call(
            session,
            "Fetch.fulfillRequest",
            json!({
                "requestId": id,
                "responseCode": self.job.status,
                "responseHeaders": headers,
                "body": body,
            }),
        )
    }

    /// A frame or worker the page started: set up like the page, then let
    /// go.
    fn on_attached(&mut self, p: &Value) {
        let child = str_of(p, "sessionId").to_owned();
        let kind = match p.pointer("/targetInfo/type").and_then(Value::as_str) {
            Some("iframe") => Target::Frame,
            Some("page") => Target::Page,
            _ => Target::Worker,
        };
        if kind == Target::Frame
            && let Some(url) = p.pointer("/targetInfo/url").and_then(Value::as_str)
            && let Some(id) = p.pointer("/targetInfo/targetId").and_then(Value::as_str)
        {
            self.rec.frames.insert(id.to_owned(), url.to_owned());
        }
        self.rec.sessions.insert(child.clone(), kind);
        let cdp = self.cdp.clone();
        self.pending.push(Box::pin(async move {
            Done::Other(set_up(&cdp, &child, true).await.map(|()| Value::Null))
        }));
    }

    fn on_script(&mut self, session: &str, p: &Value) {
        self.last_activity = Instant::now();
        let num = |key| p.get(key).and_then(Value::as_u64).unwrap_or(0);
        let stack_top = p
            .pointer("/stackTrace/callFrames/0/scriptId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ran = Ran {
            session: session.to_owned(),
            id: str_of(p, "scriptId").to_owned(),
            url: str_of(p, "url").to_owned(),
            frame: p
                .pointer("/executionContextAuxData/frameId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            module: p.get("isModule").and_then(Value::as_bool).unwrap_or(false),
            has_source_url: p
                .get("hasSourceURL")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            start: (num("startLine"), num("startColumn")),
            end: (num("endLine"), num("endColumn")),
            stack_top,
            code: None,
        };
        let at = self.rec.scripts.len();
        let cdp = self.cdp.clone();
        let (session, id) = (session.to_owned(), ran.id.clone());
        self.rec.scripts.push(ran);
        let counted = self.rec.sessions.get(&session) != Some(&Target::Worker);
        if counted {
            self.sources_pending += 1;
        }
        self.pending.push(Box::pin(async move {
            let reply = cdp
                .call(
                    Some(&session),
                    "Debugger.getScriptSource",
                    json!({ "scriptId": id }),
                )
                .await;
            Done::Source { at, counted, reply }
        }));
    }
}

/// Enables what is recorded on a session: its own targets attached
/// paused, its requests paused for a decision, its network, frames and
/// scripts reported. A `child` (a frame or worker waiting for the
/// debugger) is then let go. Workers have no Page domain, and may lack
/// others: only the domains every target has must succeed.
async fn set_up(cdp: &Cdp, session: &str, child: bool) -> Result<(), CdpError> {
    let s = Some(session);
    let steps = [
        (
            "Target.setAutoAttach",
            json!({ "autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true }),
            true,
        ),
        (
            "Fetch.enable",
            // Challenges too, so that none waits for a login prompt.
            json!({ "patterns": [{ "urlPattern": "*" }], "handleAuthRequests": true }),
            true,
        ),
        ("Network.enable", json!({}), true),
        ("Page.enable", json!({}), false),
        // Service workers neither answer the page's requests (which would
        // pass them by Fetch) nor outlive the context.
        (
            "Network.setBypassServiceWorker",
            json!({ "bypass": true }),
            false,
        ),
        ("Runtime.enable", json!({}), false),
        ("Debugger.enable", json!({}), true),
        // With the debugger on, a `debugger;` statement would pause the
        // page for good (and hide what runs after it).
        ("Debugger.setSkipAllPauses", json!({ "skip": true }), true),
    ];
    if child {
        // All sent at once, the release last: the target takes them in
        // order, so it runs only with all enabled; but a service worker
        // answers some (Network.enable) only once it runs, so waiting for
        // each answer before the next would leave it paused for good.
        let mut calls: Vec<_> = steps
            .into_iter()
            .map(|(method, params, _)| cdp.call(s, method, params))
            .collect();
        calls.push(cdp.call(s, "Runtime.runIfWaitingForDebugger", json!({})));
        let done = futures::future::join_all(calls).await;
        // A child is let go whatever it lacks; only a closed connection
        // is the caller's concern.
        if done.iter().any(|d| matches!(d, Err(CdpError::Closed))) {
            return Err(CdpError::Closed);
        }
        return Ok(());
    }
    for (method, params, needed) in steps {
        match cdp.call(s, method, params).await {
            Err(CdpError::Closed) => return Err(CdpError::Closed),
            Err(e) if needed => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// What `Network.requestWillBeSent`'s initiator says.
fn initiator(value: Option<&Value>) -> Initiator {
    let Some(value) = value else {
        return Initiator::Other;
    };
    let top = value.pointer("/stack/callFrames/0");
    match (str_of(value, "type"), top, value.get("url")) {
        ("parser", _, _) => Initiator::Parser,
        ("script", Some(frame), _) => {
            let num = |key| frame.get(key).and_then(Value::as_u64).unwrap_or(0);
            Initiator::Script {
                id: str_of(frame, "scriptId").to_owned(),
                url: str_of(frame, "url").to_owned(),
                at: (num("lineNumber"), num("columnNumber")),
            }
        }
        // `<link rel=modulepreload>`: a fetch of the document's own, which
        // the protocol names by its client, not by a script.
        ("script", None, Some(Value::String(url))) if url == "about:client" => Initiator::Parser,
        ("script", None, Some(Value::String(url))) => Initiator::Import(url.clone()),
        _ => Initiator::Other,
    }
}

/// Whether the private-network rule lets the browser request `url`.
async fn allowed(guard: Option<&Guard>, url: &str) -> Result<(), String> {
    let Some(guard) = guard else {
        return Ok(());
    };
    let Some(target) = Url::parse(url).ok().as_ref().and_then(gate::Target::of_url) else {
        return Ok(());
    };
    match gate::allowed(&target, guard).await {
        Err(gate::Refusal::Blocked(blocked)) => Err(blocked.to_string()),
        // A name that does not resolve fails in the browser too.
        Ok(_) | Err(gate::Refusal::Failed(_)) => Ok(()),
    }
}
