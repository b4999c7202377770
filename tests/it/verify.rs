//! `tmux-audit verify` and `anchor`: records written by the real recorder,
//! then tampered with through SQLite directly, the way an attacker with
//! write access to the file would.

use rusqlite::Connection;

use crate::support::{start_record, Sandbox};

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
}

#[test]
fn each_kind_of_tampering_is_caught_and_named() {
    let cases = [
        ("UPDATE commands SET command = 'echo harmless' WHERE id = 3", "record 3", "was changed"),
        ("UPDATE commands SET exit_status = 0, duration_us = 1 WHERE id = 2", "record 2", "was changed"),
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
