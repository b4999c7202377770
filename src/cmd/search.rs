//! `tmux-audit search`: finds commands by text and by any recorded field.
//! The path from flags to rows is shared with `export` ([`Matches`]).

use std::io;
use std::ops::ControlFlow;

use anyhow::{Context, Result};

use super::{Exit, Run};
use crate::cli::{FilterArgs, Format, Search};
use tmux_audit::capture;
use tmux_audit::central::{self, query::CentralSearch};
use tmux_audit::db::{Database, Order, Placed, SearchQuery, SCAN_WINDOW};
use tmux_audit::filter::{pattern_plan, Conditions, MatchKind};
use tmux_audit::paths;
use tmux_audit::render;
use tmux_audit::render::stream::{Fields, RecordFormat, RecordWriter};

/// What a failed write of the results says.
const STDOUT: &str = "cannot write to standard output";

impl Run for Search {
    fn run(&self) -> Result<Exit> {
        self.check().map_err(anyhow::Error::msg)?;
        let kind = self.text.kind();
        if self.central {
            return self.run_central(kind);
        }
        let mut matches = Matches::find(
            self.db.path.as_deref(),
            &self.filters,
            self.text.pattern(),
            kind,
        )?;
        if let Some(text) = &self.output {
            matches.only_printed(text.as_bytes())?;
        }
        let order = if self.reverse {
            Order::NewestFirst
        } else {
            Order::OldestFirst // the newest next to the prompt
        };
        let limit = (!self.all).then_some(self.limit);
        let format = if self.json { Format::Json } else { self.format };
        let format = match format {
            Format::Table => {
                let Some(rows) = matches.newest(limit, self.unique, order)? else {
                    return Ok(Exit::NoMatch);
                };
                let table = render::table(&rows, render::use_colour());
                io::Write::write_all(&mut io::stdout().lock(), table.as_bytes())?;
                return Ok(Exit::Success);
            }
            Format::Json => RecordFormat::Json,
            Format::Jsonl => RecordFormat::Jsonl,
            Format::Csv => RecordFormat::Csv,
            Format::Tsv => RecordFormat::Tsv,
            Format::Cmd => RecordFormat::Cmd { nul: self.null },
        };
        matches.write(limit, self.unique, order, format, Fields::Native)
    }
}

impl Search {
    /// The same search on the central store: only the source differs.
    fn run_central(&self, kind: MatchKind) -> Result<Exit> {
        if self.output.is_some() {
            anyhow::bail!(
                "--output reads this host's captured output: it does not go with --central"
            );
        }
        let filters = tmux_audit::filter::Filters::from(&self.filters);
        central_filters_only(&filters)?;
        let conditions = filters.conditions()?;
        let pattern = self.text.pattern().map(str::to_string);
        if let Some(pattern) = &pattern {
            pattern_plan(conditions.clone(), pattern, kind)?;
        }
        let query = CentralSearch {
            conditions,
            pattern: pattern.map(|p| (p, kind)),
            limit: (!self.all).then_some(self.limit),
            unique: self.unique,
        };
        let config = tmux_audit::config::Config::load()?;
        let target = central::target(config.central.reading_url())?;
        let mut client = target.connect()?;
        central::schema::check(&mut client)?;
        let mut rows = central::query::search(&mut client, &query)?;
        if rows.is_empty() {
            return Ok(Exit::NoMatch);
        }
        if !self.reverse {
            rows.reverse(); // oldest first, the newest next to the prompt
        }
        let format = if self.json { Format::Json } else { self.format };
        let format = match format {
            Format::Table => {
                let table = render::table(&rows, render::use_colour());
                io::Write::write_all(&mut io::stdout().lock(), table.as_bytes())?;
                return Ok(Exit::Success);
            }
            Format::Json => RecordFormat::Json,
            Format::Jsonl => RecordFormat::Jsonl,
            Format::Csv => RecordFormat::Csv,
            Format::Tsv => RecordFormat::Tsv,
            Format::Cmd => RecordFormat::Cmd { nul: self.null },
        };
        let mut out = RecordWriter::new(io::stdout().lock(), format, Fields::Native);
        for row in &rows {
            out.write(row)?;
        }
        out.finish()?;
        Ok(Exit::Success)
    }
}

