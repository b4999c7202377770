//! `tmux-audit timeline`: tmux events and commands in time order, as a
//! table (names as they were at the time) or as data.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::{
    client_label, finish, fit_last_column, local_time, new_table, one_line, use_colour, utc_time,
};
use crate::db::StoredCommand;
use crate::lifecycle::replay::{Placement, ServerKey};
use crate::lifecycle::{Client, TmuxEvent};

pub enum Item<'e> {
    Event(&'e TmuxEvent, Box<Placement>),
    Command(Box<StoredCommand>),
}

/// One line of the timeline, as text.
struct Line {
    /// The event's name, or `command`.
    what: String,
    /// `session:window.pane`, names as they were then.
    place: String,
    /// The client (and its user) of a client event; who typed a command.
    who: String,
    /// A new name; a command's text and exit status.
    detail: String,
}

impl Item<'_> {
    pub fn at_us(&self) -> i64 {
        match self {
            Item::Event(e, _) => e.at_us,
            Item::Command(c) => c.record.started_at_us,
        }
    }

    fn line(&self) -> Line {
        match self {
            Item::Event(e, place) => Line {
                what: e.event.clone(),
                place: place.label(e.pane.as_deref()),
                who: e.client.as_ref().map_or(String::new(), client_label),
                detail: match e.event.as_str() {
                    "session-created" | "session-renamed" | "session-closed" => {
                        e.session_name.clone().unwrap_or_default()
                    }
                    "window-renamed" | "window-linked" | "window-unlinked" | "after-new-window" => {
                        e.window_name.clone().unwrap_or_default()
                    }
                    _ => String::new(),
                },
            },
            Item::Command(c) => {
                let r = &c.record;
                let place = c.placement.clone().unwrap_or_default();
                let exit = r
                    .exit_status
                    .map_or(String::new(), |s| format!("  [exit {s}]"));
                Line {
                    what: "command".to_string(),
                    place: place.label(r.tmux_pane.as_deref()),
                    // Not known to tmux: the shell's own user.
                    who: place
                        .client
                        .as_ref()
                        .map_or_else(|| r.user.clone(), client_label),
                    detail: format!("{}{exit}", r.command),
                }
            }
        }
    }

    fn server(&self) -> ServerKey {
        match self {
            Item::Event(e, _) => e.server(),
            Item::Command(c) => (
                c.record.tmux_socket.clone().unwrap_or_default(),
                c.record.tmux_server_pid.unwrap_or_default(),
            ),
        }
    }

    /// Every field as itself (ids, names, the client), not as the table
    /// shows it. Names are those of the time: an event's own (a rename's
    /// new name), else where its session and window stood then.
    pub fn json(&self) -> JsonItem<'_> {
        let (socket, server_pid) = self.server();
        match self {
            Item::Event(e, place) => JsonItem {
                time: utc_time(e.at_us),
                event: &e.event,
                host: &e.host,
                tmux_socket: socket,
                tmux_server_pid: server_pid,
                session_id: e.session_id.or(place.session_id),
                session_name: e.session_name.as_deref().or(place.session_name.as_deref()),
                window_id: e.window_id.or(place.window_id),
                window_index: e.window_index.or(place.window_index),
                window_name: e.window_name.as_deref().or(place.window_name.as_deref()),
                pane: e.pane.as_deref(),
                client: place.client.as_ref(),
                user: &e.user,
                typed_by: None,
                automatic_rename: e.automatic_rename,
                command_id: None,
                command: None,
                exit_status: None,
                attached: Vec::new(),
            },
            Item::Command(c) => {
                let r = &c.record;
                let place = c.placement.as_ref();
                JsonItem {
                    time: utc_time(r.started_at_us),
                    event: "command",
                    host: &r.host,
                    tmux_socket: socket,
                    tmux_server_pid: server_pid,
                    session_id: place.and_then(|p| p.session_id).or(r.tmux_session_id),
                    session_name: place.and_then(|p| p.session_name.as_deref()),
                    window_id: place.and_then(|p| p.window_id),
                    window_index: place.and_then(|p| p.window_index),
                    window_name: place.and_then(|p| p.window_name.as_deref()),
                    pane: r.tmux_pane.as_deref(),
                    client: place.and_then(|p| p.client.as_ref()),
                    user: &r.user,
                    typed_by: Some(crate::lifecycle::replay::typist(place, &r.user)),
                    automatic_rename: None,
                    command_id: Some(c.id),
                    command: Some(&r.command),
                    exit_status: r.exit_status,
                    attached: place.map_or(Vec::new(), |p| p.attached.iter().collect()),
                }
            }
        }
    }
}

