//! OCI images: the spec types, reading a base image in any of the forms
//! `skopeo copy` writes, flattening layers into a root filesystem, and writing
//! an `oci-archive`.

pub mod archive;
pub mod flatten;
pub mod layer_stream;
pub mod source;
pub mod spec;
