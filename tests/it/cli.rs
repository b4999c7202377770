//! The command line is consistent: flags that mean nothing together are an
//! error, not ignored; numbers that cannot work are refused alike
//! everywhere; ids are taken as people type them.

use crate::support::Sandbox;

/// One record in pane %3 of a tmux server.
fn in_pane_3() -> Sandbox {
    let sb = Sandbox::new();
    sb.record_in_pane("1", "echo in-pane-3", "/tmp/tmux-0/work,4242,3", "%3");
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

#[test]
fn null_without_format_cmd_is_an_error_not_ignored() {
    let sb = in_pane_3();
    let (code, out, err) = run(&sb, &["search", "-0"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("--format cmd") && err.lines().count() == 1,
        "{err}"
    );
    let (code, out, _) = run(&sb, &["search", "-0", "--format", "cmd"]);
    assert_eq!((code, out.as_str()), (Some(0), "echo in-pane-3\0"));
}

#[test]
fn a_count_of_zero_is_refused_by_search_and_report_alike() {
    let sb = in_pane_3();
    for args in [&["search", "--limit", "0"][..], &["report", "--top", "0"]] {
        let (code, out, err) = run(&sb, args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.starts_with("tmux-audit: error:"), "{err}");
    }
}

#[test]
fn a_pane_is_found_as_percent_n_or_n_and_nonsense_is_an_error() {
    let sb = in_pane_3();
    for pane in ["%3", "3"] {
        let (code, out, err) = run(&sb, &["search", "--pane", pane, "--format", "cmd"]);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "echo in-pane-3\n"),
            "{pane}: {err}"
        );
    }
    let (code, _, _) = run(&sb, &["search", "--pane", "%4"]);
    assert_eq!(code, Some(1), "another pane: nothing found");
    for pane in ["%abc", "", "%"] {
        let (code, out, err) = run(&sb, &["search", "--pane", pane]);
        assert_eq!(code, Some(2), "{pane:?}: {out}{err}");
        assert!(err.contains("not a tmux pane id"), "{err}");
    }
}

#[test]
fn every_listing_takes_the_same_formats_and_json() {
    let sb = in_pane_3();
    let formats = ["table", "text", "json", "jsonl", "csv", "tsv"];
    for command in [
        &["report"][..],
        &["sessions"],
        &["timeline", "--pane", "%3"],
    ] {
        for format in formats {
            let mut args = command.to_vec();
            args.extend(["--format", format]);
            let (code, out, err) = run(&sb, &args);
            // 1: nothing to show (no tmux events here); never a usage error.
            assert!(matches!(code, Some(0 | 1)), "{args:?}: {out}{err}");
        }
        let mut args = command.to_vec();
        args.push("--json");
        let (code, out, err) = run(&sb, &args);
        assert!(matches!(code, Some(0 | 1)), "{args:?}: {out}{err}");
    }
    // The same rows whatever the format.
    let (_, jsonl, _) = run(&sb, &["report", "--format", "jsonl"]);
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["group"], "%3");
    let (_, json, _) = run(&sb, &["report", "--json"]);
    let array: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(array[0], rows[0]);
    let (_, tsv, _) = run(&sb, &["report", "--format", "tsv"]);
    assert_eq!(tsv.lines().count(), 2, "{tsv}");
    assert!(tsv.lines().nth(1).unwrap().starts_with("%3\t"), "{tsv}");
    let (_, show, _) = run(&sb, &["show", "1", "--json"]);
    assert!(show.contains("\"command\": \"echo in-pane-3\""), "{show}");
}

