//! A Unified Kernel Image: systemd's EFI stub with `.osrel`, `.cmdline`,
//! `.linux` and `.initrd` sections added by objcopy (ukify is not packaged
//! for bookworm), each placed after the stub's last section (and the one
//! before it) on a page boundary, or on the stub's SectionAlignment when
//! that is larger, as ukify places them: the loader maps sections at their
//! VMAs, so they must not overlap and must honour the stub's alignment
//! (Debian's 252 stub declares 0x200, which ukify of that era rounded up to
//! pages too). objcopy stamps the
//! PE header with the current time: the timestamp is set to the epoch and
//! the PE checksum recomputed, so the same inputs give the same bytes.

use std::fs;
use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::error::{fail, Category};
use crate::host_tools;

/// The least alignment of an added section (ukify's for objcopy).
const PAGE: u64 = 0x1000;

pub struct Parts<'a> {
    pub stub: &'a Path,
    pub os_release: &'a Path,
    /// The kernel command line, signed with the image.
    pub cmdline: &'a str,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
}

/// Writes the (unsigned) UKI of `parts` to `out`; `work` holds the cmdline file.
pub fn assemble(
    sh: &Shell,
    parts: &Parts,
    work: &Path,
    out: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    let stub = fs::read(parts.stub).with_context(|| format!("reading {}", parts.stub.display()))?;
    let layout = Layout::of(&stub).ok_or_else(|| {
        fail(
            Category::InvalidInput,
            format!("{} is not a PE32+ EFI stub", parts.stub.display()),
        )
    })?;
    let mut next = layout.end;
    let cmdline = work.join("cmdline");
    fs::write(&cmdline, format!("{}\0", parts.cmdline))?;
    let mut args: Vec<String> = Vec::new();
    for (name, file) in [
        (".osrel", parts.os_release),
        (".cmdline", cmdline.as_path()),
        (".linux", parts.kernel),
        (".initrd", parts.initrd),
    ] {
        let size = fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        args.push("--add-section".into());
        args.push(format!("{name}={}", file.display()));
        args.push("--change-section-vma".into());
        args.push(format!("{name}={next:#x}"));
        next = align(next + size, layout.alignment);
    }
    let stub_path = parts.stub;
    host_tools::run(cmd!(sh, "objcopy {args...} {stub_path} {out}"))?;
    let mut image = fs::read(out)?;
    set_timestamp(&mut image, epoch as u32).ok_or_else(|| {
        fail(
            Category::Build,
            format!("objcopy wrote no PE image to {}", out.display()),
        )
    })?;
    fs::write(out, image).with_context(|| format!("writing {}", out.display()))
}

fn align(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// Offsets of the COFF header and the optional header (PE32+ only).
fn headers(b: &[u8]) -> Option<(usize, usize)> {
    let pe = u32_at(b, 0x3c)? as usize;
    (b.get(pe..pe + 4)? == b"PE\0\0").then_some(())?;
    let coff = pe + 4;
    let opt = coff + 20;
    (u16_at(b, opt)? == 0x20b).then_some((coff, opt))
}

/// Where sections added to a PE image go, from its optional header.
struct Layout {
    /// SectionAlignment, at least a page: added sections' VMAs are multiples of it.
    alignment: u64,
    /// The first aligned address after every section of the image (image
    /// base included, as objcopy's VMAs are).
    end: u64,
}

impl Layout {
    fn of(b: &[u8]) -> Option<Layout> {
        let (coff, opt) = headers(b)?;
        let sections = u16_at(b, coff + 2)? as usize;
        let opt_size = u16_at(b, coff + 16)? as usize;
        let base = u64::from_le_bytes(b.get(opt + 24..opt + 32)?.try_into().ok()?);
        let declared = u64::from(u32_at(b, opt + 32)?);
        if !declared.is_power_of_two() {
            return None;
        }
        let alignment = declared.max(PAGE);
        let table = opt + opt_size;
        let mut end = 0u64;
        for i in 0..sections {
            let s = table + i * 40;
            // A section whose VirtualSize is 0 still maps its raw data.
            let size = u32_at(b, s + 8)?.max(u32_at(b, s + 16)?) as u64;
            let va = u32_at(b, s + 12)? as u64;
            end = end.max(va + size);
        }
        Some(Layout {
            alignment,
            end: align(base + end, alignment),
        })
    }
}

/// Sets the COFF timestamp and recomputes the optional header's checksum.
fn set_timestamp(b: &mut [u8], stamp: u32) -> Option<()> {
    let (coff, opt) = headers(b)?;
    b[coff + 4..coff + 8].copy_from_slice(&stamp.to_le_bytes());
    let at = opt + 64;
    b[at..at + 4].fill(0);
    let sum = pe_checksum(b, at);
    b[at..at + 4].copy_from_slice(&sum.to_le_bytes());
    Some(())
}

/// The PE checksum: 16-bit one's-complement-style sum of the file (the
/// checksum field at `skip` counted as zero), plus the file length.
fn pe_checksum(b: &[u8], skip: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in b.chunks(2).enumerate() {
        if i * 2 >= skip && i * 2 < skip + 4 {
            continue;
        }
        let w = chunk[0] as u64 | (chunk.get(1).copied().unwrap_or(0) as u64) << 8;
        sum += w;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(b.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_folds_words_and_adds_the_length() {
        // Two words 0xffff + 0x0002 fold to 0x0002; the skipped field counts zero.
        let b = [0xff, 0xff, 0x02, 0x00, 0xaa, 0xbb, 0xcc, 0xdd];
        assert_eq!(pe_checksum(&b, 4), 0x0002 + 8);
    }

    /// A PE32+ image with one section at 0x3000 (size 0x1234) and the
    /// given SectionAlignment.
    fn image(alignment: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        let (coff, opt) = (0x84, 0x98);
        b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        b[opt + 24..opt + 32].copy_from_slice(&0x1_0000_0000u64.to_le_bytes());
        b[opt + 32..opt + 36].copy_from_slice(&alignment.to_le_bytes());
        let s = opt + 240;
        b[s + 8..s + 12].copy_from_slice(&0x1234u32.to_le_bytes());
        b[s + 12..s + 16].copy_from_slice(&0x3000u32.to_le_bytes());
        b
    }

    #[test]
    fn added_sections_follow_the_stubs_alignment() {
        let page = Layout::of(&image(0x1000)).unwrap();
        assert_eq!((page.alignment, page.end), (0x1000, 0x1_0000_5000));
        let small = Layout::of(&image(0x200)).unwrap();
        assert_eq!((small.alignment, small.end), (0x1000, 0x1_0000_5000));
        let big = Layout::of(&image(0x10000)).unwrap();
        assert_eq!((big.alignment, big.end), (0x10000, 0x1_0001_0000));
        assert!(Layout::of(&image(0x1001)).is_none(), "not a power of two");
    }

    #[test]
    fn the_host_stub_ends_below_the_first_added_section() {
        let stub = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
        let Ok(b) = fs::read(stub) else { return };
        let layout = Layout::of(&b).unwrap();
        assert_eq!(layout.end % layout.alignment, 0);
        assert!(layout.end > 0x4000, "{:#x}", layout.end);
    }
}
