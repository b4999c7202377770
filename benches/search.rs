//! Whole-process cost of `tmux-audit search` and `report` at a million
//! records: the median of many runs of each query a person would type.
//!
//!     cargo bench --bench search          # 1,000,000 rows, 30 runs per query
//!     ROWS=100000 RUNS=10 cargo bench --bench search
//!     KEEP_DB=/tmp/big.db cargo bench --bench search   # and keep the database
//!     KEEP_DB=/tmp/big.db ONLY=report,unique RUNS=5 cargo bench --bench search
//!
//! A KEEP_DB that exists is measured as it is; BIN=path times that binary
//! (an older build, for a before and after). ONLY: the queries whose label
//! contains one of these words. Each line gives the median, the fastest and
//! the slowest run, and the highest peak RSS of any run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{env_or, ms};

fn main() {
    let rows: usize = env_or("ROWS", 1_000_000);
    let runs: usize = env_or("RUNS", 30);
    let dir = tempfile::tempdir().unwrap();
    // KEEP_DB=path: build the database there and leave it, for profiling.
    let db =
        std::env::var_os("KEEP_DB").map_or(dir.path().join("big.db"), std::path::PathBuf::from);
    // KEEP_DB naming a database that exists: measure it as it is.
    let reuse = std::env::var_os("KEEP_DB").is_some() && db.exists();
    if !reuse {
        build(&db, rows);
    }

    // BIN=path: time another build (an older one, for a before and after).
    let bin = std::env::var_os("BIN").unwrap_or(env!("CARGO_BIN_EXE_tmux-audit").into());

    // Start times in the generated history run from 2023-11-14T22:13:20Z,
    // 2.5 s apart on average: --since keeps roughly the newest tenth.
    let since_secs = 1_700_000_000 + (rows as f64 * 2.5 * 0.9) as i64;
    let since = chrono::DateTime::from_timestamp(since_secs, 0)
        .unwrap()
        .to_rfc3339();
    let queries: &[(&str, &[&str])] = &[
        ("substring, default limit", &["search", "git"]),
        ("rare term", &["search", "frobnicator"]),
        ("no pattern", &["search"]),
        ("-n 1000", &["search", "-n", "1000"]),
        ("--reverse", &["search", "git", "--reverse"]),
        ("--exact", &["search", "--exact", "git status"]),
        ("--prefix", &["search", "--prefix", "kubectl get"]),
        (
            "--pane + --since",
            &["search", "--pane", "%7", "--since", &since],
        ),
        ("--since", &["search", "--since", &since]),
        ("--until", &["search", "--until", &since]),
        ("--regex", &["search", "--regex", r"kubectl .* -n prod\w+"]),
        (
            "--failed --cwd-under",
            &["search", "--failed", "--cwd-under", "/home/bob/src"],
        ),
        ("--cwd", &["search", "--cwd", "/home/bob/src/project-3"]),
        ("--user", &["search", "--user", "carol"]),
        ("--host", &["search", "--host", "host-3"]),
        ("--shell", &["search", "--shell", "fish"]),
        ("--exit 1", &["search", "--exit", "1"]),
        ("--succeeded", &["search", "--succeeded"]),
        ("--min-duration", &["search", "--min-duration", "4s"]),
        (
            "--min-duration --host",
            &["search", "--min-duration", "4s", "--host", "host-3"],
        ),
        (
            "--min-duration --user",
            &["search", "--min-duration", "4s", "--user", "bob"],
        ),
        (
            "--min-duration 4.99s --user",
            &["search", "--min-duration", "4990ms", "--user", "bob"],
        ),
        (
            "--user --host (none)",
            &["search", "--user", "bob", "--host", "host-3"],
        ),
        ("--unique", &["search", "--unique"]),
        ("--unique git", &["search", "--unique", "git"]),
        ("--unique --user", &["search", "--unique", "--user", "bob"]),
        (
            "--all --unique cmd -0",
            &["search", "--all", "--unique", "--format", "cmd", "-0"],
        ),
        (
            "--all frobnicator jsonl",
            &["search", "--all", "frobnicator", "--format", "jsonl"],
        ),
        ("report --by pane", &["report", "--by", "pane"]),
        ("report --by session", &["report", "--by", "session"]),
        ("report --by window", &["report", "--by", "window"]),
        (
            "report --by client-user",
            &["report", "--by", "client-user"],
        ),
        ("report --by user", &["report", "--by", "user"]),
        ("report --by host", &["report", "--by", "host"]),
        ("report --by cwd", &["report", "--by", "cwd"]),
        ("report --by day", &["report", "--by", "day"]),
        (
            "report --by command --top 20",
            &["report", "--by", "command", "--top", "20"],
        ),
        (
            "report --by pane --since",
            &["report", "--by", "pane", "--since", &since],
        ),
        (
            "report --by day --since",
            &["report", "--by", "day", "--since", &since],
        ),
        (
            "report --by day --user",
            &["report", "--by", "day", "--user", "bob"],
        ),
        (
            "report --by command --host",
            &[
                "report", "--by", "command", "--host", "host-3", "--top", "20",
            ],
        ),
        (
            "report --by session --failed",
            &["report", "--by", "session", "--failed"],
        ),
        (
            "report --by user --min-duration",
            &["report", "--by", "user", "--min-duration", "4s"],
        ),
    ];
    // ONLY=substring,report: run only the queries whose label contains one of these.
    let only: Vec<String> = std::env::var("ONLY")
        .map(|o| o.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    println!("tmux-audit at {rows} rows: {runs} runs per query, whole process, output to a pipe");
    println!(
        "{:<32} {:>10} {:>10} {:>10} {:>10}",
        "query", "median", "min", "max", "peak RSS"
    );
    for (label, args) in queries {
        if !only.is_empty() && !only.iter().any(|o| label.contains(o.as_str())) {
            continue;
        }
        let mut peak = 0;
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let mut command = Command::new(&bin);
                command
                    .args(*args)
                    .env("TMUX_AUDIT_DB", &db)
                    .env("TZ", "UTC");
                let run = common::measure(command);
                // 0: found, 1: nothing found; both are answers.
                assert!(
                    run.code.is_some_and(|c| c < 2),
                    "{label}: exit {:?}",
                    run.code
                );
                peak = peak.max(run.peak_rss_kib);
                run.took
            })
            .collect();
        times.sort();
        println!(
            "{label:<32} {:>10} {:>10} {:>10} {:>7} MB",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1]),
            peak / 1024
        );
    }
}

/// A database of `rows` generated records, its schema from the real recorder.
fn build(db: &std::path::Path, rows: usize) {
    let status = Command::new(env!("CARGO_BIN_EXE_tmux-audit"))
        .args([
            "record",
            "--shell",
            "bash",
            "--session",
            "setup",
            "--seq",
            "1",
            "--text-unavailable",
        ])
        .env("TMUX_AUDIT_DB", db)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    common::fill(db, rows);
    eprintln!("(filled {rows} rows in {:.1?})", started.elapsed());
}
