//! `tmux-audit record` driven directly, as the hooks drive it: what it
//! stores, and what it does when the database is not usable.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use rusqlite::Connection;

use crate::support::{rows_in, Sandbox};

/// The schema version this build creates (the number of migrations).
pub(crate) const LATEST_SCHEMA: i64 = 24;

const BASH: &[&str] = &["--shell", "bash", "--session", "s1", "--exit", "0"];

fn args(seq: &str) -> Vec<&str> {
    let mut args = BASH.to_vec();
    args.extend(["--seq", seq]);
    args
}

#[test]
fn a_one_mebibyte_command_is_recorded_intact() {
    let sb = Sandbox::new();
    let mut command = Vec::new();
    while command.len() < 1 << 20 {
        command.extend_from_slice("echo 'ünï' \"$X\" \\\n\t".as_bytes());
    }
    let out = sb.record(&command, &args("1"));
    assert!(out.status.success(), "{out:?}");
    let rows = sb.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].command.as_bytes(), &command[..]);
    assert_eq!(rows[0].command_raw, None);
}

#[test]
fn a_hundred_mebibyte_paste_keeps_its_head_length_and_hash_in_bounded_memory() {
    use sha2::{Digest, Sha256};
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let line = b"echo 'pasted log line with some text in it' # 0123456789\n";
    let command: Vec<u8> = line.iter().copied().cycle().take(100 << 20).collect();
    let mut cmd = sb.cmd();
    cmd.arg("record").args(args("1")).stdin(Stdio::piped());
    // Reading it whole (and copying it to redact, encode and store it) took
    // over 400 MB: at most 64 MiB of address space, or the record fails.
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64 << 20,
                rlim_max: 64 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let command = command.clone();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&command);
            let _ = stdin.write_all(b"\n");
        })
    };
    let status = child.wait().unwrap();
    writer.join().unwrap();
    assert!(status.success(), "{}", sb.log());
    let rows = sb.rows();
    assert_eq!(rows.len(), 1, "{}", sb.log());
    let stored = rows[0].command.as_bytes();
    let head = 2 << 20;
    assert_eq!(&stored[..head], &command[..head]);
    let note = format!(
        "\n[tmux-audit: command cut after its first bytes; {} bytes in all, SHA-256 {}]",
        command.len(),
        Sha256::digest(&command)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(&stored[head..], note.as_bytes());
}

#[test]
fn the_command_length_limit_is_set_in_the_config_file() {
    let sb = Sandbox::new();
    sb.write_config("[record]\nmax_command_bytes = 8\n");
    assert!(sb.record(b"echo 1234567890", &args("1")).status.success());
    assert!(sb.record(b"echo 123", &args("2")).status.success());
    let rows = sb.rows();
    assert!(
        rows[0].command.starts_with(
            "echo 123\n[tmux-audit: command cut after its first bytes; 15 bytes in all"
        ),
        "{}",
        rows[0].command
    );
    assert_eq!(rows[1].command, "echo 123");
}

#[test]
fn invalid_utf8_and_nul_bytes_keep_their_exact_bytes() {
    let sb = Sandbox::new();
    let command = b"printf '\xff\xfe' \0 end".to_vec();
    let out = sb.record(&command, &args("1"));
    assert!(out.status.success(), "{out:?}");
    let row = &sb.rows()[0];
    assert_eq!(row.command_raw.as_deref(), Some(&command[..]));
    assert_eq!(row.command, "printf '\u{FFFD}\u{FFFD}' \u{FFFD} end");
}

