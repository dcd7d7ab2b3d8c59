//! The shared queue end to end: `enqueue`, `work`, `collect` and `jobs`
//! as built, against loopback sites and a real redis-server per test.
//!
//! Each test holds the collected outputs against a local run of the same
//! list (as multisets of rows, `elapsed_ms` left out), and the site's
//! request counts against "each page once": whatever is killed, stopped
//! or restarted on the way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::redis::{RedisOptions, RedisServer};
use crate::support::{Run, Table, TestServer, rows_without, signal, wait_within};

/// The longest any process of these tests may take to end once it should.
const LIMIT: Duration = Duration::from_secs(30);

/// The binary started in the background, its standard output and error
/// kept in files; killed if it still runs when dropped, so that no test
/// leaves one behind, even when it fails.
struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    fn start(run: &Run, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let stdout = run.path(&format!("{name}.stdout"));
        let stderr = run.path(&format!("{name}.stderr"));
        let child = run
            .command(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start scriptscrape");
        Proc {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its exit status, waiting at most [`LIMIT`] (then killed: a failure).
    fn wait(&mut self) -> i32 {
        match wait_within(&mut self.child, LIMIT) {
            Some(status) => status.code().unwrap_or_else(|| {
                panic!("{} died of {status}; stderr:\n{}", self.name, self.stderr())
            }),
            None => panic!(
                "{} still ran after {LIMIT:?}; stderr:\n{}",
                self.name,
                self.stderr()
            ),
        }
    }

    /// Waits for it and checks it exited `code`.
    fn expect(&mut self, code: i32) {
        let got = self.wait();
        assert_eq!(
            got,
            code,
            "{} exit status; stderr:\n{}",
            self.name,
            self.stderr()
        );
    }

    /// SIGKILL, as a crash or an OOM kill would.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal(&self, sig: libc::c_int) {
        signal(&self.child, sig);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `done` until it holds, for at most [`LIMIT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `work` command line: the job, `extra`, and `-c 2` unless `extra`
/// says otherwise, so that pages are shared out.
fn work_args<'a>(redis: &'a str, job: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["work", "--redis", redis, "--job", job];
    args.extend_from_slice(extra);
    if !extra.contains(&"-c") {
        args.extend_from_slice(&["-c", "2"]);
    }
    args
}

fn worker(run: &Run, name: &str, redis: &str, job: &str, extra: &[&str]) -> Proc {
    Proc::start(run, name, &work_args(redis, job, extra), &[])
}

/// `collect` into `scripts-{tag}.csv` and `pages-{tag}.csv`, with `extra`.
fn collector(run: &Run, tag: &str, redis: &str, job: &str, extra: &[&str]) -> Proc {
    let (scripts, pages) = (format!("scripts-{tag}.csv"), format!("pages-{tag}.csv"));
    let mut args = vec![
        "collect", "--redis", redis, "--job", job, "-o", &scripts, "--pages", &pages,
    ];
    args.extend_from_slice(extra);
    Proc::start(run, &format!("collect-{tag}"), &args, &[])
}

/// Runs `enqueue` to its end and checks it succeeded; returns its stderr.
fn enqueue(run: &Run, redis: &str, job: &str, extra: &[&str]) -> String {
    let mut args = vec!["enqueue", "--redis", redis, "--job", job];
    args.extend_from_slice(extra);
    let out = run.run(&args, None);
    assert_eq!(out.code, 0, "enqueue {extra:?}: {}", out.stderr);
    out.stderr
}

/// The `jobs` listing, one map of column to value per job.
fn jobs(run: &Run, redis: &str) -> Vec<HashMap<String, String>> {
    let out = run.run(&["jobs", "--redis", redis], None);
    assert_eq!(out.code, 0, "jobs: {}", out.stderr);
    let text = String::from_utf8(out.stdout).expect("UTF-8 listing");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(h, v)| ((*h).to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// One job's line of the listing.
fn job_line(run: &Run, redis: &str, job: &str) -> HashMap<String, String> {
    jobs(run, redis)
        .into_iter()
        .find(|j| j["job"] == job)
        .unwrap_or_else(|| panic!("job {job} not listed"))
}

/// A count of a job's line.
fn count(line: &HashMap<String, String>, column: &str) -> u64 {
    line[column].parse().expect("a count")
}

/// What a run wrote: its page report and scripts.
struct Outputs {
    pages: Table,
    scripts: Table,
}

impl Outputs {
    fn read(run: &Run, tag: &str) -> Outputs {
        Outputs {
            pages: Table::read(&run.path(&format!("pages-{tag}.csv"))),
            scripts: Table::read(&run.path(&format!("scripts-{tag}.csv"))),
        }
    }
}

/// A local run of `lists` with `extra`, into the `local` outputs; returns
/// them with its exit status.
fn local(run: &Run, lists: &[&str], extra: &[&str]) -> (Outputs, i32) {
    let mut args = lists.to_vec();
    args.extend_from_slice(&["-o", "scripts-local.csv", "--pages", "pages-local.csv"]);
    args.extend_from_slice(extra);
    let out = run.run(&args, None);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    (Outputs::read(run, "local"), out.code)
}

/// The collected outputs hold the local run's rows, each once: the same
/// columns, the same multisets of rows (`elapsed_ms` aside).
fn assert_same(local: &Outputs, queued: &Outputs) {
    assert_eq!(queued.pages.headers, local.pages.headers);
    assert_eq!(queued.scripts.headers, local.scripts.headers);
    assert_eq!(
        rows_without(&queued.pages, &["elapsed_ms"]),
        rows_without(&local.pages, &["elapsed_ms"]),
        "page reports differ"
    );
    assert_eq!(
        rows_without(&queued.scripts, &[]),
        rows_without(&local.scripts, &[]),
        "scripts differ"
    );
    let mut urls = queued.pages.column("page_url");
    let all = urls.len();
    urls.sort_unstable();
    urls.dedup();
    assert_eq!(urls.len(), all, "a page written twice");
}

/// The requests made between two snapshots of a server's counts.
fn since(
    before: &HashMap<String, usize>,
    after: &HashMap<String, usize>,
) -> HashMap<String, usize> {
    after
        .iter()
        .map(|(path, n)| (path.clone(), n - before.get(path).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The paths of the `http://…` URLs among `lines`.
fn paths(lines: &[String]) -> Vec<String> {
    let mut paths: Vec<String> = lines
        .iter()
        .filter_map(|l| url::Url::parse(l).ok())
        .filter(|u| u.scheme() == "http")
        .map(|u| u.path().to_owned())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Each of `paths` was requested exactly once between the snapshots, and
/// nothing else was.
fn assert_each_once(asked: &HashMap<String, usize>, paths: &[String]) {
    let expected: HashMap<String, usize> = paths.iter().map(|p| (p.clone(), 1)).collect();
    assert_eq!(asked, &expected, "requests made by the workers");
}

#[test]
fn three_workers_and_a_collector_write_what_a_local_run_writes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    // Two lists, enqueued one after the other: an invalid line, a line
    // twice, a fragment of a listed page, a 404, and in the second list
    // pages the first had already.
    let mut first = vec!["not a url".to_owned()];
    first.extend((0..16).map(|n| site.url(&format!("/gen/{n}"))));
    first.push(site.url("/gen/3"));
    first.push(site.url("/gen/5#top"));
    first.push(site.url("/status/404"));
    let mut second: Vec<String> = (12..24).map(|n| site.url(&format!("/gen/{n}"))).collect();
    second.push("mailto:someone@example.com".to_owned());
    let first_list = run.urls("first.txt", &first);
    let second_list = run.urls("second.txt", &second);

    let said = enqueue(&run, &url, "nightly", &[&first_list]);
    assert!(said.contains("job created"), "{said}");
    let line = job_line(&run, &url, "nightly");
    assert_eq!(line["state"], "open");
    // Refused while it has work, whatever the collector has done.
    let out = run.run(&["jobs", "--redis", &url, "--delete", "nightly"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not finished"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    let before = site.all_hits();
    let mut workers: Vec<Proc> = (1..=3)
        .map(|i| worker(&run, &format!("worker-{i}"), &url, "nightly", &[]))
        .collect();
    let mut collect = collector(&run, "queue", &url, "nightly", &[]);
    let said = enqueue(&run, &url, "nightly", &[&second_list, "--close"]);
    assert!(said.contains("job closed"), "{said}");
    for w in &mut workers {
        w.expect(0);
        assert!(w.stderr().contains("the job is drained"), "{}", w.stderr());
        // Results go to Redis, never to standard output.
        assert_eq!(w.stdout(), "");
    }
    let collected = collect.wait();
    let asked = since(&before, &site.all_hits());

    let (local, local_code) = local(&run, &[&first_list, &second_list], &[]);
    assert_eq!(collected, local_code, "{}", collect.stderr());
    let queued = Outputs::read(&run, "queue");
    assert_same(&local, &queued);
    assert_eq!(queued.pages.rows_where("error", "invalid_url").len(), 2);
    // Every page once, across the three workers.
    let mut lines = first.clone();
    lines.extend(second.iter().cloned());
    assert_each_once(&asked, &paths(&lines));

    // The job is finished; its counts are the page report's.
    let line = job_line(&run, &url, "nightly");
    let failed = queued.pages.rows.len() - queued.pages.rows_where("error", "").len();
    assert_eq!(line["state"], "finished", "{line:?}");
    assert_eq!(count(&line, "failed"), failed as u64, "{line:?}");
    assert_eq!(
        count(&line, "done") + count(&line, "failed"),
        queued.pages.rows.len() as u64,
        "{line:?}"
    );
    for column in ["queued", "in_flight", "results_waiting"] {
        assert_eq!(count(&line, column), 0, "{line:?}");
    }

    // An unfinished job is refused without --force, removed with it; the
    // finished one goes at once.
    enqueue(&run, &url, "other", &[&first_list]);
    let out = run.run(&["jobs", "--redis", &url, "--delete", "other"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not finished"), "{}", out.stderr);
    assert_eq!(jobs(&run, &url).len(), 2);
    let out = run.run(
        &["jobs", "--redis", &url, "--delete", "other", "--force"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run.run(&["jobs", "--redis", &url, "--delete", "nightly"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(jobs(&run, &url).is_empty());
}

/// Paths of `/slow-gen/{ms}/{n}` pages, `n` in `range`.
fn slow_pages(site: &TestServer, ms: u64, range: std::ops::Range<u64>) -> Vec<String> {
    range
        .map(|n| site.url(&format!("/slow-gen/{ms}/{n}")))
        .collect()
}

/// Requests made so far to paths starting with `prefix`.
fn asked(site: &TestServer, prefix: &str) -> usize {
    site.all_hits()
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn a_killed_worker_and_a_killed_collector_lose_nothing_and_double_nothing() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let mut lines = slow_pages(&site, 150, 0..30);
    lines.push("not a url".to_owned());
    let list = run.urls("list.txt", &lines);
    enqueue(&run, &url, "crash", &[&list, "--close"]);

    // Worker A takes work and dies (SIGKILL) holding some; collector 1
    // writes some rows and dies too.
    let mut a = worker(&run, "worker-a", &url, "crash", &[]);
    let mut first = collector(&run, "queue", &url, "crash", &[]);
    wait_until("worker A fetching and collector 1 writing", || {
        asked(&site, "/slow-gen/") >= 3
            && crate::support::lines(&run.path("pages-queue.csv.part")) >= 3
    });
    // A holds a few URLs per request slot (-c 2), not the whole job: the
    // rest stays for other workers.
    let held = count(&job_line(&run, &url, "crash"), "in_flight");
    assert!((1..=4).contains(&held), "worker A holds {held} URLs");
    a.kill();
    first.kill();
    let written = Table::read(&run.path("pages-queue.csv.part")).rows.len();
    assert!(written >= 2 && written < lines.len(), "{written} rows");

    // B claims A's work once it has been idle for 1 s; collector 2 goes on
    // from the .part files.
    let mut b = worker(
        &run,
        "worker-b",
        &url,
        "crash",
        &["--claim-idle", "1", "-c", "4"],
    );
    let mut second = collector(&run, "queue", &url, "crash", &["--resume"]);
    b.expect(0);
    let collected = second.wait();

    let (local, local_code) = local(&run, &[&list], &[]);
    let hits = site.all_hits();
    assert_eq!(collected, local_code, "{}", second.stderr());
    assert_same(&local, &Outputs::read(&run, "queue"));
    assert_eq!(job_line(&run, &url, "crash")["state"], "finished");
    // Each page asked once by the workers and once by the local run,
    // but those A held when it died, which B asked again.
    let mut twice = 0;
    for path in paths(&lines) {
        match hits.get(&path).copied().unwrap_or(0) {
            2 => {}
            3 => twice += 1,
            n => panic!("{path} asked {n} times"),
        }
    }
    // At most what A could hold (-c 2, so 4) when it died.
    assert!(twice <= 4, "{twice} pages asked again");
}

#[test]
fn a_worker_waiting_for_the_collector_keeps_its_pages() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let lines: Vec<String> = (0..3).map(|n| site.url(&format!("/gen/{n}"))).collect();
    let list = run.urls("list.txt", &lines);
    enqueue(&run, &url, "slow-collector", &[&list, "--close"]);

    // No collector yet: past one result waiting, the worker waits with
    // its last page, for longer than its --claim-idle.
    let mut a = worker(
        &run,
        "worker",
        &url,
        "slow-collector",
        &["--max-results", "1", "--claim-idle", "2", "-c", "1"],
    );
    wait_until("the worker waiting for the collector", || {
        paths(&lines).iter().all(|p| site.hits(p) == 1)
            && count(&job_line(&run, &url, "slow-collector"), "results_waiting") == 2
    });
    // Long enough for an untouched entry to be claimed (idle past 2 s,
    // then the worker's next take, at most 2 s later); the heartbeat
    // touches what is held every 2/3 s.
    std::thread::sleep(Duration::from_secs(4));
    let mut collect = collector(&run, "queue", &url, "slow-collector", &[]);
    a.expect(0);
    collect.expect(0);

    // Held all along: not taken over, not fetched again.
    let (local, _) = local(&run, &[&list], &[]);
    assert_same(&local, &Outputs::read(&run, "queue"));
    for path in paths(&lines) {
        assert_eq!(
            site.hits(&path),
            2,
            "{path}: once by the worker, once locally"
        );
    }
    assert!(a.stderr().contains("3 pages published"), "{}", a.stderr());
}

#[test]
fn a_stalling_page_whose_workers_die_becomes_a_delivery_limit_row() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let good: Vec<String> = (0..5).map(|n| site.url(&format!("/gen/{n}"))).collect();
    let poison = site.url("/stall-headers");
    let mut lines = good.clone();
    lines.insert(2, poison.clone());
    let list = run.urls("list.txt", &lines);
    enqueue(&run, &url, "poison", &[&list, "--close"]);

    // A publishes the good pages and hangs on the poison one; it dies.
    let mut collect = collector(&run, "queue", &url, "poison", &[]);
    let mut a = worker(&run, "worker-a", &url, "poison", &["-c", "8"]);
    wait_until(
        "worker A done with the good pages, stuck on the bad one",
        || site.hits("/stall-headers") == 1 && count(&job_line(&run, &url, "poison"), "done") == 5,
    );
    a.kill();

    // B claims it after 1 s idle: its second delivery, past the limit.
    let mut b = worker(
        &run,
        "worker-b",
        &url,
        "poison",
        &["--claim-idle", "1", "--max-deliveries", "1"],
    );
    b.expect(0);
    assert!(
        b.stderr().contains("1 pages published (1 failed)"),
        "{}",
        b.stderr()
    );
    assert_eq!(collect.wait(), 1, "a failed page: {}", collect.stderr());
    assert_eq!(site.hits("/stall-headers"), 1, "fetched again");

    let queued = Outputs::read(&run, "queue");
    let row = queued.pages.rows_where("page_url", &poison);
    assert_eq!(row.len(), 1);
    let get = |column| queued.pages.get(row[0], column);
    assert_eq!(get("error"), "delivery_limit");
    assert!(
        get("error_detail").contains("--max-deliveries 1"),
        "{}",
        get("error_detail")
    );
    assert_eq!(
        (get("status"), get("scripts"), get("depth")),
        ("", "0", "0")
    );
    let line = job_line(&run, &url, "poison");
    assert_eq!(
        (line["state"].as_str(), count(&line, "failed")),
        ("finished", 1)
    );

    // The other pages are a local run's.
    let good_list = run.urls("good.txt", &good);
    let (local, _) = local(&run, &[&good_list], &[]);
    let mut without = queued;
    without.pages.rows.retain(|r| r[0] != poison);
    assert_same(&local, &without);
}

#[test]
fn a_terminated_worker_gives_its_unstarted_work_back_at_once() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let lines = slow_pages(&site, 300, 0..16);
    let list = run.urls("list.txt", &lines);
    enqueue(&run, &url, "drain", &[&list, "--close"]);

    let mut collect = collector(&run, "queue", &url, "drain", &[]);
    let mut a = worker(&run, "worker-a", &url, "drain", &["-v"]);
    wait_until("worker A fetching", || asked(&site, "/slow-gen/") >= 1);
    a.signal(libc::SIGTERM);
    a.expect(143);
    assert!(
        a.stderr().contains("given back to the job"),
        "{}",
        a.stderr()
    );

    // B would wait 300 s for work a dead worker held: what A gave back
    // it takes at once, and not as a second delivery (which
    // --max-deliveries 1 would turn into a failed page).
    let mut b = worker(
        &run,
        "worker-b",
        &url,
        "drain",
        &["--claim-idle", "300", "--max-deliveries", "1", "-c", "8"],
    );
    b.expect(0);
    let collected = collect.wait();
    let asked = site.all_hits();
    let (local, local_code) = local(&run, &[&list], &[]);
    assert_eq!(collected, local_code, "{}", collect.stderr());
    assert_same(&local, &Outputs::read(&run, "queue"));
    // A finished what it had started; nothing was fetched twice.
    assert_each_once(&asked, &paths(&lines));
}

/// Lines of `text` that say Redis could not be reached.
fn unreachable_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("is unreachable"))
        .count()
}

/// `proc` said, once or more, that Redis was unreachable, then that it is
/// back; and never showed a stack or a panic.
fn assert_said_outage(proc: &Proc) {
    let text = proc.stderr();
    assert!(unreachable_lines(&text) >= 1, "{}: {text}", proc.name);
    assert!(text.contains("Redis is back"), "{}: {text}", proc.name);
    assert!(!text.contains("panicked"), "{}: {text}", proc.name);
}

#[test]
fn redis_restarted_mid_job_loses_and_doubles_nothing() {
    let mut redis = RedisServer::start_with(RedisOptions::default().append_only());
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let mut lines = slow_pages(&site, 100, 0..40);
    lines.insert(7, "not a url".to_owned());
    let list = run.urls("list.txt", &lines);
    enqueue(&run, &url, "outage", &[&list, "--close"]);

    let mut collect = collector(&run, "queue", &url, "outage", &[]);
    // One request each: still at work when Redis goes.
    let mut workers: Vec<Proc> = (1..=2)
        .map(|i| worker(&run, &format!("worker-{i}"), &url, "outage", &["-c", "1"]))
        .collect();
    wait_until("some pages collected", || {
        crate::support::lines(&run.path("pages-queue.csv.part")) >= 6
    });
    // Stopped as an operator would (what it acknowledged is in its
    // append-only file), down for a while, then back.
    redis.stop();
    wait_until("the workers and the collector noticing", || {
        workers.iter().all(|w| unreachable_lines(&w.stderr()) > 0)
            && unreachable_lines(&collect.stderr()) > 0
    });
    redis.restart();
    for w in &mut workers {
        w.expect(0);
        assert_said_outage(w);
    }
    let collected = collect.wait();
    assert_said_outage(&collect);
    // Pages went on being fetched while Redis was down: each once.
    let asked = site.all_hits();
    assert_each_once(&asked, &paths(&lines));

    let (local, local_code) = local(&run, &[&list], &[]);
    assert_eq!(collected, local_code, "{}", collect.stderr());
    assert_same(&local, &Outputs::read(&run, "queue"));
    assert_eq!(job_line(&run, &url, "outage")["state"], "finished");
}

#[test]
fn redis_unreachable_at_start_is_waited_for() {
    let mut redis = RedisServer::start_with(RedisOptions::default().append_only());
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let first: Vec<String> = (0..6).map(|n| site.url(&format!("/gen/{n}"))).collect();
    let second: Vec<String> = (6..12).map(|n| site.url(&format!("/gen/{n}"))).collect();
    let first_list = run.urls("first.txt", &first);
    let second_list = run.urls("second.txt", &second);
    enqueue(&run, &url, "late", &[&first_list]);
    redis.stop();

    // Everything starts while Redis is down: each says so, once.
    let mut procs = vec![
        worker(&run, "worker", &url, "late", &[]),
        collector(&run, "queue", &url, "late", &[]),
        Proc::start(
            &run,
            "enqueue",
            &[
                "enqueue",
                "--redis",
                &url,
                "--job",
                "late",
                &second_list,
                "--close",
            ],
            &[],
        ),
    ];
    wait_until("each saying Redis is unreachable", || {
        procs.iter().all(|p| unreachable_lines(&p.stderr()) > 0)
    });
    redis.restart();
    for p in &mut procs {
        let code = p.wait();
        let text = p.stderr();
        assert_eq!(unreachable_lines(&text), 1, "{}: {text}", p.name);
        assert!(
            text.contains("Redis is back; connecting: going on"),
            "{}: {text}",
            p.name
        );
        if p.name != "collect-queue" {
            assert_eq!(code, 0, "{}: {text}", p.name);
        }
    }
    let (local, local_code) = local(&run, &[&first_list, &second_list], &[]);
    assert_eq!(procs[1].wait(), local_code);
    assert_same(&local, &Outputs::read(&run, "queue"));
}

#[test]
fn a_crawl_through_the_queue_fetches_each_url_once_and_finds_what_a_local_crawl_finds() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    // A diamond beside the generated site (a tree to depth 2, whose
    // links back up are to pages seen already): d is one hop from both b
    // and c, and its referrer is whichever of them was parsed first.
    site.set_page(
        "a",
        "<a href=/page/b>b</a><a href=/page/c>c</a><script src=/a.js></script>",
    );
    site.set_page(
        "b",
        "<a href=d>d</a><a href=/page/a>a</a><script>b()</script>",
    );
    site.set_page("c", "<a href=/page/d#x>d</a><script>c()</script>");
    site.set_page("d", "<a href=/page/a>a</a><script src=/d.js></script>");
    let seeds = [site.url("/site/0"), site.url("/page/a")];
    let list = run.urls("seeds.txt", &seeds);
    let diamond = site.url("/page/d");
    let referrers = [site.url("/page/b"), site.url("/page/c")];

    enqueue(&run, &url, "crawl", &[&list, "--close"]);
    let mut collect = collector(&run, "queue", &url, "crawl", &[]);
    let mut workers: Vec<Proc> = (1..=3)
        .map(|i| {
            worker(
                &run,
                &format!("worker-{i}"),
                &url,
                "crawl",
                &["--depth", "2"],
            )
        })
        .collect();
    for w in &mut workers {
        w.expect(0);
    }
    let collected = collect.wait();
    let asked = site.all_hits();

    // No page fetched twice across the workers; robots.txt once by each
    // worker at most (each obeys it on its own).
    for (path, n) in &asked {
        if path == "/robots.txt" {
            assert!(*n <= workers.len(), "robots.txt asked {n} times");
        } else {
            assert_eq!(*n, 1, "{path} asked {n} times");
        }
    }
    // 0, its ten children and theirs, /json; the diamond.
    assert_eq!(
        asked.len() - usize::from(asked.contains_key("/robots.txt")),
        112 + 4
    );

    let (local, local_code) = local(&run, &[&list], &["--depth", "2"]);
    assert_eq!(collected, local_code, "{}", collect.stderr());
    let mut queued = Outputs::read(&run, "queue");
    // Depths are the same (every path to a page here has one length);
    // the diamond's referrer depends on which of its parents was parsed
    // first, in a local crawl as through the queue.
    let mut local = local;
    for outputs in [&mut queued, &mut local] {
        let row = outputs.pages.rows_where("page_url", &diamond);
        assert_eq!(row.len(), 1);
        let referrer = outputs.pages.get(row[0], "referrer").to_owned();
        assert!(referrers.contains(&referrer), "{referrer}");
        let column = outputs.pages.headers.iter().position(|h| h == "referrer");
        outputs.pages.rows[row[0]][column.expect("referrer column")] = String::new();
    }
    assert_same(&local, &queued);
    let depths = queued.pages.column("depth");
    for depth in ["0", "1", "2"] {
        assert!(depths.contains(&depth), "{depths:?}");
    }
}

/// Every file under `dir` (outputs, stats, logs) whose bytes hold `secret`.
fn files_holding(dir: &std::path::Path, secret: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the run's directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            found.extend(files_holding(&path, secret));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_password_is_used_from_the_url_or_the_environment_and_never_shown() {
    const SECRET: &str = "hunter2-Qx7vZ";
    let redis = RedisServer::start_with(RedisOptions::default().password(SECRET));
    let url = redis.url();
    assert!(url.contains(SECRET));
    let bare = format!("redis://127.0.0.1:{}/", redis.port());
    let wrong = format!("redis://:wrong-Kp3w@127.0.0.1:{}/", redis.port());
    let site = TestServer::start();
    let run = Run::new();
    let lines: Vec<String> = (0..4).map(|n| site.url(&format!("/gen/{n}"))).collect();
    let list = run.urls("list.txt", &lines);
    let env = [("SCRIPTSCRAPE_REDIS_URL", url.as_str())];

    // In the URL (enqueue, collect) and in the environment (work, jobs),
    // with every log line asked for.
    let said = enqueue(&run, &url, "secret", &[&list, "--close", "-vv"]);
    assert!(!said.contains(SECRET), "{said}");
    let mut w = Proc::start(&run, "worker", &["work", "--job", "secret", "-vvv"], &env);
    let mut collect = collector(
        &run,
        "queue",
        &url,
        "secret",
        &["--stats", "stats.json", "-vv"],
    );
    w.expect(0);
    collect.expect(0);
    let mut listing = Proc::start(&run, "jobs", &["jobs"], &env);
    listing.expect(0);
    assert!(
        listing.stdout().contains("secret\t0\t0\t4\t0\t0\tfinished"),
        "{}",
        listing.stdout()
    );
    let (local, _) = local(&run, &[&list], &[]);
    assert_same(&local, &Outputs::read(&run, "queue"));

    // Without the password, or with a wrong one: refused, in one line
    // that does not show what was tried.
    for (tag, redis_url, says) in [
        ("none", &bare, "the server needs a password"),
        ("wrong", &wrong, "redis://***@127.0.0.1"),
    ] {
        let mut p = Proc::start(
            &run,
            &format!("jobs-{tag}"),
            &["jobs", "--redis", redis_url],
            &[],
        );
        assert_eq!(p.wait(), 2, "{}", p.stderr());
        assert_eq!(p.stderr().lines().count(), 1, "{}", p.stderr());
        assert!(p.stderr().contains(says), "{}", p.stderr());
    }
    assert_eq!(files_holding(run.dir.path(), SECRET), Vec::<PathBuf>::new());
    assert_eq!(
        files_holding(run.dir.path(), "wrong-Kp3w"),
        Vec::<PathBuf>::new()
    );
}

/// A listed URL is fetched and reported as spelt, as a local list run
/// does, though the job knows it by its crawl form (/gen/%33 is /gen/3).
/// (Two spellings of one
/// page, /gen/1 and /gen/%31, are two pages to a local list run and one to
/// a job, as to a local crawl: enqueue cannot tell whether workers crawl.)
#[test]
fn listed_spellings_are_kept_as_a_local_list_run_keeps_them() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let lines = [
        site.url("/gen/1"),
        site.url("/gen/2?"),
        site.url("/gen/%33"),
        site.url("/gen/4?a=1&&b=2"),
    ];
    let list = run.urls("list.txt", &lines);
    enqueue(&run, &url, "spellings", &[&list, "--close"]);
    let mut w = worker(&run, "worker", &url, "spellings", &[]);
    let mut collect = collector(&run, "queue", &url, "spellings", &[]);
    w.expect(0);
    collect.expect(0);
    let (local, _) = local(&run, &[&list], &[]);
    assert_same(&local, &Outputs::read(&run, "queue"));
}

/// Workers and the collector started before the job exists (a scheduler
/// starts them in any order) wait for it, saying so once, then do it.
#[test]
fn workers_and_collector_started_before_enqueue_wait_for_the_job() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let lines: Vec<String> = (0..6).map(|i| site.url(&format!("/gen/{i}"))).collect();
    let list = run.urls("list.txt", &lines);
    let mut w = worker(&run, "early", &url, "later", &[]);
    let mut collect = collector(&run, "queue", &url, "later", &[]);
    wait_until("the worker and the collector to say they wait", || {
        w.stderr().contains("waiting for scriptscrape enqueue")
            && collect
                .stderr()
                .contains("waiting for scriptscrape enqueue")
    });
    enqueue(&run, &url, "later", &[&list, "--close"]);
    w.expect(0);
    collect.expect(0);
    for p in [&w, &collect] {
        assert_eq!(
            p.stderr()
                .matches("waiting for scriptscrape enqueue")
                .count(),
            1
        );
    }
    let (local, _) = local(&run, &[&list], &[]);
    assert_same(&local, &Outputs::read(&run, "queue"));
}

/// What would lose or replace written pages is refused, files untouched:
/// collecting a finished job again, a second collector of a job, and a
/// killed collect's `.part` files started over without `--resume` or
/// continued for a job of the same name created anew.
#[test]
fn a_collect_that_would_lose_or_replace_pages_is_refused() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let fast: Vec<String> = (0..4).map(|i| site.url(&format!("/gen/{i}"))).collect();
    let list = run.urls("list.txt", &fast);
    enqueue(&run, &url, "once", &[&list, "--close"]);
    worker(&run, "w", &url, "once", &[]).expect(0);
    collector(&run, "done", &url, "once", &[]).expect(0);
    let before = std::fs::read(run.path("pages-done.csv")).unwrap();
    for extra in [&[][..], &["--resume"][..]] {
        let mut again = collector(&run, "done", &url, "once", extra);
        again.expect(2);
        assert!(
            again.stderr().contains("nothing left to collect"),
            "{}",
            again.stderr()
        );
    }
    assert_eq!(std::fs::read(run.path("pages-done.csv")).unwrap(), before);

    // A collector holding slow results back: killed, its .part left.
    let slow = slow_pages(&site, 300, 0..8);
    let list = run.urls("slow.txt", &slow);
    enqueue(&run, &url, "slow", &[&list, "--close"]);
    let mut w = worker(&run, "w2", &url, "slow", &["-c", "1"]);
    let mut first = collector(&run, "k", &url, "slow", &[]);
    wait_until("a page collected", || {
        crate::support::lines(&run.path("pages-k.csv.part")) >= 2
    });
    let mut second = collector(&run, "other", &url, "slow", &[]);
    second.expect(2);
    assert!(
        second.stderr().contains("another collector"),
        "{}",
        second.stderr()
    );
    first.kill();
    let mut fresh = collector(&run, "k", &url, "slow", &[]);
    fresh.expect(2);
    assert!(
        fresh.stderr().contains("add --resume"),
        "{}",
        fresh.stderr()
    );
    w.expect(0);
    collector(&run, "k", &url, "slow", &["--resume"]).expect(0);
    assert_eq!(Table::read(&run.path("pages-k.csv")).rows.len(), 8);
}

#[test]
fn workers_fetch_scripts_and_the_collector_writes_their_content() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    site.set_script("shared.js", "shared()", Duration::from_millis(20));
    let mut pages = Vec::new();
    for i in 0..12 {
        site.set_script(&format!("own{i}.js"), &format!("own({i})"), Duration::ZERO);
        site.set_page(
            &format!("p{i}"),
            &format!(
                "<script src=/js/shared.js></script><script src=/js/own{i}.js \
                 integrity=sha256-AAAA></script><script src=/js/missing.js></script>"
            ),
        );
        pages.push(site.url(&format!("/page/p{i}")));
    }
    let list = run.urls("urls.txt", &pages);
    enqueue(&run, &url, "content", &[&list, "--close"]);
    let mut workers: Vec<Proc> = (1..=2)
        .map(|i| {
            let name = format!("worker-{i}");
            worker(&run, &name, &url, "content", &["--fetch-scripts"])
        })
        .collect();
    let mut collect = collector(&run, "queue", &url, "content", &[]);
    for w in &mut workers {
        w.expect(0);
    }
    assert_eq!(collect.wait(), 0, "{}", collect.stderr());
    // Each worker fetches a script once at most.
    let shared = site.hits("/js/shared.js");
    assert!((1..=2).contains(&shared), "{shared} requests");
    for i in 0..12 {
        assert_eq!(site.hits(&format!("/js/own{i}.js")), 1);
    }
    let (local, code) = local(&run, &[&list], &["--fetch-scripts"]);
    assert_eq!(code, 0);
    let queued = Outputs::read(&run, "queue");
    assert_same(&local, &queued);
    let sha = queued.scripts.column("content_sha384");
    assert_eq!(sha.iter().filter(|s| s.starts_with("sha384-")).count(), 24);
    assert_eq!(
        queued
            .scripts
            .rows_where("content_error", "http_status")
            .len(),
        12
    );
    assert_eq!(queued.scripts.rows_where("integrity_ok", "false").len(), 12);
}

/// Workers do not render: `render` set for local runs, by the
/// environment or the configuration file, is said to be left aside rather
/// than silently ignored, and the worker does its work.
#[test]
fn a_worker_says_it_does_not_render() {
    let redis = RedisServer::start();
    let url = redis.url();
    let site = TestServer::start();
    let run = Run::new();
    let list = run.urls("list.txt", &[site.url("/gen/1")]);
    enqueue(&run, &url, "render", &[&list, "--close"]);
    std::fs::write(run.path("render.toml"), "render = true\n").expect("config");
    let out = run.run_with_env(
        &work_args(&url, "render", &["--config", "render.toml"]),
        None,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("render.toml (line 1) sets render, which workers do not do"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("the job is drained"), "{}", out.stderr);
    let out = run.run_with_env(
        &work_args(&url, "render", &[]),
        None,
        &[("SCRIPTSCRAPE_RENDER", "true")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("SCRIPTSCRAPE_RENDER sets render, which workers do not do"),
        "{}",
        out.stderr
    );
}
