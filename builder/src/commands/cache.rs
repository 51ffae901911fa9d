//! `cache prune`: every kind of cache entry not used for some days.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::report::{self, Report};
use crate::cli::OutputFormat;
use crate::error::{fail, Category};
use crate::freed::Freed;

/// `edgeforge.cache-prune/v1`
#[derive(Serialize)]
struct Pruned {
    cache_dir: String,
    base_image_views: usize,
    layers: usize,
    trees: usize,
    root_filesystems: usize,
    boot_image_sets: usize,
    pulled_registry_images: usize,
    /// Bytes freed, each file counted once however many hard links it has.
    bytes: u64,
}

impl Report for Pruned {
    const SCHEMA: &'static str = "edgeforge.cache-prune/v1";
    fn print_text(&self) {
        println!(
            "{}: removed {} base image views, {} cached layers, {} flattened trees, {} root filesystems, {} boot image sets and {} pulled registry images, {} bytes",
            self.cache_dir, self.base_image_views, self.layers, self.trees, self.root_filesystems, self.boot_image_sets, self.pulled_registry_images, self.bytes
        );
    }
}

pub fn prune(
    cache: Option<PathBuf>,
    older_than_days: u64,
    all: bool,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let dir = cache.ok_or_else(|| {
        fail(
            Category::Usage,
            "no cache folder: give --cache-dir or set HOME",
        )
    })?;
    let age = if all {
        Duration::ZERO
    } else {
        Duration::from_secs(older_than_days * 86_400)
    };
    // One tally across kinds: a file linked from two entries frees its
    // bytes once.
    let mut freed = Freed::default();
    let pruned = Pruned {
        layers: crate::layer::cache::prune(&dir, age, &mut freed)?,
        root_filesystems: crate::iso::rootfs::prune(&dir, age, &mut freed)?,
        boot_image_sets: crate::iso::boot::prune(&dir, age, &mut freed)?,
        trees: crate::oci::tree_cache::prune(&dir, age, &mut freed)?,
        base_image_views: crate::layer::lower::prune(&dir, age, &mut freed)?,
        pulled_registry_images: crate::registry::prune::prune(&dir, age, &mut freed)?,
        cache_dir: dir.display().to_string(),
        bytes: 0,
    };
    report::emit(
        output,
        &Pruned {
            bytes: freed.bytes,
            ..pruned
        },
    )
}
