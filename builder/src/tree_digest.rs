//! One SHA-256 over a folder tree and everything mksquashfs takes from it:
//! for every entry in sorted order its path, type, permission bits, owner,
//! mtime, extended attributes, and the SHA-256 of a file's content, a
//! symlink's target or a device's number; a second name of an inode is
//! recorded as a link to the first. Cached trees are checked with it before
//! they are used, so a damaged file (one flipped byte, a lost write, a
//! changed mode) is found rather than squashed into an ISO.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest as _, Sha256};

use crate::fs_meta;
use crate::io::{file_sha256, Sha256Digest};

pub fn of(root: &Path) -> anyhow::Result<Sha256Digest> {
    let mut h = Sha256::new();
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.with_context(|| format!("reading {}", root.display()))?;
        let rel = e
            .path()
            .strip_prefix(root)
            .expect("walkdir stays under its root");
        let md = e
            .metadata()
            .with_context(|| format!("reading {}", e.path().display()))?;
        let t = md.file_type();
        let kind = if t.is_dir() {
            "d"
        } else if t.is_file() {
            "f"
        } else if t.is_symlink() {
            "l"
        } else if t.is_char_device() {
            "c"
        } else if t.is_block_device() {
            "b"
        } else if t.is_fifo() {
            "p"
        } else {
            "s"
        };
        h.update(kind);
        h.update(rel.as_os_str().as_bytes());
        h.update(b"\0");
        h.update(
            format!(
                "{:o} {}:{} {}.{}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec()
            )
            .as_bytes(),
        );
        let xattrs = fs_meta::xattrs(e.path())
            .with_context(|| format!("reading the attributes of {}", e.path().display()))?;
        for (name, value) in xattrs {
            h.update(format!(" x{}:{}:", name.len(), value.len()).as_bytes());
            h.update(&name);
            h.update(&value);
        }
        if t.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = inodes.get(&(md.dev(), md.ino())) {
                    h.update(b" =");
                    h.update(first.as_os_str().as_bytes());
                    h.update(b"\n");
                    continue;
                }
                inodes.insert((md.dev(), md.ino()), rel.to_path_buf());
            }
            let (sha, size) =
                file_sha256(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
            h.update(format!(" {size} {sha}").as_bytes());
        } else if t.is_symlink() {
            let target = fs::read_link(e.path())
                .with_context(|| format!("reading {}", e.path().display()))?;
            h.update(b" ");
            h.update(target.as_os_str().as_bytes());
        } else if t.is_char_device() || t.is_block_device() {
            h.update(format!(" {}", md.rdev()).as_bytes());
        }
        h.update(b"\n");
    }
    Ok(Sha256Digest(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn content_modes_links_and_times_change_the_digest_and_nothing_else_does() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("tree");
        let p = |rel: &str| root.join(rel);
        fs::create_dir_all(p("etc")).unwrap();
        fs::write(p("etc/a"), "alpha").unwrap();
        fs::write(p("etc/b"), "beta").unwrap();
        fs_meta::set_mtime(&p("etc/b"), 100).unwrap();
        std::os::unix::fs::symlink("a", p("etc/l")).unwrap();
        let mut last = of(&root).unwrap();
        // Reading the tree and another name for an inode outside it (a work
        // folder's link) change nothing.
        fs::hard_link(p("etc/a"), t.path().join("outside")).unwrap();
        assert_eq!(of(&root).unwrap(), last);

        let steps: [(&str, &dyn Fn()); 5] = [
            ("content, same size and mtime", &|| {
                fs::write(p("etc/b"), "betA").unwrap();
                fs_meta::set_mtime(&p("etc/b"), 100).unwrap();
            }),
            ("mode", &|| {
                fs::set_permissions(p("etc/a"), fs::Permissions::from_mode(0o600)).unwrap()
            }),
            ("symlink target", &|| {
                fs::remove_file(p("etc/l")).unwrap();
                std::os::unix::fs::symlink("b", p("etc/l")).unwrap();
            }),
            ("a hard link", &|| {
                fs::hard_link(p("etc/a"), p("etc/c")).unwrap()
            }),
            ("a folder's mtime", &|| {
                fs_meta::set_mtime(&p("etc"), 7).unwrap()
            }),
        ];
        for (what, step) in steps {
            step();
            let d = of(&root).unwrap();
            assert_ne!(d, last, "{what}");
            last = d;
        }
    }
}
