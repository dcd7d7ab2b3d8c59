//! The command line, exactly as the user types it: raw flags, no policy.
//!
//! [`crate::config::Config::from_cli`] validates these into the settings the
//! stages use; nothing else in the crate sees clap types.

use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Parser;

/// The exit statuses, for --help and the man page's EXIT STATUS section.
const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "every page was fetched and parsed (or no more failed than --max-failures)",
    ),
    (
        "1",
        "the run completed, but some pages failed (see --pages)",
    ),
    (
        "2",
        "the run could not run: bad arguments, unreadable input, unwritable output",
    ),
    (
        "75",
        "another run holds the outputs' lock (see --wait-lock)",
    ),
    (
        "130",
        "stopped by SIGINT (file outputs left as FILE.part; see --resume)",
    ),
    ("143", "stopped by SIGTERM (likewise)"),
];

const EXAMPLES: &str = "  $ printf 'example.com\\nhttps://www.wikipedia.org/\\n' > urls.txt
  $ scriptscrape urls.txt -o scripts.csv --pages pages.csv -c 32 --timeout 20
  $ head -3 scripts.csv            # header, then one row per <script>
  $ cat big-list.txt | scriptscrape --pages pages.csv > scripts.csv
  $ scriptscrape seeds.txt --depth 2 --max-pages 1000 -o scripts.csv   # crawl a site";

/// The end of --help: exit statuses, then examples.
fn after_help(exit_status: &[(&str, &str)], examples: &str) -> String {
    let mut text = String::from("Exit status:\n");
    for (code, meaning) in exit_status {
        text.push_str(&format!("  {code:<4} {meaning}\n"));
    }
    text.push_str("\nExample:\n");
    text.push_str(examples);
    text
}

/// Fetch web pages concurrently and list every <script> element as CSV.
///
/// URLs are read one per line from the INPUT files (or standard input);
/// blank lines and lines starting with '#' are skipped, and a bare host such
/// as 'example.com' means 'https://example.com/'. Each page's scripts are
/// written as soon as it completes, so rows follow completion order.
#[derive(Debug, Parser)]
#[command(
    name = "scriptscrape",
    version,
    about,
    long_about,
    after_help = after_help(EXIT_STATUS, EXAMPLES),
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    subcommand_value_name = "COMMAND"
)]
pub struct Cli {
    /// Another command instead of a scrape.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Files of URLs, one per line; '-' reads standard input, as does no
    /// INPUT when standard input is not a terminal.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Where the results go, and how a run ends.
    #[command(flatten)]
    pub outputs: OutputArgs,

    /// How pages are fetched, crawled and parsed.
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// Loading pages in a browser (--render).
    #[command(flatten)]
    pub render: RenderArgs,

    /// What is said on standard error.
    #[command(flatten)]
    pub log: LogArgs,

    /// Do shard K of N of the job (K from 1 to N, as in 2/3): only the
    /// URLs whose site (registrable domain, or IP address) hashes to K, so
    /// that N machines given the same inputs share the work without
    /// overlap; a crawl passes over links to other shards' sites. Invalid
    /// lines are reported by shard 1.
    #[arg(
        env = "SCRIPTSCRAPE_SHARD",
        long,
        value_name = "K/N",
        allow_hyphen_values = true
    )]
    pub shard: Option<crate::shard::Shard>,

    /// Print a man page or a shell completion script to standard output
    /// and exit (other options are ignored).
    #[arg(long, value_name = "KIND", value_enum)]
    pub generate: Option<Generate>,

    /// Which configuration file is read, and --print-config.
    #[command(flatten)]
    pub settings: ConfigArgs,
}

/// The configuration file's options: given to every command.
#[derive(Debug, Default, clap::Args)]
pub struct ConfigArgs {
    /// Read option defaults from this TOML file (keys are long option
    /// names: concurrency = 16, user-agent = "..."), instead of
    /// SCRIPTSCRAPE_CONFIG's file or
    /// $XDG_CONFIG_HOME/scriptscrape/config.toml (read when present).
    /// Command-line options, then SCRIPTSCRAPE_* variables, win over it.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Configuration"
    )]
    pub config: Option<std::path::PathBuf>,

    /// Read no configuration file, not even SCRIPTSCRAPE_CONFIG's or the
    /// default one.
    #[arg(
        long,
        global = true,
        conflicts_with = "config",
        help_heading = "Configuration"
    )]
    pub no_config: bool,

    /// Print the settings this command would run with, each with where it
    /// comes from (flag, env, file:line, default), secrets masked, and exit
    /// without fetching.
    #[arg(long, global = true, help_heading = "Configuration")]
    pub print_config: bool,
}

/// The options of a run's outputs: shared by a scrape and `collect`.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Write the scripts CSV to FILE instead of standard output.
    #[arg(env = "SCRIPTSCRAPE_OUTPUT", short = 'o', long, value_name = "FILE")]
    pub output: Option<String>,

    /// Write the page report to FILE: one row per distinct input line,
    /// with status, error kind and script count.
    #[arg(env = "SCRIPTSCRAPE_PAGES", long, value_name = "FILE")]
    pub pages: Option<String>,

    /// Output format of both outputs: csv, jsonl (JSON Lines: one
    /// object per row, same fields, typed values, null for absent), or
    /// parquet (typed columns, zstd; not with --resume or collect).
    /// Default: what -o's name says (x.jsonl, x.csv.gz, x.parquet), else
    /// --pages's when -o is a file, else csv.
    #[arg(env = "SCRIPTSCRAPE_FORMAT", long, value_name = "FORMAT", value_enum)]
    pub format: Option<crate::output::Format>,

    /// The scripts output's columns, in the order given: a comma-separated
    /// list of column names (README, "Choosing the columns"); default all.
    #[arg(
        env = "SCRIPTSCRAPE_FIELDS",
        long,
        value_name = "LIST",
        value_parser = crate::output::fields::parse_script_fields
    )]
    pub fields: Option<crate::output::Fields>,

    /// The page report's columns, in the order given (as --fields).
    #[arg(
        env = "SCRIPTSCRAPE_PAGE_FIELDS",
        long,
        value_name = "LIST",
        value_parser = crate::output::fields::parse_page_fields
    )]
    pub page_fields: Option<crate::output::Fields>,

    /// Compress the outputs: gzip or zstd (each page its own member, so a
    /// killed run's file is valid up to its last page). Files named .gz or
    /// .zst are compressed so without it; for standard output, give it.
    #[arg(env = "SCRIPTSCRAPE_COMPRESS", long, value_name = "KIND", value_enum)]
    pub compress: Option<crate::output::Compression>,

    /// Write pages in input order instead of completion order, through a
    /// bounded reorder buffer (4 pages per -c slot): a slow page holds the
    /// output back, and fetching goes on within that window.
    #[arg(env = "SCRIPTSCRAPE_ORDERED", long)]
    pub ordered: bool,

    /// CSV: prefix with ' any cell that starts with =, +, -, @, tab or
    /// carriage return, so that a spreadsheet shows it instead of running
    /// it as a formula. Off by default: data pipelines get values unchanged.
    /// CSV only: refused with --format jsonl or parquet.
    #[arg(env = "SCRIPTSCRAPE_SPREADSHEET_SAFE", long)]
    pub spreadsheet_safe: bool,

    /// Continue a run that was stopped or killed: keep what its .part
    /// files hold, try its transient failures again, fetch the rest. Needs
    /// the same inputs, -o FILE and --pages FILE.
    #[arg(env = "SCRIPTSCRAPE_RESUME", long)]
    pub resume: bool,

    /// When another run holds the outputs' lock (FILE.lock beside -o),
    /// wait for it instead of exiting with status 75.
    #[arg(env = "SCRIPTSCRAPE_WAIT_LOCK", long)]
    pub wait_lock: bool,

    /// When the run ends, write its figures as JSON to FILE (counts by
    /// error kind and status class, rate, bytes, latency percentiles,
    /// times; schema in README), replaced atomically; `-` for standard
    /// output (with -o FILE).
    #[arg(env = "SCRIPTSCRAPE_STATS", long, value_name = "FILE")]
    pub stats: Option<std::path::PathBuf>,

    /// Exit 0, not 1, when at most PCT percent of the pages failed (the
    /// summary still counts every failure).
    #[arg(env = "SCRIPTSCRAPE_MAX_FAILURES", long, value_name = "PCT", default_value = "0", value_parser = parse_percent, allow_negative_numbers = true)]
    pub max_failures: f64,
}

