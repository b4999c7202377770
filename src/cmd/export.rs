//! `tmux-audit export`: every command the filters keep, streamed for
//! another program (JSONL, JSON, CSV, TSV; ECS documents with `--ecs`).

use anyhow::Result;

use super::search::Matches;
use super::{Exit, Run};
use crate::cli::{Export, ExportFormat};
use tmux_audit::db::Order;
use tmux_audit::render::stream::{Fields, RecordFormat};

impl Run for Export {
    fn run(&self) -> Result<Exit> {
        self.check().map_err(anyhow::Error::msg)?;
        let kind = self.text.kind();
        let matches = Matches::find(
            self.db.path.as_deref(),
            &self.filters,
            self.text.pattern(),
            kind,
        )?;
        let order = if self.reverse {
            Order::NewestFirst
        } else {
            Order::OldestFirst
        };
        let format = match self.format {
            ExportFormat::Jsonl => RecordFormat::Jsonl,
            ExportFormat::Json => RecordFormat::Json,
            ExportFormat::Csv => RecordFormat::Csv,
            ExportFormat::Tsv => RecordFormat::Tsv,
        };
        let fields = if self.ecs {
            Fields::Ecs
        } else {
            Fields::Native
        };
        matches.write(None, false, order, format, fields)
    }
}
