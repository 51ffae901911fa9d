//! Readers and writers that compute a SHA-256 of what passes through, so no
//! artifact is read a second time just to checksum it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// A finished SHA-256, printed as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{self}")
    }
}

impl Sha256Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(bytes).into())
    }
}

/// The SHA-256 and size of a file's content, read in large blocks (cached
/// files are checked before every use, and they can be gigabytes).
pub fn file_sha256(path: &Path) -> io::Result<(Sha256Digest, u64)> {
    let buf = &mut vec![0u8; 1 << 20];
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut size = 0;
    loop {
        let n = match f.read(buf) {
            Ok(0) => return Ok((Sha256Digest(h.finalize().into()), size)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
}

pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Continues from a hash state of earlier bytes (written elsewhere).
    pub fn with_state(hasher: Sha256, inner: W) -> Self {
        HashingWriter {
            inner,
            hasher,
            written: 0,
        }
    }

    /// The hash state so far, to continue with [`HashingWriter::with_state`].
    pub fn into_state(self) -> Sha256 {
        self.hasher
    }

    /// The digest and byte count of everything written so far.
    pub fn digest(&self) -> (Sha256Digest, u64) {
        (
            Sha256Digest(self.hasher.clone().finalize().into()),
            self.written,
        )
    }

    /// The digest and byte count of everything written, and the inner writer.
    pub fn finish(self) -> (Sha256Digest, u64, W) {
        (
            Sha256Digest(self.hasher.finalize().into()),
            self.written,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// Reads what is left (so the digest covers the whole stream), then returns
    /// the digest and the total byte count.
    pub fn finish(mut self) -> io::Result<(Sha256Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Sha256Digest(self.hasher.finalize().into()), self.read))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_agree_with_one_shot_digest() {
        let data = b"edgeforge".repeat(1000);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (d, n, out) = w.finish();
        assert_eq!((d, n as usize), (Sha256Digest::of(&data), data.len()));
        assert_eq!(out, data);

        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(
            r.finish().unwrap(),
            (Sha256Digest::of(&data), data.len() as u64)
        );
    }
}
