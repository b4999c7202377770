//! The filters that need the tmux events, not just the command's own
//! columns: a session by any name it had, a window (commands record their
//! pane, and a pane's window is known from the events), and who typed a
//! command (the client tmux saw typing, in a shared session).
//!
//! A session by name becomes a condition on the recorded session ids of
//! the servers that had that name. A window or a typist is settled by
//! placing the candidate commands (the replay of `lifecycle::replay`), and
//! the ids kept become a temporary table the query joins: the same
//! conditions then serve `search` and `report` alike.

use std::collections::HashSet;

use anyhow::{bail, Result};
use rusqlite::types::Value;

use super::queries::{stored_command, COLUMNS};
use super::{Database, StoredCommand};
use crate::filter::{Conditions, Filters};
use crate::lifecycle::replay::ServerKey;

/// `(server, session id)`: ids start again from `$0` on every new server.
type SessionKey = (ServerKey, i64);

impl Database {
    /// The SQL conditions for `filters`, the tmux ones included.
    pub fn conditions(&self, filters: &Filters) -> Result<Conditions> {
        let mut c = filters.conditions()?;
        if let Some(session) = &filters.session
            && filters.session_id().is_none()
        {
            self.session_condition(&mut c, session)?;
        }
        let windows = match &filters.window {
            Some(window) => Some(self.windows(window)?),
            None => None,
        };
        if windows.is_some() || filters.typed_by.is_some() {
            self.narrow_by_placement(&mut c, windows.as_ref(), filters.typed_by.as_deref())?;
        }
        Ok(c)
    }

    /// A name matches every session that ever had it, in the recorded
    /// events or in the running tmux server; a bare number that no session
    /// had as its name is a session id on any server. (`$N` is a plain
    /// condition of `Filters`.)
    fn session_condition(&self, c: &mut Conditions, session: &str) -> Result<()> {
        let mut named = self.sessions_named(session)?;
        if let Some(live) = crate::lifecycle::hooks::live_session(session)? {
            named.insert(((live.socket, live.server_pid), live.id));
        }
        if named.is_empty() {
            if let Ok(id) = session.parse::<i64>() {
                c.push("tmux_session_id = ?", [Value::Integer(id)]);
                return Ok(());
            }
            bail!(
                "no tmux session named {session:?} was recorded nor is running; `tmux-audit sessions` lists every session seen (or give its id, `$N`)"
            );
        }
        let mut named: Vec<SessionKey> = named.into_iter().collect();
        named.sort();
        let tuples = vec!["(?, ?, ?)"; named.len()].join(", ");
        c.push(
            &format!("(tmux_socket, tmux_server_pid, tmux_session_id) IN (VALUES {tuples})"),
            named.into_iter().flat_map(|((socket, pid), id)| {
                [Value::Text(socket), Value::Integer(pid), Value::Integer(id)]
            }),
        );
        Ok(())
    }

