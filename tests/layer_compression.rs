//! Layer compression on every core: gzip and zstd layers are the same bytes
//! whatever the number of threads, pass `gzip -t`/`zstd -t`, are read by
//! skopeo and umoci (as root; zstd through skopeo, see below) and by
//! edgeforge itself (unpack, a zstd image as base, bundles), and the ISO of
//! a zstd provider image equals the ISO of the gzip one.
//!
//! One build per compression (images/demo-busybox.yaml on the demo base,
//! plus a component tree of several compression blocks and zstd jobs),
//! shared by the tests.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::reference::{require_root, umoci_unpack};
use support::tree::{assert_same, snapshot, Kind};
use support::*;

const KINDS: [&str; 2] = ["gzip", "zstd"];
/// The component's files: several 1 MiB gzip blocks and 4 MiB zstd jobs.
const SIZES: [usize; 8] = [
    6 << 20,
    4 << 20,
    2 << 20,
    1 << 20,
    700_000,
    300_000,
    40_000,
    0,
];
const TREE_BYTES: usize = (13 << 20) + 1_040_000;
const COMPONENT_AT: &str = "/opt/big";

struct Fixture {
    dir: FixtureDir,
    tree: PathBuf,
    user_data: PathBuf,
}

impl Fixture {
    fn out(&self, kind: &str) -> PathBuf {
        self.dir.path().join(format!("out-{kind}"))
    }

    /// The provider image built for `kind` with every core.
    fn archive(&self, kind: &str) -> PathBuf {
        archive_in(&self.out(kind))
    }
}

/// Pseudo-random bytes (xorshift), text and zero runs, as a rootfs mixes them.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 3 {
            0 => out.extend_from_slice(&x.to_le_bytes()),
            1 => out.extend_from_slice(b"kernel module firmware config "),
            _ => out.extend_from_slice(&[0u8; 24]),
        }
    }
    out.truncate(len);
    out
}

fn make_tree(root: &Path) {
    assert_eq!(SIZES.iter().sum::<usize>(), TREE_BYTES);
    for (i, size) in SIZES.iter().enumerate() {
        let dir = root.join(format!("d{}", i % 3));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}.bin")), content(*size, i as u64 + 7)).unwrap();
    }
    std::os::unix::fs::symlink("d0/f0.bin", root.join("link")).unwrap();
}

fn user_data(dir: &Path) -> PathBuf {
    let p = dir.join("user-data.yaml");
    fs::write(
        &p,
        "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n    edgeHostToken: tOkEn-5e1b7c0d44ff\n    name: edge-compression\ninstall:\n  poweroff: true\n",
    )
    .unwrap();
    p
}

/// `--set` arguments for the demo definition with `kind` layers and the tree.
fn sets(kind: &str, tree: &Path) -> Vec<String> {
    vec![
        "--set".into(),
        format!("layer_compression={kind}"),
        "--set".into(),
        format!(
            "components=[{{source: {}, destination: {COMPONENT_AT}}}]",
            tree.display()
        ),
    ]
}

fn archive_in(out: &Path) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".oci.tar"))
        .collect();
    assert_eq!(found.len(), 1, "one provider image in {}", out.display());
    found[0].clone()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        demo_base();
        let dir = FixtureDir::new("layer-compression");
        let tree = dir.path().join("tree");
        make_tree(&tree);
        let user_data = user_data(dir.path());
        let f = Fixture {
            dir,
            tree,
            user_data,
        };
        for kind in KINDS {
            let mut args: Vec<String> = vec!["--no-cache".into(), "build".into()];
            args.push("images/demo-busybox.yaml".into());
            args.extend(sets(kind, &f.tree));
            args.extend([
                "--user-data".into(),
                f.user_data.display().to_string(),
                "--out".into(),
                f.out(kind).display().to_string(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert_ok(&edgeforge(&args));
        }
        f
    })
}

/// The blobs of an oci-archive, by digest (hex).
fn archive_blobs(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut blobs = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            blobs.insert(hex.to_string(), bytes);
        }
    }
    blobs
}

/// The layer descriptors of an oci-archive's one image.
fn layers(archive: &Path) -> Vec<serde_json::Value> {
    let blobs = archive_blobs(archive);
    let manifests: Vec<serde_json::Value> = blobs
        .values()
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .filter(|v| v["mediaType"] == "application/vnd.oci.image.manifest.v1+json")
        .collect();
    assert_eq!(manifests.len(), 1);
    manifests[0]["layers"].as_array().unwrap().clone()
}

