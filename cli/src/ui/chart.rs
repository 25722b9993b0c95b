//! Charts as SVG, drawn here: no script runs in the dashboard's pages.

use cairn_format::journal::DrillResult;
use cairn_format::snapshot::Snapshot;
use cairn_format::{SnapshotId, Timestamp};
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const MARGIN: f64 = 36.0;

/// Points `(x, y)` on a chart: x spread over the time span, y over `0..=top`.
struct Axes {
    first: f64,
    span: f64,
    top: f64,
}

impl Axes {
    fn new(times: impl Iterator<Item = f64> + Clone, top: f64) -> Axes {
        let first = times.clone().fold(f64::INFINITY, f64::min);
        let last = times.fold(f64::NEG_INFINITY, f64::max);
        Axes {
            first,
            span: (last - first).max(1.0),
            top: top.max(f64::MIN_POSITIVE),
        }
    }

    fn x(&self, t: f64) -> f64 {
        MARGIN + (t - self.first) / self.span * (WIDTH - 2.0 * MARGIN)
    }

    fn y(&self, v: f64) -> f64 {
        HEIGHT - MARGIN - v / self.top * (HEIGHT - 2.0 * MARGIN)
    }
}

fn open(label: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{label}"><line x1="{MARGIN}" y1="{b}" x2="{r}" y2="{b}" stroke="#889"/>"##,
        b = HEIGHT - MARGIN,
        r = WIDTH - MARGIN
    )
}

fn empty(label: &str) -> String {
    let mut svg = open(label);
    let _ = write!(
        svg,
        r##"<text x="{MARGIN}" y="{}" fill="#667">none yet</text></svg>"##,
        HEIGHT / 2.0
    );
    svg
}

fn seconds(t: Timestamp) -> f64 {
    t.secs as f64
}

/// A bar at each snapshot's time, as high as the stored bytes it added.
pub fn snapshots(list: &[(SnapshotId, Snapshot)]) -> String {
    let label = "snapshots over time";
    if list.is_empty() {
        return empty(label);
    }
    let top = list
        .iter()
        .map(|(_, s)| s.summary.bytes_added_stored)
        .max()
        .unwrap_or(0);
    let axes = Axes::new(list.iter().map(|(_, s)| seconds(s.time)), top as f64);
    let mut svg = open(label);
    for (id, s) in list {
        let x = axes.x(seconds(s.time));
        let y = axes
            .y(s.summary.bytes_added_stored as f64)
            .min(HEIGHT - MARGIN - 2.0);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{y:.1}" stroke="#3a6ea5" stroke-width="3"><title>{} {} added</title></line>"##,
            HEIGHT - MARGIN,
            id.short(),
            crate::output::size(s.summary.bytes_added_stored)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="4" y="{}" fill="#667" font-size="11">{}</text></svg>"##,
        MARGIN - 8.0,
        crate::output::size(top)
    );
    svg
}

/// A dot at each drill's time, as high as the time it took (red when it
/// failed or took longer than `rto`), and the RTO as a line.
pub fn drills(list: &[(Timestamp, String, DrillResult)], rto: Option<f64>) -> String {
    let label = "restore drills over time";
    if list.is_empty() {
        return empty(label);
    }
    let took = |d: &DrillResult| d.duration_nanos as f64 / 1e9;
    let top = list
        .iter()
        .map(|(_, _, d)| took(d))
        .fold(rto.unwrap_or(0.0), f64::max)
        * 1.1;
    let axes = Axes::new(list.iter().map(|(t, _, _)| seconds(*t)), top);
    let mut svg = open(label);
    if let Some(r) = rto {
        let y = axes.y(r);
        let _ = write!(
            svg,
            r##"<line x1="{MARGIN}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#cf222e" stroke-dasharray="4 3"/><text x="4" y="{:.1}" fill="#cf222e" font-size="11">RTO</text>"##,
            WIDTH - MARGIN,
            y + 4.0
        );
    }
    for (t, _, d) in list {
        let bad = !d.passed || rto.is_some_and(|r| took(d) > r);
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{}"><title>{:.2} s</title></circle>"##,
            axes.x(seconds(*t)),
            axes.y(took(d)),
            if bad { "#cf222e" } else { "#1a7f37" },
            took(d)
        );
    }
    svg.push_str("</svg>");
    svg
}
