//! The interactive picker's model (`tmux-audit pick`), with no terminal:
//! the scopes it can show, the filter typed so far, the rows found, the
//! selection, how each key changes them, and the lines a frame shows.
//! `cmd/pick.rs` owns the terminal: it reads keys, hands them to
//! [`Picker::press`], asks [`Finder`] for rows when [`Picker::wanted`] says
//! so, and draws [`Picker::frame`].
//!
//! Rows are found lazily: only a screenful and a margin of the newest
//! matches (`LIMIT`), again after each key, so opening the picker costs
//! the same at a thousand rows as at a million.

use anyhow::Result;
use rusqlite::types::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::context::Tmux;
use crate::db::{Database, SearchQuery, StoredCommand};
use crate::filter::{pattern_plan, Conditions, MatchKind};

/// Which commands the picker looks at. A key cycles through them in this
/// order; the ones this shell cannot name (outside tmux) are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This tmux pane (outside tmux: this shell session).
    Pane,
    /// This tmux session, on this tmux server.
    Session,
    /// This host.
    Host,
    /// Every command in the database.
    Everything,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Pane => "pane",
            Scope::Session => "session",
            Scope::Host => "host",
            Scope::Everything => "everything",
        }
    }
}

/// Where the picker runs, as far as the scopes need it.
#[derive(Debug, Clone, Default)]
pub struct Here {
    /// `$TMUX` and the pane (`$TMUX_PANE`, or the pane named on the command line).
    pub tmux: Option<Tmux>,
    /// `$TMUX_AUDIT_SESSION`: this shell session, when not in a tmux pane.
    pub shell_session: Option<String>,
    pub host: Option<String>,
}

impl Here {
    /// From the environment; `pane` (`%3`) stands for `$TMUX_PANE` when
    /// given (a tmux popup is not a pane: its binding names the pane).
    pub fn from_env(pane: Option<String>) -> Here {
        let mut tmux = Tmux::from_env();
        if let (Some(tmux), Some(pane)) = (tmux.as_mut(), pane) {
            tmux.pane = Some(pane);
        }
        Here {
            tmux,
            shell_session: std::env::var("TMUX_AUDIT_SESSION")
                .ok()
                .filter(|s| !s.is_empty()),
            host: whoami::fallible::hostname().ok().filter(|h| !h.is_empty()),
        }
    }

    /// The scopes that can be named from here, each with its conditions,
    /// narrowest first.
    pub fn scopes(&self) -> Vec<(Scope, Conditions)> {
        let text = |s: &str| Value::Text(s.to_string());
        let mut scopes = Vec::new();
        let server = |c: &mut Conditions, tmux: &Tmux| {
            c.push("tmux_socket = ?", [text(&tmux.socket)]);
            if let Some(pid) = tmux.server_pid {
                c.push("tmux_server_pid = ?", [Value::Integer(pid)]);
            }
        };
        match (&self.tmux, &self.shell_session) {
            (
                Some(
                    tmux @ Tmux {
                        pane: Some(pane), ..
                    },
                ),
                _,
            ) => {
                let mut c = Conditions::default();
                c.push("tmux_pane = ?", [text(pane)]);
                server(&mut c, tmux);
                scopes.push((Scope::Pane, c));
            }
            (_, Some(session)) => {
                let mut c = Conditions::default();
                c.push("shell_session = ?", [text(session)]);
                scopes.push((Scope::Pane, c));
            }
            _ => {}
        }
        if let Some(
            tmux @ Tmux {
                session_id: Some(id),
                ..
            },
        ) = &self.tmux
        {
            let mut c = Conditions::default();
            c.push("tmux_session_id = ?", [Value::Integer(*id)]);
            server(&mut c, tmux);
            scopes.push((Scope::Session, c));
        }
        if let Some(host) = &self.host {
            let mut c = Conditions::default();
            c.push("host = ?", [text(host)]);
            scopes.push((Scope::Host, c));
        }
        scopes.push((Scope::Everything, Conditions::default()));
        scopes
    }
}

/// A key, as the picker understands it (the terminal layer maps the
/// terminal's keys to these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Text typed or pasted into the filter.
    Type(String),
    Backspace,
    /// Ctrl-W: the last word of the filter.
    DeleteWord,
    /// Ctrl-U: the whole filter.
    ClearFilter,
    /// Towards older commands (up the screen).
    Older,
    /// Towards newer commands (down the screen, towards the prompt).
    Newer,
    PageOlder,
    PageNewer,
    NextScope,
    Accept,
    /// Esc, Ctrl-G: leave, the command line untouched.
    Cancel,
    /// Ctrl-C: as Cancel, exit status 130.
    Interrupt,
}

