//! `--shard K/N`: the part of a job that one of N machines does.
//!
//! Shards split the work by **site**, so that everything that must be
//! seen whole stays in one shard: per-host limits and `--delay`, a host's
//! robots.txt, a `--scope domain` crawl. A URL's site is its registrable
//! domain by the public suffix list ([`registrable_domain`]: `bbc.co.uk`
//! for `news.bbc.co.uk`), or the host itself for an IP address and for a
//! name with no registrable part (`localhost`), as the url crate writes
//! it: lower-case ASCII, international names in `xn--` form, IPv6 without
//! brackets in its RFC 5952 form (`::1`).
//!
//! The shard of a site is a function anyone can compute, with no state
//! and nothing that varies by machine, platform or version:
//!
//! ```text
//! hash  = the first 8 bytes of SHA-256(site's bytes), as a big-endian u64
//! shard = hash % N + 1
//! ```
//!
//! (`python3 -c 'import hashlib,sys; print(int.from_bytes(hashlib.sha256(
//! sys.argv[1].encode()).digest()[:8], "big") % int(sys.argv[2]) + 1)'
//! bbc.co.uk 3` prints 3.) SHA-256 rather than a short multiplicative hash
//! such as FNV-1a, whose value modulo 2, 4 or 8 depends only on the low
//! bits of each byte, so that a power-of-two N would split on a few bits
//! of the name. The public suffix list, though, is compiled into each
//! release: a suffix added between two versions can move a site to another
//! shard, so all shards of one job should run the same scriptscrape.
//!
//! This module is the pure part: parsing `K/N`, a URL's site, the hash,
//! and which shard keeps what. The input reader ([`crate::input`]) and the
//! crawl's link filter ([`crate::crawl::links`]) apply it.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use url::Url;

use crate::crawl::scope::registrable_domain;

/// The most shards a job may have: far more machines than a list is
/// split over in practice (a Kubernetes Indexed Job runs at most 100,000
/// pods at once), while a typo such as `1/30000000` is refused.
pub const MAX_SHARDS: u32 = 100_000;

/// Shard `k` of `n`, counted from 1 as Jest and Playwright count
/// (`--shard 1/3` is the first of three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    k: u32,
    n: u32,
}

impl Shard {
    /// Shard `k` of `n`, or why there is no such shard, in words for the
    /// person who typed it.
    pub fn new(k: u64, n: u64) -> Result<Shard, String> {
        if n == 0 {
            return Err("N, the number of shards, must be at least 1, as in 1/3".to_owned());
        }
        if n > u64::from(MAX_SHARDS) {
            return Err(format!("N, the number of shards, is at most {MAX_SHARDS}"));
        }
        if k == 0 {
            return Err(format!(
                "K counts from 1 to N, as in 1/{n} (from a 0-based index such as \
                 JOB_COMPLETION_INDEX, add 1)"
            ));
        }
        if k > n {
            return Err(format!(
                "K counts from 1 to N: there is no shard {k} of {n} (the last is {n}/{n})"
            ));
        }
        // Both at most MAX_SHARDS, checked above.
        Ok(Shard {
            k: k as u32,
            n: n as u32,
        })
    }

    /// Which shard this is, from 1.
    pub fn index(self) -> u32 {
        self.k
    }

    /// How many shards the job has.
    pub fn count(self) -> u32 {
        self.n
    }

    /// Whether this shard fetches `url`: whether its site is this shard's.
    pub fn keeps(self, url: &Url) -> bool {
        of_site(&site(url), self.n) == self.k
    }

