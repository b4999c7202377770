//! `tmux-audit recorder`: one long-lived recorder per interactive bash,
//! zsh or fish, started as the hook loads (or, for a hook loaded from the
//! copy `init` keeps, in the background at the shell's first prompt), so
//! that a command costs the shell a few builtin writes rather than a
//! process.
//!
//! [`start`] makes a FIFO private to the shell
//! (`$XDG_STATE_HOME/tmux-audit/recorders/bash-N.fifo`), opens it
//! read-write, takes the lock beside it, starts `recorder --serve` in the
//! background with the FIFO as its stdin and the lock as its stdout (so the
//! lock lives exactly as long as the recorder), and hands back the FIFO's
//! path and the recorder's pid. `init`, already the shell's child, calls it
//! as it prints the hook and writes both into the script; the starter
//! (`recorder --shell bash --shell-pid N`) is run in the background by a
//! hook loaded from a copy of `init`'s output, which then reads the pid
//! from the lock (the FIFO's path it knows), and prints both too. The shell is never the recorder's
//! parent: no job, no `$!`, nothing for `exit` to warn about.
//!
//! bash and zsh open the FIFO read-write for each frame (`1<>`): the open
//! never blocks, the shell never gets SIGPIPE (it is a reader too), and no
//! descriptor of the hook is left open in the shell or its children. fish
//! cannot open read-write, and a write-only open of a FIFO without a reader
//! waits for one: it writes to `/proc/PID/fd/0` of the recorder, which
//! exists only while the recorder does (and then has its reader). Each hook
//! checks that the recorder still reads the FIFO before and after the
//! write and falls back to a `record` process per command when it has gone.
//!
//! bash's hook needs the text of each entry back when the user's
//! `HISTCONTROL`/`HISTIGNORE` would have kept it out of the history list:
//! its frame then asks (`E`), and the recorder answers on a second FIFO
//! (`bash-N.reply`), before it stores the frame, with the text it read
//! ([`hook_stream::echo`]). bash reads the answer with `read -t`, no fork,
//! and reads the entry itself (a fork) when no answer comes.
//!
//! The recorder stores each frame as `record` would (config read for each,
//! redaction before any write, `store::save`), and ends when the shell does
//! (a pidfd: also after `kill -9`), after storing what is left in the FIFO;
//! or when its own executable has been replaced or removed, leaving the
//! hook to the binary now at its path. A second start for the same shell
//! (`exec bash`) finds the recorder alive by its lock and shares it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use anyhow::{bail, Context as _, Result};

use super::record::{command_record, load_config, read_at_most, sync_if_due, Told};
use super::{Exit, Run};
use crate::cli::{Recorder, Shell};
use tmux_audit::config::Config;
use tmux_audit::hook_stream::{self, FrameError, TextKind, UntilNul};
use tmux_audit::record::Entry;
use tmux_audit::{error_log, paths, private_files, store};

impl Run for Recorder {
    fn run(&self) -> Result<Exit> {
        store::log_panics("recorder");
        let outcome = if self.serve {
            self.serve()
        } else {
            self.start()
        };
        outcome.inspect_err(|err| store::log("recorder", err))
    }
}

/// A recorder running for a shell: the FIFO it reads and its pid.
pub struct Running {
    pub fifo: PathBuf,
    pub pid: u32,
}

/// The FIFO and the lock of the recorder of `shell` process `shell_pid`.
fn files(shell: Shell, shell_pid: u32) -> Result<(PathBuf, PathBuf)> {
    let dir = paths::recorders_dir()?;
    private_files::dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("{}-{shell_pid}", shell_name(shell));
    Ok((
        dir.join(format!("{name}.fifo")),
        dir.join(format!("{name}.lock")),
    ))
}

/// Where the recorder answers frames that ask for their text back
/// ([`hook_stream::echo`]), beside the FIFO it reads: bash's only.
fn replies_path(fifo: &Path) -> PathBuf {
    fifo.with_extension("reply")
}

/// The reply FIFO, opened read-write (an answer written never waits for a
/// reader, nor fails for want of one) and non-blocking (an answer that
/// finds it full of ones never read is dropped, and the hook, tired of
/// waiting, reads the entry itself). One that cannot be opened is
/// removed: bash then stops asking.
fn open_replies(fifo: &Path) -> Option<File> {
    let path = replies_path(fifo);
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path);
    if opened.is_err() {
        let _ = fs::remove_file(&path);
    }
    opened.ok()
}

fn shell_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
    }
}

