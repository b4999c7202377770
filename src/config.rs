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
    pub central: Central,
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
}

impl Default for Central {
    fn default() -> Central {
        Central {
            url: None,
            sync_every_secs: 10,
        }
    }
}

impl Central {
    /// The URL in effect: the file's, else `TMUX_AUDIT_CENTRAL_URL`.
    pub fn url(&self) -> Option<String> {
        self.url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| {
                std::env::var("TMUX_AUDIT_CENTRAL_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty())
            })
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
