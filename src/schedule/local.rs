//! Work from this process: the input's lines and, crawling, the frontier
//! of the URLs the pages lead to.
//!
//! In crawl mode (`--depth`) the links each parsed page leads to come back
//! here, are checked against the set of URLs already seen (8 bytes per
//! URL), and queue at their depth. With `--max-pages` the order is strict:
//! no page is fetched while a page nearer a seed is queued or could still
//! be found. Discovered URLs past `--frontier-memory` wait on disk.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;
use url::Url;

use super::hosts::{Queues, RulesAhead, host_key};
use super::tasks::{self, SitemapRead, Tasks};
use super::work::{Closed, Ctx, Work};
use super::{Completed, FIRST_FOUND_SEQ};
use crate::crawl::netguard::Guard;
use crate::crawl::robots::{self, Rules};
use crate::crawl::sitemap::{self, Sitemap};
use crate::crawl::spill::Spill;
use crate::crawl::{Crawl, Discovered, Origin};
use crate::error::ErrorKind;
use crate::fetch::Fetcher;
use crate::input::InputLine;
use crate::run::report::Crawled;
use crate::seen::HashSet64;

/// Crawl mode, as the local frontier needs it.
pub struct Frontier {
    /// The crawl's settings.
    pub crawl: Arc<Crawl>,
    /// The links of each parsed page whose links are awaited (see
    /// [`Completed::yields_links`]), one message per page.
    pub links: mpsc::UnboundedReceiver<Discovered>,
    /// Where seeds already seen are counted, with the input's duplicates.
    pub duplicates: Arc<AtomicU64>,
    /// Keeps discovered URLs out of private networks; told each seed's
    /// host, which it trusts.
    pub guard: Option<Arc<Guard>>,
}

/// The input's lines and, crawling, the local frontier.
pub struct Local {
    lines: mpsc::Receiver<InputLine>,
    input_open: bool,
    links: Option<mpsc::UnboundedReceiver<Discovered>>,
    crawl: Option<CrawlState>,
}

/// What came in.
pub enum Arrival {
    /// A line of the input, or `None` at its end.
    Line(Option<InputLine>),
    /// A page's links, or `None` when the parse stage is gone.
    Links(Option<Discovered>),
}

impl Local {
    /// Work read from `lines`; crawling when `frontier` is given, with at
    /// most `max_frontier` discovered URLs in memory.
    pub(crate) fn new(
        lines: mpsc::Receiver<InputLine>,
        frontier: Option<Frontier>,
        max_frontier: usize,
    ) -> Self {
        let (links, crawl) = match frontier {
            Some(f) => {
                let state = CrawlState::new(f.crawl, f.duplicates, f.guard, max_frontier);
                (Some(f.links), Some(state))
            }
            None => (None, None),
        };
        Local {
            lines,
            input_open: true,
            links,
            crawl,
        }
    }

    /// A line of the input that is a URL.
    fn take_url(&mut self, url: Url, seq: u64, raw: &str, ctx: &mut Ctx<'_>) {
        let Some(c) = self.crawl.as_mut() else {
            ctx.queues.push(url, seq, None, ctx.now);
            return;
        };
        let url = c.crawl.normalize(&url);
        if c.limit_reached() {
            if c.first_sight(&url) {
                ctx.rows.push(c.over_limit(seq, url.into()));
            } else {
                // Fetched already (from a sitemap, a link, an earlier
                // line): its row is written; a second, max_pages row
                // would contradict it.
                c.duplicate(raw);
            }
            return;
        }
        let host = host_key(&url);
        // Listed by the user: its host may be private.
        if let (Some(guard), Some(name)) = (&c.guard, url.host_str()) {
            guard.trust(name);
            ctx.queues.recheck_robots(&host);
        }
        if c.first_sight(&url) {
            ctx.queues
                .push(url.clone(), seq, Some(Origin::seed(&url)), ctx.now);
        } else {
            // Found on a page already, or another spelling of an earlier
            // line.
            c.duplicate(raw);
        }
        if c.crawl.sitemap_auto && c.sitemap_hosts.insert(host.clone()) {
            c.sitemaps_pending += 1;
            let robots_url = robots::robots_url(&url);
            c.robots_sitemaps(ctx.queues, host, robots_url, ctx.tasks, ctx.fetcher);
        }
    }
}

