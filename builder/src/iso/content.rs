//! Content bundles on the ISO, under `/opt/spectrocloud/content/`. ISO 9660
//! caps a file at 4 GiB, so a bundle larger than the split size (3 GB by
//! default) is written as numbered parts (`<name>.part000`, ...), each hashed
//! as it is written and recorded in the build manifest.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::io::HashingWriter;

pub const DEFAULT_SPLIT: u64 = 3_000_000_000;

#[derive(Debug, Serialize)]
pub struct ContentFile {
    pub name: String,
    pub size: u64,
    /// Empty when the bundle is stored whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

#[derive(Debug, Serialize)]
pub struct Part {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

pub fn stage(bundles: &[PathBuf], dir: &Path, split: u64) -> anyhow::Result<Vec<ContentFile>> {
    if bundles.is_empty() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for bundle in bundles {
        let name = bundle
            .file_name()
            .expect("validated as a file")
            .to_string_lossy()
            .into_owned();
        let size = fs::metadata(bundle)
            .with_context(|| format!("reading {}", bundle.display()))?
            .len();
        let mut parts = Vec::new();
        if size <= split {
            if fs::hard_link(bundle, dir.join(&name)).is_err() {
                fs::copy(bundle, dir.join(&name))
                    .with_context(|| format!("copying {}", bundle.display()))?;
            }
        } else {
            let mut src =
                File::open(bundle).with_context(|| format!("reading {}", bundle.display()))?;
            let mut index = 0;
            loop {
                let part_name = format!("{name}.part{index:03}");
                let part_path = dir.join(&part_name);
                let mut w = HashingWriter::new(BufWriter::with_capacity(
                    1 << 20,
                    File::create(&part_path)?,
                ));
                let n = io::copy(&mut (&mut src).take(split), &mut w)
                    .with_context(|| format!("writing {}", part_path.display()))?;
                let (sha, _, buffered) = w.finish();
                buffered.into_inner().map_err(|e| e.into_error())?;
                if n == 0 {
                    fs::remove_file(&part_path)?;
                    break;
                }
                parts.push(Part {
                    name: part_name,
                    size: n,
                    sha256: format!("sha256:{sha}"),
                });
                index += 1;
            }
        }
        out.push(ContentFile { name, size, parts });
    }
    Ok(out)
}
