//! A root filesystem as a model in memory: every path with its inode (type,
//! mode, owner, mtime, extended attributes), file data in spool files. It
//! records everything a layer says whoever runs the build (owners, device
//! nodes, `security.*` attributes need no privilege here), and it goes to
//! mksquashfs as one tar stream (`tree_tar`), so a multi-gigabyte root
//! filesystem is never created file by file on disk only to be read back.
//! Paths sort component by component, so a folder comes right before what
//! it holds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::tree::{Kind, Tree};
use crate::io::{HashingWriter, Sha256Digest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File(Data),
    Symlink(PathBuf),
    Fifo,
    Char(u32, u32),
    Block(u32, u32),
}

/// Where a file's bytes are: `len` bytes at `offset` of spool `spool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data {
    pub spool: usize,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Clone)]
pub struct Inode {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Inode {
    fn new(kind: NodeKind, mode: u32) -> Inode {
        Inode {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
        }
    }
}

pub struct MemTree {
    /// Path (`""` is the root) to index in `inodes`; hard links share one.
    nodes: BTreeMap<PathBuf, usize>,
    /// Removed paths leave their inode behind, unreferenced.
    inodes: Vec<Inode>,
    /// Readable spools; the last one is `writer`'s.
    spools: Vec<File>,
    /// Hashed as written, so a cached spool is not read again to be hashed.
    writer: Option<BufWriter<HashingWriter<File>>>,
    written: u64,
}

impl MemTree {
    /// An empty root folder (0755, root's, `epoch` as mtime) whose new file
    /// data goes to `spool` (created).
    pub fn new(spool: &Path, epoch: u64) -> io::Result<MemTree> {
        let mut root = Inode::new(NodeKind::Dir, 0o755);
        root.mtime = epoch as i64;
        MemTree::with_root(root, Vec::new(), spool)
    }

    /// Only the shape of a tree (what is where, with its metadata): file
    /// data is read and dropped, and cannot be read back.
    pub fn shape(epoch: u64) -> MemTree {
        let mut root = Inode::new(NodeKind::Dir, 0o755);
        root.mtime = epoch as i64;
        MemTree {
            nodes: BTreeMap::from([(PathBuf::new(), 0)]),
            inodes: vec![root],
            spools: Vec::new(),
            writer: None,
            written: 0,
        }
    }

    /// A model with `root` as its root folder, `spools` readable before the
    /// new one at `spool` (created) that takes new file data.
    pub(super) fn with_root(root: Inode, spools: Vec<File>, spool: &Path) -> io::Result<MemTree> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(spool)?;
        let mut spools = spools;
        spools.push(file.try_clone()?);
        Ok(MemTree {
            nodes: BTreeMap::from([(PathBuf::new(), 0)]),
            inodes: vec![root],
            spools,
            writer: Some(BufWriter::with_capacity(1 << 20, HashingWriter::new(file))),
            written: 0,
        })
    }

    /// Adds `rel` as a new inode.
    pub(super) fn insert(&mut self, rel: PathBuf, inode: Inode) {
        self.inodes.push(inode);
        self.nodes.insert(rel, self.inodes.len() - 1);
    }

    /// Adds `rel` as another name of the inode at `same_as`.
    pub(super) fn link(&mut self, rel: PathBuf, same_as: &Path) -> io::Result<()> {
        let ino = self.ino(same_as)?;
        self.nodes.insert(rel, ino);
        Ok(())
    }

    pub fn root(&self) -> &Inode {
        &self.inodes[0]
    }

    /// Every path but the root with its inode number and inode, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, usize, &Inode)> {
        self.nodes
            .iter()
            .skip(1)
            .map(|(p, i)| (p.as_path(), *i, &self.inodes[*i]))
    }

    /// How many paths name each inode.
    pub fn link_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.inodes.len()];
        for i in self.nodes.values() {
            counts[*i] += 1;
        }
        counts
    }

    /// Sends new file data to `spool` (created) from now on; the current
    /// spool is only read.
    pub fn spool_to(&mut self, spool: &Path) -> io::Result<()> {
        self.flush()?;
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(spool)?;
        self.spools.push(file.try_clone()?);
        self.writer = Some(BufWriter::with_capacity(1 << 20, HashingWriter::new(file)));
        self.written = 0;
        Ok(())
    }

    /// The SHA-256 and size of the spool new file data goes to.
    pub fn spool_digest(&mut self) -> io::Result<(Sha256Digest, u64)> {
        self.flush()?;
        match &self.writer {
            Some(w) => Ok(w.get_ref().digest()),
            None => Err(io::Error::other("a tree's shape has no spool")),
        }
    }

    /// Writes what is buffered, so every spool reads back whole.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// Reads `data` (call `flush` after the last file is created).
    pub fn open(&self, data: Data) -> SpoolReader<'_> {
        SpoolReader {
            file: &self.spools[data.spool],
            offset: data.offset,
            left: data.len,
        }
    }

    fn ino(&self, rel: &Path) -> io::Result<usize> {
        self.nodes.get(rel).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("/{} is not in the tree", rel.display()),
            )
        })
    }

    fn inode_mut(&mut self, rel: &Path) -> io::Result<&mut Inode> {
        let i = self.ino(rel)?;
        Ok(&mut self.inodes[i])
    }

    /// `rel` and everything under it, as keys.
    fn subtree(&self, rel: &Path) -> Vec<PathBuf> {
        self.nodes
            .range(rel.to_path_buf()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(rel))
            .cloned()
            .collect()
    }
}

