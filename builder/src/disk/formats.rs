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

/// Replaces the VMDK descriptor's random `CID=xxxxxxxx` with `cid`.
pub fn fix_vmdk_cid(vmdk: &Path, cid: u32) -> anyhow::Result<()> {
    let ctx = || format!("patching {}", vmdk.display());
    let mut f = File::options()
        .read(true)
        .write(true)
        .open(vmdk)
        .with_context(ctx)?;
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head).with_context(ctx)?;
    let at = memchr::memmem::find(&head[..n], b"\nCID=").ok_or_else(|| {
        fail(
            Category::Build,
            format!(
                "{}: qemu-img wrote no `CID=` line in the VMDK descriptor",
                vmdk.display()
            ),
        )
    })?;
    f.seek(SeekFrom::Start((at + 5) as u64)).with_context(ctx)?;
    f.write_all(format!("{cid:08x}").as_bytes())
        .with_context(ctx)
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
