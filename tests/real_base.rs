//! A real distribution through edgeforge (issue #9): the Debian base that
//! scripts/make-debian-base.sh makes from Debian's packages (usr-merged,
//! systemd, Debian's kernel, a dracut live initramfs, setuid sudo, ping with
//! a file capability, two layers with whiteouts and an opaque folder) goes
//! into a provider image with a component under the usr-merged /lib, then
//! into an ISO whose root filesystem equals what `umoci unpack` gives for the
//! provider image, and which boots through its own GRUB menu and dracut's
//! dmsquash-live into the live system, which reports the user-data it read
//! from the medium. A per-site ISO made by `iso embed` from a golden one
//! boots the same way with its own user-data.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::reference::{require_root, umoci_unpack, unsquash};
use support::tree::{assert_same, snapshot};
use support::*;

const ARCHIVE: &str = "debian-k3s-1.30.5-v4.5.0-real.oci.tar";
const ISO: &str = "palette-edge-installer.iso";
const USER_DATA: &str = "images/user-data/demo.yaml";
/// What the live system must say besides the user-data: its root is the
/// overlay over the squashfs, read from the medium labelled COS_LIVE.
const LIVE: &str = "os=debian-12 root=overlay rootfsbase=squashfs .*label=COS_LIVE";

struct Fixture {
    dir: FixtureDir,
    definition: PathBuf,
    out: PathBuf,
    /// What the build logged.
    log: String,
}

/// The Debian base (made once per machine, cached outside the checkout),
/// a definition on it and its provider image and ISO, shared by the tests.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let base = debian_base();
        let dir = FixtureDir::new("real-base");
        let firmware = dir.path().join("firmware");
        fs::create_dir_all(firmware.join("edgeforge")).unwrap();
        fs::write(firmware.join("edgeforge/test.bin"), b"firmware blob\n").unwrap();
        let definition = write_definition(
            dir.path(),
            "real",
            &base,
            &format!(
                "components:\n  - source: {}\n    destination: /lib/firmware\noverlays:\n  rootfs: [{}]\n  iso: [{}]\n",
                firmware.display(),
                repo_root().join("overlays/rootfs").display(),
                repo_root().join("overlays/iso").display(),
            ),
        );
        // The OS is Debian 12, not write_definition's Ubuntu.
        let text = fs::read_to_string(&definition).unwrap();
        fs::write(
            &definition,
            text.replace("distribution: ubuntu", "distribution: debian")
                .replace("version: \"22.04\"", "version: \"12\"")
                .replace("repository: ubuntu", "repository: debian")
                .replace("custom_tag: test", "custom_tag: real"),
        )
        .unwrap();
        let out = dir.path().join("build");
        // A cache of its own: what the build logs about the squashfs is
        // logged only when it is made.
        let cache = dir.path().join("cache");
        let o = edgeforge_env(
            &[
                "build",
                definition.to_str().unwrap(),
                "--user-data",
                USER_DATA,
                "--out",
                out.to_str().unwrap(),
            ],
            &[("EDGEFORGE_CACHE_DIR", cache.to_str().unwrap())],
        );
        assert_ok(&o);
        Fixture {
            dir,
            definition,
            out,
            log: stderr(&o),
        }
    })
}

/// Boots `iso` in `modes` through its default menu entry and passes only
/// when the live system reports `user_data`'s sha256 and a live root.
/// Returns boot-test's report (it names each mode's kernel command line).
#[track_caller]
fn assert_boots(iso: &Path, user_data: &[u8], modes: &[&str]) -> String {
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/boot-test.sh"))
        .arg(iso)
        .arg(sha256_hex(user_data))
        .args(modes)
        .env("BOOT_TEST_MEMORY", "2048")
        .env("BOOT_TEST_TIMEOUT", "400")
        .env("BOOT_TEST_EXPECT", LIVE)
        .output()
        .expect("running scripts/boot-test.sh");
    let report = format!("{}{}", stdout(&o), stderr(&o));
    println!("{report}");
    assert!(o.status.success(), "{report}");
    report
}

#[test]
fn debian_iso_boots_in_all_three_modes() {
    let f = fixture();
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    assert_boots(&f.out.join(ISO), &user_data, &["bios", "uefi", "usb"]);
}

/// The menu's "boot local node from live CD" and debug entries, chosen as
/// the default from the definition, boot the real base too (issue #17).
#[test]
fn debian_live_and_debug_entries_boot_when_selected() {
    let f = fixture();
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    for (entry, mode, wanted) in [
        ("live", "bios", "kairos.boot_live_mode"),
        ("debug", "uefi", "rd.immucore.debug"),
    ] {
        let out = f.dir.path().join(format!("menu-{entry}"));
        assert_ok(&edgeforge(&[
            "iso",
            f.definition.to_str().unwrap(),
            "--set",
            &format!("iso.menu.default={entry}"),
            "--provider-image",
            f.out.join(ARCHIVE).to_str().unwrap(),
            "--user-data",
            USER_DATA,
            "--out",
            out.to_str().unwrap(),
        ]));
        let report = assert_boots(&out.join(ISO), &user_data, &[mode]);
        let cmdline = report
            .lines()
            .find_map(|l| l.split_once("kernel command line: ").map(|(_, c)| c))
            .unwrap_or_default();
        assert!(
            cmdline.split_whitespace().any(|a| a == wanted),
            "the {entry} entry booted with `{cmdline}`, which lacks {wanted}"
        );
    }
}

