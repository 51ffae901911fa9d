//! A Secure Boot key set: PK, KEK and db key pairs with X.509 certificates
//! (openssl), their EFI signature lists and the signed `.auth` updates
//! firmware enrolment takes (efitools: PK self-signed, KEK signed by PK, db
//! signed by KEK). Microsoft's certificates, when the user gives them, are
//! appended to KEK and db under Microsoft's owner GUID.
//!
//! Private keys are made by openssl straight into a 0700 staging folder with
//! mode 0600, go to tools as paths only, and are never read by edgeforge.
//! The staging folder is removed on every error, and on SIGINT, SIGTERM or
//! SIGHUP (recorded while the set is made, then handled as an error); only
//! a SIGKILL or a crash can leave it (`.edgeforge-keys-*` beside --out).
//! Signature lists and `.auth` files are deterministic for the same
//! certificates, owner GUID and SOURCE_DATE_EPOCH (the update timestamp).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use xshell::{cmd, Shell};

use crate::error::{fail, Category};
use crate::host_tools;
use crate::log::warning;

/// Microsoft's signature owner GUID in KEK and db.
pub const MICROSOFT_GUID: &str = "77fa9abd-0359-4d32-bd60-28f4e78f784b";
/// The three variables, each signed by the key before it (PK by itself).
pub const VARS: [&str; 3] = ["PK", "KEK", "db"];
/// The metadata file of a key set.
const META: &str = "keys.json";
const SCHEMA: &str = "edgeforge.keys/v1";

/// `keys.json`: what a key set is, without any key material.
#[derive(Serialize, Deserialize)]
pub struct KeySetMeta {
    pub schema: String,
    pub name: String,
    pub owner_guid: String,
    /// sha256 of each of our certificates (DER), by variable.
    pub certificates: Vec<Certificate>,
    /// sha256 (DER) of the Microsoft certificates appended to KEK and db.
    pub microsoft: Vec<Certificate>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct Certificate {
    pub var: String,
    pub file: String,
    pub sha256: String,
}

pub struct Generate<'a> {
    pub name: &'a str,
    pub out: &'a Path,
    pub expiration_days: u32,
    /// A folder with `KEK/` and `db/` holding Microsoft's certificates (DER or PEM).
    pub microsoft: Option<&'a Path>,
    pub epoch: u64,
}

impl Generate<'_> {
    /// Writes the key set into `out`, which must not exist: staged in a 0700
    /// folder beside it and renamed into place when complete.
    pub fn run(&self) -> anyhow::Result<KeySetMeta> {
        check_name(self.name)?;
        if fs::symlink_metadata(self.out).is_ok() {
            return Err(fail(
                Category::Usage,
                format!(
                    "{} already exists; keys are never overwritten: choose a new --out",
                    self.out.display()
                ),
            ));
        }
        host_tools::require(&host_tools::KEYS)?;
        let microsoft = match self.microsoft {
            Some(dir) => microsoft_certs(dir)?,
            None => Vec::new(),
        };
        let parent = match self.out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let interrupts = Interrupts::catch();
        let stage = tempfile::Builder::new()
            .prefix(".edgeforge-keys-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a folder in {}", parent.display()))?;
        let dir = stage.path().join("keys");
        fs::create_dir(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        let made = self.write_set(&dir, &microsoft, &interrupts);
        // An interruption wins over the error of the tool it killed.
        interrupts.check()?;
        let meta = made?;
        // Never over what appeared at --out meanwhile (an empty folder, a
        // symlink would be replaced by a plain rename).
        crate::io::rename_noreplace(&dir, self.out).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST | libc::ENOTEMPTY | libc::ENOTDIR) => fail(
                Category::Usage,
                format!(
                    "{} already exists; keys are never overwritten: choose a new --out",
                    self.out.display()
                ),
            ),
            _ => anyhow::Error::new(e)
                .context(format!("renaming the key set into {}", self.out.display())),
        })?;
        Ok(meta)
    }

    /// Makes the key set in the staging folder `dir`.
    fn write_set(
        &self,
        dir: &Path,
        microsoft: &[(String, PathBuf)],
        interrupts: &Interrupts,
    ) -> anyhow::Result<KeySetMeta> {
        let sh = host_tools::shell()?;
        let days = self.expiration_days.to_string();
        let mut certificates = Vec::new();
        for var in VARS {
            let subj = format!("/CN={} {var}/", self.name);
            let (key, crt) = (
                dir.join(format!("{var}.key")),
                dir.join(format!("{var}.crt")),
            );
            // openssl creates private key files 0600; set again below, whatever its version does.
            host_tools::run(cmd!(
                sh,
                "openssl req -batch -new -x509 -newkey rsa:2048 -sha256 -nodes -days {days} -subj {subj} -keyout {key} -out {crt}"
            ))?;
            interrupts.check()?;
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
            fs::set_permissions(&crt, fs::Permissions::from_mode(0o644))?;
            certificates.push(Certificate {
                var: var.into(),
                file: format!("{var}.crt"),
                sha256: fingerprint(&sh, &crt)?,
            });
        }
        let ms_dir = dir.join("microsoft");
        let mut ms_meta = Vec::new();
        if !microsoft.is_empty() {
            fs::create_dir(&ms_dir)?;
        }
        let mut ms_pems: Vec<(String, PathBuf)> = Vec::new();
        for (i, (var, src)) in microsoft.iter().enumerate() {
            let pem = ms_dir.join(format!("{var}-{i}.crt"));
            to_pem(&sh, src, &pem)?;
            ms_meta.push(Certificate {
                var: var.clone(),
                file: format!("microsoft/{var}-{i}.crt"),
                sha256: fingerprint(&sh, &pem)?,
            });
            ms_pems.push((var.clone(), pem));
        }
        let guid = random_guid()?;
        fs::write(dir.join("GUID"), format!("{guid}\n"))?;
        write_lists(&sh, dir, &guid, &ms_pems, self.epoch)?;
        let meta = KeySetMeta {
            schema: SCHEMA.into(),
            name: self.name.into(),
            owner_guid: guid,
            certificates,
            microsoft: ms_meta,
        };
        fs::write(dir.join(META), serde_json::to_string_pretty(&meta)? + "\n")?;
        for e in fs::read_dir(dir)?.flatten() {
            if e.file_type()?.is_file() && !e.file_name().to_string_lossy().ends_with(".key") {
                fs::set_permissions(e.path(), fs::Permissions::from_mode(0o644))?;
            }
        }
        Ok(meta)
    }
}

