//! Reading the URL list: sources, line rules, URL validation, duplicates.
//!
//! Lines are read lazily, one at a time, so a list of a million URLs costs
//! no more memory than a list of ten (apart from the duplicate check, which
//! keeps 8 bytes per distinct line). Every line that is neither blank nor a
//! comment becomes an [`InputLine`]: valid or not, it is accounted for
//! downstream.

use crate::seen::HashSet64;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use url::Url;

use crate::run::resume::Done;
use crate::shard::Shard;

mod bom;

/// Longest input line accepted, in bytes. Browsers stop at about 2 MB; a
/// line longer than this is almost surely not a URL list (a binary file, a
/// minified bundle), and reading it whole would make memory depend on input.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Where URLs are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file of URLs.
    File(PathBuf),
}

impl Source {
    /// An INPUT argument: `-` is standard input, anything else a file.
    pub fn from_arg(arg: &str) -> Self {
        match arg {
            "-" => Source::Stdin,
            path => Source::File(PathBuf::from(path)),
        }
    }

    /// The name used in messages: the path, or `<stdin>`.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// One accounted input line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputLine {
    /// The line, trimmed, as the user wrote it.
    pub raw: String,
    /// The URL to fetch, or why the line is not one.
    pub url: Result<Url, String>,
    /// Position among the lines passed on (0, 1, 2, …; duplicates and
    /// lines an interrupted run finished are not passed on): the order
    /// `--ordered` writes pages in.
    pub seq: u64,
}

impl InputLine {
    /// The value for the `page_url` column: the normalised URL, or the raw
    /// line when it is not a URL.
    pub fn page_url(&self) -> &str {
        match &self.url {
            Ok(url) => url.as_str(),
            Err(_) => &self.raw,
        }
    }
}

/// Opens every source up front, so an unreadable file stops the run before
/// any request is made.
pub fn open_sources(sources: &[Source]) -> anyhow::Result<Vec<(String, Box<dyn BufRead + Send>)>> {
    sources
        .iter()
        .map(|s| {
            let reader: Box<dyn BufRead + Send> = match s {
                Source::Stdin => Box::new(BufReader::new(io::stdin())),
                Source::File(path) => Box::new(BufReader::new(open_file(path)?)),
            };
            Ok((s.name(), reader))
        })
        .collect()
}

fn open_file(path: &Path) -> anyhow::Result<File> {
    let file = File::open(path).with_context(|| format!("cannot read input {}", path.display()))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        anyhow::bail!("cannot read input {}: is a directory", path.display());
    }
    Ok(file)
}

/// Counts of lines that produce no page: what the summary reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Lines whose URL (or, for an invalid line, whose text) was already seen.
    pub duplicates: u64,
    /// Lines an interrupted run had finished (`--resume`).
    pub resumed: u64,
    /// Lines left to the other shards (`--shard`), duplicates among them
    /// included.
    pub other_shards: u64,
}

