//! The progress display of `mini bench` on stderr: one bar over every run (the reference,
//! warm-ups and measured runs), its message the strategy, the worker count and the run. It is
//! drawn only when stderr is a terminal (indicatif's stderr target hides itself otherwise), so
//! redirected output and the tests see nothing of it.

use super::strategy::Strategy;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar over all the runs of one `mini bench`.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar of `total` runs on stderr.
    pub fn new(total: u64) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs  {wide_msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar { bar }
    }

    /// Says which run is going on.
    pub fn show(&mut self, strategy: Strategy, workers: usize, run: &str) {
        let plural = if workers == 1 { "" } else { "s" };
        self.bar.set_message(format!("{}, {workers} worker{plural}, {run}", strategy.name()));
    }

    /// Counts one run as done.
    pub fn advance(&mut self) {
        self.bar.inc(1);
    }

    /// Clears the bar before the report is printed.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Bar {
    /// Clears the bar when `mini bench` ends early, before its error is printed.
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
