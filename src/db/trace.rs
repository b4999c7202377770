//! The trace's table (`chain_trace`, see `trace.rs`): appending an entry to
//! its chain, reading it back, and the digest of the rows that predate the
//! records' chain.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::queries::{stored_command, COLUMNS};
use super::{Database, DbError, StoredCommand};
use crate::chain::{self, Hash, GENESIS};
use crate::trace::{self, ChainStartDetail, TraceEntry};

/// A trace entry as stored.
#[derive(Debug, Clone)]
pub struct StoredTrace {
    pub id: i64,
    pub entry: TraceEntry,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

const TRACE_COLUMNS: &str =
    "id, kind, chain, first_id, last_id, at_us, user, uid, reason, detail, prev_hash, hash";

/// The rows without hashes, chained over as if from GENESIS: what the
/// `chain-start` entry fixes and `verify` checks.
#[derive(Debug, Clone, Default)]
pub struct UnchainedDigest {
    pub count: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    digest: Option<Hash>,
}

impl UnchainedDigest {
    pub fn add(&mut self, row: &StoredCommand) {
        let prev = self.digest.unwrap_or(GENESIS);
        self.digest = Some(chain::hash_command(
            &prev,
            row.id,
            &row.record,
            row.recorded_at_us,
        ));
        self.count += 1;
        self.first.get_or_insert(row.id);
        self.last = Some(row.id);
    }

    pub fn digest_hex(&self) -> Option<String> {
        self.digest.map(|d| crate::text::hex(&d))
    }
}

/// Appends `entry` to the trace's chain, in the write transaction `conn`
/// is in; its id.
pub fn append(conn: &Connection, entry: &TraceEntry) -> rusqlite::Result<i64> {
    let end: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT id, hash FROM chain_trace ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (id, prev) = match end {
        Some((id, hash)) => (id + 1, Hash::try_from(hash).unwrap_or(GENESIS)),
        None => (1, GENESIS),
    };
    let hash = chain::hash_trace(&prev, id, entry);
    conn.execute(
        "INSERT INTO chain_trace
            (id, kind, chain, first_id, last_id, at_us, user, uid, reason, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            id,
            entry.kind,
            entry.chain,
            entry.first_id,
            entry.last_id,
            entry.at_us,
            entry.user,
            entry.uid,
            entry.reason,
            entry.detail,
            &prev[..],
            &hash[..],
        ],
    )?;
    Ok(id)
}

/// The trace's first entry, written with schema 9: which rows without
/// hashes predate the chain (those before its first row), fixed from now
/// on. Reads only those rows (none, in a database made since schema 4);
/// hashing them is a one-time cost of the upgrade (about 8 µs a row).
pub fn start(conn: &Connection) -> rusqlite::Result<()> {
    let chain_begins: Option<i64> = conn
        .query_row(
            "SELECT id FROM commands WHERE hash IS NOT NULL ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let mut unchained = UnchainedDigest::default();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM commands WHERE id < ?1 AND hash IS NULL ORDER BY id"
        ))?;
        let mut rows = stmt.query([chain_begins.unwrap_or(i64::MAX)])?;
        while let Some(row) = rows.next()? {
            unchained.add(&stored_command(row)?);
        }
    }
    let (user, uid) = trace::who();
    let detail = ChainStartDetail {
        unchained: unchained.count,
        unchained_digest: unchained.digest_hex(),
    };
    append(
        conn,
        &TraceEntry {
            kind: trace::CHAIN_START.into(),
            chain: super::Chain::Commands.table().into(),
            first_id: unchained.first,
            last_id: unchained.last,
            at_us: crate::store::now_us(),
            user,
            uid,
            reason: match unchained.count {
                0 => "the trace begins; every record is chained".into(),
                n => format!("the trace begins; {n} records from before the chain have no hash"),
            },
            detail: serde_json::to_string(&detail).unwrap_or_default(),
        },
    )?;
    Ok(())
}

impl Database {
    /// Every trace entry, in chain order.
    pub fn trace(&self) -> Result<Vec<StoredTrace>, DbError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TRACE_COLUMNS} FROM chain_trace ORDER BY id"
        ))?;
        let rows = stmt.query_map([], stored_trace)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn stored_trace(r: &Row<'_>) -> rusqlite::Result<StoredTrace> {
    Ok(StoredTrace {
        id: r.get("id")?,
        entry: TraceEntry {
            kind: r.get("kind")?,
            chain: r.get("chain")?,
            first_id: r.get("first_id")?,
            last_id: r.get("last_id")?,
            at_us: r.get("at_us")?,
            user: r.get("user")?,
            uid: r.get("uid")?,
            reason: r.get("reason")?,
            detail: r.get("detail")?,
        },
        prev_hash: r.get("prev_hash")?,
        hash: r.get("hash")?,
    })
}
