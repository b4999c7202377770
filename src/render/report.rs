//! How a report looks: a titled table with a totals row, or JSON and CSV
//! with every figure.

use std::fmt::Write as _;
use std::io::{self, Write};

use anyhow::Context as _;

use comfy_table::{CellAlignment, Color};
use serde::Serialize;
use unicode_width::UnicodeWidthChar;

use super::{
    cell, cut_at, cut_to_width, finish, home, human_duration, new_table, one_line, one_line_width,
    push_duration, push_one_line, push_tilde, room_left, short_time, shown_on_one_line,
    table_width, text_width, utc_time, Column,
};
use crate::db::{GroupBy, ReportRow, RowTexts, Totals};
use crate::timespec::push_local_minute;

/// The narrowest the group name or the top command gets before other
/// columns give way.
const MIN_FLEXIBLE: usize = 20;

/// Minutes are enough for a report's first and last times, and keep the table narrow.
fn local_minute(us: i64) -> String {
    crate::timespec::local_minute(us, true)
}

/// A report row as JSON and CSV show it.
#[derive(Serialize)]
pub struct ReportJson<'a> {
    group: String,
    tmux_pane: Option<&'a str>,
    tmux_server: Option<String>,
    tmux_session_id: Option<i64>,
    tmux_session_name: Option<&'a str>,
    tmux_window_index: Option<i64>,
    tmux_window_name: Option<&'a str>,
    shell_session: Option<&'a str>,
    users: &'a str,
    hosts: &'a str,
    commands: i64,
    failures: i64,
    failure_percent: f64,
    first: String,
    last: String,
    total_duration_ms: f64,
    longest_ms: f64,
    top_cwd: Option<&'a str>,
    top_command: Option<&'a str>,
}

/// Each group carries only its own fields: a pane, session or window
/// names its tmux server and itself; a day, user or command has no pane
/// (any pane of its rows would be an arbitrary member's).
pub fn json_rows(rows: &[ReportRow], by: GroupBy) -> Vec<ReportJson<'_>> {
    rows.iter().map(|r| json_row(r, by)).collect()
}

/// One report row as JSON and CSV show it (see [`json_rows`]).
pub fn json_row(r: &ReportRow, by: GroupBy) -> ReportJson<'_> {
    let (pane, session, window) = match by {
        GroupBy::Pane => (true, false, false),
        GroupBy::Session => (false, true, false),
        GroupBy::Window => (false, true, true),
        _ => (false, false, false),
    };
    ReportJson {
        group: label(r, by),
        tmux_pane: r.tmux_pane.as_deref().filter(|_| pane),
        tmux_server: server(r).filter(|_| pane || session),
        tmux_session_id: r.tmux_session_id.filter(|_| session),
        tmux_session_name: r.session_name.as_deref().filter(|_| session),
        tmux_window_index: r.window_index.filter(|_| window),
        tmux_window_name: r.window_name.as_deref().filter(|_| window),
        shell_session: (by == GroupBy::Pane && r.tmux_pane.is_none())
            .then_some(r.shell_session.as_str()),
        users: &r.users,
        hosts: &r.hosts,
        commands: r.commands,
        failures: r.failures,
        failure_percent: percent(r.failures, r.commands),
        first: utc_time(r.first_us),
        last: utc_time(r.last_us),
        total_duration_ms: r.total_duration_us as f64 / 1000.0,
        longest_ms: r.longest_us as f64 / 1000.0,
        top_cwd: r.top_cwd.as_deref(),
        top_command: r.top_command.as_deref(),
    }
}

/// One decimal; never rounded up to 100 unless all failed, nor down to 0
/// unless none did.
fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    let p = (part as f64 * 1000.0 / whole as f64).round() / 10.0;
    match p {
        p if p >= 100.0 && part < whole => 99.9,
        p if p <= 0.0 && part > 0 => 0.1,
        p => p,
    }
}

/// A whole percentage, but one decimal where rounding would claim that all
/// or none failed when that is not so: `100%`, `99.9%`, `33%`, `0.1%`, `0%`,
/// written at the end of `out`.
fn push_percent_label(out: &mut String, part: i64, whole: i64) {
    let p = percent(part, whole);
    let whole_percent = p.round();
    if (whole_percent >= 100.0 && part < whole) || (whole_percent <= 0.0 && part > 0) {
        let _ = write!(out, "{p:.1}%");
    } else {
        // A whole number from 0 to 100: as an integer, quicker to write.
        push_count(out, whole_percent as i64);
        out.push('%');
    }
}

/// `default:4242`: the socket's file name and the server pid.
fn server(r: &ReportRow) -> Option<String> {
    let socket = r.tmux_socket.as_deref()?;
    let name = socket.rsplit('/').next().unwrap_or(socket);
    Some(match r.tmux_server_pid {
        Some(pid) => format!("{name}:{pid}"),
        None => name.to_string(),
    })
}

/// What names the group in the first column.
fn label(r: &ReportRow, by: GroupBy) -> String {
    match by {
        GroupBy::Pane => match &r.tmux_pane {
            Some(pane) => pane.clone(),
            None => format!("shell {}", short_session(&r.shell_session)),
        },
        GroupBy::Session => match (&r.session_name, r.tmux_session_id) {
            (Some(name), _) => one_line(name, 60),
            (None, Some(id)) => format!("${id}"),
            (None, None) => "(outside tmux)".to_string(),
        },
        GroupBy::Window => match (r.tmux_socket.is_some(), r.window_index) {
            (false, _) => "(outside tmux)".to_string(),
            (true, Some(index)) => {
                let session = r
                    .session_name
                    .as_deref()
                    .map_or_else(|| "?".to_string(), |n| one_line(n, 40));
                let name = r
                    .window_name
                    .as_deref()
                    .map_or(String::new(), |n| format!(" ({})", one_line(n, 40)));
                format!("{session}:{index}{name}")
            }
            (true, None) => "(window unknown: no tmux events)".to_string(),
        },
        _ => r.key.clone(),
    }
}

/// `bash.1234.1764…` → `bash.1234`: shell and pid are enough to tell apart.
fn short_session(id: &str) -> String {
    id.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

/// `1,234,567`.
fn count(n: i64) -> String {
    let mut out = String::new();
    push_count(&mut out, n);
    out
}

/// [`count`] written at the end of `out`.
fn push_count(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = &digits[start..];
    for (i, &d) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(char::from(d));
    }
}

