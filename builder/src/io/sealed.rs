//! Small JSON metadata files that carry the SHA-256 of their own content, so
//! a damaged one (a flipped byte that still parses) is noticed instead of
//! trusted: `{"sha256": "<hex>", "body": <value>}`, where the digest is over
//! the compact serialization of `body`. serde_json serializes a value it
//! parsed back to the same bytes (fields keep their order), so the check
//! needs no second copy of the body.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

use super::Sha256Digest;

/// The sealed form of `body`.
pub fn to_vec<T: Serialize>(body: &T) -> serde_json::Result<Vec<u8>> {
    let body = serde_json::to_value(body)?;
    let sha = Sha256Digest::of(&serde_json::to_vec(&body)?);
    serde_json::to_vec(&json!({"sha256": sha.to_string(), "body": body}))
}

/// The body of a sealed file, or why it cannot be trusted.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut file: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let (Some(sha), Some(body)) = (
        file["sha256"].as_str().map(str::to_string),
        file.get_mut("body").map(Value::take),
    ) else {
        return Err("no sha256 and body".into());
    };
    let actual = Sha256Digest::of(&serde_json::to_vec(&body).map_err(|e| e.to_string())?);
    if actual.to_string() != sha {
        return Err(format!("its content has sha256 {actual}, it records {sha}"));
    }
    serde_json::from_value(body).map_err(|e| format!("unexpected content ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_flipped_byte_is_noticed() {
        let body = json!({"name": "a \"quoted\" é", "size": 12345, "list": [true, null]});
        let sealed = to_vec(&body).unwrap();
        assert_eq!(from_slice::<Value>(&sealed).unwrap(), body);
        for i in 0..sealed.len() {
            for bit in [0x01, 0x20] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                if let Ok(v) = from_slice::<Value>(&bad) {
                    // Only a flip JSON does not see (none in compact output) may pass.
                    assert_eq!(v, body, "byte {i} flipped by {bit:#x}");
                }
            }
        }
    }
}
