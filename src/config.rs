//! The optional configuration files: the system's,
//! `/etc/tmux-audit/config.toml`, read first, then the user's,
//! `$XDG_CONFIG_HOME/tmux-audit/config.toml`. Read only when they exist;
//! everything in them has a default. The user's file overrides the
//! system's, except what a team's administrator must be able to rely on
//! (see [`SYSTEM_LOCKED`]): the central URL records are shipped to, and
//! redaction (the user may add patterns, not turn it off nor allow-list).
//!
//! ```toml
//! [redact]
//! enabled = true                      # built-in secret patterns on (default)
//! patterns = ['corp_[a-z0-9]{24}']    # more regexes whose matches are redacted
//! allow = ['AKIAIOSFODNN7EXAMPLE']    # exact matches never redacted
//!
//! [record]
//! max_command_bytes = 2097152         # longer commands keep their head (default 2 MiB)
//!
//! [retention]
//! older_than = "180d"                 # the default of `prune`, and pruned daily (default: never)
//! keep_failed = true                  # keep failed commands longer (default false)
//! keep_matching = ['^sudo ']          # and those matching these regexes
//!
//! [forward]
//! syslog = "tcp://127.0.0.1:514"      # or udp://HOST:PORT, unix:/dev/log
//! journald = "/run/systemd/journal/socket"
//!
//! [capture]
//! enabled = false                     # each pane's output, for `show ID --output` (default off)
//! max_total_mib = 1024                # all panes' segments; the oldest pruned first (0: no limit)
//! exclude = ["pass *", "vault read *"] # output never written (default: password managers)
//!
//! [central]
//! url = "postgresql://web1@db.example/audit?sslmode=verify-full"  # no password: ~/.pgpass
//! sync_every_secs = 10                # after a record, a detached sync at most this often
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub redact: Redact,
    pub record: RecordSettings,
    pub retention: Retention,
    pub forward: Forward,
    pub capture: Capture,
    pub central: Central,
}

/// `[forward]`: where records and tmux events also go (see `forward.rs`),
/// sent by `tmux-audit forward` and the background merge, never by the
/// prompt's own process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forward {
    /// `unix:/dev/log`, `udp://HOST:PORT`, `tcp://HOST:PORT` or
    /// `tls://HOST:PORT`.
    pub syslog: Option<String>,
    /// For `tls://`: the root certificate (PEM) the collector's must lead
    /// to; its host name is checked too.
    pub tls_ca: Option<String>,
    /// For `tls://`: a client certificate and its key (PEM), for a
    /// collector that asks for one.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// journald's native socket, `/run/systemd/journal/socket`.
    pub journald: Option<String>,
    /// A message's limit in bytes [default: 8192, UDP 2048, journald
    /// 8 MiB: whole, a memfd past the datagram limit].
    pub max_message_bytes: Option<usize>,
}

/// `[retention]`: how long records are kept. With `older_than` set, the
/// background merge prunes once a day (never the prompt's own process:
/// see `cmd/flush.rs`), and `tmux-audit prune` takes it as its default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// A duration (`180d`, `26 weeks`); None: nothing is pruned unasked.
    pub older_than: Option<String>,
    pub keep_failed: bool,
    pub keep_matching: Vec<String>,
}

/// Per-pane output capture (`capture/`): off unless asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capture {
    /// `init tmux` pipes every pane's output into `tmux-audit capture`.
    pub enabled: bool,
    /// The segments of every pane together stay under this many MiB: the
    /// oldest finished ones are deleted first (0: no limit).
    pub max_total_mib: u64,
    /// Command lines whose output is never written, not even redacted
    /// (glob patterns: `*` any text, `?` one character): the shell hooks
    /// mark such a command, and its capture counts its output and drops
    /// it. bash matches each simple command as it starts (`cd x && pass
    /// show y` is excluded from `pass`), zsh and fish the whole line.
    pub exclude: Vec<String>,
}

