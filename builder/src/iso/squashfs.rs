//! `rootfs.squashfs` via mksquashfs, reproducibly: a fixed filesystem time,
//! sorted directories (mksquashfs's default since 4.4), and every file as
//! the root filesystem has it: mtimes, owners, modes and extended attributes
//! (flattening gives them as the image records them).

use std::fmt;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use crate::fs_meta;
use crate::host_tools;
use crate::log::warning;

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

pub fn make(
    sh: &Shell,
    rootfs: &Path,
    out: &Path,
    compression: Compression,
    epoch: u64,
) -> anyhow::Result<()> {
    let comp: &[&str] = match compression {
        Compression::Zstd => &["-comp", "zstd", "-Xcompression-level", "3"],
        Compression::Gzip => &["-comp", "gzip"],
        Compression::Xz => &["-comp", "xz"],
        Compression::Lz4 => &["-comp", "lz4"],
    };
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
    const STORED: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];
    let mut lost = Vec::new();
    for e in walkdir::WalkDir::new(rootfs).sort_by_file_name() {
        let e = e.with_context(|| format!("reading {}", rootfs.display()))?;
        let names: Vec<String> = fs_meta::xattrs(e.path())
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| !STORED.iter().any(|p| n.starts_with(p)))
            .map(|(n, _)| String::from_utf8_lossy(&n).into_owned())
            .collect();
        if !names.is_empty() {
            let rel = e.path().strip_prefix(rootfs).unwrap_or(e.path());
            lost.push(format!("/{} ({})", rel.display(), names.join(", ")));
        }
    }
    if !lost.is_empty() {
        let more = lost.len().saturating_sub(5);
        warning!(
            "squashfs cannot store POSIX ACLs or other system xattrs; rootfs.squashfs lacks them on {}{}",
            lost[..lost.len().min(5)].join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
    Ok(())
}
