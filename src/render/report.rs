//! How a report looks: a titled table with a totals row, or JSON and CSV
//! with every figure.

use comfy_table::{CellAlignment, Color};
use serde::Serialize;

use super::{
    cell, cut_to_width, finish, home, human_duration, new_table, one_line, room_left, short_time,
    tilde, utc_time, Column,
};
use crate::db::{GroupBy, ReportRow, Totals};
use crate::timespec::local_format;

/// The narrowest the group name or the top command gets before other
/// columns give way.
const MIN_FLEXIBLE: usize = 20;

/// Minutes are enough for a report's first and last times, and keep the table narrow.
fn local_minute(us: i64) -> String {
    local_format(us, "%Y-%m-%d %H:%M")
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
    let (pane, session, window) = match by {
        GroupBy::Pane => (true, false, false),
        GroupBy::Session => (false, true, false),
        GroupBy::Window => (false, true, true),
        _ => (false, false, false),
    };
    rows.iter()
        .map(|r| ReportJson {
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
        })
        .collect()
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
/// or none failed when that is not so: `100%`, `99.9%`, `33%`, `0.1%`, `0%`.
fn percent_label(part: i64, whole: i64) -> String {
    let p = percent(part, whole);
    let whole_percent = p.round();
    if (whole_percent >= 100.0 && part < whole) || (whole_percent <= 0.0 && part > 0) {
        format!("{p:.1}%")
    } else {
        format!("{whole_percent:.0}%")
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

fn count(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The report as a table under a title naming the period, with a totals
/// row over all groups (also those that --top left out).
pub fn table(
    rows: &[ReportRow],
    totals: &Totals,
    by: GroupBy,
    period: (Option<i64>, Option<i64>),
    colour: bool,
) -> String {
    let home = home();
    let mut table = new_table(colour);
    let group_header = match by {
        GroupBy::Pane => "pane",
        GroupBy::Session => "session",
        GroupBy::Window => "window",
        GroupBy::ClientUser => "typed by",
        GroupBy::User => "user",
        GroupBy::Host => "host",
        GroupBy::Cwd => "cwd",
        GroupBy::Day => "day",
        GroupBy::Command => "command",
    };
    let (commands, failures, first, last) =
        (totals.commands, totals.failures, totals.first, totals.last);
    let shown_all = rows.len() == totals.groups;
    // Each column holds the groups' cells, then the totals row's.
    let column = |header, right, cells: Vec<String>, total: String| {
        let mut cells = cells;
        cells.push(total);
        Column {
            header,
            cells,
            right,
        }
    };
    let of_rows = |f: &dyn Fn(&ReportRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let mut columns = vec![column(
        group_header,
        false,
        of_rows(&|r| match by {
            GroupBy::Cwd => tilde(&r.key, home.as_deref()),
            GroupBy::Command => one_line(&r.key, 200),
            _ => label(r, by),
        }),
        "total".into(),
    )];
    if matches!(by, GroupBy::Pane | GroupBy::Session | GroupBy::Window) {
        columns.push(column(
            "server",
            false,
            of_rows(&|r| server(r).unwrap_or_else(|| "-".to_string())),
            String::new(),
        ));
        columns.push(column(
            "users",
            false,
            of_rows(&|r| r.users.clone()),
            String::new(),
        ));
    }
    let failed = |f: i64, c: i64| format!("{} ({})", count(f), percent_label(f, c));
    columns.extend([
        column(
            "cmds",
            true,
            of_rows(&|r| count(r.commands)),
            count(commands),
        ),
        column(
            "failed",
            true,
            of_rows(&|r| failed(r.failures, r.commands)),
            failed(failures, commands),
        ),
        column(
            "first",
            false,
            of_rows(&|r| local_minute(r.first_us)),
            first.map(local_minute).unwrap_or_default(),
        ),
        column(
            "last",
            false,
            of_rows(&|r| local_minute(r.last_us)),
            last.map(local_minute).unwrap_or_default(),
        ),
        column(
            "total",
            true,
            of_rows(&|r| human_duration(r.total_duration_us)),
            human_duration(totals.total_duration_us),
        ),
        column(
            "longest",
            true,
            of_rows(&|r| human_duration(r.longest_us)),
            human_duration(totals.longest_us),
        ),
    ]);
    if by != GroupBy::Cwd {
        columns.push(column(
            "top cwd",
            false,
            of_rows(&|r| {
                r.top_cwd
                    .as_deref()
                    .map_or(String::new(), |c| tilde(c, home.as_deref()))
            }),
            String::new(),
        ));
    }
    if by != GroupBy::Command {
        columns.push(column(
            "top command",
            false,
            of_rows(&|r| {
                r.top_command
                    .as_deref()
                    .map_or(String::new(), |c| one_line(c, 200))
            }),
            String::new(),
        ));
    }
    // The column that takes what the others leave: the group when it is a
    // command or a directory, else the top command.
    let flexible = if matches!(by, GroupBy::Command | GroupBy::Cwd) {
        group_header
    } else {
        "top command"
    };
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
        let times = [first, last];
        let mut step = 0;
        while !fits(&columns) && step < 7 {
            match step {
                0 => {
                    for (name, total) in ["first", "last"].into_iter().zip(times) {
                        if let Some(c) = columns.iter_mut().find(|c| c.header == name) {
                            let us = rows.iter().map(|r| {
                                if name == "first" {
                                    r.first_us
                                } else {
                                    r.last_us
                                }
                            });
                            c.cells = us.map(short_time).collect();
                            c.cells.push(total.map(short_time).unwrap_or_default());
                        }
                    }
                }
                1 => remove(&mut columns, "longest"),
                // One server: named once, in the title.
                2 => {
                    if let Some(c) = columns.iter().find(|c| c.header == "server") {
                        let servers = &c.cells[..c.cells.len() - 1];
                        if servers.iter().all(|s| s == &servers[0]) {
                            on_server = Some(servers[0].clone());
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
        if room >= 8
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

    let from = period.0.or(first).map(local_minute).unwrap_or_default();
    let to = period.1.or(last).map(local_minute).unwrap_or_default();
    let shown = if shown_all {
        String::new()
    } else {
        format!(
            " (the top {} of {} {group_header} rows shown)",
            rows.len(),
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
        count(commands)
    );
    // On a narrow terminal, what was left out goes on a line of its own.
    let narrow = table
        .width()
        .is_some_and(|w| (title.len() + shown.len()) > usize::from(w));
    if narrow && !shown.is_empty() {
        title.push('\n');
        title.push_str(shown.trim_start());
    } else {
        title.push_str(&shown);
    }
    format!("{title}\n{}", finish(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(1_000_000), "1,000,000");
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
        assert_eq!(percent_label(9999, 10000), "99.9%");
        assert_eq!(percent_label(1, 10000), "0.1%");
        assert_eq!(percent_label(1, 3), "33%");
        assert_eq!(percent_label(3, 3), "100%");
        assert_eq!(percent_label(0, 3), "0%");
    }
}
