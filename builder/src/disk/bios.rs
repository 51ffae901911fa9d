//! BIOS boot from the disk: GRUB's `core.img` in the BIOS boot partition and
//! GRUB's `boot.img` as the MBR's boot code, patched as `grub-bios-setup`
//! patches them when it embeds GRUB in a GPT disk's BIOS boot partition
//! (GRUB's util/setup.c), but on the image file, without a device: boot.img
//! learns the sector core.img starts at, and core.img's first sector
//! (diskboot.img) gets the block list of the rest. The partition is
//! contiguous, so one block list entry covers it. No Reed-Solomon codes are
//! added (`grub-install --no-rs-codes` does the same).

use std::fs;
use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::error::{fail, Category};
use crate::host_tools;
use crate::iso::grub::MODULES;

use super::gpt::SECTOR;

// Offsets in boot.img, from GRUB's include/grub/i386/pc/boot.h.
const BPB_START: usize = 0x3;
const BPB_END: usize = 0x5a;
const KERNEL_SECTOR: usize = 0x5c;
const BOOT_DRIVE: usize = 0x64;
const DRIVE_CHECK: usize = 0x66;
const WINDOWS_NT_MAGIC: usize = 0x1b8;
const PART_END: usize = 0x1fe;
/// Where diskboot.img loads the rest of core.img: GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20.
const KERNEL_SEGMENT: u16 = 0x820;
/// One block list entry: start (u64), sectors (u16), segment (u16).
const BLOCKLIST: usize = 12;
/// The largest core.img grub-bios-setup embeds: what fits between
/// GRUB_KERNEL_I386_PC_LINK_ADDR (0x9000) and 0x78000 (setup.c's `maxsec`),
/// 888 sectors.
const MAX_CORE: u64 = 0x78000 - 0x9000;

/// GRUB's core.img for a BIOS boot partition (diskboot.img first), with
/// `early` embedded: it finds COS_RECOVERY and loads the menu from there.
pub fn core_img(sh: &Shell, early: &Path, out: &Path) -> anyhow::Result<Vec<u8>> {
    host_tools::run(cmd!(
        sh,
        "grub-mkimage -O i386-pc -c {early} -p /grub2 -o {out} biosdisk {MODULES...}"
    ))?;
    fs::read(out).with_context(|| format!("reading {}", out.display()))
}

/// GRUB's boot.img as Debian ships it.
pub fn boot_img() -> anyhow::Result<Vec<u8>> {
    let p = Path::new(host_tools::GRUB_PC.what).join("boot.img");
    let b = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    if b.len() != SECTOR as usize {
        return Err(fail(
            Category::Build,
            format!("{} is {} bytes, not one sector", p.display(), b.len()),
        ));
    }
    Ok(b)
}

/// Sector 0: boot.img's code with the BPB and partition table of `mbr` (the
/// protective MBR), told that core.img starts at `core_lba`.
pub fn mbr(boot: &[u8], mbr: &[u8; 512], core_lba: u64) -> [u8; 512] {
    let mut s = [0u8; 512];
    s.copy_from_slice(boot);
    s[BPB_START..BPB_END].copy_from_slice(&mbr[BPB_START..BPB_END]);
    // A hard disk: nop out the jump that trusts the BIOS's drive number
    // (some BIOSes pass 0x00 for the first disk).
    s[DRIVE_CHECK] = 0x90;
    s[DRIVE_CHECK + 1] = 0x90;
    s[BOOT_DRIVE] = 0xff;
    s[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    s[WINDOWS_NT_MAGIC..PART_END].copy_from_slice(&mbr[WINDOWS_NT_MAGIC..PART_END]);
    s[PART_END..].copy_from_slice(&mbr[PART_END..]);
    s
}

/// core.img padded to whole sectors, its block list pointing at the
/// sectors after `core_lba` (where the rest of it sits).
pub fn place_core(core: &[u8], core_lba: u64, room: u64) -> anyhow::Result<Vec<u8>> {
    let sectors = (core.len() as u64).div_ceil(SECTOR);
    if core.len() < 2 * SECTOR as usize || sectors * SECTOR > room.min(MAX_CORE) {
        return Err(fail(
            Category::Build,
            format!(
                "GRUB's core.img is {} bytes; the BIOS boot partition holds {}",
                core.len(),
                room.min(MAX_CORE)
            ),
        ));
    }
    let mut img = core.to_vec();
    img.resize((sectors * SECTOR) as usize, 0);
    let first = SECTOR as usize - BLOCKLIST;
    // Clear the lists grub-mkimage left, down to their terminator.
    let mut at = first;
    while at > BLOCKLIST && img[at + 8..at + 10] != [0, 0] {
        img[at..at + BLOCKLIST].fill(0);
        at -= BLOCKLIST;
    }
    img[first..first + 8].copy_from_slice(&(core_lba + 1).to_le_bytes());
    img[first + 8..first + 10].copy_from_slice(&((sectors - 1) as u16).to_le_bytes());
    img[first + 10..first + 12].copy_from_slice(&KERNEL_SEGMENT.to_le_bytes());
    img[first - BLOCKLIST..first].fill(0); // the terminator
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_list_covers_the_rest_of_core_img() {
        let mut core = vec![0xabu8; 3000];
        core[500..512].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0x20, 0x08]);
        let img = place_core(&core, 2048, 1 << 20).unwrap();
        assert_eq!(img.len(), 3072);
        assert_eq!(u64::from_le_bytes(img[500..508].try_into().unwrap()), 2049);
        assert_eq!(u16::from_le_bytes([img[508], img[509]]), 5);
        assert_eq!(&img[510..512], &[0x20, 0x08]);
        assert!(img[488..500].iter().all(|b| *b == 0));
        assert!(place_core(&core, 2048, 2048).is_err());
        // setup.c's bound: 888 sectors embed, 889 do not, whatever the room.
        assert!(place_core(&vec![1u8; 888 * 512], 2048, 1 << 20).is_ok());
        assert!(place_core(&vec![1u8; 888 * 512 + 1], 2048, 1 << 20).is_err());

        let boot = vec![0x11u8; 512];
        let mut pmbr = [0u8; 512];
        pmbr[0x1c2] = 0xee;
        pmbr[510] = 0x55;
        pmbr[511] = 0xaa;
        let s = mbr(&boot, &pmbr, 2048);
        assert_eq!(u64::from_le_bytes(s[0x5c..0x64].try_into().unwrap()), 2048);
        assert_eq!(s[0x1c2], 0xee);
        assert_eq!(&s[510..], &[0x55, 0xaa]);
        assert_eq!(s[0], 0x11, "boot code kept");
    }
}
