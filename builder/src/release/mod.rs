//! A verifiable release of an output folder: OpenPGP signatures over
//! `SHA256SUMS` and `manifest.json` (`sign.rs`), an SBOM per artifact
//! (`sbom.rs`) and a signed in-toto/SLSA provenance statement
//! (`provenance.rs`). The private key never enters an output: signing runs
//! `gpg` against a temporary keyring outside the folder, or the user's agent.

pub mod provenance;
pub mod rebuild;
pub mod sbom;
pub mod sign;
