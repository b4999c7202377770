//! A command's output, read back from its pane's segments: the bytes
//! between the marks its shell hook printed around it, or, for a shell
//! that printed none (started before capture was on), the bytes read
//! between its start and end times. And those bytes as plain text.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use memchr::memmem;

use super::segment::{self, CUT, EXCLUDED, GAP, OUTPUT};
use crate::record::CommandRecord;

/// How far around a command's times the segments are read for its marks:
/// a mark is read a little after it was printed (the pipe, a busy machine).
const SLACK_US: i64 = 60_000_000;

/// How the command's output was told from the rest of the pane's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// By the marks its shell hook printed: exact.
    Marks,
    /// By its start and end times: what was read meanwhile, which may miss
    /// its last bytes and hold the echo of its own line.
    Times,
}

/// A command's output.
#[derive(Debug)]
pub struct CommandOutput {
    pub bytes: Vec<u8>,
    pub bounds: Bounds,
    /// The end mark was not found: the command is still running, or the
    /// capture stopped before it ended.
    pub unfinished: bool,
    /// Output lost while the command ran: (when, bytes).
    pub gaps: Vec<(i64, u64)>,
    /// The capture of the pane stopped without closing its segment (its
    /// process was killed) at this time, before the command ended.
    pub stopped_at_us: Option<i64>,
    /// Output over the per-command cap, not kept (see `cap.rs`).
    pub cuts: Vec<Cut>,
}

/// Bytes of a command's output that were not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Where in [`CommandOutput::bytes`] they were.
    pub at: usize,
    pub bytes: u64,
    pub why: Omitted,
}

/// Why output was not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Omitted {
    /// Over the per-command cap; their SHA-256 (after redaction).
    OverCap { sha256: [u8; 32] },
    /// The command matched `[capture] exclude`: never written, not hashed.
    Excluded,
}

/// Why there is no output to show.
#[derive(Debug)]
pub enum OutputError {
    /// The command did not run in a tmux pane.
    NotInTmux,
    /// Nothing was captured in its pane.
    NotCaptured {
        pane: String,
        dir: PathBuf,
    },
    /// The pane was captured, but not while the command ran.
    NotThen {
        pane: String,
    },
    Io(io::Error),
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::NotInTmux => write!(
                f,
                "this command did not run in a tmux pane: only panes' output is captured"
            ),
            OutputError::NotCaptured { pane, dir } => write!(
                f,
                "no output was captured in pane {pane} (nothing in {}): set `[capture] enabled = true` \
                 in config.toml and run `tmux-audit init tmux` again",
                dir.display()
            ),
            OutputError::NotThen { pane } => write!(
                f,
                "pane {pane} was not captured while this command ran (its capture started later or \
                 had stopped): run `tmux-audit doctor`"
            ),
            OutputError::Io(err) => write!(f, "cannot read the captured output: {err}"),
        }
    }
}

impl std::error::Error for OutputError {}

/// How many decoded segments a [`Reader`] keeps (each up to 32 MiB of
/// records): the panes a search goes through in turn, newest first.
const KEPT_SEGMENTS: usize = 3;

/// Reads commands' output, keeping the segments it decoded last: a
/// segment holds the output of many commands, and `search --output`
/// reading each of them decoded it again for each (41–61 s for 1 GB).
#[derive(Default)]
pub struct Reader {
    /// By path and length (the one being written grows: read again
    /// then); most recently used last.
    kept: Vec<((PathBuf, u64), Rc<segment::Segment>)>,
}

impl Reader {
    fn segment(&mut self, path: &Path) -> io::Result<Rc<segment::Segment>> {
        let key = (path.to_path_buf(), std::fs::metadata(path)?.len());
        if let Some(i) = self.kept.iter().position(|(k, _)| *k == key) {
            let entry = self.kept.remove(i);
            let seg = Rc::clone(&entry.1);
            self.kept.push(entry);
            return Ok(seg);
        }
        let seg = Rc::new(segment::read(path)?);
        self.kept.retain(|((p, _), _)| p != path);
        if self.kept.len() == KEPT_SEGMENTS {
            self.kept.remove(0);
        }
        self.kept.push((key, Rc::clone(&seg)));
        Ok(seg)
    }

