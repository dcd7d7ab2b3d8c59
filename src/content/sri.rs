//! Subresource Integrity: whether a browser would run a script whose
//! `integrity` attribute is `metadata` and whose body is `content`, by the
//! W3C SRI algorithm ("Does response match metadataList").
//!
//! The attribute is a list of tokens separated by ASCII whitespace, each
//! `ALGORITHM-BASE64[?OPTIONS]`. Tokens of an algorithm the browser does
//! not know (or malformed ones) are ignored; of those left, only the
//! strongest algorithm counts (sha512 over sha384 over sha256), and the
//! content passes if it matches any token of that algorithm. An attribute
//! with no usable token checks nothing: the script runs.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// The hash algorithms of SRI, weakest first (their order is their
/// strength).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// The algorithm a token names, matched ASCII case-insensitively as
    /// the specification's "valid SRI hash algorithm token" is.
    fn from_token(name: &str) -> Option<Algorithm> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A body's digests in every SRI algorithm: a script fetched once can then
/// be checked against the `integrity` attribute of every page that names
/// it, whichever algorithm each uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    sha256: [u8; 32],
    sha384: [u8; 48],
    sha512: [u8; 64],
}

impl Digests {
    /// The digests of `content`.
    pub fn of(content: &[u8]) -> Digests {
        let mut hasher = Hasher::new();
        hasher.update(content);
        hasher.finish()
    }

    /// The digest in `algorithm`.
    pub fn get(&self, algorithm: Algorithm) -> &[u8] {
        match algorithm {
            Algorithm::Sha256 => &self.sha256,
            Algorithm::Sha384 => &self.sha384,
            Algorithm::Sha512 => &self.sha512,
        }
    }

    /// The three digests end to end (sha256, sha384, sha512), to carry
    /// them elsewhere; [`Digests::from_bytes`] reads them back.
    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.sha256[..], &self.sha384, &self.sha512].concat()
    }

    /// Digests written by [`Digests::to_bytes`]; `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Digests> {
        if bytes.len() != 32 + 48 + 64 {
            return None;
        }
        let (sha256, rest) = bytes.split_at(32);
        let (sha384, sha512) = rest.split_at(48);
        Some(Digests {
            sha256: sha256.try_into().ok()?,
            sha384: sha384.try_into().ok()?,
            sha512: sha512.try_into().ok()?,
        })
    }

    /// The SRI form of the digest in `algorithm`, as an `integrity`
    /// attribute takes it: `sha384-<base64>`.
    pub fn sri(&self, algorithm: Algorithm) -> String {
        let name = match algorithm {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        };
        format!("{name}-{}", STANDARD.encode(self.get(algorithm)))
    }
}

/// Computes [`Digests`] over a body that arrives in pieces.
#[derive(Clone, Default)]
pub struct Hasher {
    sha256: Sha256,
    sha384: Sha384,
    sha512: Sha512,
}

impl Hasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Takes the next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        self.sha256.update(piece);
        self.sha384.update(piece);
        self.sha512.update(piece);
    }

    /// The digests of everything taken.
    pub fn finish(self) -> Digests {
        Digests {
            sha256: self.sha256.finalize().into(),
            sha384: self.sha384.finalize().into(),
            sha512: self.sha512.finalize().into(),
        }
    }
}

/// One usable token of an `integrity` attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// The digest it expects, decoded.
    pub digest: Vec<u8>,
}

/// The usable tokens of an `integrity` attribute, in order. A token whose
/// value is not in the base64 alphabet (standard or URL-safe, padding
/// optional, as browsers accept) is not usable, like one of an unknown
/// algorithm; one in the alphabet that is no digest is usable and matches
/// nothing (its `digest` is empty).
pub fn parse(metadata: &str) -> Vec<Expected> {
    metadata
        .split_ascii_whitespace()
        .filter_map(|token| {
            // Options after '?' are reserved and ignored.
            let token = token.split_once('?').map_or(token, |(hash, _)| hash);
            let (name, value) = token.split_once('-')?;
            let algorithm = Algorithm::from_token(name)?;
            if !is_base64_value(value) {
                return None;
            }
            let value = value.trim_end_matches('=');
            // Browsers compare the text of the value with the digest's
            // base64, so a value in the right alphabet that decodes to no
            // digest (`sha384-WRONG`) still counts, and matches nothing:
            // it keeps an empty digest.
            let digest = STANDARD_NO_PAD
                .decode(value)
                .or_else(|_| URL_SAFE_NO_PAD.decode(value))
                .unwrap_or_default();
            Some(Expected { algorithm, digest })
        })
        .collect()
}

