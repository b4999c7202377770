//! tmux-audit's own JSON Lines, as `search --format jsonl` prints them:
//! one record per line, every field (see `render::JsonRecord`). Each
//! record keeps its shell session and number, so records exported from
//! one database and imported into it again are found there and add
//! nothing, and two exports that overlap import once.

use chrono::DateTime;
use serde::Deserialize;

use super::{Parsed, Skipped};
use crate::record::CommandRecord;

/// The fields of a JSONL line that make a record; the others (`id`, the
/// tmux names, `typed_by`, …) belong to the database it came from or are
/// found again from its tmux events.
#[derive(Deserialize)]
struct Line {
    command: String,
    command_bytes_hex: Option<String>,
    exit_status: Option<i64>,
    started_at: String,
    duration_ms: Option<f64>,
    cwd: String,
    cwd_bytes_hex: Option<String>,
    user: String,
    uid: Option<u32>,
    login_uid: Option<u32>,
    sudo_user: Option<String>,
    host: String,
    shell: String,
    shell_session: String,
    seq: i64,
    tty: Option<String>,
    ssh_connection: Option<String>,
    tmux_socket: Option<String>,
    tmux_server_pid: Option<i64>,
    tmux_session_id: Option<i64>,
    tmux_pane: Option<String>,
    #[serde(default)]
    redacted: bool,
}

/// The records of a JSONL export, in its order.
pub fn parse(bytes: &[u8]) -> Parsed<CommandRecord> {
    super::parse_all(Reader, bytes)
}

/// tmux-audit's JSON Lines, fed a line at a time.
#[derive(Debug, Default)]
pub struct Reader;

impl super::Lines for Reader {
    type Entry = CommandRecord;

    fn line(&mut self, number: usize, line: &[u8], out: &mut Parsed<CommandRecord>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match record(line) {
            Ok(record) => out.entries.push(record),
            Err(why) => out.skipped.push(Skipped { line: number, why }),
        }
    }

    fn end(&mut self, _out: &mut Parsed<CommandRecord>) {}
}

fn record(line: &[u8]) -> Result<CommandRecord, String> {
    let l: Line =
        serde_json::from_slice(line).map_err(|e| format!("not a tmux-audit JSON record: {e}"))?;
    let started_at_us = DateTime::parse_from_rfc3339(&l.started_at)
        .map_err(|e| format!("started_at {:?}: {e}", l.started_at))?
        .timestamp_micros();
    Ok(CommandRecord {
        command_raw: l.command_bytes_hex.as_deref().map(unhex).transpose()?,
        command: l.command,
        exit_status: l.exit_status,
        started_at_us,
        duration_us: l.duration_ms.map(|ms| (ms * 1000.0).round() as i64),
        cwd_raw: l.cwd_bytes_hex.as_deref().map(unhex).transpose()?,
        cwd: l.cwd,
        user: l.user,
        uid: l.uid.unwrap_or(crate::record::UNKNOWN_UID),
        login_uid: l.login_uid,
        sudo_user: l.sudo_user,
        host: l.host,
        shell: l.shell,
        shell_session: l.shell_session,
        seq: l.seq,
        tty: l.tty,
        ssh_connection: l.ssh_connection,
        tmux_socket: l.tmux_socket,
        tmux_server_pid: l.tmux_server_pid,
        tmux_session_id: l.tmux_session_id,
        tmux_pane: l.tmux_pane,
        redacted: l.redacted,
        imported: None,
    })
}

fn unhex(digits: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("{digits:?} is not hex digits");
    if !digits.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

#[cfg(test)]
pub(in crate::import) mod tests {
    use super::*;

    pub(in crate::import) const LINE: &str = r#"{"id":7,"command":"echo �","command_bytes_hex":"6563686f20ff","exit_status":1,"started_at":"2023-11-14T22:13:20.000001Z","duration_ms":1.5,"cwd":"/tmp","cwd_bytes_hex":null,"user":"alice","uid":1000,"login_uid":null,"sudo_user":null,"host":"h","shell":"zsh","shell_session":"s1","seq":4,"tty":null,"ssh_connection":null,"tmux_socket":null,"tmux_server_pid":null,"tmux_session_id":null,"tmux_pane":"%1","tmux_session_name":null,"tmux_window_id":null,"tmux_window_index":null,"tmux_window_name":null,"typed_by":null,"typed_on":null,"attached":[],"redacted":false,"recorded_at":"2023-11-14T22:13:21Z"}"#;

    #[test]
    fn a_line_gives_the_record_back() {
        let parsed = parse(format!("{LINE}\n\n").as_bytes());
        let r = &parsed.entries[0];
        assert_eq!(r.command_raw.as_deref(), Some(&b"echo \xff"[..]));
        assert_eq!(r.started_at_us, 1_700_000_000_000_001);
        assert_eq!(r.duration_us, Some(1500));
        assert_eq!((r.shell_session.as_str(), r.seq, r.uid), ("s1", 4, 1000));
        assert_eq!(r.tmux_pane.as_deref(), Some("%1"));
        assert!(parsed.skipped.is_empty());
    }

    #[test]
    fn a_bad_line_is_skipped_with_its_number() {
        let parsed = parse(format!("{LINE}\n{{\"command\":1}}\nnot json\n").as_bytes());
        assert_eq!(parsed.entries.len(), 1);
        let lines: Vec<usize> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 3]);
        assert_eq!(unhex("0g"), Err("\"0g\" is not hex digits".into()));
    }
}
