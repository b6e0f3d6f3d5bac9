//! Benchmark runner for `cargo bench` (a plain `main`, no harness).
//!
//! Every program in `examples/` is run by each *runner* — `mini run` on the program itself and
//! `python3` on its twin `benches/py/<name>.py` — `MINI_BENCH_RUNS` times (default 3), the
//! runners taking turns run by run so that a slow phase of the machine hits them all alike.
//! Each run's stdout must be the same as the first one's (a difference is reported as a
//! warning). The table shows the median wall-clock time of each runner, the ratio of each
//! runner to Python, and the geometric mean of each ratio column. Without `python3` only the
//! mini times are shown.
//!
//! Demos ([`DEMOS`], e.g. `gil_demo`) are not timed: each runner runs them once and their own
//! output is printed.
//!
//! ```text
//! cargo bench                      # everything
//! cargo bench -- nbody fib         # only the examples whose name contains "nbody" or "fib"
//! MINI_BENCH_RUNS=5 cargo bench
//! ```
//!
//! A new column (`mini --jit`, or C compiled with `cc -O2` from `benches/c/`) is one more entry
//! in [`runners`]: a name and a function that builds the command running one example, or
//! returns `None` when that runner has no version of it (that cell then shows `-`). A builder
//! may do preparatory work first, such as compiling a C file that is missing or out of date.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::time::Instant;

/// The mini binary that cargo built for this bench.
const MINI: &str = env!("CARGO_BIN_EXE_mini");

/// Examples that are shown rather than timed.
const DEMOS: &[&str] = &["gil_demo"];

/// The runner the ratio columns divide by.
const BASELINE: &str = "python";

/// How many times each runner runs each example when `MINI_BENCH_RUNS` is not set.
const DEFAULT_RUNS: usize = 3;

/// At most this many lines of a program's output or error are quoted in a warning.
const QUOTE_LINES: usize = 12;

/// One way of running the examples: a column of the table.
struct Runner {
    name: &'static str,
    /// The command running the example with this name (working directory: the crate root),
    /// or `None` when this runner has no version of it.
    command: fn(&str) -> Option<Command>,
}

/// The runners, in column order. The first one's output is the reference for the others.
fn runners() -> Vec<Runner> {
    let mut runners = vec![Runner { name: "mini", command: mini_command }];
    if python_available() {
        runners.push(Runner { name: "python", command: python_command });
    } else {
        eprintln!("warning: python3 not found; showing mini times only");
    }
    runners
}

fn mini_command(example: &str) -> Option<Command> {
    let mut cmd = Command::new(MINI);
    cmd.arg("run").arg(example_path(example));
    Some(cmd)
}

fn python_command(example: &str) -> Option<Command> {
    let script = root().join("benches/py").join(format!("{example}.py"));
    if !script.is_file() {
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script);
    Some(cmd)
}

fn python_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example_path(example: &str) -> PathBuf {
    root().join("examples").join(format!("{example}.mini"))
}

/// The names (file stems) of the programs in `examples/`, sorted.
fn list_examples() -> Vec<String> {
    let dir = root().join("examples");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", dir.display());
            process::exit(1);
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "mini"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    names
}

/// Options from the command line and the environment.
struct Options {
    /// Name substrings; an example is selected when it contains any of them (or there are none).
    filters: Vec<String>,
    runs: usize,
}

impl Options {
    fn from_env() -> Options {
        // cargo passes `--bench` to bench targets; flags are not filters
        let filters = env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
        let runs = match env::var("MINI_BENCH_RUNS") {
            Err(_) => DEFAULT_RUNS,
            Ok(text) => match text.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    eprintln!(
                        "warning: MINI_BENCH_RUNS={text:?} is not a positive integer; \
                         using {DEFAULT_RUNS}"
                    );
                    DEFAULT_RUNS
                }
            },
        };
        Options { filters, runs }
    }

    fn selects(&self, example: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| example.contains(f.as_str()))
    }
}

/// A successful run.
struct Run {
    secs: f64,
    stdout: String,
}

