//! `tmux-audit prune`: old records and tmux events deleted on purpose, a
//! chained trace entry that explains the gaps, `verify` intact and an
//! anchor still found; any other deletion still named; the file shrinks;
//! records made by shells meanwhile all land, once.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::thread;

use rusqlite::Connection;
use tmux_audit::db::Database;
use tmux_audit::lifecycle::TmuxEvent;
use tmux_audit::record::Entry;

use crate::support::Sandbox;

const DAY_US: i64 = 86_400 * 1_000_000;

fn now_us() -> i64 {
    tmux_audit::store::now_us()
}

/// Records `text` as command `seq` of bash shell session `session`, started
/// `days_ago` days ago, with exit status `exit`: the real `record`.
fn record_at(sb: &Sandbox, session: &str, seq: u32, text: &str, exit: i32, days_ago: i64) {
    let start = now_us() - days_ago * DAY_US;
    let (seq, exit, start, end) = (
        seq.to_string(),
        exit.to_string(),
        start.to_string(),
        (start + 1_000).to_string(),
    );
    let out = sb.record(
        text.as_bytes(),
        &[
            "--shell",
            "bash",
            "--session",
            session,
            "--seq",
            &seq,
            "--exit",
            &exit,
            "--start-us",
            &start,
            "--end-us",
            &end,
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

fn run(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String) {
    let out = sb.cmd().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Shell session `s`: commands 1 to 10 started 400 days ago (4 failed,
/// 6 ran `sudo`), 11 and 12 today; tmux events 300 days ago and today.
fn history() -> Sandbox {
    let sb = Sandbox::new();
    for seq in 1..=10 {
        let text = if seq == 6 {
            "sudo systemctl restart nginx".to_string()
        } else {
            format!("echo old {seq}")
        };
        record_at(&sb, "s", seq, &text, i32::from(seq == 4), 400);
    }
    record_at(&sb, "s", 11, "echo new 11", 0, 0);
    record_at(&sb, "s", 12, "echo new 12", 0, 0);
    assert!(sb.flush());
    let event = |key: &str, days_ago: i64| {
        Entry::TmuxEvent(TmuxEvent {
            event: "session-created".into(),
            at_us: now_us() - days_ago * DAY_US,
            event_key: key.into(),
            tmux_socket: "/tmp/tmux-0/default".into(),
            tmux_server_pid: 1,
            session_name: Some(key.into()),
            ..TmuxEvent::default()
        })
    };
    let events = [event("a", 300), event("b", 300), event("c", 0)];
    let mut db = Database::open(&sb.db).unwrap();
    db.insert_all(events.iter().map(|e| (e, now_us()))).unwrap();
    sb
}

fn ids(sb: &Sandbox) -> Vec<i64> {
    sb.rows().iter().map(|r| r.id).collect()
}

fn sql(sb: &Sandbox, sql: &str) {
    Connection::open(&sb.db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn a_prune_keeps_the_chain_verifiable_and_the_anchor_found() {
    let sb = history();
    // The search index holds the texts too, once a search has run.
    let (code, found) = run(&sb, &["search", "old", "--format", "cmd"]);
    assert_eq!(code, Some(0), "{found}");
    let (_, anchor) = run(&sb, &["anchor"]);
    let (code, out) = run(
        &sb,
        &["prune", "--older-than", "180d", "--reason", "policy"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("pruned 10 records and 2 tmux events from before "),
        "{out}"
    );
    assert_eq!(ids(&sb), [11, 12]);
    assert_eq!(sb.events().len(), 1);
    let (code, found) = run(&sb, &["search", "old"]);
    assert_eq!(code, Some(1), "{found}");
    let indexed: i64 = Connection::open(&sb.db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM commands_fts WHERE commands_fts MATCH '\"old\"'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 0, "the pruned texts are gone from the index too");
    let (code, found) = run(&sb, &["search", "new", "--format", "cmd"]);
    assert_eq!(
        (code, found.as_str()),
        (Some(0), "echo new 11\necho new 12\n")
    );

    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("intact: 2 records (ids 11 to 12")
            && text.contains("pruned: 10 records (among ids 1 to 10) from before ")
            && text.contains("pruned: 2 tmux events (among ids 1 to 2)")
            && text.contains("policy"),
        "{text}"
    );
    // The session's first ten commands went on purpose: not lost.
    assert!(!text.contains("missing"), "{text}");
    let (_, report) = run(&sb, &["report"]);
    assert!(!report.contains("never arrived"), "{report}");

    // The anchor taken before the prune names the newest rows, which stay.
    let (code, text) = run(&sb, &["verify", "--anchor", &anchor]);
    assert_eq!(code, Some(0), "{text}");
    let (_, anchor) = run(&sb, &["anchor"]);
    assert!(anchor.contains("trace entry 3 (prune)"), "{anchor}");
    let (code, text) = run(&sb, &["verify", "--anchor", &anchor]);
    assert_eq!(code, Some(0), "{text}");

    // Later records extend the chain after the prune.
    record_at(&sb, "s", 13, "echo 13", 0, 0);
    let (code, text) = run(&sb, &["verify", "--anchor", &anchor]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("intact: 3 records (ids 11 to 13"), "{text}");
}

#[test]
fn a_deletion_beside_a_prune_is_still_tampering() {
    let cases = [
        // By hand after the prune: the row after it no longer follows.
        ("", "DELETE FROM commands WHERE id = 11", "record 12 "),
        // By hand before the prune, hidden among the pruned rows.
        ("DELETE FROM commands WHERE id = 5", "", "record 11 "),
        // The prune's own entry edited.
        (
            "",
            "UPDATE chain_trace SET detail = replace(detail, '\"pruned\":10', '\"pruned\":11') WHERE kind = 'prune'",
            "trace entry 2",
        ),
        ("", "DELETE FROM chain_trace WHERE kind = 'prune'", "record 11 "),
        (
            "",
            "UPDATE pruned_sessions SET pruned = pruned + 3",
            "counts of pruned records per shell session",
        ),
    ];
    for (before, after, named) in cases {
        let sb = history();
        if !before.is_empty() {
            sql(&sb, before);
        }
        let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
        assert_eq!(code, Some(0), "{out}");
        if !after.is_empty() {
            sql(&sb, after);
        }
        let (code, text) = run(&sb, &["verify"]);
        assert_eq!(code, Some(1), "{before}{after}: {text}");
        assert!(
            text.contains("NOT INTACT") && text.contains(named),
            "{before}{after}: {text}"
        );
    }
}

/// The row kept between two pruned runs is rewritten, its hash computed
/// anew from the link it had: its own check passes, but the run after it
/// recorded the hash it had before.
#[test]
fn a_row_between_pruned_runs_rewritten_with_a_new_hash_is_named() {
    let sb = history();
    let (code, out) = run(&sb, &["prune", "--older-than", "180d", "--keep-failed"]);
    assert_eq!(code, Some(0), "{out}");
    let db = Database::open(&sb.db).unwrap();
    let mut row = db.command(4).unwrap().unwrap();
    drop(db);
    row.record.command = "echo harmless".into();
    let conn = Connection::open(&sb.db).unwrap();
    let prev: Vec<u8> = conn
        .query_row("SELECT prev_hash FROM commands WHERE id = 4", [], |r| {
            r.get(0)
        })
        .unwrap();
    let hash = tmux_audit::chain::hash_command(
        &prev.try_into().unwrap(),
        4,
        &row.record,
        row.recorded_at_us,
    );
    conn.execute(
        "UPDATE commands SET command = 'echo harmless', hash = ?1 WHERE id = 4",
        [&hash[..]],
    )
    .unwrap();
    drop(conn);
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("NOT INTACT: record 11 "), "{text}");
}

#[test]
fn a_changed_row_is_not_pruned_away() {
    let sb = history();
    sql(
        &sb,
        "UPDATE commands SET command = 'echo harmless' WHERE id = 3",
    );
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("record 3 no longer matches its hash"), "{out}");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("record 3 "), "{text}");
}

/// When every record is old, the newest stays: the next one links to it.
#[test]
fn the_newest_record_stays_however_old() {
    let sb = Sandbox::new();
    for seq in 1..=3 {
        record_at(&sb, "s", seq, &format!("echo {seq}"), 0, 400);
    }
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ids(&sb), [3]);
    record_at(&sb, "s", 4, "echo 4", 0, 0);
    assert_eq!(ids(&sb), [3, 4]);
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
}

/// The database's files, byte for byte, and its rows.
fn snapshot(sb: &Sandbox) -> (Vec<Vec<u8>>, usize) {
    let dir = sb.db.parent().unwrap();
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with("-shm"))
        // An empty write-ahead log is what any reader leaves: no change.
        .filter(|p| !(p.to_string_lossy().ends_with("-wal") && fs::metadata(p).unwrap().len() == 0))
        .collect();
    names.sort();
    (
        names.iter().map(|p| fs::read(p).unwrap()).collect(),
        sb.rows().len(),
    )
}

#[test]
fn a_dry_run_counts_and_changes_nothing() {
    let sb = history();
    // The write-ahead log folded in first: a reader may fold it (the same
    // content, moved into the file), which is no change the dry run made.
    Connection::open(&sb.db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let before = snapshot(&sb);
    let (code, out) = run(
        &sb,
        &[
            "prune",
            "--older-than",
            "180d",
            "--keep-failed",
            "--dry-run",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("would prune 9 records and 2 tmux events from before ")
            && out.contains("1 as old kept")
            && out.contains("nothing changed (--dry-run)"),
        "{out}"
    );
    assert!(snapshot(&sb) == before, "the dry run changed the database");
}

#[test]
fn failed_and_matching_commands_stay_and_a_later_prune_takes_them() {
    let sb = history();
    let (code, out) = run(
        &sb,
        &[
            "prune",
            "--older-than",
            "180d",
            "--keep-failed",
            "--keep-matching",
            "^sudo ",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 as old kept"), "{out}");
    assert_eq!(ids(&sb), [4, 6, 11, 12]);
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("intact: 4 records (ids 4 to 12")
            && text.contains(
                "pruned: 8 records (among ids 1 to 10; 2 as old kept: failed, matching ^sudo )"
            ),
        "{text}"
    );
    // The gaps the first prune left are bridged by the second one's runs.
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ids(&sb), [11, 12]);
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("missing"), "{text}");
    // And a row deleted by hand among them is still named.
    sql(&sb, "DELETE FROM commands WHERE id = 11");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(1), "{text}");
}

/// The database and its write-ahead log, in bytes.
fn size(db: &Path) -> u64 {
    let wal = db.with_file_name("history.db-wal");
    fs::metadata(db).unwrap().len() + fs::metadata(wal).map_or(0, |m| m.len())
}

/// `n` commands of 2 KiB each, started 400 days ago, written straight
/// through the library (the recorder's own insert), and one today.
fn big_history(sb: &Sandbox, n: i64) {
    let old = now_us() - 400 * DAY_US;
    let entries: Vec<Entry> = (1..=n + 1)
        .map(|seq| {
            let mut record = tmux_audit::record::CommandRecord {
                command: format!("echo {seq} {}", "x".repeat(2048)),
                started_at_us: if seq > n { now_us() } else { old + seq },
                cwd: "/".into(),
                user: "u".into(),
                host: "h".into(),
                shell: "bash".into(),
                shell_session: "big".into(),
                seq,
                ..Default::default()
            };
            record.exit_status = Some(0);
            Entry::Command(record)
        })
        .collect();
    let mut db = Database::open(&sb.db).unwrap();
    db.insert_all(entries.iter().map(|e| (e, now_us())))
        .unwrap();
    drop(db);
    assert!(sb.flush());
}

#[test]
fn the_file_shrinks() {
    let sb = Sandbox::new();
    big_history(&sb, 2_000);
    let before = size(&sb.db);
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("pruned 2000 records"), "{out}");
    // Made by this tmux-audit: no rebuild needed.
    assert!(!out.contains("rebuilt"), "{out}");
    let after = size(&sb.db);
    assert!(
        after * 4 < before,
        "{before} bytes before, {after} after: {out}"
    );
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
}

/// Back to schema 11 as an earlier tmux-audit left it: no retention
/// tables, and incremental vacuum off.
fn as_before_retention(db: &Path) {
    crate::schemas::downgrade(db, 11);
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 0);
}

