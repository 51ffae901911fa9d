//! The site's user-data: a `#cloud-config` YAML document embedded at the ISO's
//! `/config.yaml`. Its content may hold the registration token: it is never
//! printed, and every copy edgeforge writes is created 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{fail, Category};
use crate::io::Sha256Digest;
use crate::yaml;

/// The Palette agent reads user-data files of up to 1 MB.
const MAX_SIZE: usize = 1 << 20;

pub struct UserData {
    pub path: PathBuf,
    bytes: Vec<u8>,
    pub sha256: Sha256Digest,
}

impl UserData {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes =
            fs::read(path).with_context(|| format!("reading user-data {}", path.display()))?;
        let invalid =
            |msg: String| fail(Category::InvalidInput, format!("{}:{msg}", path.display()));
        if bytes.len() > MAX_SIZE {
            return Err(invalid(format!(
                " {} bytes is more than the 1 MiB the agent reads",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| invalid(" user-data must be UTF-8 text".into()))?;
        let first = text.lines().next().unwrap_or("").trim_end();
        if first != "#cloud-config" {
            return Err(invalid(
                "1: the first line must be `#cloud-config` (the installer ignores other documents)"
                    .into(),
            ));
        }
        yaml::check_mapping(path, text)?;
        Ok(UserData {
            path: path.to_path_buf(),
            sha256: Sha256Digest::of(&bytes),
            bytes,
        })
    }

    /// Writes the document to `target`, created 0600.
    pub fn write_to(&self, target: &Path) -> anyhow::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)
            .with_context(|| format!("creating {}", target.display()))?;
        f.write_all(&self.bytes)
            .with_context(|| format!("writing {}", target.display()))
    }
}
