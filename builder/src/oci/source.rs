//! Reading an image in any form `skopeo copy` writes: an OCI layout folder
//! (`oci:`), an OCI layout in a tar (`oci-archive:`) or a Docker save tar
//! (`docker-archive:`). Every blob is checked against its digest as it is read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::spec::{self, Descriptor, Digest, Index, Manifest, MEDIA_LAYER_TAR};
use crate::error::{fail, io_failure, Category};
use crate::io::HashingReader;
use crate::limits;
use crate::safe_path;

/// An opened image: its layers in order and its config.
pub struct SourceImage {
    store: BlobStore,
    /// What the user named, for messages.
    pub origin: String,
    pub layers: Vec<Descriptor>,
    /// The manifest's digest and bytes (for a docker-archive, of the OCI
    /// manifest that describes it).
    pub manifest_digest: Digest,
    pub manifest_bytes: Vec<u8>,
    pub config_descriptor: Descriptor,
    pub config_bytes: Vec<u8>,
    /// Where each layer lives in the store (parallel to `layers`).
    layer_paths: Vec<String>,
    pub config: serde_json::Value,
    /// The image reference the archive names (`io.containerd.image.name`,
    /// else an `org.opencontainers.image.ref.name` that is a whole
    /// reference rather than a bare tag, else a docker-archive's first
    /// `RepoTags`), if any.
    pub reference: Option<String>,
    /// What must live as long as the image: for a registry image, the
    /// temporary folder it was pulled into without a cache, or its share of
    /// the cache's store (which `cache prune` leaves alone while held).
    pub keep: Option<Box<dyn std::any::Any + Send + Sync>>,
}

enum BlobStore {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        entries: HashMap<String, (u64, u64)>,
    },
}

impl BlobStore {
    /// Opens the file `name` (from index.json, a manifest or a docker-archive's
    /// manifest.json: untrusted) inside the store, never outside it.
    fn open(&self, name: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let rel = confined(name)?;
        let missing = || {
            io_failure(
                Category::BadImage,
                format!("{name} is missing; the image is incomplete: re-export it (skopeo copy)"),
            )
        };
        match self {
            BlobStore::Dir(dir) => {
                let full = match dir.join(&rel).canonicalize() {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    other => other?,
                };
                if !full.starts_with(dir.canonicalize()?) {
                    return Err(io_failure(
                        Category::BadImage,
                        format!("{name} is a symlink to {}, outside the image folder; the image is unsafe to read", full.display()),
                    ));
                }
                let f = File::open(&full)?;
                let len = f.metadata()?.len();
                Ok((Box::new(f), len))
            }
            BlobStore::Tar { path, entries } => {
                let (offset, len) = *entries
                    .get(rel.to_string_lossy().as_ref())
                    .ok_or_else(missing)?;
                let mut f = File::open(path)?;
                f.seek(SeekFrom::Start(offset))?;
                Ok((Box::new(f.take(len)), len))
            }
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            BlobStore::Dir(dir) => dir.join(name).is_file(),
            BlobStore::Tar { entries, .. } => entries.contains_key(name),
        }
    }

    fn read_small(&self, name: &str) -> io::Result<Vec<u8>> {
        let (r, len) = self.open(name)?;
        if len > limits::METADATA_BYTES {
            return Err(io_failure(
                Category::BadImage,
                format!("{name} is {len} bytes, too large for image metadata"),
            ));
        }
        let mut buf = Vec::with_capacity(len as usize);
        r.take(limits::METADATA_BYTES).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// `name` as a relative path inside the image, refused like a layer entry
/// climbing out of the root (a manifest naming `../../etc/shadow`).
fn confined(name: &str) -> io::Result<PathBuf> {
    match safe_path::entry_path(Path::new(name)) {
        Ok(Some(rel)) => Ok(rel),
        Ok(None) => Err(io_failure(
            Category::BadImage,
            format!(
                "`{name}` names the image's top folder, not a file; the image is unsafe to read"
            ),
        )),
        Err(e) => Err(io_failure(
            Category::BadImage,
            format!("the image names {e}; it is unsafe to read"),
        )),
    }
}

/// Indexes a tar's regular files by normalized name (no leading `./`).
fn index_tar(path: &Path) -> anyhow::Result<HashMap<String, (u64, u64)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let mut entries = HashMap::new();
    for entry in archive
        .entries_with_seek()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let entry =
            entry.with_context(|| format!("reading {} as a tar archive", path.display()))?;
        if entry.header().entry_type().is_file() {
            let name = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            entries.insert(name, (entry.raw_file_position(), entry.size()));
        }
    }
    Ok(entries)
}

