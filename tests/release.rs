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
