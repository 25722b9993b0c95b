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
