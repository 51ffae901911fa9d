//! OpenPGP detached signatures made and checked by `gpg`, the verifier
//! Debian (`Release.gpg`) and mkosi (`SHA256SUMS.gpg`) releases use, so
//! anyone checks a release with `gpg --verify SHA256SUMS.gpg SHA256SUMS`
//! and no edgeforge.
//!
//! Keys come from a file or the user's agent, never from the command line:
//! a key file (an exported secret key) is imported into a temporary
//! `GNUPGHOME` (0700, in the system's temporary folder, never the output
//! folder) that is removed, with its agent, when done; `--key-id` signs with
//! the user's own keyring and agent. Checking imports the given public key
//! into a fresh temporary keyring, so only a signature by that key passes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::checksums;
use crate::error::{fail, Category};
use crate::host_tools;
use crate::log::{info, verbose};
use crate::manifest;
use crate::release::provenance;

/// The signature of `file`: `file.gpg`, a binary detached signature.
pub fn sig_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".gpg");
    PathBuf::from(p)
}

/// Where the signing key comes from.
pub enum KeySource {
    /// An exported OpenPGP secret key without passphrase (armored or binary).
    File(PathBuf),
    /// A key in the user's own keyring (`GNUPGHOME`), used through its agent.
    Id(String),
}

/// A temporary GNUPGHOME, removed with its agent when dropped.
struct TempHome(tempfile::TempDir);

impl TempHome {
    fn new() -> anyhow::Result<TempHome> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("edgeforge-gpg-")
            .tempdir()
            .context("creating a temporary GnuPG home")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        Ok(TempHome(dir))
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn gpg(home: Option<&TempHome>) -> Command {
    let mut c = Command::new("gpg");
    c.args(["--batch", "--no-tty", "--no-auto-key-retrieve"]);
    if let Some(h) = home {
        c.arg("--homedir").arg(h.0.path());
    }
    c
}

/// Runs `c` with `input` on stdin; its (status, stdout, stderr).
fn run(mut c: Command, input: &[u8]) -> anyhow::Result<(bool, Vec<u8>, String)> {
    verbose!("running {c:?}");
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running gpg")?;
    let mut stdin = child.stdin.take().expect("piped");
    let (status, out, err) = std::thread::scope(|s| {
        s.spawn(move || {
            let _ = stdin.write_all(input);
        });
        let mut err = Vec::new();
        let mut stderr = child.stderr.take().expect("piped");
        let e = s.spawn(move || {
            let _ = stderr.read_to_end(&mut err);
            err
        });
        let mut out = Vec::new();
        let _ = child.stdout.take().expect("piped").read_to_end(&mut out);
        let err = e.join().unwrap_or_default();
        (child.wait(), out, err)
    });
    Ok((
        status.context("waiting for gpg")?.success(),
        out,
        String::from_utf8_lossy(&err).trim().to_string(),
    ))
}

/// The fingerprints of the primary keys `--with-colons` output lists.
fn fingerprints(colons: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(colons);
    let mut out = Vec::new();
    let mut primary = false;
    for l in text.lines() {
        let f: Vec<&str> = l.split(':').collect();
        match f[0] {
            "pub" | "sec" => primary = true,
            "sub" | "ssb" => primary = false,
            "fpr" if primary && f.len() > 9 => {
                out.push(f[9].to_string());
                primary = false;
            }
            _ => {}
        }
    }
    out
}

/// Makes detached signatures with one key.
pub struct Signer {
    home: Option<TempHome>,
    fingerprint: String,
}

impl Signer {
    pub fn open(key: &KeySource) -> anyhow::Result<Signer> {
        host_tools::require(&[&host_tools::GPG])?;
        let (home, id) = match key {
            KeySource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    fail(Category::Io, format!("reading key {}: {e}", path.display()))
                })?;
                let home = TempHome::new()?;
                let mut c = gpg(Some(&home));
                c.arg("--import");
                let (ok, _, err) = run(c, &bytes)?;
                if !ok {
                    return Err(fail(
                        Category::InvalidInput,
                        format!(
                            "{} is not an OpenPGP key gpg can import: {err}",
                            path.display()
                        ),
                    ));
                }
                (Some(home), None)
            }
            KeySource::Id(id) => (None, Some(id.clone())),
        };
        let mut c = gpg(home.as_ref());
        c.args(["--with-colons", "--list-secret-keys"]);
        if let Some(id) = &id {
            c.arg("--").arg(id);
        }
        let (ok, out, err) = run(c, b"")?;
        let fprs = fingerprints(&out);
        let what = match key {
            KeySource::File(p) => p.display().to_string(),
            KeySource::Id(id) => format!("key {id} in the GnuPG keyring"),
        };
        match (ok, fprs.as_slice()) {
            (true, [one]) => Ok(Signer {
                fingerprint: one.clone(),
                home,
            }),
            (true, []) | (false, _) => Err(fail(
                Category::InvalidInput,
                format!("{what} holds no OpenPGP secret key {err}")
                    .trim()
                    .to_string(),
            )),
            (true, _) => Err(fail(
                Category::InvalidInput,
                format!(
                    "{what} holds {} secret keys; give one ({})",
                    fprs.len(),
                    fprs.join(", ")
                ),
            )),
        }
    }

    /// The signing key's fingerprint (the DSSE `keyid`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A binary detached OpenPGP signature of `data`.
    pub fn sign(&self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut c = gpg(self.home.as_ref());
        c.args(["--detach-sign", "--digest-algo", "SHA512", "--local-user"])
            .arg(format!("{}!", self.fingerprint))
            .args(["--output", "-"]);
        let (ok, out, err) = run(c, data)?;
        if !ok || out.is_empty() {
            return Err(fail(
                Category::Build,
                format!(
                    "gpg could not sign with key {} (a key with a passphrase needs --key-id and a gpg-agent): {err}",
                    self.fingerprint
                ),
            ));
        }
        Ok(out)
    }
}