/// Reads lines from the sources in order, calling `emit` for each distinct
/// non-blank, non-comment line of `shard` (all lines without one) that
/// `done` (an interrupted run's finished lines) does not hold. `emit`
/// returns false to stop reading (the pipeline has shut down).
///
/// Lines of other shards are counted in `other_shards` and passed over
/// before the duplicate check: a URL and its duplicates are always of the
/// same shard (the same site), so each shard counts its own duplicates,
/// and the shards' counts add up to the whole list's.
pub fn read_lines(
    sources: Vec<(String, Box<dyn BufRead + Send>)>,
    done: Option<Done>,
    shard: Option<Shard>,
    duplicates: &AtomicU64,
    other_shards: &AtomicU64,
    mut emit: impl FnMut(InputLine) -> bool,
) -> anyhow::Result<Skipped> {
    let done = done.unwrap_or_default();
    let mut seen = Seen {
        hasher: done.hasher().clone(),
        hashes: HashSet64::default(),
    };
    let mut skipped = Skipped::default();
    let mut emitted = 0u64;
    let mut buf = Vec::new();
    for (name, reader) in sources {
        let mut reader =
            bom::strip_or_decode(reader).with_context(|| format!("error reading input {name}"))?;
        let mut line_no = 0u64;
        loop {
            let too_long = match read_line_bounded(&mut reader, &mut buf) {
                Ok(None) => break,
                Ok(Some(too_long)) => too_long,
                Err(e) => return Err(e).with_context(|| format!("error reading input {name}")),
            };
            line_no += 1;
            let Some(line) = classify_line(&buf, too_long, &name, line_no) else {
                continue;
            };
            if let Some(shard) = shard
                && !shard_keeps(shard, &line)
            {
                skipped.other_shards += 1;
                other_shards.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let key = seen.key(&line);
            if !seen.hashes.insert(key) {
                skipped.duplicates += 1;
                // Also counted where a run that stops early can read it
                // without waiting for this thread.
                duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if done.contains(key) {
                skipped.resumed += 1;
                continue;
            }
            let mut line = line;
            line.seq = emitted;
            emitted += 1;
            if !emit(line) {
                return Ok(skipped);
            }
        }
    }
    Ok(skipped)
}

/// Whether `shard` reports `line`: a URL of one of its sites, or a line
/// that is not a URL when it is the first shard (so that each invalid line
/// has one row across the shards).
fn shard_keeps(shard: Shard, line: &InputLine) -> bool {
    match &line.url {
        Ok(url) => shard.keeps(url),
        Err(_) => shard.keeps_invalid_lines(),
    }
}

/// Whether `bytes`, a non-blank, non-comment line of an input without its
/// terminator, is one `shard` reports, as [`read_lines`] decides: for
/// counting lines on the side (the progress bar's total).
pub fn in_shard(bytes: &[u8], shard: Shard) -> bool {
    // A UTF-8 byte-order mark, which the reader strips at the start.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let too_long = bytes.len() > MAX_LINE_BYTES;
    let bytes = &bytes[..bytes.len().min(MAX_LINE_BYTES)];
    classify_line(bytes, too_long, "", 0).is_some_and(|line| shard_keeps(shard, &line))
}

/// Reads one line into `buf` without its terminator, keeping at most
/// [`MAX_LINE_BYTES`] of it. Returns `None` at end of input, else whether the
/// line was cut.
fn read_line_bounded(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (part, used, done) = match memchr_newline(chunk) {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        if part.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        reader.consume(used);
        if done {
            return Ok(Some(too_long));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Turns a raw line into an accounted input, or `None` for a blank or
/// comment line.
fn classify_line(bytes: &[u8], too_long: bool, source: &str, line_no: u64) -> Option<InputLine> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    // A NUL byte would reach the page_url cell, where CSV readers and
    // databases cut the value or refuse the file.
    let raw = trimmed.replace('\0', "\u{FFFD}");
    let url = if too_long {
        Err(format!("line longer than {MAX_LINE_BYTES} bytes"))
    } else if std::str::from_utf8(bytes).is_err() {
        Err("line is not valid UTF-8".to_owned())
    } else if bytes.contains(&0) {
        // Text lists never hold NUL; a binary file does, and its lines must
        // not turn into requests to junk hosts.
        Err("line contains NUL bytes (is the input a binary file, or UTF-16 without a byte-order mark?)".to_owned())
    } else if trimmed.contains(|c: char| c.is_ascii_control()) {
        // The URL parser would drop a tab or CR silently and join what
        // surrounds it into a URL nobody wrote.
        Err(
            "line holds a tab, carriage return or other control character \
             (a tab-separated file, or old Mac line endings?)"
                .to_owned(),
        )
    } else {
        parse_url(&raw)
    };
    let url = url.map_err(|why| format!("{source} line {line_no}: {why}"));
    Some(InputLine { raw, url, seq: 0 })
}

/// Parses a line as an http(s) URL; a bare host (`example.com`,
/// `example.com:8443/path`) means `https://` that host.
pub fn parse_url(line: &str) -> Result<Url, String> {
    let candidate = if line.contains("://") {
        line.to_owned()
    } else if let Some(rest) = line.strip_prefix("//") {
        format!("https://{rest}")
    } else if let Some(scheme) = leading_scheme(line) {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "unsupported scheme {scheme:?}; only http and https are fetched"
            ));
        }
        // `http:/host/` and `http:host`: the URL standard repairs these, as
        // browsers do.
        line.to_owned()
    } else {
        format!("https://{line}")
    };
    let mut url = Url::parse(&candidate).map_err(|e| format!("not a URL ({e})"))?;
    // A fragment is never sent to the server: `about.html#team` is the
    // same page as `about.html`, fetched and reported once.
    url.set_fragment(None);
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "unsupported scheme {other:?}; only http and https are fetched"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".to_owned());
    }
    // The URL standard admits a few host characters that HTTP does not
    // (`a,b"c`); such a URL could never be requested.
    if url.as_str().parse::<http::Uri>().is_err() {
        return Err("not a valid HTTP URL (characters HTTP does not allow in the host)".to_owned());
    }
    if let Some(url::Host::Domain(host)) = url.host()
        && let Err(why) = check_dns_name(host)
    {
        return Err(format!("host {host:?} is not a DNS name: {why}"));
    }
    Ok(url)
}

