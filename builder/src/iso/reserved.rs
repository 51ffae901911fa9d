//! The reserved user-data area of a golden ISO: `/config.yaml` is always
//! exactly the area's size (`iso.reserved_area`, [`SIZE`] by default; the
//! marker records it, so `iso embed` works with any): the user-data, a marker line recording its length,
//! then `#` comment lines. Comments keep the YAML meaning; the fixed size
//! means a per-site ISO changes only the file's data, never a directory
//! record (ISO 9660, Joliet and Rock Ridge stay consistent).

use crate::error::{fail, Category};

/// The default size (`iso.reserved_area` sets another).
pub const SIZE: usize = 64 * 1024;
/// The sizes `iso.reserved_area` may take: room for a small document, and
/// a bound well above the 1 MiB of user-data the agent reads.
pub const MIN_SIZE: u64 = 4 * 1024;
pub const MAX_SIZE: u64 = 8 * 1024 * 1024;
const MARKER: &str = "# edgeforge:reserved-area";
/// The user-data of a golden ISO built without one, and what `--remove` restores.
pub const EMPTY: &[u8] = b"#cloud-config\n";

/// The area holding `user_data`.
pub fn fill(user_data: &[u8], size: usize) -> anyhow::Result<Vec<u8>> {
    // A /config.yaml copied out of an ISO carries its area's marker and
    // filler: a second marker would make the area unreadable
    // ([`user_data_len`] reads the first).
    if user_data
        .split(|b| *b == b'\n')
        .any(|l| l.starts_with(MARKER.as_bytes()))
    {
        return Err(fail(
            Category::InvalidInput,
            format!("the user-data holds a `{MARKER}` line: it was copied from an ISO's /config.yaml with the reserved area's filler; keep only the document above that line (`edgeforge iso show --reveal` prints it)"),
        ));
    }
    let mut area = user_data.to_vec();
    if !area.ends_with(b"\n") {
        area.push(b'\n');
    }
    area.extend_from_slice(
        format!("{MARKER} user-data-bytes={} size={size}\n", user_data.len()).as_bytes(),
    );
    if area.len() > size {
        return Err(fail(
            Category::InvalidInput,
            format!(
                "the user-data is {} bytes; the golden ISO's reserved area is {size} bytes and holds at most {} bytes of user-data: shorten it, or set iso.reserved_area in the definition and rebuild the golden ISO (the area may be up to 8MiB)",
                user_data.len(),
                capacity(size),
            ),
        ));
    }
    while area.len() < size {
        let n = (size - area.len()).min(80);
        area.extend(std::iter::repeat_n(b'#', n - 1));
        area.push(b'\n');
    }
    Ok(area)
}

/// The largest user-data that fits (the marker's digits vary a little).
pub fn capacity(size: usize) -> usize {
    size - format!("\n{MARKER} user-data-bytes={size} size={size}\n").len()
}

/// The user-data length recorded in an area, if `area` is one.
pub fn user_data_len(area: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(area).ok()?;
    let line = text.lines().find(|l| l.starts_with(MARKER))?;
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let (len, size) = (field("user-data-bytes=")?, field("size=")?);
    (size == area.len() && len <= size).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_fixed_size_and_record_the_length() {
        for ud in [&b"#cloud-config\n"[..], b"#cloud-config\nstylus: {}", b""] {
            let a = fill(ud, 4096).unwrap();
            assert_eq!(a.len(), 4096);
            assert_eq!(user_data_len(&a), Some(ud.len()));
            assert_eq!(&a[..ud.len()], ud);
            assert!(a.ends_with(b"\n"));
        }
        let big = vec![b'a'; 4096];
        assert!(fill(&big, 4096)
            .unwrap_err()
            .to_string()
            .contains("set iso.reserved_area in the definition"));
        assert_eq!(user_data_len(b"#cloud-config\nno marker\n"), None);
        // An area taken back as user-data would hold two markers.
        let copied = fill(b"#cloud-config\n", 4096).unwrap();
        assert!(fill(&copied, 8192)
            .unwrap_err()
            .to_string()
            .contains("keep only the document above that line"));
    }
}
