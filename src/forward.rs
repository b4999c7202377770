//! Forwarding records and tmux events to syslog (RFC 5424) and journald
//! (its native protocol), off the prompt's path: `tmux-audit forward`, and
//! the background merge after each merge. Each target has a cursor in the
//! database (the last command and event id it took), advanced only once a
//! batch is delivered, so a collector outage loses nothing: the next run
//! sends what waited.
//!
//! Transports and what "delivered" means:
//! - `unix:PATH` (syslog, e.g. `/dev/log`) and journald's socket: one
//!   datagram per message; the kernel accepted it into the receiver's
//!   socket.
//! - `udp://HOST:PORT`: one datagram per message; sent (UDP cannot tell
//!   more: a collector that is down loses them). Use TCP where it matters.
//! - `tcp://HOST:PORT`: RFC 6587 octet-counting framing (`LEN SP MSG`) on
//!   one connection per batch. Syslog over TCP has no acknowledgement of
//!   its own, so the batch counts as delivered only when all of these
//!   hold: the collector's TCP acknowledged every byte, it had not closed
//!   its end before ours, it closed its end after ours with no reset (a
//!   peer that closes with unread data resets the connection), and it
//!   sent nothing back (a syslog collector says nothing; an HTTP server or
//!   a proxy's error page does). A collector that dies mid-batch gets the
//!   batch again (a message may then arrive twice, never not at all).
//!   Not provable: a peer that reads part, half-closes, and resets only
//!   after we are gone; RELP would be needed for that.
//! - `tls://HOST:PORT`: the same over TLS (RFC 5425), the collector's
//!   certificate checked against the root in `tls_ca` (chain and host
//!   name; no root given, no connection), a client certificate
//!   (`tls_cert`, `tls_key`) shown when the collector asks. The TLS
//!   settings are the central store's (`tls.rs`).
//!
//! Long commands: a syslog message is at most `max_message_bytes`
//! (default 8 KiB, rsyslog's default limit; 2 KiB for UDP, as RFC 5426
//! advises). A longer command is cut at a UTF-8 boundary and the message
//! says so: syslog's structured data and journald's fields carry `length`
//! (the whole command's bytes) and `sha256` (of the whole), so the full
//! text can be matched in the database. journald takes a record whole by
//! default (a record keeps at most 2 MiB of a command): a message over the
//! datagram limit goes, as journald's native protocol specifies, in a
//! sealed memfd passed with SCM_RIGHTS in an empty datagram.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use sha2::{Digest, Sha256};

use crate::config::Forward as ForwardConfig;
use crate::db::{Database, DbError, ForwardItem};
use crate::text::hex;
use crate::tls::{self, Check};

/// How long a collector may take to accept a connection, and to read a
/// batch and close its end.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The least `max_message_bytes`: what RFC 5424 (6.1) says every receiver
/// takes, and room for the header and structured data of a usual record.
pub const MIN_MESSAGE_BYTES: usize = 480;

/// Rows sent per batch (and cursor update).
pub const BATCH: i64 = 500;

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    SyslogUnix(PathBuf),
    SyslogUdp(String),
    SyslogTcp(String),
    SyslogTls {
        addr: String,
        /// The root certificate the collector's must lead to (PEM).
        ca: PathBuf,
        /// The client's certificate and key files (PEM), when it has one.
        identity: Option<(PathBuf, PathBuf)>,
    },
    Journald(PathBuf),
}

impl Target {
    /// The name its cursor is kept under.
    pub fn key(&self) -> String {
        match self {
            Target::SyslogUnix(p) => format!("syslog unix:{}", p.display()),
            Target::SyslogUdp(a) => format!("syslog udp://{a}"),
            Target::SyslogTcp(a) => format!("syslog tcp://{a}"),
            Target::SyslogTls { addr, .. } => format!("syslog tls://{addr}"),
            Target::Journald(p) => format!("journald {}", p.display()),
        }
    }

    fn default_max(&self) -> usize {
        match self {
            Target::SyslogUdp(_) => 2048,
            // Never cut what a record holds (2 MiB of a command, in two
            // fields); past the datagram limit a memfd carries it.
            Target::Journald(_) => 8 << 20,
            _ => 8192,
        }
    }
}

