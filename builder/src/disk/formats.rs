//! The formats a disk is delivered in, each made from the raw image: raw
//! as it is or compressed (zstd, gzip), qcow2 and streamOptimized VMDK by
//! `qemu-img convert`. qemu-img writes a random content ID (`CID=`) into a
//! VMDK's descriptor; it is replaced by one derived from the raw image's
//! digest (same length, so nothing moves) to keep VMDKs reproducible.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use crate::error::{fail, Category};
use crate::host_tools;
use crate::io::{HashingWriter, Sha256Digest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "raw.zst")]
    RawZst,
    #[serde(rename = "raw.gz")]
    RawGz,
    #[serde(rename = "qcow2")]
    Qcow2,
    #[serde(rename = "vmdk")]
    Vmdk,
    #[serde(rename = "ova")]
    Ova,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Raw,
        Format::RawZst,
        Format::RawGz,
        Format::Qcow2,
        Format::Vmdk,
        Format::Ova,
    ];

    /// The file name extension, also the name in definitions and `--format`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::RawZst => "raw.zst",
            Format::RawGz => "raw.gz",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Ova => "ova",
        }
    }

    /// The manifest's `kind` of the output.
    pub fn kind(self) -> &'static str {
        match self {
            Format::Raw | Format::RawZst | Format::RawGz => "disk-raw",
            Format::Qcow2 => "disk-qcow2",
            Format::Vmdk => "disk-vmdk",
            Format::Ova => "ova",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == text)
    }

    /// Whether making it runs qemu-img.
    pub fn needs_qemu_img(self) -> bool {
        matches!(self, Format::Qcow2 | Format::Vmdk | Format::Ova)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// The firmware an OVA's virtual machine boots with (the disk boots under both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    #[default]
    Efi,
    Bios,
}

/// A size in bytes, written as a number or with a K/M/G/T suffix (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u64")]
pub struct ByteSize(pub u64);

impl From<ByteSize> for u64 {
    fn from(s: ByteSize) -> u64 {
        s.0
    }
}

impl ByteSize {
    pub fn parse(text: &str) -> Option<ByteSize> {
        let t = text.trim();
        let t = t
            .strip_suffix("iB")
            .or_else(|| t.strip_suffix('B'))
            .unwrap_or(t);
        let (digits, shift) = match t.chars().last()? {
            'K' | 'k' => (&t[..t.len() - 1], 10),
            'M' | 'm' => (&t[..t.len() - 1], 20),
            'G' | 'g' => (&t[..t.len() - 1], 30),
            'T' | 't' => (&t[..t.len() - 1], 40),
            _ => (t, 0),
        };
        let n: u64 = digits.trim().parse().ok()?;
        n.checked_mul(1u64 << shift).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(ByteSize(n)),
            Either::Text(t) => ByteSize::parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a size: give bytes or a number with K, M, G or T (e.g. 8G)"
                ))
            }),
        }
    }
}

/// Streams `raw` into `out` compressed (zstd level 3, or
/// gzip level 6 with a fixed header), returning the digest of what was written.
pub fn compress(raw: &Path, format: Format, out: &mut File) -> anyhow::Result<Sha256Digest> {
    let ctx = || format!("compressing {}", raw.display());
    let mut src = File::open(raw).with_context(ctx)?;
    let sink = HashingWriter::new(io::BufWriter::new(out));
    let sink = match format {
        Format::RawZst => {
            let mut enc = zstd::Encoder::new(sink, 3).with_context(ctx)?;
            io::copy(&mut src, &mut enc).with_context(ctx)?;
            enc.finish().with_context(ctx)?
        }
        Format::RawGz => {
            // No name and mtime 0 in the header: the same bytes every time.
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(sink, flate2::Compression::new(6));
            io::copy(&mut src, &mut enc).with_context(ctx)?;
            enc.finish().with_context(ctx)?
        }
        _ => unreachable!("only raw.zst and raw.gz are compressed here"),
    };
    let (digest, _, mut w) = sink.finish();
    w.flush().with_context(ctx)?;
    Ok(digest)
}

/// `qemu-img convert` of the raw image into `format` (qcow2 or VMDK) at `out`.
pub fn convert(sh: &Shell, raw: &Path, format: Format, out: &Path) -> anyhow::Result<()> {
    match format {
        Format::Qcow2 => {
            host_tools::run(cmd!(sh, "qemu-img convert -q -f raw -O qcow2 {raw} {out}"))
        }
        Format::Vmdk => host_tools::run(cmd!(
            sh,
            "qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized {raw} {out}"
        )),
        _ => unreachable!("only qcow2 and VMDK are converted"),
    }
}

