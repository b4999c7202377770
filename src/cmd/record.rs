//! `tmux-audit record`: the per-command path, run by the shell hooks after
//! every command. It reads the command text from stdin, the context from the
//! environment, and stores one record (see `store.rs`: nothing here may
//! print to the terminal or make the prompt wait). `record-later` is the
//! detached process that waits for a database that stayed locked.

use std::io::{self, IsTerminal, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use sha2::{Digest, Sha256};

use super::{Exit, Run};
use crate::cli::{Record, RecordLater};
use tmux_audit::central;
use tmux_audit::config::{Config, Redact};
use tmux_audit::context::Context;
use tmux_audit::error_log;
use tmux_audit::paths;
use tmux_audit::record::{cut_note, CommandRecord, Entry, Finished, Timing};
use tmux_audit::redact;
use tmux_audit::store;
use tmux_audit::text::StoredText;

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
        let config = load_config();
        let command = if self.text_unavailable {
            Vec::new()
        } else {
            read_command(config.record.max_command_bytes)?
        };
        let told = Told {
            shell: self.shell.into(),
            session: self.session.clone(),
            seq: self.seq,
            exit_status: self.exit_status,
            start_us: self.start_us,
            end_us: self.end_us,
            duration_ms: self.duration_ms,
            cwd: self.cwd.clone().map(OsStringExt::into_vec),
        };
        let tty = tmux_audit::context::tty_of(std::os::unix::process::parent_id());
        let record = command_record(told, command, &config, finished_us, tty);
        let path = paths::database(self.db.path.as_deref())?;
        store::save(&path, &[Entry::Command(record)])?;
        sync_if_due(&path, &config)?;
        Ok(Exit::Success)
    }
}

/// With a central store: a detached sync after a record, at most every N
/// seconds (one stat of a time stamp otherwise; never a connection here).
/// The recorder of a shell calls it after each frame too.
pub(super) fn sync_if_due(path: &Path, config: &Config) -> Result<()> {
    if config.central.url().is_some() {
        let state_dir = paths::state_dir()?;
        if central::sync_due(&state_dir, config.central.sync_every_secs) {
            store::spawn_sync(path).context("cannot start a detached sync")?;
        }
    }
    Ok(())
}

/// config.toml, or the defaults when it cannot be read (logged).
pub(super) fn load_config() -> Config {
    Config::load().unwrap_or_else(|err| {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "fix the config file; see `tmux-audit config`",
        );
        // What the system's file says still holds (a central store, its
        // redaction) when the user's own file is broken.
        Config::system_only()
    })
}

/// What a hook tells of a finished command, by flags (`record`) or in a
/// frame (`recorder`).
pub(super) struct Told {
    pub shell: tmux_audit::record::Shell,
    pub session: String,
    pub seq: i64,
    pub exit_status: Option<i64>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    pub duration_ms: Option<i64>,
    pub cwd: Option<Vec<u8>>,
}

/// The record of a command: its text redacted (before it is written
/// anywhere: database, spool or hand-over), the context of the shell with
/// process id `shell` captured.
pub(super) fn command_record(
    told: Told,
    command: Vec<u8>,
    config: &Config,
    finished_us: i64,
    tty: Option<String>,
) -> CommandRecord {
    let (command, redacted) = match redact_secrets(&command, &config.redact) {
        Some(redacted) => (redacted, true),
        None => (command, false),
    };
    let finished = Finished {
        shell: told.shell,
        session: told.session,
        seq: told.seq,
        exit_status: told.exit_status,
        timing: match (told.start_us, told.duration_ms) {
            (Some(start_us), _) => Timing::Span {
                start_us,
                end_us: told.end_us.unwrap_or(finished_us),
            },
            (None, Some(duration_ms)) => Timing::Lasted { duration_ms },
            (None, None) => Timing::Unknown,
        },
        command: StoredText::from_bytes(command),
        redacted,
    };
    let cwd = told.cwd.map(StoredText::from_bytes);
    CommandRecord::new(finished, Context::capture_for(cwd, tty), finished_us)
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
        store::save_waiting(&path, &entries, self.recorded_at_us)?;
        Ok(Exit::Success)
    }
}

/// The command with likely secrets replaced, or None when it holds none.
/// A broken config file or pattern never costs the record nor turns the
/// built-in patterns off: it is logged (the file when it was read), and
/// the rest still applies.
fn redact_secrets(command: &[u8], settings: &Redact) -> Option<Vec<u8>> {
    let redacted = redact::redact(command, settings);
    for err in &redacted.broken {
        error_log::append(
            "record",
            &format!("{err:#}"),
            "fix the pattern; see `tmux-audit config`",
        );
    }
    redacted.text
}

