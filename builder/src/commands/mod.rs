//! Thin handlers: parse arguments into domain calls and print results.

mod build;
mod iso;
mod layer;
mod provider_image;
mod render;
mod unpack;
mod user_data;
mod user_data_source;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let epoch = cli.source_date_epoch;
    match cli.command {
        Command::ProviderImage(a) => provider_image::run(a, epoch),
        Command::Iso(a) => iso::run(a, epoch),
        Command::Build(a) => build::run(a, epoch),
        Command::Render(a) => render::run(a, epoch),
        Command::Layer(a) => layer::run(a, epoch),
        Command::Unpack(a) => unpack::run(a),
        Command::UserData(c) => user_data::run(c, epoch),
    }
}
