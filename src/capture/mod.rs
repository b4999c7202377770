//! Per-pane output capture: what each pane printed, kept beside the
//! database and linked to the commands that printed it.
//!
//! `init tmux` (with `[capture] enabled = true`) has tmux pipe every pane's
//! output (`pipe-pane -o`) into a `tmux-audit capture` process of its own
//! ([`recorder`]), which appends it, timestamped and redacted, to zstd
//! segment files ([`segment`]) under `<database>-capture/<server pid>-<pane>/`.
//! The shell hooks mark where each command's output starts and ends with an
//! invisible OSC 133 sequence naming the command ([`start_mark`],
//! [`end_mark`]); [`output`] finds a command's output between its marks
//! (or, for a shell started without them, between its start and end times).
//! A command matching `[capture] exclude` gets a second start mark saying
//! so ([`exclude_mark`]): [`cap`] then drops its output before anything is
//! written, and records only how many bytes it printed.
//!
//! Only what programs print is captured: keys typed inside a program (a
//! password prompt, a `mysql>` prompt) are not, unless the program echoes
//! them.

pub mod budget;
pub mod cap;
pub mod output;
pub mod recorder;
pub mod replay;
pub mod seal;
pub mod segment;

use std::path::{Path, PathBuf};

/// The environment variable `init tmux` sets in the tmux server (for the
/// panes it starts) when capture is on: the shell hooks then mark each
/// command's output.
pub const ENV: &str = "TMUX_AUDIT_CAPTURE";

/// The directory of every pane's segments for the database at `db`.
pub fn root(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-capture");
    PathBuf::from(name)
}

/// The directory of one pane's segments: `%12` of the tmux server with pid
/// 4242 is `4242-12`. None for a pane id that is not `%N`.
pub fn pane_dir(root: &Path, server_pid: i64, pane: &str) -> Option<PathBuf> {
    let number: u32 = pane.strip_prefix('%')?.parse().ok()?;
    Some(root.join(format!("{server_pid}-{number}")))
}

/// The panes that have captured output: (server pid, pane id) of each pane
/// directory under `root` (see [`pane_dir`]) that holds a segment. No root
/// (capture never ran) is no pane.
pub fn captured_panes(root: &Path) -> std::io::Result<Vec<(i64, String)>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut panes = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some((pid, number)) = name.to_str().and_then(|n| n.split_once('-')) else {
            continue;
        };
        let (Ok(pid), Ok(number)) = (pid.parse::<i64>(), number.parse::<u32>()) else {
            continue;
        };
        // A pane directory that cannot be listed has no output to read
        // either (as [`output::Reader`] finds): left out, not an error.
        let path = entry.path();
        if path.is_dir() && segment::list(&path).is_ok_and(|segments| !segments.is_empty()) {
            panes.push((pid, format!("%{number}")));
        }
    }
    panes.sort();
    Ok(panes)
}

/// The panes whose capture process runs now, as (server pid, pane), from
/// the processes' command lines (`tmux-audit capture --pane %N
/// --server-pid PID`).
pub fn running() -> Vec<(i64, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let Some(at) = args.iter().position(|a| *a == b"capture") else {
            continue;
        };
        let value = |flag: &[u8]| {
            let i = args[at..].iter().position(|a| *a == flag)?;
            std::str::from_utf8(args.get(at + i + 1)?).ok()
        };
        let pid = value(b"--server-pid").and_then(|p| p.parse().ok());
        if let (Some(pane), Some(pid)) = (value(b"--pane"), pid) {
            found.push((pid, pane.to_string()));
        }
    }
    found
}

/// The mark a shell hook prints before command `seq` of shell session
/// `session` runs (OSC 133 C, "command output starts", which terminals and
/// tmux show as nothing).
pub fn start_mark(session: &str, seq: i64) -> Vec<u8> {
    format!("\x1b]133;C;ta={session}/{seq}\x07").into_bytes()
}

/// The mark a shell hook prints after [`start_mark`] when the command
/// matches `[capture] exclude`: its capture then drops its output.
pub fn exclude_mark(session: &str, seq: i64) -> Vec<u8> {
    format!("\x1b]133;C;ta={session}/{seq};x\x07").into_bytes()
}

/// The mark printed when it has finished (OSC 133 D).
pub fn end_mark(session: &str, seq: i64) -> Vec<u8> {
    format!("\x1b]133;D;ta={session}/{seq}\x07").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panes_have_a_directory_each_and_odd_ids_none() {
        let root = root(Path::new("/d/history.db"));
        assert_eq!(root, Path::new("/d/history.db-capture"));
        assert_eq!(
            pane_dir(&root, 42, "%7").unwrap(),
            Path::new("/d/history.db-capture/42-7")
        );
        assert!(pane_dir(&root, 42, "%../x").is_none());
        assert!(pane_dir(&root, 42, "7").is_none());
    }

    #[test]
    fn captured_panes_are_the_directories_holding_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let root = root(&dir.path().join("history.db"));
        assert_eq!(captured_panes(&root).unwrap(), Vec::new());
        for (name, segment) in [
            ("42-7", true),
            ("42-8", false),
            ("43-10", true),
            ("x-1", true),
        ] {
            let pane = root.join(name);
            std::fs::create_dir_all(&pane).unwrap();
            if segment {
                std::fs::write(pane.join("1700000000000000-1.seg"), b"").unwrap();
            }
        }
        std::fs::write(root.join("44-1"), b"a file, not a pane").unwrap();
        // A pane directory linked from elsewhere counts, as its output is read.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("1700000000000000-1.seg"), b"").unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("45-3")).unwrap();
        assert_eq!(
            captured_panes(&root).unwrap(),
            vec![
                (42, "%7".to_string()),
                (43, "%10".to_string()),
                (45, "%3".to_string())
            ]
        );
    }
}
