//! Files that get their final name only once complete: written to a temporary
//! file in the destination folder, then renamed over the final path. The
//! temporary file is locked (flock) while its writer lives, so a later run
//! cleaning up leftovers of killed runs can tell them from files in use.
//! Folders made whole get their names the same way: renamed without
//! replacing anything (`rename_noreplace`) or swapped in for the old one
//! (`replace_folder`).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::NamedTempFile;

pub struct AtomicFile {
    temp: NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file beside `target` with `mode` (0600 for files
    /// that may hold secrets). Dropping without [`AtomicFile::commit`] removes it.
    pub fn create(target: &Path, mode: u32) -> anyhow::Result<Self> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".edgeforge-")
            .suffix(".partial")
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        // Released when the file is closed, by the process's end at the latest.
        let _ = temp.as_file().try_lock();
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Where the bytes are until the rename.
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes to disk and renames onto the final name.
    pub fn commit(self) -> anyhow::Result<()> {
        self.sync()?;
        self.rename()
    }

    /// Flushes the content to disk (before any rename can make it visible).
    pub fn sync(&self) -> anyhow::Result<()> {
        self.temp
            .as_file()
            .sync_all()
            .with_context(|| format!("writing {}", self.target.display()))
    }

    /// Renames onto the final name (after [`AtomicFile::sync`]).
    pub fn rename(self) -> anyhow::Result<()> {
        let target = self.target;
        self.temp
            .persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming into {}", target.display()))?;
        Ok(())
    }

    /// Writes `bytes` to `target` atomically.
    pub fn write(target: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
        let mut f = AtomicFile::create(target, mode)?;
        f.file()
            .write_all(bytes)
            .with_context(|| format!("writing {}", target.display()))?;
        f.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

/// rename(2) that fails with EEXIST instead of replacing `to` (an empty
/// folder would be replaced otherwise). Filesystems without
/// RENAME_NOREPLACE get a plain rename, which still never replaces a
/// non-empty folder.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    match renameat2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            std::fs::rename(from, to)
        }
        r => r,
    }
}

/// Puts the folder `from` at `to` in one step: an existing folder `to` is
/// swapped with it (RENAME_EXCHANGE), so it ends at `from`, for the caller
/// to remove; `to` never goes missing. Filesystems without the exchange
/// get two renames (`to` aside to `from`'s name with `.old`, then `from`).
pub fn replace_folder(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(to).is_err() {
        return rename_noreplace(from, to);
    }
    match renameat2(from, to, libc::RENAME_EXCHANGE) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            let mut aside = from.as_os_str().to_owned();
            aside.push(".old");
            std::fs::rename(to, &aside)?;
            std::fs::rename(from, to)
        }
        r => r,
    }
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in a path"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: valid C strings; AT_FDCWD resolves them like rename(2).
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
