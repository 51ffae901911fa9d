//! The ESP of a UKI installer ISO: systemd-boot signed as
//! `EFI/BOOT/BOOTX64.EFI`, one signed Unified Kernel Image per boot entry in
//! `EFI/Linux/` (the default entry and debug: each carries the whole root
//! filesystem as its initrd, so the rest of the menu is left out), the key
//! set's `.auth` files under `loader/keys/auto/` (enrolled by systemd-boot
//! on firmware in setup mode, `secure-boot-enroll force`) and
//! `loader/keys/<name>/`, and `loader/loader.conf`.
//!
//! The UKI's command line is the entry's UEFI arguments (`iso/menu.rs`)
//! without those that find a live medium and squashfs, plus
//! `rdinit=/sbin/init`: the kernel runs the image's init from the unpacked
//! initrd. Everything the firmware loads is signed with the db key, and the
//! root filesystem and command line are inside the signed images.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

use super::efi;
use super::menu::{self, Menu};
use crate::host_tools;
use crate::log::info;
use crate::trusted_boot::keys::{KeySet, VARS};
use crate::trusted_boot::{sign, uki};

/// The argument that starts the image's init from the initrd.
pub const RDINIT: &str = "rdinit=/sbin/init";

pub struct Esp<'a> {
    pub sh: &'a Shell,
    pub keys: &'a KeySet,
    pub systemd_boot: &'a Path,
    pub stub: &'a Path,
    pub os_release: &'a Path,
    pub kernel: &'a Path,
    pub root: &'a Path,
    pub menu: &'a Menu,
    pub iso_name: &'a str,
    pub work: &'a Path,
    pub epoch: u64,
}

/// One UKI: its file name in `EFI/Linux/` and its command line.
pub struct UkiEntry {
    pub file: String,
    pub cmdline: String,
}

impl Esp<'_> {
    /// The entries that get a UKI: the menu's default, then debug.
    pub fn entries(&self) -> Vec<UkiEntry> {
        let mut ids = vec![self.menu.default];
        if self.menu.default != "debug" {
            ids.push("debug");
        }
        ids.iter()
            .filter_map(|id| self.menu.entries.iter().find(|e| e.id == *id))
            .map(|e| {
                let mut args: Vec<&str> = e
                    .efi
                    .iter()
                    .map(String::as_str)
                    .filter(|a| !menu::is_live_arg(a))
                    .collect();
                args.insert(0, RDINIT);
                UkiEntry {
                    file: format!("{}-{}.efi", self.iso_name, e.id),
                    cmdline: args.join(" "),
                }
            })
            .collect()
    }

    /// Writes the FAT image to `out`.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        let sh = self.sh;
        let boot = self.work.join("BOOTX64.EFI");
        sign::sign(sh, self.keys, self.systemd_boot, &boot, self.epoch)?;
        let mut ukis: Vec<(String, PathBuf)> = Vec::new();
        for (i, entry) in self.entries().into_iter().enumerate() {
            let dir = self.work.join(format!("uki-{i}"));
            fs::create_dir_all(&dir)?;
            let unsigned = dir.join("unsigned.efi");
            uki::assemble(
                sh,
                &uki::Parts {
                    stub: self.stub,
                    os_release: self.os_release,
                    cmdline: &entry.cmdline,
                    kernel: self.kernel,
                    initrd: self.root,
                },
                &dir,
                &unsigned,
                self.epoch,
            )?;
            let signed = dir.join(&entry.file);
            sign::sign(sh, self.keys, &unsigned, &signed, self.epoch)?;
            fs::remove_file(&unsigned)?;
            info!("UKI EFI/Linux/{}: {}", entry.file, entry.cmdline);
            ukis.push((entry.file, signed));
        }
        let conf = self.work.join("loader.conf");
        fs::write(&conf, self.loader_conf())?;

        let mut content = fs::metadata(&boot)?.len() + 64 * 1024;
        for (_, p) in &ukis {
            content += fs::metadata(p)?.len();
        }
        let name = &self.keys.meta.name;
        let auto = "::/loader/keys/auto".to_string();
        let named = format!("::/loader/keys/{name}");
        efi::format_fat(sh, out, content, "EFI_LIVE", self.epoch, || {
            host_tools::run(cmd!(
                sh,
                "mmd -i {out} ::/EFI ::/EFI/BOOT ::/EFI/Linux ::/loader ::/loader/keys {auto} {named}"
            ))?;
            host_tools::run(cmd!(sh, "mcopy -i {out} {boot} ::/EFI/BOOT/BOOTX64.EFI"))?;
            for (file, p) in &ukis {
                let dest = format!("::/EFI/Linux/{file}");
                host_tools::run(cmd!(sh, "mcopy -i {out} {p} {dest}"))?;
            }
            host_tools::run(cmd!(sh, "mcopy -i {out} {conf} ::/loader/loader.conf"))?;
            for var in VARS {
                let auth = self.keys.auth(var);
                for dir in [&auto, &named] {
                    let dest = format!("{dir}/{var}.auth");
                    host_tools::run(cmd!(sh, "mcopy -i {out} {auth} {dest}"))?;
                }
            }
            Ok(())
        })
        .context("writing the UKI ESP")
    }

    /// systemd-boot's settings: the default UKI after the menu's timeout,
    /// and automatic enrolment of the keys on firmware in setup mode.
    fn loader_conf(&self) -> String {
        format!(
            "# edgeforge: UKI installer ISO\ntimeout {}\ndefault {}-{}.efi\nsecure-boot-enroll force\n",
            self.menu.timeout, self.iso_name, self.menu.default
        )
    }
}
