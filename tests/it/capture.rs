//! Per-pane output capture, in a real tmux server with real shells: what
//! `show ID --output` gives back, panes kept apart, secrets redacted
//! before they reach a file, and a killed capture process.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Pane, ProtectedDir, Rc, Row, Sandbox, Shell, Tmux, PATIENCE};

/// A tmux server with capture on (`[capture] enabled = true`) and the
/// documented `init tmux` line loaded.
fn captured_server(sb: &Sandbox) -> Tmux {
    let (tmux, _) = Tmux::start(sb, "cat");
    init_with_capture(sb, &tmux);
    tmux
}

/// Turns capture on in the config file, and runs `init tmux` in `tmux`.
fn init_with_capture(sb: &Sandbox, tmux: &Tmux) {
    init_with_capture_config(sb, tmux, "");
}

/// The same, with `more` (lines of `[capture]`) in the config file.
fn init_with_capture_config(sb: &Sandbox, tmux: &Tmux, more: &str) {
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        format!("[capture]\nenabled = true\n{more}"),
    )
    .unwrap();
    tmux.load_audit_config(sb);
    let start = Instant::now();
    while !tmux.run(&["show-hooks", "-g"]).contains(" capture --pane ") {
        assert!(start.elapsed() < PATIENCE, "the capture hooks never came");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A new pane running `shell` with the hook, captured from its start.
fn shell_pane(sb: &Sandbox, tmux: &Tmux, shell: Shell) -> Pane {
    let pane = tmux.split(&sb.shell(shell, &Rc::default()));
    pane.ready();
    pane
}

/// Waits for the record of the command whose text is `text`.
fn row_of(sb: &Sandbox, text: &str) -> Row {
    let rows = sb.wait_rows(text, |rows| rows.iter().any(|r| r.command == text));
    rows.into_iter().find(|r| r.command == text).unwrap()
}

/// `show ID --output` (and `args`): stdout and stderr.
fn show_output(sb: &Sandbox, id: i64, args: &[&str]) -> (Vec<u8>, String) {
    let (out, stderr, ok) = try_show_output(sb, id, args);
    assert!(ok, "show --output failed: {stderr}");
    (out, stderr)
}

/// `show ID --output` (and `args`): stdout, stderr, and whether it
/// succeeded (it fails while the pane's capture has written nothing yet).
fn try_show_output(sb: &Sandbox, id: i64, args: &[&str]) -> (Vec<u8>, String, bool) {
    let out = sb
        .cmd()
        .args(["show", &id.to_string(), "--output"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.stdout, stderr, out.status.success())
}

/// Waits until `show ID --output` gives `expected` (the capture writes
/// within a fraction of a second of the output, and its first segment a
/// moment after the pane's first output); fails with what it gave.
fn wait_output(sb: &Sandbox, id: i64, expected: &str) {
    let start = Instant::now();
    loop {
        let (out, stderr, ok) = try_show_output(sb, id, &[]);
        if ok && out == expected.as_bytes() {
            return;
        }
        if start.elapsed() > PATIENCE {
            let out = String::from_utf8_lossy(&out);
            let head: String = out.chars().take(300).collect();
            let tail: String = out
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "show {id} --output never gave the expected {} bytes; it gave {} bytes: {head:?} … {tail:?}\nstderr: {stderr}\nlog: {}",
                expected.len(),
                out.len(),
                sb.log()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn lines(prefix: &str, count: usize) -> String {
    (1..=count).map(|n| format!("{prefix}-{n}\n")).collect()
}

fn prints_5000_lines_exactly(shell: Shell) {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, shell);
    let command = match shell {
        Shell::Fish => "printf 'line-%s\\n' (seq 1 5000)",
        _ => "printf 'line-%s\\n' $(seq 1 5000)",
    };
    pane.line(command);
    let row = row_of(&sb, command);
    wait_output(&sb, row.id, &lines("line", 5000));
}

#[test]
fn bash_output_of_5000_lines_comes_back_exactly() {
    prints_5000_lines_exactly(Shell::Bash);
}

#[test]
fn zsh_output_of_5000_lines_comes_back_exactly() {
    prints_5000_lines_exactly(Shell::Zsh);
}

#[test]
fn fish_output_of_5000_lines_comes_back_exactly() {
    prints_5000_lines_exactly(Shell::Fish);
}

#[test]
fn two_panes_printing_at_once_keep_their_streams_apart() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let a = shell_pane(&sb, &tmux, Shell::Bash);
    let b = shell_pane(&sb, &tmux, Shell::Zsh);
    let (cmd_a, cmd_b) = (
        "printf 'a-%s\\n' $(seq 1 20000)",
        "printf 'b-%s\\n' $(seq 1 20000)",
    );
    a.line(cmd_a);
    b.line(cmd_b);
    let (row_a, row_b) = (row_of(&sb, cmd_a), row_of(&sb, cmd_b));
    assert_ne!(row_a.tmux_pane, row_b.tmux_pane);
    wait_output(&sb, row_a.id, &lines("a", 20000));
    wait_output(&sb, row_b.id, &lines("b", 20000));
}

#[test]
fn a_full_screen_program_does_not_break_the_next_commands_output() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    pane.line("vi -u NONE");
    pane.wait_for("~", 3);
    pane.type_text(":q!");
    pane.key("Enter");
    pane.wait_for("READY", 2);
    let command = "printf 'after-%s\\n' $(seq 1 300)";
    pane.line(command);
    let row = row_of(&sb, command);
    wait_output(&sb, row.id, &lines("after", 300));
}

#[test]
fn an_excluded_commands_output_never_reaches_a_file_in_any_shell() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    // The second pattern's `(` means nothing to fish's matching; bash's
    // and zsh's must not take it as their own syntax (zsh printed "bad
    // pattern" at each command).
    init_with_capture_config(
        &sb,
        &tmux,
        "exclude = [\"printf 'hidden*\", \"vault read secret/(prod*\"]\n",
    );
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let pane = shell_pane(&sb, &tmux, shell);
        let name = format!("{shell:?}").to_lowercase();
        // The output's lines (`hidden-bash-7`) are not in the typed text.
        let (hidden, shown) = match shell {
            Shell::Fish => (
                format!("printf 'hidden-{name}-%s\\n' (seq 1 50)"),
                format!("printf 'shown-{name}-%s\\n' (seq 1 50)"),
            ),
            _ => (
                format!("printf 'hidden-{name}-%s\\n' $(seq 1 50)"),
                format!("printf 'shown-{name}-%s\\n' $(seq 1 50)"),
            ),
        };
        pane.line(&hidden);
        let hidden_row = row_of(&sb, &hidden);
        // Not at the start of the line (a leading blank, as for a line
        // kept out of history; another command before it): excluded too.
        pane.line(&format!(
            " true; {}",
            hidden.replace("hidden-", "hidden-b-")
        ));
        pane.line(&shown);
        let shown_row = row_of(&sb, &shown);
        // Written in the order printed: the next command's output there
        // means the excluded one's has been through the capture.
        wait_output(&sb, shown_row.id, &lines(&format!("shown-{name}"), 50));
        let (out, stderr) = show_output(&sb, hidden_row.id, &[]);
        let out = String::from_utf8_lossy(&out);
        // As the pane printed them (each line ends in \r\n), and what
        // the shell prints before its end mark (zsh: PROMPT_SP).
        let printed = lines(&format!("hidden-{name}"), 50).len() + 50;
        let counted: usize = out
            .strip_prefix("[tmux-audit: ")
            .and_then(|rest| {
                rest.strip_suffix(
                    " bytes not captured here: the command matches [capture] exclude]\n",
                )
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {out:?} {stderr}"));
        assert!(
            (printed..printed + 1024).contains(&counted),
            "{name}: {counted} of {printed}"
        );
        assert!(stderr.contains("[capture] exclude"), "{name}: {stderr}");
        let stored = everything_stored(&sb.path().join("data"));
        let in_segments = |text: &str| {
            stored.iter().any(|(p, bytes)| {
                p.extension().is_some_and(|e| e == "seg")
                    && memchr::memmem::find(bytes, text.as_bytes()).is_some()
            })
        };
        assert!(in_segments(&format!("shown-{name}-7\r\n")), "{name}");
        let screen = pane.screen();
        assert!(!screen.contains("bad pattern"), "{name}: {screen}");
        for (path, bytes) in &stored {
            for hidden in [format!("hidden-{name}-7"), format!("hidden-b-{name}-7")] {
                assert!(
                    memchr::memmem::find(bytes, hidden.as_bytes()).is_none(),
                    "{name}: an excluded command's output ({hidden}) is in {}",
                    path.display()
                );
            }
        }
    }
}

/// bash runs a pasted block's lines as commands of their own, with PS0
/// before each and one prompt after the last: each command's output is
/// still its own, an excluded one's included.
#[test]
fn bash_each_command_of_a_pasted_block_has_its_own_output() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    init_with_capture_config(&sb, &tmux, "exclude = [\"printf 'hidden*\"]\n");
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    let block = [
        "printf 'one-%s\\n' $(seq 1 30)",
        "printf 'hidden-%s\\n' $(seq 1 30)",
        "false",
        "printf 'two-%s\\n' $(seq 1 30)",
    ];
    pane.paste(&block.join("\n"));
    pane.key("Enter");
    let two = row_of(&sb, block[3]);
    wait_output(&sb, two.id, &lines("two", 30));
    wait_output(&sb, row_of(&sb, block[0]).id, &lines("one", 30));
    wait_output(&sb, row_of(&sb, "false").id, "");
    let (out, _) = show_output(&sb, row_of(&sb, block[1]).id, &[]);
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.ends_with("bytes not captured here: the command matches [capture] exclude]\n"),
        "{out:?}"
    );
    for (path, bytes) in everything_stored(&sb.path().join("data")) {
        assert!(
            memchr::memmem::find(&bytes, b"hidden-7").is_none(),
            "an excluded command's output is in {}",
            path.display()
        );
    }
}

