//! A record as an Elastic Common Schema document (`export --ecs`), so a SIEM's
//! dashboards for process events read it unchanged: the command line, exit
//! code, directory, user, host, times and duration in ECS's own fields, and
//! what ECS has no field for under `tmux.*` (where it ran in tmux) and
//! `tmux_audit.*` (the record's own bookkeeping). The README's table lists
//! each field; ECS: <https://www.elastic.co/guide/en/ecs/current/>.

use serde::Serialize;

use super::{client_label, utc_time, SCHEMA_VERSION};
use crate::db::StoredCommand;
use crate::text::hex;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// One command as an ECS document (nested objects, as Elasticsearch
/// stores dotted field names).
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: Ecs,
    event: Event,
    process: Process<'a>,
    user: User<'a>,
    host: Host<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source<'a>>,
    tmux: Tmux<'a>,
    tmux_audit: TmuxAudit<'a>,
}

#[derive(Debug, Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct Event {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_of: [&'static str; 1],
    dataset: &'static str,
    /// `success` for exit 0, `failure` for any other, `unknown` without one.
    outcome: &'static str,
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    /// Nanoseconds, as ECS counts durations.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<i64>,
    /// When the record was stored.
    created: String,
    sequence: i64,
}

#[derive(Debug, Serialize)]
struct Process<'a> {
    command_line: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    working_directory: &'a str,
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

#[derive(Debug, Serialize)]
struct User<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

#[derive(Debug, Serialize)]
struct Host<'a> {
    name: &'a str,
    hostname: &'a str,
}

/// Where an SSH login came from (`$SSH_CONNECTION`: address and port).
#[derive(Debug, Serialize)]
struct Source<'a> {
    ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

#[derive(Debug, Serialize)]
struct Tmux<'a> {
    socket: Option<&'a str>,
    server_pid: Option<i64>,
    pane: Option<&'a str>,
    session: TmuxSession<'a>,
    window: TmuxWindow<'a>,
    /// Who typed the command: the user of the tmux client, and the client.
    typed_by: Option<&'a str>,
    typed_on: Option<&'a str>,
    attached: Vec<String>,
}

#[derive(Debug, Serialize)]
struct TmuxSession<'a> {
    id: Option<i64>,
    name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct TmuxWindow<'a> {
    id: Option<i64>,
    index: Option<i64>,
    name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct TmuxAudit<'a> {
    id: i64,
    shell: &'a str,
    shell_session: &'a str,
    seq: i64,
    tty: Option<&'a str>,
    login_uid: Option<u32>,
    sudo_user: Option<&'a str>,
    ssh_connection: Option<&'a str>,
    command_bytes_hex: Option<String>,
    cwd_bytes_hex: Option<String>,
    redacted: bool,
    /// Imported (`tmux-audit import`): from which tool, and which file.
    import_source: Option<&'a str>,
    import_file: Option<&'a str>,
    schema_version: u32,
}

/// `row` as an ECS document.
pub fn document(row: &StoredCommand) -> Document<'_> {
    let r = &row.record;
    let place = row.placement.as_ref();
    let client = place.and_then(|p| p.client.as_ref());
    let start = utc_time(r.started_at_us);
    let end = r
        .duration_us
        .and_then(|d| r.started_at_us.checked_add(d))
        .map(utc_time);
    Document {
        timestamp: start.clone(),
        ecs: Ecs {
            version: ECS_VERSION,
        },
        event: Event {
            kind: "event",
            category: ["process"],
            kind_of: ["end"],
            dataset: "tmux_audit.command",
            outcome: match r.exit_status {
                Some(0) => "success",
                Some(_) => "failure",
                None => "unknown",
            },
            start: start.clone(),
            end: end.clone(),
            duration: r.duration_us.and_then(|us| us.checked_mul(1000)),
            created: utc_time(row.recorded_at_us),
            sequence: r.seq,
        },
        process: Process {
            command_line: &r.command,
            exit_code: r.exit_status,
            working_directory: &r.cwd,
            start,
            end,
        },
        user: User {
            name: &r.user,
            id: crate::record::known_uid(r.uid).map(|uid| uid.to_string()),
        },
        host: Host {
            name: &r.host,
            hostname: &r.host,
        },
        source: r.ssh_connection.as_deref().and_then(source),
        tmux: Tmux {
            socket: r.tmux_socket.as_deref(),
            server_pid: r.tmux_server_pid,
            pane: r.tmux_pane.as_deref(),
            session: TmuxSession {
                id: r.tmux_session_id,
                name: place.and_then(|p| p.session_name.as_deref()),
            },
            window: TmuxWindow {
                id: place.and_then(|p| p.window_id),
                index: place.and_then(|p| p.window_index),
                name: place.and_then(|p| p.window_name.as_deref()),
            },
            typed_by: client.and_then(|c| c.user.as_deref()),
            typed_on: client.map(|c| c.name.as_str()),
            attached: place.map_or(Vec::new(), |p| {
                p.attached.iter().map(client_label).collect()
            }),
        },
        tmux_audit: TmuxAudit {
            id: row.id,
            shell: &r.shell,
            shell_session: &r.shell_session,
            seq: r.seq,
            tty: r.tty.as_deref(),
            login_uid: r.login_uid,
            sudo_user: r.sudo_user.as_deref(),
            ssh_connection: r.ssh_connection.as_deref(),
            command_bytes_hex: r.command_raw.as_deref().map(hex),
            cwd_bytes_hex: r.cwd_raw.as_deref().map(hex),
            redacted: r.redacted,
            import_source: r.imported.as_ref().map(|m| m.source.as_str()),
            import_file: r.imported.as_ref().map(|m| m.file.as_str()),
            schema_version: SCHEMA_VERSION,
        },
    }
}

