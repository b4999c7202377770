//! Seals: the SHA-256 of each finished segment file, chained, so that
//! `verify` names a segment edited or deleted after it was written.
//!
//! When a capture process closes a segment (it reached its size, or the
//! pane's pipe ended), it stores a tmux event [`SEALED`] for the pane
//! whose `event_key` is the seal: `capture-sealed <host> <file>
//! sha256=<hex> bytes=<length>`, `<file>` relative to the capture root. The event goes
//! the way every tmux event goes (spool, then the tmux events' hash chain),
//! so the seal cannot be changed or dropped without `verify` seeing the
//! chain broken; the key is unique per file, so a seal merged twice is
//! stored once. A segment deleted on purpose (the capture budget, see
//! [`super::budget`]) gets a [`PRUNED`] event the same way.
//!
//! A segment whose process was killed is never sealed: `verify` lists it
//! as such (its content cannot be checked), and does not count it as
//! tampering.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::segment;
use crate::lifecycle::{Recorder, TmuxEvent};
use crate::text::hex;

/// The tmux event of a segment closed by its capture process.
pub const SEALED: &str = "capture-sealed";
/// The tmux event of a segment deleted by the capture budget.
pub const PRUNED: &str = "capture-pruned";

/// Whether `event` is a seal or a prune of a segment: bookkeeping, not
/// something tmux did (the timeline leaves them out).
pub fn is_seal_event(event: &str) -> bool {
    event == SEALED || event == PRUNED
}

/// One finished segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// Relative to the capture root: `<server pid>-<pane>/<name>.seg`.
    pub file: String,
    pub sha256: [u8; 32],
    pub bytes: u64,
}

impl Seal {
    /// The seal of the file at `path` (under `root`) as it is now.
    pub fn of_file(root: &Path, path: &Path) -> io::Result<Seal> {
        let file = relative(root, path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "not a segment of this root")
        })?;
        let (sha256, bytes) = hash_file(path)?;
        Ok(Seal {
            file,
            sha256,
            bytes,
        })
    }

    /// The tmux event (`kind`: [`SEALED`] or [`PRUNED`]) that chains this
    /// seal, recorded by `by` for the pane of server `socket`/`server_pid`.
    pub fn event(&self, kind: &str, socket: &str, by: &Recorder) -> TmuxEvent {
        let (server_pid, pane) = pane_of(&self.file).unwrap_or((0, None));
        TmuxEvent {
            event: kind.to_string(),
            at_us: by.at_us,
            event_key: format!(
                "{kind} {} {} sha256={} bytes={}",
                by.host,
                self.file,
                hex(&self.sha256),
                self.bytes
            ),
            host: by.host.clone(),
            user: by.user.clone(),
            uid: by.uid,
            tmux_socket: socket.to_string(),
            tmux_server_pid: server_pid,
            pane,
            ..TmuxEvent::default()
        }
    }

    /// The seal an event of [`SEALED`] or [`PRUNED`] holds.
    pub fn from_event(event: &TmuxEvent) -> Option<Seal> {
        if !is_seal_event(&event.event) {
            return None;
        }
        let mut words = event.event_key.split(' ');
        let (_kind, _host) = (words.next()?, words.next()?);
        let file = words.next()?.to_string();
        let sha256 = crate::chain::parse_hex(words.next()?.strip_prefix("sha256=")?.as_bytes())?;
        let bytes = words.next()?.strip_prefix("bytes=")?.parse().ok()?;
        Some(Seal {
            file,
            sha256,
            bytes,
        })
    }
}

/// `<server pid>-<n>/…` → (server pid, `%n`).
fn pane_of(file: &str) -> Option<(i64, Option<String>)> {
    let dir = file.split('/').next()?;
    let (pid, pane) = dir.split_once('-')?;
    Some((pid.parse().ok()?, Some(format!("%{pane}"))))
}

/// `path` relative to `root`, as `/`-separated text.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    Some(rel.to_str()?.to_string())
}

