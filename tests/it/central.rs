//! The central store, against a real PostgreSQL started by the tests
//! (`pg.rs`): `central init` and its roles, `sync` shipping every record
//! exactly once in chain order (across a server restart), `search
//! --central` finding from one host what a real shell in tmux typed on
//! another, `verify` naming local changes after shipping, and one clear
//! line for each way the server can fail, the prompt never waiting.

use std::path::Path;
use std::process::Output;

use crate::pg::{self, Cluster};
use crate::support::{wait_until, Rc, Sandbox, Shell, Tmux};
use tmux_audit::db::Database;
use tmux_audit::record::{CommandRecord, Entry};

/// A simulated host: a sandbox of its own (database, state directory) and
/// a host id of its own, shipping as `role`.
struct Host {
    sb: Sandbox,
    id: String,
    url: String,
    pgpass: std::path::PathBuf,
}

impl Host {
    fn new(name: &str, url: String, role: &str, password: &str, port: u16) -> Host {
        let sb = Sandbox::new();
        let pgpass = pg::pgpass(sb.path(), &[(role, password)], port);
        Host {
            id: format!("{name}-{}", std::process::id()),
            sb,
            url,
            pgpass,
        }
    }

    fn cmd(&self) -> std::process::Command {
        let mut cmd = self.sb.cmd();
        cmd.env("TMUX_AUDIT_HOST_ID", &self.id)
            .env("TMUX_AUDIT_CENTRAL_URL", &self.url)
            .env("PGPASSFILE", &self.pgpass);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        out
    }

    /// Stores `n` commands straight into the local database (as a merge
    /// of the spool would), numbered from `from`.
    fn records(&self, from: usize, n: usize) {
        self.store((from..from + n).map(|i| CommandRecord {
            command: format!("echo {} command {i}", self.id),
            started_at_us: 1_790_000_000_000_000 + i as i64 * 1_000_000,
            duration_us: Some(1000),
            exit_status: Some(0),
            cwd: "/srv".into(),
            user: "ops".into(),
            uid: 1000,
            host: "web".into(),
            shell: "bash".into(),
            shell_session: format!("{}-s", self.id),
            seq: i as i64,
            ..CommandRecord::default()
        }));
    }

    /// Stores `records` straight into the local database.
    fn store(&self, records: impl IntoIterator<Item = CommandRecord>) {
        let mut db = Database::open(&self.sb.db).unwrap();
        let entries: Vec<Entry> = records.into_iter().map(Entry::Command).collect();
        for chunk in entries.chunks(1000) {
            db.insert_all(chunk.iter().map(|e| (e, 1_790_000_000_000_000)))
                .unwrap();
        }
    }

