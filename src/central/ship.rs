//! `tmux-audit sync`: the local chains shipped to the central store, in
//! chain order, in batches, each batch one transaction. Resumable and
//! idempotent: where to start is the server's anchor (what it holds of
//! this host's database), checked against the local chain and noted in
//! the local cursor; a row sent twice is skipped by the server's trigger.

use postgres::types::ToSql;

use super::connect::Target;
use super::identity::HostIdentity;
use super::{schema, CentralError};
use crate::db::central::{ChainedCommand, Cursor};
use crate::db::events::StoredEvent;
use crate::db::Chain;
use crate::db::Database;

/// Rows per INSERT: 28 parameters each, under PostgreSQL's 65,535.
pub const BATCH: usize = 1000;

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
    let mut statements = Statements::default();
    let database_id = db.database_id()?;
    let server = target.server_key();
    let mut shipped = Shipped::default();
    for chain in Chain::ALL {
        let mut cursor = start(db, &mut client, host, &database_id, chain)?;
        db.note_shipped(&server, chain, &cursor, crate::store::now_us())?;
        let mut conflicts = 0;
        loop {
            let sent = match chain {
                Chain::Commands => {
                    let rows = db.commands_after(cursor.last_id, BATCH)?;
                    if rows.is_empty() {
                        break;
                    }
                    if let Err(err) =
                        send_commands(&mut client, &mut statements, host, &database_id, &rows)
                    {
                        resolve(err, &mut conflicts)?;
                        cursor = start(db, &mut client, host, &database_id, chain)?;
                        continue;
                    }
                    let last = &rows[rows.len() - 1];
                    cursor = Cursor {
                        last_id: last.stored.id,
                        last_hash: last.hash.clone(),
                    };
                    rows.len()
                }
                Chain::TmuxEvents => {
                    let rows = db.tmux_events_after(cursor.last_id, BATCH)?;
                    if rows.is_empty() {
                        break;
                    }
                    if let Err(err) =
                        send_events(&mut client, &mut statements, host, &database_id, &rows)
                    {
                        resolve(err, &mut conflicts)?;
                        cursor = start(db, &mut client, host, &database_id, chain)?;
                        continue;
                    }
                    let last = &rows[rows.len() - 1];
                    cursor = Cursor {
                        last_id: last.id,
                        last_hash: Some(last.hash.clone()),
                    };
                    rows.len()
                }
            };
            db.note_shipped(&server, chain, &cursor, crate::store::now_us())?;
            match chain {
                Chain::Commands => shipped.commands += sent,
                Chain::TmuxEvents => shipped.tmux_events += sent,
            }
        }
        if chain == Chain::Commands {
            shipped.redactions = send_redactions(db, &mut client, &host.id, &database_id, &cursor)?;
        }
    }
    Ok(shipped)
}

/// The redactions of shipped commands, each stored once by the server
/// (readers see the newest's text instead of the row's: `commands_shown`).
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
    let mut tx = client
        .transaction()
        .map_err(|e| CentralError::from_postgres(&e))?;
    for r in &redactions {
        added += tx
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
    tx.commit().map_err(|e| CentralError::from_postgres(&e))?;
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
fn start(
    db: &Database,
    client: &mut postgres::Client,
    host: &HostIdentity,
    database_id: &str,
    chain: Chain,
) -> Result<Cursor, ShipError> {
    let Some(anchor) = anchor(client, host, database_id, chain)? else {
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

/// The INSERT of a batch, prepared once per size and sync: parsing and
/// planning a statement of 1,000 rows each time cost a round trip and
/// the server's time per batch.
#[derive(Default)]
struct Statements {
    prepared: Vec<(&'static str, usize, postgres::Statement)>,
}

impl Statements {
    fn get(
        &mut self,
        client: &mut postgres::Client,
        insert: &'static str,
        columns: usize,
        rows: usize,
    ) -> Result<postgres::Statement, CentralError> {
        if let Some((_, _, statement)) = self
            .prepared
            .iter()
            .find(|(sql, n, _)| *sql == insert && *n == rows)
        {
            return Ok(statement.clone());
        }
        let sql = format!(
            "{insert}{} ON CONFLICT DO NOTHING",
            values_sql(rows, columns)
        );
        let statement = client
            .prepare(&sql)
            .map_err(|e| CentralError::from_postgres(&e))?;
        self.prepared.push((insert, rows, statement.clone()));
        Ok(statement)
    }
}

fn values_sql(rows: usize, columns: usize) -> String {
    let mut sql = String::new();
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ",(" });
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", r * columns + c + 1));
        }
        sql.push(')');
    }
    sql
}

const COMMAND_INSERT: &str = "INSERT INTO tmux_audit.commands (host_id, database_id, id, \
    recorded_at_us, command, command_raw, exit_status, started_at_us, duration_us, cwd, cwd_raw, \
    \"user\", uid, login_uid, sudo_user, host, shell, shell_session, seq, tty, ssh_connection, \
    tmux_socket, tmux_server_pid, tmux_session_id, tmux_pane, redacted, import_source, \
    import_file, import_key, prev_hash, hash) VALUES ";
