use crate::checksums;
use crate::cli::{BuildArgs, OutputFormat};
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::host_tools;
use crate::iso::{self, RootfsSource};
use crate::layer;
use crate::manifest::{self, Manifest, Output, Source};
use crate::output_set::OutputSet;
use crate::preflight;
use crate::provider::{self, BuildSettings};
use crate::release::sbom;

use super::report::{self, Report};
use super::user_data_source;

/// `edgeforge.build/v1`: the manifest written, and the files around it.
#[derive(serde::Serialize)]
struct Built {
    out_dir: String,
    /// `manifest.json` as written (`edgeforge.build-manifest/v1`).
    manifest: Manifest,
    sha256sums: String,
    /// Signature files (`--sign-key`, `--sign-key-id`).
    signatures: Vec<String>,
}

impl Report for Built {
    const SCHEMA: &'static str = "edgeforge.build/v1";
    fn print_text(&self) {
        let out = std::path::Path::new(&self.out_dir);
        for o in &self.manifest.outputs {
            println!(
                "{}\tsha256:{}\t{} bytes",
                out.join(&o.name).display(),
                o.sha256,
                o.size
            );
        }
        println!("{}", self.sha256sums);
        println!("{}", out.join(manifest::FILE).display());
        for s in &self.signatures {
            println!("{s}");
        }
    }
}

pub fn run(
    a: BuildArgs,
    epoch: u64,
    cache: Option<std::path::PathBuf>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let mut l = LoadedDefinition::load(&a.def.definition, &a.def.sets)?;
    if let Some(dir) = &a.secure_boot_keys {
        l.def.secure_boot_keys = Some(std::path::absolute(dir)?);
    }
    if a.push {
        // Before minutes of building, as `push` and `bundle load` do.
        crate::registry::push::require_online("the images' registries (--push)")?;
    }
    // A bad signing key fails before minutes of building.
    let signer = super::sign::key_source(a.sign.sign_key.as_deref(), a.sign.sign_key_id.as_deref())
        .map(|k| crate::release::sign::Signer::open(&k))
        .transpose()?;
    iso::check_inputs(&l)?;
    let disk_formats = super::disk::formats(&[], &l.def.disk.formats);
    // Checked before the provider image so a bad document fails in seconds.
    let user_data = user_data_source::for_iso(&a.user_data, &l, epoch, a.golden)?;
    if !l.def.disk.formats.is_empty() {
        crate::disk::check_inputs(&l, user_data.as_ref(), &disk_formats)?;
    }
    let config = iso::Config::new(user_data.as_ref(), a.golden);
    // Known before the layers are built, so none may carry them.
    let secrets = match &user_data {
        Some(u) => layer::secrets::of_user_data(&u.secrets()?),
        None => Vec::new(),
    };
    let settings = BuildSettings {
        out_dir: a.out.clone(),
        epoch,
        cache,
        secrets,
    };
    let mut variants = l.variants();
    if let Some(name) = &a.variant {
        variants.retain(|v| &v.name == name);
        if variants.is_empty() {
            let known: Vec<String> = l.variants().into_iter().map(|v| v.name).collect();
            return Err(fail(
                Category::Usage,
                format!(
                    "{} has no variant `{name}`; it has: {}",
                    l.path.display(),
                    known.join(", ")
                ),
            ));
        }
    }
    // The ISO and disk stages' tools, the folder and the space, before the
    // provider image takes minutes: an archive, an ISO and the disks from
    // it per variant.
    let mut tools = host_tools::BUILD.to_vec();
    let mut disk_bytes = 0;
    if !l.def.disk.formats.is_empty() {
        tools.extend(host_tools::DISK);
        if disk_formats.iter().any(|f| f.needs_qemu_img()) {
            tools.push(&host_tools::QEMU_IMG);
        }
        // The raw disk, then each format (at most its size).
        disk_bytes = 1 + disk_formats.len() as u64;
    }
    let image = provider::estimate(&l, 1);
    preflight::check(&preflight::Needs {
        tools: &tools,
        out_dir: &a.out,
        bytes: variants.len() as u64 * (image + iso::estimate(&l, image) + disk_bytes * image),
    })?;
    // Outputs get their final names together, once every stage succeeded.
    let mut set = OutputSet::open(&a.out)?;
    let images = provider::build(&l, &variants, &settings, &mut set)?;
    let mut packages = Vec::new();
    let mut outputs: Vec<Output> = images
        .iter()
        .map(|i| {
            Output::new(
                &i.archive,
                "provider-image",
                i.size,
                &i.sha256,
                Some(i.variant.reference.clone()),
            )
        })
        .collect();
    for (i, image) in images.iter().enumerate() {
        let source = RootfsSource::ProviderImage(image.staged.clone());
        let artifact = iso::build(&l, &image.variant, &source, &config, &settings, &mut set)?;
        let mut output = Output::new(&artifact.path, "iso", artifact.size, &artifact.sha256, None);
        output.content = artifact.content;
        // The ISO's root filesystem is the provider image's: same packages.
        packages.push((i, artifact.packages.clone()));
        output.packages = artifact.packages;
        outputs.push(output);
        // The appliance disks, when the definition asks for them.
        if !l.def.disk.formats.is_empty() {
            let disks = crate::disk::build(
                &l,
                &image.variant,
                &source,
                user_data.as_ref(),
                &disk_formats,
                &settings,
                &mut set,
            )?;
            for d in disks {
                outputs.push(Output::new(
                    &d.path,
                    d.format.kind(),
                    d.size,
                    &d.sha256,
                    None,
                ));
            }
        }
    }
    let source = user_data.as_ref().map(|u| Source {
        source: u.path.display().to_string(),
        sha256: format!("sha256:{}", u.sha256),
    });
    let mut manifest = Manifest::new(&l, epoch, source, outputs)?;
    manifest.invocation = Some(manifest::Invocation {
        definition: a.def.definition.display().to_string(),
        sets: a
            .def
            .sets
            .iter()
            .map(|s| crate::mask::assignment(s))
            .collect(),
        variant: a.variant.clone(),
        golden: a.golden,
    });
    for (i, p) in packages {
        manifest.outputs[i].packages = p;
    }
    let sboms = sbom::stage_all(&manifest, &a.out, &mut set)?;
    for o in &mut manifest.outputs {
        if o.kind == "provider-image" {
            o.packages.clear();
        }
    }
    manifest.outputs.extend(sboms);
    let statement = crate::release::provenance::stage(&manifest, &a.out, &mut set)?;
    manifest.outputs.push(statement);
    if a.push {
        // After the SBOMs and provenance (where an image went is no part of
        // how it was built, so `verify --rebuild` matches), before the
        // commit: a set whose images did not reach the registry is not made.
        for (image, output) in images.iter().zip(&mut manifest.outputs) {
            let to = crate::registry::reference::Reference::parse(&image.variant.reference)?;
            let source = format!("oci-archive:{}", image.staged.display());
            output.pushed = Some(crate::registry::push::push(
                &source,
                &image.manifest_digest,
                &to,
            )?);
        }
    }
    let signatures = set.commit_signed(Some(&manifest.to_bytes()?), signer.as_ref())?;
    report::emit(
        output,
        &Built {
            out_dir: a.out.display().to_string(),
            manifest,
            sha256sums: a.out.join(checksums::SUMS).display().to_string(),
            signatures: signatures.iter().map(|s| s.display().to_string()).collect(),
        },
    )
}
