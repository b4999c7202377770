//! The spool: where every record (command or tmux event) goes first, one
//! JSON line each, beside the database (`history.db-spool`), or, when that
//! cannot be written (the database's directory read-only or full, the
//! spool locked for long), in `$XDG_STATE_HOME/tmux-audit/spool-<hash of
//! the database's path>.jsonl`.
//!
//! Appending a line costs a fraction of what opening SQLite does (reading
//! its schema, rebuilding its WAL index), so the per-command path only
//! appends, and moves the spool into the database in one transaction once
//! it has grown past [`MERGE_BYTES`] or its oldest record has waited
//! [`MERGE_AGE_US`]. Every reader (`search`, `report`, …) merges first, so
//! it sees everything recorded. A spool that cannot be merged (a database
//! that is read-only, damaged, on a full disk, or locked) waits for the
//! next try; a failed merge is noted, so that the per-command path tries
//! again at most once a minute and logs a failure once.
//!
//! Every writer and the merger hold an exclusive lock on the file; the
//! merger takes the database's write lock first, so appenders never wait
//! for the database. A record merged twice (a crash between the commit and
//! emptying the file) is recognised (a command by its shell session and
//! number, an event by its key) and stored once. A line that cannot be read
//! (cut short by a full disk) is moved to `<spool>.rejected`, never dropped.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use rusqlite::ErrorCode;

use rusqlite::OptionalExtension;

use crate::chain::{self, Hash, GENESIS};
use crate::db::{insert_entries, Database, DbError};
use crate::error_log;
use crate::paths;
use crate::private_files;
use crate::record::Entry;
use crate::text::hex;
use crate::trace::{self, SpoolBreakDetail, SpoolUnlinkedDetail, TraceEntry};

/// A spool this large is merged by the record that made it so: some forty
/// commands.
const MERGE_BYTES: u64 = 32 * 1024;

/// A spool whose oldest record waited this long (five minutes) is merged
/// by the next record, however small it is.
pub const MERGE_AGE_US: i64 = 5 * 60 * 1_000_000;

/// After a merge failed, the per-command path tries again after this long.
pub const RETRY_AFTER_US: i64 = 60 * 1_000_000;

/// How long an appender waits for the spool's lock before it writes to the
/// fallback spool instead.
const LOCK_WAIT: Duration = Duration::from_millis(50);

/// How long a merger, holding the database's write lock, waits for the
/// spool's (appenders hold it for a write each) before it leaves the spool
/// to the next merge.
const MERGE_LOCK_WAIT: Duration = Duration::from_millis(200);

/// `{"recorded_at_us": …, "record": {…}}` or `{…, "tmux_event": {…}}`.
/// `recorded_at_us` comes first: [`oldest_us`] reads it from the file's
/// first bytes.
#[derive(Serialize, Deserialize)]
struct Line {
    recorded_at_us: i64,
    #[serde(flatten)]
    entry: Entry,
}

/// The spool beside the database at `db`.
pub fn path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-spool");
    PathBuf::from(name)
}

/// Where records for the database at `db` go when the spool beside it
/// cannot be written: one file per database, named after its path (with
/// symbolic links in its directory resolved, so that every process agrees).
pub fn fallback_path(db: &Path) -> Result<PathBuf> {
    Ok(paths::state_dir()?.join(format!("spool-{}.jsonl", db_hash(db))))
}

/// The record of the last failed merge into `db`.
fn failure_path(db: &Path) -> Result<PathBuf> {
    Ok(paths::state_dir()?.join(format!("merge-failed-{}", db_hash(db))))
}

/// Notes that a background merge of `db`'s spool was started, and when.
fn merge_later_path(db: &Path) -> Result<PathBuf> {
    Ok(paths::state_dir()?.join(format!("merge-later-{}", db_hash(db))))
}

fn db_hash(db: &Path) -> String {
    hash_path(&resolved(db))
}

