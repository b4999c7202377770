//! The per-command cap: of one command's output (between the marks its
//! shell hook printed), the first [`HEAD`] and the last [`TAIL`] bytes
//! are kept; the bytes between are counted and hashed (SHA-256, after
//! redaction), not written, and a [`segment::CUT`] record says so where
//! they were. A `cat` of a 200 MB log thus costs half a MiB of segment,
//! and `show ID --output` says what is missing and how to recognise it.
//!
//! Output outside a command's marks (prompts, and panes whose shell has
//! no marks) is not capped: the total budget (`budget.rs`) bounds it.

use std::collections::VecDeque;

use memchr::memmem;
use sha2::{Digest, Sha256};

use super::segment::{self, Writer};

/// Bytes kept from the start of a command's output.
pub const HEAD: u64 = 256 << 10;
/// Bytes kept from its end.
pub const TAIL: usize = 256 << 10;

/// The start of the mark before a command's output, and after it.
const START: &[u8] = b"\x1b]133;C;ta=";
const END: &[u8] = b"\x1b]133;D;ta=";
/// How a start mark ends when its command is excluded (`exclude_mark`).
const EXCLUDED_END: &[u8] = b";x\x07";
/// What every mark starts with: a piece of text ending in a prefix of it
/// may end in a mark cut in two, held until the rest comes.
const MARK: &[u8] = b"\x1b]133;";
/// No mark is longer (a shell session id is tens of bytes).
const MARK_MAX: usize = 256;

/// The cap of the pane's commands, one at a time.
pub struct Cap {
    head: u64,
    tail: usize,
    command: Option<Command>,
    /// The end of the last text, which may be the start of a mark.
    held: Vec<u8>,
}

/// The output of the command running now.
#[derive(Default)]
struct Command {
    /// Matched `[capture] exclude`: nothing of it is kept, only counted.
    excluded: bool,
    kept: u64,
    tail: VecDeque<u8>,
    tail_at_us: i64,
    skipped: u64,
    sha256: Sha256,
}

impl Cap {
    pub fn new(head: u64, tail: usize) -> Cap {
        Cap {
            head,
            tail,
            command: None,
            held: Vec::new(),
        }
    }

    /// Passes `text` (redacted output read at `at_us`) on to `writer`,
    /// keeping of each command's output its head and its tail only, and
    /// none of an excluded command's.
    pub fn push(&mut self, at_us: i64, text: &[u8], writer: &mut Writer) {
        let joined;
        let mut text = if self.held.is_empty() {
            text
        } else {
            self.held.extend_from_slice(text);
            joined = std::mem::take(&mut self.held);
            &joined[..]
        };
        // A mark cut in two is seen whole next time: the start of an
        // excluded command's mark must not let its output through.
        let keep = partial_mark(text);
        self.held.extend_from_slice(&text[text.len() - keep..]);
        text = &text[..text.len() - keep];
        self.pass(at_us, text, writer);
    }

    fn pass(&mut self, at_us: i64, mut text: &[u8], writer: &mut Writer) {
        while !text.is_empty() {
            if self.command.is_none() {
                let Some(at) = memmem::find(text, START) else {
                    writer.push(segment::OUTPUT, at_us, text);
                    return;
                };
                // The mark whole (to its BEL), then the command's output.
                let end = memchr::memchr(0x07, &text[at..]).map_or(text.len(), |i| at + i + 1);
                writer.push(segment::OUTPUT, at_us, &text[..end]);
                self.command = Some(Command {
                    excluded: text[..end].ends_with(EXCLUDED_END),
                    ..Command::default()
                });
                text = &text[end..];
                continue;
            }
            // Its end mark; or the next command's start, when the end of
            // this one was never printed (its shell was killed), or when
            // this one is excluded after all (bash: a later simple command).
            let next = [memmem::find(text, END), memmem::find(text, START)]
                .into_iter()
                .flatten()
                .min();
            let body = &text[..next.unwrap_or(text.len())];
            if let Some(command) = self.command.as_mut() {
                command.take(at_us, body, (self.head, self.tail), writer);
            }
            match next {
                None => return,
                Some(at) => {
                    self.end_command(at_us, writer);
                    text = &text[at..];
                }
            }
        }
    }

