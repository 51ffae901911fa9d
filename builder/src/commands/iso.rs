use crate::checksums;
use crate::cli::IsoArgs;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::iso::{self, RootfsSource};
use crate::provider::{file_name, renderer_for, BuildSettings};

use super::user_data_source;

pub fn run(a: IsoArgs, epoch: u64) -> anyhow::Result<()> {
    let definition = a.definition.as_ref().ok_or_else(|| {
        fail(Category::Usage, "edgeforge iso needs IMAGE_YAML (or a subcommand: `iso show ISO`, `iso embed GOLDEN_ISO ...`)")
    })?;
    let l = LoadedDefinition::load(definition, &a.sets)?;
    let first = l.variants().remove(0);
    let user_data = user_data_source::resolve(&a.user_data, || renderer_for(&l, &first, epoch))?;
    let config = match (&user_data, a.golden) {
        (Some(ud), false) => iso::Config::Plain(ud),
        (ud, true) => iso::Config::Golden(ud.as_ref()),
        (None, false) => return Err(user_data_source::missing()),
    };
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
        let artifact = iso::build(&l, variant, &source, &config, &settings)?;
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
