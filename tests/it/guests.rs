//! Hostile tmux guests. Users given access to someone's tmux server
//! (`server-access`) choose some of what tmux hands the hooks of `init
//! tmux`: their `TERM` (`client_termname`), and, with write access, the
//! names of sessions and windows. None of it may run a command as the
//! server's owner, add or replace a field, or change who an event is
//! attributed to; every value is stored as tmux holds it.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{events_in, EventRow, PATIENCE};
use crate::users::{as_user, KillServer, SharedDirs, Users};

/// A value as one argument of tmux's command language: in double quotes,
/// with `\`, `"` and `$` escaped, and `#` doubled (rename-session and
/// rename-window expand formats in the new name).
fn tmux_word(text: &str) -> String {
    let mut word = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' | '"' | '$' => {
                word.push('\\');
                word.push(c);
            }
            '#' => word.push_str("##"),
            '\t' => word.push_str("\\t"),
            _ => word.push(c),
        }
    }
    word.push('"');
    word
}

fn uid_of(user: &str) -> i64 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn a_hostile_guest_can_neither_run_commands_nor_forge_fields_through_the_hooks() {
    let Some(users) = Users::create_or_skip(&["go", "gr", "gw"]) else {
        return;
    };
    let (alice, bob, carol) = (&users.0[0], &users.0[1], &users.0[2]);
    let shared = SharedDirs::new("ta-guests", alice);
    let dir = shared.dir.path();
    let (bin, home, sockets) = (&shared.bin, &shared.home, &shared.sockets);
    // Where the guests can write: an injected command would leave a file.
    let writable = dir.join("writable");
    fs::create_dir(&writable).unwrap();
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o1777)).unwrap();
    let d = writable.display();

    let db = home.join("history.db");
    let socket = sockets.join("guests");
    let socket = socket.to_str().unwrap();
    let env: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", home.display().to_string()),
        ("XDG_STATE_HOME", home.join("state").display().to_string()),
        ("TMUX_AUDIT_DB", db.display().to_string()),
        ("LANG", "C.UTF-8".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let tmux = |args: &[&str]| {
        let all = [&["tmux", "-S", socket, "-f", "/dev/null"][..], args].concat();
        let out = as_user(alice, &env, Path::new("/usr/bin/env"), &all);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "pair",
        "-x",
        "80",
        "-y",
        "24",
        "cat",
    ]);
    let _server = KillServer(alice, socket.to_string());
    tmux(&["server-access", "-a", "-r", bob]);
    tmux(&["server-access", "-a", "-w", carol]);
    fs::set_permissions(socket, fs::Permissions::from_mode(0o666)).unwrap();
    let attach = |guest: &str, term: &[u8], read_only: bool| {
        let mut term_var = b"TERM=".to_vec();
        term_var.extend_from_slice(term);
        Command::new("runuser")
            .args(["-u", guest, "--", "env", "-i"])
            .arg(OsString::from_vec(term_var))
            .args(["tmux", "-S", socket, "-C", "attach", "-t", "$0"])
            .args(read_only.then_some("-r"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let alice_uid = uid_of(alice);

    let ran = || -> Vec<_> {
        fs::read_dir(&writable)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    let wait_events = |what: &str, done: &dyn Fn(&[EventRow]) -> bool| {
        let start = std::time::Instant::now();
        loop {
            let ran = ran();
            assert!(
                ran.is_empty(),
                "commands ran as the server's owner: {ran:?}"
            );
            assert!(as_user(alice, &env, bin, &["flush"]).status.success());
            let events = events_in(&db);
            if done(&events) {
                return events;
            }
            assert!(start.elapsed() < PATIENCE, "no {what}: {events:#?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let attaches = |e: &[EventRow]| e.iter().filter(|e| e.event == "client-attached").count();

    // A guest already attached when `init tmux` lists the clients, with a
    // TERM shaped like more of that listing: a client of the owner's.
    let early_term =
        format!("xterm\tpair\n$0\t1\t{alice_uid}\t/dev/pts/99\t/dev/pts/99\t{alice}\txterm\tpair");
    let early = attach(bob, early_term.as_bytes(), true);
    let start = std::time::Instant::now();
    while tmux(&["list-clients"]).is_empty() {
        assert!(start.elapsed() < PATIENCE, "the guest did not attach");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tmux(&["run-shell", &format!("{} init tmux", bin.display())]);
    let seen = wait_events("the attached guest seen", &|e| {
        e.iter()
            .any(|e| e.event == "seen" && e.client_name.is_some())
    });
    let seen: Vec<_> = seen
        .iter()
        .filter(|e| e.event == "seen" && e.client_name.is_some())
        .map(|e| {
            (
                e.client_user.as_deref(),
                e.client_uid,
                e.client_termname.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [(Some(bob.as_str()), Some(uid_of(bob)), Some(&*early_term))]
    );
    drop_client(early);

    let terms: Vec<Vec<u8>> = vec![
        // The review's reproduction: a newline ends the hook's command and
        // starts the guest's, a tab splits words.
        format!("xterm\nsh\t-c\tid > {d}/newline").into_bytes(),
        // Later copies of a key replaced the true ones.
        format!("xterm\tclient_user={alice}\tclient_uid={alice_uid}").into_bytes(),
        format!("x'\"$(touch {d}/subst)`touch {d}/tick`;touch {d}/semi;#{{pid}}%1 #(touch {d}/fmt)\\' '")
            .into_bytes(),
        b"x\xff\xfe'y".to_vec(),
    ];
    for (guest, read_only) in [(bob, true), (carol, false)] {
        for term in &terms {
            let before = attaches(&events_in(&db));
            let mut client = attach(guest, term, read_only);
            let events = wait_events("the guest's client-attached", &|e| attaches(e) > before);
            let event = events
                .iter()
                .filter(|e| e.event == "client-attached")
                .max_by_key(|e| e.id)
                .unwrap();
            let term_text = String::from_utf8_lossy(term).into_owned();
            assert_eq!(
                (
                    event.client_user.as_deref(),
                    event.client_uid,
                    event.client_termname.as_deref()
                ),
                (Some(guest.as_str()), Some(uid_of(guest)), Some(&*term_text)),
                "attributed to the guest, with the TERM as given"
            );
            if !read_only && term == &terms[1] {
                // A writing guest names the window and the session: tmux
                // shows tab and newline escaped, keeps the rest.
                let window = format!("w'\"$(touch {d}/w);#(touch {d}/wf)\t{}", "x".repeat(65536));
                let session =
                    format!("s'\"$(touch {d}/s)`touch {d}/st`;touch {d}/ss;#(touch {d}/sf)%1\t");
                let stdin = client.stdin.as_mut().unwrap();
                writeln!(stdin, "rename-window -t pair:0 {}", tmux_word(&window)).unwrap();
                writeln!(stdin, "rename-session -t pair {}", tmux_word(&session)).unwrap();
                stdin.flush().unwrap();
                let name = |format: &str| {
                    let mut out = tmux(&["display-message", "-p", "-t", "$0", format]);
                    assert_eq!(out.pop(), Some(b'\n'));
                    String::from_utf8(out).unwrap()
                };
                let renamed = |e: &[EventRow], expected: &str| {
                    e.iter().any(|e| {
                        e.event == "session-renamed" && e.session_name.as_deref() == Some(expected)
                    })
                };
                let start = std::time::Instant::now();
                let session_now = loop {
                    let now = name("#{session_name}");
                    if now != "pair" {
                        break now;
                    }
                    assert!(start.elapsed() < PATIENCE, "the session was not renamed");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                };
                assert!(session_now.starts_with("s'\"$(touch"), "{session_now}");
                let window_now = name("#{window_name}");
                assert!(window_now.len() > 65536, "tmux kept the whole name");
                wait_events("the hostile names, stored as tmux holds them", &|e| {
                    renamed(e, &session_now)
                        && e.iter().any(|e| {
                            e.event == "window-renamed"
                                && e.window_name.as_deref() == Some(&*window_now)
                        })
                });
            }
            drop_client(client);
        }
    }
    let detached = |e: &[EventRow]| e.iter().filter(|e| e.event == "client-detached").count();
    let events = wait_events("every client detached", &|e| {
        detached(e) == 1 + 2 * terms.len()
    });
    // Nothing is attributed to the server's owner, who attached no client.
    assert!(
        events
            .iter()
            .all(|e| e.client_user.as_deref() != Some(alice.as_str())
                && e.client_uid != Some(alice_uid)),
        "{events:#?}"
    );
    // Every hook process has ended: an injected command would have run.
    let start = std::time::Instant::now();
    while Command::new("pgrep")
        .args(["-u", alice, "-f", " tmux-event "])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(start.elapsed() < PATIENCE, "hooks still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ran = ran();
    assert!(
        ran.is_empty(),
        "commands ran as the server's owner: {ran:?}"
    );
    let verify = as_user(alice, &env, bin, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// Ends a control-mode client: end of input detaches it.
fn drop_client(mut client: std::process::Child) {
    drop(client.stdin.take());
    client.wait().unwrap();
}
