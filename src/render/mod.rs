//! How records look to a person (a table fitted to the terminal) and to a
//! program (JSON with every field).

use std::fmt::Write as _;
use std::io::{self, IsTerminal};

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table};
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::db::StoredCommand;
use crate::text::hex;

pub mod ecs;
pub mod report;
pub mod sessions;
pub mod stream;
pub mod timeline;

/// When tables use colour (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColourChoice {
    /// Only for a terminal, and never when NO_COLOR is set (no-color.org).
    #[default]
    Auto,
    /// Always, even piped (`| less -R`) or with NO_COLOR set.
    Always,
    Never,
}

static COLOUR_CHOICE: std::sync::OnceLock<ColourChoice> = std::sync::OnceLock::new();

/// The choice the command line made, for every table this process prints.
/// Made once, at start; later calls change nothing.
pub fn choose_colour(choice: ColourChoice) {
    let _ = COLOUR_CHOICE.set(choice);
}

/// Whether tables are coloured: `--color`, else only for a terminal and
/// never when NO_COLOR is set.
pub fn use_colour() -> bool {
    match COLOUR_CHOICE.get().copied().unwrap_or_default() {
        ColourChoice::Always => true,
        ColourChoice::Never => false,
        ColourChoice::Auto => {
            io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Commands as a table fitted to the terminal: one line per command, long
/// ones cut with an ellipsis (only here: every other format has the full
/// text). On a narrow terminal the columns that identify a command (id,
/// time, pane, exit status, the command) stay; the others give way in turn:
/// times lose the year and seconds, directories keep their last part, the
/// duration goes, and the session name is cut.
pub fn table(rows: &[StoredCommand], colour: bool) -> String {
    let mut table = new_table(colour);
    let home = home();
    let mut columns = vec![
        Column::new("id", rows.iter().map(|r| r.id.to_string()), true),
        Column::new(
            "time",
            rows.iter().map(|r| local_time(r.record.started_at_us)),
            false,
        ),
        Column::new(
            "pane",
            rows.iter().map(|r| {
                r.record
                    .tmux_pane
                    .clone()
                    .unwrap_or_else(|| "-".to_string())
            }),
            false,
        ),
        Column::new("session", rows.iter().map(session_label), false),
        Column::new(
            "exit",
            rows.iter().map(|r| {
                r.record
                    .exit_status
                    .map_or("-".to_string(), |s| s.to_string())
            }),
            true,
        ),
        Column::new(
            "duration",
            rows.iter()
                .map(|r| r.record.duration_us.map_or("-".to_string(), human_duration)),
            true,
        ),
        Column::new(
            "cwd",
            rows.iter().map(|r| tilde(&r.record.cwd, home.as_deref())),
            false,
        ),
    ];
    let command = Column::new(
        "command",
        rows.iter()
            .map(|r| one_line(&r.record.command, COMMAND_WIDTH)),
        false,
    );
    if let Some(width) = table.width() {
        let fits = |columns: &[Column]| room_left(columns, usize::from(width)) >= MIN_COMMAND;
        let steps: [&GiveWay<'_>; 4] = [
            &|c| {
                c[1].cells = rows
                    .iter()
                    .map(|r| short_time(r.record.started_at_us))
                    .collect()
            },
            &|c| c[6].cells = c[6].cells.iter().map(|d| last_part(d)).collect(),
            &|c| {
                c.remove(5);
            },
            &|c| c[3].cells = c[3].cells.iter().map(|s| cut_to_width(s, 10)).collect(),
        ];
        for step in steps {
            if fits(&columns) {
                break;
            }
            step(&mut columns);
        }
    }
    let mut command = command;
    if let Some(width) = table.width() {
        let room = room_left(&columns, usize::from(width));
        if room >= 12 {
            command.cells = command
                .cells
                .iter()
                .map(|c| cut_to_width(c, room))
                .collect();
        }
    }
    columns.push(command);
    table.set_header(columns.iter().map(|c| c.header));
    for (i, row) in rows.iter().enumerate() {
        let failed = row.record.exit_status.is_some_and(|s| s != 0);
        let mut cells = comfy_table::Row::from(columns.iter().map(|c| {
            let mut cell = cell(&c.cells[i]);
            if c.right {
                cell = cell.set_alignment(CellAlignment::Right);
            }
            if c.header == "exit" && failed && colour {
                cell = cell.fg(Color::Red);
            }
            cell
        }));
        cells.max_height(1);
        table.add_row(cells);
    }
    finish(table)
}

/// One way a table's columns give way to the command on a narrow terminal.
type GiveWay<'a> = dyn Fn(&mut Vec<Column>) + 'a;

/// The narrowest the command column gets before other columns give way.
const MIN_COMMAND: usize = 24;

/// One column of a table being fitted.
struct Column {
    header: &'static str,
    cells: Vec<String>,
    right: bool,
}

impl Column {
    fn new(header: &'static str, cells: impl Iterator<Item = String>, right: bool) -> Column {
        Column {
            header,
            cells: cells.collect(),
            right,
        }
    }

    fn width(&self) -> usize {
        self.cells
            .iter()
            .map(|c| one_line(c, usize::MAX).width())
            .chain([self.header.len()])
            .max()
            .unwrap_or(0)
    }
}

/// What `width` leaves for one more column after `columns`: each column
/// has a border and a space either side, and one more border closes a row.
fn room_left<C: std::borrow::Borrow<Column>>(columns: &[C], width: usize) -> usize {
    let used: usize = columns.iter().map(|c| c.borrow().width()).sum();
    width.saturating_sub(used + 3 * (columns.len() + 1) + 1)
}

/// `11-29 07:08`: a time in a narrow table.
fn short_time(us: i64) -> String {
    crate::timespec::local_minute(us, false)
}

/// `…/src` for `/srv/api/src`: the last part of a directory.
fn last_part(dir: &str) -> String {
    match dir.rsplit_once('/') {
        Some((head, last)) if !head.is_empty() && !last.is_empty() && head != "~" => {
            format!("…/{last}")
        }
        _ => dir.to_string(),
    }
}

/// The last column takes what the others leave of the terminal's width, cut
/// with an ellipsis (comfy-table would wrap it at a space and keep only the
/// first piece, or squeeze every column alike).
pub fn fit_last_column(table: &Table, header: &[&str], lines: &mut [Vec<String>]) {
    let Some(width) = table.width() else { return };
    let n = header.len();
    if n == 0 || lines.iter().any(|l| l.len() != n) {
        return;
    }
    let others: usize = (0..n - 1)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].width())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .sum();
    // Each column has a border and a space either side; one more border closes the row.
    let room = usize::from(width).saturating_sub(others + 3 * n + 1);
    if room >= 12 {
        for line in lines {
            line[n - 1] = cut_to_width(&line[n - 1], room);
        }
    }
}

/// How many terminal columns `text` takes: printable ASCII one a byte, the
/// rest as `unicode-width` counts them (a report's table measures each of
/// its cells: at 141,020 rows the general count was a tenth of its time).
fn text_width(text: &str) -> usize {
    match text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        true => text.len(),
        false => text.width(),
    }
}

