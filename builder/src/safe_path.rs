//! Path rules for archive entries, shared by the layer writer and the
//! flattener: nothing may land outside the root it is written into, and a
//! path through a symlinked folder lands where a consumer applying the layer
//! puts it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one path before it counts as a loop
/// (Linux's own limit is 40).
const MAX_HOPS: usize = 40;

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

/// Resolves the normalized relative path `rel` inside a root the way
/// `umoci` and containerd do when they apply a layer (securejoin): every
/// folder on the way that is a symlink is followed, absolute targets start
/// again at the root, and `..` never climbs above it, so the result always
/// stays inside. The last component is followed too when `follow_last`
/// (for a folder entry that a lower layer has as a symlink to a folder).
/// `read_link` answers whether a root-relative path is a symlink, and where to.
pub fn resolve(
    rel: &Path,
    follow_last: bool,
    read_link: impl Fn(&Path) -> Option<PathBuf>,
) -> Result<PathBuf, String> {
    let mut todo: VecDeque<OsString> = names(rel).collect();
    let mut out = PathBuf::new();
    let mut hops = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            out.pop();
            continue;
        }
        let candidate = out.join(&name);
        if !todo.is_empty() || follow_last {
            if let Some(target) = read_link(&candidate) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!(
                        "`{}` goes through more than {MAX_HOPS} symlinks",
                        rel.display()
                    ));
                }
                if target.is_absolute() {
                    out = PathBuf::new();
                }
                for (i, n) in names(&target).enumerate() {
                    todo.insert(i, n);
                }
                continue;
            }
        }
        out = candidate;
    }
    Ok(out)
}

/// The components of `p` that move through a tree: names and `..`.
fn names(p: &Path) -> impl Iterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
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

    #[test]
    fn resolves_like_a_consumer() {
        let links = |p: &Path| match p.to_str().unwrap() {
            "lib" => Some(PathBuf::from("usr/lib")),
            "bin" => Some(PathBuf::from("/usr/bin")),
            "usr/lib/up" => Some(PathBuf::from("../../../../etc")),
            "loop" => Some(PathBuf::from("loop")),
            _ => None,
        };
        let r = |p: &str, last| resolve(Path::new(p), last, links);
        assert_eq!(
            r("lib/firmware/x", false).unwrap(),
            Path::new("usr/lib/firmware/x")
        );
        assert_eq!(r("bin/sh", false).unwrap(), Path::new("usr/bin/sh"));
        assert_eq!(r("lib", false).unwrap(), Path::new("lib"));
        assert_eq!(r("lib", true).unwrap(), Path::new("usr/lib"));
        // `..` in a target stops at the root.
        assert_eq!(r("lib/up/passwd", false).unwrap(), Path::new("etc/passwd"));
        assert!(r("loop/x", false).unwrap_err().contains("symlinks"));
    }
}
