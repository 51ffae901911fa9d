//! The installer ISO: its tree read back with xorriso, the user-data byte for
//! byte, the boot records, the FAT image, reproducibility, checksums, boots
//! under SeaBIOS and OVMF (CD and USB-disk), and each refusal.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const TOKEN: &str = "tOkEn-3c1f9a7e55aa";

fn user_data(dir: &Path) -> PathBuf {
    let p = dir.join("user-data.yaml");
    fs::write(
        &p,
        format!("#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n    edgeHostToken: {TOKEN}\n    name: edge-test-1\ninstall:\n  poweroff: true\n"),
    )
    .unwrap();
    p
}

/// The demo definition with a fast GRUB menu, an extra cmdline and the extras.
fn definition(dir: &Path) -> PathBuf {
    let root = repo_root();
    fs::write(
        dir.join("signing.yaml"),
        "publicKey: |\n  -----BEGIN PUBLIC KEY-----\n",
    )
    .unwrap();
    fs::write(dir.join("cluster.tgz"), "cluster definition").unwrap();
    write_definition(
        dir,
        "iso",
        &demo_base(),
        &format!(
            "overlays:\n  rootfs: [{}]\n  iso: [{}]\niso:\n  timeout: 0\n  extra_cmdline: edgeforge.test=1\n  edge_custom_config: signing.yaml\n  cluster_definition: cluster.tgz\n",
            root.join("overlays/rootfs").display(),
            root.join("overlays/iso").display()
        ),
    )
}

