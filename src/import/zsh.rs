//! zsh's history file (`~/.zsh_history`, or `$HISTFILE`), read as zsh reads
//! it (`readhistfile` in zsh's `Src/hist.c`):
//!
//! - a line ending in `\` goes on in the next line, the `\` read as a
//!   newline (zsh writes each newline of a command as `\` + newline);
//! - with `EXTENDED_HISTORY`, an entry is `: <start>:<elapsed>;<command>`,
//!   in seconds; without it, the entry is the command;
//! - the text is *metafied*: each byte zsh treats specially (NUL and
//!   0x83 to 0xa2) is written as 0x83 followed by the byte XOR 32, which
//!   is undone here, so the command's exact bytes come back.

use super::{HistoryEntry, Parsed};

/// zsh's `Meta` byte.
const META: u8 = 0x83;

/// The entries of a zsh history file's bytes, oldest first.
pub fn parse(bytes: &[u8]) -> Parsed<HistoryEntry> {
    super::parse_all(Reader::default(), bytes)
}

/// zsh's history, fed a line at a time.
#[derive(Debug, Default)]
pub struct Reader {
    /// The first line of the entry being read, while it goes on (its
    /// text so far is in `text`).
    start: Option<usize>,
    text: Vec<u8>,
}

impl super::Lines for Reader {
    type Entry = HistoryEntry;

    fn line(&mut self, number: usize, line: &[u8], out: &mut Parsed<HistoryEntry>) {
        self.start.get_or_insert(number);
        self.text.extend_from_slice(line);
        if let Some(last) = self.text.last_mut()
            && *last == b'\\'
        {
            *last = b'\n';
            return;
        }
        self.end(out);
    }

    fn end(&mut self, out: &mut Parsed<HistoryEntry>) {
        if let Some(start) = self.start.take()
            && let Some(entry) = entry(start, &self.text)
        {
            out.entries.push(entry);
        }
        self.text.clear();
    }
}

fn entry(line: usize, text: &[u8]) -> Option<HistoryEntry> {
    if text.is_empty() {
        return None;
    }
    let (started_at_us, duration_us, command) = match extended(text) {
        Some((start, elapsed, command)) => (
            Some(start.saturating_mul(1_000_000)),
            elapsed.map(|s| s.saturating_mul(1_000_000)),
            command,
        ),
        None => (None, None, text),
    };
    Some(HistoryEntry {
        command: unmetafy(command),
        started_at_us,
        duration_us,
        line,
        ..HistoryEntry::default()
    })
}

/// `: 1700000000:3;ls` → (1700000000, Some(3), `ls`). zsh accepts a
/// missing `:<elapsed>`; anything else is a plain command.
fn extended(text: &[u8]) -> Option<(i64, Option<i64>, &[u8])> {
    let rest = text.strip_prefix(b": ")?;
    let (start, rest) = number(rest)?;
    let (elapsed, rest) = match rest.strip_prefix(b":") {
        Some(rest) => {
            let (elapsed, rest) = number(rest)?;
            (Some(elapsed), rest)
        }
        None => (None, rest),
    };
    let command = rest.strip_prefix(b";")?;
    Some((start, elapsed, command))
}

fn number(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    let value = std::str::from_utf8(&bytes[..end]).ok()?.parse().ok()?;
    Some((value, &bytes[end..]))
}

/// zsh's `unmetafy`: 0x83 followed by `b` is the byte `b ^ 32`.
pub fn unmetafy(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter();
    while let Some(&b) = iter.next() {
        match (b, iter.as_slice().first()) {
            (META, Some(&next)) => {
                out.push(next ^ 32);
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
    fn extended_entries_give_start_and_elapsed() {
        let parsed = parse(b": 1700000000:3;sleep 3\n: 1700000010:0;ls -l\nplain\n");
        let e = &parsed.entries;
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].command, b"sleep 3");
        assert_eq!(e[0].started_at_us, Some(1_700_000_000_000_000));
        assert_eq!(e[0].duration_us, Some(3_000_000));
        assert_eq!((e[1].line, e[1].command.as_slice()), (2, &b"ls -l"[..]));
        assert_eq!(
            (e[2].command.as_slice(), e[2].started_at_us),
            (&b"plain"[..], None)
        );
    }

    #[test]
    fn a_backslash_at_the_end_of_a_line_is_a_newline() {
        let parsed = parse(b": 1:0;for i in 1 2\\\ndo echo $i\\\ndone\n: 2:0;next\n");
        assert_eq!(parsed.entries[0].command, b"for i in 1 2\ndo echo $i\ndone");
        assert_eq!(parsed.entries[0].line, 1);
        assert_eq!(
            (parsed.entries[1].line, parsed.entries[1].command.as_slice()),
            (4, &b"next"[..])
        );
    }

    #[test]
    fn metafied_bytes_come_back_exactly() {
        // "é" is c3 a9; a9 is not special, c3 neither. 0x83 and 0x9b are,
        // and NUL is: written as 83 a3, 83 bb, 83 20.
        assert_eq!(
            unmetafy(b"a\x83\xa3b\x83\xbb\x83\x20\xc3\xa9"),
            b"a\x83b\x9b\0\xc3\xa9"
        );
        let parsed = parse(b": 1:0;echo \x83\xa3\xff\n");
        assert_eq!(parsed.entries[0].command, b"echo \x83\xff");
    }

    #[test]
    fn what_is_not_the_extended_form_is_a_command() {
        for text in [&b": abc;x"[..], b": 12x;y", b":12:0;z"] {
            let parsed = parse(text);
            assert_eq!(parsed.entries[0].command, text);
            assert_eq!(parsed.entries[0].started_at_us, None);
        }
        assert!(parse(b": 5;no elapsed").entries[0].started_at_us.is_some());
    }
}
