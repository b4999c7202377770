//! `tmux-audit pick` behind Ctrl-R, in real bash, zsh and fish inside a
//! private tmux server: the picker filters as keys are typed, Enter puts
//! the command on the prompt line without running it, Esc leaves the line
//! as it was, Ctrl-R switches the scope, and `init SHELL --no-bind` leaves
//! Ctrl-R as the shell's own.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Pane, Rc, Sandbox, Shell, Tmux, PATIENCE};

/// One shell with the hook in a pane of a private tmux server. (Fields
/// drop in order: the server goes before its sandbox directory.)
struct Scenario {
    tmux: Tmux,
    pane: Pane,
    shell: Shell,
    sb: Sandbox,
}

impl Scenario {
    fn new(shell: Shell, rc: Rc) -> Scenario {
        Scenario::in_sandbox(Sandbox::new(), shell, rc)
    }

    fn in_sandbox(sb: Sandbox, shell: Shell, rc: Rc) -> Scenario {
        let (tmux, pane) = Tmux::start(&sb, &sb.shell(shell, &rc));
        pane.ready();
        Scenario {
            tmux,
            pane,
            shell,
            sb,
        }
    }

    /// Runs each command, waiting for its record.
    fn run(&self, pane: &Pane, commands: &[&str]) {
        for command in commands {
            let before = self.sb.rows().len();
            pane.line(command);
            self.sb
                .wait_rows(&format!("the record of {command:?}"), |rows| {
                    rows.len() > before
                });
        }
    }

    /// The prompt as the test's rc file sets it.
    fn prompt(&self) -> &'static str {
        match self.shell {
            Shell::Bash => "READY$ ",
            Shell::Zsh => "READY# ",
            Shell::Fish => "READY> ",
        }
    }

    fn commands(&self) -> Vec<String> {
        self.sb.rows().iter().map(|r| r.command.clone()).collect()
    }
}

