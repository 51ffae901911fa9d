//! The appliance disk's GRUB configuration: the early config embedded in the
//! GRUB images edgeforge builds and the stub on the ESP both find the
//! partition labelled COS_RECOVERY and load its `/grub2/grub.cfg`, the menu.
//! The menu reads COS_OEM's `grubenv` (Kairos's first-boot selection) and
//! boots the recovery system: the installer's live entry (the same consoles
//! and arguments from `iso.menu`) with dracut's dmsquash-live pointed at
//! `cOS/recovery.squashfs` on COS_RECOVERY.

use std::fmt::Write as _;

use crate::definition::EntryId;
use crate::iso::menu::Menu;

pub const RECOVERY_LABEL: &str = "COS_RECOVERY";
pub const OEM_LABEL: &str = "COS_OEM";
pub const ESP_LABEL: &str = "COS_GRUB";
pub const SQUASHFS_DIR: &str = "cOS";
pub const SQUASHFS: &str = "recovery.squashfs";

/// The ISO's live-medium arguments and what the disk boots with instead.
const REPLACED: [(&str, &str); 3] = [
    ("root=live:CDLABEL=COS_LIVE", "root=live:LABEL=COS_RECOVERY"),
    ("rd.live.dir=/", "rd.live.dir=/cOS"),
    (
        "rd.live.squashimg=rootfs.squashfs",
        "rd.live.squashimg=recovery.squashfs",
    ),
];
/// Arguments that mark a boot from the installer medium: not on a disk.
const DROPPED: [&str; 2] = ["cdroot", "kairos.boot_live_mode"];

/// `grubenv`: GRUB's 1024-byte environment block, selecting recovery.
pub fn grubenv() -> Vec<u8> {
    let mut env = b"# GRUB Environment Block\nnext_entry=recovery\n".to_vec();
    env.resize(1024, b'#');
    env
}

/// Embedded in GRUB images edgeforge builds (BIOS core.img, EFI GRUB).
pub fn early() -> String {
    format!("search --no-floppy --label --set=root {RECOVERY_LABEL}\nset prefix=($root)/grub2\n")
}

/// On the ESP (`EFI/BOOT/grub.cfg`, `boot/grub/grub.cfg`) for a signed
/// GRUB from the image, which looks there.
pub fn stub() -> String {
    format!("{}configfile $prefix/grub.cfg\n", early())
}

/// The kernel arguments of the recovery entry, from the ISO's live entry.
pub fn recovery_args(args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| !DROPPED.contains(&a.as_str()))
        .map(|a| {
            REPLACED
                .iter()
                .find(|(from, _)| from == a)
                .map_or(a.clone(), |(_, to)| to.to_string())
        })
        .chain([format!("rd.cos.oemlabel={OEM_LABEL}")])
        .collect()
}

/// `/grub2/grub.cfg` on COS_RECOVERY.
pub fn menu(menu: &Menu, title: &str) -> String {
    let live = menu
        .entries
        .iter()
        .find(|e| e.id == EntryId::Live.as_str())
        .expect("the live entry is always in the menu");
    let mut s =
        String::from("# Appliance disk menu written by edgeforge (builder/src/disk/grub.rs).\n");
    let _ = writeln!(s, "set default=recovery\nset timeout={}", menu.timeout);
    if let Some(serial) = &menu.serial {
        let _ = writeln!(
            s,
            "if serial --unit={} --speed={}; then\n  terminal_input --append serial\n  terminal_output --append serial\nfi",
            serial.unit, serial.speed
        );
    }
    // Kairos's first boot: COS_OEM's grubenv names the entry (recovery,
    // which resets the disk into an installed system).
    let _ = writeln!(
        s,
        "search --no-floppy --label --set=oem {OEM_LABEL}\nif [ -n \"$oem\" ]; then\n  if [ -f ($oem)/grubenv ]; then\n    load_env --file ($oem)/grubenv\n  fi\nfi\nif [ -n \"$next_entry\" ]; then\n  set default=\"$next_entry\"\nfi"
    );
    let _ = writeln!(
        s,
        "if [ -f $prefix/fonts/unicode.pf2 ]; then\n  loadfont $prefix/fonts/unicode.pf2\nfi"
    );
    let _ = writeln!(s, "if [ \"$grub_platform\" = \"pc\" ]; then");
    entry(&mut s, title, &recovery_args(&live.bios));
    s.push_str("else\n");
    entry(&mut s, title, &recovery_args(&live.efi));
    s.push_str("fi\n");
    s
}

fn entry(s: &mut String, title: &str, args: &[String]) {
    let _ = writeln!(
        s,
        "  menuentry \"{title} (recovery)\" --id recovery {{\n    linux /boot/kernel {}\n    initrd /boot/initrd\n  }}",
        args.join(" ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovery_entry_boots_the_squashfs_on_cos_recovery() {
        let iso = crate::definition::IsoOptions::default();
        let m = Menu::new(&iso).unwrap();
        let cfg = menu(&m, "Edge");
        let line = cfg
            .lines()
            .find(|l| l.contains("linux /boot/kernel"))
            .unwrap();
        for want in [
            "root=live:LABEL=COS_RECOVERY",
            "rd.live.dir=/cOS",
            "rd.live.squashimg=recovery.squashfs",
            "rd.live.overlay.overlayfs",
            "console=ttyS0,115200",
        ] {
            assert!(
                line.split_whitespace().any(|a| a == want),
                "{want} missing: {line}"
            );
        }
        assert!(
            !line.contains("CDLABEL") && !line.contains("cdroot"),
            "{line}"
        );
        assert_eq!(grubenv().len(), 1024);
    }
}
