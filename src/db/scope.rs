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

use super::Database;
use crate::filter::{Conditions, Filters, CWD_UNDER, MIN_DURATION};
use crate::lifecycle::replay::{typist, Placement, Replay, ServerKey};
use crate::record::CommandRecord;

/// Up to how many rows a range filter's index is read rather than the rows
/// newest first (see `read_ranges_by_index_when_few`).
const FEW_IN_RANGE: i64 = 10_000;

/// Up to how many panes a window's candidates are named in the query.
const NAMED_PANES: usize = 2_000;

/// `(server, session id)`: ids start again from `$0` on every new server.
type SessionKey = (ServerKey, i64);

/// The filters only a command's placement can settle (its window, who typed
/// it), to check on each command as it is read: see
/// [`Database::conditions_placed_later`].
#[derive(Debug, Clone)]
pub struct Placed {
    windows: Option<HashSet<(ServerKey, i64)>>,
    typist: Option<String>,
}

impl Placed {
    /// Whether `command`, placed at `place` (None: outside tmux, or on a
    /// server without events), ran in one of the windows and was typed by
    /// the typist.
    pub fn keeps(&self, command: &CommandRecord, place: Option<&Placement>) -> bool {
        let server = command.tmux_socket.as_deref().zip(command.tmux_server_pid);
        self.keeps_at(server, &command.user, place)
    }

    fn keeps_at(&self, server: Option<(&str, i64)>, user: &str, place: Option<&Placement>) -> bool {
        let in_window = self.windows.as_ref().is_none_or(|windows| {
            let window = place.and_then(|p| p.window_id);
            match (server, window) {
                (Some((socket, pid)), Some(w)) => windows.contains(&((socket.to_string(), pid), w)),
                _ => false,
            }
        });
        let typed = self
            .typist
            .as_deref()
            .is_none_or(|wanted| typist(place, user) == wanted);
        in_window && typed
    }
}

impl Database {
    /// The SQL conditions for `filters`, the tmux ones included.
    pub fn conditions(&mut self, filters: &Filters) -> Result<Conditions> {
        let (mut c, placed) = self.conditions_placed_later(filters)?;
        if let Some(placed) = placed {
            self.narrow_by_placement(&mut c, &placed)?;
        }
        Ok(c)
    }

    /// The SQL conditions for `filters`, and, for a window or a typist, the
    /// check each command the conditions keep must still pass once placed
    /// ([`Placed::keeps`]): a search that stops at a limit places only the
    /// newest commands instead of every one. With a window, the conditions
    /// keep only the commands of its panes.
    pub fn conditions_placed_later(
        &self,
        filters: &Filters,
    ) -> Result<(Conditions, Option<Placed>)> {
        let mut c = filters.conditions()?;
        self.read_ranges_by_index_when_few(&mut c)?;
        if let Some(session) = filters.session_name() {
            self.session_condition(&mut c, session, filters.live_session.clone())?;
        }
        let windows = match &filters.window {
            Some(window) => Some(self.windows(window)?),
            None => None,
        };
        if windows.is_none() && filters.typed_by.is_none() {
            return Ok((c, None));
        }
        let placed = Placed {
            windows,
            typist: filters.typed_by.clone(),
        };
        let (with_events, panes) = self.placeable(&placed)?;
        match (&placed.windows, &placed.typist) {
            (Some(_), _) => match candidates_of(&with_events, panes.as_deref()) {
                Some((sql, params)) => c.push(&sql, params),
                None => c.push("0", []),
            },
            // No server has events: every command was typed by its shell's
            // user, a plain condition.
            (None, Some(user)) if with_events.is_empty() => {
                c.push("user = ?", [Value::Text(user.clone())]);
                return Ok((c, None));
            }
            // Any command can have been typed by the typist (on a server
            // with events, by its client): no condition that would keep
            // SQLite from reading the rows newest first.
            (None, Some(_)) | (None, None) => {}
        }
        Ok((c, Some(placed)))
    }

