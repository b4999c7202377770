//! The copy of `init`'s hook script kept in the cache directory
//! (`$XDG_CACHE_HOME/tmux-audit/init.bash`, `init-no-bind.zsh`, …), for
//! the faster rc line that reads it with the shell's own `source` instead
//! of running `tmux-audit init` (a process) at every shell start:
//!
//! ```text
//! source "${XDG_CACHE_HOME:-$HOME/.cache}/tmux-audit/init.bash" 2>/dev/null || eval "$(tmux-audit init bash)"
//! ```
//!
//! `init` writes it each time it runs (unless it holds that text already),
//! private to the user, and gives it the modification time of the binary
//! that wrote it. The script's first line (made by `init`, which knows each
//! shell's syntax) compares the two times with the shell's `-nt`/`-ot`
//! tests: a binary replaced (another version) or gone makes the copy return
//! 1 unloaded, and the rc line runs `init`, which writes it again.

use std::fs::{self, FileTimes};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::{paths, private_files};

/// Where the copy of the hook of `shell` (`bash`, `zsh`, `fish`) is kept:
/// one per shell, and one without the Ctrl-R binding.
pub fn path(shell: &str, no_bind: bool) -> Result<PathBuf> {
    let name = if no_bind { "init-no-bind" } else { "init" };
    Ok(paths::cache_dir()?.join(format!("{name}.{shell}")))
}

/// The modification time the copy carries: the binary's own.
pub fn binary_time(exe: &Path) -> Result<SystemTime> {
    fs::metadata(exe)
        .and_then(|m| m.modified())
        .with_context(|| format!("cannot read the modification time of {}", exe.display()))
}

/// The newest modification time of the files among `paths` that exist;
/// the epoch when none does.
pub fn newest_time(paths: &[PathBuf]) -> SystemTime {
    paths
        .iter()
        .filter_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The empty file beside the copy at `copy` that carries `time`, the
/// config files' newest time when `init` read them: the copy's first line
/// returns 1 when a config file is newer (`-nt`) than it. Written only when
/// it does not carry that time already.
pub fn stamp(copy: &Path, time: SystemTime) -> io::Result<PathBuf> {
    let mut name = copy.file_name().unwrap_or_default().to_os_string();
    name.push(".config-time");
    let stamp = copy.with_file_name(name);
    store(&stamp, b"", time)?;
    Ok(stamp)
}

/// Makes `path` hold `text` with modification time `time`, unless it does
/// already (most shell starts: nothing is written). Written beside it and
/// renamed over it, so a shell starting meanwhile reads the old copy or
/// the new one whole. False when it was there already.
pub fn store(path: &Path, text: &[u8], time: SystemTime) -> io::Result<bool> {
    if holds(path, text, time) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    private_files::dir(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let part = dir.join(format!(".{name}.{}.part", std::process::id()));
    // One left by a process of the same pid that died writing it.
    let _ = fs::remove_file(&part);
    let written = (|| {
        let mut file = private_files::create_new(&part)?;
        file.write_all(text)?;
        file.set_times(FileTimes::new().set_modified(time))?;
        fs::rename(&part, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&part);
    }
    written.map(|()| true)
}

/// True when `path` is a private file of the user that holds `text` and
/// carries `time`.
fn holds(path: &Path, text: &[u8], time: SystemTime) -> bool {
    let Ok(mut file) = private_files::read(path) else {
        return false;
    };
    let same_time = file
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| t == time);
    let mut found = Vec::with_capacity(text.len() + 1);
    same_time
        && Read::by_ref(&mut file)
            .take(text.len() as u64 + 1)
            .read_to_end(&mut found)
            .is_ok()
        && found == text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    #[test]
    fn the_copy_is_private_carries_the_time_given_and_is_written_only_when_it_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/tmux-audit/init.bash");
        let time = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert!(store(&path, b"script one", time).unwrap(), "written");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().permissions();
        assert_eq!(dir_mode.mode() & 0o777, 0o700);
        assert_eq!(meta.modified().unwrap(), time, "to the nanosecond");
        assert!(!store(&path, b"script one", time).unwrap(), "already there");
        let later = time + Duration::from_secs(1);
        assert!(
            store(&path, b"script one", later).unwrap(),
            "another binary"
        );
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), later);
        assert!(store(&path, b"script two", later).unwrap(), "another text");
        assert_eq!(fs::read(&path).unwrap(), b"script two");
        let left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            [std::ffi::OsString::from("init.bash")],
            "no part left"
        );
    }

    #[test]
    fn a_copy_someone_else_could_write_is_replaced_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.zsh");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(store(&path, b"hook", time).unwrap());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!holds(&path, b"hook", time));
        assert!(store(&path, b"hook", time).unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
