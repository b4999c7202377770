//! `tmux-audit config`: where the configuration file is, and what is in effect.

use std::io::{self, Write};

use anyhow::Result;

use super::{Exit, Run};
use crate::cli::ConfigCmd;
use tmux_audit::config::{self, Config};
use tmux_audit::redact;

impl Run for ConfigCmd {
    fn run(&self) -> Result<Exit> {
        let path = config::path()?;
        let config = Config::load()?;
        let mut out = io::stdout().lock();
        let state = if path.exists() {
            ""
        } else {
            " (not there: the defaults below apply)"
        };
        writeln!(out, "# {}{state}", path.display())?;
        write!(out, "{}", toml::to_string(&config)?)?;
        for err in redact::redact(b"", &config.redact).broken {
            writeln!(
                out,
                "# SKIPPED, not in effect (the other patterns apply): {err:#}"
            )?;
            eprintln!(
                "tmux-audit: warning: {err:#}: skipped, the other patterns apply; fix or remove it"
            );
        }
        if config.redact.enabled {
            writeln!(
                out,
                "\n# built-in patterns, redacted to {}:",
                String::from_utf8_lossy(redact::MARK)
            )?;
            for builtin in redact::BUILTIN {
                writeln!(out, "#   {}: {}", builtin.name, builtin.regex)?;
            }
        }
        Ok(Exit::Success)
    }
}
