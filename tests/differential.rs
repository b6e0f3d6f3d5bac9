//! Differential test of the JIT: random programs in the subset the JIT compiles must behave exactly
//! the same in every execution mode.
//!
//! Each case is a program generated from a seed by a small PRNG (see [`generate`]): one to four
//! functions whose parameters are ints, floats, numbers of either type, bools and typed arrays;
//! bodies of `let`, assignments, compound assignments, `if`/`else`, bounded `while` and `for`
//! loops, `break`, `continue` and `return`, over int arithmetic (some of it near the int limit),
//! float arithmetic, the math builtins, array loads and stores, calls of earlier functions (and now
//! and then a bounded recursion) and reads and writes of globals; then top-level code that calls
//! every function at least three times, with int and with float arguments, reassigns globals
//! between the calls (sometimes changing their type) and prints the results. Some functions turn an
//! int local into a float in the middle of a loop.
//!
//! The generator tracks a bound on every int it computes, keeps divisors away from zero and indexes
//! in range, so most programs run to their end. A minority of "risky" programs leave some of those
//! guards out and usually end with a runtime error (overflow, division by zero, index out of range,
//! a type error), whose report, with its line, column and stack, must match too.
//!
//! Most functions are type-stable in each specialization, so that the JIT compiles them: all the
//! number parameters of a call get ints, or all get floats, and every variable keeps one type. A
//! few functions deliberately use what the JIT must refuse and leave to the interpreter (a local
//! that changes type in a loop, `min` of an int and a float, `and`/`or` giving a bool or a number,
//! returns of two types, assignments to globals), and in some programs the top level reassigns
//! globals between calls, which must invalidate the compiled code that read them.
//!
//! Every program runs as `mini run P`, `mini run --jit P` and `mini run --jit --jit-threshold 0 P`;
//! stdout, stderr and the exit status must be identical, and no run may crash, panic or time out.
//!
//! Environment:
//! - `MINI_DIFF_CASES` (default 150): how many programs; `MINI_DIFF_SEED` (default 1): the first
//!   seed, the others follow it;
//! - `MINI_BIN`: the `mini` binary to test (default: the one cargo builds for this test);
//! - `MINI_DIFF_DUMP=dir`: also write every generated program to `dir/seed-N.mini`;
//! - `MINI_DIFF_COVERAGE=1`: also run each program with `--jit --jit-threshold 0 --stats` (not
//!   compared) and add to the summary how many specializations the JIT compiled or refused, and why.
//!
//! A failing program is written to `target/differential-failures/seed-N.mini`. Reproduce it with
//! `mini run --jit --jit-threshold 0 target/differential-failures/seed-N.mini`, or rerun just that
//! case with `MINI_DIFF_SEED=N MINI_DIFF_CASES=1 cargo test --test differential -- --nocapture`
//! (the same seed always generates the same program). `-- --nocapture` also prints a summary: the
//! share of programs that end with an error and the run times.
//! `cargo test --test differential -- --ignored dump_samples` writes programs to read, without
//! running them.
//!
//! Cranelift compiles slowly in a debug build, where the 150 programs take about half a minute;
//! with a release build of `mini` (`cargo test --release`, or `MINI_BIN`) they take seconds.

mod common;

