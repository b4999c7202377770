//! Deleting old rows on purpose (`tmux-audit prune`, and the daily prune
//! that `[retention]` in config.toml asks of the background merge), and
//! giving the freed space back to the file system.
//!
//! A prune leaves the same kind of checked trace as a redaction: a `prune`
//! entry in the trace's chain (see `trace.rs`, [`PruneDetail`]) names who,
//! when, why, the rows' span and every run of consecutive rows that went,
//! with the link before it and the hash at its end, so that `verify` steps
//! over exactly those gaps and still names any other deletion. Rows are
//! checked before they go: a row that no longer matches its hash is not
//! pruned (that would hide the tampering); `verify` names it.
//!
//! An imported entry whose tool kept no time is as old as its import (see
//! [`AGE`]).
//!
//! What is never pruned:
//! - the newest row of each chain: the next row links to it, and an
//!   anchor names it;
//! - rows from before the chain (no hash): the trace's `chain-start`
//!   entry fixes them as they are;
//! - rows a configured forwarding target (`[forward]`, see `forward.rs`)
//!   has not taken yet, and, once a central store exists, rows not yet
//!   shipped to it (see [`prunable_up_to`]).
//!
//! Each batch of at most [`BATCH`] rows is one write transaction with its
//! own trace entry, so the write lock is held for tens of milliseconds at
//! a time; records made meanwhile wait in the spool as always.

use std::time::Duration;

use regex::bytes::Regex;
use rusqlite::{params, Connection, OptionalExtension};

use super::events::{stored_event, EVENT_COLUMNS};
use super::queries::{stored_command, COLUMNS};
use super::trace::append;
use super::{Chain, Database, DbError};
use crate::chain::{self, Hash, PrunedDigest};
use crate::text::hex;
use crate::trace::{self, PruneDetail, PrunedRun, RedactionDetail, TraceEntry};

/// Rows looked at per transaction (and so at most per trace entry):
/// hashing and deleting them holds the write lock for about 50 ms.
const BATCH: i64 = 5_000;

/// Pages given back to the file system per step of the incremental
/// vacuum (4 MiB at SQLite's 4 KiB pages): each step is a write
/// transaction of its own.
const VACUUM_STEP_PAGES: i64 = 1_024;

/// The daily prune of `[retention]` runs at most this often.
pub const DAILY_US: i64 = 24 * 3600 * 1_000_000;

/// What a prune removes and what it keeps.
#[derive(Debug, Clone)]
pub struct PruneRules {
    /// Rows older than this (µs since the epoch: a command's start, a tmux
    /// event's time) are pruned.
    pub before_us: i64,
    /// Keep commands that failed (a non-zero exit status).
    pub keep_failed: bool,
    /// Keep commands whose text matches one of these.
    pub keep_matching: Vec<Regex>,
    /// Why, for the trace.
    pub reason: String,
    /// The forwarding targets configured (`forward::Target::key`): rows
    /// one of them has not taken yet stay.
    pub forward_targets: Vec<String>,
    /// The central store configured (`central::Target::server_key`): rows
    /// not shipped there yet stay.
    pub central_server: Option<String>,
}

