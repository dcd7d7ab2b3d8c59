//! Validated settings for a run, built once from the command line.

use std::io::IsTerminal as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use crate::cli::Cli;
use crate::fetch::FetchSettings;
use crate::input::Source;
use crate::output::Destination;

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// URL lists, read in order.
    pub sources: Vec<Source>,
    /// The scripts CSV.
    pub output: Destination,
    /// The page report, when asked for.
    pub pages: Option<Destination>,
    /// Requests in flight at once (`-c`).
    pub concurrency: NonZeroUsize,
    /// Requests in flight to one host (`--per-host`).
    pub per_host: NonZeroUsize,
    /// Least time between request starts to one host (`--delay`).
    pub delay: std::time::Duration,
    /// Least time between any two request starts (`--rate`).
    pub rate: Option<std::time::Duration>,
    /// Waits drawn between 0.5 and 1.5 times their length
    /// (`--random-delay`).
    pub random_delay: bool,
    /// Obey robots.txt (`--robots`).
    pub robots: bool,
    /// Client settings.
    pub fetch: FetchSettings,
    /// Write the text of inline scripts.
    pub inline_text: bool,
    /// `--fetch-scripts`: the largest script body read (`--max-script-body`),
    /// or `None` when scripts are not fetched.
    pub fetch_scripts: Option<u64>,
    /// Scripts fetched for one page (`--max-scripts-per-page`).
    pub max_scripts_per_page: usize,
    /// Take undeclared valid UTF-8 as UTF-8 (`--detect-utf8`).
    pub detect_utf8: bool,
    /// No summary or per-page messages on stderr.
    pub quiet: bool,
    /// Time requests in flight get to finish after a stop (`--grace`).
    pub grace: std::time::Duration,
    /// Wait for another run's lock instead of leaving (`--wait-lock`).
    pub wait_lock: bool,
    /// Percentage of failed pages that still exits 0 (`--max-failures`).
    pub max_failures: f64,
    /// Continue an interrupted run (`--resume`).
    pub resume: bool,
    /// Where to write the run's figures as JSON (`--stats`).
    pub stats: Option<Destination>,
    /// Format of the outputs (`--format`, `--spreadsheet-safe`).
    pub encoding: crate::output::Encoding,
    /// The outputs' columns and compression (`--fields`, `--page-fields`,
    /// `--compress`, `.gz`/`.zst` names).
    pub layout: crate::output::Layout,
    /// Write pages in input order (`--ordered`).
    pub ordered: bool,
    /// Crawl mode: follow links, or at least dedupe and count pages as a
    /// crawl does (`--depth`, `--max-pages`, `--strip-query`).
    pub crawl: Option<crate::crawl::Crawl>,
    /// This machine's part of a job split by site (`--shard K/N`); `None`
    /// does it all.
    pub shard: Option<crate::shard::Shard>,
    /// The shared queue's job the results come from (`collect`), as its
    /// identity for `--resume`: the job's name and Redis without password.
    pub job: Option<String>,
    /// `--render`: how pages are loaded in a browser; `None` without it.
    pub render: Option<crate::render::Settings>,
}

/// The User-Agent sent when none is given.
pub const DEFAULT_USER_AGENT: &str = concat!("scriptscrape/", env!("CARGO_PKG_VERSION"));

/// Whether standard input is a pipe or a non-empty file: a list someone
/// meant to give (not a terminal, not /dev/null, not closed).
fn stdin_holds_data() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        std::fs::metadata("/dev/stdin").is_ok_and(|m| {
            m.file_type().is_fifo() || m.file_type().is_socket() || (m.is_file() && m.len() > 0)
        })
    }
    #[cfg(not(unix))]
    false
}

/// The crawl options on the command line, as a user would list them.
fn crawl_options_given(cli: &Cli) -> String {
    let given: Vec<&str> = [
        (cli.fetch.depth > 0, "--depth"),
        (cli.fetch.max_pages.is_some(), "--max-pages"),
        (!cli.fetch.strip_query.is_empty(), "--strip-query"),
        (!cli.fetch.sitemaps.is_empty(), "--sitemap"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if given.is_empty() {
        "crawl options".to_owned()
    } else {
        given.join(" and ")
    }
}

/// Compiles the regular expression given to `flag`, or says in one line
/// what is wrong with it.
fn compile_regex(flag: &str, pattern: &str) -> anyhow::Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| {
        // The regex crate's message spans lines, with a pointer diagram;
        // its last line says what is wrong, after an "error: " of its own.
        let why = e.to_string();
        let why = why.lines().last().unwrap_or_default().trim();
        let why = why.strip_prefix("error: ").unwrap_or(why);
        anyhow::anyhow!("invalid {flag} {pattern:?}: {why}")
    })
}

/// Validates `scriptscrape diff`'s command line.
pub fn diff_config(args: crate::cli::DiffArgs) -> anyhow::Result<crate::diff::DiffConfig> {
    use crate::diff::{AllowList, DiffConfig, Options};
    let regex = |flag: &str, re: &str| compile_regex(flag, re);
    let inputs = [
        Some(&args.old),
        Some(&args.new),
        args.old_pages.as_ref(),
        args.new_pages.as_ref(),
    ];
    let also_read = [args.allow.as_ref()];
    check_report_files(&inputs, &also_read, args.output.as_deref())?;
    if args.spreadsheet_safe && args.format != crate::diff::write::DiffFormat::Csv {
        bail!("--spreadsheet-safe applies to CSV only: drop it, or use --format csv");
    }
    let allow = args.allow.as_deref().map(AllowList::read).transpose()?;
    Ok(DiffConfig {
        old: (args.old, args.old_pages),
        new: (args.new, args.new_pages),
        // As for a scrape, '-o -' is standard output.
        output: args.output.filter(|o| o.as_os_str() != "-"),
        format: args.format,
        fail_on: args.fail_on,
        spreadsheet_safe: args.spreadsheet_safe,
        options: Options {
            only_third_party: args.only_third_party,
            page: args
                .page
                .as_deref()
                .map(|re| regex("--page", re))
                .transpose()?,
            ignore_src: args
                .ignore_src
                .iter()
                .map(|re| regex("--ignore-src", re))
                .collect::<anyhow::Result<_>>()?,
            ignore_query: args.ignore_query,
            allow,
        },
    })
}

