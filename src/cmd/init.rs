//! `tmux-audit init SHELL`: prints the hook script for a shell;
//! `tmux-audit init tmux`: registers the lifecycle hooks in a tmux server.
//!
//! The scripts live in `shell/` and are built into the binary. Filled in:
//! the absolute path of this binary (so the hook does not search PATH on
//! every prompt), the log file the hook writes to when it cannot run the
//! binary at all, the directory of the recorders' FIFOs, the recorder
//! `init` started for the shell running it, if any, and the `[capture]
//! exclude` patterns (matched by the hook with builtins, no process per
//! command).
//!
//! Each time, `init SHELL` also keeps a copy of the script (with no
//! recorder in it) in the cache directory, behind a first line that loads
//! it only while this binary and the config files are unchanged: the
//! faster rc line sources that copy and runs `init` only when it returns 1
//! (see `hook_cache`).

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{recorder, Exit, Run};
use crate::cli::{Init, InitTarget, Shell};
use std::path::Path;
use tmux_audit::config::{self, Capture, Config};

use tmux_audit::error_log;
use tmux_audit::hook_cache;
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
        let recorders = paths::recorders_dir()?;
        let recorders = recorders
            .to_str()
            .with_context(|| format!("the state path is not UTF-8: {}", recorders.display()))?;
        let files = Files {
            exe,
            log,
            recorders,
        };
        // Their times before their text: a change made in between makes the
        // kept copy stale, never the other way round.
        let configs = [config::system_path(), config::path()?];
        let config_time = hook_cache::newest_time(&configs);
        // A config.toml that cannot be read still gets the hook loaded (it
        // records commands), with the default exclusions; the log says why.
        let exclude = Config::load().map_or_else(
            |err| {
                store::log("init", &err);
                Capture::default().exclude
            },
            |config| config.capture.exclude,
        );
        let recorder = started_by(shell).then(|| start_recorder(shell)).flatten();
        let bound = |script: String| {
            if self.no_bind {
                without_binding(&script)
            } else {
                script
            }
        };
        let script = bound(render(shell, &files, recorder.as_ref(), &exclude));
        io::stdout().lock().write_all(script.as_bytes())?;
        // The shell has its hook; a copy that cannot be kept costs only the
        // faster rc line its speed: said in the log.
        let configs = Configs {
            paths: &configs,
            time: config_time,
        };
        // bash's hook chains a DEBUG trap the user set before it, which it
        // reads with `trap -p`; in a file read with `source` (the kept copy)
        // bash shows none, and the user's trap would be lost: with capture
        // on and exclusions set, the copy leaves bash to this line.
        let debug_trap = shell == Shell::Bash && !exclude.is_empty();
        if let Err(err) = keep_copy(
            shell,
            self.no_bind,
            &files,
            &configs,
            debug_trap,
            bound(render(shell, &files, None, &exclude)),
        ) {
            error_log::append(
                "init",
                &format!("cannot keep a copy of the hook script: {err:#}"),
                "check that the cache directory ($XDG_CACHE_HOME/tmux-audit) is yours and writable",
            );
        }
        Ok(Exit::Success)
    }
}

/// The config files (the system's, the user's) and the newest modification
/// time among those that exist, read before their text.
struct Configs<'a> {
    paths: &'a [std::path::PathBuf],
    time: std::time::SystemTime,
}

/// What the scripts name: this binary, the log file, the recorders' FIFOs.
pub struct Files<'a> {
    pub exe: &'a str,
    pub log: &'a str,
    pub recorders: &'a str,
}

