//! The installer ISO stage: the provider image's flattened root filesystem
//! becomes `rootfs.squashfs`, with the kernel, initrd, GRUB for BIOS and UEFI,
//! the user-data at `/config.yaml`, and the rendered `overlays.iso`, written
//! by xorriso in the layout strict UEFI firmware and USB sticks boot.

pub mod boot;
pub mod cidata;
pub mod content;
pub(crate) mod efi;
pub mod embed;
pub mod grub;
mod kernel;
pub mod lower_tree;
pub mod menu;
pub mod packages;
pub mod reader;
pub mod reserved;
pub mod rootfs;
mod squashfs;
mod xorriso;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::definition::{LoadedDefinition, Variant};
use crate::host_tools;
use crate::io::Sha256Digest;
use crate::output_set::OutputSet;
use crate::provider::{renderer_for, BuildSettings};
use crate::user_data::UserData;

pub use squashfs::Compression;

/// Where the root filesystem comes from.
pub enum RootfsSource {
    /// A provider image archive, flattened first.
    ProviderImage(PathBuf),
    /// An already flattened root filesystem folder.
    Folder(PathBuf),
}

pub struct IsoArtifact {
    pub path: PathBuf,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub content: Vec<content::ContentFile>,
    pub packages: Vec<packages::Package>,
}

/// The ISO file for `variant`: `<iso_name>.iso`, or `<iso_name>-<tag>.iso`
/// when the definition builds several variants.
pub fn iso_path(l: &LoadedDefinition, variant: &Variant, out_dir: &Path) -> PathBuf {
    if l.variants().len() > 1 {
        out_dir.join(format!("{}-{}.iso", l.def.iso_name, variant.tag))
    } else {
        out_dir.join(format!("{}.iso", l.def.iso_name))
    }
}

/// What goes to `/config.yaml`.
pub enum Config<'a> {
    /// The user-data as it is.
    Plain(&'a UserData),
    /// A golden ISO: a fixed-size reserved area, with or without user-data.
    Golden(Option<&'a UserData>),
}

impl<'a> Config<'a> {
    /// A plain ISO needs user-data (checked by the caller); a golden one may have none.
    pub fn new(user_data: Option<&'a UserData>, golden: bool) -> Config<'a> {
        match (user_data, golden) {
            (Some(ud), false) => Config::Plain(ud),
            (ud, _) => Config::Golden(ud),
        }
    }
}

/// Writes the ISO of `variant` and stages it in `set`.
pub fn build(
    l: &LoadedDefinition,
    variant: &Variant,
    source: &RootfsSource,
    config: &Config,
    s: &BuildSettings,
    set: &mut OutputSet,
) -> anyhow::Result<IsoArtifact> {
    if l.def.arch.as_str() != "amd64" {
        return Err(l.field_error(
            "arch",
            "installer ISOs are built for amd64 only (BIOS + UEFI x86_64 GRUB)",
        ));
    }
    host_tools::require(&host_tools::BUILD)?;
    let target = iso_path(l, variant, &s.out_dir);
    let work = tempfile::Builder::new()
        .prefix(".edgeforge-work-")
        .tempdir_in(&s.out_dir)
        .with_context(|| format!("creating a work folder in {}", s.out_dir.display()))?;
    let sh = host_tools::shell()?;

    let parts = rootfs::Prepare {
        sh: &sh,
        distribution: &l.def.os.distribution,
        arch: l.def.arch.as_str(),
        compression: l.def.iso.compression,
        epoch: s.epoch,
        cache: s.cache.as_deref(),
        work: work.path(),
    }
    .run(source)?;

    let stage = work.path().join("iso");
    let mut renderer = renderer_for(l, variant, s.epoch)?;
    let iso_trees: Vec<PathBuf> = l.def.overlays.iso.iter().map(|t| l.resolve(t)).collect();
    renderer.render_trees(&iso_trees, &stage)?;

    fs::create_dir_all(stage.join("boot")).context("creating the ISO staging tree")?;
    link_or_copy(&parts.kernel, &stage.join("boot/kernel"))?;
    link_or_copy(&parts.initrd, &stage.join("boot/initrd"))?;
    link_or_copy(&parts.squashfs, &stage.join("rootfs.squashfs"))?;
    // The menu loads the font when present (templates/grub.cfg.tera); one
    // from overlays.iso wins over the image's.
    let font = stage.join("boot/grub2/fonts/unicode.pf2");
    if let (Some(from), false) = (&parts.font, font.exists()) {
        fs::create_dir_all(font.parent().expect("has a parent"))
            .context("creating boot/grub2/fonts")?;
        link_or_copy(from, &font)?;
    }
    let configs = grub::write_configs(&renderer, &stage, work.path())?;
    boot::BootImages {
        sh: &sh,
        configs: &configs,
        signed: parts.signed.clone(),
        epoch: s.epoch,
        cache: s.cache.as_deref(),
        work: work.path(),
    }
    .write(&stage.join("boot"))?;

    let (config_bytes, carries_user_data) = match config {
        Config::Plain(ud) => (ud.bytes().to_vec(), true),
        Config::Golden(ud) => (
            reserved::fill(ud.map_or(reserved::EMPTY, |u| u.bytes()), reserved::SIZE)?,
            ud.is_some(),
        ),
    };
    write_private(&stage.join("config.yaml"), &config_bytes)?;
    if let Some(p) = &l.def.iso.edge_custom_config {
        copy_file(&l.resolve(p), &stage.join(".edge_custom_config.yaml"))?;
    }
    if let Some(p) = &l.def.iso.cluster_definition {
        let src = l.resolve(p);
        let name = src.file_name().expect("validated as a file");
        let dir = stage.join("opt/spectrocloud/clusterconfig");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        copy_file(&src, &dir.join(name))?;
    }

    let bundles: Vec<PathBuf> = l.def.iso.bundles.iter().map(|b| l.resolve(b)).collect();
    let content = content::stage(
        &bundles,
        &stage.join("opt/spectrocloud/content"),
        l.def.iso.split_size,
    )?;

    // An image that holds user-data may hold a token: readable by its owner only.
    let mode = if carries_user_data { 0o600 } else { 0o644 };
    let (sha256, size, file) = xorriso::write(&sh, &stage, &target, s.epoch, mode)?;
    set.stage(file, sha256);
    Ok(IsoArtifact {
        path: target,
        sha256,
        size,
        content,
        packages: parts.packages,
    })
}

/// Creates `path` with mode 0600 (it may hold a token).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn link_or_copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if fs::hard_link(from, to).is_err() {
        copy_file(from, to)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
    Ok(())
}
