//! `tmux-audit central init`: the central schema and roles, made or
//! upgraded (or shown with --print-sql).

use std::io::Write;

use anyhow::Result;

use super::{Exit, Run};
use crate::cli::{CentralAction, CentralCmd};
use tmux_audit::central::{self, schema};
use tmux_audit::config::Config;

impl Run for CentralCmd {
    fn run(&self) -> Result<Exit> {
        match &self.action {
            CentralAction::Init(init) => {
                if init.print_sql {
                    std::io::stdout().write_all(schema::sql(0).as_bytes())?;
                    return Ok(Exit::Success);
                }
                let url = match &init.url {
                    Some(url) => Some(url.clone()),
                    None => Config::load()?.central.reading_url(),
                };
                let target = central::target(url)?;
                let mut client = target.connect()?;
                let (before, now) = schema::init(&mut client)?;
                let what = if before == now {
                    format!("the central schema is up to date (version {now})")
                } else if before == 0 {
                    format!("created the central schema (version {now})")
                } else {
                    format!("upgraded the central schema from version {before} to {now}")
                };
                println!(
                    "{what} in {}; monthly partitions made to 12 months ahead",
                    target.describe()
                );
                Ok(Exit::Success)
            }
        }
    }
}
