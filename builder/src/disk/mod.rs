//! The appliance disk stage: a Kairos-style GPT disk from the provider
//! image's root filesystem (the ISO stage's `rootfs::Prepare`, so the same
//! cached squashfs, kernel, initrd and loaders) and the user-data, in the
//! layout AuroraBoot gives raw images:
//!
//! 1. `bios` (BIOS boot partition): GRUB's core.img; sector 0 carries
//!    GRUB's boot.img, patched to load it (bios.rs);
//! 2. `efi` (EFI system partition, FAT, label COS_GRUB): shim and the signed
//!    GRUB from the image when it carries them, else GRUB built from the
//!    host's packages; a stub grub.cfg that finds COS_RECOVERY;
//! 3. `oem` (ext4, COS_OEM): `90_custom.yaml`, the user-data in a reserved
//!    area of fixed size (`iso/reserved.rs`'s format) so `disk embed` patches
//!    it in place, and the `grubenv` that selects recovery on first boot;
//! 4. `recovery` (ext4, COS_RECOVERY): `cOS/recovery.squashfs`, the kernel
//!    and initrd in `boot/`, GRUB's menu in `grub2/` (grub.rs).
//!
//! Everything is made without root or loop devices (mke2fs -d, mtools, a
//! GPT writer in Rust) and byte-reproducibly; the raw image is then
//! converted into the formats the definition asks for (formats.rs, ova.rs).

pub mod bios;
pub mod embed;
mod ext4;
pub mod formats;
pub mod gpt;
pub mod grub;
mod image;
pub mod ova;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::definition::{BootMode, LoadedDefinition, Variant};
use crate::error::{fail, Category};
use crate::host_tools;
use crate::io::{file_sha256, AtomicFile, HashingWriter, Sha256Digest};
use crate::iso::{self, efi, reserved, rootfs, RootfsSource};
use crate::log::info;
use crate::output_set::OutputSet;
use crate::provider::BuildSettings;
use crate::user_data::UserData;

pub use formats::{ByteSize, Firmware, Format};

const MIB: u64 = 1 << 20;
/// Where the first partition starts (1 MiB, the usual alignment).
const FIRST_LBA: u64 = 2048;
const BIOS_BOOT_SIZE: u64 = MIB;
/// COS_OEM's size, as Kairos makes it.
const OEM_SIZE: u64 = 64 * MIB;
/// The user-data's file on COS_OEM, where Kairos reads it.
pub const OEM_FILE: &str = "90_custom.yaml";
/// The GPT partition names, as Kairos's layout has them.
pub const OEM_PARTITION: &str = "oem";

