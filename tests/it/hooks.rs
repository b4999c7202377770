//! The hooks in real shells inside a real tmux server: what lands in the
//! database when a person types, and what the shell looks like afterwards.
//! Each scenario runs in bash, zsh and fish.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{wait_until, Pane, ProtectedDir, Rc, Row, Sandbox, Shell, Tmux};

/// One shell in one pane of a private tmux server, with the hook loaded.
/// (Fields drop in order: the server goes before its sandbox directory.)
struct Scenario {
    tmux: Tmux,
    pane: Pane,
    sb: Sandbox,
}

impl Scenario {
    fn new(shell: Shell, rc: Rc) -> Scenario {
        Scenario::in_sandbox(Sandbox::new(), shell, rc)
    }

    fn in_sandbox(sb: Sandbox, shell: Shell, rc: Rc) -> Scenario {
        let (tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
        pane.ready();
        Scenario { tmux, pane, sb }
    }

    /// Types `command` (lines joined by Enter) and returns its record.
    fn run(&self, command: &str) -> Row {
        let before = self.sb.rows().len();
        for line in command.split('\n') {
            self.pane.line(line);
        }
        let rows = self
            .sb
            .wait_rows(&format!("the record of {command:?}"), |rows| {
                rows.len() > before
            });
        assert_eq!(rows.len(), before + 1, "one command, one record: {rows:#?}");
        rows.last().unwrap().clone()
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.sb.path().join(name)
    }

    /// Pastes `block` at once and presses Enter; the records of its
    /// `commands` commands, once all are there.
    fn paste_block(&self, block: &str, commands: usize) -> Vec<Row> {
        let before = self.sb.rows().len();
        self.pane.paste(block);
        self.pane.key("Enter");
        let rows = self.sb.wait_rows(&format!("the block {block:?}"), |rows| {
            rows.len() >= before + commands
        });
        rows[before..].to_vec()
    }

    /// The shell's history list as `history` prints it, written to a file
    /// `name` by a command typed (and recorded) for it.
    fn listed_history(&self, name: &str) -> String {
        let file = self.file(name);
        self.run(&format!("HISTTIMEFORMAT= history > {}", file.display()));
        self.read_when_written(&file)
    }

    /// Waits for a file the shell writes, and returns its content.
    fn read_when_written(&self, path: &Path) -> String {
        // The command that writes it is recorded after it ran.
        self.sb.wait_rows("the write", |_| path.exists());
        fs::read_to_string(path).unwrap()
    }
}

/// The user's strict mode, after the hook is loaded.
fn strict(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "set -u",
        Shell::Zsh => "setopt nounset",
        Shell::Fish => "",
    }
}

fn canonical(path: &Path) -> String {
    fs::canonicalize(path).unwrap().display().to_string()
}

