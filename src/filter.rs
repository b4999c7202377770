//! Which records a `search` or `report` looks at: the filters every query
//! shares and the text pattern, turned into SQL conditions with parameters
//! (never into SQL text: every value is bound).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;

use crate::context::Tmux;
use crate::record::Shell;

/// What a query keeps: every field set must hold (see `--help` of
/// `search` for what each means). Made from the command line by `cli.rs`.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Commands run in this tmux pane (`%3`), on any server unless --socket is given.
    pub pane: Option<String>,

    /// Commands run in the current tmux pane (outside tmux: in the current shell session).
    pub here: bool,

    /// Commands run in this tmux session: its id (`$2` or `2`), or any name a session
    /// had (in the recorded tmux events, or in the running tmux server). Needs the
    /// database: see `Database::conditions`.
    pub session: Option<String>,

    /// Commands run in this tmux window: `SESSION:INDEX` or `@ID`. Needs the database.
    pub window: Option<String>,

    /// Commands typed by this user: in a shared session, the user whose tmux client
    /// typed them; else the shell's user. Needs the database.
    pub typed_by: Option<String>,

    /// Commands run under the tmux server with this socket path.
    pub socket: Option<String>,

    /// Commands started in this directory.
    pub cwd: Option<PathBuf>,

    /// Commands started in this directory or anywhere below it.
    pub cwd_under: Option<PathBuf>,

    /// Commands run by this user.
    pub user: Option<String>,

    /// Commands run on this host.
    pub host: Option<String>,

    /// Commands run in this shell.
    pub shell: Option<Shell>,

    /// Commands that exited with this status.
    pub exit_status: Option<i64>,

    /// Commands that failed (exit status other than 0).
    pub failed: bool,

    /// Commands that succeeded (exit status 0).
    pub succeeded: bool,

    /// Commands started at or after WHEN: 2026-11-25T14:00:00Z, 2026-11-25, "2026-11-25 14:00",
    /// today, yesterday, 2h, "3 days ago".
    pub since: Option<DateTime<Utc>>,

    /// Commands started before WHEN (same forms as --since).
    pub until: Option<DateTime<Utc>>,

    /// Commands that ran at least this long: 500ms, 5s, 2m, 1h30m.
    pub min_duration: Option<chrono::Duration>,

    /// The session of the running tmux server that has the name
    /// [`Filters::session`] gives, when one has: `((socket, server pid),
    /// session id)`. Asking tmux is the command's part (see
    /// `lifecycle::hooks::live_session`), not the query's: a session whose
    /// name no recorded event carries yet is still found.
    pub live_session: Option<((String, i64), i64)>,
}

/// SQL conditions over the `commands` table, joined with AND, and their
/// parameters in order.
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    pub clauses: Vec<String>,
    pub params: Vec<Value>,
}

/// `--cwd-under`'s condition: a range of paths.
pub(crate) const CWD_UNDER: &str = "(cwd = ? OR (cwd >= ? AND cwd < ?))";

/// `--min-duration`'s condition: a range of durations.
pub(crate) const MIN_DURATION: &str = "duration_us >= ?";

impl Conditions {
    /// Puts `new` in the place of the clause `old` (the same parameters).
    pub(crate) fn replace(&mut self, old: &str, new: &str) {
        for clause in &mut self.clauses {
            if clause == old {
                *clause = new.to_string();
            }
        }
    }

    pub(crate) fn push(&mut self, clause: &str, params: impl IntoIterator<Item = Value>) {
        self.clauses.push(clause.to_string());
        self.params.extend(params);
    }

