//! GRUB: the rendered menu (`/boot/grub2/grub.cfg`), the stub that finds it
//! (in the ISO root and the FAT image: on CD boot GRUB's root is the ISO9660
//! tree, on USB boot the FAT image), and GRUB images built from the host's
//! Debian GRUB packages with the stub's search embedded.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::host_tools;
use crate::render::Renderer;

/// Modules built into our GRUB images, so nothing is loaded from the medium.
pub const MODULES: &[&str] = &[
    "normal",
    "configfile",
    "linux",
    "search",
    "search_fs_file",
    "search_label",
    "echo",
    "test",
    "ls",
    "cat",
    "serial",
    "terminal",
    "font",
    "iso9660",
    "part_gpt",
    "part_msdos",
    "fat",
    "gzio",
    "true",
    "sleep",
    "reboot",
    "halt",
    // The appliance disk's GRUB reads COS_RECOVERY and COS_OEM (ext4) and
    // COS_OEM's grubenv.
    "ext2",
    "loadenv",
];

pub struct Configs {
    /// The stub: finds `/boot/kernel`, sets the prefix, loads the menu.
    pub stub: PathBuf,
    /// The stub's first two steps, embedded in our GRUB images.
    pub early: PathBuf,
}

/// The three rendered GRUB configs.
pub struct Rendered {
    pub menu: String,
    pub stub: String,
    pub early: String,
}

pub fn render(renderer: &Renderer) -> anyhow::Result<Rendered> {
    Ok(Rendered {
        menu: renderer.render_named("grub.cfg.tera")?,
        stub: renderer.render_named("grub-stub.cfg.tera")?,
        early: renderer.render_named("grub-early.cfg.tera")?,
    })
}

/// Writes the menu and the stubs where the ISO tree `root` has them
/// (`edgeforge render` writes the same files).
pub fn write_tree(rendered: &Rendered, root: &Path) -> anyhow::Result<()> {
    for (rel, text) in [
        ("boot/grub2/grub.cfg", &rendered.menu),
        ("boot/grub/grub.cfg", &rendered.stub),
        ("EFI/BOOT/grub.cfg", &rendered.stub),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("has a parent"))?;
        fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

pub fn write_configs(renderer: &Renderer, stage: &Path, work: &Path) -> anyhow::Result<Configs> {
    let rendered = render(renderer)?;
    write_tree(&rendered, stage)?;
    let configs = Configs {
        stub: work.join("grub-stub.cfg"),
        early: work.join("grub-early.cfg"),
    };
    fs::write(&configs.stub, rendered.stub)?;
    fs::write(&configs.early, rendered.early)?;
    Ok(configs)
}

/// GRUB for BIOS CD boot (`/boot/eltorito.img`), written to `out`.
pub fn bios_image(sh: &Shell, early: &Path, out: &Path) -> anyhow::Result<()> {
    host_tools::run(cmd!(
        sh,
        "grub-mkimage -O i386-pc-eltorito -c {early} -p /boot/grub2 -o {out} biosdisk {MODULES...}"
    ))
}

/// `/boot/boot_hybrid.img`: the MBR boot code for USB boot, as Debian ships it.
pub fn copy_hybrid_mbr(boot_dir: &Path) -> anyhow::Result<()> {
    let hybrid = Path::new(host_tools::GRUB_PC.what).join("boot_hybrid.img");
    fs::copy(&hybrid, boot_dir.join("boot_hybrid.img"))
        .with_context(|| format!("copying {}", hybrid.display()))?;
    Ok(())
}

/// A GRUB EFI binary for when the image carries no signed loaders.
pub fn efi_image(sh: &Shell, early: &Path, out: &Path) -> anyhow::Result<()> {
    host_tools::run(cmd!(sh, "grub-mkimage -O x86_64-efi -c {early} -p /EFI/BOOT -o {out} efi_gop all_video {MODULES...}"))
}