#[test]
fn bash_exclusion_keeps_the_users_debug_trap_and_its_dollar_underscore() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    init_with_capture_config(&sb, &tmux, "exclude = [\"printf 'hidden*\"]\n");
    // A DEBUG trap of the user's, set before the hook loads, that keeps
    // `$_` as bash-preexec's does (an assignment alone would clear it).
    let rc = Rc::default().before(
        "user_trap() { user_debug=$((${user_debug:-0} + 1)); }\n\
         trap 'user_trap \"$_\"' DEBUG\nerrs=0\ntrap 'errs=$((errs + 1))' ERR\nset -u",
    );
    let pane = tmux.split(&sb.shell(Shell::Bash, &rc));
    pane.ready();
    pane.line("false; echo \"status=$?\"; mkdir -p \"$HOME/made\" && echo \"last=${_##*/}\"");
    pane.wait_for("last=made", 1);
    pane.wait_for("status=1", 1);
    // The user's trap ran for each of these simple commands.
    pane.line("before=$user_debug; true; true; echo \"ran=$((user_debug - before > 2))\"");
    pane.wait_for("ran=1", 1);
    let command = "printf 'hidden-%s\\n' one two; echo \"shown=yes\"";
    pane.line(command);
    pane.wait_for("shown=yes", 1);
    let hidden = row_of(&sb, command);
    let start = Instant::now();
    loop {
        let (out, stderr) = show_output(&sb, hidden.id, &[]);
        let out = String::from_utf8_lossy(&out);
        if out.contains("not captured here") {
            // Excluded from `printf` on: `echo`'s line too.
            assert!(!out.contains("hidden-") && !out.contains("shown="), "{out}");
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "never excluded: {out:?} {stderr}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    // The chained traps hand `$?` on without failing themselves: one ERR
    // for one failed command, and `set -e` ends no shell for a failure an
    // `||` handles.
    pane.line("e0=$errs; false; echo \"errs=$((errs - e0))x\"");
    pane.wait_for("errs=1x", 1);
    pane.line("set -e; false || echo \"survived=$((1 + 1))\"; set +e");
    pane.wait_for("survived=2", 1);
}

#[test]
fn a_full_disk_keeps_the_pane_working_records_the_gap_and_capture_resumes() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "under CI this test runs as root: it fills a tmpfs it mounts"
        );
        eprintln!("skipped: filling a disk needs root here (mount -t tmpfs)");
        return;
    }
    let sb = Sandbox::new();
    let data = sb.path().join("data/tmux-audit");
    fs::create_dir_all(&data).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    }
    // The capture directory alone on a small disk of its own (the
    // database beside it keeps working); declared first, dropped last.
    let disk = ProtectedDir::new(&data.join("history.db-capture"));
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    pane.line("echo before");
    let before = row_of(&sb, "echo before");
    wait_output(&sb, before.id, "before\n");

    // Full: to the last byte a file can take.
    let filler = disk.path.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    for chunk in [1 << 16, 1 << 12, 1] {
        while std::io::Write::write_all(&mut file, &vec![0u8; chunk]).is_ok() {}
    }
    let lost = "printf 'lost-%s\\n' $(seq 1 20000)";
    pane.line(lost);
    // The pane keeps working: its prompt comes back, the next command runs.
    pane.line("echo alive-$((20 + 22))");
    pane.wait_for("alive-42", 1);
    let message = "cannot write its output";
    crate::support::wait_until("the log to say the disk is full", || {
        sb.log().contains(message)
    });

    // Room again: capture goes on by itself.
    drop(file);
    fs::remove_file(&filler).unwrap();
    pane.line("echo after-full");
    let after = row_of(&sb, "echo after-full");
    wait_output(&sb, after.id, "after-full\n");
    let lost = row_of(&sb, lost);
    let (_, stderr) = show_output(&sb, lost.id, &[]);
    // Told for the command whose output it was, by when that was read:
    // the GAP record itself is written only once there is room again.
    // (How much is lost depends on how far the capture had got when
    // the room came back: more than nothing, as it failed before that.)
    let counted: u64 = stderr
        .split("tmux-audit: gap: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no gap told: {stderr}"));
    assert!(counted > 0, "{stderr}");
    assert_eq!(sb.log().matches(message).count(), 1, "{}", sb.log());
    drop(tmux);
}