#[test]
fn a_database_from_before_retention_upgrades_and_shrinks() {
    let sb = Sandbox::new();
    big_history(&sb, 1_000);
    as_before_retention(&sb.db);
    let before = size(&sb.db);
    // Upgraded in place by the first process that opens it.
    record_at(&sb, "s", 1, "echo upgraded", 0, 0);
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("pruned 1000 records") && out.contains("rebuilt once (VACUUM)"),
        "{out}"
    );
    let conn = Connection::open(&sb.db).unwrap();
    let (version, mode): (i64, i64) = (
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap(),
        conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap(),
    );
    assert_eq!((version, mode), (crate::record::LATEST_SCHEMA, 2));
    let after = size(&sb.db);
    assert!(after * 4 < before, "{before} bytes before, {after} after");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn the_background_merge_prunes_once_a_day_as_configured() {
    let sb = history();
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        "[retention]\nolder_than = \"180d\"\nkeep_failed = true\n",
    )
    .unwrap();
    let merge_later = |sb: &Sandbox| {
        let (code, out) = run(sb, &["merge-later", "--after", "0"]);
        assert_eq!(code, Some(0), "{out}");
    };
    merge_later(&sb);
    assert_eq!(ids(&sb), [4, 11, 12]);
    // Once a day: a record as old added now stays until tomorrow's.
    record_at(&sb, "t", 1, "echo late", 0, 400);
    record_at(&sb, "t", 2, "echo today", 0, 0);
    assert!(sb.flush());
    merge_later(&sb);
    assert_eq!(ids(&sb), [4, 11, 12, 13, 14]);
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("(config.toml), daily"), "{text}");
}