/// A host the URL standard accepts but no resolver or TLS library will
/// (`https://-x/`, `https://'a/`) would fail as `connect` on every run,
/// and `--resume` would retry it each time; it is an invalid line instead.
/// The url crate has already lower-cased the name and turned non-ASCII
/// labels into `xn--` form. Underscores are allowed, as in practice.
fn check_dns_name(host: &str) -> Result<(), &'static str> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("a label is empty or longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, '-' and '_' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

/// For a line without `://`: the scheme it starts with, if the part before
/// the first `:` is one (`mailto:x`, `javascript:…`, `tel:911`), as opposed
/// to a host and port (`example.com:8080`, `localhost:8801/`).
///
/// `word:digits` is both a host with a port and a URL of scheme `word`;
/// it is a URL when `word` is http(s) (`http:127.0.0.1/`, which browsers
/// repair) or a registered scheme ([`KNOWN_SCHEMES`]), so that `tel:911`
/// is never fetched as `https://tel:911/`.
fn leading_scheme(line: &str) -> Option<&str> {
    let (head, tail) = line.split_once(':')?;
    let mut chars = head.chars();
    let is_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return None;
    }
    let port_follows = tail.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let known = head.eq_ignore_ascii_case("http")
        || head.eq_ignore_ascii_case("https")
        || is_known_scheme(head);
    (known || !port_follows).then_some(head)
}

/// URI schemes that a line may start with and that are not http(s): the
/// IANA registry's permanent schemes and the provisional ones seen in
/// page links. A name here followed by digits (`tel:911`, `urn:1234`) is
/// read as that scheme, not as a host and port.
/// Whether `name` is one of [`KNOWN_SCHEMES`], in any case.
pub(crate) fn is_known_scheme(name: &str) -> bool {
    KNOWN_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(name))
}

