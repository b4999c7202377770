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
        .map(|i| (i["event"].as_str().unwrap().into(), timeline_detail(i)))
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
        .map(|i| format!("{} {}", i["event"].as_str().unwrap(), timeline_detail(i)))
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

/// What a timeline item (as JSON) is about: a command's text, a session
/// event's session name, a window event's window name.
fn timeline_detail(item: &serde_json::Value) -> String {
    let event = item["event"].as_str().unwrap();
    let field = match event {
        "command" => "command",
        e if e.starts_with("session") => "session_name",
        e if e.contains("window") => "window_name",
        _ => return String::new(),
    };
    item[field].as_str().unwrap_or_default().to_string()
}

/// tmux names a window after the program running in it, one
/// `window-renamed` for each program run: the timeline folds those out
/// (saying how many) and keeps renames made with `rename-window`.
#[test]
fn automatic_window_renames_are_folded_out_of_the_timeline_and_manual_ones_kept() {
    let sb = Sandbox::new();
    let (tmux, pane) = Tmux::start(&sb, "sh");
    tmux.run(&["set-option", "-g", "automatic-rename", "on"]);
    tmux.load_audit_config(&sb);
    // A program run: tmux renames the window after it by itself.
    pane.line("cat");
    sb.wait_events("an automatic rename", |e| {
        // With no client attached, tmux runs the hooks of an automatic
        // rename only when a command comes in: one, each time round.
        tmux.run(&["display-message", "-p", ""]);
        e.iter()
            .any(|e| e.event == "window-renamed" && e.window_name.as_deref() == Some("cat"))
    });
    tmux.run(&["rename-window", "-t", &pane.id, "logs"]);
    tmux.settle_events(&sb);
    let events = sb.events();
    let renames: Vec<(Option<&str>, Option<bool>)> = events
        .iter()
        .filter(|e| e.event == "window-renamed")
        .map(|e| (e.window_name.as_deref(), e.automatic_rename))
        .collect();
    assert!(renames.contains(&(Some("cat"), Some(true))), "{renames:?}");
    assert!(
        renames.contains(&(Some("logs"), Some(false))),
        "{renames:?}"
    );

    let renamed = |args: &[&str]| -> Vec<(String, Option<bool>)> {
        let mut all = vec!["timeline", "--pane", pane.id.as_str(), "--format", "json"];
        all.extend(args);
        let (ok, out) = sb.run(&all);
        assert!(ok, "{out}");
        json(&out)
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["event"] == "window-renamed")
            .map(|i| {
                (
                    i["window_name"].as_str().unwrap().to_string(),
                    i["automatic_rename"].as_bool(),
                )
            })
            .collect()
    };
    assert_eq!(renamed(&[]), [("logs".to_string(), Some(false))]);
    let all = renamed(&["--renames"]);
    assert!(all.contains(&("cat".to_string(), Some(true))), "{all:?}");
    assert!(all.contains(&("logs".to_string(), Some(false))), "{all:?}");

    let (ok, table) = sb.run(&["timeline", "--pane", &pane.id]);
    assert!(ok, "{table}");
    assert!(table.contains("logs"), "{table}");
    assert!(
        table.contains("automatic window rename") && table.contains("--renames"),
        "{table}"
    );

    // Local times, the zone named in the header.
    let out = sb
        .cmd()
        .args(["timeline", "--pane", &pane.id])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("time (+09:00)"), "{table}");
}

/// Two servers that each had a session `work`: the timeline keeps them
/// apart (a server column; JSON names the socket and pid of each item),
/// and `--server` takes one.
#[test]
fn the_timeline_keeps_two_servers_with_the_same_session_name_apart() {
    let sb = Sandbox::new();
    let servers: Vec<(Tmux, crate::support::Pane)> =
        (0..2).map(|_| Tmux::start(&sb, "cat")).collect();
    for (tmux, _) in &servers {
        tmux.load_audit_config(&sb);
        tmux.run(&["new-session", "-d", "-s", "work", "cat"]);
    }
    sb.wait_events("two sessions called work", |e| {
        e.iter()
            .filter(|e| e.event == "session-created" && e.session_name.as_deref() == Some("work"))
            .count()
            == 2
    });

    let (ok, out) = sb.run(&["timeline", "--session", "work", "--format", "json"]);
    assert!(ok, "{out}");
    let items = json(&out);
    let mut pids: Vec<i64> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["tmux_server_pid"]
                .as_i64()
                .expect("a server pid per item")
        })
        .collect();
    pids.sort();
    pids.dedup();
    let mut want: Vec<i64> = servers.iter().map(|(t, _)| t.server_pid()).collect();
    want.sort();
    assert_eq!(pids, want, "{out}");
    let created = &items.as_array().unwrap()[0];
    for field in [
        "tmux_socket",
        "session_id",
        "session_name",
        "event",
        "time",
        "user",
    ] {
        assert!(!created[field].is_null(), "{field} in {created}");
    }

    let (ok, table) = sb.run(&["timeline", "--session", "work"]);
    assert!(ok, "{table}");
    let header = table.lines().nth(1).unwrap_or_default();
    assert!(header.contains("server"), "{table}");
    for (tmux, _) in &servers {
        assert!(table.contains(&tmux.server_pid().to_string()), "{table}");
    }

    let first = &servers[0].0;
    let (ok, out) = sb.run(&[
        "timeline",
        "--session",
        "work",
        "--server",
        first.socket_name(),
        "--format",
        "json",
    ]);
    assert!(ok, "{out}");
    assert!(
        json(&out)
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["tmux_server_pid"] == first.server_pid()),
        "{out}"
    );
    let out = sb
        .cmd()
        .args(["timeline", "--session", "work", "--server", "nope"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no tmux server with socket \"nope\""), "{err}");
}