/// `text` in at most `width` terminal columns, an ellipsis marking a cut.
fn cut_to_width(text: &str, width: usize) -> String {
    match cut_at(text, width) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Where [`cut_to_width`] cuts `text`: how many of its bytes it keeps
/// before the ellipsis, and how many columns they take; None when all of
/// `text` fits.
pub fn cut_at(text: &str, width: usize) -> Option<(usize, usize)> {
    // Printable ASCII: a byte is a column (the commonest cut in a report).
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        let kept = width.saturating_sub(1);
        return (text.len() > width).then_some((kept, kept));
    }
    if text.width() <= width {
        return None;
    }
    let (mut end, mut used) = (0, 0);
    for (at, c) in text.char_indices() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        end = at + c.len_utf8();
    }
    Some((end, used))
}

/// Longest command kept before the table cuts it to the terminal's width.
const COMMAND_WIDTH: usize = 400;

pub fn new_table(colour: bool) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_truncation_indicator("…");
    if colour {
        // comfy-table styles only a terminal on its own: `--color=always`
        // is for a pipe.
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_width(table_width());
    table
}

/// Width of a table with no terminal anywhere (output to a file, in a
/// cron job): as wide as a wide terminal.
const DEFAULT_WIDTH: u16 = 120;

/// How wide a table may be: `$COLUMNS` when set, else the width of the
/// terminal on stdout, else of the terminal this process runs in (`| less`,
/// `| head`), else [`DEFAULT_WIDTH`]. Colour plays no part (`NO_COLOR`
/// keeps the width).
pub fn table_width() -> u16 {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|&w| w > 0);
    columns
        .or_else(|| terminal_width(libc::STDOUT_FILENO))
        .or_else(|| {
            let tty = std::fs::File::open("/dev/tty").ok()?;
            terminal_width(std::os::fd::AsRawFd::as_raw_fd(&tty))
        })
        .unwrap_or(DEFAULT_WIDTH)
}