pub struct DiskArtifact {
    pub path: PathBuf,
    pub format: Format,
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// The file stem of `variant`'s disk images: `disk.name`, with the tag when
/// the definition builds several variants.
pub fn stem(l: &LoadedDefinition, variant: &Variant) -> String {
    if l.variants().len() > 1 {
        format!("{}-{}", l.def.disk.name, variant.tag)
    } else {
        l.def.disk.name.clone()
    }
}

/// What a disk build refuses, checked before the minutes a provider image
/// or root file system takes: another arch than amd64, `boot: uki`,
/// user-data larger than COS_OEM's area, and OVA member names too long for
/// a ustar header.
pub fn check_inputs(
    l: &LoadedDefinition,
    user_data: Option<&UserData>,
    formats: &[Format],
) -> anyhow::Result<()> {
    if l.def.arch.as_str() != "amd64" {
        return Err(l.field_error(
            "arch",
            "appliance disks are built for amd64 only (BIOS + UEFI x86_64 GRUB)",
        ));
    }
    // A UKI definition asks for its own keys' signatures on everything that
    // boots; the disk's GRUB would quietly drop that.
    if l.def.boot == BootMode::Uki {
        return Err(l.field_error(
            "boot",
            "appliance disks boot GRUB (BIOS + UEFI, the image's shim and signed GRUB), not UKIs: leave disk.formats empty for a `boot: uki` definition, or build the disk with `--set boot=grub`",
        ));
    }
    if let Some(u) = user_data {
        oem_area(u.bytes())?;
    }
    if formats.contains(&Format::Ova) {
        for v in l.variants() {
            let member = format!("{}.vmdk", stem(l, &v));
            if member.len() > ova::MAX_NAME {
                return Err(l.field_error(
                    "disk.name",
                    format!("the OVA's member {member} is longer than the {} bytes a ustar header names (a longer name would need an extension header before the OVF, which VMware and VirtualBox require first): shorten disk.name", ova::MAX_NAME),
                ));
            }
        }
    }
    Ok(())
}

/// Writes `variant`'s disk in `formats` and stages them in `set`. Without
/// user-data the OEM area holds the empty document (a golden disk for `disk embed`).
pub fn build(
    l: &LoadedDefinition,
    variant: &Variant,
    source: &RootfsSource,
    user_data: Option<&UserData>,
    formats: &[Format],
    s: &BuildSettings,
    set: &mut OutputSet,
) -> anyhow::Result<Vec<DiskArtifact>> {
    check_inputs(l, user_data, formats)?;
    host_tools::require(&host_tools::BUILD)?;
    host_tools::require(&host_tools::DISK)?;
    if formats.iter().any(|f| f.needs_qemu_img()) {
        host_tools::require(&[&host_tools::QEMU_IMG])?;
    }
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix(".edgeforge-work-")
        .tempdir_in(&s.out_dir)
        .with_context(|| format!("creating a work folder in {}", s.out_dir.display()))?;
    let work = work.path();
    let sh = host_tools::shell()?;
    let parts = rootfs::Prepare {
        sh: &sh,
        distribution: &l.def.os.distribution,
        arch: l.def.arch.as_str(),
        // The disk boots its GRUB and dracut's live mode: always a squashfs.
        image: rootfs::RootImage::Squashfs(l.def.iso.compression),
        epoch: s.epoch,
        cache: s.cache.as_deref(),
        work,
    }
    .run(source)?;
    let (squashfs_sha, _) =
        file_sha256(&parts.root).with_context(|| format!("reading {}", parts.root.display()))?;
    // Every GUID and file system UUID comes from this: the OS image and the epoch.
    let seed = format!("{}\0{}\0{squashfs_sha}", variant.reference, s.epoch);

    // GRUB: the configs, the ESP, core.img.
    let menu = iso::menu::Menu::new(&l.def.iso).map_err(|e| l.field_error(&e.field, e.message))?;
    let title = title(l, variant);
    let early = work.join("grub-early.cfg");
    let stub = work.join("grub-stub.cfg");
    fs::write(&early, grub::early())?;
    fs::write(&stub, grub::stub())?;
    let loaders = efi::loaders(&sh, parts.signed.clone(), &early, work)?;
    info!("EFI loader: {}", loaders.describe());
    let esp = work.join("esp.img");
    efi::fat_image(&sh, &loaders, &stub, &esp, grub::ESP_LABEL, s.epoch)?;
    let core = bios::core_img(&sh, &early, &work.join("core.img"))?;
    let placed_core = work.join("core.placed");
    fs::write(
        &placed_core,
        bios::place_core(&core, FIRST_LBA, BIOS_BOOT_SIZE)?,
    )?;

    // COS_OEM: the user-data's reserved area and grubenv.
    let oem_dir = work.join("oem");
    fs::create_dir(&oem_dir)?;
    let area = oem_area(user_data.map_or(reserved::EMPTY, |u| u.bytes()))?;
    iso::write_private(&oem_dir.join(OEM_FILE), &area)?;
    fs::write(oem_dir.join("grubenv"), grub::grubenv())?;
    let oem = work.join("oem.img");
    let private = format!("/{OEM_FILE}");
    ext4::make(
        &sh,
        &oem_dir,
        &oem,
        &ext4::Ext4 {
            label: grub::OEM_LABEL,
            uuid: gpt::guid_text(&gpt::derived_guid(&seed, "fs oem")),
            size: OEM_SIZE,
            epoch: s.epoch,
            private: &[&private],
        },
    )?;
    check_area(&sh, &oem, &area)?;

    // COS_RECOVERY: the OS image, kernel, initrd and GRUB's menu.
    let rec_dir = work.join("recovery");
    for d in [grub::SQUASHFS_DIR, "boot", "grub2/fonts"] {
        fs::create_dir_all(rec_dir.join(d))?;
    }
    iso::link_or_copy(
        &parts.root,
        &rec_dir.join(grub::SQUASHFS_DIR).join(grub::SQUASHFS),
    )?;
    iso::link_or_copy(&parts.kernel, &rec_dir.join("boot/kernel"))?;
    iso::link_or_copy(&parts.initrd, &rec_dir.join("boot/initrd"))?;
    if let Some(font) = &parts.font {
        iso::link_or_copy(font, &rec_dir.join("grub2/fonts/unicode.pf2"))?;
    }
    fs::write(rec_dir.join("grub2/grub.cfg"), grub::menu(&menu, &title))?;
    let content = tree_size(&rec_dir)?;
    // ext4's inode tables, journal and block rounding, with room to spare.
    let rec_size = align(content + content / 20 + 40 * MIB, MIB);
    let recovery = work.join("recovery.img");
    ext4::make(
        &sh,
        &rec_dir,
        &recovery,
        &ext4::Ext4 {
            label: grub::RECOVERY_LABEL,
            uuid: gpt::guid_text(&gpt::derived_guid(&seed, "fs recovery")),
            size: rec_size,
            epoch: s.epoch,
            private: &[],
        },
    )?;

    // The partition table.
    let esp_size = align(fs::metadata(&esp)?.len(), MIB);
    let mut lba = FIRST_LBA;
    let mut layout = Vec::new();
    for (name, type_guid, size, content) in [
        ("bios", gpt::BIOS_BOOT, BIOS_BOOT_SIZE, placed_core),
        ("efi", gpt::EFI_SYSTEM, esp_size, esp),
        (OEM_PARTITION, gpt::LINUX_DATA, OEM_SIZE, oem),
        ("recovery", gpt::LINUX_DATA, rec_size, recovery),
    ] {
        let sectors = size / gpt::SECTOR;
        layout.push(image::Part {
            gpt: gpt::Partition {
                name: name.into(),
                type_guid,
                first_lba: lba,
                sectors,
            },
            content,
        });
        lba += sectors;
    }
    let needed = align(lba * gpt::SECTOR + gpt::TAIL_SECTORS * gpt::SECTOR, MIB);
    let total = match l.def.disk.size {
        None => needed,
        Some(ByteSize(asked)) if asked >= needed => align(asked, gpt::SECTOR),
        Some(ByteSize(asked)) => {
            return Err(l.field_error(
                "disk.size",
                format!("{asked} bytes is less than the {needed} bytes ({} MiB) the disk's content needs; give at least {}M or leave disk.size out", needed / MIB, needed / MIB),
            ))
        }
    };
    let total_sectors = total / gpt::SECTOR;
    let gpt_parts: Vec<gpt::Partition> = layout.iter().map(|p| p.gpt.clone()).collect();
    let table = gpt::table(total_sectors, &gpt_parts, &seed);
    let sector0 = bios::mbr(
        &bios::boot_img()?,
        &gpt::protective_mbr(total_sectors, &seed),
        FIRST_LBA,
    );

    // The raw image, then every format from it.
    let name = stem(l, variant);
    let mode = if user_data.is_some() { 0o600 } else { 0o644 };
    let target = |f: Format| s.out_dir.join(format!("{name}.{}", f.extension()));
    let mut out = Vec::new();
    // Staged when asked for, else only the source of the other formats.
    let (raw, raw_sha) = if formats.contains(&Format::Raw) {
        let mut file = AtomicFile::create(&target(Format::Raw), mode)?;
        let sha = image::write(file.file(), total_sectors, &sector0, &table, &layout)?;
        out.push(artifact(&target(Format::Raw), Format::Raw, sha, total));
        (set.stage(file, sha), sha)
    } else {
        let at = work.join(format!("{name}.raw"));
        let mut file =
            fs::File::create(&at).with_context(|| format!("creating {}", at.display()))?;
        (
            at,
            image::write(&mut file, total_sectors, &sector0, &table, &layout)?,
        )
    };
    info!(
        "disk {name}: {} MiB (bios, efi {} MiB, oem {} MiB, recovery {} MiB), built in {:.1}s",
        total / MIB,
        esp_size / MIB,
        OEM_SIZE / MIB,
        rec_size / MIB,
        started.elapsed().as_secs_f64()
    );
    let cid = u32::from_be_bytes(raw_sha.0[..4].try_into().expect("4 bytes"));
    let mut vmdk: Option<PathBuf> = None;
    for &f in formats {
        let t = Instant::now();
        let mut file = AtomicFile::create(&target(f), mode)?;
        let sha = match f {
            Format::Raw => continue,
            Format::RawZst | Format::RawGz => formats::compress(&raw, f, file.file())?,
            Format::Qcow2 => {
                formats::convert(&sh, &raw, f, file.temp_path())?;
                file_sha256(file.temp_path())?.0
            }
            Format::Vmdk | Format::Ova => {
                let v = match &vmdk {
                    Some(v) => v.clone(),
                    None => {
                        let v = make_vmdk(&sh, &raw, &work.join("vmdk"), &name, cid)?;
                        vmdk = Some(v.clone());
                        v
                    }
                };
                if f == Format::Vmdk {
                    copy_hashed(&v, file.file())?
                } else {
                    let a = appliance(l, variant, &name, total);
                    ova::write(file.file(), &a, &v, s.epoch)?
                }
            }
        };
        let size = file.file().metadata()?.len();
        set.stage(file, sha);
        info!(
            "disk {name}.{}: {size} bytes in {:.1}s",
            f.extension(),
            t.elapsed().as_secs_f64()
        );
        out.push(artifact(&target(f), f, sha, size));
    }
    Ok(out)
}

fn artifact(path: &Path, format: Format, sha256: Sha256Digest, size: u64) -> DiskArtifact {
    DiskArtifact {
        path: path.to_path_buf(),
        format,
        sha256,
        size,
    }
}

/// COS_OEM's `90_custom.yaml` holding `user_data`. The area has one size
/// for every disk (`iso.reserved_area` is the ISO's): any golden disk takes
/// any site's user-data that fits, and `disk embed` finds it without a definition.
pub fn oem_area(user_data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let most = reserved::capacity(reserved::SIZE);
    if user_data.len() > most {
        return Err(fail(
            Category::InvalidInput,
            format!(
                "the user-data is {} bytes; an appliance disk's user-data area on COS_OEM is fixed at {} KiB and holds at most {most} bytes: shorten it (iso.reserved_area sizes the ISO's area, not the disk's)",
                user_data.len(),
                reserved::SIZE / 1024,
            ),
        ));
    }
    reserved::fill(user_data, reserved::SIZE)
}

/// The appliance's name in menus and the OVF.
fn title(l: &LoadedDefinition, variant: &Variant) -> String {
    format!(
        "Palette Edge {} {} {} {}",
        l.def.os.distribution,
        l.def.os.version,
        variant.kubernetes_distribution.as_str(),
        variant.kubernetes_version
    )
}

/// The OVF's description of `variant`'s appliance.
pub fn appliance<'a>(
    l: &'a LoadedDefinition,
    variant: &'a Variant,
    name: &'a str,
    capacity: u64,
) -> ova::Appliance<'a> {
    ova::Appliance {
        name,
        product: title(l, variant),
        version: &variant.tag,
        full_version: &variant.reference,
        cpus: l.def.disk.cpus,
        memory_mib: l.def.disk.memory_mib,
        firmware: l.def.disk.firmware,
        capacity,
    }
}