/// Checks detached signatures against one public key (file).
pub struct Verifier {
    home: TempHome,
    fingerprints: Vec<String>,
    key: PathBuf,
}

impl Verifier {
    pub fn open(public_key: &Path) -> anyhow::Result<Verifier> {
        host_tools::require(&[&host_tools::GPG])?;
        let bytes = std::fs::read(public_key).map_err(|e| {
            fail(
                Category::Io,
                format!("reading key {}: {e}", public_key.display()),
            )
        })?;
        let home = TempHome::new()?;
        let mut c = gpg(Some(&home));
        c.arg("--import");
        let (ok, _, err) = run(c, &bytes)?;
        let mut c = gpg(Some(&home));
        c.args(["--with-colons", "--list-keys"]);
        let (_, out, _) = run(c, b"")?;
        let fingerprints = fingerprints(&out);
        if !ok || fingerprints.is_empty() {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "{} is not an OpenPGP public key gpg can import: {err}",
                    public_key.display()
                ),
            ));
        }
        Ok(Verifier {
            home,
            fingerprints,
            key: public_key.to_path_buf(),
        })
    }

    /// Whether `signature` is a good signature of `data` by the key;
    /// `Err` says why not.
    pub fn check(&self, signature: &[u8], data: &[u8]) -> Result<(), String> {
        let dir = tempfile::tempdir_in(self.home.0.path()).map_err(|e| e.to_string())?;
        let sig = dir.path().join("sig");
        std::fs::write(&sig, signature).map_err(|e| e.to_string())?;
        let mut c = gpg(Some(&self.home));
        c.args(["--status-fd", "1", "--verify"]).arg(&sig).arg("-");
        let (ok, out, err) = run(c, data).map_err(|e| format!("{e:#}"))?;
        let status = String::from_utf8_lossy(&out);
        let valid = status.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&"VALIDSIG")).then(|| f.get(11).or(f.get(2)).map(|s| s.to_string()))
        });
        match valid.flatten() {
            Some(fpr) if ok && self.fingerprints.contains(&fpr) => Ok(()),
            _ if status.contains("BADSIG") => {
                Err("BAD SIGNATURE (the file changed after it was signed)".into())
            }
            _ if status.contains("NO_PUBKEY") || status.contains("ERRSIG") => Err(format!(
                "SIGNED BY ANOTHER KEY (not {})",
                self.key.display()
            )),
            _ => Err(format!("SIGNATURE NOT VALID ({})", err.replace('\n', "; "))),
        }
    }
}

/// Signs `SHA256SUMS` and `manifest.json` of the output folder `dir`
/// (holding its lock, so no run changes them meanwhile), writing
/// `SHA256SUMS.gpg` and `manifest.json.gpg` (and the provenance's DSSE
/// envelope), all named together once every signature is made. Returns the
/// signatures.
pub fn sign_folder(dir: &Path, signer: &Signer) -> anyhow::Result<Vec<PathBuf>> {
    let set = crate::output_set::OutputSet::open(dir)?;
    let sums = dir.join(checksums::SUMS);
    if !sums.is_file() {
        return Err(fail(
            Category::InvalidInput,
            format!(
                "{} has no {}: nothing to sign",
                dir.display(),
                checksums::SUMS
            ),
        ));
    }
    let read = |name: &str| -> anyhow::Result<Option<Vec<u8>>> {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(bytes))
    };
    let signatures = sign_set(
        dir,
        signer,
        &read(checksums::SUMS)?.unwrap_or_default(),
        read(manifest::FILE)?.as_deref(),
        read(provenance::FILE)?.as_deref(),
    )?;
    set.commit_files(&signatures)?;
    Ok(signatures.into_iter().map(|(path, _)| path).collect())
}