/// The width of the terminal `fd` is, if it is one.
fn terminal_width(fd: std::os::fd::RawFd) -> Option<u16> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the one given and nothing
    // else; a descriptor that is no terminal makes it fail, which is checked.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(size.ws_col)
}

pub fn finish(table: Table) -> String {
    let mut out = table.to_string();
    out.push('\n');
    out
}

pub fn home() -> Option<String> {
    std::env::var("HOME").ok().filter(|h| h.len() > 1)
}

pub fn local_time(us: i64) -> String {
    crate::timespec::local_format(us, "%Y-%m-%d %H:%M:%S")
}

pub fn utc_time(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// `850ms`, `3.2s`, `4m 05s`, `1h 02m`.
pub fn human_duration(us: i64) -> String {
    let mut out = String::new();
    push_duration(&mut out, us);
    out
}

/// [`human_duration`] written at the end of `out`.
pub fn push_duration(out: &mut String, us: i64) {
    let ms = us / 1000;
    let _ = match ms {
        ..=999 => write!(out, "{ms}ms"),
        1000..=59_999 => write!(out, "{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => write!(out, "{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        _ => write!(out, "{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    };
}

/// `path` with the home directory as `~`, on one line (see [`one_line`]).
pub fn tilde(path: &str, home: Option<&str>) -> String {
    let mut out = String::new();
    push_tilde(&mut out, path, home);
    out
}

/// [`tilde`] written at the end of `out`.
pub fn push_tilde(out: &mut String, path: &str, home: Option<&str>) {
    match home {
        Some(home) if path == home => out.push('~'),
        Some(home) if path.starts_with(home) && path[home.len()..].starts_with('/') => {
            out.push('~');
            push_one_line(out, &path[home.len()..], usize::MAX);
        }
        _ => push_one_line(out, path, usize::MAX),
    }
}

/// A table cell whose text is safe to print (see [`one_line`]): every cell
/// of every table goes through it, whatever column it is in, since any
/// recorded value (a pane, a host, a tmux name) can hold escapes.
pub fn cell(text: impl AsRef<str>) -> Cell {
    Cell::new(one_line(text.as_ref(), usize::MAX))
}

/// `text` as [`one_line`] shows it uncut, with no copy when it is so already.
pub fn shown_on_one_line(text: String) -> String {
    match one_line_width(&text) {
        Some(_) => text,
        None => one_line(&text, usize::MAX),
    }
}

/// How many columns `text` takes, when [`one_line`] leaves it as it is
/// (None: it would not).
pub fn one_line_width(text: &str) -> Option<usize> {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Some(text.len());
    }
    (text.chars().all(|c| !c.is_control() && !is_invisible(c))).then(|| text.width())
}

/// A command as one line that is safe to print: line breaks as `⏎`, other
/// control characters (terminal escapes included) as `\xNN`, characters
/// that are invisible or reorder the text around them (bidi controls, zero
/// width) as `\u{NNNN}`, cut to `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    push_one_line(&mut out, text, max);
    out
}

/// [`one_line`] written at the end of `out`.
pub fn push_one_line(out: &mut String, text: &str, max: usize) {
    // Most text is printable ASCII, kept as it is: a byte is a character.
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        match text.len() > max {
            true => {
                out.push_str(&text[..max]);
                out.push('…');
            }
            false => out.push_str(text),
        }
        return;
    }
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push('⏎'),
            '\t' => out.push(' '),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_invisible(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Format characters that show nothing themselves but hide or reorder what
/// is around them (Trojan Source, CVE-2021-42574): bidi embeddings,
/// overrides, isolates and marks, zero-width characters, and the like.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}' | '\u{e0000}'..='\u{e0fff}')
}

/// Every field of a record, times in RFC 3339 UTC, for `--json`.
#[derive(Serialize)]
struct JsonRecord<'a> {
    id: i64,
    command: &'a str,
    /// Hex of the exact bytes, only when they are not the UTF-8 of `command`.
    command_bytes_hex: Option<String>,
    exit_status: Option<i64>,
    started_at: String,
    duration_ms: Option<f64>,
    cwd: &'a str,
    cwd_bytes_hex: Option<String>,
    user: &'a str,
    uid: Option<u32>,
    login_uid: Option<u32>,
    sudo_user: Option<&'a str>,
    host: &'a str,
    shell: &'a str,
    shell_session: &'a str,
    seq: i64,
    tty: Option<&'a str>,
    ssh_connection: Option<&'a str>,
    tmux_socket: Option<&'a str>,
    tmux_server_pid: Option<i64>,
    tmux_session_id: Option<i64>,
    tmux_pane: Option<&'a str>,
    /// The session and window as they were named when the command ran,
    /// and who typed it (from the tmux events, see `init tmux`).
    tmux_session_name: Option<&'a str>,
    tmux_window_id: Option<i64>,
    tmux_window_index: Option<i64>,
    tmux_window_name: Option<&'a str>,
    typed_by: Option<&'a str>,
    typed_on: Option<&'a str>,
    attached: Vec<String>,
    redacted: bool,
    /// Imported (`tmux-audit import`): from which tool, and which file.
    import_source: Option<&'a str>,
    import_file: Option<&'a str>,
    recorded_at: String,
    /// The version of `docs/schema.json` this record follows.
    schema_version: u32,
}

/// The version of the records' fields (`docs/schema.json`): raised when a
/// field is removed, renamed or changes meaning; a new field keeps it.
pub const SCHEMA_VERSION: u32 = 1;

fn json_records(rows: &[StoredCommand]) -> Vec<JsonRecord<'_>> {
    rows.iter().map(json_record).collect()
}

/// Every field of one record, as `--format json` and `jsonl` write it.
fn json_record(row: &StoredCommand) -> JsonRecord<'_> {
    let r = &row.record;
    let place = row.placement.as_ref();
    let client = place.and_then(|p| p.client.as_ref());
    JsonRecord {
        id: row.id,
        command: &r.command,
        command_bytes_hex: r.command_raw.as_deref().map(hex),
        exit_status: r.exit_status,
        started_at: utc_time(r.started_at_us),
        duration_ms: r.duration_us.map(|us| us as f64 / 1000.0),
        cwd: &r.cwd,
        cwd_bytes_hex: r.cwd_raw.as_deref().map(hex),
        user: &r.user,
        uid: crate::record::known_uid(r.uid),
        login_uid: r.login_uid,
        sudo_user: r.sudo_user.as_deref(),
        host: &r.host,
        shell: &r.shell,
        shell_session: &r.shell_session,
        seq: r.seq,
        tty: r.tty.as_deref(),
        ssh_connection: r.ssh_connection.as_deref(),
        tmux_socket: r.tmux_socket.as_deref(),
        tmux_server_pid: r.tmux_server_pid,
        tmux_session_id: r.tmux_session_id,
        tmux_pane: r.tmux_pane.as_deref(),
        tmux_session_name: place.and_then(|p| p.session_name.as_deref()),
        tmux_window_id: place.and_then(|p| p.window_id),
        tmux_window_index: place.and_then(|p| p.window_index),
        tmux_window_name: place.and_then(|p| p.window_name.as_deref()),
        typed_by: client.and_then(|c| c.user.as_deref()),
        typed_on: client.map(|c| c.name.as_str()),
        attached: place.map_or(Vec::new(), |p| {
            p.attached.iter().map(client_label).collect()
        }),
        redacted: r.redacted,
        import_source: r.imported.as_ref().map(|m| m.source.as_str()),
        import_file: r.imported.as_ref().map(|m| m.file.as_str()),
        recorded_at: utc_time(row.recorded_at_us),
        schema_version: SCHEMA_VERSION,
    }
}