/// The signal that interrupted key generation, 0 for none.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(sig: libc::c_int) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP recorded instead of ending the process while
/// private keys sit in the staging folder, so the error path removes it
/// (a killed process runs no destructor); the old actions come back on drop.
struct Interrupts {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

impl Interrupts {
    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    fn catch() -> Interrupts {
        INTERRUPTED.store(0, Ordering::SeqCst);
        let mut old = Vec::new();
        for sig in Self::SIGNALS {
            // SAFETY: zeroed sigaction is valid (empty mask, no flags); the
            // handler only stores to an atomic, which is async-signal-safe.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &act, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        Interrupts { old }
    }

    /// An error once a signal came, so the caller stops and cleans up.
    fn check(&self) -> anyhow::Result<()> {
        match INTERRUPTED.load(Ordering::SeqCst) {
            0 => Ok(()),
            sig => Err(fail(
                Category::Build,
                format!("interrupted by signal {sig}: the unfinished key set was removed"),
            )),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for (sig, prev) in &self.old {
            // SAFETY: restores an action sigaction returned.
            unsafe { libc::sigaction(*sig, prev, std::ptr::null_mut()) };
        }
    }
}

/// `<var>.esl` (our certificate, then Microsoft's for KEK and db) and
/// `<var>.auth` signed by the key above it, timestamped with the epoch.
fn write_lists(
    sh: &Shell,
    dir: &Path,
    guid: &str,
    microsoft: &[(String, PathBuf)],
    epoch: u64,
) -> anyhow::Result<()> {
    let stamp = timestamp(epoch);
    let _tz = sh.push_env("TZ", "UTC");
    for (i, var) in VARS.iter().enumerate() {
        let crt = dir.join(format!("{var}.crt"));
        let esl = dir.join(format!("{var}.esl"));
        host_tools::run(cmd!(sh, "cert-to-efi-sig-list -g {guid} {crt} {esl}"))?;
        let mut list = fs::read(&esl)?;
        for (j, (_, pem)) in microsoft.iter().enumerate().filter(|(_, (v, _))| v == var) {
            let part = dir.join(format!("{var}-microsoft-{j}.esl"));
            host_tools::run(cmd!(
                sh,
                "cert-to-efi-sig-list -g {MICROSOFT_GUID} {pem} {part}"
            ))?;
            list.extend(fs::read(&part)?);
            fs::remove_file(&part)?;
        }
        fs::write(&esl, &list)?;
        let signer = VARS[i.saturating_sub(1)];
        let (key, cert) = (
            dir.join(format!("{signer}.key")),
            dir.join(format!("{signer}.crt")),
        );
        let auth = dir.join(format!("{var}.auth"));
        host_tools::run(cmd!(
            sh,
            "sign-efi-sig-list -t {stamp} -g {guid} -k {key} -c {cert} {var} {esl} {auth}"
        ))?;
    }
    Ok(())
}

/// The update timestamp as sign-efi-sig-list parses it (`%Y-%m-%d %H:%M:%S`,
/// read as UTC with TZ=UTC); anything else it silently takes as year 1900.
fn timestamp(epoch: u64) -> String {
    let (y, m, d) = civil_from_days((epoch / 86_400) as i64);
    let secs = epoch % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A version 4 GUID: the owner of our signature list entries.
fn random_guid() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom")?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Names go into certificate subjects and ISO paths: keep them plain.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(fail(
            Category::Usage,
            format!("key set name `{name}`: use 1-64 letters, digits, `-`, `_` or `.` (not first)"),
        ))
    }
}

