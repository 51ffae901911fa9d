//! A gzip writer that deflates on several threads, as pigz does, and writes
//! the same bytes whatever the number of threads.
//!
//! The input is cut into fixed-size blocks. Each block is deflated on its
//! own (raw deflate, the previous block's last 32 KiB as dictionary so
//! matches still reach back across the cut) and ends with a sync flush (an
//! empty stored block, so the next block starts on a byte boundary); the
//! last block ends the stream instead. The blocks' outputs are written in
//! order as one deflate stream in one gzip member, with the CRC-32s of the
//! blocks combined. So the bytes depend on the block size and the level,
//! never on how many threads compressed the blocks or in which order they
//! finished. A bounded number of blocks is in flight, so memory stays
//! bounded whatever the input size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Input per block: large enough that the per-block cost (a sync flush, a
/// dictionary, a hand-over between threads) is noise, small enough that
/// small layers still spread over the cores.
pub const BLOCK_SIZE: usize = 1 << 20;
/// The deflate window: what a block may refer back to in the one before.
const DICTIONARY: usize = 32 << 10;
/// No name, no mtime, no extra flags, OS "unknown": a header that depends on
/// nothing but the format.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Job {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    done: SyncSender<io::Result<Done>>,
}

struct Done {
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
    /// The input buffer, handed back for the next block.
    data: Vec<u8>,
}

pub struct ParallelGzEncoder<W: Write> {
    /// Taken by `finish`.
    inner: Option<W>,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    /// Blocks handed to the workers, oldest first.
    in_flight: VecDeque<Receiver<io::Result<Done>>>,
    max_in_flight: usize,
    spare: Vec<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    crc: crc32fast::Hasher,
    /// Input bytes so far.
    size: u64,
    header_written: bool,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// Compresses at `level` (0-9) on `threads` worker threads (at least one).
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|_| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || worker(&queue, level))
            })
            .collect();
        ParallelGzEncoder {
            inner: Some(inner),
            block: Vec::with_capacity(BLOCK_SIZE),
            dictionary: Vec::new(),
            jobs: Some(jobs),
            in_flight: VecDeque::new(),
            // Every worker busy, and as many blocks again waiting, so no
            // worker idles while the writer catches up.
            max_in_flight: 2 * threads,
            spare: Vec::new(),
            workers,
            crc: crc32fast::Hasher::new(),
            size: 0,
            header_written: false,
        }
    }

    /// Hands the current block to the workers, writing out the oldest
    /// finished one first when enough are in flight.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        if self.in_flight.len() >= self.max_in_flight {
            self.write_oldest()?;
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_SIZE));
        let data = std::mem::replace(&mut self.block, next);
        let tail = data.len().saturating_sub(DICTIONARY);
        let dictionary = std::mem::replace(&mut self.dictionary, data[tail..].to_vec());
        let (done, result) = mpsc::sync_channel(1);
        self.jobs
            .as_ref()
            .expect("jobs are open until finish")
            .send(Job {
                data,
                dictionary,
                last,
                done,
            })
            .map_err(|_| worker_gone())?;
        self.in_flight.push_back(result);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(result) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let done = result.recv().map_err(|_| worker_gone())??;
        let header = !std::mem::replace(&mut self.header_written, true);
        let out = self.out();
        if header {
            out.write_all(&HEADER)?;
        }
        out.write_all(&done.deflated)?;
        self.crc.combine(&done.crc);
        self.spare.push(done.data);
        Ok(())
    }

    fn out(&mut self) -> &mut W {
        self.inner
            .as_mut()
            .expect("the writer is there until finish")
    }

    /// Compresses what is left, writes the trailer and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        // ISIZE is the input size modulo 2^32 (RFC 1952).
        let size = self.size as u32;
        let crc = self.crc.clone().finalize();
        let out = self.out();
        out.write_all(&crc.to_le_bytes())?;
        out.write_all(&size.to_le_bytes())?;
        self.stop_workers();
        Ok(self.inner.take().expect("finish runs once"))
    }

    fn stop_workers(&mut self) {
        // Closing the queue ends each worker's loop once it is empty.
        self.jobs = None;
        self.in_flight.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.size += n as u64;
        if self.block.len() == BLOCK_SIZE {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    /// Writes out nothing early: where blocks end must not depend on when
    /// the caller flushes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

fn worker_gone() -> io::Error {
    io::Error::other("a gzip compression thread stopped")
}

fn worker(queue: &Mutex<mpsc::Receiver<Job>>, level: u32) {
    loop {
        // The lock is held only to take a job, not while compressing it.
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = compress_block(level, &job.data, &job.dictionary, job.last).map(|deflated| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&job.data);
            Done {
                deflated,
                crc,
                data: {
                    let mut d = job.data;
                    d.clear();
                    d
                },
            }
        });
        // The writer may have given up on this block (an error elsewhere).
        let _ = job.done.send(result);
    }
}

