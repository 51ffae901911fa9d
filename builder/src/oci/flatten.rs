//! Applies an image's layers in order into a folder, giving the root
//! filesystem the image describes, as `umoci unpack` (run as root) gives it:
//! whiteouts (`.wh.NAME`, `.wh..wh..opq`) delete what lower layers put
//! there, paths through symlinked folders land where the symlink points
//! (never outside the folder), and every entry keeps its type, mode
//! (setuid, setgid and sticky included), owner, extended attributes and
//! mtime. Folders keep the mtime their last entry records, whatever later
//! layers put into them.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::disk_tree::DiskTree;
use super::layer_stream::{self, EntryLimit, LayerStream};
use super::source::SourceImage;
use super::tree::{Kind, Tree};
use crate::error::{fail, Category};
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

/// Flattens every layer of `image` into the folder `dest` (created if
/// missing). Folders no layer describes (the root, missing parents) get `epoch`.
pub fn flatten(image: &SourceImage, dest: &Path, epoch: u64) -> anyhow::Result<Stats> {
    let (mut tree, created) =
        DiskTree::open(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut a = Applier::new(&mut tree, epoch);
    if created {
        a.dir_times.insert(PathBuf::new(), a.epoch);
    }
    a.apply_image(image, 0..image.layers.len())?;
    a.finish()
}

/// Applies the layers `range` of `image`, in order, onto `tree`. What is
/// already in `tree` is only ever unlinked or replaced, never written into.
pub fn apply_layers(
    image: &SourceImage,
    range: std::ops::Range<usize>,
    tree: &mut impl Tree,
    epoch: u64,
) -> anyhow::Result<Stats> {
    let mut a = Applier::new(tree, epoch);
    a.apply_image(image, range)?;
    a.finish()
}

/// Applies one plain tar archive (no whiteouts expected, though they work)
/// onto the folder `dest` (created if missing).
pub fn apply_tar(tar: impl Read, dest: &Path, epoch: u64) -> anyhow::Result<Stats> {
    let (mut tree, created) =
        DiskTree::open(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut a = Applier::new(&mut tree, epoch);
    if created {
        a.dir_times.insert(PathBuf::new(), a.epoch);
    }
    a.apply_layer(tar)?;
    a.finish()
}

struct Applier<'t, T: Tree> {
    tree: &'t mut T,
    epoch: i64,
    stats: Stats,
    /// The mtime each folder gets once the layers are applied: what its last
    /// entry says, or what it had before this run first changed its content
    /// (adding or removing a child changes a folder's mtime).
    dir_times: BTreeMap<PathBuf, i64>,
}

/// Decompressed chunks waiting to be applied (1 MiB each).
const AHEAD: usize = 8;
const CHUNK: usize = 1 << 20;

/// Sends `blob`'s decompressed stream as chunks until it ends, the reader
/// stops taking them, or reading fails (the reader then sees a cut stream).
fn pump(
    blob: &mut impl Read,
    media_type: &str,
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
) -> anyhow::Result<()> {
    let mut stream = LayerStream::open(blob, media_type)?;
    loop {
        let mut chunk = vec![0; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match stream.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        chunk.truncate(filled);
        if chunks.send(chunk).is_err() {
            // Applying stopped (it failed): the digest check still reads the rest.
            return Ok(());
        }
    }
}

/// The chunks `pump` sends, as one stream.
struct ChunkReader {
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    fn new(chunks: std::sync::mpsc::Receiver<Vec<u8>>) -> ChunkReader {
        ChunkReader {
            chunks,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(next) => (self.current, self.at) = (next, 0),
                // The sender is gone: the end, or a failure `pump` reports.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
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

impl<'t, T: Tree> Applier<'t, T> {
    fn new(tree: &'t mut T, epoch: u64) -> Self {
        Applier {
            tree,
            epoch: epoch as i64,
            stats: Stats::default(),
            dir_times: BTreeMap::new(),
        }
    }

    fn apply_image(
        &mut self,
        image: &SourceImage,
        range: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        for (i, desc) in image
            .layers
            .iter()
            .enumerate()
            .take(range.end)
            .skip(range.start)
        {
            let what = format!("layer {} of {}", desc.digest, image.origin);
            let ctx = || format!("applying {what}");
            // Decompressing (the blob's digest checked on the way) runs on
            // its own thread, a few megabytes ahead of applying.
            let (chunks, read_ahead) = std::sync::mpsc::sync_channel(AHEAD);
            let (applied, (finished, pumped)) = std::thread::scope(|s| {
                let producer = s.spawn(|| {
                    let mut blob = match image.open_layer(i) {
                        Ok(b) => b,
                        Err(e) => return (Ok(()), Err(e)),
                    };
                    let pumped = pump(&mut blob, &desc.media_type, chunks);
                    (blob.finish(), pumped)
                });
                let applied = self.apply_layer(ChunkReader::new(read_ahead));
                let produced = producer
                    .join()
                    .expect("the decompressing thread does not panic");
                (applied, produced)
            });
            // A corrupt blob usually fails decompression first; the digest check
            // says what is really wrong, so it takes precedence, then what
            // decompression says (what applying saw of it is only a cut stream).
            finished.with_context(ctx)?;
            let corrupt =
                |e| layer_stream::corrupt_unless_io(e, "applying", &what, &desc.media_type);
            pumped.map_err(corrupt)?;
            applied.map_err(corrupt)?;
            self.stats.layers += 1;
        }
        Ok(())
    }

    /// Gives folders their mtimes; returns what was done.
    fn finish(self) -> anyhow::Result<Stats> {
        for (rel, mtime) in &self.dir_times {
            let shown = self.tree.show(rel);
            self.tree
                .set_mtime(rel, *mtime)
                .with_context(|| format!("setting the mtime of {}", shown.display()))?;
        }
        Ok(self.stats)
    }

    fn apply_layer(&mut self, reader: impl Read) -> anyhow::Result<()> {
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
        // Reads what the tar reader left (its end-of-archive padding), so a
        // compressed stream's own end and checksum are checked too.
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
        Ok(())
    }

    /// `rel` resolved inside the root through the symlinks already there.
    fn resolve(&self, rel: &Path, follow_last: bool) -> anyhow::Result<PathBuf> {
        safe_path::resolve(rel, follow_last, |p| self.tree.read_link(p))
            .map_err(|e| fail(Category::BadImage, format!("layer entry {e}")))
    }

    fn kind(&self, rel: &Path) -> anyhow::Result<Option<Kind>> {
        self.tree
            .kind(rel)
            .with_context(|| format!("reading {}", self.tree.show(rel).display()))
    }

    /// Writes one entry at `rel` (its parent exists); false when it was skipped.
    fn apply_entry(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        raw: &Path,
        rel: &Path,
    ) -> anyhow::Result<bool> {
        let kind = entry.header().entry_type();
        let mode = entry.header().mode()? & 0o7777;
        let shown = self.tree.show(rel);
        let ctx = || format!("creating {}", shown.display());
        match kind {
            tar::EntryType::Directory => {
                match self.kind(rel)? {
                    Some(Kind::Dir) => {}
                    // A symlink to a folder stays, as consumers keep it.
                    Some(Kind::Symlink) if self.is_dir_through_links(rel) => return Ok(true),
                    Some(_) => {
                        self.remove(rel)?;
                        self.tree.create_dir(rel).with_context(ctx)?;
                    }
                    None => self.tree.create_dir(rel).with_context(ctx)?,
                }
                self.set_meta(entry, rel)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                self.remove(rel)?;
                self.tree.create_file(rel, entry).with_context(ctx)?;
                self.set_meta(entry, rel)?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.unwrap_or_default().into_owned();
                self.remove(rel)?;
                self.tree.symlink(rel, &link).with_context(ctx)?;
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
                let source = self.resolve(&link_rel, false)?;
                let refused = match self.kind(&source)? {
                    Some(Kind::Other) => None,
                    Some(Kind::Symlink) => Some("a symlink"),
                    Some(Kind::Dir) => Some("a folder"),
                    None => Some("nothing (no earlier entry made it)"),
                };
                if let Some(what) = refused {
                    return Err(fail(
                        Category::BadImage,
                        format!(
                            "hard link `{}` points at {what}: `{}`",
                            raw.display(),
                            link.display()
                        ),
                    ));
                }
                self.remove(rel)?;
                // The link shares its inode's metadata: nothing to set.
                let (from, to) = (self.tree.show(rel), self.tree.show(&source));
                self.tree
                    .hard_link(&source, rel)
                    .with_context(|| format!("linking {} to {}", from.display(), to.display()))?;
            }
            tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => {
                if kind != tar::EntryType::Fifo && !self.tree.records_everything() {
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
                self.tree.mknod(rel, kind, mode, dev).with_context(ctx)?;
                self.set_meta(entry, rel)?;
            }
            _ => {
                verbose!("skipping {} (entry type {kind:?})", raw.display());
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the symlink at `rel` leads, inside the root, to a folder.
    fn is_dir_through_links(&self, rel: &Path) -> bool {
        self.resolve(rel, true)
            .is_ok_and(|target| matches!(self.tree.kind(&target), Ok(Some(Kind::Dir))))
    }

    /// Owner, then mode (a chown clears setuid/setgid bits and file
    /// capabilities), then extended attributes, then the mtime (folders'
    /// once all layers are applied).
    fn set_meta(&mut self, entry: &mut tar::Entry<impl Read>, rel: &Path) -> anyhow::Result<()> {
        let h = entry.header();
        let (kind, uid, gid, mode, mtime) = (
            h.entry_type(),
            h.uid()?,
            h.gid()?,
            h.mode()?,
            h.mtime()? as i64,
        );
        let shown = self.tree.show(rel);
        let ctx = || format!("setting the metadata of {}", shown.display());
        self.tree.set_owner(rel, uid, gid).with_context(ctx)?;
        if kind != tar::EntryType::Symlink {
            self.tree.set_mode(rel, mode & 0o7777).with_context(ctx)?;
        }
        if kind == tar::EntryType::Directory {
            // A folder entry over an existing folder carries the whole set.
            self.tree.clear_xattrs(rel).with_context(ctx)?;
        }
        if let Some(extensions) = entry.pax_extensions()? {
            for ext in extensions {
                let ext = ext?;
                let Some(name) = ext.key_bytes().strip_prefix(XATTR_PREFIX.as_bytes()) else {
                    continue;
                };
                match self.tree.set_xattr(rel, name, ext.value_bytes()) {
                    Ok(()) => {}
                    // Unprivileged, only `user.*` can be set, and never on a symlink.
                    Err(e)
                        if !self.tree.records_everything() || kind == tar::EntryType::Symlink =>
                    {
                        self.stats.skipped_xattrs += 1;
                        verbose!(
                            "skipping xattr {} of {} ({e})",
                            String::from_utf8_lossy(name),
                            shown.display()
                        );
                    }
                    Err(e) => return Err(e).with_context(ctx),
                }
            }
        }
        if kind == tar::EntryType::Directory {
            self.dir_times.insert(rel.to_path_buf(), mtime);
        } else {
            self.tree.set_mtime(rel, mtime).with_context(ctx)?;
        }
        Ok(())
    }

    /// Notes the mtime of `rel`'s parent before its content changes.
    fn touch_parent(&mut self, rel: &Path) -> anyhow::Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !self.dir_times.contains_key(parent) {
            let mtime = self
                .tree
                .mtime(parent)
                .with_context(|| format!("reading {}", self.tree.show(parent).display()))?;
            self.dir_times.insert(parent.to_path_buf(), mtime);
        }
        Ok(())
    }

    /// The folder `rel` (resolved, no symlinks on the way), created as needed.
    fn ensure_dir(&mut self, rel: &Path) -> anyhow::Result<()> {
        let mut p = PathBuf::new();
        for c in rel.components() {
            p.push(c);
            match self.kind(&p)? {
                Some(Kind::Dir) => continue,
                Some(_) => self.remove(&p)?,
                None => self.touch_parent(&p)?,
            }
            let shown = self.tree.show(&p);
            self.tree
                .create_dir(&p)
                .with_context(|| format!("creating {}", shown.display()))?;
            self.dir_times.insert(p.clone(), self.epoch);
        }
        Ok(())
    }

    /// Removes what lower layers put in folder `rel`, keeping what this
    /// layer wrote (also deeper down).
    fn clear_lower(&mut self, rel: &Path, written: &Written) -> anyhow::Result<()> {
        let mut children = self
            .tree
            .children(rel)
            .with_context(|| format!("reading {}", self.tree.show(rel).display()))?;
        children.sort();
        for name in children {
            let child = rel.join(name);
            let is_dir = self.kind(&child)? == Some(Kind::Dir);
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
        match self.kind(rel)? {
            None => return Ok(()),
            Some(Kind::Dir) => {
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
            }
            Some(_) => {}
        }
        self.touch_parent(rel)?;
        let shown = self.tree.show(rel);
        self.tree
            .remove(rel)
            .with_context(|| format!("removing {}", shown.display()))
    }
}
