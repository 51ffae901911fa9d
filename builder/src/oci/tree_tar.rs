//! A `MemTree` as a POSIX tar archive (ustar headers, PAX records for
//! long names, large numbers and extended attributes), in path order, each
//! hard-linked inode's data once. Two uses:
//! - the stream `mksquashfs -tar` reads (`Content::Inline`);
//! - the index of a cached tree (`Content::Referenced`): the same archive
//!   with every file's bytes replaced by where they are in the cached spool,
//!   read back by `load`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::mem_tree::{Data, Inode, MemTree, NodeKind};
use crate::log::warning;

const XATTR_PREFIX: &str = "SCHILY.xattr.";
/// `OFFSET LEN` of a file's bytes in the cached spool.
const DATA_KEY: &str = "EDGEFORGE.data";
/// ustar's name and link name fields.
const NAME_FIELD: usize = 100;
/// The largest number ustar's 8-byte octal fields hold.
const MAX_ID: u64 = 0o7777777;
/// And its 12-byte ones (size, mtime).
const MAX_OCTAL_12: u64 = 0o77777777777;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Each file's bytes follow its header.
    Inline,
    /// Each file's place in spool 0 is recorded instead.
    Referenced,
}

/// Picks paths to write (`Options::only`, `extract`).
pub type Select<'s> = dyn Fn(&Path, &Inode) -> bool + Sync + 's;

pub struct Options<'a> {
    /// Whether the root folder's own entry (`./`) comes first.
    pub root: bool,
    pub content: Content,
    /// Which paths go in (all when `None`); a hard-linked file's bytes go
    /// with the first of its names that does.
    pub only: Option<&'a Select<'a>>,
}

/// Writes `tree` to `out` as a tar archive, with its end marker.
pub fn write(tree: &MemTree, out: impl Write, opts: &Options<'_>) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    let counts = tree.link_counts();
    let mut first_name: HashMap<usize, &Path> = HashMap::new();
    if opts.root {
        append(&mut builder, tree, Path::new("."), tree.root(), None, opts)?;
    }
    for (path, ino, inode) in tree.entries() {
        if opts.only.is_some_and(|only| !only(path, inode)) {
            continue;
        }
        let hard_link = if counts[ino] > 1 {
            match first_name.get(&ino) {
                Some(first) => Some(*first),
                None => {
                    first_name.insert(ino, path);
                    None
                }
            }
        } else {
            None
        };
        append(&mut builder, tree, path, inode, hard_link, opts)?;
    }
    builder.into_inner()?.flush()
}

