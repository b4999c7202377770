//! `tmux-audit verify` and `tmux-audit anchor`: check the hash chain, and
//! print its end to keep elsewhere.

use std::io::{self, Write};

use anyhow::{bail, Result};

use super::{Exit, Run};
use crate::chain::{self, Hash, GENESIS};
use crate::cli::{Anchor, Verify};
use crate::paths;
use crate::render::utc_time;
use crate::spool;
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

/// Walks one chain, link by link, and keeps what `verify` reports.
#[derive(Default)]
struct ChainCheck {
    /// The previous row's hash, once the chain began.
    expected: Option<Hash>,
    before_chain: u64,
    checked: u64,
    first: Option<i64>,
    /// Id and time of the newest row checked.
    last: Option<(i64, i64)>,
    broken: Option<(Break, i64, i64)>,
    seen_anchors: Vec<Hash>,
}

impl ChainCheck {
    /// Checks the row `id` (at `at_us`); false once the chain is broken.
    /// `compute`: the row's hash after a given previous hash.
    fn visit(
        &mut self,
        id: i64,
        at_us: i64,
        links: (Option<Vec<u8>>, Option<Vec<u8>>),
        anchors: &[Hash],
        compute: impl FnOnce(&Hash) -> Hash,
    ) -> bool {
        let (Some(prev_hash), Some(hash)) = links else {
            if self.expected.is_some() {
                self.broken = Some((Break::Unchained, id, at_us));
                return false;
            }
            self.before_chain += 1;
            return true;
        };
        // The first row of the chain links to GENESIS, also when rows from
        // before version 4 precede it.
        let link = self.expected.unwrap_or(GENESIS);
        if prev_hash != link {
            self.broken = Some((Break::Relinked, id, at_us));
            return false;
        }
        let computed = compute(&link);
        if hash != computed {
            self.broken = Some((Break::Changed, id, at_us));
            return false;
        }
        if anchors.contains(&computed) {
            self.seen_anchors.push(computed);
        }
        self.expected = Some(computed);
        self.checked += 1;
        self.first.get_or_insert(id);
        self.last = Some((id, at_us));
        true
    }
}

impl Run for Verify {
    fn run(&self) -> Result<Exit> {
        let anchors = match &self.anchor {
            Some(text) => parse_anchor(text)?,
            None => Vec::new(),
        };
        let db = spool::open_merged(&paths::database(self.db.path.as_deref())?)?;
        let mut commands = ChainCheck::default();
        db.walk_chain(|row, prev_hash, hash| {
            commands.visit(
                row.id,
                row.record.started_at_us,
                (prev_hash, hash),
                &anchors,
                |link| chain::hash_command(link, row.id, &row.record, row.recorded_at_us),
            )
        })?;
        let mut events = ChainCheck::default();
        for row in db.tmux_events_in_chain_order()? {
            let links = (Some(row.prev_hash), Some(row.hash));
            let intact = events.visit(row.id, row.event.at_us, links, &anchors, |link| {
                chain::hash_tmux_event(link, row.id, &row.event, row.recorded_at_us)
            });
            if !intact {
                break;
            }
        }
        let anchors_seen = anchors
            .iter()
            .all(|a| commands.seen_anchors.contains(a) || events.seen_anchors.contains(a));
        let broken = match (commands.broken.take(), events.broken.take()) {
            (Some((kind, id, at)), _) => Some((kind, format!("record {id}"), at)),
            (None, Some((kind, id, at))) => Some((kind, format!("tmux event {id}"), at)),
            (None, None) => None,
        };
        let mut out = io::stdout().lock();
        if let Some((kind, name, at)) = broken {
            let what = match kind {
                Break::Changed => "was changed after it was written",
                Break::Relinked => "does not follow the record before it: a record was deleted before it, or it was inserted or moved",
                Break::Unchained => "has no hash: it was not written by tmux-audit",
            };
            writeln!(out, "NOT INTACT: {name} (at {}) {what}", utc_time(at))?;
            return Ok(Exit::Tampered);
        }
        if !anchors_seen {
            writeln!(
                out,
                "NOT INTACT: the anchor is not in the chain: records after it were deleted, or the chain was rewritten"
            )?;
            return Ok(Exit::Tampered);
        }
        // Which chain each anchor line was found in.
        let found_in = |check: &ChainCheck| {
            if check.seen_anchors.is_empty() {
                ""
            } else {
                ", anchor found"
            }
        };
        match (commands.first, commands.last) {
            (Some(first), Some((last, at))) => writeln!(
                out,
                "intact: {} records (ids {first} to {last}, the newest started {}){}",
                commands.checked,
                utc_time(at),
                found_in(&commands)
            )?,
            _ => writeln!(out, "intact: no records in the chain yet")?,
        }
        if let (Some(first), Some((last, at))) = (events.first, events.last) {
            writeln!(
                out,
                "intact: {} tmux events (ids {first} to {last}, the newest at {}){}",
                events.checked,
                utc_time(at),
                found_in(&events)
            )?;
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
        if commands.before_chain > 0 {
            writeln!(
                out,
                "{} older records come before the chain (written before tmux-audit kept one)",
                commands.before_chain
            )?;
        }
        // Not a break of the chain, but records that never arrived.
        for gap in db.sequence_gaps_counted()? {
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
        let db = spool::open_merged(&paths::database(self.db.path.as_deref())?)?;
        let mut newest = None;
        db.walk_chain(|row, _, hash| {
            if let Some(hash) = hash {
                newest = Some((hex(&hash), row.id, row.record.started_at_us));
            }
            true
        })?;
        let newest_event = db.newest_tmux_event()?;
        let mut out = io::stdout().lock();
        match newest {
            Some((hash, id, at)) => {
                writeln!(out, "{hash} record {id}, started {}", utc_time(at))?;
            }
            None if newest_event.is_some() => {}
            None => bail!("no records in the chain yet: there is nothing to anchor"),
        }
        // The tmux events' chain has an end of its own, on a line of its own.
        if let Some(event) = newest_event {
            writeln!(
                out,
                "{} tmux event {}, at {}",
                hex(&event.hash),
                event.id,
                utc_time(event.event.at_us)
            )?;
        }
        Ok(Exit::Success)
    }
}

/// The hashes of what `anchor` printed: the first word of each line.
fn parse_anchor(text: &str) -> Result<Vec<Hash>> {
    let hashes = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(parse_hash)
        .collect::<Result<Vec<Hash>>>()?;
    if hashes.is_empty() {
        bail!("the anchor is empty: pass what `tmux-audit anchor` printed");
    }
    Ok(hashes)
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
