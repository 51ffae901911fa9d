//! The bytes a removal frees: each file counted once however many hard
//! links it has (cached trees hard-link the image's own hard links, and
//! builds hard-link cache entries into work folders), as `du` counts.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Default)]
pub struct Freed {
    seen: HashSet<(u64, u64)>,
    pub bytes: u64,
}

impl Freed {
    /// Counts a regular file, unless another link to it was counted.
    pub fn file(&mut self, md: &std::fs::Metadata) {
        if md.is_file() && self.seen.insert((md.dev(), md.ino())) {
            self.bytes += md.len();
        }
    }

    /// Counts every regular file under `dir` (not following symlinks).
    pub fn tree(&mut self, dir: &Path) {
        for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if let Ok(md) = e.metadata() {
                self.file(&md);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("a")).unwrap();
        std::fs::write(t.path().join("a/f"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(t.path().join("a/f"), t.path().join("a/g")).unwrap();
        std::fs::hard_link(t.path().join("a/f"), t.path().join("h")).unwrap();
        std::fs::write(t.path().join("a/other"), vec![0u8; 10]).unwrap();
        std::os::unix::fs::symlink("f", t.path().join("a/link")).unwrap();
        let mut freed = Freed::default();
        freed.tree(&t.path().join("a"));
        assert_eq!(freed.bytes, 1010);
        freed.file(&std::fs::metadata(t.path().join("h")).unwrap());
        assert_eq!(freed.bytes, 1010, "the same file through another link");
    }
}
