//! The recorder a bash, zsh or fish hook starts once when it loads
//! (`tmux-audit recorder`), in real shells inside a real tmux server: what
//! happens when it is killed, when the shell is, with the user's jobs and
//! coprocesses, and across `exec`, subshells and nested shells.

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::{Pane, Process, Rc, Row, Sandbox, Shell, Tmux};

macro_rules! in_bash_and_zsh {
    ($($name:ident),* $(,)?) => {
        mod bash { $( #[test] fn $name() { super::$name(crate::support::Shell::Bash) } )* }
        mod zsh { $( #[test] fn $name() { super::$name(crate::support::Shell::Zsh) } )* }
    };
}

macro_rules! in_fish {
    ($($name:ident),* $(,)?) => {
        mod fish { $( #[test] fn $name() { super::$name(crate::support::Shell::Fish) } )* }
    };
}

in_bash_and_zsh!(
    a_killed_recorder_costs_no_later_command_nor_the_shell_anything,
    a_shell_killed_leaves_no_recorder_and_loses_none_of_its_commands,
    exec_nested_shells_and_subshells_each_keep_one_recorder,
    the_users_coprocess_and_jobs_are_left_alone,
    the_kept_copy_starts_the_recorder_at_the_first_prompt_without_a_job,
    the_recorder_records_the_terminal_while_the_shells_stdin_is_redirected,
    a_debug_trap_that_prints_costs_no_record,
);

in_fish!(
    a_killed_recorder_costs_no_later_command_nor_the_shell_anything,
    a_shell_killed_leaves_no_recorder_and_loses_none_of_its_commands,
    exec_nested_shells_and_subshells_each_keep_one_recorder,
    the_kept_copy_starts_the_recorder_at_the_first_prompt_without_a_job,
);

fn strict(shell: Shell) -> &'static str {
    match shell {
        Shell::Zsh => "setopt nounset",
        Shell::Bash => "set -u",
        Shell::Fish => "", // no such option
    }
}

/// The recorders running in the sandbox.
fn recorders(sb: &Sandbox) -> Vec<Process> {
    let serving: Vec<Process> = sb
        .processes()
        .into_iter()
        .filter(Process::serves_a_shell)
        .collect();
    // A process a recorder forks to start a background merge shows the
    // recorder's own command line until it execs: it is no recorder. (A
    // second recorder started by one would be another shell's: another
    // command line.)
    let fork_image = |r: &Process| {
        serving
            .iter()
            .any(|parent| parent.pid == r.parent && parent.cmdline == r.cmdline)
    };
    serving.iter().filter(|r| !fork_image(r)).cloned().collect()
}

/// Waits until `done(recorders)` holds.
fn wait_recorders(sb: &Sandbox, what: &str, done: impl Fn(&[Process]) -> bool) -> Vec<Process> {
    let start = Instant::now();
    loop {
        let now = recorders(sb);
        if done(&now) {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never {what}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn gone(pid: libc::pid_t) -> bool {
    // A process that has ended has no descriptors, even before it is reaped.
    fs::read_link(format!("/proc/{pid}/fd/0")).is_err()
}

fn wait_gone(pid: libc::pid_t) {
    let start = Instant::now();
    while !gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{pid} never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What process `pid` has read so far, in bytes (`rchar`).
fn bytes_read(pid: libc::pid_t) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Types each line, then waits until `count` rows are stored.
fn type_and_wait(sb: &Sandbox, pane: &Pane, lines: &[&str], count: usize) -> Vec<Row> {
    for line in lines {
        pane.line(line);
    }
    sb.wait_rows(&format!("{count} records"), |rows| rows.len() >= count)
}

fn a_killed_recorder_costs_no_later_command_nor_the_shell_anything(shell: Shell) {
    let sb = Sandbox::new();
    let marks = sb.path().join("marks");
    // A function of the rc file: typed, `!` would be history expansion.
    let marks_function = match shell {
        Shell::Fish => format!(
            "function marks; echo \"[$last_pid]\" \"[\"(count (jobs -p))\"]\" > {}; end",
            marks.display()
        ),
        _ => format!(
            "marks() {{ echo \"[${{!-none}}]\" \"[$(jobs)]\" > {}; }}",
            marks.display()
        ),
    };
    let rc = Rc::default().after(&format!("{}\n{marks_function}", strict(shell)));
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
    pane.ready();
    type_and_wait(&sb, &pane, &["echo first"], 1);
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    // SAFETY: plain kill(2) of a process this test started.
    unsafe { libc::kill(recorder.pid, libc::SIGKILL) };
    wait_gone(recorder.pid);

    let status = sb.path().join("status");
    let rows = type_and_wait(
        &sb,
        &pane,
        &["sh -c 'exit 7'", &shell.status_line(&status), "marks"],
        4,
    );
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "{rows:#?}");
    assert_eq!(rows[1].command, "sh -c 'exit 7'");
    assert_eq!(rows[1].exit_status, Some(7));
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "7 7");
    // zsh's $! is 0 until a job is started; fish's $last_pid is empty.
    let no_job = match shell {
        Shell::Zsh => "[0] []",
        Shell::Bash => "[none] []",
        Shell::Fish => "[] [0]",
    };
    assert_eq!(fs::read_to_string(&marks).unwrap().trim(), no_job);
    let log = sb.log();
    assert!(
        log.contains(&format!(
            "recorder of this shell (pid {}) is gone",
            recorder.pid
        )) && log.matches("hook:").count() == 1,
        "said once in the log: {log}"
    );
    let screen = pane.screen();
    assert!(
        !screen.contains("tmux-audit") && !screen.contains("Broken pipe"),
        "nothing printed to the terminal:\n{screen}"
    );
}

fn a_shell_killed_leaves_no_recorder_and_loses_none_of_its_commands(shell: Shell) {
    let sb = Sandbox::new();
    let (tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &Rc::default()));
    pane.ready();
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    const N: usize = 20;
    for i in 0..N {
        pane.line(&format!("echo command-{i}"));
    }
    // Every command has run and reached its prompt: its frame is written.
    pane.wait_for("READY", N + 1);
    let shell_pid: libc::pid_t = tmux
        .run(&["display-message", "-p", "-t", &pane.id, "#{pane_pid}"])
        .parse()
        .unwrap();
    // SAFETY: plain kill(2) of the shell this test started.
    unsafe { libc::kill(shell_pid, libc::SIGKILL) };
    wait_gone(recorder.pid);
    let rows = sb.wait_rows("every command", |rows| rows.len() >= N);
    let commands: Vec<String> = rows.iter().map(|r| r.command.clone()).collect();
    let expected: Vec<String> = (0..N).map(|i| format!("echo command-{i}")).collect();
    assert_eq!(commands, expected);
    assert!(recorders(&sb).is_empty());
    let fifos: Vec<_> = fs::read_dir(sb.state.join("recorders"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".fifo"))
        .collect();
    assert!(fifos.is_empty(), "its FIFO removed: {fifos:?}");
}

fn exec_nested_shells_and_subshells_each_keep_one_recorder(shell: Shell) {
    let sb = Sandbox::new();
    let start = sb.shell(shell, &Rc::default().after(strict(shell)));
    let (_tmux, pane) = Tmux::start(&sb, &start);
    pane.ready();
    // fish has no subshell: a block runs in the shell itself.
    let subshell = match shell {
        Shell::Fish => "begin; echo in-a-block; end",
        _ => "(echo in-a-subshell)",
    };
    type_and_wait(&sb, &pane, &[subshell], 1);
    let first = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    let read_before = bytes_read(first.pid);

    // A nested shell has its own recorder, which ends with it.
    pane.line(&start);
    pane.wait_for("READY", 3);
    type_and_wait(&sb, &pane, &["echo nested"], 2);
    let both = wait_recorders(&sb, "two recorders", |r| r.len() == 2);
    let nested = both.iter().find(|r| r.pid != first.pid).unwrap().pid;
    pane.line("exit");
    wait_gone(nested);
    // The `exit` that ends it is recorded (bash and zsh on the way out):
    // its recorder stores it before it ends.
    // The outer shell records the line that ran the nested one.
    type_and_wait(&sb, &pane, &["echo back"], 5);

    // A shell exec'd in its place shares the recorder of the process.
    pane.line(&format!("exec {start}"));
    pane.wait_for("READY", 7);
    let mut rows = type_and_wait(&sb, &pane, &["echo after-exec"], 6);
    // The nested recorder and the outer one store side by side: the
    // nested `exit` and the outer's line that ran it may land either way.
    let exit = rows.iter().position(|r| r.command == "exit");
    let exit = rows.remove(exit.unwrap_or_else(|| panic!("no exit: {rows:#?}")));
    assert_eq!(exit.seq, 2);
    assert_eq!(exit.shell_session, rows[1].shell_session);
    let now = recorders(&sb);
    assert_eq!(
        now.iter().map(|r| r.pid).collect::<Vec<_>>(),
        [first.pid],
        "{now:?}"
    );
    // The commands of the outer and the exec'd shell went to the recorder
    // (not to a process of their own each).
    let outer = start.len() + "echo back".len() + "echo after-exec".len();
    assert!(
        bytes_read(first.pid) - read_before >= outer as u64,
        "the recorder read no frame"
    );
    let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            subshell,
            "echo nested",
            start.as_str(),
            "echo back",
            "echo after-exec"
        ]
    );
    // The nested shell and the exec'd one are sessions of their own.
    let sessions: Vec<&str> = rows.iter().map(|r| r.shell_session.as_str()).collect();
    assert_ne!(sessions[1], sessions[0]);
    assert_eq!(sessions[2..4], [sessions[0]; 2]);
    assert_ne!(sessions[4], sessions[0]);
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 1, 2, 3, 1]
    );
}

fn the_users_coprocess_and_jobs_are_left_alone(shell: Shell) {
    let sb = Sandbox::new();
    let (before, talk) = match shell {
        Shell::Zsh => (
            "coproc cat",
            "print -p hello-coproc; read -p answer; echo \"got-$answer\"",
        ),
        _ => (
            "coproc MINE { cat; }",
            "echo hello-coproc >&\"${MINE[1]}\"; read -r answer <&\"${MINE[0]}\"; echo \"got-$answer\"",
        ),
    };
    let (_tmux, pane) = Tmux::start(
        &sb,
        &sb.shell(shell, &Rc::default().before(before).after(strict(shell))),
    );
    pane.ready();
    let jobs = sb.path().join("jobs");
    type_and_wait(
        &sb,
        &pane,
        &[talk, &format!("jobs > {}", jobs.display())],
        2,
    );
    pane.wait_for("got-hello-coproc", 1);
    let listed = fs::read_to_string(&jobs).unwrap();
    assert_eq!(
        listed.lines().count(),
        1,
        "the user's coprocess only: {listed}"
    );
    assert!(listed.contains("cat"), "{listed}");
    assert_eq!(recorders(&sb).len(), 1);
}

/// zsh and fish keep the text of the last frame and record it again when
/// they find the recorder gone (bash does not: its frames carry `history
/// 1`'s output, which the hook never reads).
#[test]
fn zsh_records_again_a_frame_left_unread_by_a_killed_recorder() {
    a_frame_left_unread_by_a_killed_recorder_is_recorded_again(Shell::Zsh);
}

#[test]
fn fish_records_again_a_frame_left_unread_by_a_killed_recorder() {
    a_frame_left_unread_by_a_killed_recorder_is_recorded_again(Shell::Fish);
}

fn a_frame_left_unread_by_a_killed_recorder_is_recorded_again(shell: Shell) {
    let sb = Sandbox::new();
    let rc = Rc::default().after(strict(shell));
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
    pane.ready();
    type_and_wait(&sb, &pane, &["echo first"], 1);
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    // Stopped, the recorder leaves the next frame in its FIFO; killed, it
    // takes the frame with it.
    // SAFETY: plain kill(2) of a process this test started.
    unsafe { libc::kill(recorder.pid, libc::SIGSTOP) };
    pane.line("echo 'left in the FIFO'");
    pane.wait_for("READY", 3);
    // SAFETY: as above.
    unsafe { libc::kill(recorder.pid, libc::SIGKILL) };
    wait_gone(recorder.pid);
    let rows = type_and_wait(&sb, &pane, &["echo after"], 3);
    let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(
        commands,
        ["echo first", "echo 'left in the FIFO'", "echo after"]
    );
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

/// With its recorder gone, bash records each command through a `record`
/// process of its own; what the user's HISTCONTROL keeps out of the history
/// list (a leading blank, a duplicate) must still be taken out on that path.
#[test]
fn bash_without_its_recorder_keeps_out_of_history_what_histcontrol_says() {
    let sb = Sandbox::new();
    let history = sb.path().join("history");
    let rc = Rc::default()
        .before("HISTCONTROL=ignoreboth")
        .after(&format!(
            "set -u\nlisted() {{ history > {}; }}",
            history.display()
        ));
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &rc));
    pane.ready();
    type_and_wait(&sb, &pane, &["echo first"], 1);
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    // SAFETY: plain kill(2) of a process this test started.
    unsafe { libc::kill(recorder.pid, libc::SIGKILL) };
    wait_gone(recorder.pid);
    let lines = [" echo kept-out", "echo twice", "echo twice", "listed"];
    let rows = type_and_wait(&sb, &pane, &lines, 5);
    let commands: Vec<&str> = rows.iter().map(|r| r.command.trim_start()).collect();
    assert_eq!(
        commands,
        [
            "echo first",
            "echo kept-out",
            "echo twice",
            "echo twice",
            "listed"
        ],
        "every command recorded"
    );
    let listed = fs::read_to_string(&history).unwrap();
    let entries = history_entries(&listed);
    assert_eq!(
        entries,
        ["echo first", "echo twice", "listed"],
        "as HISTCONTROL=ignoreboth keeps the list: {listed}"
    );
}

/// With HISTCONTROL/HISTIGNORE set, bash's hook needs each entry's text to
/// keep out of the history list what they would have kept out. The
/// recorder sends it back (no fork of the shell per command), with `init`'s
/// line and with the kept copy; a text too long to be sent back is read by
/// the hook itself (a fork). A DEBUG trap inherited by functions and
/// command substitutions (`set -T`) notes each fork's `history 1`, and
/// prints (as a trap setting the terminal's title does), which must not
/// reach the recorder's frames.
#[test]
fn bash_keeps_out_of_history_what_histcontrol_says_with_no_fork_per_command() {
    for cached in [false, true] {
        let sb = Sandbox::new();
        let (history, forks, lines) =
            listed_and_forks(&sb, "printf \"\\e]2;%s\\a\" \"$BASH_COMMAND\"; ");
        let rc = Rc::default()
            .before("HISTCONTROL=ignoreboth\nHISTIGNORE='ls*:&'")
            .after(&format!("set -u\n{lines}"));
        let rc = if cached {
            let out = sb.cmd().args(["init", "bash"]).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            rc.cached()
        } else {
            rc
        };
        let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &rc));
        pane.ready();
        wait_recorders(&sb, "one recorder", |r| r.len() == 1);
        let long = format!(" echo {}", "x".repeat(600));
        let lines = [
            " echo hidden",
            "ls /",
            "echo dup",
            "echo dup",
            "echo 'a",
            "b'",
            &long,
            "echo ünïcödé",
            "echo ünïcödé",
            "listed",
        ];
        let rows = type_and_wait(&sb, &pane, &lines, 9);
        let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(
            commands,
            [
                " echo hidden",
                "ls /",
                "echo dup",
                "echo dup",
                "echo 'a\nb'",
                long.as_str(),
                "echo ünïcödé",
                "echo ünïcödé",
                "listed"
            ],
            "every command recorded"
        );
        let listed = fs::read_to_string(&history).unwrap();
        for (kept, times) in [
            ("echo dup", 1),
            ("echo 'a", 1),
            ("echo ünïcödé", 1),
            ("listed", 1),
        ] {
            assert_eq!(listed.matches(kept).count(), times, "{kept} in {listed}");
        }
        for out in ["hidden", "ls /", "xxxx"] {
            assert!(!listed.contains(out), "{out} in {listed}");
        }
        // One fork read an entry: the long one's.
        let forks = fs::read_to_string(&forks).unwrap_or_default();
        assert_eq!(
            forks.matches("history 1").count(),
            1,
            "cached {cached}: {forks}"
        );
        assert_eq!(sb.log(), "", "nothing logged");
    }
}

