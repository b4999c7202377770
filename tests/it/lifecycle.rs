//! tmux lifecycle events: the hooks `init tmux` registers in a real tmux
//! server, what they record, and how commands are named by them.

use std::fs;
use std::process::Command;

use serde_json::Value;

use crate::support::{EventRow, Rc, Sandbox, Shell, Tmux, PATIENCE};

fn names(events: &[EventRow]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

fn has(events: &[EventRow], event: &str, session_name: &str) -> bool {
    events
        .iter()
        .any(|e| e.event == event && e.session_name.as_deref() == Some(session_name))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The position of the first event called `event` that names `name` (a
/// session or window name; "" for any), failing when there is none.
fn position(events: &[EventRow], event: &str, name: &str) -> usize {
    events
        .iter()
        .position(|e| {
            let names = [e.session_name.as_deref(), e.window_name.as_deref()];
            e.event == event && (name.is_empty() || names.contains(&Some(name)))
        })
        .unwrap_or_else(|| panic!("no {event} {name} in {:?}", names(events)))
}

#[test]
fn create_rename_split_kill_and_detach_are_recorded_in_order() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    tmux.load_audit_config(&sb);
    // When it first registers, `init tmux` records what the server shows.
    let seen = sb.wait_events("the state at init", |e| {
        e.iter().any(|e| e.event == "seen") && e.iter().any(|e| e.event == "server-started")
    });
    assert_eq!(seen[0].tmux_server_pid, tmux.server_pid());

    // Each step waits for its own event, so that the order is the order done.
    tmux.run(&["new-session", "-d", "-s", "work", "cat"]);
    sb.wait_events("session-created", |e| has(e, "session-created", "work"));
    tmux.run(&["rename-session", "-t", "work", "prod"]);
    sb.wait_events("session-renamed", |e| has(e, "session-renamed", "prod"));
    let pane = tmux.run(&[
        "split-window",
        "-d",
        "-t",
        "prod",
        "-P",
        "-F",
        "#{pane_id}",
        "cat",
    ]);
    sb.wait_events("after-split-window", |e| {
        e.iter()
            .any(|e| e.event == "after-split-window" && e.pane.as_deref() == Some(&pane))
    });
    tmux.run(&["new-window", "-d", "-t", "prod", "-n", "logs", "cat"]);
    sb.wait_events("after-new-window", |e| {
        e.iter()
            .any(|e| e.event == "after-new-window" && e.window_name.as_deref() == Some("logs"))
    });
    tmux.run(&["rename-window", "-t", "prod:1", "tail"]);
    sb.wait_events("window-renamed", |e| {
        e.iter()
            .any(|e| e.event == "window-renamed" && e.window_name.as_deref() == Some("tail"))
    });
    tmux.run(&["kill-session", "-t", "prod"]);
    let events = sb.wait_events("session-closed", |e| has(e, "session-closed", "prod"));

    // (tmux renames a window after its command by itself, too: the step
    // is the rename to "tail".)
    let order = [
        ("session-created", "work"),
        ("session-renamed", "prod"),
        ("after-split-window", ""),
        ("after-new-window", "logs"),
        ("window-renamed", "tail"),
        ("session-closed", "prod"),
    ];
    let positions: Vec<usize> = order.iter().map(|(e, d)| position(&events, e, d)).collect();
    assert!(positions.is_sorted(), "{:?}", names(&events));
    let split = &events[positions[2]];
    assert_eq!(
        (split.session_name.as_deref(), split.window_index),
        (Some("prod"), Some(0))
    );
    let new_window = &events[positions[3]];
    assert_eq!(new_window.window_index, Some(1));

    // `sessions` tells the same story.
    let (ok, out) = sb.run(&["sessions", "--format", "json"]);
    assert!(ok, "{out}");
    let sessions = json(&out);
    let prod = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "prod")
        .unwrap_or_else(|| panic!("{out}"));
    let names: Vec<&str> = prod["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["work", "prod"]);
    assert!(
        prod["created_at"].is_string() && prod["closed_at"].is_string(),
        "{prod}"
    );

    // And `timeline`, in time order.
    let (ok, out) = sb.run(&["timeline", "--session", "work", "--format", "json"]);
    assert!(ok, "{out}");
    let timeline: Vec<(String, String)> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["what"].as_str().unwrap().into(),
                i["detail"].as_str().unwrap().into(),
            )
        })
        .collect();
    let steps: Vec<usize> = order
        .iter()
        .map(|(what, name)| {
            timeline
                .iter()
                .position(|(w, d)| w == what && (name.is_empty() || d == name))
                .unwrap_or_else(|| panic!("no {what} {name} in {timeline:?}"))
        })
        .collect();
    assert!(steps.is_sorted(), "{timeline:?}");

    // A client attaching and detaching: a client of its own in a pane.
    let client = tmux.split(&format!(
        "env -u TMUX tmux -L {} -f /dev/null attach -t 0",
        tmux.socket_name()
    ));
    let events = sb.wait_events("client-attached", |e| {
        e.iter().any(|e| e.event == "client-attached")
    });
    let attached = &events[position(&events, "client-attached", "")];
    assert_eq!(
        attached.client_user.as_deref(),
        Some(current_user().as_str())
    );
    let client_name = attached.client_name.clone().expect("the client's name");
    tmux.run(&["detach-client", "-t", &client_name]);
    let events = sb.wait_events("client-detached", |e| {
        e.iter().any(|e| e.event == "client-detached")
    });
    let detached = &events[position(&events, "client-detached", "")];
    assert_eq!(detached.client_name.as_deref(), Some(client_name.as_str()));
    drop(client);
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn commands_carry_the_session_name_in_force_when_they_ran() {
    let sb = Sandbox::new();
    let (tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &Rc::default()));
    tmux.load_audit_config(&sb);
    sb.wait_events("the state at init", |e| e.iter().any(|e| e.event == "seen"));
    tmux.run(&["rename-session", "-t", "0", "work"]);
    sb.wait_events("session-renamed", |e| has(e, "session-renamed", "work"));
    pane.ready().line("echo before-rename");
    sb.wait_rows("the first command", |r| r.len() == 1);
    tmux.run(&["rename-session", "-t", "work", "prod"]);
    sb.wait_events("session-renamed", |e| has(e, "session-renamed", "prod"));
    tmux.run(&["rename-window", "-t", "prod:0", "editor"]);
    sb.wait_events("window-renamed", |e| {
        e.iter()
            .any(|e| e.event == "window-renamed" && e.window_name.as_deref() == Some("editor"))
    });
    pane.line("echo after-rename");
    let rows = sb.wait_rows("the second command", |r| r.len() == 2);

    let (ok, out) = sb.run(&["search", "--format", "json"]);
    assert!(ok, "{out}");
    let found = json(&out);
    let session_of = |command: &str| {
        let row = found
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["command"] == command)
            .unwrap_or_else(|| panic!("{command} in {out}"));
        (
            row["tmux_session_name"].as_str().map(str::to_string),
            row["tmux_window_index"].as_i64(),
            row["tmux_window_name"].as_str().map(str::to_string),
        )
    };
    let (session, index, window) = session_of("echo before-rename");
    assert_eq!((session.as_deref(), index), (Some("work"), Some(0)));
    assert_ne!(window.as_deref(), Some("editor"), "renamed only later");
    let (session, _, window) = session_of("echo after-rename");
    assert_eq!(
        (session.as_deref(), window.as_deref()),
        (Some("prod"), Some("editor"))
    );

    // `show` and the table say the same.
    let (ok, out) = sb.run(&["show", &rows[0].id.to_string()]);
    assert!(ok, "{out}");
    assert!(out.contains("session  work ($"), "{out}");
    let (ok, out) = sb.run(&["search"]);
    assert!(
        ok && out.contains("work:0") && out.contains("prod:0"),
        "{out}"
    );

    // A report by session names it as it was last; by window, per window.
    let (ok, out) = sb.run(&["report", "--by", "session", "--format", "json"]);
    assert!(ok, "{out}");
    let report = json(&out);
    assert_eq!(report[0]["tmux_session_name"], "prod", "{out}");
    assert_eq!(report[0]["commands"], 2, "{out}");
    let (ok, out) = sb.run(&["report", "--by", "window"]);
    assert!(ok && out.contains("prod:0 (editor)"), "{out}");

    // The timeline of the pane holds both commands and the renames between.
    let (ok, out) = sb.run(&["timeline", "--pane", &pane.id, "--format", "json"]);
    assert!(ok, "{out}");
    let whats: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["what"].as_str().unwrap(),
                i["detail"].as_str().unwrap()
            )
        })
        .collect();
    let at = |text: &str| {
        whats
            .iter()
            .position(|w| w.starts_with(text))
            .unwrap_or_else(|| panic!("{text} in {whats:?}"))
    };
    assert!(
        at("command echo before-rename") < at("session-renamed prod"),
        "{whats:?}"
    );
    assert!(
        at("session-renamed prod") < at("command echo after-rename"),
        "{whats:?}"
    );
}

