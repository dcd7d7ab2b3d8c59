//! Work from many scans at once (`scriptscrape serve`): one scheduler, so
//! one `-c` and one `--per-host` for every client together, and scans
//! taken in turn.
//!
//! The host queues hold at most `max_queued` URLs; the next URL to enter
//! them is always the next one of the client whose turn it is, and of
//! that client's scans, the one whose turn it is: so a scan of a few URLs
//! waits behind at most the queues' worth of a big one, never behind all
//! of it, and a client cannot take more turns by opening more scans. A
//! scan whose client went away gives up its URLs, queued or not.
//!
//! One host's pages fill at most its `--per-host` share of the queues: a
//! scan whose next URL's host has that many waiting passes its turn until
//! one of them starts. Otherwise the pages of one host that hangs would
//! fill the queues while every other host's slots sat idle, and hold back
//! every client; now filling them takes as many hosts as fill `-c`.
//!
//! A scan that crawls (`depth` of 1 or more) keeps its own frontier here:
//! the links its pages lead to come back from the server's parse stage,
//! are checked against the scan's own set of URLs seen, and wait their
//! turn like its listed URLs, nearest the seeds first. Each crawling scan
//! has a budget of pages; links past it are counted, not queued.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;

use futures::future::Either;
use tokio::sync::mpsc;
use url::Url;

use super::Completed;
use super::hosts::{Queues, host_key};
use super::work::{Closed, Ctx, FetchLimits, Work};
use crate::crawl::{Crawl, Discovered, Origin};
use crate::error::ErrorKind;
use crate::seen::HashSet64;

/// Bits of a page's `seq` that number it within its scan; the rest name
/// the scan.
pub const SEQ_BITS: u32 = 32;

/// Scans are numbered modulo this, so that every `seq` stays below the
/// crawl's first found one.
const SCAN_IDS: u64 = 1 << 29;

/// One line of a scan: as the client wrote it, and the URL it names or
/// why it names none.
#[derive(Debug)]
pub struct Line {
    /// Its place among the URLs the client named, from 1.
    pub at: usize,
    /// The client's text.
    pub raw: String,
    /// Its URL (normal form, when the scan crawls), or why it is none.
    pub url: Result<Url, String>,
}

/// A crawling scan's settings.
#[derive(Clone, Debug)]
pub struct ScanCrawl {
    /// Scope, filters and depth (`max_depth`: the scan's `depth`).
    pub crawl: Arc<Crawl>,
    /// Pages the scan may fetch in all, its listed URLs included (at least
    /// as many as it lists).
    pub max_pages: u64,
}

/// A scan handed to the scheduler.
pub struct NewScan {
    /// Its number (see [`scan_of`]).
    pub id: u64,
    /// Its URLs, each once.
    pub lines: Vec<Line>,
    /// Who asked for it (the client's address): turns go client by client.
    pub client: String,
    /// Crawling: how.
    pub crawl: Option<ScanCrawl>,
}

/// What became of the links one page of a crawling scan led to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinksTaken {
    /// Queued: each will have a result.
    pub queued: u64,
    /// URLs the scan had not seen before (`queued` among them).
    pub discovered: u64,
    /// Links out of scope or filtered out.
    pub off_scope: u64,
    /// Discovered but not queued: past the scan's budget of pages, or the
    /// server is stopping.
    pub left: u64,
}

/// What the server knows of its scans: asked and told by the scheduler.
pub trait Scans: Send + Sync {
    /// The fetch limits of the scan numbered `id` while a client still
    /// waits for it; `None` once it has gone.
    fn limits(&self, id: u64) -> Option<FetchLimits>;

    /// The links of one page of scan `id` were taken in.
    fn links_taken(&self, id: u64, taken: LinksTaken);
}

/// A client to pause or resume: one whose pages wait for scripts that
/// are slow to come takes no turns meanwhile, so that it cannot hold the
/// scheduler's bound on waiting pages for everyone, however many scans it
/// opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The client so named takes no turns.
    Pause(Arc<str>),
    /// It takes turns again.
    Resume(Arc<str>),
}

/// The scan a page's `seq` belongs to, and the page's position in it.
pub fn scan_of(seq: u64) -> (u64, u32) {
    (seq >> SEQ_BITS, (seq & ((1 << SEQ_BITS) - 1)) as u32)
}

/// A scan's number from a running count.
pub fn scan_id(count: u64) -> u64 {
    count % SCAN_IDS
}

