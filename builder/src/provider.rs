//! The provider image stage: base image + one layer per component + one layer
//! of rendered rootfs overlays, written as an `oci-archive` per variant.
//! Layers unchanged between variants are written once and shared.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use crate::definition::{LoadedDefinition, Variant};
use crate::error::{fail, Category};
use crate::inputs;
use crate::io::{AtomicFile, HashingReader, HashingWriter, Sha256Digest};
use crate::layer::{self, lower::LowerView, LayerBlob, LayerCache, Placement};
use crate::log::info;
use crate::oci::archive::ArchiveWriter;
use crate::oci::source::SourceImage;
use crate::oci::spec::{self, Digest, Index, Manifest, Platform};
use crate::output_set::OutputSet;
use crate::render::{self, Renderer};

pub struct BuildSettings {
    pub out_dir: PathBuf,
    pub epoch: u64,
    /// Where layers are cached across builds; `None` keeps them for this build only.
    pub cache: Option<PathBuf>,
    /// Secret values the run knows besides the definition's (the user-data's
    /// token and passwords, when it builds the ISO too): no layer may carry them.
    pub secrets: Vec<layer::secrets::Secret>,
}

/// One written provider image.
pub struct ProviderImage {
    pub variant: Variant,
    /// Its final name, once the output set is committed.
    pub archive: PathBuf,
    /// Where its bytes are until then.
    pub staged: PathBuf,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub manifest_digest: Digest,
}

/// A layer edgeforge made, with the history line that explains it.
struct NewLayer {
    blob: LayerBlob,
    created_by: String,
}

/// Writes the provider image of every variant and stages it in `set`.
/// About how many bytes building `variants` provider images writes in the
/// output folder: each archive holds the base image and the components
/// (their layers compress to at most about their size).
pub fn estimate(l: &LoadedDefinition, variants: usize) -> u64 {
    let base = match l.def.base_image.split_once(':') {
        Some(("oci" | "oci-archive" | "docker-archive", p)) => p,
        _ => l.def.base_image.as_str(),
    };
    let components: u64 = l
        .def
        .components
        .iter()
        .map(|c| crate::preflight::size_of(&l.resolve(&c.source)))
        .sum();
    (crate::preflight::size_of(&l.resolve(Path::new(base))) + components) * variants as u64
}

