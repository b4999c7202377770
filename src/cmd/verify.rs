//! `tmux-audit verify` and `tmux-audit anchor`: check the hash chain, and
//! print its end to keep elsewhere.

use std::io::{self, Write};

use anyhow::{bail, Result};

use super::{Exit, Run};
use crate::chain::{self, Hash, GENESIS};
use crate::cli::{Anchor, Verify};
use crate::db::Database;
use crate::paths;
use crate::render::utc_time;
use crate::text::hex;

/// Where the chain first fails, if it does.
enum Break {
    /// The content no longer gives the hash stored with it.
    Changed,
    /// The link to the record before is wrong: a record before this one
    /// was deleted, or this one was inserted or moved.
    Relinked,
    /// A record without a hash after the chain began: not written by tmux-audit.
    Unchained,
}

impl Run for Verify {
    fn run(&self) -> Result<Exit> {
        let anchor = match &self.anchor {
            Some(text) => Some(parse_hash(text)?),
            None => None,
        };
        let db = Database::open_existing(&paths::database(self.db.path.as_deref())?)?;
        let (mut before_chain, mut checked, mut first, mut last) = (0u64, 0u64, None, None);
        let mut expected: Option<Hash> = None; // the previous record's hash, once the chain began
        let mut anchor_seen = false;
        let mut broken = None;
        db.walk_chain(|row, prev_hash, hash| {
            let (Some(prev_hash), Some(hash)) = (prev_hash, hash) else {
                if expected.is_some() {
                    broken = Some((Break::Unchained, row.id, row.record.started_at_us));
                    return false;
                }
                before_chain += 1;
                return true;
            };
            // The first record of the chain links to GENESIS, also when rows
            // from before version 4 precede it.
            let link = expected.unwrap_or(GENESIS);
            if prev_hash != link {
                broken = Some((Break::Relinked, row.id, row.record.started_at_us));
                return false;
            }
            let computed = chain::hash_command(&link, row.id, &row.record, row.recorded_at_us);
            if hash != computed {
                broken = Some((Break::Changed, row.id, row.record.started_at_us));
                return false;
            }
            anchor_seen |= anchor == Some(computed);
            expected = Some(computed);
            checked += 1;
            first.get_or_insert(row.id);
            last = Some((row.id, row.record.started_at_us));
            true
        })?;
        let mut out = io::stdout().lock();
        if let Some((kind, id, at)) = broken {
            let what = match kind {
                Break::Changed => "was changed after it was written",
                Break::Relinked => "does not follow the record before it: a record was deleted before it, or it was inserted or moved",
                Break::Unchained => "has no hash: it was not written by tmux-audit",
            };
            writeln!(
                out,
                "NOT INTACT: record {id} (started {}) {what}",
                utc_time(at)
            )?;
            return Ok(Exit::Tampered);
        }
        if anchor.is_some() && !anchor_seen {
            writeln!(
                out,
                "NOT INTACT: the anchor is not in the chain: records after it were deleted, or the chain was rewritten"
            )?;
            return Ok(Exit::Tampered);
        }
        match (first, last) {
            (Some(first), Some((last, at))) => writeln!(
                out,
                "intact: {checked} records (ids {first} to {last}, the newest started {}){}",
                utc_time(at),
                if anchor.is_some() {
                    ", anchor found"
                } else {
                    ""
                }
            )?,
            _ => writeln!(out, "intact: no records in the chain yet")?,
        }
        for (at, reason, previous) in db.chain_origins()? {
            let previous =
                previous.map_or(String::new(), |p| format!(" (the database before: {p})"));
            writeln!(
                out,
                "the chain began anew at {}: {reason}{previous}",
                utc_time(at)
            )?;
        }
        if before_chain > 0 {
            writeln!(out, "{before_chain} older records come before the chain (written before tmux-audit kept one)")?;
        }
        // Not a break of the chain, but records that never arrived.
        for gap in db.sequence_gaps()? {
            writeln!(
                out,
                "missing: {} of {} commands of shell session {} ({}@{}, {} to {}) never arrived",
                gap.highest_seq - gap.recorded,
                gap.highest_seq,
                gap.shell_session,
                gap.user,
                gap.host,
                utc_time(gap.first_us),
                utc_time(gap.last_us),
            )?;
        }
        Ok(Exit::Success)
    }
}

impl Run for Anchor {
    fn run(&self) -> Result<Exit> {
        let db = Database::open_existing(&paths::database(self.db.path.as_deref())?)?;
        let mut newest = None;
        db.walk_chain(|row, _, hash| {
            if let Some(hash) = hash {
                newest = Some((hex(&hash), row.id, row.record.started_at_us));
            }
            true
        })?;
        match newest {
            Some((hash, id, at)) => writeln!(
                io::stdout().lock(),
                "{hash} record {id}, started {}",
                utc_time(at)
            )?,
            None => bail!("no records in the chain yet: there is nothing to anchor"),
        }
        Ok(Exit::Success)
    }
}

fn parse_hash(text: &str) -> Result<Hash> {
    let text = text.split_whitespace().next().unwrap_or("");
    let bytes: Option<Vec<u8>> = (text.len() == 64)
        .then(|| {
            (0..64)
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                .collect()
        })
        .flatten();
    match bytes.and_then(|b| Hash::try_from(b).ok()) {
        Some(hash) => Ok(hash),
        None => bail!("{text:?} is not a hash printed by `tmux-audit anchor` (64 hex digits)"),
    }
}
