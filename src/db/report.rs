//! `report`'s counting: commands grouped per pane, session, window, user,
//! host, directory, day or command, in one pass over the matching rows.
//!
//! A report over the whole history (no filter) of the groups that do not
//! depend on tmux events or the time zone (pane, user, host, directory,
//! command) reads running totals instead, kept in `report_totals` and
//! brought up to date with the rows stored since (as the search index is):
//! rows never change once stored, so the totals stay exact. The same goes
//! for each shell session's count and highest number, which name the
//! records that never arrived.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::{Database, DbError};
use crate::filter::Conditions;
use crate::lifecycle::replay::Replay;

/// How `report` groups commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One row per tmux pane (server and pane id); outside tmux, per shell session.
    Pane,
    /// One row per tmux session (server and session id), named as it was
    /// last; outside tmux, one row.
    Session,
    /// One row per tmux window (server and window id), from the tmux events
    /// (see `init tmux`).
    Window,
    /// One row per user whose tmux client typed the commands (in a shared
    /// session, the latest active client's); outside tmux, the shell's user.
    ClientUser,
    User,
    Host,
    Cwd,
    /// One row per local calendar day.
    Day,
    /// One row per distinct command text.
    Command,
}

/// A shell session with holes in its sequence (seq runs 1, 2, 3… and is
/// unique per session, so `highest_seq - recorded` records are missing).
#[derive(Debug, Clone)]
pub struct SequenceGap {
    pub shell_session: String,
    pub user: String,
    pub host: String,
    pub recorded: i64,
    pub highest_seq: i64,
    pub first_us: i64,
    pub last_us: i64,
}

/// One group of a report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportRow {
    pub key: String,
    pub commands: i64,
    pub failures: i64,
    pub first_us: i64,
    pub last_us: i64,
    pub total_duration_us: i64,
    pub longest_us: i64,
    /// Pane, session and place, where they are one per group (else the first seen).
    pub tmux_pane: Option<String>,
    pub tmux_socket: Option<String>,
    pub tmux_server_pid: Option<i64>,
    pub tmux_session_id: Option<i64>,
    pub shell_session: String,
    pub users: String,
    pub hosts: String,
    pub top_cwd: Option<String>,
    pub top_command: Option<String>,
    /// Session and window names as the tmux events last had them (with
    /// `--by session`, `window` and `client-user`).
    pub session_name: Option<String>,
    pub window_index: Option<i64>,
    pub window_name: Option<String>,
}

impl GroupBy {
    /// Whether grouping needs to know where commands ran and who typed them.
    fn needs_placement(self) -> bool {
        matches!(
            self,
            GroupBy::Session | GroupBy::Window | GroupBy::ClientUser
        )
    }
}

impl GroupBy {
    /// The name its running totals are kept under, for the groupings that
    /// have them.
    fn totals_name(self) -> Option<&'static str> {
        match self {
            GroupBy::Pane => Some("pane"),
            GroupBy::User => Some("user"),
            GroupBy::Host => Some("host"),
            GroupBy::Cwd => Some("cwd"),
            GroupBy::Command => Some("command"),
            // Session, window and typist come from tmux events, which can
            // arrive after the commands; days depend on the time zone.
            GroupBy::Session | GroupBy::Window | GroupBy::ClientUser | GroupBy::Day => None,
        }
    }
}

const REPORT_COLUMNS: &str = "tmux_socket, tmux_server_pid, tmux_pane, tmux_session_id, \
    shell_session, exit_status, started_at_us, duration_us, user, host, cwd, command";

impl Database {
    /// Commands grouped, counted and timed, in no particular order.
    pub fn report(
        &mut self,
        by: GroupBy,
        conditions: &Conditions,
    ) -> Result<Vec<ReportRow>, DbError> {
        if conditions.clauses.is_empty() {
            if let Some(name) = by.totals_name() {
                if let Some(groups) = self.report_totals(by, name) {
                    return Ok(finish_all(groups));
                }
            }
        }
        // Names and typists come from replaying the tmux events, which is
        // one pass when the commands come in time order.
        let replay = match by.needs_placement() {
            true => Some(Replay::new(
                self.tmux_events(None)?
                    .into_iter()
                    .map(|e| e.event)
                    .collect(),
            )),
            false => None,
        };
        let mut groups = HashMap::new();
        count_into(
            &self.conn,
            by,
            (&conditions.where_sql(), &conditions.params),
            replay,
            &mut groups,
            None,
        )?;
        Ok(finish_all(groups))
    }

