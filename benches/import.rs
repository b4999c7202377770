//! Whole-process cost of `tmux-audit import` at a million entries: a zsh
//! extended history (times, durations, every 50th entry multi-line, many
//! repeated commands) imported into a new database, then imported again
//! (every entry found there already). The median of RUNS runs of each.
//!
//! Also the largest resident set of any run (the import's memory).
//!
//!     cargo bench --bench import          # 1,000,000 entries, 3 runs
//!     ROWS=100000 RUNS=5 cargo bench --bench import

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::env_or;

fn main() {
    let rows: usize = env_or("ROWS", 1_000_000);
    let runs: usize = env_or("RUNS", 3);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("zsh_history");
    std::fs::write(&history, zsh_history(rows)).unwrap();

    let (mut first, mut first_cpu) = (Vec::new(), Vec::new());
    let (mut again, mut again_cpu) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let db = dir.path().join(format!("run{run}/history.db"));
        let (wall, cpu) = import(
            dir.path(),
            &db,
            &history,
            &format!("added {rows}, already there 0"),
        );
        first.push(wall);
        first_cpu.push(cpu);
        let (wall, cpu) = import(
            dir.path(),
            &db,
            &history,
            &format!("added 0, already there {rows}"),
        );
        again.push(wall);
        again_cpu.push(cpu);
        let _ = std::fs::remove_dir_all(db.parent().unwrap());
    }
    // CPU time too: on a shared machine the wall time says more about the
    // other processes than about this one.
    println!("import of {rows} zsh entries, median of {runs} runs (wall / CPU):");
    println!(
        "  into a new database:  {:.2?} / {:.2?}",
        median(&mut first),
        median(&mut first_cpu)
    );
    println!(
        "  again (all there):    {:.2?} / {:.2?}",
        median(&mut again),
        median(&mut again_cpu)
    );
    // The largest resident set of any run: the memory an import takes.
    println!("  peak RSS: {} MB", children_usage().ru_maxrss / 1024);
}

fn children_usage() -> libc::rusage {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid rusage.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    }
}

/// User and system time of the children waited for so far.
fn children_cpu() -> Duration {
    let usage = children_usage();
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// One whole `tmux-audit import zsh`; its wall and CPU time. `expect` is
/// a line its output must hold.
fn import(home: &Path, db: &Path, history: &Path, expect: &str) -> (Duration, Duration) {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tmux-audit"))
        .arg("import")
        .arg("--db")
        .arg(db)
        .arg("zsh")
        .arg(history)
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(expect),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, children_cpu() - cpu_before)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `rows` entries of a zsh extended history, as zsh writes them.
fn zsh_history(rows: usize) -> String {
    let commands = [
        "ls -la",
        "git status",
        "cargo build --release",
        "cd ~/src/api && make test",
        "kubectl get pods -n production -o wide",
        "docker compose up -d --build",
        "vim src/main.rs",
        "grep -rn 'TODO' src/ | sort | uniq -c | sort -rn | head -50",
        "ssh deploy@db-3.internal 'sudo systemctl restart postgresql'",
    ];
    let mut text = String::with_capacity(rows * 48);
    for i in 0..rows {
        let at = 1_700_000_000 + i * 3;
        let command = if i % 50 == 0 {
            format!("for f in *.log; do\\\n  gzip -9 \"$f\" # {i}\\\ndone")
        } else if i % 3 == 0 {
            format!("{} {i}", commands[i % commands.len()])
        } else {
            commands[i % commands.len()].to_string()
        };
        let _ = writeln!(text, ": {at}:{};{command}", i % 7);
    }
    text
}
