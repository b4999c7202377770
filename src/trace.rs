//! The checked trace: chained entries that say what was changed in the
//! records' chains after they were written, by whom, when and why, so that
//! `verify` tells a change made on purpose from tampering.
//!
//! Each entry names a chain (`commands`, `tmux_events`), the rows it
//! concerns (`first_id` to `last_id`) and, in `detail` (JSON, hashed as
//! stored), what exactly changed: enough for `verify` to check that the
//! rows' hashes are explained by it. The entries have a hash chain of
//! their own (see `chain.rs`), covered by `anchor`.
//!
//! Kinds:
//! - `chain-start`: written when the database is made or upgraded to
//!   schema 9. Fixes which rows without hashes predate the chain (their
//!   number, ids and a digest of their content): any other row without a
//!   hash is a forgery.
//! - `redaction`: `tmux-audit redact` rewrote a command's text; the row
//!   keeps its hash (later rows link to it), and the entry holds the hash
//!   of its content before and after.
//! - `spool-break`: a spool line did not carry the link it was written
//!   with (edited, removed, moved or forged before the merge); the record
//!   it became is named by every `verify` from then on.
//!
//! - `spool-unlinked`: records merged from spool lines without links that
//!   say they were spooled before the trace began (by the tmux-audit
//!   before the upgrade): accepted, and listed by `verify`.
//!
//! - `prune`: `tmux-audit prune` (or the daily prune of `[retention]`)
//!   deleted old rows. `first_id` to `last_id` span them; `detail` holds
//!   how many went and each run of consecutive rows that went (its first
//!   and last id, the link its first row had, the hash of its last row),
//!   so that `verify` can step over the gap from the row before it to the
//!   row after it and still prove that nothing else was removed (see
//!   [`PruneDetail`]).
//!
//! Every entry is made the same way, by [`TraceEntry::now`]: who and when
//! from this process, the kind's detail as JSON. `redact` and `prune` are
//! the two changes made on purpose, and leave the same kind of trace.

use serde::{Deserialize, Serialize};

use crate::chain::Hash;
use crate::text::hex;

/// One trace entry, as stored (without its id and links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    pub kind: String,
    pub chain: String,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    pub at_us: i64,
    /// Who made the change: the user name and uid of the process.
    pub user: String,
    pub uid: i64,
    pub reason: String,
    /// JSON, one of the `*Detail` types below, by kind.
    pub detail: String,
}

pub const CHAIN_START: &str = "chain-start";
pub const REDACTION: &str = "redaction";
pub const SPOOL_BREAK: &str = "spool-break";
pub const SPOOL_UNLINKED: &str = "spool-unlinked";
pub const PRUNE: &str = "prune";

impl TraceEntry {
    /// An entry for a change this process makes now: who (its user and
    /// uid) and when are filled in, `detail` is stored as JSON.
    pub fn now(
        kind: &str,
        chain: &str,
        (first_id, last_id): (Option<i64>, Option<i64>),
        reason: &str,
        detail: &impl Serialize,
    ) -> TraceEntry {
        let (user, uid) = who();
        TraceEntry {
            kind: kind.into(),
            chain: chain.into(),
            first_id,
            last_id,
            at_us: crate::store::now_us(),
            user,
            uid,
            reason: reason.into(),
            detail: serde_json::to_string(detail).unwrap_or_default(),
        }
    }
}

/// `chain-start`: the rows without hashes that predate the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStartDetail {
    /// How many rows had no hash when the trace began.
    pub unchained: u64,
    /// The hash chain over those rows (as if chained from GENESIS), in hex;
    /// None when there are none.
    pub unchained_digest: Option<String>,
}

/// `redaction`: one rewrite of one command's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionDetail {
    /// The row's hash in the chain (unchanged: later rows link to it).
    pub row_hash: String,
    /// The hash of the row's content before this redaction and after it.
    pub content_hash_before: String,
    pub content_hash_after: String,
    /// SHA-256 of the text before and after.
    pub text_sha256_before: String,
    pub text_sha256_after: String,
    /// How many matches of a pattern were replaced; None: the whole text.
    /// (Not the pattern itself: it is often the secret, spelled out.)
    pub matches: Option<usize>,
}

/// `spool-break`: a spool line that did not carry the right link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolBreakDetail {
    pub spool: String,
    /// The line's number in the spool file, from 1.
    pub line: usize,
    /// `changed` (edited, or a line before it removed or moved) or
    /// `unlinked` (no link: not written by this tmux-audit).
    pub problem: String,
}

/// `spool-unlinked`: records from spool lines written before links existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolUnlinkedDetail {
    pub spool: String,
    /// How many lines (the rows `first_id` to `last_id` hold them).
    pub lines: usize,
}

/// `prune`: rows of one chain deleted on purpose because they were old.
///
/// The rows of a chain have consecutive ids, and each links to the hash
/// of the one before it. A run of pruned rows leaves a gap in the ids;
/// the run's `prev` (the link its first row had) must be the hash of the
/// row before the gap, and its `hash` (its last row's) is the link of the
/// row after it. `verify` walks the kept rows and, at a gap, steps over
/// the runs that fill it exactly: a row deleted without a prune leaves a
/// gap no run fills, and is named. Keeping `prev` also keeps the row
/// before the gap honest: rewritten with a new hash, it no longer gives
/// the link the run recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneDetail {
    /// Rows whose time was before this (µs since the epoch) were pruned.
    pub before_us: i64,
    /// How many rows went (the runs' lengths add up to it).
    pub pruned: u64,
    /// How many rows as old were kept by `keep`.
    pub kept: u64,
    /// What kept them: `failed` (a non-zero exit), `matching <regex>`.
    pub keep: Vec<String>,
    /// SHA-256 over the pruned rows' ids and hashes, in chain order: a
    /// copy of them kept elsewhere (an export, a backup) can be checked
    /// against it.
    pub rows_digest: String,
    pub runs: Vec<PrunedRun>,
}

/// Consecutive rows of a chain that a prune deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedRun {
    pub first: i64,
    pub last: i64,
    /// The link of its first row: the hash of the row before it (hex).
    pub prev: String,
    /// The hash of its last row: the link of the row after it (hex).
    pub hash: String,
}

impl PrunedRun {
    pub fn rows(&self) -> u64 {
        u64::try_from(self.last - self.first + 1).unwrap_or(0)
    }
}

impl RedactionDetail {
    pub fn new(
        row_hash: &Hash,
        before: (&Hash, &Hash),
        after: (&Hash, &Hash),
        matches: Option<usize>,
    ) -> RedactionDetail {
        RedactionDetail {
            row_hash: hex(row_hash),
            content_hash_before: hex(before.0),
            text_sha256_before: hex(before.1),
            content_hash_after: hex(after.0),
            text_sha256_after: hex(after.1),
            matches,
        }
    }
}

/// The user running this process: name and uid.
pub fn who() -> (String, i64) {
    // SAFETY: getuid cannot fail and has no preconditions.
    let uid = unsafe { libc::getuid() };
    (crate::context::user_name(uid), i64::from(uid))
}