/// `db` with symbolic links in its directory resolved, when it exists.
fn resolved(db: &Path) -> PathBuf {
    let resolved = match (db.parent(), db.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .map(|dir| dir.join(name)),
        _ => Err(std::io::ErrorKind::NotFound.into()),
    };
    resolved
        .or_else(|_| std::path::absolute(db))
        .unwrap_or_else(|_| db.to_path_buf())
}

fn hash_path(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex(&digest)[..16].to_string()
}

/// Every spool of `db`, oldest records first: for the default database
/// the one spool of earlier versions, then the fallback, then the one
/// beside it.
fn paths_of(db: &Path) -> Vec<PathBuf> {
    let legacy = paths::default_database()
        .ok()
        .filter(|default| default == db)
        .and_then(|_| paths::state_dir().ok())
        .map(|dir| dir.join("spool.jsonl"));
    // The fallback spool was named before the database's directory existed
    // when it could not be made then: by the path as written.
    let unresolved = std::path::absolute(db)
        .ok()
        .filter(|p| *p != resolved(db))
        .and_then(|p| {
            Some(
                paths::state_dir()
                    .ok()?
                    .join(format!("spool-{}.jsonl", hash_path(&p))),
            )
        });
    legacy
        .into_iter()
        .chain(unresolved)
        .chain(fallback_path(db))
        .chain([path(db)])
        .collect()
}

/// Opens a spool file: never through a symbolic link, never a FIFO or a
/// device (which could hang), never a file of another user or one others
/// can write (whose lines would be sealed into the chain as ours); made
/// 0600 (see `private_files.rs`).
/// `write`: for appending or emptying it (and creating it if missing).
fn open_spool(path: &Path, write: bool) -> Result<File> {
    let file = if write {
        private_files::read_write(path, true)
    } else {
        private_files::read(path)
    };
    file.with_context(|| format!("cannot open {}", path.display()))
}

/// Entries appended, and whether the spool is due to be merged.
pub struct Kept {
    pub path: PathBuf,
    pub due: bool,
    /// The spool was empty before: its first record since the last merge.
    pub first: bool,
    /// So much waits (after a long outage) that merging it would hold up
    /// the prompt: it is for a merge in the background.
    pub backlog: bool,
}

/// More than this waiting is merged in the background, not by a prompt.
const BACKLOG_BYTES: u64 = 256 * 1024;

