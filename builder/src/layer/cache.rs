//! Layers cached by the digest of their inputs, so a rebuild redoes only the
//! layers whose inputs changed. An entry is `<key>.tar.gz` (or `.tar.zst`)
//! plus `<key>.json`
//! (descriptor and diff_id, carrying its own checksum: `io::sealed`),
//! written atomically and touched on every use so `edgeforge cache prune`
//! can drop the stale ones. A cached blob is hashed against its descriptor
//! before it is used (lower layers are read from it to place the next one),
//! and a damaged one is built anew with a warning; it is checked again as
//! it is copied into an image.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::compress::LayerCompression;
use super::secrets::{Secret, SecretGuard};
use super::writer::{LayerBlob, LayerWriter};
use crate::io::{file_sha256, sealed, AtomicFile, Sha256Digest};
use crate::log::warning;
use crate::oci::spec::{Descriptor, Digest};
use crate::progress::Progress;

/// Bump when the bytes a layer writer produces for the same input, or the
/// entry's files, change.
const FORMAT: &str = "edgeforge-layer/v3";
/// Bump when the secret guard refuses more: an entry an older guard let
/// through was never checked by this one.
const GUARD: &str = "secret-guard/2";

pub struct LayerCache {
    dir: PathBuf,
    /// How this run's layers are compressed: part of every key.
    compression: LayerCompression,
    /// Looked for in every layer built. An entry built before the run knew
    /// a secret was never scanned for it, so with secrets entries are
    /// rescanned when taken from the cache.
    secrets: Vec<Secret>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    descriptor: Descriptor,
    diff_id: Digest,
}

impl LayerCache {
    pub fn open(
        dir: &Path,
        compression: LayerCompression,
        secrets: Vec<Secret>,
    ) -> anyhow::Result<LayerCache> {
        let dir = dir.join("layers");
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating the cache folder {}", dir.display()))?;
        Ok(LayerCache {
            dir,
            compression,
            secrets,
        })
    }

    /// A cache key over the layer format, the compression and the given parts.
    pub fn key(&self, parts: &[&str]) -> Sha256Digest {
        let mut h = Sha256::new();
        h.update(FORMAT);
        h.update(GUARD);
        h.update(self.compression.as_str());
        for p in parts {
            h.update(b"\n");
            h.update(p.as_bytes());
        }
        Sha256Digest(h.finalize().into())
    }

    /// The layer for `key`: from the cache (`true`), or built by `fill` and stored.
    pub fn get_or_build(
        &self,
        key: &Sha256Digest,
        epoch: u64,
        fill: impl FnOnce(&mut LayerWriter<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<(LayerBlob, bool)> {
        let blob_path = self
            .dir
            .join(format!("{key}.{}", self.compression.extension()));
        let meta_path = self.dir.join(format!("{key}.json"));
        if let Some(blob) = self.lookup(&blob_path, &meta_path) {
            // An entry carrying a secret is built again, so the refusal
            // names the overlay or component file it came from.
            if self.secrets.is_empty() || !super::rescan::carries_secrets(&blob, &self.secrets) {
                return Ok((blob, true));
            }
        }
        let temp = tempfile::Builder::new()
            .prefix(".edgeforge-")
            .suffix(".partial")
            .tempfile_in(&self.dir)
            .with_context(|| format!("creating a layer in {}", self.dir.display()))?
            .into_temp_path();
        let progress = Progress::bytes(format!("layer {}", &key.to_string()[..12]));
        let mut w = LayerWriter::create(
            &temp,
            self.compression,
            epoch,
            SecretGuard::new(self.secrets.clone()),
            Some(&progress),
        )?;
        fill(&mut w)?;
        let blob = w.finish()?;
        progress.finish();
        let entry = Entry {
            descriptor: blob.descriptor.clone(),
            diff_id: blob.diff_id,
        };
        temp.persist(&blob_path)
            .with_context(|| format!("storing {}", blob_path.display()))?;
        AtomicFile::write(&meta_path, &sealed::to_vec(&entry)?, 0o644)?;
        Ok((
            LayerBlob {
                path: blob_path,
                ..blob
            },
            false,
        ))
    }

    /// The cached layer, if there is one and its blob hashes to its digest.
    /// A damaged one is reported and left to be replaced (renamed over, so
    /// a build reading it at the same time keeps its open file).
    fn lookup(&self, blob_path: &Path, meta_path: &Path) -> Option<LayerBlob> {
        let bytes = fs::read(meta_path).ok()?;
        match self.check(blob_path, &bytes) {
            Ok(blob) => Some(blob),
            Err(why) => {
                warning!(
                    "the cached layer {} is damaged ({why}); building it anew",
                    blob_path.display()
                );
                None
            }
        }
    }

    fn check(&self, blob_path: &Path, meta: &[u8]) -> Result<LayerBlob, String> {
        let entry: Entry = sealed::from_slice(meta).map_err(|e| format!("its metadata: {e}"))?;
        let file = File::options()
            .write(true)
            .open(blob_path)
            .map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        if size != entry.descriptor.size {
            return Err(format!("{size} bytes, not {}", entry.descriptor.size));
        }
        let (sha, _) = file_sha256(blob_path).map_err(|e| e.to_string())?;
        if Digest(sha) != entry.descriptor.digest {
            return Err(format!("sha256:{sha}, not {}", entry.descriptor.digest));
        }
        // Touched on use: prune removes what was not used recently.
        let _ = file.set_modified(SystemTime::now());
        Ok(LayerBlob {
            descriptor: entry.descriptor,
            diff_id: entry.diff_id,
            path: blob_path.to_path_buf(),
        })
    }
}

/// Removes cached layers not used for `older_than` (all with zero). Returns
/// the entries and bytes removed.
pub fn prune(
    cache_dir: &Path,
    older_than: Duration,
    freed: &mut crate::freed::Freed,
) -> anyhow::Result<usize> {
    let dir = cache_dir.join("layers");
    let now = SystemTime::now();
    let mut entries = 0;
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(0);
    };
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // Each entry is its blob; the .json beside it goes with it.
        let Some(stem) = [LayerCompression::Gzip, LayerCompression::Zstd]
            .iter()
            .find_map(|c| name.strip_suffix(&format!(".{}", c.extension())))
        else {
            continue;
        };
        let md = match e.metadata() {
            Ok(md) => md,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("reading {}", e.path().display())),
        };
        let age = now.duration_since(md.modified()?).unwrap_or_default();
        if age >= older_than {
            fs::remove_file(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
            let _ = fs::remove_file(dir.join(format!("{stem}.json")));
            entries += 1;
            freed.file(&md);
        }
    }
    Ok(entries)
}