    /// The output of `command`, from the segments beside the database `db`.
    pub fn command_output(
        &mut self,
        db: &Path,
        command: &CommandRecord,
    ) -> Result<CommandOutput, OutputError> {
        read_output(db, command, |path| self.segment(path))
    }

    /// Whether `command`'s captured output, as plain text, holds `text`
    /// (false when none was captured).
    pub fn printed(&mut self, db: &Path, command: &CommandRecord, text: &[u8]) -> bool {
        self.command_output(db, command).is_ok_and(|found| {
            let plain = plain_bytes(&found.bytes);
            // As in its text: the same bytes when they are UTF-8.
            match std::str::from_utf8(&plain) {
                Ok(_) => memmem::find(&plain, text).is_some(),
                Err(_) => memmem::find(String::from_utf8_lossy(&plain).as_bytes(), text).is_some(),
            }
        })
    }
}

/// The output of `command`, from the segments beside the database `db`.
pub fn command_output(db: &Path, command: &CommandRecord) -> Result<CommandOutput, OutputError> {
    read_output(db, command, |path| segment::read(path).map(Rc::new))
}

fn read_output(
    db: &Path,
    command: &CommandRecord,
    mut read: impl FnMut(&Path) -> io::Result<Rc<segment::Segment>>,
) -> Result<CommandOutput, OutputError> {
    let (Some(pid), Some(pane)) = (command.tmux_server_pid, command.tmux_pane.as_deref()) else {
        return Err(OutputError::NotInTmux);
    };
    let dir = super::pane_dir(&super::root(db), pid, pane).ok_or(OutputError::NotInTmux)?;
    let paths = segment::list(&dir).map_err(OutputError::Io)?;
    if paths.is_empty() {
        return Err(OutputError::NotCaptured {
            pane: pane.to_string(),
            dir,
        });
    }
    let start = command.started_at_us;
    let end = command
        .duration_us
        .map_or(i64::MAX, |d| start.saturating_add(d));
    let (from, to) = (start - SLACK_US, end.saturating_add(SLACK_US));

    let mut stream = Vec::new();
    // (offset in `stream`, read at) of each record's bytes.
    let mut times: Vec<(usize, i64)> = Vec::new();
    let mut gaps = Vec::new();
    let mut cuts = Vec::new();
    let mut last_at = None;
    let mut closed = false;
    let start_mark = super::start_mark(&command.shell_session, command.seq);
    let end_mark = super::end_mark(&command.shell_session, command.seq);
    // Where the command's output starts in `stream` once its start mark
    // has come, and how far the stream was searched for the next mark:
    // reading stops at its end mark, not at the end of the window.
    let mut body: Option<usize> = None;
    let mut searched: usize = 0;
    // The end of what was read before the command started, not copied:
    // a start mark may begin there.
    let mut carry = Carry::default();
    'segments: for (i, path) in paths.iter().enumerate() {
        let begun = segment::begun_us(path).unwrap_or(i64::MIN);
        let next = paths.get(i + 1).and_then(|p| segment::begun_us(p));
        if begun > to || next.is_some_and(|n| n <= from) {
            continue;
        }
        let seg = read(path).map_err(OutputError::Io)?;
        for r in &seg.records {
            if r.kind == GAP {
                // Told when writing worked again, maybe long after: by
                // when the output it counts was read.
                let (first, last) = r.lost_span();
                if last >= start && first <= end {
                    gaps.push((first, r.lost()));
                }
            }
            if r.at_us < from || r.at_us > to {
                continue;
            }
            last_at = Some(r.at_us);
            closed = r.kind == segment::END;
            match r.kind {
                OUTPUT => {
                    if stream.is_empty() && r.at_us < start {
                        // Read before the command started: only its start
                        // mark can be there. Not copied (the window holds a
                        // minute of the commands before) unless it is.
                        if !carry.holds(&r.payload, &start_mark) {
                            carry.keep_end(&r.payload, r.at_us, start_mark.len() - 1);
                            continue;
                        }
                    }
                    if stream.is_empty() && !carry.bytes.is_empty() {
                        times.push((0, carry.at_us));
                        stream.append(&mut carry.bytes);
                    }
                    times.push((stream.len(), r.at_us));
                    stream.extend_from_slice(&r.payload);
                    if body.is_none() {
                        let since = searched.saturating_sub(start_mark.len() - 1);
                        body = memmem::find(&stream[since..], &start_mark)
                            .map(|at| since + at + start_mark.len());
                        searched = body.unwrap_or(stream.len());
                    }
                    if let Some(body) = body {
                        let since = searched.saturating_sub(end_mark.len() - 1).max(body);
                        if memmem::find(&stream[since..], &end_mark).is_some() {
                            break 'segments;
                        }
                        searched = stream.len();
                    }
                }
                CUT => {
                    if let Some((bytes, sha256)) = super::cap::cut_of(&r.payload) {
                        cuts.push(Cut {
                            at: stream.len(),
                            bytes,
                            why: Omitted::OverCap { sha256 },
                        });
                    }
                }
                EXCLUDED => cuts.push(Cut {
                    at: stream.len(),
                    bytes: r.lost(),
                    why: Omitted::Excluded,
                }),
                _ => {}
            }
        }
    }
    let stopped_at_us = match last_at {
        Some(at) if !closed && at < end && end != i64::MAX => {
            // Stopped only if no process is still writing: its segment
            // would have gone on past the command's end.
            Some(at)
        }
        _ => None,
    };

    if let Some(at) = memmem::find(&stream, &start_mark) {
        let body = at + start_mark.len();
        let (bytes, unfinished) = match memmem::find(&stream[body..], &end_mark) {
            Some(len) => (stream[body..body + len].to_vec(), false),
            None => (stream[body..].to_vec(), true),
        };
        let cuts = cuts
            .into_iter()
            .filter(|c| c.at >= body && c.at <= body + bytes.len())
            .map(|c| Cut {
                at: c.at - body,
                ..c
            })
            .collect();
        return Ok(CommandOutput {
            bytes,
            bounds: Bounds::Marks,
            unfinished,
            gaps,
            stopped_at_us: if unfinished { stopped_at_us } else { None },
            cuts,
        });
    }
    let mut bytes = Vec::new();
    let mut any = false;
    for (n, (offset, at)) in times.iter().enumerate() {
        if *at >= start && *at <= end {
            any = true;
            let next = times.get(n + 1).map_or(stream.len(), |t| t.0);
            bytes.extend_from_slice(&stream[*offset..next]);
        }
    }
    if !any && last_at.is_none_or(|at| at < start) && stopped_at_us.is_none() {
        return Err(OutputError::NotThen {
            pane: pane.to_string(),
        });
    }
    Ok(CommandOutput {
        bytes,
        bounds: Bounds::Times,
        unfinished: false,
        gaps,
        stopped_at_us,
        cuts: Vec::new(),
    })
}

