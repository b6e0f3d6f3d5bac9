//! The plot of `mini bench` (lang-spec/cli.md): speedup against workers, one line per
//! strategy, with the ideal line, as SVG or PNG.
//!
//! Drawn with the `plotters` crate, built without system libraries: its SVG backend, its
//! bitmap backend with the pure-Rust PNG encoder, and text through `ab_glyph` with DejaVu Sans
//! embedded in the binary (`assets/DejaVuSans.ttf`, license beside it), so neither fontconfig
//! nor freetype is needed to build or run.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// One line of the plot: a strategy's speedups over its own 1-worker time, by worker count.
pub struct Line {
    pub name: String,
    pub points: Vec<(usize, f64)>,
}

/// The picture's size in pixels (the SVG's too).
pub const SIZE: (u32, u32) = (960, 640);

/// The font family name the embedded font is registered under.
const FAMILY: &str = "sans-serif";

/// The embedded font: DejaVu Sans (Bitstream Vera license, `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Line colours for the strategies, in order (Tableau 10: distinct, readable on white, and
/// told apart by most colour-blind readers); the ideal line is grey.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

/// The ideal line's colour: a mid grey, behind the strategies' colours.
const IDEAL: RGBColor = RGBColor(150, 150, 150);

/// Draws speedup against workers (1 to `max_workers`), one line per strategy plus the ideal
/// line, to `path` (`.svg` or `.png`), under `title`.
pub fn draw(path: &Path, title: &str, max_workers: usize, lines: &[Line]) -> Result<(), String> {
    let fail = |e: String| format!("cannot draw {}: {e}", path.display());
    register_font().map_err(fail)?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            chart(&root, title, max_workers, lines).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))
        }
        Some("png") => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            chart(&root, title, max_workers, lines).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))
        }
        _ => Err(fail("the plot's file name must end in .svg or .png".to_string())),
    }
}

/// Registers the embedded font with plotters, once per process.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err("the embedded font is invalid".to_string()) }
}

/// Draws the whole chart on `root`: background, title, axes, the ideal line, the strategies'
/// lines and the legend.
fn chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    max_workers: usize,
    lines: &[Line],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let max_w = max_workers.max(1);
    let y_top = y_top(max_w, lines);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, title_size(title)))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(WorkersAxis::new(max_w), 0.0..y_top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc("speedup over 1 worker")
        .y_label_formatter(&|y| format!("{y}"))
        .y_labels((y_top as usize).saturating_mul(2).saturating_add(1).min(13))
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(err)?;
    draw_ideal(&mut chart, max_w).map_err(err)?;
    for (i, line) in lines.iter().enumerate() {
        draw_line(&mut chart, line, i).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(190, 190, 190))
        .margin(12)
        .draw()
        .map_err(err)
}

/// The x axis: workers, from a little before 1 to a little beyond `max_workers`, with a tick
/// at each whole worker count (every k-th one when there are many, so labels do not overlap).
struct WorkersAxis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl WorkersAxis {
    /// The axis for 1 to `max_w` workers (1 to 2 when `max_w` is 1, so the axis has a length).
    fn new(max_w: usize) -> WorkersAxis {
        let hi = max_w.max(2);
        let pad = 0.04 * hi as f64;
        let ticks = worker_ticks(hi).into_iter().map(|w| w as f64).collect();
        WorkersAxis { inner: (1.0 - pad..hi as f64 + pad).into(), ticks }
    }
}

/// The worker counts labelled on an axis up to `hi`: every one up to 16, else 1 and the
/// multiples of a round step (2, 4, 5, 8, 10, ...) that keeps the labels to about 16.
fn worker_ticks(hi: usize) -> Vec<usize> {
    let step =
        [1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100].into_iter().find(|s| hi / s <= 16).unwrap_or(hi.div_ceil(16));
    let mut ticks = vec![1];
    ticks.extend((step.max(2)..=hi).step_by(step));
    ticks
}

impl Ranged for WorkersAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for WorkersAxis {
    /// A worker count: a whole number.
    fn format(value: &f64) -> String {
        format!("{}", value.round() as i64)
    }
}

/// The title's font size in pixels: 26, smaller for a long title (a program's absolute path)
/// so that it fits the picture's width, down to 12.
fn title_size(title: &str) -> u32 {
    let chars = title.chars().count().max(1) as u32;
    (26 * 64 / chars).clamp(12, 26)
}

/// The y axis' top: at least `max_w` (where the ideal line ends), and room above the highest
/// point, rounded up to a whole number; at most `MAX_SPEEDUP` (a bogus point beyond it is
/// drawn off the chart, not allowed to squash every other line flat).
fn y_top(max_w: usize, lines: &[Line]) -> f64 {
    let highest =
        lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).filter(|s| s.is_finite()).fold(max_w as f64, f64::max);
    (highest * 1.1).ceil().clamp(2.0, MAX_SPEEDUP.max(max_w as f64 * 1.1).ceil())
}

