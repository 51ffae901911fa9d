//! What the ISO needs from the root filesystem: `rootfs.squashfs`, the kernel,
//! the initrd and the image's signed EFI loaders, if any. For a provider
//! image these are cached by its manifest digest (with the compression and
//! epoch), so an ISO rebuilt with other user-data or boot settings skips the
//! flatten and mksquashfs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::packages::{self, Package};
use super::{efi, kernel, squashfs, Compression, RootfsSource};
use crate::io::AtomicFile;
use crate::log::info;
use crate::oci::{flatten, source::SourceImage};
use crate::progress::Progress;

/// Bump when the squashfs, the selection of boot files or `entry.json` changes.
const FORMAT: &str = "edgeforge-rootfs/v2";

pub struct RootfsParts {
    pub squashfs: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// shim and the signed CD GRUB, when the image carries them.
    pub signed: Option<(PathBuf, PathBuf)>,
    pub packages: Vec<Package>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    signed: bool,
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
                let key = crate::layer::cache::key(&[
                    FORMAT,
                    &self.epoch.to_string(),
                    &self.compression.to_string(),
                    &image.manifest_digest.to_string(),
                ]);
                let entry_dir = self.cache.map(|c| c.join("rootfs").join(key.to_string()));
                if let Some(parts) = entry_dir.as_deref().and_then(lookup) {
                    info!(
                        "rootfs.squashfs ({}, cached for {})",
                        self.compression, image.manifest_digest
                    );
                    return Ok(parts);
                }
                let dir = self.work.join("rootfs");
                let stats = flatten::flatten(&image, &dir)?;
                info!(
                    "flattened {} ({} layers, {} entries)",
                    archive.display(),
                    stats.layers,
                    stats.entries
                );
                let parts = self.squash_folder(&dir)?;
                match entry_dir {
                    Some(entry) => store(&parts, &entry),
                    None => Ok(parts),
                }
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
            packages: packages::find(rootfs, self.distribution),
        })
    }
}

const FILES: [&str; 5] = [
    "rootfs.squashfs",
    "kernel",
    "initrd",
    "shim.efi",
    "grub.efi",
];

fn lookup(entry: &Path) -> Option<RootfsParts> {
    let meta: Entry = serde_json::from_slice(&fs::read(entry.join("entry.json")).ok()?).ok()?;
    let [squashfs, kernel, initrd, shim, grub] = FILES.map(|f| entry.join(f));
    if ![&squashfs, &kernel, &initrd].iter().all(|p| p.is_file()) {
        return None;
    }
    // Touched on use, for `cache prune`.
    let _ = fs::File::options()
        .write(true)
        .open(entry.join("entry.json"))
        .and_then(|f| f.set_modified(SystemTime::now()));
    Some(RootfsParts {
        squashfs,
        kernel,
        initrd,
        signed: meta.signed.then_some((shim, grub)),
        packages: meta.packages,
    })
}

/// Moves the parts into a new cache entry (built beside it, renamed into
/// place, so a half-written entry never has its final name).
fn store(parts: &RootfsParts, entry: &Path) -> anyhow::Result<RootfsParts> {
    let parent = entry.parent().expect("entries live in cache/rootfs");
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".edgeforge-")
        .tempdir_in(parent)?;
    let mut sources = vec![&parts.squashfs, &parts.kernel, &parts.initrd];
    if let Some((shim, grub)) = &parts.signed {
        sources.extend([shim, grub]);
    }
    for (src, name) in sources.into_iter().zip(FILES) {
        let to = temp.path().join(name);
        if fs::hard_link(src, &to).is_err() {
            fs::copy(src, &to).with_context(|| format!("caching {}", src.display()))?;
        }
    }
    AtomicFile::write(
        &temp.path().join("entry.json"),
        &serde_json::to_vec(&Entry {
            signed: parts.signed.is_some(),
            packages: parts.packages.clone(),
        })?,
        0o644,
    )?;
    let temp = temp.keep();
    if fs::rename(&temp, entry).is_err() {
        if lookup(entry).is_some() {
            // Another build stored the same entry first; it has the same bytes.
            let _ = fs::remove_dir_all(&temp);
        } else {
            // An unreadable leftover (an interrupted or older edgeforge): replace it.
            fs::remove_dir_all(entry).with_context(|| format!("replacing {}", entry.display()))?;
            fs::rename(&temp, entry).with_context(|| format!("storing {}", entry.display()))?;
        }
    }
    lookup(entry).ok_or_else(|| {
        anyhow::anyhow!("the cache entry {} could not be read back", entry.display())
    })
}

/// Removes cached root filesystems not used for `older_than`. Returns the
/// entries and bytes removed.
pub fn prune(cache_dir: &Path, older_than: std::time::Duration) -> anyhow::Result<(usize, u64)> {
    let dir = cache_dir.join("rootfs");
    let (mut entries, mut bytes) = (0, 0);
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok((0, 0));
    };
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let used = e.path().join("entry.json");
        let Ok(md) = fs::metadata(&used) else {
            continue;
        };
        if SystemTime::now()
            .duration_since(md.modified()?)
            .unwrap_or_default()
            >= older_than
        {
            for f in FILES {
                bytes += fs::metadata(e.path().join(f)).map(|m| m.len()).unwrap_or(0);
            }
            fs::remove_dir_all(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
            entries += 1;
        }
    }
    Ok((entries, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_entry_is_replaced() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        for f in ["rootfs.squashfs", "kernel", "initrd"] {
            fs::write(src.join(f), f).unwrap();
        }
        let parts = RootfsParts {
            squashfs: src.join("rootfs.squashfs"),
            kernel: src.join("kernel"),
            initrd: src.join("initrd"),
            signed: None,
            packages: vec![],
        };
        let entry = t.path().join("cache/rootfs/k");
        fs::create_dir_all(&entry).unwrap();
        fs::write(entry.join("entry.json"), "{not json").unwrap();
        let stored = store(&parts, &entry).unwrap();
        assert_eq!(fs::read(stored.kernel).unwrap(), b"kernel");
        assert!(lookup(&entry).is_some());
    }
}
