//! A variant: one definition resolved for one Kubernetes version, with the
//! provider image tag and output names derived from it.
//!
//! Names say each fact once and differ between definitions: a variant's
//! name (the stem of its provider image file) is the whole repository path
//! (`edge/ubuntu` -> `edge-ubuntu`) followed by the tag's facts
//! (distribution, Kubernetes version, agent version, custom tag), each left
//! out when the words before it already say it; an ISO's name is `iso_name`
//! followed the same way by the facts that tell variants apart.

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
    /// File stem of the outputs, e.g. `edge-ubuntu-k3s-1.30.5-v4.5.0-demo`.
    pub name: String,
    /// The tag's facts, in order, for names built on them.
    #[serde(skip)]
    pub facts: Vec<String>,
}

impl Variant {
    pub fn new(def: &ImageDefinition, k8s_version: &str) -> Self {
        let dist = def.kubernetes.distribution;
        let mut facts = vec![
            dist.as_str().to_string(),
            k8s_version.to_string(),
            def.agent.version.clone(),
        ];
        if let Some(custom) = def.custom_tag.as_deref().filter(|c| !c.is_empty()) {
            facts.push(custom.to_string());
        }
        let tag = facts.join("-");
        Variant {
            kubernetes_distribution: dist,
            kubernetes_version: k8s_version.to_string(),
            reference: format!("{}/{}:{}", def.registry, def.repository, tag),
            name: name_with(&def.repository.replace('/', "-"), &facts),
            tag,
            facts,
        }
    }
}

/// `prefix` followed by each of `facts` that its words do not already say
/// (a fact of several words, `kubeadm-fips`, counts when all of them stand
/// together), joined with `-`.
pub fn name_with(prefix: &str, facts: &[String]) -> String {
    let mut name = prefix.to_string();
    for fact in facts {
        let words: Vec<&str> = name.split('-').collect();
        let fact_words: Vec<&str> = fact.split('-').collect();
        if !words.windows(fact_words.len()).any(|w| w == fact_words) {
            name = format!("{name}-{fact}");
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::name_with;

    fn facts(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_say_each_fact_once() {
        let tag = facts(&["k3s", "1.29.9", "v4.5.0"]);
        assert_eq!(
            name_with("palette-edge-installer-ubuntu-22.04-k3s", &tag),
            "palette-edge-installer-ubuntu-22.04-k3s-1.29.9-v4.5.0"
        );
        assert_eq!(
            name_with("edge-ubuntu", &tag),
            "edge-ubuntu-k3s-1.29.9-v4.5.0"
        );
        assert_eq!(name_with("ubuntu", &tag), "ubuntu-k3s-1.29.9-v4.5.0");
        // Whole words only: `k3s` is not in `k3sx`, `kubeadm-fips` is not `kubeadm`.
        assert_eq!(name_with("k3sx", &tag), "k3sx-k3s-1.29.9-v4.5.0");
        assert_eq!(
            name_with("os-kubeadm", &facts(&["kubeadm-fips", "1.30.5"])),
            "os-kubeadm-kubeadm-fips-1.30.5"
        );
        assert_eq!(
            name_with("os-kubeadm-fips", &facts(&["kubeadm-fips", "1.30.5"])),
            "os-kubeadm-fips-1.30.5"
        );
    }
}
