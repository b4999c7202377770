//! The central store: every host's records in one PostgreSQL database.
//! `sync` ships the local chains there (`ship.rs`), `central init` makes
//! and upgrades its schema and roles (`schema.rs`), `search --central`
//! and `verify --central` read it (`query.rs`, `check.rs`). How to reach
//! the server follows libpq's conventions (`connect.rs`); which host this
//! is, `identity.rs`.
//!
//! Nothing here is on the per-command path: `record` only starts a
//! detached `sync` (see `cmd/record.rs`), and the PostgreSQL client is
//! linked statically (rustls, no libpq.so or libssl.so to load).

pub mod check;
pub mod connect;
pub mod identity;
pub mod query;
pub mod schema;
pub mod ship;

use std::fmt;

/// What went wrong with the central store, each told in one line with
/// what to do; callers branch on the kind (a detached sync logs an outage
/// once, not once per try).
#[derive(Debug)]
pub enum CentralError {
    /// No `[central] url` and no `TMUX_AUDIT_CENTRAL_URL`.
    NotConfigured,
    /// The URL or a setting cannot be used.
    Settings(String),
    /// The server could not be reached (down, wrong host or port).
    Unreachable { target: String, reason: String },
    /// The server refused the login (wrong password, unknown role).
    Login { target: String, reason: String },
    /// TLS was required and the server did not offer it, or its
    /// certificate did not check out.
    Tls { target: String, reason: String },
    /// The schema is missing: `central init` has not run.
    NotInitialised,
    /// The server's schema is newer than this binary knows.
    SchemaTooNew { found: i32, supported: i32 },
    /// The server refused what was sent (a row of another host, a row
    /// that does not extend the chain shipped so far).
    Refused(String),
    /// Another sync of the same database shipped the same rows at the
    /// same time: going on from the server's anchor resolves it.
    Conflict(String),
    /// Any other error of the server or the connection.
    Server(String),
}

impl fmt::Display for CentralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CentralError::NotConfigured => write!(
                f,
                "no central store configured; set `url` under [central] in config.toml or TMUX_AUDIT_CENTRAL_URL"
            ),
            CentralError::Settings(why) => write!(f, "central store: {why}"),
            CentralError::Unreachable { target, reason } => write!(
                f,
                "cannot reach the central store at {target}: {reason}; records wait locally and go out when it is back"
            ),
            CentralError::Login { target, reason } => write!(
                f,
                "the central store at {target} refused the login: {reason}; check the user and the password in ~/.pgpass (or PGPASSFILE)"
            ),
            CentralError::Tls { target, reason } => write!(
                f,
                "no trusted TLS connection to the central store at {target}: {reason}; see `sslmode` in the README's \"For a team\""
            ),
            CentralError::NotInitialised => write!(
                f,
                "the central database has no tmux-audit schema; have its administrator run `tmux-audit central init`"
            ),
            CentralError::SchemaTooNew { found, supported } => write!(
                f,
                "the central schema is version {found}, newer than this tmux-audit knows ({supported}); upgrade tmux-audit"
            ),
            CentralError::Refused(why) => write!(f, "the central store refused the records: {why}"),
            CentralError::Conflict(why) => write!(f, "central store: {why}; run `tmux-audit sync` again"),
            CentralError::Server(why) => write!(f, "central store: {why}"),
        }
    }
}

impl std::error::Error for CentralError {}

impl CentralError {
    /// The server's own words for an error, on one line.
    pub(crate) fn from_postgres(err: &postgres::Error) -> CentralError {
        match err.as_db_error() {
            Some(db) => {
                let text = db.message().replace('\n', " ");
                match db.code().code() {
                    // insufficient_privilege, check_violation, RLS violation
                    "42501" | "23514" => CentralError::Refused(text),
                    // unique_violation, serialization_failure: a sync at the same time
                    "23505" | "40001" => CentralError::Conflict(text),
                    // undefined schema, or one of its tables
                    "3F000" => CentralError::NotInitialised,
                    "42P01" if text.contains("tmux_audit.") => CentralError::NotInitialised,
                    _ => CentralError::Server(text),
                }
            }
            // The connection broke (the server went away mid-way).
            None => CentralError::Unreachable {
                target: "the server".into(),
                reason: one_line(err),
            },
        }
    }
}

/// An error and its causes, on one line.
pub(crate) fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_source(source);
    }
    text.replace('\n', " ")
}

fn cause_source<'a>(
    err: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    err.and_then(|e| e.source())
}

/// Where the central store is, from a URL (`[central] url`, or
/// `TMUX_AUDIT_CENTRAL_URL`: see [`crate::config::Central::url`]) and the
/// PG* environment.
pub fn target(url: Option<String>) -> Result<connect::Target, CentralError> {
    let url = url.ok_or(CentralError::NotConfigured)?;
    connect::Target::resolve(&url, &|key| std::env::var(key).ok())
}

/// Whether a detached sync is due after a record: true at most once per
/// `every_secs`, by the time stamp of a file in `state_dir` (one `stat`,
/// and a write when due). Never waits; on any doubt, not due.
pub fn sync_due(state_dir: &std::path::Path, every_secs: u64) -> bool {
    if every_secs == 0 {
        return false;
    }
    let stamp = state_dir.join("central-sync.stamp");
    let due = match std::fs::metadata(&stamp).and_then(|m| m.modified()) {
        Ok(at) => at.elapsed().is_ok_and(|age| age.as_secs() >= every_secs),
        Err(_) => true,
    };
    due && crate::private_files::write(&stamp, b"").is_ok()
}

/// An outage is logged once: noted here when it starts, cleared when a
/// sync succeeds. Returns true when this failure starts a new outage.
pub fn note_outage(state_dir: &std::path::Path, failing: bool) -> bool {
    let note = state_dir.join("central-outage");
    if failing {
        if note.exists() {
            return false;
        }
        crate::private_files::write(&note, b"").is_ok()
    } else {
        let _ = std::fs::remove_file(&note);
        false
    }
}
