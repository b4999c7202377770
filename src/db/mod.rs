//! The SQLite database: opening it safely and quickly, and the queries.

pub mod central;
pub mod events;
mod forward;
mod imports;
mod queries;
mod redaction;
mod report;
mod retention;
mod schema;
mod scope;
mod shown;
mod trace;

pub use forward::ForwardItem;
pub use imports::{Counts, Numbering};
pub use queries::{insert_entries, Order, SearchQuery, SCAN_WINDOW};
pub use report::{Counting, GroupBy, Ranked, ReportFields, ReportPlan, ReportRow, SortBy, Totals};
pub use retention::{PruneError, PruneRules, Pruned, Reclaimed, DAILY_US};
pub use scope::Placed;
pub use shown::RowTexts;
pub use trace::{append as append_trace, StoredTrace, UnchainedDigest};

/// The two chains of a database: its commands and its tmux events, each
/// a table whose rows are hash-chained in id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Commands,
    TmuxEvents,
}

impl Chain {
    pub const ALL: [Chain; 2] = [Chain::Commands, Chain::TmuxEvents];

    /// Its table, which is also its name wherever a chain is named (the
    /// trace, the central store's anchors, the local ship cursor).
    pub fn table(self) -> &'static str {
        match self {
            Chain::Commands => "commands",
            Chain::TmuxEvents => "tmux_events",
        }
    }
}

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::lifecycle::replay::Placement;
use crate::private_files::{self, Refusal};
use crate::record::CommandRecord;

/// How long a writer waits for another one to finish. Writes take well under
/// a millisecond, so this only runs out when something holds the lock for
/// far longer than tmux-audit ever does; the prompt must not wait longer.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The WAL is folded back into the database once it is this large. Each
/// short-lived process that opens the database first re-reads the whole WAL
/// (SQLite rebuilds its index when no other connection has the database
/// open), so a large WAL costs every later command; folding costs a few
/// fsyncs, paid by one command in five or so.
const WAL_LIMIT_BYTES: u64 = 64 * 1024;

#[derive(Debug)]
pub enum DbError {
    /// No database at that path yet.
    Missing {
        path: PathBuf,
    },
    /// Written by a newer tmux-audit.
    SchemaTooNew {
        found: i64,
        supported: i64,
    },
    /// A schema version no tmux-audit writes (negative): not our database,
    /// or a damaged one.
    BadSchema {
        found: i64,
    },
    Create {
        path: PathBuf,
        source: io::Error,
    },
    /// The database, a file beside it, or its directory is a symbolic link,
    /// another user's, or writable by others: writing there could put the
    /// records where another user reads or controls them.
    Unsafe {
        path: PathBuf,
        refusal: Refusal,
    },
    Sqlite(rusqlite::Error),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Missing { path } => write!(
                f,
                "no database at {}: nothing recorded yet (load the hook with `tmux-audit init --help`, or pass --db)",
                path.display()
            ),
            DbError::SchemaTooNew { found, supported } => write!(
                f,
                "the database has schema version {found}, newer than this tmux-audit knows ({supported}): upgrade tmux-audit"
            ),
            DbError::BadSchema { found } => {
                write!(f, "the database has schema version {found}, which no tmux-audit writes")
            }
            DbError::Create { path, source } => write!(f, "cannot create {}: {source}", path.display()),
            DbError::Unsafe { path, refusal } => {
                write!(f, "refusing to use {}: ", path.display())?;
                if refusal.path == *path {
                    write!(f, "it ")?;
                    refusal.why_text(f)?;
                } else {
                    write!(f, "{refusal}")?;
                }
                write!(f, "; {}", refusal.fix())
            }
            DbError::Sqlite(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Their text is this error's text already.
            DbError::Create { .. } | DbError::Sqlite(_) => None,
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> Self {
        DbError::Sqlite(err)
    }
}

impl DbError {
    /// SQLite's error code, when SQLite gave one.
    pub fn sqlite_code(&self) -> Option<ErrorCode> {
        match self {
            DbError::Sqlite(err) => err.sqlite_error_code(),
            _ => None,
        }
    }

    /// Other processes are in the way: one holds the write lock (for longer
    /// than the busy timeout), or many racing writers kept SQLite from
    /// taking a WAL snapshot (SQLITE_PROTOCOL). Worth waiting and trying again.
    pub fn is_busy(&self) -> bool {
        matches!(self, DbError::Sqlite(err)
        if matches!(
            err.sqlite_error_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::FileLockingProtocolFailed)
        ))
    }

