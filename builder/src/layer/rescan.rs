//! A cached layer read back through the secret guard. An entry built
//! before the run knew a secret value (a `provider-image` run has no
//! user-data) was never scanned for it; reading a layer back costs a
//! fraction of building it again (no compression), so a cached layer is
//! rescanned rather than rebuilt.

use std::fs::File;
use std::io::{BufReader, Read};

use super::secrets::{Secret, SecretGuard};
use super::LayerBlob;
use crate::oci::layer_stream::LayerStream;

/// Whether any file of layer `blob` carries one of `secrets` (or the layer
/// cannot be read, so it is built afresh either way).
pub fn carries_secrets(blob: &LayerBlob, secrets: &[Secret]) -> bool {
    scan(blob, secrets).unwrap_or(true)
}

fn scan(blob: &LayerBlob, secrets: &[Secret]) -> anyhow::Result<bool> {
    let file = BufReader::new(File::open(&blob.path)?);
    let mut tar = tar::Archive::new(LayerStream::open(file, &blob.descriptor.media_type)?);
    let mut guard = SecretGuard::new(secrets.to_vec());
    let mut buf = vec![0; 1 << 16];
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            guard.feed(&buf[..n]);
        }
        if guard.finish().is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}
