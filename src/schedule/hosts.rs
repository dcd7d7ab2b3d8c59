//! Per-host queues: which URL may be requested next, and when.
//!
//! A request starts whenever a global slot (`-c`) is free and some host
//! has a queued URL, a free per-host slot (`--per-host`) and its `--delay`
//! behind it. Ready hosts take turns, so a long run of URLs for one slow
//! host never holds back the others: while any other host has work, no
//! global slot sits idle waiting on a full host.
//!
//! A host is a URL's authority, host and port (as for robots.txt): two
//! servers on one machine are two hosts, and so are 127.0.0.1 and
//! 127.0.0.2. Each host keeps one queue per depth, and the lowest depth
//! with a ready host goes first: breadth-first within the per-host limits.
//! With `--robots`, a host's first job is its robots.txt; its URLs wait
//! until the rules are known, then each is fetched or refused, and a
//! Crawl-delay raises the host's delay.
//!
//! Scripts (`--fetch-scripts`) wait in a lane of their own ahead of every
//! depth: their pages are parsed and held until they are fetched, so they
//! go first, and they still share `-c`, the per-host limits, the delay and
//! robots.txt with pages.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use url::Url;

use super::Limits;
use crate::crawl::Origin;
use crate::crawl::robots::Rules;

/// What the scheduler wants done next.
#[derive(Debug)]
pub(crate) enum Job {
    /// Fetch this page of this host.
    Fetch {
        host: String,
        url: Url,
        seq: u64,
        origin: Option<Origin>,
    },
    /// Fetch this host's robots.txt (the URL is any page of the host).
    Robots(String, Url),
    /// Report this page as refused by robots.txt, without a request.
    Refuse(Url, String, u64, Option<Origin>),
    /// Fetch this script of this host, named by `referer`.
    Script {
        host: String,
        url: Url,
        referer: std::sync::Arc<str>,
    },
    /// Report this script as refused by robots.txt, without a request.
    RefuseScript(Url, String),
}

/// A queue of one host's: its scripts, or its pages of one depth. Scripts
/// sort first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Lane {
    Script,
    Page(u16),
}

/// The per-host queues and the bookkeeping that decides the next request.
pub(crate) struct Queues {
    limits: Limits,
    hosts: HashMap<String, Host>,
    /// By lane: hosts with URLs in that lane that may start a request
    /// now, in turn order.
    ready: BTreeMap<Lane, VecDeque<String>>,
    /// Hosts with work that wait for their delay to pass, soonest first.
    waiting: BinaryHeap<Reverse<(Instant, String)>>,
    /// Pages in all queues.
    pub(crate) queued: usize,
    /// Scripts in all queues.
    pub(crate) scripts: usize,
    /// Of those, URLs read from the input (what `max_queued` bounds).
    pub(crate) from_input: usize,
    /// URLs queued at each depth.
    queued_at: BTreeMap<u16, usize>,
    /// Requests in flight in all.
    in_flight: usize,
    /// With `--rate`: the earliest start of the next request, any host's.
    next_start: Option<Instant>,
}

struct Host {
    /// Queued URLs by lane.
    levels: BTreeMap<Lane, DepthQueue>,
    /// Pages among them (scripts are not).
    pages: usize,
    in_flight: usize,
    /// Least time between request starts: --delay, or a larger Crawl-delay.
    delay: Duration,
    /// The host's Crawl-delay: `--random-delay` never waits less.
    crawl_delay: Duration,
    /// The earliest start of this host's next request.
    not_before: Option<Instant>,
    /// Listed in `waiting`, so that it is listed once.
    delayed: bool,
    robots: RobotsState,
}

/// One host's URLs in one lane.
#[derive(Default)]
struct DepthQueue {
    queue: VecDeque<Queued>,
    /// Listed in `ready` at this depth, so that it is listed once.
    listed: bool,
}

