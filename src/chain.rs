//! The hash chain that makes tampering evident. Each record's hash is
//! SHA-256 over a fixed label, the previous record's hash and a canonical
//! encoding of the record: every field in a fixed order, each marked as
//! absent, an integer (8 bytes, big-endian) or bytes (length, then the
//! bytes). Computed inside the write transaction, so concurrent writers
//! extend one chain. Commands, tmux events and the trace (the entries that
//! explain a change made on purpose, see `trace.rs`) have a chain each,
//! told apart by their labels. Spool lines carry a link of their own
//! ([`link_spool_line`]), so that a line edited before the merge is seen.

use sha2::{Digest, Sha256};

use crate::lifecycle::TmuxEvent;
use crate::record::{CommandRecord, FieldValue};
use crate::trace::TraceEntry;

pub type Hash = [u8; 32];

/// The `prev_hash` of the first record of a chain.
pub const GENESIS: Hash = [0; 32];

const LABEL: &[u8] = b"tmux-audit command v1\0";
const EVENT_LABEL: &[u8] = b"tmux-audit tmux event v1\0";
const TRACE_LABEL: &[u8] = b"tmux-audit trace v1\0";
const SPOOL_LABEL: &[u8] = b"tmux-audit spool line v1\0";
const PRUNED_LABEL: &[u8] = b"tmux-audit pruned rows v1\0";

