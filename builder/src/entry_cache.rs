//! Cache entries that are folders of files: `<cache>/<kind>/<key>/` holding
//! the files and an `entry.json`, keyed by the digest of everything that went
//! into them. An entry is built beside its final name and renamed into place,
//! so a half-written one never has it; `entry.json` is touched on every use
//! so `edgeforge cache prune` drops the entries not used recently.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest as _, Sha256};

use crate::io::{AtomicFile, Sha256Digest};

const META: &str = "entry.json";

/// A key over the given parts (a format string first, so bumping it retires
/// every older entry).
pub fn key(parts: &[&str]) -> Sha256Digest {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    Sha256Digest(h.finalize().into())
}

pub struct EntryCache {
    dir: PathBuf,
}

/// A stored entry: its folder (files are `dir.join(name)`) and metadata.
pub struct Entry<T> {
    pub dir: PathBuf,
    pub meta: T,
}

impl EntryCache {
    pub fn new(cache_dir: &Path, kind: &str) -> EntryCache {
        EntryCache {
            dir: cache_dir.join(kind),
        }
    }

    /// The entry for `key`, when it is complete: readable metadata and every
    /// one of `required` (files or folders).
    pub fn lookup<T: DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        required: &[&str],
    ) -> Option<Entry<T>> {
        let dir = self.dir.join(key.to_string());
        let meta = serde_json::from_slice(&fs::read(dir.join(META)).ok()?).ok()?;
        if !required.iter().all(|f| dir.join(f).exists()) {
            return None;
        }
        let _ = fs::File::options()
            .write(true)
            .open(dir.join(META))
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(Entry { dir, meta })
    }

    /// Stores `files` (hard-linked when possible) with `meta` under `key`
    /// and returns the stored entry.
    pub fn store<T: Serialize + DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        files: &[(&str, &Path)],
        meta: T,
    ) -> anyhow::Result<Entry<T>> {
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        self.store_with(key, &names, |dir| {
            for (name, src) in files {
                let to = dir.join(name);
                if fs::hard_link(src, &to).is_err() {
                    fs::copy(src, &to).with_context(|| format!("caching {}", src.display()))?;
                }
            }
            Ok(meta)
        })
    }

    /// Stores what `fill` writes into the new entry's folder (`names` are
    /// its files or folders) under `key`, with the metadata `fill` returns.
    pub fn store_with<T: Serialize + DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        names: &[&str],
        fill: impl FnOnce(&Path) -> anyhow::Result<T>,
    ) -> anyhow::Result<Entry<T>> {
        let entry = self.dir.join(key.to_string());
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let temp = tempfile::Builder::new()
            .prefix(".edgeforge-")
            .tempdir_in(&self.dir)?;
        let meta = fill(temp.path())?;
        AtomicFile::write(&temp.path().join(META), &serde_json::to_vec(&meta)?, 0o644)?;
        let temp = temp.keep();
        if fs::rename(&temp, &entry).is_err() {
            if self.lookup::<T>(key, names).is_some() {
                // Another build stored the same entry first; it has the same bytes.
                let _ = fs::remove_dir_all(&temp);
            } else {
                // An unreadable leftover (an interrupted or older edgeforge): replace it.
                fs::remove_dir_all(&entry)
                    .with_context(|| format!("replacing {}", entry.display()))?;
                fs::rename(&temp, &entry)
                    .with_context(|| format!("storing {}", entry.display()))?;
            }
        }
        self.lookup(key, names).ok_or_else(|| {
            anyhow::anyhow!("the cache entry {} could not be read back", entry.display())
        })
    }

    /// Removes the entries not used for `older_than`. Returns the entries and
    /// bytes removed.
    pub fn prune(&self, older_than: Duration) -> anyhow::Result<(usize, u64)> {
        let (mut entries, mut bytes) = (0, 0);
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Ok((0, 0));
        };
        for e in rd {
            let e = e.with_context(|| format!("reading {}", self.dir.display()))?;
            let Ok(md) = fs::metadata(e.path().join(META)) else {
                continue;
            };
            let idle = SystemTime::now()
                .duration_since(md.modified()?)
                .unwrap_or_default();
            if idle < older_than {
                continue;
            }
            bytes += walkdir::WalkDir::new(e.path())
                .into_iter()
                .filter_map(Result::ok)
                .filter(|f| f.file_type().is_file())
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
            fs::remove_dir_all(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
            entries += 1;
        }
        Ok((entries, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_entry_is_replaced_and_pruned() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("a");
        fs::write(&src, "bytes").unwrap();
        let cache = EntryCache::new(&t.path().join("cache"), "kind");
        let k = key(&["test"]);
        let leftover = t.path().join("cache/kind").join(k.to_string());
        fs::create_dir_all(&leftover).unwrap();
        fs::write(leftover.join(META), "{not json").unwrap();
        assert!(cache.lookup::<Vec<u8>>(&k, &["a"]).is_none());
        let stored = cache.store(&k, &[("a", &src)], vec![1u8]).unwrap();
        assert_eq!(fs::read(stored.dir.join("a")).unwrap(), b"bytes");
        assert_eq!(stored.meta, vec![1u8]);
        assert!(cache.lookup::<Vec<u8>>(&k, &["a", "b"]).is_none());
        assert_eq!(cache.prune(Duration::from_secs(3600)).unwrap().0, 0);
        let (n, bytes) = cache.prune(Duration::ZERO).unwrap();
        assert_eq!(n, 1);
        assert!(bytes >= 5);
        assert!(cache.lookup::<Vec<u8>>(&k, &["a"]).is_none());
    }
}
