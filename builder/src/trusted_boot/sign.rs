//! Signing EFI binaries with the key set's db key (sbsign: Authenticode,
//! no signing time, so the same image and key give the same bytes) and
//! checking them (sbverify). The key goes to sbsign as a path only.

use std::path::Path;

use xshell::{cmd, Shell};

use super::keys::KeySet;
use crate::host_tools;

/// Signs `input` into `output` with the db key.
pub fn sign(sh: &Shell, keys: &KeySet, input: &Path, output: &Path) -> anyhow::Result<()> {
    let (key, cert) = (keys.db_key(), keys.db_cert());
    host_tools::run(cmd!(
        sh,
        "sbsign --key {key} --cert {cert} --output {output} {input}"
    ))
}