/// Raw deflate of one block, ending on a byte boundary (sync flush) or, for
/// the last block, ending the stream. Each block gets a new compressor: a
/// reset one keeps its old window, and the matches deflate picks near the
/// end of the input can depend on those stale bytes (measured: a block
/// compressed after another came out 2 bytes longer than on its own).
fn compress_block(level: u32, data: &[u8], dictionary: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let deflate = &mut Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        deflate
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let start = deflate.total_in();
    loop {
        let taken = (deflate.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
        }
        let status = deflate
            .compress_vec(&data[taken..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_taken = deflate.total_in() - start == data.len() as u64;
        // Done when the stream ended, or when a sync flush took all the
        // input and left room in the output (so nothing is pending).
        match status {
            Status::StreamEnd => return Ok(out),
            _ if !last && all_taken && out.len() < out.capacity() => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Text-like data with repeats across block boundaries, and noise.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    x as u8
                } else {
                    b"edgeforge layer "[i % 16]
                }
            })
            .collect()
    }

    fn gzip(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut w = ParallelGzEncoder::new(Vec::new(), 6, threads);
        for c in data.chunks(chunk.max(1)) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn one_member_that_decodes_to_the_input_whatever_the_threads() {
        for len in [
            0,
            1,
            DICTIONARY,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            3 * BLOCK_SIZE + 12345,
        ] {
            let data = sample(len);
            let one = gzip(&data, 1, 4096);
            assert!(one == gzip(&data, 3, 100_000), "len {len}: bytes differ");
            let mut back = Vec::new();
            // The single-member decoder: everything is in the first member.
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "len {len}: round trip differs");
            assert_eq!(&one[..10], &HEADER);
        }
    }

    #[test]
    fn blocks_reach_back_into_the_previous_block() {
        // 16 KiB of noise ending the first block and starting the second:
        // the copy costs almost nothing only if matches reach across the cut.
        let noise: Vec<u8> = sample(3 * PIECE).into_iter().step_by(3).collect();
        const PIECE: usize = 16 << 10;
        let mut data = vec![0u8; BLOCK_SIZE - PIECE];
        data.extend_from_slice(&noise);
        data.extend_from_slice(&noise);
        let out = gzip(&data, 2, BLOCK_SIZE);
        assert!(
            out.len() < PIECE + PIECE / 4,
            "{} bytes: the dictionary was not used",
            out.len()
        );
    }

    /// Takes `left` bytes, then fails every write.
    struct FailingWriter {
        left: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_failing_midway_is_an_error_not_a_hang() {
        let mut w = ParallelGzEncoder::new(FailingWriter { left: 100_000 }, 6, 2);
        let data = sample(12 * BLOCK_SIZE);
        let written = data.chunks(64 << 10).try_for_each(|c| w.write_all(c));
        let err = match written {
            Err(e) => e,
            Ok(()) => w.finish().map(|_| ()).unwrap_err(),
        };
        assert_eq!(err.to_string(), "disk full");
    }

    #[test]
    fn a_worker_that_panics_is_an_error_not_a_hang() {
        // Level 10 does not exist: making the compressor panics in the worker.
        let mut w = ParallelGzEncoder::new(Vec::new(), 10, 2);
        let data = sample(12 * BLOCK_SIZE);
        let written = data.chunks(64 << 10).try_for_each(|c| w.write_all(c));
        let err = match written {
            Err(e) => e,
            Ok(()) => w.finish().map(|_| ()).unwrap_err(),
        };
        assert_eq!(err.to_string(), worker_gone().to_string());
    }

    #[test]
    fn a_dropped_encoder_stops_its_threads() {
        let mut w = ParallelGzEncoder::new(Vec::new(), 6, 2);
        w.write_all(&sample(5 * BLOCK_SIZE)).unwrap();
        drop(w);
    }
}
