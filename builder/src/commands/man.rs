//! `man`: the main man page on stdout, or with `--out DIR` one page per
//! command and subcommand (`edgeforge.1`, `edgeforge-iso.1`,
//! `edgeforge-iso-embed.1`, ...), so every `edgeforge-X(1)` the pages
//! refer to is there.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;
use crate::output_set::OutputSet;

/// The command tree as the pages show it: `help` is a flag, not a page.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// A page, its footer naming edgeforge and its version (a subcommand has none of its own).
fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("edgeforge {}", env!("CARGO_PKG_VERSION")))
}

pub fn run(out: Option<&Path>) -> anyhow::Result<()> {
    let Some(dir) = out else {
        return Ok(page(command()).render(&mut std::io::stdout())?);
    };
    // Every page named together, or none (the folder's lock held meanwhile).
    let set = OutputSet::open(dir)?;
    let mut pages = Vec::new();
    render_pages(&command(), dir, &mut pages)?;
    set.commit_files(&pages)?;
    for (path, _) in pages {
        println!("{}", path.display());
    }
    Ok(())
}

/// The page of `cmd` and of every subcommand below it: (path in `dir`, roff).
fn render_pages(
    cmd: &clap::Command,
    dir: &Path,
    pages: &mut Vec<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<()> {
    let man = page(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)?;
    pages.push((dir.join(man.get_filename()), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_pages(sub, dir, pages)?;
    }
    Ok(())
}
