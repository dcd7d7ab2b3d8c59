//! Support for the `--render` tests: finding Chromium (a test that needs
//! it fails when it is missing, never skips), and the processes a run
//! starts. A run's processes are found two ways: by a marker in their
//! environment, which Chromium inherits from scriptscrape (readable only
//! for processes a test may trace, so a best effort), and by their parent
//! chains, while scriptscrape is alive (after it dies its children are
//! re-parented, and the chain is gone). Tests use both to check that no
//! browser outlives a run, to crash a tab, and to clean up after
//! themselves however they end.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Output, Run};

/// The environment variable that marks the processes of one run.
pub const MARK_VAR: &str = "SCRIPTSCRAPE_TEST_MARK";

/// The names the binary looks for on PATH without `--browser`.
const SEARCHED: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Debian's real browser binary, which the binary also looks for.
pub const DEBIAN_CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// How long the processes of a run that ended may take to go.
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// Fails the test, saying what to install, unless a browser is where the
/// binary looks for one.
pub fn require_chromium() {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| SEARCHED.iter().any(|n| executable(&dir.join(n))))
    });
    assert!(
        on_path || executable(Path::new(DEBIAN_CHROMIUM)),
        "no Chromium found ({} on PATH, or {DEBIAN_CHROMIUM}): the --render tests need \
         Debian's chromium (apt-get install chromium)",
        SEARCHED.join(", ")
    );
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A marker no other run of this or another test process carries.
pub fn marker(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{test}-{}-{n}", std::process::id())
}

/// Runs the binary with `--render` on `urls` and extra `args`, writing the
/// page report to pages.csv and the scripts to scripts.csv, with a marker
/// in its environment; once it has ended, waits (bounded) for every
/// process carrying the marker to go, and fails the test (having killed
/// them) if some stay. A panic of the binary fails the test too.
pub fn render_into(run: &Run, urls: &[impl AsRef<str>], args: &[&str]) -> Output {
    render_with_env(run, urls, args, &[])
}

