//! `mini bench prog.mini`: one kernel, `work(lo, hi)`, run in every strategy (sequential,
//! threads under the GIL and without it, `prange`, processes, MPI ranks) for 1 to N workers,
//! timed as whole processes, its results checked against the sequential one, and reported as
//! a table, CSV or JSON, and a plot (lang-spec/cli.md, "`mini bench`").
//!
//! Stages: `strategy` (what each strategy runs), `driver` (the generated programs and their
//! command lines), this module (the options, the probe, the run loop, the equality check, the
//! exit codes), `progress` (the bar on stderr) and `report` (the machine, the table, the
//! formats, the plot's lines).

mod ctrl_c;
mod driver;
mod progress;
mod report;
mod strategy;

pub use report::Format;
pub use strategy::Strategy;

use driver::{Driver, Setup};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The options of `mini bench`, checked by the command line.
pub struct Options {
    pub file: PathBuf,
    pub workers: usize,
    pub runs: usize,
    pub n: Option<u64>,
    pub strategies: Vec<Strategy>,
    pub format: Format,
    pub plot: Option<PathBuf>,
    pub args: Vec<String>,
}

/// The default of `--workers`: `cpu_count()`, at most 256.
pub fn default_workers() -> usize {
    report::cores().min(256)
}

/// The largest n: `b * n` must fit an int for every block b (at most 1024 blocks).
pub const MAX_N: u64 = 1 << 50;

/// One run of a driver: its wall time and what it printed last on stdout, or why it failed.
type RunResult = Result<(f64, String), String>;

/// The outcome of one strategy at one worker count: the times of its measured runs, or a
/// result unequal to the sequential one, or a run that failed (with what was wrong).
pub enum Outcome {
    Timed(Vec<f64>),
    Mismatch(String),
    Failed(String),
}

impl Outcome {
    /// Whether the row is a failure (a mismatch or a failed run).
    pub fn failed(&self) -> bool {
        !matches!(self, Outcome::Timed(_))
    }
}

/// One row of the report.
pub struct Row {
    pub strategy: Strategy,
    pub workers: usize,
    pub outcome: Outcome,
}

/// What the report says besides the rows.
pub struct Summary {
    pub program: String,
    pub n: u64,
    pub blocks: usize,
    pub runs: usize,
    pub max_workers: usize,
    /// The sequential interpreted time: `seq`'s median, or the one reference run's time.
    pub seq_time: f64,
    pub seq_from_reference: bool,
    /// The reference value, as `print` writes it.
    pub result: String,
}

/// Runs `mini bench`; returns the exit code: 0, 1 when a strategy failed or disagreed (or the
/// program or the plot could not be used), 2 for a usage error.
pub fn run(options: Options) -> u8 {
    match bench(&options) {
        Ok(failed) => u8::from(failed),
        Err((code, message)) => {
            report::to_stderr(&format!("{message}\n"));
            code
        }
    }
}

/// An error that ends `mini bench`: its exit code and message.
type Fatal = (u8, String);

/// The whole command; `Ok(true)` when some strategy failed or disagreed.
fn bench(options: &Options) -> Result<bool, Fatal> {
    let shown = options.file.display().to_string();
    let program = std::fs::canonicalize(&options.file).map_err(|e| (2, format!("error: cannot read {shown}: {e}")))?;
    let mini = std::env::current_exe().map_err(|e| (1, format!("mini bench: cannot find mini itself: {e}")))?;
    let blocks = 64.max(4 * options.workers);
    let mut setup = Setup { mini, n: 0, blocks, args: options.args.clone(), cores: report::cores() };
    setup.n = probe(&setup, &program, &shown, options.n)?;
    let strategies = available(&options.strategies);
    ctrl_c::watch();
    let mut bar = progress::Bar::new(total_runs(&strategies, options));
    let reference = reference_run(&setup, &program, &shown, &mut bar)?;
    let mut rows = Vec::new();
    for &s in &strategies {
        rows.extend(run_strategy(&setup, &program, s, options, &reference, &mut bar)?);
    }
    bar.finish();
    let seq = rows.iter().find(|r| r.strategy == Strategy::Seq).and_then(|r| match &r.outcome {
        Outcome::Timed(t) => Some(report::median(t)),
        _ => None,
    });
    let summary = Summary {
        program: shown,
        n: setup.n,
        blocks,
        runs: options.runs,
        max_workers: options.workers,
        seq_time: seq.unwrap_or(reference.time),
        seq_from_reference: seq.is_none(),
        result: reference.result.clone(),
    };
    report::print(options.format, &summary, &rows);
    if let Some(path) = &options.plot {
        report::plot(path, &summary, &rows).map_err(|e| (1, format!("mini bench: cannot draw the plot: {e}")))?;
    }
    Ok(rows.iter().any(|r| r.outcome.failed()))
}

