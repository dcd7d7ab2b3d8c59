//! Which proxy each request goes through: `--proxy`, or the one the
//! environment names for the URL's scheme (`HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY`, upper or lower case), unless `NO_PROXY` exempts the host.
//!
//! Values are checked when the run starts, so a proxy that cannot be used
//! stops the run with a message instead of being dropped (reqwest ignores
//! an `ftp://` proxy and fetches directly) or misread; and the HTTP client
//! is given exactly the proxies read here, so the proxy an error names is
//! the one the request went through. Values are shown with their user info
//! masked: a proxy URL often carries a password or a token.

use std::borrow::Cow;
use std::net::IpAddr;

use anyhow::bail;
use url::Url;

/// The proxy schemes the client speaks.
pub const SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

/// SOCKS proxies' usual port, reqwest's default for them too.
const SOCKS_PORT: u16 = 1080;

/// A proxy as the user wrote it, parsed: an `http`, `https`, `socks5` or
/// `socks5h` URL with a host; without a scheme, `http://`, as curl reads
/// it (`127.0.0.1:3128`, `user:pw@proxy:3128`). The error is why not, in
/// words that never repeat the value.
pub fn parse(value: &str) -> Result<Url, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("it is empty".into());
    }
    let url = if has_scheme(value) {
        Url::parse(value)
    } else {
        Url::parse(&format!("http://{value}"))
    };
    let mut url = url.map_err(|e| e.to_string())?;
    if !SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "unsupported scheme {}: use http://, https://, socks5:// or socks5h://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.port().is_none() && url.scheme().starts_with("socks") {
        // Set, so that a refused connection names the port tried.
        let _ = url.set_port(Some(SOCKS_PORT));
    }
    Ok(url)
}

/// A proxy value as it may be shown in a message: as written, with its
/// user info masked (`http://***@proxy:3128`), with or without a scheme.
pub fn shown(value: &str) -> Cow<'_, str> {
    if has_scheme(value) {
        return crate::output::without_password(value);
    }
    match crate::output::without_password(&format!("http://{value}")) {
        Cow::Owned(masked) => Cow::Owned(masked["http://".len()..].to_owned()),
        Cow::Borrowed(_) => Cow::Borrowed(value),
    }
}

/// Whether `value` starts with `scheme://` (RFC 3986 scheme characters).
fn has_scheme(value: &str) -> bool {
    value.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// A run's proxies as Chromium takes them (see [`Proxies::for_browser`]).
#[derive(Clone)]
pub struct BrowserProxy {
    /// `--proxy-server`'s value.
    pub server: String,
    /// `--proxy-bypass-list`'s value (from `NO_PROXY`).
    pub bypass: Option<String>,
    /// The proxy's user name and password, when its URL has them.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for BrowserProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserProxy")
            .field("server", &self.server)
            .field("bypass", &self.bypass)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The proxies of a run: `--proxy`, or those the environment names.
#[derive(Clone, Default)]
pub struct Proxies {
    explicit: Option<Url>,
    http: Option<Url>,
    https: Option<Url>,
    no_proxy: Vec<String>,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |p: &Option<Url>| p.as_ref().map(|u| shown(u.as_str()).into_owned());
        f.debug_struct("Proxies")
            .field("explicit", &show(&self.explicit))
            .field("http", &show(&self.http))
            .field("https", &show(&self.https))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Proxies {
    /// `--proxy` (already parsed) or, without it, the environment's
    /// proxies, checked: a variable that is set but is not a usable proxy
    /// is an error naming it.
    pub fn new(explicit: Option<Url>) -> anyhow::Result<Proxies> {
        let no_proxy = var(&["NO_PROXY", "no_proxy"])
            .map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        // As reqwest (hyper-util) does: in a CGI program HTTP_PROXY may
        // come from a request's Proxy header ("httpoxy"), so the
        // environment's proxies are not used at all.
        if explicit.is_some() || std::env::var_os("REQUEST_METHOD").is_some() {
            return Ok(Proxies {
                explicit,
                no_proxy,
                ..Proxies::default()
            });
        }
        let checked = |names: &[&'static str]| -> anyhow::Result<Option<Url>> {
            let Some((name, value)) = var(names) else {
                return Ok(None);
            };
            match parse(&value) {
                Ok(url) => Ok(Some(url)),
                Err(why) => bail!("invalid {name} {:?}: {why}", shown(value.trim())),
            }
        };
        let all = checked(&["ALL_PROXY", "all_proxy"])?;
        Ok(Proxies {
            explicit: None,
            http: checked(&["HTTP_PROXY", "http_proxy"])?.or_else(|| all.clone()),
            https: checked(&["HTTPS_PROXY", "https_proxy"])?.or(all),
            no_proxy,
        })
    }

    /// Every proxy a request may go through.
    pub fn all(&self) -> impl Iterator<Item = &Url> {
        [&self.explicit, &self.http, &self.https]
            .into_iter()
            .filter_map(Option::as_ref)
    }

    /// The same proxies for Chromium (`--render`): its `--proxy-server`
    /// and `--proxy-bypass-list` flags, and the user name and password
    /// it is to answer a proxy's challenge with (never on its command
    /// line, which any user of the machine can read).
    pub fn for_browser(&self) -> Option<BrowserProxy> {
        let server = |url: &Url| {
            // Chromium's socks5 already resolves names at the proxy.
            let scheme = match url.scheme() {
                "socks5h" => "socks5",
                other => other,
            };
            let host = url.host_str().unwrap_or_default();
            match url.port_or_known_default() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            }
        };
        let flag = match (&self.explicit, &self.http, &self.https) {
            (Some(p), _, _) => server(p),
            (None, None, None) => return None,
            (None, http, https) => [("http", http), ("https", https)]
                .into_iter()
                .filter_map(|(scheme, p)| Some(format!("{scheme}={}", server(p.as_ref()?))))
                .collect::<Vec<_>>()
                .join(";"),
        };
        let credentials = self.all().find(|p| !p.username().is_empty()).map(|p| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                decode(p.username()),
                decode(p.password().unwrap_or_default()),
            )
        });
        // Chromium sends loopback hosts direct, whatever the proxy, unless
        // told otherwise; reqwest, which fetched the page, does not: so
        // the browser's requests for them, WebSockets included, go
        // through the proxy as the run's do, unless NO_PROXY names them.
        let mut bypass = vec!["<-loopback>".to_owned()];
        bypass.extend(self.no_proxy.iter().cloned());
        Some(BrowserProxy {
            server: flag,
            bypass: Some(bypass.join(";")),
            credentials,
        })
    }

    /// The proxy a request for `url` goes through.
    pub fn for_url(&self, url: &Url) -> Option<&Url> {
        let proxy = match (&self.explicit, url.scheme()) {
            (Some(p), _) => Some(p),
            (None, "https") => self.https.as_ref(),
            (None, _) => self.http.as_ref(),
        }?;
        let host = url
            .host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        (!self.exempts(&host)).then_some(proxy)
    }

    /// The client with these proxies. Without any, the client keeps
    /// reqwest's system proxies (none on Linux, where the environment was
    /// read here; the OS settings on macOS and Windows).
    pub(crate) fn configure(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> anyhow::Result<reqwest::ClientBuilder> {
        // NO_PROXY names the hosts to reach directly, with --proxy too.
        let make = |proxy: reqwest::Result<reqwest::Proxy>| -> anyhow::Result<reqwest::Proxy> {
            // parse() checked the value, so reqwest accepts it; its error,
            // if any, would name the URL, password included.
            let Ok(proxy) = proxy else {
                bail!("cannot set up the proxy");
            };
            Ok(proxy.no_proxy(reqwest::NoProxy::from_env()))
        };
        if let Some(proxy) = &self.explicit {
            return Ok(builder.proxy(make(reqwest::Proxy::all(proxy.as_str()))?));
        }
        if let Some(proxy) = &self.http {
            builder = builder.proxy(make(reqwest::Proxy::http(proxy.as_str()))?);
        }
        if let Some(proxy) = &self.https {
            builder = builder.proxy(make(reqwest::Proxy::https(proxy.as_str()))?);
        }
        Ok(builder)
    }

    fn exempts(&self, host: &str) -> bool {
        let ip = host.parse::<IpAddr>().ok();
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some(ip) = ip {
                return match entry.split_once('/') {
                    Some((net, bits)) => in_network(ip, net, bits),
                    None => entry.trim_matches(['[', ']']).parse::<IpAddr>() == Ok(ip),
                };
            }
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
    }
}

/// The first of the variables `names` that is set and not blank, with its
/// name.
fn var(names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|&name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    })
}

