//! The artifacts one run writes into an output folder, committed together.
//!
//! Every command writing more than one file goes through here: `build`,
//! `iso`, `disk`, `provider-image`, `iso embed`, `disk embed`, `bundle`,
//! `site-media` (artifacts with checksums), `sign` and `man --out` (files
//! without: [`OutputSet::commit_files`]), `render` (folders:
//! [`OutputSet::commit_folders`]). Each commit checks every name it
//! replaces or removes before its first rename, so a name it cannot take (a
//! folder where a file goes) fails the run with the old set whole.
//!
//! A run holds an exclusive lock on
//! `<out>/.edgeforge.lock` from start to end (the file is removed when the
//! lock is released); a second run into the same folder waits for it
//! (saying so), so runs serialise and `SHA256SUMS`, a read-modify-write,
//! never loses another run's entries. Holding the lock, a run first removes
//! what killed runs left (`.edgeforge-work-*` folders, `.edgeforge-*.partial`
//! files: `leftovers.rs`), then stages every artifact as a temporary file,
//! and only when every stage succeeded commits them: all content flushed, then renamed into place, artifacts
//! (each followed by its `.sha256`), then `manifest.json`, then
//! `SHA256SUMS` (then the signatures `build --sign-key` made before the
//! first rename: killed before them, the set is unsigned, which `verify
//! --key` rejects). Until that last rename the folder holds either the old
//! set untouched or new artifacts beside the old `SHA256SUMS`, which
//! `verify DIR` fails (a changed file does not match its entry, a new one is
//! not listed, `manifest.json` disagrees with `SHA256SUMS`), so a run killed
//! at any point leaves the old set, the new set, or a folder `verify`
//! rejects.