/// The y axis' top at most, unless the ideal line ends higher: a speedup beyond it is a bogus
/// measurement (a 1-worker time far off), not worth flattening the other lines for.
const MAX_SPEEDUP: f64 = 4096.0;

/// The chart's coordinates: workers (with whole-number ticks) across, speedup up.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<WorkersAxis, RangedCoordf64>>;

/// Draws the ideal line y = x as a grey dashed line, labelled "ideal" in the legend.
fn draw_ideal<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    max_w: usize,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let end = max_w.max(2) as f64;
    let style = IDEAL.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(vec![(1.0, 1.0), (end, end)], 10, 6, style))?
        .label("ideal (speedup = workers)")
        .legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(-6, 0), (3, 0)], style)
                + PathElement::new(vec![(9, 0), (18, 0)], style)
        });
    Ok(())
}

/// Draws one strategy's speedups as a coloured line with a marker at each measured worker
/// count (the `index`-th shape, so that lines drawn over each other stay told apart), labelled
/// with the strategy's name; points that are not finite (a failed run) are left out.
fn draw_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    line: &Line,
    index: usize,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let colour = COLOURS[index % COLOURS.len()];
    let mut points: Vec<(f64, f64)> =
        line.points.iter().filter(|p| p.1.is_finite()).map(|&(w, s)| (w as f64, s)).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let style = colour.stroke_width(3);
    let shape = marker(index);
    chart.draw_series(LineSeries::new(points.clone(), style))?;
    let at = shape.clone();
    chart
        .draw_series(points.into_iter().map(move |p| EmptyElement::at(p) + Polygon::new(at.clone(), colour.filled())))?
        .label(line.name.as_str())
        .legend(move |(x, y)| {
            let shape: Vec<(i32, i32)> = shape.iter().map(|&(dx, dy)| (dx + 6, dy)).collect();
            EmptyElement::at((x, y))
                + PathElement::new(vec![(-6, 0), (18, 0)], style)
                + Polygon::new(shape, colour.filled())
        });
    Ok(())
}

