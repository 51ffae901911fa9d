//! A site user-data medium: the small, non-bootable ISO 9660 image that
//! cloud-init's NoCloud source and the Palette agent read at first boot
//! ("Apply Site User Data"). It holds what the documented
//! `mkisofs -output X -volid cidata -joliet -rock user-data meta-data`
//! makes (volume ID `cidata`, Joliet and Rock Ridge names, the two files),
//! written here in memory: no host tool, the same bytes for the same inputs
//! and epoch.
//!
//! Layout (2048-byte logical sectors, ECMA-119 6.1.2):
//!
//! | sector | content                                                   |
//! |--------|-----------------------------------------------------------|
//! | 0-15   | system area, zero (ECMA-119 6.2.1)                        |
//! | 16     | primary volume descriptor (ECMA-119 8.4)                  |
//! | 17     | Joliet supplementary volume descriptor (ECMA-119 8.5, Joliet 2.1) |
//! | 18     | volume descriptor set terminator (ECMA-119 8.3)           |
//! | 19     | primary root directory, with Rock Ridge entries          |
//! | 20     | continuation area holding the root's ER entry (SUSP 5.1)  |
//! | 21, 22 | primary type L and type M path tables (ECMA-119 9.4)      |
//! | 23, 24 | Joliet type L and type M path tables                      |
//! | 25     | Joliet root directory                                     |
//! | 26...  | `meta-data`, then `user-data` (each at least one sector)  |

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use xshell::cmd;

use crate::host_tools;

/// ECMA-119 6.1.2: the logical sector (and block) size.
const SECTOR: usize = 2048;
const PVD: usize = 16;
const ROOT: usize = 19;
const CONTINUATION: usize = 20;
const PATH_L: usize = 21;
const PATH_M: usize = 22;
const JOLIET_PATH_L: usize = 23;
const JOLIET_PATH_M: usize = 24;
const JOLIET_ROOT: usize = 25;
const FIRST_FILE: usize = 26;

/// The volume ID NoCloud looks for (cloud-init: label `cidata` or `CIDATA`).
pub const VOLUME_ID: &str = "cidata";

/// RRIP 1.10 (the `RRIP_1991A` extension, as xorriso and mkisofs announce
/// it) ER fields (SUSP 5.5; RRIP 1.12 section 5).
const ER_ID: &str = "RRIP_1991A";
const ER_DESCRIPTOR: &str =
    "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SOURCE: &str = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// Modes in Rock Ridge PX entries: the user-data may hold the registration
/// token, so only its owner (root, who the agent and cloud-init run as) reads it.
const DIR_MODE: u32 = 0o040555;
const META_DATA_MODE: u32 = 0o100444;
const USER_DATA_MODE: u32 = 0o100400;

struct File<'a> {
    /// ISO 9660 level 1 identifier (d-characters, 8.3, `;1`), as mkisofs and
    /// xorriso map the name.
    iso_name: &'static str,
    /// The Joliet and Rock Ridge name.
    name: &'static str,
    mode: u32,
    content: &'a [u8],
}

