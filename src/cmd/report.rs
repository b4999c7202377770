//! `tmux-audit report`: commands counted and timed per pane, session, user,
//! host, directory, day or command.

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{Exit, Run};
use crate::cli::Report;
use tmux_audit::central;
use tmux_audit::db::{Ranked, RowTexts};
use tmux_audit::paths;
use tmux_audit::render;
use tmux_audit::render::stream::{Fields, RecordFormat, RecordWriter};

impl Run for Report {
    fn run(&self) -> Result<Exit> {
        let filters = tmux_audit::filter::Filters::from(&self.filters);
        if self.central {
            super::search::central_filters_only(&filters)?;
            return self.run_central(&filters.conditions()?);
        }
        let filters = super::with_live_session(filters)?;
        let by = self.by.unwrap_or(crate::cli::GroupBy::Pane).into();
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = super::open_for_reading(&path)?;
        let conditions = db.conditions(&filters)?;
        let plan = db
            .report_plan(by, &conditions, self.sort.into(), self.top)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Bringing the running totals up to date (all of them, the first
        // time) can leave a large WAL for every later process to re-read.
        db.fold_wal();
        if plan.totals.groups == 0 {
            return Ok(Exit::NoMatch);
        }
        let period = (
            self.filters.since.map(|t| t.timestamp_micros()),
            self.filters.until.map(|t| t.timestamp_micros()),
        );
        let reading = || format!("cannot read {}", path.display());
        // Rows go out as they are read: a report of every command (141,020
        // groups at a million rows) never holds them all.
        let mut stdout = io::stdout().lock();
        if let Some(format) = self.format.data(self.json) {
            let mut out = RecordWriter::new(&mut stdout, record_format(format), Fields::Native);
            db.report_rows(&plan, RowTexts::ALL, &mut |row| -> Result<()> {
                Ok(out.write_other(&render::report::json_row(&row, by))?)
            })
            .with_context(reading)?;
            out.finish()?;
            return Ok(Exit::Success);
        }
        render::report::write_table(
            &mut stdout,
            &mut |each| {
                db.report_rows(&plan, render::report::texts_shown(by), each)
                    .with_context(reading)
            },
            plan.shown,
            &plan.totals,
            by,
            period,
            render::use_colour(),
        )?;
        // Records that never arrived, named (the first few; verify lists all).
        let gaps = db.sequence_gaps()?;
        // Their totals too, counted the first time.
        db.fold_wal();
        let mut notes = String::new();
        for gap in gaps.iter().take(5) {
            notes.push_str(&format!(
                "note: {} of {} commands of shell session {} ({}@{}) never arrived\n",
                gap.highest_seq - gap.recorded,
                gap.highest_seq,
                gap.shell_session,
                gap.user,
                gap.host
            ));
        }
        if gaps.len() > 5 {
            notes.push_str(&format!(
                "note: {} more shell sessions have holes; `tmux-audit verify` lists them all\n",
                gaps.len() - 5
            ));
        }
        stdout.write_all(notes.as_bytes())?;
        Ok(Exit::Success)
    }
}

/// The streamed writer's name for a format for programs.
fn record_format(format: render::DataFormat) -> RecordFormat {
    match format {
        render::DataFormat::Json => RecordFormat::Json,
        render::DataFormat::Jsonl => RecordFormat::Jsonl,
        render::DataFormat::Csv => RecordFormat::Csv,
        render::DataFormat::Tsv => RecordFormat::Tsv,
    }
}

impl Report {
    /// The same report, counted by the central store; the same output.
    fn run_central(&self, conditions: &tmux_audit::filter::Conditions) -> Result<Exit> {
        let config = tmux_audit::config::Config::load()?;
        let target = central::target(config.central.reading_url())?;
        let mut client = target.connect()?;
        central::schema::check(&mut client)?;
        // The team view: per host, unless another grouping is asked for.
        let by = self.by.unwrap_or(crate::cli::GroupBy::Host).into();
        let Ranked { rows, totals } =
            central::query::report(&mut client, by, conditions, self.sort.into(), self.top)?;
        if totals.groups == 0 {
            return Ok(Exit::NoMatch);
        }
        let period = (
            self.filters.since.map(|t| t.timestamp_micros()),
            self.filters.until.map(|t| t.timestamp_micros()),
        );
        let out = match self.format.data(self.json) {
            Some(format) => render::data(&render::report::json_rows(&rows, by), format)?,
            None => render::report::table(&rows, &totals, by, period, render::use_colour()),
        };
        io::stdout().lock().write_all(out.as_bytes())?;
        Ok(Exit::Success)
    }
}
