//! Thin handlers: parse arguments into domain calls and print results.

mod build;
mod bundle;
mod disk;
mod doctor;
mod iso;
mod iso_inspect;
mod layer;
mod plan;
mod provider_image;
mod render;
mod sign;
mod site_media;
mod unpack;
mod user_data;
mod user_data_source;
mod verify;

use clap::CommandFactory;

use crate::cli::{CacheCommand, Cli, Command, DiskAction, IsoAction, OutputFormat, PlanFormat};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let epoch = cli.source_date_epoch;
    let cache = cli.cache();
    match cli.command {
        Command::ProviderImage(a) => provider_image::run(a, epoch, cache),
        Command::Iso(c) => match c.action {
            Some(IsoAction::Show { iso, reveal }) => iso_inspect::show(&iso, reveal, cli.output),
            Some(IsoAction::Embed(a)) => iso_inspect::embed(&a),
            None => iso::run(c.build, epoch, cache),
        },
        Command::Disk(c) => match c.action {
            Some(DiskAction::Embed(a)) => disk::embed(&a, cli.output),
            None => disk::run(c.build, epoch, cache, cli.output),
        },
        Command::Verify {
            path,
            key,
            rebuild,
            user_data,
        } => {
            verify::run(&path, key.as_deref(), cli.output)?;
            if rebuild {
                verify::rebuild(&path, user_data.as_deref(), cache.as_deref(), cli.output)?;
            }
            Ok(())
        }
        Command::Sign { dir, key } => sign::run(&dir, &key, cli.output),
        Command::Doctor => doctor::run(),
        Command::Cache(CacheCommand::Prune { older_than, all }) => {
            let dir = cache.ok_or_else(|| {
                crate::error::fail(
                    crate::error::Category::Usage,
                    "no cache folder: give --cache-dir or set HOME",
                )
            })?;
            let age = if all {
                std::time::Duration::ZERO
            } else {
                std::time::Duration::from_secs(older_than * 86_400)
            };
            let (layers, layer_bytes) = crate::layer::cache::prune(&dir, age)?;
            let (roots, root_bytes) = crate::iso::rootfs::prune(&dir, age)?;
            let (boots, boot_bytes) = crate::iso::boot::prune(&dir, age)?;
            let (trees, tree_bytes) = crate::iso::lower_tree::prune(&dir, age)?;
            let (views, view_bytes) = crate::layer::lower::prune(&dir, age)?;
            println!(
                "{}: removed {views} base image views, {layers} cached layers, {trees} flattened trees, {roots} root filesystems and {boots} boot image sets, {} bytes",
                dir.display(),
                view_bytes + layer_bytes + tree_bytes + root_bytes + boot_bytes
            );
            Ok(())
        }
        Command::Bundle(c) => bundle::run(*c, epoch, cli.output),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "edgeforge",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?),
        // `--output json` on plan is `--format json`.
        Command::Plan {
            definitions,
            format,
        } => {
            let format = if cli.output == OutputFormat::Json {
                PlanFormat::Json
            } else {
                format
            };
            plan::run(&definitions, format)
        }
        Command::Build(a) => build::run(a, epoch, cache, cli.output),
        Command::Render(a) => render::run(a, epoch),
        Command::Layer(a) => layer::run(a, epoch),
        Command::Unpack(a) => unpack::run(a, epoch),
        Command::UserData(c) => user_data::run(c, epoch),
        Command::SiteMedia(a) => site_media::run(&a, epoch),
    }
}
