//! The capture budget: every pane's segments together stay under
//! `[capture] max_total_mib`, the oldest deleted first.
//!
//! Run by a capture process each time it closes a segment (never on the
//! path that reads the pane). A segment still being written (the newest of
//! a pane whose capture runs) is never deleted. The caller chains each
//! segment's seal as a [`super::seal::PRUNED`] event *before* deleting it
//! (so a deletion is never unexplained), and `verify` tells a segment the
//! budget deleted from one deleted by hand.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use super::seal::{self, Seal};
use super::segment;

/// The oldest finished segments under `root` to delete so that they all
/// take at most `budget` bytes, with their seals, oldest first.
/// `running`: the pane directories whose capture runs now.
pub fn over_budget(
    root: &Path,
    budget: u64,
    running: &HashSet<PathBuf>,
) -> io::Result<Vec<(PathBuf, Seal)>> {
    let mut total = 0u64;
    // (begun, path, length) of each segment that may go.
    let mut finished = Vec::new();
    for dir in seal::pane_dirs(root) {
        let files = segment::list(&dir)?;
        let open = running.contains(&dir);
        for (i, path) in files.iter().enumerate() {
            let len = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
            total += len;
            if !(open && i + 1 == files.len()) {
                let begun = segment::begun_us(path).unwrap_or(i64::MIN);
                finished.push((begun, path.clone(), len));
            }
        }
    }
    finished.sort();
    let mut deleted = Vec::new();
    for (_, path, len) in finished {
        if total <= budget {
            break;
        }
        let seal = Seal::of_file(root, &path)?;
        total = total.saturating_sub(len);
        deleted.push((path, seal));
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(root: &Path, name: &str, len: usize) -> PathBuf {
        let path = root.join(name);
        crate::private_files::dir(path.parent().unwrap()).unwrap();
        let mut file = crate::private_files::create_new(&path).unwrap();
        std::io::Write::write_all(&mut file, &vec![b'x'; len]).unwrap();
        path
    }

    #[test]
    fn the_oldest_finished_segments_go_first_and_the_one_being_written_stays() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c");
        crate::private_files::dir(&root).unwrap();
        let oldest = segment(&root, "1-1/00000000000000000001-5.seg", 100);
        let writing = segment(&root, "1-2/00000000000000000002-6.seg", 100);
        let older = segment(&root, "1-1/00000000000000000003-5.seg", 100);
        let newest = segment(&root, "1-1/00000000000000000004-7.seg", 100);
        let running = HashSet::from([root.join("1-2")]);
        let oldest_seal = Seal::of_file(&root, &oldest).unwrap();
        // 400 bytes, 250 allowed: two go, oldest first, never the one of
        // pane 1-2 that is being written (older than both).
        let over = over_budget(&root, 250, &running).unwrap();
        let paths: Vec<&PathBuf> = over.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, [&oldest, &older]);
        assert_eq!(over[0].1, oldest_seal);
        assert!(over_budget(&root, 400, &running).unwrap().is_empty());
        let _ = (writing, newest);
    }
}