/// Appends entries to the spool of `db`, a line each: beside the database,
/// or in the fallback spool when that cannot be written.
pub fn keep(db: &Path, entries: &[Entry], recorded_at_us: i64) -> Result<Kept> {
    let mut lines = Vec::new();
    for entry in entries {
        lines.push(serde_json::to_vec(&Line {
            recorded_at_us,
            entry: entry.clone(),
        })?);
    }
    let beside = path(db);
    // The database's directory, made as the database would make it.
    let dir_ready = match db.parent() {
        // One `stat`: a directory another user can write is not used.
        Some(dir) if !dir.as_os_str().is_empty() => private_files::dir(dir).is_ok(),
        _ => true,
    };
    let appended = if dir_ready {
        append(&beside, &lines).ok()
    } else {
        None
    };
    if let Some((len, written, oldest)) = appended {
        let first = len == written;
        let fallback_len = fallback_path(db)
            .ok()
            .and_then(|f| fs::metadata(f).ok())
            .map_or(0, |m| m.len());
        let fallback_waits = fallback_len > 0;
        // The first record makes the database.
        let due = len >= MERGE_BYTES
            || fallback_waits
            || !db.exists()
            || oldest.is_some_and(|oldest| recorded_at_us - oldest >= MERGE_AGE_US);
        return Ok(Kept {
            path: beside,
            due,
            first,
            backlog: len + fallback_len > BACKLOG_BYTES,
        });
    }
    let fallback = fallback_path(db)?;
    if let Some(dir) = fallback.parent() {
        private_files::dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (len, _, _) = append(&fallback, &lines)?;
    Ok(Kept {
        path: fallback,
        due: true,
        first: false,
        backlog: len > BACKLOG_BYTES,
    })
}

/// Appends `lines` (each a [`Line`] as JSON) to the spool at `path` under
/// its lock, each ended with its link (see [`link_line`]); its length after,
/// and how many bytes were written. A line cut short earlier (a full disk)
/// is ended first, so that it cannot swallow this one; a write that fails
/// is taken back whole. Also when its first record was recorded, read
/// while the file is open.
fn append(path: &Path, lines: &[Vec<u8>]) -> Result<(u64, u64, Option<i64>)> {
    let file = open_spool(path, true)?;
    lock_within(&file, LOCK_WAIT).with_context(|| format!("cannot lock {}", path.display()))?;
    let len = file.metadata()?.len();
    // The last line's end: whether it is whole, and its link.
    let mut tail = [0u8; LINK_SUFFIX_LEN + 1];
    let tail_len = (len as usize).min(tail.len());
    let tail = &mut tail[..tail_len];
    file.read_exact_at(tail, len - tail_len as u64)?;
    let cut_short = tail.last().is_some_and(|&b| b != b'\n');
    let mut prev = match cut_short {
        false => tail
            .strip_suffix(b"\n")
            .and_then(|t| split_link(t).map(|(_, link)| link))
            .unwrap_or(GENESIS),
        true => GENESIS,
    };
    let mut bytes = Vec::with_capacity(
        lines
            .iter()
            .map(|l| l.len() + LINK_SUFFIX_LEN + 1)
            .sum::<usize>()
            + 1,
    );
    if cut_short {
        bytes.push(b'\n');
    }
    for line in lines {
        prev = link_line(&mut bytes, &prev, line);
    }
    if let Err(err) = file.write_all_at(&bytes, len) {
        let _ = file.set_len(len);
        return Err(err).with_context(|| format!("cannot write {}", path.display()));
    }
    let written = bytes.len() as u64;
    Ok((len + written, written, oldest_in(&file)))
}

/// `,"link":"<64 hex digits>"}`: how every line written since schema 9 ends.
const LINK_SUFFIX_LEN: usize = 75;

/// Appends `content` (a JSON object) to `out` as a spool line ending with
/// its link: the hash of the content after `prev`, the link of the line
/// before it in the file (see `chain::link_spool_line`). Returns the link.
/// A line edited, removed, inserted or moved then breaks a link, and the
/// merge names it.
fn link_line(out: &mut Vec<u8>, prev: &Hash, content: &[u8]) -> Hash {
    let link = chain::link_spool_line(prev, content);
    out.extend_from_slice(&content[..content.len() - 1]);
    out.extend_from_slice(b",\"link\":\"");
    out.extend_from_slice(hex(&link).as_bytes());
    out.extend_from_slice(b"\"}\n");
    link
}

/// A spool line's content (the line without its link) and its link; None
/// for a line without one (written before schema 9, or not by tmux-audit).
fn split_link(line: &[u8]) -> Option<(Vec<u8>, Hash)> {
    let at = line.len().checked_sub(LINK_SUFFIX_LEN)?;
    let suffix = &line[at..];
    let digits = suffix.strip_prefix(b",\"link\":\"")?.strip_suffix(b"\"}")?;
    let link = chain::parse_hex(digits)?;
    let mut content = line[..at].to_vec();
    content.push(b'}');
    Some((content, link))
}

/// What a spool line turned out to be.
enum LineRead {
    /// A record, and whether its link was the one expected here.
    Record(Box<Line>, Link),
    /// Not a record (cut short by a full disk, or not JSON): set aside.
    Damaged,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    Follows,
    /// Edited, or a line before it removed, inserted or moved.
    Broken,
    /// No link at all.
    Missing,
}

/// Reads a spool's lines and checks each link against the line before:
/// (line number from 1, the line's bytes, what it is). A line after one
/// that carries no link may start a new chain (its writer could not link
/// to it): the first line of an emptied spool, one after a line cut short.
fn read_lines(bytes: &[u8]) -> Vec<(usize, &[u8], LineRead)> {
    let mut prev = GENESIS;
    let mut out = Vec::new();
    for (number, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let read = match split_link(raw) {
            Some((content, link)) => match serde_json::from_slice::<Line>(&content) {
                Ok(line) => {
                    let line = Box::new(line);
                    let follows = chain::link_spool_line(&prev, &content) == link;
                    prev = link;
                    LineRead::Record(line, if follows { Link::Follows } else { Link::Broken })
                }
                Err(_) => {
                    prev = GENESIS;
                    LineRead::Damaged
                }
            },
            None => {
                prev = GENESIS;
                match serde_json::from_slice::<Line>(raw) {
                    Ok(line) => LineRead::Record(Box::new(line), Link::Missing),
                    Err(_) => LineRead::Damaged,
                }
            }
        };
        out.push((number + 1, raw, read));
    }
    out
}

/// Whether a spooled record's link is a break worth naming. A line without
/// a link is accepted only when it was spooled before the database's trace
/// began (`trace_start_us`: written by the tmux-audit before the upgrade).
fn link_problem(line: &Line, link: Link, trace_start_us: Option<i64>) -> Option<&'static str> {
    match link {
        Link::Follows => None,
        Link::Broken => Some("changed"),
        Link::Missing if trace_start_us.is_some_and(|start| line.recorded_at_us < start) => None,
        Link::Missing => Some("unlinked"),
    }
}