const COMMAND_COLUMNS: usize = 31;

fn send_commands(
    client: &mut postgres::Client,
    statements: &mut Statements,
    host: &HostIdentity,
    database_id: &str,
    rows: &[ChainedCommand],
) -> Result<(), CentralError> {
    struct Owned {
        uid: i64,
        login_uid: Option<i64>,
        import_source: Option<String>,
        import_file: Option<String>,
        import_key: Option<Vec<u8>>,
    }
    let owned: Vec<Owned> = rows
        .iter()
        .map(|r| {
            let mark = r.stored.record.imported.as_ref();
            Owned {
                uid: i64::from(r.stored.record.uid),
                login_uid: r.stored.record.login_uid.map(i64::from),
                import_source: mark.map(|m| m.source.clone()),
                import_file: mark.map(|m| m.file.clone()),
                import_key: mark.map(|m| m.key.clone()),
            }
        })
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(rows.len() * COMMAND_COLUMNS);
    let database_id = &database_id;
    for (row, owned) in rows.iter().zip(&owned) {
        let r = &row.stored.record;
        params.extend_from_slice(&[
            &host.id,
            database_id,
            &row.stored.id,
            &row.stored.recorded_at_us,
            &r.command,
            &r.command_raw,
            &r.exit_status,
            &r.started_at_us,
            &r.duration_us,
            &r.cwd,
            &r.cwd_raw,
            &r.user,
            &owned.uid,
            &owned.login_uid,
            &r.sudo_user,
            &r.host,
            &r.shell,
            &r.shell_session,
            &r.seq,
            &r.tty,
            &r.ssh_connection,
            &r.tmux_socket,
            &r.tmux_server_pid,
            &r.tmux_session_id,
            &r.tmux_pane,
            &r.redacted,
            &owned.import_source,
            &owned.import_file,
            &owned.import_key,
            &row.prev_hash,
            &row.hash,
        ]);
    }
    let statement = statements.get(client, COMMAND_INSERT, COMMAND_COLUMNS, rows.len())?;
    let mut tx = client
        .transaction()
        .map_err(|e| CentralError::from_postgres(&e))?;
    tx.execute(&statement, &params)
        .map_err(|e| CentralError::from_postgres(&e))?;
    tx.commit().map_err(|e| CentralError::from_postgres(&e))
}

const EVENT_INSERT: &str = "INSERT INTO tmux_audit.tmux_events (host_id, database_id, id, \
    recorded_at_us, event, at_us, event_key, host, \"user\", uid, tmux_socket, tmux_server_pid, \
    session_id, session_name, window_id, window_index, window_name, pane, client_name, client_tty, \
    client_pid, client_user, client_uid, client_termname, automatic_rename, prev_hash, hash) \
    VALUES ";
const EVENT_COLUMNS: usize = 27;

fn send_events(
    client: &mut postgres::Client,
    statements: &mut Statements,
    host: &HostIdentity,
    database_id: &str,
    rows: &[StoredEvent],
) -> Result<(), CentralError> {
    struct Client_ {
        uid: i64,
        name: Option<String>,
        tty: Option<String>,
        pid: Option<i64>,
        user: Option<String>,
        cuid: Option<i64>,
        termname: Option<String>,
    }
    let owned: Vec<Client_> = rows
        .iter()
        .map(|r| {
            let c = r.event.client.as_ref();
            Client_ {
                uid: i64::from(r.event.uid),
                name: c.map(|c| c.name.clone()),
                tty: c.and_then(|c| c.tty.clone()),
                pid: c.and_then(|c| c.pid),
                user: c.and_then(|c| c.user.clone()),
                cuid: c.and_then(|c| c.uid),
                termname: c.and_then(|c| c.termname.clone()),
            }
        })
        .collect();
    let database_id = &database_id;
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(rows.len() * EVENT_COLUMNS);
    for (row, o) in rows.iter().zip(&owned) {
        let e = &row.event;
        params.extend_from_slice(&[
            &host.id,
            database_id,
            &row.id,
            &row.recorded_at_us,
            &e.event,
            &e.at_us,
            &e.event_key,
            &e.host,
            &e.user,
            &o.uid,
            &e.tmux_socket,
            &e.tmux_server_pid,
            &e.session_id,
            &e.session_name,
            &e.window_id,
            &e.window_index,
            &e.window_name,
            &e.pane,
            &o.name,
            &o.tty,
            &o.pid,
            &o.user,
            &o.cuid,
            &o.termname,
            &e.automatic_rename,
            &row.prev_hash,
            &row.hash,
        ]);
    }
    let statement = statements.get(client, EVENT_INSERT, EVENT_COLUMNS, rows.len())?;
    let mut tx = client
        .transaction()
        .map_err(|e| CentralError::from_postgres(&e))?;
    tx.execute(&statement, &params)
        .map_err(|e| CentralError::from_postgres(&e))?;
    tx.commit().map_err(|e| CentralError::from_postgres(&e))
}
