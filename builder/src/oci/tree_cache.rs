//! Flattened layers cached as a model (`MemTree`), so an image's base is
//! decompressed and flattened once, not on every build: an entry holds the
//! file data of the layers it covers (`data`, the spool as written) and an
//! index (`index.tar`: the tree as a tar whose files say where their bytes
//! are in `data`), keyed by those layers' digests and the epoch.
//!
//! The provider image stage stores the tree of the base image's layers as
//! it reads where components go (`base`); the ISO stage then finds it as a
//! prefix of the provider image's layers and applies the rest (components,
//! overlays) on top (`flatten`). An image no entry covers stores the tree
//! of all but its last layer. New file data goes to a spool in the work
//! folder, so cached files are only ever read; the cache checks both
//! files' digests on every lookup, so a damaged entry is flattened and
//! stored anew, never used.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::flatten::{self, Stats};
use super::mem_tree::MemTree;
use super::source::SourceImage;
use super::tree_tar::{self, Content};
use crate::entry_cache::{self, Entry, EntryCache};
use crate::log::info;

/// Bump when flattening gives a different model for the same layers, or
/// the index format changes.
const FORMAT: &str = "edgeforge-tree/v4";
const KIND: &str = "trees";
const INDEX: &str = "index.tar";
const DATA: &str = "data";

#[derive(Serialize, Deserialize)]
struct Meta {
    layers: usize,
    entries: u64,
}

/// The root filesystem of `image`, using and filling the tree cache under
/// `cache` when there is one; file data not in the cache is spooled into
/// `work`.
pub fn flatten(
    image: &SourceImage,
    cache: Option<&Path>,
    work: &Path,
    epoch: u64,
) -> anyhow::Result<(MemTree, Stats)> {
    let spool = work.join("rootfs.spool");
    let last = image.layers.len().saturating_sub(1);
    let cache = match cache {
        Some(c) if last > 0 => EntryCache::new(c, KIND),
        _ => {
            let mut tree = MemTree::new(&spool, epoch)
                .with_context(|| format!("creating {}", spool.display()))?;
            let stats = flatten::apply_layers(image, 0..image.layers.len(), &mut tree, epoch)?;
            return Ok((tree, stats));
        }
    };
    // The longest cached prefix of the lower layers, else all of them stored.
    let mut found = None;
    for n in (1..=last).rev() {
        if let Some(entry) = cache.lookup::<Meta>(&key(image, n, epoch), &[INDEX, DATA])? {
            found = Some((n, entry));
            break;
        }
    }
    let (mut tree, meta, from) = match found {
        Some((n, entry)) => {
            info!(
                "lower {} layers of {} (cached tree, {} entries)",
                entry.meta.layers, image.origin, entry.meta.entries
            );
            (load(&entry, &spool)?, entry.meta, n)
        }
        None => {
            let (tree, meta) = store(&cache, image, last, epoch, &spool)?;
            (tree, meta, last)
        }
    };
    let top = flatten::apply_layers(image, from..image.layers.len(), &mut tree, epoch)?;
    Ok((
        tree,
        Stats {
            layers: meta.layers + top.layers,
            entries: meta.entries + top.entries,
            ..top
        },
    ))
}

/// The tree of all the layers of `image` (a base image), from the cache or
/// flattened and stored. Only read: new file data would go to a spool in a
/// work folder of the cache's, gone when the tree is dropped (or, after a
/// kill, pruned with abandoned entries).
pub fn base(image: &SourceImage, cache_dir: &Path, epoch: u64) -> anyhow::Result<BaseTree> {
    let cache = EntryCache::new(cache_dir, KIND);
    let kind_dir = cache_dir.join(KIND);
    std::fs::create_dir_all(&kind_dir)
        .with_context(|| format!("creating {}", kind_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".edgeforge-")
        .tempdir_in(&kind_dir)
        .with_context(|| format!("creating a work folder in {}", kind_dir.display()))?;
    let spool = work.path().join("spool");
    let n = image.layers.len();
    let tree = match cache.lookup::<Meta>(&key(image, n, epoch), &[INDEX, DATA])? {
        Some(entry) => load(&entry, &spool)?,
        None => store(&cache, image, n, epoch, &spool)?.0,
    };
    Ok(BaseTree { tree, _work: work })
}

/// A base's tree and the work folder its (unused) spool is in.
pub struct BaseTree {
    pub tree: MemTree,
    _work: tempfile::TempDir,
}

/// The key of the tree of the first `n` layers of `image`.
fn key(image: &SourceImage, n: usize, epoch: u64) -> crate::io::Sha256Digest {
    let mut parts = vec![FORMAT.to_string(), format!("epoch={epoch}")];
    parts.extend(image.layers[..n].iter().map(|l| l.digest.to_string()));
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    entry_cache::key(&parts)
}

fn load(entry: &Entry<Meta>, spool: &Path) -> anyhow::Result<MemTree> {
    tree_tar::load(&entry.dir.join(INDEX), &entry.dir.join(DATA), spool)
}

/// Flattens the first `n` layers of `image` into a new entry; returns the
/// tree with new file data going to `spool` from now on.
fn store(
    cache: &EntryCache,
    image: &SourceImage,
    n: usize,
    epoch: u64,
    spool: &Path,
) -> anyhow::Result<(MemTree, Meta)> {
    let mut flattened = None;
    let entry = cache.store_with_hashed(&key(image, n, epoch), &[INDEX, DATA], |dir| {
        let mut tree = MemTree::new(&dir.join(DATA), epoch)
            .with_context(|| format!("creating {}", dir.join(DATA).display()))?;
        let stats = flatten::apply_layers(image, 0..n, &mut tree, epoch)?;
        let (sha, size) = tree.spool_digest()?;
        let index = dir.join(INDEX);
        let file = std::fs::File::create(&index)
            .with_context(|| format!("creating {}", index.display()))?;
        let opts = tree_tar::Options {
            root: true,
            content: Content::Referenced,
            only: None,
        };
        tree_tar::write(&tree, std::io::BufWriter::new(file), &opts)
            .with_context(|| format!("writing {}", index.display()))?;
        flattened = Some(tree);
        let meta = Meta {
            layers: stats.layers,
            entries: stats.entries,
        };
        Ok((meta, vec![(DATA.to_string(), sha, size)]))
    })?;
    info!(
        "lower {} layers of {} flattened ({} entries; kept in the cache)",
        entry.meta.layers, image.origin, entry.meta.entries
    );
    let mut tree = flattened.expect("store_with_hashed ran the fill");
    // The cached spool is only read from now on.
    tree.spool_to(spool)
        .with_context(|| format!("creating {}", spool.display()))?;
    Ok((tree, entry.meta))
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
