//! The provider image: interop with skopeo and umoci, the build matrix,
//! reproducibility, whiteouts, the three base image forms, and every refusal
//! (corrupt blob, unsafe tar entry, undefined template variable, bad YAML,
//! token in an overlay) leaving nothing under a final name.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use support::*;

const TAG: &str = "k3s-1.30.5-v4.5.0-test";
const ARCHIVE: &str = "ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar";

/// A definition over the demo base with the shipped overlays plus one test
/// overlay holding an executable (0750 in the checkout), a symlink and a
/// file the definition makes 0600 (`file_modes`).
fn demo_definition(dir: &Path, extra: &str) -> std::path::PathBuf {
    let ov = dir.join("test-overlay");
    fs::create_dir_all(ov.join("usr/local/bin")).unwrap();
    fs::write(ov.join("usr/local/bin/hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(
        ov.join("usr/local/bin/hello.sh"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    symlink("hello.sh", ov.join("usr/local/bin/hello")).unwrap();
    fs::create_dir_all(ov.join("etc")).unwrap();
    fs::write(ov.join("etc/private.conf"), "secret=no\n").unwrap();
    fs::set_permissions(
        ov.join("etc/private.conf"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let root = repo_root();
    let overlays = format!(
        "file_modes:\n  /etc/private.conf: \"0600\"\noverlays:\n  rootfs: [{}, {}]\n",
        root.join("overlays/rootfs").display(),
        ov.display()
    );
    write_definition(dir, "demo", &demo_base(), &format!("{overlays}{extra}"))
}

fn build(def: &Path, out: &Path, extra_args: &[&str]) -> std::process::Output {
    let mut args = vec![
        "provider-image",
        def.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra_args);
    edgeforge(&args)
}

#[test]
fn demo_image_is_accepted_by_skopeo_and_umoci_with_overlay_modes_and_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let def = demo_definition(t.path(), "");
    let out = t.path().join("build");
    let o = build(&def, &out, &[]);
    assert_ok(&o);
    assert_eq!(
        entries(&out),
        vec![
            "SHA256SUMS".to_string(),
            ARCHIVE.to_string(),
            format!("{ARCHIVE}.sha256")
        ]
    );
    assert!(stdout(&o).contains("ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-test"));

    run_tool("sha256sum", &["-c", &format!("{ARCHIVE}.sha256")], &out);
    assert_eq!(
        run_tool("sha256sum", &["-c", "SHA256SUMS"], &out),
        format!("{ARCHIVE}: OK\n")
    );

    let archive = out.join(ARCHIVE);
    let inspect = run_tool(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", archive.display())],
        t.path(),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(
        inspect["Labels"]["io.edgeforge.kubernetes.version"],
        "1.30.5"
    );
    assert_eq!(inspect["Labels"]["org.opencontainers.image.version"], TAG);
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        inspect["Layers"].as_array().unwrap().len(),
        2,
        "base + overlay"
    );

    // The tag sits in index.json's annotations.
    let layout = t.path().join("layout");
    fs::create_dir(&layout).unwrap();
    run_tool("tar", &["-xf", archive.to_str().unwrap()], &layout);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let ann = &index["manifests"][0]["annotations"];
    assert_eq!(ann["org.opencontainers.image.ref.name"], TAG);
    assert_eq!(
        ann["io.containerd.image.name"],
        "ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-test"
    );

    run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{TAG}", layout.display()),
            "bundle",
        ],
        t.path(),
    );
    let rootfs = t.path().join("bundle/rootfs");
    assert!(rootfs.join("bin/busybox").is_file(), "base content");
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let release = fs::read_to_string(rootfs.join("etc/kairos-release")).unwrap();
    assert!(
        release.contains("KAIROS_VERSION=\"v4.5.0-k3s-1.30.5\""),
        "{release}"
    );
    assert!(
        release.contains("KAIROS_SOFTWARE_VERSION=\"1.30.5-k3s1\""),
        "{release}"
    );
    let os_release = fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    assert!(
        os_release.contains("KAIROS_FAMILY=\"debian\"")
            && os_release.contains("VERSION_ID=\"22.04\""),
        "{os_release}"
    );
    assert!(!rootfs.join("etc/kairos-release.tera").exists());
    assert!(rootfs.join("etc/logrotate.d/stylus.conf").is_file());
    assert!(rootfs.join("etc/rsyslog.d/49-stylus.conf").is_file());
    assert!(rootfs
        .join("etc/spectrocloud/custom-hardware-specs-lookup.json")
        .is_file());
    let mode = |p: &str| {
        fs::symlink_metadata(rootfs.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    // Checkout modes are the umask's: an executable is 0755 whatever it was
    // there, and only the definition sets another mode.
    assert_eq!(mode("usr/local/bin/hello.sh"), 0o755);
    assert_eq!(mode("etc/private.conf"), 0o600);
    assert_eq!(mode("etc/logrotate.d/stylus.conf"), 0o644);
    assert_eq!(
        fs::read_link(rootfs.join("usr/local/bin/hello")).unwrap(),
        Path::new("hello.sh")
    );
}

#[test]
fn same_inputs_and_epoch_give_byte_identical_archives() {
    let t = tempfile::tempdir().unwrap();
    let def = demo_definition(t.path(), "");
    let a = t.path().join("a");
    let b = t.path().join("nested/b");
    assert_ok(&build(&def, &a, &[]));
    assert_ok(&build(&def, &b, &[]));
    let bytes_a = fs::read(a.join(ARCHIVE)).unwrap();
    assert_eq!(bytes_a, fs::read(b.join(ARCHIVE)).unwrap());
    assert_eq!(
        fs::read(a.join(format!("{ARCHIVE}.sha256"))).unwrap(),
        fs::read(b.join(format!("{ARCHIVE}.sha256"))).unwrap()
    );

    // The epoch is an input: another one changes the bytes.
    let c = t.path().join("c");
    let o = edgeforge_env(
        &[
            "provider-image",
            def.to_str().unwrap(),
            "--out",
            c.to_str().unwrap(),
        ],
        &[("SOURCE_DATE_EPOCH", "1700000001")],
    );
    assert_ok(&o);
    assert_ne!(bytes_a, fs::read(c.join(ARCHIVE)).unwrap());
}

#[test]
fn version_matrix_builds_one_image_per_version_sharing_layers() {
    let t = tempfile::tempdir().unwrap();
    let comp = t.path().join("component");
    fs::create_dir_all(comp.join("bin")).unwrap();
    fs::write(comp.join("bin/agent"), "#!/bin/sh\n").unwrap();
    let def = demo_definition(
        t.path(),
        &format!(
            "components:\n  - source: {}\n    destination: /opt/agent\n",
            comp.display()
        ),
    );
    let out = t.path().join("out");
    assert_ok(&build(
        &def,
        &out,
        &["--set", "kubernetes.version=[1.29.9, 1.30.5]"],
    ));
    let names = [
        "ubuntu-k3s-1.29.9-v4.5.0-test.oci.tar",
        "ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar",
    ];
    let mut layers = vec![];
    for n in names {
        let inspect = run_tool(
            "skopeo",
            &["inspect", &format!("oci-archive:{}", out.join(n).display())],
            t.path(),
        );
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        let l: Vec<String> = v["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        assert_eq!(l.len(), 3, "base, component, overlay");
        layers.push(l);
    }
    assert_eq!(
        layers[0][..2],
        layers[1][..2],
        "base and component layers are shared"
    );
    assert_ne!(
        layers[0][2], layers[1][2],
        "the overlay renders the Kubernetes version"
    );
}

#[test]
fn whiteouts_in_base_layers_are_honoured_when_flattening() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    oci_layout(
        &base,
        &[
            vec![
                Entry::Dir("etc/"),
                Entry::File("etc/keep", b"keep"),
                Entry::File("etc/deleted", b"gone"),
                Entry::Dir("opt/"),
                Entry::File("opt/old-a", b"a"),
                Entry::File("opt/old-b", b"b"),
            ],
            vec![
                Entry::File("etc/.wh.deleted", b""),
                Entry::File("opt/.wh..wh..opq", b""),
                Entry::File("opt/new", b"n"),
            ],
        ],
    );
    let out = t.path().join("rootfs");
    let o = edgeforge(&[
        "unpack",
        base.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(out.join("etc/keep").is_file());
    assert!(
        !out.join("etc/deleted").exists(),
        "whiteout removes the file"
    );
    assert!(
        !out.join("etc/.wh.deleted").exists(),
        "whiteout markers are not content"
    );
    assert_eq!(
        entries(&out.join("opt")),
        vec!["new".to_string()],
        "opaque whiteout hides lower content"
    );

    // The same holds for a provider image built on that base.
    let def = write_definition(t.path(), "wh", &base, "");
    let build_dir = t.path().join("build");
    assert_ok(&build(&def, &build_dir, &[]));
    let flat = t.path().join("flat");
    let archive = format!("oci-archive:{}", build_dir.join(ARCHIVE).display());
    assert_ok(&edgeforge(&[
        "unpack",
        &archive,
        "--out",
        flat.to_str().unwrap(),
    ]));
    assert!(!flat.join("etc/deleted").exists());
    assert_eq!(entries(&flat.join("opt")), vec!["new".to_string()]);
}

#[test]
fn all_three_base_forms_are_read() {
    let t = tempfile::tempdir().unwrap();
    let base = demo_base();
    let oci_archive = t.path().join("base.oci.tar");
    let docker_archive = t.path().join("base.docker.tar");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}", base.display()),
            &format!("oci-archive:{}", oci_archive.display()),
        ],
        t.path(),
    );
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}", base.display()),
            &format!("docker-archive:{}", docker_archive.display()),
        ],
        t.path(),
    );
    for (i, spec) in [
        format!("oci:{}", base.display()),
        oci_archive.display().to_string(),
        format!("docker-archive:{}", docker_archive.display()),
    ]
    .iter()
    .enumerate()
    {
        let dir = t.path().join(format!("form{i}"));
        fs::create_dir(&dir).unwrap();
        let def = write_definition(&dir, "d", Path::new(spec), "");
        let out = dir.join("build");
        assert_ok(&build(&def, &out, &[]));
        let rootfs = dir.join("rootfs");
        assert_ok(&edgeforge(&[
            "unpack",
            &format!("oci-archive:{}", out.join(ARCHIVE).display()),
            "--out",
            rootfs.to_str().unwrap(),
        ]));
        assert!(rootfs.join("bin/busybox").is_file(), "{spec}");
        run_tool("umoci", &["--version"], t.path());
    }
}