/// Password managers' and secret stores' reading commands, whose output is
/// the secret itself.
pub const DEFAULT_EXCLUDE: &[&str] = &[
    "pass *",
    "gopass *",
    "op *",
    "bw *",
    "lpass *",
    "vault read *",
    "vault kv get *",
];

impl Default for Capture {
    fn default() -> Capture {
        Capture {
            enabled: false,
            max_total_mib: 1024,
            exclude: DEFAULT_EXCLUDE.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// The central store (`tmux-audit sync`, `--central`): see `central/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Central {
    /// A `postgresql://` URL or libpq `key=value` words; no password (use
    /// ~/.pgpass). `TMUX_AUDIT_CENTRAL_URL` is used when this is unset.
    pub url: Option<String>,
    /// After a record, a detached `sync` at most this often (0: never).
    pub sync_every_secs: u64,
    /// The system file's URL, which `sync` uses whatever the user says.
    #[serde(skip)]
    pub locked_url: Option<String>,
}

impl Default for Central {
    fn default() -> Central {
        Central {
            url: None,
            sync_every_secs: 10,
            locked_url: None,
        }
    }
}

impl Central {
    /// Where `sync` ships: the system file's URL, else
    /// `TMUX_AUDIT_CENTRAL_URL`, else the user's file.
    pub fn url(&self) -> Option<String> {
        self.locked_url.clone().or_else(|| self.reading_url())
    }

    /// Where `--central` reads (with the reader's own role):
    /// `TMUX_AUDIT_CENTRAL_URL`, else the files'.
    pub fn reading_url(&self) -> Option<String> {
        std::env::var("TMUX_AUDIT_CENTRAL_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| self.url.clone().filter(|u| !u.trim().is_empty()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordSettings {
    /// A command longer than this keeps its first bytes, its length and
    /// the SHA-256 of the whole (see `cmd/record.rs`): a 100 MiB paste
    /// must not hold the prompt for seconds nor take hundreds of MB.
    pub max_command_bytes: usize,
}

impl Default for RecordSettings {
    fn default() -> RecordSettings {
        RecordSettings {
            max_command_bytes: 2 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redact {
    pub enabled: bool,
    pub patterns: Vec<String>,
    pub allow: Vec<String>,
}

impl Default for Redact {
    fn default() -> Redact {
        Redact {
            enabled: true,
            patterns: Vec::new(),
            allow: Vec::new(),
        }
    }
}

/// The system's file. `TMUX_AUDIT_SYSTEM_CONFIG` names another only in
/// debug builds (the tests'): a user of a release binary cannot point it
/// elsewhere.
pub fn system_path() -> PathBuf {
    if cfg!(debug_assertions)
        && let Some(path) = std::env::var_os("TMUX_AUDIT_SYSTEM_CONFIG")
    {
        return PathBuf::from(path);
    }
    PathBuf::from("/etc/tmux-audit/config.toml")
}

/// What the user's file cannot change when the system's file sets it:
/// `[central] url` (where `sync` ships), and `[redact]` (`enabled = true`
/// stays on, patterns are added to the system's, `allow` is the system's).
pub const SYSTEM_LOCKED: &str = "[central] url, [redact]";

pub fn path() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "tmux-audit")
        .context("cannot find the home directory")?;
    Ok(dirs.config_dir().join("config.toml"))
}

/// A file's table, or None when there is no file.
fn read_table(path: &std::path::Path) -> Result<Option<toml::Table>> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .with_context(|| format!("cannot read {}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The user's settings over the system's, less what the system locks.
fn merge(system: Option<toml::Table>, user: Option<toml::Table>) -> (toml::Table, Option<String>) {
    let system = system.unwrap_or_default();
    let mut merged = system.clone();
    for (section, value) in user.unwrap_or_default() {
        match (merged.get_mut(&section), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(over)) => base.extend(over),
            (_, value) => {
                merged.insert(section, value);
            }
        }
    }
    let section = |name: &str| system.get(name).and_then(toml::Value::as_table);
    let locked_url = section("central")
        .and_then(|c| c.get("url"))
        .and_then(toml::Value::as_str)
        .map(str::to_string);
    if let Some(url) = &locked_url
        && let Some(toml::Value::Table(central)) = merged.get_mut("central")
    {
        central.insert("url".into(), toml::Value::String(url.clone()));
    }
    if let Some(system_redact) = section("redact") {
        let user_patterns = merged
            .get("redact")
            .and_then(|r| r.get("patterns"))
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut redact = system_redact.clone();
        let mut patterns = system_redact
            .get("patterns")
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default();
        patterns.extend(
            user_patterns
                .into_iter()
                .filter(|p| !patterns_contains(system_redact, p)),
        );
        redact.insert("patterns".into(), toml::Value::Array(patterns));
        merged.insert("redact".into(), toml::Value::Table(redact));
    }
    (merged, locked_url)
}

fn patterns_contains(redact: &toml::Table, pattern: &toml::Value) -> bool {
    redact
        .get("patterns")
        .and_then(toml::Value::as_array)
        .is_some_and(|p| p.contains(pattern))
}

impl Config {
    /// The settings in effect: the system's file, the user's over it (less
    /// what the system locks), the defaults for the rest.
    pub fn load() -> Result<Config> {
        let system_path = system_path();
        let system = read_table(&system_path)?;
        let user_path = path()?;
        let user = read_table(&user_path)?;
        let (merged, locked_url) = merge(system, user);
        let mut config: Config = merged.try_into().map_err(|err: toml::de::Error| {
            // A value of the wrong type: named with its file (the user's,
            // when it alone is wrong, else the system's), on one line.
            // Only on this error path is the user's file read again.
            let user_wrong = read_table(&user_path)
                .ok()
                .flatten()
                .is_some_and(|table| toml::Value::Table(table).try_into::<Config>().is_err());
            let file = if user_wrong { &user_path } else { &system_path };
            let why = err
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            anyhow::anyhow!("cannot read {}: {why}", file.display())
        })?;
        config.central.locked_url = locked_url;
        Ok(config)
    }

    /// The system's settings alone (when the user's file is broken: what
    /// the system locks still holds).
    pub fn system_only() -> Config {
        let Ok(Some(system)) = read_table(&system_path()) else {
            return Config::default();
        };
        let (merged, locked_url) = merge(Some(system), None);
        let mut config: Config = merged.try_into().unwrap_or_default();
        config.central.locked_url = locked_url;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Option<toml::Table> {
        Some(toml::from_str(text).unwrap())
    }

    #[test]
    fn the_user_overrides_the_system_except_the_central_url_and_redaction() {
        let (merged, locked) = merge(
            table("[central]\nurl = 'sys'\n[redact]\npatterns = ['a']\n[record]\nmax_command_bytes = 10\n"),
            table("[central]\nurl = 'mine'\nsync_every_secs = 5\n[redact]\nenabled = false\nallow = ['x']\npatterns = ['b']\n[record]\nmax_command_bytes = 20\n"),
        );
        let config: Config = merged.try_into().unwrap();
        assert_eq!(locked.as_deref(), Some("sys"));
        assert_eq!(config.central.url.as_deref(), Some("sys"));
        assert_eq!(config.central.sync_every_secs, 5);
        assert!(config.redact.enabled);
        assert!(config.redact.allow.is_empty());
        assert_eq!(config.redact.patterns, ["a", "b"]);
        assert_eq!(config.record.max_command_bytes, 20);
        // No system file: the user's as it is.
        let (merged, locked) = merge(None, table("[redact]\nenabled = false\n"));
        let config: Config = merged.try_into().unwrap();
        assert!(locked.is_none() && !config.redact.enabled);
    }
}
