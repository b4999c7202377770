//! `report`'s counting: commands grouped per pane, session, window, user,
//! host, directory, day or command, in one pass over the matching rows.
//!
//! A report over the whole history (no filter), whatever the grouping,
//! reads running totals instead, kept in `report_totals` and brought up to
//! date with the rows stored since (as the search index is): rows never
//! change once stored, so the totals stay exact. Each group's row is kept
//! ready to print (`shown`), so a report reads a few hundred bytes per
//! group, not the counts it goes on counting from. The groupings that
//! depend on the tmux events (session, window, typist) note the events
//! they were placed with, and the days the time zone they were counted
//! in; an event that could place a counted command otherwise, or another
//! zone, sends them to be counted again ([`totals_outdated`]). The same
//! goes for each shell session's count and highest number, which name the
//! records that never arrived. The totals are outside the hash chain:
//! `verify` counts them again from the rows ([`Database::check_totals`]),
//! and totals that do not match are dropped, to be counted anew.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use super::shown::RowTexts;
use super::{Database, DbError};
use crate::filter::Conditions;
use crate::lifecycle::replay::{typist, Placement, Replay};
use crate::lifecycle::TmuxEvent;

/// How `report` groups commands (see `tmux-audit report --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Per tmux pane (server and pane id); outside tmux, per shell session.
    Pane,
    /// Per tmux session (server and session id); outside tmux, one row.
    Session,
    /// Per tmux window (server and window id), from the tmux events.
    Window,
    /// Per user whose tmux client typed the commands; outside tmux, the
    /// shell's user.
    ClientUser,
    User,
    Host,
    Cwd,
    /// Per local calendar day.
    Day,
    /// Per distinct command text.
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

/// One group of a report. Kept as JSON in the running totals (each
/// group's row as shown, and inside its state), without the key (the
/// totals' column) and what is unknown: a fifth less to read and parse
/// for each of the 141,020 rows of `report --by command` at a million
/// commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    pub commands: i64,
    pub failures: i64,
    pub first_us: i64,
    pub last_us: i64,
    pub total_duration_us: i64,
    pub longest_us: i64,
    /// Pane, session and place, where they are one per group (else the first seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_pane: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_server_pid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_session_id: Option<i64>,
    pub shell_session: String,
    pub users: String,
    pub hosts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_command: Option<String>,
    /// Session and window names as the tmux events last had them (with
    /// `--by session`, `window` and `client-user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_name: Option<String>,
}

impl GroupBy {
    /// Whether grouping needs to know where commands ran and who typed them.
    pub fn needs_placement(self) -> bool {
        matches!(
            self,
            GroupBy::Session | GroupBy::Window | GroupBy::ClientUser
        )
    }
}

/// Running totals that do not match the rows they say they count.
#[derive(Debug, Clone)]
pub struct TotalsMismatch {
    /// What reads them: `report --by user`, or the notes on missing records.
    pub used_by: String,
    /// The first group found wrong, and how.
    pub what: String,
}

impl GroupBy {
    /// Every grouping.
    pub const ALL: [GroupBy; 9] = [
        GroupBy::Pane,
        GroupBy::Session,
        GroupBy::Window,
        GroupBy::ClientUser,
        GroupBy::User,
        GroupBy::Host,
        GroupBy::Cwd,
        GroupBy::Day,
        GroupBy::Command,
    ];

    /// The grouping whose running totals are kept under `name`.
    fn from_totals_name(name: &str) -> Option<GroupBy> {
        GroupBy::ALL
            .into_iter()
            .find(|by| by.totals_name() == Some(name))
    }

    /// The name its running totals are kept under, for the groupings that
    /// have them (all do).
    fn totals_name(self) -> Option<&'static str> {
        Some(match self {
            GroupBy::Pane => "pane",
            GroupBy::Session => "session",
            GroupBy::Window => "window",
            GroupBy::ClientUser => "client-user",
            GroupBy::User => "user",
            GroupBy::Host => "host",
            GroupBy::Cwd => "cwd",
            GroupBy::Day => "day",
            GroupBy::Command => "command",
        })
    }
}

/// The order a replay places commands in: by start time, ties by id.
const TIME_ORDER: &str = "ORDER BY started_at_us, id";

const REPORT_COLUMNS: &str = "tmux_socket, tmux_server_pid, tmux_pane, tmux_session_id, \
    shell_session, exit_status, started_at_us, duration_us, user, host, cwd, command, id";

/// How a report orders its rows, and how many it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Commands,
    Failures,
    Duration,
    Last,
}

/// A report: its rows, ranked and cut to `--top`, and what every group
/// adds up to (also those left out).
pub struct Ranked {
    pub rows: Vec<ReportRow>,
    pub totals: Totals,
}

/// A report to be read a row at a time ([`Database::report_rows`]).
pub struct ReportPlan {
    /// What every group adds up to, shown or not.
    pub totals: Totals,
    /// How many rows it shows: every group, or `--top`.
    pub shown: usize,
    source: RowSource,
}

/// Where a report's rows come from.
enum RowSource {
    /// The totals kept under `name` in `store`, ranked in SQL.
    Totals {
        store: &'static Store,
        name: &'static str,
        sort: SortBy,
        /// `--top`, or -1 for every group.
        limit: i64,
    },
    /// Counted from the matching rows (a filter, or totals that cannot be
    /// brought up to date), ranked and cut to `--top`.
    Counted(Vec<ReportRow>),
}

/// What every group of a report adds up to, shown rows or not.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub groups: usize,
    pub commands: i64,
    pub failures: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub total_duration_us: i64,
    pub longest_us: i64,
}

impl Totals {
    pub fn of(rows: &[ReportRow]) -> Totals {
        Totals {
            groups: rows.len(),
            commands: rows.iter().map(|r| r.commands).sum(),
            failures: rows.iter().map(|r| r.failures).sum(),
            first: rows.iter().map(|r| r.first_us).min(),
            last: rows.iter().map(|r| r.last_us).max(),
            total_duration_us: rows.iter().map(|r| r.total_duration_us).sum(),
            longest_us: rows.iter().map(|r| r.longest_us).max().unwrap_or(0),
        }
    }
}

impl SortBy {
    /// Biggest first; ties in the order of the group's name.
    pub fn sort(self, rows: &mut [ReportRow]) {
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        match self {
            SortBy::Commands => rows.sort_by_key(|r| std::cmp::Reverse(r.commands)),
            SortBy::Failures => rows.sort_by_key(|r| std::cmp::Reverse((r.failures, r.commands))),
            SortBy::Duration => rows.sort_by_key(|r| std::cmp::Reverse(r.total_duration_us)),
            SortBy::Last => rows.sort_by_key(|r| std::cmp::Reverse(r.last_us)),
        }
    }

    /// The same order in SQL, over `report_totals`.
    fn order_sql(self) -> &'static str {
        match self {
            SortBy::Commands => "t.commands DESC, t.key",
            SortBy::Failures => "t.failures DESC, t.commands DESC, t.key",
            SortBy::Duration => "t.total_duration_us DESC, t.key",
            SortBy::Last => "t.last_us DESC, t.key",
        }
    }
}

impl Database {
    /// Commands grouped, counted and timed, ranked by `sort`, the first
    /// `top` kept (all: None), every row in memory (the central store's
    /// output and tests; `report` itself reads them through
    /// [`Database::report_plan`] and [`Database::report_rows`]).
    pub fn report(
        &mut self,
        by: GroupBy,
        conditions: &Conditions,
        sort: SortBy,
        top: Option<usize>,
    ) -> Result<Ranked, DbError> {
        let plan = self.report_plan(by, conditions, sort, top)?;
        let mut rows = Vec::with_capacity(plan.shown.min(10_000));
        self.report_rows(&plan, RowTexts::ALL, &mut |row| -> Result<(), DbError> {
            rows.push(row);
            Ok(())
        })?;
        Ok(Ranked {
            rows,
            totals: plan.totals,
        })
    }

    /// What a report adds up to, and where its rows come from: the running
    /// totals (read a row at a time by [`Database::report_rows`], so a report
    /// of 141,020 commands never holds them all), or, with a filter, the
    /// groups counted from the matching rows.
    pub fn report_plan(
        &mut self,
        by: GroupBy,
        conditions: &Conditions,
        sort: SortBy,
        top: Option<usize>,
    ) -> Result<ReportPlan, DbError> {
        if conditions.clauses.is_empty()
            && let Some(name) = by.totals_name()
            && self.update_totals(by, name)
        {
            return self.plan_of_totals(&KEPT, name, sort, top);
        }
        let replay = replay_for(&self.conn, by)?;
        let mut groups = Groups::default();
        let also = Also {
            budget: Some(self.report_budget),
            ..Also::default()
        };
        let whole = count_into(
            &self.conn,
            by,
            (&conditions.where_sql(), &conditions.params),
            replay,
            &mut groups,
            also,
        )?;
        if !whole {
            drop(groups);
            return self.fold_filtered(by, conditions, sort, top);
        }
        let mut rows = finish_all(groups);
        sort.sort(&mut rows);
        let totals = Totals::of(&rows);
        if let Some(top) = top {
            rows.truncate(top);
        }
        Ok(ReportPlan {
            shown: rows.len(),
            totals,
            source: RowSource::Counted(rows),
        })
    }

    /// A filtered report whose groups would hold more than its budget
    /// ([`IN_MEMORY_BYTES`]): the matching rows folded into temporary totals
    /// ([`FILTERED`]) a range of ids at a time, as the running totals are
    /// counted, and read from them as those are. Slower than counting in
    /// memory, but its memory stays bounded however many rows match. Only
    /// the temporary database is written: a read-only one will do.
    fn fold_filtered(
        &mut self,
        by: GroupBy,
        conditions: &Conditions,
        sort: SortBy,
        top: Option<usize>,
    ) -> Result<ReportPlan, DbError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch(FILTERED_TABLES)?;
        let (first, last): (i64, i64) = tx.query_row(
            "SELECT coalesce(min(id), 1) - 1, coalesce(max(id), 0) FROM commands",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let placing = replay_events(&tx, by)?;
        let mut from = first;
        while from < last {
            let to = last.min(from.saturating_add(FOLD_ROWS));
            let replay = placing.as_ref().map(|events| Replay::new(events.clone()));
            let store = (&FILTERED, FILTERED_NAME);
            fold_rows(&tx, by, store, (from, to), replay, Some(conditions))?;
            from = to;
        }
        tx.commit()?;
        self.plan_of_totals(&FILTERED, FILTERED_NAME, sort, top)
    }