impl Work for Local {
    type Arrival = Arrival;

    /// Reads the sitemaps the user named (`--sitemap`).
    fn start(&mut self, ctx: &mut Ctx<'_>) {
        let Some(c) = self.crawl.as_mut() else {
            return;
        };
        for url in c.crawl.sitemaps.clone() {
            if let (Some(guard), Some(host)) = (&c.guard, url.host_str()) {
                // Named by the user, like a listed URL.
                guard.trust(host);
            }
            if c.wants_sitemap(&url) {
                c.sitemaps_pending += 1;
                ctx.tasks.push(tasks::sitemap(ctx.fetcher, url, false));
            }
        }
    }

    async fn next(&mut self, room: bool) -> Arrival {
        let lines_open = room && self.input_open;
        let links = async {
            match self.links.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            found = links => Arrival::Links(found),
            line = self.lines.recv(), if lines_open => Arrival::Line(line),
        }
    }

    fn take_in(&mut self, arrival: Arrival, ctx: &mut Ctx<'_>) -> Result<(), Closed> {
        match arrival {
            Arrival::Line(None) => self.input_open = false,
            Arrival::Line(Some(InputLine {
                url: Ok(url),
                seq,
                raw,
            })) => {
                self.take_url(url, seq, &raw, ctx);
            }
            Arrival::Line(Some(InputLine {
                raw,
                url: Err(why),
                seq,
            })) => {
                let row = Completed::without_request(seq, raw, ErrorKind::InvalidUrl, why);
                ctx.rows.push(row);
            }
            Arrival::Links(Some(found)) => match self.crawl.as_mut() {
                Some(c) => c.links_back(found, ctx.queues, ctx.draining, ctx.now),
                None => return Err(Closed),
            },
            // The parse stage is gone: the output closed under it.
            Arrival::Links(None) => return Err(Closed),
        }
        Ok(())
    }

    fn refill(&mut self, queues: &mut Queues, now: Instant) {
        if let Some(c) = self.crawl.as_mut()
            && !c.limit_reached()
        {
            c.refill(queues, now);
        }
    }

    fn depth_cap(&self, queues: &Queues) -> Option<u16> {
        match &self.crawl {
            None => Some(u16::MAX),
            Some(c) if c.limit_reached() => None,
            Some(c) => c.depth_cap(queues, self.input_open),
        }
    }

    fn dispatched(&mut self, _seq: u64, depth: Option<u16>) {
        if let (Some(c), Some(depth)) = (self.crawl.as_mut(), depth) {
            c.dispatched(depth);
        }
    }

    fn after_dispatch(&mut self, queues: &mut Queues, rows: &mut Vec<Completed>) {
        if let Some(c) = self.crawl.as_mut()
            && c.limit_reached()
            && !(queues.is_empty() && c.spill.is_empty())
        {
            c.close(queues, rows);
        }
    }

    fn robots_known(&mut self, host: String, ctx: &mut Ctx<'_>) {
        if let Some(c) = self.crawl.as_mut()
            && let Some(robots_url) = c.sitemaps_with_rules.remove(&host)
        {
            c.robots_sitemaps(ctx.queues, host, robots_url, ctx.tasks, ctx.fetcher);
        }
    }

    fn sitemap_read(&mut self, read: SitemapRead, ctx: &mut Ctx<'_>) {
        if let Some(c) = self.crawl.as_mut() {
            c.sitemap_read(read, ctx);
        }
    }

    fn completed(&mut self, done: &Completed, depth: Option<u16>) {
        let (Some(c), Some(depth)) = (self.crawl.as_mut(), depth) else {
            return;
        };
        // Where a redirect landed is fetched: a URL found later that
        // leads there is a duplicate.
        if let Ok(fetched) = &done.fetch
            && c.crawl.discovers()
            && fetched.final_url.as_str() != done.page_url
        {
            let landed = c.crawl.normalize(&fetched.final_url);
            c.first_sight(&landed);
        }
        let yields = done.yields_links(&c.crawl);
        c.handed_on(depth, yields);
    }

    fn elsewhere(&self) -> u64 {
        self.crawl.as_ref().map_or(0, |c| c.spill.len())
    }

