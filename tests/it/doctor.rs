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
    crate::support::copy_of_the_binary(&copy);
    tmux.run(&["run-shell", &format!("{} init tmux", copy.display())]);
    let (code, text) = doctor_in_tmux();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ok    tmux hooks  all 16 registered"),
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

/// tmux starts login shells, and a login bash does not read `~/.bashrc` by
/// itself. doctor's verdict on each set-up agrees with what a real login
/// bash does with it.
#[test]
fn doctor_tells_when_a_login_bash_never_reads_the_hook() {
    let sb = Sandbox::new();
    let home = sb.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let bin = crate::support::bin();
    fs::write(
        home.join(".bashrc"),
        format!("eval \"$('{}' init bash)\"\n", bin.display()),
    )
    .unwrap();
    let source_bashrc = "[ -f ~/.bashrc ] && . ~/.bashrc\n";
    /// A set-up's name, its login files (name, text), and whether a login
    /// bash loads the hook with them.
    type Setup<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
    let setups: [Setup; 4] = [
        ("no login file", &[], false),
        (
            "a .profile of its own",
            &[(".profile", "PATH=$PATH\n")],
            false,
        ),
        (
            "README's .bash_profile",
            &[(".bash_profile", source_bashrc)],
            true,
        ),
        (
            ".bash_profile first, .profile ignored",
            &[(".bash_profile", "true\n"), (".profile", source_bashrc)],
            false,
        ),
    ];
    for (name, files, loads) in setups {
        for file in [".bash_profile", ".bash_login", ".profile"] {
            let _ = fs::remove_file(home.join(file));
        }
        for (file, text) in files {
            fs::write(home.join(file), text).unwrap();
        }
        // What a real login bash does with it.
        let out = std::process::Command::new("bash")
            .args([
                "-l",
                "-i",
                "-c",
                "[[ $PROMPT_COMMAND == *tmux_audit* ]] && echo HOOKED",
            ])
            .env_clear()
            .envs(sb.env())
            .env("SHELL", "/bin/bash")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let hooked = String::from_utf8_lossy(&out.stdout).contains("HOOKED");
        assert_eq!(hooked, loads, "{name}: a real login bash");
        let out = sb
            .cmd()
            .env("SHELL", "/bin/bash")
            .arg("doctor")
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("login bash"))
            .unwrap_or_else(|| panic!("{name}: no login bash line in:\n{text}"));
        assert_eq!(line.starts_with("ok"), loads, "{name}: {line}");
        assert_eq!(out.status.code() == Some(0), loads, "{name}:\n{text}");
    }
}

/// Records that cannot reach the database are a problem in every line that
/// speaks of them, and an error in the log is not labelled `ok`.
#[test]
fn doctor_does_not_call_a_database_ok_that_records_cannot_reach() {
    let sb = Sandbox::new();
    let doctor_for = |db: &std::path::Path| {
        let out = sb
            .cmd()
            .env("TMUX_AUDIT_DB", db)
            .arg("doctor")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let record_into = |db: &std::path::Path, seq: &str| {
        let out = sb.record_with(
            b"echo lost?",
            &crate::support::numbered(seq),
            &[("TMUX_AUDIT_DB", Some(db.as_os_str()))],
        );
        assert!(out.status.success(), "{}", sb.log());
    };

    // A database that can never be made.
    let nowhere = std::path::Path::new("/proc/nope/h.db");
    for seq in ["1", "2", "3"] {
        record_into(nowhere, seq);
    }
    let (code, text) = doctor_for(nowhere);
    assert_eq!(code, Some(1), "{text}");
    for start in [
        "FAIL  database    /proc/nope/h.db: none, and it could not be made",
        "FAIL  spool       3 records",
        "warn  last error",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(start)),
            "{start:?} in:\n{text}"
        );
    }

    // A reader says they wait, on one line, and names the file.
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_DB", nowhere)
        .arg("search")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/proc/nope") && err.contains("3 records wait in the spool"),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "said once: {err}");

    // A directory where the database should be.
    let dir = sb.path().join("home").join("a-dir.db");
    fs::create_dir_all(&dir).unwrap();
    record_into(&dir, "4");
    let (code, text) = doctor_for(&dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL  database"), "{text}");
    assert!(
        text.contains(
            "FAIL  spool       1 record waiting: they move in once the database above is fixed"
        ),
        "{text}"
    );
    assert!(
        !text.contains("chmod 600"),
        "a directory is no file to chmod 600:\n{text}"
    );
    assert!(
        !text.contains("moved into the database by the next search"),
        "{text}"
    );
}
