//! `tmux-audit prune`: delete old records and tmux events, leaving a
//! chained trace entry that `verify` checks (see `db/retention.rs`), and
//! give the space back; also the daily prune `[retention]` asks of the
//! background merge ([`daily`]).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{Exit, Run};
use crate::cli::Prune;
use tmux_audit::config::Config;
use tmux_audit::db::{Database, PruneRules, Pruned};
use tmux_audit::render::utc_time;
use tmux_audit::{error_log, forward, paths, store, timespec};

/// How long a prune run by hand waits for another writer (a merge).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Run for Prune {
    fn run(&self) -> Result<Exit> {
        let config = Config::load()?;
        let retention = &config.retention;
        let Some(older_than) = self
            .older_than
            .as_deref()
            .or(retention.older_than.as_deref())
        else {
            bail!(
                "say how old a record must be to go: --older-than 180d, or `older_than = \"180d\"` under [retention] in config.toml"
            );
        };
        let from = if self.older_than.is_some() {
            "--older-than"
        } else {
            "[retention] older_than in config.toml"
        };
        timespec::parse_age(older_than).map_err(|err| anyhow::anyhow!("{err} ({from})"))?;
        let mut keep_matching = retention.keep_matching.clone();
        keep_matching.extend(self.keep_matching.iter().cloned());
        let reason = self
            .reason
            .clone()
            .unwrap_or_else(|| format!("older than {older_than}"));
        let rules = PruneRules::new(
            older_than,
            store::now_us(),
            self.keep_failed || retention.keep_failed,
            &keep_matching,
            reason,
        )
        .map_err(|err| anyhow::anyhow!("{err} (--keep-matching or [retention] keep_matching)"))?;
        let mut rules = rules;
        rules.forward_targets = forward_targets(&config)?;
        rules.central_server = central_server(&config)?;
        let path = paths::database(self.db.path.as_deref())?;
        let mut db = super::open_for_reading(&path)?;
        // Run by hand: worth waiting for a merge in progress.
        db.set_busy_timeout(BUSY_TIMEOUT)?;
        let size_before = file_size(&path);
        let pruned = db.prune(&rules, self.dry_run)?;
        let mut out = io::stdout().lock();
        let what = describe(&pruned);
        let before = utc_time(rules.before_us);
        if pruned.held_back > 0 {
            let n = pruned.held_back;
            eprintln!(
                "tmux-audit: note: {n} older {} kept: {} not taken {} yet (`tmux-audit forward` sends what waits; check [forward] or [central] in config.toml)",
                if n == 1 { "row is" } else { "rows are" },
                pruned.held_back_by.join(", "),
                if n == 1 { "it" } else { "them" },
            );
        }
        if self.dry_run {
            writeln!(
                out,
                "would prune {what} from before {before}{}; nothing changed (--dry-run)",
                kept(&pruned)
            )?;
            return Ok(Exit::Success);
        }
        writeln!(out, "pruned {what} from before {before}{}", kept(&pruned))?;
        if let (Some(first), Some(last)) = (pruned.trace_ids.first(), pruned.trace_ids.last()) {
            let entries = match first == last {
                true => format!("trace entry {first}"),
                false => format!("trace entries {first} to {last}"),
            };
            writeln!(out, "{entries}: {}", rules.reason)?;
        }
        let reclaimed = db.reclaim_space(true)?;
        if reclaimed.switched_on {
            writeln!(
                out,
                "the database was rebuilt once (VACUUM) so that later prunes give space back in small steps"
            )?;
        }
        drop(db);
        writeln!(
            out,
            "database file: {} before, {} now",
            human_size(size_before),
            human_size(file_size(&path))
        )?;
        Ok(Exit::Success)
    }
}

fn describe(pruned: &Pruned) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} and {}",
        plural(pruned.commands, "record", "records"),
        plural(pruned.tmux_events, "tmux event", "tmux events")
    )
}

fn kept(pruned: &Pruned) -> String {
    match pruned.kept {
        0 => String::new(),
        n => format!("; {n} as old kept by --keep-failed/--keep-matching"),
    }
}

/// The database and its write-ahead log, in bytes.
fn file_size(path: &Path) -> u64 {
    let len = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    len(path) + len(Path::new(&wal))
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

/// The daily prune of `[retention]`, run by the background merge
/// (`merge-later`, a detached process: never the prompt's own): when
/// `older_than` is set and a day has passed since the last one. Never
/// rebuilds the file (see `Database::reclaim_space`). Errors go to the
/// log file.
pub fn daily(path: &Path) {
    let config = match Config::load() {
        Ok(config) => config,
        // `record` logs a config file it cannot read already.
        Err(_) => return,
    };
    if let Err(err) = try_daily(path, &config) {
        error_log::append(
            "merge-later",
            &format!("the daily prune of [retention] failed: {err}"),
            "run `tmux-audit prune` to see why, and `tmux-audit verify`",
        );
    }
}

/// The keys of the forwarding targets configured: a prune leaves what
/// they have not taken.
fn forward_targets(config: &Config) -> Result<Vec<String>> {
    let targets = forward::targets(&config.forward).map_err(|err| {
        anyhow::anyhow!(
            "{err:#}; a prune keeps what the forwarding targets lack, so it needs them all"
        )
    })?;
    Ok(targets.iter().map(forward::Target::key).collect())
}

/// The central store configured, as its cursor names it: a prune leaves
/// what was not shipped there. One that cannot be told is an error: what
/// was shipped is not known, so nothing could be pruned safely.
fn central_server(config: &Config) -> Result<Option<String>> {
    let Some(url) = config.central.url() else {
        return Ok(None);
    };
    let target = tmux_audit::central::target(Some(url)).map_err(|err| {
        anyhow::anyhow!(
            "{err}; a prune keeps what the central store lacks, so it needs the store's address"
        )
    })?;
    Ok(Some(target.server_key()))
}

fn try_daily(path: &Path, config: &Config) -> Result<()> {
    let retention = &config.retention;
    let Some(older_than) = retention.older_than.as_deref() else {
        return Ok(());
    };
    let now = store::now_us();
    let rules = PruneRules::new(
        older_than,
        now,
        retention.keep_failed,
        &retention.keep_matching,
        format!("[retention] older_than = {older_than:?} (config.toml), daily"),
    )
    .map_err(|err| anyhow::anyhow!("{err} ([retention] in config.toml)"))?;
    let mut rules = rules;
    rules.forward_targets = forward_targets(config)?;
    rules.central_server = central_server(config)?;
    let mut db = Database::open_existing(path)?;
    if !db.claim_daily_prune(now)? {
        return Ok(());
    }
    let pruned = db.prune(&rules, false)?;
    if pruned.held_back > 0 {
        error_log::append(
            "merge-later",
            &format!(
                "the daily prune of [retention] kept {} older rows: {} not taken them yet",
                pruned.held_back,
                pruned.held_back_by.join(", ")
            ),
            "run `tmux-audit forward` to see why the target does not take them, or fix [forward] in config.toml",
        );
    }
    db.reclaim_space(false)?;
    Ok(())
}
