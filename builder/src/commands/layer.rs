use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::report::{self, Report};
use crate::cli::{LayerArgs, OutputFormat};
use crate::error::{fail, Category};
use crate::layer::{self, lower::LowerView, secrets::SecretGuard, LayerWriter, Placement};
use crate::progress::Progress;

/// `edgeforge.layer/v1`
#[derive(serde::Serialize)]
struct Written {
    file: String,
    /// The blob's `sha256:` digest (the compressed file), as a manifest lists it.
    digest: String,
    /// The uncompressed tar's `sha256:` digest, as an image config lists it.
    diff_id: String,
    size: u64,
}

impl Report for Written {
    const SCHEMA: &'static str = "edgeforge.layer/v1";
    fn print_text(&self) {
        println!(
            "{}\tdigest {}\tdiff_id {}\tsize {}",
            self.file, self.digest, self.diff_id, self.size
        );
    }
}

pub fn run(a: LayerArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    if !a.destination.starts_with('/') || a.destination.split('/').any(|s| s == "..") {
        return Err(fail(
            Category::Usage,
            format!(
                "--destination `{}` must be an absolute path without `..`",
                a.destination
            ),
        ));
    }
    let dest = Path::new(a.destination.trim_start_matches('/'));
    let dir = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A gzip layer is at most about its source's size.
    crate::preflight::check(&crate::preflight::Needs {
        tools: &[],
        out_dir: dir,
        bytes: crate::preflight::size_of(&a.source),
    })?;
    let temp = tempfile::Builder::new()
        .prefix(".edgeforge-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?
        .into_temp_path();
    // Marks it in use: a build into the same folder removes only dead runs' files.
    let _held = crate::leftovers::hold(&temp)?;
    let progress = Progress::bytes(format!("layer {}", a.out.display()));
    let mut w = LayerWriter::create(
        &temp,
        a.compression,
        epoch,
        SecretGuard::new(Vec::new()),
        Some(&progress),
    )?;
    // A layer on its own: nothing below it to place entries on.
    let lower = LowerView::default();
    let modes = BTreeMap::new();
    let to = Placement {
        lower: &lower,
        modes: &modes,
    };
    if a.source.is_dir() {
        layer::add_tree(&mut w, &to, &a.source, dest, epoch, &|p| {
            a.source.join(p).display().to_string()
        })?;
    } else {
        layer::add_tarball(&mut w, &to, &a.source, dest, epoch)?;
    }
    let blob = w.finish()?;
    progress.finish();
    temp.persist(&a.out)
        .with_context(|| format!("renaming into {}", a.out.display()))?;
    report::emit(
        output,
        &Written {
            file: a.out.display().to_string(),
            digest: blob.descriptor.digest.to_string(),
            diff_id: blob.diff_id.to_string(),
            size: blob.descriptor.size,
        },
    )
}