/// The links of the records still waiting in the spools of `db`, checked
/// where they are (for `verify`, when the database could not take them):
/// a line each whose link is broken. `trace_start_us`: see [`link_problem`].
pub fn check_links(db: &Path, trace_start_us: Option<i64>) -> Vec<String> {
    let mut problems = Vec::new();
    for path in paths_of(db) {
        let Ok(mut file) = open_spool(&path, false) else {
            continue;
        };
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            continue;
        }
        // A line being appended right now is not whole yet.
        let whole = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |end| end + 1);
        for (number, _, read) in read_lines(&bytes[..whole]) {
            let LineRead::Record(line, link) = read else {
                continue;
            };
            if let Some(problem) = link_problem(&line, link, trace_start_us) {
                problems.push(format!(
                    "line {number} of {} ({}, waiting to be merged) {}",
                    path.display(),
                    line.entry.describe(),
                    describe_problem(problem)
                ));
            }
        }
    }
    problems
}

/// What a spool line's problem (`changed`, `unlinked`) means, for people.
pub fn describe_problem(problem: &str) -> &'static str {
    match problem {
        "unlinked" => "carries no link: it was not written by tmux-audit",
        _ => "was changed, or a line before it was removed or moved",
    }
}

/// When the first record in the spool was recorded, from its first line.
fn oldest_us(path: &Path) -> Option<i64> {
    oldest_in(&open_spool(path, false).ok()?)
}

fn oldest_in(file: &File) -> Option<i64> {
    let mut head = [0u8; 64];
    let n = file.read_at(&mut head, 0).ok()?;
    let head = std::str::from_utf8(&head[..n]).ok()?;
    let digits = head.strip_prefix("{\"recorded_at_us\":")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// How many records wait in the spools of `db`, and since when.
pub fn waiting(db: &Path) -> (usize, Option<i64>) {
    let mut count = 0;
    let mut oldest: Option<i64> = None;
    for path in paths_of(db) {
        let mut text = Vec::new();
        let Ok(mut file) = open_spool(&path, false) else {
            continue;
        };
        if file.read_to_end(&mut text).is_err() {
            continue;
        }
        let lines = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .count();
        if lines > 0 {
            count += lines;
            if let Some(first) = oldest_us(&path) {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
            }
        }
    }
    (count, oldest)
}

/// Whether a background merge of the spool of `db` should be started: none
/// was started in the last [`MERGE_AGE_US`] (noted in a file, so that many
/// shells start one between them).
pub fn merge_later_needed(db: &Path) -> bool {
    let Ok(path) = merge_later_path(db) else {
        return false;
    };
    let pending = fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_micros() < MERGE_AGE_US as u128);
    !pending && private_files::write(&path, b"").is_ok()
}

