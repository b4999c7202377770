//! `tmux-audit redact`: a secret that got past the patterns is removed
//! from a stored record, the change is explained by a chained trace entry,
//! and `verify` stays intact and lists it; a raw edit is still named.

use std::fs;

use rusqlite::Connection;

use crate::support::Sandbox;

const PIN: &str = "8675309";

/// Three records of shell session `s`; the second holds the pin twice.
fn history() -> Sandbox {
    let sb = Sandbox::new();
    for (seq, text) in [
        ("1", "echo one".to_string()),
        ("2", format!("unlock --pin {PIN} && echo {PIN}")),
        ("3", "echo three".to_string()),
    ] {
        assert!(sb.record_numbered(seq, &text).status.success());
    }
    sb
}

fn run(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = sb.cmd().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether any file of the database (or its spool) holds `text`.
fn on_disk(sb: &Sandbox, text: &str) -> Vec<String> {
    let dir = sb.db.parent().unwrap();
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let bytes = fs::read(&path).ok()?;
            bytes
                .windows(text.len())
                .any(|w| w == text.as_bytes())
                .then(|| path.display().to_string())
        })
        .collect()
}

#[test]
fn redact_removes_the_text_everywhere_and_verify_lists_it() {
    let sb = history();
    // The search index holds the text too, once a search has run, and the
    // running totals once a report has (each group's commands, and the
    // groups by command).
    let (code, found, _) = run(&sb, &["search", PIN, "--format", "cmd"]);
    assert_eq!(code, Some(0), "{found}");
    for by in ["user", "command"] {
        let (code, out, err) = run(&sb, &["report", "--by", by]);
        assert_eq!(code, Some(0), "{out}{err}");
    }
    let (code, out, err) = run(
        &sb,
        &[
            "redact",
            "2",
            "--pattern",
            "[0-9]{7}",
            "--reason",
            "pasted the door pin",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("record 2: 2 matches replaced with [REDACTED]"),
        "{out}"
    );

    let (_, text, _) = run(&sb, &["show", "2", "--format", "json"]);
    assert!(
        text.contains("unlock --pin [REDACTED] && echo [REDACTED]")
            && text.contains("\"redacted\": true"),
        "{text}"
    );
    let (code, _, _) = run(&sb, &["search", PIN]);
    assert_eq!(code, Some(1), "the index no longer finds it");
    let (code, found, _) = run(&sb, &["search", "unlock", "--format", "cmd"]);
    assert_eq!(
        (code, found.trim()),
        (Some(0), "unlock --pin [REDACTED] && echo [REDACTED]")
    );
    assert_eq!(
        on_disk(&sb, PIN),
        Vec::<String>::new(),
        "not in the database, its WAL or spool"
    );

    let (code, text, _) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("intact: 3 records")
            && text.contains("redacted: record 2, 2 matches of a pattern")
            && text.contains("pasted the door pin"),
        "{text}"
    );
    // An anchor taken now covers the redaction.
    let (_, anchor, _) = run(&sb, &["anchor"]);
    assert!(anchor.contains("trace entry 2 (redaction)"), "{anchor}");
    let (code, text, _) = run(&sb, &["verify", "--anchor", &anchor]);
    assert_eq!(code, Some(0), "{text}");

    // The whole text, in a second redaction of the same record.
    let (code, out, err) = run(&sb, &["redact", "2"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, text, _) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("redacted: record 2, the whole text"),
        "{text}"
    );
}

#[test]
fn a_raw_edit_of_the_record_or_its_trace_is_still_named() {
    let edits = [
        (
            "UPDATE commands SET command = 'echo harmless' WHERE id = 2",
            "record 2",
            "was changed",
        ),
        (
            "UPDATE commands SET exit_status = 1 WHERE id = 2",
            "record 2",
            "was changed",
        ),
        (
            "UPDATE chain_trace SET reason = 'routine' WHERE kind = 'redaction'",
            "trace entry 2",
            "was changed",
        ),
        (
            "DELETE FROM chain_trace WHERE kind = 'redaction'",
            "record 2",
            "was changed",
        ),
    ];
    for (sql, named, how) in edits {
        let sb = history();
        let (code, out, err) = run(&sb, &["redact", "2", "--reason", "pin"]);
        assert_eq!(code, Some(0), "{out}{err}");
        Connection::open(&sb.db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let (code, text, _) = run(&sb, &["verify"]);
        assert_eq!(code, Some(1), "{sql}: {text}");
        assert!(text.contains(named) && text.contains(how), "{sql}: {text}");
    }
    // The same change as redact makes, without its trace entry.
    let sb = history();
    assert!(sb.flush());
    let changed = Connection::open(&sb.db)
        .unwrap()
        .execute(
            "UPDATE commands SET command = '[REDACTED]', redacted = 1 WHERE id = 2",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let (code, text, _) = run(&sb, &["verify"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("record 2") && text.contains("was changed"),
        "{text}"
    );
    // And redact refuses to paper over it.
    let (code, _, err) = run(&sb, &["redact", "2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no longer matches its hash"), "{err}");
}

#[test]
fn bad_redact_input_is_one_line_and_changes_nothing() {
    let sb = history();
    for (args, says) in [
        (vec!["redact", "99"], "no record 99"),
        (
            vec!["redact", "2", "--pattern", "("],
            "not a valid regular expression",
        ),
        (
            vec!["redact", "2", "--pattern", "nowhere"],
            "matches nothing",
        ),
        (vec!["redact", "two"], "invalid value"),
    ] {
        let (code, out, err) = run(&sb, &args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (code, text, _) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("redacted:"), "{text}");
    let (_, help, _) = run(&sb, &["redact", "--help"]);
    assert!(
        help.contains("--pattern") && help.contains("--reason"),
        "{help}"
    );
}