/// For the commands that read runs' outputs and write a report (diff,
/// inventory): standard input is read at most once (`inputs`), and the
/// report (`-o`; `-` is standard output) replaces none of the files read
/// (`inputs` and `also_read`).
fn check_report_files(
    inputs: &[Option<&String>],
    also_read: &[Option<&String>],
    output: Option<&Path>,
) -> anyhow::Result<()> {
    if inputs
        .iter()
        .flatten()
        .filter(|i| i.as_str() == "-")
        .count()
        > 1
    {
        bail!("standard input ('-') can be read only once: give the other files by name");
    }
    if let Some(out) = output.filter(|o| o.as_os_str() != "-")
        && let Some(input) = inputs
            .iter()
            .chain(also_read)
            .flatten()
            .find(|i| i.as_str() != "-" && same_file(Path::new(i), out))
    {
        bail!("-o {} is one of the inputs ({input})", out.display());
    }
    Ok(())
}

/// Checks `scriptscrape inventory`'s arguments and reads its allow list.
pub fn inventory_config(
    args: crate::cli::InventoryArgs,
) -> anyhow::Result<crate::inventory::InventoryConfig> {
    use crate::inventory::{InventoryConfig, ReportFormat};
    let inputs = [Some(&args.scripts), args.pages.as_ref(), Some(&args.allow)];
    check_report_files(&inputs, &[], args.output.as_deref())?;
    // '-o -' is standard output.
    let output = args.output.filter(|o| o.as_os_str() != "-");
    let format = args.format.unwrap_or_else(|| {
        let extension = output
            .as_ref()
            .and_then(|o| o.extension())
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("html" | "htm") => ReportFormat::Html,
            Some("jsonl" | "ndjson") => ReportFormat::Jsonl,
            _ => ReportFormat::Csv,
        }
    });
    if args.spreadsheet_safe && format != ReportFormat::Csv {
        bail!("--spreadsheet-safe applies to CSV only: drop it, or use --format csv");
    }
    let allow = if args.allow == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read the allow list from standard input")?;
        crate::diff::AllowList::parse(&text)
            .map_err(|e| anyhow::anyhow!("standard input:{}: {}", e.line, e.message))?
    } else {
        crate::diff::AllowList::read(&args.allow)?
    };
    Ok(InventoryConfig {
        scripts: args.scripts,
        pages: args.pages,
        allow: (allow, args.allow),
        output,
        format,
        spreadsheet_safe: args.spreadsheet_safe,
    })
}

impl Config {
    /// Validates the command line. `stdin_is_terminal` decides what no
    /// INPUT means.
    pub fn from_cli(cli: Cli) -> anyhow::Result<Config> {
        Self::from_cli_with_stdin(cli, std::io::stdin().is_terminal())
    }

    fn from_cli_with_stdin(cli: Cli, stdin_is_terminal: bool) -> anyhow::Result<Config> {
        let sources = sources(&cli, stdin_is_terminal)?;
        Self::build(cli, sources)
    }

    /// A worker's settings (`scriptscrape work`): a scrape's fetching,
    /// crawling and parsing, with no input or output of its own.
    pub fn for_work(
        fetch: crate::cli::FetchArgs,
        log: crate::cli::LogArgs,
    ) -> anyhow::Result<Config> {
        // A job-wide page limit and sitemaps as seeds would need state of
        // the whole job, which no worker has.
        if let Some(max) = fetch.max_pages {
            bail!(
                "--max-pages {max} applies to one run: a shared queue has no job-wide page limit"
            );
        }
        if !fetch.sitemaps.is_empty() {
            bail!("--sitemap is not read by workers: enqueue the sitemap's URLs instead");
        }
        if fetch.frontier_memory != defaults::<crate::cli::FetchArgs>().frontier_memory {
            bail!(
                "--frontier-memory applies to a local crawl: a worker's frontier is the job's queue"
            );
        }
        let cli = Cli {
            command: None,
            inputs: Vec::new(),
            outputs: defaults::<crate::cli::OutputArgs>(),
            fetch,
            render: defaults::<crate::cli::RenderArgs>(),
            log,
            shard: None,
            generate: None,
            settings: crate::cli::ConfigArgs::default(),
        };
        Self::build(cli, Vec::new())
    }

    /// The server's fetching settings (`scriptscrape serve`), and whether
    /// client URLs may be private addresses (`--allow-private`, which for
    /// a server applies to every URL, not to a crawl's links). With
    /// `max_depth` (`--max-depth`), scans may crawl up to that depth, with
    /// the crawl options given here (`--scope`, `--include`, ...) as
    /// `config.crawl`, whose `max_depth` is the server's.
    pub fn for_serve(
        mut fetch: crate::cli::FetchArgs,
        log: crate::cli::LogArgs,
        max_depth: u16,
    ) -> anyhow::Result<(Config, bool)> {
        let per_scan = [
            (
                fetch.depth > 0,
                "--depth",
                "a scan asks for it with options.depth, up to --max-depth",
            ),
            (
                fetch.max_pages.is_some(),
                "--max-pages",
                "a scan asks for it with options.max_pages, up to --max-urls",
            ),
            (
                fetch.fetch_scripts,
                "--fetch-scripts",
                "a scan asks for it with options.fetch_scripts",
            ),
        ];
        if let Some((_, flag, instead)) = per_scan.iter().find(|(given, ..)| *given) {
            bail!("{flag} is not a server option: {instead}");
        }
        if !fetch.sitemaps.is_empty() {
            bail!("--sitemap is not read by serve: a scan names its URLs, or crawls from them");
        }
        if max_depth == 0 {
            let crawling = [
                (fetch.scope.is_some(), "--scope"),
                (!fetch.include.is_empty(), "--include"),
                (!fetch.exclude.is_empty(), "--exclude"),
                (fetch.follow_nofollow, "--follow-nofollow"),
                (!fetch.strip_query.is_empty(), "--strip-query"),
            ];
            if let Some((_, flag)) = crawling.iter().find(|(given, _)| *given) {
                bail!(
                    "{flag} applies to the links a scan follows: give --max-depth N (1 or more) \
                     so that scans may crawl"
                );
            }
        }
        // The clients choose the sites: the operator's logins, cookies and
        // headers would be sent to whichever they name.
        let credentials = [
            (fetch.user.is_some(), "-u (--user)"),
            (!fetch.cookies.is_empty(), "-b (--cookie)"),
            (fetch.cookie_jar.is_some(), "--cookie-jar"),
            (!fetch.headers.is_empty(), "-H (--header)"),
        ];
        if let Some((_, flag)) = credentials.iter().find(|(given, _)| *given) {
            bail!(
                "{flag}: a server's clients name the sites, so what it carries would go to any \
                 of them; serve takes no credentials or headers"
            );
        }
        if fetch.inline_text {
            bail!(
                "--inline-text is not offered by serve: its scans write the columns of a plain run"
            );
        }
        // Built as a crawl of the server's greatest depth: each scan's is
        // its own, up to that.
        fetch.depth = max_depth;
        // Scans ask for it one by one; `fetch_scripts` carries the
        // server's --max-script-body for those that do.
        fetch.fetch_scripts = true;
        let allow_private = std::mem::take(&mut fetch.allow_private);
        let config = Self::for_work(fetch, log)?;
        if !allow_private && config.fetch.proxies.all().next().is_some() {
            bail!(
                "a proxy is set (--proxy, or HTTP_PROXY/HTTPS_PROXY/ALL_PROXY in the \
                 environment), and a proxy resolves the names it is sent, so the \
                 private-network rule could not hold for the clients' URLs: unset it, or give \
                 --allow-private if the proxy keeps clients out of private networks itself"
            );
        }
        Ok((config, allow_private))
    }

