//! The frames a shell hook writes to its long-lived recorder, one per
//! finished command (`tmux-audit recorder`, see `cmd/record.rs`).
//!
//! The hook writes with shell builtins only, so each field ends with a NUL
//! byte (which no shell variable of bash or fish holds) and the command
//! text is either length-prefixed (zsh), bash's `history 1` output up to a
//! NUL, or fish's text up to a NUL:
//!
//! ```text
//! TA1 \0 session \0 seq \0 exit \0 start_us \0 end_us \0 duration_ms \0 cwd \0 text
//! text := "H" history-number \0 <output of `history 1`> \0
//!       | "E" history-number \0 <output of `history 1`> \0
//!       | "L" byte-length \0 <that many bytes>
//!       | "T" \0 <the text> \0
//!       | "U" \0                          (the shell cannot tell the text)
//! ```
//!
//! `E` is `H` with a question: bash wants the entry's text back (to keep
//! out of its history list what the user's `HISTCONTROL`/`HISTIGNORE`
//! would have kept out), and the recorder answers with an [`echo`] on the
//! reply FIFO beside its own, which bash reads without a fork.
//!
//! Numbers may be empty (unknown). The text is read in bounded memory: past
//! the limit only its head is kept, and the caller hashes the rest (the
//! reader hands back a `Read` of the text).

use std::io::{self, BufRead, Read};

/// What every frame starts with: a version, so that a newer hook's frames
/// are told apart rather than misread.
pub const MAGIC: &[u8] = b"TA1";

/// A frame's fields before its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub session: String,
    pub seq: i64,
    pub exit_status: Option<i64>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    pub duration_ms: Option<i64>,
    pub cwd: Vec<u8>,
}

/// How the frame carries its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// bash's `history 1` output up to a NUL, for history entry `number`;
    /// with `echo`, the hook waits for the text back ([`echo`]).
    History { number: u64, echo: bool },
    /// Exactly `len` bytes.
    Bytes { len: u64 },
    /// The text itself up to a NUL (fish: its strings hold none).
    UntilNul,
    /// No text: history is off.
    Unavailable,
}

