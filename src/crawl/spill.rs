//! The part of a crawl's frontier kept on disk.
//!
//! A crawl can discover URLs far faster than it fetches them (every page of
//! a big site links to dozens more), so past a bound the scheduler appends
//! discovered URLs here, one file per depth, and reads them back in the
//! order they came when the queues in memory run low. The files are
//! anonymous temporary files (`tempfile::tempfile`): the operating system
//! removes them when the process ends, however it ends. A file that has
//! been read to its end is truncated, so the disk holds only what waits.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::sync::Arc;

use url::Url;

use crate::crawl::{Origin, Seed};

/// Bytes written in one go; also how much is read at a time.
const BUFFER: usize = 64 * 1024;

/// A discovered URL waiting on disk.
#[derive(Debug)]
pub struct Entry {
    /// The URL, normalised.
    pub url: Url,
    /// Its position in discovery order.
    pub seq: u64,
    /// Where it was found.
    pub origin: Origin,
}

/// Discovered URLs on disk, first in first out within each depth.
#[derive(Debug, Default)]
pub struct Spill {
    depths: BTreeMap<u16, DepthFile>,
    len: u64,
    /// URLs that ever went through the disk.
    total: u64,
}

#[derive(Debug)]
struct DepthFile {
    file: File,
    /// Lines written but not yet flushed to the file.
    pending: Vec<u8>,
    /// Where the file ends (flushed bytes).
    written: u64,
    /// Where the next line to read starts.
    read: u64,
    /// Lines waiting, flushed or not.
    lines: u64,
    /// The seed and referrer of the last line read, shared by the lines
    /// after it that name the same ones (links of one page come together).
    last_seed: Option<(String, String, Arc<Seed>)>,
    last_referrer: Option<Arc<str>>,
}

impl Spill {
    /// URLs waiting on disk.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing waits on disk.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// URLs that went through the disk in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether URLs of `depth` wait on disk (a URL of that depth found now
    /// must then go after them).
    pub fn holds(&self, depth: u16) -> bool {
        self.depths.get(&depth).is_some_and(|f| f.lines > 0)
    }

    /// The lowest depth with URLs on disk.
    pub fn lowest_depth(&self) -> Option<u16> {
        self.depths
            .iter()
            .find(|(_, f)| f.lines > 0)
            .map(|(d, _)| *d)
    }

    /// Appends a URL at its origin's depth.
    pub fn push(&mut self, url: &str, seq: u64, origin: &Origin) -> io::Result<()> {
        let depth = match self.depths.entry(origin.depth) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(DepthFile {
                file: tempfile::tempfile()?,
                pending: Vec::with_capacity(BUFFER),
                written: 0,
                read: 0,
                lines: 0,
                last_seed: None,
                last_referrer: None,
            }),
        };
        // Tab-separated: serialized URLs contain no tab or newline.
        let seed = origin.seed.listed();
        let landed = origin.seed.landed().map_or("", Url::as_str);
        let referrer = origin.referrer.as_deref().unwrap_or("");
        writeln!(
            depth.pending,
            "{seq}\t{url}\t{}\t{landed}\t{referrer}",
            seed.as_str()
        )?;
        if depth.pending.len() >= BUFFER {
            depth.flush()?;
        }
        depth.lines += 1;
        self.len += 1;
        self.total += 1;
        Ok(())
    }

    /// Takes up to `max` URLs of `depth`, oldest first.
    pub fn take(&mut self, depth: u16, max: usize) -> io::Result<Vec<Entry>> {
        let Some(file) = self.depths.get_mut(&depth) else {
            return Ok(Vec::new());
        };
        let entries = file.take(depth, max)?;
        self.len -= entries.len() as u64;
        Ok(entries)
    }

    /// Forgets every URL on disk; returns how many there were.
    pub fn clear(&mut self) -> u64 {
        self.depths.clear();
        std::mem::take(&mut self.len)
    }
}