/// Waits until the pane's screen satisfies `done`; fails with the screen
/// after [`PATIENCE`].
fn wait_screen(pane: &Pane, what: &str, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let screen = pane.screen();
        if done(&screen) {
            return screen;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "pane {} never showed {what}; screen:\n{screen}",
            pane.id
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The last line of the screen with anything on it.
fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// The picker is open with this filter typed (its status line and its
/// prompt on screen).
fn picker_shows(screen: &str, filter: &str) -> bool {
    screen.contains("Esc leave") && last_line(screen).trim_end() == format!("> {filter}").trim_end()
}

const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

#[test]
fn ctrl_r_filters_as_typed_and_enter_puts_the_command_on_the_line_unrun() {
    for shell in SHELLS {
        let s = Scenario::new(shell, Rc::default().after(strict(shell)));
        s.run(
            &s.pane,
            &["echo alpha-one", "echo beta-two", "echo alpha-three"],
        );
        s.pane.key("C-r");
        wait_screen(&s.pane, "the picker, every command", |screen| {
            picker_shows(screen, "") && screen.contains("beta-two")
        });
        s.pane.type_text("alpha");
        let screen = wait_screen(&s.pane, "the rows of `alpha`", |screen| {
            picker_shows(screen, "alpha")
                && screen.contains("echo alpha-one")
                && !screen.contains("beta-two")
        });
        // The newest match is selected, next to the filter.
        let selected = screen
            .lines()
            .find(|l| l.starts_with('>') && l.contains("echo"));
        assert!(
            selected.is_some_and(|l| l.trim_end().ends_with("echo alpha-three")),
            "{shell:?}: {screen}"
        );
        s.pane.key("Enter");
        let landed = format!("{}echo alpha-three", s.prompt());
        wait_screen(&s.pane, &format!("{landed:?} on the prompt"), |screen| {
            last_line(screen).trim_end() == landed
        });
        // Still on the line, not run: what is typed next ends up in the
        // same command, and the one run is recorded once.
        s.run(&s.pane, &[" picked"]);
        assert_eq!(
            s.commands(),
            [
                "echo alpha-one",
                "echo beta-two",
                "echo alpha-three",
                "echo alpha-three picked"
            ],
            "{shell:?}"
        );
    }
}

/// The user's strict mode, after the hook is loaded (bash: with an ERR
/// trap that shows where it fires, and a DEBUG trap, run in functions,
/// that prints in command substitutions and subshells).
fn strict(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => {
            "set -u\ntrap 'echo ERR-TRAP' ERR\nset -T\ntrap '((BASH_SUBSHELL == 0)) || echo in-a-subshell' DEBUG"
        }
        Shell::Zsh => "setopt nounset",
        Shell::Fish => "",
    }
}

#[test]
fn esc_leaves_a_partly_typed_line_and_the_status_as_they_were() {
    for shell in SHELLS {
        let s = Scenario::new(shell, Rc::default().after(strict(shell)));
        s.run(&s.pane, &["echo gamma", "false"]);
        s.pane.type_text("echo part");
        s.pane.key("C-r");
        // The line typed so far is the picker's first filter.
        wait_screen(&s.pane, "the picker", |screen| {
            picker_shows(screen, "echo part")
        });
        s.pane.type_text("zz");
        wait_screen(&s.pane, "the filter typed", |screen| {
            picker_shows(screen, "echo partzz")
        });
        s.pane.key("Escape");
        let line = format!("{}echo part", s.prompt());
        wait_screen(&s.pane, &format!("{line:?} back"), |screen| {
            !screen.contains("Esc leave") && last_line(screen).trim_end() == line
        });
        let status = match shell {
            Shell::Fish => "$status",
            _ => "$?",
        };
        s.run(&s.pane, &[&format!("ial {status}")]);
        assert_eq!(
            s.commands().last().unwrap(),
            &format!("echo partial {status}"),
            "{shell:?}"
        );
        // The status of `false`, untouched by the binding.
        wait_screen(&s.pane, "the status of `false`", |screen| {
            screen.lines().any(|l| l.trim_end() == "partial 1")
        });
        // Handed back by the binding, it fired no ERR trap: only `false` did.
        if shell == Shell::Bash {
            let screen = s.pane.screen();
            assert_eq!(screen.matches("ERR-TRAP").count(), 1, "{screen}");
        }
    }
}

#[test]
fn ctrl_r_in_the_picker_switches_between_pane_session_host_and_everything() {
    let s = Scenario::new(Shell::Bash, Rc::default());
    let other = s.tmux.split(&s.sb.shell(Shell::Bash, &Rc::default()));
    other.ready();
    s.run(&s.pane, &["echo from-this-pane"]);
    s.run(&other, &["echo from-the-other-pane"]);
    s.pane.key("C-r");
    wait_screen(&s.pane, "every command", |screen| {
        screen.contains("[everything]")
            && screen.contains("echo from-this-pane")
            && screen.contains("echo from-the-other-pane")
    });
    s.pane.key("C-r");
    wait_screen(&s.pane, "this pane's commands only", |screen| {
        screen.contains("[pane]")
            && screen.contains("echo from-this-pane")
            && !screen.contains("echo from-the-other-pane")
    });
    s.pane.key("C-r");
    wait_screen(&s.pane, "this session's commands", |screen| {
        screen.contains("[session]")
            && screen.contains("echo from-this-pane")
            && screen.contains("echo from-the-other-pane")
    });
    s.pane.key("C-r");
    wait_screen(&s.pane, "this host's commands", |screen| {
        screen.contains("[host]") && screen.contains("echo from-the-other-pane")
    });
    s.pane.key("C-g");
    wait_screen(&s.pane, "the prompt back", |screen| {
        !screen.contains("Esc leave") && last_line(screen).trim_end() == "READY$"
    });
}

/// The picker's frame for a terminal `lines` high: the status line next
/// to last, the filter's prompt last.
fn frame_fits(screen: &str, lines: usize) -> bool {
    let rows: Vec<&str> = screen.lines().collect();
    rows.len() == lines
        && rows[lines - 2].contains("Esc leave")
        && rows[lines - 1].trim_end() == ">"
}

#[test]
fn a_terminal_resized_while_the_picker_is_open_gets_a_frame_of_its_size() {
    let s = Scenario::new(Shell::Bash, Rc::default());
    s.run(&s.pane, &["echo before-the-resize"]);
    s.pane.key("C-r");
    wait_screen(&s.pane, "the picker, 50 lines high", |screen| {
        frame_fits(screen, 50) && screen.contains("echo before-the-resize")
    });
    for lines in ["30", "41"] {
        s.tmux.run(&["resize-window", "-x", "120", "-y", lines]);
        let lines: usize = lines.parse().unwrap();
        wait_screen(
            &s.pane,
            &format!("the picker, {lines} lines high"),
            |screen| frame_fits(screen, lines) && screen.contains("echo before-the-resize"),
        );
    }
    s.pane.key("Escape");
    wait_screen(&s.pane, "the prompt back", |screen| {
        !screen.contains("Esc leave") && last_line(screen).trim_end() == "READY$"
    });
}

#[test]
fn with_the_binary_gone_ctrl_r_leaves_the_line_and_prints_nothing() {
    for shell in SHELLS {
        let mut sb = Sandbox::new();
        let copy = sb.path().join("tmux-audit");
        crate::support::copy_of_the_binary(&copy);
        sb.bin = copy.clone();
        let s = Scenario::in_sandbox(sb, shell, Rc::default().after(strict(shell)));
        s.pane.type_text("echo kept");
        wait_screen(&s.pane, "the line typed", |screen| {
            last_line(screen).ends_with("echo kept")
        });
        std::fs::remove_file(&copy).unwrap();
        s.pane.key("C-r");
        s.pane.line(" as-is");
        let screen = wait_screen(&s.pane, "the line run as typed", |screen| {
            screen.lines().any(|l| l.trim_end() == "kept as-is")
        });
        let before_run: Vec<&str> = screen
            .lines()
            .take_while(|l| l.trim_end() != "kept as-is")
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            before_run,
            [format!("{}echo kept as-is", s.prompt())],
            "{shell:?}: nothing printed"
        );
    }
}

