//! The database schema, created and upgraded in place by numbered
//! migrations; `PRAGMA user_version` holds how many have been applied.

use rusqlite::{Connection, TransactionBehavior};

use super::DbError;

/// Applied in order; the schema version is the number applied so far.
/// Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_commands.sql"),
    include_str!("migrations/0002_search.sql"),
    include_str!("migrations/0003_lazy_search_index.sql"),
    include_str!("migrations/0004_chain.sql"),
    include_str!("migrations/0005_chain_origins.sql"),
    include_str!("migrations/0006_redacted.sql"),
    include_str!("migrations/0007_tmux_events.sql"),
    include_str!("migrations/0008_running_totals.sql"),
    include_str!("migrations/0009_trace.sql"),
    include_str!("migrations/0010_automatic_renames.sql"),
    include_str!("migrations/0011_imports.sql"),
    include_str!("migrations/0012_retention.sql"),
    include_str!("migrations/0013_forward.sql"),
    include_str!("migrations/0014_central.sql"),
    include_str!("migrations/0015_scope_indexes.sql"),
    include_str!("migrations/0016_query_indexes.sql"),
    include_str!("migrations/0017_report_totals_shown.sql"),
    include_str!("migrations/0018_pruned_highest_seq.sql"),
    include_str!("migrations/0019_report_totals_ranked.sql"),
    include_str!("migrations/0020_report_totals_clustered.sql"),
    include_str!("migrations/0021_report_values.sql"),
    include_str!("migrations/0022_command_typists.sql"),
    include_str!("migrations/0023_failed_commands.sql"),
    include_str!("migrations/0024_report_totals_sums.sql"),
];

/// The version whose migration also writes the trace's first entry (in
/// Rust: it hashes the rows that predate the chain).
const TRACE_VERSION: i64 = 9;

pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the schema up to [`VERSION`]. Safe when many processes upgrade one
/// database at once: the version is read again inside an IMMEDIATE
/// transaction (which takes the write lock first), so exactly one of them
/// applies each migration and the others find it done. (A new database is
/// built aside and moved into place whole: see `db::create`.)
/// An error when no tmux-audit this old or this new wrote version `found`.
pub fn check(found: i64) -> Result<(), DbError> {
    match found {
        found if found > VERSION => Err(DbError::SchemaTooNew {
            found,
            supported: VERSION,
        }),
        found if found < 0 => Err(DbError::BadSchema { found }),
        _ => Ok(()),
    }
}

pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    check(found)?;
    for sql in MIGRATIONS.iter().skip(found as usize) {
        tx.execute_batch(sql)?;
    }
    // After the later migrations too: it reads the rows by today's
    // columns. (Later migrations only add columns, NULL in older rows.)
    if found < TRACE_VERSION {
        super::trace::start(&tx)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indexes of version 16 (which filter each serves: the tests of
    /// `db::scope`).
    const QUERY_INDEXES: [&str; 6] = [
        "commands_by_user",
        "commands_by_cwd",
        "commands_by_shell",
        "commands_by_exit",
        "commands_by_socket",
        "commands_by_duration",
    ];

    fn indexes(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.collect::<Result<_, _>>().unwrap()
    }

    /// A database of the version before, with a row, is brought up in
    /// place: the indexes made over the rows it has, the rows kept.
    #[test]
    fn a_database_from_before_the_query_indexes_gets_them_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let mut conn = Connection::open(&path).unwrap();
        // Version 15's schema: every migration before the query indexes
        // (0016), whatever migrations come after them.
        let before = 15;
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..before] {
            tx.execute_batch(sql).unwrap();
        }
        super::super::trace::start(&tx).unwrap();
        tx.pragma_update(None, "user_version", before as i64)
            .unwrap();
        tx.execute(
            "INSERT INTO commands (command, started_at_us, cwd, user, uid, host, shell,
                                   shell_session, seq, recorded_at_us)
             VALUES ('ls', 1, '/home/bob', 'bob', 1000, 'h', 'fish', 's', 1, 2)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        let before = indexes(&conn);
        for index in QUERY_INDEXES {
            assert!(!before.contains(&index.to_string()), "{index} before");
        }
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), VERSION);
        let after = indexes(&conn);
        for index in QUERY_INDEXES {
            assert!(
                after.contains(&index.to_string()),
                "{index} after: {after:?}"
            );
        }
        let kept: i64 = conn
            .query_row(
                "SELECT count(*) FROM commands WHERE user = 'bob'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 1);
    }
}
