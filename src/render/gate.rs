//! The gate every connection of the browser goes through in a crawl: a
//! SOCKS5 server on loopback, given to Chromium as its proxy, that holds
//! each connection to the crawl's private-network rule.
//!
//! Request interception (page.rs) sees the requests of a page, its frames
//! and workers, but not a WebSocket's handshake, and it checks the
//! addresses a name has when the request is made while the browser then
//! resolves the name again (a DNS-rebinding server answers a private
//! address the second time). Through a SOCKS5 proxy the browser resolves
//! nothing: it names the host, and the gate resolves it once, keeps the
//! addresses the rule allows and connects to one of those. What was
//! checked is what is reached, whatever kind of connection it is.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::crawl::netguard::{Blocked, Guard, is_public};

/// The rule the browser's connections are held to, and the count of
/// those it refused.
#[derive(Clone)]
pub struct Gate {
    guard: Arc<Guard>,
    refused: Arc<AtomicU64>,
}

/// A SOCKS5 server for the browser on one listening socket; closed when
/// dropped.
pub struct Serving {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Gate {
    /// Each refused connection adds one to `refused`.
    pub fn new(guard: Arc<Guard>, refused: Arc<AtomicU64>) -> Gate {
        Gate { guard, refused }
    }

    /// Serves the connections made to `listener` (the one made in the
    /// browser's own network namespace, isolate.rs). Call within the
    /// async runtime.
    pub fn serve(&self, listener: std::net::TcpListener) -> io::Result<Serving> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept(
            listener,
            Arc::clone(&self.guard),
            Arc::clone(&self.refused),
        ));
        Ok(Serving { addr, task })
    }

    /// Serves connections on a free loopback port of scriptscrape's own
    /// network (where the browser cannot have one of its own). Call within
    /// the async runtime.
    pub fn open(&self) -> io::Result<Serving> {
        self.serve(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?)
    }
}

impl Serving {
    /// `--proxy-server`'s value for the browser.
    pub fn proxy_server(&self) -> String {
        format!("socks5://{}", self.addr)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        // The connections are tasks of the accept loop's set: they go too.
        self.task.abort();
    }
}

/// `--proxy-bypass-list` for the gate: nothing bypasses it, loopback
/// included (Chromium sends loopback hosts direct unless told not to).
pub const BYPASS_NOTHING: &str = "<-loopback>";

async fn accept(listener: TcpListener, guard: Arc<Guard>, refused: Arc<AtomicU64>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let guard = Arc::clone(&guard);
                    let refused = Arc::clone(&refused);
                    connections.spawn(async move {
                        // A connection that fails mid-way fails in the
                        // browser too, which reports it; nothing to add.
                        let _ = serve(client, &guard, &refused).await;
                    });
                }
                // Out of descriptors, say: the browser's connection fails
                // and it tries again; a moment before accepting more.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            // Reaps finished connections so that the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Time a client gets to say where it goes, and a connection to be made.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
const CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// Where the browser asks to go.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// An address, which no resolver sees.
    Ip(IpAddr, u16),
    /// A name, resolved by [`allowed`].
    Name(String, u16),
}

