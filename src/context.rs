//! What surrounds a command when it finishes: who, where, and inside which
//! tmux pane. Read from the process environment and /proc; no subprocesses.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;

use crate::text::StoredText;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub cwd: StoredText,
    pub user: String,
    pub uid: u32,
    /// The audit login uid (`/proc/self/loginuid`): the user who logged in,
    /// unchanged by `su` or `sudo -i`. None where the kernel does not track it.
    pub login_uid: Option<u32>,
    pub sudo_user: Option<String>,
    pub host: String,
    pub tty: Option<String>,
    pub ssh_connection: Option<String>,
    pub tmux: Option<Tmux>,
}

/// The raw tmux context: `$TMUX` (`socket,server-pid,session-id`) and `$TMUX_PANE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmux {
    pub socket: String,
    pub server_pid: Option<i64>,
    pub session_id: Option<i64>,
    pub pane: Option<String>,
}

impl Context {
    /// `cwd`: the directory the command started in, when the hook knows it
    /// (else the recorder's own, inherited from the shell).
    pub fn capture(cwd: Option<StoredText>) -> Context {
        Context::capture_for(cwd, tty_of(std::os::unix::process::parent_id()))
    }

    /// The context of a command of a shell whose terminal is `tty` (the
    /// recorder a hook starts once is not the shell's child: it reads the
    /// shell's terminal when it starts, not while the shell may run a
    /// command with its input redirected).
    pub fn capture_for(cwd: Option<StoredText>, tty: Option<String>) -> Context {
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        Context {
            cwd: cwd.unwrap_or_else(current_dir),
            user: user_name(uid),
            uid,
            login_uid: login_uid(),
            sudo_user: non_empty_var("SUDO_USER"),
            host: whoami::fallible::hostname().unwrap_or_default(),
            tty,
            ssh_connection: non_empty_var("SSH_CONNECTION"),
            tmux: Tmux::from_env(),
        }
    }
}

impl Tmux {
    /// The tmux context of this process: None outside tmux.
    pub fn from_env() -> Option<Tmux> {
        non_empty_var("TMUX").map(|tmux| Tmux::parse(&tmux, non_empty_var("TMUX_PANE")))
    }

    /// `$TMUX` is `socket_path,server_pid,session_id`; the socket path may
    /// itself hold commas, so the numbers are taken from the right.
    pub fn parse(tmux: &str, pane: Option<String>) -> Tmux {
        let mut fields = tmux.rsplitn(3, ',');
        let (session, pid, socket) = (fields.next(), fields.next(), fields.next());
        match socket {
            Some(socket) => Tmux {
                socket: socket.to_string(),
                server_pid: pid.and_then(|p| p.parse().ok()),
                session_id: session.and_then(|s| s.parse().ok()),
                pane,
            },
            None => Tmux {
                socket: tmux.to_string(),
                server_pid: None,
                session_id: None,
                pane,
            },
        }
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(|v| v.to_string_lossy().into_owned())
}

/// The shell's working directory, which the recorder inherits. When it was
/// deleted, the shell's `$PWD` is the best account left of where it was.
fn current_dir() -> StoredText {
    let dir = env::current_dir()
        .map(|p| p.into_os_string())
        .or_else(|_| env::var_os("PWD").ok_or(()))
        .unwrap_or_default();
    StoredText::from_bytes(OsString::into_vec(dir))
}

/// The name of `uid`. Local accounts are looked up in /etc/passwd directly,
/// which costs a fraction of a full NSS lookup; others (LDAP, sssd) go
/// through NSS. The uid itself is always stored beside the name.
pub fn user_name(uid: u32) -> String {
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| name_in_passwd(&passwd, uid))
        .or_else(|| whoami::fallible::username().ok())
        .unwrap_or_else(|| uid.to_string())
}

fn name_in_passwd(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid_field = fields.nth(1)?;
        (uid_field.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_string())
    })
}

fn login_uid() -> Option<u32> {
    let raw = fs::read_to_string("/proc/self/loginuid").ok()?;
    // (uid_t)-1 means "not set" (no login session, or no audit support).
    raw.trim().parse().ok().filter(|&uid| uid != u32::MAX)
}

/// The terminal of the shell with process id `shell`: the hook gives the
/// recorder a pipe as its stdin, but the shell's own stdin is the terminal.
/// `None` when that is no terminal: a shell's builtin with `< /dev/null`
/// (or `< file`) changes the shell's own stdin for a moment.
pub fn tty_of(shell: u32) -> Option<String> {
    terminal_at(&format!("/proc/{shell}/fd/0"))
}

/// The terminal this process's stdin is, if it is one.
pub fn own_tty() -> Option<String> {
    terminal_at("/proc/self/fd/0")
}

fn terminal_at(fd_link: &str) -> Option<String> {
    let target = fs::read_link(fd_link).ok()?;
    let target = target.to_str()?;
    is_terminal_path(target).then(|| target.to_string())
}

/// A terminal's device: a pseudo-terminal, a virtual console, a serial
/// line, the console, or the process's own (`/dev/tty`).
fn is_terminal_path(path: &str) -> bool {
    path.strip_prefix("/dev/pts/")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || path
            .strip_prefix("/dev/tty")
            .is_some_and(|rest| !rest.contains('/'))
        || path == "/dev/console"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmux_variable_is_split_from_the_right() {
        let t = Tmux::parse("/tmp/tmux-1000/a,b,4242,7", Some("%3".into()));
        assert_eq!(t.socket, "/tmp/tmux-1000/a,b");
        assert_eq!(t.server_pid, Some(4242));
        assert_eq!(t.session_id, Some(7));
        assert_eq!(t.pane.as_deref(), Some("%3"));
    }

    #[test]
    fn user_names_come_from_passwd_lines() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# comment\nalice:x:1000:1000::/home/alice:/bin/zsh\n";
        assert_eq!(name_in_passwd(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_in_passwd(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_in_passwd(passwd, 1001), None);
    }

    #[test]
    fn only_a_terminal_s_device_is_a_tty() {
        for tty in [
            "/dev/pts/0",
            "/dev/pts/17",
            "/dev/tty1",
            "/dev/ttyS0",
            "/dev/console",
            "/dev/tty",
        ] {
            assert!(is_terminal_path(tty), "{tty}");
        }
        for other in [
            "/dev/null",
            "/dev/pts/ptmx",
            "/dev/pts/",
            "/dev/zero",
            "/tmp/x",
            "/dev/ttyx/y",
        ] {
            assert!(!is_terminal_path(other), "{other}");
        }
    }

    #[test]
    fn odd_tmux_variable_is_kept_whole() {
        let t = Tmux::parse("weird", None);
        assert_eq!(t.socket, "weird");
        assert_eq!(t.server_pid, None);
    }
}