/// What came in.
pub enum Arrival {
    /// A new scan, or `None` when no more will come (the server stops).
    Scan(Option<NewScan>),
    /// The links of a page of the scan numbered so, or `None` when the
    /// parse stage is gone.
    Links(Option<(u64, Discovered)>),
    /// A client to pause or resume.
    Hold(Hold),
    /// The scan numbered so was cut short (its client went away): its
    /// URLs, queued or not, are given up.
    Cut(u64),
    /// Room in the queues, and a scan with URLs waiting: its turn.
    Take,
}

/// One client's scans with URLs waiting, in turn.
struct Client {
    key: String,
    scans: VecDeque<u64>,
}

/// A crawling scan's frontier.
struct Frontier {
    crawl: Arc<Crawl>,
    hasher: RandomState,
    /// Every URL of the scan queued or fetched, in normal form.
    seen: HashSet64,
    /// Found URLs waiting for their turn, by depth.
    waiting: BTreeMap<u16, VecDeque<(Url, Origin)>>,
    /// Found URLs that may still be queued.
    budget: u64,
}

impl Frontier {
    fn first_sight(&mut self, url: &Url) -> bool {
        self.seen.insert(self.hasher.hash_one(url.as_str()))
    }

    fn waiting(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    fn next(&mut self) -> Option<(Url, Origin)> {
        let mut nearest = self.waiting.first_entry()?;
        let next = nearest.get_mut().pop_front();
        if nearest.get().is_empty() {
            nearest.remove();
        }
        next
    }
}

/// One scan's URLs not queued yet.
struct Scan {
    client: String,
    /// Its next URL's position in the scan.
    next: u32,
    lines: std::vec::IntoIter<Line>,
    frontier: Option<Frontier>,
    /// Listed in its client's turns.
    in_turn: bool,
    /// Waits for the host of its next URL to have room in the queues.
    parked: bool,
}

impl Scan {
    fn waiting(&self) -> usize {
        self.lines.len() + self.frontier.as_ref().map_or(0, Frontier::waiting)
    }

    /// The host of the URL it would queue next (`None`: a line that names
    /// none, or nothing left).
    fn next_host(&self) -> Option<String> {
        match self.lines.as_slice().first() {
            Some(line) => line.url.as_ref().ok().map(host_key),
            None => {
                let frontier = self.frontier.as_ref()?;
                let (_, nearest) = frontier.waiting.first_key_value()?;
                nearest.front().map(|(url, _)| host_key(url))
            }
        }
    }

    /// Queues the scan's next URL (or the row of a line that is none).
    fn take_one(&mut self, id: u64, ctx: &mut Ctx<'_>) {
        let seq = (id << SEQ_BITS) | u64::from(self.next);
        self.next += 1;
        if let Some(line) = self.lines.next() {
            match line.url {
                Ok(url) => {
                    let origin = self.frontier.is_some().then(|| Origin::seed(&url));
                    ctx.queues.push_in_turn(url, seq, origin, ctx.now);
                }
                Err(why) => ctx.rows.push(Completed::without_request(
                    seq,
                    line.raw,
                    ErrorKind::InvalidUrl,
                    format!("URL {} of the scan: {why}", line.at),
                )),
            }
        } else if let Some((url, origin)) = self.frontier.as_mut().and_then(Frontier::next) {
            ctx.queues.push_in_turn(url, seq, Some(origin), ctx.now);
        }
    }
}

/// The scans waiting to have their URLs queued, client by client.
pub struct Served {
    arriving: mpsc::Receiver<NewScan>,
    links: mpsc::UnboundedReceiver<(u64, Discovered)>,
    holds: mpsc::UnboundedReceiver<Hold>,
    cuts: mpsc::UnboundedReceiver<u64>,
    open: bool,
    /// Clients with scans that may take a turn.
    turns: VecDeque<Client>,
    /// Paused clients (see [`Hold`]), and their scans in turn.
    resting: HashMap<Arc<str>, VecDeque<u64>>,
    /// Scans waiting for room at the host of their next URL, by host.
    parked: HashMap<String, Vec<u64>>,
    scans: HashMap<u64, Scan>,
    /// Scans kept past which those that ended are forgotten.
    prune_at: usize,
    known: Arc<dyn Scans>,
}

/// The fewest scans kept before those that ended are forgotten.
const PRUNE_AT_LEAST: usize = 64;

impl Served {
    /// Work from the scans that arrive on `arriving`, and the links their
    /// pages lead to, from `links`, pausing and resuming clients as `holds`
    /// says; a scan `cuts` names, or `known` says is gone, gives up its
    /// URLs, queued or not.
    pub fn new(
        arriving: mpsc::Receiver<NewScan>,
        links: mpsc::UnboundedReceiver<(u64, Discovered)>,
        holds: mpsc::UnboundedReceiver<Hold>,
        cuts: mpsc::UnboundedReceiver<u64>,
        known: Arc<dyn Scans>,
    ) -> Self {
        Served {
            arriving,
            links,
            holds,
            cuts,
            open: true,
            turns: VecDeque::new(),
            resting: HashMap::new(),
            parked: HashMap::new(),
            scans: HashMap::new(),
            prune_at: PRUNE_AT_LEAST,
            known,
        }
    }

