//! `cairn generate`: shell completions and manual pages, made from the
//! command line's own definition, so they never drift from `--help`.

use anyhow::Context as _;
use clap::Command;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  cairn generate completions bash > /etc/bash_completion.d/cairn
  cairn generate completions zsh > \"${fpath[1]}/_cairn\"
  cairn generate completions fish > ~/.config/fish/completions/cairn.fish
  cairn generate man /usr/local/share/man/man1")]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Print the completion script for SHELL to standard output.
    Completions {
        /// The shell: bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages into DIR (created if missing): cairn.1, and
    /// one per command, such as cairn-backup.1 and cairn-key-add.1.
    Man {
        /// The folder to write the pages to.
        dir: PathBuf,
    },
}

/// Writes what `args` asks for, of the command line `cli`.
pub fn run(args: Args, mut cli: Command) -> anyhow::Result<u8> {
    match args.what {
        What::Completions { shell } => {
            clap_complete::generate(shell, &mut cli, "cairn", &mut std::io::stdout());
        }
        What::Man { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            // Global options are copied into every command's page.
            cli.build();
            write_pages(&cli, "cairn", &dir)?;
        }
    }
    Ok(0)
}

/// Writes the page of `command`, named `name`, and those of its commands.
fn write_pages(command: &Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let page = command.clone().display_name(name.to_string());
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page).render(&mut bytes)?;
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
