//! A tmux session shared by two real Unix users: each command is
//! attributed to the user whose client typed it. Needs root (to create
//! the users); elsewhere it says it is skipped and why, unless
//! TMUX_AUDIT_REQUIRE_USER_TESTS=1 (as in CI) makes that a failure.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::{events_in, rows_in, EventRow, Sandbox, Tmux, PATIENCE};
use crate::users::{as_user, KillServer, SharedDirs, Users};

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn in_a_shared_session_each_command_is_attributed_to_the_user_who_typed_it() {
    let Some(users) = Users::create_or_skip(&["a", "b"]) else {
        return;
    };
    let (alice, bob) = (users.0[0].as_str(), users.0[1].as_str());
    // A directory both users can reach: the binary, the owner's files and the socket.
    let shared = SharedDirs::new("ta-shared", alice);
    let (bin, home, sockets) = (&shared.bin, &shared.home, &shared.sockets);
    let rc = home.join("bashrc");
    fs::write(
        &rc,
        format!("PS1='READY$ '\neval \"$('{}' init bash)\"\n", bin.display()),
    )
    .unwrap();
    let db: PathBuf = home.join("history.db");
    let socket = sockets.join("shared");
    let socket = socket.to_str().unwrap();
    let env: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", home.display().to_string()),
        ("XDG_STATE_HOME", home.join("state").display().to_string()),
        ("TMUX_AUDIT_DB", db.display().to_string()),
        ("TERM", "xterm-256color".into()),
        ("LANG", "C.UTF-8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let tmux = |args: &[&str]| {
        let mut all = vec!["-S", socket, "-f", "/dev/null"];
        all.extend_from_slice(args);
        let out = as_user(
            alice,
            &env,
            Path::new("/usr/bin/env"),
            &[&["tmux"][..], &all].concat(),
        );
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Alice's server, with the hooks, and access for Bob.
    let shell = format!("bash --noprofile --rcfile {} -i", rc.display());
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "pair",
        "-x",
        "120",
        "-y",
        "30",
        &shell,
    ]);
    let _server = KillServer(alice, socket.to_string());
    tmux(&["run-shell", &format!("{} init tmux", bin.display())]);
    tmux(&["server-access", "-a", bob]);
    fs::set_permissions(socket, fs::Permissions::from_mode(0o666)).unwrap();

    // Each user attaches a real client, in a pane (a pty) of another server.
    let sb = Sandbox::new();
    let attach = |user: &str| {
        format!("runuser -u {user} -- env -i TERM=xterm-256color tmux -S {socket} attach -t pair")
    };
    // What Alice's tmux-audit sees: her spool moved into her database.
    let flush = || assert!(as_user(alice, &env, bin, &["flush"]).status.success());
    let wait_events = |what: &str, done: &dyn Fn(&[EventRow]) -> bool| {
        let start = std::time::Instant::now();
        loop {
            flush();
            let events = events_in(&db);
            if done(&events) {
                return events;
            }
            assert!(start.elapsed() < PATIENCE, "no {what}: {events:#?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let attached = |e: &[EventRow], user: &str| {
        e.iter()
            .any(|e| e.event == "client-attached" && e.client_user.as_deref() == Some(user))
    };
    // Alice first, then Bob: tmux makes the client that attached last the
    // latest one of the window without a client-active event.
    let (outer, alice_client) = Tmux::start(&sb, &attach(alice));
    wait_events("alice attached", &|e| attached(e, alice));
    let bob_client = outer.split(&attach(bob));
    wait_events("bob attached", &|e| attached(e, bob));
    alice_client.wait_for("READY", 1);
    bob_client.wait_for("READY", 1);

    // tmux also makes a client the latest when its terminal is resized
    // (the panes holding them were just laid out): let that settle first,
    // until no event has come for half a second.
    let mut seen = (events_in(&db).len(), std::time::Instant::now());
    while seen.1.elapsed() < std::time::Duration::from_millis(500) {
        flush();
        let now = events_in(&db).len();
        if now != seen.0 {
            seen = (now, std::time::Instant::now());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Each types in turn. Enter waits for tmux to report the typist as the
    // latest client: a person takes longer to type a command than the hook
    // takes to run. By the client's name: tmux gives a hook the user of the
    // event's client only when that client is also its target, not always.
    let client_of = |e: &[EventRow], user: &str| {
        e.iter()
            .find(|e| e.event == "client-attached" && e.client_user.as_deref() == Some(user))
            .and_then(|e| e.client_name.clone())
    };
    let latest_is = |e: &[EventRow], user: &str| {
        let latest = e
            .iter()
            .filter(|e| e.event == "client-active" || e.event == "client-attached")
            .max_by_key(|e| (e.at_us, e.id));
        latest.is_some_and(|l| l.client_name.is_some() && l.client_name == client_of(e, user))
    };
    for (n, (client, user, text)) in [
        (&alice_client, alice, "echo typed-by-alice"),
        (&bob_client, bob, "echo typed-by-bob"),
        (&alice_client, alice, "echo alice-again"),
    ]
    .into_iter()
    .enumerate()
    {
        client.type_text(text);
        wait_events("the typist as the latest client", &|e| latest_is(e, user));
        client.key("Enter");
        let start = std::time::Instant::now();
        while {
            flush();
            rows_in(&db).len() <= n
        } {
            assert!(start.elapsed() < PATIENCE, "{text} was not recorded");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    let found = json(&as_user(alice, &env, bin, &["search", "--format", "json"]));
    let typed_by = |command: &str| {
        let row = found
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["command"] == command)
            .unwrap_or_else(|| panic!("{command} in {found}"));
        // Compared sorted by user: the list is in the order of the clients'
        // names, and which pty each client gets is not the test's to say
        // (alice on /dev/pts/9 comes after bob on /dev/pts/10).
        let mut attached: Vec<String> = row["attached"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().split(' ').next().unwrap().to_string())
            .collect();
        attached.sort();
        (
            row["typed_by"].as_str().unwrap_or("none").to_string(),
            attached,
        )
    };
    let mut both = vec![alice.to_string(), bob.to_string()];
    both.sort();
    assert_eq!(
        typed_by("echo typed-by-alice"),
        (alice.to_string(), both.clone())
    );
    assert_eq!(
        typed_by("echo typed-by-bob"),
        (bob.to_string(), both.clone())
    );
    assert_eq!(typed_by("echo alice-again"), (alice.to_string(), both));

    // The session's attach intervals name both, and a report counts per typist.
    let sessions = json(&as_user(
        alice,
        &env,
        bin,
        &["sessions", "--format", "json"],
    ));
    let users: Vec<&str> = sessions[0]["attaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"].as_str().unwrap())
        .collect();
    assert!(users.contains(&alice) && users.contains(&bob), "{sessions}");
    let report = json(&as_user(
        alice,
        &env,
        bin,
        &["report", "--by", "client-user", "--format", "json"],
    ));
    let count = |user: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == user)
            .map(|r| r["commands"].as_i64().unwrap())
    };
    assert_eq!((count(alice), count(bob)), (Some(2), Some(1)), "{report}");
    // Who typed what, as a filter: the commands bob typed in alice's shell.
    let bobs = as_user(
        alice,
        &env,
        bin,
        &["search", "--typed-by", bob, "--format", "cmd"],
    );
    assert_eq!(String::from_utf8_lossy(&bobs.stdout), "echo typed-by-bob\n");
    let bobs = json(&as_user(
        alice,
        &env,
        bin,
        &[
            "timeline",
            "--session",
            "pair",
            "--typed-by",
            bob,
            "--format",
            "json",
        ],
    ));
    let commands: Vec<&str> = bobs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["command"].as_str())
        .collect();
    assert_eq!(commands, ["echo typed-by-bob"], "{bobs}");
}