#[test]
fn thirty_two_recorders_on_a_new_database_make_one_schema() {
    let sb = Sandbox::new();
    let mut children: Vec<_> = (1..=32)
        .map(|seq| {
            sb.cmd()
                .arg("record")
                .args(args(&seq.to_string()))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // All 32 are started before any of them gets its command.
    for (i, child) in children.iter_mut().enumerate() {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "echo {i}").unwrap();
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A writer that waited too long handed its record to record-later.
    sb.wait_rows("32 rows", |rows| rows.len() == 32);
    let conn = Connection::open(&sb.db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'commands'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((version, mode.as_str(), tables), (LATEST_SCHEMA, "wal", 1));
    assert!(sb.log().is_empty(), "{}", sb.log());
    let leftovers: Vec<_> = fs::read_dir(sb.db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".new-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn files_are_private_whatever_the_umask() {
    for umask in ["000", "277"] {
        files_are_private_under_umask(umask);
    }
}

fn files_are_private_under_umask(umask: &str) {
    let sb = Sandbox::new();
    // `record` under the umask, into the database at `db`.
    let record = |db: &str, seq: &str| {
        Command::new("sh")
            .args([
                "-c",
                &format!("umask {umask}; echo true | exec \"$@\""),
                "sh",
            ])
            .arg(&sb.bin)
            .arg("record")
            .args(args(seq))
            .env_clear()
            .envs(sb.env())
            .env("TMUX_AUDIT_DB", db)
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    // The first makes the database (and its directory). The second cannot
    // be stored (a file where its directory should be): it waits in the
    // fallback spool, and its failed merge goes to the log, which so
    // exists too.
    let locked_dir = sb.path().join("blocker");
    fs::write(&locked_dir, "a file where a directory should be").unwrap();
    assert!(record(&sb.db.display().to_string(), "1").success());
    assert!(record(&format!("{}/x.db", locked_dir.display()), "2").success());
    // The third goes to the spool beside the database.
    assert!(record(&sb.db.display().to_string(), "3").success());
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(sb.db.parent().unwrap()), 0o700);
    assert_eq!(mode(&sb.db), 0o600);
    for sidecar in ["-wal", "-shm", "-spool"] {
        let path = format!("{}{sidecar}", sb.db.display());
        assert_eq!(mode(std::path::Path::new(&path)), 0o600, "{path}");
    }
    assert_eq!(mode(&sb.state), 0o700);
    assert_eq!(mode(&sb.log_file()), 0o600);
    for entry in fs::read_dir(&sb.state).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

/// A database another process keeps locked does not hold up a record, also
/// when the spool is due to be merged: the records wait in the spool, and
/// land once the lock is gone.
#[test]
fn a_locked_database_never_holds_up_the_record() {
    let sb = Sandbox::new();
    assert!(sb.record(b"first", &args("1")).status.success());
    let mut holder = Connection::open(&sb.db).unwrap();
    let tx = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO commands (command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us) VALUES ('held', 0, '/', 'u', 0, 'h', 'bash', 'other', 1, 0)", []).unwrap();

    // Enough to pass the spool's size: the later ones each try to merge.
    let long = "x".repeat(2000);
    let started = std::time::Instant::now();
    for seq in 2..=30 {
        let out = sb.record(long.as_bytes(), &args(&seq.to_string()));
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }
    let took = started.elapsed();
    assert_eq!(
        rows_in(&sb.db).len(),
        1,
        "not stored while the lock is held"
    );
    assert!(
        sb.log().is_empty(),
        "a busy database is no error: {}",
        sb.log()
    );
    // Not a timing test (what a record costs with the database locked is
    // measured by `benches/record.rs`), only a liveness bound, the suite's
    // patience for anything: none waited for the lock to be released (each
    // would then hang, which `Sandbox::record` fails on too).
    assert!(took < crate::support::PATIENCE, "29 records took {took:?}");
    tx.commit().unwrap();

    let rows = sb.wait_rows("the records stored after the lock was released", |rows| {
        rows.len() == 31
    });
    assert_eq!(rows.iter().filter(|r| r.command == long).count(), 29);
}

/// Writers append while readers merge: every record lands exactly once.
#[test]
fn records_appended_while_readers_merge_land_exactly_once() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    let env = sb.env();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let merger = scope.spawn(|| {
            let mut merges = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(sb.flush(), "{}", sb.log());
                merges += 1;
            }
            merges
        });
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let (bin, env) = (&sb.bin, &env);
                scope.spawn(move || {
                    for seq in 1..=40 {
                        let session = format!("w{w}");
                        let text = format!("echo {w} {seq}");
                        let status = crate::support::start_record(bin, env, &session, seq, &text)
                            .wait()
                            .unwrap();
                        assert!(status.success());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            merger.join().unwrap() > 1,
            "merges ran while records were written"
        );
    });
    let rows = sb.rows();
    assert_eq!(rows.len(), 1 + 6 * 40, "each once");
    let mut seen: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.shell_session.clone(), r.seq))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rows.len());
    assert_eq!(sb.spooled(), "");
    assert!(!sb.log().contains("stored before"), "{}", sb.log());
}