#[test]
fn corrupt_base_blob_is_refused_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    let digests = oci_layout(&base, &[vec![Entry::File("etc/hostname", b"corrupt-me")]]);
    let blob = base.join("blobs/sha256").join(&digests[0]);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let def = write_definition(t.path(), "c", &base, "");
    let out = t.path().join("build");
    let o = build(&def, &out, &[]);
    assert_fails(&o, 7, &["corrupt", &digests[0]]);
    assert_eq!(
        entries(&out),
        Vec::<String>::new(),
        "nothing under a final name, no work files"
    );

    let o = edgeforge(&[
        "unpack",
        base.to_str().unwrap(),
        "--out",
        t.path().join("r").to_str().unwrap(),
    ]);
    assert_fails(&o, 7, &["corrupt"]);
    assert!(!t.path().join("r").exists() && !t.path().join("r.partial").exists());
}

#[test]
fn tar_entries_escaping_the_root_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<Entry>, &str); 3] = [
        (
            "dotdot",
            vec![Entry::RawFile("../evil", b"x")],
            "climbs out of the root",
        ),
        (
            "absolute",
            vec![Entry::RawFile("/etc/evil", b"x")],
            "absolute path",
        ),
        (
            "symlink",
            vec![Entry::Symlink("opt/link", "../../etc")],
            "points outside the root",
        ),
    ];
    for (name, entries_, needle) in cases {
        let tarball = t.path().join(format!("{name}.tar"));
        fs::write(&tarball, tar_bytes(&entries_)).unwrap();
        let def = write_definition(
            t.path(),
            name,
            &demo_base(),
            &format!("components:\n  - source: {}\n", tarball.display()),
        );
        let out = t.path().join(format!("out-{name}"));
        let o = build(&def, &out, &[]);
        assert_fails(&o, 7, &[needle, &tarball.display().to_string()]);
        assert_eq!(entries(&out), Vec::<String>::new(), "{name}");
    }

    // A path through a symlink that leads out of the tree lands inside it,
    // where umoci and containerd put it (the symlink is resolved inside the
    // root), never on the host.
    let host_passwd = fs::read("/etc/passwd").unwrap();
    for (name, target) in [("absolute", "/etc"), ("relative", "../../../../../../etc")] {
        let base = t.path().join(format!("through-{name}"));
        oci_layout(
            &base,
            &[
                vec![Entry::Symlink("evil", target)],
                vec![Entry::File("evil/passwd", b"owned")],
            ],
        );
        let out = t.path().join(format!("through-{name}-rootfs"));
        assert_ok(&edgeforge(&[
            "unpack",
            base.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]));
        assert_eq!(
            fs::read(out.join("etc/passwd")).unwrap(),
            b"owned",
            "{name}"
        );
        assert_eq!(fs::read_link(out.join("evil")).unwrap(), Path::new(target));
    }
    assert_eq!(fs::read("/etc/passwd").unwrap(), host_passwd);
}

