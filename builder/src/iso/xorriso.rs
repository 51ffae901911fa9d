//! The xorriso run: volume `COS_LIVE`, Joliet and Rock Ridge, GRUB's BIOS
//! El Torito image with the hybrid MBR (not for a UEFI-only UKI ISO), and
//! the FAT image appended as GPT partition 2 for UEFI (the layout strict
//! firmware accepts). `/config.yaml`
//! is placed last, so a per-site copy differs from its golden ISO only near
//! the end.
//!
//! xorriso writes straight into the temporary file (its standard output),
//! with its periodic flushes off: through a pipe it manages about 300 MB/s
//! here, into a file several GB/s, so hashing the file afterwards from the
//! page cache is the faster way. A file is "overwritable media" to xorriso:
//! `no_emul_toc` keeps it from adding an emulated session table, and the
//! zeros it pads the image with up to 64 KiB are cut off at the image's end,
//! which the backup GPT header marks. The bytes equal what it writes to a pipe.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::error::{fail, Category};
use crate::host_tools;
use crate::io::{AtomicFile, HashingReader, Sha256Digest};
use crate::progress::Progress;

/// Which firmware the image boots on.
pub enum Layout {
    /// BIOS (GRUB's El Torito image, hybrid MBR) and UEFI (the FAT image
    /// `boot/uefi.img` of the stage).
    Hybrid,
    /// UEFI only (a UKI ISO: nothing in it boots on BIOS), from this ESP
    /// image kept outside the stage: it holds the root filesystem in its
    /// UKIs, so a copy in the ISO 9660 tree would double the image.
    UefiOnly(PathBuf),
}

pub fn write(
    sh: &Shell,
    stage: &Path,
    target: &Path,
    epoch: u64,
    mode: u32,
    layout: Layout,
) -> anyhow::Result<(Sha256Digest, u64, AtomicFile)> {
    let hybrid = stage.join("boot/boot_hybrid.img");
    let uefi = match &layout {
        Layout::Hybrid => stage.join("boot/uefi.img"),
        Layout::UefiOnly(esp) => esp.clone(),
    };
    // xorriso takes a zero date as "not set" and stamps the current time, so
    // the default epoch 0 is passed as 1970-01-01T00:00:01.
    let epoch = epoch.max(1);
    let date = format!("={epoch}");
    let epoch = epoch.to_string();
    // Modes in the image do not depend on the umask the staged files were
    // written under: folders 0755, files readable by all and writable by
    // the owner only (rendered overlays come 0755 or 0644), the user-data 0600.
    let mbr = format!("grub2_mbr={}", hybrid.display());
    let esp = uefi.display().to_string();
    let bios: [&str; 30] = [
        "-boot_image",
        "grub",
        "bin_path=/boot/eltorito.img",
        "-boot_image",
        "grub",
        &mbr,
        "-boot_image",
        "grub",
        "grub2_boot_info=on",
        "-boot_image",
        "any",
        "partition_offset=16",
        "-boot_image",
        "any",
        "cat_path=/boot/boot.catalog",
        "-boot_image",
        "any",
        "cat_hidden=on",
        "-boot_image",
        "any",
        "boot_info_table=on",
        "-boot_image",
        "any",
        "platform_id=0x00",
        "-boot_image",
        "any",
        "emul_type=no_emulation",
        "-boot_image",
        "any",
        "load_size=2048",
    ];
    // No BIOS boot image: the catalogue's only entry is the EFI one.
    let uefi_only: [&str; 9] = [
        "-boot_image",
        "any",
        "partition_offset=16",
        "-boot_image",
        "any",
        "cat_path=/boot/boot.catalog",
        "-boot_image",
        "any",
        "cat_hidden=on",
    ];
    let mut boot: Vec<&str> = match layout {
        Layout::Hybrid => bios.to_vec(),
        Layout::UefiOnly(_) => uefi_only.to_vec(),
    };
    boot.extend(["-append_partition", "2", "0xef", &esp]);
    if let Layout::Hybrid = layout {
        boot.extend(["-boot_image", "any", "next"]);
    }
    // Owners are root's, not those of whoever staged the tree (Rock Ridge
    // records them), so an unprivileged build writes the same bytes.
    let cmd = cmd!(
        sh,
        "xorriso -report_about SORRY -stdio_sync off -compliance no_emul_toc -outdev - -volid COS_LIVE -joliet on -padding 0 -volume_date all_file_dates {date}
            -map {stage} / -chown_r 0 / -- -chgrp_r 0 / -- -chmod_r go-w,a+r / -- -find / -type d -exec chmod 0755 --
            -find /config.yaml -exec sort_weight -1 -- -find /config.yaml -exec chmod 0600 --
            {boot...}
            -boot_image any efi_path=--interval:appended_partition_2:all::
            -boot_image any platform_id=0xef
            -boot_image any emul_type=no_emulation
            -boot_image any appended_part_as=gpt
            -boot_image any mbr_force_bootable=on"
    )
    .env("SOURCE_DATE_EPOCH", &epoch);
    let mut file = AtomicFile::create(target, mode)?;
    let out = file
        .file()
        .try_clone()
        .with_context(|| format!("writing {}", target.display()))?;
    let progress = Progress::spinner(format!("writing {}", target.display()));
    host_tools::run_to_file(cmd, out)?;
    progress.finish();
    let ctx = || format!("reading back {}", target.display());
    let image = file.file();
    cut_padding(image).with_context(ctx)?;
    image.seek(SeekFrom::Start(0)).with_context(ctx)?;
    let (sha, size) = HashingReader::new(BufReader::with_capacity(1 << 20, &*image))
        .finish()
        .with_context(ctx)?;
    Ok((sha, size, file))
}

