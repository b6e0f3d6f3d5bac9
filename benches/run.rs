//! Benchmark runner for `cargo bench` (a plain `main`, no harness).
//!
//! Every program in `examples/` is run by each *runner* ([`runners`]), one column of the table
//! each: `mini run` (the interpreter), `mini run --jit`, `mini run --jit --no-cache` (`jit
//! cold`), the C version `benches/c/<name>.c`
//! (compiled with `cc -O2` into `<target dir>/bench-c/` when the binary is missing or older
//! than its source or `benches/c/*.h`), `python3` on the twin `benches/py/<name>.py`, and
//! `lua5.4` and `luajit` on the twin `benches/lua/<name>.lua` (where they are installed). The
//! examples of [`SIZES`] run twice, as two rows: at a small size (a short program, where start-up
//! and compile time weigh) and at their full size; the ratios' geometric means and the goals are
//! per size class. Each
//! runs every example `MINI_BENCH_RUNS` times (default 3), the runners taking turns run by run
//! so that a slow phase of the machine hits them all alike; a runner without `cc` or `python3`
//! is left out with a warning. The first runner's output is the reference: every run's stdout
//! must be the same as the first one's (a difference is reported as a warning).
//!
//! The table shows the median wall-clock time of each runner (whole process, start-up
//! included), the ratio columns of [`RATIOS`] (`jit/interp`, `jit/C`, `interp/python`; each the
//! median of the ratios of the runs of one round, [`paired_ratio`]) and a
//! row with the geometric mean of each ratio column; under it, the performance [`GOALS`] next
//! to what was measured, and each runner's peak resident set per example (one more, untimed
//! run under a small probe parent, [`PEAK_PROBE_C`], so that the benchmark's own memory is not
//! counted) against issue 15's memory goal; then the start-up of an empty program against an
//! empty C program's and each example's slowest compile (`run/startup.rs`).
//!
//! The JIT's cache of compiled code (lang-spec/jit.md) is `<target dir>/bench-jit-cache`, emptied
//! when the benchmark starts: the first run of an example under `mini --jit` compiles and fills
//! it, the later ones take their code from it, so the `mini --jit` median (of 3 runs or more) is
//! a run with the cache warm, what a program run again sees; `jit cold` compiles every time, as
//! the first run of a program does.
//!
//! `gil_demo` is not timed as a whole: it times itself, one thread against two. It is run in
//! each of [`GIL_MODES`] (the interpreter, `--jit --keep-gil`, `--jit`, and as references its
//! C twin with POSIX threads and its Python twin) with `n 2`, `n` depending on whether the mode
//! runs native code ([`GIL_N_INTERP`], [`GIL_N_JIT`]), and a second table shows the medians of
//! its own timings and whether the two results matched. The C row is what two threads of
//! native code get on this machine in the same run: the ceiling for `--jit`'s speedup.
//!
//! The programs in `examples/parallel/` (`prange` loops) time themselves too, with
//! `set_threads(1)` and then `set_threads(2)`, each printing the same three lines as gil_demo;
//! they run under `mini run --jit` only, and a third table shows each one's medians, speedup and
//! whether both thread counts gave the same result (they must: the blocks are fixed by the
//! range), against [`PRANGE_GOAL`].
//!
//! The programs in `examples/processes/` sum square roots on several processes (`forked`, the
//! process `pmap`, MPI ranks); a fourth table times each as a whole program (start-up, forks
//! and `mpirun` included) with 1 and 2 workers, against [`PROCESS_GOAL`]. The MPI row needs
//! `cargo bench --features mpi` and `mpirun`.
//!
//! ```text
//! cargo bench                      # everything
//! cargo bench -- prange            # only the prange table
//! cargo bench -- processes         # only the process table
//! cargo bench -- nbody fib         # only the examples whose name contains "nbody" or "fib"
//! MINI_BENCH_RUNS=5 cargo bench
//! MINI_BENCH_GIL_N_JIT=20_000_000 cargo bench -- gil
//! ```
//!
//! A new column is one more entry in [`runners`]: a name and a function that builds the command
//! running one example, or returns `None` when that runner has no version of it (that cell then
//! shows `-`). A builder may do preparatory work first, as [`c_command`] compiles a C file that
//! is missing or out of date. A new ratio is one more entry in [`RATIOS`], a new goal one more
//! in [`GOALS`].

#[path = "run/startup.rs"]
mod startup;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::time::Instant;

/// The mini binary that cargo built for this bench.
const MINI: &str = env!("CARGO_BIN_EXE_mini");

/// The runners' names, as the table's headers show them.
const INTERP: &str = "mini";
const JIT: &str = "mini --jit";
const JIT_COLD: &str = "jit cold";
const C: &str = "C";
const PYTHON: &str = "python";
const LUA: &str = "lua5.4";
const LUAJIT: &str = "luajit";

/// How many times each runner runs each example when `MINI_BENCH_RUNS` is not set.
const DEFAULT_RUNS: u64 = 3;

/// At most this many lines of a program's output or error are quoted in a warning.
const QUOTE_LINES: usize = 12;

/// One way of running the examples: a column of the table.
struct Runner {
    name: &'static str,
    /// Whether this is mini itself, whose failure is an error (a twin's is only a warning).
    is_mini: bool,
    /// The command running the example with this name and these arguments (working
    /// directory: the crate root), or `None` when this runner has no version of it.
    command: fn(&str, &[&str]) -> Option<Command>,
}

/// The runners, in column order. The first one's output is the reference for the others.
fn runners() -> Vec<Runner> {
    let mut runners = vec![
        Runner { name: INTERP, is_mini: true, command: interp_command },
        Runner { name: JIT, is_mini: true, command: jit_command },
        Runner { name: JIT_COLD, is_mini: true, command: jit_cold_command },
    ];
    if tool_available("cc") {
        runners.push(Runner { name: C, is_mini: false, command: c_command });
    } else {
        eprintln!("warning: cc not found; no C column");
    }
    if tool_available("python3") {
        runners.push(Runner { name: PYTHON, is_mini: false, command: python_command });
    } else {
        eprintln!("warning: python3 not found; no python column");
    }
    for (name, command) in [(LUA, lua_command as fn(&str, &[&str]) -> Option<Command>), (LUAJIT, luajit_command)] {
        if tool_answers(name, "-v") {
            runners.push(Runner { name, is_mini: false, command });
        } else {
            eprintln!("warning: {name} not found; no {name} column (apt-get install lua5.4 luajit)");
        }
    }
    runners
}