/// Why a frame could not be read; the stream is then out of step and
/// `resync` skips to the next frame.
#[derive(Debug)]
pub enum FrameError {
    Io(io::Error),
    /// Not a frame of this version: `what` names the field.
    Malformed(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(err) => write!(f, "cannot read the hook's stream: {err}"),
            FrameError::Malformed(what) => write!(f, "a frame from the hook has a bad {what}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        FrameError::Io(err)
    }
}

/// The next frame's header and how its text comes, or None at the end of
/// the stream (between frames).
pub fn read_header(input: &mut impl BufRead) -> Result<Option<(Header, TextKind)>, FrameError> {
    let mut magic = Vec::new();
    if input.read_until(0, &mut magic)? == 0 {
        return Ok(None);
    }
    if magic.strip_suffix(b"\0") != Some(MAGIC) {
        return Err(FrameError::Malformed("start"));
    }
    let session = String::from_utf8_lossy(&field(input, "session")?).into_owned();
    let seq = number(input, "sequence number")?.ok_or(FrameError::Malformed("sequence number"))?;
    let header = Header {
        session,
        seq,
        exit_status: number(input, "exit status")?,
        start_us: number(input, "start time")?,
        end_us: number(input, "end time")?,
        duration_ms: number(input, "duration")?,
        cwd: field(input, "directory")?,
    };
    let kind = field(input, "text kind")?;
    let value = || {
        std::str::from_utf8(&kind[1..])
            .ok()
            .and_then(|n| n.parse::<u64>().ok())
    };
    let kind = match kind.first() {
        Some(&letter @ (b'H' | b'E')) => TextKind::History {
            number: value().ok_or(FrameError::Malformed("history number"))?,
            echo: letter == b'E',
        },
        Some(b'L') => TextKind::Bytes {
            len: value().ok_or(FrameError::Malformed("text length"))?,
        },
        Some(b'U') if kind.len() == 1 => TextKind::Unavailable,
        Some(b'T') if kind.len() == 1 => TextKind::UntilNul,
        _ => return Err(FrameError::Malformed("text kind")),
    };
    Ok(Some((header, kind)))
}

/// Texts longer than this are not echoed: bash reads a pipe a byte at a
/// time, and past this a fork of its own costs it less.
pub const ECHO_MAX: usize = 512;

/// What the recorder found of the entry an `E` frame named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// The entry's whole text.
    Whole(&'a [u8]),
    /// The entry, but only its head was kept (`max_command_bytes`).
    Cut,
    /// Not in the history list (history off, or another entry).
    Absent,
}

/// The answer to an `E` frame of `session`'s command `seq`: the entry's
/// text (`T`), or that it is not in the list (`N`), or that the hook must
/// read it itself (`L`: cut, or too long to send back).
///
/// ```text
/// echo := session "/" seq " " ("T" text | "N" | "L") \0
/// ```
///
/// One NUL, at the end: what is left of an answer whose reading was
/// interrupted (Ctrl-C at the prompt) still ends there, and never holds
/// up the next. The hook reads answers until one names its command: an
/// answer it gave up waiting for is left in the FIFO and skipped next
/// time. It waits only for an answer's first byte: the answer is written
/// whole, in one write of at most `PIPE_BUF` bytes.
pub fn echo(session: &str, seq: i64, entry: Entry) -> Vec<u8> {
    let mut out = format!("{session}/{seq} ").into_bytes();
    match entry {
        Entry::Whole(text) if text.len() <= ECHO_MAX && !text.contains(&0) => {
            out.push(b'T');
            out.extend_from_slice(text);
        }
        Entry::Whole(_) | Entry::Cut => out.push(b'L'),
        Entry::Absent => out.push(b'N'),
    }
    out.push(0);
    out
}

/// Skips to just after the next NUL: where, after a malformed frame, the
/// next may start (at worst one more frame is set aside).
pub fn resync(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match memchr::memchr(0, buf) {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

/// The text of a `History` or `UntilNul` frame: a reader of what comes up
/// to the next NUL (consumed). For `History`, call [`UntilNul::text_start`]
/// first.
pub struct UntilNul<'a, R: BufRead> {
    input: &'a mut R,
    done: bool,
}

impl<'a, R: BufRead> UntilNul<'a, R> {
    pub fn new(input: &'a mut R) -> Self {
        UntilNul { input, done: false }
    }

    /// Reads `history 1`'s ` NUMBER* ` (or `NUMBER  `) before the text:
    /// true when it names entry `number`, so that what follows is the text
    /// of the command just run (false: history is off or the entry is
    /// another's, and the rest is to be skipped).
    pub fn text_start(&mut self, number: u64) -> io::Result<bool> {
        let mut byte = [0u8];
        let mut digits = String::new();
        loop {
            if self.read(&mut byte)? == 0 {
                return Ok(false);
            }
            match byte[0] {
                b' ' | b'\t' if digits.is_empty() => continue,
                b'0'..=b'9' => digits.push(byte[0] as char),
                // The mark of an edited entry, or a blank; one blank after.
                b'*' | b' ' if !digits.is_empty() => {
                    if self.read(&mut byte)? == 0 || byte[0] != b' ' {
                        return Ok(false);
                    }
                    return Ok(digits.parse::<u64>().ok() == Some(number));
                }
                _ => return Ok(false),
            }
        }
    }

    /// Reads and drops what is left of this text.
    pub fn skip(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl<R: BufRead> Read for UntilNul<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let buf = self.input.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended inside a command's text",
            ));
        }
        let (n, end) = match memchr::memchr(0, buf) {
            Some(at) => (at.min(out.len()), at <= out.len()),
            None => (buf.len().min(out.len()), false),
        };
        out[..n].copy_from_slice(&buf[..n]);
        self.input.consume(if end { n + 1 } else { n });
        self.done = end;
        Ok(n)
    }
}

fn field(input: &mut impl BufRead, what: &'static str) -> Result<Vec<u8>, FrameError> {
    let mut value = Vec::new();
    // A field other than the text is short: a directory at most PATH_MAX.
    input.take(64 * 1024).read_until(0, &mut value)?;
    if value.pop() != Some(0) {
        return Err(FrameError::Malformed(what));
    }
    Ok(value)
}

