//! Where tmux-audit keeps its files: the database under the XDG data
//! directory, the error log under the XDG state directory. How they are
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
pub fn database(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    match std::env::var_os("TMUX_AUDIT_DB") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
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

/// The log file that record errors go to, one line each.
pub fn log_file() -> Result<PathBuf> {
    Ok(state_dir()?.join(LOG_FILE))
}