    fn sql(&self, sql: &str) {
        rusqlite::Connection::open(&self.sb.db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A database with the central schema, made by `central init`.
fn initialised(cluster: &Cluster, prefix: &str) -> String {
    initialise(cluster, cluster.database(prefix))
}

/// Runs `central init` in `dbname`, a new database.
fn initialise(cluster: &Cluster, dbname: String) -> String {
    let _one_at_a_time = pg::INIT.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["central", "init", "--url", &cluster.admin_url(&dbname)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "created the central schema (version {})",
            tmux_audit::central::schema::VERSION
        )),
        "{}",
        text(&out.stdout)
    );
    dbname
}

/// A writer role for one host, an auditor, and hosts that use them.
fn writer(cluster: &Cluster, dbname: &str, name: &str) -> Host {
    let role = format!("{dbname}_{name}");
    cluster.role(&role, "pw-writer", "tmux_audit_writer");
    Host::new(
        name,
        cluster.url(&role, dbname),
        &role,
        "pw-writer",
        cluster.port,
    )
}

/// A user role `role` (it reads its own rows only) and a host that uses it.
fn user(cluster: &Cluster, dbname: &str, role: &str, name: &str) -> Host {
    let password = format!("pw-{name}");
    cluster.role(role, &password, "tmux_audit_user");
    Host::new(
        name,
        cluster.url(role, dbname),
        role,
        &password,
        cluster.port,
    )
}

fn auditor(cluster: &Cluster, dbname: &str) -> Host {
    let role = format!("{dbname}_auditor");
    cluster.role(&role, "pw-auditor", "tmux_audit_auditor");
    Host::new(
        "auditor",
        cluster.url(&role, dbname),
        &role,
        "pw-auditor",
        cluster.port,
    )
}

#[test]
fn init_creates_the_schema_once_and_print_sql_shows_it_without_running_it() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["central", "init", "--print-sql"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sql = text(&out.stdout);
    for part in [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "PARTITION BY RANGE (started_at_us)",
        "ENABLE ROW LEVEL SECURITY",
        "gin_trgm_ops",
        "CREATE ROLE tmux_audit_writer",
    ] {
        assert!(sql.contains(part), "{part} missing");
    }
    let dbname = initialised(cluster, "init");
    let _one_at_a_time = pg::INIT.lock().unwrap_or_else(|e| e.into_inner());
    let again = sb
        .cmd()
        .args(["central", "init", "--url", &cluster.admin_url(&dbname)])
        .output()
        .unwrap();
    assert!(
        text(&again.stdout).starts_with(&format!(
            "the central schema is up to date (version {})",
            tmux_audit::central::schema::VERSION
        )),
        "{}",
        text(&again.stdout)
    );
    let mut admin = cluster.admin(&dbname);
    let partitions: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'tmux_audit.commands'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(partitions, 14, "a default partition and 13 months");
}

#[test]
fn a_writer_inserts_only_for_its_host_and_cannot_change_or_read_what_was_shipped() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "roles");
    let a = writer(cluster, &dbname, "a");
    let b = writer(cluster, &dbname, "b");
    a.records(1, 3);
    b.records(1, 2);
    for host in [&a, &b] {
        let out = host.run(&["sync"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert_eq!(
        text(&a.run(&["sync"]).stdout),
        "shipped 0 commands and 0 tmux events\n",
        "sending again ships nothing"
    );
    // With host a's writer credentials, by hand.
    let mut as_a = cluster.connect_as(&format!("{dbname}_a"), "pw-writer", &dbname);
    for sql in [
        "UPDATE tmux_audit.commands SET command = 'ls'",
        "DELETE FROM tmux_audit.commands",
        "TRUNCATE tmux_audit.commands",
        "SELECT command FROM tmux_audit.commands",
        "UPDATE tmux_audit.anchors SET last_id = 0",
        "DELETE FROM tmux_audit.writers",
        "SELECT tmux_audit.advance('x', 'y', 'commands', 1000, NULL, 1)",
    ] {
        let err = as_a.batch_execute(sql).expect_err(sql);
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("42501"),
            "{sql}: {err}"
        );
    }
    // A row as host b, with host a's role: refused.
    let insert = "INSERT INTO tmux_audit.commands (host_id, database_id, id, recorded_at_us, \
        command, started_at_us, cwd, \"user\", uid, host, shell, shell_session, seq, prev_hash, hash) \
        VALUES ($1, 'x', 99, 0, 'forged', 1790000000000000, '/', 'ops', 1000, 'web', 'bash', 's', 1, '\\x00', '\\x00')";
    let err = as_a
        .execute(insert, &[&b.id])
        .expect_err("another host's row");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));
    let why = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("row-level security")),
        "{why:?}"
    );
    // Host a's credentials on another host: sync stops with one line.
    let elsewhere = Host::new(
        "elsewhere",
        a.url.clone(),
        &format!("{dbname}_a"),
        "pw-writer",
        cluster.port,
    );
    elsewhere.records(1, 1);
    let out = elsewhere.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("writes for host"),
        "{}",
        text(&out.stderr)
    );
    // Nor bind itself anew to host b, or change its binding.
    for sql in [
        "UPDATE tmux_audit.writers SET host_id = 'b'",
        "INSERT INTO tmux_audit.writers (role, host_id, host_name) VALUES ('someone', 'b', 'b')",
    ] {
        let err = as_a.batch_execute(sql).expect_err(sql);
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("42501"),
            "{sql}: {err}"
        );
    }
    // Its own host, a row that does not extend the chain shipped: refused.
    let database_id: String = rusqlite::Connection::open(&a.sb.db)
        .unwrap()
        .query_row("SELECT database_id FROM central_identity", [], |r| r.get(0))
        .unwrap();
    let a_host: String = cluster
        .admin(&dbname)
        .query_one(
            "SELECT host_id FROM tmux_audit.writers WHERE role = $1",
            &[&format!("{dbname}_a")],
        )
        .unwrap()
        .get(0);
    let err = as_a
        .execute(&insert.replace("'x'", "$2"), &[&a_host, &database_id])
        .expect_err("a row off the chain");
    let why = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("does not extend the chain")),
        "{why:?}"
    );
    // Shipping as itself who it is not (shipped_by) is not a column it may set.
    let err = as_a
        .batch_execute("INSERT INTO tmux_audit.commands (shipped_by) VALUES ('x')")
        .expect_err("shipped_by");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));

    // The auditor reads every host; a user only the rows of its own name.
    let auditor = auditor(cluster, &dbname);
    let out = auditor.run(&["search", "--central", "--all", "--format", "cmd"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 5);
    let ops = user(cluster, &dbname, "ops", "ops");
    let eve = user(cluster, &dbname, &format!("{dbname}_eve"), "eve");
    let out = ops.run(&["search", "--central", "--all", "--format", "cmd"]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        5,
        "{}",
        text(&out.stderr)
    );
    let out = eve.run(&["search", "--central", "--all"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing of eve's: {}",
        text(&out.stdout)
    );
}

#[test]
fn every_record_of_many_hosts_arrives_once_in_chain_order_across_a_server_restart() {
    let Some(cluster) = Cluster::start_new() else {
        return;
    };
    let dbname = initialised(&cluster, "load");
    const HOSTS: usize = 20;
    const RECORDS: usize = 2000;
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|i| writer(&cluster, &dbname, &format!("h{i}")))
        .collect();
    for host in &hosts {
        host.records(1, RECORDS);
    }
    let mut admin = cluster.admin(&dbname);
    // All hosts at once; the server stops once some rows have arrived.
    let syncs: Vec<_> = hosts
        .iter()
        .map(|h| {
            h.cmd()
                .arg("sync")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    wait_until("some rows on the server", || {
        admin
            .query_one("SELECT count(*) FROM tmux_audit.commands", &[])
            .map(|r| r.get::<_, i64>(0) > 0)
            .unwrap_or(false)
    });
    drop(admin);
    cluster.stop();
    let mut failed = 0;
    for sync in syncs {
        let out = sync.wait_with_output().unwrap();
        if !out.status.success() {
            failed += 1;
            let err = text(&out.stderr);
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.contains("records wait locally"), "{err}");
        }
    }
    cluster.start();
    // Again, all at once, twice over for some: nothing is stored twice.
    let syncs: Vec<_> = hosts
        .iter()
        .chain(hosts.iter().take(3))
        .map(|h| h.cmd().arg("sync").output_async())
        .collect();
    for sync in syncs {
        let out = sync.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let mut admin = cluster.admin(&dbname);
    let per_host = admin
        .query(
            "SELECT host_id, count(*), count(DISTINCT id), min(id), max(id) FROM tmux_audit.commands GROUP BY host_id",
            &[],
        )
        .unwrap();
    assert_eq!(per_host.len(), HOSTS);
    for row in per_host {
        let n = RECORDS as i64;
        assert_eq!(
            (
                row.get::<_, i64>(1),
                row.get::<_, i64>(2),
                row.get::<_, i64>(3),
                row.get::<_, i64>(4)
            ),
            (n, n, 1, n),
            "{}",
            row.get::<_, String>(0)
        );
    }
    let auditor = auditor(&cluster, &dbname);
    let out = auditor.run(&["verify", "--central"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout).matches("intact: 2000 records").count(),
        HOSTS
    );
    // Rows sent twice (the syncs cut short, the three run twice at once)
    // are counted once in the totals per host too.
    let kept: i64 = admin
        .query_one(
            "SELECT sum(commands)::bigint FROM tmux_audit.host_totals",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, (HOSTS * RECORDS) as i64);
    let team_view = |args: &[&str]| text(&auditor.run(args).stdout);
    assert_eq!(
        team_view(&["report", "--central", "--format", "csv"]),
        team_view(&[
            "report",
            "--central",
            "--since",
            "2000-01-01",
            "--format",
            "csv"
        ])
    );
    eprintln!("{failed} of {HOSTS} syncs were cut by the restart");
}

trait OutputAsync {
    fn output_async(&mut self) -> std::process::Child;
}

impl OutputAsync for std::process::Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn verify_names_a_shipped_record_edited_deleted_or_rewritten_here() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "verify");
    let host = writer(cluster, &dbname, "v");
    host.records(1, 6);
    assert!(host.run(&["sync"]).status.success());
    let verify = |host: &Host| {
        let out = host.run(&["verify"]);
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    let (code, out) = verify(&host);
    assert_eq!(code, Some(0), "{out}");

    // An edit, the chain fixed up after it: consistent here.
    host.sql("UPDATE commands SET command = 'echo nothing to see' WHERE id = 2");
    rechain(&host.sb.db);
    let (code, out) = verify(&host);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("record 2 differs from what was shipped to the central store"),
        "{out}"
    );
    assert!(!out.contains("was changed after it was written"), "{out}");

    // A deletion, and the newest records cut off.
    host.sql("DELETE FROM commands WHERE id IN (4, 5, 6)");
    let (_, out) = verify(&host);
    assert!(
        out.contains("record 4 was shipped to the central store but is missing here"),
        "{out}"
    );
    assert!(
        out.contains("the central anchor holds records up to 6"),
        "{out}"
    );

    // The whole chain rewritten so that it is consistent here.
    let rewritten = writer(cluster, &dbname, "w");
    rewritten.records(1, 3);
    assert!(rewritten.run(&["sync"]).status.success());
    rewritten.sql("DELETE FROM commands");
    let mut db = Database::open(&rewritten.sb.db).unwrap();
    let fake = Entry::Command(CommandRecord {
        command: "echo harmless".into(),
        cwd: "/".into(),
        user: "ops".into(),
        host: "web".into(),
        shell: "bash".into(),
        shell_session: "other".into(),
        seq: 1,
        started_at_us: 1_790_000_000_000_000,
        ..CommandRecord::default()
    });
    db.insert_all([(&fake, 1_790_000_000_000_000)]).unwrap();
    drop(db);
    let (code, out) = verify(&rewritten);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("record 1 differs from what was shipped"),
        "{out}"
    );
    assert!(
        out.contains("the central anchor holds records up to 3"),
        "{out}"
    );
}

/// Recomputes every command's links, as someone rewriting history would.
fn rechain(db: &Path) {
    let rows = Database::open(db).unwrap().commands_in_order().unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut prev = tmux_audit::chain::GENESIS;
    for row in rows {
        let hash = tmux_audit::chain::hash_command(&prev, row.id, &row.record, row.recorded_at_us);
        conn.execute(
            "UPDATE commands SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            rusqlite::params![&prev[..], &hash[..], row.id],
        )
        .unwrap();
        prev = hash;
    }
}

