//! `tmux-audit export`: every command the filters keep, streamed for
//! another program (JSONL, JSON, CSV, TSV; ECS documents with `--ecs`),
//! or what one pane or session printed as an asciicast (`replay`'s file).

use std::io::{self, Write};

use anyhow::{bail, Result};

use super::replay::{captured_stream, Captured};
use super::search::Matches;
use super::{Exit, Run};
use crate::cli::{Export, ExportFormat};
use tmux_audit::capture::replay;
use tmux_audit::context::Tmux;
use tmux_audit::db::Order;
use tmux_audit::paths;
use tmux_audit::render::stream::{Fields, RecordFormat};

impl Run for Export {
    fn run(&self) -> Result<Exit> {
        self.check().map_err(anyhow::Error::msg)?;
        let format = match self.format {
            ExportFormat::Jsonl => RecordFormat::Jsonl,
            ExportFormat::Json => RecordFormat::Json,
            ExportFormat::Csv => RecordFormat::Csv,
            ExportFormat::Tsv => RecordFormat::Tsv,
            ExportFormat::Asciicast => return self.asciicast(),
        };
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
        let fields = if self.ecs {
            Fields::Ecs
        } else {
            Fields::Native
        };
        matches.write(None, false, order, format, fields)
    }
}

impl Export {
    /// What one pane or session printed, as `replay --asciicast` writes
    /// it, to standard output.
    fn asciicast(&self) -> Result<Exit> {
        let f = &self.filters;
        let here;
        let which = if let Some(session) = &f.session {
            Captured::Session(session)
        } else if f.here {
            here = Tmux::from_env().and_then(|t| t.pane.map(|pane| (pane, t.server_pid)));
            let Some((pane, server_pid)) = &here else {
                bail!("--here needs a tmux pane (TMUX_PANE is not set): give --pane %N");
            };
            Captured::Pane {
                pane,
                server_pid: *server_pid,
            }
        } else {
            Captured::Pane {
                pane: f.pane.as_deref().unwrap_or_default(),
                server_pid: None,
            }
        };
        let db = paths::database(self.db.path.as_deref())?;
        let since = f.since.map_or(i64::MIN, |t| t.timestamp_micros());
        let until = f.until.map_or(i64::MAX, |t| t.timestamp_micros());
        let stream = captured_stream(&db, which.clone(), since, until)?;
        if stream.is_empty() {
            return Ok(which.found_nothing());
        }
        let mut out = io::BufWriter::new(io::stdout().lock());
        let written = replay::write_asciicast(&mut out, &stream, self.cols, self.rows)
            .and_then(|()| out.flush());
        match written {
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Success),
            Err(err) => Err(anyhow::Error::new(err).context("cannot write to standard output")),
            Ok(()) => Ok(Exit::Success),
        }
    }
}
