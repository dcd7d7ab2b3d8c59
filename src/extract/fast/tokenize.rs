//! The tokenizer's states that need more than a byte search: script data
//! escapes, comments, names, and character references in attribute
//! values.

use std::borrow::Cow;

use memchr::memmem;

use super::is_space;

/// What follows "<!--" inside a script's data.
pub(super) enum Escape {
    /// The script's end tag at this '<', the tag's name ending at the
    /// second offset.
    EndTag(usize, usize),
    /// Back to the plain script data state at this offset.
    Back(usize),
    Eof,
}

/// The script data escaped states, from `pos` (just past "<!--", whose two
/// dashes count toward "-->"), to where they end.
pub(super) fn escaped(b: &[u8], mut pos: usize) -> Escape {
    // In "escaped dash dash" after "<!--": a '>' right away ends it.
    let mut run = 2;
    loop {
        let Some(&c) = b.get(pos) else {
            return Escape::Eof;
        };
        match c {
            b'-' => {
                run += 1;
                pos += 1;
            }
            b'>' if run >= 2 => return Escape::Back(pos + 1),
            b'<' => {
                run = 0;
                if let Some(after) = end_tag_named(b, pos, "script") {
                    return Escape::EndTag(pos, after);
                }
                if let Some(after) = start_tag_named(b, pos, "script") {
                    // Double escaped: "</script>" ends only that, not the
                    // script; "-->" still returns to script data.
                    match double_escaped(b, after) {
                        Some(next) => {
                            pos = next;
                            continue;
                        }
                        None => return Escape::Eof,
                    }
                }
                pos += 1;
            }
            _ => {
                run = 0;
                pos += 1;
            }
        }
    }
}

/// The script data double escaped states, from just past `<script`'s
/// name: returns where the escaped state resumes, `None` at EOF. "-->"
/// there goes straight back to script data, which the caller's escaped
/// loop also sees ('>' after two dashes).
fn double_escaped(b: &[u8], mut pos: usize) -> Option<usize> {
    let mut run = 0;
    loop {
        let c = *b.get(pos)?;
        match c {
            b'-' => {
                run += 1;
                pos += 1;
            }
            // "-->": back to script data; the caller's escaped loop sees
            // the dashes and this '>' and returns there too.
            b'>' if run >= 2 => return Some(pos - 2),
            b'<' => {
                run = 0;
                if b.get(pos + 1) == Some(&b'/')
                    && let Some(after) = name_then_delimiter(b, pos + 2, "script")
                {
                    // "</script" + delimiter: back to escaped, at the
                    // delimiter.
                    return Some(after);
                }
                pos += 1;
            }
            _ => {
                run = 0;
                pos += 1;
            }
        }
    }
}

/// If `name` (ASCII case-insensitively) starts at `at` and is followed by
/// whitespace, '/' or '>', the offset just past the name.
fn name_then_delimiter(b: &[u8], at: usize, name: &str) -> Option<usize> {
    let end = at + name.len();
    let candidate = b.get(at..end)?;
    if !candidate.eq_ignore_ascii_case(name.as_bytes()) {
        return None;
    }
    match b.get(end) {
        Some(&c) if is_space(c) || c == b'/' || c == b'>' => Some(end),
        _ => None,
    }
}

/// An end tag `</name` + delimiter at `lt`: the offset past the name.
pub(super) fn end_tag_named(b: &[u8], lt: usize, name: &str) -> Option<usize> {
    if b.get(lt + 1) != Some(&b'/') {
        return None;
    }
    name_then_delimiter(b, lt + 2, name)
}

/// A start tag `<name` + delimiter at `lt`: the offset past the name.
fn start_tag_named(b: &[u8], lt: usize, name: &str) -> Option<usize> {
    name_then_delimiter(b, lt + 1, name)
}

/// Where a comment whose text starts at `from` (past "<!--") ends: past
/// "-->" or "--!>", or at once for "<!-->" and "<!--->"; the end of the
/// input when it does not.
pub(super) fn comment_end(b: &[u8], from: usize) -> usize {
    match b.get(from..) {
        Some([b'>', ..]) => return from + 1,
        Some([b'-', b'>', ..]) => return from + 2,
        _ => {}
    }
    let mut pos = from;
    while let Some(i) = memmem::find(&b[pos..], b"--") {
        let mut at = pos + i + 2;
        while b.get(at) == Some(&b'-') {
            at += 1;
        }
        match b.get(at) {
            Some(b'>') => return at + 1,
            Some(b'!') if b.get(at + 1) == Some(&b'>') => return at + 2,
            None => return b.len(),
            _ => pos = at,
        }
    }
    b.len()
}