/// Runs `cmd` from the crate root, timing it; an error describes a failed start or exit.
fn run_once(mut cmd: Command) -> Result<Run, String> {
    cmd.current_dir(root()).stdin(Stdio::null());
    let start = Instant::now();
    let output = cmd.output().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let secs = start.elapsed().as_secs_f64();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{}\n{}", output.status, quote(&stderr)));
    }
    Ok(Run { secs, stdout: String::from_utf8_lossy(&output.stdout).into_owned() })
}

/// The first lines of `text`, indented, for a warning.
fn quote(text: &str) -> String {
    let mut quoted = String::new();
    for line in text.lines().take(QUOTE_LINES) {
        let _ = writeln!(quoted, "    | {line}");
    }
    if text.lines().count() > QUOTE_LINES {
        quoted.push_str("    | ...\n");
    }
    quoted
}

/// What one runner did with one example.
enum Cell {
    /// The runner has no version of the example.
    Absent,
    /// A run failed; the example was not run again by this runner.
    Failed,
    /// The times of the successful runs, in seconds.
    Times(Vec<f64>),
}

impl Cell {
    fn median(&self) -> Option<f64> {
        match self {
            Cell::Times(times) if !times.is_empty() => Some(median(times)),
            _ => None,
        }
    }

    fn show(&self) -> String {
        match self {
            Cell::Absent => "-".to_owned(),
            Cell::Failed => "FAILED".to_owned(),
            Cell::Times(_) => self.median().map_or("-".to_owned(), |m| format!("{m:.3}s")),
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 }
}

fn geometric_mean(values: &[f64]) -> f64 {
    let log_sum: f64 = values.iter().map(|v| v.ln()).sum();
    (log_sum / values.len() as f64).exp()
}

/// Compares each run's output with the first successful one, warning once per runner.
struct OutputCheck {
    reference: Option<(&'static str, String)>,
    warned: Vec<&'static str>,
    mismatches: usize,
}

impl OutputCheck {
    fn new() -> OutputCheck {
        OutputCheck { reference: None, warned: Vec::new(), mismatches: 0 }
    }

    /// Returns whether it printed a warning.
    fn check(&mut self, example: &str, runner: &'static str, stdout: &str) -> bool {
        let Some((ref_runner, ref_out)) = &self.reference else {
            self.reference = Some((runner, stdout.to_owned()));
            return false;
        };
        if stdout == ref_out || self.warned.contains(&runner) {
            return false;
        }
        self.warned.push(runner);
        self.mismatches += 1;
        eprint!(
            "\nwarning: {example}: the output of {runner} differs from that of {ref_runner}\n  \
             {ref_runner}:\n{}  {runner}:\n{}",
            quote(ref_out),
            quote(stdout)
        );
        true
    }
}

/// The result of benchmarking one example: a cell per runner.
struct Row {
    example: String,
    cells: Vec<Cell>,
    mismatches: usize,
}

/// Runs `example` `runs` times with every runner, taking turns, and collects the times.
fn bench_example(example: &str, runners: &[Runner], runs: usize) -> Row {
    let mut cells: Vec<Cell> = runners
        .iter()
        .map(|r| match (r.command)(example) {
            Some(_) => Cell::Times(Vec::new()),
            None => Cell::Absent,
        })
        .collect();
    let mut outputs = OutputCheck::new();
    for run in 1..=runs {
        let progress = format!("{example} [{run}/{runs}]");
        eprint!("{progress}");
        for (runner, cell) in runners.iter().zip(cells.iter_mut()) {
            let Cell::Times(times) = cell else { continue };
            let Some(cmd) = (runner.command)(example) else {
                continue;
            };
            match run_once(cmd) {
                Ok(result) => {
                    eprint!("  {} {:.3}s", runner.name, result.secs);
                    if outputs.check(example, runner.name, &result.stdout) {
                        eprint!("{progress} ...");
                    }
                    times.push(result.secs);
                }
                Err(message) => {
                    eprint!("\nwarning: {example}: {} failed: {message}", runner.name);
                    eprint!("{progress} ...");
                    *cell = Cell::Failed;
                }
            }
        }
        eprintln!();
    }
    Row { example: example.to_owned(), cells, mismatches: outputs.mismatches }
}

/// Prints the table of medians and ratios to the baseline, with a geometric-mean row.
fn print_table(runners: &[Runner], rows: &[Row], runs: usize) {
    let baseline = runners.iter().position(|r| r.name == BASELINE);
    // (runner index, header) of each ratio column
    let ratio_columns: Vec<(usize, String)> = match baseline {
        None => Vec::new(),
        Some(b) => {
            (0..runners.len()).filter(|&i| i != b).map(|i| (i, format!("{}/{}", runners[i].name, BASELINE))).collect()
        }
    };

    let mut header = vec!["example".to_owned()];
    header.extend(runners.iter().map(|r| r.name.to_owned()));
    header.extend(ratio_columns.iter().map(|(_, h)| h.clone()));

    let mut table = vec![header];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); ratio_columns.len()];
    for row in rows {
        let mut line = vec![match row.mismatches {
            0 => row.example.clone(),
            _ => format!("{} *", row.example),
        }];
        line.extend(row.cells.iter().map(Cell::show));
        for (k, (i, _)) in ratio_columns.iter().enumerate() {
            let b = baseline.expect("ratio columns need a baseline");
            match (row.cells[*i].median(), row.cells[b].median()) {
                (Some(t), Some(base)) if base > 0.0 => {
                    ratios[k].push(t / base);
                    line.push(format!("{:.2}", t / base));
                }
                _ => line.push("-".to_owned()),
            }
        }
        table.push(line);
    }
    if !ratio_columns.is_empty() {
        let mut line = vec!["geomean".to_owned()];
        line.extend(runners.iter().map(|_| String::new()));
        line.extend(ratios.iter().map(
            |r| {
                if r.is_empty() { "-".to_owned() } else { format!("{:.2}", geometric_mean(r)) }
            },
        ));
        table.push(line);
    }