#[test]
fn undefined_template_variable_names_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let ov = t.path().join("ov/etc");
    fs::create_dir_all(&ov).unwrap();
    fs::write(
        ov.join("motd.tera"),
        "Welcome to {{ os.distribution }}\nCluster {{ cluster_name }}\n",
    )
    .unwrap();
    let def = write_definition(
        t.path(),
        "tpl",
        &demo_base(),
        &format!("overlays:\n  rootfs: [{}]\n", t.path().join("ov").display()),
    );
    let out = t.path().join("build");
    let o = build(&def, &out, &[]);
    assert_fails(
        &o,
        6,
        &[
            &format!("{}:2", ov.join("motd.tera").display()),
            "cluster_name",
        ],
    );
    assert_eq!(entries(&out), Vec::<String>::new());

    let o = edgeforge(&[
        "render",
        def.to_str().unwrap(),
        "--out",
        t.path().join("r").to_str().unwrap(),
    ]);
    assert_fails(&o, 6, &["motd.tera:2"]);
}

#[test]
fn bad_definition_fields_name_file_line_and_field() {
    let t = tempfile::tempdir().unwrap();
    let base = demo_base();
    let cases = [
        (
            "typo",
            "kuberentes_version: 1\n",
            "unknown field `kuberentes_version`",
            ":15",
        ),
        ("type", "fips: maybe\n", "fips", ":15"),
        ("float", "", "", ""),
        (
            "exclusive",
            "fips: true\nupdate_kernel: true\n",
            "update_kernel",
            ":16",
        ),
        ("agent", "", "", ""),
    ];
    for (name, extra, needle, line) in cases {
        let def = match name {
            "float" => {
                let p = write_definition(t.path(), name, &base, "");
                let text = fs::read_to_string(&p)
                    .unwrap()
                    .replace("version: \"1.30.5\"", "version: 1.30");
                fs::write(&p, text).unwrap();
                p
            }
            "agent" => {
                let p = write_definition(t.path(), name, &base, "");
                let text = fs::read_to_string(&p)
                    .unwrap()
                    .replace("version: v4.5.0", "version: 4.5.0");
                fs::write(&p, text).unwrap();
                p
            }
            _ => write_definition(t.path(), name, &base, extra),
        };
        let out = t.path().join(format!("out-{name}"));
        let o = build(&def, &out, &[]);
        let file = def.display().to_string();
        match name {
            "float" => assert_fails(&o, 3, &[&format!("{file}:7"), "quote version numbers"]),
            "agent" => assert_fails(
                &o,
                3,
                &[&format!("{file}:9"), "agent.version", "like v4.5.0"],
            ),
            _ => assert_fails(&o, 3, &[&format!("{file}{line}"), needle]),
        }
        assert_eq!(entries(&out), Vec::<String>::new(), "{name}");
    }

    // Overrides are checked the same way.
    let def = write_definition(t.path(), "set", &base, "");
    assert_fails(
        &build(
            &def,
            &t.path().join("o1"),
            &["--set", "kubernetes.flavor=x"],
        ),
        3,
        &["--set kubernetes.flavor=x", "flavor"],
    );
    assert_fails(
        &build(&def, &t.path().join("o2"), &["--set", "novalue"]),
        2,
        &["expected key=value"],
    );
    let o = build(
        &def,
        &t.path().join("o3"),
        &[
            "--set",
            "kubernetes.version=1.29.9",
            "--set",
            "custom_tag=edge",
        ],
    );
    assert_ok(&o);
    assert!(t
        .path()
        .join("o3/ubuntu-k3s-1.29.9-v4.5.0-edge.oci.tar")
        .is_file());
}

