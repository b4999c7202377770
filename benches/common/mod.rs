//! Shared by the benchmarks: a realistic database of any size, and how to
//! read settings and show times. Not every bench uses every part.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use tmux_audit::db::Database;
use tmux_audit::lifecycle::{Client, TmuxEvent};
use tmux_audit::record::{CommandRecord, Entry};

/// Adds `rows` realistic records: many panes, sessions, users and
/// directories, commands of varied length, times one to a few seconds apart.
/// Through the library's own insert (as `record` stores them, in batches),
/// so they carry a real hash chain and whatever the insert maintains.
///
/// In a child process of its own: a process's peak RSS (`wait4`'s
/// `ru_maxrss`) counts the memory of the process that started it, at the
/// moment it did (Linux keeps the high-water mark across `exec`), so a
/// bench that filled its database itself, and then started the process it
/// measures, reported the fill's memory as that process's peak (the same
/// 111 MB for every output of `benches/export.rs` at 120,000 rows).
pub fn fill(db: &Path, rows: usize) {
    // SAFETY: the benches fill before they start any thread; the child
    // only fills and ends with _exit, never returning into the bench.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let filled = std::panic::catch_unwind(|| fill_here(db, rows)).is_ok();
        // SAFETY: ends the child without running the bench's exit code.
        unsafe { libc::_exit(if filled { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked, writing only `status`.
    let reaped = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        reaped == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the fill failed"
    );
}

fn fill_here(db: &Path, rows: usize) {
    let mut db_handle = Database::open(db).unwrap();
    // As `import` does: each insert updates a dozen indexes at scattered
    // places, and with SQLite's 2 MB default cache the fill of ten million
    // rows spent its time re-reading their pages. Not a measured process.
    db_handle.set_cache_kib(256 * 1024).unwrap();
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
        "for f in *.log; do gzip -9 \"$f\"; done",
    ];
    let users = ["alice", "bob", "carol", "deploy", "root"];
    let shells = ["bash", "zsh", "fish"];
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut t = 1_700_000_000_000_000_i64;
    let mut batch: Vec<(Entry, i64)> = Vec::with_capacity(BATCH);
    // The four tmux servers as `init tmux` finds them (each pane in a
    // window of its own), a client attached to each session, and every
    // 100,000 commands another user's client attaching somewhere, so that
    // what places commands (sessions, windows, who typed) has events to
    // replay, as on a host where `init tmux` runs.
    let mut events = 0;
    let mut event = |name: &str, at_us: i64, pane: usize, client: Option<&str>| {
        events += 1;
        let server = pane % SERVERS;
        let session = pane % SESSIONS;
        let entry = Entry::TmuxEvent(TmuxEvent {
            event: name.into(),
            at_us,
            event_key: format!("bench-{events}"),
            host: "host-0".into(),
            user: "alice".into(),
            uid: 1000,
            tmux_socket: format!("/tmp/tmux-1000/server-{server}"),
            tmux_server_pid: 10_000 + server as i64,
            session_id: Some(session as i64),
            session_name: Some(format!("work-{session}")),
            window_id: Some(pane as i64),
            window_index: Some((pane % 10) as i64),
            window_name: Some(format!("win-{pane}")),
            pane: Some(format!("%{pane}")),
            client: client.map(|user| Client {
                name: format!("/dev/pts/{}", 100 + events % 50),
                user: Some(user.into()),
                ..Client::default()
            }),
            ..TmuxEvent::default()
        });
        (entry, at_us + 5_000)
    };
    for pane in 0..PANES {
        batch.push(event("seen", t - 2_000_000, pane, None));
    }
    // One client per session of each server (60 of them).
    for pane in 0..SERVERS * SESSIONS / 2 {
        batch.push(event(
            "client-attached",
            t - 1_000_000,
            pane,
            Some(users[pane % 5]),
        ));
    }
    for i in 0..rows {
        if i % 100_000 == 50_000 {
            let pane = (i / 100_000) % PANES;
            batch.push(event(
                "client-attached",
                t + 1,
                pane,
                Some(users[(i / 100_000 + 1) % 5]),
            ));
        }
        let r = next();
        let session = i / 200; // a shell session runs 200 commands
        let mut command = commands[(r % commands.len() as u64) as usize].to_string();
        if r % 7 == 0 {
            command.push_str(&format!(" --arg-{}", "x".repeat((r % 300) as usize)));
        }
        if r % 3 == 0 {
            command.push_str(&format!(" file-{}.txt", r % 10_007));
        }
        // A rare command: ten in a million.
        if i % 100_000 == 99_999 {
            command = "terraform destroy -target=module.frobnicator".to_string();
        }
        t += 1_000_000 + (r % 3_000_000) as i64;
        let user = users[session % users.len()];
        let record = CommandRecord {
            command,
            command_raw: None,
            exit_status: Some(if r % 11 == 0 { 1 } else { 0 }),
            started_at_us: t,
            duration_us: Some((r % 5_000_000) as i64),
            cwd: format!("/home/{user}/src/project-{}", r % 40),
            cwd_raw: None,
            user: user.to_string(),
            uid: 1000 + (session % users.len()) as u32,
            login_uid: None,
            sudo_user: None,
            host: format!("host-{}", session % 8),
            shell: shells[session % shells.len()].to_string(),
            shell_session: format!("bench-session-{session}"),
            seq: (i % 200) as i64 + 1,
            tty: Some(format!("/dev/pts/{}", session % 60)),
            ssh_connection: None,
            // Pane %k is on server k % 4, in session k % 30, as the
            // events above have it.
            tmux_socket: Some(format!("/tmp/tmux-1000/server-{}", session % SERVERS)),
            tmux_server_pid: Some(10_000 + (session % SERVERS) as i64),
            tmux_session_id: Some((session % SESSIONS) as i64),
            tmux_pane: Some(format!("%{}", session % PANES)),
            redacted: false,
            imported: None,
        };
        batch.push((Entry::Command(record), t + 5_000));
        if batch.len() >= BATCH || i + 1 == rows {
            let added = db_handle
                .insert_all(batch.iter().map(|(e, at)| (e, *at)))
                .unwrap();
            assert_eq!(added, batch.len(), "each record is new");
            batch.clear();
            // As every writer of tmux-audit does after its writes: without
            // it the WAL of ten million rows outgrew the disk (23 GB seen).
            db_handle.fold_wal();
        }
    }
    drop(db_handle);
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

/// Records per transaction while filling.
const BATCH: usize = 50_000;

/// The generated tmux servers, sessions (ids, on each server) and panes.
const SERVERS: usize = 4;
const SESSIONS: usize = 30;
const PANES: usize = 120;

/// A setting from the environment (`ROWS=…`), or its default.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The CPU time (user and system) process `pid` has used so far, from
/// `/proc`; zero once it is gone.
pub fn cpu_time(pid: impl std::fmt::Display) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields 14 and 15, counted from field 3 after the command's name
    // (which can hold spaces: `tmux: server`).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf reads a constant of the system; it takes no pointer.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// How long process `pid`'s main thread has waited, runnable, for a CPU
/// so far (`/proc/<pid>/schedstat`, in ns); `None` where the kernel keeps
/// no such count (no file, or scheduler statistics off: all zeros).
pub fn run_queue_wait(pid: impl std::fmt::Display) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
    let (ran, waited) = (fields.next()??, fields.next()??);
    (ran > 0).then(|| Duration::from_nanos(waited))
}

/// `2.34ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// What one whole-process run cost: wall time, the child's peak resident
/// memory, the bytes it printed, and its exit status.
pub struct Run {
    pub took: Duration,
    pub peak_rss_kib: i64,
    /// The child's own CPU time, user and system.
    pub cpu: Duration,
    pub bytes: u64,
    pub code: Option<i32>,
}

/// Runs `command` with its output drained through a pipe (as a reader
/// would take it), and measures it: the peak RSS is the child's own, from
/// `wait4`'s resource usage, not this process's.
pub fn measure(mut command: std::process::Command) -> Run {
    use std::io::Read;
    let start = std::time::Instant::now();
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing only into the two locals
    // given; `child` is not waited for again (it is dropped unwaited).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = start.elapsed();
    assert_eq!(reaped, pid, "wait4 failed");
    let bytes = drain.join().unwrap();
    drop(child);
    Run {
        took,
        peak_rss_kib: usage.ru_maxrss,
        cpu: Duration::from_secs(usage.ru_utime.tv_sec as u64 + usage.ru_stime.tv_sec as u64)
            + Duration::from_micros(usage.ru_utime.tv_usec as u64 + usage.ru_stime.tv_usec as u64),
        bytes,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
    }
}
