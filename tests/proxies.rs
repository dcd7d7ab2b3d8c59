//! Proxies: which values are accepted, how requests go through them, and
//! how their failures are worded, never with their credentials.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::support::{RawServer, Run, Table, TestServer, redirect_via, refused_url};

/// The run's standard error for `args` (after a URL list) with `env` set,
/// and its exit status.
fn run_with(run: &Run, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let mut cmd = run.command(&[&list, "-o", "s.csv", "--retries", "0"]);
    cmd.args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = cmd.output().expect("run scriptscrape");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn proxy_credentials_are_masked_in_startup_errors() {
    let run = Run::new();
    for (value, shown) in [
        (
            "http://pxuser:PXPASS99@127.0.0.1:99999",
            "\"http://***@127.0.0.1:99999\": invalid port number",
        ),
        ("http://pxuser:PXPASS99@", "\"http://***@\": empty host"),
        ("http://PXTOKEN99@[::1", "\"http://***@[::1\""),
    ] {
        let from_flag = run_with(&run, &["--proxy", value], &[]);
        let from_env = run_with(&run, &[], &[("SCRIPTSCRAPE_PROXY", value)]);
        for (code, stderr) in [from_flag, from_env] {
            assert_eq!(code, 2, "{value}: {stderr}");
            assert!(stderr.contains(shown), "{value}: {stderr}");
            for secret in ["pxuser", "PXPASS99", "PXTOKEN99"] {
                assert!(!stderr.contains(secret), "{value}: {stderr}");
            }
        }
    }
}

fn page_reply(target: &str) -> Vec<u8> {
    let page = format!("<script src=\"/reached.js\"></script><!-- {target} -->");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{page}",
        page.len()
    )
    .into_bytes()
}

/// A SOCKS5 proxy (RFC 1928) without authentication that serves CONNECT
/// only, and only to `upstream`: whatever destination it is asked for
/// (an IP address, or a name it never resolves) is recorded and reached
/// at `upstream`, a loopback test server.
struct Socks5 {
    addr: SocketAddr,
    /// The destinations asked for, as `host:port`.
    asked: Arc<Mutex<Vec<String>>>,
}

impl Socks5 {
    fn start(upstream: SocketAddr) -> Socks5 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = Socks5::serve(conn, upstream, &log);
                });
            }
        });
        Socks5 { addr, asked }
    }

    fn serve(
        mut client: TcpStream,
        upstream: SocketAddr,
        asked: &Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        client.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        // Greeting: version 5, the methods offered; "no authentication".
        let mut head = [0u8; 2];
        client.read_exact(&mut head)?;
        let mut methods = vec![0u8; head[1] as usize];
        client.read_exact(&mut methods)?;
        assert_eq!(head[0], 5, "not SOCKS5");
        assert!(methods.contains(&0), "no-auth not offered: {methods:?}");
        client.write_all(&[5, 0])?;
        // Request: version, command (1 = CONNECT), reserved, address.
        let mut request = [0u8; 4];
        client.read_exact(&mut request)?;
        assert_eq!(request[..2], [5, 1], "not a CONNECT");
        let host = match request[3] {
            1 => {
                let mut ip = [0u8; 4];
                client.read_exact(&mut ip)?;
                std::net::Ipv4Addr::from(ip).to_string()
            }
            3 => {
                let mut len = [0u8; 1];
                client.read_exact(&mut len)?;
                let mut name = vec![0u8; len[0] as usize];
                client.read_exact(&mut name)?;
                String::from_utf8_lossy(&name).into_owned()
            }
            4 => {
                let mut ip = [0u8; 16];
                client.read_exact(&mut ip)?;
                format!("[{}]", std::net::Ipv6Addr::from(ip))
            }
            other => panic!("address type {other}"),
        };
        let mut port = [0u8; 2];
        client.read_exact(&mut port)?;
        asked
            .lock()
            .unwrap()
            .push(format!("{host}:{}", u16::from_be_bytes(port)));
        let server = TcpStream::connect(upstream)?;
        // Succeeded, bound to 0.0.0.0:0.
        client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
        client.set_read_timeout(None)?;
        let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
        let up = std::thread::spawn(move || {
            let _ = std::io::copy(&mut from_client, &mut to_server);
            let _ = to_server.shutdown(std::net::Shutdown::Write);
        });
        let (mut from_server, mut to_client) = (server, client);
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Write);
        let _ = up.join();
        Ok(())
    }
}

