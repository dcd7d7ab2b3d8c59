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
    let cli = Cli::parse();
    #[cfg(unix)]
    {
        // Best effort: if it fails, requests past the limit fail with
        // `connect` errors and say why.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    let quiet = cli.quiet;
    let result = Config::from_cli(cli).and_then(|config| scriptscrape::run(&config));
    match result {
        Ok(summary) => {
            if !quiet {
                eprintln!("scriptscrape: {summary}");
            }
            ExitCode::from(summary.exit_status().code())
        }
        Err(err) => {
            eprintln!("scriptscrape: {err:#}");
            ExitCode::from(ExitStatus::Fatal.code())
        }
    }
}
