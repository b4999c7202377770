//! `tmux-audit sync`: the local chains shipped to the central store, in
//! chain order, in batches, each batch one INSERT of column arrays (so one
//! transaction), sent while the next batch is read. Resumable and
//! idempotent: where to start is the server's anchor (what it holds of
//! this host's database), checked against the local chain and noted in
//! the local cursor; a row sent twice is skipped by its primary key.

use postgres::types::ToSql;

use super::connect::Target;
use super::identity::HostIdentity;
use super::{schema, CentralError};
use crate::db::central::{ChainedCommand, Cursor};
use crate::db::events::StoredEvent;
use crate::db::Chain;
use crate::db::Database;

/// Rows per INSERT (and per transaction): each batch costs a round trip,
/// a commit and a note in the local cursor.
pub const BATCH: usize = 5000;

/// How many rows of each chain went out, and what the server holds now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub commands: usize,
    pub tmux_events: usize,
    /// Redactions of shipped commands the server did not have yet.
    pub redactions: usize,
}

/// Why shipping stopped.
#[derive(Debug)]
pub enum ShipError {
    Central(CentralError),
    Local(crate::db::DbError),
    /// The local chain no longer holds what was shipped: `verify` says what.
    Diverged {
        chain: &'static str,
        id: i64,
    },
}

impl std::fmt::Display for ShipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShipError::Central(err) => err.fmt(f),
            ShipError::Local(err) => write!(f, "the local database: {err}"),
            ShipError::Diverged { chain, id } => write!(
                f,
                "the local {chain} chain no longer holds row {id} as it was shipped; nothing more is shipped until `tmux-audit verify` has been looked at"
            ),
        }
    }
}

impl std::error::Error for ShipError {}

impl From<CentralError> for ShipError {
    fn from(err: CentralError) -> Self {
        ShipError::Central(err)
    }
}

impl From<crate::db::DbError> for ShipError {
    fn from(err: crate::db::DbError) -> Self {
        ShipError::Local(err)
    }
}

/// Ships everything not yet on the server.
pub fn ship(db: &mut Database, target: &Target, host: &HostIdentity) -> Result<Shipped, ShipError> {
    let mut client = target.connect()?;
    schema::check(&mut client)?;
    bind(&mut client, host)?;
    let mut to = To {
        client,
        host,
        database_id: db.database_id()?,
        server: target.server_key(),
    };
    let (commands, cursor) = ship_chain::<ChainedCommand>(db, &mut to)?;
    let redactions = send_redactions(db, &mut to.client, &host.id, &to.database_id, &cursor)?;
    let (tmux_events, _) = ship_chain::<StoredEvent>(db, &mut to)?;
    Ok(Shipped {
        commands,
        tmux_events,
        redactions,
    })
}

/// Where a sync ships to: the connection, as which host and local
/// database, and the server's key in the local cursor.
struct To<'a> {
    client: postgres::Client,
    host: &'a HostIdentity,
    database_id: String,
    server: String,
}

