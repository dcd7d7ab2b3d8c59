//! The fetch stage's scheduler: which URL to request next, and when.
//!
//! URLs wait in per-host queues. A request starts whenever a global slot
//! (`-c`) is free and some host has a queued URL, a free per-host slot
//! (`--per-host`) and its `--delay` behind it. Ready hosts take turns, so a
//! long run of URLs for one slow host never holds back the others: while
//! any other host has work, no global slot sits idle waiting on a full host.
//!
//! With `--robots`, a host's first job is its robots.txt; its URLs wait
//! until the rules are known, then each is fetched or refused, and a
//! Crawl-delay raises the host's delay.
//!
//! A host is a URL's authority, host and port (as for robots.txt): two
//! servers on one machine are two hosts, and so are 127.0.0.1 and
//! 127.0.0.2. The queues hold at most `max_queued` URLs in all; past that
//! the scheduler stops reading input until requests drain them, which keeps
//! memory bounded whatever the length of the list.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use url::Url;

use crate::error::ErrorKind;
use crate::fetch::{FetchFailure, Fetched, Fetcher};
use crate::input::InputLine;
use crate::robots::{self, Rules};
use crate::stop::{Level, Stop};

/// The bounds the scheduler keeps.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests in flight in all (`-c`).
    pub concurrency: usize,
    /// Requests in flight to one host (`--per-host`).
    pub per_host: usize,
    /// Least time between the starts of two requests to one host.
    pub delay: Duration,
    /// URLs waiting in all the queues together.
    pub max_queued: usize,
    /// With `--robots`: the product token robots.txt groups are matched
    /// against.
    pub robots_agent: Option<String>,
}

/// What the fetch stage hands on for one input line.
#[derive(Debug)]
pub struct Completed {
    /// The input line's position among the lines passed on (see
    /// [`InputLine::seq`]).
    pub seq: u64,
    /// The normalised URL, or the raw line when it is not a URL.
    pub page_url: String,
    /// The response, or why there is none.
    pub fetch: Result<Fetched, FetchFailure>,
    /// From the start of the first request to the end of the body.
    pub elapsed: Duration,
}

impl Completed {
    /// A line that produced no request.
    fn without_request(seq: u64, page_url: String, kind: ErrorKind, detail: String) -> Self {
        Completed {
            seq,
            page_url,
            fetch: Err(FetchFailure::new(kind, detail)),
            elapsed: Duration::ZERO,
        }
    }
}

/// A request that finished, as the scheduler needs to hear of it.
enum Finished {
    Page(String, u64, Result<Completed, tokio::task::JoinError>),
    Robots(String, Rules),
}

/// How the fetch stage ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The input was exhausted and every URL has its result.
    Complete,
    /// The receiver of results went away.
    OutputClosed,
    /// Asked to stop: `unfinished` URLs were read but will have no result
    /// (queued, in flight past the grace period, or waiting in the line
    /// channel); the rest of the input was not read.
    Stopped { unfinished: u64 },
}

