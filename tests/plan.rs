//! `plan` over the shipped definitions, and `build --variant`.

mod support;

use std::fs;

use support::*;

fn shipped() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo_root().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml")
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .contains("user-data")
        })
        .map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

fn tag_follows_rule(tag: &str) -> bool {
    // <k8s-distribution>-<k8s-version>-<agent-version>[-<custom_tag>]
    let dists = [
        "kubeadm-fips",
        "k3s",
        "rke2",
        "kubeadm",
        "nodeadm",
        "canonical",
    ];
    let Some(rest) = dists
        .iter()
        .find_map(|d| tag.strip_prefix(&format!("{d}-")))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(3, '-').collect();
    let semver = |s: &str| {
        s.split('.').count() == 3
            && s.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    parts.len() >= 2 && semver(parts[0]) && parts[1].starts_with('v') && semver(&parts[1][1..])
}

#[test]
fn plan_json_lists_every_variant_with_rule_following_tags_and_input_digests() {
    demo_base();
    debian_base();
    let defs = shipped();
    assert!(defs.len() >= 4, "{defs:?}");
    let mut args = vec!["plan", "--format", "json"];
    args.extend(defs.iter().map(String::as_str));
    let o = edgeforge(&args);
    assert_ok(&o);
    let plan: serde_json::Value =
        serde_json::from_str(&stdout(&o)).expect("plan --format json is JSON");
    let variants = plan["variants"].as_array().unwrap();
    // demo and demo-busybox (1 each) + k3s, rke2, kubeadm (3 versions each).
    assert_eq!(variants.len(), 11);
    let mut names = std::collections::HashSet::new();
    for v in variants {
        let tag = v["tag"].as_str().unwrap();
        assert!(tag_follows_rule(tag), "{tag}");
        assert!(v["reference"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{tag}")));
        assert!(
            names.insert(v["variant"].as_str().unwrap().to_string()),
            "variant names are unique"
        );
        assert!(
            names.insert(v["iso"].as_str().unwrap().to_string()),
            "ISO names are unique"
        );
        let inputs = v["inputs"].as_object().unwrap();
        for key in [
            "definition",
            "base_image",
            "templates",
            "overlays.rootfs[0]",
        ] {
            let d = inputs[key].as_str().unwrap();
            assert!(d.starts_with("sha256:") && d.len() == 71, "{key}: {d}");
        }
    }
    let k3s: Vec<&str> = variants
        .iter()
        .filter(|v| v["kubernetes"].as_str().unwrap().starts_with("k3s "))
        .map(|v| v["tag"].as_str().unwrap())
        .collect();
    assert!(k3s.contains(&"k3s-1.31.1-v4.5.0"), "{k3s:?}");

    let o = edgeforge(&[
        "plan",
        "--format",
        "github",
        "images/ubuntu-22.04-rke2.yaml",
    ]);
    assert_ok(&o);
    let gh: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(gh["include"].as_array().unwrap().len(), 3);
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "one line for a GitHub output"
    );
}

#[test]
fn build_variant_builds_just_that_variant() {
    let t = tempfile::tempdir().unwrap();
    demo_base();
    let out = t.path().join("out");
    let ud = repo_root().join("images/user-data/demo.yaml");
    let o = edgeforge(&[
        "build",
        "images/ubuntu-22.04-k3s.yaml",
        "--variant",
        "edge-ubuntu-k3s-1.30.5-v4.5.0",
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let files = entries(&out);
    assert!(
        files.contains(&"edge-ubuntu-k3s-1.30.5-v4.5.0.oci.tar".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"palette-edge-installer-ubuntu-22.04-k3s-1.30.5-v4.5.0.iso".to_string()),
        "{files:?}"
    );
    assert_eq!(files.iter().filter(|f| f.ends_with(".oci.tar")).count(), 1);

    let o = edgeforge(&[
        "build",
        "images/ubuntu-22.04-k3s.yaml",
        "--variant",
        "nope",
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 2, &["no variant `nope`", "ubuntu-k3s-1.29.9-v4.5.0"]);
}

#[test]
fn doctor_lists_every_tool_with_its_version_or_package() {
    let o = edgeforge(&["doctor"]);
    assert_ok(&o);
    let text = stdout(&o);
    for tool in [
        "xorriso",
        "mksquashfs",
        "mformat",
        "grub-mkimage",
        "skopeo",
        "umoci",
        "qemu-system-x86_64",
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(tool))
            .unwrap_or_else(|| panic!("{tool} not listed:\n{text}"));
        assert!(line.starts_with("ok "), "{line}");
    }
    assert!(text.contains("xorriso 1.5"), "versions are shown:\n{text}");

    let o = edgeforge_env(&["doctor"], &[("PATH", "/nonexistent")]);
    assert_fails(
        &o,
        4,
        &["apt-get install xorriso squashfs-tools mtools grub-common"],
    );
    assert!(stdout(&o).contains("MISSING  xorriso"), "{}", stdout(&o));
}

#[test]
fn json_outputs_parse_agree_with_the_artifacts_and_hold_no_token() {
    let t = tempfile::tempdir().unwrap();
    demo_base();
    let token = "json-TOKEN-0c4e11";
    let site = t.path().join("site.yaml");
    fs::write(
        &site,
        "name: json-site\npalette_endpoint: api.spectrocloud.com\n",
    )
    .unwrap();
    let out = t.path().join("out");
    let run = |args: &[&str]| edgeforge_env(args, &[("T", token)]);
    let o = run(&[
        "--output",
        "json",
        "build",
        "images/demo-busybox.yaml",
        "--site",
        site.to_str().unwrap(),
        "--token-env",
        "T",
        "--set",
        "proxy.http_proxy=http://bob:hunter2@proxy:3128",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let built: serde_json::Value =
        serde_json::from_str(&stdout(&o)).expect("build --output json is JSON");
    assert_eq!(built["schema"], "edgeforge.build/v1");
    let manifest = built["manifest"].clone();
    let on_disk: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest, on_disk);
    assert_eq!(manifest["schema"], "edgeforge.build-manifest/v1");
    assert_eq!(manifest["source_date_epoch"], EPOCH.parse::<u64>().unwrap());
    assert!(manifest["tools"]["xorriso"]
        .as_str()
        .unwrap()
        .starts_with("xorriso 1.5"));
    assert_eq!(
        manifest["definition"]["proxy"]["http_proxy"],
        "http://bob:****@proxy:3128"
    );
    for key in [
        "definition",
        "base_image",
        "templates",
        "overlays.rootfs[0]",
        "overlays.iso[0]",
    ] {
        assert!(
            manifest["inputs"][key]
                .as_str()
                .unwrap()
                .starts_with("sha256:"),
            "{key}"
        );
    }
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let outputs = manifest["outputs"].as_array().unwrap();
    // The provider image, the ISO, an SBOM of each, the provenance.
    assert_eq!(outputs.len(), 5);
    for o in outputs {
        let name = o["name"].as_str().unwrap();
        assert!(
            sums.contains(&format!("{}  {name}", o["sha256"].as_str().unwrap())),
            "{name}"
        );
        assert_eq!(
            o["size"].as_u64().unwrap(),
            fs::metadata(out.join(name)).unwrap().len()
        );
    }

    let v = run(&["--output", "json", "verify", out.to_str().unwrap()]);
    assert_ok(&v);
    let v: serde_json::Value = serde_json::from_str(&stdout(&v)).unwrap();
    assert_eq!(v["ok"], true);
    // The provider image, the ISO, an SBOM of each, the provenance.
    assert_eq!(v["results"].as_array().unwrap().len(), 5);

    let s = run(&[
        "--output",
        "json",
        "iso",
        "show",
        out.join("palette-edge-installer.iso").to_str().unwrap(),
    ]);
    assert_ok(&s);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&s)).unwrap();
    assert_eq!(shown["volume"], "COS_LIVE");
    assert_eq!(shown["sha256_file"], "matches");
    assert!(shown["user_data"]["content"]
        .as_str()
        .unwrap()
        .contains("edgeHostToken: ****"));

    let p = run(&["--output", "json", "plan", "images/demo-busybox.yaml"]);
    assert_ok(&p);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&p)).unwrap()["variants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for r in [&o, &s, &p] {
        assert!(
            !stdout(r).contains(token)
                && !stderr(r).contains(token)
                && !stdout(r).contains("hunter2")
        );
    }
    assert!(!fs::read_to_string(out.join("manifest.json"))
        .unwrap()
        .contains(token));

    // The template context `render` writes for people masks the proxy password too.
    let rendered = t.path().join("rendered");
    assert_ok(&run(&[
        "render",
        "images/demo-busybox.yaml",
        "--set",
        "proxy.http_proxy=http://bob:hunter2@proxy:3128",
        "--out",
        rendered.to_str().unwrap(),
    ]));
    let ctx =
        fs::read_to_string(rendered.join("ubuntu-k3s-1.30.5-v4.5.0-demo/context.json")).unwrap();
    assert!(
        ctx.contains("http://bob:****@proxy:3128") && !ctx.contains("hunter2"),
        "{ctx}"
    );
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definition() {
    let t = tempfile::tempdir().unwrap();
    let o = edgeforge(&["completions", "bash"]);
    assert_ok(&o);
    let script = t.path().join("edgeforge.bash");
    fs::write(&script, stdout(&o)).unwrap();
    run_tool("bash", &["-n", script.to_str().unwrap()], t.path());
    for sub in ["provider-image", "iso", "embed", "plan", "doctor", "verify"] {
        assert!(stdout(&o).contains(sub), "{sub}");
    }
    let m = edgeforge(&["man"]);
    assert_ok(&m);
    assert!(
        stdout(&m).contains(".TH edgeforge 1") && stdout(&m).contains("provider\\-image"),
        "{}",
        &stdout(&m)[..200]
    );
}

/// A definition with one component (`files` under `dir/component`, placed at
/// `destination`) and a rootfs overlay holding `etc/motd`. Returns the
/// definition and the overlay's `etc` folder.
fn with_component_and_overlay(
    dir: &std::path::Path,
    destination: &str,
    files: &[(&str, &[u8])],
    motd: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let comp = dir.join("component");
    for (rel, bytes) in files {
        let p = comp.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    let ov = dir.join("overlay/etc");
    fs::create_dir_all(&ov).unwrap();
    fs::write(ov.join("motd"), motd).unwrap();
    let def = write_definition(
        dir,
        "with-component",
        &demo_base(),
        &format!(
            "components:\n  - source: {}\n    destination: {destination}\noverlays:\n  rootfs: [{}]\n",
            comp.display(),
            dir.join("overlay").display()
        ),
    );
    (def, ov)
}

#[test]
fn a_rebuild_with_one_overlay_file_changed_reuses_the_other_layers_and_matches_a_clean_build() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let (def, ov) = with_component_and_overlay(
        t.path(),
        "/opt/agent",
        &[("bin/agent", &[42u8; 200_000])],
        "first\n",
    );
    let build = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "-v",
            "--cache-dir",
            cache.to_str().unwrap(),
            "provider-image",
            def.to_str().unwrap(),
            "--out",
        ];
        let out = t.path().join(out);
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let o = edgeforge(&args);
        assert_ok(&o);
        (
            stderr(&o),
            fs::read(out.join("ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar")).unwrap(),
        )
    };
    let (log1, _) = build("one", &[]);
    assert!(
        log1.contains("layer components[0]") && !log1.contains("cached"),
        "{log1}"
    );
    fs::write(ov.join("motd"), "second\n").unwrap();
    let (log2, rebuilt) = build("two", &[]);
    let component_line = log2
        .lines()
        .find(|l| l.contains("layer components[0]"))
        .unwrap();
    assert!(
        component_line.ends_with("cached)"),
        "the component layer is reused: {log2}"
    );
    let overlay_line = log2
        .lines()
        .find(|l| l.contains("layer overlays.rootfs"))
        .unwrap();
    assert!(
        !overlay_line.contains("cached"),
        "the changed overlay is rebuilt: {log2}"
    );
    let (_, clean) = build("three", &["--no-cache"]);
    assert!(
        rebuilt == clean,
        "a cached rebuild gives the bytes of a clean build"
    );

    let p = edgeforge(&[
        "--cache-dir",
        cache.to_str().unwrap(),
        "cache",
        "prune",
        "--all",
    ]);
    assert_ok(&p);
    assert!(
        stdout(&p).contains(
            "removed 1 base image views, 3 cached layers, 1 flattened trees, 0 root filesystems, 0 boot image sets and 0 pulled registry images"
        ),
        "{}",
        stdout(&p)
    );
}

