//! One module per subcommand, each implementing [`Run`].

mod capture;
mod central;
mod config;
mod docs;
mod doctor;
mod export;
mod flush;
mod forward;
mod import;
mod init;
mod pick;
mod prune;
mod record;
mod recorder;
mod redact;
mod replay;
mod report;
mod search;
mod sessions;
mod show;
mod sync;
mod timeline;
mod tmux_event;
mod verify;

use std::path::Path;

use anyhow::Result;
use tmux_audit::db::{Database, DbError};
use tmux_audit::filter::Filters;
use tmux_audit::lifecycle;
use tmux_audit::spool;

use crate::cli::Command;

/// How a subcommand that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// A search that found nothing: exit status 1, like grep.
    NoMatch,
    /// `verify` found the chain broken: exit status 1.
    Tampered,
    /// `doctor` found a problem: exit status 1.
    Problems,
    /// The picker was left with Esc: exit status 1.
    Cancelled,
    /// The picker was left with Ctrl-C: exit status 130, as a shell gives
    /// a command ended by SIGINT.
    Interrupted,
}

/// SQLite's own errors name no file and no fix ("file is not a
/// database"): they get both.
fn name_the_file(path: &Path, err: anyhow::Error) -> anyhow::Error {
    match err.downcast_ref::<DbError>() {
        Some(db_err @ DbError::Sqlite(_)) => {
            anyhow::anyhow!("{}: {db_err}; {}", path.display(), db_err.hint())
        }
        _ => err,
    }
}

/// Reaps every child that has ended, without waiting for the others: for
/// a long-lived process (a shell's recorder, a pane's capture) whose
/// detached merges and syncs would otherwise stay zombies for as long as
/// it lives. Only for a process in which nothing else waits for a child.
pub(crate) fn reap_children() {
    // SAFETY: waitpid with a null status pointer and WNOHANG only reaps.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// The database at `path` for a reader, the spool merged first; records
/// that still wait are told on stderr, since what the reader prints then
/// lacks them.
pub fn open_for_reading(path: &Path) -> Result<Database> {
    let (db, waiting) = spool::open_merged(path).map_err(|err| name_the_file(path, err))?;
    if let Some(waiting) = waiting {
        eprintln!("tmux-audit: warning: {waiting}");
    }
    Ok(db)
}

/// `filters` with the running tmux server's session of the name
/// `--session` gives, if one has it (see [`Filters::live_session`]).
pub fn with_live_session(mut filters: Filters) -> Result<Filters> {
    if let Some(name) = filters.session_name() {
        filters.live_session = lifecycle::hooks::live_session(name)?
            .map(|live| ((live.socket, live.server_pid), live.id));
    }
    Ok(filters)
}

pub trait Run {
    fn run(&self) -> Result<Exit>;
}

impl Run for Command {
    fn run(&self) -> Result<Exit> {
        match self {
            Command::Init(cmd) => cmd.run(),
            Command::Record(cmd) => cmd.run(),
            Command::RecordLater(cmd) => cmd.run(),
            Command::Recorder(cmd) => cmd.run(),
            Command::MergeLater(cmd) => cmd.run(),
            Command::TmuxEvent(cmd) => cmd.run(),
            Command::Capture(cmd) => cmd.run(),
            Command::Search(cmd) => cmd.run(),
            Command::Pick(cmd) => cmd.run(),
            Command::Export(cmd) => cmd.run(),
            Command::Show(cmd) => cmd.run(),
            Command::Sessions(cmd) => cmd.run(),
            Command::Timeline(cmd) => cmd.run(),
            Command::Replay(cmd) => cmd.run(),
            Command::Report(cmd) => cmd.run(),
            Command::Verify(cmd) => cmd.run(),
            Command::Anchor(cmd) => cmd.run(),
            Command::Redact(cmd) => cmd.run(),
            Command::Import(cmd) => cmd.run(),
            Command::Prune(cmd) => cmd.run(),
            Command::Forward(cmd) => cmd.run(),
            Command::Doctor(cmd) => cmd.run(),
            Command::Flush(cmd) => cmd.run(),
            Command::Sync(cmd) => cmd.run(),
            Command::Central(cmd) => cmd.run(),
            Command::Config(cmd) => cmd.run(),
            Command::Completions(cmd) => cmd.run(),
            Command::Man(cmd) => cmd.run(),
        }
    }
}