fn hash_file(path: &Path) -> io::Result<([u8; 32], u64)> {
    let mut file = crate::private_files::read(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}

/// What is wrong with a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file is gone, and no prune of the budget says why.
    Deleted { file: String, sealed_at_us: i64 },
    /// Its bytes no longer give the SHA-256 it was sealed with.
    Changed { file: String, sealed_at_us: i64 },
    /// It cannot be read (its permissions were changed, or it is not ours).
    Unreadable { file: String, error: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |us: &i64| crate::render::utc_time(*us);
        match self {
            Problem::Deleted { file, sealed_at_us } => write!(
                f,
                "capture segment {file} (sealed at {}) was deleted",
                time(sealed_at_us)
            ),
            Problem::Changed { file, sealed_at_us } => write!(
                f,
                "capture segment {file} (sealed at {}) was changed after it was sealed",
                time(sealed_at_us)
            ),
            Problem::Unreadable { file, error } => {
                write!(f, "capture segment {file} cannot be checked: {error}")
            }
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Sealed segments found whole.
    pub intact: usize,
    /// Sealed segments the budget deleted (a [`PRUNED`] event each).
    pub pruned: usize,
    pub problems: Vec<Problem>,
    /// Segments with no seal whose capture process no longer runs: it was
    /// killed before it closed them. Their content cannot be checked.
    pub unsealed: Vec<PathBuf>,
}

/// Checks every segment sealed by `events` (the tmux events, in chain
/// order) against the files under the capture root `root`.
/// `running_dirs`: the pane directories whose capture process runs now
/// (their newest segment is still being written).
pub fn check<'a>(
    root: &Path,
    events: impl IntoIterator<Item = &'a TmuxEvent>,
    running_dirs: &HashSet<PathBuf>,
) -> Checked {
    let mut sealed: Vec<(Seal, i64)> = Vec::new();
    let mut pruned: HashMap<String, [u8; 32]> = HashMap::new();
    for event in events {
        let Some(seal) = Seal::from_event(event) else {
            continue;
        };
        if event.event == PRUNED {
            pruned.insert(seal.file, seal.sha256);
        } else {
            sealed.push((seal, event.at_us));
        }
    }
    let mut checked = Checked::default();
    let mut known = HashSet::new();
    for (seal, at) in sealed {
        known.insert(seal.file.clone());
        let path = root.join(&seal.file);
        if pruned.get(&seal.file) == Some(&seal.sha256) && !path.exists() {
            checked.pruned += 1;
            continue;
        }
        match hash_file(&path) {
            Ok((sha256, _)) if sha256 == seal.sha256 => checked.intact += 1,
            Ok(_) => checked.problems.push(Problem::Changed {
                file: seal.file,
                sealed_at_us: at,
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                checked.problems.push(Problem::Deleted {
                    file: seal.file,
                    sealed_at_us: at,
                })
            }
            Err(err) => checked.problems.push(Problem::Unreadable {
                file: seal.file,
                error: err.to_string(),
            }),
        }
    }
    for dir in pane_dirs(root) {
        let files = segment::list(&dir).unwrap_or_default();
        let open = running_dirs.contains(&dir);
        for (i, path) in files.iter().enumerate() {
            let being_written = open && i + 1 == files.len();
            let sealed = relative(root, path).is_some_and(|f| known.contains(&f));
            if !sealed && !being_written {
                checked.unsealed.push(path.clone());
            }
        }
    }
    checked
}

/// The pane directories under the capture root.
pub fn pane_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The directories of the panes whose capture runs now.
pub fn running_dirs(root: &Path) -> HashSet<PathBuf> {
    super::running()
        .into_iter()
        .filter_map(|(pid, pane)| super::pane_dir(root, pid, &pane))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> Recorder {
        Recorder {
            at_us: 7,
            host: "h".into(),
            user: "u".into(),
            uid: 1,
        }
    }

    fn sealed_file(root: &Path, name: &str, content: &[u8]) -> TmuxEvent {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        Seal::of_file(root, &path)
            .unwrap()
            .event(SEALED, "/tmp/s", &recorder())
    }

    #[test]
    fn a_seal_comes_back_from_its_event() {
        let seal = Seal {
            file: "42-3/00000000000000000001-9.seg".into(),
            sha256: [7; 32],
            bytes: 12,
        };
        let event = seal.event(SEALED, "/tmp/s", &recorder());
        assert_eq!(event.tmux_server_pid, 42);
        assert_eq!(event.pane.as_deref(), Some("%3"));
        assert_eq!(Seal::from_event(&event), Some(seal.clone()));
        // Stored once per key: its prune must have a key of its own.
        assert_ne!(
            event.event_key,
            seal.event(PRUNED, "/tmp/s", &recorder()).event_key
        );
    }

    #[test]
    fn an_edited_and_a_deleted_segment_are_named_and_a_pruned_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let whole = sealed_file(root, "1-1/a.seg", b"whole");
        let edited = sealed_file(root, "1-1/b.seg", b"before");
        let deleted = sealed_file(root, "1-2/c.seg", b"gone");
        let pruned = sealed_file(root, "1-2/d.seg", b"old");
        let prune = Seal::from_event(&pruned)
            .unwrap()
            .event(PRUNED, "/tmp/s", &recorder());
        std::fs::write(root.join("1-1/b.seg"), b"after!").unwrap();
        std::fs::remove_file(root.join("1-2/c.seg")).unwrap();
        std::fs::remove_file(root.join("1-2/d.seg")).unwrap();
        std::fs::write(root.join("1-2/e.seg"), b"killed").unwrap();
        let events = [whole, edited, deleted, pruned, prune];
        let checked = check(root, &events, &HashSet::new());
        assert_eq!(checked.intact, 1);
        assert_eq!(checked.pruned, 1);
        assert_eq!(
            checked.problems,
            vec![
                Problem::Changed {
                    file: "1-1/b.seg".into(),
                    sealed_at_us: 7
                },
                Problem::Deleted {
                    file: "1-2/c.seg".into(),
                    sealed_at_us: 7
                },
            ]
        );
        assert_eq!(checked.unsealed, vec![root.join("1-2/e.seg")]);
        // Its capture still running: the newest file is being written.
        let running = HashSet::from([root.join("1-2")]);
        assert!(check(root, &events, &running).unsealed.is_empty());
    }
}
