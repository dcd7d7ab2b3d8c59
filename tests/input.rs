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