    /// Lists scan `id` in its client's turns.
    fn put_in_turn(&mut self, id: u64) {
        let Some(scan) = self.scans.get_mut(&id) else {
            return;
        };
        if scan.in_turn || scan.parked || scan.waiting() == 0 {
            return;
        }
        scan.in_turn = true;
        if let Some(resting) = self.resting.get_mut(scan.client.as_str()) {
            resting.push_back(id);
            return;
        }
        match self.turns.iter_mut().find(|c| c.key == scan.client) {
            Some(client) => client.scans.push_back(id),
            None => self.turns.push_back(Client {
                key: scan.client.clone(),
                scans: VecDeque::from([id]),
            }),
        }
    }

    fn new_scan(&mut self, new: NewScan) {
        // Forgets the scans that ended (their frontiers' seen-sets are the
        // memory a long-running server would otherwise keep), each time
        // the scans kept have doubled: a few checks per new scan.
        if self.scans.len() >= self.prune_at {
            let known = &self.known;
            self.scans.retain(|id, _| known.limits(*id).is_some());
            self.prune_at = (2 * self.scans.len()).max(PRUNE_AT_LEAST);
        }
        let frontier = new.crawl.map(|c| {
            let mut frontier = Frontier {
                crawl: c.crawl,
                hasher: RandomState::new(),
                seen: HashSet64::default(),
                waiting: BTreeMap::new(),
                budget: c.max_pages.saturating_sub(new.lines.len() as u64),
            };
            for line in &new.lines {
                if let Ok(url) = &line.url {
                    frontier.first_sight(url);
                }
            }
            frontier
        });
        let scan = Scan {
            client: new.client,
            next: 0,
            lines: new.lines.into_iter(),
            frontier,
            in_turn: false,
            parked: false,
        };
        self.scans.insert(new.id, scan);
        self.put_in_turn(new.id);
    }

    /// A page's links came back: those the scan has not seen wait for its
    /// turn, within its budget.
    fn links_back(&mut self, id: u64, found: Discovered, draining: bool) {
        let Some(frontier) = self.scans.get_mut(&id).and_then(|s| s.frontier.as_mut()) else {
            return;
        };
        let mut taken = LinksTaken {
            off_scope: found.off_scope,
            ..LinksTaken::default()
        };
        let depth = found.page_depth + 1;
        for url in found.urls {
            if !frontier.first_sight(&url) {
                continue;
            }
            taken.discovered += 1;
            if draining || frontier.budget == 0 {
                taken.left += 1;
                continue;
            }
            frontier.budget -= 1;
            taken.queued += 1;
            let origin = Origin {
                depth,
                seed: Arc::clone(&found.seed),
                referrer: Some(Arc::clone(&found.referrer)),
            };
            frontier
                .waiting
                .entry(depth)
                .or_default()
                .push_back((url, origin));
        }
        // Told before the URLs can be fetched: the scan's count of
        // results to come grows before any of them arrives.
        self.known.links_taken(id, taken);
        if taken.queued > 0 {
            self.put_in_turn(id);
        }
    }

    /// Pauses or resumes a client.
    fn hold(&mut self, hold: Hold) {
        match hold {
            Hold::Pause(client) => {
                if self.resting.contains_key(&client) {
                    return;
                }
                let scans = match self.turns.iter().position(|c| *c.key == *client) {
                    Some(at) => self.turns.remove(at).map(|c| c.scans).unwrap_or_default(),
                    None => VecDeque::new(),
                };
                self.resting.insert(client, scans);
            }
            Hold::Resume(client) => {
                if let Some(scans) = self.resting.remove(&client)
                    && !scans.is_empty()
                {
                    self.turns.push_back(Client {
                        key: client.to_string(),
                        scans,
                    });
                }
            }
        }
    }

    /// Scan `id` was cut short: it gives up its URLs, those in the host
    /// queues too (they would hold their hosts' share of the queues until
    /// dispatched, which may be long behind a host that hangs).
    fn cut(&mut self, id: u64, ctx: &mut Ctx<'_>) {
        let Some(scan) = self.scans.remove(&id) else {
            return;
        };
        let client = scan.client.as_str();
        if let Some(at) = self.turns.iter().position(|c| c.key == client) {
            let scans = &mut self.turns[at].scans;
            scans.retain(|s| *s != id);
            if scans.is_empty() {
                self.turns.remove(at);
            }
        }
        if let Some(resting) = self.resting.get_mut(client) {
            resting.retain(|s| *s != id);
        }
        ctx.queues.drop_pages(|seq| scan_of(seq).0 == id);
    }

