//! The queries: storing a command, finding commands, counting them.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use regex::Regex;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Row, TransactionBehavior};

use super::{Database, DbError, StoredCommand};
use crate::chain::{self, Hash, GENESIS};
use crate::filter::Conditions;
use crate::lifecycle::replay::Replay;
use crate::lifecycle::TmuxEvent;
use crate::record::{CommandRecord, Entry, FieldValue, Imported, FIELD_COUNT};

/// The columns of a [`StoredCommand`], in the order `stored_command` reads
/// them: the fields of [`CommandRecord::fields`] with what the store adds
/// (a test checks that they agree).
pub(super) const COLUMNS: &str =
    "id, recorded_at_us, command, command_raw, exit_status, started_at_us, \
    duration_us, cwd, cwd_raw, user, uid, login_uid, sudo_user, host, shell, shell_session, seq, \
    tty, ssh_connection, tmux_socket, tmux_server_pid, tmux_session_id, tmux_pane, redacted, \
    import_source, import_file, import_key";

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

/// The order of a streamed search ([`Database::each_command`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// How many of the newest rows a search reads directly before it asks the
/// text index: enough for a common word's newest matches, few enough to
/// cost a rare word's search only milliseconds. A central search reads
/// the same window first.
pub const SCAN_WINDOW: i64 = 20_000;

