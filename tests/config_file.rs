//! The configuration file (`--config`, `SCRIPTSCRAPE_CONFIG`,
//! `$XDG_CONFIG_HOME/scriptscrape/config.toml`): what it sets, what wins
//! over it, how it is shown, and how a wrong one is refused.

use crate::support::{Run, TestServer};

/// The User-Agent the server saw on its last request to /headers.
fn user_agent(server: &TestServer) -> String {
    server.last_headers()["user-agent"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The line of `--print-config`'s output that sets `key`.
fn setting<'a>(printed: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key} = ");
    printed
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key} in:\n{printed}"))
}

#[test]
fn a_config_file_sets_concurrency_user_agent_and_format() {
    let server = TestServer::start();
    let run = Run::new();
    let mut urls: Vec<String> = (1..=6)
        .map(|n| server.url(&format!("/slow-gen/300/{n}")))
        .collect();
    urls.push(server.url("/headers"));
    let list = run.urls("urls.txt", &urls);
    std::fs::write(
        run.path("scriptscrape.toml"),
        "# nightly run\nconcurrency = 2\nuser-agent = \"cfgbot/1.0 (+https://example.com/bot)\"\nformat = \"jsonl\"\n",
    )
    .unwrap();
    let out = run.run(
        &[
            &list,
            "--config",
            "scriptscrape.toml",
            "-o",
            "scripts.jsonl",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        server.max_in_flight() <= 2,
        "concurrency = 2, yet {} requests at once",
        server.max_in_flight()
    );
    assert_eq!(user_agent(&server), "cfgbot/1.0 (+https://example.com/bot)");
    let text = std::fs::read_to_string(run.path("scripts.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON Lines row"))
        .collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["page_url"].is_string()));
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    std::fs::write(
        run.path("c.toml"),
        "user-agent = \"from-file\"\nconcurrency = 3\ntimeout = 5\n",
    )
    .unwrap();
    let env = [("SCRIPTSCRAPE_CONFIG", "c.toml")];
    let out = run.run_with_env(&[&list, "-o", "s.csv"], None, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(user_agent(&server), "from-file");

    let env = [
        ("SCRIPTSCRAPE_CONFIG", "c.toml"),
        ("SCRIPTSCRAPE_USER_AGENT", "from-env"),
    ];
    let out = run.run_with_env(&[&list, "-o", "s.csv"], None, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(user_agent(&server), "from-env");
    let out = run.run_with_env(
        &[&list, "-o", "s.csv", "--user-agent", "from-flag"],
        None,
        &env,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(user_agent(&server), "from-flag");

    // The same, as --print-config tells it; nothing is fetched.
    let hits = server.hits("/headers");
    let out = run.run_with_env(&["--print-config", "--timeout", "7"], None, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.hits("/headers"), hits);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("# Configuration file: c.toml (SCRIPTSCRAPE_CONFIG)"),
        "{printed}"
    );
    let line = setting(&printed, "user-agent");
    assert!(line.contains("\"from-env\"") && line.ends_with("# env SCRIPTSCRAPE_USER_AGENT"));
    let line = setting(&printed, "concurrency");
    assert!(
        line.contains("\"3\"") && line.ends_with("# file c.toml:2"),
        "{line}"
    );
    let line = setting(&printed, "timeout");
    assert!(line.contains("\"7\"") && line.ends_with("# flag"), "{line}");
    let line = setting(&printed, "per-host");
    assert!(
        line.contains("\"8\"") && line.ends_with("# default"),
        "{line}"
    );
    assert!(printed.contains("# output (not set)"), "{printed}");

    // A flag the file's setting conflicts with wins too.
    std::fs::write(run.path("robots.toml"), "robots = true\n").unwrap();
    let out = run.run(
        &["--config", "robots.toml", "--no-robots", "--print-config"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    // robots = false is no setting (it would not mean no-robots).
    assert!(printed.contains("# robots (not set)"), "{printed}");
    assert!(
        setting(&printed, "no-robots").ends_with("# flag"),
        "{printed}"
    );
}

#[test]
fn the_default_file_is_read_from_xdg_config_home_unless_told_not_to() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let dir = run.path("xdg/scriptscrape");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "user-agent = \"xdg-bot\"\n").unwrap();
    let xdg = run.path("xdg");
    let env = [("XDG_CONFIG_HOME", xdg.to_str().unwrap())];
    let out = run.run_with_env(&[&list, "-o", "s.csv"], None, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(user_agent(&server), "xdg-bot");

    let out = run.run_with_env(&[&list, "-o", "s.csv", "--no-config"], None, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(user_agent(&server).starts_with("scriptscrape/"));
    // SCRIPTSCRAPE_CONFIG set and empty: no file either.
    let env_empty = [env[0], ("SCRIPTSCRAPE_CONFIG", "")];
    let out = run.run_with_env(&[&list, "-o", "s.csv"], None, &env_empty);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(user_agent(&server).starts_with("scriptscrape/"));

    // A file named by the variable must be there; the default need not.
    let env_missing = [env[0], ("SCRIPTSCRAPE_CONFIG", "gone.toml")];
    let out = run.run_with_env(&[&list, "-o", "s.csv"], None, &env_missing);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "scriptscrape: gone.toml: cannot read the configuration file: No such file or directory"
    );
    let out = run.run(&["--config", "xdg", "--print-config"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "scriptscrape: xdg: is a directory, not a configuration file"
    );
}

#[test]
fn unknown_keys_and_bad_values_name_the_file_line_and_key() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let cases = [
        (
            "# tuned\nconcurency = 4\n",
            "scriptscrape: c.toml:2: unknown key \"concurency\" (did you mean \"concurrency\"?)",
        ),
        (
            "user_agent = \"bot\"\n",
            "scriptscrape: c.toml:1: unknown key \"user_agent\" (did you mean \"user-agent\"?)",
        ),
        (
            "concurrency = 4\n\ntimeout = \"soon\"\n",
            "scriptscrape: c.toml:3: timeout: invalid value 'soon' for '--timeout <SECS>': \
             expected seconds, e.g. 30 or 2.5",
        ),
        (
            "format = \"xml\"\n",
            "scriptscrape: c.toml:1: format: invalid value 'xml' for '--format <FORMAT>' \
             [possible values: csv, jsonl, parquet]",
        ),
        (
            "robots = \"yes\"\n",
            "scriptscrape: c.toml:1: robots: expected true or false, not a string",
        ),
        (
            "print-config = true\n",
            "scriptscrape: c.toml:1: \"print-config\" cannot be set in a configuration file: \
             it is a request, not a setting",
        ),
        (
            "ignore-query = true\n",
            "scriptscrape: c.toml:1: \"ignore-query\" is an option of diff only: set it under \
             [diff]",
        ),
        (
            "concurrency = 4\nconcurrency = 5\n",
            "scriptscrape: c.toml:2: invalid TOML: duplicate key",
        ),
    ];
    for (text, says) in cases {
        std::fs::write(run.path("c.toml"), text).unwrap();
        let out = run.run(&[&list, "--config", "c.toml", "-o", "s.csv"], None);
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert_eq!(out.stderr.trim(), says, "{text}");
    }
    assert_eq!(server.hits("/headers"), 0, "nothing runs");
    std::fs::write(run.path("c.toml"), b"user-agent = \"caf\xe9\"\n").unwrap();
    let out = run.run(&[&list, "--config", "c.toml"], None);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr.trim(),
        "scriptscrape: c.toml:1: not UTF-8 text (TOML is UTF-8)"
    );
}

#[test]
fn secrets_are_masked_in_print_config_and_a_readable_file_is_warned_of() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let path = run.path("c.toml");
    std::fs::write(
        &path,
        "user = \"ann:p4ssw0rd\"\n\
         cookie = [\"session=c00kie\", \"lang=en\"]\n\
         header = [\"Authorization: Bearer t0ken\", \"X-Trace: yes\"]\n\
         proxy = \"http://bob:pr0xypw@127.0.0.1:9\"\n\
         redis = \"redis://:r3dis@queue:6379/\"\n",
    )
    .unwrap();
    let out = run.run(&["--config", "c.toml", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    for secret in ["p4ssw0rd", "c00kie", "t0ken", "pr0xypw", "r3dis"] {
        assert!(!printed.contains(secret), "{secret} shown:\n{printed}");
    }
    assert!(
        setting(&printed, "user").contains("\"***\"") && !printed.contains("ann"),
        "{printed}"
    );
    assert!(
        setting(&printed, "cookie").contains("[\"session=***\", \"lang=***\"]"),
        "{printed}"
    );
    assert!(
        setting(&printed, "header").contains("[\"Authorization: ***\", \"X-Trace: yes\"]"),
        "{printed}"
    );
    assert!(
        setting(&printed, "proxy").contains("***@127.0.0.1:9"),
        "{printed}"
    );
    // The queue's commands take the Redis URL from the top level.
    let out = run.run(&["jobs", "--config", "c.toml", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("[jobs]\n"), "{printed}");
    assert!(
        setting(&printed, "redis").contains("redis://***@queue:6379/"),
        "{printed}"
    );

    // Readable by others and holding secrets: warned, without them.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(&path, "cookie = \"session=c00kie\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run.run(&[&list, "--config", "c.toml", "-o", "s.csv", "-vvv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("c.toml holds secrets (cookie) and other users can read it"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("c00kie"), "{}", out.stderr);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run.run(&[&list, "--config", "c.toml", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("other users"), "{}", out.stderr);
}

#[test]
fn a_repeatable_option_takes_an_array() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    std::fs::write(
        run.path("c.toml"),
        "header = [\"X-One: 1\", \"X-Two: 2\"]\ncookie = [\"a=1\", \"b=2\"]\n",
    )
    .unwrap();
    let out = run.run(&[&list, "--config", "c.toml", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let seen = server.last_headers();
    assert_eq!(seen["x-one"], "1");
    assert_eq!(seen["x-two"], "2");
    assert_eq!(seen["cookie"], "a=1; b=2");
    // A flag replaces the file's list rather than adding to it.
    let out = run.run(
        &[
            &list,
            "--config",
            "c.toml",
            "-o",
            "s.csv",
            "-H",
            "X-Three: 3",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let seen = server.last_headers();
    assert_eq!(seen["x-three"], "3");
    assert!(seen.get("x-one").is_none());
}

#[test]
fn a_commands_table_wins_for_it_and_print_config_reads_back_as_a_file() {
    let run = Run::new();
    std::fs::write(
        run.path("c.toml"),
        "concurrency = 4\njob = \"nightly\"\nredis = \"redis://127.0.0.1:9/\"\n\n[work]\nconcurrency = 32\n",
    )
    .unwrap();
    let out = run.run(&["work", "--config", "c.toml", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("\n[work]\n"), "{printed}");
    assert!(
        setting(&printed, "concurrency").contains("\"32\""),
        "{printed}"
    );
    assert!(setting(&printed, "concurrency").ends_with("# file c.toml:6"));
    assert!(setting(&printed, "job").ends_with("# file c.toml:2"));

    // What --print-config prints is a configuration file giving the same
    // settings.
    let out = run.run(&["--config", "c.toml", "--print-config", "-q"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    std::fs::write(run.path("again.toml"), &printed).unwrap();
    let out = run.run(&["--config", "again.toml", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let again = String::from_utf8(out.stdout).unwrap();
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  #").next().unwrap().trim().to_owned())
            .collect()
    };
    assert_eq!(values(&printed), values(&again));
}

#[test]
fn no_message_and_no_print_config_line_shows_a_secret() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let refused = |args: &[&str], env: &[(&str, &str)], secret: &str, says: &str| {
        let out = run.run_with_env(args, None, env);
        assert_eq!(out.code, 2, "{args:?} {env:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains(secret),
            "{args:?} {env:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(says),
            "{args:?} {env:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    };
    let cookie = "'--cookie <NAME=VALUE|FILE>' (not shown: it is a secret)";
    refused(&[&list, "-b", "sid=SEC;RET"], &[], "SEC", cookie);
    refused(&[&list, "-b", "=SECRET"], &[], "SECRET", "without a name");
    refused(&[&list, "-b", "s id=SECRET"], &[], "SECRET", cookie);
    refused(
        &[&list, "-b", "sid=SEC\nRET"],
        &[],
        "RET",
        "a line break in a cookie",
    );
    refused(
        &[&list],
        &[("SCRIPTSCRAPE_COOKIE", "sid=SEC;RET")],
        "SEC",
        cookie,
    );
    let user = "'--user <USER:PASSWORD>' (not shown: it is a secret)";
    refused(&[&list, "-u", "nocolonSECRET"], &[], "SECRET", user);
    refused(
        &[&list],
        &[("SCRIPTSCRAPE_USER", "nocolonSECRET")],
        "SECRET",
        user,
    );
    refused(
        &[&list, "-H", "Authorization Bearer SECRETXYZ"],
        &[],
        "SECRETXYZ",
        "invalid header \"Authorization …\": no colon",
    );
    // From the file, the same message, after the file, line and key.
    std::fs::write(run.path("c.toml"), "\ncookie = \"sid=SEC;RET\"\n").unwrap();
    refused(
        &[&list, "--config", "c.toml"],
        &[],
        "SEC",
        &format!("c.toml:2: cookie: invalid value for {cookie}"),
    );

    // curl's form: several cookies in one -b.
    let server = TestServer::start();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    let out = run.run(&[&list, "-b", "a=1; b=2", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.last_headers()["cookie"], "a=1; b=2");

    // --print-config masks secret-bearing headers, malformed ones and the
    // whole of -u.
    let out = run.run(
        &[
            "-H",
            "Authorization Bearer SECRETXYZ",
            "-H",
            "PRIVATE-TOKEN: SECRET1",
            "-H",
            "X-Access-Token: SECRET2",
            "-H",
            "X-Goog-Api-Key: SECRET3",
            "-u",
            "ghp_TOKEN:x",
            "-b",
            "a=SECRET4; b=SECRET5",
            "--print-config",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    for secret in ["SECRET", "ghp_TOKEN"] {
        assert!(!printed.contains(secret), "{secret}:\n{printed}");
    }
    assert!(
        setting(&printed, "header").contains("\"PRIVATE-TOKEN: ***\""),
        "{printed}"
    );
    assert!(
        setting(&printed, "cookie").contains("\"a=***; b=***\""),
        "{printed}"
    );

    // A file others can read holding such a header is warned of.
    use std::os::unix::fs::PermissionsExt as _;
    let path = run.path("h.toml");
    std::fs::write(&path, "header = \"X-Goog-Api-Key: SECRET3\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run.run(&[&list, "--config", "h.toml", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("holds secrets (header)"),
        "{}",
        out.stderr
    );
}

#[test]
fn quiet_and_verbose_go_by_source_and_print_config_reads_back() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/headers")]);
    std::fs::write(run.path("v.toml"), "verbose = 1\n").unwrap();
    // The environment wins over the file.
    let out = run.run_with_env(
        &[&list, "--config", "v.toml", "-o", "s.csv"],
        None,
        &[("SCRIPTSCRAPE_QUIET", "true")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "", "quiet");
    // What --print-config prints is what runs, and reads back.
    std::fs::write(run.path("c2.toml"), "verbose = 2\n").unwrap();
    let out = run.run(&["--config", "c2.toml", "-q", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        setting(&printed, "quiet").starts_with("quiet = true"),
        "{printed}"
    );
    assert!(
        setting(&printed, "verbose").starts_with("verbose = 0"),
        "{printed}"
    );
    std::fs::write(run.path("pq.txt"), &printed).unwrap();
    let out = run.run(&[&list, "--config", "pq.txt", "-o", "s.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "", "quiet");

    // From one source, they still contradict each other.
    std::fs::write(run.path("both.toml"), "verbose = 1\nquiet = true\n").unwrap();
    let out = run.run(&[&list, "--config", "both.toml"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("contradict"), "{}", out.stderr);
}

#[test]
fn values_that_would_do_the_wrong_thing_are_refused_with_file_line_and_key() {
    let run = Run::new();
    let list = run.urls("urls.txt", &["http://127.0.0.1:9/"]);
    let refused = |text: &str, says: &str| {
        std::fs::write(run.path("c.toml"), text).unwrap();
        let out = run.run(&[&list, "--config", "c.toml", "-o", "s.csv"], None);
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        let line = out.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{text}: {line}");
        assert!(line.contains(says), "{text}: {line}");
        assert!(!line.contains("SECRET"), "{text}: {line}");
    };
    refused(
        "\noutput = false\n",
        "c.toml:2: output: takes a value, not true/false",
    );
    refused(
        "pages = true\n",
        "c.toml:1: pages: takes a value, not true/false",
    );
    refused(
        "depth = 1\nrobots = false\n",
        "c.toml:2: robots: false does not mean no-robots: write no-robots = true",
    );
    refused(
        "[[work]]\nconcurrency = 1\n",
        "c.toml:1: [[work]]: an array of tables; use [work]",
    );
    refused(
        "cookie = {a=1}\n",
        "c.toml:1: cookie: a table is not a value; give a string or a list",
    );
    refused(
        "header = \"1\"\n",
        "c.toml:1: header: invalid header: no colon",
    );
    refused(
        "header = \"Authorization Bearer SECRET\"\n",
        "c.toml:1: header: invalid header \"Authorization …\": no colon",
    );
    refused("proxy = \"ftp://p:21\"\n", "c.toml:1: proxy:");
    refused("user-agent = \"a\\nb\"\n", "c.toml:1: user-agent:");
    refused(
        "sitemap = \"x\"\n",
        "c.toml:1: sitemap: expected an http(s) URL or auto",
    );
    refused(
        "cookie = \"nosuchfile\"\n",
        "c.toml:1: cookie: cookie file nosuchfile",
    );
    refused(
        "cookie-jar = \"nodir/jar.txt\"\n",
        "c.toml:1: cookie-jar: the directory nodir does not exist",
    );
    refused(
        "stats = \"nodir/s.json\"\n",
        "c.toml:1: stats: the directory nodir does not exist",
    );
    refused(
        "[work]\nheader = \"1\"\n",
        "c.toml:2: [work] header: invalid header: no colon",
    );
    // no-robots = true still works, and robots = true too.
    std::fs::write(run.path("c.toml"), "no-robots = true\n").unwrap();
    let out = run.run(&["--config", "c.toml", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn print_config_goes_with_its_command_and_needs_none_of_its_required_options() {
    let run = Run::new();
    std::fs::write(run.path("w.toml"), "[work]\nconcurrency = 9\n").unwrap();
    // Before a command's name, as without --print-config: refused.
    let out = run.run(&["--print-config", "work"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("'work' is a command"), "{}", out.stderr);
    let out = run.run(&["--config", "w.toml", "--print-config", "work"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run.run(&["--config", "w.toml", "work", "--print-config"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("'work' is a command"), "{}", out.stderr);
    // After it, without --redis, --job or OLD NEW.
    let out = run.run(&["work", "--config", "w.toml", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("[work]\n"), "{printed}");
    assert!(
        setting(&printed, "concurrency").contains("\"9\""),
        "{printed}"
    );
    assert!(printed.contains("# redis (not set)"), "{printed}");
    let out = run.run(&["diff", "--print-config"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(String::from_utf8(out.stdout).unwrap().contains("[diff]\n"));
    // Without --print-config, the required options still are.
    let out = run.run(&["work"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run.run(&["work", "-H", "--print-config"], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("required"), "{}", out.stderr);
}

/// --print-config's masks read back are refused, not sent as the secret;
/// a header whose name has a space shows its first word at most.
#[test]
fn masked_secrets_read_back_are_refused_and_bad_header_names_stay_hidden() {
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    for (toml, key) in [
        ("user = \"***\"\n", "user"),
        ("cookie = \"sid=***\"\n", "cookie"),
        ("header = [\"Authorization: ***\"]\n", "header"),
        ("proxy = \"http://***@127.0.0.1:9/\"\n", "proxy"),
    ] {
        std::fs::write(run.path("c.toml"), toml).unwrap();
        let out = run.run(&[&list, "--config", "c.toml", "-o", "/dev/null"], None);
        assert_eq!(out.code, 2, "{toml}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "c.toml:1: {key}: holds ***, where --print-config masked a secret: put the secret back"
            )),
            "{toml}: {}",
            out.stderr
        );
    }
    let out = run.run(
        &[
            &list,
            "-o",
            "/dev/null",
            "-H",
            "Authorization Basic ann:SECRETPW",
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("invalid header \"Authorization …\""),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("SECRETPW") && !out.stderr.contains("ann"),
        "{}",
        out.stderr
    );
    let out = run.run(
        &[
            "--print-config",
            "-H",
            "Authorization Basic ann:SECRETPW",
            "-H",
            "X-Pass: p4",
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("SECRETPW") && !stdout.contains("p4"),
        "{stdout}"
    );
    assert_eq!(server.hits("/gen/1"), 0);
}