/// The options of fetching, crawling and parsing: shared by a scrape and
/// `work`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Requests in flight at once.
    #[arg(
        env = "SCRIPTSCRAPE_CONCURRENCY",
        short = 'c',
        long,
        value_name = "N",
        default_value = "64",
        value_parser = parse_positive_usize,
        allow_negative_numbers = true
    )]
    pub concurrency: NonZeroUsize,

    /// Requests in flight to one host (host and port) at once; -c still
    /// bounds the total.
    #[arg(
        env = "SCRIPTSCRAPE_PER_HOST",
        long,
        value_name = "N",
        default_value = "8",
        value_parser = parse_positive_usize,
        allow_negative_numbers = true
    )]
    pub per_host: NonZeroUsize,

    /// Least time between the starts of two requests to one host, in
    /// milliseconds, or with a unit: 1.5s, 200ms.
    #[arg(
        env = "SCRIPTSCRAPE_DELAY",
        long,
        value_name = "MS",
        default_value = "0",
        value_parser = parse_delay,
        allow_negative_numbers = true
    )]
    pub delay: Duration,

    /// Start at most N requests a second across the run (N/s), or a minute
    /// (N/m), whatever the hosts; robots.txt and scripts count, as requests
    /// (curl --rate). --delay still spaces each host's.
    #[arg(env = "SCRIPTSCRAPE_RATE", long, value_name = "N/s|N/m", value_parser = parse_rate)]
    pub rate: Option<Duration>,

    /// Wait between 0.5 and 1.5 times --delay (and --rate's interval),
    /// drawn anew each time, as wget --random-wait: a steady rhythm is easy
    /// to tell from a person.
    #[arg(env = "SCRIPTSCRAPE_RANDOM_DELAY", long)]
    pub random_delay: bool,

    /// Obey robots.txt (RFC 9309): fetched once per host, matched against
    /// the user agent's product token; a disallowed URL is reported as
    /// robots_disallowed without being requested, and Crawl-delay raises
    /// --delay for that host (up to 60 s).
    #[arg(env = "SCRIPTSCRAPE_ROBOTS", long)]
    pub robots: bool,

    /// Do not obey robots.txt. Crawls (--depth 1 or more) obey it by
    /// default; lists do not.
    #[arg(env = "SCRIPTSCRAPE_NO_ROBOTS", long, conflicts_with = "robots")]
    pub no_robots: bool,

    /// Follow links (<a href>, <area href>, <iframe src>, <frame src>) up
    /// to N hops from each listed URL, breadth first; 0 fetches the listed
    /// URLs only.
    #[arg(
        env = "SCRIPTSCRAPE_DEPTH",
        long,
        value_name = "N",
        default_value = "0",
        help_heading = "Crawling",
        value_parser = parse_whole::<u16>,
        allow_negative_numbers = true
    )]
    pub depth: u16,

    /// Which links a crawl follows, relative to the listed URL it started
    /// from: host (same host and port), domain (same registrable domain,
    /// by the public suffix list), prefix (same scheme, host and directory)
    /// or any.
    #[arg(
        env = "SCRIPTSCRAPE_SCOPE",
        long,
        value_name = "SCOPE",
        value_enum,
        help_heading = "Crawling"
    )]
    pub scope: Option<crate::crawl::scope::Scope>,

    /// Follow only links whose absolute URL matches REGEX (repeatable: any
    /// may match).
    #[arg(
        env = "SCRIPTSCRAPE_INCLUDE",
        long,
        value_delimiter = '\n',
        value_name = "REGEX",
        help_heading = "Crawling"
    )]
    pub include: Vec<String>,

    /// Do not follow links whose absolute URL matches REGEX (repeatable).
    #[arg(
        env = "SCRIPTSCRAPE_EXCLUDE",
        long,
        value_delimiter = '\n',
        value_name = "REGEX",
        help_heading = "Crawling"
    )]
    pub exclude: Vec<String>,

    /// Fetch at most N pages in all, listed URLs included; breadth-first
    /// order keeps those nearest the listed URLs. Listed URLs left over
    /// get a max_pages row.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_PAGES",
        long,
        value_name = "N",
        help_heading = "Crawling",
        value_parser = parse_positive::<std::num::NonZeroU64>,
        allow_negative_numbers = true
    )]
    pub max_pages: Option<std::num::NonZeroU64>,

    /// Remove query parameters named PARAM before deciding whether a URL
    /// was seen (repeatable; * and ? are wildcards: utm_*).
    #[arg(
        env = "SCRIPTSCRAPE_STRIP_QUERY",
        long,
        value_delimiter = '\n',
        value_name = "PARAM",
        help_heading = "Crawling"
    )]
    pub strip_query: Vec<String>,

    /// Let a crawl follow links and redirects to loopback, private,
    /// link-local and cloud-metadata addresses (by default only the listed
    /// URLs' hosts may be on such addresses); for serve, let the clients'
    /// URLs be on them.
    #[arg(env = "SCRIPTSCRAPE_ALLOW_PRIVATE", long, help_heading = "Crawling")]
    pub allow_private: bool,

    /// Also fetch the pages a sitemap lists (sitemap.xml, index or text,
    /// gzipped or not; repeatable); 'auto' reads the sitemaps named in each
    /// listed URL's host's robots.txt. With URLs and no INPUT, no list is
    /// read.
    #[arg(
        env = "SCRIPTSCRAPE_SITEMAP",
        long = "sitemap",
        value_name = "URL|auto",
        value_delimiter = '\n',
        help_heading = "Crawling"
    )]
    pub sitemaps: Vec<String>,

    /// Discovered URLs a crawl keeps in memory (about 170 bytes each);
    /// past this many they wait in temporary files on disk.
    #[arg(
        env = "SCRIPTSCRAPE_FRONTIER_MEMORY",
        long,
        value_name = "N",
        default_value = "100000",
        help_heading = "Crawling",
        value_parser = parse_positive_usize,
        allow_negative_numbers = true
    )]
    pub frontier_memory: NonZeroUsize,

    /// Follow rel=nofollow links too.
    #[arg(env = "SCRIPTSCRAPE_FOLLOW_NOFOLLOW", long, help_heading = "Crawling")]
    pub follow_nofollow: bool,

    /// Limit on each request as a whole, body included, in seconds
    /// (decimals allowed).
    #[arg(env = "SCRIPTSCRAPE_TIMEOUT", long, value_name = "SECS", default_value = "30", value_parser = parse_secs, allow_negative_numbers = true)]
    pub timeout: Duration,

    /// Limit on establishing each connection, in seconds.
    #[arg(env = "SCRIPTSCRAPE_CONNECT_TIMEOUT", long, value_name = "SECS", default_value = "10", value_parser = parse_secs, allow_negative_numbers = true)]
    pub connect_timeout: Duration,

    /// Largest page accepted, counted after decompression; a larger page
    /// fails with body_too_large and the rest is not read. Suffixes K, M, G
    /// (or KiB, MiB, GiB) are powers of 1024; KB, MB, GB powers of 1000.
    #[arg(env = "SCRIPTSCRAPE_MAX_BODY", long, value_name = "BYTES", default_value = "10MiB", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub max_body: u64,

    /// Redirects followed before a page fails with 'redirect'.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_REDIRECTS",
        long,
        value_name = "N",
        default_value = "10",
        value_parser = parse_whole::<usize>,
        allow_negative_numbers = true
    )]
    pub max_redirects: usize,

    /// Retries after a transient failure (connection refused or reset,
    /// timeout, HTTP 408, 425, 429, 500, 502, 503, 504), with exponential
    /// backoff and full jitter, or as long as Retry-After asks.
    #[arg(
        env = "SCRIPTSCRAPE_RETRIES",
        long,
        value_name = "N",
        default_value = "2",
        value_parser = parse_whole::<u32>,
        allow_negative_numbers = true
    )]
    pub retries: u32,

    /// Longest Retry-After honoured; a page asking for longer fails at once
    /// with its status instead of stalling the run.
    #[arg(env = "SCRIPTSCRAPE_MAX_RETRY_WAIT", long, value_name = "SECS", default_value = "60", value_parser = parse_secs, allow_negative_numbers = true)]
    pub max_retry_wait: Duration,

    /// Send every request through this proxy (http://, https://,
    /// socks5:// or socks5h:// URL, where socks5h:// lets the proxy resolve
    /// names; without a scheme, http://); without it, HTTP_PROXY,
    /// HTTPS_PROXY, ALL_PROXY and NO_PROXY from the environment apply. A
    /// proxy that is none of these stops the run (exit 2).
    #[arg(env = "SCRIPTSCRAPE_PROXY", long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Accept invalid TLS certificates (self-signed, expired, wrong host).
    /// Unsafe: anyone on the path can then change what is fetched.
    #[arg(env = "SCRIPTSCRAPE_INSECURE", short = 'k', long)]
    pub insecure: bool,

    /// User-Agent header sent with every request.
    #[arg(env = "SCRIPTSCRAPE_USER_AGENT", long, value_name = "STR", help = concat!(
        "User-Agent header sent with every request [default: scriptscrape/",
        env!("CARGO_PKG_VERSION"),
        "]"
    ))]
    pub user_agent: Option<String>,

    /// Extra request header, 'Name: value'; repeat for more.
    #[arg(
        env = "SCRIPTSCRAPE_HEADER",
        value_delimiter = '\n',
        short = 'H',
        long = "header",
        value_name = "HEADER"
    )]
    pub headers: Vec<String>,

    /// Basic auth for the listed URLs' own origins (USER:PASSWORD): sent
    /// with a page on the origin of the URL it was listed as (or crawled
    /// from), never to another origin, on a redirect either; not with
    /// robots.txt or scripts. Never shown.
    #[arg(
        env = "SCRIPTSCRAPE_USER",
        short = 'u',
        long = "user",
        value_name = "USER:PASSWORD",
        value_parser = parse_user,
        hide_env_values = true
    )]
    pub user: Option<crate::fetch::Credentials>,

    /// A cookie 'NAME=VALUE' (repeatable), sent like -u: with pages on the
    /// listed URLs' own origins only. Without '=', a cookie file to read
    /// (curl's Netscape format, as curl -c and browser extensions write):
    /// its cookies go by their own domain, path, secure and expiry, and
    /// the cookies servers set are kept during the run and sent back by
    /// the same rules. Never shown.
    #[arg(
        env = "SCRIPTSCRAPE_COOKIE",
        short = 'b',
        long = "cookie",
        value_name = "NAME=VALUE|FILE",
        value_parser = parse_cookie,
        hide_env_values = true
    )]
    pub cookies: Vec<String>,

    /// Keep the cookies servers set during the run (sent back by their
    /// domain, path, secure and expiry), with -b FILE's, and write them to
    /// FILE at the end in curl's Netscape format, readable by its owner
    /// only (-b FILE reads it back, as curl does).
    #[arg(env = "SCRIPTSCRAPE_COOKIE_JAR", long, value_name = "FILE")]
    pub cookie_jar: Option<std::path::PathBuf>,

    /// Also write the text of each inline script (column inline_text).
    #[arg(env = "SCRIPTSCRAPE_INLINE_TEXT", long)]
    pub inline_text: bool,

    /// Fetch every distinct external script once per run (through the same
    /// limits, retries, proxy and robots.txt as pages, with the page's
    /// origin as Referer) and fill in its content_status, content_error,
    /// content_bytes, content_sha384 and integrity_ok columns.
    #[arg(env = "SCRIPTSCRAPE_FETCH_SCRIPTS", long)]
    pub fetch_scripts: bool,

    /// Largest script accepted with --fetch-scripts, counted after
    /// decompression; a larger one gets content_error body_too_large.
    /// Suffixes as for --max-body.
    #[arg(env = "SCRIPTSCRAPE_MAX_SCRIPT_BODY", long, value_name = "BYTES", default_value = "5MiB", value_parser = parse_bytes, allow_negative_numbers = true)]
    pub max_script_body: u64,

    /// Scripts fetched for one page with --fetch-scripts (those other
    /// pages already had fetched do not count); the rest get content_error
    /// script_limit, so that a page naming thousands of scripts that never
    /// answer cannot hold the run.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_SCRIPTS_PER_PAGE",
        long,
        value_name = "N",
        default_value = "200",
        value_parser = parse_positive_usize,
        allow_negative_numbers = true
    )]
    pub max_scripts_per_page: NonZeroUsize,

    /// Decode a page that declares no encoding (no BOM, Content-Type
    /// charset or <meta>) as UTF-8 when its bytes are valid UTF-8. Off by
    /// default: browsers fall back by top-level domain instead
    /// (windows-1252 for .com), and hashes follow what they run.
    #[arg(env = "SCRIPTSCRAPE_DETECT_UTF8", long)]
    pub detect_utf8: bool,

    /// On SIGINT or SIGTERM, how long requests in flight may take to
    /// finish and be written; a second signal stops at once.
    #[arg(env = "SCRIPTSCRAPE_GRACE", long, value_name = "SECS", default_value = "10", value_parser = parse_grace, allow_negative_numbers = true)]
    pub grace: Duration,
}

