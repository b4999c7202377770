//! The queries: storing a command, finding commands, counting them.

use std::collections::HashMap;

use regex::Regex;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row, TransactionBehavior};

use super::{Database, DbError, StoredCommand};
use crate::filter::Conditions;
use crate::record::CommandRecord;

/// The columns of a [`StoredCommand`], in the order `stored_command` reads them.
const COLUMNS: &str = "id, recorded_at_us, command, command_raw, exit_status, started_at_us, \
    duration_us, cwd, cwd_raw, user, uid, login_uid, sudo_user, host, shell, shell_session, seq, \
    tty, ssh_connection, tmux_socket, tmux_server_pid, tmux_session_id, tmux_pane";

/// What to find: conditions from the filters and pattern, how many, and
/// whether to keep only the newest of each distinct command. `scan_first`:
/// the same search without the text index, tried first on the newest rows.
#[derive(Debug, Default)]
pub struct SearchQuery {
    pub conditions: Conditions,
    pub scan_first: Option<Conditions>,
    pub limit: Option<usize>,
    pub unique: bool,
}

/// How many of the newest rows a search reads directly before it asks the
/// text index: enough for a common word's newest matches, few enough to
/// cost a rare word's search only milliseconds.
const SCAN_WINDOW: i64 = 20_000;

/// How `report` groups commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One row per tmux pane (server and pane id); outside tmux, per shell session.
    Pane,
    /// One row per tmux session (server and session id); outside tmux, one row.
    Session,
    User,
    Host,
    Cwd,
    /// One row per local calendar day.
    Day,
    /// One row per distinct command text.
    Command,
}

impl GroupBy {
    /// The SQL expression that names a group.
    fn key_sql(self) -> &'static str {
        match self {
            GroupBy::Pane => {
                "CASE WHEN tmux_pane IS NULL THEN 'shell ' || shell_session \
                 ELSE tmux_socket || ',' || tmux_server_pid || ',' || tmux_pane END"
            }
            GroupBy::Session => {
                "CASE WHEN tmux_socket IS NULL THEN '' \
                 ELSE tmux_socket || ',' || tmux_server_pid || ',' || tmux_session_id END"
            }
            GroupBy::User => "user",
            GroupBy::Host => "host",
            GroupBy::Cwd => "cwd",
            GroupBy::Day => "date(started_at_us / 1000000, 'unixepoch', 'localtime')",
            GroupBy::Command => "command",
        }
    }
}

/// One group of a report.
#[derive(Debug, Clone, Default, serde::Serialize)]
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
}