/// A tag or attribute name as the tokenizer makes it: ASCII lower case,
/// NUL replaced.
pub(super) fn normalize_name(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|c| c.is_ascii_uppercase() || c == 0) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        raw.chars()
            .map(|c| match c {
                '\0' => '\u{FFFD}',
                c => c.to_ascii_lowercase(),
            })
            .collect(),
    )
}

/// An attribute value as the tokenizer makes it: character references
/// decoded (with the attribute rules for a missing semicolon), newlines
/// normalized, NULs replaced.
pub(super) fn attr_value(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|&c| matches!(c, b'&' | b'\r' | b'\0')) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut pos = 0;
    while pos < raw.len() {
        let c = bytes[pos];
        match c {
            b'\r' => {
                out.push('\n');
                pos += if bytes.get(pos + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\0' => {
                out.push('\u{FFFD}');
                pos += 1;
            }
            b'&' => pos = char_ref(raw, pos + 1, &mut out),
            _ => {
                // Copies up to the next special byte at once.
                let next = bytes[pos..]
                    .iter()
                    .position(|&c| matches!(c, b'&' | b'\r' | b'\0'))
                    .map_or(raw.len(), |i| pos + i);
                out.push_str(&raw[pos..next]);
                pos = next;
            }
        }
    }
    Cow::Owned(out)
}

/// Decodes the character reference after an '&' at `at - 1` of an
/// attribute value into `out`; returns where the value goes on.
fn char_ref(raw: &str, at: usize, out: &mut String) -> usize {
    let bytes = raw.as_bytes();
    match bytes.get(at) {
        Some(b'#') => numeric_ref(raw, at + 1, out),
        Some(c) if c.is_ascii_alphanumeric() => named_ref(raw, at, out),
        _ => {
            out.push('&');
            at
        }
    }
}

fn numeric_ref(raw: &str, at: usize, out: &mut String) -> usize {
    let bytes = raw.as_bytes();
    let hex = matches!(bytes.get(at), Some(b'x' | b'X'));
    let digits_at = if hex { at + 1 } else { at };
    let radix = if hex { 16 } else { 10 };
    let mut pos = digits_at;
    let mut value: u32 = 0;
    let mut too_big = false;
    while let Some(d) = bytes.get(pos).and_then(|&c| (c as char).to_digit(radix)) {
        match value.checked_mul(radix).and_then(|v| v.checked_add(d)) {
            Some(v) => value = v,
            None => too_big = true,
        }
        pos += 1;
    }
    if pos == digits_at {
        // No digits: "&#" (and the x) stay as written; the value goes on
        // at the '#'.
        out.push('&');
        return at - 1;
    }
    if bytes.get(pos) == Some(&b';') {
        pos += 1;
    }
    out.push(numeric_char(value, too_big));
    pos
}

/// The character a numeric reference stands for, as html5ever decides.
fn numeric_char(value: u32, too_big: bool) -> char {
    match value {
        _ if too_big || value > 0x10FFFF => '\u{FFFD}',
        0 | 0xD800..=0xDFFF => '\u{FFFD}',
        0x80..=0x9F => html5ever::data::C1_REPLACEMENTS[(value - 0x80) as usize]
            .or_else(|| char::from_u32(value))
            .unwrap_or('\u{FFFD}'),
        v => char::from_u32(v).unwrap_or('\u{FFFD}'),
    }
}

fn named_ref(raw: &str, at: usize, out: &mut String) -> usize {
    let entities = &html5ever::data::NAMED_ENTITIES;
    let bytes = raw.as_bytes();
    let mut matched: Option<(usize, (u32, u32))> = None;
    let mut end = at;
    // The longest name in the table is 32 characters.
    while end < bytes.len() && end - at < 40 {
        let next = end + 1;
        let Some(&value) = raw.get(at..next).and_then(|name| entities.get(name)) else {
            break;
        };
        if value.0 != 0 {
            matched = Some((next, value));
        }
        end = next;
    }
    let Some((name_end, (c1, c2))) = matched else {
        out.push('&');
        return at;
    };
    let last = bytes[name_end - 1];
    let after = bytes.get(name_end).copied();
    let historical = last != b';' && after.is_some_and(|c| c == b'=' || c.is_ascii_alphanumeric());
    if historical {
        out.push('&');
        return at;
    }
    for code in [c1, c2] {
        if code != 0
            && let Some(c) = char::from_u32(code)
        {
            out.push(c);
        }
    }
    name_end
}
