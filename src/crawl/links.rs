//! Which links of a page a crawl follows, and where each followed URL
//! came from.
//!
//! The rules here are pure and run on the parse threads, next to the parse
//! that found the links: normalise ([`super::normalize`]), keep http(s)
//! links in scope of the page's seed ([`super::scope`]), on this
//! `--shard`'s sites ([`crate::shard`]), that pass `--include`/`--exclude`,
//! skip `rel=nofollow`. What is left goes back to
//! the scheduler, which owns the one piece of shared state, the set of URLs
//! already seen.

use std::sync::Arc;

use regex::Regex;
use url::Url;

use crate::crawl::normalize::{Glob, normalize};
use crate::crawl::scope::Scope;
use crate::extract::Link;

/// The settings of a crawl.
#[derive(Clone, Debug)]
pub struct Crawl {
    /// Hops from a seed that are followed (`--depth`); at least 1.
    pub max_depth: u16,
    /// How far from its seed a crawl may go (`--scope`).
    pub scope: Scope,
    /// A URL must match one of these, when there are any (`--include`).
    pub include: Vec<Regex>,
    /// A URL that matches one of these is not followed (`--exclude`).
    pub exclude: Vec<Regex>,
    /// Query parameters removed before the seen-check (`--strip-query`).
    pub strip_query: Vec<Glob>,
    /// Follow `rel=nofollow` links too (`--follow-nofollow`).
    pub follow_nofollow: bool,
    /// Let links lead to private networks (`--allow-private`).
    pub allow_private: bool,
    /// Pages fetched in all, seeds included (`--max-pages`).
    pub max_pages: Option<u64>,
    /// Sitemaps whose URLs are seeds too (`--sitemap URL`).
    pub sitemaps: Vec<Url>,
    /// Read the sitemaps each seed host's robots.txt names
    /// (`--sitemap auto`).
    pub sitemap_auto: bool,
    /// Discovered URLs kept in memory; the rest wait on disk
    /// (`--frontier-memory`).
    pub frontier_memory: usize,
    /// This machine's part of a job split by site (`--shard`): URLs of
    /// other shards' sites are out of scope, so each site is crawled by
    /// one shard.
    pub shard: Option<crate::shard::Shard>,
}

/// Where a crawl's scope is measured from: a URL the user listed, and where
/// it landed after redirects (so that `http://example.com` redirecting to
/// `https://www.example.com/` crawls the site it lands on).
#[derive(Debug)]
pub struct Seed {
    listed: Url,
    landed: Option<Url>,
}

impl Seed {
    /// A seed as listed.
    pub fn new(listed: Url) -> Self {
        Seed {
            listed,
            landed: None,
        }
    }

    /// A seed that redirected to `landed`.
    pub fn landed_at(listed: Url, landed: Option<Url>) -> Self {
        Seed { listed, landed }
    }

    /// The URL as listed.
    pub fn listed(&self) -> &Url {
        &self.listed
    }

    /// Where it landed after redirects, when that is elsewhere.
    pub fn landed(&self) -> Option<&Url> {
        self.landed.as_ref()
    }
}

/// Where a URL was found: how many hops from which seed, and on which page.
#[derive(Clone, Debug)]
pub struct Origin {
    /// Hops from the seed: 0 for the seed itself.
    pub depth: u16,
    /// The seed it was reached from.
    pub seed: Arc<Seed>,
    /// The page it was first found on (after redirects); `None` for a
    /// seed.
    pub referrer: Option<Arc<str>>,
}

impl Origin {
    /// The origin of a URL the user listed.
    pub fn seed(url: &Url) -> Self {
        Origin {
            depth: 0,
            seed: Arc::new(Seed::new(url.clone())),
            referrer: None,
        }
    }
}

impl Crawl {
    /// The normal form a URL is known by in the seen-set.
    pub fn normalize(&self, url: &Url) -> Url {
        normalize(url, &self.strip_query)
    }

