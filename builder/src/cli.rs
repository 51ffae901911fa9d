//! The command line. Each subcommand's arguments live here; the handlers in
//! `commands/` stay thin over the domain modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "edgeforge",
    version,
    about = "Build edge appliance provider images and installer ISOs, offline and reproducibly",
    long_about = "Build edge appliance provider images (OCI archives) and installer ISOs from declarative image definitions (images/*.yaml), a Kairos-style base image and templated overlays. Same inputs and SOURCE_DATE_EPOCH give byte-identical outputs.",
    after_help = "Exit codes: 0 ok, 1 build failure, 2 usage, 3 invalid input, 4 missing host tool, 5 I/O error, 6 template error, 7 corrupt or unsafe image (also a registry image whose digest is not the pinned one), 8 secret refused, 9 registry credentials missing or refused, 10 registry TLS certificate not trusted, 11 registry unreachable, 12 --offline and the content is not cached."
)]
pub struct Cli {
    /// Print every step, including the exact commands run.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Result format on stdout: text for people, json (a stable schema) for programs.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Layer cache folder [default: $XDG_CACHE_HOME/edgeforge or ~/.cache/edgeforge].
    #[arg(long, global = true, env = "EDGEFORGE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Build every layer afresh and keep nothing for later builds.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Never contact a registry: registry images must be in the cache (pulled by an earlier run); a missing one fails (exit 12) naming it.
    #[arg(long, global = true, env = "EDGEFORGE_OFFLINE")]
    pub offline: bool,
    /// Registry credentials file (containers auth.json format) for skopeo [default: skopeo's search: REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json].
    #[arg(long, global = true, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// A folder of CA certificates (*.crt) trusted for registries, instead of /etc/containers/certs.d/HOST/ and /etc/docker/certs.d/HOST/.
    #[arg(
        long,
        global = true,
        env = "EDGEFORGE_REGISTRY_CERT_DIR",
        value_name = "DIR"
    )]
    pub cert_dir: Option<PathBuf>,
    /// A registries.conf (mirrors, redirects) for skopeo instead of /etc/containers/registries.conf.
    #[arg(
        long,
        global = true,
        env = "EDGEFORGE_REGISTRIES_CONF",
        value_name = "FILE"
    )]
    pub registries_conf: Option<PathBuf>,
    /// Check registries' TLS certificates (--tls-verify=false only for a registry you trust).
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// Timestamp (seconds since 1970) used for every mtime and `created` field.
    #[arg(
        long,
        global = true,
        env = "SOURCE_DATE_EPOCH",
        default_value_t = 0,
        value_name = "SECONDS"
    )]
    pub source_date_epoch: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build the provider image(s) of a definition: one OCI archive per Kubernetes version.
    ProviderImage(ProviderImageArgs),
    /// Build the installer ISO of a definition (or show, embed user-data into, an ISO: `iso show`, `iso embed`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Iso(Box<IsoCommand>),
    /// Build the appliance disk images of a definition: raw (or compressed), qcow2, VMDK, OVA (or put a site's user-data into one: `disk embed`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Disk(Box<DiskCommand>),
    /// Expand definitions into their variants (tags, output names, input digests) for CI matrices.
    Plan {
        /// Image definitions.
        #[arg(value_name = "IMAGE_YAML", required = true)]
        definitions: Vec<PathBuf>,
        /// The result format [default: table, or json with `--output json`].
        #[arg(long, value_enum)]
        format: Option<PlanFormat>,
    },
    /// List every host tool edgeforge and its checks use, with versions and the Debian package for each missing one.
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `edgeforge man > edgeforge.1`; with --out DIR write one page per command and subcommand.
    Man {
        /// Write edgeforge.1 and a page for every subcommand (edgeforge-iso.1, edgeforge-iso-embed.1, ...) into this folder.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
    /// Pack OCI images into one zstd content bundle for air-gapped sites (or check one: `bundle verify`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Bundle(Box<BundleCommand>),
    /// Manage the layer cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Push a provider image archive to a registry (skopeo, digests preserved) and print reference@digest.
    Push(PushArgs),
    /// Check artifacts against a SHA256SUMS or <artifact>.sha256 file (or a folder's SHA256SUMS).
    Verify {
        /// A folder holding SHA256SUMS, or a checksum file.
        #[arg(value_name = "DIR|SUMS")]
        path: PathBuf,
        /// An OpenPGP public key (file): check SHA256SUMS.gpg and manifest.json.gpg with it first; a missing or other signature fails.
        #[arg(long, value_name = "PUBLIC_KEY")]
        key: Option<PathBuf>,
        /// Also build the set again from its manifest.json into a temporary folder and compare every output byte for byte.
        #[arg(long)]
        rebuild: bool,
        /// The user-data the set was built with (--rebuild; the manifest keeps only its sha256).
        #[arg(long, value_name = "FILE", requires = "rebuild")]
        user_data: Option<PathBuf>,
    },
    /// Sign an output folder's SHA256SUMS and manifest.json (detached OpenPGP signatures, `gpg --verify` checks them).
    Sign {
        /// The output folder.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        key: SignKeyArgs,
    },
    /// Build the provider image(s), the installer ISO(s) and SHA256SUMS in one run.
    Build(BuildArgs),
    /// Check and render user-data documents.
    #[command(subcommand)]
    UserData(UserDataCommand),
    /// Write a site user-data medium (ISO 9660 labelled cidata, not bootable) that an installed host applies over its installer's user-data at first boot; one per site with --sites.
    SiteMedia(Box<SiteMediaArgs>),
    /// Write the rendered overlay trees and the template context of each variant, to see exactly what goes in.
    Render(RenderArgs),
    /// Write one deterministic layer (gzip or zstd) from a folder or tarball and print its digests.
    Layer(LayerArgs),
    /// Flatten an image (OCI layout, oci-archive or docker-archive) into a root filesystem folder.
    Unpack(UnpackArgs),
    /// Secure Boot keys for UKI ISOs (`boot: uki`).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a Secure Boot key set: PK, KEK and db keys (0600) and certificates, EFI signature lists and signed .auth updates for enrolment.
    Generate(KeysGenerateArgs),
}

