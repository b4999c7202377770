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

/// The `redacted` flag of each row, in order.
fn redacted_flags(sb: &Sandbox) -> Vec<i64> {
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    let mut stmt = conn
        .prepare("SELECT redacted FROM commands ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
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
    assert_eq!(redacted_flags(&sb), [1, 1, 1, 0]);
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
    let out = sb.record(b"mysql -phunter22secret", &crate::support::numbered("1"));
    assert!(out.status.success());
    let spool = sb.spooled().into_bytes();
    assert!(holds(&spool, "[REDACTED]") && !holds(&spool, "hunter22secret"));
}

#[test]
fn config_patterns_and_exclusions_apply_and_a_broken_config_is_logged() {
    let sb = Sandbox::new();
    let config = sb.write_config(
        "[redact]\npatterns = ['corp_[a-z0-9]{8}']\nallow = ['AKIAIOSFODNN7EXAMPLE']\n",
    );
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

    // `config` warns on stderr, on one line, and says the pattern is not in
    // effect; stdout stays a valid TOML file.
    let out = sb.cmd().arg("config").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tmux-audit: warning: redact pattern \"(\"")
            && stderr.contains("skipped"),
        "{stderr}"
    );
    assert!(stdout.contains("# SKIPPED, not in effect"), "{stdout}");
    toml::from_str::<toml::Table>(&stdout).expect("config's output is a valid TOML file");
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

/// The leaks of issue 9, through the real `record`: each redacted in the
/// row, and not a byte of the secret in any file.
#[test]
fn the_leaks_of_the_review_are_redacted_on_the_way_to_disk() {
    let sb = Sandbox::new();
    let cases = [
        ("echo PASSWORD=hunter2abc", "echo PASSWORD=[REDACTED]", "hunter2abc"),
        ("DB_PASSWORD=dbpw4711 ./migrate", "DB_PASSWORD=[REDACTED] ./migrate", "dbpw4711"),
        (
            "export MYSQL_ROOT_PASSWORD=rootpw0815",
            "export MYSQL_ROOT_PASSWORD=[REDACTED]",
            "rootpw0815",
        ),
        (
            "docker run -e POSTGRES_PASSWORD=pgpw1234 postgres",
            "docker run -e POSTGRES_PASSWORD=[REDACTED] postgres",
            "pgpw1234",
        ),
        (
            "curl -H 'Authorization: BEARER abc123456789' https://api",
            "curl -H 'Authorization: BEARER [REDACTED]' https://api",
            "abc123456789",
        ),
        ("MYSQL_PWD=mypwd9876 mysql -uroot", "MYSQL_PWD=[REDACTED] mysql -uroot", "mypwd9876"),
        ("mysql -uroot\t-pSECRETtab42 app", "mysql -uroot\t-p[REDACTED] app", "SECRETtab42"),
        (
            r#"curl -d '{"password":"jsonpw777"}' https://api/login"#,
            r#"curl -d '{"password":"[REDACTED]"}' https://api/login"#,
            "jsonpw777",
        ),
        (
            "echo '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAkeyBodyWithoutEnd\nQm9keUxpbmVUd28' > k",
            "echo '[REDACTED]' > k",
            "MIIEpAIBAAKCAQEAkeyBodyWithoutEnd",
        ),
    ];
    for (i, (command, _, _)) in cases.iter().enumerate() {
        record(&sb, &(i + 1).to_string(), command);
    }
    let rows = sb.rows();
    let stored: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    let expected: Vec<&str> = cases.iter().map(|(_, e, _)| *e).collect();
    assert_eq!(stored, expected);
    let bytes = every_file(&sb);
    for (_, _, secret) in cases {
        assert!(!holds(&bytes, secret), "{secret} found in the files");
    }
}

/// The over-redactions of issue 9: `-p` of mkdir, cp, ssh, docker and tar
/// is no password; these are stored as typed and not flagged.
#[test]
fn options_that_are_no_password_are_stored_as_typed() {
    let sb = Sandbox::new();
    let commands = [
        "mkdir -pv a/b",
        "cp -pr src dst",
        "ssh -p2222 deploy@db",
        "docker run -p8080:80 nginx",
        "tar -xpf backup.tar",
    ];
    for (i, command) in commands.iter().enumerate() {
        record(&sb, &(i + 1).to_string(), command);
    }
    let rows = sb.rows();
    let stored: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(stored, commands);
    assert_eq!(redacted_flags(&sb), [0; 5]);
}

/// Whatever is wrong with the config file, the built-in patterns still
/// apply, the record is kept, and the log says what to fix. A broken user
/// pattern is skipped alone: the user's other patterns still apply.
#[test]
fn a_broken_config_never_turns_the_builtin_patterns_off() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/tmux-audit/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let broken: [(&str, &[u8]); 5] = [
        ("not TOML", b"[redact\npatterns = ['corp_[a-z0-9]{8}'"),
        ("a wrong type", b"[redact]\nenabled = \"yes\"\n"),
        (
            "an unknown key",
            b"[redact]\npaterns = ['corp_[a-z0-9]{8}']\n",
        ),
        ("not UTF-8", b"[redact]\npatterns = ['\xff\xfe']\n"),
        (
            "a pattern that does not compile",
            b"[redact]\npatterns = ['(']\n",
        ),
    ];
    for (i, (what, text)) in broken.iter().enumerate() {
        fs::write(&config, text).unwrap();
        let before = sb.log().lines().count();
        record(
            &sb,
            &(i + 1).to_string(),
            "mysql -uroot -phunter22secret app",
        );
        let rows = sb.rows();
        assert_eq!(
            rows.last().map(|r| r.command.as_str()),
            Some("mysql -uroot -p[REDACTED] app"),
            "{what}"
        );
        let log = sb.log();
        assert_eq!(
            log.lines().count(),
            before + 1,
            "{what}: one log line\n{log}"
        );
        assert!(log.contains("tmux-audit config"), "{what}: the fix\n{log}");
    }

    // A config file that cannot be read at all (a directory).
    fs::remove_file(&config).unwrap();
    fs::create_dir(&config).unwrap();
    record(&sb, "6", "mysql -uroot -phunter22secret app");
    assert_eq!(
        sb.rows().last().unwrap().command,
        "mysql -uroot -p[REDACTED] app"
    );
    fs::remove_dir(&config).unwrap();

    // One broken pattern among good ones: only it is skipped.
    fs::write(&config, "[redact]\npatterns = ['(', 'corp_[a-z0-9]{8}']\n").unwrap();
    record(
        &sb,
        "7",
        "deploy --key corp_abcd1234 --password hunter22secret",
    );
    assert_eq!(
        sb.rows().last().unwrap().command,
        "deploy --key [REDACTED] --password [REDACTED]"
    );
    assert!(!holds(&every_file(&sb), "hunter22secret"));
    let (ok, shown) = sb.run(&["config"]);
    assert!(
        ok && shown.contains("SKIPPED") && shown.contains("\"(\""),
        "{shown}"
    );
}
