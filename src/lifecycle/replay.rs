//! Replaying a tmux server's events to learn what it looked like at any
//! moment: which window and session a pane was in, their names then, which
//! clients were attached and which of them was the latest active. This
//! names commands and attributes them to the person at the keyboard.

use std::collections::HashMap;

use serde::Serialize;

use super::{Client, TmuxEvent};
use crate::record::CommandRecord;

/// A tmux server: ids (`%3`, `$1`) are only unique within one.
pub type ServerKey = (String, i64);

/// Where a command ran and who was at the keyboard, as the events tell it,
/// at the moment the command started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub session_id: Option<i64>,
    pub session_name: Option<String>,
    pub window_id: Option<i64>,
    pub window_index: Option<i64>,
    pub window_name: Option<String>,
    /// The client that typed it: the only one attached to the session, or
    /// else the one latest active (the last to send input) in its window,
    /// or failing that in its session. None when no client was attached.
    pub client: Option<Client>,
    /// Every client attached to the session then.
    pub attached: Vec<Client>,
}

impl Placement {
    /// `name:index.pane` as far as it is known, for tables.
    pub fn label(&self, pane: Option<&str>) -> String {
        let session = self
            .session_name
            .clone()
            .or_else(|| self.session_id.map(|id| format!("${id}")))
            .unwrap_or_else(|| "-".to_string());
        let window = self
            .window_index
            .map_or(String::new(), |index| format!(":{index}"));
        let pane = pane.map_or(String::new(), |p| format!(".{p}"));
        format!("{session}{window}{pane}")
    }

    /// The Unix user of the client that typed it.
    pub fn client_user(&self) -> Option<&str> {
        self.client.as_ref().and_then(|c| c.user.as_deref())
    }
}

/// Who typed a command of a shell of `user`, placed at `place` (None: not
/// placed): the user of the client that typed it, else the shell's user
/// (outside tmux, on a server without events, or with no client known).
pub fn typist<'a>(place: Option<&'a Placement>, user: &'a str) -> &'a str {
    place.and_then(Placement::client_user).unwrap_or(user)
}

#[derive(Debug, Default, Clone)]
struct Window {
    index: Option<i64>,
    name: Option<String>,
    /// Sessions it is linked into, the latest last.
    sessions: Vec<i64>,
}

/// One server's state after some of its events.
#[derive(Debug, Default, Clone)]
pub struct ServerState {
    sessions: HashMap<i64, String>,
    windows: HashMap<i64, Window>,
    panes: HashMap<String, i64>,
    /// Attached clients, by name, with the session each shows.
    clients: HashMap<String, (Client, Option<i64>)>,
    /// The latest client of each window, and since when.
    latest_in_window: HashMap<i64, (String, i64)>,
    /// The latest client in some window of each session, from events that
    /// did not say which window (tmux gives a hook the event's client's
    /// window only when that client is also the hook's target).
    latest_in_session: HashMap<i64, (String, i64)>,
}

impl ServerState {
    pub fn apply(&mut self, e: &TmuxEvent) {
        // A server whose pid and socket an earlier one had (after a reboot,
        // in a container): nothing of the earlier one carries over.
        if e.event == "server-started" {
            *self = ServerState::default();
        }
        if let (Some(id), Some(name)) = (e.session_id, &e.session_name)
            && (e.names_session() || !self.sessions.contains_key(&id))
        {
            self.sessions.insert(id, name.clone());
        }
        if let Some(window_id) = e.window_id {
            let window = self.windows.entry(window_id).or_default();
            if e.window_index.is_some() {
                window.index = e.window_index;
            }
            if e.window_name.is_some() && (e.names_window() || window.name.is_none()) {
                window.name.clone_from(&e.window_name);
            }
            if let Some(session) = e.session_id {
                window.sessions.retain(|&s| s != session);
                if e.event != "window-unlinked" {
                    window.sessions.push(session);
                }
            }
            if let Some(pane) = &e.pane {
                self.panes.insert(pane.clone(), window_id);
            }
        }
        let Some(client) = &e.client else { return };
        if e.event == "client-detached" {
            self.clients.remove(&client.name);
            return;
        }
        let entry = self
            .clients
            .entry(client.name.clone())
            .or_insert_with(|| (client.clone(), None));
        merge_client(&mut entry.0, client);
        if e.session_id.is_some() {
            entry.1 = e.session_id;
        }
        // tmux makes a client the latest of its window when it attaches or
        // changes session (without a client-active event), and when it
        // sends input while another client was the latest (with one).
        if matches!(
            e.event.as_str(),
            "client-active" | "client-attached" | "client-session-changed"
        ) {
            let latest = (client.name.clone(), e.at_us);
            match (e.window_id, entry.1) {
                (Some(window), _) => {
                    self.latest_in_window.insert(window, latest);
                }
                (None, Some(session)) => {
                    self.latest_in_session.insert(session, latest);
                }
                (None, None) => {}
            }
        }
    }

