use std::path::Path;

use super::report::{self, Report};
use crate::cli::{OutputFormat, SignKeyArgs};
use crate::release::sign::{self, KeySource};

/// The key source the arguments name (clap requires exactly one).
pub fn key_source(key: Option<&Path>, key_id: Option<&str>) -> Option<KeySource> {
    match (key, key_id) {
        (Some(f), _) => Some(KeySource::File(f.to_path_buf())),
        (None, Some(id)) => Some(KeySource::Id(id.to_string())),
        (None, None) => None,
    }
}

pub fn run(dir: &Path, key: &SignKeyArgs, output: OutputFormat) -> anyhow::Result<()> {
    let source = key_source(key.key.as_deref(), key.key_id.as_deref())
        .expect("clap requires --key or --key-id");
    let signer = sign::Signer::open(&source)?;
    let written = sign::sign_folder(dir, &signer)?;
    print(&written, output)
}

/// `edgeforge.sign/v1`
#[derive(serde::Serialize)]
struct Signed {
    /// The signature files written, in the folder.
    signatures: Vec<String>,
}

impl Report for Signed {
    const SCHEMA: &'static str = "edgeforge.sign/v1";
    fn print_text(&self) {
        for p in &self.signatures {
            println!("{p}");
        }
    }
}

fn print(written: &[std::path::PathBuf], output: OutputFormat) -> anyhow::Result<()> {
    let signatures = written.iter().map(|p| p.display().to_string()).collect();
    report::emit(output, &Signed { signatures })
}
