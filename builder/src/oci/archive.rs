//! Writes an OCI layout as a tar with fixed headers, so the same blobs give
//! the same bytes: an `oci-archive` (provider images) or, through a
//! compressor, a content bundle. The caller's sink decides hashing and where
//! the bytes go.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use anyhow::Context;

use super::spec::{Descriptor, Digest, Index};
use crate::io::Sha256Digest;

pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<W>,
    epoch: u64,
    written: HashSet<Digest>,
    /// What is being written, for messages.
    path: String,
}

impl<W: Write> ArchiveWriter<W> {
    pub fn new(sink: W, epoch: u64, path: String) -> anyhow::Result<Self> {
        let mut w = ArchiveWriter {
            tar: tar::Builder::new(sink),
            epoch,
            written: HashSet::new(),
            path,
        };
        w.dir("blobs/")?;
        w.dir("blobs/sha256/")?;
        w.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(w)
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.epoch);
        h.set_size(size);
        h
    }

    fn dir(&mut self, name: &str) -> anyhow::Result<()> {
        let mut h = self.header(tar::EntryType::Directory, 0o755, 0);
        self.tar
            .append_data(&mut h, name, io::empty())
            .with_context(|| format!("writing {}", self.path))
    }

    /// A regular file outside `blobs/` (`bundle.json`).
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut h = self.header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        self.tar
            .append_data(&mut h, name, bytes)
            .with_context(|| format!("writing {}", self.path))
    }

    /// Adds a blob from a reader of exactly `desc.size` bytes; a blob already
    /// in the archive is skipped (and the reader left untouched).
    pub fn add_blob(&mut self, desc: &Descriptor, data: impl Read) -> io::Result<bool> {
        if !self.written.insert(desc.digest) {
            return Ok(false);
        }
        let mut h = self.header(tar::EntryType::Regular, 0o644, desc.size);
        self.tar
            .append_data(&mut h, desc.digest.blob_path(), data)?;
        Ok(true)
    }

    /// Adds a JSON document as a blob and returns its descriptor.
    pub fn add_json(
        &mut self,
        media_type: &str,
        value: &impl serde::Serialize,
    ) -> anyhow::Result<Descriptor> {
        let bytes = serde_json::to_vec(value)?;
        let desc = Descriptor::new(
            media_type,
            Digest(Sha256Digest::of(&bytes)),
            bytes.len() as u64,
        );
        self.add_blob(&desc, &bytes[..])
            .with_context(|| format!("writing {}", self.path))?;
        Ok(desc)
    }

    /// Writes `index.json`, closes the tar and returns the sink.
    pub fn finish(mut self, index: &Index) -> anyhow::Result<W> {
        let bytes = serde_json::to_vec(index)?;
        self.file("index.json", &bytes)?;
        let path = self.path;
        self.tar
            .into_inner()
            .with_context(|| format!("writing {path}"))
    }
}
