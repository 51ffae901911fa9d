//! Site user-data media (issue #16): `edgeforge site-media` writes what the
//! documented `mkisofs -output X -volid cidata -joliet -rock user-data
//! meta-data` makes, file for file, byte-reproducibly, 0600, with checksums;
//! sites files make one medium per site, all or nothing; the token appears
//! only inside the media; `iso show` reads a medium back masked.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::*;

const TOKEN: &str = "site-media-token-7f3a9c";

fn isoinfo(args: &[&str], iso: &Path) -> String {
    let mut all = args.to_vec();
    all.extend(["-i", iso.to_str().unwrap()]);
    run_tool("isoinfo", &all, iso.parent().unwrap())
}

/// Paths as `isoinfo -f` lists them (ISO 9660, `-J` Joliet, `-R` Rock Ridge).
fn names(iso: &Path, flag: Option<&str>) -> Vec<String> {
    let mut args = vec!["-f"];
    args.extend(flag);
    let mut v: Vec<String> = isoinfo(&args, iso).lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The paths xorriso finds (its Rock Ridge reader).
fn xorriso_find(iso: &Path) -> Vec<String> {
    let out = run_tool(
        "xorriso",
        &["-indev", iso.to_str().unwrap(), "-find", "/"],
        iso.parent().unwrap(),
    );
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with('\''))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn volume_info(iso: &Path) -> Vec<String> {
    isoinfo(&["-d"], iso)
        .lines()
        .filter(|l| {
            l.starts_with("Volume id:")
                || l.starts_with("Joliet")
                || l.starts_with("Rock Ridge")
                || l.starts_with("Logical block size")
        })
        .map(str::to_string)
        .collect()
}

#[track_caller]
fn assert_same_medium(ours: &Path, reference: &Path, user_data: &[u8], meta_data: &[u8]) {
    assert_eq!(xorriso_find(ours), xorriso_find(reference));
    assert_eq!(xorriso_find(ours), ["'/'", "'/meta-data'", "'/user-data'"]);
    for flag in [None, Some("-J"), Some("-R")] {
        assert_eq!(names(ours, flag), names(reference, flag), "{flag:?} names");
    }
    let info = volume_info(ours);
    assert_eq!(info, volume_info(reference));
    assert!(info.iter().any(|l| l == "Volume id: cidata"), "{info:?}");
    assert!(info.iter().any(|l| l.starts_with("Joliet")), "{info:?}");
    assert!(info.iter().any(|l| l.starts_with("Rock Ridge")), "{info:?}");
    let t = tempfile::tempdir().unwrap();
    for (iso, tag) in [(ours, "ours"), (reference, "ref")] {
        for (path, want) in [("/user-data", user_data), ("/meta-data", meta_data)] {
            let got = iso_extract(iso, path, &t.path().join(format!("{tag}{}", &path[1..])));
            assert_eq!(got, want, "{path} of {}", iso.display());
            // Read through Joliet too.
            let joliet = std::process::Command::new("isoinfo")
                .args(["-J", "-i", iso.to_str().unwrap(), "-x", path])
                .output()
                .unwrap();
            assert_eq!(joliet.stdout, want, "Joliet {path} of {}", iso.display());
        }
    }
}

#[test]
fn a_medium_is_what_the_documented_mkisofs_command_makes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let user_data = b"#cloud-config\nstylus:\n  site:\n    name: store-7\n    network:\n      interfaces:\n        enp1s0:\n          ipAddress: 10.0.7.2\n";
    fs::write(src.join("user-data"), user_data).unwrap();
    fs::write(src.join("meta-data"), b"").unwrap();
    run_tool(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-output",
            "ref.iso",
            "-volid",
            "cidata",
            "-joliet",
            "-rock",
            "user-data",
            "meta-data",
        ],
        &src,
    );
    let out = t.path().join("out");
    let o = edgeforge(&[
        "site-media",
        "--user-data",
        src.join("user-data").to_str().unwrap(),
        "-o",
        out.join("site.iso").to_str().unwrap(),
    ]);
    assert_ok(&o);
    let ours = out.join("site.iso");
    assert_same_medium(&ours, &src.join("ref.iso"), user_data, b"");

    // Written 0600 (it may hold the token), with its checksums.
    assert_eq!(
        fs::metadata(&ours).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(entries(&out), ["SHA256SUMS", "site.iso", "site.iso.sha256"]);
    let bytes = fs::read(&ours).unwrap();
    let line = format!("{}  site.iso\n", sha256_hex(&bytes));
    assert_eq!(
        fs::read_to_string(out.join("site.iso.sha256")).unwrap(),
        line
    );
    assert_eq!(fs::read_to_string(out.join("SHA256SUMS")).unwrap(), line);
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));

    // Byte-reproducible.
    let again = t.path().join("again.iso");
    assert_ok(&edgeforge(&[
        "site-media",
        "--user-data",
        src.join("user-data").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]));
    assert_eq!(fs::read(&again).unwrap(), bytes, "two runs, same bytes");

    // `iso show` reads it back.
    let o = edgeforge(&["iso", "show", ours.to_str().unwrap()]);
    assert_ok(&o);
    let shown = stdout(&o);
    assert!(shown.contains("volume      cidata"), "{shown}");
    assert!(shown.contains("user-data   /user-data, "), "{shown}");
    assert!(shown.contains("ipAddress: 10.0.7.2"), "{shown}");
}

