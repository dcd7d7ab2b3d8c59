//! What both benchmarks need to run the release binary as a child and
//! measure it: waiting for it without losing its peak memory, its CPU
//! time, and the files and flags around a run.

use std::path::{Path, PathBuf};

/// Waits for the child to exit without reaping it first (so that VmHWM
/// stays readable until the end), then reaps it with wait4 for its CPU
/// time.
pub fn wait_when_exited(pid: u32) -> (i32, libc::rusage) {
    // SAFETY: siginfo is plain data that waitid fills; WNOWAIT leaves the
    // child waitable.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status for our
    // own child, which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid as libc::pid_t, "wait4 failed");
    (status, usage)
}

/// The peak resident set of a live process, from /proc.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn status_ok(status: i32) -> bool {
    libc::WIFEXITED(status) && matches!(libc::WEXITSTATUS(status), 0 | 1)
}

pub fn self_cpu() -> f64 {
    // SAFETY: as in wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

pub fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn write_urls(dir: &Path, name: &str, urls: impl Iterator<Item = String>) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("url list"));
    for url in urls {
        writeln!(out, "{url}").expect("write url list");
    }
    out.flush().expect("flush url list");
    path
}

pub fn tempdir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-work");
    std::fs::create_dir_all(&dir).expect("bench work dir");
    dir
}

pub fn flag_value(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// Samples the child `pid`'s VmHWM every 10 ms until `done` is set, and
/// returns the largest seen, in KiB. (ru_maxrss is wrong for a
/// posix_spawn'ed child: it inherits the parent's high-water mark through
/// exec; VmHWM only grows, so the last sample is within an interval of
/// the peak.)
pub fn sample_peak_kb(
    pid: u32,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak_kb = 0u64;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(kb) = vm_hwm_kb(pid) {
                peak_kb = peak_kb.max(kb);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        peak_kb
    })
}