impl Target {
    /// Where a request for `url` goes; `None` for what opens no
    /// connection of its own (`data:`, `blob:`, `about:`...).
    pub fn of_url(url: &url::Url) -> Option<Target> {
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return None;
        }
        let port = url.port_or_known_default()?;
        Some(match url.host()? {
            url::Host::Ipv4(ip) => Target::Ip(IpAddr::V4(ip), port),
            url::Host::Ipv6(ip) => Target::Ip(IpAddr::V6(ip), port),
            url::Host::Domain(name) => Target::Name(name.to_owned(), port),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Ip(ip, port) => write!(f, "{}", SocketAddr::new(*ip, *port)),
            Target::Name(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// The SOCKS5 reply codes used (RFC 1928 §6).
mod reply {
    pub const SUCCEEDED: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const NOT_ALLOWED: u8 = 2;
    pub const HOST_UNREACHABLE: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const COMMAND_NOT_SUPPORTED: u8 = 7;
}

async fn serve(mut client: TcpStream, guard: &Guard, refused: &AtomicU64) -> io::Result<()> {
    let target = match tokio::time::timeout(HANDSHAKE_WITHIN, handshake(&mut client)).await {
        Ok(Ok(Ok(target))) => target,
        Ok(Ok(Err(code))) => return answer(&mut client, code).await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    tracing::debug!("the browser connects to {target}");
    let reached = tokio::time::timeout(CONNECT_WITHIN, reach(&target, guard)).await;
    let mut upstream = match reached {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(Refusal::Blocked(blocked))) => {
            refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!("the browser's connection to {target} was refused: {blocked}");
            return answer(&mut client, reply::NOT_ALLOWED).await;
        }
        Ok(Err(Refusal::Failed(e))) => {
            let code = match e.kind() {
                io::ErrorKind::ConnectionRefused => reply::REFUSED,
                _ => reply::HOST_UNREACHABLE,
            };
            return answer(&mut client, code).await;
        }
        Err(_) => return answer(&mut client, reply::HOST_UNREACHABLE).await,
    };
    answer(&mut client, reply::SUCCEEDED).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Reads the client's greeting and request: where it goes, or the reply
/// code that refuses it. Only what Chromium sends is accepted: no
/// authentication, CONNECT.
async fn handshake(client: &mut TcpStream) -> io::Result<Result<Target, u8>> {
    let [version, methods] = read_array(client).await?;
    if version != 5 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not SOCKS5"));
    }
    let mut offered = vec![0; usize::from(methods)];
    client.read_exact(&mut offered).await?;
    if !offered.contains(&0) {
        // "No acceptable methods".
        client.write_all(&[5, 0xff]).await?;
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no method"));
    }
    client.write_all(&[5, 0]).await?;
    let [version, command, _, kind] = read_array(client).await?;
    if version != 5 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not SOCKS5"));
    }
    let host = match kind {
        1 => Some(IpAddr::V4(Ipv4Addr::from(read_array::<4>(client).await?))),
        4 => Some(IpAddr::V6(Ipv6Addr::from(read_array::<16>(client).await?))),
        3 => None,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "address type")),
    };
    let name = match host {
        Some(_) => None,
        None => {
            let [len] = read_array(client).await?;
            let mut name = vec![0; usize::from(len)];
            client.read_exact(&mut name).await?;
            Some(name)
        }
    };
    let port = u16::from_be_bytes(read_array(client).await?);
    if command != 1 {
        return Ok(Err(reply::COMMAND_NOT_SUPPORTED));
    }
    Ok(match (host, name) {
        (Some(ip), _) => Ok(Target::Ip(ip, port)),
        (None, Some(name)) => target_named(&name, port).map_err(|()| reply::FAILURE),
        (None, None) => Err(reply::FAILURE),
    })
}

/// The target a host name sent by the browser means: an IP address may
/// come as a name too (bracketed when IPv6).
fn target_named(name: &[u8], port: u16) -> Result<Target, ()> {
    let name = std::str::from_utf8(name)
        .map_err(|_| ())?
        .to_ascii_lowercase();
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    Ok(match bare.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip, port),
        Err(_) if name.is_empty() => return Err(()),
        Err(_) => Target::Name(name, port),
    })
}

async fn read_array<const N: usize>(client: &mut TcpStream) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    client.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Sends the reply `code` (the bound address is not used by browsers).
async fn answer(client: &mut TcpStream, code: u8) -> io::Result<()> {
    client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await
}

/// Why a connection is not made.
pub enum Refusal {
    /// The private-network rule refuses it.
    Blocked(Blocked),
    /// The name does not resolve, or no address answers.
    Failed(io::Error),
}

/// Connects to `target` if the rule allows it, to an address it checked.
async fn reach(target: &Target, guard: &Guard) -> Result<TcpStream, Refusal> {
    let addrs = allowed(target, guard).await?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(Refusal::Failed(last))
}

