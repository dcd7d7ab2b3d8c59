//! The page-level failure kinds that users see in the page report.
//!
//! These are the only errors a caller is expected to match on: each has a
//! stable lower-case name that goes into the `error` column, so scripts and
//! warehouses can group by it. Everything that stops the whole run (bad
//! arguments, unwritable output) is an `anyhow::Error` with context instead.

use std::fmt;

/// Why one page produced no script rows.
///
/// The names returned by [`ErrorKind::as_str`] are part of the output format:
/// renaming one is a breaking change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The input line is not a usable http(s) URL.
    InvalidUrl,
    /// The host name could not be resolved.
    Dns,
    /// The TCP connection could not be made (refused, unreachable, reset).
    Connect,
    /// The request, or its connection, took longer than allowed.
    Timeout,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// robots.txt forbids the URL (or could not be had, which forbids the
    /// host); the page was not requested.
    RobotsDisallowed,
    /// The server answered with a status outside 2xx.
    HttpStatus,
    /// A 2xx response that is not an HTML document.
    NotHtml,
    /// The decompressed body passed `--max-body`.
    BodyTooLarge,
    /// Too many redirects, a redirect loop, or a redirect to another scheme.
    Redirect,
    /// The body's content encoding (gzip, br, …) could not be decoded.
    Decode,
    /// The connection failed while the body was being read, or another
    /// transport error.
    Io,
    /// Parsing the document took more than its CPU budget (hostile markup,
    /// such as tens of thousands of nested elements).
    ParseLimit,
    /// The HTML parser failed on the document (an internal error: the
    /// parser accepts any input, so this is reported as a bug).
    Parse,
    /// A listed URL that was not fetched because `--max-pages` was
    /// reached first. Not a failure: the run did what it was told.
    MaxPages,
    /// A crawl reached a host that is, or resolves only to, a loopback,
    /// private, link-local or metadata address, from a link or a redirect;
    /// it was not requested (`--allow-private` allows it).
    PrivateAddress,
    /// A URL a crawl found redirected outside the crawl's scope; the target
    /// was not requested.
    OffScope,
    /// A shared queue's work item handed to workers more than
    /// `--max-deliveries` times without a result: each worker that took
    /// it died or was stopped first.
    DeliveryLimit,
    /// A script not fetched because its page already had
    /// `--max-scripts-per-page` scripts fetched for it (`content_error`
    /// only; never a page's error).
    ScriptLimit,
    /// `--render`: the page did not settle within `--render-timeout`; the
    /// scripts that ran until then are reported.
    RenderTimeout,
    /// `--render`: the page's tab, or the browser, crashed or hung (and
    /// was restarted); the scripts that ran until then are reported.
    RenderCrashed,
    /// `--render`: the page's JavaScript heap passed `--render-memory`,
    /// and its tab was closed; the scripts that ran until then are
    /// reported.
    RenderMemory,
    /// `--render`: the page ran more scripts than a page is recorded
    /// for, and its tab was closed; the first ones are reported.
    RenderLimit,
}

impl ErrorKind {
    /// The stable name written to the `error` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::RobotsDisallowed => "robots_disallowed",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::NotHtml => "not_html",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::Redirect => "redirect",
            ErrorKind::Decode => "decode",
            ErrorKind::Io => "io",
            ErrorKind::ParseLimit => "parse_limit",
            ErrorKind::Parse => "parse",
            ErrorKind::MaxPages => "max_pages",
            ErrorKind::PrivateAddress => "private_address",
            ErrorKind::OffScope => "off_scope",
            ErrorKind::DeliveryLimit => "delivery_limit",
            ErrorKind::ScriptLimit => "script_limit",
            ErrorKind::RenderTimeout => "render_timeout",
            ErrorKind::RenderCrashed => "render_crashed",
            ErrorKind::RenderMemory => "render_memory",
            ErrorKind::RenderLimit => "render_limit",
        }
    }
}

impl ErrorKind {
    /// Every kind, in the order of the enum.
    pub const ALL: [ErrorKind; 23] = [
        ErrorKind::InvalidUrl,
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::Tls,
        ErrorKind::RobotsDisallowed,
        ErrorKind::HttpStatus,
        ErrorKind::NotHtml,
        ErrorKind::BodyTooLarge,
        ErrorKind::Redirect,
        ErrorKind::Decode,
        ErrorKind::Io,
        ErrorKind::ParseLimit,
        ErrorKind::Parse,
        ErrorKind::MaxPages,
        ErrorKind::PrivateAddress,
        ErrorKind::OffScope,
        ErrorKind::DeliveryLimit,
        ErrorKind::ScriptLimit,
        ErrorKind::RenderTimeout,
        ErrorKind::RenderCrashed,
        ErrorKind::RenderMemory,
        ErrorKind::RenderLimit,
    ];

    /// Whether a page with this error was passed over rather than failed:
    /// not fetched for `--max-pages`, or, for a URL found on a page or in a
    /// sitemap (`discovered`), not HTML, refused by robots.txt, private or
    /// off scope. Such pages do not count toward a run's failures.
    pub fn passed_over(self, discovered: bool) -> bool {
        self == ErrorKind::MaxPages
            || (discovered
                && matches!(
                    self,
                    ErrorKind::NotHtml
                        | ErrorKind::RobotsDisallowed
                        | ErrorKind::PrivateAddress
                        | ErrorKind::OffScope
                ))
    }

    /// The kind an `error` column value names, as read back from a report.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed page: its kind, for machines, and a one-line detail, for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct PageError {
    /// What went wrong, as users group it.
    pub kind: ErrorKind,
    /// Human-readable detail; never contains a newline.
    pub detail: String,
}

impl PageError {
    /// A page error whose detail is flattened onto one line.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        let detail: String = detail.into();
        let detail = if detail.contains(['\n', '\r']) {
            detail
                .split(['\n', '\r'])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            detail
        };
        PageError { kind, detail }
    }
}

/// `message` without the " (os error 2)" that Rust appends to system
/// errors: the number means nothing to the reader, the words before it do.
pub fn without_os_error_numbers(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " (os error ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            rest = &after[digits + 1..];
        } else {
            out.push_str(" (os error ");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