#[test]
fn debian_per_site_iso_from_a_golden_one_boots_in_all_three_modes() {
    let f = fixture();
    let golden = f.dir.path().join("golden");
    assert_ok(&edgeforge(&[
        "iso",
        f.definition.to_str().unwrap(),
        "--golden",
        "--provider-image",
        f.out.join(ARCHIVE).to_str().unwrap(),
        "--out",
        golden.to_str().unwrap(),
    ]));
    let site = f.dir.path().join("site.yaml");
    let user_data = b"#cloud-config\nstylus:\n  site:\n    name: real-base-site\n    paletteEndpoint: api.spectrocloud.com\n";
    fs::write(&site, user_data).unwrap();
    let site_iso = f.dir.path().join("site.iso");
    assert_ok(&edgeforge(&[
        "iso",
        "embed",
        golden.join(ISO).to_str().unwrap(),
        "--user-data",
        site.to_str().unwrap(),
        "-o",
        site_iso.to_str().unwrap(),
    ]));
    assert_boots(&site_iso, user_data, &["bios", "uefi", "usb"]);
}

/// A site user-data medium (issue #16) attached as a second drive: the live
/// system reports the installer's user-data and the medium's, which it found
/// by its label (`cidata` on the ISO, `CIDATA` on the FAT image of `--fat`).
#[test]
fn debian_iso_reports_a_site_user_data_medium() {
    let f = fixture();
    let site = f.dir.path().join("site-override.yaml");
    let site_data = b"#cloud-config\nstylus:\n  site:\n    name: real-base-site-medium\n    tags:\n      shelf: \"3\"\n";
    fs::write(&site, site_data).unwrap();
    let medium = f.dir.path().join("media/site-user-data.iso");
    assert_ok(&edgeforge(&[
        "site-media",
        "--user-data",
        site.to_str().unwrap(),
        "--fat",
        "-o",
        medium.to_str().unwrap(),
    ]));
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    // The ISO as a second CD-ROM (BIOS), the FAT image as a second disk (UEFI).
    for (drive, mode) in [
        (medium.clone(), "bios"),
        (medium.with_extension("img"), "uefi"),
    ] {
        let o = Command::new("bash")
            .arg(repo_root().join("scripts/boot-test.sh"))
            .arg(f.out.join(ISO))
            .arg(sha256_hex(&user_data))
            .arg(mode)
            .env("BOOT_TEST_MEMORY", "2048")
            .env("BOOT_TEST_TIMEOUT", "400")
            .env("BOOT_TEST_DRIVE", &drive)
            .env(
                "BOOT_TEST_EXPECT",
                format!("{LIVE}.* cidata={}", sha256_hex(site_data)),
            )
            .output()
            .expect("running scripts/boot-test.sh");
        let report = format!("{}{}", stdout(&o), stderr(&o));
        println!("{report}");
        assert!(o.status.success(), "{}: {report}", drive.display());
    }
}

/// The ISO's root filesystem is the provider image's, as umoci unpacks it:
/// every file of the Debian base with its mode, owner, xattrs and mtime.
#[test]
fn debian_iso_rootfs_matches_umoci_unpack() {
    require_root();
    let f = fixture();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    fs::create_dir(&layout).unwrap();
    run_tool(
        "tar",
        &["-xf", f.out.join(ARCHIVE).to_str().unwrap()],
        &layout,
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap()
        .to_string();
    let reference = snapshot(&umoci_unpack(&layout, &tag, &t.path().join("bundle")));
    assert!(
        reference
            .node("var/log/journal")
            .xattrs
            .keys()
            .any(|k| k.starts_with(b"system.posix_acl")),
        "the base carries the ACL the exclusion below is about"
    );
    let squashfs = t.path().join("rootfs.squashfs");
    iso_extract(&f.out.join(ISO), "/rootfs.squashfs", &squashfs);
    let extracted = t.path().join("squashfs-root");
    unsquash(&squashfs, &extracted);
    let mut iso_tree = snapshot(&extracted);
    let mut reference = reference;

    // Squashfs stores user., trusted. and security. xattrs only: systemd's
    // POSIX ACLs on /var/log/journal cannot be in it (systemd-tmpfiles sets
    // them again at boot). The build says so, naming the folder; apart from
    // that, the trees must be equal.
    assert!(
        f.log.contains("rootfs.squashfs lacks them on")
            && f.log.contains("/var/log/journal (system.posix_acl_access"),
        "the build names what squashfs cannot store:\n{}",
        f.log
    );
    for tree in [&mut iso_tree, &mut reference] {
        for node in tree.nodes.values_mut() {
            node.xattrs.retain(|name, _| !name.starts_with(b"system."));
        }
    }

    // What a real base has that the synthetic fixtures only imitate.
    let sudo = iso_tree.node("usr/bin/sudo");
    assert_eq!(sudo.mode, 0o4755, "sudo keeps its setuid bit");
    let ping = iso_tree.node("usr/bin/ping");
    assert!(
        ping.xattrs.contains_key(b"security.capability".as_slice()),
        "ping keeps its file capability: {:?}",
        ping.xattrs.keys()
    );
    assert_eq!(
        iso_tree.node("lib").kind,
        support::tree::Kind::Symlink(b"usr/lib".to_vec()),
        "the usr-merged /lib stays a symlink"
    );
    assert!(iso_tree
        .get("usr/lib/firmware/edgeforge/test.bin")
        .is_some());
    assert_eq!(iso_tree.node("tmp").mode, 0o1777);
    assert_eq!(iso_tree.node("root").mode, 0o700);

    assert_same("ISO rootfs.squashfs", &iso_tree, "umoci unpack", &reference);
}
