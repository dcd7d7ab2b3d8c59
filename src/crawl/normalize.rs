//! URL identity for crawling: when two spellings are the same page.
//!
//! The URL parser already lower-cases the scheme and host, drops the
//! default port, gives an empty path as `/` and resolves dot segments.
//! [`normalize`] goes on: it drops the fragment (never sent to the server),
//! writes percent-escapes in one form (upper-case hex, unreserved
//! characters decoded, as RFC 3986 §6.2.2 allows), and removes query
//! parameters the user names (`--strip-query utm_*`), so that each page is
//! fetched once however its links spell it.

use url::Url;

/// A `--strip-query` pattern: a parameter name where `*` matches any run
/// of characters and `?` any one character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// A pattern as the user wrote it.
    pub fn new(pattern: &str) -> Self {
        Glob(pattern.to_owned())
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matching with one backtrack point for the last `*`:
    // linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The normal form of `url` for the seen-check (see the module docs).
pub fn normalize(url: &Url, strip_query: &[Glob]) -> Url {
    let mut out = url.clone();
    out.set_fragment(None);
    let path = normalize_escapes(out.path());
    if path != out.path() {
        out.set_path(&path);
    }
    if let Some(query) = out.query() {
        let kept: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or(pair);
                // As the user would write it: escapes decoded, `+` as
                // space, invalid UTF-8 replaced.
                let name = url::form_urlencoded::parse(name.as_bytes())
                    .next()
                    .map(|(name, _)| name)
                    .unwrap_or_default();
                !strip_query.iter().any(|g| g.matches(&name))
            })
            .map(normalize_escapes)
            .collect();
        if kept.is_empty() {
            out.set_query(None);
        } else {
            let kept = kept.join("&");
            // Most queries come out as they went in: no need to rebuild
            // the URL for them.
            if kept != query {
                out.set_query(Some(&kept));
            }
        }
    }
    out
}

/// `%7e` → `~`, `%2f` → `%2F`: unreserved characters decoded, every other
/// escape in upper-case hex.
fn normalize_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let b = h * 16 + l;
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
            }
            i += 3;
            continue;
        }
        // Not an escape: copy the character whole (the string is UTF-8,
        // and every other byte of it is ASCII or inside a character).
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str, strip: &[&str]) -> String {
        let globs: Vec<Glob> = strip.iter().map(|g| Glob::new(g)).collect();
        normalize(&Url::parse(s).unwrap(), &globs).to_string()
    }

    #[test]
    fn spellings_of_one_page_become_one_url() {
        let same = [
            "HTTP://Example.COM:80/a/b?x=1#top",
            "http://example.com/a/./b?x=1",
            "http://example.com/a/%62?x=1",
            "http://example.com/a/c/../b?x=1#",
            "http://example.com:80/%61/b?x=%31",
        ];
        for s in same {
            assert_eq!(norm(s, &[]), "http://example.com/a/b?x=1", "{s}");
        }
        assert_eq!(norm("https://example.com", &[]), "https://example.com/");
        // Reserved characters stay escaped, in upper case.
        assert_eq!(
            norm("http://e.test/a%2fb%3F?q=%2a", &[]),
            "http://e.test/a%2Fb%3F?q=%2A"
        );
        // Non-ASCII stays as the parser encoded it.
        assert_eq!(norm("http://e.test/é", &[]), "http://e.test/%C3%A9");
        // A lone % is left alone.
        assert_eq!(norm("http://e.test/100%", &[]), "http://e.test/100%");
    }

    #[test]
    fn strip_query_removes_named_parameters() {
        let strip = ["utm_*", "fbclid", "ref?"];
        assert_eq!(
            norm(
                "http://e.test/p?utm_source=x&id=7&fbclid=abc&utm_medium=y&ref1=z&refer=w",
                &strip
            ),
            "http://e.test/p?id=7&refer=w"
        );
        assert_eq!(
            norm("http://e.test/p?utm_source=x", &strip),
            "http://e.test/p"
        );
        assert_eq!(
            norm("http://e.test/p?%75tm_x=1&a=b", &strip),
            "http://e.test/p?a=b"
        );
    }

    #[test]
    fn globs() {
        let g = |p: &str, t: &str| Glob::new(p).matches(t);
        assert!(g("utm_*", "utm_source") && g("utm_*", "utm_") && !g("utm_*", "xutm_a"));
        assert!(g("*", "") && g("a*b*c", "aXXbYYc") && !g("a*b*c", "aXXbYY"));
        assert!(g("?x", "ax") && !g("?x", "x"));
        assert!(g("*a*a*a*a*b", &"a".repeat(40).replace("aaaa", "aaab")));
    }
}
