//! `tmux-audit doctor`: one screen on the health of the recording, and
//! `--repair` for a damaged database.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::Utc;

use super::{Exit, Run};
use crate::cli::Doctor;
use tmux_audit::db::{Database, DbError};
use tmux_audit::error_log;
use tmux_audit::lifecycle::hooks;
use tmux_audit::paths;
use tmux_audit::private_files::{self, Refusal};
use tmux_audit::spool;

/// One finding: what was checked, what was found, and the fix when it is a problem.
struct Finding {
    what: &'static str,
    found: String,
    fix: Option<String>,
    /// Worth a look, though nothing is wrong now (an error in the log).
    warn: bool,
}

impl Finding {
    fn ok(what: &'static str, found: String) -> Finding {
        Finding {
            what,
            found,
            fix: None,
            warn: false,
        }
    }
    fn warning(what: &'static str, found: String) -> Finding {
        Finding {
            warn: true,
            ..Finding::ok(what, found)
        }
    }
    fn problem(what: &'static str, found: String, fix: impl Into<String>) -> Finding {
        Finding {
            what,
            found,
            fix: Some(fix.into()),
            warn: false,
        }
    }
}

impl Run for Doctor {
    fn run(&self) -> Result<Exit> {
        let path = paths::database(self.db.path.as_deref())?;
        let mut findings = check_database(&path);
        let damaged = findings
            .iter()
            .any(|f| f.what == "integrity" && f.fix.is_some());
        let mut out = io::stdout().lock();
        if self.repair && damaged {
            let moved = repair(&path)?;
            writeln!(
                out,
                "repaired: moved the damaged database to {}; started a new one",
                moved.display()
            )?;
            findings = check_database(&path);
        } else if self.repair && path.exists() {
            // A healthy database: bring in whatever waits in the spool.
            let merged = spool::merge(&mut Database::open_existing(&path)?, &path)?;
            spool::clear_failure(&path);
            if merged > 0 {
                writeln!(
                    out,
                    "repaired: merged {merged} spooled record{} into the database",
                    if merged == 1 { "" } else { "s" }
                )?;
            }
        }
        findings.extend(check_surroundings(&path));
        for f in &findings {
            let status = match (&f.fix, f.warn) {
                (Some(_), _) => "FAIL",
                (None, true) => "warn",
                (None, false) => "ok",
            };
            writeln!(out, "{status:<4}  {:<11} {}", f.what, f.found)?;
            if let Some(fix) = &f.fix {
                writeln!(out, "      {:<11} fix: {fix}", "")?;
            }
        }
        Ok(if findings.iter().any(|f| f.fix.is_some()) {
            Exit::Problems
        } else {
            Exit::Success
        })
    }
}

fn check_database(path: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Ok(meta) = fs::metadata(path) else {
        findings.push(match spool::last_failure(path) {
            Some((_, why)) => Finding::problem(
                "database",
                format!("{}: none, and it could not be made: {why}", path.display()),
                "fix what the error names, or set TMUX_AUDIT_DB to a file in a directory of yours",
            ),
            None => Finding::ok(
                "database",
                format!(
                    "{}: none yet (made by the first recorded command)",
                    path.display()
                ),
            ),
        });
        return findings;
    };
    let wal = fs::metadata(format!("{}-wal", path.display())).map_or(0, |m| m.len());
    match Database::open_existing(path) {
        Ok(db) => {
            let version = db
                .schema_version()
                .map_or("?".to_string(), |v| v.to_string());
            findings.push(Finding::ok(
                "database",
                format!(
                    "{}: {}, schema {version}, WAL {}",
                    path.display(),
                    size(meta.len()),
                    size(wal)
                ),
            ));
            findings.push(match db.quick_check() {
                Ok(result) if result == "ok" => {
                    Finding::ok("integrity", "ok (PRAGMA quick_check)".into())
                }
                Ok(result) => Finding::problem("integrity", result, "tmux-audit doctor --repair"),
                Err(err) => {
                    Finding::problem("integrity", err.to_string(), "tmux-audit doctor --repair")
                }
            });
        }
        Err(DbError::Unsafe { refusal, .. }) => {
            findings.push(Finding::problem(
                "database",
                format!("{}: not opened: {refusal}", path.display()),
                refusal.fix(),
            ));
        }
        Err(err) => {
            findings.push(Finding::ok(
                "database",
                format!("{}: {}", path.display(), size(meta.len())),
            ));
            let damaged = matches!(
                err.sqlite_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            );
            let fix = if damaged {
                "tmux-audit doctor --repair".to_string()
            } else {
                err.hint().to_string()
            };
            findings.push(Finding::problem("integrity", err.to_string(), fix));
        }
    }
    findings
}