impl PruneRules {
    /// The rules for "older than `older_than`" (`180d`, `26 weeks`) as of
    /// `now_us`; a one-line error for a duration or pattern that cannot be
    /// read.
    pub fn new(
        older_than: &str,
        now_us: i64,
        keep_failed: bool,
        keep_matching: &[String],
        reason: String,
    ) -> Result<PruneRules, String> {
        let age = crate::timespec::parse_age(older_than)?;
        let age_us = age.num_microseconds().unwrap_or(i64::MAX);
        let keep_matching = keep_matching
            .iter()
            .map(|p| {
                Regex::new(p).map_err(|err| {
                    let text = err.to_string();
                    let why = text
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim_start_matches("error: ");
                    format!("{p:?} is not a valid regular expression ({why})")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(PruneRules {
            before_us: now_us.saturating_sub(age_us),
            keep_failed,
            keep_matching,
            reason,
            forward_targets: Vec::new(),
            central_server: None,
        })
    }

    /// What keeps old rows, as the trace says it.
    fn keep(&self) -> Vec<String> {
        let mut keep = Vec::new();
        if self.keep_failed {
            keep.push("failed".to_string());
        }
        keep.extend(
            self.keep_matching
                .iter()
                .map(|re| format!("matching {}", re.as_str())),
        );
        keep
    }
}

/// What a prune did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub commands: u64,
    pub tmux_events: u64,
    /// Old commands kept by the rules.
    pub kept: u64,
    /// The trace entries written, in order.
    pub trace_ids: Vec<i64>,
    /// Old rows left because a forwarding target or the central store has
    /// not taken them yet, and which (`forward::Target::key`, the central
    /// store's key), so that a prune that cannot happen says why.
    pub held_back: u64,
    pub held_back_by: Vec<String>,
}

/// Why a prune stopped.
#[derive(Debug)]
pub enum PruneError {
    /// A row to be pruned no longer matches its hash, or its link: pruning
    /// it would hide that.
    Tampered {
        chain: &'static str,
        id: i64,
    },
    Db(DbError),
}

impl From<rusqlite::Error> for PruneError {
    fn from(err: rusqlite::Error) -> Self {
        PruneError::Db(err.into())
    }
}

impl From<DbError> for PruneError {
    fn from(err: DbError) -> Self {
        PruneError::Db(err)
    }
}

impl std::fmt::Display for PruneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PruneError::Tampered { chain, id } => {
                let what = if *chain == "tmux_events" {
                    "tmux event"
                } else {
                    "record"
                };
                write!(
                    f,
                    "{what} {id} no longer matches its hash (it was changed outside tmux-audit): nothing more pruned, since a prune would hide that; run `tmux-audit verify`"
                )
            }
            PruneError::Db(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for PruneError {}

/// A row old enough to be pruned.
struct Candidate {
    id: i64,
    prev: Vec<u8>,
    hash: Vec<u8>,
    /// Commands: their shell session and text (for the search index).
    command: Option<(String, String)>,
    keep: bool,
    intact: bool,
}

/// One transaction's worth: the rows to delete, as runs.
#[derive(Default)]
struct Batch {
    pruned: Vec<Candidate>,
    kept: u64,
    runs: Vec<PrunedRun>,
    rows_digest: Option<Hash>,
    /// The highest id looked at, and whether there may be more after it.
    last_seen: Option<i64>,
    more: bool,
}

/// The highest id of `chain` a prune may delete. Never the newest row:
/// the next row links to it (`insert_entries` reads the chain's end from
/// the newest row), and an anchor names it.
///
/// Nor a row a configured forwarding target has not taken, nor one not
/// yet shipped to a configured central store, nor the last one shipped
/// there (its cursor in `central_shipped`; none yet: nothing was shipped).
fn prunable_up_to(conn: &Connection, chain: Chain, rules: &PruneRules) -> rusqlite::Result<i64> {
    Ok(prune_bound(conn, chain, rules)?.bound)
}

/// What a prune of a chain may delete, and why not more.
struct PruneBound {
    /// [`prunable_up_to`].
    bound: i64,
    /// The highest id every target has taken (or `newest`).
    taken: i64,
    /// The newest row's id less one.
    newest: i64,
    /// What has not taken the rows after `taken` (a forwarding target's
    /// or the central store's key), if anything.
    holder: Option<String>,
}

fn prune_bound(
    conn: &Connection,
    chain: Chain,
    rules: &PruneRules,
) -> rusqlite::Result<PruneBound> {
    let newest: Option<i64> =
        conn.query_row(&format!("SELECT max(id) FROM {}", chain.table()), [], |r| {
            r.get(0)
        })?;
    let newest = newest.map_or(0, |id| id - 1);
    // Nor what a configured forwarding target has not taken yet (see
    // `forward.rs`); a target never reached has taken nothing. (The
    // cursors of targets no longer configured do not hold a prune back.)
    let mut forwarded = i64::MAX;
    let mut holder = None;
    for target in &rules.forward_targets {
        let cursor: Option<(i64, i64)> = conn
            .query_row(
                "SELECT commands_up_to, events_up_to FROM forward_cursors WHERE target = ?1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (commands, events) = cursor.unwrap_or((0, 0));
        let taken = match chain {
            Chain::Commands => commands,
            Chain::TmuxEvents => events,
        };
        if taken < forwarded {
            forwarded = taken;
            holder = Some(format!("forwarding target {target}"));
        }
    }
    let mut shipped = i64::MAX;
    if let Some(server) = &rules.central_server {
        let cursor: Option<i64> = conn
            .query_row(
                "SELECT last_id FROM central_shipped WHERE server = ?1 AND chain = ?2",
                [server.as_str(), chain.table()],
                |r| r.get(0),
            )
            .optional()?;
        shipped = cursor.unwrap_or(0);
        if shipped < forwarded {
            holder = Some(format!("central store {server}"));
        }
    }
    let taken = newest.min(forwarded).min(shipped);
    Ok(PruneBound {
        // Nor the last row shipped: the server's anchor names it, and the
        // next sync goes on from it only once this chain shows it with
        // the same hash (`central::ship`). Kept as the newest row is, not
        // held back by anyone.
        bound: taken.min(shipped.saturating_sub(1)),
        taken,
        newest,
        holder: holder.filter(|_| taken < newest),
    })
}

/// How many rows older than the cut-off lie after `taken` and up to
/// `newest`: what a target that has not taken them holds back.
fn held_back(
    conn: &Connection,
    chain: Chain,
    rules: &PruneRules,
    (taken, newest): (i64, i64),
) -> rusqlite::Result<u64> {
    let sql = match chain {
        Chain::Commands => {
            format!("SELECT count(*) FROM commands WHERE id > ?1 AND id <= ?2 AND {AGE} < ?3")
        }
        Chain::TmuxEvents => {
            "SELECT count(*) FROM tmux_events WHERE id > ?1 AND id <= ?2 AND at_us < ?3".into()
        }
    };
    let count: i64 = conn.query_row(&sql, params![taken, newest, rules.before_us], |r| r.get(0))?;
    Ok(count.unsigned_abs())
}

/// Reads the next batch after id `after`: which old rows go, which stay,
/// and the runs they make. Writes nothing.
fn plan(
    conn: &Connection,
    chain: Chain,
    rules: &PruneRules,
    after: i64,
) -> Result<Batch, PruneError> {
    let up_to = prunable_up_to(conn, chain, rules)?;
    let candidates = match chain {
        Chain::Commands => command_candidates(conn, rules, (after, up_to))?,
        Chain::TmuxEvents => event_candidates(conn, rules, (after, up_to))?,
    };
    let mut batch = Batch {
        last_seen: candidates.last().map(|c| c.id),
        more: candidates.len() as i64 == BATCH,
        ..Batch::default()
    };
    let mut digest = PrunedDigest::default();
    for candidate in candidates {
        if candidate.keep {
            batch.kept += 1;
            continue;
        }
        if !candidate.intact {
            return Err(PruneError::Tampered {
                chain: chain.table(),
                id: candidate.id,
            });
        }
        digest.add(candidate.id, &candidate.hash);
        match batch.runs.last_mut() {
            Some(run) if run.last + 1 == candidate.id => {
                // Within a run, each row must link to the one before it.
                if hex(&candidate.prev) != run.hash {
                    return Err(PruneError::Tampered {
                        chain: chain.table(),
                        id: candidate.id,
                    });
                }
                run.last = candidate.id;
                run.hash = hex(&candidate.hash);
            }
            _ => batch.runs.push(PrunedRun {
                first: candidate.id,
                last: candidate.id,
                prev: hex(&candidate.prev),
                hash: hex(&candidate.hash),
            }),
        }
        batch.pruned.push(candidate);
    }
    if !batch.pruned.is_empty() {
        batch.rows_digest = Some(digest.finish());
    }
    Ok(batch)
}

/// A command's age for a prune: its start, or, for an imported entry
/// whose tool kept no time (stored as 0, "1970"), the import's time: such
/// an entry ages from when it came in, so a prune does not take every
/// untimed entry the day it is imported (and the next import bring it
/// back).
const AGE: &str = "(CASE WHEN started_at_us = 0 AND import_source IS NOT NULL \
                    THEN recorded_at_us ELSE started_at_us END)";

fn command_candidates(
    conn: &Connection,
    rules: &PruneRules,
    (after, up_to): (i64, i64),
) -> Result<Vec<Candidate>, PruneError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, prev_hash, hash FROM commands
         WHERE id > ?1 AND id <= ?2 AND {AGE} < ?3 AND hash IS NOT NULL
         ORDER BY id LIMIT ?4"
    ))?;
    let mut rows = stmt.query(params![after, up_to, rules.before_us, BATCH])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let stored = stored_command(row)?;
        let prev: Vec<u8> = row.get("prev_hash")?;
        let hash: Vec<u8> = row.get("hash")?;
        let record = &stored.record;
        let bytes = record
            .command_raw
            .as_deref()
            .unwrap_or(record.command.as_bytes());
        let keep = (rules.keep_failed && record.exit_status.is_some_and(|s| s != 0))
            || rules.keep_matching.iter().any(|re| re.is_match(bytes));
        let intact = keep
            || match Hash::try_from(prev.as_slice()) {
                Ok(link) => {
                    let content = chain::hash_command(
                        &link,
                        stored.id,
                        &stored.record,
                        stored.recorded_at_us,
                    );
                    content[..] == hash[..] || redactions_explain(conn, stored.id, &content)?
                }
                Err(_) => false,
            };
        found.push(Candidate {
            id: stored.id,
            prev,
            hash,
            command: Some((
                stored.record.shell_session.clone(),
                stored.record.command.clone(),
            )),
            keep,
            intact,
        });
    }
    Ok(found)
}

/// Whether the redactions of command `id` left the content it has now.
fn redactions_explain(conn: &Connection, id: i64, content: &Hash) -> rusqlite::Result<bool> {
    let last: Option<String> = conn
        .query_row(
            "SELECT detail FROM chain_trace WHERE kind = ?1 AND chain = 'commands'
             AND first_id = ?2 ORDER BY id DESC LIMIT 1",
            params![trace::REDACTION, id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(last
        .and_then(|d| serde_json::from_str::<RedactionDetail>(&d).ok())
        .is_some_and(|r| r.content_hash_after == hex(content)))
}

fn event_candidates(
    conn: &Connection,
    rules: &PruneRules,
    (after, up_to): (i64, i64),
) -> Result<Vec<Candidate>, PruneError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM tmux_events
         WHERE id > ?1 AND id <= ?2 AND at_us < ?3 ORDER BY id LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![after, up_to, rules.before_us, BATCH], stored_event)?;
    let mut found = Vec::new();
    for row in rows {
        let row = row?;
        let intact = Hash::try_from(row.prev_hash.as_slice()).is_ok_and(|link| {
            chain::hash_tmux_event(&link, row.id, &row.event, row.recorded_at_us)[..]
                == row.hash[..]
        });
        found.push(Candidate {
            id: row.id,
            prev: row.prev_hash,
            hash: row.hash,
            command: None,
            keep: false,
            intact,
        });
    }
    Ok(found)
}

/// Deletes the batch's rows (and their text from the search index) and
/// writes its trace entry; the entry's id.
fn apply(
    tx: &Connection,
    chain: Chain,
    rules: &PruneRules,
    batch: &Batch,
) -> rusqlite::Result<i64> {
    if let Chain::Commands = chain {
        let indexed: i64 =
            tx.query_row("SELECT indexed_up_to FROM search_index_state", [], |r| {
                r.get(0)
            })?;
        let mut unindex = tx.prepare(
            "INSERT INTO commands_fts (commands_fts, rowid, command) VALUES ('delete', ?1, ?2)",
        )?;
        let mut delete = tx.prepare("DELETE FROM commands WHERE id = ?1")?;
        // Counted, with its number, before it goes.
        let mut count = tx.prepare(
            "INSERT INTO pruned_sessions (shell_session, pruned, highest_seq)
             SELECT shell_session, 1, seq FROM commands WHERE id = ?1
             ON CONFLICT (shell_session) DO UPDATE
             SET pruned = pruned + 1, highest_seq = max(highest_seq, excluded.highest_seq)",
        )?;
        for row in &batch.pruned {
            let Some((_, text)) = &row.command else {
                continue;
            };
            if row.id <= indexed {
                unindex.execute(params![row.id, text])?;
            }
            count.execute([row.id])?;
            delete.execute([row.id])?;
        }
        // The running totals count these rows: counted anew.
        super::report::forget_totals(tx)?;
    } else {
        let mut delete = tx.prepare("DELETE FROM tmux_events WHERE id = ?1")?;
        for row in &batch.pruned {
            delete.execute([row.id])?;
        }
        // The totals by session, window and typist placed commands with
        // these events: counted anew (they only check events newer than
        // those they were counted with, and these are older).
        if !batch.pruned.is_empty() {
            super::report::forget_totals(tx)?;
        }
    }
    let detail = PruneDetail {
        before_us: rules.before_us,
        pruned: batch.pruned.len() as u64,
        kept: batch.kept,
        keep: rules.keep(),
        rows_digest: batch.rows_digest.map(|d| hex(&d)).unwrap_or_default(),
        runs: batch.runs.clone(),
    };
    let span = (
        batch.runs.first().map(|r| r.first),
        batch.runs.last().map(|r| r.last),
    );
    append(
        tx,
        &TraceEntry::now(trace::PRUNE, chain.table(), span, &rules.reason, &detail),
    )
}

/// What giving the freed space back did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// The file was rebuilt once (VACUUM) to switch incremental vacuum on.
    pub switched_on: bool,
    /// Pages given back to the file system.
    pub pages: i64,
    /// Incremental vacuum is off and was left off: the space stays free
    /// inside the file, for new rows.
    pub left_in_file: bool,
}

