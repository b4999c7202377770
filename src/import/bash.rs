//! bash's history file (`~/.bash_history`, or `$HISTFILE`), as bash
//! writes it: one command per line, or, when `HISTTIMEFORMAT` was set,
//! each command after a `#<seconds since the epoch>` line. With
//! timestamps, a command may span several lines (`shopt -s lithist`): every
//! line up to the next timestamp belongs to it, which is how bash reads it
//! back. Without them, each line is a command, as bash reads it too.

use super::{HistoryEntry, Parsed, Skipped};

/// The entries of a bash history file's bytes, oldest first. Bytes are
/// kept exactly (bash writes what was typed, in any encoding).
pub fn parse(bytes: &[u8]) -> Parsed<HistoryEntry> {
    let lines = super::lines(bytes);
    let mut parsed = Parsed::default();
    // Like bash (`read_history_range`): lines group under timestamps only
    // when the file starts with one.
    let timestamped = lines.first().is_some_and(|(_, l)| timestamp(l).is_some());
    if !timestamped {
        for (number, line) in lines {
            if !line.is_empty() {
                parsed.entries.push(HistoryEntry {
                    command: line.to_vec(),
                    line: number,
                    ..HistoryEntry::default()
                });
            }
        }
        return parsed;
    }
    let mut current: Option<(usize, i64, Option<Vec<u8>>)> = None;
    let finish = |current: Option<(usize, i64, Option<Vec<u8>>)>, parsed: &mut Parsed<_>| {
        if let Some((number, at, command)) = current {
            match command {
                Some(command) => parsed.entries.push(HistoryEntry {
                    command,
                    started_at_us: Some(at.saturating_mul(1_000_000)),
                    line: number,
                    ..HistoryEntry::default()
                }),
                None => parsed.skipped.push(Skipped {
                    line: number,
                    why: "a timestamp with no command after it".into(),
                }),
            }
        }
    };
    for (number, line) in lines {
        if let Some(at) = timestamp(line) {
            finish(current.take(), &mut parsed);
            current = Some((number, at, None));
            continue;
        }
        if let Some((_, _, command)) = &mut current {
            match command {
                Some(command) => {
                    command.push(b'\n');
                    command.extend_from_slice(line);
                }
                None => *command = Some(line.to_vec()),
            }
        }
    }
    finish(current, &mut parsed);
    parsed
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