fn check_surroundings(path: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(kind) = network_file_system(dir) {
        findings.push(Finding::problem(
            "file system",
            format!(
                "{} is on {kind}, where SQLite's WAL locking does not hold",
                dir.display()
            ),
            "set TMUX_AUDIT_DB to a file on a local disk",
        ));
    } else {
        findings.push(Finding::ok("file system", "local".into()));
    }
    findings.extend(check_permissions(path, dir));
    if !findings.iter().any(|f| f.what == "permissions") {
        findings.push(Finding::ok("permissions", "private to you".into()));
    }
    let usable = !findings_refuse_the_database(&findings, path);
    findings.push(check_spool(path, usable));
    let last_error = paths::log_file()
        .ok()
        .and_then(|p| fs::read_to_string(p).ok())
        .and_then(|log| log.lines().last().map(str::to_string));
    findings.push(match last_error {
        Some(line) => Finding::warning("last error", line),
        None => Finding::ok("last error", "none".into()),
    });
    findings.push(check_hook(path));
    findings.extend(check_login_bash());
    findings.push(check_tmux_hooks());
    findings.extend(check_capture());
    findings
}

/// Whether a line of this shell script runs `tmux-audit init bash` (by
/// name or by path, quoted or not).
fn loads_the_bash_hook(script: &str) -> bool {
    script
        .lines()
        .any(|line| line.contains("tmux-audit") && line.contains("init bash"))
}

/// tmux starts a login shell in each pane, and a login bash reads the
/// first of `~/.bash_profile`, `~/.bash_login` and `~/.profile`, never
/// `~/.bashrc` by itself: a hook loaded in `~/.bashrc` records nothing in
/// tmux unless that file reads it. Checked only when bash is the user's
/// shell and `~/.bashrc` loads the hook.
fn check_login_bash() -> Option<Finding> {
    let shell = std::env::var_os("SHELL")?;
    if Path::new(&shell).file_name()? != "bash" {
        return None;
    }
    let home = PathBuf::from(tmux_audit::render::home()?);
    let bashrc = fs::read_to_string(home.join(".bashrc")).ok()?;
    if !loads_the_bash_hook(&bashrc) {
        return None;
    }
    let login_file = [".bash_profile", ".bash_login", ".profile"]
        .into_iter()
        .map(|name| home.join(name))
        .find(|path| path.exists());
    const FIX: &str = "add `[ -f ~/.bashrc ] && . ~/.bashrc` to ~/.bash_profile";
    let Some(login_file) = login_file else {
        return Some(Finding::problem(
            "login bash",
            "tmux starts login shells, and a login bash reads ~/.bash_profile, of which you have \
             none: ~/.bashrc and its hook are not read there"
                .into(),
            FIX,
        ));
    };
    let text = fs::read_to_string(&login_file).unwrap_or_default();
    if text.contains("bashrc") || loads_the_bash_hook(&text) {
        return Some(Finding::ok(
            "login bash",
            format!("{} reads the hook", login_file.display()),
        ));
    }
    Some(Finding::problem(
        "login bash",
        format!(
            "tmux starts login shells, and a login bash reads {}, which does not read ~/.bashrc \
             and its hook",
            login_file.display()
        ),
        FIX,
    ))
}

/// With capture on, inside tmux: is every pane captured? A pane whose
/// output already goes to a `pipe-pane` of the user's is left alone, and
/// said here.
fn check_capture() -> Option<Finding> {
    const WHAT: &str = "capture";
    let on = tmux_audit::config::Config::load().is_ok_and(|c| c.capture.enabled);
    if !on || std::env::var_os("TMUX").is_none_or(|v| v.is_empty()) {
        return None;
    }
    let (pid, panes) = match hooks::pane_pipes() {
        Ok(found) => found,
        Err(err) => {
            return Some(Finding::problem(
                WHAT,
                format!("{err:#}"),
                "check that tmux runs",
            ))
        }
    };
    let ours = tmux_audit::capture::running();
    let theirs: Vec<&str> = panes
        .iter()
        .filter(|p| p.piped && !ours.contains(&(pid, p.pane.clone())))
        .map(|p| p.pane.as_str())
        .collect();
    let bare: Vec<&str> = panes
        .iter()
        .filter(|p| !p.piped)
        .map(|p| p.pane.as_str())
        .collect();
    if !theirs.is_empty() {
        return Some(Finding::problem(
            WHAT,
            format!(
                "not captured: {} (its output goes to a pipe-pane of your own, left alone)",
                theirs.join(", ")
            ),
            "stop that pipe (`tmux pipe-pane -t PANE`), then run `tmux-audit init tmux` again",
        ));
    }
    if !bare.is_empty() {
        return Some(Finding::problem(
            WHAT,
            format!("not captured: {}", bare.join(", ")),
            "run `tmux-audit init tmux` again",
        ));
    }
    Some(Finding::ok(
        WHAT,
        format!("all {} panes captured", panes.len()),
    ))
}