/// The columns a report's table may have, in the order they appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Group,
    Server,
    Users,
    Cmds,
    Failed,
    First,
    Last,
    Total,
    Longest,
    TopCwd,
    TopCommand,
}

impl Col {
    /// The columns of a report grouped `by`, before any gives way.
    fn all_for(by: GroupBy) -> Vec<Col> {
        let mut cols = vec![Col::Group];
        if matches!(by, GroupBy::Pane | GroupBy::Session | GroupBy::Window) {
            cols.extend([Col::Server, Col::Users]);
        }
        cols.extend([
            Col::Cmds,
            Col::Failed,
            Col::First,
            Col::Last,
            Col::Total,
            Col::Longest,
        ]);
        if by != GroupBy::Cwd {
            cols.push(Col::TopCwd);
        }
        if by != GroupBy::Command {
            cols.push(Col::TopCommand);
        }
        cols
    }

    /// The column that takes what the others leave: the group when it is a
    /// command or a directory, else the top command.
    fn flexible(by: GroupBy) -> Col {
        if matches!(by, GroupBy::Command | GroupBy::Cwd) {
            Col::Group
        } else {
            Col::TopCommand
        }
    }

    fn header(self, by: GroupBy) -> &'static str {
        match self {
            Col::Group => group_header(by),
            Col::Server => "server",
            Col::Users => "users",
            Col::Cmds => "cmds",
            Col::Failed => "failed",
            Col::First => "first",
            Col::Last => "last",
            Col::Total => "total",
            Col::Longest => "longest",
            Col::TopCwd => "top cwd",
            Col::TopCommand => "top command",
        }
    }

    /// The texts of a group's row the column shows (see [`Col::write`]).
    fn texts(self, by: GroupBy) -> RowTexts {
        let mut texts = RowTexts::NONE;
        match self {
            Col::Group => {
                texts.place = matches!(by, GroupBy::Pane | GroupBy::Session | GroupBy::Window)
            }
            Col::Server => texts.place = true,
            Col::Users => texts.users = true,
            Col::TopCwd => texts.top_cwd = true,
            Col::TopCommand => texts.top_command = true,
            Col::Cmds | Col::Failed | Col::First | Col::Last | Col::Total | Col::Longest => {}
        }
        texts
    }

    fn right(self) -> bool {
        matches!(self, Col::Cmds | Col::Failed | Col::Total | Col::Longest)
    }

    /// A group's cell as shown, on one line (see [`one_line`]); `short`:
    /// times without the year (a narrow terminal).
    fn cell(self, r: &ReportRow, by: GroupBy, home: Option<&str>, short: bool) -> String {
        let mut text = String::new();
        self.write(r, by, home, short, &mut text);
        shown_on_one_line(text)
    }

    /// A group's cell written at the end of `out` (not yet made one line).
    fn write(self, r: &ReportRow, by: GroupBy, home: Option<&str>, short: bool, out: &mut String) {
        match self {
            Col::Group => match by {
                GroupBy::Cwd => push_tilde(out, &r.key, home),
                GroupBy::Command => push_one_line(out, &r.key, 200),
                _ => out.push_str(&label(r, by)),
            },
            Col::Server => match server(r) {
                Some(server) => out.push_str(&server),
                None => out.push('-'),
            },
            Col::Users => out.push_str(&r.users),
            Col::Cmds => push_count(out, r.commands),
            Col::Failed => push_failed(out, r.failures, r.commands),
            Col::First => push_local_minute(out, r.first_us, !short),
            Col::Last => push_local_minute(out, r.last_us, !short),
            Col::Total => push_duration(out, r.total_duration_us),
            Col::Longest => push_duration(out, r.longest_us),
            Col::TopCwd => {
                if let Some(cwd) = &r.top_cwd {
                    push_tilde(out, cwd, home);
                }
            }
            Col::TopCommand => {
                if let Some(command) = &r.top_command {
                    push_one_line(out, command, 200);
                }
            }
        }
    }

    /// The totals row's cell (on one line: nothing in it is ever another).
    fn total_cell(self, totals: &Totals, short: bool) -> String {
        let time = |us: Option<i64>| {
            us.map(|us| {
                if short {
                    short_time(us)
                } else {
                    local_minute(us)
                }
            })
            .unwrap_or_default()
        };
        match self {
            Col::Group => "total".into(),
            Col::Server | Col::Users | Col::TopCwd | Col::TopCommand => String::new(),
            Col::Cmds => count(totals.commands),
            Col::Failed => failed(totals.failures, totals.commands),
            Col::First => time(totals.first),
            Col::Last => time(totals.last),
            Col::Total => human_duration(totals.total_duration_us),
            Col::Longest => human_duration(totals.longest_us),
        }
    }
}

fn group_header(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Pane => "pane",
        GroupBy::Session => "session",
        GroupBy::Window => "window",
        GroupBy::ClientUser => "typed by",
        GroupBy::User => "user",
        GroupBy::Host => "host",
        GroupBy::Cwd => "cwd",
        GroupBy::Day => "day",
        GroupBy::Command => "command",
    }
}

/// `3 (1.5%)`: failures and their share.
fn failed(failures: i64, commands: i64) -> String {
    let mut out = String::new();
    push_failed(&mut out, failures, commands);
    out
}

/// [`failed`] written at the end of `out`.
fn push_failed(out: &mut String, failures: i64, commands: i64) {
    push_count(out, failures);
    out.push_str(" (");
    push_percent_label(out, failures, commands);
    out.push(')');
}

/// The report as a table under a title naming the period, with a totals
/// row over all groups (also those that --top left out), built whole by
/// comfy-table: what [`write_table`] writes a row at a time, and what it
/// falls back to when a terminal is too narrow for its columns.
pub fn table(
    rows: &[ReportRow],
    totals: &Totals,
    by: GroupBy,
    period: (Option<i64>, Option<i64>),
    colour: bool,
) -> String {
    table_in(rows, totals, by, period, colour, table_width())
}

