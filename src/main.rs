//! tmux-audit: an audit log of every command run in a shell, with its tmux
//! context, kept in SQLite.
//!
//! `main` only parses the command line, runs the subcommand and turns the
//! outcome into an exit code; each subcommand lives in `cmd/`, and all
//! the rest in the library (`lib.rs`).

mod cli;
mod cmd;

use std::io::{self, Write};
use std::process::ExitCode;

use crate::cli::Cli;
use crate::cmd::{Exit, Run};

fn main() -> ExitCode {
    let command = match Cli::parse_command() {
        Ok(command) => command,
        Err(err) => return usage_error(err),
    };
    match command.run() {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::NoMatch | Exit::Tampered | Exit::Problems | Exit::Cancelled) => ExitCode::from(1),
        Ok(Exit::Interrupted) => ExitCode::from(130),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, the whole chain of context: "error: a: b: c".
            let _ = writeln!(io::stderr(), "tmux-audit: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Help and version as clap prints them; a usage error as one line, like
/// every other error, with exit status 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    // clap's message, its list of possible values and its tip, on one line.
    let text = err.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .map(|l| l.trim_start_matches("error: "))
        .collect();
    let _ = writeln!(
        io::stderr(),
        "tmux-audit: error: {} (see --help)",
        parts.join("; ")
    );
    ExitCode::from(2)
}

/// A reader that went away (`tmux-audit search | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
