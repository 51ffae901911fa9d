//! Gzip data inside a file (a `.gz` file, or a member embedded anywhere in
//! one): every gzip header found in the bytes starts an inflater whose
//! output goes through a nested scan, so compressing a token does not hide
//! it. Bounded: the inflated bytes of one file (all members and levels
//! together) are scanned up to `INFLATE_MAX`, at most `LIVE_MAX` members are
//! inflated at once, gzip inside gzip is followed one level down, and a
//! header longer than `HEADER_MAX` (name, comment, extra field) is not gzip
//! we follow. What lies beyond these bounds is not scanned.

use flate2::{Decompress, FlushDecompress, Status};
use memchr::memmem;

use super::{Finding, Needles, Scan};

const MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
/// Inflated bytes scanned per file, all its gzip members together.
pub const INFLATE_MAX: u64 = 256 << 20;
/// Members inflated at once per file: a real member stays open, a chance
/// match of the magic bytes in other data dies within a few bytes.
const LIVE_MAX: usize = 8;
/// Gzip in gzip (a `.gz` in a `.tar.gz`) is followed; deeper is not.
const DEPTH_MAX: u8 = 2;
const HEADER_MAX: usize = 64 << 10;
const OUT_CHUNK: usize = 32 << 10;

/// What one file's gzip members may still use.
pub struct Budget {
    inflate_left: u64,
    live_left: usize,
}

impl Budget {
    /// A file's budget: `inflate_max` is `INFLATE_MAX` but in tests.
    pub fn new(inflate_max: u64) -> Budget {
        Budget {
            inflate_left: inflate_max,
            live_left: LIVE_MAX,
        }
    }
}

/// The gzip members of one stream being inflated.
pub struct GzipMembers {
    depth: u8,
    /// The last bytes of the previous read, for a magic split across reads.
    carry: Vec<u8>,
    live: Vec<Member>,
}

impl GzipMembers {
    pub fn new(depth: u8) -> GzipMembers {
        GzipMembers {
            depth,
            carry: Vec::new(),
            live: Vec::new(),
        }
    }

