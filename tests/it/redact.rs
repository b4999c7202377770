//! Secrets never stored: what the recorder writes, down to the bytes of the
//! database file and its WAL, and the spool.

use std::fs;

use crate::support::{Rc, Sandbox, Shell, Tmux};

const SECRETS: [&str; 3] = ["hunter22secret", "AKIAIOSFODNN7EXAMPLE", "s3cretpassw0rd"];

fn record(sb: &Sandbox, seq: &str, command: &str) {
    assert!(
        sb.record_numbered(seq, command).status.success(),
        "{}",
        sb.log()
    );
}

/// All the bytes a secret could hide in: database, WAL, spool, log.
fn every_file(sb: &Sandbox) -> Vec<u8> {
    let mut bytes = Vec::new();
    for dir in [sb.db.parent().unwrap().to_path_buf(), sb.state.clone()] {
        for entry in fs::read_dir(dir).into_iter().flatten() {
            bytes.extend(fs::read(entry.unwrap().path()).unwrap_or_default());
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_redacted_before_they_reach_any_file() {
    let sb = Sandbox::new();
    record(&sb, "1", "mysql -uroot -phunter22secret app");
    record(
        &sb,
        "2",
        "aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE",
    );
    record(&sb, "3", "psql postgres://admin:s3cretpassw0rd@db/app");
    record(&sb, "4", "ls -la");
    let rows = sb.rows();
    assert_eq!(rows[0].command, "mysql -uroot -p[REDACTED] app");
    assert_eq!(rows[2].command, "psql postgres://admin:[REDACTED]@db/app");
    assert_eq!(rows[3].command, "ls -la");
    let flags: Vec<i64> = {
        let conn = rusqlite::Connection::open(&sb.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT redacted FROM commands ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(flags, [1, 1, 1, 0]);
    let bytes = every_file(&sb);
    for secret in SECRETS {
        assert!(!holds(&bytes, secret), "{secret} found in the files");
    }
    // The search output says which records were redacted.
    let out = sb
        .cmd()
        .args(["search", "--format", "jsonl"])
        .output()
        .unwrap();
    let first: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["redacted"], true);
}

#[test]
fn a_spooled_record_is_redacted_too() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.db.parent().unwrap()).unwrap();
    fs::write(&sb.db, b"damaged".repeat(100)).unwrap();
    let out = sb.record(
        b"mysql -phunter22secret",
        &[
            "--shell",
            "bash",
            "--session",
            "s",
            "--seq",
            "1",
            "--exit",
            "0",
        ],
    );
    assert!(out.status.success());
    let spool = sb.spooled().into_bytes();
    assert!(holds(&spool, "[REDACTED]") && !holds(&spool, "hunter22secret"));
}

#[test]
fn config_patterns_and_exclusions_apply_and_a_broken_config_is_logged() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/tmux-audit/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(
        &config,
        "[redact]\npatterns = ['corp_[a-z0-9]{8}']\nallow = ['AKIAIOSFODNN7EXAMPLE']\n",
    )
    .unwrap();
    record(
        &sb,
        "1",
        "deploy --token corp_abcd1234 --key AKIAIOSFODNN7EXAMPLE",
    );
    assert_eq!(
        sb.rows()[0].command,
        "deploy --token [REDACTED] --key AKIAIOSFODNN7EXAMPLE"
    );

    let out = sb.cmd().arg("config").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("corp_[a-z0-9]{8}") && text.contains(&config.display().to_string()),
        "{text}"
    );

    fs::write(&config, "[redact]\npatterns = ['(']\n").unwrap();
    record(&sb, "2", "mysql -phunter22secret");
    assert_eq!(
        sb.rows()[1].command,
        "mysql -p[REDACTED]",
        "built-in patterns still apply"
    );
    assert!(sb.log().contains("redact pattern"), "{}", sb.log());
}

#[test]
fn a_secret_typed_in_a_real_shell_is_not_stored() {
    let sb = Sandbox::new();
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Zsh, &Rc::default()));
    pane.ready();
    pane.line("echo --password=hunter22secret > /dev/null");
    let rows = sb.wait_rows("the record", |rows| rows.len() == 1);
    assert_eq!(rows[0].command, "echo --password=[REDACTED] > /dev/null");
    assert!(!holds(&every_file(&sb), "hunter22secret"));
}