pub fn build(
    l: &LoadedDefinition,
    variants: &[Variant],
    s: &BuildSettings,
    set: &mut OutputSet,
) -> anyhow::Result<Vec<ProviderImage>> {
    let def = &l.def;
    fs::create_dir_all(&s.out_dir)
        .with_context(|| format!("creating output folder {}", s.out_dir.display()))?;
    let base = SourceImage::open(&def.base_image, &l.dir, def.arch.as_str())?;
    if !base.config.is_object() {
        return Err(fail(
            Category::BadImage,
            format!("the config of {} is not a JSON object", base.origin),
        ));
    }
    info!("base image {} ({} layers)", base.origin, base.layers.len());
    let work = tempfile::Builder::new()
        .prefix(".edgeforge-work-")
        .tempdir_in(&s.out_dir)
        .with_context(|| format!("creating a work folder in {}", s.out_dir.display()))?;

    let mut secrets = layer::secrets::of_proxy(&def.proxy);
    secrets.extend(s.secrets.iter().cloned());
    let cache = LayerCache::open(
        s.cache.as_deref().unwrap_or(work.path()),
        def.layer_compression,
        secrets,
    )?;
    let modes = def.file_modes();
    let mut lower = LowerViews::new(&base, s.cache.as_deref(), s.epoch);
    let mut shared: Vec<NewLayer> = Vec::new();
    for (i, c) in def.components.iter().enumerate() {
        let src = l.resolve(&c.source);
        let dest = c.destination.as_deref().unwrap_or("/");
        let rel = Path::new(dest.trim_start_matches('/'));
        let kind = if src.is_dir() { "tree" } else { "tarball" };
        let source_digest = inputs::digest_path(&src)?.to_string();
        // Entries are placed on the layers below, so those are inputs too.
        let below = lower_key(&base, &shared, &def.file_modes);
        let key = cache.key(&[
            &s.epoch.to_string(),
            "component",
            dest,
            kind,
            &source_digest,
            &below,
        ]);
        let (blob, cached) = cache
            .get_or_build(&key, s.epoch, |w| {
                let view = lower.upto(&shared)?;
                let to = Placement {
                    lower: view,
                    modes: &modes,
                };
                if src.is_dir() {
                    layer::add_tree(w, &to, &src, rel, s.epoch, &|p| {
                        src.join(p).display().to_string()
                    })
                } else {
                    layer::add_tarball(w, &to, &src, rel, s.epoch)
                }
            })
            .with_context(|| {
                format!("building the layer of components[{i}] ({})", src.display())
            })?;
        info!(
            "layer components[{i}] {} -> {} ({} bytes{})",
            src.display(),
            blob.descriptor.digest,
            blob.descriptor.size,
            if cached { ", cached" } else { "" }
        );
        shared.push(NewLayer {
            blob,
            created_by: format!("edgeforge: component {} at {dest}", c.source.display()),
        });
    }

    let revision = def.revision.clone().or_else(|| git_revision(&l.dir));
    let mut images = Vec::new();
    for variant in variants {
        let mut layers: Vec<&NewLayer> = shared.iter().collect();
        let below = Below {
            key: lower_key(&base, &shared, &def.file_modes),
            views: &mut lower,
            layers: &shared,
            modes: &modes,
        };
        let overlay = overlay_layer(l, variant, work.path(), &cache, s.epoch, below)?;
        if let Some(o) = &overlay {
            layers.push(o);
        }
        let archive = s.out_dir.join(format!("{}.oci.tar", variant.name));
        let (mut image, file) = write_archive(
            l,
            &base,
            &layers,
            variant,
            revision.as_deref(),
            &archive,
            s.epoch,
        )
        .with_context(|| format!("writing provider image {}", archive.display()))?;
        info!(
            "provider image {} ({})",
            variant.reference, image.manifest_digest
        );
        // Final names only when the whole set is committed.
        image.staged = set.stage(file, image.sha256);
        images.push(image);
    }
    Ok(images)
}

/// Renders the rootfs overlays for `variant` and packs them as one layer.
fn overlay_layer(
    l: &LoadedDefinition,
    variant: &Variant,
    work: &Path,
    cache: &LayerCache,
    epoch: u64,
    below: Below<'_, '_>,
) -> anyhow::Result<Option<NewLayer>> {
    let trees: Vec<PathBuf> = l.def.overlays.rootfs.iter().map(|t| l.resolve(t)).collect();
    if trees.is_empty() {
        return Ok(None);
    }
    let rendered = work.join(format!("{}-rootfs", variant.name));
    let mut renderer = renderer_for(l, variant, epoch)?;
    let origins = renderer.render_trees(&trees, &rendered)?;
    let origin = |p: &Path| {
        origins
            .get(p)
            .unwrap_or(&rendered.join(p))
            .display()
            .to_string()
    };
    let key = cache.key(&[
        &epoch.to_string(),
        "overlay",
        &inputs::digest_path(&rendered)?.to_string(),
        &below.key,
    ]);
    let (blob, cached) = cache
        .get_or_build(&key, epoch, |w| {
            let to = Placement {
                lower: below.views.upto(below.layers)?,
                modes: below.modes,
            };
            layer::add_tree(w, &to, &rendered, Path::new(""), epoch, &origin)
        })
        .with_context(|| format!("building the rootfs overlay layer of {}", variant.name))?;
    info!(
        "layer overlays.rootfs -> {} ({} bytes{})",
        blob.descriptor.digest,
        blob.descriptor.size,
        if cached { ", cached" } else { "" }
    );
    Ok(Some(NewLayer {
        blob,
        created_by: "edgeforge: rendered overlays.rootfs".into(),
    }))
}

