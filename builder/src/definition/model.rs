//! The serde model of an image definition. Unknown fields are refused so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDefinition {
    pub os: Os,
    #[serde(default)]
    pub arch: Arch,
    pub kubernetes: Kubernetes,
    pub agent: Agent,
    pub registry: String,
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_tag: Option<String>,
    #[serde(default = "default_iso_name")]
    pub iso_name: String,
    #[serde(default)]
    pub fips: bool,
    /// Replace the base image's kernel at build time (not allowed with FIPS).
    #[serde(default)]
    pub update_kernel: bool,
    /// `[oci:|oci-archive:|docker-archive:]PATH`; the form is detected when no prefix is given.
    pub base_image: String,
    /// Folder holding shared templates (`kairos-release.tera`, ...), for `{% include %}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<PathBuf>,
    #[serde(default)]
    pub components: Vec<Component>,
    /// How the layers edgeforge adds are compressed: `gzip` (default) or `zstd`.
    #[serde(default)]
    pub layer_compression: crate::layer::LayerCompression,
    #[serde(default)]
    pub overlays: Overlays,
    /// Modes (octal strings such as `"0440"`) for files and folders that
    /// folder components and rootfs overlays put at these image paths.
    /// Everything else from a folder gets 0755 (folders, executables) or
    /// 0644, whatever the checkout's umask gave it.
    #[serde(default)]
    pub file_modes: BTreeMap<String, String>,
    #[serde(default)]
    pub proxy: Proxy,
    #[serde(default)]
    pub iso: IsoOptions,
    /// How the installer ISO boots: `grub` (BIOS + UEFI, the image's signed
    /// shim + GRUB when it carries them) or `uki` (UEFI only: systemd-boot
    /// and signed Unified Kernel Images, with `secure_boot_keys`).
    #[serde(default)]
    pub boot: BootMode,
    /// The key set (`edgeforge keys generate`) that signs a `boot: uki` ISO;
    /// `--secure-boot-keys` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_boot_keys: Option<PathBuf>,
    /// The appliance disk images (`edgeforge disk`; `build` writes them when
    /// `disk.formats` lists any).
    #[serde(default)]
    pub disk: DiskOptions,
    /// Extra OCI config labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Source revision recorded in the image labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    #[default]
    Grub,
    Uki,
}