    /// Shell sessions whose sequence numbers have holes: records that never
    /// arrived (a hook removed or broken mid-session, a lost record). From
    /// the running totals per session, brought up to date first; from
    /// every row when they cannot be (a read-only database).
    pub fn sequence_gaps(&mut self) -> Result<Vec<SequenceGap>, DbError> {
        let updated = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                update_session_totals(&tx)?;
                tx.commit()
            })
            .is_ok();
        let sql = if updated {
            "SELECT shell_session, user, host, recorded, highest_seq, first_us, last_us
             FROM session_totals WHERE highest_seq <> recorded ORDER BY first_us"
        } else {
            "SELECT shell_session, min(user), min(host), count(*), max(seq), min(started_at_us),
                    max(started_at_us)
             FROM commands GROUP BY shell_session
             HAVING max(seq) <> count(*)
             ORDER BY min(started_at_us)"
        };
        let mut stmt = self.conn.prepare(sql)?;
        let gaps = stmt.query_map([], |r| {
            Ok(SequenceGap {
                shell_session: r.get(0)?,
                user: r.get(1)?,
                host: r.get(2)?,
                recorded: r.get(3)?,
                highest_seq: r.get(4)?,
                first_us: r.get(5)?,
                last_us: r.get(6)?,
            })
        })?;
        Ok(gaps.collect::<Result<_, _>>()?)
    }

    /// The groups of a whole-history report from the running totals kept
    /// as `name`, brought up to date first. None when they cannot be (a
    /// read-only database, another writer): the caller counts every row.
    fn report_totals(&mut self, by: GroupBy, name: &str) -> Option<HashMap<String, Group>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ok()?;
        let groups = update_totals(&tx, by, name).ok()?;
        tx.commit().ok()?;
        Some(groups)
    }
}

/// Folds the rows stored since into the totals per shell session.
fn update_session_totals(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let done: i64 = tx
        .query_row(
            "SELECT counted_up_to FROM totals_state WHERE name = 'sessions'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let newest: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM commands", [], |r| {
        r.get(0)
    })?;
    if newest <= done {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO session_totals
            (shell_session, user, host, recorded, highest_seq, first_us, last_us)
         SELECT shell_session, min(user), min(host), count(*), max(seq), min(started_at_us),
                max(started_at_us)
         FROM commands WHERE id > ?1 AND id <= ?2 GROUP BY shell_session
         ON CONFLICT (shell_session) DO UPDATE SET
            user = min(user, excluded.user),
            host = min(host, excluded.host),
            recorded = recorded + excluded.recorded,
            highest_seq = max(highest_seq, excluded.highest_seq),
            first_us = min(first_us, excluded.first_us),
            last_us = max(last_us, excluded.last_us)",
        params![done, newest],
    )?;
    tx.execute(
        "INSERT INTO totals_state (name, counted_up_to) VALUES ('sessions', ?1)
         ON CONFLICT (name) DO UPDATE SET counted_up_to = excluded.counted_up_to",
        [newest],
    )?;
    Ok(())
}