fn sites_file(dir: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("sites.yaml");
    fs::write(
        &p,
        format!(
            "sites:\n  - name: store-1\n    palette_endpoint: api.spectrocloud.com\n    token_env: SITE_TOKEN\n  - name: store-2\n    project_name: Retail\n    network:\n      nameserver: 10.0.0.53\n{extra}"
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_sites_file_makes_one_medium_per_site_and_the_token_stays_inside() {
    let t = tempfile::tempdir().unwrap();
    let sites = sites_file(t.path(), "");
    let out = t.path().join("media");
    let o = edgeforge_env(
        &[
            "-v",
            "site-media",
            "--sites",
            sites.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ],
        &[("SITE_TOKEN", TOKEN)],
    );
    assert_ok(&o);
    let printed = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !printed.contains(TOKEN),
        "the token was printed:\n{printed}"
    );
    assert_eq!(
        entries(&out),
        [
            "SHA256SUMS",
            "store-1-user-data.iso",
            "store-1-user-data.iso.sha256",
            "store-2-user-data.iso",
            "store-2-user-data.iso.sha256"
        ]
    );
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));
    let x = t.path().join("x");
    fs::create_dir(&x).unwrap();
    let one = out.join("store-1-user-data.iso");
    let ud = iso_extract(&one, "/user-data", &x.join("ud1"));
    let ud = String::from_utf8(ud).unwrap();
    assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    assert!(ud.contains(&format!("edgeHostToken: \"{TOKEN}\"")), "{ud}");
    assert_eq!(
        iso_extract(&one, "/meta-data", &x.join("md1")),
        b"instance-id: store-1\nlocal-hostname: store-1\n"
    );
    let two = iso_extract(
        &out.join("store-2-user-data.iso"),
        "/user-data",
        &x.join("ud2"),
    );
    let two = String::from_utf8(two).unwrap();
    assert!(!two.contains("edgeHostToken"), "{two}");
    assert!(two.contains("nameserver: \"10.0.0.53\""), "{two}");

    // `iso show` masks the token; --reveal shows it.
    let o = edgeforge(&["iso", "show", one.to_str().unwrap(), "--output", "json"]);
    assert_ok(&o);
    let shown = stdout(&o);
    assert!(!shown.contains(TOKEN), "{shown}");
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["volume"], "cidata");
    assert_eq!(v["user_data"]["file"], "/user-data");
    assert_eq!(v["user_data"]["sha256"], sha256_hex(ud.as_bytes()));
    assert_eq!(
        v["user_data"]["meta_data"],
        "instance-id: store-1\nlocal-hostname: store-1\n"
    );
    let o = edgeforge(&["iso", "show", one.to_str().unwrap(), "--reveal"]);
    assert!(stdout(&o).contains(TOKEN));
}