    /// The collector's settings (`scriptscrape collect`): a scrape's
    /// outputs, with no input and no fetching of its own.
    pub fn for_collect(
        outputs: crate::cli::OutputArgs,
        inline_text: bool,
        log: crate::cli::LogArgs,
    ) -> anyhow::Result<Config> {
        if outputs.ordered {
            bail!("--ordered cannot be used by collect: results arrive as workers finish them");
        }
        let mut fetch = defaults::<crate::cli::FetchArgs>();
        fetch.inline_text = inline_text;
        let cli = Cli {
            command: None,
            inputs: Vec::new(),
            outputs,
            fetch,
            render: defaults::<crate::cli::RenderArgs>(),
            log,
            shard: None,
            generate: None,
            settings: crate::cli::ConfigArgs::default(),
        };
        // `job` is set by the collector once connected: which job, and
        // its creation, are known only then.
        let config = Self::build(cli, Vec::new())?;
        if config.encoding.format == crate::output::Format::Parquet {
            // Results are acknowledged once durable in the outputs; rows of
            // a Parquet file are readable only when its footer is written,
            // at the end, so a killed collector would lose acknowledged
            // results.
            bail!(
                "collect cannot write --format parquet: it acknowledges results once they are \
                 durable in its outputs, and a Parquet file can be read only once it is complete; \
                 collect --format jsonl and convert it when the job is done (README: Exporting to \
                 a warehouse)"
            );
        }
        Ok(config)
    }

    fn build(cli: Cli, sources: Vec<Source>) -> anyhow::Result<Config> {
        let output = cli
            .outputs
            .output
            .as_deref()
            .map_or(Destination::Stdout, Destination::from_arg);
        let pages = cli.outputs.pages.as_deref().map(Destination::from_arg);
        if pages == Some(Destination::Stdout) && output == Destination::Stdout {
            bail!("--pages and the scripts output cannot both go to standard output");
        }
        if let (Some(Destination::File(p)), Destination::File(o)) = (&pages, &output)
            && same_file(p, o)
        {
            bail!("--pages and -o name the same file {}", p.display());
        }
        // The outputs that go to files, with the option that names each.
        let file_outputs: Vec<(&str, &Path)> = [("-o", &output)]
            .into_iter()
            .chain(pages.iter().map(|p| ("--pages", p)))
            .filter_map(|(option, d)| match d {
                Destination::File(path) => Some((option, path.as_path())),
                Destination::Stdout => None,
            })
            .collect();
        let input_files = input_files(&sources);
        for (_, out) in &file_outputs {
            if let Some((_, name)) = input_files.iter().find(|(p, _)| same_file(p, out)) {
                bail!(
                    "output {} is also an input ({name}); refusing to overwrite it",
                    out.display()
                );
            }
        }

        // Checked before the lock files beside them are made, whose names
        // would otherwise be the ones in the message.
        let stats = cli
            .outputs
            .stats
            .as_deref()
            .map(|s| Destination::from_arg(&s.to_string_lossy()));
        let stats_file = match &stats {
            Some(Destination::File(path)) => Some(("--stats", path.as_path())),
            _ => None,
        };
        for &(option, path) in file_outputs.iter().chain(&stats_file) {
            if let Some(dir) = missing_dir(path) {
                bail!(
                    "cannot write {option} {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                );
            }
        }

        match &stats {
            Some(Destination::Stdout) if output == Destination::Stdout => bail!(
                "--stats - needs standard output, which the scripts already go to (give -o FILE)"
            ),
            Some(Destination::Stdout) if pages == Some(Destination::Stdout) => {
                bail!("--stats - and --pages - cannot both go to standard output")
            }
            Some(Destination::File(stats)) => {
                if let Some((_, name)) = input_files.iter().find(|(p, _)| same_file(p, stats)) {
                    bail!(
                        "--stats {} is also an input ({name}); refusing to overwrite it",
                        stats.display()
                    );
                }
                // An output, or a file the run keeps beside one: its .part,
                // the .part.run --resume reads, its lock.
                let kept = file_outputs.iter().flat_map(|&(option, path)| {
                    let part = crate::output::staged_part(path).ok().flatten();
                    std::iter::once(path.to_path_buf())
                        .chain(part.into_iter().flat_map(kept_beside))
                        .map(move |p| (option, p))
                });
                for (option, path) in kept {
                    if same_file(&path, stats) {
                        bail!(
                            "--stats {} is the file {option} writes ({}); refusing to overwrite it",
                            stats.display(),
                            path.display()
                        );
                    }
                }
            }
            _ => {}
        }
        let stats_path = match &stats {
            Some(Destination::File(path)) => Some(path.as_path()),
            _ => None,
        };
        check_no_clobber(&cli, &file_outputs, stats_path, &input_files)?;

        let mut headers = HeaderMap::new();
        let mut user_agent = cli.fetch.user_agent.clone();
        for h in &cli.fetch.headers {
            let (name, value) = parse_header(h)?;
            if name == USER_AGENT {
                // --user-agent, when also given, is the more specific wish.
                if user_agent.is_none() {
                    user_agent = Some(value.to_str().unwrap_or_default().to_owned());
                }
                continue;
            }
            headers.append(name, value);
        }
        let user_agent = user_agent.unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned());
        HeaderValue::from_str(&user_agent)
            .with_context(|| format!("invalid --user-agent {user_agent:?}"))?;

        let proxy = match cli.fetch.proxy.as_deref() {
            Some(p) => match crate::proxy::parse(p) {
                Ok(url) => Some(url),
                Err(why) => bail!("invalid --proxy {:?}: {why}", crate::proxy::shown(p.trim())),
            },
            None => None,
        };
        let proxies = crate::proxy::Proxies::new(proxy)?;

        let (format, layout, inline_text) = outputs_layout(&cli, &output, pages.as_ref())?;
        if format == crate::output::Format::Parquet {
            parquet_refusals(&cli.outputs, &output, pages.as_ref())?;
        }
        if cli.outputs.spreadsheet_safe && format != crate::output::Format::Csv {
            // The escape changes values; JSON Lines and Parquet values are
            // never run as formulas, so it would only corrupt them.
            bail!("--spreadsheet-safe applies to CSV only: drop it, or use --format csv");
        }

        let crawl = crawl_settings(&cli)?;
        if crawl.is_some() {
            // Name what the user gave: --max-pages alone caps a list.
            let given = crawl_options_given(&cli);
            let left = match &pages {
                Some(Destination::File(path)) => {
                    crate::output::staged_part(path).is_ok_and(|p| p.is_some_and(|p| p.exists()))
                }
                _ => false,
            };
            if cli.outputs.resume && left {
                // Not an error, so that a cron line can always carry
                // --resume; what an interrupted run left is replaced.
                tracing::warn!(
                    "warning: --resume cannot continue a run with {given} (the pages found or \
                     counted so far are not recorded): starting a new run"
                );
            }
            if cli.outputs.ordered {
                bail!(
                    "--ordered cannot be used with {given}: such a run writes pages as they \
                     complete"
                );
            }
        }
        // Crawls obey robots.txt unless told not to; lists only when asked.
        if cli.fetch.random_delay && cli.fetch.delay.is_zero() && cli.fetch.rate.is_none() {
            bail!("--random-delay varies --delay or --rate: give one of them too (--delay 1s)");
        }
        let robots = cli.fetch.robots || (cli.fetch.depth > 0 && !cli.fetch.no_robots);
        let (cookies, jar) = cookie_jar(&cli)?;
        let render = render_settings(&cli, inline_text, &proxies)?;

        Ok(Config {
            sources,
            output,
            pages,
            concurrency: cli.fetch.concurrency,
            per_host: cli.fetch.per_host,
            robots,
            delay: cli.fetch.delay,
            rate: cli.fetch.rate,
            random_delay: cli.fetch.random_delay,
            fetch: FetchSettings {
                timeout: cli.fetch.timeout,
                connect_timeout: cli.fetch.connect_timeout,
                max_body: cli.fetch.max_body,
                max_redirects: cli.fetch.max_redirects,
                user_agent,
                headers,
                proxies,
                insecure: cli.fetch.insecure,
                retries: cli.fetch.retries,
                max_retry_wait: cli.fetch.max_retry_wait,
                pool_per_host: cli.fetch.concurrency.get(),
                user: cli.fetch.user.clone(),
                cookies,
                jar,
            },
            inline_text,
            fetch_scripts: cli.fetch.fetch_scripts.then_some(cli.fetch.max_script_body),
            max_scripts_per_page: cli.fetch.max_scripts_per_page.get(),
            detect_utf8: cli.fetch.detect_utf8,
            quiet: cli.log.quiet,
            grace: cli.fetch.grace,
            wait_lock: cli.outputs.wait_lock,
            max_failures: cli.outputs.max_failures,
            resume: cli.outputs.resume && crawl.is_none(),
            stats,
            encoding: crate::output::Encoding {
                format,
                spreadsheet_safe: cli.outputs.spreadsheet_safe,
            },
            layout,
            ordered: cli.outputs.ordered,
            crawl,
            shard: cli.shard,
            job: None,
            render,
        })
    }
}

