//! `cache prune` for pulled images: resolutions not used for a while are
//! dropped, then every blob of the shared layout that no remaining
//! resolution's image uses (its manifest, config and layers) is removed,
//! and the layout's index.json keeps only the images still there.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::pull::{self, Resolved};
use crate::freed::Freed;
use crate::io::{sealed, AtomicFile};
use crate::log::info;
use crate::oci::spec::{Digest, Index, Manifest};

/// Removes resolutions unused for `older_than` and the blobs only they
/// kept; returns (resolutions removed, bytes removed).
pub fn prune(cache: &Path, older_than: Duration, freed: &mut Freed) -> anyhow::Result<usize> {
    let store = cache.join("registry");
    if !store.is_dir() {
        return Ok(0);
    }
    let _lock = pull::lock_store(&store)?;
    // A running build reads its base's blobs long after it opened it.
    let readers_path = store.join(".readers");
    let readers = fs::File::create(&readers_path)
        .with_context(|| format!("creating {}", readers_path.display()))?;
    match readers.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            info!(
                "{}: a running build reads pulled images; they are kept this time",
                store.display()
            );
            return Ok(0);
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", readers_path.display()))
        }
    }
    let now = SystemTime::now();
    let mut removed = 0;
    let mut live: BTreeSet<Digest> = BTreeSet::new();
    let refs = store.join("refs");
    for entry in fs::read_dir(&refs).into_iter().flatten() {
        let entry = entry?;
        let md = entry.metadata()?;
        let used = md.modified().ok().and_then(|m| now.duration_since(m).ok());
        let record = fs::read(entry.path())
            .ok()
            .and_then(|b| sealed::from_slice::<Resolved>(&b).ok());
        match record {
            Some(r) if used.is_some_and(|u| u < older_than) => {
                live.insert(r.manifest.digest);
            }
            _ => {
                fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
                removed += 1;
                freed.file(&md);
            }
        }
    }
    let layout = store.join("layout");
    let mut keep = BTreeSet::new();
    for m in &live {
        let Ok(text) = fs::read(layout.join(m.blob_path())) else {
            continue;
        };
        keep.insert(*m);
        // A manifest that does not parse keeps only itself; its image is
        // checked (and pulled again) when next used.
        if let Ok(manifest) = serde_json::from_slice::<Manifest>(&text) {
            keep.insert(manifest.config.digest);
            keep.extend(manifest.layers.iter().map(|l| l.digest));
        }
    }
    for entry in fs::read_dir(layout.join("blobs/sha256"))
        .into_iter()
        .flatten()
    {
        let entry = entry?;
        let name = format!("sha256:{}", entry.file_name().to_string_lossy());
        if name.parse::<Digest>().is_ok_and(|d| keep.contains(&d)) {
            continue;
        }
        freed.file(&entry.metadata()?);
        fs::remove_file(entry.path())
            .with_context(|| format!("removing {}", entry.path().display()))?;
    }
    // skopeo writes each blob to `oci-put-blob*` in the layout's top folder
    // and renames it into place; one killed mid-copy leaves that file, and
    // with the store locked no copy is running.
    for entry in fs::read_dir(&layout).into_iter().flatten() {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("oci-put-blob")
        {
            freed.file(&entry.metadata()?);
            fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    let index_path = layout.join("index.json");
    if let Ok(text) = fs::read(&index_path) {
        if let Ok(mut index) = serde_json::from_slice::<Index>(&text) {
            index.manifests.retain(|d| keep.contains(&d.digest));
            AtomicFile::write(&index_path, &serde_json::to_vec(&index)?, 0o644)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_removed_while_a_run_reads_pulled_images() {
        let cache = tempfile::tempdir().unwrap();
        let store = cache.path().join("registry");
        let blob = store.join("layout/blobs/sha256").join("ab".repeat(32));
        fs::create_dir_all(blob.parent().unwrap()).unwrap();
        fs::write(&blob, b"unused").unwrap();
        let reading = pull::share_store(&store).unwrap();
        let mut freed = Freed::default();
        assert_eq!(prune(cache.path(), Duration::ZERO, &mut freed).unwrap(), 0);
        assert_eq!(freed.bytes, 0);
        assert!(blob.exists());
        drop(reading);
        assert_eq!(prune(cache.path(), Duration::ZERO, &mut freed).unwrap(), 0);
        assert_eq!(freed.bytes, 6);
        assert!(!blob.exists());
    }

    #[test]
    fn a_killed_copy_s_partial_blob_is_removed() {
        let cache = tempfile::tempdir().unwrap();
        let layout = cache.path().join("registry/layout");
        fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        fs::write(layout.join("oci-put-blob123456"), [0u8; 1000]).unwrap();
        fs::write(layout.join("oci-layout"), b"{}").unwrap();
        let mut freed = Freed::default();
        prune(cache.path(), Duration::from_secs(86400), &mut freed).unwrap();
        assert_eq!(freed.bytes, 1000);
        assert!(!layout.join("oci-put-blob123456").exists());
        assert!(layout.join("oci-layout").exists());
    }
}
