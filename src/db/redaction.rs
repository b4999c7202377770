//! Rewriting a stored command's text on purpose (`tmux-audit redact`):
//! the row, the search index, the running totals and a trace entry that
//! explains the row's hash, in one transaction; then the old bytes wiped
//! from the file as far as SQLite allows.

use regex::bytes::Regex;
use rusqlite::{params, OptionalExtension};

use super::queries::{stored_command, COLUMNS};
use super::trace::append;
use super::{Database, DbError};
use crate::chain::{self, Hash};
use crate::text::{hex, StoredText};
use crate::trace::{self, RedactionDetail, TraceEntry};

/// What replaces the redacted text.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Why a redaction was not made.
#[derive(Debug)]
pub enum RedactError {
    NotFound(i64),
    /// A row from before the chain: nothing to keep its change honest.
    Unchained(i64),
    /// The row does not match its hash now: tampered with already.
    Tampered(i64),
    NoMatch(i64),
    Db(DbError),
}

impl From<rusqlite::Error> for RedactError {
    fn from(err: rusqlite::Error) -> Self {
        RedactError::Db(err.into())
    }
}

impl From<DbError> for RedactError {
    fn from(err: DbError) -> Self {
        RedactError::Db(err)
    }
}

impl std::fmt::Display for RedactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedactError::NotFound(id) => write!(f, "no record {id}: find its id with `tmux-audit search … --format json`"),
            RedactError::Unchained(id) => write!(f, "record {id} was written before tmux-audit kept a chain: it has no hash that a redaction could keep honest, so it is left as it is"),
            RedactError::Tampered(id) => write!(f, "record {id} no longer matches its hash (it was changed outside tmux-audit): run `tmux-audit verify`; a redaction would hide that"),
            RedactError::NoMatch(id) => write!(f, "the pattern matches nothing in record {id}'s text: nothing redacted (see `tmux-audit show {id}`)"),
            RedactError::Db(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for RedactError {}

/// A redaction made.
pub struct Redacted {
    pub trace_id: i64,
    pub user: String,
    pub uid: i64,
    /// How many matches were replaced (1 for the whole text).
    pub replaced: usize,
    /// The write-ahead log could be emptied: no old page is left in it.
    pub wal_emptied: bool,
}

impl Database {
    /// Replaces what `pattern` matches in the text
    /// of command `id`, or the whole text, with `[REDACTED]`, and marks it
    /// redacted. The row keeps its hash (later rows link to it); a
    /// `redaction` trace entry holds its content's hash before and after,
    /// so that `verify` finds the change explained and lists it, and any
    /// other change of the row still breaks the chain.
    pub fn redact(
        &mut self,
        id: i64,
        pattern: Option<&Regex>,
        reason: &str,
    ) -> Result<Redacted, RedactError> {
        // Freed space (the old text, old index segments) is overwritten
        // with zeros, not left in the file.
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        let (user, uid) = trace::who();
        let (trace_id, replaced, indexed) = self.write(|tx| {
            let found = tx
                .query_row(
                    &format!("SELECT {COLUMNS}, prev_hash, hash FROM commands WHERE id = ?1"),
                    [id],
                    |r| {
                        Ok((
                            stored_command(r)?,
                            r.get::<_, Option<Vec<u8>>>("prev_hash")?,
                            r.get::<_, Option<Vec<u8>>>("hash")?,
                        ))
                    },
                )
                .optional()?;
            let result = (|| {
                let Some((row, prev, hash)) = found else {
                    return Err(RedactError::NotFound(id));
                };
                let (Some(prev), Some(hash)) = (
                    prev.and_then(|p| Hash::try_from(p).ok()),
                    hash.and_then(|h| Hash::try_from(h).ok()),
                ) else {
                    return Err(RedactError::Unchained(id));
                };
                // The content must be what the chain (and any redaction
                // before) says it is.
                let earlier: Vec<RedactionDetail> = {
                    let mut stmt = tx.prepare(
                        "SELECT detail FROM chain_trace WHERE kind = ?1 AND chain = 'commands'
                         AND first_id = ?2 ORDER BY id",
                    )?;
                    let details = stmt.query_map(params![trace::REDACTION, id], |r| {
                        r.get::<_, String>(0)
                    })?;
                    details
                        .filter_map(|d| d.ok().and_then(|d| serde_json::from_str(&d).ok()))
                        .collect()
                };
                let content = chain::hash_command(&prev, id, &row.record, row.recorded_at_us);
                let expected = earlier
                    .last()
                    .map_or(hex(&hash), |r| r.content_hash_after.clone());
                if hex(&content) != expected {
                    return Err(RedactError::Tampered(id));
                }
                let old_bytes = row
                    .record
                    .command_raw
                    .clone()
                    .unwrap_or_else(|| row.record.command.clone().into_bytes());
                let (new_bytes, replaced) = match pattern {
                    Some(re) => {
                        let replaced = re.find_iter(&old_bytes).count();
                        if replaced == 0 {
                            return Err(RedactError::NoMatch(id));
                        }
                        (re.replace_all(&old_bytes, REDACTED).into_owned(), replaced)
                    }
                    None => (REDACTED.to_vec(), 1),
                };
                let text = StoredText::from_bytes(new_bytes);
                let mut record = row.record.clone();
                record.command = text.text;
                record.command_raw = text.raw;
                record.redacted = true;
                let after = chain::hash_command(&prev, id, &record, row.recorded_at_us);
                tx.execute(
                    "UPDATE commands SET command = ?1, command_raw = ?2, redacted = 1 WHERE id = ?3",
                    params![record.command, record.command_raw, id],
                )?;
                // The search index holds the text too (as trigrams).
                let indexed: i64 =
                    tx.query_row("SELECT indexed_up_to FROM search_index_state", [], |r| r.get(0))?;
                let indexed = id <= indexed;
                if indexed {
                    tx.execute(
                        "INSERT INTO commands_fts (commands_fts, rowid, command) VALUES ('delete', ?1, ?2)",
                        params![id, row.record.command],
                    )?;
                    tx.execute(
                        "INSERT INTO commands_fts (rowid, command) VALUES (?1, ?2)",
                        params![id, record.command],
                    )?;
                }
                // The running totals keep command texts: counted anew.
                super::report::forget_totals(tx)?;
                let detail = RedactionDetail::new(
                    &hash,
                    (&content, &chain::text_digest(&row.record)),
                    (&after, &chain::text_digest(&record)),
                    pattern.map(|_| replaced),
                );
                let trace_id = append(
                    tx,
                    &TraceEntry::now(
                        trace::REDACTION,
                        "commands",
                        (Some(id), Some(id)),
                        reason,
                        &detail,
                    ),
                )?;
                Ok((trace_id, replaced, indexed))
            })();
            // A failure of the database rolls everything back.
            match result {
                Err(RedactError::Db(err)) => Err(err),
                other => Ok(other),
            }
        })??;
        if indexed {
            // Deleted index entries stay in older segments until they are
            // merged: merge them all now.
            let _ = self.conn.execute(
                "INSERT INTO commands_fts (commands_fts) VALUES ('optimize')",
                [],
            );
        }
        // The old pages stay in the write-ahead log until it is copied
        // back and emptied; a reader holding it open prevents that.
        let wal_emptied = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok_and(|busy| busy == 0);
        Ok(Redacted {
            trace_id,
            user,
            uid,
            replaced,
            wal_emptied,
        })
    }
}
