//! The installer menu as data: the entries of `/boot/grub2/grub.cfg` and each
//! one's kernel arguments per firmware (BIOS and EFI), built from the
//! definition's `iso` options over Kairos's defaults. `templates/grub.cfg.tera`
//! only lays them out, so tests and `edgeforge render` see what boots.

use serde::Serialize;

use crate::definition::{EntryId, IsoOptions, Nomodeset};

/// The argument `iso.menu.nomodeset: all` puts on every entry.
const NOMODESET: &str = "nomodeset";

/// What `grub.cfg.tera` gets as `menu`.
#[derive(Debug, Serialize)]
pub struct Menu {
    /// The `--id` GRUB boots when the timeout runs out.
    pub default: &'static str,
    pub timeout: u32,
    /// GRUB's serial terminal, from the first `ttyS<N>` console.
    pub serial: Option<Serial>,
    pub entries: Vec<Entry>,
    /// Every default argument the menu carries, with why it is there.
    pub notes: Vec<Note>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Serial {
    pub unit: u32,
    pub speed: u32,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: &'static str,
    /// Shown after the image title: `(install)`.
    pub label: &'static str,
    /// The kernel arguments when GRUB runs on BIOS (`$grub_platform` `pc`).
    pub bios: Vec<String>,
    /// The kernel arguments under UEFI.
    pub efi: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Note {
    pub arg: String,
    pub why: String,
}

/// A setting the menu cannot be built from: the dotted field and what is wrong.
#[derive(Debug)]
pub struct MenuError {
    pub field: String,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// How the initramfs finds and mounts the medium: never removed.
    Live,
    /// On every entry (or every entry but some), on both firmwares.
    Common,
    /// On every entry, BIOS only.
    Bios,
    /// What makes an entry what it is.
    Mode,
}

struct DefaultArg {
    arg: &'static str,
    kind: Kind,
    /// The entries carrying it: all but these (`Live`, `Common`, `Bios`) or
    /// only these (`Mode`).
    entries: &'static [EntryId],
    why: &'static str,
}

/// Kairos's live ISO defaults (AuroraBoot's live GRUB menu), in command-line order.
const DEFAULTS: &[DefaultArg] = &[
    DefaultArg {
        arg: "cdroot",
        kind: Kind::Common,
        entries: &[],
        why: "immucore and the Kairos agent recognise a live (installer) boot by it",
    },
    DefaultArg {
        arg: "root=live:CDLABEL=COS_LIVE",
        kind: Kind::Live,
        entries: &[],
        why: "dracut's dmsquash-live finds the installer medium by its volume label",
    },
    DefaultArg {
        arg: "rd.live.dir=/",
        kind: Kind::Live,
        entries: &[],
        why: "the squashfs sits in the medium's root folder",
    },
    DefaultArg {
        arg: "rd.live.squashimg=rootfs.squashfs",
        kind: Kind::Live,
        entries: &[],
        why: "the squashfs's file name",
    },
    DefaultArg {
        arg: "rd.live.overlay.overlayfs",
        kind: Kind::Live,
        entries: &[],
        why: "a writable overlayfs in RAM over the read-only squashfs",
    },
    DefaultArg {
        arg: "net.ifnames=1",
        kind: Kind::Common,
        entries: &[],
        why: "predictable NIC names (enp1s0), the ones user-data's network.interfaces refers to",
    },
    DefaultArg {
        arg: "selinux=0",
        kind: Kind::Common,
        entries: &[],
        why: "SELinux flavours (Rocky, RHEL) would enforce a policy the live system is not labelled for",
    },
    DefaultArg {
        arg: "rd.cos.disable",
        kind: Kind::Common,
        entries: &[EntryId::Live],
        why: "immucore must not mount an installed system while live (older immucore releases need it)",
    },
    DefaultArg {
        arg: "vga=795",
        kind: Kind::Bios,
        entries: &[],
        why: "a 1280x1024 VESA console on BIOS; known to break UEFI boots, so never given there",
    },
    DefaultArg {
        arg: "install-mode",
        kind: Kind::Mode,
        entries: &[EntryId::Install, EntryId::Nomodeset],
        why: "the agent installs unattended, from the user-data",
    },
    DefaultArg {
        arg: "install-mode-interactive",
        kind: Kind::Mode,
        entries: &[EntryId::Interactive],
        why: "the agent asks for the install settings on the console",
    },
    DefaultArg {
        arg: "kairos.remote_recovery_mode",
        kind: Kind::Mode,
        entries: &[EntryId::Recovery],
        why: "the node waits for a remote recovery session instead of installing",
    },
    DefaultArg {
        arg: "kairos.boot_live_mode",
        kind: Kind::Mode,
        entries: &[EntryId::Live],
        why: "the node runs from the live medium without installing (so no rd.cos.disable)",
    },
    DefaultArg {
        arg: "rd.debug",
        kind: Kind::Mode,
        entries: &[EntryId::Debug],
        why: "dracut traces every initramfs step on the console",
    },
    DefaultArg {
        arg: "rd.shell",
        kind: Kind::Mode,
        entries: &[EntryId::Debug],
        why: "a shell, not a halt, when the initramfs fails",
    },
    DefaultArg {
        arg: "rd.immucore.debug",
        kind: Kind::Mode,
        entries: &[EntryId::Debug],
        why: "immucore logs at debug level",
    },
    DefaultArg {
        arg: NOMODESET,
        kind: Kind::Mode,
        entries: &[EntryId::Nomodeset],
        why: "kernel mode setting off, for graphics that hang or go blank at boot (iso.menu.nomodeset)",
    },
];

const CONSOLE_WHY: &str =
    "the kernel's consoles (iso.menu.consoles), serial and VGA; the last one is /dev/console";

fn label(id: EntryId) -> &'static str {
    match id {
        EntryId::Install => "install",
        EntryId::Manual => "manual install",
        EntryId::Interactive => "interactive install",
        EntryId::Recovery => "remote recovery",
        EntryId::Live => "boot local node from live CD",
        EntryId::Debug => "debug",
        EntryId::Nomodeset => "install, nomodeset",
    }
}

/// Whether `arg` is one of the default arguments that find the live medium
/// and its squashfs (a UKI carries its root filesystem and drops them).
pub fn is_live_arg(arg: &str) -> bool {
    DEFAULTS
        .iter()
        .any(|d| d.kind == Kind::Live && d.arg == arg)
}

impl DefaultArg {
    fn on(&self, id: EntryId) -> bool {
        match self.kind {
            Kind::Mode => self.entries.contains(&id),
            _ => !self.entries.contains(&id),
        }
    }