#[test]
fn a_sites_file_is_all_or_nothing() {
    let t = tempfile::tempdir().unwrap();
    let run = |sites: &Path, out: &Path| {
        edgeforge_env(
            &[
                "site-media",
                "--sites",
                sites.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
            ],
            &[("SITE_TOKEN", TOKEN)],
        )
    };
    // The third site is invalid: nothing is written, not even the first two.
    let bad = t.path().join("bad");
    fs::create_dir(&bad).unwrap();
    let sites = sites_file(
        &bad,
        "  - name: store-3\n    network:\n      nameserver: 10.0.0.999\n",
    );
    let out = t.path().join("out-bad");
    let o = run(&sites, &out);
    assert_fails(&o, 3, &["store-3", "is not an IP address"]);
    assert!(!stderr(&o).contains(TOKEN));
    assert_eq!(entries(&out), Vec::<String>::new());

    // Duplicate names are refused.
    let dup = t.path().join("dup");
    fs::create_dir(&dup).unwrap();
    let sites = sites_file(&dup, "  - name: store-1\n");
    let out = t.path().join("out-dup");
    assert_fails(
        &run(&sites, &out),
        3,
        &["sites[0] and sites[2] are both named `store-1`"],
    );
    assert_eq!(entries(&out), Vec::<String>::new());

    // A missing token variable fails before anything is written.
    let o = edgeforge(&[
        "site-media",
        "--sites",
        sites_file(t.path(), "").to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["SITE_TOKEN"]);
    assert_eq!(entries(&out), Vec::<String>::new());
}

#[test]
fn a_site_override_is_checked_as_a_partial_document() {
    let t = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = t.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    // Partial: an endpoint without a token, a static interface whose
    // address the installer's user-data keeps.
    let partial = write(
        "partial.yaml",
        "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: palette.example.com\n    network:\n      interfaces:\n        enp1s0:\n          type: static\n          gateway: 10.1.2.1\n",
    );
    let out = t.path().join("out");
    assert_ok(&edgeforge(&[
        "site-media",
        "--user-data",
        partial.to_str().unwrap(),
        "-o",
        out.join("p.iso").to_str().unwrap(),
    ]));
    assert_ok(&edgeforge(&[
        "user-data",
        "validate",
        "--override",
        partial.to_str().unwrap(),
    ]));
    // As an installer's whole user-data, the same document is incomplete.
    assert_fails(
        &edgeforge(&["user-data", "validate", partial.to_str().unwrap()]),
        3,
        &["a static interface needs an ipAddress"],
    );

    // Types, formats and the header are still checked; nothing is written.
    for (name, text, needle) in [
        (
            "type.yaml",
            "#cloud-config\nstylus:\n  site:\n    debug: maybe\n",
            "expected true or false",
        ),
        (
            "format.yaml",
            "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: https://palette.example.com/\n",
            "must be a host name",
        ),
        (
            "header.yaml",
            "stylus:\n  site:\n    name: x\n",
            "#cloud-config",
        ),
    ] {
        let f = write(name, text);
        let target = out.join(format!("{name}.iso"));
        assert_fails(
            &edgeforge(&[
                "site-media",
                "--user-data",
                f.to_str().unwrap(),
                "-o",
                target.to_str().unwrap(),
            ]),
            3,
            &[needle],
        );
        assert!(!target.exists());
    }
    // Unknown stylus keys are warnings.
    let unknown = write(
        "unknown.yaml",
        "#cloud-config\nstylus:\n  site:\n    colour: blue\n",
    );
    let o = edgeforge(&[
        "user-data",
        "validate",
        "--override",
        unknown.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(entries(&out), ["SHA256SUMS", "p.iso", "p.iso.sha256"]);
}

#[test]
fn a_token_on_the_command_line_is_refused() {
    let o = edgeforge(&[
        "site-media",
        "--site-value",
        "name=a",
        "--token",
        TOKEN,
        "-o",
        "/nonexistent/x.iso",
    ]);
    assert_fails(&o, 8, &["--token is refused"]);
    assert!(!stderr(&o).contains(TOKEN));
}

/// A site from --site-value gets meta-data and, by default, its own name.
#[test]
fn a_single_site_gets_its_name_and_meta_data() {
    let t = tempfile::tempdir().unwrap();
    let token = t.path().join("token");
    fs::write(&token, format!("{TOKEN}\n")).unwrap();
    fs::set_permissions(&token, fs::Permissions::from_mode(0o600)).unwrap();
    let o = edgeforge_in(
        t.path(),
        &[
            "site-media",
            "--definition",
            repo_root()
                .join("images/demo-busybox.yaml")
                .to_str()
                .unwrap(),
            "--site-value",
            "name=kiosk-9",
            "--site-value",
            "palette_endpoint=api.spectrocloud.com",
            "--token-file",
            token.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    assert!(!stdout(&o).contains(TOKEN) && !stderr(&o).contains(TOKEN));
    let iso = t.path().join("build/kiosk-9-user-data.iso");
    assert_eq!(
        iso_extract(&iso, "/meta-data", &t.path().join("md")),
        b"instance-id: kiosk-9\nlocal-hostname: kiosk-9\n"
    );
    let ud = iso_extract(&iso, "/user-data", &t.path().join("ud"));
    assert!(String::from_utf8(ud).unwrap().contains(TOKEN));
}

/// `--fat`: the same files on a FAT image labelled CIDATA (USB sticks).
#[test]
fn fat_writes_a_cidata_fat_image_beside_the_iso() {
    let t = tempfile::tempdir().unwrap();
    let ud = t.path().join("ud.yaml");
    let user_data = b"#cloud-config\nstylus:\n  site:\n    name: usb-site\n";
    fs::write(&ud, user_data).unwrap();
    let make = |out: &Path| {
        assert_ok(&edgeforge(&[
            "site-media",
            "--user-data",
            ud.to_str().unwrap(),
            "--fat",
            "-o",
            out.join("usb.iso").to_str().unwrap(),
        ]))
    };
    let out = t.path().join("out");
    make(&out);
    assert_eq!(
        entries(&out),
        [
            "SHA256SUMS",
            "usb.img",
            "usb.img.sha256",
            "usb.iso",
            "usb.iso.sha256"
        ]
    );
    let img = out.join("usb.img");
    assert_eq!(
        fs::metadata(&img).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let label = run_tool(
        "blkid",
        &["-o", "value", "-s", "LABEL", img.to_str().unwrap()],
        t.path(),
    );
    assert_eq!(label.trim(), "CIDATA");
    for (path, want) in [("::/user-data", &user_data[..]), ("::/meta-data", b"")] {
        let o = std::process::Command::new("mtype")
            .args(["-i", img.to_str().unwrap(), path])
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.stdout, want, "{path}");
    }
    run_tool("fsck.fat", &["-n", img.to_str().unwrap()], t.path());
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));
    let again = t.path().join("again");
    make(&again);
    assert_eq!(
        fs::read(again.join("usb.img")).unwrap(),
        fs::read(&img).unwrap()
    );
    // No work folder or temporary file is left.
    assert!(!entries(&out).iter().any(|e| e.starts_with('.')));
}
