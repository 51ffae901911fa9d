use std::path::Path;

use crate::bundle;
use crate::cli::{BundleAction, BundleCommand, OutputFormat};
use crate::error::{fail, Category};
use crate::log::info;

pub fn run(c: BundleCommand, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    if let Some(BundleAction::Verify { bundle: path }) = c.action {
        let report = bundle::verify(&path)?;
        if output == OutputFormat::Json {
            let images: Vec<_> = report
                .images
                .iter()
                .map(|(n, d)| serde_json::json!({"name": n, "manifest": d}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"bundle": path, "ok": true, "blobs": report.blobs, "images": images})
                )?
            );
        } else {
            for (name, digest) in &report.images {
                println!("{name}\t{digest}\tOK");
            }
            println!(
                "{}: {} images, {} blobs verified",
                path.display(),
                report.images.len(),
                report.blobs
            );
        }
        return Ok(());
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
    let (digest, size) = bundle::write(&images, &c.arch, &out, epoch)?;
    info!("bundle of {} images", images.len());
    crate::checksums::write_sidecar(&out, &digest)?;
    println!("{}\tsha256:{digest}\t{size} bytes", out.display());
    Ok(())
}
