//! The URL list: every line read once and accounted for, whatever the
//! input is (a pipe, a FIFO, a file with a byte-order mark).

use std::collections::BTreeSet;

use crate::support::{Run, Table, TestServer, on_terminal};

/// 40 distinct page URLs on `server`, and the list file holding them.
fn list(server: &TestServer, run: &Run) -> (BTreeSet<String>, String) {
    let urls: Vec<String> = (0..40).map(|n| server.url(&format!("/gen/{n}"))).collect();
    let path = run.urls("list.txt", &urls);
    (urls.into_iter().collect(), path)
}

/// Runs `shell` (bash, in the run's directory) on a pseudo-terminal, so
/// that the progress bar is on, and checks `p.csv` holds every URL once.
fn every_line_accounted(run: &Run, urls: &BTreeSet<String>, shell: &str) {
    let command = format!("bash -c '{shell}'");
    let (status, screen) = on_terminal(run.dir.path(), &command);
    assert_eq!(status.code(), Some(0), "{shell}: {screen}");
    let pages = Table::read(&run.path("p.csv"));
    let got: Vec<&str> = pages.column("page_url");
    assert_eq!(got.len(), urls.len(), "{shell}: {screen}");
    let got: BTreeSet<String> = got.into_iter().map(str::to_owned).collect();
    assert_eq!(&got, urls, "{shell}");
    assert!(!screen.contains("held no URLs"), "{shell}: {screen}");
}

#[test]
fn a_pipe_given_as_input_on_a_terminal_loses_no_line() {
    let server = TestServer::start();
    let run = Run::new();
    let (urls, list) = list(&server, &run);
    let bin = env!("CARGO_BIN_EXE_scriptscrape");
    // Fed slowly, so that a second reader of the pipe would get lines.
    let slowly = format!("while read -r l; do echo \"$l\"; sleep 0.01; done < {list}");
    every_line_accounted(
        &run,
        &urls,
        &format!("{bin} <({slowly}) -c 4 -o /dev/null --pages p.csv"),
    );
    every_line_accounted(
        &run,
        &urls,
        &format!(
            "mkfifo fifo && ({slowly} > fifo &) && {bin} fifo -c 4 -o /dev/null --pages p.csv"
        ),
    );
    every_line_accounted(
        &run,
        &urls,
        &format!("{slowly} | {bin} /dev/stdin -c 4 -o /dev/null --pages p.csv"),
    );
}

#[test]
fn byte_order_marks_are_read_as_they_say_and_no_nul_reaches_a_cell() {
    let server = TestServer::start();
    let run = Run::new();
    let urls = [server.url("/gen/1"), server.url("/gen/2")];
    let text = format!("{}\n{}\n", urls[0], urls[1]);
    let utf8 = [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat();
    let mut utf16 = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    // UTF-16 without its BOM cannot be told from a binary file: its lines
    // are invalid, but their cells hold no NUL.
    let no_bom: Vec<u8> = utf16[2..].to_vec();
    for (name, bytes, ok) in [
        ("utf8", utf8, 2),
        ("utf16", utf16, 2),
        ("no-bom", no_bom, 0),
    ] {
        std::fs::write(run.path(name), &bytes).unwrap();
        let out = run.run(&[name, "-o", "s.csv", "--pages", "p.csv"], None);
        let raw = std::fs::read(run.path("p.csv")).unwrap();
        assert!(!raw.contains(&0), "{name}: NUL in the report");
        assert!(!std::fs::read(run.path("s.csv")).unwrap().contains(&0));
        let pages = Table::read(&run.path("p.csv"));
        let good = pages.rows_where("error", "").len();
        assert_eq!(good, ok, "{name}: {}", out.stderr);
        if ok == 2 {
            assert_eq!(out.code, 0, "{name}: {}", out.stderr);
            let mut got = pages.column("page_url");
            got.sort();
            assert_eq!(got, urls, "{name}");
        } else {
            assert_eq!(out.code, 1, "{name}: {}", out.stderr);
            assert!(!pages.rows.is_empty());
            assert!(pages.column("error").iter().all(|e| *e == "invalid_url"));
        }
    }
}

#[test]
fn lines_with_other_schemes_are_invalid_and_http_without_slashes_is_repaired() {
    let server = TestServer::start();
    let run = Run::new();
    // http:127.0.0.1:PORT/… is what browsers repair to http://127.0.0.1:PORT/….
    let repaired = server.url("/gen/3").replacen("http://", "http:", 1);
    let list = run.urls("list.txt", &[repaired.as_str(), "tel:911", "urn:1234"]);
    let out = run.run(&[&list, "-o", "s.csv", "--pages", "p.csv"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let pages = Table::read(&run.path("p.csv"));
    assert_eq!(pages.rows.len(), 3);
    assert_eq!(pages.for_page(&server.url("/gen/3"), "error"), "");
    for line in ["tel:911", "urn:1234"] {
        assert_eq!(pages.for_page(line, "error"), "invalid_url", "{line}");
        let detail = pages.for_page(line, "error_detail");
        assert!(detail.contains("unsupported scheme"), "{line}: {detail}");
    }
}