#[test]
fn search_central_finds_from_host_b_what_a_shell_in_tmux_typed_on_host_a() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "search");
    let a = writer(cluster, &dbname, "a");
    let b = auditor(cluster, &dbname);
    // Host A: a real bash in tmux, the hook loaded.
    let (tmux, pane) = Tmux::start(&a.sb, &a.sb.shell(Shell::Bash, &Rc::default()));
    tmux.load_audit_config(&a.sb);
    pane.ready();
    pane.line("echo central-needle-42 | tr a-z A-Z");
    a.sb.wait_rows("the command", |rows| {
        rows.iter().any(|r| r.command.contains("central-needle-42"))
    });
    tmux.settle_events(&a.sb);
    let out = a.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Host B's CLI, another state directory and host id.
    for format in ["table", "json", "jsonl", "csv", "tsv", "cmd"] {
        let local = a.run(&["search", "central-needle", "--format", format]);
        let central = b.run(&["search", "--central", "central-needle", "--format", format]);
        assert!(central.status.success(), "{}", text(&central.stderr));
        assert!(text(&central.stdout).contains("central-needle-42"));
        assert_eq!(
            text(&central.stdout),
            text(&local.stdout),
            "--format {format}"
        );
    }
    // The team view: the same report as host A's own, per host.
    for format in ["table", "json", "csv"] {
        let local = a.run(&["report", "--by", "host", "--format", format]);
        let central = b.run(&["report", "--central", "--format", format]);
        assert!(central.status.success(), "{}", text(&central.stderr));
        assert_eq!(
            text(&central.stdout),
            text(&local.stdout),
            "report --format {format}"
        );
    }
    // Every grouping of a local report, the sessions and a pane's
    // timeline: the same output from the central store.
    for by in crate::support::REPORT_GROUPINGS {
        for format in ["table", "json"] {
            let local = a.run(&["report", "--by", by, "--format", format]);
            let central = b.run(&["report", "--central", "--by", by, "--format", format]);
            assert!(
                central.status.success(),
                "--by {by}: {}",
                text(&central.stderr)
            );
            assert_eq!(
                text(&central.stdout),
                text(&local.stdout),
                "report --by {by} --format {format}"
            );
        }
    }
    for (what, args) in [
        ("sessions", vec!["sessions"]),
        ("timeline", vec!["timeline", "--pane", pane.id.as_str()]),
    ] {
        for format in ["table", "json"] {
            let local = a.run(&[&args[..], &["--format", format]].concat());
            let central = b.run(&[&args[..], &["--central", "--format", format]].concat());
            assert!(
                central.status.success(),
                "{what}: {}",
                text(&central.stderr)
            );
            assert!(!text(&central.stdout).is_empty(), "{what}");
            assert_eq!(
                text(&central.stdout),
                text(&local.stdout),
                "{what} --format {format}"
            );
        }
    }
    // A second host's command of the same day: counted in one group with
    // host A's (only pane, session and window ids are scoped by host).
    let c = writer(cluster, &dbname, "c");
    let at = a.sb.rows()[0].started_at_us.to_string();
    let args = [
        &crate::support::numbered("1")[..],
        &["--start-us", &at, "--end-us", &at],
    ]
    .concat();
    assert!(c.sb.record(b"echo on-host-c", &args).status.success());
    let out = c.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = b.run(&["report", "--central", "--by", "day", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let groups: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(groups.len(), 1, "one day: {}", text(&out.stdout));
    assert_eq!(groups[0]["commands"], 2, "{}", text(&out.stdout));
    let out = b.run(&["timeline", "--central", "--pane", "%999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no pane %999 was recorded"),
        "{}",
        text(&out.stderr)
    );
    let out = b.run(&["search", "--central", "no-such-needle"]);
    assert_eq!(out.status.code(), Some(1));
    let out = b.run(&["search", "--central", "--host", "nosuchhost"]);
    assert_eq!(out.status.code(), Some(1));
    let out = b.run(&[
        "report",
        "--central",
        "--by",
        "session",
        "--host",
        "nosuchhost",
    ]);
    assert_eq!(out.status.code(), Some(1));
    drop(tmux);
}

/// Whatever the server does, one line, exit 2, the records still here and
/// shipped once it is right again.
#[test]
fn each_server_failure_is_one_clear_line_and_nothing_is_lost() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "fail");
    let host = writer(cluster, &dbname, "f");
    host.records(1, 2);
    let fails = |host: &Host, url: &str, expected: &str| {
        let out = host
            .cmd()
            .env("TMUX_AUDIT_CENTRAL_URL", url)
            .arg("sync")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{url}: {err}");
    };
    let role = format!("{dbname}_f");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fails(
        &host,
        &format!("postgresql://{role}@127.0.0.1:{closed}/{dbname}?sslmode=disable"),
        "cannot reach the central store",
    );
    fails(
        &host,
        &format!(
            "postgresql://{role}:wrong@127.0.0.1:{}/{dbname}?sslmode=disable",
            cluster.port
        ),
        "refused the login",
    );
    fails(
        &host,
        &format!(
            "postgresql://{role}@127.0.0.1:{}/{dbname}?sslmode=require",
            cluster.port
        ),
        "the server does not offer TLS",
    );
    fails(
        &host,
        &format!(
            "postgresql://{role}@127.0.0.1:{}/{dbname}?sslmode=verify-full",
            cluster.port
        ),
        "need the server's root certificate",
    );
    cluster
        .admin(&dbname)
        .batch_execute("INSERT INTO tmux_audit.migrations (version) VALUES (99)")
        .unwrap();
    fails(
        &host,
        &host.url,
        "the central schema is version 99, newer than this tmux-audit",
    );
    cluster
        .admin(&dbname)
        .batch_execute("DELETE FROM tmux_audit.migrations WHERE version = 99")
        .unwrap();
    let out = host.run(&["sync"]);
    assert_eq!(
        text(&out.stdout),
        "shipped 2 commands and 0 tmux events\n",
        "{}",
        text(&out.stderr)
    );
}

/// With a central store configured and a server that never answers, the
/// per-command path still ends at once: `record` never connects, it only
/// starts a detached sync (at most every N seconds), which is still
/// waiting for the server when every record has returned. A server that
/// refuses: the outage is logged once, however many syncs fail.
#[test]
fn the_prompt_never_waits_for_the_central_store() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/tmux-audit");
    std::fs::create_dir_all(&config).unwrap();
    let configure = |port: u16| {
        std::fs::write(
            config.join("config.toml"),
            format!(
                "[central]\nurl = \"postgresql://w@127.0.0.1:{port}/x?sslmode=disable&connect_timeout=3600\"\nsync_every_secs = 3600\n"
            ),
        )
        .unwrap();
    };
    // Takes connections into its backlog and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    configure(silent.local_addr().unwrap().port());
    let record = |seq: usize| {
        let child =
            crate::support::start_record(&sb.bin, &sb.env(), "s", seq, &format!("echo {seq}"));
        let out = crate::support::finish_within_patience(child, "record with the server silent");
        assert!(out.status.success());
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
    };
    for seq in 1..=3 {
        record(seq);
    }
    let syncs = |sb: &Sandbox| -> Vec<crate::support::Process> {
        sb.processes()
            .into_iter()
            .filter(|p| p.cmdline.contains("sync --detached"))
            .collect()
    };
    let waiting = syncs(&sb);
    assert_eq!(
        waiting.len(),
        1,
        "one detached sync, still waiting: {waiting:?}"
    );
    for sync in &waiting {
        // SAFETY: plain kill(2) of a process this test started.
        unsafe { libc::kill(sync.pid, libc::SIGKILL) };
    }
    assert!(sb.flush());
    assert_eq!(sb.rows().len(), 3, "nothing lost");

    // A server that refuses: each sync fails at once, logged once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    configure(closed);
    let stamp = sb.path().join("state/tmux-audit/central-sync.stamp");
    for seq in 4..=6 {
        std::fs::remove_file(&stamp).unwrap();
        record(seq);
        wait_until("the detached sync to end", || syncs(&sb).is_empty());
    }
    assert_eq!(
        sb.log().matches("cannot reach the central store").count(),
        1,
        "{}",
        sb.log()
    );
}

