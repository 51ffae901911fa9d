use crate::checksums;
use crate::cli::BuildArgs;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::iso::{self, RootfsSource};
use crate::provider::{self, file_name, BuildSettings};

use super::user_data_source;

pub fn run(a: BuildArgs, epoch: u64) -> anyhow::Result<()> {
    let l = LoadedDefinition::load(&a.def.definition, &a.def.sets)?;
    // Checked before the provider image so a bad document fails in seconds.
    let user_data = user_data_source::for_iso(&a.user_data, &l, epoch, a.golden)?;
    let config = iso::Config::new(user_data.as_ref(), a.golden);
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
    };
    let mut variants = l.variants();
    if let Some(name) = &a.variant {
        variants.retain(|v| &v.name == name);
        if variants.is_empty() {
            let known: Vec<String> = l.variants().into_iter().map(|v| v.name).collect();
            return Err(fail(
                Category::Usage,
                format!(
                    "{} has no variant `{name}`; it has: {}",
                    l.path.display(),
                    known.join(", ")
                ),
            ));
        }
    }
    let images = provider::build(&l, &variants, &settings)?;
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
