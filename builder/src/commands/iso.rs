use crate::cli::IsoArgs;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::iso::{self, RootfsSource};
use crate::output_set::OutputSet;
use crate::provider::BuildSettings;

use super::user_data_source;

pub fn run(a: IsoArgs, epoch: u64, cache: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let definition = a.definition.as_ref().ok_or_else(|| {
        fail(Category::Usage, "edgeforge iso needs IMAGE_YAML (or a subcommand: `iso show ISO`, `iso embed GOLDEN_ISO ...`)")
    })?;
    let mut l = LoadedDefinition::load(definition, &a.sets)?;
    if let Some(dir) = &a.secure_boot_keys {
        l.def.secure_boot_keys = Some(std::path::absolute(dir)?);
    }
    let user_data = user_data_source::for_iso(&a.user_data, &l, epoch, a.golden)?;
    let config = iso::Config::new(user_data.as_ref(), a.golden);
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
        cache,
        // No layers are built here.
        secrets: Vec::new(),
    };
    let mut sources = Vec::new();
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
        sources.push((variant, source));
    }
    // Every variant's ISO gets its final name once all are written.
    let mut set = OutputSet::open(&a.out)?;
    let mut artifacts = Vec::new();
    for (variant, source) in sources {
        artifacts.push(iso::build(
            &l, variant, &source, &config, &settings, &mut set,
        )?);
    }
    set.commit(None)?;
    for artifact in artifacts {
        println!(
            "{}\tsha256:{}\t{} bytes",
            artifact.path.display(),
            artifact.sha256,
            artifact.size
        );
    }
    Ok(())
}