/// `--render` and its options: each page also loaded in a headless
/// Chromium, and every script that ran there reported.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Also load each fetched page in a headless Chromium (given the body
    /// already fetched) and report every script that ran there: inserted
    /// by scripts, written by document.write, imported by modules, run in
    /// frames and workers (columns origin, initiator, frame_url), with the
    /// hash of the code run (content_sha384). Much slower than reading the
    /// HTML: see README "Scripts a browser runs".
    #[arg(env = "SCRIPTSCRAPE_RENDER", long, help_heading = "Rendering")]
    pub render: bool,

    /// The Chromium or Chrome executable for --render (default: chromium,
    /// chromium-browser, google-chrome or google-chrome-stable on PATH).
    #[arg(
        env = "SCRIPTSCRAPE_BROWSER",
        long,
        value_name = "PATH",
        help_heading = "Rendering"
    )]
    pub browser: Option<std::path::PathBuf>,

    /// Pages loaded in the browser at once [default: one per core].
    #[arg(
        env = "SCRIPTSCRAPE_RENDER_CONCURRENCY",
        long,
        value_name = "N",
        value_parser = parse_positive_usize,
        allow_negative_numbers = true,
        help_heading = "Rendering"
    )]
    pub render_concurrency: Option<NonZeroUsize>,

    /// A page is done once it has loaded and the network has been idle
    /// (no request in flight, no script started) this long: whole
    /// milliseconds, or with a unit (1.5s).
    #[arg(
        env = "SCRIPTSCRAPE_RENDER_IDLE",
        long,
        value_name = "MS",
        default_value = "500",
        value_parser = parse_render_idle,
        allow_negative_numbers = true,
        help_heading = "Rendering"
    )]
    pub render_idle: Duration,

    /// Time a page may take in the browser; one that has not settled by
    /// then is reported with the scripts that ran so far, and error
    /// render_timeout.
    #[arg(
        env = "SCRIPTSCRAPE_RENDER_TIMEOUT",
        long,
        value_name = "SECS",
        default_value = "30",
        value_parser = parse_secs,
        allow_negative_numbers = true,
        help_heading = "Rendering"
    )]
    pub render_timeout: Duration,

    /// JavaScript heap one page may use, in MiB; past it, its tab is
    /// closed (error render_memory).
    #[arg(
        env = "SCRIPTSCRAPE_RENDER_MEMORY",
        long,
        value_name = "MIB",
        default_value = "512",
        value_parser = parse_render_memory,
        allow_negative_numbers = true,
        help_heading = "Rendering"
    )]
    pub render_memory: u64,
}

