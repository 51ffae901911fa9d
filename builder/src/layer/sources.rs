//! What fills a layer: a folder (walked in sorted order) or a tarball
//! (re-written entry by entry, so ownership and mtimes are normalized and
//! every path is checked).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::lower::{LowerView, Place};
use super::writer::{LayerWriter, Meta};
use crate::error::{fail, Category};
use crate::log::verbose;
use crate::oci::layer_stream::{EntryLimit, LayerStream};
use crate::safe_path;
use crate::source_files;

/// What a new layer is placed on, and the modes the definition sets.
pub struct Placement<'a> {
    pub lower: &'a LowerView,
    /// By image path without the leading `/` (`file_modes`).
    pub modes: &'a BTreeMap<PathBuf, u32>,
}

impl Placement<'_> {
    /// The name an entry is written under, or `None` for a folder the lower
    /// layers already have.
    fn place(&self, name: &Path, dir: bool) -> anyhow::Result<Option<PathBuf>> {
        Ok(match self.lower.place(name, dir)? {
            Place::At(at) => Some(at),
            Place::Existing => None,
        })
    }

    /// The definition's mode for `name` (as declared, or where it landed).
    fn mode(&self, name: &Path, at: &Path) -> Option<u32> {
        self.modes.get(name).or_else(|| self.modes.get(at)).copied()
    }
}

/// Emits folder entries for the ancestors of `dest` (a relative path) that
/// the lower layers do not have, so content placed under `/opt/x` has its
/// parents in the layer.
fn add_parents(
    w: &mut LayerWriter<'_>,
    to: &Placement<'_>,
    dest: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    let mut p = PathBuf::new();
    for c in dest.components() {
        p.push(c);
        if let Some(at) = to.place(&p, true)? {
            let mode = to.mode(&p, &at).unwrap_or(0o755);
            w.dir(&at, &Meta::new(mode, epoch))?;
        }
    }
    Ok(())
}

/// Adds the content of folder `root` at `dest` (relative to the image root).
/// What a checkout gives a file besides its content is noise (the umask,
/// the clone time), so entries get 0755 (folders and executables) or 0644
/// unless `file_modes` says otherwise, and `epoch` as their mtime.
/// `origin` names the file a path (relative to `root`) came from, for errors.
pub fn add_tree(
    w: &mut LayerWriter<'_>,
    to: &Placement<'_>,
    root: &Path,
    dest: &Path,
    epoch: u64,
    origin: &dyn Fn(&Path) -> String,
) -> anyhow::Result<()> {
    add_parents(w, to, dest, epoch)?;
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        let src = entry.path();
        let rel = src
            .strip_prefix(root)
            .expect("walkdir yields paths under its root");
        let name = dest.join(rel);
        let md = entry
            .metadata()
            .with_context(|| format!("reading {}", src.display()))?;
        let ft = md.file_type();
        source_files::check(src, ft)?;
        let Some(at) = to.place(&name, ft.is_dir())? else {
            continue;
        };
        let normal = if ft.is_dir() || md.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let meta = Meta::new(to.mode(&name, &at).unwrap_or(normal), epoch);
        if ft.is_dir() {
            w.dir(&at, &meta)?;
        } else if ft.is_file() {
            let f = File::open(src).with_context(|| format!("reading {}", src.display()))?;
            w.file(&at, &meta, md.len(), f, &origin(rel))?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(src)
                .with_context(|| format!("reading link {}", src.display()))?;
            if !safe_path::symlink_stays_inside(&at, &target) {
                return Err(fail(
                    Category::BadImage,
                    format!(
                        "{}: symlink to `{}` points outside the image root",
                        origin(rel),
                        target.display()
                    ),
                ));
            }
            w.symlink(&at, &target, &meta)?;
        }
    }
    Ok(())
}

/// Opens a possibly compressed tar, detecting gzip and zstd by magic bytes.
fn open_tar(path: &Path) -> anyhow::Result<tar::Archive<LayerStream<'static>>> {
    let mut f =
        BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let magic = {
        use std::io::BufRead;
        f.fill_buf()
            .with_context(|| format!("reading {}", path.display()))?
            .get(..4)
            .map(<[u8]>::to_vec)
    };
    let reader: Box<dyn Read> = match magic.as_deref() {
        Some([0x1f, 0x8b, ..]) => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Some([0x28, 0xb5, 0x2f, 0xfd]) => Box::new(zstd::Decoder::with_buffer(f)?),
        _ => Box::new(f),
    };
    // A small compressed tarball can expand without end: bounded like a layer.
    let reader = LayerStream::bounded(reader)?;
    Ok(tar::Archive::new(reader))
}

/// Adds the entries of tarball `path` at `dest`. Entries climbing out of the
/// root (`..`, absolute names, symlinks or hard links pointing outside) are refused.
pub fn add_tarball(
    w: &mut LayerWriter<'_>,
    to: &Placement<'_>,
    path: &Path,
    dest: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    add_parents(w, to, dest, epoch)?;
    let mut archive = open_tar(path)?;
    let unsafe_entry = |what: String| {
        fail(
            Category::BadImage,
            format!(
                "{}: {what}; the tarball is unsafe to unpack, fix how it is made",
                path.display()
            ),
        )
    };
    let mut limit = EntryLimit::new()?;
    for entry in archive
        .entries()
        .with_context(|| format!("reading {}", path.display()))?
    {
        limit.count()?;
        let mut entry =
            entry.with_context(|| format!("reading {} as a tar archive", path.display()))?;
        let raw = entry
            .path()
            .with_context(|| format!("reading an entry name in {}", path.display()))?
            .into_owned();
        let Some(rel) =
            safe_path::entry_path(&raw).map_err(|e| unsafe_entry(format!("entry {e}")))?
        else {
            continue;
        };
        let name = dest.join(&rel);
        let kind = entry.header().entry_type();
        let Some(at) = to.place(&name, kind == tar::EntryType::Directory)? else {
            continue;
        };
        let mut meta = Meta {
            mode: to.mode(&name, &at).unwrap_or(entry.header().mode()?),
            mtime: entry.header().mtime()?,
            xattrs: xattrs(&mut entry)?,
        };
        let h = entry.header();
        let source = format!("{}:{}", path.display(), raw.display());
        match kind {
            tar::EntryType::Directory => w.dir(&at, &meta)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                w.file(&at, &meta, size, &mut entry, &source)?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                if !safe_path::symlink_stays_inside(&at, &target) {
                    return Err(unsafe_entry(format!(
                        "symlink `{}` -> `{}` points outside the root",
                        raw.display(),
                        target.display()
                    )));
                }
                w.symlink(&at, &target, &meta)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                let target = safe_path::entry_path(&target)
                    .map_err(|e| unsafe_entry(format!("hard link `{}` -> {e}", raw.display())))?
                    .ok_or_else(|| {
                        unsafe_entry(format!("hard link `{}` points at the root", raw.display()))
                    })?;
                let target = to.lower.resolve_entry(&dest.join(target))?;
                // A hard link's metadata is its target's.
                meta.xattrs.clear();
                w.hardlink(&at, &target, &meta)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let dev = (
                    h.device_major()?.unwrap_or(0),
                    h.device_minor()?.unwrap_or(0),
                );
                w.special(&at, kind, &meta, dev)?;
            }
            other => verbose!("skipping {source}: entry type {other:?}"),
        }
    }
    Ok(())
}

/// The extended attributes a tar entry carries (`SCHILY.xattr.*`), such as
/// `security.capability`.
fn xattrs(entry: &mut tar::Entry<impl Read>) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for ext in extensions {
            let ext = ext?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}
