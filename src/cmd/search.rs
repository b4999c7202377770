//! `tmux-audit search`: shows the newest recorded commands.

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{Exit, Run};
use crate::cli::Search;
use crate::db::Database;
use crate::paths;
use crate::render;

impl Run for Search {
    fn run(&self) -> Result<Exit> {
        let path = paths::database(self.db.path.as_deref())?;
        let db = Database::open_existing(&path)?;
        let rows = db
            .newest(self.limit)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let out = if self.json {
            render::json(&rows)?
        } else if rows.is_empty() {
            String::new()
        } else {
            render::table(&rows, render::use_colour())
        };
        io::stdout().lock().write_all(out.as_bytes())?;
        Ok(if rows.is_empty() {
            Exit::NoMatch
        } else {
            Exit::Success
        })
    }
}
