//! Sitemaps (`--sitemap`): the URLs a site lists for crawlers.
//!
//! Reads the three forms the sitemaps protocol (sitemaps.org) defines: a
//! `<urlset>` of page URLs, a `<sitemapindex>` of further sitemaps, and a
//! plain text file of URLs, each possibly gzipped (`sitemap.xml.gz` is
//! served as a file, not with a Content-Encoding). XML is read with
//! quick-xml as a stream of events, so a large sitemap costs its URLs, not
//! a tree. [`parse`] is pure; [`fetch`] gets one over HTTP.

use std::io::Read as _;

use quick_xml::events::Event;
use url::Url;

use crate::fetch::Fetcher;

/// Largest sitemap read, uncompressed: the protocol's limit.
pub const MAX_SITEMAP_BYTES: u64 = 50 * 1024 * 1024;

/// Sitemaps read in one run, index entries included: a bound on a site
/// whose index lists sitemaps without end.
pub const MAX_SITEMAPS: usize = 10_000;

/// What one sitemap lists.
#[derive(Debug, PartialEq, Eq)]
pub enum Sitemap {
    /// A sitemap index (or the `Sitemap:` lines of a robots.txt): more
    /// sitemaps.
    Index(Vec<Url>),
    /// Page URLs.
    Pages(Vec<Url>),
}

/// Reads a sitemap's body: gzip or not, XML or plain text. Entries that
/// are not http(s) URLs are left out.
pub fn parse(body: &[u8]) -> Result<Sitemap, String> {
    let unzipped;
    let body = if body.starts_with(&[0x1f, 0x8b]) {
        unzipped = gunzip(body)?;
        &unzipped[..]
    } else {
        body
    };
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => parse_xml(body),
        Some(_) => Ok(Sitemap::Pages(
            String::from_utf8_lossy(body)
                .lines()
                .filter_map(|line| http_url(line.trim()))
                .collect(),
        )),
        None => Err("the sitemap is empty".to_owned()),
    }
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_SITEMAP_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot gunzip the sitemap: {e}"))?;
    if out.len() as u64 > MAX_SITEMAP_BYTES {
        return Err(format!(
            "the sitemap is larger than {} MB uncompressed",
            MAX_SITEMAP_BYTES >> 20
        ));
    }
    Ok(out)
}

