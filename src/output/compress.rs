//! Compressed text outputs: `-o scripts.csv.gz`, `.zst`, `--compress`.
//!
//! Each page's rows are compressed on their own, as one gzip member or one
//! zstd frame, and written with the same single write as uncompressed
//! rows. A file of several members (frames) is one valid file to `zcat`,
//! `zstdcat`, DuckDB and BigQuery alike, so a run killed at any moment
//! leaves a `.part` that decompresses to whole pages, but for a torn last
//! member that [`whole_members`] leaves out; `--resume` relies on that.
//! Compressing page by page costs some ratio (no history shared between
//! pages); BENCHMARKS.md measures how much.

use std::io::{self, BufRead, BufReader, Read, Seek as _, Write};
use std::path::Path;

/// How an output's bytes are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip (RFC 1952), one member per page; level 6, gzip's default.
    Gzip,
    /// Zstandard, one frame per page, with a checksum; level 3, zstd's
    /// default.
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// What a file name's last extension says: `.gz` gzip, `.zst` zstd,
    /// `None` when it names no compression.
    pub fn of_name(path: &Path) -> Option<Compression> {
        match path.extension()?.to_str()? {
            e if e.eq_ignore_ascii_case("gz") => Some(Compression::Gzip),
            e if e.eq_ignore_ascii_case("zst") => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The compression whose magic number `bytes` starts with.
    pub fn sniff(bytes: &[u8]) -> Compression {
        if bytes.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if bytes.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The option value that names it (`gzip`, `zstd`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Compresses one page's rows at a time, each into a whole member (frame).
pub(crate) enum Compressor {
    None,
    Gzip,
    // Boxed: a zstd context is large, and most runs have none.
    Zstd(Box<zstd::bulk::Compressor<'static>>),
}

impl Compressor {
    pub(crate) fn new(compression: Compression) -> io::Result<Compressor> {
        Ok(match compression {
            Compression::None => Compressor::None,
            Compression::Gzip => Compressor::Gzip,
            Compression::Zstd => {
                let mut zstd = zstd::bulk::Compressor::new(zstd::DEFAULT_COMPRESSION_LEVEL)?;
                // A checksum per frame: a torn or damaged frame is told
                // from a whole one when the file is read back.
                zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
                Compressor::Zstd(Box::new(zstd))
            }
        })
    }

    /// `plain` as it goes to the file: itself, or one compressed member
    /// written into `scratch`.
    pub(crate) fn member<'a>(
        &mut self,
        plain: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> io::Result<&'a [u8]> {
        scratch.clear();
        match self {
            Compressor::None => return Ok(plain),
            Compressor::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(
                    std::mem::take(scratch),
                    flate2::Compression::default(),
                );
                gz.write_all(plain)?;
                *scratch = gz.finish()?;
            }
            Compressor::Zstd(zstd) => {
                scratch.reserve(zstd::zstd_safe::compress_bound(plain.len()));
                zstd.compress_to_buffer(plain, scratch)?;
            }
        }
        Ok(scratch)
    }
}

/// A reader of `input` that decompresses it when it starts with a gzip or
/// zstd magic number (every member or frame, in order), and passes it
/// through otherwise.
pub fn decompressed<'a>(mut input: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let head = input.fill_buf()?;
    Ok(match Compression::sniff(head) {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// What [`whole_members`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Members {
    /// Bytes of the file taken by whole members, from its start.
    pub whole: u64,
    /// Bytes after them: a member cut short by a kill.
    pub torn: u64,
}

/// Decompresses the whole members of the file at `path` (compressed with
/// `compression`) into `out`, leaving out a torn last member. A member
/// that does not decompress but is followed by one that does is damage,
/// not a torn tail: an error of kind `InvalidData`.
pub fn whole_members(
    path: &Path,
    compression: Compression,
    out: &mut impl Write,
) -> io::Result<Members> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut input = BufReader::with_capacity(1 << 16, file);
    let mut whole = 0u64;
    // Each member is held whole before it is passed on, so that a torn one
    // adds nothing; a member is one page's rows.
    let mut member = Vec::new();
    while whole < len {
        member.clear();
        if one_member(&mut input, compression, &mut member).is_err() {
            if later_member_decodes(path, whole + 1, compression)? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a compressed member at byte {whole} does not decompress"),
                ));
            }
            return Ok(Members {
                whole,
                torn: len - whole,
            });
        }
        out.write_all(&member)?;
        whole = input.stream_position()?;
    }
    Ok(Members { whole, torn: 0 })
}

