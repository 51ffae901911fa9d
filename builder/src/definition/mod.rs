//! Image definitions (`images/*.yaml`): the typed form of the build arguments,
//! loading with `--set` overrides, validation, and expansion into variants.

mod model;
mod validate;
mod variant;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use model::{Agent, BootMode, EntryId, ImageDefinition, IsoOptions, Nomodeset, Proxy};
pub use variant::{name_with, Variant};

use crate::yaml;

/// A definition as loaded: the typed content, where it came from (relative
/// paths inside are resolved against its folder) and its text, for locating
/// fields in errors.
pub struct LoadedDefinition {
    pub def: ImageDefinition,
    pub path: PathBuf,
    pub dir: PathBuf,
    text: String,
    /// The `--set key=value` overrides in order: an error about a field one
    /// of them set is blamed on it, not on the file's line.
    overrides: Vec<String>,
}

impl LoadedDefinition {
    /// Reads, applies `key=value` overrides in order, and validates.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading image definition {}", path.display()))?;
        // Parse typed first so errors in the file carry its line numbers.
        let mut def: ImageDefinition = yaml::parse(path, &text)?;
        if !overrides.is_empty() {
            let mut doc = yaml::parse_document(path, &text)?;
            for o in overrides {
                let (k, v) = o.split_once('=').ok_or_else(|| {
                    crate::error::fail(
                        crate::error::Category::Usage,
                        format!("--set {}: expected key=value, for example --set kubernetes.version=1.30.5", crate::mask::assignment(o)),
                    )
                })?;
                doc.set(k.trim(), v)?;
            }
            let shown: Vec<String> = overrides
                .iter()
                .map(|o| crate::mask::assignment(o))
                .collect();
            let origin = format!("{} with --set {}", path.display(), shown.join(" --set "));
            def = doc.into_typed(&origin)?;
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let loaded = LoadedDefinition {
            def,
            path: path.to_path_buf(),
            dir,
            text,
            overrides: overrides.to_vec(),
        };
        validate::validate(&loaded)?;
        Ok(loaded)
    }

    /// A path from the definition, resolved against the definition's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// `file:line: field: message` for an error found after parsing.
    pub fn field_error(&self, field: &str, message: impl std::fmt::Display) -> anyhow::Error {
        let keys: Vec<&str> = field.split('.').collect();
        let loc = match (self.override_of(field), yaml::line_of(&self.text, &keys)) {
            (Some(o), _) => format!("--set {}", crate::mask::assignment(o)),
            (None, Some(line)) => format!("{}:{line}", self.path.display()),
            (None, None) => self.path.display().to_string(),
        };
        // Messages quote values; the definition's secrets (proxy passwords) stay masked.
        let secrets = serde_json::to_value(&self.def)
            .map(|d| crate::mask::Secrets::of(&d))
            .unwrap_or_else(|_| crate::mask::Secrets::none());
        crate::error::fail(
            crate::error::Category::InvalidInput,
            format!("{loc}: {field}: {}", secrets.text(&message.to_string())),
        )
    }

    /// The last `--set` that gave `field` its value: one naming the field,
    /// a field above it (`--set kubernetes={...}`) or below it.
    fn override_of(&self, field: &str) -> Option<&str> {
        self.overrides.iter().rev().map(String::as_str).find(|o| {
            let key = o.split_once('=').map_or(*o, |(k, _)| k).trim();
            key == field
                || field.starts_with(&format!("{key}."))
                || key.starts_with(&format!("{field}."))
        })
    }

    /// One variant per Kubernetes version.
    pub fn variants(&self) -> Vec<Variant> {
        self.def
            .kubernetes
            .version
            .as_slice()
            .iter()
            .map(|v| Variant::new(&self.def, v))
            .collect()
    }
}
