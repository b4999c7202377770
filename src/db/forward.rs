//! The forwarding cursors (`forward_cursors`, see `forward.rs`): per
//! target, the last command and tmux event it took; and the rows after
//! them, in chain order.

use rusqlite::{params, OptionalExtension};

use super::events::{stored_event, EVENT_COLUMNS};
use super::queries::{stored_command, COLUMNS};
use super::{Database, DbError, StoredCommand};
use crate::lifecycle::TmuxEvent;

/// A row to forward, with its hash in the chain.
#[derive(Debug, Clone)]
pub enum ForwardItem {
    Command {
        row: Box<StoredCommand>,
        hash: Vec<u8>,
    },
    TmuxEvent {
        id: i64,
        event: Box<TmuxEvent>,
        hash: Vec<u8>,
    },
}

impl Database {
    /// (commands, tmux events) up to which `target` took them; (0, 0) for
    /// a target not seen before: it gets everything.
    pub fn forward_cursor(&self, target: &str) -> Result<(i64, i64), DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT commands_up_to, events_up_to FROM forward_cursors WHERE target = ?1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, 0)))
    }

    pub fn set_forward_cursor(
        &mut self,
        target: &str,
        (commands, events): (i64, i64),
    ) -> Result<(), DbError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO forward_cursors (target, commands_up_to, events_up_to) VALUES (?1, ?2, ?3)
                 ON CONFLICT (target) DO UPDATE SET
                    commands_up_to = excluded.commands_up_to, events_up_to = excluded.events_up_to",
                params![target, commands, events],
            )?;
            Ok(())
        })
    }

    /// At most `limit` commands after id `commands_after`, then at most
    /// `limit` tmux events after `events_after`, each in chain order.
    pub fn forward_batch(
        &self,
        commands_after: i64,
        events_after: i64,
        limit: i64,
    ) -> Result<Vec<ForwardItem>, DbError> {
        let mut items = Vec::new();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS}, hash FROM commands WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![commands_after, limit])?;
        while let Some(r) = rows.next()? {
            items.push(ForwardItem::Command {
                row: Box::new(stored_command(r)?),
                hash: r.get::<_, Option<Vec<u8>>>("hash")?.unwrap_or_default(),
            });
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM tmux_events WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        for event in stmt.query_map(params![events_after, limit], stored_event)? {
            let event = event?;
            items.push(ForwardItem::TmuxEvent {
                id: event.id,
                event: Box::new(event.event),
                hash: event.hash,
            });
        }
        Ok(items)
    }
}
