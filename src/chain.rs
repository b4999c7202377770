//! The hash chain that makes tampering evident. Each record's hash is
//! SHA-256 over a fixed label, the previous record's hash and a canonical
//! encoding of the record: every field in a fixed order, each marked as
//! absent, an integer (8 bytes, big-endian) or bytes (length, then the
//! bytes). Computed inside the write transaction, so concurrent writers
//! extend one chain. Commands and tmux events have a chain each, told
//! apart by their labels.

use sha2::{Digest, Sha256};

use crate::lifecycle::TmuxEvent;
use crate::record::CommandRecord;

pub type Hash = [u8; 32];

/// The `prev_hash` of the first record of a chain.
pub const GENESIS: Hash = [0; 32];

const LABEL: &[u8] = b"tmux-audit command v1\0";
const EVENT_LABEL: &[u8] = b"tmux-audit tmux event v1\0";

/// The hash of the record stored with `id` after the record whose hash is `prev`.
pub fn hash_command(prev: &Hash, id: i64, record: &CommandRecord, recorded_at_us: i64) -> Hash {
    let mut e = Encoder(Sha256::new());
    e.0.update(LABEL);
    e.0.update(prev);
    e.int(Some(id));
    e.bytes(Some(record.command.as_bytes()));
    e.bytes(record.command_raw.as_deref());
    e.int(record.exit_status);
    e.int(Some(record.started_at_us));
    e.int(record.duration_us);
    e.bytes(Some(record.cwd.as_bytes()));
    e.bytes(record.cwd_raw.as_deref());
    e.bytes(Some(record.user.as_bytes()));
    e.int(Some(i64::from(record.uid)));
    e.int(record.login_uid.map(i64::from));
    e.text(record.sudo_user.as_deref());
    e.bytes(Some(record.host.as_bytes()));
    e.bytes(Some(record.shell.as_bytes()));
    e.bytes(Some(record.shell_session.as_bytes()));
    e.int(Some(record.seq));
    e.text(record.tty.as_deref());
    e.text(record.ssh_connection.as_deref());
    e.text(record.tmux_socket.as_deref());
    e.int(record.tmux_server_pid);
    e.int(record.tmux_session_id);
    e.text(record.tmux_pane.as_deref());
    e.int(Some(recorded_at_us));
    // Added in schema 6, and only when set: records from before hash as they did.
    if record.redacted {
        e.int(Some(1));
    }
    e.0.finalize().into()
}

/// The hash of the tmux event stored with `id` after the event whose hash is `prev`.
pub fn hash_tmux_event(prev: &Hash, id: i64, event: &TmuxEvent, recorded_at_us: i64) -> Hash {
    let mut e = Encoder(Sha256::new());
    e.0.update(EVENT_LABEL);
    e.0.update(prev);
    e.int(Some(id));
    e.text(Some(&event.event));
    e.int(Some(event.at_us));
    e.text(Some(&event.event_key));
    e.text(Some(&event.host));
    e.text(Some(&event.user));
    e.int(Some(i64::from(event.uid)));
    e.text(Some(&event.tmux_socket));
    e.int(Some(event.tmux_server_pid));
    e.int(event.session_id);
    e.text(event.session_name.as_deref());
    e.int(event.window_id);
    e.int(event.window_index);
    e.text(event.window_name.as_deref());
    e.text(event.pane.as_deref());
    let client = event.client.as_ref();
    e.text(client.map(|c| c.name.as_str()));
    e.text(client.and_then(|c| c.tty.as_deref()));
    e.int(client.and_then(|c| c.pid));
    e.text(client.and_then(|c| c.user.as_deref()));
    e.int(client.and_then(|c| c.uid));
    e.text(client.and_then(|c| c.termname.as_deref()));
    e.int(Some(recorded_at_us));
    e.0.finalize().into()
}

struct Encoder(Sha256);

impl Encoder {
    fn int(&mut self, value: Option<i64>) {
        match value {
            None => self.0.update([0]),
            Some(v) => {
                self.0.update([1]);
                self.0.update(v.to_be_bytes());
            }
        }
    }

    fn bytes(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.0.update([0]),
            Some(v) => {
                self.0.update([2]);
                self.0.update((v.len() as u64).to_be_bytes());
                self.0.update(v);
            }
        }
    }

    fn text(&mut self, value: Option<&str>) {
        self.bytes(value.map(str::as_bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CommandRecord {
        CommandRecord {
            command: "ls".into(),
            command_raw: None,
            exit_status: Some(0),
            started_at_us: 1,
            duration_us: Some(2),
            cwd: "/".into(),
            cwd_raw: None,
            user: "u".into(),
            uid: 1000,
            login_uid: None,
            sudo_user: None,
            host: "h".into(),
            shell: "bash".into(),
            shell_session: "s".into(),
            seq: 1,
            tty: None,
            ssh_connection: None,
            tmux_socket: None,
            tmux_server_pid: None,
            tmux_session_id: None,
            tmux_pane: None,
            redacted: false,
        }
    }

    #[test]
    fn every_field_and_the_link_count() {
        let base = hash_command(&GENESIS, 1, &record(), 5);
        assert_eq!(
            base,
            hash_command(&GENESIS, 1, &record(), 5),
            "deterministic"
        );
        assert_ne!(base, hash_command(&[1; 32], 1, &record(), 5));
        assert_ne!(base, hash_command(&GENESIS, 2, &record(), 5));
        assert_ne!(base, hash_command(&GENESIS, 1, &record(), 6));
        let mut r = record();
        r.tmux_pane = Some(String::new());
        assert_ne!(
            base,
            hash_command(&GENESIS, 1, &r, 5),
            "absent and empty differ"
        );
        let mut r = record();
        r.command = "l".into();
        r.cwd = "s/".into();
        assert_ne!(
            base,
            hash_command(&GENESIS, 1, &r, 5),
            "field boundaries count"
        );
        let mut r = record();
        r.redacted = true;
        assert_ne!(
            base,
            hash_command(&GENESIS, 1, &r, 5),
            "the redaction flag counts"
        );
    }

    #[test]
    fn events_hash_every_field_and_never_like_a_command() {
        let event = TmuxEvent {
            event: "session-created".into(),
            tmux_socket: "/tmp/s".into(),
            session_name: Some("prod".into()),
            ..TmuxEvent::default()
        };
        let base = hash_tmux_event(&GENESIS, 1, &event, 5);
        assert_eq!(base, hash_tmux_event(&GENESIS, 1, &event, 5));
        let mut renamed = event.clone();
        renamed.session_name = Some("prof".into());
        assert_ne!(base, hash_tmux_event(&GENESIS, 1, &renamed, 5));
        let mut with_client = event.clone();
        with_client.client = Some(crate::lifecycle::Client::default());
        assert_ne!(base, hash_tmux_event(&GENESIS, 1, &with_client, 5));
        assert_ne!(base, hash_command(&GENESIS, 1, &record(), 5));
    }
}
