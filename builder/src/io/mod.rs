//! I/O adapters: hashing while data passes, and writing files atomically.

mod atomic;
mod hashing;

pub use atomic::AtomicFile;
pub use hashing::{HashingReader, HashingWriter, Sha256Digest};
