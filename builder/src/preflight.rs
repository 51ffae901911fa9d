//! What a command checks before its first write, so a run that cannot
//! finish fails in seconds and leaves nothing behind: the host tools it will
//! run, that the output folder (or the nearest folder above it that exists)
//! is a writable folder, and that its filesystem has room for an estimate of
//! what the run writes. Definitions and inputs are checked by the command
//! itself (loading, user-data, bundles) before it calls [`check`].

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{fail, Category};
use crate::host_tools::{self, Requirement};

/// What one run needs.
pub struct Needs<'a> {
    pub tools: &'a [&'a Requirement],
    /// The folder the run writes into (created if missing).
    pub out_dir: &'a Path,
    /// About how many bytes the run writes there (outputs and work files).
    pub bytes: u64,
}

pub fn check(n: &Needs) -> anyhow::Result<()> {
    host_tools::require(n.tools)?;
    let existing = nearest_existing(n.out_dir);
    if !existing.is_dir() {
        return Err(fail(
            Category::Io,
            format!(
                "{}: {} is not a folder; choose another --out",
                n.out_dir.display(),
                existing.display()
            ),
        ));
    }
    let c = CString::new(existing.as_os_str().as_bytes())
        .map_err(|_| fail(Category::Usage, "an output path holds a NUL byte"))?;
    // SAFETY: a NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(fail(
            Category::Io,
            format!(
                "{}: cannot write in {} ({e}); choose another --out",
                n.out_dir.display(),
                existing.display()
            ),
        ));
    }
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and writable statvfs storage.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } == 0 {
        // SAFETY: statvfs filled it when it returned 0.
        let st = unsafe { st.assume_init() };
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < n.bytes {
            return Err(fail(
                Category::Io,
                format!(
                    "{}: this run writes about {} MiB, and {} has {} MiB free; free some space or choose another --out",
                    n.out_dir.display(),
                    n.bytes.div_ceil(1 << 20),
                    existing.display(),
                    free >> 20
                ),
            ));
        }
    }
    Ok(())
}

/// `dir`, or the nearest folder above it that exists (where it would be
/// created).
fn nearest_existing(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// The bytes of a file, or of every file under a folder (an OCI layout).
pub fn size_of(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_file_as_folder_and_more_than_the_free_space() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = check(&Needs {
            tools: &[],
            out_dir: &file.join("out"),
            bytes: 0,
        })
        .unwrap_err();
        assert_eq!(crate::error::category_of(&e), Category::Io);
        assert!(e.to_string().contains("is not a folder"), "{e}");
        let e = check(&Needs {
            tools: &[],
            out_dir: &t.path().join("new/out"),
            bytes: u64::MAX / 2,
        })
        .unwrap_err();
        assert!(e.to_string().contains("MiB free"), "{e}");
        assert!(!t.path().join("new").exists(), "a check writes nothing");
        check(&Needs {
            tools: &[],
            out_dir: &t.path().join("new/out"),
            bytes: 1,
        })
        .unwrap();
        assert_eq!(size_of(t.path()), 1);
    }
}
