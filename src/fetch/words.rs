//! Why a request failed, in the words of someone who typed the URL.
//!
//! reqwest's errors are chains ("client error (Connect): dns error: failed
//! to lookup address information: …", "invalid peer certificate:
//! Other(OtherError(CaUsedAsEndEntity))") written for the people who
//! maintain hyper and rustls. The page report's `error_detail` says what
//! failed and where instead: "DNS lookup failed for shop.example (no such
//! host)", "connection refused by 10.0.0.5:8080", "TLS certificate not
//! trusted for example.com (issued by an unknown authority)". Hosts are
//! named without the URL's user name and password, and a proxy is named
//! without its credentials.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use url::Url;

use super::human_duration;

/// What a description needs besides the error: which host the client was
/// talking to, and through which proxy.
pub(super) struct Target<'a> {
    /// The URL requested (the last hop, after redirects).
    pub url: &'a Url,
    /// The proxy the request went through, if any.
    pub proxy: Option<&'a Url>,
    /// `--connect-timeout`.
    pub connect_timeout: Duration,
}

/// `host:port` of a URL, without user name or password.
pub(super) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A proxy as it may be shown: `scheme://host:port`, never its
/// credentials.
pub(super) fn proxy_name(proxy: &Url) -> String {
    format!("{}://{}", proxy.scheme(), host_port(proxy))
}

/// A connection that could not be made (DNS, TCP, TLS, proxy), in words.
pub(super) fn connect(err: &reqwest::Error, to: &Target<'_>) -> String {
    let host = to.url.host_str().unwrap_or("?");
    if let Some(proxy) = to.proxy {
        let name = proxy_name(proxy);
        // Through socks5:// (not socks5h://) the URL's host is looked up
        // here first, a failure reqwest words "error resolving for socks
        // proxy"; then it is the URL's host that did not resolve.
        if err.is_dns() && !in_chain(err, "error resolving for socks proxy") {
            let host = proxy.host_str().unwrap_or("?");
            return format!(
                "DNS lookup failed for the proxy's host {host} ({})",
                dns_reason(err)
            );
        }
        if err.is_timeout() {
            return format!(
                "could not connect to proxy {name} within {} (--connect-timeout)",
                human_duration(to.connect_timeout)
            );
        }
        if let Some(io) = innermost::<io::Error>(err)
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return format!("proxy {name} refused the connection");
        }
        if let Some(words) = proxy_words(err, &name, proxy, to.url) {
            return words;
        }
        // Not the server's TLS: then the connection was the proxy's.
        if tls_error(err).is_none()
            && let Some(io) = innermost::<io::Error>(err)
        {
            match io.kind() {
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    return format!("proxy {name} reset the connection");
                }
                io::ErrorKind::UnexpectedEof => {
                    return format!("proxy {name} closed the connection");
                }
                _ => {}
            }
        }
    }
    if err.is_dns() {
        return format!("DNS lookup failed for {host} ({})", dns_reason(err));
    }
    let at = host_port(to.url);
    if err.is_timeout() {
        return format!(
            "could not connect to {at} within {} (--connect-timeout)",
            human_duration(to.connect_timeout)
        );
    }
    if let Some(tls) = tls_error(err) {
        return tls_words(tls, host);
    }
    let via = to
        .proxy
        .map(|p| format!(" through proxy {}", proxy_name(p)))
        .unwrap_or_default();
    match innermost::<io::Error>(err) {
        Some(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused => format!("connection refused by {at}{via}"),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                format!("connection to {at}{via} was reset")
            }
            io::ErrorKind::TimedOut => format!("connection to {at}{via} timed out"),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                format!("{at} is unreachable from this machine{via}")
            }
            _ => format!("cannot connect to {at}{via}: {}", io_words(io)),
        },
        None => format!("cannot connect to {at}{via}: {}", last_words(err)),
    }
}

