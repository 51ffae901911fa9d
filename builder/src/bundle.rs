//! Content bundles for air-gapped sites: OCI images packed into one
//! zstd-compressed tar of an OCI layout (every blob once; decompressed, it is
//! an `oci-archive`), with `bundle.json` indexing the images and their blobs.
//! Checked offline by re-hashing every blob.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::{fail, Category};
use crate::io::{AtomicFile, HashingWriter, Sha256Digest};
use crate::oci::archive::ArchiveWriter;
use crate::oci::source::SourceImage;
use crate::oci::spec::{
    Descriptor, Digest, Index, ANNOTATION_REF_NAME, MEDIA_INDEX, MEDIA_MANIFEST,
};
use crate::registry::reference::{self, Reference};

const SCHEMA: &str = "edgeforge.content-bundle/v1";
const INDEX: &str = "bundle.json";

#[derive(Serialize, Deserialize)]
struct BundleIndex {
    schema: String,
    images: Vec<BundleImage>,
}

#[derive(Serialize, Deserialize)]
struct BundleImage {
    name: String,
    /// `host/repository:tag`, where `bundle load` pushes it (under another host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    manifest: Digest,
    /// Manifest, config and layers.
    blobs: Vec<Digest>,
}

/// Packs `images` (name, `[oci:|oci-archive:|docker-archive:]PATH` or a
/// registry reference) into `target`; every source blob is verified on the
/// way. Each image's reference is the registry one it came from, else its
/// name when that is a reference, else the one a provider image carries.
/// Returns the bundle's temporary file, for the caller to commit with its
/// checksums (`output_set.rs`), its digest and size.
pub fn stage(
    images: &[(String, String)],
    arch: &str,
    target: &Path,
    epoch: u64,
) -> anyhow::Result<(AtomicFile, Sha256Digest, u64)> {
    let file = AtomicFile::create(target, 0o644)?;
    let mut zstd = zstd::Encoder::new(
        HashingWriter::new(BufWriter::with_capacity(1 << 20, file)),
        3,
    )?;
    // Blob digests are the integrity check; a frame checksum would only fail
    // at the end of the stream, without saying which blob is damaged.
    zstd.include_checksum(false)?;
    let mut w = ArchiveWriter::new(zstd, epoch, target.display().to_string())?;
    let mut index = BundleIndex {
        schema: SCHEMA.into(),
        images: Vec::new(),
    };
    let mut manifests = Vec::new();
    for (name, spec) in images {
        let image = SourceImage::open(spec, Path::new("."), arch)?;
        let reference = match reference::classify(spec, Path::new("."))? {
            Some(r) => Some(r),
            None if reference::looks_like_reference(name) => Some(Reference::parse(name)?),
            // Another tool's archive may name its image in any way: a name
            // that is no reference leaves the image without one (bundling
            // needs none) rather than failing the bundle.
            None => image
                .reference
                .as_deref()
                .and_then(|n| Reference::parse(n).ok()),
        }
        .map(|r| recorded_reference(r, &image.manifest_digest));
        for (i, desc) in image.layers.iter().enumerate() {
            let mut blob = image.open_layer(i)?;
            w.add_blob(desc, &mut blob)?;
            blob.finish()?;
        }
        w.add_blob(&image.config_descriptor, &image.config_bytes[..])?;
        let mut manifest = Descriptor::new(
            MEDIA_MANIFEST,
            image.manifest_digest,
            image.manifest_bytes.len() as u64,
        );
        w.add_blob(&manifest, &image.manifest_bytes[..])?;
        manifest
            .annotations
            .insert(ANNOTATION_REF_NAME.into(), name.clone());
        manifests.push(manifest);
        let mut blobs = vec![image.manifest_digest, image.config_descriptor.digest];
        blobs.extend(image.layers.iter().map(|l| l.digest));
        index.images.push(BundleImage {
            name: name.clone(),
            reference,
            manifest: image.manifest_digest,
            blobs,
        });
    }
    w.file(INDEX, &serde_json::to_vec_pretty(&index)?)?;
    let zstd = w.finish(&Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests,
    })?;
    let (digest, size, buffered) = zstd.finish()?.finish();
    let mut file = buffered.into_inner().map_err(|e| e.into_error())?;
    io::Write::flush(&mut file)?;
    Ok((file, digest, size))
}

