//! The browser process: found, started headless with a profile of its own,
//! and never left behind.
//!
//! Chromium is started in a process group of its own, so that the browser
//! and every process it starts (renderers, GPU, network service) can be
//! killed together. Should scriptscrape itself be killed (SIGKILL leaves no
//! chance to clean up), the kernel sends the browser SIGKILL too
//! (`PR_SET_PDEATHSIG`), and its children exit once their browser is gone.
//! That signal fires when the *thread* that started the browser ends, so
//! the browser is started from a thread that lives exactly as long as it.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;

/// Names the browser is looked for by on `PATH`, in order, then the place
/// Debian's package keeps the real executable.
const NAMES: [&str; 5] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/usr/lib/chromium/chromium",
];

/// The browser's standard error, in its profile directory.
const STDERR_LOG: &str = "scriptscrape-browser-stderr.log";

/// How long a starting browser may take to answer its first command.
pub(crate) const START_LIMIT: Duration = Duration::from_secs(30);

/// No browser to run: what the user is told (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error(
    "--render needs Chromium or Google Chrome, and none was found (looked for chromium, \
     chromium-browser, google-chrome on PATH): install one (Debian/Ubuntu: apt-get install \
     chromium) or name it with --browser PATH"
)]
pub struct NotFound;

/// The browser to run: `explicit` when given (it must exist), else the
/// first of [`NAMES`] found.
pub fn find(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        let found = if path.components().count() == 1 {
            which(path.as_os_str())
        } else {
            is_executable(path).then(|| path.to_owned())
        };
        return found.with_context(|| {
            format!(
                "--browser {}: no such executable (install Chromium: apt-get install chromium)",
                path.display()
            )
        });
    }
    NAMES
        .iter()
        .find_map(|name| {
            let name = Path::new(name);
            if name.is_absolute() {
                is_executable(name).then(|| name.to_owned())
            } else {
                which(name.as_os_str())
            }
        })
        .map(prefer_real_executable)
        .ok_or_else(|| NotFound.into())
}

/// Debian's `/usr/bin/chromium` is a shell script that adds flags of its
/// own (and reads /etc/chromium.d); the executable it runs is used instead
/// when it is there, so that the flags are ours alone.
fn prefer_real_executable(found: PathBuf) -> PathBuf {
    let real = Path::new("/usr/lib/chromium/chromium");
    let is_wrapper = std::fs::read(&found).is_ok_and(|bytes| bytes.starts_with(b"#!"));
    if is_wrapper && is_executable(real) {
        real.to_owned()
    } else {
        found
    }
}