/// Does the hook record this shell's commands? `TMUX_AUDIT_SESSION` only
/// says that it was loaded once: a later line of the rc file can still have
/// replaced `PROMPT_COMMAND` or the precmd hooks. So the proof asked for is
/// a command of this shell in the database.
fn check_hook(path: &Path) -> Finding {
    const FIX: &str =
        "load it with the line from `tmux-audit init --help`, last in your shell's rc file";
    let session = std::env::var("TMUX_AUDIT_SESSION").unwrap_or_default();
    if session.is_empty() {
        if !io::stdin().is_terminal() {
            return Finding::ok(
                "hook",
                "not run from an interactive shell: not checked".into(),
            );
        }
        return Finding::problem("hook", "not loaded in this shell".into(), FIX);
    }
    let newest = Database::open_existing(path)
        .ok()
        .and_then(|db| db.newest_of_shell_session(&session).ok().flatten());
    match newest {
        Some(row) => Finding::ok(
            "hook",
            format!(
                "records this shell: its command {} at {}",
                row.record.seq,
                tmux_audit::render::local_time(row.record.started_at_us)
            ),
        ),
        None => Finding::problem(
            "hook",
            format!(
                "loaded in this shell (session {session}), but none of its commands was recorded: \
                 run one (`true`) and `doctor` again; if still none, a later line of your rc file \
                 replaces the hook"
            ),
            FIX,
        ),
    }
}