/// `mini run [flags] examples/<example>.mini [-- args]`.
fn mini_command(example: &str, flags: &[&str], args: &[&str]) -> Command {
    let mut cmd = Command::new(MINI);
    cmd.arg("run").args(flags).arg(example_path(example));
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    cmd
}

fn interp_command(example: &str, args: &[&str]) -> Option<Command> {
    Some(mini_command(example, &[], args))
}

fn jit_command(example: &str, args: &[&str]) -> Option<Command> {
    Some(mini_command(example, &["--jit"], args))
}

/// `mini run --jit` without the cache of compiled code: every function compiled afresh.
fn jit_cold_command(example: &str, args: &[&str]) -> Option<Command> {
    Some(mini_command(example, &["--jit", "--no-cache"], args))
}

/// Runs `<target dir>/bench-c/<example>`, compiling `benches/c/<example>.c` first if needed.
fn c_command(example: &str, args: &[&str]) -> Option<Command> {
    let source = c_source_dir().join(format!("{example}.c"));
    if !source.is_file() {
        return None;
    }
    let binary = c_binary_dir().join(example);
    if is_stale(&binary, &c_dependencies(&source)) && !compile_c(&source, &binary) {
        return None;
    }
    let mut cmd = Command::new(binary);
    cmd.args(args);
    Some(cmd)
}

fn python_command(example: &str, args: &[&str]) -> Option<Command> {
    let script = root().join("benches/py").join(format!("{example}.py"));
    if !script.is_file() {
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(args);
    Some(cmd)
}

/// `<interpreter> benches/lua/<example>.lua [args]`, when the twin exists.
fn lua_twin(interpreter: &str, example: &str, args: &[&str]) -> Option<Command> {
    let script = root().join("benches/lua").join(format!("{example}.lua"));
    if !script.is_file() {
        return None;
    }
    let mut cmd = Command::new(interpreter);
    cmd.arg(script).args(args);
    Some(cmd)
}

fn lua_command(example: &str, args: &[&str]) -> Option<Command> {
    lua_twin(LUA, example, args)
}

fn luajit_command(example: &str, args: &[&str]) -> Option<Command> {
    lua_twin(LUAJIT, example, args)
}

/// The size classes of the timed examples: each runs at a small size (a short program, where
/// start-up and compile time weigh) and at its full size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Size {
    Small,
    Full,
}

/// Each timed example's argument at the two sizes ([`Size`]); an example not listed runs
/// once, with its own default, as a full-size row.
const SIZES: &[(&str, &str, &str)] = &[
    ("array_sum", "2000000", "20000000"),
    ("fib", "30", "32"),
    ("loop", "10000000", "100000000"),
    ("mandelbrot", "300", "800"),
    ("nbody", "100000", "1000000"),
    ("spectral_norm", "200", "500"),
];

/// The runs of an example: its size class and arguments (none: its default).
fn sized_runs(example: &str) -> Vec<(Size, Vec<&'static str>)> {
    match SIZES.iter().find(|(name, _, _)| *name == example) {
        Some((_, small, full)) => vec![(Size::Small, vec![*small]), (Size::Full, vec![*full])],
        None => vec![(Size::Full, Vec::new())],
    }
}

/// Whether `tool --version` runs and succeeds.
fn tool_available(tool: &str) -> bool {
    tool_answers(tool, "--version")
}

/// Whether `tool flag` runs and succeeds (Lua's interpreters know `-v`, not `--version`).
fn tool_answers(tool: &str, flag: &str) -> bool {
    Command::new(tool).arg(flag).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example_path(example: &str) -> PathBuf {
    root().join("examples").join(format!("{example}.mini"))
}

fn c_source_dir() -> PathBuf {
    root().join("benches/c")
}

/// `bench-c/` in the target directory that holds the mini binary (`<target>/release/mini`).
fn c_binary_dir() -> PathBuf {
    let target = Path::new(MINI).parent().and_then(Path::parent).unwrap_or(Path::new("target"));
    target.join("bench-c")
}

/// The files a C binary is built from: its source and the shared headers of `benches/c/`.
fn c_dependencies(source: &Path) -> Vec<PathBuf> {
    let mut files = vec![source.to_owned()];
    if let Ok(entries) = fs::read_dir(c_source_dir()) {
        files.extend(
            entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "h")),
        );
    }
    files
}

/// Whether `output` is missing or older than any of `inputs`.
fn is_stale(output: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(built) = modified(output) else {
        return true;
    };
    inputs.iter().any(|input| modified(input).is_none_or(|m| m > built))
}

/// `cc -O2 -pthread -o <binary> <source> -lm`; returns whether it succeeded, warning if not.
fn compile_c(source: &Path, binary: &Path) -> bool {
    if let Some(dir) = binary.parent()
        && let Err(e) = fs::create_dir_all(dir)
    {
        eprintln!("warning: cannot create {}: {e}", dir.display());
        return false;
    }
    eprintln!("compiling {}", source.display());
    let output = Command::new("cc").arg("-O2").arg("-pthread").arg("-o").arg(binary).arg(source).arg("-lm").output();
    match output {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            eprintln!("warning: cc failed on {}: {}\n{}", source.display(), output.status, quote(&stderr));
            false
        }
        Err(e) => {
            eprintln!("warning: cannot start cc: {e}");
            false
        }
    }
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
        let runs = positive_from_env("MINI_BENCH_RUNS", DEFAULT_RUNS) as usize;
        Options { filters, runs }
    }

    fn selects(&self, example: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| example.contains(f.as_str()))
    }
}

