//! `tmux-audit search` on databases written by the real `record` path.

use crate::support::Sandbox;

fn record(sb: &Sandbox, seq: u32, command: &[u8], exit: &str) {
    let seq = seq.to_string();
    let out = sb.record(
        command,
        &[
            "--shell",
            "zsh",
            "--session",
            "z",
            "--seq",
            &seq,
            "--exit",
            exit,
        ],
    );
    assert!(out.status.success(), "{out:?}");
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

#[test]
fn json_has_every_field_and_the_exact_text() {
    let sb = Sandbox::new();
    let tricky = "echo \"a,b\" 'c\td'\nsecond line ✓";
    record(&sb, 1, tricky.as_bytes(), "0");
    record(&sb, 2, b"bad \xff byte", "1");
    let out = sb.cmd().args(["search", "--json"]).output().unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["command"], tricky);
    assert_eq!(rows[0]["exit_status"], 0);
    assert_eq!(rows[0]["shell"], "zsh");
    assert_eq!(rows[0]["seq"], 1);
    assert!(rows[0]["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(rows[0].get("command_bytes_hex").is_none());
    assert_eq!(rows[1]["command_bytes_hex"], "62616420ff2062797465");
    for field in [
        "cwd",
        "user",
        "uid",
        "host",
        "shell_session",
        "tty",
        "tmux_pane",
        "duration_ms",
        "login_uid",
    ] {
        assert!(rows[0].get(field).is_some(), "missing {field}");
    }
}

#[test]
fn the_table_shows_newest_last_escapes_control_characters_and_has_no_colour_off_a_terminal() {
    let sb = Sandbox::new();
    record(&sb, 1, b"echo one", "0");
    record(&sb, 2, b"printf '\x1b[31mred\x1b[0m'\nsecond", "3");
    let out = sb.cmd().args(["search"]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        !table.contains('\x1b'),
        "no raw escapes, no colour:\n{table}"
    );
    assert!(
        table.contains(r"printf '\x1b[31mred\x1b[0m'⏎second"),
        "{table}"
    );
    let one = table.find("echo one").unwrap();
    let two = table.find("printf").unwrap();
    assert!(one < two, "oldest first:\n{table}");

    let out = sb.cmd().args(["search", "-n", "1"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        !table.contains("echo one") && table.contains("printf"),
        "{table}"
    );
}

#[test]
fn an_empty_database_prints_nothing_and_exits_1() {
    let sb = Sandbox::new();
    record(&sb, 1, b"true", "0");
    rusqlite::Connection::open(&sb.db)
        .unwrap()
        .execute("DELETE FROM commands", [])
        .unwrap();
    let out = sb.cmd().arg("search").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}
