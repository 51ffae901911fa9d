//! Fidelity (issue #9): the root filesystem edgeforge flattens, and the one
//! the ISO's `rootfs.squashfs` holds, equal what `umoci unpack` (as root)
//! gives for the same image in every respect a root filesystem has: type,
//! mode with setuid/setgid/sticky, owner, size and content, symlink target,
//! hard-link identity, xattrs (file capabilities), fifos, devices and mtimes;
//! components and overlays land where a usr-merged base's symlinks point and
//! keep existing parents' modes; the umask of the checkout changes no byte.
//!
//! The `harness_*` tests check the harness itself: umoci's reference is
//! repeatable, the diff sees each kind of difference, and an mksquashfs /
//! unsquashfs round trip of umoci's tree compares equal to it.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::meta_tar::{meta_layout, MetaEntry as E};
use support::reference::{require_root, squashfs_listing, umoci_unpack, unsquash};
use support::tree::{self, assert_same, snapshot, Kind, Snapshot};
use support::*;

const TAG: &str = "fidelity";
const ARCHIVE: &str = "ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar";
const ISO: &str = "palette-edge-installer.iso";

/// An mtime after SOURCE_DATE_EPOCH (support::EPOCH): an image file keeps it.
const AFTER_EPOCH: u64 = 1_750_000_000;

/// A v2 `security.capability` value granting cap_net_raw (permitted and
/// effective), as `setcap cap_net_raw+ep` writes it.
fn cap_net_raw() -> Vec<u8> {
    let mut v = vec![];
    v.extend(0x0200_0001u32.to_le_bytes()); // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    v.extend((1u32 << 13).to_le_bytes()); // permitted, low word: CAP_NET_RAW (13)
    v.extend(0u32.to_le_bytes()); // inheritable, low word
    v.extend(0u32.to_le_bytes()); // permitted, high word
    v.extend(0u32.to_le_bytes()); // inheritable, high word
    v
}

/// Distinct, non-epoch mtimes, one per call.
struct Clock(u64);

impl Clock {
    fn next(&mut self) -> u64 {
        self.0 += 3_607;
        self.0
    }
}