/// Keeps `script` (with no recorder in it) in the cache directory for the
/// faster rc line, behind a first line that loads it only while this
/// binary is the one that wrote it (the copy carries the binary's
/// modification time) and the state directory is the same.
fn keep_copy(
    shell: Shell,
    no_bind: bool,
    files: &Files,
    configs: &Configs,
    debug_trap: bool,
    script: String,
) -> Result<()> {
    let path = hook_cache::path(shell_name(shell), no_bind)?;
    let copy = path
        .to_str()
        .with_context(|| format!("the cache path is not UTF-8: {}", path.display()))?;
    let time = hook_cache::binary_time(Path::new(files.exe))?;
    // The exclusions (and whether capture is on) are part of the script:
    // a config file changed since makes the copy return 1 (see `guard`).
    let stamp = hook_cache::stamp(&path, configs.time)
        .with_context(|| format!("cannot write the time stamp beside {}", path.display()))?;
    // bash parses the whole file at every shell start, about half of it
    // comments: the copy leaves them out (`init bash` still prints them).
    let script = match shell {
        Shell::Bash => without_comment_lines(&script),
        Shell::Zsh | Shell::Fish => script,
    };
    let text = format!(
        "{}{script}return 0\n",
        guard(shell, files, copy, &stamp, configs.paths, debug_trap)?
    );
    hook_cache::store(&path, text.as_bytes(), time)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The first lines of the kept copy: it returns 1, unloaded, when the
/// binary at its path is gone or not the one that wrote it (its
/// modification time differs from the copy's), when a config file is newer
/// than `stamp` (which carries the newest config time `init` saw: the
/// script holds the `[capture]` settings), or when the state directory the
/// script names is not the one this shell's environment gives; with
/// `debug_trap`, also when capture is on (`$TMUX_AUDIT_CAPTURE`), where
/// the script would set a DEBUG trap.
fn guard(
    shell: Shell,
    files: &Files,
    copy: &str,
    stamp: &Path,
    configs: &[std::path::PathBuf],
    debug_trap: bool,
) -> Result<String> {
    let name = shell_name(shell);
    let head = format!(
        "# A copy of `tmux-audit init {name}` ({} {}), kept for the rc line that sources it\n\
         # and runs `init` when it returns 1: it loads only while the binary that wrote\n\
         # it is there unchanged (this file carries its modification time) and no\n\
         # config file changed since.\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
    );
    let utf8 = |path: &Path| {
        path.to_str()
            .map(str::to_string)
            .with_context(|| format!("the path is not UTF-8: {}", path.display()))
    };
    let stamp = utf8(stamp)?;
    let configs = configs
        .iter()
        .map(|c| utf8(c))
        .collect::<Result<Vec<_>>>()?;
    Ok(match shell {
        Shell::Bash | Shell::Zsh => {
            let (bin, copy, log, stamp) = (
                quote_posix(files.exe),
                quote_posix(copy),
                quote_posix(files.log),
                quote_posix(&stamp),
            );
            // (zsh's `-nt` is false when the stamp is missing: bash's and
            // fish's are true. So the stamp must be there.)
            let mut unchanged = format!(" && -e {stamp}");
            unchanged.extend(
                configs
                    .iter()
                    .map(|c| format!(" && ! {} -nt {stamp}", quote_posix(c))),
            );
            if debug_trap {
                unchanged.push_str(" && -z ${TMUX_AUDIT_CAPTURE-}");
            }
            format!(
                "{head}[[ -x {bin} && ! {bin} -nt {copy} && ! {bin} -ot {copy}{unchanged} && \
                 ${{XDG_STATE_HOME:-${{HOME-}}/.local/state}}/tmux-audit/tmux-audit.log == {log} ]] || return 1\n"
            )
        }
        Shell::Fish => {
            let (bin, copy, log, stamp) = (
                quote_fish(files.exe),
                quote_fish(copy),
                quote_fish(files.log),
                quote_fish(&stamp),
            );
            let mut changed = format!("; or not test -e {stamp}");
            changed.extend(
                configs
                    .iter()
                    .map(|c| format!("; or test {} -nt {stamp}", quote_fish(c))),
            );
            format!(
                "{head}if not test -x {bin}; or test {bin} -nt {copy}; or test {bin} -ot {copy}{changed}\n    return 1\nend\n\
                 set -l __tmux_audit_state $HOME/.local/state\n\
                 test -n \"$XDG_STATE_HOME\"; and set __tmux_audit_state $XDG_STATE_HOME\n\
                 test \"$__tmux_audit_state/tmux-audit/tmux-audit.log\" = {log}; or return 1\n"
            )
        }
    })
}

fn shell_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
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
    let on_terminal = tmux_audit::context::tty_of(parent).is_some();
    if !into_pipe || !on_terminal {
        return false;
    }
    let comm = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    comm.trim_end() == shell_name(shell)
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
    files: &Files,
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
        .replace("@TMUX_AUDIT_BIN@", &quote(files.exe))
        .replace("@TMUX_AUDIT_LOG@", &quote(files.log))
        .replace("@TMUX_AUDIT_RECORDERS@", &quote(files.recorders))
        .replace("@TMUX_AUDIT_FOR@", &quote(&shell_pid))
        .replace("@TMUX_AUDIT_FIFO@", &quote(&fifo))
        .replace("@TMUX_AUDIT_RECORDER@", &quote(&pid))
        .replace(
            "@TMUX_AUDIT_EXCLUDE@",
            &exclude
                .iter()
                .map(|p| match shell {
                    Shell::Bash | Shell::Zsh => quote(&glob_literal(p)),
                    // fish's `string match` knows only `*` and `?`.
                    Shell::Fish => quote(p),
                })
                .collect::<Vec<_>>()
                .join(" "),
        )
}