fn which(name: &std::ffi::OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The browser could not have a network namespace of its own (user
/// namespaces off, say): it did not start for that reason alone.
#[derive(Debug, thiserror::Error)]
#[error("the browser cannot have a network namespace of its own ({0})")]
pub struct NotIsolated(pub String);

/// What a browser is started with.
pub struct Launch {
    /// Its executable.
    pub executable: PathBuf,
    /// The JavaScript heap a page may use (`--render-memory`), in MiB.
    pub heap_mib: u64,
    /// The proxies its requests go through (no credentials: those are
    /// given when the proxy asks, see page.rs).
    pub proxy: Option<crate::proxy::BrowserProxy>,
    /// The User-Agent it sends instead of its own.
    pub user_agent: Option<String>,
    /// Accept any certificate (`-k`).
    pub insecure: bool,
    /// In a network namespace of its own, whose only way out is the gate
    /// listening there (isolate.rs; `proxy` is then not used). Linux only.
    pub isolated: bool,
}

/// A running browser. Dropping it kills the browser and all its processes
/// and removes its profile.
pub struct Browser {
    /// The DevTools protocol's pipes, until taken: written to, read from.
    pipes: Option<(OwnedFd, OwnedFd)>,
    /// The browser's process group (its pid).
    group: i32,
    keeper: Option<thread::JoinHandle<()>>,
    /// The gate's listening socket in the browser's namespace, until taken.
    gate: Option<std::net::TcpListener>,
    _profile: tempfile::TempDir,
}

/// The flags every browser runs with: headless, no first-run or
/// background traffic (little but the pages' own requests leaves it),
/// no pop-ups, and the DevTools protocol on the pipes of fds 3 and 4 (no
/// port another local user could connect to).
fn flags(profile: &Path, launch: &Launch) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--headless=new",
        // The sandbox needs user namespaces, which containers and CI
        // machines often lack; every page gets a fresh browser context and
        // requests are checked by scriptscrape instead (see page.rs).
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-breakpad",
        "--disable-crash-reporter",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--metrics-recording-only",
        "--no-pings",
        "--disable-quic",
        "--block-new-web-contents",
        // A shared worker belongs to no page: its requests would escape
        // the page's interception (page.rs).
        "--disable-shared-workers",
        // WebRTC's UDP (STUN) goes around request interception too.
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        // The page's document is handed to the browser (page.rs), so the
        // browser cannot know which address it came from, and its Local
        // Network Access checks would take an intranet page for a public
        // one and refuse its intranet scripts. scriptscrape applies the
        // crawl's private-network rule itself instead (page.rs).
        //
        // Each page's tab is a window of its own, in a context of its own
        // (page.rs), and headless=new gives every window a location bar
        // whose omnibox popup is a WebUI page (chrome://omnibox-popup
        // .top-chrome/, and its AI Mode variant), loaded when the window
        // opens, hidden, in a `--top-chrome-webui` renderer per context:
        // more CPU than the page itself (Chromium 156). No one ever types
        // in that omnibox; with the WebUIOmnibox* features off it is not
        // loaded at all, and windows and contexts are otherwise the same.
        // (PreloadTopChromeWebUI is not what loads it.)
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,\
         PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,\
         MediaRouter,OptimizationHints,Translate,NetworkTimeServiceQuerying,\
         WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup",
        // Built-in extensions' background pages and the network time
        // queries (clients2.google.com) are the browser's own traffic.
        "--disable-component-extensions-with-background-pages",
        // The component updater still checks update.googleapis.com at
        // start despite --disable-component-update (Chromium 156): sent to
        // port 1 instead, which Chromium refuses to connect to (an unsafe
        // port), so the check ends before any connection is made.
        "--component-updater=url-source=http://127.0.0.1:1/,disable-pings",
        "--mute-audio",
        "--password-store=basic",
        "--use-mock-keychain",
        "--remote-debugging-pipe",
    ]
    .map(String::from)
    .to_vec();
    flags.push(format!("--user-data-dir={}", profile.display()));
    // A page's heap is watched by scriptscrape (page.rs), but a script
    // allocating in one synchronous loop never lets the renderer answer:
    // V8 itself holds it at twice the limit (where it collects garbage
    // until the page's time is up) instead of at its own, which is
    // gigabytes. Twice, so that a heap growing in steps is seen passing
    // the limit first.
    flags.push(format!(
        "--js-flags=--max-old-space-size={}",
        launch.heap_mib.saturating_mul(2)
    ));
    if launch.isolated {
        flags.push(format!(
            "--proxy-server=socks5://127.0.0.1:{}",
            super::isolate::GATE_PORT
        ));
        flags.push(format!(
            "--proxy-bypass-list={}",
            super::gate::BYPASS_NOTHING
        ));
    } else if let Some(proxy) = &launch.proxy {
        flags.push(format!("--proxy-server={}", proxy.server));
        if let Some(bypass) = &proxy.bypass {
            flags.push(format!("--proxy-bypass-list={bypass}"));
        }
    }
    if let Some(agent) = &launch.user_agent {
        flags.push(format!("--user-agent={agent}"));
    }
    if launch.insecure {
        // -k: the pages' scripts are fetched as the pages were.
        flags.push("--ignore-certificate-errors".into());
    }
    flags.push("about:blank".into());
    flags
}

impl Browser {
    /// Starts the browser `launch` says, its DevTools protocol on two
    /// pipes ([`Browser::take_pipes`]). Call within the async runtime.
    pub fn launch(launch: &Launch) -> anyhow::Result<Browser> {
        let executable = &launch.executable;
        let profile = tempfile::Builder::new()
            .prefix("scriptscrape-browser-")
            .tempdir()
            .context("cannot create the browser's profile directory")?;
        let mut command = Command::new(executable);
        command
            .args(flags(profile.path(), launch))
            // Chromium also writes under HOME, TMPDIR and the XDG
            // directories (crash dumps, dconf, shared memory files): in the
            // profile too, so that all it writes goes with it.
            .env("HOME", profile.path())
            .env("TMPDIR", profile.path())
            .env("XDG_CONFIG_HOME", profile.path().join(".config"))
            .env("XDG_CACHE_HOME", profile.path().join(".cache"))
            .env("XDG_DATA_HOME", profile.path().join(".local/share"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Kept beside the profile, for the message if it fails to
            // start; the browser logs little else with these flags.
            .stderr(
                std::fs::File::create(profile.path().join(STDERR_LOG))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            );
        // The browser reads commands from fd 3 and writes to fd 4.
        let (commands_read, commands_write) = pipe().context("cannot make the browser's pipes")?;
        let (replies_read, replies_write) = pipe().context("cannot make the browser's pipes")?;
        let child_ends = (commands_read.as_raw_fd(), replies_write.as_raw_fd());
        let network = if launch.isolated {
            Some(
                super::isolate::channel()
                    .context("cannot make a socket pair for the browser's gate")?,
            )
        } else {
            None
        };
        let child_network = network.as_ref().map(|(_, child)| child.as_raw_fd());
        let (started_tx, started) = std_mpsc::channel();
        let keeper = thread::Builder::new()
            .name("scriptscrape-browser".into())
            .spawn(move || keep(command, child_ends, child_network, &started_tx))
            .context("cannot start the browser thread")?;
        let pid = match started.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = keeper.join();
                if let Some(why) = network
                    .as_ref()
                    .and_then(|(ours, _)| super::isolate::failure(ours))
                {
                    return Err(NotIsolated(why).into());
                }
                return Err(e).with_context(|| format!("cannot run {}", executable.display()));
            }
            Err(_) => anyhow::bail!("internal error: the browser thread ended"),
        };
        // The child has its ends: only it may hold them, so that either
        // side sees the other go.
        drop((commands_read, replies_write));
        let mut browser = Browser {
            pipes: Some((commands_write, replies_read)),
            group: pid,
            keeper: Some(keeper),
            gate: None,
            _profile: profile,
        };
        if let Some((ours, _)) = &network {
            // Sent before exec, which spawn waited for: there already.
            browser.gate = Some(
                super::isolate::receive(ours)
                    .context("the browser's network namespace has no gate")?,
            );
        }
        Ok(browser)
    }

