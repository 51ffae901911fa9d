//! What the layers below a new layer hold, as far as placing the new
//! layer's entries needs it: which paths are folders and which are
//! symlinks. A component at `/lib/firmware/x` on a usr-merged base
//! (`lib -> usr/lib`) is written at `usr/lib/firmware/x`, where every
//! consumer puts it (an overlayfs snapshotter would otherwise let a `lib`
//! folder hide the `lib` symlink), and folders the lower layers already
//! have get no entry of ours, so they keep their mode and owner (`/tmp`
//! 1777, `/root` 0700).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::LayerBlob;
use crate::entry_cache::{self, EntryCache};
use crate::error::{fail, Category};
use crate::log::{verbose, warning};
use crate::oci::flatten;
use crate::oci::layer_stream::{EntryLimit, LayerStream};
use crate::oci::mem_tree::{MemTree, NodeKind};
use crate::oci::source::SourceImage;
use crate::oci::tree_cache;
use crate::safe_path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Dir,
    Symlink(PathBuf),
    Other,
}

/// Paths of the lower layers, applied in order (whiteouts included).
#[derive(Default, Serialize, Deserialize)]
pub struct LowerView {
    paths: BTreeMap<PathBuf, Kind>,
}

/// Where an entry of a new layer goes.
#[derive(Debug, PartialEq)]
pub enum Place {
    /// Write the entry under this (resolved) name.
    At(PathBuf),
    /// A folder the lower layers already have: leave it as it is.
    Existing,
}

/// Bump when a view of the same image comes out different.
const FORMAT: &str = "edgeforge-lower-view/v2";
const KIND: &str = "lower-views";

impl LowerView {
    /// The view of `image`, from the cache under `cache` when it was read
    /// before: reading a base means decompressing all its layers (1.4 s for
    /// a 600 MB Debian base), a cached view is a small verified file. The
    /// base is read as the cached tree of its layers (`tree_cache::base`),
    /// which the ISO stage then flattens the provider image on, so a clean
    /// build decompresses the base once.
    pub fn of_image_cached(
        image: &SourceImage,
        cache: Option<&Path>,
        epoch: u64,
    ) -> anyhow::Result<LowerView> {
        let Some(dir) = cache else {
            return LowerView::of_image(image, epoch);
        };
        let cache = EntryCache::new(dir, KIND);
        let key = entry_cache::key(&[FORMAT, &image.manifest_digest.to_string()]);
        if let Some(entry) = cache.lookup::<LowerView>(&key, &[])? {
            return Ok(entry.meta);
        }
        let tree = match tree_cache::base(image, dir, epoch) {
            Ok(tree) => tree,
            // A full or read-only cache costs time, not the build.
            Err(e) => {
                warning!("not caching the flattened base {}: {e:#}", image.origin);
                return LowerView::of_image(image, epoch);
            }
        };
        let view = LowerView::of_tree(&tree.tree);
        // Names that are not UTF-8 do not go into JSON: such a view is
        // simply made again next time.
        match cache.store_with(&key, &[], |_| Ok(view)) {
            Ok(entry) => Ok(entry.meta),
            Err(e) => {
                verbose!("not caching the layer view of {}: {e:#}", image.origin);
                Ok(LowerView::of_tree(&tree.tree))
            }
        }
    }

    /// The view of a flattened tree.
    fn of_tree(tree: &MemTree) -> LowerView {
        let paths = tree
            .entries()
            .map(|(p, _, inode)| {
                let kind = match &inode.kind {
                    NodeKind::Dir => Kind::Dir,
                    NodeKind::Symlink(target) => Kind::Symlink(target.clone()),
                    _ => Kind::Other,
                };
                (p.to_path_buf(), kind)
            })
            .collect();
        LowerView { paths }
    }

    /// Reads the layers of `image`, in order, flattened as the ISO stage
    /// flattens them (whiteouts, opaque folders, symlinked parents), so a
    /// view read without the cache is the cached one.
    pub fn of_image(image: &SourceImage, epoch: u64) -> anyhow::Result<LowerView> {
        let mut tree = MemTree::shape(epoch);
        flatten::apply_layers(image, 0..image.layers.len(), &mut tree, epoch)?;
        Ok(LowerView::of_tree(&tree))
    }

    /// Applies a layer blob edgeforge wrote.
    pub fn add_layer(&mut self, blob: &LayerBlob) -> anyhow::Result<()> {
        let path = &blob.path;
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        LayerStream::open(BufReader::new(f), &blob.descriptor.media_type)
            .and_then(|r| self.apply(r))
            .with_context(|| format!("reading layer {}", path.display()))
    }

