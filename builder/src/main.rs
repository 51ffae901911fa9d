//! edgeforge: builds edge appliance provider images and installer ISOs.

mod bundle;
mod checksums;
mod cli;
mod commands;
mod definition;
mod disk;
mod entry_cache;
mod error;
mod fs_meta;
mod host_tools;
mod inputs;
mod io;
mod iso;
mod layer;
mod leftovers;
mod limits;
mod log;
mod manifest;
mod mask;
mod oci;
mod output_set;
mod progress;
mod provider;
mod release;
mod render;
mod safe_path;
mod source_files;
mod tree_digest;
mod user_data;
mod yaml;

use clap::Parser;

fn main() {
    // Rust ignores SIGPIPE, so `edgeforge plan | head` would panic on a
    // closed stdout; a command-line tool should just stop, as cat does.
    // SAFETY: called before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    log::set_level(if cli.quiet {
        0
    } else if cli.verbose {
        2
    } else {
        1
    });
    if let Err(e) = commands::run(cli) {
        eprintln!("edgeforge: error: {e:#}");
        std::process::exit(error::category_of(&e).exit_code());
    }
}