/// Folds the rows stored since the totals of `name` were last brought up
/// to date into them, inside the write transaction `tx`; the groups.
fn update_totals(
    tx: &rusqlite::Transaction<'_>,
    by: GroupBy,
    name: &str,
) -> Result<HashMap<String, Group>, DbError> {
    let mut done: i64 = tx
        .query_row(
            "SELECT counted_up_to FROM totals_state WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let newest: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM commands", [], |r| {
        r.get(0)
    })?;
    let mut groups = HashMap::new();
    {
        let mut stmt = tx.prepare("SELECT key, state FROM report_totals WHERE name = ?1")?;
        let mut rows = stmt.query([name])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(1)?;
            match serde_json::from_str::<Group>(&state) {
                Ok(group) => {
                    groups.insert(r.get(0)?, group);
                }
                // Written by another version: count again from the start.
                Err(_) => {
                    groups.clear();
                    done = 0;
                    break;
                }
            }
        }
    }
    if done == 0 {
        tx.execute("DELETE FROM report_totals WHERE name = ?1", [name])?;
    }
    if newest > done {
        let mut touched = HashSet::new();
        let range = [Value::Integer(done), Value::Integer(newest)];
        count_into(
            tx,
            by,
            ("WHERE id > ?1 AND id <= ?2", &range),
            None,
            &mut groups,
            Some(&mut touched),
        )?;
        let mut save = tx.prepare(
            "INSERT INTO report_totals (name, key, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, key) DO UPDATE SET state = excluded.state",
        )?;
        for key in &touched {
            let state = serde_json::to_string(&groups[key]).unwrap_or_default();
            save.execute(params![name, key, state])?;
        }
        tx.execute(
            "INSERT INTO totals_state (name, counted_up_to) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET counted_up_to = excluded.counted_up_to",
            params![name, newest],
        )?;
    }
    Ok(groups)
}

fn finish_all(groups: HashMap<String, Group>) -> Vec<ReportRow> {
    groups
        .into_iter()
        .map(|(key, group)| group.finish(key))
        .collect()
}

/// Counts the rows `filter` (a WHERE clause and its parameters) selects
/// into `groups`, in one pass, reading only the columns a report shows: a
/// GROUP BY per figure would sort the whole table once for each.
/// `touched`: notes the groups that changed.
fn count_into(
    conn: &Connection,
    by: GroupBy,
    filter: (&str, &[Value]),
    mut replay: Option<Replay>,
    groups: &mut HashMap<String, Group>,
    mut touched: Option<&mut HashSet<String>>,
) -> Result<(), DbError> {
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM commands {}{}",
        filter.0,
        if replay.is_some() {
            " ORDER BY started_at_us"
        } else {
            ""
        }
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(filter.1.iter()))?;
    let mut key = String::new();
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> rusqlite::Result<Option<&str>> {
            Ok(r.get_ref(i)?.as_str_or_null().unwrap_or(None))
        };
        let (socket, pid, pane, session_id, shell_session) = (
            text(0)?,
            r.get::<_, Option<i64>>(1)?,
            text(2)?,
            r.get::<_, Option<i64>>(3)?,
            text(4)?.unwrap_or(""),
        );
        let started: i64 = r.get(6)?;
        let (user, host, cwd, command) = (
            text(8)?.unwrap_or(""),
            text(9)?.unwrap_or(""),
            text(10)?.unwrap_or(""),
            text(11)?.unwrap_or(""),
        );
        let place = match (&mut replay, socket, pid) {
            (Some(replay), Some(socket), Some(pid)) => {
                replay.place_at(socket, pid, pane, session_id, started)
            }
            _ => None,
        };
        key.clear();
        match by {
            GroupBy::Pane => match pane {
                Some(pane) => {
                    let _ = write!(key, "{},{},{pane}", socket.unwrap_or(""), pid.unwrap_or(0));
                }
                None => {
                    let _ = write!(key, "shell {shell_session}");
                }
            },
            GroupBy::Session => {
                if let Some(socket) = socket {
                    // Where the pane was then, as the events tell; else `$TMUX`'s.
                    let session = place.as_ref().and_then(|p| p.session_id).or(session_id);
                    let _ = write!(
                        key,
                        "{socket},{},{}",
                        pid.unwrap_or(0),
                        session.unwrap_or(0)
                    );
                }
            }
            GroupBy::Window => {
                if let Some(socket) = socket {
                    let window = place.as_ref().and_then(|p| p.window_id);
                    let window = window.map_or("?".to_string(), |w| w.to_string());
                    let _ = write!(key, "{socket},{},@{window}", pid.unwrap_or(0));
                }
            }
            GroupBy::ClientUser => match place.as_ref().and_then(|p| p.client_user()) {
                Some(client_user) => key.push_str(client_user),
                None if socket.is_none() => key.push_str(user),
                None => {
                    let _ = write!(key, "{user} (no client known)");
                }
            },
            GroupBy::User => key.push_str(user),
            GroupBy::Host => key.push_str(host),
            GroupBy::Cwd => key.push_str(cwd),
            GroupBy::Day => key.push_str(&local_day(started)),
            GroupBy::Command => key.push_str(command),
        }
        if let Some(touched) = touched.as_deref_mut() {
            if !touched.contains(key.as_str()) {
                touched.insert(key.clone());
            }
        }
        let group = match groups.get_mut(key.as_str()) {
            Some(group) => group,
            None => groups.entry(key.clone()).or_insert_with(|| {
                Group::new(socket, pid, pane, session_id, shell_session, started)
            }),
        };
        if let Some(place) = place {
            // The latest names: the rows come in time order.
            group.row.session_name = place.session_name;
            group.row.window_index = place.window_index;
            group.row.window_name = place.window_name;
            if place.session_id.is_some() {
                group.row.tmux_session_id = place.session_id;
            }
        }
        group.add(
            r.get::<_, Option<i64>>(5)?.is_some_and(|s| s != 0),
            started,
            r.get::<_, Option<i64>>(7)?.unwrap_or(0),
            user,
            host,
            (by != GroupBy::Cwd).then_some(cwd),
            (by != GroupBy::Command).then_some(command),
        );
    }
    Ok(())
}

