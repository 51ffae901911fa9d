//! Content bundles: round trip, damage named by image and blob, and bundles
//! split into parts on the ISO, listed in the manifest.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::*;

/// A bundle of the demo base and a second, two-layer image.
fn two_image_bundle(dir: &Path) -> PathBuf {
    let second = dir.join("second");
    oci_layout(
        &second,
        &[
            vec![Entry::File("etc/a", b"a")],
            vec![Entry::File("etc/b", &[7u8; 300_000])],
        ],
    );
    let out = dir.join("content.tar.zst");
    let o = edgeforge(&[
        "bundle",
        &format!("base={}", demo_base().display()),
        &format!("second=oci:{}", second.display()),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    out
}

#[test]
fn a_bundle_of_two_images_round_trips_and_damage_is_named() {
    let t = tempfile::tempdir().unwrap();
    let bundle = two_image_bundle(t.path());
    run_tool("sha256sum", &["-c", "content.tar.zst.sha256"], t.path());
    let o = edgeforge(&[
        "--output",
        "json",
        "bundle",
        "verify",
        bundle.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["ok"], true);
    let names: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base", "second"]);

    // Decompressed, it is an oci-archive skopeo reads, digests intact.
    let tar = t.path().join("content.tar");
    fs::write(
        &tar,
        zstd::decode_all(fs::File::open(&bundle).unwrap()).unwrap(),
    )
    .unwrap();
    let inspect = run_tool(
        "skopeo",
        &["inspect", &format!("oci-archive:{}:base", tar.display())],
        t.path(),
    );
    let base_manifest = report["images"][0]["manifest"].as_str().unwrap();
    assert!(inspect.contains(base_manifest), "{inspect}");

    // A flipped byte in the middle lands in the largest blob: named with its image.
    let mut bytes = fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = t.path().join("bad.tar.zst");
    fs::write(&bad, bytes).unwrap();
    let o = edgeforge(&["bundle", "verify", bad.to_str().unwrap()]);
    assert_fails(&o, 7, &["failed verification", "image base blob sha256:"]);
}

#[test]
fn iso_bundles_over_the_split_size_become_listed_parts() {
    let t = tempfile::tempdir().unwrap();
    let bundle = two_image_bundle(t.path());
    let size = fs::metadata(&bundle).unwrap().len();
    let split = 1_000_000u64;
    let def = write_definition(
        t.path(),
        "content",
        &demo_base(),
        &format!(
            "iso:\n  bundles: [{}]\n  split_size: {split}\n",
            bundle.display()
        ),
    );
    let ud = repo_root().join("images/user-data/demo.yaml");
    let out = t.path().join("out");
    assert_ok(&edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));

    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["inputs"]["iso.bundles[0]"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let iso_out = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "iso")
        .unwrap();
    let content = &iso_out["content"][0];
    assert_eq!(content["name"], "content.tar.zst");
    assert_eq!(content["size"].as_u64().unwrap(), size);
    let parts = content["parts"].as_array().unwrap();
    assert_eq!(parts.len() as u64, size.div_ceil(split));

    // The parts are on the ISO and put back together give the bundle.
    let iso = out.join("palette-edge-installer.iso");
    let mut joined = Vec::new();
    for p in parts {
        let name = p["name"].as_str().unwrap();
        let to = t.path().join(name);
        let bytes = iso_extract(&iso, &format!("/opt/spectrocloud/content/{name}"), &to);
        assert_eq!(
            format!("sha256:{}", sha256_hex(&bytes)),
            p["sha256"].as_str().unwrap()
        );
        assert!(bytes.len() as u64 <= split);
        joined.extend(bytes);
    }
    assert!(
        joined == fs::read(&bundle).unwrap(),
        "the parts reassemble the bundle"
    );
}
