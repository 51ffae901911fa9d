//! Registries, against a real one: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 with a random port, TLS from a CA
//! each test generates, and htpasswd (bcrypt) logins. skopeo gets the CA
//! through a test-private folder (`EDGEFORGE_REGISTRY_CERT_DIR` or
//! `--cert-dir`) and the login through an auth file (0600) named by
//! `REGISTRY_AUTH_FILE` or `--authfile`; nothing is written under /etc.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use support::registry::*;
use support::*;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Every file under `dir` (recursively) is free of the password and token.
fn assert_no_secret_in_files(dir: &Path) {
    for e in walk(dir) {
        let bytes = fs::read(&e).unwrap();
        assert_no_secret(&String::from_utf8_lossy(&bytes), &e.display().to_string());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else if p.is_file() {
            files.push(p);
        }
    }
    files
}

/// sha256 of the manifest of a local oci-archive, as skopeo reads it.
fn archive_digest(archive: &Path) -> String {
    let raw = run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", archive.display()),
        ],
        Path::new("/"),
    );
    format!("sha256:{}", sha256_hex(raw.as_bytes()))
}

const DEMO: &str = "images/demo-busybox.yaml";
const ARCHIVE: &str = "ubuntu-k3s-1.30.5-v4.5.0-demo.oci.tar";
const ISO: &str = "palette-edge-installer.iso";