/// Notes (again) that a background merge of `db`'s spool is pending.
pub fn merge_later_noted(db: &Path) {
    if let Ok(path) = merge_later_path(db) {
        let _ = private_files::write(&path, b"");
    }
}

/// Whether any spool of `db` holds anything: a `stat` each.
pub fn holds_records(db: &Path) -> bool {
    paths_of(db)
        .iter()
        .any(|p| fs::symlink_metadata(p).is_ok_and(|m| m.len() > 0))
}

/// The background merge ran: the next first record may start another.
pub fn merge_later_done(db: &Path) {
    if let Ok(path) = merge_later_path(db) {
        let _ = fs::remove_file(path);
    }
}

/// The last failed merge into `db`: when, and why.
pub fn last_failure(db: &Path) -> Option<(i64, String)> {
    let text = fs::read_to_string(failure_path(db).ok()?).ok()?;
    let (at, why) = text.split_once('\n')?;
    Some((at.parse().ok()?, why.to_string()))
}

/// Notes that a merge into `db` failed; true when the reason is new (worth
/// a line in the log).
pub fn note_failure(db: &Path, at_us: i64, why: &str) -> bool {
    let new = last_failure(db).is_none_or(|(_, before)| before != why);
    if let Ok(path) = failure_path(db) {
        let _ = private_files::write(&path, format!("{at_us}\n{why}").as_bytes());
    }
    new
}

/// Forgets the last failure: the merge worked.
pub fn clear_failure(db: &Path) {
    if let Ok(path) = failure_path(db) {
        let _ = fs::remove_file(path);
    }
}

/// Moves every spooled entry into `db` (the database at `db_path`); returns
/// how many were new. Cheap when there is nothing to merge: a `stat` per
/// spool. A spool file that cannot be read is named in the log and left as
/// it is; the error returned is the database's.
pub fn merge(db: &mut Database, db_path: &Path) -> Result<usize, DbError> {
    let mut merged = 0;
    for path in paths_of(db_path) {
        merged += merge_file(db, &path)?;
    }
    Ok(merged)
}

