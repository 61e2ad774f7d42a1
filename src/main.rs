//! The `subsave` binary: parse the command line, start tracing, run the command, map the
//! outcome to an exit code (0 ok, 1 runtime failure, 2 usage or config error).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use subsave::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's allocator: the request and mail paths allocate and free many
/// small values per request or message (rows, JSON, template values), where glibc's
/// `malloc`, `free` and their consolidation took a fifth of the CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap lays them out.
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            eprintln!("{}", one_line(&error.render().to_string()));
            return ExitCode::from(2);
        }
    };
    // The demo prints its own report; its per-message logs would bury it.
    let default_filter = if matches!(cli.command, cli::Command::Demo(_)) {
        "warn"
    } else {
        "info,sqlx=error"
    };
    init_tracing(cli.log_format, default_filter);
    let mut stdout = std::io::stdout().lock();
    match cli::run(cli, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_closed_output() => ExitCode::SUCCESS,
        Err(error) => {
            // An error may quote what was typed or stored: shown escaped, never obeyed.
            eprintln!(
                "error: {}",
                subsave::core::text::printable(&format!("{error:#}"))
            );
            ExitCode::from(error.exit_code())
        }
    }
}

/// A usage error on one line, as every error is: clap's message and its indented details,
/// without the usage block and the "try --help" line after them.
fn one_line(rendered: &str) -> String {
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut line = message.join(" ");
    line.push_str(" (see --help)");
    subsave::core::text::printable(&line).into_owned()
}

fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        // Fields (the message first) at the top level, beside level, timestamp and target, as
        // log shippers expect.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