const KNOWN_SCHEMES: &[&str] = &[
    "aaa",
    "aaas",
    "about",
    "acap",
    "acct",
    "afp",
    "android-app",
    "app",
    "bitcoin",
    "blob",
    "callto",
    "cap",
    "chrome",
    "chrome-extension",
    "cid",
    "coap",
    "coap+tcp",
    "coap+ws",
    "coaps",
    "coaps+tcp",
    "coaps+ws",
    "content",
    "crid",
    "data",
    "dav",
    "dict",
    "dns",
    "ed2k",
    "edge",
    "ethereum",
    "example",
    "facetime",
    "fax",
    "feed",
    "file",
    "finger",
    "fish",
    "ftp",
    "ftps",
    "geo",
    "git",
    "go",
    "gopher",
    "h323",
    "iax",
    "icap",
    "im",
    "imap",
    "info",
    "intent",
    "ipfs",
    "ipns",
    "ipp",
    "ipps",
    "irc",
    "irc6",
    "ircs",
    "iris",
    "itms",
    "itms-apps",
    "jar",
    "javascript",
    "ldap",
    "ldaps",
    "magnet",
    "mailto",
    "maps",
    "market",
    "matrix",
    "mid",
    "mms",
    "modem",
    "moz-extension",
    "msrp",
    "msrps",
    "mtqp",
    "mupdate",
    "mvn",
    "news",
    "nfs",
    "ni",
    "nih",
    "nntp",
    "opaquelocktoken",
    "pkcs11",
    "pop",
    "pres",
    "redis",
    "rediss",
    "reload",
    "resource",
    "rtmp",
    "rtmps",
    "rtsp",
    "rtsps",
    "rtspu",
    "s3",
    "service",
    "session",
    "sftp",
    "shttp",
    "sieve",
    "sip",
    "sips",
    "skype",
    "slack",
    "smb",
    "sms",
    "snmp",
    "spotify",
    "ssh",
    "steam",
    "stun",
    "stuns",
    "svn",
    "tag",
    "teams",
    "tel",
    "telnet",
    "tftp",
    "tg",
    "thismessage",
    "tip",
    "tn3270",
    "turn",
    "turns",
    "tv",
    "udp",
    "urn",
    "vemmi",
    "viber",
    "view-source",
    "vnc",
    "webcal",
    "whatsapp",
    "ws",
    "wss",
    "xcon",
    "xcon-userid",
    "xmpp",
    "z39.50r",
    "z39.50s",
    "zoommtg",
    "zoomus",
];

/// Distinct lines seen so far, as 64-bit hashes: 8 bytes a line instead of
/// the URL itself. With a per-run random key, two distinct URLs of a
/// million-line list collide with probability about 3e-8.
struct Seen {
    hasher: RandomState,
    hashes: HashSet64,
}

impl Seen {
    /// The line's key: the same as [`Done::key`] gives, as both share the
    /// hasher.
    fn key(&self, line: &InputLine) -> u64 {
        match &line.url {
            // As the report shows it, which is what --resume reads back.
            Ok(url) => self
                .hasher
                .hash_one((0u8, &*crate::output::without_password(url.as_str()))),
            Err(_) => self
                .hasher
                .hash_one((1u8, &*crate::output::without_password(&line.raw))),
        }
    }
}

/// Reads everything from `reader` into lines.
#[cfg(test)]
fn lines_from(reader: impl io::Read + Send + 'static) -> anyhow::Result<(Vec<InputLine>, Skipped)> {
    lines_of(reader, None)
}