impl Database {
    /// Prunes what `rules` say, batch by batch (each a transaction with
    /// its trace entry), commands first, then tmux events. `dry_run`:
    /// only counts, writes nothing.
    pub fn prune(&mut self, rules: &PruneRules, dry_run: bool) -> Result<Pruned, PruneError> {
        if !dry_run {
            // Freed space (the old texts) is overwritten with zeros.
            self.conn.pragma_update(None, "secure_delete", "ON")?;
        }
        let mut done = Pruned::default();
        for chain in Chain::ALL {
            let mut after = 0;
            loop {
                let batch = if dry_run {
                    plan(&self.conn, chain, rules, after)?
                } else {
                    let (batch, trace_id) = self.write(|tx| {
                        let batch = match plan(tx, chain, rules, after) {
                            // A failure of the database rolls back.
                            Err(PruneError::Db(err)) => return Err(err),
                            // Nothing was written yet.
                            Err(tampered) => return Ok(Err(tampered)),
                            Ok(batch) => batch,
                        };
                        let id = match batch.pruned.is_empty() {
                            true => None,
                            false => Some(apply(tx, chain, rules, &batch)?),
                        };
                        Ok(Ok((batch, id)))
                    })??;
                    done.trace_ids.extend(trace_id);
                    batch
                };
                let pruned = batch.pruned.len() as u64;
                match chain {
                    Chain::Commands => done.commands += pruned,
                    Chain::TmuxEvents => done.tmux_events += pruned,
                }
                done.kept += batch.kept;
                match (batch.more, batch.last_seen) {
                    (true, Some(last)) => after = last,
                    _ => break,
                }
                // Between batches, a merge waiting for the lock gets it.
                std::thread::yield_now();
            }
            if let PruneBound {
                taken,
                newest,
                holder: Some(holder),
                ..
            } = prune_bound(&self.conn, chain, rules)?
            {
                let held = held_back(&self.conn, chain, rules, (taken, newest))?;
                if held > 0 {
                    done.held_back += held;
                    if !done.held_back_by.contains(&holder) {
                        done.held_back_by.push(holder);
                    }
                }
            }
        }
        Ok(done)
    }

