//! The log file where errors that must not reach the terminal go: one line
//! each, with a hint, in the state directory. It is kept under
//! [`MAX_BYTES`]: past that, it becomes `tmux-audit.log.1` (replacing the
//! one before) and a new log begins.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};

use crate::paths;
use crate::private_files;

/// The log is rotated once it is this large (1 MiB): thousands of lines.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Appends `<time> <source>: <message>; hint: <hint>` to the log. Failing to
/// log is not reported anywhere: there is nowhere left to report it.
pub fn append(source: &str, message: &str, hint: &str) {
    let _ = try_append(source, message, hint);
}

fn try_append(source: &str, message: &str, hint: &str) -> anyhow::Result<()> {
    let path = paths::log_file()?;
    let line = format!(
        "{} {source}: {}; hint: {hint}\n",
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        message.replace(['\n', '\r'], " "),
    );
    let mut file = private_files::append(&path)?;
    if file.metadata()?.len() >= MAX_BYTES {
        file = rotate(&path, file)?;
    }
    // One write of the whole line with O_APPEND: lines from concurrent
    // processes do not interleave.
    file.write_all(line.as_bytes())?;
    Ok(())
}

/// The old log becomes `<log>.1`; the new one, opened. Under the old
/// log's lock, so that of processes finding it full at once, one moves it
/// and the others write to the new one.
fn rotate(path: &Path, full: File) -> std::io::Result<File> {
    full.lock()?;
    let still_there = fs::symlink_metadata(path).is_ok_and(|now| {
        full.metadata()
            .is_ok_and(|m| (m.dev(), m.ino()) == (now.dev(), now.ino()))
    });
    if still_there {
        fs::rename(path, rotated(path))?;
    }
    private_files::append(path)
}

/// Where the log before the current one is kept.
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".1");
    PathBuf::from(name)
}