#[test]
fn a_token_in_an_overlay_is_refused_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let ov = t.path().join("ov/oem");
    fs::create_dir_all(&ov).unwrap();
    fs::write(
        ov.join("README"),
        "# Set edgeHostToken in the site user-data, never here.\nedgeHostToken:\n",
    )
    .unwrap();
    fs::write(
        ov.join("userdata.yaml"),
        "#cloud-config\nstylus:\n  site:\n    edgeHostToken: aUAxxxxxxxxx0ChYCrO\n",
    )
    .unwrap();
    let def = write_definition(
        t.path(),
        "tok",
        &demo_base(),
        &format!("overlays:\n  rootfs: [{}]\n", t.path().join("ov").display()),
    );
    let out = t.path().join("build");
    let o = build(&def, &out, &[]);
    let source = ov.join("userdata.yaml").display().to_string();
    assert_fails(&o, 8, &[&source, "edgeHostToken"]);
    assert!(
        !stderr(&o).contains(".edgeforge-work"),
        "names the overlay file, not the work copy"
    );
    assert!(
        !stderr(&o).contains("aUAxxxxxxxxx0ChYCrO"),
        "the token itself is never printed"
    );
    assert_eq!(entries(&out), Vec::<String>::new());
}

#[test]
fn a_proxy_password_in_an_overlay_is_refused_even_from_a_cached_layer() {
    let t = tempfile::tempdir().unwrap();
    let ov = t.path().join("ov/etc");
    fs::create_dir_all(&ov).unwrap();
    let cache = t.path().join("cache");
    let cache_arg = ["--cache-dir", cache.to_str().unwrap()];
    let run = |def: &Path, out: &Path| {
        let mut args = vec![cache_arg[0], cache_arg[1]];
        args.extend([
            "provider-image",
            def.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        edgeforge(&args)
    };
    let overlays = format!("overlays:\n  rootfs: [{}]\n", t.path().join("ov").display());
    let proxy = "proxy:\n  http_proxy: http://bob:Pr0xy-Secret-42@proxy.example:3128\n";
    // Built and cached while the definition declares no password.
    fs::write(
        ov.join("fixed"),
        "http://bob:Pr0xy-Secret-42@proxy.example:3128\n",
    )
    .unwrap();
    let plain = write_definition(t.path(), "plain", &demo_base(), &overlays);
    assert_ok(&run(&plain, &t.path().join("o1")));

    let declared = write_definition(
        t.path(),
        "declared",
        &demo_base(),
        &format!("{overlays}{proxy}"),
    );
    let out = t.path().join("o2");
    let o = run(&declared, &out);
    assert_fails(
        &o,
        8,
        &[
            &ov.join("fixed").display().to_string(),
            "the password of proxy.http_proxy",
        ],
    );
    assert_eq!(entries(&out), Vec::<String>::new());

    // A template that renders the proxy URL is refused the same way.
    fs::remove_file(ov.join("fixed")).unwrap();
    fs::write(
        ov.join("environment.tera"),
        "HTTP_PROXY={{ proxy.http_proxy }}\n",
    )
    .unwrap();
    let o = run(&declared, &out);
    assert_fails(
        &o,
        8,
        &[
            &ov.join("environment.tera").display().to_string(),
            "passwords never go into the provider image",
        ],
    );
    assert!(
        !stderr(&o).contains("Pr0xy-Secret-42"),
        "the password is never printed"
    );
    assert_eq!(entries(&out), Vec::<String>::new());

    // Without credentials the proxy renders into the image.
    let open = write_definition(
        t.path(),
        "open",
        &demo_base(),
        &format!("{overlays}proxy:\n  http_proxy: http://proxy.example:3128\n"),
    );
    assert_ok(&run(&open, &out));
}

#[test]
fn layer_command_writes_sorted_normalized_entries() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("b/dir")).unwrap();
    fs::write(src.join("b/dir/z"), "z").unwrap();
    fs::write(src.join("a"), "a").unwrap();
    let out = t.path().join("layer.tar.gz");
    let o = edgeforge(&[
        "layer",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--destination",
        "/opt/x",
    ]);
    assert_ok(&o);
    let bytes = fs::read(&out).unwrap();
    assert!(stdout(&o).contains(&format!("digest sha256:{}", sha256_hex(&bytes))));
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "no gzip timestamp");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = vec![];
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert!(h.mtime().unwrap() <= EPOCH.parse().unwrap());
        names.push(e.path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(
        names,
        [
            "opt/",
            "opt/x/",
            "opt/x/a",
            "opt/x/b/",
            "opt/x/b/dir/",
            "opt/x/b/dir/z"
        ]
    );
}

