//! What a source folder (an overlay tree, a folder component) may hold:
//! regular files, folders and symlinks. Anything else is refused by its
//! path before anything opens it: opening a fifo waits for a writer that
//! never comes, and a socket or device node from a checkout has no place
//! in an image (a tarball component can carry device nodes on purpose).

use std::fs::FileType;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::error::{fail, Category};

/// Fails with the path when `file_type` is not a file, folder or symlink.
pub fn check(path: &Path, file_type: FileType) -> anyhow::Result<()> {
    let kind = if file_type.is_file() || file_type.is_dir() || file_type.is_symlink() {
        return Ok(());
    } else if file_type.is_fifo() {
        "a fifo (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "a special file"
    };
    Err(fail(
        Category::InvalidInput,
        format!(
            "{} is {kind}; source folders (overlays, folder components, templates) may hold only files, folders and symlinks: remove it (or ship device nodes in a tarball component)",
            path.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_are_refused_by_path() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("pipe");
        crate::fs_meta::mknod(&fifo, tar::EntryType::Fifo, 0o644, (0, 0)).unwrap();
        let ft = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        let e = check(&fifo, ft).unwrap_err();
        assert_eq!(crate::error::category_of(&e), Category::InvalidInput);
        assert!(e.to_string().contains("pipe is a fifo"), "{e}");
        let ft = std::fs::symlink_metadata(t.path()).unwrap().file_type();
        check(t.path(), ft).unwrap();
    }
}
