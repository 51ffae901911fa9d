//! Limits on what untrusted images may make edgeforge do. Each is far above
//! what a real image needs, and low enough that a small hostile file cannot
//! make a run hang or exhaust memory or disk. A refusal names the limit and
//! what to do (README.md, "Limits").

/// An index, manifest or config document: they are small, so an absurd one
/// is refused instead of read into memory.
pub const METADATA_BYTES: u64 = 16 << 20;

/// Index nesting in an OCI layout (an index of indexes of ...). Real layouts
/// nest one or two levels.
pub const INDEX_DEPTH: usize = 8;

/// Descriptors in one index (platforms, tags). Multi-platform images list a
/// dozen.
pub const INDEX_ENTRIES: usize = 1_000;
