//! `tmux-audit init SHELL`: prints the hook script for a shell;
//! `tmux-audit init tmux`: registers the lifecycle hooks in a tmux server.
//!
//! The scripts live in `shell/` and are built into the binary. Two values are
//! filled in: the absolute path of this binary (so the hook does not search
//! PATH on every prompt) and the log file the hook writes to when it cannot
//! run the binary at all.

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{Exit, Run};
use crate::cli::{Init, InitTarget, Shell};
use tmux_audit::config::Config;
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
        let mut script = render(shell, exe, log);
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

pub fn render(shell: Shell, exe: &str, log: &str) -> String {
    let (template, quote): (&str, fn(&str) -> String) = match shell {
        Shell::Bash => (BASH, quote_posix),
        Shell::Zsh => (ZSH, quote_posix),
        Shell::Fish => (FISH, quote_fish),
    };
    template
        .replace("@TMUX_AUDIT_BIN@", &quote(exe))
        .replace("@TMUX_AUDIT_LOG@", &quote(log))
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
            let script = render(shell, "/bin/tmux-audit", "/log");
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
    fn every_placeholder_is_filled() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = render(shell, "/bin/tmux-audit", "/log");
            assert!(!script.contains("@TMUX_AUDIT"), "{shell:?}");
            assert!(script.contains("'/bin/tmux-audit'"), "{shell:?}");
        }
    }
}
