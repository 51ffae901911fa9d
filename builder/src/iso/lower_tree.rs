//! The root filesystem of a provider image for mksquashfs, without
//! flattening the whole image on every build: the lower layers (base and
//! components, all but the last) are flattened once into a cached tree keyed
//! by their digests, hard-linked into the work folder, and only the last
//! layer (the rendered overlays, what a rebuild usually changes) is applied
//! on top. Applying a layer only unlinks or replaces files, so the cached
//! tree is never written through a link; mksquashfs counts hard links within
//! its source only, so the squashfs equals one from a clean flatten. The
//! cache checks the whole tree (`tree_digest`) before it is linked: a
//! damaged tree is flattened and stored anew.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::entry_cache::{self, EntryCache};
use crate::fs_meta;
use crate::log::info;
use crate::oci::flatten::{self, Stats};
use crate::oci::source::SourceImage;

/// Bump when flattening writes a different tree for the same layers.
const FORMAT: &str = "edgeforge-tree/v3";
const KIND: &str = "trees";
const TREE: &str = "rootfs";

#[derive(Serialize, Deserialize)]
struct Meta {
    layers: usize,
    entries: u64,
}

/// Writes the root filesystem of `image` into `dest`, using and filling the
/// tree cache under `cache` when there is one on the same filesystem.
pub fn flatten_into(
    image: &SourceImage,
    cache: Option<&Path>,
    dest: &Path,
    epoch: u64,
) -> anyhow::Result<Stats> {
    let last = image.layers.len().saturating_sub(1);
    let cache = match cache {
        Some(c) if last > 0 && same_filesystem(c, dest) => EntryCache::new(c, KIND),
        _ => return flatten::flatten(image, dest, epoch),
    };
    let owner = fs_meta::is_root();
    let mut parts = vec![
        FORMAT.to_string(),
        format!("owner={owner}"),
        format!("epoch={epoch}"),
    ];
    parts.extend(image.layers[..last].iter().map(|l| l.digest.to_string()));
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let key = entry_cache::key(&parts);
    let entry = match cache.lookup::<Meta>(&key, &[TREE])? {
        Some(entry) => {
            info!(
                "lower {} layers of {} (cached tree, {} entries)",
                entry.meta.layers, image.origin, entry.meta.entries
            );
            entry
        }
        None => {
            let entry = cache.store_with(&key, &[TREE], |dir| {
                let tree = dir.join(TREE);
                let lower = flatten::flatten_layers(image, 0..last, &tree, epoch)?;
                Ok(Meta {
                    layers: lower.layers,
                    entries: lower.entries,
                })
            })?;
            info!(
                "lower {} layers of {} flattened ({} entries, cached)",
                entry.meta.layers, image.origin, entry.meta.entries
            );
            entry
        }
    };
    link_tree(&entry.dir.join(TREE), dest, owner)?;
    let top = flatten::flatten_layers(image, last..last + 1, dest, epoch)?;
    Ok(Stats {
        layers: entry.meta.layers + top.layers,
        entries: entry.meta.entries + top.entries,
        ..top
    })
}

/// Hard links would fail across filesystems (and cost a copy instead).
fn same_filesystem(cache: &Path, dest: &Path) -> bool {
    let _ = fs::create_dir_all(cache);
    let dest_dir = dest.parent().unwrap_or(dest);
    match (fs::metadata(cache), fs::metadata(dest_dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// Recreates the folders of `from` in `to` (mode, extended attributes,
/// mtime and, as root, owner) and hard-links everything else (files,
/// symlinks, special files: their metadata is the inode's).
fn link_tree(from: &Path, to: &Path, owner: bool) -> anyhow::Result<()> {
    let mut dirs = Vec::new();
    for e in walkdir::WalkDir::new(from) {
        let e = e.with_context(|| format!("reading the cached tree {}", from.display()))?;
        let rel = e
            .path()
            .strip_prefix(from)
            .expect("walkdir stays under its root");
        let target = to.join(rel);
        if e.file_type().is_dir() {
            let md = e.metadata()?;
            let created = if rel.as_os_str().is_empty() {
                fs::create_dir_all(&target)
            } else {
                fs::create_dir(&target)
            };
            created.with_context(|| format!("creating {}", target.display()))?;
            copy_dir_meta(e.path(), &target, &md, owner)
                .with_context(|| format!("copying the metadata of {}", e.path().display()))?;
            dirs.push((target, md.mtime()));
        } else {
            fs::hard_link(e.path(), &target)
                .with_context(|| format!("linking {}", target.display()))?;
        }
    }
    // Linking into a folder changed its mtime: set them all once done.
    for (dir, mtime) in dirs {
        fs_meta::set_mtime(&dir, mtime)
            .with_context(|| format!("setting the mtime of {}", dir.display()))?;
    }
    Ok(())
}

fn copy_dir_meta(from: &Path, to: &Path, md: &fs::Metadata, owner: bool) -> anyhow::Result<()> {
    if owner {
        std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()))?;
    }
    fs::set_permissions(to, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    for (name, value) in fs_meta::xattrs(from)? {
        fs_meta::set_xattr(to, &name, &value)?;
    }
    Ok(())
}

/// Removes cached trees not used for `older_than`. Returns the entries removed;
/// their bytes are added to `freed`.
pub fn prune(
    cache_dir: &Path,
    older_than: std::time::Duration,
    freed: &mut crate::freed::Freed,
) -> anyhow::Result<usize> {
    EntryCache::new(cache_dir, KIND).prune(older_than, freed)
}
