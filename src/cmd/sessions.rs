//! `tmux-audit sessions`: every tmux session the hooks saw.

use std::io::{self, Write};

use anyhow::Result;

use super::{Exit, Run};
use crate::cli::Sessions;
use tmux_audit::central;
use tmux_audit::lifecycle::sessions::{sessions, SessionHistory};
use tmux_audit::lifecycle::TmuxEvent;
use tmux_audit::paths;
use tmux_audit::render;

impl Run for Sessions {
    fn run(&self) -> Result<Exit> {
        // Each host's events on their own: a tmux server is only one
        // server within its host.
        let by_host: Vec<Vec<TmuxEvent>> = if self.central {
            let config = tmux_audit::config::Config::load()?;
            let target = central::target(config.central.reading_url())?;
            let mut client = target.connect()?;
            central::schema::check(&mut client)?;
            central::query::tmux_events_by_host(&mut client)?
                .into_values()
                .collect()
        } else {
            let db = super::open_for_reading(&paths::database(self.db.path.as_deref())?)?;
            vec![db.tmux_events(None)?.into_iter().map(|e| e.event).collect()]
        };
        let since_us = self.since.map(|t| t.timestamp_micros());
        let found: Vec<SessionHistory> = by_host
            .iter()
            .flat_map(|events| sessions(events))
            .filter(|s| since_us.is_none_or(|since| s.closed_at_us.is_none_or(|c| c >= since)))
            .collect();
        if found.is_empty() {
            if by_host.iter().all(Vec::is_empty) && !self.central {
                eprintln!(
                    "tmux-audit: no tmux events recorded: add `run-shell 'tmux-audit init tmux'` to ~/.tmux.conf"
                );
            }
            return Ok(Exit::NoMatch);
        }
        let out = match self.format.data(self.json) {
            Some(format) => render::sessions::data(&found, format)?,
            None => render::sessions::table(&found),
        };
        io::stdout().lock().write_all(out.as_bytes())?;
        Ok(Exit::Success)
    }
}
