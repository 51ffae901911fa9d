//! A variant: one definition resolved for one Kubernetes version, with the
//! provider image tag and output names derived from it.

use serde::Serialize;

use super::model::{ImageDefinition, KubernetesDistribution};

#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub kubernetes_distribution: KubernetesDistribution,
    pub kubernetes_version: String,
    /// `<distribution>-<version>-<agent>[-<custom_tag>]`
    pub tag: String,
    /// `<registry>/<repository>:<tag>`
    pub reference: String,
    /// File stem of the outputs, e.g. `ubuntu-k3s-1.30.5-v4.5.0-demo`.
    pub name: String,
}

impl Variant {
    pub fn new(def: &ImageDefinition, k8s_version: &str) -> Self {
        let dist = def.kubernetes.distribution;
        let mut tag = format!("{}-{}-{}", dist.as_str(), k8s_version, def.agent.version);
        if let Some(custom) = def.custom_tag.as_deref().filter(|c| !c.is_empty()) {
            tag = format!("{tag}-{custom}");
        }
        let repo_last = def.repository.rsplit('/').next().unwrap_or(&def.repository);
        Variant {
            kubernetes_distribution: dist,
            kubernetes_version: k8s_version.to_string(),
            reference: format!("{}/{}:{}", def.registry, def.repository, tag),
            name: format!("{repo_last}-{tag}"),
            tag,
        }
    }
}
