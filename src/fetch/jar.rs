//! The run's cookie jar (`--cookie-jar FILE`, `-b FILE`): cookies read
//! from a file in curl's Netscape format and those servers set, kept
//! during the run and sent back by the cookie rules, written at the end in
//! the same format.
//!
//! The rules (domain and host-only matching, path, Secure, expiry) are
//! `cookie_store`'s, the store reqwest's own cookie support uses; this
//! module adds the file format, which that crate does not read or write,
//! and keeps values out of every log: the store's own
//! `store_response_cookies` logs them at debug level, so cookies are
//! inserted one by one instead.
//!
//! Scoping: a jar cookie goes wherever its own Domain and Path say, on
//! every request of the run (pages, redirect hops, robots.txt, scripts),
//! as in curl and browsers: a crawl over many sites sends each site only
//! the cookies it set, or that the file gives for it. `-b NAME=VALUE`
//! cookies keep their narrower rule: pages on the listed URLs' own
//! origins only.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cookie::time::OffsetDateTime;
use cookie_store::{CookieDomain, CookieExpiration, CookieStore, RawCookie};
use reqwest::header::HeaderValue;
use url::Url;

/// The first line of a Netscape cookie file, as curl writes it.
const HEADER: &str = "# Netscape HTTP Cookie File";

/// Largest cookie file read: a browser's whole jar is a few megabytes.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Cookies kept during a run. Its `Debug` shows no cookie.
pub struct Jar {
    store: Mutex<CookieStore>,
    /// `-b NAME=VALUE`'s cookies as one header value, for pages on the
    /// origin [`super::AUTH_ORIGIN`] names.
    listed: Option<String>,
    /// Where `--cookie-jar` writes the jar at the end.
    save_to: Option<PathBuf>,
}

impl std::fmt::Debug for Jar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jar")
            .field("save_to", &self.save_to)
            .finish_non_exhaustive()
    }
}

