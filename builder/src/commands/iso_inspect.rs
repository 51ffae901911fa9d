//! `iso show` and `iso embed`: reading and patching built ISOs.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::report::{self, Report};
use super::user_data_source;
use crate::cli::{EmbedArgs, OutputFormat};
use crate::error::{fail, Category};
use crate::io::{HashingReader, Sha256Digest};
use crate::iso::embed::Golden;
use crate::iso::reader::IsoImage;
use crate::iso::reserved;
use crate::mask;
use crate::output_set::OutputSet;
use crate::progress::Progress;
use crate::user_data::{refuse_command_line_token, UserData};

/// What `iso show` reports: `edgeforge.iso-show/v1`.
#[derive(serde::Serialize)]
struct Shown {
    iso: String,
    size: u64,
    volume: String,
    boot: Vec<&'static str>,
    sha256: String,
    /// `matches`, `differs` or `absent`, against `<iso>.sha256`.
    sha256_file: &'static str,
    user_data: Option<ShownUserData>,
}

#[derive(serde::Serialize)]
struct ShownUserData {
    /// `/config.yaml` on an installer ISO, `/user-data` on a site medium.
    file: &'static str,
    bytes: usize,
    sha256: String,
    /// The reserved area's size on a golden or per-site ISO.
    reserved_area: Option<usize>,
    /// Secrets masked unless --reveal.
    content: String,
    /// A site medium's `/meta-data` (NoCloud instance-id, local-hostname).
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_data: Option<String>,
}

pub fn show(iso: &Path, reveal: bool, output: OutputFormat) -> anyhow::Result<()> {
    let img = IsoImage::open(iso)?;
    img.check_complete()?;
    let (sha, _) = HashingReader::new(File::open(iso)?)
        .finish()
        .with_context(|| format!("reading {}", iso.display()))?;
    let sidecar = PathBuf::from(format!("{}.sha256", iso.display()));
    let sha256_file = match std::fs::read_to_string(&sidecar) {
        Ok(s) if s.split_whitespace().next() == Some(&sha.to_string()) => "matches",
        Ok(_) => "differs",
        Err(_) => "absent",
    };
    // An installer ISO's /config.yaml, or a site medium's (volume cidata)
    // /user-data and /meta-data.
    let site_medium = img
        .volume_id()
        .eq_ignore_ascii_case(crate::iso::cidata::VOLUME_ID);
    let (file, found) = match img.find("/config.yaml")? {
        Some(e) => ("/config.yaml", Some(e)),
        None if site_medium => ("/user-data", img.find("/user-data")?),
        None => ("/config.yaml", None),
    };
    let meta_data = match img.find("/meta-data")? {
        Some(e) if site_medium => {
            let bytes = img.read(e.offset, e.len as usize)?;
            Some(mask::document(&String::from_utf8_lossy(&bytes)))
        }
        _ => None,
    };
    let user_data = match found {
        None => None,
        Some(extent) => {
            let bytes = img.read(extent.offset, extent.len as usize)?;
            let (doc, reserved_area) = match reserved::user_data_len(&bytes) {
                Some(n) => (&bytes[..n], Some(bytes.len())),
                None => (&bytes[..], None),
            };
            let text = String::from_utf8_lossy(doc);
            let shown = if reveal {
                text.into_owned()
            } else {
                mask::document(&text)
            };
            let content = shown.lines().collect::<Vec<_>>().join("\n") + "\n";
            Some(ShownUserData {
                file,
                bytes: doc.len(),
                sha256: Sha256Digest::of(doc).to_string(),
                reserved_area,
                content,
                meta_data,
            })
        }
    };
    let shown = Shown {
        iso: iso.display().to_string(),
        size: img.len,
        volume: img.volume_id(),
        boot: img.boot_modes()?,
        sha256: sha.to_string(),
        sha256_file,
        user_data,
    };
    report::emit(output, &shown)
}

impl Report for Shown {
    const SCHEMA: &'static str = "edgeforge.iso-show/v1";
    fn print_text(&self) {
        let shown = self;
        println!("iso         {} ({} bytes)", shown.iso, shown.size);
        println!("volume      {}", shown.volume);
        println!("boot        {}", shown.boot.join(", "));
        println!(
            "sha256      {} ({} {}.sha256)",
            shown.sha256, shown.sha256_file, shown.iso
        );
        match &shown.user_data {
            None => println!("user-data   none"),
            Some(u) => {
                match u.reserved_area {
                    Some(area) => println!("user-data   /config.yaml, {} bytes, in a {area} byte reserved area (golden: `edgeforge iso embed` replaces it)", u.bytes),
                    None if u.meta_data.is_some() => println!("user-data   {}, {} bytes (a site user-data medium, applied over the installer's at first boot)", u.file, u.bytes),
                    None => println!("user-data   {}, {} bytes", u.file, u.bytes),
                }
                println!("            sha256 {}", u.sha256);
                if let Some(meta) = &u.meta_data {
                    for line in meta.lines() {
                        println!("meta-data   {line}");
                    }
                }
                print!("---\n{}", u.content);
            }
        }
    }
}

/// What `iso embed` wrote: `edgeforge.iso-embed/v1`.
#[derive(serde::Serialize)]
struct Embedded {
    golden: String,
    isos: Vec<EmbeddedIso>,
}

