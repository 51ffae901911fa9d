//! Limits on what untrusted images may make edgeforge do. Each is far above
//! what a real image needs, and low enough that a small hostile file cannot
//! make a run hang or exhaust memory or disk. A refusal names the limit and
//! what to do (README.md, "Limits").

use crate::error::{fail, Category};

/// An index, manifest or config document: they are small, so an absurd one
/// is refused instead of read into memory.
pub const METADATA_BYTES: u64 = 16 << 20;

/// Index nesting in an OCI layout (an index of indexes of ...). Real layouts
/// nest one or two levels.
pub const INDEX_DEPTH: usize = 8;

/// Descriptors in one index (platforms, tags). Multi-platform images list a
/// dozen.
pub const INDEX_ENTRIES: usize = 1_000;

/// Tar entries in one layer: a whole distribution is about 100,000.
pub const LAYER_ENTRIES: u64 = 10_000_000;
/// Overrides [`LAYER_ENTRIES`].
pub const LAYER_ENTRIES_ENV: &str = "EDGEFORGE_MAX_LAYER_ENTRIES";

/// Bytes one layer may decompress to: large root filesystems are a few GiB.
pub const LAYER_BYTES: u64 = 64 << 30;
/// Overrides [`LAYER_BYTES`] (bytes, or with a K, M, G or T suffix: powers of 1024).
pub const LAYER_BYTES_ENV: &str = "EDGEFORGE_MAX_LAYER_SIZE";

/// The limit on tar entries per layer in force for this run.
pub fn layer_entries() -> anyhow::Result<u64> {
    from_env(LAYER_ENTRIES_ENV, LAYER_ENTRIES)
}

/// The limit on one layer's decompressed size in force for this run.
pub fn layer_bytes() -> anyhow::Result<u64> {
    from_env(LAYER_BYTES_ENV, LAYER_BYTES)
}

fn from_env(var: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Ok(v) => parse_size(&v).ok_or_else(|| {
            fail(
                Category::Usage,
                format!("{var}=`{v}` is not a number (digits, optionally followed by K, M, G or T); unset it for the default {default}"),
            )
        }),
        Err(_) => Err(fail(
            Category::Usage,
            format!("{var} is not valid UTF-8; unset it for the default {default}"),
        )),
    }
}

/// `1234`, `64G`, `512M`: powers of 1024 for the suffixes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        (i, 'T' | 't') => (&s[..i], 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1234"), Some(1234));
        assert_eq!(parse_size("64G"), Some(LAYER_BYTES));
        assert_eq!(parse_size("2k"), Some(2048));
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
