//! Segment files: a pane's captured stream as a series of records
//! (output bytes with the time they were read, gaps, the end), compressed
//! as independent zstd frames appended to one file.
//!
//! A frame is written whole or, when the write fails (disk full), cut off
//! again, so a file is always a run of whole frames: a process killed
//! between two writes loses only what it had not written yet (at most a
//! second's output), never what is before. zstd decoders read
//! concatenated frames as one stream.
//!
//! A record is `kind (1 byte) | time (i64 µs since the epoch, LE) | length
//! (u32 LE) | payload`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::seal::Seal;
use crate::private_files;

/// Bytes the pane printed, as read at `at_us`.
pub const OUTPUT: u8 = b'o';
/// Output that could not be kept: the payload is the count of bytes lost
/// (u64 LE), lost while the disk stalled or failed; for a failed write,
/// followed by when the first and the last of them were read (i64 LE
/// each), as the record itself is written only once writing works again.
pub const GAP: u8 = b'g';
/// Output of a command over its cap, not kept (see `cap.rs`): the payload
/// is the count of bytes (u64 LE) and their SHA-256 (32 bytes).
pub const CUT: u8 = b'c';
/// Output of a command excluded by `[capture] exclude`, not kept: the
/// payload is the count of bytes (u64 LE) and nothing else (a hash of a
/// short secret would give it away).
pub const EXCLUDED: u8 = b'x';
/// The capture started (payload: empty).
pub const START: u8 = b's';
/// The capture ended cleanly: the pane closed, or its pipe did.
pub const END: u8 = b'e';

const HEADER: usize = 1 + 8 + 4;

/// A segment is closed and a new one begun after this many bytes of
/// records: bounded files, so a reader decodes little more than it needs.
const SEGMENT_BYTES: u64 = 32 << 20;

/// zstd's level for the frames. Level 1 over 128 KiB frames of log lines
/// (`zstd -b1e3 -B131072`) was a fifth faster than level 3 and 6.6x
/// smaller against 6.3x; the capture process competes with tmux and the
/// command for the CPU, so the cheaper level is also the smaller here.
const LEVEL: i32 = 1;

/// A frame is written once this many bytes of records are pending (or
/// after a second, or a pause in the output of 100 ms).
pub const FULL_FRAME: usize = 128 << 10;

/// zstd's level for a full frame: one made by a pane printing this much
/// within a second, without a pause (a `cat` of a log), where the capture
/// process competes with tmux for the CPU the most. `zstd -b --fast=2
/// -B131072` on log lines: 640 MB/s and 3.9x smaller, where level 1 made
/// 425 MB/s and 6.6x: a third less of the capture process's CPU goes to
/// zstd, for 1.7 times the bytes on disk of such output (a command's
/// output past its cap is not kept at all: see `cap.rs`).
const FULL_FRAME_LEVEL: i32 = -2;

/// One record of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub at_us: i64,
    pub payload: Vec<u8>,
}

impl Record {
    /// The bytes lost, for a [`GAP`].
    pub fn lost(&self) -> u64 {
        let mut n = [0u8; 8];
        let len = self.payload.len().min(8);
        n[..len].copy_from_slice(&self.payload[..len]);
        u64::from_le_bytes(n)
    }

    /// When the output a [`GAP`] counts was read: (first, last); its own
    /// time for a gap that does not say.
    pub fn lost_span(&self) -> (i64, i64) {
        let at = |i: usize| {
            let bytes = self.payload.get(i..i + 8)?;
            Some(i64::from_le_bytes(bytes.try_into().ok()?))
        };
        match (at(8), at(16)) {
            (Some(first), Some(last)) => (first, last),
            _ => (self.at_us, self.at_us),
        }
    }
}

struct Open {
    file: File,
    len: u64,
    sha256: Sha256,
    path: PathBuf,
}

