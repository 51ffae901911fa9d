//! Digests of a build's inputs (definition, templates, overlays, components,
//! base image), so a plan names exactly what each variant depends on.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::definition::LoadedDefinition;
use crate::io::{HashingReader, Sha256Digest};
use crate::oci::source::SourceImage;

/// SHA-256 of a file, or of a folder as sorted (path, kind, executable or
/// not, content digest or link target) records: what edgeforge takes from a
/// folder (modes are normalised, mtimes ignored), so the same tree gives
/// the same digest wherever and under whatever umask it is checked out.
/// Remembered for the rest of the run: a build asks for a component's
/// digest for its layer cache key and again for the manifest, and a
/// component can be gigabytes.
pub fn digest_path(path: &Path) -> anyhow::Result<Sha256Digest> {
    static SEEN: Mutex<BTreeMap<PathBuf, Sha256Digest>> = Mutex::new(BTreeMap::new());
    let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(d) = SEEN.lock().expect("not poisoned").get(&key) {
        return Ok(*d);
    }
    let d = compute_digest(path)?;
    SEEN.lock().expect("not poisoned").insert(key, d);
    Ok(d)
}

fn compute_digest(path: &Path) -> anyhow::Result<Sha256Digest> {
    if path.is_file() {
        return file_digest(path);
    }
    let mut h = Sha256::new();
    for entry in walkdir::WalkDir::new(path).min_depth(1).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", path.display()))?;
        let rel = entry
            .path()
            .strip_prefix(path)
            .expect("under root")
            .as_os_str()
            .as_bytes();
        let md = entry.path().symlink_metadata()?;
        crate::source_files::check(entry.path(), md.file_type())?;
        let record = if md.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            [b"l ", rel, b" ", target.as_os_str().as_bytes(), b"\n"].concat()
        } else if md.is_dir() {
            [b"d ", rel, b"\n"].concat()
        } else {
            let exec = if md.permissions().mode() & 0o111 != 0 {
                "x"
            } else {
                "-"
            };
            let digest = file_digest(entry.path())?.to_string();
            [b"f ", rel, format!(" {exec} {digest}\n").as_bytes()].concat()
        };
        h.update(&record);
    }
    Ok(Sha256Digest(h.finalize().into()))
}

fn file_digest(path: &Path) -> anyhow::Result<Sha256Digest> {
    let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(HashingReader::new(f)
        .finish()
        .with_context(|| format!("reading {}", path.display()))?
        .0)
}

/// The registry inputs of a definition, by name, as the
/// `host/repository@sha256:...` they resolved to in this run.
pub fn references(l: &LoadedDefinition) -> anyhow::Result<BTreeMap<String, String>> {
    let d = &l.def;
    let mut m = BTreeMap::new();
    if let Some(r) = crate::registry::reference::classify(&d.base_image, &l.dir)? {
        let digest = crate::registry::pull::manifest_digest(&r, d.arch.as_str())?;
        m.insert("base_image".to_string(), r.with_digest(&digest));
    }
    Ok(m)
}

/// Every input of a definition, by name, as `sha256:<hex>`. The base image is
/// named by its manifest digest, which covers its config and layers.
pub fn of_definition(l: &LoadedDefinition) -> anyhow::Result<BTreeMap<String, String>> {
    let d = &l.def;
    // A registry base is only resolved: `plan` must not pull gigabytes.
    let base = match crate::registry::reference::classify(&d.base_image, &l.dir)? {
        Some(r) => crate::registry::pull::manifest_digest(&r, d.arch.as_str())?,
        None => SourceImage::open(&d.base_image, &l.dir, d.arch.as_str())?.manifest_digest,
    };
    let mut m = BTreeMap::from([
        (
            "definition".to_string(),
            format!("sha256:{}", file_digest(&l.path)?),
        ),
        ("base_image".to_string(), base.to_string()),
    ]);
    let mut put = |k: String, p: &Path| -> anyhow::Result<()> {
        m.insert(k, format!("sha256:{}", digest_path(&l.resolve(p))?));
        Ok(())
    };
    if let Some(t) = &d.templates {
        put("templates".into(), t)?;
    }
    for (i, c) in d.components.iter().enumerate() {
        put(format!("components[{i}]"), &c.source)?;
    }
    for (i, b) in d.iso.bundles.iter().enumerate() {
        put(format!("iso.bundles[{i}]"), b)?;
    }
    // Files the ISO carries as they are: a changed one changes the ISO.
    if let Some(p) = &d.iso.edge_custom_config {
        put("iso.edge_custom_config".into(), p)?;
    }
    if let Some(p) = &d.iso.cluster_definition {
        put("iso.cluster_definition".into(), p)?;
    }
    for (kind, trees) in [
        ("overlays.rootfs", &d.overlays.rootfs),
        ("overlays.iso", &d.overlays.iso),
    ] {
        for (i, t) in trees.iter().enumerate() {
            put(format!("{kind}[{i}]"), t)?;
        }
    }
    Ok(m)
}
