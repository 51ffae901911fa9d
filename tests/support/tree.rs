//! A snapshot of a folder tree with everything a root filesystem carries
//! (type, full mode, owner, size and content hash, symlink target, device
//! numbers, mtime, xattrs, hard-link identity), and a readable diff of two.
//! Names are bytes, walked sorted, symlinks never followed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What a path is, with what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File { size: u64, sha256: String },
    Dir,
    Symlink(Vec<u8>),
    Fifo,
    Char(u32, u32),
    Block(u32, u32),
    Socket,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::File { size, sha256 } => {
                write!(f, "file ({size} bytes, sha256 {})", &sha256[..12])
            }
            Kind::Dir => f.write_str("directory"),
            Kind::Symlink(t) => write!(f, "symlink -> {}", String::from_utf8_lossy(t)),
            Kind::Fifo => f.write_str("fifo"),
            Kind::Char(ma, mi) => write!(f, "char device {ma},{mi}"),
            Kind::Block(ma, mi) => write!(f, "block device {ma},{mi}"),
            Kind::Socket => f.write_str("socket"),
        }
    }
}

/// One path's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds (squashfs and tar keep no more).
    pub mtime: i64,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A tree: paths relative to its root (the root itself is `.`), and the
/// groups of paths that are one inode (hard links within the tree).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: BTreeMap<Vec<u8>, Node>,
    pub links: BTreeSet<BTreeSet<Vec<u8>>>,
}

impl Snapshot {
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path.as_bytes())
    }

    /// The node at `path`, failing the test when there is none.
    #[track_caller]
    pub fn node(&self, path: &str) -> &Node {
        self.get(path)
            .unwrap_or_else(|| panic!("{path} is missing from the tree"))
    }
}

fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

fn dev_minor(rdev: u64) -> u32 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32
}

/// All extended attributes of `path` itself (not of what a symlink points to).
pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut out = BTreeMap::new();
    // SAFETY: a NUL-terminated path and a null buffer ask for the size.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    assert!(
        n >= 0,
        "llistxattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    if n == 0 {
        return out;
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: the buffer holds `names.len()` bytes.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", path.display());
    names.truncate(n as usize);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).unwrap();
        // SAFETY: NUL-terminated strings; a null buffer asks for the size.
        let size = unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0) };
        assert!(size >= 0, "lgetxattr {}", path.display());
        let mut value = vec![0u8; size as usize];
        // SAFETY: the buffer holds `value.len()` bytes.
        let size = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(size >= 0, "lgetxattr {}", path.display());
        value.truncate(size as usize);
        out.insert(name.to_vec(), value);
    }
    out
}

/// Walks `root` (not following symlinks) and records every path.
pub fn snapshot(root: &Path) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut inodes: BTreeMap<(u64, u64), BTreeSet<Vec<u8>>> = BTreeMap::new();
    walk(root, b".".to_vec(), &mut snap, &mut inodes);
    snap.links = inodes.into_values().filter(|g| g.len() > 1).collect();
    snap
}

fn walk(
    path: &Path,
    rel: Vec<u8>,
    snap: &mut Snapshot,
    inodes: &mut BTreeMap<(u64, u64), BTreeSet<Vec<u8>>>,
) {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        let bytes = fs::read(path).unwrap();
        Kind::File {
            size: md.len(),
            sha256: super::sha256_hex(&bytes),
        }
    } else if ft.is_symlink() {
        Kind::Symlink(fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec())
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        Kind::Char(dev_major(md.rdev()), dev_minor(md.rdev()))
    } else if ft.is_block_device() {
        Kind::Block(dev_major(md.rdev()), dev_minor(md.rdev()))
    } else {
        Kind::Socket
    };
    if !ft.is_dir() && md.nlink() > 1 {
        inodes
            .entry((md.dev(), md.ino()))
            .or_default()
            .insert(rel.clone());
    }
    snap.nodes.insert(
        rel.clone(),
        Node {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            xattrs: xattrs(path),
        },
    );
    if ft.is_dir() {
        let mut names: Vec<Vec<u8>> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect();
        names.sort();
        for name in names {
            let child = if rel == b"." {
                name.clone()
            } else {
                [rel.as_slice(), b"/", &name].concat()
            };
            walk(
                &path.join(std::ffi::OsStr::from_bytes(&name)),
                child,
                snap,
                inodes,
            );
        }
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show_xattrs(x: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    if x.is_empty() {
        return "{}".into();
    }
    let items: Vec<String> = x
        .iter()
        .map(|(k, v)| {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("{}=0x{hex}", show(k))
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn show_group(g: &BTreeSet<Vec<u8>>) -> String {
    let v: Vec<String> = g.iter().map(|p| show(p)).collect();
    format!("{{{}}}", v.join(", "))
}

/// The differences between `left` and `right`, one readable line each
/// (`usr/bin/sudo: mode 0755 != 04755`, left value first); empty when the
/// trees are the same in every recorded respect.
pub fn diff(left_name: &str, left: &Snapshot, right_name: &str, right: &Snapshot) -> Vec<String> {
    let mut out = vec![];
    for (path, l) in &left.nodes {
        let p = show(path);
        let Some(r) = right.nodes.get(path) else {
            out.push(format!("{p}: only in {left_name} ({})", l.kind));
            continue;
        };
        if l.kind != r.kind {
            out.push(format!("{p}: {} != {}", l.kind, r.kind));
        }
        if l.mode != r.mode {
            out.push(format!("{p}: mode 0{:o} != 0{:o}", l.mode, r.mode));
        }
        if (l.uid, l.gid) != (r.uid, r.gid) {
            out.push(format!(
                "{p}: owner {}:{} != {}:{}",
                l.uid, l.gid, r.uid, r.gid
            ));
        }
        if l.mtime != r.mtime {
            out.push(format!("{p}: mtime {} != {}", l.mtime, r.mtime));
        }
        if l.xattrs != r.xattrs {
            out.push(format!(
                "{p}: xattrs {} != {}",
                show_xattrs(&l.xattrs),
                show_xattrs(&r.xattrs)
            ));
        }
    }
    for (path, r) in &right.nodes {
        if !left.nodes.contains_key(path) {
            out.push(format!("{}: only in {right_name} ({})", show(path), r.kind));
        }
    }
    for g in left.links.difference(&right.links) {
        out.push(format!("hard links {} only in {left_name}", show_group(g)));
    }
    for g in right.links.difference(&left.links) {
        out.push(format!("hard links {} only in {right_name}", show_group(g)));
    }
    out
}

/// Fails the test with every difference between the two trees.
#[track_caller]
pub fn assert_same(left_name: &str, left: &Snapshot, right_name: &str, right: &Snapshot) {
    let d = diff(left_name, left, right_name, right);
    assert!(
        d.is_empty(),
        "{} difference(s), {left_name} first, {right_name} second:\n  {}",
        d.len(),
        d.join("\n  ")
    );
}
