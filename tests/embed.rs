//! Golden ISOs and per-site user-data: embed, show, remove, many sites,
//! verify, the refusals, and the token never leaking outside the ISO.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const TOKEN: &str = "site-TOKEN-7f3a9c1e2b";

fn site_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    fs::write(
        &p,
        format!("name: {name}\npalette_endpoint: api.spectrocloud.com\nproject_name: Default\ntags:\n  store: \"{name}\"\nnetwork:\n  nameserver: 10.0.0.53\n"),
    )
    .unwrap();
    p
}

/// Builds a golden ISO (no user-data) from the demo definition into `dir/build`.
fn golden(dir: &Path) -> PathBuf {
    let def = write_definition(dir, "golden", &demo_base(), "iso:\n  timeout: 0\n");
    let out = dir.join("build");
    let o = edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--golden",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let iso = out.join("palette-edge-installer.iso");
    assert_eq!(
        fs::metadata(&iso).unwrap().permissions().mode() & 0o777,
        0o644,
        "a golden ISO without user-data holds no secret"
    );
    iso
}

#[test]
fn embed_show_boot_and_remove_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let golden = golden(t.path());
    let site = site_file(t.path(), "store-7");
    let out = t.path().join("store-7.iso");
    let o = edgeforge_env(
        &[
            "-v",
            "iso",
            "embed",
            golden.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
            "--token-env",
            "SITE_TOKEN",
            "-o",
            out.to_str().unwrap(),
        ],
        &[("SITE_TOKEN", TOKEN)],
    );
    assert_ok(&o);
    assert!(!stdout(&o).contains(TOKEN) && !stderr(&o).contains(TOKEN));
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600,
        "an ISO holding a token is 0600"
    );
    assert_eq!(
        fs::metadata(&out).unwrap().len(),
        fs::metadata(&golden).unwrap().len()
    );
    run_tool("sha256sum", &["-c", "store-7.iso.sha256"], t.path());

    // Show: masked by default, exact with --reveal.
    let shown = edgeforge(&["iso", "show", out.to_str().unwrap()]);
    assert_ok(&shown);
    let text = stdout(&shown);
    assert!(
        text.contains("volume      COS_LIVE")
            && text.contains("BIOS (El Torito), UEFI (El Torito)"),
        "{text}"
    );
    assert!(
        text.contains("edgeHostToken: ****") && !text.contains(TOKEN),
        "{text}"
    );
    let revealed = stdout(&edgeforge(&[
        "iso",
        "show",
        "--reveal",
        out.to_str().unwrap(),
    ]));
    let user_data = revealed.split("---\n").nth(1).unwrap();
    assert!(
        user_data.contains(&format!("edgeHostToken: \"{TOKEN}\"")),
        "{user_data}"
    );
    assert!(user_data.contains("name: \"store-7\"") && user_data.starts_with("#cloud-config\n"));

    // xorriso (an independent reader) sees the same bytes, as a complete /config.yaml.
    let extracted = t.path().join("config.yaml");
    let area = iso_extract(&out, "/config.yaml", &extracted);
    assert_eq!(area.len(), 64 * 1024);
    assert!(
        area.starts_with(user_data.as_bytes()),
        "the reserved area starts with exactly the shown user-data"
    );

    // It boots, and the boot line carries the new user-data's sha256.
    let want = sha256_hex(user_data.as_bytes());
    let boot = Command::new("bash")
        .arg(repo_root().join("scripts/boot-test.sh"))
        .arg(&out)
        .arg(&want)
        .args(["bios", "uefi"])
        .output()
        .unwrap();
    assert!(
        boot.status.success(),
        "{}{}",
        String::from_utf8_lossy(&boot.stdout),
        String::from_utf8_lossy(&boot.stderr)
    );

    // Removing gives the golden ISO back byte for byte.
    let restored = t.path().join("restored.iso");
    assert_ok(&edgeforge(&[
        "iso",
        "embed",
        out.to_str().unwrap(),
        "--remove",
        "-o",
        restored.to_str().unwrap(),
    ]));
    assert!(
        fs::read(&restored).unwrap() == fs::read(&golden).unwrap(),
        "remove restores the golden ISO"
    );
}