    /// Only the commands run in one of `panes`, each a tmux server's pid and
    /// a pane id of it (`%3`); no pane at all: no command.
    pub fn only_panes(&mut self, panes: &[(i64, String)]) {
        if panes.is_empty() {
            self.push("0", []);
            return;
        }
        let values = vec!["(?, ?)"; panes.len()].join(", ");
        self.push(
            &format!("(tmux_server_pid, tmux_pane) IN (VALUES {values})"),
            panes
                .iter()
                .flat_map(|(pid, pane)| [Value::Integer(*pid), text(pane.as_str())]),
        );
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
    /// `--session $N`: a session id, on any server.
    pub fn session_id(&self) -> Option<i64> {
        self.session.as_deref()?.strip_prefix('$')?.parse().ok()
    }

    /// A session given by name (not `$N`), which the running tmux server
    /// may know as well as the recorded events: see [`Filters::live_session`].
    pub fn session_name(&self) -> Option<&str> {
        self.session
            .as_deref()
            .filter(|_| self.session_id().is_none())
    }

    /// The conditions on the command's own columns. `session`, `window` and
    /// `typed_by` need the tmux events: `Database::conditions` adds them.
    pub fn conditions(&self) -> Result<Conditions> {
        let mut c = Conditions::default();
        if let Some(pane) = &self.pane {
            c.push("tmux_pane = ?", [text(pane_id(pane)?)]);
        }
        if self.here {
            match Tmux::from_env() {
                Some(Tmux {
                    socket,
                    server_pid,
                    pane: Some(pane),
                    ..
                }) => {
                    c.push(
                        "tmux_pane = ? AND tmux_socket = ?",
                        [text(pane), text(socket)],
                    );
                    if let Some(pid) = server_pid {
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
        // A session by its id is a column of the command's; by name it
        // needs the tmux events (`Database::conditions`).
        if let Some(id) = self.session_id() {
            c.push("tmux_session_id = ?", [Value::Integer(id)]);
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
                CWD_UNDER,
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
            c.push(MIN_DURATION, [Value::Integer(us)]);
        }
        Ok(c)
    }
}

/// `dir` as the hooks record directories: absolute, from the shell's logical
/// `$PWD` (symbolic links kept), with `.`, `..` and extra slashes tidied.
fn absolute(dir: &Path) -> Result<String> {
    let base = match std::env::var_os("PWD") {
        Some(pwd) if Path::new(&pwd).is_absolute() => PathBuf::from(pwd),
        _ => std::env::current_dir().context("cannot find the current directory")?,
    };
    let mut tidy = PathBuf::from("/");
    for part in base.join(dir).components() {
        match part {
            Component::ParentDir => {
                tidy.pop();
            }
            Component::Normal(name) => tidy.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    tidy.to_str()
        .map(str::to_string)
        .with_context(|| format!("the directory is not UTF-8: {}", tidy.display()))
}

/// A pane as tmux names it (`%3`), from `%3` or `3`.
fn pane_id(pane: &str) -> Result<String> {
    let digits = pane.strip_prefix('%').unwrap_or(pane);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--pane {pane:?} is not a tmux pane id: give it as %3 (or 3), as `echo $TMUX_PANE` shows it");
    }
    Ok(format!("%{digits}"))
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

/// Smart case for a regex: an upper-case letter that is part of an escape
/// (`\S`, `\W`, `\P{L}`) is not one the user typed to match.
pub fn smart_case_sensitive_regex(pattern: &str) -> bool {
    let mut escaped = false;
    pattern.chars().any(|c| {
        let upper = !escaped && c.is_uppercase();
        escaped = !escaped && c == '\\';
        upper
    })
}

/// The ways to find a pattern. `scan` reads the command text itself;
/// `indexed`, when the pattern is long enough, asks the trigram index
/// first. `scan_is_exact`: the scan finds exactly what the index plan finds
/// (LIKE folds case for ASCII only), so it may answer on its own when it is
/// quicker: for a common pattern, among the newest rows.
#[derive(Debug)]
pub struct PatternPlan {
    pub scan: Conditions,
    pub indexed: Option<Conditions>,
    pub scan_is_exact: bool,
}

/// Conditions for `pattern` on top of `filters`. Substrings of three
/// characters or more go through the trigram index (`commands_fts`), which
/// matches case-insensitively; a case-sensitive search then checks the text
/// itself.
/// A regex that does not compile is an error naming it, in one line.
pub fn pattern_plan(filters: Conditions, pattern: &str, kind: MatchKind) -> Result<PatternPlan> {
    let sensitive = match kind {
        MatchKind::Regex => smart_case_sensitive_regex(pattern),
        _ => smart_case_sensitive(pattern),
    };
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
            if let Err(err) = regex::Regex::new(&regex) {
                // The regex crate explains over several lines; the last says what is wrong.
                let reason = err.to_string();
                let reason = reason
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .trim()
                    .to_string();
                bail!("invalid regex {pattern:?}: {reason}");
            }
            ("command REGEXP ?", vec![text(regex)])
        }
    };
    let mut scan = filters.clone();
    scan.push(clause, params.clone());
    if pattern.chars().count() < 3 || kind == MatchKind::Regex {
        return Ok(PatternPlan {
            scan,
            indexed: None,
            scan_is_exact: true,
        });
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
    Ok(PatternPlan {
        scan,
        indexed: Some(indexed),
        scan_is_exact: pattern.is_ascii(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pattern: &str, kind: MatchKind) -> PatternPlan {
        pattern_plan(Conditions::default(), pattern, kind).unwrap()
    }

    #[test]
    fn an_upper_case_letter_typed_makes_a_regex_case_sensitive() {
        assert!(!smart_case_sensitive_regex("git st"));
        assert!(smart_case_sensitive_regex("Git"));
        assert!(smart_case_sensitive_regex(r"\d+ Files"));
        // Escapes are not letters typed to match.
        assert!(!smart_case_sensitive_regex(r"\S+\s\W"));
        // An escaped backslash escapes nothing after it.
        assert!(smart_case_sensitive_regex(r"\\S"));
    }

    #[test]
    fn the_text_index_is_asked_for_three_characters_or_more_and_never_for_a_regex() {
        assert!(plan("ls", MatchKind::Substring).indexed.is_none());
        assert!(plan("git", MatchKind::Substring).indexed.is_some());
        assert!(plan("git status", MatchKind::Prefix).indexed.is_some());
        assert!(plan("git status", MatchKind::Regex).indexed.is_none());
        assert!(plan("gi", MatchKind::Regex).indexed.is_none());
    }

    #[test]
    fn a_regex_is_case_insensitive_unless_a_letter_typed_is_upper_case() {
        let regex = |pattern: &str| match plan(pattern, MatchKind::Regex).scan.params.last() {
            Some(Value::Text(regex)) => regex.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(regex(r"\S+ make"), r"(?i)\S+ make");
        assert_eq!(regex(r"\S+ Make"), r"\S+ Make");
    }

    /// The index finds the trigrams anywhere and in any case: every kind
    /// but a case-insensitive substring checks the text itself as well.
    #[test]
    fn the_index_plan_rechecks_the_text_unless_the_index_says_it_all() {
        for (kind, pattern, rechecked) in [
            (MatchKind::Substring, "git", false),
            (MatchKind::Substring, "Git", true),
            (MatchKind::Exact, "git", true),
            (MatchKind::Exact, "Git", true),
            (MatchKind::Prefix, "git", true),
            (MatchKind::Prefix, "Git", true),
        ] {
            let plan = plan(pattern, kind);
            let indexed = plan.indexed.unwrap();
            let text_clause = plan.scan.clauses.last().unwrap();
            assert_eq!(
                indexed.clauses.contains(text_clause),
                rechecked,
                "{kind:?} {pattern:?}: {indexed:?}"
            );
            assert_eq!(indexed.clauses.len(), 1 + usize::from(rechecked));
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use rusqlite::Connection;

    use super::*;

    /// A table of commands with its trigram index, as the schema has them.
    fn commands(texts: &[String]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE commands (id INTEGER PRIMARY KEY, command TEXT NOT NULL);
             CREATE VIRTUAL TABLE commands_fts USING fts5(command, content = 'commands',
                 content_rowid = 'id', tokenize = 'trigram', columnsize = 0);",
        )
        .unwrap();
        for text in texts {
            conn.execute("INSERT INTO commands (command) VALUES (?1)", [text])
                .unwrap();
        }
        conn.execute_batch("INSERT INTO commands_fts (commands_fts) VALUES ('rebuild')")
            .unwrap();
        conn
    }

    /// The commands that `conditions` selects, in id order.
    fn selected(conn: &Connection, conditions: &Conditions) -> Vec<String> {
        let sql = format!(
            "SELECT command FROM commands {} ORDER BY id",
            conditions.where_sql()
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let params = rusqlite::params_from_iter(conditions.params.iter());
        stmt.query_map(params, |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    proptest! {
        /// Any pattern gives conditions that, by scan and by the trigram
        /// index alike, find the texts holding it as the kind says (itself,
        /// and the near misses around it), or, for a regex that does not
        /// compile, a one-line error naming it.
        #[test]
        fn patterns_find_what_their_kind_says(pattern in "\\PC{0,30}") {
            // Around the pattern a letter of no case it could fold to:
            // the texts differ from the pattern only where the kind looks.
            let texts: Vec<String> = [
                pattern.clone(),
                format!("{pattern}x"),
                format!("x{pattern}"),
                format!("x{pattern}x"),
            ]
            .into();
            let conn = commands(&texts);
            for kind in [MatchKind::Substring, MatchKind::Exact, MatchKind::Prefix] {
                let plan = pattern_plan(Conditions::default(), &pattern, kind);
                prop_assert!(plan.is_ok(), "{kind:?} {pattern:?}: {plan:?}");
                let plan = plan.unwrap();
                // Sensitive or not, the texts hold the pattern exactly as typed.
                let expected: Vec<String> = texts
                    .iter()
                    .filter(|t| match kind {
                        MatchKind::Substring => t.contains(&pattern),
                        MatchKind::Exact => **t == pattern,
                        MatchKind::Prefix => t.starts_with(&pattern),
                        MatchKind::Regex => unreachable!(),
                    })
                    .cloned()
                    .collect();
                prop_assert_eq!(&selected(&conn, &plan.scan), &expected, "{:?} scan", kind);
                prop_assert_eq!(
                    plan.indexed.is_some(),
                    pattern.chars().count() >= 3,
                    "{:?}: the index is used from three characters on",
                    kind
                );
                if let Some(indexed) = &plan.indexed {
                    prop_assert_eq!(&selected(&conn, indexed), &expected, "{:?} index", kind);
                }
            }
            match pattern_plan(Conditions::default(), &pattern, MatchKind::Regex) {
                Ok(plan) => {
                    prop_assert!(plan.indexed.is_none());
                    let Some(Value::Text(regex)) = plan.scan.params.first() else {
                        panic!("{pattern:?}: {plan:?}");
                    };
                    prop_assert!(regex.ends_with(&pattern), "{regex:?}");
                    prop_assert!(regex::Regex::new(regex).is_ok(), "{regex:?}");
                }
                Err(err) => {
                    let err = err.to_string();
                    let compiles = |r: &str| regex::Regex::new(r).is_ok();
                    prop_assert!(
                        !compiles(&pattern) || !compiles(&format!("(?i){pattern}")),
                        "{pattern:?}: {err}"
                    );
                    prop_assert!(!err.contains('\n'), "{err}");
                    prop_assert!(err.contains(&format!("{pattern:?}")), "{err}");
                }
            }
        }
    }
}