fn append(
    builder: &mut tar::Builder<impl Write>,
    tree: &MemTree,
    path: &Path,
    inode: &Inode,
    hard_link: Option<&Path>,
    opts: &Options<'_>,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut data = None;
    let mut long_link = None;
    let (kind, size) = match (&inode.kind, hard_link) {
        (_, Some(first)) => {
            long_link = set_name(&mut header, &mut pax, first, Field::Link);
            (tar::EntryType::Link, 0)
        }
        (NodeKind::Dir, None) => (tar::EntryType::Directory, 0),
        (NodeKind::File(d), None) => match opts.content {
            Content::Inline => {
                data = Some(*d);
                (tar::EntryType::Regular, d.len)
            }
            Content::Referenced => {
                if d.spool != 0 {
                    return Err(io::Error::other(
                        "a cached tree's files must all be in its own spool",
                    ));
                }
                pax.push((
                    DATA_KEY.into(),
                    format!("{} {}", d.offset, d.len).into_bytes(),
                ));
                (tar::EntryType::Regular, 0)
            }
        },
        (NodeKind::Symlink(target), None) => {
            long_link = set_name(&mut header, &mut pax, target, Field::Link);
            (tar::EntryType::Symlink, 0)
        }
        (NodeKind::Fifo, None) => (tar::EntryType::Fifo, 0),
        (NodeKind::Char(major, minor), None) => {
            header.set_device_major(*major)?;
            header.set_device_minor(*minor)?;
            (tar::EntryType::Char, 0)
        }
        (NodeKind::Block(major, minor), None) => {
            header.set_device_major(*major)?;
            header.set_device_minor(*minor)?;
            (tar::EntryType::Block, 0)
        }
    };
    header.set_entry_type(kind);
    set_name(&mut header, &mut pax, path, Field::Name);
    if let Some(target) = &long_link {
        append_long_link(builder, target)?;
    }
    header.set_mode(inode.mode & 0o7777);
    number(&mut pax, "uid", inode.uid, MAX_ID, |v| header.set_uid(v));
    number(&mut pax, "gid", inode.gid, MAX_ID, |v| header.set_gid(v));
    number(&mut pax, "size", size, MAX_OCTAL_12, |v| header.set_size(v));
    // Squashfs keeps unsigned 32-bit times (earlier than 1970 is 1970), and
    // mksquashfs 4.5.1 refuses a PAX mtime without a fraction: the stream
    // for it never needs one. The index keeps any time.
    let mtime = match opts.content {
        Content::Inline => inode.mtime.clamp(0, u32::MAX as i64) as u64,
        Content::Referenced => inode.mtime.max(0) as u64,
    };
    number(&mut pax, "mtime", mtime, MAX_OCTAL_12, |v| {
        header.set_mtime(v)
    });
    if hard_link.is_none() {
        for (name, value) in &inode.xattrs {
            // PAX keys are UTF-8: such a name cannot be carried (a kernel
            // accepts none outside user-defined namespaces anyway).
            let Ok(name) = std::str::from_utf8(name) else {
                warning!(
                    "/{}: an extended attribute whose name is not UTF-8 is left out",
                    path.display()
                );
                continue;
            };
            pax.push((format!("{XATTR_PREFIX}{name}"), value.clone()));
        }
    }
    if !pax.is_empty() {
        builder.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    header.set_cksum();
    match data {
        Some(d) => builder.append(&header, tree.open(d)),
        None => builder.append(&header, io::empty()),
    }
}

#[derive(Clone, Copy)]
enum Field {
    Name,
    Link,
}

/// Puts `path`'s bytes in the header's field (it then holds their start,
/// as GNU tar does). A name that does not fit goes in a PAX `path` record;
/// a link target that does not fit is returned for a GNU long-link entry,
/// because mksquashfs 4.5.1 strips a PAX `linkpath`'s leading `/` and `../`
/// (it reads a long-link entry as it is).
fn set_name(
    header: &mut tar::Header,
    pax: &mut Vec<(String, Vec<u8>)>,
    path: &Path,
    f: Field,
) -> Option<Vec<u8>> {
    let bytes = path.as_os_str().as_bytes();
    let old = header.as_old_mut();
    let field = match f {
        Field::Name => &mut old.name,
        Field::Link => &mut old.linkname,
    };
    let n = bytes.len().min(NAME_FIELD);
    field[..n].copy_from_slice(&bytes[..n]);
    if bytes.len() <= NAME_FIELD {
        return None;
    }
    match f {
        Field::Name => {
            pax.push(("path".into(), bytes.to_vec()));
            None
        }
        Field::Link => Some(bytes.to_vec()),
    }
}

/// A GNU long-link entry (`K`) for the next entry's link target.
fn append_long_link(builder: &mut tar::Builder<impl Write>, target: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    let name = b"././@LongLink";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::GNULongLink);
    h.set_mode(0o644);
    let mut data = target.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    builder.append(&h, &data[..])
}

/// Sets a numeric field, or a PAX record when the value is too large for it.
fn number(
    pax: &mut Vec<(String, Vec<u8>)>,
    key: &str,
    value: u64,
    max: u64,
    set: impl FnOnce(u64),
) {
    if value > max {
        pax.push((key.into(), value.to_string().into_bytes()));
        set(0);
    } else {
        set(value);
    }
}

/// Writes the paths of `tree` that `only` selects (all when `None`) into the
/// folder `dest` (created if missing), the way flattening writes a layer.
pub fn extract(
    tree: &MemTree,
    dest: &Path,
    only: Option<&Select<'_>>,
    epoch: u64,
) -> anyhow::Result<()> {
    let (reader, writer) = io::pipe()?;
    let opts = Options {
        root: true,
        content: Content::Inline,
        only,
    };
    std::thread::scope(|s| {
        let written = s.spawn(move || {
            crate::io::sigpipe::block_in_this_thread();
            write(tree, io::BufWriter::with_capacity(1 << 20, writer), &opts)
        });
        let applied = super::flatten::apply_tar(reader, dest, epoch);
        let written = written.join().expect("the tar writer does not panic");
        match (written, applied) {
            // Applying failed first and closed the pipe: its error is the cause.
            (Err(w), Err(a)) if w.kind() == io::ErrorKind::BrokenPipe => Err(a),
            // A failed write shows as a cut archive to the reader: its cause first.
            (Err(w), _) => Err(w.into()),
            (Ok(()), applied) => applied.map(drop),
        }
    })
}

