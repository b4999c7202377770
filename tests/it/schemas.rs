//! Databases as older tmux-audits left them, for the upgrade tests.
//!
//! An upgrade test needs a database of schema N that holds real records
//! (with their chain hashes). It records them with today's binary and then
//! takes away what the migrations after N added: [`downgrade`]. What each
//! migration added is listed once, in [`UNDO`]; the test below checks, for
//! every older version, that a downgraded database has the same tables,
//! columns and indexes as one built from the migration files up to that
//! version. A new migration without its line in [`UNDO`] fails it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::support::Sandbox;

/// The oldest version [`downgrade`] reaches: the trace (schema 9) is
/// written in Rust when it starts, so older schemas are built from the
/// migration files instead (see `verify::database_from_before_the_chain`).
pub const OLDEST: i64 = 9;

/// What migration N added, as the SQL that takes it away again.
const UNDO: &[(i64, &str)] = &[
    (10, "ALTER TABLE tmux_events DROP COLUMN automatic_rename;"),
    (
        11,
        "DROP INDEX commands_by_import_key;
         ALTER TABLE commands DROP COLUMN import_key;
         ALTER TABLE commands DROP COLUMN import_file;
         ALTER TABLE commands DROP COLUMN import_source;",
    ),
    (
        12,
        "DROP TABLE pruned_sessions; DROP TABLE retention_state;",
    ),
    (13, "DROP TABLE forward_cursors;"),
    (
        14,
        "DROP TABLE central_identity; DROP TABLE central_shipped;",
    ),
    (
        15,
        "DROP INDEX commands_by_tmux_session; DROP INDEX commands_by_host;",
    ),
    (
        16,
        "DROP INDEX commands_by_user; DROP INDEX commands_by_cwd; DROP INDEX commands_by_shell;
         DROP INDEX commands_by_exit; DROP INDEX commands_by_socket;
         DROP INDEX commands_by_duration;",
    ),
    (
        17,
        "ALTER TABLE report_totals DROP COLUMN shown;
         ALTER TABLE totals_state DROP COLUMN events_up_to;
         ALTER TABLE totals_state DROP COLUMN events_hash;",
    ),
    (18, "ALTER TABLE pruned_sessions DROP COLUMN highest_seq;"),
    (
        19,
        "DROP INDEX report_totals_ranked;
         CREATE INDEX report_totals_by_commands ON report_totals (name, commands);",
    ),
    (
        20,
        "CREATE TABLE report_totals_old (
             name TEXT NOT NULL, key TEXT NOT NULL, commands INTEGER NOT NULL,
             failures INTEGER NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,
             total_duration_us INTEGER NOT NULL, longest_us INTEGER NOT NULL, shown TEXT,
             PRIMARY KEY (name, key));
         INSERT INTO report_totals_old SELECT * FROM report_totals;
         DROP TABLE report_totals;
         ALTER TABLE report_totals_old RENAME TO report_totals;
         CREATE INDEX report_totals_ranked ON report_totals (name, commands DESC, key);",
    ),
    (21, "DROP TABLE report_values;"),
    (22, "DROP TABLE command_typists;"),
    (23, "DROP INDEX commands_failed;"),
    (24, "DROP INDEX report_totals_sums;"),
];

/// Leaves the database at `db` as a tmux-audit of schema `to` left it:
/// the additions of every later migration taken away, newest first, and
/// `user_version` set back.
pub fn downgrade(db: &Path, to: i64) {
    assert!(to >= OLDEST, "schema {to} cannot be reached by a downgrade");
    let conn = Connection::open(db).unwrap();
    let from: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    for (version, sql) in UNDO.iter().rev() {
        if *version > to && *version <= from {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("undoing migration {version}: {e}"));
        }
    }
    conn.pragma_update(None, "user_version", to).unwrap();
}

/// The migration files, in the order they are applied.
pub fn migration_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db/migrations");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    files
}

/// A new database at `db` made by the migration files up to `to`, with no
/// rows, in WAL mode as tmux-audit makes them.
pub fn from_migration_files(db: &Path, to: i64) {
    let conn = Connection::open(db).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    for file in migration_files().iter().take(to as usize) {
        conn.execute_batch(&fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    conn.pragma_update(None, "user_version", to).unwrap();
}

/// Each table's columns (name, type, not null, default, key) and each
/// index, trigger and view by its SQL: what two schemas must share.
fn shape(db: &Path) -> BTreeMap<String, String> {
    let conn = Connection::open(db).unwrap();
    let mut objects = conn
        .prepare("SELECT type, name, ifnull(sql, '') FROM sqlite_master ORDER BY name")
        .unwrap();
    let objects: Vec<(String, String, String)> = objects
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut shape = BTreeMap::new();
    for (kind, name, sql) in objects {
        let what = if kind == "table" {
            let mut columns = conn
                .prepare(&format!("SELECT name, type, \"notnull\", ifnull(dflt_value, ''), pk FROM pragma_table_info('{name}')"))
                .unwrap();
            let columns: Vec<String> = columns
                .query_map([], |r| {
                    Ok(format!(
                        "{} {} {} {} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?
                    ))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            columns.join(", ")
        } else {
            sql.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        shape.insert(format!("{kind} {name}"), what);
    }
    shape
}

#[test]
fn every_migration_after_the_trace_can_be_undone() {
    let latest = migration_files().len() as i64;
    assert_eq!(latest, crate::record::LATEST_SCHEMA);
    for to in OLDEST..latest {
        let sb = Sandbox::new();
        assert!(sb.record_numbered("1", "echo today").status.success());
        downgrade(&sb.db, to);
        let built = sb.path().join(format!("v{to}.db"));
        from_migration_files(&built, to);
        assert_eq!(
            shape(&sb.db),
            shape(&built),
            "a database of today taken back to schema {to} is not the schema the \
             migration files up to {to} make: give the newer migrations their line in UNDO"
        );
    }
}
