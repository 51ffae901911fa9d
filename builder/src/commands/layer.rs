use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::cli::LayerArgs;
use crate::error::{fail, Category};
use crate::layer::{self, lower::LowerView, secrets::SecretGuard, LayerWriter, Placement};
use crate::progress::Progress;

pub fn run(a: LayerArgs, epoch: u64) -> anyhow::Result<()> {
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
    let mut w = LayerWriter::create(&temp, epoch, SecretGuard::new(Vec::new()), Some(&progress))?;
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
    println!(
        "{}\tdigest {}\tdiff_id {}\tsize {}",
        a.out.display(),
        blob.descriptor.digest,
        blob.diff_id,
        blob.descriptor.size
    );
    Ok(())
}