    pub fn feed(
        &mut self,
        chunk: &[u8],
        needles: &Needles,
        budget: &mut Budget,
    ) -> Option<Finding> {
        // Open members take the whole read.
        let mut i = 0;
        while i < self.live.len() {
            match self.live[i].feed(chunk, needles, budget) {
                Step::More => i += 1,
                Step::Done(found) => {
                    self.live.swap_remove(i);
                    budget.live_left += 1;
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        if self.depth >= DEPTH_MAX || chunk.is_empty() {
            return None;
        }
        // New members start at each magic: first those straddling the
        // previous read, then those inside this one.
        let head = &chunk[..chunk.len().min(MAGIC.len() - 1)];
        let joined = [self.carry.as_slice(), head].concat();
        let straddling: Vec<usize> = memmem::find_iter(&joined, MAGIC)
            .filter(|&p| p < self.carry.len())
            .collect();
        for p in straddling {
            let carried = self.carry[p..].to_vec();
            let found = self.start(&[&carried, chunk], needles, budget);
            if found.is_some() {
                return found;
            }
        }
        for p in memmem::find_iter(chunk, MAGIC) {
            let found = self.start(&[&chunk[p..]], needles, budget);
            if found.is_some() {
                return found;
            }
        }
        let keep = MAGIC.len() - 1;
        if chunk.len() >= keep {
            self.carry = chunk[chunk.len() - keep..].to_vec();
        } else {
            self.carry.extend_from_slice(chunk);
            let excess = self.carry.len().saturating_sub(keep);
            self.carry.drain(..excess);
        }
        None
    }

    /// Opens a member on `parts` (its bytes so far), if the budget allows.
    fn start(
        &mut self,
        parts: &[&[u8]],
        needles: &Needles,
        budget: &mut Budget,
    ) -> Option<Finding> {
        if budget.live_left == 0 || budget.inflate_left == 0 {
            return None;
        }
        budget.live_left -= 1;
        let mut m = Member::new(self.depth + 1, needles);
        for part in parts {
            if let Step::Done(found) = m.feed(part, needles, budget) {
                budget.live_left += 1;
                return found;
            }
        }
        self.live.push(m);
        None
    }

    /// The stream ended: members still open are scanned for what they gave.
    pub fn finish(&mut self, needles: &Needles, budget: &mut Budget) -> Option<Finding> {
        self.carry.clear();
        let mut found = None;
        for mut m in self.live.drain(..) {
            budget.live_left += 1;
            let f = m.end(needles, budget);
            found = found.or(f);
        }
        found
    }
}

enum Step {
    More,
    /// The member ended (or was not gzip); what its content carried.
    Done(Option<Finding>),
}

struct Member {
    /// The header's bytes until it is complete; then `None`.
    header: Option<Vec<u8>>,
    inflate: Decompress,
    out: Vec<u8>,
    inner: Box<Scan>,
}

impl Member {
    fn new(depth: u8, needles: &Needles) -> Member {
        Member {
            header: Some(Vec::new()),
            inflate: Decompress::new(false),
            out: Vec::new(),
            inner: Box::new(Scan::new(needles, depth)),
        }
    }

    fn feed(&mut self, mut input: &[u8], needles: &Needles, budget: &mut Budget) -> Step {
        if let Some(header) = &mut self.header {
            let before = header.len();
            let take = input.len().min(HEADER_MAX + 1 - before);
            header.extend_from_slice(&input[..take]);
            match header_len(header) {
                Err(()) => return Step::Done(None),
                Ok(None) if header.len() > HEADER_MAX => return Step::Done(None),
                Ok(None) => return Step::More,
                Ok(Some(len)) => {
                    input = &input[len - before..];
                    self.header = None;
                    self.out = vec![0; OUT_CHUNK];
                }
            }
        }
        loop {
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, &mut self.out, FlushDecompress::None);
            let used = (self.inflate.total_in() - in0) as usize;
            let made = (self.inflate.total_out() - out0) as usize;
            input = &input[used..];
            if made > 0 {
                let take = made.min(usize::try_from(budget.inflate_left).unwrap_or(usize::MAX));
                budget.inflate_left -= take as u64;
                self.inner.feed(&self.out[..take], needles, budget);
                if self.inner.found() || budget.inflate_left == 0 {
                    return Step::Done(self.end(needles, budget));
                }
            }
            match status {
                // Not deflate data after all, or its end: either way what
                // came out so far is all there is to scan.
                Err(_) | Ok(Status::StreamEnd) => return Step::Done(self.end(needles, budget)),
                Ok(_) if used == 0 && made == 0 => return Step::More,
                Ok(_) if input.is_empty() && made < self.out.len() => return Step::More,
                Ok(_) => {}
            }
        }
    }

    fn end(&mut self, needles: &Needles, budget: &mut Budget) -> Option<Finding> {
        if self.header.is_some() {
            return None;
        }
        self.inner.finish(needles, budget).map(Finding::in_gzip)
    }
}

/// The length of the gzip header (RFC 1952) at the start of `b`: `None`
/// while incomplete, `Err` if `b` is no gzip header.
fn header_len(b: &[u8]) -> Result<Option<usize>, ()> {
    if b.len() < 10 {
        return Ok(None);
    }
    let flags = b[3];
    if b[..3] != *MAGIC || flags & 0xe0 != 0 {
        return Err(());
    }
    let mut i = 10;
    if flags & 0x04 != 0 {
        let Some(xlen) = b.get(i..i + 2) else {
            return Ok(None);
        };
        i += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    // File name, then comment: each ends with a NUL.
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            match b.get(i..).and_then(|rest| memchr::memchr(0, rest)) {
                Some(nul) => i += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        i += 2;
    }
    Ok((b.len() >= i).then_some(i))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::layer::secrets::{known, Secret, SecretGuard};

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gz_named(data: &[u8], name: &[u8]) -> Vec<u8> {
        let mut e = flate2::GzBuilder::new()
            .filename(name)
            .comment("c")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn finding(secrets: Vec<Secret>, data: &[u8], size: usize) -> Option<String> {
        let mut g = SecretGuard::new(secrets);
        for c in data.chunks(size) {
            g.feed(c);
        }
        g.finish().map(|f| f.what)
    }

    #[test]
    fn finds_tokens_in_gzip_files_members_and_nested_gzip() {
        let doc = b"stylus:\n  site:\n    edgeHostToken: abcdef123\n";
        let file = gz(doc);
        let named = gz_named(doc, b"user-data.yaml");
        let embedded = [
            b"#!/bin/sh\nbase64 -d <<EOF | gunzip\n".as_slice(),
            &file,
            b"\nEOF\n",
        ]
        .concat();
        let multi = [gz(b"nothing here\n"), gz(doc)].concat();
        let nested = gz(&[b"x".repeat(70_000), gz(doc)].concat());
        for (name, data) in [
            ("file", &file),
            ("named", &named),
            ("embedded", &embedded),
            ("second member", &multi),
            ("gzip in gzip", &nested),
        ] {
            for size in [1, 2, 3, 7, 4096, 1 << 20] {
                let what = finding(Vec::new(), data, size);
                assert_eq!(
                    what.as_deref(),
                    Some("a stylus.site.edgeHostToken (in gzip-compressed data)"),
                    "{name}, reads of {size}"
                );
            }
        }
        assert_eq!(finding(Vec::new(), &gz(b"edgeHostToken:\n"), 5), None);
    }

    #[test]
    fn finds_known_values_in_gzip_data() {
        let secrets = known("s3cr3t-t0ken-value");
        let data = gz(&[b"y".repeat(100_000), b"s3cr3t-t0ken-value".to_vec()].concat());
        assert_eq!(
            finding(secrets, &data, 8192).as_deref(),
            Some("the token (in gzip-compressed data)")
        );
    }

    #[test]
    fn stops_at_the_inflate_budget() {
        // The budget is INFLATE_MAX; 1 MiB here keeps a debug build quick.
        let data = gz(&[vec![0u8; 1 << 20], b"\nedgeHostToken: abcdef123\n".to_vec()].concat());
        let scan = |max| {
            let mut g = SecretGuard::with_inflate_max(Vec::new(), max);
            g.feed(&data);
            g.finish().is_some()
        };
        assert!(scan(2 << 20), "within the budget");
        assert!(!scan(1 << 20), "beyond it");
    }

    #[test]
    fn chance_magic_bytes_and_bad_headers_are_no_gzip() {
        let noise = [&b"abc"[..], MAGIC, &[0xff; 20], b"edgeHostToken"].concat();
        assert_eq!(finding(Vec::new(), &noise, 3), None);
        assert_eq!(
            header_len(&[0x1f, 0x8b, 8, 0xe0, 0, 0, 0, 0, 0, 3]),
            Err(())
        );
        assert_eq!(
            header_len(&[0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3, b'n']),
            Ok(None)
        );
        let mut long = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3];
        long.extend(std::iter::repeat_n(b'n', HEADER_MAX + 10));
        assert_eq!(finding(Vec::new(), &long, 4096), None);
    }
}