/// What is known of a host's robots.txt rules, or will be.
pub(crate) enum RulesAhead<'a> {
    Known(&'a Rules),
    /// Being fetched, or will be before the host's next page.
    Coming,
    /// Not wanted (robots.txt not obeyed), or nothing of the host queued.
    NotAsked,
}

enum RobotsState {
    /// Not asked yet: the host's first job is its robots.txt.
    Unknown,
    /// Being fetched; the host's URLs wait. `recheck`: the host became
    /// trusted meanwhile, so a refusal by the guard is to be asked again.
    Fetching { recheck: bool },
    /// Known (or not wanted: `AllowAll`).
    Known(Rules),
}

/// A queued URL, kept as its serialization: half a parsed `Url`'s
/// footprint, which matters when `max_queued` URLs wait behind one host.
pub(crate) struct Queued {
    pub(crate) url: Box<str>,
    pub(crate) seq: u64,
    pub(crate) origin: Option<Origin>,
    pub(crate) from_input: bool,
    /// For a script, the page that names it (its Referer).
    pub(crate) referer: Option<std::sync::Arc<str>>,
}

impl Queued {
    pub(crate) fn url(&self) -> Url {
        // The text is the serialization of a parsed http(s) URL, and the
        // URL standard guarantees that parsing such a serialization gives
        // back the same URL.
        Url::parse(&self.url).expect("a serialized URL parses")
    }
}

/// `wait`, drawn between half and one and a half times it when `random`
/// (`--random-delay`).
fn jittered(wait: Duration, random: bool) -> Duration {
    if random {
        wait.mul_f64(0.5 + fastrand::f64())
    } else {
        wait
    }
}

/// A URL's host for politeness: its authority.
pub(crate) fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

impl Queues {
    pub(crate) fn new(limits: Limits) -> Self {
        Queues {
            limits,
            hosts: HashMap::new(),
            ready: BTreeMap::new(),
            waiting: BinaryHeap::new(),
            queued: 0,
            scripts: 0,
            from_input: 0,
            queued_at: BTreeMap::new(),
            in_flight: 0,
            next_start: None,
        }
    }

    /// A request starts now: the run's rate holds the next one back.
    fn started(&mut self, now: Instant) {
        if let Some(interval) = self.limits.rate {
            self.next_start = Some(now + jittered(interval, self.limits.random_delay));
        }
    }