    /// Whether a URL found while crawling from `seed` may be followed.
    pub fn admits(&self, seed: &Seed, url: &Url) -> bool {
        self.in_scope(seed, url)
            && (self.include.is_empty() || self.include.iter().any(|re| re.is_match(url.as_str())))
            && !self.exclude.iter().any(|re| re.is_match(url.as_str()))
    }

    /// Whether `url` is within `--scope` of `seed`, and on a site of this
    /// `--shard`: where a crawl may go, by a link or by a redirect.
    pub fn in_scope(&self, seed: &Seed, url: &Url) -> bool {
        let scope = self.scope.allows(&seed.listed, url)
            || seed
                .landed
                .as_ref()
                .is_some_and(|landed| self.scope.allows(landed, url));
        scope && self.shard.is_none_or(|shard| shard.keeps(url))
    }

    /// Whether the run follows links or reads sitemaps: what the summary's
    /// crawl figures are about.
    pub fn discovers(&self) -> bool {
        self.max_depth > 0 || !self.sitemaps.is_empty() || self.sitemap_auto
    }

    /// Whether the links of a page found at `depth` are followed.
    pub fn follows_from(&self, depth: u16) -> bool {
        depth < self.max_depth
    }

    /// The links of a page to follow, normalised, in document order, each
    /// once; none past `--depth`. `page` is where the page came from and
    /// `landed` its URL after redirects, where the links were found.
    pub fn follow(&self, page: &Origin, landed: &Url, links: &[Link]) -> Discovered {
        let mut found = Discovered {
            page_depth: page.depth,
            seed: Arc::clone(&page.seed),
            referrer: Arc::from(landed.as_str()),
            urls: Vec::new(),
            off_scope: 0,
        };
        if !self.follows_from(page.depth) {
            return found;
        }
        if page.depth == 0 && landed.as_str() != page.seed.listed.as_str() {
            found.seed = Arc::new(Seed {
                listed: page.seed.listed.clone(),
                landed: Some(landed.clone()),
            });
        }
        let mut here = std::collections::HashSet::new();
        for link in links {
            if link.nofollow && !self.follow_nofollow {
                continue;
            }
            let url = self.normalize(&link.url);
            if !self.admits(&found.seed, &url) {
                found.off_scope += 1;
                continue;
            }
            if here.insert(url.as_str().to_owned()) {
                found.urls.push(url);
            }
        }
        found
    }
}

/// The links one page leads to, as the scheduler receives them.
#[derive(Debug)]
pub struct Discovered {
    /// Depth of the page the URLs were found on (theirs is one more).
    pub page_depth: u16,
    /// The seed the page was reached from.
    pub seed: Arc<Seed>,
    /// The page the URLs were found on, after redirects.
    pub referrer: Arc<str>,
    /// The URLs to follow, normalised, each once.
    pub urls: Vec<Url>,
    /// Links not followed because they are out of scope or filtered out.
    pub off_scope: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crawl(scope: Scope) -> Crawl {
        Crawl {
            max_depth: 2,
            scope,
            include: Vec::new(),
            exclude: Vec::new(),
            strip_query: vec![Glob::new("utm_*")],
            follow_nofollow: false,
            allow_private: false,
            max_pages: None,
            sitemaps: Vec::new(),
            sitemap_auto: false,
            frontier_memory: 1000,
            shard: None,
        }
    }

    fn link(s: &str, nofollow: bool) -> Link {
        Link {
            url: Url::parse(s).unwrap(),
            nofollow,
        }
    }

    fn urls(found: &Discovered) -> Vec<&str> {
        found.urls.iter().map(Url::as_str).collect()
    }

