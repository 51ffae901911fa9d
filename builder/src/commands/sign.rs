use std::path::Path;

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

pub fn print(written: &[std::path::PathBuf], output: OutputFormat) -> anyhow::Result<()> {
    if output == OutputFormat::Json {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "signatures": names }))?
        );
    } else {
        for p in written {
            println!("{}", p.display());
        }
    }
    Ok(())
}