/// Makes a CA, a server certificate for `localhost` and a client
/// certificate for `client` in `dir` (openssl, EC keys).
fn certificates(dir: &Path, client: &str) {
    let script = format!(
        r#"set -e
cd '{dir}'
ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
openssl req -x509 $ec -keyout ca.key -out ca.crt -days 2 -subj /CN=tmux-audit-test-ca
openssl req -x509 $ec -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=someone-else
openssl req $ec -keyout server.key -out server.csr -subj /CN=localhost
printf 'subjectAltName=DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext
openssl req $ec -keyout client.key -out client.csr -subj /CN={client}
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext
chmod 600 server.key client.key
"#,
        dir = dir.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", text(&out.stderr));
}

/// sslmode=verify-full checks the chain and the host name; verify-ca the
/// chain only; a server whose certificate another CA signed is refused in
/// one line; a client certificate logs in without a password.
#[test]
fn tls_verify_full_checks_the_server_and_a_client_certificate_logs_in() {
    if !crate::support::have("openssl") {
        assert!(std::env::var_os("CI").is_none(), "openssl is missing");
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let Some(cluster) = Cluster::start_new() else {
        return;
    };
    let dbname = initialised(&cluster, "tls");
    let certs = cluster.dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    let role = format!("{dbname}_t");
    let cert_role = format!("{dbname}_c");
    certificates(&certs, &cert_role);
    // The server's copies, its own.
    for file in ["server.crt", "server.key", "ca.crt"] {
        std::fs::copy(certs.join(file), cluster.data.join(file)).unwrap();
        std::process::Command::new("chown")
            .args(["nobody"])
            .arg(cluster.data.join(file))
            .status()
            .unwrap();
    }
    let hba = cluster.data.join("pg_hba.conf");
    let rest = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl all {cert_role} 127.0.0.1/32 cert\nhostnossl all {role} 127.0.0.1/32 reject\n{rest}"
        ),
    )
    .unwrap();
    let mut admin = cluster.admin("postgres");
    for setting in [
        "ssl = on",
        "ssl_cert_file = 'server.crt'",
        "ssl_key_file = 'server.key'",
        "ssl_ca_file = 'ca.crt'",
    ] {
        admin
            .batch_execute(&format!("ALTER SYSTEM SET {setting}"))
            .unwrap();
    }
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    cluster.role(&role, "pw-tls", "tmux_audit_writer");
    cluster.role(&cert_role, "unused", "tmux_audit_writer");
    let root = certs.join("ca.crt").display().to_string();
    let url = |host: &str, user: &str, mode: &str, root: &str| {
        format!(
            "postgresql://{user}@{host}:{}/{dbname}?sslmode={mode}&sslrootcert={root}",
            cluster.port
        )
    };
    let host = Host::new(
        "tls",
        url("localhost", &role, "verify-full", &root),
        &role,
        "pw-tls",
        cluster.port,
    );
    // The password file names 127.0.0.1; this one names localhost too.
    std::fs::write(
        &host.pgpass,
        format!(
            "localhost:{p}:*:{role}:pw-tls\n127.0.0.1:{p}:*:{role}:pw-tls\n",
            p = cluster.port
        ),
    )
    .unwrap();
    host.records(1, 2);
    crate::support::wait_until("the server to take TLS", || {
        host.run(&["sync"]).status.success()
    });
    let sync = |url: String| {
        let out = host
            .cmd()
            .env("TMUX_AUDIT_CENTRAL_URL", url)
            .arg("sync")
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    };
    // The certificate names localhost, not 127.0.0.1: verify-full refuses,
    // verify-ca (the chain only) takes it.
    let (code, err) = sync(url("127.0.0.1", &role, "verify-full", &root));
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no trusted TLS connection"), "{err}");
    let (code, err) = sync(url("127.0.0.1", &role, "verify-ca", &root));
    assert_eq!(code, Some(0), "{err}");
    // Signed by another CA: refused, whatever the name.
    let other = certs.join("other-ca.crt").display().to_string();
    let (code, err) = sync(url("localhost", &role, "verify-full", &other));
    assert_eq!(code, Some(2));
    assert!(err.contains("no trusted TLS connection"), "{err}");
    // Without TLS, this role is rejected by the server.
    let (code, _) = sync(format!(
        "postgresql://{role}@127.0.0.1:{}/{dbname}?sslmode=disable",
        cluster.port
    ));
    assert_eq!(code, Some(2));
    // A client certificate instead of a password (PGSSLCERT/PGSSLKEY).
    let by_cert = Host::new(
        "cert",
        url("localhost", &cert_role, "verify-full", &root),
        &cert_role,
        "none",
        cluster.port,
    );
    std::fs::write(&by_cert.pgpass, "").unwrap();
    by_cert.records(1, 1);
    let out = by_cert
        .cmd()
        .env("PGSSLCERT", certs.join("client.crt"))
        .env("PGSSLKEY", certs.join("client.key"))
        .arg("sync")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "shipped 1 commands and 0 tmux events\n",
        "{}",
        text(&out.stderr)
    );
}

/// A database from before the central store (schema 13) takes the new
/// tables in place, its records kept, and ships them.
#[test]
fn a_database_from_before_the_central_store_upgrades_in_place() {
    let sb = Sandbox::new();
    sb.record_numbered("1", "echo before");
    assert!(sb.flush());
    crate::schemas::downgrade(&sb.db, 13);
    let (ok, out) = sb.run(&["verify"]);
    assert!(ok, "{out}");
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::record::LATEST_SCHEMA);
    let id: String = conn
        .query_row("SELECT database_id FROM central_identity", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(sb.rows().len(), 1);
}

/// `/etc/tmux-audit/config.toml` (here through the debug builds' test
/// hook): its central URL and its redaction hold whatever the user's
/// file and environment say.
#[test]
fn the_system_config_fixes_where_records_go_and_what_is_redacted() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "system");
    let host = writer(cluster, &dbname, "s");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let elsewhere = format!("postgresql://me@127.0.0.1:{closed}/mine?sslmode=disable");
    let system = host.sb.path().join("system.toml");
    std::fs::write(
        &system,
        format!(
            "[central]\nurl = \"{}\"\nsync_every_secs = 0\n[redact]\npatterns = ['corp_[a-z0-9]{{8}}']\n",
            host.url
        ),
    )
    .unwrap();
    let user = host.sb.path().join("config/tmux-audit");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(
        user.join("config.toml"),
        format!("[central]\nurl = \"{elsewhere}\"\n[redact]\nenabled = false\nallow = ['corp_abcdefgh']\n"),
    )
    .unwrap();
    let mut record = host
        .cmd()
        .env("TMUX_AUDIT_SYSTEM_CONFIG", &system)
        .env("TMUX_AUDIT_CENTRAL_URL", &elsewhere)
        .args(["record"])
        .args(crate::support::numbered("1"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut record.stdin.take().unwrap(),
        b"curl -H 'token: corp_abcdefgh' x\n",
    )
    .unwrap();
    assert!(record.wait().unwrap().success());
    assert!(host.sb.flush());
    assert_eq!(
        host.sb.rows()[0].command,
        "curl -H 'token: [REDACTED]' x",
        "redacted whatever the user's file says"
    );
    let out = host
        .cmd()
        .env("TMUX_AUDIT_SYSTEM_CONFIG", &system)
        .env("TMUX_AUDIT_CENTRAL_URL", &elsewhere)
        .arg("sync")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "shipped 1 commands and 0 tmux events\n",
        "shipped where the system says: {}",
        text(&out.stderr)
    );
}