/// Fetches every URL from `lines`, within `limits`, and sends each result
/// to `out` as it completes. Invalid lines are passed on at once. Returns
/// when the input is exhausted and every request has finished, when `out`
/// is closed, or when `stop` says so: on draining, nothing new starts and
/// requests in flight have `grace` to finish.
pub async fn run(
    fetcher: Fetcher,
    mut lines: mpsc::Receiver<InputLine>,
    out: mpsc::Sender<Completed>,
    limits: Limits,
    stop: Stop,
    grace: Duration,
) -> Ended {
    let mut queues = Queues::new(limits.clone());
    let mut running: FuturesUnordered<BoxFuture<'static, Finished>> = FuturesUnordered::new();
    // Page requests among `running` (the rest are robots.txt fetches).
    let mut pages_running: u64 = 0;
    let mut input_open = true;
    let mut refused = Vec::new();
    let mut grace_ends: Option<Instant> = None;
    let mut unfinished: u64 = 0;
    loop {
        let now = Instant::now();
        if grace_ends.is_none() && stop.level() >= Level::Draining {
            grace_ends = Some(now + grace);
            unfinished += queues.clear() as u64;
            if input_open {
                // Lines already read count as unfinished; the reader sees
                // the channel closed at its next line and stops reading.
                lines.close();
                while lines.try_recv().is_ok() {
                    unfinished += 1;
                }
                input_open = false;
            }
        }
        if stop.level() == Level::Now || grace_ends.is_some_and(|end| now >= end) {
            // Dropping `running` aborts the requests still in flight.
            return Ended::Stopped {
                unfinished: unfinished + pages_running,
            };
        }
        queues.wake(now);
        while let Some(job) = queues.next_job(now) {
            let fetcher = fetcher.clone();
            match job {
                Job::Fetch(host, url, seq) => {
                    // Spawned, so that a request keeps making progress
                    // while this loop waits to hand a result on.
                    let task = AbortOnDrop(tokio::spawn(async move {
                        let started = Instant::now();
                        let fetch = fetcher.fetch(&url).await;
                        Completed {
                            seq,
                            page_url: url.into(),
                            fetch,
                            elapsed: started.elapsed(),
                        }
                    }));
                    pages_running += 1;
                    running.push(Box::pin(
                        async move { Finished::Page(host, seq, task.await) },
                    ));
                }
                Job::Robots(host, page) => {
                    let agent = limits.robots_agent.clone().unwrap_or_default();
                    let task = AbortOnDrop(tokio::spawn(async move {
                        robots::fetch_rules(&fetcher, &page, &agent).await
                    }));
                    running.push(Box::pin(async move {
                        let rules = task.await.unwrap_or_else(|e| {
                            Rules::DisallowAll(format!("robots.txt: internal error: {e}"))
                        });
                        Finished::Robots(host, rules)
                    }));
                }
                Job::Refuse(url, why, seq) => {
                    refused.push(Completed::without_request(
                        seq,
                        url.into(),
                        ErrorKind::RobotsDisallowed,
                        why,
                    ));
                }
            }
        }
        for done in refused.drain(..) {
            if out.send(done).await.is_err() {
                return Ended::OutputClosed;
            }
        }
        if !input_open && queues.is_empty() && running.is_empty() {
            return match grace_ends {
                None => Ended::Complete,
                Some(_) => Ended::Stopped { unfinished },
            };
        }
        let accepting = input_open && queues.queued < limits.max_queued;
        // A far-off deadline stands in for "no host is waiting on a delay".
        let wake_at = grace_ends
            .or_else(|| queues.next_wake())
            .unwrap_or_else(|| now + Duration::from_secs(3600));
        let next_level = match grace_ends {
            None => Level::Draining,
            Some(_) => Level::Now,
        };
        tokio::select! {
            Some(finished) = running.next(), if !running.is_empty() => match finished {
                Finished::Robots(host, rules) => queues.robots_known(&host, rules, Instant::now()),
                Finished::Page(host, seq, joined) => {
                    pages_running -= 1;
                    queues.finished(&host, Instant::now());
                    let done = joined.unwrap_or_else(|e| {
                        Completed::without_request(seq, host, ErrorKind::Io, format!("internal error: {e}"))
                    });
                    if out.send(done).await.is_err() {
                        return Ended::OutputClosed;
                    }
                }
            },
            line = lines.recv(), if accepting => match line {
                None => input_open = false,
                Some(InputLine { url: Ok(url), seq, .. }) => queues.push(url, seq, Instant::now()),
                Some(InputLine { raw, url: Err(why), seq }) => {
                    let done = Completed::without_request(seq, raw, ErrorKind::InvalidUrl, why);
                    if out.send(done).await.is_err() {
                        return Ended::OutputClosed;
                    }
                }
            },
            () = tokio::time::sleep_until(wake_at.into()) => {}
            () = stop.reached(next_level) => {}
        }
    }
}

/// What the scheduler wants done next.
#[derive(Debug, PartialEq)]
enum Job {
    /// Fetch this page of this host; the input line's position.
    Fetch(String, Url, u64),
    /// Fetch this host's robots.txt (the URL is any page of the host).
    Robots(String, Url),
    /// Report this page as refused by robots.txt, without a request.
    Refuse(Url, String, u64),
}