/// A FIFO or a symbolic link planted where the spool goes is not used (a
/// FIFO would hang the prompt; a link would write elsewhere): the record
/// goes to the fallback spool.
#[test]
fn a_planted_fifo_or_link_at_the_spool_is_not_used() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    let spool = std::path::PathBuf::from(format!("{}-spool", sb.db.display()));
    let _ = fs::remove_file(&spool); // emptied by the merge of the first
    let fifo = std::ffi::CString::new(spool.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // A record that hangs on the FIFO fails (`Sandbox::record` gives it
    // the suite's patience).
    assert!(sb
        .record_numbered("2", "echo beside a fifo")
        .status
        .success());
    fs::remove_file(&spool).unwrap();

    let elsewhere = sb.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, &spool).unwrap();
    assert!(sb
        .record_numbered("3", "echo beside a link")
        .status
        .success());
    assert!(!elsewhere.exists(), "nothing written through the link");
    fs::remove_file(&spool).unwrap();

    let commands: Vec<String> = sb.rows().into_iter().map(|r| r.record.command).collect();
    assert_eq!(
        commands,
        ["echo first", "echo beside a fifo", "echo beside a link"]
    );
}

/// A line cut short (a full disk mid-write) or holding bytes that are not
/// UTF-8 costs only itself: it is moved to `<spool>.rejected`, and the
/// records around it, and after it, are stored.
#[test]
fn a_damaged_spool_line_is_set_aside_and_the_others_land() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert!(sb.record_numbered("2", "echo second").status.success());
    let spool = format!("{}-spool", sb.db.display());
    let mut bytes = fs::read(&spool).unwrap();
    bytes.extend_from_slice(b"{\"recorded_at_us\":1,\"record\":{\"command\":\"\xff\xfe\"}}\n");
    bytes.extend_from_slice(b"{\"recorded_at_us\":1,\"record\":{\"comm");
    fs::write(&spool, bytes).unwrap();
    assert!(sb.record_numbered("3", "echo third").status.success());
    let commands: Vec<String> = sb.rows().into_iter().map(|r| r.record.command).collect();
    assert_eq!(commands, ["echo first", "echo second", "echo third"]);
    let rejected = fs::read(format!("{spool}.rejected")).unwrap();
    assert_eq!(
        rejected
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
    assert!(sb.log().contains("are not records"), "{}", sb.log());
}