/// What a later schema added to the chain's hash (an import mark, whether
/// a window rename was tmux's own) ships with the row: `verify --central`
/// recomputes the same hashes, and the row reads back marked.
#[test]
fn imported_rows_and_automatic_renames_ship_and_verify() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "marks");
    let host = writer(cluster, &dbname, "m");
    host.records(1, 2);
    let history = host.sb.path().join("bash_history");
    std::fs::write(&history, "#1790000100\necho imported-one\n").unwrap();
    let out = host.run(&["import", "bash", history.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut db = Database::open(&host.sb.db).unwrap();
    let renamed = Entry::TmuxEvent(tmux_audit::lifecycle::TmuxEvent {
        event: "window-renamed".into(),
        at_us: 1_790_000_200_000_000,
        event_key: "marks-1".into(),
        host: "web".into(),
        user: "ops".into(),
        tmux_socket: "/tmp/tmux-1000/default".into(),
        tmux_server_pid: 42,
        window_id: Some(1),
        window_name: Some("vim".into()),
        automatic_rename: Some(true),
        ..Default::default()
    });
    db.insert_all([(&renamed, 1_790_000_200_000_000)]).unwrap();
    drop(db);

    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let auditor = auditor(cluster, &dbname);
    let out = auditor.run(&["verify", "--central"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = auditor.run(&["search", "--central", "imported-one", "--format", "jsonl"]);
    let found = text(&out.stdout);
    assert!(found.contains("\"import_source\":\"bash\""), "{found}");
}

/// With a central store configured, a prune never deletes what was not
/// shipped there yet: the only copy would be gone.
#[test]
fn a_prune_keeps_what_the_central_store_does_not_have_yet() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "prune");
    let host = writer(cluster, &dbname, "p");
    host.records(1, 5);
    let count = |host: &Host| {
        let out = host.run(&["search", "--all", "--format", "cmd"]);
        text(&out.stdout).lines().count()
    };
    let out = host.run(&["prune", "--older-than", "1d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(count(&host), 5, "nothing shipped: nothing pruned");

    assert!(host.run(&["sync"]).status.success());
    // One more since: the prune keeps the last row shipped (the server's
    // anchor: the next sync goes on from it) and the newest.
    host.records(6, 1);
    let out = host.run(&["prune", "--older-than", "1d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        count(&host),
        2,
        "shipped: all but the anchor and the newest pruned"
    );
    // Kept as the newest is: not "held back", the store has taken it.
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(!said.contains("kept"), "{said}");
    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host.run(&["prune", "--older-than", "1d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(count(&host), 1, "all shipped: all but the newest pruned");
    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host.run(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// A record redacted on its host after it was shipped: the redaction
/// ships too (the writer only inserts it), the server applies it to the
/// shipped row (so every reader, and the auditor's own SQL, sees the
/// redacted text only) and `verify --central` stays intact. A "redaction"
/// that does more than hide parts of the text is refused.
#[test]
fn a_redaction_after_shipping_hides_the_old_text_from_readers() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "redact");
    let host = writer(cluster, &dbname, "r");
    host.records(1, 3);
    assert!(host.run(&["sync"]).status.success());
    let secret = format!("echo {} command 2", host.id);
    let out = host.run(&[
        "redact",
        "2",
        "--pattern",
        "command 2",
        "--reason",
        "a token",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 redaction"),
        "{}",
        text(&out.stdout)
    );

    let auditor = auditor(cluster, &dbname);
    let all = auditor.run(&["search", "--central", "--all", "--format", "cmd"]);
    let all = text(&all.stdout);
    assert!(
        all.contains(&format!("echo {} [REDACTED]", host.id)),
        "{all}"
    );
    assert!(!all.contains(&secret), "{all}");
    let out = auditor.run(&["search", "--central", "command 2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let out = auditor.run(&["verify", "--central"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // Not with SQL of the auditor's own either, nor the owner's.
    let as_auditor = |sql: &str| -> i64 {
        let mut client = cluster.connect_as(&format!("{dbname}_auditor"), "pw-auditor", &dbname);
        client.query_one(sql, &[&secret]).unwrap().get(0)
    };
    let sql = "SELECT count(*) FROM tmux_audit.commands WHERE command = $1";
    assert_eq!(as_auditor(sql), 0);
    let owner: i64 = cluster
        .admin(&dbname)
        .query_one(sql, &[&secret])
        .unwrap()
        .get(0);
    assert_eq!(owner, 0);
    // Shipped once: the next sync sends no redaction again.
    let out = host.run(&["sync"]);
    assert!(
        !text(&out.stdout).contains("redaction"),
        "{}",
        text(&out.stdout)
    );
    // With the writer's credentials, a "redaction" that rewrites a row.
    let mut as_writer = cluster.connect_as(&format!("{dbname}_r"), "pw-writer", &dbname);
    let database_id: String = rusqlite::Connection::open(&host.sb.db)
        .unwrap()
        .query_row("SELECT database_id FROM central_identity", [], |r| r.get(0))
        .unwrap();
    let host_id: String = cluster
        .admin(&dbname)
        .query_one(
            "SELECT host_id FROM tmux_audit.writers WHERE role = $1",
            &[&format!("{dbname}_r")],
        )
        .unwrap()
        .get(0);
    for forged in ["ls", "", "echo [REDACTED] command 3"] {
        let err = as_writer
            .execute(
                "INSERT INTO tmux_audit.redactions (host_id, database_id, id, trace_id, command,
                    content_hash, redacted_at_us, redacted_by, reason)
                 VALUES ($1, $2, 1, 999, $3, '\\x00', 0, 'eve', 'cover-up')",
                &[&host_id, &database_id, &forged],
            )
            .expect_err(forged);
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("23514"),
            "{forged:?}: {err}"
        );
    }
    // Nor one whose text only hides but whose bytes (which readers show
    // first) say something else.
    let err = as_writer
        .execute(
            "INSERT INTO tmux_audit.redactions (host_id, database_id, id, trace_id, command,
                command_raw, content_hash, redacted_at_us, redacted_by, reason)
             VALUES ($1, $2, 1, 999, '[REDACTED]', 'ls -la'::bytea, '\\x00', 0, 'eve', 'cover-up')",
            &[&host_id, &database_id],
        )
        .expect_err("forged bytes");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("23514"),
        "{err}"
    );
    // The bytes' rule, as the text's: pieces of the old bytes, in order,
    // the first at the start and the last at the end.
    let mut admin = cluster.admin(&dbname);
    for (old, new, hides) in [
        (&b"ab\xffcd"[..], &b"ab[REDACTED]cd"[..], true),
        (b"ab\xffcd", b"[REDACTED]", true),
        (b"ab\xffcd", b"ab\xffcd", true),
        (b"ab\xffcd", b"[REDACTED]\xff[REDACTED]", true),
        (b"ab\xffcd", b"xx[REDACTED]", false),
        (b"ab\xffcd", b"ab[REDACTED]cd[REDACTED]cd", false),
        (b"ab\xffcd", b"ab\xffcdX", false),
    ] {
        let found: bool = admin
            .query_one("SELECT tmux_audit.only_hides_bytes($1, $2)", &[&old, &new])
            .unwrap()
            .get(0);
        assert_eq!(found, hides, "{old:?} {new:?}");
    }
    let found: bool = admin
        .query_one(
            "SELECT tmux_audit.only_hides_bytes(NULL, '[REDACTED]'::bytea)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!found, "no bytes shipped: none can be shown");
}

/// Rows of a month no partition was made for (long past, far ahead)
/// still ship: the default partition takes them, `verify --central`
/// walks them, and `central init` run again (adding this year's months)
/// leaves them where they are.
#[test]
fn records_of_months_without_a_partition_still_ship() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "months");
    let host = writer(cluster, &dbname, "t");
    // 1990-01-01 and 2300-01-01, around a record of now's months.
    let mut db = Database::open(&host.sb.db).unwrap();
    for (seq, at_us) in [
        (1, 631_152_000_000_000_i64),
        (2, chrono::Utc::now().timestamp_micros()),
        (3, 10_413_792_000_000_000),
    ] {
        let entry = Entry::Command(CommandRecord {
            command: format!("echo month {seq}"),
            started_at_us: at_us,
            cwd: "/srv".into(),
            user: "ops".into(),
            host: "web".into(),
            shell: "bash".into(),
            shell_session: "months".into(),
            seq,
            ..CommandRecord::default()
        });
        db.insert_all([(&entry, at_us)]).unwrap();
    }
    drop(db);
    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("shipped 3 commands"),
        "{}",
        text(&out.stdout)
    );
    let mut admin = cluster.admin(&dbname);
    let in_default: i64 = admin
        .query_one("SELECT count(*) FROM tmux_audit.commands_default", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        in_default, 2,
        "1990 and 2300 have no partition of their own"
    );
    let sb = Sandbox::new();
    let again = sb
        .cmd()
        .args(["central", "init", "--url", &cluster.admin_url(&dbname)])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let auditor = auditor(cluster, &dbname);
    let out = auditor.run(&["verify", "--central"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = auditor.run(&["search", "--central", "--all", "--format", "cmd"]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        3,
        "{}",
        text(&out.stdout)
    );
}

/// `search --central PATTERN` reads the newest rows first, as a local
/// search does (PostgreSQL, under row-level security, guesses every
/// pattern rare and would sort all of a common word's matches): the newest
/// matches when they are among those rows, the older ones past them when
/// not, in the same order (two hosts' rows sharing each time), with
/// `--unique`, filters, and a user role's rows only (more of hers than
/// the window holds, too).
#[test]
fn a_central_search_finds_the_newest_matches_among_or_past_the_newest_rows() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    const ROWS: i64 = 50_000;
    let dbname = initialised(cluster, "window");
    let alice = format!("{dbname}_alice");
    let bob = format!("{dbname}_bob");
    // Made on the server (a search does not look at the chains): row g
    // of host g % 2 (alice's, bob's) at second g / 2, so both hosts have a
    // row at each time. Both of every fifth time are `git status g`
    // (matches that tie on time); `make deploy` near
    // the oldest and twice among the newest; `make test` and `terraform
    // frobnicate` near the oldest only, `terraform apply` the newest.
    let command = |g: i64| -> String {
        match g {
            0 => "terraform frobnicate".into(),
            1 | 49_990 | 49_994 => "make deploy".into(),
            3 => "make test".into(),
            49_999 => "terraform apply".into(),
            g if (g / 2) % 5 == 0 => format!("git status {g}"),
            g => format!("ls {g}"),
        }
    };
    cluster
        .admin(&dbname)
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             INSERT INTO tmux_audit.commands (host_id, database_id, id, recorded_at_us, command,
                 exit_status, started_at_us, duration_us, cwd, \"user\", uid, host, shell,
                 shell_session, seq)
             SELECT 'h/' || (g % 2), 'db', g + 1, 1793491200000000 + (g / 2) * 1000000,
                    CASE WHEN g = 0 THEN 'terraform frobnicate'
                         WHEN g IN (1, 49990, 49994) THEN 'make deploy'
                         WHEN g = 3 THEN 'make test'
                         WHEN g = {last} THEN 'terraform apply'
                         WHEN (g / 2) % 5 = 0 THEN 'git status ' || g ELSE 'ls ' || g END,
                    0, 1793491200000000 + (g / 2) * 1000000, 1000, '/srv',
                    (ARRAY['{alice}', '{bob}'])[g % 2 + 1], 1000, 'web', 'bash', 's', g + 1
             FROM generate_series(0::bigint, {last}) g;
             ANALYZE tmux_audit.commands;",
            last = ROWS - 1
        ))
        .unwrap();
    // What a search shows: the newest `n` of the rows `keep` keeps (the
    // newest of each text with `unique`), by time, then host, then id,
    // shown oldest first.
    let expected = |keep: &dyn Fn(i64) -> bool, n: usize, unique: bool| -> Vec<String> {
        let mut rows: Vec<i64> = (0..ROWS).filter(|g| keep(*g)).collect();
        rows.sort_by_key(|g| (std::cmp::Reverse(g / 2), g % 2, std::cmp::Reverse(*g)));
        let mut seen = std::collections::HashSet::new();
        let mut shown: Vec<String> = rows
            .into_iter()
            .map(command)
            .filter(|c| !unique || seen.insert(c.clone()))
            .take(n)
            .collect();
        shown.reverse();
        shown
    };
    let auditor = auditor(cluster, &dbname);
    let found = |host: &Host, args: &[&str]| -> Vec<String> {
        let out = host.run(&[&["search", "--central", "--format", "cmd"], args].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout).lines().map(str::to_string).collect()
    };
    let git = |g: i64| command(g).starts_with("git status");
    let of = |user: i64| move |g: i64| g % 2 == user;
    assert_eq!(found(&auditor, &["git status"]), expected(&git, 20, false));
    assert_eq!(
        found(&auditor, &["--unique", "--limit", "3", "status"]),
        expected(&git, 3, true)
    );
    // One in the newest rows, the other only past them.
    let terraform = |g: i64| command(g).starts_with("terraform");
    assert_eq!(
        found(&auditor, &["terraform"]),
        expected(&terraform, 20, false)
    );
    assert_eq!(found(&auditor, &["terraform"]).len(), 2);
    assert_eq!(found(&auditor, &["frobnicate"]), ["terraform frobnicate"]);
    // A text run in and past the newest rows is shown once, its newest
    // run; one only past them still comes.
    let make = |g: i64| command(g).starts_with("make");
    assert_eq!(
        found(&auditor, &["--unique", "make"]),
        expected(&make, 20, true)
    );
    assert_eq!(
        found(&auditor, &["--unique", "make"]),
        ["make test", "make deploy"]
    );
    assert_eq!(found(&auditor, &["make"]).len(), 4);
    // Filters, two parameters before the pattern's, kept in the newest rows.
    let bobs_git = |g: i64| git(g) && of(1)(g);
    assert_eq!(
        found(
            &auditor,
            &["--user", &bob, "--shell", "bash", "--limit", "3", "git"]
        ),
        expected(&bobs_git, 3, false)
    );
    // A user role: her own rows (25,000, more than the newest rows read first).
    let alice = user(cluster, &dbname, &alice, "alice");
    let alices_git = |g: i64| git(g) && of(0)(g);
    assert_eq!(
        found(&alice, &["--limit", "5", "git status"]),
        expected(&alices_git, 5, false)
    );
    assert_eq!(found(&alice, &["terraform"]), ["terraform frobnicate"]);
    assert_eq!(found(&alice, &["--unique", "make"]), ["make deploy"]);
}

/// Three `central init` at once on a new database: each succeeds, one
/// creates the schema and the others find it made, and each migration
/// ran once (an init read the version before it held the lock, so one
/// that waited ran the migrations again and failed).
#[test]
fn central_inits_at_once_each_succeed_and_migrate_once() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    // Against other tests' inits (the roles are the cluster's); these
    // three share one database, which their own lock is for.
    let _one_at_a_time = pg::INIT.lock().unwrap_or_else(|e| e.into_inner());
    for round in 0..2 {
        let dbname = cluster.database(&format!("inits{round}"));
        let url = cluster.admin_url(&dbname);
        let outs: Vec<Output> = std::thread::scope(|scope| {
            let inits: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let sb = Sandbox::new();
                        sb.cmd()
                            .args(["central", "init", "--url", &url])
                            .output()
                            .unwrap()
                    })
                })
                .collect();
            inits.into_iter().map(|i| i.join().unwrap()).collect()
        });
        let said: Vec<String> = outs
            .iter()
            .map(|o| text(&o.stdout) + &text(&o.stderr))
            .collect();
        assert!(outs.iter().all(|o| o.status.success()), "{said:#?}");
        let created = said
            .iter()
            .filter(|s| s.starts_with("created the central schema"))
            .count();
        assert_eq!(created, 1, "{said:#?}");
        let versions: Vec<i32> = cluster
            .admin(&dbname)
            .query("SELECT version FROM tmux_audit.migrations ORDER BY 1", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let all: Vec<i32> = (1..=tmux_audit::central::schema::VERSION).collect();
        assert_eq!(versions, all);
    }
}