#[test]
fn progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise() {
    let t = tempfile::tempdir().unwrap();
    demo_base();
    let ud = repo_root().join("images/user-data/demo.yaml");
    let plain = edgeforge(&[
        "--no-cache",
        "build",
        "images/demo-busybox.yaml",
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        t.path().join("a").to_str().unwrap(),
    ]);
    assert_ok(&plain);
    let err = stderr(&plain);
    assert!(
        !err.contains('\x1b') && !err.contains('\r'),
        "no terminal control codes in logs:\n{err}"
    );
    assert!(
        err.contains("rootfs.squashfs (zstd level 3) ...")
            && err.contains("palette-edge-installer.iso done in"),
        "{err}"
    );

    // Under a pseudo-terminal (util-linux `script`), indicatif draws its spinner.
    let cmd = format!(
        "{} --no-cache build images/demo-busybox.yaml --user-data {} --out {}",
        env!("CARGO_BIN_EXE_edgeforge"),
        ud.display(),
        t.path().join("b").display()
    );
    let typescript = t.path().join("typescript");
    let o = std::process::Command::new("script")
        .args(["-qfec", &cmd, typescript.to_str().unwrap()])
        .current_dir(repo_root())
        .env("EDGEFORGE_CACHE_DIR", test_cache())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tty = String::from_utf8_lossy(&fs::read(&typescript).unwrap()).into_owned();
    assert!(tty.contains("\x1b[") && tty.contains("writing "), "{tty}");
}

