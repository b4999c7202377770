//! What a hook adds to every command, side by side, in real shells.
//!
//! Each shell (bash, zsh, fish: those installed) runs in a pane of a
//! private tmux server (`tmux -L <unique> -f /dev/null`) in a throwaway
//! home, in several versions: with no hook; with a hook that only runs
//! `/bin/true` (the floor: one fork and exec per prompt); with tmux-audit's
//! hook; and with atuin's and mcfly's when they are installed. Each round
//! pastes N commands (`true` with a number) at once into every pane in turn and times,
//! whole-process, from the paste until the shell has run the last of them
//! (its last line is a `tmux wait-for -S`). The median round of each,
//! less the median of the shell with no hook, divided by N, is what the
//! hook adds per command; the ratio is to the floor's.
//!
//! Then the start-up cost of loading each hook: an interactive shell (on a
//! pseudo-terminal) that loads it and exits, less one that does not, the
//! two run in turn, median of many runs, in wall and CPU time.
//!
//!     cargo bench --bench hooks                 # 300 commands, 5 rounds
//!     STARTUP_ONLY=1 STARTS=40 cargo bench --bench hooks   # start-up alone
//!     COMMANDS=100 ROUNDS=3 cargo bench --bench hooks
//!     BIN=~/.cargo/bin/tmux-audit cargo bench --bench hooks
//!     CENTRAL_URL=postgresql://… cargo bench --bench hooks   # a central store configured

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::env_or;

/// One version of one shell: what its rc file loads.
struct Variant {
    shell: &'static str,
    name: String,
    /// The lines of the rc file after the prompt is set.
    rc: String,
}