impl Database {
    /// The newest command of a shell session (`TMUX_AUDIT_SESSION`), if
    /// any was recorded: whether that shell's hook records.
    pub fn newest_of_shell_session(&self, session: &str) -> Result<Option<StoredCommand>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM commands WHERE shell_session = ?1 ORDER BY seq DESC LIMIT 1"
                ),
                [session],
                stored_command,
            )
            .optional()?)
    }

    /// Stores entries in one transaction; returns how many were new (one
    /// stored before is skipped). Each kind extends its own hash chain.
    pub fn insert_all<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a Entry, i64)>,
    ) -> Result<usize, DbError> {
        self.write(|tx| Ok(insert_entries(tx, entries)?))
    }

    /// Runs `work` in a write transaction (taken at once: BEGIN IMMEDIATE,
    /// waiting up to the busy timeout for other writers) and commits it.
    pub fn write<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let result = work(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// Notes that the chain of this database begins here, and why.
    pub fn add_chain_origin(
        &self,
        at_us: i64,
        reason: &str,
        previous: Option<&str>,
    ) -> Result<(), DbError> {
        self.conn.execute(
            "INSERT INTO chain_origins (at_us, reason, previous_database) VALUES (?1, ?2, ?3)",
            params![at_us, reason, previous],
        )?;
        Ok(())
    }

    /// (when, why, the database before) for each time the chain began anew.
    pub fn chain_origins(&self) -> Result<Vec<(i64, String, Option<String>)>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at_us, reason, previous_database FROM chain_origins ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// SQLite's quick integrity check: "ok", or what is wrong.
    pub fn quick_check(&self) -> Result<String, DbError> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(lines.join("; "))
    }

    pub fn schema_version(&self) -> Result<i64, DbError> {
        Ok(super::schema::version(&self.conn)?)
    }

    /// Every record in the order it was stored, with its chain links, for
    /// `verify`; stops early when `visit` returns false.
    pub fn walk_chain(
        &self,
        mut visit: impl FnMut(StoredCommand, Option<Vec<u8>>, Option<Vec<u8>>) -> bool,
    ) -> Result<(), DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS}, prev_hash, hash FROM commands ORDER BY id"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if !visit(
                stored_command(row)?,
                row.get("prev_hash")?,
                row.get("hash")?,
            ) {
                break;
            }
        }
        Ok(())
    }

    /// Every command in the order it was stored.
    pub fn commands_in_order(&self) -> Result<Vec<StoredCommand>, DbError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM commands ORDER BY id"))?;
        let rows = stmt.query_map([], stored_command)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The command stored with `id`.
    pub fn command(&self, id: i64) -> Result<Option<StoredCommand>, DbError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM commands WHERE id = ?"),
                [id],
                stored_command,
            )
            .optional()?)
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
        // With --unique too: reading the window newest first and keeping the
        // first run of each text finds the same commands as reading every
        // match, once the window holds `limit` distinct ones (1.5 s for
        // `search --unique git` at a million rows, when every match of the
        // text index was sorted by time first).
        if let (Some(scan), Some(limit)) = (&query.scan_first, query.limit) {
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
                window.push("started_at_us > ?", [Value::Integer(floor)]);
            }
            let found = self.select(&window, query.unique, Some(limit))?;
            if found.len() == limit || floor.is_none() {
                return Ok(found);
            }
        }
        self.select(&query.conditions, query.unique, query.limit)
    }

    /// Every command that meets `conditions`, in `order`, handed to `each`
    /// one at a time as SQLite reads it, with where it ran and who typed it
    /// (from the tmux events): the memory of one row, however many match.
    /// With `unique`, only the newest run (by start time) of each distinct
    /// command: a first pass notes which rows those are (16 bytes per
    /// distinct command), the second writes them. `each` stops the walk by
    /// returning an error, or [`ControlFlow::Break`] when it has had enough
    /// (a limit reached). The tmux events are held whole (they are few
    /// beside the commands); newest first, the replay starts again from its
    /// nearest checkpoint each time the walk passes an event backwards.
    pub fn each_command<E: From<DbError>>(
        &self,
        conditions: &Conditions,
        unique: bool,
        order: Order,
        mut each: impl FnMut(StoredCommand) -> Result<ControlFlow<()>, E>,
    ) -> Result<(), E> {
        let where_sql = conditions.where_sql();
        let keep = if unique {
            Some(self.newest_of_each_command(conditions)?)
        } else {
            None
        };
        let events = self
            .tmux_events(None)
            .map_err(E::from)?
            .into_iter()
            .map(|e| e.event)
            .collect();
        let mut replay = Replay::new(events);
        let direction = match order {
            Order::OldestFirst => "ASC",
            Order::NewestFirst => "DESC",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM commands {where_sql} \
             ORDER BY started_at_us {direction}, id {direction}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(DbError::from)?;
        let mut rows = stmt
            .query(params_from_iter(conditions.params.iter()))
            .map_err(DbError::from)?;
        while let Some(row) = rows.next().map_err(DbError::from)? {
            if let Some(keep) = &keep {
                let id: i64 = row.get("id").map_err(DbError::from)?;
                if !keep.contains(&id) {
                    continue;
                }
            }
            let mut command = stored_command(row).map_err(DbError::from)?;
            command.placement = replay.place(&command.record);
            if each(command)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The ids of the newest run (by start time, then id) of each distinct
    /// command that meets `conditions`. Commands are told apart by a
    /// 128-bit hash of their text, so memory grows with the number of
    /// distinct commands (16 bytes and the ids), not their length; SQLite's
    /// own grouping sorts every matching row by its text first (2.5 s and
    /// 196 MB at a million rows).
    fn newest_of_each_command(
        &self,
        conditions: &Conditions,
    ) -> Result<std::collections::HashSet<i64>, DbError> {
        use sha2::{Digest, Sha256};
        let where_sql = conditions.where_sql();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, started_at_us, command FROM commands {where_sql}"
        ))?;
        let mut rows = stmt.query(params_from_iter(conditions.params.iter()))?;
        let mut newest: std::collections::HashMap<[u8; 16], (i64, i64)> =
            std::collections::HashMap::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let started: i64 = row.get(1)?;
            let digest = match row.get_ref(2)? {
                ValueRef::Text(text) | ValueRef::Blob(text) => Sha256::digest(text),
                _ => Sha256::digest([]),
            };
            let mut key = [0u8; 16];
            key.copy_from_slice(&digest[..16]);
            let run = newest.entry(key).or_insert((started, id));
            if (started, id) > *run {
                *run = (started, id);
            }
        }
        Ok(newest.into_values().map(|(_, id)| id).collect())
    }

    fn select(
        &self,
        conditions: &Conditions,
        unique: bool,
        limit: Option<usize>,
    ) -> Result<Vec<StoredCommand>, DbError> {
        let where_sql = conditions.where_sql();
        let mut params = conditions.params.clone();
        let from = if unique && limit.is_none() {
            // The newest run (by start time) of each distinct command, of all.
            format!(
                "commands WHERE id IN (SELECT id FROM (
                    SELECT id, row_number() OVER (
                        PARTITION BY command ORDER BY started_at_us DESC, id DESC
                    ) AS rank
                    FROM commands {where_sql}
                ) WHERE rank = 1)"
            )
        } else {
            format!("commands {where_sql}")
        };
        // With a limit, the newest run of each distinct command is found by
        // reading newest first and keeping the first of each text until the
        // limit: the window function above sorts every match by its text
        // first (1.6-2.1 s at a million rows, for the 20 rows shown).
        let streaming = unique && limit.is_some();
        let sql_limit = match limit {
            Some(n) if !streaming => i64::try_from(n).unwrap_or(i64::MAX),
            _ => -1,
        };
        params.push(Value::Integer(sql_limit));
        let sql =
            format!("SELECT {COLUMNS} FROM {from} ORDER BY started_at_us DESC, id DESC LIMIT ?");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(params), stored_command)?;
        if !streaming {
            return Ok(rows.collect::<Result<_, _>>()?);
        }
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::new();
        for row in rows {
            let row = row?;
            if seen.insert(row.record.command.clone()) {
                found.push(row);
                if limit.is_some_and(|n| found.len() >= n) {
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// Stores entries in the write transaction `tx`; how many were new. Each
/// kind extends its own hash chain.
pub fn insert_entries<'a>(
    tx: &rusqlite::Transaction<'_>,
    entries: impl IntoIterator<Item = (&'a Entry, i64)>,
) -> rusqlite::Result<usize> {
    // The chains' ends, read under the write lock: no other writer can
    // extend them before this transaction commits.
    let mut commands_end = None;
    let mut events_end = None;
    // Prepared once per transaction, not once per command: a merge or an
    // import stores many.
    let mut insert = None;
    let mut inserted = 0;
    for (entry, recorded_at_us) in entries {
        let added = match entry {
            Entry::Command(record) => {
                let end = chain_end(tx, "commands", &mut commands_end)?;
                let insert = match &mut insert {
                    Some(insert) => insert,
                    None => insert.insert(tx.prepare(&INSERT_COMMAND)?),
                };
                insert_command(insert, end, record, recorded_at_us)?
            }
            Entry::TmuxEvent(event) => {
                let end = chain_end(tx, "tmux_events", &mut events_end)?;
                insert_tmux_event(tx, end, event, recorded_at_us)?
            }
        };
        inserted += usize::from(added);
    }
    Ok(inserted)
}

/// The id and hash of the newest row of `table`'s chain, read once per
/// transaction and then kept up to date by the inserts.
fn chain_end<'e>(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    end: &'e mut Option<(i64, Hash)>,
) -> rusqlite::Result<&'e mut (i64, Hash)> {
    if end.is_none() {
        let newest = tx
            .query_row(
                &format!("SELECT id, hash FROM {table} ORDER BY id DESC LIMIT 1"),
                [],
                |r| Ok((r.get(0)?, r.get::<_, Option<Vec<u8>>>(1)?)),
            )
            .optional()?;
        *end = Some(newest.map_or((0, GENESIS), |(id, hash)| {
            (
                id,
                hash.and_then(|h| Hash::try_from(h).ok()).unwrap_or(GENESIS),
            )
        }));
    }
    Ok(end.as_mut().expect("set above"))
}

/// Inserts after the chain's end, and moves the end: false when the
/// command was stored before (it then adds nothing, to the table or the chain).
fn insert_command(
    insert: &mut rusqlite::Statement<'_>,
    end: &mut (i64, Hash),
    record: &CommandRecord,
    recorded_at_us: i64,
) -> rusqlite::Result<bool> {
    let id = end.0 + 1;
    let hash = chain::hash_command(&end.1, id, record, recorded_at_us);
    // Borrowed, not copied: an import stores a million of these.
    fn sql_value<'a>((_, value): (&str, FieldValue<'a>)) -> ToSqlOutput<'a> {
        ToSqlOutput::Borrowed(match value {
            FieldValue::Int(v) => v.map_or(ValueRef::Null, ValueRef::Integer),
            FieldValue::Text(v) => v.map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())),
            FieldValue::Blob(v) => v.map_or(ValueRef::Null, ValueRef::Blob),
        })
    }
    let (prev, this) = (end.1, hash);
    let mut values: Vec<ToSqlOutput<'_>> = Vec::with_capacity(FIELD_COUNT + 8);
    values.push(ToSqlOutput::Owned(Value::Integer(id)));
    values.extend(record.fields().into_iter().map(sql_value));
    values.extend([
        ToSqlOutput::Owned(Value::Integer(recorded_at_us)),
        ToSqlOutput::Borrowed(ValueRef::Blob(&prev)),
        ToSqlOutput::Borrowed(ValueRef::Blob(&this)),
        ToSqlOutput::Owned(Value::Integer(i64::from(record.redacted))),
    ]);
    values.extend(record.import_fields().into_iter().map(sql_value));
    let added = insert.execute(params_from_iter(values))? == 1;
    if added {
        *end = (id, hash);
    }
    Ok(added)
}