/// Reads one member (frame) from `input` into `out`, leaving `input` just
/// after it.
fn one_member(
    input: &mut impl BufRead,
    compression: Compression,
    out: &mut impl Write,
) -> io::Result<()> {
    match compression {
        Compression::None => {
            io::copy(input, out)?;
        }
        Compression::Gzip => {
            // The trailer's CRC and length are checked: a member cut short
            // anywhere, its trailer included, is an error.
            let mut gz = flate2::bufread::GzDecoder::new(input);
            io::copy(&mut gz, out)?;
        }
        Compression::Zstd => {
            let mut zstd = zstd::stream::read::Decoder::with_buffer(input)?.single_frame();
            io::copy(&mut zstd, out)?;
        }
    }
    Ok(())
}

/// Whether a whole member starts anywhere from byte `from` of the file:
/// then the bad member before it is damage, not a torn tail. The file is
/// read as a stream (it may be gigabytes), and bounded: the first 64
/// places where the magic number appears are tried.
fn later_member_decodes(path: &Path, from: u64, compression: Compression) -> io::Result<bool> {
    use std::io::SeekFrom;
    let magic: &[u8] = match compression {
        Compression::Gzip => &GZIP_MAGIC,
        Compression::Zstd => &ZSTD_MAGIC,
        Compression::None => return Ok(false),
    };
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut starts = Vec::new();
    // A window of the file, with the last bytes of the one before, so that
    // a magic number across two reads is seen.
    let mut window: Vec<u8> = Vec::with_capacity((1 << 16) + magic.len());
    let mut chunk = vec![0u8; 1 << 16];
    let mut at = from;
    while starts.len() < 64 {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        let kept = window.len() as u64;
        window.extend_from_slice(&chunk[..n]);
        let base = at - kept;
        for (i, w) in window.windows(magic.len()).enumerate() {
            let start = base + i as u64;
            if w == magic && starts.last().is_none_or(|&s| s < start) {
                starts.push(start);
            }
        }
        at += n as u64;
        let keep = window.len().min(magic.len() - 1);
        window.drain(..window.len() - keep);
    }
    for start in starts.into_iter().take(64) {
        let mut candidate = BufReader::new(std::fs::File::open(path)?);
        candidate.seek(SeekFrom::Start(start))?;
        if one_member(&mut candidate, compression, &mut io::sink()).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(members: &[&[u8]], compression: Compression) -> Vec<u8> {
        let mut c = Compressor::new(compression).unwrap();
        let mut file = Vec::new();
        let mut scratch = Vec::new();
        for m in members {
            file.extend_from_slice(c.member(m, &mut scratch).unwrap());
        }
        file
    }

    fn read_back(bytes: &[u8], compression: Compression) -> io::Result<(String, Members)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.part");
        std::fs::write(&path, bytes).unwrap();
        let mut out = Vec::new();
        let members = whole_members(&path, compression, &mut out)?;
        Ok((String::from_utf8(out).unwrap(), members))
    }

    #[test]
    fn members_concatenate_to_one_valid_stream() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let file = file_of(&[b"h\n", b"a,1\nb,2\n", b"c,3\n"], compression);
            assert_eq!(Compression::sniff(&file), compression);
            let mut text = String::new();
            decompressed(&file[..])
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "h\na,1\nb,2\nc,3\n");
            let (text, members) = read_back(&file, compression).unwrap();
            assert_eq!(text, "h\na,1\nb,2\nc,3\n");
            assert_eq!(members.torn, 0);
        }
    }

    #[test]
    fn a_torn_last_member_is_left_out_wherever_it_was_cut() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let whole = file_of(&[b"h\n", b"a,1\n"], compression);
            let last = file_of(&[b"b,2\nc,3\n"], compression);
            // Every cut of the last member, from its first byte to one
            // short of its end.
            for cut in 1..last.len() {
                let mut file = whole.clone();
                file.extend_from_slice(&last[..cut]);
                let (text, members) = read_back(&file, compression).unwrap();
                assert_eq!(text, "h\na,1\n", "{compression:?} cut at {cut}");
                assert_eq!(members.whole, whole.len() as u64);
                assert_eq!(members.torn, cut as u64);
            }
        }
    }

    #[test]
    fn a_bad_member_before_whole_ones_is_damage() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let first = file_of(&[b"h\n"], compression);
            let second = file_of(&[b"a,1\n"], compression);
            let mut file = first.clone();
            // The second member cut short, then a whole third one.
            file.extend_from_slice(&second[..second.len() - 3]);
            file.extend_from_slice(&file_of(&[b"b,2\n"], compression));
            let err = read_back(&file, compression).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{compression:?}");
        }
    }

    #[test]
    fn names_say_which_compression() {
        assert_eq!(
            Compression::of_name(Path::new("a.csv.gz")),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::of_name(Path::new("a.jsonl.ZST")),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::of_name(Path::new("a.csv")), None);
        assert_eq!(Compression::of_name(Path::new("gz")), None);
    }
}
