//! Records (commands and tmux events) that could not be stored when their command finished (the
//! database read-only, damaged, on a full disk, or locked for longer than
//! `record-later` waits) are kept here, one JSON line each, in
//! `$XDG_STATE_HOME/tmux-audit/spool.jsonl`, and moved into the database by
//! the next `record` that can write to it. Every writer and the merger hold
//! an exclusive lock on the file; a record merged twice (a crash between
//! the commit and emptying the file) is recognised by its shell session and
//! number and stored once.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::db::{Database, DbError};
use crate::paths;
use crate::record::Entry;

const FILE: &str = "spool.jsonl";

/// `{"recorded_at_us": …, "record": {…}}` or `{…, "tmux_event": {…}}`.
#[derive(Serialize, Deserialize)]
struct Line {
    recorded_at_us: i64,
    #[serde(flatten)]
    entry: Entry,
}

pub fn path() -> Result<PathBuf> {
    Ok(paths::state_dir()?.join(FILE))
}

/// Appends entries to the spool, a line each.
pub fn keep(entries: &[Entry], recorded_at_us: i64) -> Result<PathBuf> {
    let path = path()?;
    let mut lines = Vec::new();
    for entry in entries {
        serde_json::to_writer(
            &mut lines,
            &Line {
                recorded_at_us,
                entry: entry.clone(),
            },
        )?;
        lines.push(b'\n');
    }
    let mut file = paths::open_private_append(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.lock()?;
    file.write_all(&lines)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Moves every spooled entry into `db`; returns how many were new. Cheap
/// when there is nothing to merge: one `stat`.
pub fn merge(db: &mut Database) -> Result<usize> {
    let path = path()?;
    if fs::metadata(&path).map_or(true, |m| m.len() == 0) {
        return Ok(0);
    }
    let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut lines = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        // A line cut short (disk full while writing it) is reported and
        // skipped, not allowed to keep the others out.
        match serde_json::from_str::<Line>(line) {
            Ok(line) => lines.push(line),
            Err(err) => crate::error_log::append(
                "spool",
                &format!(
                    "line {} of {} is not a record ({err}); it was dropped",
                    number + 1,
                    path.display()
                ),
                "the disk may have been full when it was written",
            ),
        }
    }
    let merged = db
        .insert_all(lines.iter().map(|l| (&l.entry, l.recorded_at_us)))
        .map_err(|err: DbError| anyhow::Error::new(err))
        .context("cannot merge the spool")?;
    file.set_len(0)?;
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_written_before_tmux_events_existed_still_read_as_commands() {
        // A spool line as tmux-audit wrote it before schema 7.
        let old = r#"{"recorded_at_us":5,"record":{"command":"ls","command_raw":[255],"exit_status":0,
            "started_at_us":1,"duration_us":2,"cwd":"/","cwd_raw":null,"user":"u","uid":1,
            "login_uid":null,"sudo_user":null,"host":"h","shell":"bash","shell_session":"s","seq":3,
            "tty":null,"ssh_connection":null,"tmux_socket":null,"tmux_server_pid":null,
            "tmux_session_id":null,"tmux_pane":null,"redacted":true}}"#;
        let line: Line = serde_json::from_str(old).unwrap();
        assert_eq!(line.recorded_at_us, 5);
        let Entry::Command(record) = line.entry else {
            panic!("not a command");
        };
        assert_eq!((record.seq, record.redacted), (3, true));
        assert_eq!(record.command_raw.as_deref(), Some(&[255][..]));
        // And what is written now reads back the same.
        let again: Line = serde_json::from_str(
            &serde_json::to_string(&Line {
                recorded_at_us: 5,
                entry: Entry::Command(record.clone()),
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(again.entry, Entry::Command(record));
    }
}