/// The filters that need this host's tmux events (a session by name, a
/// window, who typed a command) cannot be asked of the central store.
pub(super) fn central_filters_only(filters: &tmux_audit::filter::Filters) -> Result<()> {
    let local_only = [
        (
            "--session NAME",
            filters
                .session
                .as_ref()
                .filter(|_| filters.session_id().is_none()),
        ),
        ("--window", filters.window.as_ref()),
        ("--typed-by", filters.typed_by.as_ref()),
    ];
    if let Some((flag, _)) = local_only.iter().find(|(_, set)| set.is_some()) {
        anyhow::bail!(
            "{flag} needs this host's tmux events: it does not go with --central (a session by its id, `$N`, does)"
        );
    }
    Ok(())
}

/// The commands a search or an export asks for: the database, opened and
/// merged, and the conditions of the filters and the pattern.
pub(super) struct Matches {
    db: Database,
    path: std::path::PathBuf,
    conditions: Conditions,
    /// The same search without the text index, tried first on the newest
    /// rows (see [`SearchQuery`]).
    scan_first: Option<Conditions>,
    /// `search --output TEXT`: only the commands whose captured output
    /// holds TEXT.
    output: Option<Vec<u8>>,
    /// `--window`, `--typed-by`: what each command must pass once placed
    /// (the conditions keep only those that can).
    placed: Option<Placed>,
}

/// `search --output`: beyond this many captured panes, every match is read
/// (and its output looked for) rather than naming the panes in the query.
const NAMED_PANES: usize = 5_000;

impl Matches {
    /// Only the commands whose captured output holds `text`. Only commands
    /// of a pane with captured output can have printed it: the others are
    /// not read at all (no capture: no match, at once).
    pub(super) fn only_printed(&mut self, text: &[u8]) -> Result<()> {
        let root = capture::root(&self.path);
        let panes = capture::captured_panes(&root)
            .with_context(|| format!("cannot read the captured output in {}", root.display()))?;
        if panes.len() <= NAMED_PANES {
            self.conditions.only_panes(&panes);
            if let Some(scan) = &mut self.scan_first {
                scan.only_panes(&panes);
            }
        }
        self.output = Some(text.to_vec());
        Ok(())
    }

    pub(super) fn find(
        db: Option<&std::path::Path>,
        filters: &FilterArgs,
        pattern: Option<&str>,
        kind: MatchKind,
    ) -> Result<Matches> {
        let filters = super::with_live_session(tmux_audit::filter::Filters::from(filters))?;
        let pattern = pattern.filter(|p| !p.is_empty());
        // A mistake in the pattern or a filter is told before the database
        // is opened (and whether or not there is one).
        if let Some(pattern) = pattern {
            pattern_plan(filters.conditions()?, pattern, kind)?;
        }
        let path = paths::database(db)?;
        let mut db = super::open_for_reading(&path)?;
        db.enable_regexp()?;
        let (mut conditions, placed) = db.conditions_placed_later(&filters)?;
        let plan = pattern
            .map(|pattern| pattern_plan(conditions.clone(), pattern, kind))
            .transpose()?;
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
        Ok(Matches {
            db,
            path,
            conditions,
            scan_first,
            output: None,
            placed,
        })
    }

    /// The newest `limit` matches (all without one) in `order`, placed in
    /// tmux; None when nothing matches. For tables and limited searches:
    /// every row is held at once.
    fn newest(
        self,
        limit: Option<usize>,
        unique: bool,
        order: Order,
    ) -> Result<Option<Vec<tmux_audit::db::StoredCommand>>> {
        if self.output.is_some() || self.placed.is_some() {
            return self.newest_walked(limit, unique, order);
        }
        let query = SearchQuery {
            conditions: self.conditions,
            scan_first: self.scan_first,
            limit,
            unique,
        };
        let mut rows = self
            .db
            .search(&query)
            .with_context(|| format!("cannot search {}", self.path.display()))?;
        if rows.is_empty() {
            return Ok(None);
        }
        // Session and window names, and who typed each, from the tmux events.
        self.db.place(&mut rows)?;
        if order == Order::OldestFirst {
            rows.reverse();
        }
        Ok(Some(rows))
    }