/// What is wrong with a cookie file: one line naming it, and the line,
/// never a cookie's value.
#[derive(Debug, thiserror::Error)]
#[error("cookie file {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct JarError {
    /// The file.
    pub path: PathBuf,
    /// The line (from 1), when the fault is on one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Jar {
    /// A jar holding the cookies of the `read` files (`-b FILE`), sending
    /// `listed` (`-b NAME=VALUE`) as before, and written to `save_to`
    /// (`--cookie-jar`) by [`Jar::save`].
    pub fn new(
        read: &[PathBuf],
        listed: &[String],
        save_to: Option<PathBuf>,
    ) -> Result<Jar, JarError> {
        let mut store = CookieStore::new();
        let now = OffsetDateTime::now_utc();
        for path in read {
            let text = read_file(path)?;
            load(&mut store, &text, now).map_err(|(line, message)| JarError {
                path: path.clone(),
                line: Some(line),
                message,
            })?;
        }
        Ok(Jar {
            store: Mutex::new(store),
            listed: (!listed.is_empty()).then(|| listed.join("; ")),
            save_to,
        })
    }

    /// Where [`Jar::save`] writes.
    pub fn save_to(&self) -> Option<&Path> {
        self.save_to.as_deref()
    }

    /// Writes the cookies that have not expired to `--cookie-jar`'s file
    /// as `--stats` writes its own: a file whole (a temporary file beside
    /// it, renamed over it), readable by its owner only as it holds
    /// secrets; through a symlink, the file it points to (the link kept);
    /// a device or FIFO in place, never replaced by a file.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.save_to else {
            return Ok(());
        };
        let text = self.to_netscape();
        crate::output::write_small(path, Some(0o600), text.as_bytes())
    }

    /// The jar in curl's Netscape format, sorted by domain, path and name.
    pub fn to_netscape(&self) -> String {
        let store = self.lock();
        let mut lines: Vec<(String, String, String, String)> = store
            .iter_unexpired()
            .filter_map(|c| {
                let (domain, subdomains) = match &c.domain {
                    CookieDomain::HostOnly(host) => (host.clone(), "FALSE"),
                    CookieDomain::Suffix(suffix) => (format!(".{suffix}"), "TRUE"),
                    CookieDomain::NotPresent | CookieDomain::Empty => return None,
                };
                let path: &str = &c.path;
                let field_safe = |s: &str| !s.contains(['\t', '\n', '\r']);
                if !field_safe(c.name()) || !field_safe(c.value()) || !field_safe(path) {
                    return None;
                }
                let expires = match c.expires {
                    CookieExpiration::AtUtc(at) => at.unix_timestamp().max(1),
                    CookieExpiration::SessionEnd => 0,
                };
                let prefix = if c.http_only().unwrap_or(false) {
                    "#HttpOnly_"
                } else {
                    ""
                };
                let secure = if c.secure().unwrap_or(false) {
                    "TRUE"
                } else {
                    "FALSE"
                };
                let line = format!(
                    "{prefix}{domain}\t{subdomains}\t{path}\t{secure}\t{expires}\t{}\t{}\n",
                    c.name(),
                    c.value()
                );
                Some((domain, path.to_owned(), c.name().to_owned(), line))
            })
            .collect();
        lines.sort();
        let mut text = format!(
            "{HEADER}\n# Written by scriptscrape (--cookie-jar); curl reads it with -b.\n\n"
        );
        for (_, _, _, line) in lines {
            text.push_str(&line);
        }
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CookieStore> {
        // A panic while holding the lock leaves the store as it was
        // between two whole insertions: still usable.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl reqwest::cookie::CookieStore for Jar {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let mut store = self.lock();
        for header in headers {
            let Ok(text) = header.to_str() else { continue };
            let Ok(cookie) = RawCookie::parse(text) else {
                continue;
            };
            // Domain=co.uk would reach every site under it; browsers
            // refuse such cookies (RFC 6265 5.3 step 5), and so does this.
            if let Some(domain) = cookie.domain()
                && is_public_suffix(domain)
            {
                continue;
            }
            // Refused by the rules (a Domain another host's, expired):
            // dropped, as a browser drops it, without a word that would
            // carry its value.
            let _ = store.insert_raw(&cookie, url);
        }
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let listed = self.listed.as_deref().filter(|_| {
            super::AUTH_ORIGIN
                .try_with(|origin| origin.as_ref() == Some(&url.origin()))
                .unwrap_or(false)
        });
        let store = self.lock();
        let mut matching = store.matches(url);
        // Longer paths first, as RFC 6265 (5.4) asks: a server reading the
        // first of two same-named cookies gets the more specific one.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs = matching
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()));
        let header: Vec<String> = listed.map(str::to_owned).into_iter().chain(pairs).collect();
        if header.is_empty() {
            return None;
        }
        HeaderValue::from_str(&header.join("; ")).ok()
    }
}

/// Whether `domain` (a Domain attribute) is a public suffix, such as
/// `com` or `co.uk`.
fn is_public_suffix(domain: &str) -> bool {
    let domain = domain.trim_start_matches('.').to_ascii_lowercase();
    psl::suffix_str(&domain).is_some_and(|suffix| suffix == domain)
        && domain.parse::<std::net::IpAddr>().is_err()
}