/// One timeline item for programs: `event` is the tmux hook's name, or
/// `command`. `user` is the server's owner for an event, the shell's user
/// for a command; `typed_by` whose client typed a command.
#[derive(Serialize)]
pub struct JsonItem<'a> {
    time: String,
    event: &'a str,
    host: &'a str,
    tmux_socket: String,
    tmux_server_pid: i64,
    session_id: Option<i64>,
    session_name: Option<&'a str>,
    window_id: Option<i64>,
    window_index: Option<i64>,
    window_name: Option<&'a str>,
    pane: Option<&'a str>,
    client: Option<&'a Client>,
    user: &'a str,
    typed_by: Option<&'a str>,
    automatic_rename: Option<bool>,
    command_id: Option<i64>,
    command: Option<&'a str>,
    exit_status: Option<i64>,
    attached: Vec<&'a Client>,
}

/// Local times, the zone named once in the header (each time carries its
/// offset when they differ: a change of clocks, a range across one); a
/// `server` column when the items come from more than one tmux server
/// (two servers can each have had a session `work`).
pub fn table(items: &[Item<'_>], printed: &HashMap<i64, Vec<String>>) -> String {
    let mut table = new_table(use_colour());
    let offsets: HashSet<String> = items
        .iter()
        .map(|item| crate::timespec::local_format(item.at_us(), "%:z"))
        .collect();
    let one_offset = (offsets.len() == 1).then(|| offsets.into_iter().next().unwrap_or_default());
    let time = |us: i64| match one_offset {
        Some(_) => local_time(us),
        None => crate::timespec::local_format(us, "%Y-%m-%d %H:%M:%S %:z"),
    };
    let servers: HashSet<ServerKey> = items.iter().map(Item::server).collect();
    let time_header = match &one_offset {
        Some(offset) => format!("time ({offset})"),
        None => "time".to_string(),
    };
    let mut header: Vec<String> = vec![time_header];
    if servers.len() > 1 {
        header.push("server".into());
    }
    header.extend(["what", "where", "who", "detail"].map(String::from));
    let mut lines: Vec<Vec<String>> = items
        .iter()
        .flat_map(|item| {
            let line = item.line();
            let mut cells = vec![time(item.at_us())];
            if servers.len() > 1 {
                cells.push(server_label(&item.server()));
            }
            cells.extend([
                one_line(&line.what, 60),
                one_line(&line.place, 60),
                one_line(&line.who, 60),
                one_line(&line.detail, 400),
            ]);
            // What a command printed (--output-lines), a row per line
            // under it, in its detail column.
            let id = match item {
                Item::Command(c) => Some(c.id),
                Item::Event(..) => None,
            };
            let output = id.and_then(|id| printed.get(&id)).into_iter().flatten();
            let blank = cells.len() - 1;
            std::iter::once(cells).chain(output.map(move |text| {
                let mut row = vec![String::new(); blank];
                row.push(format!("│ {}", one_line(text, 400)));
                row
            }))
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    fit_last_column(&table, &header_refs, &mut lines);
    table.set_header(header);
    for line in lines {
        let mut row = comfy_table::Row::from(line);
        row.max_height(1);
        table.add_row(row);
    }
    finish(table)
}

/// A tmux server as people name it: its socket's name and its pid.
fn server_label((socket, pid): &ServerKey) -> String {
    let name = std::path::Path::new(socket)
        .file_name()
        .map_or_else(|| socket.clone(), |n| n.to_string_lossy().into_owned());
    one_line(&format!("{name} ({pid})"), 40)
}