    /// Gives the space freed by a prune back to the file system: in steps
    /// of [`VACUUM_STEP_PAGES`], each its own short write transaction, then
    /// the write-ahead log emptied, which shrinks the file.
    ///
    /// Databases made since schema 12 have incremental vacuum on from the
    /// start. An older one has it off, and turning it on takes one VACUUM,
    /// which rewrites the file and holds the write lock meanwhile (records
    /// wait in the spool): done only when `may_rebuild` (an explicit
    /// `tmux-audit prune`, never the background prune); otherwise the
    /// freed pages stay in the file for new rows.
    pub fn reclaim_space(&mut self, may_rebuild: bool) -> Result<Reclaimed, DbError> {
        let mut done = Reclaimed::default();
        let mode: i64 = self
            .conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
        if mode == 0 {
            if !may_rebuild {
                done.left_in_file = true;
                return Ok(done);
            }
            self.conn.busy_timeout(Duration::from_secs(10))?;
            let rebuilt = self
                .conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;");
            self.conn.busy_timeout(self.busy_timeout)?;
            rebuilt?;
            done.switched_on = true;
        }
        let free = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.pragma_query_value(None, "freelist_count", |r| r.get(0))
        };
        let before = free(&self.conn)?;
        loop {
            let left = free(&self.conn)?;
            if left == 0 {
                break;
            }
            // Busy (a merge): what is left goes at the next prune.
            let mut step = self
                .conn
                .prepare(&format!("PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})"))?;
            let stepped = step.query([]).and_then(|mut rows| {
                while rows.next()?.is_some() {}
                Ok(())
            });
            if stepped.is_err() || free(&self.conn)? >= left {
                break;
            }
        }
        done.pages = before - free(&self.conn)?;
        // The file shrinks when the log is copied back and emptied.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(done)
    }

    /// Whether the daily prune of `[retention]` is due at `now_us`; when
    /// it is, notes it as run now (so that of many background merges, one
    /// prunes).
    pub fn claim_daily_prune(&mut self, now_us: i64) -> Result<bool, DbError> {
        self.write(|tx| {
            let last: Option<i64> = tx
                .query_row(
                    "SELECT last_auto_prune_us FROM retention_state WHERE id = 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if last.is_some_and(|last| now_us - last < DAILY_US) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO retention_state (id, last_auto_prune_us) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET last_auto_prune_us = excluded.last_auto_prune_us",
                [now_us],
            )?;
            Ok(true)
        })
    }

    /// How many records of each shell session were pruned, in all: what
    /// `verify` adds up against the trace.
    pub fn pruned_sessions_total(&self) -> Result<u64, DbError> {
        let total: i64 = self.conn.query_row(
            "SELECT coalesce(sum(pruned), 0) FROM pruned_sessions",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(total).unwrap_or(0))
    }
}