use std::fs::{self, File, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::checksums;
use crate::error::{fail, Category};
use crate::io::{AtomicFile, Sha256Digest};
use crate::leftovers;
use crate::log::info;
use crate::manifest;
use crate::release::provenance;
use crate::release::sign::{self, Signer};

pub const LOCK: &str = ".edgeforge.lock";

pub struct OutputSet {
    dir: PathBuf,
    staged: Vec<(AtomicFile, Sha256Digest)>,
    _lock: FolderLock,
}

impl OutputSet {
    /// Locks `dir` (created if missing) for this run and removes the
    /// leftovers of killed runs.
    pub fn open(dir: &Path) -> anyhow::Result<OutputSet> {
        let lock = lock_folder(dir)?;
        remove_leftovers(dir)?;
        Ok(OutputSet {
            dir: dir.to_path_buf(),
            staged: Vec::new(),
            _lock: lock,
        })
    }

    /// The set of one file a command names (`-o FILE`): its folder (`.`
    /// for a bare name) opened as [`OutputSet::open`] does, and the path to
    /// stage the file at, in that folder.
    pub fn for_file(file: &Path) -> anyhow::Result<(OutputSet, PathBuf)> {
        let name = file.file_name().ok_or_else(|| {
            fail(
                Category::Usage,
                format!("{}: not a file name", file.display()),
            )
        })?;
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Ok((OutputSet::open(dir)?, dir.join(name)))
    }

    /// Adds a complete artifact, written to a temporary file beside its
    /// final name in this folder. Returns where it can be read until the
    /// commit.
    pub fn stage(&mut self, file: AtomicFile, sha256: Sha256Digest) -> PathBuf {
        debug_assert_eq!(file.target().parent(), Some(self.dir.as_path()));
        let at = file.temp_path().to_path_buf();
        self.staged.push((file, sha256));
        at
    }

    /// Gives every staged artifact its final name, with its `.sha256`, the
    /// new `manifest.json` (or, without one, removes a `manifest.json` that
    /// describes a file this run replaced) and `SHA256SUMS` merged under
    /// the lock. See the module's comment for the order.
    pub fn commit(self, manifest: Option<&[u8]>) -> anyhow::Result<()> {
        self.commit_signed(manifest, None).map(drop)
    }

    /// [`OutputSet::commit`], with the set's signatures by `signer`: made
    /// over `SHA256SUMS`, `manifest.json` and the provenance statement as
    /// this commit names them, before anything is renamed, and named right
    /// after them, so a failing signature leaves the old set. Returns them.
    pub fn commit_signed(
        self,
        manifest: Option<&[u8]>,
        signer: Option<&Signer>,
    ) -> anyhow::Result<Vec<PathBuf>> {
        let dir = &self.dir;
        let mut names = Vec::new();
        let mut renames = Vec::new();
        for (file, sha) in self.staged {
            file.sync()?;
            let name = crate::provider::file_name(file.target());
            let sidecar = staged_bytes(
                &checksums::sidecar_path(file.target()),
                checksums::line(&sha, &name).as_bytes(),
            )?;
            renames.extend([file, sidecar]);
            names.push((name, sha));
        }
        let manifest_path = dir.join(manifest::FILE);
        let mut stale_manifest = false;
        match manifest {
            Some(bytes) => renames.push(staged_bytes(&manifest_path, bytes)?),
            None if manifest_path.exists() => {
                // Unreadable counts as stale: it cannot vouch for anything.
                stale_manifest = manifest::read_outputs(&manifest_path).map_or(true, |listed| {
                    listed
                        .iter()
                        .any(|(n, _)| names.iter().any(|(m, _)| m == n))
                });
            }
            None => {}
        }
        // With the manifest go the SBOMs of the artifacts this run replaced
        // and the provenance: they describe the old files. Unlisted in the
        // new SHA256SUMS, removed after it.
        let stale_extras: Vec<String> = if stale_manifest {
            names
                .iter()
                .map(|(n, _)| format!("{n}{}", crate::release::sbom::SUFFIX))
                .chain([provenance::FILE.to_string()])
                .filter(|n| dir.join(n).exists())
                .collect()
        } else {
            Vec::new()
        };
        let sums_text: String = checksums::merged(dir, &names)
            .lines()
            .filter(|l| !stale_extras.iter().any(|s| l.ends_with(&format!("  {s}"))))
            .map(|l| format!("{l}\n"))
            .collect();
        let sums = staged_bytes(&dir.join(checksums::SUMS), sums_text.as_bytes())?;
        let signatures = match signer {
            Some(signer) => {
                let statement = dir.join(provenance::FILE);
                let statement = renames
                    .iter()
                    .find(|f| f.target() == statement)
                    .map(|f| {
                        fs::read(f.temp_path())
                            .with_context(|| format!("reading {}", f.temp_path().display()))
                    })
                    .transpose()?;
                sign::sign_set(
                    dir,
                    signer,
                    sums_text.as_bytes(),
                    manifest,
                    statement.as_deref(),
                )?
                .iter()
                .map(|(path, bytes)| staged_bytes(path, bytes))
                .collect::<anyhow::Result<Vec<_>>>()?
            }
            None => Vec::new(),
        };

        // Every name this commit replaces or removes, checked before the
        // first change: a commit failing halfway would leave part of a set.
        let old_signatures: Vec<PathBuf> = sign::signatures(dir)
            .into_iter()
            .filter(|s| fs::symlink_metadata(s).is_ok())
            .collect();
        let mut free: Vec<&Path> = renames.iter().map(|f| f.target()).collect();
        free.push(sums.target());
        free.extend(signatures.iter().map(|f| f.target()));
        free.extend(old_signatures.iter().map(PathBuf::as_path));
        let stale_paths: Vec<PathBuf> = stale_extras
            .iter()
            .flat_map(|n| [dir.join(n), checksums::sidecar_path(&dir.join(n))])
            .collect();
        if stale_manifest {
            free.push(&manifest_path);
            free.extend(stale_paths.iter().map(PathBuf::as_path));
        }
        check_free(&free)?;
        // Signatures of the old set would not match the new one.
        for sig in &old_signatures {
            fs::remove_file(sig).with_context(|| format!("removing {}", sig.display()))?;
            info!(
                "removed {}: it signed the set this run replaces",
                sig.display()
            );
        }
        let count = renames.len();
        for (i, file) in renames.into_iter().enumerate() {
            test_pause(&format!("commit-{i}"));
            file.rename()?;
        }
        if stale_manifest {
            fs::remove_file(&manifest_path)
                .with_context(|| format!("removing {}", manifest_path.display()))?;
            info!(
                "removed {}: it described files this run replaced",
                manifest_path.display()
            );
        }
        test_pause(&format!("commit-{count}"));
        sums.rename()?;
        for path in &stale_paths {
            if path.exists() {
                fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
        for name in &stale_extras {
            info!("removed {name}: it described files this run replaced");
        }
        let signed: Vec<PathBuf> = signatures
            .iter()
            .map(|f| f.target().to_path_buf())
            .collect();
        for file in signatures {
            file.rename()?;
        }
        test_pause(&format!("commit-{}", count + 1));
        sync_folder(dir)?;
        Ok(signed)
    }

    /// Gives folders made in a work folder of this one (`render`'s trees,
    /// `(made, final path)`) their final names together, or none of them
    /// when a final name is taken by something other than a folder. An
    /// existing folder is swapped out whole into the work folder, which the
    /// caller removes (or, killed, the next run: `.edgeforge-work-*`).
    pub fn commit_folders(self, trees: &[(PathBuf, PathBuf)]) -> anyhow::Result<()> {
        for (_, target) in trees {
            if fs::symlink_metadata(target).is_ok_and(|m| !m.is_dir()) {
                return Err(fail(
                    Category::Io,
                    format!(
                        "{} is not a folder, so the rendered trees cannot be given their names; nothing was replaced: remove it or write elsewhere",
                        target.display()
                    ),
                ));
            }
        }
        for (made, target) in trees {
            crate::io::replace_folder(made, target)
                .with_context(|| format!("renaming into {}", target.display()))?;
        }
        sync_folder(&self.dir)
    }

    /// Gives files without checksums of their own `(path in this folder,
    /// bytes)`, such as the signatures of the set the folder holds (`sign`)
    /// or man pages, their names together, or none of them; nothing else in
    /// the folder changes.
    pub fn commit_files(self, files: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<()> {
        let staged = files
            .iter()
            .map(|(path, bytes)| {
                debug_assert_eq!(path.parent(), Some(self.dir.as_path()));
                staged_bytes(path, bytes)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        check_free(&staged.iter().map(|f| f.target()).collect::<Vec<_>>())?;
        for file in staged {
            file.rename()?;
        }
        sync_folder(&self.dir)
    }
}

/// Makes the renames in `dir` durable.
fn sync_folder(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("flushing {}", dir.display()))
}

/// Refuses a final name a file cannot be renamed onto (a folder), before
/// anything is renamed: the set then stays as it was, and no temporary file
/// is left (they are removed as the set is dropped).
fn check_free(targets: &[&Path]) -> anyhow::Result<()> {
    for t in targets {
        if fs::symlink_metadata(t).is_ok_and(|m| m.is_dir()) {
            return Err(fail(
                Category::Io,
                format!(
                    "{} is a folder, so the outputs cannot be given their names; nothing was replaced: remove it or write elsewhere",
                    t.display()
                ),
            ));
        }
    }
    Ok(())
}

/// A temporary file beside `target` holding `bytes`, flushed, to be renamed.
fn staged_bytes(target: &Path, bytes: &[u8]) -> anyhow::Result<AtomicFile> {
    use std::io::Write;
    let mut f = AtomicFile::create(target, 0o644)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", target.display()))?;
    f.sync()?;
    Ok(f)
}

/// An exclusive lock on an output folder: `<dir>/.edgeforge.lock`, locked
/// while held and removed when released, so an idle folder holds only
/// artifacts.
pub struct FolderLock {
    path: PathBuf,
    file: File,
}

/// Locks the output folder `dir` (created if missing), waiting (and saying
/// so) while another run holds it.
pub fn lock_folder(dir: &Path) -> anyhow::Result<FolderLock> {
    let path = dir.join(LOCK);
    let mut said = false;
    loop {
        let file = fs::create_dir_all(dir)
            .and_then(|_| {
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o644)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
            })
            .map_err(|e| {
                fail(
                    Category::Io,
                    format!(
                        "output folder {} is not writable ({e}); choose another with --out",
                        dir.display()
                    ),
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                if !said {
                    info!(
                        "waiting for another edgeforge run writing into {} to finish (it holds {})",
                        dir.display(),
                        path.display()
                    );
                    said = true;
                }
                file.lock()
                    .with_context(|| format!("locking {}", path.display()))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        // The holder we waited for removed the file as it released it: our
        // lock is on a file no one else will find; lock the current one.
        let ours = file.metadata()?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == ours.dev() && m.ino() == ours.ino())
        {
            return Ok(FolderLock { path, file });
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Removed while still locked: a waiter then sees it gone and retries.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Removes, from a folder whose lock is held, the work folders and
/// temporary files killed runs left (the temporary files may hold
/// user-data). A temporary file another process is writing (`layer`,
/// which does not take the folder's lock) is left alone.
fn remove_leftovers(dir: &Path) -> anyhow::Result<()> {
    let mut removed = 0;
    let rd = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let kind = e.file_type()?;
        if !name.starts_with(".edgeforge-") {
            continue;
        }
        if kind.is_dir() && name.starts_with(".edgeforge-work-") {
            leftovers::remove_tree(&path)?;
        } else if kind.is_file()
            && name.ends_with(".partial")
            && leftovers::abandoned(&path, fs::metadata(&path).is_ok_and(|m| m.len() > 0))
        {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        } else {
            continue;
        }
        removed += 1;
    }
    if removed > 0 {
        info!(
            "removed {removed} leftovers of interrupted runs from {}",
            dir.display()
        );
    }
    Ok(())
}

/// Test-only hook: with `EDGEFORGE_TEST_PAUSE_AT=commit-N` the commit stops
/// before its N-th rename (N past the last: after `SHA256SUMS`), says so on
/// stderr and sleeps until killed, so tests can kill -9 a run at every
/// point of its commit. Nothing else reads the variable.
fn test_pause(point: &str) {
    if std::env::var_os("EDGEFORGE_TEST_PAUSE_AT").is_some_and(|p| p == point) {
        eprintln!("edgeforge: test pause at {point}");
        loop {
            std::thread::park();
        }
    }
}