fn build(def: &Path, ud: &Path, out: &Path) -> std::process::Output {
    edgeforge(&[
        "-v",
        "build",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// `edgeforge GLOBAL... build` of `def` with `env` set (a PATH of the test's).
fn build_with_env(
    def: &Path,
    ud: &Path,
    out: &Path,
    global: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = global.to_vec();
    args.extend([
        "build",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    edgeforge_env(&args, env)
}

fn xorriso(iso: &Path, args: &[&str]) -> String {
    let mut all = vec!["-indev", iso.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = Command::new("xorriso")
        .args(&all)
        .output()
        .expect("xorriso (scripts/install-host-tools.sh)");
    assert!(
        o.status.success(),
        "xorriso {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn iso_has_the_kairos_layout_boot_records_and_the_user_data() {
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let out = t.path().join("build");
    let o = build(&def, &ud, &out);
    assert_ok(&o);
    let iso = out.join("palette-edge-installer.iso");
    assert!(stdout(&o).contains(iso.to_str().unwrap()));
    for output in [stdout(&o), stderr(&o)] {
        assert!(
            !output.contains(TOKEN),
            "the token is never printed, even at -v"
        );
    }

    let listing = xorriso(&iso, &["-find", "/", "-exec", "lsdl"]);
    for path in [
        "/rootfs.squashfs",
        "/config.yaml",
        "/boot/kernel",
        "/boot/initrd",
        "/boot/grub2/grub.cfg",
        "/boot/grub/grub.cfg",
        "/EFI/BOOT/grub.cfg",
        "/boot/uefi.img",
        "/boot/eltorito.img",
        "/boot/boot_hybrid.img",
        "/edge-installer.txt",
        "/.edge_custom_config.yaml",
        "/opt/spectrocloud/clusterconfig/cluster.tgz",
    ] {
        assert!(
            listing.contains(&format!("'{path}'")),
            "{path} missing from:\n{listing}"
        );
    }
    assert!(
        !listing.contains("boot.catalog"),
        "the boot catalog is hidden"
    );

    assert_eq!(
        iso_extract(&iso, "/config.yaml", &t.path().join("config.yaml")),
        fs::read(&ud).unwrap()
    );
    let menu = String::from_utf8(iso_extract(
        &iso,
        "/boot/grub2/grub.cfg",
        &t.path().join("grub.cfg"),
    ))
    .unwrap();
    assert!(
        menu.contains("root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs"),
        "{menu}"
    );
    assert!(menu.contains("install-mode edgeforge.test=1"), "{menu}");
    for id in [
        "--id install",
        "--id manual",
        "--id interactive",
        "--id debug",
    ] {
        assert!(menu.contains(id), "{id}");
    }
    let stub = String::from_utf8(iso_extract(
        &iso,
        "/EFI/BOOT/grub.cfg",
        &t.path().join("stub.cfg"),
    ))
    .unwrap();
    assert!(
        stub.contains("search --no-floppy --file --set=root /boot/kernel"),
        "{stub}"
    );
    let installer_txt = String::from_utf8(iso_extract(
        &iso,
        "/edge-installer.txt",
        &t.path().join("i.txt"),
    ))
    .unwrap();
    assert!(
        installer_txt.contains("ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-test"),
        "rendered overlays.iso"
    );

    let pvd = xorriso(&iso, &["-pvd_info"]);
    assert!(pvd.contains("Volume Id    : COS_LIVE"), "{pvd}");
    let torito = xorriso(&iso, &["-report_el_torito", "plain"]);
    assert!(
        torito.contains("BIOS") && torito.contains("UEFI"),
        "{torito}"
    );
    assert!(torito.contains("/boot/eltorito.img"), "{torito}");
    let system = xorriso(&iso, &["-report_system_area", "plain"]);
    // The EFI System Partition type C12A7328-F81F-11D2-BA4B-00A0C93EC93B, in on-disk byte order.
    assert!(
        system.contains("GPT type GUID      :   2  28732ac11ff8d211ba4b00a0c93ec93b"),
        "FAT image appended as GPT partition 2:\n{system}"
    );
    assert!(
        system.contains("protective-msdos-label grub2-mbr"),
        "hybrid MBR:\n{system}"
    );
    // The file ends where the image does: the 64 KiB padding xorriso adds
    // when writing into a file is cut.
    let size = fs::metadata(&iso).unwrap().len();
    assert!(
        system.contains(&format!("ISO image size/512 : {}\n", size / 512))
            && system.contains(&format!(
                "GPT lba range      :      64  {}  {}\n",
                size / 512 - 64,
                size / 512 - 1
            )),
        "{size} bytes:\n{system}"
    );
    let toc = xorriso(&iso, &["-toc"]);
    assert!(toc.contains("Rock_Ridge Joliet"), "{toc}");

    // The FAT image: label EFI_LIVE, the loader and the stub in both places.
    let fat = t.path().join("uefi.img");
    iso_extract(&iso, "/boot/uefi.img", &fat);
    let info = run_tool("minfo", &["-i", fat.to_str().unwrap(), "::"], t.path());
    assert!(info.contains("EFI_LIVE"), "{info}");
    let dir = run_tool(
        "mdir",
        &["-i", fat.to_str().unwrap(), "-/", "-b", "::"],
        t.path(),
    );
    for f in [
        "::/EFI/BOOT/bootx64.efi",
        "::/EFI/BOOT/grub.cfg",
        "::/boot/grub/grub.cfg",
    ] {
        assert!(dir.contains(f), "{f} missing from the FAT image:\n{dir}");
    }

    // The squashfs holds the provider image's rootfs.
    let sq = t.path().join("rootfs.squashfs");
    iso_extract(&iso, "/rootfs.squashfs", &sq);
    let files = run_tool("unsquashfs", &["-l", sq.to_str().unwrap()], t.path());
    assert!(
        files.contains("squashfs-root/etc/kairos-release")
            && files.contains("squashfs-root/bin/busybox")
    );

    // Checksums in sha256sum -c form, over every artifact.
    run_tool(
        "sha256sum",
        &["-c", "palette-edge-installer.iso.sha256"],
        &out,
    );
    let sums = run_tool("sha256sum", &["-c", "SHA256SUMS"], &out);
    assert!(
        sums.contains("palette-edge-installer.iso: OK")
            && sums.contains("ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar: OK"),
        "{sums}"
    );

    // The token is in the ISO's /config.yaml and nowhere else edgeforge wrote.
    for name in entries(&out) {
        if name != "palette-edge-installer.iso" {
            let bytes = fs::read(out.join(&name)).unwrap();
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "token found in {name}"
            );
        }
    }
}

#[test]
fn iso_boots_under_bios_uefi_and_as_a_usb_disk() {
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let out = t.path().join("build");
    assert_ok(&build(&def, &ud, &out));
    let want = sha256_hex(&fs::read(&ud).unwrap());
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/boot-test.sh"))
        .arg(out.join("palette-edge-installer.iso"))
        .arg(&want)
        .args(["bios", "uefi", "usb"])
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{report}");
    for mode in ["bios", "uefi", "usb"] {
        assert!(
            report.contains(&format!("boot-test {mode}: ok")),
            "{report}"
        );
        // The default (install) entry, with Kairos's arguments; vga=795 on BIOS only.
        let prefix = format!("boot-test {mode}: kernel command line: ");
        let cmdline = report
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no command line for {mode}: {report}"));
        let args: Vec<&str> = cmdline.split_whitespace().collect();
        for a in [
            "cdroot",
            "root=live:CDLABEL=COS_LIVE",
            "net.ifnames=1",
            "selinux=0",
            "rd.cos.disable",
            "install-mode",
            "edgeforge.test=1",
        ] {
            assert!(args.contains(&a), "{mode} lacks {a}: {cmdline}");
        }
        assert_eq!(
            args.contains(&"vga=795"),
            mode == "bios",
            "{mode}: {cmdline}"
        );
    }
    assert!(
        report.contains("kairos=v4.5.0-k3s-1.30.5"),
        "the booted system mounted rootfs.squashfs: {report}"
    );
}

#[test]
fn same_inputs_and_epoch_give_byte_identical_isos() {
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    assert_ok(&build(&def, &ud, &a));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_ok(&build(&def, &ud, &b));
    let iso = "palette-edge-installer.iso";
    assert!(
        fs::read(a.join(iso)).unwrap() == fs::read(b.join(iso)).unwrap(),
        "ISOs differ"
    );
    assert_eq!(
        fs::read(a.join("SHA256SUMS")).unwrap(),
        fs::read(b.join("SHA256SUMS")).unwrap()
    );
}

#[test]
fn isos_are_reproducible_with_the_default_epoch_too() {
    // SOURCE_DATE_EPOCH unset means 0, which some tools read as "now".
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let build = |out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_edgeforge"))
            .args([
                "--no-cache",
                "build",
                def.to_str().unwrap(),
                "--user-data",
                ud.to_str().unwrap(),
                "--out",
                t.path().join(out).to_str().unwrap(),
            ])
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        assert_ok(&o);
        fs::read(t.path().join(out).join("palette-edge-installer.iso")).unwrap()
    };
    let a = build("a");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(a == build("b"), "ISOs differ with SOURCE_DATE_EPOCH unset");
}

#[test]
fn refusals_name_the_problem_and_leave_nothing() {
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());

    // A user-data that is not a #cloud-config document.
    let bad = t.path().join("bad.yaml");
    fs::write(&bad, "stylus:\n  site:\n    name: x\n").unwrap();
    let out = t.path().join("o1");
    let o = edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--user-data",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &[&format!("{}:1", bad.display()), "#cloud-config"]);
    assert_eq!(entries(&out), Vec::<String>::new());

    // Broken YAML: the line is quoted with the secret masked.
    fs::write(
        &bad,
        format!("#cloud-config\nstylus:\n  site:\n    edgeHostToken: {TOKEN}: oops\n"),
    )
    .unwrap();
    let o = edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--user-data",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(
        &o,
        3,
        &[&format!("{}:4", bad.display()), "edgeHostToken: ****"],
    );
    assert!(!stderr(&o).contains(TOKEN));

    // A rootfs without a kernel.
    let rootfs = t.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    let out = t.path().join("o2");
    let o = edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["no kernel", "vmlinuz*"]);
    assert_eq!(entries(&out), Vec::<String>::new());

    // No provider image yet.
    let o = edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(
        &o,
        3,
        &[
            "ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar does not exist",
            "edgeforge build",
        ],
    );

    // An output folder that cannot be written.
    let blocker = t.path().join("not-a-folder");
    fs::write(&blocker, "").unwrap();
    let o = edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--out",
        blocker.join("out").to_str().unwrap(),
    ]);
    assert_fails(
        &o,
        5,
        &["not-a-folder is not a folder; choose another --out"],
    );

    // Missing host tools name their Debian packages.
    let o = Command::new(env!("CARGO_BIN_EXE_edgeforge"))
        .args([
            "iso",
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .env("PATH", t.path().join("empty-path"))
        .output()
        .unwrap();
    assert_fails(
        &o,
        4,
        &[
            "xorriso (Debian package xorriso)",
            "mksquashfs (Debian package squashfs-tools)",
            "apt-get install",
        ],
    );
    assert_eq!(entries(&out), Vec::<String>::new());
}

#[test]
fn signed_loaders_from_the_rootfs_go_into_the_fat_image() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    assert_ok(&edgeforge(&[
        "unpack",
        demo_base().to_str().unwrap(),
        "--out",
        rootfs.to_str().unwrap(),
    ]));
    // Stand-ins for Debian's signed shim and CD GRUB: their bytes must be copied as they are.
    fs::create_dir_all(rootfs.join("usr/lib/shim")).unwrap();
    fs::create_dir_all(rootfs.join("usr/lib/grub/x86_64-efi-signed")).unwrap();
    fs::write(
        rootfs.join("usr/lib/shim/shimx64.efi.signed"),
        b"MZ signed shim stand-in",
    )
    .unwrap();
    fs::write(
        rootfs.join("usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"),
        b"MZ signed gcd stand-in",
    )
    .unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let out = t.path().join("build");
    let o = edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("EFI loader: signed shim"),
        "{}",
        stderr(&o)
    );
    let fat = t.path().join("uefi.img");
    iso_extract(
        &out.join("palette-edge-installer.iso"),
        "/boot/uefi.img",
        &fat,
    );
    for (name, want) in [
        ("bootx64.efi", &b"MZ signed shim stand-in"[..]),
        ("grubx64.efi", b"MZ signed gcd stand-in"),
    ] {
        let got = t.path().join(name);
        run_tool(
            "mcopy",
            &[
                "-i",
                fat.to_str().unwrap(),
                &format!("::/EFI/BOOT/{name}"),
                got.to_str().unwrap(),
            ],
            t.path(),
        );
        assert_eq!(fs::read(&got).unwrap(), want, "{name}");
    }
}

