//! Checks that need more than types: formats, mutually exclusive settings and
//! paths that must exist. Each error names the file, line and field.

use super::model::KubernetesDistribution;
use super::LoadedDefinition;

pub fn validate(l: &LoadedDefinition) -> anyhow::Result<()> {
    let d = &l.def;
    if d.fips && d.update_kernel {
        return Err(l.field_error(
            "update_kernel",
            "FIPS images cannot update the kernel (the FIPS-validated kernel must stay); set update_kernel: false or fips: false",
        ));
    }
    let dist = d.kubernetes.distribution;
    if d.fips
        && !matches!(
            dist,
            KubernetesDistribution::KubeadmFips | KubernetesDistribution::Rke2
        )
    {
        return Err(l.field_error(
            "kubernetes.distribution",
            format!(
                "`{}` has no FIPS build; with fips: true use kubeadm-fips or rke2",
                dist.as_str()
            ),
        ));
    }
    if dist == KubernetesDistribution::KubeadmFips && !d.fips {
        return Err(l.field_error(
            "fips",
            "kubernetes.distribution kubeadm-fips needs fips: true",
        ));
    }
    let versions = d.kubernetes.version.as_slice();
    if versions.is_empty() {
        return Err(l.field_error(
            "kubernetes.version",
            "give at least one version, like \"1.30.5\"",
        ));
    }
    for v in versions {
        if !is_semver_triplet(v) {
            return Err(l.field_error(
                "kubernetes.version",
                format!("`{v}` is not MAJOR.MINOR.PATCH (like \"1.30.5\", without a leading v or a -k3s1 suffix)"),
            ));
        }
    }
    if let Some(dup) = versions
        .iter()
        .enumerate()
        .find(|(i, v)| versions[..*i].contains(v))
    {
        return Err(l.field_error("kubernetes.version", format!("`{}` is listed twice", dup.1)));
    }
    let agent = &d.agent.version;
    if !(agent.starts_with('v') && is_semver_triplet(&agent[1..])) {
        return Err(l.field_error("agent.version", format!("`{agent}` is not like v4.5.0")));
    }
    for (field, value) in [
        ("os.distribution", &d.os.distribution),
        ("os.version", &d.os.version),
    ] {
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(l.field_error(
                field,
                format!("`{value}` must be letters, digits, `.`, `_` or `-`"),
            ));
        }
    }
    if d.registry.is_empty()
        || d.registry.contains("://")
        || d.registry.ends_with('/')
        || d.registry
            .chars()
            .any(|c| c.is_whitespace() || c.is_ascii_uppercase())
    {
        return Err(l.field_error(
            "registry",
            format!(
                "`{}` is not a registry host (like ttl.sh or registry.local:5000)",
                d.registry
            ),
        ));
    }
    if d.repository.is_empty()
        || !d.repository.split('/').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        })
    {
        return Err(l.field_error(
            "repository",
            format!(
                "`{}` must be lowercase path components like edge/ubuntu",
                d.repository
            ),
        ));
    }
    if let Some(custom) = &d.custom_tag {
        if !custom
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(l.field_error(
                "custom_tag",
                format!("`{custom}` may hold only letters, digits, `.`, `_` and `-`"),
            ));
        }
    }
    for (i, b) in d.iso.bundles.iter().enumerate() {
        if !l.resolve(b).is_file() {
            return Err(l.field_error(
                "iso.bundles",
                format!(
                    "iso.bundles[{i}] {} is not a file (make one with `edgeforge bundle`)",
                    l.resolve(b).display()
                ),
            ));
        }
    }
    if d.iso.split_size == 0 || d.iso.split_size > 4_294_965_248 {
        return Err(l.field_error(
            "iso.split_size",
            "must be between 1 and 4294965248 bytes (ISO 9660's largest file)",
        ));
    }
    let area = d.iso.reserved_area.0;
    if !(crate::iso::reserved::MIN_SIZE..=crate::iso::reserved::MAX_SIZE).contains(&area) {
        return Err(l.field_error(
            "iso.reserved_area",
            format!(
                "{area} bytes is not between 4KiB and 8MiB (the default is 64KiB; user-data is at most 1MiB)"
            ),
        ));
    }
    for variant in l.variants() {
        if variant.tag.len() > 128 {
            return Err(l.field_error(
                "custom_tag",
                format!(
                    "the tag `{}` is longer than the 128 characters OCI allows",
                    variant.tag
                ),
            ));
        }
    }
    if d.disk.name.is_empty()
        || !d
            .disk
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(l.field_error(
            "disk.name",
            "must be letters, digits, `.`, `_` or `-` (it names the disk images)",
        ));
    }
    if d.disk.cpus == 0 || d.disk.memory_mib < 256 {
        return Err(l.field_error(
            "disk",
            "disk.cpus must be at least 1 and disk.memory_mib at least 256",
        ));
    }
    if d.iso_name.is_empty() || d.iso_name.contains('/') {
        return Err(l.field_error("iso_name", "must be a file name without `/`"));
    }
    if let Some(t) = &d.templates {
        require_dir(l, "templates", &l.resolve(t))?;
    }
    for (i, c) in d.components.iter().enumerate() {
        let p = l.resolve(&c.source);
        if !p.exists() {
            return Err(l.field_error(
                "components",
                format!("components[{i}].source {} does not exist", p.display()),
            ));
        }
        if let Some(dest) = &c.destination {
            if !dest.starts_with('/') || dest.split('/').any(|s| s == "..") {
                return Err(l.field_error("components", format!("components[{i}].destination `{dest}` must be an absolute path without `..`")));
            }
        }
    }
    for (path, mode) in &d.file_modes {
        if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
            return Err(l.field_error(
                "file_modes",
                format!("`{path}` must be an absolute image path without `..`"),
            ));
        }
        if super::model::parse_mode(mode).is_none() {
            return Err(l.field_error(
                "file_modes",
                format!("{path}: `{mode}` is not an octal mode; write it quoted, like \"0440\" or \"4755\""),
            ));
        }
    }
    for (field, file) in [
        ("iso.edge_custom_config", &d.iso.edge_custom_config),
        ("iso.cluster_definition", &d.iso.cluster_definition),
    ] {
        if let Some(f) = file {
            if !l.resolve(f).is_file() {
                return Err(
                    l.field_error(field, format!("{} is not a file", l.resolve(f).display()))
                );
            }
        }
    }
    if let Err(e) = crate::iso::menu::Menu::new(&d.iso) {
        return Err(l.field_error(&e.field, e.message));
    }
    for (field, trees) in [
        ("overlays.rootfs", &d.overlays.rootfs),
        ("overlays.iso", &d.overlays.iso),
    ] {
        for t in trees {
            require_dir(l, field, &l.resolve(t))?;
        }
    }
    Ok(())
}

fn require_dir(l: &LoadedDefinition, field: &str, p: &std::path::Path) -> anyhow::Result<()> {
    if p.is_dir() {
        Ok(())
    } else {
        Err(l.field_error(field, format!("{} is not a folder", p.display())))
    }
}

fn is_semver_triplet(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}
