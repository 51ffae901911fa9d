use std::path::Path;

use crate::cli::{KeysGenerateArgs, OutputFormat};
use crate::trusted_boot::keys::Generate;

/// `keys generate`: prints the set's metadata (never key material).
pub fn generate(a: &KeysGenerateArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    let meta = Generate {
        name: &a.name,
        out: &a.out,
        expiration_days: a.expiration_days,
        microsoft: a.microsoft_certs.as_deref(),
        epoch,
    }
    .run()?;
    if output == OutputFormat::Json {
        let mut v = serde_json::to_value(&meta)?;
        v["schema"] = "edgeforge.keys-generate/v1".into();
        v["dir"] = a.out.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let dir = Path::new(&a.out);
        println!(
            "{} ({}, owner {})",
            dir.display(),
            meta.name,
            meta.owner_guid
        );
        for c in meta.certificates.iter().chain(&meta.microsoft) {
            println!("{:4} {} sha256:{}", c.var, c.file, c.sha256);
        }
    }
    Ok(())
}
