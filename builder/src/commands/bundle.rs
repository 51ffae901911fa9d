use std::path::Path;

use serde::Serialize;

use super::report::{self, Report};
use crate::bundle;
use crate::cli::{BundleAction, BundleCommand, OutputFormat};
use crate::error::{fail, Category};
use crate::log::info;
use crate::output_set::OutputSet;

/// `edgeforge.bundle/v1`
#[derive(Serialize)]
struct Written {
    file: String,
    sha256: String,
    size: u64,
    images: Vec<Packed>,
}

#[derive(Serialize)]
struct Packed {
    name: String,
    source: String,
}

impl Report for Written {
    const SCHEMA: &'static str = "edgeforge.bundle/v1";
    fn print_text(&self) {
        println!("{}\tsha256:{}\t{} bytes", self.file, self.sha256, self.size);
    }
}

/// `edgeforge.bundle-verify/v1`
#[derive(Serialize)]
struct Verified {
    bundle: String,
    ok: bool,
    blobs: usize,
    images: Vec<VerifiedImage>,
}

#[derive(Serialize)]
struct VerifiedImage {
    name: String,
    manifest: String,
}

impl Report for Verified {
    const SCHEMA: &'static str = "edgeforge.bundle-verify/v1";
    fn print_text(&self) {
        for i in &self.images {
            println!("{}\t{}\tOK", i.name, i.manifest);
        }
        println!(
            "{}: {} images, {} blobs verified",
            self.bundle,
            self.images.len(),
            self.blobs
        );
    }
}

pub fn run(c: BundleCommand, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    if let Some(BundleAction::Load { bundle: path, to }) = &c.action {
        return load(path, to, output);
    }
    if let Some(BundleAction::Verify { bundle: path }) = c.action {
        let r = bundle::verify(&path)?;
        return report::emit(
            output,
            &Verified {
                bundle: path.display().to_string(),
                ok: true,
                blobs: r.blobs,
                images: r
                    .images
                    .iter()
                    .map(|(n, d)| VerifiedImage {
                        name: n.clone(),
                        manifest: d.to_string(),
                    })
                    .collect(),
            },
        );
    }
    let out = c.out.ok_or_else(|| {
        fail(
            Category::Usage,
            "give -o FILE.tar.zst for the bundle (or `bundle verify FILE`)",
        )
    })?;
    if c.images.is_empty() {
        return Err(fail(
            Category::Usage,
            "name at least one image: edgeforge bundle [NAME=]PATH... -o FILE.tar.zst",
        ));
    }
    let images: Vec<(String, String)> = c
        .images
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((name, path)) => (name.to_string(), path.to_string()),
            None if crate::registry::reference::looks_like_reference(spec) => (
                spec.strip_prefix("docker://").unwrap_or(spec).to_string(),
                spec.clone(),
            ),
            None => {
                let path = spec.rsplit_once(':').map_or(spec.as_str(), |(_, p)| p);
                let name = Path::new(path)
                    .file_name()
                    .map_or(spec.clone(), |n| n.to_string_lossy().into_owned());
                (name, spec.clone())
            }
        })
        .collect();
    // The bundle holds the images' blobs, compressed again (at most about
    // their size).
    crate::preflight::check(&crate::preflight::Needs {
        tools: &[],
        out_dir: match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        },
        bytes: images
            .iter()
            .map(|(_, spec)| {
                let path = spec.rsplit_once(':').map_or(spec.as_str(), |(_, p)| p);
                crate::preflight::size_of(Path::new(path))
            })
            .sum(),
    })?;
    // The bundle with its checksums (`.sha256`, the folder's SHA256SUMS), or nothing.
    let (mut set, at) = OutputSet::for_file(&out)?;
    let (file, digest, size) = bundle::stage(&images, &c.arch, &at, epoch)?;
    set.stage(file, digest);
    set.commit(None)?;
    info!("bundle of {} images", images.len());
    report::emit(
        output,
        &Written {
            file: out.display().to_string(),
            sha256: digest.to_string(),
            size,
            images: images
                .into_iter()
                .map(|(name, source)| Packed { name, source })
                .collect(),
        },
    )
}

/// `edgeforge.bundle-load/v1`
#[derive(Serialize)]
struct Loaded {
    bundle: String,
    to: String,
    images: Vec<LoadedImage>,
}

#[derive(Serialize)]
struct LoadedImage {
    name: String,
    /// `REFERENCE@sha256:...` in the site's registry.
    pushed: String,
}

impl Report for Loaded {
    const SCHEMA: &'static str = "edgeforge.bundle-load/v1";
    fn print_text(&self) {
        for i in &self.images {
            println!("{}\t{}", i.name, i.pushed);
        }
    }
}

fn load(path: &Path, to: &str, output: OutputFormat) -> anyhow::Result<()> {
    // Before the bundle is unpacked.
    crate::registry::push::require_online(to)?;
    let pushed = bundle::load(path, to)?;
    report::emit(
        output,
        &Loaded {
            bundle: path.display().to_string(),
            to: to.to_string(),
            images: pushed
                .into_iter()
                .map(|(name, pushed)| LoadedImage {
                    name,
                    pushed: pushed.to_string(),
                })
                .collect(),
        },
    )
}