    /// Every session, of every server, that had this name at some time.
    fn sessions_named(&self, name: &str) -> Result<HashSet<SessionKey>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT tmux_socket, tmux_server_pid, session_id FROM tmux_events
             WHERE session_name = ?1 AND session_id IS NOT NULL",
        )?;
        let rows = stmt.query_map([name], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The windows `SESSION:INDEX` (the session by name or `$id`) or `@ID`
    /// names, per server.
    fn windows(&self, window: &str) -> Result<HashSet<(ServerKey, i64)>> {
        let found: HashSet<(ServerKey, i64)> = if let Some(id) =
            window.strip_prefix('@').and_then(|w| w.parse::<i64>().ok())
        {
            let mut stmt = self.conn.prepare(
                "SELECT DISTINCT tmux_socket, tmux_server_pid FROM tmux_events
                     WHERE window_id = ?1",
            )?;
            let rows = stmt.query_map([id], |r| Ok(((r.get(0)?, r.get(1)?), id)))?;
            rows.collect::<Result<_, _>>()?
        } else {
            let Some((session, index)) = window
                .rsplit_once(':')
                .and_then(|(s, i)| Some((s, i.parse::<i64>().ok()?)))
            else {
                bail!("--window takes SESSION:INDEX (prod:1) or a window id (@4), not {window:?}");
            };
            let sessions: HashSet<SessionKey> = match session.strip_prefix('$') {
                Some(id) => {
                    let id: i64 = id.parse().map_err(|_| {
                        anyhow::anyhow!("--window {window:?}: {session:?} is no session id")
                    })?;
                    let mut stmt = self.conn.prepare(
                        "SELECT DISTINCT tmux_socket, tmux_server_pid FROM tmux_events
                             WHERE session_id = ?1",
                    )?;
                    let rows = stmt.query_map([id], |r| Ok(((r.get(0)?, r.get(1)?), id)))?;
                    rows.collect::<Result<_, _>>()?
                }
                None => self.sessions_named(session)?,
            };
            let mut stmt = self.conn.prepare(
                "SELECT DISTINCT window_id FROM tmux_events
                     WHERE tmux_socket = ?1 AND tmux_server_pid = ?2 AND session_id = ?3
                       AND window_index = ?4 AND window_id IS NOT NULL",
            )?;
            let mut found = HashSet::new();
            for ((socket, pid), session_id) in sessions {
                let rows = stmt
                    .query_map(rusqlite::params![socket, pid, session_id, index], |r| {
                        r.get::<_, i64>(0)
                    })?;
                for window_id in rows {
                    found.insert(((socket.clone(), pid), window_id?));
                }
            }
            found
        };
        if found.is_empty() {
            bail!("no window {window} was recorded; `tmux-audit sessions` lists the sessions seen");
        }
        Ok(found)
    }

    /// Keeps, of the commands `c` selects, those that ran in one of
    /// `windows` and were typed by `typist`, as their placement says.
    fn narrow_by_placement(
        &self,
        c: &mut Conditions,
        windows: Option<&HashSet<(ServerKey, i64)>>,
        typist: Option<&str>,
    ) -> Result<()> {
        let mut candidates = c.clone();
        if let Some(windows) = windows {
            // Only the servers that had the windows.
            let servers: HashSet<&ServerKey> = windows.iter().map(|(s, _)| s).collect();
            let tuples = vec!["(?, ?)"; servers.len()].join(", ");
            candidates.push(
                &format!("(tmux_socket, tmux_server_pid) IN (VALUES {tuples})"),
                servers
                    .into_iter()
                    .flat_map(|(socket, pid)| [Value::Text(socket.clone()), Value::Integer(*pid)]),
            );
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM commands {} ORDER BY id",
            candidates.where_sql()
        ))?;
        let mut rows: Vec<StoredCommand> = stmt
            .query_map(
                rusqlite::params_from_iter(&candidates.params),
                stored_command,
            )?
            .collect::<Result<_, _>>()?;
        self.place(&mut rows)?;
        let kept: Vec<i64> = rows
            .iter()
            .filter(|row| {
                let place = row.placement.as_ref();
                let in_window = windows.is_none_or(|windows| {
                    let server = (
                        row.record.tmux_socket.clone().unwrap_or_default(),
                        row.record.tmux_server_pid.unwrap_or_default(),
                    );
                    place
                        .and_then(|p| p.window_id)
                        .is_some_and(|w| windows.contains(&(server, w)))
                });
                let typed = typist.is_none_or(|user| {
                    place
                        .and_then(|p| p.client_user())
                        .unwrap_or(&row.record.user)
                        == user
                });
                in_window && typed
            })
            .map(|row| row.id)
            .collect();
        // Only the temporary database is written, so a read-only one will do.
        // A table of its own per call: conditions made earlier keep theirs.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let table = format!(
            "temp.placed_ids_{}",
            CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch(&format!(
            "CREATE TEMP TABLE {table} (id INTEGER PRIMARY KEY);"
        ))?;
        {
            let mut insert = tx.prepare(&format!("INSERT INTO {table} (id) VALUES (?1)"))?;
            for id in kept {
                insert.execute([id])?;
            }
        }
        tx.commit()?;
        c.push(&format!("id IN (SELECT id FROM {table})"), []);
        Ok(())
    }
}
