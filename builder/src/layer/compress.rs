//! Layer compression. gzip at level 6, the registry-wide default, with a fixed
//! header (no name, mtime 0) so the bytes depend on the content alone.

use std::io::Write;

pub type Compressor<W> = flate2::write::GzEncoder<W>;

pub fn gzip<W: Write>(inner: W) -> Compressor<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .write(inner, flate2::Compression::new(6))
}