    /// The capture ends: what is held, then the end of the command
    /// running, if any.
    pub fn finish(&mut self, at_us: i64, writer: &mut Writer) {
        let held = std::mem::take(&mut self.held);
        self.pass(at_us, &held, writer);
        self.end_command(at_us, writer);
    }

    /// Ends the command running, if any: what was skipped, then its tail.
    fn end_command(&mut self, at_us: i64, writer: &mut Writer) {
        let Some(mut command) = self.command.take() else {
            return;
        };
        if command.excluded {
            // Also when it printed nothing: `show --output` says why.
            let at = if command.skipped > 0 {
                command.tail_at_us.min(at_us)
            } else {
                at_us
            };
            writer.push(segment::EXCLUDED, at, &command.skipped.to_le_bytes());
            return;
        }
        if command.skipped > 0 {
            let mut payload = command.skipped.to_le_bytes().to_vec();
            payload.extend_from_slice(&command.sha256.finalize());
            writer.push(segment::CUT, command.tail_at_us.min(at_us), &payload);
        }
        if !command.tail.is_empty() {
            writer.push(segment::OUTPUT, at_us, command.tail.make_contiguous());
        }
    }
}

/// How many bytes at the end of `text` may be the start of a mark the
/// next text completes: from its last ESC, when what follows is a prefix
/// of [`MARK`], or a mark without its BEL yet.
pub fn partial_mark(text: &[u8]) -> usize {
    let from = text.len().saturating_sub(MARK_MAX);
    let Some(esc) = memchr::memrchr(0x1b, &text[from..]).map(|i| from + i) else {
        return 0;
    };
    let rest = &text[esc..];
    let n = rest.len().min(MARK.len());
    if rest[..n] != MARK[..n] || (rest.len() > MARK.len() && rest.contains(&0x07)) {
        return 0;
    }
    rest.len()
}

/// From where to keep the marks of dropped reads (see [`marks_only`])
/// when there are too many to keep: the last start mark of ours (which
/// command runs after the gap, and whether it is excluded), else the last
/// mark.
pub fn last_command_marks(marks: &[u8]) -> usize {
    memmem::rfind(marks, START)
        .or_else(|| memmem::rfind(marks, MARK))
        .unwrap_or(0)
}

/// Where the whole marks of ours in `text` are (each from its ESC to its
/// BEL, within [`MARK_MAX`] bytes), in order.
pub fn marks_in(text: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(found) = memmem::find(&text[from..], MARK) {
            let at = from + found;
            let mark = &text[at..];
            from = at + MARK.len();
            if let Some(i) = memchr::memchr(0x07, &mark[..mark.len().min(MARK_MAX)])
                && (mark.starts_with(START) || mark.starts_with(END))
            {
                from = at + i + 1;
                return Some(at..from);
            }
        }
        None
    })
}

/// The marks of ours in `text` (each from its ESC to its BEL, within
/// [`MARK_MAX`] bytes, and one cut off at the end), without the output
/// between them: what is kept of a read the capture must drop (its writer
/// is behind), so that which command is running, and whether it is
/// excluded, is still known after the gap. `inside`: the read before
/// (dropped too, or kept) ended inside a mark, which this one's head (up
/// to its BEL) ends. Also says whether `text` ends inside a mark.
pub fn marks_only(text: &[u8], inside: bool) -> (Vec<u8>, bool) {
    let mut marks = Vec::new();
    let mut rest = text;
    if inside && let Some(i) = memchr::memchr(0x07, &rest[..rest.len().min(MARK_MAX)]) {
        marks.extend_from_slice(&rest[..=i]);
        rest = &rest[i + 1..];
    }
    while let Some(at) = memmem::find(rest, MARK) {
        let mark = &rest[at..];
        match memchr::memchr(0x07, &mark[..mark.len().min(MARK_MAX)]) {
            Some(i) if mark.starts_with(START) || mark.starts_with(END) => {
                marks.extend_from_slice(&mark[..=i]);
                rest = &mark[i + 1..];
            }
            // Cut off by the end of the read: kept below.
            None if mark.len() < MARK_MAX => {
                rest = mark;
                break;
            }
            // Another program's (a nested shell's OSC 133, ended by ST),
            // or no BEL near: not a mark of ours.
            _ => rest = &mark[MARK.len()..],
        }
    }
    let keep = partial_mark(rest);
    marks.extend_from_slice(&rest[rest.len() - keep..]);
    (marks, keep > 0)
}

