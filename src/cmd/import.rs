//! `tmux-audit import`: another tool's history into the database (see
//! `import/mod.rs` for the formats and what is kept).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::{Exit, Run};
use crate::cli::{Import, ImportTool};
use tmux_audit::config::Config;
use tmux_audit::context;
use tmux_audit::db::Database;
use tmux_audit::import::{self, Options, Source};
use tmux_audit::paths;
use tmux_audit::store;

/// How long the import waits for a writer to let go of the database
/// before each batch: recording shells hold it for milliseconds.
const WAIT_FOR_WRITERS: Duration = Duration::from_secs(10);

impl Run for Import {
    fn run(&self) -> Result<Exit> {
        let source = source(self.tool);
        let file = match &self.file {
            Some(file) => file.clone(),
            None => usual_file(source)?,
        };
        let config = Config::load().context("fix the config file; see `tmux-audit config`")?;
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        let config_max = config.record.max_command_bytes;
        let options = Options {
            dry_run: self.dry_run,
            redact: config.redact,
            user: context::user_name(uid),
            uid,
            now_us: store::now_us(),
            max_command_bytes: config_max,
            name: self.name.clone(),
        };
        let path = paths::database(self.db.path.as_deref())?;
        // A dry run makes no database that is not there yet.
        let mut db = if self.dry_run && !path.exists() {
            None
        } else {
            Some(
                Database::open_waiting(&path, WAIT_FOR_WRITERS)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        };
        let report = import::import(db.as_mut(), source, &file, &options)?;
        if let Some(db) = &db {
            db.fold_wal();
        }

        let mut out = io::stdout().lock();
        writeln!(
            out,
            "read {} ({}): {} {}",
            report.file.display(),
            source.name(),
            report.read,
            if report.read == 1 { "entry" } else { "entries" }
        )?;
        let counts = report.counts;
        if self.dry_run {
            writeln!(
                out,
                "would add {}, already there {} (dry run: nothing written)",
                counts.added, counts.already
            )?;
        } else {
            writeln!(
                out,
                "added {}, already there {}",
                counts.added, counts.already
            )?;
        }
        if report.redacted > 0 {
            writeln!(
                out,
                "secrets redacted in {} of the entries read",
                report.redacted
            )?;
        }
        if report.cut > 0 {
            writeln!(
                out,
                "{} longer than [record] max_command_bytes ({config_max}) kept {} first bytes, length and SHA-256",
                match report.cut {
                    1 => "1 entry".to_string(),
                    n => format!("{n} entries"),
                },
                if report.cut == 1 { "its" } else { "their" }
            )?;
        }
        if report.times_refused > 0 {
            let n = report.times_refused;
            eprintln!(
                "tmux-audit: warning: {n} {} had a time or duration no clock gives (a start past year 9999, a negative duration): stored as unknown",
                if n == 1 { "entry" } else { "entries" }
            );
        }
        for pattern in &report.broken_patterns {
            eprintln!("tmux-audit: warning: {pattern}; fix the pattern (see `tmux-audit config`)");
        }
        if let Some(first) = &report.first_skipped {
            let n = report.skipped;
            eprintln!(
                "tmux-audit: warning: skipped {n} {} that {} not {} history (first: {}:{}: {})",
                if n == 1 { "line" } else { "lines" },
                if n == 1 { "is" } else { "are" },
                source.name(),
                report.file.display(),
                first.line,
                first.why
            );
            return Ok(Exit::Problems);
        }
        Ok(Exit::Success)
    }
}

fn source(tool: ImportTool) -> Source {
    match tool {
        ImportTool::Bash => Source::Bash,
        ImportTool::Zsh => Source::Zsh,
        ImportTool::Fish => Source::Fish,
        ImportTool::Atuin => Source::Atuin,
        ImportTool::ZshHistdb => Source::ZshHistdb,
        ImportTool::Mcfly => Source::Mcfly,
        ImportTool::TmuxAudit => Source::TmuxAudit,
    }
}

fn usual_file(source: Source) -> Result<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = var("HOME").context("cannot find the home directory; set HOME or give FILE")?;
    source
        .usual_file(&home, var("HISTFILE"), var("HISTDB_FILE"), var("XDG_DATA_HOME"))
        .with_context(|| {
            format!(
                "a {} export has no usual place: give the file (`search --all --format jsonl` writes one)",
                source.name()
            )
        })
}
