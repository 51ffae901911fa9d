//! `disk` and `disk embed`: appliance disk images from a provider image, and
//! per-site disks from a golden one.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::{DiskArgs, DiskEmbedArgs, OutputFormat};
use crate::definition::LoadedDefinition;
use crate::disk::{self, Format};
use crate::error::{fail, Category};
use crate::host_tools::{self, Requirement};
use crate::iso::RootfsSource;
use crate::output_set::OutputSet;
use crate::preflight;
use crate::progress::Progress;
use crate::provider::{file_name, BuildSettings};

use super::report::{self, Report};
use super::user_data_source;

/// `edgeforge.disk/v1`
#[derive(serde::Serialize)]
struct Disks {
    outputs: Vec<Written>,
}

#[derive(serde::Serialize)]
struct Written {
    path: String,
    format: String,
    sha256: String,
    size: u64,
}

impl Report for Disks {
    const SCHEMA: &'static str = "edgeforge.disk/v1";
    fn print_text(&self) {
        for w in &self.outputs {
            println!("{}\tsha256:{}\t{} bytes", w.path, w.sha256, w.size);
        }
    }
}

/// `edgeforge.disk-embed/v1`
#[derive(serde::Serialize)]
struct Embedded {
    golden: String,
    path: String,
    name: String,
    sha256: String,
    user_data_sha256: String,
    /// How long the copy, patch and conversion took.
    seconds: f64,
}

impl Report for Embedded {
    const SCHEMA: &'static str = "edgeforge.disk-embed/v1";
    fn print_text(&self) {
        println!(
            "{}\tsha256:{}\tuser-data sha256:{}\t{:.1}s",
            self.path, self.sha256, self.user_data_sha256, self.seconds
        );
    }
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
    disk::check_inputs(&l, user_data.as_ref(), &formats)?;
    let variants = l.variants();
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
        cache,
        secrets: Vec::new(),
    };
    let sources = super::rootfs_sources::for_variants(
        &l,
        &variants,
        a.rootfs.as_ref(),
        a.provider_image.as_ref(),
        &a.out,
    )?;
    let mut tools: Vec<&Requirement> = host_tools::BUILD.to_vec();
    tools.extend(host_tools::DISK);
    if formats.iter().any(|f| f.needs_qemu_img()) {
        tools.push(&host_tools::QEMU_IMG);
    }
    // The ISO stage's tree and squashfs, the raw disk, and each format.
    let per_source = 3 + formats.len() as u64;
    preflight::check(&preflight::Needs {
        tools: &tools,
        out_dir: &a.out,
        bytes: sources
            .iter()
            .map(|(_, s)| {
                let (RootfsSource::ProviderImage(p) | RootfsSource::Folder(p)) = s;
                per_source * preflight::size_of(p)
            })
            .sum(),
    })?;
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
    let outputs = written
        .into_iter()
        .map(|d| Written {
            path: d.path.display().to_string(),
            format: d.format.to_string(),
            sha256: d.sha256.to_string(),
            size: d.size,
        })
        .collect();
    report::emit(output, &Disks { outputs })
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

pub fn embed(a: &DiskEmbedArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    let ud = user_data_source::require(&a.user_data, || {
        user_data_source::site_renderer(a.templates.definition.as_deref(), epoch)
    })?;
    let folder = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    preflight::check(&preflight::Needs {
        tools: &[],
        out_dir: folder,
        // A compressed golden disk is unpacked to raw on the way.
        bytes: 4 * preflight::size_of(&a.golden),
    })?;
    // The disk with its checksums (`.sha256`, the folder's SHA256SUMS), or nothing.
    let (mut set, at) = OutputSet::for_file(&a.out)?;
    let started = Instant::now();
    let progress = Progress::spinner(format!("writing {}", a.out.display()));
    let (file, sha) = disk::embed::stage(&a.golden, ud.bytes(), &at, 0o600)?;
    progress.finish();
    set.stage(file, sha);
    set.commit(None)?;
    let seconds = started.elapsed().as_secs_f64();
    report::emit(
        output,
        &Embedded {
            golden: a.golden.display().to_string(),
            path: a.out.display().to_string(),
            name: file_name(&a.out),
            sha256: sha.to_string(),
            user_data_sha256: ud.sha256.to_string(),
            seconds: (seconds * 100.0).round() / 100.0,
        },
    )
}
