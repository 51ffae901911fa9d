//! edgeforge: builds edge appliance provider images and installer ISOs.

mod bundle;
mod checksums;
mod cli;
mod commands;
mod definition;
mod disk;
mod entry_cache;
mod error;
mod freed;
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
mod preflight;
mod progress;
mod provider;
mod registry;
mod release;
mod render;
mod safe_path;
mod source_files;
mod trusted_boot;
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
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    log::set_level(if cli.quiet {
        0
    } else if cli.verbose {
        2
    } else {
        1
    });
    let output = cli.output;
    if let Err(e) = commands::run(cli) {
        match output {
            // One object on one line, the last on stderr; stdout stays empty.
            cli::OutputFormat::Json => eprintln!("{}", error::to_json(&e)),
            cli::OutputFormat::Text => eprintln!("edgeforge: error: {e:#}"),
        }
        std::process::exit(error::category_of(&e).exit_code());
    }
}

/// A command line clap refused: its message, or with `--output json` the
/// same as a JSON error (exit 2). Help and version print as usual.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args().collect();
    let json = {
        args.windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
            || args.iter().any(|a| a == "--output=json")
    };
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    // A token on the command line is refused (exit 8) whatever else is wrong
    // with the line: it is in the shell history already, and the exit code
    // must not depend on whether the rest of the line was complete.
    let token_given = args.iter().enumerate().any(|(i, a)| {
        a.starts_with("--token=")
            || (a == "--token" && args.get(i + 1).is_some_and(|v| !v.starts_with('-')))
    });
    if token_given && !informational {
        let err = user_data::command_line_token_refused();
        if json {
            eprintln!("{}", error::to_json(&err));
        } else {
            eprintln!("edgeforge: error: {err:#}");
        }
        std::process::exit(error::Category::SecretRefused.exit_code());
    }
    if !json || informational {
        e.exit();
    }
    // clap's message up to its usage lines, on one line; where clap would
    // print the help instead (`cache` alone), what is missing.
    let rendered = match e.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "error: a subcommand or argument is missing; see --help".to_string()
        }
        _ => e.render().to_string(),
    };
    let message = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_start_matches("error: ").to_string();
    let err = error::fail(error::Category::Usage, message);
    eprintln!("{}", error::to_json(&err));
    std::process::exit(error::Category::Usage.exit_code());
}
