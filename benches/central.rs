//! The central store, whole processes against a throwaway PostgreSQL
//! (tests/it/pg.rs: initdb as `nobody`, loopback, fsync off), in three
//! parts (`PART=ship|load|query`, all by default):
//!
//! - ship: `sync` of ROWS (100,000) commands of one host (common::fill,
//!   real chains), RUNS (3) times into a fresh database: records/s.
//! - load: HOSTS (20) hosts × PER_HOST (5,000) records shipping at once,
//!   the server stopped and started again mid-way, then every row once,
//!   in chain order per host, and `verify --central` intact.
//! - query: QUERY_ROWS (10,000,000) commands over QUERY_HOSTS (100) hosts
//!   generated on the server (generate_series, triggers off: the chains
//!   do not matter to a search), then `search --central` (a rare word,
//!   a common one, filters without a pattern, `--unique`) and `report
//!   --central --by host`, QUERY_RUNS (7) each: the median. The rows go
//!   in with the triggers off, as a restore would, so the totals per host
//!   are counted after.
//!
//! `cargo bench --bench central`; `BIN=…` to measure another binary.

#[path = "../tests/it/pg.rs"]
mod pg;

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{env_or, measure, ms};
use pg::Cluster;

fn main() {
    let Some(cluster) = Cluster::start_new() else {
        return;
    };
    let part = std::env::var("PART").unwrap_or_default();
    if part.is_empty() || part == "ship" {
        ship(&cluster);
    }
    if part.is_empty() || part == "load" {
        load(&cluster);
    }
    if part.is_empty() || part == "query" {
        query(&cluster);
    }
}

fn bin() -> std::ffi::OsString {
    std::env::var_os("BIN").unwrap_or(env!("CARGO_BIN_EXE_tmux-audit").into())
}

/// A host's environment: its own directories, database, host id and
/// credentials.
struct Host {
    dir: tempfile::TempDir,
    id: String,
    url: String,
}