/// The base layer: a usr-merged root with setuid/setgid/sticky modes, owners
/// other than root, file capabilities and user xattrs, a fifo, a char
/// device, a hard link across directories, a kernel and initrd in /boot,
/// and the lower content the second layer's whiteouts hide.
fn base_layer(c: &mut Clock) -> Vec<E> {
    let t = c.next();
    let tool_mtime = c.next();
    vec![
        E::dir("./", 0o755, t),
        E::symlink("bin", "usr/bin", c.next()),
        E::dir("boot/", 0o755, c.next()),
        E::symlink("boot/initrd", "initrd.img-6.1.0-test", c.next()),
        E::file(
            "boot/initrd.img-6.1.0-test",
            0o644,
            c.next(),
            b"initrd bytes\n",
        ),
        E::symlink("boot/vmlinuz", "vmlinuz-6.1.0-test", c.next()),
        E::file(
            "boot/vmlinuz-6.1.0-test",
            0o644,
            c.next(),
            b"kernel bytes\n",
        ),
        E::dir("dev/", 0o755, c.next()),
        E::char_device("dev/null", (1, 3), 0o666, c.next()),
        E::dir("etc/", 0o755, c.next()),
        E::file("etc/group", 0o644, c.next(), b"root:x:0:\ntty:x:42:\n"),
        E::file("etc/hostname", 0o644, c.next(), b"base\n"),
        E::file(
            "etc/passwd",
            0o644,
            c.next(),
            b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        ),
        E::file(
            "etc/shadow",
            0o640,
            c.next(),
            b"root:*:19000:0:99999:7:::\n",
        )
        .owner(0, 42),
        E::file("etc/xattr-replaced", 0o644, c.next(), b"lower\n").xattr("user.test", b"lower"),
        E::dir("home/", 0o755, c.next()),
        E::dir("home/user/", 0o750, c.next()).owner(1000, 1000),
        E::file("home/user/notes", 0o600, c.next(), b"mine\n").owner(1000, 1000),
        E::symlink("lib", "usr/lib", c.next()),
        // Targets too long for a tar header, absolute and climbing: they
        // must come out as they are (mksquashfs strips a PAX linkpath's
        // leading `/` and `../`).
        E::symlink(
            "long-absolute",
            &format!("/usr/lib/{}", "a".repeat(120)),
            c.next(),
        ),
        E::symlink(
            "long-relative",
            &format!("../../usr/{}", "r".repeat(120)),
            c.next(),
        ),
        E::dir("opt/", 0o755, c.next()),
        E::dir("opt/after/", 0o755, c.next()),
        E::file("opt/after/lower-a", 0o644, c.next(), b"lower a\n"),
        E::dir("opt/after/sub/", 0o755, c.next()),
        E::file("opt/after/sub/lower-b", 0o644, c.next(), b"lower b\n"),
        E::dir("opt/before/", 0o755, c.next()),
        E::file("opt/before/lower-a", 0o644, c.next(), b"lower a\n"),
        E::dir("opt/before/sub/", 0o755, c.next()),
        E::file("opt/before/sub/lower-b", 0o644, c.next(), b"lower b\n"),
        E::dir("root/", 0o700, c.next()),
        E::file("root/.profile", 0o644, c.next(), b"PS1='# '\n"),
        E::dir("run/", 0o755, c.next()),
        E::fifo("run/initctl", 0o600, c.next()),
        E::symlink("sbin", "usr/sbin", c.next()),
        E::dir("srv/", 0o755, c.next()),
        E::file("srv/gone", 0o644, c.next(), b"whited out\n"),
        E::dir("srv/gonedir/", 0o755, c.next()),
        E::file("srv/gonedir/file", 0o644, c.next(), b"whited out too\n"),
        E::file("srv/kept", 0o644, c.next(), b"kept\n"),
        E::dir("tmp/", 0o1777, c.next()),
        E::dir("usr/", 0o755, c.next()),
        E::dir("usr/bin/", 0o755, c.next()),
        E::file("usr/bin/ping", 0o755, c.next(), b"#!/bin/sh\necho ping\n")
            .xattr("security.capability", &cap_net_raw())
            .xattr("user.test", b"ping"),
        E::file("usr/bin/sudo", 0o4755, c.next(), b"#!/bin/sh\necho sudo\n"),
        E::file("usr/bin/tool", 0o755, tool_mtime, b"#!/bin/sh\necho tool\n"),
        E::file("usr/bin/wall", 0o2755, c.next(), b"#!/bin/sh\necho wall\n").owner(0, 42),
        E::dir("usr/lib/", 0o755, c.next()),
        E::dir("usr/lib/modules/", 0o755, c.next()),
        E::dir("usr/lib/modules/6.1.0-test/", 0o755, c.next()),
        E::file(
            "usr/lib/modules/6.1.0-test/modules.dep",
            0o644,
            c.next(),
            b"",
        ),
        E::dir("usr/sbin/", 0o755, c.next()),
        E::hardlink("usr/sbin/tool-link", "usr/bin/tool", 0o755, tool_mtime),
        E::dir("var/", 0o755, c.next()),
        E::dir("var/lib/", 0o755, c.next()),
        E::dir("var/lib/dir-xattr/", 0o755, c.next()).xattr("user.test", b"dir"),
        E::dir("var/mail/", 0o2775, c.next()).owner(0, 8),
        E::dir("var/tmp/", 0o1777, c.next()),
    ]
}

/// The second layer: changed and new files (one newer than the epoch), a
/// file losing its xattr, a hard link across directories, whiteouts, and
/// opaque directories with the marker before (`opt/before`) and after
/// (`opt/after`) the layer's own entries in them.
fn upper_layer(c: &mut Clock) -> Vec<E> {
    let data_mtime = c.next();
    vec![
        E::file("var/lib/data", 0o640, data_mtime, b"shared inode\n").owner(0, 42),
        E::dir("etc/", 0o755, c.next()),
        E::hardlink("etc/data-link", "var/lib/data", 0o640, data_mtime).owner(0, 42),
        E::file("etc/hostname", 0o644, c.next(), b"upper\n"),
        E::file("etc/newer", 0o644, AFTER_EPOCH, b"newer than the epoch\n"),
        E::file("etc/xattr-replaced", 0o644, c.next(), b"upper, no xattrs\n"),
        E::dir("opt/before/", 0o755, c.next()),
        E::opaque("opt/before", c.next()),
        E::file("opt/before/new", 0o644, c.next(), b"upper\n"),
        E::dir("opt/before/sub/", 0o755, c.next()),
        E::file("opt/before/sub/upper", 0o644, c.next(), b"upper\n"),
        E::dir("opt/after/", 0o755, c.next()),
        E::file("opt/after/new", 0o644, c.next(), b"upper\n"),
        E::dir("opt/after/sub/", 0o755, c.next()),
        E::file("opt/after/sub/upper", 0o644, c.next(), b"upper\n"),
        E::opaque("opt/after", c.next()),
        E::dir("srv/", 0o755, c.next()),
        E::whiteout("srv/gone", c.next()),
        E::whiteout("srv/gonedir", c.next()),
    ]
}