/// The last bytes of the output skipped so far, and when they were read.
#[derive(Default)]
struct Carry {
    bytes: Vec<u8>,
    at_us: i64,
}

impl Carry {
    /// Whether `mark` is in `payload`, or begins in the bytes kept.
    fn holds(&self, payload: &[u8], mark: &[u8]) -> bool {
        if memmem::find(payload, mark).is_some() {
            return true;
        }
        let head = &payload[..payload.len().min(mark.len() - 1)];
        !self.bytes.is_empty() && memmem::find(&[&self.bytes[..], head].concat(), mark).is_some()
    }

    /// Keeps the last `n` bytes of what was kept and `payload`.
    fn keep_end(&mut self, payload: &[u8], at_us: i64, n: usize) {
        if payload.len() >= n {
            self.bytes.clear();
            self.bytes.extend_from_slice(&payload[payload.len() - n..]);
        } else {
            self.bytes.extend_from_slice(payload);
            let over = self.bytes.len().saturating_sub(n);
            self.bytes.drain(..over);
        }
        self.at_us = at_us;
    }
}

/// Terminal output as plain text: escape sequences (colours, cursor moves,
/// titles, marks) dropped, `\r\n` as `\n`, a line overwritten after a lone
/// `\r` (a progress bar) kept as its last state, backspaces applied, other
/// control characters dropped. Not UTF-8: lossily.
pub fn plain_text(bytes: &[u8]) -> String {
    String::from_utf8(plain_bytes(bytes))
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// [`plain_text`] before it is made UTF-8. Text between control bytes is
/// copied a run at a time (byte by byte it made ~300 MB/s, most of what
/// `search --output` spent per command).
fn plain_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut line_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .position(|&b| b < 0x20 || b == 0x7f)
            .unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        let Some(&b) = bytes.get(i) else {
            break;
        };
        i += 1;
        match b {
            0x1b => i = skip_escape(bytes, i),
            b'\r' if bytes.get(i) == Some(&b'\n') => {}
            b'\r' => out.truncate(line_start),
            b'\n' => {
                out.push(b'\n');
                line_start = out.len();
            }
            0x08 if out.len() > line_start => {
                out.pop();
            }
            b'\t' => out.push(b),
            _ => {}
        }
    }
    out
}