/// Why a proxy would not connect a request, from the errors of
/// hyper-util's tunnel (HTTP CONNECT) and SOCKS clients. Those types are
/// private to hyper-util, so they are known by their words; and the SOCKS
/// error does not expose its cause as `source()`, so the I/O error kind is
/// read from its `Debug` form.
fn proxy_words(err: &reqwest::Error, name: &str, proxy: &Url, url: &Url) -> Option<String> {
    let at = host_port(url);
    let has_credentials = !proxy.username().is_empty() || proxy.password().is_some();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if let Some(why) = text.strip_prefix("tunnel error: ") {
            return match why {
                "unexpected end of file" => Some(format!(
                    "proxy {name} closed the connection instead of opening a tunnel to {at}"
                )),
                "proxy authorization required" => Some(proxy_auth_required(name, has_credentials)),
                "unsuccessful" => Some(format!("proxy {name} refused to open a tunnel to {at}")),
                "proxy response headers too long" => Some(format!(
                    "proxy {name} sent an answer too long to be HTTP, instead of opening a tunnel to {at}"
                )),
                _ => None,
            };
        }
        if let Some(why) = text.strip_prefix("SOCKS error: ") {
            let debug = format!("{e:?}");
            return Some(match why {
                "failed to create underlying connection" if debug.contains("ConnectionRefused") => {
                    format!("proxy {name} refused the connection")
                }
                "failed to create underlying connection" => {
                    format!("cannot connect to proxy {name}")
                }
                "io error during SOCKS handshake"
                    if debug.contains("ConnectionReset") || debug.contains("ConnectionAborted") =>
                {
                    format!("proxy {name} reset the connection during the SOCKS handshake")
                }
                "io error during SOCKS handshake" => {
                    format!("proxy {name} closed the connection during the SOCKS handshake")
                }
                "failed parsing server response" => {
                    format!("proxy {name} does not answer as a SOCKS5 proxy")
                }
                "credentials not accepted" => {
                    format!("proxy {name} refused the user name and password")
                }
                "server does not support user/pass authentication" if has_credentials => {
                    format!("proxy {name} does not take a user name and password")
                }
                "server does not support user/pass authentication" => {
                    format!("proxy {name} wants a user name and password")
                }
                other => format!("proxy {name} could not connect to {at}: {other}"),
            });
        }
        source = e.source();
    }
    None
}

/// Whether an error among `err`'s causes says `text`.
fn in_chain(err: &reqwest::Error, text: &str) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if e.to_string() == text {
            return true;
        }
        source = e.source();
    }
    false
}

/// An HTTP proxy's 407, in words: what the proxy wants.
pub(super) fn proxy_auth_required(name: &str, has_credentials: bool) -> String {
    let why = if has_credentials {
        "it refused the user name and password"
    } else {
        "it wants a user name and password in the proxy URL"
    };
    format!("proxy {name} answered 407 Proxy Authentication Required ({why})")
}

/// Whether a request for `url` through `proxy` is forwarded to it whole
/// (an `http://` URL through an HTTP proxy), rather than tunnelled: then
/// the connection that fails under a response is the proxy's.
pub(super) fn forwarded(proxy: Option<&Url>, url: &Url) -> bool {
    proxy.is_some_and(|p| matches!(p.scheme(), "http" | "https")) && url.scheme() == "http"
}

/// A failure after the request was sent: a connection that died under the
/// body, a body that could not be decompressed, a protocol error.
pub(super) fn transfer(err: &reqwest::Error, to: &Target<'_>, decoding: bool) -> String {
    // Through a forwarding proxy, the connection is the proxy's.
    let at = match to.proxy {
        Some(proxy) if forwarded(to.proxy, to.url) => format!("proxy {}", proxy_name(proxy)),
        _ => host_port(to.url),
    };
    if decoding {
        // The decompressors' own words ("deflate decompression error",
        // "Dictionary mismatch") say nothing to a reader.
        let cut_short =
            innermost::<io::Error>(err).is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof);
        return if cut_short {
            "the compressed body ends before its compressed data does (cut short)".to_owned()
        } else {
            "the body is not valid for its Content-Encoding (corrupt compressed data)".to_owned()
        };
    }
    if let Some(hyper) = cause::<hyper::Error>(err) {
        if hyper.is_incomplete_message() {
            return format!("{at} closed the connection before the response was complete");
        }
        if hyper.is_parse() {
            return format!("{at} sent a response that is not valid HTTP");
        }
    }
    if let Some(io) = innermost::<io::Error>(err) {
        match io.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                return format!("{at} reset the connection before the response was complete");
            }
            io::ErrorKind::UnexpectedEof => {
                return format!("{at} closed the connection before the response was complete");
            }
            _ => {}
        }
    }
    format!("the exchange with {at} failed: {}", last_words(err))
}

