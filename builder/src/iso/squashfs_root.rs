//! Gives the root folder of a squashfs made by `mksquashfs -tar` the
//! attributes the image records. squashfs-tools 4.5.1 (Debian 12) ignores
//! `-root-time`, `-root-uid` and `-root-gid` when it reads a tar: the root
//! gets the current time and the runner's ids, so two builds would differ.
//! The squashfs is made with `-noI` (its inode and id tables stored
//! uncompressed, a few hundred KiB on a real OS), so the root inode's mtime
//! and owner indices can be rewritten in place; the layout does not move.
//! Format: squashfs 4.0 (`Documentation/filesystems/squashfs.rst`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context};

use crate::log::warning;

const MAGIC: u32 = 0x7371_7368;
/// Metadata blocks hold up to 8 KiB; a set bit 15 in their 2-byte header
/// says the block is stored uncompressed.
const METADATA_SIZE: u64 = 8192;
const UNCOMPRESSED: u16 = 0x8000;

/// Rewrites the root inode of the squashfs at `path`: `mtime` and the
/// owner `uid:gid` when the filesystem stores those ids (a root owner no
/// file shares is warned about and left as mksquashfs set it).
pub fn set_root(path: &Path, mtime: u32, uid: u32, gid: u32) -> anyhow::Result<()> {
    let ctx = || format!("setting the root folder's attributes in {}", path.display());
    let f = File::options()
        .read(true)
        .write(true)
        .open(path)
        .with_context(ctx)?;
    let sb = read_at(&f, 0, 96).with_context(ctx)?;
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(sb[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(sb[o..o + 8].try_into().expect("8 bytes"));
    if u32_at(0) != MAGIC || u16_at(28) != 4 {
        bail!("{}: not a squashfs 4.0 image", path.display());
    }
    let id_count = u16_at(26) as u64;
    let root_ref = u64_at(32);
    let (id_table, inode_table) = (u64_at(48), u64_at(64));
    let ids = ids(&f, id_table, id_count).with_context(ctx)?;
    let index = |id: u32| ids.iter().position(|i| *i == id).map(|i| i as u16);
    // The root inode's header: type, mode, uid index, gid index, mtime.
    let stream = Stream {
        file: &f,
        start: inode_table + (root_ref >> 16),
    };
    let at = root_ref & 0xffff;
    let (at, patch) = match (index(uid), index(gid)) {
        (Some(u), Some(g)) => {
            let mut patch = Vec::with_capacity(8);
            patch.extend_from_slice(&u.to_le_bytes());
            patch.extend_from_slice(&g.to_le_bytes());
            patch.extend_from_slice(&mtime.to_le_bytes());
            (at + 4, patch)
        }
        // mksquashfs lists only the ids some file has: the root keeps the
        // one it got (root's, as mksquashfs runs as root or in a namespace).
        _ => {
            warning!(
                "{}: the image's root folder is owned by {uid}:{gid}, which no other file is; squashfs-tools 4.5.1 gives it mksquashfs's own (root's)",
                path.display()
            );
            (at + 8, mtime.to_le_bytes().to_vec())
        }
    };
    // Not flushed: the squashfs is a work file (and a cache file, which
    // are never flushed); the ISO holding it is.
    stream.write(at, &patch).with_context(ctx)
}

/// The id table: `count` u32 ids in uncompressed metadata blocks, whose
/// absolute offsets are listed at `table`.
fn ids(f: &File, table: u64, count: u64) -> anyhow::Result<Vec<u32>> {
    let blocks = (count * 4).div_ceil(METADATA_SIZE);
    let index = read_at(f, table, blocks as usize * 8)?;
    let mut ids = Vec::with_capacity(count as usize);
    for b in index.chunks(8) {
        let start = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let (len, data_at) = block(f, start)?;
        let want = ((count - ids.len() as u64) * 4).min(len);
        let data = read_at(f, data_at, want as usize)?;
        ids.extend(
            data.chunks(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
    }
    Ok(ids)
}

/// The length and data offset of the uncompressed metadata block at `start`.
fn block(f: &File, start: u64) -> anyhow::Result<(u64, u64)> {
    let h = read_at(f, start, 2)?;
    let header = u16::from_le_bytes([h[0], h[1]]);
    if header & UNCOMPRESSED == 0 {
        bail!("a metadata block at {start} is compressed (mksquashfs ran without -noI)");
    }
    Ok(((header & !UNCOMPRESSED) as u64, start + 2))
}

/// The metadata stream that starts with the block at `start`: an offset
/// into it maps to the file through the blocks' headers, so an inode
/// spanning two blocks is written correctly.
struct Stream<'a> {
    file: &'a File,
    start: u64,
}

impl Stream<'_> {
    fn write(&self, mut at: u64, mut bytes: &[u8]) -> anyhow::Result<()> {
        let mut block_start = self.start;
        while !bytes.is_empty() {
            let (len, data) = block(self.file, block_start)?;
            if at < len {
                let n = bytes.len().min((len - at) as usize);
                self.file.write_all_at(&bytes[..n], data + at)?;
                bytes = &bytes[n..];
                at = 0;
            } else {
                at -= len;
            }
            block_start = data + len;
        }
        Ok(())
    }
}

fn read_at(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}