/// A blob reader that checks, once drained, that the content had the expected
/// size and digest.
pub struct VerifiedBlob {
    reader: HashingReader<Box<dyn Read + Send>>,
    expected: Descriptor,
    origin: String,
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl VerifiedBlob {
    /// Reads whatever is left and compares; a mismatch is a [`Category::BadImage`] error.
    pub fn finish(self) -> io::Result<()> {
        let (digest, size) = self.reader.finish()?;
        let digest = Digest(digest);
        if digest != self.expected.digest || size != self.expected.size {
            return Err(io_failure(
                Category::BadImage,
                format!(
                    "blob {} of {} is corrupt: its content hashes to {digest} ({size} bytes, expected {}); re-export the image (skopeo copy) and try again",
                    self.expected.digest, self.origin, self.expected.size
                ),
            ));
        }
        Ok(())
    }
}

impl SourceImage {
    /// Opens `spec` (`[oci:|oci-archive:|docker-archive:]PATH`, or a registry
    /// reference: see `registry::reference`), choosing the image for `arch`
    /// when the index lists several platforms.
    pub fn open(spec: &str, base_dir: &Path, arch: &str) -> anyhow::Result<SourceImage> {
        if let Some(r) = crate::registry::reference::classify(spec, base_dir)? {
            let pulled = crate::registry::pull::fetch(&r, arch)?;
            let mut image = SourceImage::open_layout_manifest(
                &pulled.layout,
                pulled.manifest,
                r.to_string(),
                arch,
            )?;
            image.keep = Some(pulled.keep);
            return Ok(image);
        }
        let (form, path) = match spec.split_once(':') {
            Some((f @ ("oci" | "oci-archive" | "docker-archive"), p)) => (Some(f), p),
            _ => (None, spec),
        };
        let path = base_dir.join(path);
        if !path.exists() {
            return Err(fail(
                Category::InvalidInput,
                format!("base image {} does not exist (run scripts/make-demo-base.sh for the demo base; a registry image is docker://HOST/REPOSITORY:TAG)", path.display()),
            ));
        }
        let origin = path.display().to_string();
        let store = if path.is_dir() {
            BlobStore::Dir(path.clone())
        } else {
            BlobStore::Tar {
                entries: index_tar(&path)?,
                path: path.clone(),
            }
        };
        let form = match form {
            Some(f) => f,
            None if path.is_dir() => "oci",
            None if store.contains("index.json") && store.contains("oci-layout") => "oci-archive",
            None if store.contains("manifest.json") => "docker-archive",
            None => {
                return Err(fail(
                    Category::InvalidInput,
                    format!("{origin} is neither an OCI layout (no index.json/oci-layout) nor a docker-archive (no manifest.json)"),
                ))
            }
        };
        let image = match form {
            "docker-archive" => Self::open_docker(store, origin)?,
            _ => Self::open_oci(store, origin, arch)?,
        };
        Self::check_arch(image, arch)
    }