fn http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// The `<loc>` of each `<url>` or `<sitemap>`; the root element says which
/// kind of sitemap it is.
fn parse_xml(body: &[u8]) -> Result<Sitemap, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut root: Option<Vec<u8>> = None;
    let mut loc: Option<String> = None;
    let mut urls = Vec::new();
    // Elements open: quick-xml ends quietly at the end of the input, so a
    // sitemap cut short would otherwise read as a whole, shorter one.
    let mut open = 0usize;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            format!(
                "not a sitemap: XML error at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(e) => {
                open += 1;
                let name = e.local_name().as_ref().to_ascii_lowercase();
                if root.is_none() {
                    root = Some(name);
                } else if name == b"loc" {
                    loc = Some(String::new());
                }
            }
            Event::Text(t) => {
                if let Some(loc) = &mut loc {
                    loc.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(loc) = &mut loc {
                    loc.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(loc) = &mut loc {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        loc.push(c);
                    } else {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        let entity = quick_xml::escape::resolve_xml_entity(&name)
                            .ok_or_else(|| format!("not a sitemap: unknown entity &{name};"))?;
                        loc.push_str(entity);
                    }
                }
            }
            Event::End(e) => {
                open = open.saturating_sub(1);
                if e.local_name().as_ref().eq_ignore_ascii_case(b"loc")
                    && let Some(url) = loc.take().and_then(|l| http_url(l.trim()))
                {
                    urls.push(url);
                }
            }
            Event::Eof if open > 0 => {
                return Err(format!(
                    "not a whole sitemap: it ends after {} bytes with {open} element(s) open \
                     (cut short?)",
                    body.len()
                ));
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match root.as_deref() {
        Some(b"urlset") => Ok(Sitemap::Pages(urls)),
        Some(b"sitemapindex") => Ok(Sitemap::Index(urls)),
        Some(other) => Err(format!(
            "not a sitemap: the root element is <{}>",
            String::from_utf8_lossy(other)
        )),
        None => Err("not a sitemap: no XML element".to_owned()),
    }
}

/// Fetches and reads the sitemap at `url`.
pub async fn fetch(fetcher: &Fetcher, url: &Url) -> Result<Sitemap, String> {
    let (status, body) = fetcher
        .fetch_text(url, MAX_SITEMAP_BYTES)
        .await
        .map_err(|f| format!("{}: {}", f.error.kind, f.error.detail))?;
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    // Parsing 50 MB takes a while: off the async workers.
    tokio::task::spawn_blocking(move || parse(&body))
        .await
        .map_err(|e| format!("internal error: {e}"))?
}

/// The sitemaps a host's robots.txt names (its `Sitemap:` lines), as an
/// index; none when it has no usable robots.txt.
pub async fn from_robots(fetcher: &Fetcher, page: &Url, agent: &str) -> Result<Sitemap, String> {
    let url = crate::crawl::robots::robots_url(page);
    let (status, body) = fetcher
        .fetch_text(&url, crate::crawl::robots::MAX_ROBOTS_BYTES)
        .await
        .map_err(|f| {
            let url = crate::output::without_password(url.as_str());
            format!("{url}: {}: {}", f.error.kind, f.error.detail)
        })?;
    if !(200..300).contains(&status) {
        return Ok(Sitemap::Index(Vec::new()));
    }
    let listed = texting_robots::Robot::new(agent, &body)
        .map(|robot| robot.sitemaps)
        .unwrap_or_default();
    Ok(Sitemap::Index(named_in_robots(&url, &listed)))
}

/// The http(s) URLs of a robots.txt's `Sitemap:` lines, resolved against
/// the robots.txt's URL.
pub fn named_in_robots(robots_url: &Url, lines: &[String]) -> Vec<Url> {
    lines
        .iter()
        .filter_map(|s| http_url(s.trim()).or_else(|| robots_url.join(s.trim()).ok()))
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn pages(s: &Sitemap) -> Vec<&str> {
        match s {
            Sitemap::Pages(urls) | Sitemap::Index(urls) => urls.iter().map(Url::as_str).collect(),
        }
    }

    #[test]
    fn urlset_with_entities_cdata_and_junk() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://e.test/a?x=1&amp;y=2</loc><lastmod>2026-01-01</lastmod></url>
  <url><loc> https://e.test/b </loc></url>
  <url><loc><![CDATA[https://e.test/c]]></loc></url>
  <url><loc>ftp://e.test/not-http</loc></url>
  <url><loc>https://e.test/&#100;</loc></url>
</urlset>"#;
        let s = parse(xml).unwrap();
        assert!(matches!(s, Sitemap::Pages(_)));
        assert_eq!(
            pages(&s),
            [
                "https://e.test/a?x=1&y=2",
                "https://e.test/b",
                "https://e.test/c",
                "https://e.test/d"
            ]
        );
    }

    #[test]
    fn a_sitemap_cut_short_is_not_read_as_a_shorter_one() {
        let xml = b"<urlset><url><loc>https://e.test/a</loc></url><url><loc>https://e.t";
        let Err(err) = parse(xml) else {
            panic!("a sitemap cut short was read")
        };
        assert!(err.contains("cut short"), "{err}");
        // Whole, with an empty element and a comment after the root.
        let xml = b"<urlset><url><loc>https://e.test/a</loc><x/></url></urlset><!-- end -->";
        assert_eq!(pages(&parse(xml).unwrap()), ["https://e.test/a"]);
    }

    #[test]
    fn index_gzip_and_text() {
        let xml = b"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>\
            <sitemap><loc>https://e.test/s1.xml.gz</loc></sitemap></sitemapindex>";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(xml).unwrap();
        let s = parse(&gz.finish().unwrap()).unwrap();
        assert_eq!(
            s,
            Sitemap::Index(vec![Url::parse("https://e.test/s1.xml.gz").unwrap()])
        );
        let text = parse(b"\xEF\xBB\xBFhttps://e.test/1\n\nnot a url\nhttps://e.test/2\n").unwrap();
        assert_eq!(pages(&text), ["https://e.test/1", "https://e.test/2"]);
    }

    #[test]
    fn not_sitemaps() {
        assert!(
            parse(b"<html><body>hi</body></html>")
                .unwrap_err()
                .contains("<html>")
        );
        assert!(parse(b"<urlset><url><loc>x</loc></urlset>").is_err());
        assert!(parse(b"   ").is_err());
        assert!(parse(b"\x1f\x8bnot gzip").unwrap_err().contains("gunzip"));
    }
}