#[test]
fn report_groups_carry_only_their_own_fields() {
    let sb = in_pane_3();
    let json = |by: &str| -> serde_json::Value {
        let (_, out, err) = run(&sb, &["report", "--by", by, "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
    };
    let pane = json("pane");
    assert_eq!(
        (
            pane[0]["tmux_pane"].as_str(),
            pane[0]["tmux_server"].as_str()
        ),
        (Some("%3"), Some("work:4242"))
    );
    for by in ["day", "user", "command", "cwd", "host"] {
        let row = &json(by)[0];
        for field in [
            "tmux_pane",
            "tmux_server",
            "tmux_session_id",
            "tmux_window_index",
        ] {
            assert!(row[field].is_null(), "--by {by}: {field} = {}", row[field]);
        }
    }
}

#[test]
fn a_damaged_database_is_named_with_its_fix() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    std::fs::write(&sb.db, b"not a database at all, just text".repeat(200)).unwrap();
    for command in ["search", "report", "sessions", "verify"] {
        let (code, out, err) = run(&sb, &[command]);
        assert_eq!(code, Some(2), "{command}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&sb.db.display().to_string()) && err.contains("doctor --repair"),
            "{command}: {err}"
        );
    }
}

#[test]
fn show_prints_local_times_with_their_zone_and_a_command_on_its_lines() {
    let sb = Sandbox::new();
    // 2026-11-25T10:00:00Z.
    let start = "1795600800000000";
    let out = sb.record(
        b"for f in a b\ndo echo $f\x1b[2J\ndone",
        &[
            "--shell",
            "bash",
            "--session",
            "s",
            "--seq",
            "1",
            "--exit",
            "0",
            "--start-us",
            start,
            "--end-us",
            start,
        ],
    );
    assert!(out.status.success(), "{}", sb.log());
    let out = sb
        .cmd()
        .env("TZ", "Asia/Tokyo")
        .args(["show", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("started  2026-11-25 19:00:00.000000 +09:00"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with("command  for f in a b"))
        .expect(&text);
    assert!(
        lines[at + 1].ends_with("         do echo $f\\x1b[2J"),
        "{text}"
    );
    assert!(lines[at + 2].trim() == "done", "{text}");
    // JSON stays UTC.
    let out = sb
        .cmd()
        .env("TZ", "Asia/Tokyo")
        .args(["show", "1", "--json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("2026-11-25T10:00:00"));
}

#[test]
fn color_always_colours_a_piped_table_and_never_or_auto_do_not() {
    let sb = Sandbox::new();
    let failed = [
        "--shell",
        "bash",
        "--session",
        "s",
        "--seq",
        "1",
        "--exit",
        "3",
    ];
    assert!(
        sb.record(b"false", &failed).status.success(),
        "{}",
        sb.log()
    );
    let escapes = |args: &[&str], no_color: bool| {
        let mut cmd = sb.cmd();
        cmd.args(args);
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        out.stdout.contains(&0x1b)
    };
    // Piped (stdout is not a terminal): no colour unless asked.
    assert!(!escapes(&["search"], false));
    assert!(!escapes(&["search", "--color", "auto"], false));
    assert!(!escapes(&["search", "--color=never"], false));
    assert!(escapes(&["search", "--color=always"], false));
    // Asked for on the command line, it wins over NO_COLOR.
    assert!(escapes(&["--color", "always", "search"], true));
    assert!(escapes(&["report", "--color=always"], false));
    let (code, _, err) = run(&sb, &["search", "--color=sometimes"]);
    assert_eq!(code, Some(2), "{err}");
}

/// The README's fzf line, as written there (up to the pipe): every distinct
/// command ever recorded, newest first, NUL-separated.
#[test]
fn the_readme_fzf_line_feeds_all_history_newest_first() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("| fzf"))
        .expect("the README has an fzf line");
    let producer = line.split('|').next().unwrap();
    let args: Vec<&str> = producer.split_whitespace().skip(1).collect();
    assert_eq!(
        producer.split_whitespace().next(),
        Some("tmux-audit"),
        "{line}"
    );

    let sb = Sandbox::new();
    // 30 distinct commands (more than a page of 20), one of them run twice.
    for i in 1..=30 {
        let text = format!("echo {i}");
        assert!(sb.record_numbered(&i.to_string(), &text).status.success());
    }
    assert!(sb.record_numbered("31", "echo 5").status.success());
    let (code, out, err) = run(&sb, &args);
    assert_eq!(code, Some(0), "{err}");
    let got: Vec<&str> = out.strip_suffix('\0').unwrap_or(&out).split('\0').collect();
    let mut want = vec!["echo 5".to_string()];
    want.extend(
        (1..=30)
            .rev()
            .filter(|&i| i != 5)
            .map(|i| format!("echo {i}")),
    );
    assert_eq!(got, want);
}

/// A relative TMUX_AUDIT_DB names one file, in the home directory: not a new
/// database in each directory the shell visits.
#[test]
fn a_relative_tmux_audit_db_is_one_file_in_the_home_directory() {
    let sb = Sandbox::new();
    let home = sb.path().join("home");
    for (seq, dir) in [("1", "a"), ("2", "b/c")] {
        let cwd = sb.path().join(dir);
        std::fs::create_dir_all(&cwd).unwrap();
        let out = sb
            .cmd()
            .args(["record"])
            .args(crate::support::numbered(seq))
            .env("TMUX_AUDIT_DB", "rel.db")
            .env("PWD", &cwd)
            .current_dir(&cwd)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("echo {dir}").as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{out:?} {}", sb.log());
        assert!(!cwd.join("rel.db").exists(), "a database appeared in {dir}");
    }
    let out = sb
        .cmd()
        .args(["search", "--format", "cmd"])
        .env("TMUX_AUDIT_DB", "rel.db")
        .current_dir(sb.path().join("a"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "echo a\necho b/c\n",
        "{out:?}"
    );
    assert!(home.join("rel.db").exists());
}

/// `replay --speed`: a factor that cannot work (a pause would not fit a
/// `Duration`, or run backwards) is a one-line error before anything is read.
#[test]
fn a_replay_speed_that_cannot_work_is_refused() {
    let sb = in_pane_3();
    for speed in ["0", "-1", "1e-20", "0.0009", "NaN", "inf"] {
        let flag = format!("--speed={speed}");
        let (code, out, err) = run(&sb, &["replay", "--pane", "%3", &flag]);
        assert_eq!(code, Some(2), "{speed}: {out}{err}");
        assert!(
            err.contains("--speed must be a number from 0.001 up") && err.lines().count() == 1,
            "{speed}: {err}"
        );
    }
}