    /// Whether this shard reports the input lines that are not URLs
    /// (`invalid_url`): the first one does, so that each such line is
    /// accounted for once across the shards.
    pub fn keeps_invalid_lines(self) -> bool {
        self.k == 1
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N`, two whole numbers, surrounding spaces allowed.
    fn from_str(s: &str) -> Result<Shard, String> {
        let number = |part: &str| -> Option<u64> {
            let part = part.trim();
            // More digits than a u64 holds is more than MAX_SHARDS, and
            // said so.
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().unwrap_or(u64::MAX))
        };
        // A negative K is most likely an index gone wrong: say how K counts.
        let k_part = |part: &str| match part.trim().strip_prefix('-') {
            Some(minus) if number(minus).is_some() => Some(0),
            _ => number(part),
        };
        let Some((k, n)) = s
            .split_once('/')
            .and_then(|(k, n)| Some((k_part(k)?, number(n)?)))
        else {
            return Err(
                "expected K/N, this shard's number and the number of shards, as in 2/3 \
                 (the second of three)"
                    .to_owned(),
            );
        };
        Shard::new(k, n)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// The site of a URL, the unit shards split by: its registrable domain,
/// or its host for an IP address (see the module's documentation). A URL
/// without a host (never an http(s) URL) has the empty site.
pub fn site(url: &Url) -> String {
    url.host()
        .map(|host| registrable_domain(&host))
        .unwrap_or_default()
}

/// The shard hash of a site: the first 8 bytes of the SHA-256 of its
/// bytes, read as a big-endian integer.
pub fn hash(site: &str) -> u64 {
    let digest = Sha256::digest(site.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The shard (1 to `n`) whose work `site` is: `hash(site) % n + 1`.
/// `n` must be at least 1.
pub fn of_site(site: &str, n: u32) -> u32 {
    let n = u64::from(n.max(1));
    // Less than n, so it fits.
    (hash(site) % n) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: these values are the contract between the shards of a job,
    /// and between scriptscrape and whoever computes a site's shard
    /// elsewhere. A change here moves sites between shards.
    const VECTORS: &[(&str, u64, u32, u32)] = &[
        // (site, hash, shard of 3, shard of 7)
        ("", 0xe3b0_c442_98fc_1c14, 2, 2),
        ("example.com", 0xa379_a6f6_eeaf_b9a5, 2, 6),
        ("bbc.co.uk", 0x46d5_7108_73dd_e63d, 3, 1),
        ("alice.github.io", 0x29ec_2261_2fd4_a7a5, 1, 5),
        ("xn--bcher-kva.example", 0x970c_a6b7_3eaf_2630, 2, 4),
        ("localhost", 0x4996_0de5_880e_8c68, 2, 1),
        ("127.0.0.1", 0x12ca_17b4_9af2_2894, 3, 6),
        ("127.0.0.2", 0x1edd_6286_8f27_67a1, 3, 6),
        ("127.0.0.3", 0x18dd_41c9_f2e8_e487, 2, 2),
        ("::1", 0xeff8_e7ca_5066_27fe, 1, 5),
    ];

    #[test]
    fn the_hash_and_shards_are_pinned() {
        for &(site, h, of3, of7) in VECTORS {
            assert_eq!(hash(site), h, "hash of {site:?}");
            assert_eq!(of_site(site, 3), of3, "shard of 3 for {site:?}");
            assert_eq!(of_site(site, 7), of7, "shard of 7 for {site:?}");
            assert_eq!(of_site(site, 1), 1, "{site:?}");
        }
    }

    #[test]
    fn a_url_s_site_is_its_registrable_domain_or_its_ip() {
        let site_of = |s: &str| site(&Url::parse(s).unwrap());
        assert_eq!(site_of("https://news.bbc.co.uk/x"), "bbc.co.uk");
        assert_eq!(site_of("https://WWW.Example.COM:8443/"), "example.com");
        assert_eq!(site_of("https://example.com./"), "example.com");
        assert_eq!(site_of("https://alice.github.io/"), "alice.github.io");
        assert_eq!(site_of("https://bücher.example/"), "xn--bcher-kva.example");
        assert_eq!(site_of("http://127.0.0.1:8080/"), "127.0.0.1");
        assert_eq!(site_of("http://[::1]:8080/"), "::1");
        assert_eq!(site_of("http://localhost/"), "localhost");
    }

    #[test]
    fn every_url_of_a_site_is_in_one_shard() {
        let shards: Vec<Shard> = (1..=3).map(|k| Shard::new(k, 3).unwrap()).collect();
        for urls in [
            &[
                "https://www.bbc.co.uk/",
                "http://news.bbc.co.uk:8080/a?b",
                "https://BBC.co.uk./c",
            ][..],
            &["http://127.0.0.2:1/", "http://127.0.0.2:2/x"][..],
        ] {
            let keepers: Vec<Vec<u32>> = urls
                .iter()
                .map(|u| {
                    let url = Url::parse(u).unwrap();
                    shards
                        .iter()
                        .filter(|s| s.keeps(&url))
                        .map(|s| s.index())
                        .collect()
                })
                .collect();
            // Exactly one shard each, and the same one.
            assert_eq!(keepers[0].len(), 1, "{urls:?}");
            assert!(keepers.iter().all(|k| *k == keepers[0]), "{urls:?}");
        }
        // bbc.co.uk is shard 3 of 3 (pinned above).
        let bbc = Url::parse("https://www.bbc.co.uk/").unwrap();
        assert!(Shard::new(3, 3).unwrap().keeps(&bbc));
        assert!(Shard::new(1, 3).unwrap().keeps_invalid_lines());
        assert!(!Shard::new(2, 3).unwrap().keeps_invalid_lines());
    }

    #[test]
    fn shards_are_written_k_of_n() {
        let shard: Shard = " 2/3 ".parse().unwrap();
        assert_eq!((shard.index(), shard.count()), (2, 3));
        assert_eq!(shard.to_string(), "2/3");
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        assert_eq!(
            "100000/100000".parse::<Shard>().unwrap().count(),
            MAX_SHARDS
        );
        for (bad, says) in [
            ("0/3", "K counts from 1 to N, as in 1/3"),
            ("4/3", "there is no shard 4 of 3 (the last is 3/3)"),
            ("1/0", "at least 1"),
            ("1/100001", "at most 100000"),
            ("1/99999999999999999999999", "at most 100000"),
            ("99999999999/3", "there is no shard 99999999999 of 3"),
            ("3", "expected K/N"),
            ("", "expected K/N"),
            ("-1/3", "K counts from 1 to N, as in 1/3"),
            ("/3", "expected K/N"),
            ("1/3/5", "expected K/N"),
            ("1.5/3", "expected K/N"),
            ("a/b", "expected K/N"),
            ("1 of 3", "expected K/N"),
        ] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "{bad:?}: {err}");
        }
    }
}