fn local_day(us: i64) -> String {
    crate::timespec::local_format(us, "%Y-%m-%d")
}

/// A report group being counted: what its row shows, and what it takes to
/// keep counting (every user and host seen, each directory's and each
/// command's count).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    row: ReportRow,
    users: Vec<String>,
    hosts: Vec<String>,
    cwds: HashMap<String, u32>,
    commands: HashMap<String, u32>,
}

impl Group {
    fn new(
        socket: Option<&str>,
        pid: Option<i64>,
        pane: Option<&str>,
        session_id: Option<i64>,
        shell_session: &str,
        started: i64,
    ) -> Group {
        Group {
            row: ReportRow {
                tmux_socket: socket.map(str::to_string),
                tmux_server_pid: pid,
                tmux_pane: pane.map(str::to_string),
                tmux_session_id: session_id,
                shell_session: shell_session.to_string(),
                first_us: started,
                last_us: started,
                ..ReportRow::default()
            },
            users: Vec::new(),
            hosts: Vec::new(),
            cwds: HashMap::new(),
            commands: HashMap::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        failed: bool,
        started: i64,
        duration: i64,
        user: &str,
        host: &str,
        cwd: Option<&str>,
        command: Option<&str>,
    ) {
        let row = &mut self.row;
        row.commands += 1;
        row.failures += i64::from(failed);
        row.first_us = row.first_us.min(started);
        row.last_us = row.last_us.max(started);
        row.total_duration_us += duration;
        row.longest_us = row.longest_us.max(duration);
        for (seen, value) in [(&mut self.users, user), (&mut self.hosts, host)] {
            if !seen.iter().any(|s| s == value) {
                seen.push(value.to_string());
            }
        }
        for (counts, value) in [(&mut self.cwds, cwd), (&mut self.commands, command)] {
            let Some(value) = value else { continue };
            match counts.get_mut(value) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(value.to_string(), 1);
                }
            }
        }
    }

    fn finish(mut self, key: String) -> ReportRow {
        // The most frequent value; ties go to the one that sorts first.
        let top = |counts: HashMap<String, u32>| {
            counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(value, _)| value)
        };
        self.users.sort();
        self.hosts.sort();
        self.row.key = key;
        self.row.users = self.users.join(",");
        self.row.hosts = self.hosts.join(",");
        self.row.top_cwd = top(self.cwds);
        self.row.top_command = top(self.commands);
        self.row
    }
}
