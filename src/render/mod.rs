//! `--render`: each fetched page loaded in a headless Chromium, and every
//! script that ran there reported (see README "Scripts a browser runs").
//!
//! ```text
//!  parse threads ─► render stage ──────────────────────────► writer
//!   (page, Job)      ≤ --render-concurrency pages at once,
//!                    each in a fresh browser context of one
//!                    shared browser (browser.rs), driven over
//!                    the DevTools protocol (cdp.rs, page.rs);
//!                    rows from what was recorded (inventory.rs)
//! ```
//!
//! The browser is started when the run starts and restarted when it dies
//! or hangs; the page it was loading is reported as `render_crashed`.

pub mod browser;
pub mod cdp;
pub mod gate;
pub mod inventory;
pub mod isolate;
pub mod page;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Mutex;

use crate::crawl::netguard::Guard;
use crate::error::{ErrorKind, PageError};
use crate::output::PageResult;
pub use inventory::{Origin, Rendered};
pub use page::{Job, Limits};

/// How pages are rendered (`--render` and its options).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The browser's executable.
    pub executable: PathBuf,
    /// Pages loaded at once (`--render-concurrency`).
    pub concurrency: usize,
    /// How each page is watched.
    pub limits: Limits,
    /// The proxies the browser's requests go through, as the run's.
    pub proxy: Option<crate::proxy::BrowserProxy>,
    /// The User-Agent the browser sends, when the user chose one
    /// (`--user-agent`); else Chromium's own.
    pub user_agent: Option<String>,
    /// Accept any certificate, as the run does (`-k`).
    pub insecure: bool,
}

/// A running browser and the connection to it.
struct Live {
    cdp: cdp::Cdp,
    /// Counts browsers started, so that a page that saw one die restarts
    /// that one only, not the one another page already started instead.
    generation: u64,
    browser: browser::Browser,
    /// The gate in its network namespace, when it has one of its own.
    _gate: Option<gate::Serving>,
}

/// How the browser reaches the network.
enum Route {
    /// Directly, or through the user's proxy (`Settings::proxy`).
    Direct,
    /// From a network namespace of its own, whose only way out is the
    /// gate (isolate.rs): each browser started gets a namespace and a
    /// gate's listener of its own.
    Isolated(gate::Gate),
    /// Through the gate on a loopback port (`Settings::proxy` names it),
    /// where the browser cannot have a network of its own.
    Gate { _serving: gate::Serving },
}

/// How the browser reached the network, for `--stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Directly: no private-network rule applies (listed URLs only, or
    /// `--allow-private`).
    #[default]
    Direct,
    /// Through the user's proxy, requests checked by interception.
    Proxy,
    /// From a network namespace of its own, through the gate.
    Namespace,
    /// Through the gate on a loopback port of the machine's network
    /// (no namespace could be made): WebRTC's UDP is not held.
    Gate,
}

impl Network {
    /// Its name in `--stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Direct => "direct",
            Network::Proxy => "proxy",
            Network::Namespace => "namespace",
            Network::Gate => "gate",
        }
    }
}

/// What rendering did in a run, for the summary and `--stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Pages loaded in the browser (whatever the outcome).
    pub pages: u64,
    /// Browsers started, the first included.
    pub browsers: u64,
    /// Requests of pages, their frames and workers that the
    /// private-network rule refused (as the page's requests).
    pub refused: u64,
    /// Connections the gate refused: WebSockets, a service worker's own
    /// requests, the browser's preconnects (for a request that may be
    /// refused as one too).
    pub connections_refused: u64,
    /// How the browser reached the network.
    pub network: Network,
}

/// The browser, shared by the pages rendered at once.
pub struct Renderer {
    settings: Settings,
    guard: Option<Arc<Guard>>,
    /// What the browser's connections go through: in a crawl, the gate.
    route: Route,
    live: Mutex<Option<Arc<Live>>>,
    started: AtomicU64,
    pages: AtomicU64,
    refused: AtomicU64,
    connections_refused: Arc<AtomicU64>,
}

