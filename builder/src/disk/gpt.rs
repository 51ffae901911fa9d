//! The GUID partition table and its protective MBR, written in Rust (no
//! sgdisk run, no loop device): the primary header and entries at LBA 1-33,
//! the backup copies in the last 33 sectors, CRC32s as UEFI 2.x section 5.3
//! defines them. GUIDs are derived from a seed (the build's content and
//! epoch), so two builds give the same bytes. Also reads a table back, for
//! `disk embed` to find the OEM partition of a golden image.

use sha2::{Digest, Sha256};

use crate::error::{fail, Category};

pub const SECTOR: u64 = 512;
/// 128 entries of 128 bytes: 32 sectors, the minimum UEFI asks for.
const ENTRIES: usize = 128;
const ENTRY_SIZE: usize = 128;
const ENTRY_SECTORS: u64 = (ENTRIES * ENTRY_SIZE) as u64 / SECTOR;

pub const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
pub const EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const LINUX_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// A partition: its GPT name, type, first sector and length in sectors.
#[derive(Debug, Clone)]
pub struct Partition {
    pub name: String,
    pub type_guid: &'static str,
    pub first_lba: u64,
    pub sectors: u64,
}

impl Partition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }
    pub fn len(&self) -> u64 {
        self.sectors * SECTOR
    }
}

/// The sectors the table needs at the start (MBR, header, entries) and end
/// (entries, header) of the disk.
pub const HEAD_SECTORS: u64 = 2 + ENTRY_SECTORS;
pub const TAIL_SECTORS: u64 = 1 + ENTRY_SECTORS;

/// A GUID in its on-disk (mixed-endian) form from the usual text form.
fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a GUID constant");
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// A version-4-shaped GUID (on-disk bytes) derived from `seed` and `what`.
pub fn derived_guid(seed: &str, what: &str) -> [u8; 16] {
    let d = Sha256::digest(format!("edgeforge-gpt/v1\0{seed}\0{what}"));
    let mut g = [0u8; 16];
    g.copy_from_slice(&d[..16]);
    g[7] = (g[7] & 0x0f) | 0x40; // version 4 (byte 7 is the high byte of the LE field)
    g[8] = (g[8] & 0x3f) | 0x80; // RFC 4122 variant
    g
}

/// The UUID text of a derived GUID (for mke2fs -U), in the usual form.
pub fn guid_text(g: &[u8; 16]) -> String {
    let mut b = *g;
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

/// The protective MBR's partition table, disk signature and boot signature
/// (sector 0 without boot code: bios.rs puts GRUB's in front of it).
pub fn protective_mbr(total_sectors: u64, seed: &str) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[0x1b8..0x1bc].copy_from_slice(&derived_guid(seed, "mbr")[..4]);
    let e = &mut m[0x1be..0x1ce];
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    e[4] = 0xee;
    e[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = (total_sectors - 1).min(u32::MAX as u64) as u32;
    e[12..16].copy_from_slice(&size.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    m
}

/// The partition entry array (32 sectors).
fn entries(parts: &[Partition], seed: &str) -> Vec<u8> {
    let mut a = vec![0u8; ENTRIES * ENTRY_SIZE];
    for (i, p) in parts.iter().enumerate() {
        let e = &mut a[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE];
        e[0..16].copy_from_slice(&guid_bytes(p.type_guid));
        e[16..32].copy_from_slice(&derived_guid(seed, &format!("partition {}", p.name)));
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&(p.first_lba + p.sectors - 1).to_le_bytes());
        for (j, u) in p.name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
        }
    }
    a
}

fn header(total: u64, primary: bool, entries_crc: u32, seed: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (me, other, array) = if primary {
        (1, total - 1, 2)
    } else {
        (total - 1, 1, total - TAIL_SECTORS)
    };
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&me.to_le_bytes());
    h[32..40].copy_from_slice(&other.to_le_bytes());
    h[40..48].copy_from_slice(&HEAD_SECTORS.to_le_bytes());
    h[48..56].copy_from_slice(&(total - TAIL_SECTORS - 1).to_le_bytes());
    h[56..72].copy_from_slice(&derived_guid(seed, "disk"));
    h[72..80].copy_from_slice(&array.to_le_bytes());
    h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let crc = crc32(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The table's bytes: what goes at LBA 1 (header and entries, 33 sectors)
/// and in the last 33 sectors (entries, then the backup header).
pub struct Table {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

pub fn table(total_sectors: u64, parts: &[Partition], seed: &str) -> Table {
    let array = entries(parts, seed);
    let crc = crc32(&array);
    let mut head = header(total_sectors, true, crc, seed).to_vec();
    head.extend_from_slice(&array);
    let mut tail = array;
    tail.extend_from_slice(&header(total_sectors, false, crc, seed));
    Table { head, tail }
}

/// The partition named `name` in the primary table of `disk` (the first
/// 34 sectors of an image), checked by its CRCs.
pub fn find(disk: &[u8], name: &str) -> anyhow::Result<Option<Partition>> {
    let bad = |what: &str| fail(Category::BadImage, format!("not a GPT disk image: {what}"));
    if disk.len() < (HEAD_SECTORS * SECTOR) as usize {
        return Err(bad("shorter than a partition table"));
    }
    let h = &disk[512..1024];
    if &h[0..8] != b"EFI PART" {
        return Err(bad("no `EFI PART` header at LBA 1"));
    }
    let mut copy = h[..92].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != u32::from_le_bytes(h[16..20].try_into().expect("4 bytes")) {
        return Err(bad("the header's CRC32 does not match"));
    }
    let array = &disk[1024..1024 + ENTRIES * ENTRY_SIZE];
    if crc32(array) != u32::from_le_bytes(h[88..92].try_into().expect("4 bytes")) {
        return Err(bad("the partition entries' CRC32 does not match"));
    }
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    for e in array.chunks(ENTRY_SIZE) {
        if e[0..16].iter().all(|b| *b == 0) {
            continue;
        }
        let units: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        if String::from_utf16_lossy(&units) == name {
            let (first, last) = (u64_at(e, 32), u64_at(e, 40));
            return Ok(Some(Partition {
                name: name.to_string(),
                type_guid: LINUX_DATA,
                first_lba: first,
                sectors: last + 1 - first,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_round_trip_and_tables_read_back() {
        assert_eq!(
            guid_text(&guid_bytes(EFI_SYSTEM)),
            EFI_SYSTEM.to_lowercase()
        );
        let g = derived_guid("seed", "disk");
        assert_eq!(&guid_text(&g)[14..15], "4", "version 4: {}", guid_text(&g));
        let parts = [Partition {
            name: "oem".into(),
            type_guid: LINUX_DATA,
            first_lba: 2048,
            sectors: 4096,
        }];
        let t = table(8192, &parts, "seed");
        let mut disk = vec![0u8; 512];
        disk.extend_from_slice(&t.head);
        let found = find(&disk, "oem").unwrap().unwrap();
        assert_eq!((found.first_lba, found.sectors), (2048, 4096));
        assert!(find(&disk, "other").unwrap().is_none());
        disk[1024 + 40] ^= 1;
        assert!(find(&disk, "oem").is_err(), "a changed entry fails its CRC");
    }
}
