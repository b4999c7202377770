//! Reaching the central PostgreSQL the way libpq does, so that a team's
//! existing set-up works unchanged: a `postgresql://` URL (or
//! `key=value` words), then PGHOST, PGPORT, PGUSER, PGDATABASE,
//! PGPASSWORD, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY and
//! PGCONNECT_TIMEOUT for what it leaves out, and the password from
//! PGPASSFILE or ~/.pgpass (ignored, as libpq does, when others may read
//! it), so that no password sits in config.toml.
//!
//! TLS is rustls, linked statically: `sslmode` disable, prefer (the
//! default: TLS when offered, unchecked), require (TLS, unchecked unless a
//! root certificate is given, as libpq), verify-ca (the chain checked) and
//! verify-full (the chain and the host name checked). Client certificates
//! come from sslcert/sslkey (default ~/.postgresql/postgresql.crt/.key).

use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::SslMode as PgSslMode;
use rustls::ClientConfig;

use super::{one_line, CentralError};
use crate::tls::{self, Check};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, CentralError> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(CentralError::Settings(format!(
                    "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// Where and how to connect, every setting resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// A host name, an address, or a directory holding the server's socket.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl Target {
    /// `user@host:port/dbname`: what errors name (never the password).
    pub fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    /// The same server's identity for the local cursor: shipping to
    /// another server starts from its own anchor.
    pub fn server_key(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.dbname)
    }

    /// Resolves `url` (a `postgresql://` URL or libpq `key=value` words)
    /// with the environment `env` (PG* variables) and the password file.
    pub fn resolve(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Target, CentralError> {
        let given = parse(url)?;
        let get = |key: &str, var: &str| -> Option<String> {
            given
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| env(var).filter(|v| !v.is_empty()))
        };
        let home = env("HOME").map(PathBuf::from);
        let host = get("host", "PGHOST").unwrap_or_else(|| "/var/run/postgresql".into());
        let port = match get("port", "PGPORT") {
            Some(port) => port
                .parse()
                .map_err(|_| CentralError::Settings(format!("port {port:?} is not a number")))?,
            None => 5432,
        };
        let user = get("user", "PGUSER").unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions.
            crate::context::user_name(unsafe { libc::getuid() })
        });
        let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
        let sslmode = SslMode::parse(&get("sslmode", "PGSSLMODE").unwrap_or("prefer".into()))?;
        let dot_postgresql = home.as_ref().map(|h| h.join(".postgresql"));
        let default_file = |name: &str| {
            dot_postgresql
                .as_ref()
                .map(|d| d.join(name))
                .filter(|p| p.exists())
        };
        let sslrootcert = get("sslrootcert", "PGSSLROOTCERT")
            .map(PathBuf::from)
            .or_else(|| default_file("root.crt"));
        let sslcert = get("sslcert", "PGSSLCERT")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.crt"));
        let sslkey = get("sslkey", "PGSSLKEY")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.key"));
        let connect_timeout = match get("connect_timeout", "PGCONNECT_TIMEOUT") {
            Some(secs) => Duration::from_secs(secs.parse().map_err(|_| {
                CentralError::Settings(format!(
                    "connect_timeout {secs:?} is not a number of seconds"
                ))
            })?),
            None => Duration::from_secs(10),
        };
        let mut target = Target {
            host,
            port,
            user,
            dbname,
            password: get("password", "PGPASSWORD"),
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
            connect_timeout,
        };
        if target.password.is_none() {
            let file = env("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".pgpass")));
            if let Some(file) = file {
                target.password = password_from_file(&file, &target);
            }
        }
        Ok(target)
    }

    /// A connection, TLS as `sslmode` asks.
    pub fn connect(&self) -> Result<postgres::Client, CentralError> {
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("tmux-audit")
            .connect_timeout(self.connect_timeout)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Prefer => PgSslMode::Prefer,
                _ => PgSslMode::Require,
            });
        if let Some(password) = &self.password {
            config.password(password);
        }
        let tls = match self.sslmode {
            SslMode::Disable => None,
            _ => Some(tokio_postgres_rustls::MakeRustlsConnect::new(
                self.tls_config()?,
            )),
        };
        // The client's own timeout covers reaching the socket only; a
        // server that accepts and never answers would hold a detached sync
        // for ever. The whole log-in gets the timeout: past it, the thread
        // is left to the process's exit.
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = match tls {
                None => config.connect(postgres::NoTls),
                Some(tls) => config.connect(tls),
            };
            let _ = send.send(result);
        });
        match receive.recv_timeout(self.connect_timeout) {
            Ok(result) => result.map_err(|err| self.classify(&err)),
            Err(_) => Err(CentralError::Unreachable {
                target: self.describe(),
                reason: format!(
                    "no answer within {} s (connect_timeout)",
                    self.connect_timeout.as_secs()
                ),
            }),
        }
    }

    fn classify(&self, err: &postgres::Error) -> CentralError {
        let target = self.describe();
        if let Some(db) = err.as_db_error() {
            let reason = db.message().replace('\n', " ");
            return match db.code().code() {
                // invalid_password, invalid_authorization_specification
                "28P01" | "28000" => CentralError::Login { target, reason },
                "3D000" => CentralError::Unreachable { target, reason },
                _ => CentralError::from_postgres(err),
            };
        }
        let reason = one_line(err);
        let lower = reason.to_lowercase();
        if lower.contains("tls") || lower.contains("certificate") || lower.contains("ssl") {
            let reason = if lower.contains("server does not support tls") {
                "the server does not offer TLS".to_string()
            } else {
                reason
            };
            CentralError::Tls { target, reason }
        } else if lower.contains("password missing") {
            CentralError::Login {
                target,
                reason: "the server asks for a password and none was found".into(),
            }
        } else {
            CentralError::Unreachable { target, reason }
        }
    }

    fn tls_config(&self) -> Result<ClientConfig, CentralError> {
        let verify = match (self.sslmode, &self.sslrootcert) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(CentralError::Settings(
                    "sslmode verify-ca and verify-full need the server's root certificate: set sslrootcert= or PGSSLROOTCERT, or put it in ~/.postgresql/root.crt".into(),
                ));
            }
            // As libpq: `require` with a root certificate checks the chain.
            (SslMode::Require, Some(_)) | (SslMode::VerifyCa, _) => Check::Chain,
            (SslMode::VerifyFull, _) => Check::Full,
            _ => Check::Nothing,
        };
        let identity = match (&self.sslcert, &self.sslkey) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };
        tls::client_config(verify, self.sslrootcert.as_deref(), identity)
            .map_err(CentralError::Settings)
    }
}