#[derive(serde::Serialize)]
struct EmbeddedIso {
    file: String,
    sha256: String,
    /// The site (`--sites`); none for `-o`.
    site: Option<String>,
    /// The embedded user-data's; none when `--remove` emptied the area.
    user_data_sha256: Option<String>,
}

impl Report for Embedded {
    const SCHEMA: &'static str = "edgeforge.iso-embed/v1";
    fn print_text(&self) {
        for i in &self.isos {
            match &i.user_data_sha256 {
                Some(ud) => println!("{}\tsha256:{}\tuser-data sha256:{ud}", i.file, i.sha256),
                None => println!("{}\tsha256:{}\t(reserved area emptied)", i.file, i.sha256),
            }
        }
    }
}

pub fn embed(a: &EmbedArgs, epoch: u64, output_format: OutputFormat) -> anyhow::Result<()> {
    // `--sites` never reads `--token`: refuse it up front for every form.
    refuse_command_line_token(a.user_data.token.as_deref())?;
    let report = |isos| Embedded {
        golden: a.golden.display().to_string(),
        isos,
    };
    let mut golden = Golden::open(&a.golden)?;
    let template = || user_data_source::site_renderer(a.templates.definition.as_deref(), epoch);
    if let Some(sites_path) = &a.sites {
        let out_dir = a
            .out_dir
            .as_ref()
            .expect("clap requires --out-dir with --sites");
        let isos = embed_sites(&mut golden, a, sites_path, out_dir, epoch)?;
        return report::emit(output_format, &report(isos));
    }
    let output = a.out.as_ref().ok_or_else(|| {
        fail(
            Category::Usage,
            "give -o FILE for the new ISO (or --sites FILE --out-dir DIR)",
        )
    })?;
    let folder = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let preflight = crate::preflight::Needs {
        tools: &[],
        out_dir: folder,
        bytes: golden.size(),
    };
    if a.remove {
        crate::preflight::check(&preflight)?;
        let sha = commit_one(&mut golden, reserved::EMPTY, output, 0o644)?;
        let emptied = EmbeddedIso {
            file: output.display().to_string(),
            sha256: sha.to_string(),
            site: None,
            user_data_sha256: None,
        };
        return report::emit(output_format, &report(vec![emptied]));
    }
    let ud = user_data_source::require(&a.user_data, template)?;
    golden.check_fits(ud.bytes())?;
    crate::preflight::check(&preflight)?;
    let iso = write_one(&mut golden, &ud, output)?;
    report::emit(output_format, &report(vec![iso]))
}

/// One ISO per site of `sites_path`. The site is the unit: every name,
/// token, document and size is checked first, then all ISOs are staged and
/// committed together with their checksums, or none is.
fn embed_sites(
    golden: &mut Golden,
    a: &EmbedArgs,
    sites_path: &Path,
    out_dir: &Path,
    epoch: u64,
) -> anyhow::Result<Vec<EmbeddedIso>> {
    let sites = crate::user_data::load_sites(sites_path)?;
    let stem = a
        .golden
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut renderer = user_data_source::site_renderer(a.templates.definition.as_deref(), epoch)?;
    let mut planned = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        let ud = user_data_source::render_site(site, &a.user_data, &mut renderer)
            .with_context(|| format!("{}: sites[{i}] (`{}`)", sites_path.display(), site.name))?;
        golden
            .check_fits(ud.bytes())
            .with_context(|| format!("{}: sites[{i}] (`{}`)", sites_path.display(), site.name))?;
        planned.push((out_dir.join(format!("{stem}-{}.iso", site.name)), ud));
    }
    crate::preflight::check(&crate::preflight::Needs {
        tools: &[],
        out_dir,
        bytes: planned.len() as u64 * golden.size(),
    })?;
    // Every site is good: write them all, and name them only together.
    let mut set = OutputSet::open(out_dir)?;
    let mut isos = Vec::new();
    for ((target, ud), site) in planned.iter().zip(&sites) {
        let progress = Progress::spinner(format!("writing {}", target.display()));
        let (file, sha) = golden.stage(ud.bytes(), target, 0o600)?;
        progress.finish();
        set.stage(file, sha);
        isos.push(EmbeddedIso {
            file: target.display().to_string(),
            sha256: sha.to_string(),
            site: Some(site.name.clone()),
            user_data_sha256: Some(ud.sha256.to_string()),
        });
    }
    set.commit(None)?;
    Ok(isos)
}

fn write_one(golden: &mut Golden, ud: &UserData, target: &Path) -> anyhow::Result<EmbeddedIso> {
    let sha = commit_one(golden, ud.bytes(), target, 0o600)?;
    let iso = EmbeddedIso {
        file: target.display().to_string(),
        sha256: sha.to_string(),
        site: None,
        user_data_sha256: Some(ud.sha256.to_string()),
    };
    Ok(iso)
}

/// Writes `target` from `golden` with `user_data` and commits it with its
/// checksums (`.sha256`, the folder's `SHA256SUMS`) as one set.
fn commit_one(
    golden: &mut Golden,
    user_data: &[u8],
    target: &Path,
    mode: u32,
) -> anyhow::Result<Sha256Digest> {
    let (mut set, at) = OutputSet::for_file(target)?;
    let progress = Progress::spinner(format!("writing {}", target.display()));
    let (file, sha) = golden.stage(user_data, &at, mode)?;
    progress.finish();
    set.stage(file, sha);
    set.commit(None)?;
    Ok(sha)
}