/// [`table`] on a terminal `width` columns wide.
fn table_in(
    rows: &[ReportRow],
    totals: &Totals,
    by: GroupBy,
    period: (Option<i64>, Option<i64>),
    colour: bool,
    width: u16,
) -> String {
    let home = home();
    let mut table = new_table(colour);
    table.set_width(width);
    let failures = totals.failures;
    // Each column holds the groups' cells, then the totals row's.
    let cells = |col: Col, short: bool| {
        rows.iter()
            .map(|r| col.cell(r, by, home.as_deref(), short))
            .chain([col.total_cell(totals, short)])
            .collect::<Vec<_>>()
    };
    let mut columns: Vec<Column> = Col::all_for(by)
        .into_iter()
        .map(|col| Column {
            header: col.header(by),
            cells: cells(col, false),
            right: col.right(),
        })
        .collect();
    let flexible = Col::flexible(by).header(by);
    let mut on_server = None;
    if let Some(width) = table.width() {
        let width = usize::from(width);
        let fits = |columns: &[Column]| {
            let others: Vec<&Column> = columns.iter().filter(|c| c.header != flexible).collect();
            room_left(&others, width) >= MIN_FLEXIBLE
        };
        let remove = |columns: &mut Vec<Column>, header: &str| {
            if header != flexible {
                columns.retain(|c| c.header != header);
            }
        };
        let mut step = 0;
        while !fits(&columns) && step < 7 {
            match step {
                0 => {
                    for col in [Col::First, Col::Last] {
                        if let Some(c) = columns.iter_mut().find(|c| c.header == col.header(by)) {
                            c.cells = cells(col, true);
                        }
                    }
                }
                1 => remove(&mut columns, "longest"),
                // One server: named once, in the title.
                2 => {
                    if let Some(c) = columns.iter().find(|c| c.header == "server") {
                        let servers = &c.cells[..c.cells.len() - 1];
                        if let Some(one) = servers.first()
                            && servers.iter().all(|s| s == one)
                        {
                            on_server = Some(one.clone());
                            remove(&mut columns, "server");
                        }
                    }
                }
                3 => remove(&mut columns, "top cwd"),
                4 => remove(&mut columns, "first"),
                5 => remove(&mut columns, "users"),
                _ => remove(&mut columns, "top command"),
            }
            step += 1;
        }
        let others: Vec<&Column> = columns.iter().filter(|c| c.header != flexible).collect();
        let room = room_left(&others, width);
        if room >= CUT_FLEXIBLE
            && let Some(c) = columns.iter_mut().find(|c| c.header == flexible)
        {
            c.cells = c.cells.iter().map(|t| cut_to_width(t, room)).collect();
        }
    }
    table.set_header(columns.iter().map(|c| c.header));
    // Figures, times and names keep their width; only the flexible column,
    // already cut to fit, may give way further on a very narrow terminal.
    for (column, c) in table.column_iter_mut().zip(&columns) {
        if c.header != flexible {
            column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
    let failures_of: Vec<i64> = rows.iter().map(|r| r.failures).chain([failures]).collect();
    for (i, failures) in failures_of.into_iter().enumerate() {
        let mut line = comfy_table::Row::from(columns.iter().map(|c| {
            let mut cell = cell(&c.cells[i]);
            if c.right {
                cell = cell.set_alignment(CellAlignment::Right);
            }
            if c.header == "failed" && colour && failures > 0 {
                cell = cell.fg(Color::Red);
            }
            cell
        }));
        line.max_height(1);
        table.add_row(line);
    }
    let title = title(by, on_server, rows.len(), totals, period, table.width());
    format!("{title}\n{}", finish(table))
}

/// The narrowest the flexible column is cut to; narrower, comfy-table's
/// own arrangement decides.
const CUT_FLEXIBLE: usize = 8;

/// The title over a report's table: what is grouped, the period, how many
/// commands, and what `--top` left out.
fn title(
    by: GroupBy,
    on_server: Option<String>,
    shown: usize,
    totals: &Totals,
    period: (Option<i64>, Option<i64>),
    width: Option<u16>,
) -> String {
    let group_header = group_header(by);
    let from = period
        .0
        .or(totals.first)
        .map(local_minute)
        .unwrap_or_default();
    let to = period
        .1
        .or(totals.last)
        .map(local_minute)
        .unwrap_or_default();
    let shown = if shown == totals.groups {
        String::new()
    } else {
        format!(
            " (the top {} of {} {group_header} rows shown)",
            shown,
            count(totals.groups as i64)
        )
    };
    let server = on_server.map_or(String::new(), |s| {
        format!(" on server {}", one_line(&s, 60))
    });
    let mut title = format!(
        "Commands by {}{server}, {from} to {to}: {} commands",
        if by == GroupBy::ClientUser {
            "the user who typed them"
        } else {
            group_header
        },
        count(totals.commands)
    );
    // On a narrow terminal, what was left out goes on a line of its own.
    let narrow = width.is_some_and(|w| (title.len() + shown.len()) > usize::from(w));
    if narrow && !shown.is_empty() {
        title.push('\n');
        title.push_str(shown.trim_start());
    } else {
        title.push_str(&shown);
    }
    title
}

/// The texts of its groups' rows a report's table grouped `by` shows
/// (those [`write_table`] needs its rows to have).
pub fn texts_shown(by: GroupBy) -> RowTexts {
    Col::all_for(by)
        .into_iter()
        .fold(RowTexts::NONE, |texts, col| texts.or(col.texts(by)))
}

/// Reads a report's rows, in order, handing each to the function given;
/// called once per pass.
pub type EachRow<'a> =
    dyn FnMut(&mut dyn FnMut(ReportRow) -> anyhow::Result<()>) -> anyhow::Result<()> + 'a;

/// The report's table as [`table`] makes it, written a row at a time in
/// comfy-table's style (same borders, padding, alignment and colour), so
/// that its memory does not grow with the groups: a first pass over the
/// rows formats their cells, keeps them aside (`KeptCells`), measures
/// the columns and fits them to the terminal as [`table`] does; a second
/// writes each row from the cells kept. Where the fitted columns would still
/// not fit (a very narrow terminal), comfy-table's own arrangement decides:
/// the rows are gathered and handed to [`table`].
pub fn write_table(
    out: &mut dyn Write,
    rows: &mut EachRow<'_>,
    shown: usize,
    totals: &Totals,
    by: GroupBy,
    period: (Option<i64>, Option<i64>),
    colour: bool,
) -> anyhow::Result<()> {
    let report = Report {
        shown,
        totals,
        by,
        period,
        colour,
    };
    write_table_in(out, rows, &report, table_width())?;
    Ok(())
}

/// What a report's table shows besides its rows.
struct Report<'a> {
    shown: usize,
    totals: &'a Totals,
    by: GroupBy,
    period: (Option<i64>, Option<i64>),
    colour: bool,
}

/// [`write_table`] on a terminal `width` columns wide; false when it fell
/// back to comfy-table's arrangement.
fn write_table_in(
    out: &mut dyn Write,
    rows: &mut EachRow<'_>,
    report: &Report<'_>,
    terminal: u16,
) -> anyhow::Result<bool> {
    let Report {
        shown,
        totals,
        by,
        period,
        colour,
    } = *report;
    let home = home();
    let mut comfy = new_table(colour);
    comfy.set_width(terminal);
    let width = usize::from(terminal);
    let (measure, kept) = first_pass(rows, by, totals, width, home.as_deref())?;
    let all_cols = measure.cols.clone();
    let Some(fitted) = measure.fit(width) else {
        let mut all = Vec::with_capacity(shown);
        rows(&mut |r| {
            all.push(r);
            Ok(())
        })?;
        out.write_all(table_in(&all, totals, by, period, colour, terminal).as_bytes())?;
        return Ok(false);
    };
    let style = |table: &mut comfy_table::Table, c| table.style(c).map(String::from);
    use comfy_table::TableComponent as T;
    let border = |table: &mut comfy_table::Table, left, line, middle, right| -> String {
        let (left, line, middle, right) = (
            style(table, left).unwrap_or_default(),
            style(table, line).unwrap_or_default(),
            style(table, middle).unwrap_or_default(),
            style(table, right).unwrap_or_default(),
        );
        let parts: Vec<String> = fitted
            .columns
            .iter()
            .map(|c| line.repeat(c.width + 2))
            .collect();
        format!("{left}{}{right}\n", parts.join(&middle))
    };
    let top = border(
        &mut comfy,
        T::TopLeftCorner,
        T::TopBorder,
        T::TopBorderIntersections,
        T::TopRightCorner,
    );
    let under_header = border(
        &mut comfy,
        T::LeftHeaderIntersection,
        T::HeaderLines,
        T::MiddleHeaderIntersections,
        T::RightHeaderIntersection,
    );
    let bottom = border(
        &mut comfy,
        T::BottomLeftCorner,
        T::BottomBorder,
        T::BottomBorderIntersections,
        T::BottomRightCorner,
    );
    let sides = [T::LeftBorder, T::VerticalLines, T::RightBorder]
        .map(|c| style(&mut comfy, c).unwrap_or_default());
    let title = title(
        by,
        fitted.on_server.clone(),
        shown,
        totals,
        period,
        comfy.width(),
    );
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    write!(out, "{title}\n{top}")?;
    let mut line = String::new();
    let headers: Vec<String> = fitted
        .columns
        .iter()
        .map(|c| c.col.header(by).into())
        .collect();
    let headers = headers.iter().map(|h| (h.as_str(), false, text_width(h)));
    fitted.line(&mut line, &sides, headers, None);
    out.write_all(line.as_bytes())?;
    out.write_all(under_header.as_bytes())?;
    // Where each fitted column's cell is among those kept.
    let at: Vec<usize> = fitted
        .columns
        .iter()
        .map(|c| RowCells::index(&all_cols, c.col, fitted.short_times))
        .collect();
    let mut read = kept.read().context(KEPT_ASIDE)?;
    let mut row = RowCells::default();
    while let Some(failed) = read.next(&mut row).context(KEPT_ASIDE)? {
        let cells = (fitted.columns.iter().zip(&at)).map(|(c, &i)| fitted.text(row.get(i), c.col));
        fitted.line(&mut line, &sides, cells, Some(colour && failed));
        out.write_all(line.as_bytes())?;
    }
    let totals_row: Vec<String> = (fitted.columns.iter())
        .map(|c| c.col.total_cell(totals, fitted.short_times))
        .collect();
    let cells = (fitted.columns.iter().zip(&totals_row))
        .map(|(c, text)| fitted.text((text.as_str(), text_width(text)), c.col));
    fitted.line(
        &mut line,
        &sides,
        cells,
        Some(colour && totals.failures > 0),
    );
    out.write_all(line.as_bytes())?;
    out.write_all(bottom.as_bytes())?;
    out.flush()?;
    Ok(true)
}

/// How many rows go to the formatting thread at a time, and how many such
/// batches may wait for it.
const BATCH_ROWS: usize = 256;
const BATCHES_WAITING: usize = 4;

/// The first pass of [`write_table_in`]: every row's cells formatted,
/// measured and kept aside. The rows are read on this thread and formatted
/// on another, so that reading the database and formatting the cells run
/// side by side (each was about half of a table of 141,020 groups' time).
fn first_pass(
    rows: &mut EachRow<'_>,
    by: GroupBy,
    totals: &Totals,
    width: usize,
    home: Option<&str>,
) -> anyhow::Result<(Measure, KeptCells)> {
    std::thread::scope(|scope| {
        let (batches, received) = std::sync::mpsc::sync_channel::<Vec<ReportRow>>(BATCHES_WAITING);
        let formatter = scope.spawn(move || -> io::Result<(Measure, KeptCells)> {
            let mut measure = Measure::new(by, totals, width);
            let mut kept = KeptCells::default();
            let mut cells = RowCells::default();
            for batch in received {
                for r in &batch {
                    cells.of(&measure.cols, r, by, home);
                    measure.add(&cells);
                    kept.push(&cells, r.failures > 0)?;
                }
            }
            Ok((measure, kept))
        });
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let read = rows(&mut |r| {
            batch.push(r);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                // Gone only when it could not keep a row: its error says why.
                if batches.send(full).is_err() {
                    anyhow::bail!(KEPT_ASIDE);
                }
            }
            Ok(())
        });
        if !batch.is_empty() {
            let _ = batches.send(batch);
        }
        drop(batches);
        let formatted = formatter
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // Cells that cannot be kept stop the reading, with their own error
        // (not the database's: nothing was wrong there).
        let formatted = formatted.context(KEPT_ASIDE)?;
        read?;
        Ok(formatted)
    })
}

