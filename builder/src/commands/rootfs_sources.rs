//! Where `iso` and `disk` take each variant's root filesystem from:
//! `--rootfs DIR`, `--provider-image FILE`, or the provider image
//! `provider-image` wrote into the output folder.

use std::path::{Path, PathBuf};

use crate::definition::{LoadedDefinition, Variant};
use crate::error::{fail, Category};
use crate::iso::RootfsSource;

/// One source per variant, each checked to exist. `--rootfs` and
/// `--provider-image` name one root filesystem, so they take one variant.
pub fn for_variants<'a>(
    l: &LoadedDefinition,
    variants: &'a [Variant],
    rootfs: Option<&PathBuf>,
    provider_image: Option<&PathBuf>,
    out: &Path,
) -> anyhow::Result<Vec<(&'a Variant, RootfsSource)>> {
    if variants.len() > 1 && (provider_image.is_some() || rootfs.is_some()) {
        return Err(fail(
            Category::Usage,
            format!("{} builds {} variants; --provider-image and --rootfs take one: pick a version with --set kubernetes.version=...", l.path.display(), variants.len()),
        ));
    }
    let mut sources = Vec::new();
    for variant in variants {
        let source = match (rootfs, provider_image) {
            (Some(dir), _) => RootfsSource::Folder(dir.clone()),
            (None, Some(archive)) => RootfsSource::ProviderImage(archive.clone()),
            (None, None) => {
                RootfsSource::ProviderImage(out.join(format!("{}.oci.tar", variant.name)))
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
    Ok(sources)
}
