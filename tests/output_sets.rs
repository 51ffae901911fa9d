//! Sets of outputs committed together or not at all: every command writing
//! more than one file (`iso embed -o`, `iso embed --remove`, `disk embed`,
//! `bundle`, `site-media --fat`, `sign`, `build --sign-key`, `man --out`,
//! `render`) is run with a folder (or, for `render`, a file) where one of
//! its later outputs goes, and must fail leaving the output folder exactly
//! as it was (no new bytes under any final name, no temporary file); run
//! again without it, its outputs verify (`sha256sum -c`, `verify DIR`,
//! `verify --key`); a re-run over them replaces the whole set, or (blocked
//! again) none of it. A run killed between two renames is caught by
//! `verify`, and `keys generate` never renames over what appeared at its
//! `--out`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use support::*;

const ISO: &str = "palette-edge-installer.iso";
const DISK: &str = "palette-edge-appliance.raw";

/// A golden build of the demo (golden ISO, raw and qcow2 disks, manifest,
/// provenance), made once for this file.
fn golden() -> &'static Path {
    static DIR: OnceLock<FixtureDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = FixtureDir::new("output-sets");
        let def = write_definition(
            dir.path(),
            "golden",
            &demo_base(),
            "iso:\n  timeout: 0\ndisk:\n  formats: [raw, qcow2]\n",
        );
        let out = dir.path().join("build");
        assert_ok(&edgeforge(&[
            "build",
            def.to_str().unwrap(),
            "--golden",
            "--out",
            out.to_str().unwrap(),
        ]));
        dir
    })
    .path()
}

fn build_dir() -> PathBuf {
    golden().join("build")
}

/// Every entry of `dir`: a file's bytes, or `None` for a folder.
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    entries(dir)
        .into_iter()
        .map(|name| {
            let p = dir.join(&name);
            let bytes = if p.is_dir() {
                None
            } else {
                Some(fs::read(&p).unwrap())
            };
            (name, bytes)
        })
        .collect()
}

/// Runs `run` with a folder at `dir/blocked` (standing in for the file
/// there, put back afterwards): the command fails as I/O naming it, and
/// `dir` is left byte for byte as it was, without temporary files.
#[track_caller]
fn assert_nothing_committed(dir: &Path, blocked: &str, run: impl FnOnce() -> Output) {
    fs::create_dir_all(dir).unwrap();
    let at = dir.join(blocked);
    let old = fs::read(&at).ok();
    let _ = fs::remove_file(&at);
    fs::create_dir(&at).unwrap();
    let before = snapshot(dir);
    let o = run();
    assert_fails(&o, 5, &[&at.display().to_string(), "is a folder"]);
    let after = snapshot(dir);
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .chain(before.keys().filter(|k| !after.contains_key(*k)))
        .collect();
    assert!(
        changed.is_empty(),
        "blocked at {blocked}, these changed: {changed:?}"
    );
    fs::remove_dir(&at).unwrap();
    if let Some(bytes) = old {
        fs::write(&at, bytes).unwrap();
    }
}

/// `sha256sum -c` of every `.sha256` in `dir` and of its `SHA256SUMS`,
/// and `verify DIR`.
#[track_caller]
fn assert_verifies(dir: &Path) {
    let mut sums = vec!["SHA256SUMS".to_string()];
    sums.extend(entries(dir).into_iter().filter(|e| e.ends_with(".sha256")));
    for s in &sums {
        run_tool("sha256sum", &["-c", "--strict", s], dir);
    }
    assert_ok(&edgeforge(&["verify", dir.to_str().unwrap()]));
}

fn user_data(dir: &Path, site: &str) -> PathBuf {
    let p = dir.join(format!("{site}.yaml"));
    fs::write(
        &p,
        format!("#cloud-config\nstylus:\n  site:\n    name: {site}\n"),
    )
    .unwrap();
    p
}

/// A command writing one artifact (`name` in `dir`) with its checksums:
/// blocked at its `.sha256` nothing appears; unblocked it verifies; run
/// again with other input while `SHA256SUMS` is blocked the first set stays;
/// unblocked, the second run replaces artifact, `.sha256` and `SHA256SUMS`.
#[track_caller]
fn assert_one_artifact_set(dir: &Path, name: &str, run: impl Fn(u32) -> Output) {
    assert_nothing_committed(dir, &format!("{name}.sha256"), || run(1));
    assert_eq!(entries(dir), Vec::<String>::new(), "nothing committed");
    assert_ok(&run(1));
    assert_eq!(
        entries(dir),
        ["SHA256SUMS", name, &format!("{name}.sha256")]
    );
    assert_verifies(dir);
    let first = fs::read(dir.join(name)).unwrap();

    assert_nothing_committed(dir, "SHA256SUMS", || run(2));
    assert_eq!(
        fs::read(dir.join(name)).unwrap(),
        first,
        "the old set stays"
    );
    assert_verifies(dir);
    assert_ok(&run(2));
    let second = fs::read(dir.join(name)).unwrap();
    assert_ne!(second, first, "the second run's input differs");
    assert_verifies(dir);
    assert_eq!(
        fs::read_to_string(dir.join(format!("{name}.sha256"))).unwrap(),
        format!("{}  {name}\n", sha256_hex(&second))
    );
}

