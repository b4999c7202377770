//! `tmux-audit tmux-event`: run by the hooks of `init tmux` for each
//! lifecycle event. Like `record`, it never makes tmux wait and never
//! shows anything there: errors go to the log file, and the exit status
//! is 0 (tmux would show any other).

use anyhow::{Context as _, Result};

use super::record::{log, log_panics, now_us, save};
use super::{Exit, Run};
use crate::cli::TmuxEventCmd;
use crate::lifecycle::hooks::parse_fields;
use crate::lifecycle::{Recorder, TmuxEvent};
use crate::paths;
use crate::record::Entry;

impl Run for TmuxEventCmd {
    fn run(&self) -> Result<Exit> {
        log_panics();
        if let Err(err) = self.record() {
            log(&err);
        }
        Ok(Exit::Success)
    }
}

impl TmuxEventCmd {
    fn record(&self) -> Result<()> {
        let by = Recorder::now(now_us());
        let event = TmuxEvent::from_hook(&self.hook, &parse_fields(&self.fields), &by)
            .with_context(|| {
                format!(
                    "the {} hook gave no tmux server (socket_path and pid)",
                    self.hook
                )
            })?;
        let path = paths::database(self.db.path.as_deref())?;
        save(&path, &[Entry::TmuxEvent(event)])?;
        Ok(())
    }
}