    /// The gate's listening socket, made in the browser's own network
    /// namespace (`Launch::isolated`); `None` once taken.
    pub fn take_gate(&mut self) -> Option<std::net::TcpListener> {
        self.gate.take()
    }

    /// The DevTools protocol's pipes: the one commands are written to,
    /// the one replies and events are read from. `None` once taken.
    pub fn take_pipes(&mut self) -> Option<(OwnedFd, OwnedFd)> {
        self.pipes.take()
    }

    /// Why the browser is not answering at start: it exited (with the
    /// last line it wrote), or it did not answer in time.
    pub fn not_started(&self) -> String {
        if self.is_running() {
            format!("no answer after {} s", START_LIMIT.as_secs())
        } else {
            format!("it exited at start{}", self.last_words())
        }
    }

    /// Kills the browser and every process it started (a hung browser:
    /// its pages see their connection close).
    pub fn kill(&self) {
        kill_group(self.group);
    }

    /// The end of what the browser wrote to its standard error, as
    /// `: ...` for a message (empty when it wrote nothing).
    fn last_words(&self) -> String {
        let log = std::fs::read(self._profile.path().join(STDERR_LOG)).unwrap_or_default();
        let text = String::from_utf8_lossy(&log);
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| format!(": {}", crate::output::one_line(l)))
            .unwrap_or_default()
    }

    /// Whether the browser process is still running.
    pub fn is_running(&self) -> bool {
        self.keeper.as_ref().is_some_and(|k| !k.is_finished())
    }
}

/// Runs on the browser's own thread: starts it, says so, and waits for it
/// to end (the thread's end is what the death signal is tied to).
fn keep(
    mut command: Command,
    (commands, replies): (RawFd, RawFd),
    network: Option<RawFd>,
    started: &std_mpsc::Sender<std::io::Result<i32>>,
) {
    use std::os::unix::process::CommandExt as _;
    // Only this thread's id is known to the child, through getppid.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and
    // calls only async-signal-safe functions (dup2, setpgid, prctl,
    // getppid, kill, getpid, and isolate::enter's system calls). The fds
    // are the child's ends of the pipes and of the gate's channel, open
    // until the parent has spawned (it holds them).
    unsafe {
        command.pre_exec(move || {
            if let Some(channel) = network {
                super::isolate::enter(channel)?;
            }
            // The protocol's fds; dup2 leaves the copies open on exec
            // (the originals close: they were made close-on-exec).
            if libc::dup2(commands, 3) < 0 || libc::dup2(replies, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setpgid(0, 0);
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before prctl: then no signal would
            // ever come.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
    let mut child: Child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let pid = child.id() as i32;
    if started.send(Ok(pid)).is_err() {
        kill_group(pid);
    }
    let _ = child.wait();
}

/// A pipe, both ends close-on-exec: (read, write).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array it is given, which has
    // room for them; each is then owned by one OwnedFd only.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// SIGKILLs the process group `group`.
fn kill_group(group: i32) {
    // SAFETY: kill(2) with a negative pid signals the group the browser
    // was started in (setpgid in pre_exec), which holds only its
    // processes; signalling a group that is gone fails harmlessly.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(self.group);
        if let Some(keeper) = self.keeper.take() {
            // Returns as soon as the browser is reaped.
            let _ = keeper.join();
        }
        // The browser's children may outlive it by a moment; they are in
        // the group too.
        kill_group(self.group);
    }
}