    fn check_arch(image: SourceImage, arch: &str) -> anyhow::Result<SourceImage> {
        let found_arch = image.config["architecture"].as_str().unwrap_or("");
        if found_arch != arch {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "{} is built for `{found_arch}`, the definition asks for `{arch}`",
                    image.origin
                ),
            ));
        }
        Ok(image)
    }

    /// A metadata blob's bytes, checked against its digest.
    fn read_verified(
        store: &BlobStore,
        origin: &str,
        desc: &Descriptor,
    ) -> anyhow::Result<Vec<u8>> {
        let bytes = store
            .read_small(&desc.digest.blob_path())
            .with_context(|| format!("reading {} from {origin}", desc.digest))?;
        let found = Digest(crate::io::Sha256Digest::of(&bytes));
        if found != desc.digest {
            return Err(fail(
                Category::BadImage,
                format!("blob {} of {origin} is corrupt: its content hashes to {found}; re-export the image and try again", desc.digest),
            ));
        }
        Ok(bytes)
    }

    fn parse_json<T: serde::de::DeserializeOwned>(
        bytes: &[u8],
        origin: &str,
        desc: &Descriptor,
    ) -> anyhow::Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            fail(
                Category::BadImage,
                format!("blob {} of {origin} is not valid JSON: {e}", desc.digest),
            )
        })
    }

    /// Opens the image `manifest` of the OCI layout folder `dir` (which may
    /// hold many: the registry cache's), whatever its index.json lists.
    pub fn open_layout_manifest(
        dir: &Path,
        manifest: Descriptor,
        origin: String,
        arch: &str,
    ) -> anyhow::Result<SourceImage> {
        let image = Self::open_from(
            BlobStore::Dir(dir.to_path_buf()),
            origin,
            arch,
            vec![manifest],
        )?;
        Self::check_arch(image, arch)
    }

    fn open_oci(store: BlobStore, origin: String, arch: &str) -> anyhow::Result<SourceImage> {
        let index_bytes = store
            .read_small("index.json")
            .with_context(|| format!("reading index.json of {origin}"))?;
        let index: Index = serde_json::from_slice(&index_bytes).map_err(|e| {
            fail(
                Category::BadImage,
                format!("index.json of {origin} is invalid: {e}"),
            )
        })?;
        Self::check_index_size(&index, &origin, "index.json")?;
        Self::open_from(store, origin, arch, index.manifests)
    }

    /// The one `linux/arch` image reachable from `roots`.
    fn open_from(
        store: BlobStore,
        origin: String,
        arch: &str,
        roots: Vec<Descriptor>,
    ) -> anyhow::Result<SourceImage> {
        // Breadth first, each index read once: a small layout whose indexes
        // list the next one many times would otherwise fan out exponentially.
        let mut queue: VecDeque<(Descriptor, usize)> = roots.into_iter().map(|d| (d, 1)).collect();
        let mut seen = HashSet::new();
        let mut candidates = Vec::new();
        while let Some((d, depth)) = queue.pop_front() {
            if d.is_index() {
                if !seen.insert(d.digest) {
                    continue;
                }
                if depth > limits::INDEX_DEPTH {
                    return Err(fail(
                        Category::BadImage,
                        format!("{origin} nests indexes more than {} deep (index {} is at depth {depth}), the limit; real images nest one or two: copy the image you need into its own layout (skopeo copy)", limits::INDEX_DEPTH, d.digest),
                    ));
                }
                let nested: Index =
                    Self::parse_json(&Self::read_verified(&store, &origin, &d)?, &origin, &d)?;
                Self::check_index_size(&nested, &origin, &format!("index {}", d.digest))?;
                queue.extend(nested.manifests.into_iter().map(|m| (m, depth + 1)));
            } else if d.is_manifest() {
                let platform_ok = d
                    .platform
                    .as_ref()
                    .is_none_or(|p| p.architecture == arch && p.os == "linux");
                if platform_ok {
                    candidates.push(d);
                }
            }
        }
        candidates.sort_by_key(|d| d.digest);
        candidates.dedup_by(|a, b| a.digest == b.digest);
        let desc = match candidates.len() {
            1 => candidates.remove(0),
            0 => return Err(fail(Category::InvalidInput, format!("{origin} holds no linux/{arch} image"))),
            n => {
                return Err(fail(
                    Category::InvalidInput,
                    format!("{origin} holds {n} linux/{arch} images; copy the one to use into its own layout (skopeo copy)"),
                ))
            }
        };
        let manifest_bytes = Self::read_verified(&store, &origin, &desc)?;
        let manifest: Manifest = Self::parse_json(&manifest_bytes, &origin, &desc)?;
        let config_bytes = Self::read_verified(&store, &origin, &manifest.config)?;
        let config = Self::parse_json(&config_bytes, &origin, &manifest.config)?;
        let mut layers = manifest.layers;
        for l in &mut layers {
            let c = spec::layer_compression(&l.media_type).ok_or_else(|| {
                fail(
                    Category::BadImage,
                    format!(
                        "layer {} of {origin} has the unsupported media type {}",
                        l.digest, l.media_type
                    ),
                )
            })?;
            l.media_type = spec::oci_layer_media_type(c).into();
        }
        let layer_paths = layers.iter().map(|l| l.digest.blob_path()).collect();
        let reference = desc
            .annotations
            .get(spec::ANNOTATION_IMAGE_NAME)
            .or_else(|| {
                desc.annotations
                    .get(spec::ANNOTATION_REF_NAME)
                    .filter(|r| crate::registry::reference::looks_like_reference(r))
            })
            .cloned();
        Ok(SourceImage {
            store,
            origin,
            layers,
            reference,
            manifest_digest: desc.digest,
            manifest_bytes,
            config_descriptor: manifest.config,
            config_bytes,
            layer_paths,
            config,
            keep: None,
        })
    }

    fn check_index_size(index: &Index, origin: &str, name: &str) -> anyhow::Result<()> {
        if index.manifests.len() > limits::INDEX_ENTRIES {
            return Err(fail(
                Category::BadImage,
                format!("{name} of {origin} lists {} descriptors, more than the limit of {} per index; copy the image you need into its own layout (skopeo copy)", index.manifests.len(), limits::INDEX_ENTRIES),
            ));
        }
        Ok(())
    }

    fn open_docker(store: BlobStore, origin: String) -> anyhow::Result<SourceImage> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            layers: Vec<String>,
            #[serde(default)]
            repo_tags: Vec<String>,
        }
        let bytes = store
            .read_small("manifest.json")
            .with_context(|| format!("reading manifest.json of {origin}"))?;
        let mut entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                Category::BadImage,
                format!("manifest.json of {origin} is invalid: {e}"),
            )
        })?;
        if entries.len() != 1 {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "{origin} holds {} images; a base docker-archive must hold exactly one",
                    entries.len()
                ),
            ));
        }
        let entry = entries.remove(0);
        let config_bytes = store
            .read_small(&entry.config)
            .with_context(|| format!("reading {} of {origin}", entry.config))?;
        // Docker names the config after its digest; check it when it does.
        let stem = entry
            .config
            .trim_start_matches("blobs/sha256/")
            .trim_end_matches(".json");
        if let Ok(named) = format!("sha256:{stem}").parse::<Digest>() {
            let found = Digest(crate::io::Sha256Digest::of(&config_bytes));
            if found != named {
                return Err(fail(
                    Category::BadImage,
                    format!(
                        "config {} of {origin} is corrupt: its content hashes to {found}",
                        entry.config
                    ),
                ));
            }
        }
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).map_err(|e| {
            fail(
                Category::BadImage,
                format!("config {} of {origin} is invalid: {e}", entry.config),
            )
        })?;
        let diff_ids: Vec<Digest> = serde_json::from_value(config["rootfs"]["diff_ids"].clone())
            .map_err(|e| {
                fail(
                    Category::BadImage,
                    format!("config of {origin} has no valid rootfs.diff_ids: {e}"),
                )
            })?;
        if diff_ids.len() != entry.layers.len() {
            return Err(fail(
                Category::BadImage,
                format!(
                    "{origin}: manifest.json lists {} layers, the config {}",
                    entry.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let (mut r, size) = store
                .open(path)
                .with_context(|| format!("opening layer {path} of {origin}"))?;
            let mut magic = [0u8; 2];
            r.read_exact(&mut magic)
                .with_context(|| format!("reading layer {path} of {origin}"))?;
            if magic == [0x1f, 0x8b] {
                return Err(fail(
                    Category::InvalidInput,
                    format!("layer {path} of {origin} is compressed; re-export it with `skopeo copy` (which writes uncompressed docker-archive layers) or as oci-archive"),
                ));
            }
            // Uncompressed: the blob digest is the diff_id.
            layers.push(Descriptor::new(MEDIA_LAYER_TAR, diff_id, size));
        }
        // A docker-archive has no manifest: describe it with an OCI one.
        let config_descriptor = Descriptor::new(
            spec::MEDIA_CONFIG,
            Digest(crate::io::Sha256Digest::of(&config_bytes)),
            config_bytes.len() as u64,
        );
        let manifest_bytes = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(spec::MEDIA_MANIFEST.into()),
            config: config_descriptor.clone(),
            layers: layers.clone(),
            annotations: Default::default(),
        })?;
        Ok(SourceImage {
            store,
            origin,
            layers,
            reference: entry.repo_tags.first().cloned(),
            manifest_digest: Digest(crate::io::Sha256Digest::of(&manifest_bytes)),
            manifest_bytes,
            config_descriptor,
            config_bytes,
            layer_paths: entry.layers,
            config,
            keep: None,
        })
    }

    /// Opens layer `i`; call [`VerifiedBlob::finish`] after use.
    pub fn open_layer(&self, i: usize) -> anyhow::Result<VerifiedBlob> {
        let desc = &self.layers[i];
        let (reader, len) = self
            .store
            .open(&self.layer_paths[i])
            .with_context(|| format!("opening layer {} of {}", desc.digest, self.origin))?;
        if len != desc.size {
            return Err(fail(
                Category::BadImage,
                format!(
                    "layer {} of {} is {len} bytes, its manifest says {}; re-export the image",
                    desc.digest, self.origin, desc.size
                ),
            ));
        }
        Ok(VerifiedBlob {
            reader: HashingReader::new(reader),
            expected: desc.clone(),
            origin: self.origin.clone(),
        })
    }
}
