use crate::checksums;
use crate::cli::BuildArgs;
use crate::definition::LoadedDefinition;
use crate::iso::{self, RootfsSource};
use crate::provider::{self, file_name, renderer_for, BuildSettings};

use super::user_data_source;

pub fn run(a: BuildArgs, epoch: u64) -> anyhow::Result<()> {
    let l = LoadedDefinition::load(&a.def.definition, &a.def.sets)?;
    // Checked before the provider image so a bad document fails in seconds.
    let first = l.variants().remove(0);
    let user_data = user_data_source::resolve(&a.user_data, || renderer_for(&l, &first, epoch))?;
    let config = match (&user_data, a.golden) {
        (Some(ud), false) => iso::Config::Plain(ud),
        (ud, true) => iso::Config::Golden(ud.as_ref()),
        (None, false) => return Err(user_data_source::missing()),
    };
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
    };
    let images = provider::build(&l, &l.variants(), &settings)?;
    for image in &images {
        println!(
            "{}\tsha256:{}\t{} bytes\t{}",
            image.archive.display(),
            image.sha256,
            image.size,
            image.variant.reference
        );
    }
    for image in &images {
        let source = RootfsSource::ProviderImage(image.archive.clone());
        let artifact = iso::build(&l, &image.variant, &source, &config, &settings)?;
        checksums::record(&a.out, &[(file_name(&artifact.path), artifact.sha256)])?;
        println!(
            "{}\tsha256:{}\t{} bytes",
            artifact.path.display(),
            artifact.sha256,
            artifact.size
        );
    }
    println!("{}", a.out.join(checksums::SUMS).display());
    Ok(())
}
