//! `tmux-audit tmux-event`: run by the hooks of `init tmux` for each
//! lifecycle event. Like `record`, it never makes tmux wait and never
//! shows anything there: errors go to the log file, and the exit status
//! is 0 (tmux would show any other).

use anyhow::{Context as _, Result};

use super::{Exit, Run};
use crate::cli::TmuxEventCmd;
use tmux_audit::lifecycle::{hooks, parse_fields, Recorder, TmuxEvent};
use tmux_audit::paths;
use tmux_audit::record::Entry;
use tmux_audit::store;

impl Run for TmuxEventCmd {
    fn run(&self) -> Result<Exit> {
        store::log_panics("tmux-event");
        if let Err(err) = self.record() {
            store::log("tmux-event", &err);
        }
        Ok(Exit::Success)
    }
}

impl TmuxEventCmd {
    fn record(&self) -> Result<()> {
        let by = Recorder::now(store::now_us());
        let event = TmuxEvent::from_hook(&self.hook, &parse_fields(&self.fields), &by)
            .with_context(|| {
                format!(
                    "the {} hook gave no tmux server (socket_path and pid)",
                    self.hook
                )
            })?;
        let path = paths::database(self.db.path.as_deref())?;
        let hook = self.hook.as_str();
        let mut events = Vec::new();
        if hooks::PANE_REFRESH_HOOKS.contains(&hook) {
            // A failure here costs the moves, never the hook's own event.
            match hooks::pane_changes(&event.tmux_socket, event.tmux_server_pid, &by) {
                Ok(changes) => events = changes,
                Err(err) => store::log("tmux-event", &err),
            }
        }
        if !hooks::PANE_PLACE_HOOKS.contains(&hook) {
            events.insert(0, event);
        }
        if events.is_empty() {
            return Ok(()); // a resize: nothing moved
        }
        store::save(
            &path,
            &events.into_iter().map(Entry::TmuxEvent).collect::<Vec<_>>(),
        )?;
        Ok(())
    }
}
