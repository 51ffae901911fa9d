//! The installer menu: `edgeforge render`'s grub.cfg parsed back (entries per
//! firmware branch and each one's `linux` arguments) for the demo and for a
//! definition with overrides, grub-script-check on it, the refusals, and
//! QEMU boots of the demo base through the entries a test selects.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// The arguments that find and mount the live medium, on every entry.
const LIVE: &str = "root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs rd.live.overlay.overlayfs";

/// A rendered grub.cfg read back: the settings and the entries of each
/// `$grub_platform` branch with their `linux` arguments.
#[derive(Debug, Default)]
struct Parsed {
    default: String,
    timeout: String,
    /// `serial --unit=N --speed=S` when GRUB uses the serial console.
    serial: Option<String>,
    /// (id, arguments) in menu order, under `pc` (BIOS).
    bios: Vec<(String, Vec<String>)>,
    /// The same under `else` (EFI).
    efi: Vec<(String, Vec<String>)>,
    /// Ids of entries without a `linux` line (the EFI text-mode one), with their branch.
    other: Vec<(String, String)>,
    /// Comment lines (`#   arg: why`).
    comments: Vec<String>,
}

fn parse(cfg: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut branch = "";
    let mut entry: Option<(String, Option<Vec<String>>)> = None;
    for line in cfg.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#') {
            p.comments.push(c.trim().to_string());
        } else if line == "if [ \"$grub_platform\" = \"pc\" ]; then" {
            assert_eq!(branch, "", "nested platform branches");
            branch = "pc";
        } else if line == "else" && branch == "pc" {
            branch = "efi";
        } else if line == "fi" && !branch.is_empty() {
            branch = "";
        } else if let Some(v) = t.strip_prefix("set default=") {
            p.default = v.into();
        } else if let Some(v) = t.strip_prefix("set timeout=") {
            p.timeout = v.into();
        } else if t.starts_with("if serial ") {
            p.serial = Some(
                t.trim_start_matches("if ")
                    .trim_end_matches("; then")
                    .into(),
            );
        } else if t.starts_with("menuentry ") {
            assert!(entry.is_none(), "menuentry inside a menuentry: {line}");
            assert!(
                !branch.is_empty(),
                "entry outside the platform branches: {line}"
            );
            let id = t
                .split("--id ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("entry without --id: {line}"));
            entry = Some((id.to_string(), None));
        } else if let Some(args) = t.strip_prefix("linux /boot/kernel ") {
            let e = entry.as_mut().expect("linux outside an entry");
            e.1 = Some(args.split_whitespace().map(String::from).collect());
        } else if t == "}" {
            let (id, args) = entry.take().expect("} outside an entry");
            match (args, branch) {
                (Some(a), "pc") => p.bios.push((id, a)),
                (Some(a), _) => p.efi.push((id, a)),
                (None, b) => p.other.push((id, b.to_string())),
            }
        }
    }
    assert_eq!(branch, "", "unterminated platform branch");
    p
}