/// The certificates in `dir/KEK` and `dir/db` (any file: DER or PEM),
/// sorted by name, as (variable, path).
fn microsoft_certs(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for var in ["KEK", "db"] {
        let sub = dir.join(var);
        let Ok(rd) = fs::read_dir(&sub) else { continue };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|p| (var.to_string(), p)));
    }
    if out.is_empty() {
        return Err(fail(
            Category::InvalidInput,
            format!("--microsoft-certs {}: no certificates in its KEK/ or db/ folder; put Microsoft's KEK CA in KEK/ and its Windows Production and UEFI CAs in db/ (DER or PEM)", dir.display()),
        ));
    }
    Ok(out)
}

/// Converts a DER or PEM certificate to PEM (efitools reads PEM only).
fn to_pem(sh: &Shell, src: &Path, pem: &Path) -> anyhow::Result<()> {
    let bytes = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    let form = if bytes.starts_with(b"-----BEGIN") {
        "PEM"
    } else {
        "DER"
    };
    host_tools::run(cmd!(
        sh,
        "openssl x509 -inform {form} -in {src} -outform PEM -out {pem}"
    ))
    .map_err(|e| {
        fail(
            Category::InvalidInput,
            format!(
                "{} is not an X.509 certificate (DER or PEM): {e:#}",
                src.display()
            ),
        )
    })
}

/// sha256 of a PEM certificate's DER bytes.
pub fn fingerprint(sh: &Shell, pem: &Path) -> anyhow::Result<String> {
    let der = cmd!(sh, "openssl x509 -in {pem} -outform DER")
        .quiet()
        .output()
        .with_context(|| format!("reading certificate {}", pem.display()))?
        .stdout;
    Ok(format!("{:x}", Sha256::digest(der)))
}

/// A key set folder as a build uses it: the db certificate and key (paths
/// only) and the `.auth` files to enrol.
pub struct KeySet {
    pub dir: PathBuf,
    pub meta: KeySetMeta,
}

