//! Cache entries that are folders of files: `<cache>/<kind>/<key>/` holding
//! the files and an `entry.json`, keyed by the digest of everything that went
//! into them. An entry is built beside its final name and renamed into place,
//! so a half-written one never has it; `entry.json` is touched on every use
//! so `edgeforge cache prune` drops the entries not used recently. Cached
//! files are not flushed to disk (that would cost a build its time), so
//! `entry.json` records their sizes and an entry whose files lost data in a
//! crash (ext4 leaves them empty) is not used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::io::{AtomicFile, Sha256Digest};

const META: &str = "entry.json";
const ABANDONED: Duration = Duration::from_secs(86_400);

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

/// `entry.json`: the caller's metadata and the size of every stored file.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    sizes: BTreeMap<String, u64>,
    meta: T,
}

impl EntryCache {
    pub fn new(cache_dir: &Path, kind: &str) -> EntryCache {
        EntryCache {
            dir: cache_dir.join(kind),
        }
    }

    /// The entry for `key`, when it is complete: readable metadata, every
    /// one of `required` (files or folders), and its files at their sizes.
    pub fn lookup<T: DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        required: &[&str],
    ) -> Option<Entry<T>> {
        let dir = self.dir.join(key.to_string());
        let stored: Stored<T> = serde_json::from_slice(&fs::read(dir.join(META)).ok()?).ok()?;
        if !required.iter().all(|f| dir.join(f).exists())
            || !stored
                .sizes
                .iter()
                .all(|(f, size)| fs::metadata(dir.join(f)).is_ok_and(|m| m.len() == *size))
        {
            return None;
        }
        let _ = fs::File::options()
            .write(true)
            .open(dir.join(META))
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(Entry {
            dir,
            meta: stored.meta,
        })
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
        let sizes = names
            .iter()
            .filter_map(|n| {
                let md = fs::metadata(temp.path().join(n)).ok()?;
                md.is_file().then(|| (n.to_string(), md.len()))
            })
            .collect();
        let stored = Stored { sizes, meta };
        AtomicFile::write(
            &temp.path().join(META),
            &serde_json::to_vec(&stored)?,
            0o644,
        )?;
        let temp = temp.keep();
        // Builds sharing the cache may store the same key at once, or find an
        // unreadable leftover (an interrupted or older edgeforge) together:
        // the one holding the lock either finds a good entry or replaces it.
        let _lock = self.lock()?;
        if fs::rename(&temp, &entry).is_err() {
            if self.lookup::<T>(key, names).is_some() {
                // Another build stored it first; it has the same bytes.
                let _ = fs::remove_dir_all(&temp);
            } else {
                self.discard(&entry)?;
                fs::rename(&temp, &entry)
                    .with_context(|| format!("storing {}", entry.display()))?;
            }
        }
        self.lookup(key, names).ok_or_else(|| {
            anyhow::anyhow!("the cache entry {} could not be read back", entry.display())
        })
    }

    /// An exclusive lock on this kind of entry, held while one is placed.
    fn lock(&self) -> anyhow::Result<fs::File> {
        let path = self.dir.join(".lock");
        let file =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    }

    /// Removes an entry found damaged.
    pub fn discard_damaged(&self, entry: &Path) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        self.discard(entry)
    }

    /// Removes an entry (with the lock held): moved aside first (one atomic
    /// rename), so a build looking it up at the same time sees it whole or
    /// not at all.
    fn discard(&self, entry: &Path) -> anyhow::Result<()> {
        let aside = tempfile::Builder::new()
            .prefix(".edgeforge-stale-")
            .tempdir_in(&self.dir)
            .with_context(|| format!("creating a folder in {}", self.dir.display()))?;
        // Fails only when another build moved it first.
        let _ = fs::rename(entry, aside.path());
        Ok(())
    }

    /// Removes the entries not used for `older_than`. Returns the entries and
    /// bytes removed.
    pub fn prune(&self, older_than: Duration) -> anyhow::Result<(usize, u64)> {
        let (mut entries, mut bytes) = (0, 0);
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Ok((0, 0));
        };
        let _lock = self.lock()?;
        for e in rd {
            let e = e.with_context(|| format!("reading {}", self.dir.display()))?;
            // Folders of interrupted builds have no metadata; a day old, they
            // are surely abandoned.
            let (md, keep_for) = match fs::metadata(e.path().join(META)) {
                Ok(md) => (md, older_than),
                Err(_)
                    if e.file_name().to_string_lossy().starts_with(".edgeforge-")
                        && e.path().is_dir() =>
                {
                    (e.metadata()?, older_than.max(ABANDONED))
                }
                Err(_) => continue,
            };
            let idle = SystemTime::now()
                .duration_since(md.modified()?)
                .unwrap_or_default();
            if idle < keep_for {
                continue;
            }
            bytes += walkdir::WalkDir::new(e.path())
                .into_iter()
                .filter_map(Result::ok)
                .filter(|f| f.file_type().is_file())
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
            self.discard(&e.path())?;
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
        // A file that lost its data (a crash before writeback) voids the entry.
        let damaged = key(&["damaged"]);
        let entry = cache.store(&damaged, &[("a", &src)], 2u8).unwrap();
        fs::remove_file(entry.dir.join("a")).unwrap();
        fs::write(entry.dir.join("a"), "").unwrap();
        assert!(cache.lookup::<u8>(&damaged, &["a"]).is_none());
        assert_eq!(cache.prune(Duration::from_secs(3600)).unwrap().0, 0);
        let (n, bytes) = cache.prune(Duration::ZERO).unwrap();
        assert_eq!(n, 2);
        assert!(bytes >= 5);
        assert!(cache.lookup::<Vec<u8>>(&k, &["a"]).is_none());
    }

    #[test]
    fn builds_storing_one_key_at_once_over_a_leftover_all_succeed() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("a");
        fs::write(&src, "bytes").unwrap();
        let root = t.path().join("cache");
        let k = key(&["race"]);
        for round in 0..20 {
            let leftover = root.join("kind").join(k.to_string());
            let _ = fs::remove_dir_all(&leftover);
            fs::create_dir_all(leftover.join("deep/er")).unwrap();
            fs::write(leftover.join(META), "{old format").unwrap();
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        let cache = EntryCache::new(&root, "kind");
                        let e = cache.store(&k, &[("a", &src)], round).unwrap();
                        assert_eq!(fs::read(e.dir.join("a")).unwrap(), b"bytes");
                    });
                }
            });
        }
    }
}