/// Whether `value` is an SRI hash value as browsers read one: base64 or
/// base64url characters, then at most two `=`.
fn is_base64_value(value: &str) -> bool {
    let digits = value.trim_end_matches('=');
    !digits.is_empty()
        && value.len() - digits.len() <= 2
        && digits
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

/// Whether a browser runs `content` under the `integrity` attribute
/// `metadata`: true when the attribute has no usable token, else whether
/// the content matches a token of the strongest algorithm present.
pub fn matches(metadata: &str, content: &[u8]) -> bool {
    matches_digests(metadata, &Digests::of(content))
}

/// Like [`matches`], for a body known by its [`Digests`].
pub fn matches_digests(metadata: &str, digests: &Digests) -> bool {
    let expected = parse(metadata);
    let Some(strongest) = expected.iter().map(|e| e.algorithm).max() else {
        return true;
    };
    let actual = digests.get(strongest);
    expected
        .iter()
        .filter(|e| e.algorithm == strongest)
        .any(|e| e.digest == actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE;

    const BODY: &[u8] = b"alert('Hello, world.');";

    fn token(algorithm: Algorithm, content: &[u8]) -> String {
        Digests::of(content).sri(algorithm)
    }

    #[test]
    fn digests_of_pieces_are_those_of_the_whole() {
        let mut hasher = Hasher::new();
        for piece in BODY.chunks(5) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), Digests::of(BODY));
        let digests = Digests::of(BODY);
        assert_eq!(Digests::from_bytes(&digests.to_bytes()), Some(digests));
        assert_eq!(Digests::from_bytes(b"short"), None);
        assert_eq!(
            Digests::of(BODY).sri(Algorithm::Sha384),
            "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO"
        );
    }

    #[test]
    fn the_specifications_example_matches() {
        // The SRI specification's own example of this body's sha384.
        let sri = "sha384-H8BRh8j48O9oYatfu5AZzq6A9RINhZO5H16dQZngK7T62em8MUt1FLm52t+eX6xO";
        assert!(matches(sri, BODY));
        assert!(!matches(sri, b"alert('Hello, world!');"));
    }

    #[test]
    fn the_strongest_algorithm_alone_decides() {
        let good256 = token(Algorithm::Sha256, BODY);
        let bad512 = token(Algorithm::Sha512, b"other");
        // A matching weaker token does not save a failing stronger one.
        assert!(!matches(&format!("{good256} {bad512}"), BODY));
        let good512 = token(Algorithm::Sha512, BODY);
        let bad256 = token(Algorithm::Sha256, b"other");
        assert!(matches(&format!("{bad256} {good512}"), BODY));
        // Any token of the strongest algorithm may match.
        assert!(matches(&format!("{bad512}\n\t{good512}"), BODY));
    }

    #[test]
    fn unknown_algorithms_and_malformed_tokens_are_ignored() {
        let good = token(Algorithm::Sha384, BODY);
        assert!(matches(&format!("md5-xyz sha1-abc {good}"), BODY));
        assert!(matches(&format!("sha999-AAAA {good} nonsense"), BODY));
        // Nothing usable: nothing checked, the browser runs the script.
        for metadata in ["", "   ", "md5-abc", "sha256", "sha256-***", "integrity"] {
            assert!(matches(metadata, b"anything"), "{metadata:?}");
        }
        // Usable but wrong: refused, also when the value is no digest at
        // all, as long as it is in the base64 alphabet (browsers compare
        // the text).
        assert!(!matches("sha256-AAAA", BODY));
        assert!(!matches("sha384-WRONG", BODY));
        assert!(!matches(
            &format!(
                "sha256-{} sha384-x",
                token(Algorithm::Sha256, BODY)[7..].to_owned()
            ),
            BODY
        ));
        assert!(
            matches("sha384-a===", BODY),
            "three = is not base64: ignored, and then nothing is checked"
        );
    }

    #[test]
    fn options_case_and_base64_forms_as_browsers_accept_them() {
        let good = token(Algorithm::Sha384, BODY);
        assert!(matches(&format!("{good}?foo=bar"), BODY));
        assert!(matches(&good.replacen("sha384", "SHA384", 1), BODY));
        let digest = Digests::of(BODY).get(Algorithm::Sha384).to_vec();
        let url_safe = format!("sha384-{}", URL_SAFE.encode(&digest));
        assert!(matches(&url_safe, BODY));
        let unpadded = format!(
            "sha256-{}",
            STANDARD_NO_PAD.encode(Digests::of(BODY).get(Algorithm::Sha256))
        );
        assert!(matches(&unpadded, BODY));
    }

    #[test]
    fn parse_keeps_usable_tokens_in_order() {
        let a = token(Algorithm::Sha256, b"a");
        let b = token(Algorithm::Sha512, b"b");
        let parsed = parse(&format!("{a} md5-x {b}?opt"));
        assert_eq!(
            parsed.iter().map(|e| e.algorithm).collect::<Vec<_>>(),
            [Algorithm::Sha256, Algorithm::Sha512]
        );
    }
}