/// `search` and `report` find a session by any name it had (also once its
/// server is gone), a window by `SESSION:INDEX` or `@ID`, and the commands
/// typed by a user.
#[test]
fn search_and_report_filter_by_past_session_names_windows_and_typist() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    tmux.load_audit_config(&sb);
    let new_pane = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-P", "-F", "#{pane_id} #{session_id} #{window_id}", "cat"]);
        let out = tmux.run(&all);
        let parts: Vec<String> = out.split(' ').map(str::to_string).collect();
        (parts[0].clone(), parts[1].clone(), parts[2].clone())
    };
    let (pane_a, session, window_a) = new_pane(&["new-session", "-d", "-s", "work"]);
    let (pane_b, _, window_b) = new_pane(&["new-window", "-d", "-t", "work"]);
    tmux.settle_events(&sb);
    let socket = tmux.socket_path();
    let tmux_env = format!(
        "{socket},{},{}",
        tmux.server_pid(),
        session.trim_start_matches('$')
    );
    let record = |seq: &str, pane: &str, text: &str| sb.record_in_pane(seq, text, &tmux_env, pane);
    record("1", &pane_a, "echo in-a");
    record("2", &pane_b, "echo in-b");
    tmux.run(&["rename-session", "-t", "work", "prod"]);
    sb.wait_events("the rename", |e| has(e, "session-renamed", "prod"));
    record("3", &pane_a, "echo after-rename");
    drop(tmux); // no server to ask: the names come from the events

    let found = |args: &[&str]| -> (Option<i32>, String, String) {
        let mut all = vec!["search", "--format", "cmd"];
        all.extend(args);
        let out = sb.cmd().args(&all).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let all_three = "echo in-a\necho in-b\necho after-rename\n";
    for name in ["work", "prod", session.as_str()] {
        let (code, out, err) = found(&["--session", name]);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), all_three),
            "--session {name}: {err}"
        );
    }
    let (code, _, err) = found(&["--session", "nope"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no tmux session named \"nope\""), "{err}");

    let window_b_index = "work:1";
    for window in [window_b_index, "prod:1", window_b.as_str()] {
        let (code, out, err) = found(&["--window", window]);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "echo in-b\n"),
            "--window {window}: {err}"
        );
    }
    let (code, out, err) = found(&["--window", &window_a]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "echo in-a\necho after-rename\n"),
        "{err}"
    );
    let (code, _, err) = found(&["--window", "work:7"]);
    assert_eq!(code, Some(2), "{err}");

    let me = sb.rows()[0].user.clone();
    let (code, out, _) = found(&["--typed-by", &me]);
    assert_eq!((code, out.as_str()), (Some(0), all_three));
    let (code, out, _) = found(&["--typed-by", "nobody-typed-this", "--window", "work:1"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));

    let out = sb
        .cmd()
        .args([
            "report", "--by", "user", "--window", "work:1", "--format", "json",
        ])
        .output()
        .unwrap();
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report[0]["commands"], 1, "{report}");
    let out = sb
        .cmd()
        .args([
            "report",
            "--by",
            "user",
            "--session",
            "work",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report[0]["commands"], 3, "{report}");
}

