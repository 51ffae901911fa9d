//! Assembles the raw disk image from its parts: sector 0 (GRUB's boot code
//! over the protective MBR), the primary GPT, each partition's content at
//! its offset, the backup GPT in the last sectors. Written front to back and
//! hashed in the same pass; runs of zeros (gaps, unused partition space, the
//! unpartitioned room of a larger `disk.size`) are skipped in the file
//! (sparse) and fed to the hash only.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest as _, Sha256};

use super::gpt::{self, Partition, SECTOR};
use crate::error::{fail, Category};
use crate::io::Sha256Digest;

/// What a partition holds: an image file (shorter than or as long as the partition).
pub struct Part {
    pub gpt: Partition,
    pub content: PathBuf,
}

/// Writes the disk into `out` (an empty file) and returns its digest.
pub fn write(
    out: &mut File,
    total_sectors: u64,
    sector0: &[u8; 512],
    table: &gpt::Table,
    parts: &[Part],
) -> anyhow::Result<Sha256Digest> {
    let mut w = Sparse {
        file: out,
        hash: Sha256::new(),
        pos: 0,
    };
    w.bytes(sector0)?;
    w.bytes(&table.head)?;
    for p in parts {
        w.zeros_to(p.gpt.offset())?;
        let len = w.file_content(&p.content, p.gpt.len())?;
        debug_assert!(len <= p.gpt.len());
    }
    let tail_at = (total_sectors - gpt::TAIL_SECTORS) * SECTOR;
    w.zeros_to(tail_at)?;
    w.bytes(&table.tail)?;
    let total = total_sectors * SECTOR;
    debug_assert_eq!(w.pos, total);
    w.file.set_len(total).context("sizing the disk image")?;
    Ok(Sha256Digest(w.hash.finalize().into()))
}

struct Sparse<'a> {
    file: &'a mut File,
    hash: Sha256,
    pos: u64,
}

static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

impl Sparse<'_> {
    fn bytes(&mut self, b: &[u8]) -> anyhow::Result<()> {
        self.hash.update(b);
        self.file.write_all(b).context("writing the disk image")?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn zeros_to(&mut self, at: u64) -> anyhow::Result<()> {
        debug_assert!(at >= self.pos);
        let mut left = at - self.pos;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            self.hash.update(&ZEROS[..n]);
            left -= n as u64;
        }
        self.file
            .seek(SeekFrom::Start(at))
            .context("writing the disk image")?;
        self.pos = at;
        Ok(())
    }

    /// Copies a partition image of at most `room` bytes, leaving its
    /// all-zero blocks as holes.
    fn file_content(&mut self, path: &Path, room: u64) -> anyhow::Result<u64> {
        let ctx = || format!("copying {} into the disk image", path.display());
        let file = File::open(path).with_context(ctx)?;
        // Checked before writing: a longer image would overwrite the next partition.
        let len = file.metadata().with_context(ctx)?.len();
        if len > room {
            return Err(fail(
                Category::Build,
                format!(
                    "{} is {len} bytes, more than its partition's {room}",
                    path.display()
                ),
            ));
        }
        let mut src = io::BufReader::with_capacity(1 << 20, file);
        let mut block = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = read_full(&mut src, &mut block).with_context(ctx)?;
            if n == 0 {
                break;
            }
            if block[..n].iter().all(|b| *b == 0) {
                self.zeros_to(self.pos + n as u64)?;
            } else {
                self.bytes(&block[..n])?;
            }
            total += n as u64;
        }
        Ok(total)
    }
}

fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_image_longer_than_its_partition_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let content = t.path().join("part.img");
        std::fs::write(&content, vec![7u8; 4096 + 1]).unwrap();
        let part = |sectors| Part {
            gpt: Partition {
                name: "p".into(),
                type_guid: gpt::LINUX_DATA,
                first_lba: 2048,
                sectors,
            },
            content: content.clone(),
        };
        let total = 2048 + 16 + gpt::TAIL_SECTORS;
        let write_with = |sectors| {
            let parts = [part(sectors)];
            let table = gpt::table(total, &[parts[0].gpt.clone()], "seed");
            let out = t.path().join(format!("{sectors}.raw"));
            write(
                &mut File::create(&out).unwrap(),
                total,
                &[0; 512],
                &table,
                &parts,
            )
            .map(|_| std::fs::read(&out).unwrap())
        };
        let err = write_with(8).unwrap_err();
        assert!(
            format!("{err:#}").contains("more than its partition's 4096"),
            "{err:#}"
        );
        let disk = write_with(16).unwrap();
        assert_eq!(disk.len() as u64, total * SECTOR);
        assert_eq!(disk[2048 * 512 + 4096], 7);
        assert_eq!(disk[2048 * 512 + 4097], 0);
    }
}
