use serde::Serialize;

use super::report::{self, Report};
use crate::cli::{IsoArgs, OutputFormat};
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::host_tools;
use crate::iso::{self, RootfsSource};
use crate::output_set::OutputSet;
use crate::preflight;
use crate::provider::BuildSettings;

use super::user_data_source;

/// `edgeforge.iso/v1`
#[derive(Serialize)]
struct Built {
    isos: Vec<Iso>,
}

#[derive(Serialize)]
struct Iso {
    variant: String,
    file: String,
    sha256: String,
    size: u64,
}

impl Report for Built {
    const SCHEMA: &'static str = "edgeforge.iso/v1";
    fn print_text(&self) {
        for i in &self.isos {
            println!("{}\tsha256:{}\t{} bytes", i.file, i.sha256, i.size);
        }
    }
}

pub fn run(
    a: IsoArgs,
    epoch: u64,
    cache: Option<std::path::PathBuf>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let definition = a.definition.as_ref().ok_or_else(|| {
        fail(Category::Usage, "edgeforge iso needs IMAGE_YAML (or a subcommand: `iso show ISO`, `iso embed GOLDEN_ISO ...`)")
    })?;
    let mut l = LoadedDefinition::load(definition, &a.sets)?;
    if let Some(dir) = &a.secure_boot_keys {
        l.def.secure_boot_keys = Some(std::path::absolute(dir)?);
    }
    iso::check_inputs(&l)?;
    let user_data = user_data_source::for_iso(&a.user_data, &l, epoch, a.golden)?;
    let config = iso::Config::new(user_data.as_ref(), a.golden);
    let variants = l.variants();
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
        cache,
        // No layers are built here.
        secrets: Vec::new(),
    };
    let sources = super::rootfs_sources::for_variants(
        &l,
        &variants,
        a.rootfs.as_ref(),
        a.provider_image.as_ref(),
        &a.out,
    )?;
    preflight::check(&preflight::Needs {
        tools: &host_tools::BUILD,
        out_dir: &a.out,
        bytes: sources
            .iter()
            .map(|(_, s)| {
                let (RootfsSource::ProviderImage(p) | RootfsSource::Folder(p)) = s;
                iso::estimate(&l, preflight::size_of(p))
            })
            .sum(),
    })?;
    // Every variant's ISO gets its final name once all are written.
    let mut set = OutputSet::open(&a.out)?;
    let mut isos = Vec::new();
    for (variant, source) in sources {
        let artifact = iso::build(&l, variant, &source, &config, &settings, &mut set)?;
        isos.push(Iso {
            variant: variant.name.clone(),
            file: artifact.path.display().to_string(),
            sha256: artifact.sha256.to_string(),
            size: artifact.size,
        });
    }
    set.commit(None)?;
    report::emit(output, &Built { isos })
}