macro_rules! in_every_shell {
    ($($name:ident),* $(,)?) => {
        mod bash { $( #[test] fn $name() { super::$name(crate::support::Shell::Bash) } )* }
        mod zsh { $( #[test] fn $name() { super::$name(crate::support::Shell::Zsh) } )* }
        mod fish { $( #[test] fn $name() { super::$name(crate::support::Shell::Fish) } )* }
    };
}

in_every_shell!(
    records_each_command_as_typed_with_its_context,
    records_a_command_longer_than_128_kib_pasted_in,
    records_nothing_for_empty_enter_or_ctrl_c_and_130_for_an_interrupted_command,
    records_leading_space_commands_that_history_drops,
    keeps_the_users_hooks_and_status_and_loads_once,
    keeps_the_prompt_when_the_database_is_read_only,
    keeps_the_prompt_when_the_binary_is_gone,
    records_two_panes_typing_at_once_exactly_once,
    records_a_command_line_that_ends_the_shell,
);

/// A command line that ends the shell never reaches the next prompt: it
/// is recorded on the way out, whole, with the shell's exit status (else
/// `rm -rf …; exit` would leave no trace).
fn records_a_command_line_that_ends_the_shell(shell: Shell) {
    let s = Scenario::new(shell, Rc::default().after(strict(shell)));
    s.run("echo first");
    let line = "echo gone > /dev/null; exit 4";
    s.pane.line(line);
    let rows = s.sb.wait_rows(line, |rows| rows.len() == 2);
    assert_eq!(
        (rows[1].command.as_str(), rows[1].exit_status, rows[1].seq),
        (line, Some(4), 2),
        "{rows:#?}"
    );
    assert!(rows[1].duration_us.is_some(), "{rows:#?}");
    assert!(s.sb.log().is_empty(), "no errors: {}", s.sb.log());
}

fn records_each_command_as_typed_with_its_context(shell: Shell) {
    let s = Scenario::new(shell, Rc::default().after(strict(shell)));
    let start_dir = canonical(s.sb.path());

    let r = s.run("true");
    assert_eq!((r.command.as_str(), r.exit_status), ("true", Some(0)));
    let r = s.run("false");
    assert_eq!((r.command.as_str(), r.exit_status), ("false", Some(1)));
    let r = s.run("sh -c 'exit 3'");
    assert_eq!(
        (r.command.as_str(), r.exit_status),
        ("sh -c 'exit 3'", Some(3))
    );

    // The directory a command starts in, command by command.
    let r = s.run("cd /tmp && pwd");
    assert_eq!(r.cwd, start_dir, "cwd is where the command started");
    let r = s.run("pwd");
    assert_eq!(r.cwd, "/tmp");

    let multi_line = "echo 'line one\n  line two'";
    assert_eq!(s.run(multi_line).command, multi_line);
    let quoted = r#"echo "dq \"x\" $HOME" 'sq $HOME' ünïcödé ✓ 日本語 `x` \\ ; # not a comment?"#;
    assert_eq!(s.run(quoted).command, quoted);

    let r = s.run("sleep 1");
    let duration = r.duration_us.expect("duration");
    assert!(duration >= 1_000_000, "sleep 1 took {duration} µs");

    let a = s.run("echo twice");
    let b = s.run("echo twice");
    assert_eq!(
        (a.record.command, b.record.command),
        ("echo twice".to_string(), "echo twice".to_string())
    );
    assert_ne!(a.id, b.id);

    let rows = s.sb.rows();
    let socket = s.tmux.socket_path();
    let server_pid = s.tmux.server_pid();
    let session = &rows[0].shell_session;
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as i64 + 1, "sequence without holes: {row:?}");
        assert_eq!(&row.shell_session, session);
        assert_eq!(row.shell, shell.name());
        assert_eq!(row.tmux_pane.as_deref(), Some(s.pane.id.as_str()));
        assert_eq!(row.tmux_socket.as_deref(), Some(socket.as_str()));
        assert_eq!(row.tmux_server_pid, Some(server_pid));
        assert_eq!(row.tmux_session_id, Some(0));
        assert!(
            row.tty
                .as_deref()
                .is_some_and(|t| t.starts_with("/dev/pts/")),
            "{row:?}"
        );
        assert!(!row.host.is_empty() && !row.user.is_empty());
        assert!(row.started_at_us > 1_700_000_000_000_000, "{row:?}");
    }
    assert!(s.sb.log().is_empty(), "no errors: {}", s.sb.log());
}

fn records_a_command_longer_than_128_kib_pasted_in(shell: Shell) {
    let s = Scenario::new(shell, Rc::default());
    let word: String = "0123456789abcdef".repeat(9000); // 144,000 bytes, over the 128 KiB argv cap
    let command = format!("echo {word} | wc -c");
    s.pane.paste(&command);
    s.pane.key("Enter");
    let rows = s.sb.wait_rows("the long command", |rows| !rows.is_empty());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].command.len(), command.len());
    assert!(
        rows[0].command == command,
        "the text differs from what was pasted"
    );
    assert_eq!(rows[0].exit_status, Some(0));
}

fn records_nothing_for_empty_enter_or_ctrl_c_and_130_for_an_interrupted_command(shell: Shell) {
    let s = Scenario::new(shell, Rc::default().after(strict(shell)));
    s.run("echo first");
    s.pane.key("Enter");
    s.pane.key("C-c");
    s.pane.line("");
    s.pane.key("C-c");
    // A line typed and then abandoned with Ctrl-C, once the shell is back
    // at a prompt after an Enter: keys sent before can be lost (fish
    // dropped the line under load).
    let prompts = s.pane.screen().matches("READY").count();
    s.pane.line("");
    s.pane.wait_for("READY", prompts + 1);
    s.tmux
        .run(&["send-keys", "-t", &s.pane.id, "-l", "echo abandoned"]);
    s.pane.wait_for("echo abandoned", 1);
    // Ctrl-C on a typed line gives a new prompt; keys sent before the shell
    // is back at it can be lost (zsh dropped the first under load).
    let prompts = s.pane.screen().matches("READY").count();
    s.pane.key("C-c");
    s.pane.wait_for("READY", prompts + 1);
    let r = s.run("echo second");
    assert_eq!(r.command, "echo second");
    let commands: Vec<_> = s.sb.rows().into_iter().map(|r| r.record.command).collect();
    assert_eq!(commands, ["echo first", "echo second"]);

    s.pane.line("sleep 30");
    // Interrupt sleep itself, not the line before it runs.
    s.pane.wait_until_running("sleep");
    s.pane.key("C-c");
    let rows =
        s.sb.wait_rows("the interrupted sleep", |rows| rows.len() == 3);
    assert_eq!(rows[2].command, "sleep 30");
    assert_eq!(rows[2].exit_status, Some(130));
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

fn records_leading_space_commands_that_history_drops(shell: Shell) {
    // Each shell's way of keeping such lines out of its history.
    let user_settings = match shell {
        Shell::Bash => "HISTCONTROL=ignoreboth\nHISTIGNORE='ls*:&'",
        Shell::Zsh => "setopt HIST_IGNORE_SPACE HIST_IGNORE_DUPS HIST_NO_STORE",
        Shell::Fish => "", // fish never keeps a line that starts with a space
    };
    let s = Scenario::new(
        shell,
        Rc::default().before(user_settings).after(strict(shell)),
    );
    assert_eq!(s.run(" echo hidden").command, " echo hidden");
    assert_eq!(s.run("ls /").command, "ls /");
    assert_eq!(s.run("echo dup").command, "echo dup");
    assert_eq!(s.run("echo dup").command, "echo dup");

    if shell == Shell::Bash {
        // The user's history still follows the user's settings.
        let hist = s.file("hist");
        s.run(&format!("HISTTIMEFORMAT= history > {}", hist.display()));
        let history = s.read_when_written(&hist);
        assert!(!history.contains("echo hidden"), "{history}");
        assert!(!history.contains("ls /"), "{history}");
        assert_eq!(history.matches("echo dup").count(), 1, "{history}");
    }
}

fn keeps_the_users_hooks_and_status_and_loads_once(shell: Shell) {
    let sb = Sandbox::new();
    let marks = sb.path().join("user-hook-ran");
    // The user's own hook, after ours, notes the status it sees.
    let user_hook = match shell {
        Shell::Bash => format!(
            "PROMPT_COMMAND=('echo \"$? ${{PIPESTATUS[*]}}\" >> {}')",
            marks.display()
        ),
        Shell::Zsh => format!(
            "user_precmd() {{ echo \"$? $pipestatus\" >> {}; }}\nprecmd_functions+=(user_precmd)",
            marks.display()
        ),
        Shell::Fish => format!(
            "function user_postexec --on-event fish_postexec; echo $status $pipestatus >> {}; end",
            marks.display()
        ),
    };
    let s = Scenario::in_sandbox(
        sb,
        shell,
        Rc::default()
            .before(&user_hook)
            .after(strict(shell))
            .init_twice(),
    );

    s.run("sh -c 'exit 5'");
    let status = s.file("status");
    s.run(&shell.status_line(&status));
    assert_eq!(
        s.read_when_written(&status).trim(),
        "5 5",
        "$? and pipe status after the hook"
    );

    s.run("false | true");
    let pipes = s.file("pipes");
    s.run(&shell.status_line(&pipes));
    assert_eq!(s.read_when_written(&pipes).trim(), "0 1 0");

    // The rc file sourced again mid-session: same shell session, no reset.
    let rc_again = match shell {
        Shell::Fish => format!("'{}' init fish | source", s.sb.bin.display()),
        _ => format!("eval \"$('{}' init {})\"", s.sb.bin.display(), shell.name()),
    };
    s.run(&rc_again);
    s.run("echo after");

    // The user's hook saw each command's own status.
    let seen = fs::read_to_string(&marks).unwrap_or_default();
    let seen: Vec<_> = seen.lines().collect();
    assert!(seen.contains(&"5 5"), "user hook saw {seen:?}");
    assert!(seen.contains(&"0 1 0"), "user hook saw {seen:?}");

    // Loaded twice (and again), recorded once, in one shell session.
    let rows = s.sb.rows();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(
        rows.iter()
            .all(|r| r.shell_session == rows[0].shell_session),
        "{rows:#?}"
    );
}

fn keeps_the_prompt_when_the_database_is_read_only(shell: Shell) {
    let sb = Sandbox::new();
    let ro = ProtectedDir::new(&sb.path().join("ro"));
    ro.read_only(true);
    let db = ro.path.join("history.db");
    let rc = Rc::default().before(&match shell {
        Shell::Fish => format!("set -gx TMUX_AUDIT_DB {}", db.display()),
        _ => format!("export TMUX_AUDIT_DB={}", db.display()),
    });
    let s = Scenario::in_sandbox(sb, shell, rc.after(strict(shell)));
    s.pane.line("sh -c 'exit 4'");
    let status = s.file("status");
    s.pane.line(&shell.status_line(&status));
    // The output differs from the typed line, so seeing it means the shell ran it.
    s.pane.line("echo done-'2'");
    s.pane.wait_for("done-2", 1);
    s.pane.wait_for("READY", 4);
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "4 4");
    assert!(!db.exists());
    // The shell's recorder writes the spool and the log after the prompt
    // came back: wait for them.
    wait_until("the record in the fallback spool and the log", || {
        s.sb.log().contains("the records wait in the spool")
            && s.sb.spooled_for(&db).contains("exit 4")
    });
    let log = s.sb.log();
    assert!(
        log.contains("the records wait in the spool") && log.contains("hint:"),
        "log: {log}"
    );
    assert!(
        s.sb.spooled_for(&db).contains("exit 4"),
        "kept in the fallback spool"
    );
    assert!(
        log.lines().all(|l| l.contains("hint:")),
        "one line each: {log}"
    );
    let screen = s.pane.screen();
    assert!(
        !screen.contains("tmux-audit"),
        "nothing printed to the terminal:\n{screen}"
    );
    // Unmounted before the sandbox goes, so that its background merge,
    // finding the directory gone, ends.
    drop(ro);
}

fn keeps_the_prompt_when_the_binary_is_gone(shell: Shell) {
    let mut sb = Sandbox::new();
    let copy = sb.path().join("bin/tmux-audit");
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    crate::support::copy_of_the_binary(&copy);
    sb.bin = copy.clone();
    let s = Scenario::in_sandbox(sb, shell, Rc::default().after(strict(shell)));
    s.run("echo recorded");
    // The record is in the spool before its recorder has exited (it may
    // still start a background merge): wait for the prompt that follows.
    s.pane.wait_for("READY", 2);
    fs::remove_file(&copy).unwrap();

    s.pane.line("sh -c 'exit 6'");
    let status = s.file("status");
    s.pane.line(&shell.status_line(&status));
    s.pane.line("echo still-'here'");
    s.pane.wait_for("still-here", 1);
    s.pane.wait_for("READY", 5);
    assert_eq!(fs::read_to_string(&status).unwrap().trim(), "6 6");
    wait_until("the missing binary in the log", || {
        s.sb.log().contains(&copy.display().to_string())
    });
    let log = s.sb.log();
    assert_eq!(log.lines().count(), 1, "logged once per shell: {log}");
    assert!(
        log.contains(&copy.display().to_string()) && log.contains("hint:"),
        "{log}"
    );
    let screen = s.pane.screen();
    assert!(
        !screen.contains("No such file"),
        "nothing printed to the terminal:\n{screen}"
    );
}

fn records_two_panes_typing_at_once_exactly_once(shell: Shell) {
    let sb = Sandbox::new();
    let (tmux, first) = Tmux::start(&sb, &sb.shell(shell, &Rc::default()));
    let second = tmux.split(&sb.shell(shell, &Rc::default()));
    first.ready();
    second.ready();
    const N: usize = 25;
    for i in 0..N {
        first.line(&format!("echo first {i}"));
        second.line(&format!("echo second {i}"));
    }
    let rows = sb.wait_rows("every command of both panes", |rows| rows.len() >= 2 * N);
    sb.wait_until_settled();
    let rows_after = sb.rows();
    assert_eq!(rows_after.len(), rows.len(), "no late duplicates");
    for (pane, name) in [(&first, "first"), (&second, "second")] {
        let mut mine: Vec<_> = rows
            .iter()
            .filter(|r| r.tmux_pane.as_deref() == Some(pane.id.as_str()))
            .collect();
        // In the shell's order (a record that waited in the background for
        // the lock gets a later id).
        mine.sort_by_key(|r| r.seq);
        let commands: Vec<_> = mine.iter().map(|r| r.command.clone()).collect();
        let expected: Vec<_> = (0..N).map(|i| format!("echo {name} {i}")).collect();
        assert_eq!(commands, expected);
        assert_eq!(
            mine.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=N as i64).collect::<Vec<_>>()
        );
    }
}

#[test]
fn bash_keeps_a_string_prompt_command_and_its_status() {
    let sb = Sandbox::new();
    let marks = sb.path().join("user-hook-ran");
    let user_hook = format!("PROMPT_COMMAND='echo \"$?\" >> {}'", marks.display());
    let s = Scenario::in_sandbox(
        sb,
        Shell::Bash,
        Rc::default().before(&user_hook).after("set -u"),
    );
    s.run("false | true");
    s.run("sh -c 'exit 5'");
    let status = s.file("status");
    s.run(&Shell::Bash.status_line(&status));
    assert_eq!(s.read_when_written(&status).trim(), "5 5");
    // The user's hook runs after ours has recorded: wait for its fourth line.
    s.sb.wait_rows("the user's hook", |_| {
        fs::read_to_string(&marks).is_ok_and(|m| m.lines().count() >= 4)
    });
    let seen = fs::read_to_string(&marks).unwrap();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["0", "0", "5", "0"],
        "$? seen by the user's hook"
    );
}