/// The most pages `--render-concurrency` loads at once: each takes a
/// renderer process of tens of megabytes or more.
const MAX_RENDER_CONCURRENCY: usize = 4096;

/// `--render`'s settings, with the browser found; `None` without it.
fn render_settings(
    cli: &Cli,
    inline_text: bool,
    proxies: &crate::proxy::Proxies,
) -> anyhow::Result<Option<crate::render::Settings>> {
    let r = &cli.render;
    if !r.render {
        // The other options only tune --render: a configuration file or
        // the environment may set them for the runs that render.
        return Ok(None);
    }
    if r.render_idle >= r.render_timeout {
        bail!(
            "--render-idle ({} ms) must be shorter than --render-timeout ({} s): no page could \
             ever be quiet that long before its time is up",
            r.render_idle.as_millis(),
            r.render_timeout.as_secs_f64()
        );
    }
    if cli.fetch.fetch_scripts {
        bail!(
            "--fetch-scripts cannot be used with --render, which fills the content columns \
             with the code the browser ran"
        );
    }
    let executable = crate::render::browser::find(r.browser.as_deref())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Some(crate::render::Settings {
        executable,
        // Far more pages than any machine could hold in a browser at once.
        concurrency: r
            .render_concurrency
            .map_or(cores, |n| n.get())
            .min(MAX_RENDER_CONCURRENCY),
        limits: crate::render::Limits {
            idle: r.render_idle,
            timeout: r.render_timeout,
            memory: r.render_memory << 20,
            keep_text: inline_text,
        },
        proxy: proxies.for_browser(),
        user_agent: cli.fetch.user_agent.clone(),
        insecure: cli.fetch.insecure,
    }))
}

