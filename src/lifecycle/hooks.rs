//! The tmux side: the hooks `tmux-audit init tmux` registers in a tmux
//! server, and the state it records when it registers them first.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use super::{event_key, id, Client, Recorder, TmuxEvent, HOOK_FORMATS};

/// The hooks registered, one per lifecycle event tmux reports.
pub const HOOKS: &[&str] = &[
    "session-created",
    "session-closed",
    "session-renamed",
    "client-attached",
    "client-detached",
    "client-session-changed",
    "client-active",
    "window-linked",
    "window-unlinked",
    "window-renamed",
    "after-split-window",
    "after-new-window",
    "pane-exited",
    "pane-died",
];

/// In every hook command of ours, and in no command of the user's: how
/// `init tmux` finds its own hooks to replace them, and `doctor` to check them.
pub const MARKER: &str = " tmux-event ";

/// The command registered for `hook`: a background `run-shell` (tmux does
/// not wait for it) that hands every format of [`HOOK_FORMATS`] to `bin`.
/// It shows nothing in tmux (which would put the pane in view mode to show
/// output or a failed status): no output, and exit status 0 whatever `bin`
/// does, also when it is gone (`doctor` tells about that). Hence no `exec`:
/// the shell stays to end with `true`.
pub fn hook_command(bin: &Path, hook: &str) -> String {
    let bin = sh_quote(&bin.to_string_lossy()).replace('#', "##");
    let mut shell = format!("test -x {bin} && {bin}{MARKER}{hook}");
    for format in HOOK_FORMATS {
        shell.push_str(&format!(" {format}=#{{q:{format}}}"));
    }
    shell.push_str(" >/dev/null 2>&1; true");
    format!("run-shell -b {}", tmux_quote(&shell))
}

/// What `register` did.
pub struct Registered {
    /// The hooks were not registered in this server before: this is its
    /// first `init tmux`, and what tmux showed then is recorded.
    pub first_time: bool,
}

/// Registers (or re-registers, with this `bin`) every hook of [`HOOKS`] in
/// the tmux server this process runs in, after the user's own hooks, which
/// stay as they are. Running it again replaces ours instead of adding more.
pub fn register(bin: &Path) -> Result<Registered> {
    let ours = our_hooks()?;
    let mut args: Vec<String> = Vec::new();
    // Highest index first, so that the indices left to remove stay valid.
    for (hook, index) in ours.iter().rev() {
        push_command(&mut args, &["set-hook", "-gu", &format!("{hook}[{index}]")]);
    }
    for hook in HOOKS {
        push_command(
            &mut args,
            &["set-hook", "-ga", hook, &hook_command(bin, hook)],
        );
    }
    tmux(&args)?;
    Ok(Registered {
        first_time: ours.is_empty(),
    })
}

/// (hook, index) of every hook command of ours in the server, in the order
/// `show-hooks` lists them.
pub fn our_hooks() -> Result<Vec<(String, usize)>> {
    Ok(listing()?
        .lines()
        .filter(|line| line.contains(MARKER))
        .filter_map(|line| {
            // `session-created[0] run-shell -b "…"`
            let name = line.split_whitespace().next()?;
            let (hook, index) = name.strip_suffix(']')?.split_once('[')?;
            Some((hook.to_string(), index.parse().ok()?))
        })
        .collect())
}

/// Every global hook of the server, as `show-hooks` lists them: session
/// hooks, then window and pane hooks (`window-renamed`, `pane-exited`…),
/// which only `-w` lists.
pub fn listing() -> Result<String> {
    let mut listing = tmux(&["show-hooks", "-g"])?;
    listing.push_str(&tmux(&["show-hooks", "-gw"])?);
    Ok(listing)
}

/// The paths of the binaries our hooks run, from their commands.
pub fn hook_binaries(listing: &str) -> Vec<String> {
    let mut bins: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            let start = line.find("test -x ")? + "test -x ".len();
            let rest = &line[start..];
            let end = rest.find(" &&")?;
            Some(unquote(&rest[..end]))
        })
        .collect();
    bins.sort();
    bins.dedup();
    bins
}

