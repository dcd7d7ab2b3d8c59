//! Turning a fetched body into text: which character encoding, and decoding.
//!
//! Order of evidence, from the HTML standard's encoding sniffing algorithm:
//! a byte order mark, then the `charset` parameter of Content-Type, then a
//! `<meta>` declaration in the first 1024 bytes, then UTF-8. Decoding never
//! fails: malformed sequences become U+FFFD, as in a browser.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252, X_USER_DEFINED};

/// How many bytes of the body the `<meta>` prescan looks at (HTML standard).
const PRESCAN_BYTES: usize = 1024;

/// Decodes `body` to text, choosing the encoding from the BOM, the
/// Content-Type `charset` label and a `<meta>` prescan. Returns the text and
/// the encoding used.
pub fn decode(body: &[u8], header_charset: Option<&str>) -> (String, &'static Encoding) {
    let encoding = Encoding::for_bom(body)
        .map(|(enc, _)| enc)
        .or_else(|| header_charset.and_then(|l| Encoding::for_label(l.trim().as_bytes())))
        .or_else(|| prescan(&body[..body.len().min(PRESCAN_BYTES)]))
        .unwrap_or(UTF_8);
    let (text, used, _had_errors) = encoding.decode(body);
    (text.into_owned(), used)
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
        let (text, enc) = decode(body, Some("iso-8859-2"));
        assert_eq!(enc, UTF_8);
        assert!(text.ends_with("café"));

        let (text, enc) = decode(b"<meta charset=utf-8>caf\xe9", Some("windows-1252"));
        assert_eq!(enc.name(), "windows-1252");
        assert!(text.ends_with("café"));
    }

    #[test]
    fn meta_prescan() {
        let (text, enc) = decode(b"<html><head><META CHARSET='ISO-8859-1'>caf\xe9", None);
        assert_eq!(enc.name(), "windows-1252");
        assert!(text.ends_with("café"));
        let http_equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=shift_jis\">\x82\xa0";
        let (text, enc) = decode(http_equiv, None);
        assert_eq!(enc.name(), "Shift_JIS");
        assert!(text.ends_with('\u{3042}'));
        assert_eq!(decode(b"<meta charset=utf-16>x", None).1, UTF_8);
        assert_eq!(
            decode(b"<meta charset=x-user-defined>\xe9", None).0,
            "<meta charset=x-user-defined>\u{e9}"
        );
        let commented = b"<!-- <meta charset=koi8-r> --><meta charset=windows-1251>\xe9";
        assert_eq!(decode(commented, None).1.name(), "windows-1251");
        assert_eq!(decode(b"<metadata charset=koi8-r>x", None).1, UTF_8);
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
