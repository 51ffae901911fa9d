//! Pulling a registry image into the cache and opening it like a local one.
//!
//! `<cache>/registry/layout` is one OCI layout holding every pulled image,
//! so a blob two images share is stored (and fetched) once; skopeo copies
//! into it with `--preserve-digests`, so manifests keep their bytes and
//! digests. `<cache>/registry/refs/<key>.json` records what a reference
//! resolved to for an architecture (the digest of what the registry returned
//! and the platform manifest chosen from it), which is all `--offline` needs.
//! edgeforge resolves manifest lists itself: it hashes what the registry
//! returned (a pinned digest must match it), picks the `linux/<arch>` entry,
//! and copies that manifest by digest.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::reference::Reference;
use super::skopeo::{self, Side};
use super::Settings;
use crate::error::{fail, Category};
use crate::io::{sealed, AtomicFile, Sha256Digest};
use crate::log::info;
use crate::oci::spec::{Descriptor, Digest, Index, Manifest, MEDIA_MANIFEST};

/// What a reference resolved to for one architecture.
#[derive(Clone, Serialize, Deserialize)]
pub struct Resolved {
    reference: String,
    arch: String,
    /// The digest of the manifest or index the registry returned.
    top: Digest,
    /// The image manifest for `arch` (equal to `top` for a single image).
    pub manifest: Descriptor,
}

/// A registry image in a local OCI layout, for `oci::source` to open.
pub struct Pulled {
    pub layout: PathBuf,
    /// The image manifest for the asked architecture.
    pub manifest: Descriptor,
    /// What must live as long as the image: the temporary folder it was
    /// pulled into without a cache, and the share of the cache's store that
    /// `cache prune` leaves alone while held.
    pub keep: Box<dyn std::any::Any + Send + Sync>,
}

