//! Applies an image's layers in order into a folder, giving the root
//! filesystem the image describes: whiteouts (`.wh.NAME`, `.wh..wh..opq`)
//! delete what lower layers put there, and nothing is written outside the
//! folder or through a symlink.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::source::SourceImage;
use super::spec::{layer_compression, Compression};
use crate::error::{fail, Category};
use crate::log::verbose;
use crate::safe_path;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What one flattening did, for the log.
#[derive(Debug, Default)]
pub struct Stats {
    pub layers: usize,
    pub entries: u64,
    pub whiteouts: u64,
    pub skipped_devices: u64,
}

/// Flattens every layer of `image` into `dest` (created if missing).
pub fn flatten(image: &SourceImage, dest: &Path) -> anyhow::Result<Stats> {
    flatten_layers(image, 0..image.layers.len(), dest)
}

/// Applies the layers `range` of `image`, in order, onto `dest` (created if
/// missing). What is already in `dest` is only ever unlinked or replaced by
/// new files, never written into, so `dest` may hold hard links to files
/// that must not change.
pub fn flatten_layers(
    image: &SourceImage,
    range: std::ops::Range<usize>,
    dest: &Path,
) -> anyhow::Result<Stats> {
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let owner = is_root();
    let mut stats = Stats::default();
    for (i, desc) in image
        .layers
        .iter()
        .enumerate()
        .take(range.end)
        .skip(range.start)
    {
        let mut blob = image.open_layer(i)?;
        let ctx = || format!("applying layer {} of {}", desc.digest, image.origin);
        let applied = (|| {
            let reader: Box<dyn Read> = match layer_compression(&desc.media_type) {
                Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(&mut blob)),
                Some(Compression::Zstd) => Box::new(zstd::Decoder::new(&mut blob)?),
                _ => Box::new(&mut blob),
            };
            apply_layer(reader, dest, owner, &mut stats)
        })();
        // A corrupt blob usually fails decompression first; the digest check
        // says what is really wrong, so it takes precedence.
        blob.finish().with_context(ctx)?;
        applied.with_context(ctx)?;
        stats.layers += 1;
    }
    Ok(stats)
}

/// Only root can give files the owners the layers record; /proc/self belongs
/// to the process's effective user.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn apply_layer(
    reader: impl Read,
    dest: &Path,
    owner: bool,
    stats: &mut Stats,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    // Paths this layer wrote: an opaque whiteout clears only lower layers.
    let mut written: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = match safe_path::entry_path(&raw) {
            Ok(Some(rel)) => rel,
            Ok(None) => continue,
            Err(e) => {
                return Err(fail(
                    Category::BadImage,
                    format!("layer entry {e}; the image is unsafe to unpack"),
                ))
            }
        };
        stats.entries += 1;
        let file_name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        if file_name == OPAQUE {
            let dir = checked_parent(dest, parent_rel)?;
            clear_dir(&dir, parent_rel, &written)?;
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(fail(
                    Category::BadImage,
                    format!("whiteout `{}` names no file", raw.display()),
                ));
            }
            let parent = checked_parent(dest, parent_rel)?;
            remove_any(&parent.join(hidden))?;
            stats.whiteouts += 1;
            continue;
        }
        let parent = checked_parent(dest, parent_rel)?;
        let target = parent.join(rel.file_name().expect("normalized paths end in a name"));
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode()? & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        remove_any(&target)?;
                        fs::create_dir(&target)?;
                    }
                    Err(_) => fs::create_dir(&target)?,
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_any(&target)?;
                let mut f = fs::File::create(&target)
                    .with_context(|| format!("creating {}", target.display()))?;
                io::copy(&mut entry, &mut f)?;
                f.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.unwrap_or_default().into_owned();
                remove_any(&target)?;
                symlink(&link, &target)?;
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
                let link_parent = checked_parent(dest, link_rel.parent().unwrap_or(Path::new("")))?;
                let source = link_parent.join(link_rel.file_name().expect("normalized"));
                if fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(fail(
                        Category::BadImage,
                        format!("hard link `{}` points at a symlink", raw.display()),
                    ));
                }
                remove_any(&target)?;
                fs::hard_link(&source, &target).with_context(|| {
                    format!("linking {} to {}", target.display(), source.display())
                })?;
            }
            _ => {
                // Device nodes cannot be made without privileges and the live
                // system mounts devtmpfs over /dev anyway.
                stats.skipped_devices += 1;
                verbose!("skipping {} (entry type {kind:?})", raw.display());
                continue;
            }
        }
        if owner && kind != tar::EntryType::Link {
            std::os::unix::fs::lchown(
                &target,
                Some(header.uid()? as u32),
                Some(header.gid()? as u32),
            )?;
        }
        written.insert(rel);
    }
    Ok(())
}

/// The folder `dest/parent_rel`, created as needed, after checking that no
/// component on the way is a symlink (which could lead out of `dest`).
fn checked_parent(dest: &Path, parent_rel: &Path) -> anyhow::Result<PathBuf> {
    let mut p = dest.to_path_buf();
    for c in parent_rel.components() {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                return Err(fail(
                    Category::BadImage,
                    format!("an entry under `{}` would be written through a symlink; the image is unsafe to unpack", parent_rel.display()),
                ))
            }
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                fs::remove_file(&p)?;
                fs::create_dir(&p)?;
            }
            Err(_) => fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?,
        }
    }
    Ok(p)
}

/// Removes the content of `dir` except what this layer wrote.
fn clear_dir(dir: &Path, rel: &Path, keep: &HashSet<PathBuf>) -> anyhow::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if !keep.contains(&rel.join(e.file_name())) {
            remove_any(&e.path())?;
        }
    }
    Ok(())
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
