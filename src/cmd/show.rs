//! `tmux-audit show ID`: one command in full, named and attributed.

use std::fmt::Write as _;
use std::io::{self, Write};

use anyhow::{bail, Result};

use super::{Exit, Run};
use crate::cli::{Show, ShowFormat};
use tmux_audit::capture;
use tmux_audit::capture::output::{Bounds, Omitted};
use tmux_audit::db::StoredCommand;
use tmux_audit::paths;
use tmux_audit::render::{self, client_label, human_duration};
use tmux_audit::text::hex;

impl Run for Show {
    fn run(&self) -> Result<Exit> {
        let db = super::open_for_reading(&paths::database(self.db.path.as_deref())?)?;
        let Some(row) = db.command(self.id)? else {
            bail!(
                "no command with id {}: ids are in `tmux-audit search --format json`",
                self.id
            );
        };
        if self.output {
            return output(&paths::database(self.db.path.as_deref())?, &row, self.raw);
        }
        let mut rows = [row];
        db.place(&mut rows)?;
        let out = match (self.format, self.json) {
            (ShowFormat::Json, _) | (_, true) => render::json(&rows)?,
            (ShowFormat::Text, false) => text(&rows[0]),
        };
        io::stdout().lock().write_all(out.as_bytes())?;
        Ok(Exit::Success)
    }
}

/// What the command printed, on stdout; what is missing from it, on stderr.
fn output(db: &std::path::Path, row: &StoredCommand, raw: bool) -> Result<Exit> {
    let found = capture::output::command_output(db, &row.record)?;
    let mut out = io::stdout().lock();
    // The cap's cuts told where they are in the text; in the bytes
    // (--raw), only on stderr.
    let mut from = 0;
    for cut in &found.cuts {
        if !raw {
            let part = capture::output::plain_text(&found.bytes[from..cut.at]);
            out.write_all(part.as_bytes())?;
            let newline = if part.is_empty() || part.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            writeln!(out, "{newline}{}", cut_line(cut))?;
            from = cut.at;
        }
    }
    if raw {
        out.write_all(&found.bytes)?;
    } else {
        let rest = &found.bytes[from..];
        out.write_all(capture::output::plain_text(rest).as_bytes())?;
    }
    out.flush()?;
    for cut in &found.cuts {
        match &cut.why {
            Omitted::OverCap { sha256 } => eprintln!(
                "tmux-audit: note: {} bytes of this output were over the per-command cap and not \
                 kept (sha256 {})",
                cut.bytes,
                hex(sha256)
            ),
            Omitted::Excluded => eprintln!(
                "tmux-audit: note: {} bytes of this output were not captured: the command \
                 matches `[capture] exclude` in config.toml",
                cut.bytes
            ),
        }
    }
    let time = |us: i64| tmux_audit::timespec::local_format(us, "%Y-%m-%d %H:%M:%S%.3f %:z");
    if found.bounds == Bounds::Times {
        eprintln!(
            "tmux-audit: note: its shell marked no output boundaries (started before capture \
             was on): this is what the pane printed between its start and end times"
        );
    }
    for (at, lost) in &found.gaps {
        eprintln!(
            "tmux-audit: gap: {lost} bytes of output were not captured at {}",
            time(*at)
        );
    }
    if let Some(at) = found.stopped_at_us {
        eprintln!(
            "tmux-audit: gap: the capture of this pane stopped at {} (its process ended \
             without closing its file): the output after it is missing",
            time(at)
        );
    } else if found.unfinished {
        eprintln!("tmux-audit: note: the command's end was not captured (still running?)");
    }
    Ok(Exit::Success)
}

/// The line that stands for output the cap did not keep.
fn cut_line(cut: &capture::output::Cut) -> String {
    match &cut.why {
        Omitted::OverCap { sha256 } => format!(
            "[tmux-audit: {} bytes not kept here: the first and last {} KiB of a command's \
             output are; sha256 {}]",
            cut.bytes,
            capture::cap::HEAD >> 10,
            hex(sha256)
        ),
        Omitted::Excluded => format!(
            "[tmux-audit: {} bytes not captured here: the command matches [capture] exclude]",
            cut.bytes
        ),
    }
}

