//! Verifiable releases: OpenPGP signatures that `gpg --verify` checks, and
//! `verify --key` failing on a changed SHA256SUMS, another key's signature
//! and a missing signature.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// A GnuPG home with one fresh ed25519 key (no passphrase), its secret key
/// and public key exported as files.
struct Key {
    home: PathBuf,
    secret: PathBuf,
    public: PathBuf,
}

fn gpg(home: &Path, args: &[&str]) -> std::process::Output {
    let o = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty"])
        .args(args)
        .output()
        .expect("running gpg (Debian package gnupg)");
    o
}

fn make_key(dir: &Path, name: &str) -> Key {
    let home = dir.join(format!("{name}-gnupg"));
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let uid = format!("{name} <{name}@example.com>");
    let o = gpg(
        &home,
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let secret = dir.join(format!("{name}.sec.asc"));
    let public = dir.join(format!("{name}.pub.asc"));
    let o = gpg(&home, &["--armor", "--export-secret-keys", &uid]);
    fs::write(&secret, &o.stdout).unwrap();
    let o = gpg(&home, &["--armor", "--export", &uid]);
    fs::write(&public, &o.stdout).unwrap();
    Key {
        home,
        secret,
        public,
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "all"])
            .output();
    }
}

/// Builds the demo into `dir/build`, with extra arguments.
fn build(dir: &Path, extra: &[&str]) -> PathBuf {
    demo_base();
    fs::create_dir_all(dir).unwrap();
    let ud = dir.join("user-data.yaml");
    fs::write(
        &ud,
        "#cloud-config\nstylus:\n  site:\n    name: release-test\n",
    )
    .unwrap();
    let out = dir.join("build");
    let mut args = vec![
        "build",
        "images/demo-busybox.yaml",
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    assert_ok(&edgeforge(&args));
    out
}

fn verify_with(out: &Path, key: &Path) -> std::process::Output {
    edgeforge(&[
        "verify",
        out.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ])
}

#[test]
fn signatures_verify_with_gpg_and_verify_key_rejects_changes_other_keys_and_missing_ones() {
    let t = tempfile::tempdir().unwrap();
    let key = make_key(t.path(), "release");
    let other = make_key(t.path(), "other");
    let out = build(t.path(), &["--sign-key", key.secret.to_str().unwrap()]);
    for f in ["SHA256SUMS", "manifest.json"] {
        assert!(out.join(format!("{f}.gpg")).is_file(), "{f}.gpg written");
    }

    // The standard tool, with a keyring holding only the public key.
    let keyring = t.path().join("verifier-gnupg");
    fs::create_dir_all(&keyring).unwrap();
    fs::set_permissions(&keyring, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(gpg(&keyring, &["--import", key.public.to_str().unwrap()])
        .status
        .success());
    for f in ["SHA256SUMS", "manifest.json"] {
        let o = gpg(
            &keyring,
            &[
                "--verify",
                out.join(format!("{f}.gpg")).to_str().unwrap(),
                out.join(f).to_str().unwrap(),
            ],
        );
        assert!(
            o.status.success(),
            "gpg --verify {f}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&keyring)
        .args(["--kill", "all"])
        .output();

    let ok = verify_with(&out, &key.public);
    assert_ok(&ok);
    assert!(
        stdout(&ok).contains("SHA256SUMS.gpg: OK"),
        "{}",
        stdout(&ok)
    );
    let j = edgeforge(&[
        "--output",
        "json",
        "verify",
        out.to_str().unwrap(),
        "--key",
        key.public.to_str().unwrap(),
    ]);
    assert_ok(&j);
    let j: serde_json::Value = serde_json::from_str(&stdout(&j)).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["signatures"][0]["name"], "SHA256SUMS.gpg");
    assert_eq!(j["signatures"][0]["status"], "OK");

    // The private key never enters an output.
    let secret = fs::read_to_string(&key.secret).unwrap();
    let body = secret.lines().nth(3).unwrap().to_string();
    for name in entries(&out) {
        let bytes = fs::read(out.join(&name)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&body),
            "{name} holds the secret key"
        );
    }

    // Another key's public key.
    assert_fails(
        &verify_with(&out, &other.public),
        7,
        &["SIGNED BY ANOTHER KEY"],
    );

    // A flipped byte in SHA256SUMS.
    let sums = out.join("SHA256SUMS");
    let orig = fs::read(&sums).unwrap();
    let mut flipped = orig.clone();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    fs::write(&sums, &flipped).unwrap();
    assert_fails(&verify_with(&out, &key.public), 7, &["BAD SIGNATURE"]);
    fs::write(&sums, &orig).unwrap();
    assert_ok(&verify_with(&out, &key.public));

    // A signature made by another key.
    assert_ok(&edgeforge(&[
        "sign",
        out.to_str().unwrap(),
        "--key",
        other.secret.to_str().unwrap(),
    ]));
    assert_fails(
        &verify_with(&out, &key.public),
        7,
        &["SIGNED BY ANOTHER KEY"],
    );
    assert_ok(&verify_with(&out, &other.public));

    // A missing signature.
    fs::remove_file(out.join("SHA256SUMS.gpg")).unwrap();
    assert_fails(&verify_with(&out, &other.public), 7, &["MISSING"]);
    fs::remove_file(out.join("manifest.json.gpg")).unwrap();
    // Without a key an unsigned folder still verifies.
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));
}

