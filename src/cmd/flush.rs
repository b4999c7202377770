//! `tmux-audit flush`: the spool moved into the database now.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{Exit, Run};
use crate::cli::{Flush, MergeLater};
use tmux_audit::db::{self, Database};
use tmux_audit::paths;
use tmux_audit::spool;
use tmux_audit::store;

impl Run for MergeLater {
    fn run(&self) -> Result<Exit> {
        store::log_panics("merge-later");
        let path = paths::database(self.db.path.as_deref())?;
        let needed = wait_for_the_merge(&path, Duration::from_secs(self.after));
        // Gone in the meantime (moved away): nothing to merge into, and
        // nothing to make anew.
        if !path.exists() {
            return Ok(Exit::Success);
        }
        if needed {
            spool::merge_later_done(&path);
            db::remove_stale_new_files(&path);
            // In the background: a busy database is worth waiting for.
            store::merge_due(&path, Duration::from_secs(10));
        }
        // Off the prompt's path, at most once a day (one of these starts
        // with every batch of records).
        super::prune::daily(&path);
        super::forward::background(&path);
        Ok(Exit::Success)
    }
}

/// How often a waiting `merge-later` looks whether it is still needed.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Waits `after`, looking every [`LOOK_EVERY`] whether the merge is still
/// needed; false when it is not: the database's directory is gone (a
/// database moved or deleted, a test's directory removed; nothing is made
/// anew), or the spool was emptied by another process (a reader, the
/// fortieth record). A `stat` or two a second, and no process left waiting
/// minutes for nothing.
fn wait_for_the_merge(path: &Path, after: Duration) -> bool {
    let dir = db::directory(path);
    let deadline = Instant::now() + after;
    loop {
        if !dir.is_dir() {
            spool::merge_later_done(path);
            return false;
        }
        if !spool::holds_records(path) {
            // Another process merged it. The note that a merge is pending
            // goes first, then a last look: a record appended since either
            // is seen here, or, finding no note, starts a merge of its own.
            spool::merge_later_done(path);
            if !spool::holds_records(path) {
                return false;
            }
            spool::merge_later_noted(path);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(LOOK_EVERY));
    }
}

impl Run for Flush {
    fn run(&self) -> Result<Exit> {
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = Database::open(&path)?;
        let moved = spool::merge(&mut db, &path)
            .with_context(|| format!("cannot move the spool into {}", path.display()))?;
        db.fold_wal();
        spool::clear_failure(&path);
        writeln!(
            io::stdout().lock(),
            "{moved} record{} moved into {}",
            if moved == 1 { "" } else { "s" },
            path.display()
        )?;
        Ok(Exit::Success)
    }
}
