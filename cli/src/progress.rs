//! Progress while a long operation runs: a line on standard error, or with
//! `--json` status lines on standard output.

use cairn_engine::progress::{Counts, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// How often a status line is printed with `--json`.
const JSON_TICK: Duration = Duration::from_secs(1);

/// How progress is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Not at all.
    Off,
    /// A bar on standard error.
    Bar,
    /// JSON status lines on standard output.
    Json,
}

/// Shows a [`Progress`] until dropped: clears the bar, or prints the last
/// status line.
pub struct Display {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Shows `progress` as `how` says; its items are called `what` ("files", "packs").
    pub fn start(progress: Arc<Progress>, what: &'static str, how: Shown) -> Display {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || match how {
            Shown::Json => status_lines(&progress, what, &stopped),
            _ => bar(&progress, what, &stopped),
        });
        Display {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// Waits one `tick` for the stop signal; true when it came (or the
/// display was dropped).
fn stopped_after(stopped: &mpsc::Receiver<()>, tick: Duration) -> bool {
    !matches!(stopped.recv_timeout(tick), Err(RecvTimeoutError::Timeout))
}

fn bar(progress: &Progress, what: &str, stopped: &mpsc::Receiver<()>) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let known = style(
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
    );
    let unknown = style("{elapsed_precise} {spinner} {bytes} {binary_bytes_per_sec} {msg}");
    let mut totals_shown = false;
    bar.set_style(unknown);
    loop {
        let c = progress.counts();
        if c.total_known && !totals_shown {
            bar.set_style(known.clone());
            totals_shown = true;
        }
        bar.set_length(c.total_bytes.max(c.bytes));
        bar.set_position(c.bytes);
        bar.set_message(if c.total_known {
            format!("{}/{} {what}", c.items, c.total_items)
        } else {
            format!("{} {what}", c.items)
        });
        if stopped_after(stopped, TICK) {
            break;
        }
    }
    bar.finish_and_clear();
}

/// Prints a status line every [`JSON_TICK`], and one when stopped.
fn status_lines(progress: &Progress, what: &str, stopped: &mpsc::Receiver<()>) {
    let started = Instant::now();
    loop {
        let done = stopped_after(stopped, JSON_TICK);
        crate::output::emit(&status(&progress.counts(), what, started.elapsed()));
        if done {
            break;
        }
    }
}

/// A `status` message: the counts `c` of items called `what`, `elapsed` in.
fn status(c: &Counts, what: &str, elapsed: Duration) -> serde_json::Value {
    let percent = match c.total_known {
        true if c.total_bytes > 0 => Some((c.bytes as f64 / c.total_bytes as f64).min(1.0)),
        true if c.total_items > 0 => Some((c.items as f64 / c.total_items as f64).min(1.0)),
        true => Some(1.0),
        false => None,
    };
    let mut m = serde_json::Map::new();
    m.insert("message_type".into(), "status".into());
    m.insert("seconds_elapsed".into(), elapsed.as_secs_f64().into());
    m.insert("percent_done".into(), percent.into());
    m.insert(format!("{what}_done"), c.items.into());
    m.insert(format!("total_{what}"), c.total_items.into());
    m.insert("bytes_done".into(), c.bytes.into());
    m.insert("total_bytes".into(), c.total_bytes.into());
    m.insert("totals_final".into(), c.total_known.into());
    m.into()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the progress templates are valid")
        .progress_chars("=> ")
}

impl Drop for Display {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_its_items_and_knows_its_share_only_with_final_totals() {
        let mut c = Counts {
            items: 3,
            bytes: 250,
            total_items: 4,
            total_bytes: 1000,
            total_known: false,
        };
        let s = status(&c, "files", Duration::from_millis(1500));
        assert_eq!(s["message_type"], "status");
        assert_eq!(s["files_done"], 3);
        assert_eq!(s["total_files"], 4);
        assert_eq!(s["seconds_elapsed"], 1.5);
        assert!(s["percent_done"].is_null());
        c.total_known = true;
        assert_eq!(status(&c, "packs", Duration::ZERO)["percent_done"], 0.25);
        c.total_bytes = 0;
        assert_eq!(status(&c, "packs", Duration::ZERO)["percent_done"], 0.75);
    }
}
