//! Checksum files in `sha256sum -c` format: `<artifact>.sha256` beside each
//! artifact and `SHA256SUMS` over every artifact in the output folder. Digests
//! come from hashing while writing; nothing is read back to checksum it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::io::{AtomicFile, Sha256Digest};

pub const SUMS: &str = "SHA256SUMS";

fn line(sha: &Sha256Digest, name: &str) -> String {
    format!("{sha}  {name}\n")
}

/// Writes `<artifact>.sha256`.
pub fn write_sidecar(artifact: &Path, sha: &Sha256Digest) -> anyhow::Result<()> {
    let name = artifact
        .file_name()
        .expect("artifacts have file names")
        .to_string_lossy();
    let mut target = artifact.as_os_str().to_owned();
    target.push(".sha256");
    AtomicFile::write(Path::new(&target), line(sha, &name).as_bytes(), 0o644)
}

/// Records `artifacts` (file names in `dir`) in `dir/SHA256SUMS`, keeping the
/// entries of other artifacts still present, dropping those whose files are gone.
pub fn record(dir: &Path, artifacts: &[(String, Sha256Digest)]) -> anyhow::Result<()> {
    let path = dir.join(SUMS);
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&path) {
        for l in text.lines() {
            if let Some((hash, name)) = l.split_once("  ") {
                if dir.join(name).is_file() {
                    entries.insert(name.to_string(), hash.to_string());
                }
            }
        }
    }
    for (name, sha) in artifacts {
        entries.insert(name.clone(), sha.to_string());
    }
    let text: String = entries.iter().map(|(n, h)| format!("{h}  {n}\n")).collect();
    AtomicFile::write(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("updating {}", path.display()))
}