/// tmux 3.3 has no hook for join-pane, move-pane, swap-pane or break-pane,
/// and after-kill-pane names another pane: the window-layout changes tell
/// where a pane went, so its later commands are placed in its new window,
/// and a killed pane leaves a `pane-closed` event.
#[test]
fn joined_broken_and_killed_panes_are_followed() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    tmux.load_audit_config(&sb);
    let made = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-P", "-F", "#{pane_id}", "cat"]);
        tmux.run(&all)
    };
    made(&["new-session", "-d", "-s", "work"]);
    let moving = made(&["new-window", "-d", "-t", "work"]);
    tmux.settle_events(&sb);
    // With no client attached, tmux runs these hooks when a command comes in.
    let wait_for = |what: &str, pane: &str| {
        sb.wait_events(what, |e| {
            tmux.run(&["display-message", "-p", ""]);
            e.iter()
                .any(|e| e.event == what && e.pane.as_deref() == Some(pane))
        })
    };
    let session = tmux.run(&["display-message", "-p", "-t", "work", "#{session_id}"]);
    let tmux_env = format!(
        "{},{},{}",
        tmux.socket_path(),
        tmux.server_pid(),
        session.trim_start_matches('$')
    );
    let record = |seq: &str, text: &str| sb.record_in_pane(seq, text, &tmux_env, &moving);
    record("1", "echo in-window-1");

    tmux.run(&["join-pane", "-d", "-s", &moving, "-t", "work:0"]);
    let events = wait_for("pane-moved", &moving);
    let moved = events.iter().find(|e| e.event == "pane-moved").unwrap();
    assert_eq!(moved.window_index, Some(0), "{:?}", moved.stored);
    record("2", "echo joined-to-window-0");

    tmux.run(&["break-pane", "-d", "-s", &moving]);
    sb.wait_events("a second move", |e| {
        tmux.run(&["display-message", "-p", ""]);
        e.iter().filter(|e| e.event == "pane-moved").count() == 2
    });
    record("3", "echo broken-out");

    tmux.run(&["kill-pane", "-t", &moving]);
    wait_for("pane-closed", &moving);

    let (ok, out) = sb.run(&["search", "--format", "json"]);
    assert!(ok, "{out}");
    let windows: Vec<(String, i64)> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_string(),
                r["tmux_window_index"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        windows[0],
        ("echo in-window-1".to_string(), 1),
        "{windows:?}"
    );
    assert_eq!(
        windows[1],
        ("echo joined-to-window-0".to_string(), 0),
        "{windows:?}"
    );
    assert!(
        windows[2].1 >= 1,
        "broken out into a window of its own: {windows:?}"
    );

    let (ok, out) = sb.run(&["timeline", "--pane", &moving, "--format", "json"]);
    assert!(ok, "{out}");
    let events: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].as_str().unwrap().to_string())
        .collect();
    let at = |name: &str| {
        events
            .iter()
            .position(|e| e == name)
            .unwrap_or_else(|| panic!("{name} in {events:?}"))
    };
    assert!(at("pane-moved") < at("pane-closed"), "{events:?}");
}

/// `init tmux` records every pane and every attached client the server
/// shows (its listing once stopped after the first item).
#[test]
fn init_tmux_sees_every_pane_of_the_server() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    tmux.run(&["new-session", "-d", "-s", "second", "cat"]);
    tmux.run(&["split-window", "-d", "-t", "second", "cat"]);
    let panes = tmux.run(&["list-panes", "-a", "-F", "#{pane_id}"]);
    let mut want: Vec<&str> = panes.lines().collect();
    want.sort();
    assert_eq!(want.len(), 3, "{panes}");
    tmux.load_audit_config(&sb);
    let events = sb.wait_events("the state at init", |e| {
        e.iter().filter(|e| e.event == "seen").count() >= 3
    });
    let mut seen: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "seen")
        .filter_map(|e| e.pane.as_deref())
        .collect();
    seen.sort();
    assert_eq!(seen, want);
}

/// Without `init tmux` no event names a session, but the running tmux
/// server knows its name: `search --session NAME` and `report` asked from
/// inside that server find its commands; with the server gone the name
/// means nothing.
#[test]
fn a_session_of_the_running_server_is_found_by_name_without_events() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "unrecorded",
        "-P",
        "-F",
        "#{pane_id} #{session_id}",
        "cat",
    ]);
    let (pane, session) = out.split_once(' ').unwrap();
    let tmux_env = format!(
        "{},{},{}",
        tmux.socket_path(),
        tmux.server_pid(),
        session.trim_start_matches('$')
    );
    let inside = [
        ("TMUX", Some(std::ffi::OsStr::new(&tmux_env))),
        ("TMUX_PANE", Some(std::ffi::OsStr::new(pane))),
    ];
    let out = sb.record_with(
        b"echo in-unrecorded",
        &crate::support::numbered("1"),
        &inside,
    );
    assert!(out.status.success(), "{}", sb.log());
    assert!(sb.events().is_empty(), "no tmux event was recorded");
    let run = |args: &[&str]| {
        let mut cmd = sb.cmd();
        cmd.args(args).env("TMUX", &tmux_env).env("TMUX_PANE", pane);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["search", "--session", "unrecorded", "--format", "cmd"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "echo in-unrecorded\n"),
        "{err}"
    );
    let (code, out, err) = run(&["report", "--session", "unrecorded", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"commands\": 1"), "{out}");
    drop(tmux);
    let (code, _, err) = run(&["search", "--session", "unrecorded"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no tmux session named \"unrecorded\""),
        "{err}"
    );
}
