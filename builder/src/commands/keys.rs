use serde::Serialize;

use super::report::{self, Report};
use crate::cli::{KeysGenerateArgs, OutputFormat};
use crate::trusted_boot::keys::{Certificate, Generate};

/// `edgeforge.keys-generate/v1`: the set's metadata, never key material.
#[derive(Serialize)]
struct Generated {
    dir: String,
    name: String,
    owner_guid: String,
    certificates: Vec<Certificate>,
    microsoft: Vec<Certificate>,
}

impl Report for Generated {
    const SCHEMA: &'static str = "edgeforge.keys-generate/v1";
    fn print_text(&self) {
        println!("{} ({}, owner {})", self.dir, self.name, self.owner_guid);
        for c in self.certificates.iter().chain(&self.microsoft) {
            println!("{:4} {} sha256:{}", c.var, c.file, c.sha256);
        }
    }
}

/// `keys generate`.
pub fn generate(a: &KeysGenerateArgs, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    let meta = Generate {
        name: &a.name,
        out: &a.out,
        expiration_days: a.expiration_days,
        microsoft: a.microsoft_certs.as_deref(),
        epoch,
    }
    .run()?;
    report::emit(
        output,
        &Generated {
            dir: a.out.display().to_string(),
            name: meta.name,
            owner_guid: meta.owner_guid,
            certificates: meta.certificates,
            microsoft: meta.microsoft,
        },
    )
}
