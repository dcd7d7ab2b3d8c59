//! How many connections the server holds, and how many one address may.
//!
//! Every connection holds a descriptor and a task until its client closes
//! it or it idles out, so the server serves at most [`max_connections`]
//! at once; past that, new ones wait in the listen backlog. One address
//! may hold a quarter of them: a client that opens (or keeps alive) more
//! cannot take every connection from the others. Its extra connections
//! are answered 503 at once and closed, as a reverse proxy's per-address
//! connection limit does. Behind a reverse proxy (`--client-header`)
//! every connection comes from the proxy's address, so no share applies:
//! the proxy's own limits are the place for it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;

/// Connections served at once: half the descriptors the process may open
/// (the rest are the fetches'), within bounds.
pub(super) fn max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, nothing else.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0;
    let soft = if read { limit.rlim_cur } else { 1024 };
    usize::try_from(soft / 2)
        .unwrap_or(usize::MAX)
        .clamp(16, 4096)
}

/// Who a connection's address is, for its share: an IPv4 address, or an
/// IPv6 /64 (what one subscriber is usually given; an IPv4 address mapped
/// into IPv6 is that IPv4 address).
fn holder(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// The connections open, by address.
pub(super) struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
    /// The most one address may hold; `None`: no share.
    share: Option<usize>,
    /// Connections refused (`/metrics`).
    refused: Counter,
}

/// One address's connection; gives its place back when dropped.
pub(super) struct Held {
    peers: Arc<Peers>,
    holder: IpAddr,
}

impl Peers {
    /// Shares of `max` connections, a quarter (4 at least) each; or none,
    /// behind a reverse proxy.
    pub(super) fn new(max: usize, behind_proxy: bool, refused: Counter) -> Arc<Peers> {
        Arc::new(Peers {
            open: Mutex::new(HashMap::new()),
            share: (!behind_proxy).then_some((max / 4).max(4)),
            refused,
        })
    }

    /// A connection from `ip`, or `None` when its address holds its share.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        let holder = holder(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(holder).or_default();
        if self.share.is_some_and(|share| *count >= share) {
            return None;
        }
        *count += 1;
        Some(Held {
            peers: Arc::clone(self),
            holder,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.holder);
            }
        }
    }
}

/// Refused connections whose request is read (and dropped) after the
/// answer, at once: closing a socket with a request unread resets it,
/// and the client may lose the answer. Past these, a refusal is written
/// and the connection closed at once.
pub(super) const REFUSING: usize = 64;

/// How long a refused connection's client has to send its request.
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Answers a connection past its address's share 503 and closes it.
pub(super) fn refuse(
    stream: tokio::net::TcpStream,
    peers: &Peers,
    refusing: &Arc<tokio::sync::Semaphore>,
) {
    peers.refused.inc();
    // A new connection's send buffer is empty: the answer fits whole.
    let _ = stream.try_write(&refusal(peers.share.unwrap_or(0)));
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut stream = stream;
        let mut buf = [0u8; 4096];
        let drain = async {
            let mut read = 0;
            while read < 64 << 10 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
        drop(permit);
    });
}

/// The whole answer to a connection past its address's share: written at
/// once, without reading the request, and the connection closed.
fn refusal(share: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "error": format!(
            "this address has {share} connections open to the server, its share: close some, \
             or try again later"
        )
    })
    .to_string()
        + "\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: \
         5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_its_share_and_gets_it_back() {
        let peers = Peers::new(16, false, Counter::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let held: Vec<_> = (0..4).map_while(|_| peers.admit(a)).collect();
        assert_eq!(held.len(), 4);
        assert!(peers.admit(a).is_none());
        // The same address mapped into IPv6 is the same holder.
        assert!(peers.admit("::ffff:192.0.2.1".parse().unwrap()).is_none());
        assert!(peers.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(held);
        assert!(peers.admit(a).is_some());
        assert!(peers.open.lock().unwrap().get(&a).is_none());
    }

    #[test]
    fn an_ipv6_address_shares_with_its_64() {
        let peers = Peers::new(16, false, Counter::default());
        let held: Vec<_> = (1..=4)
            .map(|i| peers.admit(format!("2001:db8:1:2::{i}").parse().unwrap()))
            .collect();
        assert!(held.iter().all(Option::is_some));
        assert!(
            peers
                .admit("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_none()
        );
        assert!(peers.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
    }

    #[test]
    fn behind_a_proxy_no_share_applies() {
        let peers = Peers::new(16, true, Counter::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..100).map_while(|_| peers.admit(a)).collect();
        assert_eq!(held.len(), 100);
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = String::from_utf8(refusal(8)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let error: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(error["error"].as_str().unwrap().contains("8 connections"));
    }
}
