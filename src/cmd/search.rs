//! `tmux-audit search`: finds commands by text and by any recorded field.

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{Exit, Run};
use crate::cli::{Format, Search};
use tmux_audit::central::{self, query::CentralSearch};
use tmux_audit::db::SearchQuery;
use tmux_audit::filter::{pattern_plan, MatchKind};
use tmux_audit::paths;
use tmux_audit::render;

impl Run for Search {
    fn run(&self) -> Result<Exit> {
        self.check().map_err(anyhow::Error::msg)?;
        let mut conditions = tmux_audit::filter::Filters::from(&self.filters).conditions()?;
        let mut plan = None;
        if let Some(pattern) = self.pattern.as_deref().filter(|p| !p.is_empty()) {
            let kind = match (self.exact, self.prefix, self.regex) {
                (true, _, _) => MatchKind::Exact,
                (_, true, _) => MatchKind::Prefix,
                (_, _, true) => MatchKind::Regex,
                _ => MatchKind::Substring,
            };
            plan = Some(pattern_plan(conditions.clone(), pattern, kind)?);
        }
        if self.central {
            return self.run_central(conditions);
        }
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = super::open_for_reading(&path)?;
        db.enable_regexp()?;
        let mut scan_first = None;
        if let Some(plan) = plan {
            conditions = match plan.indexed {
                Some(indexed) if db.update_search_index() => {
                    // Indexing many new rows can leave a large WAL for every
                    // later process to re-read.
                    db.fold_wal();
                    scan_first = plan.scan_is_exact.then_some(plan.scan);
                    indexed
                }
                // No index plan, or the index could not be brought up to
                // date (a read-only database): read the text itself.
                _ => plan.scan,
            };
        }
        let query = SearchQuery {
            conditions,
            scan_first,
            limit: (!self.all).then_some(self.limit),
            unique: self.unique,
        };
        let mut rows = db
            .search(&query)
            .with_context(|| format!("cannot search {}", path.display()))?;
        if rows.is_empty() {
            return Ok(Exit::NoMatch);
        }
        // Session and window names, and who typed each, from the tmux events.
        db.place(&mut rows)?;
        self.print(rows)
    }
}

impl Search {
    /// The same search on the central store: only the source differs.
    fn run_central(&self, conditions: tmux_audit::filter::Conditions) -> Result<Exit> {
        let kind = match (self.exact, self.prefix, self.regex) {
            (true, _, _) => MatchKind::Exact,
            (_, true, _) => MatchKind::Prefix,
            (_, _, true) => MatchKind::Regex,
            _ => MatchKind::Substring,
        };
        let query = CentralSearch {
            conditions,
            pattern: self
                .pattern
                .clone()
                .filter(|p| !p.is_empty())
                .map(|p| (p, kind)),
            limit: (!self.all).then_some(self.limit),
            unique: self.unique,
        };
        let config = tmux_audit::config::Config::load()?;
        let target = central::target(config.central.reading_url())?;
        let mut client = target.connect()?;
        central::schema::check(&mut client)?;
        let rows = central::query::search(&mut client, &query)?;
        if rows.is_empty() {
            return Ok(Exit::NoMatch);
        }
        self.print(rows)
    }

    /// Prints what was found, the same way whatever the source.
    fn print(&self, mut rows: Vec<tmux_audit::db::StoredCommand>) -> Result<Exit> {
        if !self.reverse {
            rows.reverse(); // oldest first, the newest next to the prompt
        }
        let format = if self.json { Format::Json } else { self.format };
        let out = match format {
            Format::Table => render::table(&rows, render::use_colour()).into_bytes(),
            Format::Json => render::json(&rows)?.into_bytes(),
            Format::Jsonl => render::jsonl(&rows)?.into_bytes(),
            Format::Csv => render::records_csv(&rows)?.into_bytes(),
            Format::Tsv => render::records_tsv(&rows)?.into_bytes(),
            Format::Cmd => render::commands(&rows, self.null),
        };
        io::stdout().lock().write_all(&out)?;
        Ok(Exit::Success)
    }
}
