//! Path rules for archive entries, shared by the layer writer and the
//! flattener: nothing may land outside the root it is written into.

use std::path::{Component, Path, PathBuf};

/// Normalizes an entry name to a relative path (`./a/b` -> `a/b`); refuses
/// absolute names and `..`. Returns `None` for the root itself (`./`).
pub fn entry_path(raw: &Path) -> Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "`{}` climbs out of the root with `..`",
                    raw.display()
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("`{}` is an absolute path", raw.display()))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Whether a relative symlink at `link` (a normalized entry path) pointing to
/// `target` stays inside the root. Absolute targets are resolved against the
/// root at run time, so they stay inside too.
pub fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true;
    }
    let mut depth = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert_eq!(
            entry_path(Path::new("./etc/hosts")).unwrap(),
            Some(PathBuf::from("etc/hosts"))
        );
        assert_eq!(entry_path(Path::new("./")).unwrap(), None);
        assert!(entry_path(Path::new("../evil")).is_err());
        assert!(entry_path(Path::new("a/../../evil")).is_err());
        assert!(entry_path(Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn symlinks() {
        assert!(symlink_stays_inside(
            Path::new("usr/bin/sh"),
            Path::new("busybox")
        ));
        assert!(symlink_stays_inside(
            Path::new("usr/bin/sh"),
            Path::new("../../bin/busybox")
        ));
        assert!(!symlink_stays_inside(
            Path::new("usr/bin/sh"),
            Path::new("../../../etc")
        ));
        assert!(!symlink_stays_inside(Path::new("link"), Path::new("..")));
        assert!(symlink_stays_inside(
            Path::new("bin"),
            Path::new("/usr/bin")
        ));
    }
}