#[test]
fn a_build_pulls_its_base_pushes_and_rebuilds_offline_with_the_bytes_of_a_local_build() {
    let reg = Registry::start();
    let base_digest = reg.push_demo_base("demo/base:v1");
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let set_registry = format!("registry={}", reg.host);
    let set_base = format!("base_image=docker://{}/demo/base:v1", reg.host);
    let pulled = t.path().join("pulled");
    let o = reg.edgeforge(
        &cache,
        &[
            "build",
            DEMO,
            "--set",
            &set_base,
            "--set",
            &set_registry,
            "--golden",
            "--push",
            "--out",
            pulled.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    let manifest = json(&pulled.join("manifest.json"));
    assert_eq!(
        manifest["references"]["base_image"],
        format!("{}/demo/base@{base_digest}", reg.host)
    );
    assert_eq!(manifest["inputs"]["base_image"], base_digest.as_str());
    // The pushed provider image is the archive, manifest digest for digest.
    let local = archive_digest(&pulled.join(ARCHIVE));
    let image = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == ARCHIVE)
        .unwrap();
    let tag = "ubuntu:k3s-1.30.5-v4.5.0-demo";
    assert_eq!(image["pushed"], format!("{}/{tag}@{local}", reg.host));
    assert_eq!(reg.manifest_digest(tag), local);

    // The same definition from the local layout gives the same image.
    let from_layout = t.path().join("layout");
    let o = reg.edgeforge(
        &cache,
        &[
            "provider-image",
            DEMO,
            "--set",
            &set_registry,
            "--out",
            from_layout.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    let image_bytes = fs::read(pulled.join(ARCHIVE)).unwrap();
    assert!(
        fs::read(from_layout.join(ARCHIVE)).unwrap() == image_bytes,
        "the image built from the local layout differs from the pulled one"
    );

    // With the registry gone, --offline builds from the cache alone: by tag
    // (the whole set), and by the tag pinned to its digest (the image).
    let mut reg = reg;
    reg.stop();
    let offline = t.path().join("offline");
    let o = reg.edgeforge(
        &cache,
        &[
            "--offline",
            "build",
            DEMO,
            "--set",
            &set_base,
            "--set",
            &set_registry,
            "--golden",
            "--out",
            offline.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    for name in [ARCHIVE, ISO] {
        assert!(
            fs::read(offline.join(name)).unwrap() == fs::read(pulled.join(name)).unwrap(),
            "{name} of the offline build differs from the pulled one"
        );
    }
    let pinned = t.path().join("pinned");
    let set_pinned = format!("base_image={}/demo/base:v1@{base_digest}", reg.host);
    let o = reg.edgeforge(
        &cache,
        &[
            "--offline",
            "provider-image",
            DEMO,
            "--set",
            &set_pinned,
            "--set",
            &set_registry,
            "--out",
            pinned.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    assert!(
        fs::read(pinned.join(ARCHIVE)).unwrap() == image_bytes,
        "the offline image by pinned tag differs"
    );
    assert_eq!(
        json(&offline.join("manifest.json"))["references"],
        manifest["references"]
    );

    // The pushed set rebuilds offline to the same bytes: where its images
    // went is no part of its SBOMs and provenance.
    let o = reg.edgeforge(
        &cache,
        &["--offline", "verify", "--rebuild", pulled.to_str().unwrap()],
    );
    assert_ok(&o);
    let provenance = json(&pulled.join("provenance.intoto.json"));
    let deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let base = deps.iter().find(|d| d["name"] == "base_image").unwrap();
    assert_eq!(
        base["uri"],
        format!("docker://{}/demo/base@{base_digest}", reg.host)
    );

    // Offline, what was never pulled is named; online, the stopped registry is unreachable.
    let other = format!("base_image={}/demo/other:v2", reg.host);
    let o = reg.edgeforge(
        &cache,
        &[
            "--offline",
            "provider-image",
            DEMO,
            "--set",
            &other,
            "--out",
            t.path().join("x").to_str().unwrap(),
        ],
    );
    assert_fails(
        &o,
        12,
        &[
            "--offline",
            &format!("{}/demo/other:v2 is not in the cache", reg.host),
        ],
    );
    let o = reg.edgeforge(
        &cache,
        &[
            "provider-image",
            DEMO,
            "--set",
            &set_base,
            "--out",
            t.path().join("x").to_str().unwrap(),
        ],
    );
    assert_fails(&o, 11, &["cannot be reached", "connection refused"]);

    for dir in [&pulled, &offline, &cache] {
        assert_no_secret_in_files(dir);
    }
}

#[test]
fn wrong_digest_missing_or_wrong_login_and_an_untrusted_ca_fail_each_with_their_own_code() {
    let reg = Registry::start();
    let base_digest = reg.push_demo_base("demo/base:v1");
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let out = t.path().join("out");
    let out = out.to_str().unwrap();
    let base = |r: &str| format!("base_image={r}");
    let tagged = format!("{}/demo/base:v1", reg.host);

    let wrong = format!("{tagged}@sha256:{}", "0".repeat(64));
    let o = reg.edgeforge(
        &cache,
        &["provider-image", DEMO, "--set", &base(&wrong), "--out", out],
    );
    assert_fails(
        &o,
        7,
        &[&format!(
            "hashes to {base_digest}, not the pinned sha256:000"
        )],
    );

    for auth in ["no-auth.json", "wrong-auth.json"] {
        // -v: the skopeo command lines are logged, never with the login.
        let o = reg.edgeforge_auth(
            &cache,
            auth,
            &[
                "-v",
                "provider-image",
                DEMO,
                "--set",
                &base(&tagged),
                "--out",
                out,
            ],
        );
        assert_fails(&o, 9, &["unauthorized", "credentials", "--authfile"]);
    }
    // --authfile wins over REGISTRY_AUTH_FILE.
    let o = reg.edgeforge_auth(
        &cache,
        "no-auth.json",
        &[
            "--authfile",
            reg.path("auth.json").to_str().unwrap(),
            "provider-image",
            DEMO,
            "--set",
            &base(&tagged),
            "--out",
            out,
        ],
    );
    assert_ok(&o);

    // A CA folder without the test CA: the registry's certificate is not trusted.
    let empty = t.path().join("no-ca");
    fs::create_dir(&empty).unwrap();
    let fresh = t.path().join("fresh-cache");
    let o = reg.edgeforge(
        &fresh,
        &[
            "--cert-dir",
            empty.to_str().unwrap(),
            "provider-image",
            DEMO,
            "--set",
            &base(&tagged),
            "--out",
            out,
        ],
    );
    assert_fails(&o, 10, &["x509", "not trusted", "certs.d"]);
    // Unless verification is turned off, for a registry the user trusts.
    let o = reg.edgeforge(
        &fresh,
        &[
            "--cert-dir",
            empty.to_str().unwrap(),
            "--tls-verify=false",
            "provider-image",
            DEMO,
            "--set",
            &base(&tagged),
            "--out",
            out,
        ],
    );
    assert_ok(&o);

    let o = reg.edgeforge(
        &fresh,
        &[
            "provider-image",
            DEMO,
            "--set",
            &base(&format!("{}/demo/base:nope", reg.host)),
            "--out",
            out,
        ],
    );
    assert_fails(&o, 3, &["manifest unknown"]);
    // A local path that does not exist is not taken for a registry.
    let o = reg.edgeforge(
        &fresh,
        &[
            "provider-image",
            DEMO,
            "--set",
            "base_image=../.cache/no-such-base",
            "--out",
            out,
        ],
    );
    assert_fails(&o, 3, &["does not exist", "docker://"]);

    // A layer the registry serves damaged is refused (checked against its
    // digest on the way) and not kept: last, since blobs are shared by all
    // of the registry's repositories.
    let stored = walk(&reg.path("data"))
        .into_iter()
        .filter(|p| p.ends_with("data"))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&stored, bytes).unwrap();
    let damaged = t.path().join("damaged-cache");
    let bundle = t.path().join("damaged.tar.zst");
    let o = reg.edgeforge(
        &damaged,
        &["bundle", &tagged, "-o", bundle.to_str().unwrap()],
    );
    assert_fails(&o, 7, &["does not hash to its digest"]);
    assert!(!bundle.exists());
}

#[test]
fn a_push_keeps_the_manifest_digest_and_a_second_push_uploads_no_blob() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let out = t.path().join("out");
    let o = reg.edgeforge(
        &cache,
        &[
            "provider-image",
            DEMO,
            "--set",
            &format!("registry={}", reg.host),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    let archive = out.join(ARCHIVE);
    let local = archive_digest(&archive);
    let tag = "ubuntu:k3s-1.30.5-v4.5.0-demo";

    let o = reg.edgeforge(
        &cache,
        &["--output", "json", "push", archive.to_str().unwrap()],
    );
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["schema"], "edgeforge.push/v1");
    assert_eq!(report["reference"], format!("{}/{tag}@{local}", reg.host));
    assert_eq!(reg.manifest_digest(tag), local);
    let uploads = reg.blob_uploads();
    assert!(
        uploads >= 2,
        "the first push uploaded {uploads} blobs:\n{}",
        reg.log()
    );

    let o = reg.edgeforge(&cache, &["push", archive.to_str().unwrap()]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), format!("{}/{tag}@{local}", reg.host));
    assert_eq!(
        reg.blob_uploads(),
        uploads,
        "the second push uploaded blobs again"
    );

    // Pushed where REF says; offline refuses to push.
    let o = reg.edgeforge(
        &cache,
        &[
            "push",
            archive.to_str().unwrap(),
            &format!("docker://{}/edge/provider:v1", reg.host),
        ],
    );
    assert_ok(&o);
    assert_eq!(reg.manifest_digest("edge/provider:v1"), local);
    let o = reg.edgeforge(&cache, &["--offline", "push", archive.to_str().unwrap()]);
    assert_fails(&o, 12, &["--offline"]);
    // So do `build --push` and `bundle load`, before any work.
    let o = reg.edgeforge(
        &cache,
        &[
            "--offline",
            "build",
            DEMO,
            "--push",
            "--out",
            t.path().join("offline").to_str().unwrap(),
        ],
    );
    assert_fails(&o, 12, &["--offline", "--push"]);
    let o = reg.edgeforge(
        &cache,
        &[
            "--offline",
            "bundle",
            "load",
            t.path().join("no-such.tar.zst").to_str().unwrap(),
            "--to",
            &format!("{USER}:{PASSWORD}@{}", reg.host),
        ],
    );
    // (edgeforge_with checks that neither output shows the password.)
    assert_fails(&o, 12, &["--offline", &format!("{USER}:****@")]);
    // A login typed into a reference is refused, masked, and never used.
    let o = reg.edgeforge(
        &cache,
        &[
            "push",
            archive.to_str().unwrap(),
            &format!("docker://{USER}:{PASSWORD}@{}/edge/provider:v2", reg.host),
        ],
    );
    assert_fails(&o, 8, &["cannot carry a login", "--authfile"]);
    assert!(!reg.log().contains("/v2/edge/provider/manifests/v2"));
}

#[test]
fn a_bundle_of_registry_references_loads_into_another_path_with_the_same_digests() {
    let reg = Registry::start();
    let base_digest = reg.push_demo_base("demo/base:v1");
    let t = tempfile::tempdir().unwrap();
    let extra = t.path().join("extra");
    oci_layout(
        &extra,
        &[
            vec![Entry::File("etc/extra", b"extra")],
            vec![Entry::File("etc/more", &[3u8; 100_000])],
        ],
    );
    reg.skopeo(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        &format!("oci:{}", extra.display()),
        &format!("docker://{}/tools/extra:1.0", reg.host),
    ]);
    let extra_digest = reg.manifest_digest("tools/extra:1.0");

    let cache = t.path().join("cache");
    let bundle = t.path().join("site.tar.zst");
    let o = reg.edgeforge(
        &cache,
        &[
            "bundle",
            &format!("{}/demo/base:v1", reg.host),
            &format!("docker://{}/tools/extra:1.0@{extra_digest}", reg.host),
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    let tar = zstd::decode_all(fs::File::open(&bundle).unwrap()).unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let index: serde_json::Value = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("bundle.json"))
        .map(|e| serde_json::from_reader(e).unwrap())
        .unwrap();
    let images: Vec<(String, String)> = index["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["reference"].as_str().unwrap().to_string(),
                i["manifest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        images,
        [
            (format!("{}/demo/base:v1", reg.host), base_digest.clone()),
            (
                format!("{}/tools/extra:1.0", reg.host),
                extra_digest.clone()
            )
        ]
    );
    assert_no_secret(&String::from_utf8_lossy(&tar), "the bundle");

    // An air-gapped site's registries.conf sends a public name to its own
    // registry: skopeo follows it, edgeforge records the name it was given.
    let conf = t.path().join("registries.conf");
    fs::write(&conf, format!("[[registry]]\nlocation = \"quay.example.invalid\"\n[[registry.mirror]]\nlocation = \"{}\"\n", reg.host)).unwrap();
    let mirrored = t.path().join("mirrored.tar.zst");
    let o = reg.edgeforge_with(
        &cache,
        "auth.json",
        &[("EDGEFORGE_REGISTRIES_CONF", conf.to_str().unwrap())],
        &[
            "--output",
            "json",
            "bundle",
            "quay.example.invalid/demo/base:v1",
            "-o",
            mirrored.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    let o = reg.edgeforge(
        &cache,
        &[
            "--output",
            "json",
            "bundle",
            "verify",
            mirrored.to_str().unwrap(),
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["images"][0]["manifest"], base_digest.as_str());
    assert_eq!(
        report["images"][0]["name"],
        "quay.example.invalid/demo/base:v1"
    );

    let o = reg.edgeforge(
        &cache,
        &[
            "--output",
            "json",
            "bundle",
            "load",
            bundle.to_str().unwrap(),
            "--to",
            &format!("{}/site", reg.host),
        ],
    );
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["schema"], "edgeforge.bundle-load/v1");
    assert_eq!(
        report["images"][0]["pushed"],
        format!("{}/site/demo/base:v1@{base_digest}", reg.host)
    );
    assert_eq!(reg.manifest_digest("site/demo/base:v1"), base_digest);
    assert_eq!(reg.manifest_digest("site/tools/extra:1.0"), extra_digest);

    // A damaged bundle is refused before anything is pushed.
    let mut bytes = fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = t.path().join("bad.tar.zst");
    fs::write(&bad, bytes).unwrap();
    let o = reg.edgeforge(
        &cache,
        &[
            "bundle",
            "load",
            bad.to_str().unwrap(),
            "--to",
            &format!("{}/damaged", reg.host),
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        !reg.log().contains("/v2/damaged/"),
        "a damaged bundle reached the registry"
    );

    // Another tool's layout may name its image in no reference form: it is
    // bundled without a reference, which only `bundle load` needs.
    let mut index = json(&extra.join("index.json"));
    index["manifests"][0]["annotations"] =
        serde_json::json!({"io.containerd.image.name": "Extra Tools (local)"});
    fs::write(
        extra.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let local = t.path().join("local.tar.zst");
    let o = reg.edgeforge(
        &cache,
        &[
            "bundle",
            &format!("oci:{}", extra.display()),
            "-o",
            local.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    let o = reg.edgeforge(
        &cache,
        &["bundle", "load", local.to_str().unwrap(), "--to", &reg.host],
    );
    assert_fails(
        &o,
        3,
        &["has no registry reference", "HOST/REPOSITORY:TAG=PATH"],
    );
}

/// Writes `data` as a blob of the layout `dir`; returns its descriptor.
fn put_blob(dir: &Path, media_type: &str, data: &[u8]) -> serde_json::Value {
    let hex = sha256_hex(data);
    fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": data.len()})
}

#[test]
fn a_manifest_list_is_resolved_to_the_asked_architecture() {
    let reg = Registry::start();
    let t = tempfile::tempdir().unwrap();
    // The demo base (amd64) and a one-layer arm64 image under one index.
    let multi = t.path().join("multi");
    copy_tree(&demo_base(), &multi);
    let demo_index = json(&multi.join("index.json"));
    let amd64 = demo_index["manifests"][0].clone();
    let layer = flate2_gzip(&tar_bytes(&[Entry::File("etc/arch", b"arm64")]));
    let layer = put_blob(
        &multi,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &layer,
    );
    let diff_id = format!(
        "sha256:{}",
        sha256_hex(&tar_bytes(&[Entry::File("etc/arch", b"arm64")]))
    );
    let config = serde_json::json!({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "config": {}});
    let config = put_blob(
        &multi,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]});
    let mut arm64 = put_blob(
        &multi,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    arm64["platform"] = serde_json::json!({"architecture": "arm64", "os": "linux"});
    let list = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd64, arm64]});
    let mut list_desc = put_blob(
        &multi,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&list).unwrap(),
    );
    list_desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "multi"});
    fs::write(
        multi.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [list_desc]}))
            .unwrap(),
    )
    .unwrap();
    reg.skopeo(&[
        "copy",
        "--all",
        "--quiet",
        "--preserve-digests",
        &format!("oci:{}:multi", multi.display()),
        &format!("docker://{}/demo/multi:v1", reg.host),
    ]);
    // The tag gives the list itself.
    assert_eq!(
        reg.manifest_digest("demo/multi:v1"),
        list_desc["digest"].as_str().unwrap()
    );

    let cache = t.path().join("cache");
    for (arch, want) in [("amd64", &amd64), ("arm64", &arm64)] {
        let bundle = t.path().join(format!("{arch}.tar.zst"));
        // Pinned to the list's digest: the pin is checked against the list.
        let reference = format!(
            "{}/demo/multi:v1@{}",
            reg.host,
            list_desc["digest"].as_str().unwrap()
        );
        let o = reg.edgeforge(
            &cache,
            &[
                "--output",
                "json",
                "bundle",
                "--arch",
                arch,
                &reference,
                "-o",
                bundle.to_str().unwrap(),
            ],
        );
        assert_ok(&o);
        let o = reg.edgeforge(
            &cache,
            &[
                "--output",
                "json",
                "bundle",
                "verify",
                bundle.to_str().unwrap(),
            ],
        );
        assert_ok(&o);
        let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(report["images"][0]["manifest"], want["digest"], "{arch}");
    }

    // Both images' blobs are stored once in the shared layout; a prune keeps
    // what was used recently, `--all` drops it, and --offline then names it.
    let blobs = cache.join("registry/layout/blobs/sha256");
    assert_eq!(entries(&blobs).len(), 6, "{:?}", entries(&blobs));
    let amd64_ref = format!("{}/demo/multi:v1", reg.host);
    let bundle = t.path().join("again.tar.zst");
    let offline = |reg: &Registry| {
        reg.edgeforge(
            &cache,
            &[
                "--offline",
                "bundle",
                &amd64_ref,
                "-o",
                bundle.to_str().unwrap(),
            ],
        )
    };
    assert_ok(&reg.edgeforge(
        &cache,
        &["bundle", &amd64_ref, "-o", bundle.to_str().unwrap()],
    ));
    assert_ok(&reg.edgeforge(&cache, &["cache", "prune", "--older-than", "1"]));
    assert_eq!(entries(&blobs).len(), 6);
    assert_ok(&offline(&reg));
    let o = reg.edgeforge(&cache, &["cache", "prune", "--all"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("2 pulled registry images"),
        "{}",
        stdout(&o)
    );
    assert_eq!(entries(&blobs), Vec::<String>::new());
    assert_eq!(
        json(&cache.join("registry/layout/index.json"))["manifests"],
        serde_json::json!([])
    );
    assert_fails(
        &offline(&reg),
        12,
        &[&format!("{amd64_ref} is not in the cache")],
    );
}

fn flate2_gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
