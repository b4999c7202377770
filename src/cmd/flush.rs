//! `tmux-audit flush`: the spool moved into the database now.

use std::io::{self, Write};

use anyhow::{Context as _, Result};

use super::{Exit, Run};
use crate::cli::Flush;
use crate::db::Database;
use crate::paths;
use crate::spool;

impl Run for Flush {
    fn run(&self) -> Result<Exit> {
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = Database::open(&path)?;
        let moved = spool::merge(&mut db, &path)
            .with_context(|| format!("cannot move the spool into {}", path.display()))?;
        db.fold_wal();
        writeln!(
            io::stdout().lock(),
            "{moved} record{} moved into {}",
            if moved == 1 { "" } else { "s" },
            path.display()
        )?;
        Ok(Exit::Success)
    }
}
