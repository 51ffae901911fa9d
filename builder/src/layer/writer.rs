//! A layer being written: entries go into a tar whose bytes are hashed
//! (diff_id), compressed (on the worker threads of `compress.rs`), and hashed
//! again (digest) on their way to disk, so a layer is produced in one pass
//! and never read back.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::compress::{Compressor, LayerCompression};
use super::secrets::{Finding, SecretGuard};
use crate::error::{fail, Category};
use crate::io::HashingWriter;
use crate::oci::spec::{Descriptor, Digest};
use crate::progress::Progress;

/// A finished layer blob on disk.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    pub path: PathBuf,
}

type Sink = HashingWriter<Compressor<HashingWriter<BufWriter<File>>>>;

pub struct LayerWriter<'p> {
    tar: tar::Builder<Sink>,
    epoch: u64,
    guard: SecretGuard,
    path: PathBuf,
    compression: LayerCompression,
    progress: Option<&'p Progress>,
}

/// Feeds everything read through the secret guard (and the progress report).
struct Guarded<'a, R> {
    inner: R,
    guard: &'a mut SecretGuard,
    progress: Option<&'a Progress>,
}

impl<R: Read> Read for Guarded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.guard.feed(&buf[..n]);
        if let Some(p) = self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }
}

/// Entry metadata as it goes into the tar: uid/gid are always 0 and mtimes are
/// clamped to `SOURCE_DATE_EPOCH`.
pub struct Meta {
    pub mode: u32,
    pub mtime: u64,
    /// Extended attributes (name, value), as PAX `SCHILY.xattr.*` records.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    pub fn new(mode: u32, mtime: u64) -> Meta {
        Meta {
            mode,
            mtime,
            xattrs: Vec::new(),
        }
    }
}

impl<'p> LayerWriter<'p> {
    pub fn create(
        path: &Path,
        compression: LayerCompression,
        epoch: u64,
        guard: SecretGuard,
        progress: Option<&'p Progress>,
    ) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let sink = HashingWriter::new(Compressor::new(
            HashingWriter::new(BufWriter::with_capacity(1 << 20, file)),
            compression,
        )?);
        let mut tar = tar::Builder::new(sink);
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerWriter {
            tar,
            epoch,
            guard,
            path: path.to_path_buf(),
            compression,
            progress,
        })
    }

    /// The entry's header, after its extended attributes (if any) went out
    /// as a PAX extension header.
    fn header(&mut self, kind: tar::EntryType, meta: &Meta, size: u64) -> io::Result<tar::Header> {
        if !meta.xattrs.is_empty() {
            let keys: Vec<Vec<u8>> = meta
                .xattrs
                .iter()
                .map(|(n, _)| [b"SCHILY.xattr.".as_slice(), n].concat())
                .collect();
            let keys: Vec<&str> = keys
                .iter()
                .map(|k| std::str::from_utf8(k))
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "an xattr name is not UTF-8")
                })?;
            self.tar.append_pax_extensions(
                keys.iter()
                    .zip(&meta.xattrs)
                    .map(|(k, (_, v))| (*k, v.as_slice())),
            )?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(meta.mtime.min(self.epoch));
        h.set_size(size);
        Ok(h)
    }

    fn ctx(&self, name: &Path) -> String {
        format!(
            "writing {} into layer {}",
            name.display(),
            self.path.display()
        )
    }

    pub fn dir(&mut self, name: &Path, meta: &Meta) -> anyhow::Result<()> {
        let ctx = self.ctx(name);
        let mut h = self
            .header(tar::EntryType::Directory, meta, 0)
            .context(ctx.clone())?;
        // Names are bytes: append the slash without a detour through text.
        let mut slashed = name.as_os_str().to_owned();
        slashed.push("/");
        self.tar
            .append_data(&mut h, Path::new(&slashed), io::empty())
            .context(ctx)
    }

    /// Adds a regular file of `size` bytes. `source` names where it came from,
    /// for the error if it carries a registration token or a known secret.
    pub fn file(
        &mut self,
        name: &Path,
        meta: &Meta,
        size: u64,
        data: impl Read,
        source: &str,
    ) -> anyhow::Result<()> {
        let ctx = self.ctx(name);
        let mut h = self
            .header(tar::EntryType::Regular, meta, size)
            .context(ctx.clone())?;
        let guarded = Guarded {
            inner: data,
            guard: &mut self.guard,
            progress: self.progress,
        };
        self.tar.append_data(&mut h, name, guarded).context(ctx)?;
        match self.guard.finish() {
            None => Ok(()),
            Some(Finding { what, hint }) => Err(fail(
                Category::SecretRefused,
                format!("{source} carries {what}: {hint}"),
            )),
        }
    }

    pub fn symlink(&mut self, name: &Path, target: &Path, meta: &Meta) -> anyhow::Result<()> {
        let ctx = self.ctx(name);
        let mut h = self
            .header(
                tar::EntryType::Symlink,
                &Meta {
                    mode: 0o777,
                    mtime: meta.mtime,
                    xattrs: meta.xattrs.clone(),
                },
                0,
            )
            .context(ctx.clone())?;
        self.tar.append_link(&mut h, name, target).context(ctx)
    }

    pub fn hardlink(&mut self, name: &Path, target: &Path, meta: &Meta) -> anyhow::Result<()> {
        let ctx = self.ctx(name);
        let mut h = self
            .header(tar::EntryType::Link, meta, 0)
            .context(ctx.clone())?;
        self.tar.append_link(&mut h, name, target).context(ctx)
    }

    /// Device nodes and FIFOs, kept as they come from a tarball.
    pub fn special(
        &mut self,
        name: &Path,
        kind: tar::EntryType,
        meta: &Meta,
        dev: (u32, u32),
    ) -> anyhow::Result<()> {
        let ctx = self.ctx(name);
        let mut h = self.header(kind, meta, 0).context(ctx.clone())?;
        h.set_device_major(dev.0)?;
        h.set_device_minor(dev.1)?;
        self.tar.append_data(&mut h, name, io::empty()).context(ctx)
    }

    pub fn finish(self) -> anyhow::Result<LayerBlob> {
        let ctx = format!("finishing layer {}", self.path.display());
        let uncompressed = self.tar.into_inner().context(ctx.clone())?;
        let (diff_id, _, compressor) = uncompressed.finish();
        let compressed = compressor.finish().context(ctx.clone())?;
        let (digest, size, buffered) = compressed.finish();
        buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .context(ctx)?;
        Ok(LayerBlob {
            descriptor: Descriptor::new(self.compression.media_type(), Digest(digest), size),
            diff_id: Digest(diff_id),
            path: self.path,
        })
    }
}
