//! The SQLite histories of atuin, zsh-histdb and mcfly, read (never
//! written) by their documented schemas:
//!
//! - atuin (`~/.local/share/atuin/history.db`): `history (id, timestamp,
//!   duration, exit, command, cwd, session, hostname[, deleted_at])`,
//!   times in nanoseconds, `hostname` as `host:user`, `-1` for a duration
//!   or exit status not known; rows with `deleted_at` set were deleted in
//!   atuin and are not imported.
//! - zsh-histdb (`~/.histdb/zsh-history.db`): `history (session,
//!   command_id, place_id, exit_status, start_time, duration)` joined with
//!   `commands (argv)` and `places (host, dir)`, times in seconds; a
//!   history row whose command is missing is skipped and counted.
//! - mcfly (`~/.local/share/mcfly/history.db`): `commands (cmd,
//!   session_id, when_run, exit_code, dir, …)`, times in seconds.
//!
//! Text is read as the bytes SQLite holds, so nothing is lost in decoding.
//! A row that does not read as documented (a text where a time goes) is
//! skipped and counted, as a bad line of a text history is.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, Row};

use super::{HistoryEntry, ImportError, Parsed, Sink, Skipped, BATCH};

/// atuin's entries, oldest first.
pub fn atuin(path: &Path, sink: Sink<'_>) -> Result<(), ImportError> {
    let conn = open(path)?;
    let deleted = if has_column(&conn, "history", "deleted_at") {
        "WHERE deleted_at IS NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT rowid, timestamp, duration, exit, command, cwd, session, hostname
         FROM history {deleted} ORDER BY timestamp, rowid"
    );
    rows(&conn, path, "atuin", &sql, sink, |r| {
        let host = text(r, 7)?;
        let (host, user) = match host.iter().rposition(|&b| b == b':') {
            Some(at) => (host[..at].to_vec(), Some(host[at + 1..].to_vec())),
            None => (host, None),
        };
        let known = |v: Option<i64>| v.filter(|&v| v >= 0);
        Ok(HistoryEntry {
            line: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            started_at_us: r.get::<_, Option<i64>>(1)?.map(|ns| ns / 1000),
            duration_us: known(r.get(2)?).map(|ns| ns / 1000),
            exit_status: known(r.get(3)?),
            command: text(r, 4)?,
            cwd: Some(text(r, 5)?),
            session: Some(lossy(text(r, 6)?)),
            host: Some(lossy(host)),
            user: user.map(lossy),
            shell: None,
        })
    })
}

/// zsh-histdb's entries, oldest first.
pub fn zsh_histdb(path: &Path, sink: Sink<'_>) -> Result<(), ImportError> {
    let conn = open(path)?;
    let sql = "SELECT history.rowid, history.start_time, history.duration, history.exit_status,
                      commands.argv, places.dir, history.session, places.host
               FROM history
               LEFT JOIN commands ON commands.rowid = history.command_id
               LEFT JOIN places ON places.rowid = history.place_id
               ORDER BY history.start_time, history.rowid";
    rows(&conn, path, "zsh-histdb", sql, sink, |r| {
        let seconds = |i| {
            r.get::<_, Option<i64>>(i)
                .map(|v| v.map(|s| s.saturating_mul(1_000_000)))
        };
        Ok(HistoryEntry {
            line: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            started_at_us: seconds(1)?,
            duration_us: seconds(2)?,
            exit_status: r.get(3)?,
            // A history row whose command_id has no `commands` row: skipped
            // and counted, not dropped unseen.
            command: bytes(r, 4)?.ok_or_else(|| {
                rusqlite::Error::UserFunctionError(
                    "has no command (its command_id is not in the commands table)".into(),
                )
            })?,
            cwd: bytes(r, 5)?,
            session: r.get::<_, Option<i64>>(6)?.map(|s| s.to_string()),
            host: bytes(r, 7)?.map(lossy),
            user: None,
            shell: Some("zsh".into()),
        })
    })
}

/// mcfly's entries, oldest first.
pub fn mcfly(path: &Path, sink: Sink<'_>) -> Result<(), ImportError> {
    let conn = open(path)?;
    let sql = "SELECT rowid, when_run, exit_code, cmd, dir, session_id
               FROM commands ORDER BY when_run, rowid";
    rows(&conn, path, "mcfly", sql, sink, |r| {
        Ok(HistoryEntry {
            line: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            started_at_us: r
                .get::<_, Option<i64>>(1)?
                .map(|s| s.saturating_mul(1_000_000)),
            duration_us: None,
            exit_status: r.get(2)?,
            command: text(r, 3)?,
            cwd: bytes(r, 4)?,
            session: bytes(r, 5)?.map(lossy).filter(|s| s != "UNKNOWN"),
            host: None,
            user: None,
            shell: None,
        })
    })
}

fn open(path: &Path) -> Result<Connection, ImportError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(|err| ImportError::Database {
        file: path.to_path_buf(),
        why: err.to_string(),
    })
}

fn has_column(conn: &Connection, table: &str, column: &str) -> bool {
    conn.prepare(&format!("SELECT {column} FROM {table} LIMIT 0"))
        .is_ok()
}

/// Runs `sql` and makes an entry of each row, given to `sink` a batch at
/// a time as the rows come (never the whole database at once); an error
/// names the file and the tool whose database it should have been.
fn rows(
    conn: &Connection,
    path: &Path,
    tool: &str,
    sql: &str,
    sink: Sink<'_>,
    entry: impl Fn(&Row<'_>) -> rusqlite::Result<HistoryEntry>,
) -> Result<(), ImportError> {
    let article = if tool.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    let fail = |err: rusqlite::Error| ImportError::Database {
        file: path.to_path_buf(),
        why: format!(
            "not {article} {tool} history database as documented ({})",
            one_line(&err)
        ),
    };
    let mut stmt = conn.prepare(sql).map_err(fail)?;
    let mut rows = stmt.query([]).map_err(fail)?;
    let mut parsed = Parsed::default();
    while let Some(row) = rows.next().map_err(fail)? {
        // A row the tool should not have written (a text time) is skipped
        // and counted, as a bad line of a text file is; the rest come in.
        match entry(row) {
            Ok(entry) => parsed.entries.push(entry),
            Err(err) => parsed.skipped.push(Skipped {
                line: row
                    .get::<_, i64>(0)
                    .ok()
                    .and_then(|id| usize::try_from(id).ok())
                    .unwrap_or(0),
                why: format!("row {}", one_line(&err)),
            }),
        }
        if parsed.entries.len() + parsed.skipped.len() >= BATCH {
            sink(&mut parsed)?;
        }
    }
    sink(&mut parsed)
}

/// SQLite's message without the SQL it quotes (several lines of it).
fn one_line(err: &rusqlite::Error) -> String {
    let text = match err {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text or blob as its bytes; NULL as none.
fn bytes(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    let value = row.get_ref(i)?;
    value
        .as_bytes_or_null()
        .map(|b| b.map(<[u8]>::to_vec))
        .map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(err))
        })
}

/// Text or blob as its bytes; NULL as empty.
fn text(row: &Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(bytes(row, i)?.unwrap_or_default())
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