/// What a verification found: the images and how many blobs were checked.
pub struct Report {
    pub images: Vec<(String, Digest)>,
    pub blobs: usize,
}

/// A bundle read in one pass: its `bundle.json`, and the error that stopped
/// the pass early, with the blob being read when it came.
struct Streamed {
    index: Option<BundleIndex>,
    stopped: Option<(anyhow::Error, Option<Reading>)>,
}

/// The blob a pass was reading: its digest, the size its tar header gives,
/// and the bytes read of it.
#[derive(Clone, Copy)]
struct Reading {
    blob: Digest,
    size: u64,
    read: u64,
}

/// Counts what passes through, so a cut-short blob can say how much of it
/// arrived.
struct Counted<'a, R> {
    inner: &'a mut R,
    read: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Data that ends early is a copy cut short, not some other file: the error
/// says so, with the sizes, rather than "damaged" or "not a bundle".
fn truncated(path: &Path, e: &anyhow::Error, reading: Option<Reading>) -> Option<anyhow::Error> {
    let ends_early = e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| {
            io.kind() == io::ErrorKind::UnexpectedEof || io.to_string().contains("incomplete frame")
        })
    });
    if !ends_early {
        return None;
    }
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let inside = match reading {
        Some(r) => format!(
            ", inside blob {}, which should hold {} bytes ({} read)",
            r.blob, r.size, r.read
        ),
        None => String::new(),
    };
    Some(fail(
        Category::BadImage,
        format!(
            "{} is truncated: its {len} bytes end before its compressed data does{inside}; copy it again and check it against {}.sha256",
            path.display(),
            path.display()
        ),
    ))
}

/// Reads the bundle at `path` in one pass, handing each blob to `blob` with
/// the digest its name claims (`verify` hashes it, `load` also writes it
/// out) and parsing `bundle.json`.
fn stream(
    path: &Path,
    mut blob: impl FnMut(Digest, &mut dyn Read) -> anyhow::Result<()>,
) -> anyhow::Result<Streamed> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let decoder = zstd::Decoder::new(BufReader::new(file))
        .with_context(|| format!("{} is not zstd-compressed", path.display()))?;
    let mut archive = tar::Archive::new(decoder);
    let mut index: Option<BundleIndex> = None;
    let mut current: Option<Reading> = None;
    let pass = (|| -> anyhow::Result<()> {
        for entry in archive.entries()? {
            let mut entry = entry?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let expected: Digest = format!("sha256:{hex}")
                    .parse()
                    .map_err(|e: String| fail(Category::BadImage, e))?;
                let size = entry.header().size()?;
                let mut counted = Counted {
                    inner: &mut entry,
                    read: 0,
                };
                let handled = blob(expected, &mut counted);
                current = Some(Reading {
                    blob: expected,
                    size,
                    read: counted.read,
                });
                handled?;
                current = None;
            } else if name == INDEX {
                let mut text = String::new();
                entry.read_to_string(&mut text)?;
                index =
                    Some(serde_json::from_str(&text).map_err(|e| {
                        fail(Category::BadImage, format!("{INDEX} is invalid: {e}"))
                    })?);
            }
        }
        Ok(())
    })();
    Ok(Streamed {
        index,
        stopped: pass.err().map(|e| (e, current)),
    })
}

