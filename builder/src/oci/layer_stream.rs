//! A layer blob as a tar stream: decompressed as its media type says,
//! bounded in size and entry count (`limits.rs`), and read to its end so a
//! damaged compressed stream is noticed even past the tar's end marker.
//! Whatever fails to decode is a corrupt image (exit 7) naming the blob;
//! only failures of the system calls themselves stay I/O errors (exit 5).

use std::io::{self, Read};

use super::spec::{layer_compression, Compression};
use crate::error::{fail, io_failure, Category, Failure};
use crate::limits;

/// The decompressed stream of a layer, refusing to yield more than the
/// limit on one layer's size.
pub struct LayerStream<'a> {
    inner: Box<dyn Read + 'a>,
    left: u64,
    limit: u64,
}

impl<'a> LayerStream<'a> {
    /// Errors name no blob: callers add which one as context.
    pub fn open(blob: impl Read + 'a, media_type: &str) -> anyhow::Result<Self> {
        let inner: Box<dyn Read + 'a> = match layer_compression(media_type) {
            Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Some(Compression::Zstd) => Box::new(zstd::Decoder::new(blob)?),
            _ => Box::new(blob),
        };
        Self::bounded(inner)
    }

    /// Bounds an already decompressed stream (a component tarball).
    pub fn bounded(inner: Box<dyn Read + 'a>) -> anyhow::Result<Self> {
        let limit = limits::layer_bytes()?;
        Ok(LayerStream {
            inner,
            left: limit,
            limit,
        })
    }

    /// Reads what the tar reader left (its end-of-archive padding), so the
    /// compressed stream's own end and checksum are checked too.
    pub fn drain(mut self) -> io::Result<()> {
        io::copy(&mut self, &mut io::sink()).map(drop)
    }
}

impl Read for LayerStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit tells "exactly at the limit" from "over it".
        let want = buf
            .len()
            .min(usize::try_from(self.left + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io_failure(
                Category::BadImage,
                format!(
                    "it decompresses to more than {} bytes, the limit on one layer; if the image is genuine, raise it with {}=SIZE (e.g. 128G)",
                    self.limit, limits::LAYER_BYTES_ENV
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts a layer's tar entries against the limit.
pub struct EntryLimit {
    seen: u64,
    limit: u64,
}

impl EntryLimit {
    pub fn new() -> anyhow::Result<Self> {
        Ok(EntryLimit {
            seen: 0,
            limit: limits::layer_entries()?,
        })
    }

    /// Call once per entry.
    pub fn count(&mut self) -> anyhow::Result<()> {
        self.seen += 1;
        if self.seen > self.limit {
            return Err(fail(
                Category::BadImage,
                format!(
                    "it holds more than {} entries, the limit on one layer; if the image is genuine, raise it with {}=N",
                    self.limit,
                    limits::LAYER_ENTRIES_ENV
                ),
            ));
        }
        Ok(())
    }
}

/// Turns a failure while `doing` (`applying`) the layer `what` of
/// `media_type` into a corrupt-image error, unless it already has a
/// category or is a failed system call (a disk error, a full disk while
/// writing the tree): those keep theirs, with `doing what` as context.
/// Errors a decoder or the tar reader makes carry no OS error code.
pub fn corrupt_unless_io(
    err: anyhow::Error,
    doing: &str,
    what: &str,
    media_type: &str,
) -> anyhow::Error {
    let decoding = err.chain().find_map(|cause| {
        if cause.is::<Failure>() {
            return Some(None);
        }
        let io = cause.downcast_ref::<io::Error>()?;
        let system = io.raw_os_error().is_some() || io.get_ref().is_some_and(|e| e.is::<Failure>());
        Some((!system).then_some(io))
    });
    match decoding.flatten() {
        Some(io) => fail(
            Category::BadImage,
            format!("{what} is corrupt: it does not read as {} says ({io}); re-export the image (skopeo copy) and try again", media_type_name(media_type)),
        ),
        None => err.context(format!("{doing} {what}")),
    }
}

fn media_type_name(media_type: &str) -> String {
    if media_type.is_empty() {
        "a tar stream".into()
    } else {
        format!("its media type {media_type}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_are_corruption_and_system_errors_stay_io() {
        let decode = anyhow::Error::new(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "incomplete deflate stream",
        ))
        .context("creating etc/x");
        let gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
        let e = corrupt_unless_io(decode, "applying", "layer sha256:ab of x", gzip);
        assert_eq!(crate::error::category_of(&e), Category::BadImage);
        assert_eq!(e.to_string(), format!("layer sha256:ab of x is corrupt: it does not read as its media type {gzip} says (incomplete deflate stream); re-export the image (skopeo copy) and try again"));

        let full = anyhow::Error::new(io::Error::from_raw_os_error(libc::ENOSPC));
        let e = corrupt_unless_io(full, "applying", "layer x", gzip);
        assert_eq!(crate::error::category_of(&e), Category::Io);
        assert_eq!(e.to_string(), "applying layer x");
    }

    #[test]
    fn streams_stop_at_the_limit() {
        let data = [0u8; 100];
        let mut s = LayerStream::bounded(Box::new(&data[..])).unwrap();
        s.limit = 99;
        s.left = 99;
        let e = io::copy(&mut s, &mut io::sink()).unwrap_err();
        assert!(e.to_string().contains("more than 99 bytes"), "{e}");
        let mut s = LayerStream::bounded(Box::new(&data[..])).unwrap();
        s.left = 100;
        assert_eq!(io::copy(&mut s, &mut io::sink()).unwrap(), 100);
    }
}
