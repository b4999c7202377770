//! Reading the central store: the same filters as a local search (the
//! conditions of `filter.rs`, their `?` placeholders numbered for
//! PostgreSQL), the pattern matched by PostgreSQL (trigram-indexed LIKE,
//! or a regular expression), and the rows read back as the
//! [`StoredCommand`]s every renderer takes, placed by the tmux events of
//! their own host.

use std::collections::{BTreeMap, HashMap};

use postgres::fallible_iterator::FallibleIterator;

use postgres::types::ToSql;
use rusqlite::types::Value;

use super::CentralError;
use crate::db::{
    Counting, GroupBy, Ranked, ReportFields, ReportRow, SortBy, StoredCommand, Totals, SCAN_WINDOW,
};
use crate::filter::{
    smart_case_sensitive, smart_case_sensitive_regex, Conditions, MatchKind, CWD_UNDER,
};
use crate::lifecycle::replay::{Replay, ServerKey};
use crate::lifecycle::{Client, TmuxEvent};
use crate::record::CommandRecord;

/// A central search: what `search` asks locally.
#[derive(Debug, Default)]
pub struct CentralSearch {
    pub conditions: Conditions,
    pub pattern: Option<(String, MatchKind)>,
    pub limit: Option<usize>,
    pub unique: bool,
}

const COLUMNS: &str = "host_id, id, recorded_at_us, command, command_raw, exit_status, \
    started_at_us, duration_us, cwd, cwd_raw, \"user\", uid, login_uid, sudo_user, host, shell, \
    shell_session, seq, tty, ssh_connection, tmux_socket, tmux_server_pid, tmux_session_id, \
    tmux_pane, redacted, import_source, import_file, import_key";

/// Conditions written for SQLite, for PostgreSQL: `?` numbered from
/// `first`, and `user` (a reserved word there) quoted.
fn translate(conditions: &Conditions, first: usize) -> (Vec<String>, usize) {
    let mut n = first;
    let clauses = conditions
        .clauses
        .iter()
        .map(|clause| {
            // A range of paths in byte order, as SQLite compares them, not
            // in the database's collation (en_US or ICU sort `/home/A/x`
            // inside `/home/a/`..`/home/a0`); the pattern operators also
            // use the `text_pattern_ops` index.
            let clause = if clause == CWD_UNDER {
                "(cwd = ? OR (cwd ~>=~ ? AND cwd ~<~ ?))"
            } else {
                clause
            };
            let mut out = String::new();
            for (i, part) in clause.split('?').enumerate() {
                if i > 0 {
                    out.push_str(&format!("${n}"));
                    n += 1;
                }
                out.push_str(part);
            }
            quote_user(&out)
        })
        .collect();
    (clauses, n)
}

