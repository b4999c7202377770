//! How a report looks: a titled table with a totals row, or JSON and CSV
//! with every figure.

use comfy_table::{CellAlignment, Color};
use serde::Serialize;

use super::{cell, finish, home, human_duration, new_table, one_line, tilde, utc_time};
use crate::db::{GroupBy, ReportRow, Totals};
use crate::timespec::local_format;

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

pub fn json_rows(rows: &[ReportRow], by: GroupBy) -> Vec<ReportJson<'_>> {
    rows.iter()
        .map(|r| ReportJson {
            group: label(r, by),
            tmux_pane: r.tmux_pane.as_deref(),
            tmux_server: server(r),
            tmux_session_id: r.tmux_session_id,
            tmux_session_name: r.session_name.as_deref(),
            tmux_window_index: r.window_index,
            tmux_window_name: r.window_name.as_deref(),
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
    let tmux_columns = matches!(by, GroupBy::Pane | GroupBy::Session | GroupBy::Window);
    let mut header = vec![group_header];
    if tmux_columns {
        header.extend(["server", "users"]);
    }
    header.extend(["cmds", "failed", "first", "last", "total", "longest"]);
    if by != GroupBy::Cwd {
        header.push("top cwd");
    }
    if by != GroupBy::Command {
        header.push("top command");
    }
    table.set_header(header);

    let right = |s: String| cell(s).set_alignment(CellAlignment::Right);
    let failed_cell = |failures: i64, commands: i64| {
        let cell = right(format!(
            "{} ({})",
            count(failures),
            percent_label(failures, commands)
        ));
        if colour && failures > 0 {
            cell.fg(Color::Red)
        } else {
            cell
        }
    };
    for r in rows {
        let first = match by {
            GroupBy::Cwd => tilde(&r.key, home.as_deref()),
            GroupBy::Command => one_line(&r.key, 200),
            _ => label(r, by),
        };
        let mut cells = vec![cell(first)];
        if tmux_columns {
            cells.push(cell(server(r).unwrap_or_else(|| "-".to_string())));
            cells.push(cell(&r.users));
        }
        cells.extend([
            right(count(r.commands)),
            failed_cell(r.failures, r.commands),
            cell(local_minute(r.first_us)),
            cell(local_minute(r.last_us)),
            right(human_duration(r.total_duration_us)),
            right(human_duration(r.longest_us)),
        ]);
        if by != GroupBy::Cwd {
            cells.push(cell(
                r.top_cwd
                    .as_deref()
                    .map_or(String::new(), |c| tilde(c, home.as_deref())),
            ));
        }
        if by != GroupBy::Command {
            cells.push(cell(
                r.top_command
                    .as_deref()
                    .map_or(String::new(), |c| one_line(c, 200)),
            ));
        }
        let mut line = comfy_table::Row::from(cells);
        line.max_height(1);
        table.add_row(line);
    }

    let (commands, failures, first, last) =
        (totals.commands, totals.failures, totals.first, totals.last);
    let shown_all = rows.len() == totals.groups;
    let mut total_cells = vec![cell("total")];
    if tmux_columns {
        total_cells.extend([cell(""), cell("")]);
    }
    total_cells.extend([
        right(count(commands)),
        failed_cell(failures, commands),
        cell(first.map(local_minute).unwrap_or_default()),
        cell(last.map(local_minute).unwrap_or_default()),
        right(human_duration(totals.total_duration_us)),
        right(human_duration(totals.longest_us)),
    ]);
    let mut total_row = comfy_table::Row::from(total_cells);
    total_row.max_height(1);
    table.add_row(total_row);

    let from = period.0.or(first).map(local_minute).unwrap_or_default();
    let to = period.1.or(last).map(local_minute).unwrap_or_default();
    // Figures and times keep their width; the group name and the top
    // directory and command give way on a narrow terminal.
    let flexible = |name: &str| matches!(name, "top cwd" | "top command") || name == group_header;
    let headers: Vec<String> = table
        .header()
        .map(|h| h.cell_iter().map(|c| c.content()).collect())
        .unwrap_or_default();
    for (column, name) in table.column_iter_mut().zip(headers) {
        if !flexible(&name) {
            column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
    let shown = if shown_all {
        String::new()
    } else {
        format!(
            " (the top {} of {} {group_header} rows shown)",
            rows.len(),
            count(totals.groups as i64)
        )
    };
    let title = format!(
        "Commands by {}, {from} to {to}: {} commands{shown}\n",
        if by == GroupBy::ClientUser {
            "the user who typed them"
        } else {
            group_header
        },
        count(commands)
    );
    format!("{title}{}", finish(table))
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