/// Appends records to a pane's segment files.
pub struct Writer {
    root: PathBuf,
    dir: PathBuf,
    /// The segment being written: the file, its length, the SHA-256 of
    /// its bytes so far, its name.
    file: Option<Open>,
    in_file: u64,
    /// Segments closed and not yet taken by [`Writer::take_sealed`].
    sealed: Vec<Seal>,
    pending: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    /// The compressor's level now.
    level: i32,
    /// Output bytes lost to failed writes, told in the next frame, and
    /// when the first and the last of them were read.
    lost: u64,
    lost_span: Option<(i64, i64)>,
}

impl Writer {
    /// A writer into `dir` (made 0700 if needed; refused when it, or the
    /// capture root above it, is not the user's own).
    pub fn new(root: &Path, dir: PathBuf) -> io::Result<Writer> {
        private_files::dir(root)?;
        private_files::dir(&dir)?;
        Ok(Writer {
            root: root.to_path_buf(),
            dir,
            file: None,
            in_file: 0,
            sealed: Vec::new(),
            pending: Vec::with_capacity(64 << 10),
            compressor: zstd::bulk::Compressor::new(LEVEL)?,
            level: LEVEL,
            lost: 0,
            lost_span: None,
        })
    }

    /// Adds a record to the frame being made.
    pub fn push(&mut self, kind: u8, at_us: i64, payload: &[u8]) {
        if self.lost > 0 {
            let lost = std::mem::take(&mut self.lost);
            let mut payload = lost.to_le_bytes().to_vec();
            if let Some((first, last)) = self.lost_span.take() {
                payload.extend_from_slice(&first.to_le_bytes());
                payload.extend_from_slice(&last.to_le_bytes());
            }
            self.push(GAP, at_us, &payload);
        }
        // A payload longer than a u32 cannot come from one read.
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX) as usize;
        self.pending.push(kind);
        self.pending.extend_from_slice(&at_us.to_le_bytes());
        self.pending.extend_from_slice(&(len as u32).to_le_bytes());
        self.pending.extend_from_slice(&payload[..len]);
    }

    /// Bytes of records not written yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes what is pending as one frame. When that fails, the file is
    /// cut back to its last whole frame and the output lost is counted,
    /// to be recorded as a [`GAP`] once writing works again.
    pub fn flush(&mut self, now_us: i64) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = self.write_frame(now_us);
        if written.is_err() {
            let (bytes, span) = output_bytes(&self.pending);
            self.lost += bytes;
            if let Some((first, last)) = span {
                let (f, t) = self.lost_span.unwrap_or((first, last));
                self.lost_span = Some((f.min(first), t.max(last)));
            }
        }
        self.pending.clear();
        if self.pending.capacity() > 256 << 10 {
            self.pending.shrink_to(64 << 10);
        }
        written
    }

    fn write_frame(&mut self, now_us: i64) -> io::Result<()> {
        if self.in_file >= SEGMENT_BYTES {
            self.close();
        }
        if self.file.is_none() {
            let path = self
                .dir
                .join(format!("{now_us:020}-{}.seg", std::process::id()));
            self.file = Some(Open {
                file: private_files::create_new(&path)?,
                len: 0,
                sha256: Sha256::new(),
                path,
            });
            self.in_file = 0;
        }
        let level = if self.pending.len() >= FULL_FRAME {
            FULL_FRAME_LEVEL
        } else {
            LEVEL
        };
        if level != self.level {
            self.compressor.set_compression_level(level)?;
            self.level = level;
        }
        let frame = self.compressor.compress(&self.pending)?;
        let open = self.file.as_mut().expect("opened above");
        if let Err(err) = open.file.write_all(&frame) {
            // Cut back, and the next write where the cut is: the file's
            // offset is past it (a disk that filled mid-frame), and a
            // write there would leave a hole of zeros that no reader
            // gets past (seen: all output after a full disk unreadable).
            let cut = open.file.set_len(open.len);
            if cut
                .and_then(|()| open.file.seek(SeekFrom::Start(open.len)))
                .is_err()
            {
                // Not cut back: a file that is not a run of whole frames
                // is never sealed; the next frame begins another.
                self.file = None;
            }
            return Err(err);
        }
        open.len += frame.len() as u64;
        open.sha256.update(&frame);
        self.in_file += self.pending.len() as u64;
        Ok(())
    }

    /// Closes the segment being written, if any, and seals it: its
    /// SHA-256, for [`Writer::take_sealed`]. The next frame begins another.
    pub fn close(&mut self) {
        let Some(open) = self.file.take() else {
            return;
        };
        let Ok(rel) = open.path.strip_prefix(&self.root) else {
            return;
        };
        self.sealed.push(Seal {
            file: rel.to_string_lossy().into_owned(),
            sha256: open.sha256.finalize().into(),
            bytes: open.len,
        });
    }

    /// The segments closed since the last call.
    pub fn take_sealed(&mut self) -> Vec<Seal> {
        std::mem::take(&mut self.sealed)
    }
}

