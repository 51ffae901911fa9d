//! What the ISO needs from the root filesystem: `rootfs.squashfs`, the kernel,
//! the initrd, the image's signed EFI loaders and GRUB font, if any. For a provider
//! image these are cached by its manifest digest (with the compression and
//! epoch), so an ISO rebuilt with other user-data or boot settings skips the
//! flatten and mksquashfs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::packages::{self, Package};
use super::{efi, kernel, lower_tree, squashfs, Compression, RootfsSource};
use crate::entry_cache::{self, EntryCache};
use crate::io::Sha256Digest;
use crate::log::info;
use crate::oci::source::SourceImage;
use crate::progress::Progress;

/// Bump when the squashfs, the selection of boot files or `entry.json` changes.
const FORMAT: &str = "edgeforge-rootfs/v4";

pub struct RootfsParts {
    pub squashfs: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// shim and the signed CD GRUB, when the image carries them.
    pub signed: Option<(PathBuf, PathBuf)>,
    /// GRUB's `unicode.pf2`, when the image carries it.
    pub font: Option<PathBuf>,
    pub packages: Vec<Package>,
    /// The image reference a provider image archive names (its index's
    /// annotations); `None` for a folder.
    pub reference: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    signed: bool,
    font: bool,
    packages: Vec<Package>,
}

pub struct Prepare<'a> {
    pub sh: &'a Shell,
    /// For package URLs (`pkg:deb/<distribution>/...`).
    pub distribution: &'a str,
    pub arch: &'a str,
    pub compression: Compression,
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
                    &self.compression.to_string(),
                    &image.manifest_digest.to_string(),
                ]);
                let cache = self.cache.map(|c| EntryCache::new(c, KIND));
                let cached = match &cache {
                    Some(c) => lookup(c, &key)?,
                    None => None,
                };
                if let Some(parts) = cached {
                    info!(
                        "rootfs.squashfs ({}, cached for {})",
                        self.compression, image.manifest_digest
                    );
                    return Ok(RootfsParts {
                        reference: image.reference,
                        ..parts
                    });
                }
                let dir = self.work.join("rootfs");
                let stats = lower_tree::flatten_into(&image, self.cache, &dir, self.epoch)?;
                info!(
                    "flattened {} ({} layers, {} entries)",
                    archive.display(),
                    stats.layers,
                    stats.entries
                );
                let parts = self.squash_folder(&dir)?;
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
        let boot = kernel::find(rootfs)?;
        let squashfs = self.work.join("rootfs.squashfs");
        let progress = Progress::spinner(format!("rootfs.squashfs ({})", self.compression));
        squashfs::make(self.sh, rootfs, &squashfs, self.compression, self.epoch)?;
        progress.finish();
        Ok(RootfsParts {
            squashfs,
            kernel: boot.kernel,
            initrd: boot.initrd,
            signed: efi::signed_loaders(rootfs),
            font: FONTS.iter().map(|p| rootfs.join(p)).find(|p| p.is_file()),
            packages: packages::find(rootfs, self.distribution),
            reference: None,
        })
    }
}

/// Where images carry GRUB's font: Debian, Ubuntu and RHEL's grub packages, SUSE's.
const FONTS: [&str; 2] = ["usr/share/grub/unicode.pf2", "usr/share/grub2/unicode.pf2"];

const KIND: &str = "rootfs";
const FILES: [&str; 6] = [
    "rootfs.squashfs",
    "kernel",
    "initrd",
    "shim.efi",
    "grub.efi",
    "unicode.pf2",
];

fn lookup(cache: &EntryCache, key: &Sha256Digest) -> anyhow::Result<Option<RootfsParts>> {
    Ok(cache.lookup(key, &FILES[..3])?.map(from_entry))
}

fn from_entry(entry: entry_cache::Entry<Meta>) -> RootfsParts {
    let [squashfs, kernel, initrd, shim, grub, font] = FILES.map(|f| entry.dir.join(f));
    RootfsParts {
        squashfs,
        kernel,
        initrd,
        signed: entry.meta.signed.then_some((shim, grub)),
        font: entry.meta.font.then_some(font),
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
        (FILES[0], parts.squashfs.as_path()),
        (FILES[1], &parts.kernel),
        (FILES[2], &parts.initrd),
    ];
    if let Some((shim, grub)) = &parts.signed {
        files.extend([(FILES[3], shim.as_path()), (FILES[4], grub.as_path())]);
    }
    if let Some(font) = &parts.font {
        files.push((FILES[5], font));
    }
    let meta = Meta {
        signed: parts.signed.is_some(),
        font: parts.font.is_some(),
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