/// Whether `arg` (`--name` or `--name=value`, as given) is one of
/// `--render`'s options, which only a run takes (not `work`).
pub fn is_render_option(arg: &str) -> bool {
    let name = arg.split('=').next().unwrap_or(arg);
    let Some(long) = name.strip_prefix("--") else {
        return false;
    };
    let options = <RenderArgs as clap::Args>::augment_args(clap::Command::new("render"));
    options.get_arguments().any(|a| a.get_long() == Some(long))
}

/// Parses `--render-idle` as `--delay` is parsed, in its own name.
pub fn parse_render_idle(s: &str) -> Result<Duration, String> {
    parse_delay(s).map_err(|e| e.replace("--delay", "--render-idle"))
}

/// Parses `--render-memory`: whole MiB, at least 16 (less than a blank
/// page needs).
pub fn parse_render_memory(s: &str) -> Result<u64, String> {
    let mib = whole(s, 16)?;
    if mib > 1 << 20 {
        return Err(too_large(s));
    }
    Ok(mib)
}

/// The options of what is said on standard error: shared by every run.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Print nothing on standard error but fatal errors: no summary line,
    /// no per-page failures. Cannot be combined with -v.
    #[arg(env = "SCRIPTSCRAPE_QUIET", short = 'q', long)]
    pub quiet: bool,

    /// More log lines on standard error: -v one per failed page, -vv one
    /// per page and retry, -vvv everything, other libraries included
    /// (RUST_LOG, when set, decides instead).
    #[arg(
        env = "SCRIPTSCRAPE_VERBOSE",
        short = 'v',
        long,
        action = clap::ArgAction::Count,
        value_parser = verbosity,
    )]
    pub verbose: u8,

    /// Log lines as text or as JSON objects, one per line.
    #[arg(
        env = "SCRIPTSCRAPE_LOG_FORMAT",
        long,
        value_name = "FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: crate::run::terminal::LogFormat,
}

/// The command line's definition, with what a subcommand refuses hidden
/// from its help: the options of a local run that `work` and `collect`
/// share through their option groups but cannot honour.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let hide = |arg: clap::Arg| arg.hide(true);
    Cli::command()
        .mut_subcommand("work", |work| {
            work.mut_arg("max_pages", hide)
                .mut_arg("sitemaps", hide)
                .mut_arg("frontier_memory", hide)
        })
        .mut_subcommand("collect", |collect| {
            collect.mut_arg("ordered", hide).mut_arg("resume", |arg| {
                arg.help(
                    "Continue a collect that was stopped or killed: keep what its .part files \
                     hold, and write the rest of the job's results, each page once",
                )
            })
        })
}

/// Why the command line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// A usage error, or --help and --version (clap's own).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The configuration file is missing, unreadable or wrong.
    #[error(transparent)]
    File(#[from] crate::config_file::FileError),
}

/// The command line read with its configuration file.
#[derive(Debug)]
pub struct Parsed {
    /// The options, flags over variables over the file over defaults.
    pub cli: Cli,
    /// The settings and where each came from, for --print-config.
    pub effective: crate::config_file::Effective,
    /// Said on standard error before the run (unless -q): a secret in a
    /// file others can read.
    pub warnings: Vec<String>,
}

impl Cli {
    /// Parses the process's command line, with its configuration file
    /// (see [`crate::config_file`]). `-q` and `-v` together are refused
    /// when both are on the command line; when one of them comes from the
    /// environment or the file, the command line's wins, as for every
    /// option.
    pub fn parse_args() -> Result<Parsed, ArgsError> {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        Self::parse_from_env(args, &|name| std::env::var_os(name))
    }

    /// [`Cli::parse_args`] with the command line and environment given.
    pub fn parse_from_env(
        args: Vec<std::ffi::OsString>,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Parsed, ArgsError> {
        use crate::config_file::{ConfigFile, Effective, Layer, locate};
        use clap::FromArgMatches as _;
        use clap::parser::ValueSource;
        let location = locate(&args, env);
        let mut layer = match &location {
            Some(location) => Some(Layer::new(&ConfigFile::read(&location.path)?, &command())?),
            None => None,
        };
        // At most twice: the second time without the file's values that an
        // option on the command line or in the environment conflicts with
        // (--no-robots over the file's robots = true), which clap does not
        // check against defaults.
        // --print-config prints settings, the required ones among them as
        // not set: it works without them (checked again below when the
        // word turns out to be another option's value).
        let printing = args
            .iter()
            .skip(1)
            .take_while(|a| a.as_os_str() != "--")
            .any(|a| a.as_os_str() == "--print-config");
        let mut rounds = 0;
        let (mut command, matches) = loop {
            rounds += 1;
            let mut command = match &layer {
                Some(layer) => layer.apply(command()),
                None => command(),
            };
            if printing {
                command = nothing_required(command);
            }
            let matches = command
                .try_get_matches_from_mut(args.clone())
                .map_err(|e| crate::config_file::without_secret_value(&command, e))?;
            let Some(layer) = layer.as_mut().filter(|_| rounds == 1) else {
                break (command, matches);
            };
            command.build();
            let (name, used) = used(&command, &matches);
            let given = |arg: &clap::Arg| {
                matches!(
                    sub_matches(&matches, name).value_source(arg.get_id().as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            };
            let conflicts: Vec<String> = used
                .get_arguments()
                .filter(|arg| {
                    let id = arg.get_id();
                    layer.line_of(name, id.as_str()).is_some()
                        && !given(arg)
                        && used.get_arguments().filter(|o| given(o)).any(|other| {
                            used.get_arg_conflicts_with(other)
                                .iter()
                                .chain(&used.get_arg_conflicts_with(arg))
                                .any(|c| c.get_id() == id || c.get_id() == other.get_id())
                        })
                })
                .map(|arg| arg.get_id().as_str().to_owned())
                .collect();
            if conflicts.is_empty() {
                break (command, matches);
            }
            let name = name.map(str::to_owned);
            for id in &conflicts {
                layer.remove(name.as_deref(), id);
            }
        };
        command.build();
        let (name, _) = used(&command, &matches);
        let used_matches = sub_matches(&matches, name);
        // clap's reading of --config must be the one the file was chosen
        // by (a value that only looked like --config, as in -H --config).
        let flag_path = used_matches
            .get_one::<std::path::PathBuf>("config")
            .or_else(|| matches.get_one::<std::path::PathBuf>("config"));
        let chosen_by_flag = location
            .as_ref()
            .filter(|l| l.chosen == crate::config_file::Chosen::Flag)
            .map(|l| &l.path);
        if flag_path != chosen_by_flag && flag_path.is_some() {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "--config is ambiguous here: give it before the other options\n",
            )
            .into());
        }
        // Listed in the definition's order, which applying the file
        // changed.
        let definition = command_of(name);
        let mut effective = Effective::new(
            &definition,
            name,
            used_matches,
            layer.as_ref(),
            location.clone(),
        );
        let print_config = used_matches.get_flag("print_config");
        if printing && !print_config {
            // "--print-config" was another option's value: the command
            // line is read with its required options after all.
            let mut strict = match &layer {
                Some(layer) => layer.apply(self::command()),
                None => self::command(),
            };
            strict
                .try_get_matches_from_mut(args.clone())
                .map_err(|e| crate::config_file::without_secret_value(&strict, e))?;
        }
        let mut cli = match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            // A required option missing, which --print-config shows as not
            // set: the scrape's options stand in, only the request is read.
            Err(_) if print_config => {
                Cli::from_arg_matches(&self::command().try_get_matches_from(["scriptscrape"])?)?
            }
            Err(e) => return Err(e.into()),
        };
        if print_config {
            cli.settings.print_config = true;
        }
        resolve_quiet_verbose(&mut cli, used_matches, &mut effective)?;
        let quiet = used_matches
            .try_get_one::<bool>("quiet")
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false);
        let mut warnings = Vec::new();
        if let Some(layer) = &layer
            && !quiet
            && !layer.secret_keys().is_empty()
            && readable_by_others(layer.path())
        {
            warnings.push(format!(
                "warning: {} holds secrets ({}) and other users can read it: chmod 600 {}",
                layer.path().display(),
                layer.secret_keys().join(", "),
                layer.path().display()
            ));
        }
        if matches!(cli.command, Some(Command::Work(_)))
            && let Some(source) = render_asked(layer.as_ref())
        {
            // Top-level settings apply to the commands that have them;
            // this one a worker machine's owner would expect to apply.
            warnings.push(format!(
                "warning: {source} sets render, which workers do not do: they fetch and extract \
                 as without --render (render with a local run)"
            ));
        }
        Ok(Parsed {
            cli,
            effective,
            warnings,
        })
    }
}

