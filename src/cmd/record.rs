//! `tmux-audit record`: the per-command path, run by the shell hooks after
//! every command. It reads the command text from stdin, the context from the
//! environment, and inserts one row. Nothing here may print to the terminal
//! or make the prompt wait: every failure goes to the log file, a database
//! that stays locked is waited for by a detached process (`record-later`),
//! and a record the database cannot take is kept in the spool (`spool.rs`)
//! until a later record can write.

use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};

use super::{Exit, Run};
use crate::cli::{Record, RecordLater};
use crate::config::{Config, Redact};
use crate::context::Context;
use crate::db::{Database, DbError};
use crate::error_log;
use crate::paths;
use crate::record::{CommandRecord, Entry, Finished, Timing};
use crate::redact;
use crate::spool;
use crate::text::StoredText;

/// How long a handed-over record waits for a locked database.
const LATER_TIMEOUT: Duration = Duration::from_secs(60);

impl Run for Record {
    fn run(&self) -> Result<Exit> {
        log_panics();
        self.record().inspect_err(log)
    }
}

impl Run for RecordLater {
    fn run(&self) -> Result<Exit> {
        log_panics();
        self.record_later().inspect_err(log)
    }
}

impl Record {
    fn record(&self) -> Result<Exit> {
        let finished_us = now_us();
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
        save(&path, &[Entry::Command(record)])
    }
}

/// Stores entries without making the caller wait: a database that stays
/// locked is waited for by a detached `record-later`, and entries the
/// database cannot take are kept in the spool.
pub fn save(path: &Path, entries: &[Entry]) -> Result<Exit> {
    let recorded_at_us = now_us();
    match store(path, entries, recorded_at_us, None) {
        Err(err) if err.is_busy() => {
            // Some other process holds the database: wait for it out of
            // the caller's way.
            match hand_over(path, entries, recorded_at_us) {
                Ok(()) => Ok(Exit::Success),
                // Could not wait in the background: keep them in the spool.
                Err(hand_over_err) => {
                    finish(path, entries, recorded_at_us, Err(err)).with_context(|| {
                        format!("waiting for the lock in the background failed ({hand_over_err:#})")
                    })
                }
            }
        }
        result => finish(path, entries, recorded_at_us, result),
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
        let result = store(&path, &entries, self.recorded_at_us, Some(LATER_TIMEOUT));
        finish(&path, &entries, self.recorded_at_us, result)
    }
}

/// Opens the database and inserts; how many entries were new.
fn store(
    path: &Path,
    entries: &[Entry],
    recorded_at_us: i64,
    wait: Option<Duration>,
) -> Result<usize, DbError> {
    // While another process is creating the database, it can vanish and
    // appear between two system calls of ours ("unable to open", or a
    // read-only view of a file that was linked into place): try again
    // before calling it a failure. A database that really is read-only costs
    // the two short waits.
    let mut attempt = 0;
    loop {
        match store_once(path, entries, recorded_at_us, wait) {
            Err(err) if attempt < 2 && err.may_be_creation_race() => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn store_once(
    path: &Path,
    entries: &[Entry],
    recorded_at_us: i64,
    wait: Option<Duration>,
) -> Result<usize, DbError> {
    let mut db = match wait {
        Some(timeout) => Database::open_waiting(path, timeout)?,
        None => Database::open(path)?,
    };
    let inserted = db.insert_all(entries.iter().map(|e| (e, recorded_at_us)))?;
    // The database takes writes again: bring in what waited in the spool.
    if let Err(err) = spool::merge(&mut db) {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "the spool is merged again by the next command",
        );
    }
    db.fold_wal();
    Ok(inserted)
}

/// Ends the record path: Ok for stored entries (and a note in the log for
/// duplicates); entries the database did not take are kept in the spool,
/// and the error returned. `recorded_at_us`: when the first attempt to
/// store them was made.
fn finish(
    path: &Path,
    entries: &[Entry],
    recorded_at_us: i64,
    result: Result<usize, DbError>,
) -> Result<Exit> {
    match result {
        Ok(new) if new == entries.len() => Ok(Exit::Success),
        Ok(_) => {
            let what: Vec<String> = entries.iter().map(Entry::describe).collect();
            error_log::append(
                "record",
                &format!(
                    "some of {} were already recorded; the second copies were dropped",
                    what.join(", ")
                ),
                "the hook may be loaded twice in a way it cannot detect; check the shell's rc files",
            );
            Ok(Exit::Success)
        }
        Err(err) => {
            // Not lost: kept for the next command that can write.
            let kept = match spool::keep(entries, recorded_at_us) {
                Ok(spool) => format!(
                    "kept in {} until the database takes writes again",
                    spool.display()
                ),
                Err(spool_err) => {
                    format!("and the spool failed too ({spool_err:#}): the record is lost")
                }
            };
            Err(anyhow::Error::new(err))
                .with_context(|| format!("cannot record into {} ({kept})", path.display()))
        }
    }
}

/// Starts a detached `record-later` with the record on its stdin.
fn hand_over(path: &Path, entries: &[Entry], recorded_at_us: i64) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("record-later")
        .arg("--db")
        .arg(path)
        .arg("--recorded-at-us")
        .arg(recorded_at_us.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: Ctrl-C at the prompt does not reach it.
        .process_group(0)
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .context("no pipe to the background process")?;
    stdin.write_all(&serde_json::to_vec(entries)?)?;
    Ok(())
}

/// The command with likely secrets replaced, or None when it holds none.
/// A broken config file never costs the record: it is logged, and the
/// built-in patterns still apply.
fn redact_secrets(command: &[u8]) -> Option<Vec<u8>> {
    let settings = Config::load().map(|c| c.redact).unwrap_or_else(|err| {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "fix the config file; see `tmux-audit config`",
        );
        Redact::default()
    });
    redact::redact(command, &settings).unwrap_or_else(|err| {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "fix the pattern; see `tmux-audit config`",
        );
        let builtin_only = Redact {
            patterns: Vec::new(),
            ..settings
        };
        redact::redact(command, &builtin_only).ok().flatten()
    })
}

/// Every error of the record path goes to the log, one line with a hint.
pub fn log(err: &anyhow::Error) {
    let hint = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<DbError>())
        .map_or("see `tmux-audit record --help`", DbError::hint);
    error_log::append("record", &format!("{err:#}"), hint);
}

/// A panic would otherwise vanish: the hooks send stderr to /dev/null.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        error_log::append(
            "record",
            &format!("panicked: {info}"),
            "a bug in tmux-audit; please report this line",
        );
    }));
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

pub fn now_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