#[derive(Args)]
pub struct KeysGenerateArgs {
    /// The key set's name: in the certificates' subjects and the ISO's /loader/keys/NAME.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The folder to create (must not exist).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 3650, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub expiration_days: u32,
    /// Also enrol Microsoft's certificates (for option ROMs and Microsoft-signed loaders): a folder with KEK/ (Microsoft's KEK CA) and db/ (its Windows Production and UEFI CAs), DER or PEM.
    #[arg(long, value_name = "DIR")]
    pub microsoft_certs: Option<PathBuf>,
}

/// The signing key: a file or the user's GnuPG agent, never the key itself
/// on the command line.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct SignKeyArgs {
    /// An exported OpenPGP secret key without passphrase (`gpg --export-secret-keys`), imported into a temporary keyring removed afterwards.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A key in your GnuPG keyring (GNUPGHOME), used through gpg-agent: fingerprint, key ID or user ID.
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
}

/// Optional signing for `build`.
#[derive(Args)]
#[group(required = false, multiple = false)]
pub struct BuildSignArgs {
    /// Sign SHA256SUMS and manifest.json with this exported OpenPGP secret key (file) once the outputs are committed.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Sign with this key of your GnuPG keyring, through gpg-agent.
    #[arg(long, value_name = "ID")]
    pub sign_key_id: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// {"variants": [...]} with every detail.
    Json,
    /// {"include": [...]} for a GitHub Actions matrix.
    Github,
    /// Aligned columns for people.
    Table,
}

