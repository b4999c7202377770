//! Reading the central store: the same filters as a local search (the
//! conditions of `filter.rs`, their `?` placeholders numbered for
//! PostgreSQL), the pattern matched by PostgreSQL (trigram-indexed LIKE,
//! or a regular expression), and the rows read back as the
//! [`StoredCommand`]s every renderer takes, placed by the tmux events of
//! their own host.

use std::collections::BTreeMap;

use postgres::types::ToSql;
use rusqlite::types::Value;

use super::CentralError;
use crate::db::{GroupBy, Ranked, ReportRow, SortBy, StoredCommand, Totals};
use crate::filter::{smart_case_sensitive, smart_case_sensitive_regex, Conditions, MatchKind};
use crate::lifecycle::replay::Replay;
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

/// `report --central`: the groups counted by the server (one GROUP BY,
/// the most used directory and command by `mode()`, ties to the one that
/// sorts first, as locally). Groupings that need the tmux events replayed
/// (pane, session, window, typist) or the local time zone (day) are
/// local only: None.
pub fn report(
    client: &mut postgres::Client,
    by: GroupBy,
    conditions: &Conditions,
    sort: SortBy,
    top: Option<usize>,
) -> Result<Option<Ranked>, CentralError> {
    let key = match by {
        GroupBy::Host => "host",
        GroupBy::User => "\"user\"",
        GroupBy::Cwd => "cwd",
        GroupBy::Command => "command",
        _ => return Ok(None),
    };
    let (clauses, _) = translate(conditions, 1);
    let params: Vec<Box<dyn ToSql + Sync>> = conditions.params.iter().map(param).collect();
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {key}, count(*), count(*) FILTER (WHERE exit_status <> 0), min(started_at_us),
                max(started_at_us), coalesce(sum(duration_us), 0)::bigint, coalesce(max(duration_us), 0),
                string_agg(DISTINCT \"user\", ',' ORDER BY \"user\"),
                string_agg(DISTINCT host, ',' ORDER BY host),
                mode() WITHIN GROUP (ORDER BY cwd), mode() WITHIN GROUP (ORDER BY command)
         FROM tmux_audit.commands {where_sql} GROUP BY 1"
    );
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
            top_cwd: (by != GroupBy::Cwd).then(|| r.get(9)),
            top_command: (by != GroupBy::Command).then(|| r.get(10)),
            ..ReportRow::default()
        })
        .collect();
    sort.sort(&mut rows);
    let totals = Totals::of(&rows);
    if let Some(top) = top {
        rows.truncate(top);
    }
    Ok(Some(Ranked { rows, totals }))
}

/// Matching commands of every host the role may read, newest first.
pub fn search(
    client: &mut postgres::Client,
    query: &CentralSearch,
) -> Result<Vec<StoredCommand>, CentralError> {
    let (mut clauses, next) = translate(&query.conditions, 1);
    let mut params: Vec<Box<dyn ToSql + Sync>> =
        query.conditions.params.iter().map(param).collect();
    if let Some((pattern, kind)) = &query.pattern {
        let (clause, value) = pattern_clause(pattern, *kind, next);
        clauses.push(clause);
        params.push(Box::new(value));
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let limit = query.limit.map_or("ALL".to_string(), |n| n.to_string());
    let sql = if query.unique {
        format!(
            "SELECT * FROM (SELECT DISTINCT ON (command) {COLUMNS} FROM tmux_audit.commands {where_sql}
                ORDER BY command, started_at_us DESC, id DESC) newest
             ORDER BY started_at_us DESC, host_id, id DESC LIMIT {limit}"
        )
    } else {
        format!(
            "SELECT {COLUMNS} FROM tmux_audit.commands {where_sql}
             ORDER BY started_at_us DESC, host_id, id DESC LIMIT {limit}"
        )
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let rows = client
        .query(&sql, &refs)
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut found: Vec<(String, StoredCommand)> = rows
        .iter()
        .map(|r| (r.get::<_, String>("host_id"), stored_command(r)))
        .collect();
    place(client, &mut found)?;
    Ok(found.into_iter().map(|(_, row)| row).collect())
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
            clauses: vec![
                "user = ?".into(),
                "(cwd = ? OR (cwd >= ? AND cwd < ?))".into(),
                "sudo_user = ?".into(),
            ],
            params: vec![],
        };
        let (clauses, next) = translate(&c, 1);
        assert_eq!(
            clauses,
            [
                "\"user\" = $1",
                "(cwd = $2 OR (cwd >= $3 AND cwd < $4))",
                "sudo_user = $5"
            ]
        );
        assert_eq!(next, 6);
    }
}