#[test]
fn the_users_own_hooks_keep_working_and_a_second_init_registers_nothing_more() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    let mark = sb.path().join("users-hook-ran");
    tmux.run(&[
        "set-hook",
        "-g",
        "session-created",
        &format!("run-shell 'echo x >> {}'", mark.display()),
    ]);
    tmux.load_audit_config(&sb);
    tmux.load_audit_config(&sb);
    let hooks = tmux.run(&["show-hooks", "-g", "session-created"]);
    assert_eq!(
        hooks.lines().count(),
        2,
        "the user's and ours, once: {hooks}"
    );
    assert!(
        hooks.lines().next().unwrap().contains("users-hook-ran"),
        "{hooks}"
    );
    // Window and pane hooks are listed apart from session hooks.
    let all = format!(
        "{}\n{}",
        tmux.run(&["show-hooks", "-g"]),
        tmux.run(&["show-hooks", "-gw"])
    );
    for hook in [
        "session-closed",
        "client-active",
        "window-renamed",
        "pane-exited",
    ] {
        let ours = all
            .lines()
            .filter(|l| l.starts_with(&format!("{hook}[")) && l.contains(" tmux-event "))
            .count();
        assert_eq!(ours, 1, "{hook} once: {all}");
    }

    tmux.run(&["new-session", "-d", "-s", "mine", "cat"]);
    sb.wait_events("session-created", |e| has(e, "session-created", "mine"));
    let deadline = std::time::Instant::now() + PATIENCE;
    while fs::read_to_string(&mark)
        .unwrap_or_default()
        .lines()
        .count()
        < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the user's hook never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tmux.settle_events(&sb);
    let created = sb
        .events()
        .iter()
        .filter(|e| e.event == "session-created")
        .count();
    assert_eq!(created, 1, "recorded once, not once per init");
    assert_eq!(fs::read_to_string(&mark).unwrap().lines().count(), 1);
    assert_eq!(
        sb.events()
            .iter()
            .filter(|e| e.event == "server-started")
            .count(),
        1
    );
}