#[test]
fn an_impossible_schema_version_is_logged_not_a_crash() {
    let sb = Sandbox::new();
    assert!(sb.record(b"true", &args("1")).status.success());
    Connection::open(&sb.db)
        .unwrap()
        .pragma_update(None, "user_version", -1)
        .unwrap();
    assert!(sb.record(b"true", &args("2")).status.success(), "spooled");
    let out = sb.cmd().arg("flush").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schema version -1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_empty_tmux_audit_db_means_the_default_database() {
    let sb = Sandbox::new();
    let out = sb.record_with(b"true", &args("1"), &[("TMUX_AUDIT_DB", Some("".as_ref()))]);
    assert!(out.status.success());
    assert_eq!(
        sb.rows().len(),
        1,
        "stored in $XDG_DATA_HOME/tmux-audit/history.db"
    );
}

#[test]
fn a_corrupt_database_is_logged_and_left_in_place() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    let garbage = b"this is not a database, it is a text file that got here somehow".repeat(100);
    fs::write(&sb.db, &garbage).unwrap();
    assert!(sb.record(b"true", &args("1")).status.success(), "spooled");
    let out = sb.cmd().arg("flush").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
    assert!(sb.spooled().contains("true"), "kept in the spool");
    assert_eq!(
        fs::read(&sb.db).unwrap(),
        garbage,
        "never deleted or rewritten"
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused_with_a_hint() {
    let sb = Sandbox::new();
    assert!(sb.record(b"true", &args("1")).status.success());
    Connection::open(&sb.db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(sb.record(b"true", &args("2")).status.success(), "spooled");
    let out = sb.cmd().arg("search").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema version 99") && stderr.contains("upgrade tmux-audit"),
        "{stderr}"
    );
    assert_eq!(rows_in(&sb.db).len(), 1);
    assert_eq!(
        sb.spooled().lines().count(),
        1,
        "kept for when a newer tmux-audit runs"
    );
}

#[test]
fn the_same_command_recorded_twice_is_stored_once() {
    let sb = Sandbox::new();
    assert!(sb.record(b"echo once", &args("7")).status.success());
    assert!(sb.record(b"echo once", &args("7")).status.success());
    assert_eq!(sb.rows().len(), 1);
    assert!(sb.log().contains("were stored before"), "{}", sb.log());
}

#[test]
fn the_context_comes_from_the_environment() {
    let sb = Sandbox::new();
    let out = {
        let mut child = sb
            .cmd()
            .arg("record")
            .args(args("1"))
            .args([
                "--start-us",
                "1764000000000000",
                "--end-us",
                "1764000002500000",
            ])
            .arg("--cwd")
            .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/odd\npath/\xff"))
            .env("TMUX", "/tmp/tmux-0/my,socket,4242,3")
            .env("TMUX_PANE", "%7")
            .env("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")
            .env("SUDO_USER", "alice")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"ls\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(out.status.success());
    let row = &sb.rows()[0];
    assert_eq!(row.tmux_socket.as_deref(), Some("/tmp/tmux-0/my,socket"));
    assert_eq!(row.tmux_server_pid, Some(4242));
    assert_eq!(row.tmux_session_id, Some(3));
    assert_eq!(row.tmux_pane.as_deref(), Some("%7"));
    assert_eq!(
        row.ssh_connection.as_deref(),
        Some("10.0.0.1 50000 10.0.0.2 22")
    );
    assert_eq!(row.sudo_user.as_deref(), Some("alice"));
    assert_eq!(row.started_at_us, 1_764_000_000_000_000);
    assert_eq!(row.duration_us, Some(2_500_000));
    assert_eq!(row.cwd, "/odd\npath/\u{FFFD}");
    assert_eq!(row.cwd_raw.as_deref(), Some(&b"/odd\npath/\xff"[..]));
    // SAFETY: no preconditions.
    assert_eq!(row.uid, unsafe { libc::getuid() });
    let login_uid = fs::read_to_string("/proc/self/loginuid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    assert_eq!(row.login_uid, login_uid.filter(|&u| u != u32::MAX));
}

/// The stored format itself, read with raw SQL, independently of the
/// library's reading (which every other test uses): the columns of
/// `commands`, in order, and the values one record puts in them.
#[test]
fn the_stored_format_is_the_columns_and_values_expected() {
    let sb = Sandbox::new();
    let out = sb.record_with(
        "echo 'secret=hunter22hunter22'".as_bytes(),
        &[
            "--shell",
            "zsh",
            "--session",
            "z1",
            "--seq",
            "4",
            "--exit",
            "3",
            "--start-us",
            "1764000000000000",
            "--end-us",
            "1764000002500000",
            "--cwd",
            "/srv",
        ],
        &[
            ("TMUX", Some("/tmp/tmux-0/default,4242,3".as_ref())),
            ("TMUX_PANE", Some("%7".as_ref())),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(sb.flush());
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('commands') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        columns,
        [
            "id",
            "command",
            "command_raw",
            "exit_status",
            "started_at_us",
            "duration_us",
            "cwd",
            "cwd_raw",
            "user",
            "uid",
            "login_uid",
            "sudo_user",
            "host",
            "shell",
            "shell_session",
            "seq",
            "tty",
            "ssh_connection",
            "tmux_socket",
            "tmux_server_pid",
            "tmux_session_id",
            "tmux_pane",
            "recorded_at_us",
            "prev_hash",
            "hash",
            "redacted",
            "import_source",
            "import_file",
            "import_key",
        ]
    );
    type Values = (
        String,
        Option<Vec<u8>>,
        i64,
        i64,
        i64,
        String,
        Option<Vec<u8>>,
    );
    let values: Values = conn
        .query_row(
            "SELECT command, command_raw, exit_status, started_at_us, duration_us, cwd, cwd_raw
             FROM commands",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        values,
        (
            "echo 'secret=[REDACTED]'".to_string(),
            None,
            3,
            1_764_000_000_000_000,
            2_500_000,
            "/srv".to_string(),
            None
        )
    );
    type Context = (String, String, i64, String, String, i64, i64, String, i64);
    let context: Context = conn
        .query_row(
            "SELECT shell, shell_session, seq, user, tmux_socket, tmux_server_pid,
                tmux_session_id, tmux_pane, redacted
             FROM commands",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .unwrap();
    // SAFETY: no preconditions.
    let uid = unsafe { libc::getuid() };
    let user: String = conn
        .query_row("SELECT user FROM commands WHERE uid = ?1", [uid], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        context,
        (
            "zsh".to_string(),
            "z1".to_string(),
            4,
            user,
            "/tmp/tmux-0/default".to_string(),
            4242,
            3,
            "%7".to_string(),
            1
        )
    );
    // Chained: the first record links to the genesis (32 zero bytes).
    let (prev, hash): (Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT prev_hash, hash FROM commands", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((prev, hash.len()), (vec![0u8; 32], 32));
}

#[test]
fn outside_tmux_a_command_is_recorded_without_tmux_fields() {
    let sb = Sandbox::new();
    let out = sb.record(
        b"make",
        &[
            "--shell",
            "fish",
            "--session",
            "f",
            "--seq",
            "1",
            "--exit",
            "2",
            "--duration-ms",
            "1500",
        ],
    );
    assert!(out.status.success());
    let row = &sb.rows()[0];
    assert_eq!(
        (
            row.tmux_socket.clone(),
            row.tmux_pane.clone(),
            row.tmux_server_pid
        ),
        (None, None, None)
    );
    assert_eq!(
        (row.shell.as_str(), row.exit_status, row.duration_us),
        ("fish", Some(2), Some(1_500_000))
    );
    assert_eq!(
        row.cwd,
        fs::canonicalize(sb.path()).unwrap().display().to_string()
    );
}

/// Every new process re-reads the whole WAL, so a WAL that only grows makes
/// every command slower than the last (atuin #2208). It stays small.
#[test]
fn the_wal_stays_small_however_many_commands_are_recorded() {
    let sb = Sandbox::new();
    for seq in 1..=120 {
        assert!(sb
            .record(b"echo some command", &args(&seq.to_string()))
            .status
            .success());
    }
    let wal = fs::metadata(format!("{}-wal", sb.db.display())).map_or(0, |m| m.len());
    assert!(wal <= 128 * 1024, "WAL is {wal} bytes after 120 commands");
    assert_eq!(sb.rows().len(), 120);
}

/// A report that counts its running totals (all of them, the first time)
/// writes many pages: it folds the WAL after, as the recorders do, so that
/// later processes do not re-read them.
#[test]
fn a_report_that_counts_its_totals_leaves_the_wal_small() {
    let sb = Sandbox::new();
    let history = sb.path().join("bash_history");
    let lines: String = (0..3000).map(|i| format!("echo command {i}\n")).collect();
    fs::write(&history, lines).unwrap();
    let (imported, out) = sb.run(&["import", "bash", history.to_str().unwrap()]);
    assert!(imported, "{out}");
    let wal = || fs::metadata(format!("{}-wal", sb.db.display())).map_or(0, |m| m.len());
    assert!(
        wal() <= 128 * 1024,
        "WAL is {} bytes after the import",
        wal()
    );
    let (reported, report) = sb.run(&["report", "--by", "command", "--top", "1"]);
    assert!(reported && report.contains("3,000"), "{report}");
    assert!(
        wal() <= 128 * 1024,
        "WAL is {} bytes after the report",
        wal()
    );
}

/// A database made by the first release (schema 1) is upgraded in place the
/// first time a newer recorder writes to it, and its old rows are searchable.
#[test]
fn a_version_1_database_is_upgraded_in_place() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    let v1 = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/db/migrations/0001_commands.sql"
    ))
    .unwrap();
    let conn = Connection::open(&sb.db).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    conn.execute_batch(&v1).unwrap();
    conn.execute(
        "INSERT INTO commands (command, started_at_us, cwd, user, uid, host, shell, shell_session, seq, recorded_at_us)
         VALUES ('kubectl rollout restart', 1, '/', 'u', 0, 'h', 'bash', 'old', 1, 1)",
        [],
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);

    assert!(
        sb.record(b"echo new", &args("1")).status.success(),
        "{}",
        sb.log()
    );
    // Upgraded by the first process that writes to it.
    assert_eq!(sb.rows().len(), 2);
    let conn = Connection::open(&sb.db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, LATEST_SCHEMA);
    let out = sb
        .cmd()
        .args(["search", "rollout", "--format", "cmd"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kubectl rollout restart\n"
    );
}

/// Records the database cannot take wait in the spool (in the fallback
/// spool, when the database's directory is read-only too) and are moved
/// into the database, once, by the first record after the fault is gone.
#[test]
fn a_read_only_database_spools_the_record_and_merges_it_later() {
    let sb = Sandbox::new();
    let dir = crate::support::ProtectedDir::new(&sb.path().join("db"));
    let db = dir.path.join("history.db");
    let record = |seq: &str, text: &[u8]| {
        sb.record_with(text, &args(seq), &[("TMUX_AUDIT_DB", Some(db.as_os_str()))])
            .status
    };
    assert!(record("1", b"echo before").success());
    assert_eq!(sb.rows_of(&db).len(), 1);
    dir.read_only(true);
    assert!(record("2", b"echo during").success(), "spooled");
    let spooled = sb.spooled();
    assert_eq!(spooled.lines().count(), 1, "in the fallback spool");
    assert!(
        sb.log().contains("the records wait in the spool"),
        "{}",
        sb.log()
    );
    assert_eq!(rows_in(&db).len(), 1);

    // More records while it stays read-only: one line in the log, not
    // one per record (a failed merge is tried again once a minute).
    assert!(record("5", b"echo during too").success());
    assert_eq!(sb.log().lines().count(), 1, "{}", sb.log());

    dir.read_only(false);
    assert!(record("3", b"echo after").success());
    // Within the minute, a reader merges; the next record would after it.
    let mut commands: Vec<_> = sb
        .rows_of(&db)
        .into_iter()
        .map(|r| (r.seq, r.record.command))
        .collect();
    commands.sort();
    assert_eq!(
        commands,
        [
            (1, "echo before".to_string()),
            (2, "echo during".to_string()),
            (3, "echo after".to_string()),
            (5, "echo during too".to_string())
        ]
    );
    assert_eq!(sb.spooled(), "", "merged once, then emptied");
    // As if a merge had crashed after its commit, before emptying the
    // spool: merged again, the record is still stored once.
    let fallback = fs::read_dir(&sb.state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("spool-"))
        .expect("the fallback spool");
    fs::write(&fallback, &spooled).unwrap();
    assert!(record("4", b"echo later").success());
    assert_eq!(rows_in(&db).len(), 5);
    assert_eq!(sb.spooled(), "");
}

#[test]
fn a_corrupt_database_spools_the_record() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    fs::write(&sb.db, b"not a database at all, no".repeat(200)).unwrap();
    assert!(sb.record(b"echo kept", &args("1")).status.success());
    assert!(sb.spooled().contains("echo kept"), "{}", sb.spooled());
}

#[test]
fn a_symlink_or_another_users_file_at_the_database_path_is_refused() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    let elsewhere = sb.path().join("attacker.db");
    std::os::unix::fs::symlink(&elsewhere, &sb.db).unwrap();
    assert!(
        sb.record(b"echo secret", &args("1")).status.success(),
        "spooled"
    );
    let out = sb.cmd().arg("flush").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is a symbolic link"),
        "{stderr}"
    );
    assert!(!elsewhere.exists(), "nothing written through the link");
    fs::remove_file(&sb.db).unwrap();

    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped the other-owner half: only root can give a file to another user");
        return;
    }
    assert!(sb.flush(), "the database made, the spool merged");
    let nobody = std::ffi::CString::new(sb.db.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; 65534 is `nobody`.
    assert_eq!(unsafe { libc::chown(nobody.as_ptr(), 65534, 65534) }, 0);
    assert!(sb.record(b"true", &args("3")).status.success(), "spooled");
    let out = sb.cmd().arg("flush").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("belongs to another user"),
        "{stderr}"
    );
}

/// `env -i`: no HOME, no USER, no XDG variables, no TMUX. With only the
/// database named, the record is complete (the user comes from the uid).
#[test]
fn an_empty_environment_still_records() {
    let sb = Sandbox::new();
    let mut child = std::process::Command::new(&sb.bin)
        .arg("record")
        .args(args("1"))
        .env_clear()
        .env("TMUX_AUDIT_DB", &sb.db)
        .current_dir(sb.path())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"env\n").unwrap();
    assert!(child.wait().unwrap().success());
    let row = &sb.rows()[0];
    assert_eq!(row.command, "env");
    assert!(!row.user.is_empty() && !row.host.is_empty(), "{row:?}");
    assert_eq!(row.tmux_pane, None);
}