/// The settings a URL or `key=value` words give, in order.
fn parse(url: &str) -> Result<Vec<(String, String)>, CentralError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"));
    let Some(rest) = rest else {
        // libpq's `host=… port=…` words (values without spaces or quotes).
        return url
            .split_whitespace()
            .map(|word| {
                word.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| {
                        CentralError::Settings(format!(
                            "{word:?} is not key=value; give a postgresql:// URL or libpq's key=value words"
                        ))
                    })
            })
            .collect();
    };
    let mut out = Vec::new();
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    if let Some(credentials) = credentials {
        let (user, password) = match credentials.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (credentials, None),
        };
        if !user.is_empty() {
            out.push(("user".into(), decode(user)?));
        }
        if let Some(password) = password {
            out.push(("password".into(), decode(password)?));
        }
    }
    if !hostport.is_empty() {
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            match bracketed.split_once(']') {
                Some((h, p)) => (h.to_string(), p.strip_prefix(':').map(str::to_string)),
                None => {
                    return Err(CentralError::Settings(format!(
                        "{hostport:?}: an IPv6 address needs its closing ]"
                    )));
                }
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.to_string())),
                None => (hostport.to_string(), None),
            }
        };
        if !host.is_empty() {
            out.push(("host".into(), decode(&host)?));
        }
        if let Some(port) = port.filter(|p| !p.is_empty()) {
            out.push(("port".into(), port));
        }
    }
    if !path.is_empty() {
        out.push(("dbname".into(), decode(path)?));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// Percent-decoding, as URLs need for `/` in a socket directory or `@`
/// in a password.
fn decode(text: &str) -> Result<String, CentralError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    CentralError::Settings(format!("{text:?}: a % must start a %XX escape"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| CentralError::Settings(format!("{text:?} is not UTF-8 once decoded")))
}

/// The password for `target` from a libpq password file: lines
/// `host:port:database:user:password`, `*` matching anything, `\:` and
/// `\\` escaped; the first match wins. As libpq, a file that others may
/// read is ignored; a socket directory matches `localhost`.
pub fn password_from_file(file: &Path, target: &Target) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let host = if target.host.starts_with('/') {
        "localhost"
    } else {
        target.host.as_str()
    };
    let port = target.port.to_string();
    let wanted = [host, port.as_str(), &target.dbname, &target.user];
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = wanted
                .iter()
                .zip(&fields)
                .all(|(want, field)| field == "*" || field == want);
            matches.then(|| fields[4..].join(":"))
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_url_gives_every_part_and_the_environment_fills_the_rest() {
        let t = Target::resolve(
            "postgresql://web1:s%40cret@db.example:6543/audit?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("db.example", 6543, "web1", "audit")
        );
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        let env = |k: &str| match k {
            "PGHOST" => Some("/tmp/sock".to_string()),
            "PGPORT" => Some("7000".to_string()),
            "PGUSER" => Some("web2".to_string()),
            "PGSSLMODE" => Some("disable".to_string()),
            _ => None,
        };
        let t = Target::resolve("postgresql:///audit", &env).unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.dbname.as_str(),
                t.sslmode
            ),
            ("/tmp/sock", 7000, "web2", "audit", SslMode::Disable)
        );
        let t = Target::resolve("host=h port=1 dbname=d user=u sslmode=require", &no_env).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.sslmode),
            ("h", 1, SslMode::Require)
        );
        assert!(Target::resolve("postgresql://h/d?sslmode=sometimes", &no_env).is_err());
    }

    #[test]
    fn the_password_file_matches_as_libpq_does_and_is_ignored_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:*:no\ndb.example:6543:audit:web1:pa\\:ss\nlocalhost:*:*:*:sock\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = |k: &str| (k == "PGPASSFILE").then(|| file.display().to_string());
        let t = Target::resolve("postgresql://web1@db.example:6543/audit", &env).unwrap();
        assert_eq!(t.password.as_deref(), Some("pa:ss"));
        let t = Target::resolve("host=/run/pg port=9 dbname=x user=y", &env).unwrap();
        assert_eq!(t.password.as_deref(), Some("sock"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = Target::resolve("postgresql://web1@db.example:6543/audit", &env).unwrap();
        assert_eq!(t.password, None);
    }
}