/// Brings the image `r` names for `arch` into a local layout, pulling what
/// the cache lacks.
pub fn fetch(r: &Reference, arch: &str) -> anyhow::Result<Pulled> {
    let s = super::settings();
    let records = s.cache.as_ref().map(|c| c.join("registry"));
    let resolved = resolve(r, arch, &s, records.as_deref())?;
    // Without a cache the pull goes to a folder that lives as long as the image.
    let (store, keep) = match records {
        Some(store) => (store, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("edgeforge-pull-")
                .tempdir()
                .context("creating a folder to pull into")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    // Taken before the blobs are looked at, held as long as the image.
    let reading = share_store(&store)?;
    let layout = store.join("layout");
    if !cached(&layout, &resolved.manifest.digest) {
        if s.offline {
            return Err(offline_miss(r));
        }
        copy_in(r, &resolved.manifest.digest, &s, &store, &layout)?;
    }
    Ok(Pulled {
        layout,
        manifest: resolved.manifest,
        keep: Box::new((keep, reading)),
    })
}

/// The digest of the image manifest `r` names for `arch`: resolved (from
/// the cache, or by asking the registry for the manifest alone), not pulled.
pub fn manifest_digest(r: &Reference, arch: &str) -> anyhow::Result<Digest> {
    let s = super::settings();
    let records = s.cache.as_ref().map(|c| c.join("registry"));
    Ok(resolve(r, arch, &s, records.as_deref())?.manifest.digest)
}

fn offline_miss(r: &Reference) -> anyhow::Error {
    fail(
        Category::Offline,
        format!("--offline: {r} is not in the cache; run once without --offline (same --cache-dir) to pull it"),
    )
}

/// Resolutions made in this run: a build opens its base more than once,
/// and a tag must mean the same image throughout.
static RESOLVED: Mutex<BTreeMap<(String, String), Resolved>> = Mutex::new(BTreeMap::new());

fn resolve(
    r: &Reference,
    arch: &str,
    s: &Settings,
    records: Option<&Path>,
) -> anyhow::Result<Resolved> {
    // A tag's resolution is recorded under the tag (a pin is checked
    // against it), a bare digest's under the digest.
    let key = match r.tag {
        Some(_) => Reference {
            digest: None,
            ..r.clone()
        },
        None => r.clone(),
    }
    .to_string();
    let memo_key = (key.clone(), arch.to_string());
    let known = RESOLVED
        .lock()
        .expect("not poisoned")
        .get(&memo_key)
        .cloned();
    let resolved = match known {
        Some(x) => x,
        None => {
            let x = recorded_or_asked(r, &key, arch, s, records)?;
            RESOLVED
                .lock()
                .expect("not poisoned")
                .insert(memo_key, x.clone());
            x
        }
    };
    if let Some(pin) = &r.digest {
        if *pin != resolved.top {
            // By tag the registry may have moved it; by digest alone it
            // served other content under that name.
            let why = match r.tag {
                Some(_) => "the tag was moved or its content changed: check the image and update the pin",
                None => "the registry (or a mirror on the way) serves other content under that digest: it is damaged or not to be trusted",
            };
            return Err(fail(
                Category::BadImage,
                format!("{r}: the manifest the registry returned for {} hashes to {}, not the pinned {pin}; {why}", r.fetch_target(), resolved.top),
            ));
        }
    }
    Ok(resolved)
}

fn recorded_or_asked(
    r: &Reference,
    key: &str,
    arch: &str,
    s: &Settings,
    records: Option<&Path>,
) -> anyhow::Result<Resolved> {
    let record = records.map(|dir| {
        dir.join("refs").join(format!(
            "{}.json",
            crate::entry_cache::key(&["registry-ref/v1", key, arch])
        ))
    });
    let recorded = record
        .as_ref()
        .and_then(|p| fs::read(p).ok())
        .and_then(|b| sealed::from_slice::<Resolved>(&b).ok())
        .filter(|x| x.reference == key && x.arch == arch);
    // A digest names fixed content: what was recorded for it stays true
    // (a tag pinned to the recorded digest too).
    match recorded {
        Some(x) if s.offline || r.tag.is_none() || r.digest == Some(x.top) => {
            // Used now: `cache prune` keeps what recent runs used.
            if let Some(p) = &record {
                let _ = fs::File::options()
                    .write(true)
                    .open(p)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            }
            Ok(x)
        }
        _ if s.offline => Err(offline_miss(r)),
        _ => {
            let x = ask_registry(r, key, arch, s)?;
            if let Some(p) = &record {
                fs::create_dir_all(p.parent().expect("in refs"))?;
                AtomicFile::write(p, &sealed::to_vec(&x)?, 0o644)?;
            }
            Ok(x)
        }
    }
}

/// Fetches the manifest (or index) `r` names and picks the image for `arch`;
/// `top` is the hash of exactly what the registry returned.
fn ask_registry(r: &Reference, key: &str, arch: &str, s: &Settings) -> anyhow::Result<Resolved> {
    let mut args = vec![
        "--command-timeout".to_string(),
        "300s".into(),
        "inspect".into(),
        "--raw".into(),
    ];
    args.extend(skopeo::options(s, Side::Inspect));
    args.push(format!("docker://{}", r.fetch_target()));
    let out = skopeo::run(&args, &format!("reading {r} from its registry"))?;
    let bytes = out.stdout;
    let top = Digest(Sha256Digest::of(&bytes));
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            Category::BadImage,
            format!("{r}: the registry returned a manifest that is not JSON: {e}"),
        )
    })?;
    let media_type = doc["mediaType"]
        .as_str()
        .unwrap_or(MEDIA_MANIFEST)
        .to_string();
    let probe = Descriptor::new(&media_type, top, bytes.len() as u64);
    let manifest = if probe.is_index()
        || (doc.get("manifests").is_some() && doc.get("layers").is_none())
    {
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                Category::BadImage,
                format!("{r}: invalid manifest list: {e}"),
            )
        })?;
        let mut found: Vec<Descriptor> = index
            .manifests
            .into_iter()
            .filter(|d| d.is_manifest())
            .filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == arch && p.os == "linux")
            })
            .collect();
        found.sort_by_key(|d| d.digest);
        found.dedup_by(|a, b| a.digest == b.digest);
        match found.len() {
            1 => found.remove(0),
            0 => return Err(fail(Category::InvalidInput, format!("{r} has no linux/{arch} image in its manifest list"))),
            n => return Err(fail(Category::InvalidInput, format!("{r} lists {n} linux/{arch} images; name the one to use by digest (HOST/REPO@sha256:...)"))),
        }
    } else if probe.is_manifest() {
        probe
    } else {
        return Err(fail(
            Category::InvalidInput,
            format!("{r} is a {media_type}, not an image manifest or manifest list"),
        ));
    };
    info!("{r} is {} ({})", r.with_digest(&manifest.digest), arch);
    Ok(Resolved {
        reference: key.to_string(),
        arch: arch.to_string(),
        top,
        manifest: Descriptor {
            annotations: Default::default(),
            platform: None,
            ..manifest
        },
    })
}

/// Copies the image `digest` of `r`'s repository into the shared layout.
fn copy_in(
    r: &Reference,
    digest: &Digest,
    s: &Settings,
    store: &Path,
    layout: &Path,
) -> anyhow::Result<()> {
    let _lock = lock_store(store)?;
    if cached(layout, digest) {
        return Ok(());
    }
    info!("pulling {}", r.with_digest(digest));
    let mut args = vec![
        "copy".to_string(),
        "--quiet".into(),
        "--preserve-digests".into(),
    ];
    args.extend(skopeo::options(s, Side::Src));
    args.push(format!("docker://{}", r.with_digest(digest)));
    args.push(format!("oci:{}:{}", layout.display(), digest.0));
    skopeo::run(&args, &format!("pulling {r}"))?;
    Ok(())
}

