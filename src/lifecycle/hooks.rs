//! The tmux side: the hooks `tmux-audit init tmux` registers in a tmux
//! server, and the state it records when it registers them first.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use super::panes::PanePlace;
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
    // Not stored as themselves: see `panes.rs` (joins, moves, swaps,
    // breaks and kills, which have no hook of their own in tmux 3.3).
    "window-layout-changed",
    "after-kill-pane",
];

/// The hooks whose event is what changed in the panes' places
/// ([`pane_changes`]), not the hook itself.
pub const PANE_PLACE_HOOKS: &[&str] = &["window-layout-changed", "after-kill-pane"];

/// The hooks after which the panes' places are compared and kept again
/// ([`pane_changes`]): those of [`PANE_PLACE_HOOKS`], and those that make
/// panes (a new pane must be known before it can be seen to move).
pub const PANE_REFRESH_HOOKS: &[&str] = &[
    "window-layout-changed",
    "after-kill-pane",
    "after-split-window",
    "after-new-window",
    "session-created",
    "window-linked",
    // A window or session closed takes its panes with it.
    "window-unlinked",
    "session-closed",
];

/// In every hook command of ours, and in no command of the user's: how
/// `init tmux` finds its own hooks to replace them, and `doctor` to check them.
pub const MARKER: &str = " tmux-event ";

/// In the capture hooks' commands (and no user's): how `init tmux` finds
/// them to replace or remove them.
pub const CAPTURE_MARKER: &str = " capture --pane ";

/// The hooks after which the new pane (the hook's target) gets its capture.
pub const CAPTURE_HOOKS: &[&str] = &["session-created", "after-new-window", "after-split-window"];

/// The `/bin/sh` command `pipe-pane` runs to capture a pane: `exec`, so that
/// each pane costs one process. tmux expands its formats (the pane's id and
/// the server's pid, which hold no quote) before the shell reads it; a `#`
/// in the path is doubled so it stays one.
pub fn capture_command(bin: &Path) -> String {
    let bin = sh_quote(&bin.to_string_lossy()).replace('#', "##");
    format!("exec {bin}{CAPTURE_MARKER}'#{{pane_id}}' --server-pid '#{{pid}}'")
}

/// The command registered for `hook`: a background `run-shell` (tmux does
/// not wait for it) that hands every format of [`HOOK_FORMATS`] to `bin`.
/// It shows nothing in tmux (which would put the pane in view mode to show
/// output or a failed status): no output, and exit status 0 whatever `bin`
/// does, also when it is gone (`doctor` tells about that). Hence no `exec`:
/// the shell stays to end with `true`.
///
/// Every value is one `/bin/sh` word whatever bytes it holds: tmux puts it
/// inside single quotes, with each `'` in it turned into `'\''` by a
/// substitution ([`sh_word_format`]). Guests choose some of these values
/// (their `TERM` is `client_termname`, a writing guest names sessions and
/// windows), and tmux's own `#{q:…}` leaves newline and tab as they are: a
/// newline would end the command and start one of the guest's, run as the
/// server's owner, and a tab would add `key=value` arguments that replace
/// the true ones.
pub fn hook_command(bin: &Path, hook: &str) -> String {
    let bin = sh_quote(&bin.to_string_lossy()).replace('#', "##");
    let mut shell = format!("test -x {bin} && {bin}{MARKER}{hook}");
    for format in HOOK_FORMATS {
        let word = sh_word_format(format);
        match HOOK_FORMATS_NAMED_BY.iter().find(|(f, _)| f == format) {
            // The hook's own name of it wins (see `TmuxEvent::from_hook`):
            // the target's is passed only when there is none, so that a
            // long name goes once through tmux's limit on one command.
            Some((_, named_by)) => shell.push_str(&format!(" #{{?{named_by},,{word}}}")),
            None => shell.push_str(&format!(" {word}")),
        }
    }
    shell.push_str(" >/dev/null 2>&1; true");
    format!("run-shell -b {}", tmux_quote(&shell))
}

/// Formats whose value is used only when the hook's own (the second) is
/// empty.
const HOOK_FORMATS_NAMED_BY: &[(&str, &str)] = &[
    ("session_name", "hook_session_name"),
    ("window_name", "hook_window_name"),
];

