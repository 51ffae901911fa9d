//! ext4 file systems made from a folder by `mke2fs -d` (no root, no loop
//! mount), reproducibly: the UUID and directory hash seed are given, the
//! superblock's times come from E2FSPROGS_FAKE_TIME, and as `mke2fs -d`
//! copies each file's atime and ctime (which no one can set on the source)
//! and owner, a `debugfs -w` pass then gives every inode the epoch for all
//! four times and root for owner, whoever builds and whenever.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::host_tools;

/// What one ext4 file system is made with.
pub struct Ext4<'a> {
    pub label: &'a str,
    pub uuid: String,
    /// Bytes.
    pub size: u64,
    pub epoch: u64,
    /// Files (paths from the root) made 0600; other files are 0644, folders 0755.
    pub private: &'a [&'a str],
}

/// Writes an ext4 image at `out` holding `tree`, with the modes of
/// [`Ext4::private`] whatever the umask gave the staged files.
pub fn make(sh: &Shell, tree: &Path, out: &Path, fs: &Ext4) -> anyhow::Result<()> {
    let (label, uuid, size, epoch, private) =
        (fs.label, fs.uuid.as_str(), fs.size, fs.epoch, fs.private);
    let kib = format!("{}k", size / 1024);
    let epoch = epoch.to_string();
    let extended = format!("hash_seed={uuid},root_owner=0:0,lazy_itable_init=0,nodiscard");
    // e2fsprogs takes a fake time of 0 for "not set" and uses the clock:
    // the superblock of an epoch-0 build says 1970-01-01 00:00:01 instead.
    let fake = fs.epoch.max(1).to_string();
    let _fake = sh.push_env("E2FSPROGS_FAKE_TIME", &fake);
    let _sde = sh.push_env("SOURCE_DATE_EPOCH", &epoch);
    // orphan_file (new in e2fsprogs 1.47) is off: GRUB and older kernels
    // than the ones Kairos images carry do not all know it.
    host_tools::run(cmd!(
        sh,
        "mke2fs -q -F -t ext4 -b 4096 -m 0 -O ^orphan_file -L {label} -U {uuid} -E {extended} -d {tree} {out} {kib}"
    ))?;
    let mut script = String::new();
    let mut paths = vec![
        ("/".to_string(), 0o40755),
        ("/lost+found".to_string(), 0o40700),
    ];
    for e in walkdir::WalkDir::new(tree).min_depth(1).sort_by_file_name() {
        let e = e.with_context(|| format!("reading {}", tree.display()))?;
        let rel = format!(
            "/{}",
            e.path()
                .strip_prefix(tree)
                .expect("under the tree")
                .display()
        );
        let mode = match (e.file_type().is_dir(), private.contains(&rel.as_str())) {
            (true, _) => 0o40755,
            (false, true) => 0o100600,
            (false, false) => 0o100644,
        };
        paths.push((rel, mode));
    }
    for (p, mode) in &paths {
        for field in ["atime", "ctime", "mtime", "crtime"] {
            writeln!(script, "sif {p} {field} {epoch}").expect("a String");
        }
        writeln!(
            script,
            "sif {p} uid 0\nsif {p} gid 0\nsif {p} mode 0{mode:o}"
        )
        .expect("a String");
    }
    let file = out.with_extension("debugfs");
    std::fs::write(&file, script).with_context(|| format!("writing {}", file.display()))?;
    host_tools::run(cmd!(sh, "debugfs -w -f {file} {out}"))
}

/// The byte offset in the file system image of `path`'s data, which must be
/// one run of blocks (`debugfs -R 'blocks PATH'` lists them).
pub fn contiguous_offset(sh: &Shell, image: &Path, path: &str) -> anyhow::Result<Option<u64>> {
    let request = format!("blocks {path}");
    let out = cmd!(sh, "debugfs -R {request} {image}")
        .quiet()
        .ignore_stderr()
        .read()?;
    let blocks: Vec<u64> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let contiguous = blocks.windows(2).all(|w| w[1] == w[0] + 1);
    Ok(match blocks.first() {
        Some(first) if contiguous => Some(first * 4096),
        _ => None,
    })
}