/// The per-host queues and the bookkeeping that decides the next request.
struct Queues {
    limits: Limits,
    hosts: HashMap<String, Host>,
    /// Hosts that may start a request now, in turn order.
    ready: VecDeque<String>,
    /// Hosts with work that wait for their delay to pass, soonest first.
    waiting: BinaryHeap<Reverse<(Instant, String)>>,
    /// URLs in all queues.
    queued: usize,
    /// Requests in flight in all.
    in_flight: usize,
}

struct Host {
    queue: VecDeque<Queued>,
    in_flight: usize,
    /// Least time between request starts: --delay, or a larger Crawl-delay.
    delay: Duration,
    /// The earliest start of this host's next request.
    not_before: Option<Instant>,
    /// Listed in `ready` or `waiting`, so that it is listed once.
    listed: bool,
    robots: RobotsState,
}

enum RobotsState {
    /// Not asked yet: the host's first job is its robots.txt.
    Unknown,
    /// Being fetched; the host's URLs wait.
    Fetching,
    /// Known (or not wanted: `AllowAll`).
    Known(Rules),
}

/// A queued URL, kept as its serialization: half a parsed `Url`'s
/// footprint, which matters when `max_queued` URLs wait behind one host.
struct Queued {
    url: Box<str>,
    seq: u64,
}

impl Queued {
    fn new(url: Url, seq: u64) -> Self {
        Queued {
            url: String::from(url).into_boxed_str(),
            seq,
        }
    }

    fn url(&self) -> Url {
        // The text is the serialization of a parsed http(s) URL, and the
        // URL standard guarantees that parsing such a serialization gives
        // back the same URL.
        Url::parse(&self.url).expect("a serialized URL parses")
    }
}

/// A URL's host for politeness: its authority.
fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