/// With `[record] max_command_bytes` below what the recorder sends back,
/// an entry it kept cut is not sent back: the hook reads it whole itself,
/// so that HISTIGNORE sees all of it.
#[test]
fn bash_reads_an_entry_the_recorder_kept_cut_itself() {
    let sb = Sandbox::new();
    sb.write_config("[record]\nmax_command_bytes = 24\n");
    let history = sb.path().join("history");
    let rc = Rc::default()
        .before("HISTIGNORE='*--password*'")
        .after(&format!(
            "listed() {{ HISTTIMEFORMAT= history > {}; }}",
            history.display()
        ));
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &rc));
    pane.ready();
    wait_recorders(&sb, "one recorder", |r| r.len() == 1);
    let lines = [
        "echo short",
        "echo 0123456789012345678901234 --password=x",
        "listed",
    ];
    let rows = type_and_wait(&sb, &pane, &lines, 3);
    assert!(
        rows[1]
            .command
            .starts_with("echo 0123456789012345678\n[tmux-audit: command cut"),
        "{:?}",
        rows[1]
    );
    let listed = fs::read_to_string(&history).unwrap();
    let entries = history_entries(&listed);
    assert_eq!(entries, ["echo short", "listed"], "{listed}");
}

/// A recorder that does not answer (stopped here) costs bash a second,
/// then the hook reads the entry itself; the answer it writes once it runs
/// again, left in the reply FIFO, is skipped by the next commands, which
/// get their own, and keep out of the history list what the user's
/// settings say.
#[test]
fn bash_reads_the_entry_itself_when_the_recorder_does_not_answer_and_skips_the_late_answer() {
    let sb = Sandbox::new();
    let (history, forks, lines) = listed_and_forks(&sb, "");
    let rc = Rc::default().before("HISTCONTROL=ignoreboth").after(&lines);
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &rc));
    pane.ready();
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    // SAFETY: plain kill(2) of a process this test started.
    unsafe { libc::kill(recorder.pid, libc::SIGSTOP) };
    pane.line(" echo late-one");
    // The prompt is back while the recorder is stopped.
    pane.wait_for("READY", 2);
    // SAFETY: as above.
    unsafe { libc::kill(recorder.pid, libc::SIGCONT) };
    // Stored once it runs again, after it answered (too late).
    sb.wait_rows("the first record", |rows| rows.len() == 1);
    // And what is left of an answer whose reading Ctrl-C cut short: it
    // ends at the answer's one NUL, and holds up no later one.
    let replies: Vec<_> = fs::read_dir(sb.path().join("state/tmux-audit/recorders"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "reply"))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    fs::OpenOptions::new()
        .write(true)
        .open(&replies[0])
        .unwrap()
        .write_all(b"1234.5/1 Tleft\0")
        .unwrap();
    let lines = ["echo two", "echo two", "echo three", " echo four", "listed"];
    let rows = type_and_wait(&sb, &pane, &lines, 6);
    let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands[0], " echo late-one");
    assert_eq!(commands[1..], lines);
    let listed = fs::read_to_string(&history).unwrap();
    let entries = history_entries(&listed);
    assert_eq!(entries, ["echo two", "echo three", "listed"], "{listed}");
    let forks = fs::read_to_string(&forks).unwrap_or_default();
    assert_eq!(
        forks.matches("history 1").count(),
        1,
        "only the first: {forks}"
    );
    assert_eq!(sb.log(), "", "nothing logged");
}

