//! Running from cron and for exports: outputs that readers can trust.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Run, Table, TestServer, generated_scripts, wait_within};

fn lines(path: &std::path::Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn outputs_are_replaced_whole_when_the_run_ends() {
    let server = TestServer::start();
    let run = Run::new();
    std::fs::write(run.path("scripts.csv"), "last run's scripts\n").unwrap();
    std::fs::write(run.path("pages.csv"), "last run's pages\n").unwrap();
    let urls: Vec<String> = (0..24)
        .map(|n| server.url(&format!("/slow-gen/150/{n}")))
        .collect();
    let list = run.urls("urls.txt", &urls);
    let mut child = run
        .command(&[
            &list,
            "-c",
            "2",
            "-o",
            "scripts.csv",
            "--pages",
            "pages.csv",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Mid-run: rows go to the .part files, page by page, and the files of
    // the last run are untouched.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&run.path("pages.csv.part")) < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let written = lines(&run.path("pages.csv.part"));
    assert!((4..25).contains(&written), "{written} lines mid-run");
    assert_eq!(
        std::fs::read_to_string(run.path("scripts.csv")).unwrap(),
        "last run's scripts\n"
    );
    assert_eq!(
        std::fs::read_to_string(run.path("pages.csv")).unwrap(),
        "last run's pages\n"
    );

    let status = wait_within(&mut child, Duration::from_secs(60)).expect("run ends");
    assert_eq!(status.code(), Some(0));
    assert!(!run.path("scripts.csv.part").exists());
    assert!(!run.path("pages.csv.part").exists());
    let pages = Table::read(&run.path("pages.csv"));
    let scripts = Table::read(&run.path("scripts.csv"));
    assert_eq!(pages.rows.len(), 24);
    let expected: usize = (0..24).map(|n| generated_scripts(n).len()).sum();
    assert_eq!(scripts.rows.len(), expected);
}

#[test]
fn a_symlinked_output_keeps_its_link_and_mode() {
    let server = TestServer::start();
    let run = Run::new();
    let real = run.path("real.csv");
    std::fs::write(&real, "old\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, run.path("link.csv")).unwrap();
    let list = run.urls("urls.txt", &[server.url("/gen/3")]);

    let out = run.run(&[&list, "-o", "link.csv", "--pages", "/dev/null"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let link = std::fs::symlink_metadata(run.path("link.csv")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let table = Table::read(&real);
    assert_eq!(table.rows.len(), generated_scripts(3).len());
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // /dev/null is written in place: no .part beside it, and no error.
    assert!(!std::path::Path::new("/dev/null.part").exists());
}

#[test]
fn a_run_that_cannot_start_leaves_the_last_outputs_alone() {
    let run = Run::new();
    std::fs::write(run.path("scripts.csv"), "last run\n").unwrap();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let out = run.run(
        &[
            &list,
            "-o",
            "scripts.csv",
            "--pages",
            "no-such-dir/pages.csv",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-dir"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(run.path("scripts.csv")).unwrap(),
        "last run\n"
    );
    assert!(!run.path("scripts.csv.part").exists());
}