/// The database's directory, the database and every file tmux-audit keeps
/// beside it or for it: each the user's own, and no other user can write
/// it (nor, for the directory and the database, read it).
fn check_permissions(path: &Path, dir: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut refused = |refusal: Refusal| {
        findings.push(Finding::problem(
            "permissions",
            refusal.to_string(),
            refusal.fix(),
        ));
    };
    let dir_refused = match fs::metadata(dir) {
        Ok(meta) => private_files::check_dir(dir, &meta)
            .map_err(&mut refused)
            .is_err(),
        Err(_) => false,
    };
    let mut beside: Vec<PathBuf> = ["", "-wal", "-shm", "-journal", "-spool", "-spool.rejected"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", path.display())))
        .collect();
    if let Ok(fallback) = spool::fallback_path(path) {
        let mut rejected = fallback.clone().into_os_string();
        rejected.push(".rejected");
        beside.extend([fallback, PathBuf::from(rejected)]);
    }
    if let Ok(log) = paths::log_file() {
        beside.extend([error_log::rotated(&log), log]);
    }
    for file in &beside {
        let _ = private_files::check_existing(file).map_err(&mut refused);
    }
    if !dir_refused {
        for (file, want) in [(dir, 0o700), (path, 0o600)] {
            let Ok(meta) = fs::metadata(file) else {
                continue;
            };
            if file == path && !meta.is_file() {
                continue; // refused above for what it is, whatever its mode
            }
            let mode = meta.mode() & 0o777;
            if meta.uid() == private_files::uid() && mode & 0o077 != 0 {
                findings.push(Finding::problem(
                    "permissions",
                    format!("{} is {mode:o}: others can read it", file.display()),
                    format!("chmod {want:o} {}", file.display()),
                ));
            }
        }
    }
    findings
}

/// Whether the database at `path` was refused (not a regular file, not
/// ours): records cannot move into it, whatever the spool's state.
fn findings_refuse_the_database(findings: &[Finding], path: &Path) -> bool {
    let named = path.display().to_string();
    findings.iter().any(|f| {
        f.fix.is_some()
            && matches!(f.what, "database" | "permissions")
            && f.found.starts_with(&named)
            && !f.found.contains(": others can")
    })
}

/// Records wait in the spool as a rule (it is merged every forty commands
/// or five minutes, and by every reader); it is a problem only when the
/// last try to merge it failed.
fn check_spool(db: &Path, database_usable: bool) -> Finding {
    let (waiting, oldest) = spool::waiting(db);
    let records = format!("{waiting} record{}", if waiting == 1 { "" } else { "s" });
    match (waiting, spool::last_failure(db)) {
        (0, _) => Finding::ok("spool", "empty".into()),
        (_, None) if !database_usable => Finding::problem(
            "spool",
            format!("{records} waiting: they move in once the database above is fixed"),
            "fix the database as said above; `tmux-audit flush` then moves them in",
        ),
        (_, Some((at, why))) => Finding::problem(
            "spool",
            format!(
                "{records} waiting since {}: merging them failed at {}: {why}",
                oldest.map_or("?".to_string(), tmux_audit::render::local_time),
                tmux_audit::render::local_time(at)
            ),
            "fix what the error names; `tmux-audit flush` tries again",
        ),
        (_, None) => Finding::ok(
            "spool",
            format!("{records} waiting (moved into the database by the next search, or soon)"),
        ),
    }
}

/// Inside tmux: are the lifecycle hooks of `init tmux` registered in this
/// server, all of them, and does the binary they run exist?
fn check_tmux_hooks() -> Finding {
    const WHAT: &str = "tmux hooks";
    const FIX: &str = "add `run-shell 'tmux-audit init tmux'` to ~/.tmux.conf, and run `tmux-audit init tmux` once now";
    if std::env::var_os("TMUX").is_none_or(|v| v.is_empty()) {
        return Finding::ok(WHAT, "not inside tmux: not checked".into());
    }
    let listing = match hooks::listing() {
        Ok(listing) => listing,
        Err(err) => return Finding::problem(WHAT, format!("{err:#}"), "check that tmux runs"),
    };
    let registered: Vec<&str> = hooks::HOOKS
        .iter()
        .copied()
        .filter(|hook| {
            listing
                .lines()
                .any(|l| l.starts_with(&format!("{hook}[")) && l.contains(hooks::MARKER))
        })
        .collect();
    if registered.is_empty() {
        return Finding::problem(WHAT, "not registered in this tmux server".into(), FIX);
    }
    if registered.len() < hooks::HOOKS.len() {
        let missing: Vec<&str> = hooks::HOOKS
            .iter()
            .copied()
            .filter(|h| !registered.contains(h))
            .collect();
        return Finding::problem(
            WHAT,
            format!("missing for {}", missing.join(", ")),
            "run `tmux-audit init tmux` again",
        );
    }
    // Hooks of tmux-audit 0.1 before the fix quoted values with `#{q:…}`,
    // which lets a guest's TERM with a newline run commands.
    let unsafe_hooks = listing
        .lines()
        .any(|l| l.contains(hooks::MARKER) && l.contains("#{q:"));
    if unsafe_hooks {
        return Finding::problem(
            WHAT,
            "registered by an older tmux-audit, whose hooks let a guest's TERM run commands as you"
                .into(),
            "run `tmux-audit init tmux` again: it replaces them",
        );
    }
    let gone: Vec<String> = hooks::hook_binaries(&listing)
        .into_iter()
        .filter(|bin| !Path::new(bin).is_file())
        .collect();
    if !gone.is_empty() {
        return Finding::problem(
            WHAT,
            format!("they run {}, which is not there", gone.join(", ")),
            "run `tmux-audit init tmux` again with the tmux-audit you use now",
        );
    }
    Finding::ok(
        WHAT,
        format!("all {} registered in this tmux server", hooks::HOOKS.len()),
    )
}

/// Moves the database and its -wal and -shm files aside, starts a new
/// database that notes the break, and merges the spool into it.
fn repair(path: &Path) -> Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let moved = PathBuf::from(format!("{}.broken-{stamp}", path.display()));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", moved.display()));
            fs::rename(&from, &to)
                .with_context(|| format!("cannot move {} aside", from.display()))?;
        }
    }
    let mut db = Database::open(path).context("cannot start a new database")?;
    db.add_chain_origin(
        Utc::now().timestamp_micros(),
        "the previous database was damaged and moved aside by `tmux-audit doctor --repair`",
        moved.to_str(),
    )?;
    spool::merge(&mut db, path)?;
    Ok(moved)
}

/// The kind of network file system `dir` is on, if it is on one.
fn network_file_system(dir: &Path) -> Option<&'static str> {
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs is plain data, for which all zeroes is a valid value.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string, and a statfs for the kernel to fill.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    network_kind(stat.f_type as u32)
}

/// The network file system a statfs(2) magic number names, if it names one.
fn network_kind(magic: u32) -> Option<&'static str> {
    match magic {
        0x6969 => Some("NFS"),
        0x517B => Some("SMB"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x0102_1997 => Some("9P"),
        0x6573_5546 => Some("FUSE (sshfs and the like)"),
        _ => None,
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.0} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_systems_are_told_from_local_ones() {
        // Magic numbers as statfs(2) and the kernel's magic.h give them.
        assert_eq!(network_kind(0x6969), Some("NFS"));
        assert_eq!(network_kind(0xFE53_4D42), Some("SMB2"));
        assert_eq!(network_kind(0x0102_1997), Some("9P"));
        assert_eq!(network_kind(0xEF53), None, "ext4");
        assert_eq!(network_kind(0x0102_1994), None, "tmpfs");
        // And the directory the tests run in is local.
        assert_eq!(network_file_system(&std::env::temp_dir()), None);
    }
}
