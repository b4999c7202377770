//! What the lifecycle hooks of `tmux-audit init tmux` cost tmux: a burst of
//! 200 tmux commands (100 new windows, each split once) run one after the
//! other by a script, in a private tmux server without the hooks and with
//! them. Prints the median over several rounds of how long the burst took
//! (tmux answering each command), and, with the hooks, how long until
//! every one of its 300 events was stored.
//!
//!     cargo bench --bench lifecycle            # 5 rounds
//!     ROUNDS=3 cargo bench --bench lifecycle

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

mod common;
use common::{env_or, ms};

const WINDOWS: usize = 100;
/// A new window is reported twice (after-new-window, window-linked), a split once.
const EVENTS: i64 = 3 * WINDOWS as i64;

fn main() {
    let rounds: usize = env_or("ROUNDS", 5);
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/tmux-audit");
    assert!(
        bin.exists(),
        "build the release binary first (cargo bench builds it)"
    );
    println!(
        "a burst of {} tmux commands ({WINDOWS} new windows, each split once), {rounds} rounds",
        2 * WINDOWS
    );
    let (mut without, mut with, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        without.push(burst(&bin, false, round).0);
        let (took, all_stored) = burst(&bin, true, round);
        with.push(took);
        stored.push(all_stored.expect("every event stored"));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "{:<40} {:>9}",
        "without the hooks",
        ms(median(&mut without))
    );
    println!("{:<40} {:>9}", "with the hooks", ms(median(&mut with)));
    println!(
        "{:<40} {:>9}",
        "with the hooks, until all 300 stored",
        ms(median(&mut stored))
    );
}

/// Runs the burst in a new server; how long the burst took, and with the
/// hooks, how long until every event was stored.
fn burst(bin: &Path, hooks: bool, round: usize) -> (Duration, Option<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let socket = format!("ta-bench-{}-{round}-{hooks}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .env("TMUX_AUDIT_DB", &db)
            .env("XDG_STATE_HOME", dir.path())
            .env("TMUX_TMPDIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    tmux(&["new-session", "-d", "-x", "200", "-y", "50", "cat"]);
    if hooks {
        tmux(&["run-shell", &format!("{} init tmux", bin.display())]);
        wait_for(&db, 1);
    }
    let before = if hooks { count(&db) } else { 0 };
    let started = Instant::now();
    for _ in 0..WINDOWS {
        let window = tmux(&["new-window", "-d", "-P", "-F", "#{window_id}", "cat"]);
        tmux(&["split-window", "-d", "-t", &window, "cat"]);
    }
    let took = started.elapsed();
    let stored = hooks.then(|| {
        wait_for(&db, before + EVENTS);
        started.elapsed()
    });
    tmux(&["kill-server"]);
    (took, stored)
}

fn count(db: &Path) -> i64 {
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT count(*) FROM tmux_events", [], |r| r.get(0))
        .unwrap_or(0)
}

fn wait_for(db: &Path, events: i64) {
    let start = Instant::now();
    while count(db) < events {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "events missing: {} of {events}",
            count(db)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