fn main() {
    let commands: usize = env_or("COMMANDS", 300);
    let rounds: usize = env_or("ROUNDS", 5);
    let starts: usize = env_or("STARTS", 40);
    let bin =
        PathBuf::from(std::env::var("BIN").unwrap_or(env!("CARGO_BIN_EXE_tmux-audit").to_string()));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["home", "data", "state", "config", "cache", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    // The history files a user has: mcfly's hooks refuse to load without
    // them (and print why, which a pane's paste hides).
    fs::create_dir_all(root.join("data/fish")).unwrap();
    for file in [
        "home/.bash_history",
        "home/.zsh_history",
        "data/fish/fish_history",
    ] {
        fs::write(root.join(file), "").unwrap();
    }
    let env = environment(root);

    let shells: Vec<&'static str> = ["bash", "zsh", "fish"]
        .into_iter()
        .filter(|s| installed(s))
        .collect();
    let peers: Vec<(&'static str, String)> = ["atuin", "mcfly"]
        .into_iter()
        .filter(|p| installed(p))
        .map(|p| (p, version(p)))
        .collect();
    let variants = variants(&shells, &bin, &peers);

    println!(
        "hooks: {commands} commands pasted at once, median of {rounds} rounds, whole process (tmux {})",
        version("tmux")
    );
    for shell in &shells {
        println!("  {shell}: {}", version(shell));
    }
    for (peer, v) in &peers {
        println!("  {peer}: {v}");
    }

    // STARTUP_ONLY=1: the start-up part alone.
    if std::env::var_os("STARTUP_ONLY").is_none() {
        let socket = format!("ta-bench-{}", std::process::id());
        let tmux = |args: &[&str]| -> String {
            let out = Command::new("tmux")
                .env_clear()
                .envs(env.iter().cloned())
                .current_dir(root)
                .args(["-L", &socket, "-f", "/dev/null"])
                .args(args)
                .output()
                .expect("run tmux");
            assert!(
                out.status.success(),
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim_end().to_string()
        };
        let _server = Server {
            socket: &socket,
            env: &env,
        };

        // One window per variant, each its own pane.
        let mut panes = Vec::new();
        for (i, v) in variants.iter().enumerate() {
            let line = shell_line(root, i, v);
            let verb = if i == 0 { "new-session" } else { "new-window" };
            let mut args = vec![verb, "-d", "-P", "-F", "#{pane_id}"];
            if i == 0 {
                args.extend(["-x", "200", "-y", "50"]);
            }
            args.push(&line);
            let pane = tmux(&args);
            wait_screen(&tmux, &pane, "READY");
            panes.push(pane);
        }

        // The batch: N commands, the last of which signals the channel.
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
        for round in 0..=rounds {
            for (i, pane) in panes.iter().enumerate() {
                let channel = format!("done-{i}-{round}");
                // Each command its own text: a peer that folds repeats
                // (mcfly) still stores them all, and its count says so.
                let mut batch: String = (1..commands)
                    .map(|n| format!("true {i}-{round}-{n}\n"))
                    .collect();
                batch.push_str(&format!("tmux wait-for -S {channel}\n"));
                let file = root.join(format!("batch-{i}-{round}"));
                fs::write(&file, batch).unwrap();
                tmux(&["load-buffer", "-b", "batch", &file.display().to_string()]);
                let mut waiter = Command::new("tmux")
                    .env_clear()
                    .envs(env.iter().cloned())
                    .args(["-L", &socket, "-f", "/dev/null", "wait-for", &channel])
                    .spawn()
                    .unwrap();
                let started = Instant::now();
                tmux(&["paste-buffer", "-d", "-b", "batch", "-t", pane]);
                waiter.wait().unwrap();
                let took = started.elapsed();
                // Round 0 warms the caches (and the peers' databases) up.
                if round > 0 {
                    times[i].push(took);
                }
                tmux(&["send-keys", "-t", pane, "C-l"]);
                tmux(&["clear-history", "-t", pane]);
                // The recorders store what they were sent after the prompt
                // is back: that work must not fall on the next pane's batch.
                settle(root);
            }
        }

        println!();
        println!(
            "{:<6} {:<28} {:>10} {:>14} {:>9}",
            "shell", "hook", "batch", "added/command", "vs floor"
        );
        for shell in &shells {
            let of = |name: &str| {
                let i = variants
                    .iter()
                    .position(|v| v.shell == *shell && v.name == name)?;
                Some(median(&times[i]))
            };
            let none = of("none").unwrap();
            let floor = of("floor").unwrap();
            let added =
                |t: Duration| (t.as_secs_f64() - none.as_secs_f64()) * 1e3 / commands as f64;
            for v in variants.iter().filter(|v| v.shell == *shell) {
                let t = of(&v.name).unwrap();
                let ratio = if v.name == "none" || v.name == "floor" {
                    String::new()
                } else {
                    format!("{:.2}x", added(t) / added(floor))
                };
                println!(
                    "{:<6} {:<28} {:>7.0} ms {:>11.3} ms {:>9}",
                    shell,
                    v.name,
                    t.as_secs_f64() * 1e3,
                    added(t),
                    ratio
                );
            }
        }

        // What each peer stored, per shell: a hook that did not load costs
        // nothing, which would read as a fast one.
        for (i, v) in variants.iter().enumerate() {
            if let Some((peer, _)) = peers.iter().find(|(p, _)| v.name.starts_with(p)) {
                println!(
                    "{peer} ({}): {} of {} pasted `true` commands stored",
                    v.shell,
                    stored(root, peer, &format!("true {i}-")),
                    (rounds + 1) * (commands - 1)
                );
            }
        }

        // The recorders the hooks started, one per bash and zsh: their memory.
        // Resident counts the pages of the executable and libc, shared by
        // every process of tmux-audit; its own (anonymous) memory and its
        // proportional share are what each more shell adds.
        for (pid, shell, [rss, anon, pss]) in recorders(root) {
            println!(
            "recorder {pid} ({shell}): {:.1} MB resident, {:.1} MB its own, {:.1} MB proportional",
            rss as f64 / 1024.0,
            anon as f64 / 1024.0,
            pss as f64 / 1024.0
        );
        }
    }

    println!();
    println!(
        "start-up: an interactive shell that loads the hook and exits, less one that does not \
         (run in turn with it), median of {starts}: wall time, and CPU time of the shell and \
         what it waited for"
    );
    for shell in &shells {
        for v in variants
            .iter()
            .filter(|v| v.shell == *shell && v.name != "none" && v.name != "floor")
        {
            let (wall, cpu) = startup(root, &env, shell, &v.rc, starts);
            println!(
                "{:<6} {:<28} {:>8.2} ms wall {:>8.2} ms CPU",
                shell, v.name, wall, cpu
            );
        }
        // Where tmux-audit's time goes: the faster rc line reading the
        // copy `init` keeps (the shell parsing the script, no process),
        // the binary's own start, and `init` run without its output read.
        let out = Command::new(&bin)
            .args(["init", shell])
            .env_clear()
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(out.status.success(), "init {shell} failed");
        for (name, rc) in startup_parts(shell, &bin) {
            let (wall, cpu) = startup(root, &env, shell, &rc, starts);
            println!(
                "{:<6} {:<28} {:>8.2} ms wall {:>8.2} ms CPU",
                shell, name, wall, cpu
            );
        }
    }
}

/// The rc lines that take tmux-audit's start-up apart, for `shell`.
fn startup_parts(shell: &str, bin: &Path) -> Vec<(&'static str, String)> {
    let bin = bin.display();
    match shell {
        "fish" => vec![
            (
                "tmux-audit, kept copy",
                format!("source (printf '%s\\n' $XDG_CACHE_HOME ~/.cache)[1]/tmux-audit/init.fish 2>/dev/null; or '{bin}' init fish | source"),
            ),
            ("  binary start (--version)", format!("'{bin}' --version >/dev/null")),
            ("  init, output not sourced", format!("'{bin}' init fish | true")),
        ],
        _ => vec![
            (
                "tmux-audit, kept copy",
                format!("source \"${{XDG_CACHE_HOME:-$HOME/.cache}}/tmux-audit/init.{shell}\" 2>/dev/null || eval \"$('{bin}' init {shell})\""),
            ),
            ("  binary start (--version)", format!("'{bin}' --version >/dev/null")),
            ("  init, output not evaluated", format!(": \"$('{bin}' init {shell})\"")),
        ],
    }
}

fn variants(shells: &[&'static str], bin: &Path, peers: &[(&str, String)]) -> Vec<Variant> {
    let bin = bin.display();
    let mut all = Vec::new();
    for &shell in shells {
        let (floor, ours) = match shell {
            "bash" => (
                "__floor() { /bin/true; }\nPROMPT_COMMAND=__floor".to_string(),
                format!("eval \"$('{bin}' init bash)\""),
            ),
            "zsh" => (
                "autoload -Uz add-zsh-hook\n__floor() { /bin/true }\nadd-zsh-hook precmd __floor"
                    .to_string(),
                format!("eval \"$('{bin}' init zsh)\""),
            ),
            _ => (
                "function __floor --on-event fish_postexec; /bin/true; end".to_string(),
                format!("'{bin}' init fish | source"),
            ),
        };
        all.push(Variant {
            shell,
            name: "none".into(),
            rc: String::new(),
        });
        all.push(Variant {
            shell,
            name: "floor".into(),
            rc: floor,
        });
        if shell == "bash" {
            // Debian's and Ubuntu's ~/.bashrc set HISTCONTROL=ignoreboth:
            // the hook then reads each command's history entry back, to
            // drop from the list what bash would have kept out.
            all.push(Variant {
                shell,
                name: "tmux-audit, ignoreboth".into(),
                rc: format!("HISTCONTROL=ignoreboth\n{ours}"),
            });
        }
        all.push(Variant {
            shell,
            name: "tmux-audit".into(),
            rc: ours,
        });
        for (peer, v) in peers {
            // Each peer's line as its README gives it (atuin with no daemon,
            // its default).
            let rc = match shell {
                "fish" => format!("{peer} init fish | source"),
                _ => format!("eval \"$({peer} init {shell})\""),
            };
            all.push(Variant {
                shell,
                name: format!("{peer} {v}"),
                rc,
            });
        }
    }
    all
}

/// The command line that starts `v`'s shell with its rc file.
fn shell_line(root: &Path, i: usize, v: &Variant) -> String {
    match v.shell {
        "bash" => {
            let file = root.join(format!("bashrc{i}"));
            fs::write(&file, format!("PS1='READY$ '\n{}\n", v.rc)).unwrap();
            format!("bash --noprofile --rcfile {} -i", file.display())
        }
        "zsh" => {
            let dir = root.join(format!("zdotdir{i}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(".zshrc"), format!("PS1='READY%# '\n{}\n", v.rc)).unwrap();
            format!("env ZDOTDIR={} zsh -i", dir.display())
        }
        _ => {
            let file = root.join(format!("config{i}.fish"));
            fs::write(
                &file,
                // A history file of its own: fish writes it after each
                // command, and variants sharing one would slow each other.
                format!(
                    "set -g fish_greeting\nset -g fish_history bench{i}\nfunction fish_prompt; printf 'READY> '; end\n{}\n",
                    v.rc
                ),
            )
            .unwrap();
            fs::write(root.join(format!("data/fish/bench{i}_history")), "").unwrap();
            // fish's own configuration (not a user's: the home is empty),
            // as every user has it: without it atuin's hook stores nothing.
            format!("fish -i -C 'source {}'", file.display())
        }
    }
}

/// What loading `rc` adds to an interactive `shell` that starts and exits,
/// in milliseconds: the median wall time and the median CPU time (user and
/// system, of the shell and the processes it waited for), each less the
/// same shell without `rc`, the two run in turn so that a change of load
/// falls on both. The shell reads a terminal of its own, as one in a pane
/// does (`init` starts the recorder only for a shell on a terminal).
fn startup(
    root: &Path,
    env: &[(String, String)],
    shell: &str,
    rc: &str,
    runs: usize,
) -> (f64, f64) {
    let (_master, terminal) = terminal();
    let mut walls = [Vec::with_capacity(runs), Vec::with_capacity(runs)];
    let mut cpus = [Vec::with_capacity(runs), Vec::with_capacity(runs)];
    for round in 0..runs + 3 {
        for (i, rc) in ["", rc].into_iter().enumerate() {
            let script = format!("{rc}\nexit 0\n");
            let mut cmd = match shell {
                "bash" => {
                    let mut c = Command::new("bash");
                    c.args(["--noprofile", "--norc", "-i", "-c", &script]);
                    c
                }
                "zsh" => {
                    let mut c = Command::new("zsh");
                    c.args(["-f", "-i", "-c", &script]);
                    c
                }
                _ => {
                    let mut c = Command::new("fish");
                    c.args(["-i", "-c", &script]);
                    c
                }
            };
            cmd.env_clear()
                .envs(env.iter().cloned())
                .current_dir(root)
                .stdin(terminal.try_clone().unwrap())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let cpu_before = children_cpu();
            let started = Instant::now();
            let status = cmd.status().unwrap();
            let wall = started.elapsed().as_secs_f64() * 1e3;
            let cpu = (children_cpu() - cpu_before) * 1e3;
            assert!(status.success(), "{shell} with {rc:?} failed to start");
            if round >= 3 {
                walls[i].push(wall);
                cpus[i].push(cpu);
            }
        }
    }
    let mid = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [base_wall, wall] = &mut walls;
    let [base_cpu, cpu] = &mut cpus;
    (mid(wall) - mid(base_wall), mid(cpu) - mid(base_cpu))
}

/// CPU time, in seconds, of the children this process has waited for.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A new pseudo-terminal: its master (kept open while the terminal is in
/// use) and its terminal side.
fn terminal() -> (fs::File, fs::File) {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: plain calls on a descriptor of our own; ptsname's buffer is
    // copied before any other call.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master = fs::File::from_raw_fd(master);
        use std::os::fd::AsRawFd;
        assert!(libc::grantpt(master.as_raw_fd()) == 0 && libc::unlockpt(master.as_raw_fd()) == 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(master.as_raw_fd()))
            .to_string_lossy()
            .into_owned();
        let terminal = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(name)
            .unwrap();
        (master, terminal)
    }
}

/// The long-lived recorders started under `root`'s home: pid, shell, and
/// in KiB the resident memory, its anonymous part, and the proportional
/// set size.
fn recorders(root: &Path) -> Vec<(u32, String, [u64; 3])> {
    let home = format!("HOME={}/home", root.display());
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !environ.split(|b| *b == 0).any(|v| v == home.as_bytes())
            || !cmdline.contains(" recorder --serve ")
        {
            continue;
        }
        let status = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let rollup = fs::read_to_string(entry.path().join("smaps_rollup")).unwrap_or_default();
        let kib = |text: &str, key: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        let rss = [
            kib(&status, "VmRSS:"),
            kib(&status, "RssAnon:"),
            kib(&rollup, "Pss:"),
        ];
        let shell = cmdline
            .split_whitespace()
            .skip_while(|w| *w != "--shell")
            .nth(1)
            .unwrap_or("?")
            .to_string();
        found.push((pid, shell, rss));
    }
    found
}

/// Waits until the recorders under `root` have used no CPU time for a
/// few polls in a row: they have stored every frame sent to them.
fn settle(root: &Path) {
    let cpu = || -> Vec<Duration> {
        recorders(root)
            .iter()
            .map(|(pid, _, _)| common::cpu_time(pid))
            .collect()
    };
    let started = Instant::now();
    let mut last = cpu();
    let mut quiet = 0;
    while quiet < 3 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
        let now = cpu();
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn wait_screen(tmux: &impl Fn(&[&str]) -> String, pane: &str, text: &str) {
    let started = Instant::now();
    while !tmux(&["capture-pane", "-p", "-t", pane]).contains(text) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pane {pane} never showed {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn environment(root: &Path) -> Vec<(String, String)> {
    let root = root.display();
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
        ("TERM".into(), "xterm-256color".into()),
    ]
    .into_iter()
    // CENTRAL_URL=…: the same with a central store configured (the hook
    // starts a detached sync at most every 10 s).
    .chain(std::env::var("CENTRAL_URL").map(|url| ("TMUX_AUDIT_CENTRAL_URL".into(), url)))
    .collect()
}

/// How many commands starting with `prefix` `peer` stored in its databases
/// under `root` (atuin's `history` table, mcfly's `commands`).
fn stored(root: &Path, peer: &str, prefix: &str) -> i64 {
    let mut found = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "history.db")
                && path
                    .strip_prefix(root)
                    .is_ok_and(|p| p.to_string_lossy().contains(peer))
                && let Ok(db) = rusqlite::Connection::open(&path)
            {
                for (table, column) in [("history", "command"), ("commands", "cmd")] {
                    let sql =
                        format!("SELECT count(*) FROM {table} WHERE substr({column}, 1, ?1) = ?2");
                    found += db
                        .query_row(&sql, rusqlite::params![prefix.len() as i64, prefix], |r| {
                            r.get::<_, i64>(0)
                        })
                        .unwrap_or(0);
                }
            }
        }
    }
    found
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first line of `program --version`, less the program's name.
fn version(program: &str) -> String {
    let flag = if program == "tmux" { "-V" } else { "--version" };
    let out = Command::new(program).arg(flag).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines().next().unwrap_or("").to_string()
}

/// Kills the private server when the bench ends, whatever happened.
struct Server<'a> {
    socket: &'a str,
    env: &'a [(String, String)],
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .env_clear()
            .envs(self.env.iter().cloned())
            .args(["-L", self.socket, "-f", "/dev/null", "kill-server"])
            .output();
    }
}
