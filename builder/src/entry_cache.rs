//! Cache entries that are folders of files: `<cache>/<kind>/<key>/` holding
//! the files and an `entry.json`, keyed by the digest of everything that went
//! into them. An entry is built beside its final name and renamed into place,
//! so a half-written one never has it; `entry.json` is touched on every use
//! so `edgeforge cache prune` drops the entries not used recently.
//!
//! A cache must never change an artifact's bytes, yet its files live for
//! weeks on a disk that may lose writes in a crash (cached files are not
//! flushed: that would cost a build its time), rot, or be edited by hand. So
//! `entry.json` records the size and SHA-256 of every stored file and
//! carries its own checksum; every lookup re-hashes them all, and an entry that does not
//! match is discarded with a warning and built anew, never used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::freed::Freed;
use crate::io::{file_sha256, sealed, AtomicFile, Sha256Digest};
use crate::log::warning;

const META: &str = "entry.json";

/// Entries this run stored or checked, with their `entry.json`: their files
/// were hashed then, so a lookup later in the same run (the ISO stage
/// finding the base tree the provider image stage stored seconds before)
/// does not read hundreds of megabytes again.
static HASHED_THIS_RUN: Mutex<BTreeMap<PathBuf, Vec<u8>>> = Mutex::new(BTreeMap::new());

fn hashed_this_run(dir: &Path, meta: &[u8]) -> bool {
    let seen = HASHED_THIS_RUN.lock().unwrap_or_else(|e| e.into_inner());
    seen.get(dir).is_some_and(|m| m == meta)
}

/// A later run, as far as the memo goes (tests damage entries in-process).
#[cfg(test)]
fn forget_this_run() {
    HASHED_THIS_RUN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

fn remember_hashed(dir: &Path) {
    if let Ok(meta) = fs::read(dir.join(META)) {
        let mut seen = HASHED_THIS_RUN.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(dir.to_path_buf(), meta);
    }
}
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

/// `entry.json` (sealed): the caller's metadata and what every stored file
/// or folder must hash to.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    files: BTreeMap<String, Hashed>,
    meta: T,
}

/// A file: its size (checked first, it costs nothing) and SHA-256. An enum
/// of one variant because that is how entries already on disk encode it
/// (folders had their own variant once; no entry holds one any more).
#[derive(Serialize, Deserialize, PartialEq)]
enum Hashed {
    File { size: u64, sha256: String },
}

impl Hashed {
    fn of(path: &Path) -> anyhow::Result<Option<Hashed>> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(None);
        }
        let (sha, size) =
            file_sha256(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(Hashed::File {
            size,
            sha256: sha.to_string(),
        }))
    }

    /// Why `path` does not hold what was stored, if it does not.
    fn mismatch(&self, path: &Path) -> Option<String> {
        let Hashed::File { size, .. } = self;
        match fs::metadata(path) {
            Ok(md) if md.len() == *size => {}
            Ok(md) => return Some(format!("{} bytes, not {size}", md.len())),
            Err(e) => return Some(e.to_string()),
        }
        match Hashed::of(path) {
            Ok(Some(found)) if found == *self => None,
            Ok(Some(Hashed::File { sha256, .. })) => {
                Some(format!("sha256 {sha256} is not the one stored"))
            }
            Ok(None) => Some("missing".into()),
            Err(e) => Some(format!("{e:#}")),
        }
    }
}

impl EntryCache {
    pub fn new(cache_dir: &Path, kind: &str) -> EntryCache {
        EntryCache {
            dir: cache_dir.join(kind),
        }
    }