/// The outputs' format, columns and compression, and whether inline
/// text is kept: from the options, and from what the output files' names
/// say where an option is not given (`-o scripts.jsonl.zst`).
fn outputs_layout(
    cli: &Cli,
    output: &Destination,
    pages: Option<&Destination>,
) -> anyhow::Result<(crate::output::Format, crate::output::Layout, bool)> {
    use crate::output::{Compression, Fields, Format, Layout, PAGE_COLUMNS, script_columns};
    let file = |dest: Option<&Destination>| match dest {
        Some(Destination::File(path)) => Some(path.clone()),
        _ => None,
    };
    let files = [("-o", file(Some(output))), ("--pages", file(pages))];
    // The format: --format, else what -o's name says, else CSV; a name
    // that says another format than the outputs get is refused, rather
    // than a .parquet file holding CSV.
    let said = |(option, path): &(&'static str, Option<PathBuf>)| -> anyhow::Result<_> {
        let Some(path) = path.as_deref() else {
            return Ok(None);
        };
        let format = format_of_name(path, cli.outputs.format.is_some())
            .map_err(|why| anyhow::anyhow!("{option} {}: {why}", path.display()))?;
        Ok(format.map(|f| (*option, path.to_path_buf(), f)))
    };
    let said = [said(&files[0])?, said(&files[1])?];
    let format = cli
        .outputs
        .format
        .or(said[0].as_ref().map(|s| s.2))
        .or(said[1]
            .as_ref()
            .map(|s| s.2)
            .filter(|_| files[0].1.is_some()))
        .unwrap_or(Format::Csv);
    for (option, path, named) in said.iter().flatten() {
        if *named == format {
            continue;
        }
        let (named, asked, path) = (named.as_str(), format.as_str(), path.display());
        if cli.outputs.format.is_some() {
            bail!(
                "{option} {path} names {named}, and --format asks for {asked}: rename it, or \
                 give --format {named}"
            );
        }
        match &said[0] {
            Some((o, p, _)) => bail!(
                "{o} {} and {option} {path} name different formats, and both outputs have one: \
                 give --format, or rename one",
                p.display()
            ),
            None => bail!(
                "{option} {path} names {named}, and the scripts go to standard output as \
                 {asked}: give --format {named}, or -o FILE"
            ),
        }
    }
    let named_compressed = files
        .iter()
        .any(|(_, p)| p.as_deref().and_then(Compression::of_name).is_some());
    let asked = cli.outputs.compress.is_some_and(|c| c != Compression::None);
    if format == Format::Parquet && (asked || named_compressed) {
        bail!(
            "Parquet is compressed within (zstd, column by column): drop --compress, and name \
             the files .parquet"
        );
    }
    let compression = |path: Option<&Path>, option: &str| -> anyhow::Result<Compression> {
        match (path.and_then(Compression::of_name), cli.outputs.compress) {
            (Some(named), Some(asked)) if named != asked => bail!(
                "{option} {} names {} compression, and --compress asks for {}",
                path.map(Path::display)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                named.as_str(),
                asked.as_str()
            ),
            (Some(named), _) => Ok(named),
            // A file named without .gz or .zst is not compressed behind
            // its name's back.
            (None, Some(asked)) if asked != Compression::None && path.is_some() => bail!(
                "{option} {} names no compression, and --compress asks for {}: name it \
                 {}.{} (--compress is for standard output)",
                path.map(Path::display)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                asked.as_str(),
                path.map(Path::display)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                if asked == Compression::Gzip {
                    "gz"
                } else {
                    "zst"
                }
            ),
            (None, asked) => Ok(asked.unwrap_or_default()),
        }
    };
    let compression = [
        compression(files[0].1.as_deref(), "-o")?,
        compression(files[1].1.as_deref(), "--pages")?,
    ];
    let to_terminal = |dest: Option<&Destination>, c: Compression| {
        c != Compression::None
            && dest == Some(&Destination::Stdout)
            && std::io::stdout().is_terminal()
    };
    if to_terminal(Some(output), compression[0]) || to_terminal(pages, compression[1]) {
        bail!("compressed output is not written to a terminal: give -o FILE, or pipe it (| zcat)");
    }
    let inline_text = cli.fetch.inline_text
        || cli
            .outputs
            .fields
            .as_ref()
            .is_some_and(|f| f.contains("inline_text"));
    let script_fields = match &cli.outputs.fields {
        Some(fields) if cli.fetch.inline_text && !fields.contains("inline_text") => bail!(
            "--inline-text writes the inline_text column, which --fields leaves out: add it \
             to --fields, or drop --inline-text"
        ),
        Some(fields) => fields.clone(),
        None => Fields::of(script_columns(inline_text)),
    };
    if cli.outputs.page_fields.is_some() && pages.is_none() {
        bail!("--page-fields chooses the page report's columns: give --pages FILE too");
    }
    let page_fields = cli
        .outputs
        .page_fields
        .clone()
        .unwrap_or_else(|| Fields::of(&PAGE_COLUMNS));
    if cli.outputs.resume {
        // --resume matches the scripts rows to the report's rows, page by
        // page, and tries transient failures again.
        let scripts_missing = script_fields.missing(&["page_url"]);
        let pages_missing = page_fields.missing(&["page_url", "status", "error", "scripts"]);
        if !scripts_missing.is_empty() || !pages_missing.is_empty() {
            let mut missing = Vec::new();
            if !scripts_missing.is_empty() {
                missing.push(format!("--fields lacks {}", scripts_missing.join(",")));
            }
            if !pages_missing.is_empty() {
                missing.push(format!("--page-fields lacks {}", pages_missing.join(",")));
            }
            bail!(
                "--resume reads back the outputs, and {}: add them, or drop --resume",
                missing.join(" and ")
            );
        }
    }
    let layout = Layout {
        script_fields,
        page_fields,
        compression,
        rendered: cli.render.render,
    };
    Ok((format, layout, inline_text))
}

/// The format a file name says: `.csv`, `.jsonl` (or `.ndjson`), under a
/// `.gz` or `.zst`, or `.parquet`; `None` for a name that says none. A
/// compression scriptscrape does not write (`.xz`, `.bz2`…) is an error,
/// and so is `.json` unless the format is `given` (JSON Lines are not one
/// JSON document).
fn format_of_name(path: &Path, given: bool) -> Result<Option<crate::output::Format>, String> {
    use crate::output::{Compression, Format};
    let extension = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
    };
    let path = match Compression::of_name(path) {
        Some(_) => Path::new(path.file_stem().unwrap_or_default()),
        None => path,
    };
    Ok(match extension(path).as_deref() {
        Some("csv") => Some(Format::Csv),
        Some("jsonl" | "ndjson") => Some(Format::Jsonl),
        Some("parquet") => Some(Format::Parquet),
        Some(
            other @ ("xz" | "bz2" | "lz4" | "br" | "lzma" | "zip" | "7z" | "z" | "gzip" | "zstd"
            | "tgz"),
        ) => {
            return Err(format!(
                "scriptscrape does not write .{other} files: name it .gz or .zst"
            ));
        }
        Some("json") if !given => {
            return Err(
                "JSON Lines files are named .jsonl (one object per line, not one JSON \
                 document): rename it, or give --format"
                    .to_owned(),
            );
        }
        _ => None,
    })
}

