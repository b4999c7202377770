//! `tmux-audit init SHELL`: prints the hook script for a shell;
//! `tmux-audit init tmux`: registers the lifecycle hooks in a tmux server.
//!
//! The scripts live in `shell/` and are built into the binary. Values are
//! filled in: the absolute path of this binary (so the hook does not search
//! PATH on every prompt), the log file the hook writes to when it cannot
//! run the binary at all, its recorder, and the `[capture] exclude`
//! patterns (matched by the hook with builtins, no process per command).

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{recorder, Exit, Run};
use crate::cli::{Init, InitTarget, Shell};
use tmux_audit::config::{Capture, Config};
use tmux_audit::error_log;
use tmux_audit::lifecycle::{hooks, Recorder};
use tmux_audit::paths;
use tmux_audit::record::Entry;
use tmux_audit::store;

const BASH: &str = include_str!("../../shell/tmux-audit.bash");
const ZSH: &str = include_str!("../../shell/tmux-audit.zsh");
const FISH: &str = include_str!("../../shell/tmux-audit.fish");

impl Run for Init {
    fn run(&self) -> Result<Exit> {
        let shell = match self.target {
            InitTarget::Bash => Shell::Bash,
            InitTarget::Zsh => Shell::Zsh,
            InitTarget::Fish => Shell::Fish,
            InitTarget::Tmux => return init_tmux(),
        };
        let exe = std::env::current_exe().context("cannot find the path of tmux-audit itself")?;
        let exe = exe
            .to_str()
            .with_context(|| format!("the path of tmux-audit is not UTF-8: {}", exe.display()))?;
        let log = paths::log_file()?;
        let log = log
            .to_str()
            .with_context(|| format!("the log path is not UTF-8: {}", log.display()))?;
        let recorder = started_by(shell).then(|| start_recorder(shell)).flatten();
        // A config.toml that cannot be read still gets the hook loaded (it
        // records commands), with the default exclusions; the log says why.
        let exclude = Config::load().map_or_else(
            |err| {
                store::log("init", &err);
                Capture::default().exclude
            },
            |config| config.capture.exclude,
        );
        let mut script = render(shell, exe, log, recorder.as_ref(), &exclude);
        if self.no_bind {
            script = without_binding(&script);
        }
        io::stdout().lock().write_all(script.as_bytes())?;
        Ok(Exit::Success)
    }
}

/// Registers the hooks in the tmux server of `$TMUX`; when they were not
/// there before, also records what the server shows now. Prints nothing
/// (tmux would show it) unless it fails.
fn init_tmux() -> Result<Exit> {
    if std::env::var_os("TMUX").is_none_or(|v| v.is_empty()) {
        anyhow::bail!(
            "`init tmux` registers hooks in the tmux server it runs in, and this is not inside tmux: \
             add `run-shell 'tmux-audit init tmux'` to ~/.tmux.conf, or run it in a tmux pane"
        );
    }
    let exe = std::env::current_exe().context("cannot find the path of tmux-audit itself")?;
    // A config file that does not parse must not cost the lifecycle hooks:
    // capture stays off, and the log says why.
    let capture = match Config::load() {
        Ok(config) => config.capture.enabled,
        Err(err) => {
            error_log::append("init tmux", &format!("{err:#}"), "fix config.toml");
            false
        }
    };
    let registered = hooks::register(&exe, capture).context("cannot register the tmux hooks")?;
    // While tmux reads its config at start-up there is no pane yet, and
    // listing them fails: nothing to start or stop then (the hooks capture
    // the panes to come). A failure here must not cost tmux's start-up.
    if let Ok((server_pid, panes)) = hooks::pane_pipes() {
        let done = if capture {
            hooks::capture_panes(&exe, &panes).context("cannot start capturing the panes")
        } else {
            // Turned off: the captures of ours still running end too.
            let ours: Vec<String> = tmux_audit::capture::running()
                .into_iter()
                .filter(|(pid, _)| *pid == server_pid)
                .map(|(_, pane)| pane)
                .collect();
            hooks::stop_capture(&panes, &ours).context("cannot stop capturing the panes")
        };
        if let Err(err) = done {
            error_log::append("init tmux", &format!("{err:#}"), "run `tmux-audit doctor`");
        }
    }
    if registered.first_time {
        let by = Recorder::now(store::now_us());
        // The hooks are in place; a failure to record the server's state
        // now is not worth failing tmux's start-up for: it goes to the log.
        let recorded = hooks::current_state(&by).and_then(|events| {
            let entries: Vec<Entry> = events.into_iter().map(Entry::TmuxEvent).collect();
            store::save(&paths::database(None)?, &entries)
        });
        if let Err(err) = recorded {
            error_log::append(
                "init tmux",
                &format!("cannot record the state of the tmux server: {err:#}"),
                "run `tmux-audit doctor`",
            );
        }
    }
    Ok(Exit::Success)
}

/// A recorder `init` started for the shell that runs it.
pub struct Started {
    /// The shell's pid: the hook takes the recorder only when it is its
    /// own (`init`'s output may be kept in a file and loaded elsewhere).
    pub shell_pid: u32,
    pub recorder: recorder::Running,
}