/// What a first pass over a report's rows learns: each column's width,
/// with long and short times, and whether every group is on one server.
struct Measure {
    by: GroupBy,
    cols: Vec<Col>,
    /// Per column of `cols`: the widest cell (header and totals row included).
    widths: Vec<usize>,
    /// The `first` and `last` columns' widths with short times.
    short: [usize; 2],
    /// The first group's server, and whether every group has it.
    server: Option<(String, bool)>,
    flexible: FlexibleWidth,
}

impl Measure {
    fn new(by: GroupBy, totals: &Totals, width: usize) -> Measure {
        let cols = Col::all_for(by);
        let flexible = Col::flexible(by);
        let mut measure = Measure {
            by,
            widths: cols.iter().map(|c| c.header(by).len()).collect(),
            short: [Col::First, Col::Last].map(|c| c.header(by).len()),
            cols,
            server: None,
            flexible: FlexibleWidth::new(flexible.header(by).len(), width),
        };
        let mut cells = RowCells::default();
        cells.fill(&measure.cols, |col, short| col.total_cell(totals, short));
        measure.note(&cells);
        measure
    }

    /// Takes a group's cells into account.
    fn add(&mut self, cells: &RowCells) {
        self.note(cells);
        if let Some(i) = self.cols.iter().position(|&c| c == Col::Server) {
            let (server, _) = cells.get(i);
            match &mut self.server {
                None => self.server = Some((server.to_string(), true)),
                Some((first, same)) => *same &= first == server,
            }
        }
    }

