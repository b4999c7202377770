//! `tmux-audit verify` and `tmux-audit anchor`: check the hash chains (of
//! the records, the tmux events and the trace that explains changes made
//! on purpose), the spool's links and the running totals, and print the
//! chains' ends to keep elsewhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};

use anyhow::{bail, Result};

use super::{Exit, Run};
use crate::cli::{Anchor, Verify};
use tmux_audit::capture::seal;
use tmux_audit::central::{self, identity::HostIdentity};
use tmux_audit::chain::{self, Hash, GENESIS};
use tmux_audit::db::{StoredTrace, UnchainedDigest};
use tmux_audit::paths;
use tmux_audit::render::utc_time;
use tmux_audit::spool;
use tmux_audit::text::hex;
use tmux_audit::trace::{
    self, ChainStartDetail, PruneDetail, PrunedRun, RedactionDetail, SpoolBreakDetail,
    SpoolUnlinkedDetail,
};

/// Where the chain first fails, if it does.
enum Break {
    /// The content no longer gives the hash stored with it.
    Changed,
    /// The link to the record before is wrong: a record before this one
    /// was deleted, or this one was inserted or moved.
    Relinked,
    /// A record without a hash that the trace does not count among those
    /// from before the chain: not written by tmux-audit.
    Unchained,
}

/// How the hash of one row is checked.
enum Expect<'a> {
    /// Its content gives its hash.
    Content,
    /// Its text was redacted on purpose: its hash is the one the trace
    /// names, and its content gives the hash the last redaction left.
    Redacted(&'a [RedactionDetail]),
}

/// Walks one chain, link by link, and keeps what `verify` reports.
#[derive(Default)]
struct ChainCheck {
    /// The previous row's hash, once the chain began.
    expected: Option<Hash>,
    /// The rows without hashes before the chain began.
    before_chain: UnchainedDigest,
    checked: u64,
    first: Option<i64>,
    /// Id and time of the newest row checked.
    last: Option<(i64, i64)>,
    broken: Option<(Break, i64, i64)>,
    seen_anchors: Vec<Hash>,
    /// The runs of rows that prunes deleted, by their first id (from the
    /// trace), and those the walk stepped over.
    pruned: BTreeMap<i64, PrunedRun>,
    stepped_over: HashSet<i64>,
}

