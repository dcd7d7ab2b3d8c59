//! The `scriptscrape` command: parse arguments, run, map the outcome to an
//! exit status.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use scriptscrape::run::lock::Busy;
use std::sync::Arc;

use scriptscrape::cli::Command;
use scriptscrape::config_file::first_paragraph;
use scriptscrape::input::Source;
use scriptscrape::run::stop::{Cause, Level, Stop};
use scriptscrape::run::terminal;
use scriptscrape::{Config, ExitStatus, cli::ArgsError, cli::Cli};

/// The commands besides a scrape, which a file of URLs could be named
/// like.
const COMMANDS: [&str; 7] = [
    "diff",
    "enqueue",
    "work",
    "collect",
    "jobs",
    "inventory",
    "serve",
];

fn main() -> ExitCode {
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("scriptscrape: internal error (please report): {info}");
    }));
    let parsed = match Cli::parse_args() {
        Ok(parsed) => parsed,
        Err(ArgsError::Usage(err)) if !err.use_stderr() => err.exit(), // --help, --version
        Err(ArgsError::Usage(err)) => {
            // clap's message is several lines with usage; its first
            // paragraph (the error and what it names: a missing <NEW>, the
            // possible values) is enough, on one line.
            let message = first_paragraph(&err.render().to_string());
            // The help to see is the command's, when one was given.
            let command = std::env::args()
                .skip(1)
                .find(|a| !a.starts_with('-'))
                .filter(|a| COMMANDS.contains(&a.as_str()));
            let help = match &command {
                Some(command) => format!("scriptscrape {command} --help"),
                None => "--help".to_owned(),
            };
            let rendering = match err.get(clap::error::ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::String(arg)) => {
                    scriptscrape::cli::is_render_option(arg)
                }
                _ => false,
            };
            let why = if rendering && command.as_deref() == Some("work") {
                // Rendering is a run's on one machine (README, "Running
                // on many machines"); a worker's users look for it here.
                "; workers fetch and parse only: --render and the browser's options belong \
                 to a run (scriptscrape URLS --render)"
            } else {
                ""
            };
            eprintln!("scriptscrape: {message}{why} (see {help})");
            return ExitCode::from(ExitStatus::Fatal.code());
        }
        Err(ArgsError::File(err)) => {
            eprintln!("scriptscrape: {err}");
            return ExitCode::from(ExitStatus::Fatal.code());
        }
    };
    if !parsed.cli.settings.print_config {
        for warning in &parsed.warnings {
            eprintln!("scriptscrape: {warning}");
        }
    }
    let cli = parsed.cli;
    if cli.command.is_some() && cli.settings.print_config {
        return print_config(&parsed.effective);
    }
    match cli.command {
        Some(Command::Diff(args)) => return diff(args),
        Some(Command::Enqueue(args)) => return enqueue(args),
        Some(Command::Work(args)) => return work(args),
        Some(Command::Collect(args)) => return collect(args),
        Some(Command::Jobs(args)) => return jobs(args),
        Some(Command::Inventory(args)) => return inventory(args),
        Some(Command::Serve(args)) => return serve(args),
        None => {}
    }
    if let Some(command) = cli
        .inputs
        .first()
        .filter(|i| COMMANDS.contains(&i.as_str()) && !std::path::Path::new(i).exists())
    {
        // clap reads options before a subcommand as a scrape's.
        eprintln!(
            "scriptscrape: '{command}' is a command: give its options after it \
             (scriptscrape {command} --help), or ./{command} for a file named {command}"
        );
        return ExitCode::from(ExitStatus::Fatal.code());
    }
    // After the check above: `--print-config work` would print a scrape's
    // settings, which is not what was asked.
    if cli.settings.print_config {
        return print_config(&parsed.effective);
    }
    if let Some(kind) = cli.generate {
        return match scriptscrape::cli::generate(kind, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            // The reader had enough (| head): not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scriptscrape: cannot write to standard output: {e}");
                ExitCode::from(ExitStatus::Fatal.code())
            }
        };
    }
    #[cfg(unix)]
    {
        // Best effort: if it fails, requests past the limit fail with
        // `connect` errors and say why.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    let quiet = cli.log.quiet;
    let max_failures = cli.outputs.max_failures;
    let crawl =
        cli.fetch.depth > 0 || cli.fetch.max_pages.is_some() || !cli.fetch.sitemaps.is_empty();
    let bar = terminal::init(
        quiet,
        cli.log.verbose,
        cli.log.log_format,
        &cli_sources(&cli),
        crawl,
        cli.shard,
    );
    let stop = Stop::new();
    let result = Config::from_cli(cli).and_then(|config| {
        if config.fetch.insecure {
            tracing::warn!("warning: --insecure: TLS certificates are not checked");
        }
        #[cfg(unix)]
        stop_on_signals(&stop, config.grace)?;
        if let Some(bar) = &bar {
            bar.start();
        }
        let progress = bar.clone().map(|b| b as Arc<dyn terminal::Progress>);
        scriptscrape::run_until(&config, &stop, progress)
    });
    if let Some(bar) = &bar {
        bar.finish();
    }
    match result {
        Ok(summary) => {
            tracing::info!(target: terminal::SUMMARY_TARGET, "{summary}");
            let written = summary.pages_ok + summary.pages_failed();
            if written == 0 && !summary.output_closed && summary.stopped.is_none() {
                match summary.shard.filter(|_| summary.other_shards > 0) {
                    Some(shard) => tracing::warn!(
                        "warning: the input held no URLs of this shard's sites (--shard {shard})"
                    ),
                    None => tracing::warn!("warning: the input held no URLs"),
                }
            }
            // Stopped while waiting for the lock: nothing was started.
            if summary.stopped.is_some() && written + summary.unfinished > 0 {
                tracing::warn!(
                    "the run did not complete: file outputs hold its rows under their .part \
                     names, and the previous files are unchanged"
                );
            }
            ExitCode::from(summary.exit_status(max_failures).code())
        }
        Err(err) => fatal(&err),
    }
}