#[test]
fn sign_uses_an_agent_key_by_id_and_a_rebuild_drops_stale_signatures() {
    let t = tempfile::tempdir().unwrap();
    let key = make_key(t.path(), "agent");
    let out = build(t.path(), &[]);
    assert!(!out.join("SHA256SUMS.gpg").exists());
    let o = edgeforge_env(
        &[
            "sign",
            out.to_str().unwrap(),
            "--key-id",
            "agent@example.com",
        ],
        &[("GNUPGHOME", key.home.to_str().unwrap())],
    );
    assert_ok(&o);
    assert!(stdout(&o).contains("SHA256SUMS.gpg"), "{}", stdout(&o));
    assert_ok(&verify_with(&out, &key.public));

    // A new build replaces SHA256SUMS: the old signatures go with it.
    build(t.path(), &["--set", "kubernetes.version=1.31.1"]);
    assert!(!out.join("SHA256SUMS.gpg").exists());
    assert!(!out.join("manifest.json.gpg").exists());
    assert_fails(&verify_with(&out, &key.public), 7, &["MISSING"]);
}

#[test]
fn a_bad_key_fails_before_building_and_the_key_is_never_an_argument() {
    let t = tempfile::tempdir().unwrap();
    let junk = t.path().join("junk.asc");
    fs::write(&junk, "not a key\n").unwrap();
    let out = t.path().join("build");
    let o = edgeforge(&[
        "build",
        "images/demo-busybox.yaml",
        "--golden",
        "--sign-key",
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["junk.asc"]);
    assert!(!out.join("SHA256SUMS").exists());
    // sign needs a key source.
    assert_eq!(
        edgeforge(&["sign", out.to_str().unwrap()]).status.code(),
        Some(2)
    );
}

/// The python of a venv with jsonschema and CycloneDX's schemas, made by
/// the project's script on first use (scripts/test.sh makes it too).
fn schema_python() -> PathBuf {
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/make-schema-venv.sh"))
        .current_dir(repo_root())
        .output()
        .expect("running scripts/make-schema-venv.sh");
    assert!(
        o.status.success(),
        "scripts/make-schema-venv.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    repo_root().join(String::from_utf8_lossy(&o.stdout).trim())
}

/// Validates CycloneDX documents with CycloneDX's own JSON schema.
#[track_caller]
fn assert_valid_cyclonedx(files: &[PathBuf]) {
    let o = Command::new(schema_python())
        .args(["-W", "ignore"])
        .arg(repo_root().join("tests/support/cyclonedx_validate.py"))
        .args(files)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The SBOM's library components as `name version` lines, sorted.
fn sbom_packages(sbom: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "library")
        .map(|c| {
            let purl = c["purl"].as_str().unwrap();
            assert!(purl.starts_with("pkg:"), "{purl}");
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_artifact_has_a_valid_cyclonedx_sbom_listed_in_the_checksums_and_manifest() {
    let t = tempfile::tempdir().unwrap();
    let out = build(t.path(), &[]);
    let manifest = json(&out.join("manifest.json"));
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let outputs = manifest["outputs"].as_array().unwrap();
    let artifacts: Vec<&serde_json::Value> = outputs
        .iter()
        .filter(|o| o["kind"] == "iso" || o["kind"] == "provider-image")
        .collect();
    assert_eq!(artifacts.len(), 2);
    let mut files = Vec::new();
    for a in artifacts {
        let name = a["name"].as_str().unwrap();
        let sbom_name = format!("{name}.cdx.json");
        let path = out.join(&sbom_name);
        let bytes = fs::read(&path).unwrap();
        let sha = sha256_hex(&bytes);
        assert!(sums.contains(&format!("{sha}  {sbom_name}\n")), "{sums}");
        assert!(
            outputs.iter().any(|o| o["name"] == sbom_name.as_str()
                && o["kind"] == "sbom"
                && o["sha256"] == sha.as_str()),
            "{sbom_name} in the manifest"
        );
        let sbom = json(&path);
        let subject = &sbom["metadata"]["component"];
        assert_eq!(subject["name"], a["name"]);
        assert_eq!(subject["hashes"][0]["content"], a["sha256"]);
        for (input, digest) in manifest["inputs"].as_object().unwrap() {
            let c = sbom["components"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["bom-ref"] == format!("input:{input}").as_str())
                .unwrap_or_else(|| panic!("{input} in {sbom_name}"));
            assert_eq!(
                format!("sha256:{}", c["hashes"][0]["content"].as_str().unwrap()),
                digest.as_str().unwrap()
            );
        }
        files.push(path);
    }
    assert_valid_cyclonedx(&files);
    // Same inputs, same SBOM bytes.
    let again = build(&t.path().join("again"), &[]);
    for f in &files {
        assert_eq!(
            fs::read(f).unwrap(),
            fs::read(again.join(f.file_name().unwrap())).unwrap()
        );
    }
}

#[test]
fn the_debian_sbom_lists_the_packages_dpkg_query_reports() {
    let base = debian_base();
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    assert_ok(&edgeforge(&[
        "unpack",
        &format!("oci:{}", base.display()),
        "--out",
        rootfs.to_str().unwrap(),
    ]));
    let admindir = rootfs.join("var/lib/dpkg");
    let listed = run_tool(
        "dpkg-query",
        &[
            &format!("--admindir={}", admindir.display()),
            "-W",
            "-f=${db:Status-Abbrev} ${Package} ${Version}\n",
        ],
        t.path(),
    );
    let mut expected: Vec<String> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("ii  "))
        .map(str::to_string)
        .collect();
    expected.sort();
    expected.dedup();
    assert!(expected.len() > 50, "{listed}");

    let out = t.path().join("build");
    assert_ok(&edgeforge(&[
        "build",
        "images/demo.yaml",
        "--user-data",
        "images/user-data/demo.yaml",
        "--out",
        out.to_str().unwrap(),
    ]));
    let mut files = Vec::new();
    for name in [
        "debian-k3s-1.30.5-v4.5.0-demo.oci.tar.cdx.json",
        "palette-edge-installer-debian.iso.cdx.json",
    ] {
        let sbom = json(&out.join(name));
        let mut got = sbom_packages(&sbom);
        got.dedup();
        assert_eq!(got, expected, "{name}");
        assert!(sbom.to_string().contains("pkg:deb/debian/"), "{name}");
        files.push(out.join(name));
    }
    assert_valid_cyclonedx(&files);
}

#[test]
fn the_signed_provenance_names_every_output_and_input_and_checks_with_gpg_alone() {
    let t = tempfile::tempdir().unwrap();
    let key = make_key(t.path(), "prov");
    let out = build(t.path(), &["--sign-key", key.secret.to_str().unwrap()]);
    let manifest = json(&out.join("manifest.json"));
    let statement = json(&out.join("provenance.intoto.json"));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");

    // Subjects: every other output, with the digest of the file there.
    let mut subjects: Vec<(String, String)> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap().to_string();
            let sha = s["digest"]["sha256"].as_str().unwrap().to_string();
            assert_eq!(
                sha,
                sha256_hex(&fs::read(out.join(&name)).unwrap()),
                "{name}"
            );
            (name, sha)
        })
        .collect();
    subjects.sort();
    let mut outputs: Vec<(String, String)> = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] != "provenance")
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    outputs.sort();
    assert_eq!(subjects, outputs);
    assert_eq!(subjects.len(), 4, "two artifacts and their SBOMs");

    // Materials: the definition and every input digest.
    let build_def = &statement["predicate"]["buildDefinition"];
    for (name, digest) in manifest["inputs"].as_object().unwrap() {
        assert!(
            build_def["resolvedDependencies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["name"] == name.as_str()
                    && format!("sha256:{}", d["digest"]["sha256"].as_str().unwrap())
                        == digest.as_str().unwrap()),
            "{name}"
        );
    }
    assert_eq!(
        build_def["externalParameters"]["definition"],
        manifest["definition"]
    );
    assert_eq!(
        build_def["externalParameters"]["user_data"]["sha256"],
        manifest["user_data"]["sha256"]
    );

    // Signed: edgeforge, and gpg alone through the documented script.
    let v = verify_with(&out, &key.public);
    assert_ok(&v);
    assert!(
        stdout(&v).contains("provenance.intoto.dsse.json: OK"),
        "{}",
        stdout(&v)
    );
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/verify-release.sh"))
        .arg(&out)
        .arg(&key.public)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    // An envelope over another statement fails.
    let envelope = out.join("provenance.intoto.dsse.json");
    let mut doc = json(&envelope);
    doc["payload"] = serde_json::json!("e30K");
    fs::write(&envelope, serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_fails(&verify_with(&out, &key.public), 7, &["PAYLOAD DIFFERS"]);
    fs::remove_file(&envelope).unwrap();
    assert_fails(
        &verify_with(&out, &key.public),
        7,
        &["provenance.intoto.dsse.json: MISSING"],
    );
}

#[test]
fn verify_rebuild_passes_on_the_demo_and_names_what_changed() {
    let t = tempfile::tempdir().unwrap();
    let out = build(t.path(), &[]);
    let ud = t.path().join("user-data.yaml");
    let o = edgeforge(&[
        "verify",
        "--rebuild",
        out.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("palette-edge-installer.iso: IDENTICAL"),
        "{}",
        stdout(&o)
    );
    // The user-data is not in the manifest: --rebuild needs it again.
    assert_fails(
        &edgeforge(&["verify", "--rebuild", out.to_str().unwrap()]),
        2,
        &["--user-data"],
    );

    // One input changed: an overlay of a definition of our own.
    let overlay = t.path().join("overlay");
    fs::create_dir_all(overlay.join("etc")).unwrap();
    fs::write(overlay.join("etc/motd"), "before\n").unwrap();
    let def = write_definition(
        t.path(),
        "own",
        &demo_base(),
        &format!("overlays:\n  rootfs: [{}]\n", overlay.display()),
    );
    let out2 = t.path().join("own-build");
    assert_ok(&edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--golden",
        "--out",
        out2.to_str().unwrap(),
    ]));
    assert_ok(&edgeforge(&["verify", "--rebuild", out2.to_str().unwrap()]));
    fs::write(overlay.join("etc/motd"), "after!\n").unwrap();
    let o = edgeforge(&["verify", "--rebuild", out2.to_str().unwrap()]);
    assert_fails(
        &o,
        7,
        &[
            "first ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar: first differing byte at offset",
            "input overlays.rootfs[0]",
        ],
    );
    assert!(
        stdout(&o).contains("input overlays.rootfs[0]: CHANGED"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_iso_run_replacing_an_iso_drops_the_sbom_and_provenance_that_described_it() {
    let t = tempfile::tempdir().unwrap();
    let out = build(t.path(), &[]);
    let ud = t.path().join("user-data.yaml");
    assert_ok(&edgeforge(&[
        "iso",
        "images/demo-busybox.yaml",
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let left = entries(&out);
    for gone in [
        "manifest.json",
        "provenance.intoto.json",
        "provenance.intoto.json.sha256",
        "palette-edge-installer.iso.cdx.json",
        "palette-edge-installer.iso.cdx.json.sha256",
    ] {
        assert!(!left.contains(&gone.to_string()), "{gone} in {left:?}");
    }
    assert!(left.contains(&"ubuntu-k3s-1.30.5-v4.5.0-demo.oci.tar.cdx.json".to_string()));
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(!sums.contains("provenance"), "{sums}");
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));
}
