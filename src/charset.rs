//! Turning a fetched body into text: which character encoding, and decoding.
//!
//! The order of evidence is the HTML standard's encoding sniffing
//! algorithm: a byte order mark, then the `charset` parameter of
//! Content-Type, then a `<meta>` declaration in the first 1024 bytes, then a
//! statistical guess (chardetng, the detector Firefox uses, told the page's
//! top-level domain as Firefox does), and windows-1252 when even that has
//! nothing to go on. A label that names no encoding counts as absent. A
//! valid label is obeyed even when it is wrong, as browsers obey it.
//! Decoding never fails: malformed sequences become U+FFFD.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252, X_USER_DEFINED};

/// How many bytes of the body the `<meta>` prescan looks at (HTML standard).
const PRESCAN_BYTES: usize = 1024;

/// Decodes `body` to text. `header_charset` is the Content-Type `charset`
/// parameter; `tld` the top-level domain of the page's host, a hint for the
/// statistical guess. Returns the text and the encoding used.
pub fn decode(
    body: &[u8],
    header_charset: Option<&str>,
    tld: Option<&str>,
) -> (String, &'static Encoding) {
    let encoding = sniff(body, header_charset, tld);
    let (text, used, _had_errors) = encoding.decode(body);
    (text.into_owned(), used)
}

/// Like [`decode`], but takes the body by value, so that a UTF-8 body
/// without a BOM, the common case, becomes the text without a copy.
pub fn decode_owned(
    body: Vec<u8>,
    header_charset: Option<&str>,
    tld: Option<&str>,
) -> (String, &'static Encoding) {
    let encoding = sniff(&body, header_charset, tld);
    if encoding == UTF_8 && !body.starts_with(b"\xef\xbb\xbf") {
        match String::from_utf8(body) {
            Ok(text) => return (text, UTF_8),
            Err(e) => return decode(e.as_bytes(), header_charset, tld),
        }
    }
    decode(&body, header_charset, tld)
}

/// The encoding sniffing algorithm: which encoding `body` is in.
fn sniff(body: &[u8], header_charset: Option<&str>, tld: Option<&str>) -> &'static Encoding {
    Encoding::for_bom(body)
        .map(|(enc, _)| enc)
        .or_else(|| header_charset.and_then(|l| Encoding::for_label(l.trim().as_bytes())))
        .or_else(|| prescan(&body[..body.len().min(PRESCAN_BYTES)]))
        .unwrap_or_else(|| guess(body, tld))
}

/// The statistical step. Valid UTF-8 is taken as UTF-8 straight away, as
/// Chrome does (Firefox does not, to keep authors labelling pages; for
/// an inventory the right text matters more). ISO-2022-JP is never
/// guessed, as browsers must not for pages that run scripts.
fn guess(body: &[u8], tld: Option<&str>) -> &'static Encoding {
    if std::str::from_utf8(body).is_ok() {
        return UTF_8;
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(body, true);
    let tld = tld.filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    detector.guess(tld.map(str::as_bytes), Utf8Detection::Allow)
}

/// The top-level domain of a URL's host, lower-case, for [`decode`]; none
/// for an IP address.
pub fn tld_of(url: &url::Url) -> Option<&str> {
    match url.host()? {
        url::Host::Domain(d) => d.rsplit('.').next().filter(|t| !t.is_empty()),
        _ => None,
    }
}

/// The `charset` parameter of a Content-Type value, if any.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']))
    })
}

/// A reduced form of the standard's meta prescan: finds `<meta … charset=X>`
/// or `<meta http-equiv=content-type content="…; charset=X">` in the head of
/// the document. A UTF-16 label there means UTF-8, as the standard says
/// (a document that really is UTF-16 has a BOM).
fn prescan(head: &[u8]) -> Option<&'static Encoding> {
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let mut at = 0;
    while let Some(pos) = lower[at..].iter().position(|&b| b == b'<') {
        let start = at + pos;
        let rest = &lower[start..];
        if rest.starts_with(b"<!--") {
            // A <meta> inside a comment declares nothing.
            at = find(&rest[4..], b"-->").map_or(lower.len(), |e| start + 4 + e + 3);
            continue;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'>')
            .map_or(lower.len(), |e| start + e);
        let is_meta = rest.starts_with(b"<meta")
            && rest
                .get(5)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'/');
        if is_meta {
            let label = charset_in_tag(&lower[start + 5..end]);
            if let Some(enc) = label.and_then(Encoding::for_label) {
                // The standard's fix-ups: a UTF-16 declaration in an
                // ASCII-compatible document means UTF-8, and x-user-defined
                // means windows-1252.
                return Some(if enc == UTF_16LE || enc == UTF_16BE {
                    UTF_8
                } else if enc == X_USER_DEFINED {
                    WINDOWS_1252
                } else {
                    enc
                });
            }
        }
        at = end.max(start + 1);
    }
    None
}