    fn exhausted(&self) -> bool {
        !self.input_open
            && self
                .crawl
                .as_ref()
                .is_none_or(|c| c.spill.is_empty() && c.awaiting == 0)
    }

    fn give_up(&mut self) -> u64 {
        let mut unfinished = self.crawl.as_mut().map_or(0, |c| c.spill.clear());
        if self.input_open {
            // Lines already read count as unfinished; the reader sees the
            // channel closed at its next line and stops reading.
            self.lines.close();
            while self.lines.try_recv().is_ok() {
                unfinished += 1;
            }
            self.input_open = false;
        }
        unfinished
    }

    fn tally(&self) -> Crawled {
        self.crawl
            .as_ref()
            .map_or_else(Crawled::default, |c| Crawled {
                spilled: c.spill.total(),
                ..c.tally
            })
    }
}

/// The crawl's bookkeeping in the scheduler.
struct CrawlState {
    crawl: Arc<Crawl>,
    duplicates: Arc<AtomicU64>,
    guard: Option<Arc<Guard>>,
    hasher: RandomState,
    /// Every normalised URL queued or fetched in this run.
    seen: HashSet64,
    /// Pages fetched or being fetched whose links may still come back, by
    /// depth: what strict breadth-first order waits for.
    in_system: Vec<u64>,
    /// Pages handed to the parse stage whose links have not come back.
    awaiting: u64,
    /// Fetches started, for `--max-pages`.
    fetched: u64,
    /// Sitemaps asked for, so that each is read once.
    sitemaps_seen: std::collections::HashSet<String>,
    /// Sitemap jobs running.
    sitemaps_pending: usize,
    /// Hosts whose robots.txt was asked for its sitemaps.
    sitemap_hosts: std::collections::HashSet<String>,
    /// Hosts whose robots.txt is being read for its rules, and whose
    /// `Sitemap:` lines are wanted too (`--sitemap auto` with robots.txt
    /// obeyed): each is one of `sitemaps_pending`. Value: the robots.txt.
    sitemaps_with_rules: HashMap<String, Url>,
    /// Discovered URLs past `max_frontier`, on disk.
    spill: Spill,
    max_frontier: usize,
    /// The disk failed once: the frontier stays in memory from then on.
    spill_failed: bool,
    next_seq: u64,
    tally: Crawled,
}

impl CrawlState {
    fn new(
        crawl: Arc<Crawl>,
        duplicates: Arc<AtomicU64>,
        guard: Option<Arc<Guard>>,
        max_frontier: usize,
    ) -> Self {
        CrawlState {
            crawl,
            duplicates,
            guard,
            hasher: RandomState::new(),
            seen: HashSet64::default(),
            in_system: Vec::new(),
            awaiting: 0,
            fetched: 0,
            sitemaps_seen: Default::default(),
            sitemaps_pending: 0,
            sitemap_hosts: Default::default(),
            sitemaps_with_rules: HashMap::new(),
            spill: Spill::default(),
            max_frontier,
            spill_failed: false,
            next_seq: FIRST_FOUND_SEQ,
            tally: Crawled::default(),
        }
    }

