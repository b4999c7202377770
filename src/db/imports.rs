//! Storing imported commands: which are stored already, numbering the new
//! ones in their shell session, and inserting them through the one insert
//! path (`queries::insert_entries`), so that they extend the chain like any
//! record.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction};

use super::{queries, Database, DbError};
use crate::record::{CommandRecord, Entry};

/// How an imported command finds its place in `(shell_session, seq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// The command keeps its own session and number (a tmux-audit export):
    /// one stored under them already is the same command.
    Keep,
    /// The next numbers of its session, given to the new commands only, so
    /// a session of imported commands has no holes.
    Next,
}

/// What an import of one batch did, or would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Stored now (or, in a dry run, that would be).
    pub added: usize,
    /// Stored before, by an earlier import or as recorded.
    pub already: usize,
}

impl Database {
    /// Stores the imported commands `records` (each with its import mark)
    /// in one write transaction; with `dry_run`, only counts. A command
    /// whose import key, or (with [`Numbering::Keep`]) whose session and
    /// number, is stored already is left out.
    pub fn import_batch(
        &mut self,
        records: Vec<CommandRecord>,
        numbering: Numbering,
        recorded_at_us: i64,
        dry_run: bool,
    ) -> Result<Counts, DbError> {
        let work = |tx: &Transaction<'_>| -> Result<Counts, DbError> {
            let mut counts = Counts::default();
            let mut highest: HashMap<String, i64> = HashMap::new();
            let mut new = Vec::with_capacity(records.len());
            {
                let mut by_key = tx.prepare(
                    "SELECT 1 FROM commands WHERE import_key = ?1 AND import_key IS NOT NULL",
                )?;
                let mut by_place =
                    tx.prepare("SELECT 1 FROM commands WHERE shell_session = ?1 AND seq = ?2")?;
                // Above the numbers pruned too: a number given again would
                // count as a record that never arrived (`verify`).
                let mut top = tx.prepare(
                    "SELECT max(coalesce((SELECT max(seq) FROM commands WHERE shell_session = ?1), 0),
                                coalesce((SELECT highest_seq FROM pruned_sessions
                                          WHERE shell_session = ?1), 0))",
                )?;
                for mut record in records {
                    let key = record.imported.as_ref().map(|m| m.key.as_slice());
                    let mut stored = by_key.query_row([key], |_| Ok(())).optional()?.is_some();
                    if !stored && numbering == Numbering::Keep {
                        stored = by_place
                            .query_row(rusqlite::params![record.shell_session, record.seq], |_| {
                                Ok(())
                            })
                            .optional()?
                            .is_some();
                    }
                    if stored {
                        counts.already += 1;
                        continue;
                    }
                    if numbering == Numbering::Next {
                        let seq = match highest.get_mut(&record.shell_session) {
                            Some(seq) => seq,
                            None => {
                                let found: i64 =
                                    top.query_row([&record.shell_session], |r| r.get(0))?;
                                highest.entry(record.shell_session.clone()).or_insert(found)
                            }
                        };
                        *seq += 1;
                        record.seq = *seq;
                    }
                    new.push(Entry::Command(record));
                }
            }
            if dry_run {
                counts.added = new.len();
                return Ok(counts);
            }
            let added = queries::insert_entries(tx, new.iter().map(|e| (e, recorded_at_us)))?;
            counts.already += new.len() - added;
            counts.added = added;
            Ok(counts)
        };
        self.write(work)
    }
}
