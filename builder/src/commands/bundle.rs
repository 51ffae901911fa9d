use std::path::Path;

use crate::bundle;
use crate::cli::{BundleAction, BundleCommand, OutputFormat};
use crate::error::{fail, Category};
use crate::log::info;

pub fn run(c: BundleCommand, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    if let Some(BundleAction::Load { bundle: path, to }) = &c.action {
        return load(path, to, output);
    }
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
    let (digest, size) = bundle::write(&images, &c.arch, &out, epoch)?;
    info!("bundle of {} images", images.len());
    crate::checksums::write_sidecar(&out, &digest)?;
    println!("{}\tsha256:{digest}\t{size} bytes", out.display());
    Ok(())
}

fn load(path: &Path, to: &str, output: OutputFormat) -> anyhow::Result<()> {
    // Before the bundle is unpacked.
    crate::registry::push::require_online(to)?;
    let pushed = bundle::load(path, to)?;
    if output == OutputFormat::Json {
        let images: Vec<_> = pushed
            .iter()
            .map(|(n, r)| serde_json::json!({"name": n, "pushed": r}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "schema": "edgeforge.bundle-load/v1",
                "bundle": path,
                "to": to,
                "images": images,
            }))?
        );
    } else {
        for (name, reference) in &pushed {
            println!("{name}\t{reference}");
        }
    }
    Ok(())
}
