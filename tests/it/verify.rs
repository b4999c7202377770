//! `tmux-audit verify` and `anchor`: records written by the real recorder,
//! then tampered with through SQLite directly, the way an attacker with
//! write access to the file would.

use std::fs;

use rusqlite::Connection;

use crate::support::{start_record, ProtectedDir, Sandbox};

/// Records `echo SEQ` as command SEQ of shell session `s`.
fn add(sb: &Sandbox, seq: u32) {
    let seq = seq.to_string();
    assert!(sb
        .record_numbered(&seq, &format!("echo {seq}"))
        .status
        .success());
}

fn history(n: u32) -> Sandbox {
    let sb = Sandbox::new();
    for seq in 1..=n {
        add(&sb, seq);
    }
    sb
}

fn verify(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String) {
    let out = sb.cmd().arg("verify").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn tamper(sb: &Sandbox, sql: &str) {
    assert!(sb.flush(), "the records in the database first");
    Connection::open(&sb.db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn an_untouched_chain_verifies() {
    let sb = history(5);
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("intact: 5 records (ids 1 to 5"), "{text}");
    assert!(
        !text.contains("before the chain"),
        "no older records: {text}"
    );
    assert!(
        !text.contains("segment"),
        "no capture, no segment line: {text}"
    );
    assert!(!text.contains("anchor found"), "no anchor given: {text}");
}

/// `anchor` needs an end of a chain: tmux events alone have one; a
/// database with no record and no event has none to give.
#[test]
fn anchor_takes_the_events_end_alone_and_refuses_a_chain_with_no_end() {
    let sb = Sandbox::new();
    add_event(&sb, 1);
    let out = sb.cmd().arg("anchor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tmux event 1"), "{text}");
    assert!(!text.contains("record"), "{text}");

    // A database made by the import of an empty history: no row at all.
    let sb = Sandbox::new();
    let empty = sb.path().join("empty-history");
    std::fs::write(&empty, "").unwrap();
    let import = sb.cmd().arg("import").arg("bash").arg(&empty).status();
    assert!(import.unwrap().success());
    let out = sb.cmd().arg("anchor").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to anchor"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn each_kind_of_tampering_is_caught_and_named() {
    let cases = [
        ("UPDATE commands SET command = 'echo harmless' WHERE id = 3", "record 3", "was changed"),
        ("UPDATE commands SET exit_status = 1, duration_us = 1 WHERE id = 2", "record 2", "was changed"),
        ("DELETE FROM commands WHERE id = 3", "record 4", "does not follow"),
        (
            "UPDATE commands SET started_at_us = CASE id WHEN 2 THEN (SELECT started_at_us FROM commands WHERE id = 4) \
             ELSE (SELECT started_at_us FROM commands WHERE id = 2) END WHERE id IN (2, 4)",
            "record 2",
            "was changed",
        ),
        (
            "INSERT INTO commands (id, command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us) \
             VALUES (99, 'forged', 1, '/', 'u', 0, 'h', 'bash', 'x', 1, 1)",
            "record 99",
            "has no hash",
        ),
        (
            "INSERT INTO commands (id, command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us, prev_hash, hash) \
             SELECT 6, 'forged', 1, '/', 'u', 0, 'h', 'bash', 'x', 1, 1, hash, randomblob(32) FROM commands WHERE id = 5",
            "record 6",
            "was changed",
        ),
    ];
    for (sql, id, what) in cases {
        let sb = history(5);
        tamper(&sb, sql);
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{sql}: {text}");
        assert!(text.contains(id) && text.contains(what), "{sql}: {text}");
    }
}

#[test]
fn an_anchor_kept_elsewhere_catches_deleted_newest_records() {
    let sb = history(5);
    let out = sb.cmd().arg("anchor").output().unwrap();
    let anchor = String::from_utf8(out.stdout).unwrap();
    assert!(anchor.contains("record 5"), "{anchor}");
    let hash = anchor.split_whitespace().next().unwrap().to_string();

    // More records after the anchor: still fine.
    add(&sb, 6);
    assert_eq!(verify(&sb, &["--anchor", &hash]).0, Some(0));

    // The newest records deleted: the chain itself is whole, the anchor is gone.
    tamper(&sb, "DELETE FROM commands WHERE id >= 5");
    assert_eq!(
        verify(&sb, &[]).0,
        Some(0),
        "without the anchor, truncation cannot be seen"
    );
    let (code, text) = verify(&sb, &["--anchor", &hash]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("anchor is not in the chain"), "{text}");

    let (code, text) = verify(&sb, &["--anchor", "not-a-hash"]);
    assert_eq!(code, Some(2), "{text}");
    // 64 bytes that are not 64 hex digits: a letter of two bytes (where a
    // pair of digits would be cut in the middle of it), signs that
    // `from_str_radix` takes. One line, no panic.
    for odd in [format!("a\u{e9}{}", "a".repeat(61)), "+f".repeat(32)] {
        assert_eq!(odd.len(), 64);
        let (code, text) = verify(&sb, &["--anchor", &odd]);
        assert_eq!(code, Some(2), "{odd}: {text}");
        assert!(text.contains("is not a hash"), "{odd}: {text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{odd}: {text}");
    }
}

#[test]
fn concurrent_writers_extend_one_chain() {
    let sb = Sandbox::new();
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let (bin, env) = (sb.bin.clone(), sb.env());
            std::thread::spawn(move || {
                for seq in 1..=20 {
                    let mut child =
                        start_record(&bin, &env, &format!("w{writer}"), seq, "echo concurrent");
                    assert!(child.wait().unwrap().success());
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    // Any record handed to record-later lands a little later.
    let rows = sb.wait_rows("every record", |rows| rows.len() == 320);
    assert_eq!(rows.len(), 320);
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn verify_names_shell_sessions_with_missing_records() {
    let sb = history(3);
    // Commands 4 and 5 of this session never arrived; 6 did.
    add(&sb, 6);
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(0), "the chain itself is whole: {text}");
    assert!(
        text.contains("missing: 2 of 6 commands of shell session s"),
        "{text}"
    );
    let (_, text) = verify(&history(3), &[]);
    assert!(!text.contains("missing"), "{text}");
}

#[test]
fn report_notes_that_records_never_arrived() {
    let sb = history(2);
    let out = sb.cmd().arg("report").output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never arrived"));
    add(&sb, 5);
    let out = sb.cmd().arg("report").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("note: 2 of 5 commands of shell session s (")
            && text.contains(") never arrived"),
        "{text}"
    );
}

/// The value of `column` of row `id` of `table`, as SQL would write it.
fn quoted(sb: &Sandbox, table: &str, column: &str, id: i64) -> String {
    Connection::open(&sb.db)
        .unwrap()
        .query_row(
            &format!("SELECT quote({column}) FROM {table} WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

/// Runs `UPDATE table SET column = change WHERE id = 2`, after checking
/// that it really changes the value.
fn change_column(sb: &Sandbox, table: &str, column: &str, change: &str) {
    assert!(sb.flush());
    let before = quoted(sb, table, column, 2);
    tamper(
        sb,
        &format!("UPDATE {table} SET {column} = {change} WHERE id = 2"),
    );
    let after = quoted(sb, table, column, 2);
    assert_ne!(before, after, "{column} = {change} changes nothing");
}

#[test]
fn every_hashed_column_of_a_command_changed_is_named() {
    // Each to a value it does not have: NULL to a value, a value to
    // another (and to NULL where the column allows it).
    let changes = [
        ("command", "command || 'x'"),
        ("command_raw", "X'ff00'"),
        ("exit_status", "exit_status + 1"),
        ("exit_status", "NULL"),
        ("started_at_us", "started_at_us + 1"),
        ("duration_us", "coalesce(duration_us, 0) + 1"),
        ("cwd", "cwd || 'x'"),
        ("cwd_raw", "X'ff'"),
        ("user", "user || 'x'"),
        ("uid", "uid + 1"),
        ("login_uid", "coalesce(login_uid, 0) + 1"),
        ("sudo_user", "coalesce(sudo_user, '') || 'x'"),
        ("host", "host || 'x'"),
        ("shell", "'zsh'"),
        ("shell_session", "shell_session || 'x'"),
        ("seq", "seq + 100"),
        ("tty", "coalesce(tty, '') || 'x'"),
        ("ssh_connection", "coalesce(ssh_connection, '') || 'x'"),
        ("tmux_socket", "coalesce(tmux_socket, '') || 'x'"),
        ("tmux_server_pid", "coalesce(tmux_server_pid, 0) + 1"),
        ("tmux_session_id", "coalesce(tmux_session_id, 0) + 1"),
        ("tmux_pane", "coalesce(tmux_pane, '') || 'x'"),
        ("recorded_at_us", "recorded_at_us + 1"),
        ("redacted", "1 - redacted"),
    ];
    for (column, change) in changes {
        let sb = history(3);
        change_column(&sb, "commands", column, change);
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{column}: {text}");
        assert!(
            text.contains("record 2") && text.contains("was changed"),
            "{column}: {text}"
        );
    }
}

/// Records a client-attached event of server `/tmp/s` with every field
/// set, through the hook's own command (no tmux needed to store one).
fn add_event(sb: &Sandbox, n: u32) {
    let out = sb
        .cmd()
        .args([
            "tmux-event",
            "client-attached",
            "socket_path=/tmp/s",
            "pid=42",
            "hook_client=/dev/pts/1",
            "client_name=/dev/pts/1",
            "client_tty=/dev/pts/1",
            "client_pid=7",
            "client_user=alice",
            "client_uid=1000",
            "client_termname=xterm",
            "hook_session=$1",
            "session_id=$1",
            &format!("session_name=prod{n}"),
            "hook_window=@2",
            "window_id=@2",
            "window_index=1",
            "window_name=w",
            "hook_pane=%3",
            "pane_id=%3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn every_hashed_column_of_a_tmux_event_changed_is_named() {
    let changes = [
        ("event", "event || 'x'"),
        ("at_us", "at_us + 1"),
        ("recorded_at_us", "recorded_at_us + 1"),
        ("event_key", "event_key || 'x'"),
        ("host", "host || 'x'"),
        ("user", "user || 'x'"),
        ("uid", "uid + 1"),
        ("tmux_socket", "tmux_socket || 'x'"),
        ("tmux_server_pid", "tmux_server_pid + 1"),
        ("session_id", "session_id + 1"),
        ("session_name", "session_name || 'x'"),
        ("window_id", "window_id + 1"),
        ("window_index", "window_index + 1"),
        ("window_name", "window_name || 'x'"),
        ("pane", "pane || 'x'"),
        ("client_name", "client_name || 'x'"),
        ("client_tty", "client_tty || 'x'"),
        ("client_pid", "client_pid + 1"),
        ("client_user", "'mallory'"),
        ("client_uid", "client_uid + 1"),
        ("client_termname", "client_termname || 'x'"),
    ];
    for (column, change) in changes {
        let sb = Sandbox::new();
        for n in 1..=3 {
            add_event(&sb, n);
        }
        assert_eq!(verify(&sb, &[]).0, Some(0));
        change_column(&sb, "tmux_events", column, change);
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{column}: {text}");
        assert!(
            text.contains("tmux event 2") && text.contains("was changed"),
            "{column}: {text}"
        );
    }
}

#[test]
fn a_forged_row_without_hashes_below_the_chain_is_caught_also_with_an_anchor() {
    for id in [0, -7] {
        let sb = history(3);
        let anchor = String::from_utf8(sb.cmd().arg("anchor").output().unwrap().stdout).unwrap();
        tamper(
            &sb,
            &format!(
                "INSERT INTO commands (id, command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us) \
                 VALUES ({id}, 'forged', 1, '/', 'u', 0, 'h', 'bash', 'x', 1, 1)"
            ),
        );
        for args in [vec![], vec!["--anchor", anchor.as_str()]] {
            let (code, text) = verify(&sb, &args);
            assert_eq!(code, Some(1), "id {id} {args:?}: {text}");
            assert!(
                text.contains(&format!("record {id} ")) && text.contains("has no hash"),
                "{text}"
            );
        }
    }
}

/// A database as tmux-audit wrote it before it kept a chain (schema 3),
/// with two records.
fn database_from_before_the_chain(sb: &Sandbox) {
    fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    let conn = Connection::open(&sb.db).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    for migration in [
        "0001_commands.sql",
        "0002_search.sql",
        "0003_lazy_search_index.sql",
    ] {
        let sql = fs::read_to_string(format!(
            "{}/src/db/migrations/{migration}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        conn.execute_batch(&sql).unwrap();
    }
    for seq in 1..=2 {
        conn.execute(
            "INSERT INTO commands (command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us)
             VALUES ('echo old', ?1, '/', 'u', 0, 'h', 'bash', 'old', ?1, ?1)",
            [seq],
        )
        .unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
}

#[test]
fn records_from_before_the_chain_are_fixed_when_it_starts() {
    let fresh = || {
        let sb = Sandbox::new();
        database_from_before_the_chain(&sb);
        add(&sb, 1);
        add(&sb, 2);
        sb
    };
    let sb = fresh();
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("intact: 2 records (ids 3 to 4")
            && text.contains("2 older records come before the chain"),
        "{text}"
    );
    // The old rows cannot be changed, removed or added to unseen.
    let forged = "INSERT INTO commands (id, command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us) \
                  VALUES (0, 'forged', 1, '/', 'u', 0, 'h', 'bash', 'x', 1, 1)";
    for (sql, named) in [
        (
            "UPDATE commands SET command = 'echo harmless' WHERE id = 1",
            "records from before the chain",
        ),
        (
            "DELETE FROM commands WHERE id = 2",
            "records from before the chain",
        ),
        (forged, "record 0 "),
        // Nor can the trace's first entry, which fixes them.
        (
            "UPDATE chain_trace SET first_id = 0 WHERE kind = 'chain-start'",
            "trace entry 1",
        ),
        ("DELETE FROM chain_trace", "no `chain-start` entry"),
    ] {
        let sb = fresh();
        tamper(&sb, sql);
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{sql}: {text}");
        assert!(text.contains(named), "{sql}: {text}");
    }
}

#[test]
fn edited_running_totals_are_named_and_counted_again() {
    let report = |sb: &Sandbox, by: &str| {
        let out = sb.cmd().args(["report", "--by", by]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    // (grouping, edit, whether the report shows it at once: an edit of
    // what the totals go on counting from shows in a later report)
    let edits = [
        ("user", "UPDATE report_totals SET commands = commands + 40, failures = failures + 3 WHERE name = 'user'", true),
        ("user", "UPDATE report_totals SET shown = replace(shown, '\"top_command\":\"echo 1\"', '\"top_command\":\"echo 3\"') WHERE name = 'user'", true),
        ("user", "UPDATE report_values SET n = 9 WHERE name = 'user' AND value = 'echo 3'", false),
        ("user", "UPDATE report_states SET state = replace(state, '\"users\":[', '\"users\":[\"mallory\",') WHERE name = 'user'", false),
        ("command", "DELETE FROM report_totals WHERE name = 'command' AND key = 'echo 3'", true),
        ("day", "UPDATE report_totals SET failures = failures + 2 WHERE name = 'day'", true),
        ("session", "UPDATE report_totals SET commands = commands + 1 WHERE name = 'session'", true),
        ("pane", "UPDATE session_totals SET highest_seq = recorded", true),
    ];
    for (by, sql, shown) in edits {
        let sb = history(3);
        // A session with a record that never arrived: `report` notes it.
        add(&sb, 5);
        let honest = report(&sb, by);
        tamper(&sb, sql);
        if shown {
            assert_ne!(report(&sb, by), honest, "{sql} changes the report");
        }
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{sql}: {text}");
        assert!(text.contains("running totals"), "{sql}: {text}");
        // Dropped by verify: counted again from the records.
        assert_eq!(report(&sb, by), honest, "{sql}");
        assert_eq!(verify(&sb, &[]).0, Some(0), "{sql}");
    }
}

/// Totals whose last counted row changed (its hash too: a rewrite) are
/// left to the chain, which names the row (they are counted again anyway),
/// not named a second time.
#[test]
fn totals_whose_last_row_changed_are_left_to_the_chain() {
    let sb = history(3);
    let out = sb.cmd().args(["report", "--by", "user"]).output().unwrap();
    assert!(out.status.success());
    tamper(
        &sb,
        "UPDATE commands SET command = 'echo 1', hash = zeroblob(32) WHERE seq = 3",
    );
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("record 3"), "{text}");
    assert!(
        !text.contains("running totals"),
        "the chain's, once: {text}"
    );
}

/// Totals placed by tmux events are used again while no event came since
/// they were counted (not counted again at each report): an edit of them
/// shows in the next report, until `verify` drops them.
#[test]
fn totals_placed_by_events_are_used_again_until_an_event_comes() {
    let sb = Sandbox::new();
    add_event(&sb, 1);
    add(&sb, 1);
    let report = || {
        let out = sb
            .cmd()
            .args(["report", "--by", "session"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let honest = report();
    tamper(
        &sb,
        "UPDATE report_totals SET commands = commands + 40 WHERE name = 'session'",
    );
    assert_ne!(report(), honest, "the totals kept were read");
    assert_eq!(verify(&sb, &[]).0, Some(1));
    assert_eq!(report(), honest);
}

/// Totals placed by a tmux event that changed since (its hash too: a
/// rewrite) are counted again, so the report shows the events as stored.
#[test]
fn totals_placed_by_an_event_changed_since_are_counted_again() {
    let sb = Sandbox::new();
    add_event(&sb, 1);
    sb.record_in_pane("1", "echo in-prod", "/tmp/s,42,1", "%3");
    let report = || {
        let out = sb
            .cmd()
            .args(["report", "--by", "session", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(report().contains("\"prod1\""), "{}", report());
    tamper(
        &sb,
        "UPDATE tmux_events SET session_name = 'renamed', hash = zeroblob(32)",
    );
    let now = report();
    assert!(
        now.contains("\"renamed\"") && !now.contains("prod1"),
        "{now}"
    );
}

/// A report `--typed-by` reads who typed each command from what the totals
/// by typist note (`command_typists`): an edit there shows in the report,
/// `verify` names it, and the next report places the commands again.
#[test]
fn edited_typists_are_named_and_placed_again() {
    let sb = Sandbox::new();
    // alice's client is attached to the session of pane %3.
    add_event(&sb, 1);
    sb.record_in_pane("1", "echo by-alice", "/tmp/s,42,1", "%3");
    sb.record_in_pane("2", "echo again", "/tmp/s,42,1", "%3");
    let report = || {
        let out = sb
            .cmd()
            .args(["report", "--by", "user", "--typed-by", "alice", "--json"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let honest = report();
    assert!(honest.contains("\"commands\": 2"), "{honest}");
    tamper(&sb, "UPDATE command_typists SET typist = 'mallory'");
    assert_ne!(report(), honest, "who typed them was read as noted");
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("running totals") && text.contains("who typed it"),
        "{text}"
    );
    assert_eq!(report(), honest);
    assert_eq!(verify(&sb, &[]).0, Some(0));
}

/// Of several shell sessions, verify names the one whose totals differ.
#[test]
fn verify_names_the_shell_session_whose_totals_differ() {
    let sb = Sandbox::new();
    for session in ["first", "second", "third"] {
        let args = [
            "--shell",
            "bash",
            "--session",
            session,
            "--seq",
            "1",
            "--exit",
            "0",
        ];
        assert!(sb.record(b"echo x", &args).status.success());
    }
    let out = sb.cmd().args(["report", "--by", "pane"]).output().unwrap();
    assert!(out.status.success());
    tamper(
        &sb,
        "UPDATE session_totals SET recorded = 5 WHERE shell_session = 'second'",
    );
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("shell session \"second\"") && !text.contains("\"first\""),
        "{text}"
    );
}

/// A database of schema 16, with running totals counted as that version
/// kept them, is upgraded in place by the next `report`: every grouping's
/// totals are counted, each report from them is the report counted from
/// the rows (a filter that keeps every row takes that path), and `verify`
/// agrees.
#[test]
fn a_version_16_database_gets_every_grouping_s_totals_in_place() {
    let sb = history(3);
    add(&sb, 5);
    let report = |by: &str, more: &[&str]| {
        let out = sb
            .cmd()
            .args(["report", "--by", by, "--json"])
            .args(more)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for by in ["pane", "user", "command"] {
        report(by, &[]);
    }
    assert!(sb.flush());
    crate::schemas::downgrade(&sb.db, 16);
    for by in crate::support::REPORT_GROUPINGS {
        let from_totals = report(by, &[]);
        let from_rows = report(by, &["--since", "1970-01-02"]);
        assert_eq!(from_totals, from_rows, "{by}");
    }
    let conn = Connection::open(&sb.db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::record::LATEST_SCHEMA);
    let counted: i64 = conn
        .query_row(
            "SELECT count(*) FROM totals_state WHERE name <> 'sessions'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        counted,
        crate::support::REPORT_GROUPINGS.len() as i64,
        "every grouping's totals"
    );
    assert_eq!(verify(&sb, &[]).0, Some(0));
}

/// The spool's lines, without the newest merge: records 1 (which made the
/// database) is stored, 2 to 4 wait.
fn spooled_history(sb: &Sandbox) -> Vec<String> {
    for seq in 1..=4 {
        add(sb, seq);
    }
    let spool = sb.spooled();
    let lines: Vec<String> = spool.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{spool}");
    lines
}

fn rewrite_spool(sb: &Sandbox, lines: &[String]) {
    let spool = format!("{}-spool", sb.db.display());
    fs::write(spool, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_spool_line_edited_removed_or_moved_is_named_at_the_merge_and_by_verify() {
    type Edit = fn(&mut Vec<String>);
    let edits: [(&str, Edit, &str); 3] = [
        (
            "edited",
            |l| l[1] = l[1].replace("echo 3", "echo X"),
            "record 3",
        ),
        ("removed", |l| drop(l.remove(0)), "record 2"),
        ("moved", |l| l.swap(0, 1), "record 2"),
    ];
    for (what, edit, named) in edits {
        let sb = Sandbox::new();
        let mut lines = spooled_history(&sb);
        edit(&mut lines);
        rewrite_spool(&sb, &lines);
        // Waiting: verify names it where it is, when the database cannot
        // take the spool…
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(
            text.contains("spool line") && text.contains(named),
            "{what}: {text}"
        );
        // …and after the merge, from the trace, every time.
        assert!(
            sb.log().contains("of the spool") || sb.log().contains("-spool ("),
            "{what}: {}",
            sb.log()
        );
        let (code, text) = verify(&sb, &[]);
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(
            text.contains(&format!("{named} came from a spool line")),
            "{what}: {text}"
        );
    }
}

#[test]
fn spool_lines_that_wait_are_checked_where_they_are() {
    let sb = Sandbox::new();
    let dir = ProtectedDir::new(&sb.path().join("db"));
    let db = dir.path.join("history.db");
    let env = [("TMUX_AUDIT_DB", Some(db.as_os_str()))];
    for seq in 1..=4 {
        let seq = seq.to_string();
        let args = crate::support::numbered(&seq);
        let out = sb.record_with(format!("echo {seq}").as_bytes(), &args, &env);
        assert!(out.status.success());
    }
    let spool = format!("{}-spool", db.display());
    let text = fs::read_to_string(&spool).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    fs::write(&spool, text.replace("echo 4", "echo X")).unwrap();
    // A database that cannot take the spool: the lines stay where they are.
    dir.read_only(true);
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_DB", &db)
        .arg("verify")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("line 3 of") && text.contains("waiting to be merged"),
        "{text}"
    );
    // An anchor now would leave the waiting records out: there is none.
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_DB", &db)
        .arg("anchor")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("wait in the spool"), "{err}");
    dir.read_only(false);
}

#[test]
fn an_anchor_covers_records_that_waited_in_the_spool() {
    let sb = Sandbox::new();
    spooled_history(&sb);
    let out = sb.cmd().arg("anchor").output().unwrap();
    let anchor = String::from_utf8(out.stdout).unwrap();
    assert!(anchor.contains("record 4,"), "merged first: {anchor}");
    tamper(&sb, "DELETE FROM commands WHERE id = 4");
    let (code, text) = verify(&sb, &["--anchor", &anchor]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("anchor is not in the chain"), "{text}");
}

#[test]
fn an_untouched_spool_merges_quietly() {
    let sb = Sandbox::new();
    spooled_history(&sb);
    let (code, text) = verify(&sb, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!sb.log().contains("spool"), "{}", sb.log());
}

/// A spool line as the tmux-audit before spool links wrote it: no link;
/// `recorded_at_us` replaced when given.
fn without_link(line: &str, recorded_at_us: Option<i64>) -> String {
    let (content, link) = line.rsplit_once(",\"link\":\"").expect("a linked line");
    assert_eq!(link.len(), 66, "{link}");
    let content = format!("{content}}}");
    match recorded_at_us {
        Some(at) => {
            let rest = content.split_once(',').unwrap().1;
            format!("{{\"recorded_at_us\":{at},{rest}")
        }
        None => content,
    }
}

#[test]
fn a_spool_line_without_a_link_is_named_unless_it_predates_the_upgrade() {
    // Before the spool's lines, one as the tmux-audit before the upgrade
    // wrote it (record 9 of the session); the lines after it were linked
    // from the start, as their writer found no link to follow.
    let with_old_line = |recorded_at_us: Option<i64>| {
        let sb = Sandbox::new();
        let mut lines = spooled_history(&sb);
        let old = without_link(&lines[2], recorded_at_us)
            .replace("\"seq\":4", "\"seq\":9")
            .replace("echo 4", "echo 9");
        lines.insert(0, old);
        rewrite_spool(&sb, &lines);
        sb
    };
    // Spooled before the trace began: accepted, and listed.
    let (code, text) = verify(&with_old_line(Some(1)), &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("unlinked: 1 records (ids 2 to 2) came from spool lines without links"),
        "{text}"
    );
    // Without a link, and spooled since: a forgery.
    let (code, text) = verify(&with_old_line(None), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("record 2 came from a spool line that carries no link"),
        "{text}"
    );
    assert!(!text.contains("record 3"), "{text}");
}
