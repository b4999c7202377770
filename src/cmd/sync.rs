//! `tmux-audit sync`: ships the records not yet on the central store;
//! `--watch` keeps doing it; `--detached` is how `record` starts it
//! after a command (errors to the log file, an outage logged once).

use std::time::Duration;

use anyhow::Result;

use super::{Exit, Run};
use crate::cli::SyncCmd;
use tmux_audit::central::{self, identity::HostIdentity, ship};
use tmux_audit::config::Config;
use tmux_audit::{error_log, paths, spool, store};

impl Run for SyncCmd {
    fn run(&self) -> Result<Exit> {
        if self.detached {
            store::log_panics("sync");
            let state_dir = paths::state_dir()?;
            let result = self.once();
            if let Err(err) = &result {
                if central::note_outage(&state_dir, true) {
                    error_log::append(
                        "sync",
                        &format!("{err:#}"),
                        "records wait locally; logged once until a sync succeeds",
                    );
                }
            } else {
                central::note_outage(&state_dir, false);
            }
            return Ok(Exit::Success);
        }
        if !self.watch {
            let shipped = self.once()?;
            println!(
                "shipped {} commands and {} tmux events{}",
                shipped.commands,
                shipped.tmux_events,
                match shipped.redactions {
                    0 => String::new(),
                    n => format!(
                        ", and {n} redaction{} of commands shipped before",
                        if n == 1 { "" } else { "s" }
                    ),
                }
            );
            return Ok(Exit::Success);
        }
        let mut failing = false;
        loop {
            match self.once() {
                Ok(shipped) => {
                    if failing || shipped.commands + shipped.tmux_events > 0 {
                        eprintln!(
                            "tmux-audit: shipped {} commands and {} tmux events",
                            shipped.commands, shipped.tmux_events
                        );
                    }
                    failing = false;
                }
                Err(err) => {
                    if !failing {
                        eprintln!("tmux-audit: error: {err:#}");
                    }
                    failing = true;
                }
            }
            std::thread::sleep(Duration::from_secs(self.every.max(1)));
        }
    }
}

impl SyncCmd {
    fn once(&self) -> Result<ship::Shipped> {
        let config = Config::load()?;
        let target = central::target(config.central.url())?;
        let path = paths::database(self.db.path.as_deref())?;
        let (mut db, _waiting) = spool::open_merged(&path)?;
        let host = HostIdentity::of_this_host(&paths::state_dir()?)?;
        Ok(ship::ship(&mut db, &target, &host)?)
    }
}