/// `alice on /dev/pts/1`: a tmux client as a person reads it.
pub fn client_label(client: &crate::lifecycle::Client) -> String {
    let tty = client.tty.as_deref().unwrap_or(&client.name);
    match &client.user {
        Some(user) => format!("{user} on {tty}"),
        None => tty.to_string(),
    }
}

/// Where a command ran, for tables: `prod:1` (session name or `$id`, and
/// window index), as far as it is known.
fn session_label(row: &StoredCommand) -> String {
    match &row.placement {
        Some(place) => place.label(None),
        None => row
            .record
            .tmux_session_id
            .map_or("-".to_string(), |id| format!("${id}")),
    }
}

/// A JSON array of records, every field.
pub fn json(rows: &[StoredCommand]) -> serde_json::Result<String> {
    pretty_json(&json_records(rows))
}

/// Indented JSON, ending with a newline.
pub fn pretty_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = serde_json::to_string_pretty(value)?;
    out.push('\n');
    Ok(out)
}

/// The whole list at once: what [`stream::RecordWriter`] must equal (tests).
#[cfg(test)]
/// One JSON object per line.
pub fn jsonl(rows: &[StoredCommand]) -> serde_json::Result<String> {
    let mut out = String::new();
    for record in json_records(rows) {
        out.push_str(&serde_json::to_string(&record)?);
        out.push('\n');
    }
    Ok(out)
}