/// The signatures of an output set in `dir` (paths, bytes): of its
/// `SHA256SUMS` text, its `manifest.json` and its provenance statement
/// (each when it has one), to be named together with or after them.
pub fn sign_set(
    dir: &Path,
    signer: &Signer,
    sums: &[u8],
    manifest: Option<&[u8]>,
    statement: Option<&[u8]>,
) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut signatures = Vec::new();
    for (name, data) in [(checksums::SUMS, Some(sums)), (manifest::FILE, manifest)] {
        if let Some(data) = data {
            signatures.push((sig_path(&dir.join(name)), signer.sign(data)?));
            info!("signed {name} with {}", signer.fingerprint());
        }
    }
    if let Some(payload) = statement {
        let sig = signer.sign(&provenance::pae(provenance::PAYLOAD_TYPE, payload))?;
        signatures.push((
            dir.join(provenance::ENVELOPE),
            provenance::envelope(payload, signer.fingerprint(), &sig)?,
        ));
        info!("signed {} with {}", provenance::FILE, signer.fingerprint());
    }
    Ok(signatures)
}

/// The files a signing writes into an output folder (present or not).
pub fn signatures(dir: &Path) -> [PathBuf; 3] {
    [
        sig_path(&dir.join(checksums::SUMS)),
        sig_path(&dir.join(manifest::FILE)),
        dir.join(provenance::ENVELOPE),
    ]
}

/// Checks the signatures of the checksum file `sums` and, beside it, of
/// `manifest.json` against `public_key`: `(name, status)` for each, the
/// status `OK` or why not (a missing signature fails).
pub fn verify_files(sums: &Path, public_key: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let verifier = Verifier::open(public_key)?;
    let mut files = vec![sums.to_path_buf()];
    let manifest = sums.with_file_name(manifest::FILE);
    if sums.file_name().is_some_and(|n| n == checksums::SUMS) && manifest.is_file() {
        files.push(manifest);
    }
    let mut results = Vec::new();
    for file in files {
        let sig = sig_path(&file);
        let name = crate::provider::file_name(&sig);
        let status = match (std::fs::read(&sig), std::fs::read(&file)) {
            (Err(_), _) => "MISSING (no signature; sign with `edgeforge sign`)".to_string(),
            (_, Err(e)) => format!("UNREADABLE {} ({e})", file.display()),
            (Ok(s), Ok(d)) => match verifier.check(&s, &d) {
                Ok(()) => "OK".to_string(),
                Err(why) => why,
            },
        };
        results.push((name, status));
    }
    let statement = sums.with_file_name(provenance::FILE);
    if sums.file_name().is_some_and(|n| n == checksums::SUMS) && statement.is_file() {
        let status = match std::fs::read(sums.with_file_name(provenance::ENVELOPE)) {
            Err(_) => "MISSING (no signed envelope; sign with `edgeforge sign`)".to_string(),
            Ok(bytes) => check_envelope(&verifier, &bytes, &statement),
        };
        results.push((provenance::ENVELOPE.to_string(), status));
    }
    Ok(results)
}

/// `OK`, or why the DSSE envelope does not vouch for `statement`.
fn check_envelope(verifier: &Verifier, envelope: &[u8], statement: &Path) -> String {
    let (payload, sigs) = match provenance::open_envelope(envelope) {
        Ok(p) => p,
        Err(e) => return format!("UNREADABLE ({e})"),
    };
    match std::fs::read(statement) {
        Ok(s) if s == payload => {}
        Ok(_) => return format!("PAYLOAD DIFFERS from {}", provenance::FILE),
        Err(e) => return format!("UNREADABLE {} ({e})", statement.display()),
    }
    let pae = provenance::pae(provenance::PAYLOAD_TYPE, &payload);
    let mut why = "NO SIGNATURES".to_string();
    for sig in sigs {
        match verifier.check(&sig, &pae) {
            Ok(()) => return "OK".to_string(),
            Err(e) => why = e,
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_fingerprints_only() {
        let colons = b"sec:u:255:22:AAAA:1:::u:::scESC:::+:::ed25519:::0:\nfpr:::::::::ABCDEF:\ngrp:::::::::X:\nuid:u::::1::H::t <t@e>::::::::::0:\nssb:u:255:18:BBBB:1::::::e:::+:::cv25519::\nfpr:::::::::SUBKEY:\n";
        assert_eq!(fingerprints(colons), ["ABCDEF"]);
    }
}
