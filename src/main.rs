//! The `scriptscrape` command: parse arguments, run, map the outcome to an
//! exit status.

use std::process::ExitCode;

use clap::Parser as _;
use scriptscrape::{Config, ExitStatus, cli::Cli};

fn main() -> ExitCode {
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("scriptscrape: internal error (please report): {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            // clap's message is several lines with usage; one is enough.
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("scriptscrape: {first} (see --help)");
            return ExitCode::from(ExitStatus::Fatal.code());
        }
    };
    #[cfg(unix)]
    {
        // Best effort: if it fails, requests past the limit fail with
        // `connect` errors and say why.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    let quiet = cli.quiet;
    let result = Config::from_cli(cli).and_then(|config| {
        if config.fetch.insecure {
            eprintln!("scriptscrape: warning: --insecure: TLS certificates are not checked");
        }
        scriptscrape::run(&config)
    });
    match result {
        Ok(summary) => {
            if !quiet {
                eprintln!("scriptscrape: {summary}");
                if summary.pages_ok + summary.pages_failed() == 0 && !summary.output_closed {
                    eprintln!("scriptscrape: warning: the input held no URLs");
                }
            }
            ExitCode::from(summary.exit_status().code())
        }
        Err(err) => {
            eprintln!("scriptscrape: {err:#}");
            ExitCode::from(ExitStatus::Fatal.code())
        }
    }
}