    /// No page and no script is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0 && self.scripts == 0
    }

    /// The lowest depth with a queued URL.
    pub(crate) fn lowest_depth(&self) -> Option<u16> {
        self.queued_at.keys().next().copied()
    }

    /// Empties every page queue (hosts, their in-flight counts and their
    /// scripts stay) and returns what was queued.
    pub(crate) fn take_all(&mut self) -> Vec<Queued> {
        let mut all = Vec::with_capacity(self.queued);
        for host in self.hosts.values_mut() {
            host.pages = 0;
            let scripts = host.levels.remove(&Lane::Script);
            for (_, level) in std::mem::take(&mut host.levels) {
                all.extend(level.queue);
            }
            if let Some(scripts) = scripts {
                host.levels.insert(Lane::Script, scripts);
            }
        }
        self.ready.retain(|lane, _| *lane == Lane::Script);
        self.queued_at.clear();
        self.queued = 0;
        self.from_input = 0;
        all
    }

    /// Empties every script queue (a stop: nothing new starts); returns
    /// how many scripts were queued.
    pub(crate) fn drop_scripts(&mut self) -> usize {
        for host in self.hosts.values_mut() {
            host.levels.remove(&Lane::Script);
        }
        self.ready.remove(&Lane::Script);
        std::mem::take(&mut self.scripts)
    }

    /// Queues a script named by the page `referer`, ahead of every page.
    pub(crate) fn push_script(&mut self, url: Url, referer: std::sync::Arc<str>, now: Instant) {
        let key = host_key(&url);
        let q = Queued {
            url: String::from(url).into_boxed_str(),
            seq: 0,
            origin: None,
            from_input: false,
            referer: Some(referer),
        };
        self.scripts += 1;
        self.put(key, q, Lane::Script, now);
    }

    /// Queues a URL: from the input when it has no origin or is a seed.
    pub(crate) fn push(&mut self, url: Url, seq: u64, origin: Option<Origin>, now: Instant) {
        let from_input = origin.as_ref().is_none_or(|o| o.referrer.is_none());
        if from_input {
            self.from_input += 1;
        }
        self.enqueue(url, seq, origin, from_input, now);
    }

    /// Queues a served scan's URL, listed or found by its crawl, as the
    /// input's: it counts against `max_queued`, and waits in the lane of
    /// depth 0 whatever its depth, because the scans' turns decide which
    /// URL enters next, and a lane ahead of another would let one scan's
    /// seeds hold back another's links.
    pub(crate) fn push_in_turn(
        &mut self,
        url: Url,
        seq: u64,
        origin: Option<Origin>,
        now: Instant,
    ) {
        self.from_input += 1;
        self.enqueue_in(url, seq, origin, true, 0, now);
    }

    pub(crate) fn enqueue(
        &mut self,
        url: Url,
        seq: u64,
        origin: Option<Origin>,
        from_input: bool,
        now: Instant,
    ) {
        let depth = origin.as_ref().map_or(0, |o| o.depth);
        self.enqueue_in(url, seq, origin, from_input, depth, now);
    }

    /// Queues a page in the lane of `depth`.
    fn enqueue_in(
        &mut self,
        url: Url,
        seq: u64,
        origin: Option<Origin>,
        from_input: bool,
        depth: u16,
        now: Instant,
    ) {
        let key = host_key(&url);
        let q = Queued {
            url: String::from(url).into_boxed_str(),
            seq,
            origin,
            from_input,
            referer: None,
        };
        self.queued += 1;
        *self.queued_at.entry(depth).or_default() += 1;
        self.put(key, q, Lane::Page(depth), now);
    }

    /// Puts a URL in its host's queue of `lane` and lists the host.
    fn put(&mut self, key: String, q: Queued, lane: Lane, now: Instant) {
        let limits = &self.limits;
        let host = self.hosts.entry(key.clone()).or_insert_with(|| Host {
            levels: BTreeMap::new(),
            pages: 0,
            in_flight: 0,
            delay: limits.delay,
            crawl_delay: Duration::ZERO,
            not_before: None,
            delayed: false,
            robots: match limits.robots_agent {
                Some(_) => RobotsState::Unknown,
                None => RobotsState::Known(Rules::AllowAll),
            },
        });
        host.levels.entry(lane).or_default().queue.push_back(q);
        if let Lane::Page(_) = lane {
            host.pages += 1;
        }
        self.list(key, now);
    }

    /// Lists a host as ready at each depth it has work at, or as waiting,
    /// if it may start a request at all.
    fn list(&mut self, key: String, now: Instant) {
        let Some(host) = self.hosts.get_mut(&key) else {
            return;
        };
        if host.levels.is_empty()
            || host.in_flight >= self.limits.per_host
            || matches!(host.robots, RobotsState::Fetching { .. })
        {
            return;
        }
        if let Some(t) = host.not_before
            && t > now
        {
            if !host.delayed {
                host.delayed = true;
                self.waiting.push(Reverse((t, key)));
            }
            return;
        }
        for (lane, level) in &mut host.levels {
            if !level.listed {
                level.listed = true;
                self.ready.entry(*lane).or_default().push_back(key.clone());
            }
        }
    }

    /// Moves hosts whose delay has passed to the ready lists.
    pub(crate) fn wake(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.waiting.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, key))) = self.waiting.pop() else {
                break;
            };
            if let Some(host) = self.hosts.get_mut(&key) {
                host.delayed = false;
            }
            self.list(key, now);
        }
    }

    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let host = self.waiting.peek().map(|Reverse((t, _))| *t);
        // Held back by the rate, with something ready to start.
        let rate = self.next_start.filter(|_| !self.ready.is_empty());
        match (host, rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next job: a script if any may start, else a page from the
    /// lowest depth (up to `max_depth`; `None`: no page) with a ready
    /// host, taking hosts in turn; `None` when all slots are taken or no
    /// host may start one now.
    pub(crate) fn next_job(&mut self, now: Instant, max_depth: Option<u16>) -> Option<Job> {
        if self.in_flight >= self.limits.concurrency || self.next_start.is_some_and(|t| t > now) {
            return None;
        }
        loop {
            let mut lowest = self.ready.first_entry()?;
            let lane = *lowest.key();
            if let Lane::Page(depth) = lane
                && max_depth.is_none_or(|max| depth > max)
            {
                return None;
            }
            let Some(key) = lowest.get_mut().pop_front() else {
                lowest.remove();
                continue;
            };
            if lowest.get().is_empty() {
                lowest.remove();
            }
            let Some(host) = self.hosts.get_mut(&key) else {
                continue;
            };
            let Some(level) = host.levels.get_mut(&lane) else {
                continue;
            };
            level.listed = false;
            if host.in_flight >= self.limits.per_host {
                continue;
            }
            if host.not_before.is_some_and(|t| t > now) {
                self.list(key, now);
                continue;
            }
            let rules = match &host.robots {
                RobotsState::Unknown => {
                    let Some(page) = level.queue.front().map(Queued::url) else {
                        continue;
                    };
                    host.robots = RobotsState::Fetching { recheck: false };
                    host.in_flight += 1;
                    self.in_flight += 1;
                    self.started(now);
                    return Some(Job::Robots(key, page));
                }
                RobotsState::Fetching { .. } => continue,
                RobotsState::Known(rules) => rules,
            };
            let Some(q) = level.queue.pop_front() else {
                continue;
            };
            if level.queue.is_empty() {
                host.levels.remove(&lane);
            }
            match lane {
                Lane::Script => self.scripts -= 1,
                Lane::Page(depth) => {
                    self.queued -= 1;
                    host.pages -= 1;
                    if q.from_input {
                        self.from_input -= 1;
                    }
                    if let Some(n) = self.queued_at.get_mut(&depth) {
                        *n -= 1;
                        if *n == 0 {
                            self.queued_at.remove(&depth);
                        }
                    }
                }
            }
            let url = q.url();
            if let Some(why) = rules.refusal(&url) {
                self.list(key, now);
                return Some(match q.referer {
                    Some(_) => Job::RefuseScript(url, why),
                    None => Job::Refuse(url, why, q.seq, q.origin),
                });
            }
            host.in_flight += 1;
            if !host.delay.is_zero() {
                // Never under the host's own Crawl-delay.
                let wait = jittered(host.delay, self.limits.random_delay).max(host.crawl_delay);
                host.not_before = Some(now + wait);
            }
            self.in_flight += 1;
            self.started(now);
            // To the back of the turn order, if it has more to do.
            self.list(key.clone(), now);
            if let Some(referer) = q.referer {
                return Some(Job::Script {
                    host: key,
                    url,
                    referer,
                });
            }
            return Some(Job::Fetch {
                host: key,
                url,
                seq: q.seq,
                origin: q.origin,
            });
        }
    }

    /// Whether the host `key` has as many pages queued as it may have in
    /// flight (`--per-host`): the share of the queues a served scan may
    /// fill for one host, so that URLs for a host that hangs cannot fill
    /// the queues while other hosts' slots sit idle.
    pub(crate) fn host_full(&self, key: &str) -> bool {
        self.hosts
            .get(key)
            .is_some_and(|h| h.pages >= self.limits.per_host)
    }

    /// Removes every queued page whose `seq` is `gone`'s (a served scan
    /// whose client went away); returns how many.
    pub(crate) fn drop_pages(&mut self, gone: impl Fn(u64) -> bool) -> usize {
        let mut dropped = 0;
        for host in self.hosts.values_mut() {
            host.levels.retain(|lane, level| {
                let Lane::Page(depth) = *lane else {
                    return true;
                };
                level.queue.retain(|q| {
                    if !gone(q.seq) {
                        return true;
                    }
                    dropped += 1;
                    host.pages -= 1;
                    self.queued -= 1;
                    if q.from_input {
                        self.from_input -= 1;
                    }
                    if let Some(n) = self.queued_at.get_mut(&depth) {
                        *n -= 1;
                    }
                    false
                });
                // A host still listed in `ready` for a lane it no longer
                // has is passed over by `next_job`.
                !level.queue.is_empty()
            });
        }
        self.queued_at.retain(|_, n| *n > 0);
        dropped
    }

    pub(crate) fn robots_known(&mut self, key: &str, rules: Rules, now: Instant) {
        self.in_flight -= 1;
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        if let Some(crawl_delay) = rules.crawl_delay() {
            host.delay = host.delay.max(crawl_delay);
            host.crawl_delay = crawl_delay;
        }
        host.robots = match (rules, &host.robots) {
            (Rules::Unchecked, RobotsState::Fetching { recheck: true }) => RobotsState::Unknown,
            (rules, _) => RobotsState::Known(rules),
        };
        self.list(key.to_owned(), now);
    }

    /// The robots.txt rules of a host, known or coming.
    pub(crate) fn rules_ahead(&self, key: &str) -> RulesAhead<'_> {
        if self.limits.robots_agent.is_none() {
            return RulesAhead::NotAsked;
        }
        match self
            .hosts
            .get(key)
            .map(|h| (&h.robots, h.levels.is_empty()))
        {
            Some((RobotsState::Known(rules), _)) => RulesAhead::Known(rules),
            Some((RobotsState::Fetching { .. }, _)) | Some((RobotsState::Unknown, false)) => {
                RulesAhead::Coming
            }
            _ => RulesAhead::NotAsked,
        }
    }

    /// A host became trusted: robots.txt it was not allowed to ask for is
    /// asked for before its next page.
    pub(crate) fn recheck_robots(&mut self, key: &str) {
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        match &mut host.robots {
            RobotsState::Known(Rules::Unchecked) => host.robots = RobotsState::Unknown,
            RobotsState::Fetching { recheck } => *recheck = true,
            _ => {}
        }
    }

    pub(crate) fn finished(&mut self, key: &str, now: Instant) {
        self.in_flight -= 1;
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        let idle = host.in_flight == 0 && host.levels.is_empty();
        // Forget idle hosts, so that memory follows the hosts in play, not
        // every host the list ever named; but keep robots.txt rules, which
        // are fetched once per host for the run.
        let forgettable =
            self.limits.robots_agent.is_none() && host.not_before.is_none_or(|t| t <= now);
        if idle && forgettable {
            self.hosts.remove(key);
        } else {
            self.list(key.to_owned(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn limits(concurrency: usize, per_host: usize, delay_ms: u64) -> Limits {
        Limits {
            concurrency,
            per_host,
            delay: Duration::from_millis(delay_ms),
            rate: None,
            random_delay: false,
            max_queued: 1000,
            robots_agent: None,
            max_frontier: 1000,
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// The next job, which must be a page fetch.
    fn fetch(q: &mut Queues, now: Instant) -> Option<(String, Url)> {
        q.next_job(now, Some(u16::MAX)).map(|job| match job {
            Job::Fetch { host, url, .. } => (host, url),
            other => panic!("expected a fetch, got {other:?}"),
        })
    }

    #[test]
    fn a_host_is_full_at_its_share_and_a_gone_scans_pages_leave_the_queues() {
        let now = Instant::now();
        let mut q = Queues::new(limits(1, 2, 0));
        // Seqs 0..6 are scan 0's, 100.. scan 1's.
        for i in 0..3 {
            q.push_in_turn(url(&format!("http://h.test/{i}")), i, None, now);
            q.push_in_turn(url(&format!("http://h.test/x{i}")), 100 + i, None, now);
        }
        assert!(q.host_full("h.test:80") && !q.host_full("other.test:80"));
        assert_eq!(
            fetch(&mut q, now)
                .map(|(_, u)| u.path().to_owned())
                .as_deref(),
            Some("/0")
        );
        assert_eq!(q.drop_pages(|seq| seq < 100), 2);
        assert_eq!((q.queued, q.from_input), (3, 3));
        assert!(q.host_full("h.test:80"));
        assert_eq!(q.drop_pages(|seq| seq == 100), 1);
        assert!(q.host_full("h.test:80"), "2 queued: --per-host 2");
        q.finished("h.test:80", now);
        let next = fetch(&mut q, now).map(|(_, u)| u.path().to_owned());
        assert_eq!(next.as_deref(), Some("/x1"));
        assert!(!q.host_full("h.test:80"));
        q.finished("h.test:80", now);
        let next = fetch(&mut q, now).map(|(_, u)| u.path().to_owned());
        assert_eq!(next.as_deref(), Some("/x2"));
        assert!(q.is_empty() && q.lowest_depth().is_none());
    }

    #[test]
    fn hosts_take_turns_and_a_full_host_does_not_block_others() {
        let now = Instant::now();
        let mut q = Queues::new(limits(4, 2, 0));
        for i in 0..10 {
            q.push(url(&format!("http://slow.test/{i}")), 0, None, now);
        }
        q.push(url("http://a.test/1"), 0, None, now);
        q.push(url("http://b.test:8080/1"), 0, None, now);
        let mut started = Vec::new();
        while let Some((host, _)) = fetch(&mut q, now) {
            started.push(host);
        }
        // Two for the slow host (its limit), then the others; -c caps at 4.
        assert_eq!(
            started,
            ["slow.test:80", "a.test:80", "b.test:8080", "slow.test:80"]
        );
        assert_eq!(fetch(&mut q, now), None);
        q.finished("a.test:80", now);
        assert_eq!(
            fetch(&mut q, now),
            None,
            "slow.test is at its per-host limit"
        );
        q.finished("slow.test:80", now);
        assert_eq!(
            fetch(&mut q, now).map(|(h, u)| (h, u.path().to_owned())),
            Some(("slow.test:80".into(), "/2".into()))
        );
    }

    #[test]
    fn robots_first_then_pages_or_refusals() {
        let now = Instant::now();
        let mut q = Queues::new(Limits {
            robots_agent: Some("bot".into()),
            ..limits(8, 8, 0)
        });
        q.push(url("http://a.test/private/1"), 0, None, now);
        q.push(url("http://a.test/ok"), 0, None, now);
        assert!(matches!(
            q.next_job(now, Some(u16::MAX)),
            Some(Job::Robots(host, page)) if host == "a.test:80" && page.path() == "/private/1"
        ));
        assert!(
            q.next_job(now, Some(u16::MAX)).is_none(),
            "pages wait for robots.txt"
        );
        let robot =
            texting_robots::Robot::new("bot", b"User-agent: *\nDisallow: /private\nCrawl-delay: 1")
                .unwrap();
        q.robots_known("a.test:80", Rules::Parsed(Box::new(robot)), now);
        assert!(
            matches!(q.next_job(now, Some(u16::MAX)), Some(Job::Refuse(u, ..)) if u.path() == "/private/1")
        );
        assert_eq!(
            fetch(&mut q, now).map(|(_, u)| u.path().to_owned()),
            Some("/ok".into())
        );
        q.push(url("http://a.test/later"), 0, None, now);
        assert!(
            q.next_job(now, Some(u16::MAX)).is_none(),
            "Crawl-delay holds the next request"
        );
        assert_eq!(q.next_wake(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn a_host_trusted_while_its_robots_txt_was_refused_is_asked_again() {
        let now = Instant::now();
        let mut q = Queues::new(Limits {
            robots_agent: Some("bot".into()),
            ..limits(8, 8, 0)
        });
        q.push(url("http://a.test/found"), 0, None, now);
        assert!(matches!(
            q.next_job(now, Some(u16::MAX)),
            Some(Job::Robots(..))
        ));
        assert!(matches!(q.rules_ahead("a.test:80"), RulesAhead::Coming));
        // Listed while the guard was refusing the robots.txt request.
        q.push(url("http://a.test/listed"), 1, None, now);
        q.recheck_robots("a.test:80");
        q.robots_known("a.test:80", Rules::Unchecked, now);
        assert!(matches!(q.rules_ahead("a.test:80"), RulesAhead::Coming));
        assert!(matches!(
            q.next_job(now, Some(u16::MAX)),
            Some(Job::Robots(..))
        ));
        q.robots_known("a.test:80", Rules::AllowAll, now);
        assert!(matches!(
            q.rules_ahead("a.test:80"),
            RulesAhead::Known(Rules::AllowAll)
        ));
    }

    #[test]
    fn delay_spaces_the_starts_of_one_host() {
        let now = Instant::now();
        let mut q = Queues::new(limits(8, 8, 500));
        q.push(url("http://a.test/1"), 0, None, now);
        q.push(url("http://a.test/2"), 0, None, now);
        q.push(url("http://b.test/1"), 0, None, now);
        assert_eq!(fetch(&mut q, now).unwrap().0, "a.test:80");
        assert_eq!(fetch(&mut q, now).unwrap().0, "b.test:80");
        assert_eq!(fetch(&mut q, now), None);
        assert_eq!(q.next_wake(), Some(now + Duration::from_millis(500)));
        let later = now + Duration::from_millis(500);
        q.wake(later);
        assert_eq!(
            fetch(&mut q, later).map(|(_, u)| u.path().to_owned()),
            Some("/2".into())
        );
    }

    #[test]
    fn scripts_go_first_even_when_no_page_may_start_and_outlive_a_page_limit() {
        let now = Instant::now();
        let mut q = Queues::new(limits(2, 1, 0));
        q.push(url("http://a.test/page"), 0, None, now);
        q.push_script(url("http://cdn.test/x.js"), "http://a.test/".into(), now);
        q.push_script(url("http://a.test/app.js"), "http://a.test/".into(), now);
        // No page may start, scripts still do, and each host's limit holds.
        let job = q.next_job(now, None);
        assert!(
            matches!(job, Some(Job::Script { ref url, .. }) if url.host_str() == Some("cdn.test"))
        );
        let job = q.next_job(now, None);
        assert!(
            matches!(job, Some(Job::Script { ref referer, .. }) if &**referer == "http://a.test/")
        );
        assert!(q.next_job(now, Some(u16::MAX)).is_none(), "-c 2 is taken");
        q.finished("a.test:80", now);
        q.push_script(url("http://a.test/late.js"), "http://a.test/".into(), now);
        // --max-pages reached: pages go, scripts stay.
        assert_eq!(q.take_all().len(), 1);
        assert_eq!((q.queued, q.scripts), (0, 1));
        assert!(matches!(
            q.next_job(now, Some(u16::MAX)),
            Some(Job::Script { .. })
        ));
        q.push_script(url("http://b.test/y.js"), "http://a.test/".into(), now);
        assert_eq!(q.drop_scripts(), 1);
        assert!(q.is_empty());
    }

    #[test]
    fn a_rate_holds_every_host_and_says_when_to_wake() {
        let now = Instant::now();
        let mut q = Queues::new(Limits {
            rate: Some(Duration::from_millis(100)),
            ..limits(8, 8, 0)
        });
        q.push(url("http://a.test/1"), 0, None, now);
        q.push(url("http://b.test/1"), 0, None, now);
        assert_eq!(fetch(&mut q, now).unwrap().0, "a.test:80");
        assert_eq!(
            fetch(&mut q, now),
            None,
            "another host waits for the rate too"
        );
        assert_eq!(q.next_wake(), Some(now + Duration::from_millis(100)));
        let later = now + Duration::from_millis(100);
        assert_eq!(fetch(&mut q, later).unwrap().0, "b.test:80");
        assert_eq!(q.next_wake(), None, "nothing ready: no wake for the rate");
    }

    #[test]
    fn random_delay_never_waits_less_than_a_crawl_delay() {
        let now = Instant::now();
        let mut q = Queues::new(Limits {
            random_delay: true,
            robots_agent: Some("bot".into()),
            ..limits(8, 8, 0)
        });
        q.push(url("http://a.test/1"), 0, None, now);
        q.push(url("http://a.test/2"), 0, None, now);
        assert!(matches!(
            q.next_job(now, Some(u16::MAX)),
            Some(Job::Robots(..))
        ));
        let robot = texting_robots::Robot::new("bot", b"User-agent: *\nCrawl-delay: 2").unwrap();
        q.robots_known("a.test:80", Rules::Parsed(Box::new(robot)), now);
        assert!(fetch(&mut q, now).is_some());
        let wake = q.next_wake().expect("the host waits");
        assert!(wake >= now + Duration::from_secs(2), "{:?}", wake - now);
        assert!(wake <= now + Duration::from_secs(3));
    }

    fn at_depth(depth: u16) -> Option<Origin> {
        let seed = Origin::seed(&url("http://seed.test/"));
        Some(Origin {
            depth,
            referrer: (depth > 0).then(|| Arc::from("http://seed.test/")),
            ..seed
        })
    }

    #[test]
    fn lower_depths_first_and_hosts_take_turns_within_one() {
        let now = Instant::now();
        let mut q = Queues::new(limits(1, 1, 0));
        q.push(url("http://a.test/deep"), 0, at_depth(2), now);
        q.push(url("http://b.test/one"), 0, at_depth(1), now);
        q.push(url("http://a.test/one"), 0, at_depth(1), now);
        q.push(url("http://a.test/two"), 0, at_depth(1), now);
        assert_eq!(q.lowest_depth(), Some(1));
        let mut order = Vec::new();
        while let Some((host, u)) = fetch(&mut q, now) {
            order.push(u.path().to_owned());
            q.finished(&host, now);
        }
        assert_eq!(order, ["/one", "/one", "/two", "/deep"]);
        assert!(q.is_empty() && q.lowest_depth().is_none());

        // A cap keeps deeper queues waiting; a host busy at one depth is
        // not taken at another.
        let mut q = Queues::new(limits(4, 1, 0));
        q.push(url("http://a.test/x"), 0, at_depth(1), now);
        q.push(url("http://a.test/y"), 0, at_depth(2), now);
        q.push(url("http://b.test/z"), 0, at_depth(2), now);
        assert_eq!(q.next_job(now, Some(0)).map(|_| ()), None);
        assert_eq!(fetch(&mut q, now).unwrap().1.path(), "/x");
        assert_eq!(fetch(&mut q, now).unwrap().1.path(), "/z");
        assert!(fetch(&mut q, now).is_none(), "a.test is at its limit");
        // Seeds count against the input bound; discovered URLs do not.
        q.push(url("http://c.test/"), 0, at_depth(0), now);
        assert_eq!((q.queued, q.from_input), (2, 1));
        assert_eq!(q.take_all().len(), 2);
        assert_eq!((q.queued, q.from_input), (0, 0));
    }
}