/// The hash of the record stored with `id` after the record whose hash is `prev`.
pub fn hash_command(prev: &Hash, id: i64, record: &CommandRecord, recorded_at_us: i64) -> Hash {
    let mut e = Encoder(Sha256::new());
    e.0.update(LABEL);
    e.0.update(prev);
    e.int(Some(id));
    for (_, value) in record.fields() {
        e.field(value);
    }
    e.int(Some(recorded_at_us));
    // Added in schema 6, and only when set: records from before hash as they did.
    if record.redacted {
        e.int(Some(1));
    }
    // Added in schema 11, and only for an imported command, so that one
    // can never pass as recorded. Its tag (2, bytes) differs from the
    // redaction flag's (1, an integer): the two cannot be mistaken.
    if record.imported.is_some() {
        for (_, value) in record.import_fields() {
            e.field(value);
        }
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
    // Added with schema 10: hashed only when known, so that the hash of
    // every event stored before is unchanged (a last field, tagged like
    // every other: no two events encode alike).
    if let Some(automatic) = event.automatic_rename {
        e.int(Some(i64::from(automatic)));
    }
    e.0.finalize().into()
}

/// The hash of the trace entry stored with `id` after the entry whose hash is `prev`.
pub fn hash_trace(prev: &Hash, id: i64, entry: &TraceEntry) -> Hash {
    let mut e = Encoder(Sha256::new());
    e.0.update(TRACE_LABEL);
    e.0.update(prev);
    e.int(Some(id));
    e.text(Some(&entry.kind));
    e.text(Some(&entry.chain));
    e.int(entry.first_id);
    e.int(entry.last_id);
    e.int(Some(entry.at_us));
    e.text(Some(&entry.user));
    e.int(Some(entry.uid));
    e.text(Some(&entry.reason));
    e.text(Some(&entry.detail));
    e.0.finalize().into()
}

/// The link of a spool line: its bytes (without the link) after the link
/// of the line before it in the same file ([`GENESIS`] for the first).
pub fn link_spool_line(prev: &Hash, content: &[u8]) -> Hash {
    let mut e = Encoder(Sha256::new());
    e.0.update(SPOOL_LABEL);
    e.0.update(prev);
    e.bytes(Some(content));
    e.0.finalize().into()
}

/// SHA-256 of a command's text as stored (its exact bytes when they differ
/// from the text), for a redaction's trace entry.
pub fn text_digest(record: &CommandRecord) -> Hash {
    let bytes = record
        .command_raw
        .as_deref()
        .unwrap_or(record.command.as_bytes());
    Sha256::digest(bytes).into()
}

/// A hash from its 64 lower- or upper-case hex digits.
pub fn parse_hex(digits: &[u8]) -> Option<Hash> {
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut hash = GENESIS;
    for (i, pair) in digits.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        hash[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(hash)
}

/// SHA-256 over the ids and hashes of the rows a prune deleted, in chain
/// order: what a copy of them kept elsewhere can be checked against.
pub struct PrunedDigest(Encoder);

impl Default for PrunedDigest {
    fn default() -> PrunedDigest {
        let mut e = Encoder(Sha256::new());
        e.0.update(PRUNED_LABEL);
        PrunedDigest(e)
    }
}

impl PrunedDigest {
    pub fn add(&mut self, id: i64, hash: &[u8]) {
        self.0.int(Some(id));
        self.0.bytes(Some(hash));
    }

    pub fn finish(self) -> Hash {
        self.0 .0.finalize().into()
    }
}

struct Encoder(Sha256);

impl Encoder {
    fn field(&mut self, value: FieldValue<'_>) {
        match value {
            FieldValue::Int(v) => self.int(v),
            FieldValue::Text(v) => self.text(v),
            FieldValue::Blob(v) => self.bytes(v),
        }
    }

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
            imported: None,
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
        let mut r = record();
        r.imported = Some(crate::record::Imported {
            source: "bash".into(),
            file: "/h".into(),
            key: vec![1],
        });
        let imported = hash_command(&GENESIS, 1, &r, 5);
        assert_ne!(base, imported, "the import mark counts");
        for change in 0..3 {
            let mut other = r.clone();
            let mark = other.imported.as_mut().unwrap();
            match change {
                0 => mark.source = "zsh".into(),
                1 => mark.file = "/g".into(),
                _ => mark.key = vec![2],
            }
            assert_ne!(imported, hash_command(&GENESIS, 1, &other, 5), "{change}");
        }
    }

    /// Known answers, computed outside this code (Python's hashlib over
    /// the encoding the module comment describes, built by hand): a change
    /// to the encoding of any field would break every stored chain.
    #[test]
    fn known_answers() {
        let hex = crate::text::hex;
        assert_eq!(
            hex(&hash_command(&GENESIS, 1, &record(), 5)),
            "19b3880fe93971229a2f927a970a7b88541b17ab586687d2158fb70ed7b1c46d"
        );
        let mut redacted = record();
        redacted.redacted = true;
        assert_eq!(
            hex(&hash_command(&GENESIS, 1, &redacted, 5)),
            "e46ef74db8febfaec7a82f97cfba44d2db39127ac15e7ef8e7139b1c51620954"
        );
        let event = TmuxEvent {
            event: "session-created".into(),
            tmux_socket: "/tmp/s".into(),
            session_name: Some("prod".into()),
            ..TmuxEvent::default()
        };
        assert_eq!(
            hex(&hash_tmux_event(&GENESIS, 1, &event, 5)),
            "1f0273d3fa1c0120f948e7c963d751a2a5f7787cf4c679ac4535a80d6cd3b0ae"
        );
        let entry = TraceEntry {
            kind: "redaction".into(),
            chain: "commands".into(),
            first_id: Some(2),
            last_id: Some(2),
            at_us: 7,
            user: "alice".into(),
            uid: 1000,
            reason: "pin".into(),
            detail: "{}".into(),
        };
        assert_eq!(
            hex(&hash_trace(&GENESIS, 1, &entry)),
            "ec7942319736cd11be23e54065367444c6fac09db2ff8c03d6b8e2b652ceb306"
        );
        assert_eq!(
            hex(&link_spool_line(&GENESIS, br#"{"a":1}"#)),
            "5399c22952d4158b6aa59b295a56868d3dbd71a9729a679b2d98be1101247d4f"
        );
    }

    /// Each field is framed by its length: moving bytes from one field to
    /// the next, or from absent to empty, changes the hash.
    #[test]
    fn field_boundaries_count() {
        let pair = |a: &str, b: &str| {
            let mut r = record();
            r.user = a.into();
            r.host = b.into();
            hash_command(&GENESIS, 1, &r, 5)
        };
        assert_ne!(pair("ab", "c"), pair("a", "bc"));
        assert_ne!(pair("", "abc"), pair("abc", ""));
        let entry = |reason: &str, detail: &str| TraceEntry {
            kind: "k".into(),
            chain: "commands".into(),
            first_id: None,
            last_id: None,
            at_us: 0,
            user: "u".into(),
            uid: 0,
            reason: reason.into(),
            detail: detail.into(),
        };
        assert_ne!(
            hash_trace(&GENESIS, 1, &entry("ab", "c")),
            hash_trace(&GENESIS, 1, &entry("a", "bc"))
        );
        let mut with_raw = record();
        with_raw.command_raw = Some(Vec::new());
        assert_ne!(
            hash_command(&GENESIS, 1, &record(), 5),
            hash_command(&GENESIS, 1, &with_raw, 5)
        );
        assert_ne!(
            link_spool_line(&GENESIS, b"ab"),
            link_spool_line(&[1; 32], b"ab")
        );
    }

    #[test]
    fn a_text_digest_is_the_sha256_of_the_bytes_stored() {
        let hex = |hash: Hash| crate::text::hex(&hash);
        assert_eq!(
            hex(text_digest(&record())),
            "c7b68ac37f364473e922936708e7f43c293dd07b295171566c07ff5fe024fab9"
        );
        let mut raw = record();
        raw.command_raw = Some(b"l\xffs".to_vec());
        assert_eq!(
            hex(text_digest(&raw)),
            "a10e8969cce9be30ea56c169ebffb656d9e7e51bff8c16edf1af82f4e346ea7c"
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_a_hash() {
        let hash = hash_command(&GENESIS, 1, &record(), 5);
        assert_eq!(parse_hex(crate::text::hex(&hash).as_bytes()), Some(hash));
        assert_eq!(parse_hex(&[b'a'; 63]), None);
        let mut signed = [b'0'; 64];
        signed[0] = b'+';
        assert_eq!(parse_hex(&signed), None);
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
        // Whether a rename was automatic is hashed, either way, when known.
        let hashes: std::collections::HashSet<Hash> = [None, Some(false), Some(true)]
            .into_iter()
            .map(|automatic| {
                let mut e = event.clone();
                e.automatic_rename = automatic;
                hash_tmux_event(&GENESIS, 1, &e, 5)
            })
            .collect();
        assert_eq!(hashes.len(), 3);
    }
}