/// Reads everything from `reader` into the lines of `shard`.
#[cfg(test)]
fn lines_of(
    reader: impl io::Read + Send + 'static,
    shard: Option<Shard>,
) -> anyhow::Result<(Vec<InputLine>, Skipped)> {
    let mut out = Vec::new();
    let other_shards = AtomicU64::new(0);
    let skipped = read_lines(
        vec![("<test>".to_owned(), Box::new(BufReader::new(reader)))],
        None,
        shard,
        &AtomicU64::new(0),
        &other_shards,
        |l| {
            out.push(l);
            true
        },
    )?;
    assert_eq!(other_shards.into_inner(), skipped.other_shards);
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_no_resolver_accepts_are_invalid_lines() {
        for bad in [
            "-notaurl",
            "https://'quoted/",
            "http://a..b/",
            "http://x-.test/",
            "http://a$b.test/",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(err.contains("is not a DNS name"), "{bad}: {err}");
        }
        for good in [
            "http://under_score.example.com/",
            "https://xn--bcher-kva.example/",
            "https://bücher.example/",
            "http://localhost:8080/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "https://example.com./",
            "http://a-b.c-d.test/",
        ] {
            assert!(parse_url(good).is_ok(), "{good}");
        }
    }

    fn urls(text: &str) -> Vec<Result<String, String>> {
        let (lines, _) = lines_from(io::Cursor::new(text.to_owned().into_bytes())).unwrap();
        lines
            .into_iter()
            .map(|l| l.url.map(|u| u.to_string()))
            .collect()
    }

    #[test]
    fn bare_hosts_mean_https() {
        assert_eq!(
            parse_url("example.com").unwrap().as_str(),
            "https://example.com/"
        );
        assert_eq!(
            parse_url("example.com:8443/a?b").unwrap().as_str(),
            "https://example.com:8443/a?b"
        );
        assert_eq!(
            parse_url("//example.com/x").unwrap().as_str(),
            "https://example.com/x"
        );
        assert_eq!(
            parse_url("HTTP://Example.COM:80").unwrap().as_str(),
            "http://example.com/"
        );
        assert_eq!(
            parse_url("http:/example.com/a").unwrap().as_str(),
            "http://example.com/a"
        );
        assert_eq!(
            parse_url("HTTPS:example.com").unwrap().as_str(),
            "https://example.com/"
        );
    }

    #[test]
    fn other_schemes_and_junk_are_invalid() {
        for bad in [
            "mailto:someone@example.com",
            "javascript:alert(1)",
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://",
            "https://exa mple.com/",
            "http://[::1",
            "data:text/html,hi",
            "a,b\"c",
            "nul\0host.test",
            "tel:911",
            "urn:1234",
            "TEL:+1-555-0100",
            "sms:5550100",
            "z39.50r:2000/x",
        ] {
            let err = parse_url(bad).expect_err(bad);
            assert!(!err.contains("dns"), "{bad}: {err}");
        }
        assert!(parse_url("tel:911").unwrap_err().contains("\"tel\""));
    }

    #[test]
    fn control_characters_inside_a_line_make_it_invalid() {
        let text = "https://a.test/r0\rhttps://a.test/r1\rhttps://a.test/r2\nhttps://a.test/x\tSome title\nhttps://a.test/ok\r\n";
        let (lines, _) = lines_from(io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        let valid: Vec<bool> = lines.iter().map(|l| l.url.is_ok()).collect();
        assert_eq!(valid, [false, false, true]);
        assert!(
            lines[0]
                .url
                .as_ref()
                .unwrap_err()
                .contains("carriage return")
        );
    }

    #[test]
    fn fragments_are_not_part_of_the_page() {
        let text = "https://a.test/about.html#team\nhttps://a.test/about.html\nhttps://a.test/x#\n";
        let (lines, skipped) = lines_from(io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        let got: Vec<_> = lines.iter().map(|l| l.page_url().to_owned()).collect();
        assert_eq!(got, ["https://a.test/about.html", "https://a.test/x"]);
        assert_eq!(skipped.duplicates, 1);
    }

    #[test]
    fn scheme_without_slashes_is_repaired_as_browsers_do() {
        for (line, url) in [
            ("http:127.0.0.1/", "http://127.0.0.1/"),
            ("http:1password.com/", "http://1password.com/"),
            ("https:1password.com", "https://1password.com/"),
            ("http:localhost:8801/", "http://localhost:8801/"),
            ("HTTP:/example.com/a", "http://example.com/a"),
            ("localhost:8801/x", "https://localhost:8801/x"),
            ("example.com:8443/shop", "https://example.com:8443/shop"),
            ("intranet:8080", "https://intranet:8080/"),
        ] {
            assert_eq!(
                parse_url(line).map(String::from).as_deref(),
                Ok(url),
                "{line}"
            );
        }
    }

    #[test]
    fn blank_comment_whitespace_and_duplicates() {
        let text = "  https://a.test/  \n\n# comment\n   # indented comment\nhttps://a.test/\nA.TEST\nnot a url\nnot a url\nhttps://b.test/x\r\n";
        let (lines, skipped) = lines_from(io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        let got: Vec<_> = lines.iter().map(|l| l.page_url().to_owned()).collect();
        assert_eq!(got, ["https://a.test/", "not a url", "https://b.test/x"]);
        assert_eq!(skipped.duplicates, 3);
        assert!(lines[1].url.as_ref().unwrap_err().contains("line 7"));
    }

    #[test]
    fn long_and_non_utf8_lines_are_accounted_not_lost() {
        let mut text = vec![b'a'; MAX_LINE_BYTES + 10];
        text.extend_from_slice(b"\nhttps://ok.test/\nhttps://bad.test/\xff\xfe\n");
        assert!(urls("").is_empty());
        let (lines, _) = lines_from(io::Cursor::new(text)).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].url.as_ref().unwrap_err().contains("longer than"));
        assert_eq!(lines[1].url.as_ref().unwrap().as_str(), "https://ok.test/");
        assert!(lines[2].url.as_ref().unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn each_line_is_in_one_shard_and_duplicates_are_counted_where_they_are() {
        // Shards of 3 as pinned in crate::shard: bbc.co.uk is 3, example.com
        // 2, alice.github.io 1. Invalid lines are the first shard's.
        let text = "https://www.bbc.co.uk/\nhttps://example.com/a\nnot a url\n\
                    https://news.bbc.co.uk/\nHTTPS://WWW.BBC.CO.UK\nalice.github.io\n\
                    example.com/a\nnot a url\n# comment\n\nftp://x.test/\n";
        let mut seen = Vec::new();
        let mut duplicates = 0;
        for k in 1..=3 {
            let shard = Shard::new(k, 3).unwrap();
            let (lines, skipped) =
                lines_of(io::Cursor::new(text.as_bytes().to_vec()), Some(shard)).unwrap();
            let got: Vec<String> = lines.iter().map(|l| l.page_url().to_owned()).collect();
            // Numbered from 0 within the shard, for --ordered.
            let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
            assert_eq!(seqs, (0..lines.len() as u64).collect::<Vec<_>>());
            // Every non-blank, non-comment line is this shard's or another's.
            assert_eq!(
                lines.len() as u64 + skipped.duplicates + skipped.other_shards,
                9,
                "shard {k}: {got:?} {skipped:?}"
            );
            // What the progress bar counts agrees.
            let counted = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .filter(|l| in_shard(l.as_bytes(), shard))
                .count() as u64;
            assert_eq!(counted, lines.len() as u64 + skipped.duplicates);
            duplicates += skipped.duplicates;
            seen.push(got);
        }
        assert_eq!(
            seen,
            [
                vec!["not a url", "https://alice.github.io/", "ftp://x.test/"],
                vec!["https://example.com/a"],
                vec!["https://www.bbc.co.uk/", "https://news.bbc.co.uk/"],
            ]
        );
        // As many duplicates in all as the whole list has.
        let (_, whole) = lines_from(io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        assert_eq!(duplicates, whole.duplicates);
        assert_eq!(whole.other_shards, 0);
        assert!(!in_shard(
            b"https://www.bbc.co.uk/",
            Shard::new(1, 3).unwrap()
        ));
        assert!(in_shard(
            b"\xef\xbb\xbfbbc.co.uk",
            Shard::new(3, 3).unwrap()
        ));
    }

    #[test]
    fn last_line_without_newline_counts() {
        assert_eq!(
            urls("a.test\nb.test"),
            [Ok("https://a.test/".into()), Ok("https://b.test/".into())]
        );
    }
}
