//! Applies an image's layers in order into a folder, giving the root
//! filesystem the image describes, as `umoci unpack` (run as root) gives it:
//! whiteouts (`.wh.NAME`, `.wh..wh..opq`) delete what lower layers put
//! there, paths through symlinked folders land where the symlink points
//! (never outside the folder), and every entry keeps its type, mode
//! (setuid, setgid and sticky included), owner, extended attributes and
//! mtime. Folders keep the mtime their last entry records, whatever later
//! layers put into them.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::layer_stream::{self, EntryLimit, LayerStream};
use super::source::SourceImage;
use crate::error::{fail, Category};
use crate::fs_meta;
use crate::log::verbose;
use crate::safe_path;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What one flattening did, for the log.
#[derive(Debug, Default)]
pub struct Stats {
    pub layers: usize,
    pub entries: u64,
    pub whiteouts: u64,
    /// Device nodes and `security.*`/`trusted.*` attributes need root.
    pub skipped_devices: u64,
    pub skipped_xattrs: u64,
}

/// Flattens every layer of `image` into `dest` (created if missing).
/// Folders no layer describes (the root, missing parents) get `epoch`.
pub fn flatten(image: &SourceImage, dest: &Path, epoch: u64) -> anyhow::Result<Stats> {
    flatten_layers(image, 0..image.layers.len(), dest, epoch)
}

/// Applies the layers `range` of `image`, in order, onto `dest` (created if
/// missing). What is already in `dest` is only ever unlinked or replaced by
/// new files, never written into, so `dest` may hold hard links to files
/// that must not change.
pub fn flatten_layers(
    image: &SourceImage,
    range: std::ops::Range<usize>,
    dest: &Path,
    epoch: u64,
) -> anyhow::Result<Stats> {
    let mut a = Applier {
        dest,
        owner: fs_meta::is_root(),
        epoch: epoch as i64,
        stats: Stats::default(),
        dir_times: BTreeMap::new(),
    };
    if !dest.exists() {
        fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
        fs::set_permissions(dest, fs::Permissions::from_mode(0o755))?;
        a.dir_times.insert(PathBuf::new(), a.epoch);
    }
    for (i, desc) in image
        .layers
        .iter()
        .enumerate()
        .take(range.end)
        .skip(range.start)
    {
        let mut blob = image.open_layer(i)?;
        let what = format!("layer {} of {}", desc.digest, image.origin);
        let ctx = || format!("applying {what}");
        let applied =
            LayerStream::open(&mut blob, &desc.media_type).and_then(|reader| a.apply_layer(reader));
        // A corrupt blob usually fails decompression first; the digest check
        // says what is really wrong, so it takes precedence.
        blob.finish().with_context(ctx)?;
        applied
            .map_err(|e| layer_stream::corrupt_unless_io(e, "applying", &what, &desc.media_type))?;
        a.stats.layers += 1;
    }
    a.set_dir_times()?;
    Ok(a.stats)
}

struct Applier<'a> {
    dest: &'a Path,
    owner: bool,
    epoch: i64,
    stats: Stats,
    /// The mtime each folder gets once the layers are applied: what its last
    /// entry says, or what it had before this run first changed its content
    /// (adding or removing a child changes a folder's mtime).
    dir_times: BTreeMap<PathBuf, i64>,
}

/// What the current layer wrote: an opaque whiteout and a whiteout clear
/// only lower layers, whatever the order of entries in the layer.
#[derive(Default)]
struct Written {
    paths: HashSet<PathBuf>,
    /// Folders holding something this layer wrote.
    ancestors: HashSet<PathBuf>,
}

impl Written {
    fn insert(&mut self, rel: &Path) {
        let mut p = rel.parent();
        while let Some(a) = p {
            if !self.ancestors.insert(a.to_path_buf()) {
                break;
            }
            p = a.parent();
        }
        self.paths.insert(rel.to_path_buf());
    }
}