/// The positive integer in the environment variable `var` (`_` separators allowed), or
/// `default` when it is not set or not one (with a warning).
fn positive_from_env(var: &str, default: u64) -> u64 {
    let Ok(text) = env::var(var) else {
        return default;
    };
    match text.trim().replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("warning: {var}={text:?} is not a positive integer; using {default}");
            default
        }
    }
}

/// A successful run.
struct Run {
    secs: f64,
    stdout: String,
}

/// Runs `cmd` from the crate root, timing it; an error describes a failed start or exit.
fn run_once(mut cmd: Command) -> Result<Run, String> {
    cmd.current_dir(root()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let status = wait_status(&child);
    let secs = start.elapsed().as_secs_f64();
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let how = if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exit status: {}", libc::WEXITSTATUS(status))
        };
        return Err(format!("{how}\n{}", quote(&String::from_utf8_lossy(&stderr))));
    }
    Ok(Run { secs, stdout: String::from_utf8_lossy(&stdout).into_owned() })
}

/// Waits for `child` with `waitpid`: its wait status. (The child is reaped here; `Child` is not
/// waited for again.)
fn wait_status(child: &std::process::Child) -> i32 {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our unreaped child; `status` is valid for writes.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return status;
        }
    }
}

/// The probe through which peak resident sets are measured: `peak_rss OUT PROGRAM [ARGS]` runs
/// the program in a fork of itself and writes its `ru_maxrss` (KiB) to the file OUT. The
/// kernel counts in a child's `ru_maxrss` the resident set of the memory it replaced at exec:
/// for a child started by this benchmark (posix_spawn, which shares the parent's memory until
/// exec) that is this process's whole resident set, a floor under every runner's peak that
/// was larger than mini's and Lua's own (a probe parent of ~100 KiB has none that matters).
const PEAK_PROBE_C: &str = r#"// written by benches/run.rs (PEAK_PROBE_C)
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0)
        if (errno != EINTR)
            return 2;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    FILE *out = fopen(argv[1], "w");
    if (!out || fprintf(out, "%ld\n", usage.ru_maxrss) < 0 || fclose(out) != 0)
        return 2;
    return 0;
}
"#;

/// `<target dir>/bench-c/peak_rss`, compiled from [`PEAK_PROBE_C`] when missing or out of date;
/// `None` (after a warning from `compile_c`) when it cannot be built.
fn peak_probe() -> Option<&'static Path> {
    static PROBE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PROBE.get_or_init(|| built_c("peak_rss", PEAK_PROBE_C)).as_deref()
}

/// `<target dir>/bench-c/<name>`, compiled from the C source `text` (written beside it as
/// `<name>.c`) when missing or out of date; `None` (after a warning from `compile_c`) when it
/// cannot be built.
fn built_c(name: &str, text: &str) -> Option<PathBuf> {
    let dir = c_binary_dir();
    let (source, binary) = (dir.join(format!("{name}.c")), dir.join(name));
    if fs::read_to_string(&source).ok().as_deref() != Some(text) {
        fs::create_dir_all(&dir).ok()?;
        fs::write(&source, text).ok()?;
    }
    (!is_stale(&binary, std::slice::from_ref(&source)) || compile_c(&source, &binary)).then_some(binary)
}

/// The peak resident set of one more run of `cmd` (its output discarded), in KiB, through the
/// probe of [`PEAK_PROBE_C`]; `None` when the probe or the run fails.
fn peak_of(probe: &Path, cmd: &Command) -> Option<u64> {
    let out = c_binary_dir().join(format!("peak-{}.txt", process::id()));
    let status = Command::new(probe)
        .arg(&out)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let text = fs::read_to_string(&out).ok();
    let _ = fs::remove_file(&out);
    text.filter(|_| status.success())?.trim().parse().ok()
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
    /// The times of the successful runs, in seconds, and the peak resident sets of the runs
    /// under the probe of [`PEAK_PROBE_C`], in KiB.
    Times(Vec<f64>, Vec<u64>),
}

impl Cell {
    /// The times of the successful runs, one per round, if there are any.
    fn times(&self) -> Option<&[f64]> {
        match self {
            Cell::Times(times, _) if !times.is_empty() => Some(times),
            _ => None,
        }
    }

    fn median(&self) -> Option<f64> {
        self.times().map(median)
    }

    /// The median peak resident set of the probe's runs, in KiB.
    fn peak_kib(&self) -> Option<u64> {
        match self {
            Cell::Times(_, peaks) if !peaks.is_empty() => {
                let mut sorted = peaks.clone();
                sorted.sort_unstable();
                Some(sorted[sorted.len() / 2])
            }
            _ => None,
        }
    }

    fn show(&self) -> String {
        match self {
            Cell::Absent => "-".to_owned(),
            Cell::Failed => "FAILED".to_owned(),
            Cell::Times(..) => self.median().map_or("-".to_owned(), show_secs),
        }
    }
}

fn show_secs(secs: f64) -> String {
    format!("{secs:.3}s")
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
    /// The example and its argument, as the table shows it (`fib 30`).
    example: String,
    size: Size,
    cells: Vec<Cell>,
    mismatches: usize,
}

impl Row {
    /// The times of the runner named `runner`, one per round, if it ran this example.
    fn times_of(&self, runners: &[Runner], runner: &str) -> Option<&[f64]> {
        let i = runners.iter().position(|r| r.name == runner)?;
        self.cells[i].times()
    }
}