#[test]
fn an_iso_rebuilt_with_other_user_data_reuses_the_cached_squashfs() {
    let t = tempfile::tempdir().unwrap();
    demo_base();
    let cache = t.path().join("cache");
    let ud2 = t.path().join("ud2.yaml");
    fs::write(&ud2, "#cloud-config\nstylus:\n  site:\n    name: second\n").unwrap();
    let ud1 = repo_root().join("images/user-data/demo.yaml");
    let out = t.path().join("out");
    let run = |args: &[&str]| {
        let o = edgeforge(args);
        assert_ok(&o);
        stderr(&o)
    };
    let c = cache.to_str().unwrap();
    let first = run(&[
        "--cache-dir",
        c,
        "build",
        "images/demo-busybox.yaml",
        "--user-data",
        ud1.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        first.contains("flattened") && !first.contains("boot images cached"),
        "{first}"
    );
    let second = run(&[
        "--cache-dir",
        c,
        "iso",
        "images/demo-busybox.yaml",
        "--user-data",
        ud2.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        second.contains("rootfs.squashfs (zstd level 3), cached for sha256:")
            && second.contains("(boot images cached)")
            && !second.contains("flattened"),
        "{second}"
    );
    let clean = t.path().join("clean");
    let archive = out.join("ubuntu-k3s-1.30.5-v4.5.0-demo.oci.tar");
    run(&[
        "--no-cache",
        "iso",
        "images/demo-busybox.yaml",
        "--user-data",
        ud2.to_str().unwrap(),
        "--provider-image",
        archive.to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
    ]);
    assert!(
        fs::read(out.join("palette-edge-installer.iso")).unwrap()
            == fs::read(clean.join("palette-edge-installer.iso")).unwrap(),
        "an ISO from the cached squashfs equals one built without the cache"
    );
    // The FAT image carries the epoch: another epoch builds the boot images anew.
    let third = run(&[
        "--cache-dir",
        c,
        "--source-date-epoch",
        "1700000001",
        "iso",
        "images/demo-busybox.yaml",
        "--user-data",
        ud2.to_str().unwrap(),
        "--provider-image",
        archive.to_str().unwrap(),
        "--out",
        t.path().join("third").to_str().unwrap(),
    ]);
    assert!(!third.contains("boot images cached"), "{third}");
    // The tree is keyed by the epoch too (folders no layer describes get it).
    let pruned = edgeforge(&["--cache-dir", c, "cache", "prune", "--all"]);
    assert!(
        stdout(&pruned).contains(
            "2 flattened trees, 2 root filesystems, 2 boot image sets and 0 pulled registry images"
        ),
        "{}",
        stdout(&pruned)
    );
    for kind in ["trees", "rootfs", "boot"] {
        assert!(!cache.join(kind).read_dir().unwrap().any(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')));
    }
}

#[test]
fn the_manifest_lists_the_packages_installed_in_the_rootfs() {
    let t = tempfile::tempdir().unwrap();
    let dpkg = t.path().join("pkgdb/var/lib/dpkg");
    fs::create_dir_all(&dpkg).unwrap();
    fs::write(
        dpkg.join("status"),
        "Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.35.0-4\n\nPackage: removed-one\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 2.0\n\nPackage: k3s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.30.5+k3s1\n",
    )
    .unwrap();
    let def = write_definition(
        t.path(),
        "pkgs",
        &demo_base(),
        &format!(
            "components:\n  - source: {}\n",
            t.path().join("pkgdb").display()
        ),
    );
    let out = t.path().join("out");
    let ud = repo_root().join("images/user-data/demo.yaml");
    assert_ok(&edgeforge(&[
        "build",
        def.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let iso = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "iso")
        .unwrap();
    let purls: Vec<&str> = iso["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["purl"].as_str().unwrap())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/ubuntu/busybox-static@1%3A1.35.0-4?arch=amd64",
            "pkg:deb/ubuntu/k3s@1.30.5+k3s1?arch=amd64"
        ]
    );
}

#[test]
fn an_iso_rebuilt_after_an_overlay_change_reuses_the_cached_lower_tree_and_matches_a_clean_build() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let (def, ov) = with_component_and_overlay(
        t.path(),
        "/",
        &[
            ("etc/motd", b"from the component\n"),
            ("etc/issue", b"component issue\n"),
        ],
        "overlay 1\n",
    );
    let ud = repo_root().join("images/user-data/demo.yaml");
    let build = |out: &str, extra: &[&str]| {
        let out = t.path().join(out);
        let mut args = vec!["--cache-dir", cache.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend([
            "build",
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let o = edgeforge(&args);
        assert_ok(&o);
        (stderr(&o), out.join("palette-edge-installer.iso"))
    };
    let file_in = |iso: &std::path::Path, path: &str| {
        let sq = iso.with_extension("squashfs");
        iso_extract(iso, "/rootfs.squashfs", &sq);
        run_tool(
            "unsquashfs",
            &["-cat", sq.to_str().unwrap(), path],
            t.path(),
        )
    };
    // The provider image stage flattens the base once (reading where the
    // component goes); the ISO stage starts from that tree.
    let (first, _) = build("one", &[]);
    assert!(
        first.contains("flattened (") && first.contains("(cached tree, "),
        "{first}"
    );
    fs::write(ov.join("motd"), "overlay 2\n").unwrap();
    let (second, rebuilt) = build("two", &[]);
    assert!(
        second.contains("(cached tree, "),
        "the lower tree is reused:\n{second}"
    );
    assert_eq!(file_in(&rebuilt, "etc/motd"), "overlay 2\n");

    // The cached tree is the base's: the component and the overlay go on
    // top in each build, their files into the build's own spool.
    let trees: Vec<_> = fs::read_dir(cache.join("trees"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(trees.len(), 1);
    let data = fs::read(trees[0].join("data")).unwrap();
    let holds = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    assert!(holds(BASE_FILE) && !holds(b"from the component") && !holds(b"overlay 2"));

    let (_, clean) = build("three", &["--no-cache"]);
    assert!(
        fs::read(&rebuilt).unwrap() == fs::read(&clean).unwrap(),
        "an ISO from the cached tree equals one built from a clean flatten"
    );

    // A cached tree whose file lost its data (as after a crash) is not used.
    let data_file = trees[0].join("data");
    let at = data
        .windows(BASE_FILE.len())
        .position(|w| w == BASE_FILE)
        .unwrap();
    let mut damaged = data.clone();
    damaged[at..at + 9].copy_from_slice(b"\0\0\0\0\0\0\0\0\0");
    fs::write(&data_file, damaged).unwrap();
    fs::write(ov.join("motd"), "overlay 3\n").unwrap();
    let (fourth, repaired) = build("four", &[]);
    assert!(fourth.contains("is damaged"), "{fourth}");
    assert_eq!(file_in(&repaired, "etc/issue"), "component issue\n");
    assert!(file_in(&repaired, "etc/os-release").contains("Kairos demo base"));
}

/// Bytes of the demo base's /etc/os-release (scripts/make-demo-base.sh).
const BASE_FILE: &[u8] = b"PRETTY_NAME=\"Kairos demo base";

/// Flips one bit in the middle of `path` in place, keeping its size and
/// mtime, as bit rot or a stray write would.
fn flip_a_byte(path: &std::path::Path) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = fs::read(path).unwrap();
    assert!(!bytes.is_empty(), "{}", path.display());
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

/// The entries of one kind in a cache folder (not the hidden temporaries).
fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn a_damaged_cache_entry_of_any_kind_is_rebuilt_with_a_warning_and_never_used() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let (def, _) = with_component_and_overlay(
        t.path(),
        "/",
        &[
            ("etc/issue", b"component issue\n"),
            ("opt/blob", &[7u8; 100_000]),
        ],
        "motd\n",
    );
    let ud = repo_root().join("images/user-data/demo.yaml");
    let build = |out: &str, extra: &[&str]| {
        let out = t.path().join(out);
        let mut args = vec!["--cache-dir", cache.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend([
            "build",
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let o = edgeforge(&args);
        assert_ok(&o);
        let read = |name: &str| fs::read(out.join(name)).unwrap();
        (
            stderr(&o),
            read("palette-edge-installer.iso"),
            read("ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar"),
        )
    };
    let (_, clean_iso, clean_archive) = build("clean", &["--no-cache"]);
    let (first, _, _) = build("first", &[]);
    assert!(!first.contains("damaged"), "{first}");

    let entry = |kind: &str| {
        let v = cache_entries(&cache.join(kind));
        assert_eq!(v.len(), 1, "{kind}: {v:?}");
        v[0].clone()
    };
    let layers: Vec<_> = cache_entries(&cache.join("layers"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(layers.len(), 2, "the component and the overlay layer");
    let (rootfs, boot, tree) = (entry("rootfs"), entry("boot"), entry("trees"));
    // The base's view that new layers are placed on (read when a layer is built).
    let view = entry("lower-views");
    // Each round damages entries of several kinds at once; the rootfs entry
    // is damaged in each, so the lower tree is consulted too.
    let rounds: Vec<Vec<std::path::PathBuf>> = vec![
        vec![
            layers[0].clone(),
            layers[1].clone(),
            rootfs.join("root"),
            boot.join("eltorito.img"),
            tree.join("data"),
            view.join("entry.json"),
        ],
        vec![
            rootfs.join("kernel"),
            boot.join("uefi.img"),
            tree.join("index.tar"),
        ],
        vec![rootfs.join("initrd"), rootfs.join("entry.json")],
    ];
    for (i, damaged) in rounds.iter().enumerate() {
        for f in damaged {
            flip_a_byte(f);
        }
        let (log, iso, archive) = build(&format!("round{i}"), &[]);
        for f in damaged {
            // The entry: cache/<kind>/<key> (a layer: its blob).
            let entry = f
                .ancestors()
                .find(|a| a.parent().and_then(|p| p.parent()) == Some(cache.as_path()))
                .unwrap()
                .display()
                .to_string();
            assert!(
                log.lines().any(|l| l.contains("warning:")
                    && l.contains("is damaged")
                    && l.contains(&entry)),
                "round {i}: no warning for {}:\n{log}",
                f.display()
            );
        }
        assert!(
            archive == clean_archive,
            "round {i}: the provider image equals a --no-cache build"
        );
        assert!(
            iso == clean_iso,
            "round {i}: the ISO equals a --no-cache build"
        );
        // The damaged entries were built anew: the next build uses them.
        let (next, iso, _) = build(&format!("round{i}-next"), &[]);
        assert!(!next.contains("damaged"), "round {i}, next build:\n{next}");
        assert!(
            next.contains("(cached tree, ") || next.contains("cached for sha256:"),
            "{next}"
        );
        assert!(iso == clean_iso, "round {i}: the next ISO too");
    }
}

/// A running edgeforge in its own process group (so a kill takes the host
/// tools it runs too), its stderr lines read on a thread.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: String,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_edgeforge"));
        c.args(args)
            .current_dir(repo_root())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("EDGEFORGE_CACHE_DIR", test_cache())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("running edgeforge");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in stderr.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            log: String::new(),
        }
    }

    /// Reads stderr up to a line containing `needle` (true) or to its end.
    fn wait_for(&mut self, needle: &str) -> bool {
        while let Ok(l) = self.lines.recv() {
            self.log += &l;
            self.log.push('\n');
            if l.contains(needle) {
                return true;
            }
        }
        false
    }

    /// kill -9 of the run and every process it started.
    fn kill(mut self) {
        // SAFETY: plain syscall; the group is the child's own.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        self.child.wait().unwrap();
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        self.wait_for("\0never");
        (self.child.wait().unwrap(), self.log)
    }
}

/// Every visible file of an output folder with its bytes.
fn artifact_set(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    entries(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let bytes = fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

fn hidden_entries(dir: &std::path::Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_rebuild_killed_at_any_point_leaves_the_old_set_the_new_set_or_one_verify_rejects() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let (def, ov) =
        with_component_and_overlay(t.path(), "/", &[("etc/issue", b"component\n")], "old\n");
    let ud = repo_root().join("images/user-data/demo.yaml");
    let args = |out: &std::path::Path| -> Vec<String> {
        [
            "--cache-dir",
            cache.to_str().unwrap(),
            "build",
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let build = |out: &std::path::Path| {
        let a = args(out);
        let o = edgeforge(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_ok(&o);
    };
    let verifies = |dir: &std::path::Path| edgeforge(&["verify", dir.to_str().unwrap()]);
    let old = t.path().join("old");
    build(&old);
    fs::write(ov.join("motd"), "new\n").unwrap();
    let new = t.path().join("new");
    build(&new);
    let (old_set, new_set) = (artifact_set(&old), artifact_set(&new));
    for name in new_set.keys() {
        assert!(
            name == "SHA256SUMS" || old_set[name] != new_set[name],
            "{name} changes in the rebuild"
        );
    }

    // The provider image, its .sha256, the ISO, its .sha256, their SBOMs
    // and the provenance with theirs, manifest.json, then SHA256SUMS: 12
    // renames; commit-N pauses before the N-th.
    let mut points = vec![("mid-run".to_string(), "rootfs.squashfs (".to_string())];
    points.extend((0..=12).map(|n| (format!("commit-{n}"), format!("test pause at commit-{n}"))));
    for (point, needle) in points {
        let dir = t.path().join(format!("killed-{point}"));
        copy_tree(&old, &dir);
        let a = args(&dir);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut run = Running::start(&a, &[("EDGEFORGE_TEST_PAUSE_AT", &point)]);
        assert!(
            run.wait_for(&needle),
            "{point} was not reached:\n{}",
            run.log
        );
        run.kill();
        let left = artifact_set(&dir);
        let v = verifies(&dir);
        let names: Vec<&String> = left.keys().collect();
        match point.as_str() {
            "commit-0" => assert!(left == old_set, "before any rename: the old set"),
            "commit-12" => assert!(left == new_set, "after SHA256SUMS: the new set"),
            "mid-run" => assert!(
                !v.status.success() || left == old_set || left == new_set,
                "{point}: verify passed on a mixed set {names:?}:\n{}",
                stdout(&v)
            ),
            _ => assert_eq!(
                v.status.code(),
                Some(7),
                "{point}: verify must fail on {names:?}:\n{}",
                stdout(&v)
            ),
        }
        if left == old_set || left == new_set {
            assert_ok(&v);
        }

        // The next run removes what the killed one left and commits its set.
        let o = edgeforge(&a);
        assert_ok(&o);
        assert_eq!(hidden_entries(&dir), Vec::<String>::new(), "{point}");
        assert!(artifact_set(&dir) == new_set, "{point}: the next run's set");
        assert_ok(&verifies(&dir));
    }
}

#[test]
fn builds_into_one_folder_wait_for_each_other_and_keep_every_checksum() {
    let t = tempfile::tempdir().unwrap();
    demo_base();
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    // Hold the folder's lock as a run in progress would.
    let lock = fs::File::create(out.join(".edgeforge.lock")).unwrap();
    lock.lock().unwrap();
    let ud = repo_root().join("images/user-data/demo.yaml");
    let variants = [
        "edge-ubuntu-k3s-1.30.5-v4.5.0",
        "edge-ubuntu-k3s-1.29.9-v4.5.0",
    ];
    let mut runs: Vec<Running> = variants
        .iter()
        .map(|v| {
            Running::start(
                &[
                    "build",
                    "images/ubuntu-22.04-k3s.yaml",
                    "--variant",
                    v,
                    "--user-data",
                    ud.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ],
                &[],
            )
        })
        .collect();
    for r in &mut runs {
        assert!(
            r.wait_for("waiting for another edgeforge run writing into"),
            "{}",
            r.log
        );
    }
    assert_eq!(
        entries(&out),
        [".edgeforge.lock"],
        "nothing written while waiting"
    );
    drop(lock);
    for r in runs {
        let (status, log) = r.finish();
        assert!(status.success(), "{log}");
    }
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for v in variants {
        let tag = v.strip_prefix("edge-ubuntu-").unwrap();
        for name in [
            format!("{v}.oci.tar"),
            format!("palette-edge-installer-ubuntu-22.04-{tag}.iso"),
        ] {
            assert!(sums.contains(&format!("  {name}\n")), "{name} in:\n{sums}");
        }
    }
    // Two variants' provider images and ISOs, an SBOM of each, and the
    // last run's provenance.
    assert_eq!(sums.lines().count(), 9, "{sums}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["outputs"].as_array().unwrap().len(), 5);
    let v = edgeforge(&["verify", out.to_str().unwrap()]);
    assert_ok(&v);
    assert_eq!(hidden_entries(&out), Vec::<String>::new());
}

#[test]
fn a_build_failing_after_the_provider_image_leaves_the_folder_as_it_was_and_removes_leftovers() {
    let t = tempfile::tempdir().unwrap();
    let (def, ov) =
        with_component_and_overlay(t.path(), "/", &[("etc/issue", b"component\n")], "old\n");
    let iso_overlay = t.path().join("iso-overlay");
    fs::create_dir_all(&iso_overlay).unwrap();
    fs::write(iso_overlay.join("note.txt.tera"), "{{ iso_name }}\n").unwrap();
    let mut text = fs::read_to_string(&def).unwrap();
    text = text.replace(
        "overlays:\n",
        &format!("overlays:\n  iso: [{}]\n", iso_overlay.display()),
    );
    fs::write(&def, text).unwrap();
    let ud = repo_root().join("images/user-data/demo.yaml");
    let out = t.path().join("out");
    let build = |ud: &std::path::Path, cmd: &str| {
        edgeforge(&[
            cmd,
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    assert_ok(&build(&ud, "build"));
    let old_set = artifact_set(&out);

    // What killed runs leave: a work folder and a temporary file (0600,
    // holding user-data).
    fs::create_dir_all(out.join(".edgeforge-work-dead/rootfs/etc")).unwrap();
    fs::write(out.join(".edgeforge-work-dead/rootfs/etc/motd"), "x").unwrap();
    fs::write(out.join(".edgeforge-dead.partial"), "#cloud-config\n").unwrap();

    // A new provider image, then a template error in the ISO stage.
    fs::write(ov.join("motd"), "new\n").unwrap();
    fs::write(
        iso_overlay.join("note.txt.tera"),
        "{{ no_such_variable }}\n",
    )
    .unwrap();
    let o = build(&ud, "build");
    assert_fails(&o, 6, &["note.txt.tera"]);
    assert!(
        artifact_set(&out) == old_set,
        "the old set is untouched: {:?}",
        entries(&out)
    );
    assert_eq!(
        hidden_entries(&out),
        Vec::<String>::new(),
        "leftovers removed"
    );
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));

    // `iso` replacing the ISO drops the manifest.json that described the old one.
    fs::write(iso_overlay.join("note.txt.tera"), "{{ iso_name }}\n").unwrap();
    let ud2 = t.path().join("ud2.yaml");
    fs::write(&ud2, "#cloud-config\nstylus:\n  site:\n    name: second\n").unwrap();
    let o = build(&ud2, "iso");
    assert_ok(&o);
    assert!(
        stderr(&o).contains("manifest.json: it described"),
        "{}",
        stderr(&o)
    );
    assert!(!out.join("manifest.json").exists());
    assert_ok(&edgeforge(&["verify", out.to_str().unwrap()]));
}