    /// `--min-duration` and `--cwd-under` are ranges: their index (version
    /// 18) gives the rows in the range, not in time order, so a search
    /// must sort every one of them to show the newest. That pays when the
    /// range holds few rows (a rare duration: 1 ms instead of reading
    /// every row), not when it holds many (`--min-duration 4s` keeps a
    /// fifth of the rows: sorting them took longer than reading the newest
    /// rows until 20 match). So the index is counted into first, up to
    /// [`FEW_IN_RANGE`] rows: when the range holds more, it is left out of
    /// the plan (`+column`, which SQLite does not look up in an index).
    fn read_ranges_by_index_when_few(&self, c: &mut Conditions) -> Result<()> {
        // (The clause, its column, how many parameters it takes, and
        // whether it needs a hint to be read by its index when its range
        // holds few rows: without one SQLite reckons a range of durations
        // keeps a quarter of the rows, and reads newest first instead.)
        // The clause is spelled once, in `filter.rs`; its two forms here
        // are made from it.
        for (clause, column, count, hint) in [
            (MIN_DURATION, "duration_us", 1, true),
            (CWD_UNDER, "cwd", 3, false),
        ] {
            let few = match hint {
                true => format!("likelihood({clause}, 0.001)"),
                false => clause.to_string(),
            };
            let many = clause.replace(column, &format!("+{column}"));
            let first_param = c.clauses.iter().position(|cl| cl == clause);
            let Some(at) = first_param else { continue };
            // The clause's parameters: those of the clauses before it first.
            let before: usize = c.clauses[..at]
                .iter()
                .map(|cl| cl.matches('?').count())
                .sum();
            let params = &c.params[before..before + count];
            let found: i64 = self.conn.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM commands WHERE {clause} LIMIT {FEW_IN_RANGE})"
                ),
                rusqlite::params_from_iter(params),
                |r| r.get(0),
            )?;
            c.replace(clause, if found < FEW_IN_RANGE { &few } else { &many });
        }
        Ok(())
    }

    /// A name matches every session that ever had it, in the recorded
    /// events or in the running tmux server (`live`, which the caller asked
    /// tmux for); a bare number that no session had as its name is a session
    /// id on any server. (`$N` is a plain condition of `Filters`.)
    fn session_condition(
        &self,
        c: &mut Conditions,
        session: &str,
        live: Option<SessionKey>,
    ) -> Result<()> {
        let mut named = self.sessions_named(session)?;
        named.extend(live);
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

    /// The servers whose commands can be placed (those with events; with
    /// windows, only those that had them), and with windows the panes that
    /// were in them.
    #[allow(clippy::type_complexity)]
    fn placeable(
        &self,
        placed: &Placed,
    ) -> Result<(Vec<ServerKey>, Option<Vec<(ServerKey, String)>>)> {
        let mut with_events: Vec<ServerKey> = {
            let mut stmt = self
                .conn
                .prepare("SELECT DISTINCT tmux_socket, tmux_server_pid FROM tmux_events")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        if let Some(windows) = &placed.windows {
            // Only the servers that had the windows.
            with_events.retain(|server| windows.iter().any(|(s, _)| s == server));
        }
        with_events.sort();
        let panes = placed
            .windows
            .as_ref()
            .map(|windows| self.panes_in(windows))
            .transpose()?;
        Ok((with_events, panes))
    }

    /// Every pane that any event put in one of `windows` (of its server):
    /// the only panes whose commands can be placed in them.
    fn panes_in(&self, windows: &HashSet<(ServerKey, i64)>) -> Result<Vec<(ServerKey, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT pane FROM tmux_events
             WHERE tmux_socket = ?1 AND tmux_server_pid = ?2 AND window_id = ?3
               AND pane IS NOT NULL",
        )?;
        let mut panes = Vec::new();
        for ((socket, pid), window) in windows {
            let rows = stmt.query_map(rusqlite::params![socket, pid, window], |r| {
                r.get::<_, String>(0)
            })?;
            for pane in rows {
                panes.push(((socket.clone(), *pid), pane?));
            }
        }
        panes.sort();
        panes.dedup();
        Ok(panes)
    }

    /// Keeps, of the commands `c` selects, those that ran in one of
    /// `windows` and were typed by `typist`, as their placement says.
    ///
    /// Only the commands of servers that have tmux events are placed: a
    /// command of a server without any (or outside tmux) has no window and
    /// was typed by its shell's user, which is a plain condition. Those
    /// placed are read in time order and placed one at a time (the replay
    /// is one pass), keeping only the ids that pass: memory grows with the
    /// commands kept, not those read (all of them were held, placed, at
    /// 1.1 GB for `--typed-by` at a million rows).
    ///
    /// A typist alone is read from who typed each command as the running
    /// totals by typist note it, brought up to date first (the new rows
    /// placed, or all again after an event that places counted commands
    /// otherwise), and the ids copied in the same transaction (a prune
    /// that forgets the totals next cannot empty them under the query):
    /// 0.2 s instead of 1.3 s for a report at a million rows. Where the
    /// totals cannot be brought up to date (a read-only database, another
    /// writer), the commands are placed here.
    pub fn narrow_by_placement(&mut self, c: &mut Conditions, placed: &Placed) -> Result<()> {
        let (with_events, panes) = self.placeable(placed)?;
        // A table of its own per call: conditions made earlier keep theirs.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let table = format!(
            "temp.placed_ids_{}",
            CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let kept = format!("id IN (SELECT id FROM {table})");
        if let (None, Some(user)) = (&placed.windows, &placed.typist)
            && !with_events.is_empty()
            && self.typed_by_into(user, &table)
        {
            c.push(&kept, []);
            return Ok(());
        }
        let mut ids: Vec<i64> = Vec::new();
        if let Some((sql, params)) = candidates_of(&with_events, panes.as_deref()) {
            let mut candidates = c.clone();
            candidates.push(&sql, params);
            let mut replay = Replay::new(
                self.tmux_events(None)?
                    .into_iter()
                    .map(|e| e.event)
                    .collect(),
            );
            let mut stmt = self.conn.prepare(&format!(
                "SELECT id, user, tmux_socket, tmux_server_pid, tmux_pane, tmux_session_id,
                        started_at_us
                 FROM commands {} ORDER BY started_at_us, id",
                candidates.where_sql()
            ))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(&candidates.params))?;
            while let Some(row) = rows.next()? {
                let socket: String = row.get(2)?;
                let pid: i64 = row.get(3)?;
                let pane: Option<String> = row.get(4)?;
                let place =
                    replay.place_at(&socket, pid, pane.as_deref(), row.get(5)?, row.get(6)?);
                let user = row.get_ref(1)?.as_str().unwrap_or_default();
                if placed.keeps_at(Some((&socket, pid)), user, place.as_ref()) {
                    ids.push(row.get(0)?);
                }
            }
        }
        // Only the temporary database is written, so a read-only one will do.
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch(&format!(
            "CREATE TEMP TABLE {table} (id INTEGER PRIMARY KEY);"
        ))?;
        {
            let mut insert = tx.prepare(&format!("INSERT INTO {table} (id) VALUES (?1)"))?;
            for id in ids {
                insert.execute([id])?;
            }
        }
        tx.commit()?;
        match (&placed.windows, &placed.typist) {
            // A window is known only from a server's events.
            (Some(_), _) => c.push(&kept, []),
            // No server has events: every command was typed by its
            // shell's user (read through the index by user).
            (None, Some(user)) if with_events.is_empty() => {
                c.push("user = ?", [Value::Text(user.to_string())]);
            }
            (None, Some(user)) => {
                // Typed by the shell's user: outside tmux, or on a server
                // without events.
                let (servers, mut params) = servers_sql(&with_events);
                params.insert(0, Value::Text(user.to_string()));
                c.push(
                    &format!(
                        "({kept} OR (user = ? AND (tmux_socket IS NULL \
                         OR tmux_server_pid IS NULL OR NOT {servers})))"
                    ),
                    params,
                );
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// `(tmux_socket, tmux_server_pid) IN (…)` for `servers`, and its parameters.
fn servers_sql(servers: &[ServerKey]) -> (String, Vec<Value>) {
    let tuples = vec!["(?, ?)"; servers.len()].join(", ");
    (
        format!("(tmux_socket, tmux_server_pid) IN (VALUES {tuples})"),
        servers
            .iter()
            .flat_map(|(socket, pid)| [Value::Text(socket.clone()), Value::Integer(*pid)])
            .collect(),
    )
}

/// The condition on the commands that can be placed: on `servers`, and in
/// one of `panes` when given (a command is in a window only if its pane
/// was, as an event said: only those panes' commands are read, through the
/// index by pane). None when no command can be.
fn candidates_of(
    servers: &[ServerKey],
    panes: Option<&[(ServerKey, String)]>,
) -> Option<(String, Vec<Value>)> {
    if servers.is_empty() || panes.is_some_and(|p| p.is_empty()) {
        return None;
    }
    let (mut sql, mut params) = servers_sql(servers);
    // Past this many panes (window ids start again on every server, so
    // `@4` can name a window on each of hundreds of servers) they are not
    // named, to stay far below SQLite's limit on parameters: every command
    // of the servers is then placed.
    if let Some(panes) = panes.filter(|p| p.len() <= NAMED_PANES) {
        let names = vec!["?"; panes.len()].join(", ");
        let tuples = vec!["(?, ?, ?)"; panes.len()].join(", ");
        sql.push_str(&format!(
            " AND tmux_pane IN ({names}) \
             AND (tmux_socket, tmux_server_pid, tmux_pane) IN (VALUES {tuples})"
        ));
        params.extend(panes.iter().map(|(_, pane)| Value::Text(pane.clone())));
        params.extend(panes.iter().flat_map(|((socket, pid), pane)| {
            [
                Value::Text(socket.clone()),
                Value::Integer(*pid),
                Value::Text(pane.clone()),
            ]
        }));
    }
    Some((sql, params))
}

#[cfg(test)]
mod tests {
    //! Which index a search's filters are read through (`EXPLAIN QUERY
    //! PLAN` of the query `search` runs), at a database's real schema.
    use super::*;
    use chrono::Duration;
    use std::path::PathBuf;

    fn plan(db: &mut Database, filters: &Filters) -> String {
        let c = db.conditions(filters).unwrap();
        let mut stmt = db
            .conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT id FROM commands {}
                 ORDER BY started_at_us DESC, id DESC LIMIT 20",
                c.where_sql()
            ))
            .unwrap();
        let steps = stmt
            .query_map(rusqlite::params_from_iter(&c.params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        steps.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    /// `rows` commands of an hour each, in /home/bob/src.
    fn database(rows: i64) -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("audit.db")).unwrap();
        db.conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO commands (command, started_at_us, duration_us, cwd, user, uid,
                                       host, shell, shell_session, seq, recorded_at_us)
                 SELECT 'make', i, 3600000000, '/home/bob/src', 'bob', 1000, 'h', 'bash',
                        's', i, i FROM n",
                [rows],
            )
            .unwrap();
        (dir, db)
    }

    #[test]
    fn each_filter_of_a_search_reads_its_own_index() {
        let (_dir, mut db) = database(0);
        let cases = [
            (
                "commands_by_user",
                Filters {
                    user: Some("bob".into()),
                    ..Filters::default()
                },
            ),
            (
                "commands_by_cwd",
                Filters {
                    cwd: Some(PathBuf::from("/home/bob")),
                    ..Filters::default()
                },
            ),
            (
                "commands_by_shell",
                Filters {
                    shell: Some(crate::record::Shell::Fish),
                    ..Filters::default()
                },
            ),
            (
                "commands_by_exit",
                Filters {
                    exit_status: Some(2),
                    ..Filters::default()
                },
            ),
            (
                "commands_by_socket",
                Filters {
                    socket: Some("/tmp/tmux-1000/default".into()),
                    ..Filters::default()
                },
            ),
            (
                "commands_by_user",
                Filters {
                    typed_by: Some("bob".into()),
                    ..Filters::default()
                },
            ),
            // Ranges that hold few rows (here none).
            (
                "commands_by_duration",
                Filters {
                    min_duration: Some(Duration::hours(1)),
                    ..Filters::default()
                },
            ),
            (
                "commands_by_cwd",
                Filters {
                    cwd_under: Some(PathBuf::from("/home/bob")),
                    ..Filters::default()
                },
            ),
        ];
        for (index, filters) in cases {
            let plan = plan(&mut db, &filters);
            assert!(plan.contains(index), "{filters:?}: {plan}");
        }
    }

    /// A window holds the commands of every pane an event put in it, from
    /// then on: a pane moved in later counts from its move, and a pane no
    /// event placed is in no window.
    #[test]
    fn a_window_holds_the_commands_of_the_panes_events_put_in_it() {
        use crate::lifecycle::TmuxEvent;
        use crate::record::{CommandRecord, Entry};
        let (_dir, mut db) = database(0);
        let event = |key: &str, at_us: i64, window: i64, pane: &str| {
            Entry::TmuxEvent(TmuxEvent {
                event: "seen".into(),
                at_us,
                event_key: key.into(),
                host: "h".into(),
                user: "bob".into(),
                tmux_socket: "/tmp/tmux-1000/default".into(),
                tmux_server_pid: 7,
                session_id: Some(1),
                session_name: Some("work".into()),
                window_id: Some(window),
                window_index: Some(window),
                pane: Some(pane.into()),
                ..TmuxEvent::default()
            })
        };
        let command = |seq: i64, at_us: i64, pane: &str| {
            Entry::Command(CommandRecord {
                command: format!("cmd-{seq}"),
                started_at_us: at_us,
                user: "bob".into(),
                host: "h".into(),
                shell: "bash".into(),
                shell_session: "in-tmux".into(),
                seq,
                tmux_socket: Some("/tmp/tmux-1000/default".into()),
                tmux_server_pid: Some(7),
                tmux_session_id: Some(1),
                tmux_pane: Some(pane.into()),
                ..CommandRecord::default()
            })
        };
        let entries = [
            event("a", 1, 1, "%1"),
            event("b", 1, 2, "%2"),
            command(1, 5, "%1"),
            command(2, 5, "%2"),
            event("c", 10, 1, "%2"), // %2 joins window 1
            command(3, 15, "%2"),
            command(4, 15, "%3"), // no event named %3
            command(5, 15, "%1"),
        ];
        db.insert_all(entries.iter().map(|e| (e, 1))).unwrap();
        let mut in_window = |window: &str| -> Vec<String> {
            let c = db
                .conditions(&Filters {
                    window: Some(window.into()),
                    ..Filters::default()
                })
                .unwrap();
            let mut stmt = db
                .conn
                .prepare(&format!(
                    "SELECT command FROM commands {} ORDER BY seq",
                    c.where_sql()
                ))
                .unwrap();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&c.params), |r| r.get(0))
                .unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(in_window("@1"), ["cmd-1", "cmd-3", "cmd-5"]);
        assert_eq!(in_window("@2"), ["cmd-2"]);
        assert_eq!(in_window("work:2"), ["cmd-2"]);
    }

    /// A range that holds many rows is not read through its index (every
    /// row of it would be sorted by time): the newest rows are read until
    /// enough match.
    #[test]
    fn a_range_that_holds_many_rows_is_read_newest_first() {
        let (_dir, mut db) = database(FEW_IN_RANGE);
        for filters in [
            Filters {
                min_duration: Some(Duration::hours(1)),
                ..Filters::default()
            },
            Filters {
                cwd_under: Some(PathBuf::from("/home/bob")),
                ..Filters::default()
            },
        ] {
            let plan = plan(&mut db, &filters);
            assert!(
                plan.contains("commands_by_start") && !plan.contains("TEMP B-TREE"),
                "{filters:?}: {plan}"
            );
        }
    }
}