/// `-b`'s cookies (NAME=VALUE), and the jar when `-b FILE` or
/// `--cookie-jar` asks for one (the files read now, so that a bad one
/// stops the run before it starts).
fn cookie_jar(
    cli: &Cli,
) -> anyhow::Result<(Vec<String>, Option<std::sync::Arc<crate::fetch::jar::Jar>>)> {
    // As curl: an argument with '=' is a cookie, one without a file.
    let (cookies, files): (Vec<String>, Vec<String>) = cli
        .fetch
        .cookies
        .iter()
        .cloned()
        .partition(|c| c.contains('='));
    if files.is_empty() && cli.fetch.cookie_jar.is_none() {
        return Ok((cookies, None));
    }
    if let Some(path) = &cli.fetch.cookie_jar {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            bail!(
                "cannot write --cookie-jar {}: the directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
        if path.is_dir() {
            bail!("--cookie-jar {} is a directory", path.display());
        }
    }
    let files: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
    let jar = crate::fetch::jar::Jar::new(&files, &cookies, cli.fetch.cookie_jar.clone())?;
    Ok((cookies, Some(std::sync::Arc::new(jar))))
}

/// What `--format parquet` cannot do: be continued by `--resume` (a
/// Parquet file is readable only once its footer is written, at the end,
/// and a killed run leaves none), or go to a terminal.
fn parquet_refusals(
    outputs: &crate::cli::OutputArgs,
    output: &Destination,
    pages: Option<&Destination>,
) -> anyhow::Result<()> {
    if outputs.resume {
        bail!(
            "--resume cannot continue --format parquet: a Parquet file can be read only once it \
             is complete, and a killed run leaves it without its footer; for a run you may need \
             to resume, write --format jsonl and convert it when done (README: Exporting to a \
             warehouse)"
        );
    }
    let to_stdout = *output == Destination::Stdout || pages == Some(&Destination::Stdout);
    if to_stdout && std::io::stdout().is_terminal() {
        bail!(
            "--format parquet is binary output, which can mess up your terminal: write it to a \
             file (-o FILE, --pages FILE) or pipe it"
        );
    }
    Ok(())
}

/// The URL lists a scrape reads: its INPUTs, or standard input when there
/// are none and it is not a terminal (nothing when sitemaps are the input).
fn sources(cli: &Cli, stdin_is_terminal: bool) -> anyhow::Result<Vec<Source>> {
    let sitemap_urls = cli.fetch.sitemaps.iter().any(|s| s != "auto");
    let sources: Vec<Source> = if cli.inputs.is_empty() {
        if sitemap_urls {
            // The sitemaps are the input. A list piped in as well would
            // be lost without a word: say how to have it read.
            if stdin_holds_data() {
                tracing::warn!(
                    "warning: standard input is not read when --sitemap gives the URLs and \
                         no INPUT is named: add - to read it too"
                );
            }
            Vec::new()
        } else if stdin_is_terminal {
            bail!(
                "no input: name a file of URLs (one per line), or pipe URLs to standard input; see --help"
            );
        } else {
            vec![Source::Stdin]
        }
    } else {
        cli.inputs.iter().map(|i| Source::from_arg(i)).collect()
    };
    Ok(sources)
}

/// The values clap gives a group of options none of which is on the
/// command line: their defaults, from the one place they are declared.
/// The environment is not read: its variables are for the command that
/// takes these options.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command =
        T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None::<&str>));
    // Every option of these groups has a default or is optional, so an
    // empty command line, without the environment, parses.
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("an empty command line parses");
    T::from_arg_matches(&matches).expect("an empty command line parses")
}

/// The crawl settings, when the command line asks for crawl mode.
fn crawl_settings(cli: &Cli) -> anyhow::Result<Option<crate::crawl::Crawl>> {
    if cli.fetch.depth == 0 {
        let needs_depth = [
            (cli.fetch.scope.is_some(), "--scope"),
            (!cli.fetch.include.is_empty(), "--include"),
            (!cli.fetch.exclude.is_empty(), "--exclude"),
            (cli.fetch.follow_nofollow, "--follow-nofollow"),
            (
                cli.fetch.allow_private && cli.fetch.sitemaps.is_empty(),
                "--allow-private",
            ),
        ];
        if let Some((_, flag)) = needs_depth.iter().find(|(given, _)| *given) {
            bail!("{flag} applies to the links a crawl follows: add --depth N (1 or more)");
        }
        if cli.fetch.max_pages.is_none()
            && cli.fetch.strip_query.is_empty()
            && cli.fetch.sitemaps.is_empty()
        {
            return Ok(None);
        }
    }
    let mut sitemaps = Vec::new();
    let mut sitemap_auto = false;
    for s in &cli.fetch.sitemaps {
        if s == "auto" {
            sitemap_auto = true;
            continue;
        }
        let url = sitemap_url(s).with_context(|| {
            format!(
                "invalid --sitemap {:?}: expected an http(s) URL or auto",
                crate::output::without_password(s)
            )
        })?;
        sitemaps.push(url);
    }
    if sitemap_auto && cli.inputs.is_empty() && !sitemaps.is_empty() {
        bail!("--sitemap auto reads the sitemaps of the listed URLs' hosts: name an INPUT too");
    }
    // A sitemap lists pages of its own host only, so it is read by the
    // shard of its site, as its pages are fetched there.
    if let Some(shard) = cli.shard {
        sitemaps.retain(|url| shard.keeps(url));
    }
    let regexes = |patterns: &[String], flag: &str| -> anyhow::Result<Vec<regex::Regex>> {
        patterns.iter().map(|p| compile_regex(flag, p)).collect()
    };
    Ok(Some(crate::crawl::Crawl {
        max_depth: cli.fetch.depth,
        scope: cli.fetch.scope.unwrap_or_default(),
        include: regexes(&cli.fetch.include, "--include")?,
        exclude: regexes(&cli.fetch.exclude, "--exclude")?,
        strip_query: cli
            .fetch
            .strip_query
            .iter()
            .map(|g| crate::crawl::normalize::Glob::new(g))
            .collect(),
        follow_nofollow: cli.fetch.follow_nofollow,
        allow_private: cli.fetch.allow_private,
        max_pages: cli.fetch.max_pages.map(std::num::NonZeroU64::get),
        sitemaps,
        sitemap_auto,
        frontier_memory: cli.fetch.frontier_memory.get(),
        shard: cli.shard,
    }))
}

/// Whether two paths name the same regular file: the same inode when both
/// exist (`./a.csv` and `a.csv`, links), else the same canonical directory
/// and name.
/// The files the run reads, with their names for messages: standard
/// input too when it is a regular file (`< list.txt`), which an output of
/// the same name would otherwise empty before it is read.
fn input_files(sources: &[Source]) -> Vec<(PathBuf, String)> {
    sources
        .iter()
        .filter_map(|s| match s {
            Source::File(p) => Some((p.clone(), p.display().to_string())),
            Source::Stdin => {
                let stdin = Path::new("/dev/stdin");
                std::fs::metadata(stdin)
                    .is_ok_and(|m| m.is_file())
                    .then(|| (stdin.to_path_buf(), "standard input".to_owned()))
            }
        })
        .collect()
}