impl Host {
    fn new(cluster: &Cluster, dbname: &str, role: &str, id: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        pg::pgpass(dir.path(), &[(role, "pw")], cluster.port);
        Host {
            id: id.to_string(),
            url: cluster.url(role, dbname),
            dir,
        }
    }

    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("history.db")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let root = self.dir.path();
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", root)
            .env("XDG_STATE_HOME", root.join("state"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("TMUX_AUDIT_DB", self.db())
            .env("TMUX_AUDIT_HOST_ID", &self.id)
            .env("TMUX_AUDIT_CENTRAL_URL", &self.url)
            .env("PGPASSFILE", root.join("pgpass"))
            .args(args);
        cmd
    }
}

/// A database with the schema, and a role of `group` called `role`.
fn initialised(cluster: &Cluster, prefix: &str) -> String {
    let dbname = cluster.database(prefix);
    let out = Command::new(bin())
        .args(["central", "init", "--url", &cluster.admin_url(&dbname)])
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dbname
}

fn role(cluster: &Cluster, dbname: &str, name: &str, group: &str) -> String {
    let role = format!("{dbname}_{name}");
    cluster.role(&role, "pw", group);
    role
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ship(cluster: &Cluster) {
    let rows = env_or("ROWS", 100_000);
    let runs = env_or("RUNS", 3);
    let mut times = Vec::new();
    for run in 0..runs {
        let dbname = initialised(cluster, "bench_ship");
        let writer = role(cluster, &dbname, "w", "tmux_audit_writer");
        let host = Host::new(cluster, &dbname, &writer, &format!("bench/{run}"));
        common::fill(&host.db(), rows);
        let took = measure(host.cmd(&["sync"]));
        assert_eq!(took.code, Some(0), "sync failed");
        println!(
            "ship: {rows} commands in {} = {:.0} records/s (client CPU {}, peak RSS {} KiB)",
            ms(took.took),
            rows as f64 / took.took.as_secs_f64(),
            ms(took.cpu),
            took.peak_rss_kib
        );
        times.push(took.took);
    }
    let m = median(times);
    println!(
        "ship: median of {runs}: {} = {:.0} records/s per host",
        ms(m),
        rows as f64 / m.as_secs_f64()
    );
}

fn load(cluster: &Cluster) {
    let hosts = env_or("HOSTS", 20);
    let per_host = env_or("PER_HOST", 5_000);
    // A cluster of its own: this part stops the server.
    let own = Cluster::start_new().unwrap();
    let dbname = initialised(&own, "bench_load");
    let _ = cluster;
    let all: Vec<Host> = (0..hosts)
        .map(|i| {
            let writer = role(&own, &dbname, &format!("h{i}"), "tmux_audit_writer");
            let host = Host::new(&own, &dbname, &writer, &format!("load{i}/{i}"));
            common::fill(&host.db(), per_host);
            host
        })
        .collect();
    let start = Instant::now();
    let mut children: Vec<_> = all
        .iter()
        .map(|h| h.cmd(&["sync"]).output_child())
        .collect();
    // Mid-way: once some rows are there, the server goes and comes back.
    let mut admin = own.admin(&dbname);
    loop {
        let n: i64 = admin
            .query_one("SELECT count(*) FROM tmux_audit.commands", &[])
            .unwrap()
            .get(0);
        if n as usize >= hosts * per_host / 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(admin);
    own.stop();
    own.start();
    let mut failed = 0;
    for child in &mut children {
        if !child.wait().unwrap().success() {
            failed += 1;
        }
    }
    // The syncs the restart cut short run again, as the next timer would.
    let again: Vec<_> = all
        .iter()
        .map(|h| h.cmd(&["sync"]).output_child())
        .collect();
    for mut child in again {
        assert!(child.wait().unwrap().success(), "a second sync failed");
    }
    let took = start.elapsed();
    let mut admin = own.admin(&dbname);
    let row = admin
        .query_one(
            "SELECT count(*), count(DISTINCT (host_id, id)),
                    count(*) FILTER (WHERE id <> seq_no) FROM (
                SELECT host_id, id, row_number() OVER (PARTITION BY host_id ORDER BY shipped_at, id)
                    AS seq_no FROM tmux_audit.commands) x",
            &[],
        )
        .unwrap();
    let (total, distinct, out_of_order): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(out_of_order, 0, "in chain order per host");
    assert_eq!(
        total as usize,
        hosts * per_host,
        "every record on the server"
    );
    assert_eq!(distinct, total, "each once");
    let auditor = role(&own, &dbname, "auditor", "tmux_audit_auditor");
    let reader = Host::new(&own, &dbname, &auditor, "auditor/0");
    let verify = reader.cmd(&["verify", "--central"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "verify --central");
    println!(
        "load: {hosts} hosts x {per_host} records, server restarted mid-way \
         ({failed} syncs cut short, run again): {} in {}; every record once, \
         verify --central intact",
        hosts * per_host,
        ms(took)
    );
}

trait Spawn {
    fn output_child(&mut self) -> std::process::Child;
}

impl Spawn for Command {
    fn output_child(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn query(cluster: &Cluster) {
    let rows = env_or("QUERY_ROWS", 10_000_000);
    let hosts = env_or("QUERY_HOSTS", 100);
    let runs = env_or("QUERY_RUNS", 7);
    let dbname = initialised(cluster, "bench_query");
    let mut admin = cluster.admin(&dbname);
    let start = Instant::now();
    // Server-side rows, one a second from 2026-11-01 across the hosts;
    // ten in a million run the rare command searched for.
    admin
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             INSERT INTO tmux_audit.commands (host_id, database_id, id, recorded_at_us, command,
                 exit_status, started_at_us, duration_us, cwd, \"user\", uid, host, shell,
                 shell_session, seq, tmux_socket, tmux_server_pid, tmux_pane)
             SELECT 'host' || (g % {hosts}) || '/id', 'db', g / {hosts} + 1,
                    1793491200000000 + g * 1000000,
                    CASE WHEN g % 100000 = 99999 THEN 'terraform destroy -target=module.frobnicator'
                         ELSE (ARRAY['ls -la', 'git status', 'cargo build --release',
                                     'kubectl get pods -n production -o wide',
                                     'vim src/main.rs'])[g % 5 + 1] || ' file-' || (g % 10007) END,
                    CASE WHEN g % 11 = 0 THEN 1 ELSE 0 END,
                    1793491200000000 + g * 1000000, g % 5000,
                    '/srv/app' || (g % 37), (ARRAY['alice', 'bob', 'carol', 'deploy'])[g % 4 + 1],
                    1000, 'host' || (g % {hosts}), 'bash', 'bash.' || (g / 200), g % 200 + 1,
                    '/tmp/tmux-1000/default', 4242, '%' || (g % 9)
             FROM generate_series(0::bigint, {rows} - 1) g;
             ANALYZE tmux_audit.commands;"
        ))
        .unwrap();
    println!(
        "query: {rows} rows over {hosts} hosts generated in {}",
        ms(start.elapsed())
    );
    // Loaded with the triggers off, as a restore would: the totals per
    // host (central schema 5) are counted once, as after a restore.
    let start = Instant::now();
    admin
        .batch_execute(
            "DO $$ BEGIN
                 IF to_regprocedure('tmux_audit.count_hosts(text[])') IS NOT NULL THEN
                     PERFORM tmux_audit.count_hosts(NULL);
                     ANALYZE tmux_audit.host_totals, tmux_audit.host_values;
                 END IF;
             END $$;",
        )
        .unwrap();
    println!("query: totals per host counted in {}", ms(start.elapsed()));
    let auditor = role(cluster, &dbname, "auditor", "tmux_audit_auditor");
    let reader = Host::new(cluster, &dbname, &auditor, "auditor/0");
    for (what, args) in [
        (
            "search --central frobnicator",
            vec!["search", "--central", "frobnicator", "--format", "jsonl"],
        ),
        (
            "search --central 'git status' (newest 20)",
            vec!["search", "--central", "git status", "--format", "jsonl"],
        ),
        (
            "search --central (newest, no pattern)",
            vec!["search", "--central", "--format", "jsonl"],
        ),
        (
            "search --central --host host7",
            vec![
                "search",
                "--central",
                "--host",
                "host7",
                "--format",
                "jsonl",
            ],
        ),
        (
            "search --central --user alice --failed",
            vec![
                "search",
                "--central",
                "--user",
                "alice",
                "--failed",
                "--format",
                "jsonl",
            ],
        ),
        (
            "search --central --unique git",
            vec![
                "search",
                "--central",
                "--unique",
                "git",
                "--format",
                "jsonl",
            ],
        ),
        (
            "search --central frobnicator --host host99",
            vec![
                "search",
                "--central",
                "frobnicator",
                "--host",
                "host99",
                "--format",
                "jsonl",
            ],
        ),
        (
            "report --central --by host",
            vec!["report", "--central", "--by", "host", "--format", "csv"],
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let run = measure(reader.cmd(&args));
            assert_eq!(run.code, Some(0), "{what}");
            times.push(run.took);
        }
        println!("query: {what}: median of {runs} {}", ms(median(times)));
    }
}