/// Where `render` is asked for outside the command line: the
/// environment, or the configuration file (and its line).
fn render_asked(layer: Option<&crate::config_file::Layer>) -> Option<String> {
    // A flag's variable is `true` or `false` (clap refuses anything else).
    if std::env::var("SCRIPTSCRAPE_RENDER").is_ok_and(|v| v == "true") {
        return Some("SCRIPTSCRAPE_RENDER".into());
    }
    let layer = layer?;
    if layer.values_of(None, "render")? != ["true"] {
        return None;
    }
    let line = layer.line_of(None, "render")?;
    Some(format!("{} (line {line})", layer.path().display()))
}

/// `command` with no option, INPUT or group required, in it or in its
/// subcommands.
fn nothing_required(command: clap::Command) -> clap::Command {
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let mut command = command.mut_args(|a| a.required(false));
    for name in subcommands {
        command = command.mut_subcommand(name, |s| s.mut_args(|a| a.required(false)));
    }
    command
}

/// `-q` with `-v`: the one from the higher source wins (command line >
/// environment > file), as for any option, and `--print-config` shows the
/// other as not given; from the same source they contradict each other.
fn resolve_quiet_verbose(
    cli: &mut Cli,
    matches: &clap::ArgMatches,
    effective: &mut crate::config_file::Effective,
) -> Result<(), ArgsError> {
    use clap::parser::ValueSource;
    let log = match &mut cli.command {
        None => &mut cli.log,
        Some(Command::Enqueue(args)) => &mut args.log,
        Some(Command::Work(args)) => &mut args.log,
        Some(Command::Collect(args)) => &mut args.log,
        Some(Command::Serve(args)) => &mut args.log,
        Some(_) => return Ok(()),
    };
    if !(log.quiet && log.verbose > 0) {
        return Ok(());
    }
    let rank = |id| match matches.value_source(id) {
        Some(ValueSource::CommandLine) => 3,
        Some(ValueSource::EnvVariable) => 2,
        // Set, so from the file (a built-in default sets neither).
        _ => 1,
    };
    let (loser, default) = match rank("quiet").cmp(&rank("verbose")) {
        std::cmp::Ordering::Greater => {
            log.verbose = 0;
            ("verbose", "0")
        }
        std::cmp::Ordering::Less => {
            log.quiet = false;
            ("quiet", "false")
        }
        std::cmp::Ordering::Equal => {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "-q (--quiet) and -v (--verbose) contradict each other: give one of them\n",
            )
            .into());
        }
    };
    if let Some(setting) = effective.settings.iter_mut().find(|s| s.key == loser) {
        setting.value = Some(default.to_owned());
        setting.source = crate::config_file::Source::Default;
    }
    Ok(())
}

/// The definition of the subcommand `name`, or of the scrape.
fn command_of(name: Option<&str>) -> clap::Command {
    let whole = command();
    match name.and_then(|n| whole.find_subcommand(n)) {
        Some(sub) => sub.clone(),
        None => whole,
    }
}

/// The command that runs (a subcommand, or the scrape), with its name.
fn used<'a>(
    command: &'a clap::Command,
    matches: &clap::ArgMatches,
) -> (Option<&'a str>, &'a clap::Command) {
    match matches
        .subcommand_name()
        .and_then(|n| command.find_subcommand(n))
    {
        Some(sub) => (Some(sub.get_name()), sub),
        None => (None, command),
    }
}

fn sub_matches<'a>(matches: &'a clap::ArgMatches, name: Option<&str>) -> &'a clap::ArgMatches {
    name.and_then(|n| matches.subcommand_matches(n))
        .unwrap_or(matches)
}

/// Whether users other than the owner may read `path` (Unix permission
/// bits; elsewhere, not known, so no).
fn readable_by_others(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// The commands besides scraping.
// Parsed once per process: boxing the larger variants would save nothing
// that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Compare two runs' scripts outputs and list what changed, one row per
    /// change (exit 0: no changes, 1: changes, 2: could not compare).
    #[command(after_help = diff_after_help())]
    Diff(DiffArgs),

    /// Add the URLs of INPUT files to a job's shared queue on Redis
    /// (deduplicated across the job); invalid lines become invalid_url
    /// results at once.
    #[command(after_help = QUEUE_AFTER_HELP)]
    Enqueue(EnqueueArgs),

    /// Fetch and parse a job's URLs from its shared queue on Redis, on as
    /// many machines as wanted; exits 0 once the job is closed and drained.
    #[command(after_help = QUEUE_AFTER_HELP)]
    Work(WorkArgs),

    /// Write a job's results from Redis to the same files a local run
    /// writes (-o, --pages), each page once.
    #[command(after_help = QUEUE_AFTER_HELP)]
    Collect(CollectArgs),

    /// List the jobs on a Redis with their counts, or delete one.
    #[command(after_help = QUEUE_AFTER_HELP)]
    Jobs(JobsArgs),

    /// Write the authorisation report of a run: per page, every script,
    /// whether the allow list authorises it and why, with its integrity
    /// evidence (exit 0: every script authorised, 1: some are not or pages
    /// have no inventory, 2: could not report).
    #[command(after_help = INVENTORY_AFTER_HELP)]
    Inventory(InventoryArgs),

    /// Scan pages on demand over HTTP: POST /v1/scan with URLs, answered
    /// with JSON Lines as pages complete; every scan shares one -c and
    /// --per-host, and client URLs are held to the private-network rule.
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
}

const SERVE_AFTER_HELP: &str = "\
Example:
  echo \"$(openssl rand -hex 24)\" > token && chmod 600 token
  scriptscrape serve --listen 127.0.0.1:8080 --token-file token
  curl -sN -H \"Authorization: Bearer $(cat token)\" --data-binary @urls.txt \\
    http://127.0.0.1:8080/v1/scan

