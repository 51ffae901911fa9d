//! What flattening writes into: a folder on disk (`disk_tree`, for
//! `edgeforge unpack` and a UKI's initrd) or a model in memory whose file
//! data sits in spool files (`mem_tree`, streamed to mksquashfs as one tar
//! so a root filesystem is never written out file by file). Both take the
//! same calls from `flatten`, so the layer semantics exist once.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What is at a path, as far as flattening cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Symlink,
    /// A regular file or a special file.
    Other,
}

/// Paths are relative to the tree's root (`""` is the root); their parents
/// exist and hold no symlink (flattening resolves them first).
pub trait Tree {
    /// `rel` as a user should read it in a message.
    fn show(&self, rel: &Path) -> PathBuf;
    /// Whether owners, device nodes and every xattr namespace are recorded
    /// (on disk only root can; a model always does).
    fn records_everything(&self) -> bool;
    /// What is at `rel` (a final symlink not followed), `None` if nothing.
    fn kind(&self, rel: &Path) -> io::Result<Option<Kind>>;
    fn mtime(&self, rel: &Path) -> io::Result<i64>;
    /// The target of the symlink at `rel`, `None` if `rel` is no symlink.
    fn read_link(&self, rel: &Path) -> Option<PathBuf>;
    /// The names in folder `rel`, in any order.
    fn children(&self, rel: &Path) -> io::Result<Vec<OsString>>;
    /// A new folder (mode 0755) where nothing is.
    fn create_dir(&mut self, rel: &Path) -> io::Result<()>;
    /// A new regular file where nothing is, holding what `data` yields.
    fn create_file(&mut self, rel: &Path, data: &mut dyn Read) -> io::Result<()>;
    fn symlink(&mut self, rel: &Path, target: &Path) -> io::Result<()>;
    /// `rel` becomes another name of the file at `source`.
    fn hard_link(&mut self, source: &Path, rel: &Path) -> io::Result<()>;
    fn mknod(
        &mut self,
        rel: &Path,
        kind: tar::EntryType,
        mode: u32,
        dev: (u32, u32),
    ) -> io::Result<()>;
    fn set_owner(&mut self, rel: &Path, uid: u64, gid: u64) -> io::Result<()>;
    /// Permission bits, setuid, setgid and sticky included (not for symlinks).
    fn set_mode(&mut self, rel: &Path, mode: u32) -> io::Result<()>;
    fn clear_xattrs(&mut self, rel: &Path) -> io::Result<()>;
    fn set_xattr(&mut self, rel: &Path, name: &[u8], value: &[u8]) -> io::Result<()>;
    fn set_mtime(&mut self, rel: &Path, mtime: i64) -> io::Result<()>;
    /// Removes what is at `rel`, a folder with everything in it; nothing
    /// there is no error.
    fn remove(&mut self, rel: &Path) -> io::Result<()>;
}