#[test]
fn a_shell_started_inside_another_has_its_own_session() {
    let sb = Sandbox::new();
    let inner = sb.shell(Shell::Bash, &Rc::default());
    let s = Scenario::in_sandbox(sb, Shell::Zsh, Rc::default());
    s.run("echo outer 1");
    s.pane.line(&inner);
    s.pane.wait_for("READY$", 1);
    s.run("echo inner 1");
    s.run("echo inner 2");
    s.pane.line("exit");
    let rows =
        s.sb.wait_rows("the outer record of the inner shell", |rows| {
            rows.len() == 5
        });
    let r = s.run("echo outer 2");
    let rows: Vec<_> = rows.into_iter().chain([r]).collect();

    let outer: Vec<_> = rows.iter().filter(|r| r.shell == "zsh").collect();
    let inner_rows: Vec<_> = rows.iter().filter(|r| r.shell == "bash").collect();
    assert_eq!(
        outer
            .iter()
            .map(|r| (r.seq, r.command.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "echo outer 1"),
            (2, inner.as_str()),
            (3, "echo outer 2")
        ]
    );
    assert_eq!(
        inner_rows
            .iter()
            .map(|r| (r.seq, r.command.as_str()))
            .collect::<Vec<_>>(),
        [(1, "echo inner 1"), (2, "echo inner 2"), (3, "exit")]
    );
    assert!(outer
        .iter()
        .all(|r| r.shell_session == outer[0].shell_session));
    assert!(inner_rows
        .iter()
        .all(|r| r.shell_session == inner_rows[0].shell_session));
    assert_ne!(outer[0].shell_session, inner_rows[0].shell_session);
    assert!(rows
        .iter()
        .all(|r| r.tmux_pane.as_deref() == Some(s.pane.id.as_str())));
}

#[test]
fn bash_runs_the_users_err_trap_once_per_failing_command() {
    let sb = Sandbox::new();
    let errs = sb.path().join("err-trap");
    let rc = Rc::default().before(&format!("trap 'echo ERR >> {}' ERR", errs.display()));
    let s = Scenario::in_sandbox(sb, Shell::Bash, rc);
    s.run("false");
    s.run("true");
    assert_eq!(fs::read_to_string(&errs).unwrap(), "ERR\n");
}

#[test]
fn bash_with_promptvars_off_shows_no_hook_code_and_recovers() {
    let s = Scenario::new(Shell::Bash, Rc::default());
    s.run("shopt -u promptvars");
    // With promptvars off bash cannot expand the hook's PS0: these two
    // commands go unrecorded (README says so), and nothing shows.
    s.pane.line("echo promptvars-'off'");
    s.pane.wait_for("promptvars-off", 1);
    s.pane.line("shopt -s promptvars; echo promptvars-'on'");
    s.pane.wait_for("promptvars-on", 1);
    s.run("echo back");
    let screen = s.pane.screen();
    assert!(
        !screen.contains("__tmux_audit"),
        "hook code on screen:\n{screen}"
    );
    let commands: Vec<_> = s.sb.rows().into_iter().map(|r| r.record.command).collect();
    assert_eq!(
        commands.last().map(String::as_str),
        Some("echo back"),
        "{commands:?}"
    );
}

#[test]
fn bash_with_erasedups_keeps_one_copy_in_the_users_history() {
    let s = Scenario::new(
        Shell::Bash,
        Rc::default().before("HISTCONTROL=ignoreboth:erasedups"),
    );
    s.run("echo b");
    s.run("echo b");
    let hist = s.file("hist");
    s.run(&format!("HISTTIMEFORMAT= history > {}", hist.display()));
    let history = s.read_when_written(&hist);
    assert_eq!(history.matches("echo b").count(), 1, "{history}");
    assert_eq!(
        s.sb.rows().iter().filter(|r| r.command == "echo b").count(),
        2
    );
}

#[test]
fn zsh_loads_under_ksh_arrays_and_nounset() {
    let s = Scenario::new(
        Shell::Zsh,
        Rc::default().before("setopt KSH_ARRAYS NOUNSET"),
    );
    let r = s.run("echo hello");
    assert_eq!(r.command, "echo hello");
    assert!(
        r.shell_session
            .split('.')
            .nth(2)
            .is_some_and(|t| t.len() > 10),
        "{r:?}"
    );
    let screen = s.pane.screen();
    assert!(!screen.contains("parameter not set"), "{screen}");
}