#[test]
fn missing_host_tools_are_found_before_the_provider_image_is_written() {
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let out = t.path().join("out");
    let empty = t.path().join("empty-path");
    let o = build_with_env(&def, &ud, &out, &[], &[("PATH", empty.to_str().unwrap())]);
    assert_fails(
        &o,
        4,
        &["xorriso (Debian package xorriso)", "apt-get install"],
    );
    assert_eq!(
        entries(&out),
        Vec::<String>::new(),
        "no provider image, no work folder"
    );
}

/// A tmpfs of `bytes` at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` where mounting is not allowed (not root).
    fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        o.status.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_during_the_iso_write_is_an_io_error() {
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let build_dir = t.path().join("build");
    assert_ok(&build(&def, &ud, &build_dir));
    let iso_size = fs::metadata(build_dir.join("palette-edge-installer.iso"))
        .unwrap()
        .len();
    // Room for the staged ISO tree (about the ISO's size), not for the ISO besides.
    let disk = t.path().join("small-disk");
    let Some(_mounted) = Tmpfs::mount(&disk, iso_size * 3 / 2) else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let out = disk.join("out");
    let o = edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--provider-image",
        build_dir
            .join("ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar")
            .to_str()
            .unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 5, &["xorriso", "out of disk space", "--out"]);
    assert_eq!(
        entries(&out),
        Vec::<String>::new(),
        "no partial ISO, no work folder"
    );
}

#[test]
fn a_mksquashfs_that_stops_reading_is_reported_not_a_silent_kill() {
    // edgeforge restores SIGPIPE's default action for its own output; a
    // tool that exits while edgeforge still feeds it must not kill it.
    let t = tempfile::tempdir().unwrap();
    let def = definition(t.path());
    let ud = user_data(t.path());
    let out = t.path().join("out");
    let bin = t.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("mksquashfs");
    fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = -version ] && exec /usr/bin/mksquashfs -version\necho 'mksquashfs: simulated write error' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // Without a cache, so mksquashfs runs (a cached squashfs would stand in).
    let o = build_with_env(&def, &ud, &out, &["--no-cache"], &[("PATH", path.as_str())]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        None,
        "killed by a signal"
    );
    assert_fails(&o, 1, &["mksquashfs", "simulated write error"]);
    assert!(
        !entries(&out).iter().any(|e| e.contains(".edgeforge-work")),
        "no work folder left: {:?}",
        entries(&out)
    );
}