/// What the server shows now, as events: `server-started` (at the time tmux
/// started), then one `seen` event per pane and per attached client.
pub fn current_state(by: &Recorder) -> Result<Vec<TmuxEvent>> {
    let server = tmux(&[
        "display-message",
        "-p",
        "#{pid}\t#{socket_path}\t#{start_time}",
    ])?;
    let mut server = server.trim_end().split('\t');
    let (Some(pid), Some(socket), Some(started)) = (server.next(), server.next(), server.next())
    else {
        bail!("tmux did not tell its pid and socket");
    };
    let pid: i64 = pid.parse().context("tmux gave no pid")?;
    let mut events: Vec<TmuxEvent> = Vec::new();
    fn event<'e>(
        events: &'e mut Vec<TmuxEvent>,
        by: &Recorder,
        name: &str,
        at_us: i64,
        server: (&str, i64),
    ) -> &'e mut TmuxEvent {
        events.push(TmuxEvent {
            event: name.to_string(),
            at_us,
            event_key: event_key(by, events.len()),
            host: by.host.clone(),
            user: by.user.clone(),
            uid: by.uid,
            tmux_socket: server.0.to_string(),
            tmux_server_pid: server.1,
            ..TmuxEvent::default()
        });
        events.last_mut().expect("just pushed")
    }
    let server = (socket, pid);
    let started_us = started.parse::<i64>().map_or(by.at_us, |s| s * 1_000_000);
    event(&mut events, by, "server-started", started_us, server);
    // While tmux reads its config at start-up there is no session yet, and
    // listing them fails ("no current target"): nothing to record then.
    let panes = tmux(&[
        "list-panes",
        "-a",
        "-F",
        "#{session_id}\t#{window_id}\t#{window_index}\t#{pane_id}\t#{session_name}\t#{window_name}",
    ])
    .unwrap_or_default();
    for line in panes.lines() {
        let f: Vec<&str> = line.splitn(6, '\t').collect();
        if f.len() < 6 {
            continue;
        }
        let seen = event(&mut events, by, "seen", by.at_us, server);
        seen.session_id = id(f[0]);
        seen.window_id = id(f[1]);
        seen.window_index = f[2].parse().ok();
        seen.pane = Some(f[3].to_string());
        seen.session_name = Some(f[4].to_string());
        seen.window_name = Some(f[5].to_string());
    }
    let clients = tmux(&[
        "list-clients",
        "-F",
        "#{session_id}\t#{client_pid}\t#{client_uid}\t#{client_name}\t#{client_tty}\t#{client_user}\t#{client_termname}\t#{session_name}",
    ])
    .unwrap_or_default();
    for line in clients.lines() {
        let f: Vec<&str> = line.splitn(8, '\t').collect();
        if f.len() < 8 {
            continue;
        }
        let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
        let seen = event(&mut events, by, "seen", by.at_us, server);
        seen.session_id = id(f[0]);
        seen.session_name = some(f[7]);
        seen.client = Some(Client {
            name: f[3].to_string(),
            tty: some(f[4]),
            pid: f[1].parse().ok(),
            user: some(f[5]),
            uid: f[2].parse().ok(),
            termname: some(f[6]),
        });
    }
    Ok(events)
}

/// Appends one tmux command to a command line of several (`a \; b`).
fn push_command(args: &mut Vec<String>, command: &[&str]) {
    if !args.is_empty() {
        args.push(";".to_string());
    }
    args.extend(command.iter().map(|s| s.to_string()));
}

/// Runs `tmux` with `args` against the server of `$TMUX`; its output.
pub fn tmux<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<String> {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .context("cannot run tmux: is it installed and on PATH?")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("tmux failed: {}", stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `text` as one word for /bin/sh.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as one argument for tmux's command parser: double quotes, in which
/// a backslash escapes `\`, `"` and `$` (which would name a variable).
fn tmux_quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// A path as `show-hooks` prints it back (inside double quotes, so with
/// `\`, `$` and `"` escaped; `#` as `##`; in single quotes for the shell)
/// as it is.
fn unquote(word: &str) -> String {
    let mut unescaped = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        unescaped.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    let word = unescaped.replace("##", "#");
    let inner = word
        .strip_prefix('\'')
        .and_then(|w| w.strip_suffix('\''))
        .unwrap_or(&word);
    inner.replace(r"'\''", "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_commands_quote_odd_paths_for_every_layer() {
        let cmd = hook_command(
            Path::new("/opt/it's #1/$HOME/tmux-audit"),
            "session-created",
        );
        assert!(cmd.starts_with("run-shell -b \""), "{cmd}");
        assert!(cmd.contains(r"\$HOME"), "tmux must not expand it: {cmd}");
        assert!(cmd.contains("##1"), "formats must not expand it: {cmd}");
        assert!(cmd.contains("hook_session=#{q:hook_session}"), "{cmd}");
    }

    #[test]
    fn binaries_are_read_back_from_what_tmux_lists() {
        // As tmux 3.3a's `show-hooks -g` printed a hook of `/tmp/m/it's #1/ta`.
        let listing = r#"session-created[0] run-shell -b "test -x '/tmp/m/it'\\''s ##1/ta' && exec '/tmp/m/it'\\''s ##1/ta' tmux-event session-created hook_session=#{q:hook_session} >/dev/null 2>&1; true""#;
        // And one of `/tmp/m/a$b "c"/ta`.
        let listing = format!(
            "{listing}\n{}",
            r#"session-created[1] run-shell -b "test -x '/tmp/m/a\$b \"c\"/ta' && '/tmp/m/a\$b \"c\"/ta' tmux-event session-created >/dev/null 2>&1; true""#
        );
        assert_eq!(
            hook_binaries(&listing),
            vec![
                "/tmp/m/a$b \"c\"/ta".to_string(),
                "/tmp/m/it's #1/ta".to_string()
            ]
        );
    }
}
