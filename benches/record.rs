//! Whole-process cost of `tmux-audit record`, the command every prompt runs.
//!
//! Starts the release binary many times the way the hooks do (command text
//! on stdin, a real SQLite file) and prints the median and spread of the
//! wall time per invocation and the peak resident memory: on an empty
//! database, with a command that holds a secret (so the redaction patterns
//! are compiled and run), on one another writer keeps locked, and on a
//! database with 1,000,000 rows.
//!
//!     cargo bench --bench record            # 1,000,000 rows, 500 runs each
//!     ROWS=100000 RUNS=200 cargo bench --bench record

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{env_or, fill, ms};

fn main() {
    let rows: usize = env_or("ROWS", 1_000_000);
    let runs: usize = env_or("RUNS", 500);
    let dir = tempfile::tempdir().unwrap();
    println!("tmux-audit record: {runs} runs per case, whole process (fork, exec, read stdin, insert, exit)");
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>13}",
        "database", "median", "p10", "p90", "max", "peak RSS"
    );

    // The floor: what starting any process costs on this machine.
    let (mut floor, _) = spawn_times("/bin/true", &[], runs);
    floor.sort();
    println!(
        "{:<22} {:>9}",
        "(/bin/true, for scale)",
        ms(floor[floor.len() / 2])
    );

    let empty = dir.path().join("empty.db");
    measure("empty", &empty, runs, 0, TYPICAL);
    measure("empty, with a secret", &empty, runs, 1_000_000_000, SECRET);
    {
        // Another writer holds the lock the whole time: the records wait
        // in the spool, and those due to merge find it busy. (The test
        // `faults::no_fault_costs_the_prompt_or_a_record` only proves the
        // prompt does not wait for the lock to go; this is what it costs.)
        let mut holder = rusqlite::Connection::open(&empty).unwrap();
        let tx = holder
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        measure("empty, locked", &empty, runs, 2_000_000_000, TYPICAL);
        tx.rollback().unwrap();
    }

    let big = dir.path().join("big.db");
    measure_quietly(&big, 1);
    let started = Instant::now();
    fill(&big, rows);
    eprintln!("(filled {rows} rows in {:.1?})", started.elapsed());
    measure(&format!("{rows} rows"), &big, runs, rows, TYPICAL);
}

const TYPICAL: &[u8] = b"git commit -m 'a typical command' --amend\n";
const SECRET: &[u8] = b"mysql -uroot -phunter22secret --host db.internal app\n";

fn measure_quietly(db: &Path, seq: usize) {
    let (_, _, ok) = run_once(db, seq, TYPICAL);
    assert!(ok, "record failed");
}

fn measure(label: &str, db: &Path, runs: usize, first_seq: usize, command: &[u8]) {
    // Warm the page cache and create the file, as on any machine in use.
    for i in 0..10 {
        measure_quietly(db, first_seq + 10_000_000 + i);
    }
    let mut times = Vec::with_capacity(runs);
    let mut peak_kib = 0;
    for i in 0..runs {
        let (took, rss_kib, ok) = run_once(db, first_seq + 20_000_000 + i, command);
        assert!(ok, "record failed");
        times.push(took);
        peak_kib = peak_kib.max(rss_kib);
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<22} {:>9} {:>9} {:>9} {:>9} {:>10.1} MB",
        ms(at(0.5)),
        ms(at(0.1)),
        ms(at(0.9)),
        ms(at(1.0)),
        peak_kib as f64 / 1024.0
    );
}

/// One `record`, as a hook runs it: wall time from spawn to exit, and its
/// peak RSS (KiB).
fn run_once(db: &Path, seq: usize, command: &[u8]) -> (Duration, i64, bool) {
    let bin = std::env::var("BIN").unwrap_or(env!("CARGO_BIN_EXE_tmux-audit").to_string());
    let mut cmd = Command::new(bin);
    cmd.args([
        "record",
        "--shell",
        "bash",
        "--session",
        "bench",
        "--exit",
        "0",
    ])
    .args(["--seq", &seq.to_string(), "--start-us", "1764000000000000"])
    .env("TMUX_AUDIT_DB", db)
    .env("TMUX", "/tmp/tmux-1000/default,4242,0")
    .env("TMUX_PANE", "%3");
    spawn_once(cmd, command)
}

fn spawn_times(program: &str, args: &[&str], runs: usize) -> (Vec<Duration>, i64) {
    let mut times = Vec::with_capacity(runs);
    let mut peak = 0;
    for _ in 0..runs {
        let mut cmd = Command::new(program);
        cmd.args(args);
        let (took, rss, ok) = spawn_once(cmd, b"");
        assert!(ok);
        times.push(took);
        peak = peak.max(rss);
    }
    (times, peak)
}

fn spawn_once(mut cmd: Command, stdin: &[u8]) -> (Duration, i64, bool) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own child, not waited for yet; wait4 fills status and usage.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = start.elapsed();
    assert_eq!(waited, pid);
    // The child was reaped by wait4; the Child handle must not wait again.
    std::mem::forget(child);
    (
        took,
        usage.ru_maxrss,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    )
}