impl Applier<'_> {
    fn apply_layer(&mut self, reader: LayerStream<'_>) -> anyhow::Result<()> {
        let mut archive = tar::Archive::new(reader);
        let mut written = Written::default();
        let mut limit = EntryLimit::new()?;
        for entry in archive.entries()? {
            limit.count()?;
            let mut entry = entry?;
            let raw = entry.path()?.into_owned();
            let rel = safe_path::entry_path(&raw).map_err(|e| {
                fail(
                    Category::BadImage,
                    format!("layer entry {e}; the image is unsafe to unpack"),
                )
            })?;
            self.stats.entries += 1;
            let Some(rel) = rel else {
                // `./`: the root folder's own metadata.
                if entry.header().entry_type() == tar::EntryType::Directory {
                    self.set_meta(&mut entry, Path::new(""))?;
                }
                continue;
            };
            let name = rel.file_name().expect("normalized paths end in a name");
            let parent = self.resolve(rel.parent().unwrap_or(Path::new("")), true)?;
            if name == OPAQUE {
                self.ensure_dir(&parent)?;
                self.clear_lower(&parent, &written)?;
                self.stats.whiteouts += 1;
                continue;
            }
            if let Some(hidden) = name.to_str().and_then(|n| n.strip_prefix(WHITEOUT_PREFIX)) {
                if hidden.is_empty() || hidden == "." || hidden == ".." {
                    return Err(fail(
                        Category::BadImage,
                        format!("whiteout `{}` names no file", raw.display()),
                    ));
                }
                let hidden = parent.join(hidden);
                if !written.paths.contains(&hidden) {
                    self.remove(&hidden)?;
                }
                self.stats.whiteouts += 1;
                continue;
            }
            self.ensure_dir(&parent)?;
            let rel = parent.join(name);
            self.touch_parent(&rel)?;
            if self.apply_entry(&mut entry, &raw, &rel)? {
                written.insert(&rel);
            }
        }
        archive.into_inner().drain()?;
        Ok(())
    }

    /// `rel` resolved inside the root through the symlinks already there.
    fn resolve(&self, rel: &Path, follow_last: bool) -> anyhow::Result<PathBuf> {
        safe_path::resolve(rel, follow_last, |p| fs::read_link(self.dest.join(p)).ok())
            .map_err(|e| fail(Category::BadImage, format!("layer entry {e}")))
    }

    /// Writes one entry at `rel` (its parent exists); false when it was skipped.
    fn apply_entry(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        raw: &Path,
        rel: &Path,
    ) -> anyhow::Result<bool> {
        let target = self.dest.join(rel);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode()? & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(md) if md.is_dir() => {}
                    // A symlink to a folder stays, as consumers keep it.
                    Ok(md)
                        if md.is_symlink() && fs::metadata(&target).is_ok_and(|m| m.is_dir()) =>
                    {
                        return Ok(true)
                    }
                    Ok(_) => {
                        self.remove(rel)?;
                        fs::create_dir(&target)?;
                    }
                    Err(_) => fs::create_dir(&target)?,
                }
                self.set_meta(entry, rel)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                self.remove(rel)?;
                let mut f = fs::File::options()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .with_context(|| format!("creating {}", target.display()))?;
                io::copy(entry, &mut f)?;
                drop(f);
                self.set_meta(entry, rel)?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.unwrap_or_default().into_owned();
                self.remove(rel)?;
                symlink(&link, &target)?;
                self.set_meta(entry, rel)?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name()?.unwrap_or_default().into_owned();
                let link_rel = safe_path::entry_path(&link)
                    .map_err(|e| {
                        fail(
                            Category::BadImage,
                            format!("hard link `{}` -> {e}", raw.display()),
                        )
                    })?
                    .ok_or_else(|| {
                        fail(
                            Category::BadImage,
                            format!("hard link `{}` points at the root", raw.display()),
                        )
                    })?;
                let source = self.dest.join(self.resolve(&link_rel, false)?);
                if fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(fail(
                        Category::BadImage,
                        format!("hard link `{}` points at a symlink", raw.display()),
                    ));
                }
                self.remove(rel)?;
                // The link shares its inode's metadata: nothing to set.
                fs::hard_link(&source, &target).with_context(|| {
                    format!("linking {} to {}", target.display(), source.display())
                })?;
            }
            tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => {
                if kind != tar::EntryType::Fifo && !self.owner {
                    self.stats.skipped_devices += 1;
                    verbose!("skipping device node {} (needs root)", raw.display());
                    return Ok(false);
                }
                let h = entry.header();
                let dev = (
                    h.device_major()?.unwrap_or(0),
                    h.device_minor()?.unwrap_or(0),
                );
                self.remove(rel)?;
                fs_meta::mknod(&target, kind, mode, dev)
                    .with_context(|| format!("creating {}", target.display()))?;
                self.set_meta(entry, rel)?;
            }
            _ => {
                verbose!("skipping {} (entry type {kind:?})", raw.display());
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Owner, then mode (a chown clears setuid/setgid bits and file
    /// capabilities), then extended attributes, then the mtime (folders'
    /// once all layers are applied).
    fn set_meta(&mut self, entry: &mut tar::Entry<impl Read>, rel: &Path) -> anyhow::Result<()> {
        let target = self.dest.join(rel);
        let h = entry.header();
        let (kind, uid, gid, mode, mtime) = (
            h.entry_type(),
            h.uid()?,
            h.gid()?,
            h.mode()?,
            h.mtime()? as i64,
        );
        let ctx = || format!("setting the metadata of {}", target.display());
        if self.owner {
            std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                .with_context(ctx)?;
        }
        if kind != tar::EntryType::Symlink {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o7777))
                .with_context(ctx)?;
        }
        if kind == tar::EntryType::Directory {
            // A folder entry over an existing folder carries the whole set.
            for (name, _) in fs_meta::xattrs(&target).unwrap_or_default() {
                let _ = fs_meta::remove_xattr(&target, &name);
            }
        }
        if let Some(extensions) = entry.pax_extensions()? {
            for ext in extensions {
                let ext = ext?;
                let Some(name) = ext.key_bytes().strip_prefix(XATTR_PREFIX.as_bytes()) else {
                    continue;
                };
                match fs_meta::set_xattr(&target, name, ext.value_bytes()) {
                    Ok(()) => {}
                    // Unprivileged, only `user.*` can be set, and never on a symlink.
                    Err(e) if !self.owner || kind == tar::EntryType::Symlink => {
                        self.stats.skipped_xattrs += 1;
                        verbose!(
                            "skipping xattr {} of {} ({e})",
                            String::from_utf8_lossy(name),
                            target.display()
                        );
                    }
                    Err(e) => return Err(e).with_context(ctx),
                }
            }
        }
        if kind == tar::EntryType::Directory {
            self.dir_times.insert(rel.to_path_buf(), mtime);
        } else {
            fs_meta::set_mtime(&target, mtime).with_context(ctx)?;
        }
        Ok(())
    }

    /// Notes the mtime of `rel`'s parent before its content changes.
    fn touch_parent(&mut self, rel: &Path) -> anyhow::Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !self.dir_times.contains_key(parent) {
            let md = fs::symlink_metadata(self.dest.join(parent))
                .with_context(|| format!("reading {}", self.dest.join(parent).display()))?;
            self.dir_times.insert(parent.to_path_buf(), md.mtime());
        }
        Ok(())
    }

    /// The folder `rel` (resolved, no symlinks on the way), created as needed.
    fn ensure_dir(&mut self, rel: &Path) -> anyhow::Result<()> {
        let mut p = PathBuf::new();
        for c in rel.components() {
            p.push(c);
            let full = self.dest.join(&p);
            match fs::symlink_metadata(&full) {
                Ok(md) if md.is_dir() => continue,
                Ok(_) => self.remove(&p)?,
                Err(_) => self.touch_parent(&p)?,
            }
            fs::create_dir(&full).with_context(|| format!("creating {}", full.display()))?;
            fs::set_permissions(&full, fs::Permissions::from_mode(0o755))?;
            self.dir_times.insert(p.clone(), self.epoch);
        }
        Ok(())
    }

    /// Removes what lower layers put in folder `rel`, keeping what this
    /// layer wrote (also deeper down).
    fn clear_lower(&mut self, rel: &Path, written: &Written) -> anyhow::Result<()> {
        let dir = self.dest.join(rel);
        let mut children: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        children.sort();
        for name in children {
            let child = rel.join(name);
            let is_dir = fs::symlink_metadata(self.dest.join(&child)).is_ok_and(|m| m.is_dir());
            if is_dir && written.ancestors.contains(&child) {
                self.clear_lower(&child, written)?;
            } else if !written.paths.contains(&child) {
                self.remove(&child)?;
            }
        }
        Ok(())
    }

    /// Removes whatever is at `rel`, if anything.
    fn remove(&mut self, rel: &Path) -> anyhow::Result<()> {
        let p = self.dest.join(rel);
        let removed = match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => {
                let gone: Vec<PathBuf> = self
                    .dir_times
                    .range(rel.to_path_buf()..)
                    .map(|(k, _)| k)
                    .take_while(|k| k.starts_with(rel))
                    .cloned()
                    .collect();
                for k in gone {
                    self.dir_times.remove(&k);
                }
                self.touch_parent(rel)?;
                fs::remove_dir_all(&p)
            }
            Ok(_) => {
                self.touch_parent(rel)?;
                fs::remove_file(&p)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        removed.with_context(|| format!("removing {}", p.display()))
    }

    fn set_dir_times(&self) -> anyhow::Result<()> {
        for (rel, mtime) in &self.dir_times {
            let p = self.dest.join(rel);
            fs_meta::set_mtime(&p, *mtime)
                .with_context(|| format!("setting the mtime of {}", p.display()))?;
        }
        Ok(())
    }
}
