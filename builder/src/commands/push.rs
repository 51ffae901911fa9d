//! `push`: a provider image archive to a registry (its own recorded
//! reference by default), the pushed manifest digest checked against the
//! local one.

use std::path::Path;

use serde::Serialize;

use super::report::{self, Report};
use crate::cli::{OutputFormat, PushArgs};
use crate::error::{fail, Category};
use crate::oci::source::SourceImage;
use crate::registry::{push, reference::Reference};

/// `edgeforge.push/v1`
#[derive(Serialize)]
struct Pushed {
    archive: String,
    /// `REFERENCE@sha256:...` as pushed.
    reference: String,
    /// The local manifest digest, which the registry's equals.
    digest: String,
}

impl Report for Pushed {
    const SCHEMA: &'static str = "edgeforge.push/v1";
    fn print_text(&self) {
        println!("{}", self.reference);
    }
}

pub fn run(a: &PushArgs, output: OutputFormat) -> anyhow::Result<()> {
    let spec = format!("oci-archive:{}", a.archive.display());
    // Opened (every metadata blob verified) for its digest and default reference.
    let image = SourceImage::open(&spec, Path::new("."), &a.arch)?;
    let target = match (&a.reference, &image.reference) {
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
    report::emit(
        output,
        &Pushed {
            archive: a.archive.display().to_string(),
            reference: pushed.to_string(),
            digest: image.manifest_digest.to_string(),
        },
    )
}