    /// Takes each column's cell of one row into account.
    fn note(&mut self, cells: &RowCells) {
        let flexible = Col::flexible(self.by);
        for (i, &col) in self.cols.iter().enumerate() {
            let (text, width) = cells.get(i);
            if col == flexible {
                self.flexible.add(text, width);
            }
            self.widths[i] = self.widths[i].max(width);
            if let Some(s) = [Col::First, Col::Last].iter().position(|&c| c == col) {
                let (_, short) = cells.get(RowCells::index(&self.cols, col, true));
                self.short[s] = self.short[s].max(short);
            }
        }
    }

    /// The columns as [`table`] fits them to `width`; None when comfy-table
    /// would have to arrange them further (they would not fit as they are).
    fn fit(self, width: usize) -> Option<Fitted> {
        let by = self.by;
        let flexible = Col::flexible(by);
        let mut short_times = false;
        let width_of = |col: Col, short_times: bool| {
            let short = match col {
                Col::First => Some(self.short[0]),
                Col::Last => Some(self.short[1]),
                _ => None,
            };
            match short {
                Some(w) if short_times => w,
                _ => self
                    .cols
                    .iter()
                    .position(|&c| c == col)
                    .map_or(0, |i| self.widths[i]),
            }
        };
        // What the other columns leave for the flexible one (see `room_left`).
        let room = |cols: &[Col], short_times: bool| {
            let others: Vec<usize> = cols
                .iter()
                .filter(|&&c| c != flexible)
                .map(|&c| width_of(c, short_times))
                .collect();
            width.saturating_sub(others.iter().sum::<usize>() + 3 * (others.len() + 1) + 1)
        };
        let mut cols = self.cols.clone();
        let mut on_server = None;
        let remove = |cols: &mut Vec<Col>, col: Col| {
            if col != flexible {
                cols.retain(|&c| c != col);
            }
        };
        let mut step = 0;
        while room(&cols, short_times) < MIN_FLEXIBLE && step < 7 {
            match step {
                0 => short_times = true,
                1 => remove(&mut cols, Col::Longest),
                2 => {
                    if cols.contains(&Col::Server)
                        && let Some((server, true)) = &self.server
                    {
                        on_server = Some(server.clone());
                        remove(&mut cols, Col::Server);
                    }
                }
                3 => remove(&mut cols, Col::TopCwd),
                4 => remove(&mut cols, Col::First),
                5 => remove(&mut cols, Col::Users),
                _ => remove(&mut cols, Col::TopCommand),
            }
            step += 1;
        }
        let room = room(&cols, short_times);
        let cut = (room >= CUT_FLEXIBLE).then_some(room);
        let columns: Vec<Fit> = cols
            .iter()
            .map(|&col| Fit {
                col,
                width: if col == flexible {
                    self.flexible.widest(cut)
                } else {
                    width_of(col, short_times)
                },
            })
            .collect();
        let used: usize = columns.iter().map(|c| c.width + 3).sum::<usize>() + 1;
        (used <= width).then_some(Fitted {
            columns,
            flexible,
            cut,
            short_times,
            on_server,
        })
    }
}

/// How wide the flexible column's cells are once cut to the room the
/// others leave, which is known only after every row is measured: the
/// widest cell of only narrow characters is cut to exactly the room; a
/// cell with wide ones (`日本`) may come out one column short, so each of
/// those notes its cut width for every room up to the terminal's width.
struct FlexibleWidth {
    header: usize,
    /// The widest cell of characters no wider than one column.
    narrow: usize,
    /// The widest cell with a wide character, uncut.
    wide: usize,
    /// Per room: the widest cell with a wide character once cut to it.
    wide_cut: Vec<usize>,
}

impl FlexibleWidth {
    fn new(header: usize, terminal: usize) -> FlexibleWidth {
        FlexibleWidth {
            header,
            narrow: 0,
            wide: 0,
            wide_cut: vec![0; terminal.min(usize::from(u16::MAX)) + 1],
        }
    }