impl Database {
    /// Stores one command. Returns false when that command (same shell
    /// session and sequence number) was stored before.
    pub fn insert(&mut self, record: &CommandRecord, recorded_at_us: i64) -> Result<bool, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO commands (
                command, command_raw, exit_status, started_at_us, duration_us, cwd, cwd_raw,
                user, uid, login_uid, sudo_user, host, shell, shell_session, seq, tty,
                ssh_connection, tmux_socket, tmux_server_pid, tmux_session_id, tmux_pane,
                recorded_at_us
            ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                      ?17, ?18, ?19, ?20, ?21, ?22)
            ON CONFLICT (shell_session, seq) DO NOTHING",
            params![
                record.command,
                record.command_raw,
                record.exit_status,
                record.started_at_us,
                record.duration_us,
                record.cwd,
                record.cwd_raw,
                record.user,
                record.uid,
                record.login_uid,
                record.sudo_user,
                record.host,
                record.shell,
                record.shell_session,
                record.seq,
                record.tty,
                record.ssh_connection,
                record.tmux_socket,
                record.tmux_server_pid,
                record.tmux_session_id,
                record.tmux_pane,
                recorded_at_us,
            ],
        )?;
        tx.commit()?;
        Ok(inserted == 1)
    }

    /// Registers `REGEXP` (Rust regex syntax), which searches use.
    pub fn enable_regexp(&self) -> Result<(), DbError> {
        self.conn.create_scalar_function(
            "regexp",
            2,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                // Compiled once per statement, not once per row.
                let regex = ctx.get_or_create_aux(0, |pattern| {
                    Regex::new(pattern.as_str()?)
                        .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
                })?;
                let text = ctx.get_raw(1).as_str().unwrap_or("");
                Ok(regex.is_match(text))
            },
        )?;
        Ok(())
    }

    /// Adds the text of the rows recorded since the last search to the
    /// trigram index, and says whether the index now covers every row. It
    /// cannot when the database is read-only or another process holds the
    /// write lock; searches then read the text itself, which is slower but
    /// finds the same rows, so the reason is not worth an error.
    pub fn update_search_index(&mut self) -> bool {
        let mut update = || -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO commands_fts (rowid, command)
                 SELECT id, command FROM commands WHERE id > (SELECT indexed_up_to FROM search_index_state)",
                [],
            )?;
            tx.execute("UPDATE search_index_state SET indexed_up_to = (SELECT coalesce(max(id), 0) FROM commands)", [])?;
            tx.commit()
        };
        update().is_ok()
    }

    /// Matching commands, newest first.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<StoredCommand>, DbError> {
        if let (Some(scan), Some(limit), false) = (&query.scan_first, query.limit, query.unique) {
            // Where the window of the newest rows starts; None: it holds every row.
            let floor: Option<i64> = self
                .conn
                .query_row(
                    "SELECT started_at_us FROM commands ORDER BY started_at_us DESC LIMIT 1 OFFSET ?",
                    [SCAN_WINDOW],
                    |r| r.get(0),
                )
                .optional()?;
            let mut window = scan.clone();
            if let Some(floor) = floor {
                window.clauses.push("started_at_us > ?".into());
                window.params.push(Value::Integer(floor));
            }
            let found = self.select(&window, false, Some(limit))?;
            if found.len() == limit || floor.is_none() {
                return Ok(found);
            }
        }
        self.select(&query.conditions, query.unique, query.limit)
    }

    fn select(
        &self,
        conditions: &Conditions,
        unique: bool,
        limit: Option<usize>,
    ) -> Result<Vec<StoredCommand>, DbError> {
        let query = SearchQuery {
            conditions: conditions.clone(),
            scan_first: None,
            limit,
            unique,
        };
        let where_sql = query.conditions.where_sql();
        let mut params = query.conditions.params.clone();
        let from = if query.unique {
            // The newest of each distinct command.
            format!(
                "commands WHERE id IN (SELECT max(id) FROM commands {where_sql} GROUP BY command)"
            )
        } else {
            format!("commands {where_sql}")
        };
        let limit = query
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        params.push(Value::Integer(limit));
        let sql =
            format!("SELECT {COLUMNS} FROM {from} ORDER BY started_at_us DESC, id DESC LIMIT ?");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(params), stored_command)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Commands grouped, counted and timed; groups with the most commands first.
    pub fn report(&self, by: GroupBy, conditions: &Conditions) -> Result<Vec<ReportRow>, DbError> {
        let key = by.key_sql();
        let where_sql = conditions.where_sql();
        let sql = format!(
            "SELECT {key} AS k, count(*), sum(exit_status <> 0), min(started_at_us), max(started_at_us),
                    sum(duration_us), max(duration_us), min(tmux_pane), min(tmux_socket),
                    min(tmux_server_pid), min(tmux_session_id), min(shell_session),
                    group_concat(DISTINCT user), group_concat(DISTINCT host)
             FROM commands {where_sql} GROUP BY k ORDER BY count(*) DESC, k"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(conditions.params.iter()), |r| {
            Ok(ReportRow {
                key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                commands: r.get(1)?,
                failures: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                first_us: r.get(3)?,
                last_us: r.get(4)?,
                total_duration_us: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                longest_us: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                tmux_pane: r.get(7)?,
                tmux_socket: r.get(8)?,
                tmux_server_pid: r.get(9)?,
                tmux_session_id: r.get(10)?,
                shell_session: r.get(11)?,
                users: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                hosts: r.get::<_, Option<String>>(13)?.unwrap_or_default(),
                top_cwd: None,
                top_command: None,
            })
        })?;
        let mut report: Vec<ReportRow> = rows.collect::<Result<_, _>>()?;
        if by != GroupBy::Cwd {
            let top = self.most_frequent(key, "cwd", conditions)?;
            for row in &mut report {
                row.top_cwd = top.get(&row.key).cloned();
            }
        }
        if by != GroupBy::Command {
            let top = self.most_frequent(key, "command", conditions)?;
            for row in &mut report {
                row.top_command = top.get(&row.key).cloned();
            }
        }
        Ok(report)
    }

    /// For each group, the value of `column` seen most often.
    fn most_frequent(
        &self,
        key: &str,
        column: &str,
        conditions: &Conditions,
    ) -> Result<HashMap<String, String>, DbError> {
        let sql = format!(
            "SELECT k, {column} FROM (
                SELECT {key} AS k, {column}, count(*) AS n,
                       row_number() OVER (PARTITION BY {key} ORDER BY count(*) DESC, {column}) AS rank
                FROM commands {} GROUP BY k, {column}
             ) WHERE rank = 1",
            conditions.where_sql()
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(conditions.params.iter()), |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get::<_, String>(1)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn stored_command(row: &Row<'_>) -> rusqlite::Result<StoredCommand> {
    Ok(StoredCommand {
        id: row.get("id")?,
        recorded_at_us: row.get("recorded_at_us")?,
        record: CommandRecord {
            command: row.get("command")?,
            command_raw: row.get("command_raw")?,
            exit_status: row.get("exit_status")?,
            started_at_us: row.get("started_at_us")?,
            duration_us: row.get("duration_us")?,
            cwd: row.get("cwd")?,
            cwd_raw: row.get("cwd_raw")?,
            user: row.get("user")?,
            uid: row.get("uid")?,
            login_uid: row.get("login_uid")?,
            sudo_user: row.get("sudo_user")?,
            host: row.get("host")?,
            shell: row.get("shell")?,
            shell_session: row.get("shell_session")?,
            seq: row.get("seq")?,
            tty: row.get("tty")?,
            ssh_connection: row.get("ssh_connection")?,
            tmux_socket: row.get("tmux_socket")?,
            tmux_server_pid: row.get("tmux_server_pid")?,
            tmux_session_id: row.get("tmux_session_id")?,
            tmux_pane: row.get("tmux_pane")?,
        },
    })
}
