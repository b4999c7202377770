//! Records written one at a time as they come from the database, in every
//! format for programs (JSON, JSONL, CSV, TSV, the bare command text), so an
//! output of any size takes the memory of one record and a buffer.
//!
//! `search` and `export` both write through [`RecordWriter`]; the bytes are
//! the same as formatting the whole list at once (a test compares them).

use std::io::{self, Write};

use serde::Serialize;

use super::{ecs, flat_line, json_record, tsv_line};
use crate::db::StoredCommand;

/// The formats a [`RecordWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// One JSON array, indented (as `serde_json`'s pretty printer writes it).
    Json,
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
    /// Tab-separated values with a header line, escapes for tab and newline.
    Tsv,
    /// Only the command's exact bytes, each ended by a newline, or by NUL
    /// when `nul` is set.
    Cmd { nul: bool },
}

/// Which fields a record has: this tool's own (`docs/schema.json`), or the
/// Elastic Common Schema's (see [`ecs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    Native,
    Ecs,
}

/// How much output is gathered before one write to the file descriptor.
const BUFFER: usize = 64 * 1024;

/// Writes records one by one. Nothing is written before the first record
/// (so a search that finds nothing prints nothing); [`RecordWriter::finish`]
/// closes what the format needs closed and flushes.
pub struct RecordWriter<W: Write> {
    out: io::BufWriter<W>,
    format: RecordFormat,
    fields: Fields,
    written: u64,
    /// CSV and TSV: the field names, taken from the first record.
    header: Vec<String>,
    /// One record's bytes (CSV, cmd), before they go to `out`.
    line: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: RecordFormat, fields: Fields) -> RecordWriter<W> {
        RecordWriter {
            out: io::BufWriter::with_capacity(BUFFER, out),
            format,
            fields,
            written: 0,
            header: Vec::new(),
            line: Vec::new(),
        }
    }

    /// How many records were written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn write(&mut self, row: &StoredCommand) -> io::Result<()> {
        match self.fields {
            Fields::Native => self.write_item(row, &json_record(row)),
            Fields::Ecs => self.write_item(row, &ecs::document(row)),
        }
    }

    /// Writes one item that is no record (a report's row) in the same
    /// format; `Cmd` has no such items and is refused.
    pub fn write_other<T: Serialize>(&mut self, item: &T) -> io::Result<()> {
        if let RecordFormat::Cmd { .. } = self.format {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only records have a command to write alone",
            ));
        }
        self.write_serialized(None, item)
    }

    fn write_item<T: Serialize>(&mut self, row: &StoredCommand, item: &T) -> io::Result<()> {
        self.write_serialized(Some(row), item)
    }

    fn write_serialized<T: Serialize>(
        &mut self,
        row: Option<&StoredCommand>,
        item: &T,
    ) -> io::Result<()> {
        let first = self.written == 0;
        match self.format {
            RecordFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, item)?;
                self.out.write_all(b"\n")?;
            }
            RecordFormat::Json => {
                // serde_json indents an array's items by one level; a
                // one-item array, its brackets taken off, is that item so
                // indented.
                let one = serde_json::to_string_pretty(&[item])?;
                let inner = one
                    .strip_prefix("[\n")
                    .and_then(|s| s.strip_suffix("\n]"))
                    .unwrap_or(&one);
                self.out.write_all(if first { b"[\n" } else { b",\n" })?;
                self.out.write_all(inner.as_bytes())?;
            }
            RecordFormat::Csv => {
                let line = flat_line(item, &mut self.header)?.unwrap_or_default();
                // The quoting writer, over a line of our own: flushing it
                // must not flush the buffer below (one write per record).
                self.line.clear();
                let mut csv = csv::WriterBuilder::new()
                    .buffer_capacity(1024)
                    .from_writer(&mut self.line);
                if first {
                    csv.write_record(&self.header)?;
                }
                csv.write_record(&line)?;
                csv.flush()?;
                drop(csv);
                self.out.write_all(&self.line)?;
            }
            RecordFormat::Tsv => {
                let line = flat_line(item, &mut self.header)?.unwrap_or_default();
                if first {
                    self.out.write_all(tsv_line(&self.header).as_bytes())?;
                }
                self.out.write_all(tsv_line(&line).as_bytes())?;
            }
            RecordFormat::Cmd { nul } => {
                let Some(row) = row else {
                    return Ok(());
                };
                let r = &row.record;
                self.line.clear();
                self.line
                    .extend_from_slice(r.command_raw.as_deref().unwrap_or(r.command.as_bytes()));
                self.line.push(if nul { b'\0' } else { b'\n' });
                self.out.write_all(&self.line)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Closes the JSON array (when anything was written) and flushes.
    pub fn finish(mut self) -> io::Result<u64> {
        if self.format == RecordFormat::Json && self.written > 0 {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::replay::Placement;
    use crate::lifecycle::Client;
    use crate::record::CommandRecord;

    fn rows() -> Vec<StoredCommand> {
        let tricky = [
            "echo \"a,b\" 'c\td'\nsecond line ✓",
            "=cmd|' /C calc'!A0",
            "plain",
            "back\\slash\r\n",
        ];
        tricky
            .iter()
            .enumerate()
            .map(|(i, command)| StoredCommand {
                id: i as i64 + 1,
                recorded_at_us: 1_700_000_000_000_000 + i as i64,
                record: CommandRecord {
                    command: command.to_string(),
                    command_raw: (i == 2).then(|| b"pl\xffain".to_vec()),
                    exit_status: (i != 1).then_some(i as i64),
                    started_at_us: 1_700_000_000_000_000 + i as i64 * 1_000_000,
                    duration_us: Some(1_500),
                    cwd: "/home/u".into(),
                    user: "u".into(),
                    uid: 1000,
                    host: "h".into(),
                    shell: "bash".into(),
                    shell_session: "s".into(),
                    seq: i as i64 + 1,
                    tmux_pane: Some("%1".into()),
                    ..CommandRecord::default()
                },
                placement: (i == 0).then(|| Placement {
                    session_id: Some(1),
                    session_name: Some("prod".into()),
                    window_id: Some(2),
                    window_index: Some(0),
                    window_name: Some("vim".into()),
                    client: Some(Client {
                        name: "/dev/pts/1".into(),
                        user: Some("alice".into()),
                        ..Client::default()
                    }),
                    attached: vec![Client {
                        name: "/dev/pts/1".into(),
                        user: Some("alice".into()),
                        ..Client::default()
                    }],
                }),
            })
            .collect()
    }

    fn streamed(rows: &[StoredCommand], format: RecordFormat) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = RecordWriter::new(&mut out, format, Fields::Native);
        for row in rows {
            writer.write(row).unwrap();
        }
        writer.finish().unwrap();
        out
    }

    #[test]
    fn streamed_output_is_byte_for_byte_the_whole_list_formatted_at_once() {
        let rows = rows();
        for n in [0, 1, rows.len()] {
            let rows = &rows[..n];
            let whole = |s: String| if n == 0 { Vec::new() } else { s.into_bytes() };
            assert_eq!(
                streamed(rows, RecordFormat::Json),
                whole(super::super::json(rows).unwrap()),
                "json, {n} rows"
            );
            assert_eq!(
                streamed(rows, RecordFormat::Jsonl),
                whole(super::super::jsonl(rows).unwrap()),
                "jsonl, {n} rows"
            );
            assert_eq!(
                streamed(rows, RecordFormat::Csv),
                whole(super::super::records_csv(rows).unwrap()),
                "csv, {n} rows"
            );
            assert_eq!(
                streamed(rows, RecordFormat::Tsv),
                whole(super::super::records_tsv(rows).unwrap()),
                "tsv, {n} rows"
            );
            for nul in [false, true] {
                assert_eq!(
                    streamed(rows, RecordFormat::Cmd { nul }),
                    super::super::commands(rows, nul),
                    "cmd, {n} rows"
                );
            }
        }
    }
}
