//! Checksum files in `sha256sum -c` format: `<artifact>.sha256` beside each
//! artifact and `SHA256SUMS` over every artifact in the output folder. Digests
//! come from hashing while writing; nothing is read back to checksum it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::io::Sha256Digest;

pub const SUMS: &str = "SHA256SUMS";

pub fn line(sha: &Sha256Digest, name: &str) -> String {
    format!("{sha}  {name}\n")
}

/// `<artifact>.sha256`.
pub fn sidecar_path(artifact: &Path) -> PathBuf {
    let mut target = artifact.as_os_str().to_owned();
    target.push(".sha256");
    PathBuf::from(target)
}

/// The `(name, hex digest)` entries of a checksum file's text.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once("  ").or_else(|| l.split_once(" *")))
        .map(|(hash, name)| (name.to_string(), hash.to_string()))
        .collect()
}

/// The text of `dir/SHA256SUMS` with `artifacts` (file names in `dir`)
/// recorded: the entries of other artifacts still present are kept, those
/// whose files are gone dropped.
pub fn merged(dir: &Path, artifacts: &[(String, Sha256Digest)]) -> String {
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join(SUMS)) {
        for (name, hash) in parse(&text) {
            if dir.join(&name).is_file() {
                entries.insert(name, hash);
            }
        }
    }
    for (name, sha) in artifacts {
        entries.insert(name.clone(), sha.to_string());
    }
    entries.iter().map(|(n, h)| format!("{h}  {n}\n")).collect()
}