/// Every file under the sandbox's data directory, segments decompressed.
fn everything_stored(data: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = fs::read(&path).unwrap();
            if path.extension().is_some_and(|e| e == "seg") {
                let mut plain = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut zstd::stream::read::Decoder::new(&bytes[..]).unwrap(),
                    &mut plain,
                );
                found.push((path.clone(), plain));
            }
            found.push((path, bytes));
        }
    }
    found
}

#[test]
fn secrets_printed_are_redacted_in_every_file() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    // Typed in pieces, so that only the output holds the secrets whole.
    let key = "printf 'aws_key AKIA%s\\n' IOSFODNN7EXAMPLQ";
    pane.line(key);
    // The next line is typed only once this command has ended: typed
    // ahead, the terminal would echo it into this command's output.
    let row = row_of(&sb, key);
    let pem = "printf -- '-----BEGIN RSA %s KEY-----\\nMIIEowIB%s\\nVLPHCozM%s\\n-----END RSA %s KEY-----\\n' PRIVATE AAKCAQEAu1SU1Lf xH2Mo4lgOEePzNm0tR PRIVATE";
    pane.line(pem);
    wait_output(&sb, row.id, "aws_key [REDACTED]\n");
    let row = row_of(&sb, pem);
    let start = Instant::now();
    loop {
        let (out, _) = show_output(&sb, row.id, &[]);
        let out = String::from_utf8_lossy(&out);
        if out.contains("[REDACTED]") {
            assert!(!out.contains("MIIEowIBAAKCAQEAu1SU1Lf"), "{out}");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never redacted: {out}");
        thread::sleep(Duration::from_millis(50));
    }
    let stored = everything_stored(&sb.path().join("data"));
    assert!(stored
        .iter()
        .any(|(p, _)| p.extension().is_some_and(|e| e == "seg")));
    for (path, bytes) in stored {
        for secret in [
            "AKIAIOSFODNN7EXAMPLQ",
            "MIIEowIBAAKCAQEAu1SU1Lf",
            "VLPHCozMxH2Mo4lgOEePzNm0tR",
        ] {
            assert!(
                memchr::memmem::find(&bytes, secret.as_bytes()).is_none(),
                "{secret} is in {}",
                path.display()
            );
        }
    }
}

