//! The optional configuration file, `$XDG_CONFIG_HOME/tmux-audit/config.toml`.
//! Read only when it exists; everything in it has a default.
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
}

/// `[forward]`: where records and tmux events also go (see `forward.rs`),
/// sent by `tmux-audit forward` and the background merge, never by the
/// prompt's own process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forward {
    /// `unix:/dev/log`, `udp://HOST:PORT` or `tcp://HOST:PORT`.
    pub syslog: Option<String>,
    /// journald's native socket, `/run/systemd/journal/socket`.
    pub journald: Option<String>,
    /// A message's limit in bytes [default: 8192, UDP 2048, journald 61440].
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capture {
    /// `init tmux` pipes every pane's output into `tmux-audit capture`.
    pub enabled: bool,
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

pub fn path() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "tmux-audit")
        .context("cannot find the home directory")?;
    Ok(dirs.config_dir().join("config.toml"))
}

impl Config {
    /// The file's settings, or the defaults when there is no file.
    pub fn load() -> Result<Config> {
        let path = path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("cannot read {}", path.display()))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}