/// The environment variable by which a hook names another descriptor to
/// read the command text from. bash uses it to keep the recorder's stdin
/// (and its own, where the recorder finds the terminal) the terminal while
/// handing the text over through a pipe, with no process of its own.
const TEXT_FD: &str = "TMUX_AUDIT_TEXT_FD";

/// The command text: all of stdin (or of the descriptor named by
/// [`TEXT_FD`]), less the one newline the hooks end it with. Past `max`
/// bytes only the first `max` are kept, and a last line says how long the
/// whole was and its SHA-256 (see [`cut_note`]): the rest is read and
/// hashed, never held.
fn read_command(max: usize) -> Result<Vec<u8>> {
    match std::env::var_os(TEXT_FD) {
        Some(fd) => {
            let fd = fd
                .to_str()
                .and_then(|fd| fd.parse::<u32>().ok())
                .filter(|&fd| fd > 2)
                .with_context(|| format!("{TEXT_FD} is not a file descriptor above 2: {fd:?}"))?;
            // Opening /dev/fd/N of a pipe opens that pipe, without unsafe code.
            let mut text = std::fs::File::open(format!("/dev/fd/{fd}"))
                .with_context(|| format!("cannot open descriptor {fd} ({TEXT_FD})"))?;
            if text.is_terminal() {
                bail!("{TEXT_FD} names a terminal; it is set by the bash hook, see `tmux-audit init --help`");
            }
            read_at_most(&mut text, max)
                .with_context(|| format!("cannot read the command from descriptor {fd}"))
        }
        None => {
            let mut stdin = io::stdin().lock();
            if stdin.is_terminal() {
                bail!("`record` reads the command from standard input and is run by the shell hooks; see `tmux-audit init --help`");
            }
            read_at_most(&mut stdin, max).context("cannot read the command from standard input")
        }
    }
}

pub(super) fn read_at_most(input: &mut impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut command = Vec::new();
    // One byte more than kept: the hooks' newline, or the sign of a cut.
    input
        .by_ref()
        .take(max as u64 + 2)
        .read_to_end(&mut command)?;
    if command.len() <= max + 1 {
        if command.last() == Some(&b'\n') {
            command.pop();
        }
        if command.len() <= max {
            return Ok(command);
        }
    }
    // Too long: hash it all, holding back the last byte read (the hooks'
    // newline is not part of the command).
    let mut hasher = Sha256::new();
    hasher.update(&command[..command.len() - 1]);
    let mut last = command[command.len() - 1];
    let mut total = command.len() as u64 - 1;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update([last]);
        hasher.update(&buffer[..n - 1]);
        last = buffer[n - 1];
        total += n as u64;
    }
    if last != b'\n' {
        hasher.update([last]);
        total += 1;
    }
    command.truncate(max);
    command.extend_from_slice(cut_note(total, &hasher.finalize()).as_bytes());
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], max: usize) -> Vec<u8> {
        read_at_most(&mut &input[..], max).unwrap()
    }

    #[test]
    fn a_command_up_to_the_limit_is_kept_whole() {
        assert_eq!(read(b"abc\n", 3), b"abc");
        assert_eq!(read(b"abc", 3), b"abc");
        assert_eq!(read(b"ab\n\n", 3), b"ab\n");
        assert_eq!(read(b"", 3), b"");
    }

    #[test]
    fn a_longer_one_keeps_its_head_length_and_hash() {
        for (input, whole) in [
            (&b"abcdef\n"[..], &b"abcdef"[..]),
            (b"abcdef", b"abcdef"),
            (b"abcd\n", b"abcd"),
        ] {
            let kept = read(input, 3);
            let note = cut_note(whole.len() as u64, &Sha256::digest(whole));
            assert_eq!(kept, [&b"abc"[..], note.as_bytes()].concat(), "{input:?}");
        }
        // Longer than one buffer of the rest.
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut input = big.clone();
        input.push(b'\n');
        let kept = read(&input, 1000);
        let note = cut_note(big.len() as u64, &Sha256::digest(&big));
        assert_eq!(kept, [&big[..1000], note.as_bytes()].concat());
        assert!(String::from_utf8_lossy(&kept).contains("300000 bytes in all"));
    }
}
