//! The root filesystem of a provider image as a model (`MemTree`), without
//! flattening the whole image on every build: the lower layers (base and
//! components, all but the last) are flattened once and cached, keyed by
//! their digests, as their file data (`data`, the spool as written) and an
//! index (`index.tar`: the tree as a tar whose files say where their bytes
//! are in `data`). A build loads the index and applies only the last layer
//! (the rendered overlays, what a rebuild usually changes) on top; new file
//! data goes to a spool in the work folder, so the cached files are only
//! ever read. The cache checks both files' digests on every lookup, so a
//! damaged entry is flattened and stored anew, never used.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::entry_cache::{self, EntryCache};
use crate::log::info;
use crate::oci::flatten::{self, Stats};
use crate::oci::mem_tree::MemTree;
use crate::oci::source::SourceImage;
use crate::oci::tree_tar::{self, Content};

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
    let creating = || format!("creating {}", spool.display());
    let last = image.layers.len().saturating_sub(1);
    let cache = match cache {
        Some(c) if last > 0 => EntryCache::new(c, KIND),
        _ => {
            let mut tree = MemTree::new(&spool, epoch).with_context(creating)?;
            let stats = flatten::apply_layers(image, 0..image.layers.len(), &mut tree, epoch)?;
            return Ok((tree, stats));
        }
    };
    let mut parts = vec![FORMAT.to_string(), format!("epoch={epoch}")];
    parts.extend(image.layers[..last].iter().map(|l| l.digest.to_string()));
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let key = entry_cache::key(&parts);
    let (mut tree, meta) = match cache.lookup::<Meta>(&key, &[INDEX, DATA])? {
        Some(entry) => {
            info!(
                "lower {} layers of {} (cached tree, {} entries)",
                entry.meta.layers, image.origin, entry.meta.entries
            );
            let tree = tree_tar::load(&entry.dir.join(INDEX), &entry.dir.join(DATA), &spool)?;
            (tree, entry.meta)
        }
        None => {
            let mut flattened = None;
            let entry = cache.store_with_hashed(&key, &[INDEX, DATA], |dir| {
                let mut tree = MemTree::new(&dir.join(DATA), epoch)
                    .with_context(|| format!("creating {}", dir.join(DATA).display()))?;
                let lower = flatten::apply_layers(image, 0..last, &mut tree, epoch)?;
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
                    layers: lower.layers,
                    entries: lower.entries,
                };
                Ok((meta, vec![(DATA.to_string(), sha, size)]))
            })?;
            info!(
                "lower {} layers of {} flattened ({} entries, cached)",
                entry.meta.layers, image.origin, entry.meta.entries
            );
            let mut tree = flattened.expect("store_with ran the fill");
            // The cached spool is only read from now on.
            tree.spool_to(&spool).with_context(creating)?;
            (tree, entry.meta)
        }
    };
    let top = flatten::apply_layers(image, last..last + 1, &mut tree, epoch)?;
    Ok((
        tree,
        Stats {
            layers: meta.layers + top.layers,
            entries: meta.entries + top.entries,
            ..top
        },
    ))
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
