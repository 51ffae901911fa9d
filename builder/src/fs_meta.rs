//! The file metadata image layers record and std does not set: owners of
//! symlinks, extended attributes (`security.capability` and the like), times
//! without following symlinks, and special files.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Only root can give files the owners the layers record, create device
/// nodes and set `security.*` attributes; /proc/self belongs to the
/// process's effective user.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Sets the modification (and access) time of `p` without following a symlink.
pub fn set_mtime(p: &Path, secs: i64) -> io::Result<()> {
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let c = c_path(p)?;
    // SAFETY: `c` is a valid C string and `times` points at two timespecs.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Sets extended attribute `name` of `p` (not following a symlink).
pub fn set_xattr(p: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = c_path(p)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an xattr name holds NUL"))?;
    // SAFETY: valid C strings; `value` is a valid buffer of its length.
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Removes extended attribute `name` of `p` (not following a symlink).
pub fn remove_xattr(p: &Path, name: &[u8]) -> io::Result<()> {
    let c = c_path(p)?;
    let n = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an xattr name holds NUL"))?;
    // SAFETY: valid C strings.
    check(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) })
}

/// All extended attributes of `p` (not following a symlink), sorted by name.
pub fn xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = c_path(p)?;
    let names = read_sized(|buf, len| {
        // SAFETY: `buf` is valid for `len` bytes (or null with len 0).
        unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) }
    })?;
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let n = CString::new(name).expect("split at NUL");
        let value = read_sized(|buf, len| {
            // SAFETY: as above.
            unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.cast(), len) }
        })?;
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// Calls a size-probing xattr function until the buffer is large enough.
fn read_sized(f: impl Fn(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let need = f(std::ptr::null_mut(), 0);
        if need < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; need as usize];
        let got = f(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
        // It grew between the calls: ask again.
    }
}

/// Creates a FIFO or (as root) a device node with exactly `mode`'s permission bits.
pub fn mknod(p: &Path, kind: tar::EntryType, mode: u32, dev: (u32, u32)) -> io::Result<()> {
    let file_type = match kind {
        tar::EntryType::Fifo => libc::S_IFIFO,
        tar::EntryType::Char => libc::S_IFCHR,
        tar::EntryType::Block => libc::S_IFBLK,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{other:?} is no special file"),
            ))
        }
    };
    let c = c_path(p)?;
    // SAFETY: valid C string; makedev and mknod take plain integers.
    check(unsafe {
        libc::mknod(
            c.as_ptr(),
            file_type | (mode & 0o7777) as libc::mode_t,
            libc::makedev(dev.0, dev.1),
        )
    })
}
