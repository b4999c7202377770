//! `tmux-audit completions SHELL` and `tmux-audit man`: generated from the
//! one definition of every command and flag in `cli.rs`.

use std::io;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell as Target;

use super::{Exit, Run};
use crate::cli::{Cli, Completions, Man, Shell};

impl Run for Completions {
    fn run(&self) -> Result<Exit> {
        let target = match self.shell {
            Shell::Bash => Target::Bash,
            Shell::Zsh => Target::Zsh,
            Shell::Fish => Target::Fish,
        };
        clap_complete::generate(
            target,
            &mut Cli::command(),
            "tmux-audit",
            &mut io::stdout().lock(),
        );
        Ok(Exit::Success)
    }
}

impl Run for Man {
    fn run(&self) -> Result<Exit> {
        clap_mangen::Man::new(Cli::command()).render(&mut io::stdout().lock())?;
        Ok(Exit::Success)
    }
}
