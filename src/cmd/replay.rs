//! `tmux-audit replay`: a pane's captured output played in this terminal
//! with its timing, or written as an asciicast v2 file (`--asciicast`).
//! (`export`'s formats are of commands; a pane's stream has its own.)

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{Exit, Run};
use crate::cli::Replay;
use tmux_audit::capture::{self, replay};
use tmux_audit::db::SearchQuery;
use tmux_audit::filter::Filters;
use tmux_audit::{paths, private_files};

/// A pause longer than this is played as this long.
const LONGEST_PAUSE: Duration = Duration::from_secs(2);
/// The slowest `--speed`: a pause of [`LONGEST_PAUSE`] then lasts about
/// half an hour (slower, a pause would not fit a `Duration`).
const SLOWEST: f64 = 0.001;

impl Run for Replay {
    fn run(&self) -> Result<Exit> {
        if !(self.speed >= SLOWEST && self.speed.is_finite()) {
            bail!("--speed must be a number from {SLOWEST} up, such as 2 or 0.5");
        }
        let db = paths::database(self.db.path.as_deref())?;
        let since = self.since.map_or(i64::MIN, |t| t.timestamp_micros());
        let until = self.until.map_or(i64::MAX, |t| t.timestamp_micros());
        let which = match (&self.pane, &self.session) {
            (Some(pane), _) => Captured::Pane {
                pane,
                server_pid: self.server_pid,
            },
            (None, Some(session)) => Captured::Session(session),
            (None, None) => bail!("say which output: --pane %N or --session SESSION"),
        };
        let stream = captured_stream(&db, which.clone(), since, until)?;
        if stream.is_empty() {
            return Ok(which.found_nothing());
        }
        if let Some(path) = &self.asciicast {
            let mut file = private_files::create_new(path).with_context(|| {
                format!("cannot make {} (it must not exist yet)", path.display())
            })?;
            let mut out = io::BufWriter::new(&mut file);
            replay::write_asciicast(&mut out, &stream, self.cols, self.rows)?;
            out.flush()?;
            return Ok(Exit::Success);
        }
        let mut out = io::stdout().lock();
        let mut previous = stream[0].0;
        for (at, bytes) in &stream {
            let pause = Duration::from_micros((at - previous).max(0) as u64);
            std::thread::sleep(pause.min(LONGEST_PAUSE).div_f64(self.speed));
            out.write_all(bytes)?;
            out.flush()?;
            previous = *at;
        }
        Ok(Exit::Success)
    }
}

/// Whose captured output: one pane, or every pane of a tmux session.
#[derive(Clone)]
pub(super) enum Captured<'a> {
    Pane {
        pane: &'a str,
        /// Its tmux server's pid; None: the server that captured it last.
        server_pid: Option<i64>,
    },
    Session(&'a str),
}

impl Captured<'_> {
    /// Says on stderr that nothing was captured from it in that time, and
    /// gives the exit status of a search that found nothing.
    pub(super) fn found_nothing(&self) -> Exit {
        let whose = match self {
            Captured::Pane { pane, .. } => format!("pane {pane}"),
            Captured::Session(session) => format!("session {session}"),
        };
        eprintln!(
            "tmux-audit: no captured output of {whose} in that time; hint: widen --since/--until; capture is on with `[capture] enabled = true` in config.toml"
        );
        Exit::NoMatch
    }
}

/// The output captured beside database `db_path` from `which`, read
/// between `since` and `until` (µs since the epoch), in order: what
/// `replay` plays and `export --format asciicast` writes.
pub(super) fn captured_stream(
    db_path: &Path,
    which: Captured,
    since: i64,
    until: i64,
) -> Result<replay::Stream> {
    let root = capture::root(db_path);
    match which {
        Captured::Pane { pane, server_pid } => {
            let Some(dir) = replay::find_pane(&root, pane, server_pid)
                .with_context(|| format!("cannot read {}", root.display()))?
            else {
                bail!(
                    "no captured output of pane {pane} in {}: panes are `%N`, and capture \
                     is on with `[capture] enabled = true` in config.toml",
                    root.display()
                );
            };
            replay::stream(&dir, since, until)
                .with_context(|| format!("cannot read {}", dir.display()))
        }
        Captured::Session(session) => session_stream(db_path, &root, session, since, until),
    }
}

/// The panes of `session` that ran recorded commands (in the order of
/// their first), each pane's stream one after the other.
fn session_stream(
    db_path: &Path,
    root: &Path,
    session: &str,
    since: i64,
    until: i64,
) -> Result<replay::Stream> {
    let mut db = super::open_for_reading(db_path)?;
    let filters = super::with_live_session(Filters {
        session: Some(session.to_string()),
        ..Filters::default()
    })?;
    let conditions = db.conditions(&filters)?;
    let mut commands = db.search(&SearchQuery {
        conditions,
        scan_first: None,
        limit: None,
        unique: false,
    })?;
    commands.sort_by_key(|c| (c.record.started_at_us, c.id));
    let mut panes: Vec<(i64, String)> = Vec::new();
    for c in &commands {
        if let (Some(pid), Some(pane)) = (c.record.tmux_server_pid, &c.record.tmux_pane)
            && !panes.iter().any(|(p, n)| *p == pid && n == pane)
        {
            panes.push((pid, pane.clone()));
        }
    }
    if panes.is_empty() {
        bail!(
            "no recorded command ran in tmux session {session:?}: `tmux-audit sessions` \
             lists the sessions seen"
        );
    }
    let mut streams = Vec::new();
    for (pid, pane) in panes {
        let Some(dir) = capture::pane_dir(root, pid, &pane).filter(|d| d.is_dir()) else {
            continue;
        };
        let stream = replay::stream(&dir, since, until)
            .with_context(|| format!("cannot read {}", dir.display()))?;
        streams.push((format!("pane {pane} (tmux server {pid})"), stream));
    }
    Ok(replay::one_after_another(streams))
}
