//! Test harness: a sandbox directory per test, the built binary, rows read
//! straight from the SQLite file, and a private tmux server per test with
//! bash, zsh or fish panes that have the hook loaded.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tmux_audit::db::{Database, DbError};
use tmux_audit::lifecycle::TmuxEvent;
use tmux_audit::record::CommandRecord;

/// How long to wait for a shell to react before failing. Generous: CI
/// machines are slow; a test that passes never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Every `report --by` grouping, as the command line names them.
pub const REPORT_GROUPINGS: [&str; 9] = [
    "pane",
    "session",
    "window",
    "client-user",
    "user",
    "host",
    "cwd",
    "day",
    "command",
];

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tmux-audit"))
}

/// Waits until `done` holds, failing after the suite's patience.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {:?}",
            PATIENCE
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Copies the binary to `to`, and waits until the copy can be run. While
/// it is written, a process another test forks at that moment holds the
/// written file open until it execs, and running the copy then fails with
/// "text file busy" (ETXTBSY): seen when the tests run four at a time.
pub fn copy_of_the_binary(to: &Path) {
    fs::copy(bin(), to).unwrap();
    let start = Instant::now();
    loop {
        match Command::new(to).arg("--version").output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                assert!(start.elapsed() < PATIENCE, "{} stays busy", to.display());
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot run {}: {e}", to.display()),
            Ok(_) => return,
        }
    }
}