impl Renderer {
    /// Starts the browser (so that one that cannot start is reported
    /// before any page is fetched).
    pub async fn start(
        mut settings: Settings,
        guard: Option<Arc<Guard>>,
    ) -> anyhow::Result<Renderer> {
        let connections_refused = Arc::new(AtomicU64::new(0));
        let refused = &connections_refused;
        // In a crawl every connection of the browser goes through the
        // gate, which holds it to the private-network rule. Through the
        // user's proxy instead, names are the proxy's to resolve, as
        // without --render (the rule then checks them here, page.rs).
        let route = match (&guard, &settings.proxy) {
            (Some(guard), None) if cfg!(target_os = "linux") => {
                Route::Isolated(gate::Gate::new(Arc::clone(guard), Arc::clone(refused)))
            }
            (Some(guard), None) => {
                let gate = gate::Gate::new(Arc::clone(guard), Arc::clone(refused));
                Route::Gate {
                    _serving: gate_on_loopback(&gate, &mut settings)?,
                }
            }
            _ => Route::Direct,
        };
        let mut renderer = Renderer {
            settings,
            guard,
            route,
            live: Mutex::new(None),
            started: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            connections_refused,
        };
        match renderer.browser(None).await {
            Ok(_) => {}
            Err(e) => {
                let (Route::Isolated(gate), Some(why)) =
                    (&renderer.route, e.downcast_ref::<browser::NotIsolated>())
                else {
                    return Err(e);
                };
                // No user namespaces (a hardened kernel, a container's
                // seccomp profile): the gate on loopback still holds every
                // TCP connection, WebRTC's UDP alone goes around it.
                tracing::warn!(
                    "{why}: it shares scriptscrape's, where a page's WebRTC traffic (UDP) is not \
                     held to the private-network rule"
                );
                let serving = gate_on_loopback(gate, &mut renderer.settings)?;
                renderer.route = Route::Gate { _serving: serving };
                renderer.browser(None).await?;
            }
        }
        Ok(renderer)
    }

