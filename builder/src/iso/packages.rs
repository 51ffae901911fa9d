//! The packages installed in a root filesystem, read from the dpkg status
//! file or the apk database, as name, version, architecture and package URL
//! (the identifiers SPDX and CycloneDX use), for the build manifest.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub purl: String,
}

/// dpkg's status file, apk's database.
pub const DATABASES: [&str; 2] = ["var/lib/dpkg/status", "lib/apk/db/installed"];

pub fn find(rootfs: &Path, distribution: &str) -> Vec<Package> {
    let mut packages = match fs::read_to_string(rootfs.join(DATABASES[0])) {
        Ok(text) => dpkg(&text, distribution),
        Err(_) => fs::read_to_string(rootfs.join(DATABASES[1]))
            .map(|t| apk(&t))
            .unwrap_or_default(),
    };
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

/// Installed packages of a dpkg status file (stanzas separated by blank lines).
fn dpkg(text: &str, distribution: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let field = |k: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            if !field("Status:")?.ends_with(" installed") {
                return None;
            }
            let (name, version, arch) = (
                field("Package:")?,
                field("Version:")?,
                field("Architecture:").unwrap_or_default(),
            );
            let purl = format!(
                "pkg:deb/{distribution}/{name}@{}?arch={arch}",
                version.replace(':', "%3A")
            );
            Some(Package {
                name,
                version,
                arch,
                purl,
            })
        })
        .collect()
}

/// Packages of an apk `installed` database (P:, V:, A: lines per package).
fn apk(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let field = |k: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(str::to_string))
            };
            let (name, version, arch) =
                (field("P:")?, field("V:")?, field("A:").unwrap_or_default());
            let purl = format!("pkg:apk/alpine/{name}@{version}?arch={arch}");
            Some(Package {
                name,
                version,
                arch,
                purl,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_dpkg_packages_only() {
        let status = "Package: busybox\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.35.0-4\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13\n";
        let p = dpkg(status, "ubuntu");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].purl, "pkg:deb/ubuntu/busybox@1%3A1.35.0-4?arch=amd64");
    }

    #[test]
    fn apk_database() {
        let p = apk("C:Q1abc\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n");
        assert_eq!(
            p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["musl", "busybox"]
        );
        assert_eq!(p[1].purl, "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64");
    }
}