/// A tmux format that expands to `format=VALUE` as one single-quoted
/// `/bin/sh` word, for any value: `'` becomes `'\''` (end the quotes, an
/// escaped quote, quotes again), and nothing else is special inside single
/// quotes. The backslash is doubled for tmux's substitution, which reads
/// `\\` as one.
fn sh_word_format(format: &str) -> String {
    format!(r"'{format}=#{{s/'/'\\''/:{format}}}'")
}

/// What `register` did.
pub struct Registered {
    /// The hooks were not registered in this server before: this is its
    /// first `init tmux`, and what tmux showed then is recorded.
    pub first_time: bool,
}

/// Registers (or re-registers, with this `bin`) every hook of [`HOOKS`] in
/// the tmux server this process runs in, after the user's own hooks, which
/// stay as they are, and, when `capture`, those of [`CAPTURE_HOOKS`] that
/// capture each new pane. Running it again replaces ours instead of adding
/// more (and removes the capture hooks when `capture` is now off).
pub fn register(bin: &Path, capture: bool) -> Result<Registered> {
    let ours = our_hooks()?;
    let mut args: Vec<String> = Vec::new();
    // Highest index first, so that the indices left to remove stay valid.
    for (hook, index) in ours.iter().rev() {
        push_command(&mut args, &["set-hook", "-gu", &format!("{hook}[{index}]")]);
    }
    // A tmux command line has a size limit (what a client may send the
    // server at once): a new hook joins the line only while it fits.
    for hook in HOOKS {
        let command = hook_command(bin, hook);
        let size: usize = args.iter().map(|a| a.len() + 1).sum();
        if size + command.len() > COMMAND_LINE_ROOM && !args.is_empty() {
            tmux(&args)?;
            args.clear();
        }
        push_command(&mut args, &["set-hook", "-ga", hook, &command]);
    }
    if capture {
        let pipe = format!("pipe-pane -o {}", tmux_quote(&capture_command(bin)));
        for hook in CAPTURE_HOOKS {
            let size: usize = args.iter().map(|a| a.len() + 1).sum();
            if size + pipe.len() + hook.len() + 16 > COMMAND_LINE_ROOM && !args.is_empty() {
                tmux(&args)?;
                args.clear();
            }
            push_command(&mut args, &["set-hook", "-ga", hook, &pipe]);
        }
        push_command(
            &mut args,
            &["set-environment", "-g", crate::capture::ENV, "1"],
        );
    } else {
        push_command(&mut args, &["set-environment", "-gu", crate::capture::ENV]);
    }
    tmux(&args)?;
    Ok(Registered {
        first_time: ours.is_empty(),
    })
}

/// What one tmux command line may hold, with room to spare: tmux refuses
/// a client's message past 16 KiB ("command too long").
const COMMAND_LINE_ROOM: usize = 12 * 1024;