/// The files a run keeps beside an output's `.part`: the `.part.run`
/// `--resume` reads, the lock, and the `.part` itself.
fn kept_beside(part: PathBuf) -> [PathBuf; 3] {
    [
        crate::run::resume::RunId::path(&part),
        crate::run::lock::lock_path(&part),
        part,
    ]
}

/// Refuses a run that would write over a file it reads (a list, a `-b`
/// cookie file, the configuration file) or write two things to one file,
/// counting the files kept beside each output (`.part`, `.part.run`,
/// `.lock`) and symlinks, dangling ones included, by where they lead. The
/// checks of inputs against -o, --pages and --stats are made before.
fn check_no_clobber(
    cli: &Cli,
    file_outputs: &[(&str, &Path)],
    stats: Option<&Path>,
    inputs: &[(PathBuf, String)],
) -> anyhow::Result<()> {
    let cookie_files: Vec<&str> = cli
        .fetch
        .cookies
        .iter()
        .filter(|c| !c.contains('='))
        .map(String::as_str)
        .collect();
    let mut read: Vec<(String, PathBuf)> = inputs
        .iter()
        .map(|(path, name)| (format!("an input ({name})"), path.clone()))
        .collect();
    read.extend(
        cookie_files
            .iter()
            .map(|f| (format!("the cookie file of -b {f}"), PathBuf::from(f))),
    );
    let env = |k: &str| std::env::var_os(k);
    let config_file = match (&cli.settings.config, cli.settings.no_config) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => None,
        (None, false) => match std::env::var_os("SCRIPTSCRAPE_CONFIG") {
            Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
            Some(_) => None,
            None => crate::config_file::default_path(&env).filter(|p| p.exists()),
        },
    };
    read.extend(config_file.map(|p| ("the configuration file".to_owned(), p)));

    let mut written: Vec<(String, PathBuf)> = Vec::new();
    for &(option, path) in file_outputs {
        written.push((format!("{option} {}", path.display()), path.to_path_buf()));
        if let Some(part) = crate::output::staged_part(path)? {
            let what = format!("{option} {} (its {{}})", path.display());
            for beside in kept_beside(part) {
                let name = beside
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                written.push((what.replace("{}", &name), beside));
            }
        }
    }
    if let Some(stats) = stats {
        written.push((format!("--stats {}", stats.display()), stats.to_path_buf()));
    }
    let jar = cli.fetch.cookie_jar.as_deref();
    if let Some(jar) = jar {
        written.push((format!("--cookie-jar {}", jar.display()), jar.to_path_buf()));
    }
    let same = |a: &Path, b: &Path| {
        same_file(a, b) || same_file(&crate::output::real_path(a), &crate::output::real_path(b))
    };
    for (what, path) in &written {
        for (source, read) in &read {
            // curl's way to carry a session on: -b jar.txt --cookie-jar
            // jar.txt reads the jar, then writes it back.
            let jar_rewrites_itself =
                Some(path.as_path()) == jar && source.starts_with("the cookie file of -b");
            if !jar_rewrites_itself && same(path, read) {
                bail!("{what} is also {source}; refusing to overwrite it");
            }
        }
    }
    // Standard output reached by a name (-o /dev/stdout, a FIFO the shell
    // gave it) is standard output: one stream for two outputs interleaves
    // their rows, or renames a file from under the other.
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        let stdout = std::fs::metadata("/dev/stdout")
            .ok()
            .filter(|m| !m.file_type().is_char_device() && !m.file_type().is_block_device());
        let is_stdout = |path: &Path| {
            stdout.as_ref().is_some_and(|out| {
                std::fs::metadata(path).is_ok_and(|m| m.dev() == out.dev() && m.ino() == out.ino())
            })
        };
        let named: Vec<&str> = [("-o", &cli.outputs.output), ("--pages", &cli.outputs.pages)]
            .into_iter()
            .filter_map(|(option, dest)| dest.as_deref().filter(|d| *d == "-").map(|_| option))
            .chain(
                stats.is_none().then_some(()).and(
                    cli.outputs
                        .stats
                        .as_deref()
                        .filter(|s| s.as_os_str() == "-")
                        .map(|_| "--stats"),
                ),
            )
            .chain(cli.outputs.output.is_none().then_some("-o"))
            .collect();
        for (what, path) in &written {
            if let Some(other) = named.first().filter(|_| is_stdout(path)) {
                bail!(
                    "{what} is standard output, where {other} writes too; give each its own file"
                );
            }
        }
    }
    for (i, (a, pa)) in written.iter().enumerate() {
        for (b, pb) in &written[i + 1..] {
            let (oa, ob) = (a.split(' ').next(), b.split(' ').next());
            if oa != ob && same(pa, pb) {
                bail!("{a} and {b} are the same file; give each its own");
            }
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            // Two writers on one device (/dev/null, a terminal) do not
            // clobber a file; on one FIFO their rows would interleave.
            use std::os::unix::fs::FileTypeExt as _;
            let kind = ma.file_type();
            let shared = kind.is_file() || kind.is_fifo() || kind.is_socket();
            return shared && ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    let canonical = |p: &Path| -> Option<PathBuf> {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(p.file_name()?))
    };
    match (canonical(a), canonical(b)) {
        (Some(ca), Some(cb)) => ca == cb,
        _ => a == b,
    }
}

