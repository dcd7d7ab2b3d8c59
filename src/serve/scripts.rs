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
//!
//! A client whose scripts do not answer must not hold back the others': one
//! holding [`HELD_PER_CLIENT`] pages, in all its scans together, is paused
//! (its URLs wait in their turn, see [`crate::schedule::served`]) until it
//! holds half as many, and a scan whose client went away lets go of its
//! held pages at once. The scheduler's own bound on held pages, for all
//! clients together, is far above one client's.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use tokio::sync::mpsc;
use url::Url;

use super::engine::{Dest, Routes, deliver, lock};
use crate::content::scripts::{Content, News, Scripts, max_held};
use crate::output::PageResult;
use crate::schedule::ScriptLink;
use crate::schedule::served::Hold;

/// The fewest scans known before those that ended are forgotten.
const PRUNE_AT_LEAST: usize = 64;

/// A client's pages held for their scripts past which its URLs wait.
pub(super) const HELD_PER_CLIENT: usize = 64;

/// Clients that may each hold [`HELD_PER_CLIENT`] pages before the
/// scheduler starts no page for anyone (which bounds the memory held pages
/// take).
const HOLDING_CLIENTS: usize = 16;

/// Where a scan's page goes once its scripts are known.
type To = Dest;

enum Arrival {
    /// A parsed page of the scan numbered so.
    Page(u64, PageResult, To),
    /// A script's fetch ended; the URL is the one asked for.
    Script(Url, Content),
    /// The scan numbered so was cut short.
    Cut(u64),
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

/// The stage, started on the current runtime.
pub(super) struct Started {
    /// Its door.
    pub hub: Hub,
    /// The scheduler's link to it.
    pub link: ScriptLink,
    /// Scans to pause and resume, for the scheduler's served work.
    pub holds: mpsc::UnboundedReceiver<Hold>,
}

/// Starts the stage on the current runtime; `routes` is told where to
/// report scans cut short.
pub(super) fn start(
    routes: Routes,
    max_per_page: usize,
    max_body: u64,
    concurrency: usize,
) -> Started {
    let (arrivals, mut arriving) = mpsc::unbounded_channel();
    let (news_tx, news) = mpsc::unbounded_channel();
    let (holds_tx, holds) = mpsc::unbounded_channel();
    let results = arrivals.clone();
    let link = ScriptLink {
        news,
        results: Box::new(move |url, content| results.send(Arrival::Script(url, content)).is_ok()),
        max_body,
        max_held: max_held(concurrency).max(HOLDING_CLIENTS * HELD_PER_CLIENT),
    };
    let (cut_tx, mut cut) = mpsc::unbounded_channel();
    lock(&routes).cut.push(cut_tx);
    let mut stage = Stage {
        routes,
        max_per_page,
        scans: HashMap::new(),
        held: HashMap::new(),
        prune_at: PRUNE_AT_LEAST,
        asked: HashMap::new(),
        news: news_tx.clone(),
        holds: holds_tx,
    };
    tokio::spawn(async move {
        loop {
            let arrival = tokio::select! {
                Some(arrival) = arriving.recv() => arrival,
                Some(id) = cut.recv() => Arrival::Cut(id),
                else => return,
            };
            match arrival {
                Arrival::Page(id, page, to) => stage.page(id, page, to),
                Arrival::Script(url, content) => stage.script(&url, content),
                Arrival::Cut(id) => stage.cut(id),
            }
        }
    });
    let hub = Hub {
        arrivals,
        news: news_tx,
    };
    Started { hub, link, holds }
}

/// One scan's scripts, and whose scan it is.
struct ScanScripts {
    client: Arc<str>,
    scripts: Scripts<To>,
}

struct Stage {
    routes: Routes,
    max_per_page: usize,
    /// Each scan's scripts, known or asked for, and its held pages.
    scans: HashMap<u64, ScanScripts>,
    /// Pages held, by client.
    held: HashMap<Arc<str>, usize>,
    /// Scans known past which those that ended are forgotten.
    prune_at: usize,
    /// Scripts being fetched, and the scans waiting for each.
    asked: HashMap<Url, Vec<u64>>,
    news: mpsc::UnboundedSender<News>,
    holds: mpsc::UnboundedSender<Hold>,
}

impl Stage {
    fn page(&mut self, id: u64, page: PageResult, to: To) {
        if to.gone() {
            // Its client went away while it was parsed: nobody waits for
            // its scripts.
            let _ = self.news.send(News::Page {
                fetch: Vec::new(),
                held: false,
            });
            return;
        }
        if !self.scans.contains_key(&id) && self.scans.len() >= self.prune_at {
            // A new scan, and the scans known have doubled: forget those
            // that ended and hold no page.
            let table = lock(&self.routes);
            self.scans
                .retain(|id, s| s.scripts.held() > 0 || table.runs(*id));
            self.prune_at = (2 * self.scans.len()).max(PRUNE_AT_LEAST);
        }
        let max_per_page = self.max_per_page;
        let client = Arc::clone(&to.client);
        let scan = self.scans.entry(id).or_insert_with(|| ScanScripts {
            client: Arc::clone(&client),
            scripts: Scripts::new(max_per_page),
        });
        let (ready, news) = scan.scripts.page(page, to);
        let news = match news {
            News::Page { fetch, held } => {
                if held {
                    self.held_one(client);
                }
                News::Page {
                    fetch: self.not_asked(id, fetch),
                    held,
                }
            }
            other => other,
        };
        let _ = self.news.send(news);
        if let Some((page, to)) = ready {
            deliver(&self.routes, id, &to, page);
        }
    }

    /// A page of `client`'s is held: at [`HELD_PER_CLIENT`], the client
    /// takes no turns.
    fn held_one(&mut self, client: Arc<str>) {
        let held = self.held.entry(Arc::clone(&client)).or_default();
        *held += 1;
        if *held == HELD_PER_CLIENT {
            let _ = self.holds.send(Hold::Pause(client));
        }
    }

    /// `count` pages of `client`'s were let go: below half of
    /// [`HELD_PER_CLIENT`], the client takes turns again.
    fn released(&mut self, client: &Arc<str>, count: usize) {
        let Some(held) = self.held.get_mut(client) else {
            return;
        };
        let before = *held;
        *held = held.saturating_sub(count);
        if before >= HELD_PER_CLIENT / 2 && *held < HELD_PER_CLIENT / 2 {
            let _ = self.holds.send(Hold::Resume(Arc::clone(client)));
        }
        if *held == 0 {
            self.held.remove(client);
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
            let Some(scan) = self.scans.get_mut(&id) else {
                continue;
            };
            let client = Arc::clone(&scan.client);
            let ready = scan.scripts.script(url, content.clone());
            let count = ready.len();
            for (page, to) in ready {
                let _ = self.news.send(News::Released);
                deliver(&self.routes, id, &to, page);
            }
            self.released(&client, count);
        }
    }

    /// Scan `id` ended (its client went away, or read it all): its held
    /// pages are let go (nobody will read them), so that they no longer
    /// count against the scheduler's bound or its client's.
    fn cut(&mut self, id: u64) {
        if let Some(scan) = self.scans.remove(&id) {
            let held = scan.scripts.held();
            for _ in 0..held {
                let _ = self.news.send(News::Released);
            }
            self.released(&scan.client, held);
        }
    }
}
