//! Finding the kernel and initrd in the root filesystem's `/boot`, by name
//! prefix, following symlinks without leaving the root.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

use crate::error::{fail, Category};

const KERNEL_PREFIXES: [&str; 3] = ["vmlinuz", "bzImage", "Image"];
const INITRD_PREFIXES: [&str; 2] = ["initrd", "initramfs"];

pub struct BootFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

pub fn find(rootfs: &Path) -> anyhow::Result<BootFiles> {
    let boot = rootfs.join("boot");
    let mut names: Vec<String> = match fs::read_dir(&boot) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    names.sort();
    Ok(BootFiles {
        kernel: pick(rootfs, &names, &KERNEL_PREFIXES, "kernel")?,
        initrd: pick(rootfs, &names, &INITRD_PREFIXES, "initrd")?,
    })
}

/// The plain name (`vmlinuz`, `initrd`) when present, as Kairos images have;
/// otherwise the one file the prefixed names resolve to.
fn pick(rootfs: &Path, names: &[String], prefixes: &[&str], what: &str) -> anyhow::Result<PathBuf> {
    let looked_for = prefixes
        .iter()
        .map(|p| format!("{p}*"))
        .collect::<Vec<_>>()
        .join(", ");
    let candidates: Vec<&String> = names
        .iter()
        .filter(|n| {
            prefixes.iter().any(|p| n.starts_with(p))
                && !n.ends_with(".sig")
                && !n.ends_with(".old")
        })
        .collect();
    if let Some(plain) = candidates.iter().find(|n| n.as_str() == prefixes[0]) {
        return resolve(rootfs, &Path::new("boot").join(plain.as_str()));
    }
    let mut resolved: Vec<PathBuf> = candidates
        .iter()
        .map(|n| resolve(rootfs, &Path::new("boot").join(n.as_str())))
        .collect::<anyhow::Result<_>>()?;
    resolved.sort();
    resolved.dedup();
    match resolved.len() {
        1 => Ok(resolved.remove(0)),
        0 => Err(fail(
            Category::InvalidInput,
            format!("no {what} in {}/boot: looked for {looked_for}; the base image must carry its kernel and initrd in /boot", rootfs.display()),
        )),
        _ => Err(fail(
            Category::InvalidInput,
            format!(
                "several {what}s in {}/boot ({}); keep one, or add a /boot/{} symlink to the one to boot",
                rootfs.display(),
                candidates.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                prefixes[0]
            ),
        )),
    }
}

/// Follows symlinks as the booted system would (absolute targets from the
/// rootfs root), refusing targets outside it; returns a regular file.
pub(super) fn resolve(rootfs: &Path, rel: &Path) -> anyhow::Result<PathBuf> {
    let mut current = rel.to_path_buf();
    for _ in 0..40 {
        let full = rootfs.join(&current);
        let md =
            fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        if md.is_file() {
            return Ok(full);
        }
        if !md.file_type().is_symlink() {
            break;
        }
        let target = fs::read_link(&full)?;
        let base = if target.is_absolute() {
            PathBuf::new()
        } else {
            current.parent().unwrap_or(Path::new("")).to_path_buf()
        };
        let mut next = base;
        for c in target.components() {
            match c {
                Component::Normal(p) => next.push(p),
                // The guard pops; only a `..` above the root reaches the arm.
                Component::ParentDir if !next.pop() => {
                    return Err(fail(
                        Category::BadImage,
                        format!("/{} points outside the root filesystem", rel.display()),
                    ));
                }
                _ => {}
            }
        }
        current = next;
    }
    Err(fail(
        Category::InvalidInput,
        format!(
            "/{} is not a regular file (or a symlink to one)",
            rel.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn prefers_plain_names_and_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let boot = t.path().join("boot");
        fs::create_dir_all(&boot).unwrap();
        fs::write(boot.join("vmlinuz-6.1"), "k").unwrap();
        fs::write(boot.join("vmlinuz-5.10"), "old").unwrap();
        symlink("vmlinuz-6.1", boot.join("vmlinuz")).unwrap();
        fs::write(boot.join("initramfs-6.1.img"), "i").unwrap();
        symlink("/boot/initramfs-6.1.img", boot.join("initrd")).unwrap();
        let b = find(t.path()).unwrap();
        assert_eq!(b.kernel, boot.join("vmlinuz-6.1"));
        assert_eq!(b.initrd, boot.join("initramfs-6.1.img"));
    }

    #[test]
    fn ambiguous_or_missing_kernels_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let boot = t.path().join("boot");
        fs::create_dir_all(&boot).unwrap();
        fs::write(boot.join("initrd"), "i").unwrap();
        let e = find(t.path()).err().unwrap().to_string();
        assert!(e.contains("no kernel") && e.contains("vmlinuz*"), "{e}");
        fs::write(boot.join("vmlinuz-1"), "a").unwrap();
        fs::write(boot.join("vmlinuz-2"), "b").unwrap();
        let e = find(t.path()).err().unwrap().to_string();
        assert!(e.contains("several kernels"), "{e}");
        symlink("../../../etc/x", boot.join("vmlinuz")).unwrap();
        let e = find(t.path()).err().unwrap().to_string();
        assert!(e.contains("outside"), "{e}");
    }
}
