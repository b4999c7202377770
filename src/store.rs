//! Getting entries (commands, tmux events) into the database without
//! making the caller wait or print: the shell hooks and tmux hooks call this
//! on every command and event. Entries are appended to the spool
//! (`spool.rs`), which is merged into the database when it is due, with a
//! short wait for the lock; a merge that fails leaves them there for the
//! next. Only when the spool cannot be written do entries go to the
//! database directly, and a database that then stays locked is waited for
//! by a detached `record-later`. Every failure and panic goes to the log.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

use crate::db::{Database, DbError};
use crate::error_log;
use crate::record::Entry;
use crate::spool;

/// How long a handed-over entry waits for a locked database.
const LATER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a merge on the per-command path waits for another writer
/// before it leaves the spool to the next try.
const MERGE_WAIT: Duration = Duration::from_millis(20);

/// Stores entries without making the caller wait: they are appended to the
/// spool, which is merged into the database when it is due (see
/// `spool.rs`). Only when the spool cannot be written do they go to the
/// database directly; a database that then stays locked is waited for by a
/// detached `record-later`.
pub fn save(path: &Path, entries: &[Entry]) -> Result<()> {
    let recorded_at_us = now_us();
    match spool::keep(path, entries, recorded_at_us) {
        Ok(kept) => {
            let merged = kept.due && !kept.backlog && merge_due(path, MERGE_WAIT);
            // A merge in the background: at once for a backlog too large
            // for a prompt to wait for; for the first record of a batch, or
            // one whose merge found the database busy, after the longest a
            // record should wait (nothing else may merge it sooner).
            let later = match () {
                _ if kept.due && kept.backlog => Some(0),
                _ if (kept.due && !merged) || (kept.first && !kept.due) => {
                    Some(spool::MERGE_AGE_US / 1_000_000)
                }
                _ => None,
            };
            if let Some(after) = later.filter(|_| spool::merge_later_needed(path))
                && let Err(err) = spawn_merge_later(path, after)
            {
                error_log::append(
                    "record",
                    &format!("cannot start a background merge: {err:#}"),
                    "the spool is merged by the next search or the fortieth command",
                );
            }
            Ok(())
        }
        Err(spool_err) => direct(path, entries, recorded_at_us)
            .with_context(|| format!("the spool could not take it ({spool_err:#})")),
    }
}

/// Moves the spool into the database. A database that another process
/// keeps busy leaves it for the next try, quietly; one that cannot take
/// writes at all (read-only, damaged, full) is tried again once a minute,
/// and named in the log once per reason.
/// True when the spool was merged. `wait`: for another writer.
pub fn merge_due(path: &Path, wait: Duration) -> bool {
    let now = now_us();
    if spool::last_failure(path).is_some_and(|(at, _)| now - at < spool::RETRY_AFTER_US) {
        return false;
    }
    match store(path, &[], now, Some(wait)) {
        Ok(_) => {
            spool::clear_failure(path);
            true
        }
        Err(err) if err.is_busy() => false,
        Err(err) => {
            if spool::note_failure(path, now, &err.to_string()) {
                error_log::append(
                    "record",
                    &format!(
                        "cannot move the spool into {}: {err} (the records wait in the spool; tried again once a minute)",
                        path.display()
                    ),
                    err.hint(),
                );
            }
            false
        }
    }
}

/// Stores entries straight into the database (the spool could not take
/// them), waiting in the background for a lock that is held too long.
fn direct(path: &Path, entries: &[Entry], recorded_at_us: i64) -> Result<()> {
    match store(path, entries, recorded_at_us, None) {
        Err(err) if err.is_busy() => match hand_over(path, entries, recorded_at_us) {
            Ok(()) => Ok(()),
            Err(hand_over_err) => {
                finish(path, entries, recorded_at_us, Err(err)).with_context(|| {
                    format!("waiting for the lock in the background failed ({hand_over_err:#})")
                })
            }
        },
        result => finish(path, entries, recorded_at_us, result),
    }
}

/// `record-later`: stores entries handed over by [`save`], waiting up to a
/// minute for the lock. `recorded_at_us`: when `save` first tried.
pub fn save_waiting(path: &Path, entries: &[Entry], recorded_at_us: i64) -> Result<()> {
    let result = store(path, entries, recorded_at_us, Some(LATER_TIMEOUT));
    finish(path, entries, recorded_at_us, result)
}

