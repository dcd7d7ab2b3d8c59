//! Proxies: which values are accepted, how requests go through them, and
//! how their failures are worded, never with their credentials.

use crate::support::Run;

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