    /// Takes a cell `width` columns wide into account.
    fn add(&mut self, text: &str, width: usize) {
        if text.is_ascii() {
            self.narrow = self.narrow.max(width);
            return;
        }
        // Text as wide as its characters added up; not so where a sequence
        // shows narrower (an emoji and its skin tone, lam-alef), and then
        // each cut is measured whole, as comfy-table measures it.
        let (mut sum, mut widest) = (0, 0);
        for w in text.chars().map(|c| c.width().unwrap_or(0)) {
            sum += w;
            widest = widest.max(w);
        }
        if sum == width && widest <= 1 {
            self.narrow = self.narrow.max(width);
            return;
        }
        self.wide = self.wide.max(width);
        if sum != width {
            for room in CUT_FLEXIBLE..self.wide_cut.len() {
                let cut = match cut_at(text, room) {
                    None => width,
                    Some((end, _)) => text_width(&text[..end]) + 1,
                };
                self.wide_cut[room] = self.wide_cut[room].max(cut);
            }
            return;
        }
        // As `cut_to_width` cuts: the longest start that leaves a column
        // for the ellipsis, which only grows with the room.
        let mut start = 0;
        let mut chars = text.chars().map(|c| c.width().unwrap_or(0)).peekable();
        for room in CUT_FLEXIBLE..self.wide_cut.len() {
            let cut = if width <= room {
                width
            } else {
                while let Some(&w) = chars.peek() {
                    if start + w + 1 > room {
                        break;
                    }
                    start += w;
                    chars.next();
                }
                start + 1
            };
            self.wide_cut[room] = self.wide_cut[room].max(cut);
        }
    }

    /// The column's width, its cells cut to `room` (None: not cut).
    fn widest(&self, room: Option<usize>) -> usize {
        let cells = match room {
            None => self.narrow.max(self.wide),
            Some(room) => {
                let wide = self.wide_cut.get(room).copied().unwrap_or(self.wide);
                self.narrow.min(room).max(wide)
            }
        };
        cells.max(self.header)
    }
}

/// A column as fitted: what it shows, and how wide its text is.
struct Fit {
    col: Col,
    width: usize,
}

/// A report table's columns fitted to the terminal, ready to write rows.
struct Fitted {
    columns: Vec<Fit>,
    flexible: Col,
    /// The room the flexible column's cells are cut to.
    cut: Option<usize>,
    short_times: bool,
    on_server: Option<String>,
}

impl Fitted {
    /// A cell `width` columns wide (already on one line) as the table
    /// shows it: the flexible column's cut to its room. What of it is
    /// shown, whether an ellipsis follows, and the width of both.
    fn text<'t>(&self, (text, width): (&'t str, usize), col: Col) -> (&'t str, bool, usize) {
        match self.cut {
            Some(room) if col == self.flexible && width > room => match cut_at(text, room) {
                // Measured as a whole, as comfy-table measures it (an emoji
                // and its modifier are one wide character, not two).
                Some((end, _)) => (&text[..end], true, text_width(&text[..end]) + 1),
                None => (text, false, width),
            },
            _ => (text, false, width),
        }
    }

    /// One line of the table into `line`: `cells` (as [`Fitted::text`]
    /// gives them) padded to their columns' widths between the borders;
    /// `failed`: whether the failures cell is red (None: the header, never
    /// coloured).
    fn line<'t>(
        &self,
        line: &mut String,
        sides: &[String; 3],
        cells: impl IntoIterator<Item = (&'t str, bool, usize)>,
        failed: Option<bool>,
    ) {
        line.clear();
        line.push_str(&sides[0]);
        for (i, (fit, (text, cut, width))) in self.columns.iter().zip(cells).enumerate() {
            let shown = |line: &mut String| {
                line.push_str(text);
                if cut {
                    line.push('…');
                }
            };
            if i > 0 {
                line.push_str(&sides[1]);
            }
            let red = failed == Some(true) && fit.col == Col::Failed;
            if red {
                line.push_str(RED);
            }
            let pad = fit.width.saturating_sub(width);
            line.push(' ');
            if fit.col.right() && failed.is_some() {
                line.extend(std::iter::repeat_n(' ', pad));
                shown(line);
            } else {
                shown(line);
                line.extend(std::iter::repeat_n(' ', pad));
            }
            line.push(' ');
            if red {
                line.push_str(DEFAULT_COLOUR);
            }
        }
        line.push_str(&sides[2]);
        line.push('\n');
    }
}

/// What went wrong when the cells could not be kept aside.
const KEPT_ASIDE: &str = "cannot keep a large report's table aside in a temporary file; \
     set TMPDIR to a writable directory, or ask for --format csv (written as it is read)";

/// One row's cells: one per column of the report (`Measure::cols`), then
/// the first and last times short (for a narrow terminal). Each is on one
/// line (see [`one_line`]) and knows how many columns it takes; they are
/// written one after another into one text, so that a row costs no
/// allocation (at 141,020 groups, a fifth of the table's time went to
/// making and freeing each cell's own string).
#[derive(Default)]
struct RowCells {
    text: String,
    /// Per cell: where it ends in `text`, and its width.
    ends: Vec<(u32, u32)>,
}

impl RowCells {
    /// Where `col`'s cell is (`short`: its short time, for first and last).
    fn index(cols: &[Col], col: Col, short: bool) -> usize {
        match (short, col) {
            (true, Col::First) => cols.len(),
            (true, Col::Last) => cols.len() + 1,
            _ => cols.iter().position(|&c| c == col).unwrap_or(0),
        }
    }