/// One `name: value` line per field that has a value.
fn text(row: &StoredCommand) -> String {
    let r = &row.record;
    let mut lines: Vec<(&str, String)> =
        vec![("id", row.id.to_string()), ("command", r.command.clone())];
    if let Some(raw) = &r.command_raw {
        lines.push(("command bytes", hex(raw)));
    }
    if r.redacted {
        lines.push((
            "redacted",
            "secrets were replaced before it was stored".into(),
        ));
    }
    let exit = r
        .exit_status
        .map_or("unknown".to_string(), |s| s.to_string());
    lines.push(("exit status", exit));
    lines.push(("started", local_time_with_zone(r.started_at_us)));
    if let Some(us) = r.duration_us {
        lines.push(("duration", human_duration(us)));
    }
    lines.push(("cwd", r.cwd.clone()));
    let mut user = match tmux_audit::record::known_uid(r.uid) {
        Some(uid) => format!("{} (uid {uid})", r.user),
        None => format!("{} (uid unknown)", r.user),
    };
    if let Some(login) = r.login_uid.filter(|&l| l != r.uid) {
        let _ = write!(user, ", logged in as uid {login}");
    }
    if let Some(sudo) = &r.sudo_user {
        let _ = write!(user, ", via sudo from {sudo}");
    }
    lines.push(("user", user));
    lines.push(("host", r.host.clone()));
    lines.push((
        "shell",
        format!(
            "{} (session {}, command {})",
            r.shell, r.shell_session, r.seq
        ),
    ));
    if let Some(tty) = &r.tty {
        lines.push(("tty", tty.clone()));
    }
    if let Some(ssh) = &r.ssh_connection {
        lines.push(("ssh", ssh.clone()));
    }
    if let Some(socket) = &r.tmux_socket {
        let pid = r.tmux_server_pid.map_or("?".to_string(), |p| p.to_string());
        lines.push(("tmux server", format!("{socket} (pid {pid})")));
    }
    if let Some(pane) = &r.tmux_pane {
        lines.push(("pane", pane.clone()));
    }
    if let Some(place) = &row.placement {
        if let Some(id) = place.session_id {
            let name = place.session_name.as_deref().unwrap_or("?");
            lines.push(("session", format!("{name} (${id})")));
        }
        if let Some(id) = place.window_id {
            let index = place
                .window_index
                .map_or("?".to_string(), |i| i.to_string());
            let name = place.window_name.as_deref().unwrap_or("?");
            lines.push(("window", format!("{index}: {name} (@{id})")));
        }
        lines.push((
            "typed by",
            place.client.as_ref().map_or(
                "unknown (no client was attached, or none had typed yet)".to_string(),
                client_label,
            ),
        ));
        if !place.attached.is_empty() {
            let attached: Vec<String> = place.attached.iter().map(client_label).collect();
            lines.push(("attached", attached.join(", ")));
        }
    } else if r.tmux_socket.is_some() {
        lines.push((
            "session",
            "no tmux events for this server (see `tmux-audit init --help`)".into(),
        ));
    }
    lines.push(("recorded", local_time_with_zone(row.recorded_at_us)));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in lines {
        // A multi-line command on its lines, under one another; control
        // characters (an escape sequence in a command or a name) shown,
        // never sent to the terminal.
        for (n, line) in value.split('\n').enumerate() {
            let key = if n == 0 { key } else { "" };
            let line = render::one_line(line, usize::MAX);
            let _ = writeln!(out, "{key:>width$}  {line}");
        }
    }
    out
}

/// `2026-11-25 19:00:00.123456 +09:00`: local time, with the zone's offset
/// (JSON keeps UTC).
fn local_time_with_zone(us: i64) -> String {
    tmux_audit::timespec::local_format(us, "%Y-%m-%d %H:%M:%S%.6f %:z")
}
