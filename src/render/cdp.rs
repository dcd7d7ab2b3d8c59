//! A client for the Chrome DevTools Protocol: JSON commands and events
//! over the browser's pipes (`--remote-debugging-pipe`: one message per
//! NUL-terminated JSON text), with flat sessions (each attached target's
//! messages carry its `sessionId`).
//!
//! Commands are answered by id; events are routed by session to whoever
//! asked for that session's events. A target attached under a routed
//! session (an iframe or worker the page auto-attaches) is routed to the
//! same place before its first event arrives: the routing is done by the
//! one task that reads the socket, in the order Chromium sent the
//! messages, so no event can overtake the `Target.attachedToTarget` that
//! announced its session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use std::os::fd::OwnedFd;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

/// One protocol event.
#[derive(Debug)]
pub struct Event {
    /// The session it came from; `None` for the browser's own.
    pub session: Option<String>,
    /// `Domain.event`.
    pub method: String,
    /// Its parameters.
    pub params: Value,
}

/// Why a command got no result.
#[derive(Debug, thiserror::Error)]
pub enum CdpError {
    /// The browser answered with an error.
    #[error("{method}: {message}")]
    Protocol {
        /// The command.
        method: String,
        /// The browser's message.
        message: String,
    },
    /// The connection to the browser is gone (it exited or crashed).
    #[error("the browser connection closed")]
    Closed,
}

type Reply = Result<Value, CdpError>;

#[derive(Default)]
struct Routes {
    /// Commands awaiting their answer: the sender, and the method for
    /// error messages.
    pending: HashMap<u64, (oneshot::Sender<Reply>, String)>,
    /// Where each session's events go.
    sessions: HashMap<String, mpsc::UnboundedSender<Event>>,
    /// Set once the socket is gone: nothing more will be answered.
    closed: bool,
}

/// A connection to a browser; cheap to clone.
#[derive(Clone)]
pub struct Cdp {
    outgoing: mpsc::UnboundedSender<String>,
    routes: Arc<Mutex<Routes>>,
    next_id: Arc<AtomicU64>,
}

/// The largest message read: a script's source comes back in one message,
/// and a page may run a script of tens of megabytes.
const MAX_MESSAGE: usize = 256 << 20;

impl Cdp {
    /// Talks to the browser over its pipes: `commands`, written to, and
    /// `replies`, read from. Events of sessions no one routed (the
    /// browser's own) are dropped. Call within the async runtime.
    pub fn connect(commands: OwnedFd, replies: OwnedFd) -> std::io::Result<Cdp> {
        let mut write = pipe::Sender::from_owned_fd(commands)?;
        let read = pipe::Receiver::from_owned_fd(replies)?;
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        let routes = Arc::new(Mutex::new(Routes::default()));
        tokio::spawn(async move {
            while let Some(mut text) = to_send.recv().await {
                text.push('\0');
                if write.write_all(text.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn({
            let routes = Arc::clone(&routes);
            async move {
                read_messages(read, |value| dispatch(&routes, value)).await;
                close(&routes);
            }
        });
        let cdp = Cdp {
            outgoing,
            routes,
            next_id: Arc::new(AtomicU64::new(1)),
        };
        Ok(cdp)
    }

    /// Sends `method` to `session` (the browser's when `None`) and waits
    /// for its result.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            if routes.closed {
                return Err(CdpError::Closed);
            }
            routes.pending.insert(id, (tx, method.to_owned()));
        }
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        if self.outgoing.send(message.to_string()).is_err() {
            self.forget(id);
            return Err(CdpError::Closed);
        }
        rx.await.unwrap_or(Err(CdpError::Closed))
    }

    /// Sends events of `session`, and of every target attached under it
    /// from now on, to `to`.
    pub fn route(&self, session: &str, to: mpsc::UnboundedSender<Event>) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.sessions.insert(session.to_owned(), to);
    }

    /// Stops routing every session whose events go where `session`'s go.
    pub fn unroute(&self, session: &str) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(to) = routes.sessions.get(session).cloned() {
            routes.sessions.retain(|_, t| !t.same_channel(&to));
        }
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed
    }

    fn forget(&self, id: u64) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.pending.remove(&id);
    }
}

/// Reads NUL-terminated messages until the browser closes its end. A
/// message past [`MAX_MESSAGE`] is skipped (its command goes unanswered,
/// and its page's time runs out) rather than held in memory.
async fn read_messages(read: pipe::Receiver, mut each: impl FnMut(Value)) {
    let mut read = BufReader::with_capacity(1 << 16, read);
    let mut message = Vec::new();
    let mut skipping = false;
    loop {
        let (done, used) = match read.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(chunk) => match chunk.iter().position(|&b| b == 0) {
                Some(end) => {
                    if !skipping {
                        message.extend_from_slice(&chunk[..end]);
                    }
                    (true, end + 1)
                }
                None => {
                    if !skipping {
                        message.extend_from_slice(chunk);
                    }
                    (false, chunk.len())
                }
            },
        };
        read.consume(used);
        if message.len() > MAX_MESSAGE {
            message = Vec::new();
            skipping = true;
        }
        if done {
            if !skipping && let Ok(value) = serde_json::from_slice::<Value>(&message) {
                each(value);
            }
            message.clear();
            skipping = false;
        }
    }
}

/// Hands one message from the browser to whoever waits for it.
fn dispatch(routes: &Mutex<Routes>, value: Value) {
    let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        if let Some((tx, method)) = routes.pending.remove(&id) {
            let reply = match value.get("error") {
                Some(error) => Err(CdpError::Protocol {
                    method,
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                        .to_owned(),
                }),
                None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = tx.send(reply);
        }
        return;
    }
    let Some(method) = value.get("method").and_then(Value::as_str) else {
        return;
    };
    let session = value
        .get("sessionId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let params = value.get("params").cloned().unwrap_or(Value::Null);
    let to = match &session {
        Some(s) => routes.sessions.get(s).cloned(),
        None => None,
    };
    if let Some(to) = &to {
        let child = params.get("sessionId").and_then(Value::as_str);
        match (method, child) {
            ("Target.attachedToTarget", Some(child)) => {
                routes.sessions.insert(child.to_owned(), to.clone());
            }
            ("Target.detachedFromTarget", Some(child)) => {
                // Its last events were sent before this one.
                routes.sessions.remove(child);
            }
            _ => {}
        }
    }
    if let Some(to) = to {
        let _ = to.send(Event {
            session,
            method: method.to_owned(),
            params,
        });
    }
}

/// The socket is gone: every waiting command fails, and every session's
/// receiver sees its channel end.
fn close(routes: &Mutex<Routes>) {
    let mut routes = routes.lock().unwrap_or_else(PoisonError::into_inner);
    routes.closed = true;
    for (_, (tx, _)) in routes.pending.drain() {
        let _ = tx.send(Err(CdpError::Closed));
    }
    routes.sessions.clear();
}
