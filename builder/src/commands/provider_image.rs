use serde::Serialize;

use super::report::{self, Report};
use crate::cli::{OutputFormat, ProviderImageArgs};
use crate::definition::LoadedDefinition;
use crate::output_set::OutputSet;
use crate::preflight;
use crate::provider::{self, BuildSettings};

/// `edgeforge.provider-image/v1`
#[derive(Serialize)]
struct Built {
    images: Vec<Image>,
}

#[derive(Serialize)]
struct Image {
    variant: String,
    file: String,
    reference: String,
    sha256: String,
    size: u64,
    manifest_digest: String,
}

impl Report for Built {
    const SCHEMA: &'static str = "edgeforge.provider-image/v1";
    fn print_text(&self) {
        for i in &self.images {
            println!(
                "{}\t{}\tsha256:{}\t{} bytes\tmanifest {}",
                i.file, i.reference, i.sha256, i.size, i.manifest_digest
            );
        }
    }
}

pub fn run(
    a: ProviderImageArgs,
    epoch: u64,
    cache: Option<std::path::PathBuf>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let l = LoadedDefinition::load(&a.def.definition, &a.def.sets)?;
    preflight::check(&preflight::Needs {
        tools: &[],
        out_dir: &a.out,
        bytes: provider::estimate(&l, l.variants().len()),
    })?;
    let mut set = OutputSet::open(&a.out)?;
    let settings = BuildSettings {
        out_dir: a.out,
        epoch,
        cache,
        // No user-data here; the definition's proxy passwords are added by
        // the provider stage itself.
        secrets: Vec::new(),
    };
    let images = provider::build(&l, &l.variants(), &settings, &mut set)?;
    set.commit(None)?;
    let built = Built {
        images: images
            .into_iter()
            .map(|i| Image {
                variant: i.variant.name.clone(),
                file: i.archive.display().to_string(),
                reference: i.variant.reference.clone(),
                sha256: i.sha256.to_string(),
                size: i.size,
                manifest_digest: i.manifest_digest.to_string(),
            })
            .collect(),
    };
    report::emit(output, &built)
}