/// `--print-config`: the settings, on standard output.
fn print_config(effective: &scriptscrape::config_file::Effective) -> ExitCode {
    use std::io::Write as _;
    match write!(std::io::stdout().lock(), "{effective}") {
        Ok(()) => ExitCode::SUCCESS,
        // The reader had enough (| head): not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scriptscrape: cannot write to standard output: {e}");
            ExitCode::from(ExitStatus::Fatal.code())
        }
    }
}

/// `scriptscrape diff`: exit 0 without changes, 1 with, 2 when the runs
/// could not be compared.
fn diff(args: scriptscrape::cli::DiffArgs) -> ExitCode {
    let quiet = args.quiet;
    let to_terminal_as_text = args.output.as_deref().is_none_or(|o| o.as_os_str() == "-")
        && args.format == scriptscrape::diff::write::DiffFormat::Text;
    let outcome = scriptscrape::config::diff_config(args)
        .and_then(|c| scriptscrape::diff::run(&c).map(|diff| (diff, c.fail_on)));
    match outcome {
        Ok((diff, fail_on)) => {
            // The text format is its own summary, warnings included.
            if !quiet && !to_terminal_as_text {
                for warning in &diff.warnings {
                    eprintln!("scriptscrape diff: warning: {warning}");
                }
                eprintln!(
                    "scriptscrape diff: {}",
                    scriptscrape::diff::write::summary(&diff.changes, diff.pages)
                );
            }
            ExitCode::from(u8::from(diff.found(&fail_on)))
        }
        Err(err) => {
            // One line, even for a regex error's pointer diagram.
            let text = scriptscrape::error::without_os_error_numbers(&format!("{err:#}"));
            let words: Vec<&str> = text.split_whitespace().collect();
            eprintln!("scriptscrape diff: {}", words.join(" "));
            ExitCode::from(ExitStatus::Fatal.code())
        }
    }
}

fn inventory(args: scriptscrape::cli::InventoryArgs) -> ExitCode {
    let quiet = args.quiet;
    let outcome =
        scriptscrape::config::inventory_config(args).and_then(|c| scriptscrape::inventory::run(&c));
    match outcome {
        Ok(report) => {
            if !quiet {
                for warning in &report.warnings {
                    eprintln!("scriptscrape inventory: warning: {warning}");
                }
                eprintln!("scriptscrape inventory: {}", report.summary());
            }
            let complete = report.unauthorised() == 0 && report.not_inventoried() == 0;
            ExitCode::from(u8::from(!complete))
        }
        Err(err) => {
            let text = scriptscrape::error::without_os_error_numbers(&format!("{err:#}"));
            let words: Vec<&str> = text.split_whitespace().collect();
            eprintln!("scriptscrape inventory: {}", words.join(" "));
            ExitCode::from(ExitStatus::Fatal.code())
        }
    }
}

/// Starts logging for a queue command (`-q` with `-v` was settled when
/// the command line was read); `Err` is the exit status of a bad command
/// line.
fn queue_logs(log: &scriptscrape::cli::LogArgs) -> Result<(), ExitCode> {
    terminal::init_logs(log.quiet, log.verbose, log.log_format);
    Ok(())
}