    /// A `remove` item names this argument whole (`selinux=0`) or by key (`vga`).
    fn matches(&self, pattern: &str) -> bool {
        pattern == self.arg || (!pattern.contains('=') && key(self.arg) == pattern)
    }
}

fn key(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(k, _)| k)
}

impl Menu {
    /// The menu for `iso`, or the first setting that cannot be used.
    pub fn new(iso: &IsoOptions) -> Result<Menu, MenuError> {
        let m = &iso.menu;
        let ids: Vec<EntryId> = EntryId::ALL
            .into_iter()
            .filter(|&id| id != EntryId::Nomodeset || m.nomodeset == Nomodeset::Entry)
            .collect();
        let known = || {
            ids.iter()
                .map(|id| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !ids.contains(&m.default) {
            return Err(err(
                "iso.menu.default",
                format!(
                    "`{}` is not an entry of this menu (iso.menu.nomodeset: entry adds it); the entries are {}",
                    m.default.as_str(),
                    known()
                ),
            ));
        }
        let mut consoles = Vec::new();
        for c in &m.consoles {
            check_arg("iso.menu.consoles", c)?;
            if c.starts_with("console=") {
                return Err(err(
                    "iso.menu.consoles",
                    format!("give `{}` without `console=`", c),
                ));
            }
            consoles.push(format!("console={c}"));
        }
        let global = &m.cmdline;
        check_removals(
            "iso.menu.cmdline.remove",
            &global.remove,
            "any entry",
            |_| true,
        )?;
        check_adds("iso.menu.cmdline.add", &global.add)?;
        let extra: Vec<String> = iso
            .extra_cmdline
            .split_whitespace()
            .map(String::from)
            .collect();
        check_adds("iso.extra_cmdline", &extra)?;
        for id in EntryId::ALL {
            let field = format!("iso.menu.entries.{}", id.as_str());
            let own = m.entries.get(id);
            let changed = !own.add.is_empty() || !own.remove.is_empty();
            if changed && !ids.contains(&id) {
                return Err(err(
                    &field,
                    format!(
                        "this menu has no `{}` entry (iso.menu.nomodeset: entry adds it); the entries are {}",
                        id.as_str(),
                        known()
                    ),
                ));
            }
            check_removals(
                &format!("{field}.remove"),
                &own.remove,
                &format!("the {} entry", id.as_str()),
                |d| d.on(id),
            )?;
            check_adds(&format!("{field}.add"), &own.add)?;
        }

        let removed = |d: &DefaultArg, id: EntryId| {
            global
                .remove
                .iter()
                .chain(&m.entries.get(id).remove)
                .any(|p| d.matches(p))
        };
        let mut entries = Vec::new();
        for &id in &ids {
            let own = m.entries.get(id);
            let of = |kinds: &'static [Kind]| {
                DEFAULTS
                    .iter()
                    .filter(move |d| kinds.contains(&d.kind) && d.on(id) && !removed(d, id))
                    .map(|d| d.arg.to_string())
            };
            let mut head: Vec<String> = of(&[Kind::Live, Kind::Common]).collect();
            head.extend(consoles.iter().cloned());
            let mut tail = Vec::new();
            if m.nomodeset == Nomodeset::All {
                tail.push(NOMODESET.to_string());
            }
            tail.extend(of(&[Kind::Mode]));
            tail.extend(global.add.iter().chain(&extra).chain(&own.add).cloned());
            let efi = dedup(head.iter().chain(&tail).cloned());
            let bios = dedup(head.into_iter().chain(of(&[Kind::Bios])).chain(tail));
            entries.push(Entry {
                id: id.as_str(),
                label: label(id),
                bios,
                efi,
            });
        }

        let mut notes = Vec::new();
        for d in DEFAULTS {
            if entries.iter().any(|e| e.bios.iter().any(|a| a == d.arg)) {
                notes.push(Note {
                    arg: d.arg.to_string(),
                    why: d.why.to_string(),
                });
            }
        }
        if !consoles.is_empty() {
            notes.push(Note {
                arg: consoles.join(" "),
                why: CONSOLE_WHY.to_string(),
            });
        }

        Ok(Menu {
            default: m.default.as_str(),
            timeout: iso.timeout,
            serial: m.consoles.iter().find_map(|c| serial(c)),
            entries,
            notes,
        })
    }
}

fn err(field: &str, message: impl Into<String>) -> MenuError {
    MenuError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Characters GRUB's script parser or the kernel's command line would take
/// for something other than part of one argument.
const FORBIDDEN: &[char] = &['"', '\'', '\\', ';', '{', '}', '$', '|', '&', '<', '>', '#'];

fn check_arg(field: &str, arg: &str) -> Result<(), MenuError> {
    if arg.is_empty()
        || arg.chars().any(|c| c.is_whitespace() || c.is_control())
        || arg.contains(FORBIDDEN)
    {
        return Err(err(
            field,
            format!(
                "`{arg}` is not one kernel argument (no spaces, quotes, or any of {})",
                FORBIDDEN.iter().collect::<String>()
            ),
        ));
    }
    Ok(())
}

fn check_adds(field: &str, args: &[String]) -> Result<(), MenuError> {
    for a in args {
        check_arg(field, a)?;
        if key(a) == "console" {
            return Err(err(
                field,
                format!(
                    "`{a}`: consoles are set by iso.menu.consoles (its order decides /dev/console)"
                ),
            ));
        }
    }
    Ok(())
}

/// Each item must name a default argument `on` covers, and not one the live
/// boot needs; the error lists the removable ones.
fn check_removals(
    field: &str,
    items: &[String],
    of: &str,
    on: impl Fn(&DefaultArg) -> bool,
) -> Result<(), MenuError> {
    for item in items {
        if key(item) == "console" {
            return Err(err(
                field,
                format!(
                    "`{item}`: consoles are set by iso.menu.consoles (`consoles: []` for none)"
                ),
            ));
        }
        let hits: Vec<&DefaultArg> = DEFAULTS
            .iter()
            .filter(|d| on(d) && d.matches(item))
            .collect();
        if let Some(live) = hits.iter().find(|d| d.kind == Kind::Live) {
            return Err(err(
                field,
                format!(
                    "`{}` is how the initramfs finds the live medium; it cannot be removed",
                    live.arg
                ),
            ));
        }
        if hits.is_empty() {
            let removable: Vec<&str> = DEFAULTS
                .iter()
                .filter(|d| d.kind != Kind::Live && on(d))
                .map(|d| d.arg)
                .collect();
            return Err(err(
                field,
                format!(
                    "`{item}` is not a default argument of {of}; the removable ones are {}",
                    removable.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The first occurrence of each argument, in order.
fn dedup(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in args {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// `ttyS1,115200n8` -> unit 1 at 115200; without a speed, 9600 (what Linux
/// and GRUB both use then).
fn serial(console: &str) -> Option<Serial> {
    let rest = console.strip_prefix("ttyS")?;
    let (unit, options) = rest.split_once(',').unwrap_or((rest, ""));
    let unit = unit.parse().ok()?;
    let digits: String = options.chars().take_while(char::is_ascii_digit).collect();
    Some(Serial {
        unit,
        speed: digits.parse().unwrap_or(9600),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(yaml: &str) -> Result<Menu, MenuError> {
        let iso: IsoOptions = serde_yaml::from_str(yaml).unwrap();
        Menu::new(&iso)
    }

    fn entry<'a>(m: &'a Menu, id: &str) -> &'a Entry {
        m.entries.iter().find(|e| e.id == id).unwrap()
    }

    #[test]
    fn defaults_follow_kairos() {
        let m = menu("{}").unwrap();
        let ids: Vec<&str> = m.entries.iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            [
                "install",
                "manual",
                "interactive",
                "recovery",
                "live",
                "debug"
            ]
        );
        assert_eq!(
            entry(&m, "install").bios.join(" "),
            "cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs rd.live.overlay.overlayfs net.ifnames=1 selinux=0 rd.cos.disable console=ttyS0,115200 console=tty1 vga=795 install-mode"
        );
        assert!(!entry(&m, "install").efi.contains(&"vga=795".into()));
        let live = entry(&m, "live");
        assert!(live.efi.contains(&"kairos.boot_live_mode".into()));
        assert!(!live.efi.contains(&"rd.cos.disable".into()));
        assert_eq!(
            m.serial,
            Some(Serial {
                unit: 0,
                speed: 115200
            })
        );
        assert_eq!(m.default, "install");
        assert!(m.notes.iter().any(|n| n.arg == "vga=795"));
        assert!(!m.notes.iter().any(|n| n.arg == "nomodeset"));
    }

    #[test]
    fn changes_apply_globally_and_per_entry() {
        let m = menu(
            "extra_cmdline: x=1\nmenu:\n  default: debug\n  nomodeset: all\n  consoles: [tty1, ttyS1]\n  cmdline: {add: [a=1], remove: [vga, selinux=0]}\n  entries:\n    debug: {add: [b], remove: [rd.shell]}\n",
        )
        .unwrap();
        let debug = entry(&m, "debug");
        assert_eq!(debug.bios, debug.efi);
        assert_eq!(
            debug.efi.join(" "),
            "cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs rd.live.overlay.overlayfs net.ifnames=1 rd.cos.disable console=tty1 console=ttyS1 nomodeset rd.debug rd.immucore.debug a=1 x=1 b"
        );
        assert_eq!(
            m.serial,
            Some(Serial {
                unit: 1,
                speed: 9600
            })
        );
    }

    #[test]
    fn refusals_name_the_field_and_the_choices() {
        let e = menu("menu: {default: nomodeset}").unwrap_err();
        assert_eq!(e.field, "iso.menu.default");
        assert!(e.message.contains("install, manual"), "{}", e.message);
        let e = menu("menu: {entries: {live: {remove: [rd.cos.disable]}}}").unwrap_err();
        assert_eq!(e.field, "iso.menu.entries.live.remove");
        assert!(e.message.contains("kairos.boot_live_mode"), "{}", e.message);
        let e = menu("menu: {cmdline: {remove: [root]}}").unwrap_err();
        assert!(e.message.contains("cannot be removed"), "{}", e.message);
        let e = menu("menu: {cmdline: {add: [console=ttyS1]}}").unwrap_err();
        assert!(e.message.contains("iso.menu.consoles"), "{}", e.message);
        let e = menu("extra_cmdline: 'a \"b\"'").unwrap_err();
        assert_eq!(e.field, "iso.extra_cmdline");
    }
}