/// The targets `[forward]` names; a one-line error for one it cannot read.
pub fn targets(config: &ForwardConfig) -> Result<Vec<Target>, String> {
    let mut found = Vec::new();
    if let Some(syslog) = &config.syslog {
        found.push(if let Some(path) = syslog.strip_prefix("unix:") {
            Target::SyslogUnix(PathBuf::from(path))
        } else if let Some(addr) = syslog.strip_prefix("udp://") {
            Target::SyslogUdp(addr.to_string())
        } else if let Some(addr) = syslog.strip_prefix("tcp://") {
            Target::SyslogTcp(addr.to_string())
        } else if let Some(addr) = syslog.strip_prefix("tls://") {
            let ca = config.tls_ca.as_ref().ok_or_else(|| {
                format!(
                    "[forward] syslog = {syslog:?} needs the collector's root certificate: set tls_ca = \"/path/to/ca.pem\" under [forward]"
                )
            })?;
            let identity = match (&config.tls_cert, &config.tls_key) {
                (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
                (None, None) => None,
                _ => {
                    return Err(
                        "[forward] tls_cert and tls_key go together: set both, or neither".into(),
                    );
                }
            };
            Target::SyslogTls {
                addr: addr.to_string(),
                ca: PathBuf::from(ca),
                identity,
            }
        } else {
            return Err(format!(
                "[forward] syslog = {syslog:?} is not unix:/dev/log, udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT"
            ));
        });
    }
    if let Some(path) = &config.journald {
        found.push(Target::Journald(PathBuf::from(path)));
    }
    if let Some(max) = config.max_message_bytes
        && max < MIN_MESSAGE_BYTES
    {
        return Err(format!(
            "[forward] max_message_bytes = {max} leaves no room for a message's header and structured data: give at least {MIN_MESSAGE_BYTES} (RFC 5424's least; default 8192)"
        ));
    }
    Ok(found)
}

/// What one run sent to one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub target: String,
    pub commands: u64,
    pub tmux_events: u64,
}

