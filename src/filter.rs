//! Which records a `search` or `report` looks at: the filters every query
//! shares and the text pattern, turned into SQL conditions with parameters
//! (never into SQL text: every value is bound).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Local, Utc};
use clap::Args;
use rusqlite::types::Value;

use crate::cli::Shell;
use crate::context::Tmux;
use crate::timespec;

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Filters (all combine)")]
pub struct Filters {
    /// Commands run in this tmux pane (`%3`), on any server unless --socket is given.
    #[arg(long, value_name = "%N")]
    pub pane: Option<String>,

    /// Commands run in the current tmux pane (outside tmux: in the current shell session).
    #[arg(long, conflicts_with = "pane")]
    pub here: bool,

    /// Commands run in this tmux session: its id (`$2` or `2`), or the name of a session
    /// of the running tmux server.
    #[arg(long, value_name = "NAME_OR_ID")]
    pub session: Option<String>,

    /// Commands run under the tmux server with this socket path.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<String>,

    /// Commands started in this directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Commands started in this directory or anywhere below it.
    #[arg(long, value_name = "DIR", conflicts_with = "cwd")]
    pub cwd_under: Option<PathBuf>,

    /// Commands run by this user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Commands run on this host.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,

    /// Commands run in this shell.
    #[arg(long, value_enum, value_name = "SHELL")]
    pub shell: Option<Shell>,

    /// Commands that exited with this status.
    #[arg(long = "exit", value_name = "STATUS", allow_hyphen_values = true)]
    pub exit_status: Option<i64>,

    /// Commands that failed (exit status other than 0).
    #[arg(long, conflicts_with_all = ["succeeded", "exit_status"])]
    pub failed: bool,

    /// Commands that succeeded (exit status 0).
    #[arg(long, conflicts_with = "exit_status")]
    pub succeeded: bool,

    /// Commands started at or after WHEN: 2026-11-25T14:00:00Z, 2026-11-25, "2026-11-25 14:00",
    /// today, yesterday, 2h, "3 days ago".
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<DateTime<Utc>>,

    /// Commands started before WHEN (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<DateTime<Utc>>,

    /// Commands that ran at least this long: 500ms, 5s, 2m, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = timespec::parse_duration)]
    pub min_duration: Option<chrono::Duration>,
}

fn parse_when(input: &str) -> Result<DateTime<Utc>, String> {
    timespec::parse_time(input, Local::now())
}

/// SQL conditions over the `commands` table, joined with AND, and their
/// parameters in order.
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    pub clauses: Vec<String>,
    pub params: Vec<Value>,
}

impl Conditions {
    fn push(&mut self, clause: &str, params: impl IntoIterator<Item = Value>) {
        self.clauses.push(clause.to_string());
        self.params.extend(params);
    }

    /// `WHERE a AND b`, or nothing.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

impl Filters {
    pub fn conditions(&self) -> Result<Conditions> {
        let mut c = Conditions::default();
        if let Some(pane) = &self.pane {
            c.push("tmux_pane = ?", [text(pane)]);
        }
        if self.here {
            match (std::env::var("TMUX").ok(), std::env::var("TMUX_PANE").ok()) {
                (Some(tmux), Some(pane)) if !tmux.is_empty() && !pane.is_empty() => {
                    let server = Tmux::parse(&tmux, Some(pane.clone()));
                    c.push(
                        "tmux_pane = ? AND tmux_socket = ?",
                        [text(pane), text(server.socket)],
                    );
                    if let Some(pid) = server.server_pid {
                        c.push("tmux_server_pid = ?", [Value::Integer(pid)]);
                    }
                }
                _ => match std::env::var("TMUX_AUDIT_SESSION") {
                    Ok(session) if !session.is_empty() => {
                        c.push("shell_session = ?", [text(session)])
                    }
                    _ => {
                        bail!("--here needs a tmux pane or a shell with the tmux-audit hook loaded")
                    }
                },
            }
        }
        if let Some(session) = &self.session {
            let (id, socket) = session_id(session)?;
            c.push("tmux_session_id = ?", [Value::Integer(id)]);
            if let Some(socket) = socket {
                c.push("tmux_socket = ?", [text(socket)]);
            }
        }
        if let Some(socket) = &self.socket {
            c.push("tmux_socket = ?", [text(socket)]);
        }
        if let Some(dir) = &self.cwd {
            c.push("cwd = ?", [text(absolute(dir)?)]);
        }
        if let Some(dir) = &self.cwd_under {
            let dir = absolute(dir)?;
            let dir = dir.trim_end_matches('/');
            // Below `dir`: every path from `dir/` up to (not including) `dir0`,
            // `0` being the character after `/`. Served by a range scan.
            c.push(
                "(cwd = ? OR (cwd >= ? AND cwd < ?))",
                [
                    text(if dir.is_empty() { "/" } else { dir }),
                    text(format!("{dir}/")),
                    text(format!("{dir}0")),
                ],
            );
        }
        if let Some(user) = &self.user {
            c.push("user = ?", [text(user)]);
        }
        if let Some(host) = &self.host {
            c.push("host = ?", [text(host)]);
        }
        if let Some(shell) = self.shell {
            c.push("shell = ?", [text(shell.name())]);
        }
        if let Some(status) = self.exit_status {
            c.push("exit_status = ?", [Value::Integer(status)]);
        }
        if self.failed {
            c.push("exit_status <> 0", []);
        }
        if self.succeeded {
            c.push("exit_status = 0", []);
        }
        if let Some(since) = self.since {
            c.push(
                "started_at_us >= ?",
                [Value::Integer(since.timestamp_micros())],
            );
        }
        if let Some(until) = self.until {
            c.push(
                "started_at_us < ?",
                [Value::Integer(until.timestamp_micros())],
            );
        }
        if let Some(min) = self.min_duration {
            let us = min.num_microseconds().unwrap_or(i64::MAX);
            c.push("duration_us >= ?", [Value::Integer(us)]);
        }
        Ok(c)
    }