/// Reads back a cached tree: `index` written with `Content::Referenced`
/// and `root: true`, its files' bytes in `spool`; new file data goes to
/// `new_spool` (created).
pub fn load(index: &Path, spool: &Path, new_spool: &Path) -> anyhow::Result<MemTree> {
    use anyhow::Context;
    let ctx = || format!("reading the cached tree index {}", index.display());
    let spool = File::open(spool).with_context(|| format!("opening {}", spool.display()))?;
    let mut archive = tar::Archive::new(File::open(index).with_context(ctx)?);
    let mut tree: Option<MemTree> = None;
    for entry in archive.entries().with_context(ctx)? {
        let mut entry = entry.with_context(ctx)?;
        let path: PathBuf = entry.path().with_context(ctx)?.into_owned();
        let inode = inode(&mut entry).with_context(ctx)?;
        match tree.as_mut() {
            None if path == Path::new(".") => {
                tree = Some(
                    MemTree::with_root(inode, vec![spool.try_clone()?], new_spool)
                        .with_context(|| format!("creating {}", new_spool.display()))?,
                );
            }
            None => anyhow::bail!("{}: it does not start with the root", index.display()),
            Some(t) if entry.header().entry_type() == tar::EntryType::Link => {
                let first = entry
                    .link_name()
                    .with_context(ctx)?
                    .unwrap_or_default()
                    .into_owned();
                t.link(path, &first).with_context(ctx)?;
            }
            Some(t) => t.insert(path, inode),
        }
    }
    tree.ok_or_else(|| anyhow::anyhow!("{} is empty", index.display()))
}

