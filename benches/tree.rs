//! A run's whole process tree: for a program that starts others
//! (`scriptscrape --render` starts Chromium, which starts two zygotes, a
//! GPU and a network service, and renderers as pages come and go), its
//! CPU time, the peak of its processes' summed memory, and whether any of
//! them outlives the run.
//!
//! CPU. wait4's rusage of a child counts its own time and that of every
//! descendant reaped under it. That misses Chromium's renderers: the
//! zygote reaps them, but on `Browser.close` the browser exits without
//! reaping its zygotes (seen with `strace -f`), which are orphaned and
//! reaped by init, and with them the renderers' time. So this process
//! becomes a child subreaper ([`set_subreaper`]) while it measures such
//! runs: the tree's orphans are reparented to it instead of init, and
//! [`reap_orphans`] reaps them with wait4 once the run is over, for their
//! time and that of everything they reaped. The program's wait4 plus the
//! orphans' is then the tree's CPU time; the sampler's sum of each
//! process's own utime + stime, at the last sample that saw it, is a
//! check from below ([`Seen::cpu_sampled`]).
//!
//! Memory. PSS (each page shared by k processes counted 1/k in each),
//! since Chromium's processes share much of theirs: summed RSS counts
//! the shared pages once per process (three to four times the PSS here).
//! But /proc/PID/smaps_rollup costs about 1.2 ms of CPU a Chromium
//! process (it walks the page tables): read for 15–25 processes every
//! 25 ms, it took a quarter of a core, on two. So the tree is listed, and
//! its CPU and RSS read (cheap), every [`INTERVAL`], and its PSS (all
//! processes at the same sample, so that the sum is of one moment) as
//! often as [`PSS_BUDGET`] allows, or every sample while the tree is
//! small (static mode: scriptscrape alone, whose run is short). Checked
//! against a reading at every sample in the same runs, readings 100–300
//! ms apart found peaks 3 % lower to 1 % higher, readings 0.6–1.2 s apart
//! (a budget of 5 %) up to 8 % lower. An estimate of PSS
//! between readings (the last reading's shared part plus each process's
//! private memory and anonymous growth) was tried and dropped: its peak
//! fell 4–8 % short, and single samples were often 30 % off, as renderers
//! come and go with their shared memory.
//!
//! Linux only, as the rest of the harness is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Time between two samples: short next to a rendered page (over half a
/// second, the idle time alone), whose renderer comes and goes with it.
const INTERVAL: Duration = Duration::from_millis(25);

/// The share of one core that reading the tree's PSS may take: after a
/// reading that took t of CPU, the next comes t / PSS_BUDGET later at the
/// soonest (0.3–0.7 s here, for 15–25 processes; see the module's
/// comment).
const PSS_BUDGET: f64 = 0.1;

/// The soonest a PSS reading follows the last, however cheap it was.
const PSS_GAP: Duration = Duration::from_millis(100);

/// A tree of this many processes at most has its PSS read every sample.
const SMALL_TREE: usize = 2;

/// The longest a sampler runs, whatever happens to `done`.
const LIMIT: Duration = Duration::from_secs(20 * 60);

/// Entries of /proc read in one listing, at most (the machine runs about
/// a hundred processes).
const MAX_PROCESSES: usize = 20_000;

/// Makes this process a child subreaper, or no longer one: the orphans of
/// its descendants are reparented to it (and must be reaped by it) rather
/// than to init.
pub fn set_subreaper(on: bool) {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a plain integer.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, libc::c_ulong::from(on)) };
    assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// One process as /proc/PID/stat shows it.
#[derive(Clone, Debug)]
struct Stat {
    pid: u32,
    ppid: u32,
    /// R, S, D, Z (zombie), X (dead), …
    state: char,
    /// utime + stime, of all its threads, in clock ticks.
    cpu_ticks: u64,
    /// When it started, in clock ticks since boot: with the pid, names
    /// one process whatever pids are reused.
    start: u64,
    name: String,
}

/// A process by pid and start time.
type Key = (u32, u64);