    /// The period the filters cover, for titles.
    pub fn period(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        (self.since, self.until)
    }
}

fn absolute(dir: &Path) -> Result<String> {
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot find the current directory")?
            .join(dir)
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    dir.to_str()
        .map(str::to_string)
        .with_context(|| format!("the directory is not UTF-8: {}", dir.display()))
}

/// A session id given as `$2` or `2`; a name is looked up in the running
/// tmux server (the one this shell is in, or the default one).
fn session_id(session: &str) -> Result<(i64, Option<String>)> {
    if let Ok(id) = session.trim_start_matches('$').parse() {
        return Ok((id, None));
    }
    let out = Command::new("tmux")
        .args([
            "display-message",
            "-p",
            "-t",
            &format!("={session}"),
            "#{session_id} #{socket_path}",
        ])
        .output()
        .context("cannot run tmux to look up the session name")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.trim().split_once(' ') {
        Some((id, socket)) if out.status.success() => {
            let id = id.trim_start_matches('$').parse().context("tmux gave an odd session id")?;
            Ok((id, Some(socket.to_string())))
        }
        _ => bail!(
            "no tmux session named {session:?} in the running tmux server; give the session id instead (`$N`, see `tmux ls -F '#{{session_id}} #{{session_name}}'`)"
        ),
    }
}

/// How a search pattern matches the command text. Case-insensitive unless
/// the pattern has an upper-case letter ("smart case").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Substring,
    Exact,
    Prefix,
    Regex,
}

pub fn smart_case_sensitive(pattern: &str) -> bool {
    pattern.chars().any(char::is_uppercase)
}

/// The ways to find a pattern: `indexed` uses the trigram index when the
/// pattern is long enough; `scan` (when there is an index plan) reads the
/// text of the newest rows instead, which finds a common pattern's newest
/// matches sooner than collecting all of its matches from the index.
#[derive(Debug)]
pub struct PatternPlan {
    pub indexed: Conditions,
    pub scan: Option<Conditions>,
}

/// Conditions for `pattern` on top of `filters`. Substrings of three
/// characters or more go through the trigram index (`commands_fts`), which
/// matches case-insensitively; a case-sensitive search then checks the text
/// itself.
pub fn pattern_plan(filters: Conditions, pattern: &str, kind: MatchKind) -> PatternPlan {
    let sensitive = smart_case_sensitive(pattern);
    let like = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    };
    // The condition on the text alone.
    let (clause, params): (&str, Vec<Value>) = match (kind, sensitive) {
        (MatchKind::Substring, false) => (
            "command LIKE ? ESCAPE '\\'",
            vec![text(format!("%{}%", like(pattern)))],
        ),
        (MatchKind::Substring, true) => ("instr(command, ?) > 0", vec![text(pattern)]),
        (MatchKind::Exact, false) => ("command LIKE ? ESCAPE '\\'", vec![text(like(pattern))]),
        (MatchKind::Exact, true) => ("command = ?", vec![text(pattern)]),
        (MatchKind::Prefix, false) => (
            "command LIKE ? ESCAPE '\\'",
            vec![text(format!("{}%", like(pattern)))],
        ),
        (MatchKind::Prefix, true) => (
            "substr(command, 1, ?) = ?",
            vec![
                Value::Integer(pattern.chars().count() as i64),
                text(pattern),
            ],
        ),
        (MatchKind::Regex, _) => {
            let regex = if sensitive {
                pattern.to_string()
            } else {
                format!("(?i){pattern}")
            };
            ("command REGEXP ?", vec![text(regex)])
        }
    };
    let mut scan = filters.clone();
    scan.push(clause, params.clone());
    if pattern.chars().count() < 3 || kind == MatchKind::Regex {
        return PatternPlan {
            indexed: scan,
            scan: None,
        };
    }
    let mut indexed = filters;
    // An FTS5 phrase: the trigrams of the pattern, in order.
    let phrase = format!("\"{}\"", pattern.replace('"', "\"\""));
    indexed.push(
        "id IN (SELECT rowid FROM commands_fts WHERE commands_fts MATCH ?)",
        [text(phrase)],
    );
    // The index folds case for all of Unicode; LIKE only for ASCII.
    if kind != MatchKind::Substring || sensitive {
        indexed.push(clause, params);
    }
    PatternPlan {
        indexed,
        scan: pattern.is_ascii().then_some(scan),
    }
}
