//! Verifying against the central store. `verify --central` walks each
//! host's chains on the server: every row's hash recomputed, every link
//! to the row before, the newest row against the central anchor. A host's
//! own `verify` compares its local chains with the hashes it shipped, so
//! that a local edit, deletion or rewrite of a shipped row is named even
//! when the local chain was rewritten whole to be consistent, and a local
//! history cut short is caught by the anchor.

use std::collections::BTreeMap;

use super::identity::HostIdentity;
use super::query::tmux_event;
use super::CentralError;
use crate::chain::{self, Hash};
use crate::db::Chain;
use crate::db::Database;

/// What the walk of one host's chain on the server found.
#[derive(Debug, Default)]
pub struct ChainReport {
    pub host_id: String,
    pub host: String,
    pub database_id: String,
    pub chain: &'static str,
    pub rows: u64,
    pub problems: Vec<String>,
}

/// Walks every chain on the server (of hosts named `host` only, when
/// given: a host name or a host id).
pub fn verify_server(
    client: &mut postgres::Client,
    host: Option<&str>,
) -> Result<Vec<ChainReport>, CentralError> {
    let anchors = client
        .query(
            "SELECT a.host_id, a.database_id, a.chain, a.last_id, a.last_hash, a.rows,
                    coalesce(w.host_name, split_part(a.host_id, '/', 1))
             FROM tmux_audit.anchors a LEFT JOIN tmux_audit.writers w ON w.host_id = a.host_id
             ORDER BY a.host_id, a.database_id, a.chain",
            &[],
        )
        .map_err(|e| CentralError::from_postgres(&e))?;
    let mut reports = Vec::new();
    for anchor in anchors {
        let host_id: String = anchor.get(0);
        let host_name: String = anchor.get(6);
        if host.is_some_and(|h| h != host_id && h != host_name) {
            continue;
        }
        let database_id: String = anchor.get(1);
        let chain_name: String = anchor.get(2);
        let last_id: i64 = anchor.get(3);
        let last_hash: Option<Vec<u8>> = anchor.get(4);
        let anchored_rows: i64 = anchor.get(5);
        let chain = if chain_name == "commands" {
            Chain::Commands
        } else {
            Chain::TmuxEvents
        };
        let mut report = ChainReport {
            host_id: host_id.clone(),
            host: host_name,
            database_id: database_id.clone(),
            chain: chain.table(),
            ..ChainReport::default()
        };
        let sql = match chain {
            // With the content hash of the newest redaction shipped for a row.
            Chain::Commands => "SELECT c.*, r.content_hash FROM tmux_audit.commands c
                LEFT JOIN (SELECT DISTINCT ON (id) id, content_hash FROM tmux_audit.redactions
                           WHERE host_id = $1 AND database_id = $2 ORDER BY id, trace_id DESC) r
                       ON r.id = c.id
                WHERE c.host_id = $1 AND c.database_id = $2 ORDER BY c.id",
            Chain::TmuxEvents => "SELECT * FROM tmux_audit.tmux_events WHERE host_id = $1 AND database_id = $2 ORDER BY id",
        };
        let rows = client
            .query(sql, &[&host_id, &database_id])
            .map_err(|e| CentralError::from_postgres(&e))?;
        let mut prev: Option<(i64, Option<Vec<u8>>)> = None;
        for row in &rows {
            let id: i64 = row.get("id");
            let recorded_at_us: i64 = row.get("recorded_at_us");
            let prev_hash: Option<Vec<u8>> = row.get("prev_hash");
            let hash: Option<Vec<u8>> = row.get("hash");
            report.rows += 1;
            if let Some((prev_id, prev_hash_seen)) = &prev {
                if *prev_id == id {
                    report.problems.push(format!("row {id} is stored twice"));
                } else if prev_hash != *prev_hash_seen {
                    report.problems.push(format!(
                        "row {id} does not follow row {prev_id}: the chain is broken there"
                    ));
                }
            }
            if let (Some(prev_hash), Some(hash)) = (&prev_hash, &hash) {
                let prev_arr: Option<Hash> = prev_hash.as_slice().try_into().ok();
                let computed = prev_arr.map(|p| match chain {
                    Chain::Commands => {
                        let stored = super::query::stored_command_pub(row);
                        chain::hash_command(&p, id, &stored.record, recorded_at_us)
                    }
                    Chain::TmuxEvents => {
                        chain::hash_tmux_event(&p, id, &tmux_event(row), recorded_at_us)
                    }
                });
                // A row redacted on its host after shipping holds the
                // redaction's text: it hashes to what that redaction says.
                let expected = match chain {
                    Chain::Commands => row
                        .get::<_, Option<Vec<u8>>>("content_hash")
                        .unwrap_or_else(|| hash.clone()),
                    Chain::TmuxEvents => hash.clone(),
                };
                if computed.as_ref().map(|c| &c[..]) != Some(expected.as_slice()) {
                    report.problems.push(format!(
                        "row {id} does not match its hash: changed on the server"
                    ));
                }
            }
            prev = Some((id, hash));
        }
        match &prev {
            Some((id, hash)) if *id == last_id && *hash == last_hash => {}
            Some((id, _)) => report.problems.push(format!(
                "the newest row is {id}, the central anchor says {last_id}: rows were deleted on the server"
            )),
            None => report
                .problems
                .push(format!("no rows, the central anchor says {anchored_rows} up to row {last_id}")),
        }
        if report.rows != anchored_rows as u64 && report.problems.is_empty() {
            report.problems.push(format!(
                "{} rows, the central anchor counted {anchored_rows}",
                report.rows
            ));
        }
        reports.push(report);
    }
    Ok(reports)
}

