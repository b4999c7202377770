//! The `tmux-audit capture` process of one pane: reads what tmux pipes to
//! it (`pipe-pane`), redacts it, and appends it to the pane's segments.
//!
//! It must never slow the pane: tmux writes to the pipe without waiting
//! and keeps in memory what the pipe cannot take. So one thread only reads,
//! timestamps and queues (at most [`QUEUE_BYTES`] bytes), and another redacts,
//! compresses and writes. When the queue is full, the reader waits for
//! room (tmux holds the output meanwhile), at most [`STALL`] in all until
//! it has caught up with tmux; past that (the disk stalls) reads are
//! dropped and counted, and the count is recorded as a gap.
//!
//! Redaction sees whole lines: a secret split across two reads is joined
//! first. A line is held until its end comes, at most [`MAX_LINE`] bytes
//! and [`IDLE`] (a prompt has no newline). A private key's block is
//! redacted to its END line even when it comes over many reads.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::{memmem, memrchr};

use super::cap::{self, Cap};
use super::seal::Seal;
use super::segment::{self, Writer};
use crate::config::Redact;
use crate::redact::{Redactor, MARK};

/// Bytes queued between the reader and the writer, at most. Bounded by
/// bytes, not by reads: tmux hands a pane's output over in reads of a few
/// hundred bytes, and a bound of 16 reads dropped output whenever the
/// writer fell behind for a moment.
const QUEUE_BYTES: usize = 2 << 20;
const READ: usize = 64 << 10;
/// How long, in all, the reader waits for room in a full queue before it
/// drops what it reads, until a read it queues has caught up with tmux
/// again (taken all there was: see [`Patience`]). A moment of a busy CPU
/// or a slow write costs nothing, while what tmux holds meanwhile is
/// bounded: for a pane printing 50 MB/s, 12.5 MB more for a while.
const STALL: Duration = Duration::from_millis(250);
/// How long the reader lets output gather once it has read all there was.
const GATHER: Duration = Duration::from_millis(2);
/// A line longer than this is redacted and written in pieces.
pub const MAX_LINE: usize = 16 << 10;
/// A partial line (a prompt) is written after this long without output.
const IDLE: Duration = Duration::from_millis(100);
/// What is pending is written at least this often while output flows.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How a capture ended.
#[derive(Debug, Default)]
pub struct Summary {
    pub bytes: u64,
    /// Output bytes lost: dropped while the queue was full, or not written.
    pub lost: u64,
    /// The first write error, if any.
    pub error: Option<String>,
}

fn now_us() -> i64 {
    crate::store::now_us()
}