/// The index after the escape sequence whose ESC is just before `i`.
fn skip_escape(bytes: &[u8], mut i: usize) -> usize {
    let Some(&kind) = bytes.get(i) else {
        return i;
    };
    i += 1;
    match kind {
        // CSI: parameters, then a final byte.
        b'[' => {
            while let Some(&b) = bytes.get(i) {
                i += 1;
                if (0x40..=0x7e).contains(&b) {
                    break;
                }
            }
            i
        }
        // OSC, DCS, SOS, PM, APC: to BEL or ST (ESC \).
        b']' | b'P' | b'X' | b'^' | b'_' => {
            while let Some(&b) = bytes.get(i) {
                i += 1;
                if b == 0x07 {
                    break;
                }
                if b == 0x1b && bytes.get(i) == Some(&b'\\') {
                    i += 1;
                    break;
                }
            }
            i
        }
        // Character sets: one more byte.
        b'(' | b')' | b'*' | b'+' | b'#' | b'%' => i + 1,
        _ => i,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::segment::Writer;

    #[test]
    fn a_reader_reads_a_segment_again_once_it_has_grown() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.db");
        let root = crate::capture::root(&db);
        let pane = crate::capture::pane_dir(&root, 7, "%1").unwrap();
        let s = 1_000_000_000i64;
        let command = |seq: i64| CommandRecord {
            shell_session: "b".into(),
            seq,
            tmux_server_pid: Some(7),
            tmux_pane: Some("%1".into()),
            started_at_us: s + seq * 10,
            duration_us: Some(5),
            ..CommandRecord::default()
        };
        let printing = |w: &mut Writer, seq: i64, text: &[u8]| {
            let at = s + seq * 10 + 1;
            w.push(OUTPUT, at, &crate::capture::start_mark("b", seq));
            w.push(OUTPUT, at, text);
            w.push(OUTPUT, at, &crate::capture::end_mark("b", seq));
            w.flush(at).unwrap();
        };
        let mut w = Writer::new(&root, pane).unwrap();
        printing(&mut w, 1, b"one\r\n");
        let mut reader = Reader::default();
        assert!(reader.printed(&db, &command(1), b"one"));
        assert!(!reader.printed(&db, &command(2), b"two"));
        // The same segment, grown by the next command's output.
        printing(&mut w, 2, b"two\r\n");
        assert!(reader.printed(&db, &command(2), b"two"));
        assert_eq!(
            reader.command_output(&db, &command(1)).unwrap().bytes,
            command_output(&db, &command(1)).unwrap().bytes
        );
    }

    /// What is read before a command starts is searched for its start
    /// mark, not copied: a mark cut between two such reads, or between
    /// one and a read after the start, is found all the same, and a
    /// command without marks gets what was read while it ran.
    #[test]
    fn a_start_mark_cut_across_reads_before_the_command_started_is_found() {
        let s = 1_000_000_000i64;
        let mark = crate::capture::start_mark("b", 1);
        let end = crate::capture::end_mark("b", 1);
        for cut in 1..mark.len() {
            for after_start in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let db = dir.path().join("history.db");
                let root = crate::capture::root(&db);
                let pane = crate::capture::pane_dir(&root, 7, "%1").unwrap();
                let mut w = Writer::new(&root, pane).unwrap();
                w.push(OUTPUT, s - 30, b"before, long before");
                w.push(OUTPUT, s - 20, &[b"$ ls", &mark[..cut]].concat());
                let second = if after_start { s + 1 } else { s - 10 };
                w.push(OUTPUT, second, &[&mark[cut..], b"a b"].concat());
                w.push(OUTPUT, s + 2, &[b" c\r\n", &end[..], b"$ "].concat());
                w.flush(s + 3).unwrap();
                let command = CommandRecord {
                    shell_session: "b".into(),
                    seq: 1,
                    tmux_server_pid: Some(7),
                    tmux_pane: Some("%1".into()),
                    started_at_us: s,
                    duration_us: Some(5),
                    ..CommandRecord::default()
                };
                let found = command_output(&db, &command).unwrap();
                assert_eq!(found.bounds, Bounds::Marks, "cut at {cut}");
                assert_eq!(found.bytes, b"a b c\r\n", "cut at {cut}");
                // Another shell's command then, without marks: by times.
                let other = CommandRecord {
                    shell_session: "z".into(),
                    ..command
                };
                let found = command_output(&db, &other).unwrap();
                assert_eq!(found.bounds, Bounds::Times);
                let expected: &[u8] = if after_start {
                    &[&mark[cut..], b"a b", b" c\r\n", &end[..], b"$ "].concat()
                } else {
                    &[b" c\r\n", &end[..], b"$ "].concat()
                };
                assert_eq!(found.bytes, expected, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_gap_written_long_after_is_told_for_the_command_whose_output_it_lost() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("history.db");
        let root = crate::capture::root(&db);
        let pane = crate::capture::pane_dir(&root, 7, "%1").unwrap();
        let s = 1_000_000_000i64;
        let mut w = Writer::new(&root, pane).unwrap();
        w.push(OUTPUT, s - 1, b"$ ");
        w.flush(s - 1).unwrap();
        // The command's output was read at s+1 and s+2, and lost; the
        // disk had room again ten minutes later.
        let span = [
            &5u64.to_le_bytes()[..],
            &(s + 1).to_le_bytes(),
            &(s + 2).to_le_bytes(),
        ]
        .concat();
        w.push(GAP, s + 600_000_000, &span);
        w.push(OUTPUT, s + 600_000_000, b"later\r\n");
        w.flush(s + 600_000_000).unwrap();
        let command = CommandRecord {
            tmux_server_pid: Some(7),
            tmux_pane: Some("%1".into()),
            started_at_us: s,
            duration_us: Some(3),
            ..CommandRecord::default()
        };
        let found = command_output(&db, &command).unwrap();
        assert_eq!(found.gaps, [(s + 1, 5)]);
    }

    /// What plain text was made as before text was copied a run at a
    /// time: byte by byte.
    fn plain_text_byte_by_byte(bytes: &[u8]) -> String {
        let mut out: Vec<u8> = Vec::new();
        let mut line_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            match b {
                0x1b => i = skip_escape(bytes, i),
                b'\r' if bytes.get(i) == Some(&b'\n') => {}
                b'\r' => out.truncate(line_start),
                b'\n' => {
                    out.push(b'\n');
                    line_start = out.len();
                }
                0x08 => {
                    if out.len() > line_start {
                        out.pop();
                    }
                }
                b'\t' => out.push(b),
                0..=0x1f | 0x7f => {}
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Every byte value between two runs of text, at the start and at
    /// the end.
    #[test]
    fn plain_text_by_runs_is_plain_text_byte_by_byte() {
        for b in 0..=255u8 {
            for raw in [vec![b'a', b, b'b'], vec![b, b'a'], vec![b'a', b], vec![b]] {
                assert_eq!(plain_text(&raw), plain_text_byte_by_byte(&raw), "{raw:?}");
            }
        }
    }

    proptest::proptest! {
        /// Any output, with escapes, `\r`, backspaces, bytes that are no
        /// UTF-8: the same plain text as byte by byte.
        #[test]
        fn plain_text_is_the_same_by_runs(
            parts in proptest::collection::vec(
                "(\\x1b\\[1;31m|\\x1b\\]0;t\\x07|\\x1b\\(B|\\r\\n|\\r|\\n|\\x08|\\t|\\x7f|\\x00|[a-z ]{1,8}|é|€)",
                0..24,
            ),
            raw_bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        ) {
            let mut raw = parts.concat().into_bytes();
            raw.extend_from_slice(&raw_bytes);
            proptest::prop_assert_eq!(plain_text(&raw), plain_text_byte_by_byte(&raw));
        }
    }

    #[test]
    fn plain_text_drops_escapes_and_keeps_lines() {
        let raw =
            b"\x1b[1;31mred\x1b[0m\r\n\x1b]0;title\x07ti\x08\x08ok\r\n10%\r50%\r100%\r\n\x1b(Bend";
        assert_eq!(plain_text(raw), "red\nok\n100%\nend");
    }
}
