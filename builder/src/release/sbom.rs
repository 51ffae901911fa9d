//! CycloneDX 1.5 JSON SBOMs (`<artifact>.cdx.json`), one per provider image
//! and ISO: the artifact with its sha256, the packages installed in its root
//! filesystem (dpkg/apk, with package URLs), the base image with its digest,
//! and every other input (definition, components, overlays, templates) with
//! its digest, all taken from the build manifest. Deterministic: the serial
//! number derives from the artifact's digest and the timestamp is
//! `SOURCE_DATE_EPOCH`. CycloneDX rather than SPDX because its schema
//! describes OCI images, OS packages and file hashes directly, and
//! Dependency-Track, Grype and Trivy read it.

use serde_json::{json, Value};

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::io::{AtomicFile, Sha256Digest};
use crate::manifest::{Manifest, Output};
use crate::output_set::OutputSet;

pub const SUFFIX: &str = ".cdx.json";
pub const KIND: &str = "sbom";

/// The SBOM of `artifact`, one of `manifest`'s outputs, as pretty JSON.
pub fn document(manifest: &Manifest, artifact: &Output) -> anyhow::Result<Vec<u8>> {
    let mut components = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &artifact.packages {
        if !seen.insert(p.purl.clone()) {
            continue;
        }
        components.push(json!({
            "type": "library",
            "bom-ref": p.purl,
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
            "properties": [{"name": "edgeforge:arch", "value": p.arch}],
        }));
    }
    for (name, digest) in &manifest.inputs {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let (kind, shown, description) = if name == "base_image" {
            (
                "container",
                // A registry base by the digest it resolved to, not a tag.
                manifest
                    .references
                    .get("base_image")
                    .map(String::as_str)
                    .or(manifest.definition["base_image"].as_str())
                    .unwrap_or("base_image")
                    .to_string(),
                "the base image (digest of its manifest)",
            )
        } else {
            (
                "file",
                input_source(manifest, name),
                input_description(name),
            )
        };
        components.push(json!({
            "type": kind,
            "bom-ref": format!("input:{name}"),
            "name": shown,
            "description": description,
            "hashes": [{"alg": "SHA-256", "content": hex}],
            "properties": [{"name": "edgeforge:input", "value": name}],
        }));
    }
    let mut subject = json!({
        "type": if artifact.kind == "iso" { "operating-system" } else { "container" },
        "bom-ref": format!("artifact:{}", artifact.name),
        "name": artifact.name,
        "hashes": [{"alg": "SHA-256", "content": artifact.sha256}],
        "properties": [
            {"name": "edgeforge:kind", "value": artifact.kind},
            {"name": "edgeforge:size", "value": artifact.size.to_string()},
        ],
    });
    if let Some(r) = &artifact.reference {
        subject["properties"]
            .as_array_mut()
            .expect("an array")
            .push(json!({"name": "edgeforge:reference", "value": r}));
        if let Some((_, tag)) = r.rsplit_once(':') {
            subject["version"] = json!(tag);
        }
    }
    let refs: Vec<Value> = components.iter().map(|c| c["bom-ref"].clone()).collect();
    let doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(&artifact.name, &artifact.sha256),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(manifest.source_date_epoch),
            "tools": {"components": [{
                "type": "application",
                "name": "edgeforge",
                "version": manifest.edgeforge,
            }]},
            "component": subject,
        },
        "components": components,
        "dependencies": [{"ref": format!("artifact:{}", artifact.name), "dependsOn": refs}],
    });
    Ok((serde_json::to_string_pretty(&doc)? + "\n").into_bytes())
}

/// Stages the SBOM of every provider image and ISO `manifest` lists into
/// `set` (the output folder `dir`); returns their manifest outputs.
pub fn stage_all(
    manifest: &Manifest,
    dir: &Path,
    set: &mut OutputSet,
) -> anyhow::Result<Vec<Output>> {
    let mut outputs = Vec::new();
    for artifact in &manifest.outputs {
        if artifact.kind != "provider-image" && artifact.kind != "iso" {
            continue;
        }
        let bytes = document(manifest, artifact)?;
        let path = dir.join(format!("{}{SUFFIX}", artifact.name));
        let mut f = AtomicFile::create(&path, 0o644)?;
        f.write_all(&bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        let sha = Sha256Digest::of(&bytes);
        outputs.push(Output::new(&path, KIND, bytes.len() as u64, &sha, None));
        set.stage(f, sha);
    }
    Ok(outputs)
}

/// The path the definition gives for an input such as `overlays.rootfs[0]`.
fn input_source(manifest: &Manifest, name: &str) -> String {
    let def = &manifest.definition;
    let at = |v: &Value| v.as_str().map(str::to_string);
    let found = match name.split_once('[') {
        Some((path, rest)) => {
            let i: usize = rest.trim_end_matches(']').parse().unwrap_or(usize::MAX);
            let mut v = def;
            for k in path.split('.') {
                v = &v[k];
            }
            let item = &v[i];
            at(item).or_else(|| at(&item["source"]))
        }
        None => at(&def[name]),
    };
    found.unwrap_or_else(|| name.to_string())
}

fn input_description(name: &str) -> &'static str {
    if name.starts_with("components") {
        "a component (folder or tarball) added as a layer"
    } else if name.starts_with("overlays") {
        "an overlay tree"
    } else if name == "templates" {
        "the templates folder"
    } else if name == "definition" {
        "the image definition"
    } else {
        "a build input"
    }
}

/// A UUID (version 5 layout) derived from the artifact, so rebuilds agree.
fn serial_number(name: &str, sha256: &str) -> String {
    let d = Sha256Digest::of(format!("edgeforge-sbom\0{name}\0{sha256}").as_bytes()).0;
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since 1970.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_serial_numbers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        let s = serial_number("a.iso", "00");
        assert_eq!(s.len(), "urn:uuid:".len() + 36);
        assert_eq!(&s[23..24], "5");
    }
}
