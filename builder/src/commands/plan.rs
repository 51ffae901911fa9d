//! `plan`: every definition expanded into its variants, with tags, output
//! names and input digests, for CI systems to fan builds out.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::PlanFormat;
use crate::definition::LoadedDefinition;
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
    match format {
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "variants": entries }))?
        ),
        // One line for `strategy.matrix: ${{ fromJson(needs.plan.outputs.matrix) }}`.
        PlanFormat::Github => {
            let include: Vec<_> = entries
                .iter()
                .map(|e| serde_json::json!({"variant": e.variant, "definition": e.definition, "tag": e.tag}))
                .collect();
            println!("{}", serde_json::json!({ "include": include }));
        }
        PlanFormat::Table => {
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
            for e in &entries {
                println!("{:w$}  {:d$}  {}", e.variant, e.definition, e.reference);
            }
        }
    }
    Ok(())
}