fn merge_file(db: &mut Database, path: &Path) -> Result<usize, DbError> {
    if fs::symlink_metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(0);
    }
    // The database's write lock first, then the spool's: appenders wait
    // only for the insert, never for another writer of the database.
    let outcome = db.write(|tx| {
        let file = match open_spool(path, true) {
            Ok(file) => file,
            Err(err) => {
                error_log::append(
                    "spool",
                    &format!("{err:#}; its records were not merged"),
                    "move it aside if it is not yours; check the permissions of its directory",
                );
                return Ok(None);
            }
        };
        let mut bytes = Vec::new();
        if let Err(err) = lock_within(&file, MERGE_LOCK_WAIT).and_then(|()| (&file).read_to_end(&mut bytes)) {
            error_log::append(
                "spool",
                &format!("cannot read {}: {err}; its records were not merged", path.display()),
                "check the permissions of the spool and its directory",
            );
            return Ok(None);
        }
        let trace_start_us: Option<i64> = tx
            .query_row(
                "SELECT at_us FROM chain_trace WHERE kind = ?1 ORDER BY id LIMIT 1",
                [trace::CHAIN_START],
                |r| r.get(0),
            )
            .optional()?;
        let mut lines = Vec::new();
        let mut rejected = Vec::new();
        for (number, raw, read) in read_lines(&bytes) {
            match read {
                LineRead::Record(line, link) => {
                    let problem = link_problem(&line, link, trace_start_us);
                    lines.push((number, *line, link, problem));
                }
                LineRead::Damaged => rejected.push(raw),
            }
        }
        // Each entry in a savepoint of its own: one the database refuses
        // (a constraint it breaks) is set aside, not allowed to keep the
        // others out. Any other failure (busy, read-only, full) ends the
        // merge, and the spool stays as it is.
        let mut merged = 0;
        let mut refused: Vec<Vec<u8>> = Vec::new();
        // Records stored from lines without links that predate the trace.
        let mut unlinked = Vec::new();
        for (number, line, link, problem) in &lines {
            tx.execute_batch("SAVEPOINT entry")?;
            match insert_entries(tx, [(&line.entry, line.recorded_at_us)]) {
                Ok(n) => {
                    match (n, problem) {
                        (1, Some(problem)) => note_break(tx, path, *number, line, problem)?,
                        (1, None) if *link == Link::Missing => {
                            unlinked.push((chain_of(&line.entry), tx.last_insert_rowid()));
                        }
                        _ => {}
                    }
                    tx.execute_batch("RELEASE entry")?;
                    merged += n;
                }
                Err(err) if err.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    tx.execute_batch("ROLLBACK TO entry; RELEASE entry")?;
                    refused.push(serde_json::to_vec(&line).unwrap_or_default());
                }
                Err(err) => return Err(err.into()),
            }
        }
        note_unlinked(tx, path, &unlinked)?;
        rejected.extend(refused.iter().map(Vec::as_slice));
        let set_aside = rejected.is_empty() || reject(path, &rejected);
        if merged < lines.len() {
            error_log::append(
                "spool",
                &format!(
                    "{} of the {} records in {} were stored before; the copies were dropped",
                    lines.len() - merged,
                    lines.len(),
                    path.display()
                ),
                "a zsh recorder that stopped had its last command recorded again, an earlier merge was cut short, or the hook is loaded twice in a way it cannot detect (check the shell's rc files)",
            );
        }
        Ok(Some((file, merged, set_aside)))
    })?;
    let Some((file, merged, set_aside)) = outcome else {
        return Ok(0);
    };
    if !set_aside {
        // The lines that are not records would be lost with the spool:
        // keep it (its records are stored, and the next merge skips them).
        return Ok(merged);
    }
    // Stored: the spool can go. (Should this fail, the next merge finds the
    // same records stored, and stores each once.)
    if let Err(err) = file.set_len(0) {
        error_log::append(
            "spool",
            &format!("cannot empty {}: {err}", path.display()),
            "its records are stored; make the file writable",
        );
    }
    Ok(merged)
}

/// A record stored from a spool line whose link was broken: named in the
/// log now, and by every `verify` from now on (a `spool-break` entry in the
/// trace, naming the row it became).
fn note_break(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    number: usize,
    line: &Line,
    problem: &str,
) -> rusqlite::Result<()> {
    let (chain, id) = (chain_of(&line.entry), tx.last_insert_rowid());
    let (user, uid) = trace::who();
    let detail = SpoolBreakDetail {
        spool: path.display().to_string(),
        line: number,
        problem: problem.to_string(),
    };
    let what = line.entry.describe();
    let how = describe_problem(problem);
    crate::db::append_trace(
        tx,
        &TraceEntry {
            kind: trace::SPOOL_BREAK.into(),
            chain: chain.into(),
            first_id: Some(id),
            last_id: Some(id),
            at_us: crate::store::now_us(),
            user,
            uid,
            reason: format!("line {number} of the spool ({what}) {how}"),
            detail: serde_json::to_string(&detail).unwrap_or_default(),
        },
    )?;
    error_log::append(
        "spool",
        &format!("line {number} of {} ({what}) {how}; stored, and named by `tmux-audit verify`", path.display()),
        "someone with write access to the spool changed it: keep the file for inspection, and check who can write to its directory",
    );
    Ok(())
}