/// The fixture's layers, bottom first.
fn fixture_layers() -> Vec<Vec<E>> {
    let mut c = Clock(1_600_000_000);
    let base = base_layer(&mut c);
    let upper = upper_layer(&mut c);
    vec![base, upper]
}

/// Writes the fixture image as an OCI layout tagged [`TAG`].
fn fixture(dir: &Path) {
    meta_layout(dir, TAG, &fixture_layers());
}

/// The mtime the fixture's topmost entry for `path` records.
fn mtime_of(path: &str) -> u64 {
    fixture_layers()
        .iter()
        .flatten()
        .rfind(|e| e.path.trim_end_matches('/') == path)
        .unwrap_or_else(|| panic!("{path} is not in the fixture"))
        .mtime
}

/// The one value umoci does not take from the image: `opt/after/sub`, a
/// directory of the upper layer whose lower content the opaque marker coming
/// after it deletes, keeps the time of the unpack (umoci restores a parent's
/// mtime after writing an entry, not after an opaque whiteout empties a
/// subdirectory). The image records its mtime, so that is the reference.
const UMOCI_STAMPS_NOW: &str = "opt/after/sub";

/// umoci's tree of `layout:tag` (unpacked into `bundle`), with the
/// [`UMOCI_STAMPS_NOW`] mtime set to the one the layer records.
fn umoci_reference(layout: &Path, tag: &str, bundle: &Path) -> Snapshot {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 1;
    let mut s = snapshot(&umoci_unpack(layout, tag, bundle));
    let recorded = mtime_of(UMOCI_STAMPS_NOW) as i64;
    let node = s
        .nodes
        .get_mut(UMOCI_STAMPS_NOW.as_bytes())
        .expect("umoci unpacked the opaque directory's subdirectory");
    assert!(
        node.mtime == recorded || node.mtime >= started,
        "{UMOCI_STAMPS_NOW}: umoci gave mtime {}, neither the recorded {recorded} nor the time of the unpack",
        node.mtime
    );
    node.mtime = recorded;
    s
}

/// Facts about the fixture's root filesystem that hold whoever unpacks it:
/// checked on umoci's tree, so the reference is known to mean what the
/// fixture says.
fn check_reference(s: &Snapshot) {
    let mode = |p: &str| s.node(p).mode;
    assert_eq!(mode("usr/bin/sudo"), 0o4755);
    assert_eq!(mode("usr/bin/wall"), 0o2755);
    assert_eq!(
        (s.node("usr/bin/wall").uid, s.node("usr/bin/wall").gid),
        (0, 42)
    );
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("var/tmp"), 0o1777);
    assert_eq!(mode("var/mail"), 0o2775);
    assert_eq!(mode("root"), 0o700);
    assert_eq!(s.node("lib").kind, Kind::Symlink(b"usr/lib".to_vec()));
    assert_eq!(
        s.node("usr/bin/ping")
            .xattrs
            .get(&b"security.capability"[..]),
        Some(&cap_net_raw())
    );
    assert_eq!(
        s.node("var/lib/dir-xattr").xattrs.get(&b"user.test"[..]),
        Some(&b"dir".to_vec())
    );
    assert!(s.node("etc/xattr-replaced").xattrs.is_empty());
    assert_eq!(s.node("run/initctl").kind, Kind::Fifo);
    assert_eq!(s.node("dev/null").kind, Kind::Char(1, 3));
    assert_eq!(s.node("etc/newer").mtime, AFTER_EPOCH as i64);
    let group = |a: &str, b: &str| {
        [a, b]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(s
        .links
        .contains(&group("usr/bin/tool", "usr/sbin/tool-link")));
    assert!(s.links.contains(&group("etc/data-link", "var/lib/data")));
    for gone in [
        "srv/gone",
        "srv/gonedir",
        "opt/before/lower-a",
        "opt/before/sub/lower-b",
        "opt/after/lower-a",
        "opt/after/sub/lower-b",
    ] {
        assert!(s.get(gone).is_none(), "{gone} is whited out");
    }
    for kept in [
        "srv/kept",
        "opt/before/new",
        "opt/before/sub/upper",
        "opt/after/new",
        "opt/after/sub/upper",
    ] {
        s.node(kept);
    }
    assert!(
        !s.nodes.keys().any(|p| p.windows(4).any(|w| w == b".wh.")),
        "whiteout markers are not content"
    );
}

