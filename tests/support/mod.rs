//! Shared test helpers: running the binary, the demo base, and a small OCI
//! layout builder for fixtures the demo base does not cover (whiteouts,
//! corrupt blobs, unsafe entries).

#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

pub mod hang_guard;
pub mod meta_tar;
pub mod reference;
pub mod registry;
pub mod tree;

pub const EPOCH: &str = "1700000000";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The demo base layout, made by the project's script on first use.
pub fn demo_base() -> PathBuf {
    let out = repo_root().join(".cache/demo-base");
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/make-demo-base.sh"))
        .arg(&out)
        .status()
        .expect("running scripts/make-demo-base.sh");
    assert!(status.success(), "scripts/make-demo-base.sh failed");
    out
}

/// The Debian base layout (images/demo.yaml's), made by the project's script
/// from Debian's packages on first use and cached outside the checkout.
pub fn debian_base() -> PathBuf {
    let out = repo_root().join(".cache/debian-base");
    let status = Command::new("bash")
        .arg(repo_root().join("scripts/make-debian-base.sh"))
        .arg(&out)
        .status()
        .expect("running scripts/make-debian-base.sh");
    assert!(status.success(), "scripts/make-debian-base.sh failed");
    out
}

/// A folder for a fixture a test binary builds once and keeps in a static:
/// statics are never dropped, so a temporary folder would stay behind after
/// every run. This one is under target/, emptied when the fixture is made.
pub struct FixtureDir(PathBuf);

impl FixtureDir {
    pub fn new(name: &str) -> FixtureDir {
        let dir = repo_root().join("target/test-fixtures").join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        FixtureDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// The layer cache the tests share (content-addressed, so sharing is safe),
/// kept out of the developer's own cache.
pub fn test_cache() -> PathBuf {
    repo_root().join("target/test-cache")
}

pub fn edgeforge(args: &[&str]) -> Output {
    edgeforge_in(&repo_root(), args)
}

/// Runs edgeforge like [`edgeforge`], with extra environment variables
/// (set after the defaults, so they can override SOURCE_DATE_EPOCH).
pub fn edgeforge_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgeforge"));
    c.args(args)
        .current_dir(repo_root())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("EDGEFORGE_CACHE_DIR", test_cache());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running edgeforge")
}

pub fn edgeforge_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeforge"))
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("EDGEFORGE_CACHE_DIR", test_cache())
        .output()
        .expect("running edgeforge")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "edgeforge failed ({:?}):\n{}",
        o.status.code(),
        stderr(o)
    );
}

/// Asserts the exit code and that stderr mentions every needle.
#[track_caller]
pub fn assert_fails(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "wrong exit code; stderr:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// Files and folders directly in `dir` (none if it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

/// Writes a definition into `dir/name.yaml` using the repo's templates and
/// overlays by absolute path; `extra` is appended YAML.
pub fn write_definition(dir: &Path, name: &str, base: &Path, extra: &str) -> PathBuf {
    let root = repo_root();
    let text = format!(
        "os:\n  distribution: ubuntu\n  version: \"22.04\"\narch: amd64\nkubernetes:\n  distribution: k3s\n  version: \"1.30.5\"\nagent:\n  version: v4.5.0\nregistry: ttl.sh\nrepository: ubuntu\ncustom_tag: test\nbase_image: {}\ntemplates: {}\n{extra}",
        base.display(),
        root.join("templates").display(),
    );
    let p = dir.join(format!("{name}.yaml"));
    fs::write(&p, text).unwrap();
    p
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One tar entry of a fixture layer.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    /// A raw name written without the tar crate's safety checks.
    RawFile(&'a str, &'a [u8]),
}

pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            Entry::RawFile(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                let name = &mut h.as_old_mut().name;
                name.fill(0);
                name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Writes an OCI layout at `dir` with one gzip layer per entry list; returns
/// the layer digests (hex).
pub fn oci_layout(dir: &Path, layers: &[Vec<Entry>]) -> Vec<String> {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar_bytes(l)).collect();
    layout_from_tars(dir, None, &tars)
}

/// Writes an OCI layout at `dir` with one gzip layer per raw tar, the manifest
/// tagged `tag` in index.json when given; returns the layer digests (hex).
pub fn layout_from_tars(dir: &Path, tag: Option<&str>, tars: &[Vec<u8>]) -> Vec<String> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let d = sha256_hex(data);
        fs::write(blobs.join(&d), data).unwrap();
        (d, data.len())
    };
    let mut descs = vec![];
    let mut diff_ids = vec![];
    let mut digests = vec![];
    for raw in tars {
        diff_ids.push(format!("sha256:{}", sha256_hex(raw)));
        let (d, n) = put(&gzip(raw));
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{d}"), "size": n}));
        digests.push(d);
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}});
    let (cd, cn) = put(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": cn}, "layers": descs});
    let (md, mn) = put(&serde_json::to_vec(&manifest).unwrap());
    let mut desc = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{md}"), "size": mn});
    if let Some(tag) = tag {
        desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [desc]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    digests
}

/// Copies a folder tree (regular files, folders, symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs a host tool and returns stdout, failing the test with its stderr.
#[track_caller]
pub fn run_tool(cmd: &str, args: &[&str], dir: &Path) -> String {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{cmd} is not runnable ({e}); run scripts/install-host-tools.sh")
        });
    assert!(
        o.status.success(),
        "{cmd} {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Extracts `path` from an ISO with xorriso (a reader independent of
/// edgeforge's own) to `to`, and returns its bytes.
pub fn iso_extract(iso: &Path, path: &str, to: &Path) -> Vec<u8> {
    let dir = to.parent().unwrap();
    run_tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            iso.to_str().unwrap(),
            "-extract",
            path,
            to.to_str().unwrap(),
        ],
        dir,
    );
    fs::read(to).unwrap()
}
