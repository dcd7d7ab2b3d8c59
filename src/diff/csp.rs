//! Comparing a page's Content-Security-Policy between two runs, for
//! `csp_changed`: which directives changed, in words.
//!
//! The page report's `csp` column holds the enforced policies as
//! received, joined with `", "`; a policy is directives separated by `;`,
//! a directive a name and a list of sources. What a browser would enforce
//! differently is a change; how the header was spelt is not: directive
//! names and keywords (`'self'`, `'SELF'`) compare without case, schemes
//! and hosts too (paths, nonces and hashes with it), white space does not
//! count, a source list is a set (order and repeats do not count, as they
//! do not for a browser), and of a directive given twice in one policy
//! the first holds, as in a browser. The policies of a page compare as a
//! set too: each must allow a script, in any order.
//!
//! This is not a CSP matcher: whether a policy allows a script is the
//! scrape's `csp_allowed` column.

use std::collections::BTreeSet;

/// One policy: its directives in the order given, each with its sources
/// in the order given (repeats dropped).
#[derive(Debug, Clone)]
struct Policy {
    directives: Vec<(String, Vec<String>)>,
}

impl Policy {
    fn parse(text: &str) -> Policy {
        let mut directives: Vec<(String, Vec<String>)> = Vec::new();
        for directive in text.split(';') {
            let mut tokens = directive.split_ascii_whitespace();
            let Some(name) = tokens.next() else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            // A repeated directive is ignored by browsers.
            if directives.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let mut sources: Vec<String> = Vec::new();
            for token in tokens {
                let source = normalize_source(token);
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
            directives.push((name, sources));
        }
        Policy { directives }
    }

    fn get(&self, name: &str) -> Option<&[String]> {
        self.directives
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| &s[..])
    }

    /// What it enforces, order aside.
    fn key(&self) -> BTreeSet<(&str, BTreeSet<&str>)> {
        self.directives
            .iter()
            .map(|(n, s)| (n.as_str(), s.iter().map(String::as_str).collect()))
            .collect()
    }

    fn same(&self, other: &Policy) -> bool {
        self.key() == other.key()
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, sources)) in self.directives.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&directive_text(name, sources))?;
        }
        Ok(())
    }
}

fn directive_text(name: &str, sources: &[String]) -> String {
    if sources.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {}", sources.join(" "))
    }
}

fn sources_text(sources: &[String]) -> String {
    if sources.is_empty() {
        "(empty)".to_owned()
    } else {
        sources.join(" ")
    }
}

/// A source as compared: keywords lowercased, but the value of a hash
/// kept; any nonce the same (a site sends a fresh one with every response,
/// and outputs show it masked); scheme and host lowercased, the path kept.
fn normalize_source(token: &str) -> String {
    if token.starts_with('\'') {
        let lower = token.to_ascii_lowercase();
        if lower.starts_with("'nonce-") {
            return NONCE_SOURCE.to_owned();
        }
        for prefix in ["'sha256-", "'sha384-", "'sha512-"] {
            if lower.starts_with(prefix) {
                return format!("{prefix}{}", &token[prefix.len()..]);
            }
        }
        return lower;
    }
    let path_at = match token.find("://") {
        Some(i) => token[i + 3..].find('/').map(|j| i + 3 + j),
        None => token.find('/'),
    };
    match path_at {
        Some(i) => format!("{}{}", token[..i].to_ascii_lowercase(), &token[i..]),
        None => token.to_ascii_lowercase(),
    }
}

/// How the `csp` column shows any nonce source.
const NONCE_SOURCE: &str = crate::content::csp::MASKED_NONCE;

/// The policies of a `csp` cell, empty ones left out.
fn policies(cell: &str) -> Vec<Policy> {
    cell.split(',')
        .map(Policy::parse)
        .filter(|p| !p.directives.is_empty())
        .collect()
}

