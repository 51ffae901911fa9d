//! Per-site disks from a golden one (`disk embed`), the way `iso embed`
//! makes per-site ISOs: the OEM partition's `90_custom.yaml` is a reserved
//! area of fixed size in one run of blocks, so a site's user-data replaces
//! it in place and nothing else changes. A raw golden disk is copied and
//! patched with the digest computed in the same pass (iso/embed.rs); a
//! compressed raw, qcow2, VMDK or OVA is unpacked to raw, patched, and
//! converted back, giving the same bytes a build with that user-data gives.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{formats, gpt, make_vmdk, Format, OEM_PARTITION};
use crate::error::{fail, Category};
use crate::host_tools;
use crate::io::{file_sha256, AtomicFile, Sha256Digest};
use crate::iso::embed::Golden;
use crate::iso::reader::Extent;
use crate::iso::reserved;

/// The largest OEM partition read (edgeforge makes them 64 MiB).
const MAX_OEM: u64 = 1 << 30;

/// What a golden disk file is, from its first bytes.
pub fn detect(path: &Path) -> anyhow::Result<Format> {
    let mut head = [0u8; 512];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    let head = &head[..n];
    Ok(if head.starts_with(b"QFI\xfb") {
        Format::Qcow2
    } else if head.starts_with(b"KDMV") {
        Format::Vmdk
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::RawZst
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Format::RawGz
    } else if head.len() == 512 && &head[257..262] == b"ustar" {
        Format::Ova
    } else {
        Format::Raw
    })
}

/// The reserved area in a raw disk: COS_OEM's partition is found in the GPT,
/// the area by its marker line within it (ext4 puts file data at a block
/// boundary, so the area starts at the 4 KiB boundary before its content).
pub fn find_area(raw: &Path) -> anyhow::Result<Extent> {
    let not_golden = |why: &str| {
        fail(
            Category::InvalidInput,
            format!(
                "{} is not an edgeforge appliance disk ({why}); build one with `edgeforge disk`",
                raw.display()
            ),
        )
    };
    let mut f = File::open(raw).with_context(|| format!("opening {}", raw.display()))?;
    let mut head = vec![0u8; (gpt::HEAD_SECTORS * gpt::SECTOR) as usize];
    f.read_exact(&mut head)
        .map_err(|_| not_golden("shorter than a partition table"))?;
    let part = gpt::find(&head, OEM_PARTITION)
        .map_err(|e| not_golden(&e.to_string()))?
        .ok_or_else(|| not_golden("no partition named `oem`"))?;
    // Bounded before it is read into memory: a damaged or foreign table may
    // claim any size.
    let image_len = f.metadata()?.len();
    if part.len() > MAX_OEM || part.offset().saturating_add(part.len()) > image_len {
        return Err(not_golden(&format!(
            "its `oem` partition ({} bytes at byte {}) is not within the image's {image_len} bytes or is larger than {MAX_OEM}",
            part.len(),
            part.offset()
        )));
    }
    let mut oem = vec![0u8; part.len() as usize];
    f.seek(SeekFrom::Start(part.offset()))?;
    f.read_exact(&mut oem)
        .map_err(|_| not_golden("the image ends inside its OEM partition"))?;
    let marker = memchr::memmem::find(&oem, b"\n# edgeforge:reserved-area user-data-bytes=")
        .ok_or_else(|| not_golden("its OEM partition holds no reserved user-data area"))?
        + 1;
    let line_end = marker + memchr::memchr(b'\n', &oem[marker..]).unwrap_or(0);
    let len: usize = std::str::from_utf8(&oem[marker..line_end])
        .ok()
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("user-data-bytes="))
        })
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| not_golden("its reserved area's marker line is damaged"))?;
    let start = marker.saturating_sub(len) / 4096 * 4096;
    let end = start + reserved::SIZE;
    if end > oem.len() || reserved::user_data_len(&oem[start..end]) != Some(len) {
        return Err(not_golden("its reserved area is damaged"));
    }
    Ok(Extent {
        offset: part.offset() + start as u64,
        len: reserved::SIZE as u64,
    })
}

/// Writes `out`'s temporary file (in `golden`'s format): `golden` with
/// `user_data` in its OEM area, for the caller to commit with its checksums
/// (`output_set.rs`). Returns it and the new file's digest.
pub fn stage(
    golden: &Path,
    user_data: &[u8],
    out: &Path,
    mode: u32,
) -> anyhow::Result<(AtomicFile, Sha256Digest)> {
    // The same refusal, before a golden disk is unpacked, whatever its format.
    super::oem_area(user_data)?;
    let format = detect(golden)?;
    let name = output_stem(out, format)?;
    if format == Format::Raw {
        let area = find_area(golden)?;
        return Golden::at(golden, area).stage(user_data, out, mode);
    }
    host_tools::require(&[&host_tools::QEMU_IMG])?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::Builder::new()
        .prefix(".edgeforge-work-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a work folder in {}", dir.display()))?;
    let sh = host_tools::shell()?;
    let raw = work.path().join("disk.raw");
    // The golden OVA's members, to write back around the new VMDK.
    let mut ova_parts = None;
    match format {
        Format::RawZst | Format::RawGz => decompress(golden, format, &raw)?,
        Format::Qcow2 | Format::Vmdk => host_tools::run(xshell::cmd!(
            sh,
            "qemu-img convert -q -O raw {golden} {raw}"
        ))?,
        Format::Ova => {
            let parts = super::ova::read(golden, work.path())?;
            let vmdk = &parts.vmdk;
            host_tools::run(xshell::cmd!(
                sh,
                "qemu-img convert -q -f vmdk -O raw {vmdk} {raw}"
            ))?;
            ova_parts = Some(parts);
        }
        Format::Raw => unreachable!("handled above"),
    }
    let area = find_area(&raw)?;
    let bytes = super::oem_area(user_data)?;
    {
        let mut f = File::options().write(true).open(&raw)?;
        f.seek(SeekFrom::Start(area.offset))?;
        f.write_all(&bytes)
            .with_context(|| format!("writing {}", raw.display()))?;
    }
    let mut file = AtomicFile::create(out, mode)?;
    let sha = match format {
        Format::RawZst | Format::RawGz => formats::compress(&raw, format, file.file())?,
        Format::Qcow2 => {
            formats::convert(&sh, &raw, format, file.temp_path())?;
            file_sha256(file.temp_path())?.0
        }
        Format::Vmdk => {
            let v = make_vmdk(&sh, &raw, &work.path().join("vmdk"), &name, raw_cid(&raw)?)?;
            super::copy_hashed(&v, file.file())?
        }
        Format::Ova => {
            let parts = ova_parts.expect("read above");
            let stem = parts
                .vmdk_name
                .strip_suffix(".vmdk")
                .unwrap_or(&parts.vmdk_name)
                .to_string();
            let v = make_vmdk(&sh, &raw, &work.path().join("vmdk"), &stem, raw_cid(&raw)?)?;
            super::ova::rewrite(file.file(), &parts, &v)?
        }
        Format::Raw => unreachable!("handled above"),
    };
    Ok((file, sha))
}

