//! `site-media`: site user-data media (ISO 9660, volume ID `cidata`) that an
//! installed host reads at first boot on top of its installer's user-data.
//! The user-data is checked as a site override before anything is written;
//! the media are committed with their `.sha256` and `SHA256SUMS` entries as
//! one set under the output folder's lock.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::report::{self, Report};
use super::user_data_source;
use crate::cli::{OutputFormat, SiteMediaArgs};
use crate::error::{fail, Category};
use crate::io::{AtomicFile, Sha256Digest};
use crate::iso::cidata;
use crate::output_set::OutputSet;
use crate::user_data::validate::Mode;
use crate::user_data::{check_site_name, refuse_command_line_token, Site, UserData};

/// `edgeforge.site-media/v1`
#[derive(serde::Serialize)]
struct Written {
    media: Vec<WrittenMedium>,
}

#[derive(serde::Serialize)]
struct WrittenMedium {
    file: String,
    /// `iso` (ISO 9660, volume `cidata`) or `fat` (`--fat`, label `CIDATA`).
    format: &'static str,
    sha256: String,
    user_data_sha256: String,
}

impl Report for Written {
    const SCHEMA: &'static str = "edgeforge.site-media/v1";
    fn print_text(&self) {
        for m in &self.media {
            println!(
                "{}\tsha256:{}\tuser-data sha256:{}",
                m.file, m.sha256, m.user_data_sha256
            );
        }
    }
}

/// One medium to write.
struct Medium {
    target: PathBuf,
    user_data: UserData,
    meta_data: String,
}

pub fn run(a: &SiteMediaArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    refuse_command_line_token(a.user_data.token.as_deref())?;
    let template = || user_data_source::site_renderer(a.templates.definition.as_deref(), epoch);
    let media = if let Some(sites_path) = &a.sites {
        let out_dir = a
            .out_dir
            .as_ref()
            .expect("clap requires --out-dir with --sites");
        let sites = crate::user_data::load_sites(sites_path)?;
        // Every site is rendered and checked before anything is written.
        let mut renderer = template()?;
        let mut media = Vec::new();
        for site in &sites {
            let ud = user_data_source::render_site_as(
                site,
                &a.user_data,
                &mut renderer,
                Mode::Override,
            )?;
            media.push(Medium {
                target: out_dir.join(format!("{}-user-data.iso", site.name)),
                user_data: ud,
                meta_data: meta_data(&site.name),
            });
        }
        media
    } else if let Some(file) = &a.user_data.user_data {
        vec![Medium {
            target: a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("build/site-user-data.iso")),
            user_data: UserData::load_as(file, Mode::Override)?,
            meta_data: String::new(),
        }]
    } else if a.user_data.site.is_some() || !a.user_data.site_values.is_empty() {
        let site = Site::load(a.user_data.site.as_deref(), &a.user_data.site_values)?;
        let ud = user_data_source::render_site_as(
            &site,
            &a.user_data,
            &mut template()?,
            Mode::Override,
        )?;
        let target = match &a.out {
            Some(p) => p.clone(),
            None => {
                check_site_name(&site.name)
                    .map_err(|msg| fail(Category::InvalidInput, format!("--site: {msg}")))?;
                PathBuf::from(format!("build/{}-user-data.iso", site.name))
            }
        };
        vec![Medium {
            target,
            user_data: ud,
            meta_data: meta_data(&site.name),
        }]
    } else {
        return Err(fail(
            Category::Usage,
            "no user-data: give --user-data FILE, --site FILE / --site-value name=... (with --token-env or --token-file), or --sites FILE --out-dir DIR",
        ));
    };
    let written = write(&media, epoch, a.fat)?;
    report::emit(output, &written)
}

/// Stages every medium (0600: it may hold the token) and commits them
/// together with their checksums.
fn write(media: &[Medium], epoch: u64, fat: bool) -> anyhow::Result<Written> {
    let mut written = Vec::new();
    let mut sets: Vec<(PathBuf, OutputSet)> = Vec::new();
    for m in media {
        let dir = match m.target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = m.target.file_name().ok_or_else(|| {
            fail(
                Category::Usage,
                format!("{}: not a file name", m.target.display()),
            )
        })?;
        let target = dir.join(name);
        if !sets.iter().any(|(d, _)| *d == dir) {
            // A medium is the user-data and a few ISO 9660 sectors (a FAT
            // image at most a few MiB).
            crate::preflight::check(&crate::preflight::Needs {
                tools: &[],
                out_dir: &dir,
                bytes: media.len() as u64 * (crate::user_data::MAX_SIZE as u64 + (4 << 20)),
            })?;
            sets.push((dir.clone(), OutputSet::open(&dir)?));
        }
        let set = &mut sets.iter_mut().find(|(d, _)| *d == dir).expect("opened").1;
        let bytes = cidata::image(m.user_data.bytes(), m.meta_data.as_bytes(), epoch);
        let sha = Sha256Digest::of(&bytes);
        let mut file = AtomicFile::create(&target, 0o600)?;
        file.write_all(&bytes)
            .with_context(|| format!("writing {}", target.display()))?;
        set.stage(file, sha);
        written.push(WrittenMedium {
            file: target.display().to_string(),
            format: "iso",
            sha256: sha.to_string(),
            user_data_sha256: m.user_data.sha256.to_string(),
        });
        if fat {
            let img = target.with_extension("img");
            if img == target {
                return Err(fail(
                    Category::Usage,
                    format!(
                        "{}: with --fat the medium is an .iso and the FAT image its .img",
                        target.display()
                    ),
                ));
            }
            // A private work folder the output set cleans up if killed.
            let work = tempfile::Builder::new()
                .prefix(".edgeforge-work-")
                .tempdir_in(&dir)
                .with_context(|| format!("creating a work folder in {}", dir.display()))?;
            let bytes = cidata::fat_image(
                m.user_data.bytes(),
                m.meta_data.as_bytes(),
                epoch,
                work.path(),
            )?;
            let sha = Sha256Digest::of(&bytes);
            let mut file = AtomicFile::create(&img, 0o600)?;
            file.write_all(&bytes)
                .with_context(|| format!("writing {}", img.display()))?;
            set.stage(file, sha);
            written.push(WrittenMedium {
                file: img.display().to_string(),
                format: "fat",
                sha256: sha.to_string(),
                user_data_sha256: m.user_data.sha256.to_string(),
            });
        }
    }
    for (_, set) in sets {
        set.commit(None)?;
    }
    Ok(Written { media: written })
}

/// NoCloud meta-data for a site: its name as instance ID and host name.
pub fn meta_data(name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    let value = if plain {
        name.to_string()
    } else {
        serde_json::to_string(name).expect("a string serialises")
    };
    format!("instance-id: {value}\nlocal-hostname: {value}\n")
}

#[cfg(test)]
mod tests {
    use super::meta_data;

    #[test]
    fn meta_data_is_nocloud_yaml() {
        assert_eq!(
            meta_data("store-42"),
            "instance-id: store-42\nlocal-hostname: store-42\n"
        );
        assert_eq!(meta_data(""), "");
        assert_eq!(
            meta_data("yes"),
            "instance-id: \"yes\"\nlocal-hostname: \"yes\"\n"
        );
        assert_eq!(
            meta_data("42 main st"),
            "instance-id: \"42 main st\"\nlocal-hostname: \"42 main st\"\n"
        );
    }
}