/// As [`render_into`], with more variables in the binary's environment.
pub fn render_with_env(
    run: &Run,
    urls: &[impl AsRef<str>],
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    require_chromium();
    let _browser = super::browser_running();
    let mark = marker("render");
    let list = run.urls("urls.txt", urls);
    let mut all = vec![
        list.as_str(),
        "--render",
        "--pages",
        "pages.csv",
        "-o",
        "scripts.csv",
    ];
    all.extend_from_slice(args);
    let mut vars = vec![(MARK_VAR, mark.as_str())];
    vars.extend_from_slice(env);
    let out = run.run_with_env(&all, None, &vars);
    let left = wait_gone(&[], &mark, GONE_WITHIN);
    assert!(
        left.is_empty(),
        "processes of the run were still there {} s after it ended (now killed):{left}",
        GONE_WITHIN.as_secs()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

/// One process, told apart from a later one that reuses its pid by its
/// start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    start: u64,
}

/// The fields of /proc/PID/stat the tests need.
struct Stat {
    state: char,
    ppid: i32,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields that
    // follow it start after the last ')', at field 3 (state).
    let rest = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        // Field 22, starttime.
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every pid in /proc now.
fn pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

impl Proc {
    /// Still running: there, the same process, and not a zombie (which
    /// holds no memory, and which a container's init may never reap).
    pub fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start && !matches!(s.state, 'Z' | 'X'))
    }

    /// Its command line, arguments separated by spaces.
    pub fn cmdline(&self) -> String {
        let bytes = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// SIGKILL, unless it is gone already.
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    /// Sends `sig`, unless it is gone already.
    pub fn signal(&self, sig: libc::c_int) {
        if self.alive() {
            // SAFETY: kill(2) on a process this test's run started (checked
            // by start time just above); one already gone is ESRCH.
            unsafe {
                libc::kill(self.pid, sig);
            }
        }
    }
}

/// The live processes that descend from `root` (not `root` itself).
pub fn descendants(root: u32) -> Vec<Proc> {
    let table: HashMap<i32, Stat> = pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect();
    let descends = |pid: i32| {
        let mut at = pid;
        // Parent chains are short; the bound only guards against a cycle
        // made of pids reused while the table was read.
        for _ in 0..64 {
            let Some(s) = table.get(&at) else {
                return false;
            };
            if s.ppid == root as i32 {
                return true;
            }
            if s.ppid <= 1 {
                return false;
            }
            at = s.ppid;
        }
        false
    };
    table
        .iter()
        .filter(|(pid, s)| !matches!(s.state, 'Z' | 'X') && descends(**pid))
        .map(|(pid, s)| Proc {
            pid: *pid,
            start: s.start,
        })
        .collect()
}

/// The live processes whose environment carries `mark` (those whose
/// environment this test process may read).
pub fn marked(mark: &str) -> Vec<Proc> {
    let needle = format!("{MARK_VAR}={mark}");
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .filter_map(|pid| {
            let s = stat(pid)?;
            let p = Proc {
                pid,
                start: s.start,
            };
            p.alive().then_some(p)
        })
        .collect()
}

/// Waits, for at most `limit`, until none of `known` and no process
/// carrying `mark` is alive; past it, kills those left and returns them,
/// described (`pid: command line`, one a line), or an empty string.
pub fn wait_gone(known: &[Proc], mark: &str, limit: Duration) -> String {
    let left = || {
        let mut left: Vec<Proc> = known.iter().copied().filter(Proc::alive).collect();
        for p in marked(mark) {
            if !left.contains(&p) {
                left.push(p);
            }
        }
        left
    };
    let deadline = Instant::now() + limit;
    loop {
        let now_left = left();
        if now_left.is_empty() {
            return String::new();
        }
        if Instant::now() >= deadline {
            // Described first: a killed process loses its command line.
            let described = now_left
                .iter()
                .map(|p| {
                    let cmdline: String = p.cmdline().chars().take(200).collect();
                    format!("\n  {}: {cmdline}", p.pid)
                })
                .collect();
            for p in &now_left {
                p.kill();
            }
            return described;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `--render` run started in the background, with a marker in its
/// environment and its standard error in a file. When dropped (the test
/// passed or panicked half-way) it kills the run and everything it
/// started, so a test that kills processes itself leaves none behind.
pub struct Spawned {
    pub mark: String,
    child: Child,
    stderr: std::path::PathBuf,
    /// Processes seen under the run while it was alive.
    known: Vec<Proc>,
    /// Released last, once the run and its browser are gone.
    _machine: std::sync::RwLockReadGuard<'static, ()>,
}

impl Spawned {
    /// Starts the binary in `run` with `args` (`--render` among them).
    pub fn start(run: &Run, test: &str, args: &[&str]) -> Spawned {
        require_chromium();
        let machine = super::browser_running();
        let mark = marker(test);
        let stderr = run.path("stderr.txt");
        let child = run
            .command(args)
            .env(MARK_VAR, &mark)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start scriptscrape");
        Spawned {
            mark,
            child,
            stderr,
            known: Vec::new(),
            _machine: machine,
        }
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// What the run wrote on standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits, for at most `limit`, until `done` holds; fails saying
    /// `what`, or at once if the run ends first.
    pub fn wait_for(&mut self, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what}: the run ended first ({status}): {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {} s: {}",
                limit.as_secs(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The processes under the run now, also remembered for the clean-up.
    pub fn descendants(&mut self) -> Vec<Proc> {
        let now = descendants(self.child.id());
        for p in &now {
            if !self.known.contains(p) {
                self.known.push(*p);
            }
        }
        now
    }

    /// Every process known to belong to the run, and alive.
    pub fn known(&self) -> Vec<Proc> {
        self.known.iter().copied().filter(Proc::alive).collect()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.descendants();
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Kills at once whatever is left: those seen under the run, and
        // those carrying its marker (started after the last look).
        let _ = wait_gone(&self.known, &self.mark, Duration::ZERO);
    }
}
