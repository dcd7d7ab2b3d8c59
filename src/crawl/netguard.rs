//! Addresses a crawl must not step into from a public page.
//!
//! A link on a page is untrusted input: followed blindly, a crawl of a
//! public site could be steered at the machine's own services, the local
//! network or a cloud metadata endpoint (server-side request forgery).
//! [`is_public`] tells an address on the public internet from loopback,
//! private, link-local, carrier-grade NAT, metadata, documentation,
//! multicast and reserved ranges, IPv4 and IPv6 alike (IPv4 addresses
//! embedded in IPv6 are judged as IPv4).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use url::{Host, Url};

/// Keeps a crawl out of private networks: every host but the trusted ones
/// (the listed URLs' hosts, the proxy's) must be, or resolve to, public
/// addresses. Shared by the scheduler, which trusts each seed's host as it
/// reads it, and the HTTP client, which asks at each connection and
/// redirect hop.
#[derive(Debug, Default)]
pub struct Guard {
    /// Listed URLs' hosts: any port.
    trusted: RwLock<HashSet<String>>,
    /// Proxies: their host at their port only, so that a proxy on
    /// loopback opens no other service of the machine to a crawl.
    proxies: RwLock<HashSet<(String, u16)>>,
}

/// A request the guard stopped: the error kind `private_address`.
#[derive(Debug)]
pub struct Blocked {
    /// The host as the URL names it.
    pub host: String,
    /// The address it is, or resolved to.
    pub addr: IpAddr,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        // The same address may be written two ways (::ffff:7f00:1 is
        // ::ffff:127.0.0.1).
        if host.parse::<IpAddr>().is_ok_and(|ip| ip == self.addr) {
            write!(f, "{host} is a non-public address")?;
        } else {
            write!(f, "{host} resolves to the non-public address {}", self.addr)?;
        }
        write!(f, "; private networks are off limits (--allow-private)")
    }
}

impl std::error::Error for Blocked {}

impl Guard {
    /// A guard that trusts no host yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Guard::default())
    }

    /// Trusts `host` (as a URL's `host_str` gives it) for the rest of the
    /// run: a listed URL's host, or the proxy's.
    pub fn trust(&self, host: &str) {
        let host = host.to_ascii_lowercase();
        if !self.trusts(&host) {
            self.trusted
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(host);
        }
    }

    /// Trusts the proxies requests may go through, as they are the
    /// user's choice: each at its own port. (A proxy resolves the names it
    /// is asked for itself, so the guard can then only check hosts that
    /// are IP addresses.)
    pub fn trust_proxies(&self, proxies: &crate::proxy::Proxies) {
        let mut trusted = self.proxies.write().unwrap_or_else(PoisonError::into_inner);
        for proxy in proxies.all() {
            if let (Some(host), Some(port)) = (proxy.host_str(), proxy.port_or_known_default()) {
                trusted.insert((host.to_ascii_lowercase(), port));
            }
        }
    }

    /// Whether `host` at `port` is trusted: a listed host (any port), or
    /// a proxy.
    pub fn trusts_at(&self, host: &str, port: u16) -> bool {
        self.trusts(host)
            || self
                .proxies
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|(h, p)| *p == port && h.eq_ignore_ascii_case(host))
    }

    /// Whether `host` is a proxy's, whatever the port.
    fn is_proxy(&self, host: &str) -> bool {
        self.proxies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case(host))
    }

    /// Whether `host` is trusted (listed, or a proxy).
    pub fn trusts(&self, host: &str) -> bool {
        self.trusted
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(host)
    }

    /// Checks a URL whose host is an IP address, which no resolver sees;
    /// names are checked as they resolve ([`Guard::resolver`]).
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(0);
        if is_public(ip) || self.trusts_at(host, port) {
            Ok(())
        } else {
            Err(Blocked {
                host: host.to_owned(),
                addr: ip,
            })
        }
    }

    /// The addresses of `host` a connection may use: all of them for a
    /// trusted host, else only the public ones (so that a name that
    /// resolves to both cannot be steered to the private one); an error
    /// when none is left.
    ///
    /// For the HTTP client's resolver, which names no port: a proxy's name
    /// is allowed too (the client resolves it to reach the proxy; what it
    /// sends through the proxy it never resolves). Where the port is
    /// known, [`Guard::filter_at`].
    pub fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Blocked> {
        if self.is_proxy(host) {
            return Ok(addrs);
        }
        self.filter_at(host, 0, addrs)
    }

    /// As [`Guard::filter`], for a connection to `port`: a proxy's host is
    /// trusted at the proxy's port only.
    pub fn filter_at(
        &self,
        host: &str,
        port: u16,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Blocked> {
        if self.trusts_at(host, port) {
            return Ok(addrs);
        }
        let (public, private): (Vec<SocketAddr>, Vec<SocketAddr>) =
            addrs.into_iter().partition(|a| is_public(a.ip()));
        match (public.is_empty(), private.first()) {
            (true, Some(first)) => Err(Blocked {
                host: host.to_owned(),
                addr: first.ip(),
            }),
            _ => Ok(public),
        }
    }

    /// A DNS resolver for the HTTP client that applies [`Guard::filter`]
    /// to what the system resolver (getaddrinfo) answers.
    pub fn resolver(self: &Arc<Self>) -> Arc<dyn reqwest::dns::Resolve> {
        Arc::new(Resolver(Arc::clone(self)))
    }
}

