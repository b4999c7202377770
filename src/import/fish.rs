//! fish's history file (`~/.local/share/fish/fish_history`), a YAML-like
//! list fish writes itself:
//!
//! ```text
//! - cmd: echo a\nb \\ c
//!   when: 1700000000
//!   paths:
//!     - /tmp/x
//! ```
//!
//! In `cmd`, fish writes a backslash as `\\` and a newline as `\n`; any
//! other backslash stands for itself. `when` is seconds since the epoch.
//! `paths` (arguments fish saw were files) has no column here and is not
//! kept. Keys fish may add later are passed over; a line that fits nowhere
//! is skipped and counted.

use super::{HistoryEntry, Parsed, Skipped};

/// The entries of a fish history file's bytes, oldest first.
pub fn parse(bytes: &[u8]) -> Parsed<HistoryEntry> {
    super::parse_all(Reader::default(), bytes)
}

/// fish's history, fed a line at a time: an entry is given out when the
/// next one begins (or the file ends), its keys read.
#[derive(Debug, Default)]
pub struct Reader {
    current: Option<HistoryEntry>,
    in_paths: bool,
}

impl super::Lines for Reader {
    type Entry = HistoryEntry;

    fn line(&mut self, number: usize, line: &[u8], out: &mut Parsed<HistoryEntry>) {
        if let Some(cmd) = line.strip_prefix(b"- cmd:") {
            self.in_paths = false;
            self.end(out);
            self.current = Some(HistoryEntry {
                command: unescape(cmd.strip_prefix(b" ").unwrap_or(cmd)),
                line: number,
                ..HistoryEntry::default()
            });
            return;
        }
        let Some(entry) = &mut self.current else {
            if !line.is_empty() {
                out.skipped.push(Skipped {
                    line: number,
                    why: "not inside an entry (`- cmd: …`)".into(),
                });
            }
            return;
        };
        if let Some(when) = line.strip_prefix(b"  when:") {
            self.in_paths = false;
            match std::str::from_utf8(when)
                .ok()
                .and_then(|w| w.trim().parse::<i64>().ok())
            {
                Some(when) => entry.started_at_us = Some(when.saturating_mul(1_000_000)),
                None => out.skipped.push(Skipped {
                    line: number,
                    why: "`when:` is not a number of seconds".into(),
                }),
            }
        } else if line == b"  paths:" {
            self.in_paths = true;
        } else if self.in_paths && line.starts_with(b"    - ") {
            // A path: nowhere to keep it.
        } else if line.starts_with(b"  ") && line.contains(&b':') {
            // A key of a later fish.
            self.in_paths = false;
        } else if !line.is_empty() {
            out.skipped.push(Skipped {
                line: number,
                why: "not a line of a fish history entry".into(),
            });
        }
    }

    fn end(&mut self, out: &mut Parsed<HistoryEntry>) {
        out.entries.extend(self.current.take());
    }
}

/// fish's `unescape_yaml_fish_2_0`: `\\` is a backslash, `\n` a newline.
fn unescape(escaped: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut iter = escaped.iter().copied().peekable();
    while let Some(b) = iter.next() {
        match (b, iter.peek()) {
            (b'\\', Some(b'\\')) => {
                out.push(b'\\');
                iter.next();
            }
            (b'\\', Some(b'n')) => {
                out.push(b'\n');
                iter.next();
            }
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_when_and_paths() {
        let parsed = parse(
            b"- cmd: ls /tmp\n  when: 1700000000\n  paths:\n    - /tmp\n- cmd: echo a\\nb \\\\n \\t\n  when: 1700000001\n",
        );
        let e = &parsed.entries;
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].command.as_slice(), e[0].line), (&b"ls /tmp"[..], 1));
        assert_eq!(e[0].started_at_us, Some(1_700_000_000_000_000));
        assert_eq!(e[1].command, b"echo a\nb \\n \\t");
        assert_eq!(e[1].line, 5);
        assert!(parsed.skipped.is_empty());
    }

    #[test]
    fn bytes_are_kept_and_stray_lines_counted() {
        let parsed =
            parse(b"garbage\n- cmd: echo \xff\n  when: soon\n  later_key: 1\nmore garbage\n");
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.entries[0].command, b"echo \xff");
        assert_eq!(parsed.entries[0].started_at_us, None);
        let lines: Vec<usize> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 3, 5]);
    }
}
