//! `tmux-audit forward` and the background merge: records go to a real
//! rsyslogd (started by the test on a private port, config and files)
//! exactly once across a collector restart, and to journald's native
//! protocol on a datagram socket the test owns.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{have, Sandbox, PATIENCE};
use tmux_audit::record::{CommandRecord, Entry};

const DAY_US: i64 = 86_400 * 1_000_000;

fn run(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String) {
    let out = sb.cmd().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn config(sb: &Sandbox, text: &str) {
    let dir = sb.path().join("config/tmux-audit");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.toml"), text).unwrap();
}

fn record(sb: &Sandbox, seq: u32, text: &[u8], days_ago: i64) {
    let start = tmux_audit::store::now_us() - days_ago * DAY_US;
    let (seq, start, end) = (seq.to_string(), start.to_string(), (start + 1).to_string());
    let out = sb.record(
        text,
        &[
            "--shell",
            "bash",
            "--session",
            "f",
            "--seq",
            &seq,
            "--exit",
            "0",
            "--start-us",
            &start,
            "--end-us",
            &end,
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

/// Whether a tool the test needs is missing where that is allowed: on a
/// developer's machine (not under `CI`), the test says so and skips.
fn missing(tool: &str) -> bool {
    if have(tool) {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is not installed: .ci/run installs it"
    );
    eprintln!("skipped: {tool} is not installed");
    true
}

/// A real rsyslogd of the test's own: TCP input on a loopback port, every
/// message written to a file as `MSGID STRUCTURED-DATA MSG`.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn new(dir: &Path) -> Rsyslog {
        Rsyslog::with_input(dir, "", "")
    }

    /// Its TCP input over TLS (rsyslog's gtls driver, anonymous clients),
    /// with the server certificate `certs` made.
    fn tls(dir: &Path, certs: &Certs) -> Rsyslog {
        Rsyslog::with_input(
            dir,
            &format!(
                " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
                 defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                certs.ca.display(),
                certs.server.display(),
                certs.server_key.display()
            ),
            " streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\"",
        )
    }

    fn with_input(dir: &Path, global: &str, imtcp: &str) -> Rsyslog {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = dir.to_path_buf();
        fs::write(
            dir.join("rsyslog.conf"),
            format!(
                "global(workDirectory=\"{dir}\"{global})\n\
                 module(load=\"imtcp\"{imtcp})\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"line\" type=\"string\" string=\"%msgid% %structured-data% %msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{dir}/received.log\" template=\"line\")\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        Rsyslog {
            dir,
            port,
            child: None,
        }
    }

    fn start(&mut self) {
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < PATIENCE, "rsyslogd never listened");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: a signal to our own child, which has not been reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            child.wait().unwrap();
        }
    }

    fn received(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("received.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `n` messages arrived; all of them.
    fn wait_for(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.received();
            if lines.len() >= n || start.elapsed() > PATIENCE {
                return lines;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A second `forward` finds nothing to send, and the collector got
/// nothing more than `lines`.
fn nothing_more_to_send(sb: &Sandbox, rsyslog: &Rsyslog, lines: &[String]) {
    let (code, out) = run(sb, &["forward"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 records and 0 tmux events sent"), "{out}");
    assert_eq!(rsyslog.received(), lines);
}

/// `lines` hold records 1 to `n`, each exactly once, as RFC 5424 messages
/// with tmux-audit's structured data.
fn each_record_once(lines: &[String], n: usize) {
    assert_eq!(lines.len(), n, "{lines:#?}");
    for id in 1..=n {
        let with_id: Vec<_> = lines
            .iter()
            .filter(|l| l.contains(&format!(" id=\"{id}\" ")))
            .collect();
        assert_eq!(with_id.len(), 1, "record {id}: {lines:#?}");
        assert!(
            with_id[0].starts_with("command [tmux-audit@32473 "),
            "{with_id:?}"
        );
    }
}

/// Forwards at once (the background merges of several shells, and a
/// `tmux-audit forward` by hand) send each record once: one waits for the
/// other, then finds the cursor moved on.
#[test]
fn forwards_at_once_send_each_record_once() {
    if missing("rsyslogd") {
        return;
    }
    let sb = Sandbox::new();
    let mut rsyslog = Rsyslog::new(sb.path());
    rsyslog.start();
    config(
        &sb,
        &format!("[forward]\nsyslog = \"tcp://127.0.0.1:{}\"\n", rsyslog.port),
    );
    let records: Vec<Entry> = (1..=1200)
        .map(|seq| {
            Entry::Command(CommandRecord {
                command: format!("echo {seq}"),
                started_at_us: tmux_audit::store::now_us(),
                shell: "bash".into(),
                shell_session: "f".into(),
                seq,
                ..CommandRecord::default()
            })
        })
        .collect();
    let mut db = tmux_audit::db::Database::open(&sb.db).unwrap();
    db.insert_all(records.iter().map(|e| (e, 1))).unwrap();
    drop(db);
    let outs: Vec<(Option<i32>, String)> = thread::scope(|scope| {
        let forwards: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| run(&sb, &["forward"])))
            .collect();
        forwards.into_iter().map(|f| f.join().unwrap()).collect()
    });
    assert!(outs.iter().all(|(code, _)| *code == Some(0)), "{outs:#?}");
    let lines = rsyslog.wait_for(1200);
    nothing_more_to_send(&sb, &rsyslog, &lines);
    let mut ids: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" id=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((lines.len(), ids.len()), (1200, 1200), "each record once");
}

#[test]
fn every_record_reaches_rsyslog_exactly_once_across_a_restart() {
    if missing("rsyslogd") {
        return;
    }
    let sb = Sandbox::new();
    let mut rsyslog = Rsyslog::new(sb.path());
    rsyslog.start();
    record(&sb, 1, b"echo one", 0);
    record(&sb, 2, b"printf 'a]\"b'\necho two lines", 0);
    record(&sb, 3, b"echo three", 0);
    // Their background merge over before the target is named: else it
    // may forward them first, and `forward` then finds nothing to send.
    sb.wait_until_settled();
    config(
        &sb,
        &format!("[forward]\nsyslog = \"tcp://127.0.0.1:{}\"\n", rsyslog.port),
    );
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 records and 0 tmux events sent"), "{out}");
    assert_eq!(rsyslog.wait_for(3).len(), 3);

    // The collector is down: nothing is lost, the records wait.
    rsyslog.stop();
    for seq in 4..=6 {
        record(&sb, seq, format!("echo {seq}").as_bytes(), 0);
    }
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("did not take the records"), "{out}");

    // Back: the background merge sends what waited, and only that.
    rsyslog.start();
    let (code, out) = run(&sb, &["merge-later", "--after", "0"]);
    assert_eq!(code, Some(0), "{out}");
    let lines = rsyslog.wait_for(6);
    nothing_more_to_send(&sb, &rsyslog, &lines);
    each_record_once(&lines, 6);
    // Structured data escapes what would end it; the text follows.
    assert!(
        lines[1].contains(" seq=\"2\" ") && lines[1].contains("printf 'a]\"b'"),
        "{lines:#?}"
    );
}

/// A certificate authority and a server certificate it signed, for
/// 127.0.0.1 and localhost, made by openssl for the test; and a second
/// authority that signed nothing here.
struct Certs {
    ca: PathBuf,
    stranger_ca: PathBuf,
    server: PathBuf,
    server_key: PathBuf,
}

impl Certs {
    fn new(dir: &Path) -> Certs {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for name in ["ca", "stranger-ca"] {
            let (key, cert, subject) = (
                format!("{name}.key"),
                format!("{name}.pem"),
                format!("/CN=tmux-audit test {name}"),
            );
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &cert]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(&args);
        }
        let mut args = vec!["req", "-subj", "/CN=localhost"];
        args.extend(ec);
        args.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(&args);
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Certs {
            ca: dir.join("ca.pem"),
            stranger_ca: dir.join("stranger-ca.pem"),
            server: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }
}

/// Whether rsyslog's gtls network stream driver is there (Debian's
/// rsyslog-gnutls), wherever the multiarch library directory is.
fn gtls_driver_installed() -> bool {
    fs::read_dir("/usr/lib").is_ok_and(|dirs| {
        dirs.flatten()
            .any(|d| d.path().join("rsyslog/lmnsd_gtls.so").exists())
    }) || Path::new("/usr/lib/rsyslog/lmnsd_gtls.so").exists()
}

/// Over TLS, the collector's certificate is checked: one its root did not
/// sign gets nothing (the records wait); with its root, every record
/// arrives once.
#[test]
fn records_reach_rsyslog_over_tls_only_when_its_certificate_checks_out() {
    if missing("rsyslogd") || missing("openssl") {
        return;
    }
    if !gtls_driver_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "rsyslog's TLS driver is not installed: .ci/run installs rsyslog-gnutls"
        );
        eprintln!("skipped: rsyslog-gnutls is not installed");
        return;
    }
    let sb = Sandbox::new();
    let certs = Certs::new(sb.path());
    let mut rsyslog = Rsyslog::tls(sb.path(), &certs);
    rsyslog.start();
    let tls_config = |ca: &Path| {
        format!(
            "[forward]\nsyslog = \"tls://127.0.0.1:{}\"\ntls_ca = \"{}\"\n",
            rsyslog.port,
            ca.display()
        )
    };
    record(&sb, 1, b"echo one", 0);
    record(&sb, 2, b"echo 'two]\"'", 0);
    // Their background merge over before a target is named: else it may
    // forward them beside (or before) the `forward` below.
    sb.wait_until_settled();

    config(&sb, &tls_config(&certs.stranger_ca));
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("did not take the records") && out.contains("certificate"),
        "{out}"
    );

    config(&sb, &tls_config(&certs.ca));
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 records and 0 tmux events sent"), "{out}");
    let lines = rsyslog.wait_for(2);
    nothing_more_to_send(&sb, &rsyslog, &lines);
    each_record_once(&lines, 2);
    assert!(lines[1].ends_with("echo 'two]\"'"), "{lines:#?}");

    // No root given: a one-line error naming the setting.
    config(
        &sb,
        &format!("[forward]\nsyslog = \"tls://127.0.0.1:{}\"\n", rsyslog.port),
    );
    let (code, out) = run(&sb, &["forward"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("set tls_ca"), "{out}");
}

/// The fields of a journald native-protocol datagram: `KEY=value` lines,
/// and `KEY\n` + 64-bit little-endian length + value + `\n`.
fn journal_fields(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let line_end = data.iter().position(|&b| b == b'\n').unwrap();
        let line = &data[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8(line[..eq].to_vec()).unwrap(),
                line[eq + 1..].to_vec(),
            ));
            data = &data[line_end + 1..];
        } else {
            let name = String::from_utf8(line.to_vec()).unwrap();
            let rest = &data[line_end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.push((name, rest[8..8 + len].to_vec()));
            assert_eq!(rest[8 + len], b'\n');
            data = &rest[9 + len..];
        }
    }
    fields
}

fn field<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

#[test]
fn journald_gets_native_fields_and_long_commands_are_cut_and_said_so() {
    let sb = Sandbox::new();
    let socket_path = sb.path().join("journal.socket");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    config(
        &sb,
        &format!(
            "[forward]\njournald = \"{}\"\nmax_message_bytes = 4096\n",
            socket_path.display()
        ),
    );
    let long = "x".repeat(10_000);
    record(&sb, 1, b"for f in *; do\n  echo \"$f\"\ndone", 0);
    record(&sb, 2, format!("echo {long}").as_bytes(), 0);
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(0), "{out}");
    let mut buf = vec![0u8; 1 << 17];
    let n = socket.recv(&mut buf).unwrap();
    let first = journal_fields(&buf[..n]);
    assert_eq!(
        field(&first, "TMUX_AUDIT_COMMAND"),
        Some(&b"for f in *; do\n  echo \"$f\"\ndone"[..])
    );
    assert_eq!(
        field(&first, "MESSAGE"),
        field(&first, "TMUX_AUDIT_COMMAND")
    );
    assert_eq!(field(&first, "SYSLOG_IDENTIFIER"), Some(&b"tmux-audit"[..]));
    assert_eq!(field(&first, "TMUX_AUDIT_SEQ"), Some(&b"1"[..]));
    let n = socket.recv(&mut buf).unwrap();
    assert!(n <= 4096, "{n} bytes");
    let second = journal_fields(&buf[..n]);
    let text = field(&second, "TMUX_AUDIT_COMMAND").unwrap();
    assert!(
        text.starts_with(b"echo xxx") && text.len() < 2048,
        "{}",
        text.len()
    );
    assert_eq!(field(&second, "TMUX_AUDIT_LENGTH"), Some(&b"10005"[..]));
    assert_eq!(
        field(&second, "TMUX_AUDIT_SHA256").map(<[u8]>::len),
        Some(64)
    );
}

