//! Per-site ISOs from a golden one: copy the golden image (through the
//! kernel, `copy_file_range`), put the site's reserved area in place, and hash
//! the result in the same pass. The digest of the bytes before the area is
//! the same for every site, so it is computed once per golden ISO.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::Sha256;

use super::reader::{Extent, IsoImage};
use super::reserved;
use crate::error::{fail, Category};
use crate::io::{AtomicFile, HashingWriter, Sha256Digest};

pub struct Golden {
    pub path: PathBuf,
    pub area: Extent,
    /// SHA-256 state over the bytes before the area, once computed.
    prefix: Option<Sha256>,
}

impl Golden {
    pub fn open(path: &Path) -> anyhow::Result<Golden> {
        let iso = IsoImage::open(path)?;
        // Before anything is copied: a copy of a cut image would not boot.
        iso.check_complete()?;
        let area = iso.find("/config.yaml")?.ok_or_else(|| {
            fail(
                Category::InvalidInput,
                format!(
                    "{} has no /config.yaml; build the golden ISO with `edgeforge iso --golden`",
                    path.display()
                ),
            )
        })?;
        let bytes = iso.read(area.offset, area.len as usize)?;
        if reserved::user_data_len(&bytes).is_none() {
            return Err(fail(
                Category::InvalidInput,
                format!("{} is not a golden ISO: its /config.yaml has no reserved area; build it with `edgeforge iso --golden`", path.display()),
            ));
        }
        Ok(Golden::at(path, area))
    }

    /// A golden image whose reserved area is known to be at `area` (a
    /// golden appliance disk's, found by `disk::embed`).
    pub fn at(path: &Path, area: Extent) -> Golden {
        Golden {
            path: path.to_path_buf(),
            area,
            prefix: None,
        }
    }

    /// The golden image's size (each per-site image has it too).
    pub fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Fails as writing would when `user_data` does not fit the area.
    pub fn check_fits(&self, user_data: &[u8]) -> anyhow::Result<()> {
        reserved::fill(user_data, self.area.len as usize).map(drop)
    }

    /// Writes `target`'s temporary file: the golden image with `user_data`
    /// in its area, for the caller to commit with its checksums
    /// (`output_set.rs`). Returns it and the new image's digest.
    pub fn stage(
        &mut self,
        user_data: &[u8],
        target: &Path,
        mode: u32,
    ) -> anyhow::Result<(AtomicFile, Sha256Digest)> {
        let area = reserved::fill(user_data, self.area.len as usize)?;
        let ctx = || format!("writing {}", target.display());
        let mut src =
            File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        let mut out = AtomicFile::create(target, mode)?;
        let prefix_len = self.area.offset;
        let hashed = match self.prefix.clone() {
            Some(state) => {
                io::copy(&mut (&mut src).take(prefix_len), out.file()).with_context(ctx)?;
                state
            }
            // Bulk copy in the kernel while another thread hashes the same
            // bytes from the page cache (first site only).
            None => std::thread::scope(|scope| -> anyhow::Result<Sha256> {
                let path = &self.path;
                let hasher = scope.spawn(move || -> io::Result<Sha256> {
                    let mut h = HashingWriter::new(io::sink());
                    io::copy(&mut File::open(path)?.take(prefix_len), &mut h)?;
                    Ok(h.into_state())
                });
                io::copy(&mut (&mut src).take(prefix_len), out.file()).with_context(ctx)?;
                hasher
                    .join()
                    .expect("the hashing thread does not panic")
                    .with_context(ctx)
            })?,
        };
        self.prefix = Some(hashed.clone());
        let mut sink = HashingWriter::with_state(hashed, out.file());
        sink.write_all(&area).with_context(ctx)?;
        src.seek(SeekFrom::Start(prefix_len + area.len() as u64))?;
        io::copy(&mut src, &mut sink).with_context(ctx)?;
        let (digest, _, _) = sink.finish();
        Ok((out, digest))
    }
}