/// Why a target took nothing more.
#[derive(Debug)]
pub enum ForwardError {
    /// The collector cannot be reached or did not take the batch: what
    /// waits is sent by the next run.
    Unreachable {
        target: String,
        why: String,
    },
    /// The target's settings cannot be used (a certificate file): nothing
    /// is sent until they are fixed.
    Settings {
        target: String,
        why: String,
    },
    Db(DbError),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::Unreachable { target, why } => write!(
                f,
                "{target} did not take the records ({why}): they wait, and go with the next `tmux-audit forward` or background merge"
            ),
            ForwardError::Settings { target, why } => write!(
                f,
                "{target}: {why}; fix [forward] in config.toml (the records wait)"
            ),
            ForwardError::Db(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ForwardError {}

impl From<DbError> for ForwardError {
    fn from(err: DbError) -> Self {
        ForwardError::Db(err)
    }
}

/// Holds forwarding from the database at `db` for this process, waiting
/// while another holds it (a `tmux-audit forward` by hand, the background
/// merges of several shells): two at once both read a cursor before
/// either moved it, and sent the same records (each of 1,200 four times,
/// with four at once). The one that waited finds the cursors moved on.
/// Held until the file is dropped.
pub fn lock(db: &Path) -> std::io::Result<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push("-forward.lock");
    let file = crate::private_files::append(Path::new(&name))?;
    file.lock()?;
    Ok(file)
}

/// Sends to `target` everything after its cursor, batch by batch.
pub fn forward(
    db: &mut Database,
    target: &Target,
    max_bytes: Option<usize>,
) -> Result<Sent, ForwardError> {
    let key = target.key();
    let max = max_bytes.unwrap_or(target.default_max());
    let mut sent = Sent {
        target: key.clone(),
        ..Sent::default()
    };
    let tls = match target {
        Target::SyslogTls { ca, identity, .. } => {
            let identity = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            let config = tls::client_config(Check::Full, Some(ca), identity).map_err(|why| {
                ForwardError::Settings {
                    target: key.clone(),
                    why,
                }
            })?;
            Some(Arc::new(config))
        }
        _ => None,
    };
    loop {
        let (commands_up_to, events_up_to) = db.forward_cursor(&key)?;
        let batch = db.forward_batch(commands_up_to, events_up_to, BATCH)?;
        if batch.is_empty() {
            return Ok(sent);
        }
        let messages: Vec<Vec<u8>> = batch
            .iter()
            .map(|item| match target {
                Target::Journald(_) => journald_message(item, max),
                _ => syslog_message(item, max),
            })
            .collect();
        deliver(target, tls.as_ref(), &messages).map_err(|why| ForwardError::Unreachable {
            target: key.clone(),
            why: why.to_string(),
        })?;
        let mut cursor = (commands_up_to, events_up_to);
        for item in &batch {
            match item {
                ForwardItem::Command { row, .. } => {
                    cursor.0 = cursor.0.max(row.id);
                    sent.commands += 1;
                }
                ForwardItem::TmuxEvent { id, .. } => {
                    cursor.1 = cursor.1.max(*id);
                    sent.tmux_events += 1;
                }
            }
        }
        db.set_forward_cursor(&key, cursor)?;
    }
}

fn deliver(
    target: &Target,
    tls: Option<&Arc<ClientConfig>>,
    messages: &[Vec<u8>],
) -> std::io::Result<()> {
    match target {
        Target::SyslogUnix(path) => {
            let socket = UnixDatagram::unbound()?;
            for message in messages {
                socket.send_to(message, path)?;
            }
            Ok(())
        }
        Target::Journald(path) => {
            let socket = UnixDatagram::unbound()?;
            socket.connect(path)?;
            for message in messages {
                match socket.send(message) {
                    Err(err)
                        if matches!(err.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) =>
                    {
                        send_in_memfd(&socket, message)?
                    }
                    other => {
                        other?;
                    }
                }
            }
            Ok(())
        }
        Target::SyslogUdp(addr) => {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.connect(addr)?;
            for message in messages {
                socket.send(message)?;
            }
            Ok(())
        }
        Target::SyslogTcp(addr) => {
            let mut stream = connect(addr)?;
            stream.write_all(&octet_counted(messages))?;
            until_taken(&stream)?;
            stream.shutdown(std::net::Shutdown::Write)?;
            // The collector closes its end once it has read ours to the end.
            until_closed(&mut stream)
        }
        Target::SyslogTls { addr, .. } => {
            let config = tls.ok_or_else(|| std::io::Error::other("no TLS settings"))?;
            let host = match addr.rsplit_once(':') {
                Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
                None => addr.as_str(),
            };
            let name = ServerName::try_from(host.to_string())
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
            let connection = rustls::ClientConnection::new(config.clone(), name)
                .map_err(std::io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(connection, connect(addr)?);
            // The handshake (and the certificate check) happens here.
            stream.write_all(&octet_counted(messages))?;
            stream.flush()?;
            until_taken(&stream.sock)?;
            stream.conn.send_close_notify();
            stream.flush()?;
            stream.sock.shutdown(std::net::Shutdown::Write)?;
            match until_closed(&mut stream) {
                // A collector may close without TLS's own goodbye: what
                // counts is that it read ours to the end and closed.
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
                other => other,
            }
        }
    }
}

/// journald's way for a message over the datagram limit: the message in a
/// memfd, sealed so that it cannot change once journald reads it, the fd
/// passed with SCM_RIGHTS in an empty datagram on the connected `socket`.
fn send_in_memfd(socket: &UnixDatagram, message: &[u8]) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    // SAFETY: memfd_create takes a NUL-terminated name and flags, and
    // returns a new fd or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"tmux-audit-journal".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just made and is owned by nothing else.
    let memfd = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    (&memfd).write_all(message)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on an fd we own, with seal flags.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let raw = memfd.as_raw_fd();
    // SAFETY: CMSG_SPACE is arithmetic on a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    // u64s, for the alignment a cmsghdr needs.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid (no name, no data).
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = space as _;
    // SAFETY: the control buffer is CMSG_SPACE(int) bytes, room for one
    // cmsghdr carrying one fd; CMSG_FIRSTHDR points into it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), raw);
    }
    // SAFETY: the socket is ours and connected; the header points at
    // buffers that live until sendmsg returns.
    if unsafe { libc::sendmsg(socket.as_raw_fd(), &header, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // journald holds its own copy of the fd now; ours closes here.
    drop(memfd);
    Ok(())
}

/// A TCP connection to `addr`, with the timeouts a batch may take.
fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host")
    })?;
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_write_timeout(Some(CLOSE_TIMEOUT))?;
    stream.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    Ok(stream)
}

/// RFC 6587 octet-counting framing: `LEN SP MSG`, one after another.
fn octet_counted(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut framed = Vec::new();
    for message in messages {
        framed.extend_from_slice(format!("{} ", message.len()).as_bytes());
        framed.extend_from_slice(message);
    }
    framed
}

