//! A progress line on standard error while a long operation runs.

use cairn_engine::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Draws a [`Progress`] until dropped, then clears the line.
pub struct Display {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Shows `progress`, whose items are called `what` ("files", "packs").
    pub fn start(progress: Arc<Progress>, what: &'static str) -> Display {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let known = style("{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}");
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
                match stopped.recv_timeout(TICK) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            bar.finish_and_clear();
        });
        Display {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
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