/// A file's bytes in a spool, read with `pread` so readers share the file.
pub struct SpoolReader<'a> {
    file: &'a File,
    offset: u64,
    left: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a spool file is shorter than its index says",
            ));
        }
        self.offset += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

impl Tree for MemTree {
    fn show(&self, rel: &Path) -> PathBuf {
        Path::new("/").join(rel)
    }

    fn records_everything(&self) -> bool {
        true
    }

    fn kind(&self, rel: &Path) -> io::Result<Option<Kind>> {
        Ok(self.nodes.get(rel).map(|i| match self.inodes[*i].kind {
            NodeKind::Dir => Kind::Dir,
            NodeKind::Symlink(_) => Kind::Symlink,
            _ => Kind::Other,
        }))
    }

    fn mtime(&self, rel: &Path) -> io::Result<i64> {
        Ok(self.inodes[self.ino(rel)?].mtime)
    }

    fn read_link(&self, rel: &Path) -> Option<PathBuf> {
        match &self.inodes[*self.nodes.get(rel)?].kind {
            NodeKind::Symlink(target) => Some(target.clone()),
            _ => None,
        }
    }

    fn children(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        let depth = rel.components().count() + 1;
        Ok(self
            .subtree(rel)
            .into_iter()
            .filter(|p| p.components().count() == depth)
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect())
    }

    fn create_dir(&mut self, rel: &Path) -> io::Result<()> {
        self.insert(rel.to_path_buf(), Inode::new(NodeKind::Dir, 0o755));
        Ok(())
    }

    fn create_file(&mut self, rel: &Path, data: &mut dyn Read) -> io::Result<()> {
        let offset = self.written;
        // A shape keeps no data: its files point at no spool.
        let (len, spool) = match &mut self.writer {
            Some(w) => (io::copy(data, w)?, self.spools.len() - 1),
            None => (io::copy(data, &mut io::sink())?, usize::MAX),
        };
        self.written += len;
        let data = Data { spool, offset, len };
        self.insert(rel.to_path_buf(), Inode::new(NodeKind::File(data), 0o644));
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, target: &Path) -> io::Result<()> {
        let link = Inode::new(NodeKind::Symlink(target.to_path_buf()), 0o777);
        self.insert(rel.to_path_buf(), link);
        Ok(())
    }

    fn hard_link(&mut self, source: &Path, rel: &Path) -> io::Result<()> {
        if matches!(self.inodes[self.ino(source)?].kind, NodeKind::Dir) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a folder cannot be hard-linked",
            ));
        }
        self.link(rel.to_path_buf(), source)
    }

    fn mknod(
        &mut self,
        rel: &Path,
        kind: tar::EntryType,
        mode: u32,
        dev: (u32, u32),
    ) -> io::Result<()> {
        let kind = match kind {
            tar::EntryType::Fifo => NodeKind::Fifo,
            tar::EntryType::Char => NodeKind::Char(dev.0, dev.1),
            tar::EntryType::Block => NodeKind::Block(dev.0, dev.1),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{other:?} is no special file"),
                ))
            }
        };
        self.insert(rel.to_path_buf(), Inode::new(kind, mode & 0o7777));
        Ok(())
    }

    fn set_owner(&mut self, rel: &Path, uid: u64, gid: u64) -> io::Result<()> {
        let inode = self.inode_mut(rel)?;
        (inode.uid, inode.gid) = (uid, gid);
        Ok(())
    }

    fn set_mode(&mut self, rel: &Path, mode: u32) -> io::Result<()> {
        self.inode_mut(rel)?.mode = mode & 0o7777;
        Ok(())
    }

    fn clear_xattrs(&mut self, rel: &Path) -> io::Result<()> {
        self.inode_mut(rel)?.xattrs.clear();
        Ok(())
    }

    fn set_xattr(&mut self, rel: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
        let xattrs = &mut self.inode_mut(rel)?.xattrs;
        match xattrs.binary_search_by(|(n, _)| n.as_slice().cmp(name)) {
            Ok(i) => xattrs[i].1 = value.to_vec(),
            Err(i) => xattrs.insert(i, (name.to_vec(), value.to_vec())),
        }
        Ok(())
    }

    fn set_mtime(&mut self, rel: &Path, mtime: i64) -> io::Result<()> {
        self.inode_mut(rel)?.mtime = mtime;
        Ok(())
    }

    fn remove(&mut self, rel: &Path) -> io::Result<()> {
        for p in self.subtree(rel) {
            self.nodes.remove(&p);
        }
        Ok(())
    }
}
