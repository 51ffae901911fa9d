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

/// Whether `path` was left by a dead process. Its writer creates it, locks
/// it and only then puts anything in it, so `has_content` (taken before the
/// lock is tried) proves it was locked once, and if no one holds it now its
/// writer is gone. An empty one may be a live writer's not locked yet: it is
/// left alone (it holds nothing).
pub fn abandoned(path: &Path, has_content: bool) -> bool {
    has_content
        && File::open(path).is_ok_and(|f| !matches!(f.try_lock(), Err(TryLockError::WouldBlock)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unheld_files_with_content_are_abandoned() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(".edgeforge-x.partial");
        fs::write(&p, "").unwrap();
        assert!(!abandoned(&p, false), "empty: perhaps not locked yet");
        let held = hold(&p).unwrap();
        fs::write(&p, "user-data").unwrap();
        assert!(!abandoned(&p, true), "its writer holds it");
        drop(held);
        assert!(abandoned(&p, true), "its writer is gone");
    }
}
