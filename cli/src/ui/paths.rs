//! Paths inside snapshots as they appear in URLs: each name
//! percent-encoded, and nothing accepted that could leave the snapshot.

/// The names of the path that follows the first `skip` segments of the
/// raw (still percent-encoded) URL path; `None` when a name is `.` or
/// `..`, or holds a slash (encoded) or NUL, or its encoding is broken.
pub fn names(raw: &str, skip: usize) -> Option<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for segment in raw.split('/').skip(skip).filter(|s| !s.is_empty()) {
        let name = decode(segment)?;
        if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
            return None;
        }
        names.push(name);
    }
    Some(names)
}

/// Segment `i` of the raw URL path (`/` before each; segment 0 is the
/// empty text before the first), decoded; `None` when it is missing,
/// empty, or not a name [`names`] would accept.
pub fn segment(raw: &str, i: usize) -> Option<Vec<u8>> {
    let segment = raw.split('/').nth(i).filter(|s| !s.is_empty())?;
    names(segment, 0)?.pop()
}

/// Percent-decodes one segment.
fn decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encodes a name (every byte but letters, digits and `-._~`).
pub fn encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `names` as a URL path, each percent-encoded, with a leading slash
/// before each.
pub fn encode_all(names: &[Vec<u8>]) -> String {
    names.iter().map(|n| format!("/{}", encode(n))).collect()
}

/// `names` as the path inside the snapshot, for the engine.
pub fn inner(names: &[Vec<u8>]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut path = std::path::PathBuf::from("/");
    for n in names {
        path.push(std::ffi::OsStr::from_bytes(n));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_leave_nothing_outside_the_snapshot() {
        let ok = |raw| names(raw, 5);
        assert_eq!(
            ok("/r/x/b/s/a%20b/c"),
            Some(vec![b"a b".to_vec(), b"c".to_vec()])
        );
        assert_eq!(ok("/r/x/b/s/%FF"), Some(vec![vec![0xff]]));
        assert_eq!(ok("/r/x/b/s"), Some(vec![]));
        for bad in [
            "/r/x/b/s/..",
            "/r/x/b/s/a/../..",
            "/r/x/b/s/%2e%2E",
            "/r/x/b/s/.",
            "/r/x/b/s/a%2Fb",
            "/r/x/b/s/a%2fb",
            "/r/x/b/s/a%00",
            "/r/x/b/s/a%2",
            "/r/x/b/s/a%zz",
        ] {
            assert_eq!(ok(bad), None, "{bad}");
        }
    }

    #[test]
    fn segments_are_counted_with_empty_ones() {
        assert_eq!(segment("/r/main/b/abc/x", 2), Some(b"main".to_vec()));
        assert_eq!(segment("/r//b/abc", 2), None);
        assert_eq!(segment("/r/a%20b/b", 2), Some(b"a b".to_vec()));
        assert_eq!(segment("/r/%2e%2e/b", 2), None);
        assert_eq!(segment("/r/x", 4), None);
    }

    #[test]
    fn encoded_names_decode_to_themselves() {
        let all: Vec<u8> = (1..=255).filter(|&b| b != b'/').collect();
        let path = encode_all(&[all.clone(), b"x y".to_vec()]);
        assert_eq!(names(&path, 0), Some(vec![all, b"x y".to_vec()]));
    }
}