/// Re-hashes every blob of a bundle; a damaged or missing blob is an error
/// naming it and the images that use it.
pub fn verify(path: &Path) -> anyhow::Result<Report> {
    let mut good: BTreeSet<Digest> = BTreeSet::new();
    let mut bad: BTreeMap<Digest, String> = BTreeMap::new();
    let Streamed { index, stopped } = stream(path, |expected, entry| {
        let mut h = HashingWriter::new(io::sink());
        io::copy(entry, &mut h)?;
        let (found, _, _) = h.finish();
        if Digest(found) == expected {
            good.insert(expected);
        } else {
            bad.insert(expected, format!("its content hashes to sha256:{found}"));
        }
        Ok(())
    })?;
    if let Some((e, current)) = stopped {
        if let Some(cut) = truncated(path, &e, current) {
            return Err(cut);
        }
        // A decode error inside a blob names that blob; elsewhere the archive itself.
        match current {
            Some(r) => {
                bad.insert(r.blob, format!("unreadable ({e:#})"));
            }
            None if index.is_none() => {
                return Err(fail(
                    Category::BadImage,
                    format!("{} is damaged: {e:#}", path.display()),
                ))
            }
            None => {}
        }
    }
    let index = index.ok_or_else(|| {
        fail(
            Category::BadImage,
            format!("{} has no {INDEX}; not an edgeforge bundle", path.display()),
        )
    })?;
    let mut problems = Vec::new();
    for image in &index.images {
        for blob in &image.blobs {
            if let Some(why) = bad.get(blob) {
                problems.push(format!("image {} blob {blob}: {why}", image.name));
            } else if !good.contains(blob) {
                problems.push(format!("image {} blob {blob}: missing", image.name));
            }
        }
    }
    if !problems.is_empty() {
        return Err(fail(
            Category::BadImage,
            format!(
                "{} failed verification:\n{}",
                path.display(),
                problems.join("\n")
            ),
        ));
    }
    Ok(Report {
        images: index
            .images
            .iter()
            .map(|i| (i.name.clone(), i.manifest))
            .collect(),
        blobs: good.len(),
    })
}

/// The reference `bundle.json` keeps for an image: `host/repository:tag`
/// (a pin is dropped: it may be a manifest list's digest, and the image's
/// own is `manifest`), or `host/repository@<manifest digest>` for an image
/// named by digest alone. Written without tag or digest, it would read back
/// as `:latest`, and `load` would push it under a tag it never had.
fn recorded_reference(r: Reference, manifest: &Digest) -> String {
    let digest = match r.tag {
        Some(_) => None,
        None => Some(*manifest),
    };
    Reference { digest, ..r }.to_string()
}

/// Pushes every image of the bundle at `path` to `to` (`HOST[/PREFIX]`)
/// under its repository path and tag. The blobs are unpacked into a
/// temporary OCI layout, each checked against its digest as it is written;
/// each push must leave the registry with the bundle's manifest digest.
/// Returns `(name, pushed reference@digest)` per image.
pub fn load(path: &Path, to: &str) -> anyhow::Result<Vec<(String, String)>> {
    let work = tempfile::Builder::new()
        .prefix("edgeforge-load-")
        .tempdir()
        .context("creating a temporary folder")?;
    let layout = work.path();
    let index = unpack_blobs(path, layout)?;
    let mut targets = Vec::new();
    let mut manifests = Vec::new();
    for (i, image) in index.images.iter().enumerate() {
        let missing: Vec<String> = image
            .blobs
            .iter()
            .filter(|b| !layout.join(b.blob_path()).is_file())
            .map(|b| b.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(fail(
                Category::BadImage,
                format!(
                    "{}: image {} lacks blobs {}",
                    path.display(),
                    image.name,
                    missing.join(", ")
                ),
            ));
        }
        let from = image.reference.as_deref().ok_or_else(|| {
            fail(
                Category::InvalidInput,
                format!(
                    "{}: image {} has no registry reference; bundle it as HOST/REPOSITORY:TAG=PATH",
                    path.display(),
                    image.name
                ),
            )
        })?;
        let from = Reference::parse(from)?;
        if from.tag.is_none() {
            return Err(fail(
                Category::InvalidInput,
                format!("{}: image {} ({from}) has no tag to push it under; bundle it as HOST/REPOSITORY:TAG=...", path.display(), image.name),
            ));
        }
        targets.push(from.moved_to(to)?);
        let bytes = std::fs::read(layout.join(image.manifest.blob_path()))?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                Category::BadImage,
                format!(
                    "manifest {} of image {} is not JSON: {e}",
                    image.manifest, image.name
                ),
            )
        })?;
        let mut desc = Descriptor::new(
            doc["mediaType"].as_str().unwrap_or(MEDIA_MANIFEST),
            image.manifest,
            bytes.len() as u64,
        );
        desc.annotations
            .insert(ANNOTATION_REF_NAME.into(), format!("image{i}"));
        manifests.push(desc);
    }
    let oci_index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_INDEX.into()),
        manifests,
    };
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&oci_index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut pushed = Vec::new();
    for (i, (image, target)) in index.images.iter().zip(&targets).enumerate() {
        let source = format!("oci:{}:image{i}", layout.display());
        let done = crate::registry::push::push(&source, &image.manifest, target)?;
        pushed.push((image.name.clone(), done));
    }
    Ok(pushed)
}