/// Whether the layout holds the whole image `digest`: its manifest and
/// config intact, every layer present (layers are checked as they are read).
/// A damaged manifest or config is removed, so the pull that follows writes
/// it again: skopeo keeps any blob file it finds, and a damaged one would
/// otherwise fail every later run.
fn cached(layout: &Path, digest: &Digest) -> bool {
    let intact = |d: &Digest| {
        let path = layout.join(d.blob_path());
        let bytes = fs::read(&path).ok()?;
        if Digest(Sha256Digest::of(&bytes)) == *d {
            Some(bytes)
        } else {
            let _ = fs::remove_file(&path);
            None
        }
    };
    let Some(manifest) = intact(digest) else {
        return false;
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&manifest) else {
        return false;
    };
    intact(&manifest.config.digest).is_some()
        && manifest
            .layers
            .iter()
            .all(|l| layout.join(l.digest.blob_path()).is_file())
}

/// A reader's share of the store: `cache prune` removes nothing while any
/// run holds one (pulls take [`lock_store`], a separate lock, so a reader
/// pulling a second image does not wait for itself).
pub fn share_store(store: &Path) -> anyhow::Result<fs::File> {
    fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
    let path = store.join(".readers");
    let file = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.lock_shared()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// The store's lock: skopeo rewrites the layout's index.json, and a prune
/// removes blobs; one of them at a time.
pub fn lock_store(store: &Path) -> anyhow::Result<fs::File> {
    fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
    let path = store.join(".lock");
    let lock = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `data` as a blob of `layout`; returns its digest.
    fn blob(layout: &Path, data: &[u8]) -> Digest {
        let d = Digest(Sha256Digest::of(data));
        let path = layout.join(d.blob_path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
        d
    }

    #[test]
    fn a_damaged_resolution_record_is_never_used() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reference::parse("reg.example/demo/base:v1").unwrap();
        let key = r.to_string();
        let manifest = Descriptor::new(MEDIA_MANIFEST, blob(dir.path(), b"m"), 1);
        let record = Resolved {
            reference: key.clone(),
            arch: "amd64".into(),
            top: manifest.digest,
            manifest,
        };
        let path = dir.path().join("refs").join(format!(
            "{}.json",
            crate::entry_cache::key(&["registry-ref/v1", &key, "amd64"])
        ));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let sealed = sealed::to_vec(&record).unwrap();
        fs::write(&path, &sealed).unwrap();
        let offline = Settings {
            offline: true,
            ..Settings::default()
        };
        let read = || recorded_or_asked(&r, &key, "amd64", &offline, Some(dir.path()));
        assert_eq!(read().unwrap().manifest.digest, record.manifest.digest);
        // One hex digit of the recorded digest changed: still JSON, not trusted.
        let text = String::from_utf8(sealed).unwrap();
        let hex = record.manifest.digest.0.to_string();
        let flipped = if hex.starts_with('0') { "1" } else { "0" };
        let other = format!("{flipped}{}", &hex[1..]);
        assert!(text.contains(&hex));
        fs::write(&path, text.replacen(&hex, &other, 1)).unwrap();
        let e = read().err().expect("a damaged record was used");
        assert_eq!(crate::error::category_of(&e), Category::Offline);
    }

    #[test]
    fn a_cached_image_counts_only_when_whole_and_a_damaged_manifest_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path();
        let config = blob(layout, b"{\"architecture\":\"amd64\"}");
        let layer = blob(layout, b"layer");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 25},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let m = blob(layout, &bytes);
        assert!(cached(layout, &m));
        // A layer gone (a prune, a hand): pulled again.
        fs::remove_file(layout.join(layer.blob_path())).unwrap();
        assert!(!cached(layout, &m));
        blob(layout, b"layer");
        // A damaged config is removed, so skopeo writes it again.
        fs::write(layout.join(config.blob_path()), b"{}").unwrap();
        assert!(!cached(layout, &m));
        assert!(!layout.join(config.blob_path()).exists());
        blob(layout, b"{\"architecture\":\"amd64\"}");
        let mut damaged = bytes.clone();
        damaged[0] = b' ';
        fs::write(layout.join(m.blob_path()), damaged).unwrap();
        assert!(!cached(layout, &m));
        assert!(!layout.join(m.blob_path()).exists());
    }
}
