//! `--stats FILE.json`: the run's figures for monitoring.
//!
//! One JSON object, written when the run ends (completed or stopped)
//! through a temporary file renamed into place, so a collector polling the
//! file never reads half of it. The schema is documented in README and
//! versioned by its `schema` field; fields are only ever added.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use crate::error::ErrorKind;
use crate::output::Destination;
use crate::output::{Target, is_device, real_path};
use crate::run::report::{ExitStatus, Summary};

/// The stats file's schema version.
pub const SCHEMA: u64 = 1;

/// The stats document for a run.
pub fn document(
    summary: &Summary,
    exit: ExitStatus,
    started: SystemTime,
    ended: SystemTime,
) -> Value {
    let elapsed = summary.elapsed.as_secs_f64();
    let failed = summary.pages_failed();
    let errors: Map<String, Value> = ErrorKind::ALL
        .iter()
        // Not a failure: counted under pages; and a script's kind only.
        .filter(|k| !matches!(k, ErrorKind::MaxPages | ErrorKind::ScriptLimit))
        .map(|k| {
            let n = summary.failures.get(k).copied().unwrap_or(0);
            (k.as_str().to_owned(), json!(n))
        })
        .collect();
    let classes = &summary.status_classes;
    // Pages fetched by this run (carried-over pages were fetched earlier).
    let this_run = summary.pages_ok + failed - summary.resumed;
    let latency = &summary.latency;
    json!({
        "schema": SCHEMA,
        "started_at": rfc3339(started),
        "ended_at": rfc3339(ended),
        "elapsed_s": round3(elapsed),
        "outcome": match (summary.stopped, summary.output_closed) {
            (Some(_), _) => "stopped",
            (None, true) => "output_closed",
            (None, false) => "complete",
        },
        "exit_status": exit.code(),
        "shard": summary.shard.map(|s| json!({ "index": s.index(), "count": s.count() })),
        "pages": {
            "total": summary.pages_ok + failed,
            "ok": summary.pages_ok,
            "failed": failed,
            "resumed": summary.resumed,
            "unfinished": summary.unfinished,
            "duplicates_skipped": summary.duplicates,
            "not_fetched_max_pages": summary.not_fetched,
            "other_shards": summary.other_shards,
        },
        "crawl": summary.crawl.map(|c| json!({
            "discovered": c.discovered,
            "off_scope": c.off_scope,
            "left": c.left,
            "sitemaps": c.sitemaps,
            "sitemaps_failed": c.sitemaps_failed,
            "sitemap_urls": c.sitemap_urls,
            "spilled": c.spilled,
            "passed_over": summary
                .passed_over
                .iter()
                .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
                .collect::<Map<String, Value>>(),
        })),
        "errors": errors,
        "status_classes": {
            "none": classes[0],
            "1xx": classes[1],
            "2xx": classes[2],
            "3xx": classes[3],
            "4xx": classes[4],
            "5xx": classes[5],
        },
        "scripts": summary.scripts,
        "script_content": summary.script_content.as_ref().map(|c| json!({
            "fetched": c.fetched,
            "failed": c.failures(),
            "bytes": c.bytes,
            "over_limit": c.over_limit,
            "errors": c
                .failed
                .iter()
                .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
                .collect::<Map<String, Value>>(),
        })),
        "render": summary.render.map(|r| json!({
            "pages": r.pages,
            "browsers_started": r.browsers,
            "requests_refused": r.refused,
            "connections_refused": r.connections_refused,
            "network": r.network.as_str(),
        })),
        "bytes": summary.bytes,
        "pages_per_s": if elapsed > 0.0 { round3(this_run as f64 / elapsed) } else { 0.0 },
        "latency_ms": {
            "count": latency.count(),
            "p50": latency.percentile(50.0),
            "p90": latency.percentile(90.0),
            "p99": latency.percentile(99.0),
            "max": (latency.count() > 0).then(|| latency.max_ms()),
        },
    })
}

/// Checks, before the run, that the stats file can be written where asked:
/// a run should not do all its work and then fail on a typo. A device or
/// FIFO is not opened here, as opening a FIFO waits for its reader.
pub fn check_writable(dest: &Destination) -> anyhow::Result<()> {
    let Destination::File(path) = dest else {
        return Ok(());
    };
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        anyhow::bail!("cannot write --stats {}: it is a directory", path.display());
    }
    if is_device(path) {
        return Ok(());
    }
    // A file of a random name, removed when dropped: a fixed one could be
    // another run's.
    let real = real_path(path);
    let dir = real
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    tempfile::Builder::new()
        .prefix(".scriptscrape-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write --stats {}", path.display()))?;
    Ok(())
}

/// Writes `doc` to `dest` as the other outputs are written: a file whole,
/// through a temporary sibling of a random name renamed into place (a
/// symlink followed, the mode of the file replaced kept), a device or FIFO
/// in place, `-` to standard output.
pub fn write(dest: &Destination, doc: &Value) -> anyhow::Result<()> {
    let context = || match dest {
        Destination::File(path) => format!("cannot write --stats {}", path.display()),
        Destination::Stdout => "cannot write --stats to standard output".to_owned(),
    };
    let mut text = serde_json::to_vec_pretty(doc).with_context(context)?;
    text.push(b'\n');
    match dest {
        Destination::File(path) => {
            crate::output::write_small(path, None, &text).with_context(context)
        }
        Destination::Stdout => {
            let mut target = Target::open(dest, false).with_context(context)?;
            target.write_all(&text).with_context(context)?;
            target.commit().with_context(context)
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `2026-11-22T13:05:09.123Z`: UTC, milliseconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century year) 12:34:56.789.
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_305_600);
        assert_eq!(rfc3339(t), "2026-11-22T00:00:00.000Z");
    }
}