    /// Cell `i`'s text and width.
    fn get(&self, i: usize) -> (&str, usize) {
        let start = match i {
            0 => 0,
            i => self.ends[i - 1].0 as usize,
        };
        let (end, width) = self.ends[i];
        (&self.text[start..end as usize], width as usize)
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// Ends the cell written into `text` since the last one: made one line
    /// where it is not, and measured.
    fn end_cell(&mut self) {
        let start = self.ends.last().map_or(0, |&(end, _)| end as usize);
        let width = match one_line_width(&self.text[start..]) {
            Some(width) => width,
            None => {
                let shown = one_line(&self.text[start..], usize::MAX);
                self.text.truncate(start);
                self.text.push_str(&shown);
                text_width(&shown)
            }
        };
        // A cell is at most a few hundred characters (texts are cut to 200).
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.ends.push((narrow(self.text.len()), narrow(width)));
    }

    /// The cells `cell` gives, the short times last.
    fn fill(&mut self, cols: &[Col], cell: impl Fn(Col, bool) -> String) {
        self.clear();
        let all = cols.iter().map(|&col| (col, false));
        for (col, short) in all.chain([(Col::First, true), (Col::Last, true)]) {
            self.text.push_str(&cell(col, short));
            self.end_cell();
        }
    }

    /// A group's cells.
    fn of(&mut self, cols: &[Col], r: &ReportRow, by: GroupBy, home: Option<&str>) {
        self.clear();
        for &col in cols {
            col.write(r, by, home, false, &mut self.text);
            self.end_cell();
        }
        // The short times are the long ones without their year, which
        // spares working out the local time again (a fifth of the cells'
        // time at 141,020 groups).
        for col in [Col::First, Col::Last] {
            let i = Self::index(cols, col, false);
            let (long, _) = self.get(i);
            match long.as_bytes() {
                [y, _, _, _, b'-', ..] if long.len() == 16 && y.is_ascii_digit() => {
                    let end = self.ends[i].0 as usize;
                    self.text.extend_from_within(end - 11..end);
                }
                _ => col.write(r, by, home, true, &mut self.text),
            }
            self.end_cell();
        }
    }
}

/// The rows' cells as the first pass made them, kept for the second in
/// the order they came: in memory up to [`KeptCells::IN_MEMORY`] bytes,
/// beyond that in an unnamed temporary file, so that memory stays bounded
/// however many groups there are. Each row is a byte (whether it has
/// failures), its text's length (4 bytes), each cell's end and width (4
/// bytes each), then the text.
#[derive(Default)]
struct KeptCells {
    memory: Vec<u8>,
    file: Option<io::BufWriter<std::fs::File>>,
    /// How many cells a row has (all rows have as many).
    per_row: usize,
}

impl KeptCells {
    #[cfg(not(test))]
    const IN_MEMORY: usize = 8 << 20;
    /// The unit tests' tables go through the file, the last rows from memory.
    #[cfg(test)]
    const IN_MEMORY: usize = 300;

    fn push(&mut self, row: &RowCells, failed: bool) -> io::Result<()> {
        self.per_row = row.ends.len();
        self.memory.push(u8::from(failed));
        let len = u32::try_from(row.text.len()).unwrap_or(u32::MAX);
        self.memory.extend_from_slice(&len.to_le_bytes());
        for &(end, width) in &row.ends {
            self.memory.extend_from_slice(&end.min(len).to_le_bytes());
            self.memory.extend_from_slice(&width.to_le_bytes());
        }
        self.memory
            .extend_from_slice(&row.text.as_bytes()[..len as usize]);
        if self.memory.len() >= Self::IN_MEMORY {
            if self.file.is_none() {
                self.file = Some(io::BufWriter::new(tempfile::tempfile()?));
            }
            if let Some(file) = &mut self.file {
                file.write_all(&self.memory)?;
            }
            self.memory.clear();
        }
        Ok(())
    }

    /// The rows kept, from the first.
    fn read(self) -> io::Result<KeptRows> {
        use io::Seek;
        let source: Box<dyn io::Read> = match self.file {
            None => Box::new(io::Cursor::new(self.memory)),
            Some(file) => {
                let mut file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
                file.seek(io::SeekFrom::Start(0))?;
                Box::new(io::Read::chain(
                    io::BufReader::with_capacity(64 * 1024, file),
                    io::Cursor::new(self.memory),
                ))
            }
        };
        Ok(KeptRows {
            source,
            per_row: self.per_row,
        })
    }
}

/// Reads back the rows [`KeptCells`] kept.
struct KeptRows {
    source: Box<dyn io::Read>,
    per_row: usize,
}

impl KeptRows {
    /// The next row's cells into `row`, and whether it has failures; None
    /// after the last.
    fn next(&mut self, row: &mut RowCells) -> io::Result<Option<bool>> {
        let mut flag = [0u8; 1];
        loop {
            match self.source.read(&mut flag) {
                Ok(0) => return Ok(None),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let mut word = || -> io::Result<u32> {
            let mut bytes = [0u8; 4];
            self.source.read_exact(&mut bytes)?;
            Ok(u32::from_le_bytes(bytes))
        };
        let len = word()?;
        row.ends.clear();
        for _ in 0..self.per_row {
            row.ends.push((word()?.min(len), word()?));
        }
        let mut bytes = std::mem::take(&mut row.text).into_bytes();
        bytes.resize(len as usize, 0);
        self.source.read_exact(&mut bytes)?;
        row.text =
            String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // Each cell ends after the one before, on a character's boundary,
        // as it was written.
        let mut start = 0;
        for &(end, _) in &row.ends {
            if end < start || !row.text.is_char_boundary(end as usize) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a kept cell was cut",
                ));
            }
            start = end;
        }
        Ok(Some(flag[0] != 0))
    }
}

/// The escapes comfy-table (through crossterm) puts around a red cell.
const RED: &str = "\x1b[38;5;9m";
const DEFAULT_COLOUR: &str = "\x1b[39m";

#[cfg(test)]
mod tests {
    use super::*;

    /// Groups that make every column and every fitting step matter: wide
    /// characters and escapes in names (in users and servers too), long commands, failures or none,
    /// one server or two, durations of every length.
    fn groups(n: usize, servers: usize) -> Vec<ReportRow> {
        let names = [
            "make test",
            "日本語のコマンド --with 引数 and a long tail of text that goes on and on",
            "ls\x1b[31m -la ⏎ next",
            "a",
            "git log --oneline --graph --decorate --all -- src/render/report.rs | head -n 40",
            "é✓👍🏽 mixed widths 日本 x",
            "printf '\x1b[1mbold\x1b[0m and \x1b[31mred\x1b[0m' | tee /tmp/a-long-file-name.log",
        ];
        (0..n)
            .map(|i| {
                let name = names[i % names.len()];
                ReportRow {
                    key: format!("{name} {i}"),
                    commands: (i as i64 * 7919) % 100_000 + 1,
                    failures: if i % 3 == 0 { 0 } else { (i as i64 * 31) % 50 },
                    first_us: 1_700_000_000_000_000 + i as i64 * 3_600_000_000,
                    last_us: 1_700_000_000_000_000 + i as i64 * 7_200_000_000,
                    total_duration_us: (i as i64).pow(3) * 1_000_003,
                    longest_us: (i as i64) * 999_999,
                    tmux_pane: Some(format!("%{i}")),
                    tmux_socket: Some(format!("/tmp/tmux-0/so\tck{}", i % servers)),
                    tmux_server_pid: Some(4242),
                    tmux_session_id: Some(i as i64 % 4),
                    shell_session: format!("bash.{i}.1764000000"),
                    users: if i % 2 == 0 {
                        "root".into()
                    } else {
                        "alice, r\x1b[1moot".into()
                    },
                    hosts: "vm".into(),
                    top_cwd: Some(format!("/srv/項目/{}", "deep/".repeat(i % 7))),
                    top_command: Some(names[(i + 1) % names.len()].repeat(1 + i % 3)),
                    session_name: Some(format!("s{}", i % 4)),
                    window_index: Some(i as i64 % 3),
                    window_name: Some("vim".into()),
                }
            })
            .collect()
    }

