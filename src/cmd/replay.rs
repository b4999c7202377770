//! `tmux-audit replay`: a pane's captured output played in this terminal
//! with its timing, or written as an asciicast v2 file (`--asciicast`).
//! (`export`'s formats are of commands; a pane's stream has its own.)

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{Exit, Run};
use crate::cli::Replay;
use tmux_audit::capture::{self, replay};
use tmux_audit::{paths, private_files};

/// A pause longer than this is played as this long.
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

impl Run for Replay {
    fn run(&self) -> Result<Exit> {
        if !(self.speed > 0.0 && self.speed.is_finite()) {
            bail!("--speed must be a number above 0, such as 2 or 0.5");
        }
        let db = paths::database(self.db.path.as_deref())?;
        let root = capture::root(&db);
        let Some(dir) = replay::find_pane(&root, &self.pane, self.server_pid)
            .with_context(|| format!("cannot read {}", root.display()))?
        else {
            bail!(
                "no captured output of pane {} in {}: panes are `%N`, and capture is on with \
                 `[capture] enabled = true` in config.toml",
                self.pane,
                root.display()
            );
        };
        let since = self.since.map_or(i64::MIN, |t| t.timestamp_micros());
        let until = self.until.map_or(i64::MAX, |t| t.timestamp_micros());
        let stream = replay::stream(&dir, since, until)
            .with_context(|| format!("cannot read {}", dir.display()))?;
        if stream.is_empty() {
            return Ok(Exit::NoMatch);
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
