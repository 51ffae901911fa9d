//! Registries: base images and bundle inputs pulled by reference, provider
//! images pushed, bundles loaded into a site's registry.
//!
//! skopeo is the transport (the field's own tool): it already honours the
//! auth files, `certs.d` CA folders and `registries.conf` mirrors users have
//! configured, so credentials never pass through edgeforge. edgeforge keeps
//! checking digests itself: a pulled image is opened from the cache's OCI
//! layout with every blob verified, a pinned digest is compared with the
//! hash of the manifest the registry returned, and a push is checked against
//! the local manifest's digest.

pub mod prune;
pub mod pull;
pub mod push;
pub mod reference;
pub mod skopeo;

use std::path::PathBuf;
use std::sync::OnceLock;

/// How this run reaches registries (from the global command-line options).
#[derive(Clone, Default)]
pub struct Settings {
    /// The cache folder; pulled images and tag resolutions are kept there.
    pub cache: Option<PathBuf>,
    /// Never touch the network: only what the cache holds.
    pub offline: bool,
    /// skopeo's `--authfile` (else its own search: REGISTRY_AUTH_FILE, ...).
    pub authfile: Option<PathBuf>,
    /// A folder of CA certificates (`*.crt`) for the registries (skopeo's `--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    pub tls_verify: bool,
    /// A registries.conf (mirrors, redirects) instead of the system's.
    pub registries_conf: Option<PathBuf>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Set once, before any command runs.
pub fn configure(s: Settings) {
    // A second call (tests of the library calling run twice) keeps the first.
    let _ = SETTINGS.set(s);
}

pub fn settings() -> Settings {
    SETTINGS.get().cloned().unwrap_or(Settings {
        tls_verify: true,
        ..Settings::default()
    })
}