    /// What is known of an attached client.
    pub fn client(&self, name: &str) -> Option<&Client> {
        self.clients.get(name).map(|(client, _)| client)
    }

    /// The session a client is attached to now.
    pub fn client_session(&self, client: &str) -> Option<i64> {
        self.clients.get(client).and_then(|(_, session)| *session)
    }

    /// The window `pane` is in now.
    pub fn window_of(&self, pane: &str) -> Option<i64> {
        self.panes.get(pane).copied()
    }

    /// The session `window` was linked into last.
    pub fn session_of(&self, window: i64) -> Option<i64> {
        self.windows.get(&window)?.sessions.last().copied()
    }

    /// Where `pane` (or, failing that, session `session_id`) is now.
    pub fn place(&self, pane: Option<&str>, session_id: Option<i64>) -> Placement {
        let window_id = pane.and_then(|p| self.panes.get(p)).copied();
        let window = window_id.and_then(|w| self.windows.get(&w));
        let session = match window {
            Some(w) if session_id.is_some_and(|s| w.sessions.contains(&s)) => session_id,
            Some(w) if !w.sessions.is_empty() => w.sessions.last().copied(),
            _ => session_id,
        };
        // Everyone who sees the window: clients of its session, and of the
        // other sessions it is linked into (`new-session -t`, `link-window`).
        let sees = |s: Option<i64>| {
            s.is_some_and(|s| match window {
                Some(w) => w.sessions.contains(&s) || Some(s) == session,
                None => Some(s) == session,
            })
        };
        let mut attached: Vec<&Client> = self
            .clients
            .values()
            .filter(|(_, s)| sees(*s))
            .map(|(c, _)| c)
            .collect();
        attached.sort_by(|a, b| a.name.cmp(&b.name));
        // The newest of the window's latest client and a latest client of
        // the session whose window is not known, among those attached; else
        // the only one attached.
        let candidates = [
            window_id.and_then(|w| self.latest_in_window.get(&w)),
            session.and_then(|s| self.latest_in_session.get(&s)),
        ];
        let latest = candidates
            .into_iter()
            .flatten()
            .filter_map(|(name, at)| {
                let client = attached.iter().find(|c| &c.name == name)?;
                Some((*at, *client))
            })
            .max_by_key(|(at, _)| *at)
            .map(|(_, client)| client);
        let client = latest.or(match attached.as_slice() {
            [only] => Some(*only),
            _ => None,
        });
        Placement {
            session_id: session,
            session_name: session.and_then(|s| self.sessions.get(&s).cloned()),
            window_id,
            window_index: window.and_then(|w| w.index),
            window_name: window.and_then(|w| w.name.clone()),
            client: client.cloned(),
            attached: attached.into_iter().cloned().collect(),
        }
    }
}

