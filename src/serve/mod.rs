//! `scriptscrape serve`: scans on demand over HTTP, streamed back as JSON
//! Lines in completion order, every scan sharing one set of bounds.
//!
//! ```text
//!  HTTP (axum) ─► auth, body and URL caps ─► engine.rs (one scheduler,
//!  POST /v1/scan                               one -c and --per-host)
//!       ◄─ {"object":"page"}, {"object":"script"}…, {"object":"summary"}
//! ```
//!
//! Every URL a client sends, and every redirect hop, is held to the
//! private-network rule (a server that fetches for its callers must not
//! become their way into its own network), unless the operator allows it.

mod conns;
pub mod engine;
pub mod http;
pub mod metrics;
mod scripts;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;
use crate::run::stop::{Level, Stop};

/// What the server runs with.
pub struct Settings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The bearer token clients must send, read from `--token-file`;
    /// `None` with `--no-auth` (loopback only).
    pub token: Option<String>,
    /// Client URLs may be private addresses (`--allow-private`).
    pub allow_private: bool,
    /// URLs one scan may ask for (`--max-urls`).
    pub max_urls: usize,
    /// URLs of running scans, all clients together, past which a new scan
    /// is answered 503 (`--max-pending`).
    pub max_pending: usize,
    /// The request header that names the client, set by a reverse proxy
    /// in front (`--client-header`); `None`: the peer's address does.
    pub client_header: Option<axum::http::HeaderName>,
    /// The fetching and parsing settings every scan shares (`-c`,
    /// `--per-host`, timeouts, retries, ...).
    pub config: Config,
}

/// The longest request body taken, and the longest URL.
pub const MAX_BODY: usize = 4 << 20;
pub const MAX_URL: usize = 8 << 10;

impl Settings {
    /// Checks the authentication choice: a token from `token_file`, or
    /// none with `no_auth`, which only a loopback address may use.
    pub fn token(
        listen: SocketAddr,
        token_file: Option<&PathBuf>,
        no_auth: bool,
    ) -> anyhow::Result<Option<String>> {
        match (token_file, no_auth) {
            (Some(_), true) => anyhow::bail!("--token-file and --no-auth contradict each other"),
            (Some(path), false) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --token-file {}", path.display()))?;
                let token = text.trim();
                // What a client can send in an Authorization header.
                anyhow::ensure!(
                    token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()),
                    "--token-file {}: the token must be at least 16 visible ASCII characters \
                     (letters, digits, punctuation), on one line",
                    path.display()
                );
                Ok(Some(token.to_owned()))
            }
            (None, true) if listen.ip().is_loopback() => Ok(None),
            (None, true) => anyhow::bail!(
                "--no-auth is only for a loopback address ({listen} is reachable from other \
                 machines): give --token-file"
            ),
            (None, false) => anyhow::bail!(
                "give --token-file FILE (clients send 'Authorization: Bearer TOKEN'), or \
                 --no-auth on a loopback address"
            ),
        }
    }
}

/// Runs the server until `stop` is asked for: then it stops accepting,
/// lets running scans finish within `--grace`, and ends the rest with a
/// summary that says they were cut short.
pub fn serve(settings: Settings, stop: &Stop) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.max_urls <= settings.max_pending,
        "--max-urls {} is more than --max-pending {}: a scan that size could never start",
        settings.max_urls,
        settings.max_pending
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("scriptscrape-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local = listener.local_addr()?;
        // The engine's own stop: scans in flight are cut at the end of the
        // grace period, not at the first signal.
        let engine_stop = Stop::new();
        let engine = engine::Engine::start(
            &settings.config,
            settings.allow_private,
            settings.max_pending,
            engine_stop.clone(),
        )?;
        let grace = settings.config.grace;
        let state = Arc::new(http::State::new(engine, &settings, stop.clone(), grace));
        tracing::info!(target: crate::run::terminal::SUMMARY_TARGET, "listening on http://{local}");
        let app = http::router(Arc::clone(&state));
        let peers = conns::Peers::new(
            conns::max_connections(),
            settings.client_header.is_some(),
            state.connections_refused(),
        );
        let stopping = stop.clone();
        accept(listener, app, peers, grace, async move {
            stopping.reached(Level::Draining).await;
            state.draining();
        })
        .await;
        engine_stop.request(crate::run::stop::Cause::Terminate);
        Ok::<(), anyhow::Error>(())
    })?;
    // Requests the engine still had in flight end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// How long a client may take to send a request's headers, and may keep
/// a connection open between requests: a client that trickles them
/// (slowloris), or sends nothing, holds a connection no longer.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on each connection `listener` accepts (HTTP/1.1; at most
/// [`conns::max_connections`] at once, each address its share of
/// `peers`) until `stopping` resolves; then accepts no more and waits for
/// the connections to finish: running scans end within `grace` (see
/// http.rs), and a second later connections still open (a client that
/// does not read its answer) are dropped.
async fn accept(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    peers: Arc<conns::Peers>,
    grace: Duration,
    stopping: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    // HTTP/1.1 only: hyper's header-read timeout holds from the first byte
    // (a connection that never says which version it speaks would wait
    // for it unbounded), and curl and every client library speak it.
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(conns::max_connections()));
    let refusing = Arc::new(tokio::sync::Semaphore::new(conns::REFUSING));
    tokio::pin!(stopping);
    loop {
        // The semaphore is never closed: acquiring only waits, and clients
        // wait in the listen backlog meanwhile.
        let slot = tokio::select! {
            Ok(slot) = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut stopping => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors, say: a moment before accepting more.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopping => break,
        };
        let Some(held) = peers.admit(peer.ip()) else {
            tracing::debug!("a connection refused: its address holds its share");
            conns::refuse(stream, &peers, &refusing);
            continue;
        };
        // Scans take turns by the client's address (http.rs).
        let app = app
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A connection that fails fails for its client alone.
            let _ = connection.await;
            drop((slot, held));
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), graceful.shutdown()).await;
}
