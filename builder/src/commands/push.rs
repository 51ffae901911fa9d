//! `push`: a provider image archive to a registry (its own recorded
//! reference by default), the pushed manifest digest checked against the
//! local one.

use std::path::Path;

use crate::cli::{OutputFormat, PushArgs};
use crate::error::{fail, Category};
use crate::oci::source::SourceImage;
use crate::registry::{push, reference::Reference};

pub fn run(a: &PushArgs, output: OutputFormat) -> anyhow::Result<()> {
    let spec = format!("oci-archive:{}", a.archive.display());
    // Opened (every metadata blob verified) for its digest and default reference.
    let image = SourceImage::open(&spec, Path::new("."), &a.arch)?;
    let target = match (&a.reference, &image.image_name) {
        (Some(r), _) => r.strip_prefix("docker://").unwrap_or(r),
        (None, Some(name)) => name.as_str(),
        (None, None) => {
            return Err(fail(
                Category::Usage,
                format!("{} does not name its registry/repository:tag; give REF: edgeforge push ARCHIVE HOST/REPOSITORY:TAG", a.archive.display()),
            ))
        }
    };
    let target = Reference::parse(target)?;
    let pushed = push::push(&spec, &image.manifest_digest, &target)?;
    if output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "schema": "edgeforge.push/v1",
                "archive": a.archive,
                "reference": pushed,
                "digest": image.manifest_digest,
            }))?
        );
    } else {
        println!("{pushed}");
    }
    Ok(())
}
