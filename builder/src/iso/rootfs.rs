//! What the ISO needs from the root filesystem: `rootfs.squashfs` (or, for a
//! UKI ISO, the tree as a zstd cpio initrd), the kernel, the initrd, the
//! image's signed EFI loaders, systemd-boot and its UKI stub, os-release and
//! GRUB font, if any. For a provider
//! image these are cached by its manifest digest (with the compression and
//! epoch), so an ISO rebuilt with other user-data or boot settings skips the
//! flatten and mksquashfs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xshell::Shell;

use anyhow::Context;

use super::boot_files::{self, FONTS, OS_RELEASES, SYSTEMD_BOOT, UKI_STUB};
use super::packages::{self, Package};
use super::{cpio, efi, kernel, squashfs, Compression, RootfsSource};
use crate::entry_cache::{self, EntryCache};
use crate::io::Sha256Digest;
use crate::log::info;
use crate::oci::mem_tree::MemTree;
use crate::oci::source::SourceImage;
use crate::oci::{tree_cache, tree_tar};
use crate::progress::Progress;

/// Bump when the squashfs, the selection of boot files or `entry.json` changes.
const FORMAT: &str = "edgeforge-rootfs/v5";

/// What the root filesystem becomes on the medium.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RootImage {
    /// `rootfs.squashfs`, mounted by the live initramfs.
    Squashfs(Compression),
    /// A zstd newc cpio: a UKI's initrd, unpacked by the kernel as its root.
    Cpio,
}

impl std::fmt::Display for RootImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootImage::Squashfs(c) => write!(f, "rootfs.squashfs ({c})"),
            RootImage::Cpio => f.write_str("root filesystem initrd (zstd cpio)"),
        }
    }
}

pub struct RootfsParts {
    /// `rootfs.squashfs` or the root filesystem initrd (`RootImage`).
    pub root: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// shim and the signed CD GRUB, when the image carries them.
    pub signed: Option<(PathBuf, PathBuf)>,
    /// GRUB's `unicode.pf2`, when the image carries it.
    pub font: Option<PathBuf>,
    /// systemd-boot and its UKI stub (`systemd-boot-efi`), when the image carries them.
    pub systemd_boot: Option<(PathBuf, PathBuf)>,
    /// `/etc/os-release` (or `/usr/lib/os-release`), when present.
    pub os_release: Option<PathBuf>,
    pub packages: Vec<Package>,
    /// The image reference a provider image archive names (its index's
    /// annotations); `None` for a folder.
    pub reference: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    signed: bool,
    font: bool,
    systemd_boot: bool,
    os_release: bool,
    packages: Vec<Package>,
}

pub struct Prepare<'a> {
    pub sh: &'a Shell,
    /// For package URLs (`pkg:deb/<distribution>/...`).
    pub distribution: &'a str,
    pub arch: &'a str,
    pub image: RootImage,
    pub epoch: u64,
    pub cache: Option<&'a Path>,
    pub work: &'a Path,
}

