//! Flattening into a folder on disk. Only root can give files the owners
//! the layers record, create device nodes and set `security.*` attributes;
//! unprivileged, flattening skips those (and says so in its stats).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::tree::{Kind, Tree};
use crate::fs_meta;

pub struct DiskTree<'a> {
    root: &'a Path,
    owner: bool,
}

impl<'a> DiskTree<'a> {
    /// The tree in `root`, created (mode 0755) if missing; says whether it was.
    pub fn open(root: &'a Path) -> io::Result<(DiskTree<'a>, bool)> {
        let created = !root.exists();
        if created {
            fs::create_dir_all(root)?;
            fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
        }
        let tree = DiskTree {
            root,
            owner: fs_meta::is_root(),
        };
        Ok((tree, created))
    }

    fn at(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }
}

impl Tree for DiskTree<'_> {
    fn show(&self, rel: &Path) -> PathBuf {
        self.at(rel)
    }

    fn records_everything(&self) -> bool {
        self.owner
    }

    fn kind(&self, rel: &Path) -> io::Result<Option<Kind>> {
        match fs::symlink_metadata(self.at(rel)) {
            Ok(md) if md.is_dir() => Ok(Some(Kind::Dir)),
            Ok(md) if md.is_symlink() => Ok(Some(Kind::Symlink)),
            Ok(_) => Ok(Some(Kind::Other)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn mtime(&self, rel: &Path) -> io::Result<i64> {
        Ok(fs::symlink_metadata(self.at(rel))?.mtime())
    }

    fn read_link(&self, rel: &Path) -> Option<PathBuf> {
        fs::read_link(self.at(rel)).ok()
    }

    fn children(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(self.at(rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn create_dir(&mut self, rel: &Path) -> io::Result<()> {
        let p = self.at(rel);
        fs::create_dir(&p)?;
        // Not what the umask leaves.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
    }

    fn create_file(&mut self, rel: &Path, data: &mut dyn Read) -> io::Result<()> {
        let mut f = fs::File::options()
            .write(true)
            .create_new(true)
            .open(self.at(rel))?;
        io::copy(data, &mut f).map(drop)
    }

    fn symlink(&mut self, rel: &Path, target: &Path) -> io::Result<()> {
        symlink(target, self.at(rel))
    }

    fn hard_link(&mut self, source: &Path, rel: &Path) -> io::Result<()> {
        fs::hard_link(self.at(source), self.at(rel))
    }

    fn mknod(
        &mut self,
        rel: &Path,
        kind: tar::EntryType,
        mode: u32,
        dev: (u32, u32),
    ) -> io::Result<()> {
        fs_meta::mknod(&self.at(rel), kind, mode, dev)
    }

    fn set_owner(&mut self, rel: &Path, uid: u64, gid: u64) -> io::Result<()> {
        if !self.owner {
            return Ok(());
        }
        std::os::unix::fs::lchown(self.at(rel), Some(uid as u32), Some(gid as u32))
    }

    fn set_mode(&mut self, rel: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(self.at(rel), fs::Permissions::from_mode(mode & 0o7777))
    }

    fn clear_xattrs(&mut self, rel: &Path) -> io::Result<()> {
        let p = self.at(rel);
        for (name, _) in fs_meta::xattrs(&p).unwrap_or_default() {
            let _ = fs_meta::remove_xattr(&p, &name);
        }
        Ok(())
    }

    fn set_xattr(&mut self, rel: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
        fs_meta::set_xattr(&self.at(rel), name, value)
    }

    fn set_mtime(&mut self, rel: &Path, mtime: i64) -> io::Result<()> {
        fs_meta::set_mtime(&self.at(rel), mtime)
    }

    fn remove(&mut self, rel: &Path) -> io::Result<()> {
        let p = self.at(rel);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => fs::remove_dir_all(&p),
            Ok(_) => fs::remove_file(&p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}
