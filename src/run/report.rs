//! Accounting for the run: what happened to every input line, the summary
//! line on stderr, and the exit status derived from it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::error::ErrorKind;
use crate::output::PageResult;
use crate::run::stop::Cause;

/// Counts for the whole run, filled in as pages are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Pages fetched and parsed.
    pub pages_ok: u64,
    /// Pages (and invalid lines) that failed, by kind.
    pub failures: BTreeMap<ErrorKind, u64>,
    /// Script elements found on all pages.
    pub scripts: u64,
    /// Input lines skipped because the same URL came earlier.
    pub duplicates: u64,
    /// The part of the job this run did (`--shard K/N`), if not all.
    pub shard: Option<crate::shard::Shard>,
    /// With `shard`: input lines left to the other shards (their sites'
    /// URLs, duplicates included, and, but in shard 1, invalid lines).
    pub other_shards: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The run stopped early because the reader of standard output went
    /// away (`scriptscrape … | head`); not an error.
    pub output_closed: bool,
    /// The run was asked to stop (SIGINT, SIGTERM) before it completed.
    pub stopped: Option<Cause>,
    /// With `stopped` or `output_closed`: URLs read from the input that
    /// have no row (queued, in flight, or parsed but not written). Lines
    /// after them were not read.
    pub unfinished: u64,
    /// Pages of this run that came from the input (not found by a crawl
    /// or a sitemap), with a row written.
    pub listed: u64,
    /// With `--resume`: pages finished by the interrupted run and carried
    /// over (counted in the totals above too).
    pub resumed: u64,
    /// Body bytes read, decompressed, over the pages of this run.
    pub bytes: u64,
    /// Pages of this run by HTTP status class: index 0 for no response,
    /// 1–5 for 1xx–5xx.
    pub status_classes: [u64; 6],
    /// Time per page that made a request, first byte sent to last byte
    /// read, retries included.
    pub latency: Latencies,
    /// Listed URLs not fetched because `--max-pages` was reached (rows
    /// with error `max_pages`; not failures).
    pub not_fetched: u64,
    /// In crawl mode, what the links led to.
    pub crawl: Option<Crawled>,
    /// With `--fetch-scripts`: the scripts this run fetched.
    pub script_content: Option<crate::content::scripts::Tally>,
    /// With `--render`: what the browser did.
    pub render: Option<crate::render::Tally>,
    /// Discovered URLs that are not pages to scrape, by kind: not HTML (a
    /// PDF, an image), disallowed by robots.txt, or on a private address.
    /// They have rows, but a crawl that meets them has not failed.
    pub passed_over: BTreeMap<ErrorKind, u64>,
}

/// What a crawl's links led to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crawled {
    /// Distinct in-scope URLs found on pages (seeds not included).
    pub discovered: u64,
    /// Links not followed: out of scope, or filtered out by `--include` /
    /// `--exclude` (counted per page they appear on); and sitemap entries
    /// on another host than their sitemap's.
    pub off_scope: u64,
    /// Discovered URLs never fetched: `--max-pages` was reached, or the
    /// run was stopped.
    pub left: u64,
    /// Sitemaps read (`--sitemap`), index files included.
    pub sitemaps: u64,
    /// Sitemaps that could not be read (each also logged).
    pub sitemaps_failed: u64,
    /// Distinct URLs the sitemaps added as seeds.
    pub sitemap_urls: u64,
    /// Discovered URLs that waited on disk (the frontier past its memory
    /// bound).
    pub spilled: u64,
}

/// A histogram of durations in milliseconds with bounded memory: exact
/// below 128 ms, then 64 buckets per doubling (under 1.6 % error), so
/// percentiles over a million pages cost 14 KB, not a sorted list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latencies {
    counts: Vec<u64>,
    total: u64,
    max_ms: u64,
}

impl Latencies {
    const LINEAR: u64 = 128;
    const SUB: u64 = 64;

    fn bucket(ms: u64) -> usize {
        if ms < Self::LINEAR {
            return ms as usize;
        }
        // 2^e <= ms < 2^(e+1), e >= 7; 64 equal steps inside.
        let e = 63 - u64::from(ms.leading_zeros());
        let step = (ms >> (e - 6)) & (Self::SUB - 1);
        (Self::LINEAR + (e - 7) * Self::SUB + step) as usize
    }

    /// The largest value that falls in `bucket`.
    fn upper(bucket: usize) -> u64 {
        let b = bucket as u64;
        if b < Self::LINEAR {
            return b;
        }
        let e = (b - Self::LINEAR) / Self::SUB + 7;
        let step = (b - Self::LINEAR) % Self::SUB;
        ((Self::SUB + step + 1) << (e - 6)) - 1
    }