#[test]
fn pages_are_fetched_through_a_socks5_proxy() {
    let server = RawServer::start(page_reply);
    let socks = Socks5::start(server.addr);
    let direct = server.url("/page");
    // socks5:// resolves names here and asks for an address; socks5h://
    // leaves the name to the proxy, so this one is never resolved.
    let named = "http://behind-the-socks.test/page";
    for (scheme, url, asked) in [
        ("socks5", direct.as_str(), server.addr.to_string()),
        ("socks5h", named, "behind-the-socks.test:80".to_owned()),
    ] {
        socks.asked.lock().unwrap().clear();
        let run = Run::new();
        let proxy = format!("{scheme}://{}", socks.addr);
        let out = crate::support::scrape_into(&run, &[url], &["--proxy", &proxy, "--retries", "0"]);
        let pages = Table::read(&run.path("pages.csv"));
        assert_eq!(out.code, 0, "{scheme}: {:?}\n{}", pages.rows, out.stderr);
        assert_eq!(pages.get(0, "error_detail"), "", "{scheme}");
        let scripts = Table::read(&run.path("scripts.csv"));
        let reached = url.replace("/page", "/reached.js");
        assert_eq!(scripts.get(0, "src"), reached, "{scheme}");
        assert_eq!(*socks.asked.lock().unwrap(), [asked], "{scheme}");
    }
}

