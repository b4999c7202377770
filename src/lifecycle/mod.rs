//! tmux lifecycle events: what a tmux server did (sessions created,
//! renamed and closed, windows linked and renamed, panes split and exited,
//! clients attached, detached and active), recorded by hooks that
//! `tmux-audit init tmux` registers in the server (`hooks.rs`), and
//! replayed to name and attribute commands (`replay.rs`).

pub mod hooks;
pub mod panes;
pub mod replay;
pub mod sessions;

use std::collections::HashMap;
use std::ffi::OsString;

use serde::{Deserialize, Serialize};

/// One row of the `tmux_events` table. Times are microseconds since the
/// Unix epoch, UTC. Ids are stored without their sigils (`$1` is session 1,
/// `@2` window 2); panes keep theirs (`%3`), as `$TMUX_PANE` gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmuxEvent {
    /// The hook's name (`session-created`, `client-active`, …), or
    /// `server-started` and `seen` (state found when `init tmux` ran).
    pub event: String,
    pub at_us: i64,
    /// Unique to this event, so that it is stored once however often it is
    /// merged: host, process id and time of the process that captured it.
    pub event_key: String,
    /// Where it was recorded, and by whom: the tmux server's owner.
    pub host: String,
    pub user: String,
    pub uid: u32,
    pub tmux_socket: String,
    pub tmux_server_pid: i64,
    pub session_id: Option<i64>,
    pub session_name: Option<String>,
    pub window_id: Option<i64>,
    pub window_index: Option<i64>,
    pub window_name: Option<String>,
    pub pane: Option<String>,
    pub client: Option<Client>,
    /// Of a `window-renamed`: whether tmux named the window after the
    /// program running in it (its `automatic-rename` option), rather than
    /// someone with `rename-window`. None for other events, and for
    /// renames recorded before it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_rename: Option<bool>,
}

/// A tmux client: a terminal attached to a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// tmux's name for it: its tty, as a rule.
    pub name: String,
    pub tty: Option<String>,
    pub pid: Option<i64>,
    /// The Unix user the client runs as (`client_user`, tmux 3.3+).
    pub user: Option<String>,
    pub uid: Option<i64>,
    pub termname: Option<String>,
}

/// The formats every hook passes, as `key=value` arguments of `tmux-audit
/// tmux-event`. The `hook_*` formats name what the event is about; the
/// others describe the hook's target, which for some events is another
/// session or client than the event's own (`session-closed` runs with some
/// other session as its target, `client-detached` with some other client),
/// so they are used only when they agree with the `hook_*` ones.
pub const HOOK_FORMATS: &[&str] = &[
    "hook_session",
    "hook_session_name",
    "hook_window",
    "hook_window_name",
    "hook_pane",
    "hook_client",
    "session_id",
    "session_name",
    "window_id",
    "window_index",
    "window_name",
    "pane_id",
    "client_name",
    "client_tty",
    "client_pid",
    "client_user",
    "client_uid",
    "client_termname",
    "pid",
    "socket_path",
    "automatic-rename",
];

/// Where and by whom an event was recorded; the rest comes from tmux.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub at_us: i64,
    pub host: String,
    pub user: String,
    pub uid: u32,
}

impl Recorder {
    /// This process, at `at_us`.
    pub fn now(at_us: i64) -> Recorder {
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        Recorder {
            at_us,
            host: whoami::fallible::hostname().unwrap_or_default(),
            user: crate::context::user_name(uid),
            uid,
        }
    }
}

impl TmuxEvent {
    /// Whether this event is the word on its session's name: it made,
    /// renamed or saw the session. Other events carry the name too, but
    /// their hooks may run late (each is a process of its own, timed when
    /// it starts), after a rename: their name only fills in an unknown one.
    pub fn names_session(&self) -> bool {
        matches!(
            self.event.as_str(),
            "session-created" | "session-renamed" | "seen"
        )
    }

