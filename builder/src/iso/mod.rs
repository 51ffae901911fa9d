//! The installer ISO stage: the provider image's flattened root filesystem
//! becomes `rootfs.squashfs`, with the kernel, initrd, GRUB for BIOS and UEFI,
//! the user-data at `/config.yaml`, and the rendered `overlays.iso`, written
//! by xorriso in the layout strict UEFI firmware and USB sticks boot.

pub mod boot;
mod boot_files;
pub mod cidata;
pub mod content;
mod cpio;
pub(crate) mod efi;
pub mod embed;
pub mod grub;
mod kernel;
pub mod menu;
pub mod packages;
pub mod reader;
pub mod reserved;
pub mod rootfs;
mod squashfs;
mod squashfs_root;
mod uki_esp;
mod xorriso;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::definition::{BootMode, LoadedDefinition, Variant};
use crate::error::{fail, Category};
use crate::host_tools;
use crate::io::Sha256Digest;
use crate::log::info;
use crate::output_set::OutputSet;
use crate::provider::{renderer_for, BuildSettings};
use crate::trusted_boot::keys::KeySet;
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

/// The ISO file for `variant`: `<iso_name>.iso`, or when the definition
/// builds several variants `<iso_name>` followed by the tag's facts it does
/// not say already (`palette-edge-installer-ubuntu-22.04-k3s` +
/// `k3s-1.29.9-v4.5.0` -> `palette-edge-installer-ubuntu-22.04-k3s-1.29.9-v4.5.0.iso`).
pub fn iso_path(l: &LoadedDefinition, variant: &Variant, out_dir: &Path) -> PathBuf {
    if l.variants().len() > 1 {
        let name = crate::definition::name_with(&l.def.iso_name, &variant.facts);
        out_dir.join(format!("{name}.iso"))
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

/// What the ISO stage checks before anything is written (called by the
/// commands before their preflight): the architecture, and every bundle of
/// `iso.bundles` verified as `bundle verify` does, so a damaged one or a
/// file that is no bundle never ships to a site.
pub fn check_inputs(l: &LoadedDefinition) -> anyhow::Result<()> {
    if l.def.arch.as_str() != "amd64" {
        return Err(l.field_error(
            "arch",
            "installer ISOs are built for amd64 only (BIOS + UEFI x86_64 GRUB); arm64 definitions build provider images (`edgeforge provider-image`), not ISOs",
        ));
    }
    if let Some(keys) = trusted_boot_keys(l)? {
        host_tools::require(&host_tools::UKI)?;
        keys.warn_if_expired()?;
    }
    for (i, b) in l.def.iso.bundles.iter().enumerate() {
        let path = l.resolve(b);
        crate::bundle::verify(&path).with_context(|| {
            format!(
                "{}: iso.bundles[{i}] {} is not a sound bundle (`edgeforge bundle verify` says why; rebuild it with `edgeforge bundle`)",
                l.path.display(),
                path.display()
            )
        })?;
    }
    Ok(())
}

/// About how many bytes building one ISO from a source of `source_bytes`
/// (a provider image archive or a root filesystem folder) writes in the
/// output folder: the flattened tree, the squashfs and the image (each at
/// most about the source's size), and the bundles (staged, then in the image).
pub fn estimate(l: &LoadedDefinition, source_bytes: u64) -> u64 {
    let bundles: u64 = l
        .def
        .iso
        .bundles
        .iter()
        .map(|b| crate::preflight::size_of(&l.resolve(b)))
        .sum();
    3 * source_bytes + 2 * bundles
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
    let keys = trusted_boot_keys(l)?;
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
        image: match keys {
            Some(_) => rootfs::RootImage::Cpio,
            None => rootfs::RootImage::Squashfs(l.def.iso.compression),
        },
        epoch: s.epoch,
        cache: s.cache.as_deref(),
        work: work.path(),
    }
    .run(source)?;

    let stage = work.path().join("iso");
    let mut renderer = renderer_for(l, variant, s.epoch)?;
    // The ISO names the image it was made from (`--provider-image X`), not
    // the one the definition would build.
    if let Some(found) = &parts.reference {
        let (reference, tag) = reference_and_tag(found, l);
        if reference != variant.reference {
            crate::log::warning!(
                "the provider image names {reference}, the definition {}: the ISO names {reference}",
                variant.reference
            );
            renderer.insert(
                "image",
                &serde_json::json!({"tag": tag, "reference": reference, "name": variant.name}),
            )?;
        }
    }
    let iso_trees: Vec<PathBuf> = l.def.overlays.iso.iter().map(|t| l.resolve(t)).collect();
    renderer.render_trees(&iso_trees, &stage)?;

    fs::create_dir_all(stage.join("boot")).context("creating the ISO staging tree")?;
    let layout = match &keys {
        Some(keys) => {
            let esp = work.path().join("esp.img");
            stage_uki(l, keys, &parts, &sh, &esp, work.path(), s.epoch)?;
            xorriso::Layout::UefiOnly(esp)
        }
        None => {
            stage_grub(&parts, &renderer, &sh, &stage, work.path(), s)?;
            xorriso::Layout::Hybrid
        }
    };

    let (config_bytes, carries_user_data) = match config {
        Config::Plain(ud) => (ud.bytes().to_vec(), true),
        Config::Golden(ud) => (
            reserved::fill(
                ud.map_or(reserved::EMPTY, |u| u.bytes()),
                l.def.iso.reserved_area.0 as usize,
            )?,
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
    let (sha256, size, file) = xorriso::write(&sh, &stage, &target, s.epoch, mode, layout)?;
    set.stage(file, sha256);
    Ok(IsoArtifact {
        path: target,
        sha256,
        size,
        content,
        packages: parts.packages,
    })
}

/// A full reference (`ttl.sh/ubuntu:k3s-1.30.5-v4.5.0`) and its tag, from
/// an archive's annotation: a reference, or a bare tag (an OCI layout's
/// `ref.name`) taken to be in the definition's repository.
fn reference_and_tag(found: &str, l: &LoadedDefinition) -> (String, String) {
    let name_end = found.rfind('/').map_or(0, |i| i + 1);
    match found[name_end..].rsplit_once(':') {
        Some((_, tag)) if name_end > 0 => (found.to_string(), tag.to_string()),
        _ if name_end > 0 => (format!("{found}:latest"), "latest".into()),
        _ => (
            format!("{}/{}:{found}", l.def.registry, l.def.repository),
            found.to_string(),
        ),
    }
}

/// GRUB mode: kernel, initrd and `rootfs.squashfs` on the medium, GRUB's
/// menu and font, the BIOS and UEFI boot images.
fn stage_grub(
    parts: &rootfs::RootfsParts,
    renderer: &crate::render::Renderer,
    sh: &xshell::Shell,
    stage: &Path,
    work: &Path,
    s: &BuildSettings,
) -> anyhow::Result<()> {
    link_or_copy(&parts.kernel, &stage.join("boot/kernel"))?;
    link_or_copy(&parts.initrd, &stage.join("boot/initrd"))?;
    link_or_copy(&parts.root, &stage.join("rootfs.squashfs"))?;
    // The menu loads the font when present (templates/grub.cfg.tera); one
    // from overlays.iso wins over the image's.
    let font = stage.join("boot/grub2/fonts/unicode.pf2");
    if let (Some(from), false) = (&parts.font, font.exists()) {
        fs::create_dir_all(font.parent().expect("has a parent"))
            .context("creating boot/grub2/fonts")?;
        link_or_copy(from, &font)?;
    }
    let configs = grub::write_configs(renderer, stage, work)?;
    boot::BootImages {
        sh,
        configs: &configs,
        signed: parts.signed.clone(),
        epoch: s.epoch,
        cache: s.cache.as_deref(),
        work,
    }
    .write(&stage.join("boot"))?;

    Ok(())
}

/// The key set a `boot: uki` definition signs with; `None` in GRUB mode.
fn trusted_boot_keys(l: &LoadedDefinition) -> anyhow::Result<Option<KeySet>> {
    match (l.def.boot, &l.def.secure_boot_keys) {
        (BootMode::Grub, None) => Ok(None),
        (BootMode::Grub, Some(_)) => Err(l.field_error(
            "secure_boot_keys",
            "keys sign UKI ISOs only: set boot: uki (or --set boot=uki), or drop secure_boot_keys",
        )),
        (BootMode::Uki, None) => Err(fail(
            Category::Usage,
            format!("{}: boot: uki needs a key set: give --secure-boot-keys DIR or secure_boot_keys (make one with `edgeforge keys generate NAME --out DIR`)", l.path.display()),
        )),
        (BootMode::Uki, Some(dir)) => KeySet::open(&l.resolve(dir)).map(Some),
    }
}

/// UKI mode: the ESP (written to `esp`, appended as the ISO's EFI System
/// Partition) with systemd-boot and the signed UKIs (root filesystem
/// inside); nothing else on the medium boots, and BIOS boot does not exist.
fn stage_uki(
    l: &LoadedDefinition,
    keys: &KeySet,
    parts: &rootfs::RootfsParts,
    sh: &xshell::Shell,
    esp: &Path,
    work: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    let host = Path::new(host_tools::SYSTEMD_BOOT_EFI.what);
    let (systemd_boot, stub) = match &parts.systemd_boot {
        Some((b, s)) => (b.clone(), s.clone()),
        None => {
            host_tools::require(&[&host_tools::SYSTEMD_BOOT_EFI])?;
            (
                host.join("systemd-bootx64.efi"),
                host.join("linuxx64.efi.stub"),
            )
        }
    };
    info!(
        "EFI loader: systemd-boot {} with the UKI stub {}, signed with key set {} (db certificate sha256:{})",
        systemd_boot.display(),
        stub.display(),
        keys.meta.name,
        keys.db_fingerprint()
    );
    let os_release = parts.os_release.as_deref().ok_or_else(|| {
        fail(
            Category::InvalidInput,
            "the root filesystem has no /etc/os-release or /usr/lib/os-release; a UKI carries it as .osrel",
        )
    })?;
    let menu = menu::Menu::new(&l.def.iso).map_err(|e| l.field_error(&e.field, e.message))?;
    uki_esp::Esp {
        sh,
        keys,
        systemd_boot: &systemd_boot,
        stub: &stub,
        os_release,
        kernel: &parts.kernel,
        root: &parts.root,
        menu: &menu,
        iso_name: &l.def.iso_name,
        work,
        epoch,
    }
    .write(esp)
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