/// The output bytes among `records` (encoded), those their gaps count
/// (a gap told while writing still fails must not vanish with its
/// frame), and when the first and the last of them were read.
fn output_bytes(mut records: &[u8]) -> (u64, Option<(i64, i64)>) {
    let mut total = 0;
    let mut span: Option<(i64, i64)> = None;
    let mut add = |(from, to): (i64, i64)| {
        span = Some(span.map_or((from, to), |(f, t)| (f.min(from), t.max(to))));
    };
    while let Some((record, rest)) = decode_one(records) {
        match record.kind {
            OUTPUT => {
                total += record.payload.len() as u64;
                add((record.at_us, record.at_us));
            }
            GAP => {
                total += record.lost();
                add(record.lost_span());
            }
            _ => {}
        }
        records = rest;
    }
    (total, span)
}

fn decode_one(bytes: &[u8]) -> Option<(Record, &[u8])> {
    if bytes.len() < HEADER {
        return None;
    }
    let at_us = i64::from_le_bytes(bytes[1..9].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[9..13].try_into().ok()?) as usize;
    let payload = bytes.get(HEADER..HEADER + len)?;
    Some((
        Record {
            kind: bytes[0],
            at_us,
            payload: payload.to_vec(),
        },
        &bytes[HEADER + len..],
    ))
}

/// A segment read back.
pub struct Segment {
    pub path: PathBuf,
    pub records: Vec<Record>,
    /// The file ends inside a frame or a record: its writer was killed
    /// while writing, or the file was cut.
    pub cut: bool,
}

/// Reads the segment at `path` (refused unless it is the user's own, as
/// every file of tmux-audit): every whole record in it.
pub fn read(path: &Path) -> io::Result<Segment> {
    let file = private_files::read(path)?;
    let mut bytes = Vec::new();
    let mut cut = zstd::stream::read::Decoder::new(file)?
        .read_to_end(&mut bytes)
        .is_err();
    let mut records = Vec::new();
    let mut rest = &bytes[..];
    while let Some((record, after)) = decode_one(rest) {
        records.push(record);
        rest = after;
    }
    cut |= !rest.is_empty();
    Ok(Segment {
        path: path.to_path_buf(),
        records,
        cut,
    })
}

/// The segment files of a pane's directory, oldest first (their names
/// start with the time they were begun).
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err),
    };
    paths.sort();
    Ok(paths)
}

