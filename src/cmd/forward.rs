//! `tmux-audit forward`: send the records and tmux events that
//! `[forward]` targets have not taken yet (see `forward.rs`); also run by
//! the background merge ([`background`]).

use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use super::{Exit, Run};
use crate::cli::ForwardCmd;
use tmux_audit::config::Config;
use tmux_audit::db::Database;
use tmux_audit::forward::{self, ForwardError};
use tmux_audit::{error_log, paths};

impl Run for ForwardCmd {
    fn run(&self) -> Result<Exit> {
        let config = Config::load()?;
        let targets = forward::targets(&config.forward).map_err(anyhow::Error::msg)?;
        if targets.is_empty() {
            bail!(
                "nothing to forward to: set `syslog = \"tcp://HOST:PORT\"` (or tls://, udp://, unix:/dev/log) or `journald = \"/run/systemd/journal/socket\"` under [forward] in config.toml"
            );
        }
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = super::open_for_reading(&path)?;
        let _one_at_a_time = forward::lock(&path)
            .with_context(|| format!("cannot lock forwarding from {}", path.display()))?;
        let mut out = io::stdout().lock();
        let mut failed = None;
        for target in &targets {
            match forward::forward(&mut db, target, config.forward.max_message_bytes) {
                Ok(sent) => writeln!(
                    out,
                    "{}: {} records and {} tmux events sent",
                    sent.target, sent.commands, sent.tmux_events
                )?,
                Err(err) => {
                    // Each failing target says so; the last is the error.
                    if let Some(earlier) = failed.replace(err) {
                        eprintln!("tmux-audit: error: {earlier}");
                    }
                }
            }
        }
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(Exit::Success),
        }
    }
}

/// After a background merge: forward what waits, when `[forward]` names a
/// target. A collector that is down is logged (once per run) and tried
/// again by the next merge.
pub fn background(path: &Path) {
    let Ok(config) = Config::load() else { return };
    let Ok(targets) = forward::targets(&config.forward) else {
        return;
    };
    if targets.is_empty() {
        return;
    }
    let Ok(mut db) = Database::open_existing(path) else {
        return;
    };
    let _one_at_a_time = match forward::lock(path) {
        Ok(lock) => lock,
        Err(err) => {
            let what = format!("cannot lock forwarding from {}: {err}", path.display());
            error_log::append(
                "merge-later",
                &what,
                "nothing is lost: the next merge tries again",
            );
            return;
        }
    };
    for target in &targets {
        if let Err(err) = forward::forward(&mut db, target, config.forward.max_message_bytes) {
            let hint = match err {
                ForwardError::Unreachable { .. } => "start the collector; nothing is lost",
                ForwardError::Settings { .. } => "fix [forward] in config.toml; nothing is lost",
                ForwardError::Db(_) => "see `tmux-audit doctor`",
            };
            error_log::append("merge-later", &err.to_string(), hint);
        }
    }
}
