//! `tmux-audit capture`: run by tmux's `pipe-pane` for one pane, with the
//! pane's output on standard input (see `capture/recorder.rs`). Prints
//! nothing (its output goes nowhere); errors go to the log file. When
//! capture is off in config.toml it ends at once, and tmux stops piping.

use std::io;
use std::sync::mpsc;

use anyhow::{Context as _, Result};

use super::{Exit, Run};
use crate::cli::CaptureCmd;
use tmux_audit::capture::seal::{self, Seal};
use tmux_audit::capture::{self, budget, recorder};
use tmux_audit::config::Config;
use tmux_audit::lifecycle::Recorder;
use tmux_audit::record::Entry;
use tmux_audit::{error_log, paths, store};

impl Run for CaptureCmd {
    fn run(&self) -> Result<Exit> {
        store::log_panics("capture");
        if let Err(err) = self.capture() {
            store::log("capture", &err);
        }
        Ok(Exit::Success)
    }
}

impl CaptureCmd {
    fn capture(&self) -> Result<()> {
        let config = Config::load()?;
        if !config.capture.enabled {
            return Ok(());
        }
        let db = paths::database(self.db.path.as_deref())?;
        let root = capture::root(&db);
        let dir = capture::pane_dir(&root, self.server_pid, &self.pane)
            .with_context(|| format!("{:?} is not a tmux pane id (%N)", self.pane))?;
        // tmux gives its jobs `TMUX=<socket>,<pid>,<session>`.
        let socket = std::env::var("TMUX")
            .ok()
            .and_then(|t| t.split(',').next().map(str::to_string))
            .unwrap_or_default();
        let budget = config.capture.max_total_mib.saturating_mul(1 << 20);
        let sealed = |seal: Seal| {
            // What the last seal's store started in the background (a
            // merge) has ended by now, or ends before the next seal.
            super::reap_children();
            let by = Recorder::now(store::now_us());
            let event = seal.event(seal::SEALED, &socket, &by);
            if let Err(err) = store::save(&db, &[Entry::TmuxEvent(event)]) {
                store::log(
                    "capture",
                    &err.context(format!("cannot seal {}", seal.file)),
                );
            }
            if budget == 0 {
                return;
            }
            let over = match budget::over_budget(&root, budget, &seal::running_dirs(&root)) {
                Ok(over) => over,
                Err(err) => {
                    store::log("capture", &anyhow::Error::new(err).context("cannot prune"));
                    return;
                }
            };
            if over.is_empty() {
                return;
            }
            // Chained first, deleted after: no deletion goes unexplained.
            let events: Vec<Entry> = over
                .iter()
                .map(|(_, s)| Entry::TmuxEvent(s.event(seal::PRUNED, &socket, &by)))
                .collect();
            if let Err(err) = store::save(&db, &events) {
                store::log(
                    "capture",
                    &err.context("cannot record the segments to prune"),
                );
                return;
            }
            for (path, _) in over {
                if let Err(err) = std::fs::remove_file(&path) {
                    let err = anyhow::Error::new(err);
                    store::log(
                        "capture",
                        &err.context(format!("cannot prune {}", path.display())),
                    );
                }
            }
        };
        let pane = &self.pane;
        let failed = |err: &io::Error| {
            error_log::append(
                "capture",
                &format!(
                    "pane {pane}: cannot write its output ({err}): it is counted and dropped \
                     until a write works again, and the gap is recorded"
                ),
                "free space in the database's directory; capture goes on by itself",
            );
        };
        // Sealing waits for the database (locked by a reader, an fsync): on
        // a thread of its own, so that the writer never falls behind the
        // pane for it. It ends with the last seal once the capture ends.
        let (to_seal, seals) = mpsc::channel::<Seal>();
        let summary = std::thread::scope(|scope| {
            scope.spawn(move || seals.into_iter().for_each(sealed));
            let seal = move |seal| to_seal.send(seal).unwrap_or(());
            recorder::run(io::stdin(), &root, dir, &config.redact, seal, failed)
        })
        .with_context(|| format!("cannot capture pane {}", self.pane))?;
        if summary.lost > 0 || summary.error.is_some() {
            let why = summary.error.as_deref().unwrap_or("the disk was too slow");
            error_log::append(
                "capture",
                &format!(
                    "pane {}: {} bytes of output were lost: {why}",
                    self.pane, summary.lost
                ),
                "check the free space and permissions of the database's directory",
            );
        }
        Ok(())
    }
}
