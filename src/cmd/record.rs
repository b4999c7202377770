//! `tmux-audit record`: the per-command path, run by the shell hooks after
//! every command. It reads the command text from stdin, the context from the
//! environment, and inserts one row. Nothing here may print to the terminal
//! or wait long: failures go to the log file.

use std::io::{self, IsTerminal, Read};
use std::os::unix::ffi::OsStringExt;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};

use super::{Exit, Run};
use crate::cli::Record;
use crate::context::Context;
use crate::db::Database;
use crate::error_log;
use crate::paths;
use crate::record::{CommandRecord, Finished, Timing};
use crate::text::StoredText;

impl Run for Record {
    fn run(&self) -> Result<Exit> {
        let finished_us = now_us();
        let command = if self.text_unavailable {
            Vec::new()
        } else {
            read_command()?
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
        };
        let mut context = Context::capture();
        if let Some(cwd) = &self.cwd {
            context.cwd = StoredText::from_bytes(cwd.clone().into_vec());
        }
        let record = CommandRecord::new(finished, context, finished_us);
        let path = paths::database(self.db.path.as_deref())?;
        let stored = Database::open(&path).and_then(|mut db| {
            let inserted = db.insert(&record, now_us())?;
            db.fold_wal();
            Ok(inserted)
        });
        match stored {
            Ok(true) => Ok(Exit::Success),
            Ok(false) => {
                error_log::append(
                    "record",
                    &format!(
                        "command {} of shell session {} was already recorded; the second copy was dropped",
                        record.seq, record.shell_session
                    ),
                    "the hook may be loaded twice in a way it cannot detect; check the shell's rc files",
                );
                Ok(Exit::Success)
            }
            Err(err) => {
                let message = format!("cannot record into {}: {err}", path.display());
                error_log::append("record", &message, err.hint());
                Err(anyhow::Error::new(err))
                    .with_context(|| format!("cannot record into {}", path.display()))
            }
        }
    }
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

fn now_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
