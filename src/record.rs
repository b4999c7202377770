//! One finished command, as the recorder stores it and every output shows it.

use serde::{Deserialize, Serialize};

use crate::context::{Context, Tmux};
use crate::lifecycle::TmuxEvent;
use crate::text::StoredText;

/// A row of the `commands` table, field for field. Times are microseconds
/// since the Unix epoch, UTC.
/// What stands after the first bytes of a command too long to keep whole
/// (`[record] max_command_bytes`): its whole length and SHA-256, so the
/// whole can still be matched. `record` and `import` write the same.
pub fn cut_note(total: u64, sha256: &[u8]) -> String {
    format!(
        "\n[tmux-audit: command cut after its first bytes; {total} bytes in all, SHA-256 {}]",
        crate::text::hex(sha256)
    )
}

/// `uid` when it is not known: `(uid_t)-1`, which POSIX keeps for "no
/// user". Exports write it as null.
pub const UNKNOWN_UID: u32 = u32::MAX;

/// The uid as an export writes it: None when unknown.
pub fn known_uid(uid: u32) -> Option<u32> {
    (uid != UNKNOWN_UID).then_some(uid)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command: String,
    /// The exact bytes, when `command` had to differ from them.
    pub command_raw: Option<Vec<u8>>,
    pub exit_status: Option<i64>,
    pub started_at_us: i64,
    pub duration_us: Option<i64>,
    pub cwd: String,
    pub cwd_raw: Option<Vec<u8>>,
    pub user: String,
    /// That user's id; [`UNKNOWN_UID`] when not known (an imported entry
    /// of a user other than the importer's).
    pub uid: u32,
    pub login_uid: Option<u32>,
    pub sudo_user: Option<String>,
    pub host: String,
    pub shell: String,
    pub shell_session: String,
    pub seq: i64,
    pub tty: Option<String>,
    pub ssh_connection: Option<String>,
    pub tmux_socket: Option<String>,
    pub tmux_server_pid: Option<i64>,
    pub tmux_session_id: Option<i64>,
    pub tmux_pane: Option<String>,
    /// Secrets were replaced by `[REDACTED]` before it was stored.
    #[serde(default)]
    pub redacted: bool,
    /// Read from another tool's history by `tmux-audit import`, not
    /// recorded by a hook; None for every recorded command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
}

/// Where an imported command came from: the tool whose history held it,
/// the file it was read from, and the key that makes a second import of
/// the same entry add nothing (see `import/mod.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// `bash`, `zsh`, `fish`, `atuin`, `zsh-histdb`, `mcfly`, `tmux-audit`.
    pub source: String,
    /// The file read, as an absolute path (a piped one with a hash of what
    /// it held), or the name `import --name` gave it.
    pub file: String,
    /// SHA-256 of what identifies the entry in that file.
    pub key: Vec<u8>,
}

/// A field of a [`CommandRecord`] as it is stored (its SQL type) and hashed
/// (integers as integers, text and blobs both as bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
}

/// How many fields [`CommandRecord::fields`] gives.
pub const FIELD_COUNT: usize = 21;

impl CommandRecord {
    /// The one map of a command's fields: each by its name (which is its
    /// column in `commands`) and value, in the order the hash chain encodes
    /// them. The chain (`chain.rs`) and the INSERT (`db/queries.rs`) are made
    /// from it; reading a row back names every field too, so adding one is
    /// an edit here, the compiler pointing at the reader, and a migration.
    /// `redacted` and `imported` are not here: they were added after the
    /// chain began, and are hashed only when set, so that older rows hash
    /// as they did; a field added later must be hashed the same way
    /// ([`CommandRecord::import_fields`]).
    pub fn fields(&self) -> [(&'static str, FieldValue<'_>); FIELD_COUNT] {
        use FieldValue::{Blob, Int, Text};
        let CommandRecord {
            command,
            command_raw,
            exit_status,
            started_at_us,
            duration_us,
            cwd,
            cwd_raw,
            user,
            uid,
            login_uid,
            sudo_user,
            host,
            shell,
            shell_session,
            seq,
            tty,
            ssh_connection,
            tmux_socket,
            tmux_server_pid,
            tmux_session_id,
            tmux_pane,
            redacted: _,
            imported: _,
        } = self;
        [
            ("command", Text(Some(command))),
            ("command_raw", Blob(command_raw.as_deref())),
            ("exit_status", Int(*exit_status)),
            ("started_at_us", Int(Some(*started_at_us))),
            ("duration_us", Int(*duration_us)),
            ("cwd", Text(Some(cwd))),
            ("cwd_raw", Blob(cwd_raw.as_deref())),
            ("user", Text(Some(user))),
            ("uid", Int(Some(i64::from(*uid)))),
            ("login_uid", Int(login_uid.map(i64::from))),
            ("sudo_user", Text(sudo_user.as_deref())),
            ("host", Text(Some(host))),
            ("shell", Text(Some(shell))),
            ("shell_session", Text(Some(shell_session))),
            ("seq", Int(Some(*seq))),
            ("tty", Text(tty.as_deref())),
            ("ssh_connection", Text(ssh_connection.as_deref())),
            ("tmux_socket", Text(tmux_socket.as_deref())),
            ("tmux_server_pid", Int(*tmux_server_pid)),
            ("tmux_session_id", Int(*tmux_session_id)),
            ("tmux_pane", Text(tmux_pane.as_deref())),
        ]
    }
}

