//! Turning a fetched body into text: which character encoding, and decoding.
//!
//! The order of evidence is the HTML standard's encoding sniffing
//! algorithm: a byte order mark, then the `charset` parameter of
//! Content-Type, then a `<meta>` declaration in the first 1024 bytes, then a
//! statistical guess (chardetng, the detector Firefox uses, told the page's
//! top-level domain as Firefox does). A label that names no encoding counts
//! as absent. A valid label is obeyed even when it is wrong, as browsers
//! obey it. Decoding never fails: malformed sequences become U+FFFD.
//!
//! The guess never picks UTF-8 for a web page, however valid its bytes:
//! Chromium and Firefox do not, so that authors keep labelling pages, and
//! a page guessed UTF-8 here would hash differently from what a browser
//! runs. Valid UTF-8 falls back by top-level domain instead (windows-1252
//! for `.com` and IP addresses), unless the user asks otherwise
//! ([`Hints::detect_utf8`]). A guess is only tentative: a `<meta>` the
//! parser meets later may still change it (see `extract`).

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{
    EncoderResult, Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252, X_USER_DEFINED,
};

/// How many bytes of the body the `<meta>` prescan looks at (HTML standard).
const PRESCAN_BYTES: usize = 1024;

/// How sure the sniffing algorithm is of an encoding (HTML standard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confidence {
    /// Declared (BOM, Content-Type or the `<meta>` prescan): final.
    Certain,
    /// Guessed: a `<meta>` met while parsing may change it.
    Tentative,
}

/// What decides a page's encoding besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// The Content-Type `charset` parameter.
    pub header_charset: Option<&'a str>,
    /// The top-level domain of the page's host ([`tld_of`]): the guess's
    /// fallback depends on it, as in browsers.
    pub tld: Option<&'a str>,
    /// Let the guess pick UTF-8 for an undeclared page whose bytes are
    /// valid UTF-8 (`--detect-utf8`), as browsers do only for `file:` URLs.
    pub detect_utf8: bool,
}

/// Decodes `body` to text as a browser decodes an http(s) page, with the
/// `<meta>` prescan but without a later `<meta>` (which needs the parser:
/// `extract::Extractor::extract_body_within`). `header_charset` is the
/// Content-Type `charset` parameter; `tld` the top-level domain of the
/// page's host. Returns the text and the encoding used.
pub fn decode(
    body: &[u8],
    header_charset: Option<&str>,
    tld: Option<&str>,
) -> (String, &'static Encoding) {
    let hints = Hints {
        header_charset,
        tld,
        detect_utf8: false,
    };
    let (encoding, _) = sniff(body, &hints);
    (decode_in(body, encoding), encoding)
}

/// The text of `body` in `encoding`, as [`sniff`] chose it (a BOM, if any,
/// is removed).
pub fn decode_in(body: &[u8], encoding: &'static Encoding) -> String {
    encoding.decode(body).0.into_owned()
}

/// Like [`decode_in`], but takes the body by value, so that a UTF-8 body
/// without a BOM, the common case, becomes the text without a copy.
pub fn decode_owned_in(body: Vec<u8>, encoding: &'static Encoding) -> String {
    if encoding == UTF_8 && !body.starts_with(b"\xef\xbb\xbf") {
        return match String::from_utf8(body) {
            Ok(text) => text,
            Err(e) => decode_in(e.as_bytes(), UTF_8),
        };
    }
    decode_in(&body, encoding)
}

/// The encoding sniffing algorithm: which encoding `body` is in, and how
/// sure that is.
pub fn sniff(body: &[u8], hints: &Hints) -> (&'static Encoding, Confidence) {
    let declared = Encoding::for_bom(body)
        .map(|(enc, _)| enc)
        .or_else(|| {
            hints
                .header_charset
                .and_then(|l| Encoding::for_label(l.trim().as_bytes()))
        })
        .or_else(|| prescan(&body[..body.len().min(PRESCAN_BYTES)]));
    match declared {
        Some(enc) => (enc, Confidence::Certain),
        None => (guess(body, hints), Confidence::Tentative),
    }
}

