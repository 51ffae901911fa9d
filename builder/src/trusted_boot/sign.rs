//! Signing EFI binaries with the key set's db key: Authenticode by
//! osslsigncode with the signing time set to the epoch. (sbsign puts the
//! current time into the signed attributes, so its output differs on every
//! run; osslsigncode's `-time` makes the same image and key give the same
//! bytes.) The key goes to the tool as a path only; sbverify checks the
//! result in the tests.

use std::path::Path;

use xshell::{cmd, Shell};

use super::keys::KeySet;
use crate::host_tools;

/// Signs `input` into `output` with the db key.
pub fn sign(
    sh: &Shell,
    keys: &KeySet,
    input: &Path,
    output: &Path,
    epoch: u64,
) -> anyhow::Result<()> {
    let (key, cert) = (keys.db_key(), keys.db_cert());
    let time = epoch.to_string();
    host_tools::run(cmd!(
        sh,
        "osslsigncode sign -h sha256 -time {time} -certs {cert} -key {key} -in {input} -out {output}"
    ))
}