/// Waits until the collector's TCP has acknowledged every byte we wrote
/// (the kernel's send queue is empty) and checks that it has neither
/// reset the connection nor closed its end first. A peer that closed
/// before our data came (a wrong port, a proxy whose backend is down)
/// answers the data with a reset; one that stops before our end of the
/// stream cannot have read to it. A syslog collector closes only after
/// reading our end.
fn until_taken(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let started = std::time::Instant::now();
    loop {
        if let Some(err) = stream.take_error()? {
            return Err(err);
        }
        let mut unacknowledged: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) on a TCP socket we own writes one int.
        if unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut unacknowledged) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if unacknowledged == 0 {
            break;
        }
        if started.elapsed() > CLOSE_TIMEOUT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the collector did not take the batch in time",
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Some(err) = stream.take_error()? {
        return Err(err);
    }
    let mut peek = [0u8; 1];
    // SAFETY: recv into a one-byte buffer we own, without waiting.
    let got = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            peek.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match got {
        0 => Err(closed_early()),
        n if n < 0 => {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                Ok(())
            } else {
                Err(err)
            }
        }
        // Bytes from the peer: TLS records are expected, plain syslog
        // collectors say nothing (`until_closed` refuses what it says).
        _ => Ok(()),
    }
}

fn closed_early() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "the peer closed before reading to the end: not a syslog collector, or it dropped the batch",
    )
}

/// Waits until the collector closes its end, after ours. A syslog
/// collector sends nothing back (RFC 6587, RFC 5425): a peer that answers
/// (an HTTP server, a proxy's error page) did not take the records.
fn until_closed(stream: &mut impl Read) -> std::io::Result<()> {
    let mut answer = [0u8; 64];
    let got = stream.read(&mut answer)?;
    if got == 0 {
        return Ok(());
    }
    let said: String = String::from_utf8_lossy(&answer[..got])
        .chars()
        .take_while(|c| *c != '\r' && *c != '\n')
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the peer answered {said:?}: a syslog collector says nothing, so this is not one"),
    ))
}

