//! `tmux-audit sessions`: the tmux sessions the hooks saw, as a table or
//! as data.

use serde::Serialize;

use super::{
    client_label, finish, local_time, new_table, one_line, use_colour, utc_time, DataFormat,
};
use crate::lifecycle::sessions::SessionHistory;

/// The sessions as a table fitted to the terminal.
pub fn table(found: &[SessionHistory]) -> String {
    let mut table = new_table(use_colour());
    table.set_header(["server", "session", "names", "created", "closed", "clients"]);
    let time = |us: Option<i64>| us.map_or("-".to_string(), local_time);
    for s in found {
        let names: Vec<String> = s.names.iter().map(|n| one_line(&n.name, 40)).collect();
        let created = match s.created_at_us {
            Some(at) => local_time(at),
            None => format!("before {}", local_time(s.first_seen_us)),
        };
        let clients: Vec<String> = s
            .attaches
            .iter()
            .map(|a| {
                format!(
                    "{} {} – {}",
                    one_line(&client_label(&a.client), 60),
                    local_time(a.from_us),
                    a.to_us.map_or("now".to_string(), local_time)
                )
            })
            .collect();
        table.add_row([
            format!("{} ({})", one_line(&s.tmux_socket, 80), s.tmux_server_pid),
            format!("${}", s.session_id),
            names.join(" → "),
            created,
            time(s.closed_at_us),
            if clients.is_empty() {
                "-".to_string()
            } else {
                clients.join("\n")
            },
        ]);
    }
    finish(table)
}

/// The sessions as `--format json|jsonl|csv|tsv` writes them.
pub fn data(found: &[SessionHistory], format: DataFormat) -> anyhow::Result<String> {
    super::data(&found.iter().map(Json::from).collect::<Vec<_>>(), format)
}

/// A session as `--format json` shows it: times in RFC 3339 UTC.
#[derive(Serialize)]
struct Json<'a> {
    tmux_socket: &'a str,
    tmux_server_pid: i64,
    session_id: i64,
    name: &'a str,
    names: Vec<JsonName<'a>>,
    created_at: Option<String>,
    closed_at: Option<String>,
    first_seen: String,
    attaches: Vec<JsonAttach<'a>>,
}

#[derive(Serialize)]
struct JsonName<'a> {
    name: &'a str,
    from: String,
}

#[derive(Serialize)]
struct JsonAttach<'a> {
    client: &'a str,
    user: Option<&'a str>,
    uid: Option<i64>,
    tty: Option<&'a str>,
    pid: Option<i64>,
    from: String,
    to: Option<String>,
}

impl<'a> From<&'a SessionHistory> for Json<'a> {
    fn from(s: &'a SessionHistory) -> Self {
        Json {
            tmux_socket: &s.tmux_socket,
            tmux_server_pid: s.tmux_server_pid,
            session_id: s.session_id,
            name: s.name(),
            names: s
                .names
                .iter()
                .map(|n| JsonName {
                    name: &n.name,
                    from: utc_time(n.from_us),
                })
                .collect(),
            created_at: s.created_at_us.map(utc_time),
            closed_at: s.closed_at_us.map(utc_time),
            first_seen: utc_time(s.first_seen_us),
            attaches: s
                .attaches
                .iter()
                .map(|a| JsonAttach {
                    client: &a.client.name,
                    user: a.client.user.as_deref(),
                    uid: a.client.uid,
                    tty: a.client.tty.as_deref(),
                    pid: a.client.pid,
                    from: utc_time(a.from_us),
                    to: a.to_us.map(utc_time),
                })
                .collect(),
        }
    }
}