fn charset_in_tag(tag: &[u8]) -> Option<&[u8]> {
    let at = find(tag, b"charset")?;
    let mut rest = &tag[at + 7..];
    rest = trim_start(rest);
    rest = rest.strip_prefix(b"=")?;
    rest = trim_start(rest);
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let len = rest
        .iter()
        .position(|&b| {
            matches!(
                b,
                b'"' | b'\'' | b';' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'
            )
        })
        .unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_beats_header_beats_meta() {
        let body = b"\xef\xbb\xbf<meta charset=latin1>caf\xc3\xa9";
        let (text, enc) = decode(body, Some("iso-8859-2"), None);
        assert_eq!(enc, UTF_8);
        assert!(text.ends_with("café"));

        let (text, enc) = decode(b"<meta charset=utf-8>caf\xe9", Some("windows-1252"), None);
        assert_eq!(enc.name(), "windows-1252");
        assert!(text.ends_with("café"));
    }

    #[test]
    fn meta_prescan() {
        let (text, enc) = decode(
            b"<html><head><META CHARSET='ISO-8859-1'>caf\xe9",
            None,
            None,
        );
        assert_eq!(enc.name(), "windows-1252");
        assert!(text.ends_with("café"));
        let http_equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=shift_jis\">\x82\xa0";
        let (text, enc) = decode(http_equiv, None, None);
        assert_eq!(enc.name(), "Shift_JIS");
        assert!(text.ends_with('\u{3042}'));
        assert_eq!(decode(b"<meta charset=utf-16>x", None, None).1, UTF_8);
        assert_eq!(
            decode(b"<meta charset=x-user-defined>\xe9", None, None).0,
            "<meta charset=x-user-defined>\u{e9}"
        );
        let commented = b"<!-- <meta charset=koi8-r> --><meta charset=windows-1251>\xe9";
        assert_eq!(decode(commented, None, None).1.name(), "windows-1251");
        assert_eq!(decode(b"<metadata charset=koi8-r>x", None, None).1, UTF_8);
    }

    #[test]
    fn undeclared_pages_are_guessed_and_bogus_labels_ignored() {
        // "Привет, мир" in windows-1251, no declaration anywhere.
        let cp1251 =
            b"<p>\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0! \xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0!";
        let (text, enc) = decode(cp1251, Some("no-such-charset"), Some("ru"));
        assert_eq!(enc.name(), "windows-1251");
        assert!(text.contains("Привет, мир!"));
        assert_eq!(decode("<p>héllo".as_bytes(), None, None).1, UTF_8);
        assert_eq!(
            decode(b"<p>caf\xe9 cr\xe8me br\xfbl\xe9e", None, Some("fr")).1,
            WINDOWS_1252
        );
    }

    #[test]
    fn tlds() {
        let tld = |u: &str| tld_of(&url::Url::parse(u).unwrap()).map(str::to_owned);
        assert_eq!(tld("https://www.example.co.jp/x").as_deref(), Some("jp"));
        assert_eq!(tld("http://127.0.0.1:8080/"), None);
        assert_eq!(tld("http://localhost/"), Some("localhost".into()));
    }

    #[test]
    fn owned_decoding_matches_borrowed() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (b"<p>plain ascii", None),
            ("<p>héllo ✓".as_bytes(), Some("utf-8")),
            (b"\xef\xbb\xbf<p>bom", None),
            (b"<p>bad \xff utf-8", Some("utf-8")),
            (b"<meta charset=windows-1251>\xcf\xf0", None),
        ];
        for (body, label) in cases {
            assert_eq!(
                decode_owned(body.to_vec(), label, None),
                decode(body, label, None)
            );
        }
    }

    #[test]
    fn charset_parameter() {
        assert_eq!(charset_param("text/html; charset=\"UTF-8\""), Some("UTF-8"));
        assert_eq!(
            charset_param("text/html;Charset=koi8-r ; q=1"),
            Some("koi8-r")
        );
        assert_eq!(charset_param("text/html"), None);
    }
}
