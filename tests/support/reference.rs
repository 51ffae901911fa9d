//! The reference tools the fidelity tests compare edgeforge with, run as
//! root: `umoci unpack` for an image's root filesystem, `unsquashfs` for a
//! squashfs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run_tool;

/// `umoci unpack` (as root) of `layout:tag` into `bundle`; returns its rootfs.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", layout.display()),
            bundle.to_str().unwrap(),
        ],
        bundle.parent().unwrap(),
    );
    bundle.join("rootfs")
}

/// umoci and unsquashfs restore owners, setuid bits, capabilities and
/// devices only as root, and the reference is what they give as root.
#[track_caller]
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the fidelity tests compare with `umoci unpack` and `unsquashfs` run as root; run them as root"
    );
}

/// `unsquashfs -d DIR FILE`, as root: owners, modes, xattrs, hard links and
/// mtimes restored.
pub fn unsquash(squashfs: &Path, dir: &Path) {
    run_tool(
        "unsquashfs",
        &[
            "-no-progress",
            "-d",
            dir.to_str().unwrap(),
            squashfs.to_str().unwrap(),
        ],
        dir.parent().unwrap(),
    );
}

/// `unsquashfs -lln` as path -> (mode string, uid/gid, the rest: size, date,
/// time and `-> target`), read from the squashfs itself, no extraction.
pub fn squashfs_listing(squashfs: &Path) -> BTreeMap<String, (String, String, String)> {
    let out = Command::new("unsquashfs")
        .args(["-lln", squashfs.to_str().unwrap()])
        .env("TZ", "UTC")
        .output()
        .expect("unsquashfs");
    assert!(out.status.success(), "unsquashfs -lln failed");
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(at) = line.find(" squashfs-root") else {
            continue;
        };
        let (head, path) = line.split_at(at);
        let path = path[" squashfs-root".len()..].trim_start_matches('/');
        let (path, target) = match path.split_once(" -> ") {
            Some((p, t)) => (p, format!(" -> {t}")),
            None => (path, String::new()),
        };
        let mut fields = head.split_whitespace();
        let mode = fields.next().unwrap_or_default().to_string();
        let owner = fields.next().unwrap_or_default().to_string();
        let rest = fields.collect::<Vec<_>>().join(" ") + &target;
        map.insert(
            if path.is_empty() { "." } else { path }.to_string(),
            (mode, owner, rest),
        );
    }
    map
}