/// The `index`-th marker shape, as pixel offsets around the point: a disc, a square, a
/// triangle, a diamond, a triangle pointing down, a pentagon, a hexagon, then again.
fn marker(index: usize) -> Vec<(i32, i32)> {
    // (corners, radius in pixels, turn of the first corner in quarter turns)
    let (corners, radius, turn) =
        [(16, 5.5, 0.0), (4, 6.5, 0.5), (3, 7.0, 1.0), (4, 7.0, 0.0), (3, 7.0, 3.0), (5, 6.5, 1.0), (6, 6.0, 0.0)]
            [index % 7];
    (0..corners)
        .map(|k| {
            let angle = std::f64::consts::FRAC_PI_2 * turn + std::f64::consts::TAU * k as f64 / corners as f64;
            ((radius * angle.cos()).round() as i32, (-radius * angle.sin()).round() as i32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh temporary directory for one test's files, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("mini-plot-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn join(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Two strategies over 1..4 workers, as `mini bench` would pass them.
    fn sample() -> Vec<Line> {
        vec![
            Line { name: "threads, GIL (interpreted)".into(), points: vec![(1, 1.0), (2, 0.97), (3, 0.95), (4, 0.9)] },
            Line { name: "threads, --jit (no GIL)".into(), points: vec![(1, 1.0), (2, 1.9), (3, 2.7), (4, 3.4)] },
        ]
    }

    /// Every strategy of `mini bench` on two workers, as a 2-core machine measures them.
    fn every_strategy() -> Vec<Line> {
        let names = [
            "sequential (interpreted)",
            "threads, GIL (interpreted)",
            "threads, --jit --keep-gil",
            "threads, --jit (no GIL)",
            "prange, --jit",
            "forked processes, --jit",
            "pmap processes, --jit",
            "MPI ranks, --jit",
        ];
        let two = [1.0, 0.98, 1.0, 1.93, 1.89, 1.7, 1.6, 1.75];
        let points = |i: usize, s: f64| if i == 0 { vec![(1, 1.0)] } else { vec![(1, 1.0), (2, s)] };
        names
            .iter()
            .zip(two)
            .enumerate()
            .map(|(i, (n, s))| Line { name: n.to_string(), points: points(i, s) })
            .collect()
    }

    /// Whether `bytes` are a PNG of the plot's size: the signature, then an `IHDR` chunk.
    fn is_png_of_plot_size(bytes: &[u8]) -> bool {
        let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        bytes.len() > 24
            && bytes[..8] == *b"\x89PNG\r\n\x1a\n"
            && bytes[12..16] == *b"IHDR"
            && (size(16), size(20)) == SIZE
    }

    #[test]
    fn worker_ticks_are_whole_and_few() {
        assert_eq!(worker_ticks(2), vec![1, 2]);
        assert_eq!(worker_ticks(16), (1..=16).collect::<Vec<_>>());
        assert_eq!(worker_ticks(32), vec![1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32]);
        assert_eq!(worker_ticks(64), vec![1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64]);
        assert!(worker_ticks(100_000).len() <= 18);
    }

    #[test]
    fn huge_speedups_and_unwritable_paths() {
        let dir = TempDir::new("odd");
        let lines = vec![Line { name: "bogus".into(), points: vec![(1, 1.0), (2, 1e300), (3, f64::MAX), (4, -5.0)] }];
        draw(&dir.join("huge.png"), "t", 4, &lines).unwrap();
        draw(&dir.join("huge.svg"), "t", 4, &lines).unwrap();
        assert!(y_top(4, &lines) <= 4096.0);
        for file in ["missing/speedup.png", "missing/speedup.svg"] {
            let err = draw(&dir.join(file), "t", 2, &sample()).unwrap_err();
            assert!(err.starts_with("cannot draw ") && err.contains(file), "{err}");
        }
    }

    #[test]
    fn long_titles_get_smaller_type() {
        assert_eq!(title_size("sqrt_sum.mini, n = 72000000"), 26);
        assert!(title_size(&"x".repeat(120)) < 16);
        assert_eq!(title_size(&"x".repeat(10_000)), 12);
    }

    #[test]
    fn svg_has_the_legend_and_axis_labels() {
        let dir = TempDir::new("svg");
        let path = dir.join("speedup.svg");
        draw(&path, "sqrt_sum.mini, n = 1000", 4, &sample()).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in
            ["threads, GIL (interpreted)", "threads, --jit (no GIL)", "ideal", "workers", "speedup over 1 worker"]
        {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
        assert!(svg.contains("sqrt_sum.mini, n = 1000"));
    }

    #[test]
    fn png_has_the_signature_and_size() {
        let dir = TempDir::new("png");
        let path = dir.join("speedup.png");
        draw(&path, "sqrt_sum.mini, n = 1000", 4, &sample()).unwrap();
        assert!(is_png_of_plot_size(&std::fs::read(&path).unwrap()));
    }

    /// Every strategy gets its name in the legend, its own colour and markers (a polygon at each
    /// point and one in the legend). With `MINI_PLOT_SAMPLE=out.png` (or `.svg`) the plot is
    /// also written there, to look at.
    #[test]
    fn every_strategy_has_its_colour_and_markers() {
        let dir = TempDir::new("every");
        let path = dir.join("speedup.svg");
        let lines = every_strategy();
        draw(&path, "examples/bench/sqrt_sum.mini, n = 72000000", 2, &lines).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for (i, line) in lines.iter().enumerate() {
            assert!(svg.contains(&line.name), "no {:?} in the SVG", line.name);
            let RGBColor(r, g, b) = COLOURS[i];
            assert!(svg.contains(&format!("#{r:02X}{g:02X}{b:02X}")), "no colour of {:?}", line.name);
        }
        assert_eq!(svg.matches("<polygon").count(), 7 * 3 + 2);
        if let Ok(sample) = std::env::var("MINI_PLOT_SAMPLE") {
            let title = "/home/someone/projects/mini/examples/bench/sqrt_sum.mini, n = 72000000, 3 runs, 2 cores";
            draw(Path::new(&sample), title, 2, &lines).unwrap();
        }
    }

    #[test]
    fn other_extensions_are_an_error_naming_both() {
        let dir = TempDir::new("ext");
        let path = dir.join("speedup.pdf");
        let err = draw(&path, "t", 2, &sample()).unwrap_err();
        assert!(err.contains(".svg") && err.contains(".png") && err.contains("speedup.pdf"), "{err}");
        assert!(!path.exists());
        let err = draw(&dir.join("speedup"), "t", 2, &sample()).unwrap_err();
        assert!(err.contains(".svg or .png"), "{err}");
    }

    #[test]
    fn one_worker_missing_points_and_non_finite_speedups_still_draw() {
        let dir = TempDir::new("edge");
        let lines = vec![
            Line { name: "seq".into(), points: vec![(1, 1.0)] },
            Line { name: "failed".into(), points: vec![(1, f64::NAN), (2, f64::INFINITY)] },
            Line { name: "empty".into(), points: vec![] },
        ];
        draw(&dir.join("one.svg"), "t", 1, &lines).unwrap();
        assert!(std::fs::read_to_string(dir.join("one.svg")).unwrap().contains("failed"));
        for (file, workers) in [("one.png", 1), ("many.png", 64), ("upper.PNG", 3)] {
            draw(&dir.join(file), "t", workers, &lines).unwrap();
            assert!(is_png_of_plot_size(&std::fs::read(dir.join(file)).unwrap()), "{file}");
        }
    }
}
