//! Panes that move or close without a hook of their own. tmux 3.3 has no
//! hook for `join-pane`, `move-pane`, `swap-pane` or `break-pane`, and
//! `after-kill-pane` names some other pane than the one killed; but each
//! of them changes a window's layout. So on `window-layout-changed` and
//! `after-kill-pane`, `tmux-event` lists where every pane of the server is
//! and compares it with the list it kept the time before (a small file per
//! server in the state directory): a pane in another window than before
//! is a `pane-moved` event, a pane no longer there a `pane-closed` one.
//! (A resize changes the layout too, and then nothing is recorded.)

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use super::{event_key, Recorder, TmuxEvent};
use crate::private_files;

/// Where a pane is: its window and session, with their names then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanePlace {
    pub pane: String,
    pub session_id: Option<i64>,
    pub session_name: String,
    pub window_id: Option<i64>,
    pub window_index: Option<i64>,
    pub window_name: String,
}

/// The events that take the server from `before` to `now` (both pane →
/// window id): moves first, then closes, each in pane order.
pub fn changes(
    before: &BTreeMap<String, i64>,
    now: &[PanePlace],
    server: (&str, i64),
    by: &Recorder,
) -> Vec<TmuxEvent> {
    // Key 0 is the hook's own event, stored beside these.
    let event = |name: &str, n: usize| TmuxEvent {
        event: name.to_string(),
        at_us: by.at_us,
        event_key: event_key(by, n + 1),
        host: by.host.clone(),
        user: by.user.clone(),
        uid: by.uid,
        tmux_socket: server.0.to_string(),
        tmux_server_pid: server.1,
        ..TmuxEvent::default()
    };
    let mut events = Vec::new();
    for place in now {
        if let (Some(was), Some(is)) = (before.get(&place.pane), place.window_id)
            && *was != is
        {
            events.push(TmuxEvent {
                pane: Some(place.pane.clone()),
                window_id: Some(is),
                window_index: place.window_index,
                window_name: Some(place.window_name.clone()),
                session_id: place.session_id,
                session_name: Some(place.session_name.clone()),
                ..event("pane-moved", events.len())
            });
        }
    }
    for (pane, window) in before {
        if !now.iter().any(|p| &p.pane == pane) {
            events.push(TmuxEvent {
                pane: Some(pane.clone()),
                window_id: Some(*window),
                ..event("pane-closed", events.len())
            });
        }
    }
    events
}

/// The file that keeps where the panes of a server were, in `state_dir`.
pub fn state_file(state_dir: &Path, server: (&str, i64)) -> PathBuf {
    let digest = Sha256::digest(server.0.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    state_dir.join(format!("panes-{hash}-{}", server.1))
}

/// Compares `now` with what `file` kept, under the file's lock (hooks run
/// at once), keeps `now` there, and returns the events between. The first
/// time (no file yet) there is nothing to compare: no events.
pub fn update(
    file: &Path,
    now: &[PanePlace],
    server: (&str, i64),
    by: &Recorder,
) -> Result<Vec<TmuxEvent>> {
    if let Some(dir) = file.parent() {
        private_files::dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let existed = file.exists();
    let mut f = private_files::read_write(file, true)
        .with_context(|| format!("cannot open {}", file.display()))?;
    f.lock()
        .with_context(|| format!("cannot lock {}", file.display()))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let before: BTreeMap<String, i64> = text
        .lines()
        .filter_map(|line| {
            let (pane, window) = line.split_once(' ')?;
            Some((pane.to_string(), window.parse().ok()?))
        })
        .collect();
    let events = if existed {
        changes(&before, now, server, by)
    } else {
        Vec::new()
    };
    let kept: String = now
        .iter()
        .filter_map(|p| Some(format!("{} {}\n", p.pane, p.window_id?)))
        .collect();
    f.set_len(0)?;
    f.rewind()?;
    f.write_all(kept.as_bytes())?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(pane: &str, window: i64) -> PanePlace {
        PanePlace {
            pane: pane.into(),
            session_id: Some(1),
            session_name: "work".into(),
            window_id: Some(window),
            window_index: Some(window),
            window_name: format!("w{window}"),
        }
    }

    fn by() -> Recorder {
        Recorder {
            at_us: 7,
            host: "h".into(),
            user: "u".into(),
            uid: 1,
        }
    }

    #[test]
    fn moves_and_closes_are_told_and_nothing_else() {
        let before: BTreeMap<String, i64> = [
            ("%0".to_string(), 0),
            ("%1".to_string(), 1),
            ("%2".to_string(), 0),
        ]
        .into();
        // %1 joined window 0, %2 was killed, %3 is new (a split: its own hook).
        let now = [place("%0", 0), place("%1", 0), place("%3", 0)];
        let events = changes(&before, &now, ("/s", 9), &by());
        let told: Vec<(&str, Option<&str>, Option<i64>)> = events
            .iter()
            .map(|e| (e.event.as_str(), e.pane.as_deref(), e.window_id))
            .collect();
        assert_eq!(
            told,
            [
                ("pane-moved", Some("%1"), Some(0)),
                ("pane-closed", Some("%2"), Some(0))
            ]
        );
        let keys: std::collections::HashSet<&str> =
            events.iter().map(|e| e.event_key.as_str()).collect();
        assert_eq!(keys.len(), 2, "each event its own key");
        assert!(
            !keys.contains(event_key(&by(), 0).as_str()),
            "not the key of the hook's own event"
        );
        // A resize: the same panes where they were.
        let same: BTreeMap<String, i64> = [("%0".to_string(), 0)].into();
        assert!(changes(&same, &[place("%0", 0)], ("/s", 9), &by()).is_empty());
    }

    #[test]
    fn the_file_keeps_the_places_between_hooks() {
        let dir = tempfile::tempdir().unwrap();
        let file = state_file(dir.path(), ("/tmp/tmux-0/default", 42));
        let server = ("/tmp/tmux-0/default", 42);
        assert!(
            update(&file, &[place("%0", 0), place("%1", 1)], server, &by())
                .unwrap()
                .is_empty()
        );
        let events = update(&file, &[place("%0", 0), place("%1", 0)], server, &by()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "pane-moved");
        assert!(
            update(&file, &[place("%0", 0), place("%1", 0)], server, &by())
                .unwrap()
                .is_empty()
        );
    }
}
