//! The root filesystem as a UKI's initrd: a newc cpio archive (the format
//! the kernel unpacks into its initial root), zstd-compressed. Entries in
//! sorted order with the tree's modes, owners (root when not run as root,
//! as mksquashfs records them), mtimes and symlink targets; hard links share
//! an inode number and carry the data once, their link count being the
//! names they have in the tree (flattening links files to the cached lower
//! tree, and a concurrent build's tree links them again: the file system's
//! count would put those into the archive); inode numbers are assigned in
//! order, so the bytes depend on the tree alone. newc has no extended
//! attributes: file capabilities and SELinux labels do not survive (the
//! kernel's initramfs could not restore them either), and the build warns
//! naming the files that lose some, since a program that relies on its file
//! capability (ping, newuidmap) fails only at run time. A `/dev/console`
//! node is added when the tree has none, so init starts with a console.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::Context;

use crate::fs_meta;
use crate::log::warning;

/// zstd's default level: the Debian base's root filesystem in seconds.
const LEVEL: i32 = 3;

pub fn write(root: &Path, out: &Path) -> anyhow::Result<()> {
    let lost = archive(root, out)?;
    warn_lost_xattrs(&lost);
    Ok(())
}

/// Writes the archive; returns the files whose extended attributes it
/// could not carry, with the attributes' names.
fn archive(root: &Path, out: &Path) -> anyhow::Result<Vec<String>> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut enc = zstd::stream::Encoder::new(BufWriter::with_capacity(1 << 20, file), LEVEL)?;
    let mut w = Writer {
        out: &mut enc,
        next_ino: 1,
        names: names_in(root)?,
        links: HashMap::new(),
        as_root: !fs_meta::is_root(),
    };
    let mut has_console = false;
    let mut lost = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.with_context(|| format!("reading {}", root.display()))?;
        let rel = e.path().strip_prefix(root).expect("under the root");
        let name = rel
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 name", e.path().display()))?;
        has_console |= name == "dev/console";
        let xattrs = fs_meta::xattrs(e.path()).unwrap_or_default();
        if !xattrs.is_empty() {
            let names: Vec<String> = xattrs
                .iter()
                .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
                .collect();
            lost.push(format!("/{name} ({})", names.join(", ")));
        }
        w.entry(name, e.path())
            .with_context(|| format!("adding {} to the initrd", e.path().display()))?;
    }
    if !has_console {
        if !root.join("dev").is_dir() {
            let dev = Header {
                mode: 0o040755,
                nlink: 2,
                ..Header::default()
            };
            w.header_new_inode("dev", dev)?;
        }
        let console = Header {
            mode: 0o020600,
            nlink: 1,
            rdevmajor: 5,
            rdevminor: 1,
            ..Header::default()
        };
        w.header_new_inode("dev/console", console)?;
    }
    // The end marker: inode 0, one link, nothing else.
    let trailer = Header {
        nlink: 1,
        ..Header::default()
    };
    w.header("TRAILER!!!", &trailer)?;
    enc.finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(lost)
}

/// How many names each multiply linked file has inside `root`, by (dev, ino).
fn names_in(root: &Path) -> anyhow::Result<HashMap<(u64, u64), u32>> {
    let mut names = HashMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.with_context(|| format!("reading {}", root.display()))?;
        let md = e.metadata()?;
        if md.is_file() && md.nlink() > 1 {
            *names.entry((md.dev(), md.ino())).or_insert(0) += 1;
        }
    }
    Ok(names)
}

/// Says which files lose their extended attributes in the initrd.
fn warn_lost_xattrs(lost: &[String]) {
    if lost.is_empty() {
        return;
    }
    let more = lost.len().saturating_sub(5);
    warning!(
        "a UKI's initrd (newc cpio) carries no extended attributes: file capabilities, ACLs and labels are lost on {}{}; give such programs setuid or the capability at run time",
        lost[..lost.len().min(5)].join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    );
}

/// The fields of a newc entry header that vary, named as the format's
/// `c_*` fields; the others are constant: `c_magic` 070701, `c_devmajor`,
/// `c_devminor` and `c_check` 0 (one device for every entry, so the kernel
/// pairs hard links by inode number; newc has no checksum) and
/// `c_namesize` from the name.
#[derive(Default)]
struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    /// Seconds since 1970; newc keeps the low 32 bits.
    mtime: u64,
    /// Checked against newc's 4 GiB limit when written.
    filesize: u64,
    /// A device node's device number.
    rdevmajor: u32,
    rdevminor: u32,
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    next_ino: u32,
    /// (dev, ino) of a multiply linked file -> its names in the tree.
    names: HashMap<(u64, u64), u32>,
    /// (dev, ino) of a hard-linked file -> the inode number it got.
    links: HashMap<(u64, u64), u32>,
    /// Record root as every owner (unprivileged flattening could not chown).
    as_root: bool,
}