/// What a key leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// The chosen command's exact bytes.
    Accept(Vec<u8>),
    Cancel,
    Interrupt,
}

/// How many rows beyond a screenful a query brings, so that a few moves
/// of the selection need no new query.
const MARGIN: usize = 50;

/// The picker's state.
#[derive(Debug)]
pub struct Picker {
    filter: String,
    scopes: Vec<(Scope, Conditions)>,
    scope: usize,
    rows: Vec<StoredCommand>,
    /// Index into `rows`: 0 is the newest.
    selected: usize,
    /// How many rows to ask for.
    limit: usize,
    /// The rows no longer answer the filter, scope or limit.
    stale: bool,
    /// Rows that fit on the screen, as last drawn.
    page: usize,
    /// Why the last query failed (shown in place of the rows).
    error: Option<String>,
}

impl Picker {
    /// `scope`: the one to start in, when it can be named here (else the
    /// widest).
    pub fn new(scopes: Vec<(Scope, Conditions)>, start: Scope, filter: &str) -> Picker {
        let scope = scopes
            .iter()
            .position(|(s, _)| *s == start)
            .unwrap_or(scopes.len().saturating_sub(1));
        Picker {
            filter: filter.to_string(),
            scopes,
            scope,
            rows: Vec::new(),
            selected: 0,
            limit: MARGIN,
            stale: true,
            page: 0,
            error: None,
        }
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    pub fn scope(&self) -> Scope {
        self.scopes[self.scope].0
    }

    pub fn selected(&self) -> Option<&StoredCommand> {
        self.rows.get(self.selected)
    }

    /// The query to run now, if the rows are stale: the scope's
    /// conditions, the filter typed, and how many rows.
    pub fn wanted(&self) -> Option<(Conditions, String, usize)> {
        self.stale.then(|| {
            (
                self.scopes[self.scope].1.clone(),
                self.filter.clone(),
                self.limit,
            )
        })
    }

    /// The answer to [`Picker::wanted`].
    pub fn found(&mut self, rows: Result<Vec<StoredCommand>>) {
        self.stale = false;
        match rows {
            Ok(rows) => {
                self.rows = rows;
                self.error = None;
            }
            Err(err) => {
                self.rows.clear();
                self.error = Some(format!("{err:#}"));
            }
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// The screen holds `rows` rows: enough are asked for.
    pub fn set_page(&mut self, rows: usize) {
        self.page = rows;
        if self.limit < rows + MARGIN {
            self.limit = rows + MARGIN;
            self.stale = true;
        }
    }

    pub fn press(&mut self, key: Key) -> Outcome {
        match key {
            Key::Type(text) => {
                // A newline typed or pasted into the filter is a space.
                let text: String = text
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                self.filter.push_str(&text);
                self.refilter();
            }
            Key::Backspace => {
                if self.filter.pop().is_some() {
                    self.refilter();
                }
            }
            Key::DeleteWord => {
                let kept = self.filter.trim_end();
                let kept = kept.rfind(' ').map_or(0, |i| i + 1);
                if kept < self.filter.len() {
                    self.filter.truncate(kept);
                    self.refilter();
                }
            }
            Key::ClearFilter => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refilter();
                }
            }
            Key::Older => self.move_by(1),
            Key::Newer => self.move_by(-1),
            Key::PageOlder => self.move_by(self.page.max(1) as isize),
            Key::PageNewer => self.move_by(-(self.page.max(1) as isize)),
            Key::NextScope => {
                self.scope = (self.scope + 1) % self.scopes.len();
                self.refilter();
            }
            Key::Accept => {
                if let Some(row) = self.selected() {
                    let record = &row.record;
                    let bytes = record
                        .command_raw
                        .clone()
                        .unwrap_or_else(|| record.command.clone().into_bytes());
                    return Outcome::Accept(bytes);
                }
            }
            Key::Cancel => return Outcome::Cancel,
            Key::Interrupt => return Outcome::Interrupt,
        }
        Outcome::Continue
    }

    /// A new filter or scope: the newest match is selected again.
    fn refilter(&mut self) {
        self.selected = 0;
        self.limit = self.page + MARGIN;
        self.stale = true;
    }

    fn move_by(&mut self, by: isize) {
        let last = self.rows.len().saturating_sub(1);
        let to = self.selected.saturating_add_signed(by);
        // Past the rows brought so far, when there may be more: ask for more.
        if to > last && self.rows.len() == self.limit {
            self.limit = to + 1 + self.page.max(1) + MARGIN;
            self.stale = true;
            self.selected = to;
            return;
        }
        self.selected = to.min(last);
    }

    /// The lines of a `width` × `height` screen, top to bottom: the rows,
    /// the newest at the bottom next to the filter, then the scopes and
    /// the filter.
    pub fn frame(&self, width: usize, height: usize) -> Frame {
        let list = height.saturating_sub(2);
        let mut lines = vec![Line::default(); list];
        let first = self.selected.saturating_sub(list.saturating_sub(1));
        let empty = if let Some(err) = &self.error {
            Some((format!("  {err}"), true))
        } else if self.rows.is_empty() && !self.stale {
            let scope = self.scope().name();
            Some((format!("  no command in this {scope} matches"), false))
        } else {
            None
        };
        if let (Some((text, failed)), Some(line)) = (empty, lines.last_mut()) {
            line.text = fit(&text, width);
            line.failed = failed;
        }
        let cwd_width = (width / 5).clamp(8, 30);
        for (n, row) in self.rows.iter().enumerate().skip(first).take(list) {
            let line = &mut lines[list - 1 - (n - first)];
            *line = row_line(row, n == self.selected, width, cwd_width);
        }
        let mut scopes = String::new();
        for (i, (scope, _)) in self.scopes.iter().enumerate() {
            let name = scope.name();
            if i == self.scope {
                scopes.push_str(&format!("[{name}] "));
            } else {
                scopes.push_str(&format!(" {name}  "));
            }
        }
        let keys = "C-r scope  Enter pick  Esc leave";
        let status = if scopes.width() + keys.width() < width {
            format!("{scopes}{:>pad$}", keys, pad = width - scopes.width())
        } else {
            scopes
        };
        lines.push(Line {
            text: fit(&status, width),
            status: true,
            ..Line::default()
        });
        let prompt = format!("> {}", crate::render::one_line(&self.filter, usize::MAX));
        let cursor = prompt.width().min(width.saturating_sub(1));
        lines.push(Line {
            text: fit(&prompt, width),
            ..Line::default()
        });
        Frame {
            lines,
            cursor: (cursor, height.saturating_sub(1)),
        }
    }
}

/// One line of a frame, and how to show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// The selected row.
    pub selected: bool,
    /// A command that failed (or an error).
    pub failed: bool,
    /// The line of scopes and keys.
    pub status: bool,
}

