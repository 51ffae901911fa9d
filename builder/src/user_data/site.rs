//! A site: the values that make one device's user-data (name, endpoint,
//! project, tags, network) and where its registration token comes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{fail, Category};
use crate::yaml;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub palette_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_uid: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub network: Network,
    /// Power off after installing (true) or reboot into the installed system.
    #[serde(default = "yes")]
    pub poweroff: bool,
    /// Environment variable holding this site's registration token.
    #[serde(default, skip_serializing)]
    pub token_env: Option<String>,
    /// File holding this site's registration token.
    #[serde(default, skip_serializing)]
    pub token_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameserver: Option<String>,
    #[serde(default)]
    pub interfaces: BTreeMap<String, Interface>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameserver: Option<String>,
}

/// A `--sites` file: `sites:`, a list of sites.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SitesFile {
    sites: Vec<Site>,
}

/// The sites of a `--sites` file, checked before anything is rendered: at
/// least one, each named so it can name a file, no name twice (two sites of
/// one name would write one file).
pub fn load_sites(path: &Path) -> anyhow::Result<Vec<Site>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading sites file {}: {e}", path.display()))?;
    let sites = yaml::parse::<SitesFile>(path, &text)?.sites;
    let invalid = |msg: String| fail(Category::InvalidInput, format!("{}: {msg}", path.display()));
    if sites.is_empty() {
        return Err(invalid("`sites:` lists no site".into()));
    }
    for (i, site) in sites.iter().enumerate() {
        check_site_name(&site.name).map_err(|msg| invalid(format!("sites[{i}]: {msg}")))?;
        if let Some(first) = sites[..i].iter().position(|s| s.name == site.name) {
            return Err(invalid(format!(
                "sites[{first}] and sites[{i}] are both named `{}`; each site names its output, so names must differ",
                site.name
            )));
        }
    }
    Ok(sites)
}

/// A site name names a file: letters, digits, `.`, `_` and `-`, not
/// starting with `.`.
pub fn check_site_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "site name `{name}` must be letters, digits, `.`, `_` or `-`, not starting with `.` (it names the output file)"
        ))
    }
}

impl Site {
    /// A site from an optional file plus `key=value` overrides (dotted keys,
    /// like `network.nameserver=10.0.0.1`).
    pub fn load(file: Option<&Path>, values: &[String]) -> anyhow::Result<Site> {
        let (origin, text) = match file {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("reading site file {}: {e}", p.display()))?,
            ),
            None => ("--site-value".to_string(), "{}".to_string()),
        };
        let path = Path::new(&origin);
        if values.is_empty() {
            return yaml::parse(path, &text);
        }
        let mut doc = yaml::parse_document(path, &text)?;
        for v in values {
            let (k, val) = v.split_once('=').ok_or_else(|| {
                crate::error::fail(
                    crate::error::Category::Usage,
                    format!(
                        "--site-value {}: expected key=value, like name=store-42",
                        crate::mask::assignment(v)
                    ),
                )
            })?;
            // A token given here would sit in shell history like `--token`.
            if crate::mask::is_secret_key(k.trim()) {
                return Err(crate::error::fail(
                    crate::error::Category::SecretRefused,
                    format!(
                        "--site-value {}: secrets are refused on the command line (shell history, process listings); put the token in an environment variable (--token-env VAR) or a 0600 file (--token-file FILE)",
                        crate::mask::assignment(v)
                    ),
                ));
            }
            doc.set(k.trim(), val)?;
        }
        let shown: Vec<String> = values.iter().map(|v| crate::mask::assignment(v)).collect();
        doc.into_typed(&format!(
            "{origin} with --site-value {}",
            shown.join(" --site-value ")
        ))
    }
}
