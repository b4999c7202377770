//! Real Unix users for the tests of what one user can do to another's
//! records (shared tmux sessions, hostile guests). Making them needs root;
//! elsewhere such tests say they are skipped and why, unless
//! TMUX_AUDIT_REQUIRE_USER_TESTS=1 (as in CI) makes that a failure.

use std::path::Path;
use std::process::{Command, Output};

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

impl Drop for Users {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("pkill").args(["-KILL", "-u", name]).status();
            let _ = Command::new("userdel").args(["-f", name]).output();
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