impl Prepare<'_> {
    pub fn run(&self, source: &RootfsSource) -> anyhow::Result<RootfsParts> {
        match source {
            RootfsSource::Folder(dir) => self.squash_folder(dir),
            RootfsSource::ProviderImage(archive) => {
                let image = SourceImage::open(
                    &format!("oci-archive:{}", archive.display()),
                    Path::new("."),
                    self.arch,
                )?;
                let key = entry_cache::key(&[
                    FORMAT,
                    &self.epoch.to_string(),
                    &self.image.to_string(),
                    &image.manifest_digest.to_string(),
                ]);
                let cache = self.cache.map(|c| EntryCache::new(c, KIND));
                let cached = match &cache {
                    Some(c) => lookup(c, &key)?,
                    None => None,
                };
                if let Some(parts) = cached {
                    info!("{}, cached for {}", self.image, image.manifest_digest);
                    return Ok(RootfsParts {
                        reference: image.reference,
                        ..parts
                    });
                }
                let (mut tree, stats) =
                    tree_cache::flatten(&image, self.cache, self.work, self.epoch)?;
                tree.flush()
                    .context("writing the root filesystem's spool")?;
                info!(
                    "flattened {} ({} layers, {} entries)",
                    archive.display(),
                    stats.layers,
                    stats.entries
                );
                let parts = self.squash_tree(&tree)?;
                let parts = match cache {
                    Some(c) => store(&c, &key, &parts)?,
                    None => parts,
                };
                Ok(RootfsParts {
                    reference: image.reference,
                    ..parts
                })
            }
        }
    }

    fn squash_folder(&self, rootfs: &Path) -> anyhow::Result<RootfsParts> {
        let progress = Progress::spinner(self.image.to_string());
        let root = match self.image {
            RootImage::Squashfs(compression) => {
                let out = self.work.join("rootfs.squashfs");
                squashfs::make(self.sh, rootfs, &out, compression, self.epoch)?;
                out
            }
            RootImage::Cpio => {
                let out = self.work.join("rootfs.cpio.zst");
                cpio::write(rootfs, &out)?;
                out
            }
        };
        progress.finish();
        self.parts(rootfs, root)
    }

    /// As `squash_folder`, for a provider image's root filesystem: a
    /// squashfs is streamed from the model, and only the files the ISO
    /// takes from the image are written out (a UKI's initrd takes them all).
    fn squash_tree(&self, tree: &MemTree) -> anyhow::Result<RootfsParts> {
        let files = self.work.join("rootfs");
        let progress = Progress::spinner(self.image.to_string());
        let root = match self.image {
            RootImage::Squashfs(compression) => {
                let out = self.work.join("rootfs.squashfs");
                squashfs::from_tree(self.sh, tree, &out, compression, self.epoch)?;
                boot_files::extract(tree, &files, self.epoch)?;
                out
            }
            RootImage::Cpio => {
                let out = self.work.join("rootfs.cpio.zst");
                tree_tar::extract(tree, &files, None, self.epoch)?;
                cpio::write(&files, &out)?;
                out
            }
        };
        progress.finish();
        self.parts(&files, root)
    }

    /// What the ISO takes from the root filesystem in `rootfs` besides `root`.
    fn parts(&self, rootfs: &Path, root: PathBuf) -> anyhow::Result<RootfsParts> {
        let boot = kernel::find(rootfs)?;
        let first = |list: &[&str]| list.iter().map(|p| rootfs.join(p)).find(|p| p.is_file());
        // Symlinks resolved inside the root (os-release is one in Debian).
        let inside = |list: &[&str]| {
            list.iter()
                .find_map(|p| kernel::resolve(rootfs, Path::new(p)).ok())
        };
        let systemd_boot = match (inside(&[SYSTEMD_BOOT]), inside(&[UKI_STUB])) {
            (Some(boot), Some(stub)) => Some((boot, stub)),
            _ => None,
        };
        Ok(RootfsParts {
            root,
            kernel: boot.kernel,
            initrd: boot.initrd,
            signed: efi::signed_loaders(rootfs),
            font: first(&FONTS),
            systemd_boot,
            os_release: inside(&OS_RELEASES),
            packages: packages::find(rootfs, self.distribution),
            reference: None,
        })
    }
}

const KIND: &str = "rootfs";
const FILES: [&str; 9] = [
    "root",
    "kernel",
    "initrd",
    "shim.efi",
    "grub.efi",
    "unicode.pf2",
    "systemd-bootx64.efi",
    "linuxx64.efi.stub",
    "os-release",
];

fn lookup(cache: &EntryCache, key: &Sha256Digest) -> anyhow::Result<Option<RootfsParts>> {
    Ok(cache.lookup(key, &FILES[..3])?.map(from_entry))
}

fn from_entry(entry: entry_cache::Entry<Meta>) -> RootfsParts {
    let [root, kernel, initrd, shim, grub, font, sd_boot, stub, os_release] =
        FILES.map(|f| entry.dir.join(f));
    RootfsParts {
        root,
        kernel,
        initrd,
        signed: entry.meta.signed.then_some((shim, grub)),
        font: entry.meta.font.then_some(font),
        systemd_boot: entry.meta.systemd_boot.then_some((sd_boot, stub)),
        os_release: entry.meta.os_release.then_some(os_release),
        packages: entry.meta.packages,
        reference: None,
    }
}

fn store(
    cache: &EntryCache,
    key: &Sha256Digest,
    parts: &RootfsParts,
) -> anyhow::Result<RootfsParts> {
    let mut files = vec![
        (FILES[0], parts.root.as_path()),
        (FILES[1], &parts.kernel),
        (FILES[2], &parts.initrd),
    ];
    if let Some((shim, grub)) = &parts.signed {
        files.extend([(FILES[3], shim.as_path()), (FILES[4], grub.as_path())]);
    }
    if let Some(font) = &parts.font {
        files.push((FILES[5], font));
    }
    if let Some((boot, stub)) = &parts.systemd_boot {
        files.extend([(FILES[6], boot.as_path()), (FILES[7], stub.as_path())]);
    }
    if let Some(os_release) = &parts.os_release {
        files.push((FILES[8], os_release));
    }
    let meta = Meta {
        signed: parts.signed.is_some(),
        font: parts.font.is_some(),
        systemd_boot: parts.systemd_boot.is_some(),
        os_release: parts.os_release.is_some(),
        packages: parts.packages.clone(),
    };
    Ok(from_entry(cache.store(key, &files, meta)?))
}

/// Removes cached root filesystems not used for `older_than`. Returns the
/// entries and bytes removed.
pub fn prune(
    cache_dir: &Path,
    older_than: std::time::Duration,
    freed: &mut crate::freed::Freed,
) -> anyhow::Result<usize> {
    EntryCache::new(cache_dir, KIND).prune(older_than, freed)
}