impl<W: Write> Writer<'_, W> {
    fn entry(&mut self, name: &str, path: &Path) -> anyhow::Result<()> {
        let md = fs::symlink_metadata(path)?;
        let ft = md.file_type();
        let (uid, gid) = if self.as_root {
            (0, 0)
        } else {
            (md.uid(), md.gid())
        };
        let h = Header {
            mode: md.mode(),
            uid,
            gid,
            nlink: 1,
            mtime: md.mtime().max(0) as u64,
            ..Header::default()
        };
        let key = (md.dev(), md.ino());
        let nlink = self.names.get(&key).copied().unwrap_or(1);
        if ft.is_file() && nlink > 1 {
            if let Some(&ino) = self.links.get(&key) {
                // Linked to the first: no data, the kernel links the name.
                return self.header(name, &Header { ino, nlink, ..h });
            }
            let ino = self.take_ino();
            self.links.insert(key, ino);
            let first = Header {
                ino,
                nlink,
                filesize: md.len(),
                ..h
            };
            self.header(name, &first)?;
            return self.data_file(path, md.len());
        }
        if ft.is_file() {
            let file = Header {
                filesize: md.len(),
                ..h
            };
            self.header_new_inode(name, file)?;
            self.data_file(path, md.len())
        } else if ft.is_symlink() {
            let target = fs::read_link(path)?;
            let bytes = target.as_os_str().as_encoded_bytes();
            let link = Header {
                filesize: bytes.len() as u64,
                ..h
            };
            self.header_new_inode(name, link)?;
            self.out.write_all(bytes)?;
            self.pad(bytes.len() as u64)
        } else if ft.is_dir() {
            self.header_new_inode(name, Header { nlink: 2, ..h })
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let node = Header {
                rdevmajor: libc::major(md.rdev()),
                rdevminor: libc::minor(md.rdev()),
                ..h
            };
            self.header_new_inode(name, node)
        } else {
            // Sockets: nothing to carry (flattening never makes them).
            Ok(())
        }
    }

    fn take_ino(&mut self) -> u32 {
        let i = self.next_ino;
        self.next_ino += 1;
        i
    }

    /// Writes `h` under the next inode number.
    fn header_new_inode(&mut self, name: &str, h: Header) -> anyhow::Result<()> {
        let ino = self.take_ino();
        self.header(name, &Header { ino, ..h })
    }

    /// Writes an entry's header and name, padded to 4 bytes.
    fn header(&mut self, name: &str, h: &Header) -> anyhow::Result<()> {
        let size = h.filesize;
        if size > u32::MAX as u64 {
            anyhow::bail!("{name} is {size} bytes; a newc cpio entry holds at most 4 GiB");
        }
        let (devmajor, devminor, check) = (0, 0, 0);
        let text = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{devmajor:08x}{devminor:08x}{:08x}{:08x}{:08x}{check:08x}",
            h.ino,
            h.mode,
            h.uid,
            h.gid,
            h.nlink,
            h.mtime as u32,
            size,
            h.rdevmajor,
            h.rdevminor,
            name.len() + 1,
        );
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad((text.len() + name.len() + 1) as u64)?;
        Ok(())
    }

    fn data_file(&mut self, path: &Path, len: u64) -> anyhow::Result<()> {
        let copied = io::copy(&mut File::open(path)?, self.out)?;
        if copied != len {
            anyhow::bail!("changed while being read ({len} bytes, then {copied})");
        }
        self.pad(len)
    }

    fn pad(&mut self, len: u64) -> anyhow::Result<()> {
        let n = (4 - (len % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..n])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// GNU cpio reads back what was written: names, types, links, data.
    #[test]
    fn cpio_lists_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/a"), b"hello").unwrap();
        fs::hard_link(root.join("etc/a"), root.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("a", root.join("etc/c")).unwrap();
        let out = t.path().join("i.cpio.zst");
        write(&root, &out).unwrap();
        let raw = zstd::decode_all(File::open(&out).unwrap()).unwrap();
        let x = t.path().join("x");
        fs::create_dir(&x).unwrap();
        let mut child = Command::new("cpio")
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(&x)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(fs::read(x.join("etc/a")).unwrap(), b"hello");
        assert_eq!(fs::read(x.join("etc/b")).unwrap(), b"hello");
        assert_eq!(fs::read_link(x.join("etc/c")).unwrap(), Path::new("a"));
        let (a, b) = (
            fs::metadata(x.join("etc/a")).unwrap(),
            fs::metadata(x.join("etc/b")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "hard links stay linked");
        assert!(raw.windows(11).any(|w| w == b"dev/console"));
        let again = t.path().join("again.cpio.zst");
        assert!(
            archive(&root, &again).unwrap().is_empty(),
            "no xattrs, none lost"
        );
        write(&root, &again).unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
    }

    /// The files whose xattrs the archive cannot carry are named, with
    /// the attributes, for the build's warning.
    #[test]
    fn lost_xattrs_are_named() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(root.join("usr/bin/ping"), b"x").unwrap();
        fs::write(root.join("usr/bin/plain"), b"x").unwrap();
        fs_meta::set_xattr(&root.join("usr/bin/ping"), b"user.demo", b"1")
            .expect("user xattrs on the temporary folder's filesystem");
        let lost = archive(&root, &t.path().join("i.cpio.zst")).unwrap();
        assert_eq!(lost, ["/usr/bin/ping (user.demo)"]);
    }

    /// Links from outside the tree (the cached lower tree, another build's
    /// tree) change nothing in the archive.
    #[test]
    fn links_outside_the_tree_do_not_count() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/a"), b"hello").unwrap();
        fs::write(root.join("etc/b"), b"world").unwrap();
        fs::hard_link(root.join("etc/b"), root.join("etc/c")).unwrap();
        let (one, two) = (t.path().join("1.cpio.zst"), t.path().join("2.cpio.zst"));
        archive(&root, &one).unwrap();
        fs::hard_link(root.join("etc/a"), t.path().join("outside-a")).unwrap();
        fs::hard_link(root.join("etc/b"), t.path().join("outside-b")).unwrap();
        archive(&root, &two).unwrap();
        assert_eq!(fs::read(&one).unwrap(), fs::read(&two).unwrap());
        let raw = zstd::decode_all(File::open(&two).unwrap()).unwrap();
        // etc/c: nlink 2 (its names in the tree), no data (etc/b has it).
        let at = memchr::memmem::find(&raw, b"etc/c\0").unwrap() - 110;
        assert_eq!(&raw[at + 38..at + 46], b"00000002", "nlink");
        assert_eq!(&raw[at + 54..at + 62], b"00000000", "size");
    }
}