    /// The next URL of the client whose turn it is.
    fn take(&mut self, ctx: &mut Ctx<'_>) {
        let Some(mut client) = self.turns.pop_front() else {
            return;
        };
        if let Some(id) = client.scans.pop_front() {
            let alive = self.known.limits(id).is_some();
            match self.scans.entry(id) {
                Entry::Occupied(mut scan) if alive => {
                    let scan = scan.get_mut();
                    let full = scan.next_host().filter(|h| ctx.queues.host_full(h));
                    if let Some(host) = full {
                        // Its turn passes: it waits until its host's queue
                        // has room (see `after_dispatch`).
                        scan.in_turn = false;
                        scan.parked = true;
                        self.parked.entry(host).or_default().push(id);
                    } else {
                        scan.take_one(id, ctx);
                        if scan.waiting() > 0 {
                            client.scans.push_back(id);
                        } else {
                            scan.in_turn = false;
                        }
                    }
                }
                Entry::Occupied(scan) => {
                    scan.remove();
                }
                Entry::Vacant(_) => {}
            }
        }
        // Back to the end of the line, while it has URLs waiting.
        if !client.scans.is_empty() {
            self.turns.push_back(client);
        }
    }
}

impl Work for Served {
    type Arrival = Arrival;

    fn next(&mut self, room: bool) -> impl Future<Output = Arrival> + Send {
        if room && !self.turns.is_empty() {
            return Either::Left(std::future::ready(Arrival::Take));
        }
        let (arriving, links) = (&mut self.arriving, &mut self.links);
        let (holds, cuts) = (&mut self.holds, &mut self.cuts);
        let open = self.open;
        Either::Right(async move {
            tokio::select! {
                scan = arriving.recv(), if open => Arrival::Scan(scan),
                found = links.recv() => Arrival::Links(found),
                Some(hold) = holds.recv() => Arrival::Hold(hold),
                Some(id) = cuts.recv() => Arrival::Cut(id),
            }
        })
    }

    fn take_in(&mut self, arrival: Arrival, ctx: &mut Ctx<'_>) -> Result<(), Closed> {
        match arrival {
            Arrival::Scan(None) => self.open = false,
            Arrival::Scan(Some(scan)) => self.new_scan(scan),
            Arrival::Links(Some((id, found))) => self.links_back(id, found, ctx.draining),
            // The parse stage is gone: so is the server.
            Arrival::Links(None) => return Err(Closed),
            Arrival::Hold(hold) => self.hold(hold),
            Arrival::Cut(id) => self.cut(id, ctx),
            Arrival::Take => self.take(ctx),
        }
        Ok(())
    }

    fn fetch_limits(&self, seq: u64) -> Option<FetchLimits> {
        self.known.limits(scan_of(seq).0)
    }

    fn after_dispatch(&mut self, queues: &mut Queues, _rows: &mut Vec<Completed>) {
        if self.parked.is_empty() {
            return;
        }
        let drained: Vec<String> = self
            .parked
            .keys()
            .filter(|host| !queues.host_full(host))
            .cloned()
            .collect();
        for host in drained {
            for id in self.parked.remove(&host).unwrap_or_default() {
                if let Some(scan) = self.scans.get_mut(&id) {
                    scan.parked = false;
                }
                self.put_in_turn(id);
            }
        }
    }

    fn crawl_of(&self, seq: u64) -> Option<Arc<Crawl>> {
        let frontier = self.scans.get(&scan_of(seq).0)?.frontier.as_ref()?;
        Some(Arc::clone(&frontier.crawl))
    }

    fn completed(&mut self, done: &Completed, _depth: Option<u16>) {
        let Some(frontier) = self
            .scans
            .get_mut(&scan_of(done.seq).0)
            .and_then(|s| s.frontier.as_mut())
        else {
            return;
        };
        // Where a redirect landed is fetched: a link found later that
        // leads there is a duplicate.
        if let Ok(fetched) = &done.fetch
            && fetched.final_url.as_str() != done.page_url
        {
            let landed = frontier.crawl.normalize(&fetched.final_url);
            frontier.first_sight(&landed);
        }
    }

    fn elsewhere(&self) -> u64 {
        self.scans.values().map(|s| s.waiting() as u64).sum()
    }

    fn exhausted(&self) -> bool {
        !self.open && self.elsewhere() == 0
    }

    fn give_up(&mut self) -> u64 {
        let left = self.elsewhere();
        self.scans.clear();
        self.turns.clear();
        self.resting.clear();
        self.parked.clear();
        self.open = false;
        left
    }
}