impl KeySet {
    pub fn open(dir: &Path) -> anyhow::Result<KeySet> {
        let meta_path = dir.join(META);
        let text = fs::read(&meta_path).map_err(|e| {
            fail(
                Category::InvalidInput,
                format!(
                    "{}: {e}; give a folder made by `edgeforge keys generate`",
                    meta_path.display()
                ),
            )
        })?;
        let meta: KeySetMeta = serde_json::from_slice(&text).map_err(|e| {
            fail(
                Category::InvalidInput,
                format!("{}: {e}", meta_path.display()),
            )
        })?;
        let set = KeySet {
            dir: dir.to_path_buf(),
            meta,
        };
        let mut needed = vec![set.db_key(), set.db_cert()];
        needed.extend(VARS.iter().map(|v| set.auth(v)));
        for p in needed {
            if !p.is_file() {
                return Err(fail(
                    Category::InvalidInput,
                    format!(
                        "{} is missing from the key set {}",
                        p.display(),
                        dir.display()
                    ),
                ));
            }
        }
        let mode = fs::metadata(set.db_key())?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(fail(
                Category::SecretRefused,
                format!(
                    "{} is readable by others (mode {:o}); chmod 0600 it",
                    set.db_key().display(),
                    mode & 0o777
                ),
            ));
        }
        set.check_db()?;
        Ok(set)
    }

    /// The db certificate is the one `keys.json` records and belongs to
    /// db.key (a folder mixing two sets would sign binaries the enrolled
    /// firmware refuses).
    fn check_db(&self) -> anyhow::Result<()> {
        host_tools::require(&[&host_tools::OPENSSL])?;
        let sh = host_tools::shell()?;
        let (crt, key) = (self.db_cert(), self.db_key());
        let found = fingerprint(&sh, &crt)?;
        if found != self.db_fingerprint() {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "{} (sha256:{found}) is not the db certificate {} records (sha256:{}); use the key set as `keys generate` made it",
                    crt.display(),
                    self.dir.join(META).display(),
                    self.db_fingerprint()
                ),
            ));
        }
        // Public keys only; an empty passphrase makes an encrypted key
        // fail here instead of prompting.
        let public = |c: xshell::Cmd| c.quiet().ignore_status().output().map(|o| o.stdout);
        let of_cert = public(cmd!(sh, "openssl x509 -noout -pubkey -in {crt}"))?;
        let of_key = public(cmd!(sh, "openssl pkey -pubout -passin pass: -in {key}"))?;
        if of_key.is_empty() || of_cert != of_key {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "{} is not the private key of {} (or needs a passphrase); use the key set as `keys generate` made it",
                    key.display(),
                    crt.display()
                ),
            ));
        }
        Ok(())
    }

    /// Warns when the db certificate has expired: only warned, since
    /// firmware does not check dates and machines enrolled with it still
    /// boot what it signs.
    pub fn warn_if_expired(&self) -> anyhow::Result<()> {
        let sh = host_tools::shell()?;
        let crt = self.db_cert();
        let expired = !cmd!(sh, "openssl x509 -checkend 0 -noout -in {crt}")
            .quiet()
            .ignore_status()
            .output()?
            .status
            .success();
        if expired {
            let end = cmd!(sh, "openssl x509 -noout -enddate -in {crt}")
                .quiet()
                .read()?;
            warning!(
                "{} has expired ({}): firmware does not check the dates, so machines enrolled with it still boot this ISO; make a new key set (`keys generate`) for new machines",
                crt.display(),
                end.trim_start_matches("notAfter=")
            );
        }
        Ok(())
    }

    pub fn db_key(&self) -> PathBuf {
        self.dir.join("db.key")
    }

    pub fn db_cert(&self) -> PathBuf {
        self.dir.join("db.crt")
    }

    pub fn auth(&self, var: &str) -> PathBuf {
        self.dir.join(format!("{var}.auth"))
    }

    /// The db certificate's sha256 as `keys.json` records it.
    pub fn db_fingerprint(&self) -> &str {
        self.meta
            .certificates
            .iter()
            .find(|c| c.var == "db")
            .map_or("", |c| c.sha256.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_dates_and_times() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00:00");
    }

    /// The same certificates, owner and epoch give the same lists and
    /// updates (sign-efi-sig-list signs without a signing time).
    #[test]
    fn lists_and_updates_are_deterministic() {
        let t = tempfile::tempdir().unwrap();
        let sh = host_tools::shell().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        for var in VARS {
            let (key, crt) = (a.join(format!("{var}.key")), a.join(format!("{var}.crt")));
            let subj = format!("/CN=t {var}/");
            host_tools::run(cmd!(sh, "openssl req -batch -new -x509 -newkey rsa:2048 -nodes -days 1 -subj {subj} -keyout {key} -out {crt}")).unwrap();
        }
        fs::create_dir_all(&b).unwrap();
        for e in fs::read_dir(&a).unwrap().flatten() {
            fs::copy(e.path(), b.join(e.file_name())).unwrap();
        }
        let guid = "11111111-2222-4333-8444-555555555555";
        write_lists(&sh, &a, guid, &[], 1_700_000_000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write_lists(&sh, &b, guid, &[], 1_700_000_000).unwrap();
        for var in VARS {
            for ext in ["esl", "auth"] {
                let f = format!("{var}.{ext}");
                assert_eq!(
                    fs::read(a.join(&f)).unwrap(),
                    fs::read(b.join(&f)).unwrap(),
                    "{f}"
                );
            }
        }
    }

    #[test]
    fn names_stay_plain() {
        assert!(check_name("acme-edge_1.0").is_ok());
        for bad in ["", ".x", "a b", "a/b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