A JSON body may set options: {\"urls\": [...], \"options\": {\"timeout\": 10,
\"retries\": 1, \"depth\": 1, \"max_pages\": 100, \"fetch_scripts\": true}}
(depth needs --max-depth). See README \"Scans over HTTP\" for the stream's
objects and the security model.";

/// `scriptscrape serve`'s command line.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address and port to listen on.
    #[arg(
        env = "SCRIPTSCRAPE_LISTEN",
        long,
        value_name = "ADDR:PORT",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: std::net::SocketAddr,

    /// A file holding the bearer token clients must send
    /// (Authorization: Bearer TOKEN); at least 16 characters.
    #[arg(env = "SCRIPTSCRAPE_TOKEN_FILE", long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,

    /// Take scans without a token: only on a loopback address.
    #[arg(env = "SCRIPTSCRAPE_NO_AUTH", long)]
    pub no_auth: bool,

    /// URLs one scan may ask for; more is refused (413).
    #[arg(
        env = "SCRIPTSCRAPE_MAX_URLS",
        long,
        value_name = "N",
        default_value = "1000",
        value_parser = clap::value_parser!(u64).range(1..=999_999)
    )]
    pub max_urls: u64,

    /// URLs of running scans not yet answered, all clients together, past
    /// which a new scan is answered 503 with Retry-After.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_PENDING",
        long,
        value_name = "N",
        default_value = "10000",
        value_parser = clap::value_parser!(u64).range(1..=99_999_999)
    )]
    pub max_pending: u64,

    /// The deepest a scan may crawl (its options.depth): links followed
    /// from its URLs, within --scope, robots.txt obeyed; 0: scans fetch
    /// the URLs they name only.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_DEPTH",
        long,
        value_name = "N",
        default_value = "0",
        value_parser = clap::value_parser!(u16).range(0..=100)
    )]
    pub max_depth: u16,

    /// Behind a reverse proxy: scans take turns by this request header
    /// (its last entry, which the proxy appends; X-Forwarded-For, say)
    /// rather than by the address they come from, which is the proxy's.
    /// Only for a proxy that sets it: a client could name itself otherwise.
    #[arg(env = "SCRIPTSCRAPE_CLIENT_HEADER", long, value_name = "NAME")]
    pub client_header: Option<axum::http::HeaderName>,

    #[command(flatten)]
    pub fetch: FetchArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

const INVENTORY_AFTER_HELP: &str = "\
Examples:
  $ scriptscrape checkout.txt --fetch-scripts -o scripts.csv --pages pages.csv
  $ scriptscrape inventory scripts.csv --pages pages.csv --allow allowed.txt -o report.html
  $ scriptscrape inventory scripts.csv --pages pages.csv --allow allowed.txt -o report.csv
See README, \"Payment pages and PCI DSS 6.4.3 / 11.6.1\".";

/// `scriptscrape inventory`'s arguments.
#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// The scripts output of a run (CSV, JSON Lines or Parquet; - for
    /// standard input).
    #[arg(value_name = "OUTPUT")]
    pub scripts: String,

    /// The same run's page report: its policy (csp) for each page, and the
    /// pages that failed, which the report lists as not inventoried.
    #[arg(long, value_name = "FILE")]
    pub pages: Option<String>,

    /// The allow list: which scripts are authorised, with justification,
    /// owner and pinned content (the format of diff --allow).
    #[arg(long, value_name = "FILE", required = true)]
    pub allow: String,

    /// Write the report to FILE (written whole, then renamed into place);
    /// default standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// csv, jsonl, or html (one self-contained page for people); default:
    /// from -o's extension (.html, .htm, .jsonl, .ndjson), else csv.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub format: Option<crate::inventory::ReportFormat>,

    /// CSV: prefix with ' every cell that starts with =, +, -, @, a tab or
    /// a carriage return (a policy or a src is whatever a page said);
    /// refused with jsonl and html.
    #[arg(long)]
    pub spreadsheet_safe: bool,

    /// Print nothing on standard error but fatal errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

const QUEUE_AFTER_HELP: &str = "\
A job on Redis: enqueue its URLs, run work on any number of machines, and one collect.
  $ scriptscrape enqueue --redis redis://queue:6379/ --job nightly urls.txt --close
  $ scriptscrape work --redis redis://queue:6379/ --job nightly -c 64       # on each machine
  $ scriptscrape collect --redis redis://queue:6379/ --job nightly -o scripts.csv --pages pages.csv
  $ scriptscrape jobs --redis redis://queue:6379/
A password goes in the URL (redis://:PASSWORD@host/) or SCRIPTSCRAPE_REDIS_URL; it is
never shown. See README, \"Running on many machines\".";

/// Where a job's queue is: shared by the queue's commands.
#[derive(Debug, clap::Args)]
pub struct RedisArgs {
    /// The Redis server: redis://[:PASSWORD@]HOST[:PORT][/DB], or
    /// rediss:// for TLS.
    #[arg(
        env = "SCRIPTSCRAPE_REDIS_URL",
        long,
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: String,
}

/// Which job: shared by enqueue, work and collect.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job's name: printable, at most 100 bytes, no braces.
    #[arg(env = "SCRIPTSCRAPE_JOB", long, value_name = "NAME")]
    pub job: String,
}

/// `scriptscrape enqueue`'s command line.
#[derive(Debug, clap::Args)]
pub struct EnqueueArgs {
    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub job: JobArgs,

    /// Files of URLs, one per line; '-' reads standard input, as does no
    /// INPUT when standard input is not a terminal (none with --close
    /// alone closes the job).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Say that no more URLs will come: workers leave once the queue is
    /// drained.
    #[arg(long)]
    pub close: bool,

    /// The URLs the whole job is expected to hold, found links included:
    /// sizes its seen-set when the job is created (more than about 26
    /// million needs it to stay at 8-16 bytes a URL).
    #[arg(long, value_name = "N")]
    pub expect: Option<u64>,

    /// Strip these query parameters before the job-wide duplicate check,
    /// as a crawl does (glob patterns; give workers the same).
    #[arg(long = "strip-query", value_name = "GLOB", value_delimiter = ',')]
    pub strip_query: Vec<String>,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `scriptscrape work`'s command line.
#[derive(Debug, clap::Args)]
pub struct WorkArgs {
    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub job: JobArgs,

    /// Take back work another worker has held this long without a sign of
    /// life (it died): its URLs are fetched here instead.
    #[arg(
        env = "SCRIPTSCRAPE_CLAIM_IDLE",
        long,
        value_name = "SECS",
        default_value = "60",
        value_parser = parse_secs,
        allow_negative_numbers = true
    )]
    pub claim_idle: Duration,

    /// A URL handed out more than N times without a result (each worker
    /// that took it died) becomes a failed page (delivery_limit) instead of
    /// killing more workers.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_DELIVERIES",
        long,
        value_name = "N",
        default_value = "3",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_deliveries: u64,

    /// Wait while the job's results not yet collected number more than N
    /// pages, so that Redis memory stays bounded when the collector falls
    /// behind.
    #[arg(
        env = "SCRIPTSCRAPE_MAX_RESULTS",
        long,
        value_name = "N",
        default_value = "10000",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_results: u64,

    #[command(flatten)]
    pub fetch: FetchArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `scriptscrape collect`'s command line.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub job: JobArgs,

    /// Write the inline_text column (give the workers --inline-text too:
    /// they keep the text).
    #[arg(env = "SCRIPTSCRAPE_INLINE_TEXT", long)]
    pub inline_text: bool,

    #[command(flatten)]
    pub outputs: OutputArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `scriptscrape jobs`'s command line.
#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Remove a job's keys from Redis: refused while it has work or
    /// results left, unless --force.
    #[arg(long, value_name = "NAME")]
    pub delete: Option<String>,

    /// With --delete: remove the job even if it is not finished.
    #[arg(long, requires = "delete")]
    pub force: bool,
}

const DIFF_CHANGES: &str = "\
Changes (the change column): added, removed, inline_changed, content_changed (same src,
other content: both runs used --fetch-scripts), integrity_broken (its integrity matched
the content and no longer does), integrity_removed, integrity_changed, attribute_changed,
csp_changed (the page's Content-Security-Policy, from the page reports), page_added,
page_gone, unknown (a page that failed in either run: not compared; or a script whose
content one run lacks, or whose pin cannot be checked), unapproved (added, but not on
--allow; or not the content pinned there).";

const DIFF_EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "no changes"),
    (
        "1",
        "changes found (any row written; with --fail-on, a row of those kinds)",
    ),
    (
        "2",
        "could not compare: unreadable file, not a scripts output, a scripts output \
         and page report that disagree, bad option",
    ),
];