#[test]
fn zsh_duration_leaves_out_slow_prompt_hooks() {
    let rc = Rc::default().before("slow_prompt() { sleep 0.5; }\nprecmd_functions+=(slow_prompt)");
    let s = Scenario::new(Shell::Zsh, rc);
    let r = s.run("true");
    let duration = r.duration_us.unwrap();
    assert!(
        duration < 400_000,
        "`true` took {duration} µs: the slow hook was counted"
    );
}

#[test]
fn bash_with_history_off_records_that_a_command_ran() {
    let s = Scenario::new(Shell::Bash, Rc::default().after("set +o history"));
    let r = s.run("sh -c 'exit 9'");
    assert_eq!(
        (r.command.as_str(), r.exit_status),
        ("", Some(9)),
        "the text is not available"
    );
    assert!(r.duration_us.is_some() && !r.cwd.is_empty());
}

/// A block of commands pasted at once: bash runs each line as a command of
/// its own, with an entry of its own in the history list, showing PS0
/// before each but running PROMPT_COMMAND once, after the last. Each is
/// recorded once, with its own text, exit status, directory and times,
/// through the shell's recorder and without it; and what HISTCONTROL keeps
/// out of the history list stays out, wherever it is in the block.
#[test]
fn bash_records_each_command_of_a_pasted_block() {
    for recorder in [true, false] {
        let s = Scenario::new(
            Shell::Bash,
            Rc::default()
                .before("HISTCONTROL=ignoreboth")
                // A command substitution put before the hook's part of
                // PS0 would change the `$?` it notes.
                .after("set -u\nPS0='$(true)'\"$PS0\""),
        );
        if !recorder {
            // Each command then starts a process of its own to record it.
            s.pane
                .line("__tmux_audit_recorder= __tmux_audit_fifo= __tmux_audit_pending=");
            s.sb.wait_rows("the first line", |rows| rows.len() == 1);
        }
        let before = s.sb.rows().len();
        let home = canonical(&s.sb.path().join("home"));
        fs::create_dir(s.sb.path().join("home/sub ]$(x) * dir")).unwrap();
        let block = [
            "cd ~",
            "true",
            "false",
            "# a line that is only a comment: an entry, not a command",
            "\t",
            " (exit 3)",
            "echo 'two\nlines'",
            "cd 'sub ]$(x) * dir'",
            "sleep 0.3; (exit 5)",
            "echo dup",
            "echo dup",
            "(exit 6)",
        ];
        s.pane.paste(&block.join("\n"));
        s.pane.key("Enter");
        let commands = block.len() - 2;
        let rows =
            s.sb.wait_rows("the pasted block", |rows| rows.len() >= before + commands);
        let rows = &rows[before..];
        let got: Vec<(&str, Option<i64>, &str)> = rows
            .iter()
            .map(|r| (r.command.as_str(), r.exit_status, r.cwd.as_str()))
            .collect();
        let start = canonical(s.sb.path());
        let sub = format!("{home}/sub ]$(x) * dir");
        assert_eq!(
            got,
            [
                ("cd ~", Some(0), start.as_str()),
                ("true", Some(0), &home),
                ("false", Some(1), &home),
                (" (exit 3)", Some(3), &home),
                ("echo 'two\nlines'", Some(0), &home),
                ("cd 'sub ]$(x) * dir'", Some(0), &home),
                ("sleep 0.3; (exit 5)", Some(5), &sub),
                ("echo dup", Some(0), &sub),
                ("echo dup", Some(0), &sub),
                ("(exit 6)", Some(6), &sub),
            ],
            "recorder {recorder}"
        );
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let first = before as i64 + 1;
        assert_eq!(seqs, (first..first + commands as i64).collect::<Vec<_>>());
        for pair in rows.windows(2) {
            let ended = pair[0].started_at_us + pair[0].duration_us.expect("a duration");
            assert!(ended <= pair[1].started_at_us, "{pair:#?}");
        }
        assert!(rows[6].duration_us.unwrap() >= 300_000, "{:?}", rows[6]);

        // The user's history list, as HISTCONTROL=ignoreboth would have it.
        let listed = s.listed_history("hist");
        assert!(!listed.contains("exit 3"), "{listed}");
        assert_eq!(listed.matches("echo dup").count(), 1, "{listed}");
        for kept in ["cd ~", "false", "# a line", "two", "exit 5", "exit 6"] {
            assert!(listed.contains(kept), "{kept} in {listed}");
        }

        // ignoredups compares each entry with the one before it, a
        // comment's included: the block's first `true` follows `true`
        // (dropped), its last follows `# c` (kept).
        s.run("true");
        s.paste_block("true\n# c\ntrue", 2);
        let hist = s.file("hist2");
        s.run(&format!("HISTTIMEFORMAT= history 5 > {}", hist.display()));
        let listed = s.read_when_written(&hist);
        let texts: Vec<&str> = listed.lines().map(|l| l[7..].trim_end()).collect();
        assert_eq!(
            texts[1..4],
            ["true", "# c", "true"],
            "recorder {recorder}: {listed}"
        );

        // A block that ends in a comment: its commands are told apart
        // still, and its leading-space one kept out of the list.
        let rows = s.paste_block("echo a\n echo secret\necho b\n# done", 3);
        let got: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(
            got,
            ["echo a", " echo secret", "echo b"],
            "recorder {recorder}"
        );
        // A job started in a block is still `$!`: no process of the hook's
        // took its place.
        s.paste_block("sleep 30 &\ntrue", 2);
        let bang = s.file("bang");
        s.run(&format!(
            "echo \"$! $(jobs -p)\" > {}; kill %1",
            bang.display()
        ));
        let bang = s.read_when_written(&bang);
        let pids: Vec<&str> = bang.split_whitespace().collect();
        assert!(pids.len() == 2 && pids[0] == pids[1], "{bang}");
        // History off in the middle of a block: the entries from before
        // the block are left as they are, whatever HISTIGNORE now says.
        s.run("HISTIGNORE='sleep*'");
        let rows = s.paste_block("set +o history\n echo off\nset -o history\necho done", 4);
        let got: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(got, ["", "", "", "echo done"], "recorder {recorder}");
        let listed = s.listed_history("hist4");
        for kept in ["exit 5", "sleep 30 &", "# done", "echo b"] {
            assert!(
                listed.contains(kept),
                "recorder {recorder}: {kept} in {listed}"
            );
        }
        assert!(
            !listed.contains("echo secret"),
            "recorder {recorder}: {listed}"
        );
        s.run("HISTIGNORE=");

        // A block whose entries the list did not keep one per command
        // (erasedups drops the first `echo a` when the last is added):
        // the commands before the last are recorded without a text
        // rather than with another entry's, and a leading-space one is
        // still kept out of the list.
        s.run("HISTCONTROL=ignoreboth:erasedups HISTIGNORE='&'");
        let rows = s.paste_block("echo a\n echo tok\necho a", 3);
        let got: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(got, ["", "", "echo a"], "recorder {recorder}");
        let listed = s.listed_history("hist3");
        assert!(
            !listed.contains("echo tok"),
            "recorder {recorder}: {listed}"
        );
        // erasedups erased the first copy; HISTIGNORE's `&` keeps out
        // none of the second.
        s.run("echo twice");
        s.run("echo twice");
        let listed = s.listed_history("hist5");
        assert_eq!(
            listed.matches("echo twice").count(),
            1,
            "recorder {recorder}: {listed}"
        );
        // Its last command deletes its own entry: the list's last entries
        // are no longer the block's.
        let rows = s.paste_block("echo c\nhistory -d -1", 2);
        let got: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(got, ["", ""], "recorder {recorder}");
        assert!(s.sb.log().is_empty(), "no errors: {}", s.sb.log());
    }
}

