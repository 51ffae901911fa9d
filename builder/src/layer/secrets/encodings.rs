//! The byte forms a secret value can take in a file: as written, UTF-16
//! (LE and BE, as Windows tools and some editors save text) and base64
//! (standard and URL-safe, at each of the three alignments a value can
//! have inside a longer encoded text). Other transformations (hex, URL or
//! backslash escapes, other compressions) are not looked for here; escaped
//! values in YAML and JSON files are seen by `parsed.rs`, gzip by `gzip.rs`.

/// One form of a value, with how it is named in an error.
pub struct Form {
    pub bytes: Vec<u8>,
    pub label: &'static str,
}

/// `value` as written and UTF-16; base64 too when the value is at least
/// `base64_min` bytes long (a short value's base64 matches noise).
pub fn forms(value: &[u8], base64_min: usize) -> Vec<Form> {
    let mut out = vec![Form {
        bytes: value.to_vec(),
        label: "",
    }];
    if let Ok(text) = std::str::from_utf8(value) {
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for bytes in [le, be] {
            out.push(Form {
                bytes,
                label: " (as UTF-16)",
            });
        }
    }
    if value.len() >= base64_min {
        for alphabet in [STANDARD, URL_SAFE] {
            for shift in 0..3 {
                out.push(Form {
                    bytes: base64_inner(value, shift, alphabet),
                    label: " (base64-encoded)",
                });
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.bytes.clone()));
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that depend on `value` alone when it follows
/// `shift` other bytes in the encoded data: the characters that also hold
/// bits of the neighbours are left out, so the needle matches whatever
/// surrounds the value.
fn base64_inner(value: &[u8], shift: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut data = vec![0u8; shift];
    data.extend_from_slice(value);
    let encoded = encode(&data, alphabet);
    // Character i holds bits [6i, 6i + 6); the value has bits
    // [8 shift, 8 (shift + len)).
    let first = (8 * shift).div_ceil(6);
    let end = 8 * (shift + value.len()) / 6;
    encoded[first..end].to_vec()
}

/// Base64 without padding.
fn encode(data: &[u8], alphabet: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize]);
        }
    }
    out
}

/// Decodes base64 (either alphabet, whitespace and padding ignored); `None`
/// if `text` is not base64. For YAML `!!binary` keys.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = bits << 6 | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        String::from_utf8(encode(data, STANDARD)).unwrap()
    }

    #[test]
    fn base64_needles_match_the_value_at_any_offset() {
        let value = b"aUAxxxxxxxxx0ChYCrO";
        let needles = forms(value, 8);
        for prefix in ["", "t", "to", "tok=", "token: "] {
            let data = [prefix.as_bytes(), value, b"\n"].concat();
            let encoded = b64(&data);
            assert!(
                needles.iter().any(|n| encoded
                    .as_bytes()
                    .windows(n.bytes.len())
                    .any(|w| w == n.bytes)),
                "prefix {prefix:?}: {encoded}"
            );
        }
        assert_eq!(b64(b"edgeHostToken"), "ZWRnZUhvc3RUb2tlbg");
        assert_eq!(
            decode_base64("ZWRnZUhv\n c3RUb2tlbg==").as_deref(),
            Some(&b"edgeHostToken"[..])
        );
        assert_eq!(decode_base64("not base64!"), None);
    }

    #[test]
    fn short_values_get_no_base64_form() {
        let f = forms(b"abc", 8);
        assert_eq!(f.len(), 3, "plain, UTF-16 LE, UTF-16 BE");
        assert_eq!(f[1].bytes, b"a\0b\0c\0");
        assert_eq!(f[2].bytes, b"\0a\0b\0c");
    }
}
