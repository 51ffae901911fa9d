//! The host tools edgeforge drives (all from Debian packages): checking they
//! are there, and running them through xshell with their exact command line
//! logged at `--verbose`. Secrets never go on a command line: tools get paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use anyhow::Context;
use xshell::{Cmd, Shell};

use crate::error::{fail, Category};
use crate::log::verbose;

/// A program or data folder and the Debian package that provides it.
pub struct Requirement {
    pub what: &'static str,
    pub package: &'static str,
    kind: Kind,
}

enum Kind {
    /// A program, and the flag that makes it print its version.
    Program(&'static str),
    Folder,
}

pub const XORRISO: Requirement = program("xorriso", "xorriso", "-version");
pub const MKSQUASHFS: Requirement = program("mksquashfs", "squashfs-tools", "-version");
pub const MFORMAT: Requirement = program("mformat", "mtools", "--version");
pub const MMD: Requirement = program("mmd", "mtools", "--version");
pub const MCOPY: Requirement = program("mcopy", "mtools", "--version");
pub const GRUB_MKIMAGE: Requirement = program("grub-mkimage", "grub-common", "--version");
pub const GRUB_PC: Requirement = folder("/usr/lib/grub/i386-pc", "grub-pc-bin");
pub const GRUB_EFI: Requirement = folder("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin");
/// OpenPGP signing and signature checks (`sign`, `build --sign-key`, `verify --key`).
pub const GPG: Requirement = program("gpg", "gnupg", "--version");

/// Pulls and pushes registry images (`base_image` references, `push`, `bundle load`).
pub const SKOPEO: Requirement = program("skopeo", "skopeo", "--version");
/// Secure Boot key sets (`keys generate`).
pub const OPENSSL: Requirement = program("openssl", "openssl", "version");
pub const CERT_TO_ESL: Requirement = program("cert-to-efi-sig-list", "efitools", "--version");
pub const SIGN_ESL: Requirement = program("sign-efi-sig-list", "efitools", "--version");
pub const KEYS: [&Requirement; 3] = [&OPENSSL, &CERT_TO_ESL, &SIGN_ESL];
/// UKI ISOs (`boot: uki`): UKI assembly and signing.
pub const OBJCOPY: Requirement = program("objcopy", "binutils", "--version");
pub const OSSLSIGNCODE: Requirement = program("osslsigncode", "osslsigncode", "--version");
/// The host's systemd-boot and UKI stub, used when the image has none.
pub const SYSTEMD_BOOT_EFI: Requirement = folder("/usr/lib/systemd/boot/efi", "systemd-boot-efi");
pub const UKI: [&Requirement; 2] = [&OBJCOPY, &OSSLSIGNCODE];
/// The appliance disk stage's file systems (besides the ISO stage's tools).
pub const MKE2FS: Requirement = program("mke2fs", "e2fsprogs", "-V");
pub const DEBUGFS: Requirement = program("debugfs", "e2fsprogs", "-V");
pub const DISK: [&Requirement; 2] = [&MKE2FS, &DEBUGFS];
/// qcow2, VMDK and OVA outputs of the disk stage.
pub const QEMU_IMG: Requirement = program("qemu-img", "qemu-utils", "--version");

/// What the ISO stage runs.
pub const BUILD: [&Requirement; 8] = [
    &XORRISO,
    &MKSQUASHFS,
    &MFORMAT,
    &MMD,
    &MCOPY,
    &GRUB_MKIMAGE,
    &GRUB_PC,
    &GRUB_EFI,
];
/// What the test suite and boot checks use besides.
pub const CHECKS: [Requirement; 15] = [
    program("sbverify", "sbsigntool", "--version"),
    program("umoci", "umoci", "--version"),
    program("qemu-system-x86_64", "qemu-system-x86", "--version"),
    folder("/usr/share/OVMF", "ovmf"),
    program("unsquashfs", "squashfs-tools", "-version"),
    program("isoinfo", "genisoimage", "-version"),
    // tests/registry.rs: a TLS registry with htpasswd logins on 127.0.0.1.
    program("docker-registry", "docker-registry", "--version"),
    // No version option (its -v verifies a password and prints usage).
    program("htpasswd", "apache2-utils", ""),
    // `zstd -t` on zstd layers; pigz is the layer benchmark's reference.
    program("zstd", "zstd", "--version"),
    program("pigz", "pigz", "--version"),
    // The man pages (`man --out`) format without warnings.
    program("groff", "groff-base", "--version"),
    // The disk tests read the partition table and check the file systems.
    program("sfdisk", "fdisk", "--version"),
    program("sgdisk", "gdisk", "--version"),
    program("fsck.ext4", "e2fsprogs", "-V"),
    program("fsck.vfat", "dosfstools", "--help"),
];

const fn program(
    what: &'static str,
    package: &'static str,
    version_flag: &'static str,
) -> Requirement {
    Requirement {
        what,
        package,
        kind: Kind::Program(version_flag),
    }
}

const fn folder(what: &'static str, package: &'static str) -> Requirement {
    Requirement {
        what,
        package,
        kind: Kind::Folder,
    }
}

impl Requirement {
    fn present(&self) -> bool {
        match self.kind {
            Kind::Folder => Path::new(self.what).is_dir(),
            Kind::Program(_) => find_program(self.what).is_some(),
        }
    }

