//! The spool: where every record (command or tmux event) goes first, one
//! JSON line each, beside the database (`history.db-spool`), or, when that
//! cannot be written (the database's directory read-only or full), in
//! `$XDG_STATE_HOME/tmux-audit/spool.jsonl`.
//!
//! Appending a line costs a fraction of what opening SQLite does (reading
//! its schema, rebuilding its WAL index), so the per-command path only
//! appends, and moves the spool into the database in one transaction once
//! it has grown past [`MERGE_BYTES`] or its oldest record has waited
//! [`MERGE_AGE_US`]. Every reader (`search`, `report`, …) merges first, so
//! it sees everything recorded. A spool that cannot be merged (a database
//! that is read-only, damaged, on a full disk, or locked) waits for the
//! next try.
//!
//! Every writer and the merger hold an exclusive lock on the file; a record
//! merged twice (a crash between the commit and emptying the file) is
//! recognised (a command by its shell session and number, an event by its
//! key) and stored once.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::db::{Database, DbError};
use crate::paths;
use crate::record::Entry;
use crate::text::hex;

/// A spool this large is merged by the record that made it so: some forty
/// commands.
const MERGE_BYTES: u64 = 32 * 1024;

/// A spool whose oldest record waited this long (five minutes) is merged
/// by the next record, however small it is.
pub const MERGE_AGE_US: i64 = 5 * 60 * 1_000_000;

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
/// cannot be written: `$XDG_STATE_HOME/tmux-audit/spool-<hash of the
/// database's path>.jsonl`, one per database.
pub fn fallback_path(db: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    Ok(paths::state_dir()?.join(format!("spool-{}.jsonl", &hex(&digest)[..16])))
}

/// Every spool of `db`, oldest records first: the spool of tmux-audit
/// of earlier versions (one for every database), the fallback, the one
/// beside it.
fn paths_of(db: &Path) -> Vec<PathBuf> {
    let legacy = paths::state_dir().map(|dir| dir.join("spool.jsonl"));
    legacy
        .into_iter()
        .chain(fallback_path(db))
        .chain([path(db)])
        .collect()
}

/// Entries appended, and whether the spool is due to be merged.
pub struct Kept {
    pub path: PathBuf,
    pub due: bool,
}

/// Appends entries to the spool of `db`, a line each: beside the database,
/// or in the fallback spool when that cannot be written.
pub fn keep(db: &Path, entries: &[Entry], recorded_at_us: i64) -> Result<Kept> {
    let mut lines = Vec::new();
    for entry in entries {
        serde_json::to_writer(
            &mut lines,
            &Line {
                recorded_at_us,
                entry: entry.clone(),
            },
        )?;
        lines.push(b'\n');
    }
    let beside = path(db);
    match append(&beside, &lines, false) {
        Ok(len) => {
            let fallback_waits =
                fallback_path(db).is_ok_and(|f| fs::metadata(f).is_ok_and(|m| m.len() > 0));
            // The first record makes the database.
            let due = len >= MERGE_BYTES
                || fallback_waits
                || !db.exists()
                || oldest_us(&beside).is_some_and(|oldest| recorded_at_us - oldest >= MERGE_AGE_US);
            Ok(Kept { path: beside, due })
        }
        Err(beside_err) => {
            let fallback = fallback_path(db)?;
            append(&fallback, &lines, true)
                .with_context(|| format!("{beside_err:#}, and the fallback spool failed too"))?;
            Ok(Kept {
                path: fallback,
                due: true,
            })
        }
    }
}

