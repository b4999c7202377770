//! The files tmux-audit keeps beside the database and for it: none is
//! used when another user can write it or its directory, none is opened
//! through a link; the log stays bounded; leftovers of a killed creation
//! go. The reproductions with a hostile neighbour use a real second Unix
//! user (needs root, as `shared.rs`; skipped elsewhere unless
//! TMUX_AUDIT_REQUIRE_USER_TESTS=1).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{numbered, rows_in, Sandbox};
use crate::users::{as_user, Users};

/// A hostile neighbour, `bob`, and a directory both he and the test (the
/// user recording, `alice`) can reach; None (the test skipped) without root.
fn neighbour(name: &str) -> Option<(Users, tempfile::TempDir)> {
    let users = match Users::create(&[name]) {
        Ok(users) => users,
        Err(why) => {
            assert!(
                std::env::var_os("TMUX_AUDIT_REQUIRE_USER_TESTS").is_none(),
                "this test must run here, but: {why}"
            );
            eprintln!("skipped: {why}");
            return None;
        }
    };
    let shared = tempfile::Builder::new()
        .prefix("ta-files")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o755)).unwrap();
    Some((users, shared))
}

/// A directory of bob's that everyone can write (777).
fn bobs_open_dir(bob: &str, dir: &Path) {
    fs::create_dir(dir).unwrap();
    let chown = std::process::Command::new("chown")
        .arg(bob)
        .arg(dir)
        .status()
        .unwrap();
    assert!(chown.success());
    sh_as(bob, &format!("chmod 777 '{}'", dir.display()));
}

/// Runs a shell script as `user`.
fn sh_as(user: &str, script: &str) -> Output {
    let out = as_user(user, &[], Path::new("/bin/sh"), &["-c", script]);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs tmux-audit as alice with the database at `db`.
fn alice(sb: &Sandbox, db: &Path, args: &[&str]) -> (bool, String, String) {
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_DB", db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn record(sb: &Sandbox, db: &Path, seq: &str, text: &str) {
    let out = sb.record_with(
        text.as_bytes(),
        &numbered(seq),
        &[("TMUX_AUDIT_DB", Some(db.as_os_str()))],
    );
    assert!(out.status.success(), "{out:?}");
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// Bob pre-creates a world-writable `x.db-wal` in a directory everyone can
/// write (as the system's temp directory is); alice sets TMUX_AUDIT_DB to
/// `x.db` there. Her commands must not reach his file: the database is
/// refused, the records wait in her own fallback spool, the log says once
/// what to do, and readers say it in one line. Once she has fixed it,
/// every record lands, once.
#[test]
fn a_wal_planted_in_a_directory_others_can_write_gets_none_of_the_records() {
    // Made first, so that it goes last: with the directory it removes,
    // the background merges it started end.
    let sb = Sandbox::new();
    let Some((users, shared)) = neighbour("fw") else {
        return;
    };
    let bob = &users.0[0];
    let open = shared.path().join("tmp");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    let db = open.join("x.db");
    let wal = with_suffix(&db, "-wal");
    sh_as(
        bob,
        &format!("umask 0; : > '{0}'; chmod 666 '{0}'", wal.display()),
    );

    record(&sb, &db, "1", "echo alice-secret-1");
    record(&sb, &db, "2", "echo alice-secret-2");
    let (merged, _, _) = alice(&sb, &db, &["flush"]);
    let (found, _, stderr) = alice(&sb, &db, &["search", "--format", "cmd"]);
    // Read by the test: SQLite, run by root (as this test is), takes a
    // WAL it opens over as its own, which it could not as alice.
    assert!(
        !String::from_utf8_lossy(&fs::read(&wal).unwrap()).contains("alice-secret"),
        "her commands reached bob's WAL"
    );
    assert!(!merged && !found, "the database is refused");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("chmod go-w {}", open.display())),
        "{stderr}"
    );
    let spooled = sb.spooled_for(&db);
    assert!(
        spooled.contains("alice-secret-1") && spooled.contains("alice-secret-2"),
        "kept in her fallback spool: {spooled}"
    );
    let log = sb.log();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(&format!("chmod go-w {}", open.display())))
            .count(),
        1,
        "one line with the fix: {log}"
    );

    // She makes the directory hers alone: bob's file is still refused, by name.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
    let (merged, _, stderr) = alice(&sb, &db, &["flush"]);
    assert!(!merged, "bob's WAL is still there");
    assert!(
        stderr.contains(&format!("{} belongs to another user", wal.display())),
        "{stderr}"
    );
    fs::remove_file(&wal).unwrap();
    let (merged, _, stderr) = alice(&sb, &db, &["flush"]);
    assert!(merged, "{stderr}");
    let commands: Vec<String> = rows_in(&db).into_iter().map(|r| r.record.command).collect();
    assert_eq!(commands, ["echo alice-secret-1", "echo alice-secret-2"]);
}

