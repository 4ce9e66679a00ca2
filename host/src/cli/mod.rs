//! The command line: argument parsing, output, exit codes.
//!
//! Results and `--json` documents go to stdout; progress, logs and guest
//! output go to stderr. Every command and mode ends with one of these
//! exit codes (the README has the same table):
//!
//! | code | meaning | what to do |
//! |---|---|---|
//! | 0 | everything was delivered | — |
//! | 1 | stopped on retryable failures (`retry` errors, timeouts, traps) after the attempts ran out | run the same command again: it resumes |
//! | 2 | usage, input or configuration error; nothing was loaded, unless the message says how many rows were (a bad line found while earlier jobs were loading) | fix the command, the input or the settings; the command after the fix resumes a pending package |
//! | 3 | terminal failures: jobs are in `failed_jobs/` (also when a rerun finds its input's package with failed jobs) | fix the sink, then `host retry-failed` and the same command |
//! | 130 | interrupted (Ctrl-C, SIGTERM); every confirmed batch is recorded | run the same command again |
//!
//! When several apply, the highest of 3 and 1 wins, and 130 wins over both.
//! Codes changed in this release: a terminal failure was 1, it is 3.

/// `println!` that never panics: a closed stdout (`host status | head -1`)
/// ends the output quietly, and the command goes on to its own exit code.
macro_rules! outln {
    () => {
        $crate::cli::write_out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

/// Writes one line to stdout, ignoring a closed pipe (see `outln!`).
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
}

mod cache;
mod common;
mod flags;
mod inspect;
mod load;
mod new;
mod packages;
mod progress;
mod run;
mod status;
mod test_sink;
mod wit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::stop::Cancel;

/// Exit code when the load stopped on retryable failures (a rerun resumes).
pub const EXIT_LOAD_FAILED: u8 = 1;
/// Exit code for usage, input and configuration errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when jobs failed terminally (fixed with `host retry-failed`).
pub const EXIT_TERMINAL: u8 = 3;

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
    /// Pending packages of the pipeline are finished first; input that was
    /// already loaded is skipped (see --force).
    Run(run::RunArgs),
    /// Normalize input into a pending package without loading it, and show
    /// the tables and columns a sink would get (a dry run; `load` delivers it).
    Normalize(run::RunArgs),
    /// Load the pipeline's pending packages; never reads input.
    Load(load::LoadArgs),
    /// Show pending packages: rows delivered and left per job, last errors.
    Status(status::StatusArgs),
    /// Compile a sink ahead of time into the compile cache.
    Compile(cache::CompileArgs),
    /// Manage the compile cache.
    Cache(cache::CacheArgs),
    /// Show what a sink asks for: its settings, config keys and capabilities.
    Inspect(inspect::InspectArgs),
    /// List a pipeline's pending, loaded and failed packages.
    Packages(packages::PackagesArgs),
    /// Discard a pipeline's pending packages.
    DropPending(packages::DropPendingArgs),
    /// Put failed jobs back so the next load retries them.
    RetryFailed(packages::RetryFailedArgs),
    /// Write the contract this binary implements (WIT) for a sink project.
    Wit(wit::WitArgs),
    /// Make a sink project that builds with one command and passes
    /// `host test-sink` out of the box (Rust so far).
    New(new::NewArgs),
    /// Check a sink against the contract: types at their edges, batch
    /// sizes, replays, fresh instances, spec(), keys, latency. Exit 1 when
    /// a check fails.
    TestSink(test_sink::TestSinkArgs),
    /// Print a shell completion script, e.g. `host completions bash > /etc/bash_completion.d/host`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit code when the user interrupted the load.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit code of a load (see the table at the top of this module).
pub fn exit_code(report: &crate::load::LoadReport) -> u8 {
    if report.interrupted {
        EXIT_INTERRUPTED
    } else if report.terminal_failures().next().is_some() {
        EXIT_TERMINAL
    } else if report.ok() {
        0
    } else {
        EXIT_LOAD_FAILED
    }
}

/// First Ctrl-C or SIGTERM: request the stop of `cancel` (stop handing
/// out batches, finish cleanly). A second one exits at once with 130.
fn install_signal_handlers(cancel: &Cancel) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = cancel.flag();
    for sig in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, i32::from(EXIT_INTERRUPTED), stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
}

/// Parses the command line, runs the command and maps the result to an
/// exit code. Errors print as one message with their cause chain.
pub fn main() -> ExitCode {
    // A bug of ours must not greet a user with a Rust backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "error: internal error{location}: {message}\nhint: this is a bug in host; please report it with the command you ran"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    // Only commands that load stop cleanly on the first signal; for the
    // others the default (exit at once) is right.
    let cancel = Cancel::new();
    if matches!(cli.command, Command::Run(_) | Command::Normalize(_) | Command::Load(_) | Command::TestSink(_)) {
        install_signal_handlers(&cancel);
    }
    let result = match cli.command {
        Command::Run(args) => args.execute(cli.quiet, &cancel),
        Command::Normalize(args) => args.execute_normalize_only(cli.quiet, &cancel),
        Command::Load(args) => args.execute(cli.quiet, &cancel),
        Command::Status(args) => args.execute(),
        Command::Compile(args) => args.execute(),
        Command::Cache(args) => args.execute(),
        Command::Inspect(args) => args.execute(),
        Command::Packages(args) => args.execute(),
        Command::DropPending(args) => args.execute(),
        Command::RetryFailed(args) => args.execute(),
        Command::Wit(args) => args.execute(),
        Command::New(args) => args.execute(),
        Command::TestSink(args) => args.execute(&cancel),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "host", &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &script);
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if cancel.is_cancelled() => {
            // A stop while jobs were loading says itself what was delivered.
            let partly = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<crate::pipeline::PipelineError>(),
                    Some(crate::pipeline::PipelineError::NormalizeStopped { .. })
                )
            });
            if partly {
                eprintln!("Interrupted: {e:#}");
            } else {
                eprintln!("Interrupted: {e:#}. Nothing was packaged; run the same command again.");
            }
            ExitCode::from(EXIT_INTERRUPTED)
        }
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
