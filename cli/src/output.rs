//! Formatting shared by the commands.

use cairn_format::tree::{Node, NodeKind};
use cairn_format::Timestamp;

/// A timestamp in the local time zone, to the second.
pub fn local_time(t: Timestamp) -> String {
    match jiff::Timestamp::new(t.secs, t.nanos as i32) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => format!("@{}", t.secs),
    }
}

/// Parses a local time such as `2026-03-29 01:30` or `2026-03-29 01:30:15`,
/// or an RFC 3339 time with an offset. A local time that occurs twice (when
/// clocks go back) is the earlier one; one that is skipped moves forward.
pub fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    let ts = match text.parse::<jiff::Timestamp>() {
        Ok(ts) => ts,
        Err(_) => text
            .parse::<jiff::civil::DateTime>()
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::system()))
            .map(|z| z.timestamp())
            .map_err(|_| {
                anyhow::anyhow!("{text:?} is not a time such as \"2026-03-29 01:30\" or RFC 3339")
            })?,
    };
    Ok(Timestamp {
        secs: ts.as_second(),
        nanos: ts.subsec_nanosecond() as u32,
    })
}

/// A timestamp as RFC 3339 in UTC with nanoseconds, for JSON.
pub fn rfc3339(t: Timestamp) -> String {
    match jiff::Timestamp::new(t.secs, t.nanos as i32) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("@{}.{:09}", t.secs, t.nanos),
    }
}

/// Bytes in binary units.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Raw bytes (names, paths) shown as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Raw bytes (names, paths) for JSON, faithfully: a string when they are
/// valid UTF-8, otherwise `{"hex": "..."}` with every byte in hex.
pub fn json_bytes(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "hex": hex })
        }
    }
}

/// Prints `message` on standard output as one line of JSON (`--json`).
pub fn emit(message: &serde_json::Value) {
    println!("{message}");
}

/// A count and its noun, in the plural unless the count is 1: `plural(1,
/// "file")` is "1 file", `plural(2, "entry")` "2 entries", `plural(0,
/// "match")` "0 matches". Only the last word of the noun changes.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun.strip_suffix('y').filter(|stem| {
        stem.chars()
            .last()
            .is_some_and(|c| c.is_alphabetic() && !"aeiou".contains(c))
    });
    match consonant_y {
        Some(stem) => format!("{n} {stem}ies"),
        None if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) => {
            format!("{n} {noun}es")
        }
        None => format!("{n} {noun}s"),
    }
}

/// `ls -l`-style type character and permission bits.
pub fn mode_string(node: &Node) -> String {
    let t = match node.kind {
        NodeKind::File { .. } | NodeKind::Bundled { .. } => '-',
        NodeKind::Dir { .. } => 'd',
        NodeKind::Symlink { .. } => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::Socket => 's',
        NodeKind::CharDevice { .. } => 'c',
        NodeKind::BlockDevice { .. } => 'b',
    };
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let bits = (node.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// The type of a node as a word, for JSON.
pub fn kind_name(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::File { .. } | NodeKind::Bundled { .. } => "file",
        NodeKind::Dir { .. } => "dir",
        NodeKind::Symlink { .. } => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::Socket => "socket",
        NodeKind::CharDevice { .. } => "chardev",
        NodeKind::BlockDevice { .. } => "blockdev",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "snapshot"), "1 snapshot");
        assert_eq!(plural(0, "snapshot"), "0 snapshots");
        assert_eq!(plural(2, "entry"), "2 entries");
        assert_eq!(plural(1, "entry"), "1 entry");
        assert_eq!(plural(3, "key"), "3 keys");
        assert_eq!(plural(3, "match"), "3 matches");
        assert_eq!(plural(3, "directory"), "3 directories");
        assert_eq!(plural(4, "data blob"), "4 data blobs");
    }

    #[test]
    fn bytes_for_json_are_faithful() {
        assert_eq!(json_bytes(b"/home/ann"), serde_json::json!("/home/ann"));
        assert_eq!(
            json_bytes(b"/\xe9\xff"),
            serde_json::json!({"hex": "2fe9ff"})
        );
    }
}