/// Whether `ip` is in `net/bits` (NO_PROXY's CIDR entries).
fn in_network(ip: IpAddr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn proxies_parse_as_curl_reads_them() {
        for (value, parsed) in [
            ("http://p.example:3128", "http://p.example:3128/"),
            ("127.0.0.1:3128", "http://127.0.0.1:3128/"),
            ("localhost:3128", "http://localhost:3128/"),
            ("u:pw@[::1]:3128", "http://u:pw@[::1]:3128/"),
            ("HTTPS://p.example", "https://p.example/"),
            ("socks5://127.0.0.1", "socks5://127.0.0.1:1080"),
            ("socks5h://u:p@h:9050", "socks5h://u:p@h:9050"),
        ] {
            assert_eq!(parse(value).map(String::from), Ok(parsed.into()), "{value}");
        }
        for (value, why) in [
            ("ftp://127.0.0.1:1", "unsupported scheme ftp"),
            ("socks4://127.0.0.1:1", "unsupported scheme socks4"),
            ("http://u:p@127.0.0.1:99999", "invalid port number"),
            ("u:p@", "empty host"),
            ("socks5://", "no host"),
            ("  ", "it is empty"),
        ] {
            let err = parse(value).unwrap_err();
            assert!(err.starts_with(why), "{value}: {err}");
        }
    }

    #[test]
    fn values_are_shown_without_user_info() {
        for (value, masked) in [
            ("http://u:p@h:1", "http://***@h:1"),
            ("TOKEN@h:1", "***@h:1"),
            ("u:p@", "***@"),
            ("h:3128", "h:3128"),
        ] {
            assert_eq!(shown(value), masked, "{value}");
        }
        let proxies = Proxies {
            explicit: Some(url("http://u:s3cret@p.example:3128")),
            ..Proxies::default()
        };
        assert!(!format!("{proxies:?}").contains("s3cret"));
    }

    #[test]
    fn no_proxy_exempts_hosts_domains_and_networks() {
        let proxies = Proxies {
            explicit: Some(url("http://p.example:3128")),
            no_proxy: vec!["example.com".into(), "10.0.0.0/8".into(), "::1".into()],
            ..Proxies::default()
        };
        assert!(proxies.for_url(&url("http://example.com/")).is_none());
        assert!(proxies.for_url(&url("http://www.example.com/")).is_none());
        assert!(proxies.for_url(&url("http://10.1.2.3/")).is_none());
        assert!(proxies.for_url(&url("http://[::1]/")).is_none());
        assert!(proxies.for_url(&url("http://notexample.com/")).is_some());
        assert!(proxies.for_url(&url("http://11.0.0.1/")).is_some());
    }
}