#[test]
fn iso_embed_commits_the_iso_with_its_checksums_or_nothing() {
    let t = tempfile::tempdir().unwrap();
    let golden = build_dir().join(ISO);
    let out = t.path().join("sites");
    let run = |n: u32| {
        let ud = user_data(t.path(), &format!("site-{n}"));
        edgeforge(&[
            "iso",
            "embed",
            golden.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "-o",
            out.join("site.iso").to_str().unwrap(),
        ])
    };
    assert_one_artifact_set(&out, "site.iso", run);

    // --remove: the golden ISO back, with its checksums, or nothing.
    let restored = t.path().join("restored");
    let remove = || {
        edgeforge(&[
            "iso",
            "embed",
            out.join("site.iso").to_str().unwrap(),
            "--remove",
            "-o",
            restored.join("golden.iso").to_str().unwrap(),
        ])
    };
    assert_nothing_committed(&restored, "golden.iso.sha256", remove);
    assert_eq!(entries(&restored), Vec::<String>::new());
    assert_ok(&remove());
    assert_verifies(&restored);
    assert!(fs::read(restored.join("golden.iso")).unwrap() == fs::read(&golden).unwrap());
}

#[test]
fn an_iso_embed_killed_between_the_iso_and_its_checksum_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let golden = build_dir().join(ISO);
    let out = t.path().join("sites");
    let embed = |site: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_edgeforge"));
        c.args(["iso", "embed", golden.to_str().unwrap(), "--user-data"])
            .arg(user_data(t.path(), site))
            .arg("-o")
            .arg(out.join("site.iso"))
            .env("SOURCE_DATE_EPOCH", EPOCH);
        c
    };
    assert_ok(&embed("old").output().unwrap());
    // Over the old set, stopped before its second rename: the new ISO
    // named, its .sha256 and SHA256SUMS still the old ones.
    let mut child = embed("new")
        .env("EDGEFORGE_TEST_PAUSE_AT", "commit-1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("test pause at commit-1") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "edgeforge ended before its commit");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = Command::new("sha256sum")
        .args(["-c", "site.iso.sha256"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "the old checksum does not vouch for the new ISO"
    );
    let v = edgeforge(&["verify", out.to_str().unwrap()]);
    assert_fails(&v, 7, &["1 of 1 artifacts"]);
    assert!(stdout(&v).contains("site.iso: FAILED"), "{}", stdout(&v));
    // The next run into the folder removes what the killed one left.
    assert_ok(&embed("new").output().unwrap());
    assert!(entries(&out).iter().all(|e| !e.starts_with('.')));
    assert_verifies(&out);
}

#[test]
fn disk_embed_commits_the_disk_with_its_checksums_or_nothing() {
    let t = tempfile::tempdir().unwrap();
    let golden = build_dir().join(DISK);
    let out = t.path().join("sites");
    let run = |n: u32| {
        let ud = user_data(t.path(), &format!("site-{n}"));
        edgeforge(&[
            "disk",
            "embed",
            golden.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "-o",
            out.join("site.raw").to_str().unwrap(),
        ])
    };
    assert_one_artifact_set(&out, "site.raw", run);

    // A qcow2 golden disk goes through raw and qemu-img on the way: its
    // work folder and temporary file go too.
    let golden = build_dir().join("palette-edge-appliance.qcow2");
    let qcow2 = t.path().join("qcow2");
    let ud = user_data(t.path(), "site-3");
    let embed = || {
        edgeforge(&[
            "disk",
            "embed",
            golden.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "-o",
            qcow2.join("site.qcow2").to_str().unwrap(),
        ])
    };
    assert_nothing_committed(&qcow2, "site.qcow2.sha256", embed);
    assert_eq!(entries(&qcow2), Vec::<String>::new());
    assert_ok(&embed());
    assert_verifies(&qcow2);
    run_tool(
        "qemu-img",
        &["check", qcow2.join("site.qcow2").to_str().unwrap()],
        t.path(),
    );
}

#[test]
fn bundle_commits_the_bundle_with_its_checksums_or_nothing() {
    let t = tempfile::tempdir().unwrap();
    let image = build_dir().join("ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar");
    let out = t.path().join("bundles");
    let run = |n: u32| {
        let mut args = vec![
            "bundle".to_string(),
            format!("provider=oci-archive:{}", image.display()),
        ];
        if n == 2 {
            args.push(format!("base={}", demo_base().display()));
        }
        args.extend([
            "-o".into(),
            out.join("content.tar.zst").display().to_string(),
        ]);
        edgeforge(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_one_artifact_set(&out, "content.tar.zst", run);
    assert_ok(&edgeforge(&[
        "bundle",
        "verify",
        out.join("content.tar.zst").to_str().unwrap(),
    ]));
}

#[test]
fn site_media_commits_the_iso_and_fat_image_together_or_neither() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("media");
    let ud = user_data(t.path(), "usb");
    let run = || {
        edgeforge(&[
            "site-media",
            "--user-data",
            ud.to_str().unwrap(),
            "--fat",
            "-o",
            out.join("usb.iso").to_str().unwrap(),
        ])
    };
    // The FAT image's checksum is the set's fourth file.
    assert_nothing_committed(&out, "usb.img.sha256", run);
    assert_eq!(entries(&out), Vec::<String>::new());
    assert_ok(&run());
    assert_verifies(&out);
    assert_eq!(entries(&out).len(), 5, "{:?}", entries(&out));
}

/// A GnuPG home with a fresh ed25519 key; returns the exported secret key.
fn make_key(dir: &Path, name: &str) -> PathBuf {
    let home = dir.join(format!("{name}-gnupg"));
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let o = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args(["--batch", "--no-tty"])
            .args(args)
            .output()
            .expect("running gpg (Debian package gnupg)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let uid = format!("{name} <{name}@example.com>");
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        &uid,
        "ed25519",
        "sign",
        "never",
    ]);
    let secret = dir.join(format!("{name}.sec.asc"));
    fs::write(&secret, gpg(&["--armor", "--export-secret-keys", &uid])).unwrap();
    fs::write(
        dir.join(format!("{name}.pub.asc")),
        gpg(&["--armor", "--export", &uid]),
    )
    .unwrap();
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&home)
        .args(["--kill", "all"])
        .output();
    secret
}

