//! Real Unix users for the tests of what one user can do to another's
//! records (shared tmux sessions, hostile guests). Making them needs root;
//! elsewhere such tests say they are skipped and why, unless
//! TMUX_AUDIT_REQUIRE_USER_TESTS=1 (as in CI) makes that a failure.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where a test with a server owner and other users keeps its files: a
/// directory everyone can reach (removed on drop), holding a copy of the
/// binary, the owner's home (0700, theirs) and a directory for the tmux
/// socket (0755, theirs).
pub struct SharedDirs {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    pub home: PathBuf,
    pub sockets: PathBuf,
}

impl SharedDirs {
    pub fn new(prefix: &str, owner: &str) -> SharedDirs {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("tmux-audit");
        crate::support::copy_of_the_binary(&bin);
        let home = dir.path().join("alice");
        let sockets = dir.path().join("sockets");
        for (path, mode) in [(&home, 0o700), (&sockets, 0o755)] {
            fs::create_dir(path).unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
            let chown = Command::new("chown").arg(owner).arg(path).status().unwrap();
            assert!(chown.success());
        }
        SharedDirs {
            dir,
            bin,
            home,
            sockets,
        }
    }
}
use std::time::{Duration, Instant};

use crate::support::PATIENCE;

/// Throwaway Unix users, deleted on drop.
pub struct Users(pub Vec<String>);

impl Users {
    /// Creates one user per name, or says why it cannot.
    pub fn create(names: &[&str]) -> Result<Users, String> {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("creating Unix users needs root".into());
        }
        let mut users = Users(Vec::new());
        for name in names {
            let name = format!("ta{}{name}", std::process::id() % 1_000_000);
            let out = Command::new("useradd")
                .args(["-M", "-N", "-s", "/bin/sh", &name])
                .output()
                .map_err(|e| format!("cannot run useradd: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "useradd {name} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            users.0.push(name);
        }
        Ok(users)
    }

    /// [`Users::create`], or None after saying why the test is skipped;
    /// where TMUX_AUDIT_REQUIRE_USER_TESTS is set (CI), a skip fails.
    pub fn create_or_skip(names: &[&str]) -> Option<Users> {
        match Users::create(names) {
            Ok(users) => Some(users),
            Err(why) => {
                assert!(
                    std::env::var_os("TMUX_AUDIT_REQUIRE_USER_TESTS").is_none(),
                    "this test must run here, but: {why}"
                );
                eprintln!("skipped: {why}");
                None
            }
        }
    }
}

impl Users {
    /// The processes of tmux-audit these users run (`pgrep -a` lines).
    fn tmux_audit_processes(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|name| {
                let out = Command::new("pgrep")
                    .args(["-a", "-u", name, "-x", "tmux-audit"])
                    .output()
                    .expect("pgrep");
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|line| format!("{name}: {line}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A test leaves no process behind, also one run as these users: by the
/// time they go (after the tmux server and the shared directory, declared
/// after them), their hooks and background merges have ended by
/// themselves. What is left is killed with the users, and fails the test.
impl Drop for Users {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.remove();
            return;
        }
        let start = Instant::now();
        let mut left = self.tmux_audit_processes();
        while !left.is_empty() && start.elapsed() < PATIENCE {
            std::thread::sleep(Duration::from_millis(20));
            left = self.tmux_audit_processes();
        }
        if !left.is_empty() {
            self.remove();
            panic!("processes of tmux-audit left behind by the test: {left:?}");
        }
        self.remove();
    }
}

impl Users {
    /// Ends the users' processes and deletes the users.
    fn remove(&mut self) {
        for name in std::mem::take(&mut self.0) {
            let _ = Command::new("pkill").args(["-KILL", "-u", &name]).status();
            let _ = Command::new("userdel").args(["-f", &name]).output();
        }
    }
}

/// `runuser -u USER -- env -i VARS… PROGRAM ARGS…`
pub fn as_user(user: &str, vars: &[(String, String)], program: &Path, args: &[&str]) -> Output {
    let vars: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Command::new("runuser")
        .args(["-u", user, "--", "env", "-i"])
        .args(&vars)
        .arg(program)
        .args(args)
        .output()
        .expect("runuser")
}

/// Ends the owner's tmux server on drop.
pub struct KillServer<'a>(pub &'a str, pub String);

impl Drop for KillServer<'_> {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", self.0, "--", "tmux", "-S", &self.1, "kill-server"])
            .output();
    }
}
