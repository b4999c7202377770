//! Whole-process time of `tmux-audit pick` until its first frame is drawn,
//! at a million records: the process starts on a pseudo-terminal of 80×24
//! (its controlling terminal, as in a shell's Ctrl-R binding), opens the
//! database, queries a screenful, draws, and exits
//! (`--exit-after-first-frame`). The median of many runs of each start.
//!
//!     cargo bench --bench pick            # 1,000,000 rows, 30 runs each
//!     ROWS=100000 RUNS=10 cargo bench --bench pick

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{env_or, ms};

fn main() {
    let rows: usize = env_or("ROWS", 1_000_000);
    let runs: usize = env_or("RUNS", 30);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
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

    // Pane %7 of tmux session $7 on server-3 has commands in the generated
    // history; session $99 has none (the worst case: every row is read
    // to find that out).
    let in_session_7 = "/tmp/tmux-1000/server-3,10003,7";
    let in_session_99 = "/tmp/tmux-1000/server-3,10003,99";
    let starts: &[(&str, &str, &[&str])] = &[
        ("empty filter (Ctrl-R on an empty line)", in_session_7, &[]),
        (
            "--query git (a common word)",
            in_session_7,
            &["--query", "git"],
        ),
        (
            "--query frobnicator (a rare word)",
            in_session_7,
            &["--query", "frobnicator"],
        ),
        (
            "--scope pane",
            in_session_7,
            &["--scope", "pane", "--pane", "%7"],
        ),
        ("--scope session", in_session_7, &["--scope", "session"]),
        (
            "--scope session, none in it (worst)",
            in_session_99,
            &["--scope", "session"],
        ),
    ];
    println!("tmux-audit pick at {rows} rows: {runs} runs each, whole process, to the first frame");
    println!(
        "{:<42} {:>10} {:>10} {:>10}",
        "start", "median", "min", "max"
    );
    for (label, tmux, args) in starts {
        // One run first: it brings the text index up to date, once.
        first_frame(&db, tmux, args);
        let mut times: Vec<Duration> = (0..runs).map(|_| first_frame(&db, tmux, args)).collect();
        times.sort();
        println!(
            "{label:<42} {:>10} {:>10} {:>10}",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
}

/// Runs the picker on a new pseudo-terminal until its first frame is
/// drawn; how long the whole process took.
fn first_frame(db: &std::path::Path, tmux: &str, args: &[&str]) -> Duration {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills the two descriptors, which are then owned here.
    let (master, slave) = unsafe {
        let made = libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        );
        assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_tmux-audit"));
    command
        .arg("pick")
        .args(args)
        .arg("--exit-after-first-frame")
        .env("TMUX_AUDIT_DB", db)
        .env("TZ", "UTC")
        .env("TMUX", tmux)
        .env_remove("TMUX_PANE")
        .stdin(slave.try_clone().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid and ioctl are async-signal-safe; the child gets the
    // pseudo-terminal (its stdin) as its controlling terminal, /dev/tty.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let out = command.output().unwrap();
    let took = start.elapsed();
    drop((master, slave));
    // --exit-after-first-frame: exit 1, as if left with Esc.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}