/// When a segment was begun, from its name.
pub fn begun_us(path: &Path) -> Option<i64> {
    path.file_name()?.to_str()?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_written_across_frames_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cap");
        let mut w = Writer::new(&root, root.join("1-2")).unwrap();
        w.push(START, 1, b"");
        w.push(OUTPUT, 2, b"hello ");
        w.flush(2).unwrap();
        w.push(OUTPUT, 3, b"world\r\n");
        w.push(END, 4, b"");
        w.flush(4).unwrap();
        let paths = list(&root.join("1-2")).unwrap();
        assert_eq!(paths.len(), 1);
        assert_eq!(begun_us(&paths[0]), Some(2));
        let seg = read(&paths[0]).unwrap();
        assert!(!seg.cut);
        let kinds: Vec<u8> = seg.records.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, b"sooe");
        assert_eq!(seg.records[2].payload, b"world\r\n");
    }

    /// A full frame (a pane printing fast) is compressed at the faster
    /// level, a smaller one at the usual; both read back.
    #[test]
    fn a_full_frame_is_compressed_at_the_faster_level() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cap");
        let pane = root.join("1-2");
        let mut w = Writer::new(&root, pane.clone()).unwrap();
        let line = |n: usize| format!("2026-11-29 INFO GET /items/{} 200\r\n", n * 7919 % 100_000);
        let small: Vec<u8> = (0..100).flat_map(|n| line(n).into_bytes()).collect();
        let full: Vec<u8> = (0..FULL_FRAME / 30)
            .flat_map(|n| line(n).into_bytes())
            .collect();
        let mut frames = Vec::new();
        for (at, payload) in [(1, &small), (2, &full), (3, &small)] {
            w.push(OUTPUT, at, payload);
            let records = w.pending.clone();
            w.flush(at).unwrap();
            frames.push(records);
        }
        let expected: Vec<u8> = frames
            .iter()
            .flat_map(|records| {
                let level = if records.len() >= FULL_FRAME { -2 } else { 1 };
                zstd::bulk::compress(records, level).unwrap()
            })
            .collect();
        let paths = list(&pane).unwrap();
        assert_eq!(std::fs::read(&paths[0]).unwrap(), expected);
        let read: Vec<Vec<u8>> = read(&paths[0])
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.payload)
            .collect();
        assert_eq!(read, [small.clone(), full, small]);
    }

    #[test]
    fn a_closed_segment_is_sealed_with_the_hash_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cap");
        let mut w = Writer::new(&root, root.join("1-2")).unwrap();
        w.push(OUTPUT, 1, b"one");
        w.flush(1).unwrap();
        w.push(OUTPUT, 2, b"two");
        w.flush(2).unwrap();
        assert!(w.take_sealed().is_empty(), "still being written");
        w.close();
        let sealed = w.take_sealed();
        let path = &list(&root.join("1-2")).unwrap()[0];
        assert_eq!(sealed, vec![Seal::of_file(&root, path).unwrap()]);
        assert!(sealed[0].file.starts_with("1-2/"), "{}", sealed[0].file);
    }

    #[test]
    fn a_file_cut_inside_a_frame_keeps_the_frames_before() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cap");
        let mut w = Writer::new(&root, root.join("1-2")).unwrap();
        w.push(OUTPUT, 1, b"kept");
        w.flush(1).unwrap();
        w.push(OUTPUT, 2, &[b'x'; 1000]);
        w.flush(2).unwrap();
        let path = &list(&root.join("1-2")).unwrap()[0];
        let len = std::fs::metadata(path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let seg = read(path).unwrap();
        assert!(seg.cut);
        assert_eq!(seg.records[0].payload, b"kept");
    }

    #[test]
    fn gaps_count_the_output_lost() {
        let mut buf = Vec::new();
        // An earlier gap, told in a frame that failed too: still counted.
        let earlier = [
            &7u64.to_le_bytes()[..],
            &2i64.to_le_bytes(),
            &3i64.to_le_bytes(),
        ]
        .concat();
        for (kind, at, payload) in [
            (GAP, 9i64, &earlier[..]),
            (OUTPUT, 5, &b"abc"[..]),
            (START, 6, b""),
            (OUTPUT, 8, b"de"),
        ] {
            buf.push(kind);
            buf.extend_from_slice(&at.to_le_bytes());
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(payload);
        }
        assert_eq!(output_bytes(&buf), (12, Some((2, 8))));
        let gap = Record {
            kind: GAP,
            at_us: 4,
            payload: 7u64.to_le_bytes().to_vec(),
        };
        assert_eq!((gap.lost(), gap.lost_span()), (7, (4, 4)));
    }
}