/// (hook, index) of every hook command of ours in the server, in the order
/// `show-hooks` lists them.
pub fn our_hooks() -> Result<Vec<(String, usize)>> {
    Ok(listing()?
        .lines()
        .filter(|line| line.contains(MARKER) || line.contains(CAPTURE_MARKER))
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
    let places = pane_places(None).unwrap_or_default();
    for p in &places {
        let seen = event(&mut events, by, "seen", by.at_us, server);
        seen.session_id = p.session_id;
        seen.window_id = p.window_id;
        seen.window_index = p.window_index;
        seen.pane = Some(p.pane.clone());
        seen.session_name = Some(p.session_name.clone());
        seen.window_name = Some(p.window_name.clone());
    }
    // The places the pane hooks compare with from now on.
    if let Ok(dir) = crate::paths::state_dir() {
        let file = super::panes::state_file(&dir, server);
        super::panes::update(&file, &places, server, by)?;
    }
    const CLIENT: &[&str] = &[
        "session_id",
        "client_pid",
        "client_uid",
        "client_name",
        "client_tty",
        "client_user",
        "client_termname",
        "session_name",
    ];
    let clients = tmux_bytes(&["list-clients", "-F", &listing_format(CLIENT)]).unwrap_or_default();
    for f in parse_listing(&clients, CLIENT.len()) {
        let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
        let seen = event(&mut events, by, "seen", by.at_us, server);
        seen.session_id = id(&f[0]);
        seen.session_name = some(&f[7]);
        seen.client = Some(Client {
            name: f[3].clone(),
            tty: some(&f[4]),
            pid: f[1].parse().ok(),
            user: some(&f[5]),
            uid: f[2].parse().ok(),
            termname: some(&f[6]),
        });
    }
    Ok(events)
}

/// Where every pane of the server is now: of the server at `socket`, or
/// else of `$TMUX`'s.
pub fn pane_places(socket: Option<&str>) -> Result<Vec<PanePlace>> {
    const PANE: &[&str] = &[
        "session_id",
        "window_id",
        "window_index",
        "pane_id",
        "session_name",
        "window_name",
    ];
    let format = listing_format(PANE);
    let mut args = Vec::new();
    if let Some(socket) = socket {
        args.extend(["-S", socket]);
    }
    args.extend(["list-panes", "-a", "-F", &format]);
    let panes = tmux_bytes(&args)?;
    Ok(parse_listing(&panes, PANE.len())
        .into_iter()
        .map(|f| PanePlace {
            session_id: id(&f[0]),
            window_id: id(&f[1]),
            window_index: f[2].parse().ok(),
            pane: f[3].clone(),
            session_name: f[4].clone(),
            window_name: f[5].clone(),
        })
        .collect())
}

/// The panes of the server at `socket` (pid `pid`) that moved or closed
/// since the last time this was asked (or `init tmux` ran), as events.
pub fn pane_changes(socket: &str, pid: i64, by: &Recorder) -> Result<Vec<TmuxEvent>> {
    let places = pane_places(Some(socket))?;
    let file = super::panes::state_file(&crate::paths::state_dir()?, (socket, pid));
    super::panes::update(&file, &places, (socket, pid), by)
}

/// A pane of the server, and whether its output is piped somewhere.
pub struct PanePipe {
    pub pane: String,
    pub piped: bool,
}

/// Every pane of the server of `$TMUX`, with its server's pid.
pub fn pane_pipes() -> Result<(i64, Vec<PanePipe>)> {
    const PANE: &[&str] = &["pid", "pane_id", "pane_pipe"];
    let listed = tmux_bytes(&["list-panes", "-a", "-F", &listing_format(PANE)])?;
    let mut pid = 0;
    let mut panes = Vec::new();
    for f in parse_listing(&listed, PANE.len()) {
        pid = f[0].parse().context("tmux gave an odd server pid")?;
        panes.push(PanePipe {
            pane: f[1].clone(),
            piped: f[2] == "1",
        });
    }
    Ok((pid, panes))
}

/// Starts the capture of every pane that has no pipe yet (`-o`: one that
/// has one, the user's, is left alone).
pub fn capture_panes(bin: &Path, panes: &[PanePipe]) -> Result<()> {
    let command = capture_command(bin);
    let commands = panes
        .iter()
        .filter(|p| !p.piped)
        .map(|p| vec!["pipe-pane", "-o", "-t", &p.pane, &command]);
    run_in_parts(commands)
}

/// Ends the capture of the panes in `ours` (a `pipe-pane` with no command
/// closes the pane's pipe), leaving every other pipe, the user's, alone.
pub fn stop_capture(panes: &[PanePipe], ours: &[String]) -> Result<()> {
    let commands = panes
        .iter()
        .filter(|p| p.piped && ours.contains(&p.pane))
        .map(|p| vec!["pipe-pane", "-t", p.pane.as_str()]);
    run_in_parts(commands)
}

/// Runs tmux commands, as few command lines as fit tmux's limit.
fn run_in_parts<'a>(commands: impl Iterator<Item = Vec<&'a str>>) -> Result<()> {
    let mut args: Vec<String> = Vec::new();
    for command in commands {
        let adding: usize = command.iter().map(|a| a.len() + 1).sum();
        let have: usize = args.iter().map(|a| a.len() + 1).sum();
        if have + adding > COMMAND_LINE_ROOM && !args.is_empty() {
            tmux(&args)?;
            args.clear();
        }
        push_command(&mut args, &command);
    }
    if !args.is_empty() {
        tmux(&args)?;
    }
    Ok(())
}

/// A session of the running tmux server (the one of `$TMUX`, or the
/// default one).
pub struct LiveSession {
    pub id: i64,
    pub socket: String,
    pub server_pid: i64,
}

