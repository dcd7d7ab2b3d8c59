//! One run at a time per output: an advisory lock beside it.
//!
//! A scheduled job can outlast its interval; two runs writing the same
//! outputs would race each other's `.part` files and renames. Each run takes
//! an exclusive `flock(2)`-style lock on `<output>.lock` before it touches
//! its outputs. The kernel drops the lock when the process ends, however it
//! ends, so a crash never leaves a stale lock; the file itself is left in
//! place (deleting it would let a waiting run and a new one lock different
//! files).

use std::fs::{File, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::Config;
use crate::output::Destination;
use crate::output::staged_part;
use crate::run::stop::{Level, Stop};

/// Another run holds the lock (and `--wait-lock` was not given).
#[derive(Debug, thiserror::Error)]
#[error("another run holds {path}{holder}; not starting (--wait-lock waits for it)")]
pub struct Busy {
    /// The lock file.
    pub path: String,
    /// " (pid N)" when the holder wrote its pid.
    holder: String,
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// What came of trying to lock.
#[derive(Debug)]
pub enum Acquired {
    /// Held until dropped.
    Held(Lock),
    /// Asked to stop while waiting for it.
    Stopped,
}

/// The lock files for a run: one beside each file output (scripts, page
/// report), where its `.part` goes, so that two runs sharing any output
/// exclude each other however they spell it (a symlink, `./`); none for
/// standard output or a device. Sorted, so that runs take them in the same
/// order.
pub fn lock_paths(config: &Config) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    // --stats is an output too: a run must not replace what another writes.
    for dest in std::iter::once(&config.output)
        .chain(&config.pages)
        .chain(&config.stats)
    {
        let Destination::File(path) = dest else {
            continue;
        };
        // Devices (/dev/null) are shared by every program: no lock.
        if let Some(part) = staged_part(path)? {
            paths.push(lock_path(&part));
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// The lock file of the output staged as `part` (`scripts.csv.part` →
/// `scripts.csv.lock`).
pub fn lock_path(part: &Path) -> PathBuf {
    part.with_extension("lock")
}

/// Takes the run's lock. Without `wait`, fails at once with [`Busy`] when
/// another run holds it; with `wait`, polls until it is free or `stop` asks
/// the run to stop. `on_wait` is called once if it has to wait.
pub fn acquire(
    path: &Path,
    wait: bool,
    stop: &Stop,
    mut on_wait: impl FnMut(&str),
) -> anyhow::Result<Acquired> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot create output lock file {}", path.display()))?;
    let mut waited = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                if !wait {
                    return Err(Busy {
                        path: path.display().to_string(),
                        holder,
                    }
                    .into());
                }
                if !waited {
                    on_wait(&format!(
                        "waiting for {}{holder}, held by another run",
                        path.display()
                    ));
                    waited = true;
                }
                if stop.level() > Level::Running {
                    return Ok(Acquired::Stopped);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
    // Who holds it, for the message another run prints; best effort.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(Acquired::Held(Lock { _file: file }))
}

fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    match text.trim().parse::<u32>() {
        Ok(pid) => format!(" (pid {pid})"),
        Err(_) => String::new(),
    }
}
