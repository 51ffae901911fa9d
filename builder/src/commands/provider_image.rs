use crate::cli::ProviderImageArgs;
use crate::definition::LoadedDefinition;
use crate::output_set::OutputSet;
use crate::preflight;
use crate::provider::{self, BuildSettings};

pub fn run(
    a: ProviderImageArgs,
    epoch: u64,
    cache: Option<std::path::PathBuf>,
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
    for image in images {
        println!(
            "{}\t{}\tsha256:{}\t{} bytes\tmanifest {}",
            image.archive.display(),
            image.variant.reference,
            image.sha256,
            image.size,
            image.manifest_digest
        );
    }
    Ok(())
}
