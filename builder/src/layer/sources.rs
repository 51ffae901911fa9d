//! What fills a layer: a folder (walked in sorted order) or a tarball
//! (re-written entry by entry, so ownership and mtimes are normalized and
//! every path is checked).

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::writer::{LayerWriter, Meta};
use crate::error::{fail, Category};
use crate::log::verbose;
use crate::safe_path;

/// Emits directory entries for each ancestor of `dest` (a relative path), so
/// content placed under `/opt/x` has its parents in the layer.
fn add_parents(w: &mut LayerWriter<'_>, dest: &Path, epoch: u64) -> anyhow::Result<()> {
    let mut p = PathBuf::new();
    for c in dest.components() {
        p.push(c);
        w.dir(
            &p,
            &Meta {
                mode: 0o755,
                mtime: epoch,
            },
        )?;
    }
    Ok(())
}

/// Adds the content of folder `root` at `dest` (relative to the image root).
/// `origin` names the file a path (relative to `root`) came from, for errors.
pub fn add_tree(
    w: &mut LayerWriter<'_>,
    root: &Path,
    dest: &Path,
    epoch: u64,
    origin: &dyn Fn(&Path) -> String,
) -> anyhow::Result<()> {
    add_parents(w, dest, epoch)?;
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
        let meta = Meta {
            mode: md.permissions().mode(),
            mtime: md.mtime().max(0) as u64,
        };
        let ft = md.file_type();
        if ft.is_dir() {
            w.dir(&name, &meta)?;
        } else if ft.is_file() {
            let f = File::open(src).with_context(|| format!("reading {}", src.display()))?;
            w.file(&name, &meta, md.len(), f, &origin(rel))?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(src)
                .with_context(|| format!("reading link {}", src.display()))?;
            if !safe_path::symlink_stays_inside(&name, &target) {
                return Err(fail(
                    Category::BadImage,
                    format!(
                        "{}: symlink to `{}` points outside the image root",
                        origin(rel),
                        target.display()
                    ),
                ));
            }
            w.symlink(&name, &target, &meta)?;
        } else {
            verbose!(
                "skipping {} (socket, device or FIFO in a folder source)",
                src.display()
            );
        }
    }
    Ok(())
}

/// Opens a possibly compressed tar, detecting gzip and zstd by magic bytes.
fn open_tar(path: &Path) -> anyhow::Result<tar::Archive<Box<dyn Read>>> {
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
    Ok(tar::Archive::new(reader))
}

/// Adds the entries of tarball `path` at `dest`. Entries climbing out of the
/// root (`..`, absolute names, symlinks or hard links pointing outside) are refused.
pub fn add_tarball(
    w: &mut LayerWriter<'_>,
    path: &Path,
    dest: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    add_parents(w, dest, epoch)?;
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
    for entry in archive
        .entries()
        .with_context(|| format!("reading {}", path.display()))?
    {
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
        let h = entry.header();
        let meta = Meta {
            mode: h.mode()?,
            mtime: h.mtime()?,
        };
        let kind = h.entry_type();
        let source = format!("{}:{}", path.display(), raw.display());
        match kind {
            tar::EntryType::Directory => w.dir(&name, &meta)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                w.file(&name, &meta, size, &mut entry, &source)?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                if !safe_path::symlink_stays_inside(&rel, &target) {
                    return Err(unsafe_entry(format!(
                        "symlink `{}` -> `{}` points outside the root",
                        raw.display(),
                        target.display()
                    )));
                }
                w.symlink(&name, &target, &meta)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name()?.unwrap_or_default().into_owned();
                let target = safe_path::entry_path(&target)
                    .map_err(|e| unsafe_entry(format!("hard link `{}` -> {e}", raw.display())))?
                    .ok_or_else(|| {
                        unsafe_entry(format!("hard link `{}` points at the root", raw.display()))
                    })?;
                w.hardlink(&name, &dest.join(target), &meta)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let dev = (
                    h.device_major()?.unwrap_or(0),
                    h.device_minor()?.unwrap_or(0),
                );
                w.special(&name, kind, &meta, dev)?;
            }
            other => verbose!("skipping {source}: entry type {other:?}"),
        }
    }
    Ok(())
}