/// The text of an entry and, when cut to `max` bytes, the whole one's
/// length and SHA-256.
fn cut(text: &[u8], max: usize) -> (&[u8], Option<(usize, String)>) {
    if text.len() <= max {
        return (text, None);
    }
    let mut end = max;
    // At a UTF-8 boundary.
    while end > 0 && (text[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    let digest = hex(&Sha256::digest(text));
    (&text[..end], Some((text.len(), digest)))
}

/// The most bytes each value may keep for values of `lengths` to fit in
/// `room`: values shorter than an equal share keep all of theirs (a hash,
/// a number), and what they leave goes to the longer ones.
fn share_of(lengths: &[usize], room: usize) -> usize {
    let mut lengths = lengths.to_vec();
    lengths.sort_unstable();
    let (mut left, mut count) = (room, lengths.len());
    for length in lengths {
        let fair = left / count;
        if length > fair {
            return fair;
        }
        left -= length;
        count -= 1;
    }
    usize::MAX
}

/// `[SD-ID name="value" …` (without the closing `]`), each value escaped
/// and, given a share, cut to at most that many bytes as escaped (at a
/// character, never inside what escapes one).
fn structured_data(params: &[(&str, &str)], share: Option<usize>) -> String {
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params {
        sd.push_str(&format!(" {name}=\"{}\"", sd_value_within(value, share)));
    }
    sd
}

/// RFC 5424 structured-data parameter value: `"`, `\` and `]` escaped,
/// and control characters as in the message (see [`escape_controls`]).
fn sd_value(value: &str) -> String {
    sd_value_within(value, None)
}

/// [`sd_value`], at most `share` bytes of it: whole characters, each
/// escaped whole.
fn sd_value_within(value: &str, share: Option<usize>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut one = String::new();
    for c in value.chars() {
        one.clear();
        if matches!(c, '"' | '\\' | ']') {
            one.push('\\');
        }
        match u8::try_from(c) {
            Ok(b) if is_escaped(b) => one.extend(escaped(b).map(char::from)),
            _ => one.push(c),
        }
        if share.is_some_and(|share| out.len() + one.len() > share) {
            break;
        }
        out.push_str(&one);
    }
    out
}

/// A byte a syslog message carries escaped: control characters but the
/// tab. A collector that writes each message as a line (syslog-ng, or a
/// datagram written to a file as it came) would otherwise write a
/// command's newline as a line of its own, one that the command's author
/// wrote to look like another record; a terminal showing the file would
/// run an escape sequence.
fn is_escaped(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// An escaped byte as rsyslog writes it: `#` and its three octal digits.
fn escaped(b: u8) -> [u8; 4] {
    [b'#', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]
}

/// What an escaped byte takes in a message.
fn escaped_len(b: u8) -> usize {
    if is_escaped(b) {
        escaped(b).len()
    } else {
        1
    }
}

/// `text` with each control character but the tab written as `#` and
/// its three octal digits (`#012` for a newline), as rsyslog writes them
/// by default: one message, one line. The text is then not exact, so
/// the message carries the exact one's length and SHA-256.
fn escape_controls(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &b in text {
        if is_escaped(b) {
            out.extend_from_slice(&escaped(b));
        } else {
            out.push(b);
        }
    }
    out
}

/// RFC 5424's HOSTNAME: 1 to 255 printable US-ASCII characters (33 to
/// 126), or `-` for none. A host name with others (an imported `my laptop
/// é`) has each replaced with `_`; the message's structured data then
/// carries the name as it was.
fn syslog_hostname(host: &str) -> String {
    if host.is_empty() {
        return "-".into();
    }
    host.chars()
        .map(|c| if matches!(c, '!'..='~') { c } else { '_' })
        .take(255)
        .collect()
}

/// The structured-data element ID: ours, under the private enterprise
/// number reserved for documentation (RFC 5612).
const SD_ID: &str = "tmux-audit@32473";

/// One RFC 5424 message: `<PRI>1 TIME HOST tmux-audit - MSGID [SD] MSG`,
/// facility user, severity info (a failed command: notice).
pub fn syslog_message(item: &ForwardItem, max: usize) -> Vec<u8> {
    let (msgid, at_us, host, severity, fields, text) = fields_of(item);
    let pri = 8 + severity;
    // RFC 5424's NILVALUE for a time that cannot be written.
    let time = Some(crate::render::utc_time(at_us))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "-".into());
    let hostname = syslog_hostname(&host);
    let mut params: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    if hostname != host && !host.is_empty() {
        // The name as it was, where any text may go.
        params.push(("host", &host));
    }
    let header = format!("<{pri}>1 {time} {hostname} tmux-audit - {msgid} ");
    let said = format!(
        " length=\"{}\" sha256=\"{}\"",
        text.len(),
        hex(&Sha256::digest(&text))
    );
    // The message is header, SD, `]`, a space and the text: at most `max`
    // bytes, the SD saying so when the text was cut or escaped (see
    // `escape_controls`). Should the SD alone not leave room for that (a
    // directory of kilobytes), its long values share what is left (see
    // `share_of`), cut at a character.
    let shown: usize = text.iter().map(|&b| escaped_len(b)).sum();
    let exact = shown == text.len();
    let whole =
        |sd: &str| header.len() + sd.len() + 2 + shown + if exact { 0 } else { said.len() } <= max;
    let mut sd = structured_data(&params, None);
    if !whole(&sd) && header.len() + sd.len() + said.len() + 2 > max {
        let names: Vec<(&str, &str)> = params.iter().map(|(n, _)| (*n, "")).collect();
        let bare = structured_data(&names, None);
        let room = max.saturating_sub(header.len() + bare.len() + said.len() + 2);
        let lengths: Vec<usize> = params.iter().map(|(_, v)| sd_value(v).len()).collect();
        sd = structured_data(&params, Some(share_of(&lengths, room)));
    }
    let body = if whole(&sd) {
        if !exact {
            sd.push_str(&said);
        }
        escape_controls(&text)
    } else {
        let fixed = header.len() + sd.len() + 2;
        let end = fitting(&text, max.saturating_sub(fixed + said.len()));
        sd.push_str(&said);
        escape_controls(&text[..end])
    };
    sd.push(']');
    let mut message = header.into_bytes();
    message.extend_from_slice(sd.as_bytes());
    message.push(b' ');
    message.extend_from_slice(&body);
    message
}

/// How many bytes of `text` fit in `max` once escaped (see
/// [`escape_controls`]), ending at a UTF-8 boundary: an escape is never
/// cut.
fn fitting(text: &[u8], max: usize) -> usize {
    let (mut shown, mut end) = (0, 0);
    for (i, &b) in text.iter().enumerate() {
        shown += escaped_len(b);
        if shown > max {
            break;
        }
        if text.get(i + 1).is_none_or(|next| next & 0xC0 != 0x80) {
            end = i + 1;
        }
    }
    end
}

/// One journald native-protocol datagram: `KEY=value\n` fields, and for
/// a value with a newline `KEY\n`, its length (64-bit little-endian),
/// the value, `\n`.
pub fn journald_message(item: &ForwardItem, max: usize) -> Vec<u8> {
    let (msgid, at_us, host, severity, fields, text) = fields_of(item);
    let mut out = Vec::new();
    let field = |out: &mut Vec<u8>, name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value);
        out.push(b'\n');
    };
    field(&mut out, "SYSLOG_IDENTIFIER", b"tmux-audit");
    field(&mut out, "PRIORITY", severity.to_string().as_bytes());
    field(&mut out, "TMUX_AUDIT_KIND", msgid.as_bytes());
    // When it happened (journald stamps when it received it: after an
    // outage, or for imported history, much later).
    let time = crate::render::utc_time(at_us);
    if !time.is_empty() {
        field(&mut out, "TMUX_AUDIT_TIME", time.as_bytes());
    }
    // Where it ran (journald's own _HOSTNAME is the forwarding machine's:
    // another one for imported history).
    if !host.is_empty() {
        field(&mut out, "TMUX_AUDIT_HOST", host.as_bytes());
    }
    for (name, value) in &fields {
        let name = format!("TMUX_AUDIT_{}", name.to_ascii_uppercase());
        field(&mut out, &name, value.as_bytes());
    }
    let (body, cut_info) = cut(&text, max.saturating_sub(out.len() + 256) / 2);
    if let Some((length, sha)) = cut_info {
        field(&mut out, "TMUX_AUDIT_LENGTH", length.to_string().as_bytes());
        field(&mut out, "TMUX_AUDIT_SHA256", sha.as_bytes());
    }
    if msgid == "command" {
        field(&mut out, "TMUX_AUDIT_COMMAND", body);
    }
    field(&mut out, "MESSAGE", body);
    out
}