/// Truncates the file to the image's size: up to and including the backup
/// GPT header, whose sector the primary header (sector 1) names. Only zeros
/// are ever cut.
fn cut_padding(image: &mut File) -> anyhow::Result<()> {
    let mut header = [0u8; 92];
    image.seek(SeekFrom::Start(512))?;
    image.read_exact(&mut header)?;
    if &header[..8] != b"EFI PART" {
        return Err(fail(
            Category::Build,
            "xorriso wrote no GPT header; the image would not boot from USB",
        ));
    }
    let backup = u64::from_le_bytes(header[32..40].try_into().expect("8 bytes"));
    let end = (backup + 1) * 512;
    let len = image.metadata()?.len();
    if end > len {
        return Err(fail(
            Category::Build,
            format!("xorriso wrote {len} bytes but its GPT says the image has {end}"),
        ));
    }
    let mut tail = Vec::new();
    image.seek(SeekFrom::Start(end))?;
    image.read_to_end(&mut tail)?;
    if tail.iter().any(|&b| b != 0) {
        return Err(fail(
            Category::Build,
            format!("xorriso wrote data after the image's end at byte {end}"),
        ));
    }
    image.set_len(end)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn image(backup_lba: u64, tail: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        let mut bytes = vec![0u8; ((backup_lba + 1) * 512) as usize];
        bytes[512..520].copy_from_slice(b"EFI PART");
        bytes[512 + 32..512 + 40].copy_from_slice(&backup_lba.to_le_bytes());
        bytes[(backup_lba * 512) as usize] = 0xee;
        f.write_all(&bytes).unwrap();
        f.write_all(tail).unwrap();
        f
    }

    #[test]
    fn padding_is_cut_at_the_backup_gpt_header() {
        let mut f = image(40, &[0; 63488]);
        cut_padding(&mut f).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 41 * 512);
        let mut exact = image(40, &[]);
        cut_padding(&mut exact).unwrap();
        assert_eq!(exact.metadata().unwrap().len(), 41 * 512);
    }

    #[test]
    fn data_after_the_image_or_no_gpt_is_an_error() {
        let mut f = image(40, &[0, 0, 1]);
        let e = cut_padding(&mut f).unwrap_err().to_string();
        assert!(e.contains("data after the image's end"), "{e}");
        assert_eq!(f.metadata().unwrap().len(), 41 * 512 + 3, "nothing is cut");
        let mut none = tempfile::tempfile().unwrap();
        none.write_all(&[0; 4096]).unwrap();
        let e = cut_padding(&mut none).unwrap_err().to_string();
        assert!(e.contains("no GPT header"), "{e}");
    }
}