/// What an event left unsaid about a client is kept from earlier ones.
fn merge_client(known: &mut Client, new: &Client) {
    let keep = |old: &mut Option<String>, new: &Option<String>| {
        if new.is_some() {
            old.clone_from(new);
        }
    };
    keep(&mut known.tty, &new.tty);
    keep(&mut known.user, &new.user);
    keep(&mut known.termname, &new.termname);
    known.pid = new.pid.or(known.pid);
    known.uid = new.uid.or(known.uid);
}

/// Every server's events, replayed forward as later moments are asked for.
pub struct Replay {
    /// By socket, then by server pid.
    servers: HashMap<String, HashMap<i64, ServerReplay>>,
}

struct ServerReplay {
    events: Vec<TmuxEvent>,
    applied: usize,
    state: ServerState,
    /// The state after every [`ServerReplay::checkpoint_every`]th event, as
    /// first reached (how many were applied, the state then): a moment asked
    /// for before the state's starts from the nearest one, not from the
    /// first event, so that placing commands newest first costs a bounded
    /// number of events per command however many the server has. Kept only
    /// once the replay has been asked to go back: one that only goes
    /// forward (most do) holds no copies of its state.
    checkpoints: Vec<(usize, ServerState)>,
    went_back: bool,
}

/// How many events apart a server's replay keeps its state, at least.
const CHECKPOINT_EVERY: usize = 64;

/// At most how many states a server's replay keeps (each holds every
/// session, window and pane seen so far).
const MOST_CHECKPOINTS: usize = 256;

impl ServerReplay {
    fn checkpoint_every(&self) -> usize {
        CHECKPOINT_EVERY.max(self.events.len().div_ceil(MOST_CHECKPOINTS))
    }
}

impl Replay {
    /// `events` in time order.
    pub fn new(events: Vec<TmuxEvent>) -> Replay {
        let mut servers: HashMap<String, HashMap<i64, ServerReplay>> = HashMap::new();
        for event in events {
            servers
                .entry(event.tmux_socket.clone())
                .or_default()
                .entry(event.tmux_server_pid)
                .or_insert_with(|| ServerReplay {
                    events: Vec::new(),
                    applied: 0,
                    state: ServerState::default(),
                    checkpoints: Vec::new(),
                    went_back: false,
                })
                .events
                .push(event);
        }
        Replay { servers }
    }

    /// The servers that have events (those a command can be placed on),
    /// in order.
    pub fn servers(&self) -> Vec<ServerKey> {
        let mut servers: Vec<ServerKey> = self
            .servers
            .iter()
            .flat_map(|(socket, pids)| pids.keys().map(|pid| (socket.clone(), *pid)))
            .collect();
        servers.sort();
        servers
    }

    /// The state of a server at `at_us` (events at that very moment
    /// included); None for a server without events. Moments asked for in
    /// time order cost one pass over the events.
    pub fn state_at(&mut self, socket: &str, pid: i64, at_us: i64) -> Option<&ServerState> {
        let replay = self.servers.get_mut(socket)?.get_mut(&pid)?;
        let applied_past = replay
            .applied
            .checked_sub(1)
            .is_some_and(|last| replay.events[last].at_us > at_us);
        if applied_past {
            replay.went_back = true;
            // The latest checkpoint whose events all happened by `at_us`.
            let events = &replay.events;
            let usable = replay
                .checkpoints
                .partition_point(|(applied, _)| events[applied - 1].at_us <= at_us);
            (replay.applied, replay.state) = match usable.checked_sub(1) {
                Some(i) => replay.checkpoints[i].clone(),
                None => (0, ServerState::default()),
            };
        }
        while let Some(event) = replay.events.get(replay.applied) {
            if event.at_us > at_us {
                break;
            }
            replay.state.apply(event);
            replay.applied += 1;
            if replay.went_back
                && replay.applied % replay.checkpoint_every() == 0
                && replay
                    .checkpoints
                    .last()
                    .is_none_or(|(applied, _)| *applied < replay.applied)
            {
                replay
                    .checkpoints
                    .push((replay.applied, replay.state.clone()));
            }
        }
        Some(&replay.state)
    }