    /// The table written a row at a time is byte for byte the table
    /// comfy-table builds whole, for every grouping, width and colour, and
    /// at 120 columns or more it is written a row at a time (not the fall-back).
    #[test]
    fn the_streamed_table_is_comfy_table_s_table() {
        // The last: every long name of wide characters only, which a cut
        // can leave a column short of the room.
        for (n, servers, wide) in [
            (1, 1, false),
            (7, 1, false),
            (40, 2, false),
            (150, 1, false),
            (9, 1, true),
        ] {
            for by in GroupBy::ALL {
                let mut rows = groups(n, servers);
                if wide {
                    for (i, r) in rows.iter_mut().enumerate() {
                        r.key = format!("{}{i}", "日本語".repeat(i + 10));
                        r.top_command = Some("コマンド".repeat(i + 10));
                        r.top_cwd = None;
                    }
                }
                // Names as wide as a user's, a host's or a day's.
                if !matches!(by, GroupBy::Command | GroupBy::Cwd) {
                    for (i, r) in rows.iter_mut().enumerate() {
                        r.key = format!("ü日{i}\u{200b}");
                    }
                }
                for top in [rows.len(), rows.len().div_ceil(2)] {
                    let totals = Totals::of(&rows);
                    let shown = &rows[..top];
                    for width in [30, 52, 80, 120, 400] {
                        for colour in [false, true] {
                            let whole = table_in(shown, &totals, by, (None, None), colour, width);
                            let (out, streamed) = streamed_table(shown, &totals, by, colour, width);
                            let case = format!(
                                "{by:?}, {n} groups, top {top}, {width} columns, colour {colour}"
                            );
                            assert_eq!(out, whole, "{case}");
                            assert!(streamed || width < 120, "fell back: {case}");
                            // Every line of the table as wide as its borders,
                            // escapes in cut cells included.
                            if !colour {
                                let lines: Vec<usize> = whole
                                    .lines()
                                    .skip_while(|l| !l.starts_with('┌'))
                                    .map(text_width)
                                    .collect();
                                assert!(lines.iter().all(|&w| w == lines[0]), "{case}:\n{whole}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// `rows` as [`write_table_in`] writes them, and whether it streamed.
    fn streamed_table(
        rows: &[ReportRow],
        totals: &Totals,
        by: GroupBy,
        colour: bool,
        width: u16,
    ) -> (String, bool) {
        let report = Report {
            shown: rows.len(),
            totals,
            by,
            period: (None, None),
            colour,
        };
        let mut out = Vec::new();
        let streamed = write_table_in(
            &mut out,
            &mut |each| rows.iter().cloned().try_for_each(&mut *each),
            &report,
            width,
        )
        .unwrap();
        (String::from_utf8(out).unwrap(), streamed)
    }

    /// A command whose characters add up wider than it shows (an emoji and
    /// its skin tone are one wide character), alone in its column: the
    /// streamed table cuts and pads it as comfy-table does.
    #[test]
    fn a_cut_of_narrower_sequences_is_measured_as_shown() {
        for key in [
            "👍🏽".repeat(40),
            format!("a {}", "👍🏽".repeat(40)),
            "لا".repeat(60),
        ] {
            let mut rows = groups(1, 1);
            rows[0].key = key.clone();
            let totals = Totals::of(&rows);
            for width in [60, 80, 100, 120] {
                let whole = table_in(&rows, &totals, GroupBy::Command, (None, None), false, width);
                let (out, _) = streamed_table(&rows, &totals, GroupBy::Command, false, width);
                assert_eq!(out, whole, "{key}, {width} columns");
            }
        }
    }

    /// Report rows written one at a time (`report --json`, `--format
    /// jsonl|csv|tsv`) are byte for byte the whole list formatted at once.
    #[test]
    fn streamed_report_rows_are_the_whole_list_formatted_at_once() {
        use crate::render::stream::{Fields, RecordFormat, RecordWriter};
        use crate::render::{data, DataFormat};
        let rows = groups(40, 2);
        let formats = [
            (DataFormat::Json, RecordFormat::Json),
            (DataFormat::Jsonl, RecordFormat::Jsonl),
            (DataFormat::Csv, RecordFormat::Csv),
            (DataFormat::Tsv, RecordFormat::Tsv),
        ];
        for by in GroupBy::ALL {
            for (whole, streamed) in formats {
                let mut out = Vec::new();
                let mut writer = RecordWriter::new(&mut out, streamed, Fields::Native);
                for row in &rows {
                    writer.write_other(&json_row(row, by)).unwrap();
                }
                writer.finish().unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    data(&json_rows(&rows, by), whole).unwrap(),
                    "{by:?} as {whole:?}"
                );
            }
        }
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(i64::MAX), "9,223,372,036,854,775,807");
        assert_eq!(count(-123), "-123");
        assert_eq!(count(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(999, 1000), 99.9);
        assert_eq!(percent(9999, 10000), 99.9);
        assert_eq!(percent(1, 10000), 0.1);
    }

    #[test]
    fn labels_never_claim_all_or_none_wrongly() {
        let percent_label = |part, whole| {
            let mut label = String::new();
            push_percent_label(&mut label, part, whole);
            label
        };
        assert_eq!(percent_label(9999, 10000), "99.9%");
        assert_eq!(percent_label(1, 10000), "0.1%");
        assert_eq!(percent_label(1, 3), "33%");
        assert_eq!(percent_label(3, 3), "100%");
        assert_eq!(percent_label(0, 3), "0%");
    }
}