/// Lines for a bash rc file: `listed` writes the history list to the
/// first path; a DEBUG trap inherited by functions and command
/// substitutions (`set -T`) runs `also` and notes in the second path each
/// command a forked subshell runs.
fn listed_and_forks(sb: &Sandbox, also: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let history = sb.path().join("history");
    let forks = sb.path().join("forks");
    let lines = format!(
        "listed() {{ HISTTIMEFORMAT= history > {}; }}\nset -T\ntrap '{also}[[ $BASHPID == $$ ]] || echo \"$BASH_COMMAND\" >> {}' DEBUG",
        history.display(),
        forks.display()
    );
    (history, forks, lines)
}

/// The texts of bash's `history` output (`HISTTIMEFORMAT` empty), one per
/// line.
fn history_entries(listed: &str) -> Vec<&str> {
    listed
        .lines()
        .map(|l| l.trim_start().split_once("  ").map_or(l, |(_, text)| text))
        .collect()
}

/// `init` starts the recorder of the shell that runs it and names it in the
/// script; a copy of that script loaded by another shell (kept in a file to
/// save `init` at start-up) starts that shell's own.
#[test]
fn a_copy_of_the_init_script_loaded_by_another_shell_starts_its_own_recorder() {
    let sb = Sandbox::new();
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &Rc::default()));
    pane.ready();
    let outer = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    let copy = sb.path().join("hook.bash");
    let keep = format!(
        "'{}' init bash | cat > {}",
        sb.bin.display(),
        copy.display()
    );
    type_and_wait(&sb, &pane, &[&keep], 1);
    let script = fs::read_to_string(&copy).unwrap();
    assert!(
        script.contains("__tmux_audit_for='") && !script.contains("__tmux_audit_for='none'"),
        "the copy names the outer shell's recorder"
    );
    let rc = sb.path().join("nested.bashrc");
    fs::write(&rc, format!("PS1='READY$ '\nsource {}\n", copy.display())).unwrap();
    pane.line(&format!("bash --noprofile --rcfile {} -i", rc.display()));
    pane.wait_for("READY", 3);
    let rows = type_and_wait(&sb, &pane, &["echo in-the-copy"], 2);
    assert_eq!(rows[1].command, "echo in-the-copy");
    assert_ne!(rows[1].shell_session, rows[0].shell_session);
    let both = wait_recorders(&sb, "two recorders", |r| r.len() == 2);
    let nested = both.iter().find(|r| r.pid != outer.pid).unwrap().pid;
    pane.line("exit");
    wait_gone(nested);
    wait_recorders(&sb, "the outer shell's alone", |r| {
        r.iter().map(|r| r.pid).eq([outer.pid])
    });
}