    /// "Unable to open" or "read-only": what a process can see for a moment
    /// while another one creates the database.
    pub fn may_be_creation_race(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
        )
    }

    /// What the user can do about it, for the log line.
    pub fn hint(&self) -> &'static str {
        match self {
            DbError::Missing { .. } => "run a command in a shell with the hook loaded",
            DbError::SchemaTooNew { .. } => "install the newer tmux-audit that wrote this database",
            DbError::BadSchema { .. } => "this is not a tmux-audit database, or a damaged one: move it aside",
            DbError::Unsafe { .. } => {
                "tmux-audit uses a database only where no other user can write it or the files beside it"
            }
            DbError::Create { .. } => "check that the directory is yours and writable, or set TMUX_AUDIT_DB",
            DbError::Sqlite(err) => match err.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                    "another process kept the database locked; find it with `fuser` on the database file"
                }
                Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                    "make the database file and its directory writable by you, or set TMUX_AUDIT_DB"
                }
                Some(ErrorCode::DiskFull) => "free some disk space",
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                    "the database file is damaged: `tmux-audit doctor --repair` moves it aside and starts a new one"
                }
                _ => "see the SQLite error above",
            },
        }
    }
}

pub struct Database {
    conn: Connection,
    busy_timeout: Duration,
    /// About how many bytes a filtered report may count in memory (see
    /// `report::IN_MEMORY_BYTES`).
    report_budget: usize,
}

/// A command as read back, with what the database added.
#[derive(Debug, Clone)]
pub struct StoredCommand {
    pub id: i64,
    pub recorded_at_us: i64,
    pub record: CommandRecord,
    /// Where it ran and who typed it, once [`Database::place`] filled it in.
    pub placement: Option<Placement>,
}

impl Database {
    /// Opens for writing, creating the database (directory 0700, file 0600)
    /// and upgrading its schema as needed.
    pub fn open(path: &Path) -> Result<Database, DbError> {
        Database::open_waiting(path, BUSY_TIMEOUT)
    }

    /// [`Database::open`], waiting up to `busy_timeout` for another writer.
    pub fn open_waiting(path: &Path, busy_timeout: Duration) -> Result<Database, DbError> {
        refuse_unsafe(path)?;
        // Not SQLITE_OPEN_NOFOLLOW: it refuses a symbolic link anywhere in
        // the path (a home directory behind one, as on many systems), where
        // only the file itself must not be one, which `refuse_unsafe` checks.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(conn) => conn,
            // Not there yet, or not when SQLite looked: another process may
            // have linked it into place since. Create it if still missing
            // (`create` allows for a concurrent creator), and open once more.
            Err(_) => {
                if !path.exists() {
                    create(path)?;
                }
                Connection::open_with_flags(path, flags)?
            }
        };
        Database::ready(conn, busy_timeout)
    }

    /// [`Database::open`] for a database that must exist already (search,
    /// report, verify): it is still upgraded when older.
    pub fn open_existing(path: &Path) -> Result<Database, DbError> {
        if !path.exists() {
            return Err(DbError::Missing {
                path: path.to_path_buf(),
            });
        }
        Database::open(path)
    }

    /// Opens read-only, as it is: no upgrade, nothing written, and none of
    /// [`Database::open`]'s checks of who owns the files, so the caller
    /// vouches for them (tests reading a database, also another user's as
    /// root). Waits up to `busy_timeout` for a writer.
    pub fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Database, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        Ok(Database {
            conn,
            busy_timeout,
            report_budget: report::IN_MEMORY_BYTES,
        })
    }

    fn ready(mut conn: Connection, busy_timeout: Duration) -> Result<Database, DbError> {
        conn.busy_timeout(busy_timeout)?;
        // Commits need no fsync in WAL mode; the WAL is synced at checkpoints.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A short-lived process would otherwise checkpoint (and fsync) the
        // WAL every time it closes the last connection: that is, on every
        // command. `fold_wal` keeps the WAL small instead.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        // SQLite's own automatic checkpoints copy pages back but leave the
        // WAL's frames for the next process to re-read; see `fold_wal`.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let found = schema::version(&conn)?;
        if found != schema::VERSION {
            schema::check(found)?;
            schema::migrate(&mut conn)?;
        }
        Ok(Database {
            conn,
            busy_timeout,
            report_budget: report::IN_MEMORY_BYTES,
        })
    }

    /// Lets SQLite keep up to `kib` KiB of pages in memory (its default is
    /// 2 MiB): a bulk write that touches an index at random places (the
    /// import keys) otherwise reads most pages back from the file.
    pub fn set_cache_kib(&mut self, kib: i64) -> Result<(), DbError> {
        self.conn.pragma_update(None, "cache_size", -kib)?;
        Ok(())
    }

    /// Waits up to `timeout` for other writers from now on: longer than
    /// the prompt's path may, for commands run by hand (`prune`).
    pub fn set_busy_timeout(&mut self, timeout: Duration) -> Result<(), DbError> {
        self.conn.busy_timeout(timeout)?;
        self.busy_timeout = timeout;
        Ok(())
    }

    /// Once the WAL has grown past [`WAL_LIMIT_BYTES`], copies it into the
    /// database and truncates it to nothing. (A plain checkpoint is not
    /// enough: the next process cannot tell which frames were copied, and
    /// re-reads and appends to them all.) Best effort: when another process
    /// is using the database, this gives up at once and a later command
    /// folds the WAL instead.
    pub fn fold_wal(&self) {
        let Some(path) = self.conn.path() else { return };
        let wal_len = fs::symlink_metadata(format!("{path}-wal")).map_or(0, |m| m.len());
        if wal_len < WAL_LIMIT_BYTES {
            return;
        }
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_timeout(self.busy_timeout);
    }
}