/// Starts the recorder of `shell` process `shell_pid` (see the module
/// doc), or finds the one already running for it (the shell exec'd
/// itself). Called by `recorder` and by `init`, which is the shell's child
/// already and so saves the shell starting one more process as it loads
/// the hook.
pub fn start(shell: Shell, shell_pid: u32, db: Option<&Path>) -> Result<Running> {
    // The shell's terminal, taken by the starter from its own stdin (the
    // shell's, handed on by `init`'s command substitution and by the
    // hooks' start lines), else from the shell's: the shell's own stdin
    // can be redirected for a moment (a builtin's `< file`) as this runs.
    let tty = tmux_audit::context::own_tty().or_else(|| tmux_audit::context::tty_of(shell_pid));
    let (fifo, lock_path) = files(shell, shell_pid)?;
    let mut lock = private_files::read_write(&lock_path, true)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if !try_lock(&lock)? {
        // This shell's recorder runs (the shell exec'd itself): share it.
        let mut pid = String::new();
        lock.read_to_string(&mut pid)?;
        let pid = pid.trim().parse::<u32>().ok();
        return match pid {
            Some(pid) if fifo_exists(&fifo) => Ok(Running { fifo, pid }),
            _ => bail!(
                "the recorder of {} is starting or stopping",
                lock_path.display()
            ),
        };
    }
    let _ = fs::remove_file(&fifo);
    make_fifo(&fifo)?;
    if shell == Shell::Bash {
        let replies = replies_path(&fifo);
        let _ = fs::remove_file(&replies);
        make_fifo(&replies)?;
    }
    // Read-write: never blocks, and the FIFO has a reader (the recorder)
    // from now on.
    let reader = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&fifo)
        .with_context(|| format!("cannot open {}", fifo.display()))?;
    let child = Command::new(std::env::current_exe()?)
        .args(["recorder", "--serve", "--shell", shell_name(shell)])
        .args(["--shell-pid", &shell_pid.to_string()])
        .args(db.iter().flat_map(|p| [Path::new("--db"), p]))
        .args(tty.iter().flat_map(|tty| ["--tty", tty]))
        .stdin(reader)
        .stdout(lock.try_clone()?)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the recorder")?;
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", child.id())?;
    Ok(Running {
        fifo,
        pid: child.id(),
    })
}

impl Recorder {
    fn start(&self) -> Result<Exit> {
        let running = start(self.shell, self.shell_pid, self.db.path.as_deref())?;
        println!("{}\t{}", running.fifo.display(), running.pid);
        Ok(Exit::Success)
    }

    fn serve(&self) -> Result<Exit> {
        let (fifo, _) = files(self.shell, self.shell_pid)?;
        let shell = pidfd(self.shell_pid)?;
        let replies = open_replies(&fifo);
        // The shell's terminal as the starter saw it, else now. While this
        // runs, the shell's stdin can be redirected for a moment (a
        // builtin's `< /dev/null`): then it is taken again at each frame
        // until one is seen.
        let mut tty = self
            .tty
            .clone()
            .or_else(|| tmux_audit::context::tty_of(self.shell_pid));
        // SAFETY: descriptor 0 is the FIFO the starter gave this process,
        // owned by nothing else here.
        let input = unsafe { File::from_raw_fd(0) };
        let path = paths::database(self.db.path.as_deref())?;
        let frames = BufReader::with_capacity(
            64 * 1024,
            Watched {
                fifo: input,
                shell,
                draining: false,
            },
        );
        // Frames are read, and answered, on a thread of their own: a shell
        // waiting for an answer does not wait for a store (unless
        // QUEUED_FRAMES wait for it).
        let (tx, rx) = mpsc::sync_channel(QUEUED_FRAMES);
        let reader = std::thread::spawn(move || read_frames(frames, replies, &fifo, tx));
        for frame in rx {
            if tty.is_none() {
                tty = tmux_audit::context::tty_of(self.shell_pid);
            }
            self.store(frame, &path, &tty);
        }
        let _ = reader.join();
        Ok(Exit::Success)
    }

    /// Stores a frame read by [`read_frames`].
    fn store(&self, frame: Frame, db: &Path, tty: &Option<String>) {
        let Frame {
            header,
            text,
            finished_us,
            config,
        } = frame;
        let told = Told {
            shell: self.shell.into(),
            session: header.session,
            seq: header.seq,
            exit_status: header.exit_status,
            start_us: header.start_us,
            end_us: header.end_us,
            duration_ms: header.duration_ms,
            cwd: Some(header.cwd).filter(|cwd| !cwd.is_empty()),
        };
        let record = command_record(told, text, &config, finished_us, tty.clone());
        let stored =
            store::save(db, &[Entry::Command(record)]).and_then(|()| sync_if_due(db, &config));
        if let Err(err) = stored {
            store::log("recorder", &err);
        }
        // What store and sync started in the background (a merge, a sync,
        // a record handed over) is this long-lived process's child: reap
        // those that have ended, or each would stay a zombie until the
        // shell exits.
        // Nothing else in this process waits for a child between frames.
        super::reap_children();
    }
}

/// Frames read ahead of the store, at most. When the store falls further
/// behind, frames wait in the FIFO's buffer, then the shell waits to write
/// them, and bash, asking for an entry, waits for the store to take one.
const QUEUED_FRAMES: usize = 64;

/// A frame read, for the store.
struct Frame {
    header: hook_stream::Header,
    text: Vec<u8>,
    /// When it was read: the record's time when the hook gave none.
    finished_us: i64,
    /// The config as the frame was read (it may change between frames).
    config: Config,
}

