//! `manifest.json`: what a build read and wrote: every input with its
//! digest, every output with size and sha256, tool versions, the epoch, and
//! the resolved definition with secrets masked. Stable schema
//! (`edgeforge.build-manifest/v1`); no wall-clock time, so it is reproducible.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::definition::LoadedDefinition;
use crate::host_tools;
use crate::io::Sha256Digest;
use crate::mask;

pub const FILE: &str = "manifest.json";

#[derive(Serialize)]
pub struct Manifest {
    pub schema: &'static str,
    pub edgeforge: &'static str,
    pub source_date_epoch: u64,
    pub definition: serde_json::Value,
    pub inputs: BTreeMap<String, String>,
    /// Registry inputs by name, resolved: `host/repository@sha256:...`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, String>,
    /// The user-data's source and sha256, never its content.
    pub user_data: Option<Source>,
    /// How `build` was run, for `verify --rebuild`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation: Option<Invocation>,
    pub tools: BTreeMap<&'static str, String>,
    pub outputs: Vec<Output>,
}

/// The `build` command line that made a set (paths as given, relative to
/// the folder it ran in; `--set` values of secret keys masked).
#[derive(Serialize)]
pub struct Invocation {
    pub definition: String,
    pub sets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub golden: bool,
}

#[derive(Serialize)]
pub struct Source {
    pub source: String,
    pub sha256: String,
}

#[derive(Serialize)]
pub struct Output {
    pub name: String,
    pub kind: &'static str,
    pub size: u64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Where `build --push` pushed it: `reference@sha256:<manifest digest>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    /// Content bundles on an ISO, with the parts of split ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<crate::iso::content::ContentFile>,
    /// Packages installed in the ISO's root filesystem.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<crate::iso::packages::Package>,
}

impl Output {
    pub fn new(
        path: &Path,
        kind: &'static str,
        size: u64,
        sha: &Sha256Digest,
        reference: Option<String>,
    ) -> Output {
        Output {
            name: crate::provider::file_name(path),
            kind,
            size,
            sha256: sha.to_string(),
            reference,
            pushed: None,
            content: Vec::new(),
            packages: Vec::new(),
        }
    }
}

impl Manifest {
    pub fn new(
        l: &LoadedDefinition,
        epoch: u64,
        user_data: Option<Source>,
        outputs: Vec<Output>,
    ) -> anyhow::Result<Manifest> {
        let mut definition = serde_json::to_value(&l.def)?;
        mask::json(&mut definition);
        let tools = host_tools::build_versions().clone();
        Ok(Manifest {
            schema: "edgeforge.build-manifest/v1",
            edgeforge: env!("CARGO_PKG_VERSION"),
            source_date_epoch: epoch,
            definition,
            inputs: crate::inputs::of_definition(l)?,
            references: crate::inputs::references(l)?,
            user_data,
            invocation: None,
            tools,
            outputs,
        })
    }

    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        Ok((serde_json::to_string_pretty(self)? + "\n").into_bytes())
    }
}

/// The `(name, hex sha256)` of every output a `manifest.json` lists.
pub fn read_outputs(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let outputs = doc["outputs"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{} lists no outputs", path.display()))?;
    outputs
        .iter()
        .map(|o| match (o["name"].as_str(), o["sha256"].as_str()) {
            (Some(n), Some(s)) => Ok((n.to_string(), s.to_string())),
            _ => Err(anyhow::anyhow!(
                "{}: an output without name or sha256",
                path.display()
            )),
        })
        .collect()
}