fn unpack(image: &Path, out: &Path) -> std::process::Output {
    edgeforge(&[
        "unpack",
        image.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

/// Relative path -> content of every file under `root` (folders as "/").
fn tree_files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                m.insert(rel + "/", vec![]);
                stack.push(p);
            } else {
                m.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    m
}

#[test]
fn unpack_builds_in_a_fresh_folder_never_through_or_into_what_is_there() {
    let t = tempfile::tempdir().unwrap();
    let image = t.path().join("image");
    oci_layout(
        &image,
        &[vec![Entry::Dir("etc/"), Entry::File("etc/new", b"new")]],
    );
    let outside = t.path().join("outside");
    fs::create_dir_all(&outside).unwrap();

    // A symlink planted where a run might build the tree, leading outside.
    let out = t.path().join("rootfs");
    symlink(&outside, t.path().join("rootfs.partial")).unwrap();
    assert_ok(&unpack(&image, &out));
    assert_eq!(
        entries(&outside),
        Vec::<String>::new(),
        "nothing written outside"
    );
    assert!(
        fs::symlink_metadata(&out).unwrap().is_dir(),
        "a real folder"
    );
    assert_eq!(fs::read(out.join("etc/new")).unwrap(), b"new");

    // A stale partial tree of a killed run is not merged in.
    let out2 = t.path().join("rootfs2");
    fs::create_dir_all(t.path().join("rootfs2.partial/etc")).unwrap();
    fs::write(t.path().join("rootfs2.partial/etc/stale"), "old run").unwrap();
    assert_ok(&unpack(&image, &out2));
    assert_eq!(entries(&out2.join("etc")), ["new"]);

    // The folder of a killed unpack to the same OUT is removed by the next.
    let killed = t.path().join(".rootfs3.edgeforge-unpack-dead");
    fs::create_dir_all(killed.join("rootfs/etc")).unwrap();
    fs::write(killed.join("rootfs/etc/x"), "x").unwrap();
    let out3 = t.path().join("rootfs3");
    assert_ok(&unpack(&image, &out3));
    assert!(!killed.exists());

    // OUT itself may not be anything already, a dangling symlink included.
    let link = t.path().join("link");
    symlink(outside.join("nowhere"), &link).unwrap();
    assert_fails(&unpack(&image, &link), 2, &["already exists"]);
    assert_eq!(entries(&outside), Vec::<String>::new());
    assert!(
        entries(t.path()).iter().all(|n| !n.contains("edgeforge")),
        "{:?}",
        entries(t.path())
    );
}

#[test]
fn concurrent_unpacks_to_one_folder_one_wins_whole_the_other_fails() {
    let t = tempfile::tempdir().unwrap();
    // Two images with many files each, so the runs overlap.
    let names: Vec<String> = (0..1500).map(|i| format!("f{i:04}")).collect();
    let mut images = vec![];
    for which in ["a", "b"] {
        let mut layer = vec![Entry::Dir("data/")];
        let paths: Vec<String> = names.iter().map(|n| format!("data/{which}-{n}")).collect();
        for p in &paths {
            layer.push(Entry::File(p, which.as_bytes()));
        }
        let image = t.path().join(which);
        oci_layout(&image, &[layer]);
        let alone = t.path().join(format!("{which}-alone"));
        assert_ok(&unpack(&image, &alone));
        images.push((image, tree_files(&alone)));
    }
    for round in 0..5 {
        let out = t.path().join(format!("out{round}"));
        let runs: Vec<_> = images
            .iter()
            .map(|(image, _)| {
                std::process::Command::new(env!("CARGO_BIN_EXE_edgeforge"))
                    .args(["unpack", image.to_str().unwrap(), "--out"])
                    .arg(&out)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let results: Vec<_> = runs
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won: Vec<usize> = (0..2).filter(|&i| results[i].status.success()).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one wins");
        assert_fails(&results[1 - won[0]], 2, &["already exists"]);
        assert!(
            tree_files(&out) == images[won[0]].1,
            "round {round}: OUT is the winner's image, whole and alone"
        );
    }
    assert!(
        entries(t.path()).iter().all(|n| !n.starts_with('.')),
        "no temporary folders left: {:?}",
        entries(t.path())
    );
}

/// Writes an OCI layout at `dir` whose manifest lists `layers` (blob bytes
/// and media type) exactly as given, damaged or not; returns the index's
/// manifest descriptor (JSON) and the layer digests (hex).
fn layout_with_blobs(dir: &Path, layers: &[(&[u8], &str)]) -> (serde_json::Value, Vec<String>) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256_hex(data);
        fs::write(blobs.join(&d), data).unwrap();
        (d, data.len())
    };
    let mut descs = vec![];
    let mut digests = vec![];
    for (bytes, media_type) in layers {
        let (d, n) = put(bytes);
        descs.push(serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{d}"), "size": n}));
        digests.push(d);
    }
    let diff_ids: Vec<String> = digests.iter().map(|d| format!("sha256:{d}")).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}});
    let (cd, cn) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": cn}, "layers": descs});
    let (md, mn) = put(&serde_json::to_vec(&manifest).unwrap());
    let desc = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{md}"), "size": mn});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc.clone()]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (desc, digests)
}

fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn unpack_guarded(image: &str, out: &Path, env: &[(&str, &str)]) -> std::process::Output {
    hang_guard::edgeforge_guarded(&["unpack", image, "--out", out.to_str().unwrap()], env)
}

#[test]
fn a_fifo_in_an_overlay_or_folder_component_is_refused_by_path_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let overlay = t.path().join("overlay");
    fs::create_dir_all(overlay.join("etc")).unwrap();
    fs::write(overlay.join("etc/a.conf"), "a\n").unwrap();
    let fifo = overlay.join("etc/pipe");
    run_tool("mkfifo", &[fifo.to_str().unwrap()], t.path());
    let def = write_definition(
        t.path(),
        "fifo",
        &demo_base(),
        &format!("overlays:\n  rootfs: [{}]\n", overlay.display()),
    );
    let out = t.path().join("out");
    let args = [
        "provider-image",
        def.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = hang_guard::edgeforge_guarded(&args, &[]);
    assert_fails(&o, 3, &[&format!("{} is a fifo", fifo.display())]);
    assert_eq!(entries(&out), Vec::<String>::new());
    // `plan` digests the overlays: refused there too, not hanging.
    let o = hang_guard::edgeforge_guarded(&["plan", def.to_str().unwrap()], &[]);
    assert_fails(&o, 3, &[&format!("{} is a fifo", fifo.display())]);

    // A folder component: refused by path, not skipped.
    let component = t.path().join("component");
    fs::create_dir_all(&component).unwrap();
    let fifo = component.join("pipe");
    run_tool("mkfifo", &[fifo.to_str().unwrap()], t.path());
    let def = write_definition(
        t.path(),
        "component",
        &demo_base(),
        &format!("components:\n  - source: {}\n", component.display()),
    );
    let args = [
        "provider-image",
        def.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let o = hang_guard::edgeforge_guarded(&args, &[]);
    assert_fails(&o, 3, &[&format!("{} is a fifo", fifo.display())]);
    assert_eq!(entries(&out), Vec::<String>::new());
}

/// An index listing `next` `copies` times.
fn index_of(next: &serde_json::Value, copies: usize) -> Vec<u8> {
    let list: Vec<&serde_json::Value> = std::iter::repeat_n(next, copies).collect();
    serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list})).unwrap()
}