fn default_iso_name() -> String {
    "palette-edge-installer".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Os {
    pub distribution: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[default]
    Amd64,
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    pub distribution: KubernetesDistribution,
    /// One version or a list: a list builds one provider image per version.
    pub version: OneOrMany,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubernetesDistribution {
    K3s,
    Rke2,
    Kubeadm,
    KubeadmFips,
    Nodeadm,
    Canonical,
}

impl KubernetesDistribution {
    pub fn as_str(self) -> &'static str {
        match self {
            KubernetesDistribution::K3s => "k3s",
            KubernetesDistribution::Rke2 => "rke2",
            KubernetesDistribution::Kubeadm => "kubeadm",
            KubernetesDistribution::KubeadmFips => "kubeadm-fips",
            KubernetesDistribution::Nodeadm => "nodeadm",
            KubernetesDistribution::Canonical => "canonical",
        }
    }

    /// The suffix the distribution's packages carry (`v1.30.5+k3s1`).
    pub fn package_suffix(self) -> &'static str {
        match self {
            KubernetesDistribution::K3s => "-k3s1",
            KubernetesDistribution::Rke2 => "-rke2r1",
            _ => "",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Hand-written so a bare number (`1.30`, which YAML reads as 1.3) gets a
/// message saying to quote it, at the value's own line.
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a version string like \"1.30.5\" or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<OneOrMany, E> {
                Err(E::custom(format!(
                    "the number {v} is not a version (quote version numbers: \"1.30.5\")"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<VersionString>()? {
                    out.push(v.0);
                }
                Ok(OneOrMany::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One list element of `kubernetes.version`, refusing numbers the same way.
struct VersionString(String);

impl<'de> Deserialize<'de> for VersionString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Ok(VersionString(s)),
            OneOrMany::Many(_) => Err(serde::de::Error::custom("a list inside the version list")),
        }
    }
}

impl OneOrMany {
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub version: String,
}

/// An extra layer: a folder or a tarball (`.tar`, `.tar.gz`/`.tgz`, `.tar.zst`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: PathBuf,
    /// Where in the rootfs the content lands; `/` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlays {
    /// Trees copied into the provider image rootfs (one layer), later ones winning.
    #[serde(default)]
    pub rootfs: Vec<PathBuf>,
    /// Trees copied into the installer ISO root.
    #[serde(default)]
    pub iso: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoOptions {
    /// Appended to the kernel command line of every boot entry (after
    /// `menu.cmdline.add`): one string, handy with `--set`.
    #[serde(default)]
    pub extra_cmdline: String,
    /// Seconds the GRUB menu waits before the default entry (`menu.default`).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// The GRUB menu: default entry, consoles, kernel arguments per entry.
    #[serde(default)]
    pub menu: MenuOptions,
    /// rootfs.squashfs compression.
    #[serde(default)]
    pub compression: crate::iso::Compression,
    /// Content-signing public key file, placed at `/.edge_custom_config.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_custom_config: Option<PathBuf>,
    /// Cluster definition file, placed in `/opt/spectrocloud/clusterconfig/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_definition: Option<PathBuf>,
    /// Content bundles (`edgeforge bundle`), placed in `/opt/spectrocloud/content/`.
    #[serde(default)]
    pub bundles: Vec<PathBuf>,
    /// Bundles larger than this many bytes are split into numbered parts
    /// (ISO 9660 files end at 4 GiB).
    #[serde(default = "default_split")]
    pub split_size: u64,
    /// The size of a golden ISO's `/config.yaml` reserved area (bytes, or
    /// `"64KiB"`, `"4MiB"`): the largest user-data `iso embed` can put in.
    #[serde(default = "default_reserved_area")]
    pub reserved_area: ByteSize,
}

fn default_reserved_area() -> ByteSize {
    ByteSize(crate::iso::reserved::SIZE as u64)
}

/// A size in bytes, written as a number (`65536`) or with a binary unit
/// (`"64KiB"`, `"4MiB"`; `K`/`KB`/`M`/`MB` mean the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => parse_size(&t).map(ByteSize).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{t}` is not a size: give bytes (65536) or a number with KiB or MiB (\"64KiB\", \"4MiB\")"
                ))
            }),
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

fn default_split() -> u64 {
    crate::iso::content::DEFAULT_SPLIT
}

fn default_timeout() -> u32 {
    5
}

