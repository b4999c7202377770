//! `tmux-audit doctor`: what it finds, and `--repair` of a damaged database.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::{rows_in, Sandbox, Tmux};

fn record(sb: &Sandbox, seq: &str, text: &str) -> bool {
    sb.record_numbered(seq, text).status.success()
}

fn doctor(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String) {
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_SESSION", "s")
        .arg("doctor")
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_healthy_setup_is_all_ok() {
    let sb = Sandbox::new();
    assert!(record(&sb, "1", "true"));
    let (code, text) = doctor(&sb, &[]);
    assert_eq!(code, Some(0), "{text}");
    for line in [
        "ok    database",
        "ok    integrity",
        "ok    file system local",
        "ok    permissions",
        "ok    spool       empty",
        "ok    hook",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    // From a script or cron: no interactive shell, nothing to fail.
    let out = sb.cmd().arg("doctor").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ok    hook        not run from an interactive shell: not checked"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn the_hook_check_asks_for_a_record_of_this_shell_not_a_variable() {
    let sb = Sandbox::new();
    assert!(record(&sb, "1", "true"));
    let doctor_in = |session: &str| {
        let out = sb
            .cmd()
            .env("TMUX_AUDIT_SESSION", session)
            .arg("doctor")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    // The shell whose commands were recorded (record_numbered's session "s").
    let (code, text) = doctor_in("s");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ok    hook        records this shell: its command 1 at"),
        "{text}"
    );
    // A shell that exported the variable once, but whose hook a later rc
    // line replaced: nothing of it was ever recorded.
    let (code, text) = doctor_in("bash.1.2.3");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL  hook        loaded in this shell (session bash.1.2.3), but none of its commands was recorded"),
        "{text}"
    );
}

#[test]
fn files_others_can_read_are_named_with_the_fix() {
    let sb = Sandbox::new();
    assert!(record(&sb, "1", "true"));
    fs::set_permissions(&sb.db, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, text) = doctor(&sb, &[]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("is 644: others can read it") && text.contains("fix: chmod 600"),
        "{text}"
    );
}

#[test]
fn repair_moves_a_damaged_database_aside_and_starts_a_chain_that_says_so() {
    let sb = Sandbox::new();
    assert!(record(&sb, "1", "echo before"));
    let garbage = b"overwritten by something".repeat(100);
    fs::write(&sb.db, &garbage).unwrap();
    for sidecar in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{sidecar}", sb.db.display()));
    }
    assert!(record(&sb, "2", "echo during"), "spooled");

    let (code, text) = doctor(&sb, &[]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("FAIL  integrity") && text.contains("fix: tmux-audit doctor --repair"),
        "{text}"
    );
    assert!(text.contains("1 record waiting"), "{text}");

    let (code, text) = doctor(&sb, &["--repair"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("repaired: moved the damaged database to"),
        "{text}"
    );
    let moved: Vec<_> = fs::read_dir(sb.db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".broken-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        fs::read(&moved[0]).unwrap(),
        garbage,
        "moved, never deleted or changed"
    );
    let commands: Vec<_> = rows_in(&sb.db)
        .into_iter()
        .map(|r| r.record.command)
        .collect();
    assert_eq!(
        commands,
        ["echo during"],
        "the spool was merged into the new database"
    );

    let out = sb.cmd().arg("verify").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("the chain began anew") && text.contains(".broken-"),
        "{text}"
    );
}

#[test]
fn repair_merges_the_spool_into_a_healthy_database() {
    let sb = Sandbox::new();
    assert!(record(&sb, "1", "echo first"));
    assert!(sb.flush());
    // The next waits in the spool (it is merged every forty records or so).
    assert!(record(&sb, "2", "echo spooled"));
    let (code, text) = doctor(&sb, &[]);
    assert_eq!(code, Some(0), "waiting is no problem: {text}");
    assert!(
        text.contains("ok    spool       1 record waiting"),
        "{text}"
    );
    let (code, text) = doctor(&sb, &["--repair"]);
    assert!(
        text.contains("repaired: merged 1 spooled record into"),
        "{text}"
    );
    assert_eq!(code, Some(0), "{text}");
    let commands: Vec<_> = rows_in(&sb.db)
        .into_iter()
        .map(|r| r.record.command)
        .collect();
    assert_eq!(commands, ["echo first", "echo spooled"]);
}

#[test]
fn inside_tmux_the_hooks_of_init_tmux_and_their_binary_are_checked() {
    let sb = Sandbox::new();
    assert!(record(&sb, "1", "true"));
    let (tmux, _) = Tmux::start(&sb, "cat");
    let inside = format!("{},{},0", tmux.socket_path(), tmux.server_pid());
    let doctor_in_tmux = || {
        let out = sb
            .cmd()
            .env("TMUX_AUDIT_SESSION", "s")
            .env("TMUX", &inside)
            .arg("doctor")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL  tmux hooks  not registered in this tmux server"),
        "{text}"
    );

    // Registered by a copy of the binary, which is then removed.
    let copy = sb.path().join("moved/tmux-audit");
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    fs::copy(&sb.bin, &copy).unwrap();
    tmux.run(&["run-shell", &format!("{} init tmux", copy.display())]);
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ok    tmux hooks  all 14 registered"),
        "{text}"
    );
    fs::remove_file(&copy).unwrap();
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("they run {}, which is not there", copy.display())),
        "{text}"
    );

    // One hook of ours removed by hand.
    tmux.run(&["run-shell", &format!("{} init tmux", sb.bin.display())]);
    tmux.run(&["set-hook", "-gu", "client-active"]);
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("missing for client-active"), "{text}");

    // A hook as an older tmux-audit registered it: values through `#{q:…}`,
    // which leaves a guest's newline as it is.
    tmux.run(&[
        "set-hook",
        "-g",
        "client-active",
        &format!(
            "run-shell -b \"{} tmux-event client-active client_termname=#{{q:client_termname}}\"",
            sb.bin.display()
        ),
    ]);
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("registered by an older tmux-audit"), "{text}");
    tmux.run(&["run-shell", &format!("{} init tmux", sb.bin.display())]);
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(0), "{text}");
}
