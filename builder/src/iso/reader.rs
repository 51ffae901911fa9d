//! Reading an ISO image directly: the primary volume descriptor, files by
//! Rock Ridge name, the El Torito boot catalog and the hybrid GPT, so
//! inspecting and patching an ISO needs no host tool.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;

use crate::error::{fail, Category};

const SECTOR: u64 = 2048;
/// The EFI System Partition type GUID as stored on disk.
const ESP_GUID: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];

pub struct IsoImage {
    file: File,
    origin: String,
    pub len: u64,
    pvd: Vec<u8>,
}

/// A file's data in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
}

struct Record {
    name: String,
    extent: Extent,
    is_dir: bool,
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

impl IsoImage {
    pub fn open(path: &Path) -> anyhow::Result<IsoImage> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let origin = path.display().to_string();
        let mut img = IsoImage {
            file,
            origin,
            len,
            pvd: vec![0; SECTOR as usize],
        };
        if len < 17 * SECTOR {
            return Err(img.not_iso("too small"));
        }
        img.pvd = img.read(16 * SECTOR, SECTOR as usize)?;
        if img.pvd[0] != 1 || &img.pvd[1..6] != b"CD001" {
            return Err(img.not_iso("no primary volume descriptor"));
        }
        Ok(img)
    }

    fn not_iso(&self, why: &str) -> anyhow::Error {
        fail(
            Category::InvalidInput,
            format!("{} is not an ISO 9660 image ({why})", self.origin),
        )
    }

