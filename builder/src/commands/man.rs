//! `man`: the main man page on stdout, or with `--out DIR` one page per
//! command and subcommand (`edgeforge.1`, `edgeforge-iso.1`,
//! `edgeforge-iso-embed.1`, ...), so every `edgeforge-X(1)` the pages
//! refer to is there.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::io::AtomicFile;

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
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    write_pages(&command(), dir, &mut written)?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// The page of `cmd` and of every subcommand below it, each written whole
/// (a temporary file renamed into place).
fn write_pages(
    cmd: &clap::Command,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let man = page(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)?;
    let path = dir.join(man.get_filename());
    AtomicFile::write(&path, &page, 0o644)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
