//! The boot images in `/boot`: GRUB's El Torito image (BIOS), the FAT image
//! `uefi.img` (UEFI) with its loaders, and the hybrid MBR code. Building them
//! runs grub-mkimage and five mtools commands, a fifth of a small build, yet
//! they depend only on the host's GRUB and mtools, the rendered GRUB configs,
//! the loaders and the epoch: they are cached by the digest of those.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use xshell::Shell;

use super::{efi, grub};
use crate::entry_cache::{self, EntryCache};
use crate::host_tools;
use crate::io::Sha256Digest;
use crate::log::info;

/// Bump when the commands that build the images change.
const FORMAT: &str = "edgeforge-boot/v2";
const KIND: &str = "boot";
const FILES: [&str; 2] = ["eltorito.img", "uefi.img"];

pub struct BootImages<'a> {
    pub sh: &'a Shell,
    pub configs: &'a grub::Configs,
    /// shim and the signed CD GRUB from the image, when it carries them.
    pub signed: Option<(PathBuf, PathBuf)>,
    pub epoch: u64,
    pub cache: Option<&'a Path>,
    pub work: &'a Path,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    /// How the EFI loader was chosen, for the log.
    loader: String,
}

impl BootImages<'_> {
    /// Writes `eltorito.img`, `uefi.img` and `boot_hybrid.img` into `boot_dir`.
    pub fn write(&self, boot_dir: &Path) -> anyhow::Result<()> {
        grub::copy_hybrid_mbr(boot_dir)?;
        let key = self.key()?;
        let cache = self.cache.map(|c| EntryCache::new(c, KIND));
        let cached = match &cache {
            Some(c) => c.lookup::<Meta>(&key, &FILES)?,
            None => None,
        };
        let entry = match cached {
            Some(entry) => {
                info!("EFI loader: {} (boot images cached)", entry.meta.loader);
                entry.dir
            }
            None => {
                let Built {
                    eltorito,
                    uefi,
                    meta,
                } = self.build()?;
                let files = [(FILES[0], eltorito.as_path()), (FILES[1], uefi.as_path())];
                match &cache {
                    Some(c) => c.store(&key, &files, meta)?.dir,
                    None => self.work.to_path_buf(),
                }
            }
        };
        for name in FILES {
            super::link_or_copy(&entry.join(name), &boot_dir.join(name))?;
        }
        Ok(())
    }

    fn build(&self) -> anyhow::Result<Built> {
        let eltorito = self.work.join(FILES[0]);
        grub::bios_image(self.sh, &self.configs.early, &eltorito)?;
        let loaders = efi::loaders(self.sh, self.signed.clone(), &self.configs.early, self.work)?;
        let loader = loaders.describe();
        info!("EFI loader: {loader}");
        let uefi = self.work.join(FILES[1]);
        efi::fat_image(
            self.sh,
            &loaders,
            &self.configs.stub,
            &uefi,
            "EFI_LIVE",
            self.epoch,
        )?;
        Ok(Built {
            eltorito,
            uefi,
            meta: Meta { loader },
        })
    }

    /// Everything the images are made of: tool versions (Debian's revision
    /// included), module list, configs, loaders, epoch.
    fn key(&self) -> anyhow::Result<Sha256Digest> {
        let versions = host_tools::build_versions();
        let version = |what: &str| versions.get(what).cloned().unwrap_or_default();
        let mut parts = vec![
            FORMAT.to_string(),
            version(host_tools::GRUB_MKIMAGE.what),
            version(host_tools::MFORMAT.what),
            grub::MODULES.join(" "),
            self.epoch.to_string(),
        ];
        let mut inputs = vec![&self.configs.early, &self.configs.stub];
        if let Some((shim, grub)) = &self.signed {
            inputs.extend([shim, grub]);
        }
        for p in inputs {
            let bytes = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            parts.push(Sha256Digest(Sha256::digest(bytes).into()).to_string());
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(entry_cache::key(&parts))
    }
}

struct Built {
    eltorito: PathBuf,
    uefi: PathBuf,
    meta: Meta,
}

/// Removes cached boot images not used for `older_than`. Returns the entries removed;
/// their bytes are added to `freed`.
pub fn prune(
    cache_dir: &Path,
    older_than: std::time::Duration,
    freed: &mut crate::freed::Freed,
) -> anyhow::Result<usize> {
    EntryCache::new(cache_dir, KIND).prune(older_than, freed)
}
