//! The life of each tmux session, from the events: created, renamed,
//! closed, and who attached to it when.

use std::collections::HashMap;

use serde::Serialize;

use super::replay::ServerKey;
use super::{Client, TmuxEvent};

#[derive(Debug, Clone, Serialize)]
pub struct SessionHistory {
    pub tmux_socket: String,
    pub tmux_server_pid: i64,
    pub session_id: i64,
    /// Each name it had, from when.
    pub names: Vec<Named>,
    /// None when it existed before the events began (`seen` by `init tmux`).
    pub created_at_us: Option<i64>,
    pub closed_at_us: Option<i64>,
    /// The first and last event about it.
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub attaches: Vec<Attach>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Named {
    pub name: String,
    pub from_us: i64,
}

/// A client attached to the session from `from_us` until `to_us` (None:
/// still attached as far as the events tell).
#[derive(Debug, Clone, Serialize)]
pub struct Attach {
    pub client: Client,
    pub from_us: i64,
    pub to_us: Option<i64>,
}

impl SessionHistory {
    pub fn name(&self) -> &str {
        self.names.last().map_or("", |n| n.name.as_str())
    }
}

/// Every session of `events` (in time order), in the order they appeared.
pub fn sessions(events: &[TmuxEvent]) -> Vec<SessionHistory> {
    let mut order: Vec<(ServerKey, usize, i64)> = Vec::new();
    let mut histories: HashMap<(ServerKey, usize, i64), SessionHistory> = HashMap::new();
    // Per server: each attached client's session and open interval.
    let mut attached: HashMap<(ServerKey, String), (i64, usize)> = HashMap::new();
    // How many times each server (socket and pid) started: a server that
    // reuses an earlier one's pid has sessions of its own.
    let mut starts: HashMap<ServerKey, usize> = HashMap::new();
    for e in events {
        let server = e.server();
        if e.event == "server-started" {
            let before = starts.get(&server).copied().unwrap_or(0);
            // Whoever was attached to the one before was gone by now.
            attached.retain(|(s, _), (session, at)| {
                if s != &server {
                    return true;
                }
                if let Some(h) = histories.get_mut(&(server.clone(), before, *session)) {
                    h.attaches[*at].to_us.get_or_insert(e.at_us);
                }
                false
            });
            starts.insert(server.clone(), before + 1);
        }
        let generation = starts.get(&server).copied().unwrap_or(0);
        let client_key = e.client.as_ref().map(|c| (server.clone(), c.name.clone()));
        // A client leaving its session: detached, or moved to another.
        let leaves = match (&client_key, e.event.as_str()) {
            (Some(key), "client-detached") => attached.remove(key),
            (Some(key), _) if e.session_id.is_some() => match attached.get(key) {
                Some(&(session, _)) if Some(session) != e.session_id => attached.remove(key),
                _ => None,
            },
            _ => None,
        };
        if let Some((session, at)) = leaves
            && let Some(h) = histories.get_mut(&(server.clone(), generation, session))
        {
            h.attaches[at].to_us = Some(e.at_us);
        }
        let Some(session_id) = e.session_id else {
            continue;
        };
        let key = (server.clone(), generation, session_id);
        let history = histories.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            SessionHistory {
                tmux_socket: server.0.clone(),
                tmux_server_pid: server.1,
                session_id,
                names: Vec::new(),
                created_at_us: None,
                closed_at_us: None,
                first_seen_us: e.at_us,
                last_seen_us: e.at_us,
                attaches: Vec::new(),
            }
        });
        history.last_seen_us = e.at_us;
        // A late hook's name of the session does not undo a rename.
        if let Some(name) = e
            .session_name
            .as_ref()
            .filter(|_| e.names_session() || history.names.is_empty())
            && history.names.last().is_none_or(|n| &n.name != name)
        {
            history.names.push(Named {
                name: name.clone(),
                from_us: e.at_us,
            });
        }
        match e.event.as_str() {
            "session-created" => history.created_at_us = Some(e.at_us),
            "session-closed" => {
                history.closed_at_us = Some(e.at_us);
                for attach in history.attaches.iter_mut().filter(|a| a.to_us.is_none()) {
                    attach.to_us = Some(e.at_us);
                }
                attached.retain(|(s, _), (session, _)| !(s == &server && *session == session_id));
            }
            _ => {}
        }
        if let (Some(client), Some(client_key)) = (&e.client, client_key)
            && e.event != "client-detached"
            && !attached.contains_key(&client_key)
        {
            history.attaches.push(Attach {
                client: client.clone(),
                from_us: e.at_us,
                to_us: None,
            });
            attached.insert(client_key, (session_id, history.attaches.len() - 1));
        }
    }
    order
        .into_iter()
        .filter_map(|key| histories.remove(&key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        name: &str,
        at_us: i64,
        session: Option<(i64, &str)>,
        client: Option<&str>,
    ) -> TmuxEvent {
        TmuxEvent {
            event: name.into(),
            at_us,
            tmux_socket: "/s".into(),
            tmux_server_pid: 1,
            session_id: session.map(|s| s.0),
            session_name: session.map(|s| s.1.to_string()),
            client: client.map(|name| Client {
                name: name.into(),
                user: Some("alice".into()),
                ..Client::default()
            }),
            ..TmuxEvent::default()
        }
    }

    #[test]
    fn names_attaches_and_close_are_followed() {
        let events = [
            event("session-created", 1, Some((1, "dev")), None),
            event(
                "client-session-changed",
                2,
                Some((1, "dev")),
                Some("/dev/pts/1"),
            ),
            event("client-attached", 3, Some((1, "dev")), Some("/dev/pts/1")),
            event("session-renamed", 4, Some((1, "prod")), None),
            event("session-created", 5, Some((2, "other")), None),
            event(
                "client-session-changed",
                6,
                Some((2, "other")),
                Some("/dev/pts/1"),
            ),
            event("client-detached", 7, None, Some("/dev/pts/1")),
            event("session-closed", 8, Some((1, "prod")), None),
        ];
        let found = sessions(&events);
        assert_eq!(found.len(), 2);
        let prod = &found[0];
        let names: Vec<&str> = prod.names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["dev", "prod"]);
        assert_eq!((prod.created_at_us, prod.closed_at_us), (Some(1), Some(8)));
        assert_eq!(prod.attaches.len(), 1, "one interval, not one per event");
        assert_eq!(
            (prod.attaches[0].from_us, prod.attaches[0].to_us),
            (2, Some(6))
        );
        let other = &found[1];
        assert_eq!(
            (other.attaches[0].from_us, other.attaches[0].to_us),
            (6, Some(7))
        );
    }

    #[test]
    fn a_late_hook_does_not_undo_a_rename() {
        let events = [
            event("session-created", 1, Some((1, "work")), None),
            event("session-renamed", 2, Some((1, "prod")), None),
            // window-linked of the session's creation, whose hook ran late.
            event("window-linked", 3, Some((1, "work")), None),
        ];
        let found = sessions(&events);
        let names: Vec<&str> = found[0].names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["work", "prod"]);
        let mut replay = crate::lifecycle::replay::Replay::new(events.to_vec());
        let state = replay.state_at("/s", 1, 10).unwrap();
        assert_eq!(
            state.place(None, Some(1)).session_name.as_deref(),
            Some("prod")
        );
    }

    #[test]
    fn a_new_server_with_an_old_pid_has_sessions_of_its_own() {
        let events = [
            event("server-started", 1, None, None),
            event("session-created", 2, Some((0, "old")), None),
            event("client-attached", 3, Some((0, "old")), Some("/dev/pts/1")),
            event("server-started", 10, None, None),
            event("session-created", 11, Some((0, "new")), None),
        ];
        let found = sessions(&events);
        let names: Vec<&str> = found.iter().map(SessionHistory::name).collect();
        assert_eq!(names, ["old", "new"]);
        assert!(found[1].attaches.is_empty(), "{found:?}");
        assert_eq!(
            found[0].attaches[0].to_us,
            Some(10),
            "ended by the restart at the latest"
        );
    }
}