impl DepthFile {
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(self.written))?;
        self.file.write_all(&self.pending)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn take(&mut self, depth: u16, max: usize) -> io::Result<Vec<Entry>> {
        self.flush()?;
        let mut entries = Vec::new();
        let mut chunk = vec![0u8; BUFFER];
        while entries.len() < max && self.read < self.written {
            self.file.seek(SeekFrom::Start(self.read))?;
            let want = usize::try_from(self.written - self.read).map_or(BUFFER, |n| n.min(BUFFER));
            let got = self.file.read(&mut chunk[..want])?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "frontier file shorter than written",
                ));
            }
            let data = &chunk[..got];
            let mut used = 0;
            for line in data.split_inclusive(|&b| b == b'\n') {
                if entries.len() >= max || !line.ends_with(b"\n") {
                    break;
                }
                used += line.len();
                entries.push(self.decode(depth, &line[..line.len() - 1])?);
            }
            if used == 0 {
                // A line longer than the buffer cannot be: URLs are
                // bounded well below it.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "frontier line too long",
                ));
            }
            self.read += used as u64;
        }
        self.lines -= entries.len() as u64;
        if self.lines == 0 {
            // All read: start the file again.
            self.file.set_len(0)?;
            self.written = 0;
            self.read = 0;
        }
        Ok(entries)
    }

    fn decode(&mut self, depth: u16, line: &[u8]) -> io::Result<Entry> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "damaged frontier line");
        let line = std::str::from_utf8(line).map_err(|_| bad())?;
        let mut fields = line.split('\t');
        let mut next = || fields.next().ok_or_else(bad);
        let seq: u64 = next()?.parse().map_err(|_| bad())?;
        let url = Url::parse(next()?).map_err(|_| bad())?;
        let (listed, landed, referrer) = (next()?, next()?, next()?);
        let seed = match &self.last_seed {
            Some((l, d, seed)) if l == listed && d == landed => Arc::clone(seed),
            _ => {
                let parse = |text: &str| Url::parse(text).map_err(|_| bad());
                let at = (!landed.is_empty()).then(|| parse(landed)).transpose()?;
                let seed = Arc::new(Seed::landed_at(parse(listed)?, at));
                self.last_seed = Some((listed.to_owned(), landed.to_owned(), Arc::clone(&seed)));
                seed
            }
        };
        let referrer = match (&self.last_referrer, referrer) {
            (_, "") => None,
            (Some(last), r) if &**last == r => Some(Arc::clone(last)),
            (_, r) => {
                let shared: Arc<str> = Arc::from(r);
                self.last_referrer = Some(Arc::clone(&shared));
                Some(shared)
            }
        };
        Ok(Entry {
            url,
            seq,
            origin: Origin {
                depth,
                seed,
                referrer,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(depth: u16, seed: &Arc<Seed>, referrer: Option<&str>) -> Origin {
        Origin {
            depth,
            seed: Arc::clone(seed),
            referrer: referrer.map(Arc::from),
        }
    }

    #[test]
    fn first_in_first_out_by_depth_and_back_to_empty() {
        let seed = Arc::new(Seed::landed_at(
            Url::parse("http://a.test/").unwrap(),
            Some(Url::parse("https://www.a.test/").unwrap()),
        ));
        let mut spill = Spill::default();
        for i in 0..5000u64 {
            let depth = 1 + (i % 2) as u16;
            let url = format!("http://a.test/p/{i}");
            spill
                .push(&url, i, &origin(depth, &seed, Some("http://a.test/")))
                .unwrap();
        }
        assert_eq!((spill.len(), spill.lowest_depth()), (5000, Some(1)));
        assert!(spill.holds(2) && !spill.holds(3));
        let first = spill.take(1, 1000).unwrap();
        assert_eq!(first.len(), 1000);
        assert_eq!(first[0].url.as_str(), "http://a.test/p/0");
        assert_eq!(first[999].seq, 1998);
        assert_eq!(first[0].origin.depth, 1);
        assert_eq!(first[0].origin.referrer.as_deref(), Some("http://a.test/"));
        assert_eq!(
            first[0].origin.seed.landed().map(Url::as_str),
            Some("https://www.a.test/")
        );
        // Lines of one seed and referrer share them again.
        assert!(Arc::ptr_eq(&first[0].origin.seed, &first[1].origin.seed));
        // Pushing more keeps the order.
        spill
            .push("http://a.test/late", 9999, &origin(1, &seed, None))
            .unwrap();
        let rest = spill.take(1, usize::MAX).unwrap();
        assert_eq!(rest.len(), 1501);
        assert_eq!(rest[0].seq, 2000);
        assert_eq!(rest[1500].url.as_str(), "http://a.test/late");
        assert_eq!(rest[1500].origin.referrer, None);
        assert_eq!(spill.lowest_depth(), Some(2));
        assert_eq!(spill.take(2, usize::MAX).unwrap().len(), 2500);
        assert!(spill.is_empty() && spill.lowest_depth().is_none());
        assert_eq!(spill.total(), 5001);
        // Emptied files start again and work as before.
        spill
            .push("http://a.test/again", 1, &origin(1, &seed, None))
            .unwrap();
        assert_eq!(
            spill.take(1, 10).unwrap()[0].url.as_str(),
            "http://a.test/again"
        );
    }
}