/// Puts `levels` indexes over the image's manifest descriptor, each listing
/// the one below `fanout` times, and points index.json at the top.
fn nest_indexes(dir: &Path, manifest: &serde_json::Value, levels: usize, fanout: usize) {
    let mut next = manifest.clone();
    for _ in 0..levels {
        let bytes = index_of(&next, fanout);
        let d = sha256_hex(&bytes);
        fs::write(dir.join("blobs/sha256").join(&d), &bytes).unwrap();
        next = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{d}"), "size": bytes.len()});
    }
    fs::write(dir.join("index.json"), index_of(&next, 1)).unwrap();
}

#[test]
fn nested_indexes_are_read_once_each_and_bounded_in_depth_and_width() {
    let t = tempfile::tempdir().unwrap();
    let layer = gzip_bytes(&tar_bytes(&[Entry::File("etc/hostname", b"nested\n")]));
    // Three levels, each listing the next 1,000 times: 10^9 paths to one
    // image, which is read once.
    let wide = t.path().join("wide");
    let (manifest, _) = layout_with_blobs(
        &wide,
        &[(&layer, "application/vnd.oci.image.layer.v1.tar+gzip")],
    );
    nest_indexes(&wide, &manifest, 3, 1000);
    let out = t.path().join("wide-rootfs");
    let o = unpack_guarded(&format!("oci:{}", wide.display()), &out, &[]);
    assert_ok(&o);
    assert_eq!(fs::read(out.join("etc/hostname")).unwrap(), b"nested\n");

    // Ten levels of the same (a 1.4 MB layout): past the depth limit.
    let deep = t.path().join("deep");
    layout_with_blobs(
        &deep,
        &[(&layer, "application/vnd.oci.image.layer.v1.tar+gzip")],
    );
    nest_indexes(&deep, &manifest, 10, 1000);
    let o = unpack_guarded(
        &format!("oci:{}", deep.display()),
        &t.path().join("deep-rootfs"),
        &[],
    );
    assert_fails(&o, 7, &["nests indexes more than 8 deep", "skopeo copy"]);

    // One index listing 1,001 descriptors: past the width limit.
    let broad = t.path().join("broad");
    layout_with_blobs(
        &broad,
        &[(&layer, "application/vnd.oci.image.layer.v1.tar+gzip")],
    );
    nest_indexes(&broad, &manifest, 1, 1001);
    let o = unpack_guarded(
        &format!("oci:{}", broad.display()),
        &t.path().join("broad-rootfs"),
        &[],
    );
    assert_fails(
        &o,
        7,
        &["lists 1001 descriptors, more than the limit of 1000 per index"],
    );
}

#[test]
fn missing_truncated_and_mislabelled_layers_are_corrupt_images() {
    let t = tempfile::tempdir().unwrap();
    let tar = tar_bytes(&[
        Entry::File("etc/big", &vec![b'x'; 200_000]),
        Entry::File("etc/b", b"b"),
    ]);
    let gz = gzip_bytes(&tar);
    let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    let cases: [(&str, &[u8], &str, &[&str]); 3] = [
        // The blob matches its digest: the producer wrote it cut short.
        (
            "truncated",
            &gz[..gz.len() / 2],
            gzip,
            &["is corrupt", "incomplete deflate stream"],
        ),
        ("truncated-tail", &gz[..gz.len() - 4], gzip, &["is corrupt"]),
        (
            "mislabelled",
            &gz,
            zstd,
            &["is corrupt", "Unknown frame descriptor"],
        ),
    ];
    for (name, blob, media_type, needles) in cases {
        let dir = t.path().join(name);
        let (_, digests) = layout_with_blobs(&dir, &[(blob, media_type)]);
        let out = t.path().join(format!("{name}-rootfs"));
        let o = unpack_guarded(&format!("oci:{}", dir.display()), &out, &[]);
        assert_fails(&o, 7, &[&digests[0]]);
        assert_fails(&o, 7, needles);
        assert!(!out.exists());
        // Building on it reads the layers too (to place new entries).
        let def = write_definition(
            &dir,
            "d",
            &dir,
            &format!(
                "overlays:\n  rootfs: [{}]\n",
                repo_root().join("overlays/rootfs").display()
            ),
        );
        let o = build(&def, &dir.join("build"), &["--no-cache"]);
        assert_fails(&o, 7, &[&digests[0], "is corrupt"]);
    }

    // A blob the manifest lists is not in the layout.
    let dir = t.path().join("missing");
    let (_, digests) = layout_with_blobs(&dir, &[(&gz, gzip)]);
    fs::remove_file(dir.join("blobs/sha256").join(&digests[0])).unwrap();
    let o = unpack_guarded(
        &format!("oci:{}", dir.display()),
        &t.path().join("missing-rootfs"),
        &[],
    );
    assert_fails(&o, 7, &[&digests[0], "is missing", "re-export"]);
    let def = write_definition(&dir, "d", &dir, "");
    let o = build(&def, &dir.join("build"), &[]);
    assert_fails(&o, 7, &[&digests[0], "is missing"]);
    assert_eq!(entries(&dir.join("build")), Vec::<String>::new());
}