    fn apply(&mut self, layer: LayerStream<'_>) -> anyhow::Result<()> {
        let mut archive = tar::Archive::new(layer);
        let mut limit = EntryLimit::new()?;
        for entry in archive.entries()? {
            limit.count()?;
            let entry = entry?;
            let raw = entry.path()?.into_owned();
            let Some(rel) = safe_path::entry_path(&raw).map_err(|e| {
                fail(
                    Category::BadImage,
                    format!("layer entry {e}; the image is unsafe to unpack"),
                )
            })?
            else {
                continue;
            };
            let name = rel.file_name().expect("normalized paths end in a name");
            let parent = self.resolve(rel.parent().unwrap_or(Path::new("")), true)?;
            if name == ".wh..wh..opq" {
                // Opaque: lower content goes; what this layer put there
                // before the marker is lost too, which only shows as a
                // folder entry emitted that was not needed.
                let gone = self.subtree(&parent);
                for p in gone.into_iter().filter(|p| p != &parent) {
                    self.paths.remove(&p);
                }
                continue;
            }
            if let Some(hidden) = name.to_str().and_then(|n| n.strip_prefix(".wh.")) {
                for p in self.subtree(&parent.join(hidden)) {
                    self.paths.remove(&p);
                }
                continue;
            }
            let kind = match entry.header().entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => {
                    Kind::Symlink(entry.link_name()?.unwrap_or_default().into_owned())
                }
                _ => Kind::Other,
            };
            let path = parent.join(name);
            if kind == Kind::Dir && self.is_dir(&self.resolve(&path, true)?) {
                continue;
            }
            if self.paths.get(&path) == Some(&Kind::Dir) {
                for p in self.subtree(&path) {
                    self.paths.remove(&p);
                }
            }
            self.paths.insert(path, kind);
        }
        archive.into_inner().drain()?;
        Ok(())
    }

    /// `path` and everything under it.
    fn subtree(&self, path: &Path) -> Vec<PathBuf> {
        self.paths
            .range(path.to_path_buf()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(path))
            .cloned()
            .collect()
    }

    fn resolve(&self, rel: &Path, follow_last: bool) -> anyhow::Result<PathBuf> {
        safe_path::resolve(rel, follow_last, |p| match self.paths.get(p) {
            Some(Kind::Symlink(t)) => Some(t.clone()),
            _ => None,
        })
        .map_err(|e| fail(Category::BadImage, format!("layer entry {e}")))
    }

    fn is_dir(&self, resolved: &Path) -> bool {
        resolved.as_os_str().is_empty() || self.paths.get(resolved) == Some(&Kind::Dir)
    }

    /// `name` with the folders on its way resolved through the lower layers' symlinks.
    pub fn resolve_entry(&self, name: &Path) -> anyhow::Result<PathBuf> {
        let parent = self.resolve(name.parent().unwrap_or(Path::new("")), true)?;
        Ok(parent.join(name.file_name().unwrap_or_default()))
    }

    /// Where an entry named `name` goes; a folder entry (`dir`) over a
    /// folder (or a symlink to one) of the lower layers is left out.
    pub fn place(&self, name: &Path, dir: bool) -> anyhow::Result<Place> {
        let at = self.resolve_entry(name)?;
        if dir && self.is_dir(&self.resolve(&at, true)?) {
            return Ok(Place::Existing);
        }
        Ok(Place::At(at))
    }
}

/// Removes cached views not used for `older_than`. Returns the entries removed;
/// their bytes are added to `freed`.
pub fn prune(
    cache_dir: &Path,
    older_than: std::time::Duration,
    freed: &mut crate::freed::Freed,
) -> anyhow::Result<usize> {
    EntryCache::new(cache_dir, KIND).prune(older_than, freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(0);
            h.set_mode(0o755);
            if *kind == tar::EntryType::Symlink {
                b.append_link(&mut h, name, link).unwrap();
            } else {
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn places_entries_where_consumers_put_them() {
        use tar::EntryType::{Directory as D, Regular as F, Symlink as L};
        let mut v = LowerView::default();
        let stream = |bytes: Vec<u8>| LayerStream::open(std::io::Cursor::new(bytes), "").unwrap();
        v.apply(stream(layer(&[
            ("usr/", D, ""),
            ("usr/lib/", D, ""),
            ("lib", L, "usr/lib"),
            ("tmp/", D, ""),
            ("etc/", D, ""),
            ("etc/old/", D, ""),
            ("etc/old/a", F, ""),
        ])))
        .unwrap();
        v.apply(stream(layer(&[("etc/.wh.old", F, "")]))).unwrap();
        let at = |p: &str| Place::At(PathBuf::from(p));
        assert_eq!(v.place(Path::new("lib"), true).unwrap(), Place::Existing);
        assert_eq!(
            v.place(Path::new("lib/firmware"), true).unwrap(),
            at("usr/lib/firmware")
        );
        assert_eq!(
            v.place(Path::new("lib/firmware/x/a.bin"), false).unwrap(),
            at("usr/lib/firmware/x/a.bin")
        );
        assert_eq!(v.place(Path::new("tmp"), true).unwrap(), Place::Existing);
        assert_eq!(v.place(Path::new("etc/old"), true).unwrap(), at("etc/old"));
        assert_eq!(v.place(Path::new("lib"), false).unwrap(), at("lib"));
    }
}
