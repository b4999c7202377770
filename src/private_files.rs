//! The files and directories tmux-audit keeps, private to the user: made
//! 0700 and 0600 whatever the umask, and, when found in place, used only
//! when they are the user's own and no other user can write them. Files
//! are opened without following symbolic links, and only regular files
//! are used: a FIFO would hang the prompt, a link would write where
//! someone else chose.
//!
//! A directory another user can write (the system's temp directory,
//! sticky or not, a shared 777 directory) is refused whole: in it, any
//! check of a file would race with that user replacing it. In a directory
//! only the user can write, the checks of its files are defence in depth.

use std::fmt;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The user this process runs as.
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail and has no preconditions.
    unsafe { libc::getuid() }
}

/// What is wrong with a file or directory found in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Link,
    NotRegular,
    NotDirectory,
    OtherOwner(u32),
    /// Group or others may write it: its mode.
    WritableByOthers(u32),
}

/// A file or directory tmux-audit will not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: PathBuf,
    pub why: Why,
    pub is_dir: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.path.display())?;
        self.why_text(f)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// Why, as the rest of a sentence about the file ("it …").
    pub fn why_text(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match &self.why {
            Why::Link => write!(f, "is a symbolic link"),
            Why::NotRegular => write!(f, "is not a regular file"),
            Why::NotDirectory => write!(f, "is not a directory"),
            Why::OtherOwner(owner) => write!(f, "belongs to another user (uid {owner})"),
            Why::WritableByOthers(mode) => {
                write!(f, "can be written by other users (mode {mode:o})")
            }
        }
    }

    /// What the user can do about it.
    pub fn fix(&self) -> String {
        let path = self.path.display();
        match (&self.why, self.is_dir) {
            (Why::WritableByOthers(_), true) => format!(
                "chmod go-w {path}, or set TMUX_AUDIT_DB to a file in a directory of your own"
            ),
            (_, true) => "set TMUX_AUDIT_DB to a file in a directory of your own".into(),
            (Why::WritableByOthers(_), false) => {
                format!("check what {path} holds, then chmod go-w it, or remove it")
            }
            (_, false) => format!("remove {path}: tmux-audit did not make it"),
        }
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, self)
    }
}

/// The refusal inside an error of [`open`], [`dir`] and the like, if any.
pub fn refusal(err: &io::Error) -> Option<&Refusal> {
    err.get_ref()?.downcast_ref()
}

fn refuse(path: &Path, why: Why, is_dir: bool) -> Result<(), Refusal> {
    Err(Refusal {
        path: path.to_path_buf(),
        why,
        is_dir,
    })
}

/// A file, as found (not followed, if a link): a regular file of the user's
/// that no other user can write.
pub fn check_file(path: &Path, meta: &Metadata) -> Result<(), Refusal> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return refuse(path, Why::Link, false);
    }
    if !kind.is_file() {
        return refuse(path, Why::NotRegular, false);
    }
    check_owner(path, meta, false)
}

/// A directory (links followed): the user's own, and no other user can
/// write it. A sticky one (`/tmp`) is no better: others make files in it.
pub fn check_dir(path: &Path, meta: &Metadata) -> Result<(), Refusal> {
    if !meta.is_dir() {
        return refuse(path, Why::NotDirectory, true);
    }
    check_owner(path, meta, true)
}

fn check_owner(path: &Path, meta: &Metadata, is_dir: bool) -> Result<(), Refusal> {
    if meta.uid() != uid() {
        return refuse(path, Why::OtherOwner(meta.uid()), is_dir);
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(path, Why::WritableByOthers(meta.mode() & 0o7777), is_dir);
    }
    Ok(())
}

/// A file something else will open (SQLite its `-wal`, `-shm` and
/// `-journal`): absent, or fit for [`check_file`].
pub fn check_existing(path: &Path) -> Result<(), Refusal> {
    match fs::symlink_metadata(path) {
        Ok(meta) => check_file(path, &meta),
        Err(_) => Ok(()),
    }
}