/// The ratio of two runners' times on one example: the median of the ratios of their runs in
/// the same round (run `i` of one over run `i` of the other). The runners take turns, so the two
/// runs of a round meet the machine in the same phase; on a noisy machine this is steadier than
/// the ratio of the two medians, whose runs may come from different phases.
fn paired_ratio(numerator: &[f64], denominator: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = numerator.iter().zip(denominator).filter(|(_, d)| **d > 0.0).map(|(n, d)| n / d).collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

/// Runs `example` with `args` `runs` times with every runner, taking turns, and collects the
/// times.
fn bench_example(example: &str, size: Size, args: &[&str], runners: &[Runner], runs: usize) -> Row {
    let label = if args.is_empty() { example.to_owned() } else { format!("{example} {}", args.join(" ")) };
    let example = label.as_str();
    let name = example.split(' ').next().unwrap_or(example);
    let mut cells: Vec<Cell> = runners
        .iter()
        .map(|r| match (r.command)(name, args) {
            Some(_) => Cell::Times(Vec::new(), Vec::new()),
            None => Cell::Absent,
        })
        .collect();
    let mut outputs = OutputCheck::new();
    for run in 1..=runs {
        let progress = format!("{example} [{run}/{runs}]");
        eprint!("{progress}");
        for (runner, cell) in runners.iter().zip(cells.iter_mut()) {
            let Cell::Times(times, _) = cell else { continue };
            let Some(cmd) = (runner.command)(name, args) else {
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
    // one more run of each runner, untimed, for its peak resident set (see PEAK_PROBE_C)
    if let Some(probe) = peak_probe() {
        for (runner, cell) in runners.iter().zip(cells.iter_mut()) {
            if let (Cell::Times(_, peaks), Some(cmd)) = (cell, (runner.command)(name, args)) {
                peaks.extend(peak_of(probe, &cmd));
            }
        }
    }
    Row { example: label.clone(), size, cells, mismatches: outputs.mismatches }
}

/// A ratio column of the table: one runner's time over another's ([`paired_ratio`]).
struct Ratio {
    header: &'static str,
    numerator: &'static str,
    denominator: &'static str,
}

/// The ratio columns, in order; one is shown when both of its runners are.
const RATIOS: &[Ratio] = &[
    Ratio { header: "jit/interp", numerator: JIT, denominator: INTERP },
    Ratio { header: "jit/C", numerator: JIT, denominator: C },
    Ratio { header: "interp/python", numerator: INTERP, denominator: PYTHON },
    Ratio { header: "interp/lua", numerator: INTERP, denominator: LUA },
    Ratio { header: "jit/luajit", numerator: JIT, denominator: LUAJIT },
];

/// A ratio column with its values: one per row, `None` where a median is missing.
struct RatioColumn {
    header: &'static str,
    values: Vec<Option<f64>>,
}

impl RatioColumn {
    /// The geometric mean of the rows of size class `size`.
    fn geomean(&self, rows: &[Row], size: Size) -> Option<f64> {
        let values: Vec<f64> =
            self.values.iter().zip(rows).filter(|(_, r)| r.size == size).filter_map(|(v, _)| *v).collect();
        (!values.is_empty()).then(|| geometric_mean(&values))
    }

    /// The largest ratio among the rows of size class `size`, and the index of its row.
    fn worst(&self, rows: &[Row], size: Size) -> Option<(f64, usize)> {
        self.values
            .iter()
            .enumerate()
            .filter(|(i, _)| rows[*i].size == size)
            .filter_map(|(i, v)| Some(((*v)?, i)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }
}

/// The ratio columns of [`RATIOS`] whose runners are both present, computed for `rows`.
fn ratio_columns(runners: &[Runner], rows: &[Row]) -> Vec<RatioColumn> {
    let present = |name: &str| runners.iter().any(|r| r.name == name);
    RATIOS
        .iter()
        .filter(|ratio| present(ratio.numerator) && present(ratio.denominator))
        .map(|ratio| RatioColumn {
            header: ratio.header,
            values: rows
                .iter()
                .map(|row| {
                    let numerator = row.times_of(runners, ratio.numerator)?;
                    let denominator = row.times_of(runners, ratio.denominator)?;
                    paired_ratio(numerator, denominator)
                })
                .collect(),
        })
        .collect()
}

fn show_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("-".to_owned(), |r| format!("{r:.2}"))
}

/// Prints the table of medians and ratios, with a geometric-mean row.
fn print_table(runners: &[Runner], rows: &[Row], ratios: &[RatioColumn], runs: usize) {
    let mut header = vec!["example".to_owned()];
    header.extend(runners.iter().map(|r| r.name.to_owned()));
    header.extend(ratios.iter().map(|c| c.header.to_owned()));

    let mut table = vec![header];
    for (i, row) in rows.iter().enumerate() {
        let mut line = vec![match row.mismatches {
            0 => row.example.clone(),
            _ => format!("{} *", row.example),
        }];
        line.extend(row.cells.iter().map(Cell::show));
        line.extend(ratios.iter().map(|c| show_ratio(c.values[i])));
        table.push(line);
    }
    for (size, name) in [(Size::Small, "geomean, small sizes"), (Size::Full, "geomean, full sizes")] {
        if ratios.is_empty() || !rows.iter().any(|r| r.size == size) {
            continue;
        }
        let mut line = vec![name.to_owned()];
        line.extend(runners.iter().map(|_| String::new()));
        line.extend(ratios.iter().map(|c| show_ratio(c.geomean(rows, size))));
        table.push(line);
    }

    println!("\nmedian wall-clock time of {runs} run(s); a ratio is the median of the ratios within each run");
    print_aligned(&table);
    if rows.iter().any(|r| r.mismatches > 0) {
        println!("* the runners' outputs differ");
    }
}

/// How a goal sums up a ratio column.
enum Summary {
    Geomean,
    /// The largest ratio of any example.
    Worst,
}

/// A performance goal: a ratio column's summary over the rows of one size class must not
/// exceed `limit`.
struct Goal {
    text: &'static str,
    ratio: &'static str,
    summary: Summary,
    size: Size,
    limit: f64,
}

/// The goals printed under the table: those met since parts 3 and 4, then issue 15's (an
/// interpreter faster than Lua 5.4 at both sizes, a JIT within 10% of C and faster than
/// LuaJIT at the full sizes).
const GOALS: &[Goal] = &[
    Goal {
        text: "interpreter vs CPython, geomean",
        ratio: "interp/python",
        summary: Summary::Geomean,
        size: Size::Full,
        limit: 0.35,
    },
    Goal { text: "JIT vs C -O2, geomean", ratio: "jit/C", summary: Summary::Geomean, size: Size::Full, limit: 1.5 },
    Goal { text: "JIT vs C -O2, every example", ratio: "jit/C", summary: Summary::Worst, size: Size::Full, limit: 3.0 },
    Goal {
        text: "interpreter vs Lua 5.4, geomean, small",
        ratio: "interp/lua",
        summary: Summary::Geomean,
        size: Size::Small,
        limit: 0.8,
    },
    Goal {
        text: "interpreter vs Lua 5.4, geomean, full",
        ratio: "interp/lua",
        summary: Summary::Geomean,
        size: Size::Full,
        limit: 0.8,
    },
    Goal {
        text: "interpreter vs Lua 5.4, every example, small",
        ratio: "interp/lua",
        summary: Summary::Worst,
        size: Size::Small,
        limit: 1.0,
    },
    Goal {
        text: "interpreter vs Lua 5.4, every example, full",
        ratio: "interp/lua",
        summary: Summary::Worst,
        size: Size::Full,
        limit: 1.0,
    },
    Goal {
        text: "JIT vs C -O2, geomean, full (issue 15)",
        ratio: "jit/C",
        summary: Summary::Geomean,
        size: Size::Full,
        limit: 1.1,
    },
    Goal {
        text: "JIT vs C -O2, every example, full (issue 15)",
        ratio: "jit/C",
        summary: Summary::Worst,
        size: Size::Full,
        limit: 1.5,
    },
    Goal {
        text: "JIT vs LuaJIT, every example, full",
        ratio: "jit/luajit",
        summary: Summary::Worst,
        size: Size::Full,
        limit: 1.0,
    },
];

/// Prints each goal's limit next to what was measured, and whether it is met.
fn print_goals(ratios: &[RatioColumn], rows: &[Row]) {
    let mut table = vec![vec!["goal".to_owned(), "ratio".to_owned(), "target".to_owned(), "measured".to_owned()]];
    for goal in GOALS {
        let column = ratios.iter().find(|c| c.header == goal.ratio);
        let measured = column.and_then(|c| match goal.summary {
            Summary::Geomean => c.geomean(rows, goal.size).map(|g| (g, String::new())),
            Summary::Worst => c.worst(rows, goal.size).map(|(w, i)| (w, format!(" ({})", rows[i].example))),
        });
        let (shown, verdict) = match measured {
            Some((value, note)) => {
                let verdict = if value <= goal.limit { "met" } else { "not met" };
                (format!("{value:.2}{note}"), verdict)
            }
            None => ("-".to_owned(), "not measured"),
        };
        table.push(vec![
            goal.text.to_owned(),
            goal.ratio.to_owned(),
            format!("≤ {:.2}", goal.limit),
            shown,
            verdict.to_owned(),
        ]);
    }
    println!("\ngoals (ratios of whole-process times)");
    print_aligned(&table);
}

/// The peak resident set of `mini run` may be at most this many times Lua 5.4's (issue 15).
const MEMORY_GOAL: f64 = 1.5;

/// Prints each example's peak resident set (`ru_maxrss`, measured by the probe of
/// [`PEAK_PROBE_C`] in one untimed run) per runner, and mini's (the
/// interpreter's) over Lua 5.4's against [`MEMORY_GOAL`].
fn print_memory(runners: &[Runner], rows: &[Row]) {
    let mut header = vec!["example".to_owned()];
    header.extend(runners.iter().map(|r| r.name.to_owned()));
    header.push("mini/lua".to_owned());
    let mut table = vec![header];
    let mut worst: Option<(f64, &str)> = None;
    for row in rows {
        let mut line = vec![row.example.clone()];
        line.extend(
            row.cells.iter().map(|c| c.peak_kib().map_or("-".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0))),
        );
        let peak = |name: &str| runners.iter().position(|r| r.name == name).and_then(|i| row.cells[i].peak_kib());
        let ratio = match (peak(INTERP), peak(LUA)) {
            (Some(mini), Some(lua)) if lua > 0 => Some(mini as f64 / lua as f64),
            _ => None,
        };
        if let Some(r) = ratio
            && worst.is_none_or(|(w, _)| r > w)
        {
            worst = Some((r, &row.example));
        }
        line.push(show_ratio(ratio));
        table.push(line);
    }
    println!("\npeak resident set (ru_maxrss of one more run, under a small probe parent: PEAK_PROBE_C)");
    print_aligned(&table);
    match worst {
        Some((ratio, example)) => {
            let verdict = if ratio <= MEMORY_GOAL { "met" } else { "not met" };
            println!(
                "goal: mini's peak at most {MEMORY_GOAL:.1}x Lua 5.4's on every example: {ratio:.2} ({example}), {verdict}"
            );
        }
        None => println!("goal: mini's peak at most {MEMORY_GOAL:.1}x Lua 5.4's: not measured (no lua5.4)"),
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

/// The example that times itself, one thread against [`GIL_THREADS`], rather than being timed.
const GIL_DEMO: &str = "gil_demo";

/// The threads gil_demo splits its work across.
const GIL_THREADS: u32 = 2;

/// gil_demo's `n` (the work per timing) in the interpreter; the environment variable
/// `MINI_BENCH_GIL_N_INTERP` overrides it.
const GIL_N_INTERP: u64 = 5_000_000;

/// gil_demo's `n` in the native modes (`--jit` and C), about 100x faster than the interpreter: a
/// larger `n` keeps their timings long enough to compare. `MINI_BENCH_GIL_N_JIT` overrides it.
const GIL_N_JIT: u64 = 400_000_000;

/// A way of running gil_demo: a row of its table.
struct GilMode {
    name: &'static str,
    /// The command running gil_demo this way (without `-- n k`), or `None` when this machine
    /// cannot (no `cc` or `python3`).
    command: fn() -> Option<Command>,
    /// Whether it runs native code; it gets the JIT's `n`.
    native: bool,
    /// Whether this is mini itself, whose failure is an error (a reference's is a warning).
    is_mini: bool,
}

/// mini's three modes, then the references: C with POSIX threads (what two threads of native
/// code get on this machine) and CPython (a GIL).
const GIL_MODES: &[GilMode] = &[
    GilMode { name: "mini", command: || Some(mini_command(GIL_DEMO, &[], &[])), native: false, is_mini: true },
    GilMode {
        name: "mini --jit --keep-gil",
        command: || Some(mini_command(GIL_DEMO, &["--jit", "--keep-gil"], &[])),
        native: true,
        is_mini: true,
    },
    GilMode {
        name: "mini --jit",
        command: || Some(mini_command(GIL_DEMO, &["--jit"], &[])),
        native: true,
        is_mini: true,
    },
    GilMode {
        name: "C (pthreads)",
        command: || tool_available("cc").then(|| c_command(GIL_DEMO, &[])).flatten(),
        native: true,
        is_mini: false,
    },
    GilMode {
        name: "python",
        command: || tool_available("python3").then(|| python_command(GIL_DEMO, &[])).flatten(),
        native: false,
        is_mini: false,
    },
];

const GIL_GOAL: &str =
    "goal: 2 threads under --jit ≥ 1.8x faster than 1; interpreter and --keep-gil: 2 threads no faster than 1";

impl GilMode {
    fn n(&self) -> u64 {
        if self.native {
            positive_from_env("MINI_BENCH_GIL_N_JIT", GIL_N_JIT)
        } else {
            positive_from_env("MINI_BENCH_GIL_N_INTERP", GIL_N_INTERP)
        }
    }

    fn command(&self, n: u64) -> Option<Command> {
        let mut cmd = (self.command)()?;
        if cmd.get_program() == MINI {
            cmd.arg("--");
        }
        cmd.arg(n.to_string()).arg(GIL_THREADS.to_string());
        Some(cmd)
    }
}

/// What gil_demo printed in one run.
struct GilRun {
    one_thread_secs: f64,
    threads_secs: f64,
    speedup: f64,
    /// The one-thread result, and whether the threads' result was the same.
    result: String,
    results_match: bool,
}

/// Parses gil_demo's lines "1 thread: T s, result R", "2 threads: T s, result R", "speedup: S".
fn parse_gil_output(stdout: &str) -> Option<GilRun> {
    let (one_thread_secs, one_result) = stdout.lines().find_map(|l| parse_gil_timing(l, "1 thread:"))?;
    let threads = format!("{GIL_THREADS} threads:");
    let (threads_secs, threads_result) = stdout.lines().find_map(|l| parse_gil_timing(l, &threads))?;
    let speedup = stdout.lines().find_map(|l| l.strip_prefix("speedup:")?.trim().parse().ok())?;
    let results_match = one_result == threads_result;
    Some(GilRun { one_thread_secs, threads_secs, speedup, result: one_result, results_match })
}

/// Parses "<prefix> T s, result R" into (T, R).
fn parse_gil_timing(line: &str, prefix: &str) -> Option<(f64, String)> {
    let (secs, result) = line.strip_prefix(prefix)?.split_once(" s, result ")?;
    Some((secs.trim().parse().ok()?, result.trim().to_owned()))
}

/// gil_demo's runs in one mode, or `None` once one failed.
struct GilRow {
    mode: &'static GilMode,
    n: u64,
    runs: Option<Vec<GilRun>>,
}

impl GilRow {
    fn show(&self) -> Vec<String> {
        let mut line = vec![self.mode.name.to_owned(), group_digits(self.n)];
        line.extend(timing_cells(&self.runs));
        line
    }
}

/// The cells of a self-timed program's runs (gil_demo's, a prange example's): the medians of
/// its 1-thread and 2-thread times and of its speedup, and whether every run's results matched.
fn timing_cells(runs: &Option<Vec<GilRun>>) -> Vec<String> {
    match runs {
        Some(runs) if !runs.is_empty() => {
            let medians = |f: fn(&GilRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let same = runs.iter().all(|r| r.results_match && r.result == runs[0].result);
            vec![
                show_secs(medians(|r| r.one_thread_secs)),
                show_secs(medians(|r| r.threads_secs)),
                format!("{:.2}x", medians(|r| r.speedup)),
                if same { "yes" } else { "NO" }.to_owned(),
            ]
        }
        Some(_) => ["-"; 4].map(str::to_owned).to_vec(),
        None => ["FAILED"; 4].map(str::to_owned).to_vec(),
    }
}

/// `n` with `_` between groups of three digits, as mini writes it.
fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('_');
        }
        grouped.push(c);
    }
    grouped
}

/// Runs gil_demo `runs` times in every mode, taking turns, and collects what it printed.
fn bench_gil_demo(runs: usize) -> Vec<GilRow> {
    // a reference this machine cannot run (no cc, no python3) has no row
    let mut rows: Vec<GilRow> = GIL_MODES
        .iter()
        .filter(|mode| mode.command(0).is_some())
        .map(|mode| GilRow { mode, n: mode.n(), runs: Some(Vec::new()) })
        .collect();
    for run in 1..=runs {
        let progress = format!("{GIL_DEMO} [{run}/{runs}]");
        eprint!("{progress}");
        for row in &mut rows {
            let Some(results) = &mut row.runs else { continue };
            let Some(command) = row.mode.command(row.n) else { continue };
            let outcome = run_once(command).and_then(|run| {
                parse_gil_output(&run.stdout).ok_or_else(|| format!("cannot read its output:\n{}", quote(&run.stdout)))
            });
            match outcome {
                Ok(result) => {
                    eprint!("  {} {:.2}x", row.mode.name, result.speedup);
                    results.push(result);
                }
                Err(message) => {
                    eprint!("\nwarning: {GIL_DEMO}: {} failed: {message}", row.mode.name);
                    eprint!("{progress} ...");
                    row.runs = None;
                }
            }
        }
        eprintln!();
    }
    rows
}

fn print_gil_table(rows: &[GilRow], runs: usize) {
    let header = ["mode", "n", "1 thread", &format!("{GIL_THREADS} threads"), "speedup", "results match"];
    let mut table = vec![header.map(str::to_owned).to_vec()];
    table.extend(rows.iter().map(GilRow::show));
    println!("\n{GIL_DEMO} with {GIL_THREADS} threads, median of {runs} run(s) (its own timings)");
    print_aligned(&table);
    println!("{GIL_GOAL}");
}

/// The folder of the self-timing `prange` examples (see the module comment).
const PRANGE_DIR: &str = "examples/parallel";

const PRANGE_GOAL: &str = "goal: sqrt_sum (a prange sum of square roots over 2e8 iterations) ≥ 1.85x faster with 2 \
                           threads than with 1; the same result with both";

/// The names of the `prange` examples, sorted.
fn list_prange_examples() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join(PRANGE_DIR))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "mini"))
                .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// One `prange` example's runs (what it printed), or `None` once one failed.
struct PrangeRow {
    example: String,
    runs: Option<Vec<GilRun>>,
}

/// Runs each `prange` example `runs` times under `--jit`, taking turns.
fn bench_prange(examples: &[String], runs: usize) -> Vec<PrangeRow> {
    let mut rows: Vec<PrangeRow> =
        examples.iter().map(|e| PrangeRow { example: e.clone(), runs: Some(Vec::new()) }).collect();
    for run in 1..=runs {
        eprint!("prange [{run}/{runs}]");
        for row in &mut rows {
            let Some(results) = &mut row.runs else { continue };
            let mut command = Command::new(MINI);
            command.current_dir(root()).args(["run", "--jit"]).arg(format!("{PRANGE_DIR}/{}.mini", row.example));
            let outcome = run_once(command).and_then(|run| {
                parse_gil_output(&run.stdout).ok_or_else(|| format!("cannot read its output:\n{}", quote(&run.stdout)))
            });
            match outcome {
                Ok(result) => {
                    eprint!("  {} {:.2}x", row.example, result.speedup);
                    results.push(result);
                }
                Err(message) => {
                    eprint!("\nwarning: {}: {message}", row.example);
                    row.runs = None;
                }
            }
        }
        eprintln!();
    }
    rows
}

fn print_prange_table(rows: &[PrangeRow], runs: usize) {
    let header = ["example (mini --jit)", "1 thread", "2 threads", "speedup", "results match"];
    let mut table = vec![header.map(str::to_owned).to_vec()];
    for row in rows {
        let mut line = vec![row.example.clone()];
        line.extend(timing_cells(&row.runs));
        table.push(line);
    }
    println!("\n{PRANGE_DIR}: prange loops with 1 and 2 threads, median of {runs} run(s) (their own timings)");
    print_aligned(&table);
    println!("{PRANGE_GOAL}");
}

/// The folder of the process examples, each run as a whole program with 1 and 2 workers.
const PROCESS_DIR: &str = "examples/processes";

const PROCESS_GOAL: &str = "goal: each ≥ 1.8x faster with 2 workers than with 1 (a 1-second compiled kernel, whole \
                            program); the same result with both";

/// The ways of running the sum of square roots on several processes: a row name, the example,
/// and whether it runs under `mpirun` (only when mini has MPI and `mpirun` is installed).
const PROCESS_WAYS: [(&str, &str, bool); 3] =
    [("forked", "sqrt_forked", false), ("pmap processes", "sqrt_pmap", false), ("mpirun -n", "sqrt_mpi", true)];

/// The command running process example `example` with `workers` workers: `-- workers` for
/// forked and pmap, `mpirun -n workers` for MPI.
fn process_command(example: &str, workers: usize, mpi: bool) -> Command {
    let path = format!("{PROCESS_DIR}/{example}.mini");
    if !mpi {
        let mut command = Command::new(MINI);
        command.args(["run", "--jit", &path, "--", &workers.to_string()]);
        return command;
    }
    let mut command = Command::new("mpirun");
    command.args(["-n", &workers.to_string()]);
    // more ranks than cores need leave; as many do not (and are then bound to a core each)
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < workers {
        command.arg("--oversubscribe");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        command.arg("--allow-run-as-root");
    }
    command.args([MINI, "run", "--jit", &path]);
    command
}

/// The time and result of one whole run: its wall-clock time and the number after "result".
fn process_run(example: &str, workers: usize, mpi: bool) -> Result<(f64, String), String> {
    let run = run_once(process_command(example, workers, mpi))?;
    let result = run.stdout.lines().find_map(|l| Some(l.split_once(" result ")?.1.trim().to_owned()));
    result.map(|r| (run.secs, r)).ok_or_else(|| format!("cannot read its output:\n{}", quote(&run.stdout)))
}

/// Runs each way with 1 then 2 workers, `runs` times, taking turns; each pair is one `GilRun`.
fn bench_processes(runs: usize) -> Vec<PrangeRow> {
    let with_mpi = cfg!(feature = "mpi") && tool_available("mpirun");
    if !with_mpi {
        eprintln!("note: no MPI row (build with `cargo bench --features mpi`, and install mpirun)");
    }
    let ways: Vec<_> = PROCESS_WAYS.iter().filter(|(_, _, mpi)| with_mpi || !mpi).collect();
    let mut rows: Vec<PrangeRow> =
        ways.iter().map(|(name, _, _)| PrangeRow { example: (*name).to_owned(), runs: Some(Vec::new()) }).collect();
    for run in 1..=runs {
        eprint!("processes [{run}/{runs}]");
        for (row, (_, example, mpi)) in rows.iter_mut().zip(&ways) {
            let Some(results) = &mut row.runs else { continue };
            let pair = process_run(example, 1, *mpi).and_then(|one| Ok((one, process_run(example, 2, *mpi)?)));
            match pair {
                Ok(((t1, r1), (t2, r2))) => {
                    eprint!("  {} {:.2}x", row.example, t1 / t2);
                    let results_match = r1 == r2;
                    results.push(GilRun {
                        one_thread_secs: t1,
                        threads_secs: t2,
                        speedup: t1 / t2,
                        result: r1,
                        results_match,
                    });
                }
                Err(message) => {
                    eprint!("\nwarning: {}: {message}", row.example);
                    row.runs = None;
                }
            }
        }
        eprintln!();
    }
    rows
}

/// A million trivial items through the process pool, through the thread pool and through a
/// plain loop: the two pools' costs per item over the loop, in microseconds, printed by the
/// program (the best of three of each).
const PROCESS_OVERHEAD: &str = "fn inc(x) { return x + 1 }
let n = 1000000
let best = [1e9, 1e9, 1e9]
for rep in range(3) {
    let t0 = clock()
    let r = []
    for x in range(n) { push(r, inc(x)) }
    best[0] = min(best[0], clock() - t0)
    t0 = clock()
    let r2 = pmap(inc, range(n), 2, \"processes\")
    best[1] = min(best[1], clock() - t0)
    t0 = clock()
    let r3 = pmap(inc, range(n), 2)
    best[2] = min(best[2], clock() - t0)
    assert(r == r2 and r == r3)
}
print((best[1] - best[0]) * 1e6 / n, (best[2] - best[0]) * 1e6 / n)
";

/// The process and thread pools' costs per item over a loop (see [`PROCESS_OVERHEAD`]), or why
/// not.
fn process_overhead() -> Result<(f64, f64), String> {
    let path = env::temp_dir().join(format!("mini_bench_overhead_{}.mini", process::id()));
    fs::write(&path, PROCESS_OVERHEAD).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut command = Command::new(MINI);
    command.arg("run").arg(&path);
    let run = run_once(command);
    let _ = fs::remove_file(&path);
    let stdout = run?.stdout;
    let costs: Vec<f64> = stdout.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    match costs[..] {
        [processes, threads] => Ok((processes, threads)),
        _ => Err(format!("cannot read its output:\n{}", quote(&stdout))),
    }
}

fn print_process_table(rows: &[PrangeRow], runs: usize) {
    let header = ["sum of square roots (--jit)", "1 worker", "2 workers", "speedup", "results match"];
    let mut table = vec![header.map(str::to_owned).to_vec()];
    for row in rows {
        let mut line = vec![row.example.clone()];
        line.extend(timing_cells(&row.runs));
        table.push(line);
    }
    println!("\n{PROCESS_DIR}: whole programs with 1 and 2 worker processes, median of {runs} run(s)");
    print_aligned(&table);
    println!("{PROCESS_GOAL}");
    match process_overhead() {
        Ok((processes, threads)) => println!(
            "pmap(inc, range(1000000), 2) (interpreted) costs, per item over a plain loop, {processes:.3} us with \
             \"processes\" (goal: at most 20 us) and {threads:.3} us with threads (goal: at most 2 us)"
        ),
        Err(message) => eprintln!("warning: the process pool's cost per item: {message}"),
    }
}

fn main() {
    // the JIT's cache: one of the benchmark's own, empty at the start (see the top of this file)
    let cache = c_binary_dir().with_file_name("bench-jit-cache");
    let _ = fs::remove_dir_all(&cache);
    // SAFETY: no other thread exists yet, so none reads the environment while it changes.
    unsafe { env::set_var("MINI_CACHE_DIR", &cache) };
    let options = Options::from_env();
    let runners = runners();
    let (demos, benches): (Vec<String>, Vec<String>) =
        list_examples().into_iter().filter(|e| options.selects(e)).partition(|e| e == GIL_DEMO);
    let pranges: Vec<String> = list_prange_examples()
        .into_iter()
        .filter(|e| options.filters.iter().any(|f| f == "prange") || options.selects(e))
        .collect();
    let processes = options.filters.is_empty() || options.filters.iter().any(|f| f == "processes");
    if demos.is_empty() && benches.is_empty() && pranges.is_empty() && !processes {
        eprintln!("no example matches {:?}", options.filters);
        process::exit(1);
    }

    let rows: Vec<Row> = benches
        .iter()
        .flat_map(|e| sized_runs(e).into_iter().map(move |(size, args)| (e, size, args)))
        .map(|(e, size, args)| bench_example(e, size, &args, &runners, options.runs))
        .collect();
    if !rows.is_empty() {
        let ratios = ratio_columns(&runners, &rows);
        print_table(&runners, &rows, &ratios, options.runs);
        print_goals(&ratios, &rows);
        print_memory(&runners, &rows);
        startup::print_startup(options.runs);
        startup::print_compile_times(|e| options.selects(e));
    }
    let gil_rows = if demos.is_empty() { Vec::new() } else { bench_gil_demo(options.runs) };
    if !gil_rows.is_empty() {
        print_gil_table(&gil_rows, options.runs);
    }
    let prange_rows = if pranges.is_empty() { Vec::new() } else { bench_prange(&pranges, options.runs) };
    if !prange_rows.is_empty() {
        print_prange_table(&prange_rows, options.runs);
    }
    let process_rows = if processes { bench_processes(options.runs) } else { Vec::new() };
    if !process_rows.is_empty() {
        print_process_table(&process_rows, options.runs);
    }

    let mismatches: usize = rows.iter().map(|r| r.mismatches).sum();
    if mismatches > 0 {
        println!("\nwarning: {mismatches} output mismatch(es); see above");
    }
    // a crash of mini is an error; a mismatch or a failing twin only a warning
    let mini_failed =
        rows.iter().any(|row| row.cells.iter().zip(&runners).any(|(c, r)| r.is_mini && matches!(c, Cell::Failed)));
    let gil_failed = gil_rows.iter().any(|row| row.mode.is_mini && row.runs.is_none());
    let prange_failed = prange_rows.iter().chain(&process_rows).any(|row| row.runs.is_none());
    if mini_failed || gil_failed || prange_failed {
        eprintln!("error: some runs failed; see above");
        process::exit(1);
    }
}