/// A fatal error: one line, shown even with --quiet; exit 2 (75 for a
/// held lock).
fn fatal(err: &anyhow::Error) -> ExitCode {
    tracing::error!(
        "{}",
        scriptscrape::error::without_os_error_numbers(&format!("{err:#}"))
    );
    let status = if err.downcast_ref::<Busy>().is_some() {
        ExitStatus::Busy
    } else {
        ExitStatus::Fatal
    };
    ExitCode::from(status.code())
}

/// The exit status of a command a signal stopped, or success.
fn stopped_or_ok(cause: Option<Cause>) -> ExitCode {
    match cause {
        Some(Cause::Interrupt) => ExitCode::from(ExitStatus::Interrupted.code()),
        Some(Cause::Terminate) => ExitCode::from(ExitStatus::Terminated.code()),
        None => ExitCode::SUCCESS,
    }
}

/// The logs of a command that fetches (work, serve), and as many open
/// files as the system allows: as for a scrape, each request in flight
/// holds a socket.
fn fetching_logs(log: &scriptscrape::cli::LogArgs) -> Result<(), ExitCode> {
    queue_logs(log)?;
    #[cfg(unix)]
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    Ok(())
}

/// `scriptscrape serve`: runs until SIGINT or SIGTERM, then exits as an
/// interrupted run does.
fn serve(args: scriptscrape::cli::ServeArgs) -> ExitCode {
    if let Err(code) = fetching_logs(&args.log) {
        return code;
    }
    let stop = Stop::new();
    let outcome = (|| {
        let token = scriptscrape::serve::Settings::token(
            args.listen,
            args.token_file.as_ref(),
            args.no_auth,
        )?;
        let (config, allow_private) = Config::for_serve(args.fetch, args.log, args.max_depth)?;
        if config.fetch.insecure {
            tracing::warn!("warning: --insecure: TLS certificates are not checked");
        }
        #[cfg(unix)]
        stop_on_signals(&stop, config.grace)?;
        let settings = scriptscrape::serve::Settings {
            listen: args.listen,
            token,
            allow_private,
            // The parsers' ranges keep them far below usize's.
            max_urls: usize::try_from(args.max_urls).unwrap_or(usize::MAX),
            max_pending: usize::try_from(args.max_pending).unwrap_or(usize::MAX),
            client_header: args.client_header,
            config,
        };
        scriptscrape::serve::serve(settings, &stop)
    })();
    match outcome {
        Ok(()) => stopped_or_ok(stop.cause()),
        Err(e) => fatal(&e),
    }
}

/// `scriptscrape enqueue`: exit 0 once the URLs are in the job.
fn enqueue(args: scriptscrape::cli::EnqueueArgs) -> ExitCode {
    use scriptscrape::queue::enqueue::{EnqueueConfig, enqueue};
    if let Err(code) = queue_logs(&args.log) {
        return code;
    }
    let stop = Stop::new();
    let outcome = (|| {
        let sources = if args.inputs.is_empty() {
            if !std::io::stdin().is_terminal() {
                vec![Source::Stdin]
            } else if args.close {
                Vec::new()
            } else {
                anyhow::bail!("no input: name a file of URLs, pipe them in, or give --close");
            }
        } else {
            args.inputs.iter().map(|i| Source::from_arg(i)).collect()
        };
        let config = EnqueueConfig {
            redis: args.redis.redis.clone(),
            job: scriptscrape::queue::Job::new(&args.job.job)?,
            sources,
            strip_query: args
                .strip_query
                .iter()
                .map(|g| scriptscrape::crawl::normalize::Glob::new(g))
                .collect(),
            close: args.close,
            expect: args.expect,
        };
        #[cfg(unix)]
        stop_on_signals(&stop, std::time::Duration::ZERO)?;
        enqueue(&config, &stop)
    })();
    match outcome {
        Ok(done) => {
            tracing::info!(target: terminal::SUMMARY_TARGET, "enqueue: {done}");
            stopped_or_ok(stop.cause())
        }
        Err(err) => fatal(&err),
    }
}