/// The chain an entry goes into.
fn chain_of(entry: &Entry) -> &'static str {
    match entry {
        Entry::Command(_) => "commands",
        Entry::TmuxEvent(_) => "tmux_events",
    }
}

/// Records stored from lines without links, accepted as spooled by the
/// tmux-audit before the upgrade (see [`link_problem`]): not a break, but
/// not vouched for by a link either, so the trace says which they are
/// (an entry per chain) and `verify` lists them.
fn note_unlinked(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    stored: &[(&'static str, i64)],
) -> rusqlite::Result<()> {
    for chain in ["commands", "tmux_events"] {
        let ids: Vec<i64> = stored
            .iter()
            .filter(|(c, _)| *c == chain)
            .map(|(_, id)| *id)
            .collect();
        let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else {
            continue;
        };
        let (user, uid) = trace::who();
        let detail = SpoolUnlinkedDetail {
            spool: path.display().to_string(),
            lines: ids.len(),
        };
        crate::db::append_trace(
            tx,
            &TraceEntry {
                kind: trace::SPOOL_UNLINKED.into(),
                chain: chain.into(),
                first_id: Some(*first),
                last_id: Some(*last),
                at_us: crate::store::now_us(),
                user,
                uid,
                reason: format!(
                    "{} line(s) of the spool had no link: spooled before the upgrade to schema 9",
                    ids.len()
                ),
                detail: serde_json::to_string(&detail).unwrap_or_default(),
            },
        )?;
    }
    Ok(())
}

/// Lines that are not records (cut short by a full disk, say) go to
/// `<spool>.rejected` for a person to look at, never away; false when they
/// could not be written there.
fn reject(path: &Path, lines: &[&[u8]]) -> bool {
    let mut name = path.as_os_str().to_os_string();
    name.push(".rejected");
    let rejected = PathBuf::from(name);
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    let kept = private_files::append(&rejected).and_then(|mut f| f.write_all(&bytes));
    error_log::append(
        "spool",
        &format!(
            "{} line(s) of {} are not records{}",
            lines.len(),
            path.display(),
            match &kept {
                Ok(()) => format!("; moved to {}", rejected.display()),
                Err(err) => format!(" and could not be moved aside ({err}): the spool is kept"),
            }
        ),
        "the disk may have been full when they were written",
    );
    kept.is_ok()
}

/// Takes the file's lock, waiting at most `wait`.
fn lock_within(file: &File, wait: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another process holds its lock",
                ));
            }
            Err(fs::TryLockError::Error(err)) => return Err(err),
        }
    }
}

/// Records still in the spool after a reader's merge, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillWaiting {
    pub count: usize,
    pub why: String,
}

impl std::fmt::Display for StillWaiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.count;
        write!(
            f,
            "{n} record{} waiting in the spool {} not in the database yet ({})",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" },
            self.why
        )
    }
}