/// One datagram from `socket` and, when it came with one, the fd it
/// carried (SCM_RIGHTS).
fn receive_with_fd(socket: &UnixDatagram, buf: &mut [u8]) -> (usize, Option<OwnedFd>) {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; it then points at live buffers.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: recvmsg fills the buffers the header points at.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
    assert!(n >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: the control buffer was filled by recvmsg; CMSG_FIRSTHDR
    // gives null or a cmsghdr inside it.
    let fd = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (!cmsg.is_null()
            && (*cmsg).cmsg_level == libc::SOL_SOCKET
            && (*cmsg).cmsg_type == libc::SCM_RIGHTS)
            .then(|| {
                OwnedFd::from_raw_fd(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
                ))
            })
    };
    (n as usize, fd)
}

/// A command of a megabyte is past any datagram's limit: it goes whole,
/// in a sealed memfd passed with SCM_RIGHTS, as journald's native
/// protocol specifies; a short one still goes as a datagram.
#[test]
fn a_megabyte_command_reaches_journald_whole_in_a_sealed_memfd() {
    let sb = Sandbox::new();
    let socket_path = sb.path().join("journal.socket");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    config(
        &sb,
        &format!("[forward]\njournald = \"{}\"\n", socket_path.display()),
    );
    let long: Vec<u8> = (0..1 << 20).map(|i| b"abcdefgh\n"[i % 9]).collect();
    record(&sb, 1, &long, 0);
    record(&sb, 2, b"echo short", 0);
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(0), "{out}");

    let mut buf = vec![0u8; 1 << 16];
    let (n, fd) = receive_with_fd(&socket, &mut buf);
    assert_eq!(n, 0, "the datagram that carries a memfd is empty");
    let fd = fd.expect("a memfd passed with SCM_RIGHTS");
    // SAFETY: F_GET_SEALS on an fd we own.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let sealed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals & sealed, sealed, "seals {seals:#x}");
    let mut message = Vec::new();
    let mut memfd = fs::File::from(fd);
    memfd.seek(SeekFrom::Start(0)).unwrap();
    memfd.read_to_end(&mut message).unwrap();
    let fields = journal_fields(&message);
    assert_eq!(field(&fields, "TMUX_AUDIT_COMMAND"), Some(&long[..]));
    assert_eq!(field(&fields, "MESSAGE"), Some(&long[..]));
    assert_eq!(field(&fields, "TMUX_AUDIT_LENGTH"), None, "not cut");

    let (n, fd) = receive_with_fd(&socket, &mut buf);
    assert!(fd.is_none());
    let fields = journal_fields(&buf[..n]);
    assert_eq!(
        field(&fields, "TMUX_AUDIT_COMMAND"),
        Some(&b"echo short"[..])
    );
}

