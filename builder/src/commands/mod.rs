//! Thin handlers: parse arguments into domain calls and print results.

mod build;
mod bundle;
mod cache;
mod disk;
mod doctor;
mod iso;
mod iso_inspect;
mod keys;
mod layer;
mod man;
mod plan;
mod provider_image;
mod push;
mod render;
mod report;
mod rootfs_sources;
#[cfg(test)]
mod schemas;
mod sign;
mod site_media;
mod unpack;
mod user_data;
mod user_data_source;
mod verify;

use clap::CommandFactory;

use crate::cli::{CacheCommand, Cli, Command, DiskAction, IsoAction, KeysCommand, OutputFormat};
use crate::error::{fail, Category};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let epoch = cli.source_date_epoch;
    let cache = cli.cache();
    crate::registry::configure(crate::registry::Settings {
        cache: cache.clone(),
        offline: cli.offline,
        authfile: cli.authfile.clone(),
        cert_dir: cli.cert_dir.clone(),
        tls_verify: cli.tls_verify,
        registries_conf: cli.registries_conf.clone(),
    });
    let output = cli.output;
    match cli.command {
        Command::ProviderImage(a) => provider_image::run(a, epoch, cache, output),
        Command::Iso(c) => match c.action {
            Some(IsoAction::Show { iso, reveal }) => iso_inspect::show(&iso, reveal, output),
            Some(IsoAction::Embed(a)) => iso_inspect::embed(&a, epoch, output),
            None => iso::run(c.build, epoch, cache, output),
        },
        Command::Disk(c) => match c.action {
            Some(DiskAction::Embed(a)) => disk::embed(&a, epoch, output),
            None => disk::run(c.build, epoch, cache, output),
        },
        Command::Verify {
            path,
            key,
            rebuild,
            user_data,
        } => {
            let rebuild = rebuild.then_some((user_data.as_deref(), cache.as_deref()));
            verify::run(&path, key.as_deref(), rebuild, output)
        }
        Command::Push(a) => push::run(&a, output),
        Command::Sign { dir, key } => sign::run(&dir, &key, output),
        Command::Doctor => doctor::run(output),
        Command::Cache(CacheCommand::Prune { older_than, all }) => {
            cache::prune(cache, older_than, all, output)
        }
        Command::Bundle(c) => bundle::run(*c, epoch, output),
        Command::Completions { .. } | Command::Man { .. } if output == OutputFormat::Json => Err(fail(
            Category::Usage,
            "completions and man print shell code and roff; --output json does not apply to them",
        )),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "edgeforge",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { out } => man::run(out.as_deref()),
        Command::Plan {
            definitions,
            format,
        } => plan::run(&definitions, plan::format_for(format, output)?),
        Command::Build(a) => build::run(a, epoch, cache, output),
        Command::Render(a) => render::run(a, epoch, output),
        Command::Layer(a) => layer::run(a, epoch, output),
        Command::Unpack(a) => unpack::run(a, epoch, output),
        Command::UserData(c) => user_data::run(c, epoch, output),
        Command::SiteMedia(a) => site_media::run(&a, epoch, output),
        Command::Keys(KeysCommand::Generate(a)) => keys::generate(&a, epoch, output),
    }
}