/// The stem of `out`, which names `format` by its extension (a raw disk's
/// may be another, `.img`, but not another format's): the output keeps the
/// golden disk's format, and a name saying otherwise would mislead.
fn output_stem(out: &Path, format: Format) -> anyhow::Result<String> {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let named = Format::ALL
        .into_iter()
        .find(|f| name.ends_with(&format!(".{}", f.extension())));
    let stem = match named {
        Some(f) if f == format => name.strip_suffix(&format!(".{f}")),
        None if format == Format::Raw => name.rsplit_once('.').map(|(s, _)| s).or(Some(name)),
        _ => None,
    };
    stem.filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            fail(
                Category::Usage,
                format!(
                    "{}: the golden disk is {format}, so is the per-site one: name it *.{format}",
                    out.display()
                ),
            )
        })
}

/// The VMDK content ID a build gives this raw image (from its digest).
fn raw_cid(raw: &Path) -> anyhow::Result<u32> {
    let (sha, _) = file_sha256(raw).with_context(|| format!("reading {}", raw.display()))?;
    Ok(u32::from_be_bytes(sha.0[..4].try_into().expect("4 bytes")))
}

fn decompress(from: &Path, format: Format, to: &PathBuf) -> anyhow::Result<()> {
    let ctx = || format!("decompressing {}", from.display());
    let src = File::open(from).with_context(ctx)?;
    let mut out = File::create(to).with_context(ctx)?;
    match format {
        Format::RawZst => std::io::copy(&mut zstd::Decoder::new(src).with_context(ctx)?, &mut out)
            .with_context(ctx)?,
        _ => std::io::copy(&mut flate2::read::GzDecoder::new(src), &mut out).with_context(ctx)?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk of `sectors` whose GPT names an `oem` partition at 2048 of `oem_sectors`.
    fn disk(dir: &Path, sectors: u64, oem_sectors: u64) -> PathBuf {
        let parts = [gpt::Partition {
            name: OEM_PARTITION.into(),
            type_guid: gpt::LINUX_DATA,
            first_lba: 2048,
            sectors: oem_sectors,
        }];
        let t = gpt::table(sectors, &parts, "seed");
        let mut bytes = gpt::protective_mbr(sectors, "seed").to_vec();
        bytes.extend_from_slice(&t.head);
        let p = dir.join(format!("{oem_sectors}.raw"));
        let f = File::create(&p).unwrap();
        (&f).write_all(&bytes).unwrap();
        f.set_len(sectors * gpt::SECTOR).unwrap();
        p
    }

    #[test]
    fn a_per_site_disk_is_named_in_its_golden_disk_s_format() {
        let stem = |out: &str, f| output_stem(Path::new(out), f).ok();
        assert_eq!(
            stem("out/site.qcow2", Format::Qcow2).as_deref(),
            Some("site")
        );
        assert_eq!(
            stem("site.raw.zst", Format::RawZst).as_deref(),
            Some("site")
        );
        assert_eq!(stem("site.img", Format::Raw).as_deref(), Some("site"));
        assert_eq!(stem("site.raw", Format::Raw).as_deref(), Some("site"));
        assert_eq!(
            stem("site.qcow2", Format::Raw),
            None,
            "a raw disk named qcow2"
        );
        assert_eq!(stem("site.raw", Format::RawZst), None);
        assert_eq!(stem("site.raw.gz", Format::Raw), None);
        assert_eq!(stem(".vmdk", Format::Vmdk), None);
    }

    #[test]
    fn an_oem_partition_beyond_the_image_is_refused_not_read() {
        let t = tempfile::tempdir().unwrap();
        // Claims 1 TiB in a 4 MiB file: an error, not a 1 TiB allocation.
        let err = find_area(&disk(t.path(), 8192, 1 << 31)).unwrap_err();
        assert!(
            format!("{err:#}").contains("is not within the image"),
            "{err:#}"
        );
        let err = find_area(&disk(t.path(), 8192, 4096)).unwrap_err();
        assert!(
            format!("{err:#}").contains("holds no reserved user-data area"),
            "{err:#}"
        );
    }
}