impl Command {
    fn take(&mut self, at_us: i64, mut bytes: &[u8], (head, tail): (u64, usize), w: &mut Writer) {
        if self.excluded {
            if self.skipped == 0 {
                self.tail_at_us = at_us;
            }
            self.skipped += bytes.len() as u64;
            return;
        }
        if self.kept < head {
            let n = (head - self.kept).min(bytes.len() as u64) as usize;
            if n > 0 {
                w.push(segment::OUTPUT, at_us, &bytes[..n]);
            }
            self.kept += n as u64;
            bytes = &bytes[n..];
        }
        if bytes.is_empty() {
            return;
        }
        if self.skipped == 0 && self.tail.is_empty() {
            self.tail_at_us = at_us;
        }
        // What no longer fits in the tail: first its oldest bytes, then
        // the oldest of these.
        let over = (self.tail.len() + bytes.len()).saturating_sub(tail);
        let from_tail = over.min(self.tail.len());
        if from_tail > 0 {
            let (a, b) = self.tail.as_slices();
            let in_a = from_tail.min(a.len());
            self.sha256.update(&a[..in_a]);
            self.sha256.update(&b[..from_tail - in_a]);
            self.tail.drain(..from_tail);
        }
        let from_new = over - from_tail;
        self.sha256.update(&bytes[..from_new]);
        self.skipped += over as u64;
        self.tail.extend(&bytes[from_new..]);
    }
}

