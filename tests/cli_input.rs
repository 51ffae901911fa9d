//! Inputs as the tools that read them accept them, checked before anything
//! is written: Palette's user-data forms, duplicate keys, `--set` blame,
//! `iso embed --sites` all or nothing, verified bundles, the provider image
//! an ISO names, preflight, plan digests and the golden reserved area size.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::*;

fn palette_examples() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/fixtures/user-data/palette");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for form in [
        "static-prefix",
        "dhcp",
        "proxy",
        "proxy-credentials",
        "project-uid-number",
        "project-uid-string",
        "registry-credentials",
        "ca-certs",
    ] {
        assert!(
            files.contains(&dir.join(format!("{form}.yaml"))),
            "the example {form}.yaml is missing"
        );
    }
    files
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn palette_documented_user_data_passes_validation() {
    for file in palette_examples() {
        let o = edgeforge(&["user-data", "validate", file.to_str().unwrap()]);
        assert_ok(&o);
        assert!(
            stdout(&o).contains("valid (0 warnings)"),
            "{}: {}{}",
            file.display(),
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn user_data_is_checked_no_stricter_than_the_installer() {
    let t = tempfile::tempdir().unwrap();
    // A static interface with neither mask nor prefix, or without gateway,
    // is not known to be refused by the installer: warnings.
    let p = write(
        t.path(),
        "no-mask.yaml",
        "#cloud-config\nstylus:\n  site:\n    name: a\n    network:\n      interfaces:\n        enp1s0:\n          type: static\n          ipAddress: 10.0.10.25\n",
    );
    let o = edgeforge(&["user-data", "validate", p.to_str().unwrap()]);
    assert_ok(&o);
    assert!(stdout(&o).contains("valid (2 warnings)"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(":7: warning: stylus.site.network.interfaces.enp1s0.mask"),
        "{}",
        stderr(&o)
    );
    // A mask that contradicts the address's prefix, or whose one bits do
    // not stand together, is a likely mistake of unknown effect: warnings.
    for (mask, warning) in [
        ("255.255.255.0", None),
        ("24", None),
        ("255.255.0.0", Some(":10: warning: stylus.site.network.interfaces.enp1s0.mask: says /16, and ipAddress says /24")),
        ("255.0.255.0", Some(":10: warning: stylus.site.network.interfaces.enp1s0.mask: `255.0.255.0` is no netmask")),
    ] {
        let p = write(
            t.path(),
            "mask.yaml",
            &format!("#cloud-config\nstylus:\n  site:\n    name: a\n    network:\n      interfaces:\n        enp1s0:\n          type: static\n          ipAddress: 10.0.10.25/24\n          mask: \"{mask}\"\n          gateway: 10.0.10.1\n"),
        );
        let o = edgeforge(&["user-data", "validate", p.to_str().unwrap()]);
        assert_ok(&o);
        match warning {
            None => assert!(stdout(&o).contains("valid (0 warnings)"), "{mask}: {}", stdout(&o)),
            Some(w) => {
                assert!(stdout(&o).contains("valid (1 warnings)"), "{mask}: {}", stdout(&o));
                assert!(stderr(&o).contains(w), "{mask}: {}", stderr(&o));
            }
        }
    }
    // A prefix that is no prefix is still an error.
    let p = write(
        t.path(),
        "bad-prefix.yaml",
        "#cloud-config\nstylus:\n  site:\n    network:\n      interfaces:\n        enp1s0:\n          type: static\n          ipAddress: 10.0.10.25/33\n          gateway: 10.0.10.1\n",
    );
    assert_fails(
        &edgeforge(&["user-data", "validate", p.to_str().unwrap()]),
        3,
        &[":8: error: stylus.site.network.interfaces.enp1s0.ipAddress: `10.0.10.25/33`"],
    );
}

#[test]
fn duplicate_keys_are_refused_at_the_second_key() {
    let t = tempfile::tempdir().unwrap();
    let p = write(
        t.path(),
        "dup.yaml",
        "#cloud-config\nstylus:\n  site:\n    name: store-1\n    projectName: Default\n    name: store-2\n",
    );
    assert_fails(
        &edgeforge(&["user-data", "validate", p.to_str().unwrap()]),
        3,
        &[
            &format!("{}:6:5: ", p.display()),
            "duplicate entry with key \"name\"",
        ],
    );
    // The same in an image definition: the duplicate's line, not the mapping's.
    let def = write_definition(t.path(), "dup", &t.path().join("base"), "");
    let text = fs::read_to_string(&def).unwrap().replace(
        "  version: \"1.30.5\"\n",
        "  version: \"1.30.5\"\n  version: \"1.31.1\"\n",
    );
    fs::write(&def, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l == "  version: \"1.31.1\"")
        .unwrap()
        + 1;
    assert_fails(
        &edgeforge(&["plan", def.to_str().unwrap()]),
        3,
        &[
            &format!("{}:{line}:3: ", def.display()),
            "duplicate field `version`",
        ],
    );
}

#[test]
fn a_bad_set_value_is_blamed_on_the_set() {
    let t = tempfile::tempdir().unwrap();
    let o = edgeforge(&[
        "render",
        "images/demo.yaml",
        "--set",
        "kubernetes.version=1.31",
        "--out",
        t.path().join("r").to_str().unwrap(),
    ]);
    assert_fails(
        &o,
        3,
        &["--set kubernetes.version=1.31: kubernetes.version: `1.31` is not MAJOR.MINOR.PATCH"],
    );
    assert!(!stderr(&o).contains("images/demo.yaml:"), "{}", stderr(&o));
    // The file's own mistakes keep their line.
    let def = write_definition(t.path(), "bad", &t.path().join("base"), "");
    let text = fs::read_to_string(&def).unwrap().replace("1.30.5", "1.30");
    fs::write(&def, &text).unwrap();
    assert_fails(
        &edgeforge(&[
            "render",
            def.to_str().unwrap(),
            "--set",
            "fips=false",
            "--out",
            t.path().join("r").to_str().unwrap(),
        ]),
        3,
        &[&format!("{}:7: kubernetes.version", def.display())],
    );
}

/// A provider image tagged `other`, and a golden ISO made from it with a
/// definition tagged `test`, shared by the tests below.
struct Built {
    /// Kept for the life of the test process.
    _dir: FixtureDir,
    /// The `test` definition (overlays.iso included, for /edge-installer.txt).
    definition: PathBuf,
    archive: PathBuf,
    small: PathBuf,
    /// What `iso --provider-image` logged.
    log: String,
}

fn definition_text(dir: &Path, tag: &str) -> PathBuf {
    let def = write_definition(
        dir,
        tag,
        &demo_base(),
        &format!(
            "iso:\n  timeout: 0\noverlays:\n  iso: [{}]\n",
            repo_root().join("overlays/iso").display()
        ),
    );
    let text = fs::read_to_string(&def).unwrap();
    fs::write(
        &def,
        text.replace("custom_tag: test", &format!("custom_tag: {tag}")),
    )
    .unwrap();
    def
}

fn built() -> &'static Built {
    static BUILT: std::sync::OnceLock<Built> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = FixtureDir::new("cli-input");
        let other = definition_text(dir.path(), "other");
        let images = dir.path().join("images");
        assert_ok(&edgeforge(&[
            "provider-image",
            other.to_str().unwrap(),
            "-o",
            images.to_str().unwrap(),
        ]));
        let archive = images.join("ubuntu-k3s-1.30.5-v4.5.0-other.oci.tar");
        let definition = definition_text(dir.path(), "test");
        let (small, log) = golden(&definition, &archive, &dir.path().join("small"), &[]);
        Built {
            _dir: dir,
            definition,
            archive,
            small,
            log,
        }
    })
}

/// `iso --golden` of `definition` from `archive` into `out`: the ISO and the log.
fn golden(definition: &Path, archive: &Path, out: &Path, sets: &[&str]) -> (PathBuf, String) {
    let mut args = vec![
        "iso",
        definition.to_str().unwrap(),
        "--golden",
        "--provider-image",
        archive.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(sets);
    let o = edgeforge(&args);
    assert_ok(&o);
    (out.join("palette-edge-installer.iso"), stderr(&o))
}

fn extract(iso: &Path, path: &str) -> Vec<u8> {
    let t = tempfile::tempdir().unwrap();
    iso_extract(iso, path, &t.path().join("f"))
}

#[test]
fn the_iso_names_the_provider_image_it_was_made_from() {
    let b = built();
    let text = String::from_utf8(extract(&b.small, "/edge-installer.txt")).unwrap();
    assert!(
        text.contains("Provider image: ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-other\n"),
        "{text}"
    );
    assert!(
        b.log.contains("warning: the provider image names ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-other, the definition ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-test"),
        "{}",
        b.log
    );
}

#[test]
fn the_reserved_area_is_sized_by_the_definition() {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    let (big, _) = golden(
        &b.definition,
        &b.archive,
        &t.path().join("big"),
        &["--set", "iso.reserved_area=1MiB"],
    );
    assert_eq!(extract(&big, "/config.yaml").len(), 1 << 20);
    assert_eq!(extract(&b.small, "/config.yaml").len(), 64 << 10);
    // A user-data with a large certificate bundle (~200 KiB).
    let cert =
        fs::read_to_string(repo_root().join("tests/fixtures/user-data/palette/ca-certs.yaml"))
            .unwrap();
    let pem: String = cert
        .lines()
        .skip_while(|l| !l.contains("BEGIN CERTIFICATE"))
        .take_while(|l| !l.starts_with("install:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut text =
        String::from("#cloud-config\nstylus:\n  site:\n    name: big-ca\n    caCerts:\n");
    while text.len() < 200 << 10 {
        text.push_str("      - |\n");
        text.push_str(&pem);
    }
    let ud = write(t.path(), "big-ca.yaml", &text);
    let embed = |golden: &Path, out: &str| {
        edgeforge(&[
            "iso",
            "embed",
            golden.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "-o",
            t.path().join(out).to_str().unwrap(),
        ])
    };
    assert_fails(
        &embed(&b.small, "small.iso"),
        3,
        &[
            &format!("the user-data is {} bytes", text.len()),
            "reserved area is 65536 bytes",
            "set iso.reserved_area in the definition and rebuild the golden ISO",
        ],
    );
    assert!(!t.path().join("small.iso").exists());
    assert_ok(&embed(&big, "big.iso"));
    let area = extract(&t.path().join("big.iso"), "/config.yaml");
    assert_eq!(area.len(), 1 << 20);
    assert!(area.starts_with(text.as_bytes()));
    // Sizes in the forms the definition takes; out of range is refused.
    for (value, ok) in [
        ("65536", true),
        ("4MiB", true),
        ("64KiB", true),
        ("16MiB", false),
        ("1GiB", false),
    ] {
        let def = t.path().join(format!("area-{ok}.yaml"));
        fs::write(
            &def,
            fs::read_to_string(&b.definition)
                .unwrap()
                .replace("iso:\n", &format!("iso:\n  reserved_area: {value}\n")),
        )
        .unwrap();
        let o = edgeforge(&["plan", def.to_str().unwrap()]);
        assert_eq!(o.status.success(), ok, "{value}: {}", stderr(&o));
        if !ok {
            assert!(stderr(&o).contains("reserved_area"), "{}", stderr(&o));
        }
    }
}

#[test]
fn palette_examples_round_trip_through_iso_embed() {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    for file in palette_examples() {
        let input = fs::read(&file).unwrap();
        let out = t.path().join("site.iso");
        assert_ok(&edgeforge(&[
            "iso",
            "embed",
            b.small.to_str().unwrap(),
            "--user-data",
            file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]));
        let area = extract(&out, "/config.yaml");
        assert_eq!(
            &area[..input.len()],
            &input[..],
            "{}: the ISO's user-data differs from the file",
            file.display()
        );
        let rest = String::from_utf8_lossy(&area[input.len()..]);
        assert!(
            rest.starts_with(&format!(
                "# edgeforge:reserved-area user-data-bytes={} size=65536\n",
                input.len()
            )),
            "{}",
            &rest[..80]
        );
        fs::remove_file(&out).unwrap();
    }
}

fn sites_file(dir: &Path, sites: &[&str]) -> PathBuf {
    let mut text = String::from("sites:\n");
    for s in sites {
        text.push_str(&format!("  - {s}\n"));
    }
    write(dir, "sites.yaml", &text)
}

#[test]
fn a_sites_run_checks_every_site_then_writes_all_or_none() {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("sites");
    let run = |sites: &Path| {
        edgeforge_env(
            &[
                "iso",
                "embed",
                b.small.to_str().unwrap(),
                "--sites",
                sites.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
            ],
            &[("SITE_TOKEN", "site-token-example-1234")],
        )
    };
    let good = "{name: store-1, palette_endpoint: api.spectrocloud.com, token_env: SITE_TOKEN}";
    let good2 = "{name: store-2, palette_endpoint: api.spectrocloud.com, token_env: SITE_TOKEN}";
    let many_tags: String = (0..1000)
        .map(|i| format!("\n      t{i}: \"{}\"", "x".repeat(60)))
        .collect();
    let refused: [(&str, String, &[&str]); 5] = [
        (
            "duplicate name",
            "{name: store-1, project_name: Other}".into(),
            &["sites[0] and sites[2] are both named `store-1`"],
        ),
        (
            "bad name",
            "{name: ../store}".into(),
            &["sites[2]: site name `../store`"],
        ),
        (
            "missing token",
            "{name: store-3, token_env: NO_SUCH_TOKEN_VARIABLE}".into(),
            &["sites[2] (`store-3`)", "NO_SUCH_TOKEN_VARIABLE"],
        ),
        (
            "invalid user-data",
            "{name: store-3, network: {nameserver: 10.0.0.300}}".into(),
            &["sites[2] (`store-3`)", "`10.0.0.300` is not an IP address"],
        ),
        (
            "too large for the area",
            format!("name: store-3\n    tags:{many_tags}"),
            &["sites[2] (`store-3`)", "set iso.reserved_area"],
        ),
    ];
    for (what, third, needles) in refused {
        let sites = sites_file(t.path(), &[good, good2, &third]);
        let o = run(&sites);
        assert!(!o.status.success(), "{what}: accepted");
        for n in needles {
            assert!(
                stderr(&o).contains(n),
                "{what}: stderr lacks {n:?}:\n{}",
                stderr(&o)
            );
        }
        assert!(
            entries(&out).is_empty(),
            "{what}: a refused run wrote {:?}",
            entries(&out)
        );
    }
    // Three good sites: three ISOs committed with their checksums.
    let sites = sites_file(
        t.path(),
        &[
            good,
            good2,
            "{name: store-3, project_uid: \"123\", token_env: SITE_TOKEN}",
        ],
    );
    assert_ok(&run(&sites));
    let stem = "palette-edge-installer";
    assert_eq!(
        entries(&out),
        [
            "SHA256SUMS".to_string(),
            format!("{stem}-store-1.iso"),
            format!("{stem}-store-1.iso.sha256"),
            format!("{stem}-store-2.iso"),
            format!("{stem}-store-2.iso.sha256"),
            format!("{stem}-store-3.iso"),
            format!("{stem}-store-3.iso.sha256"),
        ]
    );
    run_tool("sha256sum", &["-c", "SHA256SUMS"], &out);
    let area = extract(&out.join(format!("{stem}-store-2.iso")), "/config.yaml");
    assert!(String::from_utf8_lossy(&area).contains("name: \"store-2\""));
}

#[test]
fn sites_render_with_the_projects_own_template() {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    let template = fs::read_to_string(repo_root().join("templates/user-data.tera")).unwrap();
    let project = t.path().join("project");
    fs::create_dir_all(project.join("templates")).unwrap();
    fs::write(
        project.join("templates/user-data.tera"),
        template.replace("stylus:\n", "# made by the project's template\nstylus:\n"),
    )
    .unwrap();
    let site = write(t.path(), "site.yaml", "name: store-9\n");
    let embed = |cwd: &Path, extra: &[&str], out: &str| {
        let out = t.path().join(out);
        let mut args = vec![
            "iso",
            "embed",
            b.small.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        (edgeforge_in(cwd, &args), out)
    };
    // The project in the current folder.
    let (o, out) = embed(&project, &[], "a.iso");
    assert_ok(&o);
    let area = String::from_utf8_lossy(&extract(&out, "/config.yaml")).into_owned();
    assert!(
        area.contains("# made by the project's template\n"),
        "{area}"
    );
    // A definition's templates: folder, as `user-data render` uses it.
    let other = t.path().join("other-templates");
    fs::create_dir_all(&other).unwrap();
    fs::write(
        other.join("user-data.tera"),
        template.replace(
            "stylus:\n",
            "# made by the definition's template\nstylus:\n",
        ),
    )
    .unwrap();
    let def = write(
        t.path(),
        "def.yaml",
        &fs::read_to_string(&b.definition).unwrap().replace(
            &format!("templates: {}", repo_root().join("templates").display()),
            &format!("templates: {}", other.display()),
        ),
    );
    let (o, out) = embed(t.path(), &["--definition", def.to_str().unwrap()], "b.iso");
    assert_ok(&o);
    let area = String::from_utf8_lossy(&extract(&out, "/config.yaml")).into_owned();
    assert!(
        area.contains("# made by the definition's template\n"),
        "{area}"
    );
    let rendered = edgeforge(&[
        "user-data",
        "render",
        def.to_str().unwrap(),
        "--site",
        site.to_str().unwrap(),
    ]);
    assert_ok(&rendered);
    assert!(
        area.starts_with(&stdout(&rendered)),
        "iso embed renders as user-data render does"
    );
    // Neither: no silent fallback to a built-in copy.
    let (o, out) = embed(t.path(), &[], "c.iso");
    assert_fails(&o, 2, &["templates/user-data.tera", "--definition"]);
    assert!(!out.exists());
    // site-media renders sites the same way.
    let medium = t.path().join("store-9-user-data.iso");
    let media = |cwd: &Path, extra: &[&str]| {
        let mut args = vec![
            "site-media",
            "--site",
            site.to_str().unwrap(),
            "-o",
            medium.to_str().unwrap(),
        ];
        args.extend(extra);
        edgeforge_in(cwd, &args)
    };
    assert_fails(&media(t.path(), &[]), 2, &["templates/user-data.tera"]);
    assert_ok(&media(&project, &[]));
    let user_data = extract(&medium, "/user-data");
    assert!(String::from_utf8_lossy(&user_data).contains("# made by the project's template\n"));
    assert_ok(&media(t.path(), &["--definition", def.to_str().unwrap()]));
    let user_data = extract(&medium, "/user-data");
    assert!(String::from_utf8_lossy(&user_data).contains("# made by the definition's template\n"));
}

/// The test definition with `extra` lines added under `iso:`.
fn with_iso(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let text = fs::read_to_string(&built().definition)
        .unwrap()
        .replace("iso:\n", &format!("iso:\n{extra}"));
    write(dir, name, &text)
}

#[test]
fn bundles_are_verified_before_they_go_on_the_iso() {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("apps.tar.zst");
    assert_ok(&edgeforge(&[
        "bundle",
        &format!("app=oci-archive:{}", b.archive.display()),
        "-o",
        bundle.to_str().unwrap(),
    ]));
    let mut bytes = fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let damaged = t.path().join("damaged.tar.zst");
    fs::write(&damaged, &bytes).unwrap();
    let yaml = write(t.path(), "not-a-bundle.tar.zst", "apps:\n  - name: a\n");
    for bad in [&damaged, &yaml] {
        let def = with_iso(
            t.path(),
            "bundled.yaml",
            &format!("  bundles: [{}]\n", bad.display()),
        );
        let out = t.path().join("out");
        let o = edgeforge(&[
            "iso",
            def.to_str().unwrap(),
            "--golden",
            "--provider-image",
            b.archive.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_fails(&o, 7, &[&format!("iso.bundles[0] {}", bad.display())]);
        assert!(!out.exists(), "nothing is written for a bad bundle");
    }
}

/// A folder of links to every program on PATH but `missing`.
fn path_without(missing: &str, dir: &Path) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for d in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name();
            let link = bin.join(&name);
            if name != missing && !link.exists() {
                std::os::unix::fs::symlink(e.path(), link).unwrap();
            }
        }
    }
    bin.display().to_string()
}

#[test]
fn a_missing_host_tool_stops_a_run_before_its_first_write() {
    let b = built();
    let t = tempfile::tempdir().unwrap();
    let path = path_without("xorriso", t.path());
    let out = t.path().join("out");
    let runs: [Vec<&str>; 2] = [
        vec![
            "iso",
            b.definition.to_str().unwrap(),
            "--golden",
            "--provider-image",
            b.archive.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        vec![
            "build",
            b.definition.to_str().unwrap(),
            "--golden",
            "-o",
            out.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let o = edgeforge_env(&args, &[("PATH", &path)]);
        assert_fails(&o, 4, &["xorriso (Debian package xorriso)"]);
        assert!(!out.exists(), "{}: wrote {:?}", args[0], entries(&out));
    }
    // A definition asking for disks needs qemu-img for qcow2, also before
    // the provider image is built.
    let disks = t.path().join("disks.yaml");
    fs::write(
        &disks,
        format!(
            "{}disk:\n  formats: [raw, qcow2]\n",
            fs::read_to_string(&b.definition).unwrap()
        ),
    )
    .unwrap();
    let no_qemu_img = path_without("qemu-img", &t.path().join("no-qemu-img"));
    let o = edgeforge_env(
        &[
            "build",
            disks.to_str().unwrap(),
            "--golden",
            "-o",
            out.to_str().unwrap(),
        ],
        &[("PATH", &no_qemu_img)],
    );
    assert_fails(&o, 4, &["qemu-img (Debian package qemu-utils)"]);
    assert!(!out.exists(), "build wrote {:?}", entries(&out));
    // An output "folder" that is a file fails the same way, before anything.
    let file = write(t.path(), "file", "");
    let o = edgeforge(&[
        "provider-image",
        b.definition.to_str().unwrap(),
        "-o",
        file.join("out").to_str().unwrap(),
    ]);
    assert_fails(&o, 5, &["is not a folder"]);
}

#[test]
fn plan_digests_cover_the_files_the_iso_carries() {
    let t = tempfile::tempdir().unwrap();
    let key = write(t.path(), "edge_custom_config.yaml", "signing: key-1\n");
    let cluster = write(t.path(), "cluster.yaml", "cluster: one\n");
    let def = with_iso(
        t.path(),
        "carrying.yaml",
        &format!(
            "  edge_custom_config: {}\n  cluster_definition: {}\n",
            key.display(),
            cluster.display()
        ),
    );
    let inputs = || -> serde_json::Value {
        let o = edgeforge(&["plan", def.to_str().unwrap(), "--format", "json"]);
        assert_ok(&o);
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["variants"][0]["inputs"]
            .clone()
    };
    let before = inputs();
    for (field, file) in [
        ("iso.edge_custom_config", &key),
        ("iso.cluster_definition", &cluster),
    ] {
        assert!(
            before[field]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:")),
            "{before}"
        );
        fs::write(file, "changed\n").unwrap();
        let after = inputs();
        assert_ne!(before[field], after[field], "{field}");
    }
}

#[test]
fn arm64_definitions_are_refused_by_iso_with_why() {
    let t = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(&built().definition)
        .unwrap()
        .replace("arch: amd64", "arch: arm64");
    let def = write(t.path(), "arm.yaml", &text);
    let out = t.path().join("out");
    assert_fails(
        &edgeforge(&[
            "iso",
            def.to_str().unwrap(),
            "--golden",
            "-o",
            out.to_str().unwrap(),
        ]),
        3,
        &[
            "arch: installer ISOs are built for amd64 only",
            "arm64 definitions build provider images",
        ],
    );
    assert!(!out.exists());
}

/// `iso` and `disk` take each variant's root filesystem from the same
/// places, and refuse the same way: one `--rootfs`/`--provider-image` for a
/// definition of several versions, or a provider image not built yet.
#[test]
fn iso_and_disk_name_a_missing_or_ambiguous_root_filesystem() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    let out = t.path().join("out");
    let ud = repo_root().join("images/user-data/demo.yaml");
    for command in ["iso", "disk"] {
        let o = edgeforge(&[
            command,
            "images/ubuntu-22.04-k3s.yaml",
            "--user-data",
            ud.to_str().unwrap(),
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_fails(
            &o,
            2,
            &["builds 3 variants; --provider-image and --rootfs take one"],
        );
        let o = edgeforge(&[
            command,
            "images/demo-busybox.yaml",
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_fails(
            &o,
            3,
            &["ubuntu-k3s-1.30.5-v4.5.0-demo.oci.tar does not exist: run `edgeforge provider-image` first"],
        );
        assert!(!out.exists(), "{command} wrote {}", out.display());
    }
}