/// A shell whose rc file sources the copy of the hook `init` keeps (the
/// faster init line) runs no `init`: its recorder starts in the background
/// at its first prompt, leaving no job, `$!` and the terminal alone, and
/// its commands go to that recorder, not to a process each.
fn the_kept_copy_starts_the_recorder_at_the_first_prompt_without_a_job(shell: Shell) {
    let sb = Sandbox::new();
    // `init` run as a shell's rc would, but by this test: it keeps the
    // copy (and starts no recorder: its parent is no shell).
    let out = sb.cmd().args(["init", shell.name()]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(recorders(&sb).is_empty());
    // A mark in the copy, its time kept: seen only if the copy loaded.
    let copy = sb
        .path()
        .join(format!("cache/tmux-audit/init.{}", shell.name()));
    let kept = fs::read_to_string(&copy).unwrap();
    let mark = match shell {
        Shell::Fish => "set -g __tmux_audit_mark_test from-the-copy\n",
        _ => "__tmux_audit_mark_test=from-the-copy\n",
    };
    let time = fs::metadata(&copy).unwrap().modified().unwrap();
    fs::write(
        &copy,
        kept.replacen("\nreturn 0\n", &format!("\n{mark}return 0\n"), 1),
    )
    .unwrap();
    fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(time)
        .unwrap();
    let marks = sb.path().join("marks");
    let marks_function = match shell {
        Shell::Fish => format!(
            "function marks; echo \"[$__tmux_audit_mark_test]\" \"[$last_pid]\" \"[\"(count (jobs -p))\"]\" > {}; end",
            marks.display()
        ),
        _ => format!(
            "marks() {{ echo \"[${{__tmux_audit_mark_test-}}]\" \"[${{!-none}}]\" \"[$(jobs)]\" > {}; }}",
            marks.display()
        ),
    };
    let rc = Rc::default()
        .cached()
        .after(&format!("{}\n{marks_function}", strict(shell)));
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
    pane.ready();
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    let read_before = bytes_read(recorder.pid);
    let rows = type_and_wait(&sb, &pane, &["echo one", "echo two", "marks"], 3);
    let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, ["echo one", "echo two", "marks"]);
    assert!(
        bytes_read(recorder.pid) - read_before >= "echo oneecho twomarks".len() as u64,
        "the commands went to the recorder"
    );
    let no_job = match shell {
        Shell::Zsh => "[from-the-copy] [0] []",
        Shell::Bash => "[from-the-copy] [none] []",
        Shell::Fish => "[from-the-copy] [] [0]",
    };
    assert_eq!(fs::read_to_string(&marks).unwrap().trim(), no_job);
    let screen = pane.screen();
    assert!(
        !screen.contains("tmux-audit") && !screen.contains("[1]") && !screen.contains("Job"),
        "nothing printed to the terminal:\n{screen}"
    );
    assert_eq!(sb.log(), "", "nothing logged");
}