    /// A report read from the totals `name` in `store`, ranked by `sort`,
    /// the first `top` shown.
    fn plan_of_totals(
        &self,
        store: &'static Store,
        name: &'static str,
        sort: SortBy,
        top: Option<usize>,
    ) -> Result<ReportPlan, DbError> {
        let totals = self.totals_of(store, name)?;
        Ok(ReportPlan {
            shown: top.map_or(totals.groups, |top| top.min(totals.groups)),
            totals,
            source: RowSource::Totals {
                store,
                name,
                sort,
                limit: top.map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX)),
            },
        })
    }

    /// Sets how many bytes a filtered report may count in memory, for the
    /// tests to count one both ways.
    #[cfg(test)]
    fn set_report_budget(&mut self, bytes: usize) {
        self.report_budget = bytes;
    }

    /// Hands each row of `plan` to `each`, in rank order, one at a time,
    /// with the texts `texts` names at least (read from the running
    /// totals, the others are left empty). Called again, it reads the
    /// same rows again (a table too narrow to write a row at a time reads
    /// them again to build it whole).
    pub fn report_rows<E: From<DbError>>(
        &self,
        plan: &ReportPlan,
        texts: RowTexts,
        each: &mut dyn FnMut(ReportRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let (store, name, sort, limit) = match &plan.source {
            RowSource::Counted(rows) => return rows.iter().cloned().try_for_each(each),
            RowSource::Totals {
                store,
                name,
                sort,
                limit,
            } => (*store, *name, *sort, *limit),
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT t.key, t.shown FROM {} t
                 WHERE t.name = ?1 ORDER BY {} LIMIT ?2",
                store.totals,
                sort.order_sql()
            ))
            .map_err(DbError::from)?;
        let mut found = stmt.query(params![name, limit]).map_err(DbError::from)?;
        while let Some(r) = found.next().map_err(DbError::from)? {
            each(self.shown_row(store, name, texts, r).map_err(E::from)?)?;
        }
        // Ties beyond SQL's order (the same key order) stay as they are.
        Ok(())
    }

    /// What every group of the totals `name` in `store` adds up to.
    fn totals_of(&self, store: &Store, name: &str) -> Result<Totals, DbError> {
        Ok(self.conn.query_row(&totals_sql(store), [name], |r| {
            Ok(Totals {
                groups: r.get::<_, i64>(0)? as usize,
                commands: r.get(1)?,
                failures: r.get(2)?,
                first: r.get(3)?,
                last: r.get(4)?,
                total_duration_us: r.get(5)?,
                longest_us: r.get(6)?,
            })
        })?)
    }

    /// One group of the totals `name` in `store` as the report shows it,
    /// from a `(key, shown)` row, with the texts `texts` names at least.
    fn shown_row(
        &self,
        store: &Store,
        name: &str,
        texts: RowTexts,
        r: &rusqlite::Row<'_>,
    ) -> Result<ReportRow, DbError> {
        let unreadable = |e: serde_json::Error| {
            DbError::Sqlite(rusqlite::Error::ToSqlConversionFailure(e.into()))
        };
        let key: String = r.get(0)?;
        // Parsed where SQLite holds it, not copied first.
        let shown = (r.get_ref(1)?.as_str_or_null()).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?;
        Ok(match shown {
            Some(shown) => {
                let mut row = super::shown::decode(shown, texts).map_err(unreadable)?;
                row.key = key;
                row
            }
            // Every fold writes it; should it be missing, the state
            // it is made from tells the same.
            None => {
                let state: String = self.conn.query_row(
                    &format!(
                        "SELECT state FROM {} WHERE name = ?1 AND key = ?2",
                        store.states
                    ),
                    params![name, key],
                    |r| r.get(0),
                )?;
                let group: Group = serde_json::from_str(&state).map_err(unreadable)?;
                group.finish(key)
            }
        })
    }

    /// Copies the ids of the commands typed by `typist` (see
    /// `command_typists`) into a new temporary `table`, in the transaction
    /// that brings the running totals by typist that note them up to date;
    /// false when they cannot be.
    pub(super) fn typed_by_into(&mut self, typist: &str, table: &str) -> bool {
        let by = GroupBy::ClientUser;
        let Some(name) = by.totals_name() else {
            return false;
        };
        self.write(|tx| {
            fold_report_totals(tx, by, name)?;
            tx.execute_batch(&format!(
                "CREATE TEMP TABLE {table} (id INTEGER PRIMARY KEY)"
            ))?;
            tx.execute(
                &format!("INSERT INTO {table} SELECT id FROM command_typists WHERE typist = ?1"),
                [typist],
            )?;
            Ok(())
        })
        .is_ok()
    }

    /// Brings the running totals of `name` up to the newest row; false when
    /// they cannot be (a read-only database, another writer): the caller
    /// counts every row instead.
    fn update_totals(&mut self, by: GroupBy, name: &str) -> bool {
        self.write(|tx| fold_report_totals(tx, by, name)).is_ok()
    }

    /// Shell sessions whose sequence numbers have holes: records that never
    /// arrived (a hook removed or broken mid-session, a lost record);
    /// records pruned on purpose count as arrived (`pruned_sessions`). From
    /// the running totals per session, brought up to date first; from
    /// every row when they cannot be (a read-only database).
    pub fn sequence_gaps(&mut self) -> Result<Vec<SequenceGap>, DbError> {
        if self.write(fold_session_totals).is_err() {
            return self.sequence_gaps_counted();
        }
        // A session's highest number is that of its rows or of its pruned
        // ones, whichever is higher (its newest commands may be pruned).
        self.gaps_query(
            "SELECT shell_session, user, host, recorded + pruned, max(highest_seq, pruned_seq),
                    first_us, last_us
             FROM (SELECT t.*, coalesce(p.pruned, 0) AS pruned,
                          coalesce(p.highest_seq, 0) AS pruned_seq
                   FROM session_totals t LEFT JOIN pruned_sessions p USING (shell_session))
             WHERE max(highest_seq, pruned_seq) <> recorded + pruned ORDER BY first_us",
        )
    }

    /// [`Database::sequence_gaps`] from every row, trusting no totals: what
    /// `verify` uses. A session's highest number is that of its rows or of
    /// its pruned ones, whichever is higher.
    pub fn sequence_gaps_counted(&self) -> Result<Vec<SequenceGap>, DbError> {
        self.gaps_query(
            "SELECT shell_session, min(user), min(host), count(*) + pruned,
                    max(max(seq), pruned_seq), min(started_at_us), max(started_at_us)
             FROM (SELECT c.shell_session, c.user, c.host, c.seq, c.started_at_us,
                          coalesce(p.pruned, 0) AS pruned, coalesce(p.highest_seq, 0) AS pruned_seq
                   FROM commands c LEFT JOIN pruned_sessions p USING (shell_session))
             GROUP BY shell_session
             HAVING max(max(seq), pruned_seq) <> count(*) + pruned
             ORDER BY min(started_at_us)",
        )
    }

    fn gaps_query(&self, sql: &str) -> Result<Vec<SequenceGap>, DbError> {
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
}

impl Database {
    /// Counts every set of running totals again from the rows they cover,
    /// and compares: the totals live outside the hash chain, so an edit of
    /// them would otherwise change `report` unseen. Totals that do not
    /// match are dropped (the next `report` counts them again from the
    /// rows) and returned. Totals whose last row changed are left alone:
    /// they are dropped anyway, and the chain names the row.
    pub fn check_totals(&mut self) -> Result<Vec<TotalsMismatch>, DbError> {
        let states: Vec<(String, i64, Option<Vec<u8>>)> = {
            let mut stmt = self.conn.prepare(
                "SELECT name, counted_up_to, counted_hash FROM totals_state ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut wrong = Vec::new();
        for (name, up_to, hash) in states {
            let current: Option<Option<Vec<u8>>> = self
                .conn
                .query_row("SELECT hash FROM commands WHERE id = ?1", [up_to], |r| {
                    r.get(0)
                })
                .optional()?;
            if up_to > 0 && current.as_ref() != Some(&hash) {
                continue;
            }
            // Totals the next report counts again anyway (events that
            // place their commands otherwise, another time zone) are not
            // wrong, only out of date.
            if let Some(by) = GroupBy::from_totals_name(&name)
                && totals_outdated(&self.conn, by, &name)?
            {
                continue;
            }
            let found = match (name.as_str(), GroupBy::from_totals_name(&name)) {
                ("sessions", _) => {
                    self.session_totals_mismatch(up_to)?
                        .map(|what| TotalsMismatch {
                            used_by: "the notes on records that never arrived (`report`)".into(),
                            what,
                        })
                }
                (_, Some(by)) => {
                    self.report_totals_mismatch(by, &name, up_to)?
                        .map(|what| TotalsMismatch {
                            used_by: format!("`report --by {name}`"),
                            what,
                        })
                }
                (_, None) => Some(TotalsMismatch {
                    used_by: format!("totals named {name:?}"),
                    what: "no tmux-audit keeps totals under that name".into(),
                }),
            };
            if let Some(mismatch) = found {
                // Counted again from the rows by the next reader.
                let _ = self
                    .conn
                    .execute("DELETE FROM totals_state WHERE name = ?1", [&name]);
                wrong.push(mismatch);
            }
        }
        Ok(wrong)
    }

    /// How the report totals of `name` differ from the rows up to `up_to`.
    fn report_totals_mismatch(
        &self,
        by: GroupBy,
        name: &str,
        up_to: i64,
    ) -> Result<Option<String>, DbError> {
        let mut counted = Groups::default();
        let mut typists = (by == GroupBy::ClientUser).then(Typists::new);
        count_into(
            &self.conn,
            by,
            ("WHERE id <= ?1", &[Value::Integer(up_to)]),
            replay_for(&self.conn, by)?,
            &mut counted,
            Also {
                typists: typists.as_mut(),
                ..Also::default()
            },
        )?;
        if let Some(mut typists) = typists {
            typists.sort_unstable();
            if let Some(what) = self.typists_mismatch(&typists)? {
                return Ok(Some(what));
            }
        }
        type Stored = (Option<ReportRow>, Option<String>, Option<String>);
        let mut stored: HashMap<String, Stored> = HashMap::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT key, commands, failures, first_us, last_us, total_duration_us, longest_us,
                        shown
                 FROM report_totals WHERE name = ?1",
            )?;
            let mut rows = stmt.query([name])?;
            while let Some(r) = rows.next()? {
                let figures = ReportRow {
                    commands: r.get(1)?,
                    failures: r.get(2)?,
                    first_us: r.get(3)?,
                    last_us: r.get(4)?,
                    total_duration_us: r.get(5)?,
                    longest_us: r.get(6)?,
                    ..ReportRow::default()
                };
                let entry = stored.entry(r.get(0)?).or_default();
                entry.0 = Some(figures);
                entry.2 = r.get(7)?;
            }
            let mut stmt = self
                .conn
                .prepare("SELECT key, state FROM report_states WHERE name = ?1")?;
            let mut rows = stmt.query([name])?;
            while let Some(r) = rows.next()? {
                stored.entry(r.get(0)?).or_default().1 = Some(r.get(1)?);
            }
        }
        // Each group's counts of directories and commands.
        let mut values: HashMap<String, [Counts; 2]> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT key, kind, value, n FROM report_values WHERE name = ?1")?;
            let mut rows = stmt.query([name])?;
            while let Some(r) = rows.next()? {
                let counts = values.entry(r.get(0)?).or_default();
                let kind: i64 = r.get(1)?;
                let n: i64 = r.get(3)?;
                let slot = match kind {
                    CWD_VALUE => &mut counts[0],
                    COMMAND_VALUE => &mut counts[1],
                    _ => return Ok(Some(format!("a count of an unknown kind ({kind})"))),
                };
                slot.insert(r.get(2)?, u32::try_from(n).unwrap_or(u32::MAX));
            }
        }
        let mut keys: Vec<&String> = counted
            .keys()
            .chain(stored.keys())
            .chain(values.keys())
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (figures, state, shown) = stored.get(key).cloned().unwrap_or_default();
            let Some(group) = counted.get(key) else {
                return Ok(Some(format!(
                    "group {key:?} is in the totals but in no record"
                )));
            };
            let r = &group.row;
            let expected = (
                r.commands,
                r.failures,
                r.first_us,
                r.last_us,
                r.total_duration_us,
                r.longest_us,
            );
            let found = figures.map(|f| {
                (
                    f.commands,
                    f.failures,
                    f.first_us,
                    f.last_us,
                    f.total_duration_us,
                    f.longest_us,
                )
            });
            if found != Some(expected) {
                return Ok(Some(match found {
                    Some(f) => format!(
                        "group {key:?}: the totals say {} commands, {} failed; the records {}, {}",
                        f.0, f.1, expected.0, expected.1
                    ),
                    None => format!("group {key:?} is in the records but not in the totals"),
                }));
            }
            let state: Option<Group> = state.and_then(|s| serde_json::from_str(&s).ok());
            let kept = Group {
                cwds: Counts::default(),
                commands: Counts::default(),
                ..group.clone()
            };
            let counts = values.get(key).cloned().unwrap_or_default();
            if state.map(Group::normalized) != Some(kept.normalized())
                || counts != [group.cwds.clone(), group.commands.clone()]
            {
                return Ok(Some(format!(
                    "group {key:?}: what the totals keep of it (users, hosts, directories, commands) differs from the records"
                )));
            }
            let shown: Option<ReportRow> = shown.and_then(|s| serde_json::from_str(&s).ok());
            if shown != Some(group.shown()) {
                return Ok(Some(format!(
                    "group {key:?}: the row the totals show for it differs from the records"
                )));
            }
        }
        Ok(None)
    }

    /// How the typists noted (`command_typists`) differ from `counted`, who
    /// typed each command as the records and events tell, sorted.
    fn typists_mismatch(&self, counted: &Typists) -> Result<Option<String>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT typist, id FROM command_typists ORDER BY typist, id")?;
        let mut noted = stmt.query([])?;
        let mut counted = counted.iter();
        // The first difference in (typist, id) order: the entry that sorts
        // first of the two names the command.
        let differs = loop {
            let row: Option<(String, i64)> = match noted.next()? {
                Some(r) => Some((r.get(0)?, r.get(1)?)),
                None => None,
            };
            match (row, counted.next()) {
                (None, None) => return Ok(None),
                (Some(a), Some(b)) if a == *b => continue,
                (Some(a), Some(b)) => break if a < *b { a.1 } else { b.1 },
                (Some(a), None) => break a.1,
                (None, Some(b)) => break b.1,
            }
        };
        Ok(Some(format!(
            "command {differs}: who typed it, as the totals note it for `--typed-by`, differs from the records"
        )))
    }

    /// How the totals per shell session differ from the rows up to `up_to`.
    fn session_totals_mismatch(&self, up_to: i64) -> Result<Option<String>, DbError> {
        let read = |sql: &str, params: &[i64]| -> Result<Vec<Vec<Value>>, DbError> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map(params_from_iter(params.iter()), |r| {
                (0..7).map(|i| r.get::<_, Value>(i)).collect()
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let counted = read(
            "SELECT shell_session, min(user), min(host), count(*), max(seq), min(started_at_us),
                    max(started_at_us)
             FROM commands WHERE id <= ?1 GROUP BY shell_session ORDER BY shell_session",
            &[up_to],
        )?;
        let stored = read(
            "SELECT shell_session, user, host, recorded, highest_seq, first_us, last_us
             FROM session_totals ORDER BY shell_session",
            &[],
        )?;
        if counted == stored {
            return Ok(None);
        }
        let differs = counted
            .iter()
            .zip(&stored)
            .find(|(a, b)| a != b)
            .map(|(a, _)| a)
            .or(counted.get(stored.len()))
            .or(stored.get(counted.len()));
        Ok(Some(
            match differs.and_then(|row| match &row[0] {
                Value::Text(session) => Some(session.clone()),
                _ => None,
            }) {
                Some(session) => {
                    format!("shell session {session:?} is counted differently from its records")
                }
                None => "the sessions counted differ from the records".into(),
            },
        ))
    }
}

/// Drops every set of running totals, to be counted again from the rows
/// by the next reader: after a change made on purpose to rows they cover
/// (a redaction, a prune).
pub(super) fn forget_totals(tx: &rusqlite::Connection) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DELETE FROM totals_state; DELETE FROM report_totals;
         DELETE FROM report_states; DELETE FROM report_values; DELETE FROM session_totals;
         DELETE FROM command_typists;",
    )
}

