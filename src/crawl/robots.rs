//! robots.txt, as RFC 9309 says: fetched once per host for the run, parsed
//! with texting_robots, and turned into a verdict per URL.
//!
//! What an answer means follows the RFC: a 2xx body is the rules; a 4xx
//! ("unavailable") allows everything; a 5xx or a network failure
//! ("unreachable") disallows the whole host, for the run.

use std::time::Duration;

use url::Url;

use crate::fetch::Fetcher;

/// Most of a robots.txt that is read; the RFC asks crawlers to parse at
/// least 500 KiB.
pub const MAX_ROBOTS_BYTES: u64 = 512 * 1024;

/// Longest Crawl-delay obeyed: a larger value would stall a host for hours.
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);

/// A host's robots.txt, as far as this run is concerned.
pub enum Rules {
    /// No usable rules (4xx, or nothing that parses): everything allowed.
    AllowAll,
    /// robots.txt could not be had (5xx, network): nothing allowed.
    DisallowAll(String),
    /// The rules for this run's user agent.
    Parsed(Box<texting_robots::Robot>),
    /// Not asked: the host is on a private address a crawl may not reach
    /// (its pages are refused for that); asked again should it become
    /// trusted.
    Unchecked,
}

impl Rules {
    /// Why `url` may not be fetched, or `None` when it may.
    pub fn refusal(&self, url: &Url) -> Option<String> {
        match self {
            Rules::AllowAll | Rules::Unchecked => None,
            Rules::DisallowAll(why) => Some(why.clone()),
            Rules::Parsed(robot) => {
                (!robot.allowed(url.as_str())).then(|| "disallowed by robots.txt".to_owned())
            }
        }
    }

    /// The `Sitemap:` lines of the robots.txt, as written.
    pub fn sitemaps(&self) -> &[String] {
        match self {
            Rules::Parsed(robot) => &robot.sitemaps,
            _ => &[],
        }
    }

    /// The host's Crawl-delay, capped at [`MAX_CRAWL_DELAY`].
    pub fn crawl_delay(&self) -> Option<Duration> {
        let Rules::Parsed(robot) = self else {
            return None;
        };
        let secs = robot.delay.filter(|d| d.is_finite() && *d > 0.0)?;
        // Capped before it becomes a Duration: a site's 1e20 would not fit.
        let capped = secs.min(MAX_CRAWL_DELAY.as_secs_f32());
        Some(Duration::from_secs_f32(capped))
    }
}

/// The robots.txt URL for a page's origin.
pub fn robots_url(page: &Url) -> Url {
    let mut url = page.clone();
    url.set_path("/robots.txt");
    url.set_query(None);
    url.set_fragment(None);
    // Only http(s) URLs get here, and those always take a password.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// The product token robots.txt groups are matched against:
/// `scriptscrape/0.1.0 (+https://…)` → `scriptscrape`.
pub fn agent_token(user_agent: &str) -> &str {
    let token = user_agent.split(['/', ' ']).next().unwrap_or(user_agent);
    if token.is_empty() { "*" } else { token }
}

/// Fetches and parses the robots.txt that governs `page`.
pub async fn fetch_rules(fetcher: &Fetcher, page: &Url, agent: &str) -> Rules {
    let url = robots_url(page);
    match fetcher.fetch_text(&url, MAX_ROBOTS_BYTES).await {
        Ok((status, body)) if (200..300).contains(&status) => {
            match texting_robots::Robot::new(agent, &body) {
                Ok(robot) => Rules::Parsed(Box::new(robot)),
                Err(_) => Rules::AllowAll,
            }
        }
        Ok((status, _)) if (400..500).contains(&status) => Rules::AllowAll,
        Ok((status, _)) => Rules::DisallowAll(format!(
            "robots.txt answered HTTP {status}: host disallowed for this run (RFC 9309)"
        )),
        // Each page of the host will be refused for that reason, which
        // says more than "disallowed" would.
        Err(failure) if failure.error.kind == crate::error::ErrorKind::PrivateAddress => {
            Rules::Unchecked
        }
        Err(failure) => Rules::DisallowAll(format!(
            "robots.txt unreachable ({}: {}): host disallowed for this run (RFC 9309)",
            failure.error.kind, failure.error.detail
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_agents() {
        let page = Url::parse("https://u:p@Example.com:8443/a/b?c=1#d").unwrap();
        assert_eq!(
            robots_url(&page).as_str(),
            "https://example.com:8443/robots.txt"
        );
        assert_eq!(agent_token("scriptscrape/0.1.0"), "scriptscrape");
        assert_eq!(agent_token("Mozilla/5.0 (X11)"), "Mozilla");
        assert_eq!(agent_token("inventory-bot"), "inventory-bot");
    }

    #[test]
    fn rules_for_our_agent_and_crawl_delay() {
        let txt = b"User-agent: scriptscrape\nDisallow: /private\nCrawl-delay: 2.5\n\nUser-agent: *\nDisallow: /";
        let rules = Rules::Parsed(Box::new(
            texting_robots::Robot::new("scriptscrape", txt).unwrap(),
        ));
        let url = |p: &str| Url::parse(&format!("https://a.test{p}")).unwrap();
        assert!(rules.refusal(&url("/private/x")).is_some());
        assert!(rules.refusal(&url("/public")).is_none());
        assert_eq!(rules.crawl_delay(), Some(Duration::from_millis(2500)));
        let huge = texting_robots::Robot::new("x", b"User-agent: *\nCrawl-delay: 86400").unwrap();
        assert_eq!(
            Rules::Parsed(Box::new(huge)).crawl_delay(),
            Some(MAX_CRAWL_DELAY)
        );
        // Past what a Duration holds: capped, not a panic.
        for value in ["99999999999999999999", "18446744073709551616", "1e30"] {
            let txt = format!("User-agent: *\nCrawl-delay: {value}");
            let robot = texting_robots::Robot::new("x", txt.as_bytes()).unwrap();
            let delay = Rules::Parsed(Box::new(robot)).crawl_delay();
            assert!(
                delay.is_none_or(|d| d == MAX_CRAWL_DELAY),
                "{value}: {delay:?}"
            );
        }
    }
}