#[test]
fn sign_names_all_its_signatures_together_or_none() {
    let t = tempfile::tempdir().unwrap();
    // The golden build's folder, its artifacts hard-linked.
    let dir = t.path().join("release");
    fs::create_dir(&dir).unwrap();
    for name in entries(&build_dir()) {
        fs::hard_link(build_dir().join(&name), dir.join(&name)).unwrap();
    }
    let first = make_key(t.path(), "first");
    let second = make_key(t.path(), "second");
    let sign = |key: &Path| {
        edgeforge(&[
            "sign",
            dir.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
    };
    let sigs = [
        "SHA256SUMS.gpg",
        "manifest.json.gpg",
        "provenance.intoto.dsse.json",
    ];
    // The manifest's signature is the second made, the envelope the third.
    assert_nothing_committed(&dir, sigs[1], || sign(&first));
    assert_nothing_committed(&dir, sigs[2], || sign(&first));
    assert!(sigs.iter().all(|s| !dir.join(s).exists()));
    assert_ok(&sign(&first));
    let public = t.path().join("first.pub.asc");
    assert_ok(&edgeforge(&[
        "verify",
        dir.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]));

    // Re-signed with another key while blocked: the first key's set stays.
    assert_nothing_committed(&dir, sigs[2], || sign(&second));
    assert_ok(&edgeforge(&[
        "verify",
        dir.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]));
    assert_ok(&sign(&second));
    let public = t.path().join("second.pub.asc");
    assert_ok(&edgeforge(&[
        "verify",
        dir.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]));
}

#[test]
fn build_names_its_signatures_with_the_set_or_nothing() {
    let t = tempfile::tempdir().unwrap();
    let key = make_key(t.path(), "builder");
    let public = t.path().join("builder.pub.asc");
    let def = write_definition(t.path(), "signed", &demo_base(), "");
    let out = t.path().join("build");
    let build = |timeout: &str| {
        edgeforge(&[
            "build",
            def.to_str().unwrap(),
            "--golden",
            "--set",
            &format!("iso.timeout={timeout}"),
            "--sign-key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let verify = || {
        assert_verifies(&out);
        assert_ok(&edgeforge(&[
            "verify",
            out.to_str().unwrap(),
            "--key",
            public.to_str().unwrap(),
        ]));
    };
    // The manifest's signature is made after SHA256SUMS's: no ISO, no sums.
    assert_nothing_committed(&out, "manifest.json.gpg", || build("0"));
    assert_eq!(entries(&out), Vec::<String>::new());
    assert_ok(&build("0"));
    verify();
    let first = fs::read(out.join(ISO)).unwrap();
    // Over the signed set, blocked at the provenance's envelope: it stays.
    assert_nothing_committed(&out, "provenance.intoto.dsse.json", || build("7"));
    assert_eq!(fs::read(out.join(ISO)).unwrap(), first);
    verify();
    assert_ok(&build("7"));
    assert_ne!(fs::read(out.join(ISO)).unwrap(), first);
    verify();
}

#[test]
fn render_names_every_variant_together_or_none() {
    let t = tempfile::tempdir().unwrap();
    let def = write_definition(t.path(), "render", &demo_base(), "");
    let out = t.path().join("rendered");
    let render = |registry: &str| {
        edgeforge(&[
            "render",
            def.to_str().unwrap(),
            "--set",
            "kubernetes.version=[1.29.9, 1.30.5]",
            "--set",
            &format!("registry={registry}"),
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let variants = [
        "ubuntu-k3s-1.29.9-v4.5.0-test",
        "ubuntu-k3s-1.30.5-v4.5.0-test",
    ];
    let registry_of = |v: &str| {
        let ctx: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join(v).join("context.json")).unwrap()).unwrap();
        ctx.to_string()
    };
    assert_ok(&render("old.example.com"));
    assert_eq!(entries(&out), variants);
    // A file where the second variant's folder goes: the first keeps the
    // old rendering, and no work folder is left.
    let blocked = out.join(variants[1]);
    fs::remove_dir_all(&blocked).unwrap();
    fs::write(&blocked, "in the way").unwrap();
    let o = render("new.example.com");
    assert_fails(&o, 5, &[&blocked.display().to_string(), "is not a folder"]);
    assert_eq!(entries(&out), variants, "no work folder left");
    assert!(registry_of(variants[0]).contains("old.example.com"));
    assert_eq!(fs::read_to_string(&blocked).unwrap(), "in the way");
    fs::remove_file(&blocked).unwrap();
    assert_ok(&render("new.example.com"));
    assert_eq!(entries(&out), variants);
    for v in variants {
        let ctx = registry_of(v);
        assert!(ctx.contains("new.example.com") && !ctx.contains("old.example.com"));
    }
}

#[test]
fn man_names_every_page_together_or_none() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man");
    let man = || edgeforge(&["man", "--out", dir.to_str().unwrap()]);
    // edgeforge.1 is made first, edgeforge-iso.1 later.
    assert_nothing_committed(&dir, "edgeforge-iso.1", man);
    assert_eq!(entries(&dir), Vec::<String>::new());
    assert_ok(&man());
    let pages = entries(&dir);
    assert!(
        pages.len() > 20 && pages.iter().all(|p| p.ends_with(".1")),
        "{pages:?}"
    );
    let main = fs::read(dir.join("edgeforge.1")).unwrap();
    // Over older pages: blocked, not one is replaced; then all are.
    fs::write(dir.join("edgeforge.1"), "older page\n").unwrap();
    assert_nothing_committed(&dir, "edgeforge-iso.1", man);
    assert_eq!(fs::read(dir.join("edgeforge.1")).unwrap(), b"older page\n");
    assert_ok(&man());
    assert_eq!(fs::read(dir.join("edgeforge.1")).unwrap(), main);
    assert_eq!(entries(&dir), pages);
}

/// `keys generate` names its whole key set with one rename that never
/// replaces: a folder that appears at `--out` while the keys are made (here
/// an empty one, which a plain rename would silently replace) is left as it
/// is, the run fails, and its staging folder with the private keys goes.
#[test]
fn keys_generate_never_replaces_what_appeared_at_its_out() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("keys");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeforge"))
        .args(["keys", "generate", "site", "--out"])
        .arg(&out)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let staging = || {
        entries(t.path())
            .iter()
            .any(|e| e.starts_with(".edgeforge-keys-"))
    };
    let started = std::time::Instant::now();
    while !staging() {
        assert!(
            started.elapsed().as_secs() < 60 && child.try_wait().unwrap().is_none(),
            "no staging folder appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    fs::create_dir(&out).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_fails(&o, 2, &["already exists; keys are never overwritten"]);
    assert_eq!(entries(&out), Vec::<String>::new(), "left as it was");
    assert_eq!(entries(t.path()), ["keys"], "the staging folder is removed");
}