/// The strategies to run, in the table's order: those asked for (all by default), less those
/// this machine cannot run, each left out with a note on stderr.
fn available(asked: &[Strategy]) -> Vec<Strategy> {
    let wanted = |s: &Strategy| asked.is_empty() || asked.contains(s);
    let mut out = Vec::new();
    for s in Strategy::ALL.into_iter().filter(wanted) {
        match missing(s) {
            Some(why) => report::to_stderr(&format!("mini bench: leaving out {} ({}): {why}\n", s.id(), s.name())),
            None => out.push(s),
        }
    }
    out
}

/// Why this machine cannot run `s`, if it cannot.
fn missing(s: Strategy) -> Option<&'static str> {
    if s != Strategy::Mpi {
        return None;
    }
    if !cfg!(feature = "mpi") {
        return Some("mini was built without the cargo feature `mpi`");
    }
    let found = std::process::Command::new("mpirun")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    (!found.is_ok_and(|s| s.success())).then_some("`mpirun` was not found")
}

/// The number of runs the progress bar counts: the reference, then per strategy and worker
/// count one warm-up and `runs` measured runs.
fn total_runs(strategies: &[Strategy], options: &Options) -> u64 {
    let rows: usize = strategies.iter().map(|s| s.worker_counts(options.workers).len()).sum();
    let seq_warmup = usize::from(strategies.contains(&Strategy::Seq));
    (1 + rows * (1 + options.runs) - seq_warmup) as u64
}