/// The differences between the local chains and what this host shipped:
/// one line each (at most `max` lines per chain, then a count).
pub fn compare_local(
    client: &mut postgres::Client,
    db: &Database,
    host: &HostIdentity,
    max: usize,
) -> Result<Vec<String>, CentralError> {
    let database_id = db
        .database_id()
        .map_err(|e| CentralError::Server(format!("the local database: {e}")))?;
    let mut problems = Vec::new();
    for chain in Chain::ALL {
        let Some(anchor) = super::ship::anchor(client, host, &database_id, chain)? else {
            continue;
        };
        let server: BTreeMap<i64, Option<Vec<u8>>> = client
            .query(
                "SELECT id, hash FROM tmux_audit.shipped_hashes
                 WHERE host_id = $1 AND database_id = $2 AND chain = $3 ORDER BY id",
                &[&host.id, &database_id, &chain.table()],
            )
            .map_err(|e| CentralError::from_postgres(&e))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let local: BTreeMap<i64, Option<Vec<u8>>> = db
            .chain_hashes(chain, anchor.last_id)
            .map_err(|e| CentralError::Server(format!("the local database: {e}")))?
            .into_iter()
            .collect();
        let what = match chain {
            Chain::Commands => "record",
            Chain::TmuxEvents => "tmux event",
        };
        // Rows a prune deleted on purpose (a checked trace entry says
        // which) are missing here, not deleted: each run's last hash must
        // be what the server holds for that row.
        let pruned = pruned_runs(db, chain)
            .map_err(|e| CentralError::Server(format!("the local database: {e}")))?;
        let pruned_run_of = |id: i64| {
            pruned
                .range(..=id)
                .next_back()
                .map(|(_, run)| run)
                .filter(|run| id <= run.last)
        };
        let mut found = Vec::new();
        for run in pruned.values() {
            let shipped_end = server.get(&run.last).cloned().flatten();
            if let Some(shipped_end) = shipped_end
                && crate::text::hex(&shipped_end) != run.hash
            {
                found.push(format!(
                    "the prune of {what}s {} to {} here ends with another hash than the central store holds for {what} {} (rows removed were not those shipped)",
                    run.first, run.last, run.last
                ));
            }
        }
        for (id, hash) in &server {
            match local.get(id) {
                None if pruned_run_of(*id).is_some() => {}
                None => found.push(format!(
                    "{what} {id} was shipped to the central store but is missing here (deleted)"
                )),
                Some(here) if here != hash => found.push(format!(
                    "{what} {id} differs from what was shipped to the central store (edited or rewritten here)"
                )),
                Some(_) => {}
            }
        }
        for id in local.keys().filter(|id| !server.contains_key(id)) {
            found.push(format!(
                "{what} {id} is here but was never shipped, though later ones were (inserted here)"
            ));
        }
        let newest_pruned = pruned.values().map(|run| run.last).max().unwrap_or(0);
        let newest_here = local
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(newest_pruned);
        if newest_here < anchor.last_id {
            found.push(format!(
                "the central anchor holds {what}s up to {}, this database only up to {newest_here}: its newest records were removed",
                anchor.last_id
            ));
        }
        if found.len() > max {
            let more = found.len() - max;
            found.truncate(max);
            found.push(format!("and {more} more differences in the {what}s"));
        }
        problems.extend(found);
    }
    Ok(problems)
}

/// The runs of `chain` that prunes deleted here, by their first id, as the
/// trace says (its own chain is checked by the local `verify`).
fn pruned_runs(
    db: &Database,
    chain: Chain,
) -> Result<BTreeMap<i64, crate::trace::PrunedRun>, crate::db::DbError> {
    let mut runs = BTreeMap::new();
    for stored in db.trace()? {
        let entry = &stored.entry;
        if entry.kind != crate::trace::PRUNE || entry.chain != chain.table() {
            continue;
        }
        if let Ok(detail) = serde_json::from_str::<crate::trace::PruneDetail>(&entry.detail) {
            runs.extend(detail.runs.into_iter().map(|run| (run.first, run)));
        }
    }
    Ok(runs)
}
