//! The xorriso run: volume `COS_LIVE`, Joliet and Rock Ridge, GRUB's BIOS
//! El Torito image with the hybrid MBR, and the FAT image appended as GPT
//! partition 2 for UEFI (the layout strict firmware accepts). xorriso writes
//! to stdout and the image is hashed on its way to disk. `/config.yaml` is
//! placed last, so a per-site copy differs from its golden ISO only near the end. `/config.yaml` is
//! placed last, so a per-site copy differs from its golden ISO only near the end.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::host_tools;
use crate::io::{AtomicFile, HashingWriter, Sha256Digest};
use crate::progress::{Progress, ProgressWriter};

pub fn write(
    sh: &Shell,
    stage: &Path,
    target: &Path,
    epoch: u64,
    mode: u32,
) -> anyhow::Result<(Sha256Digest, u64, AtomicFile)> {
    let hybrid = stage.join("boot/boot_hybrid.img");
    let uefi = stage.join("boot/uefi.img");
    // xorriso takes a zero date as "not set" and stamps the current time, so
    // the default epoch 0 is passed as 1970-01-01T00:00:01.
    let epoch = epoch.max(1);
    let date = format!("={epoch}");
    let epoch = epoch.to_string();
    let cmd = cmd!(
        sh,
        "xorriso -report_about SORRY -outdev - -volid COS_LIVE -joliet on -padding 0 -volume_date all_file_dates {date}
            -map {stage} / -chmod 0755 / --
            -find /config.yaml -exec sort_weight -1 --
            -boot_image grub bin_path=/boot/eltorito.img
            -boot_image grub grub2_mbr={hybrid}
            -boot_image grub grub2_boot_info=on
            -boot_image any partition_offset=16
            -boot_image any cat_path=/boot/boot.catalog
            -boot_image any cat_hidden=on
            -boot_image any boot_info_table=on
            -boot_image any platform_id=0x00
            -boot_image any emul_type=no_emulation
            -boot_image any load_size=2048
            -append_partition 2 0xef {uefi}
            -boot_image any next
            -boot_image any efi_path=--interval:appended_partition_2:all::
            -boot_image any platform_id=0xef
            -boot_image any emul_type=no_emulation
            -boot_image any appended_part_as=gpt
            -boot_image any mbr_force_bootable=on"
    )
    .env("SOURCE_DATE_EPOCH", &epoch);
    let file = AtomicFile::create(target, mode)?;
    let mut sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut running = host_tools::spawn_stdout(cmd)?;
    let mut stdout = running.child.stdout.take().expect("piped");
    let progress = Progress::bytes(format!("writing {}", target.display()));
    let copied = std::io::copy(
        &mut stdout,
        &mut ProgressWriter {
            inner: &mut sink,
            progress: &progress,
        },
    )
    .with_context(|| format!("writing {}", target.display()));
    drop(stdout);
    running.finish()?;
    copied?;
    progress.finish();
    sink.flush()?;
    let (sha, size, buffered) = sink.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", target.display()))?;
    Ok((sha, size, file))
}