/// An exclude pattern for bash's and zsh's own matching: `*` and `?` as
/// wildcards, and the characters either shell's patterns give a meaning
/// (`[`, `(`, `|`, `<`, `~`, `#`, `^`, `!`, …) escaped, so that they match
/// themselves, as in fish, and a pattern zsh cannot parse never makes it
/// print an error at each command. (zsh takes a backslash before any
/// other character, a space or `/`, as a backslash to match.)
fn glob_literal(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    for c in pattern.chars() {
        if "[]()|<>~#^!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

/// `script` without its blank lines and the lines whose first non-blank
/// character is `#`. Sound for a script none of whose strings (or
/// here-documents) spanning lines holds such a line: for bash's, tested by
/// comparing what bash defines from either text
/// (`init::the_kept_bash_copy_defines_what_init_s_script_defines`).
fn without_comment_lines(script: &str) -> String {
    script
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !line.is_empty() && !line.starts_with('#')
        })
        .flat_map(|line| [line, "\n"])
        .collect()
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

    const FILES: Files = Files {
        exe: "/bin/tmux-audit",
        log: "/log",
        recorders: "/state/recorders",
    };

    #[test]
    fn paths_are_quoted_for_each_shell() {
        assert_eq!(quote_posix("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(quote_fish(r"/a b/it's\x"), r"'/a b/it\'s\\x'");
    }

    #[test]
    fn comment_and_blank_lines_are_left_out_and_no_other() {
        let script = "# head\nif x; then\n\n    # why\n    a=1 # kept\n  \tb='#x'\nfi\n";
        assert_eq!(
            without_comment_lines(script),
            "if x; then\n    a=1 # kept\n  \tb='#x'\nfi\n"
        );
    }

    #[test]
    fn no_bind_leaves_out_the_binding_and_only_it() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = render(shell, &FILES, None, &[]);
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
            let script = render(shell, &FILES, Some(&started), &[]);
            assert!(!script.contains("@TMUX_AUDIT"), "{shell:?}");
            for value in ["'4242'", "'/state/recorders/bash-4242.fifo'", "'4343'"] {
                assert!(script.contains(value), "{shell:?}: {value}");
            }
            let none = render(shell, &FILES, None, &[]);
            assert!(
                none.contains("'none'") && !none.contains("4343"),
                "{shell:?}"
            );
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = render(shell, &FILES, None, &[]);
            assert!(!script.contains("@TMUX_AUDIT"), "{shell:?}");
            assert!(script.contains("'/bin/tmux-audit'"), "{shell:?}");
        }
    }
}