/// Samples at which a process's kind is read again while it is not
/// settled: a process forked by the browser or a zygote has its parent's
/// command line until it execs or renames itself, a moment later.
const KIND_TRIES: u32 = 40;

/// What the sampler knows of one process of the tree.
#[derive(Debug)]
struct Member {
    /// See [`kind`].
    kind: String,
    /// Readings of `kind` left while it is not settled.
    kind_tries: u32,
    /// Its parent was a zygote when it was first seen.
    zygote_child: bool,
    /// utime + stime at the last sample that saw it.
    cpu_ticks: u64,
    /// RSS at the last sample, in KiB (0 for a zombie).
    rss_kb: u64,
    zombie: bool,
}

/// What a sampler saw of a tree.
#[derive(Debug, Default)]
pub struct Seen {
    /// The largest sum, over one reading, of the tree's PSS, in KiB.
    pub peak_pss_kb: u64,
    /// The largest sum, over one sample, of their RSS, in KiB.
    pub peak_rss_kb: u64,
    /// Most processes in the tree at one sample.
    pub most_processes: usize,
    /// PSS readings of the whole tree.
    pub pss_readings: u32,
    /// The sampler's own CPU seconds.
    pub sampler_cpu: f64,
    processes: HashMap<Key, Member>,
}

impl Seen {
    /// CPU seconds of every process seen, each its own at the last sample
    /// that saw it: short of the truth by what each used after that
    /// sample, and by processes that lived less than a sample.
    pub fn cpu_sampled(&self) -> f64 {
        self.processes.values().map(|m| m.cpu_ticks).sum::<u64>() as f64 / ticks_per_s()
    }

    /// [`Seen::cpu_sampled`] by kind of process: kind, seconds, processes;
    /// the most first.
    pub fn cpu_by_kind(&self) -> Vec<(String, f64, usize)> {
        let mut kinds: HashMap<&str, (u64, usize)> = HashMap::new();
        for m in self.processes.values() {
            let k = kinds.entry(&m.kind).or_default();
            k.0 += m.cpu_ticks;
            k.1 += 1;
        }
        let mut kinds: Vec<(String, f64, usize)> = kinds
            .into_iter()
            .map(|(kind, (t, n))| (kind.to_string(), t as f64 / ticks_per_s(), n))
            .collect();
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
        kinds
    }

    /// Processes seen in the tree over the run, the root included.
    pub fn processes_seen(&self) -> usize {
        self.processes.len()
    }
}

