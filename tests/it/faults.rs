//! Faults under a real shell in tmux: the database locked by another
//! process, read-only, on a full disk, damaged. The prompt must come back at
//! once every time, and once the fault is gone every command must be in the
//! database exactly once.

use std::fs;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::support::{Pane, ProtectedDir, Rc, Sandbox, Shell, Tmux, PATIENCE};

/// Types `echo NAME-'1'` and waits for its output, `NAME-1`, and then for
/// the next prompt (the hook runs between the two): the shell ran the
/// command and the prompt came back. Returns the command text typed.
fn run(pane: &Pane, name: &str) -> String {
    let prompts = pane.screen().matches("READY").count();
    let line = format!("echo {name}-'1'");
    pane.line(&line);
    pane.wait_for(&format!("\n{name}-1"), 1);
    pane.wait_for("READY", prompts + 1);
    line
}

#[test]
fn no_fault_costs_the_prompt_or_a_record() {
    let sb = Sandbox::new();
    let dir = ProtectedDir::new(&sb.path().join("dbdir"));
    let db = dir.path.join("history.db");
    let rc = Rc::default().before(&format!("export TMUX_AUDIT_DB={}", db.display()));
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &rc));
    pane.ready();
    let mut typed = vec![run(&pane, "healthy")];

    // Locked by another connection's write transaction, held until the
    // prompt is back, or for the suite's patience: a prompt that waited for
    // the lock comes back only once the lock is released, which fails. (Not
    // a time bound: what a record costs on a locked database is measured
    // in `benches/record.rs`.)
    {
        let (locked, lock_held) = mpsc::channel();
        let (prompt_back, wait_for_prompt) = mpsc::channel::<()>();
        let holder = std::thread::spawn({
            let db = db.clone();
            move || {
                let mut holder = Connection::open(&db).unwrap();
                let tx = holder
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .unwrap();
                locked.send(()).unwrap();
                let back_while_locked = wait_for_prompt.recv_timeout(PATIENCE).is_ok();
                tx.rollback().unwrap();
                back_while_locked
            }
        });
        lock_held.recv().unwrap();
        typed.push(run(&pane, "while-locked"));
        let _ = prompt_back.send(());
        assert!(
            holder.join().unwrap(),
            "the prompt came back only once the lock was released"
        );
    }
    // The record that waited in the background lands once the lock is gone.
    let deadline = Instant::now() + crate::support::PATIENCE;
    while !sb.rows_of(&db).iter().any(|r| r.command == typed[1]) {
        assert!(
            Instant::now() < deadline,
            "the locked-out record never landed: {}",
            sb.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Read-only.
    dir.read_only(true);
    typed.push(run(&pane, "while-read-only"));
    dir.read_only(false);
    typed.push(run(&pane, "after-read-only"));

    // A full disk (a small tmpfs filled up: needs root, as in CI).
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let filler = dir.path.join("filler");
        let chunk = vec![0u8; 1 << 20];
        let mut file = fs::File::create(&filler).unwrap();
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
        drop(file);
        typed.push(run(&pane, &format!("while-full-{}", "x".repeat(3000))));
        fs::remove_file(&filler).unwrap();
        typed.push(run(&pane, "after-full"));
    } else {
        eprintln!("skipped the full-disk part: filling a tmpfs needs root");
    }

    // Damaged, then repaired with doctor.
    fs::write(&db, b"damaged beyond use".repeat(200)).unwrap();
    for sidecar in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{sidecar}", db.display()));
    }
    typed.push(run(&pane, "while-damaged"));
    let repair = sb
        .cmd()
        .env("TMUX_AUDIT_DB", &db)
        .args(["doctor", "--repair"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&repair.stdout).contains("repaired"),
        "{repair:?}"
    );
    typed.push(run(&pane, "after-repair"));

    // Everything typed since the repair's new database began is there once;
    // what the damaged file held went aside with it.
    let deadline = Instant::now() + crate::support::PATIENCE;
    let expected: Vec<&String> = typed
        .iter()
        .skip_while(|t| !t.contains("while-damaged"))
        .collect();
    loop {
        let commands: Vec<String> = sb
            .rows_of(&db)
            .into_iter()
            .map(|r| r.record.command)
            .collect();
        let all_once = expected
            .iter()
            .all(|t| commands.iter().filter(|c| c == t).count() == 1);
        // The merge empties the spool just after its commit.
        let spool_empty = sb.spooled_for(&db).is_empty();
        if all_once && spool_empty {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected each of {expected:?} once, found {commands:?}\nlog: {}",
            sb.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The damaged file was moved aside, not deleted.
    let moved: Vec<_> = fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("history.db.broken-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(sb.spooled_for(&db), "", "the spool was merged");
}