/// What changed from the `old` to the `new` `csp` cell, for the
/// `detail` column; `None` when a browser would enforce the same.
pub fn changes(old: &str, new: &str) -> Option<String> {
    let mut olds = policies(old);
    let mut news: Vec<(usize, Policy)> = policies(new).into_iter().enumerate().collect();
    let several = olds.len() > 1 || news.len() > 1;
    // Policies enforced in both runs drop out, wherever they stand.
    olds.retain(|o| match news.iter().position(|(_, n)| o.same(n)) {
        Some(i) => {
            news.remove(i);
            false
        }
        None => true,
    });
    let mut out: Vec<String> = Vec::new();
    let mut news = news.into_iter();
    let mut olds = olds.into_iter();
    loop {
        match (olds.next(), news.next()) {
            (Some(o), Some((at, n))) => {
                let prefix = if several {
                    format!("policy {}: ", at + 1)
                } else {
                    String::new()
                };
                out.extend(
                    directive_changes(&o, &n)
                        .into_iter()
                        .map(|c| prefix.clone() + &c),
                );
            }
            (Some(o), None) => out.push(format!("policy removed: \"{o}\"")),
            (None, Some((_, n))) => out.push(format!("policy added: \"{n}\"")),
            (None, None) => break,
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out.join("; "))
    }
}

/// The directives of two paired policies that differ, in the old policy's
/// order and then the new one's.
fn directive_changes(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for (name, was) in &old.directives {
        match new.get(name) {
            None => out.push(format!("directive removed: {}", directive_text(name, was))),
            Some(is) => {
                let a: BTreeSet<&String> = was.iter().collect();
                let b: BTreeSet<&String> = is.iter().collect();
                if a != b {
                    out.push(format!(
                        "{name}: {} → {}",
                        sources_text(was),
                        sources_text(is)
                    ));
                }
            }
        }
    }
    for (name, is) in &new.directives {
        if old.get(name).is_none() {
            out.push(format!("directive added: {}", directive_text(name, is)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::changes;

    #[test]
    fn reformatting_is_no_change() {
        let old = "default-src 'self'; script-src 'self' https://a.example";
        for new in [
            old,
            "DEFAULT-SRC 'SELF' ;script-src   https://A.example 'self' 'self';",
            "script-src 'self' https://a.example; default-src 'self'",
            // The first of a repeated directive holds.
            "default-src 'self'; script-src 'self' https://a.example; script-src *",
        ] {
            assert_eq!(changes(old, new), None, "{new}");
        }
        assert_eq!(changes("", " , "), None);
        // Policies are a set: their order is no change.
        assert_eq!(
            changes(
                "script-src 'self', object-src 'none'",
                "object-src 'none', script-src 'self'"
            ),
            None
        );
    }

    #[test]
    fn what_is_not_reformatting_is_named() {
        assert_eq!(
            changes(
                "script-src 'self' https://a.example",
                "script-src 'self' https://a.example https://evil.example"
            )
            .as_deref(),
            Some(
                "script-src: 'self' https://a.example → 'self' https://a.example https://evil.example"
            )
        );
        // Paths, nonces and hashes keep their case.
        assert!(
            changes(
                "script-src https://a.example/JS/",
                "script-src https://a.example/js/"
            )
            .is_some()
        );
        // A nonce rotates with every response: not a change.
        assert_eq!(
            changes("script-src 'nonce-AbC'", "script-src 'NONCE-xyz'"),
            None
        );
        assert!(changes("script-src 'self'", "script-src 'self' 'nonce-x'").is_some());
        assert_eq!(
            changes("script-src 'sha256-AbC'", "script-src 'SHA256-AbC'"),
            None
        );
        assert_eq!(
            changes(
                "default-src 'self'; frame-ancestors 'none'",
                "default-src 'self'; upgrade-insecure-requests; object-src 'none'"
            )
            .as_deref(),
            Some(
                "directive removed: frame-ancestors 'none'; directive added: \
                 upgrade-insecure-requests; directive added: object-src 'none'"
            )
        );
        assert_eq!(
            changes("script-src 'self'", "script-src").as_deref(),
            Some("script-src: 'self' → (empty)")
        );
        assert_eq!(
            changes("", "script-src 'self';  object-src 'none'").as_deref(),
            Some("policy added: \"script-src 'self'; object-src 'none'\"")
        );
        assert_eq!(
            changes("script-src 'self'", "").as_deref(),
            Some("policy removed: \"script-src 'self'\"")
        );
        // Of several policies, the one that changed is numbered as the new
        // run has it; the unchanged one drops out.
        assert_eq!(
            changes(
                "object-src 'none', script-src 'self'",
                "script-src 'self' 'unsafe-inline', object-src 'none'"
            )
            .as_deref(),
            Some("policy 1: script-src: 'self' → 'self' 'unsafe-inline'")
        );
        assert_eq!(
            changes("object-src 'none'", "object-src 'none', script-src 'self'").as_deref(),
            Some("policy added: \"script-src 'self'\"")
        );
    }
}
