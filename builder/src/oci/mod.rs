//! OCI images: the spec types, reading a base image in any of the forms
//! `skopeo copy` writes, flattening layers into a root filesystem (on disk,
//! or as a model in memory streamed as one tar), and writing an
//! `oci-archive`.

pub mod archive;
pub mod disk_tree;
pub mod flatten;
pub mod layer_stream;
pub mod mem_tree;
pub mod source;
pub mod spec;
pub mod tree;
pub mod tree_cache;
pub mod tree_tar;