/// Captures `input` until it ends into the segments of `dir` (under the
/// capture root `root`). `sealed` is given each segment once it is closed
/// (to chain its hash: see [`super::seal`]), on the writing thread, so it
/// must not wait (the caller hands the database's work to a thread of its
/// own). `failed` is told when writing starts failing (a full disk), once
/// until a write works again: meanwhile output is counted and dropped, and
/// a [`segment::GAP`] says so once it works.
pub fn run(
    input: impl Read + Send + 'static,
    root: &Path,
    dir: PathBuf,
    redact: &Redact,
    mut sealed: impl FnMut(Seal),
    mut failed: impl FnMut(&io::Error),
) -> io::Result<Summary> {
    let mut writer = Writer::new(root, dir)?;
    writer.push(segment::START, now_us(), b"");
    writer.flush(now_us())?;

    let (tx, rx) = mpsc::channel::<Piece>();
    let queued = Arc::new(AtomicU64::new(0));
    let reader = {
        let queued = Arc::clone(&queued);
        std::thread::spawn(move || read_all(input, tx, &queued, STALL))
    };

    let mut summary = Summary::default();
    let mut lines = Lines::new(Redactor::new(redact));
    let mut last_flush = Instant::now();
    let mut failing = false;
    let mut flush = |writer: &mut Writer, summary: &mut Summary| {
        match writer.flush(now_us()) {
            Err(err) => {
                if !failing {
                    failed(&err);
                }
                failing = true;
                summary.error.get_or_insert_with(|| err.to_string());
            }
            Ok(()) => failing = false,
        }
        writer.take_sealed().into_iter().for_each(&mut sealed);
    };
    loop {
        match rx.recv_timeout(IDLE) {
            Ok(Piece::Lost(lost)) => {
                summary.lost += lost.bytes;
                lines.finish(&mut writer);
                writer.push(segment::GAP, lost.first_us, &lost.payload());
            }
            Ok(Piece::Output(at_us, bytes)) => {
                queued.fetch_sub(bytes.len() as u64, Ordering::Relaxed);
                summary.bytes += bytes.len() as u64;
                lines.feed(at_us, &bytes, &mut writer);
                if writer.pending() >= segment::FULL_FRAME || last_flush.elapsed() >= FLUSH_EVERY {
                    flush(&mut writer, &mut summary);
                    last_flush = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                lines.finish(&mut writer);
                flush(&mut writer, &mut summary);
                last_flush = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let read_bytes = reader.join().unwrap_or(0);
    lines.end(now_us(), &mut writer);
    writer.push(segment::END, now_us(), b"");
    writer.flush(now_us()).unwrap_or_else(|err| {
        summary.error.get_or_insert_with(|| err.to_string());
    });
    writer.close();
    writer.take_sealed().into_iter().for_each(&mut sealed);
    summary.bytes = summary.bytes.max(read_bytes);
    Ok(summary)
}

/// What the reader hands the writer, in the order it read it.
#[derive(Debug, PartialEq)]
enum Piece {
    /// Output, and when it was read.
    Output(i64, Vec<u8>),
    /// Output dropped while the writer was behind (see [`STALL`]), told
    /// where it was, before what was read after it: a gap is placed, and
    /// timed, where the output went missing.
    Lost(Lost),
}

/// Output dropped: how many bytes, read from `first_us` to `last_us`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Lost {
    bytes: u64,
    first_us: i64,
    last_us: i64,
}

impl Lost {
    /// A [`segment::GAP`]'s payload: the count, then the first and last time.
    fn payload(&self) -> Vec<u8> {
        [
            &self.bytes.to_le_bytes()[..],
            &self.first_us.to_le_bytes(),
            &self.last_us.to_le_bytes(),
        ]
        .concat()
    }

    fn add(lost: &mut Option<Lost>, bytes: u64, at_us: i64) {
        if bytes == 0 {
            return;
        }
        let more = lost.get_or_insert(Lost {
            bytes: 0,
            first_us: at_us,
            last_us: at_us,
        });
        more.bytes += bytes;
        more.last_us = at_us;
    }
}

/// The reader thread: waits for the writer at most `stall` while it is
/// behind (see [`STALL`]). Returns the bytes read.
fn read_all(
    mut input: impl Read,
    tx: mpsc::Sender<Piece>,
    queued: &AtomicU64,
    stall: Duration,
) -> u64 {
    let mut buf = vec![0u8; READ];
    let mut total = 0u64;
    let mut untold = Untold::default();
    // The last read was dropped in the middle of a mark.
    let mut inside_mark = false;
    let mut patience = Patience::new(stall);
    let is_full = || queued.load(Ordering::Relaxed) + READ as u64 > QUEUE_BYTES as u64;
    loop {
        while is_full() && patience.left() {
            patience.wait();
        }
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let at_us = now_us();
        total += n as u64;
        // The writer behind by more than the queue holds for longer than
        // `stall` (the disk stalls): dropped and counted.
        if queued.load(Ordering::Relaxed) + n as u64 > QUEUE_BYTES as u64 {
            // Its marks go on all the same (a few bytes): a command that
            // starts, excluded, in a dropped read must not have the output
            // after the gap kept as the command before's.
            let marks;
            (marks, inside_mark) = cap::marks_only(&buf[..n], inside_mark);
            untold.dropped(n, marks, at_us);
            continue;
        }
        // A mark cut off at its end: the next read, if dropped, keeps the
        // rest (an excluded command's `;x` must not be lost there).
        inside_mark = cap::partial_mark(&buf[..n]) > 0;
        if untold.tell(&tx, queued).is_err() {
            return total;
        }
        queued.fetch_add(n as u64, Ordering::Relaxed);
        if tx.send(Piece::Output(at_us, buf[..n].to_vec())).is_err() {
            return total;
        }
        patience.queued(n < buf.len());
        if n < buf.len() {
            // Caught up with tmux: the next output gathers in the socket
            // meanwhile (about 200 KiB; tmux never waits for a full one, it
            // keeps what the socket cannot take). tmux writes a few KiB at
            // a time, and a read, two wake-ups and a redaction for each
            // cost the capture process a fifth more CPU per MB (200 MB of
            // log lines: 1.43 s against 1.7-1.85 s). Sized for Linux's
            // socket buffers: it caps reading at about 100 MB/s, beyond
            // what tmux itself parses (~40 MB/s here); where a socket
            // holds only a few KiB the cap would be that much lower.
            std::thread::sleep(GATHER);
        }
    }
    let _ = untold.tell(&tx, queued);
    total
}

/// Marks of dropped reads kept for the writer, at most (past that, only
/// the last command's: see [`cap::last_command_marks`]). Output made of
/// marks (`tmux-audit replay` in a captured pane prints the old ones)
/// must not grow the capture process while its disk stalls.
const MARKS_HELD: usize = 64 << 10;

/// What the reader dropped and has not told the writer yet: the loss, and
/// the marks of the dropped reads (a command that starts, excluded, in a
/// dropped read must not have the output after the gap kept as the
/// command before's). Told before whatever is sent next.
#[derive(Default)]
struct Untold {
    lost: Option<Lost>,
    marks: Vec<u8>,
    marks_at_us: i64,
}

impl Untold {
    /// A read of `read` bytes dropped, but for its `marks`.
    fn dropped(&mut self, read: usize, marks: Vec<u8>, at_us: i64) {
        Lost::add(&mut self.lost, (read - marks.len()) as u64, at_us);
        if marks.is_empty() {
            return;
        }
        self.marks.extend_from_slice(&marks);
        self.marks_at_us = at_us;
        if self.marks.len() > MARKS_HELD {
            let from = cap::last_command_marks(&self.marks);
            self.marks.drain(..from);
            Lost::add(&mut self.lost, from as u64, at_us);
        }
    }

    /// Sends the loss, then the marks.
    fn tell(&mut self, tx: &mpsc::Sender<Piece>, queued: &AtomicU64) -> Result<(), ()> {
        if let Some(lost) = self.lost.take() {
            tx.send(Piece::Lost(lost)).map_err(drop)?;
        }
        if !self.marks.is_empty() {
            let marks = std::mem::take(&mut self.marks);
            queued.fetch_add(marks.len() as u64, Ordering::Relaxed);
            tx.send(Piece::Output(self.marks_at_us, marks))
                .map_err(drop)?;
        }
        Ok(())
    }
}

/// How long the reader may still wait for a writer behind: `stall` in all
/// since it last caught up with tmux with a read it queued. A read it
/// dropped does not count, however short: while the writer stays behind
/// the reader reads on at once, so what tmux holds drains.
struct Patience {
    waited: Duration,
    stall: Duration,
}

impl Patience {
    fn new(stall: Duration) -> Patience {
        Patience {
            waited: Duration::ZERO,
            stall,
        }
    }

    fn left(&self) -> bool {
        self.waited < self.stall
    }

    fn wait(&mut self) {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        self.waited += start.elapsed();
    }

    /// A read was queued; `took_all`: it took all there was, so tmux
    /// holds nothing of the pane's.
    fn queued(&mut self, took_all: bool) {
        if took_all {
            self.waited = Duration::ZERO;
        }
    }
}

/// Output cut into lines for redaction.
struct Lines {
    redactor: Redactor,
    /// Each command's output capped, after redaction.
    cap: Cap,
    partial: Vec<u8>,
    partial_at: i64,
    /// Inside a private key's block whose END has not come yet.
    in_key: bool,
    /// The end of the last line written without its newline (a pause
    /// wrote what was held), at most [`LINE_START`] bytes: a key's BEGIN
    /// line cut there is known as one when its end comes, and a secret
    /// typed after its name is known as one.
    line_start: Vec<u8>,
    /// That line ends inside a secret, marked already.
    in_secret: bool,
}

/// What is kept of a line written before its end: a key's BEGIN line
/// (`-----BEGIN ENCRYPTED PRIVATE KEY-----`) is shorter, and so is a
/// command line typed at a prompt, mostly.
const LINE_START: usize = 1024;

impl Lines {
    fn new(redactor: Redactor) -> Lines {
        Lines {
            redactor,
            cap: Cap::new(cap::HEAD, cap::TAIL),
            partial: Vec::new(),
            partial_at: 0,
            in_key: false,
            line_start: Vec::new(),
            in_secret: false,
        }
    }

    /// Adds output read at `at_us`; writes the lines it completes.
    fn feed(&mut self, at_us: i64, bytes: &[u8], writer: &mut Writer) {
        if self.partial.is_empty() {
            self.partial_at = at_us;
        }
        match memrchr(b'\n', bytes) {
            None => self.partial.extend_from_slice(bytes),
            Some(end) => {
                let mut text = std::mem::take(&mut self.partial);
                text.extend_from_slice(&bytes[..=end]);
                self.write(at_us, text, writer);
                self.partial.extend_from_slice(&bytes[end + 1..]);
                self.partial_at = at_us;
            }
        }
        while self.partial.len() > MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            let head = std::mem::replace(&mut self.partial, rest);
            self.write(self.partial_at, head, writer);
        }
    }

    /// Writes the partial line held, if any.
    fn finish(&mut self, writer: &mut Writer) {
        if !self.partial.is_empty() {
            let text = std::mem::take(&mut self.partial);
            self.write(self.partial_at, text, writer);
        }
    }

    /// The end of the capture: what is held, and the tail of a command
    /// still running.
    fn end(&mut self, at_us: i64, writer: &mut Writer) {
        self.finish(writer);
        self.cap.finish(at_us, writer);
    }

    fn write(&mut self, at_us: i64, text: Vec<u8>, writer: &mut Writer) {
        let text = self.redact(text);
        self.cap.push(at_us, &text, writer);
    }

    fn redact(&mut self, mut text: Vec<u8>) -> Vec<u8> {
        let mut head = Vec::new();
        let line_start = self.note_line_start(&text);
        if !self.in_key && !line_start.is_empty() {
            // A key's BEGIN line cut by a pause: its start written, its
            // end here, and the block after it.
            if let Some(nl) = memchr::memchr(b'\n', &text) {
                let line = [line_start.as_slice(), &text[..=nl]].concat();
                if key_block_left_open(&line) == Some(true) {
                    head.extend(text.drain(..=nl));
                    self.in_key = true;
                }
            }
        }
        if self.in_key {
            // The block goes on while its lines are what a key holds.
            let mut at = 0;
            while at < text.len() {
                let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i + 1);
                let line = &text[at..end];
                if memmem::find(line, b"-----END ").is_some() {
                    self.in_key = false;
                    head.extend_from_slice(MARK);
                    head.extend_from_slice(line_ending(line));
                    at = end;
                    break;
                }
                if !line.iter().all(|b| is_key_byte(*b)) {
                    self.in_key = false;
                    break;
                }
                head.extend_from_slice(MARK);
                head.extend_from_slice(line_ending(line));
                at = end;
            }
            text.drain(..at);
        }
        if let Some(open) = key_block_left_open(&text) {
            self.in_key = open;
        }
        // The rest of a line whose start was written (a pause wrote what
        // was held: keys typed at a prompt are echoed one at a time) is
        // judged with that start, so that `DB_PASSWORD=` then `hunter2`
        // is a secret: what was written stays, the rest of it is marked.
        let from = if head.is_empty() { line_start.len() } else { 0 };
        let context = if from > 0 {
            [line_start.as_slice(), &text].concat()
        } else {
            std::mem::take(&mut text)
        };
        let spans = secret_spans(&self.redactor, &context);
        let text = if spans.is_empty() {
            self.in_secret = false;
            if from > 0 {
                context[from..].to_vec()
            } else {
                context
            }
        } else {
            let (marked, inside) = crate::redact::mark_after(&context, spans, from, self.in_secret);
            self.in_secret = inside;
            marked
        };
        if head.is_empty() {
            text
        } else {
            head.extend_from_slice(&text);
            head
        }
    }
}

/// The secrets of `text`, found a piece between our marks at a time: a
/// mark is never part of a secret. A value runs to a space or a quote,
/// and a mark has neither: the end mark after `DB_PASSWORD=hunter2` on a
/// last line without a newline (`cat .env`) was redacted with the value,
/// and the command's output ran on into the next ones'.
fn secret_spans(redactor: &Redactor, text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    // A mark cut off at the end (its rest comes with the next text, which
    // judges it with this one's end) is no more part of a secret.
    let end = text.len() - cap::partial_mark(text);
    for mark in cap::marks_in(text).chain(std::iter::once(end..text.len())) {
        let piece = redactor.spans(&text[at..mark.start]);
        spans.extend(piece.into_iter().map(|(start, end)| (at + start, at + end)));
        at = mark.end;
    }
    spans
}

/// Whether `text` leaves a private key's block open, following its
/// `-----BEGIN …` and `-----END …` lines in order; `None` when it has
/// neither. In order, because the first BEGIN is not always the key's: a
/// command line echoed before its output can hold a BEGIN and an END of
/// its own (`printf -- '-----BEGIN RSA %s KEY-----…-----END …'`).
fn key_block_left_open(text: &[u8]) -> Option<bool> {
    let mut open = None;
    for at in memmem::find_iter(text, b"-----") {
        let rest = &text[at + 5..];
        let rest = &rest[rest.iter().take_while(|b| **b == b'-').count()..];
        if rest.starts_with(b"BEGIN ") {
            let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
            open = Some(memmem::find(line, b"PRIVATE KEY").is_some());
        } else if rest.starts_with(b"END ") {
            open = Some(false);
        }
    }
    open
}

impl Lines {
    /// Keeps the end of `text`'s last line when it has no newline (for the
    /// next text); gives back what was kept before it.
    fn note_line_start(&mut self, text: &[u8]) -> Vec<u8> {
        let before = std::mem::take(&mut self.line_start);
        let (mut now, rest) = match memrchr(b'\n', text) {
            Some(end) => (Vec::new(), &text[end + 1..]),
            None => (before.clone(), text),
        };
        now.extend_from_slice(&rest[rest.len().saturating_sub(LINE_START)..]);
        if now.len() > LINE_START {
            now.drain(..now.len() - LINE_START);
        }
        self.line_start = now;
        before
    }
}

fn line_ending(line: &[u8]) -> &'static [u8] {
    if line.ends_with(b"\r\n") {
        b"\r\n"
    } else if line.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

/// A byte of a PEM body or its headers.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+/=:,.- \t\r\n".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Redact;

    /// What the reader sent: the output, and `L<bytes>` for each loss,
    /// in order.
    fn sent(rx: &mpsc::Receiver<Piece>) -> Vec<Vec<u8>> {
        rx.try_iter()
            .map(|piece| match piece {
                Piece::Output(_, bytes) => bytes,
                Piece::Lost(lost) => format!("L{}", lost.bytes).into_bytes(),
            })
            .collect()
    }

    /// The writer behind (the queue full) past the stall: a read is
    /// dropped and counted, but its marks go on, so an excluded command
    /// starting in it stays excluded after the gap.
    #[test]
    fn a_read_dropped_for_a_full_queue_still_hands_on_its_marks() {
        let (tx, rx) = mpsc::channel();
        let queued = AtomicU64::new(QUEUE_BYTES as u64);
        let mark: &[u8] = b"\x1b]133;C;ta=s/2;x\x07";
        let input = [b"out".as_slice(), mark, b"secret"].concat();
        let total = read_all(&input[..], tx, &queued, Duration::ZERO);
        assert_eq!(total, input.len() as u64);
        // The loss told first: "out and secret".
        assert_eq!(sent(&rx), [b"L9".to_vec(), mark.to_vec()]);
        assert_eq!(
            queued.load(Ordering::Relaxed),
            (QUEUE_BYTES + mark.len()) as u64
        );
    }

    /// Output made of marks, dropped for a long stall (the queue full
    /// throughout): the marks kept for the writer stay bounded, the rest
    /// counted as lost, and the last command's marks are kept, so that an
    /// excluded command stays excluded after the gap.
    #[test]
    fn the_marks_of_a_long_stall_are_bounded_and_the_last_commands_kept() {
        let (tx, rx) = mpsc::channel();
        let queued = AtomicU64::new(QUEUE_BYTES as u64);
        let mut input: Vec<u8> = (0..40_000)
            .flat_map(|n| {
                [
                    crate::capture::start_mark("s", n),
                    crate::capture::end_mark("s", n),
                ]
                .concat()
            })
            .collect();
        let last = [
            crate::capture::start_mark("s", 40_000),
            crate::capture::exclude_mark("s", 40_000),
        ]
        .concat();
        input.extend_from_slice(&last);
        input.extend_from_slice(b"secret");
        let total = read_all(&input[..], tx, &queued, Duration::ZERO);
        assert_eq!(total, input.len() as u64);
        let pieces: Vec<Piece> = rx.try_iter().collect();
        let [Piece::Lost(lost), Piece::Output(_, marks)] = &pieces[..] else {
            panic!("{} pieces", pieces.len());
        };
        assert!(marks.len() <= MARKS_HELD, "{} bytes of marks", marks.len());
        assert!(marks.ends_with(&last), "the last command's marks are kept");
        assert!(
            marks.starts_with(b"\x1b]133;C;ta=s/"),
            "from a start mark on"
        );
        assert_eq!(lost.bytes + marks.len() as u64, total);
    }

    /// Output lost while the writer is behind is told in its place: after
    /// what was read before it, before what is read after, with when it
    /// was read (a gap placed by the writer's next read went to the
    /// command before, and was timed by it).
    #[test]
    fn a_loss_is_told_between_what_came_before_and_after_it() {
        struct Reads<'a> {
            reads: Vec<(&'a [u8], bool)>,
            queued: &'a AtomicU64,
        }
        impl Read for Reads<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.reads.is_empty() {
                    return Ok(0);
                }
                let (read, full) = self.reads.remove(0);
                // The writer behind (or caught up) as this read comes.
                let queued = if full { QUEUE_BYTES as u64 } else { 0 };
                self.queued.store(queued, Ordering::Relaxed);
                buf[..read.len()].copy_from_slice(read);
                Ok(read.len())
            }
        }
        let (tx, rx) = mpsc::channel();
        let queued = AtomicU64::new(0);
        let input = Reads {
            reads: vec![
                (b"cat's", false),
                (b"lost", true),
                (b"more lost", true),
                (b"echo's", false),
                (b"at the end", true),
            ],
            queued: &queued,
        };
        read_all(input, tx, &queued, Duration::ZERO);
        let pieces: Vec<Piece> = rx.try_iter().collect();
        let shown: Vec<String> = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Output(_, bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Piece::Lost(lost) => format!("L{}", lost.bytes),
            })
            .collect();
        assert_eq!(shown, ["cat's", "L13", "echo's", "L10"]);
        let (Piece::Output(before, _), Piece::Lost(lost), Piece::Output(after, _)) =
            (&pieces[0], &pieces[1], &pieces[2])
        else {
            unreachable!()
        };
        assert!(
            before <= &lost.first_us && lost.first_us <= lost.last_us && &lost.last_us <= after
        );
    }

    /// A mark cut in two between a read that was queued and one dropped
    /// (the queue full in between): the dropped one still hands on the
    /// mark's rest, so an excluded command stays excluded after the gap.
    #[test]
    fn a_mark_cut_between_a_kept_read_and_a_dropped_one_is_handed_on_whole() {
        struct FullAfterFirst<'a> {
            reads: Vec<&'a [u8]>,
            queued: &'a AtomicU64,
        }
        impl Read for FullAfterFirst<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.reads.is_empty() {
                    return Ok(0);
                }
                if self.reads.len() == 1 {
                    // The writer has fallen behind since the first read.
                    self.queued.store(QUEUE_BYTES as u64, Ordering::Relaxed);
                }
                let read = self.reads.remove(0);
                buf[..read.len()].copy_from_slice(read);
                Ok(read.len())
            }
        }
        for (kept, dropped_read) in [
            (&b"out\x1b]133;C;ta=s/2"[..], &b";x\x07secret"[..]),
            (b"out\x1b]13", b"3;C;ta=s/2;x\x07secret"),
        ] {
            let (tx, rx) = mpsc::channel();
            let queued = AtomicU64::new(0);
            let input = FullAfterFirst {
                reads: vec![kept, dropped_read],
                queued: &queued,
            };
            read_all(input, tx, &queued, Duration::ZERO);
            let rest = dropped_read[..dropped_read.len() - 6].to_vec();
            // The secret only is lost.
            assert_eq!(
                sent(&rx)
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>(),
                [
                    String::from_utf8_lossy(kept).into_owned(),
                    "L6".into(),
                    String::from_utf8_lossy(&rest).into_owned()
                ]
            );
        }
    }

    /// Output read while the queue is full, as a writer behind sees it.
    struct Watched<'a> {
        output: &'a [u8],
        queued: &'a AtomicU64,
        read_while_full: bool,
    }

    impl Read for Watched<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.queued.load(Ordering::Relaxed) + READ as u64 > QUEUE_BYTES as u64 {
                self.read_while_full = true;
            }
            self.output.read(buf)
        }
    }

    /// The writer behind for a moment (the queue full, then emptied): the
    /// reader waits for room, tmux holding the output, and drops nothing.
    #[test]
    fn a_reader_waits_for_a_writer_behind_for_a_moment() {
        let (tx, rx) = mpsc::channel();
        let queued = AtomicU64::new(QUEUE_BYTES as u64);
        let mut input = Watched {
            output: b"every byte of it",
            queued: &queued,
            read_while_full: false,
        };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // A moment, to let a reader that would not wait read.
                std::thread::sleep(Duration::from_millis(20));
                queued.store(0, Ordering::Relaxed);
            });
            read_all(&mut input, tx, &queued, Duration::from_secs(60));
        });
        assert!(!input.read_while_full);
        assert_eq!(sent(&rx), [b"every byte of it".to_vec()], "nothing lost");
    }

    /// The reader's patience runs out once it has waited its stall; a read
    /// it dropped leaves it out, however short; a read it queued that took
    /// all there was gives it back, one that did not leaves it as it is.
    #[test]
    fn patience_comes_back_only_with_a_read_queued_that_took_all() {
        let mut patience = Patience::new(Duration::from_millis(1));
        assert!(patience.left());
        patience.wait();
        assert!(!patience.left(), "a wait of a millisecond or more");
        patience.queued(false);
        assert!(!patience.left());
        patience.queued(true);
        assert!(patience.left());
    }

    fn captured(dir: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        for path in segment::list(dir).unwrap() {
            for r in segment::read(&path).unwrap().records {
                if r.kind == segment::OUTPUT {
                    out.extend_from_slice(&r.payload);
                }
            }
        }
        out
    }

    /// The pieces fed as reads; with `idle`, output pauses after each one
    /// (what is held is written, as [`run`] does after [`IDLE`]).
    fn through_lines(pieces: &[&[u8]], idle: bool) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        let pane = root.join("1-1");
        let mut w = Writer::new(&root, pane.clone()).unwrap();
        let mut lines = Lines::new(Redactor::new(&Redact::default()));
        for (i, piece) in pieces.iter().enumerate() {
            lines.feed(i as i64, piece, &mut w);
            if idle {
                lines.finish(&mut w);
            }
        }
        lines.end(0, &mut w);
        w.flush(0).unwrap();
        captured(&pane)
    }

    /// A secret's value right before a mark (the last line of a file,
    /// without its newline): the value is redacted, the mark kept, and
    /// the command's output ends there; also when a pause cut the mark.
    #[test]
    fn a_value_right_before_a_mark_is_redacted_and_the_mark_kept() {
        let start = crate::capture::start_mark("s", 7);
        let end = crate::capture::end_mark("s", 7);
        for cut in [4, 8] {
            let out = through_lines(
                &[
                    &start,
                    b"DB_PASSWORD=hunter2",
                    &end[..cut],
                    &end[cut..],
                    b"$ ",
                ],
                true,
            );
            let expected = [&start[..], b"DB_PASSWORD=[REDACTED]", &end, b"$ "].concat();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "the end mark cut after {cut} bytes"
            );
        }
        for idle in [false, true] {
            let out = through_lines(
                &[
                    &start,
                    b"DB_PASSWORD=hunter2",
                    &end,
                    b"$ DB_PASSWORD=x",
                    &start,
                ],
                idle,
            );
            let expected = [
                &start[..],
                b"DB_PASSWORD=[REDACTED]",
                &end,
                b"$ DB_PASSWORD=[REDACTED]",
                &start,
            ]
            .concat();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "idle: {idle}"
            );
        }
    }

    /// Keys typed at a prompt are echoed one at a time, each written after
    /// a pause: the value typed after a secret's name is still redacted,
    /// once, and what is no secret comes back as typed.
    #[test]
    fn a_secret_typed_a_key_at_a_time_is_redacted() {
        let typed = "$ export DB_PASSWORD=hunter2 && ls -l";
        let keys: Vec<&[u8]> = typed
            .as_bytes()
            .chunks(1)
            .chain([&b"\r\n"[..], b"next\r\n"])
            .collect();
        let out = through_lines(&keys, true);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "$ export DB_PASSWORD=[REDACTED] && ls -l\r\nnext\r\n"
        );
        let out = through_lines(&[b"$ export DB_PASSWORD=", b"hunter2\r\n"], true);
        assert_eq!(out, b"$ export DB_PASSWORD=[REDACTED]\r\n");
        let out = through_lines(&[b"$ ls -l /tm", b"p\r\n"], true);
        assert_eq!(out, b"$ ls -l /tmp\r\n");
    }

    /// A line longer than [`MAX_LINE`] is written in pieces: a secret
    /// across the cut has its rest redacted (its start, written before the
    /// rest came, stays).
    #[test]
    fn a_secret_across_a_long_lines_cut_has_its_rest_redacted() {
        let before = vec![b'x'; MAX_LINE - 9];
        let head = [before.as_slice(), b" AKIAIOSF"].concat();
        let out = through_lines(&[&head, b"ODNN7EXAMPLQ more", b"\r\n"], false);
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.ends_with("x AKIAIOSF[REDACTED] more\r\n"),
            "{}",
            &out[out.len() - 40..]
        );
    }

    #[test]
    fn a_secret_split_across_reads_is_redacted() {
        let out = through_lines(&[b"key: AKIAIOSF", b"ODNN7EXAMPL", b"Q\r\nnext\r\n"], false);
        assert_eq!(out, b"key: [REDACTED]\r\nnext\r\n");
    }

    /// The name in one read, its `=` and value in the next ones: the
    /// line is redacted whole, its one-byte literal found too.
    #[test]
    fn an_assignment_split_across_reads_is_redacted() {
        let out = through_lines(
            &[b"a=1 DB_PASS", b"WORD=hun", b"ter2\r\n", b"b-2\r\n"],
            false,
        );
        assert_eq!(out, b"a=1 DB_PASSWORD=[REDACTED]\r\nb-2\r\n");
    }

    #[test]
    fn a_private_key_over_many_reads_is_redacted_to_its_end() {
        let out = through_lines(
            &[
                b"-----BEGIN RSA PRIVATE KEY-----\r\n",
                b"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\r\n",
                b"4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onL\r\n",
                b"-----END RSA PRIVATE KEY-----\r\nREADY$ ",
            ],
            false,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("MIIE") && !text.contains("4lgO"), "{text}");
        assert!(text.ends_with("READY$ "), "{text}");
    }

    /// What a pane shows when a command prints a key: the command line
    /// echoed (with a `-----BEGIN` and an `-----END` of its own), the
    /// shell's mark, the key, the next prompt. However the reads split it,
    /// and whether or not output pauses long enough (idle) for a held
    /// partial line to be written (half the key's BEGIN line, say), no
    /// line of the key's body is kept.
    #[test]
    fn a_private_key_is_redacted_however_the_reads_split_it() {
        let stream: &[u8] = b"$ printf -- '-----BEGIN RSA %s KEY-----\\nMIIE%s\\n-----END RSA %s KEY-----\\n' PRIVATE ..\r\n\
            \x1b]133;C;ta=s/2\x07-----BEGIN RSA PRIVATE KEY-----\r\n\
            MIIEowIBAAKCAQEAu1SU1Lf\r\n\
            VLPHCozMxH2Mo4lgOEePzNm0tR\r\n\
            -----END RSA PRIVATE KEY-----\r\n\
            \x1b]133;D;ta=s/2\x07$ ";
        let body = ["owIBAAKCAQEAu1SU1Lf", "VLPHCozMxH2Mo4lgOEePzNm0tR"];
        let check = |out: Vec<u8>, how: &str| {
            let text = String::from_utf8_lossy(&out);
            for secret in body {
                assert!(!text.contains(secret), "{how}: {text:?}");
            }
            assert!(text.ends_with("$ "), "{how}: {text:?}");
        };
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            check(through_lines(&[a, b], false), &format!("split at {at}"));
            // A pause there: what is held is written, even half a line.
            check(through_lines(&[a, b], true), &format!("idle at {at}"));
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        check(through_lines(&bytes, false), "byte by byte");
        let lines: Vec<&[u8]> = stream.split_inclusive(|b| *b == b'\n').collect();
        check(through_lines(&lines, true), "line by line, idle between");
    }

    #[test]
    fn output_ends_cleanly_with_every_byte_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        let pane = root.join("1-1");
        // Less than the queue holds: nothing can be dropped.
        let mut seals = Vec::new();
        let input: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let summary = run(
            io::Cursor::new(input.clone()),
            &root,
            pane.clone(),
            &Redact::default(),
            |seal| seals.push(seal),
            |err| panic!("{err}"),
        )
        .unwrap();
        assert_eq!(summary.lost, 0);
        assert_eq!(captured(&pane), input);
        let last = segment::list(&pane).unwrap().pop().unwrap();
        let seg = segment::read(&last).unwrap();
        assert_eq!(seg.records.last().unwrap().kind, segment::END);
        // Ended: its segment is sealed.
        assert_eq!(seals, vec![Seal::of_file(&root, &last).unwrap()]);
    }
}
