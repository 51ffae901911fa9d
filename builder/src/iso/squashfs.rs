//! `rootfs.squashfs` via mksquashfs, reproducibly: a fixed filesystem time,
//! sorted directories (mksquashfs's default since 4.4), and every file as
//! the root filesystem has it: mtimes, owners, modes and extended attributes
//! (flattening gives them as the image records them).

use std::fmt;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use super::squashfs_root;
use crate::fs_meta;
use crate::host_tools;
use crate::log::warning;
use crate::oci::mem_tree::MemTree;
use crate::oci::tree_tar::{self, Content};

/// The squashfs compressor. zstd at level 3 is the default: on this
/// project's 1 GiB benchmark tree it took 1.9 s for 449 MB, against gzip's
/// 9.5 s for 497 MB and zstd's default level's 22 s for 446 MB
/// (scripts/bench-iso.sh prints the comparison).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    Xz,
    Lz4,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Zstd => "zstd level 3",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Lz4 => "lz4",
        })
    }
}

impl Compression {
    fn args(self) -> &'static [&'static str] {
        match self {
            Compression::Zstd => &["-comp", "zstd", "-Xcompression-level", "3"],
            Compression::Gzip => &["-comp", "gzip"],
            Compression::Xz => &["-comp", "xz"],
            Compression::Lz4 => &["-comp", "lz4"],
        }
    }
}

/// `rootfs.squashfs` of a model, streamed to `mksquashfs -tar` (squashfs-tools
/// 4.5.1 reads PAX extended attributes, hard links and special files from a
/// tar): the root filesystem is never written out as a folder. mksquashfs
/// ignores a tar's `./` entry: the root folder's mode goes as an option,
/// its mtime and owner are set afterwards (`squashfs_root`).
pub fn from_tree(
    sh: &Shell,
    tree: &MemTree,
    out: &Path,
    compression: Compression,
    epoch: u64,
) -> anyhow::Result<()> {
    let comp = compression.args();
    let root = tree.root();
    let lost: Vec<String> = std::iter::once((Path::new("/"), root))
        .chain(tree.entries().map(|(p, _, inode)| (p, inode)))
        .filter_map(|(p, inode)| {
            let names = unstorable(inode.xattrs.iter().map(|(n, _)| n.as_slice()));
            let shown = Path::new("/").join(p);
            (!names.is_empty()).then(|| format!("{} ({})", shown.display(), names.join(", ")))
        })
        .collect();
    warn_unstorable(&lost);
    if !root.xattrs.is_empty() {
        warning!("squashfs-tools cannot give the root folder of rootfs.squashfs extended attributes; it lacks those the image sets on /");
    }
    let mode = format!("{:o}", root.mode & 0o7777);
    let epoch = epoch.to_string();
    // In tar mode mksquashfs gives the root folder the runner's ids, which
    // then sit in the id table whatever the root gets afterwards: run as
    // root in a user namespace, so the bytes do not depend on who builds.
    let (program, as_root): (&str, &[&str]) = if fs_meta::is_root() || !user_namespaces(sh) {
        ("mksquashfs", &[])
    } else {
        ("unshare", &["--map-root-user", "--user", "mksquashfs"])
    };
    // mksquashfs refuses SOURCE_DATE_EPOCH (even empty) together with an explicit time.
    let cmd = cmd!(sh, "{program} {as_root...} - {out} -tar -noappend -b 1M {comp...} -noI -mkfs-time {epoch} -xattrs -root-mode {mode} -no-progress -quiet")
        .env_remove("SOURCE_DATE_EPOCH");
    let opts = tree_tar::Options {
        root: false,
        content: Content::Inline,
        only: None,
    };
    host_tools::run_fed(cmd, |stdin| tree_tar::write(tree, stdin, &opts))?;
    let id = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let mtime = u32::try_from(root.mtime.max(0)).unwrap_or(u32::MAX);
    squashfs_root::set_root(out, mtime, id(root.uid), id(root.gid))
}

/// Whether this unprivileged user may map itself to root in a new user
/// namespace (some kernels and containers forbid it).
fn user_namespaces(sh: &Shell) -> bool {
    let ok = cmd!(sh, "unshare --map-root-user --user true")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok();
    if !ok {
        warning!("unprivileged and without user namespaces: rootfs.squashfs's id table also lists your own user and group, so its bytes depend on who builds");
    }
    ok
}

/// `rootfs.squashfs` of a folder (`--rootfs DIR`).
pub fn make(
    sh: &Shell,
    rootfs: &Path,
    out: &Path,
    compression: Compression,
    epoch: u64,
) -> anyhow::Result<()> {
    let comp = compression.args();
    let epoch = epoch.to_string();
    // Unprivileged, flattening cannot give files their owners: record
    // root rather than whoever ran the build.
    let owners: &[&str] = if fs_meta::is_root() {
        &[]
    } else {
        &["-all-root"]
    };
    warn_unstorable_xattrs(rootfs)?;
    // mksquashfs refuses SOURCE_DATE_EPOCH (even empty) together with an explicit time.
    let cmd = cmd!(sh, "mksquashfs {rootfs} {out} -noappend -b 1M {comp...} -mkfs-time {epoch} -xattrs {owners...} -no-progress -quiet")
        .env_remove("SOURCE_DATE_EPOCH");
    host_tools::run(cmd)
}

/// Squashfs stores extended attributes of the `user.`, `trusted.` and
/// `security.` namespaces only: POSIX ACLs (`system.posix_acl_*`, which
/// systemd puts on /var/log/journal) and other namespaces cannot go into
/// `rootfs.squashfs`, and mksquashfs says so without naming the file. Says
/// which files lose what, so a user whose image needs an ACL sets it at
/// boot (systemd-tmpfiles `a+` lines do exactly that for the journal).
fn warn_unstorable_xattrs(rootfs: &Path) -> anyhow::Result<()> {
    let mut lost = Vec::new();
    for e in walkdir::WalkDir::new(rootfs).sort_by_file_name() {
        let e = e.with_context(|| format!("reading {}", rootfs.display()))?;
        let xattrs = fs_meta::xattrs(e.path()).unwrap_or_default();
        let names = unstorable(xattrs.iter().map(|(n, _)| n.as_slice()));
        if !names.is_empty() {
            let rel = e.path().strip_prefix(rootfs).unwrap_or(e.path());
            lost.push(format!("/{} ({})", rel.display(), names.join(", ")));
        }
    }
    warn_unstorable(&lost);
    Ok(())
}

/// The names squashfs cannot store.
fn unstorable<'a>(names: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    const STORED: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];
    names
        .filter(|n| !STORED.iter().any(|p| n.starts_with(p)))
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// `lost`: "/path (names)" for each file losing attributes.
fn warn_unstorable(lost: &[String]) {
    if !lost.is_empty() {
        let more = lost.len().saturating_sub(5);
        warning!(
            "squashfs cannot store POSIX ACLs or other system xattrs; rootfs.squashfs lacks them on {}{}",
            lost[..lost.len().min(5)].join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
}