/// The addresses of `target` the rule lets the browser connect to: a
/// name is resolved here, once, and only what [`Guard::filter`] keeps is
/// returned. The one check of both the gate and request interception
/// (page.rs), so that they never disagree on a host.
pub async fn allowed(target: &Target, guard: &Guard) -> Result<Vec<SocketAddr>, Refusal> {
    match target {
        Target::Ip(ip, port) => {
            // As a URL's host_str writes it, which is what the guard trusts.
            let host = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            if is_public(*ip) || guard.trusts_at(&host, *port) {
                Ok(vec![SocketAddr::new(*ip, *port)])
            } else {
                Err(Refusal::Blocked(Blocked { host, addr: *ip }))
            }
        }
        Target::Name(name, port) => {
            let bare = name.trim_end_matches('.');
            // Chromium answers these names itself, with loopback
            // addresses, whatever the system's resolver says (RFC 6761).
            let addrs: Vec<SocketAddr> = if bare == "localhost" || bare.ends_with(".localhost") {
                vec![
                    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), *port),
                    SocketAddr::new(Ipv6Addr::LOCALHOST.into(), *port),
                ]
            } else {
                tokio::net::lookup_host((name.as_str(), *port))
                    .await
                    .map_err(Refusal::Failed)?
                    .collect()
            };
            guard
                .filter_at(name, *port, addrs)
                .map_err(Refusal::Blocked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one SOCKS5 CONNECT through `gate` to `host` (a name, sent as
    /// the browser does) and returns the reply code and the stream.
    async fn connect(gate: &Serving, host: &str, port: u16) -> (u8, TcpStream) {
        let mut s = TcpStream::connect(gate.addr).await.expect("gate");
        s.write_all(&[5, 1, 0]).await.expect("greet");
        let chosen: [u8; 2] = read_array(&mut s).await.expect("method");
        assert_eq!(chosen, [5, 0]);
        let mut request = vec![5, 1, 0, 3, host.len() as u8];
        request.extend_from_slice(host.as_bytes());
        request.extend_from_slice(&port.to_be_bytes());
        s.write_all(&request).await.expect("request");
        let reply: [u8; 10] = read_array(&mut s).await.expect("reply");
        (reply[1], s)
    }

    #[tokio::test]
    async fn only_allowed_addresses_are_reached_and_refusals_counted() {
        let server = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = server.local_addr().expect("addr").port();
        let guard = Guard::new();
        guard.trust("127.0.0.1");
        let refused = Arc::new(AtomicU64::new(0));
        let gate = Gate::new(Arc::clone(&guard), Arc::clone(&refused))
            .open()
            .expect("gate");

        // A trusted host: connected, and bytes flow both ways.
        let (code, mut stream) = connect(&gate, "127.0.0.1", port).await;
        assert_eq!(code, reply::SUCCEEDED);
        let (mut accepted, _) = server.accept().await.expect("accepted");
        stream.write_all(b"ping").await.expect("write");
        let got: [u8; 4] = read_array(&mut accepted).await.expect("read");
        assert_eq!(&got, b"ping");
        accepted.write_all(b"pong").await.expect("write");
        let got: [u8; 4] = read_array(&mut stream).await.expect("read");
        assert_eq!(&got, b"pong");

        // Loopback by another name or address: refused, never reached.
        for host in ["localhost", "127.0.0.2", "[::1]"] {
            let (code, _) = connect(&gate, host, port).await;
            assert_eq!(code, reply::NOT_ALLOWED, "{host}");
        }
        assert_eq!(refused.load(Ordering::Relaxed), 3);
        let more = tokio::time::timeout(Duration::from_millis(200), server.accept()).await;
        assert!(more.is_err(), "a refused connection reached the server");
    }

    #[test]
    fn names_that_are_addresses_are_addresses() {
        assert_eq!(
            target_named(b"[::1]", 80),
            Ok(Target::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST), 80))
        );
        assert_eq!(
            target_named(b"Example.COM", 443),
            Ok(Target::Name("example.com".into(), 443))
        );
        assert_eq!(target_named(b"", 443), Err(()));
    }
}
