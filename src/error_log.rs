//! The log file where errors that must not reach the terminal go: one line
//! each, with a hint, in the state directory.

use std::io::Write;

use chrono::{SecondsFormat, Utc};

use crate::paths;
use crate::private_files;

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
    // One write of the whole line with O_APPEND: lines from concurrent
    // processes do not interleave.
    private_files::append(&path)?.write_all(line.as_bytes())?;
    Ok(())
}
