//! The local side of the central store: this database's id, the rows not
//! yet shipped in chain order, and the cursor of what was shipped.

use rusqlite::{params, OptionalExtension};

use super::events::{stored_event, EVENT_COLUMNS};
use super::queries::{stored_command, COLUMNS};
use super::{Chain, Database, DbError, StoredCommand};
use crate::db::events::StoredEvent;

/// A row's id and its hash (None before the chain began).
pub type IdHash = (i64, Option<Vec<u8>>);

/// A command with its chain links, as shipped.
#[derive(Debug, Clone)]
pub struct ChainedCommand {
    pub stored: StoredCommand,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
}

/// What was shipped to one server of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub last_id: i64,
    pub last_hash: Option<Vec<u8>>,
}

/// A redaction of a command (`tmux-audit redact`), as shipped: the
/// command's text now, and the content hash that text gives.
#[derive(Debug, Clone)]
pub struct ShippedRedaction {
    pub trace_id: i64,
    pub id: i64,
    pub command: String,
    pub command_raw: Option<Vec<u8>>,
    pub content_hash: Vec<u8>,
    pub at_us: i64,
    pub user: String,
    pub reason: String,
}

impl Database {
    /// The redactions of commands up to `up_to_id` (those shipped), in
    /// the order they were made. Few: shipped again at each sync, the
    /// server keeps each once.
    pub fn redactions_up_to(&self, up_to_id: i64) -> Result<Vec<ShippedRedaction>, DbError> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.first_id, c.command, c.command_raw, t.detail, t.at_us, t.user, t.reason
             FROM chain_trace t JOIN commands c ON c.id = t.first_id
             WHERE t.kind = ?1 AND t.chain = 'commands' AND t.first_id <= ?2 ORDER BY t.id",
        )?;
        let rows = stmt.query_map(params![crate::trace::REDACTION, up_to_id], |r| {
            let detail: String = r.get(4)?;
            let content_hash = serde_json::from_str::<crate::trace::RedactionDetail>(&detail)
                .ok()
                .and_then(|d| crate::text::unhex(&d.content_hash_after))
                .unwrap_or_default();
            Ok(ShippedRedaction {
                trace_id: r.get(0)?,
                id: r.get(1)?,
                command: r.get(2)?,
                command_raw: r.get(3)?,
                content_hash,
                at_us: r.get(5)?,
                user: r.get(6)?,
                reason: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// This database's id on the central store (made by its migration).
    pub fn database_id(&self) -> Result<String, DbError> {
        Ok(self
            .conn
            .query_row("SELECT database_id FROM central_identity", [], |r| r.get(0))?)
    }

    /// Up to `limit` commands after `after_id`, in chain order.
    pub fn commands_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ChainedCommand>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS}, prev_hash, hash FROM commands WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after_id, limit as i64], |row| {
            Ok(ChainedCommand {
                stored: stored_command(row)?,
                prev_hash: row.get("prev_hash")?,
                hash: row.get("hash")?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` tmux events after `after_id`, in chain order.
    pub fn tmux_events_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM tmux_events WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after_id, limit as i64], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (id, hash) of every row of `chain` ("commands" or "tmux_events") up
    /// to `last_id`, in order: what `verify` compares with the server.
    pub fn chain_hashes(&self, chain: Chain, last_id: i64) -> Result<Vec<IdHash>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, hash FROM {} WHERE id <= ?1 ORDER BY id",
            chain.table()
        ))?;
        let rows = stmt.query_map([last_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The hash of row `id` of `chain`, if that row exists.
    pub fn chain_hash_at(&self, chain: Chain, id: i64) -> Result<Option<Option<Vec<u8>>>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT hash FROM {} WHERE id = ?1", chain.table()),
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// What was shipped of `chain` to `server`, as noted locally.
    pub fn shipped(&self, server: &str, chain: Chain) -> Result<Option<Cursor>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_id, last_hash FROM central_shipped WHERE server = ?1 AND chain = ?2",
                params![server, chain.table()],
                |r| {
                    Ok(Cursor {
                        last_id: r.get(0)?,
                        last_hash: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Notes what the server now holds of `chain`.
    pub fn note_shipped(
        &mut self,
        server: &str,
        chain: Chain,
        cursor: &Cursor,
        at_us: i64,
    ) -> Result<(), DbError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO central_shipped (server, chain, last_id, last_hash, at_us)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (server, chain) DO UPDATE SET last_id = ?3, last_hash = ?4, at_us = ?5",
                params![server, chain.table(), cursor.last_id, cursor.last_hash, at_us],
            )?;
            Ok(())
        })
    }
}
