use std::fs;

use anyhow::Context;

use super::report::{self, Report};
use crate::cli::{OutputFormat, RenderArgs};
use crate::definition::LoadedDefinition;
use crate::output_set::OutputSet;
use crate::provider::renderer_for;
use crate::render::context_for;

/// `edgeforge.render/v1`
#[derive(serde::Serialize)]
struct Rendered {
    variants: Vec<RenderedVariant>,
}

#[derive(serde::Serialize)]
struct RenderedVariant {
    variant: String,
    /// Holds `rootfs/`, `iso/` and `context.json`.
    dir: String,
}

impl Report for Rendered {
    const SCHEMA: &'static str = "edgeforge.render/v1";
    fn print_text(&self) {
        for v in &self.variants {
            println!("{}", v.dir);
        }
    }
}

pub fn run(a: RenderArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    let l = LoadedDefinition::load(&a.def.definition, &a.def.sets)?;
    // Rendered trees are text files and small: the folder is what can fail.
    crate::preflight::check(&crate::preflight::Needs {
        tools: &[],
        out_dir: &a.out,
        bytes: 0,
    })?;
    // Every variant rendered into a work folder beside its final one, then
    // all named together (the folder's lock held meanwhile): a failing
    // template leaves the earlier rendering whole.
    let set = OutputSet::open(&a.out)?;
    let work = tempfile::Builder::new()
        .prefix(".edgeforge-work-")
        .tempdir_in(&a.out)
        .with_context(|| format!("creating a work folder in {}", a.out.display()))?;
    let mut rendered = Vec::new();
    let mut trees = Vec::new();
    for variant in l.variants() {
        let dest = work.path().join(&variant.name);
        let mut renderer = renderer_for(&l, &variant, epoch)?;
        for (kind, trees) in [
            ("rootfs", &l.def.overlays.rootfs),
            ("iso", &l.def.overlays.iso),
        ] {
            let trees: Vec<_> = trees.iter().map(|t| l.resolve(t)).collect();
            renderer.render_trees(&trees, &dest.join(kind))?;
        }
        // The GRUB menu and stubs, as the ISO has them (over overlays.iso, like there).
        crate::iso::grub::write_tree(&crate::iso::grub::render(&renderer)?, &dest.join("iso"))?;
        let mut ctx = context_for(&l.def, &variant, epoch)?.into_json();
        crate::mask::json(&mut ctx);
        let json = serde_json::to_string_pretty(&ctx)?;
        fs::write(dest.join("context.json"), json + "\n")
            .with_context(|| format!("writing {}/context.json", dest.display()))?;
        let target = a.out.join(&variant.name);
        rendered.push(RenderedVariant {
            variant: variant.name.clone(),
            dir: target.display().to_string(),
        });
        trees.push((dest, target));
    }
    set.commit_folders(&trees)?;
    report::emit(output, &Rendered { variants: rendered })
}
