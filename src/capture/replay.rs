//! A pane's captured stream read back in order, for `replay`: the output
//! records of its segments within a time range, and the asciicast v2 file
//! (asciinema's format) that holds them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::segment::{self, OUTPUT};

/// The directory of pane `%N`'s segments: of the server with pid `server`
/// when given, else of the server that captured that pane last. None when
/// there is none.
pub fn find_pane(root: &Path, pane: &str, server: Option<i64>) -> io::Result<Option<PathBuf>> {
    let Some(number) = pane.strip_prefix('%').and_then(|n| n.parse::<u32>().ok()) else {
        return Ok(None);
    };
    if let Some(pid) = server {
        let dir = root.join(format!("{pid}-{number}"));
        return Ok(dir.is_dir().then_some(dir));
    }
    // (directory, when its newest segment was begun)
    let mut newest: Option<(PathBuf, i64)> = None;
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((_, n)) = name.to_str().and_then(|n| n.split_once('-')) else {
            continue;
        };
        if n != number.to_string() {
            continue;
        }
        let last = segment::list(&entry.path())?
            .last()
            .and_then(|p| segment::begun_us(p));
        if let Some(last) = last
            && newest.as_ref().is_none_or(|(_, begun)| last > *begun)
        {
            newest = Some((entry.path(), last));
        }
    }
    Ok(newest.map(|(dir, _)| dir))
}

/// A pane's output in order: (read at, µs since the epoch; bytes).
pub type Stream = Vec<(i64, Vec<u8>)>;

/// The streams of several panes as one, each after the one before (a
/// second after its last output), behind a line naming it: panes of one
/// session print at the same time, on screens of their own, and mixed in
/// one terminal they would be garbled.
pub fn one_after_another(panes: Vec<(String, Stream)>) -> Stream {
    let mut out: Stream = Vec::new();
    for (name, stream) in panes {
        let Some(first) = stream.first().map(|(at, _)| *at) else {
            continue;
        };
        let shift = match out.last() {
            Some((end, _)) => end + 1_000_000 - first,
            None => 0,
        };
        let header = format!("\x1b[0m\r\n--- tmux-audit: {name} ---\r\n").into_bytes();
        out.push((first + shift, header));
        out.extend(stream.into_iter().map(|(at, bytes)| (at + shift, bytes)));
    }
    out
}

/// The output of the pane whose segments are in `dir`, read between
/// `since` and `until` (µs since the epoch), in order: (read at, bytes).
pub fn stream(dir: &Path, since: i64, until: i64) -> io::Result<Stream> {
    let mut out = Vec::new();
    for path in segment::list(dir)? {
        for r in segment::read(&path)?.records {
            if r.kind == OUTPUT && r.at_us >= since && r.at_us <= until {
                out.push((r.at_us, r.payload));
            }
        }
    }
    Ok(out)
}

/// Writes `stream` as an asciicast v2 file: a header line, then one
/// `[seconds, "o", text]` line per read. A UTF-8 character cut between two
/// reads is joined before it is written; bytes that are not UTF-8 become
/// U+FFFD (the format holds text).
pub fn write_asciicast(
    out: &mut impl Write,
    stream: &[(i64, Vec<u8>)],
    cols: u16,
    rows: u16,
) -> io::Result<()> {
    let first = stream.first().map_or(0, |(at, _)| *at);
    let header = serde_json::json!({
        "version": 2,
        "width": cols,
        "height": rows,
        "timestamp": first / 1_000_000,
        "env": {"TERM": "xterm-256color"},
    });
    writeln!(out, "{header}")?;
    let mut carry: Vec<u8> = Vec::new();
    for (at, bytes) in stream {
        carry.extend_from_slice(bytes);
        let whole = complete_utf8(&carry);
        if whole == 0 {
            continue;
        }
        let text = String::from_utf8_lossy(&carry[..whole]).into_owned();
        carry.drain(..whole);
        let seconds = (at - first) as f64 / 1e6;
        writeln!(out, "{}", serde_json::json!([seconds, "o", text]))?;
    }
    if !carry.is_empty() {
        let seconds = stream
            .last()
            .map_or(0.0, |(at, _)| (at - first) as f64 / 1e6);
        let text = String::from_utf8_lossy(&carry).into_owned();
        writeln!(out, "{}", serde_json::json!([seconds, "o", text]))?;
    }
    Ok(())
}

/// How many bytes of `bytes` end on a character boundary: all but an
/// incomplete UTF-8 sequence at the end (at most 3 bytes).
fn complete_utf8(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=3.min(len) {
        let b = bytes[len - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let needed = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_play_one_after_another_behind_their_names() {
        let a = vec![(10, b"a1".to_vec()), (20, b"a2".to_vec())];
        let b = vec![(15, b"b1".to_vec())];
        let one = one_after_another(vec![("pane %1".into(), a), ("pane %2".into(), b)]);
        let times: Vec<i64> = one.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [10, 10, 20, 1_000_020, 1_000_020]);
        let text: Vec<u8> = one.into_iter().flat_map(|(_, b)| b).collect();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("--- tmux-audit: pane %1 ---\r\na1a2"),
            "{text:?}"
        );
        assert!(
            text.ends_with("--- tmux-audit: pane %2 ---\r\nb1"),
            "{text:?}"
        );
    }

    #[test]
    fn an_asciicast_has_a_header_and_timed_text_with_characters_whole() {
        let euro = "€".as_bytes();
        let stream = vec![
            (1_000_000, [b"price 5".as_slice(), &euro[..1]].concat()),
            (1_500_000, [&euro[1..], b"\r\n".as_slice()].concat()),
        ];
        let mut out = Vec::new();
        write_asciicast(&mut out, &stream, 80, 24).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[1], serde_json::json!([0.0, "o", "price 5"]));
        assert_eq!(lines[2], serde_json::json!([0.5, "o", "€\r\n"]));
    }
}