/// The layers a new layer goes on, for its cache key and its placement.
struct Below<'v, 'b> {
    key: String,
    views: &'v mut LowerViews<'b>,
    layers: &'v [NewLayer],
    modes: &'v BTreeMap<PathBuf, u32>,
}

/// A cache key part for what the new layer is placed on: the base image,
/// the layers edgeforge added before it, and the definition's modes.
fn lower_key(base: &SourceImage, ours: &[NewLayer], modes: &BTreeMap<String, String>) -> String {
    let mut parts = vec![format!("base {}", base.manifest_digest)];
    parts.extend(
        ours.iter()
            .map(|l| format!("layer {}", l.blob.descriptor.digest)),
    );
    parts.extend(modes.iter().map(|(p, m)| format!("mode {p} {m}")));
    parts.join(" ")
}

/// The view of the lower layers, read only when a layer has to be built
/// (a cached layer needs none) and extended layer by layer.
struct LowerViews<'b> {
    base: &'b SourceImage,
    /// Where the base's view is cached across builds.
    cache: Option<&'b Path>,
    epoch: u64,
    view: Option<(usize, LowerView)>,
}

impl<'b> LowerViews<'b> {
    fn new(base: &'b SourceImage, cache: Option<&'b Path>, epoch: u64) -> Self {
        LowerViews {
            base,
            cache,
            epoch,
            view: None,
        }
    }

    /// The base image with `ours` applied on top.
    fn upto(&mut self, ours: &[NewLayer]) -> anyhow::Result<&LowerView> {
        let (seen, view) = match self.view.take() {
            Some((seen, view)) if seen <= ours.len() => (seen, view),
            _ => (
                0,
                LowerView::of_image_cached(self.base, self.cache, self.epoch)?,
            ),
        };
        let (_, view) = self.view.insert((ours.len(), view));
        for layer in &ours[seen..] {
            view.add_layer(&layer.blob)?;
        }
        Ok(view)
    }
}

pub fn renderer_for(
    l: &LoadedDefinition,
    variant: &Variant,
    epoch: u64,
) -> anyhow::Result<Renderer> {
    let ctx = render::context_for(&l.def, variant, epoch)?;
    let templates = l.def.templates.as_ref().map(|t| l.resolve(t));
    Renderer::new(templates.as_deref(), ctx)
}

fn write_archive(
    l: &LoadedDefinition,
    base: &SourceImage,
    layers: &[&NewLayer],
    variant: &Variant,
    revision: Option<&str>,
    path: &Path,
    epoch: u64,
) -> anyhow::Result<(ProviderImage, AtomicFile)> {
    let file = AtomicFile::create(path, 0o644)?;
    let sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut w = ArchiveWriter::new(sink, epoch, path.display().to_string())?;
    for (i, desc) in base.layers.iter().enumerate() {
        let mut blob = base.open_layer(i)?;
        w.add_blob(desc, &mut blob)?;
        blob.finish()?;
    }
    for layer in layers {
        let f = fs::File::open(&layer.blob.path)
            .with_context(|| format!("reading {}", layer.blob.path.display()))?;
        let mut reader = HashingReader::new(f);
        if w.add_blob(&layer.blob.descriptor, &mut reader)? {
            let (digest, _) = reader.finish()?;
            if Digest(digest) != layer.blob.descriptor.digest {
                return Err(fail(
                    Category::BadImage,
                    format!("cached layer {} is damaged; run `edgeforge cache prune --all` and build again", layer.blob.path.display()),
                ));
            }
        }
    }
    let config = image_config(l, base, layers, variant, revision, epoch);
    let config_desc = w.add_json(spec::MEDIA_CONFIG, &config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(spec::MEDIA_MANIFEST.into()),
        config: config_desc,
        layers: base
            .layers
            .iter()
            .cloned()
            .chain(layers.iter().map(|n| n.blob.descriptor.clone()))
            .collect(),
        annotations: Default::default(),
    };
    let mut manifest_desc = w.add_json(spec::MEDIA_MANIFEST, &manifest)?;
    manifest_desc
        .annotations
        .insert(spec::ANNOTATION_REF_NAME.into(), variant.tag.clone());
    manifest_desc.annotations.insert(
        spec::ANNOTATION_IMAGE_NAME.into(),
        variant.reference.clone(),
    );
    manifest_desc.platform = Some(Platform {
        architecture: l.def.arch.as_str().into(),
        os: "linux".into(),
        variant: None,
    });
    let manifest_digest = manifest_desc.digest;
    let index = Index {
        schema_version: 2,
        media_type: Some(spec::MEDIA_INDEX.into()),
        manifests: vec![manifest_desc],
    };
    let (sha256, size, buffered) = w.finish(&index)?.finish();
    let mut file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    file.flush()?;
    Ok((
        ProviderImage {
            variant: variant.clone(),
            archive: path.to_path_buf(),
            staged: PathBuf::new(),
            sha256,
            size,
            manifest_digest,
        },
        file,
    ))
}

