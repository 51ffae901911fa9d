//! The variables templates see: the definition resolved for one variant.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::definition::{ImageDefinition, Variant};
use crate::oci::spec::rfc3339;

#[derive(Serialize)]
struct RenderContext<'a> {
    os: Os<'a>,
    arch: &'a str,
    kubernetes: Kubernetes<'a>,
    agent: &'a crate::definition::Agent,
    registry: &'a str,
    repository: &'a str,
    custom_tag: &'a str,
    iso_name: &'a str,
    fips: bool,
    proxy: &'a crate::definition::Proxy,
    iso: &'a crate::definition::IsoOptions,
    /// The GRUB menu built from `iso` (entries and kernel arguments).
    menu: crate::iso::menu::Menu,
    image: Image<'a>,
    /// The provider image tag, also used as the OS release version.
    version: &'a str,
    source_date_epoch: u64,
    created: String,
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Os<'a> {
    distribution: &'a str,
    version: &'a str,
    /// KAIROS_FAMILY: the distribution family the Kairos tooling keys on.
    family: &'static str,
}

#[derive(Serialize)]
struct Kubernetes<'a> {
    distribution: &'a str,
    version: &'a str,
    /// The version as the distribution's packages spell it (`1.30.5-k3s1`).
    package_version: String,
}

#[derive(Serialize)]
struct Image<'a> {
    tag: &'a str,
    reference: &'a str,
    name: &'a str,
}

fn family(distribution: &str) -> &'static str {
    match distribution {
        "ubuntu" | "debian" => "debian",
        "rhel" | "rockylinux" | "almalinux" | "centos" | "fedora" => "rhel",
        "opensuse-leap" | "opensuse-tumbleweed" | "sles" | "opensuse" => "opensuse",
        "alpine" => "alpine",
        _ => "unknown",
    }
}

/// The Tera context for `variant` of `def`.
pub fn context_for(
    def: &ImageDefinition,
    variant: &Variant,
    epoch: u64,
) -> anyhow::Result<tera::Context> {
    let ctx = RenderContext {
        os: Os {
            distribution: &def.os.distribution,
            version: &def.os.version,
            family: family(&def.os.distribution),
        },
        arch: def.arch.as_str(),
        kubernetes: Kubernetes {
            distribution: variant.kubernetes_distribution.as_str(),
            version: &variant.kubernetes_version,
            package_version: format!(
                "{}{}",
                variant.kubernetes_version,
                variant.kubernetes_distribution.package_suffix()
            ),
        },
        agent: &def.agent,
        registry: &def.registry,
        repository: &def.repository,
        custom_tag: def.custom_tag.as_deref().unwrap_or(""),
        iso_name: &def.iso_name,
        fips: def.fips,
        proxy: &def.proxy,
        iso: &def.iso,
        menu: crate::iso::menu::Menu::new(&def.iso).map_err(|e| {
            crate::error::fail(
                crate::error::Category::InvalidInput,
                format!("{}: {}", e.field, e.message),
            )
        })?,
        image: Image {
            tag: &variant.tag,
            reference: &variant.reference,
            name: &variant.name,
        },
        version: &variant.tag,
        source_date_epoch: epoch,
        created: rfc3339(epoch),
        labels: &def.labels,
    };
    Ok(tera::Context::from_serialize(ctx)?)
}