/// The inode an index entry describes (for a hard link, the caller uses
/// the first name's instead).
fn inode(entry: &mut tar::Entry<impl Read>) -> io::Result<Inode> {
    let mut xattrs = Vec::new();
    let mut data = None;
    let h = entry.header();
    let (mut uid, mut gid, mut mtime) = (h.uid()?, h.gid()?, h.mtime()? as i64);
    if let Some(extensions) = entry.pax_extensions()? {
        for ext in extensions {
            let ext = ext?;
            let (key, value) = (ext.key_bytes(), ext.value_bytes());
            if let Some(name) = key.strip_prefix(XATTR_PREFIX.as_bytes()) {
                xattrs.push((name.to_vec(), value.to_vec()));
                continue;
            }
            match key {
                k if k == DATA_KEY.as_bytes() => data = Some(parse_data(value)?),
                b"uid" => uid = parse_number(value)?,
                b"gid" => gid = parse_number(value)?,
                b"mtime" => mtime = parse_number(value)? as i64,
                _ => {}
            }
        }
    }
    let h = entry.header();
    let dev = || -> io::Result<(u32, u32)> {
        Ok((
            h.device_major()?.unwrap_or(0),
            h.device_minor()?.unwrap_or(0),
        ))
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let kind = match h.entry_type() {
        tar::EntryType::Directory => NodeKind::Dir,
        tar::EntryType::Regular => {
            NodeKind::File(data.ok_or_else(|| bad("a file without its data place"))?)
        }
        tar::EntryType::Symlink => NodeKind::Symlink(
            entry
                .link_name()?
                .map(|l| l.into_owned())
                .unwrap_or_default(),
        ),
        tar::EntryType::Fifo | tar::EntryType::Link => NodeKind::Fifo,
        tar::EntryType::Char => {
            let (a, b) = dev()?;
            NodeKind::Char(a, b)
        }
        tar::EntryType::Block => {
            let (a, b) = dev()?;
            NodeKind::Block(a, b)
        }
        other => return Err(bad(&format!("an entry of type {other:?}"))),
    };
    xattrs.sort();
    Ok(Inode {
        kind,
        mode: entry.header().mode()? & 0o7777,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

fn parse_number(value: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a bad number"))
}

fn parse_data(value: &[u8]) -> io::Result<Data> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a bad data place");
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (offset, len) = text.split_once(' ').ok_or_else(bad)?;
    Ok(Data {
        spool: 0,
        offset: offset.parse().map_err(|_| bad())?,
        len: len.parse().map_err(|_| bad())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::tree::Tree;

    /// A model with every kind of entry, a long path, a large owner and
    /// extended attributes, its data in `dir/spool`.
    fn model(dir: &Path) -> MemTree {
        let mut t = MemTree::new(&dir.join("spool"), 1_700_000_000).unwrap();
        let long = PathBuf::from("d/".to_string() + &"n".repeat(150));
        t.create_dir(Path::new("d")).unwrap();
        t.create_file(&long, &mut &b"long-named bytes"[..]).unwrap();
        t.set_owner(&long, 3_000_000, 7).unwrap();
        t.set_mode(&long, 0o4755).unwrap();
        t.set_xattr(&long, b"security.capability", b"\x01\x02")
            .unwrap();
        t.set_mtime(&long, 1_600_000_000).unwrap();
        t.hard_link(&long, Path::new("d/zz")).unwrap();
        t.symlink(Path::new("lib"), Path::new("usr/lib")).unwrap();
        t.mknod(Path::new("fifo"), tar::EntryType::Fifo, 0o600, (0, 0))
            .unwrap();
        t.mknod(Path::new("null"), tar::EntryType::Char, 0o666, (1, 3))
            .unwrap();
        t.set_mode(Path::new(""), 0o750).unwrap();
        t.flush().unwrap();
        t
    }

    /// Each path with everything recorded about it, and its bytes.
    fn listing(t: &MemTree) -> Vec<String> {
        let counts = t.link_counts();
        let mut v = vec![format!("{:?}", t.root())];
        for (p, ino, inode) in t.entries() {
            let mut bytes = Vec::new();
            if let NodeKind::File(d) = inode.kind {
                t.open(d).read_to_end(&mut bytes).unwrap();
            }
            let meta = (inode.mode, inode.uid, inode.gid, inode.mtime, &inode.xattrs);
            let kind = match &inode.kind {
                NodeKind::File(_) => "file".to_string(),
                k => format!("{k:?}"),
            };
            v.push(format!(
                "{} {kind} {meta:?} links={} {bytes:?}",
                p.display(),
                counts[ino]
            ));
        }
        v
    }

    #[test]
    fn a_cached_index_loads_back_as_the_same_model() {
        let d = tempfile::tempdir().unwrap();
        let t = model(d.path());
        let index = d.path().join("index.tar");
        let opts = Options {
            root: true,
            content: Content::Referenced,
            only: None,
        };
        write(&t, File::create(&index).unwrap(), &opts).unwrap();
        let back = load(&index, &d.path().join("spool"), &d.path().join("new")).unwrap();
        assert_eq!(listing(&back), listing(&t));
    }

    #[test]
    fn the_inline_stream_carries_names_owners_xattrs_and_links_as_tar_readers_see_them() {
        let d = tempfile::tempdir().unwrap();
        let t = model(d.path());
        let mut out = Vec::new();
        let opts = Options {
            root: false,
            content: Content::Inline,
            only: None,
        };
        write(&t, &mut out, &opts).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let xattrs: Vec<String> = e
                .pax_extensions()
                .unwrap()
                .into_iter()
                .flatten()
                .map(|x| x.unwrap().key().unwrap().to_string())
                .filter(|k| k.starts_with(XATTR_PREFIX))
                .collect();
            let kind = e.header().entry_type();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            seen.push((path, kind, link, xattrs, body));
        }
        let long = format!("d/{}", "n".repeat(150));
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["d", long.as_str(), "d/zz", "fifo", "lib", "null"]);
        assert_eq!(seen[1].1, tar::EntryType::Regular);
        assert_eq!(seen[1].4, b"long-named bytes");
        assert_eq!(seen[1].3, ["SCHILY.xattr.security.capability"]);
        // The second name of the inode is a hard link to the first.
        assert_eq!(seen[2].1, tar::EntryType::Link);
        assert_eq!(seen[2].2.as_deref(), Some(long.as_str()));
        assert_eq!(seen[4].2.as_deref(), Some("usr/lib"));
    }

    #[test]
    fn the_stream_for_mksquashfs_carries_times_squashfs_can_hold_and_the_index_any() {
        let d = tempfile::tempdir().unwrap();
        let mut t = MemTree::new(&d.path().join("spool"), 0).unwrap();
        t.create_file(Path::new("far"), &mut &b"x"[..]).unwrap();
        // Past ustar's 12 octal digits: mksquashfs 4.5.1 aborts on the PAX
        // record tar writers use for it.
        t.set_mtime(Path::new("far"), 9_000_000_000).unwrap();
        t.flush().unwrap();
        let mut inline = Vec::new();
        let opts = |content| Options {
            root: false,
            content,
            only: None,
        };
        write(&t, &mut inline, &opts(Content::Inline)).unwrap();
        let mut archive = tar::Archive::new(&inline[..]);
        let mut e = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().mtime().unwrap(), u64::from(u32::MAX));
        assert!(e.pax_extensions().unwrap().is_none());

        let index = d.path().join("index.tar");
        let root = Options {
            root: true,
            ..opts(Content::Referenced)
        };
        write(&t, File::create(&index).unwrap(), &root).unwrap();
        let back = load(&index, &d.path().join("spool"), &d.path().join("new")).unwrap();
        assert_eq!(back.mtime(Path::new("far")).unwrap(), 9_000_000_000);
    }
}