    /// [`TmuxEvent::names_session`] for the window's name (tmux reports its
    /// automatic renames as window-renamed too).
    pub fn names_window(&self) -> bool {
        matches!(
            self.event.as_str(),
            "window-renamed" | "after-new-window" | "seen"
        )
    }

    /// The server it happened in.
    pub fn server(&self) -> replay::ServerKey {
        (self.tmux_socket.clone(), self.tmux_server_pid)
    }

    /// The event a hook reported, from its `key=value` arguments (see
    /// [`HOOK_FORMATS`]). None when it lacks the server's socket or pid.
    pub fn from_hook(
        event: &str,
        fields: &HashMap<String, String>,
        by: &Recorder,
    ) -> Option<TmuxEvent> {
        let get = |key: &str| {
            fields
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let same = |hook: &str, target: &str| get(hook).is_none_or(|h| get(target) == Some(h));
        // The target describes this event only when it is about the same
        // client, session, window and pane as all the event names: a
        // pane-exited names only its pane, and its target is some other
        // pane, of whatever session tmux finds best.
        let target = same("hook_client", "client_name")
            && same("hook_session", "session_id")
            && same("hook_window", "window_id")
            && same("hook_pane", "pane_id");
        let either =
            |hook: &str, target: &str, ok: bool| get(hook).or(if ok { get(target) } else { None });
        // Only client events name a client: for the others, the target's
        // client is whichever tmux finds best for the session, which need
        // not be the one that caused the event.
        let client = get("hook_client").map(|name| {
            let of_target = |key| if target { get(key) } else { None };
            Client {
                name: name.to_string(),
                tty: of_target("client_tty").map(str::to_string),
                pid: of_target("client_pid").and_then(|v| v.parse().ok()),
                user: of_target("client_user").map(str::to_string),
                uid: of_target("client_uid").and_then(|v| v.parse().ok()),
                termname: of_target("client_termname").map(str::to_string),
            }
        });
        Some(TmuxEvent {
            event: event.to_string(),
            at_us: by.at_us,
            event_key: event_key(by, 0),
            host: by.host.clone(),
            user: by.user.clone(),
            uid: by.uid,
            tmux_socket: get("socket_path")?.to_string(),
            tmux_server_pid: get("pid")?.parse().ok()?,
            session_id: either("hook_session", "session_id", target).and_then(id),
            session_name: either("hook_session_name", "session_name", target).map(str::to_string),
            window_id: either("hook_window", "window_id", target).and_then(id),
            window_index: if target {
                get("window_index").and_then(|v| v.parse().ok())
            } else {
                None
            },
            window_name: either("hook_window_name", "window_name", target).map(str::to_string),
            pane: either("hook_pane", "pane_id", target).map(str::to_string),
            client,
            automatic_rename: (event == "window-renamed")
                .then(|| get("automatic-rename").map(|v| v == "1"))
                .flatten(),
        })
    }
}

/// Unique per captured event: no two processes on a host share a pid at
/// the same microsecond. `n` tells apart the events one process captures.
pub fn event_key(by: &Recorder, n: usize) -> String {
    format!("{}:{}:{}:{n}", by.host, std::process::id(), by.at_us)
}

/// `key=value` arguments as a map (a value that is not UTF-8 taken lossily:
/// tmux names and ttys are text).
pub fn parse_fields(args: &[OsString]) -> HashMap<String, String> {
    args.iter()
        .filter_map(|arg| {
            let arg = arg.to_string_lossy();
            let (key, value) = arg.split_once('=')?;
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

/// `$1`, `@2` → 1, 2.
pub fn id(text: &str) -> Option<i64> {
    text.trim_start_matches(['$', '@']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        Recorder {
            at_us: 5,
            host: "h".into(),
            user: "u".into(),
            uid: 1,
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = [("pid", "42"), ("socket_path", "/tmp/s")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        map
    }

    #[test]
    fn fields_split_at_the_first_equals_sign_and_take_any_bytes() {
        use std::os::unix::ffi::OsStringExt;
        let args = [
            OsString::from("session_name=a=b"),
            OsString::from("junk"),
            OsString::from_vec(b"client_tty=/dev/\xff".to_vec()),
        ];
        let fields = parse_fields(&args);
        assert_eq!(fields.get("session_name").map(String::as_str), Some("a=b"));
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn a_closed_session_is_not_confused_with_the_hook_target() {
        // What tmux 3.3 passes to session-closed: the target is another session.
        let f = fields(&[
            ("hook_session", "$1"),
            ("hook_session_name", "prod"),
            ("session_id", "$0"),
            ("session_name", "first"),
            ("window_id", "@0"),
            ("window_index", "0"),
            ("pane_id", "%0"),
        ]);
        let e = TmuxEvent::from_hook("session-closed", &f, &recorder()).unwrap();
        assert_eq!(
            (e.session_id, e.session_name.as_deref()),
            (Some(1), Some("prod"))
        );
        assert_eq!((e.window_id, e.window_index, e.pane), (None, None, None));
        assert_eq!((e.tmux_server_pid, e.tmux_socket.as_str()), (42, "/tmp/s"));
    }

    #[test]
    fn an_exited_pane_takes_nothing_from_a_target_in_another_session() {
        // What tmux 3.3a passes to pane-exited: only hook_pane, and a target
        // pane elsewhere (here in session "dev", which the pane never was).
        let f = fields(&[
            ("hook_pane", "%5"),
            ("session_name", "dev"),
            ("window_id", "@2"),
            ("window_index", "2"),
            ("pane_id", "%3"),
        ]);
        let e = TmuxEvent::from_hook("pane-exited", &f, &recorder()).unwrap();
        assert_eq!(e.pane.as_deref(), Some("%5"));
        assert_eq!(
            (e.session_id, e.session_name, e.window_id, e.window_index),
            (None, None, None, None)
        );
    }

    #[test]
    fn a_detached_client_keeps_only_its_name() {
        let f = fields(&[
            ("hook_client", "/dev/pts/2"),
            ("client_name", "/dev/pts/3"),
            ("client_user", "bob"),
            ("session_id", "$0"),
        ]);
        let e = TmuxEvent::from_hook("client-detached", &f, &recorder()).unwrap();
        let client = e.client.unwrap();
        assert_eq!((client.name.as_str(), client.user), ("/dev/pts/2", None));
        assert_eq!(e.session_id, None);
    }

    #[test]
    fn the_target_fills_in_what_the_hook_does_not_name() {
        let f = fields(&[
            ("hook_client", "/dev/pts/2"),
            ("client_name", "/dev/pts/2"),
            ("client_user", "alice"),
            ("client_uid", "1001"),
            ("session_id", "$4"),
            ("session_name", "shared"),
            ("window_id", "@7"),
            ("window_index", "2"),
            ("window_name", "logs"),
            ("pane_id", "%9"),
        ]);
        let e = TmuxEvent::from_hook("client-active", &f, &recorder()).unwrap();
        let client = e.client.clone().unwrap();
        assert_eq!(
            (client.user.as_deref(), client.uid),
            (Some("alice"), Some(1001))
        );
        assert_eq!(
            (e.session_id, e.window_id, e.window_index, e.pane.as_deref()),
            (Some(4), Some(7), Some(2), Some("%9"))
        );
        assert!(TmuxEvent::from_hook("x", &HashMap::new(), &recorder()).is_none());
    }

    #[test]
    fn only_client_events_name_a_client() {
        // session-renamed with a client attached: tmux's best client for the
        // session is the target, not who renamed it.
        let f = fields(&[
            ("hook_session", "$1"),
            ("session_id", "$1"),
            ("client_name", "/dev/pts/4"),
            ("client_user", "alice"),
        ]);
        let e = TmuxEvent::from_hook("session-renamed", &f, &recorder()).unwrap();
        assert_eq!(e.client, None);
    }
}
