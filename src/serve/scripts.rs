//! The server's `--fetch-scripts` stage, for the scans that ask for it
//! (`options.fetch_scripts`).
//!
//! Each scan knows its scripts apart (a [`Scripts`] of its own): a page
//! is told what is behind its scripts at the time of its scan, never what
//! an earlier client's scan found an hour ago. A script two running scans
//! both wait for is fetched once, and its content goes to both.
//!
//! The scheduler counts on news of every page it hands on (see
//! [`crate::content::scripts`]): pages that do not come here are reported
//! as passing straight through ([`Hub::passed`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use tokio::sync::mpsc;
use url::Url;

use super::engine::{Routes, deliver, lock};
use crate::content::scripts::{Content, News, Scripts, max_held};
use crate::output::PageResult;
use crate::schedule::ScriptLink;

/// The fewest scans known before those that ended are forgotten.
const PRUNE_AT_LEAST: usize = 64;

/// Where a scan's page goes once its scripts are known.
type To = mpsc::Sender<PageResult>;

enum Arrival {
    /// A parsed page of the scan numbered so.
    Page(u64, PageResult, To),
    /// A script's fetch ended; the URL is the one asked for.
    Script(Url, Content),
}

/// The stage's door: pages in, and news of pages that pass it by.
pub(super) struct Hub {
    arrivals: mpsc::UnboundedSender<Arrival>,
    news: mpsc::UnboundedSender<News>,
}

impl Hub {
    /// A page of scan `id` that waits for its scripts before going `to`
    /// its client.
    pub(super) fn page(&self, id: u64, page: PageResult, to: To) {
        // Gone only when the server stops.
        let _ = self.arrivals.send(Arrival::Page(id, page, to));
    }

    /// A page handed on that does not wait for scripts.
    pub(super) fn passed(&self) {
        let _ = self.news.send(News::Page {
            fetch: Vec::new(),
            held: false,
        });
    }
}

/// Starts the stage on the current runtime: its door, and the scheduler's
/// link to it.
pub(super) fn start(
    routes: Routes,
    max_per_page: usize,
    max_body: u64,
    concurrency: usize,
) -> (Hub, ScriptLink) {
    let (arrivals, mut arriving) = mpsc::unbounded_channel();
    let (news_tx, news) = mpsc::unbounded_channel();
    let results = arrivals.clone();
    let link = ScriptLink {
        news,
        results: Box::new(move |url, content| results.send(Arrival::Script(url, content)).is_ok()),
        max_body,
        max_held: max_held(concurrency),
    };
    let mut stage = Stage {
        routes,
        max_per_page,
        scans: HashMap::new(),
        prune_at: PRUNE_AT_LEAST,
        asked: HashMap::new(),
        news: news_tx.clone(),
    };
    tokio::spawn(async move {
        while let Some(arrival) = arriving.recv().await {
            match arrival {
                Arrival::Page(id, page, to) => stage.page(id, page, to),
                Arrival::Script(url, content) => stage.script(&url, content),
            }
        }
    });
    let hub = Hub {
        arrivals,
        news: news_tx,
    };
    (hub, link)
}

struct Stage {
    routes: Routes,
    max_per_page: usize,
    /// Each scan's scripts, known or asked for, and its held pages.
    scans: HashMap<u64, Scripts<To>>,
    /// Scans known past which those that ended are forgotten.
    prune_at: usize,
    /// Scripts being fetched, and the scans waiting for each.
    asked: HashMap<Url, Vec<u64>>,
    news: mpsc::UnboundedSender<News>,
}

impl Stage {
    fn page(&mut self, id: u64, page: PageResult, to: To) {
        if !self.scans.contains_key(&id) && self.scans.len() >= self.prune_at {
            // A new scan, and the scans known have doubled: forget those
            // that ended and hold no page.
            let table = lock(&self.routes);
            self.scans.retain(|id, s| s.held() > 0 || table.runs(*id));
            self.prune_at = (2 * self.scans.len()).max(PRUNE_AT_LEAST);
        }
        let max_per_page = self.max_per_page;
        let scripts = self
            .scans
            .entry(id)
            .or_insert_with(|| Scripts::new(max_per_page));
        let (ready, news) = scripts.page(page, to);
        let news = match news {
            News::Page { fetch, held } => News::Page {
                fetch: self.not_asked(id, fetch),
                held,
            },
            other => other,
        };
        let _ = self.news.send(news);
        if let Some((page, to)) = ready {
            deliver(&self.routes, id, &to, page);
        }
    }

    /// Of the scripts scan `id` needs, those no other scan waits for
    /// already: the ones to fetch.
    fn not_asked(&mut self, id: u64, fetch: Vec<(Url, Arc<str>)>) -> Vec<(Url, Arc<str>)> {
        fetch
            .into_iter()
            .filter(|(url, _)| match self.asked.entry(url.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(vec![id]);
                    true
                }
                Entry::Occupied(mut entry) => {
                    entry.get_mut().push(id);
                    false
                }
            })
            .collect()
    }

    fn script(&mut self, url: &Url, content: Content) {
        for id in self.asked.remove(url).unwrap_or_default() {
            let Some(scripts) = self.scans.get_mut(&id) else {
                continue;
            };
            for (page, to) in scripts.script(url, content.clone()) {
                let _ = self.news.send(News::Released);
                deliver(&self.routes, id, &to, page);
            }
        }
    }
}
