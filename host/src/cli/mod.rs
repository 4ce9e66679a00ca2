//! The command line: argument parsing, output, exit codes.
//!
//! Results and `--json` documents go to stdout; progress, logs and guest
//! output go to stderr. Exit codes: 0 ok, 1 the load failed (jobs failed or
//! retries exhausted), 2 usage, input or configuration error.

mod run;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when the load itself failed.
pub const EXIT_LOAD_FAILED: u8 = 1;
/// Exit code for usage, input and configuration errors.
pub const EXIT_USAGE: u8 = 2;

/// Load JSON data into a WebAssembly sink, the way dlt's `@dlt.destination` does.
#[derive(Debug, Parser)]
#[command(name = "host", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print nothing but errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Normalize input into a load package and load it into a sink.
    ///
    /// Example: host run --component print.wasm --input events.jsonl
    Run(run::RunArgs),
}

/// Parses the command line, runs the command and maps the result to an
/// exit code. Errors print as one message with their cause chain.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Run(args) => args.execute(cli.quiet),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