/// The client's address and port of `$SSH_CONNECTION` (`client_ip
/// client_port server_ip server_port`); None when it does not read so.
fn source(ssh_connection: &str) -> Option<Source<'_>> {
    let mut parts = ssh_connection.split_ascii_whitespace();
    let ip = parts
        .next()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())?;
    Some(Source {
        ip,
        port: parts.next().and_then(|p| p.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::replay::Placement;
    use crate::lifecycle::Client;
    use crate::record::CommandRecord;
    use serde_json::json;

    fn row() -> StoredCommand {
        StoredCommand {
            id: 42,
            recorded_at_us: 1_700_000_003_000_000,
            record: CommandRecord {
                command: "make test".into(),
                exit_status: Some(2),
                started_at_us: 1_700_000_000_000_000,
                duration_us: Some(2_500_000),
                cwd: "/srv/api".into(),
                user: "deploy".into(),
                uid: 1001,
                host: "web-1".into(),
                shell: "zsh".into(),
                shell_session: "s-1".into(),
                seq: 7,
                tty: Some("/dev/pts/3".into()),
                ssh_connection: Some("192.0.2.7 51234 10.0.0.1 22".into()),
                tmux_socket: Some("/tmp/tmux-1001/default".into()),
                tmux_server_pid: Some(900),
                tmux_session_id: Some(3),
                tmux_pane: Some("%5".into()),
                ..CommandRecord::default()
            },
            placement: Some(Placement {
                session_id: Some(3),
                session_name: Some("prod".into()),
                window_id: Some(4),
                window_index: Some(1),
                window_name: Some("build".into()),
                client: Some(Client {
                    name: "/dev/pts/9".into(),
                    user: Some("alice".into()),
                    ..Client::default()
                }),
                attached: vec![],
            }),
        }
    }

    fn doc(row: &StoredCommand) -> serde_json::Value {
        serde_json::to_value(document(row)).unwrap()
    }

    #[test]
    fn the_ecs_fields_a_siem_reads_carry_the_record() {
        let d = doc(&row());
        assert_eq!(d["@timestamp"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(d["ecs"]["version"], ECS_VERSION);
        assert_eq!(d["process"]["command_line"], "make test");
        assert_eq!(d["process"]["exit_code"], 2);
        assert_eq!(d["process"]["working_directory"], "/srv/api");
        assert_eq!(d["user"]["name"], "deploy");
        assert_eq!(d["user"]["id"], "1001");
        assert_eq!(d["host"]["name"], "web-1");
        assert_eq!(d["event"]["start"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(d["event"]["end"], "2023-11-14T22:13:22.500000Z");
        // ECS durations are nanoseconds.
        assert_eq!(d["event"]["duration"], 2_500_000_000_i64);
        assert_eq!(d["event"]["outcome"], "failure");
        assert_eq!(d["event"]["category"], json!(["process"]));
        assert_eq!(d["event"]["created"], "2023-11-14T22:13:23.000000Z");
        assert_eq!(d["source"], json!({"ip": "192.0.2.7", "port": 51234}));
        assert_eq!(d["tmux"]["pane"], "%5");
        assert_eq!(d["tmux"]["session"], json!({"id": 3, "name": "prod"}));
        assert_eq!(
            d["tmux"]["window"],
            json!({"id": 4, "index": 1, "name": "build"})
        );
        assert_eq!(d["tmux"]["typed_by"], "alice");
        assert_eq!(d["tmux_audit"]["id"], 42);
        assert_eq!(d["tmux_audit"]["seq"], 7);
        assert_eq!(d["tmux_audit"]["schema_version"], SCHEMA_VERSION);
        assert_eq!(d["tmux_audit"]["import_source"], serde_json::Value::Null);
    }

    /// A SIEM must tell ten years of imported history from commands
    /// recorded today.
    #[test]
    fn an_imported_record_says_from_which_tool_and_file() {
        let mut r = row();
        r.record.imported = Some(crate::record::Imported {
            source: "fish".into(),
            file: "/home/a/.local/share/fish/fish_history".into(),
            key: vec![1],
        });
        let d = doc(&r);
        assert_eq!(d["tmux_audit"]["import_source"], "fish");
        assert_eq!(
            d["tmux_audit"]["import_file"],
            "/home/a/.local/share/fish/fish_history"
        );
    }

    #[test]
    fn what_is_unknown_is_left_out_rather_than_made_up() {
        let mut r = row();
        r.record.exit_status = None;
        r.record.duration_us = None;
        r.record.ssh_connection = Some("not an address".into());
        r.placement = None;
        let d = doc(&r);
        assert_eq!(d["event"]["outcome"], "unknown");
        assert!(d["process"].get("exit_code").is_none(), "{d}");
        assert!(d["event"].get("duration").is_none(), "{d}");
        assert!(d["event"].get("end").is_none(), "{d}");
        assert!(d.get("source").is_none(), "{d}");
        assert_eq!(d["tmux"]["session"]["name"], serde_json::Value::Null);
        r.record.exit_status = Some(0);
        assert_eq!(doc(&r)["event"]["outcome"], "success");
    }
}
