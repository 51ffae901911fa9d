//! Refuses registration tokens in provider image content: user-data belongs on
//! the installer ISO only. Looks for an `edgeHostToken` key with a non-empty
//! value, across read boundaries, at memchr speed.

use memchr::memmem;

const KEY: &[u8] = b"edgeHostToken";
/// Bytes after the key needed to decide whether a value follows.
const LOOKAHEAD: usize = 64;
const WINDOW: usize = KEY.len() + LOOKAHEAD;

#[derive(Default)]
pub struct TokenGuard {
    tail: Vec<u8>,
    found: bool,
}

impl TokenGuard {
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.found || chunk.is_empty() {
            return;
        }
        // A key split across reads is seen in the tail of the previous read
        // joined with the head of this one.
        let had_tail = !self.tail.is_empty();
        if had_tail {
            self.tail
                .extend_from_slice(&chunk[..chunk.len().min(WINDOW)]);
            self.found = scan(&self.tail);
        }
        self.found = self.found || scan(chunk);
        if chunk.len() >= WINDOW {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - WINDOW..]);
        } else {
            if !had_tail {
                self.tail.extend_from_slice(chunk);
            }
            let excess = self.tail.len().saturating_sub(WINDOW);
            self.tail.drain(..excess);
        }
    }

    /// Whether a token assignment was seen; resets for the next file.
    pub fn finish(&mut self) -> bool {
        let found = self.found || scan(&self.tail);
        self.tail.clear();
        self.found = false;
        found
    }
}

/// Whether `buf` holds `edgeHostToken` followed by `:` or `=` and a value. A
/// key too close to the end to decide is decided when the next read is joined.
fn scan(buf: &[u8]) -> bool {
    memmem::find_iter(buf, KEY).any(|pos| assigns_value(&buf[pos + KEY.len()..]))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn found_in_chunks(data: &[u8], size: usize) -> bool {
        let mut g = TokenGuard::default();
        for c in data.chunks(size) {
            g.feed(c);
        }
        g.finish()
    }

    #[test]
    fn finds_assignments_across_chunk_boundaries() {
        let doc = b"#cloud-config\nstylus:\n  site:\n    edgeHostToken: abcdef123\n";
        for size in [1, 3, 7, 13, 64, 4096] {
            assert!(found_in_chunks(doc, size), "chunk size {size}");
        }
        assert!(found_in_chunks(br#"{"edgeHostToken": "x"}"#, 5));
        assert!(found_in_chunks(b"EDGE=1\nedgeHostToken=zzz", 2));
    }

    #[test]
    fn ignores_mentions_without_a_value() {
        for doc in [
            &b"# set edgeHostToken in user-data, never here\n"[..],
            b"edgeHostToken:\n",
            b"edgeHostToken: \"\"\n",
            b"edgeHostToken: # filled per site\n",
            b"edgeHostToken",
        ] {
            assert!(!found_in_chunks(doc, 3), "{}", String::from_utf8_lossy(doc));
        }
    }
}
