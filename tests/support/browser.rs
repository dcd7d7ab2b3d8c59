//! Headless Chromium for tests: Debian's `chromium`, run once per call in
//! a process group of its own with a profile in a temporary directory, and
//! killed with all its children when the call ends, however it ends. A
//! test that needs it fails when it is missing (CI installs it).

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::wait_within;

/// How long one headless run may take.
const LIMIT: Duration = Duration::from_secs(90);

/// The browser's executable: `chromium` on PATH.
fn executable() -> &'static str {
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "chromium is not installed: these tests need Debian's chromium (apt-get install chromium)"
    );
    "chromium"
}

/// Kills the process group when dropped, so no browser process outlives
/// the test.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals a process group; the
        // group is the one this test started, and signalling a group that
        // is gone is harmless (ESRCH).
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

/// Runs headless Chromium on `page` (a local file) with `args`; returns its
/// standard output.
fn run(page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut command = Command::new(executable());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = command.spawn().expect("start chromium");
    let _group = Group(child.id() as i32);
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let status = wait_within(&mut child, LIMIT).expect("chromium ended in time");
    assert!(status.success(), "chromium failed: {status}");
    reader.join().expect("reader")
}

/// The DOM Chromium builds from `page`, serialised.
pub fn dom(page: &Path) -> String {
    run(page, &["--dump-dom"])
}

/// A screenshot of `page` at `width`×`height`, written to `png`.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    run(
        page,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={width},{height}"),
        ],
    );
}