/// The recorder starts while the shell runs the user's rc file or prompt
/// hook, which may redirect the shell's own stdin for a while (a group
/// with `< /dev/null`). What it records as each command's terminal is the
/// shell's terminal all the same, not /dev/null: with `init`'s line, and
/// with the kept copy, whose recorder starts at the first prompt. (fish
/// never redirects its own stdin for a block.)
fn the_recorder_records_the_terminal_while_the_shells_stdin_is_redirected(shell: Shell) {
    let slow = "{ sleep 0.5; } </dev/null";
    let prompt_hook = match shell {
        Shell::Bash => format!("PROMPT_COMMAND=\"${{PROMPT_COMMAND:+$PROMPT_COMMAND;}}{slow}\""),
        _ => format!("slow_precmd() {{ {slow}; }}; precmd_functions+=(slow_precmd)"),
    };
    for cached in [false, true] {
        let sb = Sandbox::new();
        let rc = Rc::default().after(&format!("{slow}\n{prompt_hook}"));
        let rc = if cached {
            // The copy kept by an `init` run before.
            let out = sb.cmd().args(["init", shell.name()]).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            rc.cached()
        } else {
            rc
        };
        let (_tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
        pane.ready();
        wait_recorders(&sb, "one recorder", |r| r.len() == 1);
        let rows = type_and_wait(&sb, &pane, &["true", "echo two"], 2);
        for row in &rows {
            assert!(
                row.tty
                    .as_deref()
                    .is_some_and(|t| t.starts_with("/dev/pts/")),
                "cached {cached}: {row:?}"
            );
        }
        assert_eq!(sb.log(), "", "nothing logged");
    }
}

/// A DEBUG trap of the user's that prints (one setting the terminal's
/// title: bash with `set -T`, zsh's TRAPDEBUG) also runs inside the hook's
/// functions: what it prints reaches the terminal, never the recorder.
fn a_debug_trap_that_prints_costs_no_record(shell: Shell) {
    let trap = match shell {
        Shell::Bash => "set -T\ntrap 'printf \"\\e]2;%s\\a\" \"$BASH_COMMAND\"' DEBUG",
        _ => "TRAPDEBUG() { print -n $'\\e]2;x\\a' }",
    };
    let sb = Sandbox::new();
    let rc = Rc::default().after(trap);
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
    pane.ready();
    wait_recorders(&sb, "one recorder", |r| r.len() == 1);
    let rows = type_and_wait(&sb, &pane, &["echo one", "echo two"], 2);
    let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, ["echo one", "echo two"]);
    assert_eq!(sb.log(), "", "nothing set aside");
}