    /// A listed URL seen already: counted with the input's duplicates.
    fn duplicate(&self, raw: &str) {
        tracing::debug!(
            "{}: already seen; skipped",
            crate::output::without_password(raw)
        );
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// A sitemap was read: its pages are seeds, an index's sitemaps are
    /// read in turn.
    fn sitemap_read(&mut self, read: SitemapRead, ctx: &mut Ctx<'_>) {
        let SitemapRead {
            url,
            host,
            from_robots,
            outcome,
        } = read;
        self.sitemaps_pending -= 1;
        match outcome {
            Err(why) => {
                tracing::warn!(
                    "sitemap {}: {why}",
                    crate::output::without_password(url.as_str())
                );
                self.tally.sitemaps_failed += 1;
            }
            Ok(Sitemap::Index(listed)) => {
                self.tally.sitemaps += u64::from(!from_robots);
                for next in listed {
                    if self.wants_sitemap(&next) {
                        self.sitemaps_pending += 1;
                        ctx.tasks
                            .push(tasks::sitemap_for(ctx.fetcher, next, host.clone(), false));
                    }
                }
            }
            Ok(Sitemap::Pages(urls)) => {
                self.tally.sitemaps += 1;
                if !ctx.draining {
                    self.sitemap_pages(urls, &url, &host, ctx.queues, ctx.now);
                }
            }
        }
    }

    /// Marks `url` seen; false when it already was.
    fn first_sight(&mut self, url: &Url) -> bool {
        self.seen.insert(self.hasher.hash_one(url.as_str()))
    }

    fn limit_reached(&self) -> bool {
        self.crawl.max_pages.is_some_and(|max| self.fetched >= max)
    }

    /// The deepest queue pages may be taken from now. With `--max-pages`,
    /// only the lowest depth queued, and only once no page two or more
    /// levels up is still being fetched or parsed (it could add URLs
    /// nearer the seeds than that depth); `None` when nothing may start.
    fn depth_cap(&self, queues: &Queues, input_open: bool) -> Option<u16> {
        if self.crawl.max_pages.is_none() {
            return Some(u16::MAX);
        }
        // Seeds may still come (from the input, or sitemaps being read):
        // nothing deeper than them yet.
        if input_open || self.sitemaps_pending > 0 {
            return queues.lowest_depth().filter(|d| *d == 0);
        }
        let lowest = match (queues.lowest_depth(), self.spill.lowest_depth()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let upstream = usize::from(lowest)
            .saturating_sub(1)
            .min(self.in_system.len());
        self.in_system[..upstream]
            .iter()
            .all(|&n| n == 0)
            .then_some(lowest)
    }

    fn dispatched(&mut self, depth: u16) {
        self.fetched += 1;
        let d = usize::from(depth);
        if self.in_system.len() <= d {
            self.in_system.resize(d + 1, 0);
        }
        self.in_system[d] += 1;
    }

    /// A page's result goes to the parse stage; its links will follow or
    /// not.
    fn handed_on(&mut self, depth: u16, yields_links: bool) {
        if yields_links {
            self.awaiting += 1;
        } else {
            self.in_system[usize::from(depth)] -= 1;
        }
    }

    /// A page's links came back: queue those not seen yet (or count them
    /// as left, once nothing more is fetched).
    fn links_back(&mut self, found: Discovered, queues: &mut Queues, closed: bool, now: Instant) {
        self.awaiting -= 1;
        self.in_system[usize::from(found.page_depth)] -= 1;
        self.tally.off_scope += found.off_scope;
        let depth = found.page_depth + 1;
        let closed = closed || self.limit_reached();
        for url in found.urls {
            if !self.first_sight(&url) {
                continue;
            }
            self.tally.discovered += 1;
            if closed {
                self.tally.left += 1;
                continue;
            }
            let origin = Origin {
                depth,
                seed: Arc::clone(&found.seed),
                referrer: Some(Arc::clone(&found.referrer)),
            };
            self.enqueue_found(queues, url, origin, now);
        }
    }

    /// `--max-pages` was reached: what is queued will not be fetched.
    /// Listed URLs get a row saying so; the others are counted.
    fn close(&mut self, queues: &mut Queues, rows: &mut Vec<Completed>) {
        self.tally.left += self.spill.clear();
        for q in queues.take_all() {
            if q.from_input {
                rows.push(self.over_limit(q.seq, q.url.into()));
            } else {
                self.tally.left += 1;
            }
        }
    }

    /// Queues a URL found by the crawl (a link, a sitemap entry): in
    /// memory while there is room and none of its depth waits on disk,
    /// else on disk, behind those.
    fn enqueue_found(&mut self, queues: &mut Queues, url: Url, origin: Origin, now: Instant) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let in_memory = queues.queued - queues.from_input;
        if !self.spill_failed && (in_memory >= self.max_frontier || self.spill.holds(origin.depth))
        {
            match self.spill.push(url.as_str(), seq, &origin) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        "cannot keep the crawl's queue on disk ({e}); keeping it in memory"
                    );
                    self.spill_failed = true;
                }
            }
        }
        queues.enqueue(url, seq, Some(origin), false, now);
    }

    /// Brings URLs back from disk, oldest of the lowest depth first: a
    /// chunk when memory has room for it, or whenever that depth is lower
    /// than any in memory (breadth-first order needs them next).
    fn refill(&mut self, queues: &mut Queues, now: Instant) {
        let Some(depth) = self.spill.lowest_depth() else {
            return;
        };
        let chunk = (self.max_frontier / 10).max(1);
        let room = self
            .max_frontier
            .saturating_sub(queues.queued - queues.from_input);
        let needed = queues.lowest_depth().is_none_or(|lowest| depth < lowest);
        if room < chunk && !needed {
            return;
        }
        match self.spill.take(depth, chunk) {
            Ok(entries) => {
                for e in entries {
                    queues.enqueue(e.url, e.seq, Some(e.origin), false, now);
                }
            }
            Err(e) => {
                let lost = self.spill.clear();
                tracing::error!(
                    "cannot read the crawl's queue back from disk ({e}): {lost} discovered URLs are lost"
                );
                self.tally.left += lost;
                self.spill_failed = true;
            }
        }
    }

    /// Reads the sitemaps named by a host's robots.txt (one of
    /// `sitemaps_pending` until they are known). A robots.txt read for its
    /// rules is not read again: its `Sitemap:` lines come with them.
    fn robots_sitemaps(
        &mut self,
        queues: &Queues,
        host: String,
        robots_url: Url,
        tasks: &mut Tasks,
        fetcher: &Fetcher,
    ) {
        match queues.rules_ahead(&host) {
            RulesAhead::Coming => {
                self.sitemaps_with_rules.insert(host, robots_url);
            }
            // Unchecked: refused by the guard when a link led there; the
            // host is listed, so trusted, now.
            RulesAhead::NotAsked | RulesAhead::Known(Rules::Unchecked) => {
                tasks.push(tasks::sitemap(fetcher, robots_url, true));
            }
            RulesAhead::Known(rules) => {
                self.sitemaps_pending -= 1;
                self.sitemaps_in_robots(rules, &robots_url, &host, tasks, fetcher);
            }
        }
    }

    /// Reads the sitemaps a robots.txt names.
    fn sitemaps_in_robots(
        &mut self,
        rules: &Rules,
        robots_url: &Url,
        host: &str,
        tasks: &mut Tasks,
        fetcher: &Fetcher,
    ) {
        for url in sitemap::named_in_robots(robots_url, rules.sitemaps()) {
            if self.wants_sitemap(&url) {
                self.sitemaps_pending += 1;
                tasks.push(tasks::sitemap_for(fetcher, url, host.to_owned(), false));
            }
        }
    }

    /// Whether to read the sitemap at `url`: once each, and no more than
    /// [`sitemap::MAX_SITEMAPS`] in all.
    fn wants_sitemap(&mut self, url: &Url) -> bool {
        if self.sitemaps_seen.len() >= sitemap::MAX_SITEMAPS {
            tracing::warn!(
                "sitemap {}: not read: {} sitemaps already read in this run",
                crate::output::without_password(url.as_str()),
                sitemap::MAX_SITEMAPS
            );
            return false;
        }
        self.sitemaps_seen
            .insert(self.crawl.normalize(url).as_str().to_owned())
    }

    /// Queues the page URLs of a sitemap as seeds: those on `host` (the
    /// protocol's rule: a sitemap lists its own host's pages) not seen
    /// yet.
    fn sitemap_pages(
        &mut self,
        urls: Vec<Url>,
        sitemap: &Url,
        host: &str,
        queues: &mut Queues,
        now: Instant,
    ) {
        let closed = self.limit_reached();
        let listed_in: Arc<str> = Arc::from(sitemap.as_str());
        for url in urls {
            let url = self.crawl.normalize(&url);
            if host_key(&url) != host {
                self.tally.off_scope += 1;
                continue;
            }
            if !self.first_sight(&url) {
                continue;
            }
            self.tally.sitemap_urls += 1;
            if closed {
                self.tally.left += 1;
                continue;
            }
            // A seed, whose referrer is the sitemap that listed it.
            let origin = Origin {
                referrer: Some(Arc::clone(&listed_in)),
                ..Origin::seed(&url)
            };
            self.enqueue_found(queues, url, origin, now);
        }
    }

    fn over_limit(&self, seq: u64, page_url: String) -> Completed {
        let max = self.crawl.max_pages.unwrap_or_default();
        let why = format!("not fetched: --max-pages {max} was reached");
        Completed::without_request(seq, page_url, ErrorKind::MaxPages, why)
    }
}
