//! `tmux-audit redact`: remove a secret from a recorded command, leaving a
//! chained trace entry that `verify` checks (see `db/redaction.rs`).

use std::io::{self, Write};

use anyhow::Result;

use super::{Exit, Run};
use crate::cli::Redact;
use tmux_audit::paths;

impl Run for Redact {
    fn run(&self) -> Result<Exit> {
        let pattern = self
            .pattern
            .as_deref()
            .map(|p| {
                regex::bytes::Regex::new(p).map_err(|err| {
                    // regex's message spans lines; its last says what is wrong.
                    let text = err.to_string();
                    let why = text
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim_start_matches("error: ");
                    anyhow::anyhow!("--pattern {p:?} is not a valid regular expression ({why})")
                })
            })
            .transpose()?;
        let reason = self.reason.as_deref().unwrap_or("no reason given");
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = super::open_for_reading(&path)?;
        let done = db.redact(self.id, pattern.as_ref(), reason)?;
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "record {}: {} replaced with [REDACTED]; trace entry {} (by {}, uid {}): {reason}",
            self.id,
            match (&pattern, done.replaced) {
                (None, _) => "the whole text".to_string(),
                (Some(_), 1) => "1 match".to_string(),
                (Some(_), n) => format!("{n} matches"),
            },
            done.trace_id,
            done.user,
            done.uid,
        )?;
        if !done.wal_emptied {
            writeln!(
                out,
                "note: another process holds the database open, so its write-ahead log ({}-wal) may still hold the old text until the next `tmux-audit flush`",
                path.display()
            )?;
        }
        Ok(Exit::Success)
    }
}