/// Makes `dir` (and its parents) if needed, 0700 whatever the umask; one
/// found in place must pass [`check_dir`]. One `stat` when it exists.
pub fn dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) => return check_dir(dir, &meta).map_err(Refusal::into_io),
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        Err(_) => {}
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Opens `path` with `options` (plus: no following a link, no blocking on
/// a FIFO, 0600 when created), and refuses it unless it passes
/// [`check_file`]. A file opened for writing is made 0600 when the umask
/// made it less.
pub fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    open_checked(path, options).map(|(file, _)| file)
}

/// [`open`], and what the `fstat` that checked it found.
fn open_checked(path: &Path, options: &mut OpenOptions) -> io::Result<(File, Metadata)> {
    let file = options
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => Refusal {
                path: path.to_path_buf(),
                why: Why::Link,
                is_dir: false,
            }
            .into_io(),
            // A FIFO without a reader, opened to write without blocking.
            Some(libc::ENXIO) => Refusal {
                path: path.to_path_buf(),
                why: Why::NotRegular,
                is_dir: false,
            }
            .into_io(),
            _ => err,
        })?;
    let meta = file.metadata()?;
    check_file(path, &meta).map_err(Refusal::into_io)?;
    Ok((file, meta))
}

/// [`open`] for writing: also makes it 0600 when the umask made it less.
fn open_for_writing(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let (file, meta) = open_checked(path, options)?;
    if meta.mode() & 0o777 != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Writes `bytes` to `path` (replacing what it held), private to the user;
/// its directory made if needed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        dir(parent)?;
    }
    // Not O_TRUNC: a file that is refused must be left as it is.
    let mut file = open_for_writing(path, OpenOptions::new().write(true).create(true))?;
    file.set_len(0)?;
    file.write_all(bytes)
}

/// Opens `path` for appending, private to the user; its directory made if
/// needed.
pub fn append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        dir(parent)?;
    }
    open_for_writing(path, OpenOptions::new().append(true).create(true))
}

/// Opens `path` for reading and writing, creating it if `create`.
pub fn read_write(path: &Path, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(create);
    open_for_writing(path, &mut options)
}

/// Opens `path` for reading.
pub fn read(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().read(true))
}

/// Makes `path`, which must not exist yet (not even as a link).
pub fn create_new(path: &Path) -> io::Result<File> {
    open_for_writing(path, OpenOptions::new().write(true).create_new(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_files_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "mine").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = append(&link).unwrap_err();
        assert_eq!(refusal(&err).map(|r| &r.why), Some(&Why::Link), "{err}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "mine");

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = append(&fifo).unwrap_err();
        assert_eq!(refusal(&err).map(|r| &r.why), Some(&Why::NotRegular));

        let shared = dir.path().join("shared");
        fs::write(&shared, "x").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o666)).unwrap();
        let err = write(&shared, b"y").unwrap_err();
        assert_eq!(
            refusal(&err).map(|r| &r.why),
            Some(&Why::WritableByOthers(0o666))
        );
        assert_eq!(fs::read_to_string(&shared).unwrap(), "x", "left as it was");
        assert!(err.to_string().contains("can be written by other users"));
    }

    #[test]
    fn a_directory_others_can_write_is_refused_with_the_fix() {
        let dir_path = tempfile::tempdir().unwrap();
        let open_dir = dir_path.path().join("open");
        fs::create_dir(&open_dir).unwrap();
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = dir(&open_dir).unwrap_err();
        let refusal = refusal(&err).unwrap();
        assert_eq!(refusal.why, Why::WritableByOthers(0o1777));
        assert!(
            refusal.fix().starts_with("chmod go-w "),
            "{}",
            refusal.fix()
        );
        // A missing one is made private.
        let made = dir_path.path().join("a/b");
        dir(&made).unwrap();
        assert_eq!(fs::metadata(&made).unwrap().mode() & 0o777, 0o700);
        dir(&made).unwrap();
    }
}
