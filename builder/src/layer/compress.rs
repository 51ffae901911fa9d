//! Layer compression, on every core and deterministic: the bytes depend on
//! the content, the format and its fixed settings, never on the number of
//! threads. gzip at level 6 (the registry-wide default) in 1 MiB blocks
//! (`io::ParallelGzEncoder`); zstd at level 3 through libzstd's own worker
//! threads, always at least one, whose output is the same for any number of
//! workers with the same parameters (its single-threaded mode, zero
//! workers, writes other bytes and is never used).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::error::{fail, Category};
use crate::io::ParallelGzEncoder;
use crate::oci::spec::{MEDIA_LAYER_GZIP, MEDIA_LAYER_ZSTD};

/// The number of compression threads; unset means one per core.
pub const THREADS_ENV: &str = "EDGEFORGE_THREADS";

const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;
/// Input per zstd job: fixed, so the frame does not depend on the machine.
const ZSTD_JOB_SIZE: u32 = 4 << 20;

/// How new layers are compressed (`layer_compression` in a definition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    /// `tar+gzip`: what every runtime reads.
    #[default]
    Gzip,
    /// `tar+zstd`: several times faster to write and to read; containerd,
    /// podman and CRI-O read it.
    Zstd,
}

impl LayerCompression {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "gzip",
            LayerCompression::Zstd => "zstd",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => MEDIA_LAYER_GZIP,
            LayerCompression::Zstd => MEDIA_LAYER_ZSTD,
        }
    }

    /// The file name extension of a blob (`tar.gz`, `tar.zst`).
    pub fn extension(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "tar.gz",
            LayerCompression::Zstd => "tar.zst",
        }
    }
}

pub enum Compressor<W: Write> {
    Gzip(ParallelGzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(inner: W, kind: LayerCompression) -> anyhow::Result<Self> {
        let threads = threads()?;
        Ok(match kind {
            LayerCompression::Gzip => {
                Compressor::Gzip(ParallelGzEncoder::new(inner, GZIP_LEVEL, threads))
            }
            LayerCompression::Zstd => {
                let mut z = zstd::Encoder::new(inner, ZSTD_LEVEL)?;
                z.multithread(u32::try_from(threads).unwrap_or(u32::MAX))?;
                z.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                // `zstd -t` and every decoder check the content against it.
                z.include_checksum(true)?;
                Compressor::Zstd(z)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }

    /// Ends no block early: a zstd flush would close the current block
    /// there, and where blocks end must not depend on the caller's flushes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The compression threads of this run: `EDGEFORGE_THREADS`, or one per
/// core.
pub fn threads() -> anyhow::Result<usize> {
    match std::env::var(THREADS_ENV) {
        Err(std::env::VarError::NotPresent) => {
            Ok(std::thread::available_parallelism().map_or(1, |n| n.get()))
        }
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n @ 1..=1024) => Ok(n),
            _ => Err(fail(
                Category::Usage,
                format!("{THREADS_ENV}=`{v}` is not a number of threads from 1 to 1024; unset it to use every core"),
            )),
        },
        Err(_) => Err(fail(
            Category::Usage,
            format!("{THREADS_ENV} is not valid UTF-8; unset it to use every core"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes a little, then fails every write, as a full disk does.
    struct FullDisk(usize);

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("no space left"));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_failing_midway_is_an_error_for_both_kinds() {
        // Noise, so the compressed stream outgrows what the writer takes.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..24 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for kind in [LayerCompression::Gzip, LayerCompression::Zstd] {
            let mut c = Compressor::new(FullDisk(1 << 20), kind).unwrap();
            let result = data
                .chunks(1 << 16)
                .try_for_each(|chunk| c.write_all(chunk))
                .and_then(|()| c.finish().map(drop));
            let err = result.expect_err(kind.as_str());
            assert_eq!(err.to_string(), "no space left", "{}", kind.as_str());
        }
    }
}