/// A crawl through a proxy on loopback: the proxy's host is trusted at
/// the proxy's port only, so a link to another port of that host (a
/// service of the machine) is refused, never asked of the proxy.
#[test]
fn a_proxy_on_loopback_opens_no_other_port_of_its_host() {
    let server = TestServer::start();
    let socks = Socks5::start(server.addr);
    server.set_page(
        "seed",
        "<a href=\"http://127.0.0.1:9/secret\">a local service</a>\
         <a href=\"/page/next\">next</a>",
    );
    server.set_page("next", "<p>next</p>");
    let run = Run::new();
    let proxy = format!("socks5h://{}", socks.addr);
    let out = crate::support::scrape_into(
        &run,
        &["http://site.test/page/seed"],
        &[
            "--proxy",
            &proxy,
            "--depth",
            "1",
            "--scope",
            "any",
            "--retries",
            "0",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pages = Table::read(&run.path("pages.csv"));
    assert_eq!(
        pages.for_page("http://127.0.0.1:9/secret", "error"),
        "private_address",
        "{:?}",
        pages.rows
    );
    assert_eq!(pages.for_page("http://site.test/page/next", "error"), "");
    let asked = socks.asked.lock().unwrap().clone();
    assert!(
        asked.iter().all(|a| !a.starts_with("127.0.0.1:9")),
        "asked of the proxy: {asked:?}"
    );
    assert!(asked.iter().any(|a| a == "site.test:80"), "{asked:?}");
}

/// A forwarding HTTP proxy's answer: it is sent the absolute URL.
fn forwarding_reply(target: &str) -> Vec<u8> {
    if target.starts_with("http://") {
        page_reply(target)
    } else {
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
    }
}

/// Arguments, environment variables, and the start of the message.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn unusable_proxies_stop_the_run_at_start_naming_where_they_came_from() {
    let run = Run::new();
    let refused = refused_url();
    let dead = refused.trim_start_matches("http://").trim_end_matches('/');
    let cases: [Case; 7] = [
        (
            &["--proxy", "ftp://127.0.0.1:1"],
            &[],
            "invalid --proxy \"ftp://127.0.0.1:1\": unsupported scheme ftp",
        ),
        (
            &["--proxy", "pxuser:PXPASS99@127.0.0.1:99999"],
            &[],
            "invalid --proxy \"***@127.0.0.1:99999\": invalid port number",
        ),
        (
            &[],
            &[("HTTP_PROXY", "http://u:PXPASS99@127.0.0.1:99999")],
            "invalid HTTP_PROXY \"http://***@127.0.0.1:99999\": invalid port number",
        ),
        (
            &[],
            &[("https_proxy", "ftp://PXTOKEN99@127.0.0.1:1")],
            "invalid https_proxy \"ftp://***@127.0.0.1:1\": unsupported scheme ftp",
        ),
        (
            &[],
            &[("ALL_PROXY", "socks4://127.0.0.1:1")],
            "invalid ALL_PROXY \"socks4://127.0.0.1:1\": unsupported scheme socks4",
        ),
        // The upper-case variable is the one read.
        (
            &[],
            &[("HTTP_PROXY", "http://"), ("http_proxy", dead)],
            "invalid HTTP_PROXY \"http://\": empty host",
        ),
        (
            &[],
            &[("HTTP_PROXY", dead), ("HTTPS_PROXY", "http://u:PXPASS99@")],
            "invalid HTTPS_PROXY \"http://***@\": empty host",
        ),
    ];
    for (args, env, message) in cases {
        let (code, stderr) = run_with(&run, args, env);
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        // One line, in the user's words.
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("scriptscrape: error: {message}")),
            "{stderr}"
        );
        assert!(!stderr.contains("PX"), "{stderr}");
    }
    // --proxy replaces the environment's proxies, which are then not read.
    let (code, stderr) = run_with(
        &run,
        &["--proxy", &refused],
        &[("HTTP_PROXY", "ftp://127.0.0.1:1")],
    );
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn proxies_without_a_scheme_are_http_proxies_named_as_used() {
    let proxy = RawServer::start(forwarding_reply);
    let behind = "http://behind-the-proxy.test/page";
    let refused = refused_url();
    let dead = refused.trim_start_matches("http://").trim_end_matches('/');
    for (args, env) in [
        (vec!["--proxy", &proxy.addr.to_string()], vec![]),
        (vec![], vec![("http_proxy", proxy.addr.to_string())]),
        (vec![], vec![("ALL_PROXY", proxy.addr.to_string())]),
    ] {
        let run = Run::new();
        let list = run.urls("urls.txt", &[behind]);
        let mut cmd = run.command(&[&list, "-o", "s.csv", "--retries", "0"]);
        cmd.args(&args).envs(env.clone());
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?} {env:?}: {stderr}");
        let scripts = Table::read(&run.path("s.csv"));
        assert_eq!(
            scripts.get(0, "src"),
            "http://behind-the-proxy.test/reached.js"
        );
    }

    // Credentials without a scheme: still http://, and never shown.
    let with_auth = format!("pxuser:PXPASS99@{dead}");
    for (args, env) in [
        (vec!["--proxy", with_auth.as_str()], vec![]),
        (vec![], vec![("HTTP_PROXY", with_auth.as_str())]),
    ] {
        let run = Run::new();
        let list = run.urls("urls.txt", &[behind]);
        let out = run
            .command(&[
                &list,
                "-o",
                "s.csv",
                "--pages",
                "p.csv",
                "--retries",
                "0",
                "-vv",
            ])
            .args(&args)
            .envs(env.clone())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {stderr}");
        let pages = Table::read(&run.path("p.csv"));
        assert_eq!(
            pages.get(0, "error_detail"),
            format!("proxy http://{dead} refused the connection"),
            "{args:?} {env:?}"
        );
        for secret in ["pxuser", "PXPASS99"] {
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
}

/// A server that accepts each connection, reads what came first, and
/// closes it unanswered.
fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let _ = conn.read(&mut [0u8; 8192]);
        }
    });
    addr
}