#[test]
fn layers_past_the_size_or_entry_limit_are_refused() {
    let t = tempfile::tempdir().unwrap();
    // 2 MiB of zeros compress to a few KiB.
    let tar = tar_bytes(&[Entry::File("zeros", &vec![0; 2 << 20])]);
    let dir = t.path().join("bomb");
    let (_, digests) = layout_with_blobs(
        &dir,
        &[(
            &gzip_bytes(&tar),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )],
    );
    let image = format!("oci:{}", dir.display());
    let o = unpack_guarded(
        &image,
        &t.path().join("r1"),
        &[("EDGEFORGE_MAX_LAYER_SIZE", "1M")],
    );
    assert_fails(
        &o,
        7,
        &[
            &digests[0],
            "decompresses to more than 1048576 bytes",
            "EDGEFORGE_MAX_LAYER_SIZE",
        ],
    );
    assert!(!t.path().join("r1").exists());
    assert_ok(&unpack_guarded(
        &image,
        &t.path().join("r2"),
        &[("EDGEFORGE_MAX_LAYER_SIZE", "3M")],
    ));

    let many: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let tar = tar_bytes(
        &many
            .iter()
            .map(|n| Entry::File(n, b"x"))
            .collect::<Vec<_>>(),
    );
    let dir = t.path().join("many");
    let (_, digests) = layout_with_blobs(
        &dir,
        &[(
            &gzip_bytes(&tar),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )],
    );
    let image = format!("oci:{}", dir.display());
    let o = unpack_guarded(
        &image,
        &t.path().join("r3"),
        &[("EDGEFORGE_MAX_LAYER_ENTRIES", "10")],
    );
    assert_fails(
        &o,
        7,
        &[
            &digests[0],
            "more than 10 entries",
            "EDGEFORGE_MAX_LAYER_ENTRIES",
        ],
    );
    assert_ok(&unpack_guarded(
        &image,
        &t.path().join("r4"),
        &[("EDGEFORGE_MAX_LAYER_ENTRIES", "11")],
    ));

    let o = unpack_guarded(
        &image,
        &t.path().join("r5"),
        &[("EDGEFORGE_MAX_LAYER_ENTRIES", "lots")],
    );
    assert_fails(
        &o,
        2,
        &["EDGEFORGE_MAX_LAYER_ENTRIES=`lots` is not a number"],
    );
}

#[test]
fn docker_archive_manifest_paths_stay_inside_the_archive() {
    let t = tempfile::tempdir().unwrap();
    // A host file outside the archive folder, standing in for /etc/shadow.
    let secret = tar_bytes(&[Entry::File("shadow", b"root:$6$hash:19000:0:99999:7:::\n")]);
    fs::write(t.path().join("secret.tar"), &secret).unwrap();
    let secret_sha = sha256_hex(&secret);
    let archive = t.path().join("a/archive");
    fs::create_dir_all(&archive).unwrap();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(b"other"))]}});
    let config = serde_json::to_vec(&config).unwrap();
    fs::write(archive.join("config.json"), &config).unwrap();
    symlink("../../secret.tar", archive.join("linked.tar")).unwrap();
    let cases = [
        (
            "config.json",
            "../../secret.tar",
            "`../../secret.tar` climbs out of the root",
        ),
        (
            "../../etc/shadow",
            "layer.tar",
            "`../../etc/shadow` climbs out of the root",
        ),
        (
            "/etc/shadow",
            "layer.tar",
            "`/etc/shadow` is an absolute path",
        ),
        ("config.json", "linked.tar", "outside the image folder"),
    ];
    for (i, (config_path, layer_path, needle)) in cases.into_iter().enumerate() {
        let manifest = serde_json::json!([{"Config": config_path, "RepoTags": ["x:y"], "Layers": [layer_path]}]);
        fs::write(
            archive.join("manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        let out = t.path().join(format!("rootfs{i}"));
        let o = unpack_guarded(&format!("docker-archive:{}", archive.display()), &out, &[]);
        assert_fails(&o, 7, &[needle, "unsafe"]);
        assert!(
            !stderr(&o).contains(&secret_sha),
            "the outside file was read:\n{}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
}