/// Appends `lines` to the spool at `path` under its lock; its length after.
/// A spool that is a symbolic link or another user's file is not written.
/// `make_dir`: create its directory if needed (the database's is made by
/// the database).
fn append(path: &Path, lines: &[u8], make_dir: bool) -> Result<u64> {
    if !make_dir
        && path
            .parent()
            .is_some_and(|dir| !dir.as_os_str().is_empty() && !dir.is_dir())
    {
        bail!(
            "{} does not exist yet",
            path.parent().unwrap_or(path).display()
        );
    }
    let mut file = if make_dir {
        paths::open_private_append(path)
    } else {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    }
    .with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file.metadata()?;
    // SAFETY: getuid cannot fail and has no preconditions.
    if meta.uid() != unsafe { libc::getuid() } {
        bail!("{} belongs to another user", path.display());
    }
    // The mode given at creation is masked by the umask; this one is not.
    if meta.mode() & 0o777 != 0o600 {
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    file.lock()?;
    file.write_all(lines)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file.metadata()?.len())
}

/// When the first record in the spool was recorded, from its first line.
fn oldest_us(path: &Path) -> Option<i64> {
    let mut head = [0u8; 64];
    let n = File::open(path).ok()?.read_at(&mut head, 0).ok()?;
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
        let lines = fs::read_to_string(&path)
            .map_or(0, |s| s.lines().filter(|l| !l.trim().is_empty()).count());
        if lines > 0 {
            count += lines;
            if let Some(first) = oldest_us(&path) {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
            }
        }
    }
    (count, oldest)
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
    if fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(0);
    }
    let read = || -> Result<(File, String)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        file.lock()?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok((file, text))
    };
    let (file, text) = match read() {
        Ok(read) => read,
        Err(err) => {
            crate::error_log::append(
                "spool",
                &format!("cannot read {}: {err:#}", path.display()),
                "check the permissions of the spool and its directory",
            );
            return Ok(0);
        }
    };
    let mut lines = Vec::new();
    for (number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        // A line cut short (disk full while writing it) is reported and
        // skipped, not allowed to keep the others out.
        match serde_json::from_str::<Line>(line) {
            Ok(line) => lines.push(line),
            Err(err) => crate::error_log::append(
                "spool",
                &format!(
                    "line {} of {} is not a record ({err}); it was dropped",
                    number + 1,
                    path.display()
                ),
                "the disk may have been full when it was written",
            ),
        }
    }
    let merged = db.insert_all(lines.iter().map(|l| (&l.entry, l.recorded_at_us)))?;
    if merged < lines.len() {
        crate::error_log::append(
            "spool",
            &format!(
                "{} of the {} records in {} were stored before; the copies were dropped",
                lines.len() - merged,
                lines.len(),
                path.display()
            ),
            "an earlier merge was cut short, or the hook is loaded twice in a way it cannot detect (check the shell's rc files)",
        );
    }
    // Stored: the spool can go. (A crash before this line merges it again,
    // and each entry is stored once.)
    if let Err(err) = file.set_len(0) {
        crate::error_log::append(
            "spool",
            &format!("cannot empty {}: {err}", path.display()),
            "its records are stored; the next merge skips them",
        );
    }
    Ok(merged)
}

/// The database at `path`, with what waits in its spool merged first:
/// what every reader opens, so that it sees every record. When the spool
/// cannot be merged (a read-only database), the database is still read,
/// and a warning on stderr says how many records are missing from it.
pub fn open_merged(path: &Path) -> Result<Database> {
    if waiting(path).0 == 0 {
        return Ok(Database::open_existing(path)?);
    }
    let merged = Database::open(path).and_then(|mut db| {
        merge(&mut db, path)?;
        db.fold_wal();
        Ok(db)
    });
    let (db, why) = match merged {
        Ok(db) => (db, "see `tmux-audit doctor`".to_string()),
        Err(err) => (Database::open_existing(path)?, err.to_string()),
    };
    let (left, _) = waiting(path);
    if left > 0 {
        eprintln!(
            "tmux-audit: warning: {left} record{} waiting in the spool {} not in the database yet ({why})",
            if left == 1 { "" } else { "s" },
            if left == 1 { "is" } else { "are" },
        );
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

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