/// Field names and values as text, in the order of the JSON output; text
/// made [`inert_in_spreadsheets`], since CSV and TSV are what people open
/// in one.
fn flat<T: Serialize>(items: &[T]) -> serde_json::Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut header = Vec::new();
    let mut lines = Vec::new();
    for item in items {
        if let Some(line) = flat_line(item, &mut header)? {
            lines.push(line);
        }
    }
    Ok((header, lines))
}

/// One item's values as text, in the order of `header`, which the first
/// item fills with its field names; None for an item that is no object.
fn flat_line<T: Serialize>(
    item: &T,
    header: &mut Vec<String>,
) -> serde_json::Result<Option<Vec<String>>> {
    let serde_json::Value::Object(map) = serde_json::to_value(item)? else {
        return Ok(None);
    };
    if header.is_empty() {
        *header = map.keys().cloned().collect();
    }
    Ok(Some(
        header
            .iter()
            .map(|key| match map.get(key) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => inert_in_spreadsheets(s),
                Some(serde_json::Value::Array(items)) => inert_in_spreadsheets(
                    &items
                        .iter()
                        .map(|item| match item {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Some(object @ serde_json::Value::Object(_)) => {
                    inert_in_spreadsheets(&object.to_string())
                }
                Some(other) => other.to_string(),
            })
            .collect(),
    ))
}

/// `text` with a `'` in front when a spreadsheet would take it for a
/// formula and run it (`=`, `+`, `-`, `@`, tab, carriage return first:
/// OWASP's advice on CSV injection). A command such as `=cmd|' /C calc'!A0`
/// is a record like any other, and opening an export must not run it. The
/// `'` shows that the text was touched; JSON keeps the exact text.
fn inert_in_spreadsheets(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// The formats for programs, the same for every command's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    Csv,
    Tsv,
}

/// `items` in `format`: every field, full text, UTC times.
pub fn data<T: Serialize>(items: &[T], format: DataFormat) -> anyhow::Result<String> {
    Ok(match format {
        DataFormat::Json => pretty_json(items)?,
        DataFormat::Jsonl => {
            let mut out = String::new();
            for item in items {
                out.push_str(&serde_json::to_string(item)?);
                out.push('\n');
            }
            out
        }
        DataFormat::Csv => csv(items)?,
        DataFormat::Tsv => tsv(items)?,
    })
}

/// RFC 4180 CSV with a header line: fields with commas, quotes or line
/// breaks are quoted.
pub fn csv<T: Serialize>(items: &[T]) -> anyhow::Result<String> {
    let (header, lines) = flat(items)?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    if !header.is_empty() {
        writer.write_record(&header)?;
    }
    for line in lines {
        writer.write_record(&line)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// Tab-separated values with a header line; backslash, tab, newline and
/// carriage return inside a field are written `\\`, `\t`, `\n`, `\r`.
pub fn tsv<T: Serialize>(items: &[T]) -> serde_json::Result<String> {
    let (header, lines) = flat(items)?;
    let mut out = String::new();
    for line in std::iter::once(&header)
        .filter(|h| !h.is_empty())
        .chain(lines.iter())
    {
        out.push_str(&tsv_line(line));
    }
    Ok(out)
}

/// One TSV line, its fields escaped (see [`tsv`]), with its newline.
fn tsv_line(fields: &[String]) -> String {
    let escape = |field: &String| {
        field
            .replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    };
    let mut line = fields.iter().map(escape).collect::<Vec<_>>().join("\t");
    line.push('\n');
    line
}

/// The whole list at once: what [`stream::RecordWriter`] must equal (tests).
#[cfg(test)]
pub fn records_csv(rows: &[StoredCommand]) -> anyhow::Result<String> {
    csv(&json_records(rows))
}

/// The whole list at once: what [`stream::RecordWriter`] must equal (tests).
#[cfg(test)]
pub fn records_tsv(rows: &[StoredCommand]) -> serde_json::Result<String> {
    tsv(&json_records(rows))
}

/// The whole list at once: what [`stream::RecordWriter`] must equal (tests).
#[cfg(test)]
/// Only the command text, exactly as recorded, one per record.
pub fn commands(rows: &[StoredCommand], nul: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        out.extend_from_slice(
            row.record
                .command_raw
                .as_deref()
                .unwrap_or(row.record.command.as_bytes()),
        );
        out.push(if nul { b'\0' } else { b'\n' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field added to a command ([`CommandRecord::fields`], which the
    /// chain and the INSERT are made from) must reach `--json` and the
    /// exports too: this names the one it does not.
    #[test]
    fn every_stored_field_of_a_command_is_in_the_json() {
        let row = StoredCommand {
            id: 1,
            recorded_at_us: 0,
            record: crate::record::CommandRecord::default(),
            placement: None,
        };
        let json = serde_json::to_value(json_record(&row)).unwrap();
        let keys = json.as_object().unwrap();
        let record = &row.record;
        let stored = record.fields().map(|(name, _)| name);
        let imported = record.import_fields().map(|(name, _)| name);
        for name in stored.into_iter().chain(imported) {
            // The JSON's own names for what it shows converted.
            let shown = match name {
                "command_raw" => "command_bytes_hex",
                "cwd_raw" => "cwd_bytes_hex",
                "started_at_us" => "started_at",
                "duration_us" => "duration_ms",
                // Import's duplicate key: internal, not a fact about the command.
                "import_key" => continue,
                other => other,
            };
            assert!(keys.contains_key(shown), "{name} is not in the JSON record");
        }
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_duration(850_000), "850ms");
        assert_eq!(human_duration(3_200_000), "3.2s");
        assert_eq!(human_duration(245_000_000), "4m 05s");
        assert_eq!(human_duration(3_720_000_000), "1h 02m");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(one_line("a\nb\x1b[31mc\x07", 100), "a⏎b\\x1b[31mc\\x07");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("abc", 0), "…");
        assert_eq!(one_line("a\x7fb\tc", 100), "a\\x7fb c");
        assert_eq!(one_line("~ \x7f", 2), "~ …");
        // Trojan Source: an override and an isolate that would reorder it.
        assert_eq!(
            one_line("rm -rf /tmp/x\u{202e}\u{2066}txt.exe", 100),
            "rm -rf /tmp/x\\u{202e}\\u{2066}txt.exe"
        );
        assert_eq!(one_line("a\u{200b}b\u{feff}", 100), "a\\u{200b}b\\u{feff}");
        assert_eq!(one_line("é ✓ 日本 👍🏽", 100), "é ✓ 日本 👍🏽");
    }

    #[test]
    fn cuts_count_terminal_columns() {
        assert_eq!(cut_to_width("abcdef", 6), "abcdef");
        assert_eq!(cut_to_width("abcdefg", 6), "abcde…");
        assert_eq!(cut_to_width("日本語です", 6), "日本…");
        assert_eq!(cut_to_width("abcdefg", 1), "…");
        assert_eq!(cut_to_width("abcdefg", 0), "…");
        assert_eq!(cut_to_width("é", 0), "…");
    }

    #[test]
    fn exports_never_start_a_text_field_with_a_formula() {
        #[derive(Serialize)]
        struct Item {
            command: &'static str,
            exit_status: i64,
            attached: Vec<&'static str>,
        }
        let items = [
            Item {
                command: "=cmd|' /C calc'!A0",
                exit_status: -1,
                attached: vec!["@alice"],
            },
            Item {
                command: "+1",
                exit_status: 0,
                attached: vec![],
            },
            Item {
                command: "git log --oneline -- -x",
                exit_status: 0,
                attached: vec![],
            },
        ];
        assert_eq!(
            csv(&items).unwrap(),
            "command,exit_status,attached\n'=cmd|' /C calc'!A0,-1,'@alice\n'+1,0,\ngit log --oneline -- -x,0,\n"
        );
        let tsv = tsv(&items).unwrap();
        assert!(
            tsv.contains("'=cmd") && tsv.contains("\t-1\t'@alice"),
            "{tsv}"
        );
        for field in ["-rf /", "@SUM(1)", "\tx", "\r=x"] {
            assert!(inert_in_spreadsheets(field).starts_with('\''), "{field}");
        }
    }

    #[test]
    fn a_narrow_directory_keeps_its_last_part() {
        assert_eq!(last_part("/srv/api/src"), "…/src");
        assert_eq!(last_part("~/src/api"), "…/api");
        assert_eq!(last_part("~/src"), "~/src");
        assert_eq!(last_part("/srv"), "/srv");
        assert_eq!(last_part("~"), "~");
        assert_eq!(last_part("/"), "/");
    }

    #[test]
    fn home_is_shown_as_tilde() {
        assert_eq!(tilde("/home/u/src", Some("/home/u")), "~/src");
        assert_eq!(tilde("/home/u", Some("/home/u")), "~");
        assert_eq!(tilde("/home/user2", Some("/home/u")), "/home/user2");
        assert_eq!(tilde("/home/u/x\x1b[31m", Some("/home/u")), "~/x\\x1b[31m");
    }
}
