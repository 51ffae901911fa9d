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
use crate::io::{file_sha256_with, Sha256Digest};

pub fn of(root: &Path) -> anyhow::Result<Sha256Digest> {
    let records = walk(root)?;
    let files: Vec<&Path> = records
        .iter()
        .filter_map(|r| match &r.tail {
            Tail::Content(p) => Some(p.as_path()),
            Tail::Text(_) => None,
        })
        .collect();
    let mut contents = hash_files(&files)?.into_iter();
    let mut h = Sha256::new();
    for r in &records {
        h.update(&r.head);
        match &r.tail {
            Tail::Content(_) => {
                let (sha, size) = contents.next().expect("one digest per file");
                h.update(format!(" {size} {sha}").as_bytes());
            }
            Tail::Text(t) => h.update(t),
        }
        h.update(b"\n");
    }
    Ok(Sha256Digest(h.finalize().into()))
}

/// One entry's record: what the walk knows, then the content digest of a
/// file (computed later, in parallel) or the rest of the line.
struct Record {
    head: Vec<u8>,
    tail: Tail,
}

enum Tail {
    Content(PathBuf),
    Text(Vec<u8>),
}

fn walk(root: &Path) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
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
        let mut head = kind.as_bytes().to_vec();
        head.extend_from_slice(rel.as_os_str().as_bytes());
        head.push(0);
        head.extend_from_slice(
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
            head.extend_from_slice(format!(" x{}:{}:", name.len(), value.len()).as_bytes());
            head.extend_from_slice(&name);
            head.extend_from_slice(&value);
        }
        let tail = if t.is_file() {
            let first = (md.nlink() > 1)
                .then(|| inodes.get(&(md.dev(), md.ino())))
                .flatten();
            match first {
                Some(first) => Tail::Text([b" =", first.as_os_str().as_bytes()].concat()),
                None => {
                    if md.nlink() > 1 {
                        inodes.insert((md.dev(), md.ino()), rel.to_path_buf());
                    }
                    Tail::Content(e.path().to_path_buf())
                }
            }
        } else if t.is_symlink() {
            let target = fs::read_link(e.path())
                .with_context(|| format!("reading {}", e.path().display()))?;
            Tail::Text([b" ", target.as_os_str().as_bytes()].concat())
        } else if t.is_char_device() || t.is_block_device() {
            Tail::Text(format!(" {}", md.rdev()).into_bytes())
        } else {
            Tail::Text(Vec::new())
        };
        records.push(Record { head, tail });
    }
    Ok(records)
}

/// The content digests of `files`, in their order, hashed on every core
/// (a cached tree is checked before each use, and it can be a whole
/// distribution); the order, not the threads, decides the result.
fn hash_files(files: &[&Path]) -> anyhow::Result<Vec<(Sha256Digest, u64)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut buf = vec![0u8; 1 << 20];
                    part.iter()
                        .map(|p| {
                            file_sha256_with(p, &mut buf)
                                .with_context(|| format!("reading {}", p.display()))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(files.len());
        for w in workers {
            all.extend(w.join().expect("a hashing thread does not panic")?);
        }
        Ok(all)
    })
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