/// An editor for `fc` at `path` that replaces what it is given with `text`,
/// keeping what it was given in `path` + `.got`.
fn editor_writing(path: &Path, text: &str) -> std::path::PathBuf {
    let quoted = text.replace('\'', r"'\''");
    editor_script(
        path,
        &format!("cp \"$1\" \"$0.got\"\nprintf '%s' '{quoted}' > \"$1\""),
    )
}

/// An executable `sh` script at `path` running `body`.
fn editor_script(path: &Path, body: &str) -> std::path::PathBuf {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// `fc` runs the commands it edited in its place, each with an entry of
/// its own in the history list: the line is recorded with their text, and
/// the user's `HISTCONTROL` applied to their entries. A `history -r` reads
/// entries in after its own: it is recorded as itself, and what it read in
/// is left as bash leaves it.
#[test]
fn bash_records_what_fc_ran_and_a_history_read_in_as_itself() {
    let sb = Sandbox::new();
    let editor = editor_writing(
        &sb.path().join("editor"),
        "# first\necho one\n echo secret\n# a note\n(exit 4)\n",
    );
    // Edited text that starts with a `history` that reads nothing in.
    let editor2 = editor_writing(&sb.path().join("editor2"), "history 1\n echo secret2\n");
    let read_in = sb.path().join("read-in");
    fs::write(
        &read_in,
        "echo from-file\necho from-file\n echo spaced\ntrue\n",
    )
    .unwrap();
    let rc = Rc::default()
        .before("HISTCONTROL=ignoreboth")
        .after(&format!("set -u\nFCEDIT='{}'", editor.display()));
    let s = Scenario::in_sandbox(sb, Shell::Bash, rc);
    s.run("echo before");

    let fc = s.run("fc");
    assert_eq!(
        (fc.command.as_str(), fc.exit_status),
        (
            "# first\necho one\n echo secret\n# a note\n(exit 4)",
            Some(4)
        )
    );
    let fc = s.run(&format!("fc -e {}", editor2.display()));
    assert_eq!(fc.command, "history 1\n echo secret2");
    let listed = s.listed_history("hist");
    let texts: Vec<&str> = listed.lines().map(|l| l[7..].trim_end()).collect();
    assert_eq!(
        texts[texts.len() - 7..texts.len() - 1],
        [
            "echo before",
            "# first",
            "echo one",
            "# a note",
            "(exit 4)",
            "history 1"
        ],
        "{listed}"
    );

    // Read in among other commands of the line.
    let read = format!("cd . && HISTFILE={} history -r;true", read_in.display());
    assert_eq!(s.run(&read).command, read);
    // A `true` after the `true` read in is a duplicate: dropped.
    assert_eq!(s.run("true").command, "true");
    let listed = s.listed_history("hist2");
    let texts: Vec<&str> = listed.lines().map(|l| l[7..].trim_end()).collect();
    assert_eq!(
        texts[texts.len() - 6..texts.len() - 1],
        [
            read.as_str(),
            "echo from-file",
            "echo from-file",
            " echo spaced",
            "true"
        ],
        "{listed}"
    );

    // With erasedups, fc's entries may have moved below its own: not
    // told, and its leading-space one dropped all the same.
    let editor3 = editor_writing(&s.file("editor3"), "echo e1\n echo secret3\n(exit 5)\n");
    s.run("HISTCONTROL=ignoreboth:erasedups");
    let fc = s.run(&format!("fc -e {}", editor3.display()));
    assert_eq!((fc.command.as_str(), fc.exit_status), ("", Some(5)));
    let listed = s.listed_history("hist3");
    assert!(listed.contains("echo e1"), "{listed}");
    assert!(!listed.contains("secret3"), "{listed}");
}

/// What `C-x C-e` (vi: `v`) runs: bash runs it inside the line editor, with
/// neither PS0 nor a prompt, so the hook binds those keys to the same edit
/// done as a typed line. The editor gets the line typed so far; what it
/// saved runs as if typed, each command recorded; an editor that fails
/// runs nothing and leaves the line as it was. Keys the user bound to
/// edit-and-execute-command are taken too; a key the user bound to
/// anything else is left alone.
#[test]
fn bash_records_what_edit_and_execute_ran() {
    let sb = Sandbox::new();
    let editor = editor_writing(&sb.path().join("editor"), "echo one\n(exit 3)\n");
    let failing = editor_script(
        &sb.path().join("failing"),
        "printf 'echo never\\n' > \"$1\"\nexit 1",
    );
    let vi_editor = editor_writing(&sb.path().join("vi-editor"), "echo 'from vi'\n\n");
    let last_editor = editor_writing(&sb.path().join("last-editor"), "echo after-set-e");
    let errs = sb.path().join("err-trap");
    let rc = Rc::default()
        .before(&format!(
            "{}\ntrap 'echo ERR >> {}' ERR",
            r#"bind '"\C-x\C-e": "echo own"'"#,
            errs.display()
        ))
        // Bound after the hook loads, before the first prompt.
        .after(&format!(
            "set -u\nVISUAL='{}'\n{}",
            editor.display(),
            r#"bind '"\C-xe": edit-and-execute-command'"#
        ));
    let s = Scenario::in_sandbox(sb, Shell::Bash, rc);
    s.run("echo before");

    let before = s.sb.rows().len();
    s.pane.type_text("echo typed");
    s.pane.key("C-x");
    s.pane.key("e");
    let rows =
        s.sb.wait_rows("the edited commands", |rows| rows.len() >= before + 2);
    let got: Vec<_> = rows[before..]
        .iter()
        .map(|r| (r.command.as_str(), r.exit_status))
        .collect();
    assert_eq!(got, [("echo one", Some(0)), ("(exit 3)", Some(3))]);
    assert_eq!(
        fs::read_to_string(s.file("editor.got")).unwrap(),
        "echo typed\n"
    );

    // The user's own binding of C-x C-e stays theirs.
    s.pane.key("C-x");
    s.pane.key("C-e");
    s.pane.type_text(" mine");
    let row = s.run("");
    assert_eq!(row.command, "echo own mine");

    // No temporary file to edit in: nothing opens, the line stays, the
    // log says why.
    s.run("TMPDIR=/nonexistent");
    s.pane.type_text("echo still");
    s.pane.key("C-x");
    s.pane.key("e");
    s.pane.type_text(" here");
    assert_eq!(s.run("").command, "echo still here");
    let log = s.sb.log();
    assert!(
        log.contains("hook: C-x C-e: cannot make a temporary file in /nonexistent; hint:"),
        "{log}"
    );
    fs::write(s.sb.log_file(), "").unwrap();
    s.run("unset TMPDIR");

    // A failing editor: nothing runs, the line stays to be finished.
    s.run(&format!("VISUAL='{}'", failing.display()));
    s.pane.type_text("echo kept");
    s.pane.key("C-x");
    s.pane.key("e");
    s.pane.type_text(" then");
    assert_eq!(s.run("").command, "echo kept then");

    // vi mode's `v`, with the editor from EDITOR when VISUAL is unset.
    s.run(&format!(
        "set -o vi; unset VISUAL; EDITOR='{}'",
        vi_editor.display()
    ));
    let row = {
        let before = s.sb.rows().len();
        s.pane.type_text("echo in-vi");
        s.pane.key("Escape");
        s.pane.key("v");
        s.sb.wait_rows("the command edited in vi mode", |rows| rows.len() > before)[before..]
            .to_vec()
    };
    assert_eq!(row.len(), 1, "{row:#?}");
    assert_eq!(row[0].command, "echo 'from vi'");
    assert_eq!(
        fs::read_to_string(s.file("vi-editor.got")).unwrap(),
        "echo in-vi\n"
    );
    let screen = s.pane.screen();
    assert!(screen.contains("\nfrom vi\n"), "{screen}");

    // Under `set -e`, the edit ends no shell (a `read` at the end of the
    // file returns 1), and the user's ERR trap fired for `(exit 3)` only.
    s.run(&format!(
        "set -o emacs; VISUAL='{}'; set -e",
        last_editor.display()
    ));
    s.pane.type_text("echo x");
    s.pane.key("C-x");
    s.pane.key("e");
    s.sb.wait_rows("the command edited under set -e", |rows| {
        rows.last().unwrap().command == "echo after-set-e"
    });
    s.pane.line("echo still-'open'");
    s.pane.wait_for("still-open", 1);
    assert_eq!(fs::read_to_string(&errs).unwrap(), "ERR\n");
    assert!(s.sb.log().is_empty(), "no errors: {}", s.sb.log());

    // bash's own key, found with a DEBUG trap of the user's that prints
    // in functions (`set -T`).
    let rc = Rc::default()
        .before("set -T\ntrap 'echo debug-trap-ran' DEBUG")
        .after(&format!("VISUAL='{}'", last_editor.display()));
    let s = Scenario::new(Shell::Bash, rc);
    s.pane.type_text("echo x");
    s.pane.key("C-x");
    s.pane.key("C-e");
    let rows =
        s.sb.wait_rows("the command edited", |rows| !rows.is_empty());
    assert_eq!(rows[0].command, "echo after-set-e");
}

/// Each change of `HISTCONTROL` or `HISTIGNORE` is the user's new wish,
/// taken on its own: setting one keeps the other as it was, and clearing
/// one (or keeping only `erasedups`) is taken too.
#[test]
fn bash_takes_each_change_of_histcontrol_and_histignore_as_the_users_wish() {
    let s = Scenario::new(
        Shell::Bash,
        Rc::default()
            .before("HISTCONTROL=ignoreboth")
            .after("set -u"),
    );
    s.run("HISTIGNORE='echo ign*'");
    s.run(" echo spaced1");
    s.run("echo ignored1");
    s.run("HISTIGNORE=");
    s.run("echo ignored2");
    s.run("HISTCONTROL=erasedups");
    s.run(" echo spaced2");
    s.run("HISTCONTROL=");
    s.run(" echo spaced3");
    let listed = s.listed_history("hist");
    let texts: Vec<&str> = listed.lines().map(|l| l[7..].trim_end()).collect();
    let listing = format!("HISTTIMEFORMAT= history > {}", s.file("hist").display());
    assert_eq!(
        texts,
        [
            "HISTIGNORE='echo ign*'",
            "HISTIGNORE=",
            "echo ignored2",
            "HISTCONTROL=erasedups",
            " echo spaced2",
            "HISTCONTROL=",
            " echo spaced3",
            &listing
        ],
        "{listed}"
    );
    assert!(s.sb.log().is_empty(), "no errors: {}", s.sb.log());
}

/// A pasted block whose last line ends the shell: the commands before it
/// never reach a prompt either, and are recorded on the way out with it.
#[test]
fn bash_records_a_pasted_block_that_ends_the_shell() {
    let s = Scenario::new(Shell::Bash, Rc::default().after("set -u"));
    s.pane.paste("echo one\n(exit 2)\nexit 4");
    s.pane.key("Enter");
    let rows = s.sb.wait_rows("the block", |rows| rows.len() == 3);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.command.as_str(), r.exit_status, r.seq))
        .collect();
    assert_eq!(
        got,
        [
            ("echo one", Some(0), 1),
            ("(exit 2)", Some(2), 2),
            ("exit 4", Some(4), 3)
        ]
    );
    assert!(s.sb.log().is_empty(), "no errors: {}", s.sb.log());
}

