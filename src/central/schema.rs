//! The central schema (`tmux_audit` in the PostgreSQL database), made and
//! upgraded by numbered migrations (`central/migrations/*.sql`) that
//! `tmux-audit central init` applies; `tmux_audit.migrations` lists those
//! applied. Every client checks the version before it reads or writes, so
//! a binary older than the schema stops with one line instead of writing
//! rows the schema no longer means.

use chrono::{Datelike, NaiveDate, Utc};

use super::CentralError;

/// Applied in order; never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_redactions.sql"),
    include_str!("migrations/0003_no_row_triggers.sql"),
    include_str!("migrations/0004_redaction_bytes.sql"),
    include_str!("migrations/0005_host_totals.sql"),
];

/// The schema version this binary writes and reads.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Months of partitions made ahead of the current one by each `central init`.
const MONTHS_AHEAD: u32 = 12;

/// What runs before the migrations: a lock so that two `central init` at
/// once run one after the other (taken first: two `CREATE SCHEMA IF NOT
/// EXISTS` at once can fail), the schema and the list of versions.
const PREAMBLE: &str = "SELECT pg_advisory_xact_lock(8389490840752710772); -- 'tmuxaudt'
CREATE SCHEMA IF NOT EXISTS tmux_audit;
CREATE TABLE IF NOT EXISTS tmux_audit.migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
LOCK TABLE tmux_audit.migrations IN EXCLUSIVE MODE;
";

/// The SQL `central init` runs on a database at schema `from` (0: none),
/// in one transaction: the migrations still missing, then the monthly
/// partitions from this month on.
pub fn sql(from: i32) -> String {
    format!("BEGIN;\n{PREAMBLE}{}COMMIT;\n", steps(from))
}

/// The migrations after `from`, then the monthly partitions.
fn steps(from: i32) -> String {
    let mut sql = String::new();
    for (done, migration) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let version = done + 1;
        sql.push_str(&format!("\n-- Migration {version}\n{migration}\n"));
        sql.push_str(&format!(
            "INSERT INTO tmux_audit.migrations (version) VALUES ({version});\n"
        ));
    }
    sql.push_str(&partitions_sql(Utc::now().date_naive()));
    sql
}

/// A partition per month from `today`'s month for [`MONTHS_AHEAD`] more,
/// for commands and tmux events; a month whose rows already sit in the
/// default partition is left there (moving them would lock the table).
fn partitions_sql(today: NaiveDate) -> String {
    let mut sql =
        String::from("\n-- Monthly partitions (run `central init` monthly to add more)\n");
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let mut start = first;
    for _ in 0..=MONTHS_AHEAD {
        let end = start
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(start);
        let (from_us, to_us) = (micros(start), micros(end));
        for (table, column) in [("commands", "started_at_us"), ("tmux_events", "at_us")] {
            let name = format!("{table}_{:04}_{:02}", start.year(), start.month());
            sql.push_str(&format!(
                "DO $$ BEGIN
    IF to_regclass('tmux_audit.{name}') IS NULL
       AND NOT EXISTS (SELECT 1 FROM tmux_audit.{table}_default WHERE {column} >= {from_us} AND {column} < {to_us}) THEN
        CREATE TABLE tmux_audit.{name} PARTITION OF tmux_audit.{table} FOR VALUES FROM ({from_us}) TO ({to_us});
    END IF;
END $$;
"
            ));
        }
        start = end;
    }
    sql
}

fn micros(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or(0)
}

/// The schema version of the connected database (0: none), for `init`.
pub fn found(client: &mut impl postgres::GenericClient) -> Result<i32, CentralError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('tmux_audit.migrations') IS NOT NULL",
            &[],
        )
        .map_err(|e| CentralError::from_postgres(&e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: Option<i32> = client
        .query_one("SELECT max(version) FROM tmux_audit.migrations", &[])
        .map_err(|e| CentralError::from_postgres(&e))?
        .get(0);
    Ok(version.unwrap_or(0))
}

/// The version a reader or writer can work with: exactly this binary's.
pub fn check(client: &mut postgres::Client) -> Result<(), CentralError> {
    match found(client)? {
        0 => Err(CentralError::NotInitialised),
        found if found > VERSION => Err(CentralError::SchemaTooNew {
            found,
            supported: VERSION,
        }),
        found if found < VERSION => Err(CentralError::Server(format!(
            "the central schema is version {found}, older than this tmux-audit ({VERSION}); have its administrator run `tmux-audit central init`"
        ))),
        _ => Ok(()),
    }
}

/// Creates or upgrades the schema; returns (version before, version now).
/// The version is read once this `init` holds the lock: another one run
/// at the same time has then finished, and its migrations are not run
/// again.
pub fn init(client: &mut postgres::Client) -> Result<(i32, i32), CentralError> {
    let failed = |e: postgres::Error| CentralError::from_postgres(&e);
    let mut tx = client.transaction().map_err(failed)?;
    tx.batch_execute(PREAMBLE).map_err(failed)?;
    let from = found(&mut tx)?;
    if from > VERSION {
        return Err(CentralError::SchemaTooNew {
            found: from,
            supported: VERSION,
        });
    }
    tx.batch_execute(&steps(from)).map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok((from, VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_this_month_and_the_next_twelve() {
        let sql = partitions_sql(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert!(sql.contains("commands_2026_11 PARTITION OF tmux_audit.commands FOR VALUES FROM (1793491200000000) TO (1796083200000000)"));
        assert!(sql.contains("tmux_events_2027_11"));
        assert!(!sql.contains("2027_12"));
    }

    #[test]
    fn an_upgrade_runs_only_the_missing_migrations() {
        assert!(sql(0).contains("-- Migration 1\n"));
        assert!(!sql(VERSION).contains("-- Migration"));
    }
}