/// Where the user-data comes from: a ready file, or a site rendered through
/// templates/user-data.tera with the token from the environment or a file.
#[derive(Args)]
pub struct UserDataArgs {
    /// A ready user-data file (`#cloud-config`), embedded at /config.yaml.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["site", "site_values", "token_env", "token_file"])]
    pub user_data: Option<PathBuf>,
    /// A site file (name, palette_endpoint, project_name, tags, network, token_env/token_file) to render templates/user-data.tera with.
    #[arg(long, value_name = "FILE")]
    pub site: Option<PathBuf>,
    /// A site value, e.g. --site-value name=store-42 or network.nameserver=10.0.0.1 (repeatable).
    #[arg(long = "site-value", value_name = "KEY=VALUE")]
    pub site_values: Vec<String>,
    /// The environment variable that holds the registration token.
    #[arg(long, value_name = "VAR", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// A file (mode 0600) that holds the registration token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Refused: a token on the command line ends up in shell history and process listings. Use --token-env or --token-file.
    #[arg(long, value_name = "VALUE")]
    pub token: Option<String>,
}

/// Whose templates render a site outside a build (`iso embed`, `disk
/// embed`, `site-media`); flattened beside [`UserDataArgs`], whose
/// `--user-data` needs no rendering.
#[derive(Args)]
pub struct SiteTemplateArgs {
    /// Render site user-data with this definition's templates: folder and variables (as `user-data render` does) [default: templates/ of the current folder].
    #[arg(long, value_name = "IMAGE_YAML", conflicts_with = "user_data")]
    pub definition: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum UserDataCommand {
    /// Check a user-data document as the Palette edge installer reads it: header, YAML, field types and formats.
    Validate {
        /// The user-data file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Check it as a site override (a site medium's user-data): any subset of keys, nothing required.
        #[arg(long = "override")]
        site_override: bool,
    },
    /// Render templates/user-data.tera for a site; written 0600 with -o, else printed with secrets masked.
    Render {
        #[command(flatten)]
        def: DefinitionArgs,
        #[command(flatten)]
        user_data: UserDataArgs,
        /// The file to write (created 0600).
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// The image definition and its overrides.
#[derive(Args)]
pub struct DefinitionArgs {
    /// Image definition (images/*.yaml).
    #[arg(value_name = "IMAGE_YAML")]
    pub definition: PathBuf,
    /// Override a definition field, e.g. --set kubernetes.version=1.30.5 (repeatable; dotted keys).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Args)]
pub struct ProviderImageArgs {
    #[command(flatten)]
    pub def: DefinitionArgs,
    /// Output folder.
    #[arg(short, long, default_value = "build", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct IsoCommand {
    #[command(subcommand)]
    pub action: Option<IsoAction>,
    #[command(flatten)]
    pub build: IsoArgs,
}

#[derive(Subcommand)]
pub enum IsoAction {
    /// Print an ISO's volume label, boot modes, checksum and embedded user-data (masked unless --reveal).
    Show {
        #[arg(value_name = "ISO")]
        iso: PathBuf,
        /// Print the user-data with its secrets.
        #[arg(long)]
        reveal: bool,
    },
    /// Write per-site ISOs from a golden ISO (built with --golden) by replacing its reserved user-data area.
    Embed(Box<EmbedArgs>),
}

#[derive(Args)]
pub struct BundleCommand {
    #[command(subcommand)]
    pub action: Option<BundleAction>,
    /// Images as [NAME=][oci:|oci-archive:|docker-archive:]PATH or [NAME=][docker://]HOST/REPOSITORY[:TAG][@sha256:...]; NAME defaults to the file name or the reference. A NAME that is a registry reference is the image's reference in bundle.json.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The bundle to write (.tar.zst).
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Which platform to take from multi-platform images.
    #[arg(long, default_value = "amd64", value_parser = ["amd64", "arm64"])]
    pub arch: String,
}

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Remove cached layers not used for some days (or all of them).
    Prune {
        /// Remove entries not used for this many days.
        #[arg(long, default_value_t = 30, value_name = "DAYS")]
        older_than: u64,
        /// Remove every entry.
        #[arg(long)]
        all: bool,
    },
}

impl Cli {
    /// The cache folder in effect, if any.
    pub fn cache(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(base.join("edgeforge"))
        })
    }
}

#[derive(Subcommand)]
pub enum BundleAction {
    /// Re-hash every blob of a bundle, offline; names the image and blob of any damage.
    Verify {
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
    },
    /// Push every image of a bundle into a registry under its original repository path and tag, checking each digest.
    Load {
        /// The bundle (.tar.zst) `edgeforge bundle` wrote; its images need a registry reference in bundle.json.
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The registry: HOST[:PORT][/PREFIX]; an image quay.io/kairos/ubuntu:22.04 goes to HOST/PREFIX/kairos/ubuntu:22.04.
        #[arg(long, value_name = "REGISTRY")]
        to: String,
    },
}

#[derive(Args)]
pub struct EmbedArgs {
    /// The golden ISO.
    #[arg(value_name = "GOLDEN_ISO")]
    pub golden: PathBuf,
    #[command(flatten)]
    pub user_data: UserDataArgs,
    /// A sites file (`sites:` list of name, palette_endpoint, ..., token_env/token_file): one ISO per site.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["user_data", "site", "site_values", "remove", "out"], requires = "out_dir")]
    pub sites: Option<PathBuf>,
    /// Empty the reserved area again (the golden state).
    // The conflict with --definition is declared here: its shared
    // declaration cannot name an argument only `iso embed` has.
    #[arg(long, conflicts_with_all = ["user_data", "site", "site_values", "definition"])]
    pub remove: bool,
    /// The ISO to write (one site, or --remove).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The folder for per-site ISOs (with --sites).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub templates: SiteTemplateArgs,
}

#[derive(Args)]
pub struct SiteMediaArgs {
    #[command(flatten)]
    pub user_data: UserDataArgs,
    /// A sites file (`sites:` list of name, palette_endpoint, ..., token_env/token_file): one medium per site, DIR/<site>-user-data.iso; all are checked before any is written.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["user_data", "site", "site_values", "out"], requires = "out_dir")]
    pub sites: Option<PathBuf>,
    /// The medium to write (created 0600) [default: build/<site>-user-data.iso, or build/site-user-data.iso with --user-data].
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The folder for per-site media (with --sites).
    #[arg(long, value_name = "DIR", requires = "sites")]
    pub out_dir: Option<PathBuf>,
    /// Also write each medium as a FAT image labelled CIDATA for USB sticks (<medium>.img, beside the ISO).
    #[arg(long)]
    pub fat: bool,
    #[command(flatten)]
    pub templates: SiteTemplateArgs,
}

#[derive(Args)]
pub struct IsoArgs {
    /// Image definition (images/*.yaml).
    #[arg(value_name = "IMAGE_YAML")]
    pub definition: Option<PathBuf>,
    /// Override a definition field, e.g. --set kubernetes.version=1.30.5 (repeatable; dotted keys).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub user_data: UserDataArgs,
    /// Build a golden ISO: /config.yaml is a fixed-size reserved area (iso.reserved_area, 64 KiB by default; user-data optional) for `iso embed`.
    #[arg(long)]
    pub golden: bool,
    /// The key set (`keys generate`) that signs a `boot: uki` ISO (overrides secure_boot_keys).
    #[arg(long, value_name = "DIR")]
    pub secure_boot_keys: Option<PathBuf>,
    /// The provider image archive [default: OUT/<repo>-<tag>.oci.tar, as `provider-image` writes it].
    #[arg(long, value_name = "FILE", conflicts_with = "rootfs")]
    pub provider_image: Option<PathBuf>,
    /// An already flattened root filesystem to use instead of a provider image.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Output folder.
    #[arg(short, long, default_value = "build", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct DiskCommand {
    #[command(subcommand)]
    pub action: Option<DiskAction>,
    #[command(flatten)]
    pub build: DiskArgs,
}

#[derive(Subcommand)]
pub enum DiskAction {
    /// Write a per-site disk from a golden one (raw, raw.zst, raw.gz, qcow2, VMDK or OVA, kept in its format) with the site's user-data in COS_OEM.
    Embed(Box<DiskEmbedArgs>),
}

#[derive(Args)]
pub struct DiskEmbedArgs {
    /// The golden disk image (any disk edgeforge wrote: its OEM area is always reserved).
    #[arg(value_name = "GOLDEN_DISK")]
    pub golden: PathBuf,
    #[command(flatten)]
    pub user_data: UserDataArgs,
    /// The disk to write (created 0600), in the golden disk's format and with its extension.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub templates: SiteTemplateArgs,
}

#[derive(Args)]
pub struct DiskArgs {
    /// Image definition (images/*.yaml).
    #[arg(value_name = "IMAGE_YAML")]
    pub definition: Option<PathBuf>,
    /// Override a definition field, e.g. --set disk.size=8G (repeatable; dotted keys).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub user_data: UserDataArgs,
    /// Build a golden disk: no user-data needed (COS_OEM's area holds an empty document) for `disk embed`.
    #[arg(long)]
    pub golden: bool,
    /// Formats to write (repeatable or comma-separated): raw, raw.zst, raw.gz, qcow2, vmdk, ova [default: disk.formats, else raw].
    #[arg(long = "format", value_name = "FORMAT", value_delimiter = ',', value_parser = parse_disk_format)]
    pub formats: Vec<crate::disk::Format>,
    /// The provider image archive [default: OUT/<repo>-<tag>.oci.tar, as `provider-image` writes it].
    #[arg(long, value_name = "FILE", conflicts_with = "rootfs")]
    pub provider_image: Option<PathBuf>,
    /// An already flattened root filesystem to use instead of a provider image.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Output folder.
    #[arg(short, long, default_value = "build", value_name = "DIR")]
    pub out: PathBuf,
}

fn parse_disk_format(text: &str) -> Result<crate::disk::Format, String> {
    crate::disk::Format::parse(text).ok_or_else(|| {
        format!("`{text}` is not a disk format; give raw, raw.zst, raw.gz, qcow2, vmdk or ova")
    })
}

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub def: DefinitionArgs,
    #[command(flatten)]
    pub user_data: UserDataArgs,
    /// Build a golden ISO: /config.yaml is a fixed-size reserved area (iso.reserved_area, 64 KiB by default; user-data optional) for `iso embed`.
    #[arg(long)]
    pub golden: bool,
    /// The key set (`keys generate`) that signs a `boot: uki` ISO (overrides secure_boot_keys).
    #[arg(long, value_name = "DIR")]
    pub secure_boot_keys: Option<PathBuf>,
    /// Build only this variant (a name `edgeforge plan` lists).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// Output folder.
    #[arg(short, long, default_value = "build", value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub sign: BuildSignArgs,
    /// Push each provider image to its registry/repository:tag before the outputs are committed; manifest.json records reference@digest.
    #[arg(long)]
    pub push: bool,
}

