//! The UEFI side: loaders taken from the root filesystem when the image
//! carries the signed chain (shim + the CD GRUB `gcdx64.efi.signed`, as Kairos
//! images do, so Secure Boot stays intact), otherwise GRUB built from the
//! host's packages; and the FAT image that holds them (`EFI_LIVE` on the
//! ISO, the appliance disk's ESP `COS_GRUB`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

use super::grub;
use crate::host_tools;

pub const SHIMS: [&str; 4] = [
    "usr/share/efi/x86_64/shim.efi",
    "usr/lib/shim/shimx64.efi.signed.latest",
    "usr/lib/shim/shimx64.efi.signed",
    "usr/lib/shim/shimx64.efi",
];
pub const SIGNED_GRUBS: [&str; 2] = [
    "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
    "usr/share/efi/x86_64/grub.efi",
];

pub enum Loaders {
    Signed { shim: PathBuf, grub: PathBuf },
    Built(PathBuf),
}

impl Loaders {
    pub fn describe(&self) -> String {
        match self {
            Loaders::Signed { shim, grub } => format!("signed shim {} with GRUB {} from the image", shim.display(), grub.display()),
            Loaders::Built(_) => "GRUB built from the host's grub-efi-amd64-bin (the image carries no signed shim + GRUB)".into(),
        }
    }

    /// Files for the FAT image's `EFI/BOOT/`.
    fn files(&self) -> Vec<(&'static str, &Path)> {
        match self {
            Loaders::Signed { shim, grub } => vec![("bootx64.efi", shim), ("grubx64.efi", grub)],
            Loaders::Built(p) => vec![("bootx64.efi", p)],
        }
    }
}

/// shim and the signed CD GRUB, when the root filesystem carries both.
pub fn signed_loaders(rootfs: &Path) -> Option<(PathBuf, PathBuf)> {
    let first = |list: &[&str]| list.iter().map(|p| rootfs.join(p)).find(|p| p.is_file());
    Some((first(&SHIMS)?, first(&SIGNED_GRUBS)?))
}

pub fn loaders(
    sh: &Shell,
    signed: Option<(PathBuf, PathBuf)>,
    early: &Path,
    work: &Path,
) -> anyhow::Result<Loaders> {
    if let Some((shim, grub)) = signed {
        return Ok(Loaders::Signed { shim, grub });
    }
    let out = work.join("bootx64.efi");
    grub::efi_image(sh, early, &out)?;
    Ok(Loaders::Built(out))
}

/// Writes the FAT image with mtools (reproducible under SOURCE_DATE_EPOCH,
/// unlike mkfs.vfat), sized to its content plus 1 MiB, in whole MiB.
pub fn fat_image(
    sh: &Shell,
    loaders: &Loaders,
    stub: &Path,
    out: &Path,
    label: &str,
    epoch: u64,
) -> anyhow::Result<()> {
    let files = loaders.files();
    let mut content = fs::metadata(stub)?.len() * 2;
    for (_, p) in &files {
        content += fs::metadata(p)
            .with_context(|| format!("reading {}", p.display()))?
            .len();
    }
    format_fat(sh, out, content, label, epoch, || {
        host_tools::run(cmd!(
            sh,
            "mmd -i {out} ::/EFI ::/EFI/BOOT ::/boot ::/boot/grub"
        ))?;
        for (name, src) in &files {
            let dest = format!("::/EFI/BOOT/{name}");
            host_tools::run(cmd!(sh, "mcopy -i {out} {src} {dest}"))?;
        }
        host_tools::run(cmd!(sh, "mcopy -i {out} {stub} ::/EFI/BOOT/grub.cfg"))?;
        host_tools::run(cmd!(sh, "mcopy -i {out} {stub} ::/boot/grub/grub.cfg"))
    })
}

/// A FAT image at `out` with room for `content` bytes, labelled `label`,
/// made reproducibly with mtools (mkfs.vfat is not): the volume serial and
/// every date come from `epoch`. `fill` copies files in with mtools while
/// the epoch is set. Shared by the ESP and the site media's `CIDATA` image.
pub fn format_fat(
    sh: &Shell,
    out: &Path,
    content: u64,
    label: &str,
    epoch: u64,
    fill: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mib = (content >> 20) + 2;
    let sectors = ((mib << 20) / 512).to_string();
    let serial = format!("{:08X}", epoch as u32);
    let epoch = epoch.to_string();
    let _env = sh.push_env("SOURCE_DATE_EPOCH", &epoch);
    let _skip = sh.push_env("MTOOLS_SKIP_CHECK", "1");
    host_tools::run(cmd!(
        sh,
        "mformat -C -i {out} -T {sectors} -h 64 -s 32 -v {label} -N {serial} ::"
    ))?;
    fill()
}