/// The text of a cookie file, or why it cannot be had.
fn read_file(path: &Path) -> Result<String, JarError> {
    use std::io::Read as _;
    let fail = |message: String| JarError {
        path: path.to_path_buf(),
        line: None,
        message,
    };
    if path.is_dir() {
        return Err(fail("is a directory".to_owned()));
    }
    let file = std::fs::File::open(path).map_err(|e| {
        fail(crate::error::without_os_error_numbers(&format!(
            "cannot read it: {e}"
        )))
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail("larger than 64 MiB".to_owned()));
    }
    // Cookie values are bytes; a non-UTF-8 one is kept as the rules
    // allow no other use for it anyway.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Adds the cookies of a Netscape cookie file's `text` to `store`,
/// skipping those expired by `now`; `Err` is the line and what is wrong
/// with it.
fn load(store: &mut CookieStore, text: &str, now: OffsetDateTime) -> Result<(), (usize, String)> {
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        let (line, http_only) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        // curl writes seven fields; an empty value may lose the last tab.
        let (domain, subdomains, path, secure, expires, name, value) = match fields[..] {
            [d, s, p, sec, e, n, v] => (d, s, p, sec, e, n, v),
            [d, s, p, sec, e, n] => (d, s, p, sec, e, n, ""),
            _ => {
                return Err((
                    number,
                    format!(
                        "expected 7 tab-separated fields (domain, subdomains, path, secure, \
                         expiry, name, value), found {}",
                        fields.len()
                    ),
                ));
            }
        };
        let flag = |value: &str, what: &str| match value.to_ascii_uppercase().as_str() {
            "TRUE" => Ok(true),
            "FALSE" => Ok(false),
            _ => Err((number, format!("{what} must be TRUE or FALSE"))),
        };
        let subdomains = flag(subdomains, "the second field (subdomains)")?;
        let secure = flag(secure, "the fourth field (secure)")?;
        let expires: i64 = expires.trim().parse().map_err(|_| {
            (
                number,
                "the expiry must be a Unix time (0: session)".to_owned(),
            )
        })?;
        let host = domain.trim_start_matches('.').to_ascii_lowercase();
        if host.is_empty() || name.is_empty() {
            return Err((number, "the domain and the name cannot be empty".to_owned()));
        }
        // Sent as is in the Cookie header, a ';' would add cookies of the
        // file's choosing (`VAL;admin=1`), as -b NAME=VALUE refuses too.
        if name.contains([';', '=', ' ']) || value.contains([';', '\0']) {
            return Err((
                number,
                "a cookie name or value with ';' (or a name with '=' or a space) is not a cookie"
                    .to_owned(),
            ));
        }
        // A control character makes no Cookie header: the cookie would be
        // left out without a word.
        if name.chars().chain(value.chars()).any(|c| c.is_control()) {
            return Err((
                number,
                "a cookie name or value with a control character is not a cookie".to_owned(),
            ));
        }
        let scheme = if secure { "https" } else { "http" };
        let path = if path.starts_with('/') { path } else { "/" };
        let url = Url::parse(&format!("{scheme}://{host}{path}"))
            .map_err(|_| (number, format!("{domain:?} is not a host name")))?;
        let mut cookie = RawCookie::build((name.to_owned(), value.to_owned()))
            .path(path.to_owned())
            .secure(secure)
            .http_only(http_only);
        if subdomains {
            cookie = cookie.domain(host.clone());
        }
        if expires != 0 {
            let Ok(at) = OffsetDateTime::from_unix_timestamp(expires) else {
                return Err((number, "the expiry is out of range".to_owned()));
            };
            if at <= now {
                // Expired: never sent, not kept.
                continue;
            }
            cookie = cookie.expires(at);
        }
        let cookie = cookie.build();
        store
            .insert_raw(&cookie, &url)
            .map_err(|e| (number, format!("not a cookie the rules accept: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::cookie::CookieStore as _;

    const FILE: &str = "# Netscape HTTP Cookie File\n\
        # comment\n\
        \n\
        .example.com\tTRUE\t/\tFALSE\t0\tsite\tall\n\
        www.example.com\tFALSE\t/app\tFALSE\t4102444800\tapp\tx1\n\
        #HttpOnly_www.example.com\tFALSE\t/\tTRUE\t4102444800\tsid\ts3\n\
        old.example.com\tFALSE\t/\tFALSE\t1000\tgone\tg\n";

    fn jar(text: &str) -> Jar {
        let mut store = CookieStore::new();
        load(&mut store, text, OffsetDateTime::now_utc()).unwrap();
        Jar {
            store: Mutex::new(store),
            listed: None,
            save_to: None,
        }
    }

    fn sent(jar: &Jar, url: &str) -> String {
        jar.cookies(&Url::parse(url).unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn file_cookies_go_by_domain_path_secure_and_expiry() {
        let jar = jar(FILE);
        assert_eq!(sent(&jar, "http://sub.example.com/"), "site=all");
        assert_eq!(sent(&jar, "http://www.example.com/"), "site=all");
        let app = sent(&jar, "http://www.example.com/app/page");
        assert!(app.contains("app=x1") && app.contains("site=all"), "{app}");
        assert!(!app.contains("sid"), "secure, over http: {app}");
        assert!(sent(&jar, "https://www.example.com/").contains("sid=s3"));
        // Host-only: not sent to a subdomain.
        assert!(!sent(&jar, "http://a.www.example.com/app/").contains("app="));
        assert_eq!(sent(&jar, "http://old.example.com/"), "site=all");
        assert_eq!(sent(&jar, "http://example.org/"), "");
    }

    #[test]
    fn a_control_character_in_a_cookie_is_a_bad_line() {
        let mut store = CookieStore::new();
        let now = OffsetDateTime::now_utc();
        for bad in [
            "127.0.0.1\tFALSE\t/\tFALSE\t0\tsess\tSEC\u{1}RET\n",
            "127.0.0.1\tFALSE\t/\tFALSE\t0\tsess\tSEC\rRET\n",
        ] {
            let err = load(&mut store, bad, now).unwrap_err();
            assert_eq!(err.0, 1);
            assert!(err.1.contains("control character"), "{}", err.1);
            assert!(!err.1.contains("SEC"), "{}", err.1);
        }
    }

    #[test]
    fn written_as_curl_writes_it_and_read_back_the_same() {
        let jar = jar(FILE);
        let text = jar.to_netscape();
        assert!(text.starts_with("# Netscape HTTP Cookie File\n"), "{text}");
        assert!(text.contains("\n.example.com\tTRUE\t/\tFALSE\t0\tsite\tall\n"));
        assert!(text.contains("\nwww.example.com\tFALSE\t/app\tFALSE\t4102444800\tapp\tx1\n"));
        assert!(
            text.contains("\n#HttpOnly_www.example.com\tFALSE\t/\tTRUE\t4102444800\tsid\ts3\n")
        );
        assert!(!text.contains("gone"));
        assert_eq!(self::jar(&text).to_netscape(), text);
    }

    #[test]
    fn set_cookie_follows_the_rules() {
        let jar = jar("");
        let url = Url::parse("http://a.example.com/x/y").unwrap();
        let headers = [
            HeaderValue::from_static("one=1"),
            HeaderValue::from_static("wide=2; Domain=example.com; Path=/"),
            HeaderValue::from_static("psl=3; Domain=com"),
            HeaderValue::from_static("other=4; Domain=example.org"),
            HeaderValue::from_static("dead=5; Max-Age=0"),
        ];
        jar.set_cookies(&mut headers.iter(), &url);
        assert_eq!(sent(&jar, "http://a.example.com/x/z"), "one=1; wide=2");
        assert_eq!(sent(&jar, "http://b.example.com/x/"), "wide=2");
        assert_eq!(sent(&jar, "http://example.org/"), "");
        assert_eq!(sent(&jar, "http://other.com/"), "");
    }

    #[test]
    fn a_bad_line_is_named_without_its_value() {
        let mut store = CookieStore::new();
        let now = OffsetDateTime::now_utc();
        let err = load(&mut store, "# x\nexample.com\tTRUE\t/\tsecret\n", now).unwrap_err();
        assert_eq!(err.0, 2);
        assert!(!err.1.contains("secret"), "{}", err.1);
        let err = load(&mut store, "a.com\tYES\t/\tFALSE\t0\tn\tv\n", now).unwrap_err();
        assert!(err.1.contains("TRUE or FALSE"), "{}", err.1);
    }
}