/// The session of the running tmux server named `name`, if any (none when
/// no server runs).
pub fn live_session(name: &str) -> Result<Option<LiveSession>> {
    const SESSION: &[&str] = &["session_id", "pid", "socket_path", "session_name"];
    let Ok(listed) = tmux_bytes(&["list-sessions", "-F", &listing_format(SESSION)]) else {
        return Ok(None);
    };
    for f in parse_listing(&listed, SESSION.len()) {
        if f[3] == name {
            return Ok(Some(LiveSession {
                id: id(&f[0]).context("tmux gave an odd session id")?,
                socket: f[2].clone(),
                server_pid: f[1].parse().context("tmux gave an odd server pid")?,
            }));
        }
    }
    Ok(None)
}

/// Appends one tmux command to a command line of several (`a \; b`).
fn push_command(args: &mut Vec<String>, command: &[&str]) {
    if !args.is_empty() {
        args.push(";".to_string());
    }
    args.extend(command.iter().map(|s| s.to_string()));
}

/// A `-F` format for a listing whose values may hold any bytes (a guest's
/// `TERM`, names with newlines or tabs): each value after its length in
/// bytes and a colon (`#{n:…}` counts bytes), so no value can end a line or
/// a field early and pass for another client or pane. One line per item:
/// tmux ends each with a newline of its own.
fn listing_format(formats: &[&str]) -> String {
    formats
        .iter()
        .map(|f| format!("#{{n:{f}}}:#{{{f}}}"))
        .collect()
}

/// The items of a listing made with [`listing_format`] of `count` values
/// each (a value that is not UTF-8 taken lossily). It stops at the first
/// item that does not parse.
fn parse_listing(mut bytes: &[u8], count: usize) -> Vec<Vec<String>> {
    let mut items = Vec::new();
    'items: while !bytes.is_empty() {
        let mut item = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(colon) = bytes.iter().position(|b| *b == b':') else {
                break 'items;
            };
            let Some(len) = std::str::from_utf8(&bytes[..colon])
                .ok()
                .and_then(|n| n.parse::<usize>().ok())
            else {
                break 'items;
            };
            let Some(value) = bytes.get(colon + 1..colon + 1 + len) else {
                break 'items;
            };
            item.push(String::from_utf8_lossy(value).into_owned());
            bytes = &bytes[colon + 1 + len..];
        }
        let Some(rest) = bytes.strip_prefix(b"\n") else {
            break;
        };
        bytes = rest;
        items.push(item);
    }
    items
}

/// Runs `tmux` with `args` against the server of `$TMUX`; its output.
pub fn tmux<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<String> {
    Ok(String::from_utf8_lossy(&tmux_bytes(args)?).into_owned())
}

/// [`tmux`], its output as bytes.
fn tmux_bytes<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<Vec<u8>> {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .context("cannot run tmux: is it installed and on PATH?")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("tmux failed: {}", stderr.trim());
    }
    Ok(out.stdout)
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
        assert!(
            cmd.contains(r"'hook_session=#{s/'/'\\\\''/:hook_session}'"),
            "each value one single-quoted word: {cmd}"
        );
        assert!(
            cmd.contains(r"#{?hook_session_name,,'session_name="),
            "the target's name only when the hook has none: {cmd}"
        );
    }

    #[test]
    fn a_listing_value_cannot_pass_for_another_field_or_item() {
        let format = listing_format(&["client_user", "client_termname"]);
        assert_eq!(
            format,
            "#{n:client_user}:#{client_user}#{n:client_termname}:#{client_termname}"
        );
        // A guest's TERM holding a tab, a newline and a line shaped like an item.
        let term = "x\t\n5:alice5:xterm\n";
        let listing = format!("3:bob{}:{term}\n5:carol0:\n", term.len());
        assert_eq!(
            parse_listing(listing.as_bytes(), 2),
            vec![
                vec!["bob".to_string(), term.to_string()],
                vec!["carol".to_string(), String::new()]
            ]
        );
        // Cut short: the items before it.
        assert_eq!(parse_listing(b"3:bob9:xy", 2), Vec::<Vec<String>>::new());
        assert_eq!(parse_listing(b"3:bob2:xy\n3:bo", 2).len(), 1);
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