/// A row of the commands table: its id and hash.
type RowMark = (i64, Option<Vec<u8>>);

/// `report_values.kind` of a directory, and of a command.
const CWD_VALUE: i64 = 0;
const COMMAND_VALUE: i64 = 1;

/// Who typed each command counted, and its id (see `command_typists`,
/// which the running totals by typist keep).
type Typists = Vec<(String, i64)>;

/// Counting into running totals: the keys of the groups that changed, and
/// how to read a group not counted yet from the totals.
type Touched<'t> = (
    &'t mut HashSet<String>,
    &'t mut dyn FnMut(&str) -> Option<Group>,
);

/// Where the totals of `name` stand: the rows they cover (up to an id), and
/// the newest row now. Totals whose last row changed or went (tampering, a
/// deletion) are dropped and counted again from the start.
fn totals_range(tx: &Transaction<'_>, name: &str) -> Result<(i64, RowMark), DbError> {
    let state: Option<(i64, Option<Vec<u8>>)> = tx
        .query_row(
            "SELECT counted_up_to, counted_hash FROM totals_state WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let hash_of = |id: i64| -> rusqlite::Result<Option<Option<Vec<u8>>>> {
        tx.query_row("SELECT hash FROM commands WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
    };
    let done = match state {
        Some((done, hash)) if done > 0 && hash_of(done)?.as_ref() == Some(&hash) => done,
        _ => 0,
    };
    let newest: RowMark = tx
        .query_row(
            "SELECT id, hash FROM commands ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, None));
    Ok((done, newest))
}

/// Notes the rows the totals of `name` now cover (up to `newest`), and
/// the newest tmux event they were placed with (None: not placed).
fn save_range(
    tx: &Transaction<'_>,
    name: &str,
    newest: &RowMark,
    events: Option<&RowMark>,
) -> rusqlite::Result<()> {
    let (events_up_to, events_hash) =
        events.map_or((None, None), |(id, hash)| (Some(*id), hash.clone()));
    tx.execute(
        "INSERT INTO totals_state (name, counted_up_to, counted_hash, events_up_to, events_hash)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE SET
            counted_up_to = excluded.counted_up_to, counted_hash = excluded.counted_hash,
            events_up_to = excluded.events_up_to, events_hash = excluded.events_hash",
        params![name, newest.0, newest.1, events_up_to, events_hash],
    )?;
    Ok(())
}

/// The newest tmux event stored (0 and no hash: none).
fn newest_event(conn: &Connection) -> rusqlite::Result<RowMark> {
    Ok(conn
        .query_row(
            "SELECT id, hash FROM tmux_events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, None)))
}

/// Whether the running totals of `name` no longer answer for the rows
/// they cover, though no row changed: counted with other tmux events or
/// in another time zone. Then they are counted again from the start.
///
/// - Session, window, typist: a command is placed by the events of its
///   server up to its start. An event stored since the totals were
///   counted changes no counted command's place if it happened after
///   every counted command started and its server already had events
///   (a server's first events make its commands placed at all). A
///   counted event that changed or went means the same as a changed row.
/// - Day: every day's first and last command must still fall on that day
///   in the zone of this process; the commands between follow, as a local
///   day does not go back as time goes on (except where clocks went back
///   across midnight, as some zones' did: there a zone changed since could
///   move commands between two days unseen by this check, not by
///   `verify`).
fn totals_outdated(conn: &Connection, by: GroupBy, name: &str) -> Result<bool, DbError> {
    if by.needs_placement() {
        let counted: Option<(Option<i64>, Option<Vec<u8>>)> = conn
            .query_row(
                "SELECT events_up_to, events_hash FROM totals_state WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((Some(up_to), hash)) = counted else {
            return Ok(true);
        };
        if up_to > 0 {
            let current: Option<Vec<u8>> = conn
                .query_row("SELECT hash FROM tmux_events WHERE id = ?1", [up_to], |r| {
                    r.get(0)
                })
                .optional()?;
            if current != hash {
                return Ok(true);
            }
        }
        let placing_counted: bool = conn.query_row(
            "SELECT EXISTS (
                SELECT 1 FROM tmux_events n
                WHERE n.id > ?1 AND n.event NOT IN (?3, ?4)
                  AND (n.at_us <= (SELECT coalesce(max(last_us), 0) FROM report_totals
                                   WHERE name = ?2)
                       OR NOT EXISTS (SELECT 1 FROM tmux_events o
                                      WHERE o.tmux_socket = n.tmux_socket
                                        AND o.tmux_server_pid = n.tmux_server_pid
                                        AND o.id <= ?1 AND o.event NOT IN (?3, ?4))))",
            params![
                up_to,
                name,
                crate::capture::seal::SEALED,
                crate::capture::seal::PRUNED
            ],
            |r| r.get(0),
        )?;
        return Ok(placing_counted);
    }
    if by == GroupBy::Day {
        let mut stmt =
            conn.prepare("SELECT key, first_us, last_us FROM report_totals WHERE name = ?1")?;
        let mut rows = stmt.query([name])?;
        let mut days = LocalDays::default();
        while let Some(r) = rows.next()? {
            let (day, first, last): (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if days.of(first) != day || days.of(last) != day {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Folds the rows stored since into the totals per shell session.
fn fold_session_totals(tx: &Transaction<'_>) -> Result<(), DbError> {
    let (done, newest) = totals_range(tx, "sessions")?;
    if done == 0 {
        tx.execute("DELETE FROM session_totals", [])?;
    }
    if newest.0 <= done {
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
        params![done, newest.0],
    )?;
    save_range(tx, "sessions", &newest, None)?;
    Ok(())
}

/// Folds the rows stored since the totals of `name` were last brought up
/// to date into them: only the groups those rows touch are read and
/// written.
fn fold_report_totals(tx: &Transaction<'_>, by: GroupBy, name: &str) -> Result<(), DbError> {
    let (mut done, newest) = totals_range(tx, name)?;
    if done > 0 && totals_outdated(tx, by, name)? {
        done = 0;
    }
    // Read before the rows: an event stored meanwhile is then newer than
    // the mark, and checked the next time.
    let events = by.needs_placement().then(|| newest_event(tx)).transpose()?;
    if done == 0 {
        tx.execute("DELETE FROM report_totals WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM report_states WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM report_values WHERE name = ?1", [name])?;
        if by == GroupBy::ClientUser {
            tx.execute("DELETE FROM command_typists", [])?;
        }
    }
    if newest.0 <= done {
        if done > 0 && events.is_some() {
            // Newer events that place no counted command: noted, so the
            // next check reads only those stored after them.
            save_range(tx, name, &newest, events.as_ref())?;
        }
        return Ok(());
    }
    // A range of ids at a time, so that the groups held in memory are
    // those of at most FOLD_ROWS rows, however many the history has.
    // From the first row there is (after a prune, ids start high), with
    // the events loaded once for all the ranges.
    let first: Option<i64> =
        tx.query_row("SELECT min(id) FROM commands WHERE id > ?1", [done], |r| {
            r.get(0)
        })?;
    let mut from = first.map_or(newest.0, |id| done.max(id - 1));
    let placing = replay_events(tx, by)?;
    while from < newest.0 {
        let to = newest.0.min(from.saturating_add(FOLD_ROWS));
        let replay = placing.as_ref().map(|events| Replay::new(events.clone()));
        fold_rows(tx, by, (&KEPT, name), (from, to), replay, None)?;
        from = to;
    }
    save_range(tx, name, &newest, events.as_ref())?;
    Ok(())
}

/// About how many bytes a filtered report's groups may hold in memory;
/// past that they are counted into temporary tables instead (see
/// `Database::fold_filtered`).
pub(super) const IN_MEMORY_BYTES: usize = 80 << 20;

/// How many rows (ids) a fold counts at a time, at most. The unit tests
/// count a few at a time, so that their totals are folded from many
/// ranges, each counting on from what the ones before stored.
#[cfg(not(test))]
const FOLD_ROWS: i64 = 50_000;
#[cfg(test)]
const FOLD_ROWS: i64 = 7;

/// Where a set of running totals is kept: its groups' figures (and rows
/// as shown), states, and counts of directories and commands.
struct Store {
    totals: &'static str,
    states: &'static str,
    values: &'static str,
    /// Whether it notes who typed each command (`command_typists`): only
    /// the database's own totals count every command.
    notes_typists: bool,
}

/// What every group of the totals `?1` in `store` adds up to; for the
/// kept totals, read from the index of their figures alone (schema 24).
fn totals_sql(store: &Store) -> String {
    format!(
        "SELECT count(*), coalesce(sum(commands), 0), coalesce(sum(failures), 0),
                min(first_us), max(last_us), coalesce(sum(total_duration_us), 0),
                coalesce(max(longest_us), 0)
         FROM {} WHERE name = ?1",
        store.totals
    )
}

/// The running totals the database keeps.
const KEPT: Store = Store {
    totals: "report_totals",
    states: "report_states",
    values: "report_values",
    notes_typists: true,
};

/// The groups of a filtered report too large to hold in memory, counted
/// into temporary tables as the running totals are counted (gone with the
/// connection; written where SQLite keeps temporary files, TMPDIR).
const FILTERED: Store = Store {
    totals: "temp.filtered_totals",
    states: "temp.filtered_states",
    values: "temp.filtered_values",
    notes_typists: false,
};

/// The name a filtered report's groups are counted under in [`FILTERED`].
const FILTERED_NAME: &str = "filtered";

/// [`FILTERED`]'s tables, as the kept ones are (migrations 8-21), made
/// empty.
const FILTERED_TABLES: &str = "
    CREATE TEMP TABLE IF NOT EXISTS filtered_totals (
        name TEXT NOT NULL, key TEXT NOT NULL, commands INTEGER NOT NULL,
        failures INTEGER NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
        total_duration_us INTEGER NOT NULL, longest_us INTEGER NOT NULL, shown TEXT,
        PRIMARY KEY (name, commands DESC, key)) WITHOUT ROWID;
    CREATE UNIQUE INDEX IF NOT EXISTS temp.filtered_totals_by_key ON filtered_totals (name, key);
    CREATE TEMP TABLE IF NOT EXISTS filtered_states (
        name TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
        PRIMARY KEY (name, key)) WITHOUT ROWID;
    CREATE TEMP TABLE IF NOT EXISTS filtered_values (
        name TEXT NOT NULL, key TEXT NOT NULL, kind INTEGER NOT NULL, value TEXT NOT NULL,
        n INTEGER NOT NULL, PRIMARY KEY (name, key, kind, value)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS temp.filtered_values_top
        ON filtered_values (name, key, kind, n DESC, value);
    DELETE FROM temp.filtered_totals;
    DELETE FROM temp.filtered_states;
    DELETE FROM temp.filtered_values;
";

/// Folds the rows with ids in `(done, to]` (those `only` keeps, if given)
/// into the totals of `name` in `store`, which cover the rows up to
/// `done` (none: 0).
fn fold_rows(
    tx: &Transaction<'_>,
    by: GroupBy,
    (store, name): (&Store, &str),
    (done, to): (i64, i64),
    replay: Option<Replay>,
    only: Option<&Conditions>,
) -> Result<(), DbError> {
    let mut groups = Groups::default();
    let mut touched = HashSet::new();
    // The groups counted on from a stored state (the others were counted
    // whole here, their counts of values too).
    let mut continued: HashSet<String> = HashSet::new();
    let mut range = only.cloned().unwrap_or_default();
    range.push(
        "id > ? AND id <= ?",
        [Value::Integer(done), Value::Integer(to)],
    );
    let where_sql = range.where_sql();
    let filter = (where_sql.as_str(), &range.params[..]);
    // The totals by typist also note who typed each command.
    let mut typists = (by == GroupBy::ClientUser && store.notes_typists).then(Typists::new);
    if done == 0 {
        // Counted from the start: no group is stored to count on from.
        let also = Also {
            typists: typists.as_mut(),
            ..Also::default()
        };
        count_into(tx, by, filter, replay, &mut groups, also)?;
        touched.extend(groups.keys().cloned());
    } else {
        let mut load = tx.prepare(&format!(
            "SELECT state FROM {} WHERE name = ?1 AND key = ?2",
            store.states
        ))?;
        let mut stored = |key: &str| -> Option<Group> {
            let state: String = load
                .query_row(params![name, key], |r| r.get(0))
                .optional()
                .ok()??;
            let group = serde_json::from_str(&state).ok()?;
            continued.insert(key.to_string());
            Some(group)
        };
        let also = Also {
            touched: Some((&mut touched, &mut stored)),
            typists: typists.as_mut(),
            budget: None,
        };
        count_into(tx, by, filter, replay, &mut groups, also)?;
    }
    if let Some(mut typists) = typists {
        // In key order, as the groups below.
        typists.sort_unstable();
        let mut note = tx.prepare("INSERT INTO command_typists (typist, id) VALUES (?1, ?2)")?;
        for (typist, id) in &typists {
            note.execute(params![typist, id])?;
        }
    }
    let (totals, states_table, values_table) = (store.totals, store.states, store.values);
    let mut figures = tx.prepare(&format!(
        "INSERT INTO {totals}
            (name, key, commands, failures, first_us, last_us, total_duration_us, longest_us,
             shown)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (name, key) DO UPDATE SET
            commands = excluded.commands, failures = excluded.failures,
            first_us = excluded.first_us, last_us = excluded.last_us,
            total_duration_us = excluded.total_duration_us, longest_us = excluded.longest_us,
            shown = excluded.shown"
    ))?;
    let mut states = tx.prepare(&format!(
        "INSERT INTO {states_table} (name, key, state) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, key) DO UPDATE SET state = excluded.state"
    ))?;
    let mut values = tx.prepare(&format!(
        "INSERT INTO {values_table} (name, key, kind, value, n) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name, key, kind, value) DO UPDATE SET n = n + excluded.n"
    ))?;
    let mut top = tx.prepare(&format!(
        "SELECT value FROM {values_table} WHERE name = ?1 AND key = ?2 AND kind = ?3
         ORDER BY n DESC, value LIMIT 1"
    ))?;
    // In key order: the states' and values' tables and the totals' index
    // by key are then written page after page, not at random places.
    let mut keys: Vec<&String> = touched.iter().collect();
    keys.sort_unstable();
    for key in keys {
        let group = &groups[key];
        // What this fold counted of each value, added to what is stored.
        for (kind, counts) in [(CWD_VALUE, &group.cwds), (COMMAND_VALUE, &group.commands)] {
            let mut counted: Vec<(&String, &u32)> = counts.iter().collect();
            counted.sort_unstable();
            for (value, n) in counted {
                values.execute(params![name, key, kind, value, n])?;
            }
        }
        let mut shown = group.shown();
        if continued.contains(key.as_str()) {
            // Counted on from stored counts: the most used is found among
            // them through the index (ties as `Group::finish`).
            let mut top_of = |kind: i64| -> rusqlite::Result<Option<String>> {
                top.query_row(params![name, key, kind], |r| r.get(0))
                    .optional()
            };
            if by != GroupBy::Cwd {
                shown.top_cwd = top_of(CWD_VALUE)?;
            }
            if by != GroupBy::Command {
                shown.top_command = top_of(COMMAND_VALUE)?;
            }
        }
        let r = &group.row;
        figures.execute(params![
            name,
            key,
            r.commands,
            r.failures,
            r.first_us,
            r.last_us,
            r.total_duration_us,
            r.longest_us,
            serde_json::to_string(&shown).unwrap_or_default()
        ])?;
        let state = serde_json::to_string(group).unwrap_or_default();
        states.execute(params![name, key, state])?;
    }
    Ok(())
}

/// The replay of the tmux events that places commands, for the groupings
/// that need it: names and typists come from replaying the events, which
/// is one pass when the commands come in time order.
fn replay_for(conn: &Connection, by: GroupBy) -> Result<Option<Replay>, DbError> {
    Ok(replay_events(conn, by)?.map(Replay::new))
}

/// The tmux events a replay for `by` is made of; None when it needs none.
fn replay_events(conn: &Connection, by: GroupBy) -> Result<Option<Vec<TmuxEvent>>, DbError> {
    Ok(match by.needs_placement() {
        true => Some(
            super::events::tmux_events_on(conn, None)?
                .into_iter()
                .map(|e| e.event)
                .collect(),
        ),
        false => None,
    })
}

fn finish_all(groups: Groups) -> Vec<ReportRow> {
    groups
        .into_iter()
        .map(|(key, group)| group.finish(key))
        .collect()
}

/// Counts the rows `filter` (a WHERE clause and its parameters) selects
/// into `groups`, in one pass, reading only the columns a report shows: a
/// GROUP BY per figure would sort the whole table once for each.
/// `also`: what else the count does (see [`Also`]). False when it stopped
/// at its memory budget, the groups then incomplete.
///
/// With a `replay`, only the commands of servers that have tmux events are
/// placed, and only they are read in time order (the replay is one pass
/// forward); the others (outside tmux, or on a server without events) have
/// no placement, so they are read in the table's own order, which spares a
/// lookup in the index by start time per row (0.3 s of `report --by
/// session`'s 1.0 s at a million rows). What a group shows of its first
/// command is then the earliest's, whichever pass read it. A filter read
/// through an index in time order (`--user`, `--failed`, `--host`, and
/// the others with an index by value and start time) is read once, in
/// that order, every row placed (the replay leaves those of a server
/// without events unplaced): two passes would read its rows twice.
fn count_into(
    conn: &Connection,
    by: GroupBy,
    filter: (&str, &[Value]),
    mut replay: Option<Replay>,
    groups: &mut Groups,
    also: Also<'_, '_>,
) -> Result<bool, DbError> {
    let Also {
        mut touched,
        mut typists,
        budget,
    } = also;
    let mut held = 0;
    let placed_servers = replay.as_ref().map(Replay::servers).unwrap_or_default();
    let and = |condition: &str| match filter.0.is_empty() {
        true => format!("WHERE {condition}"),
        false => format!("{} AND {condition}", filter.0),
    };
    let mut params: Vec<Value> = filter.1.to_vec();
    let tuples = vec!["(?, ?)"; placed_servers.len()].join(", ");
    params.extend(
        placed_servers
            .iter()
            .flat_map(|(socket, pid)| [Value::Text(socket.clone()), Value::Integer(*pid)]),
    );
    let on_placed = format!("(tmux_socket, tmux_server_pid) IN (VALUES {tuples})");
    let in_time_order = |where_sql: &str| format!("{where_sql} {TIME_ORDER}");
    // (The SQL, its parameters, whether its rows are placed.)
    let passes: Vec<(String, &[Value], bool)> = if placed_servers.is_empty() {
        vec![(filter.0.to_string(), filter.1, false)]
    } else if !filter.0.is_empty() && sorted_for_free(conn, &in_time_order(filter.0), filter.1)? {
        // A filter read through an index that gives its rows in time order
        // already (`--user`, `--failed`, `--host`, ...): one pass in that
        // order, rather than the filter's rows read twice.
        vec![(in_time_order(filter.0), filter.1, true)]
    } else {
        vec![
            (in_time_order(&and(&on_placed)), &params, true),
            (
                and(&format!(
                    "(tmux_socket IS NULL OR tmux_server_pid IS NULL OR NOT {on_placed})"
                )),
                &params,
                false,
            ),
        ]
    };
    let mut key = String::new();
    let mut days = LocalDays::default();
    for (where_sql, params, placed) in passes {
        let sql = format!("SELECT {REPORT_COLUMNS} FROM commands {where_sql}");
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<Option<&str>> {
                Ok(r.get_ref(i)?.as_str_or_null().unwrap_or(None))
            };
            let row = ReportFields {
                socket: text(0)?,
                pid: r.get(1)?,
                pane: text(2)?,
                session_id: r.get(3)?,
                shell_session: text(4)?.unwrap_or(""),
                failed: r.get::<_, Option<i64>>(5)?.is_some_and(|s| s != 0),
                started: r.get(6)?,
                duration: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                user: text(8)?.unwrap_or(""),
                host: text(9)?.unwrap_or(""),
                cwd: text(10)?.unwrap_or(""),
                command: text(11)?.unwrap_or(""),
            };
            let id: i64 = r.get(12)?;
            let place = match (&mut replay, row.socket, row.pid) {
                (Some(replay), Some(socket), Some(pid)) if placed => {
                    replay.place_at(socket, pid, row.pane, row.session_id, row.started)
                }
                _ => None,
            };
            group_key(by, &row, place.as_ref(), &mut days, &mut key);
            if let Some(typists) = typists.as_mut() {
                typists.push((typist(place.as_ref(), row.user).to_string(), id));
            }
            if let Some((touched, stored)) = touched.as_mut()
                && !touched.contains(key.as_str())
            {
                touched.insert(key.clone());
                // Counting on from what the totals hold for it.
                if let Some(group) = stored(&key) {
                    groups.insert(key.clone(), group);
                }
            }
            held += add_to_group(groups, by, &key, &row, place, Some((row.started, id)));
            if budget.is_some_and(|budget| held > budget) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Whether SQLite reads the commands `where_sql` (a WHERE clause and an
/// ORDER BY) selects in that order through an index that also narrows
/// them: no sort, and not every command read by start time (its one
/// pass, a lookup of each row, is the slower way to read them all).
fn sorted_for_free(conn: &Connection, where_sql: &str, params: &[Value]) -> Result<bool, DbError> {
    let mut stmt = conn.prepare(&format!(
        "EXPLAIN QUERY PLAN SELECT {REPORT_COLUMNS} FROM commands {where_sql}"
    ))?;
    let mut plan = stmt.query(params_from_iter(params.iter()))?;
    while let Some(step) = plan.next()? {
        let step = step.get_ref(3)?.as_str().unwrap_or_default();
        if step.contains("TEMP B-TREE")
            || step.starts_with("SCAN commands USING INDEX commands_by_start")
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a count does besides counting rows into groups.
#[derive(Default)]
struct Also<'t, 'n> {
    /// Into running totals: notes the groups that changed, and reads a
    /// group not counted yet from the totals.
    touched: Option<Touched<'t>>,
    /// Notes who typed each command (the totals by typist).
    typists: Option<&'n mut Typists>,
    /// Stops once the groups hold about this many bytes.
    budget: Option<usize>,
}

/// One command's columns as a report counts them, read from the local
/// database or from the central store.
#[derive(Debug, Clone, Copy)]
pub struct ReportFields<'a> {
    pub socket: Option<&'a str>,
    pub pid: Option<i64>,
    pub pane: Option<&'a str>,
    pub session_id: Option<i64>,
    pub shell_session: &'a str,
    pub failed: bool,
    pub started: i64,
    pub duration: i64,
    pub user: &'a str,
    pub host: &'a str,
    pub cwd: &'a str,
    pub command: &'a str,
}

/// Commands counted into groups one at a time, as a local report counts
/// them: for a store that gives the rows itself (the central one). Rows
/// come in time order, so that the names each group shows are its latest.
pub struct Counting {
    by: GroupBy,
    groups: Groups,
    key: String,
    own: String,
    days: LocalDays,
}

impl Counting {
    pub fn new(by: GroupBy) -> Counting {
        Counting {
            by,
            groups: Groups::default(),
            key: String::new(),
            own: String::new(),
            days: LocalDays::default(),
        }
    }

    /// Whether a grouping's keys are only unique within one store (a tmux
    /// pane, session or window id), so that the store's scope goes first.
    fn scoped(by: GroupBy) -> bool {
        matches!(by, GroupBy::Pane | GroupBy::Session | GroupBy::Window)
    }

    /// Counts one command, placed by the tmux events of its own host.
    /// `scope` keeps groups of different stores apart (a pane or session
    /// id is only unique within its host); it is not shown.
    pub fn add(&mut self, scope: &str, row: &ReportFields<'_>, place: Option<Placement>) {
        group_key(self.by, row, place.as_ref(), &mut self.days, &mut self.own);
        self.key.clear();
        if Self::scoped(self.by) {
            self.key.push_str(scope);
            self.key.push('\u{1f}');
        }
        self.key.push_str(&self.own);
        // The rows come in time order: the first counted is the earliest.
        add_to_group(&mut self.groups, self.by, &self.key, row, place, None);
    }

    /// The groups, ranked by `sort`, the first `top` kept.
    pub fn ranked(self, sort: SortBy, top: Option<usize>) -> Ranked {
        let scoped = Self::scoped(self.by);
        let mut rows: Vec<ReportRow> = self
            .groups
            .into_iter()
            .map(|(key, group)| {
                // The shown key without the store's scope (only the
                // groupings that have one: a command may hold U+001F).
                let shown = match key.split_once('\u{1f}') {
                    Some((_, own)) if scoped => own.to_string(),
                    _ => key,
                };
                group.finish(shown)
            })
            .collect();
        sort.sort(&mut rows);
        let totals = Totals::of(&rows);
        if let Some(top) = top {
            rows.truncate(top);
        }
        Ranked { rows, totals }
    }
}

/// The group a command counts in, written into `key`.
fn group_key(
    by: GroupBy,
    row: &ReportFields<'_>,
    place: Option<&Placement>,
    days: &mut LocalDays,
    key: &mut String,
) {
    let (socket, pid, user) = (row.socket, row.pid, row.user);
    key.clear();
    match by {
        GroupBy::Pane => match row.pane {
            Some(pane) => {
                let _ = write!(key, "{},{},{pane}", socket.unwrap_or(""), pid.unwrap_or(0));
            }
            None => {
                let _ = write!(key, "shell {}", row.shell_session);
            }
        },
        GroupBy::Session => {
            if let Some(socket) = socket {
                // Where the pane was then, as the events tell; else `$TMUX`'s.
                let session = place.and_then(|p| p.session_id).or(row.session_id);
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
                let window = place.and_then(|p| p.window_id);
                let window = window.map_or("?".to_string(), |w| w.to_string());
                let _ = write!(key, "{socket},{},@{window}", pid.unwrap_or(0));
            }
        }
        GroupBy::ClientUser => match place.and_then(|p| p.client_user()) {
            Some(client_user) => key.push_str(client_user),
            None if socket.is_none() => key.push_str(user),
            None => {
                let _ = write!(key, "{user} (no client known)");
            }
        },
        GroupBy::User => key.push_str(user),
        GroupBy::Host => key.push_str(row.host),
        GroupBy::Cwd => key.push_str(row.cwd),
        GroupBy::Day => key.push_str(days.of(row.started)),
        GroupBy::Command => key.push_str(row.command),
    }
}

/// Counts a command into the group of `key` (made on its first row).
/// `first`: the command's (start, id) when the group shows its earliest
/// command, whichever order the rows come in; `None` when it shows the
/// first one counted. Returns about how many bytes the groups hold more.
fn add_to_group(
    groups: &mut Groups,
    by: GroupBy,
    key: &str,
    row: &ReportFields<'_>,
    place: Option<Placement>,
    first: Option<(i64, i64)>,
) -> usize {
    let mut held = 0;
    let group = match groups.get_mut(key) {
        Some(group) => {
            if let Some(first) = first
                && group.first_seen.is_some_and(|seen| first < seen)
            {
                group.seen_first(
                    row.socket,
                    row.pid,
                    row.pane,
                    row.session_id,
                    row.shell_session,
                    first,
                );
            }
            group
        }
        None => groups.entry(key.to_string()).or_insert_with(|| {
            held += GROUP_BYTES + key.len() + row.shell_session.len();
            Group::new(
                row.socket,
                row.pid,
                row.pane,
                row.session_id,
                row.shell_session,
                row.started,
                first,
            )
        }),
    };
    // The latest names: placed rows come in time order within one count,
    // but the running totals count on later from rows stored since, which
    // may have started before rows counted then.
    // The session is the latest placed one that has a session: marked
    // apart, since a later command placed without one keeps it.
    if let Some(place) = place {
        let latest =
            |mark: Option<(i64, i64)>| first.is_none_or(|at| mark.is_none_or(|seen| at >= seen));
        if place.session_id.is_some() && latest(group.last_session) {
            group.row.tmux_session_id = place.session_id;
            group.session_placed = true;
            if first.is_some() {
                group.last_session = first;
            }
        }
        if latest(group.last_named) {
            group.row.session_name = place.session_name;
            group.row.window_index = place.window_index;
            group.row.window_name = place.window_name;
            if first.is_some() {
                group.last_named = first;
            }
        }
    }
    held + group.add(
        row.failed,
        row.started,
        row.duration,
        row.user,
        row.host,
        (by != GroupBy::Cwd).then_some(row.cwd),
        (by != GroupBy::Command).then_some(row.command),
    )
}

/// About what a group holds besides its texts, and what each text it
/// counts or lists costs besides its bytes (a map entry, a `String`):
/// enough to keep a count's memory within a budget. Measured at a million
/// rows (peak resident memory against this estimate): `--by command` with
/// 141,020 and 36,026 groups, `--by user`, `session`, `pane` and `day`.
const GROUP_BYTES: usize = 1_600;
const VALUE_BYTES: usize = 64;

fn local_day(us: i64) -> String {
    crate::timespec::local_format(us, "%Y-%m-%d")
}

/// The local day of a time, worked out once per quarter of an hour (UTC)
/// rather than once per row: every time zone's offset is a whole number
/// of quarter hours, so a local midnight is always on such a boundary and
/// the day cannot change inside one. Rows come roughly in time order, so
/// the day is reused for hundreds of rows; converting each row's time to
/// local time took most of `report --by day`'s 1.1 s at a million rows.
#[derive(Default)]
struct LocalDays {
    quarter: Option<i64>,
    day: String,
}

impl LocalDays {
    const QUARTER_HOUR_US: i64 = 15 * 60 * 1_000_000;

    fn of(&mut self, us: i64) -> &str {
        let quarter = us.div_euclid(Self::QUARTER_HOUR_US);
        if self.quarter != Some(quarter) {
            self.quarter = Some(quarter);
            self.day = local_day(us);
        }
        &self.day
    }
}

#[cfg(test)]
mod counting_tests {
    use super::*;

    /// A report's sums over the kept totals read the index of their
    /// figures, not the totals' rows (large with their shown rows).
    #[test]
    fn the_kept_totals_are_summed_from_an_index_of_their_figures() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("audit.db")).unwrap();
        let plan: Vec<String> = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", totals_sql(&KEPT)))
            .unwrap()
            .query_map(["command"], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("COVERING INDEX report_totals_sums")),
            "{plan:?}"
        );
    }

    /// A group's row is kept without its key and what is unknown, and a
    /// row kept with them (as before) reads as the same row.
    #[test]
    fn a_row_kept_with_its_empty_fields_reads_as_one_kept_without() {
        let row = ReportRow {
            commands: 57_622,
            failures: 5_245,
            first_us: 1_700_000_039_894_652,
            last_us: 1_702_500_176_058_079,
            total_duration_us: 144_270_621_436,
            longest_us: 4_999_928,
            tmux_pane: Some("%0".into()),
            shell_session: "s-0".into(),
            users: "alice,bob".into(),
            hosts: "host-0".into(),
            top_cwd: Some("/home/root".into()),
            ..ReportRow::default()
        };
        let kept = serde_json::to_string(&row).unwrap();
        assert!(
            !kept.contains("null") && !kept.contains("\"key\""),
            "{kept}"
        );
        let before = r#"{"key":"","commands":57622,"failures":5245,"first_us":1700000039894652,"last_us":1702500176058079,"total_duration_us":144270621436,"longest_us":4999928,"tmux_pane":"%0","tmux_socket":null,"tmux_server_pid":null,"tmux_session_id":null,"shell_session":"s-0","users":"alice,bob","hosts":"host-0","top_cwd":"/home/root","top_command":null,"session_name":null,"window_index":null,"window_name":null}"#;
        assert_eq!(serde_json::from_str::<ReportRow>(before).unwrap(), row);
        assert_eq!(serde_json::from_str::<ReportRow>(&kept).unwrap(), row);
    }

    fn fields<'a>(command: &'a str, pane: &'a str) -> ReportFields<'a> {
        ReportFields {
            socket: Some("/tmp/tmux-0/default"),
            pid: Some(7),
            pane: Some(pane),
            session_id: Some(1),
            shell_session: "s",
            failed: false,
            started: 1,
            duration: 0,
            user: "u",
            host: "h",
            cwd: "/",
            command,
        }
    }

    /// The store's scope is taken off the groupings that carry one (pane,
    /// session, window), and off no other: a command holding U+001F is
    /// shown whole.
    #[test]
    fn a_group_is_shown_without_the_stores_scope_and_no_more() {
        let mut by_command = Counting::new(GroupBy::Command);
        by_command.add("host-a", &fields("printf 'a\u{1f}b'", "%1"), None);
        let rows = by_command.ranked(SortBy::Commands, None).rows;
        assert_eq!(rows[0].key, "printf 'a\u{1f}b'");
        let mut by_pane = Counting::new(GroupBy::Pane);
        by_pane.add("host-a", &fields("ls", "%1"), None);
        by_pane.add("host-b", &fields("ls", "%1"), None);
        let rows = by_pane.ranked(SortBy::Commands, None).rows;
        assert_eq!(rows.len(), 2, "the same pane id on two hosts: two panes");
        assert!(
            rows.iter().all(|r| r.key == "/tmp/tmux-0/default,7,%1"),
            "{rows:?}"
        );
    }
}

#[cfg(test)]
mod local_day_tests {
    use super::*;

    /// Tells the test it is the child run in a named zone.
    const CHILD_ZONE: &str = "TMUX_AUDIT_TEST_DAY_ZONE";

    /// Every minute across the days around two DST changes, in zones with
    /// whole, half- and three-quarter-hour offsets, forward and back: the
    /// day worked out per quarter hour is the day of that very time. Runs
    /// itself again per zone with `TZ` set (chrono's `Local` follows it),
    /// as `timespec`'s zone test does.
    #[test]
    fn the_day_worked_out_per_quarter_hour_is_each_time_s_own_day() {
        if std::env::var_os(CHILD_ZONE).is_some() {
            let mut days = LocalDays::default();
            // 2026-03-07 and 2026-10-31, 00:00 UTC, four days each.
            for start in [1_772_841_600_i64, 1_793_404_800] {
                for minute in (0..4 * 24 * 60).chain((0..4 * 24 * 60).rev()) {
                    let us = (start + minute * 60 + 7) * 1_000_000;
                    assert_eq!(days.of(us), local_day(us), "{us}");
                }
            }
            return;
        }
        for zone in [
            "America/New_York",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
        ] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "db::report::local_day_tests::the_day_worked_out_per_quarter_hour_is_each_time_s_own_day",
                    "--test-threads",
                    "1",
                ])
                .env("TZ", zone)
                .env(CHILD_ZONE, zone)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "in {zone}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A report group being counted: what its row shows, and what it takes to
/// keep counting (every user and host seen, each directory's and each
/// command's count). The running totals keep it in two parts: the counts
/// of directories and commands in `report_values`, a row each, the rest
/// as its state (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Group {
    row: ReportRow,
    users: Vec<String>,
    hosts: Vec<String>,
    #[serde(skip)]
    cwds: Counts,
    #[serde(skip)]
    commands: Counts,
    /// When the command whose pane and session the row shows started, and
    /// its id: the earliest read so far (rows are not always read in time
    /// order, and the running totals count on from rows stored later).
    #[serde(default)]
    first_seen: Option<(i64, i64)>,
    /// Whether the row's session comes from a placement (the latest), not
    /// from the first command's `$TMUX`.
    #[serde(default)]
    session_placed: bool,
    /// When the placed command whose names (session, window) the row
    /// shows started, and its id: the latest read so far.
    #[serde(default)]
    last_named: Option<(i64, i64)>,
    /// When the placed command whose session the row shows started, and
    /// its id: the latest read so far that had a session.
    #[serde(default)]
    last_session: Option<(i64, i64)>,
}

/// How often each text (a directory, a command) was seen: a map keyed by
/// the text, hashed with foldhash rather than std's SipHash, which took a
/// quarter of a report's time at a million rows (the commands are long).
type Counts = HashMap<String, u32, foldhash::fast::RandomState>;

/// The groups of a report being counted, by key.
type Groups = HashMap<String, Group, foldhash::fast::RandomState>;

impl Group {
    /// The same group, with what depends on the order rows were read in
    /// (users and hosts are kept in the order seen) put in order.
    fn normalized(mut self) -> Group {
        self.users.sort();
        self.hosts.sort();
        self
    }

    fn new(
        socket: Option<&str>,
        pid: Option<i64>,
        pane: Option<&str>,
        session_id: Option<i64>,
        shell_session: &str,
        started: i64,
        first: Option<(i64, i64)>,
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
            cwds: Counts::default(),
            commands: Counts::default(),
            first_seen: first,
            session_placed: false,
            last_named: None,
            last_session: None,
        }
    }

    /// An earlier command than any read before: the row shows its pane and
    /// session (a placed session stays: it is the latest).
    fn seen_first(
        &mut self,
        socket: Option<&str>,
        pid: Option<i64>,
        pane: Option<&str>,
        session_id: Option<i64>,
        shell_session: &str,
        first: (i64, i64),
    ) {
        let row = &mut self.row;
        row.tmux_socket = socket.map(str::to_string);
        row.tmux_server_pid = pid;
        row.tmux_pane = pane.map(str::to_string);
        if !self.session_placed {
            row.tmux_session_id = session_id;
        }
        row.shell_session = shell_session.to_string();
        self.first_seen = Some(first);
    }

    /// Counts a command; returns about how many bytes the group holds more.
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
    ) -> usize {
        let mut held = 0;
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
                held += VALUE_BYTES + value.len();
            }
        }
        for (counts, value) in [(&mut self.cwds, cwd), (&mut self.commands, command)] {
            let Some(value) = value else { continue };
            match counts.get_mut(value) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(value.to_string(), 1);
                    held += VALUE_BYTES + value.len();
                }
            }
        }
        held
    }

    fn finish(mut self, key: String) -> ReportRow {
        // The most frequent value; ties go to the one that sorts first.
        let top = |counts: Counts| {
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

    /// The row [`Group::finish`] makes, without its key, the group kept:
    /// what the running totals keep ready to print (`shown`).
    fn shown(&self) -> ReportRow {
        let top = |counts: &Counts| {
            counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(value, _)| value.clone())
        };
        let mut users = self.users.clone();
        users.sort();
        let mut hosts = self.hosts.clone();
        hosts.sort();
        ReportRow {
            users: users.join(","),
            hosts: hosts.join(","),
            top_cwd: top(&self.cwds),
            top_command: top(&self.commands),
            ..self.row.clone()
        }
    }
}

#[cfg(test)]
mod fast_path_tests {
    //! The report read in two passes (placed rows in time order, the others
    //! in the table's order), or in one when the filter's index gives its
    //! rows in time order, against the straightforward count: every row in
    //! time order, each placed.
    use super::*;
    use crate::filter::Filters;
    use crate::lifecycle::{Client, TmuxEvent};
    use crate::record::{CommandRecord, Entry};

    /// Commands on four tmux servers (two with events: sessions, windows,
    /// panes and clients of two users) and outside tmux, stored out of time
    /// order so that the table's order is not the time order.
    fn database() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(&dir.path().join("audit.db")).unwrap();
        let mut entries = Vec::new();
        for server in 0..2_i64 {
            for (n, (what, at, session, window, pane, client)) in [
                ("seen", 0, 1, 10, "%1", None),
                ("seen", 0, 2, 20, "%2", None),
                ("client-attached", 5, 1, 10, "%1", Some("alice")),
                ("client-attached", 50, 2, 20, "%2", Some("bob")),
                ("window-linked", 300, 2, 10, "%1", None),
                ("client-active", 400, 2, 10, "%1", Some("bob")),
                ("session-renamed", 600, 2, 20, "%2", None),
            ]
            .into_iter()
            .enumerate()
            {
                let key = format!("{server}-{n}");
                entries.push(event(server, &key, what, at, session, window, pane, client));
            }
        }
        entries.extend((0..3_000).map(command));
        insert(&mut db, &entries);
        (dir, db)
    }

    const T0: i64 = 1_772_841_600_000_000;
    const MINUTE: i64 = 60_000_000;

    fn insert(db: &mut Database, entries: &[Entry]) {
        let at = T0 + 100_000 * MINUTE;
        assert_eq!(
            db.insert_all(entries.iter().map(|e| (e, at))).unwrap(),
            entries.len()
        );
    }

    /// An event of tmux server `server`, `at` minutes after `T0`.
    #[allow(clippy::too_many_arguments)]
    fn event(
        server: i64,
        key: &str,
        event: &str,
        at: i64,
        session: i64,
        window: i64,
        pane: &str,
        client: Option<&str>,
    ) -> Entry {
        Entry::TmuxEvent(TmuxEvent {
            event: event.into(),
            at_us: T0 + at * MINUTE + server,
            event_key: key.into(),
            host: "h".into(),
            user: "alice".into(),
            tmux_socket: format!("/tmp/tmux-1000/s{server}"),
            tmux_server_pid: 100 + server,
            session_id: Some(session),
            session_name: Some(format!("{event}-{session}")),
            window_id: Some(window),
            window_index: Some(window / 10),
            window_name: Some(format!("w{window}")),
            pane: Some(pane.into()),
            client: client.map(|user| Client {
                name: format!("/dev/pts/{user}"),
                user: Some(user.into()),
                ..Client::default()
            }),
            ..TmuxEvent::default()
        })
    }

    /// Command number `i` (unique per `i`): one in five outside tmux, and
    /// stored in an order other than their time (every third one went
    /// back two days). In tmux, a third are in a pane no event names, and
    /// one in seven has no session in its `$TMUX`: placed without one.
    fn command(i: i64) -> Entry {
        let users = ["alice", "bob", "carol"];
        let started = T0 + (i * 7_919 % 1_000) * MINUTE / 2 - (i % 3) * 2 * 1_440 * MINUTE;
        let server = i % 5; // 4: outside tmux
        let in_tmux = server < 4;
        Entry::Command(CommandRecord {
            command: format!("cmd-{}", i % 37),
            exit_status: Some(i64::from(i % 4 == 0)),
            started_at_us: started,
            duration_us: Some(i * 1_000),
            cwd: format!("/home/x/{}", i % 11),
            user: users[(i % 3) as usize].into(),
            host: format!("host-{}", i % 2),
            shell: "bash".into(),
            shell_session: format!("s-{}", i % 13),
            seq: i / 13 + 1,
            tmux_socket: in_tmux.then(|| format!("/tmp/tmux-1000/s{server}")),
            tmux_server_pid: in_tmux.then_some(100 + server),
            tmux_session_id: (in_tmux && i % 7 != 0).then_some(1 + i % 2),
            tmux_pane: in_tmux.then(|| format!("%{}", 1 + i % 3)),
            ..CommandRecord::default()
        })
    }

    /// The straightforward count: every row, in time order, placed.
    fn counted_in_time_order(db: &Database, by: GroupBy, c: &Conditions) -> Vec<ReportRow> {
        let mut replay = Replay::new(
            db.tmux_events(None)
                .unwrap()
                .into_iter()
                .map(|e| e.event)
                .collect(),
        );
        let mut stmt = db
            .conn
            .prepare(&format!(
                "SELECT {REPORT_COLUMNS} FROM commands {} ORDER BY started_at_us, id",
                c.where_sql()
            ))
            .unwrap();
        let mut rows = stmt.query(params_from_iter(c.params.iter())).unwrap();
        let mut groups: HashMap<String, Group> = HashMap::new();
        let mut days = LocalDays::default();
        while let Some(r) = rows.next().unwrap() {
            let text = |i: usize| r.get::<_, Option<String>>(i).unwrap();
            let (socket, pid, pane, session_id) = (
                text(0),
                r.get::<_, Option<i64>>(1).unwrap(),
                text(2),
                r.get::<_, Option<i64>>(3).unwrap(),
            );
            let (started, id): (i64, i64) = (r.get(6).unwrap(), r.get(12).unwrap());
            let (user, host, cwd, command) = (
                text(8).unwrap(),
                text(9).unwrap(),
                text(10).unwrap(),
                text(11).unwrap(),
            );
            let place = match (&socket, pid) {
                (Some(s), Some(p)) if by.needs_placement() => {
                    replay.place_at(s, p, pane.as_deref(), session_id, started)
                }
                _ => None,
            };
            let key = match by {
                GroupBy::Session => socket.as_ref().map_or(String::new(), |s| {
                    let session = place.as_ref().and_then(|p| p.session_id).or(session_id);
                    format!("{s},{},{}", pid.unwrap_or(0), session.unwrap_or(0))
                }),
                GroupBy::Window => socket.as_ref().map_or(String::new(), |s| {
                    let w = place.as_ref().and_then(|p| p.window_id);
                    format!(
                        "{s},{},@{}",
                        pid.unwrap_or(0),
                        w.map_or("?".into(), |w| w.to_string())
                    )
                }),
                GroupBy::ClientUser => match place.as_ref().and_then(|p| p.client_user()) {
                    Some(client) => client.to_string(),
                    None if socket.is_none() => user.clone(),
                    None => format!("{user} (no client known)"),
                },
                GroupBy::Day => days.of(started).to_string(),
                GroupBy::User => user.clone(),
                GroupBy::Pane => match &pane {
                    Some(p) => format!(
                        "{},{},{p}",
                        socket.as_deref().unwrap_or(""),
                        pid.unwrap_or(0)
                    ),
                    None => format!("shell {}", text(4).unwrap()),
                },
                GroupBy::Host => host.clone(),
                GroupBy::Cwd => cwd.clone(),
                GroupBy::Command => command.clone(),
            };
            let group = groups.entry(key).or_insert_with(|| {
                Group::new(
                    socket.as_deref(),
                    pid,
                    pane.as_deref(),
                    session_id,
                    &text(4).unwrap(),
                    started,
                    Some((started, id)),
                )
            });
            if let Some(place) = place {
                group.row.session_name = place.session_name;
                group.row.window_index = place.window_index;
                group.row.window_name = place.window_name;
                if place.session_id.is_some() {
                    group.row.tmux_session_id = place.session_id;
                }
            }
            group.add(
                r.get::<_, Option<i64>>(5).unwrap().is_some_and(|s| s != 0),
                started,
                r.get::<_, Option<i64>>(7).unwrap().unwrap_or(0),
                &user,
                &host,
                (by != GroupBy::Cwd).then_some(cwd.as_str()),
                (by != GroupBy::Command).then_some(command.as_str()),
            );
        }
        let mut rows: Vec<ReportRow> = groups.into_iter().map(|(k, g)| g.finish(k)).collect();
        SortBy::Commands.sort(&mut rows);
        rows
    }

    /// Filters that keep some of the test's commands: one user's, the
    /// failed ones (both read in time order through their index), those
    /// under a directory (read through the index by directory, so sorted).
    fn some_filters() -> [Filters; 3] {
        [
            Filters {
                user: Some("bob".into()),
                ..Filters::default()
            },
            Filters {
                failed: true,
                ..Filters::default()
            },
            Filters {
                cwd_under: Some("/home/x".into()),
                ..Filters::default()
            },
        ]
    }

    /// A report's table reads only the texts its columns show from the
    /// running totals: the table is the one made from every text, for
    /// every grouping, and `--by command` leaves texts unread.
    #[test]
    fn a_table_read_with_the_texts_it_shows_is_the_table_read_whole() {
        use crate::render::report::{table, texts_shown};
        let (_dir, mut db) = database();
        let no_filter = Filters::default().conditions().unwrap();
        for by in GroupBy::ALL {
            let plan = db
                .report_plan(by, &no_filter, SortBy::Commands, None)
                .unwrap();
            assert!(matches!(plan.source, RowSource::Totals { .. }), "{by:?}");
            let read = |texts| {
                let mut rows = Vec::new();
                db.report_rows(&plan, texts, &mut |row| -> Result<(), DbError> {
                    rows.push(row);
                    Ok(())
                })
                .unwrap();
                rows
            };
            let (whole, shown) = (read(RowTexts::ALL), read(texts_shown(by)));
            assert_eq!(whole.len(), shown.len(), "{by:?}");
            if by == GroupBy::Command {
                assert_ne!(
                    whole, shown,
                    "texts a table of commands does not show are not read"
                );
            }
            let table = |rows: &[ReportRow]| table(rows, &plan.totals, by, (None, None), false);
            assert_eq!(table(&shown), table(&whole), "{by:?}");
        }
    }

    /// A filtered report is read in one pass when the filter's index gives
    /// its rows in time order, else placed rows sorted and the others in
    /// a second pass: the test below sees both.
    #[test]
    fn a_filter_read_in_time_order_is_read_in_one_pass() {
        let (_dir, db) = database();
        let [user, failed, under] = some_filters().map(|f| f.conditions().unwrap());
        let ordered = |c: &Conditions| {
            let sql = format!("{} ORDER BY started_at_us, id", c.where_sql());
            sorted_for_free(&db.conn, &sql, &c.params).unwrap()
        };
        assert!(ordered(&user));
        assert!(ordered(&failed));
        assert!(!ordered(&under));
        // Every row (what `verify` counts again): read twice, in the
        // table's order, not looked up one by one in time order.
        let all = (
            "WHERE id <= ?1 ORDER BY started_at_us, id",
            [Value::Integer(3_000)],
        );
        assert!(!sorted_for_free(&db.conn, all.0, &all.1).unwrap());
        // A range of them, as the running totals count on: the same.
        let range = "WHERE id > ?1 AND id <= ?2 ORDER BY started_at_us, id";
        let ids = [Value::Integer(7), Value::Integer(14)];
        assert!(!sorted_for_free(&db.conn, range, &ids).unwrap());
    }

    #[test]
    fn a_report_read_in_one_or_two_passes_is_the_report_counted_in_time_order() {
        let (_dir, mut db) = database();
        for filters in std::iter::once(Filters::default()).chain(some_filters()) {
            let c = filters.conditions().unwrap();
            for by in [
                GroupBy::Session,
                GroupBy::Window,
                GroupBy::ClientUser,
                GroupBy::Day,
                GroupBy::User,
            ] {
                // --by user without a filter reads the running totals.
                if by == GroupBy::User && c.clauses.is_empty() {
                    continue;
                }
                let fast = db.report(by, &c, SortBy::Commands, None).unwrap().rows;
                let expected = counted_in_time_order(&db, by, &c);
                assert!(!expected.is_empty(), "{by:?}: groups to compare");
                assert_eq!(fast, expected, "{by:?} with {:?}", c.clauses);
            }
        }
    }

    /// A filtered report whose groups would hold more than its memory
    /// budget is counted into temporary tables a range at a time: the same
    /// report (rows, order, `--top`, what every group adds up to) as
    /// counted in memory, for every grouping, sort and filter; on a
    /// read-only database too.
    #[test]
    fn a_filtered_report_too_large_for_memory_is_the_report_counted_in_memory() {
        let (dir, mut db) = database();
        let host = Filters {
            host: Some("host-1".into()),
            ..Filters::default()
        };
        let filters: Vec<Filters> = some_filters().into_iter().chain([host]).collect();
        let sorts = [
            SortBy::Commands,
            SortBy::Failures,
            SortBy::Duration,
            SortBy::Last,
        ];
        let both_ways = |db: &mut Database, by, c: &Conditions, sort, top| {
            db.set_report_budget(usize::MAX);
            let in_memory = db.report(by, c, sort, top).unwrap();
            db.set_report_budget(0);
            let folded = db.report(by, c, sort, top).unwrap();
            let case = format!("{by:?} {sort:?} top {top:?} with {:?}", c.clauses);
            assert!(!in_memory.rows.is_empty(), "{case}: groups to compare");
            assert_eq!(folded.rows, in_memory.rows, "{case}");
            assert_eq!(
                format!("{:?}", folded.totals),
                format!("{:?}", in_memory.totals),
                "{case}"
            );
            in_memory.totals.groups
        };
        let mut groups = 0;
        for filters in &filters {
            let c = filters.conditions().unwrap();
            for by in GroupBy::ALL {
                groups = groups.max(both_ways(&mut db, by, &c, SortBy::Commands, None));
            }
        }
        let c = filters[2].conditions().unwrap();
        for by in [GroupBy::Command, GroupBy::Window] {
            for sort in sorts {
                for top in [None, Some(2)] {
                    both_ways(&mut db, by, &c, sort, top);
                }
            }
        }
        assert!(groups > 30, "groups counted on over many ranges: {groups}");
        // Counted past the budget, not in memory: one range of rows more
        // in the temporary tables than the report shows does not hide.
        db.set_report_budget(0);
        let c = filters[0].conditions().unwrap();
        let folded = db.report(GroupBy::Day, &c, SortBy::Commands, None).unwrap();
        assert_eq!(folded.rows, counted_in_time_order(&db, GroupBy::Day, &c));
        let count: i64 = db
            .conn
            .query_row("SELECT count(*) FROM temp.filtered_totals", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            count as usize,
            folded.rows.len(),
            "read from the temporary totals"
        );
        // A read-only database: only the temporary one is written.
        let path = dir.path().join("audit.db");
        drop(db);
        let mut db = Database::open_read_only(&path, std::time::Duration::ZERO).unwrap();
        let c = filters[1].conditions().unwrap();
        both_ways(&mut db, GroupBy::Session, &c, SortBy::Commands, None);
    }

    /// Every grouping's report from its running totals is the report
    /// counted from every row, in time order, placed: when the totals are
    /// first counted, when they count on from rows stored since (some
    /// started before rows counted already, with events that rename a
    /// session after every counted command), and after an event stored late
    /// that places counted commands otherwise. `verify`'s check agrees
    /// each time.
    /// A group's session is that of its latest placed command that has
    /// one, also when the totals are counted a range of rows at a time and
    /// an older command with a session comes in a range after a newer one
    /// without (`$TMUX` without a session, in a pane no event names).
    #[test]
    fn a_group_s_session_is_its_latest_placed_one_across_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(&dir.path().join("audit.db")).unwrap();
        let at = |minutes: i64, session: Option<i64>, seq: i64| {
            Entry::Command(CommandRecord {
                command: format!("cmd-{seq}"),
                started_at_us: T0 + minutes * MINUTE,
                cwd: "/".into(),
                user: "alice".into(),
                host: "h".into(),
                shell: "bash".into(),
                shell_session: "s".into(),
                seq,
                tmux_socket: Some("/tmp/tmux-1000/s0".into()),
                tmux_server_pid: Some(100),
                tmux_session_id: session,
                tmux_pane: Some("%9".into()),
                ..CommandRecord::default()
            })
        };
        let mut entries = vec![event(0, "0-0", "seen", 0, 1, 10, "%1", None)];
        // In the first range: minute 10 in session 1, minute 30 without one.
        entries.push(at(10, Some(1), 1));
        entries.push(at(30, None, 2));
        entries.extend((3..=FOLD_ROWS + 1).map(|seq| at(5, Some(1), seq)));
        // In the next: minute 20 in session 2, the latest with a session.
        entries.push(at(20, Some(2), FOLD_ROWS + 2));
        insert(&mut db, &entries);
        let none = Filters::default().conditions().unwrap();
        let fast = db
            .report(GroupBy::Window, &none, SortBy::Commands, None)
            .unwrap();
        let expected = counted_in_time_order(&db, GroupBy::Window, &none);
        assert_eq!(expected[0].tmux_session_id, Some(2));
        assert_eq!(fast.rows, expected);
        assert!(db.check_totals().unwrap().is_empty(), "verify agrees");
    }

    #[test]
    fn each_grouping_s_running_totals_are_the_report_counted_from_the_rows() {
        let (dir, mut db) = database();
        let path = dir.path().join("audit.db");
        let none = Filters::default().conditions().unwrap();
        let compare = |db: &mut Database, when: &str| {
            for by in GroupBy::ALL {
                let fast = db.report(by, &none, SortBy::Commands, None).unwrap();
                let name = by.totals_name().unwrap();
                let counted_up_to: i64 = db
                    .conn
                    .query_row(
                        "SELECT counted_up_to FROM totals_state WHERE name = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .unwrap_or_else(|e| panic!("{by:?} {when}: read from totals: {e}"));
                let newest: i64 = db
                    .conn
                    .query_row("SELECT max(id) FROM commands", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(counted_up_to, newest, "{by:?} {when}: totals up to date");
                let expected = counted_in_time_order(db, by, &none);
                assert!(expected.len() > 1, "{by:?}: groups to compare");
                assert_eq!(fast.rows, expected, "{by:?} {when}");
                assert_eq!(fast.totals.groups, expected.len(), "{by:?} {when}");
                let rows: i64 = db
                    .conn
                    .query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(fast.totals.commands, rows, "{by:?} {when}");
            }
            assert!(
                db.check_totals().unwrap().is_empty(),
                "{when}: verify agrees"
            );
            typists_noted_are_the_placed_ones(db, &path, when);
        };
        compare(&mut db, "counted first");
        // More commands (some older than counted ones), and events after
        // every command that rename and move things.
        let mut more: Vec<Entry> = (3_000..4_000).map(command).collect();
        more.push(event(
            0,
            "later-1",
            "session-renamed",
            2_000,
            2,
            20,
            "%2",
            None,
        ));
        more.push(event(
            1,
            "later-2",
            "client-active",
            2_000,
            1,
            10,
            "%1",
            Some("carol"),
        ));
        insert(&mut db, &more);
        let late = |i: i64| match command(i) {
            Entry::Command(mut c) => {
                c.started_at_us = T0 + 2_100 * MINUTE + i;
                Entry::Command(c)
            }
            other => other,
        };
        insert(&mut db, &(4_000..4_300).map(late).collect::<Vec<_>>());
        compare(&mut db, "counted on");
        // An event stored late: before counted commands started.
        insert(
            &mut db,
            &[event(
                0,
                "late",
                "client-active",
                100,
                1,
                10,
                "%1",
                Some("carol"),
            )],
        );
        compare(&mut db, "after a late event");
    }

    /// Who typed each command, as the totals by typist note it
    /// (`command_typists`), is who `search` finds typed it, placing every
    /// command through `Database::place`; and `--typed-by` reads it there,
    /// finding what a read-only database (which places the commands
    /// itself) finds.
    fn typists_noted_are_the_placed_ones(db: &mut Database, path: &std::path::Path, when: &str) {
        let everything = |db: &Database, conditions| {
            let query = crate::db::SearchQuery {
                conditions,
                scan_first: None,
                limit: None,
                unique: false,
            };
            let mut rows = db.search(&query).unwrap();
            db.place(&mut rows).unwrap();
            rows
        };
        let none = Filters::default().conditions().unwrap();
        let mut placed: Typists = everything(db, none)
            .iter()
            .map(|c| {
                let typist = typist(c.placement.as_ref(), &c.record.user);
                (typist.to_string(), c.id)
            })
            .collect();
        placed.sort_unstable();
        let mut typists: Vec<&str> = placed.iter().map(|(t, _)| t.as_str()).collect();
        typists.dedup();
        assert!(typists.len() > 2, "{when}: typists to tell apart");
        let mut read_only =
            Database::open_read_only(path, std::time::Duration::from_secs(5)).unwrap();
        for typist in typists {
            let filters = Filters {
                typed_by: Some(typist.to_string()),
                ..Filters::default()
            };
            let expected: Vec<i64> = placed
                .iter()
                .filter(|(t, _)| t == typist)
                .map(|(_, id)| *id)
                .collect();
            // (Which database, whether it reads the typists noted.)
            for (db, noted) in [(&mut *db, true), (&mut read_only, false)] {
                let c = db.conditions(&filters).unwrap();
                // Placed here, the commands of the shell's user outside
                // tmux are a condition of their own.
                let placed_here = c.where_sql().contains(" OR ");
                assert_eq!(!placed_here, noted, "{when}: {}", c.where_sql());
                let mut found: Vec<i64> = everything(db, c).iter().map(|c| c.id).collect();
                found.sort_unstable();
                assert_eq!(found, expected, "{when}: typed by {typist}, noted {noted}");
            }
        }
        let mut stmt = db
            .conn
            .prepare("SELECT typist, id FROM command_typists ORDER BY typist, id")
            .unwrap();
        let noted: Typists = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(noted, placed, "{when}: who typed each command");
    }

    /// Once the running totals are forgotten (a prune, a redaction),
    /// `--typed-by` counts the totals by typist again before it reads them.
    #[test]
    fn typed_by_counts_forgotten_totals_again() {
        let (dir, mut db) = database();
        let none = Filters::default().conditions().unwrap();
        db.report(GroupBy::ClientUser, &none, SortBy::Commands, None)
            .unwrap();
        forget_totals(&db.conn).unwrap();
        let path = dir.path().join("audit.db");
        typists_noted_are_the_placed_ones(&mut db, &path, "forgotten");
    }

    /// Tells the test which part it is, run in a child in a named zone.
    const CHILD_PART: &str = "TMUX_AUDIT_TEST_DAY_TOTALS";

    /// The days counted in one time zone are counted again in another: the
    /// report by day in New York is New York's days, though the totals were
    /// counted in Kolkata. Each part runs in a child with its own `TZ`.
    #[test]
    fn days_counted_in_one_zone_are_counted_again_in_another() {
        let none = Filters::default().conditions().unwrap();
        if let Some(part) = std::env::var_os(CHILD_PART) {
            let path = std::path::PathBuf::from(std::env::var_os("TMUX_AUDIT_TEST_DB").unwrap());
            let mut db = Database::open(&path).unwrap();
            let fast = db
                .report(GroupBy::Day, &none, SortBy::Commands, None)
                .unwrap();
            if part == "compare" {
                assert_eq!(fast.rows, counted_in_time_order(&db, GroupBy::Day, &none));
                assert!(db.check_totals().unwrap().is_empty());
            }
            return;
        }
        let (dir, db) = database();
        drop(db);
        for (zone, part) in [("Asia/Kolkata", "count"), ("America/New_York", "compare")] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "db::report::fast_path_tests::days_counted_in_one_zone_are_counted_again_in_another",
                    "--test-threads",
                    "1",
                ])
                .env("TZ", zone)
                .env(CHILD_PART, part)
                .env("TMUX_AUDIT_TEST_DB", dir.path().join("audit.db"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{part} in {zone}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