/// The children of `pid` that have ended and are not reaped.
fn zombie_children(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&pid.to_string().as_str()) {
            found.push(child);
        }
    }
    found
}

/// With a central store, the recorder starts the detached sync after a
/// command as `record` does, and reaps it once it has ended (the recorder
/// lives as long as the shell: an unreaped child stays a zombie as long).
#[test]
fn the_recorder_starts_the_central_sync_and_leaves_no_zombie() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&config).unwrap();
    // Nothing listens there: the sync fails at once (and logs it).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    fs::write(
        config.join("config.toml"),
        format!(
            "[central]\nurl = \"postgresql://w@127.0.0.1:{port}/x?sslmode=disable\"\nsync_every_secs = 3600\n"
        ),
    )
    .unwrap();
    let (_tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, &Rc::default()));
    pane.ready();
    let recorder = wait_recorders(&sb, "one recorder", |r| r.len() == 1).remove(0);
    type_and_wait(&sb, &pane, &["echo one"], 1);
    let stamp = sb.state.join("central-sync.stamp");
    let start = Instant::now();
    while !stamp.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the recorder never started a sync"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // It ran: nothing listens, so it logs the outage (the stamp is
    // written before the sync is started, so the log is what tells).
    crate::support::wait_until("the sync to log the outage", || {
        sb.log().contains("records wait locally")
    });
    // The sync has ended once no live process runs it.
    crate::support::wait_until("the sync to end", || {
        !sb.processes()
            .iter()
            .any(|p| p.cmdline.contains(" sync --detached"))
    });
    // The next frame reaps what ended before it (this one starts no sync:
    // one an hour). A child that the frame itself starts and that ends
    // after it (a background merge) waits for the frame after: only the
    // zombies seen before the frame are checked.
    let before = zombie_children(recorder.pid);
    type_and_wait(&sb, &pane, &["echo two"], 2);
    let start = Instant::now();
    loop {
        let left: Vec<_> = zombie_children(recorder.pid)
            .into_iter()
            .filter(|pid| before.contains(pid))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "zombies left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