    /// The running browser; started again when `dead` names the one that
    /// just failed (or none runs).
    async fn browser(&self, dead: Option<u64>) -> anyhow::Result<Arc<Live>> {
        let mut live = self.live.lock().await;
        if let Some(current) = live.as_ref()
            && dead != Some(current.generation)
            && !current.cdp.is_closed()
            && current.browser.is_running()
        {
            return Ok(Arc::clone(current));
        }
        if let Some(dead) = live.take() {
            // Hung, perhaps: killed now, not when its last page lets go.
            dead.browser.kill();
        }
        let launch = browser::Launch {
            executable: self.settings.executable.clone(),
            heap_mib: self.settings.limits.memory >> 20,
            proxy: self.settings.proxy.clone(),
            user_agent: self.settings.user_agent.clone(),
            insecure: self.settings.insecure,
            isolated: matches!(self.route, Route::Isolated(_)),
        };
        let mut process = browser::Browser::launch(&launch)?;
        let gate = match (&self.route, process.take_gate()) {
            (Route::Isolated(gate), Some(listener)) => Some(
                gate.serve(listener)
                    .context("cannot serve the browser's connections")?,
            ),
            (Route::Isolated(_), None) => {
                anyhow::bail!("internal error: the browser's network has no gate")
            }
            _ => None,
        };
        let (commands, replies) = process
            .take_pipes()
            .context("internal error: the browser's pipes were taken")?;
        let cdp =
            cdp::Cdp::connect(commands, replies).context("cannot read the browser's pipes")?;
        // Its first answer says it is ready.
        let asked = cdp.call(None, "Browser.getVersion", serde_json::json!({}));
        match tokio::time::timeout(browser::START_LIMIT, asked).await {
            Ok(Ok(_)) => {}
            _ => {
                // A browser that closed its pipe is exiting: a moment to
                // be reaped, so that the message can say it exited.
                for _ in 0..50 {
                    if !process.is_running() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let why = process.not_started();
                anyhow::bail!("{} did not start: {why}", launch.executable.display());
            }
        }
        let generation = self.started.fetch_add(1, Ordering::Relaxed);
        let started = Arc::new(Live {
            cdp,
            generation,
            browser: process,
            _gate: gate,
        });
        *live = Some(Arc::clone(&started));
        Ok(started)
    }

    /// Asks the browser to exit, as a user closing it would (it then
    /// ends its own processes and reaps them), and waits for it a moment;
    /// whatever is left is killed when the renderer is dropped.
    pub async fn close(&self) {
        let Some(live) = self.live.lock().await.take() else {
            return;
        };
        let asked = live.cdp.call(None, "Browser.close", serde_json::json!({}));
        let _ = tokio::time::timeout(CLOSE_WITHIN, asked).await;
        let started = tokio::time::Instant::now();
        while live.browser.is_running() && started.elapsed() < CLOSE_WITHIN {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What it did so far.
    pub fn tally(&self) -> Tally {
        Tally {
            pages: self.pages.load(Ordering::Relaxed),
            browsers: self.started.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            connections_refused: self.connections_refused.load(Ordering::Relaxed),
            network: match (&self.route, &self.settings.proxy) {
                (Route::Isolated(_), _) => Network::Namespace,
                (Route::Gate { .. }, _) => Network::Gate,
                (Route::Direct, Some(_)) if self.guard.is_some() => Network::Proxy,
                (Route::Direct, _) => Network::Direct,
            },
        }
    }

    /// Pages loaded at once.
    pub fn concurrency(&self) -> usize {
        self.settings.concurrency
    }

    /// Loads the page of `job` and gives `page` (its static result) the
    /// rows of every script that ran; a page that did not settle keeps
    /// what ran so far and says why in its report. `None` when `stopping`
    /// said the run is ending first: the page is not done (a later
    /// `--resume` does it again).
    pub async fn render(
        &self,
        mut page: PageResult,
        job: Job,
        stopping: impl Fn() -> bool,
    ) -> Option<PageResult> {
        if stopping() {
            return None;
        }
        let url = job.url.clone();
        let live = match self.browser(None).await {
            Ok(live) => live,
            Err(e) => {
                let why = format!("the browser could not be started again: {e:#}");
                return Some(mark(page, ErrorKind::RenderCrashed, why));
            }
        };
        let proxy_login = self
            .settings
            .proxy
            .as_ref()
            .and_then(|p| p.credentials.clone());
        let rec = page::render(
            &live.cdp,
            job,
            &self.settings.limits,
            page::Access {
                guard: self.guard.clone(),
                proxy_login,
            },
            stopping,
        )
        .await;
        if !matches!(rec.end, page::End::Stopped) {
            // A page the stop cut short is not done: a resumed run
            // renders it, and counts it, then.
            self.pages.fetch_add(1, Ordering::Relaxed);
        }
        self.refused
            .fetch_add(rec.refused.len() as u64, Ordering::Relaxed);
        for (refused, why) in &rec.refused {
            tracing::info!(
                "{}: the browser's request for {refused} was refused: {why}",
                page.page_url
            );
        }
        match &rec.end {
            page::End::Stopped => return None,
            page::End::BrowserGone(_) => {
                // Every page on it fails the same way; the next starts a
                // new browser.
                drop(self.browser(Some(live.generation)).await);
            }
            _ => {}
        }
        if let Ok(statics) = page.outcome {
            page.outcome = Ok(inventory::rows(&url, statics, &rec));
        }
        Some(
            match (rec.end.kind(), why(&rec.end, &self.settings.limits)) {
                (Some(kind), Some(why)) => mark(page, kind, why),
                _ => page,
            },
        )
    }
}

/// Why a page that ended so is reported in part; `None` when it settled.
fn why(end: &page::End, limits: &Limits) -> Option<String> {
    Some(match end {
        page::End::Settled | page::End::Stopped => return None,
        page::End::Timeout => format!(
            "the page did not settle within --render-timeout {} s; the scripts that ran until \
             then are reported",
            limits.timeout.as_secs_f64()
        ),
        page::End::Crashed => {
            "the page's tab crashed; the scripts that ran until then are reported".into()
        }
        page::End::Memory(used) => format!(
            "the page's JavaScript heap reached {} MB, past --render-memory {} MB; its tab was \
             closed",
            used >> 20,
            limits.memory >> 20
        ),
        page::End::TooManyScripts => format!(
            "the page ran more than {} scripts; its tab was closed and the first {0} are reported",
            page::MAX_SCRIPTS
        ),
        page::End::NotLoaded(error) => format!("the browser did not load the page ({error})"),
        page::End::BrowserGone(why) => format!("the browser failed ({why}); it was restarted"),
    })
}

/// Marks `page` as rendered only in part, for `why`.
fn mark(mut page: PageResult, kind: ErrorKind, why: String) -> PageResult {
    page.incomplete = Some(PageError::new(kind, why));
    page
}

/// Time the browser gets to exit when asked, before it is killed.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// Serves the gate on a loopback port and names it as the browser's proxy.
fn gate_on_loopback(gate: &gate::Gate, settings: &mut Settings) -> anyhow::Result<gate::Serving> {
    let serving = gate
        .open()
        .context("cannot listen on a loopback port for the browser's connections")?;
    settings.proxy = Some(crate::proxy::BrowserProxy {
        server: serving.proxy_server(),
        bypass: Some(gate::BYPASS_NOTHING.into()),
        credentials: None,
    });
    Ok(serving)
}