    println!("\nmedian wall-clock time of {runs} run(s)");
    print_aligned(&table);
    if rows.iter().any(|r| r.mismatches > 0) {
        println!("* the runners' outputs differ");
    }
}

/// Prints rows of cells: the first column left-aligned, the others right-aligned.
fn print_aligned(table: &[Vec<String>]) {
    let columns = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| table.iter().filter_map(|row| row.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        println!("{}", line.trim_end());
    }
}

/// Runs a demo once with each runner and prints its output; returns whether all succeeded.
fn show_demo(example: &str, runners: &[Runner]) -> bool {
    let mut ok = true;
    for runner in runners {
        let Some(cmd) = (runner.command)(example) else {
            continue;
        };
        println!("\n== {example} ({})", runner.name);
        match run_once(cmd) {
            Ok(result) => print!("{}", result.stdout),
            Err(message) => {
                println!("failed: {message}");
                ok = false;
            }
        }
    }
    ok
}

fn main() {
    let options = Options::from_env();
    let runners = runners();
    let (demos, benches): (Vec<String>, Vec<String>) =
        list_examples().into_iter().filter(|e| options.selects(e)).partition(|e| DEMOS.contains(&e.as_str()));
    if demos.is_empty() && benches.is_empty() {
        eprintln!("no example matches {:?}", options.filters);
        process::exit(1);
    }

    let rows: Vec<Row> = benches.iter().map(|e| bench_example(e, &runners, options.runs)).collect();
    if !rows.is_empty() {
        print_table(&runners, &rows, options.runs);
    }
    let mut demos_ok = true;
    for demo in &demos {
        demos_ok &= show_demo(demo, &runners);
    }

    let mismatches: usize = rows.iter().map(|r| r.mismatches).sum();
    if mismatches > 0 {
        println!("\nwarning: {mismatches} output mismatch(es); see above");
    }
    // a crash of mini is an error; a mismatch or a failing twin only a warning
    let mini_failed = rows.iter().any(|r| matches!(r.cells.first(), Some(Cell::Failed)));
    if mini_failed || !demos_ok {
        eprintln!("error: some runs failed; see above");
        process::exit(1);
    }
}
