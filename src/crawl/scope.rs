//! Which discovered URLs a crawl may follow, relative to the seed they
//! were reached from (`--scope`).

use std::net::IpAddr;

use url::{Host, Url};

/// How far from its seed a crawl may go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// The seed's host and port.
    #[default]
    Host,
    /// The seed's registrable domain (`www.bbc.co.uk` and `news.bbc.co.uk`
    /// are both `bbc.co.uk`), by the public suffix list.
    Domain,
    /// The seed's scheme, host and port, and a path under the seed's
    /// directory (`/docs/intro.html` → `/docs/`).
    Prefix,
    /// Anywhere.
    Any,
}

impl Scope {
    /// Whether `url`, found while crawling from `seed`, is in scope.
    pub fn allows(self, seed: &Url, url: &Url) -> bool {
        match self {
            Scope::Any => true,
            Scope::Host => same_authority(seed, url),
            Scope::Domain => match (seed.host(), url.host()) {
                (Some(a), Some(b)) => same_site(&a, &b),
                _ => false,
            },
            Scope::Prefix => {
                seed.scheme() == url.scheme()
                    && same_authority(seed, url)
                    && url.path().starts_with(directory(seed.path()))
            }
        }
    }
}

fn same_authority(a: &Url, b: &Url) -> bool {
    a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// `/docs/intro.html` → `/docs/`; `/docs/` stays.
fn directory(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

/// The registrable domain of a host ("eTLD+1": `bbc.co.uk` for
/// `www.bbc.co.uk`, `user.github.io` for itself, as `github.io` is a public
/// suffix). An IP address, or a name with no registrable part
/// (`localhost`), is its own.
pub fn registrable_domain(host: &Host<&str>) -> String {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).to_string(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).to_string(),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            psl::domain_str(name).unwrap_or(name).to_ascii_lowercase()
        }
    }
}

/// Whether two hosts are the same site: the same registrable domain (or,
/// for IP addresses and names without one, the same host). What makes a
/// script third-party to a page.
pub fn same_site(a: &Host<&str>, b: &Host<&str>) -> bool {
    match (a, b) {
        (Host::Domain(a), Host::Domain(b)) => {
            // Host names in http(s) URLs are already lower case.
            let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
            psl::domain_str(a).unwrap_or(a) == psl::domain_str(b).unwrap_or(b)
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(scope: Scope, seed: &str, url: &str) -> bool {
        scope.allows(&Url::parse(seed).unwrap(), &Url::parse(url).unwrap())
    }

    #[test]
    fn host_scope_is_host_and_port() {
        let seed = "https://www.example.com/start";
        assert!(allows(Scope::Host, seed, "https://www.example.com/other?q"));
        assert!(allows(Scope::Host, seed, "https://www.example.com:443/x"));
        assert!(!allows(Scope::Host, seed, "https://example.com/"));
        assert!(!allows(Scope::Host, seed, "https://www.example.com:8443/"));
        assert!(!allows(
            Scope::Host,
            "http://127.0.0.1:3000/",
            "http://127.0.0.1:3001/"
        ));
    }

    #[test]
    fn domain_scope_uses_the_public_suffix_list() {
        let seed = "https://www.bbc.co.uk/";
        assert!(allows(Scope::Domain, seed, "http://news.bbc.co.uk/x"));
        assert!(!allows(Scope::Domain, seed, "https://www.itv.co.uk/"));
        // github.io is a public suffix: two users' sites are two domains.
        assert!(!allows(
            Scope::Domain,
            "https://alice.github.io/",
            "https://bob.github.io/"
        ));
        assert!(allows(
            Scope::Domain,
            "http://127.0.0.1:1/",
            "http://127.0.0.1:2/"
        ));
        assert!(!allows(
            Scope::Domain,
            "http://127.0.0.1/",
            "http://127.0.0.2/"
        ));
    }

    #[test]
    fn prefix_scope_is_the_seed_directory() {
        let seed = "https://e.test/docs/intro.html";
        assert!(allows(Scope::Prefix, seed, "https://e.test/docs/a/b.html"));
        assert!(allows(Scope::Prefix, seed, "https://e.test/docs/"));
        assert!(!allows(Scope::Prefix, seed, "https://e.test/blog/"));
        assert!(!allows(Scope::Prefix, seed, "http://e.test/docs/a"));
        assert!(allows(Scope::Any, seed, "ftp://elsewhere.test/"));
    }

    #[test]
    fn registrable_domains() {
        let rd = |s: &str| registrable_domain(&Url::parse(s).unwrap().host().unwrap());
        assert_eq!(rd("https://a.b.example.com/"), "example.com");
        assert_eq!(rd("https://WWW.BBC.CO.UK/"), "bbc.co.uk");
        assert_eq!(rd("http://localhost/"), "localhost");
        assert_eq!(rd("http://[::1]/"), "::1");
        assert_eq!(rd("http://10.0.0.1/"), "10.0.0.1");
    }

    #[test]
    fn sites() {
        let same = |a: &str, b: &str| {
            let (a, b) = (Url::parse(a).unwrap(), Url::parse(b).unwrap());
            same_site(&a.host().unwrap(), &b.host().unwrap())
        };
        assert!(same(
            "https://www.shop.example/",
            "https://cdn.shop.example/a.js"
        ));
        assert!(same("https://shop.example./", "https://SHOP.example/a.js"));
        assert!(!same(
            "https://www.shop.example/",
            "https://cdn.example/a.js"
        ));
        assert!(!same("https://alice.github.io/", "https://bob.github.io/"));
        assert!(same("http://127.0.0.1:1/", "http://127.0.0.1:2/"));
        assert!(!same("http://127.0.0.1/", "http://localhost/"));
    }
}