#[test]
fn a_burst_of_lifecycle_events_loses_none_and_stays_in_the_chain() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    tmux.load_audit_config(&sb);
    sb.wait_events("the state at init", |e| e.iter().any(|e| e.event == "seen"));
    // 100 new windows and a split of each: 200 tmux commands, which tmux
    // reports as 300 events (a new window is also linked into its session).
    for _ in 0..100 {
        let window = tmux.run(&["new-window", "-d", "-P", "-F", "#{window_id}", "cat"]);
        tmux.run(&["split-window", "-d", "-t", &window, "cat"]);
    }
    let count = |events: &[EventRow], name: &str| events.iter().filter(|e| e.event == name).count();
    let done = |e: &[EventRow]| {
        count(e, "after-new-window") >= 100
            && count(e, "window-linked") >= 100
            && count(e, "after-split-window") >= 100
    };
    sb.wait_events("300 events", done);
    tmux.settle_events(&sb);
    let events = sb.events();
    assert_eq!(count(&events, "after-new-window"), 100, "exactly once");
    assert_eq!(count(&events, "window-linked"), 100, "exactly once");
    assert_eq!(count(&events, "after-split-window"), 100, "exactly once");
    assert_eq!(sb.log(), "", "no errors, no duplicates dropped");

    let (ok, out) = sb.run(&["verify"]);
    assert!(ok && out.contains("tmux events"), "{out}");
    let (ok, anchor) = sb.run(&["anchor"]);
    assert!(ok && anchor.contains(" tmux event "), "{anchor}");
    let verify_anchor = || sb.run(&["verify", "--anchor", anchor.trim()]);
    let (ok, out) = verify_anchor();
    assert!(ok && out.contains("anchor found"), "{out}");

    // The newest event deleted: the chain is whole, the anchor is gone.
    let conn = rusqlite::Connection::open(&sb.db).unwrap();
    conn.execute(
        "DELETE FROM tmux_events WHERE id = (SELECT max(id) FROM tmux_events)",
        [],
    )
    .unwrap();
    let (ok, out) = sb.run(&["verify"]);
    assert!(ok, "without the anchor, truncation cannot be seen: {out}");
    let (ok, out) = verify_anchor();
    assert!(!ok && out.contains("anchor is not in the chain"), "{out}");

    // An edited event breaks the chain, and verify names it.
    conn.execute(
        "UPDATE tmux_events SET session_name = 'elsewhere' WHERE id = 5",
        [],
    )
    .unwrap();
    drop(conn);
    let out = sb.cmd().arg("verify").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NOT INTACT: tmux event 5"), "{text}");
}