/// The streamOptimized VMDK of `raw` at `dir/<name>.vmdk` (its descriptor
/// names the file, so it is made under its final name), its CID set to `cid`.
pub fn make_vmdk(
    sh: &xshell::Shell,
    raw: &Path,
    dir: &Path,
    name: &str,
    cid: u32,
) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let v = dir.join(format!("{name}.vmdk"));
    formats::convert(sh, raw, Format::Vmdk, &v)?;
    formats::fix_vmdk_cid(&v, cid)?;
    Ok(v)
}

/// Copies `from` into `to`, returning the digest of the bytes.
pub fn copy_hashed(from: &Path, to: &mut fs::File) -> anyhow::Result<Sha256Digest> {
    let ctx = || format!("copying {}", from.display());
    let mut w = HashingWriter::new(to);
    std::io::copy(&mut fs::File::open(from).with_context(ctx)?, &mut w).with_context(ctx)?;
    Ok(w.finish().0)
}

/// The OEM file system holds the reserved area as one run of blocks, so a
/// golden disk can be patched in place: checked on every build.
fn check_area(sh: &xshell::Shell, oem: &Path, area: &[u8]) -> anyhow::Result<()> {
    let at = ext4::contiguous_offset(sh, oem, &format!("/{OEM_FILE}"))?;
    let found = match at {
        Some(at) => {
            let bytes = fs::read(oem)?;
            bytes.get(at as usize..at as usize + area.len()) == Some(area)
        }
        None => false,
    };
    if !found {
        return Err(fail(
            Category::Build,
            format!("mke2fs did not store COS_OEM's {OEM_FILE} as one run of blocks; the disk could not take per-site user-data in place"),
        ));
    }
    Ok(())
}

fn align(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

fn tree_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for e in walkdir::WalkDir::new(dir) {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        total += align(e.metadata()?.len(), 4096);
    }
    Ok(total)
}