const DIFF_EXAMPLES: &str = "  $ scriptscrape urls.txt -o today.csv --pages today-pages.csv
  $ scriptscrape diff yesterday.csv today.csv --old-pages yesterday-pages.csv \\
        --new-pages today-pages.csv --format text -q -o changes.txt
  $ [ $? -eq 1 ] && mail -s 'scripts changed' sec@example.com < changes.txt";

fn diff_after_help() -> String {
    format!(
        "{DIFF_CHANGES}\n\n{}",
        after_help(DIFF_EXIT_STATUS, DIFF_EXAMPLES)
    )
}

/// `scriptscrape diff`'s command line.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier run's scripts output (CSV, JSON Lines or Parquet,
    /// detected); '-' for standard input.
    #[arg(value_name = "OLD")]
    pub old: String,

    /// The later run's scripts output.
    #[arg(value_name = "NEW")]
    pub new: String,

    /// Write the changes to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// Output format: csv, jsonl, or text (counts per kind of change and
    /// the first rows, for people).
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "csv")]
    pub format: crate::diff::write::DiffFormat,

    /// The earlier run's page report (--pages): pages that failed are
    /// listed as unknown, and pages with no scripts are told from pages
    /// gone. Without it, a page missing from a scripts output reads as
    /// page_gone or page_added.
    #[arg(long, value_name = "FILE")]
    pub old_pages: Option<String>,

    /// The later run's page report (--pages).
    #[arg(long, value_name = "FILE")]
    pub new_pages: Option<String>,

    /// Only changes of third-party scripts (page-level rows stay).
    #[arg(long)]
    pub only_third_party: bool,

    /// Only pages whose URL matches REGEX.
    #[arg(long, value_name = "REGEX")]
    pub page: Option<String>,

    /// Compare src with the text REGEX matches removed, for URLs that
    /// rotate (cache-busting tokens, build hashes); repeatable.
    #[arg(long, value_name = "REGEX")]
    pub ignore_src: Vec<String>,

    /// Compare src without its query string.
    #[arg(long)]
    pub ignore_query: bool,

    /// Allowed scripts, one per line: a host (cdn.example.com, or
    /// *.example.com), a src pattern with * (https://cdn.example.com/lib/*)
    /// or an inline hash (sha256-...), then optionally
    /// justification="...", owner=... and, for a src, pin=sha384-... (the
    /// content it must have). Added scripts not on it, and pinned scripts
    /// with other content, are reported as unapproved.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<String>,

    /// Exit 1 only for changes of these kinds (comma-separated, e.g.
    /// added,unapproved,integrity_removed); every change is written either
    /// way. Default: any change.
    #[arg(long, value_name = "KINDS", value_delimiter = ',')]
    pub fail_on: Vec<crate::diff::ChangeKind>,

    /// CSV: prefix with ' every cell that starts with =, +, -, @, a tab or
    /// a carriage return, so that a spreadsheet shows it instead of running
    /// it (src values are whatever the pages said). CSV only.
    #[arg(long)]
    pub spreadsheet_safe: bool,

    /// Print nothing on standard error but fatal errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    /// The man page, scriptscrape(1) (roff), for `man -l -` or a man
    /// directory.
    Man,
    /// The man page of the diff command, scriptscrape-diff(1).
    ManDiff,
    /// Completions for bash.
    CompleteBash,
    /// Completions for zsh.
    CompleteZsh,
    /// Completions for fish.
    CompleteFish,
    /// Completions for PowerShell.
    CompletePowershell,
    /// Completions for elvish.
    CompleteElvish,
}

/// Writes what `kind` asks for, generated from this very command-line
/// definition so that it never drifts from `--help`.
pub fn generate(kind: Generate, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap_complete::Shell;
    let mut command = command();
    let shell = match kind {
        Generate::Man => {
            let page = ManPage {
                exit_status: EXIT_STATUS,
                examples: EXAMPLES,
                extra: None,
                see_also: "scriptscrape-diff(1)",
            };
            return page.render(command, out);
        }
        Generate::ManDiff => {
            // Built, so that the subcommand is named scriptscrape-diff and
            // its synopsis reads "scriptscrape diff".
            command.build();
            let diff = command
                .find_subcommand("diff")
                .cloned()
                .ok_or_else(|| std::io::Error::other("no diff command"))?;
            let page = ManPage {
                exit_status: DIFF_EXIT_STATUS,
                examples: DIFF_EXAMPLES,
                extra: Some(("CHANGES", DIFF_CHANGES)),
                see_also: "scriptscrape(1)",
            };
            return page.render(diff, out);
        }
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompletePowershell => Shell::PowerShell,
        Generate::CompleteElvish => Shell::Elvish,
    };
    clap_complete::generate(shell, &mut command, "scriptscrape", out);
    Ok(())
}

// The parsers below word their errors for the person at the prompt; clap
// puts them after "invalid value 'X' for '--option <N>': ". The standard
// library's ("invalid digit found in string", "number would be zero for
// non-zero type") name Rust's types instead. Options that take numbers
// allow a leading '-', so that '--timeout -1' is refused as a negative
// value rather than as an unknown flag.

/// A man page: clap_mangen's sections, then the ones it has no place for,
/// under the headings man(7) gives them (its own puts --help's epilogue
/// under "EXTRA").
struct ManPage {
    exit_status: &'static [(&'static str, &'static str)],
    examples: &'static str,
    /// A section of the command's own: heading and text.
    extra: Option<(&'static str, &'static str)>,
    see_also: &'static str,
}

impl ManPage {
    fn render(&self, command: clap::Command, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut page = Vec::new();
        self.render_sections(command, &mut page)?;
        // Each section clap_mangen renders starts with roff's preamble; the
        // page needs it once.
        let page = String::from_utf8_lossy(&page);
        let preamble = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
        let body = page.replace(preamble, "");
        if page.starts_with(preamble) {
            out.write_all(preamble.as_bytes())?;
        }
        out.write_all(body.as_bytes())
    }

    fn render_sections(
        &self,
        command: clap::Command,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        use clap_mangen::roff::{Roff, bold, roman};
        let has_subcommands = command.has_subcommands();
        let man = clap_mangen::Man::new(command)
            .source(concat!("scriptscrape ", env!("CARGO_PKG_VERSION")));
        man.render_title(out)?;
        man.render_name_section(out)?;
        man.render_synopsis_section(out)?;
        man.render_description_section(out)?;
        man.render_options_section(out)?;
        if has_subcommands {
            man.render_subcommands_section(out)?;
        }
        let mut roff = Roff::new();
        if let Some((heading, text)) = self.extra {
            roff.control("SH", [heading]);
            roff.text([roman(text.replace('\n', " "))]);
        }
        roff.control("SH", ["EXIT STATUS"]);
        for (code, meaning) in self.exit_status {
            roff.control("TP", []);
            roff.text([bold(*code)]);
            roff.text([roman(*meaning)]);
        }
        roff.control("SH", ["EXAMPLES"]);
        roff.control("nf", []);
        for line in self.examples.lines() {
            // --help indents them under their heading; a man section is.
            roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
        }
        roff.control("fi", []);
        roff.control("SH", ["SEE ALSO"]);
        roff.text([roman(self.see_also)]);
        roff.to_writer(out)
    }
}

/// Parses a count that may be zero: `--retries`, `--depth`,
/// `--max-redirects`.
pub fn parse_whole<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n = whole(s, 0)?;
    T::try_from(n).map_err(|_| too_large(s))
}

/// Parses a count of at least 1: `--max-pages`.
pub fn parse_positive<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n = whole(s, 1)?;
    T::try_from(n).map_err(|_| too_large(s))
}

/// Parses a count of at least 1 that sizes memory: `-c`, `--per-host`.
pub fn parse_positive_usize(s: &str) -> Result<NonZeroUsize, String> {
    let n = usize::try_from(whole(s, 1)?).map_err(|_| too_large(s))?;
    NonZeroUsize::new(n).ok_or_else(|| "expected a whole number of at least 1".to_owned())
}

