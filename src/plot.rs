//! The plot of `mini bench` (lang-spec/cli.md): speedup against workers, one line per
//! strategy, with the ideal line, as SVG or PNG.
//!
//! This is the interface `mini bench` calls; the drawing is being written (issue 14).

use std::path::Path;

/// One line of the plot: a strategy's speedups over its own 1-worker time, by worker count.
pub struct Line {
    pub name: String,
    pub points: Vec<(usize, f64)>,
}

/// Draws speedup against workers (1 to `max_workers`), one line per strategy plus the ideal
/// line, to `path` (`.svg` or `.png`), under `title`.
pub fn draw(path: &Path, title: &str, max_workers: usize, lines: &[Line]) -> Result<(), String> {
    let _ = (title, max_workers, lines);
    Err(format!("cannot draw {}: plotting is not built yet", path.display()))
}