/// A secret's value as the last thing a command prints, without a
/// newline (`cat .env`): redacted, and the hook's end mark right after it
/// is not taken for part of the value, so the command's output ends there.
#[test]
fn a_value_printed_without_a_newline_is_redacted_and_the_output_ends_there() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    // The command line itself holds no secret to redact.
    let command = "printf 'DB_PASS%s=%s' WORD hunter2";
    pane.line(command);
    let row = row_of(&sb, command);
    pane.line("echo after-it");
    row_of(&sb, "echo after-it");
    wait_output(&sb, row.id, "DB_PASSWORD=[REDACTED]");
}

#[test]
fn segments_are_private_and_one_capture_process_stays_small() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    let command = "printf 'line-%s\\n' $(seq 1 100000)";
    pane.line(command);
    let row = row_of(&sb, command);
    // Over the per-command cap: its head and tail come back.
    let start = Instant::now();
    while !show_output(&sb, row.id, &[])
        .0
        .ends_with(b"\nline-100000\n")
    {
        assert!(start.elapsed() < PATIENCE, "the output never ended");
        thread::sleep(Duration::from_millis(50));
    }
    use std::os::unix::fs::PermissionsExt;
    let root = sb.path().join("data/tmux-audit/history.db-capture");
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for (path, _) in everything_stored(&root) {
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let capture = capture_process(&sb, &pane.id);
    let status = fs::read_to_string(format!("/proc/{}/status", capture.pid)).unwrap();
    // What each captured pane costs: its process's own memory (the
    // binary's pages are shared by all of them, and by every hook).
    let anon_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        anon_kb < 5 * 1024,
        "memory of a capture process: {anon_kb} kB"
    );
}

