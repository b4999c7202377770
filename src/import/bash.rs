//! bash's history file (`~/.bash_history`, or `$HISTFILE`), as bash
//! writes it: one command per line, or, when `HISTTIMEFORMAT` was set,
//! each command after a `#<seconds since the epoch>` line. With
//! timestamps, a command may span several lines (`shopt -s lithist`): every
//! line up to the next timestamp belongs to it, which is how bash reads it
//! back. Without them on the first line, each line is a command, as bash
//! reads it too; a timestamp line further down (`HISTTIMEFORMAT` set
//! later) is still a timestamp, the time of the command after it.

use super::{HistoryEntry, Parsed, Skipped};

/// The entries of a bash history file's bytes, oldest first. Bytes are
/// kept exactly (bash writes what was typed, in any encoding).
pub fn parse(bytes: &[u8]) -> Parsed<HistoryEntry> {
    super::parse_all(Reader::default(), bytes)
}

/// bash's history, fed a line at a time: whether a command may span
/// several lines is told by the first line, as bash tells it; a line
/// `#<digits>` is a timestamp wherever it is (bash's `read_history_range`).
#[derive(Debug, Default)]
pub struct Reader {
    timestamped: Option<bool>,
    /// The entry being read: its first line, its time, its text so far.
    current: Option<(usize, i64, Option<Vec<u8>>)>,
}

impl Reader {
    fn finish(&mut self, out: &mut Parsed<HistoryEntry>) {
        if let Some((number, at, command)) = self.current.take() {
            match command {
                Some(command) => out.entries.push(HistoryEntry {
                    command,
                    started_at_us: Some(at.saturating_mul(1_000_000)),
                    line: number,
                    ..HistoryEntry::default()
                }),
                None => out.skipped.push(Skipped {
                    line: number,
                    why: "a timestamp with no command after it".into(),
                }),
            }
        }
    }
}

impl super::Lines for Reader {
    type Entry = HistoryEntry;

    fn line(&mut self, number: usize, line: &[u8], out: &mut Parsed<HistoryEntry>) {
        let timestamped = *self
            .timestamped
            .get_or_insert_with(|| timestamp(line).is_some());
        if !timestamped && timestamp(line).is_none() && !line.is_empty() {
            // The time of a timestamp line before, if any.
            let at = self.current.take().map(|(_, at, _)| at);
            out.entries.push(HistoryEntry {
                command: line.to_vec(),
                started_at_us: at.map(|at| at.saturating_mul(1_000_000)),
                line: number,
                ..HistoryEntry::default()
            });
            return;
        }
        if let Some(at) = timestamp(line) {
            self.finish(out);
            self.current = Some((number, at, None));
            return;
        }
        if !timestamped {
            return;
        }
        if let Some((_, _, command)) = &mut self.current {
            match command {
                Some(command) => {
                    command.push(b'\n');
                    command.extend_from_slice(line);
                }
                None => *command = Some(line.to_vec()),
            }
        }
    }

    fn end(&mut self, out: &mut Parsed<HistoryEntry>) {
        self.finish(out);
    }
}

/// `#1700000000`: the seconds of a timestamp line.
fn timestamp(line: &[u8]) -> Option<i64> {
    let digits = line.strip_prefix(b"#")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(parsed: &Parsed<HistoryEntry>) -> Vec<(&[u8], Option<i64>, usize)> {
        parsed
            .entries
            .iter()
            .map(|e| (e.command.as_slice(), e.started_at_us, e.line))
            .collect()
    }

    #[test]
    fn without_timestamps_each_line_is_a_command() {
        let parsed = parse(b"ls -l\n\necho 'a\n#not a time\ncd /tmp");
        assert_eq!(
            commands(&parsed),
            [
                (&b"ls -l"[..], None, 1),
                (b"echo 'a", None, 3),
                (b"#not a time", None, 4),
                (b"cd /tmp", None, 5),
            ]
        );
        assert!(parsed.skipped.is_empty());
    }

    /// `HISTTIMEFORMAT` set after the file began: its later commands have
    /// times, each line is still a command, and a timestamp line is never
    /// one (bash reads it so).
    #[test]
    fn timestamps_after_the_first_line_time_the_command_after_them() {
        let parsed =
            parse(b"ls\n#1700000000\npwd\nwhoami\n\n#1700000007\n#1700000009\ncd /\n#1700000010\n");
        assert_eq!(
            commands(&parsed),
            [
                (&b"ls"[..], None, 1),
                (b"pwd", Some(1_700_000_000_000_000), 3),
                (b"whoami", None, 4),
                (b"cd /", Some(1_700_000_009_000_000), 8),
            ]
        );
        let skipped: Vec<usize> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(skipped, [6, 9], "timestamps with no command after them");
    }

    #[test]
    fn with_timestamps_a_command_runs_to_the_next_one() {
        let parsed = parse(
            b"#1700000000\nls\n#1700000005\nfor i in 1 2; do\n  echo $i\ndone\n#1700000009\n# a comment\n",
        );
        assert_eq!(
            commands(&parsed),
            [
                (&b"ls"[..], Some(1_700_000_000_000_000), 1),
                (
                    b"for i in 1 2; do\n  echo $i\ndone",
                    Some(1_700_000_005_000_000),
                    3
                ),
                (b"# a comment", Some(1_700_000_009_000_000), 7),
            ]
        );
    }

    #[test]
    fn bytes_are_kept_and_an_empty_timestamp_is_skipped() {
        let parsed = parse(b"#1\necho \xff\xfe\r\n#2\n#3\nx\n");
        assert_eq!(parsed.entries[0].command, b"echo \xff\xfe\r");
        assert_eq!(parsed.entries[1].command, b"x");
        assert_eq!(parsed.skipped.len(), 1);
        assert_eq!(parsed.skipped[0].line, 3);
    }
}