    /// Adds one duration.
    pub fn record(&mut self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let b = Self::bucket(ms);
        if self.counts.len() <= b {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        self.total += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `p`-th percentile (0–100) in milliseconds: the smallest bucket
    /// bound at or under which `p` % of the values lie; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::upper(b).min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    /// The largest duration recorded, in milliseconds.
    pub fn max_ms(&self) -> u64 {
        self.max_ms
    }
}

impl Summary {
    /// Accounts for one finished page.
    pub fn record(&mut self, page: &PageResult) {
        if page.seq < crate::schedule::FIRST_FOUND_SEQ {
            self.listed += 1;
        }
        self.bytes += page.bytes;
        let class = page.status.map_or(0, |s| usize::from(s / 100).clamp(1, 5));
        self.status_classes[class] += 1;
        if page.attempts > 0 {
            self.latency.record(page.elapsed);
        }
        match &page.outcome {
            Ok(scripts) => {
                self.scripts += scripts.len() as u64;
                match &page.incomplete {
                    // Its rows are written, but it failed.
                    Some(e) => *self.failures.entry(e.kind).or_default() += 1,
                    None => self.pages_ok += 1,
                }
            }
            Err(e) if e.kind == ErrorKind::MaxPages => self.not_fetched += 1,
            // Not a listed URL: found on a page or in a sitemap.
            Err(e) if e.kind.passed_over(page.referrer.is_some()) => {
                *self.passed_over.entry(e.kind).or_default() += 1
            }
            Err(e) => *self.failures.entry(e.kind).or_default() += 1,
        }
    }

    /// Pages that failed, all kinds together.
    pub fn pages_failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The process exit status this run maps to (see [`ExitStatus`]), when
    /// up to `max_failures_pct` percent of the pages may fail and still
    /// count as success (`--max-failures`).
    pub fn exit_status(&self, max_failures_pct: f64) -> ExitStatus {
        match self.stopped {
            Some(Cause::Interrupt) => return ExitStatus::Interrupted,
            Some(Cause::Terminate) => return ExitStatus::Terminated,
            None => {}
        }
        // A sitemap that cannot be read is a source the run could not use.
        if self.crawl.is_some_and(|c| c.sitemaps_failed > 0) && !self.output_closed {
            return ExitStatus::PagesFailed;
        }
        let failed = self.pages_failed();
        let total = failed + self.pages_ok;
        // Compared in whole numbers, so that 1 failure in 100 is exactly 1 %.
        let tolerated = failed as f64 * 100.0 <= max_failures_pct * total as f64;
        if failed == 0 || self.output_closed || tolerated {
            ExitStatus::Success
        } else {
            ExitStatus::PagesFailed
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let pages = self.pages_ok + self.pages_failed();
        write!(
            f,
            "{} ok, {} failed",
            count(self.pages_ok, "page"),
            self.pages_failed()
        )?;
        if !self.failures.is_empty() {
            let kinds: Vec<String> = self
                .failures
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        write!(f, ", {}", count(self.scripts, "script"))?;
        if let Some(render) = &self.render {
            write!(f, " ({} rendered", count(render.pages, "page"))?;
            if render.browsers > 1 {
                let restarts = count(render.browsers - 1, "time");
                write!(f, ", browser restarted {restarts}")?;
            }
            let refused = match (render.refused, render.connections_refused) {
                (0, 0) => None,
                (requests, 0) => Some(count(requests, "browser request")),
                (0, connections) => Some(count(connections, "browser connection")),
                (requests, connections) => Some(format!(
                    "{} and {}",
                    count(requests, "browser request"),
                    count(connections, "connection")
                )),
            };
            if let Some(refused) = refused {
                write!(f, ", {refused} refused by the private-network rule")?;
            }
            f.write_str(")")?;
        }
        if let Some(content) = &self.script_content {
            write!(
                f,
                " ({} fetched, {} without content",
                count(content.fetched, "distinct script"),
                content.failures()
            )?;
            if !content.failed.is_empty() {
                let kinds: Vec<String> = content
                    .failed
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                write!(f, ": {}", kinds.join(", "))?;
            }
            if content.over_limit > 0 {
                write!(
                    f,
                    "; {} not fetched (--max-scripts-per-page)",
                    count(content.over_limit, "script")
                )?;
            }
            write!(f, ")")?;
        }
        if self.resumed > 0 {
            write!(
                f,
                ", {} from the interrupted run",
                count(self.resumed, "page")
            )?;
        }
        if self.duplicates > 0 {
            write!(f, ", {} skipped", count(self.duplicates, "duplicate line"))?;
        }
        if let Some(shard) = self.shard {
            write!(
                f,
                ", {} left to other shards (--shard {shard})",
                count(self.other_shards, "line")
            )?;
        }
        if self.not_fetched > 0 {
            write!(
                f,
                ", {} not fetched (--max-pages)",
                count(self.not_fetched, "listed URL")
            )?;
        }
        if let Some(crawl) = self.crawl.filter(|c| c.sitemaps + c.sitemaps_failed > 0) {
            write!(
                f,
                ", {} read ({} listed)",
                count(crawl.sitemaps, "sitemap"),
                count(crawl.sitemap_urls, "URL")
            )?;
            if crawl.sitemaps_failed > 0 {
                write!(f, ", {} failed", count(crawl.sitemaps_failed, "sitemap"))?;
            }
        }
        if let Some(crawl) = &self.crawl {
            write!(
                f,
                ", {} discovered ({} left unfetched",
                count(crawl.discovered, "URL"),
                crawl.left
            )?;
            for (kind, n) in &self.passed_over {
                write!(f, ", {n} {kind}")?;
            }
            write!(f, ")")?;
        }
        // This run's pages: those carried over by --resume took no time here.
        let this_run = pages.saturating_sub(self.resumed);
        let rate = if secs > 0.0 {
            this_run as f64 / secs
        } else {
            0.0
        };
        write!(f, ", {secs:.1} s, {rate:.1} pages/s")?;
        if self.output_closed && self.stopped.is_none() {
            write!(
                f,
                "; standard output closed: {} not done, later input not read",
                count(self.unfinished, "URL")
            )?;
        }
        if let Some(cause) = self.stopped {
            write!(
                f,
                "; stopped by {}: {} not done, later input not read",
                cause.name(),
                count(self.unfinished, "URL")
            )?;
        }
        Ok(())
    }
}

impl Summary {
    /// Adds the counts an interrupted run left (`--resume`).
    pub fn carry(&mut self, earlier: &Summary) {
        self.pages_ok += earlier.pages_ok;
        self.scripts += earlier.scripts;
        for (kind, n) in &earlier.failures {
            *self.failures.entry(*kind).or_default() += n;
        }
        self.resumed += earlier.resumed;
    }
}

/// `1 page`, `2 pages`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How a run ends, as the process exit status that cron and scripts see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: every page was fetched and parsed.
    Success = 0,
    /// 1: the run completed, but more pages failed than `--max-failures`
    /// allows (by default, any).
    PagesFailed = 1,
    /// 2: the run could not run: bad arguments, unreadable input,
    /// unwritable output.
    Fatal = 2,
    /// 75 (EX_TEMPFAIL, "try again later"): another run holds the
    /// outputs' lock; nothing was done.
    Busy = 75,
    /// 130 (128 + SIGINT, as shells report it): stopped by SIGINT; the
    /// outputs so far are in `.part` files.
    Interrupted = 130,
    /// 143 (128 + SIGTERM): stopped by SIGTERM; the outputs so far are in
    /// `.part` files.
    Terminated = 143,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_within_bucket_precision() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        for ms in 1..=1000u64 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 1000);
        for (p, exact) in [(50.0, 500u64), (90.0, 900), (99.0, 990), (100.0, 1000)] {
            let got = l.percentile(p).unwrap();
            assert!(
                got >= exact && got as f64 <= exact as f64 * 1.016,
                "p{p}: {got} for {exact}"
            );
        }
        assert_eq!(l.max_ms(), 1000);
        // Exact below 128 ms.
        let mut small = Latencies::default();
        for ms in [3u64, 5, 7, 9] {
            small.record(Duration::from_millis(ms));
        }
        assert_eq!(small.percentile(50.0), Some(5));
        // Every bucket bound maps back to its bucket.
        for b in 0..2000 {
            assert_eq!(Latencies::bucket(Latencies::upper(b)), b);
        }
    }
    use crate::error::PageError;

    fn page(outcome: Result<Vec<crate::extract::Script>, PageError>) -> PageResult {
        PageResult {
            seq: 0,
            page_url: "https://a.test/".into(),
            final_url: None,
            status: None,
            outcome,
            csp: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            charset: None,
            attempts: 0,
            depth: 0,
            referrer: None,
            incomplete: None,
        }
    }

    #[test]
    fn exit_status_follows_failures() {
        let mut s = Summary::default();
        s.record(&page(Ok(vec![])));
        assert_eq!(s.exit_status(0.0), ExitStatus::Success);
        s.record(&page(Err(PageError::new(ErrorKind::Timeout, "slow"))));
        s.record(&page(Err(PageError::new(ErrorKind::Timeout, "slow"))));
        assert_eq!(s.exit_status(0.0), ExitStatus::PagesFailed);
        // 2 of 3 pages failed: 66.7 %.
        assert_eq!(s.exit_status(66.0), ExitStatus::PagesFailed);
        assert_eq!(s.exit_status(66.7), ExitStatus::Success);
        assert_eq!(s.exit_status(100.0), ExitStatus::Success);
        assert_eq!(s.pages_failed(), 2);
        assert!(
            s.to_string()
                .starts_with("1 page ok, 2 failed (2 timeout), 0 scripts")
        );
    }

    #[test]
    fn a_shard_says_which_it_is_and_what_it_left_to_the_others() {
        let mut s = Summary {
            duplicates: 2,
            ..Summary::default()
        };
        s.record(&page(Ok(vec![])));
        assert!(!s.to_string().contains("shard"), "{s}");
        s.shard = Some(crate::shard::Shard::new(2, 3).unwrap());
        s.other_shards = 14;
        assert!(
            s.to_string().starts_with(
                "1 page ok, 0 failed, 0 scripts, 2 duplicate lines skipped, \
                 14 lines left to other shards (--shard 2/3), "
            ),
            "{s}"
        );
        s.other_shards = 1;
        assert!(
            s.to_string().contains(", 1 line left to other shards"),
            "{s}"
        );
    }
}