/// Opens the database, inserts the entries and merges the spool; how many
/// entries were new.
fn store(
    path: &Path,
    entries: &[Entry],
    recorded_at_us: i64,
    wait: Option<Duration>,
) -> Result<usize, DbError> {
    // While another process is creating the database, it can vanish and
    // appear between two system calls of ours ("unable to open", or a
    // read-only view of a file that was linked into place): try again
    // before calling it a failure. A database that really is read-only costs
    // the two short waits.
    let mut attempt = 0;
    loop {
        match store_once(path, entries, recorded_at_us, wait) {
            Err(err) if attempt < 2 && err.may_be_creation_race() => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn store_once(
    path: &Path,
    entries: &[Entry],
    recorded_at_us: i64,
    wait: Option<Duration>,
) -> Result<usize, DbError> {
    let mut db = match wait {
        Some(timeout) => Database::open_waiting(path, timeout)?,
        None => Database::open(path)?,
    };
    let inserted = if entries.is_empty() {
        0
    } else {
        db.insert_all(entries.iter().map(|e| (e, recorded_at_us)))?
    };
    // The database takes writes: bring in what waits in the spool.
    let merged = spool::merge(&mut db, path);
    db.fold_wal();
    match merged {
        Ok(_) => Ok(inserted),
        // The entries given are stored: the spool's trouble is for the log.
        Err(err) if !entries.is_empty() => {
            error_log::append(
                "record",
                &format!("cannot move the spool into {}: {err}", path.display()),
                "the spool is merged again later",
            );
            Ok(inserted)
        }
        Err(err) => Err(err),
    }
}

/// Ends the direct path: Ok for stored entries (and a note in the log for
/// duplicates); entries the database did not take are kept in the spool if
/// it takes them now, and the error returned. `recorded_at_us`: when the
/// first attempt to store them was made.
fn finish(
    path: &Path,
    entries: &[Entry],
    recorded_at_us: i64,
    result: Result<usize, DbError>,
) -> Result<()> {
    match result {
        Ok(new) if new == entries.len() => Ok(()),
        Ok(_) => {
            let what: Vec<String> = entries.iter().map(Entry::describe).collect();
            error_log::append(
                "record",
                &format!(
                    "some of {} were already recorded; the second copies were dropped",
                    what.join(", ")
                ),
                "the hook may be loaded twice in a way it cannot detect; check the shell's rc files",
            );
            Ok(())
        }
        Err(err) => {
            let kept = match spool::keep(path, entries, recorded_at_us) {
                Ok(kept) => format!(
                    "kept in {} until the database takes writes again",
                    kept.path.display()
                ),
                Err(spool_err) => {
                    format!("and the spool failed too ({spool_err:#}): the record is lost")
                }
            };
            Err(anyhow::Error::new(err))
                .with_context(|| format!("cannot record into {} ({kept})", path.display()))
        }
    }
}

/// Starts a detached `merge-later` for the spool of the database at
/// `path`, to merge `after` seconds from now.
fn spawn_merge_later(path: &Path, after: i64) -> Result<()> {
    detached(
        path,
        &["merge-later", "--after", &after.to_string()],
        Stdio::null(),
    )?;
    Ok(())
}

/// Starts a detached `sync` of the database at `path` to the central store.
pub fn spawn_sync(path: &Path) -> Result<()> {
    detached(path, &["sync", "--detached"], Stdio::null())?;
    Ok(())
}

/// Starts a detached `record-later` with the record on its stdin.
fn hand_over(path: &Path, entries: &[Entry], recorded_at_us: i64) -> Result<()> {
    let at = recorded_at_us.to_string();
    let mut child = detached(
        path,
        &["record-later", "--recorded-at-us", &at],
        Stdio::piped(),
    )?;
    let mut stdin = child
        .stdin
        .take()
        .context("no pipe to the background process")?;
    stdin.write_all(&serde_json::to_vec(entries)?)?;
    Ok(())
}

/// The binary this process runs, to start again. A long-lived process (a
/// shell's recorder) may outlive its file, removed or replaced by an
/// upgrade: `/proc/self/exe` still starts the same binary then.
fn this_binary() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.exists() {
        return Ok(exe);
    }
    let own = std::path::PathBuf::from("/proc/self/exe");
    Ok(if own.exists() { own } else { exe })
}

/// Starts this binary with `args` for the database at `path`, out of the
/// caller's way: no output, and a process group of its own, so that Ctrl-C
/// at the prompt does not reach it.
fn detached(path: &Path, args: &[&str], stdin: Stdio) -> Result<std::process::Child> {
    Ok(Command::new(this_binary()?)
        .args(args)
        .arg("--db")
        .arg(path)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?)
}

/// Every error of the paths that store goes to the log, one line with a
/// hint; `source` names the path (`record`, `tmux-event`).
pub fn log(source: &str, err: &anyhow::Error) {
    let hint = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<DbError>())
        .map_or("run `tmux-audit doctor`", DbError::hint);
    error_log::append(source, &format!("{err:#}"), hint);
}

/// A panic would otherwise vanish: the hooks send stderr to /dev/null.
pub fn log_panics(source: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        error_log::append(
            source,
            &format!("panicked: {info}"),
            "a bug in tmux-audit; please report this line",
        );
    }));
}

pub fn now_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
