//! Memory and time of streamed output: `export` and `search --all` over a
//! database of 10,000,000 records, each a whole process whose peak RSS is
//! its own (`wait4`). The goal: under 100 MB at ten million rows, in every
//! format, whatever the size of the output.
//!
//!     cargo bench --bench export                       # 10,000,000 rows, 3 runs each
//!     ROWS=1000000 RUNS=1 cargo bench --bench export
//!     KEEP_DB=/tmp/ten-million.db cargo bench --bench export   # keep (or reuse) it

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{env_or, ms};

fn main() {
    let rows: usize = env_or("ROWS", 10_000_000);
    let runs: usize = env_or("RUNS", 3);
    let dir = tempfile::tempdir().unwrap();
    let db =
        std::env::var_os("KEEP_DB").map_or(dir.path().join("big.db"), std::path::PathBuf::from);
    if !(std::env::var_os("KEEP_DB").is_some() && db.exists()) {
        let status = Command::new(env!("CARGO_BIN_EXE_tmux-audit"))
            .args([
                "record",
                "--shell",
                "bash",
                "--session",
                "setup",
                "--seq",
                "1",
            ])
            .arg("--text-unavailable")
            .env("TMUX_AUDIT_DB", &db)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        common::fill(&db, rows);
        eprintln!("(filled {rows} rows in {:.1?})", started.elapsed());
    }
    let outputs: &[(&str, &[&str])] = &[
        ("export (jsonl)", &["export"]),
        ("export --format csv", &["export", "--format", "csv"]),
        ("export --format json", &["export", "--format", "json"]),
        ("export --ecs", &["export", "--ecs"]),
        (
            "search --all --format tsv",
            &["search", "--all", "--format", "tsv"],
        ),
        (
            "search --all --unique cmd -0",
            &["search", "--all", "--unique", "--format", "cmd", "-0"],
        ),
    ];
    println!("streamed output at {rows} rows: {runs} runs each, whole process, output to a pipe");
    println!(
        "{:<30} {:>11} {:>11} {:>10} {:>10}",
        "output", "median", "min", "peak RSS", "written"
    );
    for (label, args) in outputs {
        let mut peak = 0;
        let mut bytes = 0;
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_tmux-audit"));
                command
                    .args(*args)
                    .env("TMUX_AUDIT_DB", &db)
                    .env("TZ", "UTC");
                let run = common::measure(command);
                assert_eq!(run.code, Some(0), "{label}");
                peak = peak.max(run.peak_rss_kib);
                bytes = run.bytes;
                run.took
            })
            .collect();
        times.sort();
        println!(
            "{label:<30} {:>11} {:>11} {:>7} MB {:>7} MB",
            ms(times[times.len() / 2]),
            ms(times[0]),
            peak / 1024,
            bytes / 1_000_000
        );
    }
}
