//! I/O adapters: hashing while data passes, writing files atomically, and
//! metadata files that carry their own checksum.

mod atomic;
mod hashing;
pub mod sealed;

pub use atomic::AtomicFile;
pub use hashing::{file_sha256, HashingReader, HashingWriter, Sha256Digest};
