//! The log file where errors that must not reach the terminal go: one line
//! each, with a hint, in the state directory.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use chrono::{SecondsFormat, Utc};

use crate::paths;

/// Appends `<time> <source>: <message>; hint: <hint>` to the log. Failing to
/// log is not reported anywhere: there is nowhere left to report it.
pub fn append(source: &str, message: &str, hint: &str) {
    let _ = try_append(source, message, hint);
}

fn try_append(source: &str, message: &str, hint: &str) -> anyhow::Result<()> {
    let path = paths::log_file()?;
    if let Some(dir) = path.parent() {
        crate::db::create_private_dir(dir)?;
    }
    let line = format!(
        "{} {source}: {}; hint: {hint}\n",
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        message.replace(['\n', '\r'], " "),
    );
    // One write of the whole line with O_APPEND: lines from concurrent
    // processes do not interleave.
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)?;
    // Masked by the umask when it was created; made private whatever it was.
    if file.metadata()?.permissions().mode() & 0o777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(line.as_bytes())?;
    Ok(())
}