/// One chain shipped, from the server's anchor on, [`BATCH`] rows per
/// INSERT: how many rows went out, and the cursor at the end.
fn ship_chain<R: ChainRow>(db: &mut Database, to: &mut To) -> Result<(usize, Cursor), ShipError> {
    let insert = to
        .client
        .prepare(&insert_sql(R::TABLE, R::COLUMNS))
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut cursor = start(db, to, R::CHAIN)?;
    db.note_shipped(&to.server, R::CHAIN, &cursor, crate::store::now_us())?;
    let (mut sent, mut conflicts) = (0, 0);
    loop {
        match pipeline::<R>(db, to, &insert, &mut cursor, &mut sent) {
            Ok(()) => return Ok((sent, cursor)),
            Err(ShipError::Central(err)) => {
                resolve(err, &mut conflicts)?;
                cursor = start(db, to, R::CHAIN)?;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Batches from `cursor` on, the next one read here while the server
/// stores the one before (a thread sends them, in order, and stops at
/// the first failure); the cursor moves, locally too, as each is stored.
fn pipeline<R: ChainRow>(
    db: &mut Database,
    to: &mut To,
    insert: &postgres::Statement,
    cursor: &mut Cursor,
    sent: &mut usize,
) -> Result<(), ShipError> {
    let (client, host_id, database_id) = (&mut to.client, &to.host.id, &to.database_id);
    let server = &to.server;
    std::thread::scope(|scope| {
        // One batch queued while one is stored: memory stays at two.
        let (batches, queued) = std::sync::mpsc::sync_channel::<Vec<R>>(1);
        let (stored, outcomes) = std::sync::mpsc::channel();
        scope.spawn(move || {
            for rows in queued {
                let outcome = send(client, insert, host_id, database_id, &rows);
                let failed = outcome.is_err();
                if stored.send(outcome).is_err() || failed {
                    return;
                }
            }
        });
        let mut after = cursor.last_id;
        let mut in_flight = std::collections::VecDeque::new();
        let mut stored_one = |outcome: Result<(), CentralError>,
                              db: &mut Database,
                              in_flight: &mut std::collections::VecDeque<(Cursor, usize)>|
         -> Result<(), ShipError> {
            outcome?;
            // One outcome per batch sent, in the order sent.
            let Some((shipped, rows)) = in_flight.pop_front() else {
                return Ok(());
            };
            db.note_shipped(server, R::CHAIN, &shipped, crate::store::now_us())?;
            *cursor = shipped;
            *sent += rows;
            Ok(())
        };
        loop {
            let rows = R::after(db, after, BATCH)?;
            let Some(last) = rows.last() else { break };
            after = last.cursor().last_id;
            in_flight.push_back((last.cursor(), rows.len()));
            // The sender stopped at a failure: its outcome says which.
            let stopped = batches.send(rows).is_err();
            while let Ok(outcome) = outcomes.try_recv() {
                stored_one(outcome, db, &mut in_flight)?;
            }
            if stopped {
                break;
            }
        }
        drop(batches);
        for outcome in outcomes {
            stored_one(outcome, db, &mut in_flight)?;
        }
        Ok(())
    })
}

/// The redactions of shipped commands, each stored once by the server
/// (a trigger of the server applies each to the shipped row, and moves
/// its count in the totals per host to the new text). Each is its own
/// transaction: the locks one takes come in the order a shipping INSERT
/// takes them, where several in one transaction would not, and could meet
/// another database of the same host shipping in a deadlock. One that
/// fails is sent again by the next sync (the server keeps each once).
fn send_redactions(
    db: &Database,
    client: &mut postgres::Client,
    host_id: &str,
    database_id: &str,
    shipped: &Cursor,
) -> Result<usize, ShipError> {
    let redactions = db.redactions_up_to(shipped.last_id)?;
    if redactions.is_empty() {
        return Ok(0);
    }
    let mut added = 0;
    for r in &redactions {
        added += client
            .execute(
                "INSERT INTO tmux_audit.redactions (host_id, database_id, id, trace_id, command,
                    command_raw, content_hash, redacted_at_us, redacted_by, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                &[
                    &host_id,
                    &database_id,
                    &r.id,
                    &r.trace_id,
                    &r.command,
                    &r.command_raw,
                    &r.content_hash,
                    &r.at_us,
                    &r.user,
                    &r.reason,
                ],
            )
            .map_err(|e| CentralError::from_postgres(&e))? as usize;
    }
    Ok(added)
}

/// Another sync of this database shipped the same rows at the same time:
/// go on from the server's anchor (a few times); any other error stops.
fn resolve(err: CentralError, conflicts: &mut u32) -> Result<(), CentralError> {
    match err {
        CentralError::Conflict(_) if *conflicts < 20 => {
            *conflicts += 1;
            Ok(())
        }
        err => Err(err),
    }
}

/// What the server holds of `chain` for this database (None: nothing).
pub fn anchor(
    client: &mut postgres::Client,
    host: &HostIdentity,
    database_id: &str,
    chain: Chain,
) -> Result<Option<Cursor>, CentralError> {
    let row = client
        .query_opt(
            "SELECT last_id, last_hash FROM tmux_audit.anchors
             WHERE host_id = $1 AND database_id = $2 AND chain = $3",
            &[&host.id, &database_id, &chain.table()],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    Ok(row.map(|r| Cursor {
        last_id: r.get(0),
        last_hash: r.get(1),
    }))
}

/// Where to go on from: the server's anchor, once the local chain is
/// seen to hold the same row with the same hash.
fn start(db: &Database, to: &mut To, chain: Chain) -> Result<Cursor, ShipError> {
    let Some(anchor) = anchor(&mut to.client, to.host, &to.database_id, chain)? else {
        return Ok(Cursor {
            last_id: 0,
            last_hash: None,
        });
    };
    match db.chain_hash_at(chain, anchor.last_id)? {
        Some(hash) if hash == anchor.last_hash => Ok(anchor),
        _ => Err(ShipError::Diverged {
            chain: chain.table(),
            id: anchor.last_id,
        }),
    }
}

/// This writer role's host, bound on its first sync: the server keeps
/// the binding (a role writes for one host only, and a host is written by
/// one role), the writer may add its own but change none.
fn bind(client: &mut postgres::Client, host: &HostIdentity) -> Result<(), CentralError> {
    client
        .execute(
            "INSERT INTO tmux_audit.writers (role, host_id, host_name)
             VALUES (current_user, $1, $2) ON CONFLICT DO NOTHING",
            &[&host.id, &host.name],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    let bound = client
        .query_one(
            "SELECT current_user::text, (SELECT host_id FROM tmux_audit.writers WHERE role = current_user)",
            &[],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    let (role, bound): (String, Option<String>) = (bound.get(0), bound.get(1));
    match bound {
        Some(bound) if bound == host.id => Ok(()),
        Some(bound) => Err(CentralError::Refused(format!(
            "role {role} writes for host {bound}, not for host {}; give this host a writer role of its own",
            host.id
        ))),
        None => Err(CentralError::Refused(format!(
            "host {} is written by another role than {role}; use that host's writer role",
            host.id
        ))),
    }
}

/// A chain's rows as they are shipped: read from the local database in
/// chain order, sent as one column array per column (one INSERT per batch
/// whatever its size, prepared once per sync: no statement of thousands
/// of parameters to parse and plan, nor PostgreSQL's 65,535 limit on
/// them).
trait ChainRow: Sized + Send {
    const CHAIN: Chain;
    /// The central table.
    const TABLE: &'static str;
    /// The columns after `host_id` and `database_id`, each with its type,
    /// in the order of [`ChainRow::columns`].
    const COLUMNS: &'static [(&'static str, &'static str)];

    /// Up to `limit` rows after row `after_id`, in chain order.
    fn after(db: &Database, after_id: i64, limit: usize) -> Result<Vec<Self>, crate::db::DbError>;

    /// The cursor once this row is shipped.
    fn cursor(&self) -> Cursor;

    /// One array per column of [`ChainRow::COLUMNS`].
    fn columns(rows: &[Self]) -> Vec<Column<'_>>;
}

type Column<'a> = Box<dyn ToSql + Sync + 'a>;

/// The array of one column: `value` of each row.
fn column<'a, R, T: ToSql + Sync + 'a>(rows: &'a [R], value: impl Fn(&'a R) -> T) -> Column<'a> {
    Box::new(rows.iter().map(value).collect::<Vec<T>>())
}

/// `INSERT … SELECT $1, $2, * FROM unnest($3::type[], …)`: a batch's rows
/// in one statement, each row sent before skipped by its primary key.
fn insert_sql(table: &str, columns: &[(&str, &str)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", i + 3))
        .collect();
    format!(
        "INSERT INTO tmux_audit.{table} (host_id, database_id, {}) \
         SELECT $1::text, $2::text, * FROM unnest({}) ON CONFLICT DO NOTHING",
        names.join(", "),
        arrays.join(", ")
    )
}

/// A batch, one statement (so one transaction: the server's `link`
/// trigger checks its rows extend the chain it holds, and moves the
/// anchor).
fn send<R: ChainRow>(
    client: &mut postgres::Client,
    insert: &postgres::Statement,
    host_id: &str,
    database_id: &str,
    rows: &[R],
) -> Result<(), CentralError> {
    let columns = R::columns(rows);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&host_id, &database_id];
    params.extend(columns.iter().map(|c| c.as_ref() as &(dyn ToSql + Sync)));
    client
        .execute(insert, &params)
        .map(|_| ())
        .map_err(|e| CentralError::from_postgres(&e))
}

impl ChainRow for ChainedCommand {
    const CHAIN: Chain = Chain::Commands;
    const TABLE: &'static str = "commands";
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("id", "bigint"),
        ("recorded_at_us", "bigint"),
        ("command", "text"),
        ("command_raw", "bytea"),
        ("exit_status", "bigint"),
        ("started_at_us", "bigint"),
        ("duration_us", "bigint"),
        ("cwd", "text"),
        ("cwd_raw", "bytea"),
        ("\"user\"", "text"),
        ("uid", "bigint"),
        ("login_uid", "bigint"),
        ("sudo_user", "text"),
        ("host", "text"),
        ("shell", "text"),
        ("shell_session", "text"),
        ("seq", "bigint"),
        ("tty", "text"),
        ("ssh_connection", "text"),
        ("tmux_socket", "text"),
        ("tmux_server_pid", "bigint"),
        ("tmux_session_id", "bigint"),
        ("tmux_pane", "text"),
        ("redacted", "boolean"),
        ("import_source", "text"),
        ("import_file", "text"),
        ("import_key", "bytea"),
        ("prev_hash", "bytea"),
        ("hash", "bytea"),
    ];

    fn after(db: &Database, after_id: i64, limit: usize) -> Result<Vec<Self>, crate::db::DbError> {
        db.commands_after(after_id, limit)
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            last_id: self.stored.id,
            last_hash: self.hash.clone(),
        }
    }

    fn columns(rows: &[Self]) -> Vec<Column<'_>> {
        fn imported(r: &ChainedCommand) -> Option<&crate::record::Imported> {
            r.stored.record.imported.as_ref()
        }
        vec![
            column(rows, |r| r.stored.id),
            column(rows, |r| r.stored.recorded_at_us),
            column(rows, |r| r.stored.record.command.as_str()),
            column(rows, |r| r.stored.record.command_raw.as_deref()),
            column(rows, |r| r.stored.record.exit_status),
            column(rows, |r| r.stored.record.started_at_us),
            column(rows, |r| r.stored.record.duration_us),
            column(rows, |r| r.stored.record.cwd.as_str()),
            column(rows, |r| r.stored.record.cwd_raw.as_deref()),
            column(rows, |r| r.stored.record.user.as_str()),
            column(rows, |r| i64::from(r.stored.record.uid)),
            column(rows, |r| r.stored.record.login_uid.map(i64::from)),
            column(rows, |r| r.stored.record.sudo_user.as_deref()),
            column(rows, |r| r.stored.record.host.as_str()),
            column(rows, |r| r.stored.record.shell.as_str()),
            column(rows, |r| r.stored.record.shell_session.as_str()),
            column(rows, |r| r.stored.record.seq),
            column(rows, |r| r.stored.record.tty.as_deref()),
            column(rows, |r| r.stored.record.ssh_connection.as_deref()),
            column(rows, |r| r.stored.record.tmux_socket.as_deref()),
            column(rows, |r| r.stored.record.tmux_server_pid),
            column(rows, |r| r.stored.record.tmux_session_id),
            column(rows, |r| r.stored.record.tmux_pane.as_deref()),
            column(rows, |r| r.stored.record.redacted),
            column(rows, |r| imported(r).map(|m| m.source.as_str())),
            column(rows, |r| imported(r).map(|m| m.file.as_str())),
            column(rows, |r| imported(r).map(|m| m.key.as_slice())),
            column(rows, |r| r.prev_hash.as_deref()),
            column(rows, |r| r.hash.as_deref()),
        ]
    }
}

impl ChainRow for StoredEvent {
    const CHAIN: Chain = Chain::TmuxEvents;
    const TABLE: &'static str = "tmux_events";
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("id", "bigint"),
        ("recorded_at_us", "bigint"),
        ("event", "text"),
        ("at_us", "bigint"),
        ("event_key", "text"),
        ("host", "text"),
        ("\"user\"", "text"),
        ("uid", "bigint"),
        ("tmux_socket", "text"),
        ("tmux_server_pid", "bigint"),
        ("session_id", "bigint"),
        ("session_name", "text"),
        ("window_id", "bigint"),
        ("window_index", "bigint"),
        ("window_name", "text"),
        ("pane", "text"),
        ("client_name", "text"),
        ("client_tty", "text"),
        ("client_pid", "bigint"),
        ("client_user", "text"),
        ("client_uid", "bigint"),
        ("client_termname", "text"),
        ("automatic_rename", "boolean"),
        ("prev_hash", "bytea"),
        ("hash", "bytea"),
    ];

    fn after(db: &Database, after_id: i64, limit: usize) -> Result<Vec<Self>, crate::db::DbError> {
        db.tmux_events_after(after_id, limit)
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            last_id: self.id,
            last_hash: Some(self.hash.clone()),
        }
    }

    fn columns(rows: &[Self]) -> Vec<Column<'_>> {
        fn client(r: &StoredEvent) -> Option<&crate::lifecycle::Client> {
            r.event.client.as_ref()
        }
        vec![
            column(rows, |r| r.id),
            column(rows, |r| r.recorded_at_us),
            column(rows, |r| r.event.event.as_str()),
            column(rows, |r| r.event.at_us),
            column(rows, |r| r.event.event_key.as_str()),
            column(rows, |r| r.event.host.as_str()),
            column(rows, |r| r.event.user.as_str()),
            column(rows, |r| i64::from(r.event.uid)),
            column(rows, |r| r.event.tmux_socket.as_str()),
            column(rows, |r| r.event.tmux_server_pid),
            column(rows, |r| r.event.session_id),
            column(rows, |r| r.event.session_name.as_deref()),
            column(rows, |r| r.event.window_id),
            column(rows, |r| r.event.window_index),
            column(rows, |r| r.event.window_name.as_deref()),
            column(rows, |r| r.event.pane.as_deref()),
            column(rows, |r| client(r).map(|c| c.name.as_str())),
            column(rows, |r| client(r).and_then(|c| c.tty.as_deref())),
            column(rows, |r| client(r).and_then(|c| c.pid)),
            column(rows, |r| client(r).and_then(|c| c.user.as_deref())),
            column(rows, |r| client(r).and_then(|c| c.uid)),
            column(rows, |r| client(r).and_then(|c| c.termname.as_deref())),
            column(rows, |r| r.event.automatic_rename),
            column(rows, |r| r.prev_hash.as_slice()),
            column(rows, |r| r.hash.as_slice()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_its_array() {
        let command = ChainedCommand {
            stored: crate::db::StoredCommand {
                id: 1,
                recorded_at_us: 2,
                record: crate::record::CommandRecord::default(),
                placement: None,
            },
            prev_hash: None,
            hash: Some(vec![1]),
        };
        assert_eq!(
            ChainedCommand::columns(std::slice::from_ref(&command)).len(),
            ChainedCommand::COLUMNS.len()
        );
        let sql = insert_sql("commands", ChainedCommand::COLUMNS);
        assert!(sql.contains("$31::bytea[]"), "{sql}");
        assert!(!sql.contains("$32"), "{sql}");
        let event = StoredEvent {
            id: 1,
            recorded_at_us: 2,
            event: crate::lifecycle::TmuxEvent::default(),
            prev_hash: vec![0],
            hash: vec![1],
        };
        assert_eq!(
            StoredEvent::columns(std::slice::from_ref(&event)).len(),
            StoredEvent::COLUMNS.len()
        );
    }
}