#[derive(Args)]
pub struct PushArgs {
    /// The provider image (an oci-archive `provider-image` or `build` wrote).
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Where to push: HOST/REPOSITORY[:TAG] [default: the registry/repository:tag the archive was built for].
    #[arg(value_name = "REF")]
    pub reference: Option<String>,
    /// The archive's platform.
    #[arg(long, default_value = "amd64", value_parser = ["amd64", "arm64"])]
    pub arch: String,
}

#[derive(Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub def: DefinitionArgs,
    /// Folder to write `<variant>/rootfs`, `<variant>/iso` and `<variant>/context.json` into.
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct LayerArgs {
    /// A folder, or a tarball (.tar, .tar.gz, .tar.zst).
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// The layer file to write (.tar.gz, or .tar.zst with --compression zstd).
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where the content lands in the image root.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub destination: String,
    /// How the layer is compressed (on every core; EDGEFORGE_THREADS=N uses N threads, with the same bytes).
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: crate::layer::LayerCompression,
}

#[derive(Args)]
pub struct UnpackArgs {
    /// The image: [oci:|oci-archive:|docker-archive:]PATH.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The folder to create (must not exist).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which platform to take from a multi-platform index.
    #[arg(long, default_value = "amd64", value_parser = ["amd64", "arm64"])]
    pub arch: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