/// The statistical step. ISO-2022-JP is never guessed, as browsers must
/// not for pages that run scripts; UTF-8 only when the user asks.
fn guess(body: &[u8], hints: &Hints) -> &'static Encoding {
    // The detector would say the same after reading the whole body.
    if hints.detect_utf8 && std::str::from_utf8(body).is_ok() {
        return UTF_8;
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(body, true);
    // chardetng asserts a lower-case ASCII label without dots.
    let tld = hints.tld.filter(|t| {
        t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let utf8 = if hints.detect_utf8 {
        Utf8Detection::Allow
    } else {
        Utf8Detection::Deny
    };
    detector.guess(tld.map(str::as_bytes), utf8)
}

/// The encoding a `<meta>` declaration of `enc` means (HTML standard): a
/// UTF-16 label in an ASCII-compatible document means UTF-8 (a document
/// that really is UTF-16 has a BOM), and x-user-defined means
/// windows-1252.
pub fn declared(enc: &'static Encoding) -> &'static Encoding {
    if enc == UTF_16LE || enc == UTF_16BE {
        UTF_8
    } else if enc == X_USER_DEFINED {
        WINDOWS_1252
    } else {
        enc
    }
}

/// The encoding named by a `<meta http-equiv=content-type>` element's
/// `content`: the HTML standard's "extracting a character encoding from a
/// meta element", without [`declared`]'s fix-ups.
pub fn from_meta_content(content: &str) -> Option<&'static Encoding> {
    let s = content.as_bytes();
    let mut at = 0;
    loop {
        let found = s[at..]
            .windows(7)
            .position(|w| w.eq_ignore_ascii_case(b"charset"))?;
        let mut i = at + found + 7;
        while s.get(i).is_some_and(|b| is_html_space(*b)) {
            i += 1;
        }
        if s.get(i) != Some(&b'=') {
            // Not this "charset": look again from just before what
            // followed it.
            at = i;
            continue;
        }
        i += 1;
        while s.get(i).is_some_and(|b| is_html_space(*b)) {
            i += 1;
        }
        let rest = &s[i..];
        return match rest.first()? {
            &q @ (b'"' | b'\'') => {
                let len = rest[1..].iter().position(|&b| b == q)?;
                Encoding::for_label(&rest[1..1 + len])
            }
            _ => {
                let len = rest
                    .iter()
                    .position(|&b| is_html_space(b) || b == b';')
                    .unwrap_or(rest.len());
                Encoding::for_label(&rest[..len])
            }
        };
    }
}

/// ASCII whitespace as the HTML standard counts it.
fn is_html_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// The bytes a URL query gets in a document in `encoding`, before the URL
/// parser percent-encodes them: the URL standard's "percent-encode after
/// encoding", where a character the encoding cannot represent becomes
/// `%26%23` + its code point in decimal + `%3B` (the parser leaves `%`
/// alone, so this comes out as written). `encoding` must be an output
/// encoding (never UTF-16 or replacement).
pub fn encode_query<'a>(s: &'a str, encoding: &'static Encoding) -> Cow<'a, [u8]> {
    if encoding == UTF_8 || (s.is_ascii() && encoding.is_ascii_compatible()) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut encoder = encoding.new_encoder();
    let mut out = Vec::with_capacity(s.len() + 16);
    let mut rest = s;
    loop {
        let room = encoder
            .max_buffer_length_from_utf8_without_replacement(rest.len())
            .unwrap_or(rest.len() * 4 + 16);
        out.reserve(room);
        let (result, read) =
            encoder.encode_from_utf8_to_vec_without_replacement(rest, &mut out, true);
        rest = &rest[read..];
        match result {
            EncoderResult::InputEmpty => return Cow::Owned(out),
            EncoderResult::OutputFull => {}
            EncoderResult::Unmappable(c) => {
                out.extend_from_slice(format!("%26%23{}%3B", u32::from(c)).as_bytes());
            }
        }
    }
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
/// the document, with [`declared`]'s fix-ups.
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
                return Some(declared(enc));
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
        assert_eq!(
            decode(b"<metadata charset=koi8-r>x", None, None).1,
            WINDOWS_1252
        );
    }

    #[test]
    fn undeclared_pages_are_guessed_and_bogus_labels_ignored() {
        // "Привет, мир" in windows-1251, no declaration anywhere.
        let cp1251 =
            b"<p>\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0! \xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0!";
        let (text, enc) = decode(cp1251, Some("no-such-charset"), Some("ru"));
        assert_eq!(enc.name(), "windows-1251");
        assert!(text.contains("Привет, мир!"));
        assert_eq!(
            decode(b"<p>caf\xe9 cr\xe8me br\xfbl\xe9e", None, Some("fr")).1,
            WINDOWS_1252
        );
        let hints = Hints::default();
        assert_eq!(sniff(cp1251, &hints).1, Confidence::Tentative);
        let header = Hints {
            header_charset: Some("koi8-r"),
            ..hints
        };
        assert_eq!(sniff(cp1251, &header).1, Confidence::Certain);
        assert_eq!(
            sniff(b"<meta charset=koi8-r>", &hints).1,
            Confidence::Certain
        );
        assert_eq!(sniff(b"\xef\xbb\xbfx", &hints).1, Confidence::Certain);
    }

    #[test]
    fn valid_utf8_is_not_guessed_utf8_unless_asked() {
        let body = "<p>héllo wörld, ½ €".as_bytes();
        // As browsers do for http(s): the fallback of the top-level domain.
        let (text, enc) = decode(body, None, Some("com"));
        assert_eq!(enc, WINDOWS_1252);
        assert_eq!(text, "<p>hÃ©llo wÃ¶rld, Â½ â‚¬");
        assert_eq!(decode(body, None, None).1, WINDOWS_1252);
        assert_eq!(decode(body, None, Some("jp")).1.name(), "Shift_JIS");
        assert_eq!(decode(body, None, Some("ru")).1.name(), "windows-1251");
        assert_eq!(decode(b"<p>plain", None, Some("com")).1, WINDOWS_1252);
        let asked = Hints {
            tld: Some("jp"),
            detect_utf8: true,
            ..Hints::default()
        };
        assert_eq!(sniff(body, &asked), (UTF_8, Confidence::Tentative));
        // Asking changes nothing for bytes that are not UTF-8.
        let latin = b"<p>caf\xe9 cr\xe8me br\xfbl\xe9e";
        let asked = Hints {
            tld: Some("fr"),
            detect_utf8: true,
            ..Hints::default()
        };
        assert_eq!(sniff(latin, &asked).0, WINDOWS_1252);
    }

    #[test]
    fn meta_content_attribute() {
        let enc = |s: &str| from_meta_content(s).map(Encoding::name);
        assert_eq!(enc("text/html; charset=EUC-KR"), Some("EUC-KR"));
        assert_eq!(enc("text/html;CHARSET = \"koi8-r\" x"), Some("KOI8-R"));
        assert_eq!(enc("charsetcharset=gbk"), Some("GBK"));
        assert_eq!(enc("charset x; charset='shift_jis'"), Some("Shift_JIS"));
        // An unmatched quote, no value or an unknown label: nothing.
        assert_eq!(enc("text/html; charset=\"utf-8"), None);
        assert_eq!(enc("text/html; charset="), None);
        assert_eq!(enc("text/html; charset=klingon"), None);
        assert_eq!(enc("text/html"), None);
        assert_eq!(declared(UTF_16BE), UTF_8);
        assert_eq!(declared(X_USER_DEFINED), WINDOWS_1252);
    }

    #[test]
    fn queries_are_encoded_as_the_url_standard_says() {
        let enc = |label: &str, s: &str| {
            let encoding = Encoding::for_label(label.as_bytes()).unwrap();
            let encode: &dyn Fn(&str) -> Cow<'_, [u8]> = &|q| encode_query(q, encoding);
            let url = url::Url::options()
                .encoding_override(Some(encode))
                .parse(&format!("http://a.test/?{s}"))
                .unwrap();
            url.query().unwrap().to_owned()
        };
        // Cases from the web-platform-tests' url/resources/percent-encoding.json.
        assert_eq!(enc("euc-kr", "\u{2020}"), "%A2%D3");
        assert_eq!(enc("windows-1252", "\u{2020}"), "%86");
        assert_eq!(enc("big5", "\u{2020}"), "%26%238224%3B");
        assert_eq!(enc("gb18030", "\u{e5e5}"), "%26%2358853%3B");
        assert_eq!(enc("iso-2022-jp", "\u{203e}\\"), "%1B(J~%1B(B\\");
        assert_eq!(enc("iso-8859-2", "\u{a2}"), "%26%23162%3B");
        assert_eq!(enc("euc-kr", "한글"), "%C7%D1%B1%DB");
        assert_eq!(
            encode_query("a=1", WINDOWS_1252),
            Cow::Borrowed(&b"a=1"[..])
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
        let cases: [(&[u8], &'static Encoding); 5] = [
            (b"<p>plain ascii", UTF_8),
            ("<p>héllo ✓".as_bytes(), UTF_8),
            (b"\xef\xbb\xbf<p>bom", UTF_8),
            (b"<p>bad \xff utf-8", UTF_8),
            (b"\xcf\xf0", encoding_rs::WINDOWS_1251),
        ];
        for (body, encoding) in cases {
            assert_eq!(
                decode_owned_in(body.to_vec(), encoding),
                decode_in(body, encoding)
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
