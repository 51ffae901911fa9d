//! The build's provenance: an in-toto Statement v1 with a SLSA Provenance v1
//! predicate (`provenance.intoto.json`): the outputs (artifacts and SBOMs)
//! as subjects, the definition and every input digest as resolved
//! dependencies, the resolved definition with secrets masked, the epoch and
//! tool versions. It is an output like the others (listed in `SHA256SUMS`
//! and `manifest.json`, deterministic); signing adds
//! `provenance.intoto.dsse.json`, a DSSE envelope whose signature is a
//! detached OpenPGP signature (base64) over the DSSE pre-authentication
//! encoding PAE(payloadType, payload), by the key that signs `SHA256SUMS`
//! (`scripts/verify-release.sh` checks it with gpg).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::io::{AtomicFile, Sha256Digest};
use crate::manifest::{Manifest, Output};
use crate::output_set::OutputSet;

pub const FILE: &str = "provenance.intoto.json";
pub const ENVELOPE: &str = "provenance.intoto.dsse.json";
pub const KIND: &str = "provenance";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const BUILD_TYPE: &str = "https://edgeforge.invalid/build/v1";
pub const BUILDER_ID: &str = "https://edgeforge.invalid/builder";

/// The statement for `manifest`'s outputs, as pretty JSON.
pub fn statement(manifest: &Manifest) -> anyhow::Result<Vec<u8>> {
    let subjects: Vec<_> = manifest
        .outputs
        .iter()
        .map(|o| json!({"name": o.name, "digest": {"sha256": o.sha256}}))
        .collect();
    let deps: Vec<_> = manifest
        .inputs
        .iter()
        .map(|(name, digest)| {
            let mut dep = json!({
                "name": name,
                "digest": {"sha256": digest.strip_prefix("sha256:").unwrap_or(digest)},
            });
            // A registry input is found again by its resolved reference.
            if let Some(r) = manifest.references.get(name) {
                dep["uri"] = json!(format!("docker://{r}"));
            }
            dep
        })
        .collect();
    let doc = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "definition": manifest.definition,
                    "user_data": manifest.user_data,
                },
                "internalParameters": {
                    "source_date_epoch": manifest.source_date_epoch,
                    "tools": manifest.tools,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"edgeforge": manifest.edgeforge},
                },
                "metadata": {
                    "invocationId": format!("sha256:{}", Sha256Digest::of(&manifest.to_bytes()?)),
                },
            },
        },
    });
    Ok((serde_json::to_string_pretty(&doc)? + "\n").into_bytes())
}

/// Stages `provenance.intoto.json` into `set`; returns its manifest output.
pub fn stage(manifest: &Manifest, dir: &Path, set: &mut OutputSet) -> anyhow::Result<Output> {
    let bytes = statement(manifest)?;
    let path = dir.join(FILE);
    let mut f = AtomicFile::create(&path, 0o644)?;
    f.write_all(&bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    let sha = Sha256Digest::of(&bytes);
    set.stage(f, sha);
    Ok(Output::new(&path, KIND, bytes.len() as u64, &sha, None))
}

/// DSSE's pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// The DSSE envelope of `payload` with one signature.
pub fn envelope(payload: &[u8], keyid: &str, sig: &[u8]) -> anyhow::Result<Vec<u8>> {
    let doc = json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": base64_encode(payload),
        "signatures": [{"keyid": keyid, "sig": base64_encode(sig)}],
    });
    Ok((serde_json::to_string_pretty(&doc)? + "\n").into_bytes())
}

/// The payload and the signatures of a DSSE envelope of this payload type.
pub fn open_envelope(bytes: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    if doc["payloadType"] != PAYLOAD_TYPE {
        return Err(format!("payloadType is not {PAYLOAD_TYPE}"));
    }
    let payload = doc["payload"]
        .as_str()
        .and_then(base64_decode)
        .ok_or("no base64 payload")?;
    let sigs = doc["signatures"]
        .as_array()
        .ok_or("no signatures")?
        .iter()
        .filter_map(|s| s["sig"].as_str().and_then(base64_decode))
        .collect();
    Ok((payload, sigs))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648), as DSSE uses.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` if it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_rfc4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), coded);
            assert_eq!(base64_decode(coded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn pae_is_dssev1() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
