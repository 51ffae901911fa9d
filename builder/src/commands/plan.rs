//! `plan`: every definition expanded into its variants, with tags, output
//! names and input digests, for CI systems to fan builds out.

use std::path::PathBuf;

use serde::Serialize;

use super::report::{self, Report};
use crate::cli::{OutputFormat, PlanFormat};
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::inputs;
use crate::iso::iso_path;

#[derive(Serialize)]
struct Entry {
    variant: String,
    definition: String,
    reference: String,
    tag: String,
    os: String,
    arch: &'static str,
    kubernetes: String,
    provider_image: String,
    iso: String,
    inputs: std::collections::BTreeMap<String, String>,
}

/// `edgeforge.plan/v1`
#[derive(Serialize)]
struct Plan {
    variants: Vec<Entry>,
}

impl Report for Plan {
    const SCHEMA: &'static str = "edgeforge.plan/v1";
    fn print_text(&self) {
        let entries = &self.variants;
        let w = entries
            .iter()
            .map(|e| e.variant.len())
            .max()
            .unwrap_or(0)
            .max("VARIANT".len());
        let d = entries
            .iter()
            .map(|e| e.definition.len())
            .max()
            .unwrap_or(0)
            .max("DEFINITION".len());
        println!("{:w$}  {:d$}  REFERENCE", "VARIANT", "DEFINITION");
        for e in entries {
            println!("{:w$}  {:d$}  {}", e.variant, e.definition, e.reference);
        }
    }
}

/// Two variants naming the same file would overwrite each other in one
/// output folder (and one CI cache key): refused, naming both definitions.
fn refuse_shared_names(entries: &[Entry]) -> anyhow::Result<()> {
    let mut seen: std::collections::BTreeMap<&str, &Entry> = std::collections::BTreeMap::new();
    for e in entries {
        for name in [
            e.variant.as_str(),
            e.provider_image.as_str(),
            e.iso.as_str(),
        ] {
            if let Some(first) = seen.insert(name, e) {
                return Err(fail(
                    Category::InvalidInput,
                    format!(
                        "{} ({}) and {} ({}) both name `{name}`: their outputs would overwrite each other in one folder; give one another repository, custom_tag or iso_name",
                        first.definition, first.reference, e.definition, e.reference
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `--format` and the global `--output` must agree: `--output json` means
/// `--format json`, and an explicit other format with it is a usage error
/// rather than silently one or the other.
pub fn format_for(format: Option<PlanFormat>, output: OutputFormat) -> anyhow::Result<PlanFormat> {
    match (format, output) {
        (None, OutputFormat::Json) | (Some(PlanFormat::Json), _) => Ok(PlanFormat::Json),
        (Some(f), OutputFormat::Json) => Err(fail(
            Category::Usage,
            format!(
                "--output json and --format {} contradict each other: give one (`--format github` prints the matrix, `--output json` the {} object)",
                clap::ValueEnum::to_possible_value(&f).map_or_else(String::new, |v| v.get_name().to_string()),
                Plan::SCHEMA
            ),
        )),
        (None, OutputFormat::Text) => Ok(PlanFormat::Table),
        (Some(f), OutputFormat::Text) => Ok(f),
    }
}

pub fn run(definitions: &[PathBuf], format: PlanFormat) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    for path in definitions {
        let l = LoadedDefinition::load(path, &[])?;
        let inputs = inputs::of_definition(&l)?;
        for v in l.variants() {
            entries.push(Entry {
                definition: path.display().to_string(),
                reference: v.reference.clone(),
                tag: v.tag.clone(),
                os: format!("{} {}", l.def.os.distribution, l.def.os.version),
                arch: l.def.arch.as_str(),
                kubernetes: format!(
                    "{} {}",
                    v.kubernetes_distribution.as_str(),
                    v.kubernetes_version
                ),
                provider_image: format!("{}.oci.tar", v.name),
                iso: iso_path(&l, &v, std::path::Path::new(""))
                    .display()
                    .to_string(),
                inputs: inputs.clone(),
                variant: v.name,
            });
        }
    }
    refuse_shared_names(&entries)?;
    match format {
        PlanFormat::Json => report::emit(OutputFormat::Json, &Plan { variants: entries })?,
        // One line for `strategy.matrix: ${{ fromJson(needs.plan.outputs.matrix) }}`.
        PlanFormat::Github => {
            let include: Vec<_> = entries
                .iter()
                .map(|e| serde_json::json!({"variant": e.variant, "definition": e.definition, "tag": e.tag}))
                .collect();
            println!("{}", serde_json::json!({ "include": include }));
        }
        PlanFormat::Table => report::emit(OutputFormat::Text, &Plan { variants: entries })?,
    }
    Ok(())
}