/// `record`'s arguments for command `seq` of bash shell session `s`, exit 0:
/// the usual record of tests that only care about text and order.
pub fn numbered(seq: &str) -> [&str; 8] {
    [
        "--shell",
        "bash",
        "--session",
        "s",
        "--seq",
        seq,
        "--exit",
        "0",
    ]
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The environment every process of a test sees: its own HOME, XDG
/// directories and database, nothing inherited from the developer's shell
/// (no $TMUX, so tests also run inside tmux).
pub struct Sandbox {
    pub dir: TempDir,
    pub db: PathBuf,
    pub state: PathBuf,
    pub bin: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("ta")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        for sub in ["home", "data", "state", "config", "cache", "tmp"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        Sandbox {
            db: root.join("data/tmux-audit/history.db"),
            state: root.join("state/tmux-audit"),
            bin: bin(),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The processes running in this sandbox's environment (its tmux
    /// server, the shells and hooks that runs, background merges…).
    pub fn processes(&self) -> Vec<Process> {
        let bin = fs::canonicalize(&self.bin).unwrap_or(self.bin.clone());
        // A binary removed while it runs shows as "<path> (deleted)".
        let removed = PathBuf::from(format!("{} (deleted)", bin.display()));
        let home = format!("HOME={}/home", self.path().display());
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
                continue;
            };
            let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
            if !environ.split(|b| *b == 0).any(|var| var == home.as_bytes()) {
                continue;
            }
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse().ok())
                .unwrap_or(0);
            found.push(Process {
                pid,
                parent,
                cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
                tmux_audit: fs::read_link(entry.path().join("exe"))
                    .is_ok_and(|exe| exe == bin || exe == removed),
            });
        }
        found
    }

    /// Waits until `done(processes)` holds, at most [`PATIENCE`]; what is
    /// left then.
    fn wait_for_processes(&self, done: impl Fn(&[Process]) -> bool) -> Vec<Process> {
        let start = Instant::now();
        loop {
            let left = self.processes();
            if done(&left) || start.elapsed() > PATIENCE {
                return left;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_file(&self) -> PathBuf {
        self.state.join("tmux-audit.log")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    pub fn env(&self) -> Vec<(String, String)> {
        let root = self.path().display().to_string();
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), format!("{root}/home")),
            ("XDG_DATA_HOME".into(), format!("{root}/data")),
            ("XDG_STATE_HOME".into(), format!("{root}/state")),
            ("XDG_CONFIG_HOME".into(), format!("{root}/config")),
            ("XDG_CACHE_HOME".into(), format!("{root}/cache")),
            ("TMPDIR".into(), format!("{root}/tmp")),
            ("TMUX_TMPDIR".into(), format!("{root}/tmp")),
            ("SHELL".into(), "/bin/sh".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("TERM".into(), "xterm-256color".into()),
        ]
    }

    /// Writes the user's configuration file (`config.toml`) with `text`,
    /// and gives its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let config = self.path().join("config/tmux-audit/config.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(&config, text).unwrap();
        config
    }

    /// The binary, in this sandbox's environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear().envs(self.env()).current_dir(self.path());
        cmd
    }

    /// `record` for a command given on stdin, the way the hooks call it.
    pub fn record(&self, command: &[u8], args: &[&str]) -> Output {
        self.record_with(command, args, &[])
    }

    /// Records `text` as command `seq` of bash shell session `s`, exit 0:
    /// the usual record of tests that only care about text and order.
    pub fn record_numbered(&self, seq: &str, text: &str) -> Output {
        self.record(text.as_bytes(), &numbered(seq))
    }

    /// [`Sandbox::record_numbered`] from inside tmux: `tmux` is the value of
    /// `$TMUX` (socket, server pid, session id), `pane` of `$TMUX_PANE`.
    /// The record must be taken.
    pub fn record_in_pane(&self, seq: &str, text: &str, tmux: &str, pane: &str) {
        let out = self.record_with(
            text.as_bytes(),
            &numbered(seq),
            &[
                ("TMUX", Some(OsStr::new(tmux))),
                ("TMUX_PANE", Some(OsStr::new(pane))),
            ],
        );
        assert!(out.status.success(), "{}", self.log());
    }

    /// [`Sandbox::record`] with more environment variables (a tmux pane,
    /// another database…); `("NAME", None)` removes one.
    pub fn record_with(
        &self,
        command: &[u8],
        args: &[&str],
        env: &[(&str, Option<&OsStr>)],
    ) -> Output {
        let mut cmd = self.cmd();
        for (name, value) in env {
            match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        let mut child = cmd
            .arg("record")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn record");
        let mut stdin = child.stdin.take().unwrap();
        let command = command.to_vec();
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&command);
            let _ = stdin.write_all(b"\n");
        });
        let out = finish_within_patience(child, "record");
        writer.join().unwrap();
        out
    }

    /// Waits until nothing more can reach the database: no process of
    /// tmux-audit runs in this sandbox (records, hooks, background merges)
    /// but the shells' own recorders, idle between commands, and the spool
    /// is empty. What a fixed sleep before "nothing more came"
    /// would only hope for.
    pub fn wait_until_settled(&self) {
        let start = Instant::now();
        loop {
            let running: Vec<Process> = self
                .processes()
                .into_iter()
                .filter(|p| p.tmux_audit && !p.serves_a_shell())
                .collect();
            if running.is_empty() && self.spooled().is_empty() {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "still running: {running:?}; spooled: {:?}",
                self.spooled()
            );
            // A background merge ends once the spool is merged by another.
            self.flush();
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Moves the spool into the database (`tmux-audit flush`), as every
    /// reader of tmux-audit does before it reads; false when it could not
    /// (a read-only database, say).
    pub fn flush(&self) -> bool {
        self.cmd()
            .arg("flush")
            .output()
            .is_ok_and(|out| out.status.success())
    }

    /// The rows of the database at `db` (set with TMUX_AUDIT_DB), its spool
    /// moved in first.
    pub fn rows_of(&self, db: &Path) -> Vec<Row> {
        let _ = self.cmd().env("TMUX_AUDIT_DB", db).arg("flush").output();
        rows_in(db)
    }

    /// Everything waiting in the spools of the sandbox's database: beside
    /// it, and in the fallback spools of the state directory.
    pub fn spooled(&self) -> String {
        self.spooled_for(&self.db)
    }

    /// [`Sandbox::spooled`] for the database at `db`.
    pub fn spooled_for(&self, db: &Path) -> String {
        let mut text = fs::read_to_string(format!("{}-spool", db.display())).unwrap_or_default();
        for entry in fs::read_dir(&self.state).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("spool") {
                text.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }

    /// The rows of the database, the spool moved in first.
    pub fn rows(&self) -> Vec<Row> {
        self.flush();
        rows_in(&self.db)
    }

    /// Waits until `done(rows)` holds; fails with what was seen.
    pub fn wait_rows(&self, what: &str, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        let start = Instant::now();
        loop {
            let rows = self.rows();
            if done(&rows) {
                return rows;
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "timed out waiting for {what}; rows: {:#?}\nlog: {}",
                    rows.iter()
                        .map(|r| (&r.shell, r.seq, &r.command))
                        .collect::<Vec<_>>(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The events of the database, the spool moved in first.
    pub fn events(&self) -> Vec<EventRow> {
        self.flush();
        events_in(&self.db)
    }

    /// Waits until `done(events)` holds; fails with what was seen.
    pub fn wait_events(&self, what: &str, done: impl Fn(&[EventRow]) -> bool) -> Vec<EventRow> {
        let start = Instant::now();
        loop {
            let events = self.events();
            if done(&events) {
                return events;
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "timed out waiting for {what}; events: {:#?}\nlog: {}",
                    events
                        .iter()
                        .map(|e| (&e.event, &e.session_name, &e.pane, &e.client_user))
                        .collect::<Vec<_>>(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the binary in this sandbox; its stdout, and whether it succeeded.
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The rc file that starts `shell` with the hook, `before` and `after`
    /// being the user's own lines around the init line. Returns the command
    /// line that starts the shell.
    pub fn shell(&self, shell: Shell, rc: &Rc) -> String {
        let bin = self.bin.display();
        let init = match shell {
            Shell::Bash => format!("eval \"$('{bin}' init bash)\""),
            Shell::Zsh => format!("eval \"$('{bin}' init zsh)\""),
            Shell::Fish => format!("'{bin}' init fish | source"),
        };
        let init = if rc.cached {
            cached_init_line(shell, &self.bin)
        } else {
            init
        };
        let init = if rc.without_hook {
            String::new()
        } else if rc.init_twice {
            format!("{init}\n{init}")
        } else {
            init
        };
        match shell {
            Shell::Bash => {
                let file = self.path().join(format!("bashrc{}", unique()));
                let text = format!("PS1='READY$ '\n{}\n{init}\n{}\n", rc.before, rc.after);
                fs::write(&file, text).unwrap();
                format!("bash --noprofile --rcfile {} -i", file.display())
            }
            Shell::Zsh => {
                let dir = self.path().join(format!("zdotdir{}", unique()));
                fs::create_dir_all(&dir).unwrap();
                let text = format!("PS1='READY%# '\n{}\n{init}\n{}\n", rc.before, rc.after);
                fs::write(dir.join(".zshrc"), text).unwrap();
                format!("env ZDOTDIR={} zsh -i", dir.display())
            }
            Shell::Fish => {
                let file = self.path().join(format!("config{}.fish", unique()));
                let text = format!(
                    "set -g fish_greeting\nfunction fish_prompt; printf 'READY> '; end\n{}\n{init}\n{}\n",
                    rc.before, rc.after
                );
                fs::write(&file, text).unwrap();
                format!("fish --no-config -i -C 'source {}'", file.display())
            }
        }
    }
}

/// A process of a sandbox (see [`Sandbox::processes`]).
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: libc::pid_t,
    pub parent: libc::pid_t,
    pub cmdline: String,
    /// The tmux-audit under test.
    pub tmux_audit: bool,
}

impl Process {
    /// A background merge, which waits for its database's directory to go.
    fn merges_later(&self) -> bool {
        self.tmux_audit && self.cmdline.contains(" merge-later ")
    }

    /// The recorder a shell's hook started, which lives as long as the
    /// shell (and has nothing to do between commands).
    pub fn serves_a_shell(&self) -> bool {
        self.tmux_audit && self.cmdline.contains(" recorder --serve ")
    }

    fn kill(&self) {
        // SAFETY: plain kill(2) of a process this test started.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

/// A test leaves no process behind. First everything it started ends (its
/// tmux server, the shells and the hooks that server ran, which may still
/// store events), but background merges; then the sandbox's directory
/// goes, and the background merges, finding their database's directory
/// gone, end by themselves within a second or so. A process of tmux-audit
/// that does not is killed, and the test fails.
impl Drop for Sandbox {
    fn drop(&mut self) {
        let left = self.wait_for_processes(|left| left.iter().all(Process::merges_later));
        left.iter()
            .filter(|p| !p.merges_later())
            .for_each(Process::kill);
        let _ = fs::remove_dir_all(self.path());
        let left = self.wait_for_processes(|left| left.is_empty());
        left.iter().for_each(Process::kill);
        let stuck: Vec<&Process> = left.iter().filter(|p| p.tmux_audit).collect();
        if !stuck.is_empty() && !thread::panicking() {
            panic!("processes of tmux-audit left behind by the test: {stuck:?}");
        }
    }
}

/// The user's own rc lines around the hook's init line.
#[derive(Default, Clone)]
pub struct Rc {
    pub before: String,
    pub after: String,
    pub init_twice: bool,
    /// The same rc file without the init line: the shell as it is without
    /// tmux-audit, to compare with.
    pub without_hook: bool,
    /// The faster init line of the README, which sources the copy of the
    /// hook `init` keeps in the cache directory and runs `init` when it is
    /// missing or stale.
    pub cached: bool,
}

/// The README's faster init line for `shell`, with the binary `bin`.
pub fn cached_init_line(shell: Shell, bin: &Path) -> String {
    let bin = bin.display();
    match shell {
        Shell::Bash | Shell::Zsh => {
            let name = shell.name();
            format!(
                "source \"${{XDG_CACHE_HOME:-$HOME/.cache}}/tmux-audit/init.{name}\" 2>/dev/null || eval \"$('{bin}' init {name})\""
            )
        }
        Shell::Fish => format!(
            "if status is-interactive; source (printf '%s\\n' $XDG_CACHE_HOME ~/.cache)[1]/tmux-audit/init.fish 2>/dev/null; or '{bin}' init fish | source; end"
        ),
    }
}

impl Rc {
    pub fn before(mut self, lines: &str) -> Rc {
        self.before = lines.to_string();
        self
    }
    pub fn after(mut self, lines: &str) -> Rc {
        self.after = lines.to_string();
        self
    }
    pub fn init_twice(mut self) -> Rc {
        self.init_twice = true;
        self
    }
    pub fn cached(mut self) -> Rc {
        self.cached = true;
        self
    }
    pub fn without_hook(mut self) -> Rc {
        self.without_hook = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    /// The shell's way to write `$?` and the pipe statuses to a file.
    pub fn status_line(self, file: &Path) -> String {
        match self {
            Shell::Bash => format!("echo \"$? ${{PIPESTATUS[*]}}\" > {}", file.display()),
            Shell::Zsh => format!("echo \"$? ${{pipestatus[*]}}\" > {}", file.display()),
            Shell::Fish => format!("echo \"$status $pipestatus\" > {}", file.display()),
        }
    }
}

fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Starts `record` for command `seq` of shell session `session`, with the
/// text already on its stdin; for tests that run many writers at once (the
/// arguments are owned, so a thread can take them).
pub fn start_record(
    bin: &Path,
    env: &[(String, String)],
    session: &str,
    seq: usize,
    text: &str,
) -> std::process::Child {
    let mut child = Command::new(bin)
        .args(["record", "--shell", "bash", "--session", session])
        .args(["--seq", &seq.to_string(), "--exit", "0"])
        .env_clear()
        .envs(env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn record");
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{text}\n").as_bytes());
    child
}

/// The output of `child` (its stdin already taken), which must end within
/// [`PATIENCE`]: a process that hangs (on a lock, a FIFO) fails the test,
/// named `what`, instead of hanging the suite. Killed then.
pub fn finish_within_patience(mut child: std::process::Child, what: &str) -> Output {
    use std::io::Read;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {PATIENCE:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A stored command, read through the library's own reading
/// ([`Database::commands_in_order`]): its fields are those of
/// [`CommandRecord`] (`row.command`, `row.seq`…), so a field the library
/// adds is there without an edit here. `verify::the_stored_format_is_as_documented`
/// checks the columns themselves with raw SQL.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub record: CommandRecord,
}

impl std::ops::Deref for Row {
    type Target = CommandRecord;
    fn deref(&self) -> &CommandRecord {
        &self.record
    }
}

/// Opens the database at `db` read-only, as it is, or None when there is
/// nothing to read yet (no file, or its schema not made yet).
fn read_only(db: &Path) -> Option<Database> {
    if !db.exists() {
        return None;
    }
    Some(Database::open_read_only(db, Duration::from_secs(5)).expect("open db"))
}

/// Whether `err` says the schema is not there yet (a database being made).
fn no_schema_yet(err: &DbError) -> bool {
    err.to_string().contains("no such table")
}

/// The commands, in the order they were stored.
pub fn rows_in(db: &Path) -> Vec<Row> {
    let Some(db) = read_only(db) else {
        return Vec::new();
    };
    match db.commands_in_order() {
        Ok(rows) => rows
            .into_iter()
            .map(|r| Row {
                id: r.id,
                record: r.record,
            })
            .collect(),
        Err(err) if no_schema_yet(&err) => Vec::new(),
        Err(err) => panic!("cannot read the commands: {err}"),
    }
}

/// A stored tmux event, read through the library's own reading
/// ([`Database::tmux_events`]): the fields of [`TmuxEvent`] (`e.event`,
/// `e.pane`…), and its client's spelled out, as most tests look at them.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub stored: TmuxEvent,
    pub client_name: Option<String>,
    pub client_user: Option<String>,
    pub client_uid: Option<i64>,
    pub client_termname: Option<String>,
}

impl std::ops::Deref for EventRow {
    type Target = TmuxEvent;
    fn deref(&self) -> &TmuxEvent {
        &self.stored
    }
}

/// The events, in time order.
pub fn events_in(db: &Path) -> Vec<EventRow> {
    let Some(db) = read_only(db) else {
        return Vec::new();
    };
    match db.tmux_events(None) {
        Ok(events) => events
            .into_iter()
            .map(|e| {
                let client = e.event.client.clone().unwrap_or_default();
                let known = e.event.client.is_some();
                EventRow {
                    id: e.id,
                    client_name: known.then_some(client.name),
                    client_user: client.user,
                    client_uid: client.uid,
                    client_termname: client.termname,
                    stored: e.event,
                }
            })
            .collect(),
        Err(err) if no_schema_yet(&err) => Vec::new(),
        Err(err) => panic!("cannot read the tmux events: {err}"),
    }
}

/// A private tmux server (`tmux -L <unique> -f /dev/null`), killed on drop.
pub struct Tmux {
    socket_name: String,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    pid: libc::pid_t,
}

impl Tmux {
    /// Starts the server with one window running `command`; returns the
    /// server and that pane.
    pub fn start(sandbox: &Sandbox, command: &str) -> (Tmux, Pane) {
        let mut tmux = Tmux {
            socket_name: format!("ta-{}-{}", std::process::id(), unique()),
            env: sandbox.env(),
            cwd: sandbox.path().to_path_buf(),
            pid: 0,
        };
        let id = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            "-P",
            "-F",
            "#{pane_id}",
            command,
        ]);
        tmux.pid = tmux.server_pid() as libc::pid_t;
        let pane = Pane {
            tmux: tmux.handle(),
            id,
        };
        (tmux, pane)
    }

    fn handle(&self) -> TmuxHandle {
        TmuxHandle {
            socket_name: self.socket_name.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
        }
    }

    /// A new pane (a split of the current window) running `command`.
    pub fn split(&self, command: &str) -> Pane {
        let id = self.run(&["split-window", "-d", "-P", "-F", "#{pane_id}", command]);
        self.run(&["select-layout", "tiled"]);
        Pane {
            tmux: self.handle(),
            id,
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        self.handle().run(args)
    }

    /// Loads the documented line of ~/.tmux.conf,
    /// `run-shell 'tmux-audit init tmux'`, from a config file.
    pub fn load_audit_config(&self, sandbox: &Sandbox) {
        let conf = sandbox.path().join(format!("tmux{}.conf", unique()));
        fs::write(
            &conf,
            format!("run-shell '{} init tmux'\n", sandbox.bin.display()),
        )
        .unwrap();
        self.run(&["source-file", &conf.display().to_string()]);
    }

    /// Waits until what tmux did so far has reached the database, as far as
    /// can be told: a marker event (the first session renamed), which tmux
    /// reports after everything before it, has been stored. (Better than a
    /// fixed sleep: it waits as long as the machine needs.)
    pub fn settle_events(&self, sandbox: &Sandbox) {
        let marker = format!("settled-{}", unique());
        self.run(&["rename-session", "-t", "$0", &marker]);
        sandbox.wait_events("the marker event", |e| {
            e.iter()
                .any(|e| e.event == "session-renamed" && e.session_name.as_deref() == Some(&marker))
        });
    }

    /// The name given to `tmux -L`.
    pub fn socket_name(&self) -> &str {
        &self.socket_name
    }

    /// `$TMUX` as the panes see it.
    pub fn socket_path(&self) -> String {
        self.run(&["display-message", "-p", "#{socket_path}"])
    }

    pub fn server_pid(&self) -> i64 {
        self.run(&["display-message", "-p", "#{pid}"])
            .parse()
            .unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let killed = self.handle().command(&["kill-server"]).output();
        if !killed.is_ok_and(|out| out.status.success()) && self.pid > 0 {
            // The socket is gone (say, with its directory): end it by pid.
            // SAFETY: plain kill(2) of the server this test started.
            unsafe { libc::kill(self.pid, libc::SIGTERM) };
        }
    }
}

#[derive(Clone)]
struct TmuxHandle {
    socket_name: String,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

impl TmuxHandle {
    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.env_clear()
            .envs(self.env.clone())
            .current_dir(&self.cwd)
            .args(["-L", &self.socket_name, "-f", "/dev/null"])
            .args(args);
        cmd
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.command(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {:?} failed: {}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

/// A tmux pane: type into it, read its screen.
pub struct Pane {
    tmux: TmuxHandle,
    pub id: String,
}

impl Pane {
    /// Types `line` and presses Enter.
    pub fn line(&self, line: &str) {
        self.type_text(line);
        self.key("Enter");
    }

    /// Types `text`, without pressing Enter.
    pub fn type_text(&self, text: &str) {
        self.tmux
            .run(&["send-keys", "-t", &self.id, "-l", "--", text]);
    }

    /// Presses a key by tmux's name for it: `Enter`, `C-c`.
    pub fn key(&self, key: &str) {
        self.tmux.run(&["send-keys", "-t", &self.id, key]);
    }

    /// Pastes `text` as one bracketed paste, as a terminal would.
    pub fn paste(&self, text: &str) {
        let buffer = format!("b{}", unique());
        let file = self.tmux.cwd.join(format!("paste{}", unique()));
        fs::write(&file, text).unwrap();
        let file = file.display().to_string();
        self.tmux.run(&["load-buffer", "-b", &buffer, &file]);
        self.tmux.run(&[
            "paste-buffer",
            "-p",
            "-r",
            "-d",
            "-b",
            &buffer,
            "-t",
            &self.id,
        ]);
    }

    pub fn screen(&self) -> String {
        self.tmux
            .run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", &self.id])
    }

    /// Waits until the screen shows `text` `count` times.
    pub fn wait_for(&self, text: &str, count: usize) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= count {
                return;
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "pane {} never showed {text:?} {count} times; screen:\n{screen}",
                    self.id
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the pane's foreground process is `command`.
    pub fn wait_until_running(&self, command: &str) {
        let start = Instant::now();
        while self.tmux.run(&[
            "display-message",
            "-p",
            "-t",
            &self.id,
            "#{pane_current_command}",
        ]) != command
        {
            assert!(
                start.elapsed() < PATIENCE,
                "pane {} never ran {command}",
                self.id
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the first prompt of the shell started in this pane.
    pub fn ready(&self) -> &Pane {
        self.wait_for("READY", 1);
        self
    }
}

/// A directory that can be made read-only for everyone, root included: a
/// small tmpfs remounted read-only when running as root (as CI does), else
/// a directory whose write permission is taken away.
pub struct ProtectedDir {
    pub path: PathBuf,
    mounted: bool,
}

impl ProtectedDir {
    pub fn new(path: &Path) -> ProtectedDir {
        fs::create_dir_all(path).unwrap();
        // SAFETY: no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let ok = Command::new("mount")
                // Private, as tmux-audit wants a database's directory
                // (a tmpfs is 1777 by default).
                .args(["-t", "tmpfs", "-o", "size=8m,mode=0700", "tmux-audit-test"])
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "as root, this test needs `mount -t tmpfs`");
        }
        ProtectedDir {
            path: path.to_path_buf(),
            mounted: root,
        }
    }

    pub fn read_only(&self, read_only: bool) {
        use std::os::unix::fs::PermissionsExt;
        if self.mounted {
            let option = if read_only {
                "remount,ro"
            } else {
                "remount,rw"
            };
            // A process that still has a file open for writing (a record
            // finishing) makes the remount fail for a moment: try again.
            let deadline = Instant::now() + PATIENCE;
            while !Command::new("mount")
                .args(["-o", option])
                .arg(&self.path)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                assert!(
                    Instant::now() < deadline,
                    "mount -o {option} {}",
                    self.path.display()
                );
                thread::sleep(Duration::from_millis(50));
            }
        } else {
            let (dir, file) = if read_only {
                (0o555, 0o444)
            } else {
                (0o755, 0o644)
            };
            for entry in fs::read_dir(&self.path).unwrap() {
                let _ =
                    fs::set_permissions(entry.unwrap().path(), fs::Permissions::from_mode(file));
            }
            fs::set_permissions(&self.path, fs::Permissions::from_mode(dir)).unwrap();
        }
    }
}

impl Drop for ProtectedDir {
    fn drop(&mut self) {
        if self.mounted {
            // A process ending (a capture of a tmux server just killed)
            // may still hold a file there: detached all the same (-l).
            let unmounted = Command::new("umount")
                .arg(&self.path)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                let _ = Command::new("umount").arg("-l").arg(&self.path).status();
            }
        } else {
            self.read_only(false);
        }
    }
}