// `MODES[0]`, the interpreter, is the reference the other modes are compared with.
use common::{MODES, Rng, env_number, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A run taking longer is killed and reported. Generated programs run in milliseconds; the slowest
/// runs are those of a debug build that compiles many functions (seconds, on a loaded machine).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Threads running cases at once (each runs one `mini` process at a time).
const WORKERS: usize = 4;

const DEFAULT_CASES: u64 = 150;

/// Lines of a run's stdout or stderr shown in a failure report.
const SHOWN_LINES: usize = 60;

/// Failure reports shown in full in the panic message (all failing seeds are listed).
const SHOWN_FAILURES: usize = 3;

#[test]
fn interpreter_and_jit_agree() {
    let config = Config::from_env();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scratch = std::env::temp_dir().join(format!("mini-differential-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("create a scratch directory");
    if let Some(dir) = &config.dump {
        std::fs::create_dir_all(dir).expect("create the MINI_DIFF_DUMP directory");
    }
    let started = Instant::now();
    let reports = run_all(&config, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{}", summary(&reports, started.elapsed()));

    let failures: Vec<&CaseReport> = reports.iter().filter(|r| r.problem().is_some()).collect();
    let failure_dir = root.join("target").join("differential-failures");
    if !failures.is_empty() {
        std::fs::create_dir_all(&failure_dir).expect("create target/differential-failures");
    }
    for failure in &failures {
        std::fs::write(failure_dir.join(failure.file_name()), &failure.program).expect("save a failing program");
    }
    assert!(failures.is_empty(), "{}", failure_message(&failures, reports.len()));
}

#[test]
fn generator_is_deterministic() {
    assert_eq!(generate(7), generate(7));
    assert_ne!(generate(7), generate(8));
}

/// Writes programs to `MINI_DIFF_DUMP` (default `target/differential-samples`) for a human to read.
#[test]
#[ignore = "writes sample programs; run with --ignored"]
fn dump_samples() {
    let config = Config::from_env();
    let dir =
        config.dump.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/differential-samples"));
    std::fs::create_dir_all(&dir).expect("create the sample directory");
    for seed in config.first_seed..config.first_seed + config.cases {
        std::fs::write(dir.join(format!("seed-{seed}.mini")), generate(seed)).expect("write a sample");
    }
    println!("wrote {} programs to {}", config.cases, dir.display());
}

// ---------------------------------------------------------------------------------------------
// Running the cases
// ---------------------------------------------------------------------------------------------

/// What to run, from the environment (see the module comment).
struct Config {
    bin: PathBuf,
    first_seed: u64,
    cases: u64,
    dump: Option<PathBuf>,
    coverage: bool,
}

impl Config {
    fn from_env() -> Config {
        Config {
            bin: common::mini_bin(),
            first_seed: env_number("MINI_DIFF_SEED").unwrap_or(1),
            cases: env_number("MINI_DIFF_CASES").unwrap_or(DEFAULT_CASES),
            dump: std::env::var_os("MINI_DIFF_DUMP").map(PathBuf::from),
            coverage: std::env::var_os("MINI_DIFF_COVERAGE").is_some_and(|v| v != "0"),
        }
    }
}

/// How one run of `mini` ended. Two runs agree when their outcomes are equal.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    stderr: String,
    /// `exit code N`, `killed: ...` or `timed out ...`.
    status: String,
}

struct Run {
    outcome: Outcome,
    elapsed: Duration,
}

/// Runs `mini run FLAGS FILE` in `dir`, so that reports name the file as `seed-N.mini`.
fn run_mini(bin: &Path, dir: &Path, file: &str, flags: &[&str]) -> Run {
    let child = Command::new(bin)
        .env("MINI_CACHE_DIR", common::test_cache_dir())
        .env("MINI_JIT_VERIFY", "1")
        .env("MINI_VERIFY_BYTECODE", "1")
        .arg("run")
        .args(flags)
        .arg(file)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let finished = common::finish(child, TIMEOUT);
    let out = finished.output;
    let status =
        if finished.timed_out { format!("timed out after {TIMEOUT:?} (killed)") } else { describe_status(out.status) };
    let outcome = Outcome { stdout: text(&out.stdout), stderr: text(&out.stderr), status };
    Run { outcome, elapsed: finished.elapsed }
}

fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("killed: {status}"),
    }
}

/// One generated program and its runs, in the order of [`MODES`].
struct CaseReport {
    seed: u64,
    program: String,
    runs: Vec<Run>,
    /// With `MINI_DIFF_COVERAGE`: the stderr of a run with `--stats`, which reports the JIT's work.
    stats: Option<String>,
}

impl CaseReport {
    fn file_name(&self) -> String {
        format!("seed-{}.mini", self.seed)
    }

    fn reference(&self) -> &Outcome {
        &self.runs[0].outcome
    }

    /// What is wrong with this case, if anything: the modes disagree, or a run misbehaved.
    fn problem(&self) -> Option<String> {
        let mut problems = Vec::new();
        let differing: Vec<&str> =
            MODES.iter().zip(&self.runs).filter(|(_, r)| r.outcome != *self.reference()).map(|(m, _)| m.0).collect();
        if !differing.is_empty() {
            let verb = if differing.len() == 1 { "differs" } else { "differ" };
            problems.push(format!("{} {verb} from {}", differing.join(" and "), MODES[0].0));
        }
        for ((mode, _), run) in MODES.iter().zip(&self.runs) {
            if let Some(reason) = misbehavior(&run.outcome) {
                problems.push(format!("{mode}: {reason}"));
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// The flags of the first mode that went wrong, to rerun it by hand.
    fn failing_flags(&self) -> &'static [&'static str] {
        let failed = |run: &Run| run.outcome != *self.reference() || misbehavior(&run.outcome).is_some();
        MODES.iter().zip(&self.runs).find(|(_, run)| failed(run)).map_or(MODES[2].1, |((_, flags), _)| flags)
    }

    fn ended_with_error(&self) -> bool {
        self.reference().status == "exit code 1"
    }
}

/// A run that neither succeeded nor reported an error the ordinary way.
fn misbehavior(outcome: &Outcome) -> Option<String> {
    if outcome.status != "exit code 0" && outcome.status != "exit code 1" {
        Some(outcome.status.clone())
    } else if outcome.stderr.contains("panicked") {
        Some("panicked".to_string())
    } else if outcome.status == "exit code 1" && !outcome.stderr.starts_with("error: ") {
        Some("exit code 1 without an error report".to_string())
    } else {
        None
    }
}

/// Runs every case on [`WORKERS`] threads; the reports come back in seed order.
fn run_all(config: &Config, scratch: &Path) -> Vec<CaseReport> {
    let next = AtomicU64::new(0);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= config.cases {
                        break;
                    }
                    let report = run_case(config, scratch, config.first_seed + i);
                    reports.lock().unwrap().push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|r| r.seed);
    reports
}

fn run_case(config: &Config, scratch: &Path, seed: u64) -> CaseReport {
    let program = generate(seed);
    let file = format!("seed-{seed}.mini");
    std::fs::write(scratch.join(&file), &program).expect("write the program");
    if let Some(dir) = &config.dump {
        std::fs::write(dir.join(&file), &program).expect("dump the program");
    }
    let runs = MODES.iter().map(|(_, flags)| run_mini(&config.bin, scratch, &file, flags)).collect();
    let stats = config
        .coverage
        .then(|| run_mini(&config.bin, scratch, &file, &["--jit", "--jit-threshold", "0", "--stats"]).outcome.stderr);
    CaseReport { seed, program, runs, stats }
}

/// One paragraph on the whole run: how many programs failed at run time, how long runs took.
fn summary(reports: &[CaseReport], wall: Duration) -> String {
    let errors: Vec<&CaseReport> = reports.iter().filter(|r| r.ended_with_error()).collect();
    let share = 100.0 * errors.len() as f64 / reports.len().max(1) as f64;
    let interp_times: Vec<Duration> = reports.iter().map(|r| r.runs[0].elapsed).collect();
    let slowest = reports.iter().max_by_key(|r| r.runs.iter().map(|run| run.elapsed).max());
    let mean = interp_times.iter().sum::<Duration>() / interp_times.len().max(1) as u32;
    let mut text = format!(
        "differential: {} programs x {} modes in {:.1} s; {} ({share:.1}%) end with an error; \
         interpreter run mean {:.1} ms, max {:.1} ms",
        reports.len(),
        MODES.len(),
        wall.as_secs_f64(),
        errors.len(),
        mean.as_secs_f64() * 1e3,
        interp_times.iter().max().unwrap_or(&Duration::ZERO).as_secs_f64() * 1e3,
    );
    if let Some(r) = slowest {
        let longest = r.runs.iter().map(|run| run.elapsed).max().unwrap_or_default();
        text += &format!("; slowest run: seed {} ({:.1} ms)", r.seed, longest.as_secs_f64() * 1e3);
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for r in &errors {
        *kinds.entry(error_kind(&r.reference().stderr)).or_default() += 1;
    }
    for (kind, count) in kinds {
        text += &format!("\n  {count:3} x {kind}");
    }
    if reports.iter().any(|r| r.stats.is_some()) {
        text += &jit_coverage(reports);
    }
    text
}

/// How many specializations of the generated functions the JIT compiled, and why it refused the
/// others, from the `--stats` lines `compiled f(int) -> int ...` and `cannot compile f(int): line
/// N: reason`.
fn jit_coverage(reports: &[CaseReport]) -> String {
    let (mut compiled, mut refused) = (0, 0);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for line in reports.iter().filter_map(|r| r.stats.as_deref()).flat_map(str::lines) {
        let line = line.trim_start();
        if line.starts_with("compiled ") {
            compiled += 1;
        } else if let Some(rest) = line.strip_prefix("cannot compile ").filter(|r| !r.starts_with("<main>")) {
            refused += 1;
            let reason = rest.split_once(": line ").and_then(|(_, r)| r.split_once(": ")).map_or(rest, |(_, r)| r);
            *reasons.entry(error_kind(reason)).or_default() += 1;
        }
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by_key(|(reason, count)| (std::cmp::Reverse(*count), reason.clone()));
    let mut text = format!("\njit --jit-threshold 0: {compiled} specializations compiled, {refused} refused");
    for (reason, count) in reasons.iter().take(12) {
        text += &format!("\n  {count:3} x {reason}");
    }
    text
}

/// The first line of an error report with each number replaced by `#`, to count errors by kind.
fn error_kind(stderr: &str) -> String {
    let mut kind = String::new();
    for c in stderr.lines().next().unwrap_or("").chars() {
        if !c.is_ascii_digit() {
            kind.push(c);
        } else if !kind.ends_with('#') {
            kind.push('#');
        }
    }
    kind
}

fn failure_message(failures: &[&CaseReport], total: usize) -> String {
    let seeds: Vec<String> = failures.iter().map(|f| f.seed.to_string()).collect();
    let mut text = format!("{} of {total} generated programs failed; seeds: {}\n", failures.len(), seeds.join(", "));
    for failure in failures.iter().take(SHOWN_FAILURES) {
        text += &describe_failure(failure);
    }
    if failures.len() > SHOWN_FAILURES {
        text += &format!("\n({} more; each is in target/differential-failures)\n", failures.len() - SHOWN_FAILURES);
    }
    text
}

/// The seed, the program with line numbers, and every mode's outcome (or that it is the reference's).
fn describe_failure(case: &CaseReport) -> String {
    let file = case.file_name();
    let flags: String = case.failing_flags().iter().map(|f| format!("{f} ")).collect();
    let mut text = format!(
        "\n=== seed {}: {}\n\
         program saved as target/differential-failures/{file}; reproduce with\n  \
         mini run {flags}target/differential-failures/{file}\n  \
         MINI_DIFF_SEED={} MINI_DIFF_CASES=1 cargo test --test differential\n--- {file}\n",
        case.seed,
        case.problem().unwrap_or_default(),
        case.seed,
    );
    for (n, line) in case.program.lines().enumerate() {
        text += &format!("{:4} | {line}\n", n + 1);
    }
    for (i, ((mode, flags), run)) in MODES.iter().zip(&case.runs).enumerate() {
        let command = format!("mini run {}{file}", flags.iter().map(|f| format!("{f} ")).collect::<String>());
        text += &format!("--- {mode} ({command}): {}, {} ms\n", run.outcome.status, run.elapsed.as_millis());
        let reference = (i > 0).then(|| case.reference());
        text += &describe_output("stdout", &run.outcome.stdout, reference.map(|r| r.stdout.as_str()));
        text += &describe_output("stderr", &run.outcome.stderr, reference.map(|r| r.stderr.as_str()));
    }
    text
}

/// One stream of a run: its text and where it first differs from the reference run's, or that
/// it is the same. `reference` is `None` for the reference run itself.
fn describe_output(name: &str, got: &str, reference: Option<&str>) -> String {
    if reference == Some(got) {
        return format!("  {name}: same as {}\n", MODES[0].0);
    }
    if got.is_empty() {
        return format!("  {name}: (empty)\n");
    }
    let mut text = format!("  {name}:\n");
    let lines: Vec<&str> = got.lines().collect();
    for line in lines.iter().take(SHOWN_LINES) {
        text += &format!("    {line}\n");
    }
    if lines.len() > SHOWN_LINES {
        text += &format!("    ... {} more lines\n", lines.len() - SHOWN_LINES);
    }
    if let Some(reference) = reference {
        let first = got.lines().zip(reference.lines()).position(|(a, b)| a != b);
        let line = first.unwrap_or_else(|| got.lines().count().min(reference.lines().count()));
        text += &format!("    (first difference from {} at line {})\n", MODES[0].0, line + 1);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The program generator
// ---------------------------------------------------------------------------------------------

/// The largest int; every int that the guarded code computes stays within it in magnitude.
const INT_LIMIT: u128 = i64::MAX as u128;
/// Bound on every int variable, int array element, argument and return value.
const VAR_BOUND: u128 = 1 << 31;
/// Where bound arithmetic saturates (bounds above [`INT_LIMIT`] only occur in risky code).
const HUGE: u128 = 1 << 100;
/// Bound on the ints that a guarded float-to-int conversion gives.
const CONVERTED_BOUND: u128 = 1_000_000_000_000_000;
const MAX_ARRAY_LEN: u64 = 24;
/// Recursive functions take a depth in `0..=MAX_RECURSION` as their first argument.
const MAX_RECURSION: u64 = 8;
/// Deepest nesting of blocks inside a function body.
const MAX_NESTING: u32 = 3;
/// Deepest nesting of calls in the arguments of calls.
const MAX_CALL_NESTING: usize = 2;
const MAX_LOOP: u64 = 40;
/// Estimated statements one call of a function may execute, the calls it makes included.
const CALL_BUDGET: u64 = 3_000;
/// Estimated statements all the calls of the top-level code may execute.
const PROGRAM_BUDGET: u64 = 60_000;
/// Share of the programs that leave some operations unguarded.
const RISKY_PROGRAMS: f64 = 0.15;
/// Share of the functions that use constructs the JIT must refuse (values of two types in one
/// variable, mixed-type `min`, `and`/`or` yielding a bool or a number, returns of two types).
const UNSTABLE_FUNCTIONS: f64 = 0.15;
/// Share of the programs whose top level reassigns globals between calls (each reassignment makes
/// the JIT throw away the code that read the global, and compile it again).
const REASSIGNING_PROGRAMS: f64 = 0.4;
/// Share of the functions that assign globals.
const GLOBAL_WRITERS: f64 = 0.06;
/// Moduli that bring an int back within a bound.
const MODULI: [u128; 5] = [7, 1000, 65_536, 1_000_003, 2_147_483_647];
/// The largest `b` with `b ** k` within [`INT_LIMIT`], for `k` in `0..=4`.
const ROOTS: [u128; 5] = [INT_LIMIT, INT_LIMIT, 3_037_000_499, 2_097_151, 55_108];

const SMALL_INTS: [i64; 13] = [0, 1, -1, 2, 3, -3, 5, 7, 10, -17, 100, 255, 1000];
const BIG_INTS: [i64; 12] = [
    1 << 62,
    (1 << 62) - 1,
    -(1 << 62),
    i64::MAX,
    -i64::MAX,
    3_037_000_499,
    1 << 31,
    // the edges of the ±2^30 that versioned loops assume of their ints
    1 << 30,
    (1 << 30) + 1,
    -(1 << 30) - 1,
    9_007_199_254_740_993,
    -(1 << 53),
];
const FLOATS: [&str; 18] = [
    "0.0",
    "0.5",
    "1.0",
    "-1.5",
    "2.5",
    "1e300",
    "-1e300",
    "2.5e-3",
    "1e-300",
    "-0.0",
    "100.0",
    "0.1",
    "1e15",
    "3.0e9",
    "6.02e23",
    "1_000.5",
    "-7.75",
    "4611686018427387904.0",
];
const NONZERO_FLOATS: [&str; 9] = ["0.5", "-1.5", "2.5", "1e300", "1e-300", "0.1", "-7.75", "3.0", "1e15"];
const NONZERO_INTS: [i64; 9] = [1, -1, 2, 3, -7, 10, 1000, 1 << 62, i64::MAX];
const COMPARISONS: [&str; 6] = ["==", "!=", "<", "<=", ">", ">="];

/// The program for `seed`: always the same text for the same seed.
fn generate(seed: u64) -> String {
    let mut generator = Gen::new(seed);
    generator.program(seed);
    generator.out
}

/// The draws of the program generator from the shared SplitMix64 generator.
impl Rng {
    /// A number in `0..n`; `n` must be positive.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`, for small ranges.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut r = self.below(u64::from(total)) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        unreachable!("weights sum to {total}")
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// What the generator knows about the type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    /// The type that the `Num` parameters of the current function share in one call: all ints or
    /// all floats. Arithmetic of `Num` with `Num` and `Int` stays `Num`, so the code is type-stable
    /// in each specialization.
    Num,
    /// An int or a float, unrelated to `Num`: a global whose type the top level changes, a local
    /// that changes type in a loop, a function that returns either. Only used where the result
    /// is a float or a bool whatever its type.
    Dyn,
    Bool,
    IntArray,
    FloatArray,
    /// The first parameter of a recursive function: its depth, in `0..=MAX_RECURSION`.
    Depth,
}

impl Kind {
    fn is_array(self) -> bool {
        matches!(self, Kind::IntArray | Kind::FloatArray)
    }
}

/// The kind of `a op b` for an arithmetic operator other than `/`.
fn join(a: Kind, b: Kind) -> Kind {
    [Kind::Float, Kind::Dyn, Kind::Num].into_iter().find(|&k| a == k || b == k).unwrap_or(Kind::Int)
}

/// The bound of `a op b` for `+`, `-` or `*` on operands bounded by `a` and `b`.
fn combine(op: &str, a: u128, b: u128) -> u128 {
    if op == "*" { a.saturating_mul(b).min(HUGE) } else { (a + b).min(HUGE) }
}

fn pow_bound(base: u128, exp: u32) -> u128 {
    base.checked_pow(exp).unwrap_or(HUGE).min(HUGE)
}

/// A generated expression: its text, its kind and, for ints, a bound on its magnitude.
#[derive(Clone, Debug)]
struct Expr {
    text: String,
    kind: Kind,
    bound: u128,
    /// Whether the text may be an operand without parentheses.
    atom: bool,
}

impl Expr {
    fn atom(text: impl Into<String>, kind: Kind, bound: u128) -> Expr {
        Expr { text: text.into(), kind, bound, atom: true }
    }

    fn op(text: String, kind: Kind, bound: u128) -> Expr {
        Expr { text, kind, bound, atom: false }
    }

    /// A literal, which is an atom unless it starts with a minus.
    fn literal(text: String, kind: Kind, bound: u128) -> Expr {
        let atom = !text.starts_with('-');
        Expr { text, kind, bound, atom }
    }

    fn of_var(var: Var) -> Expr {
        Expr::atom(var.name, var.kind, var.bound)
    }

    /// The text as an operand of an operator: parenthesized unless atomic.
    fn operand(&self) -> String {
        if self.atom { self.text.clone() } else { format!("({})", self.text) }
    }
}

/// A variable in scope: a local, a parameter, a loop counter or a global.
#[derive(Clone, Debug)]
struct Var {
    name: String,
    kind: Kind,
    bound: u128,
    assignable: bool,
    /// For `for i in range(len(a))`: the array `a` that `i` always indexes safely.
    indexes: Option<String>,
}

impl Var {
    fn new(name: impl Into<String>, kind: Kind, bound: u128, assignable: bool) -> Var {
        Var { name: name.into(), kind, bound, assignable, indexes: None }
    }

    /// A loop variable or counter: an int that the body reads but never assigns.
    fn counter(name: impl Into<String>, bound: u128) -> Var {
        Var::new(name, Kind::Int, bound, false)
    }

    fn param(name: &str, kind: Kind) -> Var {
        match kind {
            Kind::Depth => Var::counter(name, u128::from(MAX_RECURSION)),
            Kind::IntArray | Kind::FloatArray => Var::new(name, kind, 0, false),
            _ => Var::new(name, kind, VAR_BOUND, true),
        }
    }
}

/// A generated function, as its callers see it.
#[derive(Clone, Debug)]
struct Sig {
    name: String,
    params: Vec<Kind>,
    /// `Num` when the result has the type of the `Num` arguments.
    ret: Kind,
    /// Estimated statements one call executes.
    cost: u64,
}

/// The generator's state: the text so far and what the code being written can see.
struct Gen {
    rng: Rng,
    /// The chance that a guard is left out at each place one would go; zero for most programs.
    risk: f64,
    out: String,
    indent: usize,
    next_name: usize,
    globals: Vec<Var>,
    fns: Vec<Sig>,
    /// The local scopes of the code being written, innermost last.
    scopes: Vec<Vec<Var>>,
    /// Functions the code being written may call: `fns[..callable]`.
    callable: usize,
    /// Whether the current function has `Num` parameters.
    has_num: bool,
    /// Whether the current function may use constructs the JIT refuses.
    unstable: bool,
    /// Whether the current function may assign globals.
    writes_globals: bool,
    /// Calls being generated around the expression being generated (in their arguments).
    call_depth: usize,
    /// Loops enclosing the code being written, within its function.
    loops: usize,
    /// Estimated times the code being written runs per call of its function.
    mult: u64,
    /// Estimated statements a call of the current function executes so far.
    cost: u64,
    budget: u64,
    /// The return kind of the current function.
    ret: Kind,
    /// Per function: how many times the top-level code has called it.
    top_calls: Vec<usize>,
}

// The program and its top-level code.
impl Gen {
    fn new(seed: u64) -> Gen {
        let mut rng = Rng::new(seed);
        let risk = if rng.chance(RISKY_PROGRAMS) { rng.pick(&[0.02, 0.05, 0.1]) } else { 0.0 };
        Gen {
            rng,
            risk,
            out: String::new(),
            indent: 0,
            next_name: 0,
            globals: Vec::new(),
            fns: Vec::new(),
            scopes: Vec::new(),
            callable: 0,
            has_num: false,
            unstable: false,
            writes_globals: false,
            call_depth: 0,
            loops: 0,
            mult: 1,
            cost: 0,
            budget: CALL_BUDGET,
            ret: Kind::Int,
            top_calls: Vec::new(),
        }
    }

    fn program(&mut self, seed: u64) {
        let risky = if self.risk > 0.0 { format!(" (risky: {})", self.risk) } else { String::new() };
        self.line(&format!("# generated by tests/differential.rs from seed {seed}{risky}"));
        self.declare_globals();
        for index in 0..self.rng.int(1, 4) as usize {
            self.line("");
            let sig = self.function(index);
            self.fns.push(sig);
        }
        self.line("");
        self.top_level();
    }

    fn line(&mut self, text: &str) {
        if !text.is_empty() {
            self.out.push_str(&"    ".repeat(self.indent));
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}{}", self.next_name)
    }

    fn risky(&mut self) -> bool {
        self.risk > 0.0 && self.rng.chance(self.risk)
    }

    /// One to three scalar globals (a `Dyn` one changes type when the top level reassigns it),
    /// and sometimes a global array.
    fn declare_globals(&mut self) {
        for _ in 0..self.rng.int(1, 3) {
            let kind = self.rng.pick(&[Kind::Int, Kind::Float, Kind::Dyn]);
            let name = self.fresh("g");
            let value = self.scalar_literal(kind);
            self.line(&format!("let {name} = {value}"));
            self.globals.push(Var::new(name, kind, VAR_BOUND, true));
        }
        if self.rng.chance(0.3) {
            let kind = self.rng.pick(&[Kind::IntArray, Kind::FloatArray]);
            let name = self.fresh("ga");
            let value = self.new_array(kind);
            self.line(&format!("let {name} = {value}"));
            self.globals.push(Var::new(name, kind, 0, false));
        }
    }

    /// A literal for a global or a top-level argument of a scalar kind.
    fn scalar_literal(&mut self, kind: Kind) -> String {
        match kind {
            Kind::Int | Kind::Depth => self.int_literal(VAR_BOUND).text,
            Kind::Float => self.float_literal().text,
            Kind::Num | Kind::Dyn if self.rng.chance(0.5) => self.int_literal(VAR_BOUND).text,
            Kind::Num | Kind::Dyn => self.float_literal().text,
            _ => self.rng.pick(&["true", "false"]).to_string(),
        }
    }

    fn new_array(&mut self, kind: Kind) -> String {
        let len = if self.risky() { 0 } else { self.rng.int(1, MAX_ARRAY_LEN as i64) };
        let fill = if kind == Kind::IntArray {
            self.rng.pick(&["0", "1", "-3"])
        } else {
            self.rng.pick(&["0.0", "0.5", "-1.25"])
        };
        format!("array({len}, {fill})")
    }

    /// The top-level code: arrays, then every function called at least three times, with global
    /// reassignments between calls, then the final state of the arrays and globals.
    fn top_level(&mut self) {
        self.scopes = vec![Vec::new()];
        self.indent = 0;
        self.has_num = false;
        self.top_calls = vec![0; self.fns.len()];
        self.top_level_arrays();
        let mut slots: Vec<usize> = Vec::new();
        for f in 0..self.fns.len() {
            let calls = self.rng.int(3, 5) as usize;
            slots.extend(std::iter::repeat_n(f, calls));
        }
        self.rng.shuffle(&mut slots);
        let mut spent = 0;
        let reassigns = self.rng.chance(REASSIGNING_PROGRAMS);
        for f in slots {
            if reassigns && self.rng.chance(0.2) {
                self.reassign_global();
            }
            self.call_event(f, &mut spent);
        }
        let names: Vec<String> = self.scopes[0].iter().chain(&self.globals).map(|v| v.name.clone()).collect();
        for name in names {
            self.line(&format!("print({name})"));
        }
    }

    /// Two arrays of each kind that a function takes, of different lengths, some filled.
    fn top_level_arrays(&mut self) {
        for kind in [Kind::IntArray, Kind::FloatArray] {
            if !self.fns.iter().any(|f| f.params.contains(&kind)) {
                continue;
            }
            for _ in 0..2 {
                let name = self.fresh("a");
                let value = self.new_array(kind);
                self.line(&format!("let {name} = {value}"));
                if self.rng.chance(0.5) {
                    self.fill_array(&name, kind);
                }
                self.declare(Var::new(name, kind, 0, false));
            }
        }
    }

    fn fill_array(&mut self, name: &str, kind: Kind) {
        let k = self.fresh("k");
        let value = if kind == Kind::IntArray { format!("{k} * 7 % 11 - 5") } else { format!("{k} * 0.75 - 2.5") };
        self.line(&format!("for {k} in range(len({name})) {{"));
        self.line(&format!("    {name}[{k}] = {value}"));
        self.line("}");
    }

    fn reassign_global(&mut self) {
        if self.globals.is_empty() {
            return;
        }
        let global = self.rng.pick(&self.globals.clone());
        let value = if global.kind.is_array() { self.new_array(global.kind) } else { self.scalar_literal(global.kind) };
        self.line(&format!("{} = {value}", global.name));
    }

    /// One or more top-level calls of function `f` whose results are printed.
    fn call_event(&mut self, f: usize, spent: &mut u64) {
        let cost = self.fns[f].cost;
        let reps = self.rng.int(2, 6) as u64;
        let can_loop = *spent + reps * cost <= PROGRAM_BUDGET;
        match self.rng.below(if can_loop { 5 } else { 3 }) {
            0 => {
                let call = self.top_call(f, None);
                self.line(&format!("print({call})"));
                *spent += cost;
            }
            1 => {
                let (first, second) = (self.top_call(f, None), self.top_call(f, None));
                self.line(&format!("print(\"{}\", {first}, {second})", self.fns[f].name));
                *spent += 2 * cost;
            }
            2 => {
                let result = self.fresh("r");
                let call = self.top_call(f, None);
                self.line(&format!("let {result} = {call}"));
                self.line(&format!("print({result}, {result} == {result})"));
                *spent += cost;
            }
            _ => {
                let k = self.fresh("k");
                self.line(&format!("for {k} in range({reps}) {{"));
                self.indent += 1;
                let call = self.top_call(f, Some(&k));
                self.line(&format!("print({k}, {call})"));
                self.indent -= 1;
                self.line("}");
                *spent += reps * cost;
            }
        }
    }

    /// A call of function `f` from the top level; `k` is an enclosing loop's counter. The `Num`
    /// parameters get ints at the first call of the function, floats at the second, then either,
    /// so that both specializations run.
    fn top_call(&mut self, f: usize, k: Option<&str>) -> String {
        let sig = self.fns[f].clone();
        let num = match self.top_calls[f] {
            0 => Kind::Int,
            1 => Kind::Float,
            _ => self.rng.pick(&[Kind::Int, Kind::Float]),
        };
        self.top_calls[f] += 1;
        let args: Vec<String> =
            sig.params.iter().map(|&p| self.top_argument(if p == Kind::Num { num } else { p }, k)).collect();
        format!("{}({})", sig.name, args.join(", "))
    }

    /// An argument of the top-level code: a literal, an array, or made from the loop counter `k`.
    fn top_argument(&mut self, kind: Kind, k: Option<&str>) -> String {
        if !kind.is_array() && self.risky() && self.rng.chance(0.15) {
            return self.rng.pick(&["true", "1.5", "-1", "0"]).to_string();
        }
        let looped = k.filter(|_| self.rng.chance(0.6));
        match (kind, looped) {
            (Kind::IntArray | Kind::FloatArray, _) => {
                self.array_of(kind).expect("the top level makes arrays of each kind")
            }
            (Kind::Depth, Some(k)) => k.to_string(),
            (Kind::Depth, None) => self.rng.int(0, MAX_RECURSION as i64).to_string(),
            (Kind::Bool, Some(k)) => format!("{k} % 2 == 0"),
            (Kind::Int, Some(k)) => self.rng.pick(&[k.to_string(), format!("{k} * 3 - 5"), format!("{k} * 1000003")]),
            (Kind::Float, Some(k)) => self.rng.pick(&[format!("{k} * 0.25"), format!("{k} / 3"), format!("{k} - 0.5")]),
            _ => self.scalar_literal(kind),
        }
    }
}

// Functions and statements.
impl Gen {
    /// Function number `index` (`f1`, `f2`, ...), which may call the functions before it.
    fn function(&mut self, index: usize) -> Sig {
        let recursive = self.rng.chance(0.2);
        let params = self.params(recursive);
        self.has_num = params.contains(&Kind::Num);
        self.unstable = self.rng.chance(UNSTABLE_FUNCTIONS);
        self.writes_globals = self.rng.chance(GLOBAL_WRITERS);
        let ret = [Kind::Int, Kind::Float, Kind::Bool, Kind::Num, Kind::Dyn]
            [self.rng.weighted(&[3, 3, 1, 3 * u32::from(self.has_num), 2 * u32::from(self.unstable)])];
        let name = format!("f{}", index + 1);
        let names: Vec<String> = (1..=params.len()).map(|i| format!("p{i}")).collect();
        self.line(&format!("fn {name}({}) {{", names.join(", ")));
        self.scopes = vec![params.iter().zip(&names).map(|(&kind, name)| Var::param(name, kind)).collect()];
        self.callable = index;
        self.loops = 0;
        self.mult = 1;
        self.cost = 0;
        self.ret = ret;
        self.budget = if recursive { CALL_BUDGET / (MAX_RECURSION + 1) } else { CALL_BUDGET };
        self.indent = 1;
        if recursive {
            self.recursion_prelude(&name, &params, &names);
        }
        self.body();
        let result = self.value(ret, 2);
        self.line(&format!("return {}", result.text));
        self.indent = 0;
        self.line("}");
        let cost = self.cost.max(1) * if recursive { MAX_RECURSION + 1 } else { 1 };
        Sig { name, params, ret, cost }
    }

    /// One to three parameters, at least one of them a number; a recursive function's depth first.
    fn params(&mut self, recursive: bool) -> Vec<Kind> {
        let mut params = vec![self.rng.pick(&[Kind::Num, Kind::Num, Kind::Int, Kind::Float])];
        for _ in 0..self.rng.int(0, 2) {
            let kind = [Kind::Num, Kind::Int, Kind::Float, Kind::Bool, Kind::FloatArray, Kind::IntArray]
                [self.rng.weighted(&[4, 2, 2, 1, 2, 1])];
            params.push(kind);
        }
        self.rng.shuffle(&mut params);
        if recursive {
            params.insert(0, Kind::Depth);
        }
        params
    }

    /// The base case and the one recursive call of a recursive function, whose first parameter
    /// is the depth.
    fn recursion_prelude(&mut self, name: &str, params: &[Kind], names: &[String]) {
        let base = self.value(self.ret, 1);
        self.line(&format!("if {} <= 0 {{", names[0]));
        self.line(&format!("    return {}", base.text));
        self.line("}");
        let depth = &names[0];
        let mut args = vec![self.rng.pick(&[format!("{depth} - 1"), format!("{depth} // 2"), format!("{depth} - 2")])];
        for (&kind, name) in params.iter().zip(names).skip(1) {
            args.push(if kind.is_array() || self.rng.chance(0.6) { name.clone() } else { self.argument(kind) });
        }
        let result = self.fresh("v");
        self.line(&format!("let {result} = {name}({})", args.join(", ")));
        self.declare(Var::new(result, self.ret, VAR_BOUND, true));
    }

    /// The statements of a function body, most of the time with a loop among them.
    fn body(&mut self) {
        let n = self.rng.int(3, 8);
        let loop_at = if self.rng.chance(0.85) { self.rng.int(0, n - 1) } else { -1 };
        for i in 0..n {
            if self.cost >= self.budget {
                break;
            }
            if i != loop_at {
                self.statement(0, false);
                continue;
            }
            self.cost += self.mult;
            match self.rng.weighted(&[6, 2, 2 * u32::from(self.unstable)]) {
                0 => self.for_statement(0),
                1 => self.while_statement(0),
                _ => self.type_change(0),
            }
        }
    }

    fn declare(&mut self, var: Var) {
        self.scopes.last_mut().expect("a scope").push(var);
    }

    /// Between `min` and `max` statements; stops early when the budget is spent or a statement
    /// jumps (`break`, `continue`).
    fn statements(&mut self, depth: u32, min: i64, max: i64) {
        for i in 0..self.rng.int(min, max) {
            if self.cost >= self.budget || self.statement(depth, i > 0) {
                break;
            }
        }
    }

    /// One statement (a bare `break` or `continue` only if `may_jump`); returns whether it was a
    /// jump that must end its block.
    fn statement(&mut self, depth: u32, may_jump: bool) -> bool {
        self.cost += self.mult;
        let nest = u32::from(depth < MAX_NESTING);
        let in_loop = u32::from(self.loops > 0);
        let arrays = u32::from(self.visible().any(|v| v.kind.is_array()));
        let globals = u32::from(self.writes_globals && self.globals.iter().any(|g| g.assignable));
        let unstable = u32::from(self.unstable);
        let weights = [
            4,                             // let
            4,                             // assignment
            3,                             // compound assignment
            3 * arrays,                    // array store
            3 * nest,                      // if
            3 * nest,                      // for
            nest,                          // while
            1,                             // call
            2 * in_loop,                   // if ... { break } or { continue }
            1,                             // if ... { return }
            2 * globals,                   // global write
            nest * unstable,               // a local changes type in a loop
            in_loop * u32::from(may_jump), // bare break or continue
        ];
        match self.rng.weighted(&weights) {
            0 => self.let_statement(),
            1 => self.assignment(),
            2 => self.compound_assignment(),
            3 => self.array_store(),
            4 => self.if_statement(depth),
            5 => self.for_statement(depth),
            6 => self.while_statement(depth),
            7 => self.call_statement(),
            8 => self.conditional_jump(),
            9 => self.conditional_return(),
            10 => self.global_write(),
            11 => self.type_change(depth),
            _ => {
                let jump = self.rng.pick(&["break", "continue"]);
                self.line(jump);
                return true;
            }
        }
        false
    }

    fn let_statement(&mut self) {
        let mut kinds = vec![Kind::Int, Kind::Int, Kind::Float, Kind::Float, Kind::Bool];
        if self.has_num {
            kinds.extend([Kind::Num, Kind::Num]);
        }
        let kind = self.rng.pick(&kinds);
        let value = self.value(kind, 2);
        let name = self.fresh("v");
        self.line(&format!("let {name} = {}", value.text));
        self.declare(Var::new(name, kind, VAR_BOUND, true));
    }

    /// A value that a variable of `kind` may hold: ints within [`VAR_BOUND`]; an int or a float
    /// for `Dyn`.
    fn value(&mut self, kind: Kind, depth: u32) -> Expr {
        match kind {
            Kind::Int | Kind::Num => {
                let e = self.numeric(kind, depth);
                self.fit(e, VAR_BOUND)
            }
            Kind::Dyn => {
                let kind = self.rng.pick(&[Kind::Int, Kind::Float]);
                self.value(kind, depth)
            }
            Kind::Float => self.numeric(Kind::Float, depth),
            _ => self.bool_expr(depth),
        }
    }

    /// A visible assignable local (or parameter) of a scalar kind.
    fn assignable_local(&mut self, numeric_only: bool) -> Option<Var> {
        let candidates: Vec<Var> = self
            .scopes
            .iter()
            .flatten()
            .filter(|v| v.assignable && !v.kind.is_array() && !(numeric_only && v.kind == Kind::Bool))
            .cloned()
            .collect();
        (!candidates.is_empty()).then(|| self.rng.pick(&candidates))
    }

    fn assignment(&mut self) {
        let Some(var) = self.assignable_local(false) else { return self.let_statement() };
        let value = self.value(var.kind, 2);
        self.line(&format!("{} = {}", var.name, value.text));
    }

    fn compound_assignment(&mut self) {
        let Some(var) = self.assignable_local(true) else { return self.let_statement() };
        self.compound(&var.name, var.kind);
    }

    /// `target op= e` keeping the target's kind, then, for an int that may have grown, a
    /// statement that brings it back within [`VAR_BOUND`]. `target` must read the same place twice.
    fn compound(&mut self, target: &str, kind: Kind) {
        let ops: &[&str] =
            if kind == Kind::Float { &["+=", "-=", "*=", "/=", "//=", "%="] } else { &["+=", "-=", "*=", "//=", "%="] };
        let op = self.rng.pick(ops);
        let rhs_kind = match kind {
            Kind::Float => self.any_operand(),
            Kind::Num => self.rng.pick(&[Kind::Int, Kind::Num]),
            _ => Kind::Int,
        };
        let rhs = match op {
            "+=" | "-=" => {
                let e = self.numeric(rhs_kind, 2);
                self.fit(e, 1 << 62)
            }
            "*=" => {
                let e = self.numeric(rhs_kind, 1);
                self.fit(e, 1 << 31)
            }
            "%=" => self.divisor(rhs_kind, 1, VAR_BOUND),
            _ => self.divisor(rhs_kind, 1, INT_LIMIT),
        };
        self.line(&format!("{target} {op} {}", rhs.text));
        if kind != Kind::Float && matches!(op, "+=" | "-=" | "*=") && !self.risky() {
            self.normalize(target, kind);
        }
    }

    /// A statement that brings the int in `target` back within [`VAR_BOUND`] (clamping with
    /// `min` and `max` only for an `Int`: on a float it would mix types).
    fn normalize(&mut self, target: &str, kind: Kind) {
        let m = self.rng.pick(&MODULI[1..]);
        let text = match self.rng.below(if kind == Kind::Int { 4 } else { 3 }) {
            0 => format!("{target} %= {m}"),
            1 => format!("{target} = {target} % {m}"),
            2 => format!("if {target} > {m} or {target} < -{m} {{ {target} %= {m} }}"),
            _ => format!("{target} = max(min({target}, {m}), -{m})"),
        };
        self.line(&text);
    }

    fn array_store(&mut self) {
        let Some(array) = self.pick_var(|v| v.kind.is_array()) else { return self.let_statement() };
        let int_array = array.kind == Kind::IntArray;
        if self.rng.chance(0.5) {
            let index = self.index(&array.name);
            let value = match (int_array, self.risky()) {
                (true, false) => self.value(Kind::Int, 2),
                (true, true) => self.numeric(Kind::Float, 1),
                (false, _) => {
                    let kind = self.any_number();
                    self.numeric(kind, 2)
                }
            };
            self.line(&format!("{}[{index}] = {}", array.name, value.text));
        } else {
            let index = self.simple_index(&array.name);
            let kind = match (int_array, self.risky()) {
                (true, false) => Kind::Int,
                (true, true) => Kind::Float,
                (false, _) => Kind::Float,
            };
            self.compound(&format!("{}[{index}]", array.name), kind);
        }
    }

    fn if_statement(&mut self, depth: u32) {
        let condition = self.condition(2);
        self.line(&format!("if {} {{", condition.text));
        self.block(depth);
        if self.rng.chance(0.2) {
            let condition = self.condition(2);
            self.line(&format!("}} else if {} {{", condition.text));
            self.block(depth);
        }
        if self.rng.chance(0.4) {
            self.line("} else {");
            self.block(depth);
        }
        self.line("}");
    }

    /// The body of a block (without its braces), in a new scope.
    fn block(&mut self, depth: u32) {
        self.indent += 1;
        self.scopes.push(Vec::new());
        self.statements(depth + 1, 1, 3);
        self.scopes.pop();
        self.indent -= 1;
    }

    /// The most iterations a new loop may make within the budget, if a loop is worth it.
    fn affordable_iterations(&self) -> Option<u64> {
        let left = self.budget.saturating_sub(self.cost);
        let max = (left / (self.mult * 4)).min(MAX_LOOP);
        (max >= 2).then_some(max)
    }

    /// Enters a loop body of at most `count` iterations with `vars` in scope; returns the old `mult`.
    fn enter_loop(&mut self, count: u64, vars: Vec<Var>) -> u64 {
        let saved = self.mult;
        self.mult = self.mult.saturating_mul(count.max(1));
        self.loops += 1;
        self.indent += 1;
        self.scopes.push(vars);
        saved
    }

    fn leave_loop(&mut self, saved_mult: u64) {
        self.scopes.pop();
        self.indent -= 1;
        self.loops -= 1;
        self.mult = saved_mult;
        self.line("}");
    }

    fn for_statement(&mut self, depth: u32) {
        let Some(max) = self.affordable_iterations() else { return self.let_statement() };
        let (range, count, var) = self.range(max);
        self.line(&format!("for {} in {range} {{", var.name));
        let saved = self.enter_loop(count, vec![var]);
        self.statements(depth + 1, 1, 4);
        self.leave_loop(saved);
    }

    /// A `range(...)` of at most `max` ints, its length bound, and its loop variable.
    fn range(&mut self, max: u64) -> (String, u64, Var) {
        let name = self.fresh("i");
        let arrays: Vec<Var> = self.visible().filter(|v| v.kind.is_array()).cloned().collect();
        let ints: Vec<Var> = self.visible().filter(|v| v.kind == Kind::Int).cloned().collect();
        let len_loop = u32::from(max >= MAX_ARRAY_LEN && !arrays.is_empty());
        let max = max as i64;
        match self.rng.weighted(&[2, 2, 3, 3 * len_loop, 2, u32::from(!ints.is_empty())]) {
            0 => {
                let n = self.rng.int(0, max);
                (format!("range({n})"), n as u64, Var::counter(name, n as u128))
            }
            1 => {
                let (a, n) = (self.rng.int(-20, 20), self.rng.int(0, max));
                (format!("range({a}, {})", a + n), n as u64, Var::counter(name, (a.abs() + n) as u128))
            }
            2 => {
                let (a, n, step) = (self.rng.int(-30, 30), self.rng.int(0, max), self.rng.pick(&[2, 3, 5, -1, -2, -3]));
                let b = match n {
                    0 => a,
                    _ if step > 0 => a + step * (n - 1) + 1,
                    _ => a + step * (n - 1) - 1,
                };
                let bound = a.abs().max(b.abs()) as u128;
                (format!("range({a}, {b}, {step})"), n as u64, Var::counter(name, bound))
            }
            3 => {
                let array = self.rng.pick(&arrays).name;
                let var = Var { indexes: Some(array.clone()), ..Var::counter(name, u128::from(MAX_ARRAY_LEN)) };
                (format!("range(len({array}))"), MAX_ARRAY_LEN, var)
            }
            4 => {
                let e = self.numeric(Kind::Int, 1);
                let n = self.rng.int(2, max);
                (format!("range({} % {n})", e.operand()), n as u64, Var::counter(name, n as u128))
            }
            _ => {
                let x = self.rng.pick(&ints);
                let n = self.rng.int(1, max);
                (format!("range({0}, {0} + {n})", x.name), n as u64, Var::counter(name, x.bound + n as u128))
            }
        }
    }

    /// A `while` loop that always ends: a counter declared before it is incremented first thing
    /// in the body and tested by the condition (or by a `break`).
    fn while_statement(&mut self, depth: u32) {
        let Some(max) = self.affordable_iterations() else { return self.let_statement() };
        let n = self.rng.int(1, max as i64);
        let w = self.fresh("w");
        self.line(&format!("let {w} = 0"));
        self.declare(Var::counter(w.clone(), n as u128 + 1));
        let saved = self.mult;
        self.mult = self.mult.saturating_mul(n as u64);
        let header = match self.rng.below(4) {
            0 => format!("while {w} < {n} {{"),
            1 => format!("while {w} < {n} and {} {{", self.condition(1).operand()),
            2 => format!("while {} and {w} < {n} {{", self.condition(1).operand()),
            _ => "while true {".to_string(),
        };
        self.mult = saved;
        self.line(&header);
        let saved = self.enter_loop(n as u64, Vec::new());
        self.line(&format!("{w} += 1"));
        if header == "while true {" {
            self.line(&format!("if {w} > {n} {{ break }}"));
        }
        self.statements(depth + 1, 1, 4);
        self.leave_loop(saved);
    }

    fn call_statement(&mut self) {
        match self.call(None) {
            Some(call) => self.line(&call.text),
            None => self.let_statement(),
        }
    }

    fn conditional_jump(&mut self) {
        let condition = self.condition(1);
        let jump = self.rng.pick(&["break", "continue"]);
        self.line(&format!("if {} {{ {jump} }}", condition.text));
    }

    fn conditional_return(&mut self) {
        let condition = self.condition(1);
        let value = self.value(self.ret, 1);
        self.line(&format!("if {} {{", condition.text));
        self.indent += 1;
        self.scopes.push(Vec::new());
        if self.rng.chance(0.3) {
            self.let_statement();
        }
        self.line(&format!("return {}", value.text));
        self.scopes.pop();
        self.indent -= 1;
        self.line("}");
    }

    fn global_write(&mut self) {
        let globals: Vec<Var> = self.globals.iter().filter(|g| g.assignable).cloned().collect();
        let global = self.rng.pick(&globals);
        if global.kind != Kind::Float && self.rng.chance(0.5) {
            self.compound(&global.name, global.kind);
        } else {
            let value = self.value(global.kind, 1);
            self.line(&format!("{} = {}", global.name, value.text));
        }
    }

    /// A loop in which a local changes type at one iteration: an int becomes a float, or the
    /// other way round. The JIT must refuse such a function and leave it to the interpreter.
    fn type_change(&mut self, depth: u32) {
        let Some(max) = self.affordable_iterations() else { return self.let_statement() };
        let n = self.rng.int(2, max.min(20) as i64);
        let at = self.rng.int(0, n - 1);
        let (v, i) = (self.fresh("v"), self.fresh("i"));
        let to_float = self.rng.chance(0.7);
        let init = self.value(if to_float { Kind::Int } else { Kind::Float }, 1);
        self.line(&format!("let {v} = {}", init.text));
        self.declare(Var::new(v.clone(), Kind::Dyn, VAR_BOUND, true));
        let switch = if to_float {
            self.rng.pick(&[
                format!("{v} = {v} + 0.5"),
                format!("{v} = float({v})"),
                format!("{v} /= 2"),
                format!("{v} *= 1.5"),
            ])
        } else {
            let converted = format!("floor(min(1e15, max(-1e15, {v})))");
            self.rng.pick(&[format!("{v} = {i}"), format!("{v} = {converted}"), format!("{v} = {i} * {i} - 7")])
        };
        self.line(&format!("for {i} in range({n}) {{"));
        let saved = self.enter_loop(n as u64, vec![Var::counter(i.clone(), n as u128)]);
        self.line(&format!("if {i} == {at} {{ {switch} }}"));
        self.line(&format!("{v} += {i}"));
        self.normalize(&v, Kind::Dyn);
        self.statements(depth + 1, 0, 2);
        self.leave_loop(saved);
    }
}

// Expressions.
impl Gen {
    fn visible(&self) -> impl Iterator<Item = &Var> {
        self.scopes.iter().flatten().chain(&self.globals)
    }

    fn pick_var(&mut self, wanted: impl Fn(&Var) -> bool) -> Option<Var> {
        let candidates: Vec<Var> = self.visible().filter(|v| wanted(v)).cloned().collect();
        (!candidates.is_empty()).then(|| self.rng.pick(&candidates))
    }

    fn array_of(&mut self, kind: Kind) -> Option<String> {
        self.pick_var(|v| v.kind == kind).map(|v| v.name)
    }

    /// A numeric kind that code may compute and store: `Int`, `Float`, or `Num` when there is one.
    fn any_number(&mut self) -> Kind {
        if self.has_num {
            self.rng.pick(&[Kind::Int, Kind::Float, Kind::Num])
        } else {
            self.rng.pick(&[Kind::Int, Kind::Float])
        }
    }

    /// A numeric kind for an operand whose type does not matter to the result (a comparison, `/`,
    /// a math builtin, arithmetic with a float): [`Gen::any_number`] or `Dyn`.
    fn any_operand(&mut self) -> Kind {
        if self.rng.chance(0.15) { Kind::Dyn } else { self.any_number() }
    }

    /// `e`, or `e` brought within `max` (for ints) by `//`, `%` or clamping, unless risky.
    fn fit(&mut self, e: Expr, max: u128) -> Expr {
        if e.kind == Kind::Float || e.bound <= max || self.risky() {
            return e;
        }
        match self.rng.below(3) {
            0 if e.bound <= INT_LIMIT => {
                let k = e.bound / max + 1;
                Expr::op(format!("{} // {k}", e.operand()), e.kind, max)
            }
            1 if e.kind == Kind::Int => Expr::atom(format!("max(min({}, {max}), -{max})", e.text), e.kind, max),
            _ => {
                let moduli: Vec<u128> = MODULI.iter().copied().filter(|&m| m <= max + 1).collect();
                let m = self.rng.pick(&moduli);
                Expr::op(format!("{} % {m}", e.operand()), e.kind, m - 1)
            }
        }
    }

    /// A numeric expression of `kind`.
    fn numeric(&mut self, kind: Kind, depth: u32) -> Expr {
        if kind == Kind::Dyn || depth == 0 || self.rng.chance(0.3) {
            return self.leaf(kind);
        }
        match self.rng.weighted(&[6, 2, 2, 1, 2, 1, 2 * u32::from(kind == Kind::Int)]) {
            0 => self.arithmetic(kind, depth),
            1 => self.division(kind, depth),
            2 => self.power(kind, depth),
            3 => {
                let e = self.numeric(kind, depth - 1);
                Expr::op(format!("-{}", e.operand()), e.kind, e.bound)
            }
            4 => self.math_call(kind, depth),
            5 => self.conversion(kind, depth),
            _ => self.bitwise(depth),
        }
    }

    /// Operand kinds whose arithmetic gives `kind`.
    fn operand_kinds(&mut self, kind: Kind) -> (Kind, Kind) {
        use Kind::{Float, Int, Num};
        match kind {
            Int => (Int, Int),
            Num => self.rng.pick(&[(Num, Int), (Int, Num), (Num, Num)]),
            _ => {
                let other = self.any_operand();
                self.rng.pick(&[(Float, Float), (Float, other), (other, Float)])
            }
        }
    }

    /// `a + b`, `a - b` or `a * b`, with the operands brought down when the int result could
    /// overflow (unless risky; a risky program may also add a bool).
    fn arithmetic(&mut self, kind: Kind, depth: u32) -> Expr {
        let (ka, kb) = self.operand_kinds(kind);
        let mut a = if self.risky() && self.rng.chance(0.1) { self.bool_leaf() } else { self.numeric(ka, depth - 1) };
        let mut b = self.numeric(kb, depth - 1);
        let op = self.rng.pick(&["+", "-", "*"]);
        if kind != Kind::Float && combine(op, a.bound, b.bound) > INT_LIMIT && !self.risky() {
            b = self.fit(b, 999);
            if combine(op, a.bound, b.bound) > INT_LIMIT {
                a = self.fit(a, 1 << 40);
            }
        }
        let bound = combine(op, a.bound, b.bound);
        Expr::op(format!("{} {op} {}", a.operand(), b.operand()), join(a.kind, b.kind), bound)
    }

    /// An int from `& | ^ ~ << >>`. Within `-2**k..2**k`, and, or, xor and not stay there;
    /// a `<<` has its operand and count brought down so that it cannot overflow, and counts are
    /// never negative (unless risky).
    fn bitwise(&mut self, depth: u32) -> Expr {
        let a = self.numeric(Kind::Int, depth - 1);
        let within = |bound: u128| (bound + 1).next_power_of_two().min(HUGE);
        match self.rng.below(5) {
            0 => {
                let b = self.numeric(Kind::Int, depth - 1);
                let op = self.rng.pick(&["&", "|", "^"]);
                let bound = within(a.bound.max(b.bound));
                Expr::op(format!("{} {op} {}", a.operand(), b.operand()), Kind::Int, bound)
            }
            1 => Expr::op(format!("~{}", a.operand()), Kind::Int, a.bound + 1),
            2 => {
                let (count, _) = self.shift_count(100);
                Expr::op(format!("{} >> {}", a.operand(), count), Kind::Int, a.bound)
            }
            _ => {
                let a = self.fit(a, 1 << 20);
                let (count, risky) = self.shift_count(39);
                let bound = if risky { HUGE } else { a.bound.saturating_mul(1 << 39).min(HUGE) };
                Expr::op(format!("{} << {}", a.operand(), count), Kind::Int, bound)
            }
        }
    }

    /// A shift count in `0..=max`, a literal or an int brought into range by `%`, or when risky
    /// any int, negative ones included (then also `true`).
    fn shift_count(&mut self, max: i64) -> (String, bool) {
        if self.risky() {
            let e = self.numeric(Kind::Int, 1);
            return (format!("({})", e.text), true);
        }
        if self.rng.chance(0.5) {
            let literals: Vec<i64> = [0, 1, 3, 17, 31, 39, 63, 64, 100].into_iter().filter(|c| *c <= max).collect();
            return (self.rng.pick(&literals).to_string(), false);
        }
        let e = self.numeric(Kind::Int, 1);
        (format!("({} % {})", e.operand(), max + 1), false)
    }

    fn division(&mut self, kind: Kind, depth: u32) -> Expr {
        let op = if kind == Kind::Float { self.rng.pick(&["/", "/", "//", "%"]) } else { self.rng.pick(&["//", "%"]) };
        let (ka, kb) = if op == "/" { (self.any_operand(), self.any_operand()) } else { self.operand_kinds(kind) };
        let a = self.numeric(ka, depth - 1);
        let b = self.divisor(kb, depth - 1, INT_LIMIT);
        let result = if op == "/" { Kind::Float } else { join(a.kind, b.kind) };
        let bound = if op == "%" { b.bound } else { a.bound };
        Expr::op(format!("{} {op} {}", a.operand(), b.operand()), result, bound)
    }

    /// An expression of `kind` that is never zero (unless risky), within `max` when an int.
    fn divisor(&mut self, kind: Kind, depth: u32, max: u128) -> Expr {
        if self.risky() {
            return self.numeric(kind, depth);
        }
        match kind {
            Kind::Float => self.float_divisor(depth),
            Kind::Int => self.int_divisor(depth, max),
            _ => {
                let e = self.numeric(kind, depth);
                let e = self.fit(e, max - 1);
                Expr::op(format!("abs({}) + 1", e.text), e.kind, e.bound + 1)
            }
        }
    }

    fn int_divisor(&mut self, depth: u32, max: u128) -> Expr {
        let arrays: Vec<Var> = self.visible().filter(|v| v.kind.is_array()).cloned().collect();
        match self.rng.weighted(&[3, 2, 1, u32::from(!arrays.is_empty())]) {
            0 => {
                let literals: Vec<i64> =
                    NONZERO_INTS.iter().copied().filter(|v| u128::from(v.unsigned_abs()) <= max).collect();
                let v = self.rng.pick(&literals);
                Expr::literal(v.to_string(), Kind::Int, u128::from(v.unsigned_abs()))
            }
            1 => {
                let e = self.numeric(Kind::Int, depth);
                let e = self.fit(e, max - 3);
                let k = self.rng.int(1, 3) as u128;
                Expr::op(format!("abs({}) + {k}", e.text), Kind::Int, e.bound + k)
            }
            2 => {
                let e = self.numeric(Kind::Int, depth);
                let m = self.rng.int(2, 9) as u128;
                Expr::op(format!("{} % {m} + 1", e.operand()), Kind::Int, m)
            }
            _ => Expr::atom(format!("len({})", self.rng.pick(&arrays).name), Kind::Int, u128::from(MAX_ARRAY_LEN)),
        }
    }

    fn float_divisor(&mut self, depth: u32) -> Expr {
        match self.rng.weighted(&[3, 2, 1, 1]) {
            0 => Expr::literal(self.rng.pick(&NONZERO_FLOATS).to_string(), Kind::Float, 0),
            1 => {
                let kind = self.any_operand();
                let e = self.numeric(kind, depth);
                Expr::op(format!("abs({}) + 0.5", e.text), Kind::Float, 0)
            }
            2 => {
                let x = self.pure_float();
                Expr::op(format!("{x} * {x} + 1.0"), Kind::Float, 0)
            }
            _ => {
                let d = self.int_divisor(depth, INT_LIMIT);
                Expr::atom(format!("float({})", d.text), Kind::Float, 0)
            }
        }
    }

    /// A float variable or literal: cheap and free of side effects, so it may be read twice.
    fn pure_float(&mut self) -> String {
        match self.pick_var(|v| v.kind == Kind::Float) {
            Some(var) if self.rng.chance(0.8) => var.name,
            _ => self.float_literal().operand(),
        }
    }

    fn power(&mut self, kind: Kind, depth: u32) -> Expr {
        match kind {
            Kind::Float => self.float_power(depth),
            Kind::Int if self.rng.chance(0.3) => self.literal_power(),
            _ => {
                let k = self.rng.int(0, 4) as u32;
                let base = self.numeric(kind, depth - 1);
                let base = if pow_bound(base.bound, k) > INT_LIMIT { self.fit(base, ROOTS[k as usize]) } else { base };
                Expr::op(format!("{} ** {k}", base.operand()), base.kind, pow_bound(base.bound, k))
            }
        }
    }

    /// A small literal base to a power up to the largest that fits (one more when risky).
    fn literal_power(&mut self) -> Expr {
        let (base, max_exp): (i64, u32) =
            self.rng.pick(&[(2, 62), (-2, 62), (3, 39), (-3, 39), (10, 18), (7, 22), (-1, 99), (0, 5)]);
        let exp = if self.risky() { max_exp + 1 } else { self.rng.int(0, i64::from(max_exp)) as u32 };
        let base_text = if base < 0 { format!("({base})") } else { base.to_string() };
        Expr::op(format!("{base_text} ** {exp}"), Kind::Int, pow_bound(u128::from(base.unsigned_abs()), exp))
    }

    fn float_power(&mut self, depth: u32) -> Expr {
        match self.rng.below(3) {
            0 => {
                let base = self.numeric(Kind::Float, depth - 1);
                let exp =
                    if self.risky() { "-1.5" } else { self.rng.pick(&["0.5", "2.0", "3.0", "1.5", "0.0", "2", "3"]) };
                Expr::op(format!("{} ** {exp}", base.operand()), Kind::Float, 0)
            }
            1 => {
                let (kb, ke) = (self.any_operand(), self.any_operand());
                let (base, exp) = (self.numeric(kb, depth - 1), self.numeric(ke, depth - 1));
                Expr::op(format!("(abs({}) + 0.5) ** {}", base.text, exp.operand()), Kind::Float, 0)
            }
            _ => {
                let kind = if self.has_num { self.rng.pick(&[Kind::Int, Kind::Num]) } else { Kind::Int };
                let base = self.divisor(kind, depth - 1, INT_LIMIT);
                let k = self.rng.int(1, 3);
                Expr::op(format!("{} ** -{k}", base.operand()), Kind::Float, 0)
            }
        }
    }

    fn math_call(&mut self, kind: Kind, depth: u32) -> Expr {
        let arrays = u32::from(self.visible().any(|v| v.kind.is_array()));
        match (kind, self.rng.weighted(&[3, 1, 2, arrays])) {
            (Kind::Float, 0) => {
                let f = self.rng.pick(&["sqrt", "sin", "cos", "tan", "exp", "log"]);
                let arg_kind = self.any_operand();
                let arg = self.numeric(arg_kind, depth - 1);
                Expr::atom(format!("{f}({})", arg.text), Kind::Float, 0)
            }
            (Kind::Int, 3) => {
                let array = self.pick_var(|v| v.kind.is_array()).expect("an array").name;
                Expr::atom(format!("len({array})"), Kind::Int, u128::from(MAX_ARRAY_LEN))
            }
            (_, 0 | 1) => {
                let e = self.numeric(kind, depth - 1);
                Expr::atom(format!("abs({})", e.text), e.kind, e.bound)
            }
            _ => self.min_max(kind, depth),
        }
    }

    /// `min` or `max` of two or three values of `kind`. An unstable function may also take the
    /// `min` of an int and a float (which is one of them, unconverted) or of a whole array.
    fn min_max(&mut self, kind: Kind, depth: u32) -> Expr {
        let f = self.rng.pick(&["min", "max"]);
        if self.unstable && kind == Kind::Float && self.rng.chance(0.4) {
            return self.mixed_min_max(f, depth);
        }
        let mut args = Vec::new();
        for _ in 0..self.rng.int(2, 3) {
            args.push(self.numeric(kind, depth - 1));
        }
        let result = args.iter().map(|a| a.kind).reduce(join).expect("arguments");
        let bound = args.iter().map(|a| a.bound).max().unwrap_or(0);
        let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
        Expr::atom(format!("{f}({})", texts.join(", ")), result, bound)
    }

    /// A float made from `min` or `max` of an int and a float, or of a float array.
    fn mixed_min_max(&mut self, f: &str, depth: u32) -> Expr {
        if let Some(array) = self.array_of(Kind::FloatArray).filter(|_| self.rng.chance(0.3)) {
            return Expr::atom(format!("{f}({array})"), Kind::Float, 0);
        }
        let mut args = [self.numeric(Kind::Int, depth - 1).text, self.numeric(Kind::Float, depth - 1).text];
        self.rng.shuffle(&mut args);
        Expr::op(format!("{f}({}) * 1.0", args.join(", ")), Kind::Float, 0)
    }

    fn conversion(&mut self, kind: Kind, depth: u32) -> Expr {
        match kind {
            Kind::Int => self.int_conversion(depth),
            Kind::Float => {
                let arg_kind = self.any_operand();
                let arg = self.numeric(arg_kind, depth - 1);
                Expr::atom(format!("float({})", arg.text), Kind::Float, 0)
            }
            _ => self.leaf(kind),
        }
    }

    /// `int`, `floor` or `ceil` of a value that converts without error (unless risky). The main
    /// guard clamps with `max(-1e15, x)` first, which also turns a nan into `-1e15`.
    fn int_conversion(&mut self, depth: u32) -> Expr {
        let f = self.rng.pick(&["int", "floor", "ceil"]);
        if self.risky() {
            let e = self.numeric(Kind::Float, depth - 1);
            return Expr::atom(format!("{f}({})", e.text), Kind::Int, CONVERTED_BOUND);
        }
        match self.rng.weighted(&[5, u32::from(self.unstable), 3]) {
            0 => {
                let kind = self.any_operand();
                let x = self.numeric(kind, depth - 1);
                Expr::atom(format!("{f}(min(1e15, max(-1e15, float({}))))", x.text), Kind::Int, CONVERTED_BOUND)
            }
            1 => {
                let x = self.pure_float();
                Expr::op(format!("{x} == {x} and abs({x}) < 1e15 and {f}({x}) or 0"), Kind::Int, CONVERTED_BOUND)
            }
            _ => {
                let e = self.numeric(Kind::Int, depth - 1);
                match self.rng.below(4) {
                    0 => Expr::atom(format!("{f}(sin({}) * 1000.0)", e.text), Kind::Int, 1000),
                    1 => Expr::atom(format!("{f}(sqrt(abs({})))", e.text), Kind::Int, 3_037_000_500),
                    2 => Expr::atom(format!("{f}(float({}) / 3.0)", e.text), Kind::Int, e.bound / 3 + 1024),
                    _ => Expr::atom(format!("{f}({})", e.text), Kind::Int, e.bound),
                }
            }
        }
    }

    /// A variable (most likely), literal, array element or call of `kind`.
    fn leaf(&mut self, kind: Kind) -> Expr {
        let vars = u32::from(self.visible().any(|v| v.kind == kind));
        let literals = u32::from(kind != Kind::Num);
        let arrays = u32::from(self.visible().any(|v| Some(v.kind) == element_array(kind)));
        let found = match self.rng.weighted(&[8 * vars, 2 * literals, 3 * arrays, 1]) {
            0 => self.pick_var(|v| v.kind == kind).map(Expr::of_var),
            2 => self.array_load(kind),
            3 => self.call(Some(kind)),
            _ => None,
        };
        found.unwrap_or_else(|| self.literal(kind))
    }

    /// A literal of `kind`; for `Num`, a `Num` variable.
    fn literal(&mut self, kind: Kind) -> Expr {
        match kind {
            Kind::Int => self.int_literal(INT_LIMIT),
            Kind::Float => self.float_literal(),
            Kind::Dyn if self.rng.chance(0.5) => Expr { kind: Kind::Dyn, ..self.int_literal(VAR_BOUND) },
            Kind::Dyn => Expr { kind: Kind::Dyn, ..self.float_literal() },
            Kind::Num => {
                self.pick_var(|v| v.kind == Kind::Num).map_or_else(|| self.int_literal(VAR_BOUND), Expr::of_var)
            }
            _ => Expr::atom(self.rng.pick(&["true", "false"]), Kind::Bool, 0),
        }
    }

    /// An int literal within `max`: mostly small, sometimes near 2**62 or the int limit, written
    /// now and then in hex or with `_`.
    fn int_literal(&mut self, max: u128) -> Expr {
        let v = match self.rng.weighted(&[6, 3, 2]) {
            0 => self.rng.pick(&SMALL_INTS),
            1 => self.rng.int(-1_000_000, 1_000_000),
            _ => self.rng.pick(&BIG_INTS),
        };
        let v = if u128::from(v.unsigned_abs()) > max { self.rng.pick(&SMALL_INTS) } else { v };
        let text = if v > 9 && self.rng.chance(0.05) {
            format!("{v:#x}")
        } else if v.unsigned_abs() >= 100_000 && self.rng.chance(0.2) {
            group_digits(v)
        } else {
            v.to_string()
        };
        Expr::literal(text, Kind::Int, u128::from(v.unsigned_abs()))
    }

    fn float_literal(&mut self) -> Expr {
        let text = if self.rng.chance(0.4) {
            format!("{}.{}", self.rng.int(-40, 40), self.rng.pick(&["0", "5", "25", "125", "75", "1"]))
        } else {
            self.rng.pick(&FLOATS).to_string()
        };
        Expr::literal(text, Kind::Float, 0)
    }

    /// An element of an array of `kind` elements, at an index in range (unless risky).
    fn array_load(&mut self, kind: Kind) -> Option<Expr> {
        let array_kind = element_array(kind)?;
        let array = self.pick_var(|v| v.kind == array_kind)?;
        let index = self.index(&array.name);
        Some(Expr::atom(format!("{}[{index}]", array.name), kind, VAR_BOUND))
    }

    /// An index into `array`, in range unless risky.
    fn index(&mut self, array: &str) -> String {
        if self.risky() {
            let unguarded = self.numeric(Kind::Int, 1).text;
            return self.rng.pick(&[unguarded, format!("len({array})")]);
        }
        let counters = u32::from(self.visible().any(|v| v.indexes.as_deref() == Some(array)));
        match self.rng.weighted(&[4 * counters, 1, 3, 1, 1]) {
            0 => self.pick_var(|v| v.indexes.as_deref() == Some(array)).expect("a counter").name,
            1 => "0".to_string(),
            2 => format!("{} % len({array})", self.numeric(Kind::Int, 1).operand()),
            3 => format!("min(abs({}), len({array}) - 1)", self.numeric(Kind::Int, 1).text),
            _ => format!("len({array}) - 1"),
        }
    }

    /// An index into `array` that reads the same element twice in a row (for `a[i] op= e` and
    /// the statement that brings `a[i]` back within bounds).
    fn simple_index(&mut self, array: &str) -> String {
        let locals: Vec<Var> = self.scopes.iter().flatten().filter(|v| v.kind == Kind::Int).cloned().collect();
        match self.pick_var(|v| v.indexes.as_deref() == Some(array)) {
            Some(counter) if self.rng.chance(0.7) => counter.name,
            _ if !locals.is_empty() && self.rng.chance(0.5) => {
                format!("{} % len({array})", self.rng.pick(&locals).name)
            }
            _ => self.rng.pick(&["0".to_string(), format!("len({array}) - 1")]),
        }
    }

    /// A call of an earlier function whose result is of kind `want` (any for `None`), if one fits
    /// the budget. A function returning `Num` returns the kind its `Num` arguments have.
    fn call(&mut self, want: Option<Kind>) -> Option<Expr> {
        if self.call_depth >= MAX_CALL_NESTING {
            return None;
        }
        let left = self.budget.saturating_sub(self.cost);
        let returns = |ret: Kind| match want {
            None => true,
            Some(Kind::Int | Kind::Float) if ret == Kind::Num => true,
            Some(k) => ret == k,
        };
        let candidates: Vec<Sig> = self.fns[..self.callable]
            .iter()
            .filter(|f| returns(f.ret) && self.mult.saturating_mul(f.cost) <= left)
            .filter(|f| f.params.iter().all(|&p| !p.is_array() || self.visible().any(|v| v.kind == p)))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let f = self.rng.pick(&candidates);
        self.cost += self.mult.saturating_mul(f.cost);
        let num = match want {
            Some(k) if f.ret == Kind::Num => k,
            _ => self.any_number(),
        };
        self.call_depth += 1;
        let args: Vec<String> = f.params.iter().map(|&p| self.argument(if p == Kind::Num { num } else { p })).collect();
        self.call_depth -= 1;
        let result = if f.ret == Kind::Num { num } else { f.ret };
        Some(Expr::atom(format!("{}({})", f.name, args.join(", ")), result, VAR_BOUND))
    }

    /// An argument for a parameter of `kind` (sometimes of the wrong type when risky).
    fn argument(&mut self, kind: Kind) -> String {
        if !kind.is_array() && self.risky() && self.rng.chance(0.15) {
            return self.rng.pick(&["true", "0.5"]).to_string();
        }
        match kind {
            Kind::Int | Kind::Num => {
                let e = self.numeric(kind, 1);
                self.fit(e, VAR_BOUND).text
            }
            Kind::Float => self.numeric(Kind::Float, 1).text,
            Kind::Bool => self.bool_expr(1).text,
            Kind::Depth if self.rng.chance(0.5) => self.rng.int(0, MAX_RECURSION as i64).to_string(),
            Kind::Depth => format!("{} % {}", self.numeric(Kind::Int, 0).operand(), MAX_RECURSION + 1),
            _ => self.array_of(kind).expect("the caller checked that an array of this kind is visible"),
        }
    }

    fn bool_expr(&mut self, depth: u32) -> Expr {
        if depth == 0 {
            return self.bool_leaf();
        }
        match self.rng.weighted(&[2, 6, 2, 2, 1]) {
            0 => self.bool_leaf(),
            1 => self.comparison(depth),
            2 => {
                let e = if self.rng.chance(0.5) {
                    self.bool_expr(depth - 1)
                } else {
                    let kind = self.any_operand();
                    self.numeric(kind, depth - 1)
                };
                Expr::op(format!("not {}", e.operand()), Kind::Bool, 0)
            }
            3 => {
                let (a, b) = (self.bool_expr(depth - 1), self.bool_expr(depth - 1));
                let op = self.rng.pick(&["and", "or"]);
                Expr::op(format!("{} {op} {}", a.operand(), b.operand()), Kind::Bool, 0)
            }
            _ => self.odd_comparison(),
        }
    }

    /// A bool variable, call or literal, or a comparison of two leaves.
    fn bool_leaf(&mut self) -> Expr {
        let vars = u32::from(self.visible().any(|v| v.kind == Kind::Bool));
        let found = match self.rng.weighted(&[4 * vars, 1, 1, 4]) {
            0 => self.pick_var(|v| v.kind == Kind::Bool).map(Expr::of_var),
            1 => self.call(Some(Kind::Bool)),
            2 => Some(self.literal(Kind::Bool)),
            _ => {
                let (ka, kb) = (self.any_operand(), self.any_operand());
                let (a, b) = (self.leaf(ka), self.leaf(kb));
                let op = self.rng.pick(&COMPARISONS);
                Some(Expr::op(format!("{} {op} {}", a.operand(), b.operand()), Kind::Bool, 0))
            }
        };
        found.unwrap_or_else(|| self.literal(Kind::Bool))
    }

    /// A comparison of two numbers (of a bool and a number when risky: a type error for `<`).
    fn comparison(&mut self, depth: u32) -> Expr {
        let (ka, kb) = (self.any_operand(), self.any_operand());
        let a = if self.risky() && self.rng.chance(0.1) { self.bool_leaf() } else { self.numeric(ka, depth - 1) };
        let b = self.numeric(kb, depth - 1);
        let op = self.rng.pick(&COMPARISONS);
        Expr::op(format!("{} {op} {}", a.operand(), b.operand()), Kind::Bool, 0)
    }

    /// Comparisons that never fail but are easy to get wrong: a nan test, a bool against a
    /// number, an int against a float that cannot represent it exactly.
    fn odd_comparison(&mut self) -> Expr {
        let text = match self.rng.below(3) {
            0 => {
                let x = self.pure_float();
                format!("{x} != {x}")
            }
            1 => {
                let kind = self.any_operand();
                let (b, n) = (self.bool_leaf(), self.leaf(kind));
                format!("{} == {}", b.operand(), n.operand())
            }
            _ => {
                let int = self.pick_var(|v| v.kind == Kind::Int).map_or_else(
                    || self.rng.pick(&["9007199254740993", "4611686018427387903", "9223372036854775807"]).to_string(),
                    |v| v.name,
                );
                let float =
                    self.rng.pick(&["9007199254740992.0", "4611686018427387904.0", "9223372036854775808.0", "0.5"]);
                format!("{int} {} {float}", self.rng.pick(&COMPARISONS))
            }
        };
        Expr::op(text, Kind::Bool, 0)
    }

    /// The condition of an `if` or `while`: mostly a bool, sometimes a number's truthiness, in
    /// an unstable function sometimes `b and n`, which is a bool or a number.
    fn condition(&mut self, depth: u32) -> Expr {
        match self.rng.weighted(&[8, 1, u32::from(self.unstable)]) {
            0 => self.bool_expr(depth),
            1 => {
                let kind = self.any_operand();
                self.numeric(kind, depth - 1)
            }
            _ => {
                let kind = self.any_number();
                let (a, b) = (self.bool_expr(depth - 1), self.numeric(kind, 0));
                Expr::op(format!("{} and {}", a.operand(), b.operand()), Kind::Dyn, 0)
            }
        }
    }
}

/// The kind of array whose elements are of `kind`, if there is one.
fn element_array(kind: Kind) -> Option<Kind> {
    match kind {
        Kind::Int => Some(Kind::IntArray),
        Kind::Float => Some(Kind::FloatArray),
        _ => None,
    }
}

/// `1234567` as `1_234_567`.
fn group_digits(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('_');
        }
        grouped.push(c);
    }
    if v < 0 { format!("-{grouped}") } else { grouped }
}