    /// Where each command ran and who typed it; None outside tmux or for a
    /// server without events.
    pub fn place_all<'a>(
        &mut self,
        commands: impl IntoIterator<Item = &'a CommandRecord>,
    ) -> Vec<Option<Placement>> {
        let commands: Vec<&CommandRecord> = commands.into_iter().collect();
        let mut order: Vec<usize> = (0..commands.len()).collect();
        order.sort_by_key(|&i| commands[i].started_at_us);
        let mut placements = vec![None; commands.len()];
        for i in order {
            placements[i] = self.place(commands[i]);
        }
        placements
    }

    pub fn place(&mut self, command: &CommandRecord) -> Option<Placement> {
        self.place_at(
            command.tmux_socket.as_deref()?,
            command.tmux_server_pid?,
            command.tmux_pane.as_deref(),
            command.tmux_session_id,
            command.started_at_us,
        )
    }

    /// Where a command of `pane` (of session `session_id`, as `$TMUX` has
    /// it) that started at `at_us` ran, and who typed it.
    pub fn place_at(
        &mut self,
        socket: &str,
        pid: i64,
        pane: Option<&str>,
        session_id: Option<i64>,
        at_us: i64,
    ) -> Option<Placement> {
        let state = self.state_at(socket, pid, at_us)?;
        Some(state.place(pane, session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, at_us: i64) -> TmuxEvent {
        TmuxEvent {
            event: event.into(),
            at_us,
            tmux_socket: "/s".into(),
            tmux_server_pid: 1,
            ..TmuxEvent::default()
        }
    }

    fn client(name: &str, user: &str) -> Option<Client> {
        Some(Client {
            name: name.into(),
            user: Some(user.into()),
            ..Client::default()
        })
    }

    fn command(pane: &str, at_us: i64) -> CommandRecord {
        let mut c: CommandRecord = serde_json::from_str(
            r#"{"command":"x","command_raw":null,"exit_status":0,"started_at_us":0,
            "duration_us":null,"cwd":"/","cwd_raw":null,"user":"u","uid":0,"login_uid":null,
            "sudo_user":null,"host":"h","shell":"bash","shell_session":"s","seq":1,"tty":null,
            "ssh_connection":null,"tmux_socket":"/s","tmux_server_pid":1,"tmux_session_id":1,
            "tmux_pane":null}"#,
        )
        .unwrap();
        c.tmux_pane = Some(pane.into());
        c.started_at_us = at_us;
        c
    }

    fn shared_session() -> Vec<TmuxEvent> {
        let mut events = Vec::new();
        let mut e = event("session-created", 10);
        (e.session_id, e.session_name) = (Some(1), Some("dev".into()));
        (e.window_id, e.window_index, e.pane) = (Some(1), Some(0), Some("%1".into()));
        events.push(e);
        for (at, name, user) in [(20, "/dev/pts/1", "alice"), (30, "/dev/pts/2", "bob")] {
            let mut e = event("client-attached", at);
            (e.session_id, e.window_id, e.client) = (Some(1), Some(1), client(name, user));
            events.push(e);
        }
        for (at, name, user) in [(40, "/dev/pts/1", "alice"), (60, "/dev/pts/2", "bob")] {
            let mut e = event("client-active", at);
            (e.session_id, e.window_id, e.client) = (Some(1), Some(1), client(name, user));
            events.push(e);
        }
        let mut e = event("session-renamed", 70);
        (e.session_id, e.session_name) = (Some(1), Some("prod".into()));
        events.push(e);
        let mut e = event("client-detached", 80);
        e.client = client("/dev/pts/2", "bob");
        e.client.as_mut().unwrap().user = None;
        events.push(e);
        events
    }

    #[test]
    fn commands_get_the_names_and_typist_of_their_time() {
        let mut replay = Replay::new(shared_session());
        let at = |replay: &mut Replay, t| replay.place(&command("%1", t)).unwrap();
        let p = at(&mut replay, 25);
        assert_eq!(p.label(Some("%1")), "dev:0.%1");
        assert_eq!(p.client_user(), Some("alice"), "the only one attached");
        let p = at(&mut replay, 35);
        assert_eq!(p.attached.len(), 2);
        assert_eq!(
            p.client_user(),
            Some("bob"),
            "tmux makes the client that attached last the latest"
        );
        assert_eq!(at(&mut replay, 50).client_user(), Some("alice"));
        let p = at(&mut replay, 75);
        assert_eq!(
            (p.client_user(), p.session_name.as_deref()),
            (Some("bob"), Some("prod"))
        );
        let p = at(&mut replay, 90);
        assert_eq!(p.client_user(), Some("alice"), "bob detached");
        // Asked out of order: replayed again from the start.
        assert_eq!(at(&mut replay, 50).session_name.as_deref(), Some("dev"));
        assert!(replay
            .place(&command("%9", 50))
            .unwrap()
            .window_id
            .is_none());
    }

    #[test]
    fn a_client_of_a_grouped_session_that_types_is_the_typist() {
        let mut events = shared_session();
        events.truncate(3); // created, alice attached, bob attached
                            // Bob is in a session of his own grouped with session 1 (`new -t`):
                            // it has window 1 linked too.
        events[2].session_id = Some(2);
        let mut linked = event("window-linked", 29);
        (linked.session_id, linked.window_id) = (Some(2), Some(1));
        events.insert(2, linked);
        let mut typed = event("client-active", 40);
        (typed.session_id, typed.window_id, typed.client) =
            (Some(2), Some(1), client("/dev/pts/2", "bob"));
        events.push(typed);
        let mut replay = Replay::new(events);
        let p = replay.place(&command("%1", 50)).unwrap();
        assert_eq!(p.client_user(), Some("bob"));
        assert_eq!(p.attached.len(), 2, "both see the window: {p:?}");
    }

    #[test]
    fn a_client_active_that_names_no_window_still_counts() {
        // As tmux sometimes reports it: only the client's name.
        let mut events = shared_session();
        events.truncate(3); // created, alice attached, bob attached (latest)
        let mut typed = event("client-active", 40);
        typed.client = client("/dev/pts/1", "alice");
        typed.client.as_mut().unwrap().user = None;
        events.push(typed);
        let mut replay = Replay::new(events);
        let p = replay.place(&command("%1", 50)).unwrap();
        assert_eq!(p.client_user(), Some("alice"), "{p:?}");
    }

    fn replayed(events: &[TmuxEvent]) -> ServerState {
        let mut state = ServerState::default();
        for e in events {
            state.apply(e);
        }
        state
    }

    /// Session 1 `dev` with window 1 (pane %1); window 1 also linked into
    /// session 2 `ops`, which was linked last.
    fn linked_window() -> Vec<TmuxEvent> {
        let mut created = event("session-created", 10);
        (created.session_id, created.session_name) = (Some(1), Some("dev".into()));
        (created.window_id, created.window_index, created.pane) =
            (Some(1), Some(0), Some("%1".into()));
        let mut other = event("session-created", 20);
        (other.session_id, other.session_name) = (Some(2), Some("ops".into()));
        let mut linked = event("window-linked", 30);
        (linked.session_id, linked.window_id) = (Some(2), Some(1));
        vec![created, other, linked]
    }

    #[test]
    fn the_commands_own_session_is_preferred_among_those_showing_its_window() {
        let state = replayed(&linked_window());
        assert_eq!(state.window_of("%1"), Some(1));
        assert_eq!(state.window_of("%9"), None);
        assert_eq!(state.session_of(1), Some(2), "linked last");
        assert_eq!(state.session_of(9), None);
        let p = state.place(Some("%1"), Some(1));
        assert_eq!(p.label(Some("%1")), "dev:0.%1", "its own session");
        let p = state.place(Some("%1"), Some(7));
        assert_eq!(
            p.label(Some("%1")),
            "ops:0.%1",
            "not linked: the latest one"
        );
        let p = state.place(Some("%1"), None);
        assert_eq!(p.session_id, Some(2));
        // A window in no session (all unlinked): the command's own session.
        let mut events = linked_window();
        for (at, session) in [(40, 1), (50, 2)] {
            let mut unlinked = event("window-unlinked", at);
            (unlinked.session_id, unlinked.window_id) = (Some(session), Some(1));
            events.push(unlinked);
        }
        let state = replayed(&events);
        assert_eq!(state.session_of(1), None, "window-unlinked takes it out");
        assert_eq!(state.place(Some("%1"), Some(1)).session_id, Some(1));
        assert_eq!(state.place(Some("%1"), Some(7)).session_id, Some(7));
        assert_eq!(state.place(Some("%1"), None).session_id, None);
    }

    #[test]
    fn window_unlinked_leaves_the_session_the_window_was_in_before() {
        let mut events = linked_window();
        let mut unlinked = event("window-unlinked", 40);
        (unlinked.session_id, unlinked.window_id) = (Some(2), Some(1));
        events.push(unlinked);
        let state = replayed(&events);
        assert_eq!(state.session_of(1), Some(1));
        assert_eq!(state.place(Some("%1"), Some(2)).session_id, Some(1));
    }

    #[test]
    fn only_events_that_name_things_rename_them() {
        let mut events = linked_window();
        // A later event carries names tmux reported at some other moment.
        let mut stale = event("client-active", 40);
        (stale.session_id, stale.session_name) = (Some(1), Some("old".into()));
        (stale.window_id, stale.window_name) = (Some(1), Some("bash".into()));
        events.insert(1, {
            let mut named = event("window-renamed", 15);
            (named.window_id, named.window_name) = (Some(1), Some("vim".into()));
            named
        });
        events.push(stale);
        let p = replayed(&events).place(Some("%1"), Some(1));
        assert_eq!(
            (p.session_name.as_deref(), p.window_name.as_deref()),
            (Some("dev"), Some("vim"))
        );
        // What is not named yet is learned from any event.
        let mut first = event("client-active", 5);
        (first.session_id, first.session_name) = (Some(3), Some("seen".into()));
        (first.window_id, first.window_name, first.pane) =
            (Some(3), Some("top".into()), Some("%3".into()));
        let p = replayed(&[first]).place(Some("%3"), Some(3));
        assert_eq!(
            (p.session_name.as_deref(), p.window_name.as_deref()),
            (Some("seen"), Some("top"))
        );
    }

    #[test]
    fn clients_are_known_by_what_any_of_their_events_told() {
        let mut attached = event("client-attached", 10);
        attached.session_id = Some(1);
        attached.client = Some(Client {
            name: "/dev/pts/4".into(),
            pid: Some(400),
            ..Client::default()
        });
        let mut active = event("client-active", 20);
        active.client = client("/dev/pts/4", "alice");
        let state = replayed(&[attached, active]);
        let known = state.client("/dev/pts/4").unwrap();
        assert_eq!(
            (known.user.as_deref(), known.pid),
            (Some("alice"), Some(400))
        );
        assert_eq!(state.client_session("/dev/pts/4"), Some(1));
        assert!(state.client("/dev/pts/5").is_none());
        assert_eq!(state.client_session("/dev/pts/5"), None);
    }

    #[test]
    fn place_all_answers_in_the_order_asked_whatever_the_times() {
        let mut replay = Replay::new(shared_session());
        let (late, early) = (command("%1", 75), command("%1", 25));
        let mut outside = command("%1", 50);
        outside.tmux_socket = None;
        let names: Vec<Option<String>> = replay
            .place_all([&late, &outside, &early])
            .into_iter()
            .map(|p| p.and_then(|p| p.session_name))
            .collect();
        assert_eq!(names, [Some("prod".into()), None, Some("dev".into())]);
    }

    /// Asked newest first, or in any order, a replay places each command
    /// as one asked in time order does: the checkpoints it starts again
    /// from hold the state of their moment (names, windows, clients).
    #[test]
    fn places_asked_backwards_are_those_asked_forwards() {
        let mut events = shared_session();
        for i in 1..=700_i64 {
            let at = 100 + i * 10;
            let mut e = match i % 4 {
                0 => event("session-renamed", at),
                1 => event("window-renamed", at),
                2 => event("client-attached", at),
                _ => event("client-active", at),
            };
            (e.session_id, e.session_name) = (Some(1), Some(format!("s{i}")));
            (e.window_id, e.window_index) = (Some(1 + i % 3), Some(i % 3));
            e.window_name = Some(format!("w{i}"));
            e.pane = Some(format!("%{}", 1 + i % 5));
            e.client = client(
                &format!("/dev/pts/{}", i % 7),
                ["alice", "bob", "carol"][(i % 3) as usize],
            );
            events.push(e);
        }
        let commands: Vec<CommandRecord> = (0..1_100)
            .map(|n| command(&format!("%{}", 1 + n % 5), n * 7))
            .collect();
        let mut forward = Replay::new(events.clone());
        let expected: Vec<_> = commands.iter().map(|c| forward.place(c)).collect();
        let mut backward = Replay::new(events.clone());
        for (c, want) in commands.iter().zip(&expected).rev() {
            assert_eq!(&backward.place(c), want, "at {}", c.started_at_us);
        }
        let mut scattered = Replay::new(events);
        for i in (0..commands.len()).map(|i| i * 389 % commands.len()) {
            let c = &commands[i];
            assert_eq!(scattered.place(c), expected[i], "at {}", c.started_at_us);
        }
    }

    #[test]
    fn an_event_at_the_very_moment_a_command_started_counts() {
        let mut replay = Replay::new(shared_session());
        // session-renamed at 70: `prod` from then on.
        let p = replay.place(&command("%1", 70)).unwrap();
        assert_eq!(p.session_name.as_deref(), Some("prod"));
        let p = replay.place(&command("%1", 69)).unwrap();
        assert_eq!(p.session_name.as_deref(), Some("dev"));
    }

    #[test]
    fn clients_of_a_session_that_does_not_show_the_window_are_not_attached() {
        let mut events = linked_window();
        for (at, name, user, session) in [
            (40, "/dev/pts/1", "alice", 1),
            (50, "/dev/pts/3", "carol", 3),
        ] {
            let mut e = event("client-attached", at);
            (e.session_id, e.client) = (Some(session), client(name, user));
            events.push(e);
        }
        let names = |p: &Placement| {
            p.attached
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        let p = replayed(&events).place(Some("%1"), Some(1));
        assert_eq!(names(&p), ["/dev/pts/1"]);
        // A window in no session: the clients of the command's own session.
        for (at, session) in [(60, 1), (70, 2)] {
            let mut unlinked = event("window-unlinked", at);
            (unlinked.session_id, unlinked.window_id) = (Some(session), Some(1));
            events.push(unlinked);
        }
        let p = replayed(&events).place(Some("%1"), Some(1));
        assert_eq!(names(&p), ["/dev/pts/1"]);
    }

    #[test]
    fn without_a_window_the_clients_of_the_session_alone_are_attached() {
        let mut events = Vec::new();
        for (at, name, user, session) in
            [(10, "/dev/pts/1", "alice", 1), (20, "/dev/pts/2", "bob", 2)]
        {
            let mut e = event("client-attached", at);
            (e.session_id, e.client) = (Some(session), client(name, user));
            events.push(e);
        }
        let p = replayed(&events).place(None, Some(1));
        assert_eq!(p.attached.len(), 1, "{p:?}");
        assert_eq!(p.client_user(), Some("alice"));
    }

    #[test]
    fn a_new_server_with_an_old_pid_starts_from_nothing() {
        let mut events = shared_session();
        events.truncate(3);
        events.push(event("server-started", 100));
        let mut replay = Replay::new(events);
        let p = replay.place(&command("%1", 110)).unwrap();
        assert_eq!(
            (p.session_name, p.client, p.attached.len()),
            (None, None, 0)
        );
    }
}