/// The bash-preexec shape, in a few lines: loaded after the hook, it
/// installs itself at the first prompt and puts its own entry first in
/// PROMPT_COMMAND; that entry runs `precmd_functions`, `precmd` among them.
const BASH_PREEXEC_LIKE: &str = r#"__bp_imported=defined
__bp_set_ret_value() { return ${1:-}; }
__bp_precmd_invoke_cmd() {
    local s=$? f
    for f in "${precmd_functions[@]}"; do __bp_set_ret_value "$s"; "$f"; done
}
__bp_install() {
    PROMPT_COMMAND=$'__bp_precmd_invoke_cmd\n'"${PROMPT_COMMAND//$'\n'__bp_install/}"
    precmd_functions+=(precmd)
}
PROMPT_COMMAND+=$'\n'__bp_install"#;

/// Where the user's `history -a` runs, relative to the hook.
#[derive(Debug, Clone, Copy)]
enum HistoryAppend {
    /// `PROMPT_COMMAND="history -a"` set before the hook loads.
    PromptCommandString,
    /// `PROMPT_COMMAND+=('history -a')` added after the hook loaded.
    PromptCommandArrayAfter,
    /// bash-preexec's `precmd() { history -a; }`, bash-preexec loaded last.
    BashPreexecPrecmd,
}

/// Types `commands` (lines joined by Enter) into a bash started with `rc`
/// (with or without the hook), the last of which ends the shell, and returns
/// the history file it leaves.
fn bash_history_file(rc: &Rc, commands: &[&str]) -> Vec<u8> {
    bash_files_at_exit(rc, commands, &[]).remove(0)
}

