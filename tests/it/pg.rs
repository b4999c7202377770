//! A throwaway PostgreSQL cluster for the central-store tests: `initdb`
//! into a temporary directory as a user other than root (`nobody` when the
//! tests run as root, as in CI), `pg_ctl` on a private socket directory
//! and a free loopback port, fsync off. One cluster is shared by the whole
//! test binary (each test makes its own database in it); a guard process
//! stops it and removes its files when the test binary exits, however it
//! exits. A test that stops the server makes a cluster of its own.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub struct Cluster {
    pub dir: PathBuf,
    pub data: PathBuf,
    pub sockets: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// Closing this pipe (on drop, or when the test binary exits) makes
    /// the guard stop the server and remove `dir`.
    guard: Mutex<Option<(ChildStdin, Child)>>,
}

/// The directory of initdb and pg_ctl: Debian keeps them off PATH.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().or_else(|| {
        let out = Command::new("sh")
            .args(["-c", "command -v initdb"])
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        path.parent().map(Path::to_path_buf)
    })
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args…` as the cluster's owner (nobody, when we are root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "nobody", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Cluster {
    /// A new cluster, started; None (with a note) when PostgreSQL is not
    /// installed and CI is unset. Under CI, a missing PostgreSQL fails.
    pub fn start_new() -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL (initdb) is not installed; .ci/run installs it"
            );
            eprintln!("skipped: PostgreSQL (initdb) is not installed");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("ta-pg")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.join("data");
        let sockets = dir.join("sockets");
        for path in [&data, &sockets] {
            fs::create_dir(path).unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
            if is_root() {
                let ok = Command::new("chown")
                    .arg("nobody")
                    .arg(path)
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        }
        let out = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir("/")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The guard: waits for its stdin to close, then stops the server
        // and removes the files.
        let script = format!(
            "cat >/dev/null; {stop} '{pg_ctl}' stop -D '{data}' -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
            stop = if is_root() { "runuser -u nobody --" } else { "" },
            pg_ctl = bin.join("pg_ctl").display(),
            data = data.display(),
            dir = dir.display(),
        );
        let mut guard = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdin = guard.stdin.take().unwrap();
        let cluster = Cluster {
            dir,
            data,
            sockets,
            port: free_port(),
            bin,
            guard: Mutex::new(Some((stdin, guard))),
        };
        cluster.start();
        Some(cluster)
    }

    /// The cluster shared by every test of this run.
    pub fn shared() -> Option<&'static Cluster> {
        static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
        SHARED.get_or_init(Cluster::start_new).as_ref()
    }

    /// Starts the server (again), waiting until it takes connections.
    pub fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.sockets.display()
        );
        let out = as_owner(&self.bin.join("pg_ctl"))
            .arg("start")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.data.join("server.log"))
            .current_dir("/")
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once, waiting until it is down.
    pub fn stop(&self) {
        let out = as_owner(&self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w"])
            .current_dir("/")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The superuser, through the private socket.
    pub fn admin_url(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname} sslmode=disable",
            self.sockets.display(),
            self.port
        )
    }

    /// A role over TCP on loopback (password checked).
    pub fn url(&self, user: &str, dbname: &str) -> String {
        format!(
            "postgresql://{user}@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.port
        )
    }

    /// A login role's own connection over TCP on loopback, with its
    /// password: what a host or an auditor holding those credentials can
    /// do by hand.
    pub fn connect_as(&self, role: &str, password: &str, dbname: &str) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user={role} password={password} dbname={dbname}",
                self.port
            ),
            postgres::NoTls,
        )
        .unwrap()
    }

    pub fn admin(&self, dbname: &str) -> postgres::Client {
        postgres::Client::connect(&self.admin_url(dbname), postgres::NoTls).unwrap()
    }

    /// A new database of its own for one test, its name unique in the run.
    pub fn database(&self, prefix: &str) -> String {
        self.database_with(prefix, "").unwrap()
    }

    /// [`Cluster::database`], made with `options` (`LOCALE_PROVIDER icu …`,
    /// which a server built without ICU refuses).
    pub fn database_with(&self, prefix: &str, options: &str) -> Result<String, postgres::Error> {
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        self.admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name} {options}"))?;
        Ok(name)
    }

    /// A login role with a password, member of `group`.
    pub fn role(&self, name: &str, password: &str, group: &str) {
        self.admin("postgres")
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {group}"
            ))
            .unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((stdin, mut child)) = self.guard.lock().unwrap().take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// `central init` needs one at a time per cluster: the roles are the
/// cluster's, and two CREATE ROLE at once collide.
pub static INIT: Mutex<()> = Mutex::new(());

/// A password file for `url`s of this cluster, 0600.
pub fn pgpass(dir: &Path, lines: &[(&str, &str)], port: u16) -> PathBuf {
    let file = dir.join("pgpass");
    let mut out = fs::File::create(&file).unwrap();
    for (user, password) in lines {
        writeln!(out, "127.0.0.1:{port}:*:{user}:{password}").unwrap();
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    file
}
