//! Where tmux-audit keeps its files: the database under the XDG data
//! directory, the error log and the recorders' FIFOs under the XDG state
//! directory, the cached hook scripts under the XDG cache directory. How they are
//! made and opened is `private_files.rs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use directories::ProjectDirs;

const DB_FILE: &str = "history.db";
const LOG_FILE: &str = "tmux-audit.log";

fn project_dirs() -> Result<ProjectDirs> {
    ProjectDirs::from("", "", "tmux-audit")
        .context("cannot find the home directory; set HOME or pass --db")
}

/// The database to use: `--db`, else `$TMUX_AUDIT_DB` when set and not
/// empty, else `$XDG_DATA_HOME/tmux-audit/history.db`.
///
/// A relative `TMUX_AUDIT_DB` is taken from the home directory: the hooks
/// run in whatever directory the shell is in, and a path taken from there
/// would start a new database in every directory visited. (`--db`, typed
/// by hand, is relative to the current directory, as paths on a command
/// line are.)
pub fn database(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    match std::env::var_os("TMUX_AUDIT_DB") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            if path.is_absolute() {
                return Ok(path);
            }
            let home = directories::BaseDirs::new()
                .context("TMUX_AUDIT_DB is a relative path, taken from the home directory, but there is none; set HOME or make TMUX_AUDIT_DB absolute")?;
            Ok(home.home_dir().join(path))
        }
        _ => default_database(),
    }
}

/// `$XDG_DATA_HOME/tmux-audit/history.db`, whatever `TMUX_AUDIT_DB` says.
pub fn default_database() -> Result<PathBuf> {
    Ok(project_dirs()?.data_dir().join(DB_FILE))
}

/// `$XDG_STATE_HOME/tmux-audit` (the data directory where the platform has
/// no state directory).
pub fn state_dir() -> Result<PathBuf> {
    let dirs = project_dirs()?;
    Ok(dirs.state_dir().unwrap_or(dirs.data_dir()).to_path_buf())
}

/// `$XDG_STATE_HOME/tmux-audit/recorders`: the FIFO and lock of each
/// shell's recorder.
pub fn recorders_dir() -> Result<PathBuf> {
    Ok(state_dir()?.join("recorders"))
}

/// `$XDG_CACHE_HOME/tmux-audit`: files made again when missing (the copy of
/// `init`'s hook script that the faster rc line reads).
pub fn cache_dir() -> Result<PathBuf> {
    Ok(project_dirs()?.cache_dir().to_path_buf())
}

/// The log file that record errors go to, one line each.
pub fn log_file() -> Result<PathBuf> {
    Ok(state_dir()?.join(LOG_FILE))
}