impl ChainCheck {
    /// Checks the row `id` (at `at_us`); false once the chain is broken.
    /// `compute`: the row's hash after a given previous hash.
    /// `predates`: for a row without hashes, whether the trace counts it
    /// among the rows from before the chain.
    fn visit(
        &mut self,
        (id, at_us): (i64, i64),
        links: (Option<Vec<u8>>, Option<Vec<u8>>),
        (anchors, expect): (&[Hash], Expect<'_>),
        predates: impl FnOnce(&mut UnchainedDigest) -> bool,
        compute: impl FnOnce(&Hash) -> Hash,
    ) -> bool {
        let (Some(prev_hash), Some(hash)) = links else {
            if self.expected.is_some() || !predates(&mut self.before_chain) {
                self.broken = Some((Break::Unchained, id, at_us));
                return false;
            }
            return true;
        };
        // The first row of the chain links to GENESIS, also when rows from
        // before version 4 precede it.
        let mut link = self.expected.unwrap_or(GENESIS);
        if prev_hash != link {
            // Rows pruned before it: its link is the last pruned row's hash.
            match self.step_over_pruned(id, link) {
                Some(after_gap) if prev_hash == after_gap => link = after_gap,
                _ => {
                    self.broken = Some((Break::Relinked, id, at_us));
                    return false;
                }
            }
        }
        let computed = compute(&link);
        let intact = match expect {
            Expect::Content => hash == computed,
            Expect::Redacted(redactions) => redaction_explains(redactions, &hash, &computed),
        };
        if !intact {
            self.broken = Some((Break::Changed, id, at_us));
            return false;
        }
        let hash = Hash::try_from(hash).unwrap_or(GENESIS);
        if anchors.contains(&hash) {
            self.seen_anchors.push(hash);
        }
        self.expected = Some(hash);
        self.checked += 1;
        self.first.get_or_insert(id);
        self.last = Some((id, at_us));
        true
    }

    /// The link the row `id` must have when the rows between the last one
    /// checked and it were pruned: the runs of the trace's prunes must
    /// fill that gap exactly, each starting from the link the one before
    /// left. None when they do not (a row deleted without a prune).
    fn step_over_pruned(&mut self, id: i64, mut link: Hash) -> Option<Hash> {
        let mut next = match self.last {
            Some((last, _)) => last + 1,
            // Pruned from the chain's first row on.
            None => *self.pruned.keys().next()?,
        };
        let mut runs = Vec::new();
        while next < id {
            let run = self.pruned.get(&next)?;
            if run.prev != hex(&link) {
                return None;
            }
            link = chain::parse_hex(run.hash.as_bytes())?;
            runs.push(next);
            next = run.last + 1;
        }
        if next != id {
            return None;
        }
        self.stepped_over.extend(runs);
        Some(link)
    }

    /// Runs a prune says it deleted that the walk never stepped over: the
    /// rows are still there, or the walk broke before them.
    fn runs_not_stepped_over(&self) -> Vec<&PrunedRun> {
        self.pruned
            .values()
            .filter(|run| !self.stepped_over.contains(&run.first))
            .collect()
    }

    /// The first break, named: "record 3 (at …) was changed after it was written".
    fn broken_line(&mut self, what: &str) -> Option<String> {
        let (kind, id, at) = self.broken.take()?;
        let how = match kind {
            Break::Changed => "was changed after it was written",
            Break::Relinked => "does not follow the one before it: one was deleted before it, or it was inserted or moved",
            Break::Unchained => "has no hash: it was not written by tmux-audit",
        };
        Some(format!("{what} {id} (at {}) {how}", utc_time(at)))
    }
}

/// Whether the redactions of a row explain its hashes: the row keeps the
/// hash it was chained with, each redaction starts from the content the
/// one before left, and the content now is what the last one left.
fn redaction_explains(redactions: &[RedactionDetail], stored: &[u8], computed: &Hash) -> bool {
    let stored = hex(stored);
    let mut content = stored.clone();
    for r in redactions {
        if r.row_hash != stored || r.content_hash_before != content {
            return false;
        }
        content = r.content_hash_after.clone();
    }
    content == hex(computed)
}

/// Whether a prune entry is one tmux-audit writes: its runs in order,
/// inside the span it names, as many rows as it counts.
fn prune_adds_up(entry: &trace::TraceEntry, detail: &PruneDetail) -> bool {
    let in_order = detail
        .runs
        .windows(2)
        .all(|pair| pair[0].last < pair[1].first);
    let rows: u64 = detail.runs.iter().map(PrunedRun::rows).sum();
    in_order
        && detail.runs.iter().all(|r| r.first <= r.last)
        && rows == detail.pruned
        && entry.first_id == detail.runs.first().map(|r| r.first)
        && entry.last_id == detail.runs.last().map(|r| r.last)
        && matches!(entry.chain.as_str(), "commands" | "tmux_events")
}

/// What the trace says, once its own chain is checked.
#[derive(Default)]
struct TraceView {
    chain: ChainCheck,
    start: Option<(StoredTrace, ChainStartDetail)>,
    redactions: HashMap<i64, Vec<RedactionDetail>>,
    /// Each redaction, for the listing: (record id, entry).
    redaction_entries: Vec<(i64, StoredTrace)>,
    spool_breaks: Vec<(StoredTrace, SpoolBreakDetail)>,
    /// Records merged from spool lines without links, from before the upgrade.
    spool_unlinked: Vec<(StoredTrace, SpoolUnlinkedDetail)>,
    prunes: Vec<(StoredTrace, PruneDetail)>,
    /// The runs the prunes deleted, per chain, by their first id.
    pruned: HashMap<String, BTreeMap<i64, PrunedRun>>,
    /// Entries whose detail cannot be read: (id, kind).
    unreadable: Vec<(i64, String)>,
}

impl TraceView {
    fn read(entries: Vec<StoredTrace>, anchors: &[Hash]) -> TraceView {
        let mut view = TraceView::default();
        for stored in entries {
            let links = (Some(stored.prev_hash.clone()), Some(stored.hash.clone()));
            let intact = view.chain.visit(
                (stored.id, stored.entry.at_us),
                links,
                (anchors, Expect::Content),
                |_| false,
                |link| chain::hash_trace(link, stored.id, &stored.entry),
            );
            if !intact {
                break;
            }
            let e = &stored.entry;
            let readable = match e.kind.as_str() {
                trace::CHAIN_START if view.start.is_none() => {
                    serde_json::from_str(&e.detail).map(|d| view.start = Some((stored.clone(), d)))
                }
                trace::REDACTION => serde_json::from_str(&e.detail).map(|d| {
                    let id = e.first_id.unwrap_or(0);
                    view.redactions.entry(id).or_default().push(d);
                    view.redaction_entries.push((id, stored.clone()));
                }),
                trace::SPOOL_BREAK => serde_json::from_str(&e.detail)
                    .map(|d| view.spool_breaks.push((stored.clone(), d))),
                trace::SPOOL_UNLINKED => serde_json::from_str(&e.detail)
                    .map(|d| view.spool_unlinked.push((stored.clone(), d))),
                trace::PRUNE => serde_json::from_str::<PruneDetail>(&e.detail).map(|d| {
                    if prune_adds_up(e, &d) {
                        let runs = view.pruned.entry(e.chain.clone()).or_default();
                        runs.extend(d.runs.iter().map(|r| (r.first, r.clone())));
                        view.prunes.push((stored.clone(), d));
                    } else {
                        view.unreadable.push((stored.id, e.kind.clone()));
                    }
                }),
                _ => {
                    view.unreadable.push((stored.id, e.kind.clone()));
                    Ok(())
                }
            };
            if readable.is_err() {
                view.unreadable.push((stored.id, e.kind.clone()));
            }
        }
        view
    }
}

impl Run for Verify {
    fn run(&self) -> Result<Exit> {
        if self.central {
            return verify_central(self.host.as_deref());
        }
        let anchors = match &self.anchor {
            Some(text) => parse_anchor(text)?,
            None => Vec::new(),
        };
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = super::open_for_reading(&path)?;
        let mut problems = Vec::new();

        let mut trace = TraceView::read(db.trace()?, &anchors);
        let trace_broken = trace.chain.broken_line("trace entry");
        let trace_whole = trace_broken.is_none();
        problems.extend(trace_broken);
        for (id, kind) in &trace.unreadable {
            problems.push(format!(
                "trace entry {id} ({kind}) is not one tmux-audit writes: it was changed or forged"
            ));
        }
        let start = trace.start.as_ref().map(|(_, d)| d.clone());
        let range = trace
            .start
            .as_ref()
            .map(|(s, _)| (s.entry.first_id, s.entry.last_id));
        if start.is_none() && trace_whole {
            problems.push(
                "the trace has no `chain-start` entry, which fixes the records from before the chain: it was deleted or rewritten".into(),
            );
        }

        let mut commands = ChainCheck {
            pruned: trace.pruned.remove("commands").unwrap_or_default(),
            ..ChainCheck::default()
        };
        let no_redactions = Vec::new();
        db.walk_chain(|row, prev_hash, hash| {
            let redactions = trace.redactions.get(&row.id).unwrap_or(&no_redactions);
            let expect = match redactions.is_empty() {
                true => Expect::Content,
                false => Expect::Redacted(redactions),
            };
            commands.visit(
                (row.id, row.record.started_at_us),
                (prev_hash, hash),
                (&anchors, expect),
                |before| match range {
                    Some((Some(first), Some(last))) if (first..=last).contains(&row.id) => {
                        before.add(&row);
                        true
                    }
                    _ => false,
                },
                |link| chain::hash_command(link, row.id, &row.record, row.recorded_at_us),
            )
        })?;
        let commands_broken = commands.broken_line("record");
        if let (Some(start), None) = (&start, &commands_broken) {
            let before = &commands.before_chain;
            if before.count != start.unchained || before.digest_hex() != start.unchained_digest {
                problems.push(format!(
                    "the records from before the chain were changed, deleted or added to (the trace counted {}, there are {})",
                    start.unchained, before.count
                ));
            }
        }
        let commands_whole = commands_broken.is_none();
        problems.extend(commands_broken);

        let mut events = ChainCheck {
            pruned: trace.pruned.remove("tmux_events").unwrap_or_default(),
            ..ChainCheck::default()
        };
        let event_rows = db.tmux_events_in_chain_order()?;
        for row in &event_rows {
            let links = (Some(row.prev_hash.clone()), Some(row.hash.clone()));
            let intact = events.visit(
                (row.id, row.event.at_us),
                links,
                (&anchors, Expect::Content),
                |_| false,
                |link| chain::hash_tmux_event(link, row.id, &row.event, row.recorded_at_us),
            );
            if !intact {
                break;
            }
        }
        // Each finished capture segment against the SHA-256 its seal (a
        // tmux event, in the chain just checked) holds.
        let capture_root = tmux_audit::capture::root(&path);
        let segments = match self.without_output {
            true => seal::Checked::default(),
            false => seal::check(
                &capture_root,
                event_rows.iter().map(|row| &row.event),
                &seal::running_dirs(&capture_root),
            ),
        };
        drop(event_rows);
        let deleted = segments
            .problems
            .iter()
            .filter(|p| matches!(p, seal::Problem::Deleted { .. }))
            .count();
        if deleted > 0 && deleted == segments.problems.len() && !capture_root.exists() {
            // Not one file, the whole directory: a copy of the database
            // without it, most likely, or the output removed wholesale.
            problems.push(format!(
                "the captured output of this database is missing: {deleted} sealed capture \
                 segment{} and their directory {} are gone (a copy of the database without its \
                 capture directory? `verify --without-output` checks the chains only)",
                if deleted == 1 { "" } else { "s" },
                capture_root.display()
            ));
        } else {
            problems.extend(segments.problems.iter().map(ToString::to_string));
        }
        let events_broken = events.broken_line("tmux event");
        let chains_whole = commands_whole && events_broken.is_none() && trace_whole;
        problems.extend(events_broken);
        if chains_whole {
            for (check, what) in [(&commands, "records"), (&events, "tmux events")] {
                for run in check.runs_not_stepped_over() {
                    problems.push(format!(
                        "the trace says {what} {} to {} were pruned, but the chain does not step over them there: they are still stored, or were added back",
                        run.first, run.last
                    ));
                }
            }
        }
        // The counts that keep pruned records from looking lost add up to
        // what the prunes deleted.
        let pruned_records: u64 = trace
            .prunes
            .iter()
            .filter(|(e, _)| e.entry.chain == "commands")
            .map(|(_, d)| d.pruned)
            .sum();
        let counted = db.pruned_sessions_total()?;
        if counted != pruned_records {
            problems.push(format!(
                "the counts of pruned records per shell session ({counted}) do not match the prunes in the trace ({pruned_records}): they were changed outside tmux-audit, and would hide records that never arrived"
            ));
        }

        for (entry, detail) in &trace.spool_breaks {
            let what = match (entry.entry.chain.as_str(), entry.entry.first_id) {
                ("tmux_events", Some(id)) => format!("tmux event {id}"),
                (_, Some(id)) => format!("record {id}"),
                (_, None) => "a record (not stored)".to_string(),
            };
            let how = spool::describe_problem(&detail.problem);
            problems.push(format!(
                "{what} came from a spool line that {how} (line {} of {}, merged at {})",
                detail.line,
                detail.spool,
                utc_time(entry.entry.at_us)
            ));
        }
        // Lines still waiting (the database did not take them): checked where they are.
        let trace_start_us = trace.start.as_ref().map(|(s, _)| s.entry.at_us);
        problems.extend(spool::check_links(&path, trace_start_us));

        for wrong in db.check_totals()? {
            problems.push(format!(
                "the running totals behind {} do not match the records ({}): they were changed outside tmux-audit, and are counted again from the records by the next report",
                wrong.used_by, wrong.what
            ));
        }

        // What this host shipped, compared with what it holds now.
        let config = tmux_audit::config::Config::load()?;
        if let Some(url) = config.central.url() {
            match compare_with_central(url, &db) {
                Ok(found) => problems.extend(found),
                Err(err) => {
                    eprintln!("tmux-audit: warning: not compared with the central store: {err:#}")
                }
            }
        }

        let mut out = io::stdout().lock();
        if !problems.is_empty() {
            for problem in &problems {
                writeln!(out, "NOT INTACT: {problem}")?;
            }
            return Ok(Exit::Tampered);
        }
        let anchors_seen = anchors.iter().all(|a| {
            [&commands, &events, &trace.chain]
                .iter()
                .any(|c| c.seen_anchors.contains(a))
        });
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
        if segments.intact + segments.pruned > 0 {
            let pruned = match segments.pruned {
                0 => String::new(),
                n => format!(" ({n} more deleted by the capture budget, as recorded)"),
            };
            writeln!(
                out,
                "intact: {} capture segment{}, as sealed{pruned}",
                segments.intact,
                if segments.intact == 1 { "" } else { "s" }
            )?;
        }
        if self.without_output {
            writeln!(out, "not checked: the captured output (--without-output)")?;
        }
        for path in &segments.unsealed {
            writeln!(
                out,
                "unsealed: capture segment {} (its capture process ended without closing it, \
                 killed?): its content cannot be checked",
                path.display()
            )?;
        }
        if !trace.chain.seen_anchors.is_empty() {
            writeln!(
                out,
                "intact: {} trace entries, anchor found",
                trace.chain.checked
            )?;
        }
        for (id, entry) in &trace.redaction_entries {
            let e = &entry.entry;
            let what = serde_json::from_str::<RedactionDetail>(&e.detail)
                .ok()
                .and_then(|d| d.matches)
                .map_or("the whole text".to_string(), |n| {
                    format!("{n} match{} of a pattern", if n == 1 { "" } else { "es" })
                });
            writeln!(
                out,
                "redacted: record {id}, {what}, at {} by {} (uid {}): {}",
                utc_time(e.at_us),
                e.user,
                e.uid,
                e.reason
            )?;
        }
        // One line per prune (a prune writes an entry per batch).
        let prunes = &trace.prunes;
        let mut i = 0;
        while i < prunes.len() {
            let (first, detail) = &prunes[i];
            let e = &first.entry;
            let same_prune = |(other, d): &(StoredTrace, PruneDetail)| {
                let o = &other.entry;
                (&o.chain, &o.user, &o.reason, d.before_us, &d.keep)
                    == (&e.chain, &e.user, &e.reason, detail.before_us, &detail.keep)
            };
            let end = i + prunes[i..].iter().take_while(|p| same_prune(p)).count();
            let (rows, kept) = prunes[i..end]
                .iter()
                .fold((0, 0), |(r, k), (_, d)| (r + d.pruned, k + d.kept));
            let what = if e.chain == "tmux_events" {
                "tmux events"
            } else {
                "records"
            };
            let kept = match kept {
                0 => String::new(),
                n => format!("; {n} as old kept: {}", detail.keep.join(", ")),
            };
            writeln!(
                out,
                "pruned: {rows} {what} (among ids {} to {}{kept}) from before {}, at {} by {} (uid {}): {}",
                e.first_id.unwrap_or(0),
                prunes[end - 1].0.entry.last_id.unwrap_or(0),
                utc_time(detail.before_us),
                utc_time(e.at_us),
                e.user,
                e.uid,
                e.reason
            )?;
            i = end;
        }
        for (entry, detail) in &trace.spool_unlinked {
            let e = &entry.entry;
            let what = if e.chain == "tmux_events" {
                "tmux events"
            } else {
                "records"
            };
            writeln!(
                out,
                "unlinked: {} {what} (ids {} to {}) came from spool lines without links, spooled before the upgrade to schema 9 (merged at {} from {})",
                detail.lines,
                e.first_id.unwrap_or(0),
                e.last_id.unwrap_or(0),
                utc_time(e.at_us),
                detail.spool
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
        if commands.before_chain.count > 0 {
            writeln!(
                out,
                "{} older records come before the chain (written before tmux-audit kept one)",
                commands.before_chain.count
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
        let path = paths::database(self.db.path.as_deref())?;
        let db = super::open_for_reading(&path)?;
        // An anchor covers every record taken: none may still wait outside
        // the chain.
        let (waiting, _) = spool::waiting(&path);
        if waiting > 0 {
            bail!(
                "{waiting} record(s) wait in the spool and could not be moved into the database: an anchor now would not cover them (see `tmux-audit doctor`)"
            );
        }
        let mut newest = None;
        db.walk_chain(|row, _, hash| {
            if let Some(hash) = hash {
                newest = Some((hex(&hash), row.id, row.record.started_at_us));
            }
            true
        })?;
        let newest_event = db.newest_tmux_event()?;
        let newest_trace = db.trace()?.pop();
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
        // So does the trace: a redaction or a spool break cannot be taken back unseen.
        if let Some(entry) = newest_trace {
            writeln!(
                out,
                "{} trace entry {} ({}), at {}",
                hex(&entry.hash),
                entry.id,
                entry.entry.kind,
                utc_time(entry.entry.at_us)
            )?;
        }
        Ok(Exit::Success)
    }
}

/// The hashes of what `anchor` printed: the first word of each line.
/// The differences between the local chains and the hashes this host
/// shipped to the central store.
fn compare_with_central(url: String, db: &tmux_audit::db::Database) -> Result<Vec<String>> {
    let target = central::target(Some(url))?;
    let mut client = target.connect()?;
    central::schema::check(&mut client)?;
    let host = HostIdentity::of_this_host(&paths::state_dir()?)?;
    Ok(central::check::compare_local(&mut client, db, &host, 20)?)
}

/// `verify --central`: every host's chains on the server.
fn verify_central(host: Option<&str>) -> Result<Exit> {
    let config = tmux_audit::config::Config::load()?;
    let target = central::target(config.central.reading_url())?;
    let mut client = target.connect()?;
    central::schema::check(&mut client)?;
    let reports = central::check::verify_server(&mut client, host)?;
    let mut out = io::stdout().lock();
    if reports.is_empty() {
        match host {
            Some(host) => bail!("the central store holds nothing of host {host:?}"),
            None => writeln!(out, "intact: the central store holds no records yet")?,
        }
        return Ok(Exit::Success);
    }
    let mut intact = true;
    for report in &reports {
        let what = if report.chain == "commands" {
            "records"
        } else {
            "tmux events"
        };
        if report.problems.is_empty() {
            writeln!(
                out,
                "intact: {} {what} of {} (host id {}, database {})",
                report.rows, report.host, report.host_id, report.database_id
            )?;
        } else {
            intact = false;
            for problem in &report.problems {
                writeln!(
                    out,
                    "NOT INTACT: {} ({}, database {}), {what}: {problem}",
                    report.host, report.host_id, report.database_id
                )?;
            }
        }
    }
    Ok(if intact {
        Exit::Success
    } else {
        Exit::Tampered
    })
}

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
    match chain::parse_hex(text.as_bytes()) {
        Some(hash) => Ok(hash),
        None => bail!("{text:?} is not a hash printed by `tmux-audit anchor` (64 hex digits)"),
    }
}