/// `date -u` of an mtime, as `unsquashfs -lln` prints it under TZ=UTC.
fn utc_minutes(mtime: u64) -> String {
    run_tool(
        "date",
        &["-u", "-d", &format!("@{mtime}"), "+%Y-%m-%d %H:%M"],
        Path::new("/"),
    )
    .trim()
    .to_string()
}

#[test]
fn unpack_matches_umoci() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    fixture(&layout);
    let reference = umoci_reference(&layout, TAG, &t.path().join("bundle"));
    check_reference(&reference);

    let out = t.path().join("unpacked");
    assert_ok(&edgeforge(&[
        "unpack",
        &format!("oci:{}", layout.display()),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_same(
        "edgeforge unpack",
        &snapshot(&out),
        "umoci unpack",
        &reference,
    );
}

#[test]
fn iso_rootfs_matches_umoci() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    fixture(&base);

    // A component under the usr-merged base's /lib symlink, and an overlay
    // with content under /etc, /root (0700) and /tmp (1777).
    let comp = t.path().join("component");
    fs::create_dir_all(comp.join("sub")).unwrap();
    fs::write(comp.join("fw.bin"), b"firmware\n").unwrap();
    fs::write(comp.join("sub/blob"), b"blob\n").unwrap();
    let ov = t.path().join("overlay");
    for d in ["etc", "root/.config", "tmp"] {
        fs::create_dir_all(ov.join(d)).unwrap();
    }
    fs::write(ov.join("etc/fidelity.conf"), b"overlay=1\n").unwrap();
    fs::write(ov.join("root/.config/edge.conf"), b"root=1\n").unwrap();
    fs::write(ov.join("tmp/.edge-keep"), b"").unwrap();
    for dir in [&comp, &ov] {
        for e in walk_all(dir).iter().chain([dir]) {
            let mode = if e.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(e, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let def = write_definition(
        t.path(),
        "fidelity",
        &base,
        &format!(
            "components:\n  - source: {}\n    destination: /lib/firmware/x\noverlays:\n  rootfs: [{}]\n",
            comp.display(),
            ov.display()
        ),
    );
    let out = t.path().join("build");
    let def_s = def.to_str().unwrap();
    let out_s = out.to_str().unwrap();
    // A cache of its own: nothing made by an earlier version of the code
    // (a cached lower tree or squashfs) stands in for a fresh one.
    let cache = t.path().join("cache");
    let env = [("EDGEFORGE_CACHE_DIR", cache.to_str().unwrap())];
    assert_ok(&edgeforge_env(
        &["provider-image", def_s, "--out", out_s],
        &env,
    ));
    assert_ok(&edgeforge_env(
        &[
            "iso",
            def_s,
            "--user-data",
            "images/user-data/demo.yaml",
            "--out",
            out_s,
        ],
        &env,
    ));

    // umoci's view of the provider image.
    let layout = t.path().join("provider-layout");
    fs::create_dir(&layout).unwrap();
    run_tool(
        "tar",
        &["-xf", out.join(ARCHIVE).to_str().unwrap()],
        &layout,
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("the provider image is tagged in index.json")
        .to_string();
    let reference = umoci_reference(&layout, &tag, &t.path().join("bundle"));

    // The ISO's root filesystem.
    let squashfs = t.path().join("rootfs.squashfs");
    iso_extract(&out.join(ISO), "/rootfs.squashfs", &squashfs);
    let squash_dir = t.path().join("squashfs-root");
    unsquash(&squashfs, &squash_dir);
    let iso_tree = snapshot(&squash_dir);

    let mut problems = tree::diff("ISO rootfs.squashfs", &iso_tree, "umoci unpack", &reference);

    // Spot checks on the squashfs listing itself, independent of extraction.
    let listing = squashfs_listing(&squashfs);
    let mut spot = |path: &str, mode: &str, owner: &str, rest_has: &str| match listing.get(path) {
        None => problems.push(format!("unsquashfs -lln: no {path}")),
        Some((m, o, rest)) => {
            if m != mode || o != owner || !rest.contains(rest_has) {
                problems.push(format!(
                    "unsquashfs -lln: {path}: {m} {o} {rest}, expected {mode} {owner} ... {rest_has}"
                ))
            }
        }
    };
    spot(
        "usr/bin/sudo",
        "-rwsr-xr-x",
        "0/0",
        &utc_minutes(mtime_of("usr/bin/sudo")),
    );
    spot("usr/bin/wall", "-rwxr-sr-x", "0/42", "");
    // mksquashfs -tar gives the root the time of the build; edgeforge sets it.
    spot(".", "drwxr-xr-x", "0/0", &utc_minutes(mtime_of(".")));
    spot("lib", "lrwxrwxrwx", "0/0", "-> usr/lib");
    spot("tmp", "drwxrwxrwt", "0/0", "");
    spot("root", "drwx------", "0/0", "");
    spot("run/initctl", "prw-------", "0/0", "");
    spot("etc/newer", "-rw-r--r--", "0/0", &utc_minutes(AFTER_EPOCH));
    spot("usr/lib/firmware/x/fw.bin", "-rw-r--r--", "0/0", "");

    // The usr-merged /lib stays a symlink and the component lands in
    // /usr/lib/firmware/x; /tmp and /root keep their modes: in the ISO and in
    // the provider image as a consumer (umoci) sees it.
    for (name, s) in [
        ("ISO rootfs.squashfs", &iso_tree),
        ("umoci unpack", &reference),
    ] {
        let mut expect = |what: String, ok: bool| {
            if !ok {
                problems.push(format!("{name}: {what}"));
            }
        };
        let lib = s.get("lib").map(|n| n.kind.clone());
        expect(
            format!("lib is {lib:?}, not a symlink to usr/lib"),
            lib == Some(Kind::Symlink(b"usr/lib".to_vec())),
        );
        for (p, content) in [("fw.bin", "firmware\n"), ("sub/blob", "blob\n")] {
            let path = format!("usr/lib/firmware/x/{p}");
            let kind = s.get(&path).map(|n| n.kind.clone());
            expect(
                format!("{path} is {kind:?}, not the component's file"),
                kind == Some(Kind::File {
                    size: content.len() as u64,
                    sha256: sha256_hex(content.as_bytes()),
                }),
            );
        }
        for (p, mode) in [("tmp", 0o1777), ("root", 0o700)] {
            let m = s.get(p).map(|n| n.mode);
            expect(
                format!("{p} has mode {:o}, not {mode:o}", m.unwrap_or(0)),
                m == Some(mode),
            );
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) (ISO first, umoci second):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Every path under `dir` (not `dir` itself).
fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_all(&p));
        }
        out.push(p);
    }
    out
}

/// Runs `argv` under `umask` in `dir`.
fn under_umask(
    umask: &str,
    dir: &Path,
    argv: &[&str],
    env: &[(&str, &Path)],
) -> std::process::Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .args(argv)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", EPOCH);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("sh")
}

/// One line per layer entry of an oci-archive: `blob: mode uid:gid mtime
/// size path [-> link]`, to say what differs when two archives do.
fn layer_entries(archive: &Path) -> Vec<String> {
    let mut lines = vec![];
    let mut outer = tar::Archive::new(fs::File::open(archive).unwrap());
    for blob in outer.entries().unwrap() {
        let mut blob = blob.unwrap();
        let name = blob.path().unwrap().display().to_string();
        let mut bytes = vec![];
        std::io::Read::read_to_end(&mut blob, &mut bytes).unwrap();
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        let short = name.rsplit('/').next().unwrap()[..12].to_string();
        let mut layer = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        for e in layer.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            lines.push(format!(
                "layer {short}: 0{:o} {}:{} {} {} {}{}",
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                h.size().unwrap(),
                e.path().unwrap().display(),
                e.link_name()
                    .unwrap()
                    .map(|l| format!(" -> {}", l.display()))
                    .unwrap_or_default()
            ));
        }
    }
    lines
}

/// Lines in `a` and not in `b`, prefixed.
fn only_in(prefix: &str, a: &[String], b: &[String]) -> Vec<String> {
    let b: std::collections::BTreeSet<&String> = b.iter().collect();
    a.iter()
        .filter(|l| !b.contains(l))
        .map(|l| format!("{prefix}{l}"))
        .collect()
}

#[test]
fn umask_does_not_change_artifacts() {
    let t = tempfile::tempdir().unwrap();
    let demo = demo_base();
    let mut builds = vec![];
    for umask in ["002", "077"] {
        let clone = t.path().join(format!("clone-{umask}"));
        let o = under_umask(
            umask,
            t.path(),
            &[
                "git",
                "clone",
                "-q",
                "--no-hardlinks",
                repo_root().to_str().unwrap(),
                clone.to_str().unwrap(),
            ],
            &[],
        );
        assert!(o.status.success(), "git clone: {}", stderr(&o));
        // The same base image in both (an input, made once).
        fs::create_dir_all(clone.join(".cache")).unwrap();
        copy_tree(&demo, &clone.join(".cache/demo-base"));
        let o = under_umask(
            umask,
            &clone,
            &[
                env!("CARGO_BIN_EXE_edgeforge"),
                "build",
                "images/demo-busybox.yaml",
                "--user-data",
                "images/user-data/demo.yaml",
                "--out",
                "build",
            ],
            &[(
                "EDGEFORGE_CACHE_DIR",
                &t.path().join(format!("cache-{umask}")),
            )],
        );
        assert_ok(&o);
        builds.push(clone.join("build"));
    }
    let (a, b) = (&builds[0], &builds[1]);
    assert_eq!(entries(a), entries(b), "the same artifacts");
    assert!(entries(a).contains(&"SHA256SUMS".to_string()));

    let mut problems = vec![];
    for name in entries(a) {
        if fs::read(a.join(&name)).unwrap() == fs::read(b.join(&name)).unwrap() {
            continue;
        }
        problems.push(format!("{name} differs"));
        if name.ends_with(".oci.tar") {
            let (la, lb) = (layer_entries(&a.join(&name)), layer_entries(&b.join(&name)));
            problems.extend(only_in("  umask 002: ", &la, &lb));
            problems.extend(only_in("  umask 077: ", &lb, &la));
        }
        if name.ends_with(".json") || name.ends_with("SHA256SUMS") || name.ends_with(".sha256") {
            let lines = |dir: &Path| -> Vec<String> {
                fs::read_to_string(dir.join(&name))
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect()
            };
            let (la, lb) = (lines(a), lines(b));
            problems.extend(only_in("  umask 002: ", &la, &lb));
            problems.extend(only_in("  umask 077: ", &lb, &la));
        }
        if name.ends_with(".iso") {
            let mut listings = vec![];
            for (dir, umask) in [(a, "002"), (b, "077")] {
                let sq = t.path().join(format!("rootfs-{umask}.squashfs"));
                iso_extract(&dir.join(&name), "/rootfs.squashfs", &sq);
                let l: Vec<String> = squashfs_listing(&sq)
                    .into_iter()
                    .map(|(p, (m, o, rest))| format!("{m} {o} {rest} {p}"))
                    .collect();
                listings.push(l);
            }
            let iso_tree = |dir: &Path| -> Vec<String> {
                let o = Command::new("xorriso")
                    .args(["-indev", dir.join(&name).to_str().unwrap()])
                    .args(["-find", "/", "-exec", "lsdl"])
                    .output()
                    .expect("xorriso");
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            };
            let (ia, ib) = (iso_tree(a), iso_tree(b));
            problems.extend(only_in("  ISO tree, umask 002: ", &ia, &ib));
            problems.extend(only_in("  ISO tree, umask 077: ", &ib, &ia));
            problems.extend(only_in(
                "  rootfs.squashfs, umask 002: ",
                &listings[0],
                &listings[1],
            ));
            problems.extend(only_in(
                "  rootfs.squashfs, umask 077: ",
                &listings[1],
                &listings[0],
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the umask of the checkout changes the artifacts:\n{}",
        problems.join("\n")
    );
}

// ---- The harness itself ----

#[test]
fn harness_umoci_reference_is_repeatable() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    fixture(&layout);
    let first = snapshot(&umoci_unpack(&layout, TAG, &t.path().join("one")));
    // A second later: anything stamped with the current time differs.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = snapshot(&umoci_unpack(&layout, TAG, &t.path().join("two")));
    check_reference(&first);
    let quirk = format!("{UMOCI_STAMPS_NOW}: mtime ");
    let d: Vec<String> = tree::diff("umoci (first)", &first, "umoci (second)", &second)
        .into_iter()
        .filter(|l| !l.starts_with(&quirk))
        .collect();
    assert!(
        d.is_empty(),
        "umoci unpack is not repeatable:\n  {}",
        d.join("\n  ")
    );
    // With the quirk pinned, two references are equal.
    let one = umoci_reference(&layout, TAG, &t.path().join("three"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let two = umoci_reference(&layout, TAG, &t.path().join("four"));
    assert_same("umoci (first)", &one, "umoci (second)", &two);
}

#[test]
fn harness_diff_sees_every_recorded_difference() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    fixture(&layout);
    let rootfs = umoci_unpack(&layout, TAG, &t.path().join("bundle"));
    let before = snapshot(&rootfs);
    assert!(tree::diff("a", &before, "b", &before).is_empty());

    // One change of each recorded kind.
    let p = |s: &str| rootfs.join(s);
    fs::set_permissions(p("usr/bin/sudo"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::lchown(p("usr/bin/wall"), Some(0), Some(0)).unwrap();
    fs::write(p("etc/hostname"), b"other\n").unwrap();
    fs::remove_file(p("lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib64", p("lib")).unwrap();
    let ping = std::ffi::CString::new(p("usr/bin/ping").to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated path and attribute name.
    let removed = unsafe { libc::lremovexattr(ping.as_ptr(), c"security.capability".as_ptr()) };
    assert_eq!(removed, 0, "{}", std::io::Error::last_os_error());
    run_tool(
        "touch",
        &["-h", "-d", "@1", p("bin").to_str().unwrap()],
        t.path(),
    );
    fs::remove_file(p("run/initctl")).unwrap();
    fs::remove_file(p("usr/sbin/tool-link")).unwrap();
    fs::copy(p("usr/bin/tool"), p("usr/sbin/tool-link")).unwrap();
    let after = snapshot(&rootfs);
    let d = tree::diff("after", &after, "before", &before).join("\n");
    for needle in [
        "usr/bin/sudo: mode 0755 != 04755",
        "usr/bin/wall: owner 0:0 != 0:42",
        "etc/hostname: file (6 bytes",
        "lib: symlink -> usr/lib64 != symlink -> usr/lib",
        "usr/bin/ping: xattrs {user.test=0x70696e67} != {security.capability=0x",
        "bin: mtime 1 != ",
        "run/initctl: only in before (fifo)",
        "hard links {usr/bin/tool, usr/sbin/tool-link} only in before",
    ] {
        assert!(d.contains(needle), "{needle:?} not reported:\n{d}");
    }
}

#[test]
fn harness_squashfs_round_trips_umoci_rootfs() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    fixture(&layout);
    let rootfs = umoci_unpack(&layout, TAG, &t.path().join("bundle"));
    let squashfs = t.path().join("x.squashfs");
    run_tool(
        "mksquashfs",
        &[
            rootfs.to_str().unwrap(),
            squashfs.to_str().unwrap(),
            "-noappend",
            "-no-progress",
            "-quiet",
        ],
        t.path(),
    );
    let back = t.path().join("back");
    unsquash(&squashfs, &back);
    assert_same(
        "mksquashfs + unsquashfs",
        &snapshot(&back),
        "umoci unpack",
        &snapshot(&rootfs),
    );
}