    pub fn read(&self, offset: u64, len: usize) -> anyhow::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .with_context(|| format!("reading {} at {offset}", self.origin))?;
        Ok(buf)
    }

    /// Fails (exit 7) when the image was cut short or its hybrid GPT is
    /// damaged, e.g. by an interrupted copy or download: everything after
    /// the cut (the end of the volume, the EFI partition, the backup GPT
    /// header that ends the image) would be missing from a copy, which then
    /// fails to boot only at the site.
    pub fn check_complete(&self) -> anyhow::Result<()> {
        let problems = self.damage()?;
        if problems.is_empty() {
            return Ok(());
        }
        Err(fail(
            Category::BadImage,
            format!(
                "{} is damaged: {}; an interrupted or faulty copy or download does this: copy it again (check it against its .sha256) or rebuild it",
                self.origin,
                problems.join("; ")
            ),
        ))
    }

    /// What the completeness check found wrong, if anything.
    fn damage(&self) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        let blocks = u64::from(u32le(&self.pvd[80..]));
        let block_size = u64::from(u16::from_le_bytes([self.pvd[128], self.pvd[129]]));
        let volume = blocks * block_size;
        if volume > self.len {
            problems.push(format!(
                "its ISO 9660 volume is {volume} bytes, the file only {}",
                self.len
            ));
        }
        let primary = self.read(512, 512)?;
        if &primary[..8] == b"EFI PART" {
            problems.extend(self.gpt_damage(&primary)?);
        }
        Ok(problems)
    }

    /// Checks the hybrid GPT as firmware does: both headers and both copies
    /// of the partition table intact, every partition inside the file.
    fn gpt_damage(&self, primary: &[u8]) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        let u64at =
            |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if let Err(why) = gpt_header_ok(primary, 1) {
            problems.push(format!("its primary GPT header is damaged ({why})"));
            return Ok(problems);
        }
        let backup_lba = u64at(primary, 32);
        let (count, size) = (
            u64::from(u32le(&primary[80..])),
            u64::from(u32le(&primary[84..])),
        );
        let table_len = count * size;
        if !(128..=1 << 20).contains(&table_len) {
            problems.push(format!("its GPT claims a {table_len} byte partition table"));
            return Ok(problems);
        }
        let table_crc = u32le(&primary[88..]);
        let table_ok = |lba: u64| -> anyhow::Result<Result<Vec<u8>, String>> {
            let at = lba.saturating_mul(512);
            if at.saturating_add(table_len) > self.len {
                return Ok(Err(format!("it belongs at byte {at}, past the end")));
            }
            let table = self.read(at, table_len as usize)?;
            Ok(if crc32(&table) == table_crc {
                Ok(table)
            } else {
                Err("its checksum does not match".into())
            })
        };
        match table_ok(u64at(primary, 72))? {
            Ok(table) => {
                for (i, entry) in table.chunks(size as usize).enumerate() {
                    let last = u64at(entry, 40);
                    if entry[..16].iter().any(|&b| b != 0) && (last + 1) * 512 > self.len {
                        problems.push(format!(
                            "GPT partition {} ends at byte {}, past the file's end ({} bytes)",
                            i + 1,
                            (last + 1) * 512,
                            self.len
                        ));
                    }
                }
            }
            Err(why) => problems.push(format!(
                "its primary GPT partition table is damaged ({why})"
            )),
        }
        let backup_at = backup_lba.saturating_mul(512);
        if backup_at.saturating_add(512) > self.len {
            problems.push(format!(
                "its backup GPT header belongs at byte {backup_at}, past the file's end ({} bytes)",
                self.len
            ));
            return Ok(problems);
        }
        let backup = self.read(backup_at, 512)?;
        if let Err(why) = gpt_header_ok(&backup, backup_lba) {
            problems.push(format!(
                "its backup GPT header at byte {backup_at} is damaged ({why})"
            ));
        } else if let Err(why) = table_ok(u64at(&backup, 72))? {
            problems.push(format!("its backup GPT partition table is damaged ({why})"));
        }
        Ok(problems)
    }

    pub fn volume_id(&self) -> String {
        String::from_utf8_lossy(&self.pvd[40..72])
            .trim_end()
            .to_string()
    }

    /// The extent of the file at `path` (`/config.yaml`), by Rock Ridge name
    /// (or the ISO 9660 name without its `;1`, ignoring case).
    pub fn find(&self, path: &str) -> anyhow::Result<Option<Extent>> {
        let mut dir = self.root_record();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let Some(found) = self
                .list(&dir)?
                .into_iter()
                .find(|r| r.name == *part || r.name.eq_ignore_ascii_case(part))
            else {
                return Ok(None);
            };
            if i + 1 == parts.len() {
                return Ok((!found.is_dir).then_some(found.extent));
            }
            if !found.is_dir {
                return Ok(None);
            }
            dir = found;
        }
        Ok(None)
    }

    fn list(&self, dir: &Record) -> anyhow::Result<Vec<Record>> {
        let data = self.read(dir.extent.offset, dir.extent.len as usize)?;
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let len = data[pos] as usize;
            if len == 0 {
                // Records never cross a sector; the rest of this one is padding.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            if pos + len > data.len() {
                break;
            }
            if let Some(r) = self.parse_record(&data[pos..pos + len]) {
                out.push(r);
            }
            pos += len;
        }
        Ok(out)
    }

    fn parse_record(&self, r: &[u8]) -> Option<Record> {
        if r.len() < 34 {
            return None;
        }
        let name_len = r[32] as usize;
        let raw = r.get(33..33 + name_len)?;
        if raw == [0] || raw == [1] {
            return None; // `.` and `..`, except for the root record itself
        }
        let mut name = String::from_utf8_lossy(raw)
            .trim_end_matches(";1")
            .trim_end_matches('.')
            .to_string();
        // Rock Ridge: the system use area follows the name (padded to even).
        let mut su = 33 + name_len + (1 - name_len % 2);
        while su + 4 <= r.len() {
            let (sig, len) = (&r[su..su + 2], r[su + 2] as usize);
            if len < 4 || su + len > r.len() {
                break;
            }
            if sig == b"NM" && len > 5 {
                name = String::from_utf8_lossy(&r[su + 5..su + len]).into_owned();
            }
            su += len;
        }
        Some(Record {
            name,
            extent: Extent {
                offset: u64::from(u32le(&r[2..])) * SECTOR,
                len: u64::from(u32le(&r[10..])),
            },
            is_dir: r[25] & 2 != 0,
        })
    }

    fn root_record(&self) -> Record {
        let r = &self.pvd[156..190];
        Record {
            name: "/".into(),
            extent: Extent {
                offset: u64::from(u32le(&r[2..])) * SECTOR,
                len: u64::from(u32le(&r[10..])),
            },
            is_dir: true,
        }
    }

    /// How the image boots: El Torito entries per platform, and a hybrid
    /// GPT with an EFI System Partition for disk (USB) boot.
    pub fn boot_modes(&self) -> anyhow::Result<Vec<&'static str>> {
        let mut modes = Vec::new();
        for n in 17..32u64 {
            let vd = self.read(n * SECTOR, SECTOR as usize)?;
            if vd[0] == 255 {
                break;
            }
            if vd[0] == 0 && &vd[7..30] == b"EL TORITO SPECIFICATION" {
                let catalog = self.read(u64::from(u32le(&vd[71..])) * SECTOR, SECTOR as usize)?;
                // The validation entry names the initial entry's platform:
                // BIOS, or UEFI on an image with no BIOS boot (a UKI ISO).
                if catalog[0] == 1 && catalog[32] == 0x88 {
                    match catalog[1] {
                        0 => modes.push("BIOS (El Torito)"),
                        0xef => modes.push("UEFI (El Torito)"),
                        _ => {}
                    }
                }
                let mut e = 64;
                while e + 32 <= catalog.len() && matches!(catalog[e], 0x90 | 0x91) {
                    let (platform, count) = (
                        catalog[e + 1],
                        u16::from_le_bytes([catalog[e + 2], catalog[e + 3]]) as usize,
                    );
                    for k in 0..count {
                        let entry = e + 32 * (k + 1);
                        if entry < catalog.len() && catalog[entry] == 0x88 && platform == 0xef {
                            modes.push("UEFI (El Torito)");
                        }
                    }
                    e += 32 * (count + 1);
                }
            }
        }
        let lba1 = self.read(512, 512)?;
        if &lba1[0..8] == b"EFI PART" {
            let entries_lba = u64::from_le_bytes(lba1[72..80].try_into().expect("8 bytes"));
            let count = u32le(&lba1[80..]).min(256) as usize;
            let size = u32le(&lba1[84..]) as usize;
            let table = self.read(entries_lba * 512, count * size)?;
            if table
                .chunks(size.max(1))
                .any(|e| e.len() >= 16 && e[..16] == ESP_GUID)
            {
                modes.push("USB/disk (hybrid MBR + GPT EFI System Partition)");
            }
        }
        Ok(modes)
    }
}

/// A GPT header's signature, its own location and its checksum.
fn gpt_header_ok(h: &[u8], lba: u64) -> Result<(), String> {
    if &h[..8] != b"EFI PART" {
        return Err("no `EFI PART` signature".into());
    }
    let size = u32le(&h[12..]) as usize;
    if !(92..=512).contains(&size) {
        return Err(format!("header size {size}"));
    }
    if u64::from_le_bytes(h[24..32].try_into().expect("8 bytes")) != lba {
        return Err(format!("it does not say it is at sector {lba}"));
    }
    let mut copy = h[..size].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != u32le(&h[16..]) {
        return Err("its checksum does not match".into());
    }
    Ok(())
}

/// CRC-32 (IEEE), as GPT uses it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_iso() {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), vec![0u8; 64 * 1024]).unwrap();
        let e = IsoImage::open(t.path()).err().unwrap().to_string();
        assert!(e.contains("not an ISO 9660 image"), "{e}");
    }
}