/// The per-command path appends to the spool beside the database; the
/// record that makes the spool large moves it into the database, and every
/// reader moves it in before it reads.
#[test]
fn records_wait_in_the_spool_until_it_is_due_or_read() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert_eq!(rows_in(&sb.db).len(), 1, "the first made the database");
    let spool = format!("{}-spool", sb.db.display());

    assert!(sb.record_numbered("2", "echo second").status.success());
    assert_eq!(rows_in(&sb.db).len(), 1, "not in the database yet");
    assert!(fs::read_to_string(&spool).unwrap().contains("echo second"));
    // A reader moves the spool in first.
    let out = sb
        .cmd()
        .args(["search", "--format", "cmd"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "echo first\necho second\n"
    );
    assert_eq!(rows_in(&sb.db).len(), 2);
    assert_eq!(fs::read_to_string(&spool).unwrap(), "");

    // Large enough (32 KiB: some forty records), the spool is merged by
    // the record that made it so, with nobody reading.
    let long = "x".repeat(1000);
    for seq in 3..=40 {
        assert!(sb.record_numbered(&seq.to_string(), &long).status.success());
    }
    let stored = rows_in(&sb.db).len();
    assert!(stored > 2, "merged without a reader: {stored}");
    let waiting = fs::read_to_string(&spool).unwrap().lines().count();
    assert_eq!(
        stored + waiting,
        40,
        "each once, in the database or the spool"
    );
    assert!(sb.log().is_empty(), "{}", sb.log());
}