/// `gzip -t` or `zstd -t` on `file`, and its decompressed bytes.
fn test_and_decompress(kind: &str, file: &Path) -> Vec<u8> {
    run_tool(kind, &["-t", file.to_str().unwrap()], Path::new("/"));
    let o = Command::new(kind)
        .args(["-dc", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{kind} -dc {}", file.display());
    o.stdout
}

#[test]
fn layers_and_archives_are_the_same_bytes_on_one_thread_and_every_core() {
    let f = fixture();
    let t = tempfile::tempdir().unwrap();
    for kind in KINDS {
        // `edgeforge layer`: one thread, three (more than this machine's
        // cores), and every core.
        let mut written: Vec<(String, Vec<u8>)> = vec![];
        for threads in ["1", "3", ""] {
            let out = t.path().join(format!("{kind}-{threads}.layer"));
            let args = [
                "layer",
                f.tree.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--compression",
                kind,
            ];
            let o = if threads.is_empty() {
                edgeforge(&args)
            } else {
                edgeforge_env(&args, &[("EDGEFORGE_THREADS", threads)])
            };
            assert_ok(&o);
            let bytes = fs::read(&out).unwrap();
            let line = stdout(&o);
            assert!(
                line.contains(&format!("digest sha256:{}", sha256_hex(&bytes))),
                "{line}"
            );
            let tar = test_and_decompress(kind, &out);
            assert!(
                tar.len() > TREE_BYTES,
                "the layer holds the whole tree: {} bytes",
                tar.len()
            );
            assert!(
                line.contains(&format!("diff_id sha256:{}", sha256_hex(&tar))),
                "{line}"
            );
            written.push((threads.to_string(), bytes));
        }
        let magic: &[u8] = if kind == "gzip" {
            &[0x1f, 0x8b]
        } else {
            &[0x28, 0xb5, 0x2f, 0xfd]
        };
        assert!(written[0].1.starts_with(magic), "{kind} magic");
        for (threads, bytes) in &written[1..] {
            assert!(
                *bytes == written[0].1,
                "{kind}: the layer written with EDGEFORGE_THREADS={threads:?} differs from the one-thread layer"
            );
        }

        // A whole provider image on one thread equals the one built on
        // every core.
        let out = t.path().join(format!("one-thread-{kind}"));
        let mut args: Vec<String> = vec![
            "--no-cache".into(),
            "provider-image".into(),
            "images/demo-busybox.yaml".into(),
        ];
        args.extend(sets(kind, &f.tree));
        args.extend(["--out".into(), out.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_ok(&edgeforge_env(&args, &[("EDGEFORGE_THREADS", "1")]));
        assert!(
            fs::read(archive_in(&out)).unwrap() == fs::read(f.archive(kind)).unwrap(),
            "{kind}: the provider image built on one thread differs from the one built on every core"
        );
    }
}

#[test]
fn bad_thread_counts_are_usage_errors() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("l.tar.gz");
    for bad in ["0", "many", "-2"] {
        let o = edgeforge_env(
            &[
                "layer",
                repo_root().join("overlays/rootfs").to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[("EDGEFORGE_THREADS", bad)],
        );
        assert_fails(&o, 2, &[&format!("EDGEFORGE_THREADS=`{bad}`"), "1 to 1024"]);
        assert!(!out.exists());
    }
}

#[test]
fn skopeo_umoci_and_edgeforge_read_both_layer_kinds() {
    require_root();
    let f = fixture();
    let t = tempfile::tempdir().unwrap();
    let mut rootfs = BTreeMap::new();
    for kind in KINDS {
        let archive = f.archive(kind);
        // The two layers edgeforge added (component, overlays) carry the
        // media type of the definition's compression; the base's are as
        // the base has them.
        let descs = layers(&archive);
        let ours = &descs[descs.len() - 2..];
        for d in ours {
            assert_eq!(
                d["mediaType"],
                format!("application/vnd.oci.image.layer.v1.tar+{kind}"),
                "{d}"
            );
        }

        let layout = t.path().join(format!("layout-{kind}"));
        run_tool(
            "skopeo",
            &[
                "copy",
                &format!("oci-archive:{}", archive.display()),
                &format!("oci:{}:edge", layout.display()),
            ],
            t.path(),
        );
        // skopeo kept the blobs as they are; each passes the tool's test.
        for d in ours {
            let hex = d["digest"].as_str().unwrap().trim_start_matches("sha256:");
            test_and_decompress(kind, &layout.join("blobs/sha256").join(hex));
        }

        // umoci reads zstd layers from 0.5 on; Debian's 0.4.7 reads gzip
        // only, so it gets the zstd image as skopeo converts it: skopeo
        // reads our zstd layers and writes gzip ones (umoci then checks
        // their content against the config's diff_ids).
        let layout = if kind == "zstd" {
            let converted = t.path().join("layout-zstd-as-gzip");
            run_tool(
                "skopeo",
                &[
                    "copy",
                    "--dest-compress-format",
                    "gzip",
                    &format!("oci:{}:edge", layout.display()),
                    &format!("oci:{}:edge", converted.display()),
                ],
                t.path(),
            );
            converted
        } else {
            layout
        };
        let root = umoci_unpack(&layout, "edge", &t.path().join(format!("bundle-{kind}")));
        // The component holds the source tree's entries with their content.
        let kinds = |root: &Path| -> BTreeMap<Vec<u8>, Kind> {
            snapshot(root)
                .nodes
                .into_iter()
                .map(|(p, n)| (p, n.kind))
                .collect()
        };
        assert_eq!(
            kinds(&root.join(COMPONENT_AT.trim_start_matches('/'))),
            kinds(&f.tree),
            "{kind}: umoci's {COMPONENT_AT} differs from the component's source"
        );

        let unpacked = t.path().join(format!("unpacked-{kind}"));
        assert_ok(&edgeforge(&[
            "unpack",
            &format!("oci-archive:{}", archive.display()),
            "--out",
            unpacked.to_str().unwrap(),
        ]));
        let reference = snapshot(&root);
        assert_same(
            "edgeforge unpack",
            &snapshot(&unpacked),
            "umoci unpack",
            &reference,
        );
        rootfs.insert(kind, reference);
    }
    assert_same(
        "umoci's gzip image",
        &rootfs["gzip"],
        "umoci's zstd image",
        &rootfs["zstd"],
    );
}

#[test]
fn a_zstd_provider_image_gives_the_same_iso_and_serves_as_base_and_bundle() {
    let f = fixture();
    let iso = |kind: &str| fs::read(f.out(kind).join("palette-edge-installer.iso")).unwrap();
    assert!(
        iso("gzip") == iso("zstd"),
        "the ISO of the zstd provider image differs from the ISO of the gzip one"
    );

    let t = tempfile::tempdir().unwrap();
    let zstd_image = f.archive("zstd");
    // A zstd image as the base of another (its layers read to place the new
    // layer's entries), with gzip layers of its own.
    let def = write_definition(
        t.path(),
        "on-zstd",
        Path::new(&format!("oci-archive:{}", zstd_image.display())),
        "components:\n  - source: extra\n    destination: /opt/big/d0\n",
    );
    fs::create_dir_all(t.path().join("extra")).unwrap();
    fs::write(t.path().join("extra/added.txt"), "on a zstd base\n").unwrap();
    let out = t.path().join("out");
    assert_ok(&edgeforge(&[
        "--no-cache",
        "provider-image",
        def.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let unpacked = t.path().join("unpacked");
    assert_ok(&edgeforge(&[
        "unpack",
        &format!("oci-archive:{}", archive_in(&out).display()),
        "--out",
        unpacked.to_str().unwrap(),
    ]));
    let big = unpacked.join(COMPONENT_AT.trim_start_matches('/'));
    assert_eq!(
        fs::read(big.join("d0/added.txt")).unwrap(),
        b"on a zstd base\n"
    );
    assert_eq!(
        fs::read(big.join("d0/f0.bin")).unwrap(),
        fs::read(f.tree.join("d0/f0.bin")).unwrap(),
        "the zstd base's files are there"
    );
    let descs = layers(&archive_in(&out));
    assert_eq!(
        descs.last().unwrap()["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // A bundle takes the zstd layers as they are and verifies them.
    let bundle = t.path().join("content.tar.zst");
    assert_ok(&edgeforge(&[
        "bundle",
        &format!("edge=oci-archive:{}", zstd_image.display()),
        "-o",
        bundle.to_str().unwrap(),
    ]));
    let o = edgeforge(&["bundle", "verify", bundle.to_str().unwrap()]);
    assert_ok(&o);
}
