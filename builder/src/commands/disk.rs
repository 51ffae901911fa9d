//! `disk` and `disk embed`: appliance disk images from a provider image, and
//! per-site disks from a golden one.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::checksums;
use crate::cli::{DiskArgs, DiskEmbedArgs, OutputFormat};
use crate::definition::LoadedDefinition;
use crate::disk::{self, Format};
use crate::error::{fail, Category};
use crate::iso::RootfsSource;
use crate::output_set::OutputSet;
use crate::progress::Progress;
use crate::provider::{file_name, BuildSettings};
use crate::render::Renderer;

use super::user_data_source;

#[derive(serde::Serialize)]
struct Written {
    path: String,
    format: String,
    sha256: String,
    size: u64,
}

pub fn run(
    a: DiskArgs,
    epoch: u64,
    cache: Option<PathBuf>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let definition = a.definition.as_ref().ok_or_else(|| {
        fail(
            Category::Usage,
            "edgeforge disk needs IMAGE_YAML (or a subcommand: `disk embed GOLDEN_DISK ...`)",
        )
    })?;
    let l = LoadedDefinition::load(definition, &a.sets)?;
    let user_data = user_data_source::for_iso(&a.user_data, &l, epoch, a.golden)?;
    let formats = formats(&a.formats, &l.def.disk.formats);
    let variants = l.variants();
    if variants.len() > 1 && (a.provider_image.is_some() || a.rootfs.is_some()) {
        return Err(fail(
            Category::Usage,
            format!("{} builds {} variants; --provider-image and --rootfs take one: pick a version with --set kubernetes.version=...", l.path.display(), variants.len()),
        ));
    }
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
        cache,
        secrets: Vec::new(),
    };
    let mut sources = Vec::new();
    for variant in &variants {
        let source = match (&a.rootfs, &a.provider_image) {
            (Some(dir), _) => RootfsSource::Folder(dir.clone()),
            (None, Some(archive)) => RootfsSource::ProviderImage(archive.clone()),
            (None, None) => {
                RootfsSource::ProviderImage(a.out.join(format!("{}.oci.tar", variant.name)))
            }
        };
        let (RootfsSource::ProviderImage(p) | RootfsSource::Folder(p)) = &source;
        if !p.exists() {
            return Err(fail(
                Category::InvalidInput,
                format!("{} does not exist: run `edgeforge provider-image` first, or `edgeforge build` for both", p.display()),
            ));
        }
        sources.push((variant, source));
    }
    let mut set = OutputSet::open(&a.out)?;
    let mut written = Vec::new();
    for (variant, source) in sources {
        written.extend(disk::build(
            &l,
            variant,
            &source,
            user_data.as_ref(),
            &formats,
            &settings,
            &mut set,
        )?);
    }
    set.commit(None)?;
    let written: Vec<Written> = written
        .into_iter()
        .map(|d| Written {
            path: d.path.display().to_string(),
            format: d.format.to_string(),
            sha256: d.sha256.to_string(),
            size: d.size,
        })
        .collect();
    if output == OutputFormat::Json {
        let doc = serde_json::json!({"schema": "edgeforge.disk/v1", "outputs": written});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for w in &written {
            println!("{}\tsha256:{}\t{} bytes", w.path, w.sha256, w.size);
        }
    }
    Ok(())
}

/// `--format` when given, else the definition's `disk.formats`, else raw;
/// each once, in the order given.
pub fn formats(flags: &[Format], defined: &[Format]) -> Vec<Format> {
    let asked = if !flags.is_empty() {
        flags
    } else if !defined.is_empty() {
        defined
    } else {
        &[Format::Raw]
    };
    let mut out = Vec::new();
    for f in asked {
        if !out.contains(f) {
            out.push(*f);
        }
    }
    out
}

pub fn embed(a: &DiskEmbedArgs, output: OutputFormat) -> anyhow::Result<()> {
    let ud = user_data_source::require(&a.user_data, || Renderer::new(None, tera::Context::new()))?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let started = Instant::now();
    let progress = Progress::spinner(format!("writing {}", a.out.display()));
    let sha = disk::embed::write(&a.golden, ud.bytes(), &a.out, 0o600)?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    checksums::write_sidecar(&a.out, &sha)?;
    if output == OutputFormat::Json {
        let doc = serde_json::json!({
            "schema": "edgeforge.disk-embed/v1",
            "golden": a.golden.display().to_string(),
            "path": a.out.display().to_string(),
            "name": file_name(&a.out),
            "sha256": sha.to_string(),
            "user_data_sha256": ud.sha256.to_string(),
            "seconds": (seconds * 100.0).round() / 100.0,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}\tsha256:{sha}\tuser-data sha256:{}\t{seconds:.1}s",
            a.out.display(),
            ud.sha256
        );
    }
    Ok(())
}