/// Checks the program with the probe (it defines a function `work`, and `size()` gives n when
/// `--n` does not); returns n.
fn probe(setup: &Setup, program: &Path, shown: &str, n: Option<u64>) -> Result<u64, Fatal> {
    let driver = Driver::write(program, None).map_err(|e| (1, format!("mini bench: {e}")))?;
    let out = driver::probe_command(setup, &driver.path, n.is_none())
        .output()
        .map_err(|e| (1, format!("mini bench: cannot run {}: {e}", setup.mini.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = rename(&String::from_utf8_lossy(&out.stderr), &driver.path, shown);
        return Err((1, format!("{err}mini bench: {shown} failed before its work(lo, hi) could run")));
    }
    let mut lines = stdout.lines().rev();
    let size = lines.next().unwrap_or_default();
    let work = lines.next().unwrap_or_default();
    if work != "work function" {
        return Err((1, format!("mini bench: {shown} defines no function work(lo, hi)")));
    }
    match n {
        Some(n) => Ok(n),
        None => size_value(size, shown),
    }
}

/// n from the probe's `size` line: `size value N` when `size()` ran.
fn size_value(line: &str, shown: &str) -> Result<u64, Fatal> {
    let Some(value) = line.strip_prefix("size value ") else {
        return Err((
            2,
            format!("mini bench: {shown} defines no function size() and --n is not given: give one of them"),
        ));
    };
    match value.parse::<u64>() {
        Ok(n) if n <= MAX_N => Ok(n),
        _ => Err((1, format!("mini bench: {shown}'s size() returned {value}, not an int from 0 to 2^50"))),
    }
}

/// The reference: the sequential interpreted driver's result and time, from one run (which
/// is `seq`'s warm-up when `seq` runs).
struct Reference {
    time: f64,
    result: String,
}

/// Makes the reference run; its failure ends `mini bench`, since nothing could be compared.
fn reference_run(setup: &Setup, program: &Path, shown: &str, bar: &mut progress::Bar) -> Result<Reference, Fatal> {
    let driver = Driver::write(program, Some(Strategy::Seq)).map_err(|e| (1, format!("mini bench: {e}")))?;
    bar.show(Strategy::Seq, 1, "reference run");
    let run = run_once(setup, &driver.path, shown, Strategy::Seq, 1);
    bar.advance();
    if ctrl_c::pressed() {
        return Err((1, "mini bench: interrupted".to_string()));
    }
    match run {
        Ok((time, result)) => Ok(Reference { time, result }),
        Err(report) => Err((1, format!("{report}mini bench: the sequential reference run of {shown} failed"))),
    }
}

/// Runs `strategy` for each worker count: a warm-up, then `runs` measured runs each.
fn run_strategy(
    setup: &Setup,
    program: &Path,
    strategy: Strategy,
    options: &Options,
    reference: &Reference,
    bar: &mut progress::Bar,
) -> Result<Vec<Row>, Fatal> {
    let driver = Driver::write(program, Some(strategy)).map_err(|e| (1, format!("mini bench: {e}")))?;
    let shown = options.file.display().to_string();
    let mut rows = Vec::new();
    for workers in strategy.worker_counts(options.workers) {
        let mut outcome = Outcome::Timed(Vec::new());
        // seq's warm-up is the reference run, made before every strategy
        let first = usize::from(strategy == Strategy::Seq);
        for run in first..=options.runs {
            let label = if run == 0 { "warm-up".to_string() } else { format!("run {run}/{}", options.runs) };
            bar.show(strategy, workers, &label);
            if let Outcome::Timed(times) = &mut outcome {
                match checked(run_once(setup, &driver.path, &shown, strategy, workers), reference) {
                    Ok(t) if run > 0 => times.push(t),
                    Ok(_) => {}
                    Err(bad) => outcome = bad,
                }
            }
            bar.advance();
            if ctrl_c::pressed() {
                return Err((1, "mini bench: interrupted".to_string()));
            }
        }
        rows.push(Row { strategy, workers, outcome });
    }
    Ok(rows)
}

/// A run's time when its result equals the reference's, or the failed outcome.
fn checked(run: RunResult, reference: &Reference) -> Result<f64, Outcome> {
    let (time, result) = run.map_err(|report| Outcome::Failed(first_error(&report)))?;
    if result == reference.result {
        Ok(time)
    } else {
        Err(Outcome::Mismatch(format!(
            "result {} differs from sequential's {}",
            clip(&result),
            clip(&reference.result)
        )))
    }
}

/// A value's text cut to 60 characters for a report.
fn clip(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(60).collect();
    if chars.next().is_some() { format!("{head}...") } else { head }
}

/// Runs one driver process and times it from spawn to exit; its result is the value of the
/// last `result <value>` on stdout (after what the program itself printed).
fn run_once(setup: &Setup, driver: &Path, shown: &str, strategy: Strategy, workers: usize) -> RunResult {
    let mut cmd = driver::command(setup, driver, strategy, workers);
    let start = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot start the run: {e}"))?;
    let time = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // the last line that holds a result: MPI ranks' output may arrive after rank 0's
    let value = stdout.lines().rev().find_map(|l| l.rfind("result ").map(|at| &l[at + "result ".len()..]));
    match value {
        Some(value) if out.status.success() => Ok((time, value.to_string())),
        _ => Err(failure(&out, driver, shown)),
    }
}

/// What a failed run reports: its stderr (the driver named as the user's program's driver),
/// or its exit status when it printed nothing there.
fn failure(out: &std::process::Output, driver: &Path, shown: &str) -> String {
    let err = rename(&String::from_utf8_lossy(&out.stderr), driver, shown);
    if err.trim().is_empty() { format!("the run ended ({}) without printing a result\n", out.status) } else { err }
}

/// The line of a failed run's report that says what went wrong, for a row of the table.
fn first_error(report: &str) -> String {
    let line = report.lines().find(|l| l.contains("error")).or_else(|| report.lines().next());
    format!("run failed: {}", line.unwrap_or_default().trim())
}

/// `text` with the driver's path replaced by a name that points at the user's program.
fn rename(text: &str, driver: &Path, shown: &str) -> String {
    text.replace(&driver.display().to_string(), &format!("<mini bench driver of {shown}>"))
}