/// Samples the tree under `root` every [`INTERVAL`] until `done` is set
/// (or [`LIMIT`] has passed). The tree is `root` and every process whose
/// parent is in it when first seen, and this process's children other
/// than `root` (orphans of the tree, with this process a subreaper).
pub fn sample(root: u32, done: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let me = std::process::id();
        let mut seen = Seen::default();
        // The tree's processes alive at the last listing, and the others
        // (never read again while their pid lasts).
        let mut live: HashMap<u32, Key> = HashMap::new();
        let mut others: HashSet<u32> = HashSet::new();
        let mut next_pss = started;
        while !done.load(Ordering::Relaxed) && started.elapsed() < LIMIT {
            let pids = list_pids();
            let present: HashSet<u32> = pids.iter().copied().collect();
            others.retain(|p| present.contains(p));
            live.retain(|p, _| present.contains(p));
            // The tree's processes known before this listing: CPU and
            // memory now.
            let mut gone = Vec::new();
            for (&pid, key) in &live {
                let Some(member) = seen.processes.get_mut(key) else {
                    continue;
                };
                match read_stat(pid) {
                    Some(s) if s.start == key.1 => {
                        if member.kind_tries > 0 {
                            member.kind_tries -= 1;
                            let (kind, settled) = kind(&s, root, member.zygote_child);
                            member.kind = kind;
                            if settled {
                                member.kind_tries = 0;
                            }
                        }
                        member.cpu_ticks = member.cpu_ticks.max(s.cpu_ticks);
                        member.zombie = s.state == 'Z';
                        member.rss_kb = if member.zombie {
                            0
                        } else {
                            rss_kb(pid).unwrap_or(0)
                        };
                    }
                    // Gone, or its pid already reused: a new process,
                    // classified below.
                    _ => gone.push(pid),
                }
            }
            for pid in gone {
                live.remove(&pid);
            }
            let mut new: Vec<Stat> = pids
                .iter()
                .filter(|p| !others.contains(p) && !live.contains_key(p))
                .filter_map(|&p| read_stat(p))
                .collect();
            // A child listed before its parent joins on a later pass; each
            // pass takes one at least, or ends.
            loop {
                let before = new.len();
                new.retain(|s| {
                    let joins = s.pid == root || s.ppid == me || live.contains_key(&s.ppid);
                    if joins {
                        let key = (s.pid, s.start);
                        live.insert(s.pid, key);
                        let zombie = s.state == 'Z';
                        let zygote_child = live
                            .get(&s.ppid)
                            .and_then(|k| seen.processes.get(k))
                            .is_some_and(|m| m.kind == "zygote");
                        let (kind, settled) = kind(s, root, zygote_child);
                        let member = Member {
                            kind,
                            kind_tries: if settled { 0 } else { KIND_TRIES },
                            zygote_child,
                            cpu_ticks: s.cpu_ticks,
                            rss_kb: if zombie {
                                0
                            } else {
                                rss_kb(s.pid).unwrap_or(0)
                            },
                            zombie,
                        };
                        seen.processes.insert(key, member);
                    }
                    !joins
                });
                if new.len() == before {
                    break;
                }
            }
            others.extend(new.iter().map(|s| s.pid));
            let members = || live.values().filter_map(|k| seen.processes.get(k));
            seen.peak_rss_kb = seen.peak_rss_kb.max(members().map(|m| m.rss_kb).sum());
            seen.most_processes = seen.most_processes.max(live.len());
            if Instant::now() >= next_pss || live.len() <= SMALL_TREE {
                let cost = thread_cpu();
                let pss: u64 = live
                    .iter()
                    .filter(|(_, k)| seen.processes.get(k).is_some_and(|m| !m.zombie))
                    .filter_map(|(&pid, _)| pss_kb(pid))
                    .sum();
                seen.peak_pss_kb = seen.peak_pss_kb.max(pss);
                seen.pss_readings += 1;
                let cost = Duration::from_secs_f64((thread_cpu() - cost).max(0.0));
                next_pss = Instant::now() + PSS_GAP.max(cost.div_f64(PSS_BUDGET));
            }
            std::thread::sleep(INTERVAL);
        }
        seen.sampler_cpu = thread_cpu() - cpu_before;
        seen
    })
}

/// What [`reap_orphans`] found.
#[derive(Debug, Default)]
pub struct Orphans {
    /// Reaped, and their CPU seconds (with that of all they reaped).
    pub reaped: usize,
    pub cpu: f64,
    /// Those still running after the grace time (then killed), as
    /// "pid (name)".
    pub left: Vec<String>,
}