    /// The first line the tool prints about its version, or the folder's
    /// presence; `None` when missing.
    pub fn version(&self) -> Option<String> {
        if !self.present() {
            return None;
        }
        match self.kind {
            Kind::Folder => Some("present".into()),
            // A tool with no version option (see `program`'s callers).
            Kind::Program("") => Some("present".into()),
            Kind::Program(flag) => {
                let out = std::process::Command::new(self.what)
                    .arg(flag)
                    .output()
                    .ok()?;
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(
                    text.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("(no version printed)")
                        .trim()
                        .to_string(),
                )
            }
        }
    }
}

/// The versions of the build tools, probed once per run and in parallel
/// (each probe starts a process).
pub fn build_versions() -> &'static BTreeMap<&'static str, String> {
    static VERSIONS: OnceLock<BTreeMap<&'static str, String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        std::thread::scope(|s| {
            let probes: Vec<_> = BUILD
                .iter()
                .map(|r| s.spawn(move || (r.what, r.version())))
                .collect();
            probes
                .into_iter()
                .filter_map(|p| match p.join() {
                    Ok((what, Some(v))) => Some((what, v)),
                    _ => None,
                })
                .collect()
        })
    })
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Fails listing every missing requirement with its package, so one
/// `apt-get install` fixes them all.
pub fn require(reqs: &[&Requirement]) -> anyhow::Result<()> {
    let missing: Vec<&&Requirement> = reqs.iter().filter(|r| !r.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|r| r.package).collect();
    packages.dedup();
    let list = missing
        .iter()
        .map(|r| format!("{} (Debian package {})", r.what, r.package))
        .collect::<Vec<_>>()
        .join(", ");
    Err(fail(
        Category::MissingTool,
        format!("missing host tools: {list}; install them with `apt-get install {}` or scripts/install-host-tools.sh", packages.join(" ")),
    ))
}

pub fn shell() -> anyhow::Result<Shell> {
    Shell::new().context("starting a shell for host tools")
}

/// Runs a command to completion; a failure carries the tail of its stderr.
pub fn run(cmd: Cmd<'_>) -> anyhow::Result<()> {
    verbose!("$ {cmd}");
    let shown = cmd.to_string();
    let out = cmd
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {shown}"))?;
    succeeded(&shown, &out)
}

/// Runs `cmd` with its standard output going to `out`; a failure carries its stderr.
pub fn run_to_file(cmd: Cmd<'_>, out: std::fs::File) -> anyhow::Result<()> {
    verbose!("$ {cmd}");
    let shown = cmd.to_string();
    let mut command: std::process::Command = cmd.into();
    // Kept to ask the output's filesystem for free space if the tool fails.
    let probe = out.try_clone().ok();
    let done = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {shown}"))?;
    let full = !done.status.success() && probe.as_ref().is_some_and(no_space_left);
    finished(&shown, &done, full)
}

/// Runs `cmd` with what `feed` writes as its standard input (through a
/// 1 MiB buffer, from a thread that gets EPIPE rather than SIGPIPE); a
/// failure carries its stderr. When the tool fails, its failure is the one
/// reported; when feeding fails otherwise, that is (the tool then saw a cut
/// input). A tool that succeeded without reading the end of its input
/// (mksquashfs stops at a tar's first end block) succeeded.
pub fn run_fed(
    cmd: Cmd<'_>,
    feed: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send,
) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    verbose!("$ {cmd}");
    let shown = cmd.to_string();
    let mut command: std::process::Command = cmd.into();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown}"))?;
    let stdin = child.stdin.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (fed, err) = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut err = Vec::new();
            let _ = stderr.read_to_end(&mut err);
            err
        });
        let feeder = s.spawn(move || {
            crate::io::sigpipe::block_in_this_thread();
            let mut input = std::io::BufWriter::with_capacity(1 << 20, stdin);
            feed(&mut input).and_then(|()| input.flush())
            // Dropping `input` closes stdin: the input is complete.
        });
        let fed = feeder.join().expect("feeding does not panic");
        (fed, reader.join().unwrap_or_default())
    });
    let status = child
        .wait()
        .with_context(|| format!("waiting for {shown}"))?;
    let broken_pipe = matches!(&fed, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
    if !broken_pipe {
        fed.with_context(|| format!("feeding {shown}"))?;
    }
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: err,
    };
    succeeded(&shown, &out)
}

/// A failure names the command and ends with the last lines of its stderr.
fn succeeded(shown: &str, out: &std::process::Output) -> anyhow::Result<()> {
    finished(shown, out, false)
}

/// What tools print when the disk fills up: strerror(ENOSPC), and xorriso's
/// own check before it writes.
const DISK_FULL: [&str; 2] = ["No space left on device", "exceeds free space on media"];

/// A tool that ran out of disk space (`full`, or saying so) failed on I/O
/// (exit 5): the fix is free space, not a change to the build.
fn finished(shown: &str, out: &std::process::Output, full: bool) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    if full || DISK_FULL.iter().any(|s| stderr.contains(s)) {
        return Err(fail(
            Category::Io,
            format!("`{shown}` failed ({}): out of disk space; free some where the output goes or choose another --out:\n{}", out.status, tail.join("\n")),
        ));
    }
    Err(fail(
        Category::Build,
        format!("`{shown}` failed ({}):\n{}", out.status, tail.join("\n")),
    ))
}

/// Whether the filesystem holding `f` has no block left for us.
fn no_space_left(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid open descriptor and a pointer to writable statvfs storage.
    let r = unsafe { libc::fstatvfs(f.as_raw_fd(), st.as_mut_ptr()) };
    // SAFETY: fstatvfs filled it when it returned 0.
    r == 0 && unsafe { st.assume_init() }.f_bavail == 0
}