/// What a [`segment::CUT`] record says: how many bytes were not kept, and
/// their SHA-256.
pub fn cut_of(payload: &[u8]) -> Option<(u64, [u8; 32])> {
    let count = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let sha256 = payload.get(8..40)?.try_into().ok()?;
    Some((count, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole marks of ours only: not another program's OSC 133 (ended by
    /// ST), nor one cut off, nor a BEL too far.
    #[test]
    fn marks_in_finds_our_whole_marks() {
        let text = b"a\x1b]133;D;ta=s/1\x07b\x1b]133;A\x1b\\c\x1b]133;C;ta=s/2;x\x07\x1b]133;C;t";
        let found: Vec<&[u8]> = marks_in(text).map(|r| &text[r]).collect();
        assert_eq!(
            found,
            [&b"\x1b]133;D;ta=s/1\x07"[..], b"\x1b]133;C;ta=s/2;x\x07"]
        );
        let far = [b"\x1b]133;C;ta=".as_slice(), &[b'x'; MARK_MAX], b"\x07"].concat();
        assert_eq!(marks_in(&far).count(), 0);
        assert_eq!(marks_in(b"").count(), 0);
    }

    #[test]
    fn a_dropped_read_keeps_its_marks_and_nothing_else() {
        let text = b"secret\x1b]133;D;ta=s/1\x07more\x1b]133;C;ta=s/2\x07\x1b]133;C;ta=s/2;x\x07hidden\x1b]133;C;t";
        assert_eq!(
            marks_only(text, false),
            (
                b"\x1b]133;D;ta=s/1\x07\x1b]133;C;ta=s/2\x07\x1b]133;C;ta=s/2;x\x07\x1b]133;C;t"
                    .to_vec(),
                true
            )
        );
        assert_eq!(
            marks_only(b"plain \x1b[31mred\x1b[0m\n", false),
            (vec![], false)
        );
        // Another shell's OSC 133 ended by ST: not ours, and not the rest
        // of the read either.
        let nested = [b"\x1b]133;A\x1b\\".as_slice(), &[b'x'; 1000]].concat();
        assert_eq!(marks_only(&nested, false), (vec![], false));
        // A mark cut between two dropped reads: its end comes with the second.
        let (first, inside) = marks_only(b"out\x1b]133;C;ta=s/2", false);
        assert!(inside);
        let (second, inside) = marks_only(b";x\x07secret", true);
        assert!(!inside);
        assert_eq!([first, second].concat(), b"\x1b]133;C;ta=s/2;x\x07");
    }

    fn records(pieces: &[&[u8]], head: u64, tail: usize) -> Vec<segment::Record> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        let mut w = Writer::new(&root, root.join("1-1")).unwrap();
        let mut cap = Cap::new(head, tail);
        for (i, piece) in pieces.iter().enumerate() {
            cap.push(i as i64, piece, &mut w);
        }
        cap.finish(99, &mut w);
        w.flush(0).unwrap();
        let path = &segment::list(&root.join("1-1")).unwrap()[0];
        segment::read(path).unwrap().records
    }

    #[test]
    fn a_long_output_keeps_its_head_and_tail_and_hashes_the_middle() {
        let start = crate::capture::start_mark("s", 1);
        let end = crate::capture::end_mark("s", 1);
        let body: Vec<u8> = (0..1000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let mut text = b"$ ".to_vec();
        text.extend_from_slice(&start);
        // Over many pieces, so that the tail rolls.
        let pieces: Vec<&[u8]> = std::iter::once(&text[..])
            .chain(body.chunks(37))
            .chain([&end[..], b"$ "])
            .collect();
        let records = records(&pieces, 100, 50);
        let mut kept = Vec::new();
        let mut cut = None;
        for r in &records {
            match r.kind {
                segment::OUTPUT => kept.extend_from_slice(&r.payload),
                segment::CUT => cut = Some((kept.len(), cut_of(&r.payload).unwrap())),
                _ => {}
            }
        }
        let (at, (count, sha)) = cut.expect("a cut record");
        let middle = &body[100..body.len() - 50];
        assert_eq!(count, middle.len() as u64);
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(middle)));
        let mut expected = text.clone();
        expected.extend_from_slice(&body[..100]);
        assert_eq!(at, expected.len(), "the cut is where the bytes were");
        expected.extend_from_slice(&body[body.len() - 50..]);
        expected.extend_from_slice(&end);
        expected.extend_from_slice(b"$ ");
        assert_eq!(kept, expected);
    }

    #[test]
    fn an_excluded_command_keeps_nothing_of_its_output_but_its_count() {
        let start = crate::capture::start_mark("s", 3);
        let exclude = crate::capture::exclude_mark("s", 3);
        let end = crate::capture::end_mark("s", 3);
        let next = crate::capture::start_mark("s", 4);
        let secret = b"hunter2-correct-horse\n".repeat(10);
        let text = [
            &b"$ "[..],
            &start,
            b"before\n",
            &exclude,
            &secret,
            &end,
            b"$ ",
            &next,
            b"after\n",
        ]
        .concat();
        // Cut at every byte: a mark in two pieces holds its output back
        // just the same.
        for split in 1..text.len() {
            let records = records(&[&text[..split], &text[split..]], 100, 50);
            let kept: Vec<u8> = records
                .iter()
                .filter(|r| r.kind == segment::OUTPUT)
                .flat_map(|r| r.payload.clone())
                .collect();
            assert!(memmem::find(&kept, b"hunter2").is_none(), "split {split}");
            let expected = [
                &b"$ "[..],
                &start,
                b"before\n",
                &exclude,
                &end,
                b"$ ",
                &next,
                b"after\n",
            ]
            .concat();
            assert_eq!(kept, expected, "split {split}");
            let excluded: Vec<u64> = records
                .iter()
                .filter(|r| r.kind == segment::EXCLUDED)
                .map(|r| r.lost())
                .collect();
            assert_eq!(excluded, [secret.len() as u64], "split {split}");
        }
    }

    #[test]
    fn text_ending_in_what_may_start_a_mark_is_held_and_nothing_else() {
        assert_eq!(partial_mark(b"abc"), 0);
        assert_eq!(partial_mark(b"abc\x1b"), 1);
        assert_eq!(partial_mark(b"abc\x1b]13"), 4);
        assert_eq!(partial_mark(b"abc\x1b]133;C;ta=s/1"), 14);
        assert_eq!(partial_mark(b"abc\x1b]133;C;ta=s/1\x07"), 0);
        assert_eq!(partial_mark(b"abc\x1b[0m"), 0);
        assert_eq!(partial_mark(b"abc\x1b]0;title"), 0);
    }

    #[test]
    fn a_short_output_and_text_outside_commands_are_kept_whole() {
        let start = crate::capture::start_mark("s", 2);
        let end = crate::capture::end_mark("s", 2);
        let text = [&b"before "[..], &start, b"short\n", &end, b" after"].concat();
        let records = records(&[&text], 100, 50);
        assert!(records.iter().all(|r| r.kind != segment::CUT));
        let kept: Vec<u8> = records.iter().flat_map(|r| r.payload.clone()).collect();
        assert_eq!(kept, text);
    }
}