/// However few records wait, the next record after five minutes moves them in.
#[test]
fn records_that_waited_five_minutes_are_merged_by_the_next() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert!(sb.record_numbered("2", "echo old").status.success());
    let spool = format!("{}-spool", sb.db.display());
    let line = fs::read_to_string(&spool).unwrap();
    let recorded: i64 = line["{\"recorded_at_us\":".len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let aged = line.replacen(
        &recorded.to_string(),
        &(recorded - 6 * 60 * 1_000_000).to_string(),
        1,
    );
    fs::write(&spool, aged).unwrap();
    assert!(sb.record_numbered("3", "echo new").status.success());
    let commands: Vec<String> = rows_in(&sb.db)
        .into_iter()
        .map(|r| r.record.command)
        .collect();
    assert_eq!(commands, ["echo first", "echo old", "echo new"]);
}

/// A reader of a database that cannot take the spool still shows what the
/// database holds, and says on stderr that more is waiting.
#[test]
fn a_reader_of_a_read_only_database_says_what_is_missing() {
    let sb = Sandbox::new();
    let dir = crate::support::ProtectedDir::new(&sb.path().join("db"));
    let db = dir.path.join("history.db");
    let with_db = [("TMUX_AUDIT_DB", Some(db.as_os_str()))];
    assert!(sb
        .record_with(b"echo stored", &args("1"), &with_db)
        .status
        .success());
    assert!(sb
        .record_with(b"echo waiting", &args("2"), &with_db)
        .status
        .success());
    assert_eq!(rows_in(&db).len(), 1);
    dir.read_only(true);
    let out = sb
        .cmd()
        .env("TMUX_AUDIT_DB", &db)
        .args(["search", "--format", "cmd"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo stored\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 1 record waiting in the spool is not in the database yet"),
        "{stderr}"
    );
    dir.read_only(false);
}

/// The first record into an empty spool starts one merge in the background
/// (after five minutes), so that no record stays out of the database for
/// long even when nothing else merges it; many records start one between
/// them.
#[test]
fn the_first_record_into_an_empty_spool_starts_one_background_merge() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    let pending = || {
        fs::read_dir(&sb.state)
            .into_iter()
            .flatten()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("merge-later-")
            })
            .count()
    };
    assert_eq!(
        pending(),
        0,
        "the first record made the database: nothing waits"
    );
    assert!(sb.record_numbered("2", "echo second").status.success());
    assert!(sb.record_numbered("3", "echo third").status.success());
    assert_eq!(pending(), 1, "one background merge for both");
    // What that background merge does, without its five minutes' wait.
    let out = sb
        .cmd()
        .args(["merge-later", "--after", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(rows_in(&sb.db).len(), 3);
    assert_eq!(pending(), 0);
    assert_eq!(sb.spooled(), "");
}

/// A database path through a symbolic link to a directory (a home directory
/// behind one, as on many systems), or through `..` and a directory that
/// does not exist yet: records land, and readers see them.
#[test]
fn a_database_path_through_a_link_or_dot_dot_works() {
    let sb = Sandbox::new();
    let real = sb.path().join("real");
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, sb.path().join("link")).unwrap();
    let odd_paths = [
        sb.path().join("link/history.db"),
        sb.path().join("x/../not-yet/deeper/history.db"),
    ];
    for db in &odd_paths {
        let with_db = [("TMUX_AUDIT_DB", Some(db.as_os_str()))];
        for seq in ["1", "2"] {
            let out = sb.record_with(format!("echo {seq}").as_bytes(), &args(seq), &with_db);
            assert!(out.status.success(), "{out:?}");
        }
        let out = sb
            .cmd()
            .env("TMUX_AUDIT_DB", db)
            .args(["search", "--format", "cmd"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "echo 1\necho 2\n",
            "{}: {out:?}",
            db.display()
        );
    }
    assert!(real.join("history.db").exists());
    assert!(sb.log().is_empty(), "{}", sb.log());
}

/// Starts `merge-later --after 300`, as the first record into an empty
/// spool does, and returns a way to wait for its end (false: still running
/// after [`crate::support::PATIENCE`]; it is killed then).
fn background_merge(sb: &Sandbox) -> impl FnOnce() -> bool + use<> {
    let mut child = sb
        .cmd()
        .args(["merge-later", "--after", "300"])
        .spawn()
        .unwrap();
    move || {
        let start = std::time::Instant::now();
        while start.elapsed() < crate::support::PATIENCE {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A background merge whose database's directory is removed (moved away, a
/// test's sandbox deleted) ends soon, not after its five minutes, and makes
/// nothing anew.
#[test]
fn a_background_merge_ends_when_its_database_directory_is_gone() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert!(sb.record_numbered("2", "echo waiting").status.success());
    let ended = background_merge(&sb);
    let dir = sb.db.parent().unwrap();
    fs::remove_dir_all(dir).unwrap();
    let state_before = names_in(&sb.state);
    assert!(ended(), "still waiting for a database that is gone");
    assert!(!dir.exists(), "its directory made anew");
    let state_after = names_in(&sb.state);
    assert!(
        state_after.iter().all(|name| state_before.contains(name)),
        "{state_before:?} then {state_after:?}"
    );
}

/// A background merge whose spool another process merged (a reader, the
/// fortieth record) ends soon; the next first record starts another.
#[test]
fn a_background_merge_ends_once_the_spool_is_merged_by_another() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo first").status.success());
    assert!(sb.record_numbered("2", "echo waiting").status.success());
    let ended = background_merge(&sb);
    assert!(sb.flush());
    assert!(ended(), "still waiting with nothing to merge");
    let pending = || {
        names_in(&sb.state)
            .iter()
            .filter(|name| name.starts_with("merge-later-"))
            .count()
    };
    assert_eq!(pending(), 0, "its note is gone");
    assert!(sb.record_numbered("3", "echo next").status.success());
    assert_eq!(pending(), 1, "the next first record starts another");
}
