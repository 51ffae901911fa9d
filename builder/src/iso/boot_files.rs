//! The files the ISO takes from a provider image's root filesystem (kernel
//! and initrd from /boot, the signed shim and GRUB, GRUB's font,
//! systemd-boot and its UKI stub, os-release, the package database),
//! written out of the model into a folder, so the finders (`kernel`, `efi`,
//! `packages`) read them as they read any root filesystem: what is under
//! the wanted paths and wherever symlinks there lead, with the folders and
//! symlinks on the way, so paths resolve as in the image.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{efi, packages};
use crate::oci::mem_tree::{Inode, MemTree, NodeKind};
use crate::oci::tree::Tree;
use crate::oci::tree_tar;
use crate::safe_path;

/// Where images carry GRUB's font: Debian, Ubuntu and RHEL's grub packages, SUSE's.
pub const FONTS: [&str; 2] = ["usr/share/grub/unicode.pf2", "usr/share/grub2/unicode.pf2"];

/// systemd-boot-efi's files, as Debian installs them.
pub const SYSTEMD_BOOT: &str = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";
pub const UKI_STUB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";
pub const OS_RELEASES: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// Writes the boot files of `tree` into `dest`.
pub fn extract(tree: &MemTree, dest: &Path, epoch: u64) -> anyhow::Result<()> {
    // Every path resolving asks about is one the finders pass on disk:
    // symlinks on the way (`/lib` -> `usr/lib`) and folders.
    let asked = RefCell::new(BTreeSet::new());
    let resolve = |p: &Path| {
        safe_path::resolve(p, true, |q| {
            asked.borrow_mut().insert(q.to_path_buf());
            tree.read_link(q)
        })
        .ok()
    };
    let wanted = ["boot"]
        .into_iter()
        .chain(efi::SHIMS)
        .chain(efi::SIGNED_GRUBS)
        .chain(FONTS)
        .chain([SYSTEMD_BOOT, UKI_STUB])
        .chain(OS_RELEASES)
        .chain(packages::DATABASES);
    let mut roots: Vec<PathBuf> = wanted.filter_map(|p| resolve(Path::new(p))).collect();
    // A /boot/vmlinuz may lead to /usr/lib/kernel or further.
    let led_to: Vec<PathBuf> = tree
        .entries()
        .filter(|(p, _, inode)| {
            matches!(inode.kind, NodeKind::Symlink(_)) && roots.iter().any(|r| p.starts_with(r))
        })
        .filter_map(|(p, _, _)| resolve(p))
        .collect();
    roots.extend(led_to);
    let mut on_the_way = asked.into_inner();
    on_the_way.extend(
        roots
            .iter()
            .flat_map(|r| r.ancestors().map(Path::to_path_buf)),
    );
    let only =
        |p: &Path, _: &Inode| on_the_way.contains(p) || roots.iter().any(|r| p.starts_with(r));
    tree_tar::extract(tree, dest, Some(&only), epoch)
}
