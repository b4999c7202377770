//! Shared by the benchmarks: a realistic database of any size, and how to
//! read settings and show times. Not every bench uses every part.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection};

/// Adds `rows` realistic records: many panes, sessions, users and
/// directories, commands of varied length, times one to a few seconds apart.
pub fn fill(db: &Path, rows: usize) {
    let mut conn = Connection::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO commands (command, exit_status, started_at_us, duration_us, cwd, user, uid,
                    host, shell, shell_session, seq, tty, tmux_socket, tmux_server_pid, tmux_session_id,
                    tmux_pane, recorded_at_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .unwrap();
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
        for i in 0..rows {
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
            insert
                .execute(params![
                    command,
                    if r % 11 == 0 { 1 } else { 0 },
                    t,
                    (r % 5_000_000) as i64,
                    format!(
                        "/home/{}/src/project-{}",
                        users[session % users.len()],
                        r % 40
                    ),
                    users[session % users.len()],
                    1000 + (session % users.len()) as i64,
                    format!("host-{}", session % 8),
                    shells[session % shells.len()],
                    format!("bench-session-{session}"),
                    (i % 200) as i64 + 1,
                    format!("/dev/pts/{}", session % 60),
                    format!("/tmp/tmux-1000/server-{}", session % 4),
                    10_000 + (session % 4) as i64,
                    (session % 30) as i64,
                    format!("%{}", session % 120),
                    t + 5_000,
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

/// A setting from the environment (`ROWS=…`), or its default.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `2.34ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}