/// Reads frames until the stream ends, answering those that ask, and hands
/// them to the store; then removes the FIFOs. The stream ends when the
/// shell has gone and the FIFO is drained, or once this executable is
/// replaced or removed (an upgrade: the hook falls back to the binary now
/// at its path): then the FIFO is removed at once, so that the hook sees
/// this recorder gone, and what is in it already is still stored.
fn read_frames(
    mut frames: BufReader<Watched>,
    replies: Option<File>,
    fifo: &Path,
    to_store: mpsc::SyncSender<Frame>,
) {
    let exe = std::env::current_exe().ok();
    let remove_fifos = || {
        let _ = fs::remove_file(fifo);
        if replies.is_some() {
            let _ = fs::remove_file(replies_path(fifo));
        }
    };
    let mut upgraded = false;
    loop {
        match read_frame(&mut frames, replies.as_ref()) {
            Ok(Some(frame)) => {
                if to_store.send(frame).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(FrameError::Io(err)) if err.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(err) => {
                error_log::append(
                    "recorder",
                    &format!("{err}; it is set aside"),
                    "run `tmux-audit doctor`; re-run the init line of your shell's rc file if you upgraded",
                );
                if hook_stream::resync(&mut frames).is_err() {
                    break;
                }
            }
        }
        if !upgraded && exe.as_deref().is_some_and(replaced) {
            upgraded = true;
            remove_fifos();
            if frames.get_mut().drain().is_err() {
                break;
            }
        }
    }
    remove_fifos();
}

/// The next frame, answered first if it asks (`replies`); None at the end
/// of the stream.
fn read_frame(
    frames: &mut BufReader<Watched>,
    replies: Option<&File>,
) -> Result<Option<Frame>, FrameError> {
    let Some((header, kind)) = hook_stream::read_header(frames)? else {
        return Ok(None);
    };
    let finished_us = store::now_us();
    let config = load_config();
    let max = config.record.max_command_bytes;
    let text = match kind {
        TextKind::History { number, echo } => {
            let mut history = UntilNul::new(frames);
            let found = history.text_start(number)?;
            let mut text = Vec::new();
            if found {
                text = read_at_most(&mut history, max)?;
                // As `$(history 1)` gave it: no newline at the end.
                while text.last() == Some(&b'\n') {
                    text.pop();
                }
            }
            history.skip()?;
            if echo {
                let entry = if !found {
                    hook_stream::Entry::Absent
                } else if text.len() <= max {
                    hook_stream::Entry::Whole(&text)
                } else {
                    hook_stream::Entry::Cut
                };
                let answer = hook_stream::echo(&header.session, header.seq, entry);
                if let Some(mut replies) = replies {
                    // Dropped when it does not fit: the hook stops waiting
                    // and reads the entry itself.
                    let _ = replies.write(&answer);
                }
            }
            text
        }
        TextKind::Bytes { len } => {
            let mut text = (&mut *frames).take(len);
            let kept = read_at_most(&mut text, max)?;
            io::copy(&mut text, &mut io::sink())?;
            kept
        }
        TextKind::UntilNul => {
            let mut text = UntilNul::new(frames);
            let kept = read_at_most(&mut text, max)?;
            text.skip()?;
            kept
        }
        TextKind::Unavailable => Vec::new(),
    };
    Ok(Some(Frame {
        header,
        text,
        finished_us,
        config,
    }))
}

/// The FIFO, read only while the shell lives; once it has gone (or this
/// recorder is upgraded), what is left in it, then the end.
struct Watched {
    fifo: File,
    shell: OwnedFd,
    /// Reading only what is left.
    draining: bool,
}

impl Watched {
    /// From now on, reads only what is in the FIFO already.
    fn drain(&mut self) -> io::Result<()> {
        set_nonblocking(self.fifo.as_raw_fd())?;
        self.draining = true;
        Ok(())
    }
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.draining {
                return match self.fifo.read(buf) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    other => other,
                };
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.fifo.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.shell.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfd entries, owned by this frame.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if fds[0].revents & libc::POLLIN != 0 {
                return self.fifo.read(buf);
            }
            if fds[1].revents != 0 {
                // Drain without waiting: nothing more can come.
                self.drain()?;
            }
        }
    }
}

/// A descriptor that becomes readable when process `pid` ends.
fn pidfd(pid: u32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; nothing is borrowed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot watch the shell (pid {pid})"));
    }
    // SAFETY: a new descriptor of our own, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns, no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes the lock without waiting: false when another holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this process owns, no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(err)
    }
}

fn make_fifo(path: &Path) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: a NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot make {}", path.display()));
    }
    Ok(())
}

fn fifo_exists(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// True when this process's executable is no longer the file at its path.
fn replaced(exe: &Path) -> bool {
    fs::read_link("/proc/self/exe")
        .map(|link| link.as_os_str().as_encoded_bytes().ends_with(b" (deleted)"))
        .unwrap_or(false)
        || !exe.exists()
}