#[test]
fn a_prune_leaves_what_a_forwarding_target_has_not_taken() {
    let sb = Sandbox::new();
    let socket_path = sb.path().join("journal.socket");
    config(
        &sb,
        &format!("[forward]\njournald = \"{}\"\n", socket_path.display()),
    );
    for seq in 1..=3 {
        record(&sb, seq, b"echo old", 400);
    }
    record(&sb, 4, b"echo new", 0);
    // No collector yet: the forward fails, and the prune takes nothing.
    let (code, _) = run(&sb, &["forward"]);
    assert_eq!(code, Some(2));
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("pruned 0 records"), "{out}");
    // And says why.
    assert!(
        out.contains(&format!(
            "note: 3 older rows are kept: forwarding target journald {} not taken them yet",
            socket_path.display()
        )),
        "{out}"
    );
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(0), "{out}");
    drop(socket);
    // Two more as old, and one today, not forwarded yet: they stay.
    record(&sb, 5, b"echo old", 400);
    record(&sb, 6, b"echo old", 400);
    record(&sb, 7, b"echo new", 0);
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("pruned 3 records"), "{out}");
    assert!(out.contains("note: 2 older rows are kept"), "{out}");
    // A target no longer configured holds nothing back.
    config(&sb, "");
    let (code, out) = run(&sb, &["prune", "--older-than", "180d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("pruned 2 records"), "{out}");
    let (code, text) = run(&sb, &["verify"]);
    assert_eq!(code, Some(0), "{text}");
}

/// Two targets that both fail: each is named, not only the last.
#[test]
fn every_failing_target_is_named() {
    let sb = Sandbox::new();
    let socket_path = sb.path().join("no-journal.socket");
    config(
        &sb,
        &format!(
            "[forward]\nsyslog = \"tcp://127.0.0.1:1\"\njournald = \"{}\"\n",
            socket_path.display()
        ),
    );
    record(&sb, 1, b"echo one", 0);
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("error: syslog tcp://127.0.0.1:1 did not take the records")
            && out.contains(&format!(
                "error: journald {} did not take the records",
                socket_path.display()
            )),
        "{out}"
    );
}

/// A `[forward]` value of the wrong type is one line naming the file it
/// is in and the setting.
#[test]
fn a_setting_of_the_wrong_type_is_one_line_naming_its_file() {
    let sb = Sandbox::new();
    config(&sb, "[forward]\nmax_message_bytes = \"big\"\n");
    let (code, out) = run(&sb, &["forward"]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(out.trim_end().lines().count(), 1, "{out}");
    let file = sb.path().join("config/tmux-audit/config.toml");
    assert!(
        out.starts_with(&format!(
            "tmux-audit: error: cannot read {}: ",
            file.display()
        )) && out.contains("`forward.max_message_bytes`")
            && !out.contains("/etc/"),
        "{out}"
    );
}