/// The base config with our layers, history, labels and the definition's
/// architecture. Everything else (Env, Entrypoint, ...) is kept from the base.
fn image_config(
    l: &LoadedDefinition,
    base: &SourceImage,
    layers: &[&NewLayer],
    variant: &Variant,
    revision: Option<&str>,
    epoch: u64,
) -> Value {
    let def = &l.def;
    let created = spec::rfc3339(epoch);
    let mut c = base.config.clone();
    c["architecture"] = json!(def.arch.as_str());
    c["os"] = json!("linux");
    c["created"] = json!(created);
    if !c["rootfs"].is_object() {
        c["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if !c["rootfs"]["diff_ids"].is_array() {
        c["rootfs"]["diff_ids"] = json!([]);
    }
    // History must line up with the layers; give a bare base one entry per layer.
    if !c["history"].is_array() {
        c["history"] = Value::Array(
            (0..base.layers.len())
                .map(|i| json!({"created": created, "created_by": format!("base image layer {i}")}))
                .collect(),
        );
    }
    for n in layers {
        c["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("set above")
            .push(json!(n.blob.diff_id));
        c["history"]
            .as_array_mut()
            .expect("set above")
            .push(json!({"created": created, "created_by": n.created_by}));
    }
    if !c["config"].is_object() {
        c["config"] = json!({});
    }
    if !c["config"]["Labels"].is_object() {
        c["config"]["Labels"] = json!({});
    }
    let labels = c["config"]["Labels"].as_object_mut().expect("set above");
    let mut put = |k: &str, v: &str| {
        labels.insert(k.into(), json!(v));
    };
    put("org.opencontainers.image.version", &variant.tag);
    put("org.opencontainers.image.created", &created);
    put("io.edgeforge.os.distribution", &def.os.distribution);
    put("io.edgeforge.os.version", &def.os.version);
    put(
        "io.edgeforge.kubernetes.distribution",
        variant.kubernetes_distribution.as_str(),
    );
    put(
        "io.edgeforge.kubernetes.version",
        &variant.kubernetes_version,
    );
    put("io.edgeforge.agent.version", &def.agent.version);
    put("io.edgeforge.fips", if def.fips { "true" } else { "false" });
    if let Some(r) = revision {
        put("org.opencontainers.image.revision", r);
    }
    for (k, v) in &def.labels {
        put(k, v);
    }
    c
}

/// The commit of the definition's checkout, when it is one.
fn git_revision(dir: &Path) -> Option<String> {
    let sh = xshell::Shell::new().ok()?;
    let rev = xshell::cmd!(sh, "git -C {dir} rev-parse HEAD")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    (!rev.is_empty()).then_some(rev)
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .expect("artifacts have file names")
        .to_string_lossy()
        .into_owned()
}
