//! I/O adapters: hashing while data passes, gzip on every core, writing
//! files atomically, metadata files that carry their own checksum, and
//! feeding pipes without dying of SIGPIPE.

mod atomic;
mod hashing;
mod parallel_gzip;
pub mod sealed;
pub mod sigpipe;

pub use atomic::{rename_noreplace, replace_folder, AtomicFile};
pub use hashing::{file_sha256, HashingReader, HashingWriter, Sha256Digest};
pub use parallel_gzip::ParallelGzEncoder;