/// What a screen shows, and where the cursor stands (column, line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub lines: Vec<Line>,
    pub cursor: (usize, usize),
}

/// `> 130 11-29 07:08 %3   ~/src/app         cargo test`
fn row_line(row: &StoredCommand, selected: bool, width: usize, cwd_width: usize) -> Line {
    let r = &row.record;
    let status = r
        .exit_status
        .map_or_else(|| "?".to_string(), |s| s.to_string());
    let time = crate::timespec::local_format(r.started_at_us, "%m-%d %H:%M");
    let pane = crate::render::one_line(r.tmux_pane.as_deref().unwrap_or("-"), usize::MAX);
    let cwd = crate::render::tilde(&r.cwd, crate::render::home().as_deref());
    let mark = if selected { ">" } else { " " };
    let text = format!(
        "{mark} {status:>3} {time} {pane:<4} {:<cwd_width$} {}",
        fit_left(&cwd, cwd_width),
        crate::render::one_line(&r.command, usize::MAX),
    );
    Line {
        text: fit(&text, width),
        selected,
        failed: r.exit_status.is_some_and(|s| s != 0),
        status: false,
    }
}

/// `text` cut to `width` display columns, an ellipsis marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `text` cut from the left to `width` columns: a directory keeps its end.
fn fit_left(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut kept = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// Runs the picker's queries on a database: the same substring match and
/// smart case as `search` (the patterns of `filter.rs`, the trigram index
/// when the filter is three characters or more), newest first.
pub struct Finder {
    db: Database,
    /// Whether the text index covers every row: unknown until a filter
    /// needs it (bringing it up to date is not worth delaying the first
    /// frame for).
    index: Option<bool>,
}

impl Finder {
    pub fn new(db: Database) -> Finder {
        Finder { db, index: None }
    }

    pub fn find(
        &mut self,
        conditions: Conditions,
        filter: &str,
        limit: usize,
    ) -> Result<Vec<StoredCommand>> {
        let mut query = SearchQuery {
            conditions,
            scan_first: None,
            limit: Some(limit),
            unique: false,
        };
        if !filter.is_empty() {
            let plan = pattern_plan(query.conditions.clone(), filter, MatchKind::Substring)?;
            query.conditions = match plan.indexed {
                Some(indexed) if self.index_ready() => {
                    query.scan_first = plan.scan_is_exact.then_some(plan.scan);
                    indexed
                }
                _ => plan.scan,
            };
        }
        Ok(self.db.search(&query)?)
    }

    fn index_ready(&mut self) -> bool {
        *self.index.get_or_insert_with(|| {
            let ready = self.db.update_search_index();
            if ready {
                self.db.fold_wal();
            }
            ready
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::CommandRecord;

    fn row(id: i64, command: &str, exit: i64) -> StoredCommand {
        StoredCommand {
            id,
            recorded_at_us: 0,
            record: CommandRecord {
                command: command.to_string(),
                exit_status: Some(exit),
                started_at_us: 1_700_000_000_000_000 + id,
                cwd: "/srv/app".to_string(),
                tmux_pane: Some("%3".to_string()),
                ..CommandRecord::default()
            },
            placement: None,
        }
    }

    fn here() -> Here {
        Here {
            tmux: Some(Tmux::parse("/tmp/tmux-0/default,42,7", Some("%3".into()))),
            shell_session: None,
            host: Some("box".into()),
        }
    }

    fn picker(filter: &str) -> Picker {
        let mut p = Picker::new(here().scopes(), Scope::Everything, filter);
        p.set_page(10);
        p
    }

    fn typed(p: &mut Picker, text: &str) {
        assert_eq!(p.press(Key::Type(text.into())), Outcome::Continue);
    }

    #[test]
    fn each_scope_names_where_the_picker_runs() {
        let scopes = here().scopes();
        let names: Vec<Scope> = scopes.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            names,
            [Scope::Pane, Scope::Session, Scope::Host, Scope::Everything]
        );
        let pane = &scopes[0].1;
        assert_eq!(
            pane.clauses,
            ["tmux_pane = ?", "tmux_socket = ?", "tmux_server_pid = ?"]
        );
        assert_eq!(pane.params[0], Value::Text("%3".into()));
        assert_eq!(scopes[1].1.params[0], Value::Integer(7));
        assert_eq!(scopes[2].1.params[0], Value::Text("box".into()));
        assert!(scopes[3].1.clauses.is_empty());
        // Outside tmux: this shell session, and no tmux session to name.
        let outside = Here {
            tmux: None,
            shell_session: Some("bash.1".into()),
            host: Some("box".into()),
        };
        let scopes = outside.scopes();
        assert_eq!(scopes.len(), 3);
        assert_eq!(scopes[0].1.clauses, ["shell_session = ?"]);
    }

    #[test]
    fn typing_asks_again_with_the_filter_and_selects_the_newest() {
        let mut p = picker("");
        let (conditions, filter, limit) = p.wanted().unwrap();
        assert!(conditions.clauses.is_empty());
        assert_eq!(filter, "");
        assert!(limit >= 10, "{limit}");
        p.found(Ok(vec![row(3, "c", 0), row(2, "b", 0), row(1, "a", 0)]));
        assert!(p.wanted().is_none());
        p.press(Key::Older);
        assert_eq!(p.selected().unwrap().id, 2);
        typed(&mut p, "gi");
        typed(&mut p, "t");
        assert_eq!(p.wanted().unwrap().1, "git");
        assert_eq!(p.selected, 0);
        p.press(Key::Backspace);
        assert_eq!(p.wanted().unwrap().1, "gi");
        typed(&mut p, "t sta");
        p.press(Key::DeleteWord);
        assert_eq!(p.filter(), "git ");
        p.press(Key::ClearFilter);
        assert_eq!(p.filter(), "");
        // A pasted line break is not sent to the query.
        typed(&mut p, "a\nb");
        assert_eq!(p.filter(), "a b");
    }

    #[test]
    fn the_scope_key_cycles_through_the_scopes() {
        let mut p = Picker::new(here().scopes(), Scope::Pane, "x");
        let mut seen = vec![p.scope()];
        for _ in 0..4 {
            p.found(Ok(vec![]));
            p.press(Key::NextScope);
            let (conditions, filter, _) = p.wanted().expect("a new scope asks again");
            assert_eq!(filter, "x", "the filter is kept");
            assert_eq!(conditions.clauses, p.scopes[p.scope].1.clauses);
            seen.push(p.scope());
        }
        assert_eq!(
            seen,
            [
                Scope::Pane,
                Scope::Session,
                Scope::Host,
                Scope::Everything,
                Scope::Pane
            ]
        );
        // A scope that cannot be named here starts in the widest.
        let outside = Here {
            host: Some("box".into()),
            ..Here::default()
        };
        assert_eq!(
            Picker::new(outside.scopes(), Scope::Session, "").scope(),
            Scope::Everything
        );
    }

    #[test]
    fn the_selection_stays_on_the_rows_and_asks_for_more_at_the_end() {
        let mut p = picker("");
        let limit = p.wanted().unwrap().2;
        let rows: Vec<StoredCommand> = (0..limit as i64).rev().map(|i| row(i, "x", 0)).collect();
        p.found(Ok(rows));
        p.press(Key::Newer);
        assert_eq!(p.selected, 0, "no newer row than the newest");
        p.press(Key::PageOlder);
        assert_eq!(p.selected, 10);
        p.press(Key::PageNewer);
        assert_eq!(p.selected, 0);
        for _ in 0..limit - 1 {
            p.press(Key::Older);
        }
        assert_eq!(p.selected, limit - 1);
        assert!(p.wanted().is_none());
        p.press(Key::Older);
        let more = p.wanted().expect("past the last row brought: more");
        assert!(more.2 > limit);
        // Fewer came back than asked: the selection stays on the oldest.
        p.found(Ok((0..limit as i64 + 3)
            .rev()
            .map(|i| row(i, "x", 0))
            .collect()));
        assert_eq!(p.selected, limit);
        for _ in 0..5 {
            p.press(Key::Older);
        }
        assert_eq!(p.selected, limit + 2);
        assert!(p.wanted().is_none(), "every row is here");
    }

    #[test]
    fn enter_gives_the_exact_bytes_and_leaving_gives_nothing() {
        let mut p = picker("");
        assert_eq!(p.press(Key::Accept), Outcome::Continue, "nothing to pick");
        let mut multi = row(2, "for f in *\ndo echo $f\ndone", 0);
        p.found(Ok(vec![multi.clone(), row(1, "ls", 0)]));
        assert_eq!(
            p.press(Key::Accept),
            Outcome::Accept(b"for f in *\ndo echo $f\ndone".to_vec())
        );
        // Not UTF-8: the bytes as recorded.
        multi.record.command_raw = Some(b"echo \xff".to_vec());
        p.found(Ok(vec![multi]));
        assert_eq!(p.press(Key::Accept), Outcome::Accept(b"echo \xff".to_vec()));
        assert_eq!(p.press(Key::Cancel), Outcome::Cancel);
        assert_eq!(p.press(Key::Interrupt), Outcome::Interrupt);
    }

    #[test]
    fn a_frame_shows_the_newest_next_to_the_filter_fitted_to_the_width() {
        let mut p = picker("ca");
        p.set_page(3);
        p.found(Ok(vec![
            row(
                3,
                "cargo build --release --locked --all-targets --features x",
                101,
            ),
            row(2, "cat\nREADME.md\x1b[2J", 0),
        ]));
        p.press(Key::Older);
        let frame = p.frame(60, 5);
        let text: Vec<&str> = frame.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(text.len(), 5);
        assert_eq!(text[0], "");
        assert!(text[1].starts_with(">   0 "), "{text:?}");
        assert!(text[1].contains(" %3   /srv/app "), "{text:?}");
        assert!(text[1].ends_with("cat⏎README.md\\x1b[2J"), "{text:?}");
        assert!(frame.lines[1].selected && !frame.lines[1].failed);
        assert!(text[2].starts_with("  101 "), "{text:?}");
        assert!(text[2].ends_with('…'), "{text:?}");
        assert!(frame.lines[2].failed);
        for line in &text {
            assert!(line.width() <= 60, "{line:?}");
        }
        assert!(text[3].starts_with("[everything]") || text[3].contains("[everything]"));
        assert_eq!(text[4], "> ca");
        assert_eq!(frame.cursor, (4, 4));
        // Nothing found: said so.
        p.found(Ok(vec![]));
        let frame = p.frame(60, 5);
        assert!(frame.lines[2]
            .text
            .contains("no command in this everything matches"));
    }

    #[test]
    fn a_long_directory_keeps_its_end() {
        assert_eq!(fit_left("~/src/tmux-audit", 10), "…mux-audit");
        assert_eq!(fit_left("~/src", 10), "~/src");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("日本語", 4), "日…");
    }
}
