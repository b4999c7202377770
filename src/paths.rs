//! Where tmux-audit keeps its files: the database under the XDG data
//! directory, the error log under the XDG state directory.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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

/// Creates `dir` (and its parents) if needed; a directory this creates is
/// 0700 whatever the umask.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to `path` (replacing it), private to the user: 0600
/// whatever the umask.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// Opens `path` for appending, creating it (and its directory) private to
/// the user: 0600 and 0700, whatever the umask.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    // The mode given at creation is masked by the umask; this one is not.
    if file.metadata()?.permissions().mode() & 0o777 != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}