fn proxy_auth_reply(_target: &str) -> Vec<u8> {
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\
      Content-Length: 0\r\nConnection: close\r\n\r\n"
        .to_vec()
}

#[test]
fn a_proxy_that_closes_or_wants_credentials_is_not_said_to_refuse() {
    let closer = closing_server();
    let auth = RawServer::start(proxy_auth_reply);
    // Never reached: the proxies stop every request.
    let http = "http://behind-the-proxy.test/page";
    let https = "https://behind-the-proxy.test/page";
    let wants = "answered 407 Proxy Authentication Required (it wants a user name and password in the proxy URL)";
    // A SOCKS proxy that refuses is said to, too (hyper-util hides why).
    let refused = refused_url();
    let dead = refused.trim_start_matches("http://").trim_end_matches('/');
    let cases = [
        (
            format!("socks5h://{dead}"),
            https,
            "connect",
            format!("proxy socks5h://{dead} refused the connection"),
        ),
        (
            format!("http://{closer}"),
            http,
            "io",
            format!("proxy http://{closer} closed the connection before the response was complete"),
        ),
        (
            format!("http://{closer}"),
            https,
            "connect",
            format!(
                "proxy http://{closer} closed the connection instead of opening a tunnel \
                 to behind-the-proxy.test:443"
            ),
        ),
        (
            format!("socks5h://{closer}"),
            http,
            "connect",
            format!("proxy socks5h://{closer} closed the connection during the SOCKS handshake"),
        ),
        (
            format!("http://{}", auth.addr),
            http,
            "http_status",
            format!("proxy http://{} {wants}", auth.addr),
        ),
        (
            format!("http://{}", auth.addr),
            https,
            "connect",
            format!("proxy http://{} {wants}", auth.addr),
        ),
        (
            format!("http://pxuser:PXPASS99@{}", auth.addr),
            https,
            "connect",
            format!(
                "proxy http://{} answered 407 Proxy Authentication Required \
                 (it refused the user name and password)",
                auth.addr
            ),
        ),
    ];
    for (proxy, url, error, detail) in cases {
        let run = Run::new();
        let out =
            crate::support::scrape_into(&run, &[url], &["--proxy", &proxy, "--retries", "0", "-v"]);
        let pages = Table::read(&run.path("pages.csv"));
        assert_eq!(
            (pages.get(0, "error"), pages.get(0, "error_detail")),
            (error, detail.as_str()),
            "{proxy} {url}"
        );
        assert!(out.stderr.contains(&detail), "{}", out.stderr);
        assert!(!out.stderr.contains("PXPASS99"), "{}", out.stderr);
    }
}

#[test]
fn credentials_in_a_refused_redirect_are_masked() {
    let server = TestServer::start();
    let cases = [
        (
            "ftp://zed:REDIRPW66@127.0.0.1:1/x",
            "redirected to ftp://***@127.0.0.1:1/x, which is not an http(s) URL",
        ),
        (
            "http://REDIRTOKEN66@[::1",
            "HTTP 302 Found with an unusable Location \"http://***@[::1\"",
        ),
    ];
    for (to, detail) in cases {
        let run = Run::new();
        let page = redirect_via(&server, to);
        let out = crate::support::scrape_into(&run, &[&page], &["--retries", "0", "-vv"]);
        let pages = Table::read(&run.path("pages.csv"));
        assert_eq!(pages.get(0, "error"), "redirect", "{to}");
        assert_eq!(pages.get(0, "error_detail"), detail, "{to}");
        assert!(out.stderr.contains(detail), "{}", out.stderr);
        // The page's own URL carries them percent-encoded, in its query.
        for secret in ["REDIRPW66@", "REDIRTOKEN66@"] {
            assert!(!out.stderr.contains(secret), "{}", out.stderr);
        }
    }
}