/// (MSGID, time, host, severity, named fields, text) of an entry.
type Parts = (
    &'static str,
    i64,
    String,
    u8,
    Vec<(&'static str, String)>,
    Vec<u8>,
);

fn fields_of(item: &ForwardItem) -> Parts {
    let opt = |v: Option<String>| v.unwrap_or_default();
    match item {
        ForwardItem::Command { row, hash } => {
            let r = &row.record;
            let failed = r.exit_status.is_some_and(|s| s != 0);
            let mut fields = vec![
                ("id", row.id.to_string()),
                ("user", r.user.clone()),
                (
                    "uid",
                    opt(crate::record::known_uid(r.uid).map(|uid| uid.to_string())),
                ),
                ("exit", opt(r.exit_status.map(|s| s.to_string()))),
                ("duration_us", opt(r.duration_us.map(|d| d.to_string()))),
                ("cwd", r.cwd.clone()),
                ("shell", r.shell.clone()),
                ("session", r.shell_session.clone()),
                ("seq", r.seq.to_string()),
                ("pane", opt(r.tmux_pane.clone())),
                (
                    "import_source",
                    opt(r.imported.as_ref().map(|m| m.source.clone())),
                ),
                (
                    "import_file",
                    opt(r.imported.as_ref().map(|m| m.file.clone())),
                ),
                ("hash", hex(hash)),
            ];
            fields.retain(|(_, v)| !v.is_empty());
            let text = r
                .command_raw
                .clone()
                .unwrap_or_else(|| r.command.clone().into_bytes());
            (
                "command",
                r.started_at_us,
                r.host.clone(),
                if failed { 5 } else { 6 },
                fields,
                text,
            )
        }
        ForwardItem::TmuxEvent { id, event, hash } => {
            let mut fields = vec![
                ("id", id.to_string()),
                ("event", event.event.clone()),
                ("user", event.user.clone()),
                ("socket", event.tmux_socket.clone()),
                ("session_name", opt(event.session_name.clone())),
                ("window_name", opt(event.window_name.clone())),
                ("pane", opt(event.pane.clone())),
                (
                    "client_user",
                    opt(event.client.as_ref().and_then(|c| c.user.clone())),
                ),
                ("hash", hex(hash)),
            ];
            fields.retain(|(_, v)| !v.is_empty());
            let text = format!(
                "tmux {} {}",
                event.event,
                event.session_name.clone().unwrap_or_default()
            );
            (
                "tmux-event",
                event.at_us,
                event.host.clone(),
                6,
                fields,
                text.trim_end().as_bytes().to_vec(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A peer on a local port doing `serve` with the one connection it
    /// accepts; `deliver`'s result for a small batch, and what the peer saw.
    fn deliver_to(serve: fn(TcpStream) -> Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let peer = std::thread::spawn(move || serve(listener.accept().unwrap().0));
        let messages = vec![b"<14>1 - - tmux-audit - command - ls".to_vec(); 3];
        let result = deliver(&Target::SyslogTcp(addr), None, &messages);
        (result, peer.join().unwrap())
    }

    fn read_all(mut stream: &TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        got
    }

    fn imported() -> ForwardItem {
        use crate::record::{CommandRecord, Imported};
        ForwardItem::Command {
            row: Box::new(crate::db::StoredCommand {
                id: 7,
                recorded_at_us: 1_800_000_000_000_000,
                record: CommandRecord {
                    command: "ls".into(),
                    started_at_us: 1_600_000_000_000_000,
                    host: "laptop".into(),
                    imported: Some(Imported {
                        source: "bash".into(),
                        file: "/home/a/.bash_history".into(),
                        key: vec![1],
                    }),
                    ..CommandRecord::default()
                },
                placement: None,
            }),
            hash: vec![0; 32],
        }
    }

    /// A long command is cut so that the whole message, with what says it
    /// was cut, fits `max_message_bytes`; too small a limit is refused.
    #[test]
    fn a_cut_message_fits_its_limit_and_too_small_a_limit_is_refused() {
        let mut item = imported();
        if let ForwardItem::Command { row, .. } = &mut item {
            row.record.command = "é".repeat(6000);
        }
        for max in [480, 481, 1000, 2048, 8192] {
            let message = syslog_message(&item, max);
            assert!(message.len() <= max, "{} > {max}", message.len());
            assert!(
                message.len() + 2 >= max,
                "{} wastes room under {max}",
                message.len()
            );
            let text = String::from_utf8(message).expect("cut at a character");
            assert!(text.contains(" length=\"12000\" sha256=\""), "{text}");
        }
        // Structured data too long for the limit by itself (a directory of
        // kilobytes, with characters to escape): its values are cut too,
        // the message still fits and ends with the whole command.
        if let ForwardItem::Command { row, .. } = &mut item {
            row.record.cwd = "/srv/\\\"é]".repeat(2000);
            row.record.command = "echo short".into();
        }
        for max in (480..1200).chain([8192]) {
            let message = syslog_message(&item, max);
            assert!(message.len() <= max, "{} > {max}", message.len());
            let text = String::from_utf8(message).expect("cut at a character");
            // Read as a receiver does: the SD ends at the first `]` that
            // is neither escaped nor inside a value.
            let sd_start = text.find('[').unwrap();
            let (mut quoted, mut escaped, mut end) = (false, false, None);
            for (i, c) in text[sd_start..].char_indices() {
                match (c, escaped, quoted) {
                    (_, true, _) => escaped = false,
                    ('\\', false, true) => escaped = true,
                    ('"', false, _) => quoted = !quoted,
                    (']', false, false) => {
                        end = Some(sd_start + i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.expect("the SD ends");
            assert_eq!(&text[end..], "] echo short", "{text}");
            // Short values (the hash, the numbers) are kept whole.
            assert!(
                text.contains(&format!(" hash=\"{}\"", "0".repeat(64))),
                "{text}"
            );
        }
        let whole = syslog_message(&imported(), 480);
        assert!(!String::from_utf8(whole).unwrap().contains("length="));
        for max in [0, 479] {
            let config = ForwardConfig {
                syslog: Some("tcp://127.0.0.1:514".into()),
                max_message_bytes: Some(max),
                ..ForwardConfig::default()
            };
            let err = targets(&config).unwrap_err();
            assert!(err.contains("give at least 480"), "{err}");
        }
    }

    /// A command's newline would be a line of its own in a collector that
    /// writes each message as a line, one its author wrote to look like
    /// another record (and an escape sequence would run in a terminal
    /// showing the file): control characters go escaped, the tab as it is,
    /// and the message carries the exact text's length and SHA-256. Cut,
    /// an escape is never cut in two.
    #[test]
    fn control_characters_go_escaped_and_the_message_says_so() {
        let forged = "true\n<14>1 2026-12-01T00:00:00Z web1 tmux-audit - command \
                      [tmux-audit@32473 id=\"9\"] rm -rf /\r\x1b[2K\tx\x7f";
        let mut item = imported();
        if let ForwardItem::Command { row, .. } = &mut item {
            row.record.command = forged.into();
            row.record.cwd = "/tmp/a\nb".into();
        }
        let digest = hex(&Sha256::digest(forged.as_bytes()));
        let said = format!(" length=\"{}\" sha256=\"{digest}\"]", forged.len());
        let text = String::from_utf8(syslog_message(&item, 8192)).unwrap();
        assert!(
            !text.bytes().any(is_escaped),
            "a control character went as it is: {text:?}"
        );
        assert!(text.contains(" cwd=\"/tmp/a#012b\""), "{text}");
        assert!(
            text.ends_with(&format!(
                "{said} true#012<14>1 2026-12-01T00:00:00Z web1 tmux-audit - command \
                 [tmux-audit@32473 id=\"9\"] rm -rf /#015#033[2K\tx#177"
            )),
            "{text}"
        );
        // A plain command goes as it is, without the length and hash.
        let plain = String::from_utf8(syslog_message(&imported(), 8192)).unwrap();
        assert!(
            plain.ends_with("] ls") && !plain.contains("sha256="),
            "{plain}"
        );
        // Cut: the message fits, and ends with whole escapes.
        if let ForwardItem::Command { row, .. } = &mut item {
            row.record.command = "\n".repeat(3000);
            row.record.cwd = "/".into();
        }
        for max in 480..520 {
            let text = String::from_utf8(syslog_message(&item, max)).unwrap();
            assert!(text.len() <= max, "{} > {max}", text.len());
            assert!(text.contains(" length=\"3000\" sha256=\""), "{text}");
            let body = &text[text.rfind("] ").unwrap() + 2..];
            assert!(
                !body.is_empty() && body.len().is_multiple_of(4),
                "{max}: {body}"
            );
            assert_eq!(body, "#012".repeat(body.len() / 4));
        }
        // A value of the structured data cut to its share: whole escapes.
        if let ForwardItem::Command { row, .. } = &mut item {
            row.record.command = "ls".into();
            row.record.cwd = format!("/{}", "\n".repeat(1000));
        }
        for max in 480..520 {
            let text = String::from_utf8(syslog_message(&item, max)).unwrap();
            assert!(text.len() <= max, "{} > {max}", text.len());
            let cwd = text.split(" cwd=\"/").nth(1).unwrap();
            let cwd = &cwd[..cwd.find('"').unwrap()];
            assert_eq!(cwd, "#012".repeat(cwd.len() / 4), "{max}: {text}");
        }
    }

    /// An imported host name with a space or non-ASCII would break the
    /// RFC 5424 header: it is made printable ASCII there, kept whole in SD.
    #[test]
    fn a_host_name_rfc_5424_cannot_carry_is_made_printable_and_kept_in_sd() {
        let mut item = imported();
        if let ForwardItem::Command { row, .. } = &mut item {
            row.record.host = "my laptop é".into();
        }
        let text = String::from_utf8(syslog_message(&item, 8192)).unwrap();
        assert!(
            text.starts_with(
                "<14>1 2020-09-13T12:26:40.000000Z my_laptop__ tmux-audit - command ["
            ) && text.contains(" host=\"my laptop é\""),
            "{text}"
        );
        assert_eq!(syslog_hostname(""), "-");
        assert_eq!(syslog_hostname(&"h".repeat(300)).len(), 255);
        assert_eq!(syslog_hostname("web-1.example.org"), "web-1.example.org");
    }

    /// Imported history forwarded must not pass for commands run now.
    #[test]
    fn syslog_and_journald_carry_the_import_mark_and_the_time() {
        let syslog = String::from_utf8(syslog_message(&imported(), 8192)).unwrap();
        assert!(
            syslog.starts_with("<14>1 2020-09-13T12:26:40.000000Z laptop tmux-audit - command [")
                && syslog.contains(" import_source=\"bash\" import_file=\"/home/a/.bash_history\""),
            "{syslog}"
        );
        let journal = String::from_utf8(journald_message(&imported(), 8 << 20)).unwrap();
        for line in [
            "TMUX_AUDIT_TIME=2020-09-13T12:26:40.000000Z",
            "TMUX_AUDIT_HOST=laptop",
            "TMUX_AUDIT_IMPORT_SOURCE=bash",
            "TMUX_AUDIT_IMPORT_FILE=/home/a/.bash_history",
        ] {
            assert!(journal.lines().any(|l| l == line), "{line}: {journal}");
        }
    }

    #[test]
    fn a_collector_that_reads_to_the_end_and_closes_took_the_batch() {
        let (result, got) = deliver_to(|stream| read_all(&stream));
        result.unwrap();
        assert_eq!(
            got,
            octet_counted(&vec![b"<14>1 - - tmux-audit - command - ls".to_vec(); 3])
        );
    }

    #[test]
    fn a_peer_that_answers_and_closes_did_not_take_the_batch() {
        // What `python3 -m http.server` does: reads the "request" to the
        // end, answers 400, closes.
        let (result, got) = deliver_to(|mut stream| {
            let got = read_all(&stream);
            stream
                .write_all(b"HTTP/1.0 400 Bad request\r\n\r\n<html>")
                .unwrap();
            got
        });
        assert!(!got.is_empty());
        let err = result.expect_err("an answering peer counted as a collector");
        assert!(
            err.to_string().contains("HTTP/1.0 400 Bad request"),
            "{err}"
        );
    }

    #[test]
    fn a_peer_that_closes_without_reading_did_not_take_the_batch() {
        // A wrong port or a proxy whose backend is down: accept, close.
        let (result, _) = deliver_to(|stream| {
            drop(stream);
            Vec::new()
        });
        result.expect_err("a peer that read nothing counted as a collector");
    }
}
