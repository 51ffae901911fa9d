use crate::checksums;
use crate::cli::IsoArgs;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::iso::{self, RootfsSource};
use crate::provider::{file_name, BuildSettings};

use super::user_data_source;

pub fn run(a: IsoArgs, epoch: u64) -> anyhow::Result<()> {
    let l = LoadedDefinition::load(&a.def.definition, &a.def.sets)?;
    let user_data = user_data_source::resolve(&a.user_data, &l, epoch)?;
    let variants = l.variants();
    if variants.len() > 1 && (a.provider_image.is_some() || a.rootfs.is_some()) {
        return Err(fail(
            Category::Usage,
            format!("{} builds {} variants; --provider-image and --rootfs take one: pick a version with --set kubernetes.version=...", l.path.display(), variants.len()),
        ));
    }
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
    };
    for variant in &variants {
        let source = match (&a.rootfs, &a.provider_image) {
            (Some(dir), _) => RootfsSource::Folder(dir.clone()),
            (None, Some(archive)) => RootfsSource::ProviderImage(archive.clone()),
            (None, None) => {
                RootfsSource::ProviderImage(a.out.join(format!("{}.oci.tar", variant.name)))
            }
        };
        let (RootfsSource::ProviderImage(p) | RootfsSource::Folder(p)) = &source;
        if !p.exists() {
            return Err(fail(
                Category::InvalidInput,
                format!("{} does not exist: run `edgeforge provider-image` first, or `edgeforge build` for both", p.display()),
            ));
        }
        let artifact = iso::build(&l, variant, &source, &user_data, &settings)?;
        checksums::record(&a.out, &[(file_name(&artifact.path), artifact.sha256)])?;
        println!(
            "{}\tsha256:{}\t{} bytes",
            artifact.path.display(),
            artifact.sha256,
            artifact.size
        );
    }
    Ok(())
}