    /// [`Matches::newest`] when only reading a command tells whether it
    /// matches: which commands printed TEXT (`--output`) is known after
    /// reading their output, where one ran and who typed it (`--window`,
    /// `--typed-by`) after placing it. The candidates are read newest
    /// first, one at a time, until `limit` of them match (with `unique`,
    /// the newest run of each text that does).
    fn newest_walked(
        self,
        limit: Option<usize>,
        unique: bool,
        order: Order,
    ) -> Result<Option<Vec<tmux_audit::db::StoredCommand>>> {
        // With only a placement to check, the newest SCAN_WINDOW candidates
        // are walked (placing commands newest first costs more per command
        // than in time order); should fewer than `limit` of them pass (or
        // all are asked for), every candidate is placed at once, in one pass
        // forward, as `--all` does.
        let window = self.output.is_none().then_some(SCAN_WINDOW);
        if window.is_some() && limit.is_none() {
            return self.placed_at_once(limit, unique, order);
        }
        let text = self.output.as_deref();
        let placed = self.placed.as_ref();
        let wanted = limit.unwrap_or(usize::MAX);
        let (mut walked, mut gave_up) = (0, false);
        let mut seen = std::collections::HashSet::new();
        let mut reader = capture::output::Reader::default();
        let mut rows = Vec::new();
        if wanted > 0 {
            self.db
                .each_command(
                    &self.conditions,
                    false,
                    Order::NewestFirst,
                    |row| -> Result<ControlFlow<()>> {
                        walked += 1;
                        if window.is_some_and(|window| walked > window) {
                            gave_up = true;
                            return Ok(ControlFlow::Break(()));
                        }
                        if (unique && seen.contains(&row.record.command))
                            || placed.is_some_and(|p| !p.keeps(&row.record, row.placement.as_ref()))
                            || text.is_some_and(|t| !reader.printed(&self.path, &row.record, t))
                        {
                            return Ok(ControlFlow::Continue(()));
                        }
                        if unique {
                            seen.insert(row.record.command.clone());
                        }
                        rows.push(row);
                        Ok(match rows.len() >= wanted {
                            true => ControlFlow::Break(()),
                            false => ControlFlow::Continue(()),
                        })
                    },
                )
                .with_context(|| format!("cannot search {}", self.path.display()))?;
        }
        if gave_up {
            return self.placed_at_once(limit, unique, order);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        if order == Order::OldestFirst {
            rows.reverse();
        }
        Ok(Some(rows))
    }

    /// [`Matches::newest`] with every candidate placed at once, forward.
    fn placed_at_once(
        mut self,
        limit: Option<usize>,
        unique: bool,
        order: Order,
    ) -> Result<Option<Vec<tmux_audit::db::StoredCommand>>> {
        if let Some(placed) = self.placed.take() {
            self.db
                .narrow_by_placement(&mut self.conditions, &placed)
                .with_context(|| format!("cannot search {}", self.path.display()))?;
            // The text index's plan for the newest rows knows nothing of
            // the placement: the narrowed conditions alone are asked.
            self.scan_first = None;
        }
        self.newest(limit, unique, order)
    }

    /// Writes the matches to stdout in `format`: with a limit, the newest
    /// `limit` (held at once, they are few); without, every match streamed
    /// from the database one row at a time.
    pub(super) fn write(
        mut self,
        limit: Option<usize>,
        unique: bool,
        order: Order,
        format: RecordFormat,
        fields: Fields,
    ) -> Result<Exit> {
        let mut out = RecordWriter::new(io::stdout().lock(), format, fields);
        // `--unique --output`: which run of a text is the newest that printed
        // TEXT is known only newest first, so those are held at once too.
        if limit.is_some() || (unique && self.output.is_some()) {
            let Some(rows) = self.newest(limit, unique, order)? else {
                return Ok(Exit::NoMatch);
            };
            for row in &rows {
                out.write(row).context(STDOUT)?;
            }
        } else {
            if let Some(placed) = &self.placed {
                // Every match goes out: placed all at once, in one pass
                // forward through the events.
                self.db
                    .narrow_by_placement(&mut self.conditions, placed)
                    .with_context(|| format!("cannot search {}", self.path.display()))?;
            }
            let path = &self.path;
            let output = self.output.as_deref();
            let mut reader = capture::output::Reader::default();
            let searched = self.db.each_command(
                &self.conditions,
                unique,
                order,
                |row| -> Result<ControlFlow<()>> {
                    if output.is_none_or(|text| reader.printed(path, &row.record, text)) {
                        out.write(&row).context(STDOUT)?;
                    }
                    Ok(ControlFlow::Continue(()))
                },
            );
            match searched {
                // A full disk or a closed pipe is not the database's fault.
                Err(err) if err.to_string() == STDOUT => return Err(err),
                other => other.with_context(|| format!("cannot search {}", self.path.display()))?,
            }
        }
        Ok(match out.finish().context(STDOUT)? {
            0 => Exit::NoMatch,
            _ => Exit::Success,
        })
    }
}
