//! The queries on tmux lifecycle events, and naming commands by them.

use rusqlite::{params, OptionalExtension, Row};

use super::queries::{stored_command, COLUMNS};
use super::{Database, DbError, StoredCommand};
use crate::lifecycle::replay::{Replay, ServerKey};
use crate::lifecycle::{Client, TmuxEvent};

pub(super) const EVENT_COLUMNS: &str =
    "id, recorded_at_us, event, at_us, event_key, host, user, uid, \
    tmux_socket, tmux_server_pid, session_id, session_name, window_id, window_index, window_name, \
    pane, client_name, client_tty, client_pid, client_user, client_uid, client_termname, \
    automatic_rename, prev_hash, hash";

/// An event as read back, with what the database added.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: i64,
    pub recorded_at_us: i64,
    pub event: TmuxEvent,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Database {
    /// The events of `server` (of every server: None), in time order.
    /// Without the seals of capture segments (`capture/seal.rs`): they
    /// are in the chain, but are not something tmux did.
    pub fn tmux_events(&self, server: Option<&ServerKey>) -> Result<Vec<StoredEvent>, DbError> {
        tmux_events_on(&self.conn, server)
    }

    /// Every event in the order it was stored, for checking the chain.
    pub fn tmux_events_in_chain_order(&self) -> Result<Vec<StoredEvent>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM tmux_events ORDER BY id"
        ))?;
        let rows = stmt.query_map([], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest event of the chain, if any.
    pub fn newest_tmux_event(&self) -> Result<Option<StoredEvent>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {EVENT_COLUMNS} FROM tmux_events ORDER BY id DESC LIMIT 1"),
                [],
                stored_event,
            )
            .optional()?)
    }

    /// The commands run in `server` that started in `since_us..until_us`,
    /// oldest first.
    pub fn commands_of_server(
        &self,
        server: &ServerKey,
        since_us: i64,
        until_us: i64,
    ) -> Result<Vec<StoredCommand>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM commands
             WHERE tmux_socket = ?1 AND tmux_server_pid = ?2
               AND started_at_us >= ?3 AND started_at_us < ?4
             ORDER BY started_at_us, id"
        ))?;
        let rows = stmt.query_map(
            params![server.0, server.1, since_us, until_us],
            stored_command,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest server a command ran in `pane` of.
    pub fn newest_server_of_pane(&self, pane: &str) -> Result<Option<ServerKey>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tmux_socket, tmux_server_pid FROM commands
                 WHERE tmux_pane = ?1 AND tmux_socket IS NOT NULL AND tmux_server_pid IS NOT NULL
                 ORDER BY started_at_us DESC LIMIT 1",
                [pane],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Fills in where each command ran and who typed it, from the events
    /// of the servers they ran in.
    pub fn place(&self, rows: &mut [StoredCommand]) -> Result<(), DbError> {
        let mut servers: Vec<ServerKey> = rows
            .iter()
            .filter_map(|r| Some((r.record.tmux_socket.clone()?, r.record.tmux_server_pid?)))
            .collect();
        servers.sort();
        servers.dedup();
        let mut events = Vec::new();
        for server in &servers {
            events.extend(self.tmux_events(Some(server))?.into_iter().map(|e| e.event));
        }
        let mut replay = Replay::new(events);
        let placements = replay.place_all(rows.iter().map(|r| &r.record));
        for (row, placement) in rows.iter_mut().zip(placements) {
            row.placement = placement;
        }
        Ok(())
    }
}

pub(super) fn stored_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let client = match row.get::<_, Option<String>>("client_name")? {
        Some(name) => Some(Client {
            name,
            tty: row.get("client_tty")?,
            pid: row.get("client_pid")?,
            user: row.get("client_user")?,
            uid: row.get("client_uid")?,
            termname: row.get("client_termname")?,
        }),
        None => None,
    };
    Ok(StoredEvent {
        id: row.get("id")?,
        recorded_at_us: row.get("recorded_at_us")?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
        event: TmuxEvent {
            event: row.get("event")?,
            at_us: row.get("at_us")?,
            event_key: row.get("event_key")?,
            host: row.get("host")?,
            user: row.get("user")?,
            uid: row.get("uid")?,
            tmux_socket: row.get("tmux_socket")?,
            tmux_server_pid: row.get("tmux_server_pid")?,
            session_id: row.get("session_id")?,
            session_name: row.get("session_name")?,
            window_id: row.get("window_id")?,
            window_index: row.get("window_index")?,
            window_name: row.get("window_name")?,
            pane: row.get("pane")?,
            client,
            automatic_rename: row.get("automatic_rename")?,
        },
    })
}

/// [`Database::tmux_events`] on a connection (or a transaction in
/// progress: the running totals place commands inside their own).
pub(super) fn tmux_events_on(
    conn: &rusqlite::Connection,
    server: Option<&ServerKey>,
) -> Result<Vec<StoredEvent>, DbError> {
    let (filter, socket, pid) = match server {
        Some((socket, pid)) => (
            "WHERE tmux_socket = ?1 AND tmux_server_pid = ?2",
            Some(socket.as_str()),
            Some(*pid),
        ),
        None => ("WHERE ?1 IS NULL AND ?2 IS NULL", None, None),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM tmux_events {filter} AND event NOT IN (?3, ?4) \
             ORDER BY at_us, id"
    ))?;
    let rows = stmt.query_map(
        params![
            socket,
            pid,
            crate::capture::seal::SEALED,
            crate::capture::seal::PRUNED
        ],
        stored_event,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