    /// The entry for `key`, when there is one and it holds exactly what was
    /// stored: readable metadata, every one of the files `required`, every
    /// stored file hashing as recorded. A damaged
    /// entry is discarded with a warning, so the caller builds it anew.
    pub fn lookup<T: DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        required: &[&str],
    ) -> anyhow::Result<Option<Entry<T>>> {
        let dir = self.dir.join(key.to_string());
        match self.check(&dir, required) {
            Ok(found) => Ok(found),
            Err(why) => {
                warning!(
                    "the cache entry {} is damaged ({why}); discarding it and building it anew",
                    dir.display()
                );
                self.discard_damaged(&dir)?;
                Ok(None)
            }
        }
    }

    /// The entry in `dir` (`None` if there is none), or why it is damaged.
    fn check<T: DeserializeOwned>(
        &self,
        dir: &Path,
        required: &[&str],
    ) -> Result<Option<Entry<T>>, String> {
        let bytes = match fs::read(dir.join(META)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => return Ok(None),
            Err(e) => return Err(format!("{META}: {e}")),
        };
        let stored: Stored<T> = sealed::from_slice(&bytes).map_err(|e| format!("{META}: {e}"))?;
        if let Some(missing) = required.iter().find(|f| !stored.files.contains_key(**f)) {
            return Err(format!("{missing} missing"));
        }
        if !hashed_this_run(dir, &bytes) {
            for (name, hashed) in &stored.files {
                if let Some(why) = hashed.mismatch(&dir.join(name)) {
                    return Err(format!("{name}: {why}"));
                }
            }
            remember_hashed(dir);
        }
        let _ = fs::File::options()
            .write(true)
            .open(dir.join(META))
            .and_then(|f| f.set_modified(SystemTime::now()));
        Ok(Some(Entry {
            dir: dir.to_path_buf(),
            meta: stored.meta,
        }))
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
    /// its files) under `key`, with the metadata `fill` returns.
    /// Everything is hashed here, as it is stored.
    pub fn store_with<T: Serialize + DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        names: &[&str],
        fill: impl FnOnce(&Path) -> anyhow::Result<T>,
    ) -> anyhow::Result<Entry<T>> {
        self.store_with_hashed(key, names, |dir| Ok((fill(dir)?, Vec::new())))
    }

    /// As `store_with`, for a `fill` that hashed some of its files as it
    /// wrote them (returned as name, digest and size with the metadata):
    /// those are not read again.
    pub fn store_with_hashed<T: Serialize + DeserializeOwned>(
        &self,
        key: &Sha256Digest,
        names: &[&str],
        fill: impl FnOnce(&Path) -> anyhow::Result<(T, Vec<(String, Sha256Digest, u64)>)>,
    ) -> anyhow::Result<Entry<T>> {
        let entry = self.dir.join(key.to_string());
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let temp = tempfile::Builder::new()
            .prefix(".edgeforge-")
            .tempdir_in(&self.dir)?;
        let (meta, known) = fill(temp.path())?;
        let mut files = BTreeMap::new();
        for (name, sha, size) in known {
            let sha256 = sha.to_string();
            files.insert(name, Hashed::File { size, sha256 });
        }
        for n in names {
            if files.contains_key(*n) {
                continue;
            }
            if let Some(hashed) = Hashed::of(&temp.path().join(n))? {
                files.insert(n.to_string(), hashed);
            }
        }
        let stored = Stored { files, meta };
        AtomicFile::write(&temp.path().join(META), &sealed::to_vec(&stored)?, 0o644)?;
        let temp = temp.keep();
        // Builds sharing the cache may store the same key at once, or find an
        // unreadable leftover (an interrupted or older edgeforge) together:
        // the one holding the lock either finds a good entry or replaces it.
        let _lock = self.lock()?;
        if fs::rename(&temp, &entry).is_err() {
            match self.check::<T>(&entry, names) {
                Ok(Some(theirs)) => {
                    // Another build stored it first; it has the same bytes.
                    let _ = fs::remove_dir_all(&temp);
                    return Ok(theirs);
                }
                _ => {
                    self.discard(&entry)?;
                    fs::rename(&temp, &entry)
                        .with_context(|| format!("storing {}", entry.display()))?;
                }
            }
        }
        remember_hashed(&entry);
        Ok(Entry {
            dir: entry,
            meta: stored.meta,
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
    fn discard_damaged(&self, entry: &Path) -> anyhow::Result<()> {
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

    /// Removes the entries not used for `older_than`. Returns the entries
    /// removed; their bytes are added to `freed`.
    pub fn prune(&self, older_than: Duration, freed: &mut Freed) -> anyhow::Result<usize> {
        let mut entries = 0;
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Ok(0);
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
            freed.tree(&e.path());
            self.discard(&e.path())?;
            entries += 1;
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flips one bit of byte `at` of `path`, in place (through every link).
    fn flip(path: &Path, at: usize) {
        let mut bytes = fs::read(path).unwrap();
        bytes[at] ^= 1;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn unreadable_or_damaged_entries_are_discarded_and_stored_anew() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("a");
        let cache = EntryCache::new(&t.path().join("cache"), "kind");
        let k = key(&["test"]);
        let leftover = t.path().join("cache/kind").join(k.to_string());
        fs::create_dir_all(&leftover).unwrap();
        fs::write(leftover.join(META), "{not json").unwrap();
        assert!(cache.lookup::<Vec<u8>>(&k, &["a"]).unwrap().is_none());
        assert!(!leftover.exists(), "an unreadable entry is discarded");
        fs::write(&src, "bytes").unwrap();
        let stored = cache.store(&k, &[("a", &src)], vec![1u8]).unwrap();
        assert_eq!(fs::read(stored.dir.join("a")).unwrap(), b"bytes");
        assert_eq!(stored.meta, vec![1u8]);
        let found = cache.lookup::<Vec<u8>>(&k, &["a"]).unwrap().unwrap();
        assert_eq!(found.meta, vec![1u8]);

        // One flipped bit anywhere (either file, the metadata) or a file
        // that lost its data voids the entry.
        type Damage = fn(&Path);
        let damages: [(&str, Damage); 4] = [
            ("a file", |dir| flip(&dir.join("a"), 2)),
            ("another file", |dir| flip(&dir.join("b"), 0)),
            ("the metadata", |dir| {
                let text = fs::read_to_string(dir.join(META)).unwrap();
                fs::write(dir.join(META), text.replace("[7]", "[6]")).unwrap()
            }),
            ("lost data", |dir| {
                fs::remove_file(dir.join("a")).unwrap();
                fs::write(dir.join("a"), "").unwrap();
            }),
        ];
        for (what, damage) in damages {
            let k = key(&[what]);
            let store = || {
                cache
                    .store_with(&k, &["a", "b"], |dir| {
                        fs::write(dir.join("a"), "bytes").unwrap();
                        fs::write(dir.join("b"), "more bytes").unwrap();
                        Ok(vec![7u8])
                    })
                    .unwrap()
            };
            let entry = store();
            assert!(cache.lookup::<Vec<u8>>(&k, &["a"]).unwrap().is_some());
            damage(&entry.dir);
            // Damage shows in a later run: this one hashed the entry already.
            forget_this_run();
            assert!(
                cache.lookup::<Vec<u8>>(&k, &["a"]).unwrap().is_none(),
                "{what}"
            );
            assert!(!entry.dir.exists(), "{what}: discarded");
            store();
            let again = cache.lookup::<Vec<u8>>(&k, &["a", "b"]).unwrap();
            assert_eq!(again.unwrap().meta, vec![7u8], "{what}: stored anew");
        }

        let mut freed = Freed::default();
        assert_eq!(
            cache.prune(Duration::from_secs(3600), &mut freed).unwrap(),
            0
        );
        assert_eq!(cache.prune(Duration::ZERO, &mut freed).unwrap(), 5);
        assert!(freed.bytes >= 5);
        assert!(cache.lookup::<Vec<u8>>(&k, &["a"]).unwrap().is_none());
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
