//! `tmux-audit flush`: the spool moved into the database now.

use std::io::{self, Write};

use anyhow::{Context as _, Result};

use super::{Exit, Run};
use crate::cli::{Flush, MergeLater};
use crate::db::{self, Database};
use crate::paths;
use crate::spool;
use crate::store;

impl Run for MergeLater {
    fn run(&self) -> Result<Exit> {
        store::log_panics("merge-later");
        std::thread::sleep(std::time::Duration::from_secs(self.after));
        let path = paths::database(self.db.path.as_deref())?;
        // Gone in the meantime (moved away, a test's directory removed):
        // nothing to merge into, and nothing to make anew.
        if !path.exists() {
            return Ok(Exit::Success);
        }
        spool::merge_later_done(&path);
        db::remove_stale_new_files(&path);
        // In the background: a busy database is worth waiting for.
        store::merge_due(&path, std::time::Duration::from_secs(10));
        Ok(Exit::Success)
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