/// Runs `commands` in an interactive bash in tmux, the last of which ends
/// the shell, and returns its history file and then each of `files` (below
/// its home; empty when missing) as they are once it has exited.
fn bash_files_at_exit(rc: &Rc, commands: &[&str], files: &[&str]) -> Vec<Vec<u8>> {
    let sb = Sandbox::new();
    if rc.cached {
        // `init` run as the rc line would: the copy is kept, so that the
        // shell loads it (and starts its recorder at the first prompt).
        let out = sb.cmd().args(["init", "bash"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let histfile = sb.path().join("home/.bash_history");
    fs::write(&histfile, "from an earlier shell\n").unwrap();
    let (tmux, pane) = Tmux::start(&sb, &sb.shell(Shell::Bash, rc));
    tmux.run(&["set-option", "-g", "-w", "remain-on-exit", "on"]);
    pane.ready();
    for (i, command) in commands.iter().enumerate() {
        for line in command.split('\n') {
            pane.line(line);
        }
        if i + 1 < commands.len() {
            pane.wait_for("READY", i + 2);
        }
    }
    let start = std::time::Instant::now();
    while tmux.run(&["display-message", "-p", "-t", &pane.id, "#{pane_dead}"]) != "1" {
        assert!(
            start.elapsed() < crate::support::PATIENCE,
            "the shell did not exit:\n{}",
            pane.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut read = vec![fs::read(&histfile).unwrap()];
    read.extend(
        files
            .iter()
            .map(|f| fs::read(sb.path().join("home").join(f)).unwrap_or_default()),
    );
    read
}

/// On the way out the hook records the line that ends the shell from its
/// EXIT trap, then runs the user's: which sees its own variables (not the
/// hook's), and runs under `set -e` even when the record fails (no
/// recorder, the binary gone).
#[test]
fn bash_runs_the_users_exit_trap_after_a_failed_record_on_the_way_out() {
    let trap = "end=user-end; trap 'printf \"%s|%s|\" \"$end\" \"$?\" >> ~/exit-trap-ran' EXIT";
    let lines = [
        // No recorder, and no binary to record with.
        "__tmux_audit_recorder= __tmux_audit_fifo= __tmux_audit_pending= __tmux_audit_bin=/nonexistent/tmux-audit",
        "set -e",
        "echo gone; exit 4",
    ];
    let with = bash_files_at_exit(&Rc::default().before(trap), &lines, &["exit-trap-ran"]);
    assert_eq!(String::from_utf8_lossy(&with[1]), "user-end|4|");
}

/// The hook sets its EXIT trap at the first prompt (bash gives a trap's
/// text back only through a fork, which loading the hook does not pay):
/// the user's EXIT trap set before the hook, or after it in ~/.bashrc,
/// still runs once on the way out, word for word (a quote, a line break),
/// seeing the shell's exit status as `$?`; and so does the hook's, which
/// keeps a secret typed with a leading space on the line that ends the
/// shell out of the history file. From `init` and from the kept copy
/// (which starts its recorder in the same command substitution), also with
/// a DEBUG trap of the user's that prints, run in functions (`set -T`).
#[test]
fn bash_runs_the_users_exit_trap_set_before_or_after_the_hook_and_its_own() {
    let trap = "trap 'printf \"%s|\" \"it'\\''s\" \"two\nlines\" \"$?\" >> ~/exit-trap-ran' EXIT";
    let history = "HISTCONTROL=ignoreboth\nHISTFILE=~/.bash_history\n";
    let lines = ["echo a", " echo mysql -uroot -pX; exit 3"];
    for cached in [false, true] {
        for trap_after in [false, true] {
            for debug_trap in [false, true] {
                let case =
                    format!("kept copy {cached}, trap after {trap_after}, DEBUG trap {debug_trap}");
                let mut before = history.to_string();
                if debug_trap {
                    before.push_str("set -T\ntrap 'echo debug-trap-ran' DEBUG\n");
                }
                let mut rc = if trap_after {
                    Rc::default().before(&before).after(trap)
                } else {
                    Rc::default().before(&format!("{before}{trap}\n"))
                };
                if cached {
                    rc = rc.cached();
                }
                let with = bash_files_at_exit(&rc, &lines, &["exit-trap-ran"]);
                let without = bash_files_at_exit(&rc.without_hook(), &lines, &["exit-trap-ran"]);
                assert_eq!(
                    String::from_utf8_lossy(&with[1]),
                    "it's|two\nlines|3|",
                    "{case}: the user's EXIT trap"
                );
                assert_eq!(with[1], without[1], "{case}");
                assert_eq!(
                    String::from_utf8_lossy(&with[0]),
                    String::from_utf8_lossy(&without[0]),
                    "{case}: the history file"
                );
                let history = String::from_utf8_lossy(&with[0]);
                assert!(
                    history.contains("\necho a\n") && !history.contains("mysql"),
                    "{case}: the secret: {history:?}"
                );
            }
        }
    }
}

/// ~/.bashrc sourced again after the first prompt: its init line loads
/// nothing twice, and the EXIT trap it sets after that line is chained at
/// the next prompt, as at the first. So the user's trap runs with the exit
/// status, and a secret on the line that ends the shell stays out of the
/// history file, with `init`'s line and with the kept copy. Sourced again
/// with no new trap, the hook's own is not chained to itself.
#[test]
fn bash_chains_an_exit_trap_set_when_the_rc_file_is_loaded_again() {
    let trap = "trap 'printf \"%s|\" late \"$?\" >> ~/exit-trap-ran' EXIT";
    let history = "HISTCONTROL=ignoreboth\nHISTFILE=~/.bash_history\n";
    let bin = crate::support::bin();
    for cached in [false, true] {
        for new_trap in [true, false] {
            let case = format!("kept copy {cached}, a new trap {new_trap}");
            let init = if cached {
                crate::support::cached_init_line(Shell::Bash, &bin)
            } else {
                format!("eval \"$('{}' init bash)\"", bin.display())
            };
            let again = if new_trap {
                format!("{init}; {trap}")
            } else {
                init
            };
            let lines = ["echo a", &again, " echo mysql -uroot -pX; exit 3"];
            let mut rc = Rc::default().before(history);
            if cached {
                rc = rc.cached();
            }
            let with = bash_files_at_exit(&rc, &lines, &["exit-trap-ran"]);
            let ran = String::from_utf8_lossy(&with[1]);
            assert_eq!(ran, if new_trap { "late|3|" } else { "" }, "{case}");
            let history = String::from_utf8_lossy(&with[0]);
            assert!(
                history.contains("\necho a\n") && !history.contains("mysql"),
                "{case}: the secret: {history:?}"
            );
        }
    }
}

#[test]
fn bash_leaves_the_users_history_file_byte_for_byte_as_without_the_hook() {
    // The issue's reproduction: leading-space lines and duplicates that
    // HISTCONTROL=ignoreboth keeps out, a multi-line loop, and a secret
    // typed with a leading space on a line that ends the shell.
    let lines = [
        " echo s1",
        "echo a",
        "echo b",
        "echo b",
        "echo c",
        " echo s2",
        "echo d",
        "echo e",
        "for i in 1 2\ndo echo $i\ndone",
        " echo mysql -uroot -pX; exit",
    ];
    let mut cases = Vec::new();
    for place in [
        HistoryAppend::PromptCommandString,
        HistoryAppend::PromptCommandArrayAfter,
        HistoryAppend::BashPreexecPrecmd,
    ] {
        for histappend in [true, false] {
            for lithist in [false, true] {
                cases.push((place, histappend, lithist));
            }
        }
    }
    // Twelve cases of two shells each, every case a tmux server of its
    // own: run side by side, as the shells mostly wait.
    std::thread::scope(|scope| {
        let running: Vec<_> = cases
            .into_iter()
            .map(|(place, histappend, lithist)| {
                scope.spawn(move || {
                    let mut before =
                        String::from("HISTCONTROL=ignoreboth\nHISTFILE=~/.bash_history\n");
                    if histappend {
                        before.push_str("shopt -s histappend\n");
                    }
                    if lithist {
                        before.push_str("shopt -s lithist\n");
                    }
                    let after = match place {
                        HistoryAppend::PromptCommandString => {
                            before.push_str("PROMPT_COMMAND='history -a'\n");
                            String::new()
                        }
                        HistoryAppend::PromptCommandArrayAfter => {
                            "PROMPT_COMMAND=(\"${PROMPT_COMMAND[@]}\" 'history -a')".to_string()
                        }
                        HistoryAppend::BashPreexecPrecmd => {
                            format!("{BASH_PREEXEC_LIKE}\nprecmd() {{ history -a; }}")
                        }
                    };
                    let rc = Rc::default().before(&before).after(&after);
                    let with = bash_history_file(&rc, &lines);
                    let without = bash_history_file(&rc.clone().without_hook(), &lines);
                    assert_eq!(
                        String::from_utf8_lossy(&with),
                        String::from_utf8_lossy(&without),
                        "history -a in {place:?}, histappend {histappend}, lithist {lithist}"
                    );
                })
            })
            .collect();
        for case in running {
            if let Err(panic) = case.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

#[test]
fn bash_err_trap_and_set_e_behave_as_without_the_hook() {
    for user_prompt_command in [
        "PROMPT_COMMAND='history -a'",
        "PROMPT_COMMAND=('history -a')",
    ] {
        let sb = Sandbox::new();
        let errs = sb.path().join("err-trap");
        let rc = Rc::default().before(&format!(
            "{user_prompt_command}\ntrap 'echo ERR >> {}' ERR",
            errs.display()
        ));
        let s = Scenario::in_sandbox(sb, Shell::Bash, rc);
        s.run("false");
        s.run("false && true");
        s.run("true");
        assert_eq!(
            fs::read_to_string(&errs).unwrap(),
            "ERR\n",
            "once, for `false` alone, with {user_prompt_command}"
        );
        // Under `set -e`, a failing `&&` list does not end the shell.
        s.run("set -e");
        s.run("[ -f /nope ] && :");
        s.pane.line("echo still-'open'");
        s.pane.wait_for("still-open", 1);
    }
}

#[test]
fn bash_a_tool_that_looks_for_its_hook_by_semicolon_finds_it_after_the_rc_is_sourced_again() {
    let sb = Sandbox::new();
    let runs = sb.path().join("direnv-runs");
    // direnv's own check.
    let direnv = format!(
        "_direnv_hook() {{ echo run >> {}; }}\n\
         if [[ \";${{PROMPT_COMMAND[*]:-}};\" != *\";_direnv_hook;\"* ]]; then\n\
         PROMPT_COMMAND=\"_direnv_hook${{PROMPT_COMMAND:+;$PROMPT_COMMAND}}\"\n\
         fi",
        runs.display()
    );
    let rc = Rc::default().before(&direnv);
    let command = sb.shell(Shell::Bash, &rc);
    let rc_file = command
        .split_whitespace()
        .skip_while(|w| *w != "--rcfile")
        .nth(1)
        .unwrap()
        .to_string();
    let (tmux, pane) = Tmux::start(&sb, &command);
    pane.ready();
    let s = Scenario { tmux, pane, sb };
    s.run(&format!("source {rc_file}"));
    // Each copy is taken after every prompt hook before it has run.
    let (a, b) = (s.file("runs-a"), s.file("runs-b"));
    s.run(&format!("cp {} {}", runs.display(), a.display()));
    s.run("true");
    s.run("true");
    s.run(&format!("cp {} {}", runs.display(), b.display()));
    let count = |path: &Path| s.read_when_written(path).lines().count();
    assert_eq!(count(&b) - count(&a), 3, "one run per prompt");
}

#[test]
fn bash_recorder_shows_in_no_job_pid_or_pipe_status() {
    let sb = Sandbox::new();
    let seen = sb.path().join("seen");
    // A powerline-style prompt hook after the hook (README order: hook last,
    // so it comes first), as an array so bash keeps PIPESTATUS for it.
    let rc = Rc::default().before(&format!(
        "PROMPT_COMMAND=('echo \"jobs=$(jobs -p | wc -l) last=${{!-none}} pipe=${{PIPESTATUS[*]}}\" >> {}')",
        seen.display()
    ));
    let s = Scenario::in_sandbox(sb, Shell::Bash, rc);
    s.run("false | true");
    s.run("true");
    s.sb.wait_rows("the prompt hook", |_| {
        fs::read_to_string(&seen).is_ok_and(|m| m.lines().count() >= 3)
    });
    let seen = fs::read_to_string(&seen).unwrap();
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            "jobs=0 last=none pipe=0",
            "jobs=0 last=none pipe=1 0",
            "jobs=0 last=none pipe=0"
        ]
    );
}

#[test]
fn bash_duration_leaves_out_the_hooks_bash_preexec_runs_first() {
    let rc = Rc::default().after(&format!("{BASH_PREEXEC_LIKE}\nprecmd() {{ sleep 0.5; }}"));
    let s = Scenario::new(Shell::Bash, rc);
    for _ in 0..2 {
        let r = s.run("true");
        let duration = r.duration_us.unwrap();
        assert!(
            duration < 400_000,
            "`true` took {duration} µs: the slow precmd was counted"
        );
    }
}

#[test]
fn bash_under_set_u_with_epochrealtime_unset_records_on() {
    let s = Scenario::new(
        Shell::Bash,
        Rc::default().after("set -u\nunset EPOCHREALTIME"),
    );
    assert_eq!(s.run("echo one").command, "echo one");
    let r = s.run("sh -c 'exit 3'");
    assert_eq!(
        (r.command.as_str(), r.exit_status),
        ("sh -c 'exit 3'", Some(3))
    );
    let screen = s.pane.screen();
    assert!(!screen.contains("unbound"), "{screen}");
}

/// A temporary directory that exists and is full: a here-document that
/// goes through a file there fails.
fn full_temp_dir(sb: &Sandbox) -> ProtectedDir {
    let dir = ProtectedDir::new(&sb.path().join("full-tmp"));
    let _ = fs::write(dir.path.join("filler"), vec![0u8; 16 << 20]);
    dir
}

#[test]
fn bash_hands_a_long_command_over_without_a_temporary_file() {
    let sb = Sandbox::new();
    let tmp = full_temp_dir(&sb);
    let rc = Rc::default().after(&format!("export TMPDIR={}", tmp.path.display()));
    let s = Scenario::in_sandbox(sb, Shell::Bash, rc);
    let command = format!("echo {} | wc -c", "0123456789abcdef".repeat(9000));
    s.pane.paste(&command);
    s.pane.key("Enter");
    let rows = s.sb.wait_rows("the long command", |rows| !rows.is_empty());
    assert!(rows[0].command == command, "the text differs");
    assert_eq!(s.run("echo short").command, "echo short");
}

#[test]
fn zsh_hands_the_command_over_without_a_temporary_file() {
    let sb = Sandbox::new();
    let tmp = full_temp_dir(&sb);
    let rc = Rc::default().after(&format!("TMPPREFIX={}/zsh", tmp.path.display()));
    let s = Scenario::in_sandbox(sb, Shell::Zsh, rc);
    assert_eq!(s.run("echo one").command, "echo one");
    let command = format!("echo {} | wc -c", "0123456789abcdef".repeat(9000));
    s.pane.paste(&command);
    s.pane.key("Enter");
    let rows = s.sb.wait_rows("the long command", |rows| rows.len() == 2);
    assert!(rows[1].command == command, "the text differs");
    // And where no temporary file can be made at all.
    let s = Scenario::new(Shell::Zsh, Rc::default().after("TMPPREFIX=/nonexistent/x"));
    assert_eq!(s.run("echo two").command, "echo two");
    assert!(s.sb.log().is_empty(), "{}", s.sb.log());
}

#[test]
fn fish_readme_line_runs_init_only_in_interactive_shells() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("| fish"))
        .and_then(|l| l.split('`').nth(3))
        .expect("the README's fish line")
        .replace("\\|", "|");
    assert!(line.contains("tmux-audit init fish | source"), "{line}");
    let sb = Sandbox::new();
    let bin_dir = sb.path().join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(&sb.bin, bin_dir.join("tmux-audit")).unwrap();
    let config = sb.path().join("config/fish/config.fish");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, format!("{line}\n")).unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    // A script: the README line does not run tmux-audit at all (here it
    // is not even on PATH, and fish says nothing).
    let out = std::process::Command::new("fish")
        .args(["-c", "echo script"])
        .env_clear()
        .envs(sb.env())
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).as_ref(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        ("script\n", ""),
        "fish -c ran the README line's init"
    );
    // An interactive fish with that line (tmux-audit on PATH) records.
    let (tmux, pane) = Tmux::start(
        &sb,
        &format!("env PATH={path} fish -i -C 'function fish_prompt; printf \"READY> \"; end'"),
    );
    pane.ready();
    let s = Scenario { tmux, pane, sb };
    assert_eq!(s.run("echo recorded").command, "echo recorded");
}
