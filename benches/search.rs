//! Whole-process cost of `tmux-audit search` and `report` at a million
//! records: the median of many runs of each query a person would type.
//!
//!     cargo bench --bench search          # 1,000,000 rows, 30 runs per query
//!     ROWS=100000 RUNS=10 cargo bench --bench search
//!     KEEP_DB=/tmp/big.db cargo bench --bench search   # and keep the database

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
    // The schema comes from the real recorder.
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
        .env("TMUX_AUDIT_DB", &db)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    common::fill(&db, rows);
    eprintln!("(filled {rows} rows in {:.1?})", started.elapsed());

    // Start times in the generated history run from 2023-11-14T22:13:20Z,
    // 2.5 s apart on average: --since keeps roughly the newest tenth.
    let since_secs = 1_700_000_000 + (rows as f64 * 2.5 * 0.9) as i64;
    let since = chrono::DateTime::from_timestamp(since_secs, 0)
        .unwrap()
        .to_rfc3339();
    let queries: &[(&str, &[&str])] = &[
        ("substring, default limit", &["search", "git"]),
        ("rare term", &["search", "frobnicator"]),
        (
            "--pane + --since",
            &["search", "--pane", "%7", "--since", &since],
        ),
        ("--regex", &["search", "--regex", r"kubectl .* -n prod\w+"]),
        (
            "--failed --cwd-under",
            &["search", "--failed", "--cwd-under", "/home/bob/src"],
        ),
        ("report --by pane", &["report", "--by", "pane"]),
        (
            "report --by command --top 20",
            &["report", "--by", "command", "--top", "20"],
        ),
    ];
    println!("tmux-audit at {rows} rows: {runs} runs per query, whole process, output to a pipe");
    println!(
        "{:<32} {:>10} {:>10} {:>10}",
        "query", "median", "min", "max"
    );
    for (label, args) in queries {
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let out = Command::new(env!("CARGO_BIN_EXE_tmux-audit"))
                    .args(*args)
                    .env("TMUX_AUDIT_DB", &db)
                    .env("TZ", "UTC")
                    .output()
                    .unwrap();
                let took = start.elapsed();
                // 0: found, 1: nothing found; both are answers.
                assert!(
                    out.status.code().is_some_and(|c| c < 2),
                    "{label}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                took
            })
            .collect();
        times.sort();
        println!(
            "{label:<32} {:>10} {:>10} {:>10}",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
}