/// Checks option `id`'s `value` as the run would once the command line is
/// read, for a value from the configuration file, whose error then names
/// the file, line and key: what clap's parser of the option lets through
/// but [`Config`] refuses. Never shows a secret.
pub fn check_value(id: &str, value: &str) -> Result<(), String> {
    match id {
        "headers" => parse_header(value)
            .map(|_| ())
            .map_err(|e| format!("{e:#}")),
        "user_agent" => HeaderValue::from_str(value)
            .map(|_| ())
            .map_err(|_| "control characters and line breaks are not allowed".to_owned()),
        "proxy" => crate::proxy::parse(value).map(|_| ()),
        "sitemaps" if value != "auto" => sitemap_url(value)
            .map(|_| ())
            .ok_or_else(|| "expected an http(s) URL or auto".to_owned()),
        // -b FILE: read as the run would read it.
        "cookies" if !value.contains('=') => {
            crate::fetch::jar::Jar::new(&[PathBuf::from(value)], &[], None)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "cookie_jar" | "stats" if value != "-" => match missing_dir(Path::new(value)) {
            Some(dir) => Err(format!("the directory {} does not exist", dir.display())),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The directory `path` would be written in, when it does not exist.
fn missing_dir(path: &Path) -> Option<&Path> {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
}

/// A `--sitemap` URL: http(s), with a host.
fn sitemap_url(s: &str) -> Option<url::Url> {
    url::Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Parses `-H 'Name: value'`.
pub(crate) fn parse_header(h: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    if h.trim().is_empty() {
        // -H and SCRIPTSCRAPE_HEADER take one header a line: a value that
        // ends with a line break leaves an empty one.
        bail!("an empty header (a line break at the end of a -H value?): expected 'Name: value'");
    }
    let Some((name, value)) = h.split_once(':') else {
        // The value is not echoed, and without a colon where it starts is
        // unknown: of "Name value" the first word is shown, of a single
        // word (as likely a pasted token as a name) nothing.
        let mut words = h.split_whitespace();
        match (words.next(), words.next()) {
            (Some(first), Some(_)) => bail!(
                "invalid header {:?}: no colon (expected 'Name: value')",
                format!("{} …", crate::output::one_line(first))
            ),
            _ => bail!("invalid header: no colon (expected 'Name: value')"),
        }
    };
    // A name that is no header name ("Authorization Basic user:pass") is
    // shown as a header without a colon is: its first word at most, as
    // what follows may be a credential.
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        let first = name.split_whitespace().next().unwrap_or_default();
        if name.trim().contains(char::is_whitespace) {
            anyhow::anyhow!(
                "invalid header {:?}: not 'Name: value'",
                format!("{} …", crate::output::one_line(first))
            )
        } else {
            anyhow::anyhow!(
                "invalid header name {:?} (expected 'Name: value')",
                crate::output::one_line(name.trim())
            )
        }
    })?;
    // These say how the message is framed or how the connection is used,
    // which the HTTP client decides; a GET carrying a Content-Length it
    // does not have would corrupt a kept-alive connection.
    const FRAMING: [&str; 8] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
    ];
    if FRAMING.contains(&name.as_str()) {
        bail!(
            "header {} cannot be set with -H: the HTTP client decides it",
            name.as_str()
        );
    }
    // The value is not echoed: it may be a token or a cookie.
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        anyhow::anyhow!(
            "invalid value for header {}: control characters and line breaks are not allowed",
            name.as_str()
        )
    })?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn config(args: &[&str], terminal: bool) -> anyhow::Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("scriptscrape").chain(args.iter().copied()))?;
        Config::from_cli_with_stdin(cli, terminal)
    }

    fn work_args(args: &[&str]) -> crate::cli::WorkArgs {
        let cli = Cli::try_parse_from(
            [
                "scriptscrape",
                "work",
                "--redis",
                "redis://x/",
                "--job",
                "j",
            ]
            .into_iter()
            .chain(args.iter().copied()),
        )
        .unwrap();
        match cli.command {
            Some(crate::cli::Command::Work(args)) => args,
            other => panic!("not work: {other:?}"),
        }
    }

    #[test]
    fn a_worker_takes_a_scrapes_fetch_options_and_refuses_a_local_runs() {
        let args = work_args(&["-c", "7", "--depth", "2", "--per-host", "3"]);
        let c = Config::for_work(args.fetch, args.log).unwrap();
        assert_eq!((c.concurrency.get(), c.per_host.get()), (7, 3));
        assert_eq!(c.crawl.as_ref().map(|c| c.max_depth), Some(2));
        assert!(c.sources.is_empty() && c.pages.is_none() && !c.resume);
        for (flag, value) in [
            ("--max-pages", "10"),
            ("--sitemap", "http://x/s.xml"),
            ("--frontier-memory", "5"),
        ] {
            let args = work_args(&["--depth", "1", flag, value]);
            let err = Config::for_work(args.fetch, args.log)
                .unwrap_err()
                .to_string();
            assert!(err.contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn group_defaults_are_the_ones_clap_declares() {
        let fetch = defaults::<crate::cli::FetchArgs>();
        assert_eq!(fetch.concurrency.get(), 64);
        assert_eq!(fetch.per_host.get(), 8);
        let outputs = defaults::<crate::cli::OutputArgs>();
        assert!(outputs.output.is_none() && !outputs.resume);
        assert_eq!(outputs.format, None);
    }

    #[test]
    fn stdin_when_no_input_and_piped() {
        assert_eq!(config(&[], false).unwrap().sources, [Source::Stdin]);
        let err = config(&[], true).unwrap_err().to_string();
        assert!(err.starts_with("no input"), "{err}");
        assert_eq!(
            config(&["a.txt", "-"], true).unwrap().sources,
            [Source::File("a.txt".into()), Source::Stdin]
        );
    }

    #[test]
    fn headers_and_user_agent() {
        let c = config(
            &["x", "-H", "X-Token: abc", "-H", "user-agent: bot/1"],
            true,
        )
        .unwrap();
        assert_eq!(c.fetch.headers["x-token"], "abc");
        assert_eq!(c.fetch.user_agent, "bot/1");
        assert!(!c.fetch.headers.contains_key(USER_AGENT));
        let c = config(
            &["x", "--user-agent", "mine", "-H", "User-Agent: other"],
            true,
        )
        .unwrap();
        assert_eq!(c.fetch.user_agent, "mine");
        assert!(config(&["x", "-H", "no colon"], true).is_err());
        assert!(config(&["x", "-H", "bad name: v"], true).is_err());
    }

    #[test]
    fn outputs_must_differ_from_each_other_and_inputs() {
        assert!(config(&["x", "--pages", "-"], true).is_err());
        assert!(config(&["x", "-o", "a.csv", "--pages", "a.csv"], true).is_err());
        assert!(config(&["x", "-o", "x"], true).is_err());
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("urls.txt");
        std::fs::write(&input, "a.test\n").unwrap();
        let dotted = dir.path().join(".").join("urls.txt");
        let err = config(
            &[input.to_str().unwrap(), "-o", dotted.to_str().unwrap()],
            true,
        );
        assert!(err.unwrap_err().to_string().contains("is also an input"));
        let a = dir.path().join("a.csv");
        let a2 = dir.path().join("sub/../a.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let args = [
            "x",
            "-o",
            a.to_str().unwrap(),
            "--pages",
            a2.to_str().unwrap(),
        ];
        assert!(
            config(&args, true)
                .unwrap_err()
                .to_string()
                .contains("same file")
        );
        assert!(config(&["x", "-o", "a.csv", "--pages", "-"], true).is_ok());
    }
}