#[test]
fn no_bind_leaves_ctrl_r_as_the_shells_own() {
    for shell in SHELLS {
        let bin = crate::support::bin().display().to_string();
        let init = match shell {
            Shell::Bash => format!("eval \"$('{bin}' init bash --no-bind)\""),
            Shell::Zsh => format!("eval \"$('{bin}' init zsh --no-bind)\""),
            Shell::Fish => format!("'{bin}' init fish --no-bind | source"),
        };
        let s = Scenario::new(shell, Rc::default().without_hook().after(&init));
        // The hook itself is loaded.
        s.run(&s.pane, &["echo recorded"]);
        s.pane.key("C-r");
        let own = match shell {
            Shell::Bash => "(reverse-i-search)",
            Shell::Zsh => "bck-i-search",
            Shell::Fish => "search:",
        };
        let screen = wait_screen(&s.pane, &format!("{own:?}"), |screen| screen.contains(own));
        assert!(!screen.contains("Esc leave"), "{shell:?}: {screen}");
        s.pane.key("C-g");
    }
}

#[test]
fn a_picker_ended_by_sigterm_gives_the_terminal_back() {
    let s = Scenario::new(Shell::Bash, Rc::default());
    s.run(&s.pane, &["echo before"]);
    s.pane.type_text("echo kept");
    s.pane.key("C-r");
    wait_screen(&s.pane, "the picker", |screen| {
        picker_shows(screen, "echo kept")
    });
    let picker =
        s.sb.processes()
            .into_iter()
            .find(|p| p.tmux_audit && p.cmdline.contains(" pick "))
            .expect("the picker's process");
    // SAFETY: plain kill(2) of a process this test started.
    unsafe { libc::kill(picker.pid, libc::SIGTERM) };
    // The shell's screen is back (the picker's is gone), with the line.
    wait_screen(&s.pane, "the shell's screen", |screen| {
        !screen.contains("Esc leave")
            && screen.contains("READY$ echo before")
            && last_line(screen).trim_end() == "READY$ echo kept"
    });
}

/// Runs `tmux-audit pick ARGS` with no controlling terminal (a new
/// session, as from cron or a script).
fn pick_without_a_terminal(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = sb.cmd();
    cmd.arg("pick")
        .args(args)
        .stdin(std::process::Stdio::null());
    // SAFETY: setsid(2) is async-signal-safe; it only detaches the child
    // from the test's terminal, if it has one.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn without_a_terminal_or_with_a_bad_pane_pick_says_why_in_one_line() {
    let sb = Sandbox::new();
    sb.record_numbered("1", "echo one");
    let out = pick_without_a_terminal(&sb, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/dev/tty") && err.contains("search"), "{err}");
    let out = pick_without_a_terminal(&sb, &["--pane", "%abc"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("\"%abc\" is not a tmux pane id"), "{err}");
}