fn capture_process(sb: &Sandbox, pane: &str) -> crate::support::Process {
    let needle = format!(" capture --pane {pane} ");
    let start = Instant::now();
    loop {
        if let Some(p) = sb
            .processes()
            .into_iter()
            .find(|p| p.tmux_audit && p.cmdline.contains(&needle))
        {
            return p;
        }
        assert!(start.elapsed() < PATIENCE, "no capture process for {pane}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_capture_leaves_the_pane_working_and_the_gap_shown() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    pane.line("echo before");
    let before = row_of(&sb, "echo before");
    wait_output(&sb, before.id, "before\n");
    let capture = capture_process(&sb, &pane.id);
    // SAFETY: plain kill(2) of a process of this test's tmux server.
    unsafe { libc::kill(capture.pid, libc::SIGKILL) };
    pane.line("echo after-kill");
    pane.wait_for("READY", 3);
    let after = row_of(&sb, "echo after-kill");
    let (out, stderr) = show_output(&sb, after.id, &[]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(stderr.contains("capture of this pane stopped"), "{stderr}");
    // What was captured before stays.
    assert_eq!(show_output(&sb, before.id, &[]).0, b"before\n");
}

#[test]
fn a_pane_with_a_pipe_of_the_users_is_left_alone_and_doctor_says_so() {
    let sb = Sandbox::new();
    let (tmux, theirs) = Tmux::start(&sb, "cat");
    let log = sb.path().join("their-own.log");
    tmux.run(&[
        "pipe-pane",
        "-t",
        &theirs.id,
        &format!("cat >> '{}'", log.display()),
    ]);
    init_with_capture(&sb, &tmux);
    let ours = tmux.split("cat");
    capture_process(&sb, &ours.id);
    // The user's pipe still gets the pane's output.
    theirs.line("still-theirs");
    let start = Instant::now();
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("still-theirs")
    {
        assert!(
            start.elapsed() < PATIENCE,
            "the user's pipe-pane got nothing"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !sb.processes().iter().any(|p| p
            .cmdline
            .contains(&format!(" capture --pane {} ", theirs.id))),
        "their pane must not be captured"
    );
    let inside = format!("{},{},0", tmux.socket_path(), tmux.server_pid());
    let out = sb
        .cmd()
        .env("TMUX", &inside)
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "FAIL  capture     not captured: {} (its output goes to a pipe-pane of your own",
            theirs.id
        )),
        "{text}"
    );
}

#[test]
fn search_output_finds_the_commands_that_printed_a_text() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    // The text is in no command line, only in what one command printed.
    let printer = "printf 'nee%s\\n' dle-42";
    pane.line(printer);
    pane.line("echo other");
    let row = row_of(&sb, "echo other");
    wait_output(&sb, row.id, "other\n");
    let search = |args: &[&str]| {
        let out = sb.cmd().arg("search").args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        search(&["--output", "needle-42", "--format", "cmd"]),
        (Some(0), format!("{printer}\n"))
    );
    // With the same filters as any search.
    assert_eq!(
        search(&["--output", "needle-42", "--pane", "%999", "--format", "cmd"]),
        (Some(1), String::new())
    );
    assert_eq!(search(&["--output", "no-such-text"]).0, Some(1));

    // The same command twice, printing the text only the first time:
    // `--unique` keeps the newest run that printed it, not the newest run.
    // One at a time: a line typed while a command runs is echoed into
    // its output.
    pane.line("echo needle-77 > n.txt");
    row_of(&sb, "echo needle-77 > n.txt");
    pane.line("cat n.txt");
    row_of(&sb, "cat n.txt");
    pane.line(": > n.txt");
    row_of(&sb, ": > n.txt");
    pane.line("cat n.txt");
    let rows = sb.wait_rows("two runs of cat", |rows| {
        rows.iter().filter(|r| r.command == "cat n.txt").count() == 2
    });
    let first = rows.iter().find(|r| r.command == "cat n.txt").unwrap();
    wait_output(&sb, first.id, "needle-77\n");
    for all in [false, true] {
        let mut args = vec!["--output", "needle-77", "--unique", "--format", "cmd"];
        if all {
            args.push("--all");
        }
        assert_eq!(
            search(&args),
            (Some(0), "cat n.txt\n".to_string()),
            "{args:?}"
        );
    }
    // A limit keeps the newest that printed it, in time order.
    assert_eq!(
        search(&["--output", "needle-", "-n", "1", "--format", "cmd"]),
        (Some(0), "cat n.txt\n".to_string())
    );
    assert_eq!(
        search(&["--output", "needle-", "-n", "2", "--format", "cmd"]),
        (Some(0), format!("{printer}\ncat n.txt\n"))
    );
}