impl CommandRecord {
    /// The import mark's fields, by column name: all absent for a recorded
    /// command. Stored after [`CommandRecord::fields`] and hashed only when
    /// the command was imported.
    pub fn import_fields(&self) -> [(&'static str, FieldValue<'_>); 3] {
        use FieldValue::{Blob, Text};
        let mark = self.imported.as_ref();
        [
            ("import_source", Text(mark.map(|m| m.source.as_str()))),
            ("import_file", Text(mark.map(|m| m.file.as_str()))),
            ("import_key", Blob(mark.map(|m| m.key.as_slice()))),
        ]
    }
}

/// The shells with a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }
}

/// What the recorder stores: a finished command, or a tmux lifecycle event.
/// As JSON (spool lines, hand-over): `{"record": {…}}` or `{"tmux_event": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    #[serde(rename = "record")]
    Command(CommandRecord),
    #[serde(rename = "tmux_event")]
    TmuxEvent(TmuxEvent),
}

impl Entry {
    /// For log lines: which entry this is.
    pub fn describe(&self) -> String {
        match self {
            Entry::Command(r) => format!("command {} of shell session {}", r.seq, r.shell_session),
            Entry::TmuxEvent(e) => format!("tmux event {} ({})", e.event, e.event_key),
        }
    }
}

/// What the shell hook knows about the command; the rest comes from [`Context`].
#[derive(Debug, Clone)]
pub struct Finished {
    pub shell: Shell,
    pub session: String,
    pub seq: i64,
    pub exit_status: Option<i64>,
    pub timing: Timing,
    pub command: StoredText,
    pub redacted: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Timing {
    /// bash and zsh note when the command started and ended.
    Span {
        start_us: i64,
        end_us: i64,
    },
    /// fish knows how long it ran.
    Lasted {
        duration_ms: i64,
    },
    Unknown,
}

impl CommandRecord {
    /// `now_us` is when the command was seen to finish.
    pub fn new(finished: Finished, context: Context, now_us: i64) -> CommandRecord {
        let (started_at_us, duration_us) = match finished.timing {
            Timing::Span { start_us, end_us } => {
                (start_us, Some(end_us.saturating_sub(start_us).max(0)))
            }
            Timing::Lasted { duration_ms } => {
                let duration_us = duration_ms.max(0).saturating_mul(1000);
                (now_us - duration_us, Some(duration_us))
            }
            Timing::Unknown => (now_us, None),
        };
        let (tmux_socket, tmux_server_pid, tmux_session_id, tmux_pane) = match context.tmux {
            Some(Tmux {
                socket,
                server_pid,
                session_id,
                pane,
            }) => (Some(socket), server_pid, session_id, pane),
            None => (None, None, None, None),
        };
        CommandRecord {
            command: finished.command.text,
            command_raw: finished.command.raw,
            exit_status: finished.exit_status,
            started_at_us,
            duration_us,
            cwd: context.cwd.text,
            cwd_raw: context.cwd.raw,
            user: context.user,
            uid: context.uid,
            login_uid: context.login_uid,
            sudo_user: context.sudo_user,
            host: context.host,
            shell: finished.shell.name().to_string(),
            shell_session: finished.session,
            seq: finished.seq,
            tty: context.tty,
            ssh_connection: context.ssh_connection,
            tmux_socket,
            tmux_server_pid,
            tmux_session_id,
            tmux_pane,
            redacted: finished.redacted,
            imported: None,
        }
    }
}