fn quote_user(clause: &str) -> String {
    let bytes = clause.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < clause.len() {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if clause[i..].starts_with("user")
            && (i == 0 || !word(bytes[i - 1]))
            && bytes.get(i + 4).is_none_or(|&b| !word(b))
        {
            out.push_str("\"user\"");
            i += 4;
        } else {
            let c = clause[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn param(value: &Value) -> Box<dyn ToSql + Sync> {
    match value {
        Value::Null => Box::new(None::<i64>),
        Value::Integer(i) => Box::new(*i),
        Value::Real(f) => Box::new(*f),
        Value::Text(t) => Box::new(t.clone()),
        Value::Blob(b) => Box::new(b.clone()),
    }
}

/// The condition on the command text, for PostgreSQL.
fn pattern_clause(pattern: &str, kind: MatchKind, n: usize) -> (String, String) {
    let like = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    };
    let sensitive = match kind {
        MatchKind::Regex => smart_case_sensitive_regex(pattern),
        _ => smart_case_sensitive(pattern),
    };
    let op = if sensitive { "LIKE" } else { "ILIKE" };
    match kind {
        MatchKind::Substring => (
            format!("command {op} ${n} ESCAPE '\\'"),
            format!("%{}%", like(pattern)),
        ),
        MatchKind::Exact if sensitive => (format!("command = ${n}"), pattern.to_string()),
        MatchKind::Exact => (format!("command ILIKE ${n} ESCAPE '\\'"), like(pattern)),
        MatchKind::Prefix => (
            format!("command {op} ${n} ESCAPE '\\'"),
            format!("{}%", like(pattern)),
        ),
        MatchKind::Regex => (
            format!("command {} ${n}", if sensitive { "~" } else { "~*" }),
            pattern.to_string(),
        ),
    }
}

/// `report --central`, every grouping a local report has. By host, user,
/// directory or command the server counts (one GROUP BY, the most used
/// directory and command by `mode()`, ties to the one first in byte
/// order, as locally); the team view (by host, unfiltered) comes from the
/// running totals per host when the role may read them (an auditor). By
/// pane, session, window, typist or day the rows come in time order and
/// are counted here as a local report counts them ([`Counting`]), each
/// placed by the tmux events of its own host, days in the local time zone.
pub fn report(
    client: &mut postgres::Client,
    by: GroupBy,
    conditions: &Conditions,
    sort: SortBy,
    top: Option<usize>,
) -> Result<Ranked, CentralError> {
    let key = match by {
        GroupBy::Host => "host",
        GroupBy::User => "\"user\"",
        GroupBy::Cwd => "cwd",
        GroupBy::Command => "command",
        _ => return counted(client, by, conditions, sort, top),
    };
    let (where_sql, params) = where_clause(conditions);
    let sql = if by == GroupBy::Host && conditions.clauses.is_empty() && reads_host_totals(client)?
    {
        host_totals_sql()
    } else {
        let total_duration = saturated("coalesce(sum(duration_us), 0)");
        format!(
            "SELECT {key}, count(*), count(*) FILTER (WHERE exit_status <> 0), min(started_at_us),
                    max(started_at_us), {total_duration},
                    coalesce(max(duration_us), 0),
                    string_agg(DISTINCT \"user\" COLLATE \"C\", ',' ORDER BY \"user\" COLLATE \"C\"),
                    string_agg(DISTINCT host COLLATE \"C\", ',' ORDER BY host COLLATE \"C\"),
                    mode() WITHIN GROUP (ORDER BY cwd COLLATE \"C\"),
                    mode() WITHIN GROUP (ORDER BY command COLLATE \"C\")
             FROM tmux_audit.commands {where_sql} GROUP BY 1"
        )
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let found = client
        .query(&sql, &refs)
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut rows: Vec<ReportRow> = found
        .iter()
        .map(|r| ReportRow {
            key: r.get(0),
            commands: r.get(1),
            failures: r.get(2),
            first_us: r.get(3),
            last_us: r.get(4),
            total_duration_us: r.get(5),
            longest_us: r.get(6),
            users: r.get::<_, Option<String>>(7).unwrap_or_default(),
            hosts: r.get::<_, Option<String>>(8).unwrap_or_default(),
            // None only from totals an administrator left without their
            // most used values: shown empty, never a panic.
            top_cwd: (by != GroupBy::Cwd)
                .then(|| r.get::<_, Option<String>>(9).unwrap_or_default()),
            top_command: (by != GroupBy::Command)
                .then(|| r.get::<_, Option<String>>(10).unwrap_or_default()),
            ..ReportRow::default()
        })
        .collect();
    sort.sort(&mut rows);
    let totals = Totals::of(&rows);
    if let Some(top) = top {
        rows.truncate(top);
    }
    Ok(Ranked { rows, totals })
}

/// A sum of durations as a bigint, held within its range rather than
/// an overflow that fails the report (a writer chooses the durations).
fn saturated(sum: &str) -> String {
    format!("least(greatest({sum}, -9223372036854775808), 9223372036854775807)::bigint")
}

/// The team view from the running totals per host (central schema 5),
/// in the columns of the counting query: the totals of each host name's
/// hosts (by id) and users, and its most used directory and command: the
/// host's own when one host has the name, else counted from their counts.
fn host_totals_sql() -> String {
    let top = |kind: &str| {
        format!(
            "CASE WHEN count(DISTINCT t.host_id) = 1 THEN
                (SELECT p.value FROM tmux_audit.host_tops p
                 WHERE p.host_id = min(t.host_id) AND p.host = t.host AND p.kind = '{kind}')
            ELSE (SELECT v.value FROM tmux_audit.host_values v
                  WHERE v.host_id IN (SELECT h.host_id FROM tmux_audit.host_totals h
                                      WHERE h.host = t.host)
                    AND v.host = t.host AND v.kind = '{kind}'
                  GROUP BY v.value ORDER BY sum(v.n) DESC, v.value LIMIT 1) END"
        )
    };
    format!(
        "SELECT t.host, sum(t.commands)::bigint, sum(t.failures)::bigint, min(t.first_us),
                max(t.last_us), {}, max(t.longest_us),
                string_agg(DISTINCT t.\"user\" COLLATE \"C\", ',' ORDER BY t.\"user\" COLLATE \"C\"),
                t.host, {}, {}
         FROM tmux_audit.host_totals t GROUP BY t.host",
        saturated("sum(t.total_duration_us)"),
        top("cwd"),
        top("command")
    )
}

/// Whether this role may read the running totals per host: only an
/// auditor (or the schema's owner) may, as only they read every row.
fn reads_host_totals(client: &mut postgres::Client) -> Result<bool, CentralError> {
    client
        .query_one(
            "SELECT has_table_privilege('tmux_audit.host_totals', 'SELECT')
                AND has_table_privilege('tmux_audit.host_tops', 'SELECT')",
            &[],
        )
        .map(|r| r.get(0))
        .map_err(|e| CentralError::from_postgres(&e))
}

/// The WHERE clause of `conditions` for PostgreSQL, and its parameters.
fn where_clause(conditions: &Conditions) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let (clauses, _) = translate(conditions, 1);
    let params = conditions.params.iter().map(param).collect();
    (where_of(&clauses), params)
}

/// A report counted here from the rows the server streams in time order.
fn counted(
    client: &mut postgres::Client,
    by: GroupBy,
    conditions: &Conditions,
    sort: SortBy,
    top: Option<usize>,
) -> Result<Ranked, CentralError> {
    // Every host's tmux events, as a local report replays all of its own.
    let mut replays: HashMap<String, Replay> = HashMap::new();
    if by.needs_placement() {
        replays = tmux_events_by_host(client)?
            .into_iter()
            .map(|(host, events)| (host, Replay::new(events)))
            .collect();
    }
    let (where_sql, params) = where_clause(conditions);
    let sql = format!(
        "SELECT host_id, tmux_socket, tmux_server_pid, tmux_pane, tmux_session_id, shell_session,
                exit_status, started_at_us, duration_us, \"user\", host, cwd, command
         FROM tmux_audit.commands {where_sql} ORDER BY started_at_us, host_id, database_id, id"
    );
    let mut rows = client
        .query_raw(&sql, params.iter().map(|p| p.as_ref()))
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut counting = Counting::new(by);
    let failed = |e: postgres::Error| CentralError::from_postgres(&e);
    while let Some(r) = rows.next().map_err(failed)? {
        let host_id: &str = r.get(0);
        let row = ReportFields {
            socket: r.get(1),
            pid: r.get(2),
            pane: r.get(3),
            session_id: r.get(4),
            shell_session: r.get(5),
            failed: r.get::<_, Option<i64>>(6).is_some_and(|s| s != 0),
            started: r.get(7),
            duration: r.get::<_, Option<i64>>(8).unwrap_or(0),
            user: r.get(9),
            host: r.get(10),
            cwd: r.get(11),
            command: r.get(12),
        };
        let place = match (replays.get_mut(host_id), row.socket, row.pid) {
            (Some(replay), Some(socket), Some(pid)) => {
                replay.place_at(socket, pid, row.pane, row.session_id, row.started)
            }
            _ => None,
        };
        counting.add(host_id, &row, place);
    }
    Ok(counting.ranked(sort, top))
}

/// Matching commands of every host the role may read, newest first.
pub fn search(
    client: &mut postgres::Client,
    query: &CentralSearch,
) -> Result<Vec<StoredCommand>, CentralError> {
    let (mut clauses, next) = translate(&query.conditions, 1);
    let mut params: Vec<Box<dyn ToSql + Sync>> =
        query.conditions.params.iter().map(param).collect();
    let mut pattern = None;
    if let Some((text, kind)) = &query.pattern {
        let (clause, value) = pattern_clause(text, *kind, next);
        pattern = Some(clause);
        params.push(Box::new(value));
    }
    let limit = query.limit.map_or("ALL".to_string(), |n| n.to_string());
    let newest = |from: &str, where_sql: &str| match query.unique {
        true => format!(
            "SELECT * FROM (SELECT DISTINCT ON (command) {COLUMNS} FROM {from} {where_sql}
                ORDER BY command, started_at_us DESC, host_id, database_id, id DESC) newest
             ORDER BY started_at_us DESC, host_id, id DESC LIMIT {limit}"
        ),
        false => format!(
            "SELECT {COLUMNS} FROM {from} {where_sql}
             ORDER BY started_at_us DESC, host_id, database_id, id DESC LIMIT {limit}"
        ),
    };
    let mut found = None;
    if let (Some(pattern), Some(wanted)) = (&pattern, query.limit) {
        // The newest rows first, as locally ([`SCAN_WINDOW`]): a common
        // word's newest matches are among them. PostgreSQL cannot tell
        // that itself here: under row-level security it keeps the
        // column's statistics from a pattern match (a leak otherwise), so
        // it guesses every pattern rare and reads all of a common word's
        // matches through the trigram index to sort them by time (5.3 s
        // for `git status` at 10,000,000 rows). The window is a subquery
        // with an OFFSET so the pattern is checked on its rows, not
        // pushed down into it.
        let floor: Option<i64> = client
            .query_opt(
                "SELECT started_at_us FROM tmux_audit.commands
                 ORDER BY started_at_us DESC LIMIT 1 OFFSET $1",
                &[&SCAN_WINDOW],
            )
            .map_err(|e| CentralError::from_postgres(&e))?
            .map(|r| r.get(0));
        let mut window = clauses.clone();
        if let Some(floor) = floor {
            window.push(format!("started_at_us > {floor}"));
        }
        let from = format!(
            "(SELECT * FROM tmux_audit.commands {} OFFSET 0) recent",
            where_of(&window)
        );
        let rows = run(client, &newest(&from, &format!("WHERE {pattern}")), &params)?;
        if rows.len() == wanted || floor.is_none() {
            found = Some(rows);
        }
    }
    let mut found = match found {
        Some(rows) => rows,
        None => {
            clauses.extend(pattern);
            run(
                client,
                &newest("tmux_audit.commands", &where_of(&clauses)),
                &params,
            )?
        }
    };
    place(client, &mut found)?;
    Ok(found.into_iter().map(|(_, row)| row).collect())
}

fn where_of(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    }
}

/// The rows of a search's `sql`, each with its host's id.
fn run(
    client: &mut postgres::Client,
    sql: &str,
    params: &[Box<dyn ToSql + Sync>],
) -> Result<Vec<(String, StoredCommand)>, CentralError> {
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let rows = client
        .query(sql, &refs)
        .map_err(|e| CentralError::from_postgres(&e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>("host_id"), stored_command(r)))
        .collect())
}

/// Every tmux event the role may read, per host (by its id), each host's
/// in time order: what `sessions` and `timeline` replay locally.
pub fn tmux_events_by_host(
    client: &mut postgres::Client,
) -> Result<BTreeMap<String, Vec<TmuxEvent>>, CentralError> {
    let found = client
        .query(
            "SELECT * FROM tmux_audit.tmux_events WHERE event NOT IN ($1, $2) \
             ORDER BY host_id, at_us, database_id, id",
            // A capture's seals are chained as events, but tell nothing of
            // the server (as locally: `Database::tmux_events`).
            &[&crate::capture::seal::SEALED, &crate::capture::seal::PRUNED],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut events: BTreeMap<String, Vec<TmuxEvent>> = BTreeMap::new();
    for r in &found {
        events
            .entry(r.get("host_id"))
            .or_default()
            .push(tmux_event(r));
    }
    Ok(events)
}

/// The hosts (by id) with a command run in `pane`.
pub fn hosts_of_pane(
    client: &mut postgres::Client,
    pane: &str,
) -> Result<Vec<String>, CentralError> {
    let found = client
        .query(
            "SELECT DISTINCT host_id FROM tmux_audit.commands WHERE tmux_pane = $1 ORDER BY 1",
            &[&pane],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    Ok(found.iter().map(|r| r.get(0)).collect())
}

/// The commands of one host's tmux server that started in
/// `since_us..until_us`, oldest first, placed by that host's tmux events
/// (as `Database::commands_of_server` and `Database::place` locally).
pub fn commands_of_server(
    client: &mut postgres::Client,
    host_id: &str,
    server: &ServerKey,
    since_us: i64,
    until_us: i64,
) -> Result<Vec<StoredCommand>, CentralError> {
    let found = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM tmux_audit.commands
                 WHERE host_id = $1 AND tmux_socket = $2 AND tmux_server_pid = $3
                   AND started_at_us >= $4 AND started_at_us < $5
                 ORDER BY started_at_us, database_id, id"
            ),
            &[&host_id, &server.0, &server.1, &since_us, &until_us],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut rows: Vec<(String, StoredCommand)> = found
        .iter()
        .map(|r| (host_id.to_string(), stored_command(r)))
        .collect();
    place(client, &mut rows)?;
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// The newest server of one host a command ran in `pane` of.
pub fn newest_server_of_pane(
    client: &mut postgres::Client,
    host_id: &str,
    pane: &str,
) -> Result<Option<ServerKey>, CentralError> {
    let found = client
        .query_opt(
            "SELECT tmux_socket, tmux_server_pid FROM tmux_audit.commands
             WHERE host_id = $1 AND tmux_pane = $2
               AND tmux_socket IS NOT NULL AND tmux_server_pid IS NOT NULL
             ORDER BY started_at_us DESC LIMIT 1",
            &[&host_id, &pane],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    Ok(found.map(|r| (r.get(0), r.get(1))))
}

/// A command read back from the central store (for `check.rs` too).
pub(crate) fn stored_command_pub(r: &postgres::Row) -> StoredCommand {
    stored_command(r)
}

fn stored_command(r: &postgres::Row) -> StoredCommand {
    StoredCommand {
        id: r.get("id"),
        recorded_at_us: r.get("recorded_at_us"),
        record: CommandRecord {
            command: r.get("command"),
            command_raw: r.get("command_raw"),
            exit_status: r.get("exit_status"),
            started_at_us: r.get("started_at_us"),
            duration_us: r.get("duration_us"),
            cwd: r.get("cwd"),
            cwd_raw: r.get("cwd_raw"),
            user: r.get("user"),
            uid: u32::try_from(r.get::<_, i64>("uid")).unwrap_or(u32::MAX),
            login_uid: r
                .get::<_, Option<i64>>("login_uid")
                .and_then(|u| u32::try_from(u).ok()),
            sudo_user: r.get("sudo_user"),
            host: r.get("host"),
            shell: r.get("shell"),
            shell_session: r.get("shell_session"),
            seq: r.get("seq"),
            tty: r.get("tty"),
            ssh_connection: r.get("ssh_connection"),
            tmux_socket: r.get("tmux_socket"),
            tmux_server_pid: r.get("tmux_server_pid"),
            tmux_session_id: r.get("tmux_session_id"),
            tmux_pane: r.get("tmux_pane"),
            redacted: r.get("redacted"),
            imported: r
                .get::<_, Option<String>>("import_source")
                .map(|source| tmux_audit_imported(r, source)),
        },
        placement: None,
    }
}

/// The import mark of a command read back (its source is set).
fn tmux_audit_imported(r: &postgres::Row, source: String) -> crate::record::Imported {
    crate::record::Imported {
        source,
        file: r
            .get::<_, Option<String>>("import_file")
            .unwrap_or_default(),
        key: r
            .get::<_, Option<Vec<u8>>>("import_key")
            .unwrap_or_default(),
    }
}

/// Session and window names and the typist, from the tmux events of each
/// command's own host and server (as `Database::place` does locally).
fn place(
    client: &mut postgres::Client,
    rows: &mut [(String, StoredCommand)],
) -> Result<(), CentralError> {
    let mut by_host: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (host_id, row)) in rows.iter().enumerate() {
        if row.record.tmux_socket.is_some() {
            by_host.entry(host_id.clone()).or_default().push(i);
        }
    }
    for (host_id, indexes) in by_host {
        let mut servers: Vec<(String, i64)> = indexes
            .iter()
            .filter_map(|&i| {
                let r = &rows[i].1.record;
                Some((r.tmux_socket.clone()?, r.tmux_server_pid?))
            })
            .collect();
        servers.sort();
        servers.dedup();
        let mut events = Vec::new();
        for (socket, pid) in &servers {
            let found = client
                .query(
                    "SELECT * FROM tmux_audit.tmux_events
                     WHERE host_id = $1 AND tmux_socket = $2 AND tmux_server_pid = $3
                     ORDER BY at_us, id",
                    &[&host_id, socket, pid],
                )
                .map_err(|e| CentralError::from_postgres(&e))?;
            events.extend(found.iter().map(tmux_event));
        }
        let mut replay = Replay::new(events);
        let placements = replay.place_all(indexes.iter().map(|&i| &rows[i].1.record));
        for (&i, placement) in indexes.iter().zip(placements) {
            rows[i].1.placement = placement;
        }
    }
    Ok(())
}

/// A tmux event read back from the central store.
pub(crate) fn tmux_event(r: &postgres::Row) -> TmuxEvent {
    TmuxEvent {
        event: r.get("event"),
        at_us: r.get("at_us"),
        event_key: r.get("event_key"),
        host: r.get("host"),
        user: r.get("user"),
        uid: u32::try_from(r.get::<_, i64>("uid")).unwrap_or(u32::MAX),
        tmux_socket: r.get("tmux_socket"),
        tmux_server_pid: r.get("tmux_server_pid"),
        session_id: r.get("session_id"),
        session_name: r.get("session_name"),
        window_id: r.get("window_id"),
        window_index: r.get("window_index"),
        window_name: r.get("window_name"),
        pane: r.get("pane"),
        client: r
            .get::<_, Option<String>>("client_name")
            .map(|name| Client {
                name,
                tty: r.get("client_tty"),
                pid: r.get("client_pid"),
                user: r.get("client_user"),
                uid: r.get("client_uid"),
                termname: r.get("client_termname"),
            }),
        automatic_rename: r.get("automatic_rename"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_user_is_quoted() {
        let c = Conditions {
            clauses: vec!["user = ?".into(), CWD_UNDER.into(), "sudo_user = ?".into()],
            params: vec![],
        };
        let (clauses, next) = translate(&c, 1);
        assert_eq!(
            clauses,
            [
                "\"user\" = $1",
                "(cwd = $2 OR (cwd ~>=~ $3 AND cwd ~<~ $4))",
                "sudo_user = $5"
            ]
        );
        assert_eq!(next, 6);
    }
}