/// The medium's bytes: `user-data` and `meta-data` at its root, every date
/// `epoch` (seconds since 1970, UTC).
pub fn image(user_data: &[u8], meta_data: &[u8], epoch: u64) -> Vec<u8> {
    // ECMA-119 9.3: directory records sorted by identifier; META_DAT < USER_DAT
    // and, in UCS-2, meta-data < user-data.
    let files = [
        File {
            iso_name: "META_DAT.;1",
            name: "meta-data",
            mode: META_DATA_MODE,
            content: meta_data,
        },
        File {
            iso_name: "USER_DAT.;1",
            name: "user-data",
            mode: USER_DATA_MODE,
            content: user_data,
        },
    ];
    let mut at = FIRST_FILE;
    let mut extents = Vec::new();
    for f in &files {
        extents.push(at);
        at += f.content.len().div_ceil(SECTOR).max(1);
    }
    let total = at;
    let date = Date::of(epoch);
    let mut img = vec![0u8; total * SECTOR];

    // Primary root directory with Rock Ridge (RRIP 1.12 section 4; SUSP 4.1).
    let mut dot_su = Vec::new();
    // SUSP 5.3: SP, first in the root's `.` record, says SUSP is in use.
    dot_su.extend_from_slice(&[b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
    dot_su.extend(px(DIR_MODE, 2));
    dot_su.extend(tf(&date));
    let er = er();
    // SUSP 5.1: CE points to the continuation area that holds ER (too long
    // for the record itself).
    dot_su.extend(ce(CONTINUATION, 0, er.len()));
    let mut parent_su = px(DIR_MODE, 2);
    parent_su.extend(tf(&date));
    let mut root = Vec::new();
    root.extend(record(ROOT, SECTOR, true, &[0], &date, &dot_su));
    root.extend(record(ROOT, SECTOR, true, &[1], &date, &parent_su));
    for (f, &extent) in files.iter().zip(&extents) {
        let mut su = px(f.mode, 1);
        su.extend(tf(&date));
        // RRIP 1.12 4.1.4: NM, the POSIX name.
        su.extend_from_slice(&[b'N', b'M', 5 + f.name.len() as u8, 1, 0]);
        su.extend_from_slice(f.name.as_bytes());
        root.extend(record(
            extent,
            f.content.len(),
            false,
            f.iso_name.as_bytes(),
            &date,
            &su,
        ));
    }
    put(&mut img, ROOT * SECTOR, &root);
    put(&mut img, CONTINUATION * SECTOR, &er);

    // Joliet root directory: UCS-2 big-endian names, no Rock Ridge.
    let mut joliet = Vec::new();
    joliet.extend(record(JOLIET_ROOT, SECTOR, true, &[0], &date, &[]));
    joliet.extend(record(JOLIET_ROOT, SECTOR, true, &[1], &date, &[]));
    for (f, &extent) in files.iter().zip(&extents) {
        joliet.extend(record(
            extent,
            f.content.len(),
            false,
            &ucs2(f.name),
            &date,
            &[],
        ));
    }
    put(&mut img, JOLIET_ROOT * SECTOR, &joliet);

    // ECMA-119 9.4: one path table record, the root (identifier 0x00,
    // parent 1), in little-endian (L) and big-endian (M) form.
    for (sector, dir, big) in [
        (PATH_L, ROOT, false),
        (PATH_M, ROOT, true),
        (JOLIET_PATH_L, JOLIET_ROOT, false),
        (JOLIET_PATH_M, JOLIET_ROOT, true),
    ] {
        let mut rec = vec![1, 0];
        let (loc, parent) = if big {
            ((dir as u32).to_be_bytes(), 1u16.to_be_bytes())
        } else {
            ((dir as u32).to_le_bytes(), 1u16.to_le_bytes())
        };
        rec.extend_from_slice(&loc);
        rec.extend_from_slice(&parent);
        rec.extend_from_slice(&[0, 0]); // identifier 0x00 and its pad byte
        put(&mut img, sector * SECTOR, &rec);
    }

    for (f, &extent) in files.iter().zip(&extents) {
        put(&mut img, extent * SECTOR, f.content);
    }

    put(
        &mut img,
        PVD * SECTOR,
        &descriptor(false, total, ROOT, PATH_L, PATH_M, &date),
    );
    put(
        &mut img,
        (PVD + 1) * SECTOR,
        &descriptor(
            true,
            total,
            JOLIET_ROOT,
            JOLIET_PATH_L,
            JOLIET_PATH_M,
            &date,
        ),
    );
    // ECMA-119 8.3: the terminator.
    put(
        &mut img,
        (PVD + 2) * SECTOR,
        &[255, b'C', b'D', b'0', b'0', b'1', 1],
    );
    img
}

/// The FAT label NoCloud also accepts, for USB sticks.
pub const FAT_LABEL: &str = "CIDATA";

/// The same two files on a FAT image labelled `CIDATA` (for USB sticks),
/// made with mtools (reproducible under SOURCE_DATE_EPOCH, like the EFI
/// image) in `work`, a private folder the caller removes. The image is 1 MiB
/// more than the files, in whole MiB.
pub fn fat_image(
    user_data: &[u8],
    meta_data: &[u8],
    epoch: u64,
    work: &Path,
) -> anyhow::Result<Vec<u8>> {
    host_tools::require(&[&host_tools::MFORMAT, &host_tools::MCOPY])?;
    let sh = host_tools::shell()?;
    let ud = work.join("user-data");
    let md = work.join("meta-data");
    for (path, bytes) in [(&ud, user_data), (&md, meta_data)] {
        // 0600: the user-data may hold the token.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let out = work.join("cidata.img");
    let content = (user_data.len() + meta_data.len()) as u64;
    super::efi::format_fat(&sh, &out, content, FAT_LABEL, epoch, || {
        host_tools::run(cmd!(sh, "mcopy -i {out} {ud} {md} ::/"))
    })?;
    fs::read(&out).with_context(|| format!("reading {}", out.display()))
}

fn put(img: &mut [u8], at: usize, bytes: &[u8]) {
    img[at..at + bytes.len()].copy_from_slice(bytes);
}

/// ECMA-119 7.2.3 / 7.3.3: a number in both byte orders.
fn both16(n: u16) -> [u8; 4] {
    let (l, b) = (n.to_le_bytes(), n.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

fn both32(n: u32) -> [u8; 8] {
    let (l, b) = (n.to_le_bytes(), n.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// A directory record (ECMA-119 9.1) with a system use area.
fn record(extent: usize, len: usize, dir: bool, id: &[u8], date: &Date, su: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 33];
    r[2..10].copy_from_slice(&both32(extent as u32));
    r[10..18].copy_from_slice(&both32(len as u32));
    r[18..25].copy_from_slice(&date.short());
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1)); // volume sequence number
    r[32] = id.len() as u8;
    r.extend_from_slice(id);
    if id.len().is_multiple_of(2) {
        r.push(0); // 9.1.12: pad to an even offset
    }
    r.extend_from_slice(su);
    if r.len() % 2 == 1 {
        r.push(0); // 9.1.13: records have an even length
    }
    r[0] = r.len() as u8;
    r
}

/// RRIP 1.12 4.1.1: PX, POSIX mode, links, owner and group (root), in the
/// 36-byte RRIP 1.10 form xorriso writes.
fn px(mode: u32, links: u32) -> Vec<u8> {
    let mut e = vec![b'P', b'X', 36, 1];
    for n in [mode, links, 0, 0] {
        e.extend_from_slice(&both32(n));
    }
    e
}

/// RRIP 1.12 4.1.6: TF, modification, access and attribute change times.
fn tf(date: &Date) -> Vec<u8> {
    let mut e = vec![b'T', b'F', 5 + 3 * 7, 1, 0x0E];
    for _ in 0..3 {
        e.extend_from_slice(&date.short());
    }
    e
}

/// SUSP 5.1: CE, where the system use area continues.
fn ce(sector: usize, offset: usize, len: usize) -> Vec<u8> {
    let mut e = vec![b'C', b'E', 28, 1];
    for n in [sector, offset, len] {
        e.extend_from_slice(&both32(n as u32));
    }
    e
}

/// SUSP 5.5: ER, the Rock Ridge extension this volume uses.
fn er() -> Vec<u8> {
    let mut e = vec![
        b'E',
        b'R',
        (8 + ER_ID.len() + ER_DESCRIPTOR.len() + ER_SOURCE.len()) as u8,
        1,
        ER_ID.len() as u8,
        ER_DESCRIPTOR.len() as u8,
        ER_SOURCE.len() as u8,
        1,
    ];
    for s in [ER_ID, ER_DESCRIPTOR, ER_SOURCE] {
        e.extend_from_slice(s.as_bytes());
    }
    e
}

/// The primary (ECMA-119 8.4) or Joliet supplementary (8.5; Joliet 2.1,
/// UCS-2 level 3) volume descriptor.
fn descriptor(
    joliet: bool,
    total: usize,
    root: usize,
    path_l: usize,
    path_m: usize,
    date: &Date,
) -> Vec<u8> {
    let mut d = vec![0u8; SECTOR];
    d[0] = if joliet { 2 } else { 1 };
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    // Text fields are space-filled: ASCII in the primary descriptor,
    // UCS-2 big-endian in Joliet's.
    let text = |d: &mut [u8], at: usize, len: usize, s: &str| {
        let bytes = if joliet {
            let mut b = ucs2(s);
            while b.len() < len {
                b.extend_from_slice(&[0, b' ']);
            }
            b
        } else {
            let mut b = s.as_bytes().to_vec();
            b.resize(len, b' ');
            b
        };
        d[at..at + len].copy_from_slice(&bytes[..len]);
    };
    text(&mut d, 8, 32, ""); // system identifier
    text(&mut d, 40, 32, VOLUME_ID);
    d[80..88].copy_from_slice(&both32(total as u32));
    if joliet {
        d[88..91].copy_from_slice(b"%/E"); // Joliet 2.1: UCS-2 level 3
    }
    d[120..124].copy_from_slice(&both16(1)); // volume set size
    d[124..128].copy_from_slice(&both16(1)); // volume sequence number
    d[128..132].copy_from_slice(&both16(SECTOR as u16));
    d[132..140].copy_from_slice(&both32(10)); // path table size: one record
    d[140..144].copy_from_slice(&(path_l as u32).to_le_bytes());
    d[148..152].copy_from_slice(&(path_m as u32).to_be_bytes());
    let root_record = record(root, SECTOR, true, &[0], date, &[]);
    d[156..190].copy_from_slice(&root_record);
    for (at, len) in [
        (190, 128), // volume set
        (318, 128), // publisher
        (446, 128), // data preparer
        (574, 128), // application
        (702, 37),  // copyright file
        (739, 37),  // abstract file
        (776, 37),  // bibliographic file
    ] {
        text(&mut d, at, len, "");
    }
    if joliet {
        // Odd-length fields end on half a UCS-2 character: ECMA-119 keeps a
        // space byte there (as mkisofs and xorriso do).
        for at in [738, 775, 812] {
            d[at] = b' ';
        }
    }
    d[813..830].copy_from_slice(&date.long()); // creation
    d[830..847].copy_from_slice(&date.long()); // modification
    d[847..864].copy_from_slice(&Date::unset()); // expiration
    d[864..881].copy_from_slice(&Date::unset()); // effective
    d[881] = 1; // file structure version
    d
}

/// A UTC time, from seconds since 1970.
struct Date {
    year: i64,
    month: i64,
    day: i64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Date {
    fn of(epoch: u64) -> Date {
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = (epoch / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let secs = epoch % 86_400;
        Date {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs % 3600 / 60,
            second: secs % 60,
        }
    }

    /// ECMA-119 9.1.5: years since 1900, month, day, hour, minute, second,
    /// offset from UTC in 15-minute units (0).
    fn short(&self) -> [u8; 7] {
        [
            (self.year - 1900).clamp(0, 255) as u8,
            self.month as u8,
            self.day as u8,
            self.hour as u8,
            self.minute as u8,
            self.second as u8,
            0,
        ]
    }

    /// ECMA-119 8.4.26.1: `YYYYMMDDHHMMSScc` digits and the UTC offset.
    fn long(&self) -> [u8; 17] {
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        );
        let mut d = [0u8; 17];
        d[..16].copy_from_slice(s.as_bytes());
        d
    }

    /// ECMA-119 8.4.26.1: a date not specified.
    fn unset() -> [u8; 17] {
        let mut d = [b'0'; 17];
        d[16] = 0;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_ecma_119() {
        let d = Date::of(1_700_000_000); // 2023-11-14T22:13:20Z
        assert_eq!(d.short(), [123, 11, 14, 22, 13, 20, 0]);
        assert_eq!(&d.long()[..16], b"2023111422132000");
    }

    #[test]
    fn the_image_is_deterministic_and_well_formed() {
        let a = image(b"#cloud-config\n", b"", 0);
        assert_eq!(a, image(b"#cloud-config\n", b"", 0));
        assert_eq!(a.len(), 28 * SECTOR);
        assert_eq!(&a[PVD * SECTOR + 1..PVD * SECTOR + 6], b"CD001");
        assert_eq!(&a[PVD * SECTOR + 40..PVD * SECTOR + 46], b"cidata");
        let big = image(&vec![b'x'; 5000], b"instance-id: a\n", 0);
        assert_eq!(big.len(), (FIRST_FILE + 1 + 3) * SECTOR);
        // Every directory record fits its sector.
        assert!(er().len() < 256);
    }
}