/// True when `init` runs as an interactive shell loads the hook: its parent
/// is a shell of that kind reading a terminal (not a script, nor `bash -c`
/// over ssh reading ~/.bashrc), and its output goes into a pipe (`eval
/// "$(…)"`, `… | source`), not to a terminal or into a file kept for later.
fn started_by(shell: Shell) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let into_pipe = std::fs::metadata("/proc/self/fd/1").is_ok_and(|m| m.file_type().is_fifo());
    let parent = std::os::unix::process::parent_id();
    let on_terminal = tmux_audit::context::tty_of(parent)
        .is_some_and(|tty| tty.starts_with("/dev/pts/") || tty.starts_with("/dev/tty"));
    if !into_pipe || !on_terminal {
        return false;
    }
    let comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    let name = match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
    };
    comm.trim_end() == name
}

/// Starts the recorder of the shell that runs `init` (its parent). A
/// failure goes to the log and leaves the hook to start one itself.
fn start_recorder(shell: Shell) -> Option<Started> {
    let shell_pid = std::os::unix::process::parent_id();
    match recorder::start(shell, shell_pid, None) {
        // The script holds the path as text: one it cannot hold is left
        // to the hook's own start.
        Ok(recorder) if recorder.fifo.to_str().is_none() => None,
        Ok(recorder) => Some(Started {
            shell_pid,
            recorder,
        }),
        Err(err) => {
            store::log("init", &err);
            None
        }
    }
}

/// The hook script of `shell`; `exclude`: the `[capture] exclude`
/// patterns, as a list of words for the shell.
pub fn render(
    shell: Shell,
    exe: &str,
    log: &str,
    started: Option<&Started>,
    exclude: &[String],
) -> String {
    let (template, quote): (&str, fn(&str) -> String) = match shell {
        Shell::Bash => (BASH, quote_posix),
        Shell::Zsh => (ZSH, quote_posix),
        Shell::Fish => (FISH, quote_fish),
    };
    // Not a number: never any shell's pid.
    let (shell_pid, fifo, pid) = match started {
        Some(s) => (
            s.shell_pid.to_string(),
            s.recorder.fifo.to_string_lossy().into_owned(),
            s.recorder.pid.to_string(),
        ),
        None => ("none".to_string(), String::new(), String::new()),
    };
    template
        .replace("@TMUX_AUDIT_BIN@", &quote(exe))
        .replace("@TMUX_AUDIT_LOG@", &quote(log))
        .replace("@TMUX_AUDIT_FOR@", &quote(&shell_pid))
        .replace("@TMUX_AUDIT_FIFO@", &quote(&fifo))
        .replace("@TMUX_AUDIT_RECORDER@", &quote(&pid))
        .replace(
            "@TMUX_AUDIT_EXCLUDE@",
            &exclude
                .iter()
                .map(|p| quote(p))
                .collect::<Vec<_>>()
                .join(" "),
        )
}

/// The lines that bind Ctrl-R to `tmux-audit pick`, at the end of each
/// script between these markers, left out by `init SHELL --no-bind`.
const BINDING_START: &str = "# >>> tmux-audit pick: Ctrl-R";
const BINDING_END: &str = "# <<< tmux-audit pick: Ctrl-R";

fn without_binding(script: &str) -> String {
    match (script.find(BINDING_START), script.find(BINDING_END)) {
        (Some(start), Some(end)) if start < end => {
            let end = end + BINDING_END.len();
            let end = end + usize::from(script[end..].starts_with('\n'));
            format!("{}{}", &script[..start], &script[end..])
        }
        _ => script.to_string(),
    }
}

/// Single quotes for bash and zsh: nothing inside is special but `'`.
fn quote_posix(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Single quotes for fish, where `\` and `'` are escaped inside them.
fn quote_fish(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_each_shell() {
        assert_eq!(quote_posix("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(quote_fish(r"/a b/it's\x"), r"'/a b/it\'s\\x'");
    }

    #[test]
    fn no_bind_leaves_out_the_binding_and_only_it() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = render(shell, "/bin/tmux-audit", "/log", None, &[]);
            assert_eq!(script.matches(BINDING_START).count(), 1, "{shell:?}");
            assert_eq!(script.matches(BINDING_END).count(), 1, "{shell:?}");
            assert!(script.contains(" pick "), "{shell:?}");
            let unbound = without_binding(&script);
            assert!(!unbound.contains(" pick "), "{shell:?}");
            assert!(
                !unbound.contains("\\cr")
                    && !unbound.contains("\\C-r")
                    && !unbound.contains("'^R'")
            );
            assert!(
                unbound.contains("record --shell"),
                "{shell:?}: the hook stays"
            );
            assert!(
                script.trim_end().ends_with(BINDING_END),
                "{shell:?}: the binding comes last"
            );
        }
    }

    #[test]
    fn a_recorder_started_by_init_is_named_in_the_script_with_its_shell() {
        let started = Started {
            shell_pid: 4242,
            recorder: recorder::Running {
                fifo: "/state/recorders/bash-4242.fifo".into(),
                pid: 4343,
            },
        };
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = render(shell, "/bin/tmux-audit", "/log", Some(&started), &[]);
            assert!(!script.contains("@TMUX_AUDIT"), "{shell:?}");
            for value in ["'4242'", "'/state/recorders/bash-4242.fifo'", "'4343'"] {
                assert!(script.contains(value), "{shell:?}: {value}");
            }
            let none = render(shell, "/bin/tmux-audit", "/log", None, &[]);
            assert!(
                none.contains("'none'") && !none.contains("4343"),
                "{shell:?}"
            );
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = render(shell, "/bin/tmux-audit", "/log", None, &[]);
            assert!(!script.contains("@TMUX_AUDIT"), "{shell:?}");
            assert!(script.contains("'/bin/tmux-audit'"), "{shell:?}");
        }
    }
}
