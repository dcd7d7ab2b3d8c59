//! The cookie jar (`--cookie-jar FILE`, `-b FILE`): cookies servers set
//! are sent back by the cookie rules and written in curl's Netscape
//! format; a curl cookie file is read; values are never shown.

use crate::support::{Run, TestServer, cookie_value};

/// One cookie of a Netscape cookie file.
#[derive(Debug, PartialEq)]
struct JarLine {
    http_only: bool,
    domain: String,
    subdomains: String,
    path: String,
    secure: String,
    expires: i64,
    name: String,
    value: String,
}

/// Reads a Netscape cookie file as curl documents it, independently of
/// the binary's reader.
fn read_jar(text: &str) -> Vec<JarLine> {
    assert!(text.starts_with("# Netscape HTTP Cookie File\n"), "{text}");
    text.lines()
        .filter_map(|line| {
            let (line, http_only) = match line.strip_prefix("#HttpOnly_") {
                Some(rest) => (rest, true),
                None => (line, false),
            };
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "{line:?}");
            Some(JarLine {
                http_only,
                domain: f[0].into(),
                subdomains: f[1].into(),
                path: f[2].into(),
                secure: f[3].into(),
                expires: f[4].parse().unwrap(),
                name: f[5].into(),
                value: f[6].into(),
            })
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_cookie_set_on_one_page_is_sent_to_the_next_and_written_to_the_jar() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[
            server.url("/cookie/set/sid"),
            server.url("/cookie/need/sid"),
        ],
    );
    // Without a jar, what the server set is not kept.
    let out = run.run(&[&list, "-c", "1", "--ordered", "-o", "s.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);

    let secret = cookie_value("sid");
    let out = run.run(
        &[
            &list,
            "-c",
            "1",
            "--ordered",
            "--cookie-jar",
            "jar.txt",
            "-o",
            "s.csv",
            "--stats",
            "stats.json",
            "-vvv",
        ],
        None,
    );
    assert_eq!(
        out.code, 0,
        "the second page saw the cookie: {}",
        out.stderr
    );
    assert!(!out.stderr.contains(&secret), "{}", out.stderr);
    let stats = std::fs::read_to_string(run.path("stats.json")).unwrap();
    assert!(!stats.contains(&secret));
    let scripts = std::fs::read_to_string(run.path("s.csv")).unwrap();
    assert!(!scripts.contains(&secret));

    let path = run.path("jar.txt");
    let jar = read_jar(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(jar.len(), 1, "{jar:?}");
    let c = &jar[0];
    assert_eq!(
        (c.domain.as_str(), c.subdomains.as_str(), c.path.as_str()),
        ("127.0.0.1", "FALSE", "/")
    );
    assert_eq!(
        (c.name.as_str(), c.value.as_str()),
        ("sid", secret.as_str())
    );
    assert!(c.http_only && c.secure == "FALSE");
    // Max-Age=3600: an hour from now.
    assert!((c.expires - now() - 3600).abs() < 120, "{}", c.expires);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Read back with -b FILE, the jar opens the members' page at once.
    let list = run.urls("again.txt", &[server.url("/cookie/need/sid")]);
    let out = run.run(&[&list, "-b", "jar.txt", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_curl_cookie_file_sends_each_cookie_to_its_own_host_and_path_only() {
    let server = TestServer::start();
    let run = Run::new();
    let port = server.url("").rsplit(':').next().unwrap().to_owned();
    std::fs::write(
        run.path("cookies.txt"),
        "# Netscape HTTP Cookie File\n\
         # https://curl.se/docs/http-cookies.html\n\
         \n\
         127.0.0.1\tFALSE\t/\tFALSE\t0\tip\tone\n\
         localhost\tFALSE\t/\tFALSE\t0\tnamed\ttwo\n\
         127.0.0.1\tFALSE\t/private\tFALSE\t0\tpriv\tthree\n\
         127.0.0.1\tFALSE\t/\tFALSE\t1000\texpired\tfour\n\
         #HttpOnly_localhost\tFALSE\t/\tFALSE\t4102444800\thttponly\tsix\n",
    )
    .unwrap();
    let cookie = |url: String| {
        let list = run.urls("urls.txt", &[url]);
        let out = run.run(&[&list, "-b", "cookies.txt", "-o", "s.csv", "-vvv"], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
        for value in ["one", "two", "three", "four", "five", "six"] {
            assert!(
                !out.stderr.contains(&format!("={value}")),
                "{value} in {}",
                out.stderr
            );
        }
        server.last_headers()["cookie"].to_str().unwrap().to_owned()
    };
    // Not the expired one, not the other host's, not the other path's.
    // (A Secure cookie is sent to http://127.0.0.1 and localhost, as
    // browsers do: loopback is a secure context; the unit tests show it
    // withheld from other hosts over http.)
    assert_eq!(cookie(server.url("/headers")), "ip=one");
    assert_eq!(cookie(server.url("/private/headers")), "priv=three; ip=one");
    // Cookies of the same path length come in no set order.
    let mut same_path: Vec<String> = cookie(format!("http://localhost:{port}/headers"))
        .split("; ")
        .map(str::to_owned)
        .collect();
    same_path.sort();
    assert_eq!(same_path, ["httponly=six", "named=two"]);
    // The file is checked before anything runs, and its values are not
    // echoed.
    std::fs::write(run.path("bad.txt"), "127.0.0.1\tTRUE\t/\tzzsecret\n").unwrap();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let hits = server.hits("/headers");
    let out = run.run(&[&list, "-b", "bad.txt", "-o", "s.csv"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("cookie file bad.txt:1:"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("zzsecret"), "{}", out.stderr);
    assert_eq!(server.hits("/headers"), hits);
    let out = run.run(&[&list, "-b", "missing.txt", "-o", "s.csv"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn listed_cookies_keep_to_their_origin_beside_a_jar() {
    let server = TestServer::start();
    let run = Run::new();
    let port = server.url("").rsplit(':').next().unwrap().to_owned();
    std::fs::write(
        run.path("cookies.txt"),
        "localhost\tFALSE\t/\tFALSE\t0\tfromfile\tf\n",
    )
    .unwrap();
    // Listed on 127.0.0.1: -b NAME=VALUE goes there, the jar's localhost
    // cookie does not; on localhost, the other way round.
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let out = run.run(
        &[&list, "-b", "cookies.txt", "-b", "token=t", "-o", "s.csv"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.last_headers()["cookie"], "token=t");
    let list = run.urls("urls.txt", &[format!("http://localhost:{port}/headers")]);
    let out = run.run(
        &[&list, "-b", "cookies.txt", "-b", "token=t", "-o", "s.csv"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.last_headers()["cookie"], "token=t; fromfile=f");
}

#[test]
fn the_jar_is_written_through_a_fifo_and_a_symlink_as_stats_is() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/cookie/set/sid")]);
    let secret = cookie_value("sid");

    // A FIFO stays a FIFO: its reader gets the jar.
    let fifo = run.path("jar.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo from coreutils");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = run.run(&[&list, "--cookie-jar", "jar.fifo", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Checked before waiting for the reader, which a FIFO replaced by a
    // file leaves waiting for ever.
    use std::os::unix::fs::FileTypeExt as _;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let read = reader.join().unwrap();
    assert!(read.contains(&format!("\tsid\t{secret}\n")), "{read}");

    // A symlink stays a link; the file it names holds the jar.
    std::fs::create_dir(run.path("real")).unwrap();
    std::fs::write(run.path("real/jar.txt"), "# Netscape HTTP Cookie File\n").unwrap();
    std::os::unix::fs::symlink("real/jar.txt", run.path("link.jar")).unwrap();
    let out = run.run(&[&list, "--cookie-jar", "link.jar", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        std::fs::symlink_metadata(run.path("link.jar"))
            .unwrap()
            .is_symlink()
    );
    let written = std::fs::read_to_string(run.path("real/jar.txt")).unwrap();
    assert!(written.contains(&format!("\tsid\t{secret}\n")), "{written}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(run.path("real/jar.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_cookie_file_value_cannot_add_cookies_of_its_own() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    std::fs::write(
        run.path("cookies.txt"),
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\tVAL;admin=1\n",
    )
    .unwrap();
    let out = run.run(&[&list, "-b", "cookies.txt", "-o", "s.csv"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("cookies.txt:2"), "{}", out.stderr);
    assert!(!out.stderr.contains("VAL"), "{}", out.stderr);
    assert!(!out.stderr.contains("admin"), "{}", out.stderr);
}
