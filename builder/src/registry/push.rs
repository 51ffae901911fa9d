//! Pushing an image to a registry with skopeo, digests preserved (no
//! re-compression), and checking that the registry holds the manifest
//! edgeforge wrote: skopeo's `--digestfile` must equal the local digest.
//! skopeo asks the registry for each blob first, so blobs it has are not
//! uploaded again.

use anyhow::Context;

use super::reference::Reference;
use super::skopeo::{self, Side};
use crate::error::{fail, Category};
use crate::host_tools;
use crate::log::info;
use crate::oci::spec::Digest;

/// Refuses a push under `--offline` (exit 12) before any work is done;
/// `to` names where it would have gone (as typed: shown masked, since it is
/// not parsed yet and may hold a login).
pub fn require_online(to: &str) -> anyhow::Result<()> {
    if super::settings().offline {
        return Err(fail(
            Category::Offline,
            format!(
                "--offline: pushing to {} needs the network",
                skopeo::masked(to)
            ),
        ));
    }
    host_tools::require(&[&host_tools::SKOPEO])
}

/// Pushes `source` (a skopeo source such as `oci-archive:PATH`), whose
/// manifest is `local`, to `to`; returns `host/repository:tag@digest`.
pub fn push(source: &str, local: &Digest, to: &Reference) -> anyhow::Result<String> {
    require_online(&to.to_string())?;
    let s = super::settings();
    if let Some(d) = &to.digest {
        if d != local {
            return Err(fail(
                Category::BadImage,
                format!("{to}: the image to push is {local}, not the pinned {d}"),
            ));
        }
    }
    let target = Reference {
        digest: None,
        ..to.clone()
    };
    let work = tempfile::Builder::new()
        .prefix("edgeforge-push-")
        .tempdir()
        .context("creating a temporary folder")?;
    let digest_file = work.path().join("digest");
    info!("pushing {local} to {target}");
    let mut args = vec![
        "copy".to_string(),
        "--quiet".into(),
        "--preserve-digests".into(),
        "--digestfile".into(),
        digest_file.display().to_string(),
    ];
    args.extend(skopeo::options(&s, Side::Dest));
    args.push(source.to_string());
    args.push(format!("docker://{target}"));
    skopeo::run(&args, &format!("pushing to {target}"))?;
    let text = std::fs::read_to_string(&digest_file)
        .with_context(|| format!("reading skopeo's digest file {}", digest_file.display()))?;
    let pushed: Digest = text
        .trim()
        .parse()
        .map_err(|e: String| fail(Category::Build, format!("skopeo's digest file: {e}")))?;
    if pushed != *local {
        return Err(fail(
            Category::BadImage,
            format!("{target} now holds {pushed}, not the local manifest {local}: the image was changed on the way (re-compressed or converted)"),
        ));
    }
    Ok(format!("{target}@{pushed}"))
}