/// Replaces the VMDK descriptor's random `CID=` (qemu-img prints it
/// without leading zeros, so its length varies too) with `cid` in eight hex
/// digits, writing the descriptor's whole region again: its text, then zeros.
pub fn fix_vmdk_cid(vmdk: &Path, cid: u32) -> anyhow::Result<()> {
    let ctx = || format!("patching {}", vmdk.display());
    let bad = |why: &str| {
        fail(
            Category::Build,
            format!(
                "{}: qemu-img wrote a VMDK this cannot patch: {why}",
                vmdk.display()
            ),
        )
    };
    let mut f = File::options()
        .read(true)
        .write(true)
        .open(vmdk)
        .with_context(ctx)?;
    let mut header = [0u8; 44];
    f.read_exact(&mut header).with_context(ctx)?;
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let (offset, sectors) = (u64_at(28) * 512, u64_at(36));
    if &header[..4] != b"KDMV" || sectors == 0 || sectors > 2048 {
        return Err(bad("no embedded descriptor"));
    }
    let mut region = vec![0u8; (sectors * 512) as usize];
    f.seek(SeekFrom::Start(offset)).with_context(ctx)?;
    f.read_exact(&mut region).with_context(ctx)?;
    let end = memchr::memchr(0, &region).unwrap_or(region.len());
    let text =
        std::str::from_utf8(&region[..end]).map_err(|_| bad("a descriptor that is not text"))?;
    if !text.lines().any(|l| l.starts_with("CID=")) {
        return Err(bad("no `CID=` line in the descriptor"));
    }
    let fixed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("CID=") {
                format!("CID={cid:08x}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    if fixed.len() > region.len() {
        return Err(bad("the descriptor outgrows its region"));
    }
    region.fill(0);
    region[..fixed.len()].copy_from_slice(fixed.as_bytes());
    f.seek(SeekFrom::Start(offset)).with_context(ctx)?;
    f.write_all(&region).with_context(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_formats_parse() {
        assert_eq!(ByteSize::parse("8G"), Some(ByteSize(8 << 30)));
        assert_eq!(ByteSize::parse("512MiB"), Some(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("4096"), Some(ByteSize(4096)));
        assert_eq!(ByteSize::parse("lots"), None);
        assert_eq!(Format::parse("raw.zst"), Some(Format::RawZst));
        assert_eq!(Format::parse("iso"), None);
    }

    #[test]
    fn vmdk_content_ids_of_any_length_become_the_same_eight_digits() {
        let t = tempfile::tempdir().unwrap();
        let mut written = Vec::new();
        for random in ["abc", "1140e64f"] {
            let mut img = vec![0u8; 3 * 512];
            img[..4].copy_from_slice(b"KDMV");
            img[28..36].copy_from_slice(&1u64.to_le_bytes());
            img[36..44].copy_from_slice(&1u64.to_le_bytes());
            let text =
                format!("# Disk DescriptorFile\nversion=1\nCID={random}\nparentCID=ffffffff\n");
            img[512..512 + text.len()].copy_from_slice(text.as_bytes());
            img[1024..].fill(0xee);
            let p = t.path().join(format!("{random}.vmdk"));
            std::fs::write(&p, &img).unwrap();
            fix_vmdk_cid(&p, 0x0012abcd).unwrap();
            written.push(std::fs::read(&p).unwrap());
        }
        assert_eq!(written[0], written[1]);
        let text = String::from_utf8_lossy(&written[0][512..1024]);
        assert!(
            text.starts_with(
                "# Disk DescriptorFile\nversion=1\nCID=0012abcd\nparentCID=ffffffff\n\0"
            ),
            "{text}"
        );
        assert!(
            written[0][1024..].iter().all(|b| *b == 0xee),
            "nothing after the region changes"
        );
    }

    #[test]
    fn compressed_raw_images_decompress_to_the_raw_image_and_repeat() {
        let t = tempfile::tempdir().unwrap();
        let raw = t.path().join("disk.raw");
        let mut bytes = vec![0u8; 3 << 20];
        for (i, b) in bytes.iter_mut().enumerate().step_by(7) {
            *b = (i % 251) as u8;
        }
        std::fs::write(&raw, &bytes).unwrap();
        for format in [Format::RawZst, Format::RawGz] {
            let mut outs = Vec::new();
            for n in 0..2 {
                let p = t.path().join(format!("{n}.{format}"));
                let sha = compress(&raw, format, &mut File::create(&p).unwrap()).unwrap();
                let written = std::fs::read(&p).unwrap();
                assert_eq!(sha, Sha256Digest::of(&written));
                outs.push(written);
            }
            assert_eq!(outs[0], outs[1], "{format} is reproducible");
            let mut back = Vec::new();
            match format {
                Format::RawZst => zstd::Decoder::new(&outs[0][..])
                    .unwrap()
                    .read_to_end(&mut back),
                _ => flate2::read::GzDecoder::new(&outs[0][..]).read_to_end(&mut back),
            }
            .unwrap();
            assert!(back == bytes, "{format} holds the raw image");
        }
    }
}
