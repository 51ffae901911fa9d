//! A site: the values that make one device's user-data (name, endpoint,
//! project, tags, network) and where its registration token comes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