struct Resolver(Arc<Guard>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            // getaddrinfo on the blocking pool, as reqwest's own resolver.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = guard.filter(&host, addrs)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let blocked = a == 0                                  // "this network"
        || a == 10                                        // private
        || a == 127                                       // loopback
        || (a == 100 && (64..128).contains(&b))           // carrier-grade NAT (Alibaba metadata)
        || (a == 169 && b == 254)                         // link-local (cloud metadata)
        || (a == 172 && (16..32).contains(&b))            // private
        || (a == 192 && b == 0 && c == 0)                 // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)                 // documentation
        || (a == 192 && b == 88 && c == 99)               // 6to4 relay anycast
        || (a == 192 && b == 168)                         // private
        || (a == 198 && (b == 18 || b == 19))             // benchmarking
        || (a == 198 && b == 51 && c == 100)              // documentation
        || (a == 203 && b == 0 && c == 113)               // documentation
        || a >= 224; // multicast, reserved, broadcast
    !blocked
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return public_v4(v4);
    }
    let s = ip.segments();
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00                      // unique local (AWS metadata fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80                      // link-local
        || (s[0] & 0xffc0) == 0xfec0                      // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00                      // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8)             // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]); // discard-only
    !blocked
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-
/// compatible (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4];
    (mapped || compatible || nat64).then_some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn the_guard_trusts_listed_hosts_and_filters_the_rest() {
        let guard = Guard::new();
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(guard.check_url(&url("http://127.0.0.1:8080/")).is_err());
        assert!(guard.check_url(&url("http://[::1]/")).is_err());
        assert!(guard.check_url(&url("http://8.8.8.8/")).is_ok());
        assert!(guard.check_url(&url("http://name.test/")).is_ok());
        guard.trust("127.0.0.1");
        guard.trust("[::1]");
        assert!(guard.check_url(&url("http://127.0.0.1:9/x")).is_ok());
        assert!(guard.check_url(&url("http://[::1]:9/x")).is_ok());
        assert!(guard.check_url(&url("http://127.0.0.2/")).is_err());

        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        let mixed = vec![addr("10.0.0.1"), addr("93.184.216.34")];
        assert_eq!(
            guard.filter("rebind.test", mixed.clone()).unwrap(),
            [addr("93.184.216.34")]
        );
        let err = guard
            .filter("metadata.test", vec![addr("169.254.169.254")])
            .unwrap_err();
        assert_eq!(err.addr.to_string(), "169.254.169.254");
        guard.trust("Intranet.Test");
        assert_eq!(guard.filter("intranet.test", mixed.clone()).unwrap(), mixed);
    }

    #[test]
    fn an_address_is_named_as_itself_however_written() {
        let url = Url::parse("http://[::ffff:127.0.0.1]/").unwrap();
        let err = Guard::new().check_url(&url).unwrap_err().to_string();
        assert!(
            err.starts_with("::ffff:7f00:1 is a non-public address"),
            "{err}"
        );
    }

    #[test]
    fn a_proxy_is_trusted_at_its_port_only() {
        let guard = Guard::new();
        let proxies =
            crate::proxy::Proxies::new(Some(Url::parse("http://127.0.0.1:3128").unwrap())).unwrap();
        guard.trust_proxies(&proxies);
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(guard.check_url(&url("http://127.0.0.1:3128/")).is_ok());
        assert!(guard.check_url(&url("http://127.0.0.1:9001/")).is_err());
        assert!(guard.check_url(&url("http://127.0.0.1/")).is_err());
        let local = vec![SocketAddr::new("127.0.0.1".parse().unwrap(), 0)];
        assert!(guard.filter_at("127.0.0.1", 3128, local.clone()).is_ok());
        assert!(guard.filter_at("127.0.0.1", 9001, local.clone()).is_err());
        // The client's resolver, which names no port, reaches the proxy.
        assert!(guard.filter("127.0.0.1", local).is_ok());
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn private_and_special_addresses_are_stopped() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.10",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "::10.0.0.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
        // Neighbours of the blocked ranges are public.
        for ip in [
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(ip), "{ip}");
        }
    }
}