/// `scriptscrape work`: exit 0 once the job is closed and drained.
fn work(args: scriptscrape::cli::WorkArgs) -> ExitCode {
    use scriptscrape::queue::worker::WorkSettings;
    if let Err(code) = fetching_logs(&args.log) {
        return code;
    }
    let stop = Stop::new();
    let outcome = (|| {
        let settings = WorkSettings {
            redis: args.redis.redis.clone(),
            job: scriptscrape::queue::Job::new(&args.job.job)?,
            claim_idle: args.claim_idle,
            max_deliveries: args.max_deliveries,
            max_results: args.max_results,
        };
        let config = Config::for_work(args.fetch, args.log)?;
        if config.fetch.insecure {
            tracing::warn!("warning: --insecure: TLS certificates are not checked");
        }
        #[cfg(unix)]
        stop_on_signals(&stop, config.grace)?;
        scriptscrape::pipeline::work(&config, &settings, &stop)
    })();
    match outcome {
        Ok(worked) => {
            tracing::info!(target: terminal::SUMMARY_TARGET, "{worked}");
            stopped_or_ok(worked.stopped)
        }
        Err(err) => fatal(&err),
    }
}

/// `scriptscrape collect`: the exit status of a local run of the job.
fn collect(args: scriptscrape::cli::CollectArgs) -> ExitCode {
    if let Err(code) = queue_logs(&args.log) {
        return code;
    }
    let max_failures = args.outputs.max_failures;
    let stop = Stop::new();
    let outcome = (|| {
        let job = scriptscrape::queue::Job::new(&args.job.job)?;
        let config = Config::for_collect(args.outputs, args.inline_text, args.log)?;
        #[cfg(unix)]
        stop_on_signals(&stop, config.grace)?;
        scriptscrape::queue::collect::collect(&config, &args.redis.redis, &job, &stop, None)
    })();
    match outcome {
        Ok(summary) => {
            tracing::info!(target: terminal::SUMMARY_TARGET, "{summary}");
            if summary.stopped.is_some() {
                tracing::warn!(
                    "collect did not complete: file outputs hold its rows under their .part \
                     names; run it again with --resume to go on"
                );
            }
            ExitCode::from(summary.exit_status(max_failures).code())
        }
        Err(err) => fatal(&err),
    }
}

/// `scriptscrape jobs`: the jobs and their counts, or one deleted.
fn jobs(args: scriptscrape::cli::JobsArgs) -> ExitCode {
    use scriptscrape::queue::jobs;
    terminal::init_logs(false, 0, terminal::LogFormat::Text);
    let outcome = match &args.delete {
        Some(name) => jobs::delete(&args.redis.redis, name, args.force)
            .map(|()| eprintln!("scriptscrape: job {name:?} deleted")),
        None => jobs::list(&args.redis.redis, &mut std::io::stdout().lock()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fatal(&err),
    }
}

/// The inputs as the progress bar needs them, before the command line is
/// checked (no INPUT means standard input).
fn cli_sources(cli: &Cli) -> Vec<Source> {
    if cli.inputs.is_empty() {
        return vec![Source::Stdin];
    }
    cli.inputs.iter().map(|i| Source::from_arg(i)).collect()
}

/// After a stop's grace period, how long writing the pages that finished
/// may take before the process ends anyway.
#[cfg(unix)]
const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The first SIGINT or SIGTERM drains the run (--grace), the second stops
/// it after the page being written. Should neither end the process (an
/// output blocked on a stalled pipe or a FIFO without a reader), it exits
/// [`STOP_MARGIN`] after the grace period, or 3 s after the second signal.
#[cfg(unix)]
fn stop_on_signals(stop: &Stop, grace: std::time::Duration) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use signal_hook::consts::{SIGINT, SIGTERM};

    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    let stop = stop.clone();
    std::thread::Builder::new()
        .name("scriptscrape-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let cause = if signal == SIGINT {
                    Cause::Interrupt
                } else {
                    Cause::Terminate
                };
                let code = move |stop: &Stop| match stop.cause().unwrap_or(cause) {
                    Cause::Interrupt => ExitStatus::Interrupted,
                    Cause::Terminate => ExitStatus::Terminated,
                };
                match stop.request(cause) {
                    Level::Draining => {
                        if grace.is_zero() {
                            tracing::warn!("{}: stopping (--grace 0)", cause.name())
                        } else {
                            tracing::warn!(
                                "{}: finishing requests in flight; signal again to stop now",
                                cause.name()
                            )
                        }
                        // The run checks the stop between pages; should it
                        // be blocked instead (opening a FIFO no one reads,
                        // writing to a stalled pipe), one signal still
                        // ends the process once the grace period and the
                        // writing of what finished in it are over.
                        let stop = stop.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(grace + STOP_MARGIN);
                            tracing::warn!("{}: stopped while blocked on an output", cause.name());
                            std::process::exit(code(&stop).code().into());
                        });
                    }
                    _ => {
                        std::thread::sleep(std::time::Duration::from_secs(3));
                        std::process::exit(code(&stop).code().into());
                    }
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}