/// Eight shells record at once, half their commands already old enough
/// to prune, while prunes run: every record lands once, and every old one
/// is pruned once.
#[test]
fn a_prune_racing_eight_recording_shells_loses_and_doubles_nothing() {
    const SHELLS: u32 = 8;
    const EACH: u32 = 24;
    let sb = history();
    let prunes = thread::scope(|scope| {
        let recorders: Vec<_> = (0..SHELLS)
            .map(|shell| {
                let sb = &sb;
                scope.spawn(move || {
                    for seq in 1..=EACH {
                        // Odd commands started 400 days ago: prunable at once.
                        let days = if seq % 2 == 1 { 400 } else { 0 };
                        let text = format!("echo {seq}");
                        record_at(sb, &format!("r{shell}"), seq, &text, 0, days);
                    }
                })
            })
            .collect();
        let mut prunes = 0;
        while prunes == 0 || recorders.iter().any(|r| !r.is_finished()) {
            let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
            assert_eq!(code, Some(0), "{out}");
            prunes += 1;
        }
        prunes
    });
    sb.wait_until_settled();
    // One more record today, so that no old one is the newest.
    record_at(&sb, "last", 1, "echo last", 0, 0);
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");

    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for row in sb.rows() {
        seen.entry(row.shell_session.clone())
            .or_default()
            .push(row.seq);
    }
    let conn = Connection::open(&sb.db).unwrap();
    let pruned: HashMap<String, i64> = conn
        .prepare("SELECT shell_session, pruned FROM pruned_sessions")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for shell in 0..SHELLS {
        let session = format!("r{shell}");
        let mut kept = seen.remove(&session).unwrap_or_default();
        kept.sort();
        let today: Vec<i64> = (1..=i64::from(EACH)).filter(|s| s % 2 == 0).collect();
        assert_eq!(kept, today, "{session}: the new records, each once");
        assert_eq!(
            pruned.get(&session),
            Some(&i64::from(EACH / 2)),
            "{session}: the old records, each pruned once"
        );
    }
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("missing"), "{prunes} prunes: {text}");
}