/// `--cwd-under` on the central store takes what lies under a directory
/// in byte order, as locally, whatever the database's collation. Under
/// ICU's (case a lesser difference than letters, `/` before digits),
/// `/home/A/x` sorts between `/home/a/` and `/home/a0`, and a range in the
/// collation's order took it.
#[test]
fn central_cwd_under_is_byte_order_whatever_the_collation() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let icu = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'";
    let dbname = match cluster.database_with("icu", icu) {
        Ok(dbname) => initialise(cluster, dbname),
        // A server built without ICU, or a system without C.UTF-8 (Debian's
        // PostgreSQL, which `.ci/run` installs, has both).
        Err(err) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot make an ICU database: {err}"
            );
            eprintln!("skipped: cannot make an ICU database: {err}");
            return;
        }
    };
    let host = writer(cluster, &dbname, "c");
    let cwds = ["/home/a", "/home/a/x", "/home/A/x", "/home/a-b", "/home/ab"];
    host.store(cwds.iter().enumerate().map(|(i, cwd)| CommandRecord {
        command: format!("echo in {cwd}"),
        started_at_us: 1_790_000_000_000_000 + i as i64 * 1_000_000,
        cwd: cwd.to_string(),
        user: "ops".into(),
        host: "web".into(),
        shell: "bash".into(),
        shell_session: format!("{}-s", host.id),
        seq: i as i64 + 1,
        ..CommandRecord::default()
    }));
    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let auditor = auditor(cluster, &dbname);
    let out = auditor.run(&[
        "search",
        "--central",
        "--all",
        "--cwd-under",
        "/home/a",
        "--format",
        "cmd",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut found: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    found.sort();
    assert_eq!(found, ["echo in /home/a", "echo in /home/a/x"]);
}

/// A central database made by the first schema (version 1) upgrades in
/// place: `central init` runs only the migrations it lacks, the rows
/// already there are counted into the totals per host, and shipping, a
/// redaction and `verify --central` work on it.
#[test]
fn a_central_schema_of_version_1_upgrades_in_place() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = cluster.database("upgrade");
    // Version 1 exactly as a binary of that version ran it: the
    // migrations up to the second, then the transaction's end.
    let all = tmux_audit::central::schema::sql(0);
    let v1 = &all[..all.find("\n-- Migration 2\n").unwrap()];
    // Roles are the cluster's: one init at a time (as `initialised`).
    let one_at_a_time = pg::INIT.lock().unwrap_or_else(|e| e.into_inner());
    cluster
        .admin(&dbname)
        .batch_execute(&format!("{v1}\nCOMMIT;"))
        .unwrap();
    // Rows of that version (loaded as a restore would, triggers off).
    cluster
        .admin(&dbname)
        .batch_execute(
            "SET session_replication_role = replica;
             INSERT INTO tmux_audit.commands (host_id, database_id, id, recorded_at_us, command,
                 exit_status, started_at_us, duration_us, cwd, \"user\", uid, host, shell,
                 shell_session, seq)
             SELECT 'old/id', 'db', g, g, 'make ' || (g % 2), g % 3, 1790000000000000 + g, g,
                    '/src', 'ops',
                    1000, 'old1', 'bash', 's', g
             FROM generate_series(1, 5) g;",
        )
        .unwrap();
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["central", "init", "--url", &cluster.admin_url(&dbname)])
        .output()
        .unwrap();
    drop(one_at_a_time);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!(
            "upgraded the central schema from version 1 to {}",
            tmux_audit::central::schema::VERSION
        )),
        "{}",
        text(&out.stdout)
    );
    let host = writer(cluster, &dbname, "u");
    host.records(1, 3);
    assert!(host.run(&["redact", "2"]).status.success());
    let out = host.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let auditor = auditor(cluster, &dbname);
    let out = auditor.run(&["verify", "--central"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let kept = auditor.run(&["report", "--central", "--by", "host", "--format", "csv"]);
    let counted = auditor.run(&[
        "report",
        "--central",
        "--by",
        "host",
        "--since",
        "2000-01-01",
        "--format",
        "csv",
    ]);
    assert_eq!(text(&kept.stdout), text(&counted.stdout));
    assert!(
        text(&kept.stdout).contains("\nold1,,,,,,,,ops,old1,5,4,80.0,"),
        "{}",
        text(&kept.stdout)
    );
}

/// The team view (`report --central --by host`, unfiltered) comes from
/// running totals per host that the server keeps as rows are shipped,
/// redacted, changed and deleted: always the report counted from the
/// rows (the same report with a filter that keeps every row), and each
/// host's row is its own local report's. Ties for the most used command
/// and directory go to the first in byte order, also among values whose
/// first 200 characters are the same. A user role, which reads its own
/// rows only, gets the report of those.
#[test]
fn the_team_view_is_kept_per_host_and_is_the_report_counted_from_the_rows() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dbname = initialised(cluster, "teamview");
    let carol = format!("{dbname}_carol");
    let long = "x".repeat(250);
    // Inserted before the one that wins the tie, so that the index's own
    // order among equal prefixes would not give the winner.
    let (long_b, long_a) = (format!("{long} b"), format!("{long} a"));
    let web = writer(cluster, &dbname, "web");
    let db = writer(cluster, &dbname, "db");
    let twin = writer(cluster, &dbname, "twin");
    let rows_of = |host: &Host, name: &str, commands: &[(&str, &str, usize)]| {
        let mut seq = 0;
        let mut records = Vec::new();
        for (command, cwd, times) in commands {
            for _ in 0..*times {
                seq += 1;
                records.push(CommandRecord {
                    command: command.to_string(),
                    started_at_us: 1_790_000_000_000_000 + seq * 7_000_000,
                    duration_us: (seq % 4 != 0).then_some(seq * 1_000),
                    exit_status: [Some(0), Some(1), None, Some(0), Some(-1)][seq as usize % 5],
                    cwd: cwd.to_string(),
                    user: [&carol, "bob", "alice"][seq as usize % 3].to_string(),
                    uid: 1000,
                    host: name.into(),
                    shell: "bash".into(),
                    shell_session: format!("{}-s", host.id),
                    seq,
                    ..CommandRecord::default()
                });
            }
        }
        host.store(records);
    };
    // A command stored after the first sync: bob's, in a session of its own.
    let later = |host: &Host, name: &str, seq: i64, command: &str, cwd: &str| CommandRecord {
        command: command.into(),
        started_at_us: 1_790_000_100_000_000 + seq,
        cwd: cwd.into(),
        user: "bob".into(),
        uid: 1000,
        host: name.into(),
        shell: "bash".into(),
        shell_session: format!("{}-later", host.id),
        seq,
        ..CommandRecord::default()
    };
    rows_of(
        &web,
        "web1",
        &[
            (&long_b, &format!("/{long}/b"), 5),
            (&long_a, &format!("/{long}/a"), 5),
            ("ls", "/srv/alpha", 4),
            ("make deploy", "/srv/beta", 1),
            ("make deploy", "/srv/élan", 1),
            ("make deploy", "/srv/Zeta", 1),
        ],
    );
    rows_of(
        &db,
        "db1",
        &[
            ("élan", "/var/élan", 4),
            ("alpha", "/var/alpha", 4),
            ("Zeta", "/var/Zeta", 4),
            ("psql -c 'select 1' hunter2", "/var/x", 1),
        ],
    );
    for host in [&web, &db] {
        let out = host.run(&["sync"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let auditor = auditor(cluster, &dbname);
    let team_view = |reader: &Host| -> Vec<serde_json::Value> {
        let kept = reader.run(&["report", "--central", "--by", "host", "--json"]);
        let counted = reader.run(&[
            "report",
            "--central",
            "--by",
            "host",
            "--since",
            "2000-01-01",
            "--json",
        ]);
        assert_eq!(text(&kept.stderr), text(&counted.stderr));
        assert_eq!(text(&kept.stdout), text(&counted.stdout));
        if kept.stdout.is_empty() {
            return Vec::new();
        }
        serde_json::from_slice(&kept.stdout).unwrap()
    };
    let local = |host: &Host| -> serde_json::Value {
        let out = host.run(&["report", "--by", "host", "--json"]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rows.len(), 1);
        rows[0].clone()
    };
    let rows = team_view(&auditor);
    assert_eq!(rows, [local(&web), local(&db)], "kept as each host counts");
    assert_eq!(rows[0]["top_command"], long_a.as_str());
    assert_eq!(rows[0]["top_cwd"], format!("/{long}/a"));
    assert_eq!(rows[1]["top_command"], "Zeta");
    assert_eq!(rows[1]["top_cwd"], "/var/Zeta");
    // What the auditor read was the totals kept; counted again, they are
    // right again (what to run after dropping a partition).
    let mut admin = cluster.admin(&dbname);
    admin
        .batch_execute("UPDATE tmux_audit.host_totals SET commands = commands + 100 WHERE host = 'db1' AND \"user\" = 'bob'")
        .unwrap();
    let out = auditor.run(&["report", "--central", "--by", "host", "--format", "csv"]);
    assert!(text(&out.stdout).contains(",113,"), "{}", text(&out.stdout));
    admin
        .batch_execute("SELECT tmux_audit.count_hosts(NULL)")
        .unwrap();
    assert_eq!(team_view(&auditor), rows);

    // A second host of the same name: one row, as before.
    rows_of(&twin, "web1", &[("ls", "/srv/alpha", 3)]);
    assert!(twin.run(&["sync"]).status.success());
    let rows = team_view(&auditor);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["commands"], 20);
    assert_eq!(rows[0]["top_command"], "ls", "4 + 3 runs of ls");

    // Redacted on its host: the old text is counted nowhere.
    let secret_id = db.sb.rows().len().to_string();
    let out = db.run(&["redact", &secret_id, "--pattern", "hunter2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let zeta_id = db
        .sb
        .rows()
        .iter()
        .find(|r| r.command == "Zeta")
        .map(|r| r.id.to_string())
        .unwrap();
    let out = db.run(&["redact", &zeta_id, "--pattern", "Zeta"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(db.run(&["sync"]).status.success());
    let rows = team_view(&auditor);
    assert_eq!(rows[1], local(&db));
    assert_eq!(rows[1]["top_command"], "alpha", "Zeta ran 3 times since");
    let leaked: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM tmux_audit.host_values WHERE value LIKE '%hunter2%')
                  + (SELECT count(*) FROM tmux_audit.host_tops WHERE value LIKE '%hunter2%')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0, "a redacted text stays in no count");

    // Shipped later: a command that ties the most used one and sorts
    // first takes its place, and then one that passes it.
    for (seq, command, top) in [(1, "Zeta", "Zeta"), (2, "élan", "élan")] {
        db.store([later(&db, "db1", seq, command, "/var/q")]);
        assert!(db.run(&["sync"]).status.success());
        let rows = team_view(&auditor);
        assert_eq!(rows[1], local(&db));
        assert_eq!(rows[1]["top_command"], top);
    }

    // An administrator's changes: directories moved to one that becomes
    // the most used, a failure, a time, a host's name, rows deleted, and
    // everything truncated.
    for change in [
        "UPDATE tmux_audit.commands SET cwd = '/var/q' WHERE host = 'db1' AND cwd IN ('/var/x', '/var/alpha')",
        "UPDATE tmux_audit.commands SET exit_status = 7 WHERE host = 'db1' AND exit_status = 0",
        "UPDATE tmux_audit.commands SET duration_us = 99000000 WHERE host = 'db1' AND command = 'alpha'",
        "UPDATE tmux_audit.commands SET started_at_us = 1700000000000000 WHERE command = 'ls'",
        // Into a month's own partition (from the default one).
        "UPDATE tmux_audit.commands SET started_at_us = 1796083200000000 + id WHERE host = 'db1' AND command = 'Zeta'",
        "UPDATE tmux_audit.commands SET host = 'web2', cwd = '/srv/new' WHERE command = 'make deploy'",
        "UPDATE tmux_audit.commands SET \"user\" = 'mallory' WHERE host = 'db1' AND command = 'alpha'",
        // The key itself: no old row pairs with a new one.
        "UPDATE tmux_audit.commands SET host_id = host_id || '-moved', database_id = 'moved' WHERE host = 'db1' AND cwd = '/var/q'",
        "DELETE FROM tmux_audit.commands WHERE command = 'élan' OR cwd = '/srv/Zeta'",
    ] {
        admin.batch_execute(change).unwrap();
        let rows = team_view(&auditor);
        assert!(rows.len() >= 2, "{change}");
    }
    // A user role reads its own rows: its report counts those.
    let carols = user(cluster, &dbname, &carol, "carol");
    let rows = team_view(&carols);
    let commands: i64 = admin
        .query_one(
            "SELECT count(*) FROM tmux_audit.commands WHERE \"user\" = $1",
            &[&carol],
        )
        .unwrap()
        .get(0);
    let counted: i64 = rows.iter().map(|r| r["commands"].as_i64().unwrap()).sum();
    assert_eq!(counted, commands);
    assert!(
        rows.iter().all(|r| r["users"] == carol.as_str()),
        "{rows:?}"
    );
    admin.batch_execute("TRUNCATE tmux_audit.commands").unwrap();
    assert_eq!(team_view(&auditor), Vec::<serde_json::Value>::new());
    // Counted from nothing again after it.
    twin.store([later(&twin, "web1", 1, "uptime", "/")]);
    assert!(twin.run(&["sync"]).status.success());
    let rows = team_view(&auditor);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["top_command"], "uptime");

    // Durations whose sum is past a bigint: the host still ships, and
    // the team view holds the sum at its largest, as the counted one.
    twin.store((2..4).map(|seq| CommandRecord {
        duration_us: Some(i64::MAX / 2 + 1),
        ..later(&twin, "web1", seq, "sleep forever", "/")
    }));
    let out = twin.run(&["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kept = auditor.run(&["report", "--central", "--by", "host", "--json"]);
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    team_view(&auditor);

    // A writer's transaction that ships rows naming another host holds
    // no lock that host's shipping waits for: the totals are its own.
    let web_id: String = admin
        .query_one(
            "SELECT host_id FROM tmux_audit.writers WHERE role = $1",
            &[&format!("{dbname}_web")],
        )
        .unwrap()
        .get(0);
    let mut as_web = cluster.connect_as(&format!("{dbname}_web"), "pw-writer", &dbname);
    let mut forging = as_web.transaction().unwrap();
    forging
        .execute(
            "INSERT INTO tmux_audit.commands (host_id, database_id, id, recorded_at_us, command,
                 started_at_us, cwd, \"user\", uid, host, shell, shell_session, seq, prev_hash, hash)
             VALUES ($1, 'forged', 1, 0, 'ls', 0, '/', 'bob', 1000, 'db1', 'bash', 's', 1,
                     '\\x00', '\\x01')",
            &[&web_id],
        )
        .unwrap();
    db.store([later(&db, "db1", 3, "while the other waits", "/")]);
    let mut sync = db.cmd().arg("sync").output_async();
    wait_until("db's sync, beside web's open transaction", || {
        sync.try_wait().unwrap().is_some()
    });
    let out = sync.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    forging.rollback().unwrap();
}