    #[test]
    fn follows_in_scope_links_once_normalised() {
        let c = crawl(Scope::Host);
        let seed = Origin::seed(&Url::parse("http://a.test/").unwrap());
        let links = [
            link("http://a.test/x#top", false),
            link("http://A.test:80/x", false),
            link("http://a.test/y?utm_source=z", false),
            link("http://b.test/", false),
            link("http://a.test/nf", true),
        ];
        let here = Url::parse("http://a.test/").unwrap();
        let found = c.follow(&seed, &here, &links);
        assert_eq!(urls(&found), ["http://a.test/x", "http://a.test/y"]);
        assert_eq!(found.off_scope, 1);
        assert_eq!(found.page_depth, 0);
        assert_eq!(&*found.referrer, "http://a.test/");

        let nofollow = Crawl {
            follow_nofollow: true,
            ..crawl(Scope::Host)
        };
        let found = nofollow.follow(&seed, &here, &links);
        assert!(urls(&found).contains(&"http://a.test/nf"));
    }

    #[test]
    fn nothing_past_the_depth() {
        let c = crawl(Scope::Any);
        let page = Origin {
            depth: 2,
            ..Origin::seed(&Url::parse("http://a.test/").unwrap())
        };
        let here = Url::parse("http://a.test/p").unwrap();
        let found = c.follow(&page, &here, &[link("http://a.test/q", false)]);
        assert!(found.urls.is_empty());
    }

    #[test]
    fn a_redirected_seed_scopes_where_it_landed() {
        let c = crawl(Scope::Host);
        let seed = Origin::seed(&Url::parse("http://example.test/").unwrap());
        let landed = Url::parse("https://www.example.test/").unwrap();
        let links = [link("https://www.example.test/about", false)];
        let found = c.follow(&seed, &landed, &links);
        assert_eq!(urls(&found), ["https://www.example.test/about"]);
        // Its descendants keep the wider scope.
        let child = Origin {
            depth: 1,
            seed: Arc::clone(&found.seed),
            referrer: None,
        };
        let more = [link("https://www.example.test/team", false)];
        let here = Url::parse("https://www.example.test/about").unwrap();
        let found = c.follow(&child, &here, &more);
        assert_eq!(found.urls.len(), 1);
    }

    #[test]
    fn links_to_other_shards_sites_are_out_of_scope() {
        // Sites and their shards of 3, as pinned in crate::shard's tests:
        // bbc.co.uk and 127.0.0.1 are shard 3, example.com shard 2,
        // alice.github.io shard 1.
        let c = Crawl {
            shard: Some(crate::shard::Shard::new(3, 3).unwrap()),
            ..crawl(Scope::Any)
        };
        let seed = Origin::seed(&Url::parse("https://www.bbc.co.uk/").unwrap());
        let links = [
            link("https://news.bbc.co.uk/a", false),
            link("https://www.example.com/", false),
            link("http://127.0.0.1:8080/", false),
            link("https://alice.github.io/", false),
        ];
        let here = Url::parse("https://www.bbc.co.uk/").unwrap();
        let found = c.follow(&seed, &here, &links);
        assert_eq!(
            urls(&found),
            ["https://news.bbc.co.uk/a", "http://127.0.0.1:8080/"]
        );
        assert_eq!(found.off_scope, 2);
        // A redirect hop to another shard's site is out of scope too.
        let other = Url::parse("https://example.com/landing").unwrap();
        assert!(!c.in_scope(&found.seed, &other));
        assert!(crawl(Scope::Any).in_scope(&found.seed, &other));
    }

    #[test]
    fn include_and_exclude() {
        let c = Crawl {
            include: vec![Regex::new("/docs/").unwrap()],
            exclude: vec![Regex::new(r"\.pdf$").unwrap()],
            ..crawl(Scope::Any)
        };
        let seed = Origin::seed(&Url::parse("http://a.test/docs/").unwrap());
        let links = [
            link("http://a.test/docs/a", false),
            link("http://a.test/docs/a.pdf", false),
            link("http://a.test/blog/", false),
        ];
        let here = Url::parse("http://a.test/docs/").unwrap();
        let found = c.follow(&seed, &here, &links);
        assert_eq!(urls(&found), ["http://a.test/docs/a"]);
        assert_eq!(found.off_scope, 2);
    }
}