fn number(input: &mut impl BufRead, what: &'static str) -> Result<Option<i64>, FrameError> {
    let value = field(input, what)?;
    if value.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(&value)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or(FrameError::Malformed(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind_and_text: &[u8]) -> Vec<u8> {
        [
            &b"TA1\0bash.1.2\x007\x001\x00100\x00200\x00\x00/tmp/a b\0"[..],
            kind_and_text,
        ]
        .concat()
    }

    #[test]
    fn a_history_frame_gives_its_header_and_the_text_after_the_number() {
        let bytes = frame(b"H42\0   42* echo 'a\nb'\n\0");
        let mut input = &bytes[..];
        let (header, kind) = read_header(&mut input).unwrap().unwrap();
        assert_eq!(
            header,
            Header {
                session: "bash.1.2".into(),
                seq: 7,
                exit_status: Some(1),
                start_us: Some(100),
                end_us: Some(200),
                duration_ms: None,
                cwd: b"/tmp/a b".to_vec(),
            }
        );
        assert_eq!(
            kind,
            TextKind::History {
                number: 42,
                echo: false
            }
        );
        let mut history = UntilNul::new(&mut input);
        assert!(history.text_start(42).unwrap());
        let mut text = Vec::new();
        history.read_to_end(&mut text).unwrap();
        assert_eq!(text, b"echo 'a\nb'\n");
        assert!(read_header(&mut input).unwrap().is_none());
    }

    #[test]
    fn another_entry_number_is_not_the_command_just_run() {
        let bytes = frame(b"H43\0   42  ls\n\0");
        let mut input = &bytes[..];
        let (_, kind) = read_header(&mut input).unwrap().unwrap();
        let TextKind::History { number, .. } = kind else {
            panic!("{kind:?}")
        };
        let mut history = UntilNul::new(&mut input);
        assert!(!history.text_start(number).unwrap());
        history.skip().unwrap();
        assert!(input.is_empty());
    }

    #[test]
    fn an_echo_frame_asks_for_the_text_back_and_gets_it_when_short() {
        let bytes = frame(b"E9\0    9  echo hi\n\0");
        let (_, kind) = read_header(&mut &bytes[..]).unwrap().unwrap();
        assert_eq!(
            kind,
            TextKind::History {
                number: 9,
                echo: true
            }
        );
        let answer = |entry| echo("bash.1.2", 7, entry);
        assert_eq!(answer(Entry::Whole(b" a b\n")), b"bash.1.2/7 T a b\n\0");
        assert_eq!(answer(Entry::Absent), b"bash.1.2/7 N\0");
        assert_eq!(answer(Entry::Cut), b"bash.1.2/7 L\0");
        let long = vec![b'x'; ECHO_MAX + 1];
        assert_eq!(answer(Entry::Whole(&long)), b"bash.1.2/7 L\0");
        let longest = answer(Entry::Whole(&long[1..]));
        assert_eq!(longest.len(), "bash.1.2/7 T".len() + ECHO_MAX + 1);
        // One NUL, at the end.
        assert_eq!(memchr::memchr(0, &longest), Some(longest.len() - 1));
        // Written whole, in one write, with the longest session a hook makes.
        let session = format!("bash.{}.{}.32767", u32::MAX, u64::MAX);
        assert!(echo(&session, i64::MAX, Entry::Whole(&long[1..])).len() <= 4096);
    }

    #[test]
    fn length_prefixed_text_may_hold_nul_and_unavailable_has_none() {
        let mut bytes = frame(b"L3\0a\0b");
        bytes.extend(frame(b"U\0"));
        let mut input = &bytes[..];
        let (_, kind) = read_header(&mut input).unwrap().unwrap();
        assert_eq!(kind, TextKind::Bytes { len: 3 });
        let mut text = Vec::new();
        (&mut input).take(3).read_to_end(&mut text).unwrap();
        assert_eq!(text, b"a\0b");
        let (_, kind) = read_header(&mut input).unwrap().unwrap();
        assert_eq!(kind, TextKind::Unavailable);
    }

    #[test]
    fn nul_ended_text_is_read_up_to_its_nul() {
        let mut bytes = frame(b"T\0echo 'a\nb'\0");
        bytes.extend(frame(b"T\0\0"));
        let mut input = &bytes[..];
        let (_, kind) = read_header(&mut input).unwrap().unwrap();
        assert_eq!(kind, TextKind::UntilNul);
        let mut text = Vec::new();
        UntilNul::new(&mut input).read_to_end(&mut text).unwrap();
        assert_eq!(text, b"echo 'a\nb'");
        let (_, kind) = read_header(&mut input).unwrap().unwrap();
        assert_eq!(kind, TextKind::UntilNul);
        let mut text = Vec::new();
        UntilNul::new(&mut input).read_to_end(&mut text).unwrap();
        assert!(text.is_empty());
        assert!(read_header(&mut input).unwrap().is_none());
        assert!(matches!(
            read_header(&mut &frame(b"Tx\0")[..]),
            Err(FrameError::Malformed("text kind"))
        ));
    }

    #[test]
    fn garbage_is_malformed_and_resync_finds_the_next_frame() {
        let mut bytes = b"junk\0".to_vec();
        bytes.extend(frame(b"U\0"));
        let mut input = &bytes[..];
        assert!(matches!(
            read_header(&mut input),
            Err(FrameError::Malformed("start"))
        ));
        assert!(read_header(&mut input).unwrap().is_some());
        let mut input = &b"TA1\0s\0notanumber\0"[..];
        assert!(matches!(
            read_header(&mut input),
            Err(FrameError::Malformed("sequence number"))
        ));
        resync(&mut input).unwrap();
    }
}
