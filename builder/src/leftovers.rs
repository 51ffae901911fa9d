//! What killed runs leave behind (work folders, temporary files that may
//! hold user-data), told apart from what a live run is using by a lock:
//! a run holds an flock on each of its temporary files and folders while it
//! lives, and the kernel drops it when the process dies, however it dies.

use std::fs::{self, File, TryLockError};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

/// Locks `path` (a file or folder) for as long as the returned file is open.
pub fn hold(path: &Path) -> anyhow::Result<File> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.try_lock()
        .map_err(std::io::Error::from)
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(f)
}

/// Whether a live process holds `path` locked.
pub fn in_use(path: &Path) -> bool {
    File::open(path).is_ok_and(|f| matches!(f.try_lock(), Err(TryLockError::WouldBlock)))
}

/// Removes a folder tree, making its folders writable first if it must (a
/// flattened root filesystem has read-only ones, which bind a non-root user).
pub fn remove_tree(path: &Path) -> anyhow::Result<()> {
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
}