/// Once the measured program has exited and been reaped: reaps this
/// process's children (the tree's orphans, this process being a
/// subreaper), waiting up to `grace` for them to exit. Any still running
/// then, and their own descendants, are killed and reaped, and named in
/// [`Orphans::left`].
pub fn reap_orphans(grace: Duration) -> Orphans {
    let me = std::process::id();
    let started = Instant::now();
    let mut orphans = Orphans::default();
    // After the grace time, another to reap what was killed.
    while started.elapsed() < 2 * grace {
        let all = all_processes();
        let children: Vec<&Stat> = all.iter().filter(|s| s.ppid == me).collect();
        if children.is_empty() {
            break;
        }
        for child in children.iter().filter(|s| s.state == 'Z') {
            let mut status = 0;
            // SAFETY: rusage is plain data that wait4 fills; the pid is a
            // child of this process, so nothing else reaps it.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let rc = unsafe {
                libc::wait4(
                    child.pid as libc::pid_t,
                    &mut status,
                    libc::WNOHANG,
                    &mut usage,
                )
            };
            if rc == child.pid as libc::pid_t {
                orphans.reaped += 1;
                orphans.cpu +=
                    crate::harness::tv(usage.ru_utime) + crate::harness::tv(usage.ru_stime);
            }
        }
        let running = children.iter().any(|s| s.state != 'Z');
        if running && started.elapsed() >= grace && orphans.left.is_empty() {
            // Every process under this one (in any order: SIGKILL
            // cannot be caught).
            let mut under: Vec<&Stat> = children.clone();
            let mut i = 0;
            while i < under.len() && under.len() <= all.len() {
                let parent = under[i].pid;
                under.extend(all.iter().filter(|s| s.ppid == parent));
                i += 1;
            }
            for s in under.iter().filter(|s| s.state != 'Z') {
                orphans.left.push(format!("{} ({})", s.pid, s.name));
                // SAFETY: kill(2) on a process just listed under this
                // one; were it gone since, it fails harmlessly (a child's
                // pid cannot be reused before it is reaped).
                unsafe {
                    libc::kill(s.pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    orphans
}

/// What a process of the tree is, and whether that is settled:
/// `scriptscrape` for the root; Chromium's `--type` for its helpers (with
/// the utility's sub-type, and a renderer of the browser's own user
/// interface told apart); `browser` for the process scriptscrape
/// started; else the executable's name. A zygote's child that still has
/// the zygote's command line is `zygote fork (unnamed)`, and a Chromium
/// process without a `--type` under anything but scriptscrape is
/// `browser fork (unnamed)`, neither settled: such a process becomes a
/// renderer or a helper a moment later (or is killed first, as spare
/// renderers are).
fn kind(s: &Stat, root: u32, zygote_child: bool) -> (String, bool) {
    if s.pid == root {
        return ("scriptscrape".into(), true);
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid)).unwrap_or_default();
    // A process forked by the zygote rewrites its command line as one
    // string, its arguments separated by spaces.
    let args: Vec<String> = cmdline
        .split(|&b| b == 0 || b == b' ')
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let value = |flag: &str| args.iter().find_map(|a| a.strip_prefix(flag));
    let chromium = args
        .first()
        .is_some_and(|a| a.ends_with("/chromium") || a.ends_with("/chrome"));
    match (value("--type="), value("--utility-sub-type=")) {
        (Some("zygote"), _) if zygote_child => ("zygote fork (unnamed)".into(), false),
        (Some("utility"), Some(sub)) => (
            format!(
                "utility ({})",
                sub.rsplit('.')
                    .next()
                    .unwrap_or(sub)
                    .trim_end_matches("Service")
            ),
            true,
        ),
        // The renderers Chromium starts for its own user interface
        // (WebUI) rather than for a page.
        (Some("renderer"), _) if args.iter().any(|a| a == "--top-chrome-webui") => {
            ("renderer (browser UI)".into(), true)
        }
        (Some(kind), _) => (kind.to_string(), true),
        (None, _) if chromium && s.ppid == root => ("browser".into(), true),
        (None, _) if chromium => ("browser fork (unnamed)".into(), false),
        (None, _) => (s.name.clone(), false),
    }
}

/// The pids in /proc (up to [`MAX_PROCESSES`]).
fn list_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .take(MAX_PROCESSES)
        .collect()
}

/// Every process of the machine (up to [`MAX_PROCESSES`]).
fn all_processes() -> Vec<Stat> {
    list_pids().into_iter().filter_map(read_stat).collect()
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (name) state ppid …": the name may hold spaces and
    // parentheses, so it ends at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is stat's third field (state); utime and stime are the
    // 14th and 15th, starttime the 22nd (proc(5)).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(field(4)?).ok()?,
        cpu_ticks: field(14)? + field(15)?,
        start: field(22)?,
        name,
    })
}

/// A process's resident memory in KiB, from /proc/PID/statm.
fn rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * page_kb())
}

/// A process's PSS in KiB, from /proc/PID/smaps_rollup.
fn pss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line.get("Pss:".len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn page_kb() -> u64 {
    // SAFETY: as above.
    let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(bytes).map_or(4, |b| (b / 1024).max(1))
}

/// CPU seconds used by the calling thread.
fn thread_cpu() -> f64 {
    // SAFETY: rusage is plain data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    crate::harness::tv(usage.ru_utime) + crate::harness::tv(usage.ru_stime)
}