#[test]
fn a_pane_replays_and_exports_as_an_asciicast_that_asciinema_reads() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    let command = "printf 'cast-%s\\n' $(seq 1 50)";
    pane.line(command);
    let row = row_of(&sb, command);
    wait_output(&sb, row.id, &lines("cast", 50));
    let expected = lines("cast", 50).replace('\n', "\r\n");

    // Played here, at a thousand times the speed: the pane's bytes.
    let (ok, played) = sb.run(&["replay", "--pane", &pane.id, "--speed", "1000"]);
    assert!(ok && played.contains(&expected), "{played}");

    let cast = sb.path().join("pane.cast");
    let cast_arg = cast.display().to_string();
    let (ok, _) = sb.run(&["replay", "--pane", &pane.id, "--asciicast", &cast_arg]);
    assert!(ok);
    let text = fs::read_to_string(&cast).unwrap();
    let mut lines_of = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines_of.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let mut last = 0.0;
    let mut joined = String::new();
    for line in lines_of {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = event[0].as_f64().unwrap();
        assert!(t >= last, "times go forward: {line}");
        last = t;
        assert_eq!(event[1], "o");
        joined.push_str(event[2].as_str().unwrap());
    }
    assert!(joined.contains(&expected));
    // `export --format asciicast` writes the same file to its output.
    let (ok, exported) = sb.run(&["export", "--format", "asciicast", "--pane", &pane.id]);
    assert!(ok, "{exported}");
    // The same file, unless the capture took in more since (the prompt
    // after the command): then it follows the replay's last line.
    assert!(
        exported.starts_with(&text),
        "export and replay write one asciicast:\n{exported}\n---\n{text}"
    );
    // An existing file is not overwritten.
    assert!(
        !sb.run(&["replay", "--pane", &pane.id, "--asciicast", &cast_arg])
            .0
    );

    if !crate::support::have("asciinema") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have asciinema (.ci/run installs it)"
        );
        eprintln!("skipped `asciinema cat`: asciinema is not installed");
        return;
    }
    // `asciinema cat` reads /dev/tty: it runs in a tmux window of its own.
    let (out, rc) = (sb.path().join("cat.out"), sb.path().join("cat.rc"));
    tmux.run(&[
        "new-window",
        "-d",
        &format!(
            "asciinema cat '{}' > '{}' 2>&1; echo $? > '{}'",
            cast.display(),
            out.display(),
            rc.display()
        ),
    ]);
    let start = Instant::now();
    while !fs::read_to_string(&rc).is_ok_and(|rc| rc.ends_with('\n')) {
        assert!(start.elapsed() < PATIENCE, "asciinema cat never ended");
        thread::sleep(Duration::from_millis(20));
    }
    let printed = fs::read_to_string(&out).unwrap();
    assert_eq!(fs::read_to_string(&rc).unwrap(), "0\n", "{printed}");
    assert!(printed.contains(&expected), "asciinema cat: {printed}");
}

/// The documented line in `~/.tmux.conf`, with capture on, as a new
/// server starts: there is no pane yet to list, and `init tmux` must still
/// register its hooks and record the server's start.
#[test]
fn init_tmux_in_the_config_of_a_starting_server_works_with_capture_on() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("config.toml"), "[capture]\nenabled = true\n").unwrap();
    let conf = sb.path().join("tmux.conf");
    fs::write(
        &conf,
        format!("run-shell '{} init tmux'\n", sb.bin.display()),
    )
    .unwrap();
    let socket = format!("ta-start-{}", std::process::id());
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .env_clear()
            .envs(sb.env())
            .current_dir(sb.path())
            .args(["-L", &socket, "-f"])
            .arg(&conf)
            .args(args)
            .output()
            .unwrap()
    };
    /// Ends the server however the test ends.
    struct Server<F: Fn(&[&str]) -> std::process::Output>(F);
    impl<F: Fn(&[&str]) -> std::process::Output> Drop for Server<F> {
        fn drop(&mut self) {
            (self.0)(&["kill-server"]);
        }
    }
    let server = Server(tmux);
    let started = (server.0)(&["new-session", "-d", "-x", "80", "-y", "24", "cat"]);
    assert!(started.status.success(), "{started:?}");
    sb.wait_events("the server's start, recorded by init tmux", |e| {
        e.iter().any(|e| e.event == "server-started")
    });
    let log = sb.log();
    assert!(!log.contains("init tmux"), "{log}");
    drop(server);
}