impl Parsed {
    fn ids(list: &[(String, Vec<String>)]) -> Vec<&str> {
        list.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn args(list: &[(String, Vec<String>)], id: &str) -> String {
        let (_, a) = list
            .iter()
            .find(|(i, _)| i == id)
            .unwrap_or_else(|| panic!("no entry {id} in {list:?}"));
        a.join(" ")
    }
}

/// Renders `def` (with `--set` overrides) and returns its one variant's grub.cfg.
fn render(def: &Path, sets: &[&str], out: &Path) -> String {
    let mut args = vec![
        "render",
        def.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = edgeforge(&args);
    assert_ok(&o);
    let variants = entries(out);
    assert_eq!(variants.len(), 1, "{variants:?}");
    let cfg = out.join(&variants[0]).join("iso/boot/grub2/grub.cfg");
    for stub in ["iso/boot/grub/grub.cfg", "iso/EFI/BOOT/grub.cfg"] {
        assert!(out.join(&variants[0]).join(stub).is_file(), "{stub}");
    }
    let text = fs::read_to_string(&cfg).unwrap();
    let check = Command::new("grub-script-check")
        .arg(&cfg)
        .output()
        .expect("grub-script-check (Debian package grub-common)");
    assert!(
        check.status.success(),
        "grub-script-check: {}{}\n{text}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    text
}

/// `common` then the entry's own arguments, as one line.
fn line(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn demo_menu_has_the_kairos_entries_and_arguments() {
    let t = tempfile::tempdir().unwrap();
    let cfg = render(&repo_root().join("images/demo-busybox.yaml"), &[], t.path());
    let p = parse(&cfg);
    assert_eq!((p.default.as_str(), p.timeout.as_str()), ("install", "5"));
    assert_eq!(p.serial.as_deref(), Some("serial --unit=0 --speed=115200"));
    let ids = [
        "install",
        "manual",
        "interactive",
        "recovery",
        "live",
        "debug",
    ];
    assert_eq!(Parsed::ids(&p.bios), ids);
    assert_eq!(Parsed::ids(&p.efi), ids);
    assert_eq!(p.other, [("textmode".to_string(), "efi".to_string())]);

    let common = format!("cdroot {LIVE} net.ifnames=1 selinux=0");
    let consoles = "console=ttyS0,115200 console=tty1";
    for (id, own, cos) in [
        ("install", "install-mode", "rd.cos.disable"),
        ("manual", "", "rd.cos.disable"),
        ("interactive", "install-mode-interactive", "rd.cos.disable"),
        ("recovery", "kairos.remote_recovery_mode", "rd.cos.disable"),
        ("live", "kairos.boot_live_mode", ""),
        (
            "debug",
            "rd.debug rd.shell rd.immucore.debug",
            "rd.cos.disable",
        ),
    ] {
        assert_eq!(
            Parsed::args(&p.efi, id),
            line(&[&common, cos, consoles, own]),
            "EFI {id}"
        );
        assert_eq!(
            Parsed::args(&p.bios, id),
            line(&[&common, cos, consoles, "vga=795", own]),
            "BIOS {id}"
        );
    }
    // vga=795 only ever under BIOS: nowhere in the EFI branch's text.
    let efi_text = &cfg[cfg.find("\nelse\n").unwrap()..];
    assert!(!efi_text.contains("vga="), "{efi_text}");

    // Each default argument has its comment saying why.
    let defaults: Vec<&String> = p.bios.iter().flat_map(|(_, a)| a).collect();
    for arg in defaults {
        if !arg.starts_with("console=") {
            assert!(
                p.comments
                    .iter()
                    .any(|c| c.starts_with(&format!("{arg}: "))),
                "no comment for {arg}"
            );
        }
    }
    assert!(p.comments.iter().any(
        |c| c.starts_with("console=ttyS0,115200 console=tty1: ") && c.contains("/dev/console")
    ));
    // The text-mode entry (EFI only) and the guarded font.
    assert!(cfg.contains("--hotkey t --id textmode {\n    terminal_output console $menu_serial\n"));
    assert!(cfg.contains(
        "if [ -f $prefix/fonts/unicode.pf2 ]; then\n  loadfont $prefix/fonts/unicode.pf2\nfi"
    ));

    // --set picks another default entry.
    let t2 = tempfile::tempdir().unwrap();
    let cfg = render(
        &repo_root().join("images/demo-busybox.yaml"),
        &["iso.menu.default=debug"],
        t2.path(),
    );
    assert_eq!(parse(&cfg).default, "debug");
}

fn overrides(dir: &Path) -> PathBuf {
    write_definition(
        dir,
        "menu",
        &demo_base(),
        "iso:\n  timeout: 0\n  extra_cmdline: edgeforge.test=1\n  menu:\n    default: nomodeset\n    consoles: [tty0, \"ttyS1,38400n8\"]\n    nomodeset: entry\n    cmdline:\n      add: [ip=dhcp]\n      remove: [selinux=0, vga]\n    entries:\n      debug:\n        add: [rd.break=pre-mount]\n        remove: [rd.shell]\n      live:\n        remove: [net.ifnames]\n      install:\n        add: [edgeforge.install=1]\n",
    )
}

#[test]
fn definition_overrides_change_the_menu() {
    let t = tempfile::tempdir().unwrap();
    let cfg = render(&overrides(t.path()), &[], &t.path().join("out"));
    let p = parse(&cfg);
    assert_eq!((p.default.as_str(), p.timeout.as_str()), ("nomodeset", "0"));
    assert_eq!(p.serial.as_deref(), Some("serial --unit=1 --speed=38400"));
    let ids = [
        "install",
        "manual",
        "interactive",
        "recovery",
        "live",
        "debug",
        "nomodeset",
    ];
    assert_eq!(Parsed::ids(&p.bios), ids);
    assert_eq!(Parsed::ids(&p.efi), ids);

    let consoles = "console=tty0 console=ttyS1,38400n8";
    let added = "ip=dhcp edgeforge.test=1";
    for (id, head, own) in [
        (
            "install",
            "net.ifnames=1 rd.cos.disable",
            "install-mode ip=dhcp edgeforge.test=1 edgeforge.install=1",
        ),
        ("manual", "net.ifnames=1 rd.cos.disable", added),
        ("live", "", "kairos.boot_live_mode ip=dhcp edgeforge.test=1"),
        (
            "debug",
            "net.ifnames=1 rd.cos.disable",
            "rd.debug rd.immucore.debug ip=dhcp edgeforge.test=1 rd.break=pre-mount",
        ),
        (
            "nomodeset",
            "net.ifnames=1 rd.cos.disable",
            "install-mode nomodeset ip=dhcp edgeforge.test=1",
        ),
    ] {
        let want = line(&[&format!("cdroot {LIVE}"), head, consoles, own]);
        // vga was removed, so both firmwares boot the same arguments.
        assert_eq!(Parsed::args(&p.bios, id), want, "BIOS {id}");
        assert_eq!(Parsed::args(&p.efi, id), want, "EFI {id}");
    }
    for (id, args) in p.bios.iter().chain(&p.efi) {
        assert!(
            !args
                .iter()
                .any(|a| a.starts_with("vga=") || a == "selinux=0"),
            "{id}: {args:?}"
        );
    }
    // Removed defaults lose their comments too.
    assert!(!p
        .comments
        .iter()
        .any(|c| c.starts_with("vga=795:") || c.starts_with("selinux=0:")));

    // nomodeset: all puts it on every entry, and adds no entry.
    let t2 = tempfile::tempdir().unwrap();
    let cfg = render(
        &repo_root().join("images/demo-busybox.yaml"),
        &["iso.menu.nomodeset=true"],
        t2.path(),
    );
    let p = parse(&cfg);
    assert_eq!(p.bios.len(), 6);
    for (id, args) in p.bios.iter().chain(&p.efi) {
        assert!(args.contains(&"nomodeset".to_string()), "{id}");
    }
}

#[test]
fn bad_menu_settings_are_refused_with_file_line_and_the_choices() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let render_fails = |def: &Path, sets: &[&str]| {
        let mut args = vec![
            "render",
            def.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        for s in sets {
            args.extend(["--set", s]);
        }
        edgeforge(&args)
    };
    let all_ids = [
        "install",
        "manual",
        "interactive",
        "recovery",
        "live",
        "debug",
    ];

    // An unknown default entry: the file, its line and every known id.
    let def = write_definition(
        t.path(),
        "bad-default",
        &demo_base(),
        "iso:\n  menu:\n    default: rescue\n",
    );
    let o = render_fails(&def, &[]);
    let mut needles = vec![format!("{}:17", def.display()), "rescue".into()];
    needles.extend(all_ids.iter().map(|s| format!("`{s}`")));
    assert_fails(
        &o,
        3,
        &needles.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(entries(&out), Vec::<String>::new());

    // The same from --set.
    let o = render_fails(
        &repo_root().join("images/demo-busybox.yaml"),
        &["iso.menu.default=rescue"],
    );
    assert_fails(
        &o,
        3,
        &["--set iso.menu.default=rescue", "`install`", "`debug`"],
    );

    // The nomodeset entry only exists with nomodeset: entry.
    let def = write_definition(
        t.path(),
        "no-entry",
        &demo_base(),
        "iso:\n  menu:\n    nomodeset: all\n    default: nomodeset\n",
    );
    let mut needles = vec![format!("{}:18", def.display()), "iso.menu.default".into()];
    needles.extend(all_ids.iter().map(|s| s.to_string()));
    assert_fails(
        &render_fails(&def, &[]),
        3,
        &needles.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // Removing what an entry does not carry names the ones it does.
    let def = write_definition(
        t.path(),
        "bad-remove",
        &demo_base(),
        "iso:\n  menu:\n    entries:\n      live:\n        remove: [rd.cos.disable]\n",
    );
    assert_fails(
        &render_fails(&def, &[]),
        3,
        &[
            &format!("{}:19", def.display()),
            "iso.menu.entries.live.remove",
            "`rd.cos.disable` is not a default argument of the live entry",
            "kairos.boot_live_mode",
            "vga=795",
        ],
    );

    // The live-medium arguments stay; consoles are their own field.
    for (extra, needle) in [
        ("    cmdline:\n      remove: [root]\n", "cannot be removed"),
        (
            "    cmdline:\n      add: [console=ttyS1]\n",
            "iso.menu.consoles",
        ),
        (
            "    cmdline:\n      add: [\"a;b\"]\n",
            "not one kernel argument",
        ),
        ("    nomodeset: sometimes\n", "one of none, entry, all"),
        ("    entry:\n      debug: {}\n", "unknown field `entry`"),
    ] {
        let def = write_definition(
            t.path(),
            "bad",
            &demo_base(),
            &format!("iso:\n  menu:\n{extra}"),
        );
        assert_fails(
            &render_fails(&def, &[]),
            3,
            &[&def.display().to_string(), needle],
        );
    }
}

fn user_data(dir: &Path) -> PathBuf {
    let p = dir.join("user-data.yaml");
    fs::write(&p, "#cloud-config\ninstall:\n  poweroff: true\n").unwrap();
    p
}

/// Builds the demo with `default` selected and boots it; returns the kernel
/// command line each mode booted with.
fn boot_entry(default: &str, modes: &[&str]) -> Vec<(String, String)> {
    let t = tempfile::tempdir().unwrap();
    let root = repo_root();
    let def = write_definition(
        t.path(),
        "boot",
        &demo_base(),
        &format!(
            "overlays:\n  rootfs: [{}]\n  iso: [{}]\niso:\n  timeout: 0\n",
            root.join("overlays/rootfs").display(),
            root.join("overlays/iso").display()
        ),
    );
    let ud = user_data(t.path());
    let out = t.path().join("build");
    let set = format!("iso.menu.default={default}");
    assert_ok(&edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--set",
        &set,
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let want = sha256_hex(&fs::read(&ud).unwrap());
    let o = Command::new("bash")
        .arg(root.join("scripts/boot-test.sh"))
        .arg(out.join("palette-edge-installer.iso"))
        .arg(&want)
        .args(modes)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{default}: {report}");
    modes
        .iter()
        .map(|m| {
            assert!(report.contains(&format!("boot-test {m}: ok")), "{report}");
            let prefix = format!("boot-test {m}: kernel command line: ");
            let cmdline = report
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no command line for {m}: {report}"));
            (m.to_string(), cmdline.to_string())
        })
        .collect()
}

#[test]
fn the_boot_local_node_entry_boots_when_selected() {
    for (mode, cmdline) in boot_entry("live", &["bios", "uefi"]) {
        let args: Vec<&str> = cmdline.split_whitespace().collect();
        assert!(args.contains(&"kairos.boot_live_mode"), "{mode}: {cmdline}");
        assert!(!args.contains(&"rd.cos.disable"), "{mode}: {cmdline}");
        assert!(cmdline.contains(LIVE), "{mode}: {cmdline}");
        assert_eq!(
            args.contains(&"vga=795"),
            mode == "bios",
            "{mode}: {cmdline}"
        );
    }
}

#[test]
fn the_debug_entry_boots_when_selected() {
    for (mode, cmdline) in boot_entry("debug", &["bios", "uefi"]) {
        let args: Vec<&str> = cmdline.split_whitespace().collect();
        for a in [
            "rd.debug",
            "rd.shell",
            "rd.immucore.debug",
            "rd.cos.disable",
        ] {
            assert!(args.contains(&a), "{mode} lacks {a}: {cmdline}");
        }
        assert_eq!(
            args.contains(&"vga=795"),
            mode == "bios",
            "{mode}: {cmdline}"
        );
    }
}

#[test]
fn the_images_grub_font_goes_where_the_menu_loads_it() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    assert_ok(&edgeforge(&[
        "unpack",
        demo_base().to_str().unwrap(),
        "--out",
        rootfs.to_str().unwrap(),
    ]));
    fs::create_dir_all(rootfs.join("usr/share/grub2")).unwrap();
    fs::write(rootfs.join("usr/share/grub2/unicode.pf2"), b"PFF2 stand-in").unwrap();
    let def = write_definition(t.path(), "font", &demo_base(), "");
    let ud = user_data(t.path());
    let out = t.path().join("build");
    assert_ok(&edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--rootfs",
        rootfs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let iso = out.join("palette-edge-installer.iso");
    assert_eq!(
        iso_extract(
            &iso,
            "/boot/grub2/fonts/unicode.pf2",
            &t.path().join("f.pf2")
        ),
        b"PFF2 stand-in"
    );
    let menu = iso_extract(&iso, "/boot/grub2/grub.cfg", &t.path().join("grub.cfg"));
    assert!(String::from_utf8(menu)
        .unwrap()
        .contains("loadfont $prefix/fonts/unicode.pf2"));
}