/// Why a name did not resolve, from the resolver's message.
fn dns_reason(err: &reqwest::Error) -> &'static str {
    let text = last_words(err).to_ascii_lowercase();
    // getaddrinfo's messages, as glibc and the BSDs word them.
    if text.contains("temporary failure") || text.contains("try again") {
        "no answer from the DNS server; is the network up?"
    } else if text.contains("no address associated") {
        "the name has no address"
    } else {
        "no such host"
    }
}

/// The rustls error among `err`'s causes.
fn tls_error(err: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(found) = tls_in(e) {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// rustls errors reach us wrapped in one or more `io::Error`s, whose
/// `source()` skips the wrapped error itself, so each layer is opened here.
fn tls_in<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    tls_in(e.downcast_ref::<io::Error>()?.get_ref()?)
}

/// Whether a TLS failure is among `err`'s causes.
pub(super) fn is_tls(err: &reqwest::Error) -> bool {
    tls_error(err).is_some()
}

/// A TLS failure in words: the certificate's fault, or the handshake's.
fn tls_words(tls: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let untrusted = |why: &str| format!("TLS certificate not trusted for {host} ({why})");
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => {
                untrusted("issued by an unknown authority: self-signed, or a missing intermediate")
            }
            C::Expired | C::ExpiredContext { .. } => untrusted("the certificate has expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                untrusted("the certificate is not valid yet; is this machine's clock right?")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                untrusted("the certificate is for another host name")
            }
            C::Revoked => untrusted("the certificate has been revoked"),
            C::BadSignature => untrusted("the certificate's signature is wrong"),
            C::BadEncoding => untrusted("the certificate is malformed"),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                untrusted("the certificate is not for web servers")
            }
            // rustls passes on the webpki errors it has no variant for as
            // Other, whose text is the webpki variant's name; naming the one
            // self-signed test and intranet servers produce keeps webpki out
            // of the direct dependencies (it must match rustls's version).
            C::Other(other) if other.to_string() == "CaUsedAsEndEntity" => untrusted(
                "the server presents a certificate authority's certificate as its own: self-signed",
            ),
            _ => untrusted("the certificate failed verification"),
        },
        rustls::Error::AlertReceived(alert) => format!(
            "TLS handshake with {host} failed: the server refused it ({})",
            alert_words(*alert)
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateHandshakeMessage { .. } => {
            format!("TLS handshake with {host} failed: the server does not speak TLS on that port")
        }
        rustls::Error::PeerIncompatible(_) => format!(
            "TLS handshake with {host} failed: the server's TLS versions or ciphers are not supported"
        ),
        rustls::Error::NoCertificatesPresented => {
            format!("TLS handshake with {host} failed: the server sent no certificate")
        }
        _ => format!("TLS handshake with {host} failed"),
    }
}

fn alert_words(alert: rustls::AlertDescription) -> &'static str {
    use rustls::AlertDescription as A;
    match alert {
        A::HandshakeFailure | A::InsufficientSecurity => "no TLS version or cipher in common",
        A::ProtocolVersion => "TLS version not supported",
        A::UnrecognisedName => "it does not serve this host name",
        A::CertificateRequired => "it wants a client certificate",
        A::AccessDenied => "access denied",
        _ => "a fatal alert",
    }
}

/// The first error of type `E` among `err`'s causes.
pub(super) fn cause<E: StdError + 'static>(err: &reqwest::Error) -> Option<&E> {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// The last error of type `E` among `err`'s causes: the one nearest the
/// system call.
fn innermost<E: StdError + 'static>(err: &reqwest::Error) -> Option<&E> {
    let mut found = None;
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<E>() {
            found = Some(e);
        }
        source = e.source();
    }
    found
}

/// The innermost cause's text: the most specific, least wrapped words.
fn last_words(err: &reqwest::Error) -> String {
    let mut last: &(dyn StdError + 'static) = err;
    while let Some(next) = last.source() {
        last = next;
    }
    match last.downcast_ref::<io::Error>() {
        Some(io) => io_words(io),
        None => last.to_string(),
    }
}

/// An I/O error's message without the OS's error number.
fn io_words(io: &io::Error) -> String {
    crate::error::without_os_error_numbers(&io.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn names_carry_no_credentials() {
        assert_eq!(
            proxy_name(&url("http://user:secret@proxy.example:3128/")),
            "http://proxy.example:3128"
        );
        assert_eq!(host_port(&url("https://u:p@[::1]/x")), "[::1]:443");
    }
}
