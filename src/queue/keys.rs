//! Job names, the keys they map to, and URL identity in the seen-set.

use sha2::{Digest as _, Sha256};

use super::QueueError;

/// Longest job name, in bytes: it is part of every key of the job.
pub const MAX_JOB_NAME_BYTES: usize = 100;

/// The set of all job names (outside any job's slot: touched only by
/// single-key commands, never inside a job's scripts).
pub(crate) const JOBS_KEY: &str = "scriptscrape:jobs";

/// A checked job name, with its keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    name: String,
    /// `scriptscrape:{NAME}`: every key of the job starts with it.
    prefix: String,
}

impl Job {
    /// Checks `name`: 1 to 100 bytes of printable characters, with no
    /// spaces (it is one word in listings) and no braces (it is the hash
    /// tag of the job's keys).
    pub fn new(name: &str) -> Result<Job, QueueError> {
        let bad = |reason| QueueError::BadJobName {
            // A name too long to be one is not echoed whole.
            name: match name.char_indices().nth(MAX_JOB_NAME_BYTES) {
                Some((cut, _)) => format!("{}…", &name[..cut]),
                None => name.to_owned(),
            },
            reason,
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > MAX_JOB_NAME_BYTES {
            return Err(bad("it is longer than 100 bytes"));
        }
        if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("it has a space or a control character"));
        }
        if name.contains(['{', '}']) {
            return Err(bad("it has a brace"));
        }
        Ok(Job {
            name: name.to_owned(),
            prefix: format!("scriptscrape:{{{name}}}"),
        })
    }

    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn meta(&self) -> String {
        format!("{}:meta", self.prefix)
    }

    pub(crate) fn work(&self) -> String {
        format!("{}:work", self.prefix)
    }

    pub(crate) fn results(&self) -> String {
        format!("{}:results", self.prefix)
    }

    /// The collector's lease: one collector a job at a time.
    pub(crate) fn collector(&self) -> String {
        format!("{}:collector", self.prefix)
    }

    /// The seen-set bucket `bucket`.
    pub(crate) fn seen(&self, bucket: u64) -> String {
        format!("{}:seen:{bucket}", self.prefix)
    }

    /// Where `url` lives in a seen-set of `buckets` buckets: its set's key
    /// and its member there.
    pub(crate) fn seen_slot(&self, url: &str, buckets: u32) -> (String, u64) {
        let h = url_hash(url);
        let b = u64::from(buckets);
        (self.seen(h % b), h / b)
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A URL's identity in a job's seen-set: the first 8 bytes of the SHA-256
/// of its UTF-8 text, read big-endian (`printf %s URL | sha256sum`, first
/// 16 hex digits).
///
/// It must be the same on every machine, platform and version, so it is a
/// standard function rather than std's unspecified hasher. SHA-256 over
/// FNV-1a or SipHash with a published key: a hostile page cannot craft a
/// link that collides with a URL it wants the crawl to skip (FNV's
/// structure makes that easy, and SipHash resists it only with a secret
/// key), and sha2 is already a dependency. Its cost is a fraction of a
/// microsecond a URL. Chance collisions between distinct URLs stay below
/// one in a million for 6 million URLs (n² / 2^65).
pub fn url_hash(url: &str) -> u64 {
    let digest = Sha256::digest(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_prefix() {
        // printf %s https://example.com/ | sha256sum
        assert_eq!(url_hash("https://example.com/"), 0x0f115db062b7c0dd);
    }

    #[test]
    fn job_names() {
        assert!(Job::new("nightly-2024.06_top:1M").is_ok());
        for bad in ["", "a b", "a{b", "b}", "tab\there", &"x".repeat(101)] {
            let err = Job::new(bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err}");
        }
        let job = Job::new("n").unwrap();
        assert_eq!(job.meta(), "scriptscrape:{n}:meta");
        assert_eq!(
            job.seen_slot("https://example.com/", 65536).0,
            "scriptscrape:{n}:seen:49373"
        );
    }
}
