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

use crate::support::{Rc, Sandbox, Shell, Tmux};

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

/// `180` alone (seconds? days?) and a zero age would prune nearly the
/// whole history: both are refused with a line saying what to write, from
/// the command line and from `[retention]`, and nothing goes.
#[test]
fn an_age_without_unit_or_of_zero_is_refused_and_nothing_goes() {
    let sb = history();
    let before = ids(&sb);
    let (code, out) = run(&sb, &["prune", "--older-than", "180"]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(
        out.trim(),
        "tmux-audit: error: \"180\" has no unit: write \"180d\" for 180 days (or a span such as 26w, 12h) (--older-than)"
    );
    let (code, out) = run(&sb, &["prune", "--older-than", "0s"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("would delete every record"), "{out}");
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        "[retention]\nolder_than = \"180\"\n",
    )
    .unwrap();
    let (code, out) = run(&sb, &["prune", "--dry-run"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("write \"180d\"")
            && out.ends_with("([retention] older_than in config.toml)\n"),
        "{out}"
    );
    assert_eq!(ids(&sb), before);
}

/// Entries imported without a time (bash without HISTTIMEFORMAT) are
/// stored as 1970: they age from their import instead, so a prune keeps
/// them while it takes old entries whose time is known.
#[test]
fn untimed_imported_entries_age_from_their_import() {
    let sb = Sandbox::new();
    let untimed = sb.path().join("bash_history");
    fs::write(&untimed, "ls\nmake\n").unwrap();
    let timed = sb.path().join("old_bash_history");
    fs::write(&timed, "#1600000000\nold one\n#1600000001\nold two\n").unwrap();
    for file in [&untimed, &timed] {
        let (code, out) = run(&sb, &["import", "bash", file.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{out}");
    }
    record_at(&sb, "t", 1, "today", 0, 0);
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("pruned 2 records "), "{out}");
    let (_, left) = run(&sb, &["search", "--all", "--format", "cmd"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(left, ["ls", "make", "today"]);
    let (code, out) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{out}");
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
    // A broken chain is named as broken, not as a prune undone too.
    assert!(!text.contains("does not step over"), "{text}");
}

/// The first row after a pruned run links to the run's last hash (which
/// the prune's checkpoint keeps): a row whose stored link was changed,
/// however intact its own hash, is named.
#[test]
fn a_row_after_a_pruned_run_with_its_link_changed_is_named() {
    let sb = history();
    let (code, out) = run(&sb, &["prune", "--older-than", "180d", "--keep-failed"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    sql(&sb, "UPDATE commands SET prev_hash = hash WHERE id = 11");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("NOT INTACT: record 11 "), "{text}");
}

/// Rows a prune deleted, put back from a copy of the database taken
/// before it (each still linked as it was): the chain is whole, but the
/// trace says they went, and `verify` says they are back.
#[test]
fn pruned_rows_put_back_from_a_copy_are_named() {
    let sb = history();
    let copy = sb.path().join("before-prune.db");
    sql(&sb, &format!("VACUUM INTO '{}'", copy.display()));
    let (code, out) = run(&sb, &["prune", "--older-than", "180d", "--keep-failed"]);
    assert_eq!(code, Some(0), "{out}");
    sql(
        &sb,
        &format!(
            "ATTACH '{}' AS before;
             INSERT INTO commands SELECT * FROM before.commands
             WHERE id NOT IN (SELECT id FROM main.commands);",
            copy.display()
        ),
    );
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("were pruned, but the chain does not step over them"),
        "{text}"
    );
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

/// A session whose newest commands were pruned (its rows left end lower
/// than its numbers went) has no hole: `verify` counted them as records
/// that never arrived ("missing: -1 of 1").
#[test]
fn pruning_the_newest_commands_of_a_session_is_no_hole() {
    let sb = Sandbox::new();
    record_at(&sb, "t", 1, "echo keep", 0, 400);
    record_at(&sb, "t", 2, "echo drop", 0, 400);
    record_at(&sb, "u", 1, "echo today", 0, 0);
    let (code, out) = run(
        &sb,
        &[
            "prune",
            "--older-than",
            "180d",
            "--keep-matching",
            "^echo keep",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("pruned 1 record and"), "{out}");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("missing"), "{text}");
    // Nor does `report`, from its running totals, name a hole.
    let (code, text) = run(&sb, &["report"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("never arrived"), "{text}");
    // A record that never arrived is still named, by both.
    record_at(&sb, "t", 4, "echo four", 0, 0);
    let (_, text) = run(&sb, &["verify"]);
    assert!(
        text.contains("missing: 1 of 4 commands of shell session t "),
        "{text}"
    );
    let (_, text) = run(&sb, &["report"]);
    assert!(
        text.contains("note: 1 of 4 commands of shell session t "),
        "{text}"
    );
}

/// Eight real shells (bash, zsh and fish) in one tmux server type their
/// commands while prunes run, every command older than the prune's start
/// prunable but those kept by `--keep-matching`: every command lands once,
/// the kept ones stay, and the others are each pruned once (counted in
/// the prune's checkpoint), `verify` intact.
#[test]
fn a_prune_racing_eight_recording_shells_loses_and_doubles_nothing() {
    const EACH: usize = 6;
    let kinds = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Bash,
        Shell::Zsh,
    ];
    let prune = [
        "prune",
        "--older-than",
        "1ms",
        "--keep-matching",
        "^echo keep-",
    ];
    // Odd commands are kept, even ones pruned.
    let text = |pane: usize, seq: usize| {
        let kind = if seq % 2 == 1 { "keep" } else { "drop" };
        format!("echo {kind}-{pane}-{seq}")
    };
    let sb = history();
    let (tmux, first) = Tmux::start(&sb, &sb.shell(kinds[0], &Rc::default()));
    let mut panes = vec![first];
    for kind in &kinds[1..] {
        panes.push(tmux.split(&sb.shell(*kind, &Rc::default())));
    }
    for pane in &panes {
        pane.ready();
    }
    let prunes = thread::scope(|scope| {
        let typing = scope.spawn(|| {
            for seq in 1..=EACH {
                for (n, pane) in panes.iter().enumerate() {
                    pane.line(&text(n, seq));
                }
            }
            for pane in &panes {
                pane.wait_for("READY", EACH + 1);
            }
        });
        let mut prunes = 0;
        while prunes == 0 || !typing.is_finished() {
            let (code, out) = run(&sb, &prune);
            assert_eq!(code, Some(0), "{out}");
            prunes += 1;
        }
        prunes
    });
    // Each pane's shell session (its kept commands name it), its rows'
    // texts by seq, and how many of its records the prunes counted.
    let sessions = |sb: &Sandbox| {
        let rows = sb.rows();
        let conn = Connection::open(&sb.db).unwrap();
        let pruned: HashMap<String, i64> = conn
            .prepare("SELECT shell_session, pruned FROM pruned_sessions")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (0..kinds.len())
            .map(|n| {
                let first = text(n, 1);
                let session = rows
                    .iter()
                    .find(|r| r.command == first)
                    .map(|r| r.shell_session.clone())
                    .unwrap_or_default();
                let mut kept: Vec<(i64, String)> = rows
                    .iter()
                    .filter(|r| r.shell_session == session)
                    .map(|r| (r.seq, r.command.clone()))
                    .collect();
                kept.sort();
                let pruned = pruned.get(&session).map_or(0, |n| *n as usize);
                (kept, pruned)
            })
            .collect::<Vec<_>>()
    };
    // What the recorders read after the last prompt lands.
    crate::support::wait_until("every command stored or pruned", || {
        sessions(&sb)
            .iter()
            .all(|(kept, pruned)| kept.len() + pruned >= EACH)
    });
    // One more record today, the newest, so that no command of a shell is
    // kept for being the newest; a last prune takes what is left to take.
    record_at(&sb, "last", 1, "echo last", 0, 0);
    let (code, out) = run(&sb, &prune);
    assert_eq!(code, Some(0), "{out}");
    for (n, (kept, pruned)) in sessions(&sb).into_iter().enumerate() {
        let expected: Vec<(i64, String)> = (1..=EACH)
            .filter(|seq| seq % 2 == 1)
            .map(|seq| (seq as i64, text(n, seq)))
            .collect();
        assert_eq!(kept, expected, "pane {n} ({:?}): kept, each once", kinds[n]);
        assert_eq!(pruned, EACH / 2, "pane {n}: the others, each pruned once");
    }
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("missing"), "{prunes} prunes: {text}");
}

/// A prune of old tmux events only (today's commands stay) changes where
/// the report places those commands: the running totals by session are
/// counted again, not left as they were counted with the deleted events,
/// which `verify` would then name as changed.
#[test]
fn a_prune_of_old_tmux_events_has_the_totals_counted_again() {
    let sb = Sandbox::new();
    let server = |event: &str, days_ago: i64, name: &str| {
        Entry::TmuxEvent(TmuxEvent {
            event: event.into(),
            at_us: now_us() - days_ago * DAY_US,
            event_key: format!("{event}-{name}"),
            tmux_socket: "/tmp/tmux-0/default".into(),
            tmux_server_pid: 1,
            session_id: Some(1),
            session_name: Some(name.into()),
            ..TmuxEvent::default()
        })
    };
    let command = |seq: i64| {
        Entry::Command(tmux_audit::record::CommandRecord {
            command: format!("echo {seq}"),
            exit_status: Some(0),
            started_at_us: now_us() - 60_000_000 + seq,
            cwd: "/".into(),
            user: "u".into(),
            host: "h".into(),
            shell: "bash".into(),
            shell_session: "s".into(),
            seq,
            tmux_socket: Some("/tmp/tmux-0/default".into()),
            tmux_server_pid: Some(1),
            tmux_session_id: Some(1),
            tmux_pane: Some("%1".into()),
            ..Default::default()
        })
    };
    let entries = [
        server("session-created", 300, "long-ago"),
        command(1),
        command(2),
        // The newest event, which always stays: another server's.
        Entry::TmuxEvent(TmuxEvent {
            event: "session-created".into(),
            at_us: now_us(),
            event_key: "other".into(),
            tmux_socket: "/tmp/tmux-0/other".into(),
            tmux_server_pid: 2,
            session_id: Some(0),
            session_name: Some("other".into()),
            ..TmuxEvent::default()
        }),
    ];
    let mut db = Database::open(&sb.db).unwrap();
    db.insert_all(entries.iter().map(|e| (e, now_us())))
        .unwrap();
    drop(db);
    let (code, text) = run(&sb, &["report", "--by", "session"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("long-ago"), "placed by the old event: {text}");
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&sb, &["report", "--by", "session"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("long-ago"), "its event is gone: {text}");
}