impl ImageDefinition {
    /// `file_modes` as numbers by image path without the leading `/`
    /// (validated when the definition is loaded).
    pub fn file_modes(&self) -> BTreeMap<PathBuf, u32> {
        self.file_modes
            .iter()
            .filter_map(|(path, mode)| {
                Some((
                    PathBuf::from(path.trim_start_matches('/')),
                    parse_mode(mode)?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_take_bytes_or_binary_units() {
        for (text, want) in [
            ("65536", Some(65536)),
            ("64KiB", Some(65536)),
            ("4MiB", Some(4 << 20)),
            ("1 MiB", Some(1 << 20)),
            ("64k", Some(65536)),
            ("1.5MiB", None),
            ("4GiB", None),
            ("MiB", None),
        ] {
            assert_eq!(super::parse_size(text), want, "{text}");
        }
    }
}

/// An octal mode such as `0440` or `4755`.
pub fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

impl Default for IsoOptions {
    fn default() -> Self {
        IsoOptions {
            extra_cmdline: String::new(),
            timeout: default_timeout(),
            menu: MenuOptions::default(),
            compression: Default::default(),
            edge_custom_config: None,
            cluster_definition: None,
            bundles: Vec::new(),
            split_size: default_split(),
            reserved_area: default_reserved_area(),
        }
    }
}

/// `disk`: the Kairos-style appliance disk (see `disk/mod.rs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskOptions {
    /// What `build` writes (none: no disk); `edgeforge disk` writes `raw`
    /// when this is empty.
    #[serde(default)]
    pub formats: Vec<crate::disk::Format>,
    /// The disk's final size (bytes, or with a K/M/G/T suffix, powers of
    /// 1024); at least what the content needs. Default: just that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<crate::disk::ByteSize>,
    /// The firmware the OVA's virtual machine boots with.
    #[serde(default)]
    pub firmware: crate::disk::Firmware,
    /// File stem of the disk images.
    #[serde(default = "default_disk_name")]
    pub name: String,
    /// The OVA's virtual CPUs.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// The OVA's memory in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
}

fn default_disk_name() -> String {
    "palette-edge-appliance".into()
}

fn default_cpus() -> u32 {
    2
}

fn default_memory() -> u32 {
    4096
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            formats: Vec::new(),
            size: None,
            firmware: Default::default(),
            name: default_disk_name(),
            cpus: default_cpus(),
            memory_mib: default_memory(),
        }
    }
}

/// `iso.menu`: what the installer's GRUB menu boots (see `iso/menu.rs` for
/// the default arguments and why each is there).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuOptions {
    /// The entry GRUB boots when the timeout runs out.
    #[serde(default)]
    pub default: EntryId,
    /// Kernel consoles (`console=` values) in order: the last one becomes
    /// `/dev/console`; the first `ttyS<N>` also gets GRUB's serial terminal.
    #[serde(default = "default_consoles")]
    pub consoles: Vec<String>,
    /// `nomodeset` nowhere (`none`), as a separate install entry (`entry`),
    /// or on every entry (`all`); `true`/`false` mean `all`/`none`.
    #[serde(default)]
    pub nomodeset: Nomodeset,
    /// Arguments added to, or default ones removed from, every entry.
    #[serde(default)]
    pub cmdline: CmdlineChanges,
    /// The same, per entry.
    #[serde(default)]
    pub entries: MenuEntries,
}

fn default_consoles() -> Vec<String> {
    vec!["ttyS0,115200".into(), "tty1".into()]
}

impl Default for MenuOptions {
    fn default() -> Self {
        MenuOptions {
            default: EntryId::default(),
            consoles: default_consoles(),
            nomodeset: Nomodeset::default(),
            cmdline: CmdlineChanges::default(),
            entries: MenuEntries::default(),
        }
    }
}

/// The boot entries of the installer menu, by their GRUB `--id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryId {
    #[default]
    Install,
    Manual,
    Interactive,
    Recovery,
    Live,
    Debug,
    Nomodeset,
}

impl EntryId {
    pub const ALL: [EntryId; 7] = [
        EntryId::Install,
        EntryId::Manual,
        EntryId::Interactive,
        EntryId::Recovery,
        EntryId::Live,
        EntryId::Debug,
        EntryId::Nomodeset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryId::Install => "install",
            EntryId::Manual => "manual",
            EntryId::Interactive => "interactive",
            EntryId::Recovery => "recovery",
            EntryId::Live => "live",
            EntryId::Debug => "debug",
            EntryId::Nomodeset => "nomodeset",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Nomodeset {
    #[default]
    None,
    Entry,
    All,
}

/// Hand-written so `true`/`false` (what most people write) are accepted too.
impl<'de> Deserialize<'de> for Nomodeset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Nomodeset;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("one of none, entry, all (or true for all, false for none)")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Nomodeset, E> {
                Ok(if v { Nomodeset::All } else { Nomodeset::None })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Nomodeset, E> {
                match v {
                    "none" => Ok(Nomodeset::None),
                    "entry" => Ok(Nomodeset::Entry),
                    "all" => Ok(Nomodeset::All),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Kernel arguments added (in order) and default ones removed (by the whole
/// argument, `selinux=0`, or by its key, `vga`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdlineChanges {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `iso.menu.entries.<id>`: changes to one entry's arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuEntries {
    #[serde(default)]
    pub install: CmdlineChanges,
    #[serde(default)]
    pub manual: CmdlineChanges,
    #[serde(default)]
    pub interactive: CmdlineChanges,
    #[serde(default)]
    pub recovery: CmdlineChanges,
    #[serde(default)]
    pub live: CmdlineChanges,
    #[serde(default)]
    pub debug: CmdlineChanges,
    #[serde(default)]
    pub nomodeset: CmdlineChanges,
}

impl MenuEntries {
    pub fn get(&self, id: EntryId) -> &CmdlineChanges {
        match id {
            EntryId::Install => &self.install,
            EntryId::Manual => &self.manual,
            EntryId::Interactive => &self.interactive,
            EntryId::Recovery => &self.recovery,
            EntryId::Live => &self.live,
            EntryId::Debug => &self.debug,
            EntryId::Nomodeset => &self.nomodeset,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
}
