//! Layers: deterministic tar streams compressed and hashed in one pass, filled
//! from folders, tarballs and rendered overlay trees.

pub mod cache;
mod compress;
pub mod lower;
mod rescan;
pub mod secrets;
mod sources;
mod writer;

pub use cache::LayerCache;
pub use compress::LayerCompression;
pub use sources::{add_tarball, add_tree, Placement};
pub use writer::{LayerBlob, LayerWriter};