/// Capture turned off again: `init tmux` ends the captures of ours that
/// still run, and the panes' output goes nowhere any more.
#[test]
fn capture_turned_off_ends_the_running_captures() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let piped = |tmux: &Tmux| tmux.run(&["list-panes", "-a", "-F", "#{pane_pipe}"]);
    let start = Instant::now();
    while !piped(&tmux).lines().all(|l| l == "1") {
        assert!(start.elapsed() < PATIENCE, "the panes were never captured");
        thread::sleep(Duration::from_millis(20));
    }
    let config = sb.path().join("config/tmux-audit/config.toml");
    fs::write(&config, "[capture]\nenabled = false\n").unwrap();
    tmux.load_audit_config(&sb);
    let start = Instant::now();
    while !piped(&tmux).lines().all(|l| l == "0") {
        assert!(
            start.elapsed() < PATIENCE,
            "still captured: {}",
            piped(&tmux)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A pane's captured segment once its capture has ended (its pipe closed):
/// `verify` checks it against the SHA-256 sealed in the chain, and names
/// it when it was edited, then when it was deleted.
#[test]
fn verify_names_an_edited_and_a_deleted_segment() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    pane.line("echo sealed-output");
    let row = row_of(&sb, "echo sealed-output");
    wait_output(&sb, row.id, "sealed-output\n");
    // No command: tmux closes the pane's pipe, and its capture ends.
    tmux.run(&["pipe-pane", "-t", &pane.id]);
    let start = Instant::now();
    let verify = || {
        let out = sb.cmd().arg("verify").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    loop {
        let (ok, out) = verify();
        if ok && out.contains("intact: 1 capture segment, as sealed") {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never sealed: {out}");
        thread::sleep(Duration::from_millis(50));
    }
    // A copy of the database without its capture directory: one line that
    // says what is missing; --without-output checks the chains alone.
    let copy = sb.path().join("copy.db");
    rusqlite::Connection::open(&sb.db)
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let verify_copy = |extra: &[&str]| {
        let out = sb
            .cmd()
            .args(["verify", "--db", copy.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = verify_copy(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the captured output of this database is missing")
            && !out.contains("NOT INTACT: capture segment"),
        "{out}"
    );
    let (code, out) = verify_copy(&["--without-output"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("not checked: the captured output (--without-output)"),
        "{out}"
    );
    let root = sb.path().join("data/tmux-audit/history.db-capture");
    // The pane's own segment (the first pane's capture still runs).
    let pane_dir = format!("-{}", &pane.id[1..]);
    let (path, _) = everything_stored(&root)
        .into_iter()
        .find(|(p, _)| {
            p.extension().is_some_and(|e| e == "seg")
                && p.parent().unwrap().to_string_lossy().ends_with(&pane_dir)
        })
        .unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let name = path.strip_prefix(&root).unwrap().display().to_string();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let (ok, out) = verify();
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("NOT INTACT: capture segment {name} "))
            && out.contains("was changed after it was sealed"),
        "{out}"
    );
    fs::remove_file(&path).unwrap();
    let (ok, out) = verify();
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("NOT INTACT: capture segment {name} "))
            && out.contains("was deleted"),
        "{out}"
    );
}

/// `[capture] max_total_mib`: once the segments pass it, the oldest
/// finished one is deleted, its deletion chained first, so `verify`
/// counts it as the budget's and not as tampering.
#[test]
fn the_capture_budget_prunes_the_oldest_segment_and_verify_accepts_it() {
    let sb = Sandbox::new();
    let (tmux, _) = Tmux::start(&sb, "cat");
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        "[capture]\nenabled = true\nmax_total_mib = 1\n",
    )
    .unwrap();
    tmux.load_audit_config(&sb);
    let root = sb.path().join("data/tmux-audit/history.db-capture");
    let segments = || {
        everything_stored(&root)
            .into_iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
            .map(|(p, _)| p)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let verify = || {
        let out = sb.cmd().arg("verify").output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let wait_verify = |wanted: &str| {
        let start = Instant::now();
        loop {
            let (ok, out) = verify();
            if ok && out.contains(wanted) {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "never {wanted:?}: {out}\n{}",
                sb.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    };
    // 1.6 MB of random text (it does not compress under 1 MiB), in four
    // commands, each under the per-command cap; then its pane's capture
    // ends: one finished segment, over the budget alone but the only one.
    let big = shell_pane(&sb, &tmux, Shell::Bash);
    for n in 1..=4 {
        let command = format!("head -c 300000 /dev/urandom | base64 -w 100 # {n}");
        big.line(&command);
        row_of(&sb, &command);
    }
    big.line("echo big-done");
    let done = row_of(&sb, "echo big-done");
    wait_output(&sb, done.id, "big-done\n");
    tmux.run(&["pipe-pane", "-t", &big.id]);
    wait_verify("intact: 1 capture segment, as sealed");
    let before = segments();
    // Another pane's capture ends: the total is over 1 MiB, and the
    // oldest finished segment (the big one) goes.
    let small = shell_pane(&sb, &tmux, Shell::Bash);
    small.line("echo small");
    let row = row_of(&sb, "echo small");
    wait_output(&sb, row.id, "small\n");
    tmux.run(&["pipe-pane", "-t", &small.id]);
    wait_verify("(1 more deleted by the capture budget, as recorded)");
    let after = segments();
    let of_big = |p: &&PathBuf| {
        let dir = p.parent().unwrap().file_name().unwrap().to_string_lossy();
        dir.ends_with(&format!("-{}", &big.id[1..]))
    };
    assert_eq!(before.iter().filter(of_big).count(), 1, "{before:?}");
    assert_eq!(after.iter().filter(of_big).count(), 0, "{after:?}");
}

/// A command printing more than the cap: `show --output` gives its first
/// and last 256 KiB, and says where the rest was, how much, and its hash.
#[test]
fn a_long_output_keeps_its_head_and_tail_and_says_what_was_cut() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    // 1,088,895 bytes of lines (more with the terminal's \r).
    let command = "seq 1 150000";
    pane.line(command);
    let row = row_of(&sb, command);
    let start = Instant::now();
    let (out, stderr) = loop {
        let (out, stderr) = show_output(&sb, row.id, &[]);
        if out.ends_with(b"\n149999\n150000\n") {
            break (String::from_utf8(out).unwrap(), stderr);
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the output never ended: {stderr}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert!(out.starts_with("1\n2\n3\n"), "{}", &out[..50]);
    let cut_at = out
        .find("\n[tmux-audit: ")
        .expect("a line where the cut is")
        + 1;
    let cut_line = out[cut_at..].lines().next().unwrap();
    assert!(cut_line.contains(" bytes not kept here") && cut_line.contains("sha256 "));
    // About 256 KiB before it and after it (the terminal's \r dropped).
    let (head, tail) = (cut_at, out.len() - cut_at - cut_line.len() - 1);
    assert!((200_000..=262_144).contains(&head), "head {head}");
    assert!((200_000..=262_144).contains(&tail), "tail {tail}");
    assert!(
        stderr.contains("over the per-command cap and not kept (sha256 "),
        "{stderr}"
    );
}

/// `replay --session`: every pane of the session that ran a command, one
/// after the other behind its name; `timeline --output-lines`: what each
/// command printed, under it.
#[test]
fn a_session_replays_its_panes_and_the_timeline_shows_what_they_printed() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let a = shell_pane(&sb, &tmux, Shell::Bash);
    let b = shell_pane(&sb, &tmux, Shell::Zsh);
    a.line("echo from-pane-a");
    let row_a = row_of(&sb, "echo from-pane-a");
    b.line("echo from-pane-b");
    let row_b = row_of(&sb, "echo from-pane-b");
    wait_output(&sb, row_a.id, "from-pane-a\n");
    wait_output(&sb, row_b.id, "from-pane-b\n");
    let session = tmux.run(&["display-message", "-p", "-t", &a.id, "#{session_name}"]);
    let out = sb
        .cmd()
        .args(["replay", "--session", session.trim(), "--speed", "1000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = |text: &str| {
        stdout
            .find(text)
            .unwrap_or_else(|| panic!("{text:?} not in {stdout:?}"))
    };
    let (head_a, head_b) = (
        at(&format!("--- tmux-audit: pane {} ", a.id)),
        at(&format!("--- tmux-audit: pane {} ", b.id)),
    );
    assert!(head_a < at("from-pane-a\r\n") && at("from-pane-a\r\n") < head_b);
    assert!(head_b < at("from-pane-b\r\n"));
    // The timeline, with the first line each command printed under it.
    let out = sb
        .cmd()
        .args(["timeline", "--pane", &a.id, "--output-lines", "1"])
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let command_line = table.find("echo from-pane-a").expect("the command");
    let output_line = table.find("│ from-pane-a").expect("its output");
    assert!(command_line < output_line, "{table}");

    // A session never seen: a one-line error.
    let out = sb
        .cmd()
        .args(["replay", "--session", "no-such-session"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no tmux session named \"no-such-session\"") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// A pane closed while its command still prints: its capture process
/// ends (nothing hangs), and what it kept is closed and sealed, the
/// command's tail and the count of what was over the cap included.
#[test]
fn a_pane_closed_mid_output_ends_its_capture_and_seals_its_segment() {
    let sb = Sandbox::new();
    let tmux = captured_server(&sb);
    let pane = shell_pane(&sb, &tmux, Shell::Bash);
    let capture = capture_process(&sb, &pane.id);
    pane.line("seq 1 1000000000");
    // Well past the cap: the screen shows line 200,000 or later.
    let start = Instant::now();
    while !pane
        .screen()
        .lines()
        .any(|l| l.trim().parse::<u64>().is_ok_and(|n| n > 200_000))
    {
        assert!(start.elapsed() < PATIENCE, "seq never got going");
        thread::sleep(Duration::from_millis(20));
    }
    tmux.run(&["kill-pane", "-t", &pane.id]);
    let start = Instant::now();
    while Path::new(&format!("/proc/{}", capture.pid)).exists() {
        let state = fs::read_to_string(format!("/proc/{}/stat", capture.pid)).unwrap_or_default();
        if state.split(' ').nth(2) == Some("Z") {
            break; // ended; its parent (tmux) has not reaped it yet
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the capture process never ended"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    loop {
        let out = sb.cmd().arg("verify").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && stdout.contains("intact: 1 capture segment, as sealed") {
            assert!(!stdout.contains("unsealed"), "{stdout}");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never sealed: {stdout}");
        thread::sleep(Duration::from_millis(50));
    }
}
