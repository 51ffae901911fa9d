//! Trusted boot: the owner's Secure Boot keys (`keys.rs`), Unified Kernel
//! Images assembled and signed with them (`uki.rs`, `sign.rs`); the ESP of
//! a UKI installer ISO is `iso/uki_esp.rs`.

pub mod keys;
pub mod sign;
pub mod uki;
