//! `tmux-audit completions SHELL` and `tmux-audit man`: generated from the
//! one definition of every command and flag in `cli.rs`.

use std::io;

use anyhow::{Context, Result};
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
            &mut public(Cli::command()),
            "tmux-audit",
            &mut io::stdout().lock(),
        );
        Ok(Exit::Success)
    }
}

/// The command without its hidden subcommands (`record`, `tmux-event`…,
/// run by the hooks, not by people): completions offer only the others.
fn public(cmd: clap::Command) -> clap::Command {
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("tmux-audit")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(subcommands)
}

impl Run for Man {
    fn run(&self) -> Result<Exit> {
        match &self.dir {
            // One page per command: the top page names `tmux-audit-search(1)`
            // and the others, which are made here too.
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot make {}", dir.display()))?;
                clap_mangen::generate_to(Cli::command(), dir)
                    .with_context(|| format!("cannot write the man pages in {}", dir.display()))?;
                println!(
                    "wrote the man pages of tmux-audit and its commands in {}",
                    dir.display()
                );
            }
            // `help` has no page of its own (generate_to leaves it out too).
            None => clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
                .render(&mut io::stdout().lock())?,
        }
        Ok(Exit::Success)
    }
}