#[test]
fn many_sites_with_checksums_that_verify_catches() {
    let t = tempfile::tempdir().unwrap();
    let golden = golden(t.path());
    let token_file = t.path().join("b.token");
    fs::write(&token_file, "token-for-b\n").unwrap();
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600)).unwrap();
    let sites = t.path().join("sites.yaml");
    fs::write(
        &sites,
        format!(
            "sites:\n  - name: a\n    palette_endpoint: api.spectrocloud.com\n    token_env: TOKEN_A\n  - name: b\n    palette_endpoint: api.spectrocloud.com\n    token_file: {}\n    network:\n      interfaces:\n        eth0: {{type: static, ip_address: 10.1.0.5, mask: \"24\", gateway: 10.1.0.1}}\n",
            token_file.display()
        ),
    )
    .unwrap();
    let dir = t.path().join("sites");
    let o = edgeforge_env(
        &[
            "iso",
            "embed",
            golden.to_str().unwrap(),
            "--sites",
            sites.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
        ],
        &[("TOKEN_A", TOKEN)],
    );
    assert_ok(&o);
    assert_eq!(
        entries(&dir),
        [
            "SHA256SUMS",
            "palette-edge-installer-a.iso",
            "palette-edge-installer-a.iso.sha256",
            "palette-edge-installer-b.iso",
            "palette-edge-installer-b.iso.sha256"
        ]
    );
    let b = stdout(&edgeforge(&[
        "iso",
        "show",
        "--reveal",
        dir.join("palette-edge-installer-b.iso").to_str().unwrap(),
    ]));
    assert!(
        b.contains("edgeHostToken: \"token-for-b\"") && b.contains("ipAddress: \"10.1.0.5\""),
        "{b}"
    );

    let v = edgeforge(&["verify", dir.to_str().unwrap()]);
    assert_ok(&v);
    assert_eq!(
        stdout(&v),
        "palette-edge-installer-a.iso: OK\npalette-edge-installer-b.iso: OK\n"
    );
    run_tool("sha256sum", &["-c", "SHA256SUMS"], &dir);

    // A flipped byte is caught and named.
    let victim = dir.join("palette-edge-installer-b.iso");
    let mut bytes = fs::read(&victim).unwrap();
    bytes[40_000] ^= 1;
    fs::write(&victim, bytes).unwrap();
    let v = edgeforge(&["verify", dir.join("SHA256SUMS").to_str().unwrap()]);
    assert_fails(&v, 7, &["1 of 2 artifacts"]);
    assert!(
        stdout(&v).contains("palette-edge-installer-b.iso: FAILED"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn embedding_refuses_what_does_not_fit_or_is_not_golden() {
    let t = tempfile::tempdir().unwrap();
    let golden = golden(t.path());
    let big = t.path().join("big.yaml");
    let mut text = String::from("#cloud-config\nstylus:\n  site:\n    name: big\n");
    while text.len() < 70_000 {
        text.push_str("# padding comment line to exceed the reserved area\n");
    }
    fs::write(&big, &text).unwrap();
    let out = t.path().join("big.iso");
    let o = edgeforge(&[
        "iso",
        "embed",
        golden.to_str().unwrap(),
        "--user-data",
        big.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_fails(
        &o,
        3,
        &[
            "holds at most 65476 bytes of user-data",
            "set iso.reserved_area in the definition and rebuild the golden ISO",
        ],
    );
    assert!(!out.exists());
    assert!(entries(t.path()).iter().all(|e| !e.ends_with(".partial")));

    // A plain (non-golden) ISO has no reserved area.
    let def = write_definition(t.path(), "plain", &demo_base(), "");
    let ud = t.path().join("ud.yaml");
    fs::write(&ud, "#cloud-config\n").unwrap();
    let plain = t.path().join("plain");
    assert_ok(&edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
    ]));
    let o = edgeforge(&[
        "iso",
        "embed",
        plain.join("palette-edge-installer.iso").to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["is not a golden ISO", "--golden"]);
}

#[test]
fn a_truncated_golden_iso_is_refused_by_embed_and_flagged_by_show() {
    let t = tempfile::tempdir().unwrap();
    let golden = golden(t.path());
    let ud = t.path().join("ud.yaml");
    fs::write(&ud, "#cloud-config\n").unwrap();
    let full = fs::read(&golden).unwrap();
    // 4 KiB: the backup GPT header is gone; 70 KiB: part of the EFI
    // partition too. /config.yaml itself is intact in both.
    for cut in [4096, 70 * 1024] {
        let dir = t.path().join(format!("cut-{cut}"));
        fs::create_dir(&dir).unwrap();
        let cut_iso = dir.join("golden.iso");
        fs::write(&cut_iso, &full[..full.len() - cut]).unwrap();
        let out = dir.join("site.iso");
        let o = edgeforge(&[
            "iso",
            "embed",
            cut_iso.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_fails(
            &o,
            7,
            &[
                &format!("{} is damaged", cut_iso.display()),
                &format!(
                    "ISO 9660 volume is {} bytes, the file only {}",
                    full.len(),
                    full.len() - cut
                ),
                "backup GPT header",
                "copy it again",
            ],
        );
        assert_eq!(entries(&dir), ["golden.iso"], "nothing written");
        let o = edgeforge(&["iso", "show", cut_iso.to_str().unwrap()]);
        assert_fails(&o, 7, &[&format!("{} is damaged", cut_iso.display())]);
    }

    // The same size, the backup GPT header overwritten: damaged too.
    let mut zeroed = full.clone();
    let n = zeroed.len();
    zeroed[n - 512..].fill(0);
    let zeroed_iso = t.path().join("zeroed.iso");
    fs::write(&zeroed_iso, zeroed).unwrap();
    let o = edgeforge(&["iso", "show", zeroed_iso.to_str().unwrap()]);
    assert_fails(&o, 7, &["backup GPT header", "is damaged"]);
}

#[test]
fn the_token_appears_only_in_the_iso_and_the_0600_user_data_file() {
    let t = tempfile::tempdir().unwrap();
    let def = write_definition(t.path(), "tok", &demo_base(), "");
    let site = site_file(t.path(), "leak-check");
    let out = t.path().join("build");
    let env = [("SITE_TOKEN", TOKEN)];
    let mut outputs = vec![];
    let (d, s, o) = (
        def.to_str().unwrap(),
        site.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for args in [
        vec![
            "-v",
            "build",
            d,
            "--site",
            s,
            "--token-env",
            "SITE_TOKEN",
            "--out",
            o,
        ],
        vec![
            "-v",
            "user-data",
            "render",
            d,
            "--site",
            s,
            "--token-env",
            "SITE_TOKEN",
        ],
        vec![
            "-v",
            "render",
            d,
            "--out",
            t.path().join("rendered").to_str().unwrap(),
        ],
        vec![
            "iso",
            "show",
            t.path()
                .join("build/palette-edge-installer.iso")
                .to_str()
                .unwrap(),
        ],
        vec!["-v", "verify", o],
    ] {
        let r = edgeforge_env(&args, &env);
        assert_ok(&r);
        outputs.push(r);
    }
    let ud_file = t.path().join("user-data.yaml");
    let r = edgeforge_env(
        &[
            "-v",
            "user-data",
            "render",
            d,
            "--site",
            s,
            "--token-env",
            "SITE_TOKEN",
            "-o",
            ud_file.to_str().unwrap(),
        ],
        &env,
    );
    assert_ok(&r);
    outputs.push(r);
    // --token is refused, without echoing the value.
    let r = edgeforge_env(
        &["user-data", "render", d, "--site", s, "--token", TOKEN],
        &[],
    );
    assert_fails(&r, 8, &["--token is refused", "--token-env"]);
    outputs.push(r);

    for r in &outputs {
        assert!(
            !stdout(r).contains(TOKEN) && !stderr(r).contains(TOKEN),
            "token printed:\n{}\n{}",
            stdout(r),
            stderr(r)
        );
    }
    assert_eq!(
        fs::metadata(&ud_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&ud_file).unwrap().contains(TOKEN));

    // Every file written, except the ISO and the 0600 user-data file, is free of the token.
    let mut holders = vec![];
    for entry in walk(t.path()) {
        let bytes = fs::read(&entry).unwrap();
        if bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()) {
            holders.push(entry.strip_prefix(t.path()).unwrap().display().to_string());
            assert_eq!(
                fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
                0o600,
                "{} holds the token",
                entry.display()
            );
        }
    }
    holders.sort();
    assert_eq!(
        holders,
        ["build/palette-edge-installer.iso", "user-data.yaml"]
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}
