//! `unpack`: an image flattened into a new folder. The tree is built inside
//! a fresh folder created beside OUT under a random name (mkdtemp: nothing
//! already there is followed or merged into; 0700 while incomplete) and
//! renamed onto OUT without replacing anything, so of two unpacks to one
//! OUT one wins and the other fails. The folder is locked while its unpack
//! lives; the next unpack to the same OUT removes those of killed ones (an
//! unpack killed before it began the tree leaves an empty folder).

use std::fs;
use std::path::Path;

use anyhow::Context;

use super::report::{self, Report};
use crate::cli::{OutputFormat, UnpackArgs};
use crate::error::{fail, Category};
use crate::io::rename_noreplace;
use crate::leftovers;
use crate::log::info;
use crate::oci::{flatten, source::SourceImage};

/// `edgeforge.unpack/v1`
#[derive(serde::Serialize)]
struct Unpacked {
    dir: String,
    layers: usize,
    entries: u64,
    whiteouts: u64,
    /// Device nodes not made (not running as root).
    skipped_devices: u64,
}

impl Report for Unpacked {
    const SCHEMA: &'static str = "edgeforge.unpack/v1";
    fn print_text(&self) {
        println!("{}", self.dir);
    }
}

pub fn run(a: UnpackArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    let exists = || {
        fail(
            Category::Usage,
            format!(
                "{} already exists; unpack creates a new folder",
                a.out.display()
            ),
        )
    };
    // symlink_metadata: a symlink there, even a dangling one, is taken too.
    if fs::symlink_metadata(&a.out).is_ok() {
        return Err(exists());
    }
    let name = a
        .out
        .file_name()
        .ok_or_else(|| {
            fail(
                Category::Usage,
                format!("--out {} names no folder", a.out.display()),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let image = SourceImage::open(&a.image, Path::new("."), &a.arch)?;
    // Unpacked layers take a few times their compressed size.
    crate::preflight::check(&crate::preflight::Needs {
        tools: &[],
        out_dir: parent,
        bytes: 3 * image.layers.iter().map(|l| l.size).sum::<u64>(),
    })?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let prefix = format!(".{name}.edgeforge-unpack-");
    remove_killed(parent, &prefix)?;
    let temp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .with_context(|| format!("creating a folder in {}", parent.display()))?;
    let _held = leftovers::hold(temp.path())?;
    let root = temp.path().join("rootfs");
    let stats = flatten::flatten(&image, &root, epoch)?;
    rename_noreplace(&root, &a.out).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST | libc::ENOTEMPTY) => exists(),
        _ => anyhow::Error::new(e).context(format!("renaming into {}", a.out.display())),
    })?;
    info!(
        "{} layers, {} entries, {} whiteouts applied, {} device nodes skipped",
        stats.layers, stats.entries, stats.whiteouts, stats.skipped_devices
    );
    report::emit(
        output,
        &Unpacked {
            dir: a.out.display().to_string(),
            layers: stats.layers,
            entries: stats.entries,
            whiteouts: stats.whiteouts,
            skipped_devices: stats.skipped_devices,
        },
    )
}

/// Removes the folders of killed unpacks to the same OUT: those holding a
/// tree (so their unpack had locked them) that no one holds.
fn remove_killed(parent: &Path, prefix: &str) -> anyhow::Result<()> {
    let rd = fs::read_dir(parent).with_context(|| format!("reading {}", parent.display()))?;
    for e in rd.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().starts_with(prefix)
            && e.file_type().is_ok_and(|t| t.is_dir())
            && leftovers::abandoned(&path, path.join("rootfs").exists())
        {
            info!("removing {}, left by an interrupted unpack", path.display());
            leftovers::remove_tree(&path)?;
        }
    }
    Ok(())
}
