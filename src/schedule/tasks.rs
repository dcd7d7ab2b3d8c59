//! The scheduler's requests, each a spawned task: a page, a host's
//! robots.txt, a sitemap.
//!
//! Spawned, so that a request keeps making progress while the loop waits
//! to hand a result on; wrapped so that dropping the loop's set of tasks
//! aborts them all, and no request outlives the run.

use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use url::Url;

use super::Completed;
use super::hosts::host_key;
use crate::content::scripts::Content;
use crate::crawl::Origin;
use crate::crawl::robots::{self, Rules};
use crate::crawl::sitemap::{self, Sitemap};
use crate::error::ErrorKind;
use crate::fetch::{Fetcher, HopRule};

/// The requests in flight.
pub(crate) type Tasks = FuturesUnordered<BoxFuture<'static, Finished>>;

/// A request that finished, as the scheduler needs to hear of it.
// Nearly every value is a page; boxing it would add an allocation per page
// to save space only on the rare robots.txt result.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished {
    Page {
        host: String,
        depth: Option<u16>,
        done: Completed,
    },
    Robots(String, Rules),
    Sitemap(SitemapRead),
    /// A script's fetch ended (`url` as asked for).
    Script {
        host: String,
        url: Url,
        content: Content,
    },
}

/// A sitemap was read (or the `Sitemap:` lines of a robots.txt, when
/// `from_robots`); its page URLs must be on `host`.
pub(crate) struct SitemapRead {
    pub url: Url,
    pub host: String,
    pub from_robots: bool,
    pub outcome: Result<Sitemap, String>,
}

/// Fetches a page; `rule` keeps its redirects in a crawl's scope.
pub(crate) fn page(
    fetcher: &Fetcher,
    host: String,
    url: Url,
    seq: u64,
    origin: Option<Origin>,
    rule: Option<HopRule>,
) -> BoxFuture<'static, Finished> {
    let fetcher = fetcher.clone();
    let depth = origin.as_ref().map(|o| o.depth);
    let listed = url.as_str().to_owned();
    let task = AbortOnDrop(tokio::spawn(async move {
        let started = Instant::now();
        // -u goes to the origin of the URL the user listed, whether this
        // is that URL or a page a crawl found from it.
        let listed = origin.as_ref().map_or(&url, |o| o.seed.listed()).clone();
        let fetch = fetcher.fetch_for(&url, &listed, rule).await;
        Completed {
            seq,
            page_url: url.into(),
            fetch,
            elapsed: started.elapsed(),
            origin,
        }
    }));
    Box::pin(async move {
        let done = task.await.unwrap_or_else(|e| {
            let why = format!("internal error: {e}");
            Completed::without_request(seq, listed, ErrorKind::Io, why)
        });
        Finished::Page { host, depth, done }
    })
}

/// Fetches a script for `--fetch-scripts`, with `referer` (the page that
/// named it first) and at most `limit` bytes of body.
pub(crate) fn script(
    fetcher: &Fetcher,
    host: String,
    url: Url,
    referer: std::sync::Arc<str>,
    limit: u64,
) -> BoxFuture<'static, Finished> {
    let fetcher = fetcher.clone();
    let target = url.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        let fetched = fetcher.fetch_script(&target, &referer, limit).await;
        if let Err(failure) = &fetched {
            // The rows say only the kind; the words are for -v.
            let shown = crate::output::without_password(target.as_str()).into_owned();
            tracing::info!("{shown}: script not fetched: {}", failure.error);
        }
        Content::from_fetch(fetched)
    }));
    Box::pin(async move {
        let content = task.await.unwrap_or_else(|e| {
            // Cancelled: the process is stopping, which is no error.
            if !e.is_cancelled() {
                let shown = crate::output::without_password(url.as_str());
                tracing::warn!("{shown}: internal error fetching a script: {e}");
            }
            Content::from_fetch(Err(crate::fetch::FetchFailure::new(
                ErrorKind::Io,
                format!("internal error: {e}"),
            )))
        });
        Finished::Script { host, url, content }
    })
}

/// Fetches the robots.txt of `host` (`page` is any page of it).
pub(crate) fn robots(
    fetcher: &Fetcher,
    host: String,
    page: Url,
    agent: String,
) -> BoxFuture<'static, Finished> {
    let fetcher = fetcher.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        robots::fetch_rules(&fetcher, &page, &agent).await
    }));
    Box::pin(async move {
        let rules = task
            .await
            .unwrap_or_else(|e| Rules::DisallowAll(format!("robots.txt: internal error: {e}")));
        Finished::Robots(host, rules)
    })
}

/// Reads the sitemap at `url` (with `from_robots`, the sitemaps the
/// robots.txt of `url`'s host names), whose pages must be on its host.
pub(crate) fn sitemap(
    fetcher: &Fetcher,
    url: Url,
    from_robots: bool,
) -> BoxFuture<'static, Finished> {
    let host = host_key(&url);
    sitemap_for(fetcher, url, host, from_robots)
}

/// Like [`sitemap`], for pages on `host`: a sitemap named by an index or a
/// robots.txt lists the pages of the host that named it.
pub(crate) fn sitemap_for(
    fetcher: &Fetcher,
    url: Url,
    host: String,
    from_robots: bool,
) -> BoxFuture<'static, Finished> {
    let fetcher = fetcher.clone();
    let target = url.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        if from_robots {
            // Sitemap lines belong to no user-agent group.
            sitemap::from_robots(&fetcher, &target, "*").await
        } else {
            sitemap::fetch(&fetcher, &target).await
        }
    }));
    Box::pin(async move {
        let outcome = task
            .await
            .unwrap_or_else(|e| Err(format!("internal error: {e}")));
        Finished::Sitemap(SitemapRead {
            url,
            host,
            from_robots,
            outcome,
        })
    })
}

/// Aborts the task when dropped, so that no request outlives the run.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}