/// Bob makes a 777 directory; alice keeps her database there. Bob swaps
/// the `-wal` and `-shm` for files of his own, later deletes `history.db*`,
/// and alice records once more: `verify` must not say intact (it names the
/// directory), `doctor` names it too, bob's files get nothing, and no
/// record is lost.
#[test]
fn a_database_in_a_directory_another_user_can_write_is_refused_and_named() {
    // Made first, so that it goes last: with the directory it removes,
    // the background merges it started end.
    let sb = Sandbox::new();
    let Some((users, shared)) = neighbour("fd") else {
        return;
    };
    let bob = &users.0[0];
    let dir = shared.path().join("d");
    bobs_open_dir(bob, &dir);
    let db = dir.join("history.db");
    record(&sb, &db, "1", "echo first");
    for suffix in ["-wal", "-shm"] {
        sh_as(
            bob,
            &format!(
                "rm -f '{0}'; umask 0; : > '{0}'; chmod 666 '{0}'",
                with_suffix(&db, suffix).display()
            ),
        );
    }
    record(&sb, &db, "2", "echo second");
    let _ = alice(&sb, &db, &["flush"]);
    for suffix in ["-wal", "-shm"] {
        let his = fs::read(with_suffix(&db, suffix)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&his).contains("echo second"),
            "her command reached bob's {suffix}"
        );
    }
    sh_as(bob, &format!("rm -f '{}'*", db.display()));
    record(&sb, &db, "3", "echo third");

    let (intact, stdout, stderr) = alice(&sb, &db, &["verify"]);
    assert!(
        !intact && !stdout.contains("intact"),
        "verify: {stdout}{stderr}"
    );
    let named = format!("{} belongs to another user", dir.display());
    assert!(stderr.contains(&named), "{stderr}");
    let fix = "set TMUX_AUDIT_DB to a file in a directory of your own";
    assert!(stderr.contains(fix), "{stderr}");
    let (healthy, report, _) = alice(&sb, &db, &["doctor"]);
    assert!(!healthy && report.contains(&named), "{report}");
    assert!(report.contains(&format!("fix: {fix}")), "{report}");
    let spooled = sb.spooled_for(&db);
    for text in ["echo first", "echo second", "echo third"] {
        assert!(spooled.contains(text), "{text} kept: {spooled}");
    }
}

/// Bob links `history.db-spool.rejected` in his 777 directory to a file of
/// alice's: her next line set aside must not be appended to it.
#[test]
fn a_rejected_file_linked_by_another_user_is_not_written_through() {
    // Made first, so that it goes last: with the directory it removes,
    // the background merges it started end.
    let sb = Sandbox::new();
    let Some((users, shared)) = neighbour("fr") else {
        return;
    };
    let bob = &users.0[0];
    let dir = shared.path().join("d");
    bobs_open_dir(bob, &dir);
    let db = dir.join("history.db");
    let hers = sb.path().join("notes");
    fs::write(&hers, "mine\n").unwrap();
    let spool = with_suffix(&db, "-spool");
    sh_as(
        bob,
        &format!("ln -s '{}' '{}.rejected'", hers.display(), spool.display()),
    );
    record(&sb, &db, "1", "echo first");
    record(&sb, &db, "2", "echo second");
    // A line cut short, as a full disk leaves one, in her spool there.
    let mut cut = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&spool)
        .unwrap();
    std::io::Write::write_all(&mut cut, b"{\"recorded_at_us\":1,\"record\":{\"comm").unwrap();
    drop(cut);
    record(&sb, &db, "3", "echo third");
    let _ = alice(&sb, &db, &["flush"]);
    assert_eq!(fs::read_to_string(&hers).unwrap(), "mine\n");
}

/// In a directory only the user can write, a link or another user's file
/// where SQLite opens `-wal` or `-shm` is still refused (defence in depth):
/// nothing is written through it, the record waits, and the reader's error
/// names the file.
#[test]
fn a_link_at_the_wal_or_shm_is_not_opened() {
    for suffix in ["-wal", "-shm"] {
        let sb = Sandbox::new();
        assert!(sb.record_numbered("1", "echo first").status.success());
        let planted = with_suffix(&sb.db, suffix);
        let elsewhere = sb.path().join("elsewhere");
        fs::write(&elsewhere, "x").unwrap();
        let _ = fs::remove_file(&planted);
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        assert!(sb.record_numbered("2", "echo second").status.success());
        let (merged, _, stderr) = alice(&sb, &sb.db, &["flush"]);
        assert!(!merged, "{suffix}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is a symbolic link", planted.display())),
            "{stderr}"
        );
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "x", "{suffix}");
        assert!(sb.spooled().contains("echo second"));
        fs::remove_file(&planted).unwrap();
        assert!(sb.flush(), "{suffix}");
        assert!(sb.rows().iter().any(|r| r.command == "echo second"));
    }
}

