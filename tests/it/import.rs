//! `tmux-audit import`: real bash, zsh and fish write their own history
//! files, which are imported and read back through the library; atuin,
//! zsh-histdb and mcfly databases built from their documented schemas;
//! the round trip through our own JSON Lines; idempotence, dry runs, bad
//! input, and the chain.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rusqlite::Connection;

use crate::support::{rows_in, Row, Sandbox, Tmux};

fn import(sb: &Sandbox, args: &[&str]) -> Output {
    let out = sb.cmd().arg("import").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The exact bytes of a stored command.
fn bytes(row: &Row) -> Vec<u8> {
    row.command_raw
        .clone()
        .unwrap_or_else(|| row.command.as_bytes().to_vec())
}

fn commands(rows: &[Row]) -> Vec<Vec<u8>> {
    rows.iter().map(bytes).collect()
}

fn verify(sb: &Sandbox) -> (Option<i32>, String) {
    let out = sb.cmd().arg("verify").output().unwrap();
    (out.status.code(), stdout(&out) + &stderr(&out))
}

/// Runs `shell` (`bash`/`zsh` command line) interactively on `script`,
/// in the sandbox's environment plus `env`.
fn run_shell(sb: &Sandbox, shell: &[&str], script: &[u8], env: &[(&str, &Path)]) {
    let script_file = sb.path().join("script");
    fs::write(&script_file, script).unwrap();
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .env_clear()
        .envs(sb.env())
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .current_dir(sb.path())
        .stdin(fs::File::open(&script_file).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "{shell:?} was killed");
}

const MULTI_LINE: &[u8] = b"for i in 1 2\ndo echo $i\ndone";
const NOT_UTF8: &[u8] = b"echo caf\xe9 \xff";

/// bash writes its history (`history -w`) with `HISTTIMEFORMAT` set and
/// `lithist` on: every entry comes back with its time, the multi-line one
/// whole, the non-UTF-8 one byte for byte, marked imported from bash and
/// that file, and knowing nothing bash did not know. A second import adds
/// nothing; the chain verifies.
#[test]
fn bash_history_with_timestamps_comes_back_whole() {
    let sb = Sandbox::new();
    let file = sb.path().join("home/.bash_history");
    let mut script = b"shopt -s lithist cmdhist\nhistory -c\nhistory -s 'echo one'\n".to_vec();
    script.extend_from_slice(b"history -s $'for i in 1 2\\ndo echo $i\\ndone'\n");
    script.extend_from_slice(b"history -s $'echo caf\\xe9 \\xff'\nhistory -w\nunset HISTFILE\n");
    run_shell(
        &sb,
        &["bash", "--norc", "--noprofile", "-i"],
        &script,
        &[("HISTFILE", &file), ("HISTTIMEFORMAT", Path::new("%F %T "))],
    );
    assert!(
        fs::read(&file).unwrap().starts_with(b"#"),
        "bash wrote timestamps"
    );

    // The usual file: $HISTFILE is not set here, ~/.bash_history is read.
    let out = import(&sb, &["bash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = fs::canonicalize(&file).unwrap();
    assert!(
        stdout(&out).contains(&format!("read {} (bash): 4 entries", file.display())),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("added 4, already there 0"),
        "{}",
        stdout(&out)
    );

    let rows = rows_in(&sb.db);
    assert_eq!(
        commands(&rows),
        [
            b"echo one".to_vec(),
            MULTI_LINE.to_vec(),
            NOT_UTF8.to_vec(),
            b"history -w".to_vec()
        ]
    );
    for row in &rows {
        let mark = row.imported.as_ref().expect("marked imported");
        assert_eq!(
            (mark.source.as_str(), mark.file.as_str()),
            ("bash", file.to_str().unwrap())
        );
        assert!(
            row.started_at_us > 1_600_000_000_000_000,
            "bash's time: {}",
            row.started_at_us
        );
        assert_eq!(
            (row.exit_status, row.duration_us),
            (None, None),
            "bash does not keep them"
        );
        assert_eq!(
            (row.cwd.as_str(), row.host.as_str(), row.shell.as_str()),
            ("", "", "bash")
        );
        assert_eq!((row.tty.as_deref(), row.tmux_pane.as_deref()), (None, None));
    }
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "numbered in one session, without holes");

    let again = import(&sb, &["bash", file.to_str().unwrap()]);
    assert!(
        stdout(&again).contains("added 0, already there 4"),
        "{}",
        stdout(&again)
    );
    assert_eq!(rows_in(&sb.db).len(), 4);
    assert_eq!(verify(&sb).0, Some(0), "{}", verify(&sb).1);
}

/// Without `HISTTIMEFORMAT`, bash keeps neither times nor where a
/// multi-line command ends: each line comes back as bash itself reads it
/// back, with no time (0), and nothing is invented.
#[test]
fn bash_history_without_timestamps_is_one_command_a_line() {
    let sb = Sandbox::new();
    let file = sb.path().join("plain_history");
    let mut script = b"shopt -s lithist cmdhist\nhistory -c\nhistory -s 'echo one'\n".to_vec();
    script.extend_from_slice(b"history -s $'for i in 1 2\\ndo echo $i\\ndone'\n");
    script.extend_from_slice(b"history -s $'echo caf\\xe9 \\xff'\nhistory -w\nunset HISTFILE\n");
    run_shell(
        &sb,
        &["bash", "--norc", "--noprofile", "-i"],
        &script,
        &[("HISTFILE", &file)],
    );

    let out = import(&sb, &["bash", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_in(&sb.db);
    assert_eq!(
        commands(&rows),
        [
            b"echo one".to_vec(),
            b"for i in 1 2".to_vec(),
            b"do echo $i".to_vec(),
            b"done".to_vec(),
            NOT_UTF8.to_vec(),
            b"history -w".to_vec()
        ]
    );
    assert!(
        rows.iter().all(|r| r.started_at_us == 0),
        "no time was known"
    );
}

/// zsh writes its extended history (`fc -W` with EXTENDED_HISTORY): the
/// start and elapsed time come back, the multi-line entry (written with
/// `\` continuations) whole, and bytes zsh metafies (0x83) exactly.
#[test]
fn zsh_extended_history_comes_back_whole_and_unmetafied() {
    let sb = Sandbox::new();
    let file = sb.path().join("home/.zsh_history");
    let script = format!(
        "setopt extended_history\nfc -p {} 1000 1000\nprint -s 'echo one'\n\
         print -s $'for i in 1 2\\ndo echo $i\\ndone'\nprint -s $'echo \\x83 caf\\xe9 \\xff'\nfc -W\n",
        file.display()
    );
    run_shell(&sb, &["zsh", "-f", "-i"], script.as_bytes(), &[]);
    let written = fs::read(&file).unwrap();
    assert!(
        written.windows(2).any(|w| w == b"\x83\xa3"),
        "zsh metafied 0x83"
    );
    assert!(
        written.windows(2).any(|w| w == b"\\\n"),
        "zsh continued a line"
    );

    let out = import(&sb, &["zsh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_in(&sb.db);
    let got = commands(&rows);
    for wanted in [&b"echo one"[..], MULTI_LINE, b"echo \x83 caf\xe9 \xff"] {
        assert!(
            got.iter().any(|c| c == wanted),
            "{:?} not in {got:?}",
            String::from_utf8_lossy(wanted)
        );
    }
    for row in &rows {
        assert!(row.started_at_us > 1_600_000_000_000_000);
        assert_eq!(row.duration_us, Some(0), "zsh's elapsed seconds");
        assert_eq!(
            (
                row.shell.as_str(),
                row.imported.as_ref().unwrap().source.as_str()
            ),
            ("zsh", "zsh")
        );
    }
    let again = import(&sb, &["zsh", "--dry-run"]);
    assert!(
        stdout(&again).contains(&format!("would add 0, already there {}", rows.len())),
        "{}",
        stdout(&again)
    );
}

/// fish, interactive in tmux, writes its own history (`history save`):
/// its `when:` comes back, the multi-line `for` block whole (fish escapes
/// the newline as `\n`), a backslash (escaped `\\`) and UTF-8 exactly.
/// (fish drops bytes that are not UTF-8 as they are typed, so its history
/// never holds any; the reader keeps them anyway: see `import/fish.rs`.)
#[test]
fn fish_history_comes_back_whole() {
    let sb = Sandbox::new();
    // Not `--no-config`: fish 3.6 then keeps no history. The sandbox's
    // XDG_CONFIG_HOME is empty, so no user config is read.
    let (tmux, pane) = Tmux::start(
        &sb,
        "fish -i -C 'set -g fish_greeting; function fish_prompt; printf \"READY> \"; end'",
    );
    pane.ready();
    let mut prompts = 1;
    let mut line = |text: &str| {
        pane.line(text);
        prompts += 1;
        pane.wait_for("READY>", prompts);
    };
    line("echo one");
    pane.line("for i in 1 2");
    pane.line("echo $i");
    line("end");
    line("echo back\\\\slash");
    line("echo café ✓");
    line("history save");
    drop(tmux);

    let out = import(&sb, &["fish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_in(&sb.db);
    let got = commands(&rows);
    for wanted in [
        &b"echo one"[..],
        b"for i in 1 2\necho $i\nend",
        b"echo back\\\\slash",
        "echo café ✓".as_bytes(),
    ] {
        assert!(
            got.iter().any(|c| c == wanted),
            "{:?} not in {:?}",
            String::from_utf8_lossy(wanted),
            got.iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
        );
    }
    assert!(
        rows.iter().all(|r| r.started_at_us > 1_600_000_000_000_000),
        "fish's when:"
    );
    assert!(rows.iter().all(|r| r.shell == "fish"));
}

/// Imports the bash history `lines` (with timestamps) from a file in the
/// sandbox; the file's path.
fn bash_file(sb: &Sandbox, name: &str, entries: &[&str]) -> PathBuf {
    let file = sb.path().join(name);
    let mut text = String::new();
    for (i, entry) in entries.iter().enumerate() {
        text.push_str(&format!("#{}\n{entry}\n", 1_700_000_000 + i));
    }
    fs::write(&file, text).unwrap();
    file
}

/// import → `search --all --format jsonl` → `import tmux-audit` adds
/// nothing to the same database, and everything, once, to another one.
#[test]
fn the_round_trip_through_json_lines_adds_nothing() {
    let sb = Sandbox::new();
    let file = bash_file(
        &sb,
        "h",
        &[
            "echo a",
            "echo a",
            "ls\n-l",
            "export TOKEN=ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        ],
    );
    assert!(import(&sb, &["bash", file.to_str().unwrap()])
        .status
        .success());
    assert!(sb.record_numbered("1", "echo recorded").status.success());
    let out = sb
        .cmd()
        .args(["search", "--all", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let export = sb.path().join("export.jsonl");
    fs::write(&export, &out.stdout).unwrap();

    let back = import(&sb, &["tmux-audit", export.to_str().unwrap()]);
    assert!(back.status.success(), "{}", stderr(&back));
    assert!(
        stdout(&back).contains("added 0, already there 5"),
        "{}",
        stdout(&back)
    );
    assert_eq!(rows_in(&sb.db).len(), 5);

    let other = sb.path().join("other.db");
    let into_other = |dry: bool| {
        let mut args = vec![
            "--db",
            other.to_str().unwrap(),
            "tmux-audit",
            export.to_str().unwrap(),
        ];
        if dry {
            args.push("--dry-run");
        }
        import(&sb, &args)
    };
    assert!(stdout(&into_other(true)).contains("would add 5, already there 0"));
    assert!(stdout(&into_other(false)).contains("added 5, already there 0"));
    assert!(stdout(&into_other(false)).contains("added 0, already there 5"));
    let (mine, theirs) = (rows_in(&sb.db), rows_in(&other));
    for (a, b) in mine.iter().zip(&theirs) {
        assert_eq!(
            (bytes(a), a.started_at_us, &a.shell_session, a.seq),
            (bytes(b), b.started_at_us, &b.shell_session, b.seq)
        );
        assert_eq!(b.imported.as_ref().unwrap().source, "tmux-audit");
    }
    assert!(
        theirs[3].command.contains("[REDACTED]"),
        "redacted on the way in: {}",
        theirs[3].command
    );
    assert!(theirs[3].redacted);
}

/// `--dry-run` counts and writes nothing; a grown file adds only its new
/// entries; identical entries at the same time are all kept.
#[test]
fn dry_run_counts_and_a_grown_file_adds_only_what_is_new() {
    let sb = Sandbox::new();
    let file = bash_file(&sb, "h", &["echo a", "echo b"]);
    let dry = import(&sb, &["bash", file.to_str().unwrap(), "--dry-run"]);
    assert!(
        stdout(&dry).contains("would add 2, already there 0 (dry run: nothing written)"),
        "{}",
        stdout(&dry)
    );
    assert!(!sb.db.exists(), "a dry run makes no database");
    assert!(import(&sb, &["bash", file.to_str().unwrap()])
        .status
        .success());
    let mut text = fs::read(&file).unwrap();
    text.extend_from_slice(b"#1700000001\necho b\n#1700000009\necho c\n");
    fs::write(&file, text).unwrap();
    let dry = import(&sb, &["bash", file.to_str().unwrap(), "--dry-run"]);
    assert!(
        stdout(&dry).contains("would add 2, already there 2"),
        "{}",
        stdout(&dry)
    );
    let out = import(&sb, &["bash", file.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("added 2, already there 2"),
        "{}",
        stdout(&out)
    );
    let rows = rows_in(&sb.db);
    assert_eq!(
        commands(&rows),
        [
            b"echo a".to_vec(),
            b"echo b".to_vec(),
            b"echo b".to_vec(),
            b"echo c".to_vec()
        ]
    );
}

/// A JSON Lines file holding each record twice: the dry run counts what
/// the import then does (each record once, the repeats there already),
/// with no database yet and with one.
#[test]
fn a_dry_run_of_repeated_records_counts_what_the_import_does() {
    let sb = Sandbox::new();
    let file = bash_file(&sb, "h", &["echo a", "echo b", "echo c"]);
    assert!(import(&sb, &["bash", file.to_str().unwrap()])
        .status
        .success());
    let export = sb.cmd().arg("export").output().unwrap();
    let twice = sb.path().join("twice.jsonl");
    fs::write(&twice, [&export.stdout[..], &export.stdout[..]].concat()).unwrap();
    let other = sb.path().join("other/history.db");
    let other = other.to_str().unwrap();
    let run = |dry: bool| {
        let mut args = vec!["--db", other, "tmux-audit", twice.to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        stdout(&import(&sb, &args))
    };
    let out = run(true);
    assert!(out.contains("would add 3, already there 3"), "{out}");
    let out = run(false);
    assert!(out.contains("added 3, already there 3"), "{out}");
    let out = run(true);
    assert!(out.contains("would add 0, already there 6"), "{out}");
}

/// A file with nothing readable is an error naming its first bad line; a
/// partly damaged one imports the rest, names the first bad line, counts
/// the skipped ones, and exits 1.
#[test]
fn bad_input_names_the_file_and_line() {
    let sb = Sandbox::new();
    let garbage = sb.path().join("garbage");
    fs::write(&garbage, "not\nfish\n").unwrap();
    let out = import(&sb, &["fish", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:1: not inside an entry", garbage.display())),
        "{err}"
    );

    let partial = sb.path().join("partial");
    fs::write(
        &partial,
        "- cmd: echo ok\n  when: 1700000000\n}}}\n- cmd: echo two\n  when: soon\n",
    )
    .unwrap();
    let out = import(&sb, &["fish", partial.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("added 2"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!(
            "skipped 2 lines that are not fish history (first: {}:3:",
            partial.display()
        )),
        "{}",
        stderr(&out)
    );

    let missing = import(&sb, &["zsh", "/nonexistent/zsh_history"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot read /nonexistent/zsh_history"),
        "{}",
        stderr(&missing)
    );
    let not_db = import(&sb, &["atuin", garbage.to_str().unwrap()]);
    assert_eq!(not_db.status.code(), Some(2));
    assert!(
        stderr(&not_db).contains("not an atuin history database"),
        "{}",
        stderr(&not_db)
    );
    assert!(import(&sb, &["tmux-audit"]).status.code() == Some(2));
}

/// An imported row can never pass as recorded: taking its mark away (or
/// changing the file it names) breaks the chain.
#[test]
fn the_import_mark_is_in_the_chain() {
    let sb = Sandbox::new();
    let file = bash_file(&sb, "h", &["echo a", "echo b"]);
    assert!(import(&sb, &["bash", file.to_str().unwrap()])
        .status
        .success());
    assert_eq!(verify(&sb).0, Some(0), "{}", verify(&sb).1);
    for sql in [
        "UPDATE commands SET import_source = NULL, import_file = NULL, import_key = NULL WHERE id = 2",
        "UPDATE commands SET import_file = '/elsewhere' WHERE id = 2",
    ] {
        let conn = Connection::open(&sb.db).unwrap();
        let saved: (Option<String>, Option<String>, Option<Vec<u8>>) = conn
            .query_row("SELECT import_source, import_file, import_key FROM commands WHERE id = 2", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        conn.execute_batch(sql).unwrap();
        let (code, text) = verify(&sb);
        assert_eq!(code, Some(1), "{sql}: {text}");
        conn.execute(
            "UPDATE commands SET import_source = ?1, import_file = ?2, import_key = ?3 WHERE id = 2",
            rusqlite::params![saved.0, saved.1, saved.2],
        )
        .unwrap();
        assert_eq!(verify(&sb).0, Some(0));
    }
}

/// A database of the schema before imports (version 9) is upgraded in
/// place by the first import; its rows stay and the chain verifies.
#[test]
fn a_version_9_database_is_upgraded_by_an_import() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "echo before").status.success());
    assert!(sb.flush());
    crate::schemas::downgrade(&sb.db, 9);
    let file = bash_file(&sb, "h", &["echo imported"]);
    let out = import(&sb, &["bash", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let version: i64 = Connection::open(&sb.db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::record::LATEST_SCHEMA);
    let rows = rows_in(&sb.db);
    assert_eq!(
        commands(&rows),
        [b"echo before".to_vec(), b"echo imported".to_vec()]
    );
    assert!(rows[0].imported.is_none());
    assert_eq!(verify(&sb).0, Some(0), "{}", verify(&sb).1);
}

/// atuin's `history` table, as its migrations make it (with the later
/// `deleted_at`): times in nanoseconds, `host:user`, -1 for unknown.
#[test]
fn an_atuin_database_is_imported() {
    let sb = Sandbox::new();
    let file = sb.path().join("data/atuin/history.db");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let conn = Connection::open(&file).unwrap();
    conn.execute_batch(
        "create table if not exists history (
            id text primary key,
            timestamp integer not null,
            duration integer not null,
            exit integer not null,
            command text not null,
            cwd text not null,
            session text not null,
            hostname text not null,
            deleted_at integer,
            unique(timestamp, cwd, command)
        );
        insert into history values ('a', 1700000000000000000, 2500000000, 1, 'make test', '/src/x', 'sess-1', 'box:alice', null);
        insert into history values ('b', 1700000005000000000, -1, -1, 'vim', '/src/x', 'sess-1', 'box:alice', null);
        insert into history values ('c', 1700000009000000000, 1, 0, 'gone', '/', 'sess-1', 'box:alice', 1700000010000000000);",
    )
    .unwrap();
    drop(conn);
    let out = import(&sb, &["atuin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_in(&sb.db);
    assert_eq!(
        commands(&rows),
        [b"make test".to_vec(), b"vim".to_vec()],
        "deleted in atuin: not imported"
    );
    let r = &rows[0];
    assert_eq!(r.started_at_us, 1_700_000_000_000_000);
    assert_eq!((r.duration_us, r.exit_status), (Some(2_500_000), Some(1)));
    assert_eq!(
        (r.cwd.as_str(), r.host.as_str(), r.user.as_str()),
        ("/src/x", "box", "alice")
    );
    // alice's uid is not the importer's: not known, so null in an export,
    // left out of ECS (the importer is never alice here).
    assert_ne!(whoami(), "alice");
    assert_eq!(r.uid, u32::MAX);
    let export = sb.cmd().args(["export"]).output().unwrap();
    let first: serde_json::Value =
        serde_json::from_str(stdout(&export).lines().next().unwrap()).unwrap();
    assert_eq!(
        (&first["user"], &first["uid"]),
        (&"alice".into(), &serde_json::Value::Null)
    );
    let ecs = sb.cmd().args(["export", "--ecs"]).output().unwrap();
    let first: serde_json::Value =
        serde_json::from_str(stdout(&ecs).lines().next().unwrap()).unwrap();
    assert_eq!(first["user"], serde_json::json!({"name": "alice"}));
    assert_eq!((r.shell_session.as_str(), r.shell.as_str()), ("sess-1", ""));
    assert_eq!(
        (rows[1].duration_us, rows[1].exit_status),
        (None, None),
        "-1: not known"
    );
    assert!(stdout(&import(&sb, &["atuin"])).contains("added 0, already there 2"));
}

/// zsh-histdb's three tables, as its `zsh-histdb-init` makes them.
#[test]
fn a_zsh_histdb_database_is_imported() {
    let sb = Sandbox::new();
    let file = sb.path().join("home/.histdb/zsh-history.db");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let conn = Connection::open(&file).unwrap();
    // As zsh-histdb's sqlite3 runs it: its references name `rowid`, which
    // SQLite's foreign key checks (on in this build) refuse.
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    conn.execute_batch(
        "create table commands (argv text, unique(argv) on conflict ignore);
         create table places   (host text, dir text, unique(host, dir) on conflict ignore);
         create table history  (session int,
                                command_id int references commands (rowid),
                                place_id int references places (rowid),
                                exit_status int,
                                start_time int,
                                duration int);
         insert into commands (argv) values ('git status'), ('cargo build');
         insert into places (host, dir) values ('box', '/src/y');
         insert into history values (7, 1, 1, 0, 1700000000, 1);
         insert into history values (7, 2, 1, 101, 1700000003, 40);",
    )
    .unwrap();
    conn.execute(
        "insert into commands (argv) values (?1)",
        [&b"echo \xff"[..]],
    )
    .unwrap();
    conn.execute_batch("insert into history values (8, 3, 1, 0, 1700000050, 0);")
        .unwrap();
    drop(conn);
    let out = import(&sb, &["zsh-histdb"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_in(&sb.db);
    assert_eq!(
        commands(&rows),
        [
            b"git status".to_vec(),
            b"cargo build".to_vec(),
            b"echo \xff".to_vec()
        ]
    );
    let r = &rows[1];
    assert_eq!(
        (r.exit_status, r.duration_us, r.started_at_us),
        (Some(101), Some(40_000_000), 1_700_000_003_000_000)
    );
    assert_eq!(
        (r.cwd.as_str(), r.host.as_str(), r.shell.as_str()),
        ("/src/y", "box", "zsh")
    );
    assert_eq!(
        rows[0].shell_session, rows[1].shell_session,
        "histdb's session 7"
    );
    assert_ne!(rows[1].shell_session, rows[2].shell_session);
}

/// mcfly's `commands` table, as its current schema makes it.
#[test]
fn a_mcfly_database_is_imported() {
    let sb = Sandbox::new();
    let file = sb.path().join("data/mcfly/history.db");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let conn = Connection::open(&file).unwrap();
    conn.execute_batch(
        "CREATE TABLE commands(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cmd TEXT NOT NULL,
            cmd_tpl TEXT,
            session_id TEXT NOT NULL,
            when_run INTEGER NOT NULL,
            exit_code INTEGER NOT NULL,
            selected INTEGER NOT NULL,
            dir TEXT,
            old_dir TEXT
        );
        INSERT INTO commands (cmd, cmd_tpl, session_id, when_run, exit_code, selected, dir, old_dir)
            VALUES ('ls -la', 'ls -la', 'mcfly-s', 1700000000, 0, 0, '/home/a', NULL),
                   ('false', 'false', 'UNKNOWN', 1700000001, 1, 0, NULL, NULL);",
    )
    .unwrap();
    drop(conn);
    let out = import(&sb, &["mcfly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_in(&sb.db);
    assert_eq!(commands(&rows), [b"ls -la".to_vec(), b"false".to_vec()]);
    assert_eq!(
        (rows[0].shell_session.as_str(), rows[0].cwd.as_str()),
        ("mcfly-s", "/home/a")
    );
    assert_eq!((rows[1].exit_status, rows[1].cwd.as_str()), (Some(1), ""));
    assert!(
        rows[1].shell_session.starts_with("import:mcfly:"),
        "UNKNOWN is no session"
    );
    assert_eq!(verify(&sb).0, Some(0), "{}", verify(&sb).1);
}

/// A database row that is not as documented (atuin's time as text, a
/// zsh-histdb history row without its command) is skipped and counted,
/// the others imported; a database missing a documented column is one
/// line without SQL, with the right article.
#[test]
fn a_bad_row_of_a_tools_database_is_skipped_and_counted() {
    let sb = Sandbox::new();
    let atuin = sb.path().join("atuin.db");
    Connection::open(&atuin)
        .unwrap()
        .execute_batch(
            "create table history (id text primary key, timestamp integer not null,
                duration integer not null, exit integer not null, command text not null,
                cwd text not null, session text not null, hostname text not null);
            insert into history values ('a', 1700000000000000000, 1, 0, 'ls', '/', 's', 'box:alice');
            insert into history values ('b', 'yesterday', 1, 0, 'pwd', '/', 's', 'box:alice');",
        )
        .unwrap();
    let out = import(&sb, &["atuin", atuin.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added 1, already there 0"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("skipped 1 line that is not atuin history (first: ")
            && stderr(&out).trim_end().lines().count() == 1,
        "{}",
        stderr(&out)
    );
    let histdb = sb.path().join("histdb.db");
    Connection::open(&histdb)
        .unwrap()
        .execute_batch(
            "create table commands (id integer primary key autoincrement, argv text, unique(argv) on conflict ignore);
            create table places (id integer primary key autoincrement, host text, dir text);
            create table history (id integer primary key autoincrement, session int,
                command_id int, place_id int,
                exit_status int, start_time int, duration int);
            insert into commands (argv) values ('make');
            insert into places (host, dir) values ('box', '/src');
            insert into history (session, command_id, place_id, exit_status, start_time, duration)
                values (1, 1, 1, 0, 1700000000, 2), (1, 99, 1, 0, 1700000001, 1);",
        )
        .unwrap();
    let out = import(&sb, &["zsh-histdb", histdb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added 1, already there 0"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("has no command"), "{}", stderr(&out));
    let mcfly = sb.path().join("mcfly.db");
    Connection::open(&mcfly)
        .unwrap()
        .execute_batch("create table commands (cmd text, when_run int, dir text, session_id text);")
        .unwrap();
    for (tool, file, says) in [
        (
            "mcfly",
            &mcfly,
            "not a mcfly history database as documented (no such column: exit_code)",
        ),
        (
            "atuin",
            &mcfly,
            "not an atuin history database as documented (no such table: history)",
        ),
    ] {
        let out = import(&sb, &[tool, file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
}

/// A history given on a pipe (`… | tmux-audit import bash /dev/stdin`)
/// is read, named as given, and a second time adds nothing.
#[test]
fn a_history_on_a_pipe_is_imported_from_dev_stdin() {
    let sb = Sandbox::new();
    // The same history twice, then another of the same length with lines
    // in the same places (untimed: known by their place in the file).
    for (history, added) in [
        (
            &b"#1700000000\nls\n#1700000001\npwd\n"[..],
            "added 2, already there 0",
        ),
        (
            b"#1700000000\nls\n#1700000001\npwd\n",
            "added 0, already there 2",
        ),
        (b"ls\ncd /srv\nmake\n", "added 3, already there 0"),
        (b"ls\ncd /srv\nmake\n", "added 0, already there 3"),
        (b"ls\npwd\nmake\n", "added 3, already there 0"),
    ] {
        let out = import_piped(&sb, history, &[]);
        assert!(
            out.contains("read /dev/stdin (bash)") && out.contains(added),
            "{out}"
        );
    }
}

/// `import bash /dev/stdin` (and `args`) with `history` piped in; its
/// output, once it succeeded.
fn import_piped(sb: &Sandbox, history: &[u8], args: &[&str]) -> String {
    use std::io::Write;
    let mut child = sb
        .cmd()
        .args(["import", "bash", "/dev/stdin"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(history).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

/// A history piped in again after it grew is a new one unless named:
/// with the same `--name` each time, only its new entries are added, and
/// the name is what the entries' marks say; a history given by another
/// path under that name is the same history too.
#[test]
fn a_named_history_adds_only_its_new_entries_however_it_comes() {
    let sb = Sandbox::new();
    let import = |history: &[u8], args: &[&str]| import_piped(&sb, history, args);
    let first = b"ls\ncd /srv\nls\n";
    let grown = b"ls\ncd /srv\nls\nmake\nls\n";
    assert!(import(first, &["--name", "web1"]).contains("added 3, already there 0"));
    assert!(import(grown, &["--name", "web1"]).contains("added 2, already there 3"));
    // Unnamed, the grown history is another one.
    assert!(import(grown, &[]).contains("added 5, already there 0"));
    // The same history in a file, under the same name.
    let file = sb.path().join("copy_of_web1");
    fs::write(&file, grown).unwrap();
    let out = sb
        .cmd()
        .args(["import", "bash", "--name", "web1"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("added 0, already there 5"),
        "{}",
        stdout(&out)
    );
    let marks = rows_in(&sb.db)
        .iter()
        .filter(|r| r.imported.as_ref().is_some_and(|m| m.file == "web1"))
        .count();
    assert_eq!(marks, 5);
    // A name says something.
    let out = sb
        .cmd()
        .args(["import", "bash", "--name", ""])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An entry longer than `[record] max_command_bytes` keeps its first
/// bytes, its length and SHA-256, as a recorded command does; the import
/// says so.
#[test]
fn an_entry_longer_than_max_command_bytes_is_cut_as_a_record_is() {
    use sha2::{Digest, Sha256};
    let sb = Sandbox::new();
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        "[record]\nmax_command_bytes = 100\n",
    )
    .unwrap();
    let long = "A".repeat(1000);
    let file = sb.path().join("h");
    fs::write(&file, format!("#1700000000\n{long}\n#1700000001\nshort\n")).unwrap();
    let out = import(&sb, &["bash", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("1 entry longer than [record] max_command_bytes (100) kept its first bytes"),
        "{}",
        stdout(&out)
    );
    let rows = rows_in(&sb.db);
    let expected = format!(
        "{}\n[tmux-audit: command cut after its first bytes; 1000 bytes in all, SHA-256 {}]",
        &long[..100],
        Sha256::digest(long.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(commands(&rows), [expected.into_bytes(), b"short".to_vec()]);
    assert!(stdout(&import(&sb, &["bash", file.to_str().unwrap()]))
        .contains("added 0, already there 2"));
}

/// Old imported history pruned, then the same file imported again (the
/// entries come back, as documented): their numbers go on above the
/// pruned ones, so `verify` counts no record as missing.
#[test]
fn history_imported_again_after_a_prune_is_numbered_after_the_pruned() {
    let sb = Sandbox::new();
    let file = sb.path().join("bash_history");
    let history: String = (0..10)
        .map(|i| format!("#{}\necho old {i}\n", 1_600_000_000 + i))
        .collect();
    fs::write(&file, history).unwrap();
    let path = file.display().to_string();
    assert!(import(&sb, &["bash", &path]).status.success());
    assert!(sb.record_numbered("1", "echo now").status.success());
    let out = sb
        .cmd()
        .args(["prune", "--older-than", "1d"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.rows().len(), 1, "the imported entries pruned");
    let out = import(&sb, &["bash", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.rows().len(), 11, "back again");
    let (code, text) = verify(&sb);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("missing"), "{text}");
}
