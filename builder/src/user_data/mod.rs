//! The site's user-data: a `#cloud-config` YAML document embedded at the ISO's
//! `/config.yaml`, given as a file or rendered for a site from
//! `templates/user-data.tera`. It may hold the registration token: it is never
//! printed, and every file edgeforge writes it to is created 0600.

mod render;
mod secrets;
mod site;
mod token;
pub mod validate;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{fail, Category};
use crate::io::Sha256Digest;
use crate::yaml;
pub use render::render;
pub use secrets::SecretField;
pub use site::{check_site_name, load_sites, Site};
pub use token::{command_line_token_refused, refuse_command_line_token, Secret};
use validate::{Finding, Mode, Severity};

/// The Palette agent reads user-data files of up to 1 MB.
pub const MAX_SIZE: usize = 1 << 20;

pub struct UserData {
    /// The file, or a label for a rendered document, for messages.
    pub path: PathBuf,
    bytes: Vec<u8>,
    pub sha256: Sha256Digest,
}

/// Reads and checks a document file as `mode` says. Returns the bytes and
/// every finding.
pub fn inspect_as(path: &Path, mode: Mode) -> anyhow::Result<(Vec<u8>, Vec<Finding>)> {
    let bytes = fs::read(path).with_context(|| format!("reading user-data {}", path.display()))?;
    let findings = inspect_bytes(path, &bytes, mode)?;
    Ok((bytes, findings))
}

/// Checks a document: size, the `#cloud-config` header, YAML syntax, then
/// the fields; `path` names it in messages.
fn inspect_bytes(path: &Path, bytes: &[u8], mode: Mode) -> anyhow::Result<Vec<Finding>> {
    let invalid = |msg: String| fail(Category::InvalidInput, format!("{}:{msg}", path.display()));
    if bytes.len() > MAX_SIZE {
        return Err(invalid(format!(
            " {} bytes is more than the 1 MiB the agent reads",
            bytes.len()
        )));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| invalid(" user-data must be UTF-8 text".into()))?;
    let first = text.lines().next().unwrap_or("").trim_end();
    if first != "#cloud-config" {
        return Err(invalid(
            "1: the first line must be `#cloud-config` (the installer ignores other documents)"
                .into(),
        ));
    }
    let doc = yaml::parse_value(path, text)?;
    Ok(validate::check_as(&doc, text, mode))
}

/// `file:line: severity: path: message`, one line per finding.
pub fn describe(path: &Path, findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}:{f}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl UserData {
    /// Loads a document file that passes the checks; warnings go to the log.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_as(path, Mode::Full)
    }

    /// Like [`UserData::load`], checking the document as `mode` says.
    pub fn load_as(path: &Path, mode: Mode) -> anyhow::Result<Self> {
        let bytes =
            fs::read(path).with_context(|| format!("reading user-data {}", path.display()))?;
        Self::from_bytes_as(path, bytes, mode)
    }

    /// A document made in memory (rendered for a site), checked as `mode`
    /// says; `path` labels it.
    pub fn from_bytes_as(path: &Path, bytes: Vec<u8>, mode: Mode) -> anyhow::Result<Self> {
        let findings = inspect_bytes(path, &bytes, mode)?;
        let (errors, warnings): (Vec<Finding>, Vec<Finding>) = findings
            .into_iter()
            .partition(|f| f.severity == Severity::Error);
        if !errors.is_empty() {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "user-data {} is invalid ({} errors):\n{}",
                    path.display(),
                    errors.len(),
                    describe(path, &errors)
                ),
            ));
        }
        if !warnings.is_empty() {
            // Each line says `warning`; shown even with -q, like every warning.
            eprintln!("edgeforge: {}", describe(path, &warnings));
        }
        Ok(UserData {
            path: path.to_path_buf(),
            sha256: Sha256Digest::of(&bytes),
            bytes,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The token and passwords the document carries (`secrets.rs`).
    pub fn secrets(&self) -> anyhow::Result<Vec<SecretField>> {
        let text = std::str::from_utf8(&self.bytes).expect("checked as UTF-8 when loaded");
        Ok(secrets::of(&yaml::parse_value(&self.path, text)?))
    }
}