/// A link planted at `<spool>.rejected` in the user's own directory: the
/// line set aside is not written through it, and is not lost (the spool
/// keeps it); the log says so.
#[test]
fn a_link_at_the_rejected_file_is_not_written_through() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert!(sb.record_numbered("2", "echo second").status.success());
    let spool = with_suffix(&sb.db, "-spool");
    let target = sb.path().join("notes");
    fs::write(&target, "mine\n").unwrap();
    std::os::unix::fs::symlink(&target, with_suffix(&spool, ".rejected")).unwrap();
    let mut bytes = fs::read(&spool).unwrap();
    bytes.extend_from_slice(b"{\"recorded_at_us\":1,\"record\":{\"comm\n");
    fs::write(&spool, bytes).unwrap();
    assert!(sb.flush());
    assert_eq!(fs::read_to_string(&target).unwrap(), "mine\n");
    assert!(
        fs::read_to_string(&spool)
            .unwrap()
            .contains("{\"recorded_at_us\":1,\"record\":{\"comm"),
        "the line is kept"
    );
    let commands: Vec<String> = rows_in(&sb.db)
        .into_iter()
        .map(|r| r.record.command)
        .collect();
    assert_eq!(commands, ["echo first", "echo second"]);
    assert!(sb.log().contains("is a symbolic link"), "{}", sb.log());
}

/// The log is kept under 1 MiB: a full one becomes `tmux-audit.log.1`
/// (one old log kept, no more) and the new line starts a new log.
#[test]
fn the_log_is_rotated_past_one_mebibyte() {
    let sb = Sandbox::new();
    fs::create_dir_all(&sb.state).unwrap();
    let log = sb.log_file();
    let old = with_suffix(&log, ".1");
    let line = "2026-01-01T00:00:00.000Z record: an old error; hint: none\n";
    let full = line.repeat(1024 * 1024 / line.len() + 1);
    for round in 1..=2 {
        fs::write(&log, &full).unwrap();
        // A broken config file is logged by every record.
        fs::create_dir_all(sb.path().join("config/tmux-audit")).unwrap();
        fs::write(sb.path().join("config/tmux-audit/config.toml"), "[[[").unwrap();
        assert!(sb
            .record_numbered(&round.to_string(), "true")
            .status
            .success());
        let now = fs::read_to_string(&log).unwrap();
        assert!(
            now.len() < 4096 && now.contains("config"),
            "round {round}: a new log of {} bytes",
            now.len()
        );
        assert_eq!(fs::read_to_string(&old).unwrap(), full, "round {round}");
    }
    let kept: Vec<String> = fs::read_dir(&sb.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("tmux-audit.log"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
}

/// A creation of the database killed halfway leaves
/// `history.db.new-<pid>-<nanos>` (and its -wal): the next creation, and
/// the background merge, remove those of processes that are gone, and
/// leave a running creation's alone.
#[test]
fn files_left_by_a_killed_creation_are_removed() {
    let sb = Sandbox::new();
    let dir = sb.db.parent().unwrap();
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    let gone = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    };
    let plant = |pid: u32| {
        let files = [
            dir.join(format!("history.db.new-{pid}-123")),
            dir.join(format!("history.db.new-{pid}-123-wal")),
        ];
        for file in &files {
            fs::write(file, "half made").unwrap();
            fs::set_permissions(file, fs::Permissions::from_mode(0o600)).unwrap();
        }
        files
    };
    let killed = plant(gone);
    let running = plant(std::process::id());
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert!(sb.db.exists());
    for file in &killed {
        assert!(!file.exists(), "{} left", file.display());
    }
    for file in &running {
        assert!(file.exists(), "{} removed", file.display());
    }
    // Left by a creation killed after the database was made: the
    // background merge clears them.
    let killed = plant(gone);
    assert!(sb.record_numbered("2", "echo second").status.success());
    let out = sb
        .cmd()
        .args(["merge-later", "--after", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for file in &killed {
        assert!(!file.exists(), "{} left", file.display());
    }
    assert_eq!(rows_in(&sb.db).len(), 2);
}