/// The database's directory must be the user's, and no other user may
/// write it (which also keeps others from placing files beside it while
/// these checks run); the database and the files SQLite opens beside it
/// (`-wal`, `-shm`, `-journal`), where they exist, must be regular files
/// of the user's that no other user can write. A `stat` and four `lstat`s.
fn refuse_unsafe(path: &Path) -> Result<(), DbError> {
    let unsafe_because = |refusal| DbError::Unsafe {
        path: path.to_path_buf(),
        refusal,
    };
    // A directory not made yet is made private by `create`.
    let dir = directory(path);
    if let Ok(meta) = fs::metadata(dir) {
        private_files::check_dir(dir, &meta).map_err(unsafe_because)?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        private_files::check_existing(&sidecar(path, suffix)).map_err(unsafe_because)?;
    }
    Ok(())
}

/// The directory the database at `path` is in.
pub fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Removes what creations of the database at `path` that were killed
/// halfway left beside it (`history.db.new-<pid>-<nanos>`, and its `-wal`
/// and `-shm`): those of processes that are gone, or older than an hour.
/// One read of the directory.
pub fn remove_stale_new_files(path: &Path) {
    let Some(name) = path.file_name() else { return };
    let mut prefix = name.to_os_string();
    prefix.push(".new-");
    let prefix = prefix.as_encoded_bytes();
    let Ok(entries) = fs::read_dir(directory(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.as_encoded_bytes().strip_prefix(prefix) else {
            continue;
        };
        let pid = std::str::from_utf8(rest)
            .ok()
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok());
        let Ok(meta) = entry.metadata() else { continue };
        if private_files::check_file(&entry.path(), &meta).is_err() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old || pid.is_none_or(|pid| !process_exists(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A creation takes milliseconds; its file is stale long before this.
const STALE_AFTER: Duration = Duration::from_secs(60 * 60);

fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH))
}

/// Makes a new database: built whole (schema, WAL mode) in a private file
/// beside `path` and then linked into place, so that no process ever sees a
/// half-made one. When many processes race to create it, one link wins and
/// the others use the winner's file.
fn create(path: &Path) -> Result<(), DbError> {
    let create_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DbError::Create { path, source }
    };
    let dir = directory(path);
    private_files::dir(dir).map_err(|source| match private_files::refusal(&source) {
        Some(refusal) => DbError::Unsafe {
            path: path.to_path_buf(),
            refusal: refusal.clone(),
        },
        None => create_err(dir)(source),
    })?;

    // A name no other process (on this host or another sharing the
    // directory) can be using, and a file that must not exist yet.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".new-{}-{nanos}", std::process::id()));
    let temp = dir.join(name);
    private_files::create_new(&temp).map_err(create_err(&temp))?;

    let built = build_new(&temp);
    let linked = built.and_then(|()| match fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(DbError::Create {
            path: path.to_path_buf(),
            source: err,
        }),
    });
    for leftover in [temp.clone(), sidecar(&temp, "-wal"), sidecar(&temp, "-shm")] {
        let _ = fs::remove_file(leftover);
    }
    // And what creations killed before they got this far left.
    remove_stale_new_files(path);
    linked
}

fn build_new(temp: &Path) -> Result<(), DbError> {
    let mut conn = Connection::open_with_flags(temp, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // Set before the first table: space a prune frees can then be given
    // back in small steps (see `Database::reclaim_space`); turning it on
    // later takes a VACUUM of the whole file.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    debug_assert_eq!(mode.to_ascii_lowercase(), "wal");
    schema::migrate(&mut conn)?;
    // Closing the only connection checkpoints the WAL into the file.
    conn.close().map_err(|(_, err)| DbError::Sqlite(err))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}
