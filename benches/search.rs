//! Whole-process cost of `tmux-audit search` and `report` at a million
//! records, against issue 15's goals: every search (any filter) under
//! 50 ms, every report (any grouping) under 500 ms, any output in bounded
//! memory; after a warm-up, the best of a few runs of each query.
//!
//!     cargo bench --bench search          # 1,000,000 rows, best of 3 per query
//!     ROWS=100000 RUNS=10 cargo bench --bench search
//!     KEEP_DB=/tmp/big.db cargo bench --bench search   # and keep the database
//!     KEEP_DB=/tmp/big.db ONLY=report,unique RUNS=5 cargo bench --bench search
//!
//! A KEEP_DB that exists is measured as it is; BIN=path times that binary
//! (an older build, for a before and after). ONLY: the queries whose label
//! contains one of these words. Each line gives the fastest and the median
//! run, the highest peak RSS of any run, the goal and whether it is met.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{env_or, ms};

fn main() {
    let rows: usize = env_or("ROWS", 1_000_000);
    let runs: usize = env_or("RUNS", 3);
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
    let s = since.as_str();
    // Every search flag and every grouping, alone and combined. Searches
    // print at most the default limit (or --unique's distinct texts) unless
    // --all; reports every group.
    let queries: &[(&str, &[&str])] = &[
        ("substring, default limit", &["search", "git"]),
        ("rare term", &["search", "frobnicator"]),
        ("no pattern", &["search"]),
        ("-n 1000", &["search", "-n", "1000"]),
        ("--reverse", &["search", "git", "--reverse"]),
        ("--exact", &["search", "--exact", "git status"]),
        ("--prefix", &["search", "--prefix", "kubectl get"]),
        ("--regex", &["search", "--regex", r"kubectl .* -n prod\w+"]),
        ("--json", &["search", "git", "--json"]),
        (
            "--format jsonl -n 1000",
            &["search", "--format", "jsonl", "-n", "1000"],
        ),
        (
            "--format csv -n 1000",
            &["search", "--format", "csv", "-n", "1000"],
        ),
        ("--format cmd -0", &["search", "--format", "cmd", "-0"]),
        ("--pane", &["search", "--pane", "%7"]),
        (
            "--pane + --since",
            &["search", "--pane", "%7", "--since", s],
        ),
        ("--session", &["search", "--session", "$3"]),
        (
            "--session --user",
            &["search", "--session", "$3", "--user", "bob"],
        ),
        (
            "--session --failed",
            &["search", "--session", "$3", "--failed"],
        ),
        ("--window", &["search", "--window", "@4"]),
        ("--typed-by", &["search", "--typed-by", "bob"]),
        (
            "--typed-by --failed",
            &["search", "--typed-by", "bob", "--failed"],
        ),
        (
            "--socket",
            &["search", "--socket", "/tmp/tmux-1000/server-2"],
        ),
        ("--output", &["search", "--output", "error"]),
        ("--since", &["search", "--since", s]),
        ("--until", &["search", "--until", s]),
        ("--since --user", &["search", "--since", s, "--user", "bob"]),
        (
            "--since --failed --host",
            &["search", "--since", s, "--failed", "--host", "host-3"],
        ),
        (
            "--since --min-duration",
            &["search", "--since", s, "--min-duration", "4990ms"],
        ),
        (
            "--failed --cwd-under",
            &["search", "--failed", "--cwd-under", "/home/bob/src"],
        ),
        ("--cwd-under", &["search", "--cwd-under", "/home/carol/src"]),
        ("--cwd-under (none)", &["search", "--cwd-under", "/nowhere"]),
        ("--cwd", &["search", "--cwd", "/home/bob/src/project-3"]),
        (
            "--cwd --failed",
            &["search", "--cwd", "/home/bob/src/project-3", "--failed"],
        ),
        ("--user", &["search", "--user", "carol"]),
        ("--user (none)", &["search", "--user", "nobody"]),
        ("--host", &["search", "--host", "host-3"]),
        ("--shell", &["search", "--shell", "fish"]),
        (
            "--shell --user",
            &["search", "--shell", "fish", "--user", "bob"],
        ),
        ("--exit 1", &["search", "--exit", "1"]),
        ("--exit 2 (none)", &["search", "--exit", "2"]),
        (
            "--exit 1 --user",
            &["search", "--exit", "1", "--user", "carol"],
        ),
        ("--failed", &["search", "--failed"]),
        (
            "--failed --host",
            &["search", "--failed", "--host", "host-3"],
        ),
        (
            "--failed --shell",
            &["search", "--failed", "--shell", "zsh"],
        ),
        ("--succeeded", &["search", "--succeeded"]),
        ("--min-duration", &["search", "--min-duration", "4s"]),
        (
            "--min-duration 1h (none)",
            &["search", "--min-duration", "1h"],
        ),
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
            "--min-duration --failed",
            &["search", "--min-duration", "4990ms", "--failed"],
        ),
        (
            "--user --host (none)",
            &["search", "--user", "bob", "--host", "host-3"],
        ),
        (
            "--user --host --shell",
            &[
                "search", "--user", "bob", "--host", "host-1", "--shell", "zsh",
            ],
        ),
        (
            "git --user --failed",
            &["search", "git", "--user", "bob", "--failed"],
        ),
        (
            "frobnicator --host",
            &["search", "frobnicator", "--host", "host-3"],
        ),
        ("--unique", &["search", "--unique"]),
        ("--unique git", &["search", "--unique", "git"]),
        ("--unique --user", &["search", "--unique", "--user", "bob"]),
        ("--unique --failed", &["search", "--unique", "--failed"]),
        ("--unique --since", &["search", "--unique", "--since", s]),
        ("--unique -n 1000", &["search", "--unique", "-n", "1000"]),
        (
            "--unique --format cmd -0",
            &["search", "--unique", "--format", "cmd", "-0"],
        ),
        (
            "--all --unique cmd -0",
            &["search", "--all", "--unique", "--format", "cmd", "-0"],
        ),
        (
            "--all frobnicator jsonl",
            &["search", "--all", "frobnicator", "--format", "jsonl"],
        ),
        ("--all jsonl", &["search", "--all", "--format", "jsonl"]),
        ("--all csv", &["search", "--all", "--format", "csv"]),
        (
            "--all cmd -0",
            &["search", "--all", "--format", "cmd", "-0"],
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
        ("report --by command", &["report", "--by", "command"]),
        (
            "report --by day --json",
            &["report", "--by", "day", "--json"],
        ),
        (
            "report --by pane --since",
            &["report", "--by", "pane", "--since", s],
        ),
        (
            "report --by session --since",
            &["report", "--by", "session", "--since", s],
        ),
        (
            "report --by day --since",
            &["report", "--by", "day", "--since", s],
        ),
        (
            "report --by day --user",
            &["report", "--by", "day", "--user", "bob"],
        ),
        (
            "report --by user --host",
            &["report", "--by", "user", "--host", "host-3"],
        ),
        (
            "report --by host --failed",
            &["report", "--by", "host", "--failed"],
        ),
        (
            "report --by cwd --shell",
            &["report", "--by", "cwd", "--shell", "zsh"],
        ),
        (
            "report --by window --user",
            &["report", "--by", "window", "--user", "bob"],
        ),
        (
            "report --by client-user --exit",
            &["report", "--by", "client-user", "--exit", "1"],
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
            "report --by pane --session",
            &["report", "--by", "pane", "--session", "$3"],
        ),
        (
            "report --by day --cwd-under",
            &["report", "--by", "day", "--cwd-under", "/home/bob/src"],
        ),
        (
            "report --by user --min-duration",
            &["report", "--by", "user", "--min-duration", "4s"],
        ),
        (
            "report --by day --typed-by",
            &["report", "--by", "day", "--typed-by", "bob"],
        ),
    ];
    // ONLY=substring,report: run only the queries whose label contains one of these.
    let only: Vec<String> = std::env::var("ONLY")
        .map(|o| o.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    println!(
        "tmux-audit at {rows} rows: a warm-up, then the best of {runs} runs per query, \
         whole process, output to a pipe"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>6}",
        "query", "best", "median", "peak RSS", "goal"
    );
    let (mut met, mut missed) = (0, 0);
    for (label, args) in queries {
        if !only.is_empty() && !only.iter().any(|o| label.contains(o.as_str())) {
            continue;
        }
        let mut peak = 0;
        let mut failed = None;
        let mut run = || {
            let mut command = Command::new(&bin);
            command
                .args(*args)
                .env("TMUX_AUDIT_DB", &db)
                .env("TZ", "UTC");
            let run = common::measure(command);
            // 0: found, 1: nothing found; both are answers.
            if run.code.is_none_or(|c| c >= 2) {
                failed = Some(run.code);
            }
            peak = peak.max(run.peak_rss_kib);
            run.took
        };
        // The warm-up: the page cache, and the caches a first reader fills.
        run();
        let mut times: Vec<Duration> = (0..runs).map(|_| run()).collect();
        times.sort();
        if let Some(code) = failed {
            println!("{label:<34} exit {code:?}: not an answer");
            missed += 1;
            continue;
        }
        let goal = Goal::of(args);
        let ok = goal.met(times[0], peak);
        if ok {
            met += 1;
        } else {
            missed += 1;
        }
        println!(
            "{label:<34} {:>10} {:>10} {:>6} MB {:>6} {}",
            ms(times[0]),
            ms(times[times.len() / 2]),
            peak / 1024,
            goal.to_string(),
            if ok { "ok" } else { "MISSED" }
        );
    }
    println!("{met} goals met, {missed} missed");
}

/// Issue 15's goals at a million rows: a search under 50 ms, a report
/// under 500 ms (best of the runs), and output of any size in bounded
/// memory (`--all`: no time goal, under 100 MB).
enum Goal {
    Time(Duration),
    Memory,
}

impl Goal {
    fn of(args: &[&str]) -> Goal {
        if args.contains(&"--all") {
            Goal::Memory
        } else if args[0] == "report" {
            Goal::Time(Duration::from_millis(500))
        } else {
            Goal::Time(Duration::from_millis(50))
        }
    }

    fn met(&self, best: Duration, peak_rss_kib: i64) -> bool {
        match self {
            Goal::Time(goal) => best < *goal && peak_rss_kib < 100 * 1024,
            Goal::Memory => peak_rss_kib < 100 * 1024,
        }
    }
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::Time(goal) => write!(f, "{}ms", goal.as_millis()),
            Goal::Memory => f.write_str("<100MB"),
        }
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
