//! `tmux-audit record`: the per-command path, run by the shell hooks after
//! every command. It reads the command text from stdin, the context from the
//! environment, and stores one record (see `store.rs`: nothing here may
//! print to the terminal or make the prompt wait). `record-later` is the
//! detached process that waits for a database that stayed locked.

use std::io::{self, IsTerminal, Read};
use std::os::unix::ffi::OsStringExt;

use anyhow::{bail, Context as _, Result};

use super::{Exit, Run};
use crate::cli::{Record, RecordLater};
use crate::config::{Config, Redact};
use crate::context::Context;
use crate::error_log;
use crate::paths;
use crate::record::{CommandRecord, Entry, Finished, Timing};
use crate::redact;
use crate::store;
use crate::text::StoredText;

impl Run for Record {
    fn run(&self) -> Result<Exit> {
        store::log_panics("record");
        self.record().inspect_err(|err| store::log("record", err))
    }
}

impl Run for RecordLater {
    fn run(&self) -> Result<Exit> {
        store::log_panics("record");
        self.record_later()
            .inspect_err(|err| store::log("record", err))
    }
}

impl Record {
    fn record(&self) -> Result<Exit> {
        let finished_us = store::now_us();
        let command = if self.text_unavailable {
            Vec::new()
        } else {
            read_command()?
        };
        // Before the record is written anywhere: database, spool or hand-over.
        let (command, redacted) = match redact_secrets(&command) {
            Some(redacted) => (redacted, true),
            None => (command, false),
        };
        let finished = Finished {
            shell: self.shell,
            session: self.session.clone(),
            seq: self.seq,
            exit_status: self.exit_status,
            timing: match (self.start_us, self.duration_ms) {
                (Some(start_us), _) => Timing::Span {
                    start_us,
                    end_us: self.end_us.unwrap_or(finished_us),
                },
                (None, Some(duration_ms)) => Timing::Lasted { duration_ms },
                (None, None) => Timing::Unknown,
            },
            command: StoredText::from_bytes(command),
            redacted,
        };
        let cwd = self
            .cwd
            .clone()
            .map(|cwd| StoredText::from_bytes(cwd.into_vec()));
        let record = CommandRecord::new(finished, Context::capture(cwd), finished_us);
        let path = paths::database(self.db.path.as_deref())?;
        store::save(&path, &[Entry::Command(record)])
    }
}

impl RecordLater {
    fn record_later(&self) -> Result<Exit> {
        let mut json = Vec::new();
        io::stdin()
            .lock()
            .read_to_end(&mut json)
            .context("cannot read the handed-over record")?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&json).context("the handed-over records are not valid")?;
        let path = paths::database(self.db.path.as_deref())?;
        store::save_waiting(&path, &entries, self.recorded_at_us)
    }
}

/// The command with likely secrets replaced, or None when it holds none.
/// A broken config file or pattern never costs the record nor turns the
/// built-in patterns off: it is logged, and the rest still applies.
fn redact_secrets(command: &[u8]) -> Option<Vec<u8>> {
    let settings = Config::load().map(|c| c.redact).unwrap_or_else(|err| {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "fix the config file; see `tmux-audit config`",
        );
        Redact::default()
    });
    let redacted = redact::redact(command, &settings);
    for err in &redacted.broken {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "fix the pattern; see `tmux-audit config`",
        );
    }
    redacted.text
}

/// The command text: all of stdin, less the one newline the hooks end it with.
fn read_command() -> Result<Vec<u8>> {
    let mut stdin = io::stdin().lock();
    if stdin.is_terminal() {
        bail!("`record` reads the command from standard input and is run by the shell hooks; see `tmux-audit init --help`");
    }
    let mut command = Vec::new();
    stdin
        .read_to_end(&mut command)
        .context("cannot read the command from standard input")?;
    if command.last() == Some(&b'\n') {
        command.pop();
    }
    Ok(command)
}