/// What every reader does first: merges the spool (each reader sees every
/// record that waits), and opens the database. What could not be merged is
/// returned for the caller to tell.
pub fn open_merged(path: &Path) -> Result<(Database, Option<StillWaiting>)> {
    if waiting(path).0 == 0 {
        return Ok((Database::open_existing(path)?, None));
    }
    let merged = Database::open(path).and_then(|mut db| {
        merge(&mut db, path)?;
        db.fold_wal();
        clear_failure(path);
        Ok(db)
    });
    let (db, why) = match merged {
        Ok(db) => (db, "see `tmux-audit doctor`".to_string()),
        Err(err) => match Database::open_existing(path) {
            Ok(db) => (db, err.to_string()),
            // None to read, and none could be made: why is the answer,
            // and the records are not lost.
            Err(DbError::Missing { .. }) => {
                let (count, _) = waiting(path);
                anyhow::bail!(
                    "{err}; {count} record{} wait{} in the spool until it can be made: fix the \
                     path or set TMUX_AUDIT_DB (`tmux-audit doctor` says more)",
                    if count == 1 { "" } else { "s" },
                    if count == 1 { "s" } else { "" },
                )
            }
            Err(other) => return Err(other.into()),
        },
    };
    let (count, _) = waiting(path);
    Ok((db, (count > 0).then_some(StillWaiting { count, why })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linked(texts: &[&str]) -> Vec<Vec<u8>> {
        let mut prev = GENESIS;
        texts
            .iter()
            .map(|text| {
                let content = serde_json::to_vec(&Line {
                    recorded_at_us: 1,
                    entry: Entry::TmuxEvent(crate::lifecycle::TmuxEvent {
                        event: text.to_string(),
                        ..Default::default()
                    }),
                })
                .unwrap();
                let mut line = Vec::new();
                prev = link_line(&mut line, &prev, &content);
                line.pop();
                assert_eq!(split_link(&line), Some((content, prev)));
                line
            })
            .collect()
    }

    fn links(lines: &[Vec<u8>]) -> Vec<Option<Link>> {
        read_lines(&lines.join(&b'\n'))
            .into_iter()
            .map(|(_, _, read)| match read {
                LineRead::Record(_, link) => Some(link),
                LineRead::Damaged => None,
            })
            .collect()
    }

    #[test]
    fn each_line_links_to_the_one_before() {
        use Link::*;
        let lines = linked(&["a", "b", "c"]);
        assert_eq!(links(&lines), [Some(Follows); 3]);
        // Edited: only that line is named; the ones after follow it.
        let mut edited = lines.clone();
        edited[1] = String::from_utf8(edited[1].clone())
            .unwrap()
            .replace("\"b\"", "\"x\"")
            .into_bytes();
        assert_eq!(links(&edited), [Some(Follows), Some(Broken), Some(Follows)]);
        // Removed, or moved: the line that no longer follows is named.
        assert_eq!(links(&lines[1..]), [Some(Broken), Some(Follows)]);
        let moved = vec![lines[1].clone(), lines[0].clone(), lines[2].clone()];
        assert_eq!(links(&moved), [Some(Broken), Some(Broken), Some(Broken)]);
        // A line without a link (an older tmux-audit), or one cut short:
        // the next line's writer could only start a new chain.
        let mut old = lines[0].clone();
        old.truncate(old.len() - LINK_SUFFIX_LEN);
        old.push(b'}');
        let fresh = linked(&["d"]);
        assert_eq!(
            links(&[old, fresh[0].clone()]),
            [Some(Missing), Some(Follows)]
        );
        assert_eq!(
            links(&[b"{\"recorded_at".to_vec(), fresh[0].clone()]),
            [None, Some(Follows)]
        );
    }

    #[test]
    fn lines_written_before_tmux_events_existed_still_read_as_commands() {
        // A spool line as tmux-audit wrote it before schema 7.
        let old = r#"{"recorded_at_us":5,"record":{"command":"ls","command_raw":[255],"exit_status":0,
            "started_at_us":1,"duration_us":2,"cwd":"/","cwd_raw":null,"user":"u","uid":1,
            "login_uid":null,"sudo_user":null,"host":"h","shell":"bash","shell_session":"s","seq":3,
            "tty":null,"ssh_connection":null,"tmux_socket":null,"tmux_server_pid":null,
            "tmux_session_id":null,"tmux_pane":null,"redacted":true}}"#;
        let line: Line = serde_json::from_str(old).unwrap();
        assert_eq!(line.recorded_at_us, 5);
        let Entry::Command(record) = line.entry else {
            panic!("not a command");
        };
        assert_eq!((record.seq, record.redacted), (3, true));
        assert_eq!(record.command_raw.as_deref(), Some(&[255][..]));
        // And what is written now reads back the same.
        let again: Line = serde_json::from_str(
            &serde_json::to_string(&Line {
                recorded_at_us: 5,
                entry: Entry::Command(record.clone()),
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(again.entry, Entry::Command(record));
    }
}