impl Queues {
    fn new(limits: Limits) -> Self {
        Queues {
            limits,
            hosts: HashMap::new(),
            ready: VecDeque::new(),
            waiting: BinaryHeap::new(),
            queued: 0,
            in_flight: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Empties every queue (hosts and their in-flight counts stay); returns
    /// how many URLs were dropped.
    fn clear(&mut self) -> usize {
        for host in self.hosts.values_mut() {
            host.queue.clear();
        }
        self.ready.clear();
        self.waiting.clear();
        for host in self.hosts.values_mut() {
            host.listed = false;
        }
        std::mem::take(&mut self.queued)
    }

    fn push(&mut self, url: Url, seq: u64, now: Instant) {
        let key = host_key(&url);
        let limits = &self.limits;
        let host = self.hosts.entry(key.clone()).or_insert_with(|| Host {
            queue: VecDeque::new(),
            in_flight: 0,
            delay: limits.delay,
            not_before: None,
            listed: false,
            robots: match limits.robots_agent {
                Some(_) => RobotsState::Unknown,
                None => RobotsState::Known(Rules::AllowAll),
            },
        });
        host.queue.push_back(Queued::new(url, seq));
        self.queued += 1;
        self.list(key, now);
    }

    /// Lists a host as ready or waiting, if it has work it may start.
    fn list(&mut self, key: String, now: Instant) {
        let Some(host) = self.hosts.get_mut(&key) else {
            return;
        };
        if host.listed
            || host.queue.is_empty()
            || host.in_flight >= self.limits.per_host
            || matches!(host.robots, RobotsState::Fetching)
        {
            return;
        }
        host.listed = true;
        match host.not_before {
            Some(t) if t > now => self.waiting.push(Reverse((t, key))),
            _ => self.ready.push_back(key),
        }
    }

    /// Moves hosts whose delay has passed to the ready list.
    fn wake(&mut self, now: Instant) {
        while let Some(Reverse((t, _))) = self.waiting.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, key))) = self.waiting.pop() else {
                break;
            };
            if let Some(host) = self.hosts.get_mut(&key) {
                host.listed = false;
            }
            self.list(key, now);
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse((t, _))| *t)
    }

    /// The next job, taking hosts in turn, or `None` when all slots are
    /// taken or no host may start one now.
    fn next_job(&mut self, now: Instant) -> Option<Job> {
        if self.in_flight >= self.limits.concurrency {
            return None;
        }
        loop {
            let key = self.ready.pop_front()?;
            let Some(host) = self.hosts.get_mut(&key) else {
                continue;
            };
            host.listed = false;
            if host.in_flight >= self.limits.per_host {
                continue;
            }
            let rules = match &host.robots {
                RobotsState::Unknown => {
                    let Some(page) = host.queue.front().map(Queued::url) else {
                        continue;
                    };
                    host.robots = RobotsState::Fetching;
                    host.in_flight += 1;
                    self.in_flight += 1;
                    return Some(Job::Robots(key, page));
                }
                RobotsState::Fetching => continue,
                RobotsState::Known(rules) => rules,
            };
            let Some((url, seq)) = host.queue.pop_front().map(|q| (q.url(), q.seq)) else {
                continue;
            };
            self.queued -= 1;
            if let Some(why) = rules.refusal(&url) {
                self.list(key, now);
                return Some(Job::Refuse(url, why, seq));
            }
            host.in_flight += 1;
            if !host.delay.is_zero() {
                host.not_before = Some(now + host.delay);
            }
            self.in_flight += 1;
            // To the back of the turn order, if it has more to do.
            self.list(key.clone(), now);
            return Some(Job::Fetch(key, url, seq));
        }
    }

    fn robots_known(&mut self, key: &str, rules: Rules, now: Instant) {
        self.in_flight -= 1;
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        if let Some(crawl_delay) = rules.crawl_delay() {
            host.delay = host.delay.max(crawl_delay);
        }
        host.robots = RobotsState::Known(rules);
        self.list(key.to_owned(), now);
    }

    fn finished(&mut self, key: &str, now: Instant) {
        self.in_flight -= 1;
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        host.in_flight -= 1;
        let idle = host.in_flight == 0 && host.queue.is_empty();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: usize, per_host: usize, delay_ms: u64) -> Limits {
        Limits {
            concurrency,
            per_host,
            delay: Duration::from_millis(delay_ms),
            max_queued: 1000,
            robots_agent: None,
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// The next job, which must be a page fetch.
    fn fetch(q: &mut Queues, now: Instant) -> Option<(String, Url)> {
        q.next_job(now).map(|job| match job {
            Job::Fetch(host, url, _) => (host, url),
            other => panic!("expected a fetch, got {other:?}"),
        })
    }

    #[test]
    fn hosts_take_turns_and_a_full_host_does_not_block_others() {
        let now = Instant::now();
        let mut q = Queues::new(limits(4, 2, 0));
        for i in 0..10 {
            q.push(url(&format!("http://slow.test/{i}")), 0, now);
        }
        q.push(url("http://a.test/1"), 0, now);
        q.push(url("http://b.test:8080/1"), 0, now);
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
        q.push(url("http://a.test/private/1"), 0, now);
        q.push(url("http://a.test/ok"), 0, now);
        assert_eq!(
            q.next_job(now),
            Some(Job::Robots(
                "a.test:80".into(),
                url("http://a.test/private/1")
            ))
        );
        assert_eq!(q.next_job(now), None, "pages wait for robots.txt");
        let robot =
            texting_robots::Robot::new("bot", b"User-agent: *\nDisallow: /private\nCrawl-delay: 1")
                .unwrap();
        q.robots_known("a.test:80", Rules::Parsed(Box::new(robot)), now);
        assert!(matches!(q.next_job(now), Some(Job::Refuse(u, _, _)) if u.path() == "/private/1"));
        assert_eq!(
            fetch(&mut q, now).map(|(_, u)| u.path().to_owned()),
            Some("/ok".into())
        );
        q.push(url("http://a.test/later"), 0, now);
        assert_eq!(q.next_job(now), None, "Crawl-delay holds the next request");
        assert_eq!(q.next_wake(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn delay_spaces_the_starts_of_one_host() {
        let now = Instant::now();
        let mut q = Queues::new(limits(8, 8, 500));
        q.push(url("http://a.test/1"), 0, now);
        q.push(url("http://a.test/2"), 0, now);
        q.push(url("http://b.test/1"), 0, now);
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
}