/// Writes every blob of a bundle into `layout/blobs/sha256/`, refusing one
/// whose content does not hash to its name; returns `bundle.json`.
fn unpack_blobs(path: &Path, layout: &Path) -> anyhow::Result<BundleIndex> {
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let Streamed { index, stopped } = stream(path, |expected, entry| {
        let target = blobs.join(expected.0.to_string());
        // A read failing here is a damaged bundle; a write, the disk.
        let disk = |e: io::Error| fail(Category::Io, format!("writing {}: {e}", target.display()));
        let mut w = HashingWriter::new(BufWriter::new(File::create(&target).map_err(disk)?));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).map_err(|e| {
                fail(
                    Category::BadImage,
                    format!("{}: blob {expected} is unreadable: {e}", path.display()),
                )
            })?;
            if n == 0 {
                break;
            }
            io::Write::write_all(&mut w, &buf[..n]).map_err(disk)?;
        }
        let (found, _, buffered) = w.finish();
        buffered.into_inner().map_err(|e| disk(e.into_error()))?;
        if Digest(found) != expected {
            return Err(fail(
                Category::BadImage,
                format!(
                    "{}: blob {expected} is damaged: its content hashes to sha256:{found}",
                    path.display()
                ),
            ));
        }
        Ok(())
    })?;
    if let Some((e, current)) = stopped {
        // The blob handler's failures say what failed; the archive's own
        // (a cut or garbled stream) mean a truncated or damaged bundle.
        if e.chain().any(|c| c.is::<crate::error::Failure>()) {
            return Err(e);
        }
        if let Some(cut) = truncated(path, &e, current) {
            return Err(cut);
        }
        return Err(fail(
            Category::BadImage,
            format!("{} is damaged: {e:#}", path.display()),
        ));
    }
    index.ok_or_else(|| {
        fail(
            Category::BadImage,
            format!("{} has no {INDEX}; not an edgeforge bundle", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "sha256:b223da1e787676281b35dbdd5bd4436febe5712701fa74db6d07f62804034f45";
    const IMAGE: &str = "sha256:0d5a2bcd6b5ab7e9e7f5b5c8a0c3c6a1c9a7f1d1b5e4d3c2b1a0f9e8d7c6b5a4";

    #[test]
    fn a_recorded_reference_reads_back_with_the_tag_it_had() {
        let image: Digest = IMAGE.parse().unwrap();
        let pinned = Reference::parse(&format!("quay.io/kairos/ubuntu:22.04@{LIST}")).unwrap();
        assert_eq!(
            recorded_reference(pinned, &image),
            "quay.io/kairos/ubuntu:22.04"
        );
        // By digest alone: no tag is made up, so `load` refuses it by name.
        let by_digest = Reference::parse(&format!("quay.io/kairos/ubuntu@{LIST}")).unwrap();
        let recorded = recorded_reference(by_digest, &image);
        assert_eq!(recorded, format!("quay.io/kairos/ubuntu@{IMAGE}"));
        assert_eq!(Reference::parse(&recorded).unwrap().tag, None);
    }
}