fn too_large(s: &str) -> String {
    format!("{} is too large", s.trim())
}

/// A whole number of at least `min`, or why not.
fn whole(s: &str, min: u64) -> Result<u64, String> {
    let t = s.trim();
    let expected = if min == 0 {
        "a whole number (0 or more)".to_owned()
    } else {
        format!("a whole number of at least {min}")
    };
    if t.starts_with('-') && t[1..].parse::<f64>().is_ok() {
        return Err(format!(
            "negative values are not allowed; expected {expected}"
        ));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            Ok(_) => Err(format!("expected {expected}")),
            Err(_) => Err(too_large(s)),
        };
    }
    Err(format!("expected {expected}"))
}

/// A decimal number of seconds (`30`, `2.5`), also written with a unit
/// (`30s`, `500ms`), as `flag` wants it.
fn seconds(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 0.001)
    } else {
        (t.strip_suffix('s').unwrap_or(t), 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| "expected seconds, e.g. 30 or 2.5".to_owned())?;
    if value < 0.0 {
        return Err("negative values are not allowed; expected seconds, e.g. 30 or 2.5".into());
    }
    Ok(value * scale)
}

/// Parses seconds: `30`, `2.5`, `0.25`, `30s`, `500ms`. Zero is refused:
/// it would fail every request.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs = seconds(s)?;
    if secs < 0.001 {
        return Err("expected at least 0.001 seconds (1 ms)".to_owned());
    }
    // About 31 years: larger values are typos, and would overflow Instant.
    if secs > 1e9 {
        return Err("expected at most 1000000000 seconds".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `--grace`: seconds, where zero means "stop at the first signal".
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    if seconds(s)? == 0.0 {
        return Ok(Duration::ZERO);
    }
    parse_secs(s)
}

/// Parses `--delay`: whole milliseconds, as it always took (`200`), or a
/// duration with its unit (`1.5s`, `200ms`). A bare fraction (`1.5`) is
/// refused rather than read as 1.5 ms, since whoever typed it most likely
/// meant seconds, as the other duration options take.
pub fn parse_delay(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.ends_with('s') {
        let secs = seconds(t)?;
        if secs > 1e6 {
            return Err(too_large(s));
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return whole(t, 0).map(Duration::from_millis);
    }
    match t.parse::<f64>() {
        Ok(v) if v < 0.0 => Err("negative values are not allowed".to_owned()),
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v < 1e12 => Err(format!(
            "--delay takes whole milliseconds written out: write {} (or with a unit, 1.5s)",
            v as u64
        )),
        Ok(v) if v.is_finite() && v < 1e12 => Err(format!(
            "--delay takes whole milliseconds or a unit: for {t} seconds write {t}s or {}",
            (v * 1000.0).round()
        )),
        _ => Err("expected milliseconds (200) or a duration with its unit (1.5s, 200ms)".into()),
    }
}

/// Parses `-b NAME=VALUE`: a cookie as a Cookie header carries it (RFC
/// 6265 cookie-pair, without the characters that would break the header),
/// or several as curl takes them (`-b 'a=1; b=2'`), returned as
/// `a=1; b=2`. Without '=', as in curl, it names a cookie file, returned as
/// given. No message shows a value: it is a secret.
pub fn parse_cookie(s: &str) -> Result<String, String> {
    if s.contains(['\n', '\r']) {
        // Not a list: a cookie (or a file name) with a line break in it,
        // which is a pasting mistake; half of it would be a file name.
        return Err("a line break in a cookie: give each cookie or file its own -b".to_owned());
    }
    if !s.contains('=') {
        if s.trim().is_empty() {
            return Err("write NAME=VALUE, or the name of a cookie file".to_owned());
        }
        return Ok(s.to_owned());
    }
    let mut pairs = Vec::new();
    // curl's form: one Cookie header's worth, pairs split by ';'.
    for pair in s.split(';').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once('=') else {
            return Err("write NAME=VALUE, several as 'a=1; b=2' (a ';' ends a value)".to_owned());
        };
        let name = name.trim();
        let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if name.is_empty() {
            return Err("a cookie without a name (NAME=VALUE)".to_owned());
        }
        if !name.chars().all(token) {
            return Err("a cookie name with characters a cookie name cannot have".to_owned());
        }
        let value = value.trim();
        if !value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\'))
        {
            return Err(format!(
                "the value of cookie {name} has characters a Cookie header cannot carry"
            ));
        }
        pairs.push(format!("{name}={value}"));
    }
    if pairs.is_empty() {
        return Err("write NAME=VALUE, or the name of a cookie file".to_owned());
    }
    Ok(pairs.join("; "))
}

/// Parses `-u USER:PASSWORD`. Without the colon, curl would prompt for a
/// password; a scraper run from cron cannot, so it is refused.
pub fn parse_user(s: &str) -> Result<crate::fetch::Credentials, String> {
    match s.split_once(':') {
        Some(("", _)) => Err("the user name is empty".to_owned()),
        Some((user, password)) => Ok(crate::fetch::Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }),
        None => Err("write USER:PASSWORD (USER: for an empty password)".to_owned()),
    }
}

/// Parses `--rate`: `N/s` or `N/m` (decimals allowed), as the least time
/// between two request starts. A bare number is refused: curl reads one
/// per hour, others per second.
pub fn parse_rate(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (n, per) = match t.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((_, unit)) => {
            return Err(format!(
                "unknown unit /{unit}: write N/s or N/m (5/s, 30/m)"
            ));
        }
        None => return Err(format!("write {t}/s or {t}/m: a rate needs its unit")),
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a number of requests: write 5/s or 30/m"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err("a rate must be more than 0".to_owned());
    }
    let interval = per / n;
    if interval > 86_400.0 {
        return Err("a rate under one request a day: use a scheduler (cron) instead".to_owned());
    }
    // Past a million a second there is no interval to keep.
    Ok(Duration::from_secs_f64(interval.max(1e-6)))
}

/// Parses a percentage: `5`, `2.5`, `5%`.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let pct: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| "expected a percentage, e.g. 5 or 2.5".to_owned())?;
    if pct < 0.0 {
        return Err("negative values are not allowed; expected a percentage from 0 to 100".into());
    }
    if pct > 100.0 {
        return Err("expected a percentage from 0 to 100".to_owned());
    }
    Ok(pct)
}

/// Parses a byte count with an optional unit suffix.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err("negative values are not allowed; expected a size, e.g. 500K or 10MiB".into());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a size in bytes, e.g. 500000, 500K or 10MiB".to_owned())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit '{other}' (use K, M, G, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    let bytes = n.checked_mul(mult).ok_or_else(|| too_large(s))?;
    if bytes == 0 {
        return Err("the limit must be at least 1 byte".to_owned());
    }
    Ok(bytes)
}

/// `SCRIPTSCRAPE_VERBOSE`'s value: how many `-v`.
fn verbosity(value: &str) -> Result<u8, String> {
    value.trim().parse::<u8>().map_err(|_| {
        "expected how many -v, a whole number (SCRIPTSCRAPE_VERBOSE=2 is -vv)".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_in_milliseconds_or_with_a_unit() {
        assert_eq!(parse_delay("200"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_delay("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_delay("200ms"), Ok(Duration::from_millis(200)));
        for (bad, says) in [
            ("1.5", "write 1.5s or 1500"),
            ("99999999999999999999", "is too large"),
            ("1e3", "write 1000"),
            ("-1", "negative"),
            ("soon", "expected milliseconds"),
        ] {
            let err = parse_delay(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn units() {
        assert_eq!(parse_bytes("10MiB"), Ok(10 << 20));
        assert_eq!(parse_bytes("10m"), Ok(10 << 20));
        assert_eq!(parse_bytes("2KB"), Ok(2000));
        assert_eq!(parse_bytes("123"), Ok(123));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("99999999999G").is_err());
        assert_eq!(parse_secs("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("1e-9").is_err());
    }
}
