//! The byte scan of a stream: an `edgeHostToken` key with a value on its
//! line (UTF-8 or UTF-16 text), and the forms of the secret values the run
//! knows, across read boundaries, at memchr speed. What needs the whole
//! document (a value on the next line, escaped keys) is `parsed.rs`'s job.

use memchr::memmem;

use super::{Finding, Needles};

pub const KEY: &[u8] = b"edgeHostToken";
/// The key in UTF-16 without its last NUL: matches LE (`e\0d\0...n\0`) and
/// BE (`\0e\0d...\0n`) alike.
const KEY16: &[u8] = b"e\0d\0g\0e\0H\0o\0s\0t\0T\0o\0k\0e\0n";
/// Bytes after the key needed to decide whether a value follows.
const LOOKAHEAD: usize = 64;

pub struct StreamScan {
    window: usize,
    tail: Vec<u8>,
    found: Option<Finding>,
}

impl StreamScan {
    pub fn new(needles: &Needles) -> StreamScan {
        StreamScan {
            window: (KEY.len() + LOOKAHEAD)
                .max(KEY16.len() + 2 * LOOKAHEAD)
                .max(needles.longest()),
            tail: Vec::new(),
            found: None,
        }
    }

    pub fn found(&self) -> bool {
        self.found.is_some()
    }

    pub fn feed(&mut self, chunk: &[u8], needles: &Needles) {
        if self.found.is_some() || chunk.is_empty() {
            return;
        }
        let window = self.window;
        // A key split across reads is seen in the tail of the previous read
        // joined with the head of this one.
        let had_tail = !self.tail.is_empty();
        if had_tail {
            self.tail
                .extend_from_slice(&chunk[..chunk.len().min(window)]);
            self.found = scan(&self.tail, needles);
        }
        if self.found.is_none() {
            self.found = scan(chunk, needles);
        }
        if chunk.len() >= window {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - window..]);
        } else {
            if !had_tail {
                self.tail.extend_from_slice(chunk);
            }
            let excess = self.tail.len().saturating_sub(window);
            self.tail.drain(..excess);
        }
    }

    /// What the stream fed since the last call carries, if anything.
    pub fn finish(&mut self, needles: &Needles) -> Option<Finding> {
        let found = self.found.take().or_else(|| scan(&self.tail, needles));
        self.tail.clear();
        found
    }
}

fn scan(buf: &[u8], needles: &Needles) -> Option<Finding> {
    let assigned = memmem::find_iter(buf, KEY).any(|pos| assigns_value(&buf[pos + KEY.len()..]))
        || memmem::find_iter(buf, KEY16).any(|pos| {
            let after = &buf[pos + KEY16.len()..];
            assigns_value(&narrow(&after[..after.len().min(2 * LOOKAHEAD)]))
        });
    if assigned {
        return Some(Finding::token());
    }
    needles.find_in(buf)
}

/// UTF-16 text as the ASCII it holds: the NUL halves dropped.
fn narrow(utf16: &[u8]) -> Vec<u8> {
    utf16.iter().copied().filter(|&b| b != 0).collect()
}

/// Whether the bytes after a key give it a value on the same line
/// (`: x`, `= x`, `": "x"`); an empty value, a comment or the end of the
/// line is no value.
fn assigns_value(after: &[u8]) -> bool {
    let mut i = 0;
    if matches!(after.first(), Some(b'"' | b'\'')) {
        i += 1;
    }
    while matches!(after.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    if !matches!(after.get(i), Some(b':' | b'=')) {
        return false;
    }
    i += 1;
    while matches!(after.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match after.get(i) {
        None | Some(b'\n' | b'\r' | b'#' | b',' | b'}') => false,
        Some(q @ (b'"' | b'\'')) => after.get(i + 1).is_some_and(|c| c != q),
        Some(_) => true,
    }
}