/// The INSERT of a command: its id, the fields of
/// [`CommandRecord::fields`], and what the store adds.
static INSERT_COMMAND: LazyLock<String> = LazyLock::new(|| {
    let mut columns = vec!["id"];
    columns.extend(CommandRecord::fields(&CommandRecord::default()).map(|(name, _)| name));
    columns.extend(["recorded_at_us", "prev_hash", "hash", "redacted"]);
    columns.extend(CommandRecord::import_fields(&CommandRecord::default()).map(|(name, _)| name));
    let places: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO commands ({}) VALUES ({}) ON CONFLICT (shell_session, seq) DO NOTHING",
        columns.join(", "),
        places.join(", ")
    )
});

/// [`insert_command`] for a tmux event; false when its key was stored before.
fn insert_tmux_event(
    tx: &rusqlite::Transaction<'_>,
    end: &mut (i64, Hash),
    event: &TmuxEvent,
    recorded_at_us: i64,
) -> rusqlite::Result<bool> {
    let id = end.0 + 1;
    let hash = chain::hash_tmux_event(&end.1, id, event, recorded_at_us);
    let client = event.client.as_ref();
    let added = tx.execute(
        "INSERT INTO tmux_events (
            id, event, at_us, recorded_at_us, event_key, host, user, uid, tmux_socket,
            tmux_server_pid, session_id, session_name, window_id, window_index, window_name,
            pane, client_name, client_tty, client_pid, client_user, client_uid,
            client_termname, prev_hash, hash, automatic_rename
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                  ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)
        ON CONFLICT (event_key) DO NOTHING",
        params![
            id,
            event.event,
            event.at_us,
            recorded_at_us,
            event.event_key,
            event.host,
            event.user,
            event.uid,
            event.tmux_socket,
            event.tmux_server_pid,
            event.session_id,
            event.session_name,
            event.window_id,
            event.window_index,
            event.window_name,
            event.pane,
            client.map(|c| &c.name),
            client.and_then(|c| c.tty.as_ref()),
            client.and_then(|c| c.pid),
            client.and_then(|c| c.user.as_ref()),
            client.and_then(|c| c.uid),
            client.and_then(|c| c.termname.as_ref()),
            &end.1[..],
            &hash[..],
            event.automatic_rename,
        ],
    )? == 1;
    if added {
        *end = (id, hash);
    }
    Ok(added)
}

pub(super) fn stored_command(row: &Row<'_>) -> rusqlite::Result<StoredCommand> {
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
            redacted: row.get("redacted")?,
            imported: match row.get::<_, Option<String>>("import_source")? {
                Some(source) => Some(Imported {
                    source,
                    file: row.get("import_file")?,
                    key: row
                        .get::<_, Option<Vec<u8>>>("import_key")?
                        .unwrap_or_default(),
                }),
                None => None,
            },
        },
        placement: None,
    })
}

#[cfg(test)]
mod field_map_tests {
    use super::*;

    #[test]
    fn the_columns_read_and_written_are_the_field_map() {
        let names: Vec<&str> = CommandRecord::default().fields().map(|(n, _)| n).to_vec();
        let marks: Vec<&str> = CommandRecord::default()
            .import_fields()
            .map(|(n, _)| n)
            .to_vec();
        assert_eq!(
            COLUMNS,
            format!(
                "id, recorded_at_us, {}, redacted, {}",
                names.join(", "),
                marks.join(", ")
            )
        );
        assert!(INSERT_COMMAND.contains(&format!("(id, {}, recorded_at_us,", names.join(", "))));
    }
}
